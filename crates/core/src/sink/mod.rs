//! Sinks: deliver batches taken from a channel.
//!
//! The [`runner::SinkRunner`] owns the loop and the transaction (as Flume's `SinkRunner`
//! owns the thread): it takes a batch, hands it to [`Sink::deliver`], commits on success and
//! rolls back on failure, then backs off. A sink only has to write.
//!
//! A sink whose data is durable only later (a remote broker's ack, a flushed upload) returns
//! [`Delivery::Later`] from [`Sink::submit`] with an [`Ack`]; the [`slot::Slot`] keeps the take
//! open until the ack completes, up to [`Sink::acks_in_flight`] takes at a time, and commits
//! or rolls back then. [`util`] holds what such sinks share: batching by count and bytes,
//! retries with jittered backoff, and partitioning a batch by a key.

pub mod processor;
pub mod runner;
pub mod slot;
pub mod util;

#[cfg(test)]
mod ack_tests;
#[cfg(test)]
mod screen_tests;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;

use crate::event::Event;

/// Why a delivery failed. The runner rolls the batch back and retries after a backoff.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// An I/O failure (file, socket).
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path or address.
        context: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A request to a remote endpoint failed before an answer arrived (connect refused,
    /// connect or request timeout, connection reset). Recoverable: retry after a backoff.
    #[error("{context}: {detail}")]
    Transport {
        /// What was being done, with the address.
        context: String,
        /// The innermost cause, in words (the wrapped error's own message is often generic).
        detail: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The receiver answered, and the sink's policy for that answer says roll the batch back
    /// (the `http` sink's `rollback.<status>`). Recoverable: the batch is retried, and the
    /// sink processor may fail over to another sink.
    #[error("{endpoint} answered HTTP {status}, which is configured to roll back ({policy_key})")]
    Rejected {
        /// Where the batch went.
        endpoint: String,
        /// The status code of the answer.
        status: u16,
        /// The key that decided the rollback (`rollback.503`, `rollback.5XX`, `defaultRollback`).
        policy_key: String,
        /// Whether the runner should back off before the next attempt; `false` asks for an
        /// immediate retry (Flume's `backoff.<status> = false` with a rollback).
        backoff: bool,
    },
    /// The receiver answered that it did not take the batch (an avro source's `FAILED`: its
    /// channel is full). Recoverable: rolled back and retried after a backoff.
    #[error("{endpoint} refused the batch: {reason}")]
    Refused {
        /// Where the batch went.
        endpoint: String,
        /// The receiver's answer, in words.
        reason: String,
    },
}

impl SinkError {
    /// A short stable identifier for this error.
    pub fn code(&self) -> &'static str {
        match self {
            SinkError::Io { .. } => "io",
            SinkError::Transport { .. } => "transport",
            SinkError::Rejected { .. } => "rejected",
            SinkError::Refused { .. } => "refused",
        }
    }

    /// Whether the runner should back off before retrying (true except for a rejection whose
    /// policy says retry at once).
    pub fn backoff(&self) -> bool {
        match self {
            SinkError::Rejected { backoff, .. } => *backoff,
            _ => true,
        }
    }
}

/// How a delivered batch is to be accounted, beyond "commit the take".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// Events to count as drained successfully (`EventDrainSuccessCount`); normally the whole
    /// batch. The `http` sink counts only answers whose `incrementMetrics` policy says so.
    pub drained: usize,
    /// Whether the runner should back off before the next take, as Flume's runner does when
    /// `process()` returns `BACKOFF` after a commit (the `http` sink's `backoff.<status>`).
    pub backoff: bool,
}

impl Delivered {
    /// The ordinary case: all `n` events drained, no backoff.
    pub fn all(n: usize) -> Self {
        Delivered {
            drained: n,
            backoff: false,
        }
    }
}

/// What [`Sink::submit`] made of a batch.
pub enum Delivery {
    /// Delivered and durable now: the slot commits the take.
    Done(Delivered),
    /// Handed over; durable only when the [`Ack`] completes (an HDFS hflush, an S3 upload, a
    /// Kafka broker ack, an answer from the next hop). The slot keeps the take open until
    /// then: it commits on `Ok` and rolls back on `Err`, so nothing leaves the channel early.
    Later(Ack),
}

/// The acknowledgement of a batch handed over with [`Delivery::Later`]: a future that
/// completes when the data is durable downstream, with the batch's accounting, or fails
/// (the take is rolled back and the batch delivered again).
///
/// It must complete or fail in bounded time (the sink's own timeouts): the slot holds the
/// take open meanwhile, and a graceful stop waits for it until the shutdown deadline. The
/// future runs on its own task, so it makes progress while the sink submits the next batch.
pub struct Ack(Pin<Box<dyn Future<Output = Result<Delivered, SinkError>> + Send + 'static>>);

impl Ack {
    /// An acknowledgement that completes with `future`.
    pub fn new(
        future: impl Future<Output = Result<Delivered, SinkError>> + Send + 'static,
    ) -> Self {
        Ack(Box::pin(future))
    }
}

impl Future for Ack {
    type Output = Result<Delivered, SinkError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ack")
    }
}

/// An event a sink cannot deliver, found by [`Sink::screen`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Its index in the screened slice.
    pub index: usize,
    /// Why, as a sentence.
    pub reason: String,
}

/// A configured sink.
#[async_trait]
pub trait Sink: Send + 'static {
    /// The Flume type name (`file_roll`).
    fn type_name(&self) -> &'static str;

    /// Most events taken per transaction (Flume's batch size for this sink).
    fn batch_size(&self) -> usize;

    /// A one-line summary of the resolved configuration, for the start-up log.
    fn describe(&self) -> String;

    /// Writes the batch. Returning `Ok` means delivered: the runner then commits the take.
    ///
    /// # Cancel safety
    /// May be cancelled at shutdown past the deadline; the batch is then rolled back.
    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError>;

    /// [`Sink::deliver`] with its accounting: how many events count as drained and whether to
    /// back off although the batch is committed. Runners should call this one; the default
    /// delivers and counts the whole batch.
    ///
    /// # Cancel safety
    /// As [`Sink::deliver`].
    async fn deliver_accounted(&mut self, events: &[Event]) -> Result<Delivered, SinkError> {
        self.deliver(events).await?;
        Ok(Delivered::all(events.len()))
    }

    /// Hands the batch over: [`Delivery::Done`] when it is durable on return, or
    /// [`Delivery::Later`] with an acknowledgement that completes when it is. The slot calls
    /// this one; the default delivers in line with [`Sink::deliver_accounted`].
    ///
    /// # Cancel safety
    /// As [`Sink::deliver`]. Once it has returned, the [`Ack`] owns the outcome.
    async fn submit(&mut self, events: &[Event]) -> Result<Delivery, SinkError> {
        self.deliver_accounted(events).await.map(Delivery::Done)
    }

    /// Most takes the slot keeps open while their acknowledgements are pending, the one being
    /// submitted included: the sink's concurrency. Only sinks whose [`Sink::submit`] returns
    /// [`Delivery::Later`] need more than 1 (each take is held until its ack completes).
    fn acks_in_flight(&self) -> usize {
        1
    }

    /// Events of `events` this sink can never deliver, whatever the retry, with why: an HDFS
    /// path that needs a timestamp the event lacks (Flume retries that batch forever). The slot
    /// dead-letters them (or rolls the take back when there is no `errorChannel`) and submits
    /// the rest. Called before each [`Sink::submit`] of a take; the default finds none.
    fn screen(&mut self, _events: &[Event]) -> Vec<Rejected> {
        Vec::new()
    }

    /// Hands the sink its counters, once, before it runs: a sink with counters of its own
    /// (the Kafka sink's send timer) keeps the handle.
    fn use_counters(&mut self, _counters: &crate::metrics::SinkCounters) {}

    /// Periodic work while idle (rolling files on time); called at least once a second.
    async fn maintain(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Flushes and closes; called once when the runner stops.
    async fn stop(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
