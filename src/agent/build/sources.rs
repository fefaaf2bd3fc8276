//! Building sources: type, properties, selector, interceptor chain, dead-letter channel, in
//! the order of Flume's `AbstractConfigurationProvider.loadSources`.

use std::sync::Arc;

use super::common::{batch_too_large, build_one, Dropped, Made};
use super::partial::Partial;
use super::{error_channel, Channels, ErrorChannel};
use crate::agent::topology::SourceNode;
use crate::config::{AgentSpec, ComponentKind, Finding, FindingKind, SourceSpec};
use crate::interceptor::{build_chain, Chain, ChainError};
use crate::metrics::SourceCounter;
use crate::registry::Built;
use crate::selector::Selector;
use crate::source::ChannelProcessor;

const KIND: ComponentKind = ComponentKind::Source;

/// Builds every source of `spec` that Flume would keep and Flumen can run.
pub(super) fn build_sources(
    spec: &AgentSpec,
    channels: &Channels<'_>,
    partial: &mut Partial,
    findings: &mut Vec<Finding>,
) -> Vec<SourceNode> {
    spec.sources
        .iter()
        .filter_map(|s| build_source(spec, s, channels, partial, findings))
        .collect()
}

fn build_source(
    spec: &AgentSpec,
    s: &SourceSpec,
    channels: &Channels<'_>,
    partial: &mut Partial,
    findings: &mut Vec<Finding>,
) -> Option<SourceNode> {
    let agent = &spec.name;
    let c = &s.component;
    let full = format!("{agent}.sources.{}", c.name);
    let wired = wire(s, channels, partial, findings, &full);
    let mut routing: Option<(Selector, Chain, ErrorChannel)> = None;
    let made = build_one(agent, KIND, c, findings, |r| {
        let errors = error_channel(r, channels)?;
        // Flume creates the selector before it configures the interceptors: a failing selector
        // means the interceptors' keys are never read, which is no fault of theirs.
        let selector = Selector::from_props(r, &wired);
        if selector.is_none() && r.lacking().is_none() {
            r.mark_prefix_used("interceptors");
            return Err(Dropped::Broken);
        }
        let chain = match build_chain(r, &c.props, &full) {
            Ok(chain) => chain,
            // The reader records what Flumen lacks; the source is then not run.
            Err(ChainError::Unsupported) => Chain::default(),
            Err(ChainError::Broken) => return Err(Dropped::Broken),
        };
        routing = selector.map(|selector| (selector, chain, errors));
        Ok(())
    });
    let made = match made {
        Ok(made) => made,
        Err(Dropped::Broken) => return None,
    };
    // Flume checks the batch against each channel while wiring, before the selector.
    let too_large = wired.iter().find_map(|name| {
        let cap = channels.get(name)?.transaction_capacity();
        batch_too_large(agent, KIND, c, name, cap)
    });
    if let Some(finding) = too_large {
        findings.push(finding);
        return None;
    }
    let lost_to_flumen = s
        .channels
        .iter()
        .any(|ch| partial.dropped(ComponentKind::Channel, ch));
    if wired.is_empty() && !lost_to_flumen {
        findings.push(Finding::new(
            FindingKind::DroppedComponent,
            Some(s.channels_origin.clone()),
            full,
            format!(
                "Source `{}` is not connected to any channel that was built; Flume drops it.",
                c.name
            ),
        ));
        return None;
    }
    let source = match made {
        Made::Built(Built::Source(source)) => source,
        Made::Built(_) => return None,
        Made::Lacking(what, finding) => {
            findings.extend(finding);
            lacking(s, &what, partial, findings);
            return None;
        }
    };
    if wired.is_empty() {
        partial.cascade(KIND, &c.name);
        findings.push(Finding::new(
            FindingKind::PartialDrop,
            Some(s.channels_origin.clone()),
            full,
            format!("Source `{}` is not started: Flumen cannot run any of its channels (see their findings); Flume would run it.", c.name),
        ));
        return None;
    }
    let (selector, chain, errors) = routing?;
    Some(node(s, source, wired, selector, chain, errors, channels))
}

/// The source's channels that were built. Each lost one is a finding at the `channels` line:
/// Flume's own drop, or one only Flumen made.
fn wire(
    s: &SourceSpec,
    channels: &Channels<'_>,
    partial: &Partial,
    findings: &mut Vec<Finding>,
    full: &str,
) -> Vec<String> {
    let name = &s.component.name;
    let mut wired = Vec::new();
    for ch in &s.channels {
        if channels.get(ch).is_some() {
            wired.push(ch.clone());
            continue;
        }
        let (kind, message) = if partial.dropped(ComponentKind::Channel, ch) {
            (
                FindingKind::PartialDrop,
                format!("Source `{name}` loses channel `{ch}`, which Flumen cannot run (see its finding); Flume would write to it."),
            )
        } else {
            (
                FindingKind::DroppedComponent,
                format!("Source `{name}` loses channel `{ch}`, which Flume drops because of its configuration."),
            )
        };
        findings.push(Finding::new(
            kind,
            Some(s.channels_origin.clone()),
            format!("{full}.channels"),
            message,
        ));
    }
    wired
}

/// A source Flumen cannot run. When its type is fine and something it uses is not (an
/// interceptor, a selector class, TLS), it gets a finding of its own.
fn lacking(s: &SourceSpec, what: &str, partial: &mut Partial, findings: &mut Vec<Finding>) {
    let c = &s.component;
    let role = format!("would feed {}", s.channels.join(", "));
    if !what.starts_with("the ") {
        findings.push(Finding::new(
            FindingKind::PartialDrop,
            Some(c.type_.origin.clone()),
            c.type_.full_key.clone(),
            format!(
                "Source `{}` ({}) is not started: it needs {what}, which Flumen does not implement; Flume would run it, and it {role}.",
                c.name,
                c.type_.value.trim()
            ),
        ));
    }
    partial.lack(
        KIND,
        &c.name,
        what.to_string(),
        role,
        c.type_.origin.clone(),
    );
}

fn node(
    s: &SourceSpec,
    source: Box<dyn crate::source::Source>,
    wired: Vec<String>,
    selector: Selector,
    chain: Chain,
    errors: ErrorChannel,
    channels: &Channels<'_>,
) -> SourceNode {
    let c = &s.component;
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
    SourceNode {
        name: c.name.clone(),
        type_name: c.type_.value.clone(),
        source,
        channels: wired,
        error_channel: error_name,
        processor: Arc::new(processor),
        counters,
        routing,
    }
}
