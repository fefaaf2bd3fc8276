//! Monitoring through the real binary: Flume's `/metrics` JSON with exact counts, the
//! Prometheus exposition checked by a strict parser, `/health`, and Flume's `-D` switches.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use common::*;
use serde_json::Value;

fn config(capacity: usize, sink: &str) -> String {
    format!(
        "a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 0
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = {capacity}
a1.channels.c1.transactionCapacity = 10
a1.channels.c1.keep-alive = 0
a1.sinks.k1.channel = c1
{sink}",
    )
}

fn file_roll(dir: &std::path::Path) -> String {
    format!(
        "a1.sinks.k1.type = file_roll
a1.sinks.k1.sink.directory = {}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 10",
        dir.join("out").display()
    )
}

/// Sends lines one at a time over one connection; returns the replies.
fn send_acked(port: u16, lines: &[String]) -> Vec<String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).ok();
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut w = stream;
    let mut replies = Vec::new();
    for l in lines {
        w.write_all(format!("{l}\n").as_bytes()).expect("send");
        let mut reply = String::new();
        reader.read_line(&mut reply).expect("reply");
        replies.push(reply.trim().to_string());
    }
    replies
}

fn metrics(port: u16) -> Value {
    let (status, body) = http_request(port, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn get<'a>(m: &'a Value, component: &str, key: &str) -> &'a str {
    m[component][key]
        .as_str()
        .unwrap_or_else(|| panic!("{component}.{key} missing or not a string in {m}"))
}

#[test]
fn flume_json_counts_exactly_and_prometheus_parses() {
    let tmp = test_dir();
    let dir = tmp.path();
    let mut agent = Agent::start(
        dir,
        "a1",
        &config(1000, &file_roll(dir)),
        &["--metrics-addr", "127.0.0.1:0"],
    );
    let port = agent.wait_for_port("r1");
    let mport = agent.monitoring_port();
    let lines: Vec<String> = (0..57).map(|i| format!("line {i}")).collect();
    assert!(send_acked(port, &lines).iter().all(|r| r == "OK"));
    let out = dir.join("out");
    wait_until("57 lines written", DEADLINE, || {
        count_output_lines(&out) == 57
    });
    let mut m = metrics(mport);
    wait_until("the sink's counters", DEADLINE, || {
        m = metrics(mport);
        get(&m, "SINK.k1", "EventDrainSuccessCount") == "57"
    });
    for (component, key) in [
        ("SOURCE.r1", "EventReceivedCount"),
        ("SOURCE.r1", "EventAcceptedCount"),
        ("CHANNEL.c1", "EventPutAttemptCount"),
        ("CHANNEL.c1", "EventPutSuccessCount"),
        ("CHANNEL.c1", "EventTakeSuccessCount"),
        ("SINK.k1", "EventDrainAttemptCount"),
        ("SINK.k1", "EventDrainSuccessCount"),
    ] {
        assert_eq!(get(&m, component, key), "57", "{component}.{key} in {m}");
    }
    assert_eq!(get(&m, "SOURCE.r1", "Type"), "SOURCE");
    assert_eq!(get(&m, "CHANNEL.c1", "Type"), "CHANNEL");
    assert_eq!(get(&m, "SINK.k1", "Type"), "SINK");
    assert_eq!(get(&m, "CHANNEL.c1", "ChannelSize"), "0");
    assert_eq!(get(&m, "CHANNEL.c1", "ChannelCapacity"), "1000");
    assert_eq!(get(&m, "CHANNEL.c1", "ChannelFillPercentage"), "0.0");
    assert_eq!(get(&m, "SOURCE.r1", "OpenConnectionCount"), "0");
    assert_ne!(get(&m, "SINK.k1", "StartTime"), "0");
    assert_eq!(get(&m, "SINK.k1", "StopTime"), "0");
    // Every value is a string, as Flume's Gson map writes it.
    for (_, fields) in m.as_object().unwrap() {
        assert!(
            fields.as_object().unwrap().values().all(Value::is_string),
            "{fields}"
        );
    }
    let (status, text) = http_request(mport, "GET", "/prometheus", &[], b"");
    assert_eq!(status, 200);
    let samples = parse_prometheus(&text);
    let put = samples
        .iter()
        .find(|(name, labels, _)| {
            name == "flumen_channel_event_put_success_count" && labels.contains("component=\"c1\"")
        })
        .unwrap_or_else(|| panic!("no put counter in:\n{text}"));
    assert_eq!(put.2, 57.0);
    assert!(put.1.contains("agent=\"a1\"") && put.1.contains("type=\"memory\""));
    assert!(samples
        .iter()
        .any(|(n, _, v)| n == "process_resident_memory_bytes" && *v > 0.0));
    let (status, body) = http_request(mport, "GET", "/health", &[], b"");
    assert_eq!((status, body.as_str()), (200, "{\"status\":\"ok\"}"));
    let (status, body) = http_request(mport, "GET", "/topology", &[], b"");
    assert_eq!(status, 200);
    let shape: Value = serde_json::from_str(&body).expect("topology JSON");
    assert_eq!(shape["agent"], "a1");
    assert_eq!(
        shape["sources"][0],
        serde_json::json!(["r1", "netcat", ["c1"]])
    );
    assert_eq!(shape["sinks"][0][2], "c1");
    assert_eq!(http_request(mport, "GET", "/nope", &[], b"").0, 404);
    assert!(agent.terminate().success());
}

#[test]
fn a_full_channel_and_a_dead_sink_part_attempts_from_successes() {
    let tmp = test_dir();
    let dir = tmp.path();
    // An http sink to a port nobody listens on: every delivery fails and is rolled back.
    let dead_port = unused_port();
    let sink = format!(
        "a1.sinks.k1.type = http\na1.sinks.k1.endpoint = http://127.0.0.1:{dead_port}/\na1.sinks.k1.batchSize = 10"
    );
    let mut agent = Agent::start(
        dir,
        "a1",
        &config(10, &sink),
        &["-Dflume.monitoring.type=http", "-Dflume.monitoring.port=0"],
    );
    let port = agent.wait_for_port("r1");
    let mport = agent.monitoring_port();
    let lines: Vec<String> = (0..15).map(|i| format!("line {i}")).collect();
    let replies = send_acked(port, &lines);
    assert!(replies[..10].iter().all(|r| r == "OK"), "{replies:?}");
    assert!(
        replies[10..].iter().all(|r| r.starts_with("FAILED")),
        "{replies:?}"
    );
    let m = metrics(mport);
    assert_eq!(get(&m, "SOURCE.r1", "EventReceivedCount"), "15");
    assert_eq!(get(&m, "SOURCE.r1", "EventAcceptedCount"), "10");
    assert_eq!(get(&m, "SOURCE.r1", "ChannelWriteFail"), "5");
    assert_eq!(get(&m, "CHANNEL.c1", "EventPutAttemptCount"), "15");
    assert_eq!(get(&m, "CHANNEL.c1", "EventPutSuccessCount"), "10");
    assert_eq!(get(&m, "CHANNEL.c1", "EventTakeSuccessCount"), "0");
    assert_eq!(get(&m, "CHANNEL.c1", "ChannelFillPercentage"), "100.0");
    assert_eq!(get(&m, "SINK.k1", "EventDrainSuccessCount"), "0");
    // The channel handed events out (and got them back); the sink tried to deliver. Flume's http
    // sink moves one event per transaction, so these count from 1.
    let takes: u64 = get(&m, "CHANNEL.c1", "EventTakeAttemptCount")
        .parse()
        .unwrap();
    assert!(takes >= 1, "{takes}");
    let attempts: u64 = get(&m, "SINK.k1", "EventDrainAttemptCount")
        .parse()
        .unwrap();
    assert!(attempts >= 1, "{attempts}");
    // Flume's http sink counts a refused connection as EventWriteFail.
    assert_ne!(get(&m, "SINK.k1", "EventWriteFail"), "0");
    agent.terminate();
}

/// A strict reading of the Prometheus text format 0.0.4: `# HELP`/`# TYPE` before each
/// family's samples, valid names, quoted label values, numeric values.
fn parse_prometheus(text: &str) -> Vec<(String, String, f64)> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut typed = std::collections::HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap();
            let kind = parts.next().unwrap_or("");
            assert!(name_ok(name), "bad name: {line}");
            assert!(
                ["counter", "gauge", "untyped", "summary", "histogram"].contains(&kind),
                "{line}"
            );
            assert!(typed.insert(name.to_string()), "family typed twice: {line}");
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                let l = l
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                for pair in l.split(',') {
                    let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
                    assert!(name_ok(k), "bad label name: {line}");
                    assert!(
                        v.starts_with('"') && v.ends_with('"') && v.len() >= 2,
                        "{line}"
                    );
                }
                (n, l.to_string())
            }
            None => (series, String::new()),
        };
        assert!(name_ok(name), "bad name: {line}");
        assert!(typed.contains(name), "sample before its # TYPE: {line}");
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        samples.push((name.to_string(), labels, v));
    }
    samples
}

#[test]
fn a_file_channel_reports_flumes_file_channel_counters_and_a_memory_channel_does_not() {
    let tmp = test_dir();
    let dir = tmp.path();
    let file_channel = format!(
        "a1.channels.c1.type = file\na1.channels.c1.checkpointDir = {0}/cp\n\
         a1.channels.c1.dataDirs = {0}/data\na1.channels.c1.minimumRequiredSpace = 1048576\n",
        dir.display()
    );
    let memory_channel = "a1.channels.c1.type = memory\n".to_string();
    for (channel, has) in [(memory_channel, false), (file_channel, true)] {
        let cfg = format!(
            "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
             a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\n\
             a1.sources.r1.port = 0\na1.sources.r1.channels = c1\n{channel}\
             a1.sinks.k1.channel = c1\n{}\n",
            file_roll(dir)
        );
        let mut agent = Agent::start(dir, "a1", &cfg, &["--metrics-addr", "127.0.0.1:0"]);
        agent.wait_for_port("r1");
        let m = metrics(agent.monitoring_port());
        for key in [
            "EventPutErrorCount",
            "EventTakeErrorCount",
            "CheckpointWriteErrorCount",
            "CheckpointBackupWriteErrorCount",
            "Unhealthy",
        ] {
            assert_eq!(m["CHANNEL.c1"][key].is_string(), has, "{key} in {m}");
        }
        assert!(agent.terminate().success(), "{}", agent.log());
    }
}
