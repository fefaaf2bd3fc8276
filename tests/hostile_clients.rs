//! Network sources under hostile clients: thousands of idle connections, a flood, a client
//! that never reads its answers. The agent's resident memory stays bounded, a well-behaved
//! client is still served, connections over `maxConnections` are closed at once, and a stop
//! does not wait for a stalled client.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A counter of `component` from `/metrics`, 0 when absent.
fn metric(mport: u16, component: &str, name: &str) -> u64 {
    let (status, body) = http_request(mport, "GET", "/metrics", &[], b"");
    if status != 200 {
        return 0;
    }
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|m| m[component][name].as_str().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// At most this much more resident memory than at start, whatever the clients do.
const RSS_BOUND: u64 = 96 << 20;

/// `n` connections that connect and say nothing.
fn idle_connections(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connecting an idle client"))
        .collect()
}

fn netcat_config(extra: &str) -> String {
    format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
         a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = 0\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\na1.channels.c1.capacity = 10000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\na1.sinks.k1.batchSize = 1000\n{extra}"
    )
}

#[test]
fn netcat_keeps_its_memory_and_serves_under_idle_connections_floods_and_stalled_readers() {
    let dir = test_dir();
    let cfg = netcat_config("");
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &["--metrics-addr", "127.0.0.1:0"]);
    let port = agent.wait_for_port("r1");
    let mport = agent.monitoring_port();
    let before = rss(agent.pid());

    // Thousands of idle connections.
    let idle = idle_connections(port, 3000);
    wait_until("3000 open connections", DEADLINE, || {
        metric(mport, "SOURCE.r1", "OpenConnectionCount") == 3000
    });
    // A flood from a client that never reads its acknowledgements: 4 million short lines
    // make 12 MB of `OK`s, more than the sockets buffer, so the agent ends up blocked writing
    // to it and stops reading from it.
    let stalled = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
        s.set_write_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let block = b"a\n".repeat(1 << 19);
        for _ in 0..8 {
            if s.write_all(&block).is_err() {
                break;
            }
        }
        s
    });
    wait_until("the flood to be read in part", DEADLINE, || {
        metric(mport, "SOURCE.r1", "EventReceivedCount") > 100_000
    });
    let stalled = stalled.join().expect("the flooding client");
    // A well-behaved client is still answered, line by line.
    let lines: String = (0..100).map(|i| format!("good {i}\n")).collect();
    let answer = tcp_send(port, lines.as_bytes());
    assert_eq!(
        answer,
        b"OK\n".repeat(100),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let after = rss(agent.pid());
    assert!(
        after < before + RSS_BOUND,
        "RSS grew from {before} to {after} bytes"
    );
    // The stalled readers do not hold the stop.
    let stop = Instant::now();
    let status = agent.terminate();
    assert!(
        stop.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        stop.elapsed()
    );
    assert!(status.code().is_some(), "{}", agent.log());
    drop(idle);
    drop(stalled);
}

#[test]
fn netcat_closes_connections_over_max_connections_at_once() {
    let dir = test_dir();
    let cfg = netcat_config("a1.sources.r1.maxConnections = 5\n");
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.wait_for_port("r1");
    let mut idle = idle_connections(port, 5);
    // The sixth is accepted and closed: it reads end of stream, not a hang.
    let mut extra = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    extra
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    assert_eq!(extra.read(&mut buf).map_err(|e| e.kind()), Ok(0));
    agent.wait_for_log(&["maxConnections connections already"]);
    // Once one ends, a new client is served.
    drop(idle.pop());
    // Until the agent has seen the close, a new client is still turned away (maybe before
    // it has even half-closed): try again.
    wait_until("a slot to free up", DEADLINE, || {
        try_tcp_send(port, b"hello\n").is_ok_and(|answer| answer == b"OK\n")
    });
    assert!(agent.terminate().success(), "{}", agent.log());
}

#[test]
fn the_http_source_keeps_its_memory_under_idle_connections_and_a_flood_of_bodies() {
    let dir = test_dir();
    let cfg = "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
               a1.sources.r1.type = http\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = 0\n\
               a1.sources.r1.channels = c1\n\
               a1.sources.r1.handler = org.apache.flume.source.http.BLOBHandler\n\
               a1.sources.r1.maxInFlightBytes = 33554432\n\
               a1.channels.c1.type = memory\na1.channels.c1.capacity = 100\n\
               a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n\
               a1.sinks.k1.maxEventsPerSecond = 5\n";
    let mut agent = Agent::start(dir.path(), "a1", cfg, &["--metrics-addr", "127.0.0.1:0"]);
    let port = agent.wait_for_port("r1");
    let mport = agent.monitoring_port();
    let before = rss(agent.pid());
    let idle = idle_connections(port, 3000);
    wait_until("3000 open connections", DEADLINE, || {
        metric(mport, "SOURCE.r1", "OpenConnectionCount") >= 3000
    });
    // 32 clients post 8 MiB bodies at once: 256 MiB asked, 32 MiB may be held.
    let posts: Vec<_> = (0..32)
        .map(|_| {
            std::thread::spawn(move || -> u16 {
                let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                    return 0;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
                let body = vec![b'y'; 8 << 20];
                let head = format!(
                    "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s
                    .write_all(head.as_bytes())
                    .and_then(|_| s.write_all(&body));
                let mut answer = Vec::new();
                let _ = s.read_to_end(&mut answer);
                String::from_utf8_lossy(&answer)
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0)
            })
        })
        .collect();
    let statuses: Vec<u16> = posts.into_iter().map(|p| p.join().unwrap_or(0)).collect();
    // Some fit the budget (200, or 503 once the tiny channel is full); the rest are told
    // to come back (503); none is lost silently or kills the agent.
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&503), "{statuses:?}");
    let after = rss(agent.pid());
    assert!(
        after < before + RSS_BOUND + (64 << 20),
        "RSS grew from {before} to {after} bytes"
    );
    // A well-behaved client is still served once the channel has room.
    wait_until("a small post to be accepted", DEADLINE, || {
        http_request(port, "POST", "/", &[], b"hello").0 == 200
    });
    drop(idle);
    assert!(agent.terminate().code().is_some(), "{}", agent.log());
}

#[test]
fn a_udp_flood_holds_bounded_memory_and_a_later_datagram_arrives() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let cfg = format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
         a1.sources.r1.type = netcatudp\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = 0\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\na1.channels.c1.capacity = 200\n\
         a1.channels.c1.transactionCapacity = 100\n\
         a1.sinks.k1.type = file_roll\na1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\na1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.batchSize = 100\na1.sinks.k1.maxEventsPerSecond = 200\n",
        out.display()
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.wait_for_port("r1");
    let before = rss(agent.pid());
    let sender = UdpSocket::bind("127.0.0.1:0").expect("binding a sender");
    let datagram = vec![b'z'; 60_000];
    let flood_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < flood_until {
        for _ in 0..100 {
            let _ = sender.send_to(&datagram, ("127.0.0.1", port));
        }
    }
    let after = rss(agent.pid());
    assert!(
        after < before + RSS_BOUND + (128 << 20),
        "RSS grew from {before} to {after} bytes"
    );
    // Once the flood is over, a well-behaved sender gets through.
    wait_until("the marker to arrive", DEADLINE, || {
        let _ = sender.send_to(b"marker", ("127.0.0.1", port));
        std::thread::sleep(Duration::from_millis(200));
        output_lines(&out).iter().any(|l| l == "marker")
    });
    assert!(agent.terminate().code().is_some(), "{}", agent.log());
}
