//! The `avro` sink and source through the real binary: a two-tier topology (edge: netcat →
//! file channel → avro sink; collector: avro source → file channel → file_roll) loses no
//! acknowledged event when either tier is killed with SIGKILL mid-stream, with and without
//! deflate; `ipFilter` refuses and admits; hostile clients (garbage, an absurd buffer count or
//! length, a truncated frame left stalled) are dropped while a well-behaved edge is served.

#![cfg(feature = "avro-rpc")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::*;

/// The edge's sink batch.
const BATCH: u64 = 100;

/// The collector: avro source on `port` → file channel → file_roll into `dir/out`.
fn collector_config(dir: &Path, port: u16, extra_source: &str) -> String {
    format!(
        "c.sources = r1\n\
         c.channels = c1\n\
         c.sinks = k1\n\
         c.sources.r1.type = avro\n\
         c.sources.r1.bind = 127.0.0.1\n\
         c.sources.r1.port = {port}\n\
         c.sources.r1.channels = c1\n\
         {extra_source}\
         c.channels.c1.type = file\n\
         c.channels.c1.checkpointDir = {}\n\
         c.channels.c1.dataDirs = {}\n\
         c.channels.c1.capacity = 100000\n\
         c.channels.c1.transactionCapacity = 1000\n\
         c.channels.c1.checkpointInterval = 500\n\
         c.sinks.k1.type = file_roll\n\
         c.sinks.k1.channel = c1\n\
         c.sinks.k1.sink.directory = {}\n\
         c.sinks.k1.sink.rollInterval = 1\n\
         c.sinks.k1.sink.serializer = TEXT\n\
         c.sinks.k1.sink.batchSize = {BATCH}\n",
        dir.join("checkpoint").display(),
        dir.join("data").display(),
        dir.join("out").display(),
    )
}

/// The edge: netcat (acks each event once durable) → file channel → avro sink to `port`.
fn edge_config(dir: &Path, port: u16, extra_sink: &str) -> String {
    let sink = format!(
        "a1.sinks.k1.type = avro\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {port}\n\
         a1.sinks.k1.batch-size = {BATCH}\n\
         a1.sinks.k1.connect-timeout = 1000\n\
         a1.sinks.k1.request-timeout = 3000\n\
         {extra_sink}"
    );
    netcat_file_channel_config(
        &dir.join("checkpoint"),
        &dir.join("data"),
        100_000,
        1000,
        "a1.channels.c1.keep-alive = 1\n",
        &sink,
    )
}

fn acked_count(acked: &Path) -> usize {
    std::fs::read_to_string(acked)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Both tiers killed in turn mid-stream; every acknowledged event reaches the collector.
/// `acks` is the edge sink's `concurrency` (takes held open awaiting an OK).
fn two_tiers_survive_kill_9(extra_source: &str, extra_sink: &str, acks: u64) {
    let (edge_dir, collector_dir) = (test_dir(), test_dir());
    let acked = edge_dir.path().join("acked");
    let out = collector_dir.path().join("out");
    let port = unused_port();
    let collector_cfg = collector_config(collector_dir.path(), port, extra_source);
    let edge_cfg = edge_config(edge_dir.path(), port, extra_sink);
    let mut collector = Agent::start(collector_dir.path(), "c", &collector_cfg, &[]);
    collector.wait_for_port("r1");
    let mut edge = Agent::start(edge_dir.path(), "a1", &edge_cfg, &[]);
    let mut next = 0;
    let mut kills = 0u64;
    for victim in ["collector", "edge"] {
        let sender = spawn_oracle_netcat(edge.wait_for_port("r1"), &acked, next, 30);
        let before = acked_count(&acked);
        wait_until("events flowing", DEADLINE, || {
            acked_count(&acked) > before + 500 && count_output_lines(&out) > 0
        });
        let killed = if victim == "collector" {
            &mut collector
        } else {
            &mut edge
        };
        killed.signal("KILL");
        killed.wait();
        kills += 1;
        if victim == "edge" {
            let (ok, summary) = sender.join().expect("sender");
            assert!(ok, "{summary}");
            next = oracle_next(&summary);
            edge = Agent::start(edge_dir.path(), "a1", &edge_cfg, &[]);
        } else {
            // The edge keeps accepting into its file channel while the collector is down.
            let grew = acked_count(&acked);
            wait_until("the edge buffering", DEADLINE, || {
                acked_count(&acked) > grew + 200
            });
            collector = Agent::start(collector_dir.path(), "c", &collector_cfg, &[]);
            collector.wait_for_port("r1");
            edge.signal("KILL");
            edge.wait();
            kills += 1;
            let (ok, summary) = sender.join().expect("sender");
            assert!(ok, "{summary}");
            next = oracle_next(&summary);
            edge = Agent::start(edge_dir.path(), "a1", &edge_cfg, &[]);
        }
    }
    edge.wait_for_port("r1");
    wait_until(
        "every acknowledged event at the collector",
        DEADLINE,
        || acked_missing(&out, &acked) == 0,
    );
    assert!(edge.terminate().success(), "{}", edge.log());
    assert!(collector.terminate().success(), "{}", collector.log());
    // Per kill: the edge's sink may resend its open takes (commits in flight and the one in
    // hand), the collector's sink may rewrite its own, and a sender resends one line.
    let in_flight = flumen::sink::slot::COMMITS_IN_FLIGHT as u64 + acks;
    let (ok, verdict) = oracle_verify(&out, &acked, kills * (2 * in_flight * BATCH + 1));
    eprintln!("{} acknowledged; oracle: {verdict}", acked_count(&acked));
    assert!(ok, "oracle: {verdict}");
}

#[test]
fn two_tiers_lose_no_acknowledged_event_when_either_is_killed() {
    two_tiers_survive_kill_9("", "", 1);
}

#[test]
fn two_tiers_with_concurrent_calls_lose_no_acknowledged_event_when_either_is_killed() {
    two_tiers_survive_kill_9("", "a1.sinks.k1.concurrency = 4\n", 4);
}

#[test]
fn two_tiers_with_deflate_lose_no_acknowledged_event_when_either_is_killed() {
    two_tiers_survive_kill_9(
        "c.sources.r1.compression-type = deflate\n",
        "a1.sinks.k1.compression-type = deflate\na1.sinks.k1.compression-level = 9\n",
        1,
    );
}

/// A ping from a client Java would be: handshake (our own hash), empty metadata, empty name.
fn ping_bytes() -> Vec<u8> {
    let mut payload = Vec::new();
    flumen_avro_rpc::protocol::ClientSession::default().request(&[0, 0], &mut payload);
    let mut framed = Vec::new();
    flumen_avro_rpc::frame::encode(1, &payload, &mut framed).expect("framed");
    framed
}

/// Sends `bytes` and reads until the server closes or 2 s pass; returns what came back and
/// whether the server closed.
fn exchange(port: u16, bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.len() >= 8 {
                    // One answer is enough: a whole frame has arrived once its length is in.
                    return (got, false);
                }
            }
            // A server that closes with our bytes unread resets the connection: closed too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

#[test]
fn ip_filter_refuses_and_admits_as_configured() {
    let dir = test_dir();
    let port = unused_port();
    let deny = collector_config(
        dir.path(),
        port,
        "c.sources.r1.ipFilter = true\nc.sources.r1.ipFilterRules = deny:ip:127.*,allow:ip:*\n",
    );
    let mut c = Agent::start(dir.path(), "c", &deny, &[]);
    c.wait_for_port("r1");
    let (answer, closed) = exchange(port, &ping_bytes());
    assert!(answer.is_empty() && closed, "refused: {answer:?}");
    c.wait_for_log(&["refused by ipFilter"]);
    assert!(c.terminate().success(), "{}", c.log());

    let allow = collector_config(
        dir.path(),
        port,
        "c.sources.r1.ipFilter = true\nc.sources.r1.ipFilterRules = allow:name:localhost,deny:ip:*\n",
    );
    let mut c = Agent::start(dir.path(), "c", &allow, &[]);
    c.wait_for_port("r1");
    let (answer, _) = exchange(port, &ping_bytes());
    assert_eq!(
        &answer[..4],
        &1i32.to_be_bytes(),
        "answered with the ping's serial"
    );
    assert!(c.terminate().success(), "{}", c.log());
}

#[test]
fn hostile_clients_are_dropped_and_a_well_behaved_edge_is_still_served() {
    let (edge_dir, collector_dir) = (test_dir(), test_dir());
    let out = collector_dir.path().join("out");
    let port = unused_port();
    let mut collector = collector_taking_1_mib(collector_dir.path(), port);
    let frame_of = |count: i32, len: i32| {
        let mut v = Vec::new();
        v.extend(7i32.to_be_bytes());
        v.extend(count.to_be_bytes());
        v.extend(len.to_be_bytes());
        v
    };
    // Garbage, an absurd buffer count, an absurd length: each closed without an answer.
    let garbage = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01\x02".to_vec();
    for (what, bytes) in [
        ("garbage", garbage),
        ("absurd count", frame_of(i32::MAX, 4)),
        ("absurd length", frame_of(1, i32::MAX)),
        ("not Avro", {
            let mut v = frame_of(1, 4);
            v.extend(b"\xff\xff\xff\xff");
            v
        }),
    ] {
        let (answer, closed) = exchange(port, &bytes);
        assert!(closed && answer.is_empty(), "{what}: {answer:?}");
    }
    // Absurd counts and lengths were refused before their bytes: nothing big was allocated.
    let resident = rss(collector.pid());
    assert!(resident < 128 << 20, "collector RSS {} MiB", resident >> 20);
    // A truncated frame, then silence: held open, costing its few bytes.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    stalled.write_all(&frame_of(1, 1000)[..]).expect("sending");
    stalled.write_all(&[0u8; 10]).expect("sending");
    // A well-behaved edge is served meanwhile.
    let lines: String = (0..50).map(|i| format!("ok-{i}\n")).collect();
    let mut edge = edge_sending(edge_dir.path(), port, &lines);
    wait_until("50 events at the collector", DEADLINE, || {
        count_output_lines(&out) >= 50
    });
    assert!(collector.is_running());
    drop(stalled);
    assert!(edge.terminate().success(), "{}", edge.log());
    assert!(collector.terminate().success(), "{}", collector.log());
    let log = collector.log();
    assert!(log.contains("Closed a connection"), "{log}");
}

#[test]
fn a_collector_dying_between_its_commit_and_its_ok_gets_the_batch_again() {
    let (edge_dir, collector_dir) = (test_dir(), test_dir());
    let out = collector_dir.path().join("out");
    let port = unused_port();
    let collector_cfg = collector_config(collector_dir.path(), port, "");
    std::fs::write(
        collector_dir.path().join("agent.properties"),
        &collector_cfg,
    )
    .expect("writing the config");
    let mut cmd = std::process::Command::new(flumen_bin());
    cmd.args(["agent", "-n", "c", "-f"])
        .arg(collector_dir.path().join("agent.properties"))
        .env("FLUMEN_FAILPOINTS", "avro-source-after-commit");
    let mut crashing = Agent::spawn(cmd, collector_dir.path());
    crashing.wait_for_port("r1");
    let lines: String = (0..40).map(|i| format!("ev-{i:010} x\n")).collect();
    let mut edge = edge_sending(edge_dir.path(), port, &lines);
    // The collector commits the first batch it receives, then dies before answering.
    let status = crashing.wait();
    assert!(!status.success(), "the failpoint ended the collector");
    assert!(
        crashing.log().contains("Failpoint reached"),
        "{}",
        crashing.log()
    );
    let mut collector = Agent::start(collector_dir.path(), "c", &collector_cfg, &[]);
    collector.wait_for_port("r1");
    wait_until("all 40 events at the collector", DEADLINE, || {
        let mut bodies = output_lines(&out);
        bodies.sort();
        bodies.dedup();
        bodies.len() >= 40
    });
    assert!(edge.terminate().success(), "{}", edge.log());
    assert!(collector.terminate().success(), "{}", collector.log());
    let all = output_lines(&out);
    let mut distinct = all.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 40, "none lost");
    assert!(
        all.len() > distinct.len(),
        "the committed but unanswered batch came again ({} lines)",
        all.len()
    );
}

/// Starts a collector on `port` that takes at most 1 MiB per request.
fn collector_taking_1_mib(dir: &Path, port: u16) -> Agent {
    let cfg = collector_config(dir, port, "c.sources.r1.maxFrameBytes = 1048576\n");
    let mut collector = Agent::start(dir, "c", &cfg, &[]);
    collector.wait_for_port("r1");
    collector
}

/// Starts an edge forwarding to `port` and sends it `lines` (one event each), asserting that
/// every line was acknowledged.
fn edge_sending(dir: &Path, port: u16, lines: &str) -> Agent {
    let mut edge = Agent::start(dir, "a1", &edge_config(dir, port, ""), &[]);
    let edge_port = edge.wait_for_port("r1");
    let answer = tcp_send(edge_port, lines.as_bytes());
    let n = lines.lines().count();
    assert_eq!(String::from_utf8_lossy(&answer).matches("OK").count(), n);
    edge
}

/// Runs `flumen avro-client ARGS` with `stdin`; asserts success.
fn avro_client(args: &[&str], stdin: &[u8]) {
    use std::process::Stdio;
    let mut child = std::process::Command::new(flumen_bin())
        .arg("avro-client")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting avro-client");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin).expect("writing stdin");
    }
    let out = child.wait_with_output().expect("avro-client");
    assert!(
        out.status.success(),
        "avro-client {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn avro_client_sends_a_file_a_directory_and_stdin_with_headers() {
    let dir = test_dir();
    let port = unused_port();
    let cfg = collector_config(dir.path(), port, "").replace(
        "sink.serializer = TEXT",
        "sink.serializer = HEADER_AND_TEXT",
    );
    let mut collector = Agent::start(dir.path(), "c", &cfg, &[]);
    collector.wait_for_port("r1");
    let p = port.to_string();
    let headers = dir.path().join("headers.properties");
    std::fs::write(&headers, "host = edge-1\n").expect("writing");
    let file = dir.path().join("one.log");
    std::fs::write(&file, "f1\r\nf2\nf3\n").expect("writing");
    let h = headers.to_string_lossy().into_owned();
    let f = file.to_string_lossy().into_owned();
    avro_client(&["-H", "127.0.0.1", "-p", &p, "-F", &f, "-R", &h], b"");
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).expect("mkdir");
    std::fs::write(spool.join("a"), "d1\nd2\n").expect("writing");
    std::fs::write(spool.join("b"), "d3\n").expect("writing");
    let s = spool.to_string_lossy().into_owned();
    avro_client(&["-H", "127.0.0.1", "-p", &p, "--dirname", &s], b"");
    // RPC properties: a failover client whose first host is dead.
    let props = dir.path().join("rpc.properties");
    std::fs::write(
        &props,
        format!(
            "client.type = default_failover\nhosts = h1 h2\nhosts.h1 = 127.0.0.1:{}\nhosts.h2 = 127.0.0.1:{port}\nconnect-timeout = 1000\n",
            unused_port()
        ),
    )
    .expect("writing");
    let r = props.to_string_lossy().into_owned();
    avro_client(&["-P", &r], b"s1\ns2\n");
    let out = dir.path().join("out");
    wait_until("8 events at the collector", DEADLINE, || {
        count_output_lines(&out) >= 8
    });
    assert!(collector.terminate().success(), "{}", collector.log());
    let mut lines = output_lines(&out);
    lines.sort();
    let mut expected: Vec<String> = [
        "{host=edge-1} f1",
        "{host=edge-1} f2",
        "{host=edge-1} f3",
        "{} d1",
        "{} d2",
        "{} d3",
        "{} s1",
        "{} s2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    expected.sort();
    assert_eq!(lines, expected);
}

#[test]
fn a_take_larger_than_the_collectors_frame_limit_goes_in_several_calls() {
    let (edge_dir, collector_dir) = (test_dir(), test_dir());
    let out = collector_dir.path().join("out");
    let port = unused_port();
    let mut collector = collector_taking_1_mib(collector_dir.path(), port);
    // 30 lines of 100 KB: one take of 3 MB against a collector taking 1 MiB per request.
    let mut edge = Agent::start(
        edge_dir.path(),
        "a1",
        &edge_config(edge_dir.path(), port, "a1.sinks.k1.batchBytes = 524288\n").replace(
            "a1.sources.r1.ack-every-event = true",
            "a1.sources.r1.ack-every-event = true\na1.sources.r1.max-line-length = 200000",
        ),
        &[],
    );
    let edge_port = edge.wait_for_port("r1");
    let lines: String = (0..30)
        .map(|i| format!("big-{i:02} {}\n", "x".repeat(100_000)))
        .collect();
    let answer = tcp_send(edge_port, lines.as_bytes());
    assert_eq!(String::from_utf8_lossy(&answer).matches("OK").count(), 30);
    wait_until("30 large events at the collector", DEADLINE, || {
        count_output_lines(&out) >= 30
    });
    assert!(edge.terminate().success(), "{}", edge.log());
    assert!(collector.terminate().success(), "{}", collector.log());
    let mut got: Vec<String> = output_lines(&out)
        .iter()
        .map(|l| l[..6].to_string())
        .collect();
    got.sort();
    let expected: Vec<String> = (0..30).map(|i| format!("big-{i:02}")).collect();
    assert_eq!(got, expected, "each once");
}
