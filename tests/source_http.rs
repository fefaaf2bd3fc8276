//! The `http` source through the real binary: JSON and blob handlers, status codes, a full
//! channel, and the delivery oracle.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;

use common::*;

fn config(out: &Path, source_extra: &str, channel_extra: &str, sink_extra: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = http\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = 0\n\
         a1.sources.r1.channels = c1\n\
         {source_extra}\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         {channel_extra}\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.serializer = HEADER_AND_TEXT\n\
         {sink_extra}\n",
        out.display()
    )
}

fn post_json(port: u16, body: &str) -> (u16, String) {
    http_request(
        port,
        "POST",
        "/",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

#[test]
fn json_batches_arrive_with_headers_unicode_and_quotes() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let mut agent = Agent::start(dir.path(), "a1", &config(&out, "", "", ""), &[]);
    let port = agent.port_of("r1");
    let (status, _) = post_json(
        port,
        r#"[{"headers":{"host":"web-1","n":"1"},"body":"h\u00e9llo \"quoted\" ☃"},{"headers":{},"body":"second"}]"#,
    );
    assert_eq!(status, 200);
    let (status, _) = post_json(port, r#"[{"headers":{"k":"v"},"body":"third"}]"#);
    assert_eq!(status, 200);
    wait_until("three events in the output", DEADLINE, || {
        count_output_lines(&out) >= 3
    });
    let lines = output_lines(&out);
    assert_eq!(
        lines,
        [
            "{host=web-1, n=1} héllo \"quoted\" ☃",
            "{} second",
            "{k=v} third"
        ]
    );
    assert!(agent.terminate().success());
}

#[test]
fn malformed_requests_get_400_and_the_source_keeps_serving() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let mut agent = Agent::start(dir.path(), "a1", &config(&out, "", "", ""), &[]);
    let port = agent.port_of("r1");
    for bad in [
        "[{\"headers\":{},\"body\":\"x\"",
        "{\"headers\":{},\"body\":\"x\"}",
        "[{\"body\":[1,2]}]",
    ] {
        let (status, reason) = post_json(port, bad);
        assert_eq!(status, 400, "{bad}: {reason}");
        assert!(reason.contains("Bad request"), "{reason}");
    }
    let (status, _) = http_request(port, "OPTIONS", "/", &[], b"");
    assert_eq!(status, 403);
    let (status, _) = http_request(port, "PUT", "/", &[], b"[]");
    assert_eq!(status, 405);
    let (status, _) = post_json(port, r#"[{"headers":{},"body":"after"}]"#);
    assert_eq!(status, 200);
    wait_until("the good event", DEADLINE, || count_output_lines(&out) >= 1);
    assert_eq!(output_lines(&out), ["{} after"]);
    assert!(agent.terminate().success());
}

#[test]
fn keep_alive_connection_survives_a_bad_request() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let mut agent = Agent::start(dir.path(), "a1", &config(&out, "", "", ""), &[]);
    let port = agent.port_of("r1");
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    s.set_read_timeout(Some(DEADLINE)).ok();
    let mut reader = BufReader::new(s.try_clone().expect("cloning the stream"));
    for (body, expected) in [
        ("not json", 400),
        (r#"[{"body":"one"}]"#, 200),
        (r#"[{"body":"two"}]"#, 200),
    ] {
        let req = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).expect("sending");
        let mut status_line = String::new();
        reader.read_line(&mut status_line).expect("status line");
        assert!(
            status_line.contains(&format!(" {expected} ")),
            "{status_line}"
        );
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).expect("header");
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("length");
            }
        }
        let mut rest = vec![0u8; length];
        reader.read_exact(&mut rest).expect("body");
    }
    wait_until("two events", DEADLINE, || count_output_lines(&out) >= 2);
    assert_eq!(output_lines(&out), ["{} one", "{} two"]);
    assert!(agent.terminate().success());
}

#[test]
fn too_many_events_or_bytes_get_413() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let cfg = config(
        &out,
        "a1.sources.r1.maxRequestBytes = 2000",
        "a1.channels.c1.transactionCapacity = 5",
        "a1.sinks.k1.sink.batchSize = 5",
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.port_of("r1");
    let six: Vec<String> = (0..6).map(|i| format!(r#"{{"body":"e{i}"}}"#)).collect();
    let (status, reason) = post_json(port, &format!("[{}]", six.join(",")));
    assert_eq!(status, 413, "{reason}");
    assert!(reason.contains("transactionCapacity"), "{reason}");
    let big = format!(r#"[{{"body":"{}"}}]"#, "x".repeat(5000));
    let (status, reason) = post_json(port, &big);
    assert_eq!(status, 413, "{reason}");
    assert!(reason.contains("maxRequestBytes"), "{reason}");
    let (status, _) = post_json(port, &format!("[{}]", six[..5].join(",")));
    assert_eq!(status, 200);
    wait_until("five events", DEADLINE, || count_output_lines(&out) >= 5);
    assert_eq!(output_lines(&out).len(), 5);
    assert!(agent.terminate().success());
}

#[test]
fn full_channel_gives_503_and_a_retry_succeeds_without_duplicates() {
    let dir = test_dir();
    // The sink's directory lies under a regular file, so every write fails until it is removed.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"not a directory").expect("writing the blocker");
    let out = blocker.join("out");
    let cfg = config(
        &out,
        "",
        "a1.channels.c1.capacity = 4\na1.channels.c1.transactionCapacity = 4\na1.channels.c1.keep-alive = 0",
        "a1.sinks.k1.sink.batchSize = 4",
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.port_of("r1");
    let batch = |a: usize, b: usize| -> String {
        let items: Vec<String> = (a..b).map(|i| format!(r#"{{"body":"ev{i}"}}"#)).collect();
        format!("[{}]", items.join(","))
    };
    let (status, _) = post_json(port, &batch(0, 4));
    assert_eq!(status, 200);
    let (status, reason) = post_json(port, &batch(4, 6));
    assert_eq!(status, 503, "{reason}");
    assert!(reason.contains("full"), "{reason}");
    std::fs::remove_file(&blocker).expect("removing the blocker");
    let mut retried = 0;
    wait_until("the retried batch to be accepted", DEADLINE, || {
        retried += 1;
        post_json(port, &batch(4, 6)).0 == 200
    });
    assert!(retried >= 1);
    wait_until("six events", DEADLINE, || count_output_lines(&out) >= 6);
    assert!(agent.terminate().success());
    let mut lines = output_lines(&out);
    lines.sort();
    let expected: Vec<String> = {
        let mut v: Vec<String> = (0..6).map(|i| format!("{{}} ev{i}")).collect();
        v.sort();
        v
    };
    assert_eq!(lines, expected, "every acknowledged event once");
}

#[test]
fn blob_handler_takes_query_parameters_as_headers() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let cfg = config(
        &out,
        "a1.sources.r1.handler = org.apache.flume.sink.solr.morphline.BlobHandler\n\
         a1.sources.r1.handler.maxBlobLength = 10",
        "",
        "",
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.port_of("r1");
    let (status, _) = http_request(
        port,
        "POST",
        "/?resourceName=a%20b.txt&x=1&x=2",
        &[("Content-Type", "text/plain")],
        b"blob body that is cut",
    );
    assert_eq!(status, 200);
    wait_until("the blob event", DEADLINE, || count_output_lines(&out) >= 1);
    assert_eq!(
        output_lines(&out),
        ["{Content-Type=text/plain, resourceName=a b.txt, x=1} blob body "]
    );
    assert!(agent.terminate().success());
}

#[test]
fn oracle_acknowledged_events_all_arrive_once() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let mut agent = Agent::start(dir.path(), "a1", &config(&out, "", "", ""), &[]);
    let port = agent.port_of("r1");
    let url = format!("http://127.0.0.1:{port}/");
    let acked = dir.path().join("acked.txt");
    let acked = acked.to_str().expect("utf-8 path");
    let (ok, report) = run_oracle(&[
        "http", &url, "--acked", acked, "--count", "2000", "--batch", "100",
    ]);
    assert!(ok, "{report}");
    wait_until("2000 events written", DEADLINE, || {
        count_output_lines(&out) >= 2000
    });
    assert!(agent.terminate().success());
    let outdir = out.to_str().expect("utf-8 path");
    let (ok, report) = run_oracle(&["verify", outdir, "--acked", acked, "--max-duplicates", "0"]);
    assert!(ok, "{report}");
}
