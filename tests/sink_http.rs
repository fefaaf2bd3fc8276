//! The `http` sink through the real binary, against a recording HTTP server run by the test:
//! order, redelivery after a rolled-back status, committed error statuses, connect failures
//! and timeouts, JSON batches read by a second agent's `http` source, and takes held open
//! until their answers arrive (`concurrency`), across a kill -9.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// One request the server answered.
#[derive(Clone, Debug)]
struct Seen {
    content_type: String,
    body: Vec<u8>,
    status: u16,
}

/// Decides the status of a request from its body and its index (0-based).
type Responder = Arc<dyn Fn(&[u8], usize) -> u16 + Send + Sync>;

/// A keep-alive HTTP/1.1 server on loopback that records every request.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

impl Server {
    fn start(respond: Responder) -> Server {
        Server::on(TcpListener::bind("127.0.0.1:0").expect("binding"), respond)
    }

    fn on(listener: TcpListener, respond: Responder) -> Server {
        let port = listener.local_addr().expect("local address").port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let count = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (s, c) = (seen.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                c.fetch_add(1, Ordering::SeqCst);
                let (s, respond, count) = (s.clone(), respond.clone(), count.clone());
                std::thread::spawn(move || serve(stream, &s, &respond, &count));
            }
        });
        Server {
            port,
            seen,
            connections,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Bodies answered 200, as text, in arrival order.
    fn accepted(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.status == 200)
            .map(|s| String::from_utf8_lossy(&s.body).into_owned())
            .collect()
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/in", self.port)
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Seen>>, respond: &Responder, count: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().expect("cloning the stream"));
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().expect("content length"),
                    "content-type" => content_type = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let status = respond(&body, count.fetch_add(1, Ordering::SeqCst));
        seen.lock().unwrap_or_else(|p| p.into_inner()).push(Seen {
            content_type,
            body,
            status,
        });
        let answer = format!("HTTP/1.1 {status} Status\r\nContent-Length: 3\r\n\r\nbye");
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// seq → memory → http, with Flume's recommended 2XX settings plus `extra` sink lines.
fn seq_config(total: usize, endpoint: &str, extra: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {total}\n\
         a1.sources.r1.batchSize = 10\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.channels.c1.transactionCapacity = 100\n\
         a1.sinks.k1.type = http\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.endpoint = {endpoint}\n\
         a1.sinks.k1.connectTimeout = 300\n\
         a1.sinks.k1.requestTimeout = 2000\n\
         a1.sinks.k1.rollback.2XX = false\n\
         a1.sinks.k1.backoff.2XX = false\n\
         a1.sinks.k1.incrementMetrics.2XX = true\n\
         {extra}\n"
    )
}

fn numbers(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

/// Each number in first-arrival order, with the count of repeats.
fn dedup(bodies: &[String]) -> (Vec<String>, usize) {
    let mut first = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for b in bodies {
        if seen.insert(b.clone()) {
            first.push(b.clone());
        }
    }
    let dups = bodies.len() - first.len();
    (first, dups)
}

#[test]
fn every_body_arrives_once_and_in_order_one_request_per_event() {
    let server = Server::start(Arc::new(|_, _| 200));
    let dir = test_dir();
    let config = seq_config(300, &server.endpoint(), "a1.sinks.k1.batchSize = 20\n");
    let mut agent = Agent::start(dir.path(), "a1", &config, &[]);
    wait_until("300 posts", DEADLINE, || server.seen().len() >= 300);
    let seen = server.seen();
    assert_eq!(server.accepted(), numbers(300));
    assert!(
        seen.iter().all(|s| s.content_type == "text/plain"),
        "{:?}",
        seen[0]
    );
    let connections = server.connections.load(Ordering::SeqCst);
    assert!(
        connections <= 3,
        "keep-alive: {connections} connections for 300 posts"
    );
    assert!(agent.terminate().success(), "{}", agent.log());
    assert_eq!(server.seen().len(), 300, "nothing posted twice");
}

#[test]
fn a_rolled_back_503_is_redelivered_after_the_server_recovers() {
    // 200 for the first 15 requests, then 503 until told otherwise.
    let healthy = Arc::new(AtomicU16::new(0));
    let h = healthy.clone();
    let server = Server::start(Arc::new(move |_, i| {
        if i < 15 || h.load(Ordering::SeqCst) == 1 {
            200
        } else {
            503
        }
    }));
    let dir = test_dir();
    let config = seq_config(50, &server.endpoint(), "a1.sinks.k1.batchSize = 10\n");
    let mut agent = Agent::start(dir.path(), "a1", &config, &[]);
    wait_until("two 503 answers", DEADLINE, || {
        server.seen().iter().filter(|s| s.status == 503).count() >= 2
    });
    agent.wait_for_log(&["Delivery failed", "HTTP 503", "roll back"]);
    healthy.store(1, Ordering::SeqCst);
    wait_until("all 50 numbers accepted", DEADLINE, || {
        dedup(&server.accepted()).0.len() >= 50
    });
    let (first, dups) = dedup(&server.accepted());
    assert_eq!(first, numbers(50), "nothing lost, first arrivals in order");
    // Events 10..14 of the rolled-back batch had been accepted and are posted again.
    assert!(dups <= 10, "at most one batch of duplicates, got {dups}");
    assert_eq!(dups, 5);
    assert!(agent.terminate().success(), "{}", agent.log());
}

#[test]
fn a_status_configured_not_to_roll_back_is_committed_and_not_redelivered() {
    let server = Server::start(Arc::new(|body, _| if body == b"7" { 400 } else { 200 }));
    let dir = test_dir();
    let config = seq_config(
        20,
        &server.endpoint(),
        "a1.sinks.k1.batchSize = 5\na1.sinks.k1.rollback.400 = false\n",
    );
    let mut agent = Agent::start(dir.path(), "a1", &config, &[]);
    wait_until("20 posts", DEADLINE, || server.seen().len() >= 20);
    let mut expected = numbers(20);
    expected.retain(|n| n != "7");
    assert_eq!(server.accepted(), expected);
    let rejected: Vec<Seen> = server
        .seen()
        .into_iter()
        .filter(|s| s.status == 400)
        .collect();
    assert_eq!(rejected.len(), 1, "7 is posted once: {rejected:?}");
    agent.wait_for_log(&["did not accept", "status=400"]);
    assert!(agent.terminate().success(), "{}", agent.log());
    assert_eq!(server.seen().len(), 20, "nothing posted again");
}

#[test]
fn a_closed_port_rolls_back_and_delivery_resumes_when_a_server_listens() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("binding");
        l.local_addr().expect("local address").port()
    };
    let dir = test_dir();
    let endpoint = format!("http://127.0.0.1:{port}/in");
    let mut agent = Agent::start(dir.path(), "a1", &seq_config(30, &endpoint, ""), &[]);
    agent.wait_for_log(&["Delivery failed", &format!("127.0.0.1:{port}")]);
    let server = Server::on(
        TcpListener::bind(("127.0.0.1", port)).expect("rebinding the port"),
        Arc::new(|_, _| 200),
    );
    wait_until("30 posts", DEADLINE, || server.seen().len() >= 30);
    assert_eq!(server.accepted(), numbers(30));
    assert!(agent.terminate().success(), "{}", agent.log());
}

#[test]
fn a_connect_timeout_rolls_back_and_delivery_resumes() {
    // A listener with a backlog of 1 that never accepts: once its queue is full the kernel
    // drops further connection attempts, so the sink's connect hangs until connectTimeout.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let socket = rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().expect("socket");
        s.set_reuseaddr(true).expect("reuseaddr");
        s.bind("127.0.0.1:0".parse().expect("address"))
            .expect("bind");
        s.listen(1).expect("listen")
    });
    let port = socket.local_addr().expect("local address").port();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
        {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    let dir = test_dir();
    let endpoint = format!("http://127.0.0.1:{port}/in");
    let mut agent = Agent::start(dir.path(), "a1", &seq_config(10, &endpoint, ""), &[]);
    agent.wait_for_log(&["Delivery failed", "timed out", "connectTimeout=300"]);
    drop(fillers);
    drop(socket);
    let server = Server::on(
        TcpListener::bind(("127.0.0.1", port)).expect("rebinding the port"),
        Arc::new(|_, _| 200),
    );
    wait_until("10 posts", DEADLINE, || server.accepted().len() >= 10);
    let (first, _) = dedup(&server.accepted());
    assert_eq!(first, numbers(10));
    assert!(agent.terminate().success(), "{}", agent.log());
}

/// Agent `b`: http source → memory → file_roll with headers, the receiving hop.
fn receiver_config(out: &std::path::Path) -> String {
    format!(
        "b.sources = r1\n\
         b.channels = c1\n\
         b.sinks = k1\n\
         b.sources.r1.type = http\n\
         b.sources.r1.bind = 127.0.0.1\n\
         b.sources.r1.port = 0\n\
         b.sources.r1.channels = c1\n\
         b.channels.c1.type = memory\n\
         b.sinks.k1.type = file_roll\n\
         b.sinks.k1.channel = c1\n\
         b.sinks.k1.sink.directory = {}\n\
         b.sinks.k1.sink.rollInterval = 0\n\
         b.sinks.k1.sink.serializer = HEADER_AND_TEXT\n",
        out.display()
    )
}

/// Agent `a`: JSON (r1) and blob (r2) http sources → memory → http sink in JSON batch mode.
fn sender_config(endpoint: &str) -> String {
    format!(
        "a.sources = r1 r2\n\
         a.channels = c1\n\
         a.sinks = k1\n\
         a.sources.r1.type = http\n\
         a.sources.r1.bind = 127.0.0.1\n\
         a.sources.r1.port = 0\n\
         a.sources.r1.channels = c1\n\
         a.sources.r2.type = http\n\
         a.sources.r2.bind = 127.0.0.1\n\
         a.sources.r2.port = 0\n\
         a.sources.r2.handler = org.apache.flume.sink.solr.morphline.BlobHandler\n\
         a.sources.r2.channels = c1\n\
         a.channels.c1.type = memory\n\
         a.sinks.k1.type = org.apache.flume.sink.http.HttpSink\n\
         a.sinks.k1.channel = c1\n\
         a.sinks.k1.endpoint = {endpoint}\n\
         a.sinks.k1.batchMode = json\n\
         a.sinks.k1.rollback.2XX = false\n\
         a.sinks.k1.backoff.2XX = false\n\
         a.sinks.k1.incrementMetrics.2XX = true\n"
    )
}

#[test]
fn json_batches_reach_a_second_agents_http_source_with_headers_and_bodies_intact() {
    let dir_b = test_dir();
    let out = dir_b.path().join("out");
    let mut b = Agent::start(dir_b.path(), "b", &receiver_config(&out), &[]);
    let port_b = b.port_of("r1");
    let dir_a = test_dir();
    let endpoint = format!("http://127.0.0.1:{port_b}/");
    let mut a = Agent::start(dir_a.path(), "a", &sender_config(&endpoint), &[]);
    let (json_port, blob_port) = (a.port_of("r1"), a.port_of("r2"));

    let batch = r#"[{"headers":{"host":"web-1","n":"1"},"body":"h\u00e9llo \"quoted\" ☃"},{"headers":{},"body":"second"},{"headers":{"k":"v=w"},"body":"tab\there"}]"#;
    let (status, _) = http_request(
        json_port,
        "POST",
        "/",
        &[("Content-Type", "application/json")],
        batch.as_bytes(),
    );
    assert_eq!(status, 200);
    wait_until("three events at the second agent", DEADLINE, || {
        count_output_lines(&out) >= 3
    });
    assert_eq!(
        output_lines(&out),
        [
            "{host=web-1, n=1} héllo \"quoted\" ☃",
            "{} second",
            "{k=v=w} tab\there"
        ]
    );

    // A body that is not UTF-8 crosses as marked base64, and the second agent's http source
    // turns it back into the same bytes (and drops the marker).
    let (status, _) = http_request(blob_port, "POST", "/?kind=bin", &[], &[0xff, 0xfe, b'x']);
    assert_eq!(status, 200);
    wait_until("the binary event at the second agent", DEADLINE, || {
        count_output_lines(&out) >= 4
    });
    let bytes: Vec<u8> = output_files(&out)
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap_or_default())
        .collect();
    let last = bytes
        .strip_suffix(b"\n")
        .and_then(|b| b.rsplit(|&c| c == b'\n').next())
        .unwrap_or_default();
    assert_eq!(
        last,
        b"{kind=bin} \xff\xfex",
        "{}",
        String::from_utf8_lossy(last)
    );

    assert!(a.terminate().success(), "{}", a.log());
    assert!(b.terminate().success(), "{}", b.log());
}

#[test]
fn a_rolled_back_status_makes_a_failover_group_switch_sinks() {
    // Flume's http sink hides a rollback from its processor; Flumen's fails the delivery, so
    // the failover processor moves to the next sink and nothing waits on the broken endpoint.
    let broken = Server::start(Arc::new(|_, _| 503));
    let healthy = Server::start(Arc::new(|_, _| 200));
    let config = format!(
        "{}\
         a1.sinks = k1 k2\n\
         a1.sinks.k2.type = http\n\
         a1.sinks.k2.channel = c1\n\
         a1.sinks.k2.endpoint = {}\n\
         a1.sinks.k2.rollback.2XX = false\n\
         a1.sinks.k2.backoff.2XX = false\n\
         a1.sinks.k2.incrementMetrics.2XX = true\n\
         a1.sinkgroups = g1\n\
         a1.sinkgroups.g1.sinks = k1 k2\n\
         a1.sinkgroups.g1.processor.type = failover\n\
         a1.sinkgroups.g1.processor.priority.k1 = 10\n\
         a1.sinkgroups.g1.processor.priority.k2 = 5\n\
         a1.sinkgroups.g1.processor.maxpenalty = 60000\n",
        seq_config(40, &broken.endpoint(), "a1.sinks.k1.batchSize = 10\n"),
        healthy.endpoint(),
    );
    let dir = test_dir();
    let mut agent = Agent::start(dir.path(), "a1", &config, &[]);
    wait_until("40 events at the healthy endpoint", DEADLINE, || {
        healthy.accepted().len() >= 40
    });
    assert_eq!(healthy.accepted(), numbers(40));
    assert!(
        !broken.seen().is_empty(),
        "the preferred sink was tried first"
    );
    assert!(broken.accepted().is_empty());
    assert!(agent.terminate().success(), "{}", agent.log());
}

/// netcat (acks each event once durable) → file channel → http (`json`, `concurrency` 4,
/// batches of 20): each take commits only when its answer arrives.
fn ack_later_config(dir: &std::path::Path, endpoint: &str) -> String {
    let sink = format!(
        "a1.sinks.k1.type = http\n\
         a1.sinks.k1.endpoint = {endpoint}\n\
         a1.sinks.k1.batchMode = json\n\
         a1.sinks.k1.batchSize = 20\n\
         a1.sinks.k1.concurrency = 4\n\
         a1.sinks.k1.requestTimeout = 60000\n\
         a1.sinks.k1.rollback.2XX = false\n\
         a1.sinks.k1.backoff.2XX = false\n\
         a1.sinks.k1.incrementMetrics.2XX = true\n"
    );
    netcat_file_channel_config(
        &dir.join("checkpoint"),
        &dir.join("data"),
        10_000,
        100,
        "",
        &sink,
    )
}

/// The event bodies of the JSON batches the server answered 200.
fn accepted_events(server: &Server) -> Vec<String> {
    server
        .accepted()
        .iter()
        .flat_map(|batch| {
            let v: serde_json::Value = serde_json::from_str(batch).expect("a JSON batch");
            v.as_array()
                .expect("an array")
                .iter()
                .map(|e| e["body"].as_str().expect("a body").to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn takes_wait_for_their_answers_and_a_kill_9_before_them_loses_nothing() {
    // While `holding`, a request is read and never answered (the agent's ack stays pending);
    // released, the held ones are marked 599 (their connection died with the agent) and new
    // ones answered 200.
    let holding = Arc::new(AtomicBool::new(true));
    let arrived = Arc::new(AtomicUsize::new(0));
    let (h, a) = (holding.clone(), arrived.clone());
    let server = Server::start(Arc::new(move |_, _| {
        a.fetch_add(1, Ordering::SeqCst);
        if !h.load(Ordering::SeqCst) {
            return 200;
        }
        while h.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        599
    }));
    let dir = test_dir();
    let cfg = ack_later_config(dir.path(), &server.endpoint());
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &["--metrics-addr", "127.0.0.1:0"]);
    let port = agent.wait_for_port("r1");
    let lines: Vec<String> = (0..200).map(|i| format!("event-{i:04}")).collect();
    let answer = tcp_send(port, format!("{}\n", lines.join("\n")).as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&answer).matches("OK").count(),
        200,
        "every event acknowledged by the source"
    );
    wait_until("four takes posted", DEADLINE, || {
        arrived.load(Ordering::SeqCst) >= 4
    });
    let (status, body) = http_request(agent.monitoring_port(), "GET", "/metrics", &[], b"");
    assert_eq!(status, 200, "{body}");
    let m: serde_json::Value = serde_json::from_str(&body).expect("metrics JSON");
    assert_eq!(
        m["SINK.k1"]["EventDrainSuccessCount"], "0",
        "no take counted before its answer: {m}"
    );
    assert_eq!(
        arrived.load(Ordering::SeqCst),
        4,
        "at most `concurrency` takes in flight while none is answered"
    );
    agent.signal("KILL");
    agent.wait();
    holding.store(false, Ordering::SeqCst);

    // The 80 events posted but never answered were not committed: a new agent on the same
    // channel delivers them, with everything else.
    let mut again = Agent::start(dir.path(), "a1", &cfg, &[]);
    wait_until("all 200 events answered", DEADLINE, || {
        accepted_events(&server).len() >= 200
    });
    assert!(again.terminate().success(), "{}", again.log());
    let mut got = accepted_events(&server);
    got.sort();
    assert_eq!(got, lines, "each event answered exactly once, none lost");
}
