//! The running graph: per-component handles, so that a hot reload can stop, drain and start
//! components one by one while the rest keep running, and the shutdown can stop them all.
//!
//! Each source runs in its own task with its own stop token; each sink runner (a group, or a
//! lone sink) has its own [`RunnerControl`]. A task that ends tells the main loop through
//! [`SourceEnd`], so a source failing on its own (a port in use) is reported at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::deadline::Deadline;
use super::topology::{ChannelNode, GroupNode, SinkNode, SourceNode};
use crate::channel::ChannelRef;
use crate::metrics::{SinkCounters, SourceCounters};
use crate::monitor::{Component, Counters};
use crate::sink::processor::SinkProcessor;
use crate::sink::runner::{RunnerControl, SinkRunner};
use crate::sink::slot::Slot;
use crate::source::{ChannelProcessor, SourceContext, SourceError};

/// How long an aborted runner gets to roll back before its task is cancelled.
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// A source task's end, sent to the main loop.
pub struct SourceEnd {
    /// The source's name.
    pub name: String,
    /// How it ended.
    pub result: Result<(), SourceError>,
    /// Whether the agent asked it to stop (a reload or the shutdown).
    pub asked: bool,
}

/// A running source.
pub struct RunningSource {
    /// The type as configured.
    pub type_name: String,
    /// Channels it writes to (and its dead-letter channel).
    pub channels: Vec<String>,
    counters: SourceCounters,
    stop: CancellationToken,
    task: JoinHandle<()>,
    flusher: Option<(SourceContext, JoinHandle<()>)>,
    failed: Arc<AtomicBool>,
}

impl RunningSource {
    /// Whether it ended with an error (a port in use); a source that finished its work (a
    /// `seq`, a one-shot `exec`) has not failed.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

/// A sink as a runner drives it (for reports and monitoring).
pub struct SinkInfo {
    /// The sink's name.
    pub name: String,
    /// The type as configured.
    pub type_name: String,
    /// The channel it drains (and its dead-letter channel).
    pub channels: Vec<String>,
    /// Its counters.
    pub counters: SinkCounters,
}

/// A running sink runner: a sink group, or one sink with the default processor.
pub struct RunningRunner {
    /// Its sinks.
    pub sinks: Vec<SinkInfo>,
    control: RunnerControl,
    task: JoinHandle<()>,
}

/// How a runner ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunnerEnd {
    /// Finish the transaction in hand, then stop (the channel stays for others).
    AfterInFlight,
    /// Empty the channels first (they are going away, or the agent stops).
    Drain,
}

/// Every running component of the agent.
pub struct Pipeline {
    /// The agent's name.
    pub agent: String,
    /// Channels, in config order.
    pub channels: Vec<ChannelNode>,
    /// Sources by name, in config order of their start.
    pub sources: BTreeMap<String, RunningSource>,
    /// Runners by name (group name, or the lone sink's name).
    pub runners: BTreeMap<String, RunningRunner>,
    ends: mpsc::UnboundedSender<SourceEnd>,
}

impl Pipeline {
    /// An empty pipeline whose source ends go to `ends`.
    pub fn new(agent: &str, ends: mpsc::UnboundedSender<SourceEnd>) -> Pipeline {
        Pipeline {
            agent: agent.to_string(),
            channels: Vec::new(),
            sources: BTreeMap::new(),
            runners: BTreeMap::new(),
            ends,
        }
    }

    /// A running channel by name.
    pub fn channel(&self, name: &str) -> Option<&ChannelRef> {
        self.channels
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.channel)
    }

    /// Starts `c` and adds it; gives it back (the error logged) when it cannot start.
    pub async fn start_channel(&mut self, c: ChannelNode) -> Result<(), ChannelNode> {
        if let Err(error) = c.channel.start().await {
            tracing::error!(channel = %c.name, %error, "Channel failed to start.");
            return Err(c);
        }
        c.channel.counters().lifetime.started();
        tracing::info!(channel = %c.name, r#type = %c.type_name, config = %c.channel.describe(), "Channel started.");
        self.channels.push(c);
        Ok(())
    }

    /// Starts the runners for `sinks` and `groups` (sinks in no group run alone).
    pub fn start_runners(&mut self, sinks: Vec<SinkNode>, groups: Vec<GroupNode>) {
        let mut sinks: BTreeMap<String, SinkNode> =
            sinks.into_iter().map(|s| (s.name.clone(), s)).collect();
        for g in groups {
            let members: Vec<SinkNode> = g.sinks.iter().filter_map(|n| sinks.remove(n)).collect();
            if members.is_empty() {
                continue;
            }
            tracing::info!(group = %g.name, processor = g.processor.name(), sinks = %g.sinks.join(" "), "Sink group started.");
            self.start_runner(&g.name, members, g.processor);
        }
        for (name, sink) in sinks {
            self.start_runner(&name, vec![sink], SinkProcessor::Default);
        }
    }

    fn start_runner(&mut self, name: &str, members: Vec<SinkNode>, processor: SinkProcessor) {
        let mut slots = Vec::new();
        let mut infos = Vec::new();
        for s in members {
            let Some(channel) = self.channel(&s.channel).cloned() else {
                tracing::error!(sink = %s.name, channel = %s.channel, "Sink not started: its channel is not running.");
                continue;
            };
            let errors = s
                .error_channel
                .as_deref()
                .and_then(|n| self.channel(n))
                .cloned();
            tracing::info!(sink = %s.name, r#type = %s.type_name, channel = %s.channel, interceptors = %s.chain.describe(), error_channel = ?s.error_channel, config = %s.sink.describe(), "Sink started.");
            infos.push(SinkInfo {
                name: s.name.clone(),
                type_name: s.type_name.clone(),
                channels: std::iter::once(s.channel.clone())
                    .chain(s.error_channel.clone())
                    .collect(),
                counters: s.counters.clone(),
            });
            slots.push(Slot::new(
                &s.name,
                s.sink,
                channel,
                s.counters,
                s.chain,
                errors,
                s.max_events_per_second,
            ));
        }
        if slots.is_empty() {
            return;
        }
        let control = RunnerControl::default();
        let task = tokio::spawn(SinkRunner::new(name, slots, processor).run(control.clone()));
        self.runners.insert(
            name.to_string(),
            RunningRunner {
                sinks: infos,
                control,
                task,
            },
        );
    }

    /// Starts `s` in its own task, unless a channel it writes to is not running.
    pub async fn start_source(&mut self, s: SourceNode) {
        if let Some(missing) = s
            .channels
            .iter()
            .chain(&s.error_channel)
            .find(|c| self.channel(c).is_none())
        {
            tracing::error!(source = %s.name, channel = %missing, "Source not started: its channel is not running.");
            return;
        }
        let stop = CancellationToken::new();
        let ctx = SourceContext {
            name: s.name.clone(),
            processor: s.processor.clone(),
            shutdown: stop.clone(),
            counters: s.counters.clone(),
        };
        tracing::info!(source = %s.name, r#type = %s.type_name, channels = %s.channels.join(" "), routing = %s.routing, config = %s.source.describe(), "Source starting.");
        let flusher = s
            .processor
            .flush_interval()
            .await
            .map(|every| (ctx.clone(), tokio::spawn(flush_loop(ctx.clone(), every))));
        let ends = self.ends.clone();
        let name = s.name.clone();
        let failed = Arc::new(AtomicBool::new(false));
        let failure = failed.clone();
        let running = RunningSource {
            type_name: s.type_name.clone(),
            channels: s.channels.iter().chain(&s.error_channel).cloned().collect(),
            counters: s.counters.clone(),
            stop: stop.clone(),
            task: tokio::spawn(async move {
                ctx.counters.lifetime.started();
                let result = s.source.run(ctx.clone()).await;
                ctx.counters.lifetime.stopped();
                log_source_totals(&ctx);
                failure.store(result.is_err(), Ordering::Relaxed);
                let _ = ends.send(SourceEnd {
                    name: ctx.name.clone(),
                    result,
                    asked: stop.is_cancelled(),
                });
            }),
            flusher,
            failed,
        };
        self.sources.insert(name, running);
    }

    /// Stops the named sources, waits for them until `deadline`, and flushes their
    /// interceptors' open windows.
    pub async fn stop_sources(&mut self, names: &[String], deadline: &Deadline) {
        let mut stopping = Vec::new();
        for name in names {
            if let Some(s) = self.sources.remove(name) {
                s.stop.cancel();
                stopping.push((name.clone(), s));
            }
        }
        for (name, s) in &mut stopping {
            if deadline.wait(&mut s.task).await.is_none() {
                tracing::warn!(source = %name, "Source did not stop in time; cancelling it.");
                s.task.abort();
            }
        }
        for (_, s) in stopping {
            if let Some((ctx, task)) = s.flusher {
                let _ = task.await;
                final_flush(&ctx).await;
            }
        }
    }

    /// Stops the named runners as `end` says, aborting those still running at `deadline`.
    /// Runners that read another sink's dead-letter channel stop last, so that nothing
    /// dead-lettered while the others finish is left behind.
    pub async fn stop_runners(&mut self, names: &[(String, RunnerEnd)], deadline: &Deadline) {
        let dead_letter: BTreeSet<&String> = self
            .runners
            .values()
            .flat_map(|r| &r.sinks)
            .flat_map(|k| k.channels.iter().skip(1))
            .collect();
        let (last, first): (Vec<_>, Vec<_>) = names.iter().cloned().partition(|(name, _)| {
            self.runners
                .get(name)
                .is_some_and(|r| r.sinks.iter().any(|k| dead_letter.contains(&k.channels[0])))
        });
        self.stop_runners_now(&first, deadline).await;
        self.stop_runners_now(&last, deadline).await;
    }

    async fn stop_runners_now(&mut self, names: &[(String, RunnerEnd)], deadline: &Deadline) {
        let mut stopping = Vec::new();
        for (name, end) in names {
            if let Some(r) = self.runners.remove(name) {
                match end {
                    RunnerEnd::AfterInFlight => r.control.stop.cancel(),
                    RunnerEnd::Drain => r.control.drain.cancel(),
                }
                stopping.push((name.clone(), r));
            }
        }
        for (name, r) in &mut stopping {
            if deadline.wait(&mut r.task).await.is_some() {
                continue;
            }
            tracing::warn!(runner = %name, "Sinks did not finish in time; rolling back what they hold.");
            r.control.abort.cancel();
            if tokio::time::timeout(ABORT_GRACE, &mut r.task)
                .await
                .is_err()
            {
                r.task.abort();
                // Cancelling the task drops its open take, which rolls back into the channel.
                let _ = tokio::time::timeout(ABORT_GRACE, &mut r.task).await;
            }
        }
    }

    /// Removes the named channel from the pipeline (the caller stops it).
    pub fn remove_channel(&mut self, name: &str) -> Option<ChannelNode> {
        let i = self.channels.iter().position(|c| c.name == name)?;
        Some(self.channels.remove(i))
    }

    /// What monitoring shows: every running component.
    pub fn components(&self) -> Vec<Component> {
        let mut out = Vec::new();
        for (name, s) in &self.sources {
            out.push(Component {
                name: name.clone(),
                type_name: s.type_name.clone(),
                counters: Counters::Source(s.counters.clone()),
                counter_set: Default::default(),
            });
        }
        for c in &self.channels {
            out.push(Component::channel(c));
        }
        for r in self.runners.values() {
            for k in &r.sinks {
                out.push(Component {
                    name: k.name.clone(),
                    type_name: k.type_name.clone(),
                    counters: Counters::Sink(k.counters.clone()),
                    counter_set: Default::default(),
                });
            }
        }
        out
    }
}

fn log_source_totals(ctx: &SourceContext) {
    let c = &ctx.counters;
    tracing::info!(
        source = %ctx.name,
        received = c.event_received.get(),
        accepted = c.event_accepted.get(),
        filtered = c.event_filtered.get(),
        dead_lettered = c.event_dead_lettered.get(),
        write_failures = c.channel_write_fail.get(),
        "Source totals."
    );
}

/// Drives a source chain's periodic flush until the source stops.
async fn flush_loop(ctx: SourceContext, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ctx.shutdown.cancelled() => return,
        }
        if let Err(error) = ctx.processor.flush(false, &ctx).await {
            tracing::warn!(source = %ctx.name, %error, "Putting interceptor output failed.");
        }
    }
}

/// The last flush of a source chain once its source has stopped (open windows).
async fn final_flush(ctx: &SourceContext) {
    if let Err(error) = ChannelProcessor::flush(&ctx.processor, true, ctx).await {
        tracing::error!(source = %ctx.name, %error, "Events emitted by the final flush of the interceptors could not be put and are lost.");
    }
}
