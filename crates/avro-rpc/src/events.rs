//! The hot path of the avro source: decoding `appendBatch`'s `array<AvroFlumeEvent>` straight
//! into events. Everything else on the wire is encoded and decoded with the `apache-avro`
//! crate; this one datum is decoded here because the crate's generic reader costs about
//! 460 ns per event (a map and a vector per event, through serde), more than the rest of a
//! collector's work, while this reader slices bodies out of one copy of the batch. The tests
//! check it against `apache-avro` on random batches, so both read the same bytes the same way.
//!
//! Avro binary: an array is blocks of `count` items (a zigzag varint; a negative count is
//! followed by the block's byte size), ended by a 0 count; a map likewise, of key/value
//! strings; a string or bytes is a length then the bytes.

use bytes::Bytes;
use flumen_core::event::{Event, HeaderString, Headers};

/// Why the bytes are not an event array.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a datum.
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// A varint longer than 10 bytes.
    #[error("a malformed number at byte {0}")]
    BadNumber(usize),
    /// A length or count that is negative where it cannot be, or larger than what is left.
    #[error("an impossible length or count {value} at byte {at}")]
    BadLength {
        /// The value read.
        value: i64,
        /// Where.
        at: usize,
    },
    /// A header name or value that is not UTF-8.
    #[error("a header string that is not UTF-8 at byte {0}")]
    NotUtf8(usize),
    /// More events in one call than the receiver takes.
    #[error("more than {0} events in one call")]
    TooManyEvents(usize),
    /// Bytes after a datum that should be the whole input.
    #[error("{0} bytes of one event, then more bytes")]
    Trailing(usize),
    /// More headers on one event than [`MAX_HEADERS`].
    #[error("an event with more than {MAX_HEADERS} headers")]
    TooManyHeaders,
}

/// Most headers one event may carry (Flume events carry a handful; a bound keeps a hostile
/// event from costing quadratic time in the sorted header set).
pub const MAX_HEADERS: usize = 1000;
/// Events reserved at once: the vector grows with events actually read, never by a count
/// the sender announced.
const RESERVE_STEP: usize = 1024;

/// A reader over one batch, slicing bodies out of it without copying.
struct Reader {
    bytes: Bytes,
    at: usize,
}

impl Reader {
    fn long(&mut self) -> Result<i64, DecodeError> {
        let start = self.at;
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let Some(&b) = self.bytes.get(self.at) else {
                return Err(DecodeError::Truncated(self.at));
            };
            self.at += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err(DecodeError::BadNumber(start))
    }

    /// A length of what follows: at least 0, at most what is left.
    fn len(&mut self) -> Result<usize, DecodeError> {
        let at = self.at;
        let value = self.long()?;
        if value < 0 || value as u64 > (self.bytes.len() - self.at) as u64 {
            return Err(DecodeError::BadLength { value, at });
        }
        Ok(value as usize)
    }

    /// A block's item count (the absolute value; a negative count's byte size is skipped),
    /// at most `left / min_item` since each item takes at least `min_item` bytes.
    fn count(&mut self, min_item: usize) -> Result<usize, DecodeError> {
        let at = self.at;
        let mut value = self.long()?;
        if value < 0 {
            value = value
                .checked_neg()
                .ok_or(DecodeError::BadLength { value, at })?;
            self.long()?;
        }
        let left = (self.bytes.len() - self.at) as u64;
        if value as u64 > left / min_item as u64 {
            return Err(DecodeError::BadLength { value, at });
        }
        Ok(value as usize)
    }

    fn slice(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.len()?;
        let s = self.bytes.slice(self.at..self.at + n);
        self.at += n;
        Ok(s)
    }

    fn string(&mut self) -> Result<HeaderString, DecodeError> {
        let at = self.at;
        let n = self.len()?;
        let text = std::str::from_utf8(&self.bytes[self.at..self.at + n])
            .map_err(|_| DecodeError::NotUtf8(at))?;
        self.at += n;
        Ok(HeaderString::from(text))
    }

    fn headers(&mut self) -> Result<Headers, DecodeError> {
        let mut headers = Headers::new();
        let mut total = 0usize;
        loop {
            // Each entry takes at least two bytes (two empty strings).
            let n = self.count(2)?;
            if n == 0 {
                return Ok(headers);
            }
            total += n;
            if total > MAX_HEADERS {
                return Err(DecodeError::TooManyHeaders);
            }
            for _ in 0..n {
                let key = self.string()?;
                let value = self.string()?;
                headers.insert(key, value);
            }
        }
    }
}

/// Decodes an `array<AvroFlumeEvent>` from the front of `bytes`, at most `max_events` of
/// them; returns the events (their bodies are slices of `bytes`) and the bytes used.
pub fn decode_events(bytes: Bytes, max_events: usize) -> Result<(Vec<Event>, usize), DecodeError> {
    let mut r = Reader { bytes, at: 0 };
    let mut events = Vec::new();
    loop {
        // Each event takes at least two bytes (an empty map, an empty body).
        let n = r.count(2)?;
        if n == 0 {
            break;
        }
        if events.len() + n > max_events {
            return Err(DecodeError::TooManyEvents(max_events));
        }
        for _ in 0..n {
            if events.len() == events.capacity() {
                events.reserve(RESERVE_STEP);
            }
            let headers = r.headers()?;
            let body = r.slice()?;
            events.push(Event::with_headers(headers, body));
        }
    }
    Ok((events, r.at))
}

/// Decodes one bare `AvroFlumeEvent` datum that is the whole of `bytes`, as Flume's Kafka
/// components write a record's value (`useFlumeEventFormat`, `parseAsFlumeEvent`). Bytes left
/// over after the datum are an error: such a value is not one event.
pub fn decode_event(bytes: Bytes) -> Result<Event, DecodeError> {
    let mut r = Reader { bytes, at: 0 };
    let headers = r.headers()?;
    let body = r.slice()?;
    if r.at != r.bytes.len() {
        return Err(DecodeError::Trailing(r.at));
    }
    Ok(Event::with_headers(headers, body))
}

/// Appends `event` as one bare `AvroFlumeEvent` datum (a map of headers, then the body), as
/// Java's Avro encoder writes it: the headers in one block, then the end-of-map 0.
pub fn encode_event(event: &Event, out: &mut Vec<u8>) {
    let n = event.headers.len();
    out.reserve(event.body.len() + n * 24 + 12);
    if n > 0 {
        write_long(n as i64, out);
        for (k, v) in event.headers.iter() {
            write_bytes(k.as_bytes(), out);
            write_bytes(v.as_bytes(), out);
        }
    }
    out.push(0);
    write_bytes(&event.body, out);
}

fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    write_long(bytes.len() as i64, out);
    out.extend_from_slice(bytes);
}

/// Avro's zigzag varint.
fn write_long(value: i64, out: &mut Vec<u8>) {
    let mut n = ((value << 1) ^ (value >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[cfg(test)]
mod tests;
