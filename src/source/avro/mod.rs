//! `avro` source (`org.apache.flume.source.AvroSource`): receives events from Flume's and
//! Flumen's `avro` sinks and RPC clients over Avro RPC ([`flumen_avro_rpc`]).
//!
//! Each `append` or `appendBatch` is put into the channels before its answer is written: `OK`
//! means committed, `FAILED` means not (a full channel; the client retries). A message this
//! protocol lacks gets an Avro system error; bytes that are not frames or not Avro close the
//! connection (logged, rate-limited), and the source keeps serving everyone else.
//!
//! Keys: Flume's `bind`, `port`, `threads`, `compression-type` (`deflate`: one zlib stream
//! per connection and direction, level 6 as Flume's source), `ipFilter` and `ipFilterRules`;
//! Flumen's `maxConnections` and `maxInFlightBytes` ([`super::limits`]; a frame that finds no
//! room in the budget within 10 s closes its connection), `maxFrameBytes` (default 64 MiB: one
//! request's size; a larger announced frame closes the connection) and `maxEventsPerRequest`
//! (default 100,000; a larger call, or an event with more than 1,000 headers, closes it too).
//! `threads` is read and not needed: connections are tasks, not threads. TLS: `ssl`,
//! `keystore`, `keystore-password`, `keystore-type` (PKCS12, or PEM as an extension; a JKS
//! file is named with the `keytool` command that converts it) and the protocol and
//! cipher-suite filters ([`crate::tls`]); a TLS handshake must finish within 10 s. With
//! `compression-type = deflate`, TLS runs inside the zlib stream, as in Flume 1.11 (its source
//! and client put the zlib codec first in the Netty pipeline and TLS after it, and Avro's frame
//! codec after both: on the wire, zlib carries TLS records carrying frames).

pub mod ip_filter;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::limits::{Connections, Held, InFlight, NetLimits};
use super::{Source, SourceContext, SourceError};
use crate::config::{Finding, FindingKind, PropReader};
use crate::event::Event;
use crate::rate_limit::RateLimit;
use flumen_avro_rpc::deflate::{Deflater, Inflater};
use flumen_avro_rpc::frame::{self, FrameDecoder};
use flumen_avro_rpc::protocol::{self, Call, Incoming, KnownClients, ServerSession, Status};
use flumen_avro_rpc::zlib_stream::ZlibStream;
use ip_filter::IpFilter;

/// Default `maxFrameBytes`.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 << 20;
/// Default `maxEventsPerRequest`: a decoded event costs far more memory than its smallest
/// encoding (two bytes), so the count is bounded apart from the bytes.
pub const DEFAULT_MAX_EVENTS_PER_REQUEST: usize = 100_000;
/// The zlib level Flume's avro source compresses its answers at.
const DEFLATE_LEVEL: u32 = 6;
/// Bytes read from the socket at a time.
const READ_SIZE: usize = 64 << 10;
/// Bytes a connection holds without taking from `maxInFlightBytes`.
const BASE_HOLD: usize = 256 << 10;
/// Longest a frame waits for room in `maxInFlightBytes` before its connection is closed.
const BUDGET_WAIT: Duration = Duration::from_secs(10);

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct AvroSourceConfig {
    /// `bind` (required).
    pub bind: String,
    /// `port` (required; 0 picks a free port, logged at start).
    pub port: u16,
    /// `compression-type = deflate`.
    pub deflate: bool,
    /// `ipFilter` with its `ipFilterRules`.
    pub ip_filter: Option<Arc<IpFilter>>,
    /// `maxConnections`, `maxInFlightBytes`.
    pub limits: NetLimits,
    /// `maxFrameBytes`.
    pub max_frame_bytes: usize,
    /// `maxEventsPerRequest`.
    pub max_events: usize,
    /// `ssl = true`: the TLS server configuration (keystore, protocols, suites).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl AvroSourceConfig {
    /// Reads Flume's avro source keys; `None` when Flume would drop the source or Flumen
    /// lacks what it asks for (TLS).
    pub fn from_props(
        r: &mut PropReader<'_>,
        system: &std::collections::BTreeMap<String, String>,
    ) -> Option<Self> {
        let bind = r.required_string("bind");
        let port = match r.required_string("port") {
            Some(_) => r.number("port", 0u16, 0, u16::MAX),
            None => None,
        };
        // Flume: anything but `deflate` (any case) means none.
        let deflate = r
            .opt_string("compression-type")
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("deflate"));
        let _ = r.opt_string("threads");
        let ip_filter = read_ip_filter(r);
        let tls = crate::tls::server_config(r, system, "avro source");
        let limits = NetLimits::from_props(r);
        let max_frame_bytes = r.number("maxFrameBytes", DEFAULT_MAX_FRAME_BYTES, 1024, 1 << 30);
        let max_events = r.number(
            "maxEventsPerRequest",
            DEFAULT_MAX_EVENTS_PER_REQUEST,
            1,
            1 << 24,
        );
        if r.is_fatal() || r.lacking().is_some() {
            return None;
        }
        Some(AvroSourceConfig {
            bind: bind?,
            port: port?,
            deflate,
            ip_filter: ip_filter?,
            limits: limits?,
            max_frame_bytes: max_frame_bytes?,
            max_events: max_events?,
            tls: tls?,
        })
    }
}

/// `ipFilter` and `ipFilterRules`: `Some(None)` when off; `None` when Flume fails to
/// configure the source (on without rules, or a bad rule).
fn read_ip_filter(r: &mut PropReader<'_>) -> Option<Option<Arc<IpFilter>>> {
    if !r.bool("ipFilter", false) {
        r.mark_used("ipFilterRules");
        return Some(None);
    }
    let rules = r.opt_string("ipFilterRules").unwrap_or_default();
    let problem = if rules.trim().is_empty() {
        "ipFilter is true but ipFilterRules is not defined".to_string()
    } else {
        match IpFilter::parse(&rules) {
            Ok(filter) => return Some(Some(Arc::new(filter))),
            Err(problem) => problem,
        }
    };
    let origin = r
        .raw("ipFilterRules")
        .or_else(|| r.raw("ipFilter"))
        .map(|p| p.origin.clone());
    let key = r.full_key("ipFilterRules");
    r.drop_component(Finding::new(
        FindingKind::BadValue,
        origin,
        key,
        format!("{problem}; Flume fails to configure the source."),
    ));
    None
}

/// The avro source.
pub struct AvroSource {
    config: AvroSourceConfig,
}

impl AvroSource {
    /// A source with `config`.
    pub fn new(config: AvroSourceConfig) -> Self {
        AvroSource { config }
    }
}

#[async_trait]
impl Source for AvroSource {
    fn type_name(&self) -> &'static str {
        "avro"
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "bind={} port={} ssl={} compression-type={} ipFilter={} maxConnections={} maxInFlightBytes={} maxFrameBytes={} maxEventsPerRequest={}",
            c.bind,
            c.port,
            c.tls.is_some(),
            if c.deflate { "deflate" } else { "none" },
            c.ip_filter.is_some(),
            c.limits.max_connections,
            c.limits.max_in_flight_bytes,
            c.max_frame_bytes,
            c.max_events
        )
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let listener = super::listen_tcp(&self.config.bind, self.config.port, &ctx).await?;
        let tracker = tokio_util::task::TaskTracker::new();
        let shared = Arc::new(Shared {
            config: self.config.clone(),
            known: KnownClients::default(),
            bad_input: RateLimit::new(Duration::from_secs(10)),
            budget: InFlight::new(self.config.limits.max_in_flight_bytes),
        });
        let connections = Connections::new(self.config.limits.max_connections);
        loop {
            let (stream, peer) = tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(source = %ctx.name, %error, "Accepting a connection failed.");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Some(slot) = connections.admit(&ctx.name, peer) else {
                continue;
            };
            let (ctx, shared) = (ctx.clone(), shared.clone());
            tracker.spawn(async move {
                if !shared.admits(peer).await {
                    tracing::info!(source = %ctx.name, %peer, "Connection refused by ipFilter.");
                    return;
                }
                ctx.counters.open_connections.add(1);
                let mut conn = Conn::new(peer, &shared, &ctx);
                let served = match (&shared.config.tls, shared.config.deflate) {
                    // TLS inside the zlib stream, as Flume layers them.
                    (Some(tls), true) => {
                        let _ = stream.set_nodelay(true);
                        let zlib = ZlibStream::new(stream, DEFLATE_LEVEL);
                        match accept_tls(tls, zlib).await {
                            Ok(stream) => conn.serve(stream).await,
                            Err(error) => Err(error),
                        }
                    }
                    (Some(tls), false) => {
                        let _ = stream.set_nodelay(true);
                        match accept_tls(tls, stream).await {
                            Ok(stream) => conn.serve(stream).await,
                            Err(error) => Err(error),
                        }
                    }
                    (None, _) => {
                        let _ = stream.set_nodelay(true);
                        conn.serve(stream).await
                    }
                };
                if let Err(error) = served {
                    if let Some(suppressed) = shared.bad_input.check() {
                        tracing::warn!(source = %ctx.name, %peer, %error, suppressed, "Closed a connection.");
                    }
                }
                ctx.counters.open_connections.add(-1);
                drop(slot);
            });
        }
        drop(listener);
        tracker.close();
        tracker.wait().await;
        Ok(())
    }
}

/// Longest a client may take to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server side of a TLS handshake on `stream`, within [`TLS_HANDSHAKE_TIMEOUT`].
async fn accept_tls<S>(
    config: &Arc<rustls::ServerConfig>,
    stream: S,
) -> std::io::Result<tokio_rustls::server::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(accepted) => accepted.map_err(|e| bad(format!("TLS handshake failed: {e}"))),
        Err(_) => Err(bad("TLS handshake did not finish within 10 s")),
    }
}

/// What every connection of the source shares.
struct Shared {
    config: AvroSourceConfig,
    known: KnownClients,
    bad_input: RateLimit,
    budget: InFlight,
}

impl Shared {
    /// Whether `ipFilter` lets `peer` in (looking its name up only when a rule needs it).
    async fn admits(&self, peer: SocketAddr) -> bool {
        let Some(filter) = &self.config.ip_filter else {
            return true;
        };
        let ip = peer.ip();
        let name = if filter.needs_names() {
            tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip).ok())
                .await
                .ok()
                .flatten()
        } else {
            None
        };
        filter.allows(ip, name.as_deref())
    }
}

/// One connection: its framing, compression and handshake state.
struct Conn<'a> {
    peer: SocketAddr,
    shared: &'a Shared,
    ctx: &'a SourceContext,
    session: ServerSession,
    decoder: FrameDecoder,
    inflater: Option<Inflater>,
    deflater: Option<Deflater>,
    plain: BytesMut,
    held: Held,
}

impl<'a> Conn<'a> {
    fn new(peer: SocketAddr, shared: &'a Shared, ctx: &'a SourceContext) -> Self {
        // Under TLS the zlib stream is below it, not in the frames.
        let deflate = shared.config.deflate && shared.config.tls.is_none();
        Conn {
            peer,
            shared,
            ctx,
            session: ServerSession::new(shared.known.clone(), shared.config.max_events),
            decoder: FrameDecoder::new(shared.config.max_frame_bytes),
            inflater: deflate.then(Inflater::default),
            deflater: deflate.then(|| Deflater::new(DEFLATE_LEVEL)),
            plain: BytesMut::new(),
            held: Held::default(),
        }
    }

    /// Serves requests until the client closes, sends what cannot be served, or the source
    /// stops.
    async fn serve<S>(&mut self, mut stream: S) -> std::io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut raw = vec![0u8; READ_SIZE];
        // Compressed bytes read but not inflated yet (the budget was full), and whether the
        // zlib stream may hold output it could not give for lack of room.
        let mut unread: Vec<u8> = Vec::new();
        let mut inflate_more = false;
        loop {
            while let Some(frame) = self.decoder.decode(&mut self.plain).map_err(bad)? {
                let answer = self.handle(&frame.payload).await?;
                let mut out = Vec::with_capacity(answer.len() + 12);
                frame::encode(frame.serial, &answer, &mut out).map_err(bad)?;
                self.write(&mut stream, out).await?;
            }
            if self.plain.is_empty() {
                // Idle again: give the budget back, and the buffer when it grew.
                self.held = Held::default();
                if self.plain.capacity() > BASE_HOLD {
                    self.plain = BytesMut::new();
                }
            }
            let limit = self.make_room().await?;
            if let Some(inflater) = self
                .inflater
                .as_mut()
                .filter(|_| inflate_more || !unread.is_empty())
            {
                let used = inflater.inflate_some(&unread, &mut self.plain, limit)?;
                unread.drain(..used);
                inflate_more = self.plain.len() >= limit;
                continue;
            }
            let n = tokio::select! {
                _ = self.ctx.shutdown.cancelled() => return Ok(()),
                read = stream.read(&mut raw) => read?,
            };
            if n == 0 {
                if !self.plain.is_empty() {
                    tracing::debug!(source = %self.ctx.name, peer = %self.peer, bytes = self.plain.len(), "Connection closed in the middle of a frame.");
                }
                return Ok(());
            }
            match &mut self.inflater {
                Some(inflater) => {
                    let used = inflater.inflate_some(&raw[..n], &mut self.plain, limit)?;
                    unread.extend_from_slice(&raw[used..n]);
                    inflate_more = self.plain.len() >= limit;
                }
                None => self.plain.extend_from_slice(&raw[..n]),
            }
        }
    }

    /// Waits until this connection holds enough of the shared budget (`maxInFlightBytes`) to
    /// read another block, taking more as a frame grows; returns how many bytes it may hold.
    /// A frame that cannot get its budget within [`BUDGET_WAIT`] closes the connection (its
    /// share goes back), so clients that each hold part of the budget cannot wait on each
    /// other for ever.
    async fn make_room(&mut self) -> std::io::Result<usize> {
        let deadline = tokio::time::Instant::now() + BUDGET_WAIT;
        loop {
            let want = self.plain.len() + READ_SIZE;
            let allowed = BASE_HOLD + self.held.bytes();
            if want <= allowed || self.shared.budget.try_hold(&mut self.held, want - allowed) {
                return Ok(BASE_HOLD + self.held.bytes());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(std::io::Error::other(format!(
                    "a frame of more than {} bytes found no room in maxInFlightBytes within {} s",
                    self.plain.len(),
                    BUDGET_WAIT.as_secs()
                )));
            }
            tokio::select! {
                _ = self.ctx.shutdown.cancelled() => return Err(std::io::Error::other("the source is stopping")),
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
    }

    /// Answers one request.
    async fn handle(&mut self, payload: &bytes::Bytes) -> std::io::Result<Vec<u8>> {
        let incoming = match self.session.receive(payload) {
            Ok(incoming) => incoming,
            Err(error) => {
                self.ctx.counters.event_read_fail.inc();
                return Err(bad(error));
            }
        };
        let (mut answer, call) = match incoming {
            Incoming::Answer(answer) => return Ok(answer),
            Incoming::Call { prefix, call } => (prefix, call),
        };
        match call {
            Call::Append(event) => {
                let status = self.put(vec![event], false).await;
                protocol::write_status(status, &mut answer);
            }
            Call::AppendBatch(events) => {
                let status = self.put(events, true).await;
                protocol::write_status(status, &mut answer);
            }
            Call::Unknown(name) => {
                self.ctx.counters.event_read_fail.inc();
                protocol::write_error(&format!("No such remote message: {name}"), &mut answer);
            }
            Call::Ping => {}
        }
        Ok(answer)
    }

    /// Puts events into the channels: `OK` once committed, `FAILED` when not.
    async fn put(&self, events: Vec<Event>, batch: bool) -> Status {
        let (ctx, n) = (self.ctx, events.len() as u64);
        if batch {
            ctx.counters.append_batch_received.inc();
        }
        ctx.counters.event_received.add(n);
        match ctx.processor.process(events).await {
            Ok(()) => {
                crate::failpoint::crash_at("avro-source-after-commit");
                if batch {
                    ctx.counters.append_batch_accepted.inc();
                }
                ctx.counters.event_accepted.add(n);
                Status::Ok
            }
            Err(error) => {
                if let Some(suppressed) = self.shared.bad_input.check() {
                    tracing::warn!(source = %ctx.name, peer = %self.peer, %error, events = n, suppressed, "Put failed; answering FAILED.");
                }
                Status::Failed
            }
        }
    }

    /// Writes an answer (compressed when the connection is), giving up when the source stops:
    /// a client that does not read must not hold the stop (its events are committed; without
    /// the answer it sends them again: at-least-once).
    async fn write<S>(&mut self, stream: &mut S, plain: Vec<u8>) -> std::io::Result<()>
    where
        S: AsyncWrite + Unpin,
    {
        let bytes = match &mut self.deflater {
            Some(deflater) => {
                let mut out = Vec::with_capacity(plain.len() / 2 + 64);
                deflater.deflate(&plain, &mut out)?;
                out
            }
            None => plain,
        };
        tokio::select! {
            written = async {
                stream.write_all(&bytes).await?;
                stream.flush().await
            } => written,
            _ = self.ctx.shutdown.cancelled() => Err(std::io::Error::other("the source is stopping")),
        }
    }
}

/// Input that cannot be served, as an I/O error that closes the connection.
fn bad(error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string())
}
