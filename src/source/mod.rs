//! Sources: read input, turn it into events, and put them into channels as whole batches.
//!
//! A source is built from its config without touching the outside world (so `flumen check`
//! can build every component), then [`Source::run`] binds, reads and returns when the
//! shutdown token is cancelled. Events reach channels only through the [`ChannelProcessor`].

pub mod exec;
pub mod http;
pub mod netcat;
pub mod netcat_udp;

pub mod seq;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::channel::{ChannelError, ChannelRef};
use crate::event::Event;
use crate::metrics::SourceCounters;

/// Why a source stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The listening socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another I/O failure the source cannot recover from.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Everything a running source needs from the agent.
#[derive(Clone)]
pub struct SourceContext {
    /// The source's name (`r1`).
    pub name: String,
    /// Where its events go.
    pub processor: Arc<ChannelProcessor>,
    /// Cancelled when the agent stops the source.
    pub shutdown: CancellationToken,
    /// The source's counters.
    pub counters: SourceCounters,
}

/// A configured source, ready to run.
#[async_trait]
pub trait Source: Send + 'static {
    /// The Flume type name (`netcat`).
    fn type_name(&self) -> &'static str;

    /// The largest batch this source puts, when it has a `batchSize` (checked against the
    /// channels' transactionCapacity at build time, as Flume does).
    fn batch_size(&self) -> Option<usize> {
        None
    }

    /// A one-line summary of the resolved configuration, for the start-up log.
    fn describe(&self) -> String;

    /// Runs until `ctx.shutdown` is cancelled (or the input ends, for finite sources).
    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError>;
}

/// Delivers a source's batches to its channels (Flume's `ChannelProcessor` with the
/// `replicating` selector: every channel gets every event; a failure fails the batch).
pub struct ChannelProcessor {
    channels: Vec<ChannelRef>,
    max_batch: usize,
}

impl ChannelProcessor {
    /// A processor over `channels` (at least one).
    pub fn new(channels: Vec<ChannelRef>) -> Self {
        let max_batch = channels
            .iter()
            .map(|c| c.transaction_capacity())
            .min()
            .unwrap_or(1)
            .max(1);
        ChannelProcessor {
            channels,
            max_batch,
        }
    }

    /// The largest batch every channel accepts in one transaction.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// The channels, in configured order.
    pub fn channels(&self) -> &[ChannelRef] {
        &self.channels
    }

    /// Puts the batch into every channel. On a failure, channels earlier in the list keep what
    /// they committed (as in Flume); a `Full` error hands the batch back for a retry.
    ///
    /// # Cancel safety
    /// Not cancel safe across channels: cancelling may leave the batch in some channels only.
    pub async fn process(&self, events: Vec<Event>) -> Result<(), ChannelError> {
        match self.channels.as_slice() {
            [only] => only.put(events).await,
            many => {
                let last = many.len() - 1;
                for channel in &many[..last] {
                    if let Err(e) = channel.put(events.clone()).await {
                        return Err(restore(e, events));
                    }
                }
                many[last].put(events).await
            }
        }
    }

    /// Puts the batch, retrying a full channel until it succeeds or `shutdown` is cancelled:
    /// backpressure for sources that cannot answer their client with an error. Gives the
    /// batch back when cancelled.
    pub async fn process_with_backpressure(
        &self,
        mut events: Vec<Event>,
        ctx: &SourceContext,
    ) -> Result<(), (ChannelError, Vec<Event>)> {
        let mut pause = Duration::from_millis(10);
        loop {
            match self.process(events).await {
                Ok(()) => return Ok(()),
                Err(ChannelError::Full {
                    channel,
                    events: back,
                }) => {
                    ctx.counters.channel_write_fail.inc();
                    tracing::debug!(source = %ctx.name, %channel, "Channel full; holding input back.");
                    events = back;
                    if ctx.shutdown.is_cancelled() {
                        let err = ChannelError::Full {
                            channel,
                            events: Vec::new(),
                        };
                        return Err((err, events));
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = ctx.shutdown.cancelled() => {}
                    }
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(other) => {
                    ctx.counters.channel_write_fail.inc();
                    return Err((other, Vec::new()));
                }
            }
        }
    }
}

/// Binds a TCP listener on `bind:port` and logs the bound address (port 0 picks a free one;
/// tests and operators read the real port from this line).
pub(crate) async fn listen_tcp(
    bind: &str,
    port: u16,
    ctx: &SourceContext,
) -> Result<tokio::net::TcpListener, SourceError> {
    let addr = format!("{bind}:{port}");
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| SourceError::Bind { addr, source })?;
    log_listening(listener.local_addr(), ctx)?;
    Ok(listener)
}

/// Binds a UDP socket on `bind:port` and logs the bound address.
pub(crate) async fn listen_udp(
    bind: &str,
    port: u16,
    ctx: &SourceContext,
) -> Result<tokio::net::UdpSocket, SourceError> {
    let addr = format!("{bind}:{port}");
    let socket = tokio::net::UdpSocket::bind(&addr)
        .await
        .map_err(|source| SourceError::Bind { addr, source })?;
    log_listening(socket.local_addr(), ctx)?;
    Ok(socket)
}

fn log_listening(
    local: std::io::Result<std::net::SocketAddr>,
    ctx: &SourceContext,
) -> Result<(), SourceError> {
    let local = local.map_err(|source| SourceError::Io {
        context: "reading the bound address".into(),
        source,
    })?;
    tracing::info!(source = %ctx.name, address = %local, "Source listening.");
    Ok(())
}

/// Puts the original batch back into a `Full` error raised for a clone.
fn restore(error: ChannelError, events: Vec<Event>) -> ChannelError {
    match error {
        ChannelError::Full { channel, .. } => ChannelError::Full { channel, events },
        other => other,
    }
}
