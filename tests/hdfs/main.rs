//! The `hdfs` sink through the real binary on local files (`file://`): bucketing by time and
//! header, rolling by count, size, interval and idleness, in-use and final names, the codecs
//! decoded by the standard tools, bad events dead-lettered, and recovery after kill -9.
//! `s3.rs` runs the same sink against a real S3-compatible server.

#[path = "../common/mod.rs"]
mod common;
mod formats;
mod s3;
mod server;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// 2026-01-02 03:04:05 UTC and one hour later, in epoch milliseconds.
const T1: i64 = 1_767_323_045_000;
const T2: i64 = T1 + 3_600_000;

/// An agent with an http source, a memory channel and an hdfs sink writing under `out`;
/// `sink` adds keys under `a1.sinks.k1.`, `extra` adds whole lines.
fn config(path: &str, staging: &Path, sink: &[(&str, &str)], extra: &str) -> String {
    let mut c = String::from(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = http\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = 0\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = hdfs\n\
         a1.sinks.k1.channel = c1\n",
    );
    let staging = staging.display().to_string();
    let defaults = [
        ("hdfs.path", path),
        ("hdfs.stagingDir", staging.as_str()),
        ("hdfs.fileType", "DataStream"),
        ("hdfs.rollInterval", "0"),
        ("hdfs.rollSize", "0"),
        ("hdfs.rollCount", "0"),
        ("hdfs.timeZone", "UTC"),
    ];
    let overridden = |k: &str| sink.iter().any(|(o, _)| *o == k);
    for (k, v) in defaults.iter().filter(|(k, _)| !overridden(k)).chain(sink) {
        c.push_str(&format!("a1.sinks.k1.{k} = {v}\n"));
    }
    c.push_str(extra);
    c
}

/// One JSON event for the http source.
fn event(body: &str, headers: &[(&str, &str)]) -> String {
    let h: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("\"{k}\":\"{v}\""))
        .collect();
    format!("{{\"headers\":{{{}}},\"body\":\"{body}\"}}", h.join(","))
}

/// Posts events; panics unless the source answers 200.
fn post(port: u16, events: &[String]) {
    let (status, body) = http_request(
        port,
        "POST",
        "/",
        &[("Content-Type", "application/json")],
        format!("[{}]", events.join(",")).as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
}

/// Files under `dir` with their paths relative to it, sorted.
fn relative_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = output_files(dir)
        .iter()
        .map(|p| {
            p.strip_prefix(dir)
                .expect("under dir")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn started(dir: &Path, config: &str) -> (Agent, u16) {
    let agent = Agent::start(dir, "a1", config, &["--metrics-addr", "127.0.0.1:0"]);
    let port = agent.port_of("r1");
    (agent, port)
}

#[test]
fn events_are_bucketed_by_hour_and_header_and_rolled_by_count() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let path = format!("file://{}/%Y-%m-%d/%H/%{{host}}", out.display());
    let cfg = config(
        &path,
        &dir.path().join("staging"),
        &[("hdfs.rollCount", "2"), ("hdfs.filePrefix", "ev")],
        "",
    );
    let (mut agent, port) = started(dir.path(), &cfg);
    let (t1, t2) = (T1.to_string(), T2.to_string());
    let mut events = Vec::new();
    for i in 0..5 {
        events.push(event(
            &format!("a{i}"),
            &[("timestamp", &t1), ("host", "web1")],
        ));
    }
    events.push(event("b0", &[("timestamp", &t2), ("host", "web1")]));
    events.push(event("c0", &[("timestamp", &t1), ("host", "web2")]));
    post(port, &events);
    // Five events at rollCount 2: two closed files and one open under its in-use name.
    let bucket = out.join("2026-01-02/03/web1");
    wait_until("two rolled files in the first bucket", DEADLINE, || {
        relative_files(&bucket)
            .iter()
            .filter(|f| !f.ends_with(".tmp"))
            .count()
            == 2
    });
    let open: Vec<String> = relative_files(&out)
        .into_iter()
        .filter(|f| f.ends_with(".tmp"))
        .collect();
    assert_eq!(open.len(), 3, "one in-use file per bucket: {open:?}");
    assert!(agent.terminate().success(), "{}", agent.log());
    let files = relative_files(&out);
    assert!(files.iter().all(|f| !f.ends_with(".tmp")), "{files:?}");
    let in_bucket = |b: &str| -> Vec<String> {
        files
            .iter()
            .filter(|f| f.starts_with(b))
            .map(|f| read(&out.join(f)))
            .collect()
    };
    assert_eq!(
        in_bucket("2026-01-02/03/web1/"),
        ["a0\na1\n", "a2\na3\n", "a4\n"]
    );
    assert_eq!(in_bucket("2026-01-02/04/web1/"), ["b0\n"]);
    assert_eq!(in_bucket("2026-01-02/03/web2/"), ["c0\n"]);
    // Flume's names: <prefix>.<counter>, the counter growing from the clock's milliseconds.
    for f in &files {
        let name = f.rsplit('/').next().unwrap_or_default();
        let counter = name.strip_prefix("ev.").expect("prefix");
        assert!(
            counter.parse::<u64>().is_ok_and(|c| c > 1_700_000_000_000),
            "{name}"
        );
    }
}

#[test]
fn files_roll_by_size_interval_and_idleness() {
    let dir = test_dir();
    // Size: 1 KiB of body bytes rolls before the next event.
    let out = dir.path().join("size");
    let cfg = config(
        &format!("file://{}", out.display()),
        &dir.path().join("staging-size"),
        &[("hdfs.rollSize", "10"), ("hdfs.useLocalTimeStamp", "true")],
        "",
    );
    let (mut agent, port) = started(&dir.path().join("."), &cfg);
    post(port, &["aaaaaa", "bbbbbb", "cccccc"].map(|b| event(b, &[])));
    wait_until("a file rolled on size", DEADLINE, || {
        relative_files(&out).iter().any(|f| !f.ends_with(".tmp"))
    });
    assert!(agent.terminate().success(), "{}", agent.log());
    let mut contents: Vec<String> = relative_files(&out)
        .iter()
        .map(|f| read(&out.join(f)))
        .collect();
    contents.sort();
    assert_eq!(contents, ["aaaaaa\nbbbbbb\n", "cccccc\n"]);

    // Interval and idleness: an open file is closed by time alone, with no new event.
    for (key, name) in [
        ("hdfs.rollInterval", "interval"),
        ("hdfs.idleTimeout", "idle"),
    ] {
        let out = dir.path().join(name);
        let cfg = config(
            &format!("file://{}", out.display()),
            &dir.path().join(format!("staging-{name}")),
            &[(key, "1")],
            "",
        );
        let sub = dir.path().join(format!("agent-{name}"));
        std::fs::create_dir_all(&sub).expect("dir");
        let (mut agent, port) = started(&sub, &cfg);
        post(port, &[event("x", &[("timestamp", &T1.to_string())])]);
        wait_until(&format!("the file closed by {key}"), DEADLINE, || {
            let files = relative_files(&out);
            files.len() == 1 && !files[0].ends_with(".tmp")
        });
        agent.wait_for_log(&["renamed to its final name"]);
        assert!(agent.terminate().success(), "{}", agent.log());
    }
}

/// Runs `tool args file` and returns its standard output.
fn decode_with(tool: &str, args: &[&str], file: &Path) -> Vec<u8> {
    let out = Command::new(tool)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn compressed_streams_decode_with_the_standard_tools_to_exactly_the_events_sent() {
    for (codec, ext, tool) in [
        ("gzip", ".gz", "gzip"),
        ("bzip2", ".bz2", "bzip2"),
        ("zstd", ".zst", "zstd"),
    ] {
        let dir = test_dir();
        let out = dir.path().join("out");
        let cfg = config(
            &format!("file://{}", out.display()),
            &dir.path().join("staging"),
            &[
                ("hdfs.fileType", "CompressedStream"),
                ("hdfs.codeC", codec),
                ("hdfs.useLocalTimeStamp", "true"),
                ("hdfs.batchSize", "3"),
            ],
            "",
        );
        let (mut agent, port) = started(dir.path(), &cfg);
        let mut expected = String::new();
        // Several posts, several batches: each batch is its own compressed unit.
        for round in 0..3 {
            let events: Vec<String> = (0..5)
                .map(|i| event(&format!("{codec}-{round}-{i}"), &[]))
                .collect();
            for i in 0..5 {
                expected.push_str(&format!("{codec}-{round}-{i}\n"));
            }
            post(port, &events);
        }
        assert!(agent.terminate().success(), "{}", agent.log());
        let files = output_files(&out);
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].to_string_lossy().ends_with(ext), "{files:?}");
        let decoded = decode_with(tool, &["-dc"], &files[0]);
        assert_eq!(String::from_utf8_lossy(&decoded), expected, "{codec}");
    }
}

#[test]
fn events_without_the_timestamp_their_path_needs_or_with_unsafe_headers_are_dead_lettered() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let dead = dir.path().join("dead");
    let extra = format!(
        "a1.channels = c1 dlq\n\
         a1.sinks = k1 k2\n\
         a1.channels.dlq.type = memory\n\
         a1.sinks.k1.errorChannel = dlq\n\
         a1.sinks.k2.type = file_roll\n\
         a1.sinks.k2.channel = dlq\n\
         a1.sinks.k2.sink.directory = {}\n\
         a1.sinks.k2.sink.rollInterval = 0\n\
         a1.sinks.k2.sink.serializer = HEADER_AND_TEXT\n",
        dead.display()
    );
    let cfg = config(
        &format!("file://{}/%Y/%{{dir}}", out.display()),
        &dir.path().join("staging"),
        &[],
        &extra,
    );
    let (mut agent, port) = started(dir.path(), &cfg);
    let t = T1.to_string();
    post(
        port,
        &[
            event("good", &[("timestamp", &t), ("dir", "a/b")]),
            event("no-time", &[("dir", "a")]),
            event("escape", &[("timestamp", &t), ("dir", "../../etc")]),
            event("absolute", &[("timestamp", &t), ("dir", "/etc")]),
        ],
    );
    wait_until("three dead letters", DEADLINE, || {
        count_output_lines(&dead) == 3
    });
    assert!(agent.terminate().success(), "{}", agent.log());
    let files = relative_files(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("2026/a/b/FlumeData."), "{files:?}");
    let letters = output_lines(&dead).join("\n");
    for body in ["no-time", "escape", "absolute"] {
        assert!(letters.contains(body), "{letters}");
    }
    assert!(
        letters.contains("timestamp"),
        "the reason names the timestamp: {letters}"
    );
    assert!(!dir.path().join("etc").exists());
}

#[test]
fn a_kill_9_leaves_no_in_use_file_after_restart_and_loses_no_committed_event() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let staging = dir.path().join("staging");
    let cfg = config(
        &format!("file://{}/%{{b}}", out.display()),
        &staging,
        &[
            ("hdfs.useLocalTimeStamp", "true"),
            ("hdfs.fileType", "CompressedStream"),
            ("hdfs.codeC", "gzip"),
        ],
        "",
    );
    let (mut agent, port) = started(dir.path(), &cfg);
    let mut expected = Vec::new();
    for b in ["x", "y"] {
        let events: Vec<String> = (0..20)
            .map(|i| event(&format!("{b}{i}"), &[("b", b)]))
            .collect();
        expected.extend((0..20).map(|i| format!("{b}{i}")));
        post(port, &events);
    }
    wait_until("both buckets open", DEADLINE, || {
        relative_files(&out)
            .iter()
            .filter(|f| f.ends_with(".gz.tmp"))
            .count()
            == 2
    });
    // The http source answers 200 once its batch is in the channel, not once it is in a
    // file: wait until the sink has committed them all.
    wait_until("the channel drained", DEADLINE, || {
        agent.log().contains("Creating file") && hdfs_sink_drained(&agent)
    });
    agent.signal("KILL");
    agent.wait();
    assert!(
        !flumen_meta_records(&staging).is_empty(),
        "open files are recorded"
    );
    let (mut agent, _) = started(dir.path(), &cfg);
    wait_until("the files left open renamed at start", DEADLINE, || {
        let files = relative_files(&out);
        files.len() == 2 && files.iter().all(|f| f.ends_with(".gz"))
    });
    assert!(agent.terminate().success(), "{}", agent.log());
    let mut got: Vec<String> = output_files(&out)
        .iter()
        .flat_map(|f| {
            String::from_utf8_lossy(&decode_with("gzip", &["-dc"], f))
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert!(flumen_meta_records(&staging).is_empty());
}

/// Whether the sink has drained the channel, from the agent's metrics.
fn hdfs_sink_drained(agent: &Agent) -> bool {
    let port = agent.monitoring_port();
    let (status, body) = http_request(port, "GET", "/metrics", &[], b"");
    status == 200 && body.contains("\"EventDrainSuccessCount\":\"40\"")
}

/// The meta records in a staging directory.
fn flumen_meta_records(staging: &Path) -> Vec<PathBuf> {
    flumen::sink::hdfs::meta_records(staging)
}
