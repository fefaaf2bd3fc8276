//! A sink that screens out events it can never deliver: they go to the dead-letter channel
//! with the sink's reason and the rest are delivered; with no `errorChannel` the whole take is
//! rolled back and nothing is lost.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::processor::Outcome;
use super::slot::Slot;
use super::{Rejected, Sink, SinkError};
use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
use crate::channel::ChannelRef;
use crate::event::Event;
use crate::interceptor::{Chain, ERROR_REASON_HEADER};
use crate::metrics::SinkCounters;

/// Rejects events whose body starts with `bad`; records what it delivers.
struct PickySink {
    delivered: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Sink for PickySink {
    fn type_name(&self) -> &'static str {
        "picky"
    }

    fn batch_size(&self) -> usize {
        10
    }

    fn describe(&self) -> String {
        String::new()
    }

    fn screen(&mut self, events: &[Event]) -> Vec<Rejected> {
        events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.body.starts_with(b"bad"))
            .map(|(index, _)| Rejected {
                index,
                reason: "The body is bad.".into(),
            })
            .collect()
    }

    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let mut delivered = self.delivered.lock().unwrap();
        for e in events {
            delivered.push(String::from_utf8_lossy(&e.body).into_owned());
        }
        Ok(())
    }
}

fn memory(name: &str) -> ChannelRef {
    Arc::new(MemoryChannel::new(
        name,
        MemoryChannelConfig {
            capacity: 100,
            transaction_capacity: 10,
            ..MemoryChannelConfig::default()
        },
    ))
}

async fn rig(errors: Option<ChannelRef>) -> (Slot, ChannelRef, Arc<Mutex<Vec<String>>>) {
    let channel = memory("c1");
    let bodies = ["a", "bad1", "b", "bad2", "c"];
    channel
        .put(bodies.iter().map(|b| Event::new(*b)).collect())
        .await
        .unwrap();
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let sink = PickySink {
        delivered: delivered.clone(),
    };
    let slot = Slot::new(
        "k1",
        Box::new(sink),
        channel.clone(),
        SinkCounters::default(),
        Chain::new(Vec::new()),
        errors,
        0,
    );
    (slot, channel, delivered)
}

#[tokio::test]
async fn screened_events_are_dead_lettered_with_the_reason_and_the_rest_delivered() {
    let errors = memory("errors");
    let (mut slot, channel, delivered) = rig(Some(errors.clone())).await;
    assert_eq!(slot.attempt().await, Outcome::Delivered);
    assert_eq!(*delivered.lock().unwrap(), ["a", "b", "c"]);
    assert_eq!(channel.pending(), 0);
    let letters = errors.take(10).await.unwrap();
    let got: Vec<(String, String)> = letters
        .events()
        .iter()
        .map(|e| {
            let reason = e.headers.get(ERROR_REASON_HEADER).map(|v| v.to_string());
            (
                String::from_utf8_lossy(&e.body).into_owned(),
                reason.unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("bad1".to_string(), "The body is bad.".to_string()),
            ("bad2".to_string(), "The body is bad.".to_string())
        ]
    );
    assert_eq!(slot.counters().event_dead_lettered.get(), 2);
}

#[tokio::test]
async fn without_an_error_channel_a_take_with_screened_events_is_rolled_back_whole() {
    let (mut slot, channel, delivered) = rig(None).await;
    assert_eq!(slot.attempt().await, Outcome::Failed);
    assert!(delivered.lock().unwrap().is_empty());
    assert_eq!(channel.pending(), 5, "all five events stay in the channel");
}
