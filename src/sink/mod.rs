//! Sinks: deliver batches taken from a channel.
//!
//! The [`runner::SinkRunner`] owns the loop and the transaction (as Flume's `SinkRunner`
//! owns the thread): it takes a batch, hands it to [`Sink::deliver`], commits on success and
//! rolls back on failure, then backs off. A sink only has to write.

pub mod file_roll;
pub mod logger;
pub mod null;
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
}

impl SinkError {
    /// A short stable identifier for this error.
    pub fn code(&self) -> &'static str {
        match self {
            SinkError::Io { .. } => "io",
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

    /// Periodic work while idle (rolling files on time); called at least once a second.
    async fn maintain(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Flushes and closes; called once when the runner stops.
    async fn stop(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
