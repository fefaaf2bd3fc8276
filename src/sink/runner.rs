//! The sink runner: the take → deliver → commit loop of one sink (Flume's `SinkRunner` with
//! the `default` sink processor).
//!
//! While the channel is empty the runner awaits the channel's readiness instead of sleeping.
//! After a failed delivery it rolls back and backs off `min(failures × 1 s, 5 s)` as Flume's
//! runner does. Shutdown has two steps: `drain` makes the runner stop once its channel holds
//! nothing more; `abort` stops it at once (past the agent's deadline), rolling back whatever it
//! holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Sink;
use crate::channel::ChannelRef;
use crate::metrics::{SinkCounter, SinkCounters};
use crate::rate_limit::RateLimit;

/// Flume's backoff step and cap after a failed delivery.
const BACKOFF_STEP: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long an idle runner waits for events before doing periodic work.
const IDLE_WAIT: Duration = Duration::from_millis(500);
/// Least time between two delivery-failure warnings of one sink.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// Tokens that end a runner.
#[derive(Clone, Default)]
pub struct RunnerControl {
    /// Stop once the channel is empty (sources have stopped).
    pub drain: CancellationToken,
    /// Stop now, rolling back what is held.
    pub abort: CancellationToken,
}

/// Drives one sink.
pub struct SinkRunner {
    name: String,
    sink: Box<dyn Sink>,
    channel: ChannelRef,
    counters: SinkCounters,
    /// Flumen extension `maxEventsPerSecond`: caps the delivery rate (0 = unlimited).
    max_events_per_second: u64,
}

impl SinkRunner {
    /// A runner for `sink` draining `channel`.
    pub fn new(
        name: &str,
        sink: Box<dyn Sink>,
        channel: ChannelRef,
        max_events_per_second: u64,
    ) -> Self {
        SinkRunner {
            name: name.to_string(),
            sink,
            channel,
            counters: Arc::new(SinkCounter::default()),
            max_events_per_second,
        }
    }

    /// The sink's counters.
    pub fn counters(&self) -> SinkCounters {
        self.counters.clone()
    }

    /// Runs until drained or aborted.
    pub async fn run(mut self, control: RunnerControl) {
        self.counters.lifetime.started();
        let batch_size = self.sink.batch_size();
        let mut failures: u32 = 0;
        let warnings = RateLimit::new(WARN_EVERY);
        let started = Instant::now();
        let mut delivered: u64 = 0;
        loop {
            if control.abort.is_cancelled() {
                break;
            }
            let take = match self.channel.take(batch_size).await {
                Ok(take) => take,
                Err(error) => {
                    self.counters.channel_read_fail.inc();
                    tracing::warn!(sink = %self.name, %error, "Taking from the channel failed.");
                    pause(&control, BACKOFF_STEP).await;
                    continue;
                }
            };
            if take.is_empty() {
                self.counters.batch_empty.inc();
                if control.drain.is_cancelled() && self.channel.pending() == 0 {
                    break;
                }
                tokio::select! {
                    _ = self.channel.wait_for_events(IDLE_WAIT) => {}
                    _ = control.abort.cancelled() => break,
                    _ = control.drain.cancelled(), if !control.drain.is_cancelled() => {}
                }
                if let Err(error) = self.sink.maintain().await {
                    tracing::warn!(sink = %self.name, %error, "Periodic sink work failed.");
                }
                continue;
            }
            let n = take.len() as u64;
            if take.len() < batch_size {
                self.counters.batch_underflow.inc();
            } else {
                self.counters.batch_complete.inc();
            }
            self.counters.drain_attempt.add(n);
            let result = tokio::select! {
                r = self.sink.deliver(take.events()) => r,
                _ = control.abort.cancelled() => break,
            };
            match result {
                Ok(()) => match take.commit().await {
                    Ok(()) => {
                        self.counters.drain_success.add(n);
                        failures = 0;
                        delivered += n;
                        throttle(self.max_events_per_second, &control, started, delivered).await;
                    }
                    Err(error) => {
                        tracing::error!(sink = %self.name, %error, events = n, "Commit of a delivered batch failed; the batch will be delivered again.");
                    }
                },
                Err(error) => {
                    drop(take);
                    self.counters.event_write_fail.add(n);
                    failures = failures.saturating_add(1);
                    if let Some(suppressed) = warnings.check() {
                        tracing::warn!(sink = %self.name, %error, events = n, suppressed, "Delivery failed; the batch was rolled back and will be retried.");
                    }
                    let backoff = (BACKOFF_STEP * failures).min(BACKOFF_MAX);
                    pause(&control, backoff).await;
                }
            }
        }
        if let Err(error) = self.sink.stop().await {
            tracing::error!(sink = %self.name, %error, "Closing the sink failed.");
        }
        self.counters.lifetime.stopped();
    }
}

/// Sleeps, waking early on abort.
async fn pause(control: &RunnerControl, duration: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = control.abort.cancelled() => {}
    }
}

/// Holds the delivery rate at `max_per_second` events (0 = unlimited).
async fn throttle(max_per_second: u64, control: &RunnerControl, started: Instant, delivered: u64) {
    if max_per_second == 0 {
        return;
    }
    let due = Duration::from_secs_f64(delivered as f64 / max_per_second as f64);
    let elapsed = started.elapsed();
    if due > elapsed {
        pause(control, due - elapsed).await;
    }
}
