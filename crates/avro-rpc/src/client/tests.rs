//! The clients against small avro servers run by the tests (this crate's own server side of
//! the protocol over real loopback sockets).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::frame::FrameDecoder;
use crate::protocol::{write_status, Call, Incoming, KnownClients, ServerSession, Status};

/// A server answering every call with `status`; counts the events it accepted.
struct TestServer {
    address: String,
    accepted: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
}

async fn server(status: Status) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let (a, c) = (accepted.clone(), calls.clone());
    tokio::spawn(async move {
        let known = KnownClients::default();
        while let Ok((mut stream, _)) = listener.accept().await {
            let (a, c, known) = (a.clone(), c.clone(), known.clone());
            tokio::spawn(async move {
                let mut session = ServerSession::new(known, 100_000);
                let mut decoder = FrameDecoder::new(1 << 20);
                let mut buf = BytesMut::new();
                loop {
                    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
                        let Ok(incoming) = session.receive(&frame.payload) else {
                            return;
                        };
                        let answer = match incoming {
                            Incoming::Answer(answer) => answer,
                            Incoming::Call { mut prefix, call } => {
                                c.fetch_add(1, Ordering::SeqCst);
                                let n = match call {
                                    Call::AppendBatch(events) => events.len(),
                                    Call::Append(_) => 1,
                                    _ => 0,
                                };
                                if status == Status::Ok {
                                    a.fetch_add(n, Ordering::SeqCst);
                                }
                                write_status(status, &mut prefix);
                                prefix
                            }
                        };
                        let mut out = Vec::new();
                        crate::frame::encode(frame.serial, &answer, &mut out).expect("framed");
                        if stream.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                    let mut chunk = [0u8; 8192];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    TestServer {
        address,
        accepted,
        calls,
    }
}

fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address").to_string()
}

/// A client of `kind` over `hosts`, Flume's other defaults.
fn config(hosts: Vec<String>, kind: ClientKind) -> ClientConfig {
    ClientConfig {
        hosts,
        batch_size: 100,
        options: ConnectionOptions::default(),
        kind,
    }
}

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn events(n: usize) -> Vec<Event> {
    (0..n).map(|i| Event::new(format!("e{i}"))).collect()
}

#[test]
fn flume_properties_choose_the_client_and_its_settings() {
    let c = ClientConfig::from_properties(&props(&[
        ("client.type", "default_loadbalance"),
        ("hosts", "h1 h2"),
        ("hosts.h1", "a:1"),
        ("hosts.h2", "b:2"),
        ("host-selector", "random"),
        ("backoff", "true"),
        ("maxBackoff", "5000"),
        ("batch-size", "7"),
        ("compression-type", "deflate"),
        ("request-timeout", "10"),
    ]))
    .expect("valid");
    assert_eq!(c.hosts, ["a:1", "b:2"]);
    assert_eq!(c.batch_size, 7);
    assert_eq!(c.options.deflate, Some(6));
    assert_eq!(
        c.options.request_timeout,
        Duration::from_secs(1),
        "at least 1 s"
    );
    assert_eq!(
        c.kind,
        ClientKind::LoadBalance {
            selector: Selector::Random,
            backoff: true,
            max_backoff: Duration::from_secs(5)
        }
    );
    let f = ClientConfig::from_properties(&props(&[
        ("client.type", "default_failover"),
        ("hosts", "h1 h2 h3"),
        ("hosts.h1", "a:1"),
        ("hosts.h2", "b:2"),
        ("hosts.h3", "c:3"),
    ]))
    .expect("valid");
    assert_eq!(f.kind, ClientKind::Failover { max_attempts: 3 });
    for bad in [
        props(&[("hosts", "h1")]),
        props(&[("hosts", "h1 h2"), ("hosts.h1", "a:1"), ("hosts.h2", "b:2")]),
        props(&[
            ("hosts", "h1"),
            ("hosts.h1", "a:1"),
            ("client.type", "thrift"),
        ]),
        props(&[("hosts", "h1"), ("hosts.h1", "a:1"), ("batch-size", "many")]),
    ] {
        assert!(ClientConfig::from_properties(&bad).is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn the_default_client_sends_single_events_and_batches_in_batch_size_calls() {
    let s = server(Status::Ok).await;
    let mut config = ClientConfig::single(&s.address);
    config.batch_size = 4;
    let mut client = RpcClient::new(config);
    client.append(Event::new("one")).await.expect("appended");
    client.append_batch(&events(10)).await.expect("appended");
    assert_eq!(s.accepted.load(Ordering::SeqCst), 11);
    assert_eq!(s.calls.load(Ordering::SeqCst), 1 + 3, "4 + 4 + 2");
    let failing = server(Status::Failed).await;
    let mut client = RpcClient::new(ClientConfig::single(&failing.address));
    let error = client.append(Event::new("x")).await.expect_err("FAILED");
    assert!(matches!(error, RpcError::Refused { .. }), "{error}");
}

#[tokio::test]
async fn failover_moves_past_a_dead_host_and_sticks_to_the_live_one() {
    let (failing, live) = (server(Status::Failed).await, server(Status::Ok).await);
    let mut client = RpcClient::new(config(
        vec![
            dead_address(),
            failing.address.clone(),
            live.address.clone(),
        ],
        ClientKind::Failover { max_attempts: 3 },
    ));
    client
        .append_batch(&events(5))
        .await
        .expect("via the third host");
    client.append_batch(&events(5)).await.expect("again");
    assert_eq!(live.accepted.load(Ordering::SeqCst), 10);
    assert_eq!(failing.calls.load(Ordering::SeqCst), 1, "not tried again");
    let mut limited = RpcClient::new(config(
        vec![
            dead_address(),
            failing.address.clone(),
            live.address.clone(),
        ],
        ClientKind::Failover { max_attempts: 2 },
    ));
    let error = limited
        .append_batch(&events(1))
        .await
        .expect_err("two attempts");
    assert!(
        matches!(error, RpcError::AllFailed { attempts: 2, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn load_balancing_spreads_calls_and_backs_off_a_failing_host() {
    let (a, b) = (server(Status::Ok).await, server(Status::Ok).await);
    let mut client = RpcClient::new(config(
        vec![a.address.clone(), b.address.clone()],
        ClientKind::LoadBalance {
            selector: Selector::RoundRobin,
            backoff: false,
            max_backoff: DEFAULT_MAX_BACKOFF,
        },
    ));
    for _ in 0..4 {
        client.append_batch(&events(1)).await.expect("sent");
    }
    assert_eq!(a.calls.load(Ordering::SeqCst), 2);
    assert_eq!(b.calls.load(Ordering::SeqCst), 2);

    let (failing, live) = (server(Status::Failed).await, server(Status::Ok).await);
    let mut client = RpcClient::new(config(
        vec![failing.address.clone(), live.address.clone()],
        ClientKind::LoadBalance {
            selector: Selector::RoundRobin,
            backoff: true,
            max_backoff: DEFAULT_MAX_BACKOFF,
        },
    ));
    // The first call fails on `failing` and goes to `live`; the second would start at
    // `failing` (round robin) but it is left out for a second.
    for _ in 0..2 {
        client
            .append_batch(&events(1))
            .await
            .expect("the live host takes it");
    }
    assert_eq!(live.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(
        failing.calls.load(Ordering::SeqCst),
        1,
        "left out for a second after failing"
    );
}
