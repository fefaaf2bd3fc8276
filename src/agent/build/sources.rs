//! Building sources: type, properties, selector, interceptor chain, dead-letter channel, in
//! the order of Flume's `AbstractConfigurationProvider.loadSources`.

use std::sync::Arc;

use super::common::{batch_too_large, build_one, interceptors, Dropped, Made};
use super::partial::Partial;
use super::{error_channel, Channels, ErrorChannel};
use crate::agent::topology::SourceNode;
use crate::config::{AgentSpec, ComponentKind, Finding, FindingKind, PropReader, SourceSpec};
use crate::interceptor::Chain;
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
    let wiring = wire(s, channels);
    wiring.report_lost(s, findings, &full);
    let mut routing: Option<(Selector, Chain, ErrorChannel)> = None;
    let made = build_one(spec, KIND, c, findings, |r| {
        // Flume creates the selector before it configures the interceptors; the dead-letter
        // channel is Flumen's and comes last, so that a bad one leaves Flume's keys read.
        let selector = selector(r, &wiring);
        if selector.is_none() && r.lacking().is_none() {
            r.mark_prefix_used("interceptors");
            r.mark_used("errorChannel");
            return Err(Dropped::Broken);
        }
        let chain = interceptors(r, &c.props, &full);
        let errors = error_channel(r, channels);
        let (Some(chain), Ok(errors)) = (chain, errors) else {
            return Err(Dropped::Broken);
        };
        routing = selector.map(|selector| (selector, chain, errors));
        Ok(())
    });
    let made = match made {
        Ok(made) => made,
        Err(Dropped::Broken) => return None,
    };
    // Flume checks the batch against each channel while wiring, Flumen's lacking ones too.
    let too_large = wiring
        .capacities
        .iter()
        .find_map(|(name, cap)| batch_too_large(agent, KIND, c, name, *cap));
    if let Some(finding) = too_large {
        findings.push(finding);
        return None;
    }
    if wiring.flume.is_empty() {
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
            let own_type = finding.is_some();
            findings.extend(finding);
            lacking(s, &what, own_type, partial, findings);
            return None;
        }
    };
    if wiring.built.is_empty() {
        partial.cascade(KIND, &c.name);
        findings.push(Finding::new(
            FindingKind::PartialDrop,
            Some(s.channels_origin.clone()),
            full,
            format!(
                "Source `{}` is not started: Flumen cannot run its channel(s) {} (see their findings); Flume would run it.",
                c.name,
                wiring.lacking.join(", ")
            ),
        ));
        return None;
    }
    let (selector, chain, errors) = routing?;
    Some(node(
        s,
        source,
        wiring.built,
        selector,
        chain,
        errors,
        channels,
    ))
}

/// A source's channels: those Flumen built, those Flume would have (built, or only Flumen
/// lacks them), and the transactionCapacity of each for Flume's batch rule.
struct Wiring {
    built: Vec<String>,
    flume: Vec<String>,
    lacking: Vec<String>,
    dropped: Vec<String>,
    capacities: Vec<(String, usize)>,
}

fn wire(s: &SourceSpec, channels: &Channels<'_>) -> Wiring {
    let mut w = Wiring {
        built: Vec::new(),
        flume: Vec::new(),
        lacking: Vec::new(),
        dropped: Vec::new(),
        capacities: Vec::new(),
    };
    for ch in &s.channels {
        if let Some(channel) = channels.get(ch) {
            w.built.push(ch.clone());
            w.flume.push(ch.clone());
            w.capacities
                .push((ch.clone(), channel.transaction_capacity()));
        } else if let Some(capacity) = channels.lacking.get(ch.as_str()) {
            w.lacking.push(ch.clone());
            w.flume.push(ch.clone());
            w.capacities.extend(capacity.map(|cap| (ch.clone(), cap)));
        } else {
            w.dropped.push(ch.clone());
        }
    }
    w
}

impl Wiring {
    /// One finding per lost channel at the `channels` line: Flume's own drop, or one only
    /// Flumen made (when the source still has a channel to run with).
    fn report_lost(&self, s: &SourceSpec, findings: &mut Vec<Finding>, full: &str) {
        let name = &s.component.name;
        let flumen = self.lacking.iter().filter(|_| !self.built.is_empty()).map(|ch| {
            (
                FindingKind::PartialDrop,
                format!("Source `{name}` loses channel `{ch}`, which Flumen cannot run (see its finding); Flume would write to it."),
            )
        });
        let flume = self.dropped.iter().map(|ch| {
            (
                FindingKind::DroppedComponent,
                format!("Source `{name}` loses channel `{ch}`, which Flume drops because of its configuration."),
            )
        });
        for (kind, message) in flume.chain(flumen) {
            findings.push(Finding::new(
                kind,
                Some(s.channels_origin.clone()),
                format!("{full}.channels"),
                message,
            ));
        }
    }
}

/// The selector, checked against the channels Flume would wire (a reference to an unknown
/// channel is Flume's failure). When it also routes to a channel only Flumen lacks, the
/// source cannot run in Flumen: that is recorded in the reader as something Flumen lacks.
fn selector(r: &mut PropReader<'_>, wiring: &Wiring) -> Option<Selector> {
    let flume = Selector::from_props(r, &wiring.flume)?;
    if wiring.lacking.is_empty() {
        return Some(flume);
    }
    let runnable = {
        let component = r.component().to_string();
        let mut scratch = PropReader::new(r.props(), &component);
        Selector::from_props(&mut scratch, &wiring.built)
    };
    if runnable.is_some() {
        return runnable;
    }
    let origin = r.anchor();
    let key = r.full_key("selector.type");
    let lacking = wiring.lacking.join(", ");
    r.unsupported(
        format!("channel(s) {lacking} for its selector"),
        Finding::new(
            FindingKind::PartialDrop,
            origin,
            key,
            format!("The selector of `{}` routes events to channel(s) {lacking}, which Flumen cannot run (see their findings); Flume would run the source.", r.component()),
        ),
    );
    None
}

/// A source Flumen cannot run. When its type is fine and something it uses is not (an
/// interceptor, a selector class, TLS), it gets a finding of its own.
fn lacking(
    s: &SourceSpec,
    what: &str,
    own_type: bool,
    partial: &mut Partial,
    findings: &mut Vec<Finding>,
) {
    let c = &s.component;
    let role = format!("would feed {}", s.channels.join(", "));
    if !own_type {
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
