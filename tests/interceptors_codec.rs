//! The `compress`, `decompress`, `encrypt` and `decrypt` interceptors through the real binary:
//! round trips, cross-checks against independent Python libraries, and dead-lettering.
//!
//! The Python cross-checks need `cryptography`, `zstandard`, `lz4` and `cramjam`
//! (`python3 -m pip install cryptography zstandard lz4 cramjam`). Without them the checks are
//! skipped with a message, unless `FLUMEN_REQUIRE_PY=1`, which makes them fail.
//!
//! Binary output is framed by its headers: file_roll with `HEADER_AND_TEXT` writes
//! `{k=v, ...} body\n`, and every test event carries a unique `seq` header, so a record starts
//! at `{...seq=NNNNNN, src=xx} ` at the start of the file or after a newline, and its body runs
//! to the newline before the next record. A random binary body reproducing such a prefix
//! (over 25 fixed bytes) is beyond chance, and would fail the test loudly (a duplicate or
//! undecodable record), never pass it silently.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::*;

/// A small deterministic generator (xorshift64*), so runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 32) as u8).collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_file(dir: &Path, name: &str, key: &[u8; 32]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{}\n", hex(key))).expect("writing the key");
    path.display().to_string()
}

const HEAD: &str = "a1.channels = c1\n\
     a1.channels.c1.type = memory\n\
     a1.channels.c1.capacity = 100000\n\
     a1.channels.c1.transactionCapacity = 5000\n";

fn file_roll(name: &str, channel: &str, dir: &Path, serializer: &str) -> String {
    format!(
        "a1.sinks.{name}.type = file_roll\n\
         a1.sinks.{name}.channel = {channel}\n\
         a1.sinks.{name}.sink.directory = {}\n\
         a1.sinks.{name}.sink.rollInterval = 0\n\
         a1.sinks.{name}.sink.batchSize = 5000\n\
         a1.sinks.{name}.sink.serializer = {serializer}\n",
        dir.display()
    )
}

fn send_lines(port: u16, lines: &[String]) {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut w = std::io::BufWriter::with_capacity(1 << 16, stream);
    for l in lines {
        w.write_all(l.as_bytes()).expect("send");
        w.write_all(b"\n").expect("send");
    }
    w.flush().expect("flush");
}

/// (a) 100,000 random text bodies of random lengths through compress → encrypt → decrypt →
/// decompress, 25,000 per codec (one netcat source per codec), bit-exact at the output.
#[test]
fn one_hundred_thousand_random_bodies_round_trip_through_every_codec_and_aes_gcm() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let key = key_file(dir.path(), "k1.key", &[0x5a; 32]);
    let codecs = ["gzip", "zstd", "snappy", "lz4"];
    let mut cfg = format!("a1.sources = {}\na1.sinks = k1\n{HEAD}", codecs.join(" "));
    for c in codecs {
        cfg.push_str(&format!(
            "a1.sources.{c}.type = netcat\n\
             a1.sources.{c}.bind = 127.0.0.1\n\
             a1.sources.{c}.port = 0\n\
             a1.sources.{c}.ack-every-event = false\n\
             a1.sources.{c}.channels = c1\n\
             a1.sources.{c}.interceptors = z e d u\n\
             a1.sources.{c}.interceptors.z.type = compress\n\
             a1.sources.{c}.interceptors.z.codec = {c}\n\
             a1.sources.{c}.interceptors.e.type = encrypt\n\
             a1.sources.{c}.interceptors.e.keyFile = {key}\n\
             a1.sources.{c}.interceptors.e.keyId = k1\n\
             a1.sources.{c}.interceptors.d.type = decrypt\n\
             a1.sources.{c}.interceptors.d.keys = k1\n\
             a1.sources.{c}.interceptors.d.keys.k1.keyFile = {key}\n\
             a1.sources.{c}.interceptors.u.type = decompress\n"
        ));
    }
    cfg.push_str(&file_roll("k1", "c1", &out, "TEXT"));
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut all = Vec::new();
    for (n, c) in codecs.iter().enumerate() {
        let port = agent.port_of(c);
        let lines: Vec<String> = (0..25_000)
            .map(|i| {
                let len = 1 + (rng.next() % 180) as usize;
                format!("{n}{i:05}-{}", hex(&rng.bytes(len)))
            })
            .collect();
        send_lines(port, &lines);
        all.extend(lines);
    }
    wait_until("100000 lines in the output", DEADLINE, || {
        count_output_lines(&out) >= all.len()
    });
    assert!(agent.terminate().success(), "log:\n{}", agent.log());
    let mut got = output_lines(&out);
    got.sort();
    all.sort();
    assert!(
        got == all,
        "{} lines out, {} sent; first differences: {:?}",
        got.len(),
        all.len(),
        got.iter().zip(&all).find(|(a, b)| a != b)
    );
}

/// Whether python3 has the cross-check modules; panics under `FLUMEN_REQUIRE_PY=1` if not.
fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cryptography, zstandard, lz4.frame, cramjam"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let msg = "python3 lacks cryptography/zstandard/lz4/cramjam \
                   (python3 -m pip install cryptography zstandard lz4 cramjam)";
        if std::env::var("FLUMEN_REQUIRE_PY").as_deref() == Ok("1") {
            panic!("{msg}; FLUMEN_REQUIRE_PY=1");
        }
        eprintln!("skipping the Python cross-check: {msg}");
    }
    ok
}

const PY: &str = r#"
import base64, json, os, re, sys, gzip
import zstandard, lz4.frame, cramjam
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def unpack(codec, data):
    if codec == "gzip": return gzip.decompress(data)
    if codec == "zstd": return zstandard.ZstdDecompressor().decompress(data)
    if codec == "snappy": return bytes(cramjam.snappy.decompress(data))
    if codec == "lz4": return lz4.frame.decompress(data)
    raise ValueError(codec)

def pack(codec, data):
    if codec == "gzip": return gzip.compress(data)
    if codec == "zstd": return zstandard.ZstdCompressor(level=5).compress(data)
    if codec == "snappy": return bytes(cramjam.snappy.compress(data))
    if codec == "lz4": return lz4.frame.compress(data)
    raise ValueError(codec)

mode, key = sys.argv[1], bytes.fromhex(sys.argv[2])
if mode == "decode":
    blob = b"".join(open(os.path.join(sys.argv[3], f), "rb").read() for f in sorted(os.listdir(sys.argv[3])))
    head = re.compile(rb"(?:^|(?<=\n))\{((?:flumen\.[a-z.]+=[^,{}\n]*, )*)seq=(\d{6}), src=([a-z]+)\} ")
    marks = list(head.finditer(blob))
    result = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() - 1 if i + 1 < len(marks) else len(blob) - 1
        assert blob[end:end + 1] == b"\n", "record not followed by a newline"
        body = blob[m.end():end]
        headers = dict(h.split("=", 1) for h in m.group(1).decode().split(", ") if h)
        if "flumen.crypto.nonce" in headers:
            kid = headers["flumen.key.id"]
            body = AESGCM(key).decrypt(base64.b64decode(headers["flumen.crypto.nonce"]), body, kid.encode())
        if "flumen.codec" in headers:
            body = unpack(headers["flumen.codec"], body)
        name = m.group(3).decode() + ":" + m.group(2).decode()
        assert name not in result, "duplicate record " + name
        result[name] = body.hex()
    print(json.dumps(result))
else:
    n, out = int(sys.argv[3]), []
    for codec in ["gzip", "zstd", "snappy", "lz4"]:
        for i in range(n):
            plain = os.urandom(1 + i * 7 % 300).hex().encode()
            payload = pack(codec, plain)
            item = {"codec": codec, "plain": plain.decode()}
            if i % 2 == 1:
                nonce = os.urandom(12)
                payload = AESGCM(key).encrypt(nonce, payload, b"py-key")
                item["nonce"] = base64.b64encode(nonce).decode()
            item["payload"] = payload.hex()
            out.append(item)
    print(json.dumps(out))
"#;

fn python(dir: &Path, args: &[&str]) -> String {
    let script = dir.join("codec_check.py");
    std::fs::write(&script, PY).expect("writing the script");
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn blob_source(name: &str, chain: &str) -> String {
    format!(
        "a1.sources.{name}.type = http\n\
         a1.sources.{name}.bind = 127.0.0.1\n\
         a1.sources.{name}.port = 0\n\
         a1.sources.{name}.handler = org.apache.flume.source.http.BLOBHandler\n\
         a1.sources.{name}.channels = c1\n\
         {chain}"
    )
}

/// (b) Flumen compresses and encrypts, Python decodes; Python compresses and encrypts,
/// Flumen decodes.
#[test]
fn independent_python_libraries_read_and_write_the_same_formats() {
    if !python_ready() {
        return;
    }
    let dir = test_dir();
    let key = [0xc3u8; 32];
    let key_hex = hex(&key);
    let kf = key_file(dir.path(), "k.key", &key);

    // Flumen → Python: one blob source per codec, and one that compresses then encrypts.
    let out = dir.path().join("out");
    let mut cfg = format!("a1.sources = gz zs sn lz en\na1.sinks = k1\n{HEAD}");
    for (src, codec) in [
        ("gz", "gzip"),
        ("zs", "zstd"),
        ("sn", "snappy"),
        ("lz", "lz4"),
    ] {
        cfg.push_str(&blob_source(
            src,
            &format!(
                "a1.sources.{src}.interceptors = z\n\
                 a1.sources.{src}.interceptors.z.type = compress\n\
                 a1.sources.{src}.interceptors.z.codec = {codec}\n"
            ),
        ));
    }
    cfg.push_str(&blob_source(
        "en",
        &format!(
            "a1.sources.en.interceptors = z e\n\
             a1.sources.en.interceptors.z.type = compress\n\
             a1.sources.en.interceptors.z.codec = zstd\n\
             a1.sources.en.interceptors.e.type = encrypt\n\
             a1.sources.en.interceptors.e.keyFile = {kf}\n\
             a1.sources.en.interceptors.e.keyId = rust-key\n"
        ),
    ));
    cfg.push_str(&file_roll("k1", "c1", &out, "HEADER_AND_TEXT"));
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let mut rng = Rng(42);
    let mut sent = BTreeMap::new();
    for src in ["gz", "zs", "sn", "lz", "en"] {
        let port = agent.port_of(src);
        for seq in 0..40 {
            // Binary bodies, newlines and braces included; some large (several blocks).
            let len = if seq % 10 == 0 {
                200_000
            } else {
                (rng.next() % 2000) as usize
            };
            let body = rng.bytes(len);
            let (status, text) = http_request(
                port,
                "POST",
                &format!("/?seq={seq:06}&src={src}"),
                &[],
                &body,
            );
            assert_eq!(status, 200, "{text}");
            sent.insert(format!("{src}:{seq:06}"), hex(&body));
        }
    }
    let total = sent.len();
    wait_until("every record in the output", DEADLINE, || {
        count_marks(&out) >= total
    });
    assert!(agent.terminate().success(), "log:\n{}", agent.log());
    let decoded: BTreeMap<String, String> = serde_json::from_str(&python(
        dir.path(),
        &["decode", &key_hex, &out.display().to_string()],
    ))
    .expect("python's JSON");
    assert_eq!(decoded.len(), sent.len());
    assert!(decoded == sent, "Python decoded different bodies");

    // Python → Flumen.
    let out2 = dir.path().join("out2");
    let kf2 = key_file(dir.path(), "py.key", &key);
    let mut cfg = format!("a1.sources = plain sealed\na1.sinks = k1\n{HEAD}");
    cfg.push_str(&blob_source(
        "plain",
        "a1.sources.plain.interceptors = u\na1.sources.plain.interceptors.u.type = decompress\n",
    ));
    cfg.push_str(&blob_source(
        "sealed",
        &format!(
            "a1.sources.sealed.interceptors = d u\n\
             a1.sources.sealed.interceptors.d.type = decrypt\n\
             a1.sources.sealed.interceptors.d.keys = py-key\n\
             a1.sources.sealed.interceptors.d.keys.py-key.keyFile = {kf2}\n\
             a1.sources.sealed.interceptors.u.type = decompress\n"
        ),
    ));
    cfg.push_str(&file_roll("k1", "c1", &out2, "TEXT"));
    let items: Vec<serde_json::Value> =
        serde_json::from_str(&python(dir.path(), &["encode", &key_hex, "25"])).expect("JSON");
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let (plain_port, sealed_port) = (agent.port_of("plain"), agent.port_of("sealed"));
    let mut want = Vec::new();
    for item in &items {
        let field = |k: &str| item[k].as_str().unwrap_or_default().to_string();
        let mut query = format!("/?flumen.codec={}", field("codec"));
        let port = if item.get("nonce").is_some() {
            query.push_str(&format!(
                "&flumen.crypto.nonce={}&flumen.key.id=py-key",
                percent(&field("nonce"))
            ));
            sealed_port
        } else {
            plain_port
        };
        let (status, text) = http_request(port, "POST", &query, &[], &from_hex(&field("payload")));
        assert_eq!(status, 200, "{text}");
        want.push(field("plain"));
    }
    wait_until("every Python event in the output", DEADLINE, || {
        count_output_lines(&out2) >= want.len()
    });
    assert!(agent.terminate().success(), "log:\n{}", agent.log());
    let mut got = output_lines(&out2);
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

/// Occurrences of `seq=DDDDDD, src=` in the files under `dir` (one per record).
fn count_marks(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let is_mark = |w: &[u8]| {
        w.starts_with(b"seq=") && w[4..10].iter().all(u8::is_ascii_digit) && w.ends_with(b", src=")
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .map(|b| b.windows(16).filter(|w| is_mark(w)).count())
        .sum()
}

/// (c) A tampered body is dead-lettered with its reason, the rest of the batch goes on.
#[test]
fn a_flipped_byte_lands_in_the_dead_letter_channel() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let dlq = dir.path().join("dlq");
    let key = [0x11u8; 32];
    let kf = key_file(dir.path(), "k.key", &key);
    let mut cfg = format!(
        "a1.sources = r1\na1.sinks = k1 k2\n{}a1.channels = c1 dlq\n\
         a1.channels.dlq.type = memory\n\
         a1.channels.dlq.transactionCapacity = 5000\n\
         a1.channels.dlq.capacity = 10000\n",
        HEAD.replace("a1.channels = c1\n", "")
    );
    cfg.push_str(&blob_source(
        "r1",
        &format!(
            "a1.sources.r1.errorChannel = dlq\n\
             a1.sources.r1.interceptors = e d\n\
             a1.sources.r1.interceptors.e.type = encrypt\n\
             a1.sources.r1.interceptors.e.keyFile = {kf}\n\
             a1.sources.r1.interceptors.d.type = decrypt\n\
             a1.sources.r1.interceptors.d.keyFile = {kf}\n"
        ),
    ));
    cfg.push_str(&file_roll("k1", "c1", &out, "TEXT"));
    cfg.push_str(&file_roll("k2", "dlq", &dlq, "HEADER_AND_TEXT"));
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.port_of("r1");

    // A valid event sealed by the test with the same format, and one with a flipped byte.
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let cipher = aes_gcm::Aes256Gcm::new(&key.into());
    let nonce = [7u8; 12];
    let sealed = cipher
        .encrypt(
            aes_gcm::Nonce::from_slice(&nonce),
            Payload {
                msg: b"tampered-body",
                aad: b"default",
            },
        )
        .expect("encrypt");
    let mut flipped = sealed.clone();
    flipped[3] ^= 0x01;
    // The encrypt stage leaves an already encrypted event alone; decrypt then checks it.
    let query = "/?flumen.crypto.nonce=BwcHBwcHBwcHBwcH&flumen.key.id=default";
    let (status, _) = http_request(port, "POST", query, &[], &flipped);
    assert_eq!(
        status, 200,
        "a dead-lettered event is committed to the dead-letter channel"
    );
    let (status, _) = http_request(port, "POST", "/", &[], b"good-body");
    assert_eq!(status, 200);

    wait_until("the good body in the output", DEADLINE, || {
        count_output_lines(&out) >= 1
    });
    wait_until("one dead-lettered event", DEADLINE, || {
        output_text(&dlq).contains("flumen.error.reason=")
    });
    assert!(agent.terminate().success(), "log:\n{}", agent.log());
    assert_eq!(output_lines(&out), ["good-body"]);
    let dead = output_text(&dlq);
    assert!(
        dead.contains("flumen.error.reason=authentication failed"),
        "{dead}"
    );
    assert!(dead.contains("flumen.error.interceptor=d"), "{dead}");
    assert!(dead.contains("flumen.error.component=r1"), "{dead}");
    assert!(
        dead.contains("flumen.crypto.nonce=BwcHBwcHBwcHBwcH"),
        "{dead}"
    );
}

fn output_text(dir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return String::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}
