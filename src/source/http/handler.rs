//! Request handlers of the `http` source: they turn one request body into a batch of events.
//!
//! - `JSONHandler` (`org.apache.flume.source.http.JSONHandler`, the default): the body is a JSON
//!   array of `{"headers": {...}, "body": "..."}` objects, decoded with the charset of the
//!   `Content-Type` (UTF-8 when absent; UTF-16 and UTF-32 accepted, as in Flume). Each body
//!   string is encoded back with that charset (UTF-16 bodies start with a big-endian BOM, as
//!   Java's `String.getBytes("UTF-16")` writes them).
//! - `BlobHandler` (`org.apache.flume.sink.solr.morphline.BlobHandler`): the whole body is one
//!   event, truncated at `handler.maxBlobLength` bytes; its headers are the query parameters
//!   (first value of each) plus `Content-Type` when the request has one.
//! - `BLOBHandler` (`org.apache.flume.source.http.BLOBHandler`): the whole body is one event;
//!   headers are the query parameters; `handler.mandatoryParameters` (comma-separated) must all
//!   be present.
//!
//! A Flumen extension: an event whose headers say `flumen.bodyEncoding: base64` (what Flumen's
//! `http` sink sends for a body that is not UTF-8) has its body decoded from base64 and the
//! header removed, so bytes cross an http sink → http source hop unchanged; a body that is not
//! valid base64 under that header rejects the request (400) naming the event.
//!
//! JSON details, as Flume's Gson reading does: a missing or `null` `headers`/`body` gives no
//! headers / an empty body; other members of an event object are ignored; numbers and
//! booleans as header values or bodies become their text; a header key repeated within one
//! event is an error; an object or array where a string belongs is an error.

use std::fmt;

use base64::Engine;
use bytes::Bytes;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::event::{Event, Headers};
use crate::wire::flume_json::{BASE64, BODY_ENCODING_HEADER};

/// Why a request body could not be turned into events.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The request is malformed (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// The `Content-Type` names a charset the handler does not support (HTTP 415).
    #[error("unsupported charset `{0}`: the JSON handler supports UTF-8, UTF-16 and UTF-32")]
    UnsupportedCharset(String),
}

/// A configured request handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handler {
    /// Flume's `JSONHandler`.
    Json,
    /// One event per request; see [`BlobOptions`].
    Blob(BlobOptions),
}

/// Options of the blob handlers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobOptions {
    /// `handler.maxBlobLength` (morphline `BlobHandler`); `None` for the core `BLOBHandler`,
    /// which keeps the whole body.
    pub max_blob_length: Option<usize>,
    /// Whether the request's `Content-Type` becomes a `Content-Type` header (morphline).
    pub content_type_header: bool,
    /// `handler.mandatoryParameters` (core `BLOBHandler`): parameters every request must have.
    pub mandatory: Vec<String>,
}

/// The parts of a request a handler looks at.
pub struct RequestInfo<'a> {
    /// The `Content-Type` header, if any and readable.
    pub content_type: Option<&'a str>,
    /// The raw query string, if any.
    pub query: Option<&'a str>,
}

impl Handler {
    /// Turns a whole request body into events.
    pub fn decode(&self, req: &RequestInfo<'_>, body: Bytes) -> Result<Vec<Event>, DecodeError> {
        match self {
            Handler::Json => decode_json(req.content_type, &body),
            Handler::Blob(opts) => decode_blob(opts, req, body),
        }
    }
}

/// The charsets of Flume's JSON handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Charset {
    Utf8,
    Utf16,
    Utf32,
}

fn charset_of(content_type: Option<&str>) -> Result<Charset, DecodeError> {
    let Some(ct) = content_type else {
        return Ok(Charset::Utf8);
    };
    let param = ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"'))
    });
    match param {
        None => Ok(Charset::Utf8),
        Some(c) if c.eq_ignore_ascii_case("utf-8") => Ok(Charset::Utf8),
        Some(c) if c.eq_ignore_ascii_case("utf-16") => Ok(Charset::Utf16),
        Some(c) if c.eq_ignore_ascii_case("utf-32") => Ok(Charset::Utf32),
        Some(c) => Err(DecodeError::UnsupportedCharset(c.to_string())),
    }
}

fn decode_json(content_type: Option<&str>, body: &[u8]) -> Result<Vec<Event>, DecodeError> {
    let charset = charset_of(content_type)?;
    let text;
    let utf8: &[u8] = match charset {
        Charset::Utf8 => body,
        Charset::Utf16 => {
            text = utf16_to_string(body)?;
            text.as_bytes()
        }
        Charset::Utf32 => {
            text = utf32_to_string(body)?;
            text.as_bytes()
        }
    };
    if utf8.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::BadRequest(
            "the request body is empty; expected a JSON array of events".into(),
        ));
    }
    let batch: JsonBatch = serde_json::from_slice(utf8)
        .map_err(|e| DecodeError::BadRequest(format!("invalid JSON event batch: {e}")))?;
    batch
        .0
        .into_iter()
        .enumerate()
        .map(|(i, (mut headers, body))| {
            if headers
                .get(BODY_ENCODING_HEADER)
                .is_some_and(|v| v.as_str() == BASE64)
            {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(body.as_bytes())
                    .map_err(|e| {
                        DecodeError::BadRequest(format!(
                            "event {i}: `{BODY_ENCODING_HEADER}: {BASE64}` but the body is not base64: {e}"
                        ))
                    })?;
                headers.remove(BODY_ENCODING_HEADER);
                return Ok(Event::with_headers(headers, bytes));
            }
            Ok(Event::with_headers(headers, encode(charset, body)))
        })
        .collect()
}

fn utf16_to_string(body: &[u8]) -> Result<String, DecodeError> {
    if !body.len().is_multiple_of(2) {
        return Err(DecodeError::BadRequest(
            "the UTF-16 body has an odd number of bytes".into(),
        ));
    }
    let (little, start) = match body {
        [0xFF, 0xFE, ..] => (true, 2),
        [0xFE, 0xFF, ..] => (false, 2),
        _ => (false, 0),
    };
    let units = body[start..].chunks_exact(2).map(|c| {
        let pair = [c[0], c[1]];
        if little {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        }
    });
    Ok(char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect())
}

fn utf32_to_string(body: &[u8]) -> Result<String, DecodeError> {
    if !body.len().is_multiple_of(4) {
        return Err(DecodeError::BadRequest(
            "the UTF-32 body's length is not a multiple of 4 bytes".into(),
        ));
    }
    let (little, start) = match body {
        [0xFF, 0xFE, 0, 0, ..] => (true, 4),
        [0, 0, 0xFE, 0xFF, ..] => (false, 4),
        _ => (false, 0),
    };
    Ok(body[start..]
        .chunks_exact(4)
        .map(|c| {
            let quad = [c[0], c[1], c[2], c[3]];
            let v = if little {
                u32::from_le_bytes(quad)
            } else {
                u32::from_be_bytes(quad)
            };
            char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER)
        })
        .collect())
}

/// Encodes a body string as Java's `String.getBytes(charset)` does.
fn encode(charset: Charset, body: String) -> Bytes {
    match charset {
        Charset::Utf8 => Bytes::from(body),
        Charset::Utf16 if body.is_empty() => Bytes::new(),
        Charset::Utf16 => {
            let mut out = Vec::with_capacity(2 + body.len() * 2);
            out.extend_from_slice(&[0xFE, 0xFF]);
            for unit in body.encode_utf16() {
                out.extend_from_slice(&unit.to_be_bytes());
            }
            Bytes::from(out)
        }
        Charset::Utf32 => Bytes::from(
            body.chars()
                .flat_map(|c| u32::from(c).to_be_bytes())
                .collect::<Vec<u8>>(),
        ),
    }
}

/// A whole JSON batch: `(headers, body)` per event.
struct JsonBatch(Vec<(Headers, String)>);

impl<'de> serde::Deserialize<'de> for JsonBatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BatchVisitor;
        impl<'de> Visitor<'de> for BatchVisitor {
            type Value = JsonBatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON array of events")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonBatch, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(JsonEvent(h, b)) = seq.next_element()? {
                    out.push((h, b));
                }
                Ok(JsonBatch(out))
            }
        }
        d.deserialize_seq(BatchVisitor)
    }
}

struct JsonEvent(Headers, String);

impl<'de> serde::Deserialize<'de> for JsonEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EventVisitor;
        impl<'de> Visitor<'de> for EventVisitor {
            type Value = JsonEvent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event object with `headers` and `body`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonEvent, A::Error> {
                let mut headers = Headers::new();
                let mut body = String::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "headers" => headers = map.next_value::<JsonHeaders>()?.0,
                        "body" => body = map.next_value::<Scalar>()?.0.unwrap_or_default(),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(JsonEvent(headers, body))
            }
        }
        d.deserialize_map(EventVisitor)
    }
}

/// An event's header map; `null` means none.
struct JsonHeaders(Headers);

impl<'de> serde::Deserialize<'de> for JsonHeaders {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HeadersVisitor;
        impl<'de> Visitor<'de> for HeadersVisitor {
            type Value = JsonHeaders;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of header names to strings")
            }
            fn visit_unit<E: de::Error>(self) -> Result<JsonHeaders, E> {
                Ok(JsonHeaders(Headers::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonHeaders, A::Error> {
                let mut headers = Headers::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<Scalar>()?;
                    if headers.contains_key(key.as_str()) {
                        return Err(de::Error::custom(format!("duplicate header `{key}`")));
                    }
                    // A null value has no meaning in a string map: the header is left out.
                    if let Some(v) = value.0 {
                        headers.insert(key.into(), v.into());
                    }
                }
                Ok(JsonHeaders(headers))
            }
        }
        d.deserialize_any(HeadersVisitor)
    }
}

/// A string, number or boolean as text; `null` as `None`.
struct Scalar(Option<String>);

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(Some(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

fn decode_blob(
    opts: &BlobOptions,
    req: &RequestInfo<'_>,
    body: Bytes,
) -> Result<Vec<Event>, DecodeError> {
    let mut headers = Headers::new();
    if opts.content_type_header {
        if let Some(ct) = req.content_type {
            headers.insert("Content-Type".into(), ct.into());
        }
    }
    for (k, v) in query_params(req.query.unwrap_or("")) {
        // Servlet `getParameter`: the first value of a repeated parameter wins.
        if !headers.contains_key(&k) {
            headers.insert(k.into(), v.into());
        }
    }
    if let Some(missing) = opts
        .mandatory
        .iter()
        .find(|m| !headers.contains_key(m.as_str()))
    {
        return Err(DecodeError::BadRequest(format!(
            "the request lacks the mandatory parameter `{missing}`"
        )));
    }
    let body = match opts.max_blob_length {
        Some(max) if body.len() > max => body.slice(..max),
        _ => body,
    };
    Ok(vec![Event::with_headers(headers, body)])
}

/// Splits an `application/x-www-form-urlencoded` query into decoded `(name, value)` pairs.
pub fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

/// Decodes `+` and `%XX` escapes; invalid escapes are kept as written, invalid UTF-8 replaced.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(ct: Option<&str>, body: &[u8]) -> Result<Vec<Event>, DecodeError> {
        let req = RequestInfo {
            content_type: ct,
            query: None,
        };
        Handler::Json.decode(&req, Bytes::copy_from_slice(body))
    }

    #[test]
    fn json_batch_keeps_headers_bodies_unicode_and_quotes() {
        let events = json(
            None,
            br#"[{"headers":{"a":"b","n":5,"t":true,"z":null},"body":"h\u00e9 \"q\" \u2603"},{"body":"x","extra":[1]},{"headers":null}]"#,
        )
        .expect("valid batch");
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].headers.get("a").map(|v| v.as_str()), Some("b"));
        assert_eq!(events[0].headers.get("n").map(|v| v.as_str()), Some("5"));
        assert_eq!(events[0].headers.get("t").map(|v| v.as_str()), Some("true"));
        assert!(!events[0].headers.contains_key("z"));
        assert_eq!(&events[0].body[..], "hé \"q\" ☃".as_bytes());
        assert!(events[1].headers.is_empty());
        assert!(events[2].body.is_empty());
    }

    #[test]
    fn bodies_the_http_sink_base64_encoded_come_back_as_bytes() {
        let mut headers = Headers::default();
        headers.insert("k".into(), "v".into());
        let binary = Event::with_headers(headers, vec![0u8, 0xff, 0xfe, b'a']);
        let text = Event::new("plain");
        let mut wire = Vec::new();
        let encoded = crate::wire::flume_json::encode_batch(&[binary, text], &mut wire);
        assert_eq!(encoded, 1);
        let events = json(None, &wire).expect("the sink's batch");
        assert_eq!(&events[0].body[..], &[0u8, 0xff, 0xfe, b'a']);
        assert_eq!(events[0].headers.get("k").map(|v| v.as_str()), Some("v"));
        assert!(!events[0].headers.contains_key(BODY_ENCODING_HEADER));
        assert_eq!(&events[1].body[..], b"plain");
        let bad = br#"[{"headers":{"flumen.bodyEncoding":"base64"},"body":"not base64!"}]"#;
        match json(None, bad) {
            Err(DecodeError::BadRequest(m)) => assert!(m.contains("event 0"), "{m}"),
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn malformed_batches_are_bad_requests() {
        for body in [
            &b"{\"headers\":{},\"body\":\"x\"}"[..],
            b"[{\"body\":{}}]",
            b"[{\"headers\":{\"a\":\"1\",\"a\":\"2\"}}]",
            b"[{\"body\":\"x\"}] trailing",
            b"[1]",
            b"not json",
            b"  ",
        ] {
            assert!(
                matches!(json(None, body), Err(DecodeError::BadRequest(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(json(None, b"[]").expect("empty batch").is_empty());
    }

    #[test]
    fn charsets_follow_the_content_type() {
        let text = r#"[{"body":"é"}]"#;
        let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let events = json(Some("application/json; charset=UTF-16"), &utf16).expect("utf-16");
        assert_eq!(&events[0].body[..], &[0xFE, 0xFF, 0x00, 0xE9]);
        let utf32: Vec<u8> = text
            .chars()
            .flat_map(|c| (c as u32).to_be_bytes())
            .collect();
        let events = json(Some("application/json;charset=\"utf-32\""), &utf32).expect("utf-32");
        assert_eq!(&events[0].body[..], &[0, 0, 0, 0xE9]);
        assert!(matches!(
            json(Some("application/json; charset=ISO-8859-1"), b"[]"),
            Err(DecodeError::UnsupportedCharset(_))
        ));
    }

    #[test]
    fn blob_takes_query_parameters_and_truncates() {
        let opts = BlobOptions {
            max_blob_length: Some(4),
            content_type_header: true,
            mandatory: vec![],
        };
        let req = RequestInfo {
            content_type: Some("application/octet-stream"),
            query: Some("resourceName=a+b%2Fc.avro&x=1&x=2&flag"),
        };
        let events = Handler::Blob(opts)
            .decode(&req, Bytes::from_static(b"123456"))
            .expect("blob");
        let h = &events[0].headers;
        assert_eq!(
            h.get("resourceName").map(|v| v.as_str()),
            Some("a b/c.avro")
        );
        assert_eq!(h.get("x").map(|v| v.as_str()), Some("1"));
        assert_eq!(h.get("flag").map(|v| v.as_str()), Some(""));
        assert_eq!(
            h.get("Content-Type").map(|v| v.as_str()),
            Some("application/octet-stream")
        );
        assert_eq!(&events[0].body[..], b"1234");
    }

    #[test]
    fn blob_checks_mandatory_parameters() {
        let opts = BlobOptions {
            max_blob_length: None,
            content_type_header: false,
            mandatory: vec!["id".into()],
        };
        let req = RequestInfo {
            content_type: None,
            query: Some("other=1"),
        };
        let handler = Handler::Blob(opts);
        assert!(handler.decode(&req, Bytes::new()).is_err());
        let req = RequestInfo {
            content_type: None,
            query: Some("id=%zz"),
        };
        let events = handler.decode(&req, Bytes::new()).expect("has id");
        assert_eq!(events[0].headers.get("id").map(|v| v.as_str()), Some("%zz"));
    }
}
