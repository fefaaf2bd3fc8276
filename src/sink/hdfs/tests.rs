//! The sink on local files, in process: what a crash left behind is finished at start, a
//! file with nothing committed is deleted, and rolls name files as Flume does.

use std::collections::BTreeMap;
use std::path::Path;

use super::open_file::{Destination, Meta};
use super::*;
use crate::config::{PropReader, Props};
use crate::registry::BuildContext;

fn sink(out: &Path, staging: &Path, extra: &[(&str, &str)]) -> HdfsSink {
    let path = format!("file://{}", out.display());
    let staging = staging.display().to_string();
    let mut pairs = vec![
        ("hdfs.path", path.as_str()),
        ("hdfs.stagingDir", staging.as_str()),
        ("hdfs.fileType", "DataStream"),
        ("hdfs.rollInterval", "0"),
        ("hdfs.rollSize", "0"),
    ];
    pairs.extend_from_slice(extra);
    let props = Props::from_pairs("a.conf", "a1.sinks.k1", &pairs);
    let mut r = PropReader::new(&props, "k1");
    let system = BTreeMap::new();
    let ctx = BuildContext {
        agent: "a1",
        name: "k1",
        system_properties: &system,
    };
    let config = HdfsConfig::from_props(&ctx, &mut r).expect("config");
    HdfsSink::new(config).expect("sink")
}

/// A file an earlier run left open: its data, and a record of `committed` bytes.
fn left_open(out: &Path, staging: &Path, counter: u64, data: &[u8], committed: u64) -> Destination {
    std::fs::create_dir_all(out).unwrap();
    std::fs::create_dir_all(staging).unwrap();
    let dest = Destination {
        final_path: format!("{}/FlumeData.{counter}", out.display()),
        data: out.join(format!("FlumeData.{counter}.tmp")),
        remote: false,
        counter,
    };
    std::fs::write(&dest.data, data).unwrap();
    let meta = Meta::create(&staging.join(format!("{counter}.meta")), &dest, false).unwrap();
    meta.commit(committed, false).unwrap();
    dest
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_file_left_open_is_cut_to_its_committed_bytes_and_renamed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (out, staging) = (dir.path().join("out"), dir.path().join("staging"));
    let dest = left_open(&out, &staging, 100, b"one\ntwo\npartial", 8);
    let mut s = sink(&out, &staging, &[("hdfs.rollCount", "1")]);
    s.maintain().await.unwrap();
    s.stop().await.unwrap();
    assert_eq!(std::fs::read(&dest.final_path).unwrap(), b"one\ntwo\n");
    assert!(!dest.data.exists());
    assert!(meta_records(&staging).is_empty());
}

#[tokio::test]
async fn a_file_left_with_nothing_committed_is_deleted_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (out, staging) = (dir.path().join("out"), dir.path().join("staging"));
    let dest = left_open(&out, &staging, 200, b"torn", 0);
    let mut s = sink(&out, &staging, &[]);
    s.maintain().await.unwrap();
    s.stop().await.unwrap();
    assert!(files(&out).is_empty(), "{:?}", files(&out));
    assert!(!Path::new(&dest.final_path).exists());
    assert!(meta_records(&staging).is_empty());
}

#[tokio::test]
async fn new_files_after_a_restart_never_take_the_name_of_a_file_left_open() {
    let dir = tempfile::tempdir().unwrap();
    let (out, staging) = (dir.path().join("out"), dir.path().join("staging"));
    // A counter far ahead of the clock, as a sink rolling faster than once a millisecond
    // leaves it.
    let ahead = now_millis() as u64 + 10_000_000;
    left_open(&out, &staging, ahead, b"old\n", 4);
    let mut s = sink(&out, &staging, &[("hdfs.rollCount", "1")]);
    s.deliver(&[Event::new("new1"), Event::new("new2")])
        .await
        .unwrap();
    s.stop().await.unwrap();
    let names = files(&out);
    assert_eq!(names.len(), 3, "{names:?}");
    let mut bodies: Vec<String> = names
        .iter()
        .map(|n| std::fs::read_to_string(out.join(n)).unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["new1\n", "new2\n", "old\n"]);
}
