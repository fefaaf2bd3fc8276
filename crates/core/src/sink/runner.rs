//! The sink runner: one task drives a sink group (or a lone sink) — Flume's `SinkRunner` with
//! its `SinkProcessor`.
//!
//! Each round the processor orders the sinks to try; the first that does not fail ends the
//! round. While the channel is empty the runner awaits the channel's readiness instead of
//! sleeping. When every sink failed it backs off `min(rounds × 1 s, 5 s)`, plus up to a quarter
//! at random. Three tokens end it:
//! `drain` makes the runner stop once its channels hold nothing more (shutdown, or a channel a
//! reload removes); `stop` ends it after the round in hand (a reload replaces its sinks while
//! the channel stays); `abort` stops it at once (past a deadline), rolling back what it holds.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::processor::{Outcome, SinkProcessor};
use super::slot::Slot;
use super::util::retry::Backoff;

/// Flume's backoff after failed rounds (1 s steps up to 5 s), plus up to a quarter at random so
/// that agents facing one recovered downstream do not all retry at the same instant.
const BACKOFF: Backoff =
    Backoff::linear(Duration::from_secs(1), Duration::from_secs(5)).with_jitter(0.25);
/// How long an idle runner waits for events before doing periodic work.
const IDLE_WAIT: Duration = Duration::from_millis(500);

/// Tokens that end a runner.
#[derive(Clone, Default)]
pub struct RunnerControl {
    /// Stop once the channels are empty (sources have stopped).
    pub drain: CancellationToken,
    /// Stop after the transaction in hand (committed or rolled back), leaving the channel.
    pub stop: CancellationToken,
    /// Stop now, rolling back what is held.
    pub abort: CancellationToken,
}

/// Drives the sinks of one group.
pub struct SinkRunner {
    name: String,
    slots: Vec<Slot>,
    processor: SinkProcessor,
}

impl SinkRunner {
    /// A runner named `name` (the group, or the lone sink) over `slots`.
    pub fn new(name: &str, slots: Vec<Slot>, processor: SinkProcessor) -> Self {
        SinkRunner {
            name: name.to_string(),
            slots,
            processor,
        }
    }

    /// Runs until drained or aborted.
    pub async fn run(mut self, control: RunnerControl) {
        for slot in &self.slots {
            slot.counters().lifetime.started();
        }
        let mut failed_rounds: u32 = 0;
        loop {
            if control.abort.is_cancelled() || control.stop.is_cancelled() {
                break;
            }
            for slot in &mut self.slots {
                slot.flush_chain(false).await;
            }
            let order = self.processor.order(Instant::now());
            let mut last = Outcome::Failed;
            let mut tried = None;
            for i in order {
                let outcome = tokio::select! {
                    o = self.slots[i].attempt() => o,
                    _ = control.abort.cancelled() => return self.stop(true).await,
                };
                self.processor.report(i, outcome, Instant::now());
                last = outcome;
                tried = Some(i);
                if outcome != Outcome::Failed {
                    break;
                }
            }
            match (last, tried) {
                (Outcome::Delivered, Some(i)) => {
                    if self.slots[i].wants_backoff() {
                        // Committed, but the sink asked to slow down (an http backoff policy).
                        failed_rounds = failed_rounds.saturating_add(1);
                        pause(&control, BACKOFF.delay(failed_rounds)).await;
                    } else {
                        failed_rounds = 0;
                    }
                    if let Some(delay) = self.slots[i].throttle_delay() {
                        pause(&control, delay).await;
                    }
                }
                (Outcome::Empty, Some(i)) => {
                    failed_rounds = 0;
                    if control.drain.is_cancelled() && self.slots.iter().all(Slot::is_drained) {
                        break;
                    }
                    let channel = self.slots[i].channel().clone();
                    tokio::select! {
                        _ = channel.wait_for_events(IDLE_WAIT) => {}
                        _ = control.abort.cancelled() => break,
                        _ = control.stop.cancelled() => break,
                        _ = control.drain.cancelled(), if !control.drain.is_cancelled() => {}
                    }
                    for slot in &mut self.slots {
                        slot.maintain().await;
                    }
                }
                (_, Some(i)) if !self.slots[i].wants_backoff() => {
                    // Rolled back, and the sink asked for an immediate retry.
                    tokio::task::yield_now().await;
                }
                _ => {
                    failed_rounds = failed_rounds.saturating_add(1);
                    if tried.is_none() {
                        tracing::debug!(runner = %self.name, "Every sink of the group is backing off.");
                    }
                    pause(&control, BACKOFF.delay(failed_rounds)).await;
                }
            }
        }
        let abandon = control.abort.is_cancelled();
        self.stop(abandon).await
    }

    /// Stops every slot; `abandon` rolls back the takes they hold open instead of waiting.
    async fn stop(&mut self, abandon: bool) {
        for slot in &mut self.slots {
            slot.stop(abandon).await;
            let c = slot.counters();
            c.lifetime.stopped();
            tracing::info!(
                sink = %slot.name,
                drained = c.drain_success.get(),
                filtered = c.event_filtered.get(),
                dead_lettered = c.event_dead_lettered.get(),
                write_failures = c.event_write_fail.get(),
                "Sink totals."
            );
        }
    }
}

/// Sleeps, waking early on abort or stop.
async fn pause(control: &RunnerControl, duration: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = control.abort.cancelled() => {}
        _ = control.stop.cancelled() => {}
    }
}
