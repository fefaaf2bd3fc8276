//! The durable `file` channel on a nearly full disk, through the real binary: a tmpfs of a few
//! MB holds the channel's directories and a filler file; below `minimumRequiredSpace` the
//! channel refuses puts (the netcat source answers no more `OK`s), the agent keeps running,
//! and once space comes back (the filler deleted, or data files reclaimed after the sink
//! delivered) the flow resumes and every acknowledged event arrives.
//!
//! Needs root to mount: under CI (`CI=true`) or with `FLUMEN_REQUIRE_MOUNT=1` a failed mount
//! fails the test; otherwise the test is skipped with a note.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Size of the tmpfs.
const TMPFS_SIZE: &str = "12m";
/// The channel's `minimumRequiredSpace` (Flume's floor).
const MIN_SPACE: u64 = 1 << 20;
/// Space left above the minimum once the filler is written.
const HEADROOM: u64 = 2 << 20;
/// Event size for the oracle's sender: fills the headroom in about two thousand events.
const EVENT_SIZE: &str = "1000";

/// A tmpfs mounted for one test, unmounted when dropped (even when the test fails).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` on `dir`; `None` (with a note) when mounting is not allowed
    /// here and the test may be skipped.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("creating the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir: dir.to_path_buf(),
            }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    !required("FLUMEN_REQUIRE_MOUNT"),
                    "mounting a tmpfs is required here (CI or FLUMEN_REQUIRE_MOUNT=1): {why}"
                );
                eprintln!("skipping: cannot mount a tmpfs (needs root): {why}");
                None
            }
        }
    }

    /// Bytes available to an unprivileged writer (what the channel checks).
    fn available(&self) -> u64 {
        let out = Command::new("stat")
            .args(["-f", "-c", "%a %S"])
            .arg(&self.dir)
            .output()
            .expect("running stat -f");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut nums = text.split_whitespace().map(|n| n.parse::<u64>().ok());
        match (nums.next().flatten(), nums.next().flatten()) {
            (Some(blocks), Some(size)) => blocks * size,
            _ => panic!("unexpected stat -f output: {text}"),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (an agent not yet reaped): detach it now, freed when unused.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// A running agent whose channel lives on a nearly full tmpfs. Fields drop in order: the
/// agent first, then the mount, then the directory.
struct LowDisk {
    agent: Agent,
    tmpfs: Tmpfs,
    filler: PathBuf,
    /// A regular file where the sink's directory should be: delete it and the sink delivers.
    blocker: PathBuf,
    out: PathBuf,
    acked: PathBuf,
    port: u16,
    /// The next event number for the oracle's sender.
    next: u64,
    /// Held so the test directory is removed only after the tmpfs is unmounted.
    _dir: tempfile::TempDir,
}

/// Mounts the tmpfs, starts netcat → file channel → a sink that cannot deliver yet, fills the
/// disk to `HEADROOM` above the minimum, and sends until the channel refuses.
fn fill_until_refused() -> Option<LowDisk> {
    let dir = test_dir();
    let tmpfs = Tmpfs::mount(&dir.path().join("mnt"), TMPFS_SIZE)?;
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").expect("writing the blocker file");
    let out = blocker.join("out");
    let extra = format!(
        "a1.sources.r1.max-line-length = 2048\n\
         a1.channels.c1.checkpointInterval = 500\n\
         a1.channels.c1.maxFileSize = 262144\n\
         a1.channels.c1.minimumRequiredSpace = {MIN_SPACE}\n\
         a1.channels.c1.keep-alive = 1\n"
    );
    let sink = format!(
        "a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.batchSize = 100\n",
        out.display()
    );
    let cfg = netcat_file_channel_config(
        &tmpfs.dir.join("checkpoint"),
        &tmpfs.dir.join("data"),
        10_000,
        100,
        &extra,
        &sink,
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let port = agent.wait_for_port("r1");

    let free = tmpfs.available();
    let filler = tmpfs.dir.join("filler");
    let size = free.saturating_sub(MIN_SPACE + HEADROOM);
    let mut file = std::fs::File::create(&filler).expect("creating the filler");
    let chunk = vec![0x5a_u8; 1 << 16];
    let mut written = 0;
    while written < size {
        let n = chunk.len().min((size - written) as usize);
        file.write_all(&chunk[..n]).expect("writing the filler");
        written += n as u64;
    }
    file.sync_all().expect("syncing the filler");
    eprintln!(
        "tmpfs: {free} bytes free at start, {} after a {size}-byte filler",
        tmpfs.available()
    );

    let acked = dir.path().join("acked");
    let started = Instant::now();
    let (ok, summary) = run_oracle(&[
        "netcat",
        "127.0.0.1",
        &port.to_string(),
        "--acked",
        &acked.to_string_lossy(),
        "--size",
        EVENT_SIZE,
        "--seconds",
        "40",
    ]);
    assert!(ok, "sender: {summary}");
    let next = oracle_next(&summary);
    let left = tmpfs.available();
    eprintln!(
        "pushed back after {next} events in {:.1} s with {left} bytes free",
        started.elapsed().as_secs_f64()
    );
    assert!(
        started.elapsed() < Duration::from_secs(35),
        "the sender was never pushed back: {summary}"
    );
    assert!(next > 100, "refused too early, after {next} events");
    // Refused at the configured minimum, not when the disk itself was full.
    assert!(
        left >= MIN_SPACE / 2,
        "only {left} bytes free when the channel refused"
    );

    // While space is short, nothing more is acknowledged, and the agent says why.
    let answer = probe(port, "probe-refused");
    assert_ne!(answer, "OK\n", "a put was acknowledged below the minimum");
    let log = agent.log();
    assert!(
        log.lines()
            .any(|l| (l.contains("WARN") || l.contains("ERROR"))
                && l.to_lowercase().contains("space")),
        "no warning about disk space in the log:\n{log}"
    );
    assert!(agent.is_running(), "the agent ended; log:\n{log}");
    assert!(!log.contains("panicked"), "log:\n{log}");
    Some(LowDisk {
        agent,
        tmpfs,
        filler,
        blocker,
        out,
        acked,
        port,
        next,
        _dir: dir,
    })
}

/// Sends one line on a new connection; returns the reply line ("" on a timeout or close).
fn probe(port: u16, line: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(format!("{line}\n").as_bytes()).is_err() {
        return String::new();
    }
    let mut reply = String::new();
    let _ = BufReader::new(stream).read_line(&mut reply);
    reply
}

/// Waits until a probe line is acknowledged again; returns the seconds it took.
fn wait_for_flow(low: &LowDisk) -> f64 {
    let started = Instant::now();
    let mut n = 0;
    wait_until("the channel to accept puts again", DEADLINE, || {
        n += 1;
        probe(low.port, &format!("probe-{n}")) == "OK\n"
    });
    started.elapsed().as_secs_f64()
}

/// Sends more events, lets everything drain, stops the agent and asks the oracle.
fn finish(mut low: LowDisk) {
    let (ok, summary) = run_oracle(&[
        "netcat",
        "127.0.0.1",
        &low.port.to_string(),
        "--acked",
        &low.acked.to_string_lossy(),
        "--size",
        EVENT_SIZE,
        "--start",
        &low.next.to_string(),
        "--count",
        "300",
        "--seconds",
        "40",
    ]);
    assert!(ok, "sender: {summary}");
    assert_eq!(
        oracle_next(&summary),
        low.next + 300,
        "the flow stalled again: {summary}; log:\n{}",
        low.agent.log()
    );
    if low.blocker.is_file() {
        std::fs::remove_file(&low.blocker).expect("unblocking the sink");
    }
    wait_until("every acknowledged event delivered", DEADLINE, || {
        acked_missing(&low.out, &low.acked) == 0
    });
    let status = low.agent.terminate();
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        low.agent.log()
    );
    // No crash happened: every acknowledged event exactly once, no refused one delivered.
    let (ok, verdict) = run_oracle(&[
        "verify",
        &low.out.to_string_lossy(),
        "--acked",
        &low.acked.to_string_lossy(),
        "--max-duplicates",
        "0",
    ]);
    eprintln!("oracle: {verdict}");
    assert!(ok, "oracle: {verdict}");
}

#[test]
fn low_space_pushes_the_source_back_until_the_filler_is_deleted() {
    let Some(low) = fill_until_refused() else {
        return;
    };
    std::fs::remove_file(&low.filler).expect("deleting the filler");
    let secs = wait_for_flow(&low);
    eprintln!(
        "puts accepted again {secs:.1} s after the filler went ({} bytes free)",
        low.tmpfs.available()
    );
    finish(low);
}

#[test]
fn low_space_pushes_the_source_back_until_delivered_data_files_are_reclaimed() {
    let Some(low) = fill_until_refused() else {
        return;
    };
    // The filler stays: only the channel deleting fully taken data files can free space.
    std::fs::remove_file(&low.blocker).expect("unblocking the sink");
    wait_until("the piled-up events delivered", DEADLINE, || {
        acked_missing(&low.out, &low.acked) == 0
    });
    let secs = wait_for_flow(&low);
    eprintln!(
        "puts accepted again {secs:.1} s after the drain ({} bytes free)",
        low.tmpfs.available()
    );
    finish(low);
}
