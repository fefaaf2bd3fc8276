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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ProcessError, Source, SourceContext, SourceError};
use crate::config::PropReader;
use crate::event::Event;
use crate::rate_limit::RateLimit;

/// Flume's default `max-line-length` (characters, newline included).
pub const DEFAULT_MAX_LINE_LENGTH: usize = 512;
/// Bytes asked of the socket per read: large reads make large batches.
const READ_SIZE: usize = 1 << 20;

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
        Some(NetcatConfig {
            bind: bind?,
            port: port?,
            max_line_length: max_line_length?,
            ack_every_event,
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
            "bind={} port={} max-line-length={} ack-every-event={}",
            c.bind, c.port, c.max_line_length, c.ack_every_event
        )
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let listener = super::listen_tcp(&self.config.bind, self.config.port, &ctx).await?;
        let tracker = tokio_util::task::TaskTracker::new();
        let bad_input = Arc::new(RateLimit::new(Duration::from_secs(10)));
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let ctx = ctx.clone();
                        let config = self.config.clone();
                        let bad_input = bad_input.clone();
                        tracker.spawn(async move {
                            ctx.counters.open_connections.add(1);
                            if let Err(error) = serve(stream, peer, &config, &ctx, &bad_input).await {
                                tracing::debug!(source = %ctx.name, %peer, %error, "Connection ended with an error.");
                            }
                            ctx.counters.open_connections.add(-1);
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

/// Serves one connection until EOF, an over-long line, or shutdown.
async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    config: &NetcatConfig,
    ctx: &SourceContext,
    bad_input: &RateLimit,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let mut replies: Vec<u8> = Vec::new();
    let max_body_chars = config.max_line_length - 1;
    loop {
        if buf.capacity() - buf.len() < READ_SIZE / 4 {
            buf.reserve(READ_SIZE);
        }
        let n = tokio::select! {
            _ = ctx.shutdown.cancelled() => return Ok(()),
            n = stream.read_buf(&mut buf) => n?,
        };
        let last_newline = memchr::memrchr(b'\n', &buf);
        let mut too_long = false;
        if let Some(end) = last_newline {
            let chunk = buf.split_to(end + 1).freeze();
            let (events, over) = split_lines(&chunk, max_body_chars);
            too_long = over;
            if !deliver(events, config, ctx, &mut replies).await {
                return Ok(());
            }
        }
        if !too_long && exceeds(&buf, max_body_chars) {
            too_long = true;
        }
        if !replies.is_empty() {
            stream.write_all(&replies).await?;
            replies.clear();
        }
        if too_long {
            ctx.counters.event_read_fail.inc();
            if let Some(suppressed) = bad_input.check() {
                tracing::warn!(source = %ctx.name, %peer, suppressed, "Client sent a line longer than max-line-length; closing the connection.");
            }
            let msg = format!(
                "FAILED: Event exceeds the maximum length ({} chars, including newline)\n",
                config.max_line_length
            );
            stream.write_all(msg.as_bytes()).await?;
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

/// Splits a block of complete lines into events, stopping at the first line longer than
/// `max_body_chars`; the flag says whether one was found.
fn split_lines(chunk: &Bytes, max_body_chars: usize) -> (Vec<Event>, bool) {
    let mut events = Vec::with_capacity(chunk.len() / 64 + 1);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', chunk) {
        let line = &chunk[start..end];
        if exceeds(line, max_body_chars) {
            return (events, true);
        }
        events.push(Event::new(chunk.slice(start..end)));
        start = end + 1;
    }
    (events, false)
}

/// Whether `line` holds more than `max_chars` characters (UTF-8 aware, counted only when the
/// byte length makes it possible).
fn exceeds(line: &[u8], max_chars: usize) -> bool {
    line.len() > max_chars && String::from_utf8_lossy(line).chars().count() > max_chars
}

/// Puts the events in batches; queues the replies. Returns false when the source is stopping
/// and the rest of the input must not be read.
async fn deliver(
    events: Vec<Event>,
    config: &NetcatConfig,
    ctx: &SourceContext,
    replies: &mut Vec<u8>,
) -> bool {
    if events.is_empty() {
        return true;
    }
    let total = events.len() as u64;
    ctx.counters.event_received.add(total);
    let max = ctx.processor.max_batch();
    let mut events = events;
    while !events.is_empty() {
        let rest = if events.len() > max {
            events.split_off(max)
        } else {
            Vec::new()
        };
        let n = events.len();
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
        } else {
            match ctx.processor.process_with_backpressure(events, ctx).await {
                Ok(()) => ctx.counters.event_accepted.add(n as u64),
                Err(error) => {
                    let lost = n + rest.len();
                    tracing::warn!(source = %ctx.name, %error, events = lost, "Stopping with lines received but not put (never acknowledged).");
                    return false;
                }
            }
        }
        events = rest;
    }
    true
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
        let (events, over) = split_lines(&chunk, 511);
        assert!(!over);
        let bodies: Vec<&[u8]> = events.iter().map(|e| &e.body[..]).collect();
        assert_eq!(bodies, [&b"a\r"[..], b"bb", b"", b"ccc"]);
    }

    #[test]
    fn stops_at_an_over_long_line_counting_characters() {
        let chunk = Bytes::from("ok\n\u{e9}\u{e9}\u{e9}\nxxxx\nlater\n".to_string());
        // Three 2-byte characters fit a limit of 3 characters; four ASCII ones do not.
        let (events, over) = split_lines(&chunk, 3);
        assert!(over);
        assert_eq!(events.len(), 2);
    }
}
