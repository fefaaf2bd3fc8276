//! One followed file: its open descriptor, committed position and the lines read past it.
//!
//! The descriptor stays open while the file is active, so a file renamed by a rotation is still
//! read to its end through it. Lines are cut out of large reads without copying (each body is a
//! slice of the read buffer). `pos` moves only on [`TailFile::commit`], after the batch's events
//! are in the channel; [`TailFile::rewind`] drops what was read past it.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::config::{Multiline, MultilineMatch};

/// Bytes asked of the file per read.
const READ_SIZE: usize = 1 << 20;
/// A line longer than this is cut into events of this size (with the rest following).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// A line or multi-line event read from a file, with the file offset where it starts.
pub struct Line {
    /// The bytes, without the line terminator.
    pub body: Bytes,
    /// Offset of its first byte in the file.
    pub offset: u64,
}

/// A batch read from one file.
pub struct Batch {
    /// The events' bodies and offsets.
    pub lines: Vec<Line>,
    /// The position to commit once they are in the channel.
    pub end: u64,
}

/// A multi-line event being assembled.
struct Pending {
    parts: Vec<Bytes>,
    start: u64,
    since: Instant,
}

/// One followed file.
pub struct TailFile {
    /// Its inode (the identity that survives renames).
    pub inode: u64,
    /// Where it was last seen.
    pub path: PathBuf,
    /// Index of its file group.
    pub group: usize,
    /// Bytes whose events are committed.
    pub pos: u64,
    file: Option<File>,
    /// Bytes read past `read_pos`' start and not yet cut into lines.
    buf: BytesMut,
    /// File offset of `buf[0]`.
    buf_at: u64,
    pending: Option<Pending>,
    /// When the file last grew (or was opened).
    pub last_growth: Instant,
    /// Size at the last look.
    pub size: u64,
    /// Modification time (s) at the last look, to read the oldest first.
    pub mtime: i64,
    /// Whether the file is no longer in any group's listing (rotated away or deleted): it is
    /// read to its end through the open descriptor, then dropped.
    pub gone: bool,
}

impl TailFile {
    /// Opens `path` (inode `inode`) at position `pos`.
    pub fn open(path: &Path, inode: u64, group: usize, pos: u64) -> io::Result<TailFile> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.ino() != inode {
            return Err(io::Error::other("the file was replaced while being opened"));
        }
        Ok(TailFile {
            inode,
            path: path.to_path_buf(),
            group,
            pos,
            file: Some(file),
            buf: BytesMut::new(),
            buf_at: pos,
            pending: None,
            last_growth: Instant::now(),
            size: meta.len(),
            mtime: meta.mtime(),
            gone: false,
        })
    }

    /// Whether the descriptor is open.
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Closes the descriptor (idle file); the position is kept and it is reopened on growth.
    pub fn close(&mut self) {
        self.file = None;
        self.rewind();
    }

    /// Reopens a closed file by path, if it is still the same inode.
    pub fn reopen(&mut self) -> io::Result<()> {
        let file = File::open(&self.path)?;
        if file.metadata()?.ino() != self.inode {
            return Err(io::Error::other("the path now names another file"));
        }
        self.file = Some(file);
        self.last_growth = Instant::now();
        Ok(())
    }

    /// Updates the size; a file shorter than its position was truncated (copytruncate) and is
    /// read again from the start. Returns whether it was.
    pub fn observe(&mut self, size: u64, mtime: i64) -> bool {
        self.mtime = mtime;
        if size > self.size {
            self.last_growth = Instant::now();
        }
        self.size = size;
        if size < self.pos {
            self.pos = 0;
            self.rewind();
            return true;
        }
        false
    }

    /// Forgets what was read past the committed position (a failed put; a truncation).
    pub fn rewind(&mut self) {
        self.buf.clear();
        self.buf_at = self.pos;
        self.pending = None;
    }

    /// Marks the batch's events committed.
    pub fn commit(&mut self, end: u64) {
        self.pos = end;
    }

    /// Whether bytes past what was read are known to exist.
    pub fn has_unread(&self) -> bool {
        self.size > self.buf_at + self.buf.len() as u64
    }

    /// Reads up to `max` events. `flush_partial` also emits a last line without terminator
    /// (the file has been idle) and a pending multi-line event.
    pub fn read_batch(
        &mut self,
        max: usize,
        multiline: Option<&Multiline>,
        flush_partial: bool,
    ) -> io::Result<Batch> {
        let mut lines = Vec::new();
        let mut eof = false;
        while lines.len() < max {
            match self.next_line() {
                Some(line) => self.push_line(line, multiline, &mut lines),
                None if eof => break,
                None => eof = self.fill()? == 0,
            }
        }
        if flush_partial && lines.len() < max {
            if !self.buf.is_empty() {
                let offset = self.buf_at;
                let body = self.buf.split().freeze();
                self.buf_at += body.len() as u64;
                self.push_line(Line { body, offset }, multiline, &mut lines);
            }
            if let Some(p) = self.pending.take() {
                lines.push(join(p));
            }
        }
        let end = self.pending.as_ref().map_or(self.buf_at, |p| p.start);
        Ok(Batch { lines, end })
    }

    /// Whether a pending multi-line event has waited `timeout`.
    pub fn pending_expired(&self, timeout: std::time::Duration) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|p| p.since.elapsed() >= timeout)
    }

    /// Whether bytes or lines are waiting for more input.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.pending.is_some()
    }

    fn push_line(&mut self, line: Line, multiline: Option<&Multiline>, out: &mut Vec<Line>) {
        let Some(m) = multiline else {
            out.push(line);
            return;
        };
        let continuation = m.is_continuation(&line.body);
        match (m.matching, self.pending.take()) {
            (MultilineMatch::After, Some(mut p)) if continuation && p.parts.len() < m.max_lines => {
                p.parts.push(line.body);
                self.pending = Some(p);
            }
            (MultilineMatch::After, previous) => {
                if let Some(p) = previous {
                    out.push(join(p));
                }
                self.pending = Some(Pending {
                    parts: vec![line.body],
                    start: line.offset,
                    since: Instant::now(),
                });
            }
            (MultilineMatch::Before, previous) => {
                let mut p = previous.unwrap_or(Pending {
                    parts: Vec::new(),
                    start: line.offset,
                    since: Instant::now(),
                });
                p.parts.push(line.body);
                if continuation && p.parts.len() < m.max_lines {
                    self.pending = Some(p);
                } else {
                    out.push(join(p));
                }
            }
        }
    }

    /// Cuts the next complete line out of the buffer.
    fn next_line(&mut self) -> Option<Line> {
        let offset = self.buf_at;
        let (take, body_len) = match memchr::memchr(b'\n', &self.buf) {
            Some(i) => {
                let body = if i > 0 && self.buf[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                (i + 1, body)
            }
            None if self.buf.len() >= MAX_LINE_BYTES => (MAX_LINE_BYTES, MAX_LINE_BYTES),
            None => return None,
        };
        let mut chunk = self.buf.split_to(take).freeze();
        chunk.truncate(body_len);
        self.buf_at += take as u64;
        Some(Line {
            body: chunk,
            offset,
        })
    }

    /// Reads more bytes; returns how many.
    fn fill(&mut self) -> io::Result<usize> {
        let Some(file) = &self.file else {
            return Ok(0);
        };
        let at = self.buf_at + self.buf.len() as u64;
        let start = self.buf.len();
        // Keep what is left (a partial line) and read behind it, in one allocation when the
        // buffer is shared with events still in flight.
        self.buf.reserve(READ_SIZE);
        self.buf.resize(start + READ_SIZE, 0);
        let n = read_some(file, &mut self.buf[start..], at);
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(start);
                return Err(e);
            }
        };
        self.buf.truncate(start + n);
        if n > 0 {
            let end = at + n as u64;
            if end > self.size {
                self.size = end;
                self.last_growth = Instant::now();
            }
        }
        Ok(n)
    }
}

fn read_some(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, at) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn join(p: Pending) -> Line {
    let body = if p.parts.len() == 1 {
        p.parts.into_iter().next().unwrap_or_default()
    } else {
        let len = p.parts.iter().map(|b| b.len() + 1).sum::<usize>();
        let mut out = BytesMut::with_capacity(len);
        for (i, part) in p.parts.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\n");
            }
            out.extend_from_slice(part);
        }
        out.freeze()
    };
    Line {
        body,
        offset: p.start,
    }
}
