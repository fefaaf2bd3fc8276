//! One sink inside a runner: take a batch from its channel, run the sink-side interceptor
//! chain, dead-letter bad events, deliver, commit.
//!
//! An event a sink-side chain removes on purpose is counted as filtered and committed with the
//! rest of the take; every other event stays in the take transaction until it is delivered or
//! dead-lettered: a failed delivery, or a bad event with no `errorChannel` to take it, rolls the
//! whole take back. Events the chain emits from its periodic flush (aggregate summaries) wait
//! in `pending` until the sink delivers them.
//!
//! On a durable channel a commit waits for an fsync. The slot does not wait for it in line: up
//! to [`COMMITS_IN_FLIGHT`] commits run while the next batches are taken and delivered (the
//! channel's group commit then makes them share fsyncs); the oldest is settled (its result
//! counted, a failure logged) before another starts, and all are settled when the channel is
//! empty and on `stop`. A failed commit leaves its batch in the channel, delivered again later
//! (at least once, as with an inline commit). The price: a crash can deliver up to
//! `COMMITS_IN_FLIGHT + 1` batches again instead of one.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::processor::Outcome;
use super::Sink;
use crate::channel::{ChannelError, ChannelRef, Take};
use crate::event::Event;
use crate::interceptor::{dead_letter, BadEvent, Chain};
use crate::metrics::SinkCounters;
use crate::rate_limit::RateLimit;

/// A sink with its channel, chain and dead-letter channel.
pub struct Slot {
    /// The sink's name (`k1`).
    pub name: String,
    sink: Box<dyn Sink>,
    channel: ChannelRef,
    counters: SinkCounters,
    chain: Chain,
    error_channel: Option<ChannelRef>,
    pending: Vec<Event>,
    next_flush: Option<Instant>,
    max_events_per_second: u64,
    started: Instant,
    delivered: u64,
    warnings: RateLimit,
    /// Whether the last attempt asked the runner to back off before the next one (a failed
    /// delivery usually does; an http policy may ask for it after a commit, or not after a
    /// rollback).
    backoff: bool,
    /// The durable channel's commits of delivered batches, still running, oldest first.
    committing: VecDeque<Committing>,
}

/// Commits a slot keeps running on a durable channel. With 4, put+take at batch 1,000 in the
/// file channel benchmark went from 145 to 199 MB/s (medians; see BENCHMARKS.md).
pub const COMMITS_IN_FLIGHT: usize = 4;

/// A commit running in the background, with what it will count once it succeeds.
struct Committing {
    task: JoinHandle<Result<(), ChannelError>>,
    events: u64,
    delivered: u64,
}

impl Slot {
    /// A slot for `sink` draining `channel`.
    pub fn new(
        name: &str,
        sink: Box<dyn Sink>,
        channel: ChannelRef,
        counters: SinkCounters,
        chain: Chain,
        error_channel: Option<ChannelRef>,
        max_events_per_second: u64,
    ) -> Self {
        let next_flush = chain.flush_interval().map(|d| Instant::now() + d);
        Slot {
            name: name.to_string(),
            sink,
            channel,
            counters,
            chain,
            error_channel,
            pending: Vec::new(),
            next_flush,
            max_events_per_second,
            started: Instant::now(),
            delivered: 0,
            warnings: RateLimit::new(Duration::from_secs(5)),
            backoff: false,
            committing: VecDeque::new(),
        }
    }

    /// The channel this sink drains.
    pub fn channel(&self) -> &ChannelRef {
        &self.channel
    }

    /// The sink's counters.
    pub fn counters(&self) -> &SinkCounters {
        &self.counters
    }

    /// Whether nothing is left to deliver: channel empty, no pending flush output, no commit
    /// in flight.
    pub fn is_drained(&self) -> bool {
        self.pending.is_empty() && self.committing.is_empty() && self.channel.pending() == 0
    }

    /// Events per take: the sink's batch, capped by the channel's transactionCapacity (a
    /// sink Flume does not check, such as the logger, may ask for more).
    fn batch_size(&self) -> usize {
        self.sink
            .batch_size()
            .min(self.channel.transaction_capacity())
            .max(1)
    }

    /// Whether the last attempt asked for a backoff before the next one.
    pub fn wants_backoff(&self) -> bool {
        self.backoff
    }

    /// One attempt: pending flush output first, else one batch from the channel.
    ///
    /// # Cancel safety
    /// Cancelling rolls the take back (the guard is dropped).
    pub async fn attempt(&mut self) -> Outcome {
        // Failures back off unless the sink says otherwise (set in `attempt_inner`).
        self.backoff = true;
        let outcome = self.attempt_inner().await;
        if outcome == Outcome::Empty {
            self.backoff = false;
        }
        outcome
    }

    async fn attempt_inner(&mut self) -> Outcome {
        if !self.pending.is_empty() {
            return self.deliver_pending().await;
        }
        let take = match self.channel.take(self.batch_size()).await {
            Ok(take) => take,
            Err(error) => {
                self.counters.channel_read_fail.inc();
                self.warn(&format!("Taking from channel failed: {error}"));
                return Outcome::Failed;
            }
        };
        if take.is_empty() {
            self.counters.batch_empty.inc();
            if !self.settle_commits(0).await {
                return Outcome::Failed;
            }
            return Outcome::Empty;
        }
        let n = take.len() as u64;
        if take.len() < self.batch_size() {
            self.counters.batch_underflow.inc();
        } else {
            self.counters.batch_complete.inc();
        }
        self.counters.drain_attempt.add(n);
        let intercepted;
        let events: &[Event] = if self.chain.is_empty() {
            take.events()
        } else {
            let out = self.chain.apply(take.events().to_vec()).await;
            if !out.bad.is_empty() && !self.dead_letter(out.bad).await {
                return Outcome::Failed;
            }
            self.counters.event_filtered.add(out.filtered);
            intercepted = out.events;
            &intercepted
        };
        let mut delivered = events.len() as u64;
        self.backoff = false;
        if !events.is_empty() {
            match self.sink.deliver_accounted(events).await {
                Ok(accounted) => {
                    delivered = accounted.drained as u64;
                    self.backoff = accounted.backoff;
                }
                Err(error) => {
                    self.backoff = error.backoff();
                    // Flume counts only failures to reach the receiver as write failures.
                    if !matches!(error, super::SinkError::Rejected { .. }) {
                        self.counters.event_write_fail.add(n);
                    }
                    self.warn(&format!(
                        "Delivery failed; the batch was rolled back and will be retried: {error}"
                    ));
                    return Outcome::Failed;
                }
            }
        }
        self.commit(take, n, delivered).await
    }

    /// Commits a delivered take: in line on a memory channel; on a durable one in the
    /// background, once fewer than [`COMMITS_IN_FLIGHT`] are running.
    async fn commit(&mut self, take: Take, events: u64, delivered: u64) -> Outcome {
        if !self.channel.is_durable() {
            let result = take.commit().await;
            return self.committed(result, events, delivered);
        }
        let earlier = self.settle_commits(COMMITS_IN_FLIGHT - 1).await;
        self.committing.push_back(Committing {
            task: tokio::spawn(take.commit()),
            events,
            delivered,
        });
        if earlier {
            Outcome::Delivered
        } else {
            Outcome::Failed
        }
    }

    /// Waits for background commits, oldest first, until at most `keep` run, counting each;
    /// false when one failed.
    async fn settle_commits(&mut self, keep: usize) -> bool {
        let mut ok = true;
        while self.committing.len() > keep {
            let Some(c) = self.committing.pop_front() else {
                break;
            };
            let result = match c.task.await {
                Ok(result) => result,
                Err(error) => Err(ChannelError::Unavailable {
                    channel: self.channel.name().to_string(),
                    reason: format!("the commit task ended: {error}"),
                    events: Vec::new(),
                }),
            };
            ok &= self.committed(result, c.events, c.delivered) == Outcome::Delivered;
        }
        ok
    }

    fn committed(
        &mut self,
        result: Result<(), ChannelError>,
        events: u64,
        delivered: u64,
    ) -> Outcome {
        match result {
            Ok(()) => {
                self.counters.drain_success.add(delivered);
                self.delivered += delivered;
                Outcome::Delivered
            }
            Err(error) => {
                tracing::error!(sink = %self.name, %error, events, "Commit of a delivered batch failed; the batch will be delivered again.");
                self.backoff = true;
                Outcome::Failed
            }
        }
    }

    /// How long to wait before the next attempt to hold `maxEventsPerSecond`.
    pub fn throttle_delay(&self) -> Option<Duration> {
        if self.max_events_per_second == 0 {
            return None;
        }
        let due =
            Duration::from_secs_f64(self.delivered as f64 / self.max_events_per_second as f64);
        due.checked_sub(self.started.elapsed())
    }

    /// Runs the chain's periodic flush when due (or unconditionally when `last`).
    pub async fn flush_chain(&mut self, last: bool) {
        let due = self.next_flush.is_some_and(|t| Instant::now() >= t);
        if !(last || due) || self.chain.is_empty() {
            return;
        }
        if let Some(every) = self.chain.flush_interval() {
            self.next_flush = Some(Instant::now() + every);
        }
        let out = self.chain.flush(last).await;
        self.counters.event_filtered.add(out.filtered);
        if !out.bad.is_empty() {
            let n = out.bad.len();
            if !self.dead_letter(out.bad).await {
                tracing::error!(sink = %self.name, events = n, "Bad events emitted by a periodic flush could not be dead-lettered and are lost.");
            }
        }
        self.pending.extend(out.events);
    }

    /// Periodic sink work (rolling files).
    pub async fn maintain(&mut self) {
        if let Err(error) = self.sink.maintain().await {
            tracing::warn!(sink = %self.name, %error, "Periodic sink work failed.");
        }
    }

    /// Final flush, last delivery attempt of pending output, and closing the sink.
    pub async fn stop(&mut self) {
        self.settle_commits(0).await;
        self.flush_chain(true).await;
        if !self.pending.is_empty() && self.deliver_pending().await == Outcome::Failed {
            tracing::error!(sink = %self.name, events = self.pending.len(), "Events emitted by the sink's interceptors could not be delivered before stopping and are lost.");
        }
        if let Err(error) = self.sink.stop().await {
            tracing::error!(sink = %self.name, %error, "Closing the sink failed.");
        }
    }

    async fn deliver_pending(&mut self) -> Outcome {
        let n = self.pending.len() as u64;
        match self.sink.deliver_accounted(&self.pending).await {
            Ok(accounted) => {
                self.pending.clear();
                self.counters.drain_success.add(accounted.drained as u64);
                self.delivered += n;
                self.backoff = accounted.backoff;
                Outcome::Delivered
            }
            Err(error) => {
                self.counters.event_write_fail.add(n);
                self.warn(&format!("Delivery of interceptor output failed: {error}"));
                Outcome::Failed
            }
        }
    }

    /// Puts bad events into the error channel; false when they cannot go anywhere (the caller
    /// rolls back, so nothing is lost, and the stuck batch is logged).
    async fn dead_letter(&mut self, bad: Vec<BadEvent>) -> bool {
        let n = bad.len() as u64;
        let reason = bad[0].reason.clone();
        let Some(channel) = &self.error_channel else {
            self.warn(&format!("{n} event(s) cannot be processed ({reason}) and there is no errorChannel; the batch is rolled back and retried. Configure `errorChannel` to keep data flowing."));
            return false;
        };
        let letters: Vec<Event> = bad
            .into_iter()
            .map(|b| dead_letter(b, &self.name))
            .collect();
        let cap = channel.transaction_capacity().max(1);
        for chunk in letters.chunks(cap) {
            if let Err(error) = channel.put(chunk.to_vec()).await {
                self.warn(&format!(
                    "The dead-letter channel refused bad events: {error}"
                ));
                return false;
            }
        }
        self.counters.event_dead_lettered.add(n);
        true
    }

    fn warn(&self, message: &str) {
        if let Some(suppressed) = self.warnings.check() {
            tracing::warn!(sink = %self.name, suppressed, "{message}");
        }
    }
}
