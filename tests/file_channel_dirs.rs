//! The durable `file` channel's directories, through the real binary: one agent per
//! directory, foreign files refused and left untouched, events kept across a clean restart.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use common::*;

/// netcat (acks every event) → file channel → file_roll into `out`.
fn config(data: &Path, checkpoint: &Path, out: &Path) -> String {
    let sink = format!(
        "a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.batchSize = 100\n",
        out.display()
    );
    let extra = "a1.channels.c1.checkpointInterval = 1000\n";
    netcat_file_channel_config(checkpoint, data, 10_000, 100, extra, &sink)
}

/// A directory for one agent's config file (two agents must not share `agent.properties`).
fn config_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("creating a config directory");
    dir
}

/// Waits for the agent to exit on its own; returns (exit code, seconds it took).
fn exit_code(agent: &mut Agent) -> (Option<i32>, f64) {
    let started = Instant::now();
    let status = agent.wait();
    (status.code(), started.elapsed().as_secs_f64())
}

#[test]
fn a_second_agent_on_the_same_directories_is_refused_and_the_first_keeps_working() {
    let dir = test_dir();
    let (data, checkpoint) = (dir.path().join("data"), dir.path().join("checkpoint"));
    let out = dir.path().join("out");
    let cfg = config(&data, &checkpoint, &out);
    let mut first = Agent::start(&config_dir(dir.path(), "first"), "a1", &cfg, &[]);
    let port = first.wait_for_port("r1");
    assert_eq!(tcp_send(port, b"before\n"), b"OK\n");

    let mut second = Agent::start(&config_dir(dir.path(), "second"), "a1", &cfg, &[]);
    let (code, secs) = exit_code(&mut second);
    assert_eq!(code, Some(1), "log:\n{}", second.log());
    assert!(secs < 10.0, "the refusal took {secs:.1} s");
    assert!(
        second.log().contains("in use by another Flumen process"),
        "log:\n{}",
        second.log()
    );

    // Sharing only the data directory is refused too.
    let own_checkpoint = dir.path().join("checkpoint-3");
    let cfg3 = config(&data, &own_checkpoint, &dir.path().join("out-3"));
    let mut third = Agent::start(&config_dir(dir.path(), "third"), "a1", &cfg3, &[]);
    let (code, _) = exit_code(&mut third);
    assert_eq!(code, Some(1), "log:\n{}", third.log());
    assert!(
        third.log().contains("in use by another Flumen process"),
        "log:\n{}",
        third.log()
    );

    assert!(first.is_running(), "log:\n{}", first.log());
    assert_eq!(tcp_send(port, b"after\n"), b"OK\n");
    wait_until("both lines delivered", DEADLINE, || {
        count_output_lines(&out) >= 2
    });
    let status = first.terminate();
    assert!(status.success(), "exit {status:?}; log:\n{}", first.log());
    let mut got = output_lines(&out);
    got.sort();
    assert_eq!(got, ["after", "before"]);
}

/// A file's bytes and modification time.
type Snapshot = Vec<(PathBuf, Vec<u8>, SystemTime)>;

/// Writes each file with pseudo-random bytes and an old modification time.
fn plant(files: &[PathBuf], rng: &mut Rng) {
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for path in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating a directory");
        }
        let size = rng.range(64, 8192) as usize;
        std::fs::write(path, rng.bytes(size)).expect("planting a file");
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(old))
            .expect("setting the modification time");
    }
}

fn snapshot(files: &[PathBuf]) -> Snapshot {
    files
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).expect("reading a planted file");
            let mtime = std::fs::metadata(p)
                .and_then(|m| m.modified())
                .expect("reading the modification time");
            (p.clone(), bytes, mtime)
        })
        .collect()
}

/// Plants `files`, runs the agent on `data` and `checkpoint`: it must exit with status 1,
/// say "not Flumen's" and name one of the files, and leave every file exactly as it was.
fn refuses_foreign_files(data: &Path, checkpoint: &Path, files: &[PathBuf], seed: u64) {
    plant(files, &mut Rng::new(seed));
    let before = snapshot(files);
    let root = data.parent().expect("a parent directory");
    let cfg = config(data, checkpoint, &root.join("out"));
    let mut agent = Agent::start(root, "a1", &cfg, &[]);
    let (code, secs) = exit_code(&mut agent);
    let log = agent.log();
    assert_eq!(code, Some(1), "log:\n{log}");
    assert!(secs < 10.0, "the refusal took {secs:.1} s");
    let line = log
        .lines()
        .find(|l| l.contains("not Flumen's"))
        .unwrap_or_else(|| panic!("no \"not Flumen's\" in the log:\n{log}"));
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(String::from))
        .collect();
    assert!(
        names.iter().any(|n| line.contains(n.as_str())),
        "the refusal names none of {names:?}: {line}"
    );
    assert!(!log.contains("panicked"), "log:\n{log}");
    let after = snapshot(files);
    for ((path, bytes, mtime), (_, bytes_after, mtime_after)) in before.iter().zip(&after) {
        assert!(bytes == bytes_after, "{} was modified", path.display());
        assert_eq!(mtime, mtime_after, "{} was touched", path.display());
    }
}

#[test]
fn a_flume_file_channel_layout_is_refused_and_left_untouched() {
    let dir = test_dir();
    let (data, checkpoint) = (dir.path().join("data"), dir.path().join("checkpoint"));
    let files: Vec<PathBuf> = [
        data.join("log-1"),
        data.join("log-1.meta"),
        checkpoint.join("checkpoint"),
        checkpoint.join("checkpoint.meta"),
        checkpoint.join("inflighttakes"),
        checkpoint.join("inflightputs"),
    ]
    .into();
    refuses_foreign_files(&data, &checkpoint, &files, 1);
}

#[test]
fn a_flume_checkpoint_beside_empty_data_dirs_is_refused_and_left_untouched() {
    let dir = test_dir();
    let (data, checkpoint) = (dir.path().join("data"), dir.path().join("checkpoint"));
    std::fs::create_dir_all(&data).expect("creating the data dir");
    let files: Vec<PathBuf> = [
        checkpoint.join("checkpoint"),
        checkpoint.join("checkpoint.meta"),
        checkpoint.join("inflighttakes"),
        checkpoint.join("inflightputs"),
    ]
    .into();
    refuses_foreign_files(&data, &checkpoint, &files, 2);
}

#[test]
fn a_file_named_like_flumens_with_foreign_content_is_refused_and_left_untouched() {
    let dir = test_dir();
    let (data, checkpoint) = (dir.path().join("data"), dir.path().join("checkpoint"));
    refuses_foreign_files(&data, &checkpoint, &[data.join("log-3.flumen")], 3);
}

#[test]
fn a_clean_stop_with_an_undeliverable_sink_keeps_every_event_for_the_next_start() {
    let dir = test_dir();
    let (data, checkpoint) = (dir.path().join("data"), dir.path().join("checkpoint"));
    // A file where the sink's directory should be: every delivery fails.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").expect("writing the blocker file");
    let stuck = config(&data, &checkpoint, &blocker.join("out"));
    let mut agent = Agent::start(dir.path(), "a1", &stuck, &["--shutdown-timeout", "0.5"]);
    let port = agent.wait_for_port("r1");
    let lines: Vec<String> = (0..50).map(|i| format!("keep-{i:03}")).collect();
    let mut payload = lines.join("\n");
    payload.push('\n');
    assert_eq!(
        String::from_utf8_lossy(&tcp_send(port, payload.as_bytes())),
        "OK\n".repeat(lines.len())
    );
    agent.wait_for_log(&["Delivery failed", "sink=k1"]);
    let status = agent.terminate();
    let log = agent.log();
    // A durable channel loses nothing at shutdown: no "lost" exit status (3), no loss report.
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("lost") && (l.contains("ERROR") || l.contains("WARN"))),
        "log:\n{log}"
    );

    let out = dir.path().join("out");
    let mut agent = Agent::start(dir.path(), "a1", &config(&data, &checkpoint, &out), &[]);
    agent.wait_for_port("r1");
    wait_until("50 lines delivered after the restart", DEADLINE, || {
        count_output_lines(&out) >= lines.len()
    });
    // The restarted agent takes new events too, behind the kept ones.
    assert_eq!(tcp_send(agent.wait_for_port("r1"), b"last\n"), b"OK\n");
    wait_until("the last line delivered", DEADLINE, || {
        count_output_lines(&out) > lines.len()
    });
    let status = agent.terminate();
    assert!(status.success(), "exit {status:?}; log:\n{}", agent.log());
    let mut got = output_lines(&out);
    got.sort();
    let mut want = lines.clone();
    want.push("last".into());
    want.sort();
    assert_eq!(got, want, "each kept event once, then the new one");
}
