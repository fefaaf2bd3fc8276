//! File channel benchmark: put+take throughput, fill-then-kill, and replay after a kill.
//!
//! Driven by `scripts/bench_file_channel.sh`, which runs every mode in one run, next to the
//! disk's own limits, and turns the output into the table in BENCHMARKS.md. Each mode prints
//! one JSON line per measurement on stdout (sizes in bytes, MB = 10^6 bytes, times in seconds,
//! memory in KiB as `/proc/self/status` gives it). Every event is a 256-byte body without
//! headers; each put batch gets its own freshly allocated buffer, as a source's read would, so
//! a channel that kept bodies in memory would show it in the RSS figures.
//!
//! ```text
//! file_channel_bench throughput --dir D [--events N] [--batch B] [--putters P]
//! file_channel_bench fill       --dir D [--events N] [--checkpoint-interval-ms MS] [--wait-checkpoint-ms MS]
//! file_channel_bench replay     --dir D --events N [--drain]
//! ```
//!
//! - `throughput`: P putter tasks put N events in batches of B while one taker takes batches of
//!   B and commits each (fsyncPerTransaction = true, the default).
//! - `fill`: puts N events with no taker, prints a JSON line and then the line `filled`, and
//!   waits to be killed with SIGKILL (it never calls `stop`, so nothing is flushed or
//!   checkpointed on the way out: a kill -9). With `--wait-checkpoint-ms`, it first waits that
//!   long, then until a checkpoint newer than the last put exists (up to a minute).
//! - `replay`: opens the same directories, times `start()` (the replay), checks that exactly N
//!   events are queued, and reports its peak RSS; `--drain` then takes and commits every event
//!   in batches of 1,000, checking each body. It exits without `stop`, leaving the files as the
//!   replay left them.
//!
//! The channel's files are under `D/checkpoint` and `D/data`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use flumen::channel::file::checkpoint;
use flumen::channel::file::fs::RealFs;
use flumen::channel::file::{FileChannel, FileChannelConfig};
use flumen::channel::{Channel, ChannelError};
use flumen::event::Event;
use serde_json::{json, Value};

/// Body size of every event.
const BODY: usize = 256;
/// Batch size of the fill's puts and of the replay's drain.
const FILL_BATCH: usize = 1_000;

#[derive(Parser)]
#[command(about = "File channel benchmark (see the module doc)")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Concurrent putters and one taker; events/s and MB/s of bodies.
    Throughput {
        /// Directory for the channel's files (created; must not hold another channel).
        #[arg(long)]
        dir: PathBuf,
        /// Events to put and take.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Events per put and per take.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Concurrent putter tasks.
        #[arg(long, default_value_t = 4)]
        putters: usize,
        /// Concurrent taker tasks (as several sinks on one channel).
        #[arg(long, default_value_t = 1)]
        takers: usize,
        /// Commits each taker keeps in flight: 0 commits in line (take, commit, take, ...);
        /// N > 0 lets batch k's commit run while later batches are taken, awaiting the oldest
        /// commit once N are running.
        #[arg(long, default_value_t = 0)]
        pipelined: usize,
    },
    /// Fill with N events, print `filled`, wait for SIGKILL.
    Fill {
        /// Directory for the channel's files.
        #[arg(long)]
        dir: PathBuf,
        /// Events to put.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Concurrent putter tasks.
        #[arg(long, default_value_t = 4)]
        putters: usize,
        /// checkpointInterval in milliseconds.
        #[arg(long, default_value_t = 30_000)]
        checkpoint_interval_ms: u64,
        /// After the last put, wait this long and then for a checkpoint newer than the last put.
        #[arg(long)]
        wait_checkpoint_ms: Option<u64>,
    },
    /// Reopen a killed fill's directories and time the replay.
    Replay {
        /// The fill's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Events the fill put (the replay must find exactly these).
        #[arg(long)]
        events: usize,
        /// Then take and commit everything, checking each body.
        #[arg(long)]
        drain: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    match cli.mode {
        Mode::Throughput {
            dir,
            events,
            batch,
            putters,
            takers,
            pipelined,
        } => rt.block_on(throughput(&dir, events, batch, putters, takers, pipelined)),
        Mode::Fill {
            dir,
            events,
            putters,
            checkpoint_interval_ms,
            wait_checkpoint_ms,
        } => rt.block_on(fill(
            &dir,
            events,
            putters,
            Duration::from_millis(checkpoint_interval_ms),
            wait_checkpoint_ms.map(Duration::from_millis),
        )),
        Mode::Replay { dir, events, drain } => {
            rt.block_on(replay(&dir, events, drain))?;
            // No `stop`: the files stay as the replay left them.
            std::process::exit(0)
        }
    }
}

/// The channel's configuration: defaults (fsyncPerTransaction = true) except the directories,
/// a capacity that holds `events`, and the checkpoint interval.
fn config(dir: &Path, events: usize, checkpoint_interval: Duration) -> FileChannelConfig {
    let mut c = FileChannelConfig {
        checkpoint_dir: dir.join("checkpoint"),
        data_dirs: vec![dir.join("data")],
        checkpoint_interval,
        ..FileChannelConfig::default()
    };
    c.capacity = c.capacity.max(events);
    c
}

/// Prints one measurement as a JSON line.
fn emit(v: Value) {
    println!("{v}");
}

/// `VmHWM`, `VmRSS`, `RssAnon`, `RssFile` of this process, in KiB (0 when unreadable).
fn memory() -> Value {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    json!({
        "vmhwm_kib": field("VmHWM:"),
        "vmrss_kib": field("VmRSS:"),
        "rss_anon_kib": field("RssAnon:"),
        "rss_file_kib": field("RssFile:"),
    })
}

/// A batch of `n` events whose 256-byte bodies are slices of one new buffer, each starting
/// with its sequence number.
fn batch(first_seq: u64, n: usize) -> Vec<Event> {
    let mut buf = Vec::with_capacity(n * BODY);
    for i in 0..n as u64 {
        let seq = first_seq + i;
        let start = buf.len();
        push_seq(&mut buf, seq);
        buf.resize(start + BODY, b'a' + (seq % 26) as u8);
    }
    let block = Bytes::from(buf);
    (0..n)
        .map(|i| Event::new(block.slice(i * BODY..(i + 1) * BODY)))
        .collect()
}

/// Appends `seq` as 16 zero-padded decimal digits and a space: what `format!("{seq:016} ")`
/// gives, without the formatting machinery, which took a twentieth of the run's CPU when the
/// putters formatted every body that way (the benchmark measures the channel, not `fmt`).
fn push_seq(buf: &mut Vec<u8>, seq: u64) {
    let mut digits = [b'0'; 16];
    let mut n = seq;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    buf.extend_from_slice(&digits);
    buf.push(b' ');
}

/// What one putter did.
struct PutterReport {
    /// Seconds spent inside `put` (including waits for room).
    put_s: f64,
    /// Puts that came back `Full` and were retried.
    full_retries: u64,
}

/// Starts `putters` tasks that put `events` in batches of `batch`, sequence numbers disjoint.
fn spawn_putters(
    ch: &Arc<FileChannel>,
    events: usize,
    batch_size: usize,
    putters: usize,
) -> Vec<tokio::task::JoinHandle<Result<PutterReport>>> {
    let putters = putters.max(1);
    (0..putters)
        .map(|p| {
            let ch = Arc::clone(ch);
            // Putter p puts events [lo, hi).
            let lo = events * p / putters;
            let hi = events * (p + 1) / putters;
            tokio::spawn(async move {
                let mut report = PutterReport {
                    put_s: 0.0,
                    full_retries: 0,
                };
                let mut seq = lo;
                while seq < hi {
                    let n = batch_size.min(hi - seq);
                    let mut events = batch(seq as u64, n);
                    let t = Instant::now();
                    loop {
                        match ch.put(events).await {
                            Ok(()) => break,
                            Err(ChannelError::Full { events: back, .. }) => {
                                report.full_retries += 1;
                                events = back;
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    report.put_s += t.elapsed().as_secs_f64();
                    seq += n;
                }
                Ok(report)
            })
        })
        .collect()
}

/// Waits for the putters; the sum of their put times and retries.
async fn join_putters(
    handles: Vec<tokio::task::JoinHandle<Result<PutterReport>>>,
) -> Result<(f64, u64)> {
    let (mut put_s, mut retries) = (0.0, 0);
    for h in handles {
        let r = h.await.context("putter task panicked")??;
        put_s += r.put_s;
        retries += r.full_retries;
    }
    Ok((put_s, retries))
}

/// What a taker did.
struct TakerReport {
    taken: usize,
    body_bytes: usize,
    take_s: f64,
    commit_s: f64,
    takes: u64,
}

/// Takes and commits in batches of `batch_size` until `total` events are taken by all the
/// takers sharing `taken`, checking each body's size.
async fn take_all(
    ch: Arc<FileChannel>,
    total: usize,
    batch_size: usize,
    taken: Arc<AtomicUsize>,
    pipelined: usize,
) -> Result<TakerReport> {
    let mut committing: std::collections::VecDeque<(
        tokio::task::JoinHandle<Result<(), ChannelError>>,
        usize,
    )> = std::collections::VecDeque::new();
    let mut r = TakerReport {
        taken: 0,
        body_bytes: 0,
        take_s: 0.0,
        commit_s: 0.0,
        takes: 0,
    };
    while taken.load(Ordering::Relaxed) < total {
        let t = Instant::now();
        let take = ch.take(batch_size).await?;
        r.take_s += t.elapsed().as_secs_f64();
        if take.is_empty() {
            if let Some((task, n)) = committing.pop_front() {
                settle(task, n, &mut r, &taken).await?;
                continue;
            }
            ch.wait_for_events(Duration::from_millis(5)).await;
            continue;
        }
        for e in take.events() {
            if e.body_len() != BODY {
                bail!("event {} has a {}-byte body", r.taken, e.body_len());
            }
        }
        let n = take.len();
        let t = Instant::now();
        if pipelined > 0 {
            if committing.len() >= pipelined {
                if let Some((task, n)) = committing.pop_front() {
                    settle(task, n, &mut r, &taken).await?;
                }
            }
            committing.push_back((tokio::spawn(take.commit()), n));
        } else {
            take.commit().await?;
            count(n, &mut r, &taken);
        }
        r.commit_s += t.elapsed().as_secs_f64();
    }
    while let Some((task, n)) = committing.pop_front() {
        settle(task, n, &mut r, &taken).await?;
    }
    Ok(r)
}

/// Awaits a background commit and counts its events.
async fn settle(
    task: tokio::task::JoinHandle<Result<(), ChannelError>>,
    n: usize,
    r: &mut TakerReport,
    taken: &AtomicUsize,
) -> Result<()> {
    task.await.context("commit task panicked")??;
    count(n, r, taken);
    Ok(())
}

fn count(n: usize, r: &mut TakerReport, taken: &AtomicUsize) {
    r.taken += n;
    r.body_bytes += n * BODY;
    r.takes += 1;
    taken.fetch_add(n, Ordering::Relaxed);
}

/// Runs `takers` takers to the end; their reports summed.
async fn take_with(
    ch: &Arc<FileChannel>,
    events: usize,
    batch_size: usize,
    takers: usize,
    pipelined: usize,
) -> Result<TakerReport> {
    let taken = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..takers.max(1))
        .map(|_| {
            tokio::spawn(take_all(
                Arc::clone(ch),
                events,
                batch_size,
                Arc::clone(&taken),
                pipelined,
            ))
        })
        .collect();
    let mut sum = TakerReport {
        taken: 0,
        body_bytes: 0,
        take_s: 0.0,
        commit_s: 0.0,
        takes: 0,
    };
    for h in handles {
        let r = h.await.context("taker task panicked")??;
        sum.taken += r.taken;
        sum.body_bytes += r.body_bytes;
        sum.take_s += r.take_s;
        sum.commit_s += r.commit_s;
        sum.takes += r.takes;
    }
    Ok(sum)
}

/// Put+take throughput with concurrent putters and takers.
async fn throughput(
    dir: &Path,
    events: usize,
    batch_size: usize,
    putters: usize,
    takers: usize,
    pipelined: usize,
) -> Result<()> {
    let ch = Arc::new(FileChannel::new(
        "c1",
        config(dir, 0, Duration::from_secs(30)),
    ));
    ch.start().await?;
    let t0 = Instant::now();
    let handles = spawn_putters(&ch, events, batch_size, putters);
    // Together, so that a failed putter ends the run instead of leaving the takers waiting.
    let (taken, (put_s, full_retries)) = tokio::try_join!(
        take_with(&ch, events, batch_size, takers, pipelined),
        join_putters(handles)
    )?;
    // The putters are done before the last take, so this is the takers' end.
    let secs = t0.elapsed().as_secs_f64();
    let mem = memory();
    ch.stop().await;
    if taken.taken != events {
        bail!("took {} events, put {events}", taken.taken);
    }
    emit(json!({
        "measure": "throughput",
        "events": events,
        "batch": batch_size,
        "putters": putters,
        "takers": takers,
        "pipelined": pipelined,
        "secs": secs,
        "events_per_s": events as f64 / secs,
        "mb_per_s": taken.body_bytes as f64 / secs / 1e6,
        "puts": events.div_ceil(batch_size),
        "mean_put_ms": put_s * 1e3 / events.div_ceil(batch_size) as f64,
        "full_retries": full_retries,
        "commits": taken.takes,
        "mean_take_ms": taken.take_s * 1e3 / taken.takes.max(1) as f64,
        "mean_commit_ms": taken.commit_s * 1e3 / taken.takes.max(1) as f64,
        "memory": mem,
    }));
    Ok(())
}

/// Modification time of the checkpoint file, if there is one. The channel writes it under
/// another name and renames it, so a newer mtime means a whole new checkpoint.
fn checkpoint_mtime(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir.join("checkpoint").join("checkpoint"))
        .and_then(|m| m.modified())
        .ok()
}

/// Seconds from `from` to `to`, negative when `to` is earlier.
fn seconds_between(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Fills the channel, reports, prints `filled` and waits to be killed.
async fn fill(
    dir: &Path,
    events: usize,
    putters: usize,
    checkpoint_interval: Duration,
    wait_checkpoint: Option<Duration>,
) -> Result<()> {
    let ch = Arc::new(FileChannel::new(
        "c1",
        config(dir, events, checkpoint_interval),
    ));
    ch.start().await?;
    let t0 = Instant::now();
    let (put_s, full_retries) =
        join_putters(spawn_putters(&ch, events, FILL_BATCH, putters)).await?;
    let secs = t0.elapsed().as_secs_f64();
    let filled_at = SystemTime::now();
    let mut waited_s = 0.0;
    if let Some(wait) = wait_checkpoint {
        let w = Instant::now();
        tokio::time::sleep(wait).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while checkpoint_mtime(dir).is_none_or(|m| m <= filled_at) {
            if Instant::now() > deadline {
                bail!("no checkpoint newer than the last put within a minute");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        waited_s = w.elapsed().as_secs_f64();
    }
    let queued = ch.len();
    let mem = memory();
    let ckpt = checkpoint_mtime(dir);
    // After the memory figures: reading it allocates its pointers.
    let ckpt_entries = checkpoint::read(&RealFs, &dir.join("checkpoint"))
        .ok()
        .map(|c| c.ptrs.len());
    emit(json!({
        "measure": "fill",
        "events": events,
        "putters": putters,
        "batch": FILL_BATCH,
        "checkpoint_interval_ms": checkpoint_interval.as_millis() as u64,
        "secs": secs,
        "events_per_s": events as f64 / secs,
        "mb_per_s": (events * BODY) as f64 / secs / 1e6,
        "mean_put_ms": put_s * 1e3 / events.div_ceil(FILL_BATCH) as f64,
        "full_retries": full_retries,
        "queued": queued,
        "waited_for_checkpoint_s": waited_s,
        "checkpoint_exists": ckpt.is_some(),
        // Checkpoint mtime minus the end of the last put: >= 0 means it covers every event.
        "checkpoint_after_fill_s": ckpt.map(|m| seconds_between(filled_at, m)),
        "checkpoint_entries": ckpt_entries,
        "memory": mem,
    }));
    println!("filled");
    // Wait for SIGKILL; never stop the channel. A runner that forgets us does not leave a
    // process behind for ever.
    tokio::time::sleep(Duration::from_secs(600)).await;
    eprintln!("fill: not killed within 10 minutes; exiting without stop.");
    std::process::exit(137)
}

/// Reopens the directories, times the replay, optionally drains.
async fn replay(dir: &Path, events: usize, drain: bool) -> Result<()> {
    let before = memory();
    let ch = Arc::new(FileChannel::new(
        "c1",
        config(dir, events, Duration::from_secs(30)),
    ));
    let t0 = Instant::now();
    ch.start().await?;
    let replay_s = t0.elapsed().as_secs_f64();
    let queued = ch.len();
    let after_start = memory();
    let mut out = json!({
        "measure": "replay",
        "events": events,
        "replay_s": replay_s,
        "queued": queued,
        "queued_ok": queued == events,
        "memory_before_start": before,
        "memory": after_start,
    });
    if drain {
        let t = Instant::now();
        let r = take_with(&ch, queued, FILL_BATCH, 1, 0).await?;
        let drain_s = t.elapsed().as_secs_f64();
        out["drain_s"] = json!(drain_s);
        out["drain_events_per_s"] = json!(r.taken as f64 / drain_s);
        out["drained"] = json!(r.taken);
        out["memory_after_drain"] = memory();
    }
    emit(out);
    if queued != events {
        bail!("replay found {queued} events, the fill put {events}");
    }
    Ok(())
}
