//! What `flumen top` shows, computed from the agent's documents: Flume's `/metrics` JSON read
//! into per-component counters, two readings turned into rates, and the `/topology` graph
//! turned into one `source → channel → sink` line per path. Pure: no I/O, no clock.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;

/// A component's kind, as Flume's `/metrics` keys prefix it (`SOURCE.r1`). Ordered as the
/// dashboard lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A source.
    Source,
    /// A channel.
    Channel,
    /// A sink.
    Sink,
}

impl Kind {
    /// The prefix in `/metrics` (`SOURCE`), or `None` for groups the dashboard does not show
    /// (Flume also reports `CHANNEL_PROCESSOR`, `INTERCEPTOR`, `OTHER`, ...).
    pub fn from_prefix(prefix: &str) -> Option<Kind> {
        match prefix {
            "SOURCE" => Some(Kind::Source),
            "CHANNEL" => Some(Kind::Channel),
            "SINK" => Some(Kind::Sink),
            _ => None,
        }
    }

    /// The word shown in the table.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Channel => "channel",
            Kind::Sink => "sink",
        }
    }

    /// The counters whose per-second change is the `in` and `out` rate.
    fn rate_keys(self) -> (&'static str, &'static str) {
        match self {
            Kind::Source => ("EventReceivedCount", "EventAcceptedCount"),
            Kind::Channel => ("EventPutSuccessCount", "EventTakeSuccessCount"),
            Kind::Sink => ("EventDrainAttemptCount", "EventDrainSuccessCount"),
        }
    }

    /// The failure counters summed into the `errors` column (Flume's names; a key the agent
    /// does not report counts as 0, so Flume's memory channel, which has none, shows 0).
    pub fn error_keys(self) -> &'static [&'static str] {
        match self {
            Kind::Source => &["EventReadFail", "ChannelWriteFail", "GenericProcessingFail"],
            Kind::Channel => &[
                "EventPutErrorCount",
                "EventTakeErrorCount",
                "CheckpointWriteErrorCount",
                "CheckpointBackupWriteErrorCount",
            ],
            Kind::Sink => &["ConnectionFailedCount", "EventWriteFail", "ChannelReadFail"],
        }
    }
}

/// One component's counters from one `/metrics` reading.
#[derive(Clone, Debug, PartialEq)]
pub struct Counters {
    /// Its kind.
    pub kind: Kind,
    /// Its name (`r1`).
    pub name: String,
    /// Every numeric value, by Flume's key (values that are not numbers are left out).
    pub values: BTreeMap<String, f64>,
}

impl Counters {
    /// The value of `key`, if reported.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.get(key).copied()
    }
}

/// Why a `/metrics` document could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    /// The body is not JSON.
    #[error("not JSON: {0}")]
    Json(String),
    /// The document is not an object of component objects.
    #[error("expected an object keyed SOURCE.<name>, CHANNEL.<name>, SINK.<name>; got {0}")]
    Shape(String),
}

/// Reads Flume's `/metrics` JSON (`{"SOURCE.r1": {"EventReceivedCount": "57", ...}}`, every
/// value a string; plain JSON numbers are accepted too). Components come back in kind order,
/// then by name; groups other than sources, channels and sinks are skipped.
pub fn parse_metrics(body: &str) -> Result<Vec<Counters>, ParseError> {
    let doc: Value = serde_json::from_str(body).map_err(|e| ParseError::Json(e.to_string()))?;
    let Value::Object(doc) = doc else {
        return Err(ParseError::Shape(kind_of(&doc).into()));
    };
    let mut out = Vec::new();
    for (key, fields) in doc {
        let Some((prefix, name)) = key.split_once('.') else {
            continue;
        };
        let Some(kind) = Kind::from_prefix(prefix) else {
            continue;
        };
        let Value::Object(fields) = fields else {
            return Err(ParseError::Shape(format!("{} for {key}", kind_of(&fields))));
        };
        let values = fields
            .iter()
            .filter_map(|(k, v)| {
                let n = match v {
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    Value::Number(n) => n.as_f64(),
                    _ => None,
                }?;
                n.is_finite().then(|| (k.clone(), n))
            })
            .collect();
        out.push(Counters {
            kind,
            name: name.to_string(),
            values,
        });
    }
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    Ok(out)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The agent's graph as `GET /topology` serves it (Flumen's `Shape`); Apache Flume has no such
/// endpoint, and then the dashboard has no graph.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Graph {
    /// The agent's name.
    pub agent: String,
    /// `(name, type, channels)` per source.
    pub sources: Vec<(String, String, Vec<String>)>,
    /// `(name, type)` per channel.
    pub channels: Vec<(String, String)>,
    /// `(name, type, channel)` per sink.
    pub sinks: Vec<(String, String, String)>,
    /// `(name, processor, sinks)` per sink group.
    pub sinkgroups: Vec<(String, String, Vec<String>)>,
    /// `(component, channel)` per dead-letter channel.
    pub error_channels: Vec<(String, String)>,
}

impl Graph {
    /// Reads a `/topology` body.
    pub fn parse(body: &str) -> Result<Graph, ParseError> {
        serde_json::from_str(body).map_err(|e| ParseError::Json(e.to_string()))
    }

    /// The configured type of a component (`netcat`), if the graph names it.
    pub fn type_of(&self, kind: Kind, name: &str) -> Option<&str> {
        match kind {
            Kind::Source => self.sources.iter().find(|s| s.0 == name).map(|s| &*s.1),
            Kind::Channel => self.channels.iter().find(|c| c.0 == name).map(|c| &*c.1),
            Kind::Sink => self.sinks.iter().find(|k| k.0 == name).map(|k| &*k.1),
        }
    }

    /// Position of a component in the config (the table's order when there is a graph).
    fn position(&self, kind: Kind, name: &str) -> Option<usize> {
        match kind {
            Kind::Source => self.sources.iter().position(|s| s.0 == name),
            Kind::Channel => self.channels.iter().position(|c| c.0 == name),
            Kind::Sink => self.sinks.iter().position(|k| k.0 == name),
        }
    }

    /// One line per path through the agent, in config order:
    /// `r1 (netcat) → c1 (memory) → k1 (file_roll)`; a sink in a group is followed by
    /// `[group g1 (failover)]`; a channel no sink drains ends in `→ (no sink)`, a channel no
    /// source fills starts with `(no source) →`; each dead-letter channel gets
    /// `r1 (netcat) ⇢ dlq (memory) [errors]`.
    pub fn paths(&self) -> Vec<String> {
        let label = |name: &str, t: Option<&str>| match t {
            Some(t) => format!("{name} ({t})"),
            None => name.to_string(),
        };
        let channel = |name: &str| label(name, self.type_of(Kind::Channel, name));
        let sinks_of = |c: &str| -> Vec<String> {
            self.sinks
                .iter()
                .filter(|k| k.2 == c)
                .map(|(name, t, _)| {
                    let sink = label(name, Some(t));
                    match self.sinkgroups.iter().find(|g| g.2.contains(name)) {
                        Some((group, processor, _)) => {
                            format!("{sink} [group {group} ({processor})]")
                        }
                        None => sink,
                    }
                })
                .collect()
        };
        let mut lines = Vec::new();
        for (name, t, channels) in &self.sources {
            for c in channels {
                let head = format!("{} → {}", label(name, Some(t)), channel(c));
                let sinks = sinks_of(c);
                if sinks.is_empty() {
                    lines.push(format!("{head} → (no sink)"));
                }
                lines.extend(sinks.into_iter().map(|k| format!("{head} → {k}")));
            }
        }
        for (c, _) in &self.channels {
            let fed = self.sources.iter().any(|s| s.2.contains(c));
            let is_dead_letter = self.error_channels.iter().any(|e| &e.1 == c);
            if !fed && !is_dead_letter {
                for k in sinks_of(c) {
                    lines.push(format!("(no source) → {} → {k}", channel(c)));
                }
            }
        }
        for (component, c) in &self.error_channels {
            let t = self
                .type_of(Kind::Source, component)
                .or_else(|| self.type_of(Kind::Sink, component));
            let head = format!("{} ⇢ {} [errors]", label(component, t), channel(c));
            let sinks = sinks_of(c);
            if sinks.is_empty() {
                lines.push(head.clone());
            }
            lines.extend(sinks.into_iter().map(|k| format!("{head} → {k}")));
        }
        lines
    }
}

/// One `/metrics` reading and when it arrived.
#[derive(Clone, Debug)]
pub struct Reading {
    /// When the response arrived (rates divide by the time between two readings).
    pub at: Instant,
    /// Every source, channel and sink.
    pub components: Vec<Counters>,
}

/// A channel's fill level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fill {
    /// Events held (`ChannelSize`).
    pub size: u64,
    /// Capacity (`ChannelCapacity`).
    pub capacity: u64,
}

impl Fill {
    /// Held over capacity, 0..=1 (a channel may briefly report more than its capacity).
    pub fn ratio(&self) -> f64 {
        if self.capacity == 0 {
            return 0.0;
        }
        (self.size as f64 / self.capacity as f64).clamp(0.0, 1.0)
    }

    /// Whole percent, as the dashboard prints it.
    pub fn percent(&self) -> u64 {
        (self.ratio() * 100.0).round() as u64
    }
}

/// One line of the dashboard's table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Its kind.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Its type from the graph (`None` without `/topology`).
    pub type_name: Option<String>,
    /// Events per second in (`None` until there are two readings, or when a counter went
    /// backwards: the agent restarted).
    pub rate_in: Option<f64>,
    /// Events per second out (as `rate_in`).
    pub rate_out: Option<f64>,
    /// A channel's fill level (`None` for sources, sinks, and a channel without a capacity).
    pub fill: Option<Fill>,
    /// The summed failure counters ([`Kind::error_keys`]), since the agent started.
    pub errors: u64,
    /// Whether the errors grew since the previous reading.
    pub errors_rising: bool,
}

/// The table for reading `now`, with rates against `before` when there is one, in the graph's
/// order (config order) when there is a graph, else by kind and name.
pub fn rows(before: Option<&Reading>, now: &Reading, graph: Option<&Graph>) -> Vec<Row> {
    let previous: HashMap<(Kind, &str), &Counters> = before
        .map(|b| {
            b.components
                .iter()
                .map(|c| ((c.kind, c.name.as_str()), c))
                .collect()
        })
        .unwrap_or_default();
    let seconds = before.map(|b| now.at.saturating_duration_since(b.at).as_secs_f64());
    let mut out: Vec<Row> = now
        .components
        .iter()
        .map(|c| {
            let prev = previous.get(&(c.kind, c.name.as_str())).copied();
            let (key_in, key_out) = c.kind.rate_keys();
            let rate = |key: &str| -> Option<f64> {
                let dt = seconds.filter(|s| *s > 0.0)?;
                let delta = c.get(key)? - prev?.get(key)?;
                (delta >= 0.0).then_some(delta / dt)
            };
            let errors = error_sum(c);
            Row {
                kind: c.kind,
                name: c.name.clone(),
                type_name: graph
                    .and_then(|g| g.type_of(c.kind, &c.name))
                    .map(str::to_string),
                rate_in: rate(key_in),
                rate_out: rate(key_out),
                fill: fill(c),
                errors,
                errors_rising: prev.is_some_and(|p| errors > error_sum(p)),
            }
        })
        .collect();
    if let Some(g) = graph {
        // Components the graph does not list (a reload between the two requests) go last.
        out.sort_by_key(|r| (r.kind, g.position(r.kind, &r.name).unwrap_or(usize::MAX)));
    }
    out
}

fn error_sum(c: &Counters) -> u64 {
    c.kind
        .error_keys()
        .iter()
        .filter_map(|k| c.get(k))
        .map(|v| v.max(0.0) as u64)
        .sum()
}

fn fill(c: &Counters) -> Option<Fill> {
    if c.kind != Kind::Channel {
        return None;
    }
    let size = c.get("ChannelSize")?.max(0.0) as u64;
    let capacity = c.get("ChannelCapacity")?.max(0.0) as u64;
    (capacity > 0).then_some(Fill { size, capacity })
}

/// An events-per-second figure in at most 5 characters, 3 significant digits: `0`, `12.5`,
/// `999`, `1.23k`, `12.3k`, `4.56M`; `-` when unknown.
pub fn format_rate(rate: Option<f64>) -> String {
    let Some(r) = rate else {
        return "-".to_string();
    };
    if r < 0.05 {
        return "0".to_string();
    }
    if r < 99.95 {
        return format!("{r:.1}");
    }
    if r < 999.5 {
        return format!("{r:.0}");
    }
    for (unit, scale) in [("k", 1e3), ("M", 1e6), ("G", 1e9)] {
        let v = r / scale;
        if v < 9.995 {
            return format!("{v:.2}{unit}");
        }
        if v < 99.95 {
            return format!("{v:.1}{unit}");
        }
        if v < 999.5 {
            return format!("{v:.0}{unit}");
        }
    }
    ">1T".to_string()
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
