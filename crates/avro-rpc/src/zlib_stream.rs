//! The zlib stream as a layer of the connection, for TLS with deflate: Flume 1.11 puts the
//! zlib codec between the socket and TLS, so on the wire a zlib stream carries TLS records.
//! [`ZlibStream`] wraps the socket; TLS runs over it. Each write is compressed and
//! sync-flushed as Netty's encoder does per message; reads inflate only as much as the
//! reader asks for, so a small compressed input can never fill memory.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::deflate::{Deflater, Inflater};

/// Compressed bytes read from the socket per read.
const READ_CHUNK: usize = 16 << 10;
/// Compressed bytes a writer may leave unsent before writes wait.
const MAX_PENDING_OUT: usize = 1 << 20;

/// A zlib stream in each direction over `inner`.
pub struct ZlibStream<S> {
    inner: S,
    inflater: Inflater,
    deflater: Deflater,
    /// Compressed bytes read and not inflated yet.
    raw: BytesMut,
    /// Inflated bytes not read yet.
    plain: BytesMut,
    /// Whether the inflater may hold output it could not give for lack of room.
    inflate_more: bool,
    /// Compressed bytes not written yet.
    out: BytesMut,
    eof: bool,
}

impl<S> ZlibStream<S> {
    /// Compresses at `level` what is written to `inner`, inflates what is read from it.
    pub fn new(inner: S, level: u32) -> Self {
        ZlibStream {
            inner,
            inflater: Inflater::default(),
            deflater: Deflater::new(level),
            raw: BytesMut::new(),
            plain: BytesMut::new(),
            inflate_more: false,
            out: BytesMut::new(),
            eof: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ZlibStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.plain.is_empty() {
                let n = this.plain.len().min(buf.remaining());
                buf.put_slice(&this.plain[..n]);
                this.plain.advance(n);
                return Poll::Ready(Ok(()));
            }
            if !this.raw.is_empty() || this.inflate_more {
                // Inflate at most what the reader has room for.
                let limit = buf.remaining().max(1);
                let used = this
                    .inflater
                    .inflate_some(&this.raw, &mut this.plain, limit)?;
                this.raw.advance(used);
                this.inflate_more = this.plain.len() >= limit;
                if !this.plain.is_empty() {
                    continue;
                }
                if this.raw.is_empty() && !this.inflate_more && this.eof {
                    return Poll::Ready(Ok(()));
                }
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                this.eof = true;
            } else {
                this.raw.extend_from_slice(read.filled());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> ZlibStream<S> {
    /// Writes out compressed bytes until none are left.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ZlibStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.out.len() >= MAX_PENDING_OUT {
            ready!(this.poll_drain(cx))?;
        }
        let mut compressed = Vec::with_capacity(buf.len() / 2 + 64);
        this.deflater.deflate(buf, &mut compressed)?;
        this.out.extend_from_slice(&compressed);
        // Send what the socket takes now; the rest goes on the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn messages_cross_one_stream_each_way_and_reads_take_what_they_ask() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (mut a, mut b) = (ZlibStream::new(a, 6), ZlibStream::new(b, 9));
        for n in 0..20 {
            let message = format!("message {n} ").repeat(n * 50 + 1);
            a.write_all(message.as_bytes()).await.expect("write");
            a.flush().await.expect("flush");
            let mut got = vec![0u8; message.len()];
            // Small reads: the inflater gives at most what each read has room for.
            let mut at = 0;
            while at < got.len() {
                let end = (at + 7).min(got.len());
                let n = b.read(&mut got[at..end]).await.expect("read");
                assert!(n > 0, "no data");
                at += n;
            }
            assert_eq!(got, message.as_bytes());
        }
        b.write_all(b"back").await.expect("write");
        b.flush().await.expect("flush");
        let mut back = [0u8; 4];
        a.read_exact(&mut back).await.expect("read");
        assert_eq!(&back, b"back");
        drop(b);
        let mut rest = Vec::new();
        a.read_to_end(&mut rest).await.expect("eof");
        assert!(rest.is_empty());
    }
}
