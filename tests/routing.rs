//! Channel selectors and sink processors through the real binary.

mod common;

use std::path::Path;

use common::*;

/// Posts JSONHandler events `(headers, body)` to the http source; returns the status.
fn post(port: u16, events: &[(Vec<(&str, &str)>, String)]) -> u16 {
    let json: Vec<serde_json::Value> = events
        .iter()
        .map(|(h, b)| {
            let headers: serde_json::Map<String, serde_json::Value> = h
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
                .collect();
            serde_json::json!({"headers": headers, "body": b})
        })
        .collect();
    let body = serde_json::to_vec(&json).unwrap();
    http_request(
        port,
        "POST",
        "/",
        &[("Content-Type", "application/json")],
        &body,
    )
    .0
}

fn http_source(channels: &str, extra: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.sources.r1.type = http\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = 0\n\
         a1.sources.r1.channels = {channels}\n\
         {extra}"
    )
}

fn memory_channel(name: &str, extra: &str) -> String {
    format!(
        "a1.channels.{name}.type = memory\n\
         a1.channels.{name}.capacity = 10000\n\
         a1.channels.{name}.transactionCapacity = 1000\n\
         {extra}"
    )
}

fn file_sink(name: &str, channel: &str, dir: &Path, extra: &str) -> String {
    format!(
        "a1.sinks.{name}.type = file_roll\n\
         a1.sinks.{name}.channel = {channel}\n\
         a1.sinks.{name}.sink.directory = {}\n\
         a1.sinks.{name}.sink.rollInterval = 0\n\
         {extra}",
        dir.display()
    )
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn multiplexing_routes_by_header_to_mapped_default_and_optional_channels() {
    let dir = test_dir();
    let out = |c: &str| dir.path().join(c);
    let mut cfg = format!(
        "a1.channels = c1 c2 c3 c4\na1.sinks = k1 k2 k3 k4\n{}",
        http_source(
            "c1 c2 c3 c4",
            "a1.sources.r1.selector.type = multiplexing\n\
             a1.sources.r1.selector.header = state\n\
             a1.sources.r1.selector.mapping.CA = c1\n\
             a1.sources.r1.selector.mapping.NY = c2 c3\n\
             a1.sources.r1.selector.optional.CA = c4\n\
             a1.sources.r1.selector.default = c3\n"
        )
    );
    for (i, c) in ["c1", "c2", "c3", "c4"].iter().enumerate() {
        cfg.push_str(&memory_channel(c, ""));
        cfg.push_str(&file_sink(&format!("k{}", i + 1), c, &out(c), ""));
    }
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.port_of("r1");
    let status = post(
        port,
        &[
            (vec![("state", "CA")], "ca-1".into()),
            (vec![("state", "NY")], "ny-1".into()),
            (vec![("state", "TX")], "tx-1".into()),
            (vec![], "none-1".into()),
            (vec![("state", "CA")], "ca-2".into()),
        ],
    );
    assert_eq!(status, 200);
    wait_until("all routed events written", DEADLINE, || {
        count_output_lines(&out("c1")) == 2
            && count_output_lines(&out("c2")) == 1
            && count_output_lines(&out("c3")) == 3
            && count_output_lines(&out("c4")) == 2
    });
    assert!(agent.terminate().success(), "{}", agent.log());
    assert_eq!(sorted(output_lines(&out("c1"))), ["ca-1", "ca-2"]);
    assert_eq!(output_lines(&out("c2")), ["ny-1"]);
    assert_eq!(sorted(output_lines(&out("c3"))), ["none-1", "ny-1", "tx-1"]);
    assert_eq!(sorted(output_lines(&out("c4"))), ["ca-1", "ca-2"]);
}

#[test]
fn replicating_delivers_every_event_to_every_required_channel_and_ignores_a_failing_optional_one() {
    let dir = test_dir();
    let out = |c: &str| dir.path().join(c);
    // c3 is optional, tiny, and its sink can never write: once full, its puts fail.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"").unwrap();
    let mut cfg = format!(
        "a1.channels = c1 c2 c3\na1.sinks = k1 k2 k3\n{}",
        http_source("c1 c2 c3", "a1.sources.r1.selector.optional = c3\n")
    );
    cfg.push_str(&memory_channel("c1", ""));
    cfg.push_str(&memory_channel("c2", ""));
    cfg.push_str(
        "a1.channels.c3.type = memory\n\
         a1.channels.c3.capacity = 10\n\
         a1.channels.c3.transactionCapacity = 10\n\
         a1.channels.c3.keep-alive = 0\n",
    );
    cfg.push_str(&file_sink("k1", "c1", &out("c1"), ""));
    cfg.push_str(&file_sink("k2", "c2", &out("c2"), ""));
    // A batch c3 can hold, so that Flume's batch rule keeps k3: it runs and fails to write.
    cfg.push_str(&file_sink(
        "k3",
        "c3",
        &blocker.join("x"),
        "a1.sinks.k3.sink.batchSize = 10\n",
    ));
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.port_of("r1");
    let mut want = Vec::new();
    for b in 0..5 {
        let batch: Vec<_> = (0..8).map(|i| (vec![], format!("e-{b}-{i}"))).collect();
        want.extend(batch.iter().map(|(_, s)| s.clone()));
        assert_eq!(post(port, &batch), 200, "batch {b}");
    }
    wait_until("both required channels written", DEADLINE, || {
        count_output_lines(&out("c1")) == want.len() && count_output_lines(&out("c2")) == want.len()
    });
    let _ = agent.terminate();
    assert_eq!(sorted(output_lines(&out("c1"))), sorted(want.clone()));
    assert_eq!(sorted(output_lines(&out("c2"))), sorted(want));
}

#[test]
fn failover_moves_to_the_backup_and_returns_to_the_recovered_primary() {
    let dir = test_dir();
    let primary = dir.path().join("primary");
    let backup = dir.path().join("backup");
    // The primary's directory cannot be created while a regular file stands in its place.
    std::fs::write(&primary, b"").unwrap();
    let mut cfg = format!(
        "a1.channels = c1\na1.sinks = k1 k2\n{}{}",
        http_source("c1", ""),
        memory_channel("c1", "")
    );
    cfg.push_str(&file_sink(
        "k1",
        "c1",
        &primary.join("out"),
        "a1.sinks.k1.sink.batchSize = 10\n",
    ));
    cfg.push_str(&file_sink(
        "k2",
        "c1",
        &backup,
        "a1.sinks.k2.sink.batchSize = 10\n",
    ));
    cfg.push_str(
        "a1.sinkgroups = g1\n\
         a1.sinkgroups.g1.sinks = k1 k2\n\
         a1.sinkgroups.g1.processor.type = failover\n\
         a1.sinkgroups.g1.processor.priority.k1 = 10\n\
         a1.sinkgroups.g1.processor.priority.k2 = 5\n\
         a1.sinkgroups.g1.processor.maxpenalty = 1000\n",
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.port_of("r1");
    let first: Vec<_> = (0..30).map(|i| (vec![], format!("down-{i}"))).collect();
    assert_eq!(post(port, &first), 200);
    wait_until("the backup took over", DEADLINE, || {
        count_output_lines(&backup) == 30
    });
    // Primary recovers.
    std::fs::remove_file(&primary).unwrap();
    let out = primary.join("out");
    let mut sent = 30;
    let mut n = 0;
    wait_until("the primary is back in service", DEADLINE, || {
        let batch: Vec<_> = (0..5).map(|i| (vec![], format!("up-{n}-{i}"))).collect();
        n += 1;
        sent += batch.len();
        assert_eq!(post(port, &batch), 200);
        std::thread::sleep(std::time::Duration::from_millis(50));
        count_output_lines(&out) > 0
    });
    // From now on the preferred sink delivers.
    let last: Vec<_> = (0..20).map(|i| (vec![], format!("final-{i}"))).collect();
    assert_eq!(post(port, &last), 200);
    sent += 20;
    wait_until("every event delivered", DEADLINE, || {
        count_output_lines(&out) + count_output_lines(&backup) >= sent
    });
    assert!(agent.terminate().success(), "{}", agent.log());
    let primary_lines = output_lines(&out);
    let backup_lines = output_lines(&backup);
    assert!(
        backup_lines
            .iter()
            .filter(|l| l.starts_with("down-"))
            .count()
            == 30
    );
    assert_eq!(
        primary_lines
            .iter()
            .filter(|l| l.starts_with("final-"))
            .count(),
        20
    );
    let mut all: Vec<String> = primary_lines.into_iter().chain(backup_lines).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), sent, "nothing lost");
}

#[test]
fn round_robin_load_balancing_spreads_batches_evenly_and_a_dead_sink_is_backed_off() {
    let dir = test_dir();
    let out = |k: &str| dir.path().join(k);
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"").unwrap();
    for dead in [false, true] {
        let mut cfg = format!(
            "a1.channels = c1\na1.sinks = k1 k2 k3\n{}{}",
            http_source("c1", ""),
            memory_channel("c1", "")
        );
        let tag = if dead { "dead" } else { "live" };
        for k in ["k1", "k2", "k3"] {
            let target = if dead && k == "k2" {
                blocker.join("x")
            } else {
                out(&format!("{tag}-{k}"))
            };
            cfg.push_str(&file_sink(
                k,
                "c1",
                &target,
                &format!("a1.sinks.{k}.sink.batchSize = 10\n"),
            ));
        }
        cfg.push_str(
            "a1.sinkgroups = g1\n\
             a1.sinkgroups.g1.sinks = k1 k2 k3\n\
             a1.sinkgroups.g1.processor.type = load_balance\n\
             a1.sinkgroups.g1.processor.selector = round_robin\n\
             a1.sinkgroups.g1.processor.backoff = true\n",
        );
        let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
        let port = agent.port_of("r1");
        let events: Vec<_> = (0..300)
            .map(|i| (vec![], format!("{tag}-{i:03}")))
            .collect();
        assert_eq!(post(port, &events), 200);
        let counts = || ["k1", "k2", "k3"].map(|k| count_output_lines(&out(&format!("{tag}-{k}"))));
        wait_until("all 300 events delivered", DEADLINE, || {
            counts().iter().sum::<usize>() >= 300
        });
        assert!(agent.terminate().success(), "{}", agent.log());
        let c = counts();
        assert_eq!(c.iter().sum::<usize>(), 300, "{c:?}");
        if dead {
            assert_eq!(c[1], 0);
            assert!(c[0] >= 140 && c[2] >= 140, "{c:?}");
        } else {
            assert!(c.iter().all(|&n| (90..=110).contains(&n)), "uneven: {c:?}");
        }
        let mut all: Vec<String> = ["k1", "k2", "k3"]
            .iter()
            .flat_map(|k| output_lines(&out(&format!("{tag}-{k}"))))
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 300);
    }
}

#[test]
fn selector_and_processor_errors_name_their_keys() {
    let dir = test_dir();
    let cfg = format!(
        "a1.channels = c1\na1.sinks = k1 k2\n{}{}{}{}",
        http_source(
            "c1",
            "a1.sources.r1.selector.type = multiplexing\na1.sources.r1.selector.mapping.X = c7\n"
        ),
        memory_channel("c1", ""),
        file_sink("k1", "c1", &dir.path().join("o1"), ""),
        file_sink("k2", "c1", &dir.path().join("o2"), "")
    ) + "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\na1.sinkgroups.g1.processor.type = failovr\n";
    let file = dir.path().join("bad.properties");
    std::fs::write(&file, cfg).unwrap();
    let out = std::process::Command::new(flumen_bin())
        .args(["check", "--json", "-n", "a1", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"a1.sources.r1.selector.mapping.X"),
        "{json:#}"
    );
    let processor = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "a1.sinkgroups.g1.processor.type")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(processor["suggestion"], "failover");
}

/// A real HTTP receiver in its own process (so the test can kill and restart it): appends each
/// POST body as a line to `out` and answers 200.
const RECEIVER: &str = r#"
import http.server, sys
out = open(sys.argv[2], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out.write(body.decode() + "\n"); out.flush()
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

fn start_receiver(port: u16, out: &Path) -> std::process::Child {
    let child = std::process::Command::new("python3")
        .args(["-c", RECEIVER, &port.to_string()])
        .arg(out)
        .spawn()
        .expect("starting the python receiver");
    wait_until("the receiver listens", DEADLINE, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    child
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(String::from).collect())
        .unwrap_or_default()
}

#[test]
fn failover_between_http_sinks_follows_a_receiver_that_stops_and_restarts() {
    let dir = test_dir();
    let primary_out = dir.path().join("primary.txt");
    let backup_out = dir.path().join("backup.txt");
    // Two distinct free ports: both held while they are picked.
    let (a, b) = (
        std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"),
        std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"),
    );
    let port_of = |l: &std::net::TcpListener| l.local_addr().expect("local address").port();
    let (primary_port, backup_port) = (port_of(&a), port_of(&b));
    drop((a, b));
    let mut primary = start_receiver(primary_port, &primary_out);
    let mut backup = start_receiver(backup_port, &backup_out);
    let http_sink = |k: &str, port: u16| {
        format!(
            "a1.sinks.{k}.type = http\n\
             a1.sinks.{k}.channel = c1\n\
             a1.sinks.{k}.endpoint = http://127.0.0.1:{port}/\n\
             a1.sinks.{k}.connectTimeout = 500\n\
             a1.sinks.{k}.rollback.2XX = false\n\
             a1.sinks.{k}.backoff.2XX = false\n\
             a1.sinks.{k}.incrementMetrics.2XX = true\n"
        )
    };
    let cfg = format!(
        "a1.channels = c1\na1.sinks = k1 k2\n{}{}{}{}\
         a1.sinkgroups = g1\n\
         a1.sinkgroups.g1.sinks = k1 k2\n\
         a1.sinkgroups.g1.processor.type = failover\n\
         a1.sinkgroups.g1.processor.priority.k1 = 10\n\
         a1.sinkgroups.g1.processor.priority.k2 = 5\n\
         a1.sinkgroups.g1.processor.maxpenalty = 1000\n",
        http_source("c1", ""),
        memory_channel("c1", ""),
        http_sink("k1", primary_port),
        http_sink("k2", backup_port),
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.port_of("r1");
    let batch = |tag: &str, n: usize| -> Vec<(Vec<(&str, &str)>, String)> {
        (0..n).map(|i| (vec![], format!("{tag}-{i}"))).collect()
    };
    let mut sent = 0;
    assert_eq!(post(port, &batch("before", 10)), 200);
    sent += 10;
    wait_until("the primary receives while it is up", DEADLINE, || {
        lines(&primary_out).len() == 10
    });
    // The primary dies: events move to the backup.
    primary.kill().expect("stopping the primary");
    primary.wait().expect("reaping the primary");
    assert_eq!(post(port, &batch("down", 10)), 200);
    sent += 10;
    wait_until("the backup takes over", DEADLINE, || {
        lines(&backup_out)
            .iter()
            .filter(|l| l.starts_with("down-"))
            .count()
            == 10
    });
    // The primary comes back on the same port: once its penalty is over it is preferred again.
    primary = start_receiver(primary_port, &primary_out);
    let mut round = 0;
    wait_until("the primary is back in service", DEADLINE, || {
        assert_eq!(post(port, &batch(&format!("probe{round}"), 2)), 200);
        round += 1;
        sent += 2;
        std::thread::sleep(std::time::Duration::from_millis(100));
        lines(&primary_out).iter().any(|l| l.starts_with("probe"))
    });
    assert_eq!(post(port, &batch("after", 10)), 200);
    sent += 10;
    wait_until("the recovered primary receives the rest", DEADLINE, || {
        lines(&primary_out)
            .iter()
            .filter(|l| l.starts_with("after-"))
            .count()
            == 10
    });
    assert!(agent.terminate().success(), "{}", agent.log());
    let _ = primary.kill();
    let _ = backup.kill();
    let _ = primary.wait();
    let _ = backup.wait();
    let primary_lines = lines(&primary_out);
    let backup_lines = lines(&backup_out);
    assert!(
        primary_lines.iter().all(|l| !l.starts_with("down-")),
        "{primary_lines:?}"
    );
    assert!(
        backup_lines.iter().all(|l| !l.starts_with("after-")),
        "{backup_lines:?}"
    );
    let mut all: Vec<String> = primary_lines.into_iter().chain(backup_lines).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), sent, "nothing lost");
}

fn sink_side_decompress(dir: &Path, with_dlq: bool) -> String {
    let mut cfg = format!(
        "a1.channels = c1{}\na1.sinks = k1{}\n{}{}",
        if with_dlq { " dlq" } else { "" },
        if with_dlq { " k2" } else { "" },
        http_source("c1", ""),
        memory_channel("c1", "")
    );
    cfg.push_str(&file_sink(
        "k1",
        "c1",
        &dir.join("out"),
        "a1.sinks.k1.sink.serializer = HEADER_AND_TEXT\n\
         a1.sinks.k1.interceptors = unzip\n\
         a1.sinks.k1.interceptors.unzip.type = decompress\n",
    ));
    if with_dlq {
        cfg.push_str("a1.sinks.k1.errorChannel = dlq\n");
        cfg.push_str(&memory_channel("dlq", ""));
        cfg.push_str(&file_sink(
            "k2",
            "dlq",
            &dir.join("dlq"),
            "a1.sinks.k2.sink.serializer = HEADER_AND_TEXT\n",
        ));
    }
    cfg
}

#[test]
fn a_sink_side_chain_dead_letters_bad_events_and_delivers_the_rest() {
    let dir = test_dir();
    let mut agent = Agent::start(
        dir.path(),
        "a1",
        &sink_side_decompress(dir.path(), true),
        &[],
    );
    let port = agent.port_of("r1");
    let events = [
        (
            vec![("flumen.codec", "gzip")],
            "not gzip at all".to_string(),
        ),
        (vec![], "plain".to_string()),
    ];
    assert_eq!(post(port, &events), 200);
    wait_until(
        "the good event delivered and the bad one dead-lettered",
        DEADLINE,
        || {
            count_output_lines(&dir.path().join("out")) == 1
                && count_output_lines(&dir.path().join("dlq")) == 1
        },
    );
    assert!(agent.terminate().success(), "{}", agent.log());
    assert_eq!(output_lines(&dir.path().join("out")), ["{} plain"]);
    let dead = output_lines(&dir.path().join("dlq"));
    assert!(dead[0].ends_with(" not gzip at all"), "{dead:?}");
    assert!(dead[0].contains("flumen.error.component=k1"), "{dead:?}");
    assert!(
        dead[0].contains("flumen.error.interceptor=unzip"),
        "{dead:?}"
    );
    assert!(dead[0].contains("flumen.error.reason="), "{dead:?}");
    let totals = agent.wait_for_log(&["Sink totals.", "sink=k1"]);
    assert!(totals.contains("dead_lettered=1"), "{totals}");
}

#[test]
fn without_an_error_channel_a_bad_event_holds_its_batch_and_is_reported_never_dropped() {
    let dir = test_dir();
    let mut agent = Agent::start(
        dir.path(),
        "a1",
        &sink_side_decompress(dir.path(), false),
        &["--shutdown-timeout", "0.5"],
    );
    let port = agent.port_of("r1");
    let events = [
        (
            vec![("flumen.codec", "gzip")],
            "not gzip at all".to_string(),
        ),
        (vec![], "plain".to_string()),
    ];
    assert_eq!(post(port, &events), 200);
    agent.wait_for_log(&["no errorChannel", "sink=k1"]);
    let status = agent.terminate();
    // Nothing was delivered, nothing silently dropped: the stop reports both events lost.
    assert_eq!(status.code(), Some(3), "{}", agent.log());
    let lost = agent.wait_for_log(&["lost", "channel=c1"]);
    assert!(lost.contains("events=2"), "{lost}");
    assert_eq!(count_output_lines(&dir.path().join("out")), 0);
}
