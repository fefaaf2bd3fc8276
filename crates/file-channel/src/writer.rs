//! The log writer: one thread that owns the active data file, commits by group, checkpoints,
//! deletes spent files, and reopens the channel after an I/O failure.
//!
//! Putters and committing takers send it requests. It takes every request waiting and appends
//! their records with one write. With `fsyncPerTransaction` it hands the group to the syncer
//! thread (`syncer`), which makes it durable with one `fdatasync` (shared with every group
//! written meanwhile) and only then applies it to the queue and answers, while the writer
//! appends the next group. Nothing is acknowledged before it is on disk. A failed write or
//! fsync is never retried in place (after a failed fsync the kernel may have dropped the dirty
//! pages): every request of the group and after it fails, the channel stops accepting, and the
//! writer rebuilds the state from what is really on disk by a replay, then goes on in a new
//! data file.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::checkpoint::Position;
use super::dirs::{self, DirError};
use super::format::{self, FILE_HEADER_LEN};
use super::fs::FileHandle;
use super::queue::Ptr;
use super::replay;
use super::syncer::{Failed, Job, Syncer};
use super::Shared;

/// Most bytes of records one group writes before it is synced.
const MAX_GROUP_BYTES: usize = 8 << 20;
/// How often a broken channel tries to reopen, and a low-space one re-checks.
const RETRY: Duration = Duration::from_millis(250);
/// An active file with no live events is rolled at a checkpoint once this big, so that its
/// space can be given back even when `maxFileSize` is large.
pub(super) const ROLL_EMPTY_AT: u64 = 1 << 20;

/// A request to the writer.
pub enum Request {
    /// Append a committed put (record encoded by the putter, sequence assigned here).
    Put {
        /// The encoded record.
        record: Vec<u8>,
        /// Offsets of its events in the record.
        events: Vec<(u32, u32)>,
        /// Answered once durable and queued.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Commit take transaction `txn` opened in `epoch`.
    Take {
        /// The transaction.
        txn: u64,
        /// The epoch it was opened in (a reopen invalidates older ones).
        epoch: u64,
        /// Answered once durable.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Finish: checkpoint if configured, then exit.
    Stop {
        /// Answered when done.
        reply: oneshot::Sender<()>,
    },
    /// From the syncer: an fsync failed; collect the failed commits and reopen.
    SyncFailed,
}

/// The data file being appended to.
pub struct Active {
    /// Its id.
    pub id: u32,
    /// Its handle.
    pub handle: Arc<dyn FileHandle>,
    /// Bytes written so far.
    pub len: u64,
}

/// A commit written and waiting to be made durable, applied and answered.
pub(super) enum Pending {
    Put {
        ptrs: Vec<Ptr>,
        count: usize,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Take {
        txn: u64,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// The writer's state.
pub struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) active: Active,
    pub(super) paths: BTreeMap<u32, PathBuf>,
    pub(super) next_seq: u64,
    appends: Appends,
    /// Where the backup checkpoint (if any) stands: files it still needs are kept.
    pub(super) backup_position: Position,
    pub(super) last_checkpoint: Instant,
    pub(super) last_sync: Instant,
    pub(super) dirty: bool,
    pub(super) broken: bool,
    /// Syncs the groups written (with `fsyncPerTransaction`); started on the first commit.
    syncer: Option<Syncer>,
    /// The sync thread could not be started: this writer syncs in line.
    sync_inline: bool,
    /// Failed commits a barrier returned to a roll, for the `fail_all` that follows.
    carried: Failed,
}

impl Writer {
    /// Replays the directories and opens a new active file: the channel's state from disk.
    pub fn open(shared: &Arc<Shared>) -> Result<Writer, DirError> {
        let fs = shared.fs.as_ref();
        let layout = &shared.layout;
        let inv = dirs::inventory(fs, layout)?;
        for path in inv.stubs.iter().chain(&inv.stale_tmp) {
            fs.remove_file(path)
                .map_err(dirs::io_err("cannot remove", path))?;
        }
        let replayed = replay::replay(fs, layout, &inv)?;
        replayed.report.log(&shared.name);
        *shared
            .replay_damage
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = replayed.report.damage.clone();
        let mut paths: BTreeMap<u32, PathBuf> =
            inv.logs.values().map(|l| (l.id, l.path.clone())).collect();
        let id = replayed.max_file_id.map_or(1, |m| m + 1);
        let (active, path) = create_file(shared, id)?;
        paths.insert(id, path);
        {
            let mut s = shared.lock();
            s.queue.replace(replayed.queue);
            s.files = replayed.files.into_iter().collect();
            s.files.insert(active.id, active.handle.clone());
            s.epoch += 1;
            s.broken = None;
            shared.counters.size.set(s.queue.len() as i64);
        }
        shared.space.notify_waiters();
        shared.data.notify_waiters();
        let mut w = Writer {
            shared: shared.clone(),
            active,
            paths,
            next_seq: replayed.next_seq,
            appends: Appends::default(),
            backup_position: Position::default(),
            last_checkpoint: Instant::now(),
            last_sync: Instant::now(),
            dirty: false,
            broken: false,
            syncer: None,
            sync_inline: false,
            carried: Failed::default(),
        };
        w.checkpoint().map_err(dirs::io_err(
            "cannot write the checkpoint in",
            &layout.checkpoint_dir,
        ))?;
        Ok(w)
    }

    /// Serves requests until stopped.
    pub fn run(mut self, rx: Receiver<Request>) {
        let mut group = Vec::new();
        loop {
            match rx.recv_timeout(self.next_timer()) {
                Ok(r) => group.push(r),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            drain_into(&rx, &mut group, 0);
            if take_sync_failed(&mut group) {
                self.settle();
            }
            let stop = take_stop(&mut group);
            if !group.is_empty() {
                self.process(&mut group);
            }
            if let Some(reply) = stop {
                self.close();
                let _ = reply.send(());
                return;
            }
            self.timers();
        }
    }

    fn next_timer(&self) -> Duration {
        let cfg = &self.shared.config;
        let mut wait = cfg
            .checkpoint_interval
            .saturating_sub(self.last_checkpoint.elapsed());
        if self.dirty {
            wait = wait.min(cfg.fsync_interval.saturating_sub(self.last_sync.elapsed()));
        }
        if self.broken || self.shared.lock().low_space.is_some() {
            wait = wait.min(RETRY);
        }
        wait.max(Duration::from_millis(1))
    }

    fn timers(&mut self) {
        if self.broken {
            self.reopen();
            return;
        }
        if self.shared.lock().low_space.is_some() {
            self.space_ok(0);
        }
        if self.dirty && self.last_sync.elapsed() >= self.shared.config.fsync_interval {
            if let Err(e) = self.active.handle.sync_data() {
                self.fail_all(Vec::new(), &format!("fsync failed: {e}"));
                return;
            }
            self.dirty = false;
            self.last_sync = Instant::now();
        }
        if self.last_checkpoint.elapsed() >= self.shared.config.checkpoint_interval {
            if let Err(e) = self.checkpoint() {
                self.shared.counters.checkpoint_write_error.inc();
                tracing::error!(channel = %self.shared.name, error = %e, "Checkpoint failed; replay after a crash will be longer until one succeeds.");
                self.last_checkpoint = Instant::now();
            }
        }
    }

    fn process(&mut self, group: &mut Vec<Request>) {
        if self.syncer.as_ref().is_some_and(Syncer::failing) {
            // Append nothing after a failed fsync: reopen from disk first.
            self.settle();
        }
        if self.broken {
            self.reopen();
        }
        if self.broken {
            let reason = self.shared.lock().broken.clone().unwrap_or_default();
            self.reject(group.drain(..), &reason);
            return;
        }
        let put_bytes: usize = group
            .iter()
            .filter(|r| matches!(r, Request::Put { .. }))
            .map(request_bytes)
            .sum();
        if put_bytes > 0 && !self.space_ok(put_bytes as u64) {
            let reason = self.shared.lock().low_space.clone().unwrap_or_default();
            let (puts, rest): (Vec<_>, Vec<_>) = group
                .drain(..)
                .partition(|r| matches!(r, Request::Put { .. }));
            self.reject(puts.into_iter(), &reason);
            group.extend(rest);
        }
        let mut pending = Vec::with_capacity(group.len());
        let mut appends = std::mem::take(&mut self.appends);
        let mut result = Ok(());
        for req in group.drain(..) {
            let incoming = request_bytes(&req) as u64;
            if result.is_ok() && self.should_roll(appends.len as u64 + incoming) {
                result = self.flush(&mut appends).and_then(|_| self.roll());
            }
            match req {
                Request::Put { events, reply, .. } if result.is_err() => {
                    pending.push(Pending::Put {
                        ptrs: Vec::new(),
                        count: events.len(),
                        reply,
                    })
                }
                Request::Put {
                    mut record,
                    events,
                    reply,
                } => {
                    let base = self.active.len + appends.len as u64;
                    format::set_first_seq(&mut record, self.next_seq);
                    let ptrs: Vec<Ptr> = events
                        .iter()
                        .enumerate()
                        .map(|(i, (off, _))| Ptr {
                            seq: self.next_seq + i as u64,
                            file: self.active.id,
                            offset: (base + *off as u64) as u32,
                        })
                        .collect();
                    self.next_seq += events.len() as u64;
                    appends.push_record(record);
                    pending.push(Pending::Put {
                        count: ptrs.len(),
                        ptrs,
                        reply,
                    });
                }
                Request::Take { txn, epoch, reply } => {
                    let ranges = {
                        let s = self.shared.lock();
                        (s.epoch == epoch)
                            .then(|| s.queue.txn(txn))
                            .flatten()
                            .map(|p| format::seq_ranges(p.iter().map(|p| p.seq)))
                    };
                    match ranges {
                        Some(ranges) if result.is_ok() => {
                            appends.push_take(&ranges);
                            pending.push(Pending::Take { txn, reply });
                        }
                        Some(_) => pending.push(Pending::Take { txn, reply }),
                        None => {
                            let _ = reply.send(Err("the channel was reopened after an I/O error since this take began; its events will be delivered again".into()));
                        }
                    }
                }
                Request::Stop { .. } | Request::SyncFailed => {}
            }
        }
        if result.is_ok() {
            result = self.flush(&mut appends);
        }
        appends.recycle(&self.shared);
        self.appends = appends;
        match result {
            Ok(()) => self.commit(pending),
            Err(e) => self.fail_all(pending, &e.to_string()),
        }
    }

    /// Makes a written group durable and answers it: through the syncer with
    /// `fsyncPerTransaction` (every group, even one that wrote nothing, so that answers keep
    /// the order of the writes), in line otherwise.
    fn commit(&mut self, pending: Vec<Pending>) {
        if !self.shared.config.fsync_per_transaction {
            apply(&self.shared, pending);
            return;
        }
        let job = Job {
            file: self.active.id,
            handle: Arc::clone(&self.active.handle),
            pending,
        };
        let job = match self.syncer() {
            Some(syncer) => match syncer.submit(job) {
                Ok(()) => {
                    // The syncer owns the fsync of everything written so far.
                    self.dirty = false;
                    self.last_sync = Instant::now();
                    return;
                }
                Err(job) => {
                    // The thread is gone, and with it the groups it held: rebuild from disk.
                    let error = "the file channel's sync thread exited";
                    return self.fail_all(job.pending, error);
                }
            },
            None => job,
        };
        match self.sync_for_commit() {
            Ok(()) => apply(&self.shared, job.pending),
            Err(e) => self.fail_all(job.pending, &e.to_string()),
        }
    }

    /// The syncer, started if it is not running (`None` if no thread can be started: the
    /// writer then syncs in line).
    fn syncer(&mut self) -> Option<&Syncer> {
        if self.syncer.is_none() && !self.sync_inline {
            match Syncer::spawn(Arc::clone(&self.shared)) {
                Ok(syncer) => self.syncer = Some(syncer),
                Err(error) => {
                    self.sync_inline = true;
                    tracing::warn!(channel = %self.shared.name, %error, "Cannot start the file channel's sync thread; syncing in line.");
                }
            }
        }
        self.syncer.as_ref()
    }

    /// Waits until every group handed to the syncer is applied; returns those whose fsync
    /// failed (to be failed by the caller, which reopens the channel).
    fn barrier(&mut self) -> Failed {
        self.syncer
            .as_ref()
            .map_or_else(Failed::default, Syncer::barrier)
    }

    /// Waits for the syncer and fails what it could not sync; false if anything failed (the
    /// channel was then reopened).
    pub(super) fn settle(&mut self) -> bool {
        let failed = self.collect_failed();
        if failed.error.is_none() {
            return true;
        }
        self.fail(failed, Vec::new(), "");
        false
    }

    fn should_roll(&self, incoming: u64) -> bool {
        self.active.len > FILE_HEADER_LEN as u64
            && self.active.len + incoming > self.shared.config.max_file_size
    }

    /// Appends the group's records to the active file, in order, with one vectored write.
    fn flush(&mut self, appends: &mut Appends) -> io::Result<()> {
        if appends.len == 0 {
            return Ok(());
        }
        let result = self
            .active
            .handle
            .write_all_vectored_at(&appends.slices(), self.active.len);
        let written = appends.len as u64;
        appends.recycle(&self.shared);
        result?;
        self.active.len += written;
        self.dirty = true;
        Ok(())
    }

    fn sync_for_commit(&mut self) -> io::Result<()> {
        if self.dirty {
            self.active.handle.sync_data()?;
            self.dirty = false;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    /// Seals the active file (durably) and starts the next one.
    pub(super) fn roll(&mut self) -> io::Result<()> {
        // Let the syncer finish with the old file first: Linux reports a writeback error to
        // one fsync of a file only, so a failure this thread's fsync saw would otherwise let
        // the syncer's later fsync of the same file succeed over lost pages.
        let earlier = self.barrier();
        if let Some(error) = earlier.error.clone() {
            self.carried = earlier;
            return Err(io::Error::other(error));
        }
        if self.dirty {
            self.active.handle.sync_data()?;
            self.dirty = false;
        }
        let id = self.active.id + 1;
        let (active, path) = create_file(&self.shared, id).map_err(io::Error::other)?;
        self.shared
            .lock()
            .files
            .insert(active.id, active.handle.clone());
        self.paths.insert(id, path);
        self.active = active;
        Ok(())
    }

    fn reject(&self, group: impl Iterator<Item = Request>, reason: &str) {
        for req in group {
            match req {
                Request::Put { events, reply, .. } => {
                    self.shared.lock().queue.release(events.len());
                    let _ = reply.send(Err(reason.to_string()));
                }
                Request::Take { reply, .. } => {
                    let _ = reply.send(Err(reason.to_string()));
                }
                Request::Stop { reply } => {
                    let _ = reply.send(());
                }
                Request::SyncFailed => {}
            }
        }
    }

    /// An append or fsync failed: nothing of the group is acknowledged, and the channel is
    /// rebuilt from disk.
    fn fail_all(&mut self, pending: Vec<Pending>, error: &str) {
        let earlier = self.collect_failed();
        self.fail(earlier, pending, error);
    }

    /// The failed commits a roll carried, then those the syncer failed since, in write order.
    fn collect_failed(&mut self) -> Failed {
        let mut failed = std::mem::take(&mut self.carried);
        let later = self.barrier();
        failed.error = failed.error.or(later.error);
        failed.pending.extend(later.pending);
        failed
    }

    /// Fails the syncer's failed commits and then `pending` (written after them), reopening
    /// the channel before answering.
    fn fail(&mut self, earlier: Failed, mut pending: Vec<Pending>, error: &str) {
        let error = earlier.error.as_deref().unwrap_or(error).to_string();
        if !earlier.pending.is_empty() {
            pending.splice(0..0, earlier.pending);
        }
        let reason = format!(
            "data file write failed ({error}); the channel is reopening from what is on disk"
        );
        tracing::error!(channel = %self.shared.name, %error, "Data file write or fsync failed; refusing puts and replaying from disk.");
        {
            let mut s = self.shared.lock();
            s.broken = Some(reason.clone());
            for p in &pending {
                if let Pending::Put { count, .. } = p {
                    s.queue.release(*count);
                }
            }
            self.shared.counters.unhealthy.set(1);
        }
        self.broken = true;
        // Reopen before answering, so that a caller who sees the error sees the rebuilt state.
        self.reopen();
        for p in pending {
            match p {
                Pending::Put { reply, .. } => {
                    self.shared.counters.put_error.inc();
                    let _ = reply.send(Err(reason.clone()));
                }
                Pending::Take { reply, .. } => {
                    self.shared.counters.take_error.inc();
                    let _ = reply.send(Err(reason.clone()));
                }
            }
        }
        self.shared.space.notify_waiters();
    }

    fn reopen(&mut self) {
        match Writer::open(&self.shared) {
            Ok(fresh) => {
                tracing::warn!(channel = %self.shared.name, "File channel reopened after an I/O error; events not durably taken will be delivered again.");
                self.shared.counters.unhealthy.set(0);
                *self = fresh;
            }
            Err(error) => {
                tracing::error!(channel = %self.shared.name, %error, "File channel cannot reopen yet; retrying.");
                self.broken = true;
            }
        }
    }
}

/// Applies durable commits to the queue, in order, and answers them.
pub(super) fn apply(shared: &Shared, pending: Vec<Pending>) {
    let (mut puts, mut takes) = (false, false);
    {
        let mut s = shared.lock();
        for p in &pending {
            match p {
                Pending::Put { ptrs, .. } => {
                    s.queue.push_committed(ptrs);
                    s.queue.release(ptrs.len());
                    puts = true;
                }
                Pending::Take { txn, .. } => {
                    s.queue.commit(*txn);
                    takes = true;
                }
            }
        }
        shared.counters.size.set(s.queue.len() as i64);
        let held = s.queue.held() as i64;
        if held > shared.counters.peak_held.get() {
            shared.counters.peak_held.set(held);
        }
    }
    if puts {
        shared.data.notify_waiters();
    }
    if takes {
        shared.space.notify_waiters();
    }
    for p in pending {
        let reply = match p {
            Pending::Put { reply, .. } | Pending::Take { reply, .. } => reply,
        };
        let _ = reply.send(Ok(()));
    }
}

/// What one group appends to the active file, in order: the put records as their putters
/// encoded them (written from their own buffers, then handed back to the pool) and the take
/// records, encoded here into one buffer.
#[derive(Default)]
struct Appends {
    pieces: Vec<Piece>,
    takes: Vec<u8>,
    /// Bytes of all pieces.
    len: usize,
}

enum Piece {
    Record(Vec<u8>),
    /// `takes[start..end]`: consecutive take records.
    Takes(usize, usize),
}

impl Appends {
    fn push_record(&mut self, record: Vec<u8>) {
        self.len += record.len();
        self.pieces.push(Piece::Record(record));
    }

    fn push_take(&mut self, ranges: &[(u64, u32)]) {
        let start = self.takes.len();
        format::encode_take(ranges, &mut self.takes);
        let end = self.takes.len();
        self.len += end - start;
        match self.pieces.last_mut() {
            Some(Piece::Takes(_, last_end)) if *last_end == start => *last_end = end,
            _ => self.pieces.push(Piece::Takes(start, end)),
        }
    }

    fn slices(&self) -> Vec<&[u8]> {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Record(r) => &r[..],
                Piece::Takes(start, end) => &self.takes[*start..*end],
            })
            .collect()
    }

    /// Empties the group, handing the put records' buffers back for reuse.
    fn recycle(&mut self, shared: &Shared) {
        for piece in self.pieces.drain(..) {
            if let Piece::Record(r) = piece {
                shared.records.give_back(r);
            }
        }
        self.takes.clear();
        self.len = 0;
    }
}

/// Moves every waiting request into `group` (up to [`MAX_GROUP_BYTES`]); returns the group's bytes.
fn drain_into(rx: &Receiver<Request>, group: &mut Vec<Request>, mut bytes: usize) -> usize {
    if bytes == 0 {
        bytes = group.iter().map(request_bytes).sum();
    }
    while bytes < MAX_GROUP_BYTES {
        match rx.try_recv() {
            Ok(r) => {
                bytes += request_bytes(&r);
                group.push(r);
            }
            Err(_) => break,
        }
    }
    bytes
}

/// Creates data file `id` with its header, durably.
pub(super) fn create_file(shared: &Shared, id: u32) -> Result<(Active, PathBuf), DirError> {
    let fs = shared.fs.as_ref();
    let dir = dirs::data_dir_for(&shared.layout, id);
    let path = dir.join(dirs::log_name(id));
    let handle = fs
        .create_new(&path)
        .map_err(dirs::io_err("cannot create", &path))?;
    handle
        .write_all_at(&format::encode_file_header(id), 0)
        .and_then(|_| handle.sync_data())
        .and_then(|_| fs.sync_dir(dir))
        .map_err(dirs::io_err("cannot initialise", &path))?;
    Ok((
        Active {
            id,
            handle: Arc::clone(&handle),
            len: FILE_HEADER_LEN as u64,
        },
        path,
    ))
}

/// Bytes a request adds to the log.
pub(super) fn request_bytes(r: &Request) -> usize {
    match r {
        Request::Put { record, .. } => record.len(),
        Request::Take { .. } => 64,
        Request::Stop { .. } | Request::SyncFailed => 0,
    }
}

/// Removes the syncer's wake-ups from a group; true if there was one.
fn take_sync_failed(group: &mut Vec<Request>) -> bool {
    let before = group.len();
    group.retain(|r| !matches!(r, Request::SyncFailed));
    group.len() != before
}

/// Removes a stop request from a group, keeping the rest in order.
pub(super) fn take_stop(group: &mut Vec<Request>) -> Option<tokio::sync::oneshot::Sender<()>> {
    let at = group
        .iter()
        .position(|r| matches!(r, Request::Stop { .. }))?;
    match group.remove(at) {
        Request::Stop { reply } => Some(reply),
        _ => None,
    }
}
