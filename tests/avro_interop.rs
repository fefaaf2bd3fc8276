//! Interoperability of the `avro` source and sink with an independent implementation of
//! Flume's Avro RPC (`tests/interop/avro_peer.py`: written from the Avro specification with
//! Python's `avro` package, behaving like Java's client and responder): the NONE handshake
//! path, the handshake sent once per connection, deflate as one zlib stream per connection,
//! FAILED answers rolled back and delivered again. Needs `python3 -m pip install avro`;
//! without it the tests are skipped with a message, unless `FLUMEN_REQUIRE_PY=1`.

#![cfg(feature = "avro-rpc")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/avro_peer.py")
}

/// Whether python3 has the `avro` package; panics under `FLUMEN_REQUIRE_PY=1` if not.
fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import avro.io, avro.schema"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("FLUMEN_REQUIRE_PY").as_deref() != Ok("1"),
            "python3 lacks the avro package (python3 -m pip install avro)"
        );
        eprintln!("skipped: python3 lacks the avro package");
    }
    ok
}

/// avro source → memory → file_roll writing `{headers} body` lines into `dir/out`.
fn collector(dir: &Path, extra: &str) -> String {
    format!(
        "c.sources = r1\nc.channels = c1\nc.sinks = k1\n\
         c.sources.r1.type = avro\nc.sources.r1.bind = 127.0.0.1\nc.sources.r1.port = 0\n\
         c.sources.r1.channels = c1\n{extra}\
         c.channels.c1.type = memory\nc.channels.c1.capacity = 10000\n\
         c.channels.c1.transactionCapacity = 1000\n\
         c.sinks.k1.type = file_roll\nc.sinks.k1.channel = c1\n\
         c.sinks.k1.sink.directory = {}\nc.sinks.k1.sink.rollInterval = 0\n\
         c.sinks.k1.sink.serializer = HEADER_AND_TEXT\n",
        dir.join("out").display()
    )
}

fn python_client(port: u16, deflate: bool) -> serde_json::Value {
    let mut cmd = Command::new("python3");
    cmd.arg(peer_script())
        .args(["client", &port.to_string(), "--connections", "2"])
        .args(["--batches", "5", "--size", "20"]);
    if deflate {
        cmd.arg("--deflate");
    }
    let out = cmd.output().expect("running the python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn python_to_flumen(deflate: bool) {
    if !python_ready() {
        return;
    }
    let dir = test_dir();
    let extra = if deflate {
        "c.sources.r1.compression-type = deflate\n"
    } else {
        ""
    };
    let mut agent = Agent::start(dir.path(), "c", &collector(dir.path(), extra), &[]);
    let port = agent.wait_for_port("r1");
    let summary = python_client(port, deflate);
    assert_eq!(summary["sent"], 200);
    // The first connection takes the NONE path (its protocol text is not ours) and is then
    // established; the second is known by its hash at once; neither handshakes again.
    assert_eq!(
        summary["matches"],
        serde_json::json!([["NONE", "BOTH"], ["BOTH"]]),
        "{summary}"
    );
    let out = dir.path().join("out");
    wait_until("200 events written", DEADLINE, || {
        count_output_lines(&out) >= 200
    });
    let lines = output_lines(&out);
    assert_eq!(lines.len(), 200);
    let mut seen: Vec<usize> = lines
        .iter()
        .map(|line| {
            let (_, body) = line.rsplit_once("} ").unwrap_or_else(|| panic!("{line}"));
            let n: usize = body
                .strip_prefix("py-")
                .and_then(|b| b.strip_suffix(" \u{e9}"))
                .and_then(|b| b.parse().ok())
                .unwrap_or_else(|| panic!("{line}"));
            for header in [format!("n={n}"), "k=v=w".into(), "h\u{e9}=\u{2603}".into()] {
                assert!(line.contains(&header), "{header} in {line}");
            }
            n
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..200).collect::<Vec<_>>(), "each event once");
    assert!(agent.terminate().success(), "{}", agent.log());
}

#[test]
fn a_java_like_client_is_served_with_the_none_path_and_one_handshake_per_connection() {
    python_to_flumen(false);
}

#[test]
fn a_java_like_client_is_served_over_one_zlib_stream_per_connection() {
    python_to_flumen(true);
}

/// The python responder, its port, and the file it records into.
struct Responder {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn responder(dir: &Path, deflate: bool, fail_first: u32) -> Responder {
    let out = dir.join("received.jsonl");
    let mut cmd = Command::new("python3");
    cmd.arg(peer_script())
        .args(["server", "--out"])
        .arg(&out)
        .args(["--fail-first", &fail_first.to_string()])
        .stdout(Stdio::piped());
    if deflate {
        cmd.arg("--deflate");
    }
    let mut child = cmd.spawn().expect("starting the python responder");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("its port");
    let port = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Responder { child, port, out }
}

fn flumen_to_python(deflate: bool) {
    if !python_ready() {
        return;
    }
    let dir = test_dir();
    let peer = responder(dir.path(), deflate, 2);
    let compression = if deflate {
        "a1.sinks.k1.compression-type = deflate\n"
    } else {
        ""
    };
    let cfg = format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
         a1.sources.r1.type = seq\na1.sources.r1.totalEvents = 300\na1.sources.r1.batchSize = 50\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\na1.channels.c1.capacity = 1000\n\
         a1.channels.c1.transactionCapacity = 100\n\
         a1.sinks.k1.type = avro\na1.sinks.k1.channel = c1\na1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {}\na1.sinks.k1.batch-size = 50\n{compression}",
        peer.port
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let received = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&peer.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    wait_until("300 events at the python responder", DEADLINE, || {
        received()
            .iter()
            .filter(|r| r.get("body").is_some())
            .count()
            >= 300
    });
    assert!(agent.terminate().success(), "{}", agent.log());
    let records = received();
    let matches: Vec<&str> = records.iter().filter_map(|r| r["match"].as_str()).collect();
    // Our hash is unknown to it: NONE, then our text is accepted. The two FAILED answers
    // reset the connection, so each new connection handshakes again (now known: BOTH).
    assert_eq!(matches[..2], ["NONE", "BOTH"], "{matches:?}");
    assert!(matches[2..].iter().all(|m| *m == "BOTH"), "{matches:?}");
    let failed: u64 = records.iter().filter_map(|r| r["failed"].as_u64()).sum();
    assert_eq!(failed, 100, "two batches of 50 answered FAILED");
    let mut bodies: Vec<u64> = records
        .iter()
        .filter_map(|r| r["body"].as_str())
        .map(|b| {
            let bytes = base64_decode(b);
            String::from_utf8(bytes)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("a seq body: {b}"))
        })
        .collect();
    bodies.sort_unstable();
    assert_eq!(
        bodies,
        (0..300).collect::<Vec<u64>>(),
        "each event once: the FAILED batches came again"
    );
}

/// Decodes standard base64 (the responder's record of a body).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            _ => 63,
        }
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn flumens_sink_delivers_to_a_java_like_responder_and_redelivers_failed_batches() {
    flumen_to_python(false);
}

#[test]
fn flumens_sink_delivers_over_deflate_to_a_java_like_responder() {
    flumen_to_python(true);
}
