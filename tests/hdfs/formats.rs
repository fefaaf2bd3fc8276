//! The hdfs sink's files read by independent readers: SequenceFiles by Hadoop's own
//! `SequenceFile.Reader` on a JVM (`tests/interop/hadoop_read.sh`, Hadoop 3.3.4 client jars
//! from PyPI's pyspark package), snappy and lz4 streams by Hadoop's codecs, and `avro_event`
//! files by Python's `avro` package.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::{config, event, post, started, T1};

/// The Hadoop reader script, when its JVM and jars are installed; the test skips otherwise,
/// unless `HADOOP_INTEROP_REQUIRED=1` or CI requires it.
fn hadoop_reader() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/hadoop_read.sh");
    let ready = Command::new("bash")
        .arg(&script)
        .arg("check")
        .status()
        .is_ok_and(|s| s.success());
    if ready {
        return Some(script);
    }
    assert!(
        !required("HADOOP_INTEROP_REQUIRED"),
        "Hadoop's reader is required but not installed (bash tests/interop/hadoop_read.sh install)"
    );
    eprintln!(
        "skipping: Hadoop's reader is not installed (bash tests/interop/hadoop_read.sh install)"
    );
    None
}

fn hadoop(script: &Path, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .expect("running the Hadoop reader");
    assert!(
        out.status.success(),
        "hadoop_read.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs an agent with `sink` keys, posts `bodies` (timestamp T1 + i) in two requests, stops
/// it, and returns the one file it wrote.
fn write_one_file(dir: &Path, sink: &[(&str, &str)], bodies: &[String]) -> PathBuf {
    let out = dir.join("out");
    let cfg = config(
        &format!("file://{}", out.display()),
        &dir.join("staging"),
        sink,
        "",
    );
    let (mut agent, port) = started(dir, &cfg);
    let events: Vec<String> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| event(b, &[("timestamp", &(T1 + i as i64).to_string())]))
        .collect();
    let (first, second) = events.split_at(events.len() / 2);
    post(port, first);
    post(port, second);
    assert!(agent.terminate().success(), "{}", agent.log());
    let files = output_files(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

fn bodies(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("event-{i}-{}", "x".repeat(i % 7)))
        .collect()
}

#[test]
fn sequence_files_are_read_record_for_record_by_hadoops_own_reader() {
    let Some(script) = hadoop_reader() else {
        return;
    };
    let sent = bodies(40);
    for (write_format, value_class, codec, compression) in [
        ("Writable", "org.apache.hadoop.io.BytesWritable", "", "NONE"),
        ("Text", "org.apache.hadoop.io.Text", "", "NONE"),
        (
            "Writable",
            "org.apache.hadoop.io.BytesWritable",
            "gzip",
            "BLOCK",
        ),
        (
            "Writable",
            "org.apache.hadoop.io.BytesWritable",
            "snappy",
            "BLOCK",
        ),
    ] {
        let dir = test_dir();
        let mut sink = vec![
            ("hdfs.fileType", "SequenceFile"),
            ("hdfs.writeFormat", write_format),
        ];
        if !codec.is_empty() {
            sink.push(("hdfs.codeC", codec));
        }
        let file = write_one_file(dir.path(), &sink, &sent);
        let read = hadoop(&script, &["seq", &file.to_string_lossy()]);
        let mut lines = read.lines();
        assert_eq!(
            lines.next(),
            Some("key-class org.apache.hadoop.io.LongWritable")
        );
        assert_eq!(
            lines.next(),
            Some(format!("value-class {value_class}").as_str())
        );
        assert_eq!(
            lines.next(),
            Some(format!("compression {compression}").as_str())
        );
        let records: Vec<&str> = lines.filter(|l| l.contains('\t')).collect();
        let expected: Vec<String> = sent
            .iter()
            .enumerate()
            .map(|(i, b)| format!("{}\t{}", T1 + i as i64, hex(b.as_bytes())))
            .collect();
        assert_eq!(records, expected, "{write_format} {codec}: {read}");
    }
}

#[test]
fn snappy_and_lz4_streams_are_decoded_by_hadoops_codecs() {
    let Some(script) = hadoop_reader() else {
        return;
    };
    let sent = bodies(50);
    let expected: String = sent.iter().map(|b| format!("{b}\n")).collect();
    for (codec, ext) in [
        ("snappy", ".snappy"),
        ("lz4", ".lz4"),
        ("bzip2", ".bz2"),
        ("default", ".deflate"),
    ] {
        let dir = test_dir();
        let sink = [("hdfs.fileType", "CompressedStream"), ("hdfs.codeC", codec)];
        let file = write_one_file(dir.path(), &sink, &sent);
        assert!(file.to_string_lossy().ends_with(ext), "{}", file.display());
        let text = hadoop(&script, &["codec", &file.to_string_lossy()]);
        assert_eq!(text, expected, "{codec}");
    }
}

#[test]
fn avro_event_files_are_read_by_python_avro_with_headers_and_bodies() {
    let ok = Command::new("python3")
        .args(["-c", "import avro.datafile"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(!required("FLUMEN_REQUIRE_PY"), "python3 avro is required");
        eprintln!("skipping: python3 avro not installed");
        return;
    }
    let dir = test_dir();
    let sent = bodies(30);
    let sink = [
        ("serializer", "avro_event"),
        ("serializer.compressionCodec", "deflate"),
    ];
    let file = write_one_file(dir.path(), &sink, &sent);
    let script = "import sys, avro.datafile, avro.io\n\
                  r = avro.datafile.DataFileReader(open(sys.argv[1], 'rb'), avro.io.DatumReader())\n\
                  print(r.meta['avro.codec'].decode())\n\
                  for e in r:\n    print(e['headers']['timestamp'] + '\\t' + e['body'].decode())\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("deflate"));
    let got: Vec<&str> = lines.collect();
    let expected: Vec<String> = sent
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{}\t{b}", T1 + i as i64))
        .collect();
    assert_eq!(got, expected);
}
