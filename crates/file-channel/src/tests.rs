//! File-channel behaviour beyond the shared contract: damage, foreign files, locks, low disk,
//! injected write errors, dual checkpoints, deletion of spent files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::sim_fs::{CrashMode, SimFs};
use super::{FileChannel, FileChannelConfig};
use flumen_core::channel::Channel;
use flumen_core::event::{Event, Headers};

fn config(base: &Path) -> FileChannelConfig {
    let mut c = FileChannelConfig::with_base(base);
    c.capacity = 10_000;
    c.transaction_capacity = 100;
    c.keep_alive = Duration::from_millis(20);
    c.checkpoint_interval = Duration::from_secs(3600);
    c.minimum_required_space = 1 << 20;
    c
}

async fn sim_channel(fs: &SimFs, c: FileChannelConfig) -> FileChannel {
    let ch = FileChannel::with_fs("c1", c, Arc::new(fs.clone()));
    ch.start().await.unwrap();
    ch
}

fn batch(prefix: &str, range: std::ops::Range<u32>) -> Vec<Event> {
    range.map(|i| Event::new(format!("{prefix}-{i}"))).collect()
}

async fn drain(ch: &FileChannel) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let t = ch.take(100).await.unwrap();
        if t.is_empty() {
            return out;
        }
        out.extend(
            t.events()
                .iter()
                .map(|e| String::from_utf8_lossy(&e.body).into_owned()),
        );
        t.commit().await.unwrap();
    }
}

fn names(prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn events_and_headers_survive_a_restart_on_a_real_disk() {
    let dir = tempfile::tempdir().unwrap();
    let ch = FileChannel::new("c1", config(dir.path()));
    ch.start().await.unwrap();
    let mut h = Headers::new();
    h.insert("host".into(), "web-1".into());
    ch.put(vec![
        Event::with_headers(h.clone(), "first"),
        Event::new("second"),
    ])
    .await
    .unwrap();
    let taken = ch.take(1).await.unwrap();
    assert_eq!(taken.len(), 1);
    ch.stop().await;
    drop(taken);
    let again = FileChannel::new("c1", config(dir.path()));
    again.start().await.unwrap();
    let t = again.take(10).await.unwrap();
    assert_eq!(
        t.events(),
        &[Event::with_headers(h, "first"), Event::new("second")]
    );
    t.commit().await.unwrap();
    again.stop().await;
}

#[tokio::test]
async fn a_waiting_put_succeeds_when_a_take_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.capacity = 10;
    c.transaction_capacity = 10;
    c.keep_alive = Duration::from_secs(30);
    let ch = FileChannel::new("c1", c);
    ch.start().await.unwrap();
    ch.put(batch("a", 0..10)).await.unwrap();
    let putter = {
        let ch = ch.clone();
        tokio::spawn(async move { ch.put(batch("b", 0..5)).await })
    };
    ch.take(10).await.unwrap().commit().await.unwrap();
    putter.await.unwrap().unwrap();
    assert_eq!(ch.pending(), 5);
    ch.stop().await;
}

fn data_file(fs: &SimFs, dir: &Path) -> PathBuf {
    fs.files_in(dir)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".flumen"))
        .expect("a data file")
}

/// Three put batches (`b0-*`, `b1-*`, `b2-*`) in one data file, then kill -9 with no
/// checkpoint: replay must read the log. Returns the disk, the config and the data file.
async fn three_batches_then_kill(base: &Path) -> (SimFs, FileChannelConfig, PathBuf) {
    let fs = SimFs::new();
    let mut c = config(base);
    c.checkpoint_on_close = false;
    let ch = sim_channel(&fs, c.clone()).await;
    for b in 0..3 {
        ch.put(batch(&format!("b{b}"), 0..5)).await.unwrap();
    }
    ch.kill();
    let path = data_file(&fs, &base.join("data"));
    (fs, c, path)
}

#[tokio::test]
async fn a_damaged_event_in_the_middle_costs_that_event_alone() {
    let (fs, c, path) = three_batches_then_kill(Path::new("/sim/mid")).await;
    let mut bytes = fs.read(&path).unwrap();
    let at = memchr::memmem::find(&bytes, b"b1-2").unwrap();
    bytes[at + 1] ^= 0x01;
    fs.write(&path, &bytes);
    let ch = sim_channel(&fs, c).await;
    let mut want = names("b0", 0..5);
    want.extend(names("b1", 0..5).into_iter().filter(|n| n != "b1-2"));
    want.extend(names("b2", 0..5));
    assert_eq!(drain(&ch).await, want);
    let damage = ch.replay_damage().join("\n");
    assert!(damage.contains(&path.display().to_string()), "{damage}");
    assert!(damage.contains("offset"), "{damage}");
    ch.stop().await;
}

#[tokio::test]
async fn a_damaged_record_header_in_the_middle_is_skipped_and_reported() {
    let (fs, c, path) = three_batches_then_kill(Path::new("/sim/hdr")).await;
    let mut bytes = fs.read(&path).unwrap();
    let marker = super::format::SYNC_MARKER.to_le_bytes();
    let second = memchr::memmem::find_iter(&bytes, &marker).nth(1).unwrap();
    bytes[second + 9] ^= 0x40; // the count field: the header checksum no longer matches
    fs.write(&path, &bytes);
    let ch = sim_channel(&fs, c).await;
    let mut want = names("b0", 0..5);
    want.extend(names("b2", 0..5));
    assert_eq!(drain(&ch).await, want);
    let damage = ch.replay_damage().join("\n");
    assert!(damage.contains(&format!("at offset {second}")), "{damage}");
    ch.stop().await;
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_the_channel_goes_on() {
    let fs = SimFs::new();
    let base = Path::new("/sim/torn");
    let ch = sim_channel(&fs, config(base)).await;
    ch.put(batch("ok", 0..3)).await.unwrap();
    fs.start_dying();
    assert!(ch.put(batch("lost", 0..3)).await.is_err());
    ch.kill();
    fs.crash(CrashMode::Torn {
        keep_per_mille: 500,
    });
    let ch = sim_channel(&fs, config(base)).await;
    assert_eq!(drain(&ch).await, names("ok", 0..3));
    assert!(ch.replay_damage().is_empty(), "a torn tail is not damage");
    ch.put(batch("after", 0..2)).await.unwrap();
    assert_eq!(drain(&ch).await, names("after", 0..2));
    ch.stop().await;
}

#[tokio::test]
async fn foreign_files_are_refused_and_left_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let data = &c.data_dirs[0];
    std::fs::create_dir_all(data).unwrap();
    std::fs::create_dir_all(&c.checkpoint_dir).unwrap();
    let flume = [
        (
            data.join("log-1"),
            b"\x00\x00\x00\x7fflume-log-bytes".to_vec(),
        ),
        (data.join("log-1.meta"), b"\x08\x02meta".to_vec()),
        (c.checkpoint_dir.join("checkpoint"), vec![0u8; 64]),
        (c.checkpoint_dir.join("inflightputs"), b"puts".to_vec()),
    ];
    for (p, b) in &flume {
        std::fs::write(p, b).unwrap();
    }
    let before: Vec<_> = flume
        .iter()
        .map(|(p, _)| {
            (
                std::fs::read(p).unwrap(),
                std::fs::metadata(p).unwrap().modified().unwrap(),
            )
        })
        .collect();
    let ch = FileChannel::new("c1", c.clone());
    let err = ch.start().await.unwrap_err().to_string();
    assert!(err.contains("not Flumen's"), "{err}");
    assert!(err.contains("checkpoint") || err.contains("log-1"), "{err}");
    for ((p, _), (bytes, mtime)) in flume.iter().zip(before) {
        assert_eq!(std::fs::read(p).unwrap(), bytes, "{} changed", p.display());
        assert_eq!(std::fs::metadata(p).unwrap().modified().unwrap(), mtime);
    }
    // A file with Flumen's name but somebody else's bytes.
    let other = tempfile::tempdir().unwrap();
    let c = config(other.path());
    std::fs::create_dir_all(&c.data_dirs[0]).unwrap();
    let fake = c.data_dirs[0].join("log-3.flumen");
    std::fs::write(
        &fake,
        b"PK\x03\x04 not ours at all, long enough for a header",
    )
    .unwrap();
    let err = FileChannel::new("c1", c)
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not Flumen's") && err.contains("log-3.flumen"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&fake).unwrap(),
        b"PK\x03\x04 not ours at all, long enough for a header"
    );
}

#[tokio::test]
async fn a_second_channel_on_the_same_directories_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = FileChannel::new("c1", config(dir.path()));
    first.start().await.unwrap();
    let err = FileChannel::new("c2", config(dir.path()))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("in use by another Flumen process"), "{err}");
    first.put(batch("x", 0..2)).await.unwrap();
    first.stop().await;
    // Released on stop.
    let again = FileChannel::new("c1", config(dir.path()));
    again.start().await.unwrap();
    assert_eq!(drain(&again).await, names("x", 0..2));
    again.stop().await;
}

#[tokio::test]
async fn low_space_refuses_puts_keeps_takes_and_recovers() {
    let fs = SimFs::new();
    let base = Path::new("/sim/low");
    let mut c = config(base);
    c.minimum_required_space = 1 << 20;
    fs.set_size(Some((1 << 20) + 64 * 1024));
    let ch = sim_channel(&fs, c).await;
    let big = |i: u32| vec![Event::new(vec![b'a' + (i % 26) as u8; 1000]); 10];
    let mut acked = 0;
    let err = loop {
        match ch.put(big(acked)).await {
            Ok(()) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 1000, "puts never refused");
    };
    assert_eq!(err.code(), "unavailable");
    assert!(err.to_string().contains("minimumRequiredSpace"), "{err}");
    assert!(
        err.into_events().is_some_and(|e| e.len() == 10),
        "the batch is handed back"
    );
    // Takes still work while puts are refused.
    let t = ch.take(10).await.unwrap();
    assert_eq!(t.len(), 10);
    t.commit().await.unwrap();
    fs.set_size(None);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ch.put(big(acked)).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "puts never resumed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ch.pending(), acked as usize * 10);
    ch.stop().await;
}

#[tokio::test]
async fn a_write_cut_by_enospc_loses_nothing_acknowledged() {
    let fs = SimFs::new();
    let base = Path::new("/sim/enospc");
    let mut c = config(base);
    c.minimum_required_space = 0; // let the disk really fill up
    let ch = sim_channel(&fs, c.clone()).await;
    ch.put(batch("pre", 0..1)).await.unwrap();
    fs.set_size(Some(fs_used(&fs) + 3000));
    let mut acked = names("pre", 0..1);
    let mut refused = 0;
    for b in 0..20 {
        let events: Vec<Event> = (0..5)
            .map(|i| Event::new(format!("b{b}-{i}-{}", "x".repeat(90))))
            .collect();
        let bodies: Vec<String> = events
            .iter()
            .map(|e| String::from_utf8_lossy(&e.body).into_owned())
            .collect();
        match ch.put(events).await {
            Ok(()) => acked.extend(bodies),
            Err(e) => {
                assert!(matches!(e.code(), "unavailable"), "{e}");
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "the disk never filled");
    fs.set_size(None);
    // The writer reopens once space is back; then everything acknowledged is there, once.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match ch.put(batch("post", 0..1)).await {
            Ok(()) => break,
            Err(_) => assert!(std::time::Instant::now() < deadline, "never recovered"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    acked.extend(names("post", 0..1));
    assert_eq!(drain(&ch).await, acked);
    ch.kill();
    fs.crash(CrashMode::LoseUnsynced);
    let ch = sim_channel(&fs, c).await;
    assert_eq!(
        drain(&ch).await,
        Vec::<String>::new(),
        "all was taken and committed"
    );
    ch.stop().await;
}

fn fs_used(fs: &SimFs) -> u64 {
    u64::MAX / 4 - super::fs::Fs::available_space(fs, Path::new("/")).unwrap()
}

#[tokio::test]
async fn a_damaged_checkpoint_falls_back_to_the_backup() {
    let fs = SimFs::new();
    let base = Path::new("/sim/dual");
    let mut c = config(base);
    c.use_dual_checkpoints = true;
    c.backup_checkpoint_dir = Some(base.join("backup"));
    let ch = sim_channel(&fs, c.clone()).await;
    ch.put(batch("e", 0..4)).await.unwrap();
    ch.take(2).await.unwrap().commit().await.unwrap();
    ch.stop().await;
    let primary = base.join("checkpoint").join("checkpoint");
    let mut bytes = fs.read(&primary).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    fs.write(&primary, &bytes);
    let ch = sim_channel(&fs, c).await;
    assert_eq!(drain(&ch).await, names("e", 2..4));
    assert!(ch.replay_damage().join("\n").contains("checksum"));
    ch.stop().await;
}

#[tokio::test]
async fn data_files_whose_events_are_all_taken_are_deleted() {
    let fs = SimFs::new();
    let base = Path::new("/sim/gc");
    let mut c = config(base);
    c.max_file_size = 2048;
    c.checkpoint_interval = Duration::from_millis(5);
    let ch = sim_channel(&fs, c).await;
    for b in 0..40 {
        let events = (0..10).map(|i| Event::new(format!("b{b}-{i}-{}", "x".repeat(100))));
        ch.put(events.collect()).await.unwrap();
    }
    let written = fs.files_in(&base.join("data")).len();
    assert!(written > 10, "only {written} files: no rolling");
    assert_eq!(drain(&ch).await.len(), 400);
    let data = base.join("data");
    wait_for("spent files to be deleted", || {
        fs.files_in(&data)
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(".flumen"))
            .count()
            <= 2
    })
    .await;
    ch.stop().await;
}

/// Commits in flight on the syncer when an fsync fails: each put is acknowledged only if it is
/// durable, the failed ones and those behind them are refused, the channel reopens and goes on,
/// and after a power cut everything acknowledged is still there or was taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fsync_failures_with_commits_in_flight_lose_nothing_acknowledged() {
    let fs = SimFs::new();
    let c = config(Path::new("/sim/syncer"));
    let arm = |fs: &SimFs| fs.fail_next_sync();
    fsync_failures_under_load(&fs, c, 6, Duration::from_millis(3), arm).await;
}

/// The same with data files rolling every few puts and the syncer slow, while fsyncs fail on
/// the writer's thread: a roll's fsync of the old file must not take the error that the
/// syncer's fsync of the same file needs to see (Linux reports it to one fsync only).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_fsync_failing_at_a_roll_is_not_missed_by_the_syncer() {
    let fs = SimFs::new();
    let mut c = config(Path::new("/sim/syncer-roll"));
    c.max_file_size = 3000;
    fs.slow_syncs_on("flumen-fc-sync-", Duration::from_millis(30));
    let arm = |fs: &SimFs| fs.fail_next_sync_on("flumen-fc-c1");
    fsync_failures_under_load(&fs, c, 16, Duration::from_millis(5), arm).await;
}

/// Puts from `putters` tasks and takes from one while `arm` sets up eight fsync failures,
/// `every` apart; then a power cut, a restart, and the books: nothing acknowledged is lost,
/// nothing committed comes twice, nothing comes that was never put.
async fn fsync_failures_under_load(
    fs: &SimFs,
    c: FileChannelConfig,
    putters: usize,
    every: Duration,
    arm: impl Fn(&SimFs),
) {
    use std::collections::{BTreeSet, HashSet};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    let ch = sim_channel(fs, c.clone()).await;
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for p in 0..putters {
        let (ch, acked, refused) = (ch.clone(), acked.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            for b in 0..40 {
                let prefix = format!("p{p}b{b}");
                match ch.put(batch(&prefix, 0..5)).await {
                    Ok(()) => acked.lock().unwrap().extend(names(&prefix, 0..5)),
                    Err(e) => {
                        assert_eq!(e.code(), "unavailable", "{e}");
                        refused.lock().unwrap().extend(names(&prefix, 0..5));
                    }
                }
            }
        }));
    }
    // The taker's events count as delivered whether or not its commit succeeds: a sink
    // commits after delivering, and a failed commit is in doubt (it may have reached the disk).
    let taker = {
        let (ch, done) = (ch.clone(), done.clone());
        tokio::spawn(async move {
            let (mut committed, mut in_doubt) = (Vec::new(), Vec::new());
            while !done.load(Ordering::Relaxed) {
                let Ok(t) = ch.take(20).await else { continue };
                if t.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let bodies: Vec<String> = t
                    .events()
                    .iter()
                    .map(|e| String::from_utf8_lossy(&e.body).into_owned())
                    .collect();
                match t.commit().await {
                    Ok(()) => committed.extend(bodies),
                    Err(_) => in_doubt.extend(bodies),
                }
            }
            (committed, in_doubt)
        })
    };
    for _ in 0..8 {
        arm(fs);
        tokio::time::sleep(every).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let (committed, in_doubt) = taker.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    let refused: HashSet<String> = refused.lock().unwrap().iter().cloned().collect();
    assert!(!acked.is_empty(), "no put succeeded");
    assert!(!refused.is_empty(), "no fsync failed under a put");
    ch.kill();
    fs.crash(CrashMode::LoseUnsynced);
    let ch = sim_channel(fs, c).await;
    let left = drain(&ch).await;
    ch.stop().await;

    let mut once = HashSet::new();
    for e in committed.iter().chain(&left) {
        assert!(once.insert(e.clone()), "{e} delivered twice");
    }
    for e in once.iter().chain(&in_doubt) {
        assert!(
            acked.contains(e) || refused.contains(e),
            "{e} was never put"
        );
    }
    let lost: BTreeSet<&String> = acked
        .iter()
        .filter(|e| !once.contains(*e) && !in_doubt.contains(e))
        .collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
}
