//! Replay: rebuilds the queue from the newest good checkpoint and the log written after it.
//!
//! Damage is handled by where it is. A torn or corrupt tail of the newest data file is what a
//! crash during a write leaves: it is cut at the end of the last good record (with a warning),
//! which drops only a put or take that was never acknowledged. Damage anywhere else is
//! reported with the file and offset; replay skips to the next good record (found by its sync
//! marker and header checksum) and a damaged event costs that event alone.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::checkpoint::{self, CheckpointError, Position};
use super::dirs::{DirError, Inventory, Layout, LogFileInfo};
use super::format::{
    self, read_record_header, EventProblem, RecordHeader, RecordKind, EVENT_PREFIX_LEN,
    FILE_HEADER_LEN, RECORD_HEADER_LEN,
};
use super::fs::{FileHandle, Fs};
use super::queue::{Ptr, Queue};

/// How much of a data file replay reads at a time.
const CHUNK: usize = 8 << 20;

/// The state replay rebuilt.
pub struct Replayed {
    /// Queue of live pointers, in sequence order.
    pub queue: Queue,
    /// Next sequence number.
    pub next_seq: u64,
    /// Data files that exist, by id, opened for reading.
    pub files: Vec<(u32, Arc<dyn FileHandle>)>,
    /// Highest data file id seen.
    pub max_file_id: Option<u32>,
    /// What happened, for the log.
    pub report: ReplayReport,
}

/// A summary of a replay.
#[derive(Debug, Default)]
pub struct ReplayReport {
    /// Events restored.
    pub events: usize,
    /// Records read after the checkpoint.
    pub records: u64,
    /// Whether a checkpoint was used, and which.
    pub checkpoint: Option<String>,
    /// Damage found (each names a file and offset).
    pub damage: Vec<String>,
    /// A torn tail that was cut: (file, from offset, bytes).
    pub truncated: Option<(String, u64, u64)>,
    /// How long it took.
    pub elapsed: Duration,
}

struct Live {
    ptrs: Vec<Ptr>,
    removed: Vec<bool>,
    /// Whether `ptrs` is still sorted by sequence (puts after the checkpoint append in order).
    sorted: bool,
}

impl Live {
    fn add(&mut self, p: Ptr) {
        if self.ptrs.last().is_some_and(|l| l.seq >= p.seq) {
            self.sorted = false;
        }
        self.ptrs.push(p);
        self.removed.push(false);
    }

    fn remove_range(&mut self, first: u64, len: u32) {
        if !self.sorted {
            self.sort();
        }
        let mut at = self.ptrs.partition_point(|p| p.seq < first);
        let end = first.saturating_add(len as u64);
        while at < self.ptrs.len() && self.ptrs[at].seq < end {
            self.removed[at] = true;
            at += 1;
        }
    }

    /// Drops removed pointers and sorts the rest by sequence, in place (no second copy of a
    /// queue that may hold millions of pointers).
    fn sort(&mut self) {
        self.compact();
        self.ptrs.sort_unstable_by_key(|p| p.seq);
        self.ptrs.dedup_by_key(|p| p.seq);
        self.removed.clear();
        self.removed.resize(self.ptrs.len(), false);
        self.sorted = true;
    }

    fn compact(&mut self) {
        if self.removed.iter().any(|r| *r) {
            let mut i = 0;
            let removed = &self.removed;
            self.ptrs.retain(|_| {
                let keep = !removed[i];
                i += 1;
                keep
            });
        }
        self.removed.clear();
        self.removed.resize(self.ptrs.len(), false);
    }
}

/// Replays the channel's directories. `inv` must come from [`super::dirs::inventory`].
pub fn replay(fs: &dyn Fs, layout: &Layout, inv: &Inventory) -> Result<Replayed, DirError> {
    let started = Instant::now();
    let mut report = ReplayReport::default();
    let (start, mut next_seq, ckpt_ptrs) = load_checkpoint(fs, layout, &mut report);
    let mut live = Live {
        removed: vec![false; ckpt_ptrs.len()],
        ptrs: ckpt_ptrs,
        sorted: false,
    };
    live.sort();
    let newest = inv.logs.keys().next_back().copied();
    let mut files = Vec::new();
    for info in inv.logs.values() {
        let handle = fs
            .open_read(&info.path)
            .map_err(super::dirs::io_err("cannot open", &info.path))?;
        if info.id >= start.file {
            let from = if info.id == start.file {
                start.offset.max(FILE_HEADER_LEN as u64)
            } else {
                FILE_HEADER_LEN as u64
            };
            let is_newest = Some(info.id) == newest;
            scan_file(
                fs,
                info,
                handle.as_ref(),
                from,
                is_newest,
                &mut live,
                &mut next_seq,
                &mut report,
            )?;
        }
        files.push((info.id, handle));
    }
    if !live.sorted {
        live.sort();
    }
    let known: std::collections::BTreeSet<u32> = inv.logs.keys().copied().collect();
    live.compact();
    let before = live.ptrs.len();
    live.ptrs.retain(|p| known.contains(&p.file));
    let missing = before - live.ptrs.len();
    // Reuses the vector's allocation.
    let queue = VecDeque::from(std::mem::take(&mut live.ptrs));
    if missing > 0 {
        report.damage.push(format!(
            "{missing} events point into data files that no longer exist; they are lost"
        ));
    }
    report.events = queue.len();
    report.elapsed = started.elapsed();
    Ok(Replayed {
        queue: Queue::from_sorted(queue),
        next_seq,
        files,
        max_file_id: newest,
        report,
    })
}

fn load_checkpoint(
    fs: &dyn Fs,
    layout: &Layout,
    report: &mut ReplayReport,
) -> (Position, u64, Vec<Ptr>) {
    let candidates = std::iter::once(&layout.checkpoint_dir).chain(layout.backup_dir.as_ref());
    for dir in candidates {
        match checkpoint::read(fs, dir) {
            Ok(c) => {
                report.checkpoint = Some(dir.join(checkpoint::CHECKPOINT_FILE).display().to_string());
                return (c.position, c.next_seq, c.ptrs);
            }
            Err(CheckpointError::Missing) => {}
            Err(e) => report.damage.push(format!(
                "{}: {e}; falling back to an older checkpoint or a full replay (events taken before it may be delivered again)",
                dir.join(checkpoint::CHECKPOINT_FILE).display()
            )),
        }
    }
    (Position::default(), 0, Vec::new())
}

/// Reads the records of one data file from `from`.
#[allow(clippy::too_many_arguments)]
fn scan_file(
    fs: &dyn Fs,
    info: &LogFileInfo,
    f: &dyn FileHandle,
    from: u64,
    is_newest: bool,
    live: &mut Live,
    next_seq: &mut u64,
    report: &mut ReplayReport,
) -> Result<(), DirError> {
    let name = info.path.display().to_string();
    let len = f
        .size()
        .map_err(super::dirs::io_err("cannot stat", &info.path))?;
    let mut reader = Reader::new(f, len);
    let mut at = from;
    let mut good_end = from;
    while at < len {
        let header = reader
            .bytes(at, RECORD_HEADER_LEN)
            .map_err(super::dirs::io_err("cannot read", &info.path))?
            .and_then(|b| read_record_header(&b));
        let Some(header) = header else {
            // Not a record boundary: find the next good record.
            match resync(&mut reader, at + 1, len)
                .map_err(super::dirs::io_err("cannot read", &info.path))?
            {
                Some(next) => {
                    report.damage.push(format!(
                        "{name}: {} damaged bytes at offset {at} skipped (events in them are lost)",
                        next - at
                    ));
                    at = next;
                    continue;
                }
                None => break,
            }
        };
        let end = at + (RECORD_HEADER_LEN as u64) + header.payload_len as u64;
        if end > len {
            break;
        }
        let payload = reader
            .bytes(at + RECORD_HEADER_LEN as u64, header.payload_len as usize)
            .map_err(super::dirs::io_err("cannot read", &info.path))?
            .unwrap_or_default();
        // A damaged final record of the newest file is a torn write: it was never
        // acknowledged, so it is cut below and none of it is applied.
        let tail = is_newest && end == len;
        match apply(info.id, at, &header, &payload, tail, live, next_seq) {
            Ok(()) => {}
            Err(_) if tail => break,
            Err(bad) => report
                .damage
                .push(format!("{name}: record at offset {at}: {bad}")),
        }
        report.records += 1;
        at = end;
        good_end = end;
    }
    if good_end < len {
        if is_newest {
            // Proven ours by its header (see dirs): cutting the torn tail cannot touch another
            // program's data.
            let w = fs
                .open_rw(&info.path)
                .map_err(super::dirs::io_err("cannot open", &info.path))?;
            w.set_len(good_end)
                .and_then(|_| w.sync_data())
                .map_err(super::dirs::io_err("cannot truncate", &info.path))?;
            report.truncated = Some((name, good_end, len - good_end));
        } else {
            report.damage.push(format!(
                "{name}: {} damaged bytes at the end from offset {good_end} (events in them are lost)",
                len - good_end
            ));
        }
    }
    Ok(())
}

/// Applies one record; an error describes damage in it (the good parts are applied).
fn apply(
    file: u32,
    at: u64,
    header: &RecordHeader,
    payload: &[u8],
    tail: bool,
    live: &mut Live,
    next_seq: &mut u64,
) -> Result<(), String> {
    match header.kind {
        RecordKind::Put => {
            let mut off = 0usize;
            let mut bad = Vec::new();
            let mut ptrs = Vec::with_capacity(header.count as usize);
            for i in 0..header.count as u64 {
                let event_at = at + RECORD_HEADER_LEN as u64 + off as u64;
                match format::check_event(&payload[off.min(payload.len())..]) {
                    Ok(used) => {
                        ptrs.push(Ptr {
                            seq: header.first_seq + i,
                            file,
                            offset: event_at as u32,
                        });
                        off += used;
                    }
                    Err(problem) => {
                        bad.push(format!("event {i} at offset {event_at}: {problem:?}"));
                        // With a checksum mismatch the length prefix is probably intact: step
                        // over the event (the next one's own checksum proves the step right).
                        // A length pointing past the record cannot be trusted: stop there.
                        let claimed = payload.get(off..off + 4).map(|b| {
                            EVENT_PREFIX_LEN + u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
                        });
                        match claimed {
                            Some(n)
                                if problem == EventProblem::Checksum
                                    && off + n <= payload.len() =>
                            {
                                off += n
                            }
                            _ => break,
                        }
                    }
                }
            }
            if ptrs.len() + bad.len() == header.count as usize && off != payload.len() {
                bad.push(format!("{} trailing bytes", payload.len() - off));
            }
            if !bad.is_empty() && tail {
                return Err(bad.join("; "));
            }
            *next_seq = (*next_seq).max(header.first_seq + header.count as u64);
            if bad.is_empty() {
                ptrs.iter().for_each(|p| live.add(*p));
                Ok(())
            } else {
                let lost = (header.count as usize).saturating_sub(ptrs.len());
                // Keep what is intact; report what is not.
                let kept = ptrs.len();
                ptrs.into_iter().for_each(|p| live.add(p));
                Err(format!(
                    "put of {} events damaged ({}); {kept} kept, {lost} lost",
                    header.count,
                    bad.join("; ")
                ))
            }
        }
        RecordKind::Take => {
            if crc32c::crc32c(payload) != header.payload_crc {
                return Err(
                    "take record checksum mismatch (its events may be delivered again)".into(),
                );
            }
            let ranges = format::decode_take(header, payload)
                .ok_or_else(|| "take record of inconsistent length".to_string())?;
            for (first, len) in ranges {
                live.remove_range(first, len);
            }
            Ok(())
        }
    }
}

/// Scans forward from `from` for the next valid record header.
fn resync(reader: &mut Reader<'_>, from: u64, len: u64) -> io::Result<Option<u64>> {
    let marker = format::SYNC_MARKER.to_le_bytes();
    let mut at = from;
    while at + RECORD_HEADER_LEN as u64 <= len {
        let n = (CHUNK as u64).min(len - at) as usize;
        let Some(window) = reader.bytes(at, n)? else {
            return Ok(None);
        };
        let mut i = 0;
        while let Some(pos) = memchr::memmem::find(&window[i..], &marker) {
            let cand = at + (i + pos) as u64;
            if let Some(h) = reader.bytes(cand, RECORD_HEADER_LEN)? {
                if read_record_header(&h).is_some() {
                    return Ok(Some(cand));
                }
            }
            i += pos + 1;
        }
        if n <= marker.len() {
            break;
        }
        at += (n - marker.len() + 1) as u64;
    }
    Ok(None)
}

/// Chunked positional reads over one file.
struct Reader<'a> {
    f: &'a dyn FileHandle,
    len: u64,
    buf: Bytes,
    buf_at: u64,
}

impl<'a> Reader<'a> {
    fn new(f: &'a dyn FileHandle, len: u64) -> Self {
        Reader {
            f,
            len,
            buf: Bytes::new(),
            buf_at: 0,
        }
    }

    /// `n` bytes at `at`, or `None` past the end of the file.
    fn bytes(&mut self, at: u64, n: usize) -> io::Result<Option<Bytes>> {
        if at + n as u64 > self.len {
            return Ok(None);
        }
        let in_buf = at >= self.buf_at && at + n as u64 <= self.buf_at + self.buf.len() as u64;
        if !in_buf {
            let want = n.max(CHUNK).min((self.len - at) as usize);
            let mut v = vec![0u8; want];
            self.f.read_exact_at(&mut v, at)?;
            self.buf = Bytes::from(v);
            self.buf_at = at;
        }
        let rel = (at - self.buf_at) as usize;
        Ok(Some(self.buf.slice(rel..rel + n)))
    }
}

/// Bytes of the event prefix (re-exported for the reader of takes).
pub const PREFIX: usize = EVENT_PREFIX_LEN;

impl ReplayReport {
    /// Logs what a replay found.
    pub(super) fn log(&self, channel: &str) {
        for damage in &self.damage {
            tracing::error!(%channel, %damage, "File channel damage found during replay.");
        }
        if let Some((file, offset, bytes)) = &self.truncated {
            tracing::warn!(%channel, %file, offset, bytes, "Cut a torn write at the end of the newest data file (a commit that never completed).");
        }
        tracing::info!(
            %channel,
            events = self.events,
            records = self.records,
            checkpoint = self.checkpoint.as_deref().unwrap_or("none"),
            elapsed_ms = self.elapsed.as_millis() as u64,
            "File channel replayed."
        );
    }
}
