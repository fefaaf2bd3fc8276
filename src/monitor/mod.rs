//! Monitoring: every component's counters, served over HTTP.
//!
//! - `GET /metrics`: Flume's JSON (`HTTPMetricsServer`) exactly in shape: an object keyed
//!   `SOURCE.<name>`, `CHANNEL.<name>`, `SINK.<name>`, each an object of string values named as
//!   Flume's counters (`Type`, `StartTime`, `StopTime`, `EventReceivedCount`, …), so tools
//!   written for Flume's endpoint work unchanged. Flumen's own counters (`EventFilteredCount`,
//!   `EventDeadLetteredCount`, `ChannelPeakHeld`) are extra keys in the same objects.
//! - `GET /prometheus`: the same counters in the Prometheus text format, named
//!   `flumen_<kind>_<counter>` (snake case) with `agent`, `component` and `type` labels, plus
//!   process metrics (resident memory, CPU seconds, start time).
//! - `GET /health`: 200 while every component runs; 503 naming those that do not.
//! - `GET /topology`: Flumen's addition, the graph as JSON (what `flumen check --json` prints
//!   as `topology`), for `flumen top`.
//!
//! Started by Flume's switches `-Dflume.monitoring.type=http -Dflume.monitoring.port=N`
//! (port 41414 when none is given, as in Flume; `-Dflume.monitoring.host` to bind elsewhere
//! than 0.0.0.0) or by `--metrics-addr HOST:PORT`. Reading the counters costs the hot path
//! nothing: they are the atomics the components update once per batch anyway.

mod flume_json;
mod prometheus;
mod server;

use std::sync::{Arc, RwLock};

use crate::channel::ChannelRef;
use crate::metrics::{SinkCounters, SourceCounters};
use crate::shape::Shape;

pub use server::serve;

/// Flume's default monitoring port.
pub const DEFAULT_PORT: u16 = 41414;

/// What a component is, and where its counters are.
#[derive(Clone)]
pub enum Counters {
    /// A source's counters.
    Source(SourceCounters),
    /// A channel (its counters and its live size).
    Channel(ChannelRef),
    /// A sink's counters.
    Sink(SinkCounters),
}

/// One monitored component.
#[derive(Clone)]
pub struct Component {
    /// Its name (`r1`).
    pub name: String,
    /// Its type as configured (`netcat`).
    pub type_name: String,
    /// Its counters.
    pub counters: Counters,
    /// Which of Flume's counter classes it reports.
    pub counter_set: crate::metrics::CounterSet,
}

impl Component {
    /// Flume's kind prefix: `SOURCE`, `CHANNEL`, `SINK`.
    pub fn kind(&self) -> &'static str {
        match self.counters {
            Counters::Source(_) => "SOURCE",
            Counters::Channel(_) => "CHANNEL",
            Counters::Sink(_) => "SINK",
        }
    }

    /// `(StartTime, StopTime)` in ms since the epoch (0: not yet).
    pub fn times(&self) -> (u64, u64) {
        match &self.counters {
            Counters::Source(c) => c.lifetime.times(),
            Counters::Channel(c) => c.counters().lifetime.times(),
            Counters::Sink(c) => c.lifetime.times(),
        }
    }

    /// Whether it has started and not stopped.
    pub fn is_running(&self) -> bool {
        let (start, stop) = self.times();
        start > 0 && stop == 0
    }
}

/// What the monitoring endpoints show: the running components and the graph they form.
pub struct View {
    /// Its components, sources first, then channels, then sinks.
    pub components: Vec<Component>,
    /// The graph (served at `/topology`, drawn by `flumen top`).
    pub shape: Shape,
}

/// Every component of one agent. Cheap to clone; a hot reload swaps the view in place, so
/// the server always shows what runs now.
#[derive(Clone)]
pub struct Registry {
    /// The agent's name.
    pub agent: String,
    view: Arc<RwLock<Arc<View>>>,
}

impl Registry {
    /// A registry showing `view` for agent `agent`.
    pub fn new(agent: impl Into<String>, view: View) -> Registry {
        Registry {
            agent: agent.into(),
            view: Arc::new(RwLock::new(Arc::new(view))),
        }
    }

    /// Shows `view` from now on (after a reload).
    pub fn set(&self, view: View) {
        let view = Arc::new(view);
        match self.view.write() {
            Ok(mut current) => *current = view,
            Err(poisoned) => *poisoned.into_inner() = view,
        }
    }

    /// What is shown now.
    pub fn view(&self) -> Arc<View> {
        match self.view.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Flume's `/metrics` JSON.
    pub fn flume_json(&self) -> serde_json::Value {
        flume_json::render(&self.view())
    }

    /// The Prometheus text exposition.
    pub fn prometheus(&self) -> String {
        prometheus::render(&self.agent, &self.view())
    }

    /// Components not running (empty: healthy).
    pub fn unhealthy(&self) -> Vec<String> {
        self.view()
            .components
            .iter()
            .filter(|c| !c.is_running())
            .map(|c| format!("{}.{}", c.kind(), c.name))
            .collect()
    }
}

/// The address to serve on, from `--metrics-addr` or Flume's `-Dflume.monitoring.*`; `None`
/// when monitoring is off. An unknown `flume.monitoring.type` is an error message.
pub fn address(
    metrics_addr: Option<&str>,
    props: &std::collections::BTreeMap<String, String>,
) -> Result<Option<String>, String> {
    if let Some(addr) = metrics_addr {
        return Ok(Some(addr.to_string()));
    }
    let Some(kind) = props.get("flume.monitoring.type") else {
        return Ok(None);
    };
    if !kind.eq_ignore_ascii_case("http") {
        return Err(format!(
            "-Dflume.monitoring.type={kind} is not supported; Flumen serves `http` (Flume's JSON at /metrics, plus /prometheus)"
        ));
    }
    let port = match props.get("flume.monitoring.port") {
        Some(p) => p
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("-Dflume.monitoring.port={p} is not a port number"))?,
        None => DEFAULT_PORT,
    };
    let host = props
        .get("flume.monitoring.host")
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "0.0.0.0".to_string());
    Ok(Some(format!("{host}:{port}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn flume_switches_pick_the_address() {
        let mut p = BTreeMap::new();
        assert_eq!(address(None, &p), Ok(None));
        p.insert("flume.monitoring.type".to_string(), "http".to_string());
        assert_eq!(address(None, &p), Ok(Some("0.0.0.0:41414".into())));
        p.insert("flume.monitoring.port".to_string(), "34545".to_string());
        assert_eq!(address(None, &p), Ok(Some("0.0.0.0:34545".into())));
        assert_eq!(
            address(Some("127.0.0.1:9"), &p),
            Ok(Some("127.0.0.1:9".into()))
        );
        p.insert("flume.monitoring.type".to_string(), "ganglia".to_string());
        assert!(address(None, &p).unwrap_err().contains("not supported"));
    }
}
