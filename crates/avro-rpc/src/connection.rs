//! One client connection to an avro source: connect with a timeout, handshake as Java's
//! requestor does (remembering the server's hash across reconnects), send a call and wait
//! for its answer within the request timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use flumen_core::event::Event;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::deflate::{Deflater, Inflater};
use crate::frame::{self, Frame, FrameDecoder};
use crate::protocol::{self, ClientSession, Reply, Status};
use crate::zlib_stream::ZlibStream;

/// Largest answer accepted (answers are a few bytes; a handshake carries a protocol text).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Why a call did not get `OK`.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No connection could be made.
    #[error("connecting to {address}: {source}")]
    Connect {
        /// `host:port`.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The call failed on the wire (reset, closed, malformed answer).
    #[error("calling {address}: {source}")]
    Io {
        /// `host:port`.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No answer within the timeout.
    #[error("{what} {address} timed out after {} ms", timeout.as_millis())]
    Timeout {
        /// `host:port`.
        address: String,
        /// `connecting to` or `calling`.
        what: &'static str,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The server answered, and not `OK` (`FAILED`: its channel is full; an Avro error).
    #[error("{address} refused the call: {reason}")]
    Refused {
        /// `host:port`.
        address: String,
        /// The answer, in words.
        reason: String,
    },
    /// The client's configuration is not usable.
    #[error("RPC client configuration: {0}")]
    Config(String),
    /// Every host failed (failover and load-balancing clients); the last error is kept.
    #[error("no host took the call ({attempts} attempt(s)); last: {last}")]
    AllFailed {
        /// Attempts made.
        attempts: usize,
        /// The last host's error.
        last: Box<RpcError>,
    },
}

/// TLS for a connection: the client configuration and the name the server's certificate must
/// carry.
#[derive(Clone, Debug)]
pub struct TlsClient {
    /// The rustls client configuration (trust, protocol versions, suites).
    pub config: Arc<rustls::ClientConfig>,
    /// The server's name (a DNS name or an IP address) as its certificate must show it.
    pub server_name: ServerName<'static>,
}

/// A byte stream a connection runs over: TCP, or TLS over TCP.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Timeouts, compression and TLS of a connection.
#[derive(Clone, Debug)]
pub struct ConnectionOptions {
    /// Longest wait for the TCP connection.
    pub connect_timeout: Duration,
    /// Longest wait for a call's answer (a `NONE` handshake round included).
    pub request_timeout: Duration,
    /// `Some(level)`: compress with one zlib stream per direction.
    pub deflate: Option<u32>,
    /// TLS, when the server speaks it.
    pub tls: Option<TlsClient>,
}

impl Default for ConnectionOptions {
    /// Flume's defaults: 20 s timeouts, no compression.
    fn default() -> Self {
        ConnectionOptions {
            connect_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(20),
            deflate: None,
            tls: None,
        }
    }
}

/// One open connection.
pub struct Connection {
    address: String,
    options: ConnectionOptions,
    stream: Box<dyn Stream>,
    session: ClientSession,
    serial: i32,
    decoder: FrameDecoder,
    deflater: Option<Deflater>,
    inflater: Option<Inflater>,
    plain: BytesMut,
    opened: Instant,
    call: Vec<u8>,
}

impl Connection {
    /// Connects to `address` (`host:port`); `server_hash` is what an earlier connection to
    /// the same server learnt (so the handshake matches at once).
    pub async fn open(
        address: &str,
        options: ConnectionOptions,
        server_hash: Option<[u8; 16]>,
    ) -> Result<Connection, RpcError> {
        protocol::limit_allocations();
        let connect = async {
            let tcp = TcpStream::connect(address).await?;
            let _ = tcp.set_nodelay(true);
            let connector = |tls: &TlsClient| {
                (
                    tokio_rustls::TlsConnector::from(tls.config.clone()),
                    tls.server_name.clone(),
                )
            };
            // With TLS and deflate, TLS runs inside the zlib stream (Flume's order).
            let stream: Box<dyn Stream> = match (&options.tls, options.deflate) {
                (Some(tls), Some(level)) => {
                    let (c, name) = connector(tls);
                    Box::new(c.connect(name, ZlibStream::new(tcp, level)).await?)
                }
                (Some(tls), None) => {
                    let (c, name) = connector(tls);
                    Box::new(c.connect(name, tcp).await?)
                }
                (None, _) => Box::new(tcp),
            };
            std::io::Result::Ok(stream)
        };
        let stream = match tokio::time::timeout(options.connect_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(RpcError::Connect {
                    address: address.to_string(),
                    source,
                })
            }
            Err(_) => {
                return Err(RpcError::Timeout {
                    address: address.to_string(),
                    what: "connecting to",
                    timeout: options.connect_timeout,
                })
            }
        };
        Ok(Connection {
            address: address.to_string(),
            stream,
            session: ClientSession::resuming(server_hash),
            serial: 0,
            decoder: FrameDecoder::new(MAX_ANSWER_BYTES),
            // Under TLS the zlib stream is below it, not in the frames.
            deflater: options
                .deflate
                .filter(|_| options.tls.is_none())
                .map(Deflater::new),
            inflater: options
                .deflate
                .filter(|_| options.tls.is_none())
                .map(|_| Inflater::default()),
            options,
            plain: BytesMut::new(),
            opened: Instant::now(),
            call: Vec::new(),
        })
    }

    /// The server's protocol hash once learnt, for the next connection to the same server.
    pub fn server_hash(&self) -> Option<[u8; 16]> {
        self.session.server_hash()
    }

    /// How long ago the connection was opened.
    pub fn age(&self) -> Duration {
        self.opened.elapsed()
    }

    /// `appendBatch(events)`; `Ok` only on `OK`. After an error the connection should be
    /// dropped (its stream position is unknown).
    pub async fn append_batch(&mut self, events: &[Event]) -> Result<(), RpcError> {
        let mut call = std::mem::take(&mut self.call);
        call.clear();
        protocol::write_append_batch(events, &mut call).map_err(|e| self.io(e))?;
        let result = self.send_call(&call).await;
        self.call = call;
        result
    }

    /// `append(event)`; `Ok` only on `OK`.
    pub async fn append(&mut self, event: &Event) -> Result<(), RpcError> {
        let mut call = std::mem::take(&mut self.call);
        call.clear();
        protocol::write_append(event, &mut call).map_err(|e| self.io(e))?;
        let result = self.send_call(&call).await;
        self.call = call;
        result
    }

    /// Sends a call already encoded ([`protocol::write_append_batch`]); `Ok` only on `OK`.
    pub async fn send_call(&mut self, call: &[u8]) -> Result<(), RpcError> {
        self.exchange(call).await
    }

    fn io(&self, error: impl std::fmt::Display) -> RpcError {
        RpcError::Io {
            address: self.address.clone(),
            source: std::io::Error::other(error.to_string()),
        }
    }

    /// Sends the encoded call, following a `NONE` handshake once, within the request timeout.
    async fn exchange(&mut self, call: &[u8]) -> Result<(), RpcError> {
        let timeout = self.options.request_timeout;
        let reply = match tokio::time::timeout(timeout, self.call_twice(call)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(source)) => {
                return Err(RpcError::Io {
                    address: self.address.clone(),
                    source,
                })
            }
            Err(_) => {
                return Err(RpcError::Timeout {
                    address: self.address.clone(),
                    what: "calling",
                    timeout,
                })
            }
        };
        match reply {
            Reply::Status(Status::Ok) => Ok(()),
            Reply::Status(status) => Err(RpcError::Refused {
                address: self.address.clone(),
                reason: format!("status {status:?}"),
            }),
            Reply::Error(message) => Err(RpcError::Refused {
                address: self.address.clone(),
                reason: format!("Avro error: {message}"),
            }),
        }
    }

    async fn call_twice(&mut self, call: &[u8]) -> std::io::Result<Reply> {
        for _ in 0..2 {
            if let Some(reply) = self.call_once(call).await? {
                return Ok(reply);
            }
        }
        Err(std::io::Error::other(
            "the server refused the handshake twice",
        ))
    }

    /// One request and its response; `None` when the handshake asks to send it again.
    async fn call_once(&mut self, call: &[u8]) -> std::io::Result<Option<Reply>> {
        let mut payload = Vec::with_capacity(call.len() + 64);
        self.session.request(call, &mut payload);
        self.serial = self.serial.wrapping_add(1);
        let mut framed = Vec::with_capacity(payload.len() + 12);
        frame::encode(self.serial, &payload, &mut framed).map_err(std::io::Error::other)?;
        let bytes = match &mut self.deflater {
            Some(deflater) => {
                let mut out = Vec::with_capacity(framed.len() / 2 + 64);
                deflater.deflate(&framed, &mut out)?;
                out
            }
            None => framed,
        };
        self.stream.write_all(&bytes).await?;
        self.stream.flush().await?;
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

    async fn read_frame(&mut self) -> std::io::Result<Frame> {
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
                    "the server closed the connection",
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
