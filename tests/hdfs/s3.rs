//! The `hdfs` sink against a real S3-compatible server (`s3s-fs`, see `server.rs`): bucketing
//! with final object names and no in-use objects, a gzip stream decoded by `gzip`, and the
//! server stopped mid-stream with the agent killed (SIGKILL) while it is down: after both
//! restart, every acknowledged event is in the bucket and nothing is left staged.

use std::time::Duration;

use crate::common::*;
use crate::server::S3Server;
use crate::{config, decode_with, event, post, relative_files, started, T1, T2};

fn keys(server: &S3Server) -> Vec<(&'static str, String)> {
    server.sink_keys()
}

#[test]
fn s3_live_objects_are_bucketed_rolled_and_appear_only_under_final_names() {
    let dir = test_dir();
    let Some(server) = S3Server::start(&dir.path().join("s3"), "logs") else {
        return;
    };
    let mut sink: Vec<(&str, String)> = keys(&server);
    sink.push(("hdfs.fileType", "CompressedStream".into()));
    sink.push(("hdfs.codeC", "gzip".into()));
    sink.push(("hdfs.rollCount", "4".into()));
    let sink_refs: Vec<(&str, &str)> = sink.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let staging = dir.path().join("staging");
    let cfg = config("s3a://logs/flume/%Y-%m-%d/%H", &staging, &sink_refs, "");
    let (mut agent, port) = started(dir.path(), &cfg);
    let (t1, t2) = (T1.to_string(), T2.to_string());
    let mut events: Vec<String> = (0..6)
        .map(|i| event(&format!("a{i}"), &[("timestamp", &t1)]))
        .collect();
    events.push(event("b0", &[("timestamp", &t2)]));
    post(port, &events);
    let bucket = server.data.join("logs");
    wait_until("the first rolled object uploaded", DEADLINE, || {
        relative_files(&bucket.join("flume/2026-01-02/03")).len() == 1
    });
    // Open files live in staging only: the bucket never shows an in-use object.
    assert!(
        relative_files(&bucket).iter().all(|f| !f.contains(".tmp")),
        "{:?}",
        relative_files(&bucket)
    );
    assert!(agent.terminate().success(), "{}", agent.log());
    let objects = relative_files(&bucket);
    let under = |prefix: &str| -> Vec<String> {
        let mut bodies: Vec<String> = objects
            .iter()
            .filter(|o| o.starts_with(prefix))
            .map(|o| {
                assert!(o.ends_with(".gz"), "{o}");
                String::from_utf8_lossy(&decode_with("gzip", &["-dc"], &bucket.join(o)))
                    .into_owned()
            })
            .collect();
        bodies.sort();
        bodies
    };
    assert_eq!(
        under("flume/2026-01-02/03/FlumeData."),
        ["a0\na1\na2\na3\n", "a4\na5\n"]
    );
    assert_eq!(under("flume/2026-01-02/04/FlumeData."), ["b0\n"]);
    assert!(
        flumen::sink::hdfs::meta_records(&staging).is_empty(),
        "nothing left staged"
    );
}

#[test]
fn s3_live_down_and_a_kill_9_of_the_agent_lose_no_acknowledged_event() {
    let dir = test_dir();
    let Some(mut server) = S3Server::start(&dir.path().join("s3"), "logs") else {
        return;
    };
    let agent_dir = dir.path().join("agent");
    std::fs::create_dir_all(&agent_dir).expect("dir");
    let staging = agent_dir.join("staging");
    let mut sink = format!(
        "a1.sinks.k1.type = hdfs\n\
         a1.sinks.k1.hdfs.path = s3a://logs/acked/%{{bucket}}\n\
         a1.sinks.k1.hdfs.fileType = DataStream\n\
         a1.sinks.k1.hdfs.useLocalTimeStamp = true\n\
         a1.sinks.k1.hdfs.rollCount = 3000\n\
         a1.sinks.k1.hdfs.rollSize = 0\n\
         a1.sinks.k1.hdfs.rollInterval = 2\n\
         a1.sinks.k1.hdfs.batchSize = 500\n\
         a1.sinks.k1.hdfs.callTimeout = 2000\n\
         a1.sinks.k1.hdfs.retryInterval = 1\n\
         a1.sinks.k1.hdfs.stagingDir = {}\n",
        staging.display()
    );
    for (k, v) in keys(&server) {
        sink.push_str(&format!("a1.sinks.k1.{k} = {v}\n"));
    }
    // A static header makes the path need a header lookup on every event.
    let extra = "a1.sources.r1.interceptors = i1\n\
                 a1.sources.r1.interceptors.i1.type = static\n\
                 a1.sources.r1.interceptors.i1.key = bucket\n\
                 a1.sources.r1.interceptors.i1.value = b1\n";
    let cfg = netcat_file_channel_config(
        &agent_dir.join("checkpoint"),
        &agent_dir.join("data"),
        200_000,
        1000,
        extra,
        &sink,
    );
    let acked = dir.path().join("acked");
    let bucket = server.data.join("logs");
    let mut agent = Agent::start(&agent_dir, "a1", &cfg, &[]);
    let sending = spawn_oracle_netcat(agent.wait_for_port("r1"), &acked, 0, 12);
    wait_until("objects uploaded while the server is up", DEADLINE, || {
        !relative_files(&bucket).is_empty()
    });
    server.stop();
    // Files keep rolling into staging while the server is down; then the agent dies.
    std::thread::sleep(Duration::from_secs(4));
    agent.signal("KILL");
    agent.wait();
    let (ok, summary) = sending.join().expect("sender");
    assert!(ok, "{summary}");
    assert!(
        !flumen::sink::hdfs::meta_records(&staging).is_empty(),
        "files were staged while the server was down"
    );
    let mut agent = Agent::start(&agent_dir, "a1", &cfg, &[]);
    let sending = spawn_oracle_netcat(agent.wait_for_port("r1"), &acked, oracle_next(&summary), 3);
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    let (ok, summary) = sending.join().expect("sender");
    assert!(ok, "{summary}");
    wait_until(
        "every acknowledged event in the bucket",
        Duration::from_secs(120),
        || acked_missing(&bucket, &acked) == 0,
    );
    assert!(agent.terminate().success(), "{}", agent.log());
    wait_until("nothing left staged", DEADLINE, || {
        flumen::sink::hdfs::meta_records(&staging).is_empty()
    });
    let objects = relative_files(&bucket);
    assert!(objects.iter().all(|o| !o.contains(".tmp")), "{objects:?}");
    // One kill: the takes open at that moment (commits in flight and the one in hand) may
    // be delivered again.
    let in_flight = flumen::sink::slot::COMMITS_IN_FLIGHT as u64 + 1;
    let (ok, verdict) = oracle_verify(&bucket, &acked, in_flight * 500 + 2);
    eprintln!("oracle: {verdict}");
    assert!(ok, "oracle: {verdict}");
}
