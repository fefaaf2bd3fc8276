//! The log writer: one thread that owns the active data file, commits by group, checkpoints,
//! deletes spent files, and reopens the channel after an I/O failure.
//!
//! Putters and committing takers send it requests. It takes every request waiting, appends
//! their records with one write, makes them durable with one `fdatasync`, and only then
//! applies them to the queue and answers: concurrent commits share an fsync, and nothing is
//! acknowledged before it is on disk. A failed write or fsync is never retried in place (after
//! a failed fsync the kernel may have dropped the dirty pages): every request of the group
//! fails, the channel stops accepting, and the writer rebuilds the state from what is really on
//! disk by a replay, then goes on in a new data file.

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

enum Pending {
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
    buf: Vec<u8>,
    /// Where the backup checkpoint (if any) stands: files it still needs are kept.
    pub(super) backup_position: Position,
    pub(super) last_checkpoint: Instant,
    pub(super) last_sync: Instant,
    pub(super) dirty: bool,
    broken: bool,
    /// Sizes of the last two commit groups (is there concurrency to wait for?).
    recent_groups: [usize; 2],
    /// A moving average of commit fsync durations.
    fsync_ewma: Duration,
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
            buf: Vec::new(),
            backup_position: Position::default(),
            last_checkpoint: Instant::now(),
            last_sync: Instant::now(),
            dirty: false,
            broken: false,
            recent_groups: [0, 0],
            fsync_ewma: Duration::from_millis(1),
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
            let bytes = drain_into(&rx, &mut group, 0);
            if group.len() == 1 && self.recent_groups.iter().sum::<usize>() >= 3 {
                // Several committers are active but only one is here: give the others a
                // moment (a fraction of an fsync) to share this group's fsync rather than
                // waiting a whole one behind it.
                if let Ok(r) = rx.recv_timeout(self.linger()) {
                    group.push(r);
                    drain_into(&rx, &mut group, bytes);
                }
            }
            self.recent_groups = [self.recent_groups[1], group.len()];
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

    /// How long a lone request waits for company: an eighth of a recent fsync, at most 1 ms.
    fn linger(&self) -> Duration {
        (self.fsync_ewma / 8).min(Duration::from_millis(1))
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
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut result = Ok(());
        for req in group.drain(..) {
            let incoming = request_bytes(&req) as u64;
            if result.is_ok() && self.should_roll(buf.len() as u64 + incoming) {
                result = self.flush(&mut buf).and_then(|_| self.roll());
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
                    let base = self.active.len + buf.len() as u64;
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
                    buf.extend_from_slice(&record);
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
                            format::encode_take(&ranges, &mut buf);
                            pending.push(Pending::Take { txn, reply });
                        }
                        Some(_) => pending.push(Pending::Take { txn, reply }),
                        None => {
                            let _ = reply.send(Err("the channel was reopened after an I/O error since this take began; its events will be delivered again".into()));
                        }
                    }
                }
                Request::Stop { .. } => {}
            }
        }
        if result.is_ok() {
            result = self.flush(&mut buf).and_then(|_| self.sync_for_commit());
        }
        self.buf = buf;
        match result {
            Ok(()) => self.apply(pending),
            Err(e) => self.fail_all(pending, &e.to_string()),
        }
    }

    fn should_roll(&self, incoming: u64) -> bool {
        self.active.len > FILE_HEADER_LEN as u64
            && self.active.len + incoming > self.shared.config.max_file_size
    }

    /// Appends `buf` to the active file.
    fn flush(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.active.handle.write_all_at(buf, self.active.len)?;
        self.active.len += buf.len() as u64;
        self.dirty = true;
        buf.clear();
        Ok(())
    }

    fn sync_for_commit(&mut self) -> io::Result<()> {
        if self.shared.config.fsync_per_transaction && self.dirty {
            let started = Instant::now();
            self.active.handle.sync_data()?;
            self.fsync_ewma = (self.fsync_ewma * 7 + started.elapsed()) / 8;
            self.dirty = false;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    /// Seals the active file (durably) and starts the next one.
    pub(super) fn roll(&mut self) -> io::Result<()> {
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

    fn apply(&mut self, pending: Vec<Pending>) {
        let (mut puts, mut takes) = (false, false);
        {
            let mut s = self.shared.lock();
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
            self.shared.counters.size.set(s.queue.len() as i64);
            let held = s.queue.held() as i64;
            if held > self.shared.counters.peak_held.get() {
                self.shared.counters.peak_held.set(held);
            }
        }
        if puts {
            self.shared.data.notify_waiters();
        }
        if takes {
            self.shared.space.notify_waiters();
        }
        for p in pending {
            let reply = match p {
                Pending::Put { reply, .. } | Pending::Take { reply, .. } => reply,
            };
            let _ = reply.send(Ok(()));
        }
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
            }
        }
    }

    /// An append or fsync failed: nothing of the group is acknowledged, and the channel is
    /// rebuilt from disk.
    fn fail_all(&mut self, pending: Vec<Pending>, error: &str) {
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
        Request::Stop { .. } => 0,
    }
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
