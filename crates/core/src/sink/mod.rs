//! Sinks: deliver batches taken from a channel.
//!
//! The [`runner::SinkRunner`] owns the loop and the transaction (as Flume's `SinkRunner`
//! owns the thread): it takes a batch, hands it to [`Sink::deliver`], commits on success and
//! rolls back on failure, then backs off. A sink only has to write.

pub mod processor;
pub mod runner;
pub mod slot;

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
}

impl SinkError {
    /// A short stable identifier for this error.
    pub fn code(&self) -> &'static str {
        match self {
            SinkError::Io { .. } => "io",
            SinkError::Transport { .. } => "transport",
            SinkError::Rejected { .. } => "rejected",
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

    /// Periodic work while idle (rolling files on time); called at least once a second.
    async fn maintain(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Flushes and closes; called once when the runner stops.
    async fn stop(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
