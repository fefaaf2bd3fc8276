//! Config reading and per-answer accounting of the http sink, against a tiny local server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::*;
use crate::config::{Origin, Prop, Props};

fn props(entries: &[(String, String)]) -> Props {
    let file: Arc<Path> = Arc::from(Path::new("t.properties"));
    let mut p = Props::new();
    for (i, (k, v)) in entries.iter().enumerate() {
        p.insert(
            k.clone(),
            Prop {
                value: v.to_string(),
                full_key: format!("a1.sinks.k1.{k}"),
                origin: Origin {
                    file: file.clone(),
                    line: i as u32 + 1,
                },
            },
        );
    }
    p
}

/// Flume's advice for a working sink: commit, count and go on after a 2XX.
const OK_2XX: &[(&str, &str)] = &[
    ("rollback.2XX", "false"),
    ("backoff.2XX", "false"),
    ("incrementMetrics.2XX", "true"),
];

fn config(entries: &[(String, String)]) -> (Option<HttpSinkConfig>, Vec<Finding>) {
    let p = props(entries);
    let mut r = PropReader::new(&p, "a1.sinks.k1");
    let c = HttpSinkConfig::from_props(&mut r);
    (c, r.finish())
}

/// [`OK_2XX`] plus `extra`, as owned entries.
fn with_ok(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    OK_2XX
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn flume_defaults_apply() {
    let (c, findings) = config(&with_ok(&[("endpoint", "http://127.0.0.1:9/x")]));
    let c = c.expect("built");
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(c.connect_timeout, Duration::from_millis(5000));
    assert_eq!(c.request_timeout, Duration::from_millis(5000));
    assert_eq!(c.content_type, "text/plain");
    assert_eq!(c.accept, "text/plain");
    assert_eq!(c.batch_mode, BatchMode::None);
    assert_eq!(c.batch_size, 1);
}

#[test]
fn json_mode_defaults_to_json_content_and_batches_of_100() {
    let (c, _) = config(&with_ok(&[
        ("endpoint", "https://example.invalid/"),
        ("batchMode", "JSON"),
    ]));
    let c = c.expect("built");
    assert_eq!(c.batch_mode, BatchMode::Json);
    assert_eq!(c.content_type, JSON_CONTENT_TYPE);
    assert_eq!(c.batch_size, 100);
    let (c, _) = config(&with_ok(&[
        ("endpoint", "http://h/"),
        ("batchMode", "json"),
        ("contentTypeHeader", "application/x-flume"),
        ("batchSize", "7"),
    ]));
    let c = c.expect("built");
    assert_eq!(c.content_type, "application/x-flume");
    assert_eq!(c.batch_size, 7);
}

#[test]
fn a_missing_or_unusable_endpoint_drops_the_sink() {
    for endpoint in [
        None,
        Some(""),
        Some("ftp://h/x"),
        Some("not a url"),
        Some("/path"),
    ] {
        // Flume's defaults: a dropped sink gets no finding about its policies.
        let mut entries: Vec<(String, String)> = Vec::new();
        if let Some(e) = endpoint {
            entries.push(("endpoint".into(), e.into()));
        }
        let (c, findings) = config(&entries);
        assert!(c.is_none(), "{endpoint:?}");
        assert!(
            findings.iter().any(|f| f.key == "a1.sinks.k1.endpoint"),
            "{endpoint:?}: {findings:?}"
        );
        assert_eq!(findings.len(), 1, "{endpoint:?}: {findings:?}");
    }
}

#[test]
fn zero_or_bad_timeouts_drop_the_sink_as_in_flume() {
    for (key, value) in [
        ("connectTimeout", "0"),
        ("requestTimeout", "-5"),
        ("connectTimeout", "soon"),
    ] {
        let (c, findings) = config(&with_ok(&[("endpoint", "http://h/"), (key, value)]));
        assert!(c.is_none(), "{key}={value}");
        assert_eq!(findings[0].kind, FindingKind::BadValue);
    }
}

#[test]
fn an_https_endpoint_builds_a_client() {
    let (c, _) = config(&with_ok(&[("endpoint", "https://localhost:8443/in")]));
    assert!(HttpSink::new(c.expect("built")).is_ok());
}

/// One recorded request: (content type, body).
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Serves keep-alive HTTP/1.1 on loopback, answering with `statuses` in turn (then 200).
fn server(statuses: Vec<u16>) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen: Seen = Arc::default();
    let script = Arc::new(Mutex::new(statuses.into_iter()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let (s, script) = (s.clone(), script.clone());
            std::thread::spawn(move || serve(stream, &s, &script));
        }
    });
    (port, seen)
}

fn serve(stream: TcpStream, seen: &Seen, script: &Mutex<std::vec::IntoIter<u16>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (mut len, mut content_type) = (0usize, String::new());
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
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().expect("length"),
                    "content-type" => content_type = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).expect("body");
        seen.lock().expect("lock").push((content_type, body));
        let status = script.lock().expect("lock").next().unwrap_or(200);
        let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok");
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn sink(port: u16, extra: &[(&str, &str)]) -> HttpSink {
    let endpoint = format!("http://127.0.0.1:{port}/in");
    let mut entries = with_ok(extra);
    entries.push(("endpoint".into(), endpoint));
    let (c, findings) = config(&entries);
    let c = c.unwrap_or_else(|| panic!("{findings:?}"));
    HttpSink::new(c).expect("client")
}

fn events(bodies: &[&str]) -> Vec<Event> {
    bodies.iter().map(|b| Event::new(b.to_string())).collect()
}

#[tokio::test]
async fn per_event_posts_each_body_skips_empty_ones_and_counts_2xx() {
    let (port, seen) = server(vec![200, 204, 200]);
    let mut s = sink(port, &[("batchSize", "10")]);
    let d = s
        .deliver_accounted(&events(&["a", "", "b", "c"]))
        .await
        .expect("delivered");
    assert_eq!(d, Delivered::all(3));
    let seen = seen.lock().expect("lock").clone();
    let bodies: Vec<&[u8]> = seen.iter().map(|(_, b)| b.as_slice()).collect();
    assert_eq!(bodies, [b"a", b"b", b"c"]);
    assert!(seen.iter().all(|(ct, _)| ct == "text/plain"));
}

#[tokio::test]
async fn a_rollback_status_stops_the_batch_and_fails_with_its_backoff() {
    let (port, seen) = server(vec![200, 503]);
    let mut s = sink(port, &[("backoff.503", "false")]);
    let err = s
        .deliver_accounted(&events(&["a", "b", "c"]))
        .await
        .expect_err("rolled back");
    match &err {
        SinkError::Rejected {
            status,
            backoff,
            policy_key,
            ..
        } => {
            assert_eq!((*status, *backoff), (503, false));
            assert_eq!(policy_key, "defaultRollback");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.backoff());
    assert_eq!(seen.lock().expect("lock").len(), 2, "c is never posted");
}

#[tokio::test]
async fn a_committed_error_status_is_not_counted_and_may_ask_for_backoff() {
    let (port, _) = server(vec![400, 200]);
    let mut s = sink(port, &[("rollback.400", "false")]);
    let d = s
        .deliver_accounted(&events(&["bad", "good"]))
        .await
        .expect("committed");
    // 400: committed, not counted (defaultIncrementMetrics), backoff (defaultBackoff).
    assert_eq!(
        d,
        Delivered {
            drained: 1,
            backoff: true
        }
    );
}

#[tokio::test]
async fn json_mode_posts_one_request_per_batch() {
    let (port, seen) = server(vec![200]);
    let mut s = sink(port, &[("batchMode", "json")]);
    let mut batch = events(&["x", "y"]);
    batch[0].headers.insert("h".into(), "1".into());
    let d = s.deliver_accounted(&batch).await.expect("delivered");
    assert_eq!(d, Delivered::all(2));
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, JSON_CONTENT_TYPE);
    let v: serde_json::Value = serde_json::from_slice(&seen[0].1).expect("json");
    assert_eq!(
        v,
        serde_json::json!([{"headers":{"h":"1"},"body":"x"},{"headers":{},"body":"y"}])
    );
}

#[tokio::test]
async fn a_closed_port_is_a_transport_error_with_backoff() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut s = sink(port, &[("connectTimeout", "200")]);
    let err = s.deliver(&events(&["a"])).await.expect_err("refused");
    assert!(matches!(err, SinkError::Transport { .. }), "{err:?}");
    assert!(err.backoff());
    assert_eq!(err.code(), "transport");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accepts and reads, never answers.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            held.push(stream);
        }
    });
    let mut s = sink(port, &[("requestTimeout", "200")]);
    let err = s.deliver(&events(&["a"])).await.expect_err("timed out");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[test]
fn batch_bytes_and_concurrency_have_defaults_and_bounds() {
    let (c, _) = config(&with_ok(&[
        ("endpoint", "http://h/"),
        ("batchMode", "json"),
    ]));
    let c = c.expect("built");
    assert_eq!(c.batch_bytes, DEFAULT_BATCH_BYTES);
    assert_eq!(c.concurrency, 1, "one take at a time, as Flume");
    let (c, _) = config(&with_ok(&[("endpoint", "http://h/"), ("concurrency", "8")]));
    assert_eq!(c.expect("built").concurrency, 8);
    for bad in ["0", "65", "many"] {
        let (c, findings) = config(&with_ok(&[("endpoint", "http://h/"), ("concurrency", bad)]));
        assert!(c.is_none(), "concurrency={bad}");
        assert_eq!(findings[0].key, "a1.sinks.k1.concurrency");
    }
}

#[tokio::test]
async fn json_mode_cuts_a_take_into_requests_of_at_most_batch_bytes() {
    let (port, seen) = server(vec![]);
    // Each 30-byte body is estimated at 80 bytes of JSON: two fit in 200.
    let mut s = sink(port, &[("batchMode", "json"), ("batchBytes", "200")]);
    let bodies: Vec<String> = (0..5).map(|i| format!("{i:030}")).collect();
    let batch: Vec<Event> = bodies.iter().map(|b| Event::new(b.clone())).collect();
    let d = s.deliver_accounted(&batch).await.expect("delivered");
    assert_eq!(d, Delivered::all(5));
    let seen = seen.lock().expect("lock").clone();
    let per_request: Vec<Vec<String>> = seen
        .iter()
        .map(|(_, body)| {
            let v: serde_json::Value = serde_json::from_slice(body).expect("json");
            v.as_array()
                .expect("array")
                .iter()
                .map(|e| e["body"].as_str().expect("body").to_string())
                .collect()
        })
        .collect();
    assert_eq!(
        per_request.iter().map(Vec::len).collect::<Vec<_>>(),
        [2, 2, 1]
    );
    assert_eq!(per_request.concat(), bodies, "every event once, in order");
    assert!(seen.iter().all(|(_, body)| body.len() <= 200));
}

#[tokio::test]
async fn with_concurrency_a_take_is_acknowledged_by_its_answers() {
    let (port, seen) = server(vec![503]);
    let mut s = sink(port, &[("concurrency", "4"), ("batchSize", "10")]);
    assert_eq!(s.acks_in_flight(), 4);
    let Delivery::Later(first) = s.submit(&events(&["a", "b"])).await.expect("handed") else {
        panic!("acknowledged later");
    };
    assert!(
        matches!(first.await, Err(SinkError::Rejected { status: 503, .. })),
        "the answer decides the take"
    );
    let Delivery::Later(second) = s.submit(&events(&["c"])).await.expect("handed") else {
        panic!("acknowledged later");
    };
    assert_eq!(second.await.expect("acked"), Delivered::all(1));
    assert_eq!(
        seen.lock().expect("lock").len(),
        2,
        "a, then c (b never posted)"
    );
    let mut one = sink(port, &[]);
    assert!(matches!(
        one.submit(&events(&["d"])).await.expect("delivered"),
        Delivery::Done(_)
    ));
}
