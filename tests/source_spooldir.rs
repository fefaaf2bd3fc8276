//! The `spooldir` source through the real binary: every line of every file dropped into the
//! directory arrives exactly once and each file is finished (renamed, deleted or tracked);
//! malformed input, changed files and kill -9 are handled as `src/source/spooldir/mod.rs`
//! says; BLOB and AVRO files become the events Flume makes of them.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use apache_avro::rabin::Rabin;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::{Record, Value};
use apache_avro::{Codec, Schema, Writer};
use common::*;

/// A pipeline spooldir → `channel` → file_roll (TEXT, one file per run).
fn config(spool: &Path, out: &Path, channel: &str, source_extra: &str, sink_extra: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = spooldir\n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.spoolDir = {}\n\
         a1.sources.r1.pollDelay = 50\n\
         {source_extra}\n\
         {channel}\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         {sink_extra}\n",
        spool.display(),
        out.display()
    )
}

const MEMORY: &str = "a1.channels.c1.type = memory\n\
                      a1.channels.c1.capacity = 100000\n\
                      a1.channels.c1.transactionCapacity = 1000";

/// Writes `content` outside the spooling directory, then renames it in (as users must).
fn drop_file(root: &Path, spool: &Path, rel: &str, content: &[u8]) -> PathBuf {
    let staging = root.join("staging");
    std::fs::create_dir_all(&staging).expect("staging dir");
    let tmp = staging.join(rel.replace('/', "_"));
    std::fs::write(&tmp, content).expect("writing a staged file");
    let dest = spool.join(rel);
    std::fs::create_dir_all(dest.parent().expect("parent")).expect("spool subdir");
    std::fs::rename(&tmp, &dest).expect("renaming into the spool");
    dest
}

fn completed(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".COMPLETED");
    PathBuf::from(s)
}

/// The 50 files of the first test: 30 at the top, 20 in two levels of subdirectories.
fn fifty_names() -> Vec<String> {
    (0..50)
        .map(|i| match i % 5 {
            0 => format!("sub/f{i:02}.log"),
            1 => format!("sub/deeper/f{i:02}.log"),
            _ => format!("f{i:02}.log"),
        })
        .collect()
}

fn lines_of(i: usize) -> String {
    (0..100).map(|j| format!("f{i:02}-l{j:03}\n")).collect()
}

/// Runs 50 files through the pipeline (half dropped before start, half while running) and
/// returns the agent, the spool directory and the dropped paths once every line arrived.
fn run_fifty(source_extra: &str) -> (tempfile::TempDir, Agent, PathBuf, Vec<PathBuf>) {
    let dir = test_dir();
    let spool = dir.path().join("spool");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&spool).unwrap();
    let extra = format!("a1.sources.r1.recursiveDirectorySearch = true\n{source_extra}");
    let cfg = config(&spool, &out, MEMORY, &extra, "");
    let names = fifty_names();
    let mut paths = Vec::new();
    for (i, name) in names.iter().enumerate().take(25) {
        paths.push(drop_file(dir.path(), &spool, name, lines_of(i).as_bytes()));
    }
    let agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    agent.wait_for_log(&["Spooling directory source started", "source=r1"]);
    for (i, name) in names.iter().enumerate().skip(25) {
        paths.push(drop_file(dir.path(), &spool, name, lines_of(i).as_bytes()));
    }
    wait_until("5000 lines", DEADLINE, || count_output_lines(&out) >= 5000);
    let lines = output_lines(&out);
    let expected: BTreeSet<String> = (0..50)
        .flat_map(|i| (0..100).map(move |j| format!("f{i:02}-l{j:03}")))
        .collect();
    assert_eq!(lines.len(), 5000, "every line exactly once");
    assert_eq!(lines.into_iter().collect::<BTreeSet<_>>(), expected);
    (dir, agent, spool, paths)
}

#[test]
fn fifty_files_arrive_exactly_once_and_are_renamed() {
    let (_dir, mut agent, _spool, paths) = run_fifty("");
    wait_until("all 50 files renamed", DEADLINE, || {
        paths.iter().all(|p| !p.exists() && completed(p).exists())
    });
    assert!(agent.terminate().success());
    assert!(!agent.log().contains("ERROR"), "{}", agent.log());
}

#[test]
fn delete_policy_immediate_deletes_finished_files() {
    let (_dir, mut agent, _spool, paths) = run_fifty("a1.sources.r1.deletePolicy = immediate");
    wait_until("all 50 files deleted", DEADLINE, || {
        paths.iter().all(|p| !p.exists() && !completed(p).exists())
    });
    assert!(agent.terminate().success());
}

#[test]
fn tracker_dir_policy_leaves_files_and_tracks_them() {
    let (_dir, mut agent, spool, paths) = run_fifty("a1.sources.r1.trackingPolicy = tracker_dir");
    let marker = |p: &Path| {
        completed(
            &spool
                .join(".flumespool")
                .join(p.strip_prefix(&spool).unwrap()),
        )
    };
    wait_until("all 50 files tracked", DEADLINE, || {
        paths.iter().all(|p| marker(p).exists())
    });
    assert!(paths.iter().all(|p| p.exists() && !completed(p).exists()));
    // Tracked files are not read again: nothing more arrives after a restart.
    assert!(agent.terminate().success());
    let out = spool.parent().unwrap().join("out");
    let cfg = std::fs::read_to_string(spool.parent().unwrap().join("agent.properties")).unwrap();
    let root = spool.parent().unwrap();
    let mut again = Agent::start(root, "a1", &cfg, &[]);
    again.wait_for_log(&["Spooling directory source started"]);
    // A newer file is read after any older one still to be read: once it is tracked, the
    // old ones would have been read already.
    let newer = drop_file(root, &spool, "newer.log", b"newer\n");
    wait_until("the newer file tracked", DEADLINE, || {
        marker(&newer).exists()
    });
    assert!(again.terminate().success());
    let reads = again.log().matches("Reading file").count();
    assert_eq!(reads, 1, "{}", again.log());
    assert_eq!(count_output_lines(&out), 5001);
}

/// Three files, the middle one with malformed UTF-8 on its second line.
fn malformed_run(policy: &str) -> (tempfile::TempDir, Agent, PathBuf, PathBuf) {
    let dir = test_dir();
    let spool = dir.path().join("spool");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&spool).unwrap();
    let cfg = config(
        &spool,
        &out,
        MEMORY,
        &format!("a1.sources.r1.decodeErrorPolicy = {policy}"),
        "",
    );
    drop_file(dir.path(), &spool, "a-good.log", b"a1\na2\n");
    let bad = drop_file(
        dir.path(),
        &spool,
        "b-bad.log",
        b"ok-1\nbad\xff-2\nafter-3\n",
    );
    let agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    agent.wait_for_log(&["Spooling directory source started"]);
    drop_file(dir.path(), &spool, "c-good.log", b"c1\nc2\n");
    (dir, agent, bad, out)
}

#[test]
fn malformed_input_under_fail_stops_that_file_only() {
    let (dir, mut agent, bad, out) = malformed_run("FAIL");
    let line = agent.wait_for_log(&["ERROR", "Stopped reading a file", "b-bad.log"]);
    assert!(line.contains("malformed"), "{line}");
    let spool = dir.path().join("spool");
    wait_until("the good files finished", DEADLINE, || {
        completed(&spool.join("a-good.log")).exists()
            && completed(&spool.join("c-good.log")).exists()
    });
    wait_until("good lines", DEADLINE, || count_output_lines(&out) >= 5);
    assert!(agent.terminate().success());
    let lines: BTreeSet<String> = output_lines(&out).into_iter().collect();
    let expected: BTreeSet<String> = ["a1", "a2", "ok-1", "c1", "c2"].map(String::from).into();
    assert_eq!(
        lines, expected,
        "the line before the bad one stays delivered, none after"
    );
    assert!(
        bad.exists() && !completed(&bad).exists(),
        "the bad file is left as it is"
    );
}

#[test]
fn malformed_input_under_replace_becomes_the_replacement_character() {
    let (_dir, mut agent, bad, out) = malformed_run("REPLACE");
    wait_until("the bad file finished", DEADLINE, || {
        completed(&bad).exists()
    });
    wait_until("7 lines", DEADLINE, || count_output_lines(&out) >= 7);
    assert!(agent.terminate().success());
    let lines = output_lines(&out);
    assert!(lines.contains(&"bad\u{fffd}-2".to_string()), "{lines:?}");
    assert!(lines.contains(&"after-3".to_string()));
}

#[test]
fn malformed_input_under_ignore_is_dropped() {
    let (_dir, mut agent, bad, out) = malformed_run("IGNORE");
    wait_until("the bad file finished", DEADLINE, || {
        completed(&bad).exists()
    });
    wait_until("7 lines", DEADLINE, || count_output_lines(&out) >= 7);
    assert!(agent.terminate().success());
    let lines = output_lines(&out);
    assert!(lines.contains(&"bad-2".to_string()), "{lines:?}");
    assert!(lines.contains(&"after-3".to_string()));
}

/// The numbers of `line-NNNNNNN` lines, with how often each arrived. A file's last line
/// without its newline is a write cut by kill -9 (Linux may stop a write at a page boundary on
/// a fatal signal); its batch was not committed, so it is delivered again and not counted.
fn line_numbers(out: &Path) -> HashMap<u32, u32> {
    let mut seen = HashMap::new();
    let complete_lines = output_files(out).into_iter().flat_map(|f| {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let end = text.rfind('\n').map_or(0, |i| i + 1);
        text[..end].lines().map(String::from).collect::<Vec<_>>()
    });
    for line in complete_lines {
        let n: u32 = line
            .strip_prefix("line-")
            .and_then(|rest| rest.get(..7))
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("damaged line {line:?}"));
        *seen.entry(n).or_insert(0) += 1;
    }
    seen
}

#[test]
fn kill_9_in_the_middle_of_a_file_resumes_at_the_recorded_position() {
    const LINES: u32 = 200_000;
    const SOURCE_BATCH: usize = 100;
    const SINK_BATCH: usize = 100;
    let dir = test_dir();
    let spool = dir.path().join("spool");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&spool).unwrap();
    let channel = format!(
        "a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {}\n\
         a1.channels.c1.dataDirs = {}\n\
         a1.channels.c1.checkpointInterval = 1000\n\
         a1.channels.c1.minimumRequiredSpace = 1048576\n\
         a1.channels.c1.capacity = 5000\n\
         a1.channels.c1.transactionCapacity = 1000",
        dir.path().join("fc/checkpoint").display(),
        dir.path().join("fc/data").display()
    );
    // A throttled sink and a small channel keep the source in the middle of the file.
    let cfg = config(
        &spool,
        &out,
        &channel,
        &format!("a1.sources.r1.batchSize = {SOURCE_BATCH}"),
        &format!(
            "a1.sinks.k1.sink.batchSize = {SINK_BATCH}\na1.sinks.k1.maxEventsPerSecond = 40000"
        ),
    );
    let content: String = (0..LINES)
        .map(|i| format!("line-{i:07} payload\n"))
        .collect();
    let big = drop_file(dir.path(), &spool, "big.log", content.as_bytes());
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    wait_until("part of the file delivered", DEADLINE, || {
        count_output_lines(&out) >= 30_000
    });
    agent.signal("KILL");
    agent.wait();
    let at_kill = count_output_lines(&out);
    assert!(
        at_kill < LINES as usize,
        "the kill must land in the middle of the file"
    );
    assert!(big.exists(), "the file is not finished yet");

    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let resumed = agent.wait_for_log(&["Reading file", "big.log"]);
    let offset: u64 = resumed
        .split_whitespace()
        .find_map(|w| w.strip_prefix("offset="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {resumed}"));
    assert!(
        offset > 0,
        "the restart resumes from the recorded position: {resumed}"
    );
    wait_until("every line", Duration::from_secs(120), || {
        line_numbers(&out).len() == LINES as usize
    });
    wait_until("the file renamed", DEADLINE, || completed(&big).exists());
    assert!(agent.terminate().success());
    let seen = line_numbers(&out);
    assert_eq!(seen.len(), LINES as usize);
    // A line the kill cut short was cut from the file on restart: nothing damaged remains.
    for f in output_files(&out) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            bytes.is_empty() || bytes.ends_with(b"\n"),
            "{} ends mid-line",
            f.display()
        );
    }
    assert!(seen.keys().all(|&n| n < LINES));
    let duplicates: u32 = seen.values().map(|&c| c - 1).sum();
    // Source: the batch committed after the last position write. Sink: the batches written
    // before their takes committed (those in flight, and the next).
    assert!(
        duplicates as usize
            <= SOURCE_BATCH + (flumen::sink::slot::COMMITS_IN_FLIGHT + 1) * SINK_BATCH,
        "{duplicates} duplicates"
    );
}

#[test]
fn blob_deserializer_makes_one_event_of_a_binary_file() {
    let dir = test_dir();
    let spool = dir.path().join("spool");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&spool).unwrap();
    let cfg = config(
        &spool,
        &out,
        MEMORY,
        "a1.sources.r1.deserializer = org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder",
        "a1.sinks.k1.sink.serializer.appendNewline = false",
    );
    let body: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let file = drop_file(dir.path(), &spool, "blob.bin", &body);
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    wait_until("the file finished", DEADLINE, || completed(&file).exists());
    wait_until("the body written", DEADLINE, || {
        output_files(&out)
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum::<u64>()
            >= body.len() as u64
    });
    assert!(agent.terminate().success());
    let files = output_files(&out);
    let written: Vec<u8> = files
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(
        written, body,
        "one event holding the whole file, byte for byte"
    );
    let line = agent.log();
    assert!(line.contains("events=1"), "{line}");
}

const AVRO_SCHEMA: &str = r#"{"type":"record","name":"Rec","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}"#;

#[test]
fn avro_deserializer_makes_one_event_per_record() {
    let dir = test_dir();
    let spool = dir.path().join("spool");
    let bodies_out = dir.path().join("bodies");
    let headers_out = dir.path().join("headers");
    std::fs::create_dir_all(&spool).unwrap();
    let cfg = format!(
        "a1.sources = r1\n\
         a1.channels = c1 c2\n\
         a1.sinks = k1 k2\n\
         a1.sources.r1.type = spooldir\n\
         a1.sources.r1.channels = c1 c2\n\
         a1.sources.r1.spoolDir = {}\n\
         a1.sources.r1.deserializer = AVRO\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c2.type = memory\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.serializer.appendNewline = false\n\
         a1.sinks.k2.type = file_roll\n\
         a1.sinks.k2.channel = c2\n\
         a1.sinks.k2.sink.directory = {}\n\
         a1.sinks.k2.sink.rollInterval = 0\n\
         a1.sinks.k2.sink.serializer = HEADER_AND_TEXT\n",
        spool.display(),
        bodies_out.display(),
        headers_out.display()
    );
    let schema = Schema::parse_str(AVRO_SCHEMA).unwrap();
    let mut w =
        Writer::with_codec(&schema, Vec::new(), Codec::Deflate(Default::default())).unwrap();
    for i in 0..250i64 {
        let mut r = Record::new(&schema).unwrap();
        r.put("id", i);
        r.put("name", format!("name-{i}"));
        w.append_value(r).unwrap();
        if i % 100 == 99 {
            w.flush().unwrap();
        }
    }
    let file = drop_file(dir.path(), &spool, "records.avro", &w.into_inner().unwrap());
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    wait_until("the file finished", DEADLINE, || completed(&file).exists());
    let hash = schema.fingerprint::<Rabin>().to_string();
    let needle = format!("flume.avro.schema.hash={hash}");
    wait_until("250 events with the schema hash", DEADLINE, || {
        output_files(&headers_out)
            .iter()
            .map(|p| {
                String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default())
                    .matches(&needle)
                    .count()
            })
            .sum::<usize>()
            == 250
    });
    // The bodies, concatenated, are the 250 records in Avro binary.
    let decode = || -> Vec<i64> {
        let bytes: Vec<u8> = output_files(&bodies_out)
            .iter()
            .flat_map(|p| std::fs::read(p).unwrap())
            .collect();
        let reader = GenericDatumReader::builder(&schema).build().unwrap();
        let mut slice = &bytes[..];
        let mut ids = Vec::new();
        while !slice.is_empty() {
            match reader.read_value(&mut slice) {
                Ok(Value::Record(fields)) => match (&fields[0].1, &fields[1].1) {
                    (Value::Long(id), Value::String(name)) => {
                        assert_eq!(name, &format!("name-{id}"));
                        ids.push(*id);
                    }
                    other => panic!("{other:?}"),
                },
                _ => break,
            }
        }
        ids
    };
    wait_until("250 records decoded", DEADLINE, || decode().len() == 250);
    assert!(agent.terminate().success());
    assert_eq!(decode(), (0..250).collect::<Vec<_>>());
}

#[test]
fn a_file_changed_after_pickup_stops_only_that_file() {
    let dir = test_dir();
    let spool = dir.path().join("spool");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&spool).unwrap();
    let channel = "a1.channels.c1.type = memory\n\
                   a1.channels.c1.capacity = 1000\n\
                   a1.channels.c1.transactionCapacity = 100";
    let cfg = config(
        &spool,
        &out,
        channel,
        "",
        "a1.sinks.k1.maxEventsPerSecond = 5000",
    );
    let content: String = (0..50_000).map(|i| format!("big-{i}\n")).collect();
    let big = drop_file(dir.path(), &spool, "big.log", content.as_bytes());
    // Oldest first: make the big file the oldest so it is picked up first.
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&big)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let small: Vec<PathBuf> = ["s1.log", "s2.log"]
        .iter()
        .map(|n| drop_file(dir.path(), &spool, n, format!("{n}-a\n{n}-b\n").as_bytes()))
        .collect();
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    agent.wait_for_log(&["Reading file", "big.log"]);
    wait_until("some of big.log delivered", DEADLINE, || {
        count_output_lines(&out) >= 500
    });
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&big).unwrap();
        f.write_all(b"appended-after-pickup\n").unwrap();
    }
    let line = agent.wait_for_log(&["ERROR", "Stopped reading a file", "big.log"]);
    assert!(line.contains("changed"), "{line}");
    wait_until("the other files finished", DEADLINE, || {
        small.iter().all(|p| completed(p).exists())
    });
    wait_until("the small files' lines", DEADLINE, || {
        let lines = output_lines(&out);
        ["s1.log-a", "s1.log-b", "s2.log-a", "s2.log-b"]
            .iter()
            .all(|l| lines.iter().any(|x| x == l))
    });
    assert!(agent.terminate().success());
    assert!(
        big.exists() && !completed(&big).exists(),
        "the changed file is left as it is"
    );
    let lines = output_lines(&out);
    let big_lines = lines.iter().filter(|l| l.starts_with("big-")).count();
    assert!(big_lines < 50_000, "reading stopped at the change");
    assert!(!lines.iter().any(|l| l == "appended-after-pickup"));
}

#[test]
fn a_missing_spooling_directory_is_retried_until_it_appears() {
    let dir = test_dir();
    let spool = dir.path().join("spool");
    let out = dir.path().join("out");
    let cfg = config(&spool, &out, MEMORY, "", "");
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    agent.wait_for_log(&[
        "ERROR",
        "Cannot start the spooling directory source",
        "source=r1",
    ]);
    std::fs::create_dir_all(&spool).unwrap();
    let file = drop_file(dir.path(), &spool, "late.log", b"late-1\nlate-2\n");
    wait_until("the file finished", DEADLINE, || completed(&file).exists());
    wait_until("2 lines", DEADLINE, || count_output_lines(&out) >= 2);
    assert!(agent.terminate().success());
    assert_eq!(output_lines(&out), ["late-1", "late-2"]);
}

#[test]
fn a_completed_name_that_already_exists_is_reported_and_the_file_left() {
    let dir = test_dir();
    let spool = dir.path().join("spool");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&spool).unwrap();
    let cfg = config(&spool, &out, MEMORY, "", "");
    let earlier = drop_file(
        dir.path(),
        &spool,
        "dup.log.COMPLETED",
        b"from an earlier run\n",
    );
    let dup = drop_file(dir.path(), &spool, "dup.log", b"dup-1\n");
    let other = drop_file(dir.path(), &spool, "other.log", b"other-1\n");
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let line = agent.wait_for_log(&["ERROR", "Stopped reading a file", "dup.log"]);
    assert!(line.contains("already exists"), "{line}");
    wait_until("the other file finished", DEADLINE, || {
        completed(&other).exists()
    });
    wait_until("2 lines", DEADLINE, || count_output_lines(&out) >= 2);
    assert!(agent.terminate().success());
    assert!(dup.exists(), "the file is left as it is");
    assert_eq!(std::fs::read(&earlier).unwrap(), b"from an earlier run\n");
    let lines: BTreeSet<String> = output_lines(&out).into_iter().collect();
    assert_eq!(lines, ["dup-1", "other-1"].map(String::from).into());
}
