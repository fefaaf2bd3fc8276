//! Hot reload through the real binary: a config changed by atomic rename while 100,000 events
//! flow (nothing lost, the unchanged source keeps its connection), a removed channel drained or
//! its remainder reported, an invalid edit refused, SIGHUP, `--no-reload-conf`, a Kubernetes
//! style symlink swap, and a config URL polled.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// netcat r1 → memory c1 (capacity `cap`) → file_roll k1 (roll `roll` s), plus `extra`.
fn base(dir: &Path, cap: usize, roll: u32, sinks: &str, extra: &str) -> String {
    format!(
        "a1.sources = r1
a1.channels = c1
a1.sinks = {sinks}
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 0
a1.sources.r1.channels = c1
a1.sources.r1.max-line-length = 64
a1.channels.c1.type = memory
a1.channels.c1.capacity = {cap}
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {}
a1.sinks.k1.sink.rollInterval = {roll}
a1.sinks.k1.sink.batchSize = 100
{extra}",
        dir.join("out1").display()
    )
}

fn file_roll_k2(dir: &Path) -> String {
    format!(
        "a1.sinks.k2.type = file_roll
a1.sinks.k2.channel = c1
a1.sinks.k2.sink.directory = {}
a1.sinks.k2.sink.rollInterval = 0
a1.sinks.k2.sink.batchSize = 100
",
        dir.join("out2").display()
    )
}

/// Replaces the config file as editors and config managers do: write aside, then rename.
fn replace_config(dir: &Path, text: &str) {
    let tmp = dir.join(".agent.properties.tmp");
    std::fs::write(&tmp, text).expect("writing the new config");
    std::fs::rename(&tmp, dir.join("agent.properties")).expect("renaming the new config");
}

fn reload_args() -> Vec<&'static str> {
    // A long poll interval: every reload below comes from a file event (or SIGHUP).
    vec!["--poll-interval", "3600", "--shutdown-timeout", "20"]
}

/// Streams `total` lines over one connection from a writer thread paced at 25 lines per
/// millisecond (100,000 lines take 4 s, so a reload lands while they flow) and at most 5,000
/// lines ahead of the acknowledgements; another thread reads the `OK`s into `acked`. The returned handles end once every line is acknowledged.
fn stream_lines(
    port: u16,
    total: usize,
    acked: Arc<AtomicUsize>,
) -> Vec<std::thread::JoinHandle<()>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).ok();
    let reader = stream.try_clone().expect("clone");
    let counted = acked.clone();
    let acks = std::thread::spawn(move || {
        let mut r = BufReader::new(reader);
        let mut line = String::new();
        while counted.load(Ordering::SeqCst) < total {
            line.clear();
            let n = r.read_line(&mut line).expect("reading an ack");
            assert!(n > 0, "the source closed the connection");
            assert_eq!(line.trim(), "OK", "unexpected reply");
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let writer = std::thread::spawn(move || {
        let mut w = stream;
        let mut sent = 0;
        let start = Instant::now();
        while sent < total {
            let due = start + Duration::from_millis(sent as u64 / 25);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let ahead = Instant::now() + DEADLINE;
            while sent >= acked.load(Ordering::SeqCst) + 5000 {
                assert!(Instant::now() < ahead, "acknowledgements stopped");
                std::thread::sleep(Duration::from_millis(1));
            }
            let end = (sent + 1000).min(total);
            let chunk: String = (sent..end).map(|i| format!("event-{i:06}\n")).collect();
            w.write_all(chunk.as_bytes())
                .expect("sending (connection closed?)");
            sent = end;
        }
    });
    vec![writer, acks]
}

/// `ChannelSize` of `channel` from `/metrics`.
fn channel_size(mport: u16, channel: &str) -> u64 {
    let (status, body) = http_request(mport, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200, "{body}");
    let m: serde_json::Value = serde_json::from_str(&body).expect("metrics JSON");
    m[format!("CHANNEL.{channel}")]["ChannelSize"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no ChannelSize of {channel} in {m}"))
}

fn count(log: &str, needles: &[&str]) -> usize {
    log.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

#[test]
fn a_reload_under_load_loses_nothing_and_keeps_the_unchanged_source() {
    const TOTAL: usize = 100_000;
    let dir = test_dir();
    let d = dir.path();
    // k1 drains 20,000 events/s while 25,000/s arrive: c1 holds events when it is resized.
    let mut agent = Agent::start(
        d,
        "a1",
        &base(d, 1000, 0, "k1", "a1.sinks.k1.maxEventsPerSecond = 20000\n"),
        &[&reload_args()[..], &["--metrics-addr", "127.0.0.1:0"]].concat(),
    );
    let port = agent.wait_for_port("r1");
    let mport = agent.monitoring_port();
    agent.wait_for_log(&["Watching the config"]);
    let acked = Arc::new(AtomicUsize::new(0));
    let flow = stream_lines(port, TOTAL, acked.clone());
    wait_until("a third of the events acknowledged", DEADLINE, || {
        acked.load(Ordering::SeqCst) >= TOTAL / 3
    });
    assert_ne!(channel_size(mport, "c1"), 0, "c1 holds events when resized");
    // Roll k1 every second, add k2 on the same channel, grow the channel.
    replace_config(d, &base(d, 5000, 1, "k1 k2", &file_roll_k2(d)));
    agent.wait_for_log(&["Config change applied"]);
    assert!(
        acked.load(Ordering::SeqCst) < TOTAL,
        "the reload happened while events flowed"
    );
    for t in flow {
        t.join()
            .expect("every line sent and acknowledged on the one connection");
    }

    let expected: Vec<String> = (0..TOTAL).map(|i| format!("event-{i:06}")).collect();
    let start = Instant::now();
    loop {
        let seen: HashSet<String> = output_lines(&d.join("out1"))
            .into_iter()
            .chain(output_lines(&d.join("out2")))
            .collect();
        let missing = expected.iter().filter(|e| !seen.contains(*e)).count();
        if missing == 0 {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{missing} acknowledged events never delivered; log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !output_lines(&d.join("out2")).is_empty(),
        "the added sink took part"
    );
    let log = agent.log();
    let applying = agent.wait_for_log(&["Applying config change"]);
    assert!(applying.contains("stopping_sources=[]"), "{applying}");
    assert!(applying.contains("stopping_sinks=[\"k1\"]"), "{applying}");
    assert!(applying.contains("stopping_channels=[]"), "{applying}");
    assert_eq!(count(&log, &["Source starting", "source=r1"]), 1, "{log}");
    assert_eq!(count(&log, &["Sink started", "sink=k1"]), 2, "{log}");
    assert_eq!(count(&log, &["Sink started", "sink=k2"]), 1, "{log}");
    assert!(log.contains("Channel resized in place"), "{log}");
    let (status, body) = http_request(mport, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let m: serde_json::Value = serde_json::from_str(&body).expect("metrics JSON");
    assert_eq!(m["CHANNEL.c1"]["ChannelCapacity"], "5000", "{m}");
    assert_eq!(
        m["SOURCE.r1"]["EventAcceptedCount"],
        TOTAL.to_string(),
        "{m}"
    );
    assert!(m["SINK.k2"]["EventDrainSuccessCount"].is_string(), "{m}");
    assert!(agent.terminate().success(), "{}", agent.log());
}

/// r1 → c1 → k1 as in [`base`], plus r2 → c2 → k2 with k2 from `k2`.
fn two_lanes(d: &Path, k2: &str) -> String {
    base(
        d,
        1000,
        0,
        "k1 k2",
        &format!(
            "a1.sources = r1 r2
a1.channels = c1 c2
a1.sources.r2.type = netcat
a1.sources.r2.bind = 127.0.0.1
a1.sources.r2.port = 0
a1.sources.r2.channels = c2
a1.channels.c2.type = memory
a1.channels.c2.capacity = 20000
a1.channels.c2.transactionCapacity = 100
a1.sinks.k2.channel = c2
{k2}"
        ),
    )
}

fn send_all(port: u16, prefix: &str, n: usize) {
    let acked = Arc::new(AtomicUsize::new(0));
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).ok();
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!("{prefix}-{i}\n"));
    }
    let mut w = stream.try_clone().expect("clone");
    w.write_all(text.as_bytes()).expect("send");
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    while acked.load(Ordering::SeqCst) < n {
        line.clear();
        r.read_line(&mut line).expect("ack");
        assert_eq!(line.trim(), "OK");
        acked.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn removing_a_channel_drains_it_first() {
    let dir = test_dir();
    let d = dir.path();
    // k2 delivers 2,000 events/s: c2 is far from empty when the reload removes it.
    let k2 = format!(
        "a1.sinks.k2.type = file_roll
a1.sinks.k2.sink.directory = {}
a1.sinks.k2.sink.rollInterval = 0
a1.sinks.k2.maxEventsPerSecond = 2000
",
        d.join("out2").display()
    );
    let mut agent = Agent::start(
        d,
        "a1",
        &two_lanes(d, &k2),
        &[&reload_args()[..], &["--metrics-addr", "127.0.0.1:0"]].concat(),
    );
    let p2 = agent.wait_for_port("r2");
    let p1 = agent.port_of("r1");
    let mport = agent.monitoring_port();
    agent.wait_for_log(&["Watching the config"]);
    send_all(p2, "lane2", 6000);
    assert_ne!(channel_size(mport, "c2"), 0, "c2 is not empty when removed");
    replace_config(d, &base(d, 1000, 0, "k1", ""));
    agent.wait_for_log(&["Config change applied"]);
    let lane2 = output_lines(&d.join("out2"));
    assert_eq!(lane2.len(), 6000, "the removed channel was drained first");
    let drained = agent.wait_for_log(&["Channel drained", "channel=c2"]);
    assert!(drained.contains("removed by a reload"), "{drained}");
    assert!(!agent.log().contains("are lost"), "{}", agent.log());
    // The unchanged lane kept running.
    send_all(p1, "lane1", 100);
    wait_until("lane 1 delivered", DEADLINE, || {
        output_lines(&d.join("out1")).len() == 100
    });
    assert_eq!(count(&agent.log(), &["Source starting", "source=r1"]), 1);
    assert!(agent.terminate().success(), "{}", agent.log());
}

/// [`two_lanes`] with k2 posting to a port nobody listens on, 50 events sent to c2, and the
/// config then changed to remove lane 2: the agent is left removing a channel it cannot drain.
fn removing_an_undrainable_lane(d: &Path, shutdown_timeout: &str) -> Agent {
    let dead_port = unused_port();
    let k2 = format!(
        "a1.sinks.k2.type = http
a1.sinks.k2.endpoint = http://127.0.0.1:{dead_port}/
a1.sinks.k2.connectTimeout = 200
"
    );
    let mut agent = Agent::start(
        d,
        "a1",
        &two_lanes(d, &k2),
        &[
            "--poll-interval",
            "3600",
            "--shutdown-timeout",
            shutdown_timeout,
        ],
    );
    let p2 = agent.wait_for_port("r2");
    agent.wait_for_log(&["Watching the config"]);
    send_all(p2, "lane2", 50);
    replace_config(d, &base(d, 1000, 0, "k1", ""));
    agent
}

#[test]
fn a_removed_channel_its_sink_cannot_drain_is_reported() {
    let dir = test_dir();
    let mut agent = removing_an_undrainable_lane(dir.path(), "1");
    let lost = agent.wait_for_log(&["channel=c2", "are lost"]);
    assert!(lost.contains("events=50"), "{lost}");
    assert!(lost.contains("removed by a reload"), "{lost}");
    agent.wait_for_log(&["Config change applied"]);
    assert!(agent.terminate().success(), "{}", agent.log());
}

#[test]
fn sigterm_during_a_reload_stops_the_agent_without_waiting_out_the_drain() {
    let dir = test_dir();
    // Removing c2 would wait the whole --shutdown-timeout (an hour).
    let mut agent = removing_an_undrainable_lane(dir.path(), "3600");
    agent.wait_for_log(&["Applying config change"]);
    let asked = Instant::now();
    agent.signal("TERM");
    let status = agent.wait();
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "the stop took {:?}",
        asked.elapsed()
    );
    agent.wait_for_log(&["Stop requested during a reload"]);
    // c2's 50 events could not be delivered: the stop says so (a memory channel: exit 3).
    assert_eq!(status.code(), Some(3), "{}", agent.log());
}

#[test]
fn an_invalid_edit_keeps_the_old_pipeline_and_names_the_problem() {
    let dir = test_dir();
    let d = dir.path();
    let mut agent = Agent::start(d, "a1", &base(d, 1000, 0, "k1", ""), &reload_args());
    let port = agent.wait_for_port("r1");
    agent.wait_for_log(&["Watching the config"]);
    send_all(port, "before", 10);
    let bad = base(d, 1000, 0, "k1", "").replace(
        "a1.channels.c1.capacity = 1000",
        "a1.channels.c1.capacity = lots",
    );
    replace_config(d, &bad);
    let refused = agent.wait_for_log(&["Config change refused"]);
    assert!(
        refused.contains("running pipeline is unchanged"),
        "{refused}"
    );
    let log = agent.log();
    let finding = log
        .lines()
        .find(|l| l.contains("a1.channels.c1.capacity") && l.contains("agent.properties:10"))
        .unwrap_or_else(|| panic!("no finding naming file, line and key in:\n{log}"));
    assert!(finding.contains("lots"), "{finding}");
    // The old pipeline still runs, on the same source.
    send_all(port, "after", 10);
    wait_until("both batches delivered", DEADLINE, || {
        output_lines(&d.join("out1")).len() == 20
    });
    // Fixing the file applies it.
    replace_config(d, &base(d, 2000, 0, "k1", ""));
    agent.wait_for_log(&["Channel resized in place", "capacity=2000"]);
    assert_eq!(count(&agent.log(), &["Source starting", "source=r1"]), 1);
    assert!(agent.terminate().success(), "{}", agent.log());
}

#[test]
fn sighup_reloads_and_no_reload_conf_turns_reloading_off() {
    let dir = test_dir();
    let d = dir.path();
    let mut agent = Agent::start(d, "a1", &base(d, 1000, 0, "k1", ""), &reload_args());
    agent.wait_for_port("r1");
    agent.wait_for_log(&["Watching the config"]);
    agent.signal("HUP");
    agent.wait_for_log(&["Config reloaded: no component changed"]);
    assert!(agent.is_running());
    assert!(agent.terminate().success());

    let dir = test_dir();
    let d = dir.path();
    let mut agent = Agent::start(
        d,
        "a1",
        &base(d, 1000, 0, "k1", ""),
        &["--no-reload-conf", "--poll-interval", "1"],
    );
    let port = agent.wait_for_port("r1");
    replace_config(d, &base(d, 3000, 0, "k1", ""));
    agent.signal("HUP");
    agent.wait_for_log(&["SIGHUP ignored"]);
    // Two poll intervals later, still nothing applied.
    std::thread::sleep(Duration::from_millis(2500));
    send_all(port, "still", 5);
    let log = agent.log();
    assert!(!log.contains("Config change"), "{log}");
    assert!(!log.contains("resized"), "{log}");
    assert!(agent.terminate().success());
}

#[test]
fn a_configmap_symlink_swap_is_seen_within_a_second() {
    let dir = test_dir();
    let d = dir.path();
    let conf = d.join("conf");
    std::fs::create_dir_all(conf.join("..v1")).unwrap();
    std::fs::write(
        conf.join("..v1/agent.properties"),
        base(d, 1000, 0, "k1", ""),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v1", conf.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/agent.properties", conf.join("agent.properties")).unwrap();
    let mut cmd = std::process::Command::new(flumen_bin());
    cmd.args(["agent", "-n", "a1", "-f"])
        .arg(conf.join("agent.properties"))
        .args(reload_args());
    let mut agent = Agent::spawn(cmd, d);
    agent.wait_for_port("r1");
    agent.wait_for_log(&["Watching the config"]);
    // The kubelet's swap: a new directory, a new `..data` link renamed over the old one.
    std::fs::create_dir_all(conf.join("..v2")).unwrap();
    std::fs::write(
        conf.join("..v2/agent.properties"),
        base(d, 4000, 0, "k1", ""),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v2", conf.join("..data_tmp")).unwrap();
    std::fs::rename(conf.join("..data_tmp"), conf.join("..data")).unwrap();
    agent.wait_for_log(&["Channel resized in place", "capacity=4000"]);
    assert!(agent.terminate().success(), "{}", agent.log());
}

/// A one-route HTTP server returning the current `body` for every GET.
fn serve_config(body: Arc<Mutex<String>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let mut request = Vec::new();
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = body.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let authorized = String::from_utf8_lossy(&request)
                .to_ascii_lowercase()
                .contains("authorization: basic zmx1bwu6c2vjcmv0"); // flume:secret
            let reply = if authorized {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                )
            } else {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            };
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

#[test]
fn a_config_url_is_polled() {
    let dir = test_dir();
    let d = dir.path();
    let body = Arc::new(Mutex::new(base(d, 1000, 0, "k1", "")));
    let port = serve_config(body.clone());
    let url = format!("http://127.0.0.1:{port}/a1.properties");
    let mut cmd = std::process::Command::new(flumen_bin());
    cmd.args(["agent", "-n", "a1", "--conf-uri", &url]).args([
        "--conf-user",
        "flume",
        "--conf-password",
        "secret",
        "-i",
        "1",
    ]);
    let mut agent = Agent::spawn(cmd, d);
    let p1 = agent.wait_for_port("r1");
    agent.wait_for_log(&["Watching the config"]);
    *body.lock().unwrap() = base(d, 1000, 0, "k1 k2", &file_roll_k2(d));
    agent.wait_for_log(&["Config change applied"]);
    agent.wait_for_log(&["Sink started", "sink=k2"]);
    send_all(p1, "url", 500);
    wait_until("delivered by k1 and k2", DEADLINE, || {
        output_lines(&d.join("out1")).len() + output_lines(&d.join("out2")).len() == 500
    });
    assert!(agent.terminate().success(), "{}", agent.log());
}

#[test]
fn a_replaced_file_channel_keeps_its_events_for_its_replacement() {
    let dir = test_dir();
    let d = dir.path();
    let dead_port = unused_port();
    let config = |interval: u32, sink: &str| {
        netcat_file_channel_config(
            &d.join("ckpt"),
            &d.join("data"),
            1000,
            100,
            &format!(
                "a1.channels.c1.checkpointInterval = {interval}\n\
                 a1.channels.c1.minimumRequiredSpace = 1048576\n"
            ),
            sink,
        )
    };
    let dead_sink =
        format!("a1.sinks.k1.type = http\na1.sinks.k1.endpoint = http://127.0.0.1:{dead_port}/\n");
    let mut agent = Agent::start(
        d,
        "a1",
        &config(30000, &dead_sink),
        &["--poll-interval", "3600", "--shutdown-timeout", "1"],
    );
    let port = agent.wait_for_port("r1");
    agent.wait_for_log(&["Watching the config"]);
    send_all(port, "durable", 50);
    // Another checkpoint interval replaces the channel; k1 now writes files.
    let roll = format!(
        "a1.sinks.k1.type = file_roll\na1.sinks.k1.sink.directory = {}\na1.sinks.k1.sink.rollInterval = 0\n",
        d.join("out1").display()
    );
    replace_config(d, &config(1000, &roll));
    let kept = agent.wait_for_log(&["stay in its directories", "channel=c1"]);
    assert!(kept.contains("events=50"), "{kept}");
    agent.wait_for_log(&["Config change applied"]);
    wait_until(
        "the replacement delivers what the old channel held",
        DEADLINE,
        || output_lines(&d.join("out1")).len() == 50,
    );
    let mut lines: Vec<String> = output_lines(&d.join("out1"))
        .into_iter()
        .filter(|l| l.starts_with("durable-"))
        .collect();
    lines.sort_by_key(|l| l[8..].parse::<u32>().unwrap_or(u32::MAX));
    let expected: Vec<String> = (0..50).map(|i| format!("durable-{i}")).collect();
    assert_eq!(lines, expected);
    // The channel changed, so its source restarted (on a new port); it works.
    let line = agent.wait_for_log(&["Applying config change"]);
    assert!(line.contains("stopping_sources=[\"r1\"]"), "{line}");
    assert_eq!(count(&agent.log(), &["Source starting", "source=r1"]), 2);
    let listening: Vec<u16> = agent
        .log()
        .lines()
        .filter(|l| l.contains("listening") && l.contains("source=r1"))
        .filter_map(|l| l.split("address=").nth(1))
        .filter_map(|a| {
            a.split_whitespace()
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(listening.len(), 2, "{}", agent.log());
    send_all(listening[1], "after", 5);
    wait_until("the restarted source delivers", DEADLINE, || {
        output_lines(&d.join("out1")).len() == 55
    });
    assert!(agent.terminate().success(), "{}", agent.log());
}

#[test]
fn the_shutdown_reports_what_each_component_had_in_flight_and_drained() {
    let dir = test_dir();
    let d = dir.path();
    let slow = "a1.sinks.k1.maxEventsPerSecond = 2000\n";
    let mut agent = Agent::start(d, "a1", &base(d, 5000, 0, "k1", slow), &reload_args());
    let port = agent.wait_for_port("r1");
    send_all(port, "bye", 3000);
    assert!(agent.terminate().success(), "{}", agent.log());
    assert_eq!(output_lines(&d.join("out1")).len(), 3000);
    let log = agent.log();
    let channel = log
        .lines()
        .find(|l| l.contains("Shutdown report: channel.") && l.contains("channel=c1"))
        .unwrap_or_else(|| panic!("no channel report in:\n{log}"));
    let field = |line: &str, key: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {line}"))
    };
    let in_flight = field(channel, "in_flight_at_stop");
    assert!(
        in_flight > 0,
        "the slow sink left events in flight: {channel}"
    );
    // The figures are read while k1 drains: they may differ by the batch in hand (100).
    assert!(
        field(channel, "drained").abs_diff(in_flight) <= 100,
        "{channel}"
    );
    assert_eq!(field(channel, "left"), 0, "{channel}");
    let sink = log
        .lines()
        .find(|l| l.contains("Shutdown report: sink.") && l.contains("sink=k1"))
        .unwrap_or_else(|| panic!("no sink report in:\n{log}"));
    assert!(
        field(sink, "drained_during_shutdown").abs_diff(in_flight) <= 100,
        "{sink}"
    );
    assert_eq!(field(sink, "delivered_total"), 3000, "{sink}");
}

#[test]
fn sighup_restarts_a_source_that_failed_to_start() {
    let dir = test_dir();
    let d = dir.path();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let config = base(d, 1000, 0, "k1", "").replace(
        "a1.sources.r1.port = 0",
        &format!("a1.sources.r1.port = {port}"),
    );
    let mut agent = Agent::start(d, "a1", &config, &reload_args());
    agent.wait_for_log(&["Source failed", "source=r1"]);
    drop(taken);
    agent.signal("HUP");
    agent.wait_for_log(&["Applying config change", "stopping_sources=[\"r1\"]"]);
    assert_eq!(agent.wait_for_port("r1"), port);
    send_all(port, "second-chance", 10);
    wait_until("delivered", DEADLINE, || {
        output_lines(&d.join("out1")).len() == 10
    });
    // The failure at start still shows in the exit status.
    assert_eq!(agent.terminate().code(), Some(1), "{}", agent.log());
}

#[test]
fn limits_are_checked_against_the_new_config_not_the_running_channel() {
    let dir = test_dir();
    let d = dir.path();
    let mut agent = Agent::start(d, "a1", &base(d, 1000, 0, "k1", ""), &reload_args());
    let port = agent.wait_for_port("r1");
    agent.wait_for_log(&["Watching the config"]);
    // One edit raises the channel's transactionCapacity and the sink's batch past the old one.
    let grown = base(d, 1000, 0, "k1", "")
        .replace(
            "a1.channels.c1.transactionCapacity = 100",
            "a1.channels.c1.transactionCapacity = 500",
        )
        .replace(
            "a1.sinks.k1.sink.batchSize = 100",
            "a1.sinks.k1.sink.batchSize = 400",
        );
    replace_config(d, &grown);
    agent.wait_for_log(&["Channel resized in place", "transactionCapacity=500"]);
    agent.wait_for_log(&["Config change applied"]);
    // Shrinking it below the sink's batch is refused, as it would be at start-up.
    let shrunk = grown.replace(
        "a1.channels.c1.transactionCapacity = 500",
        "a1.channels.c1.transactionCapacity = 50",
    );
    replace_config(d, &shrunk);
    agent.wait_for_log(&["Config change refused"]);
    assert_eq!(count(&agent.log(), &["Channel resized in place"]), 1);
    send_all(port, "limits", 20);
    wait_until("delivered", DEADLINE, || {
        output_lines(&d.join("out1")).len() == 20
    });
    assert!(agent.terminate().success(), "{}", agent.log());
}

#[test]
fn a_memory_channel_replaced_by_a_file_channel_hands_over_what_it_holds() {
    let dir = test_dir();
    let d = dir.path();
    let dead_port = unused_port();
    let memory_dead_sink = base(d, 1000, 0, "k1", "").replace(
        "a1.sinks.k1.type = file_roll",
        &format!("a1.sinks.k1.type = http\na1.sinks.k1.endpoint = http://127.0.0.1:{dead_port}/"),
    );
    let mut agent = Agent::start(
        d,
        "a1",
        &memory_dead_sink,
        &["--poll-interval", "3600", "--shutdown-timeout", "1"],
    );
    let port = agent.wait_for_port("r1");
    agent.wait_for_log(&["Watching the config"]);
    send_all(port, "handover", 50);
    // c1 becomes a file channel (with a smaller capacity) and k1 writes files.
    let file = base(d, 1000, 0, "k1", "")
        .replace(
            "a1.channels.c1.type = memory\na1.channels.c1.capacity = 1000",
            &format!(
                "a1.channels.c1.type = file\na1.channels.c1.capacity = 30\n\
                 a1.channels.c1.checkpointDir = {}\na1.channels.c1.dataDirs = {}\n\
                 a1.channels.c1.minimumRequiredSpace = 1048576",
                d.join("ckpt").display(),
                d.join("data").display()
            ),
        )
        .replace(
            "a1.channels.c1.transactionCapacity = 100",
            "a1.channels.c1.transactionCapacity = 10",
        )
        .replace(
            "a1.sinks.k1.sink.batchSize = 100",
            "a1.sinks.k1.sink.batchSize = 10",
        );
    replace_config(d, &file);
    agent.wait_for_log(&["moved into its replacement", "events=50"]);
    wait_until("the replacement delivers all 50", DEADLINE, || {
        output_lines(&d.join("out1")).len() == 50
    });
    let mut lines = output_lines(&d.join("out1"));
    lines.sort();
    let mut expected: Vec<String> = (0..50).map(|i| format!("handover-{i}")).collect();
    expected.sort();
    assert_eq!(lines, expected);
    assert!(!agent.log().contains("are lost"), "{}", agent.log());
    assert!(agent.terminate().success(), "{}", agent.log());
}

#[test]
fn a_source_that_finished_its_work_is_not_run_again() {
    let dir = test_dir();
    let d = dir.path();
    let config: String = base(d, 1000, 0, "k1", "")
        .replace(
            "a1.sources.r1.type = netcat",
            "a1.sources.r1.type = seq\na1.sources.r1.totalEvents = 10",
        )
        .lines()
        .filter(|l| !l.contains("bind") && !l.contains("port") && !l.contains("max-line"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut agent = Agent::start(d, "a1", &config, &reload_args());
    agent.wait_for_log(&["Watching the config"]);
    agent.wait_for_log(&["Source finished", "source=r1"]);
    agent.signal("HUP");
    agent.wait_for_log(&["Config reloaded: no component changed"]);
    wait_until("the ten events", DEADLINE, || {
        output_lines(&d.join("out1")).len() == 10
    });
    assert!(agent.terminate().success(), "{}", agent.log());
    assert_eq!(output_lines(&d.join("out1")).len(), 10);
}
