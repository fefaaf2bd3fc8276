//! Building the graph from the structural spec, with Flume's instantiation-time rules.

use std::collections::{BTreeMap, BTreeSet};

use super::topology::{ChannelNode, SinkNode, SourceNode, Topology};
use crate::channel::ChannelRef;
use crate::config::{AgentSpec, ComponentKind, ComponentSpec, Finding, FindingKind, PropReader};
use crate::registry::{self, Built, Lookup};

/// Builds every component of `spec` (binding nothing). Returns the topology, or `None` when
/// the agent would not start, and every finding.
pub fn build(spec: &AgentSpec) -> (Option<Topology>, Vec<Finding>) {
    let mut findings = Vec::new();
    let agent = &spec.name;

    // Components only Flumen drops (a type it does not implement, or wired to one): Flume
    // would have built them, so Flume's all-or-nothing rule for sink groups does not apply.
    let mut flumen_only: BTreeSet<&str> = BTreeSet::new();
    let mut channels: Vec<ChannelNode> = Vec::new();
    for c in &spec.channels {
        match build_one(agent, ComponentKind::Channel, c, &mut findings, |_| {}) {
            Ok(Built::Channel(channel)) => channels.push(ChannelNode {
                name: c.name.clone(),
                type_name: c.type_.value.clone(),
                channel,
            }),
            Err(Dropped::Unsupported) => {
                flumen_only.insert(&c.name);
            }
            _ => {}
        }
    }
    let by_name: BTreeMap<&str, &ChannelRef> = channels
        .iter()
        .map(|c| (c.name.as_str(), &c.channel))
        .collect();

    let mut sources = Vec::new();
    for s in &spec.sources {
        let c = &s.component;
        let Ok(Built::Source(source)) = build_one(
            agent,
            ComponentKind::Source,
            c,
            &mut findings,
            source_routing_keys,
        ) else {
            continue;
        };
        let mut wired = Vec::new();
        let mut incompatible = None;
        for name in &s.channels {
            match by_name.get(name.as_str()) {
                Some(ch) => {
                    if let Some(batch) = source.batch_size() {
                        if batch > ch.transaction_capacity() {
                            incompatible = Some((name.clone(), batch, ch.transaction_capacity()));
                        }
                    }
                    wired.push(name.clone());
                }
                None => findings.push(Finding::new(
                    FindingKind::DroppedComponent,
                    Some(c.type_.origin.clone()),
                    format!("{agent}.sources.{}.channels", c.name),
                    format!(
                        "Source `{}` loses channel `{name}`, which was dropped.",
                        c.name
                    ),
                )),
            }
        }
        if let Some((ch, batch, cap)) = incompatible {
            findings.push(incompatible_batch(
                agent,
                "sources",
                c,
                "batchSize",
                batch,
                &ch,
                cap,
            ));
            continue;
        }
        if wired.is_empty() {
            findings.push(Finding::new(
                FindingKind::DroppedComponent,
                Some(c.type_.origin.clone()),
                format!("{agent}.sources.{}", c.name),
                format!(
                    "Source `{}` is not connected to any channel that was built; Flume drops it.",
                    c.name
                ),
            ));
            continue;
        }
        sources.push(SourceNode {
            name: c.name.clone(),
            type_name: c.type_.value.clone(),
            source,
            channels: wired,
        });
    }

    // Sinks Flume itself would fail to build (bad config, batch too large).
    let mut broken_sinks: BTreeSet<&str> = BTreeSet::new();
    let mut sinks = Vec::new();
    for s in &spec.sinks {
        let c = &s.component;
        let mut rate = 0u64;
        let built = build_one(agent, ComponentKind::Sink, c, &mut findings, |r| {
            rate = r
                .number("maxEventsPerSecond", 0u64, 0, u64::MAX / 2)
                .unwrap_or(0);
        });
        let sink = match built {
            Ok(Built::Sink(sink)) => sink,
            Err(Dropped::Unsupported) => {
                flumen_only.insert(&c.name);
                continue;
            }
            _ => {
                broken_sinks.insert(&c.name);
                continue;
            }
        };
        let Some(ch) = by_name.get(s.channel.as_str()) else {
            if flumen_only.contains(s.channel.as_str()) {
                flumen_only.insert(&c.name);
            } else {
                broken_sinks.insert(&c.name);
            }
            findings.push(Finding::new(
                FindingKind::DroppedComponent,
                Some(c.type_.origin.clone()),
                format!("{agent}.sinks.{}.channel", c.name),
                format!(
                    "Sink `{}` drains channel `{}`, which was dropped; Flume drops the sink too.",
                    c.name, s.channel
                ),
            ));
            continue;
        };
        if sink.batch_size() > ch.transaction_capacity() {
            let key = batch_key(sink.type_name());
            findings.push(incompatible_batch(
                agent,
                "sinks",
                c,
                key,
                sink.batch_size(),
                &s.channel,
                ch.transaction_capacity(),
            ));
            broken_sinks.insert(&c.name);
            continue;
        }
        sinks.push(SinkNode {
            name: c.name.clone(),
            type_name: c.type_.value.clone(),
            sink,
            channel: s.channel.clone(),
            max_events_per_second: rate,
        });
    }

    // AbstractConfigurationProvider.loadSinkGroups: a group member that failed to build makes
    // Flume abandon the whole agent configuration, so nothing at all runs.
    for g in &spec.sinkgroups {
        if let Some(bad) = g.sinks.iter().find(|m| broken_sinks.contains(m.as_str())) {
            findings.push(Finding::new(
                FindingKind::AgentNotStarted,
                g.origin.clone(),
                format!("{agent}.sinkgroups.{}.sinks", g.name),
                format!(
                    "Sink `{bad}` of sink group `{}` failed to build; Flume then abandons the whole configuration of agent `{agent}` and runs nothing.",
                    g.name
                ),
            ));
            return (None, findings);
        }
    }
    for g in &spec.sinkgroups {
        let built: Vec<&str> = g
            .sinks
            .iter()
            .filter(|m| sinks.iter().any(|s: &SinkNode| &s.name == *m))
            .map(String::as_str)
            .collect();
        let key = format!("{agent}.sinkgroups.{}", g.name);
        if built.is_empty() {
            findings.push(Finding::new(
                FindingKind::DroppedComponent,
                g.origin.clone(),
                format!("{key}.sinks"),
                format!(
                    "Sink group `{}` has no sink left that could be built; it is dropped.",
                    g.name
                ),
            ));
            continue;
        }
        let processor = g.props.get("processor.type");
        let name = processor
            .map(|p| p.value.trim().to_ascii_lowercase())
            .unwrap_or_else(|| "default".into());
        if name != "default" {
            findings.push(Finding::new(
                FindingKind::UnsupportedType,
                processor.map(|p| p.origin.clone()).or(g.origin.clone()),
                format!("{key}.processor.type"),
                format!(
                    "Sink processor `{name}` is not implemented yet; the sinks of group `{}` ({}) each run on their own and share their channels.",
                    g.name,
                    built.join(", ")
                ),
            ));
        }
    }

    let connected: BTreeSet<&str> = sources
        .iter()
        .flat_map(|s| s.channels.iter().map(String::as_str))
        .chain(sinks.iter().map(|s| s.channel.as_str()))
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
    };
    (Some(topology), findings)
}

/// Why a component was not built.
enum Dropped {
    /// A type Flume has (or a custom class) that Flumen does not implement.
    Unsupported,
    /// A config Flume itself would refuse.
    Broken,
}

/// Resolves the type and builds one component, recording findings. `extra` reads keys every
/// component of this kind may carry.
fn build_one(
    agent: &str,
    kind: ComponentKind,
    c: &ComponentSpec,
    findings: &mut Vec<Finding>,
    extra: impl FnOnce(&mut PropReader<'_>),
) -> Result<Built, Dropped> {
    let full = format!("{agent}.{}.{}", kind.key(), c.name);
    let type_name = c.type_.value.trim();
    let entry = match registry::lookup(kind, type_name) {
        Lookup::Found(entry) => entry,
        Lookup::Unsupported => {
            findings.push(
                Finding::new(
                    FindingKind::UnsupportedType,
                    Some(c.type_.origin.clone()),
                    c.type_.full_key.clone(),
                    format!(
                        "{} type `{type_name}` is not implemented by Flumen; {} `{}` is dropped.",
                        capitalize(kind.noun()),
                        kind.noun(),
                        c.name
                    ),
                )
                .expected(format!("one of {}", registry::aliases(kind).join(", "))),
            );
            return Err(Dropped::Unsupported);
        }
        Lookup::Unknown(suggestion) => {
            findings.push(
                Finding::new(
                    FindingKind::UnknownType,
                    Some(c.type_.origin.clone()),
                    c.type_.full_key.clone(),
                    format!(
                        "`{type_name}` is not a {} type or class Flume knows; {} `{}` is dropped.",
                        kind.noun(),
                        kind.noun(),
                        c.name
                    ),
                )
                .expected(format!("one of {}", registry::aliases(kind).join(", ")))
                .suggest(suggestion),
            );
            return Err(Dropped::Broken);
        }
    };
    let mut reader = PropReader::new(&c.props, &full);
    extra(&mut reader);
    let built = (entry.build)(&c.name, &mut reader);
    let fatal = reader.is_fatal();
    findings.extend(reader.finish());
    if fatal || built.is_none() {
        findings.push(Finding::new(
            FindingKind::DroppedComponent,
            Some(c.type_.origin.clone()),
            full,
            format!(
                "{} `{}` is dropped because of the error(s) in its configuration, as Flume does.",
                capitalize(kind.noun()),
                c.name
            ),
        ));
        return Err(Dropped::Broken);
    }
    built.ok_or(Dropped::Broken)
}

/// Keys of the source routing layer: the `replicating` selector is what Flumen runs;
/// interceptors and other selectors come later and are reported, never silently ignored.
fn source_routing_keys(r: &mut PropReader<'_>) {
    if let Some(selector) = r.opt_string("selector.type") {
        if !selector.eq_ignore_ascii_case("replicating") {
            let key = r.full_key("selector.type");
            let origin = r.raw("selector.type").map(|p| p.origin.clone());
            r.push(Finding::new(
                FindingKind::UnsupportedType,
                origin,
                key,
                format!("Channel selector `{selector}` is not implemented yet; every channel receives every event (replicating)."),
            ));
        }
    }
    if let Some(chain) = r.opt_string("interceptors") {
        let key = r.full_key("interceptors");
        let origin = r.raw("interceptors").map(|p| p.origin.clone());
        r.push(Finding::new(
            FindingKind::UnsupportedType,
            origin,
            key,
            format!(
                "Interceptors ({chain}) are not implemented yet; events pass through unchanged."
            ),
        ));
    }
    r.mark_prefix_used("selector");
    r.mark_prefix_used("interceptors");
}

fn incompatible_batch(
    agent: &str,
    kind_key: &str,
    c: &ComponentSpec,
    batch_key: &str,
    batch: usize,
    channel: &str,
    capacity: usize,
) -> Finding {
    let origin = c
        .props
        .get(batch_key)
        .map(|p| p.origin.clone())
        .unwrap_or_else(|| c.type_.origin.clone());
    Finding::new(
        FindingKind::DroppedComponent,
        Some(origin),
        format!("{agent}.{kind_key}.{}.{batch_key}", c.name),
        format!(
            "Batch size {batch} is greater than the transactionCapacity {capacity} of channel `{channel}`; Flume drops `{}`.",
            c.name
        ),
    )
    .expected(format!("{batch_key} <= {capacity}"))
}

/// The batch-size key of a sink type, for messages.
fn batch_key(type_name: &str) -> &'static str {
    match type_name {
        "file_roll" => "sink.batchSize",
        _ => "batchSize",
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
