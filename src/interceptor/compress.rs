//! `compress` interceptor (Flumen's own; Flume has no equivalent): compresses each event body
//! and names the codec in the `flumen.codec` header, so a `decompress` interceptor further
//! down (on this agent's sink side, or on another agent) knows what to undo.
//!
//! Keys:
//! - `codec` (default `gzip`): `gzip`, `zstd`, `snappy` (framing format) or `lz4` (frame
//!   format); see [`super::codec`] for the exact containers. An unknown name refuses the
//!   interceptor (and so its owner, as Flume does for a broken chain) with a did-you-mean.
//! - `level`: gzip 0..=9 (default 6), zstd 1..=22 (default 3). snappy and lz4 have no levels:
//!   a `level` given for them is reported and ignored.
//!
//! An event that already carries `flumen.codec` is left as it is: compressing twice would
//! need two headers to undo, and a `decompress` undoes one layer. Headers are never
//! compressed. Compression runs inline on the runtime thread, one batch at a time.

use async_trait::async_trait;

use super::codec::{codec_from_props, Codec, Compressor, CODEC_HEADER};
use super::{InterceptCtx, Interceptor};
use crate::config::{Finding, FindingKind, PropReader};
use crate::event::Event;

/// Default of `codec`.
pub const DEFAULT_CODEC: Codec = Codec::Gzip;

/// The compress interceptor.
pub struct CompressInterceptor {
    codec: Codec,
    level: Option<i32>,
    compressor: Compressor,
}

impl CompressInterceptor {
    /// An interceptor for `codec` at `level` (`None`: the codec's default or none).
    pub fn new(codec: Codec, level: Option<i32>) -> std::io::Result<Self> {
        let level = level.or(codec.levels().map(|l| l.0));
        Ok(CompressInterceptor {
            codec,
            level,
            compressor: Compressor::new(codec, level.unwrap_or(0))?,
        })
    }

    /// Reads `codec` and `level`; `None` (with findings) when either is invalid.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let codec = codec_from_props(r, "codec", DEFAULT_CODEC)?;
        let level = match codec.levels() {
            Some((default, min, max)) => Some(r.number("level", default, min, max)?),
            None => {
                if let Some(prop) = r.raw("level") {
                    r.push(Finding::new(
                        FindingKind::IgnoredKey,
                        Some(prop.origin.clone()),
                        prop.full_key.clone(),
                        format!(
                            "{} has no compression levels; `level` is ignored.",
                            codec.name()
                        ),
                    ));
                }
                None
            }
        };
        match CompressInterceptor::new(codec, level) {
            Ok(i) => Some(i),
            Err(error) => {
                let key = r.full_key("codec");
                let origin = r.raw("codec").map(|p| p.origin.clone());
                r.drop_component(Finding::new(
                    FindingKind::BadValue,
                    origin,
                    key,
                    format!("The {} compressor cannot be set up: {error}.", codec.name()),
                ));
                None
            }
        }
    }
}

#[async_trait]
impl Interceptor for CompressInterceptor {
    fn type_name(&self) -> &'static str {
        "compress"
    }

    fn describe(&self) -> String {
        match self.level {
            Some(level) => format!("codec={} level={level}", self.codec.name()),
            None => format!("codec={}", self.codec.name()),
        }
    }

    async fn intercept(&mut self, events: Vec<Event>, ctx: &mut InterceptCtx) -> Vec<Event> {
        let mut out = Vec::with_capacity(events.len());
        for mut event in events {
            if event.headers.contains_key(CODEC_HEADER) {
                out.push(event);
                continue;
            }
            match self.compressor.compress(&event.body) {
                Ok(packed) => {
                    event.body = packed.into();
                    event
                        .headers
                        .insert(CODEC_HEADER.into(), self.codec.name().into());
                    out.push(event);
                }
                // Writing to memory does not fail; should a codec still refuse, the event is
                // dead-lettered rather than sent on uncompressed under a codec header.
                Err(error) => ctx.bad(
                    event,
                    format!("{} compression failed: {error}", self.codec.name()),
                ),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Props;
    use crate::interceptor::codec::{Decompressor, ALL};
    use crate::interceptor::test_support::{props, run};

    #[tokio::test]
    async fn marks_every_event_and_each_codec_round_trips() {
        for codec in ALL {
            let mut i = CompressInterceptor::new(codec, None).expect("compressor");
            let bodies: Vec<Vec<u8>> = (0..50)
                .map(|n| vec![b'a' + (n % 26) as u8; n * 37])
                .collect();
            let events = bodies.iter().map(|b| Event::new(b.clone())).collect();
            let (out, bad) = run(&mut i, events).await;
            assert!(bad.is_empty());
            let mut d = Decompressor::new(1 << 20).expect("d");
            for (e, body) in out.iter().zip(&bodies) {
                assert_eq!(
                    e.headers.get(CODEC_HEADER).map(|v| v.as_str()),
                    Some(codec.name())
                );
                assert_eq!(&d.decompress(codec, &e.body).expect("decodes"), body);
            }
        }
    }

    #[tokio::test]
    async fn an_event_already_carrying_a_codec_is_left_alone() {
        let mut i = CompressInterceptor::new(Codec::Zstd, None).expect("compressor");
        let mut e = Event::new(&b"already packed"[..]);
        e.headers.insert(CODEC_HEADER.into(), "gzip".into());
        let (out, _) = run(&mut i, vec![e.clone()]).await;
        assert_eq!(out, vec![e]);
    }

    fn build(entries: &[(&str, &str)]) -> (Option<CompressInterceptor>, Vec<Finding>) {
        let p: Props = props(entries);
        let mut r = PropReader::new(&p, crate::interceptor::test_support::PREFIX);
        r.mark_used("type");
        let i = CompressInterceptor::from_props(&mut r);
        (i, r.finish())
    }

    #[test]
    fn config_defaults_to_gzip_level_6() {
        let (i, f) = build(&[]);
        assert_eq!(i.expect("valid").describe(), "codec=gzip level=6");
        assert!(f.is_empty());
    }

    #[test]
    fn an_unknown_codec_is_refused_naming_the_key_with_a_suggestion() {
        let (i, f) = build(&[("codec", "zsdt")]);
        assert!(i.is_none());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].key, "a1.sources.r1.interceptors.z.codec");
        assert_eq!(f[0].suggestion.as_deref(), Some("zstd"));
    }

    #[test]
    fn a_level_out_of_range_is_refused_and_a_level_for_lz4_is_reported() {
        let (i, f) = build(&[("codec", "zstd"), ("level", "23")]);
        assert!(i.is_none());
        assert_eq!(f[0].key, "a1.sources.r1.interceptors.z.level");
        let (i, f) = build(&[("codec", "LZ4"), ("level", "5")]);
        assert_eq!(i.expect("valid").describe(), "codec=lz4");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::IgnoredKey);
    }
}
