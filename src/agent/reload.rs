//! Hot reload: validate a changed config, then apply only the difference.
//!
//! A candidate config is refused, and the running pipeline left as it is, when it cannot be
//! read or has any finding (the same checks `flumen check` and `--strict` apply): a reload
//! must never make a working agent worse. Otherwise the new config is built with every
//! unchanged channel wired in (a memory channel whose keys changed is resized in place and
//! keeps its events), and then, in this order:
//!
//! 1. sources that changed, were removed, or write to a channel being replaced stop (their
//!    in-flight batches commit or roll back first);
//! 2. sink runners that changed stop after the transaction in hand; those whose channel goes
//!    away first drain it, within `--shutdown-timeout`;
//! 3. removed and replaced channels stop, and what is left in them is reported (a replaced
//!    memory channel's leftovers move into its replacement);
//! 4. new channels, sink runners and sources start.
//!
//! A component compares equal when its type and every key's value are the same (line numbers
//! do not matter); a source or sink also restarts when a channel it uses is replaced, and a
//! source that failed (to bind, say) restarts on any reload, SIGHUP included. Flume
//! itself stops and restarts every component on any change, keeping only its channel objects.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::time::Instant;

use super::deadline::Deadline;
use super::options::RunOptions;
use super::pipeline::{Pipeline, RunnerEnd};
use super::topology::{ChannelNode, Topology};
use crate::channel::{ChannelError, ChannelRef};
use crate::config::{
    AgentSpec, ComponentSpec, Finding, FindingKind, Loaded, Props, SinkGroupSpec, SinkSpec,
    SourceSpec,
};
use crate::event::Event;
use crate::monitor::{Registry, View};

/// A config read after a change was seen (or a SIGHUP).
pub struct Candidate {
    /// The loaded config, or why it could not be read.
    pub loaded: Result<Loaded, String>,
    /// What triggered the reload (for the log).
    pub reason: String,
}

/// The reload state of a running agent: the spec it runs, and the monitoring view to update.
pub struct Reloader {
    /// The spec the pipeline was built from.
    pub spec: AgentSpec,
    /// Monitoring, if served.
    pub registry: Option<Registry>,
    /// The agent's stop: a SIGTERM during a reload cuts the reload's waits short.
    pub stop: tokio_util::sync::CancellationToken,
}

/// What a reload changes.
#[derive(Default)]
struct Plan {
    resized: Vec<String>,
    kept_channels: BTreeSet<String>,
    retire_channels: Vec<String>,
    retire_sources: Vec<String>,
    retire_runners: Vec<(String, RunnerEnd)>,
    new_runners: BTreeSet<String>,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.resized.is_empty()
            && self.retire_channels.is_empty()
            && self.retire_sources.is_empty()
            && self.retire_runners.is_empty()
    }
}

impl Reloader {
    /// Validates `candidate` and applies it to `pipeline`; on any problem logs why and leaves
    /// the pipeline running as it was.
    pub async fn apply(
        &mut self,
        pipeline: &mut Pipeline,
        candidate: Candidate,
        options: &RunOptions,
    ) {
        let reason = candidate.reason;
        let loaded = match candidate.loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!(%reason, %error, "Config change not applied: the config cannot be read. The running pipeline is unchanged.");
                return;
            }
        };
        let Some(spec) = refuse_findings(loaded, &reason) else {
            return;
        };
        // Validate exactly as at start-up: fresh channels, every limit from the new config.
        let mut fresh = Vec::new();
        let (checked, findings) = super::build_with(&spec, options.build, &mut |c, built| {
            fresh.push((c.name.clone(), built.clone()));
            built
        });
        // With --allow-partial, what Flumen lacks is expected (it was so at start); anything
        // else still refuses the change.
        let tolerated = |f: &Finding| {
            options.build.allow_partial
                && matches!(
                    f.kind,
                    FindingKind::UnsupportedType
                        | FindingKind::PartialDrop
                        | FindingKind::NoConsumer
                )
        };
        if findings.iter().any(|f| !tolerated(f)) || checked.is_none() {
            for f in &findings {
                tracing::warn!("{f}");
            }
            tracing::error!(%reason, findings = findings.len(), "Config change refused: the new config has findings a reload does not accept (see above). The running pipeline is unchanged.");
            return;
        }
        drop(checked);
        // Valid: resize in place what can be, so the wiring below sees the new limits.
        let mut resized = Vec::new();
        for (name, built) in &fresh {
            let before = self.spec.channels.iter().find(|c| &c.name == name);
            let after = spec.channels.iter().find(|c| &c.name == name);
            let (Some(before), Some(after), Some(running)) =
                (before, after, pipeline.channel(name))
            else {
                continue;
            };
            let hooks = running
                .reload_hooks()
                .filter(|h| h.can_reconfigure(built.as_ref()));
            if let Some(hooks) = hooks.filter(|_| !same_component(before, after)) {
                hooks.reconfigure(built.as_ref());
                tracing::info!(channel = %name, config = %running.describe(), "Channel resized in place; its events are kept.");
                resized.push(name.clone());
            }
        }
        drop(fresh);
        let (topology, findings) = {
            let old = &self.spec;
            let running = &*pipeline;
            super::build_with(&spec, options.build, &mut |c, built| {
                adopt(old, running, &resized, c, built)
            })
        };
        for f in &findings {
            tracing::warn!("{f}");
        }
        let Some(topology) = topology else {
            tracing::error!(%reason, "Config change not applied: wiring the new config to the running channels failed.");
            return;
        };
        let plan = plan(&self.spec, &spec, pipeline, &topology, resized);
        if plan.is_empty() && self.unchanged_additions(pipeline, &topology) {
            tracing::info!(%reason, "Config reloaded: no component changed.");
            self.spec = spec;
            return;
        }
        self.execute(pipeline, topology, plan, options, &reason)
            .await;
        self.spec = spec;
    }

    /// Whether `topology` adds nothing to what runs.
    fn unchanged_additions(&self, pipeline: &Pipeline, topology: &Topology) -> bool {
        topology
            .sources
            .iter()
            .all(|s| pipeline.sources.contains_key(&s.name))
            && topology
                .channels
                .iter()
                .all(|c| pipeline.channel(&c.name).is_some())
            && runner_keys(topology)
                .keys()
                .all(|k| pipeline.runners.contains_key(k))
    }

    /// `--shutdown-timeout` from now, or less if the agent is told to stop meanwhile.
    fn deadline(&self, options: &RunOptions) -> Deadline {
        Deadline::interruptible(Instant::now() + options.shutdown_timeout, self.stop.clone())
    }

    async fn execute(
        &mut self,
        pipeline: &mut Pipeline,
        topology: Topology,
        plan: Plan,
        options: &RunOptions,
        reason: &str,
    ) {
        let shape = topology.shape();
        tracing::info!(
            %reason,
            resized = ?plan.resized,
            stopping_sources = ?plan.retire_sources,
            stopping_sinks = ?plan.retire_runners.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            stopping_channels = ?plan.retire_channels,
            "Applying config change."
        );
        let deadline = self.deadline(options);
        pipeline.stop_sources(&plan.retire_sources, &deadline).await;
        let deadline = self.deadline(options);
        pipeline.stop_runners(&plan.retire_runners, &deadline).await;
        if self.stop.is_cancelled() {
            // What this reload retired has stopped; everything else stops with the agent,
            // whose shutdown drains and reports every channel still in the pipeline.
            tracing::warn!(%reason, "Stop requested during a reload: the rest of the change is not applied.");
            return;
        }

        // Channels going away close now (a replacement may need their directories), except a
        // replaced one whose close would lose events: it stays open until they have moved.
        let replaced: BTreeSet<&str> = topology.channels.iter().map(|c| c.name.as_str()).collect();
        let mut moving = Vec::new();
        for name in &plan.retire_channels {
            let Some(node) = pipeline.remove_channel(name) else {
                continue;
            };
            if replaced.contains(name.as_str()) && node.channel.lost_on_stop() > 0 {
                moving.push(node);
            } else {
                close_channel(node, options).await;
            }
        }

        let Topology {
            sources,
            channels,
            sinks,
            groups,
            ..
        } = topology;
        let mut failed = Vec::new();
        for c in channels {
            if plan.kept_channels.contains(&c.name) {
                continue;
            }
            let name = c.name.clone();
            let Err(c) = pipeline.start_channel(c).await else {
                continue;
            };
            // It may need what the old channel holds open: close that one and try again.
            if let Some(i) = moving.iter().position(|m| m.name == name) {
                close_channel(moving.remove(i), options).await;
                if pipeline.start_channel(c).await.is_ok() {
                    continue;
                }
            }
            failed.push(name);
        }
        let new_groups: Vec<_> = groups
            .into_iter()
            .filter(|g| plan.new_runners.contains(&group_key(&g.name)))
            .collect();
        let grouped: BTreeSet<String> = new_groups.iter().flat_map(|g| g.sinks.clone()).collect();
        let new_sinks: Vec<_> = sinks
            .into_iter()
            .filter(|s| grouped.contains(&s.name) || plan.new_runners.contains(&s.name))
            .collect();
        pipeline.start_runners(new_sinks, new_groups);
        for s in sources {
            if !pipeline.sources.contains_key(&s.name) {
                pipeline.start_source(s).await;
            }
        }
        let deadline = self.deadline(options);
        for old in moving {
            if let Some(new) = pipeline.channel(&old.name).cloned() {
                move_leftovers(&old, &new, &deadline).await;
            }
            close_channel(old, options).await;
        }
        if let Some(registry) = &self.registry {
            registry.set(View {
                components: pipeline.components(),
                shape,
            });
        }
        if failed.is_empty() {
            tracing::info!(%reason, "Config change applied.");
        } else {
            tracing::error!(%reason, failed = ?failed, "Config change applied except for components that failed to start (logged above); what uses them does not run. Fix the cause and send SIGHUP to start them.");
        }
    }
}

/// The spec of `loaded`, or `None` (logged) when it has findings or no agent.
fn refuse_findings(loaded: Loaded, reason: &str) -> Option<AgentSpec> {
    if loaded.findings.is_empty() {
        if let Some(spec) = loaded.agent {
            return Some(spec);
        }
    }
    for f in &loaded.findings {
        tracing::warn!("{f}");
    }
    tracing::error!(%reason, findings = loaded.findings.len(), "Config change refused: the new config has findings (the checks --strict applies). The running pipeline is unchanged.");
    None
}

/// The wiring hook: use the running channel when its config is unchanged or it was resized
/// in place; the new one otherwise.
fn adopt(
    old: &AgentSpec,
    running: &Pipeline,
    resized: &[String],
    spec: &ComponentSpec,
    built: ChannelRef,
) -> ChannelRef {
    let (Some(before), Some(current)) = (
        old.channels.iter().find(|c| c.name == spec.name),
        running.channel(&spec.name),
    ) else {
        return built;
    };
    if same_component(before, spec) || resized.contains(&spec.name) {
        return current.clone();
    }
    built
}

fn plan(
    old: &AgentSpec,
    new: &AgentSpec,
    pipeline: &Pipeline,
    topology: &Topology,
    resized: Vec<String>,
) -> Plan {
    let kept_channels: BTreeSet<String> = topology
        .channels
        .iter()
        .filter(|c| {
            pipeline
                .channel(&c.name)
                .is_some_and(|running| Arc::ptr_eq(running, &c.channel))
        })
        .map(|c| c.name.clone())
        .collect();
    let retire_channels: Vec<String> = pipeline
        .channels
        .iter()
        .map(|c| c.name.clone())
        .filter(|n| !kept_channels.contains(n))
        .collect();
    let uses_kept = |channels: &[String]| channels.iter().all(|c| kept_channels.contains(c));

    let retire_sources = pipeline
        .sources
        .iter()
        .filter(|(name, s)| {
            let same = source_spec(old, name)
                .zip(source_spec(new, name))
                .is_some_and(|(a, b)| same_source(a, b));
            // A source that failed (a port in use at start) is restarted by any reload.
            !(same && uses_kept(&s.channels) && !s.has_failed())
        })
        .map(|(name, _)| name.clone())
        .collect();

    let wanted = runner_keys(topology);
    let mut retire_runners = Vec::new();
    for (key, r) in &pipeline.runners {
        let channels: Vec<String> = r.sinks.iter().flat_map(|k| k.channels.clone()).collect();
        let same = wanted.contains_key(key)
            && runner_spec(old, key) == runner_spec(new, key)
            && uses_kept(&channels);
        if !same {
            let drains_retired = r
                .sinks
                .iter()
                .any(|k| retire_channels.contains(&k.channels[0]));
            let end = if drains_retired {
                RunnerEnd::Drain
            } else {
                RunnerEnd::AfterInFlight
            };
            retire_runners.push((key.clone(), end));
        }
    }
    let new_runners = wanted
        .into_keys()
        .filter(|k| !pipeline.runners.contains_key(k) || retire_runners.iter().any(|(r, _)| r == k))
        .collect();
    Plan {
        resized,
        kept_channels,
        retire_channels,
        retire_sources,
        retire_runners,
        new_runners,
    }
}

/// The runner key of a sink group (distinct from any sink's name).
pub fn group_key(group: &str) -> String {
    format!("sinkgroup {group}")
}

/// Runner key → member sinks, for `topology`.
fn runner_keys(topology: &Topology) -> BTreeMap<String, Vec<String>> {
    let mut keys = BTreeMap::new();
    let mut grouped = BTreeSet::new();
    for g in &topology.groups {
        let members: Vec<String> = g
            .sinks
            .iter()
            .filter(|n| topology.sinks.iter().any(|s| &s.name == *n))
            .cloned()
            .collect();
        if !members.is_empty() {
            grouped.extend(members.iter().cloned());
            keys.insert(group_key(&g.name), members);
        }
    }
    for s in &topology.sinks {
        if !grouped.contains(&s.name) {
            keys.insert(s.name.clone(), vec![s.name.clone()]);
        }
    }
    keys
}

fn source_spec<'a>(spec: &'a AgentSpec, name: &str) -> Option<&'a SourceSpec> {
    spec.sources.iter().find(|s| s.component.name == name)
}

/// A runner's config, compared without origins: the group's keys, then each sink's.
fn runner_spec(spec: &AgentSpec, key: &str) -> Option<Vec<Vec<(String, String)>>> {
    let sink = |name: &str| spec.sinks.iter().find(|s| s.component.name == name);
    let sink_values = |s: &SinkSpec| {
        let mut v = component_values(&s.component);
        v.push(("channel".into(), s.channel.clone()));
        v
    };
    if let Some(group) = key.strip_prefix("sinkgroup ") {
        let g: &SinkGroupSpec = spec.sinkgroups.iter().find(|g| g.name == group)?;
        let mut out = vec![props_values(&g.props)];
        out.push(g.sinks.iter().map(|s| ("sink".into(), s.clone())).collect());
        for name in &g.sinks {
            out.push(sink(name).map(sink_values).unwrap_or_default());
        }
        return Some(out);
    }
    let in_group = spec
        .sinkgroups
        .iter()
        .any(|g| g.sinks.iter().any(|s| s == key));
    if in_group {
        return None;
    }
    sink(key).map(|s| vec![sink_values(s)])
}

fn props_values(props: &Props) -> Vec<(String, String)> {
    props
        .iter()
        .map(|(k, p)| (k.clone(), p.value.clone()))
        .collect()
}

fn component_values(c: &ComponentSpec) -> Vec<(String, String)> {
    let mut v = vec![("type".to_string(), c.type_.value.clone())];
    v.extend(props_values(&c.props));
    v
}

fn same_component(a: &ComponentSpec, b: &ComponentSpec) -> bool {
    component_values(a) == component_values(b)
}

fn same_source(a: &SourceSpec, b: &SourceSpec) -> bool {
    a.channels == b.channels && same_component(&a.component, &b.component)
}

/// Stops a channel that is going away, reporting what it leaves.
async fn close_channel(node: ChannelNode, options: &RunOptions) {
    super::run::report_channel_end(&node, "removed by a reload", options);
    node.channel.stop().await;
    node.channel.counters().lifetime.stopped();
}

/// Moves what a replaced channel would lose on close into its replacement, one transaction
/// at a time (each take commits only once its put succeeded), while the new sinks drain the
/// replacement; gives up at `deadline`, leaving the rest to be reported.
async fn move_leftovers(old: &ChannelNode, new: &ChannelRef, deadline: &Deadline) {
    let batch = old
        .channel
        .transaction_capacity()
        .min(new.transaction_capacity());
    let mut moved = 0;
    while old.channel.lost_on_stop() > 0 && !deadline.passed() {
        let take = match old.channel.take(batch).await {
            Ok(t) if !t.is_empty() => t,
            _ => break,
        };
        let events: Vec<Event> = take.events().to_vec();
        let n = events.len();
        match deadline.wait(new.put(events)).await.ok_or(()) {
            Ok(Ok(())) => {
                if take.commit().await.is_err() {
                    break;
                }
                moved += n;
            }
            Ok(Err(ChannelError::Full { .. } | ChannelError::Unavailable { .. })) => {
                take.rollback()
            }
            Ok(Err(error)) => {
                take.rollback();
                tracing::warn!(channel = %old.name, %error, "Moving events into the replacement failed.");
                break;
            }
            Err(_) => take.rollback(),
        }
    }
    if moved > 0 {
        tracing::info!(channel = %old.name, events = moved, "Events of the replaced channel moved into its replacement.");
    }
}
