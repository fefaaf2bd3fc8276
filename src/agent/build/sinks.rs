//! Building sinks and sink groups.

use crate::metrics::SinkCounter;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::common::{batch_key, build_one, incompatible_batch, Dropped};
use super::{error_channel, Channels, ErrorChannel};
use crate::agent::topology::{GroupNode, SinkNode};
use crate::config::{AgentSpec, ComponentKind, Finding, FindingKind, PropReader};
use crate::interceptor::{build_chain, Chain, ChainError};
use crate::registry::Built;
use crate::sink::processor::SinkProcessor;

/// The sinks built, and why the others were not.
pub(super) struct BuiltSinks {
    /// Sinks that will run.
    pub built: Vec<SinkNode>,
    /// Sinks Flume itself would fail to build (bad config, batch too large, no channel).
    broken: BTreeSet<String>,
}

/// Builds every sink of `spec` that Flume would keep.
pub(super) fn build_sinks(
    spec: &AgentSpec,
    channels: &Channels<'_>,
    findings: &mut Vec<Finding>,
) -> BuiltSinks {
    let agent = &spec.name;
    let mut out = BuiltSinks {
        built: Vec::new(),
        broken: BTreeSet::new(),
    };
    for s in &spec.sinks {
        let c = &s.component;
        let full = format!("{agent}.sinks.{}", c.name);
        let mut extras: Option<(u64, Chain, ErrorChannel)> = None;
        let built = build_one(agent, ComponentKind::Sink, c, findings, |r| {
            let rate = r
                .number("maxEventsPerSecond", 0u64, 0, u64::MAX / 2)
                .ok_or(Dropped::Broken)?;
            let errors = error_channel(r, channels)?;
            let chain = build_chain(r, &c.props, &full).map_err(|e| match e {
                ChainError::Unsupported => Dropped::Unsupported,
                ChainError::Broken => Dropped::Broken,
            })?;
            extras = Some((rate, chain, errors));
            Ok(())
        });
        let sink = match (built, extras) {
            (Ok(Built::Sink(sink)), Some(extras)) => (sink, extras),
            (Err(Dropped::Unsupported), _) => continue,
            _ => {
                out.broken.insert(c.name.clone());
                continue;
            }
        };
        let (sink, (rate, chain, errors)) = sink;
        let Some(ch) = channels.get(&s.channel) else {
            findings.push(Finding::new(
                FindingKind::DroppedComponent,
                Some(c.type_.origin.clone()),
                format!("{full}.channel"),
                format!(
                    "Sink `{}` drains channel `{}`, which was dropped; Flume drops the sink too.",
                    c.name, s.channel
                ),
            ));
            if !channels.flumen_only.contains(s.channel.as_str()) {
                out.broken.insert(c.name.clone());
            }
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
            out.broken.insert(c.name.clone());
            continue;
        }
        let (error_channel, _) = match errors {
            Some((n, r)) => (Some(n), Some(r)),
            None => (None, None),
        };
        out.built.push(SinkNode {
            name: c.name.clone(),
            type_name: c.type_.value.clone(),
            sink,
            channel: s.channel.clone(),
            max_events_per_second: rate,
            chain,
            error_channel,
            counters: Arc::new(SinkCounter::default()),
        });
    }
    out
}

/// Builds the sink groups. `None` when Flume would abandon the whole agent: a member sink
/// failed to build (`AbstractConfigurationProvider.loadSinkGroups` throws, and nothing runs).
/// A group whose processor cannot be configured is removed together with its sinks, as in
/// Flume.
pub(super) fn build_groups(
    spec: &AgentSpec,
    sinks: &mut BuiltSinks,
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
        let mut reader = PropReader::new(&g.props, &key);
        let processor = SinkProcessor::from_props(&mut reader, &members);
        findings.extend(reader.finish());
        match processor {
            Some(processor) => groups.push(GroupNode {
                name: g.name.clone(),
                sinks: members,
                processor,
            }),
            None => {
                // Flume took the sinks out of the lone-sink pool before failing: they do not run.
                sinks.built.retain(|s| !members.contains(&s.name));
            }
        }
    }
    Some(groups)
}
