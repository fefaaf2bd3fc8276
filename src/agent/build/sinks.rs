//! Building sinks and sink groups.

use crate::metrics::SinkCounter;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::common::{batch_too_large, build_one, interceptors, Dropped, Made};
use super::partial::Partial;
use super::{error_channel, Channels, ErrorChannel};
use crate::agent::topology::{GroupNode, SinkNode};
use crate::config::{AgentSpec, ComponentKind, Finding, FindingKind, PropReader, SinkSpec};
use crate::interceptor::Chain;
use crate::registry::{self, Built, Lookup};
use crate::sink::processor::SinkProcessor;

/// The sinks built, and why the others were not.
pub(super) struct BuiltSinks {
    /// Sinks that will run.
    pub built: Vec<SinkNode>,
    /// Sinks Flume itself would fail to build (bad config, batch too large, no channel).
    broken: BTreeSet<String>,
}

/// Builds every sink of `spec` that Flume would keep and Flumen can run.
pub(super) fn build_sinks(
    spec: &AgentSpec,
    channels: &Channels<'_>,
    partial: &mut Partial,
    findings: &mut Vec<Finding>,
) -> BuiltSinks {
    let mut out = BuiltSinks {
        built: Vec::new(),
        broken: BTreeSet::new(),
    };
    for s in &spec.sinks {
        match build_sink(spec, s, channels, partial, findings) {
            Ok(Some(node)) => out.built.push(node),
            Ok(None) => {}
            Err(Dropped::Broken) => {
                out.broken.insert(s.component.name.clone());
            }
        }
    }
    out
}

/// One sink, in the order of Flume's `loadSinks`: configure, find the channel, check the
/// batch. `Ok(None)`: Flume would run it and Flumen cannot (recorded in `partial`).
fn build_sink(
    spec: &AgentSpec,
    s: &SinkSpec,
    channels: &Channels<'_>,
    partial: &mut Partial,
    findings: &mut Vec<Finding>,
) -> Result<Option<SinkNode>, Dropped> {
    let agent = spec.name.as_str();
    let c = &s.component;
    let full = format!("{agent}.sinks.{}", c.name);
    let mut extras: Option<(u64, Chain, ErrorChannel)> = None;
    let made = build_one(spec, ComponentKind::Sink, c, findings, |r| {
        // Each is read whatever the others give, so that no key is called ignored.
        let chain = interceptors(r, &c.props, &full);
        let errors = error_channel(r, channels);
        let rate = r.number("maxEventsPerSecond", 0u64, 0, u64::MAX / 2);
        let (Some(chain), Ok(errors), Some(rate)) = (chain, errors, rate) else {
            return Err(Dropped::Broken);
        };
        extras = Some((rate, chain, errors));
        Ok(())
    })?;
    let capacity = match (
        channels.get(&s.channel),
        channels.lacking.get(s.channel.as_str()),
    ) {
        (Some(ch), _) => Some(ch.transaction_capacity()),
        (None, Some(capacity)) => *capacity,
        (None, None) => return flume_lost_channel(s, findings, &full),
    };
    let too_large =
        capacity.and_then(|cap| batch_too_large(agent, ComponentKind::Sink, c, &s.channel, cap));
    if let Some(finding) = too_large {
        findings.push(finding);
        return Err(Dropped::Broken);
    }
    let (sink, (rate, chain, errors)) = match (made, extras) {
        (Made::Lacking(what, finding), _) => {
            findings.extend(finding);
            let role = format!("would drain {}", s.channel);
            partial.lack(
                ComponentKind::Sink,
                &c.name,
                what,
                role,
                c.type_.origin.clone(),
            );
            return Ok(None);
        }
        (Made::Built(Built::Sink(sink)), Some(extras)) => (sink, extras),
        _ => return Err(Dropped::Broken),
    };
    let Some(ch) = channels.get(&s.channel) else {
        // The sink is fine; its channel is one Flumen cannot run.
        partial.cascade(ComponentKind::Sink, &c.name);
        findings.push(Finding::new(
            FindingKind::PartialDrop,
            Some(s.channel_origin.clone()),
            format!("{full}.channel"),
            format!(
                "Sink `{}` is not started: it drains channel `{}`, which Flumen cannot run (see its finding); Flume would run both.",
                c.name, s.channel
            ),
        ));
        return Ok(None);
    };
    let capacity = ch.transaction_capacity();
    findings.extend(capped_batch(c, sink.batch_size(), &s.channel, capacity));
    Ok(Some(SinkNode {
        name: c.name.clone(),
        type_name: c.type_.value.clone(),
        sink,
        channel: s.channel.clone(),
        max_events_per_second: rate,
        chain,
        error_channel: errors.map(|(name, _)| name),
        counters: Arc::new(SinkCounter::default()),
    }))
}

/// A sink whose channel Flume itself dropped: Flume drops the sink too ("not connected to a
/// channel").
fn flume_lost_channel(
    s: &SinkSpec,
    findings: &mut Vec<Finding>,
    full: &str,
) -> Result<Option<SinkNode>, Dropped> {
    findings.push(Finding::new(
        FindingKind::DroppedComponent,
        Some(s.channel_origin.clone()),
        format!("{full}.channel"),
        format!(
            "Sink `{}` drains channel `{}`, which Flume drops because of its configuration; Flume drops the sink too.",
            s.component.name, s.channel
        ),
    ));
    Err(Dropped::Broken)
}

/// Builds the sink groups. `None` when Flume would abandon the whole agent: a member sink
/// failed to build (`AbstractConfigurationProvider.loadSinkGroups` throws, and nothing runs).
/// A group whose processor cannot be configured is removed together with its sinks, as in
/// Flume.
pub(super) fn build_groups(
    spec: &AgentSpec,
    sinks: &mut BuiltSinks,
    partial: &mut Partial,
    findings: &mut Vec<Finding>,
) -> Option<Vec<GroupNode>> {
    let agent = &spec.name;
    for g in &spec.sinkgroups {
        if let Some(bad) = g.sinks.iter().find(|m| sinks.broken.contains(m.as_str())) {
            findings.push(Finding::new(
                FindingKind::AgentNotStarted,
                g.origin.clone(),
                format!("{agent}.sinkgroups.{}.sinks", g.name),
                format!(
                    "Sink `{bad}` of sink group `{}` failed to build; Flume then abandons the whole configuration of agent `{agent}` and runs nothing.",
                    g.name
                ),
            ));
            return None;
        }
    }
    let mut groups = Vec::new();
    for g in &spec.sinkgroups {
        let key = format!("{agent}.sinkgroups.{}", g.name);
        let members: Vec<String> = g
            .sinks
            .iter()
            .filter(|m| sinks.built.iter().any(|s| &s.name == *m))
            .cloned()
            .collect();
        if members.is_empty() {
            // Flume would fail the whole agent on a member it cannot build (above), so an
            // empty group here lost its members to Flumen alone.
            partial.cascade(ComponentKind::SinkGroup, &g.name);
            findings.push(Finding::new(
                FindingKind::PartialDrop,
                g.origin.clone(),
                format!("{key}.sinks"),
                format!(
                    "Sink group `{}` is not started: Flumen cannot run any of its sinks (see their findings); Flume would run it.",
                    g.name
                ),
            ));
            continue;
        }
        let lost: Vec<&str> = g
            .sinks
            .iter()
            .filter(|m| !members.contains(m) && partial.dropped(ComponentKind::Sink, m))
            .map(String::as_str)
            .collect();
        if !lost.is_empty() {
            findings.push(Finding::new(
                FindingKind::PartialDrop,
                g.origin.clone(),
                format!("{key}.sinks"),
                format!(
                    "Sink group `{}` would run without {}, which Flumen cannot run; Flume would run the group with all its sinks.",
                    g.name,
                    lost.join(", ")
                ),
            ));
        }
        let mut reader = PropReader::new(&g.props, &key);
        if let Some(origin) = &g.origin {
            reader = reader.anchored(origin.clone());
        }
        let processor = SinkProcessor::from_props(&mut reader, &members);
        let lacking = reader.lacking().map(str::to_string);
        findings.extend(reader.finish());
        match (processor, lacking) {
            (Some(processor), None) => groups.push(GroupNode {
                name: g.name.clone(),
                sinks: members,
                processor,
            }),
            (_, Some(what)) => {
                sinks.built.retain(|s| !members.contains(&s.name));
                for m in &members {
                    partial.cascade(ComponentKind::Sink, m);
                }
                partial.lack(
                    ComponentKind::SinkGroup,
                    &g.name,
                    what,
                    format!("would drive {}", members.join(", ")),
                    g.origin.clone(),
                );
            }
            (None, None) => {
                // Flume took the sinks out of the lone-sink pool before failing: they do not run.
                sinks.built.retain(|s| !members.contains(&s.name));
            }
        }
    }
    Some(groups)
}

/// A sink Flume does not batch-check (its class is not `BatchSizeSupported`) may still take
/// batches in Flumen (the http sink's `batchSize`): beyond the channel's transactionCapacity
/// they are capped, and a `batchSize` written above it is reported.
fn capped_batch(
    c: &crate::config::ComponentSpec,
    batch: usize,
    channel: &str,
    capacity: usize,
) -> Option<Finding> {
    let flume_checks = match registry::lookup(ComponentKind::Sink, c.type_.value.trim()) {
        Lookup::Found(entry) => entry.builtin().is_some_and(|b| b.batch.is_some()),
        _ => true,
    };
    let written = c.props.get("batchSize")?;
    if flume_checks || batch <= capacity {
        return None;
    }
    Some(
        Finding::new(
            FindingKind::BadValue,
            Some(written.origin.clone()),
            written.full_key.clone(),
            format!(
                "Batch size {batch} is greater than the transactionCapacity {capacity} of channel `{channel}`; each take is capped at {capacity} events (Flume does not check this sink's batches)."
            ),
        )
        .expected(format!("batchSize <= {capacity}")),
    )
}
