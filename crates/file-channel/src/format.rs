//! The file channel's on-disk formats: data-file header, log records, events, checkpoint.
//!
//! Every file starts with an 8-byte magic and a format version, so a directory holding
//! somebody else's files is recognised and refused before anything is written. All integers
//! are little-endian. Checksums are CRC-32C.
//!
//! A data file (`log-<id>.flumen`) is a [`FILE_HEADER_LEN`]-byte header followed by records.
//! A record is a [`RECORD_HEADER_LEN`]-byte header (sync marker, kind, count, payload length,
//! first sequence number, payload CRC, header CRC) and its payload:
//! - `PUT`: one committed put batch. The payload is `count` events, each
//!   `[len u32][crc u32][headers u16][(klen u16, key, vlen u32, value)…][body]`; each event has
//!   its own CRC so that a damaged event costs that event alone. The record is atomic: a put
//!   is committed exactly when its whole record is on disk (there is no separate commit record).
//! - `TAKE`: one committed take. The payload is `count` ranges `[first seq u64][len u32]` of
//!   the events removed, covered by the payload CRC.
//!
//! The header CRC lets replay tell a record boundary from garbage, so after damage in the
//! middle of a file it finds the next good record by scanning for the sync marker.

use bytes::Bytes;

use flumen_core::event::{Event, HeaderString, Headers};

/// Magic of a data file.
pub const LOG_MAGIC: &[u8; 8] = b"FLUMENLG";
/// Magic of a checkpoint file.
pub const CHECKPOINT_MAGIC: &[u8; 8] = b"FLUMENCP";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of a data-file header.
pub const FILE_HEADER_LEN: usize = 32;
/// Bytes of a record header.
pub const RECORD_HEADER_LEN: usize = 32;
/// Bytes before each event's encoded form inside a `PUT` payload (`len`, `crc`).
pub const EVENT_PREFIX_LEN: usize = 8;
/// Bytes of one range in a `TAKE` payload.
pub const TAKE_RANGE_LEN: usize = 12;
/// Marks the start of every record.
pub const SYNC_MARKER: u32 = 0x5EC0_F10E;
/// Largest payload a record may claim (a put of transactionCapacity big events stays far below).
pub const MAX_PAYLOAD: u32 = 1 << 30;

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A committed put batch.
    Put = 1,
    /// A committed take.
    Take = 2,
}

/// A decoded record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Put or take.
    pub kind: RecordKind,
    /// Events (put) or ranges (take).
    pub count: u32,
    /// Bytes of payload after the header.
    pub payload_len: u32,
    /// Sequence number of the first event (put); unused (0) for takes.
    pub first_seq: u64,
    /// CRC of the payload (takes); 0 for puts, whose events carry their own.
    pub payload_crc: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// The header of data file `file_id`.
pub fn encode_file_header(file_id: u32) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(LOG_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&file_id.to_le_bytes());
    let crc = crc32c::crc32c(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a file header is not one of ours.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Shorter than a header: a file created by a crash before its header was written, or not ours.
    Short,
    /// Wrong magic: another program's file.
    Foreign,
    /// Our magic, a version this build does not read.
    Version(u32),
    /// Our magic, damaged header.
    Corrupt,
}

/// Checks a data-file header; returns the file id it names.
pub fn decode_file_header(h: &[u8]) -> Result<u32, HeaderProblem> {
    if h.len() < FILE_HEADER_LEN {
        return Err(HeaderProblem::Short);
    }
    if &h[..8] != LOG_MAGIC {
        return Err(HeaderProblem::Foreign);
    }
    if crc32c::crc32c(&h[..28]) != u32_at(h, 28) {
        return Err(HeaderProblem::Corrupt);
    }
    let version = u32_at(h, 8);
    if version != FORMAT_VERSION {
        return Err(HeaderProblem::Version(version));
    }
    Ok(u32_at(h, 12))
}

/// Writes a record header into `out[..RECORD_HEADER_LEN]`.
pub fn write_record_header(out: &mut [u8], h: &RecordHeader) {
    out[..4].copy_from_slice(&SYNC_MARKER.to_le_bytes());
    out[4] = h.kind as u8;
    out[5..8].fill(0);
    out[8..12].copy_from_slice(&h.count.to_le_bytes());
    out[12..16].copy_from_slice(&h.payload_len.to_le_bytes());
    out[16..24].copy_from_slice(&h.first_seq.to_le_bytes());
    out[24..28].copy_from_slice(&h.payload_crc.to_le_bytes());
    let crc = crc32c::crc32c(&out[..28]);
    out[28..32].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes a record header; `None` when `b` does not start with a valid one.
pub fn read_record_header(b: &[u8]) -> Option<RecordHeader> {
    if b.len() < RECORD_HEADER_LEN || u32_at(b, 0) != SYNC_MARKER {
        return None;
    }
    if crc32c::crc32c(&b[..28]) != u32_at(b, 28) {
        return None;
    }
    let kind = match b[4] {
        1 => RecordKind::Put,
        2 => RecordKind::Take,
        _ => return None,
    };
    let payload_len = u32_at(b, 12);
    if payload_len > MAX_PAYLOAD {
        return None;
    }
    Some(RecordHeader {
        kind,
        count: u32_at(b, 8),
        payload_len,
        first_seq: u64_at(b, 16),
        payload_crc: u32_at(b, 24),
    })
}

/// A put batch encoded as a record (header with sequence 0 until the writer assigns one).
pub struct EncodedPut {
    /// Header and payload.
    pub bytes: Vec<u8>,
    /// Each event's (offset from the record start, length including its prefix).
    pub events: Vec<(u32, u32)>,
}

/// Encodes a put batch into `bytes` (cleared first; pass a used buffer to reuse its memory).
/// Errors name an event that cannot be represented (a header longer than 64 KiB keys / 4 GiB
/// values, or more than 65,535 headers).
pub fn encode_put(batch: &[Event], mut bytes: Vec<u8>) -> Result<EncodedPut, String> {
    let size: usize = batch.iter().map(encoded_event_size).sum::<usize>() + RECORD_HEADER_LEN;
    if size - RECORD_HEADER_LEN > MAX_PAYLOAD as usize {
        return Err(format!(
            "batch of {size} bytes exceeds the largest record ({MAX_PAYLOAD} bytes)"
        ));
    }
    bytes.clear();
    bytes.reserve(size);
    bytes.resize(RECORD_HEADER_LEN, 0);
    let mut events = Vec::with_capacity(batch.len());
    for event in batch {
        let start = bytes.len();
        bytes.extend_from_slice(&[0u8; EVENT_PREFIX_LEN]);
        encode_event(event, &mut bytes)?;
        let len = bytes.len() - start - EVENT_PREFIX_LEN;
        let crc = crc32c::crc32c(&bytes[start + EVENT_PREFIX_LEN..]);
        bytes[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
        bytes[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        events.push((start as u32, (len + EVENT_PREFIX_LEN) as u32));
    }
    let header = RecordHeader {
        kind: RecordKind::Put,
        count: batch.len() as u32,
        payload_len: (bytes.len() - RECORD_HEADER_LEN) as u32,
        first_seq: 0,
        payload_crc: 0,
    };
    write_record_header(&mut bytes[..RECORD_HEADER_LEN], &header);
    Ok(EncodedPut { bytes, events })
}

/// Sets the first sequence number of an encoded put (and its header CRC).
pub fn set_first_seq(record: &mut [u8], first_seq: u64) {
    record[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&record[..28]);
    record[28..32].copy_from_slice(&crc.to_le_bytes());
}

fn encoded_event_size(e: &Event) -> usize {
    EVENT_PREFIX_LEN
        + 2
        + e.headers
            .iter()
            .map(|(k, v)| 6 + k.len() + v.len())
            .sum::<usize>()
        + e.body.len()
}

fn encode_event(e: &Event, out: &mut Vec<u8>) -> Result<(), String> {
    let n = u16::try_from(e.headers.len())
        .map_err(|_| format!("event with {} headers (at most 65535)", e.headers.len()))?;
    out.extend_from_slice(&n.to_le_bytes());
    for (k, v) in e.headers.iter() {
        let kl = u16::try_from(k.len())
            .map_err(|_| format!("header key of {} bytes (at most 65535)", k.len()))?;
        let vl =
            u32::try_from(v.len()).map_err(|_| format!("header value of {} bytes", v.len()))?;
        out.extend_from_slice(&kl.to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&vl.to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(&e.body);
    Ok(())
}

/// Why an event read back from disk was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum EventProblem {
    /// The prefix claims more bytes than there are.
    Truncated,
    /// The CRC does not match.
    Checksum,
    /// The CRC matched but the layout is inconsistent (a bug, or a collision).
    Layout,
}

/// Decodes one event at the start of `buf` (prefix included), taking the body as a slice of
/// `buf`. Returns the event and the bytes it used.
pub fn decode_event(buf: &Bytes) -> Result<(Event, usize), EventProblem> {
    if buf.len() < EVENT_PREFIX_LEN {
        return Err(EventProblem::Truncated);
    }
    let len = u32_at(buf, 0) as usize;
    let crc = u32_at(buf, 4);
    let end = EVENT_PREFIX_LEN
        .checked_add(len)
        .ok_or(EventProblem::Truncated)?;
    if end > buf.len() {
        return Err(EventProblem::Truncated);
    }
    let data = &buf[EVENT_PREFIX_LEN..end];
    if crc32c::crc32c(data) != crc {
        return Err(EventProblem::Checksum);
    }
    let (headers, body_at) = decode_headers(data).ok_or(EventProblem::Layout)?;
    let body = buf.slice(EVENT_PREFIX_LEN + body_at..end);
    Ok((Event::with_headers(headers, body), end))
}

fn decode_headers(data: &[u8]) -> Option<(Headers, usize)> {
    if data.len() < 2 {
        return None;
    }
    let n = u16_at(data, 0) as usize;
    let mut at = 2;
    let mut headers = Headers::new();
    for _ in 0..n {
        let kl = u16_at(data.get(at..at + 2)?, 0) as usize;
        at += 2;
        let k = std::str::from_utf8(data.get(at..at + kl)?).ok()?;
        at += kl;
        let vl = u32_at(data.get(at..at + 4)?, 0) as usize;
        at += 4;
        let v = std::str::from_utf8(data.get(at..at.checked_add(vl)?)?).ok()?;
        at += vl;
        headers.insert(HeaderString::from(k), HeaderString::from(v));
    }
    Some((headers, at))
}

/// Checks the event at the start of `buf` without decoding it; returns its total length.
pub fn check_event(buf: &[u8]) -> Result<usize, EventProblem> {
    if buf.len() < EVENT_PREFIX_LEN {
        return Err(EventProblem::Truncated);
    }
    let len = u32_at(buf, 0) as usize;
    let end = EVENT_PREFIX_LEN
        .checked_add(len)
        .ok_or(EventProblem::Truncated)?;
    if end > buf.len() {
        return Err(EventProblem::Truncated);
    }
    if crc32c::crc32c(&buf[EVENT_PREFIX_LEN..end]) != u32_at(buf, 4) {
        return Err(EventProblem::Checksum);
    }
    Ok(end)
}

/// Encodes a take record removing the given sequence ranges `(first, len)`.
pub fn encode_take(ranges: &[(u64, u32)], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + RECORD_HEADER_LEN, 0);
    for (first, len) in ranges {
        out.extend_from_slice(&first.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
    }
    let payload = &out[start + RECORD_HEADER_LEN..];
    let header = RecordHeader {
        kind: RecordKind::Take,
        count: ranges.len() as u32,
        payload_len: payload.len() as u32,
        first_seq: 0,
        payload_crc: crc32c::crc32c(payload),
    };
    write_record_header(&mut out[start..start + RECORD_HEADER_LEN], &header);
}

/// Decodes a take payload whose CRC was checked; `None` when its length is inconsistent.
pub fn decode_take(h: &RecordHeader, payload: &[u8]) -> Option<Vec<(u64, u32)>> {
    if payload.len() != h.count as usize * TAKE_RANGE_LEN {
        return None;
    }
    Some(
        payload
            .chunks_exact(TAKE_RANGE_LEN)
            .map(|c| (u64_at(c, 0), u32_at(c, 8)))
            .collect(),
    )
}

/// Compresses sorted-or-not sequence numbers into `(first, len)` runs.
pub fn seq_ranges(seqs: impl IntoIterator<Item = u64>) -> Vec<(u64, u32)> {
    let mut ranges: Vec<(u64, u32)> = Vec::new();
    for s in seqs {
        match ranges.last_mut() {
            Some((first, len)) if *first + *len as u64 == s && *len < u32::MAX => *len += 1,
            _ => ranges.push((s, 1)),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_round_trips_headers_and_body() {
        let mut h = Headers::new();
        h.insert("host".into(), "web-1".into());
        h.insert("k".into(), "".into());
        let batch = vec![Event::with_headers(h, "hello"), Event::new("")];
        let enc = encode_put(&batch, Vec::new()).unwrap();
        let reused = encode_put(&batch, vec![0xff; 5000]).unwrap();
        assert_eq!(
            reused.bytes, enc.bytes,
            "a used buffer encodes the same record"
        );
        let header = read_record_header(&enc.bytes).unwrap();
        assert_eq!(header.count, 2);
        assert_eq!(
            header.payload_len as usize,
            enc.bytes.len() - RECORD_HEADER_LEN
        );
        let all = Bytes::from(enc.bytes.clone());
        for ((off, len), want) in enc.events.iter().zip(&batch) {
            let slice = all.slice(*off as usize..(*off + *len) as usize);
            let (got, used) = decode_event(&slice).unwrap();
            assert_eq!(used, *len as usize);
            assert_eq!(&got, want);
        }
    }

    #[test]
    fn a_flipped_bit_is_caught_by_the_event_or_header_crc() {
        let enc = encode_put(&[Event::new("payload")], vec![9; 3]).unwrap();
        for bit in 0..enc.bytes.len() * 8 {
            let mut b = enc.bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let header_ok = read_record_header(&b).is_some_and(|h| h.count == 1);
            let event_ok = check_event(&b[RECORD_HEADER_LEN..]).is_ok();
            assert!(
                !(header_ok && event_ok) || b == enc.bytes,
                "bit {bit} undetected"
            );
        }
    }

    #[test]
    fn take_ranges_compress_runs() {
        assert_eq!(
            seq_ranges([3, 4, 5, 9, 10, 2]),
            vec![(3, 3), (9, 2), (2, 1)]
        );
        let mut out = Vec::new();
        encode_take(&[(3, 3), (9, 2)], &mut out);
        let h = read_record_header(&out).unwrap();
        assert_eq!(h.kind, RecordKind::Take);
        let payload = &out[RECORD_HEADER_LEN..];
        assert_eq!(crc32c::crc32c(payload), h.payload_crc);
        assert_eq!(decode_take(&h, payload).unwrap(), vec![(3, 3), (9, 2)]);
    }

    #[test]
    fn file_header_names_its_id_and_rejects_foreign_bytes() {
        let h = encode_file_header(7);
        assert_eq!(decode_file_header(&h), Ok(7));
        assert_eq!(
            decode_file_header(b"\x00\x01protobuf-ish-flume-log-file-bytes"),
            Err(HeaderProblem::Foreign)
        );
        assert_eq!(decode_file_header(&h[..10]), Err(HeaderProblem::Short));
    }
}
