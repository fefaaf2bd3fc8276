//! `netcat` source (`org.apache.flume.source.NetcatSource`): newline-delimited lines over TCP.
//!
//! Each line (without its `\n`) becomes one event. All complete lines of one socket read go to
//! the channel as one batch (split at the channels' transactionCapacity), so the cost per line
//! is a slice of the read buffer, not a copy. With `ack-every-event` each line is answered `OK`
//! once its batch is committed; a full channel answers `FAILED: ...` per line, as Flume does.
//! Without acks there is nobody to tell, so a full channel stops reading the socket
//! (backpressure) until there is room: nothing accepted is dropped.
//!
//! Divergences from Flume: line bytes are kept as sent (Flume decodes and re-encodes UTF-8,
//! replacing invalid bytes); a line longer than `max-line-length` gets Flume's reply and the
//! connection is closed, as in Flume, after the lines before it were delivered.
//!
//! Memory is bounded whatever clients do ([`super::limits`]): at most `maxConnections`
//! connections; an idle connection holds no read buffer; a busy one reads into 8 KiB, and into
//! 1 MiB blocks (large batches) only while `maxInFlightBytes` has room; a client that does not
//! read its acknowledgements stops being read once the socket's send buffer is full, and a
//! stop does not wait for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::limits::{Connections, Held, InFlight, NetLimits};
use super::{ProcessError, Source, SourceContext, SourceError};
use crate::config::PropReader;
use crate::event::Event;
use crate::rate_limit::RateLimit;

/// Flume's default `max-line-length` (characters, newline included).
pub const DEFAULT_MAX_LINE_LENGTH: usize = 512;
/// Bytes asked of the socket per read by a busy client: large reads make large batches.
const READ_SIZE: usize = 1 << 20;
/// Bytes a connection reads into without taking from `maxInFlightBytes`.
const BASE_READ: usize = 8 << 10;

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct NetcatConfig {
    /// `bind`: address to listen on (required).
    pub bind: String,
    /// `port` (required; 0 picks a free port, logged at start).
    pub port: u16,
    /// `max-line-length`: most characters per line, newline included.
    pub max_line_length: usize,
    /// `ack-every-event`: answer `OK` per committed line.
    pub ack_every_event: bool,
    /// Flumen's `maxConnections` and `maxInFlightBytes`.
    pub limits: NetLimits,
}

impl NetcatConfig {
    /// Reads Flume's netcat keys; `None` when Flume would drop the source.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let bind = r.required_string("bind");
        let port = r.required_string("port");
        let port = match port {
            Some(_) => r.number("port", 0u16, 0, u16::MAX),
            None => None,
        };
        let max_line_length = r.number("max-line-length", DEFAULT_MAX_LINE_LENGTH, 2, 1 << 30);
        let ack_every_event = r.bool("ack-every-event", true);
        // Flume's netcat reads `encoding` (default utf-8); bytes are passed through here.
        let _ = r.opt_string("encoding");
        let limits = NetLimits::from_props(r);
        Some(NetcatConfig {
            bind: bind?,
            port: port?,
            max_line_length: max_line_length?,
            ack_every_event,
            limits: limits?,
        })
    }
}

/// The netcat source.
pub struct NetcatSource {
    config: NetcatConfig,
}

impl NetcatSource {
    /// A source with `config`.
    pub fn new(config: NetcatConfig) -> Self {
        NetcatSource { config }
    }
}

#[async_trait]
impl Source for NetcatSource {
    fn type_name(&self) -> &'static str {
        "netcat"
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "bind={} port={} max-line-length={} ack-every-event={} maxConnections={} maxInFlightBytes={}",
            c.bind,
            c.port,
            c.max_line_length,
            c.ack_every_event,
            c.limits.max_connections,
            c.limits.max_in_flight_bytes
        )
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let listener = super::listen_tcp(&self.config.bind, self.config.port, &ctx).await?;
        let tracker = tokio_util::task::TaskTracker::new();
        let bad_input = Arc::new(RateLimit::new(Duration::from_secs(10)));
        let connections = Connections::new(self.config.limits.max_connections);
        let budget = InFlight::new(self.config.limits.max_in_flight_bytes);
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let Some(slot) = connections.admit(&ctx.name, peer) else {
                            drop(stream);
                            continue;
                        };
                        let ctx = ctx.clone();
                        let config = self.config.clone();
                        let bad_input = bad_input.clone();
                        let budget = budget.clone();
                        tracker.spawn(async move {
                            ctx.counters.open_connections.add(1);
                            let conn = Conn { peer, config: &config, ctx: &ctx, bad_input: &bad_input, budget: &budget };
                            if let Err(error) = conn.serve(stream).await {
                                tracing::debug!(source = %ctx.name, %peer, %error, "Connection ended with an error.");
                            }
                            ctx.counters.open_connections.add(-1);
                            drop(slot);
                        });
                    }
                    Err(error) => {
                        tracing::warn!(source = %ctx.name, %error, "Accepting a connection failed.");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        drop(listener);
        tracker.close();
        tracker.wait().await;
        Ok(())
    }
}

/// One connection and what serving it needs.
struct Conn<'a> {
    peer: SocketAddr,
    config: &'a NetcatConfig,
    ctx: &'a SourceContext,
    bad_input: &'a RateLimit,
    budget: &'a InFlight,
}

impl Conn<'_> {
    /// Serves the connection until EOF, an over-long line, or shutdown.
    async fn serve(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let (config, ctx, peer) = (self.config, self.ctx, self.peer);
        let _ = stream.set_nodelay(true);
        let mut buf = BytesMut::new();
        let mut held = Held::default();
        let mut replies: Vec<u8> = Vec::new();
        let max_body_chars = config.max_line_length - 1;
        let mut busy = false;
        loop {
            if buf.is_empty() && buf.capacity() > BASE_READ {
                // Idle again: give the large buffer and its budget back.
                buf = BytesMut::new();
                held = Held::default();
            }
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(()),
                ready = stream.readable() => ready?,
            }
            if !self.reserve(&mut buf, &mut held, busy) {
                // The budget is spent and this connection's buffer is full: wait for room.
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_millis(10)) => continue,
                }
            }
            let spare = buf.capacity() - buf.len();
            let n = match stream.try_read_buf(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            busy = n > 0 && n >= spare;
            let last_newline = memchr::memrchr(b'\n', &buf);
            let mut too_long = false;
            if let Some(end) = last_newline {
                let chunk = buf.split_to(end + 1).freeze();
                let mut lines = Lines::new(&chunk, max_body_chars);
                // Counted ahead (a vectorised scan) so that each batch is allocated once at
                // its size rather than grown by doubling.
                let mut lines_left = memchr::memchr_iter(b'\n', &chunk).count();
                // One batch at a time, acknowledged before the next: a read of a million
                // short lines never holds a million events or their answers at once.
                loop {
                    let max_batch = ctx.processor.max_batch();
                    let mut batch: Vec<Event> = Vec::with_capacity(lines_left.min(max_batch));
                    batch.extend(lines.by_ref().take(max_batch));
                    lines_left = lines_left.saturating_sub(batch.len());
                    if batch.is_empty() {
                        break;
                    }
                    if !deliver(batch, config, ctx, &mut replies).await {
                        return Ok(());
                    }
                    if !replies.is_empty() {
                        self.write(&mut stream, &replies).await?;
                        replies.clear();
                    }
                }
                too_long = lines.too_long;
            }
            if !too_long && exceeds(&buf, max_body_chars) {
                too_long = true;
            }
            if too_long {
                ctx.counters.event_read_fail.inc();
                if let Some(suppressed) = self.bad_input.check() {
                    tracing::warn!(source = %ctx.name, %peer, suppressed, "Client sent a line longer than max-line-length; closing the connection.");
                }
                let msg = format!(
                    "FAILED: Event exceeds the maximum length ({} chars, including newline)\n",
                    config.max_line_length
                );
                self.write(&mut stream, msg.as_bytes()).await?;
                return Ok(());
            }
            if n == 0 {
                if !buf.is_empty() {
                    tracing::debug!(source = %ctx.name, %peer, bytes = buf.len(), "Connection closed with a partial line; it is discarded, as in Flume.");
                }
                return Ok(());
            }
        }
    }

    /// Makes room to read: 8 KiB at no cost; for a `busy` client (its last read filled the
    /// buffer) a 1 MiB block while the shared budget lasts. `false` when there is no room.
    fn reserve(&self, buf: &mut BytesMut, held: &mut Held, busy: bool) -> bool {
        let spare = buf.capacity() - buf.len();
        if spare >= BASE_READ / 2 {
            return true;
        }
        let len = buf.len();
        let allowed = BASE_READ + held.bytes();
        let want = len + READ_SIZE;
        if busy && want > allowed && self.budget.try_hold(held, want - allowed) {
            buf.reserve(READ_SIZE);
            return true;
        }
        let allowed = BASE_READ + held.bytes();
        if allowed > len {
            buf.reserve(allowed - len);
        }
        buf.capacity() > buf.len()
    }

    /// Writes replies, giving up when the source stops: a client that does not read its
    /// acknowledgements must not hold the stop (its lines are committed; unacknowledged, it
    /// may send them again: at-least-once).
    async fn write(&self, stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
        tokio::select! {
            written = stream.write_all(bytes) => written,
            _ = self.ctx.shutdown.cancelled() => Err(std::io::Error::other("the source is stopping")),
        }
    }
}

/// The lines of a block of complete lines, as events sliced from it (no copy), ending at the
/// first line longer than `max_body_chars` (then `too_long` is set).
struct Lines<'a> {
    chunk: &'a Bytes,
    start: usize,
    max_body_chars: usize,
    too_long: bool,
}

impl<'a> Lines<'a> {
    fn new(chunk: &'a Bytes, max_body_chars: usize) -> Self {
        Lines {
            chunk,
            start: 0,
            max_body_chars,
            too_long: false,
        }
    }
}

impl Iterator for Lines<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.too_long {
            return None;
        }
        let rest = self.chunk.get(self.start..)?;
        let end = self.start + memchr::memchr(b'\n', rest)?;
        if exceeds(&self.chunk[self.start..end], self.max_body_chars) {
            self.too_long = true;
            return None;
        }
        let event = Event::new(self.chunk.slice(self.start..end));
        self.start = end + 1;
        Some(event)
    }
}

/// Whether `line` holds more than `max_chars` characters (UTF-8 aware, counted only when the
/// byte length makes it possible).
fn exceeds(line: &[u8], max_chars: usize) -> bool {
    line.len() > max_chars && String::from_utf8_lossy(line).chars().count() > max_chars
}

/// Puts one batch; queues its replies. Returns false when the source is stopping and the
/// rest of the input must not be read.
async fn deliver(
    events: Vec<Event>,
    config: &NetcatConfig,
    ctx: &SourceContext,
    replies: &mut Vec<u8>,
) -> bool {
    let n = events.len();
    if n == 0 {
        return true;
    }
    ctx.counters.event_received.add(n as u64);
    if config.ack_every_event {
        match ctx.processor.process(events).await {
            Ok(()) => {
                ctx.counters.event_accepted.add(n as u64);
                replies.extend(std::iter::repeat_n(*b"OK\n", n).flatten());
            }
            Err(error) => {
                // ChannelWriteFail is counted where the put failed (the processor).
                tracing::warn!(source = %ctx.name, %error, events = n, "Put failed; answering FAILED.");
                let line = format!("FAILED: {}\n", first_line(&error));
                for _ in 0..n {
                    replies.extend_from_slice(line.as_bytes());
                }
            }
        }
        return true;
    }
    match ctx.processor.process_with_backpressure(events, ctx).await {
        Ok(()) => {
            ctx.counters.event_accepted.add(n as u64);
            true
        }
        Err(error) => {
            tracing::warn!(source = %ctx.name, %error, events = n, "Stopping with lines received but not put (never acknowledged).");
            false
        }
    }
}

fn first_line(error: &ProcessError) -> String {
    error.to_string().lines().next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_without_copying_and_keeps_carriage_returns() {
        let chunk = Bytes::from_static(b"a\r\nbb\n\nccc\n");
        let mut lines = Lines::new(&chunk, 511);
        let events: Vec<Event> = lines.by_ref().collect();
        assert!(!lines.too_long);
        let bodies: Vec<&[u8]> = events.iter().map(|e| &e.body[..]).collect();
        assert_eq!(bodies, [&b"a\r"[..], b"bb", b"", b"ccc"]);
    }

    #[test]
    fn stops_at_an_over_long_line_counting_characters() {
        let chunk = Bytes::from("ok\n\u{e9}\u{e9}\u{e9}\nxxxx\nlater\n".to_string());
        // Three 2-byte characters fit a limit of 3 characters; four ASCII ones do not.
        let mut lines = Lines::new(&chunk, 3);
        let events: Vec<Event> = lines.by_ref().collect();
        assert!(lines.too_long);
        assert_eq!(events.len(), 2);
    }
}
