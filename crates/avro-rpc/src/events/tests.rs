//! The fast reader against `apache-avro` on the same bytes.

use super::*;
use crate::protocol::write_append_batch;

/// A small deterministic generator (xorshift) for random batches.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn text(&mut self) -> String {
        let alphabet = [
            'a',
            'Z',
            '0',
            ' ',
            '=',
            '\u{e9}',
            '\u{2603}',
            '\u{1f600}',
            '\n',
        ];
        let n = self.below(40);
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize])
            .collect()
    }
}

fn random_batch(rng: &mut Rng) -> Vec<Event> {
    (0..rng.below(50))
        .map(|_| {
            let mut headers = Headers::new();
            for _ in 0..rng.below(5) {
                headers.insert(rng.text().into(), rng.text().into());
            }
            let body: Vec<u8> = (0..rng.below(600)).map(|_| rng.next() as u8).collect();
            Event::with_headers(headers, body)
        })
        .collect()
}

fn sorted(h: &Headers) -> Vec<(String, String)> {
    let mut v: Vec<_> = h
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn agrees_with_apache_avro_on_random_batches() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..300 {
        let batch = random_batch(&mut rng);
        let mut call = Vec::new();
        write_append_batch(&batch, &mut call).expect("encoded by apache-avro");
        // Skip the call's metadata (0) and name ("appendBatch").
        let start = 1 + 1 + "appendBatch".len();
        let mut input = &call[start..];
        let (fast, used) =
            decode_events(Bytes::copy_from_slice(input), usize::MAX).expect("decoded");
        let reference = crate::protocol::read_events_with_apache_avro(&mut input).expect("decoded");
        assert!(used == call.len() - start && input.is_empty());
        assert_eq!(fast.len(), reference.len());
        for ((f, r), sent) in fast.iter().zip(&reference).zip(&batch) {
            assert_eq!(f.body, r.body);
            assert_eq!(f.body, sent.body);
            assert_eq!(sorted(&f.headers), sorted(&r.headers));
            // Duplicate random keys collapse to one in both readers.
            assert_eq!(sorted(&f.headers).len(), sorted(&r.headers).len());
        }
    }
}

#[test]
fn blocks_with_byte_sizes_are_read_and_garbage_is_refused() {
    // Two events in a block of count -2 with its byte size, then the end.
    let wire = [3u8, 10, 0, 2, b'x', 0, 2, b'y', 0];
    let (events, used) = decode_events(Bytes::copy_from_slice(&wire), usize::MAX).expect("decoded");
    assert_eq!(used, wire.len());
    let bodies: Vec<&[u8]> = events.iter().map(|e| &e.body[..]).collect();
    assert_eq!(bodies, [&b"x"[..], b"y"]);
    for (garbage, what) in [
        (
            &[0xfe, 0xff, 0xff, 0xff, 0x0f][..],
            "a count far beyond the bytes",
        ),
        (&[2, 0, 20, b'a'][..], "a body longer than the rest"),
        (&[2, 2, 2, 0xff, 0, 0][..], "a header that is not UTF-8"),
        (&[0xff; 12][..], "a varint that never ends"),
        (&[2, 0][..], "truncated"),
        (&[1, 0][..], "a negative body length"),
    ] {
        let result = decode_events(Bytes::copy_from_slice(garbage), usize::MAX);
        assert!(result.is_err(), "{what}");
    }
    // Bounds: events per call, headers per event.
    let two = [4u8, 0, 0, 0, 0, 0];
    assert_eq!(
        decode_events(Bytes::copy_from_slice(&two), 1).map(|(e, _)| e.len()),
        Err(DecodeError::TooManyEvents(1))
    );
    let mut many = vec![2u8];
    many.extend(encode_long((MAX_HEADERS + 1) as i64));
    for i in 0..=MAX_HEADERS {
        let key = format!("k{i}");
        many.extend(encode_long(key.len() as i64));
        many.extend(key.as_bytes());
        many.push(0);
    }
    many.extend([0, 0, 0]);
    assert_eq!(
        decode_events(Bytes::from(many), usize::MAX).map(|(e, _)| e.len()),
        Err(DecodeError::TooManyHeaders)
    );
}

/// Avro's zigzag varint.
fn encode_long(v: i64) -> Vec<u8> {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        if n < 0x80 {
            out.push(n as u8);
            return out;
        }
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
}

#[test]
fn one_event_datums_match_apache_avro_byte_for_byte_and_read_back() {
    let mut rng = Rng(0x5eed_4444_abcd_0002);
    for _ in 0..30 {
        for event in random_batch(&mut rng) {
            let mut reference = Vec::new();
            crate::protocol::write_append(&event, &mut reference).expect("encoded by apache-avro");
            // Skip the call's metadata (0) and name ("append").
            let datum = &reference[1 + 1 + "append".len()..];
            let mut ours = Vec::new();
            encode_event(&event, &mut ours);
            if event.headers.len() <= 1 {
                // With several headers the map's order is the set's; compare by decoding.
                assert_eq!(ours, datum);
            }
            let back = decode_event(Bytes::from(ours)).expect("read back");
            assert_eq!(back.body, event.body);
            assert_eq!(sorted(&back.headers), sorted(&event.headers));
            let theirs = decode_event(Bytes::copy_from_slice(datum)).expect("read apache-avro's");
            assert_eq!(sorted(&theirs.headers), sorted(&event.headers));
        }
    }
    assert_eq!(
        decode_event(Bytes::from_static(&[0, 2, b'x', b'!'])).map(|e| e.body),
        Err(DecodeError::Trailing(3))
    );
    assert!(decode_event(Bytes::from_static(b"plain text, not avro")).is_err());
}
