//! Building sources: type, properties, interceptor chain, selector, dead-letter channel.

use std::sync::Arc;

use super::common::{build_one, incompatible_batch, Dropped};
use super::{error_channel, Channels, ErrorChannel};
use crate::agent::topology::SourceNode;
use crate::config::{AgentSpec, ComponentKind, Finding, FindingKind};
use crate::interceptor::{build_chain, Chain, ChainError};
use crate::metrics::SourceCounter;
use crate::registry::Built;
use crate::selector::Selector;
use crate::source::ChannelProcessor;

/// Builds every source of `spec` that Flume would keep.
pub(super) fn build_sources(
    spec: &AgentSpec,
    channels: &Channels<'_>,
    findings: &mut Vec<Finding>,
) -> Vec<SourceNode> {
    let agent = &spec.name;
    let mut out = Vec::new();
    for s in &spec.sources {
        let c = &s.component;
        let full = format!("{agent}.sources.{}", c.name);
        // Flume builds the selector over the channels that exist.
        let mut wired = Vec::new();
        for name in &s.channels {
            if channels.get(name).is_some() {
                wired.push(name.clone());
            } else {
                findings.push(Finding::new(
                    FindingKind::DroppedComponent,
                    Some(c.type_.origin.clone()),
                    format!("{full}.channels"),
                    format!(
                        "Source `{}` loses channel `{name}`, which was dropped.",
                        c.name
                    ),
                ));
            }
        }
        let mut routing: Option<(Selector, Chain, ErrorChannel)> = None;
        let built = build_one(agent, ComponentKind::Source, c, findings, |r| {
            let errors = error_channel(r, channels)?;
            let chain = build_chain(r, &c.props, &full).map_err(|e| match e {
                ChainError::Unsupported => Dropped::Unsupported,
                ChainError::Broken => Dropped::Broken,
            })?;
            let selector = Selector::from_props(r, &wired).ok_or(Dropped::Broken)?;
            routing = Some((selector, chain, errors));
            Ok(())
        });
        let (Ok(Built::Source(source)), Some((selector, chain, errors))) = (built, routing) else {
            continue;
        };
        if let Some(batch) = source.batch_size() {
            let too_small = wired.iter().find_map(|name| {
                let cap = channels.get(name)?.transaction_capacity();
                (batch > cap).then(|| (name.clone(), cap))
            });
            if let Some((ch, cap)) = too_small {
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
        }
        if wired.is_empty() {
            findings.push(Finding::new(
                FindingKind::DroppedComponent,
                Some(c.type_.origin.clone()),
                full,
                format!(
                    "Source `{}` is not connected to any channel that was built; Flume drops it.",
                    c.name
                ),
            ));
            continue;
        }
        let counters = Arc::new(SourceCounter::default());
        let routing = format!(
            "selector={}{}{}",
            selector.describe(),
            if chain.is_empty() {
                String::new()
            } else {
                format!(" interceptors=[{}]", chain.describe())
            },
            errors
                .as_ref()
                .map(|(n, _)| format!(" errorChannel={n}"))
                .unwrap_or_default()
        );
        let chans = wired
            .iter()
            .filter_map(|n| channels.get(n).cloned())
            .collect();
        let (error_name, error_ref) = match errors {
            Some((n, r)) => (Some(n), Some(r)),
            None => (None, None),
        };
        let processor =
            ChannelProcessor::new(&c.name, chans, selector, chain, error_ref, counters.clone());
        out.push(SourceNode {
            name: c.name.clone(),
            type_name: c.type_.value.clone(),
            source,
            channels: wired,
            error_channel: error_name,
            processor: Arc::new(processor),
            counters,
            routing,
        });
    }
    out
}
