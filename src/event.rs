//! The event: string headers plus a body of bytes.
//!
//! Bodies are [`Bytes`] slices of the buffer they were read from, so splitting a block of lines
//! into events copies nothing; an empty header map does not allocate.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;

/// A header name or value: strings of up to 24 bytes (nearly every header: `timestamp`,
/// epoch millis, host names, IPs, UUIDs up to 24 bytes) live inline, so setting one costs no
/// allocation and cloning it is a copy. Interceptors set headers on every event; with `String`
/// each one was two allocations, freed on another thread, and dominated their cost.
pub type HeaderString = compact_str::CompactString;

/// Event headers. A `BTreeMap` keeps output (logger, header_and_text) in a stable order and
/// costs no allocation while empty; its first insert allocates one node for up to 11 headers.
pub type Headers = BTreeMap<HeaderString, HeaderString>;

/// One Flume event.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// String headers (`timestamp`, `host`, ...).
    pub headers: Headers,
    /// The payload.
    pub body: Bytes,
}

impl Event {
    /// An event with a body and no headers.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Event {
            headers: Headers::new(),
            body: body.into(),
        }
    }

    /// An event with headers and a body.
    pub fn with_headers(headers: Headers, body: impl Into<Bytes>) -> Self {
        Event {
            headers,
            body: body.into(),
        }
    }

    /// Bytes this event accounts for in a channel's byte capacity (the body, as in Flume).
    pub fn body_len(&self) -> usize {
        self.body.len()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

/// Formats headers the way Java's `Map.toString()` does: `{k1=v1, k2=v2}`.
pub fn headers_to_java_string(headers: &Headers, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in headers.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_print_like_java_maps() {
        let mut h = Headers::new();
        let mut out = Vec::new();
        headers_to_java_string(&h, &mut out);
        assert_eq!(out, b"{}");
        h.insert("a".into(), "1".into());
        h.insert("b".into(), "x y".into());
        out.clear();
        headers_to_java_string(&h, &mut out);
        assert_eq!(out, b"{a=1, b=x y}");
    }
}
