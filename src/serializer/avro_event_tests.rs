use super::*;
use apache_avro::Reader;
use std::collections::BTreeMap;
use std::process::Command;

/// An event as the tests see it: headers sorted by key, body.
type Ev = (Vec<(String, String)>, Vec<u8>);

const CODECS: [AvroCodec; 4] = [
    AvroCodec::Null,
    AvroCodec::Deflate,
    AvroCodec::Snappy,
    AvroCodec::Zstandard,
];

fn config(codec: AvroCodec) -> AvroEventConfig {
    AvroEventConfig {
        codec,
        ..AvroEventConfig::default()
    }
}

/// Events with no headers, many headers, non-ASCII text, empty and binary bodies.
fn sample_events(n: usize) -> Vec<Ev> {
    (0..n)
        .map(|i| {
            let headers: Vec<(String, String)> = match i % 4 {
                0 => Vec::new(),
                1 => vec![("host".into(), format!("web-{i}"))],
                2 => vec![
                    ("clé".into(), "värde ✓".into()),
                    ("empty".into(), String::new()),
                    (
                        "timestamp".into(),
                        format!("{}", 1_700_000_000_000u64 + i as u64),
                    ),
                ],
                _ => (0..70)
                    .map(|k| (format!("k{k:03}"), format!("v{i}-{k}")))
                    .collect(),
            };
            let body: Vec<u8> = match i % 3 {
                0 => Vec::new(),
                1 => format!("line {i} of the log\n").into_bytes(),
                _ => (0..=255u8).cycle().skip(i).take(300 + i).collect(),
            };
            (headers, body)
        })
        .collect()
}

fn append(w: &mut AvroEventWriter, ev: &Ev, out: &mut Vec<u8>) {
    let headers = ev.0.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    w.append(headers, &ev.1, out).unwrap();
}

/// Writes the batches, flushing after each; returns the file and its length after the header
/// and after each flush.
fn write_batches(config: &AvroEventConfig, batches: &[Vec<Ev>]) -> (Vec<u8>, Vec<usize>) {
    let mut w = AvroEventWriter::new(config);
    let mut out = Vec::new();
    w.header(&mut out).unwrap();
    let mut cuts = vec![out.len()];
    for batch in batches {
        for ev in batch {
            append(&mut w, ev, &mut out);
        }
        w.flush(&mut out).unwrap();
        cuts.push(out.len());
    }
    (out, cuts)
}

/// Reads a file with apache-avro's `Reader`, checking its schema is Flume's.
fn read_events(bytes: &[u8]) -> Vec<Ev> {
    let reader = Reader::new(bytes).unwrap();
    assert_eq!(
        *reader.writer_schema(),
        Schema::parse_str(FLUME_EVENT_SCHEMA).unwrap()
    );
    reader
        .map(|value| match value.unwrap() {
            Value::Record(fields) => {
                assert_eq!(fields.len(), 2);
                assert_eq!(
                    (fields[0].0.as_str(), fields[1].0.as_str()),
                    ("headers", "body")
                );
                let mut headers: Vec<(String, String)> = match &fields[0].1 {
                    Value::Map(map) => map
                        .iter()
                        .map(|(k, v)| match v {
                            Value::String(s) => (k.clone(), s.clone()),
                            other => panic!("header value {other:?}"),
                        })
                        .collect(),
                    other => panic!("headers {other:?}"),
                };
                headers.sort();
                match &fields[1].1 {
                    Value::Bytes(body) => (headers, body.clone()),
                    other => panic!("body {other:?}"),
                }
            }
            other => panic!("record {other:?}"),
        })
        .collect()
}

/// The container layout, parsed here independently of apache-avro.
struct Layout {
    meta: BTreeMap<String, Vec<u8>>,
    marker: [u8; 16],
    /// (record count, data length) of each block.
    blocks: Vec<(i64, usize)>,
}

fn get_long(b: &[u8], pos: &mut usize) -> i64 {
    let (mut z, mut shift) = (0u64, 0);
    loop {
        let byte = b[*pos];
        *pos += 1;
        z |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return ((z >> 1) as i64) ^ -((z & 1) as i64);
        }
        shift += 7;
    }
}

fn get_bytes<'b>(b: &'b [u8], pos: &mut usize) -> &'b [u8] {
    let len = get_long(b, pos) as usize;
    *pos += len;
    &b[*pos - len..*pos]
}

fn layout(b: &[u8]) -> Layout {
    assert_eq!(&b[..4], b"Obj\x01");
    let mut pos = 4;
    let mut meta = BTreeMap::new();
    loop {
        let count = get_long(b, &mut pos);
        if count == 0 {
            break;
        }
        for _ in 0..count {
            let key = String::from_utf8(get_bytes(b, &mut pos).to_vec()).unwrap();
            meta.insert(key, get_bytes(b, &mut pos).to_vec());
        }
    }
    let marker: [u8; 16] = b[pos..pos + 16].try_into().unwrap();
    pos += 16;
    let mut blocks = Vec::new();
    while pos < b.len() {
        let count = get_long(b, &mut pos);
        let data = get_bytes(b, &mut pos);
        assert_eq!(b[pos..pos + 16], marker, "block ends with the sync marker");
        pos += 16;
        blocks.push((count, data.len()));
    }
    Layout {
        meta,
        marker,
        blocks,
    }
}

#[test]
fn the_schema_text_parses_to_the_schema_in_flumes_source() {
    // The literal in FlumeEventAvroEventSerializer, spacing and all.
    let flume = r#"{ "type":"record", "name": "Event", "fields": [ {"name": "headers", "type": { "type": "map", "values": "string" } },  {"name": "body", "type": "bytes" } ] }"#;
    let ours = Schema::parse_str(FLUME_EVENT_SCHEMA).unwrap();
    assert_eq!(ours, Schema::parse_str(flume).unwrap());
    assert_eq!(
        ours.canonical_form(),
        Schema::parse_str(flume).unwrap().canonical_form()
    );
}

#[test]
fn the_header_carries_magic_schema_codec_and_the_files_marker() {
    for codec in CODECS {
        let mut w = AvroEventWriter::new(&config(codec));
        let mut out = Vec::new();
        w.header(&mut out).unwrap();
        w.header(&mut out).unwrap(); // once per file
        let file = layout(&out);
        assert_eq!(file.meta.len(), 2);
        assert_eq!(file.meta["avro.schema"], FLUME_EVENT_SCHEMA.as_bytes());
        assert_eq!(file.meta["avro.codec"], codec.name().as_bytes());
        assert_eq!(file.marker, w.sync_marker());
        assert!(file.blocks.is_empty());
        assert!(
            read_events(&out).is_empty(),
            "a header alone is an empty file"
        );
    }
}

#[test]
fn events_round_trip_with_headers_and_binary_bodies_for_every_codec() {
    let events = sample_events(40);
    for codec in CODECS {
        let (out, _) = write_batches(&config(codec), std::slice::from_ref(&events));
        assert_eq!(read_events(&out), events, "{codec}");
    }
}

#[test]
fn each_flush_writes_one_block_holding_its_batch() {
    let events = sample_events(20);
    let batches = vec![
        events[..3].to_vec(),
        Vec::new(),
        events[3..4].to_vec(),
        events[4..20].to_vec(),
    ];
    for codec in CODECS {
        let (out, cuts) = write_batches(&config(codec), &batches);
        let counts: Vec<i64> = layout(&out).blocks.iter().map(|b| b.0).collect();
        assert_eq!(
            counts,
            [3, 1, 16],
            "{codec}: an empty batch writes no block"
        );
        assert_eq!(cuts[1], cuts[2]);
        assert_eq!(read_events(&out), events);
    }
}

#[test]
fn a_file_cut_after_any_flush_reads_back_whole() {
    let events = sample_events(30);
    let batches: Vec<Vec<Ev>> = events.chunks(7).map(<[Ev]>::to_vec).collect();
    for codec in CODECS {
        let (out, cuts) = write_batches(&config(codec), &batches);
        assert_eq!(*cuts.last().unwrap(), out.len());
        for (flushes, cut) in cuts.iter().enumerate() {
            let expected = &events[..(flushes * 7).min(events.len())];
            assert_eq!(read_events(&out[..*cut]), expected, "{codec} cut {cut}");
        }
    }
}

#[test]
fn a_block_is_written_when_the_buffered_records_reach_the_sync_interval() {
    // No headers and a 30-byte body encode to 32 bytes: 4 records pass 100 bytes.
    let config = AvroEventConfig {
        sync_interval_bytes: 100,
        codec: AvroCodec::Null,
    };
    let mut w = AvroEventWriter::new(&config);
    let mut out = Vec::new();
    w.header(&mut out).unwrap();
    let header_len = out.len();
    let body = [b'x'; 30];
    for i in 0..10 {
        w.append(std::iter::empty(), &body, &mut out).unwrap();
        let written = out.len() > header_len;
        assert_eq!(written, i >= 3, "after {} appends", i + 1);
    }
    assert_eq!(w.pending_records(), 2);
    w.flush(&mut out).unwrap();
    let blocks = layout(&out).blocks;
    assert_eq!(blocks, [(4, 128), (4, 128), (2, 64)]);
    assert_eq!(read_events(&out).len(), 10);
}

#[test]
fn exactly_reaching_the_sync_interval_writes_the_block() {
    let config = AvroEventConfig {
        sync_interval_bytes: 64,
        codec: AvroCodec::Null,
    };
    let mut w = AvroEventWriter::new(&config);
    let mut out = Vec::new();
    for _ in 0..2 {
        w.append(std::iter::empty(), &[7u8; 30], &mut out).unwrap();
    }
    assert_eq!(w.pending_records(), 0);
    assert_eq!(layout(&out).blocks, [(2, 64)]);
}

#[test]
fn the_header_is_written_first_when_append_or_flush_come_before_it() {
    let mut w = AvroEventWriter::new(&config(AvroCodec::Snappy));
    let mut out = Vec::new();
    w.flush(&mut out).unwrap();
    assert!(read_events(&out).is_empty());
    let mut w = AvroEventWriter::new(&config(AvroCodec::Deflate));
    let mut out = Vec::new();
    let ev = sample_events(2).pop().unwrap();
    append(&mut w, &ev, &mut out);
    w.flush(&mut out).unwrap();
    assert_eq!(read_events(&out), [ev]);
}

#[test]
fn header_counts_above_63_take_a_wider_varint_and_still_round_trip() {
    for n in [63usize, 64, 65, 200, 9000] {
        let headers: Vec<(String, String)> = (0..n)
            .map(|k| (format!("h{k:05}"), k.to_string()))
            .collect();
        let ev = (headers, b"body".to_vec());
        let (out, _) = write_batches(&config(AvroCodec::Null), &[vec![ev.clone(), ev.clone()]]);
        assert_eq!(read_events(&out), [ev.clone(), ev], "{n} headers");
    }
}

#[test]
fn compressing_codecs_shrink_a_repetitive_block() {
    let events: Vec<Ev> = (0..200)
        .map(|_| (vec![("host".into(), "web-1".into())], vec![b'a'; 500]))
        .collect();
    let raw = layout(&write_batches(&config(AvroCodec::Null), std::slice::from_ref(&events)).0)
        .blocks[0]
        .1;
    for codec in [AvroCodec::Deflate, AvroCodec::Snappy, AvroCodec::Zstandard] {
        let out = write_batches(&config(codec), std::slice::from_ref(&events)).0;
        let packed = layout(&out).blocks[0].1;
        assert!(packed * 10 < raw, "{codec}: {packed} of {raw}");
        assert_eq!(read_events(&out), events);
    }
}

#[test]
fn each_writer_and_each_reset_draws_a_new_sync_marker() {
    let mut w = AvroEventWriter::new(&AvroEventConfig::default());
    let first = w.sync_marker();
    assert_ne!(
        first,
        AvroEventWriter::new(&AvroEventConfig::default()).sync_marker()
    );
    let mut old = Vec::new();
    append(&mut w, &sample_events(2)[1], &mut old);
    w.reset();
    assert_ne!(w.sync_marker(), first);
    assert_eq!(w.pending_records(), 0, "unflushed records are dropped");
    let mut out = Vec::new();
    let ev = sample_events(3).pop().unwrap();
    append(&mut w, &ev, &mut out);
    w.flush(&mut out).unwrap();
    assert_eq!(layout(&out).marker, w.sync_marker());
    assert_eq!(read_events(&out), [ev], "a reset writer starts a new file");
}

#[test]
fn parse_codec_knows_avros_codec_names_case_sensitively() {
    for codec in CODECS {
        assert_eq!(AvroEventConfig::parse_codec(codec.name()), Ok(codec));
    }
    assert_eq!(
        AvroEventConfig::parse_codec(DEFAULT_COMPRESSION_CODEC),
        Ok(AvroCodec::Null)
    );
    for name in ["bzip2", "xz"] {
        let err = AvroEventConfig::parse_codec(name).unwrap_err();
        assert_eq!(err, CodecError::Unavailable(name));
        assert_eq!(err.flume_fallback(), None);
    }
    for name in ["Snappy", "gzip", "zstd", "none", ""] {
        let err = AvroEventConfig::parse_codec(name).unwrap_err();
        assert_eq!(err, CodecError::Unrecognized(name.to_owned()));
        assert_eq!(err.flume_fallback(), Some(AvroCodec::Null));
    }
}

#[test]
fn sync_intervals_outside_avros_range_are_rejected() {
    assert_eq!(AvroEventConfig::check_sync_interval(32), Ok(32));
    assert_eq!(
        AvroEventConfig::check_sync_interval(2_048_000),
        Ok(2_048_000)
    );
    assert_eq!(AvroEventConfig::check_sync_interval(1 << 30), Ok(1 << 30));
    for bad in [31, 0, -1, (1 << 30) + 1] {
        assert!(AvroEventConfig::check_sync_interval(bad).is_err(), "{bad}");
    }
    let default = AvroEventConfig::default();
    assert_eq!(default.sync_interval_bytes, DEFAULT_SYNC_INTERVAL_BYTES);
    assert_eq!(default.codec, AvroCodec::Null);
}

/// Reads a file with Python's `avro` package; one line per event: `event|<body hex>|<k hex>=<v hex>,..`.
const PYTHON_READER: &str = r#"
import json, sys
from avro.datafile import DataFileReader
from avro.io import DatumReader
path, schema = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    r = DataFileReader(f, DatumReader())
    print("codec|" + r.get_meta("avro.codec").decode())
    print("schema|" + str(json.loads(r.get_meta("avro.schema").decode()) == json.loads(schema)))
    for rec in r:
        hs = ",".join(k.encode().hex() + "=" + v.encode().hex() for k, v in sorted(rec["headers"].items()))
        print("event|" + rec["body"].hex() + "|" + hs)
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `python3` can import `module`; absent means skipped, unless
/// `FLUMEN_REQUIRE_PYTHON_AVRO` is set.
fn python_has(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("FLUMEN_REQUIRE_PYTHON_AVRO").is_none(),
            "python3 cannot import {module}"
        );
        println!("skipped: python3 cannot import `{module}`");
    }
    ok
}

#[test]
fn pythons_avro_package_reads_the_file_for_null_deflate_snappy_and_zstandard() {
    if !python_has("avro") {
        return;
    }
    let events = sample_events(25);
    let batches: Vec<Vec<Ev>> = events.chunks(6).map(<[Ev]>::to_vec).collect();
    let mut checked = Vec::new();
    for codec in CODECS {
        match codec {
            AvroCodec::Snappy if !python_has("snappy") => continue,
            AvroCodec::Zstandard if !python_has("zstandard") => continue,
            _ => {}
        }
        let (out, _) = write_batches(&config(codec), &batches);
        let path = std::env::temp_dir().join(format!(
            "flumen-avro-event-{}-{codec}.avro",
            std::process::id()
        ));
        std::fs::write(&path, &out).unwrap();
        let output = Command::new("python3")
            .arg("-c")
            .arg(PYTHON_READER)
            .arg(&path)
            .arg(FLUME_EVENT_SCHEMA)
            .output()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(
            output.status.success(),
            "{codec}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut expected = vec![format!("codec|{codec}"), "schema|True".to_owned()];
        for (headers, body) in &events {
            let hs: Vec<String> = headers
                .iter()
                .map(|(k, v)| format!("{}={}", hex(k.as_bytes()), hex(v.as_bytes())))
                .collect();
            expected.push(format!("event|{}|{}", hex(body), hs.join(",")));
        }
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert_eq!(stdout.lines().collect::<Vec<_>>(), expected, "{codec}");
        checked.push(codec.name());
    }
    println!("python avro read {checked:?}");
}
