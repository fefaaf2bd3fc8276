//! The slot's commits on a durable channel: several in flight, every event delivered, counted
//! once committed, and a failed delivery retried without losing what was committed before.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::processor::Outcome;
use super::slot::{Slot, COMMITS_IN_FLIGHT};
use super::{Sink, SinkError};
use crate::channel::file::{FileChannel, FileChannelConfig};
use crate::channel::ChannelRef;
use crate::event::Event;
use crate::interceptor::Chain;

/// Records bodies; fails the delivery numbered `fail_at` (0-based) once.
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
    deliveries: usize,
    fail_at: Option<usize>,
}

#[async_trait]
impl Sink for Recorder {
    fn type_name(&self) -> &'static str {
        "recorder"
    }

    fn batch_size(&self) -> usize {
        10
    }

    fn describe(&self) -> String {
        String::new()
    }

    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let n = self.deliveries;
        self.deliveries += 1;
        if self.fail_at == Some(n) {
            return Err(SinkError::Io {
                context: "recorder".into(),
                source: std::io::Error::other("refused once"),
            });
        }
        let mut seen = self.seen.lock().unwrap();
        seen.extend(
            events
                .iter()
                .map(|e| String::from_utf8_lossy(&e.body).into_owned()),
        );
        Ok(())
    }
}

async fn file_channel(dir: &std::path::Path) -> ChannelRef {
    let mut config = FileChannelConfig::with_base(dir);
    config.capacity = 10_000;
    config.transaction_capacity = 100;
    let ch: ChannelRef = Arc::new(FileChannel::new("c1", config));
    ch.start().await.unwrap();
    ch
}

#[tokio::test]
async fn commits_overlap_on_a_durable_channel_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let ch = file_channel(dir.path()).await;
    for b in 0..20 {
        let batch = (0..10)
            .map(|i| Event::new(format!("e{}", b * 10 + i)))
            .collect();
        ch.put(batch).await.unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let counters = crate::metrics::SinkCounters::default();
    let sink = Recorder {
        seen: seen.clone(),
        deliveries: 0,
        fail_at: Some(7),
    };
    let mut slot = Slot::new(
        "k1",
        Box::new(sink),
        ch.clone(),
        counters.clone(),
        Chain::new(Vec::new()),
        None,
        0,
    );
    let mut outcomes = Vec::new();
    for _ in 0..100 {
        let outcome = slot.attempt().await;
        outcomes.push(outcome);
        if outcome == Outcome::Empty && slot.is_drained() {
            break;
        }
    }
    assert!(outcomes.contains(&Outcome::Failed), "the refused delivery");
    // Twenty batches, more than COMMITS_IN_FLIGHT, so commits did overlap.
    const { assert!(20 > COMMITS_IN_FLIGHT) };
    assert!(slot.is_drained());
    assert_eq!(ch.pending(), 0);
    let seen = seen.lock().unwrap().clone();
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 200, "every event delivered");
    assert_eq!(
        seen.len(),
        200,
        "a refused batch is rolled back, not delivered twice"
    );
    assert_eq!(counters.drain_success.get(), 200);
    slot.stop(false).await;
    ch.stop().await;
    // Reopened, the channel holds nothing: every commit reached the disk.
    let again = file_channel(dir.path()).await;
    assert_eq!(again.pending(), 0);
    again.stop().await;
}
