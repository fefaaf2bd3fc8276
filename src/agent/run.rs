//! Running the graph: start channels, sinks, sources; apply reloads; stop sources, drain,
//! report.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::deadline::Deadline;
use super::options::RunOptions;
use super::pipeline::{Pipeline, RunnerEnd, SourceEnd};
use super::reload::{Candidate, Reloader};
use super::topology::{ChannelNode, Topology};
use crate::config::AgentSpec;
use crate::monitor::Registry;

/// What a stopped agent left behind.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// `(channel, events)` still held in non-durable channels when the agent stopped.
    pub lost: Vec<(String, usize)>,
    /// Components that could not start (e.g. a port in use).
    pub failed: Vec<String>,
}

/// What a hot-reloading agent needs besides its topology.
pub struct ReloadInputs {
    /// Candidate configs, from the config watcher.
    pub requests: mpsc::Receiver<Candidate>,
    /// The spec the topology was built from.
    pub spec: AgentSpec,
    /// Monitoring, to show the components that run after a reload.
    pub registry: Option<Registry>,
}

/// Starts the topology and runs it until `stop` is cancelled, then shuts it down in order.
pub async fn run(topology: Topology, options: RunOptions, stop: CancellationToken) -> RunOutcome {
    run_with(topology, options, stop, None).await
}

/// [`run`], applying each config that arrives on `reload` while it runs.
pub async fn run_with(
    topology: Topology,
    options: RunOptions,
    stop: CancellationToken,
    reload: Option<ReloadInputs>,
) -> RunOutcome {
    let mut outcome = RunOutcome::default();
    let Topology {
        agent,
        sources,
        channels,
        sinks,
        groups,
    } = topology;
    tracing::info!(agent = %agent, "Starting agent.");
    let (ends_tx, mut ends) = mpsc::unbounded_channel();
    let mut pipeline = Pipeline::new(&agent, ends_tx);
    for c in channels {
        let name = c.name.clone();
        if pipeline.start_channel(c).await.is_err() {
            outcome.failed.push(name);
        }
    }
    if !outcome.failed.is_empty() {
        // A channel that cannot open (locked or foreign directories, unreadable disk) would
        // make its sources refuse everything: stop here with the reason logged above.
        tracing::error!(channels = ?outcome.failed, "Agent not started: a channel failed to start.");
        for c in &pipeline.channels {
            c.channel.stop().await;
        }
        return outcome;
    }
    pipeline.start_runners(sinks, groups);
    for s in sources {
        pipeline.start_source(s).await;
    }

    let (mut requests, mut reloader) = match reload {
        Some(r) => (
            Some(r.requests),
            Some(Reloader {
                spec: r.spec,
                registry: r.registry,
                stop: stop.clone(),
            }),
        ),
        None => (None, None),
    };
    // Sources that fail (a port in use) are reported at once; the rest keep running.
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(end) = ends.recv() => report_source_end(end, &mut outcome),
            Some(candidate) = next_candidate(&mut requests) => {
                if let Some(reloader) = reloader.as_mut() {
                    reloader.apply(&mut pipeline, candidate, &options).await;
                }
            }
        }
    }
    shutdown(pipeline, &mut ends, &options, &mut outcome).await;
    tracing::info!(agent = %agent, "Agent stopped.");
    outcome
}

async fn next_candidate(requests: &mut Option<mpsc::Receiver<Candidate>>) -> Option<Candidate> {
    match requests {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// Stops sources, lets the sinks drain the channels until the deadline, then closes the
/// channels, logging per component what was in flight and what was drained.
async fn shutdown(
    mut pipeline: Pipeline,
    ends: &mut mpsc::UnboundedReceiver<SourceEnd>,
    options: &RunOptions,
    outcome: &mut RunOutcome,
) {
    tracing::info!(agent = %pipeline.agent, "Stopping: sources first, then draining the channels.");
    let at_stop: Vec<(usize, u64)> = pipeline
        .channels
        .iter()
        .map(|c| (c.channel.pending(), c.channel.counters().take_success.get()))
        .collect();
    let sinks: Vec<(String, crate::metrics::SinkCounters, u64)> = pipeline
        .runners
        .values()
        .flat_map(|r| &r.sinks)
        .map(|k| {
            (
                k.name.clone(),
                k.counters.clone(),
                k.counters.drain_success.get(),
            )
        })
        .collect();
    let deadline = Deadline::at(tokio::time::Instant::now() + options.shutdown_timeout);
    let sources: Vec<String> = pipeline.sources.keys().cloned().collect();
    pipeline.stop_sources(&sources, &deadline).await;
    while let Ok(end) = ends.try_recv() {
        report_source_end(end, outcome);
    }
    let runners: Vec<(String, RunnerEnd)> = pipeline
        .runners
        .keys()
        .map(|k| (k.clone(), RunnerEnd::Drain))
        .collect();
    pipeline.stop_runners(&runners, &deadline).await;
    for (name, counters, before) in sinks {
        tracing::info!(sink = %name, drained_during_shutdown = counters.drain_success.get() - before, delivered_total = counters.drain_success.get(), "Shutdown report: sink.");
    }
    for (c, (pending, taken)) in pipeline.channels.iter().zip(at_stop) {
        let counters = c.channel.counters();
        tracing::info!(
            channel = %c.name,
            in_flight_at_stop = pending,
            drained = counters.take_success.get().saturating_sub(taken),
            left = c.channel.pending(),
            "Shutdown report: channel."
        );
        if let Some(lost) = report_channel_end(c, "agent stopping", options) {
            outcome.lost.push((c.name.clone(), lost));
        }
        c.channel.stop().await;
        counters.lifetime.stopped();
    }
}

/// Logs what a channel that is closing leaves behind; returns the events lost (a
/// non-durable channel its sinks did not empty in time).
pub(super) fn report_channel_end(
    c: &ChannelNode,
    why: &str,
    options: &RunOptions,
) -> Option<usize> {
    let pending = c.channel.pending();
    let left = c.channel.lost_on_stop().min(pending);
    let kept = pending - left;
    if kept > 0 {
        tracing::info!(channel = %c.name, events = kept, %why, "Channel closed; its undelivered events stay in its directories, replayed by the next channel that opens them.");
    }
    if left > 0 {
        tracing::error!(channel = %c.name, events = left, %why, timeout_secs = options.shutdown_timeout.as_secs_f64(), "Events left in a non-durable channel that is closing are lost: its sinks did not drain it in time.");
        return Some(left);
    }
    if kept == 0 {
        let counters = c.channel.counters();
        tracing::info!(
            channel = %c.name,
            %why,
            put = counters.put_success.get(),
            taken = counters.take_success.get(),
            peak = counters.peak_held.get(),
            capacity = counters.capacity.get(),
            "Channel drained."
        );
    }
    None
}

fn report_source_end(end: SourceEnd, outcome: &mut RunOutcome) {
    match end.result {
        Ok(()) if end.asked => tracing::info!(source = %end.name, "Source stopped."),
        Ok(()) => tracing::info!(source = %end.name, "Source finished."),
        Err(error) => {
            tracing::error!(source = %end.name, %error, "Source failed.");
            outcome.failed.push(end.name);
        }
    }
}
