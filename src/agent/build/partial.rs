//! Never run half a config silently.
//!
//! Flume drops a component whose config is broken and runs the rest; Flumen does the same, so
//! that existing configs run. A component Flume *would* run but Flumen cannot (an `hbase` sink,
//! an `hdfs` sink on `hdfs://`, a plugin class, an interceptor or TLS Flumen lacks) is
//! different: starting the rest would take events in with nowhere to go. A memory channel
//! whose sink is missing fills and loses what it holds at stop; a TAILDIR source records
//! positions past lines it could not deliver. So such a topology does not start unless
//! `--allow-partial` says to start the rest, and even
//! then a channel that sources feed and no sink drains is refused unless it is durable (a file
//! channel keeps what it receives until a sink exists). The same rules apply to hot reload.

use std::collections::BTreeSet;

use super::common::capitalize;
use crate::agent::topology::Topology;
use crate::config::{AgentSpec, ComponentKind, Finding, FindingKind, Origin};

/// One component Flume would run that Flumen cannot.
pub(super) struct Lack {
    /// `sink `k1``
    subject: String,
    /// What Flumen lacks (`the Flume type `hdfs``).
    what: String,
    /// What it would have done (`would drain channel `c1``).
    role: String,
    /// Its `type` line (a sink group: its `sinks` line).
    origin: Option<Origin>,
}

/// What Flumen dropped that Flume would have run.
#[derive(Default)]
pub(super) struct Partial {
    lacking: Vec<Lack>,
    dropped: BTreeSet<(ComponentKind, String)>,
}

impl Partial {
    /// Records a component Flumen cannot run.
    pub(super) fn lack(
        &mut self,
        kind: ComponentKind,
        name: &str,
        what: String,
        role: String,
        origin: impl Into<Option<Origin>>,
    ) {
        self.lacking.push(Lack {
            subject: format!("{} `{name}`", kind.noun()),
            what,
            role,
            origin: origin.into(),
        });
        self.dropped.insert((kind, name.to_string()));
    }

    /// Records a component dropped only because of one Flumen cannot run (a sink whose
    /// channel it lacks).
    pub(super) fn cascade(&mut self, kind: ComponentKind, name: &str) {
        self.dropped.insert((kind, name.to_string()));
    }

    /// Whether Flumen, and not Flume, dropped this component.
    pub(super) fn dropped(&self, kind: ComponentKind, name: &str) -> bool {
        self.dropped.contains(&(kind, name.to_string()))
    }

    /// Whether Flumen lacks anything Flume would run.
    pub(super) fn is_partial(&self) -> bool {
        !self.lacking.is_empty()
    }

    /// The refusal of a partial topology, naming every component Flumen lacks and what it
    /// would have fed or drained.
    pub(super) fn refusal(&self, agent: &str) -> Option<Finding> {
        let origin = self.lacking.iter().find_map(|l| l.origin.clone());
        if self.lacking.is_empty() {
            return None;
        }
        let list = self
            .lacking
            .iter()
            .map(|l| format!("{} needs {} and {}", l.subject, l.what, l.role))
            .collect::<Vec<_>>()
            .join("; ");
        Some(Finding::new(
            FindingKind::PartialTopology,
            origin,
            agent,
            format!(
                "Agent `{agent}` does not start: Flume would run components Flumen does not implement, and starting the rest would take in events with nowhere to go. Missing: {list}. Run with --allow-partial to start the rest anyway."
            ),
        ))
    }
}

/// Where each channel's events come from and go, by name.
fn wiring(topology: &Topology, channel: &str) -> (Vec<String>, usize) {
    let producers = topology
        .sources
        .iter()
        .filter(|s| {
            s.channels.iter().any(|c| c == channel) || s.error_channel.as_deref() == Some(channel)
        })
        .map(|s| format!("source `{}`", s.name))
        .chain(
            topology
                .sinks
                .iter()
                .filter(|k| k.error_channel.as_deref() == Some(channel))
                .map(|k| format!("sink `{}` (dead letters)", k.name)),
        )
        .collect();
    let consumers = topology
        .sinks
        .iter()
        .filter(|k| k.channel == channel)
        .count();
    (producers, consumers)
}

/// Checks that every channel something feeds is drained by a sink. Returns whether the
/// topology may start: a channel without a consumer is refused unless it is durable (then it
/// is a warning: its events wait on disk).
pub(super) fn every_channel_drained(
    spec: &AgentSpec,
    topology: &Topology,
    partial: &Partial,
    findings: &mut Vec<Finding>,
) -> bool {
    let mut ok = true;
    for node in &topology.channels {
        let (producers, consumers) = wiring(topology, &node.name);
        if producers.is_empty() || consumers > 0 || node.channel.drained_elsewhere() {
            continue;
        }
        let lost_sinks: Vec<String> = spec
            .sinks
            .iter()
            .filter(|k| {
                k.channel == node.name && partial.dropped(ComponentKind::Sink, &k.component.name)
            })
            .map(|k| format!("`{}`", k.component.name))
            .collect();
        let why = if lost_sinks.is_empty() {
            "no sink reads it".to_string()
        } else {
            format!(
                "its sink(s) {} could not be started by Flumen",
                lost_sinks.join(", ")
            )
        };
        let durable = node.channel.is_durable();
        let outcome = if durable {
            "its events stay on disk until a sink drains it".to_string()
        } else {
            ok = false;
            "its events would pile up until it is full and be lost at stop, so the config is refused. Drain it with a sink, or make it durable (`type = file`) to keep the events until one exists".to_string()
        };
        let origin = spec
            .channels
            .iter()
            .find(|c| c.name == node.name)
            .map(|c| c.type_.origin.clone());
        findings.push(Finding::new(
            FindingKind::NoConsumer,
            origin,
            format!("{}.channels.{}", spec.name, node.name),
            format!(
                "{} `{}` ({}) is fed by {} but {why}: {outcome}.",
                capitalize(ComponentKind::Channel.noun()),
                node.name,
                node.type_name,
                producers.join(", ")
            ),
        ));
    }
    ok
}
