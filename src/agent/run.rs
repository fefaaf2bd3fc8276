//! Running the graph: start channels, sinks, sources; stop sources, drain, report.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::topology::Topology;
use crate::metrics::SourceCounter;
use crate::sink::runner::{RunnerControl, SinkRunner};
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
    } = topology;
    tracing::info!(agent = %agent, "Starting agent.");

    for c in &channels {
        if let Err(error) = c.channel.start().await {
            tracing::error!(channel = %c.name, %error, "Channel failed to start.");
            outcome.failed.push(c.name.clone());
        }
        c.channel.counters().lifetime.started();
        tracing::info!(channel = %c.name, r#type = %c.type_name, config = %c.channel.describe(), "Channel started.");
    }

    let control = RunnerControl::default();
    let mut sink_tasks = JoinSet::new();
    for s in sinks {
        let Some(channel) = channels.iter().find(|c| c.name == s.channel) else {
            continue;
        };
        tracing::info!(sink = %s.name, r#type = %s.type_name, channel = %s.channel, config = %s.sink.describe(), "Sink started.");
        let runner = SinkRunner::new(
            &s.name,
            s.sink,
            channel.channel.clone(),
            s.max_events_per_second,
        );
        sink_tasks.spawn(runner.run(control.clone()));
    }

    let source_stop = CancellationToken::new();
    let mut source_tasks = JoinSet::new();
    for s in sources {
        let chans = s
            .channels
            .iter()
            .filter_map(|n| channels.iter().find(|c| &c.name == n))
            .map(|c| c.channel.clone())
            .collect();
        let ctx = SourceContext {
            name: s.name.clone(),
            processor: Arc::new(ChannelProcessor::new(chans)),
            shutdown: source_stop.clone(),
            counters: Arc::new(SourceCounter::default()),
        };
        tracing::info!(source = %s.name, r#type = %s.type_name, channels = %s.channels.join(" "), config = %s.source.describe(), "Source starting.");
        let name = s.name.clone();
        let source = s.source;
        source_tasks.spawn(async move {
            ctx.counters.lifetime.started();
            let result = source.run(ctx.clone()).await;
            ctx.counters.lifetime.stopped();
            (name, result)
        });
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
        let left = c.channel.pending();
        if left > 0 {
            tracing::error!(channel = %c.name, events = left, timeout_secs = options.shutdown_timeout.as_secs_f64(), "Events left in a non-durable channel at shutdown are lost: its sinks did not drain it in time.");
            outcome.lost.push((c.name.clone(), left));
        } else {
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
        c.channel.stop().await;
        c.channel.counters().lifetime.stopped();
    }
    tracing::info!(agent = %agent, "Agent stopped.");
    outcome
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
