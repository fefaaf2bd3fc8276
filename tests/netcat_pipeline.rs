//! netcat → memory → file_roll through the real binary.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use common::*;

fn config(
    out: &std::path::Path,
    ack: bool,
    capacity: usize,
    tx: usize,
    sink_extra: &str,
) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = 0\n\
         a1.sources.r1.ack-every-event = {ack}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = {capacity}\n\
         a1.channels.c1.transactionCapacity = {tx}\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.batchSize = {tx}\n\
         {sink_extra}",
        out.display()
    )
}

fn send_lines(port: u16, lines: impl Iterator<Item = String>) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    // A stalled agent fails the test instead of hanging it.
    stream
        .set_write_timeout(Some(DEADLINE))
        .expect("write timeout");
    let mut w = std::io::BufWriter::with_capacity(1 << 16, stream);
    for l in lines {
        w.write_all(l.as_bytes()).expect("send");
        w.write_all(b"\n").expect("send");
    }
    w.flush().expect("flush");
}

fn assert_exactly(out: &std::path::Path, expected: &[String]) {
    let mut got = output_lines(out);
    got.sort();
    let mut want = expected.to_vec();
    want.sort();
    if got != want {
        let mut counts: HashMap<&String, i64> = HashMap::new();
        for l in &got {
            *counts.entry(l).or_default() += 1;
        }
        for l in &want {
            *counts.entry(l).or_default() -= 1;
        }
        let dup = counts.values().filter(|&&c| c > 0).count();
        let missing = counts.values().filter(|&&c| c < 0).count();
        panic!(
            "output differs: {} lines, {} expected; {dup} duplicated or unexpected, {missing} missing",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn two_hundred_thousand_distinct_lines_arrive_exactly() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let mut agent = Agent::start(
        dir.path(),
        "a1",
        &config(&out, false, 100_000, 10_000, ""),
        &[],
    );
    let port = agent.port_of("r1");
    let lines: Vec<String> = (0..200_000)
        .map(|i| format!("line-{i:07}-payload"))
        .collect();
    send_lines(port, lines.iter().cloned());
    wait_until("200000 lines in the output", DEADLINE, || {
        count_output_lines(&out) >= lines.len()
    });
    let status = agent.terminate();
    assert!(status.success(), "exit {status:?}; log:\n{}", agent.log());
    assert_exactly(&out, &lines);
}

#[test]
fn ack_every_event_answers_ok_once_committed() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let mut agent = Agent::start(dir.path(), "a1", &config(&out, true, 100, 100, ""), &[]);
    let port = agent.port_of("r1");
    let answer = tcp_send(port, b"one\ntwo\r\nthree\n");
    assert_eq!(String::from_utf8_lossy(&answer), "OK\nOK\nOK\n");
    wait_until("3 lines", DEADLINE, || count_output_lines(&out) >= 3);
    assert!(agent.terminate().success());
    let got = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .flat_map(|e| std::fs::read(e.path()).unwrap())
        .collect::<Vec<u8>>();
    // Bytes are kept as sent, carriage return included (as Flume keeps it).
    assert_eq!(got, b"one\ntwo\r\nthree\n");
}

#[test]
fn an_over_long_line_gets_flumes_reply_after_the_lines_before_it() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let extra = "a1.sources.r1.max-line-length = 10\n";
    let cfg = config(&out, true, 100, 100, "").replace(
        "a1.sources.r1.channels = c1\n",
        &format!("a1.sources.r1.channels = c1\n{extra}"),
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.port_of("r1");
    let answer = tcp_send(port, b"123456789\n1234567890\nnever\n");
    assert_eq!(
        String::from_utf8_lossy(&answer),
        "OK\nFAILED: Event exceeds the maximum length (10 chars, including newline)\n"
    );
    // The agent keeps serving other clients.
    assert_eq!(tcp_send(port, b"after\n"), b"OK\n");
    wait_until("2 lines", DEADLINE, || count_output_lines(&out) >= 2);
    assert!(agent.terminate().success());
    let mut got = output_lines(&out);
    got.sort();
    assert_eq!(got, ["123456789", "after"]);
}

#[test]
fn a_slow_sink_pushes_back_without_loss_or_overflow() {
    let dir = test_dir();
    let out = dir.path().join("out");
    // 100-event channel, sink limited to 20,000 events/s: the sender is far faster.
    let cfg = config(
        &out,
        false,
        100,
        100,
        "a1.sinks.k1.maxEventsPerSecond = 20000\n",
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.port_of("r1");
    let lines: Vec<String> = (0..60_000)
        .map(|i| format!("bp-{i:06}-{}", "x".repeat(200)))
        .collect();
    send_lines(port, lines.iter().cloned());
    wait_until("all lines in the output", DEADLINE, || {
        count_output_lines(&out) >= lines.len()
    });
    let status = agent.terminate();
    assert!(status.success(), "log:\n{}", agent.log());
    assert_exactly(&out, &lines);
    let report = agent.wait_for_log(&["Channel drained.", "channel=c1"]);
    let peak: usize = report
        .split_whitespace()
        .find_map(|w| w.strip_prefix("peak="))
        .and_then(|v| v.parse().ok())
        .expect("peak in the drain report");
    assert!(peak <= 100, "channel held {peak} events, capacity 100");
    assert!(peak > 0);
}

#[test]
fn sigterm_mid_stream_keeps_every_acknowledged_event() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let acked = dir.path().join("acked");
    let mut agent = Agent::start(dir.path(), "a1", &config(&out, true, 1000, 100, ""), &[]);
    let port = agent.port_of("r1").to_string();
    let acked_s = acked.to_string_lossy().to_string();
    let sender = std::thread::spawn(move || {
        run_oracle(&[
            "netcat",
            "127.0.0.1",
            &port,
            "--acked",
            &acked_s,
            "--seconds",
            "20",
        ])
    });
    wait_until("some acknowledged events", DEADLINE, || {
        std::fs::read_to_string(&acked)
            .map(|s| s.lines().count() > 200)
            .unwrap_or(false)
    });
    let status = agent.terminate();
    assert!(status.success(), "log:\n{}", agent.log());
    let (ok, summary) = sender.join().expect("sender thread");
    assert!(ok, "sender: {summary}");
    let (ok, verdict) = run_oracle(&[
        "verify",
        &out.to_string_lossy(),
        "--acked",
        &acked.to_string_lossy(),
        "--max-duplicates",
        "0",
    ]);
    assert!(ok, "oracle: {verdict}");
}

#[test]
fn a_stalled_sink_at_shutdown_reports_the_loss_and_exits_non_zero() {
    let dir = test_dir();
    // A directory under a regular file can never be created: every delivery fails.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let out = blocker.join("out");
    let mut agent = Agent::start(
        dir.path(),
        "a1",
        &config(&out, true, 100, 100, ""),
        &["--shutdown-timeout", "0.5"],
    );
    let port = agent.port_of("r1");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"a\nb\nc\nd\ne\nf\ng\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    for _ in 0..7 {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        assert_eq!(l, "OK\n");
    }
    agent.wait_for_log(&["Delivery failed", "sink=k1"]);
    let status = agent.terminate();
    assert_eq!(status.code(), Some(3), "log:\n{}", agent.log());
    let line = agent.wait_for_log(&["lost", "channel=c1"]);
    assert!(line.contains("events=7"), "{line}");
    assert!(line.contains("ERROR"), "{line}");
}
