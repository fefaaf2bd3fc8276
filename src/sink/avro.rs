//! `avro` sink (`org.apache.flume.sink.AvroSink`): sends each take as one `appendBatch` to an
//! avro source (Flume's or Flumen's) and commits only after its `OK`.
//!
//! `FAILED` (the receiver's channel is full), an Avro error, a timeout or a broken connection
//! roll the take back and the runner backs off; the connection is dropped and opened again
//! for the next attempt (with a new handshake), as Flume's RPC client is reset.
//!
//! Keys: Flume's `hostname`, `port`, `batch-size` (100), `connect-timeout` and
//! `request-timeout` (20,000 ms; at least 1,000, as Flume raises smaller values),
//! `reset-connection-interval` (seconds; 0 = never), `compression-type` (`deflate`) and
//! `compression-level` (6), `maxIoWorkers` (read; not needed). TLS (`ssl = true`) is not
//! implemented yet: such a sink is refused as a partial topology.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Sink, SinkError};
use crate::config::{Finding, FindingKind, PropReader};
use crate::event::Event;
use crate::wire::avro_rpc::deflate::{Deflater, Inflater};
use crate::wire::avro_rpc::frame::{self, FrameDecoder};
use crate::wire::avro_rpc::protocol::{self, ClientSession, Reply, Status};

/// Flume's default `batch-size`.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// Flume's default `connect-timeout` and `request-timeout`, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 20_000;
/// Flume raises timeouts below this to it.
pub const MIN_TIMEOUT_MS: u64 = 1_000;
/// Flume's default `compression-level`.
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 6;
/// Largest answer accepted (answers are a few bytes; a handshake carries a protocol text).
const MAX_ANSWER_BYTES: usize = 1 << 20;

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
}

impl AvroSinkConfig {
    /// Reads Flume's avro sink keys; `None` when Flume would drop the sink or Flumen lacks
    /// what it asks for (TLS).
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
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
        refuse_tls(r);
        if r.is_fatal() || r.lacking().is_some() {
            return None;
        }
        let floor = |ms: u64| Duration::from_millis(ms.max(MIN_TIMEOUT_MS));
        Some(AvroSinkConfig {
            hostname: hostname?,
            port: port?,
            batch_size: batch_size?,
            connect_timeout: floor(connect?),
            request_timeout: floor(request?),
            reset_interval: Some(reset?).filter(|s| *s > 0).map(Duration::from_secs),
            deflate: if deflate { Some(level?) } else { None },
        })
    }
}

/// TLS is not implemented yet: a sink asking for it is refused, never sent in clear.
fn refuse_tls(r: &mut PropReader<'_>) {
    if !r.bool("ssl", false) {
        return;
    }
    let finding = Finding::new(
        FindingKind::UnsupportedType,
        r.raw("ssl").map(|p| p.origin.clone()),
        r.full_key("ssl"),
        "TLS is not implemented yet by Flumen's avro sink; the sink is refused rather than sending in clear text.",
    );
    r.unsupported("TLS (`ssl`)", finding);
    for k in [
        "trust-all-certs",
        "truststore",
        "truststore-password",
        "truststore-type",
        "exclude-protocols",
        "include-protocols",
        "exclude-cipher-suites",
        "include-cipher-suites",
    ] {
        r.mark_used(k);
    }
}

/// The avro sink.
pub struct AvroSink {
    config: AvroSinkConfig,
    endpoint: String,
    conn: Option<Connection>,
    call: Vec<u8>,
    /// The receiver's protocol hash, learnt by an earlier connection.
    server_hash: Option<[u8; 16]>,
}

impl AvroSink {
    /// A sink with `config`; it connects on its first delivery.
    pub fn new(config: AvroSinkConfig) -> Self {
        AvroSink {
            endpoint: format!("{}:{}", config.hostname, config.port),
            config,
            conn: None,
            call: Vec::new(),
            server_hash: None,
        }
    }

    fn io(&self, what: &str, source: std::io::Error) -> SinkError {
        SinkError::Transport {
            context: format!("avro {what} {}", self.endpoint),
            detail: source.to_string(),
            source: Box::new(source),
        }
    }

    async fn connect(&self) -> Result<Connection, SinkError> {
        let address = (self.config.hostname.as_str(), self.config.port);
        let stream = tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| {
                self.io(
                    "connecting to",
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "timed out (connect-timeout={} ms)",
                            self.config.connect_timeout.as_millis()
                        ),
                    ),
                )
            })?
            .map_err(|e| self.io("connecting to", e))?;
        let _ = stream.set_nodelay(true);
        tracing::debug!(endpoint = %self.endpoint, "Connected.");
        Ok(Connection {
            stream,
            session: ClientSession::resuming(self.server_hash),
            serial: 0,
            decoder: FrameDecoder::new(MAX_ANSWER_BYTES),
            deflater: self.config.deflate.map(Deflater::new),
            inflater: self.config.deflate.map(|_| Inflater::default()),
            plain: BytesMut::new(),
            opened: Instant::now(),
        })
    }

    /// Sends the encoded call and waits for its reply, following a `NONE` handshake once.
    async fn exchange(&mut self) -> Result<Reply, SinkError> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let timeout = self.config.request_timeout;
        let attempt = async {
            for _ in 0..2 {
                if let Some(reply) = conn.call(&self.call).await? {
                    return Ok(reply);
                }
            }
            Err(std::io::Error::other(
                "the server refused the handshake twice",
            ))
        };
        let result = tokio::time::timeout(timeout, attempt).await;
        if let Some(hash) = conn.session.server_hash() {
            self.server_hash = Some(hash);
        }
        match result {
            Ok(Ok(reply)) => {
                self.conn = Some(conn);
                Ok(reply)
            }
            Ok(Err(error)) => Err(self.io("request to", error)),
            Err(_) => Err(self.io(
                "request to",
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("timed out (request-timeout={} ms)", timeout.as_millis()),
                ),
            )),
        }
    }
}

/// One connection to the receiver.
struct Connection {
    stream: TcpStream,
    session: ClientSession,
    serial: i32,
    decoder: FrameDecoder,
    deflater: Option<Deflater>,
    inflater: Option<Inflater>,
    plain: BytesMut,
    opened: Instant,
}

impl Connection {
    /// One request and its response; `None` when the handshake asks to send it again.
    async fn call(&mut self, call: &[u8]) -> std::io::Result<Option<Reply>> {
        let mut payload = Vec::with_capacity(call.len() + 64);
        self.session.request(call, &mut payload);
        self.serial = self.serial.wrapping_add(1);
        let mut framed = Vec::with_capacity(payload.len() + 12);
        frame::encode(self.serial, &payload, &mut framed);
        let bytes = match &mut self.deflater {
            Some(deflater) => {
                let mut out = Vec::with_capacity(framed.len() / 2 + 64);
                deflater.deflate(&framed, &mut out)?;
                out
            }
            None => framed,
        };
        self.stream.write_all(&bytes).await?;
        let answer = self.read_frame().await?;
        if answer.serial != self.serial {
            return Err(std::io::Error::other(format!(
                "an answer to request {} came for request {}",
                answer.serial, self.serial
            )));
        }
        self.session
            .response(&answer.payload)
            .map_err(std::io::Error::other)
    }

    async fn read_frame(&mut self) -> std::io::Result<frame::Frame> {
        let mut raw = [0u8; 8192];
        loop {
            if let Some(frame) = self
                .decoder
                .decode(&mut self.plain)
                .map_err(std::io::Error::other)?
            {
                return Ok(frame);
            }
            let n = self.stream.read(&mut raw).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the receiver closed the connection",
                ));
            }
            match &mut self.inflater {
                Some(inflater) => {
                    inflater.inflate(&raw[..n], &mut self.plain, MAX_ANSWER_BYTES * 2)?
                }
                None => self.plain.extend_from_slice(&raw[..n]),
            }
        }
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
            "hostname={} port={} batch-size={} connect-timeout={} request-timeout={} reset-connection-interval={} compression-type={}",
            c.hostname,
            c.port,
            c.batch_size,
            c.connect_timeout.as_millis(),
            c.request_timeout.as_millis(),
            c.reset_interval.map_or(0, |d| d.as_secs()),
            match c.deflate {
                Some(level) => format!("deflate compression-level={level}"),
                None => "none".into(),
            }
        )
    }

    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if let (Some(conn), Some(every)) = (&self.conn, self.config.reset_interval) {
            if conn.opened.elapsed() >= every {
                tracing::debug!(endpoint = %self.endpoint, "Resetting the connection (reset-connection-interval).");
                self.conn = None;
            }
        }
        self.call.clear();
        protocol::write_append_batch(events, &mut self.call).map_err(|e| SinkError::Io {
            context: format!("encoding a batch for {}", self.endpoint),
            source: std::io::Error::other(e),
        })?;
        match self.exchange().await? {
            Reply::Status(Status::Ok) => Ok(()),
            Reply::Status(status) => {
                // Flume's client resets its connection after a failure; so do we.
                self.conn = None;
                Err(SinkError::Refused {
                    endpoint: self.endpoint.clone(),
                    reason: format!("status {status:?}"),
                })
            }
            Reply::Error(message) => {
                self.conn = None;
                Err(SinkError::Refused {
                    endpoint: self.endpoint.clone(),
                    reason: format!("Avro error: {message}"),
                })
            }
        }
    }

    async fn stop(&mut self) -> Result<(), SinkError> {
        self.conn = None;
        Ok(())
    }
}
