//! Body codecs shared by the `compress` and `decompress` interceptors.
//!
//! Every codec writes a standard, self-delimiting container that independent libraries read:
//!
//! | `codec` | Format | Read by (Python) |
//! |---|---|---|
//! | `gzip` | RFC 1952 member (CRC-32 trailer) | `gzip.decompress` |
//! | `zstd` | Zstandard frame (RFC 8878) with content size and XXH64 checksum | `zstandard.ZstdDecompressor().decompress` |
//! | `snappy` | Snappy *framing format* (stream identifier, CRC-32C per chunk), not the raw block format | `cramjam.snappy.decompress`, `snappy.StreamDecompressor` |
//! | `lz4` | LZ4 frame format with content size and content checksum | `lz4.frame.decompress` |
//!
//! Snappy's framing format is chosen over the raw block because it carries checksums and
//! decodes as a stream (so the output bound below holds without trusting a declared length).
//!
//! Decoding never trusts a declared size: output is produced through a limit of `max + 1`
//! bytes, so a body that expands past `max` (a compression bomb) is refused after at most
//! `max + 1` bytes were produced, whatever its header claims. Zstandard's window is capped
//! too (see [`zstd_window_log_max`]), so a frame cannot ask for a large history buffer.
//! Concatenated members or frames decode as one stream (as `gzip -d` does); bytes after the
//! last one that do not start another, and an empty body, are errors, never ignored. An LZ4
//! frame cut at a block boundary is noticed when the frame declares its content size or a
//! content checksum (Flumen's and Python's `lz4.frame` do); a frame declaring neither cannot
//! tell (see [`LZ4_SENTINEL`]).
//!
//! Codec state is kept per interceptor where the libraries allow it (the gzip deflater, the
//! zstd contexts, the snappy block coders, see [`super::snappy_frame`]), so compressing a
//! body costs one output allocation; gzip and LZ4 decoding, and LZ4 encoding, build their
//! state per body.

use std::io::{self, Read, Write};

use thiserror::Error;

use crate::config::{did_you_mean, Finding, FindingKind, PropReader};

/// Header naming the codec an event body was compressed with (`gzip`, `zstd`, ...).
pub const CODEC_HEADER: &str = "flumen.codec";
/// Header `decompress` sets (with `onError = passthrough`) on a body it could not decode.
pub const CODEC_ERROR_HEADER: &str = "flumen.codec.error";

/// A compression codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// RFC 1952 gzip.
    Gzip,
    /// Zstandard frames.
    Zstd,
    /// Snappy framing format.
    Snappy,
    /// LZ4 frame format.
    Lz4,
}

/// Every codec, in documentation order.
pub const ALL: [Codec; 4] = [Codec::Gzip, Codec::Zstd, Codec::Snappy, Codec::Lz4];

impl Codec {
    /// The name used in config and in the [`CODEC_HEADER`] value.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
        }
    }

    /// The codec with this name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Codec> {
        ALL.into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// `(default, min, max)` of `level`, for codecs that have levels.
    pub fn levels(self) -> Option<(i32, i32, i32)> {
        match self {
            Codec::Gzip => Some((6, 0, 9)),
            Codec::Zstd => Some((3, 1, 22)),
            Codec::Snappy | Codec::Lz4 => None,
        }
    }
}

/// Why a body could not be decoded.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The header names no codec Flumen knows.
    #[error("unknown codec `{0}` in header {CODEC_HEADER}")]
    Unknown(String),
    /// The body expands past the configured limit.
    #[error("{codec} body decompresses to more than maxDecompressedBytes ({limit} bytes)")]
    TooLarge {
        /// The codec.
        codec: &'static str,
        /// The configured limit.
        limit: usize,
    },
    /// The body is not valid for its codec (truncated, bad checksum, trailing garbage, ...).
    #[error("{codec} body is corrupt: {source}")]
    Corrupt {
        /// The codec.
        codec: &'static str,
        /// What the decoder said.
        source: io::Error,
    },
}

/// A compressor that keeps its codec state between events (one per interceptor), so a body
/// costs one output allocation. gzip is written as one RFC 1952 member (no name, mtime 0, OS
/// "unknown") around a reused raw deflate stream.
pub struct Compressor {
    codec: Codec,
    level: i32,
    deflate: Option<flate2::Compress>,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    snappy: snap::raw::Encoder,
}

impl Compressor {
    /// A compressor for `codec` at `level` (ignored by codecs without levels).
    pub fn new(codec: Codec, level: i32) -> io::Result<Self> {
        let deflate = (codec == Codec::Gzip).then(|| {
            flate2::Compress::new(flate2::Compression::new(level.clamp(0, 9) as u32), false)
        });
        let zstd = match codec {
            Codec::Zstd => {
                let mut c = zstd::bulk::Compressor::new(level)?;
                c.include_checksum(true)?;
                c.include_contentsize(true)?;
                Some(c)
            }
            _ => None,
        };
        Ok(Compressor {
            codec,
            level,
            deflate,
            zstd,
            snappy: snap::raw::Encoder::new(),
        })
    }

    /// Compresses `data` into one self-contained member, frame or stream.
    pub fn compress(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        match self.codec {
            Codec::Gzip => self.gzip(data),
            Codec::Zstd => match self.zstd.as_mut() {
                Some(c) => c.compress(data),
                None => Err(io::Error::other("zstd context missing")),
            },
            Codec::Snappy => {
                let mut out = Vec::with_capacity(32 + snap::raw::max_compress_len(data.len()));
                crate::interceptor::snappy_frame::encode(&mut self.snappy, data, &mut out)
                    .map_err(io::Error::other)?;
                Ok(out)
            }
            Codec::Lz4 => {
                let info = lz4_flex::frame::FrameInfo::new()
                    .content_size(Some(data.len() as u64))
                    .content_checksum(true);
                let out = Vec::with_capacity(data.len() / 2 + 64);
                let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
                enc.write_all(data)?;
                enc.finish().map_err(io::Error::other)
            }
        }
    }

    fn gzip(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        let Some(deflate) = self.deflate.as_mut() else {
            return Err(io::Error::other("deflate state missing"));
        };
        deflate.reset();
        let xfl = match self.level {
            9 => 2,
            1 => 4,
            _ => 0,
        };
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]);
        loop {
            let consumed = deflate.total_in() as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let status = deflate
                .compress_vec(&data[consumed..], &mut out, flate2::FlushCompress::Finish)
                .map_err(io::Error::other)?;
            if status == flate2::Status::StreamEnd {
                break;
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        Ok(out)
    }
}

/// A decompressor with an output limit; keeps the zstd and snappy state between events.
/// gzip and LZ4 build their (small) decoder state per body.
pub struct Decompressor {
    max: usize,
    zstd: zstd::zstd_safe::DCtx<'static>,
    snappy: snap::raw::Decoder,
}

impl Decompressor {
    /// A decompressor refusing output past `max` bytes.
    pub fn new(max: usize) -> io::Result<Self> {
        let mut zstd = zstd::zstd_safe::DCtx::try_create()
            .ok_or_else(|| io::Error::other("cannot allocate a zstd context"))?;
        zstd.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(
            zstd_window_log_max(max),
        ))
        .map_err(|code| io::Error::other(zstd::zstd_safe::get_error_name(code)))?;
        Ok(Decompressor {
            max,
            zstd,
            snappy: snap::raw::Decoder::new(),
        })
    }

    /// The output limit.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Decodes `body` as `codec`, producing at most `max` bytes.
    pub fn decompress(&mut self, codec: Codec, body: &[u8]) -> Result<Vec<u8>, CodecError> {
        if body.is_empty() {
            return Err(CodecError::Corrupt {
                codec: codec.name(),
                source: io::Error::new(io::ErrorKind::UnexpectedEof, "the body is empty"),
            });
        }
        let max = self.max;
        match codec {
            Codec::Gzip => read_bounded(codec, flate2::read::MultiGzDecoder::new(body), max),
            Codec::Zstd => {
                let dec = zstd::stream::read::Decoder::with_context(body, &mut self.zstd);
                read_bounded(codec, dec, max)
            }
            Codec::Snappy => {
                let mut out = Vec::new();
                use crate::interceptor::snappy_frame::{decode, SnappyError};
                match decode(&mut self.snappy, body, max, &mut out) {
                    Ok(()) => Ok(out),
                    Err(SnappyError::TooLarge) => Err(CodecError::TooLarge {
                        codec: codec.name(),
                        limit: max,
                    }),
                    Err(e) => Err(CodecError::Corrupt {
                        codec: codec.name(),
                        source: io::Error::new(io::ErrorKind::InvalidData, e),
                    }),
                }
            }
            Codec::Lz4 => read_lz4(body, max),
        }
    }
}

/// Four zero bytes appended to an LZ4 body: read where a block header is due (a frame cut at
/// a block boundary) it is an end mark, which then fails the frame's content size or checksum
/// check; read where a frame header is due it is a clean end of input.
const LZ4_SENTINEL: [u8; 4] = [0; 4];

/// LZ4 frames through `lz4_flex`, whose reader reports end-of-input after each frame and
/// treats a frame cut at a block boundary as complete: the reader is asked again until it
/// yields nothing twice in a row (so every frame, and any trailing garbage, is seen), and the
/// input ends with [`LZ4_SENTINEL`] (so a cut frame is noticed when it declares its size or
/// checksum, as Flumen's and Python's `lz4.frame` do by default).
fn read_lz4(body: &[u8], max: usize) -> Result<Vec<u8>, CodecError> {
    let codec = Codec::Lz4;
    let corrupt = |source| CodecError::Corrupt {
        codec: codec.name(),
        source,
    };
    let mut dec = lz4_flex::frame::FrameDecoder::new(body.chain(&LZ4_SENTINEL[..]));
    let limit = (max as u64).saturating_add(1);
    let mut out = Vec::new();
    let mut idle = 0;
    while idle < 2 {
        let before = out.len();
        let room = limit.saturating_sub(out.len() as u64);
        (&mut dec)
            .take(room)
            .read_to_end(&mut out)
            .map_err(corrupt)?;
        if out.len() > max {
            return Err(CodecError::TooLarge {
                codec: codec.name(),
                limit: max,
            });
        }
        idle = if out.len() == before { idle + 1 } else { 0 };
    }
    Ok(out)
}

/// The largest zstd window (log2 bytes) accepted when output is capped at `max` bytes: a
/// window larger than the output is never needed, except by streaming encoders that did not
/// know the content size, so the cap is `log2(max)` rounded up, kept within 2^20..2^27
/// (2^27 is libzstd's own default cap).
pub fn zstd_window_log_max(max: usize) -> u32 {
    let log = usize::BITS - max.saturating_sub(1).leading_zeros();
    log.clamp(20, 27)
}

/// Reads `reader` to its end, refusing output past `max` bytes without producing more than
/// `max + 1` of them.
fn read_bounded(codec: Codec, reader: impl Read, max: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let limit = (max as u64).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|source| CodecError::Corrupt {
            codec: codec.name(),
            source,
        })?;
    if out.len() > max {
        return Err(CodecError::TooLarge {
            codec: codec.name(),
            limit: max,
        });
    }
    Ok(out)
}

/// Reads `codec` (default `default`): an unknown name drops the interceptor with a finding
/// naming the key and the closest codec.
pub fn codec_from_props(r: &mut PropReader<'_>, key: &str, default: Codec) -> Option<Codec> {
    let Some(prop) = r.raw(key) else {
        return Some(default);
    };
    let v = prop.value.trim();
    if let Some(c) = Codec::from_name(v) {
        return Some(c);
    }
    let names = ALL.map(Codec::name);
    r.drop_component(
        Finding::new(
            FindingKind::BadValue,
            Some(prop.origin.clone()),
            prop.full_key.clone(),
            format!("`{v}` is not a codec Flumen knows; the interceptor is refused."),
        )
        .expected(format!("one of {}", names.join(", ")))
        .suggest(did_you_mean(v, names)),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips_empty_small_and_large_bodies() {
        for codec in ALL {
            let level = codec.levels().map_or(0, |l| l.0);
            let mut c = Compressor::new(codec, level).expect("compressor");
            for body in [Vec::new(), b"x".to_vec(), sample()] {
                let packed = c.compress(&body).expect("compress");
                let back = Decompressor::new(1 << 20)
                    .expect("d")
                    .decompress(codec, &packed)
                    .expect("decompress");
                assert_eq!(back, body, "{codec:?}");
            }
        }
    }

    #[test]
    fn output_of_exactly_the_limit_passes_and_one_more_byte_is_refused() {
        for codec in ALL {
            let mut c = Compressor::new(codec, codec.levels().map_or(0, |l| l.0)).expect("c");
            let packed = c.compress(&[7u8; 1000]).expect("compress");
            let mut fits = Decompressor::new(1000).expect("d");
            assert_eq!(fits.decompress(codec, &packed).expect("fits").len(), 1000);
            let mut short = Decompressor::new(999).expect("d");
            let err = short.decompress(codec, &packed).expect_err("too large");
            assert!(
                matches!(err, CodecError::TooLarge { limit: 999, .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn trailing_garbage_and_truncation_are_corrupt() {
        for codec in ALL {
            let mut c = Compressor::new(codec, codec.levels().map_or(0, |l| l.0)).expect("c");
            let packed = c.compress(&sample()).expect("compress");
            let mut garbage = packed.clone();
            garbage.extend_from_slice(b"garbage!");
            let mut d = Decompressor::new(1 << 20).expect("d");
            assert!(d.decompress(codec, &garbage).is_err(), "{codec:?}");
            let cut = &packed[..packed.len() - 3];
            assert!(d.decompress(codec, cut).is_err(), "{codec:?}");
            // The reused state is not poisoned by the failures.
            assert_eq!(d.decompress(codec, &packed).expect("valid"), sample());
        }
    }

    #[test]
    fn concatenated_members_decode_as_one_stream_and_an_empty_body_is_corrupt() {
        for codec in ALL {
            let mut c = Compressor::new(codec, codec.levels().map_or(0, |l| l.0)).expect("c");
            let mut two = c.compress(b"first ").expect("compress");
            two.extend(c.compress(b"second").expect("compress"));
            let mut d = Decompressor::new(100).expect("d");
            assert_eq!(d.decompress(codec, &two).expect("decodes"), b"first second");
            assert!(d.decompress(codec, b"").is_err(), "{codec:?}");
        }
    }

    #[test]
    fn an_lz4_frame_cut_at_a_block_boundary_is_corrupt() {
        // Blocks of 64 KiB: cut right after the first block (magic 4 + descriptor 11 + block).
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let mut c = Compressor::new(Codec::Lz4, 0).expect("c");
        let packed = c.compress(&data).expect("compress");
        let first = u32::from_le_bytes([packed[15], packed[16], packed[17], packed[18]]);
        let end = 15 + 4 + (first & 0x7fff_ffff) as usize;
        let mut d = Decompressor::new(1 << 20).expect("d");
        let err = d
            .decompress(Codec::Lz4, &packed[..end])
            .expect_err("cut frame");
        assert!(matches!(err, CodecError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn window_cap_follows_the_limit() {
        assert_eq!(zstd_window_log_max(8 << 20), 23);
        assert_eq!(zstd_window_log_max((8 << 20) + 1), 24);
        assert_eq!(zstd_window_log_max(1), 20);
        assert_eq!(zstd_window_log_max(usize::MAX), 27);
    }
}
