//! The event: string headers plus a body of bytes.
//!
//! Bodies are [`Bytes`] slices of the buffer they were read from, so splitting a block of lines
//! into events copies nothing; an empty header map does not allocate.

use std::fmt;

use bytes::Bytes;

/// A header name or value: strings of up to 24 bytes (nearly every header: `timestamp`,
/// epoch millis, host names, IPs, UUIDs up to 24 bytes) live inline, so setting one costs no
/// allocation and cloning it is a copy. Interceptors set headers on every event; with `String`
/// each one was two allocations, freed on another thread, and dominated their cost.
pub type HeaderString = compact_str::CompactString;

/// Event headers: a small map kept sorted by name, so output (logger, header_and_text) has a
/// stable order, as with a `BTreeMap`.
///
/// An event without headers (most lines read from files and sockets) holds only a null
/// pointer: the entries live in one heap block, allocated by the first header set. Holding
/// three entries inside the event made every event 184 bytes, which at a channel of 100,000
/// events was 18 MB of the agent's peak memory (issue 17, BENCHMARKS.md); now an event is 40.
///
/// Events carry few headers, so a sorted small vector beats a tree: up to three headers (the
/// classic `timestamp` + `host` + one static) share that one block, more grow it; lookups are
/// a binary search. On the interceptor benchmark (BENCHMARKS.md) a `BTreeMap<String, String>`
/// made a 4-interceptor chain cost 58% of the throughput; three entries inside the event 18%;
/// the one block makes that chain 10–12% slower in absolute time, and plain lines 10–31% faster. It
/// offers the subset of the `BTreeMap` API that Flumen uses.
#[derive(Clone, Default)]
pub struct Headers {
    /// `None` when empty: a set that becomes empty frees its block.
    entries: Option<Box<Entries>>,
}

/// The entries, sorted by name: up to three in the first block before it grows.
type Entries = smallvec::SmallVec<[(HeaderString, HeaderString); INLINE_HEADERS]>;

/// Entries held in the first block before it grows.
const INLINE_HEADERS: usize = 3;

impl Headers {
    /// An empty set (no allocation).
    pub const fn new() -> Self {
        Headers { entries: None }
    }

    fn slice(&self) -> &[(HeaderString, HeaderString)] {
        self.entries.as_deref().map_or(&[], |e| e.as_slice())
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.slice().binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// Frees the block of a set that became empty, keeping `None` the only empty form.
    fn drop_if_empty(&mut self) {
        if self.entries.as_ref().is_some_and(|e| e.is_empty()) {
            self.entries = None;
        }
    }

    /// Sets `key` to `value`; returns the previous value.
    pub fn insert(&mut self, key: HeaderString, value: HeaderString) -> Option<HeaderString> {
        let found = self.find(&key);
        let entries = self.entries.get_or_insert_with(Box::default);
        match found {
            Ok(i) => Some(std::mem::replace(&mut entries[i].1, value)),
            Err(i) => {
                entries.insert(i, (key, value));
                None
            }
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&HeaderString> {
        self.find(key).ok().map(|i| &self.slice()[i].1)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<HeaderString> {
        let i = self.find(key).ok()?;
        let removed = self.entries.as_mut().map(|e| e.remove(i).1);
        self.drop_if_empty();
        removed
    }

    /// Keeps the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&HeaderString, &mut HeaderString) -> bool) {
        if let Some(entries) = self.entries.as_mut() {
            entries.retain(|(k, v)| keep(k, v));
        }
        self.drop_if_empty();
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.slice().len()
    }

    /// Whether there is no header.
    pub fn is_empty(&self) -> bool {
        self.slice().is_empty()
    }

    /// `(name, value)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderString, &HeaderString)> {
        self.slice().iter().map(|(k, v)| (k, v))
    }

    /// Names in order.
    pub fn keys(&self) -> impl Iterator<Item = &HeaderString> {
        self.slice().iter().map(|(k, _)| k)
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.slice() == other.slice()
    }
}

impl Eq for Headers {}

impl std::hash::Hash for Headers {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.slice().hash(state);
    }
}

impl FromIterator<(HeaderString, HeaderString)> for Headers {
    fn from_iter<I: IntoIterator<Item = (HeaderString, HeaderString)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (k, v) in iter {
            headers.insert(k, v);
        }
        headers
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a HeaderString, &'a HeaderString);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (HeaderString, HeaderString)>,
        fn(&'a (HeaderString, HeaderString)) -> (&'a HeaderString, &'a HeaderString),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.slice().iter().map(|(k, v)| (k, v))
    }
}

/// `headers["name"]`, as with a `BTreeMap`.
///
/// # Panics
/// When the header is absent (like `BTreeMap`'s `Index`); code handling input uses
/// [`Headers::get`].
impl std::ops::Index<&str> for Headers {
    type Output = HeaderString;

    fn index(&self, key: &str) -> &HeaderString {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no header `{key}`"),
        }
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

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
    fn an_event_stays_small_enough_to_move_cheaply() {
        // A full channel holds 100,000 of them; BENCHMARKS.md quotes this size (issue 17),
        // and growing it costs peak memory and throughput on every workload.
        assert_eq!(std::mem::size_of::<HeaderString>(), 24);
        assert_eq!(std::mem::size_of::<Headers>(), 8);
        assert!(
            std::mem::size_of::<Event>() <= 40,
            "{}",
            std::mem::size_of::<Event>()
        );
    }

    #[test]
    fn headers_stay_sorted_and_replace_in_place() {
        let mut h = Headers::new();
        assert!(h.insert("b".into(), "2".into()).is_none());
        assert!(h.insert("a".into(), "1".into()).is_none());
        assert!(h.insert("c".into(), "3".into()).is_none());
        assert_eq!(h.insert("b".into(), "two".into()).as_deref(), Some("2"));
        let keys: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(h.get("b").map(|v| v.as_str()), Some("two"));
        assert_eq!(h.remove("a").as_deref(), Some("1"));
        assert!(!h.contains_key("a"));
        h.retain(|k, _| k != "c");
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn a_set_emptied_again_equals_a_new_one_and_frees_its_block() {
        use std::hash::{BuildHasher, RandomState};
        let mut h = Headers::new();
        h.insert("a".into(), "1".into());
        h.insert("b".into(), "2".into());
        assert_ne!(h, Headers::new());
        h.remove("a");
        h.retain(|_, _| false);
        assert!(h.is_empty());
        assert!(h.entries.is_none());
        assert_eq!(h, Headers::new());
        let state = RandomState::new();
        assert_eq!(state.hash_one(&h), state.hash_one(Headers::new()));
        assert_eq!(h.remove("missing"), None);
    }

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
