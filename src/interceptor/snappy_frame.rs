//! Snappy's framing format (google/snappy `framing_format.txt`), written and read with a reused
//! raw block encoder and decoder, so a body costs no per-event codec buffers.
//!
//! A stream is the stream identifier chunk (`ff 06 00 00 "sNaPpY"`) followed by chunks of a
//! type byte, a 3-byte little-endian length and the data. Data chunks (compressed `0x00`,
//! uncompressed `0x01`) start with the masked CRC-32C of their uncompressed bytes and hold at
//! most 65,536 of them. The writer emits the identifier (also for an empty body), then one
//! chunk per 64 KiB block, uncompressed when compression saves less than 1/8. The reader
//! checks every CRC, accepts repeated identifiers (concatenated streams), skips the
//! skippable chunk types `0x80..=0xfe`, refuses reserved unskippable ones `0x02..=0x7f`, and
//! never produces more than its limit.

use thiserror::Error;

const STREAM_IDENTIFIER: &[u8] = b"\xff\x06\x00\x00sNaPpY";
const MAX_BLOCK: usize = 65_536;

/// Why a snappy stream could not be read.
#[derive(Debug, Error)]
pub enum SnappyError {
    /// The output would pass the limit.
    #[error("output passes the limit")]
    TooLarge,
    /// The stream does not start with the stream identifier.
    #[error("missing stream identifier")]
    NoIdentifier,
    /// A chunk is cut short.
    #[error("truncated chunk")]
    Truncated,
    /// A chunk is malformed (bad identifier, oversized block, reserved type).
    #[error("{0}")]
    Malformed(String),
    /// A chunk's CRC-32C does not match its data.
    #[error("CRC-32C mismatch")]
    Checksum,
    /// The raw block decoder failed.
    #[error("{0}")]
    Block(#[from] snap::Error),
}

fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn chunk_header(kind: u8, len: usize, crc: u32) -> [u8; 8] {
    let len = len as u32;
    let c = crc.to_le_bytes();
    [
        kind,
        len as u8,
        (len >> 8) as u8,
        (len >> 16) as u8,
        c[0],
        c[1],
        c[2],
        c[3],
    ]
}

/// Appends `data` to `out` as one framed stream.
pub fn encode(
    enc: &mut snap::raw::Encoder,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), snap::Error> {
    out.extend_from_slice(STREAM_IDENTIFIER);
    for block in data.chunks(MAX_BLOCK) {
        let crc = masked_crc(block);
        let start = out.len();
        out.resize(start + 8 + snap::raw::max_compress_len(block.len()), 0);
        let n = enc.compress(block, &mut out[start + 8..])?;
        if n >= block.len() - block.len() / 8 {
            out.truncate(start);
            out.extend_from_slice(&chunk_header(0x01, 4 + block.len(), crc));
            out.extend_from_slice(block);
        } else {
            out[start..start + 8].copy_from_slice(&chunk_header(0x00, 4 + n, crc));
            out.truncate(start + 8 + n);
        }
    }
    Ok(())
}

/// Appends the decoded stream `input` to `out`; fails when `out` would pass `max` bytes.
pub fn decode(
    dec: &mut snap::raw::Decoder,
    mut input: &[u8],
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), SnappyError> {
    let mut seen_identifier = false;
    while !input.is_empty() {
        if input.len() < 4 {
            return Err(SnappyError::Truncated);
        }
        let kind = input[0];
        let len = usize::from(input[1]) | usize::from(input[2]) << 8 | usize::from(input[3]) << 16;
        input = &input[4..];
        if input.len() < len {
            return Err(SnappyError::Truncated);
        }
        let (chunk, rest) = input.split_at(len);
        input = rest;
        if kind == 0xff {
            if chunk != &STREAM_IDENTIFIER[4..] {
                return Err(SnappyError::Malformed("bad stream identifier".into()));
            }
            seen_identifier = true;
            continue;
        }
        if !seen_identifier {
            return Err(SnappyError::NoIdentifier);
        }
        match kind {
            0x00 | 0x01 => {
                if chunk.len() < 4 {
                    return Err(SnappyError::Truncated);
                }
                let crc = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                let data = &chunk[4..];
                let start = out.len();
                if kind == 0x00 {
                    let n = snap::raw::decompress_len(data)?;
                    check_block(n, start, max)?;
                    out.resize(start + n, 0);
                    let written = dec.decompress(data, &mut out[start..])?;
                    out.truncate(start + written);
                } else {
                    check_block(data.len(), start, max)?;
                    out.extend_from_slice(data);
                }
                if masked_crc(&out[start..]) != crc {
                    return Err(SnappyError::Checksum);
                }
            }
            0x02..=0x7f => {
                return Err(SnappyError::Malformed(format!(
                    "reserved unskippable chunk type {kind:#04x}"
                )))
            }
            _ => {}
        }
    }
    if seen_identifier {
        Ok(())
    } else {
        Err(SnappyError::NoIdentifier)
    }
}

fn check_block(n: usize, have: usize, max: usize) -> Result<(), SnappyError> {
    if n > MAX_BLOCK {
        return Err(SnappyError::Malformed(format!(
            "chunk of {n} bytes exceeds the 65536-byte block limit"
        )));
    }
    if have + n > max {
        return Err(SnappyError::TooLarge);
    }
    Ok(())
}
