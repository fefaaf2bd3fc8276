//! One sink inside a runner: take a batch from its channel, run the sink-side interceptor
//! chain, dead-letter bad events, deliver, commit.
//!
//! An event a sink-side chain removes on purpose is counted as filtered and committed with the
//! rest of the take; every other event stays in the take transaction until it is delivered or
//! dead-lettered: a failed delivery, or a bad event with no `errorChannel` to take it, rolls the
//! whole take back. Events the chain emits from its periodic flush (aggregate summaries) wait
//! in `pending` until the sink delivers them.
//!
//! # Takes held open
//! A take leaves the channel only when its commit succeeds, and its commit starts only when
//! the batch is durable downstream. Two things keep takes open past `submit`:
//! - On a durable channel a commit waits for an fsync. The slot does not wait for it in line:
//!   up to [`COMMITS_IN_FLIGHT`] commits run while the next batch is taken and delivered (the
//!   channel's group commit then makes them share fsyncs).
//! - A sink that acknowledges later ([`Delivery::Later`]) has its take held until the ack
//!   completes, then committed (`Ok`) or rolled back (`Err`); up to
//!   [`Sink::acks_in_flight`] takes at a time.
//!
//! Each such take runs on its own task. Before taking another batch the slot settles the
//! oldest (counts its result, logs a failure) until fewer than its limit are open; a failed one
//! makes the attempt fail without taking, so the runner backs off. All are settled when the
//! channel is empty and on `stop`, and abandoned (rolled back) on abort. A failed commit or
//! ack leaves its batch in the channel, delivered again later (at least once). The price: a
//! crash can deliver every open take again: up to `COMMITS_IN_FLIGHT + 1` batches for a sink
//! that delivers in line on a durable channel, `acks_in_flight + COMMITS_IN_FLIGHT` for one that
//! acknowledges later, instead of one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::task::AbortOnDropHandle;

use super::processor::Outcome;
use super::{Delivered, Delivery, Rejected, Sink, SinkError};
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
    /// Takes held open after `submit` (awaiting an ack or a durable commit), oldest first.
    open: VecDeque<OpenTake>,
    /// How many of them still await their ack.
    acks_pending: Arc<AtomicUsize>,
}

/// Commits a slot keeps running on a durable channel. With 4, put+take at batch 1,000 in the
/// file channel benchmark went from 145 to 199 MB/s (medians; see BENCHMARKS.md).
pub const COMMITS_IN_FLIGHT: usize = 4;

/// A take held open on its own task: awaiting its ack and then its commit, or only its
/// commit. It ends with the batch's accounting, or why the batch stays in the channel.
struct OpenTake {
    /// Dropping the handle (the slot dropped past the deadline) cancels the task, which rolls
    /// the take back instead of leaving it held by a task nobody settles.
    task: AbortOnDropHandle<Result<Delivered, Unsettled>>,
    events: u64,
}

/// One take awaiting its ack, counted in the slot's `acks_pending` until dropped (the ack
/// completed, or the task was cancelled).
struct AckPending(Arc<AtomicUsize>);

impl AckPending {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        AckPending(count.clone())
    }
}

impl Drop for AckPending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why an open take was not committed; its events are back in the channel either way.
enum Unsettled {
    /// The sink's acknowledgement failed; the take was rolled back.
    Ack(SinkError),
    /// The commit failed.
    Commit(ChannelError),
}

impl Slot {
    /// A slot for `sink` draining `channel`.
    pub fn new(
        name: &str,
        mut sink: Box<dyn Sink>,
        channel: ChannelRef,
        counters: SinkCounters,
        chain: Chain,
        error_channel: Option<ChannelRef>,
        max_events_per_second: u64,
    ) -> Self {
        let next_flush = chain.flush_interval().map(|d| Instant::now() + d);
        sink.use_counters(&counters);
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
            open: VecDeque::new(),
            acks_pending: Arc::default(),
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

    /// Whether nothing is left to deliver: channel empty, no pending flush output, no take
    /// held open.
    pub fn is_drained(&self) -> bool {
        self.pending.is_empty() && self.open.is_empty() && self.channel.pending() == 0
    }

    /// Most takes open at once, the one being taken included: the sink's acks in flight, plus
    /// on a durable channel [`COMMITS_IN_FLIGHT`] commits running.
    fn open_limit(&self) -> usize {
        let acks = self.sink.acks_in_flight().max(1);
        if self.channel.is_durable() {
            acks + COMMITS_IN_FLIGHT
        } else {
            acks
        }
    }

    /// Settles the oldest open takes until another may be taken: fewer than
    /// [`Slot::open_limit`] open, and fewer than [`Sink::acks_in_flight`] awaiting an ack (the
    /// sink's concurrency, whatever the commits). False when one failed.
    async fn make_room(&mut self) -> bool {
        if !self.settle(self.open_limit() - 1).await {
            return false;
        }
        let acks = self.sink.acks_in_flight().max(1);
        while self.acks_pending.load(Ordering::Acquire) >= acks && !self.open.is_empty() {
            if !self.settle(self.open.len() - 1).await {
                return false;
            }
        }
        true
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
        if !self.make_room().await {
            return Outcome::Failed;
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
            if !self.settle(0).await {
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
        let rejected = self.sink.screen(events);
        let screened;
        let events: &[Event] = if rejected.is_empty() {
            events
        } else {
            let (bad, good) = split_rejected(events, rejected);
            if !self.dead_letter(bad).await {
                return Outcome::Failed;
            }
            screened = good;
            &screened
        };
        self.backoff = false;
        if events.is_empty() {
            return self.commit(take, n, Delivered::all(0)).await;
        }
        match self.sink.submit(events).await {
            Ok(Delivery::Done(accounted)) => {
                self.backoff = accounted.backoff;
                self.commit(take, n, accounted).await
            }
            Ok(Delivery::Later(ack)) => {
                let pending = AckPending::new(&self.acks_pending);
                self.hold(n, async move {
                    let acked = ack.await;
                    drop(pending);
                    match acked {
                        Ok(accounted) => take
                            .commit()
                            .await
                            .map(|()| accounted)
                            .map_err(Unsettled::Commit),
                        // Dropping the take rolls it back.
                        Err(error) => Err(Unsettled::Ack(error)),
                    }
                });
                Outcome::Delivered
            }
            Err(error) => {
                self.delivery_failed(&error, n);
                Outcome::Failed
            }
        }
    }

    /// Counts and logs a failed delivery (the take is rolled back by its caller).
    fn delivery_failed(&mut self, error: &SinkError, events: u64) {
        self.backoff = error.backoff();
        // Flume counts only failures to reach the receiver as write failures.
        if !matches!(error, SinkError::Rejected { .. }) {
            self.counters.event_write_fail.add(events);
        }
        self.warn(&format!(
            "Delivery failed; the batch was rolled back and will be retried: {error}"
        ));
    }

    /// Commits a take delivered in line: at once on a memory channel; on a durable one on its
    /// own task, held open until settled.
    async fn commit(&mut self, take: Take, events: u64, accounted: Delivered) -> Outcome {
        if !self.channel.is_durable() {
            let result = take.commit().await.map(|()| accounted);
            return self.settled(result.map_err(Unsettled::Commit), events);
        }
        self.hold(events, async move {
            take.commit()
                .await
                .map(|()| accounted)
                .map_err(Unsettled::Commit)
        });
        Outcome::Delivered
    }

    /// Holds a take open on its own task until `settle` completes.
    fn hold(
        &mut self,
        events: u64,
        settle: impl std::future::Future<Output = Result<Delivered, Unsettled>> + Send + 'static,
    ) {
        self.open.push_back(OpenTake {
            task: AbortOnDropHandle::new(tokio::spawn(settle)),
            events,
        });
    }

    /// Waits for open takes, oldest first, until at most `keep` are open, counting each;
    /// false when one failed.
    async fn settle(&mut self, keep: usize) -> bool {
        let mut ok = true;
        while self.open.len() > keep {
            let Some(oldest) = self.open.front_mut() else {
                break;
            };
            // Awaited in place and removed once finished: a cancelled attempt (the runner's
            // abort) leaves the take held, not dropped half-settled.
            let joined = (&mut oldest.task).await;
            let Some(open) = self.open.pop_front() else {
                break;
            };
            let result = match joined {
                Ok(result) => result,
                Err(error) => Err(Unsettled::Commit(ChannelError::Unavailable {
                    channel: self.channel.name().to_string(),
                    reason: format!("the task holding the take ended: {error}"),
                    events: Vec::new(),
                })),
            };
            ok &= self.settled(result, open.events) == Outcome::Delivered;
        }
        ok
    }

    /// Rolls back every open take at once (an abort past the deadline): their batches stay in
    /// the channel and are delivered again.
    async fn abandon_open(&mut self) {
        for open in &self.open {
            open.task.abort();
        }
        // Cancelled tasks drop their takes, which roll back; wait until they have.
        for open in self.open.drain(..) {
            let _ = open.task.await;
        }
    }

    fn settled(&mut self, result: Result<Delivered, Unsettled>, events: u64) -> Outcome {
        match result {
            Ok(accounted) => {
                let drained = accounted.drained as u64;
                self.counters.drain_success.add(drained);
                self.delivered += drained;
                self.backoff |= accounted.backoff;
                Outcome::Delivered
            }
            Err(Unsettled::Ack(error)) => {
                self.delivery_failed(&error, events);
                Outcome::Failed
            }
            Err(Unsettled::Commit(error)) => {
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

    /// Final flush, last delivery attempt of pending output, and closing the sink. Waits for
    /// the takes held open; `abandon` (an abort past the deadline) rolls them back instead.
    pub async fn stop(&mut self, abandon: bool) {
        if abandon {
            self.abandon_open().await;
        }
        self.settle(0).await;
        self.flush_chain(true).await;
        if !self.pending.is_empty() && self.deliver_pending().await == Outcome::Failed {
            tracing::error!(sink = %self.name, events = self.pending.len(), "Events emitted by the sink's interceptors could not be delivered before stopping and are lost.");
        }
        if let Err(error) = self.sink.stop().await {
            tracing::error!(sink = %self.name, %error, "Closing the sink failed.");
        }
    }

    async fn deliver_pending(&mut self) -> Outcome {
        let rejected = self.sink.screen(&self.pending);
        if !rejected.is_empty() {
            let (bad, good) = split_rejected(&self.pending, rejected);
            if !self.dead_letter(bad).await {
                return Outcome::Failed;
            }
            self.pending = good;
            if self.pending.is_empty() {
                return Outcome::Delivered;
            }
        }
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

/// Splits `events` into the rejected ones (as bad events, stage `sink`) and the rest, in order.
fn split_rejected(events: &[Event], rejected: Vec<Rejected>) -> (Vec<BadEvent>, Vec<Event>) {
    let mut reasons: Vec<Option<String>> = vec![None; events.len()];
    for r in rejected {
        if let Some(slot) = reasons.get_mut(r.index) {
            *slot = Some(r.reason);
        }
    }
    let mut bad = Vec::new();
    let mut good = Vec::with_capacity(events.len());
    for (event, reason) in events.iter().zip(reasons) {
        match reason {
            Some(reason) => bad.push(BadEvent {
                event: event.clone(),
                reason,
                stage: "sink".to_string(),
            }),
            None => good.push(event.clone()),
        }
    }
    (bad, good)
}
