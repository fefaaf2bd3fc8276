//! TLS on the `avro` source and sink: Flumen to Flumen with PKCS#12 stores (the collector's
//! keystore given as `-Djavax.net.ssl.*` system properties), a Java-like Python client and
//! responder over Python's `ssl` (PEM keystore, `trust-all-certs`), a client without TLS
//! dropped while TLS clients are served, and a JKS keystore named as such. Certificates come
//! from `tests/interop/make_certs.py` (Python's `cryptography`, and Java's `keytool` for the
//! stores a Java user makes); without them, or without Python's `avro`, the tests are skipped
//! with a message unless `FLUMEN_REQUIRE_PY=1`.

#![cfg(feature = "avro-rpc")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

fn interop(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(file)
}

/// Makes the test certificates in `dir`; false (skipped) when Python lacks the packages.
fn certificates(dir: &Path) -> bool {
    let ready = Command::new("python3")
        .args(["-c", "import cryptography, avro.io"])
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("keytool")
            .arg("-help")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok();
    if !ready {
        assert!(
            std::env::var("FLUMEN_REQUIRE_PY").as_deref() != Ok("1"),
            "python3 lacks cryptography or avro, or keytool is missing"
        );
        eprintln!("skipped: python3 lacks cryptography or avro, or keytool is missing");
        return false;
    }
    let made = Command::new("python3")
        .arg(interop("make_certs.py"))
        .arg(dir)
        .status()
        .expect("running make_certs.py");
    assert!(made.success());
    true
}

/// avro source (TLS, `extra` source keys) → memory → file_roll into `dir/out`.
fn collector(dir: &Path, port: u16, extra: &str) -> String {
    format!(
        "c.sources = r1\nc.channels = c1\nc.sinks = k1\n\
         c.sources.r1.type = avro\nc.sources.r1.bind = 127.0.0.1\nc.sources.r1.port = {port}\n\
         c.sources.r1.channels = c1\nc.sources.r1.ssl = true\n{extra}\
         c.channels.c1.type = memory\n\
         c.sinks.k1.type = file_roll\nc.sinks.k1.channel = c1\n\
         c.sinks.k1.sink.directory = {}\nc.sinks.k1.sink.rollInterval = 0\n",
        dir.join("out").display()
    )
}

/// seq (`n` events) → memory → avro sink (TLS, `extra` sink keys) to `host:port`.
fn edge(host: &str, port: u16, n: usize, extra: &str) -> String {
    format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
         a1.sources.r1.type = seq\na1.sources.r1.totalEvents = {n}\na1.sources.r1.batchSize = 10\n\
         a1.sources.r1.channels = c1\na1.channels.c1.type = memory\n\
         a1.sinks.k1.type = avro\na1.sinks.k1.channel = c1\na1.sinks.k1.hostname = {host}\n\
         a1.sinks.k1.port = {port}\na1.sinks.k1.batch-size = 20\na1.sinks.k1.ssl = true\n{extra}"
    )
}

/// The collector's config under agent name `a1` (what `check_json` checks).
fn as_a1(config: &str) -> String {
    config
        .lines()
        .map(|l| {
            l.strip_prefix("c.")
                .map_or(l.to_string(), |rest| format!("a1.{rest}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs the Python client against `port` over TLS (trusting the test CA): two connections
/// of `args`'s batches of 10 events; asserts it succeeded.
fn python_client(port: u16, certs: &Path, args: &[&str]) {
    let out = Command::new("python3")
        .arg(interop("avro_peer.py"))
        .args([
            "client",
            &port.to_string(),
            "--connections",
            "2",
            "--size",
            "10",
        ])
        .args(args)
        .arg("--tls-ca")
        .arg(certs.join("ca.pem"))
        .output()
        .expect("python client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sorted_numbers(lines: Vec<String>) -> Vec<u64> {
    let mut n: Vec<u64> = lines.iter().filter_map(|l| l.trim().parse().ok()).collect();
    n.sort_unstable();
    n
}

#[test]
fn flumen_to_flumen_over_tls_with_pkcs12_stores_and_system_properties() {
    let dir = test_dir();
    let certs = dir.path().join("certs");
    if !certificates(&certs) {
        return;
    }
    let port = unused_port();
    // The collector's keystore comes from the JVM-style system properties.
    let keystore = format!(
        "-Djavax.net.ssl.keyStore={}",
        certs.join("server.p12").display()
    );
    let mut c = Agent::start(
        dir.path(),
        "c",
        &collector(dir.path(), port, ""),
        &[
            &keystore,
            "-Djavax.net.ssl.keyStorePassword=changeit",
            "-Djavax.net.ssl.keyStoreType=PKCS12",
        ],
    );
    c.wait_for_port("r1");
    let edge_dir = test_dir();
    let extra = format!(
        "a1.sinks.k1.truststore = {}\na1.sinks.k1.truststore-password = changeit\n\
         a1.sinks.k1.truststore-type = PKCS12\n",
        certs.join("truststore.p12").display()
    );
    let mut a = Agent::start(
        edge_dir.path(),
        "a1",
        &edge("localhost", port, 100, &extra),
        &[],
    );
    let out = dir.path().join("out");
    wait_until("100 events over TLS", DEADLINE, || {
        count_output_lines(&out) >= 100
    });
    assert!(a.terminate().success(), "{}", a.log());
    // A client without TLS gets no Avro answer (at most a TLS alert, record type 21) and is
    // dropped; the collector goes on.
    let answer = tcp_send(
        port,
        b"\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00",
    );
    assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
    assert!(c.is_running());
    assert!(c.terminate().success(), "{}", c.log());
    assert_eq!(
        sorted_numbers(output_lines(&out)),
        (0..100).collect::<Vec<_>>()
    );
}

#[test]
fn a_java_like_python_client_and_responder_speak_tls_with_flumen() {
    let dir = test_dir();
    let certs = dir.path().join("certs");
    if !certificates(&certs) {
        return;
    }
    // Python client → Flumen collector with a PEM keystore.
    let port = unused_port();
    let extra = format!(
        "c.sources.r1.keystore = {}\nc.sources.r1.keystore-type = PEM\n",
        certs.join("server.pem").display()
    );
    let mut c = Agent::start(dir.path(), "c", &collector(dir.path(), port, &extra), &[]);
    c.wait_for_port("r1");
    python_client(port, &certs, &["--batches", "3"]);
    let collected = dir.path().join("out");
    wait_until("60 events from python", DEADLINE, || {
        count_output_lines(&collected) >= 60
    });
    assert!(c.terminate().success(), "{}", c.log());

    // Flumen's sink → a Python responder over TLS, trusting any certificate.
    let received = dir.path().join("received.jsonl");
    let mut peer = Command::new("python3")
        .arg(interop("avro_peer.py"))
        .args(["server", "--out"])
        .arg(&received)
        .arg("--tls-cert")
        .arg(certs.join("server-cert.pem"))
        .arg("--tls-key")
        .arg(certs.join("server-key.pem"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python responder");
    let mut line = String::new();
    let stdout = peer.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("its port");
    let peer_port: u16 = line
        .trim()
        .trim_start_matches("port ")
        .parse()
        .expect("a port");
    let edge_dir = test_dir();
    let cfg = edge(
        "127.0.0.1",
        peer_port,
        50,
        "a1.sinks.k1.trust-all-certs = true\n",
    );
    let mut a = Agent::start(edge_dir.path(), "a1", &cfg, &[]);
    let bodies = || {
        std::fs::read_to_string(&received)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"body\""))
            .count()
    };
    wait_until("50 events at the python responder", DEADLINE, || {
        bodies() >= 50
    });
    assert!(a.terminate().success(), "{}", a.log());
    let _ = peer.kill();
    let _ = peer.wait();
}

#[test]
fn a_jks_keystore_is_named_with_the_command_that_converts_it() {
    let dir = test_dir();
    let certs = dir.path().join("certs");
    if !certificates(&certs) {
        return;
    }
    let extra = format!(
        "c.sources.r1.keystore = {}\nc.sources.r1.keystore-password = changeit\n",
        certs.join("truststore.jks").display()
    );
    let (code, json, _) = check_json(&as_a1(&collector(dir.path(), 4141, &extra)), &[]);
    assert_ne!(code, 0);
    let found = findings_of(&json, "unsupported-type");
    assert!(
        found.iter().any(|f| f["message"]
            .as_str()
            .is_some_and(|m| m.contains("keytool -importkeystore"))),
        "{json:#}"
    );
    assert_eq!(findings_of(&json, "partial-topology").len(), 1, "{json:#}");
}

#[test]
fn protocol_and_suite_filters_that_leave_nothing_are_reported() {
    let dir = test_dir();
    let certs = dir.path().join("certs");
    if !certificates(&certs) {
        return;
    }
    let keystore = format!(
        "c.sources.r1.keystore = {}\nc.sources.r1.keystore-type = PEM\n",
        certs.join("server.pem").display()
    );
    for (filter, key) in [
        (
            "c.sources.r1.include-protocols = TLSv1 TLSv1.1\n",
            "include-protocols",
        ),
        (
            "c.sources.r1.exclude-protocols = SSLv3,TLSv1.2,TLSv1.3\n",
            "include-protocols",
        ),
        (
            "c.sources.r1.include-cipher-suites = TLS_RSA_WITH_RC4_128_MD5\n",
            "include-cipher-suites",
        ),
    ] {
        let cfg = as_a1(&collector(dir.path(), 4141, &format!("{keystore}{filter}")));
        let (code, json, _) = check_json(&cfg, &[]);
        assert_ne!(code, 0, "{filter}");
        let dropped = findings_of(&json, "bad-value");
        assert!(
            dropped
                .iter()
                .any(|f| f["key"] == format!("a1.sources.r1.{key}")),
            "{filter}: {json:#}"
        );
    }
    // A filter that leaves TLS 1.3 only is fine.
    let only_13 = format!("{keystore}c.sources.r1.include-protocols = TLSv1.3\n");
    let (code, json, _) = check_json(&as_a1(&collector(dir.path(), 4141, &only_13)), &[]);
    assert_eq!(code, 0, "{json:#}");
}

#[test]
fn tls_inside_deflate_as_flume_layers_them_with_a_python_peer_and_a_flumen_edge() {
    let dir = test_dir();
    let certs = dir.path().join("certs");
    if !certificates(&certs) {
        return;
    }
    let port = unused_port();
    let source = format!(
        "c.sources.r1.keystore = {}\nc.sources.r1.keystore-type = PEM\n\
         c.sources.r1.compression-type = deflate\n",
        certs.join("server.pem").display()
    );
    let mut c = Agent::start(dir.path(), "c", &collector(dir.path(), port, &source), &[]);
    c.wait_for_port("r1");
    // A Python peer running ssl.MemoryBIO inside zlib: Flume 1.11's order.
    python_client(port, &certs, &["--batches", "2", "--deflate"]);
    let out = dir.path().join("out");
    wait_until("40 events from python", DEADLINE, || {
        count_output_lines(&out) >= 40
    });
    let sink = format!(
        "a1.sinks.k1.truststore = {}\na1.sinks.k1.compression-type = deflate\n",
        certs.join("ca.pem").display()
    );
    let edge_dir = test_dir();
    let mut a = Agent::start(
        edge_dir.path(),
        "a1",
        &edge("localhost", port, 200, &sink),
        &[],
    );
    wait_until("200 more from a Flumen edge", DEADLINE, || {
        count_output_lines(&out) >= 240
    });
    assert!(a.terminate().success(), "{}", a.log());
    assert!(c.terminate().success(), "{}", c.log());
    let seq: Vec<String> = output_lines(&out)
        .into_iter()
        .filter(|l| !l.contains("py-"))
        .collect();
    assert_eq!(sorted_numbers(seq), (0..200).collect::<Vec<_>>());
}
