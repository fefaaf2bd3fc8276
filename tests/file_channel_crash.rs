//! The durable `file` channel under crashes, through the real binary: a kill -9 loop loses no
//! acknowledged event and the channel deletes the data files it no longer needs; under strace,
//! no netcat acknowledgement leaves the agent before the fsync that made its event durable.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// How many times the agent is killed with SIGKILL.
const KILLS: u64 = 20;
/// The file_roll sink's batch. A kill can duplicate `COMMITS_IN_FLIGHT + 1` of them on the
/// sink side: the batches whose commits were in flight and the one delivered before its commit
/// started.
const SINK_BATCH: u64 = 100;
/// The channel's checkpoint interval, in milliseconds.
const CHECKPOINT_MS: u64 = 500;
/// Lines sent one by one in the strace test.
const TRACED_LINES: usize = 8;

/// netcat (acks every event) → file channel → `sink` (full `a1.sinks.k1.*` lines).
fn config(data: &Path, checkpoint: &Path, channel_extra: &str, sink: &str) -> String {
    let extra = format!("a1.channels.c1.keep-alive = 1\n{channel_extra}");
    netcat_file_channel_config(checkpoint, data, 100_000, 1000, &extra, sink)
}

/// A file_roll sink writing event bodies as text lines into `out`.
fn file_roll(out: &Path) -> String {
    format!(
        "a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 1\n\
         a1.sinks.k1.sink.serializer = TEXT\n\
         a1.sinks.k1.sink.batchSize = {SINK_BATCH}\n",
        out.display()
    )
}

/// The channel's data files (`log-<id>.flumen`) in `data`, by name.
fn data_files(data: &Path) -> BTreeSet<String> {
    std::fs::read_dir(data)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("log-") && n.ends_with(".flumen"))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `cond` every 20 ms for up to `timeout`; returns whether it came to hold.
fn holds_within(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_loop_loses_no_acknowledged_event_and_taken_data_files_are_deleted() {
    let dir = test_dir();
    let (data, checkpoint) = (dir.path().join("data"), dir.path().join("checkpoint"));
    let (out, acked) = (dir.path().join("out"), dir.path().join("acked"));
    let channel = format!(
        "a1.channels.c1.checkpointInterval = {CHECKPOINT_MS}\n\
         a1.channels.c1.maxFileSize = 65536\n"
    );
    let cfg = config(&data, &checkpoint, &channel, &file_roll(&out));
    let seed = std::env::var("FLUMEN_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_F11E_u64);
    eprintln!("kill schedule seed {seed} (set FLUMEN_TEST_SEED to replay another)");
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let mut next = 0u64;
    let mut files_seen = BTreeSet::new();
    let mut most_at_once = 0;
    for round in 0..KILLS {
        let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
        let port = agent.wait_for_port("r1");
        let sender = spawn_oracle_netcat(port, &acked, next, 30);
        // The kill moment is the random part of the test, not a wait for a condition.
        std::thread::sleep(Duration::from_millis(rng.range(100, 700)));
        assert!(
            agent.is_running(),
            "the agent ended before kill {round}; log:\n{}",
            agent.log()
        );
        agent.signal("KILL");
        let status = agent.wait();
        assert_eq!(status.signal(), Some(9), "kill {round}: {status:?}");
        let (ok, summary) = sender.join().expect("sender thread");
        assert!(ok, "sender after kill {round}: {summary}");
        next = oracle_next(&summary);
        let files = data_files(&data);
        most_at_once = most_at_once.max(files.len());
        files_seen.extend(files);
    }
    let acked_total = std::fs::read_to_string(&acked)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    eprintln!(
        "{KILLS} kills in {:.1} s: {acked_total} events acknowledged, {} data files seen, \
         at most {most_at_once} at once",
        started.elapsed().as_secs_f64(),
        files_seen.len()
    );
    assert!(
        acked_total as u64 > KILLS,
        "too little traffic to judge: {acked_total}"
    );

    // A clean agent drains what the crashed ones left.
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    agent.wait_for_port("r1");
    let drained = holds_within(DEADLINE / 2, || acked_missing(&out, &acked) == 0);
    let drain_started = Instant::now();
    // Fully taken data files go at the next checkpoints; a few intervals are plenty.
    let reclaimed = holds_within(Duration::from_millis(20 * CHECKPOINT_MS), || {
        data_files(&data).len() <= 2
    });
    let left = data_files(&data);
    eprintln!(
        "after the drain: {} data files left ({left:?}), waited {:.1} s",
        left.len(),
        drain_started.elapsed().as_secs_f64()
    );
    let status = agent.terminate();
    assert!(status.success(), "exit {status:?}; log:\n{}", agent.log());
    let in_flight = flumen::sink::slot::COMMITS_IN_FLIGHT as u64 + 1;
    // Per kill: the sink batches written but not committed, and the one line the source had
    // put but not yet acknowledged (the sender sends it again).
    let (ok, verdict) = oracle_verify(&out, &acked, KILLS * (in_flight * SINK_BATCH + 1));
    eprintln!("oracle: {verdict}");
    assert!(ok && drained, "oracle: {verdict}; log:\n{}", agent.log());
    assert!(
        files_seen.len() > 2,
        "the run wrote only {files_seen:?}: nothing to reclaim"
    );
    assert!(
        reclaimed,
        "{} data files left after the drain (of {} seen): {left:?}",
        left.len(),
        files_seen.len()
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "the test took {:?}",
        started.elapsed()
    );
}

/// One system call from an `strace -f -ttt -T` log.
#[derive(Debug)]
struct Call {
    name: String,
    /// Entry time (seconds since the epoch).
    entry: f64,
    /// Exit time.
    exit: f64,
    /// Arguments and result.
    text: String,
}

/// Parses `strace -f -ttt -T` output, joining `<unfinished ...>` / `resumed` pairs.
fn parse_strace(log: &str) -> Vec<Call> {
    let mut pending: HashMap<&str, (f64, String)> = HashMap::new();
    let mut calls = Vec::new();
    for line in log.lines() {
        // "PID TIME call": strace pads short pids with extra spaces.
        let Some((pid, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Some((ts, rest)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(ts) = ts.parse::<f64>() else { continue };
        let duration = rest
            .rsplit_once('<')
            .and_then(|(_, d)| d.strip_suffix('>'))
            .and_then(|d| d.parse::<f64>().ok());
        if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, (ts, head.to_string()));
        } else if let Some(tail) = rest.strip_prefix("<... ") {
            let Some((name, after)) = tail.split_once(" resumed>") else {
                continue;
            };
            let (entry, head) = pending
                .remove(pid)
                .unwrap_or((ts - duration.unwrap_or(0.0), String::new()));
            calls.push(Call {
                name: name.to_string(),
                entry,
                exit: ts,
                text: format!("{head}{after}"),
            });
        } else if let Some((name, _)) = rest.split_once('(') {
            calls.push(Call {
                name: name.to_string(),
                entry: ts,
                exit: ts + duration.unwrap_or(0.0),
                text: rest.to_string(),
            });
        }
    }
    calls
}

#[test]
fn strace_lines_are_parsed_with_padded_pids_and_resumed_calls() {
    let log =
        "9526  1795647635.260621 sendto(14, \"OK\\n\", 3, MSG_NOSIGNAL, NULL, 0 <unfinished ...>\n\
               12345 1795647635.260700 fdatasync(12)   = 0 <0.000592>\n\
               9526  1795647635.261000 <... sendto resumed>) = 3 <0.000379>\n\
               9526  1795647635.262000 --- SIGCHLD {si_signo=SIGCHLD} ---\n";
    let calls = parse_strace(log);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].name, "fdatasync");
    assert!(returned_zero(&calls[0].text));
    assert!((calls[0].exit - 1_795_647_635.261_292).abs() < 1e-6);
    assert_eq!(calls[1].name, "sendto");
    assert!(calls[1].text.contains("\"OK\\n\"") && calls[1].text.ends_with("= 3 <0.000379>"));
    assert_eq!(
        (calls[1].entry, calls[1].exit),
        (1_795_647_635.260_621, 1_795_647_635.261)
    );
}

/// Whether a traced call's result (`... = 0 <0.000123>`) is 0.
fn returned_zero(text: &str) -> bool {
    text.rsplit_once(" = ")
        .is_some_and(|(_, result)| result.split_whitespace().next() == Some("0"))
}

/// The agent process strace started (strace's only child).
fn traced_child(strace_pid: u32) -> u32 {
    let path = format!("/proc/{strace_pid}/task/{strace_pid}/children");
    let mut pid = 0;
    wait_until("strace to start the agent", DEADLINE, || {
        pid = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
            .unwrap_or(0);
        pid != 0
    });
    pid
}

fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn no_acknowledgement_leaves_before_the_fsync_that_made_its_event_durable() {
    if !strace_available() {
        assert!(
            !required("FLUMEN_REQUIRE_STRACE"),
            "strace is required here (CI or FLUMEN_REQUIRE_STRACE=1) but is not installed"
        );
        eprintln!("skipping: strace is not installed (apt-get install strace)");
        return;
    }
    let dir = test_dir();
    let (data, checkpoint) = (dir.path().join("data"), dir.path().join("checkpoint"));
    // A file where the sink's directory should be: the sink takes nothing for good, so the
    // only fsyncs are the channel's put commits (the checkpoint interval is left long).
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").expect("writing the blocker file");
    let sink = file_roll(&blocker.join("out"));
    let file: PathBuf = dir.path().join("agent.properties");
    std::fs::write(&file, config(&data, &checkpoint, "", &sink)).expect("writing the config");
    let trace = dir.path().join("strace.log");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-ttt", "-T", "-qq", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=fdatasync,fsync,write,sendto,writev,sendmsg,read,recvfrom",
        ])
        .arg(flumen_bin())
        .args(["agent", "-n", "a1", "-f"])
        .arg(&file);
    let mut agent = Agent::spawn(cmd, dir.path());
    let port = agent.wait_for_port("r1");
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut replies = BufReader::new(stream.try_clone().expect("cloning the stream"));
    let mut writer = stream;
    for k in 0..TRACED_LINES {
        writer
            .write_all(format!("dur-{k:03}\n").as_bytes())
            .expect("sending");
        let mut reply = String::new();
        replies.read_line(&mut reply).expect("reading the reply");
        assert_eq!(reply, "OK\n", "line {k}; log:\n{}", agent.log());
    }
    drop((writer, replies));
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(traced_child(agent.pid()).to_string())
        .status()
        .expect("running kill");
    assert!(status.success());
    let status = agent.wait();
    assert!(status.success(), "exit {status:?}; log:\n{}", agent.log());

    let log = std::fs::read_to_string(&trace).expect("reading the strace log");
    let calls = parse_strace(&log);
    let syncs: Vec<&Call> = calls
        .iter()
        .filter(|c| (c.name == "fdatasync" || c.name == "fsync") && returned_zero(&c.text))
        .collect();
    let mut acks: Vec<&Call> = calls
        .iter()
        .filter(|c| {
            ["write", "sendto", "writev", "sendmsg"].contains(&c.name.as_str())
                && c.text.contains("\"OK\\n\"")
        })
        .collect();
    acks.sort_by(|a, b| a.entry.total_cmp(&b.entry));
    assert_eq!(
        acks.len(),
        TRACED_LINES,
        "acknowledgement writes found in the trace: {acks:#?}"
    );
    // Timestamps are printed to the microsecond: allow for the rounding of entry + duration.
    const ROUNDING: f64 = 2e-6;
    for (k, ack) in acks.iter().enumerate() {
        let token = format!("dur-{k:03}");
        let received = calls
            .iter()
            .find(|c| (c.name == "read" || c.name == "recvfrom") && c.text.contains(&token))
            .unwrap_or_else(|| panic!("no read of {token} in the trace"));
        assert!(
            received.exit <= ack.entry + ROUNDING,
            "{received:?} {ack:?}"
        );
        let durable = syncs
            .iter()
            .find(|s| s.entry + ROUNDING >= received.exit && s.exit <= ack.entry + ROUNDING);
        assert!(
            durable.is_some(),
            "line {k} was acknowledged at {:.6} with no fsync between its read (done {:.6}) \
             and the acknowledgement; syncs: {:?}",
            ack.entry,
            received.exit,
            syncs.iter().map(|s| (s.entry, s.exit)).collect::<Vec<_>>()
        );
    }
    eprintln!(
        "{} acknowledgements, each after its own fsync; {} fsync/fdatasync calls in all",
        acks.len(),
        syncs.len()
    );
}
