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
        let mut input = &call[1 + 1 + "appendBatch".len()..];
        let mut fast_input = input;
        let fast = decode_events(&mut fast_input).expect("decoded");
        let reference = crate::protocol::read_events_with_apache_avro(&mut input).expect("decoded");
        assert!(fast_input.is_empty() && input.is_empty());
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
    let mut input = &wire[..];
    let events = decode_events(&mut input).expect("decoded");
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
        let mut input = garbage;
        assert!(decode_events(&mut input).is_err(), "{what}");
    }
}
