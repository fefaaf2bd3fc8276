//! A toy sink whose acknowledgements the test completes by hand: no take commits before its
//! ack, a failed ack rolls the batch back, the slot holds at most `acks_in_flight` takes, and
//! an abort rolls back what is held.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;

use super::processor::Outcome;
use super::slot::Slot;
use super::{Ack, Delivered, Delivery, Sink, SinkError};
use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
use crate::channel::ChannelRef;
use crate::event::Event;
use crate::interceptor::Chain;
use crate::metrics::SinkCounters;

/// The test's end of one submitted batch: its bodies and the switch that acks it.
struct Handed {
    bodies: Vec<String>,
    ack: oneshot::Sender<bool>,
}

/// Hands each batch over and acknowledges it when the test says so.
struct LaterSink {
    handed: Arc<Mutex<Vec<Handed>>>,
    acks: usize,
}

#[async_trait]
impl Sink for LaterSink {
    fn type_name(&self) -> &'static str {
        "later"
    }

    fn batch_size(&self) -> usize {
        10
    }

    fn describe(&self) -> String {
        String::new()
    }

    async fn deliver(&mut self, _events: &[Event]) -> Result<(), SinkError> {
        unreachable!("the slot submits")
    }

    async fn submit(&mut self, events: &[Event]) -> Result<Delivery, SinkError> {
        let (tx, rx) = oneshot::channel();
        let n = events.len();
        self.handed.lock().unwrap().push(Handed {
            bodies: events
                .iter()
                .map(|e| String::from_utf8_lossy(&e.body).into_owned())
                .collect(),
            ack: tx,
        });
        Ok(Delivery::Later(Ack::new(async move {
            match rx.await {
                Ok(true) => Ok(Delivered::all(n)),
                // Refused, or the test dropped the switch.
                _ => Err(SinkError::Io {
                    context: "toy downstream".into(),
                    source: std::io::Error::other("refused"),
                }),
            }
        })))
    }

    fn acks_in_flight(&self) -> usize {
        self.acks
    }
}

struct Rig {
    channel: ChannelRef,
    slot: Slot,
    counters: SinkCounters,
    handed: Arc<Mutex<Vec<Handed>>>,
}

async fn rig(events: usize, acks: usize) -> Rig {
    let channel: ChannelRef = Arc::new(MemoryChannel::new(
        "c1",
        MemoryChannelConfig {
            capacity: 1000,
            transaction_capacity: 10,
            ..MemoryChannelConfig::default()
        },
    ));
    let all: Vec<Event> = (0..events).map(|i| Event::new(format!("e{i}"))).collect();
    for batch in all.chunks(10) {
        channel.put(batch.to_vec()).await.unwrap();
    }
    let handed = Arc::new(Mutex::new(Vec::new()));
    let counters = SinkCounters::default();
    let sink = LaterSink {
        handed: handed.clone(),
        acks,
    };
    let slot = Slot::new(
        "k1",
        Box::new(sink),
        channel.clone(),
        counters.clone(),
        Chain::new(Vec::new()),
        None,
        0,
    );
    Rig {
        channel,
        slot,
        counters,
        handed,
    }
}

impl Rig {
    /// Acknowledges the batch handed over `i`-th, with success or a failure.
    fn ack(&self, i: usize, ok: bool) {
        let mut handed = self.handed.lock().unwrap();
        let (tx, _) = oneshot::channel();
        let sender = std::mem::replace(&mut handed[i].ack, tx);
        let _ = sender.send(ok);
    }

    fn handed(&self) -> usize {
        self.handed.lock().unwrap().len()
    }
}

#[tokio::test]
async fn no_take_commits_before_its_ack() {
    let mut r = rig(30, 3).await;
    for _ in 0..3 {
        assert_eq!(r.slot.attempt().await, Outcome::Delivered);
    }
    assert_eq!(r.handed(), 3);
    assert_eq!(r.channel.len(), 0, "all three batches taken");
    assert_eq!(r.channel.pending(), 30, "and none committed");
    assert_eq!(r.counters.drain_success.get(), 0);
    r.ack(1, true);
    r.ack(0, true);
    // The channel is empty: the attempt settles everything open, so ack the last one.
    r.ack(2, true);
    assert_eq!(r.slot.attempt().await, Outcome::Empty);
    assert_eq!(r.channel.pending(), 0);
    assert_eq!(r.counters.drain_success.get(), 30);
    assert!(r.slot.is_drained());
}

#[tokio::test]
async fn a_failed_ack_rolls_the_batch_back_and_it_is_delivered_again() {
    let mut r = rig(20, 2).await;
    assert_eq!(r.slot.attempt().await, Outcome::Delivered);
    assert_eq!(r.slot.attempt().await, Outcome::Delivered);
    r.ack(0, false);
    r.ack(1, true);
    // The next attempt settles the oldest first: its failure fails the attempt, no take.
    assert_eq!(r.slot.attempt().await, Outcome::Failed);
    assert!(r.slot.wants_backoff());
    assert_eq!(r.handed(), 2, "nothing taken while an ack failed");
    assert_eq!(r.channel.len(), 10, "the refused batch is back");
    assert_eq!(r.counters.event_write_fail.get(), 10);
    assert_eq!(r.slot.attempt().await, Outcome::Delivered);
    let again = r.handed.lock().unwrap()[2].bodies.clone();
    assert_eq!(again, r.handed.lock().unwrap()[0].bodies, "the same batch");
    r.ack(2, true);
    assert_eq!(r.slot.attempt().await, Outcome::Empty);
    assert_eq!(r.channel.pending(), 0);
    assert_eq!(r.counters.drain_success.get(), 20);
}

#[tokio::test]
async fn the_slot_holds_at_most_acks_in_flight_takes() {
    let mut r = rig(50, 2).await;
    assert_eq!(r.slot.attempt().await, Outcome::Delivered);
    assert_eq!(r.slot.attempt().await, Outcome::Delivered);
    // A third take would exceed the limit: the attempt waits for the oldest ack, so it
    // cannot finish while no ack completes (whatever the machine's speed).
    let third = tokio::time::timeout(Duration::from_millis(100), r.slot.attempt()).await;
    assert!(third.is_err(), "the attempt waited for an ack");
    assert_eq!(r.handed(), 2, "and took nothing more");
    assert_eq!(r.channel.pending(), 50);
    r.ack(0, true);
    assert_eq!(r.slot.attempt().await, Outcome::Delivered);
    assert_eq!(r.handed(), 3);
    assert_eq!(r.channel.pending(), 40, "the first batch committed");
}

#[tokio::test]
async fn an_abort_rolls_back_the_takes_held_open() {
    let mut r = rig(30, 3).await;
    for _ in 0..3 {
        assert_eq!(r.slot.attempt().await, Outcome::Delivered);
    }
    assert_eq!(r.channel.len(), 0);
    r.slot.stop(true).await;
    assert_eq!(
        r.channel.len(),
        30,
        "every held take is back in the channel"
    );
    assert_eq!(r.counters.drain_success.get(), 0);
}

#[tokio::test]
async fn a_graceful_stop_waits_for_the_acks() {
    let mut r = rig(20, 2).await;
    assert_eq!(r.slot.attempt().await, Outcome::Delivered);
    assert_eq!(r.slot.attempt().await, Outcome::Delivered);
    r.ack(0, true);
    r.ack(1, true);
    r.slot.stop(false).await;
    assert_eq!(r.channel.pending(), 0);
    assert_eq!(r.counters.drain_success.get(), 20);
}
