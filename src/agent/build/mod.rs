//! Building the graph from the structural spec, with Flume's instantiation-time rules
//! (`AbstractConfigurationProvider`): channels first, then sources and sinks wired to the
//! channels that were built, then sink groups; a channel left with nothing connected is
//! removed, and an agent with no channel, or with neither sources nor sinks, does not start.

mod common;
mod partial;
mod sinks;
mod sources;

use std::collections::{BTreeMap, BTreeSet};

use super::topology::{ChannelNode, Topology};
use crate::channel::ChannelRef;
use crate::config::{AgentSpec, ComponentKind, ComponentSpec, Finding, FindingKind};
use crate::registry::Built;
use common::{build_one, unloadable, Dropped, Made};
use partial::Partial;

/// A dead-letter channel: its name and the channel.
pub(super) type ErrorChannel = Option<(String, ChannelRef)>;

/// How to treat a config that needs components Flumen does not implement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// `--allow-partial`: start what Flumen can run when the config also needs components it
    /// lacks (a channel that is fed and not drained must then be durable). Without it such
    /// a config does not start.
    pub allow_partial: bool,
}

/// What the sink and source builders share: the channels built so far, by name.
pub(super) struct Channels<'a> {
    by_name: BTreeMap<&'a str, ChannelRef>,
    /// Channels Flume would build and Flumen cannot, with the transactionCapacity Flume would
    /// give them (for its batch rule), when they have one.
    lacking: BTreeMap<&'a str, Option<usize>>,
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
pub fn build(spec: &AgentSpec, options: BuildOptions) -> (Option<Topology>, Vec<Finding>) {
    build_with(spec, options, &mut |_, built| built)
}

/// [`build`], with `adopt` choosing the channel each source and sink is wired to: given a
/// channel's spec and the channel just built from it, it may return a running channel to use
/// instead (a hot reload keeping its unchanged channels).
pub fn build_with(
    spec: &AgentSpec,
    options: BuildOptions,
    adopt: &mut dyn FnMut(&ComponentSpec, ChannelRef) -> ChannelRef,
) -> (Option<Topology>, Vec<Finding>) {
    let mut findings = Vec::new();
    let agent = &spec.name;

    // Flume's factories load every type before configuring anything.
    let unknown: Vec<Finding> = [
        unloadable(
            ComponentKind::Channel,
            spec.channels.iter().chain(&spec.unused_channels),
        ),
        unloadable(
            ComponentKind::Source,
            spec.sources.iter().map(|s| &s.component),
        ),
        unloadable(ComponentKind::Sink, spec.sinks.iter().map(|s| &s.component)),
    ]
    .concat();
    if let Some(first) = unknown.first() {
        let origin = first.origin.clone();
        findings.extend(unknown);
        findings.push(Finding::new(
            FindingKind::AgentNotStarted,
            origin,
            agent.clone(),
            format!("Agent `{agent}` does not start: Flume cannot load a component type it names (see the unknown-type findings), which stops the whole agent."),
        ));
        return (None, findings);
    }

    #[cfg(feature = "kafka")]
    findings.extend(crate::kafka::loops::loop_findings(spec));

    let mut partial = Partial::default();
    let mut channels: Vec<ChannelNode> = Vec::new();
    let mut lacking = BTreeMap::new();
    for c in &spec.channels {
        match build_one(spec, ComponentKind::Channel, c, &mut findings, |_| Ok(())) {
            Ok(Made::Built(Built::Channel(channel))) => channels.push(ChannelNode {
                name: c.name.clone(),
                type_name: c.type_.value.clone(),
                channel: adopt(c, channel),
            }),
            Ok(Made::Lacking(what, finding)) => {
                findings.extend(finding);
                let capacity = common::builtin_of(ComponentKind::Channel, c)
                    .and_then(|b| b.channel_capacity(&c.props))
                    .map(|cap| usize::try_from(cap).unwrap_or(usize::MAX));
                lacking.insert(c.name.as_str(), capacity);
                partial.lack(
                    ComponentKind::Channel,
                    &c.name,
                    what,
                    channel_role(spec, &c.name),
                    c.type_.origin.clone(),
                )
            }
            Ok(Made::Built(_)) | Err(Dropped::Broken) => {}
        }
    }
    let built = Channels {
        by_name: channels
            .iter()
            .map(|c| (c.name.as_str(), c.channel.clone()))
            .collect(),
        lacking,
    };

    let sources = sources::build_sources(spec, &built, &mut partial, &mut findings);
    let mut sinks = sinks::build_sinks(spec, &built, &mut partial, &mut findings);
    let Some(groups) = sinks::build_groups(spec, &mut sinks, &mut partial, &mut findings) else {
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
        findings.push(unconnected_channel(spec, &c.name, &mut partial));
    }
    let channels = kept;

    if partial.is_partial() && !options.allow_partial {
        findings.extend(partial.refusal(agent));
        return (None, findings);
    }
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
    if !partial::every_channel_drained(spec, &topology, &partial, &mut findings) {
        return (None, findings);
    }
    (Some(topology), findings)
}

/// What a channel Flumen lacks would have connected, for the refusal.
fn channel_role(spec: &AgentSpec, name: &str) -> String {
    let feeders: Vec<&str> = spec
        .sources
        .iter()
        .filter(|s| s.channels.iter().any(|c| c == name))
        .map(|s| s.component.name.as_str())
        .collect();
    let drainers: Vec<&str> = spec
        .sinks
        .iter()
        .filter(|k| k.channel == name)
        .map(|k| k.component.name.as_str())
        .collect();
    let list = |v: &[&str]| {
        if v.is_empty() {
            "nothing".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "would be fed by {} and drained by {}",
        list(&feeders),
        list(&drainers)
    )
}

/// The finding for a built channel nothing is connected to any more: Flume removes such a
/// channel; when what it lost are components only Flumen dropped, say so.
fn unconnected_channel(spec: &AgentSpec, name: &str, partial: &mut Partial) -> Finding {
    let origin = spec
        .channels
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.type_.origin.clone());
    let lost: Vec<String> = spec
        .sources
        .iter()
        .filter(|s| s.channels.iter().any(|c| c == name))
        .filter(|s| partial.dropped(ComponentKind::Source, &s.component.name))
        .map(|s| format!("source `{}`", s.component.name))
        .chain(
            spec.sinks
                .iter()
                .filter(|k| k.channel == name)
                .filter(|k| partial.dropped(ComponentKind::Sink, &k.component.name))
                .map(|k| format!("sink `{}`", k.component.name)),
        )
        .collect();
    let key = format!("{}.channels.{name}", spec.name);
    if lost.is_empty() {
        return Finding::new(
            FindingKind::DroppedComponent,
            origin,
            key,
            format!("Channel `{name}` has no source or sink connected; Flume removes it."),
        );
    }
    partial.cascade(ComponentKind::Channel, name);
    Finding::new(
        FindingKind::PartialDrop,
        origin,
        key,
        format!(
            "Channel `{name}` is not started: Flumen could not run {}, which Flume would connect to it.",
            lost.join(", ")
        ),
    )
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
    if channels.lacking.contains_key(name.as_str()) {
        r.unsupported(
            format!("dead-letter channel `{name}`"),
            Finding::new(
                FindingKind::PartialDrop,
                origin,
                key,
                format!("Dead-letter channel `{name}` is one Flumen cannot run (see its finding); `{}` is not started without it.", r.component()),
            ),
        );
        return Ok(None);
    }
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
    Err(Dropped::Broken)
}
