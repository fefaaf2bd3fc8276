//! TAILDIR through the real binary: rotations (rename+create, copytruncate), restarts (kill -9
//! and clean), a Flume position file, multi-line events, a partial last line.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::*;

const SOURCE_BATCH: usize = 1000;
const SINK_BATCH: usize = 1000;

fn config(dir: &Path, extra: &str) -> String {
    format!(
        "a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = TAILDIR
a1.sources.r1.channels = c1
a1.sources.r1.filegroups = f1
a1.sources.r1.filegroups.f1 = {logs}/app\\\\.log.*
a1.sources.r1.positionFile = {dir}/taildir_position.json
a1.sources.r1.batchSize = {SOURCE_BATCH}
a1.sources.r1.maxBackoffSleep = 100
a1.sources.r1.writePosInterval = 0
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = {dir}/ck
a1.channels.c1.dataDirs = {dir}/data
a1.channels.c1.checkpointInterval = 500
a1.channels.c1.minimumRequiredSpace = 1048576
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = {SINK_BATCH}
{extra}",
        logs = dir.join("logs").display(),
        dir = dir.display()
    )
}

/// Appends numbered lines in the oracle's format and records them as "acknowledged": for a
/// log shipper, every line written is owed.
struct Writer {
    log: PathBuf,
    acked: std::fs::File,
    next: u64,
}

impl Writer {
    fn new(dir: &Path) -> Writer {
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        Writer {
            log: dir.join("logs/app.log"),
            acked: std::fs::File::create(dir.join("acked")).unwrap(),
            next: 0,
        }
    }

    fn write(&mut self, lines: u64) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut numbers = String::new();
        for chunk_start in (0..lines).step_by(500) {
            let mut buf = String::new();
            for i in chunk_start..(chunk_start + 500).min(lines) {
                let n = self.next + i;
                buf.push_str(&format!("ev-{n:010} {}\n", "x".repeat(40)));
                numbers.push_str(&format!("{n}\n"));
            }
            f.write_all(buf.as_bytes()).unwrap();
        }
        self.next += lines;
        self.acked.write_all(numbers.as_bytes()).unwrap();
    }

    /// Rename-and-create rotation to a name that still matches the pattern.
    fn rotate(&self, k: u32) {
        let to = self.log.with_file_name(format!("app.log.{k}"));
        std::fs::rename(&self.log, to).unwrap();
        std::fs::File::create(&self.log).unwrap();
    }

    /// copytruncate to a name outside the pattern (copytruncate is lossy for lines written
    /// between the copy and the truncation; callers wait until the agent has read the file).
    fn copytruncate(&self) {
        std::fs::copy(&self.log, self.log.with_file_name("copied.old")).unwrap();
        OpenOptions::new()
            .write(true)
            .open(&self.log)
            .unwrap()
            .set_len(0)
            .unwrap();
    }
}

fn wait_delivered(dir: &Path) {
    wait_until("every written line to arrive", DEADLINE, || {
        acked_missing(&dir.join("out"), &dir.join("acked")) == 0
    });
}

fn verify(dir: &Path, max_duplicates: usize) -> String {
    let out = dir.join("out");
    let acked = dir.join("acked");
    let (ok, summary) = run_oracle(&[
        "verify",
        out.to_str().unwrap(),
        "--acked",
        acked.to_str().unwrap(),
        "--max-duplicates",
        &max_duplicates.to_string(),
    ]);
    assert!(ok, "oracle: {summary}");
    summary
}

fn start(dir: &Path) -> Agent {
    let agent = Agent::start(dir, "a1", &config(dir, ""), &[]);
    agent.wait_for_log(&["Source starting", "source=r1"]);
    agent
}

/// Five rename+create rotations, one copytruncate and two restarts while 500,000 lines are
/// written; `kill` picks SIGKILL or a clean SIGTERM for the restarts.
fn rotations_and_restarts(kill: bool) -> String {
    let tmp = test_dir();
    let dir = tmp.path();
    let mut w = Writer::new(dir);
    let mut agent = start(dir);
    let mut rotations = 0;
    for phase in 0..10u32 {
        w.write(50_000);
        match phase {
            1 | 3 | 5 | 7 | 8 => {
                rotations += 1;
                w.rotate(rotations);
            }
            4 => {
                wait_delivered(dir);
                w.copytruncate();
            }
            2 | 6 => {
                if kill {
                    agent.signal("KILL");
                    agent.wait();
                } else {
                    assert!(agent.terminate().success(), "{}", agent.log());
                }
                agent = start(dir);
            }
            _ => {}
        }
    }
    wait_delivered(dir);
    assert!(agent.terminate().success());
    let log = agent.log();
    assert!(!log.contains("panicked"), "{log}");
    // Per kill -9: one source batch committed before its position was written, and the sink
    // batches written before their takes committed (those in flight, and the next).
    let bound = if kill {
        2 * (SOURCE_BATCH + (flumen::sink::slot::COMMITS_IN_FLIGHT + 1) * SINK_BATCH)
    } else {
        0
    };
    verify(dir, bound)
}

#[test]
fn rotations_and_kill_9_restarts_lose_nothing() {
    let summary = rotations_and_restarts(true);
    assert!(summary.contains("\"acked\": 500000"), "{summary}");
}

#[test]
fn rotations_and_clean_restarts_duplicate_nothing() {
    let summary = rotations_and_restarts(false);
    assert!(summary.contains("\"duplicates\": 0"), "{summary}");
}

#[test]
fn a_flume_position_file_is_picked_up() {
    let tmp = test_dir();
    let dir = tmp.path();
    let mut w = Writer::new(dir);
    w.write(10);
    let text = std::fs::read_to_string(&w.log).unwrap();
    let after_four: usize = text.lines().take(4).map(|l| l.len() + 1).sum();
    let inode = std::fs::metadata(&w.log).unwrap().ino();
    // Exactly what Flume's Gson writes.
    std::fs::write(
        dir.join("taildir_position.json"),
        format!(
            "[{{\"inode\":{inode},\"pos\":{after_four},\"file\":\"{}\"}}]",
            w.log.display()
        ),
    )
    .unwrap();
    // Only lines 4..10 are owed.
    std::fs::write(
        dir.join("acked"),
        (4..10).map(|n| format!("{n}\n")).collect::<String>(),
    )
    .unwrap();
    let mut agent = start(dir);
    wait_delivered(dir);
    agent.terminate();
    let summary = verify(dir, 0);
    assert!(
        summary.contains("\"unacked_delivered\": 0"),
        "lines before the position were read again: {summary}"
    );
    let positions = std::fs::read_to_string(dir.join("taildir_position.json")).unwrap();
    assert!(
        positions.contains(&format!("\"pos\":{}", text.len())),
        "{positions}"
    );
}

#[test]
fn a_java_stack_trace_becomes_one_event() {
    let tmp = test_dir();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let trace = "2026-11-25 10:00:00 ERROR request failed\n\
java.lang.IllegalStateException: boom\n\
\tat com.example.Handler.handle(Handler.java:42)\n\
\tat com.example.Server.run(Server.java:7)\n\
Caused by: java.io.IOException: disk\n\
\t... 2 more\n\
2026-11-25 10:00:01 INFO next request\n";
    std::fs::write(dir.join("logs/app.log"), trace).unwrap();
    let extra = "a1.sources.r1.byteOffsetHeader = true
a1.sources.r1.multiline.pattern = ^\\\\d{4}-\\\\d{2}-\\\\d{2}
a1.sources.r1.multiline.negate = true
a1.sources.r1.multiline.match = after
a1.sources.r1.multiline.timeout = 200
a1.sinks.k1.sink.serializer = HEADER_AND_TEXT";
    let mut agent = Agent::start(dir, "a1", &config(dir, extra), &[]);
    let out = dir.join("out");
    wait_until("both events", DEADLINE, || {
        output_lines(&out)
            .iter()
            .filter(|l| l.starts_with('{'))
            .count()
            == 2
    });
    agent.terminate();
    let text: String = output_files(&out)
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let second = trace.find("2026-11-25 10:00:01").unwrap();
    let expected = format!(
        "{{byteoffset=0}} {}\n{{byteoffset={second}}} {}",
        &trace[..second - 1],
        &trace[second..]
    );
    assert_eq!(text, expected);
}

#[test]
fn a_partial_last_line_is_flushed_after_idle_timeout() {
    let tmp = test_dir();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::write(dir.join("logs/app.log"), "complete\npartial").unwrap();
    let extra = "a1.sources.r1.idleTimeout = 300";
    let mut agent = Agent::start(dir, "a1", &config(dir, extra), &[]);
    let out = dir.join("out");
    wait_until("the partial line", DEADLINE, || {
        output_lines(&out).len() == 2
    });
    assert_eq!(output_lines(&out), ["complete", "partial"]);
    // Completing it later only adds the rest (the flushed part is committed).
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.join("logs/app.log"))
        .unwrap();
    f.write_all(b"-rest\nnext\n").unwrap();
    wait_until("the following lines", DEADLINE, || {
        output_lines(&out).len() == 4
    });
    assert_eq!(output_lines(&out), ["complete", "partial", "-rest", "next"]);
    agent.terminate();
}

#[test]
fn a_file_rotated_out_of_the_pattern_is_still_read_to_its_end() {
    let tmp = test_dir();
    let dir = tmp.path();
    let mut w = Writer::new(dir);
    w.write(10);
    let mut agent = start(dir);
    wait_delivered(dir);
    // A burst, then at once a rotation to a name outside the pattern: the rest of the old
    // file is read through the descriptor held open.
    w.write(100_000);
    std::fs::rename(&w.log, dir.join("logs/rotated.old")).unwrap();
    std::fs::File::create(&w.log).unwrap();
    w.write(10);
    wait_delivered(dir);
    assert!(agent.terminate().success());
    verify(dir, 0);
    agent.wait_for_log(&["Finished a file that left the file group"]);
}
