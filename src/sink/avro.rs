//! `avro` sink (`org.apache.flume.sink.AvroSink`): sends each take as one `appendBatch` to an
//! avro source (Flume's or Flumen's), or several when its events pass 16 MiB, and commits
//! only after every `OK`.
//!
//! `FAILED` (the receiver's channel is full), an Avro error, a timeout or a broken connection
//! roll the take back and the runner backs off; the connection is dropped and opened again
//! for the next attempt (with a new handshake), as Flume's RPC client is reset.
//!
//! Keys: Flume's `hostname`, `port`, `batch-size` (100), `connect-timeout` and
//! `request-timeout` (20,000 ms; at least 1,000, as Flume raises smaller values),
//! `reset-connection-interval` (seconds; 0 = never), `compression-type` (`deflate`) and
//! `compression-level` (6), `maxIoWorkers` (read; not needed), and TLS: `ssl`,
//! `trust-all-certs`, `truststore`, `truststore-password`, `truststore-type` and the protocol
//! and cipher-suite filters ([`crate::tls`]); the collector's certificate must name
//! `hostname`. With `compression-type = deflate` TLS runs inside the zlib stream, as Flume
//! layers them.
//!
//! Flumen's `batchBytes` (default 16 MiB) cuts a take whose events pass it into several calls,
//! so a take of large events never exceeds what the receiver takes in one request.
//!
//! Flumen's `concurrency` (default 1, as Flume: one call at a time, in order) keeps up to that
//! many takes in flight, each on its own connection and acknowledged by its `OK`
//! ([`Delivery::Later`]): the edge encodes and sends the next batch while the collector
//! commits the last, so a hop is not one round trip per batch. Batches may then be committed
//! at the collector out of order; each is still committed at the edge only after its `OK`.

use std::time::Duration;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flumen_avro_rpc::connection::{Connection, ConnectionOptions, RpcError, TlsClient};

use super::util::batch::BatchLimits;
use super::{Ack, Delivered, Delivery, Sink, SinkError};
use crate::config::PropReader;
use crate::event::Event;

/// Flume's default `batch-size`.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// Flume's default `connect-timeout` and `request-timeout`, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 20_000;
/// Flume raises timeouts below this to it.
pub const MIN_TIMEOUT_MS: u64 = 1_000;
/// Flume's default `compression-level`.
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 6;

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct AvroSinkConfig {
    /// `hostname` (required).
    pub hostname: String,
    /// `port` (required).
    pub port: u16,
    /// `batch-size`.
    pub batch_size: usize,
    /// `connect-timeout`.
    pub connect_timeout: Duration,
    /// `request-timeout`.
    pub request_timeout: Duration,
    /// `reset-connection-interval`; `None` never resets.
    pub reset_interval: Option<Duration>,
    /// `compression-type = deflate` at `compression-level`.
    pub deflate: Option<u32>,
    /// `concurrency`: takes in flight, one connection each.
    pub concurrency: usize,
    /// `batchBytes`: most bytes of events per call.
    pub batch_bytes: usize,
    /// `ssl = true`: the TLS client and the name the collector's certificate must carry.
    pub tls: Option<TlsClient>,
}

impl AvroSinkConfig {
    /// Reads Flume's avro sink keys; `None` when Flume would drop the sink or Flumen lacks
    /// what it asks for (TLS).
    pub fn from_props(
        r: &mut PropReader<'_>,
        system: &std::collections::BTreeMap<String, String>,
    ) -> Option<Self> {
        let hostname = r.required_string("hostname");
        let port = match r.required_string("port") {
            Some(_) => r.number("port", 0u16, 1, u16::MAX),
            None => None,
        };
        let batch_size = r.number("batch-size", DEFAULT_BATCH_SIZE, 1, 1 << 20);
        let max_ms = i32::MAX as u64;
        let connect = r.number("connect-timeout", DEFAULT_TIMEOUT_MS, 0, max_ms);
        let request = r.number("request-timeout", DEFAULT_TIMEOUT_MS, 0, max_ms);
        let reset = r.number("reset-connection-interval", 0u64, 0, 86_400 * 365);
        let deflate = r
            .opt_string("compression-type")
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("deflate"));
        let level = r.number("compression-level", DEFAULT_COMPRESSION_LEVEL, 0, 9);
        let _ = r.opt_string("maxIoWorkers");
        let concurrency = r.number("concurrency", 1usize, 1, 64);
        let batch_bytes = r.number("batchBytes", DEFAULT_BATCH_BYTES, 1024, 1 << 30);
        let tls = crate::tls::client_config(r, system, "avro sink");
        if r.is_fatal() || r.lacking().is_some() {
            return None;
        }
        let hostname = hostname?;
        let tls = match tls? {
            Some(config) => Some(TlsClient {
                config,
                server_name: server_name(r, &hostname)?,
            }),
            None => None,
        };
        let floor = |ms: u64| Duration::from_millis(ms.max(MIN_TIMEOUT_MS));
        Some(AvroSinkConfig {
            hostname,
            port: port?,
            batch_size: batch_size?,
            connect_timeout: floor(connect?),
            request_timeout: floor(request?),
            reset_interval: Some(reset?).filter(|s| *s > 0).map(Duration::from_secs),
            deflate: if deflate { Some(level?) } else { None },
            concurrency: concurrency?,
            batch_bytes: batch_bytes?,
            tls,
        })
    }
}

/// The avro sink.
pub struct AvroSink {
    config: AvroSinkConfig,
    endpoint: String,
    /// Idle connections (one at `concurrency` 1) and the server hash they learnt.
    pool: Arc<Pool>,
}

/// Connections shared by the takes in flight, and the server hash they learnt.
#[derive(Default)]
struct Pool {
    idle: Mutex<Vec<Connection>>,
    server_hash: Mutex<Option<[u8; 16]>>,
}

impl Pool {
    fn take(&self) -> Option<Connection> {
        self.idle.lock().ok()?.pop()
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    fn server_hash(&self) -> Option<[u8; 16]> {
        self.server_hash.lock().ok().and_then(|h| *h)
    }

    fn learn(&self, hash: Option<[u8; 16]>) {
        if let (Some(hash), Ok(mut known)) = (hash, self.server_hash.lock()) {
            *known = Some(hash);
        }
    }

    /// One call on an idle connection (or a new one); the connection goes back only if the
    /// call succeeded.
    async fn call(
        &self,
        endpoint: &str,
        options: ConnectionOptions,
        reset: Option<Duration>,
        call: &[u8],
    ) -> Result<(), RpcError> {
        let idle = self
            .take()
            .filter(|c| reset.is_none_or(|every| c.age() < every));
        let mut conn = match idle {
            Some(conn) => conn,
            None => Connection::open(endpoint, options, self.server_hash()).await?,
        };
        let result = conn.send_call(call).await;
        self.learn(conn.server_hash());
        if result.is_ok() {
            self.give_back(conn);
        }
        result
    }
}

impl AvroSink {
    /// A sink with `config`; it connects on its first delivery.
    pub fn new(config: AvroSinkConfig) -> Self {
        AvroSink {
            endpoint: format!("{}:{}", config.hostname, config.port),
            config,
            pool: Arc::default(),
        }
    }

    /// The take as `appendBatch` calls of at most `batchBytes` each.
    fn encode(&self, events: &[Event]) -> Result<Vec<Vec<u8>>, SinkError> {
        let limits = BatchLimits::new(events.len(), self.config.batch_bytes);
        limits
            .split(events, encoded_len)
            .map(|chunk| {
                let mut call = Vec::new();
                flumen_avro_rpc::protocol::write_append_batch(chunk, &mut call)
                    .map(|()| call)
                    .map_err(|e| SinkError::Io {
                        context: format!("encoding a batch for {}", self.endpoint),
                        source: std::io::Error::other(e.to_string()),
                    })
            })
            .collect()
    }

    fn options(&self) -> ConnectionOptions {
        ConnectionOptions {
            connect_timeout: self.config.connect_timeout,
            request_timeout: self.config.request_timeout,
            deflate: self.config.deflate,
            tls: self.config.tls.clone(),
        }
    }
}

/// The name a TLS collector's certificate must carry: `hostname`, a DNS name or an address.
fn server_name(
    r: &mut PropReader<'_>,
    hostname: &str,
) -> Option<rustls::pki_types::ServerName<'static>> {
    match rustls::pki_types::ServerName::try_from(hostname.to_string()) {
        Ok(name) => Some(name),
        Err(error) => {
            let origin = r.raw("hostname").map(|p| p.origin.clone());
            let key = r.full_key("hostname");
            r.drop_component(crate::config::Finding::new(
                crate::config::FindingKind::BadValue,
                origin,
                key,
                format!("`{hostname}` cannot be checked against a TLS certificate: {error}."),
            ));
            None
        }
    }
}

/// Default `batchBytes`: most bytes of events in one call. A take of large events is sent as
/// several calls, well under the 64 MiB an avro source takes by default (`maxFrameBytes`), so
/// that a big take is not refused, rolled back and retried for ever. All calls must succeed
/// before the take commits; after a failure the calls before it are sent again.
pub const DEFAULT_BATCH_BYTES: usize = 16 << 20;

/// About what an event takes encoded: its body, its headers, a few length bytes.
fn encoded_len(event: &Event) -> usize {
    let headers: usize = event
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.len() + 4)
        .sum();
    event.body.len() + headers + 8
}

/// Sends a take's calls in order; the take is delivered once every one got `OK`.
async fn send(
    pool: &Pool,
    endpoint: &str,
    options: &ConnectionOptions,
    reset: Option<Duration>,
    calls: &[Vec<u8>],
) -> Result<(), SinkError> {
    for call in calls {
        pool.call(endpoint, options.clone(), reset, call)
            .await
            .map_err(sink_error)?;
    }
    Ok(())
}

/// A failed call as the runner sees it: `FAILED` or an Avro error is the receiver's refusal,
/// anything else a transport failure.
fn sink_error(error: RpcError) -> SinkError {
    match error {
        RpcError::Refused { address, reason } => SinkError::Refused {
            endpoint: address,
            reason,
        },
        other => SinkError::Transport {
            context: "avro sink".into(),
            detail: other.to_string(),
            source: Box::new(other),
        },
    }
}

#[async_trait]
impl Sink for AvroSink {
    fn type_name(&self) -> &'static str {
        "avro"
    }

    fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "hostname={} port={} batch-size={} connect-timeout={} request-timeout={} reset-connection-interval={} concurrency={} compression-type={}",
            c.hostname,
            c.port,
            c.batch_size,
            c.connect_timeout.as_millis(),
            c.request_timeout.as_millis(),
            c.reset_interval.map_or(0, |d| d.as_secs()),
            c.concurrency,
            match c.deflate {
                Some(level) => format!("deflate compression-level={level}"),
                None => "none".into(),
            }
        )
    }

    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let calls = self.encode(events)?;
        send(
            &self.pool,
            &self.endpoint,
            &self.options(),
            self.config.reset_interval,
            &calls,
        )
        .await
    }

    /// With `concurrency` above 1 the take is encoded here and sent on its own task; its `OK`
    /// acknowledges it.
    async fn submit(&mut self, events: &[Event]) -> Result<Delivery, SinkError> {
        if self.config.concurrency <= 1 {
            self.deliver(events).await?;
            return Ok(Delivery::Done(Delivered::all(events.len())));
        }
        let calls = self.encode(events)?;
        let (pool, endpoint, options) = (self.pool.clone(), self.endpoint.clone(), self.options());
        let (reset, n) = (self.config.reset_interval, events.len());
        Ok(Delivery::Later(Ack::new(async move {
            send(&pool, &endpoint, &options, reset, &calls).await?;
            Ok(Delivered::all(n))
        })))
    }

    fn acks_in_flight(&self) -> usize {
        self.config.concurrency
    }

    async fn stop(&mut self) -> Result<(), SinkError> {
        if let Ok(mut idle) = self.pool.idle.lock() {
            idle.clear();
        }
        Ok(())
    }
}
