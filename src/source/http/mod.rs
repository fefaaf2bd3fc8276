//! `http` source (`org.apache.flume.source.http.HTTPSource`): events posted over HTTP/1.1.
//!
//! One request is one batch: its handler (see [`handler`]) turns the body into events, and the
//! batch goes to the channels in one put transaction. The answer tells the client what
//! happened, so a client that retries everything not answered 200 loses nothing:
//!
//! | Status | When |
//! |---|---|
//! | 200 (empty body) | the whole batch was committed |
//! | 400 | the body is not what the handler expects (bad JSON, wrong shape, missing mandatory parameter) |
//! | 403 | `TRACE` or `OPTIONS` (Flume forbids both) |
//! | 405 | any method other than `POST` and `GET` (Flume's servlet treats `GET` as `POST`) |
//! | 408 | the client stalled for [`BODY_IDLE_TIMEOUT`] while sending the body |
//! | 413 | the body exceeds `maxRequestBytes`, or holds more events than one transaction takes |
//! | 415 | the JSON handler was given a charset other than UTF-8, UTF-16 or UTF-32 |
//! | 503 | a channel is full (or closed); nothing of the batch was committed to it |
//!
//! Errors carry a one-line plain-text reason. Connections are kept alive; a bad request only
//! affects its own answer. On shutdown the listener closes, idle connections are closed and
//! requests in flight finish (their put is never cut in half: it runs as its own task, so a
//! client that disconnects mid-put does not cancel it either).
//!
//! Keys: `bind` (default `0.0.0.0`), `port` (required; 0 picks a free port, logged),
//! `handler` (default `org.apache.flume.source.http.JSONHandler`), `handler.*`; Flumen
//! extension `maxRequestBytes` (default 64 MiB): the most body bytes held per request, so a
//! body is never read without bound.
//!
//! Divergences from Flume: more events than the channels' transactionCapacity answer 413
//! (Flume tries the put and answers 503, which invites a retry that can never succeed); an
//! unsupported charset answers 415 and an empty body 400 (Flume answers 500 to both); `HEAD`
//! answers 405 (Flume's servlet runs it as a `GET`, i.e. a post without a reply body); TLS
//! (`ssl`/`enableSSL`) is not implemented, so a source asking for it is dropped with a finding
//! rather than served in clear text; Jetty tuning keys (`QueuedThreadPool.*`, ...) are reported
//! as ignored. With several channels, a batch committed to an earlier channel stays there when
//! a later one fails, as in Flume's `ChannelProcessor`.

pub mod handler;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_util::task::TaskTracker;

use crate::rate_limit::RateLimit;

use self::handler::{BlobOptions, DecodeError, Handler, RequestInfo};
use super::limits::{Connections, Held, InFlight, NetLimits};
use super::{ProcessError, Source, SourceContext, SourceError};
use crate::channel::ChannelError;
use crate::config::{Finding, FindingKind, PropReader};

/// Flume's default `bind`.
pub const DEFAULT_BIND: &str = "0.0.0.0";
/// Flume's default `handler`.
pub const JSON_HANDLER: &str = "org.apache.flume.source.http.JSONHandler";
/// The morphline module's blob handler (`handler.maxBlobLength`).
pub const MORPHLINE_BLOB_HANDLER: &str = "org.apache.flume.sink.solr.morphline.BlobHandler";
/// Flume core's blob handler (`handler.mandatoryParameters`).
pub const CORE_BLOB_HANDLER: &str = "org.apache.flume.source.http.BLOBHandler";
/// Flume's default `handler.maxBlobLength` (bytes).
pub const DEFAULT_MAX_BLOB_LENGTH: usize = 100_000_000;
/// Default of the Flumen extension `maxRequestBytes`.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 << 20;
/// How long a client may stall while sending a body before it is answered 408.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request head (also closes idle keep-alive connections).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read and discarded past a limit so the client can read its answer on a clean connection.
const DRAIN_MAX: usize = 8 << 20;
/// How long in-flight requests may take to finish once the source stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// `bind`: address to listen on.
    pub bind: String,
    /// `port` (required; 0 picks a free port).
    pub port: u16,
    /// `handler`, as written (or the default).
    pub handler_class: String,
    /// The handler with its `handler.*` options.
    pub handler: Handler,
    /// Flumen extension `maxRequestBytes`: most body bytes held per request.
    pub max_request_bytes: usize,
    /// Flumen's `maxConnections` and `maxInFlightBytes` (request bodies being read, all
    /// connections together; past it a request is answered 503).
    pub limits: NetLimits,
}

impl HttpConfig {
    /// Reads Flume's HTTP source keys; `None` when Flume (or Flumen, for TLS) drops the source.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let bind = r.string("bind", DEFAULT_BIND);
        if bind.is_empty() {
            let finding = Finding::new(
                FindingKind::BadValue,
                r.raw("bind").map(|p| p.origin.clone()),
                r.full_key("bind"),
                "`bind` is empty; Flume drops the source.",
            );
            r.drop_component(finding);
        }
        let port = r
            .required_string("port")
            .and_then(|_| r.number("port", 0u16, 0, u16::MAX));
        let handler_class = r.string("handler", JSON_HANDLER);
        let handler = match handler_class.as_str() {
            JSON_HANDLER => Some(Handler::Json),
            MORPHLINE_BLOB_HANDLER => r
                .number(
                    "handler.maxBlobLength",
                    DEFAULT_MAX_BLOB_LENGTH,
                    1,
                    i32::MAX as usize,
                )
                .map(|max| {
                    Handler::Blob(BlobOptions {
                        max_blob_length: Some(max),
                        content_type_header: true,
                        mandatory: Vec::new(),
                    })
                }),
            CORE_BLOB_HANDLER => {
                // Flume splits "" into one empty name, which no request can satisfy; empty
                // names are skipped here.
                let names = r.string("handler.mandatoryParameters", "");
                Some(Handler::Blob(BlobOptions {
                    max_blob_length: None,
                    content_type_header: false,
                    mandatory: names
                        .split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(String::from)
                        .collect(),
                }))
            }
            other => {
                // Flume hands the `handler.*` keys to the handler class: they are its own.
                r.mark_prefix_used("handler");
                let finding = Finding::new(
                    FindingKind::UnsupportedType,
                    r.raw("handler").map(|p| p.origin.clone()),
                    r.full_key("handler"),
                    format!(
                        "Handler class `{other}` is not implemented by Flumen (it cannot run Java plugins); Flume would hand it the `handler.*` keys."
                    ),
                )
                .expected(format!(
                    "one of {JSON_HANDLER}, {MORPHLINE_BLOB_HANDLER}, {CORE_BLOB_HANDLER}"
                ));
                r.unsupported(format!("handler `{other}`"), finding);
                None
            }
        };
        crate::tls::refuse_if_on(
            r,
            &["ssl", "enableSSL"],
            "http source",
            crate::tls::SERVER_SETTINGS,
        );
        let limits = NetLimits::from_props(r);
        let max_request_bytes = r.number(
            "maxRequestBytes",
            DEFAULT_MAX_REQUEST_BYTES,
            1,
            usize::MAX / 4,
        );
        if r.is_fatal() || r.lacking().is_some() {
            return None;
        }
        Some(HttpConfig {
            bind,
            port: port?,
            handler_class,
            handler: handler?,
            max_request_bytes: max_request_bytes?,
            limits: limits?,
        })
    }

    /// Most body bytes kept per request, and whether more is cut off (true) or refused (false).
    fn body_limit(&self) -> (usize, bool) {
        match &self.handler {
            Handler::Blob(BlobOptions {
                max_blob_length: Some(max),
                ..
            }) if *max <= self.max_request_bytes => (*max, true),
            _ => (self.max_request_bytes, false),
        }
    }
}

/// The HTTP source.
pub struct HttpSource {
    config: HttpConfig,
}

impl HttpSource {
    /// A source with `config`.
    pub fn new(config: HttpConfig) -> Self {
        HttpSource { config }
    }
}

/// State shared by every connection of one source.
struct Shared {
    config: HttpConfig,
    ctx: SourceContext,
    /// Channel puts in flight (awaited at shutdown).
    puts: TaskTracker,
    warn: RateLimit,
    /// Request body bytes held by all connections (`maxInFlightBytes`).
    budget: InFlight,
}

#[async_trait]
impl Source for HttpSource {
    fn type_name(&self) -> &'static str {
        "http"
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "bind={} port={} handler={} maxRequestBytes={} maxConnections={} maxInFlightBytes={}",
            c.bind,
            c.port,
            c.handler_class,
            c.max_request_bytes,
            c.limits.max_connections,
            c.limits.max_in_flight_bytes
        )
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let listener = super::listen_tcp(&self.config.bind, self.config.port, &ctx).await?;
        let budget = InFlight::new(self.config.limits.max_in_flight_bytes);
        let shared = Arc::new(Shared {
            config: self.config,
            ctx: ctx.clone(),
            puts: TaskTracker::new(),
            warn: RateLimit::new(Duration::from_secs(10)),
            budget,
        });
        let admission = Connections::new(shared.config.limits.max_connections);
        let connections = TaskTracker::new();
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let Some(slot) = admission.admit(&ctx.name, peer) else {
                            drop(stream);
                            continue;
                        };
                        let shared = shared.clone();
                        connections.spawn(async move {
                            serve_connection(stream, peer, shared).await;
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
        connections.close();
        shared.puts.close();
        let finished = tokio::time::timeout(SHUTDOWN_GRACE, async {
            connections.wait().await;
            shared.puts.wait().await;
        })
        .await;
        if finished.is_err() {
            tracing::warn!(source = %ctx.name, connections = connections.len(), "Requests still in flight after the shutdown grace period; leaving them.");
        }
        Ok(())
    }
}

/// Serves one keep-alive connection; on shutdown, lets the request in flight finish.
async fn serve_connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let counters = shared.ctx.counters.clone();
    counters.open_connections.add(1);
    let service_state = shared.clone();
    let service = hyper::service::service_fn(move |req| {
        let shared = service_state.clone();
        async move { Ok::<_, Infallible>(handle(req, &shared).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shared.ctx.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(source = %shared.ctx.name, %peer, %error, "HTTP connection ended with an error.");
    }
    counters.open_connections.add(-1);
}

/// Answers one request.
async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let ctx = &shared.ctx;
    match *req.method() {
        Method::POST | Method::GET => {}
        Method::TRACE | Method::OPTIONS => {
            return reply(StatusCode::FORBIDDEN, "TRACE and OPTIONS are not allowed.")
        }
        _ => {
            let mut resp = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "Only POST (or GET) requests carry events.",
            );
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST, GET"));
            return resp;
        }
    }
    let (parts, body) = req.into_parts();
    let (limit, truncate) = shared.config.body_limit();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Held until the events are put: the decoded events keep the body's bytes.
    let mut held = Held::default();
    let body = match read_body(body, limit, truncate, declared, (&shared.budget, &mut held)).await {
        Ok((bytes, cut)) => {
            if cut {
                tracing::warn!(source = %ctx.name, max_blob_length = limit, "Request body exceeds maxBlobLength; the blob event is truncated, as in Flume.");
            }
            bytes
        }
        Err(error) => {
            ctx.counters.event_read_fail.inc();
            let (status, reason) = match error {
                BodyError::TooLarge => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("The request body exceeds maxRequestBytes ({limit} bytes)."),
                ),
                BodyError::Timeout => (
                    StatusCode::REQUEST_TIMEOUT,
                    "The request body stalled; nothing was accepted.".to_string(),
                ),
                BodyError::Read(e) => (
                    StatusCode::BAD_REQUEST,
                    format!("Reading the request body failed: {e}"),
                ),
                BodyError::Busy => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "The source holds maxInFlightBytes ({} bytes) of request bodies already; nothing was accepted. Retry later.",
                        shared.config.limits.max_in_flight_bytes
                    ),
                ),
            };
            warn_refused(&shared.warn, &ctx.name, status, &reason);
            return reply(status, &reason);
        }
    };
    let info = RequestInfo {
        content_type: parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        query: parts.uri.query(),
    };
    let events = match shared.config.handler.decode(&info, body) {
        Ok(events) => events,
        Err(error) => {
            ctx.counters.event_read_fail.inc();
            let status = match error {
                DecodeError::BadRequest(_) => StatusCode::BAD_REQUEST,
                DecodeError::UnsupportedCharset(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            };
            let reason = format!("Bad request: {error}");
            warn_refused(&shared.warn, &ctx.name, status, &reason);
            return reply(status, &reason);
        }
    };
    let n = events.len();
    let max = ctx.processor.max_batch();
    if n > max {
        ctx.counters.event_read_fail.inc();
        let reason = format!(
            "The request holds {n} events; the channels take at most {max} per transaction (transactionCapacity). Send smaller batches."
        );
        warn_refused(
            &shared.warn,
            &ctx.name,
            StatusCode::PAYLOAD_TOO_LARGE,
            &reason,
        );
        return reply(StatusCode::PAYLOAD_TOO_LARGE, &reason);
    }
    ctx.counters.append_batch_received.inc();
    ctx.counters.event_received.add(n as u64);
    let processor = ctx.processor.clone();
    // Its own task: a client that disconnects must not cancel a put halfway.
    let put = shared
        .puts
        .spawn(async move { processor.process(events).await });
    let result = match put.await {
        Ok(r) => r,
        Err(error) => {
            ctx.counters.generic_processing_fail.inc();
            tracing::error!(source = %ctx.name, %error, "The channel put task failed.");
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The channel put failed unexpectedly.",
            );
        }
    };
    match result {
        Ok(()) => {
            ctx.counters.append_batch_accepted.inc();
            ctx.counters.event_accepted.add(n as u64);
            Response::new(Full::new(Bytes::new()))
        }
        Err(error) => {
            // ChannelWriteFail is counted where the put failed (the processor).
            let status = match &error {
                ProcessError::Channel(
                    ChannelError::Full { .. }
                    | ChannelError::Closed { .. }
                    | ChannelError::Unavailable { .. },
                ) => StatusCode::SERVICE_UNAVAILABLE,
                ProcessError::Channel(
                    ChannelError::BatchTooLarge { .. } | ChannelError::NeverFits { .. },
                ) => StatusCode::PAYLOAD_TOO_LARGE,
                // Events the interceptors cannot process, and no errorChannel: the request
                // itself is what is wrong.
                ProcessError::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let reason = format!("The batch was not accepted: {error}. Retry later.");
            warn_refused(&shared.warn, &ctx.name, status, &reason);
            reply(status, &reason)
        }
    }
}

/// A plain-text answer.
fn reply(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(format!("{reason}\n"))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Why a body could not be read.
#[derive(Debug)]
enum BodyError {
    TooLarge,
    Timeout,
    Read(hyper::Error),
    /// `maxInFlightBytes` of bodies are held already.
    Busy,
}

/// Reads at most `limit` body bytes. Past the limit, the body is cut (`truncate`, reported by
/// the flag) or refused; in both cases up to [`DRAIN_MAX`] more bytes are read and dropped so
/// the client, still sending, can read the answer.
async fn read_body(
    mut body: Incoming,
    limit: usize,
    truncate: bool,
    declared: Option<u64>,
    (budget, budget_held): (&InFlight, &mut Held),
) -> Result<(Bytes, bool), BodyError> {
    let declared_over = declared.is_some_and(|d| d > limit as u64);
    if declared_over && !truncate && declared.is_some_and(|d| d > (limit + DRAIN_MAX) as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut held = 0usize;
    let mut over = false;
    let mut busy = false;
    let mut drained = 0usize;
    loop {
        let frame = match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.frame()).await {
            Err(_) => return Err(BodyError::Timeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(BodyError::Read(e)),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        if over || busy {
            drained += data.len();
            if drained > DRAIN_MAX {
                break;
            }
            continue;
        }
        if held + data.len() > limit {
            over = true;
            drained = held + data.len() - limit;
            if !truncate {
                chunks.clear();
                continue;
            }
            data.truncate(limit - held);
        }
        if !budget.try_hold(budget_held, data.len()) {
            // Refused; the rest is read and dropped so that the client can read the answer.
            busy = true;
            drained = data.len();
            chunks.clear();
            *budget_held = Held::default();
            continue;
        }
        held += data.len();
        chunks.push(data);
    }
    if busy {
        return Err(BodyError::Busy);
    }
    if over && !truncate {
        return Err(BodyError::TooLarge);
    }
    let bytes = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut all = BytesMut::with_capacity(held);
            for c in &chunks {
                all.extend_from_slice(c);
            }
            all.freeze()
        }
    };
    Ok((bytes, over))
}

/// Logs a refused request, rate-limited.
fn warn_refused(limit: &RateLimit, source: &str, status: StatusCode, reason: &str) {
    if let Some(suppressed) = limit.check() {
        tracing::warn!(source = %source, status = status.as_u16(), %reason, suppressed, "Refused an HTTP request.");
    }
}
