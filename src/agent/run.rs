//! Running the graph: start channels, sinks, sources; stop sources, drain, report.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::topology::{ChannelNode, SinkNode, SourceNode, Topology};
use crate::sink::processor::SinkProcessor;
use crate::sink::runner::{RunnerControl, SinkRunner};
use crate::sink::slot::Slot;
use crate::source::{ChannelProcessor, SourceContext};

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// How long sinks get to drain the channels after the sources stop.
    pub shutdown_timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// What a stopped agent left behind.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// `(channel, events)` still held in non-durable channels when the agent stopped.
    pub lost: Vec<(String, usize)>,
    /// Components that could not start (e.g. a port in use).
    pub failed: Vec<String>,
}

/// Starts the topology and runs it until `stop` is cancelled, then shuts it down in order.
pub async fn run(topology: Topology, options: RunOptions, stop: CancellationToken) -> RunOutcome {
    let mut outcome = RunOutcome::default();
    let Topology {
        agent,
        sources,
        channels,
        sinks,
        groups,
    } = topology;
    tracing::info!(agent = %agent, "Starting agent.");

    for c in &channels {
        if let Err(error) = c.channel.start().await {
            tracing::error!(channel = %c.name, %error, "Channel failed to start.");
            outcome.failed.push(c.name.clone());
            continue;
        }
        c.channel.counters().lifetime.started();
        tracing::info!(channel = %c.name, r#type = %c.type_name, config = %c.channel.describe(), "Channel started.");
    }
    if !outcome.failed.is_empty() {
        // A channel that cannot open (locked or foreign directories, unreadable disk) would
        // make its sources refuse everything: stop here with the reason logged above.
        tracing::error!(channels = ?outcome.failed, "Agent not started: a channel failed to start.");
        for c in &channels {
            c.channel.stop().await;
        }
        return outcome;
    }

    let control = RunnerControl::default();
    let mut sink_tasks = JoinSet::new();
    for runner in runners(sinks, groups, &channels) {
        sink_tasks.spawn(runner.run(control.clone()));
    }

    let source_stop = CancellationToken::new();
    let mut source_tasks = JoinSet::new();
    let mut flushers = Vec::new();
    for s in sources {
        let ctx = SourceContext {
            name: s.name.clone(),
            processor: s.processor.clone(),
            shutdown: source_stop.clone(),
            counters: s.counters.clone(),
        };
        tracing::info!(source = %s.name, r#type = %s.type_name, channels = %s.channels.join(" "), routing = %s.routing, config = %s.source.describe(), "Source starting.");
        if let Some(every) = s.processor.flush_interval().await {
            flushers.push((ctx.clone(), tokio::spawn(flush_loop(ctx.clone(), every))));
        }
        source_tasks.spawn(run_source(s, ctx));
    }

    // Sources that fail (a port in use) are reported at once; the rest keep running.
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(joined) = source_tasks.join_next(), if !source_tasks.is_empty() => {
                report_source_end(joined, &mut outcome);
            }
        }
    }

    tracing::info!(agent = %agent, "Stopping: sources first, then draining the channels.");
    source_stop.cancel();
    let deadline = tokio::time::Instant::now() + options.shutdown_timeout;
    while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, source_tasks.join_next()).await {
        report_source_end(joined, &mut outcome);
    }
    source_tasks.abort_all();
    for (ctx, task) in flushers {
        let _ = task.await;
        final_flush(&ctx).await;
    }

    control.drain.cancel();
    let drained = tokio::time::timeout_at(deadline, async {
        while sink_tasks.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    if !drained {
        control.abort.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while sink_tasks.join_next().await.is_some() {}
        })
        .await;
        sink_tasks.abort_all();
    }

    for c in &channels {
        report_channel(c, &options, &mut outcome);
        c.channel.stop().await;
        c.channel.counters().lifetime.stopped();
    }
    tracing::info!(agent = %agent, "Agent stopped.");
    outcome
}

/// One runner per sink group, and one per sink in no group (Flume's default processor).
fn runners(
    sinks: Vec<SinkNode>,
    groups: Vec<super::topology::GroupNode>,
    channels: &[ChannelNode],
) -> Vec<SinkRunner> {
    let find = |name: &str| {
        channels
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.channel.clone())
    };
    let mut slots: Vec<Option<Slot>> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for s in sinks {
        let Some(channel) = find(&s.channel) else {
            continue;
        };
        let errors = s.error_channel.as_deref().and_then(find);
        tracing::info!(sink = %s.name, r#type = %s.type_name, channel = %s.channel, interceptors = %s.chain.describe(), error_channel = ?s.error_channel, config = %s.sink.describe(), "Sink started.");
        names.push(s.name.clone());
        slots.push(Some(Slot::new(
            &s.name,
            s.sink,
            channel,
            s.counters,
            s.chain,
            errors,
            s.max_events_per_second,
        )));
    }
    let mut take = |name: &str| -> Option<Slot> {
        let i = names.iter().position(|n| n == name)?;
        slots[i].take()
    };
    let mut runners = Vec::new();
    for g in groups {
        let members: Vec<Slot> = g.sinks.iter().filter_map(|n| take(n)).collect();
        if members.is_empty() {
            continue;
        }
        tracing::info!(group = %g.name, processor = g.processor.name(), sinks = %g.sinks.join(" "), "Sink group started.");
        runners.push(SinkRunner::new(&g.name, members, g.processor));
    }
    for slot in slots.into_iter().flatten() {
        let name = slot.name.clone();
        runners.push(SinkRunner::new(&name, vec![slot], SinkProcessor::Default));
    }
    runners
}

async fn run_source(
    s: SourceNode,
    ctx: SourceContext,
) -> (String, Result<(), crate::source::SourceError>) {
    ctx.counters.lifetime.started();
    let result = s.source.run(ctx.clone()).await;
    ctx.counters.lifetime.stopped();
    let c = &ctx.counters;
    tracing::info!(
        source = %s.name,
        received = c.event_received.get(),
        accepted = c.event_accepted.get(),
        filtered = c.event_filtered.get(),
        dead_lettered = c.event_dead_lettered.get(),
        write_failures = c.channel_write_fail.get(),
        "Source totals."
    );
    (s.name, result)
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

fn report_channel(c: &ChannelNode, options: &RunOptions, outcome: &mut RunOutcome) {
    let pending = c.channel.pending();
    let left = c.channel.lost_on_stop().min(pending);
    let kept = pending - left;
    if kept > 0 {
        tracing::info!(channel = %c.name, events = kept, "Channel closed; its undelivered events are kept on disk for the next start.");
    }
    if left > 0 {
        tracing::error!(channel = %c.name, events = left, timeout_secs = options.shutdown_timeout.as_secs_f64(), "Events left in a non-durable channel at shutdown are lost: its sinks did not drain it in time.");
        outcome.lost.push((c.name.clone(), left));
    } else if kept == 0 {
        let counters = c.channel.counters();
        tracing::info!(
            channel = %c.name,
            put = counters.put_success.get(),
            taken = counters.take_success.get(),
            peak = counters.peak_held.get(),
            capacity = counters.capacity.get(),
            "Channel drained."
        );
    }
}

fn report_source_end(
    joined: Result<(String, Result<(), crate::source::SourceError>), tokio::task::JoinError>,
    outcome: &mut RunOutcome,
) {
    match joined {
        Ok((name, Ok(()))) => tracing::info!(source = %name, "Source stopped."),
        Ok((name, Err(error))) => {
            tracing::error!(source = %name, %error, "Source failed.");
            outcome.failed.push(name);
        }
        Err(error) => tracing::error!(%error, "A source task panicked."),
    }
}
