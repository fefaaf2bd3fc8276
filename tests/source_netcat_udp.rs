//! The `netcatudp` source through the real binary: one event per datagram, with the sender's
//! address as a header when asked.

mod common;

use std::net::UdpSocket;
use std::path::Path;

use common::*;

fn config(out: &Path, source_extra: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = netcatudp\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = 0\n\
         a1.sources.r1.channels = c1\n\
         {source_extra}\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.serializer = HEADER_AND_TEXT\n",
        out.display()
    )
}

#[test]
fn datagrams_arrive_as_events_cut_at_the_first_newline() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let mut agent = Agent::start(dir.path(), "a1", &config(&out, ""), &[]);
    let port = agent.port_of("r1");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("binding the client");
    // Sent one at a time and awaited, so loss on a busy loopback cannot make the test flaky.
    for (i, payload) in [&b"first"[..], b"second\n", b"third\nnot part of it"]
        .iter()
        .enumerate()
    {
        socket
            .send_to(payload, ("127.0.0.1", port))
            .expect("sending a datagram");
        wait_until("the datagram's event", DEADLINE, || {
            count_output_lines(&out) > i
        });
    }
    let big = vec![b'x'; 4000];
    socket
        .send_to(&big, ("127.0.0.1", port))
        .expect("sending a big datagram");
    wait_until("the big datagram's event", DEADLINE, || {
        count_output_lines(&out) >= 4
    });
    assert!(agent.terminate().success());
    let lines = output_lines(&out);
    assert_eq!(lines[..3], ["{} first", "{} second", "{} third"]);
    assert_eq!(lines[3], format!("{{}} {}", "x".repeat(4000)));
}

#[test]
fn remote_address_header_names_the_sender() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let cfg = config(&out, "a1.sources.r1.remoteAddressHeader = sender");
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.port_of("r1");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("binding the client");
    let client_port = socket.local_addr().expect("client address").port();
    socket
        .send_to(b"hello", ("127.0.0.1", port))
        .expect("sending a datagram");
    wait_until("the event", DEADLINE, || count_output_lines(&out) >= 1);
    assert!(agent.terminate().success());
    assert_eq!(
        output_lines(&out),
        [format!("{{sender=/127.0.0.1:{client_port}}} hello")]
    );
}
