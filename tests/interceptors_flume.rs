//! Flume's interceptors and Flumen's `throttle` through the real binary: a source, an
//! interceptor chain, a memory channel and a `file_roll` sink writing `HEADER_AND_TEXT`, and
//! `flumen check --json` on broken interceptor configs.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// An agent with source `r1` (given as its own lines), memory channel `c1` and a file_roll
/// sink `k1` into `out` that prints headers.
fn config(source: &str, out: &Path) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         {source}\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.batchSize = 100\n\
         a1.sinks.k1.sink.serializer = HEADER_AND_TEXT\n",
        out.display()
    )
}

const NETCAT: &str = "a1.sources.r1.type = netcat\n\
                      a1.sources.r1.bind = 127.0.0.1\n\
                      a1.sources.r1.port = 0\n";

fn seq(total: u64, batch: u64) -> String {
    format!(
        "a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {total}\n\
         a1.sources.r1.batchSize = {batch}\n"
    )
}

/// A `HEADER_AND_TEXT` line `{k=v, ...} body` split into headers and body.
fn parse(line: &str) -> (BTreeMap<String, String>, String) {
    let rest = line
        .strip_prefix('{')
        .unwrap_or_else(|| panic!("no headers in {line:?}"));
    let (headers, body) = rest
        .split_once("} ")
        .or_else(|| rest.strip_suffix('}').map(|h| (h, "")))
        .unwrap_or_else(|| panic!("bad line {line:?}"));
    let map = headers
        .split(", ")
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    (map, body.to_string())
}

fn this_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .expect("a host name")
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

#[test]
fn a_chain_of_flume_interceptors_sets_headers_rewrites_and_filters() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let p = "a1.sources.r1.interceptors";
    let chain = format!(
        "{NETCAT}\
         {p} = i0 i1 i2 i3 i4 i5 i6 i7\n\
         {p}.i0.type = static\n\
         {p}.i0.key = tmp_marker\n\
         {p}.i0.value = x\n\
         {p}.i1.type = regex_filter\n\
         {p}.i1.regex = DROP\n\
         {p}.i1.excludeEvents = true\n\
         {p}.i2.type = org.apache.flume.interceptor.RegexExtractorInterceptor$Builder\n\
         {p}.i2.regex = ^(\\\\w+) (\\\\d{{4}}-\\\\d\\\\d-\\\\d\\\\d \\\\d\\\\d:\\\\d\\\\d:\\\\d\\\\d [+-]\\\\d{{4}})\n\
         {p}.i2.serializers = lvl ts\n\
         {p}.i2.serializers.lvl.name = level\n\
         {p}.i2.serializers.ts.name = when\n\
         {p}.i2.serializers.ts.type = org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer\n\
         {p}.i2.serializers.ts.pattern = yyyy-MM-dd HH:mm:ss Z\n\
         {p}.i3.type = search_replace\n\
         {p}.i3.searchPattern = secret=(\\\\S)\\\\S*\n\
         {p}.i3.replaceString = secret=$1***\n\
         {p}.i4.type = TIMESTAMP\n\
         {p}.i5.type = host\n\
         {p}.i5.useIP = false\n\
         {p}.i5.hostHeader = hostname\n\
         {p}.i6.type = org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder\n\
         {p}.i6.prefix = ev-\n\
         {p}.i7.type = remove_header\n\
         {p}.i7.matching = tmp_.*\n"
    );
    let mut agent = Agent::start(dir.path(), "a1", &config(&chain, &out), &[]);
    let port = agent.port_of("r1");
    let before = now_ms();
    let lines = [
        "INFO 2012-10-17 14:34:44 +0000 user=alice secret=hunter2",
        "DEBUG DROP this one",
        "no date here secret=abc",
        "WARN 2012-10-17 16:34:44 +0200 DROP too",
    ];
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    for l in lines {
        writeln!(stream, "{l}").expect("send");
    }
    stream.flush().expect("flush");
    wait_until("two lines out", DEADLINE, || count_output_lines(&out) >= 2);
    let mut got: Vec<_> = output_lines(&out).iter().map(|l| parse(l)).collect();
    got.sort_by(|a, b| a.1.cmp(&b.1));
    let after = now_ms();
    assert_eq!(got.len(), 2, "{got:?}");
    let host = this_host_name();
    let bodies: Vec<&str> = got.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "INFO 2012-10-17 14:34:44 +0000 user=alice secret=h***",
            "no date here secret=a***"
        ]
    );
    let (h0, h1) = (&got[0].0, &got[1].0);
    assert_eq!(h0.get("level").map(String::as_str), Some("INFO"));
    assert_eq!(h0.get("when").map(String::as_str), Some("1350484484000"));
    assert!(
        !h1.contains_key("level") && !h1.contains_key("when"),
        "{h1:?}"
    );
    let mut ids = Vec::new();
    for h in [h0, h1] {
        let ts: u128 = h["timestamp"].parse().expect("numeric timestamp");
        assert!(
            before <= ts && ts <= after,
            "{ts} not in [{before}, {after}]"
        );
        assert_eq!(h.get("hostname"), Some(&host));
        assert!(!h.contains_key("tmp_marker"), "{h:?}");
        let id = h["id"].strip_prefix("ev-").expect("prefixed id");
        assert_eq!(id.len(), 36, "{id}");
        ids.push(id.to_string());
    }
    assert_ne!(ids[0], ids[1]);
    agent.terminate();
}

#[test]
fn host_by_default_sets_an_ip_address() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let src = format!(
        "{}a1.sources.r1.interceptors = h\na1.sources.r1.interceptors.h.type = host\n",
        seq(3, 3)
    );
    let mut agent = Agent::start(dir.path(), "a1", &config(&src, &out), &[]);
    wait_until("three lines out", DEADLINE, || {
        count_output_lines(&out) >= 3
    });
    for line in output_lines(&out) {
        let (h, _) = parse(&line);
        // Without a resolvable host name Flume sets no header; with one it is an IP address.
        if let Some(ip) = h.get("host") {
            assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{line}");
        }
    }
    agent.terminate();
}

#[test]
fn throttle_block_delays_but_loses_nothing() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let n = 50;
    let src = format!(
        "{}a1.sources.r1.interceptors = t\n\
         a1.sources.r1.interceptors.t.type = throttle\n\
         a1.sources.r1.interceptors.t.maxEvents = 10\n\
         a1.sources.r1.interceptors.t.period = 200\n",
        seq(n, 25)
    );
    let start = Instant::now();
    let mut agent = Agent::start(dir.path(), "a1", &config(&src, &out), &[]);
    wait_until("all events out", DEADLINE, || {
        count_output_lines(&out) >= n as usize
    });
    let elapsed = start.elapsed();
    let mut bodies: Vec<u64> = output_lines(&out)
        .iter()
        .map(|l| parse(l).1.parse().expect("a number"))
        .collect();
    bodies.sort_unstable();
    assert_eq!(bodies, (0..n).collect::<Vec<_>>());
    // 50 events at 10 per window: 5 windows, so at least 4 periods of 200 ms.
    assert!(elapsed >= Duration::from_millis(800), "{elapsed:?}");
    agent.terminate();
}

#[test]
fn throttle_drop_removes_events_over_the_limit_and_logs_the_count() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let n = 40;
    // One seq batch, one hour-long window: 5 pass and 35 are dropped at once.
    let src = format!(
        "{}a1.sources.r1.interceptors = t\n\
         a1.sources.r1.interceptors.t.type = throttle\n\
         a1.sources.r1.interceptors.t.maxEvents = 5\n\
         a1.sources.r1.interceptors.t.period = 3600000\n\
         a1.sources.r1.interceptors.t.policy = drop\n",
        seq(n, n)
    );
    let mut agent = Agent::start(dir.path(), "a1", &config(&src, &out), &[]);
    let line = agent.wait_for_log(&["Throttle dropped", "dropped_total="]);
    let dropped: usize = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("dropped_total="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"));
    wait_until("the kept events out", DEADLINE, || {
        count_output_lines(&out) >= 5
    });
    agent.terminate();
    let kept = output_lines(&out).len();
    assert!(kept < n as usize);
    assert_eq!(kept, 5);
    assert_eq!(kept + dropped, n as usize, "{line}");
}

/// Runs `flumen check --json -n a1 -f FILE`; returns the exit code and the JSON.
fn check(config: &str) -> (i32, Value) {
    let (code, json, _) = check_json(config, &[]);
    (code, json)
}

/// Asserts that the interceptor `i1` configured by `keys` makes `check` fail with a finding
/// on `a1.sources.r1.interceptors.i1.<key>`.
fn refused(keys: &str, key: &str) -> Value {
    let cfg = config(
        &format!("{}a1.sources.r1.interceptors = i1\n{keys}", seq(1, 1)),
        Path::new("/tmp/unused"),
    );
    let (code, json) = check(&cfg);
    assert_eq!(code, 1, "{json:#}");
    let full = format!("a1.sources.r1.interceptors.i1.{key}");
    json["findings"]
        .as_array()
        .and_then(|all| all.iter().find(|f| f["key"] == full.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("no finding on {full}: {json:#}"))
}

const I1: &str = "a1.sources.r1.interceptors.i1";

#[test]
fn a_valid_chain_of_every_type_passes_check_without_findings() {
    let keys = [
        ("timestamp", "headerName = ts"),
        ("host", "useIP = false"),
        ("remove_header", "fromList = a,b"),
        ("uuid", "prefix = p"),
        ("search_replace", "searchPattern = a"),
        ("regex_filter", "regex = x"),
        (
            "regex_extractor",
            "regex = (a)\nX.serializers = s\nX.serializers.s.name = h",
        ),
        ("throttle", "maxEvents = 5"),
    ];
    let mut cfg = format!("{}a1.sources.r1.interceptors =", seq(1, 1));
    for (i, _) in keys.iter().enumerate() {
        cfg.push_str(&format!(" i{i}"));
    }
    cfg.push('\n');
    for (i, (t, k)) in keys.iter().enumerate() {
        let prefix = format!("a1.sources.r1.interceptors.i{i}");
        cfg.push_str(&format!(
            "{prefix}.type = {t}\n{prefix}.{}\n",
            k.replace("X.", &format!("{prefix}."))
        ));
    }
    let (code, json) = check(&config(&cfg, Path::new("/tmp/unused")));
    assert_eq!(
        json["findings"].as_array().map(Vec::len),
        Some(0),
        "{json:#}"
    );
    assert_eq!(code, 0);
}

#[test]
fn an_invalid_filter_regex_is_refused_naming_the_key() {
    let f = refused(
        &format!("{I1}.type = regex_filter\n{I1}.regex = ([a-z]\n"),
        "regex",
    );
    assert_eq!(f["kind"], "bad-value", "{f}");
}

#[test]
fn a_missing_search_pattern_is_refused_naming_the_key() {
    refused(
        &format!("{I1}.type = search_replace\n{I1}.replaceString = x\n"),
        "searchPattern",
    );
}

#[test]
fn a_replacement_naming_a_missing_group_is_refused_naming_the_key() {
    refused(
        &format!("{I1}.type = search_replace\n{I1}.searchPattern = (a)\n{I1}.replaceString = $2\n"),
        "replaceString",
    );
}

#[test]
fn an_invalid_remove_header_regex_is_refused_naming_the_key() {
    refused(
        &format!("{I1}.type = remove_header\n{I1}.matching = *x\n"),
        "matching",
    );
}

#[test]
fn an_unknown_extractor_serializer_is_refused_naming_the_key() {
    refused(
        &format!(
            "{I1}.type = regex_extractor\n{I1}.regex = (a)\n{I1}.serializers = s1\n\
             {I1}.serializers.s1.name = h\n{I1}.serializers.s1.type = com.example.Mine\n"
        ),
        "serializers.s1.type",
    );
}

#[test]
fn a_millis_serializer_without_pattern_is_refused_naming_the_key() {
    refused(
        &format!(
            "{I1}.type = regex_extractor\n{I1}.regex = (a)\n{I1}.serializers = s1\n\
             {I1}.serializers.s1.name = h\n\
             {I1}.serializers.s1.type = org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer\n"
        ),
        "serializers.s1.pattern",
    );
}

#[test]
fn a_throttle_without_max_events_is_refused_naming_the_key() {
    refused(&format!("{I1}.type = throttle\n"), "maxEvents");
}

#[test]
fn a_throttle_with_zero_max_events_is_refused_naming_the_key() {
    refused(
        &format!("{I1}.type = throttle\n{I1}.maxEvents = 0\n"),
        "maxEvents",
    );
}

#[test]
fn a_bad_throttle_policy_is_refused_naming_the_key() {
    let f = refused(
        &format!("{I1}.type = throttle\n{I1}.maxEvents = 5\n{I1}.policy = dorp\n"),
        "policy",
    );
    assert_eq!(f["kind"], "bad-value", "{f}");
}
