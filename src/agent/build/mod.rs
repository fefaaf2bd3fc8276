//! Building the graph from the structural spec, with Flume's instantiation-time rules
//! (`AbstractConfigurationProvider`): channels first, then sources and sinks wired to the
//! channels that were built, then sink groups; a channel left with nothing connected is
//! removed, and an agent with no channel, or with neither sources nor sinks, does not start.

mod common;
mod sinks;
mod sources;

use std::collections::{BTreeMap, BTreeSet};

use super::topology::{ChannelNode, Topology};
use crate::channel::ChannelRef;
use crate::config::{AgentSpec, ComponentKind, Finding, FindingKind};
use crate::registry::Built;
use common::{build_one, Dropped};

/// A dead-letter channel: its name and the channel.
pub(super) type ErrorChannel = Option<(String, ChannelRef)>;

/// What the sink and source builders share: the channels built so far, by name.
pub(super) struct Channels<'a> {
    by_name: BTreeMap<&'a str, ChannelRef>,
    /// Channels only Flumen dropped (unsupported type): Flume would have built them.
    flumen_only: BTreeSet<&'a str>,
}

impl Channels<'_> {
    fn get(&self, name: &str) -> Option<&ChannelRef> {
        self.by_name.get(name)
    }

    fn names(&self) -> Vec<&str> {
        self.by_name.keys().copied().collect()
    }
}

/// Builds every component of `spec` (binding nothing). Returns the topology, or `None` when
/// the agent would not start, and every finding.
pub fn build(spec: &AgentSpec) -> (Option<Topology>, Vec<Finding>) {
    build_with(spec, &mut |_, built| built)
}

/// [`build`], with `adopt` choosing the channel each source and sink is wired to: given a
/// channel's spec and the channel just built from it, it may return a running channel to use
/// instead (a hot reload keeping its unchanged channels).
pub fn build_with(
    spec: &AgentSpec,
    adopt: &mut dyn FnMut(&crate::config::ComponentSpec, ChannelRef) -> ChannelRef,
) -> (Option<Topology>, Vec<Finding>) {
    let mut findings = Vec::new();
    let agent = &spec.name;

    let mut channels: Vec<ChannelNode> = Vec::new();
    let mut flumen_only = BTreeSet::new();
    for c in &spec.channels {
        match build_one(agent, ComponentKind::Channel, c, &mut findings, |_| Ok(())) {
            Ok(Built::Channel(channel)) => channels.push(ChannelNode {
                name: c.name.clone(),
                type_name: c.type_.value.clone(),
                channel: adopt(c, channel),
            }),
            Err(Dropped::Unsupported) => {
                flumen_only.insert(c.name.as_str());
            }
            _ => {}
        }
    }
    let built = Channels {
        by_name: channels
            .iter()
            .map(|c| (c.name.as_str(), c.channel.clone()))
            .collect(),
        flumen_only,
    };

    let sources = sources::build_sources(spec, &built, &mut findings);
    let mut sinks = sinks::build_sinks(spec, &built, &mut findings);
    let Some(groups) = sinks::build_groups(spec, &mut sinks, &mut findings) else {
        return (None, findings);
    };
    let sinks = sinks.built;

    let connected: BTreeSet<&str> = sources
        .iter()
        .flat_map(|s| s.channels.iter().chain(s.error_channel.iter()))
        .chain(
            sinks
                .iter()
                .flat_map(|s| std::iter::once(&s.channel).chain(s.error_channel.iter())),
        )
        .map(String::as_str)
        .collect();
    let (kept, unconnected): (Vec<_>, Vec<_>) = channels
        .into_iter()
        .partition(|c| connected.contains(c.name.as_str()));
    for c in unconnected {
        let origin = spec
            .channels
            .iter()
            .find(|s| s.name == c.name)
            .map(|s| s.type_.origin.clone());
        findings.push(Finding::new(
            FindingKind::DroppedComponent,
            origin,
            format!("{agent}.channels.{}", c.name),
            format!(
                "Channel `{}` has no source or sink connected; Flume removes it.",
                c.name
            ),
        ));
    }
    let channels = kept;

    if channels.is_empty() || (sources.is_empty() && sinks.is_empty()) {
        let why = if channels.is_empty() {
            "no channel"
        } else {
            "neither sources nor sinks"
        };
        // Point at the agent's first component: the place a reader would start looking.
        let origin = spec
            .channels
            .first()
            .or(spec.sources.first().map(|s| &s.component))
            .or(spec.sinks.first().map(|s| &s.component))
            .map(|c| c.type_.origin.clone());
        findings.push(Finding::new(
            FindingKind::AgentNotStarted,
            origin,
            agent.clone(),
            format!("Agent `{agent}` is left with {why}; it does not start."),
        ));
        return (None, findings);
    }
    let topology = Topology {
        agent: agent.clone(),
        sources,
        channels,
        sinks,
        groups,
    };
    (Some(topology), findings)
}

/// Resolves an `errorChannel` key: `Ok(None)` when absent, `Err` (with a finding, the owner
/// dropped) when it names no built channel.
fn error_channel(
    r: &mut crate::config::PropReader<'_>,
    channels: &Channels<'_>,
) -> Result<ErrorChannel, Dropped> {
    let Some(name) = r.opt_string("errorChannel") else {
        return Ok(None);
    };
    if let Some(ch) = channels.get(&name) {
        return Ok(Some((name, ch.clone())));
    }
    let origin = r.raw("errorChannel").map(|p| p.origin.clone());
    let key = r.full_key("errorChannel");
    let names = channels.names();
    r.drop_component(
        Finding::new(
            FindingKind::DroppedComponent,
            origin,
            key,
            format!("Dead-letter channel `{name}` is not a channel of this agent that was built; the component is dropped."),
        )
        .expected(format!("one of {}", names.join(", ")))
        .suggest(crate::config::did_you_mean(&name, names.iter().copied())),
    );
    if channels.flumen_only.contains(name.as_str()) {
        Err(Dropped::Unsupported)
    } else {
        Err(Dropped::Broken)
    }
}
