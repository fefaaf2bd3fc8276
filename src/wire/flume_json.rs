//! Flume's `JSONHandler` event format, `[{"headers":{"k":"v"},"body":"text"}, ...]`, in UTF-8:
//! the `http` sink's batch body, which the `http` source reads back.
//!
//! JSON strings hold text, so a body that is not valid UTF-8 cannot be carried as is. Such a
//! body is sent base64-encoded (standard alphabet, padded) and the event gets the header
//! [`BODY_ENCODING_HEADER`]` = base64`, replacing any value it had: nothing is lost, the batch
//! is never stuck, and a receiver can restore the bytes: Flumen's `http` source does. A receiver
//! that ignores the header (Flume's `http` source) keeps the base64 text as the body, marked. A UTF-8
//! body is always sent as text, with its headers untouched.

use base64::Engine;

use crate::event::Event;

/// The header that marks a body sent base64-encoded.
pub const BODY_ENCODING_HEADER: &str = "flumen.bodyEncoding";
/// Its value.
pub const BASE64: &str = "base64";

/// About how many bytes `event` takes in a JSON batch: its body with a third more (room for
/// base64 or escapes), its headers quoted, and the object's structure. An estimate, for
/// cutting batches by bytes and sizing buffers, never for a hard limit.
pub fn estimated_len(event: &Event) -> usize {
    let headers: usize = event
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.len() + 6)
        .sum();
    event.body.len() + event.body.len() / 3 + headers + 40
}

/// Appends the JSON array of `events` to `out`; returns how many bodies were base64-encoded.
pub fn encode_batch(events: &[Event], out: &mut Vec<u8>) -> usize {
    let mut encoded = 0;
    out.push(b'[');
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"headers\":{");
        let text = std::str::from_utf8(&event.body).ok();
        let mut first = true;
        let mut entry = |out: &mut Vec<u8>, k: &str, v: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, k);
            out.push(b':');
            write_str(out, v);
        };
        for (k, v) in &event.headers {
            if text.is_none() && k == BODY_ENCODING_HEADER {
                continue;
            }
            entry(out, k, v);
        }
        if text.is_none() {
            entry(out, BODY_ENCODING_HEADER, BASE64);
        }
        out.extend_from_slice(b"},\"body\":");
        match text {
            Some(text) => write_str(out, text),
            None => {
                encoded += 1;
                out.push(b'"');
                let b64 = base64::engine::general_purpose::STANDARD.encode(&event.body);
                out.extend_from_slice(b64.as_bytes());
                out.push(b'"');
            }
        }
        out.push(b'}');
    }
    out.push(b']');
    encoded
}

/// Writes `s` as a JSON string literal.
fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Headers;

    fn event(headers: &[(&str, &str)], body: &[u8]) -> Event {
        let h: Headers = headers
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Event::with_headers(h, body.to_vec())
    }

    fn encode(events: &[Event]) -> (String, usize) {
        let mut out = Vec::new();
        let n = encode_batch(events, &mut out);
        (String::from_utf8(out).expect("JSON is UTF-8"), n)
    }

    #[test]
    fn text_bodies_and_headers_are_escaped_and_round_trip() {
        let events = [
            event(
                &[("host", "web \"1\""), ("n", "1")],
                "h\u{e9}llo\n\t\\ ☃\u{1}".as_bytes(),
            ),
            event(&[], b""),
        ];
        let (json, encoded) = encode(&events);
        assert_eq!(encoded, 0);
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(
            parsed,
            serde_json::json!([
                {"headers": {"host": "web \"1\"", "n": "1"}, "body": "h\u{e9}llo\n\t\\ ☃\u{1}"},
                {"headers": {}, "body": ""}
            ])
        );
    }

    #[test]
    fn a_binary_body_goes_as_marked_base64_and_decodes_to_the_same_bytes() {
        let raw = [0xff_u8, 0x00, 0xc3, 0x28, b'a'];
        let events = [
            event(&[("a", "1"), (BODY_ENCODING_HEADER, "stale")], &raw),
            event(&[], &raw),
            event(&[(BODY_ENCODING_HEADER, "base64")], b"aGk="),
        ];
        let (json, encoded) = encode(&events);
        assert_eq!(encoded, 2);
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        for i in 0..2 {
            let e = &parsed[i];
            assert_eq!(e["headers"][BODY_ENCODING_HEADER], BASE64);
            let body = e["body"].as_str().expect("string body");
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(body)
                .expect("base64");
            assert_eq!(decoded, raw);
        }
        assert_eq!(parsed[0]["headers"]["a"], "1");
        assert_eq!(parsed[0]["headers"].as_object().map(|o| o.len()), Some(2));
        // A text body keeps its headers exactly, marker included.
        assert_eq!(parsed[2]["headers"][BODY_ENCODING_HEADER], "base64");
        assert_eq!(parsed[2]["body"], "aGk=");
    }

    #[test]
    fn an_empty_batch_is_an_empty_array() {
        assert_eq!(encode(&[]), ("[]".to_string(), 0));
    }
}
