//! Channels: bounded, transactional FIFOs between sources and sinks.
//!
//! A put is one atomic batch: all of it is queued or none. A take hands a batch to one sink as a
//! [`Take`] transaction; its events are invisible to other takers until [`Take::commit`] removes
//! them or a rollback returns them to the head of the queue in their order. Dropping an
//! uncommitted `Take` rolls it back, so a sink that fails, panics or is cancelled can never lose
//! what it took.
//!
//! # The contract every channel keeps
//! - **Put**: all of a batch or none of it. `Ok` means committed (durable, for a durable
//!   channel). An `Err` means nothing was put. A put *cancelled* before it returns is in doubt:
//!   it may have put nothing, or (a durable channel whose commit was already on its way to
//!   disk) all of it. The caller must not acknowledge it and may put the events again: delivery
//!   is at-least-once, never at-most-once.
//! - **Take**: invisible to other takers until commit; a rollback (or a drop) returns the
//!   events to the head in order. A commit that fails leaves them taken-and-returned: they
//!   come again.
//! - **Sizes** ([`Channel::len`], [`Channel::pending`], the counters) are snapshots that may
//!   be out of date by the time they are read, and may be estimates (a channel in two parts
//!   adds them without a lock): use them for monitoring and shutdown reports, never to decide
//!   whether an event was delivered.
//! - Hooks only a hot reload uses are in the [`Reconfigure`] extension, reached through
//!   [`Channel::reload_hooks`].

pub mod batch_queue;
pub mod memory;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::event::Event;
use crate::metrics::ChannelCounters;

/// Why a channel operation failed. [`ChannelError::code`] is stable (metric labels, tests).
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// No room for the whole batch within keep-alive; the batch is handed back for a retry.
    /// Recoverable: retry later (sources apply backpressure or answer 503 / FAILED).
    #[error(
        "channel `{channel}` is full: no room for {} events within keep-alive; sinks are likely not keeping up with sources, or the capacity is too small",
        events.len()
    )]
    Full {
        /// The channel.
        channel: String,
        /// The batch that was not put, returned unchanged.
        events: Vec<Event>,
    },
    /// A batch larger than the channel's transactionCapacity. Not recoverable by retrying the
    /// same batch: the caller must send smaller batches.
    #[error(
        "batch of {size} events exceeds transactionCapacity {capacity} of channel `{channel}`"
    )]
    BatchTooLarge {
        /// The channel.
        channel: String,
        /// Events in the batch.
        size: usize,
        /// The channel's transactionCapacity.
        capacity: usize,
    },
    /// A batch that could never fit (more events or body bytes than the whole channel holds).
    #[error("batch of {size} events / {bytes} bytes can never fit channel `{channel}` ({reason})")]
    NeverFits {
        /// The channel.
        channel: String,
        /// Events in the batch.
        size: usize,
        /// Body bytes in the batch.
        bytes: usize,
        /// Which limit.
        reason: &'static str,
    },
    /// The channel is closed and accepts nothing.
    #[error("channel `{channel}` is closed")]
    Closed {
        /// The channel.
        channel: String,
    },
    /// The channel cannot take the batch now for a reason other than room: low disk space,
    /// or a durable channel reopening after an I/O error. Recoverable, like `Full`: the batch
    /// is handed back for a retry.
    #[error("channel `{channel}` is unavailable: {reason}")]
    Unavailable {
        /// The channel.
        channel: String,
        /// Why.
        reason: String,
        /// The batch that was not put (empty for other operations), returned unchanged.
        events: Vec<Event>,
    },
}

impl ChannelError {
    /// A short stable identifier for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ChannelError::Full { .. } => "channel_full",
            ChannelError::BatchTooLarge { .. } => "batch_too_large",
            ChannelError::NeverFits { .. } => "never_fits",
            ChannelError::Closed { .. } => "closed",
            ChannelError::Unavailable { .. } => "unavailable",
        }
    }

    /// Takes the returned batch out of a `Full` error.
    pub fn into_events(self) -> Option<Vec<Event>> {
        match self {
            ChannelError::Full { events, .. } | ChannelError::Unavailable { events, .. } => {
                Some(events)
            }
            _ => None,
        }
    }
}

/// The channel side of an open take transaction.
#[async_trait]
pub trait TakeTxn: Send {
    /// Removes the taken events for good (durably, for durable channels).
    async fn commit(self: Box<Self>, events: Vec<Event>) -> Result<(), ChannelError>;
    /// Returns the events to the head of the queue, in order. Must not block.
    fn rollback(self: Box<Self>, events: Vec<Event>);
}

/// An open take transaction: the events one sink took. Commit to remove them; drop (or
/// [`Take::rollback`]) to give them back.
pub struct Take {
    events: Vec<Event>,
    txn: Option<Box<dyn TakeTxn>>,
}

impl Take {
    /// A transaction over `events`, finished by `txn`.
    pub fn new(events: Vec<Event>, txn: Box<dyn TakeTxn>) -> Self {
        Take {
            events,
            txn: Some(txn),
        }
    }

    /// An empty take (nothing was available); committing or dropping it does nothing.
    pub fn empty() -> Self {
        Take {
            events: Vec::new(),
            txn: None,
        }
    }

    /// The taken events, in channel order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Number of taken events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing was taken.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Removes the events from the channel for good.
    ///
    /// # Cancel safety
    /// If the future is dropped before it completes, the events are rolled back.
    pub async fn commit(mut self) -> Result<(), ChannelError> {
        let events = std::mem::take(&mut self.events);
        match self.txn.take() {
            Some(txn) => txn.commit(events).await,
            None => Ok(()),
        }
    }

    /// The events and the transaction, for a channel that wraps another's take.
    pub fn into_parts(mut self) -> (Vec<Event>, Option<Box<dyn TakeTxn>>) {
        (std::mem::take(&mut self.events), self.txn.take())
    }

    /// Gives the events back to the head of the channel, in order.
    pub fn rollback(self) {
        drop(self);
    }
}

impl Drop for Take {
    fn drop(&mut self) {
        if let Some(txn) = self.txn.take() {
            txn.rollback(std::mem::take(&mut self.events));
        }
    }
}

impl std::fmt::Debug for Take {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Take")
            .field("len", &self.events.len())
            .finish()
    }
}

/// A bounded transactional FIFO of events.
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// The channel's name (`c1`).
    fn name(&self) -> &str;

    /// The Flume type name (`memory`, `file`).
    fn type_name(&self) -> &'static str;

    /// Largest batch one put or take may hold (Flume's `transactionCapacity`).
    fn transaction_capacity(&self) -> usize;

    /// Events queued and not taken (Flume's `ChannelSize`): a snapshot, possibly an estimate.
    fn len(&self) -> usize;

    /// Whether no event is queued.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events queued plus events taken by open transactions (what a shutdown would lose).
    fn pending(&self) -> usize;

    /// Whether the channel keeps its events across a restart (a shutdown loses nothing).
    fn is_durable(&self) -> bool {
        false
    }

    /// Whether programs outside the agent read this channel (a Kafka topic), so a channel
    /// that no sink of the agent drains is a producer, not a dead end.
    fn drained_elsewhere(&self) -> bool {
        false
    }

    /// Events a stop now would lose: [`Channel::pending`] unless the channel is durable.
    fn lost_on_stop(&self) -> usize {
        if self.is_durable() {
            0
        } else {
            self.pending()
        }
    }

    /// Puts a whole batch atomically, waiting up to keep-alive for room.
    ///
    /// # Cancel safety
    /// Cancelled while it waits for room, it has put nothing. Cancelled later, the put is in
    /// doubt (see the module doc): treat it as failed, never acknowledge it, and expect the
    /// events to be delivered at least once if they are put again.
    async fn put(&self, events: Vec<Event>) -> Result<(), ChannelError>;

    /// Takes up to `max` events (at most transactionCapacity) without waiting; an empty
    /// [`Take`] when the channel is empty.
    async fn take(&self, max: usize) -> Result<Take, ChannelError>;

    /// Resolves when events are queued, or after `timeout`.
    ///
    /// # Cancel safety
    /// Cancel safe.
    async fn wait_for_events(&self, timeout: Duration);

    /// The channel's counters.
    fn counters(&self) -> &ChannelCounters;

    /// A one-line summary of the resolved configuration, for the start-up log.
    fn describe(&self) -> String;

    /// Makes the channel ready (opens files, replays); called before any source or sink starts.
    async fn start(&self) -> Result<(), ChannelError> {
        Ok(())
    }

    /// Stops the channel after its sources and sinks have stopped.
    async fn stop(&self) {}

    /// The hooks a hot reload uses on this channel, when it has any.
    fn reload_hooks(&self) -> Option<&dyn Reconfigure> {
        None
    }
}

/// Hooks only a hot reload uses: taking on a changed config in place, keeping every event.
pub trait Reconfigure: Send + Sync {
    /// The channel as `Any`, so that a running channel can see its replacement's type.
    fn as_any(&self) -> &dyn std::any::Any;

    /// Whether this running channel can take on `replacement`'s config in place (a hot reload
    /// changed its keys; `replacement` is built, never started). When `false` the reload
    /// replaces the channel, draining it first. Changes nothing.
    fn can_reconfigure(&self, replacement: &dyn Channel) -> bool;

    /// Takes on `replacement`'s config in place; called only after
    /// [`Reconfigure::can_reconfigure`] said yes and the whole new config validated.
    fn reconfigure(&self, replacement: &dyn Channel);
}

/// `None` (with the finding that drops the channel, as Flume does) when `transactionCapacity`
/// exceeds `capacity`.
pub fn transaction_fits(
    r: &mut crate::config::PropReader<'_>,
    transaction_capacity: usize,
    capacity: usize,
) -> Option<()> {
    if transaction_capacity <= capacity {
        return Some(());
    }
    let origin = r.raw("transactionCapacity").map(|p| p.origin.clone());
    let key = r.full_key("transactionCapacity");
    r.drop_component(
        crate::config::Finding::new(
            crate::config::FindingKind::DroppedComponent,
            origin,
            key,
            format!(
                "transactionCapacity {transaction_capacity} is higher than capacity {capacity}; Flume drops this channel."
            ),
        )
        .expected(format!("transactionCapacity <= capacity ({capacity})")),
    );
    None
}

/// A shared channel handle.
pub type ChannelRef = Arc<dyn Channel>;
