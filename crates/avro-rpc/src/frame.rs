//! Netty framing of Avro IPC (Avro's `NettyTransportCodec`): a frame is a serial number, a
//! count of buffers, then each buffer as its length and bytes; all integers are 32-bit
//! big-endian. A request and its response carry the same serial.
//!
//! The decoder checks every announced count and length against its limit before the bytes
//! arrive, so a client that announces a huge frame is refused at once and never makes the
//! connection buffer grow past the limit.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Most buffers in one frame. Java writes 8 KiB buffers, so this allows frames well past the
/// byte limit; a count above it is garbage.
pub const MAX_BUFFERS: u32 = 1 << 20;

/// One frame: its serial and the concatenation of its buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The serial a response must repeat.
    pub serial: i32,
    /// The buffers, joined.
    pub payload: Bytes,
}

/// Why bytes are not a frame. The connection cannot recover its framing: close it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// A buffer count that is negative or absurd.
    #[error("a frame announces {0} buffers (at most {MAX_BUFFERS})")]
    BadCount(i64),
    /// A negative buffer length.
    #[error("a frame announces a buffer of {0} bytes")]
    BadLength(i64),
    /// More bytes than the limit.
    #[error("a frame of more than {limit} bytes was announced")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// Cuts frames from the front of a buffer of received (decompressed) bytes.
#[derive(Clone, Copy, Debug)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames whose buffers add up to more than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        FrameDecoder { max_frame_bytes }
    }

    /// Removes one whole frame from the front of `buf`; `Ok(None)` while it is incomplete
    /// (nothing is consumed then).
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(layout) = self.layout(buf)? else {
            return Ok(None);
        };
        let mut frame = buf.split_to(layout.end).freeze();
        frame.advance(8);
        let payload = if layout.buffers == 1 {
            frame.slice(4..)
        } else {
            let mut joined = BytesMut::with_capacity(layout.bytes);
            while frame.has_remaining() {
                let len = frame.get_u32() as usize;
                joined.put_slice(&frame[..len]);
                frame.advance(len);
            }
            joined.freeze()
        };
        Ok(Some(Frame {
            serial: layout.serial,
            payload,
        }))
    }

    /// Where the frame at the front of `buf` ends, once all of it is there.
    fn layout(&self, buf: &[u8]) -> Result<Option<Layout>, FrameError> {
        let Some(header) = buf.get(..8) else {
            return Ok(None);
        };
        let serial = i32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let count = i32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if count < 0 || count as u32 > MAX_BUFFERS {
            return Err(FrameError::BadCount(count.into()));
        }
        let mut at = 8usize;
        let mut bytes = 0usize;
        for _ in 0..count {
            let Some(len) = buf.get(at..at + 4) else {
                return Ok(None);
            };
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            if len < 0 {
                return Err(FrameError::BadLength(len.into()));
            }
            bytes += len as usize;
            if bytes > self.max_frame_bytes {
                return Err(FrameError::TooLarge {
                    limit: self.max_frame_bytes,
                });
            }
            at += 4 + len as usize;
            if at > buf.len() {
                return Ok(None);
            }
        }
        Ok(Some(Layout {
            serial,
            buffers: count as u32,
            bytes,
            end: at,
        }))
    }
}

/// A complete frame's shape.
struct Layout {
    serial: i32,
    buffers: u32,
    bytes: usize,
    end: usize,
}

/// Appends a frame of one buffer holding `payload`.
pub fn encode(serial: i32, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(12 + payload.len());
    out.put_i32(serial);
    out.put_i32(1);
    // Payloads are bounded far below 2 GiB by the callers' batch limits.
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(serial: i32, buffers: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        v.put_i32(serial);
        v.put_i32(buffers.len() as i32);
        for b in buffers {
            v.put_i32(b.len() as i32);
            v.put_slice(b);
        }
        v
    }

    #[test]
    fn frames_of_several_buffers_are_joined_and_arrive_byte_by_byte() {
        let decoder = FrameDecoder::new(1 << 20);
        let mut wire = raw(7, &[b"he", b"", b"llo"]);
        let mut one = Vec::new();
        encode(8, b"world", &mut one);
        wire.extend(one);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for byte in wire {
            buf.put_u8(byte);
            while let Some(f) = decoder.decode(&mut buf).expect("valid") {
                frames.push(f);
            }
        }
        assert_eq!(
            frames,
            vec![
                Frame {
                    serial: 7,
                    payload: Bytes::from_static(b"hello")
                },
                Frame {
                    serial: 8,
                    payload: Bytes::from_static(b"world")
                }
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn absurd_counts_and_lengths_are_refused_before_their_bytes_arrive() {
        let decoder = FrameDecoder::new(1000);
        let mut header = BytesMut::new();
        header.put_i32(1);
        header.put_i32(-1);
        assert_eq!(decoder.decode(&mut header), Err(FrameError::BadCount(-1)));
        let mut header = BytesMut::new();
        header.put_i32(1);
        header.put_i32(i32::MAX);
        assert!(matches!(
            decoder.decode(&mut header),
            Err(FrameError::BadCount(_))
        ));
        let mut big = BytesMut::new();
        big.put_i32(1);
        big.put_i32(1);
        big.put_i32(1001);
        assert_eq!(
            decoder.decode(&mut big),
            Err(FrameError::TooLarge { limit: 1000 })
        );
        let mut negative = BytesMut::new();
        negative.put_i32(1);
        negative.put_i32(2);
        negative.put_i32(0);
        negative.put_i32(-5);
        assert_eq!(
            decoder.decode(&mut negative),
            Err(FrameError::BadLength(-5))
        );
    }
}
