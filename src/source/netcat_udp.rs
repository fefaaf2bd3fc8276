//! `netcatudp` source (`org.apache.flume.source.NetcatUdpSource`): one event per UDP datagram.
//!
//! As in Flume, an event's body is the datagram up to (not including) its first `\n`; anything
//! after that newline is not part of the event (Flumen logs a rate-limited warning when such
//! bytes are dropped, Flume says nothing). With `remoteAddressHeader` set, the sender's
//! address is added under that header name, formatted as Java prints a socket address
//! (`/127.0.0.1:40000`).
//!
//! Datagrams already queued in the socket are read without waiting, up to the channels'
//! transactionCapacity, and put as one batch with backpressure: while the channel is full the
//! source stops reading and the kernel's socket buffer absorbs (then drops) what arrives, which
//! is all UDP can do.
//!
//! Keys: `bind` (default `0.0.0.0`, all interfaces, as Flume binds when it is absent), `port`
//! (required; 0 picks a free port, logged), `remoteAddressHeader`. Flume 1.11's code actually
//! reads the header name from the key `remoteAddress` (its User Guide says
//! `remoteAddressHeader`); both keys are accepted, `remoteAddressHeader` first. When neither is
//! set, Flume stores the address under a `null` header name; Flumen adds no header.
//!
//! Divergences from Flume: datagrams up to 65,507 bytes are read whole (Flume's Netty channel
//! cuts them at 2,048 bytes); a full channel applies backpressure instead of dropping each
//! datagram with an error.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;

use super::{Source, SourceContext, SourceError};
use crate::config::PropReader;
use crate::event::{Event, Headers};
use crate::rate_limit::RateLimit;

/// Default `bind`: every interface.
pub const DEFAULT_BIND: &str = "0.0.0.0";
/// Largest UDP payload (IPv4); receive room per datagram.
const MAX_DATAGRAM: usize = 65_536;
/// Bytes allocated at once for received datagrams; bodies are slices of it.
const BLOCK_SIZE: usize = 1 << 20;
/// Most datagram bytes one batch holds (a flood of large datagrams stays bounded).
const MAX_BATCH_BYTES: usize = 4 << 20;

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct NetcatUdpConfig {
    /// `bind`: address to listen on.
    pub bind: String,
    /// `port` (required; 0 picks a free port).
    pub port: u16,
    /// `remoteAddressHeader` (or Flume's `remoteAddress`): header for the sender's address.
    pub remote_address_header: Option<String>,
}

impl NetcatUdpConfig {
    /// Reads Flume's netcatudp keys; `None` when Flume would drop the source.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let bind = r.string("bind", DEFAULT_BIND);
        let port = r
            .required_string("port")
            .and_then(|_| r.number("port", 0u16, 0, u16::MAX));
        let documented = r.opt_string("remoteAddressHeader");
        let in_code = r.opt_string("remoteAddress");
        let remote_address_header = documented.or(in_code).filter(|h| !h.is_empty());
        Some(NetcatUdpConfig {
            bind: if bind.is_empty() {
                DEFAULT_BIND.to_string()
            } else {
                bind
            },
            port: port?,
            remote_address_header,
        })
    }
}

/// The netcat UDP source.
pub struct NetcatUdpSource {
    config: NetcatUdpConfig,
}

impl NetcatUdpSource {
    /// A source with `config`.
    pub fn new(config: NetcatUdpConfig) -> Self {
        NetcatUdpSource { config }
    }
}

#[async_trait]
impl Source for NetcatUdpSource {
    fn type_name(&self) -> &'static str {
        "netcatudp"
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "bind={} port={} remoteAddressHeader={}",
            c.bind,
            c.port,
            c.remote_address_header.as_deref().unwrap_or("")
        )
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let socket = super::listen_udp(&self.config.bind, self.config.port, &ctx).await?;
        let header = self.config.remote_address_header.as_deref();
        let truncated = RateLimit::new(Duration::from_secs(10));
        let mut block = BytesMut::with_capacity(BLOCK_SIZE);
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                ready = socket.readable() => {
                    if let Err(error) = ready {
                        return Err(SourceError::Io { context: "waiting for datagrams".into(), source: error });
                    }
                }
            }
            let max = ctx.processor.max_batch();
            let mut events = Vec::new();
            let mut bytes = 0usize;
            // A batch stops at transactionCapacity datagrams or MAX_BATCH_BYTES, whichever
            // comes first: a flood of large datagrams holds a bounded amount of memory.
            while events.len() < max && bytes < MAX_BATCH_BYTES {
                if block.capacity() - block.len() < MAX_DATAGRAM {
                    block = BytesMut::with_capacity(BLOCK_SIZE);
                }
                match socket.try_recv_buf_from(&mut block) {
                    Ok((_, peer)) => {
                        let datagram = block.split().freeze();
                        bytes += datagram.len();
                        let body = match memchr::memchr(b'\n', &datagram) {
                            Some(i) => {
                                if i + 1 < datagram.len() {
                                    if let Some(suppressed) = truncated.check() {
                                        tracing::warn!(source = %ctx.name, %peer, dropped_bytes = datagram.len() - i - 1, suppressed, "Datagram has bytes after its first newline; they are not part of the event, as in Flume.");
                                    }
                                }
                                datagram.slice(..i)
                            }
                            None => datagram,
                        };
                        let mut headers = Headers::new();
                        if let Some(name) = header {
                            headers.insert(name.into(), java_socket_address(peer).into());
                        }
                        events.push(Event::with_headers(headers, body));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(error) => {
                        // E.g. ICMP errors surfacing on the socket: nothing to deliver.
                        tracing::debug!(source = %ctx.name, %error, "Receiving a datagram failed.");
                        break;
                    }
                }
            }
            if events.is_empty() {
                continue;
            }
            let n = events.len() as u64;
            ctx.counters.event_received.add(n);
            ctx.counters.append_batch_received.inc();
            match ctx.processor.process_with_backpressure(events, &ctx).await {
                Ok(()) => {
                    ctx.counters.event_accepted.add(n);
                    ctx.counters.append_batch_accepted.inc();
                }
                Err(error) => {
                    tracing::warn!(source = %ctx.name, %error, events = n, "Stopping with datagrams received but not put.");
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Formats an address as Java's `InetSocketAddress.toString()` does for a received packet:
/// `/` + address + `:` + port, IPv6 in full hexadecimal groups without brackets.
fn java_socket_address(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => format!("/{ip}:{}", addr.port()),
        IpAddr::V6(ip) => {
            let groups: Vec<String> = ip.segments().iter().map(|g| format!("{g:x}")).collect();
            format!("/{}:{}", groups.join(":"), addr.port())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_print_like_java() {
        let v4: SocketAddr = "127.0.0.1:4000".parse().expect("v4");
        assert_eq!(java_socket_address(v4), "/127.0.0.1:4000");
        let v6: SocketAddr = "[::1]:5".parse().expect("v6");
        assert_eq!(java_socket_address(v6), "/0:0:0:0:0:0:0:1:5");
    }
}
