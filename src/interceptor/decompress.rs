//! `decompress` interceptor (Flumen's own; Flume has no equivalent): undoes what a `compress`
//! interceptor (or any producer writing the same containers, see [`super::codec`]) did, as
//! named by the event's `flumen.codec` header.
//!
//! - No `flumen.codec` header: the event passes untouched.
//! - Decoded: the body is replaced and `flumen.codec` removed.
//! - Not decodable (unknown codec name, corrupt or truncated body, bad checksum, trailing
//!   bytes, or output past `maxDecompressedBytes`): with `onError = deadletter` (default) the
//!   event is reported bad, so it goes to the source's or sink's `errorChannel` (or fails the
//!   batch when there is none); with `onError = passthrough` it goes on unchanged, with the
//!   reason in a `flumen.codec.error` header.
//!
//! Keys: `maxDecompressedBytes` (default 8 MiB, 1..=4 GiB): decoding stops one byte past it,
//! whatever size the container declares, so a compression bomb costs at most that much memory;
//! `onError` (`deadletter` | `passthrough`, default `deadletter`).

use async_trait::async_trait;

use super::codec::{Codec, CodecError, Decompressor, CODEC_ERROR_HEADER, CODEC_HEADER};
use super::{InterceptCtx, Interceptor};
use crate::config::{did_you_mean, Finding, FindingKind, PropReader};
use crate::event::Event;
use crate::rate_limit::RateLimit;

/// Default of `maxDecompressedBytes`: 8 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 8 << 20;
/// Largest accepted `maxDecompressedBytes`: 4 GiB.
pub const MAX_MAX_DECOMPRESSED_BYTES: u64 = 4 << 30;

/// What happens to a body that cannot be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// Report it bad (dead-letter channel, or the batch fails).
    DeadLetter,
    /// Keep it unchanged with a `flumen.codec.error` header.
    Passthrough,
}

/// The decompress interceptor.
pub struct DecompressInterceptor {
    on_error: OnError,
    decompressor: Decompressor,
    warn: RateLimit,
}

impl DecompressInterceptor {
    /// An interceptor refusing output past `max` bytes.
    pub fn new(max: usize, on_error: OnError) -> std::io::Result<Self> {
        Ok(DecompressInterceptor {
            on_error,
            decompressor: Decompressor::new(max)?,
            warn: RateLimit::new(std::time::Duration::from_secs(10)),
        })
    }

    /// Reads `maxDecompressedBytes` and `onError`; `None` (with findings) when invalid.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let max = r.number(
            "maxDecompressedBytes",
            DEFAULT_MAX_DECOMPRESSED_BYTES,
            1,
            MAX_MAX_DECOMPRESSED_BYTES,
        )?;
        let on_error = on_error_from_props(r)?;
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        match DecompressInterceptor::new(max, on_error) {
            Ok(i) => Some(i),
            Err(error) => {
                let key = r.full_key("maxDecompressedBytes");
                r.drop_component(Finding::new(
                    FindingKind::BadValue,
                    None,
                    key,
                    format!("The decompressor cannot be set up: {error}."),
                ));
                None
            }
        }
    }

    fn decode(&mut self, event: &Event) -> Result<Option<Vec<u8>>, CodecError> {
        let Some(name) = event.headers.get(CODEC_HEADER) else {
            return Ok(None);
        };
        let codec =
            Codec::from_name(name.trim()).ok_or_else(|| CodecError::Unknown(name.to_string()))?;
        self.decompressor.decompress(codec, &event.body).map(Some)
    }
}

fn on_error_from_props(r: &mut PropReader<'_>) -> Option<OnError> {
    let Some(prop) = r.raw("onError") else {
        return Some(OnError::DeadLetter);
    };
    let v = prop.value.trim();
    if v.eq_ignore_ascii_case("deadletter") {
        return Some(OnError::DeadLetter);
    }
    if v.eq_ignore_ascii_case("passthrough") {
        return Some(OnError::Passthrough);
    }
    let allowed = ["deadletter", "passthrough"];
    r.drop_component(
        Finding::new(
            FindingKind::BadValue,
            Some(prop.origin.clone()),
            prop.full_key.clone(),
            format!("`{v}` is not an error policy; the interceptor is refused."),
        )
        .expected("deadletter or passthrough")
        .suggest(did_you_mean(v, allowed)),
    );
    None
}

#[async_trait]
impl Interceptor for DecompressInterceptor {
    fn type_name(&self) -> &'static str {
        "decompress"
    }

    fn describe(&self) -> String {
        let policy = match self.on_error {
            OnError::DeadLetter => "deadletter",
            OnError::Passthrough => "passthrough",
        };
        format!(
            "maxDecompressedBytes={} onError={policy}",
            self.decompressor.max()
        )
    }

    async fn intercept(&mut self, events: Vec<Event>, ctx: &mut InterceptCtx) -> Vec<Event> {
        let mut out = Vec::with_capacity(events.len());
        let mut failed = 0u64;
        let mut last_reason = String::new();
        for mut event in events {
            match self.decode(&event) {
                Ok(None) => out.push(event),
                Ok(Some(body)) => {
                    event.body = body.into();
                    event.headers.remove(CODEC_HEADER);
                    out.push(event);
                }
                Err(error) => {
                    let reason = error.to_string();
                    match self.on_error {
                        OnError::DeadLetter => ctx.bad(event, reason),
                        OnError::Passthrough => {
                            failed += 1;
                            last_reason.clone_from(&reason);
                            event
                                .headers
                                .insert(CODEC_ERROR_HEADER.into(), reason.into());
                            out.push(event);
                        }
                    }
                }
            }
        }
        if failed > 0 {
            if let Some(suppressed) = self.warn.check() {
                tracing::warn!(
                    events = failed,
                    suppressed,
                    reason = %last_reason,
                    "Bodies could not be decompressed; passed on with a flumen.codec.error header."
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::interceptor::codec::{Compressor, ALL};
    use crate::interceptor::test_support::{props, run, PREFIX};

    fn packed(codec: Codec, body: &[u8]) -> Event {
        let mut c = Compressor::new(codec, codec.levels().map_or(0, |l| l.0)).expect("c");
        let mut e = Event::new(c.compress(body).expect("compress"));
        e.headers.insert(CODEC_HEADER.into(), codec.name().into());
        e.headers.insert("other".into(), "kept".into());
        e
    }

    #[tokio::test]
    async fn decodes_each_codec_removes_the_header_and_passes_plain_events() {
        let mut i = DecompressInterceptor::new(1 << 20, OnError::DeadLetter).expect("d");
        let mut events: Vec<Event> = ALL.iter().map(|&c| packed(c, b"hello world")).collect();
        events.push(Event::new(&b"plain"[..]));
        let (out, bad) = run(&mut i, events).await;
        assert!(bad.is_empty());
        assert_eq!(out.len(), 5);
        for e in &out[..4] {
            assert_eq!(&e.body[..], b"hello world");
            assert!(!e.headers.contains_key(CODEC_HEADER));
            assert_eq!(e.headers.get("other").map(|v| v.as_str()), Some("kept"));
        }
        assert_eq!(out[4], Event::new(&b"plain"[..]));
    }

    /// 1 GiB of zeros in each codec, built by streaming (never held in memory).
    fn bomb(codec: Codec) -> Vec<u8> {
        const GIB: u64 = 1 << 30;
        match codec {
            // Members concatenate; 1,024 members of 1 MiB of zeros each.
            Codec::Gzip | Codec::Snappy => {
                let mut c = Compressor::new(codec, 9).expect("c");
                let one = c.compress(&vec![0u8; 1 << 20]).expect("compress");
                one.repeat(1024)
            }
            Codec::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("enc");
                std::io::copy(&mut std::io::Read::take(std::io::repeat(0), GIB), &mut enc)
                    .expect("copy");
                enc.finish().expect("finish")
            }
            Codec::Lz4 => {
                let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
                std::io::copy(&mut std::io::Read::take(std::io::repeat(0), GIB), &mut enc)
                    .expect("copy");
                enc.finish().expect("finish")
            }
        }
    }

    #[tokio::test]
    async fn a_gibibyte_bomb_is_refused_at_the_limit_in_every_codec() {
        let mut i = DecompressInterceptor::new(8 << 20, OnError::DeadLetter).expect("d");
        for codec in ALL {
            let body = bomb(codec);
            assert!(
                body.len() < 64 << 20,
                "{codec:?} bomb is {} bytes",
                body.len()
            );
            let mut e = Event::new(body);
            e.headers.insert(CODEC_HEADER.into(), codec.name().into());
            let (out, bad) = run(&mut i, vec![e.clone()]).await;
            assert!(out.is_empty(), "{codec:?}");
            assert_eq!(bad.len(), 1);
            assert_eq!(bad[0].event, e, "the bad event is the original");
            assert!(
                bad[0].reason.contains("maxDecompressedBytes (8388608"),
                "{}",
                bad[0].reason
            );
        }
    }

    #[tokio::test]
    async fn a_flipped_byte_is_a_bad_event_in_every_codec() {
        let body: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 253) as u8).collect();
        for codec in ALL {
            let mut i = DecompressInterceptor::new(1 << 20, OnError::DeadLetter).expect("d");
            let good = packed(codec, &body);
            // Flip a byte in the middle of the payload (past every container header).
            let mut raw = good.body.to_vec();
            let at = raw.len() / 2;
            raw[at] ^= 0x40;
            let mut flipped = good.clone();
            flipped.body = raw.into();
            let (out, bad) = run(&mut i, vec![flipped, good]).await;
            assert_eq!(bad.len(), 1, "{codec:?}");
            assert!(bad[0].reason.contains(codec.name()), "{}", bad[0].reason);
            assert_eq!(out.len(), 1, "the good event of the batch still goes on");
            assert_eq!(&out[0].body[..], &body[..]);
        }
    }

    #[tokio::test]
    async fn passthrough_keeps_the_event_with_an_error_header() {
        let mut i = DecompressInterceptor::new(1 << 20, OnError::Passthrough).expect("d");
        let mut e = Event::new(&b"not gzip at all"[..]);
        e.headers.insert(CODEC_HEADER.into(), "gzip".into());
        let mut unknown = Event::new(&b"x"[..]);
        unknown.headers.insert(CODEC_HEADER.into(), "brotli".into());
        let (out, bad) = run(&mut i, vec![e.clone(), unknown]).await;
        assert!(bad.is_empty());
        assert_eq!(out[0].body, e.body);
        assert_eq!(
            out[0].headers.get(CODEC_HEADER).map(|v| v.as_str()),
            Some("gzip")
        );
        assert!(out[0].headers[CODEC_ERROR_HEADER].starts_with("gzip body is corrupt"));
        assert!(out[1].headers[CODEC_ERROR_HEADER].contains("unknown codec `brotli`"));
    }

    #[test]
    fn python_style_gzip_with_a_file_name_decodes() {
        // gzip(1) writes FNAME and a real mtime; the decoder must accept any valid member.
        let mut enc = flate2::GzBuilder::new()
            .filename("data.txt")
            .mtime(1_700_000_000)
            .write(Vec::new(), flate2::Compression::best());
        enc.write_all(b"named").expect("write");
        let body = enc.finish().expect("finish");
        let mut d = Decompressor::new(100).expect("d");
        assert_eq!(d.decompress(Codec::Gzip, &body).expect("decodes"), b"named");
    }

    fn build(entries: &[(&str, &str)]) -> (Option<DecompressInterceptor>, Vec<Finding>) {
        let p = props(entries);
        let mut r = PropReader::new(&p, PREFIX);
        let i = DecompressInterceptor::from_props(&mut r);
        (i, r.finish())
    }

    #[test]
    fn config_defaults_and_errors_name_the_key() {
        let (i, f) = build(&[]);
        assert_eq!(
            i.expect("valid").describe(),
            "maxDecompressedBytes=8388608 onError=deadletter"
        );
        assert!(f.is_empty());
        let (i, f) = build(&[("onError", "passtrough")]);
        assert!(i.is_none());
        assert_eq!(f[0].key, format!("{PREFIX}.onError"));
        assert_eq!(f[0].suggestion.as_deref(), Some("passthrough"));
        let (i, f) = build(&[("maxDecompressedBytes", "0")]);
        assert!(i.is_none());
        assert_eq!(f[0].key, format!("{PREFIX}.maxDecompressedBytes"));
    }
}
