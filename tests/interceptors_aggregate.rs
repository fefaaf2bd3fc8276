//! The `aggregate` interceptor through the real binary: http (JSON events with `timestamp` and
//! value headers) → aggregate → memory → file_roll HEADER_AND_TEXT, on the source side and on
//! the sink side. Event time makes the summaries independent of speed.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

fn post_json(port: u16, body: &str) -> (u16, String) {
    http_request(
        port,
        "POST",
        "/",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// A JSON event with a timestamp, a host and a value header.
fn json_event(ts: i64, host: &str, v: &str, body: &str) -> String {
    format!(r#"{{"headers":{{"timestamp":"{ts}","host":"{host}","v":"{v}"}},"body":"{body}"}}"#)
}

/// How file_roll's HEADER_AND_TEXT writes an event: `{k=v, ...} body`.
fn line(headers: &[(&str, &str)], body: &str) -> String {
    let map: BTreeMap<&str, &str> = headers.iter().copied().collect();
    let inner: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}} {body}", inner.join(", "))
}

fn original(ts: i64, host: &str, v: &str, body: &str) -> String {
    let ts = ts.to_string();
    line(&[("timestamp", &ts), ("host", host), ("v", v)], body)
}

fn summary(
    function: &str,
    start: i64,
    host: &str,
    count: u64,
    value: &str,
    partial: bool,
) -> String {
    let (s, e, c) = (
        start.to_string(),
        (start + WINDOW).to_string(),
        count.to_string(),
    );
    let mut h = vec![
        ("timestamp", s.as_str()),
        ("host", host),
        ("flumen.agg.function", function),
        ("flumen.agg.window.start", s.as_str()),
        ("flumen.agg.window.end", e.as_str()),
        ("flumen.agg.count", c.as_str()),
        ("flumen.agg.value", value),
    ];
    if partial {
        h.push(("flumen.agg.partial", "true"));
    }
    line(&h, value)
}

const WINDOW: i64 = 1000;

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn source_side_sums_per_host_and_window_in_event_time() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let dead = dir.path().join("dead");
    let config = format!(
        "a1.sources = r1\n\
         a1.channels = c1 c2\n\
         a1.sinks = k1 k2\n\
         a1.sources.r1.type = http\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = 0\n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.errorChannel = c2\n\
         a1.sources.r1.interceptors = agg\n\
         a1.sources.r1.interceptors.agg.type = aggregate\n\
         a1.sources.r1.interceptors.agg.function = sum\n\
         a1.sources.r1.interceptors.agg.valueHeader = v\n\
         a1.sources.r1.interceptors.agg.groupBy = host\n\
         a1.sources.r1.interceptors.agg.windowMs = {WINDOW}\n\
         a1.sources.r1.interceptors.agg.time = event\n\
         a1.sources.r1.interceptors.agg.allowedLatenessMs = 500\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c2.type = memory\n\
         {}{}",
        sink("k1", "c1", &out),
        sink("k2", "c2", &dead),
    );
    let mut agent = Agent::start(dir.path(), "a1", &config, &[]);
    let port = agent.port_of("r1");
    let t0 = 1_000_000;
    let events = [
        (t0 + 100, "a", "4", "e1"),
        (t0 + 200, "b", "1", "e2"),
        (t0 + 1_300, "a", "6", "e3"),
        (t0 + 900, "a", "2", "e4"), // 400 ms behind the largest timestamp: on time
        (t0 + 1_999, "b", "7", "e5"),
        (t0 + 300, "a", "oops", "e6"), // not a number: dead-lettered
        (t0 + 2_600, "a", "8", "e7"),  // watermark t0 + 2100: two windows close
        (t0 + 500, "a", "100", "e8"),  // late: passes, marked, not summed
    ];
    let json: Vec<String> = events
        .iter()
        .map(|(ts, h, v, b)| json_event(*ts, h, v, b))
        .collect();
    let (status, body) = post_json(port, &format!("[{}]", json.join(",")));
    assert_eq!(status, 200, "{body}");

    let mut want: Vec<String> = events
        .iter()
        .filter(|(_, _, v, _)| *v != "oops" && *v != "100")
        .map(|(ts, h, v, b)| original(*ts, h, v, b))
        .collect();
    let late_ts = (t0 + 500).to_string();
    want.push(line(
        &[
            ("timestamp", &late_ts),
            ("host", "a"),
            ("v", "100"),
            ("flumen.agg.late", "true"),
        ],
        "e8",
    ));
    want.extend([
        summary("sum", t0, "a", 2, "6", false),
        summary("sum", t0, "b", 1, "1", false),
        summary("sum", t0 + 1_000, "a", 1, "6", false),
        summary("sum", t0 + 1_000, "b", 1, "7", false),
        // Closed by the processing clock once open for windowMs + allowedLatenessMs.
        summary("sum", t0 + 2_000, "a", 1, "8", false),
    ]);
    wait_until("originals and five summaries", DEADLINE, || {
        count_output_lines(&out) >= want.len() && count_output_lines(&dead) >= 1
    });
    let status = agent.terminate();
    assert!(status.success(), "exit {status:?}; log:\n{}", agent.log());
    assert_eq!(sorted(output_lines(&out)), sorted(want));

    let bad_ts = (t0 + 300).to_string();
    let reason = "no value to aggregate: header `v` `oops` is not a number";
    assert_eq!(
        output_lines(&dead),
        vec![line(
            &[
                ("timestamp", &bad_ts),
                ("host", "a"),
                ("v", "oops"),
                ("flumen.error.reason", reason),
                ("flumen.error.component", "r1"),
                ("flumen.error.interceptor", "agg"),
            ],
            "e6"
        )]
    );
}

#[test]
fn sink_side_counts_drop_originals_and_emit_partials_at_shutdown() {
    let dir = test_dir();
    let out = dir.path().join("out");
    // Ten-minute windows: the processing clock never closes them during the test.
    let window = 600_000;
    let config = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = http\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = 0\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         {}\
         a1.sinks.k1.interceptors = agg\n\
         a1.sinks.k1.interceptors.agg.type = aggregate\n\
         a1.sinks.k1.interceptors.agg.function = count\n\
         a1.sinks.k1.interceptors.agg.groupBy = host\n\
         a1.sinks.k1.interceptors.agg.windowMs = {window}\n\
         a1.sinks.k1.interceptors.agg.time = event\n\
         a1.sinks.k1.interceptors.agg.dropOriginals = true\n",
        sink("k1", "c1", &out),
    );
    let mut agent = Agent::start(dir.path(), "a1", &config, &[]);
    let port = agent.port_of("r1");
    let events = [
        (1_000, "a", "e1"),
        (2_000, "b", "e2"),
        (3_000, "a", "e3"),
        (2 * window, "a", "e4"), // closes window 0
        (5_000, "b", "e5"),      // late: passes, marked
    ];
    let json: Vec<String> = events
        .iter()
        .map(|(ts, h, b)| json_event(*ts, h, "x", b))
        .collect();
    let (status, body) = post_json(port, &format!("[{}]", json.join(",")));
    assert_eq!(status, 200, "{body}");

    let s = |start: i64, host: &str, count: u64, partial: bool| {
        let (st, e, c) = (
            start.to_string(),
            (start + window).to_string(),
            count.to_string(),
        );
        let mut h = vec![
            ("timestamp", st.as_str()),
            ("host", host),
            ("flumen.agg.function", "count"),
            ("flumen.agg.window.start", st.as_str()),
            ("flumen.agg.window.end", e.as_str()),
            ("flumen.agg.count", c.as_str()),
            ("flumen.agg.value", c.as_str()),
        ];
        if partial {
            h.push(("flumen.agg.partial", "true"));
        }
        line(&h, &c)
    };
    let late = line(
        &[
            ("timestamp", "5000"),
            ("host", "b"),
            ("v", "x"),
            ("flumen.agg.late", "true"),
        ],
        "e5",
    );
    let closed = vec![late, s(0, "a", 2, false), s(0, "b", 1, false)];
    // The periodic flush on the sink side emits the closed window before shutdown.
    wait_until("the late event and the closed window", DEADLINE, || {
        count_output_lines(&out) >= closed.len()
    });
    assert_eq!(sorted(output_lines(&out)), sorted(closed.clone()));

    let status = agent.terminate();
    assert!(status.success(), "exit {status:?}; log:\n{}", agent.log());
    let mut want = closed;
    want.push(s(2 * window, "a", 1, true));
    assert_eq!(sorted(output_lines(&out)), sorted(want));
}

fn sink(name: &str, channel: &str, dir: &Path) -> String {
    format!(
        "a1.sinks.{name}.type = file_roll\n\
         a1.sinks.{name}.channel = {channel}\n\
         a1.sinks.{name}.sink.directory = {}\n\
         a1.sinks.{name}.sink.rollInterval = 0\n\
         a1.sinks.{name}.sink.serializer = HEADER_AND_TEXT\n",
        dir.display()
    )
}
