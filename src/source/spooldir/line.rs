//! The LINE deserializer (Flume's `LineDeserializer`): one event per line.
//!
//! As in Flume, a line ends at `\n` only (a `\r` before it stays in the body), is decoded with
//! `inputCharset` under `decodeErrorPolicy` and encoded with `deserializer.outputCharset`; a
//! line reaching `deserializer.maxLineLength` characters (UTF-16 units, as Java counts) is cut
//! there and the rest continues as the next event; when that cut falls just before the `\n`,
//! the `\n` then ends an empty event (Flume does the same). A final line without `\n` is an
//! event when not empty.
//!
//! Differences: a character of two UTF-16 units is never split by a cut (Java may split the
//! pair). The decoder sees a line at a time, at most `4 × maxLineLength` bytes: a longer run
//! without `\n` is handed over in such units (cut back to a UTF-8 character boundary for UTF-8
//! input), so cuts in very long lines of multi-byte text may fall a few characters from
//! Flume's. With UTF-8 in and out and a valid line shorter than `maxLineLength` bytes (nearly
//! every line) the body is a slice of the block read, with no decoding and no copy.
//!
//! Positions: a unit (line or piece of a long run) starts at a byte offset; a batch ending
//! inside a cut line records the unit's offset and how many of its pieces were committed.

use std::fs::File;

use bytes::{Bytes, BytesMut};

use super::charset::{self, Charset, DecodeErrorPolicy};
use super::read::{read_full_at, Batch, Deserializer, ReadError};
use super::tracker::Position;
use crate::event::Event;

/// Bytes read from the file at a time.
const READ_SIZE: usize = 1 << 20;

/// The LINE deserializer on one file.
pub struct LineReader {
    file: File,
    limit: u64,
    input: Charset,
    policy: DecodeErrorPolicy,
    output: Charset,
    max_chars: usize,
    unit_cap: usize,
    /// Unread bytes; `buf[0]` is at file offset `buf_off`.
    buf: BytesMut,
    buf_off: u64,
    /// How much of `buf` is known to hold no `\n`.
    searched: usize,
    /// Everything up to `limit` has been read into `buf`.
    all_read: bool,
    /// The current unit's events, the next one to hand out, and the unit's byte range.
    pieces: Vec<Bytes>,
    next_piece: usize,
    unit_start: u64,
    unit_end: u64,
    /// Pieces of the first unit that were committed before a restart.
    skip: u64,
    scratch: String,
}

/// One unit: a line, or a run of at most `unit_cap` bytes of a longer line.
struct Unit {
    start: u64,
    end: u64,
    bytes: Bytes,
    terminated: bool,
}

impl LineReader {
    /// A reader on `file` (of `limit` bytes) from `start`.
    pub fn new(
        file: File,
        limit: u64,
        start: Position,
        input: Charset,
        policy: DecodeErrorPolicy,
        output: Charset,
        max_chars: usize,
    ) -> Self {
        LineReader {
            file,
            limit,
            input,
            policy,
            output,
            max_chars,
            unit_cap: max_chars.saturating_mul(4).max(4),
            buf: BytesMut::new(),
            buf_off: start.offset,
            searched: 0,
            all_read: start.offset >= limit,
            pieces: Vec::new(),
            next_piece: 0,
            unit_start: start.offset,
            unit_end: start.offset,
            skip: start.skip,
            scratch: String::new(),
        }
    }

    /// The next unit, `Ok(None)` at the end.
    fn next_unit(&mut self) -> Result<Option<Unit>, ReadError> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.searched..]) {
                let len = self.searched + i;
                return Ok(Some(self.take(len, 1, true)));
            }
            self.searched = self.buf.len();
            if self.buf.len() > self.unit_cap {
                let mut cut = self.unit_cap;
                if self.input == Charset::Utf8 {
                    let mut back = cut;
                    while back > cut.saturating_sub(3) && back > 0 && self.buf[back] & 0xC0 == 0x80
                    {
                        back -= 1;
                    }
                    if back > 0 {
                        cut = back;
                    }
                }
                return Ok(Some(self.take(cut, 0, false)));
            }
            if self.all_read {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let len = self.buf.len();
                return Ok(Some(self.take(len, 0, false)));
            }
            self.fill()?;
        }
    }

    /// Splits `len` bytes (plus `skip` terminator bytes) off the front of the buffer.
    fn take(&mut self, len: usize, skip: usize, terminated: bool) -> Unit {
        let bytes = self.buf.split_to(len).freeze();
        let _ = self.buf.split_to(skip);
        let start = self.buf_off;
        self.buf_off += (len + skip) as u64;
        self.searched = 0;
        Unit {
            start,
            end: self.buf_off,
            bytes,
            terminated,
        }
    }

    /// Reads the next block (never past `limit`).
    fn fill(&mut self) -> Result<(), ReadError> {
        let at = self.buf_off + self.buf.len() as u64;
        let want = (self.limit.saturating_sub(at)).min(READ_SIZE as u64) as usize;
        if want == 0 {
            self.all_read = true;
            return Ok(());
        }
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        match read_full_at(&self.file, &mut self.buf[old..], at) {
            Ok(n) => {
                self.buf.truncate(old + n);
                if n < want {
                    // The file shrank under us; the source notices the change.
                    self.all_read = true;
                }
                Ok(())
            }
            Err(source) => {
                self.buf.truncate(old);
                Err(ReadError::Io { offset: at, source })
            }
        }
    }

    /// Turns a unit into its events; returns how many were cut at the length limit.
    fn split(&mut self, unit: &Unit) -> Result<u64, ReadError> {
        self.pieces.clear();
        self.next_piece = 0;
        if self.input == Charset::Utf8
            && self.output == Charset::Utf8
            && unit.bytes.len() < self.max_chars
            && std::str::from_utf8(&unit.bytes).is_ok()
        {
            if unit.terminated || !unit.bytes.is_empty() {
                self.pieces.push(unit.bytes.clone());
            }
            return Ok(0);
        }
        self.scratch.clear();
        charset::decode(self.input, &unit.bytes, self.policy, &mut self.scratch).map_err(|m| {
            ReadError::Malformed {
                offset: unit.start + m.at as u64,
                charset: self.input.name(),
            }
        })?;
        let text = std::mem::take(&mut self.scratch);
        let mut cut = 0;
        let mut from = 0;
        let mut units = 0;
        for (i, c) in text.char_indices() {
            units += c.len_utf16();
            if units >= self.max_chars {
                let end = i + c.len_utf8();
                let piece = self.encode(&text[from..end]);
                self.pieces.push(piece);
                cut += 1;
                from = end;
                units = 0;
            }
        }
        if unit.terminated || from < text.len() {
            let piece = self.encode(&text[from..]);
            self.pieces.push(piece);
        }
        self.scratch = text;
        Ok(cut)
    }

    fn encode(&self, text: &str) -> Bytes {
        let mut out = Vec::with_capacity(text.len());
        charset::encode(self.output, text, &mut out);
        Bytes::from(out)
    }

    fn position(&self) -> Position {
        if self.next_piece < self.pieces.len() {
            Position {
                offset: self.unit_start,
                skip: self.next_piece as u64,
            }
        } else {
            Position {
                offset: self.unit_end,
                skip: 0,
            }
        }
    }
}

impl Deserializer for LineReader {
    fn read_batch(&mut self, max: usize) -> Batch {
        let mut batch = Batch {
            events: Vec::with_capacity(max.min(4096)),
            ..Batch::default()
        };
        while batch.events.len() < max {
            if self.next_piece < self.pieces.len() {
                let body = self.pieces[self.next_piece].clone();
                self.next_piece += 1;
                batch.events.push(Event::new(body));
                continue;
            }
            let unit = match self.next_unit() {
                Ok(Some(u)) => u,
                Ok(None) => {
                    batch.eof = true;
                    break;
                }
                Err(e) => {
                    batch.error = Some(e);
                    break;
                }
            };
            match self.split(&unit) {
                Ok(cut) => batch.cut += cut,
                Err(e) => {
                    // Stay at the start of the bad line.
                    self.pieces.clear();
                    self.next_piece = 0;
                    self.unit_start = unit.start;
                    self.unit_end = unit.start;
                    batch.error = Some(e);
                    break;
                }
            }
            self.unit_start = unit.start;
            self.unit_end = unit.end;
            self.next_piece = (std::mem::take(&mut self.skip) as usize).min(self.pieces.len());
        }
        batch.end = self.position();
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        len: u64,
    }

    fn fixture(bytes: &[u8]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, bytes).unwrap();
        Fixture {
            _dir: dir,
            path,
            len: bytes.len() as u64,
        }
    }

    fn reader(f: &Fixture, start: Position, policy: DecodeErrorPolicy, max: usize) -> LineReader {
        LineReader::new(
            File::open(&f.path).unwrap(),
            f.len,
            start,
            Charset::Utf8,
            policy,
            Charset::Utf8,
            max,
        )
    }

    fn bodies(b: &Batch) -> Vec<String> {
        b.events
            .iter()
            .map(|e| String::from_utf8_lossy(&e.body).into_owned())
            .collect()
    }

    #[test]
    fn lines_end_at_newline_only_and_keep_carriage_returns() {
        let f = fixture(b"a\r\n\nb\nlast");
        let mut r = reader(&f, Position::default(), DecodeErrorPolicy::Fail, 2048);
        let b = r.read_batch(100);
        assert_eq!(bodies(&b), ["a\r", "", "b", "last"]);
        assert!(b.eof);
        assert_eq!(
            b.end,
            Position {
                offset: 10,
                skip: 0
            }
        );
    }

    #[test]
    fn batches_resume_exactly_where_the_previous_ended() {
        let f = fixture(b"1\n22\n333\n4444\n");
        let mut r = reader(&f, Position::default(), DecodeErrorPolicy::Fail, 2048);
        let b = r.read_batch(2);
        assert_eq!(bodies(&b), ["1", "22"]);
        assert_eq!(b.end, Position { offset: 5, skip: 0 });
        assert!(!b.eof);
        let mut again = reader(&f, b.end, DecodeErrorPolicy::Fail, 2048);
        let b = again.read_batch(10);
        assert_eq!(bodies(&b), ["333", "4444"]);
    }

    #[test]
    fn long_lines_are_cut_like_flume_including_the_empty_tail() {
        let f = fixture(b"abcdefg\nabcd\nxy");
        let mut r = reader(&f, Position::default(), DecodeErrorPolicy::Fail, 4);
        let b = r.read_batch(100);
        // "abcd" reaches the limit: cut; "efg" ends the line; "abcd" is cut at the limit
        // just before its \n, which then ends an empty event.
        assert_eq!(bodies(&b), ["abcd", "efg", "abcd", "", "xy"]);
        assert_eq!(b.cut, 2);
    }

    #[test]
    fn a_batch_can_end_inside_a_cut_line_and_resume_there() {
        let f = fixture(b"abcdefghij\nk\n");
        let mut r = reader(&f, Position::default(), DecodeErrorPolicy::Fail, 3);
        let b = r.read_batch(2);
        assert_eq!(bodies(&b), ["abc", "def"]);
        assert_eq!(b.end, Position { offset: 0, skip: 2 });
        let mut again = reader(&f, b.end, DecodeErrorPolicy::Fail, 3);
        let b = again.read_batch(10);
        assert_eq!(bodies(&b), ["ghi", "j", "k"]);
    }

    #[test]
    fn malformed_input_stops_at_the_bad_line_under_fail() {
        let f = fixture(b"ok\nbad\xff\nnever\n");
        let mut r = reader(&f, Position::default(), DecodeErrorPolicy::Fail, 2048);
        let b = r.read_batch(100);
        assert_eq!(bodies(&b), ["ok"]);
        assert_eq!(b.end, Position { offset: 3, skip: 0 });
        match b.error {
            Some(ReadError::Malformed { offset, .. }) => assert_eq!(offset, 6),
            other => panic!("{other:?}"),
        }
        let mut r = reader(&f, Position::default(), DecodeErrorPolicy::Replace, 2048);
        assert_eq!(bodies(&r.read_batch(100)), ["ok", "bad\u{fffd}", "never"]);
        let mut r = reader(&f, Position::default(), DecodeErrorPolicy::Ignore, 2048);
        assert_eq!(bodies(&r.read_batch(100)), ["ok", "bad", "never"]);
    }

    #[test]
    fn reading_stops_at_the_size_picked_up() {
        let f = fixture(b"one\ntwo\nthree\n");
        let mut r = LineReader::new(
            File::open(&f.path).unwrap(),
            8,
            Position::default(),
            Charset::Utf8,
            DecodeErrorPolicy::Fail,
            Charset::Utf8,
            2048,
        );
        assert_eq!(bodies(&r.read_batch(100)), ["one", "two"]);
    }

    #[test]
    fn charsets_are_decoded_and_encoded() {
        let f = fixture(b"caf\xe9\n");
        let mut r = LineReader::new(
            File::open(&f.path).unwrap(),
            f.len,
            Position::default(),
            Charset::Latin1,
            DecodeErrorPolicy::Fail,
            Charset::Utf8,
            2048,
        );
        assert_eq!(bodies(&r.read_batch(10)), ["café"]);
    }

    #[test]
    fn runs_longer_than_the_unit_cap_stay_on_character_boundaries() {
        let line = "é".repeat(20);
        let f = fixture(format!("{line}\n").as_bytes());
        // unit cap 4 * 5 = 20 bytes = 10 two-byte characters.
        let mut r = reader(&f, Position::default(), DecodeErrorPolicy::Fail, 5);
        let b = r.read_batch(100);
        assert!(b.error.is_none());
        let all: String = bodies(&b).concat();
        assert_eq!(all, line);
        assert!(bodies(&b).iter().all(|p| p.chars().count() <= 5));
    }
}
