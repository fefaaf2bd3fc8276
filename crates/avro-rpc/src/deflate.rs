//! `compression-type = deflate` as Flume does it: Netty's zlib encoder and decoder sit in the
//! connection's pipeline, so each direction is one zlib stream for the whole connection
//! (header once), flushed (sync flush) after every frame written — not one stream per frame.

use bytes::BytesMut;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Output grown per inflate step.
const STEP: usize = 64 << 10;

/// The receiving side of a connection's zlib stream.
pub struct Inflater {
    stream: Decompress,
    scratch: Vec<u8>,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater {
            stream: Decompress::new(true),
            scratch: vec![0; STEP],
        }
    }
}

impl Inflater {
    /// Inflates `input` onto `out` until all of it is in or `out` holds `limit` bytes;
    /// returns how much of `input` was used (the caller keeps the rest for later). Fails
    /// when the stream is not zlib.
    pub fn inflate_some(
        &mut self,
        mut input: &[u8],
        out: &mut BytesMut,
        limit: usize,
    ) -> std::io::Result<usize> {
        let total = input.len();
        while out.len() < limit {
            let room = STEP.min(limit - out.len());
            let (before_in, before_out) = (self.stream.total_in(), self.stream.total_out());
            let status = self
                .stream
                .decompress(input, &mut self.scratch[..room], FlushDecompress::Sync)
                .map_err(std::io::Error::other)?;
            let consumed = (self.stream.total_in() - before_in) as usize;
            let produced = (self.stream.total_out() - before_out) as usize;
            out.extend_from_slice(&self.scratch[..produced]);
            input = &input[consumed..];
            if status == Status::StreamEnd {
                return Err(std::io::Error::other("the peer ended its zlib stream"));
            }
            if input.is_empty() && produced < room {
                break;
            }
            if consumed == 0 && produced == 0 {
                return Err(std::io::Error::other("the zlib stream makes no progress"));
            }
        }
        Ok(total - input.len())
    }

    /// Inflates all of `input` onto `out`; fails when `out` would pass `limit` bytes (a
    /// decompression bomb) or the stream is not zlib.
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut BytesMut,
        limit: usize,
    ) -> std::io::Result<()> {
        let used = self.inflate_some(input, out, limit)?;
        if used < input.len() || out.len() >= limit {
            return Err(std::io::Error::other(format!(
                "more than {limit} bytes pending after decompression"
            )));
        }
        Ok(())
    }
}

/// The sending side of a connection's zlib stream.
pub struct Deflater {
    stream: Compress,
}

impl Deflater {
    /// A zlib stream at `level` (0–9).
    pub fn new(level: u32) -> Self {
        Deflater {
            stream: Compress::new(Compression::new(level.min(9)), true),
        }
    }

    /// Compresses `input` onto `out` and sync-flushes, so the peer can inflate all of it now.
    pub fn deflate(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        loop {
            out.reserve(input.len() / 2 + 1024);
            let before_in = self.stream.total_in();
            self.stream
                .compress_vec(input, out, FlushCompress::Sync)
                .map_err(std::io::Error::other)?;
            input = &input[(self.stream.total_in() - before_in) as usize..];
            // The flush is complete once all input is in and the output did not fill up.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_stream_carries_many_flushed_messages() {
        let mut d = Deflater::new(6);
        let mut i = Inflater::default();
        let mut received = BytesMut::new();
        for n in 0..50 {
            let msg = format!("message {n} ").repeat(n + 1);
            let mut wire = Vec::new();
            d.deflate(msg.as_bytes(), &mut wire).expect("deflate");
            let before = received.len();
            i.inflate(&wire, &mut received, 1 << 20).expect("inflate");
            assert_eq!(&received[before..], msg.as_bytes(), "each flush is whole");
        }
    }

    #[test]
    fn inflating_stops_at_the_limit_and_resumes_where_it_stopped() {
        let mut d = Deflater::new(6);
        let message: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        d.deflate(&message, &mut wire).expect("deflate");
        let mut i = Inflater::default();
        let mut out = BytesMut::new();
        let mut rest = &wire[..];
        let mut steps = 0;
        while out.len() < message.len() {
            // Room for 100 KB more each time, as a connection's budget would give.
            let limit = out.len() + 100_000;
            let used = i.inflate_some(rest, &mut out, limit).expect("inflate");
            assert!(out.len() <= message.len());
            rest = &rest[used..];
            steps += 1;
            assert!(steps < 100, "no progress");
        }
        assert_eq!(&out[..], &message[..]);
        assert!(steps >= 3, "stopped at each limit");
    }

    #[test]
    fn a_bomb_stops_at_the_limit_and_garbage_is_an_error() {
        let mut d = Deflater::new(9);
        let mut wire = Vec::new();
        d.deflate(&vec![0u8; 10 << 20], &mut wire).expect("deflate");
        assert!(wire.len() < 100 << 10);
        let mut out = BytesMut::new();
        assert!(Inflater::default()
            .inflate(&wire, &mut out, 1 << 20)
            .is_err());
        assert!(out.len() <= 1 << 20);
        let mut out = BytesMut::new();
        assert!(Inflater::default()
            .inflate(b"definitely not zlib", &mut out, 1 << 20)
            .is_err());
    }
}
