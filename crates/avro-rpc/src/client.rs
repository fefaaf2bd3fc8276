//! RPC clients as Flume's SDK offers them (`RpcClientFactory` with `client.type`):
//! - `default`: one host;
//! - `default_failover`: hosts in order, sticking to the one that works, at most
//!   `max-attempts` hosts per call (default: all of them);
//! - `default_loadbalance`: each call goes to the next host of `host-selector` (`round_robin`
//!   or `random`), trying the others when it fails; with `backoff` a failed host is left out
//!   for 1 s, 2 s, 4 s … up to `maxBackoff` (ms; default 30,000).
//!
//! Properties are Flume's: `hosts = h1 h2`, `hosts.h1 = host:port`, `batch-size` (100),
//! `connect-timeout` and `request-timeout` (20,000 ms), `compression-type` (`deflate`) and
//! `compression-level` (6). A batch larger than `batch-size` is sent as several calls.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flumen_core::event::Event;

use crate::connection::{Connection, ConnectionOptions, RpcError};

/// Flume's default `batch-size`.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// Flume's default longest backoff of a load-balancing client.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How the next host is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Each call starts at the host after the last call's.
    RoundRobin,
    /// Each call starts at a random host.
    Random,
}

/// Which client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// One host.
    Default,
    /// Hosts in order, sticky.
    Failover {
        /// Most hosts tried per call.
        max_attempts: usize,
    },
    /// Calls spread over the hosts.
    LoadBalance {
        /// The order of hosts for a call.
        selector: Selector,
        /// Whether a failed host is left out for a while.
        backoff: bool,
        /// The longest it is left out.
        max_backoff: Duration,
    },
}

/// A client's resolved configuration.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `host:port` of each host, in `hosts` order.
    pub hosts: Vec<String>,
    /// Most events per call.
    pub batch_size: usize,
    /// Timeouts and compression.
    pub options: ConnectionOptions,
    /// The client type.
    pub kind: ClientKind,
}

impl ClientConfig {
    /// A default client to one `host:port` with Flume's defaults.
    pub fn single(address: &str) -> Self {
        ClientConfig {
            hosts: vec![address.to_string()],
            batch_size: DEFAULT_BATCH_SIZE,
            options: ConnectionOptions::default(),
            kind: ClientKind::Default,
        }
    }

    /// Reads Flume's RPC client properties.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Self, RpcError> {
        let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let names: Vec<&str> = get("hosts")
            .ok_or_else(|| RpcError::Config("`hosts` is missing".into()))?
            .split_whitespace()
            .collect();
        let hosts = names
            .iter()
            .map(|n| {
                get(&format!("hosts.{n}"))
                    .map(str::to_string)
                    .ok_or_else(|| RpcError::Config(format!("`hosts.{n}` (host:port) is missing")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let number = |k: &str, default: u64| -> Result<u64, RpcError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| RpcError::Config(format!("`{k}` = `{v}` is not a number"))),
            }
        };
        let deflate = get("compression-type").is_some_and(|c| c.eq_ignore_ascii_case("deflate"));
        let options = ConnectionOptions {
            connect_timeout: Duration::from_millis(number("connect-timeout", 20_000)?.max(1000)),
            request_timeout: Duration::from_millis(number("request-timeout", 20_000)?.max(1000)),
            deflate: deflate
                .then(|| number("compression-level", 6))
                .transpose()?
                .map(|l| l.min(9) as u32),
            tls: None,
        };
        let kind = match get("client.type").unwrap_or("default") {
            "default" if hosts.len() == 1 => ClientKind::Default,
            "default" => {
                return Err(RpcError::Config(format!(
                    "the default client takes exactly one host, not {}",
                    hosts.len()
                )))
            }
            "default_failover" => ClientKind::Failover {
                max_attempts: (number("max-attempts", hosts.len() as u64)? as usize).max(1),
            },
            "default_loadbalance" => ClientKind::LoadBalance {
                selector: match get("host-selector").unwrap_or("round_robin") {
                    "round_robin" => Selector::RoundRobin,
                    "random" => Selector::Random,
                    other => {
                        return Err(RpcError::Config(format!(
                            "host-selector `{other}`: Flumen has round_robin and random"
                        )))
                    }
                },
                backoff: get("backoff").is_some_and(|b| b.eq_ignore_ascii_case("true")),
                max_backoff: match number("maxBackoff", 0)? {
                    0 => DEFAULT_MAX_BACKOFF,
                    ms => Duration::from_millis(ms),
                },
            },
            other => {
                return Err(RpcError::Config(format!(
                    "client.type `{other}`: Flumen has default, default_failover and default_loadbalance"
                )))
            }
        };
        Ok(ClientConfig {
            hosts,
            batch_size: (number("batch-size", DEFAULT_BATCH_SIZE as u64)? as usize).max(1),
            options,
            kind,
        })
    }
}

/// One host and what the client knows of it.
struct Host {
    address: String,
    conn: Option<Connection>,
    server_hash: Option<[u8; 16]>,
    failures: u32,
    left_out_until: Option<Instant>,
}

/// A client sending events to avro sources.
pub struct RpcClient {
    config: ClientConfig,
    hosts: Vec<Host>,
    /// Failover: the host in use. Round robin: where the next call starts.
    current: usize,
}

impl RpcClient {
    /// A client; it connects on its first call.
    pub fn new(config: ClientConfig) -> Self {
        let hosts = config
            .hosts
            .iter()
            .map(|address| Host {
                address: address.clone(),
                conn: None,
                server_hash: None,
                failures: 0,
                left_out_until: None,
            })
            .collect();
        RpcClient {
            config,
            hosts,
            current: 0,
        }
    }

    /// Most events per call.
    pub fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    /// Sends one event (`append`).
    pub async fn append(&mut self, event: Event) -> Result<(), RpcError> {
        self.deliver(std::slice::from_ref(&event), true).await
    }

    /// Sends events (`appendBatch`), `batch-size` at a time; `Ok` once every call got `OK`.
    pub async fn append_batch(&mut self, events: &[Event]) -> Result<(), RpcError> {
        for chunk in events.chunks(self.config.batch_size) {
            self.deliver(chunk, false).await?;
        }
        Ok(())
    }

    async fn deliver(&mut self, events: &[Event], single: bool) -> Result<(), RpcError> {
        let order = self.order();
        let mut last = None;
        let attempts = order.len();
        for i in order {
            match self.send_to(i, events, single).await {
                Ok(()) => {
                    self.succeeded(i);
                    return Ok(());
                }
                Err(error) => {
                    tracing::debug!(host = %self.hosts[i].address, %error, "RPC call failed.");
                    self.failed(i);
                    last = Some(error);
                }
            }
        }
        match (last, self.config.kind) {
            (Some(error), ClientKind::Default) => Err(error),
            (Some(error), _) => Err(RpcError::AllFailed {
                attempts,
                last: Box::new(error),
            }),
            (None, _) => Err(RpcError::Config(
                "every host is backing off; try again later".into(),
            )),
        }
    }

    /// The hosts to try for one call, in order.
    fn order(&self) -> Vec<usize> {
        let n = self.hosts.len();
        match self.config.kind {
            ClientKind::Default => vec![0],
            ClientKind::Failover { max_attempts } => (0..n)
                .map(|k| (self.current + k) % n)
                .take(max_attempts)
                .collect(),
            ClientKind::LoadBalance {
                selector, backoff, ..
            } => {
                let start = match selector {
                    Selector::RoundRobin => self.current,
                    Selector::Random => fastrand::usize(..n.max(1)),
                };
                let now = Instant::now();
                (0..n)
                    .map(|k| (start + k) % n)
                    .filter(|&i| !backoff || self.hosts[i].left_out_until.is_none_or(|t| t <= now))
                    .collect()
            }
        }
    }

    async fn send_to(&mut self, i: usize, events: &[Event], single: bool) -> Result<(), RpcError> {
        let options = self.config.options.clone();
        let host = &mut self.hosts[i];
        let mut conn = match host.conn.take() {
            Some(conn) => conn,
            None => Connection::open(&host.address, options, host.server_hash).await?,
        };
        let result = if single {
            conn.append(&events[0]).await
        } else {
            conn.append_batch(events).await
        };
        host.server_hash = conn.server_hash().or(host.server_hash);
        if result.is_ok() {
            host.conn = Some(conn);
        }
        result
    }

    fn succeeded(&mut self, i: usize) {
        let n = self.hosts.len();
        let host = &mut self.hosts[i];
        host.failures = 0;
        host.left_out_until = None;
        self.current = match self.config.kind {
            ClientKind::Failover { .. } => i,
            ClientKind::LoadBalance { .. } => (i + 1) % n,
            ClientKind::Default => 0,
        };
    }

    fn failed(&mut self, i: usize) {
        let host = &mut self.hosts[i];
        host.failures = host.failures.saturating_add(1);
        if let ClientKind::LoadBalance {
            backoff: true,
            max_backoff,
            ..
        } = self.config.kind
        {
            let wait = Duration::from_secs(1u64 << host.failures.min(20).saturating_sub(1));
            host.left_out_until = Some(Instant::now() + wait.min(max_backoff));
        }
    }
}

#[cfg(test)]
mod tests;
