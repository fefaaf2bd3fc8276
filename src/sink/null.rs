//! `null` sink (`org.apache.flume.sink.NullSink`): takes batches and discards them.

use async_trait::async_trait;

use super::{Sink, SinkError};
use crate::config::PropReader;
use crate::event::Event;

/// Flume's default `batchSize`.
pub const DEFAULT_BATCH_SIZE: usize = 100;

/// The null sink.
pub struct NullSink {
    batch_size: usize,
}

impl NullSink {
    /// Reads `batchSize`.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        Some(NullSink {
            batch_size: r.number("batchSize", DEFAULT_BATCH_SIZE, 1, 1 << 24)?,
        })
    }
}

#[async_trait]
impl Sink for NullSink {
    fn type_name(&self) -> &'static str {
        "null"
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn describe(&self) -> String {
        format!("batchSize={}", self.batch_size)
    }

    async fn deliver(&mut self, _events: &[Event]) -> Result<(), SinkError> {
        Ok(())
    }
}
