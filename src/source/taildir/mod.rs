//! `TAILDIR` source (`org.apache.flume.source.taildir.TaildirSource`): follows log files.
//!
//! Each file group is a directory and a file-name regex (matching the whole name). Files are
//! followed by inode: a rename-and-create rotation finishes the old file through its open
//! descriptor and starts the new one at 0; a rotated file whose new name still matches is never
//! read again (its position goes with its inode); a file that shrinks below its position was
//! truncated (copytruncate) and is read again from 0; files no longer listed are dropped from
//! the position file once read to their end. Directory changes arrive by inotify; a poll every
//! `maxBackoffSleep` is the fallback (and the only mechanism when inotify is unavailable).
//!
//! Lines end at `\n` (a trailing `\r` is removed). A last line without terminator waits until
//! it is completed, or until the file has been idle for `idleTimeout`, then it is an event.
//! With `multiline.pattern`, continuation lines join the event before them (`match = after`)
//! or after them (`before`); a pending event is emitted after `multiline.timeout`.
//!
//! Delivery: a file's position advances only when its batch is committed to the channel, and
//! the position file is written every `writePosInterval` (0: after every commit) and on stop.
//! After a kill -9, lines committed since the last position write are read again: duplicates
//! are bounded by `writePosInterval` worth of input; a clean stop leaves none.
//!
//! Divergences from Flume: files are followed by inode, where Flume reopens a known inode at
//! position 0 when its path changes, so a rotated file that still matches the pattern is
//! shipped twice by Flume and once by Flumen; a position-file entry whose position is beyond
//! the current size of its inode is taken as a reused inode and the file is read from 0; file
//! reads run on the runtime's worker (page-cache reads are microseconds).

pub mod config;
pub mod position;
pub mod tail;

use std::collections::{BTreeMap, HashMap};
use std::future::{poll_fn, Future};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Source, SourceContext, SourceError};
use crate::event::{Event, HeaderString};
pub use config::TaildirConfig;
use position::PositionEntry;
use tail::TailFile;

/// The taildir source.
pub struct TaildirSource {
    config: TaildirConfig,
}

impl TaildirSource {
    /// A source with `config`.
    pub fn new(config: TaildirConfig) -> Self {
        TaildirSource { config }
    }
}

/// A file seen in a listing.
struct Seen {
    path: std::path::PathBuf,
    group: usize,
    size: u64,
    mtime: i64,
}

struct State {
    config: TaildirConfig,
    tails: HashMap<u64, TailFile>,
    /// Positions from the position file not yet matched to a listed file.
    saved: BTreeMap<u64, PositionEntry>,
    positions_dirty: bool,
    last_position_write: Instant,
}

impl State {
    /// Lists every group's directory and reconciles the followed files with it.
    fn refresh(&mut self, source: &str) {
        let mut seen: HashMap<u64, Seen> = HashMap::new();
        for (gi, g) in self.config.groups.iter().enumerate() {
            let entries = match std::fs::read_dir(&g.dir) {
                Ok(e) => e,
                Err(error) => {
                    tracing::debug!(%source, dir = %g.dir.display(), %error, "Cannot list a file group's directory.");
                    continue;
                }
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                if !g.pattern.is_match(&name.to_string_lossy()) {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                seen.entry(meta.ino()).or_insert(Seen {
                    path: entry.path(),
                    group: gi,
                    size: meta.len(),
                    mtime: meta.mtime(),
                });
            }
        }
        for (inode, tail) in self.tails.iter_mut() {
            match seen.remove(inode) {
                Some(s) => {
                    if s.path != tail.path {
                        tracing::info!(%source, from = %tail.path.display(), to = %s.path.display(), "Followed file renamed; continuing by inode.");
                        tail.path = s.path;
                        self.positions_dirty = true;
                    }
                    tail.gone = false;
                    if tail.observe(s.size, s.mtime) {
                        tracing::warn!(%source, file = %tail.path.display(), "File shrank below its position (copytruncate): reading it again from the start.");
                        self.positions_dirty = true;
                    }
                    if !tail.is_open() && s.size > tail.pos {
                        if let Err(error) = tail.reopen() {
                            tracing::debug!(%source, file = %tail.path.display(), %error, "Cannot reopen a file.");
                        }
                    }
                }
                None => tail.gone = true,
            }
        }
        for (inode, s) in seen {
            self.start_following(source, inode, s);
        }
    }

    fn start_following(&mut self, source: &str, inode: u64, s: Seen) {
        let pos = match self.saved.remove(&inode) {
            Some(entry) if entry.pos <= s.size => {
                if entry.file != s.path.to_string_lossy() {
                    tracing::info!(%source, file = %s.path.display(), recorded = %entry.file, "Position matched by inode under a new name.");
                }
                entry.pos
            }
            Some(entry) => {
                tracing::warn!(%source, file = %s.path.display(), recorded_pos = entry.pos, size = s.size, "Recorded position is past the end of this inode (a reused inode?): reading from the start.");
                0
            }
            None if self.config.skip_to_end => s.size,
            None => 0,
        };
        match TailFile::open(&s.path, inode, s.group, pos) {
            Ok(mut tail) => {
                tail.mtime = s.mtime;
                tracing::info!(%source, file = %s.path.display(), inode, pos, "Following file.");
                self.tails.insert(inode, tail);
                self.positions_dirty = true;
            }
            Err(error) => {
                tracing::debug!(%source, file = %s.path.display(), %error, "Cannot open a matching file (yet).");
            }
        }
    }

    fn entries(&self) -> Vec<PositionEntry> {
        let mut v: Vec<PositionEntry> = self
            .tails
            .values()
            .map(|t| PositionEntry {
                inode: t.inode,
                pos: t.pos,
                file: t.path.to_string_lossy().into_owned(),
            })
            .collect();
        v.sort_by(|a, b| a.file.cmp(&b.file));
        v
    }

    fn write_positions(&mut self, source: &str) {
        match position::write(&self.config.position_file, &self.entries()) {
            Ok(()) => {
                self.positions_dirty = false;
                self.last_position_write = Instant::now();
            }
            Err(error) => {
                tracing::error!(%source, file = %self.config.position_file.display(), %error, "Cannot write the position file; a restart would read committed lines again.");
                self.last_position_write = Instant::now();
            }
        }
    }

    /// Inodes to read, oldest modification first (rotated files before their successors).
    fn order(&self) -> Vec<u64> {
        let mut v: Vec<(i64, u64)> = self.tails.values().map(|t| (t.mtime, t.inode)).collect();
        v.sort_unstable();
        v.into_iter().map(|(_, i)| i).collect()
    }

    /// Drops files no longer listed that are read to their end; closes idle ones.
    fn retire(&mut self, source: &str) {
        let idle = self.config.idle_timeout;
        let done: Vec<u64> = self
            .tails
            .values()
            .filter(|t| t.gone && !t.has_unread() && !t.has_partial())
            .map(|t| t.inode)
            .collect();
        for inode in done {
            if let Some(t) = self.tails.remove(&inode) {
                tracing::info!(%source, file = %t.path.display(), pos = t.pos, "Finished a file that left the file group (rotated away or deleted).");
                self.positions_dirty = true;
            }
        }
        for t in self.tails.values_mut() {
            if t.is_open()
                && !t.gone
                && !t.has_partial()
                && !t.has_unread()
                && t.last_growth.elapsed() >= idle
            {
                tracing::debug!(%source, file = %t.path.display(), "Closing an idle file.");
                t.close();
            }
        }
    }
}

#[async_trait]
impl Source for TaildirSource {
    fn type_name(&self) -> &'static str {
        "TAILDIR"
    }

    fn describe(&self) -> String {
        let c = &self.config;
        let groups: Vec<String> = c
            .groups
            .iter()
            .map(|g| format!("{}={}", g.name, g.spec))
            .collect();
        format!(
            "filegroups=[{}] positionFile={} batchSize={} writePosInterval={}ms idleTimeout={}ms skipToEnd={} multiline={}",
            groups.join(" "),
            c.position_file.display(),
            c.batch_size,
            c.write_pos_interval.as_millis(),
            c.idle_timeout.as_millis(),
            c.skip_to_end,
            c.multiline.is_some()
        )
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let saved = position::read(&self.config.position_file).map_err(SourceError::Config)?;
        let wake = Arc::new(Notify::new());
        let _watcher = watch(&self.config, wake.clone(), &ctx.name);
        let mut state = State {
            config: self.config,
            tails: HashMap::new(),
            saved,
            positions_dirty: false,
            last_position_write: Instant::now(),
        };
        let mut backoff = Duration::ZERO;
        loop {
            if ctx.shutdown.is_cancelled() {
                break;
            }
            state.refresh(&ctx.name);
            let progressed = match read_all(&mut state, &ctx).await {
                Ok(p) => p,
                Err(()) => break,
            };
            state.retire(&ctx.name);
            let interval = state.config.write_pos_interval;
            if state.positions_dirty && state.last_position_write.elapsed() >= interval {
                state.write_positions(&ctx.name);
            }
            if progressed {
                backoff = Duration::ZERO;
                continue;
            }
            backoff = (backoff + state.config.backoff_increment).min(state.config.max_backoff);
            let wait = next_wait(&state, backoff);
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = ctx.shutdown.cancelled() => {}
            }
        }
        state.write_positions(&ctx.name);
        Ok(())
    }
}

/// How long to sleep when nothing was read: the backoff, shortened to the next timer (a
/// partial line's idle flush, a pending multi-line event, a due position write).
fn next_wait(state: &State, backoff: Duration) -> Duration {
    let mut wait = backoff;
    for t in state.tails.values() {
        if t.has_partial() {
            let idle_due = state
                .config
                .idle_timeout
                .saturating_sub(t.last_growth.elapsed());
            wait = wait.min(idle_due);
            if let Some(m) = &state.config.multiline {
                wait = wait.min(m.timeout);
            }
        }
    }
    if state.positions_dirty {
        wait = wait.min(
            state
                .config
                .write_pos_interval
                .saturating_sub(state.last_position_write.elapsed()),
        );
    }
    wait.max(Duration::from_millis(5))
}

/// Reads every file with something to read, batch by batch; `Err` when the source stops.
///
/// While a batch's put is being committed (on a file channel: written and fsynced by the
/// channel's writer), the next batch of the same file is read and split: the source's own work
/// overlaps the channel's instead of waiting for it. Only the read position moves ahead; the
/// committed position still advances in order, after each put, and a failed put rewinds to it,
/// dropping the batch read ahead (it is read again).
async fn read_all(state: &mut State, ctx: &SourceContext) -> Result<bool, ()> {
    let mut progressed = false;
    for inode in state.order() {
        let mut batches = 0u64;
        let mut ahead: Option<io::Result<tail::Batch>> = None;
        while batches < state.config.max_batch_count {
            let Some(result) = ahead.take().or_else(|| read_next(state, inode)) else {
                break;
            };
            let Some(tail) = state.tails.get_mut(&inode) else {
                break;
            };
            let batch = match result {
                Ok(b) => b,
                Err(error) => {
                    ctx.counters.event_read_fail.inc();
                    tracing::warn!(source = %ctx.name, file = %tail.path.display(), %error, "Read failed; retrying later.");
                    tail.rewind();
                    break;
                }
            };
            if batch.lines.is_empty() {
                if batch.end != tail.pos {
                    tail.commit(batch.end);
                }
                break;
            }
            let events = to_events(state, inode, batch.lines);
            let n = events.len() as u64;
            ctx.counters.append_batch_received.inc();
            ctx.counters.event_received.add(n);
            let mut put = pin!(ctx.processor.process_with_backpressure(events, ctx));
            // One poll hands the batch to the channel; then read ahead while it commits.
            let first = poll_fn(|cx| Poll::Ready(put.as_mut().poll(cx))).await;
            if first.is_pending() && batches + 1 < state.config.max_batch_count {
                ahead = read_next(state, inode);
            }
            let put_result = match first {
                Poll::Ready(r) => r,
                Poll::Pending => put.await,
            };
            let Some(tail) = state.tails.get_mut(&inode) else {
                break;
            };
            if put_result.is_err() {
                tail.rewind();
                return Err(());
            }
            ctx.counters.append_batch_accepted.inc();
            ctx.counters.event_accepted.add(n);
            tail.commit(batch.end);
            state.positions_dirty = true;
            if state.config.write_pos_interval.is_zero() {
                state.write_positions(&ctx.name);
            }
            progressed = true;
            batches += 1;
        }
        if ahead.is_some() {
            // A batch read ahead and never put must be read again: back to the committed
            // position. (The loop reads ahead only when it will go round again, so this is a
            // safeguard.)
            if let Some(tail) = state.tails.get_mut(&inode) {
                tail.rewind();
            }
        }
    }
    Ok(progressed)
}

/// Reads the next batch of `inode`'s file; `None` if it is no longer tailed.
fn read_next(state: &mut State, inode: u64) -> Option<io::Result<tail::Batch>> {
    let config = &state.config;
    let tail = state.tails.get_mut(&inode)?;
    let flush = tail.last_growth.elapsed() >= config.idle_timeout
        || tail.gone
        || config
            .multiline
            .as_ref()
            .is_some_and(|m| tail.pending_expired(m.timeout));
    Some(tail.read_batch(config.batch_size, config.multiline.as_ref(), flush))
}

fn to_events(state: &State, inode: u64, lines: Vec<tail::Line>) -> Vec<Event> {
    let Some(tail) = state.tails.get(&inode) else {
        return Vec::new();
    };
    let group = &state.config.groups[tail.group];
    let file: Option<HeaderString> = state
        .config
        .file_header
        .as_ref()
        .map(|_| HeaderString::from(tail.path.to_string_lossy().as_ref()));
    let plain = group.headers.is_empty() && file.is_none() && !state.config.byte_offset_header;
    lines
        .into_iter()
        .map(|line| {
            if plain {
                return Event::new(line.body);
            }
            let mut headers = group.headers.clone();
            if let (Some(key), Some(path)) = (&state.config.file_header, &file) {
                headers.insert(key.clone(), path.clone());
            }
            if state.config.byte_offset_header {
                headers.insert(
                    HeaderString::from(config::BYTE_OFFSET_HEADER),
                    HeaderString::from(line.offset.to_string()),
                );
            }
            Event::with_headers(headers, line.body)
        })
        .collect()
}

/// Watches the groups' directories; every change wakes the source. `None` (polling only)
/// when inotify is unavailable.
fn watch(
    config: &TaildirConfig,
    wake: Arc<Notify>,
    source: &str,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let handler = move |_event: notify::Result<notify::Event>| wake.notify_one();
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(error) => {
            tracing::warn!(%source, %error, "File events unavailable; polling every maxBackoffSleep.");
            return None;
        }
    };
    for g in &config.groups {
        if let Err(error) = watcher.watch(&g.dir, RecursiveMode::NonRecursive) {
            tracing::warn!(%source, dir = %g.dir.display(), %error, "Cannot watch a directory; polling it every maxBackoffSleep.");
        }
    }
    Some(watcher)
}
