//! `http` sink (`org.apache.flume.sink.http.HttpSink`): POSTs events to an HTTP or HTTPS
//! endpoint and decides per answer status whether to commit, back off and count.
//!
//! # Requests
//! As in Flume, each event body is one `POST` to `endpoint`, with `Content-Type:
//! contentTypeHeader` and `Accept: acceptHeader`; event headers are not sent, and an event with
//! an empty body is not posted (it is committed, as Flume does). The events of a take are posted
//! in order, and the first one that is not committed ends the batch. Connections are kept alive
//! and reused; redirects are not followed (a `3XX` goes through the policies like any status).
//! At most 64 KiB of each answer's body is read, and never logged; nor are event bodies.
//!
//! Flumen extension `batchMode = json`: the whole take is one `POST` in Flume's `JSONHandler`
//! format (`[{"headers":{...},"body":"..."}]`, headers included), which Flume's and Flumen's
//! `http` source accept; the content type is `application/json; charset=UTF-8` unless
//! `contentTypeHeader` is set. A body that is not UTF-8 goes base64-encoded and marked (see
//! [`json`]).
//!
//! # Answers
//! Each status is looked up in the `rollback`, `backoff` and `incrementMetrics` policies (exact
//! status, then `NXX` class, then the `default*` key; see [`policy`]):
//! - rollback: [`Sink::deliver`] fails with [`SinkError::Rejected`] (carrying `backoff`) and
//!   the runner rolls the take back; events of the take posted before it are posted again
//!   (at most a batch of duplicates). No rollback: the event counts as delivered and the take
//!   commits, whatever the status (a `4XX` with `rollback.4XX = false` is dropped, as in Flume,
//!   and logged at WARN, rate-limited).
//! - backoff and incrementMetrics travel in [`Delivered`] from [`Sink::deliver_accounted`].
//! - no answer (connect refused, `connectTimeout` or `requestTimeout` passed, reset):
//!   [`SinkError::Transport`], rolled back with a backoff.
//!
//! Flumen extension `concurrency` (default 1): up to that many takes are posted at once, each
//! on its own task, and each take commits only when all its answers are in (see
//! [`Delivery::Later`]); takes may then arrive out of order, the events of one take stay in
//! order. With `batchMode = json`, `batchBytes` (default 16 MiB, 0 = no limit) cuts a take
//! into several requests of at most that many bytes of JSON (estimated; an event larger goes
//! alone), so a receiver's request limit is not hit by a large take.
//!
//! # Divergences from Flume
//! - Flume rolls back but reports success to its runner, so a failover or load-balancing sink
//!   processor never sees the failure. Flumen fails the delivery, so the processor can switch
//!   sinks and the failure is counted (`EventWriteFail`).
//! - Flume takes one event per transaction. `batchSize` (a Flumen key; default 1 as in Flume,
//!   100 in `json` mode) takes more per transaction.
//! - Only `http://` and `https://` endpoints are accepted (Flume fails at run time on others).
//! - `requestTimeout` is Flume's read timeout: the longest wait for the answer to progress.
//!
//! Flume's defaults roll back and back off on every status, `200` included: a config that
//! keeps them gets a finding (the behaviour is kept).

pub mod policy;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Client, Url};

use super::util::batch::BatchLimits;
use super::{Ack, Delivered, Delivery, Sink, SinkError};
use crate::config::{Finding, FindingKind, PropReader};
use crate::event::Event;
use crate::rate_limit::RateLimit;
use policy::StatusPolicies;

/// Flume's default `connectTimeout`, in milliseconds.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5000;
/// Flume's default `requestTimeout`, in milliseconds.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 5000;
/// Flume's default `contentTypeHeader`.
pub const DEFAULT_CONTENT_TYPE: &str = "text/plain";
/// Flume's default `acceptHeader`.
pub const DEFAULT_ACCEPT: &str = "text/plain";
/// The content type of `batchMode = json` unless `contentTypeHeader` is set.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";
/// Default `batchSize` with `batchMode = none`: one event per transaction, as Flume.
pub const DEFAULT_BATCH_SIZE: usize = 1;
/// Default `batchSize` with `batchMode = json`.
pub const DEFAULT_JSON_BATCH_SIZE: usize = 100;
/// Default `batchBytes` with `batchMode = json`: well under the 64 MiB request limit of
/// Flumen's http source, base64 included.
pub const DEFAULT_BATCH_BYTES: usize = 16 << 20;
/// Default `concurrency`: one take at a time, as Flume.
pub const DEFAULT_CONCURRENCY: usize = 1;
/// Most takes posted at once.
pub const MAX_CONCURRENCY: usize = 64;
/// Most bytes of an answer's body read (to reuse the connection) before it is dropped.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Least time between two warnings about answers committed without delivery.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// How a take becomes requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchMode {
    /// One request per event body (Flume).
    None,
    /// One request per take, in `JSONHandler` format (Flumen).
    Json,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct HttpSinkConfig {
    /// `endpoint` (required): an `http://` or `https://` URL.
    pub endpoint: Url,
    /// `connectTimeout`, milliseconds in the file (default 5000, at least 1).
    pub connect_timeout: Duration,
    /// `requestTimeout`, milliseconds in the file (default 5000, at least 1).
    pub request_timeout: Duration,
    /// `contentTypeHeader` (default `text/plain`; `application/json; charset=UTF-8` in json mode).
    pub content_type: HeaderValue,
    /// `acceptHeader` (default `text/plain`).
    pub accept: HeaderValue,
    /// `default*`, `backoff.*`, `rollback.*`, `incrementMetrics.*`.
    pub policies: StatusPolicies,
    /// `batchMode`: `none` (default) or `json`.
    pub batch_mode: BatchMode,
    /// `batchSize`: events per transaction.
    pub batch_size: usize,
    /// `batchBytes`: most bytes of JSON per request in `json` mode (0 = no limit).
    pub batch_bytes: usize,
    /// `concurrency`: most takes posted at once.
    pub concurrency: usize,
}

impl HttpSinkConfig {
    /// Reads Flume's http sink keys and Flumen's `batchMode` and `batchSize`.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let endpoint = r
            .required_string("endpoint")
            .and_then(|e| parse_endpoint(r, &e));
        let max_ms = i32::MAX as u64;
        let connect = r.number("connectTimeout", DEFAULT_CONNECT_TIMEOUT_MS, 1, max_ms);
        let request = r.number("requestTimeout", DEFAULT_REQUEST_TIMEOUT_MS, 1, max_ms);
        let batch_mode = match r.choice("batchMode", "none", &["none", "json"]) {
            "json" => BatchMode::Json,
            _ => BatchMode::None,
        };
        let content_default = match batch_mode {
            BatchMode::None => DEFAULT_CONTENT_TYPE,
            BatchMode::Json => JSON_CONTENT_TYPE,
        };
        let content_type = header_value(r, "contentTypeHeader", content_default);
        let accept = header_value(r, "acceptHeader", DEFAULT_ACCEPT);
        let policies = StatusPolicies::from_props(r);
        let batch_default = match batch_mode {
            BatchMode::None => DEFAULT_BATCH_SIZE,
            BatchMode::Json => DEFAULT_JSON_BATCH_SIZE,
        };
        let batch_size = r.number("batchSize", batch_default, 1, 1 << 20);
        let batch_bytes = match batch_mode {
            BatchMode::Json => r.number("batchBytes", DEFAULT_BATCH_BYTES, 0, 1 << 30),
            BatchMode::None => Some(0),
        };
        let concurrency = r.number("concurrency", DEFAULT_CONCURRENCY, 1, MAX_CONCURRENCY);
        Some(HttpSinkConfig {
            endpoint: endpoint?,
            connect_timeout: Duration::from_millis(connect?),
            request_timeout: Duration::from_millis(request?),
            content_type: content_type?,
            accept: accept?,
            policies,
            batch_mode,
            batch_size: batch_size?,
            batch_bytes: batch_bytes?,
            concurrency: concurrency?,
        })
    }
}

/// Parses `endpoint`; anything but an absolute http(s) URL drops the sink.
fn parse_endpoint(r: &mut PropReader<'_>, value: &str) -> Option<Url> {
    let problem = match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            return Some(url)
        }
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            "no host; Flume drops the sink".to_string()
        }
        Ok(url) => format!(
            "the scheme `{}` is not http or https; Flume would keep the sink and fail on every event, Flumen drops it",
            url.scheme()
        ),
        Err(error) => format!("{error}; Flume drops the sink"),
    };
    let origin = r.raw("endpoint").map(|p| p.origin.clone());
    let key = r.full_key("endpoint");
    r.drop_component(
        Finding::new(
            FindingKind::BadValue,
            origin,
            key,
            format!("Endpoint `{value}` is not a usable URL: {problem}."),
        )
        .expected("an http:// or https:// URL".to_string()),
    );
    None
}

/// A header value; one that cannot be sent in a header (control characters) drops the sink.
fn header_value(r: &mut PropReader<'_>, key: &str, default: &'static str) -> Option<HeaderValue> {
    let Some(prop) = r.raw(key) else {
        return Some(HeaderValue::from_static(default));
    };
    match HeaderValue::from_str(prop.value.trim()) {
        Ok(v) => Some(v),
        Err(_) => {
            r.drop_component(
                Finding::new(
                    FindingKind::BadValue,
                    Some(prop.origin.clone()),
                    prop.full_key.clone(),
                    "The value cannot be sent as an HTTP header; the sink is dropped.".to_string(),
                )
                .expected("visible ASCII text".to_string()),
            );
            None
        }
    }
}

/// The http sink.
pub struct HttpSink {
    poster: Arc<Poster>,
}

/// What posting needs, shared with the tasks of takes in flight.
struct Poster {
    config: HttpSinkConfig,
    client: Client,
    /// The endpoint as text, for messages.
    endpoint: String,
    warnings: RateLimit,
}

impl HttpSink {
    /// Reads the config and builds the client; `None` drops the sink (findings say why).
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let config = HttpSinkConfig::from_props(r)?;
        match HttpSink::new(config) {
            Ok(sink) => Some(sink),
            Err(error) => {
                let key = r.full_key("endpoint");
                let origin = r.raw("endpoint").map(|p| p.origin.clone());
                r.drop_component(Finding::new(
                    FindingKind::DroppedComponent,
                    origin,
                    key,
                    format!("The HTTP client cannot be built ({error}); the sink is dropped."),
                ));
                None
            }
        }
    }

    /// A sink with `config`.
    pub fn new(config: HttpSinkConfig) -> Result<Self, reqwest::Error> {
        let client = Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("flumen/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpSink {
            poster: Arc::new(Poster {
                endpoint: config.endpoint.to_string(),
                config,
                client,
                warnings: RateLimit::new(WARN_EVERY),
            }),
        })
    }
}

impl Poster {
    /// POSTs one body and returns the answer's status.
    async fn post(&self, body: Bytes, content_type: &HeaderValue) -> Result<u16, SinkError> {
        let sent = self
            .client
            .post(self.config.endpoint.clone())
            .header(CONTENT_TYPE, content_type.clone())
            .header(ACCEPT, self.config.accept.clone())
            .body(body)
            .send()
            .await;
        let mut answer = sent.map_err(|e| self.transport_error(e))?;
        let status = answer.status().as_u16();
        // Read a bounded answer so the connection can be reused; an error here does not
        // change the status, it only costs the connection.
        let mut left = MAX_ANSWER_BYTES;
        while let Ok(Some(chunk)) = answer.chunk().await {
            if chunk.len() >= left {
                break;
            }
            left -= chunk.len();
        }
        Ok(status)
    }

    fn transport_error(&self, error: reqwest::Error) -> SinkError {
        let detail = if error.is_timeout() {
            format!(
                "timed out (connectTimeout={} ms, requestTimeout={} ms)",
                self.config.connect_timeout.as_millis(),
                self.config.request_timeout.as_millis()
            )
        } else {
            innermost(&error)
        };
        SinkError::Transport {
            context: format!("POST {}", self.endpoint),
            detail,
            source: Box::new(error),
        }
    }

    /// Applies the policies to one answer covering `events` events; `Err` on rollback.
    fn judge(&self, status: u16, events: usize, acc: &mut Delivered) -> Result<(), SinkError> {
        let p = &self.config.policies;
        let (rollback, policy_key) = p.rollback.decide(status);
        let backoff = p.backoff.resolve(status);
        if rollback {
            return Err(SinkError::Rejected {
                endpoint: self.endpoint.clone(),
                status,
                policy_key,
                backoff,
            });
        }
        acc.backoff |= backoff;
        if p.increment_metrics.resolve(status) {
            acc.drained += events;
        }
        if !(200..300).contains(&status) {
            if let Some(suppressed) = self.warnings.check() {
                tracing::warn!(endpoint = %self.endpoint, status, events, %policy_key, suppressed, "The endpoint did not accept events, which are committed without retry as configured.");
            }
        }
        Ok(())
    }

    async fn deliver_each(&self, events: &[Event]) -> Result<Delivered, SinkError> {
        let mut acc = Delivered {
            drained: 0,
            backoff: false,
        };
        let content_type = &self.config.content_type;
        for event in events {
            if event.body.is_empty() {
                continue;
            }
            let status = self.post(event.body.clone(), content_type).await?;
            self.judge(status, 1, &mut acc)?;
        }
        tracing::debug!(endpoint = %self.endpoint, events = events.len(), "Posted a batch event by event.");
        Ok(acc)
    }

    /// Posts the take as JSON, one request per `batchBytes`; the first answer that rolls back
    /// fails the whole take (requests before it are posted again with it).
    async fn deliver_json(&self, events: &[Event]) -> Result<Delivered, SinkError> {
        let mut acc = Delivered {
            drained: 0,
            backoff: false,
        };
        let limits = BatchLimits::new(events.len(), self.config.batch_bytes);
        for chunk in limits.split(events, crate::wire::flume_json::estimated_len) {
            let mut body = Vec::with_capacity(estimated_body(chunk));
            let encoded = crate::wire::flume_json::encode_batch(chunk, &mut body);
            if encoded > 0 {
                tracing::debug!(endpoint = %self.endpoint, encoded, "Sent bodies that are not UTF-8 as base64.");
            }
            let status = self
                .post(Bytes::from(body), &self.config.content_type)
                .await?;
            self.judge(status, chunk.len(), &mut acc)?;
            tracing::debug!(endpoint = %self.endpoint, events = chunk.len(), status, "Posted a JSON batch.");
        }
        Ok(acc)
    }

    /// Posts a take as the batch mode says.
    async fn deliver(&self, events: &[Event]) -> Result<Delivered, SinkError> {
        match self.config.batch_mode {
            BatchMode::None => self.deliver_each(events).await,
            BatchMode::Json => self.deliver_json(events).await,
        }
    }
}

/// Bytes to reserve for a chunk's JSON body.
fn estimated_body(chunk: &[Event]) -> usize {
    chunk
        .iter()
        .map(crate::wire::flume_json::estimated_len)
        .sum::<usize>()
        .max(64)
}

/// The innermost cause of an error chain, in words ("Connection refused (os error 111)").
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[async_trait]
impl Sink for HttpSink {
    fn type_name(&self) -> &'static str {
        "http"
    }

    fn batch_size(&self) -> usize {
        self.poster.config.batch_size
    }

    fn describe(&self) -> String {
        let c = &self.poster.config;
        format!(
            "endpoint={} connectTimeout={} requestTimeout={} contentTypeHeader={} acceptHeader={} batchMode={} batchSize={} batchBytes={} concurrency={} {}",
            self.poster.endpoint,
            c.connect_timeout.as_millis(),
            c.request_timeout.as_millis(),
            c.content_type.to_str().unwrap_or("?"),
            c.accept.to_str().unwrap_or("?"),
            match c.batch_mode {
                BatchMode::None => "none",
                BatchMode::Json => "json",
            },
            c.batch_size,
            c.batch_bytes,
            c.concurrency,
            c.policies.describe()
        )
    }

    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.deliver_accounted(events).await.map(|_| ())
    }

    async fn deliver_accounted(&mut self, events: &[Event]) -> Result<Delivered, SinkError> {
        self.poster.deliver(events).await
    }

    /// With `concurrency` above 1 the take is posted on its own task and acknowledged by its
    /// answers; the slot meanwhile takes and posts the next ones.
    async fn submit(&mut self, events: &[Event]) -> Result<Delivery, SinkError> {
        if self.poster.config.concurrency <= 1 {
            return self.poster.deliver(events).await.map(Delivery::Done);
        }
        let poster = self.poster.clone();
        let events = events.to_vec();
        Ok(Delivery::Later(Ack::new(async move {
            poster.deliver(&events).await
        })))
    }

    fn acks_in_flight(&self) -> usize {
        self.poster.config.concurrency
    }
}

#[cfg(test)]
mod tests;
