//! One contract, every channel: the transactional semantics each implementation must keep.

use std::time::Duration;

use super::file::{FileChannel, FileChannelConfig};
use super::memory::{MemoryChannel, MemoryChannelConfig};
use super::spillable::{SpillableChannel, SpillableConfig};
use super::{Channel, ChannelError, Reconfigure};
use crate::event::Event;

fn memory(capacity: usize, tx: usize) -> MemoryChannel {
    MemoryChannel::new(
        "c1",
        MemoryChannelConfig {
            capacity,
            transaction_capacity: tx,
            keep_alive: Duration::from_millis(50),
            ..MemoryChannelConfig::default()
        },
    )
}

/// A channel under test, with the directory a durable one lives in.
struct Fixture {
    ch: Box<dyn Channel>,
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for Fixture {
    type Target = dyn Channel;
    fn deref(&self) -> &Self::Target {
        self.ch.as_ref()
    }
}

async fn file(capacity: usize, tx: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = FileChannelConfig::with_base(dir.path());
    config.capacity = capacity;
    config.transaction_capacity = tx;
    config.keep_alive = Duration::from_millis(50);
    config.minimum_required_space = 1 << 20;
    let ch = FileChannel::new("c1", config);
    ch.start().await.unwrap();
    Fixture {
        ch: Box::new(ch),
        _dir: Some(dir),
    }
}

/// A spillable channel whose memory holds 12 events: bigger batches spill to disk, so the
/// ordering tests run across both stores.
async fn spillable(capacity: usize, tx: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut file = FileChannelConfig::with_base(dir.path());
    file.capacity = capacity;
    file.transaction_capacity = tx;
    file.keep_alive = Duration::ZERO;
    file.minimum_required_space = 1 << 20;
    let ch = SpillableChannel::new(
        "c1",
        SpillableConfig {
            memory_capacity: 12,
            overflow_capacity: capacity,
            overflow_timeout: Duration::from_millis(20),
            deactivation_threshold: 5,
            byte_capacity: 1 << 30,
            byte_capacity_buffer_percentage: 20,
            file,
        },
    );
    ch.start().await.unwrap();
    Fixture {
        ch: Box::new(ch),
        _dir: Some(dir),
    }
}

/// Every channel type, each with `capacity` and `transactionCapacity`.
async fn channels(capacity: usize, tx: usize) -> Vec<Fixture> {
    vec![
        Fixture {
            ch: Box::new(memory(capacity, tx)),
            _dir: None,
        },
        file(capacity, tx).await,
    ]
}

/// [`channels`] plus the spillable channel, for the tests of order and isolation (its capacity
/// is memory plus overflow, so the capacity tests do not apply to it as written).
async fn all_channels(capacity: usize, tx: usize) -> Vec<Fixture> {
    let mut v = channels(capacity, tx).await;
    v.push(spillable(capacity, tx).await);
    v
}

fn batch(range: std::ops::Range<u32>) -> Vec<Event> {
    range.map(|i| Event::new(i.to_string())).collect()
}

fn bodies(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
        .collect()
}

#[tokio::test]
async fn put_then_take_keeps_order_and_commit_removes() {
    for ch in all_channels(100, 10).await {
        ch.put(batch(0..10)).await.unwrap();
        ch.put(batch(10..15)).await.unwrap();
        let t = ch.take(10).await.unwrap();
        assert_eq!(bodies(t.events()), bodies(&batch(0..10)));
        t.commit().await.unwrap();
        let t = ch.take(10).await.unwrap();
        assert_eq!(bodies(t.events()), bodies(&batch(10..15)));
        t.commit().await.unwrap();
        assert!(ch.take(10).await.unwrap().is_empty());
        assert_eq!(ch.pending(), 0);
    }
}

#[tokio::test]
async fn dropped_take_rolls_back_to_the_head_in_order() {
    for ch in all_channels(100, 10).await {
        ch.put(batch(0..10)).await.unwrap();
        let first = ch.take(4).await.unwrap();
        let second = ch.take(3).await.unwrap();
        assert_eq!(bodies(second.events()), ["4", "5", "6"]);
        drop(first);
        let again = ch.take(10).await.unwrap();
        assert_eq!(bodies(again.events()), ["0", "1", "2", "3", "7", "8", "9"]);
        second.commit().await.unwrap();
        again.commit().await.unwrap();
        assert_eq!(ch.pending(), 0);
    }
}

#[tokio::test]
async fn concurrent_takers_never_see_each_others_events() {
    for ch in all_channels(1000, 100).await {
        ch.put(batch(0..100)).await.unwrap();
        let a = ch.take(50).await.unwrap();
        let b = ch.take(50).await.unwrap();
        let mut seen: Vec<String> = bodies(a.events());
        seen.extend(bodies(b.events()));
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 100);
        a.commit().await.unwrap();
        b.commit().await.unwrap();
    }
}

#[tokio::test]
async fn oversized_batch_is_refused_clearly() {
    for ch in all_channels(100, 10).await {
        let err = ch.put(batch(0..11)).await.unwrap_err();
        assert!(matches!(
            err,
            ChannelError::BatchTooLarge {
                size: 11,
                capacity: 10,
                ..
            }
        ));
        assert!(err.to_string().contains("transactionCapacity 10"));
        assert_eq!(ch.pending(), 0);
    }
}

#[tokio::test]
async fn full_channel_waits_keep_alive_then_returns_the_batch() {
    for ch in channels(10, 10).await {
        ch.put(batch(0..8)).await.unwrap();
        let err = ch.put(batch(8..11)).await.unwrap_err();
        assert_eq!(err.code(), "channel_full");
        assert_eq!(bodies(&err.into_events().unwrap()), ["8", "9", "10"]);
        // Taken but uncommitted events still hold their room.
        let t = ch.take(8).await.unwrap();
        assert!(ch.put(batch(8..11)).await.is_err());
        t.commit().await.unwrap();
        ch.put(batch(8..11)).await.unwrap();
        assert_eq!(ch.pending(), 3);
    }
}

#[tokio::test]
async fn a_waiting_put_succeeds_when_a_commit_frees_room() {
    let ch = memory(10, 10);
    let slow = MemoryChannel::new(
        "c2",
        MemoryChannelConfig {
            capacity: 10,
            transaction_capacity: 10,
            keep_alive: Duration::from_secs(30),
            ..MemoryChannelConfig::default()
        },
    );
    drop(ch);
    slow.put(batch(0..10)).await.unwrap();
    let putter = {
        let slow = slow.clone();
        tokio::spawn(async move { slow.put(batch(10..15)).await })
    };
    let t = slow.take(10).await.unwrap();
    t.commit().await.unwrap();
    putter.await.unwrap().unwrap();
    assert_eq!(slow.pending(), 5);
}

#[tokio::test]
async fn byte_capacity_bounds_bodies() {
    let ch = MemoryChannel::new(
        "c1",
        MemoryChannelConfig {
            capacity: 100,
            transaction_capacity: 100,
            keep_alive: Duration::from_millis(20),
            byte_capacity: 1000,
            byte_capacity_buffer_percentage: 20,
        },
    );
    let big = |n: usize| vec![Event::new(vec![b'x'; 100]); n];
    ch.put(big(8)).await.unwrap();
    assert_eq!(ch.put(big(1)).await.unwrap_err().code(), "channel_full");
    assert_eq!(ch.put(big(9)).await.unwrap_err().code(), "never_fits");
}

#[tokio::test]
async fn a_memory_channel_resizes_in_place_and_keeps_its_events() {
    let ch = memory(10, 10);
    ch.put(batch(0..10)).await.unwrap();
    assert_eq!(
        ch.put(batch(10..11)).await.unwrap_err().code(),
        "channel_full"
    );
    // A waiting put goes through as soon as the capacity grows.
    let waiting = MemoryChannel::new(
        "c1",
        MemoryChannelConfig {
            capacity: 10,
            transaction_capacity: 10,
            keep_alive: Duration::from_secs(30),
            ..MemoryChannelConfig::default()
        },
    );
    waiting.put(batch(0..10)).await.unwrap();
    let putter = {
        let waiting = waiting.clone();
        tokio::spawn(async move { waiting.put(batch(10..15)).await })
    };
    tokio::task::yield_now().await;
    assert!(waiting.can_reconfigure(&memory(20, 10)));
    waiting.reconfigure(&memory(20, 10));
    putter.await.unwrap().unwrap();
    assert_eq!(waiting.pending(), 15);
    assert_eq!(waiting.counters().capacity.get(), 20);

    // Shrinking below what it holds drops nothing; puts wait until sinks make room.
    ch.reconfigure(&memory(4, 2));
    assert_eq!(ch.transaction_capacity(), 2);
    assert_eq!(
        ch.put(batch(10..11)).await.unwrap_err().code(),
        "channel_full"
    );
    let mut seen = Vec::new();
    while ch.pending() > 0 {
        let t = ch.take(10).await.unwrap();
        assert!(t.len() <= 2, "the new transactionCapacity bounds takes");
        seen.extend(bodies(t.events()));
        t.commit().await.unwrap();
    }
    assert_eq!(seen, bodies(&batch(0..10)));
    ch.put(batch(10..12)).await.unwrap();
    ch.put(batch(12..14)).await.unwrap();
    assert_eq!(
        ch.put(batch(14..15)).await.unwrap_err().code(),
        "channel_full"
    );
    // A file channel is not resized in place: the reload replaces it.
    let file = file(10, 10).await;
    assert!(!ch.can_reconfigure(&*file));
}
