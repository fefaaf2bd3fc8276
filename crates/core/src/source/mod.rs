//! Sources: read input, turn it into events, and put them into channels as whole batches.
//!
//! A source is built from its config without touching the outside world (so `flumen check`
//! can build every component), then [`Source::run`] binds, reads and returns when the
//! shutdown token is cancelled. Events reach channels only through the [`ChannelProcessor`].

mod processor;

pub use processor::{ChannelProcessor, ProcessError};

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

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
    /// A configuration problem found only when the source starts (an unreadable file).
    #[error("{0}")]
    Config(String),
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

    /// A one-line summary of the resolved configuration, for the start-up log.
    fn describe(&self) -> String;

    /// Runs until `ctx.shutdown` is cancelled (or the input ends, for finite sources).
    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError>;
}

/// Binds a TCP listener on `bind:port` and logs the bound address (port 0 picks a free one;
/// tests and operators read the real port from this line).
pub async fn listen_tcp(
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
pub async fn listen_udp(
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
