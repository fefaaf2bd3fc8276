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

/// Cuts frames from the front of a buffer of received (decompressed) bytes. It remembers how
/// far it has checked the frame in progress, so a frame of many buffers arriving in many
/// reads is scanned once, not once per read.
#[derive(Clone, Copy, Debug)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
    /// The frame in progress: buffers checked so far and where the next length starts.
    progress: Option<Progress>,
}

#[derive(Clone, Copy, Debug)]
struct Progress {
    serial: i32,
    buffers: u32,
    checked: u32,
    bytes: usize,
    at: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames whose buffers add up to more than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        FrameDecoder {
            max_frame_bytes,
            progress: None,
        }
    }

    /// Removes one whole frame from the front of `buf`; `Ok(None)` while it is incomplete
    /// (nothing is consumed then; call again with the same buffer, grown).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let layout = match self.layout(buf) {
            Ok(Some(layout)) => layout,
            Ok(None) => return Ok(None),
            Err(error) => {
                self.progress = None;
                return Err(error);
            }
        };
        self.progress = None;
        let mut frame = buf.split_to(layout.at).freeze();
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

    /// The frame at the front of `buf` once all of it is there, resuming the scan where the
    /// last call stopped.
    fn layout(&mut self, buf: &[u8]) -> Result<Option<Progress>, FrameError> {
        let mut p = match self.progress {
            Some(p) => p,
            None => {
                let Some(header) = buf.get(..8) else {
                    return Ok(None);
                };
                let serial = i32::from_be_bytes([header[0], header[1], header[2], header[3]]);
                let count = i32::from_be_bytes([header[4], header[5], header[6], header[7]]);
                if count < 0 || count as u32 > MAX_BUFFERS {
                    return Err(FrameError::BadCount(count.into()));
                }
                Progress {
                    serial,
                    buffers: count as u32,
                    checked: 0,
                    bytes: 0,
                    at: 8,
                }
            }
        };
        while p.checked < p.buffers {
            let Some(len) = buf.get(p.at..p.at + 4) else {
                self.progress = Some(p);
                return Ok(None);
            };
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            if len < 0 {
                return Err(FrameError::BadLength(len.into()));
            }
            if p.bytes + len as usize > self.max_frame_bytes {
                return Err(FrameError::TooLarge {
                    limit: self.max_frame_bytes,
                });
            }
            if p.at + 4 + len as usize > buf.len() {
                self.progress = Some(p);
                return Ok(None);
            }
            p.bytes += len as usize;
            p.at += 4 + len as usize;
            p.checked += 1;
        }
        Ok(Some(p))
    }
}

/// Appends a frame of one buffer holding `payload`; payloads past 2 GiB cannot be framed.
pub fn encode(serial: i32, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    let len = i32::try_from(payload.len()).map_err(|_| FrameError::TooLarge {
        limit: i32::MAX as usize,
    })?;
    out.reserve(12 + payload.len());
    out.put_i32(serial);
    out.put_i32(1);
    out.put_i32(len);
    out.put_slice(payload);
    Ok(())
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
        let mut decoder = FrameDecoder::new(1 << 20);
        let mut wire = raw(7, &[b"he", b"", b"llo"]);
        let mut one = Vec::new();
        encode(8, b"world", &mut one).expect("framed");
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
        let mut decoder = FrameDecoder::new(1000);
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
