//! `spillablememory` channel (`org.apache.flume.channel.SpillableMemoryChannel`): a memory
//! queue that overflows to a file channel when it fills up.
//!
//! A put goes whole to memory when there is room; when there is not, it waits up to
//! `overflowTimeout` for room unless overflow is already active, then goes whole to the file
//! channel ("overflow"). Overflow stays active until memory is at least
//! `overflowDeactivationThreshold` percent free again, as in Flume. Takes follow arrival order
//! across both stores through a drain-order list of (store, count) segments; one take draws
//! from one store (the one holding the oldest events), as in Flume, so it may return fewer
//! events than asked.
//!
//! Events in the memory part are lost on a crash (Flume calls this channel experimental for
//! that reason); events in overflow are as durable as in a file channel. A clean stop reports
//! only the memory part as lost. Byte accounting counts actual body bytes, so `avgEventSize` is
//! accepted and unused.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::file::{FileChannel, FileChannelConfig};
use super::memory::{MemoryChannel, MemoryChannelConfig};
use super::{Channel, ChannelError, Take, TakeTxn};
use crate::config::PropReader;
use crate::event::Event;
use crate::metrics::{ChannelCounter, ChannelCounters};

/// Flume's default `memoryCapacity`.
pub const DEFAULT_MEMORY_CAPACITY: usize = 10_000;
/// Flume's default `overflowCapacity`.
pub const DEFAULT_OVERFLOW_CAPACITY: usize = 100_000_000;
/// Flume's default `overflowTimeout` (s).
pub const DEFAULT_OVERFLOW_TIMEOUT_SECS: u64 = 3;
/// Flume's default `overflowDeactivationThreshold` (percent of memory free).
pub const DEFAULT_DEACTIVATION_THRESHOLD: u64 = 5;

/// The resolved configuration of a spillable memory channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpillableConfig {
    /// `memoryCapacity` (0: every put goes to overflow).
    pub memory_capacity: usize,
    /// `overflowCapacity` (0: no overflow, a plain memory channel).
    pub overflow_capacity: usize,
    /// `overflowTimeout`.
    pub overflow_timeout: Duration,
    /// `overflowDeactivationThreshold` (percent).
    pub deactivation_threshold: u64,
    /// `byteCapacity` and `byteCapacityBufferPercentage` of the memory part.
    pub byte_capacity: u64,
    /// `byteCapacityBufferPercentage`.
    pub byte_capacity_buffer_percentage: u64,
    /// The overflow file channel (its `capacity` is `overflowCapacity`).
    pub file: FileChannelConfig,
}

impl SpillableConfig {
    /// Reads Flume's keys for channel `name`. `None` when Flume would drop it.
    pub fn from_props(name: &str, r: &mut PropReader<'_>) -> Option<Self> {
        let memory_capacity = r
            .number(
                "memoryCapacity",
                DEFAULT_MEMORY_CAPACITY as i64,
                i64::MIN,
                i64::MAX,
            )?
            .max(0) as usize;
        let mut overflow_capacity = r
            .number(
                "overflowCapacity",
                DEFAULT_OVERFLOW_CAPACITY as i64,
                i64::MIN,
                i64::MAX,
            )?
            .max(0) as usize;
        if memory_capacity == 0 && overflow_capacity == 0 {
            // Flume: both zero is not allowed; the overflow default is used.
            overflow_capacity = DEFAULT_OVERFLOW_CAPACITY;
        }
        let overflow_timeout = r.duration(
            "overflowTimeout",
            Duration::from_secs(DEFAULT_OVERFLOW_TIMEOUT_SECS),
            Duration::from_secs(1),
        )?;
        let deactivation_threshold = r.number(
            "overflowDeactivationThreshold",
            DEFAULT_DEACTIVATION_THRESHOLD,
            0,
            100,
        )?;
        let byte_capacity = r.number(
            "byteCapacity",
            super::memory::default_byte_capacity(),
            0,
            u64::MAX / 2,
        )?;
        let byte_capacity_buffer_percentage =
            r.number("byteCapacityBufferPercentage", 20, 0, 100)?;
        r.number("avgEventSize", 500u64, 1, u64::MAX / 2)?;
        let mut file = crate::channel::file_config::from_props(name, r)?;
        file.capacity = overflow_capacity.max(file.transaction_capacity);
        file.keep_alive = Duration::ZERO;
        Some(SpillableConfig {
            memory_capacity,
            overflow_capacity,
            overflow_timeout,
            deactivation_threshold,
            byte_capacity,
            byte_capacity_buffer_percentage,
            file,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Store {
    Memory,
    Overflow,
}

#[derive(Default)]
struct Order {
    segments: VecDeque<(Store, usize)>,
    overflow_active: bool,
}

impl Order {
    fn push_back(&mut self, store: Store, n: usize) {
        match self.segments.back_mut() {
            Some((s, count)) if *s == store => *count += n,
            _ => self.segments.push_back((store, n)),
        }
    }

    fn push_front(&mut self, store: Store, n: usize) {
        match self.segments.front_mut() {
            Some((s, count)) if *s == store => *count += n,
            _ => self.segments.push_front((store, n)),
        }
    }

    fn consume_front(&mut self, n: usize) {
        if let Some((_, count)) = self.segments.front_mut() {
            *count -= n.min(*count);
            if *count == 0 {
                self.segments.pop_front();
            }
        }
    }
}

struct Inner {
    name: String,
    config: SpillableConfig,
    memory: MemoryChannel,
    overflow: Option<FileChannel>,
    order: Mutex<Order>,
    counters: ChannelCounters,
}

impl Inner {
    fn order(&self) -> MutexGuard<'_, Order> {
        self.order.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self, store: Store) -> Option<&dyn Channel> {
        match store {
            Store::Memory => Some(&self.memory),
            Store::Overflow => self.overflow.as_ref().map(|f| f as &dyn Channel),
        }
    }
}

/// The spillable memory channel.
#[derive(Clone)]
pub struct SpillableChannel {
    inner: Arc<Inner>,
}

impl SpillableChannel {
    /// A channel named `name` with `config`.
    pub fn new(name: &str, config: SpillableConfig) -> Self {
        let memory = MemoryChannel::new(
            name,
            MemoryChannelConfig {
                capacity: config.memory_capacity.max(1),
                transaction_capacity: config.file.transaction_capacity,
                keep_alive: config.overflow_timeout,
                byte_capacity: config.byte_capacity,
                byte_capacity_buffer_percentage: config.byte_capacity_buffer_percentage,
            },
        );
        let overflow =
            (config.overflow_capacity > 0).then(|| FileChannel::new(name, config.file.clone()));
        let counters = Arc::new(ChannelCounter::default());
        counters
            .capacity
            .set((config.memory_capacity + config.overflow_capacity) as i64);
        SpillableChannel {
            inner: Arc::new(Inner {
                name: name.to_string(),
                config,
                memory,
                overflow,
                order: Mutex::new(Order::default()),
                counters,
            }),
        }
    }

    fn update_size(&self) {
        self.inner.counters.size.set(self.len() as i64);
    }

    /// Puts to memory when that is the right store and it takes the batch; hands the batch
    /// back when it should go to overflow instead.
    async fn put_memory(&self, events: Vec<Event>) -> Result<(), Spill> {
        let inner = &self.inner;
        let n = events.len();
        let c = &inner.config;
        let bytes: u64 = events.iter().map(|e| e.body_len() as u64).sum();
        let byte_limit = match c.byte_capacity {
            0 => u64::MAX,
            b => b / 100 * (100 - c.byte_capacity_buffer_percentage.min(100)),
        };
        // A batch memory can never hold goes straight to overflow (checked here because the
        // memory channel's "never fits" error does not hand the batch back).
        if c.memory_capacity == 0 || n > c.memory_capacity || bytes > byte_limit {
            return Err(Spill::Back(events));
        }
        let room = inner.memory.pending() + n <= c.memory_capacity;
        let overflow_active = inner.order().overflow_active;
        if !room && overflow_active && inner.overflow.is_some() {
            return Err(Spill::Back(events));
        }
        match inner.memory.put(events).await {
            Ok(()) => {
                inner.order().push_back(Store::Memory, n);
                Ok(())
            }
            Err(ChannelError::Full { events, .. }) => Err(Spill::Back(events)),
            Err(other) => Err(Spill::Failed(other)),
        }
    }
}

/// Why a put did not go to memory.
enum Spill {
    /// Memory has no room: here is the batch, for overflow.
    Back(Vec<Event>),
    /// Memory refused it for good.
    Failed(ChannelError),
}

struct SpillTake {
    inner: Arc<Inner>,
    store: Store,
    txn: Box<dyn TakeTxn>,
}

#[async_trait]
impl TakeTxn for SpillTake {
    async fn commit(self: Box<Self>, events: Vec<Event>) -> Result<(), ChannelError> {
        let n = events.len();
        let SpillTake { inner, store, txn } = *self;
        txn.commit(events).await?;
        inner.counters.take_success.add(n as u64);
        if store == Store::Memory {
            let free = inner
                .config
                .memory_capacity
                .saturating_sub(inner.memory.pending());
            let mut order = inner.order();
            if order.overflow_active
                && free as u64 * 100
                    >= inner.config.deactivation_threshold * inner.config.memory_capacity as u64
            {
                order.overflow_active = false;
                tracing::info!(channel = %inner.name, "Overflow deactivated: memory has room again.");
            }
        }
        Ok(())
    }

    fn rollback(self: Box<Self>, events: Vec<Event>) {
        let SpillTake { inner, store, txn } = *self;
        let n = events.len();
        txn.rollback(events);
        inner.order().push_front(store, n);
    }
}

#[async_trait]
impl Channel for SpillableChannel {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn type_name(&self) -> &'static str {
        "spillablememory"
    }

    fn transaction_capacity(&self) -> usize {
        self.inner.config.file.transaction_capacity
    }

    fn len(&self) -> usize {
        self.inner.memory.len() + self.inner.overflow.as_ref().map_or(0, |f| f.len())
    }

    fn pending(&self) -> usize {
        self.inner.memory.pending() + self.inner.overflow.as_ref().map_or(0, |f| f.pending())
    }

    fn lost_on_stop(&self) -> usize {
        self.inner.memory.pending()
    }

    async fn put(&self, events: Vec<Event>) -> Result<(), ChannelError> {
        let inner = &self.inner;
        let n = events.len();
        inner.counters.put_attempt.add(n as u64);
        if n == 0 {
            return Ok(());
        }
        if n > self.transaction_capacity() {
            return Err(ChannelError::BatchTooLarge {
                channel: inner.name.clone(),
                size: n,
                capacity: self.transaction_capacity(),
            });
        }
        let events = match self.put_memory(events).await {
            Ok(()) => {
                inner.counters.put_success.add(n as u64);
                self.update_size();
                return Ok(());
            }
            Err(Spill::Back(back)) => back,
            Err(Spill::Failed(error)) => return Err(error),
        };
        let Some(overflow) = &inner.overflow else {
            return Err(ChannelError::Full {
                channel: inner.name.clone(),
                events,
            });
        };
        let result = overflow.put(events).await;
        match result {
            Ok(()) => {
                let mut order = inner.order();
                if !order.overflow_active && inner.config.memory_capacity > 0 {
                    tracing::info!(channel = %inner.name, "Overflow activated: memory is full, puts go to disk.");
                }
                order.overflow_active = true;
                order.push_back(Store::Overflow, n);
                drop(order);
                inner.counters.put_success.add(n as u64);
                self.update_size();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn take(&self, max: usize) -> Result<Take, ChannelError> {
        let inner = &self.inner;
        let max = max.min(self.transaction_capacity());
        // The head segment names the store holding the oldest events; reserve from it under
        // the lock so that concurrent takers split segments correctly.
        let (store, n) = {
            let mut order = inner.order();
            let Some(&(store, count)) = order.segments.front() else {
                return Ok(Take::empty());
            };
            let n = count.min(max);
            order.consume_front(n);
            (store, n)
        };
        let Some(channel) = inner.store(store) else {
            return Ok(Take::empty());
        };
        let taken = match channel.take(n).await {
            Ok(t) => t,
            Err(e) => {
                inner.order().push_front(store, n);
                return Err(e);
            }
        };
        // A store may hand out fewer (a damaged event skipped, or a concurrent rollback not
        // yet visible): give the difference back to the order.
        if taken.len() < n {
            inner.order().push_front(store, n - taken.len());
        }
        inner.counters.take_attempt.add(taken.len() as u64);
        self.update_size();
        let (events, txn) = taken.into_parts();
        match txn {
            Some(txn) => Ok(Take::new(
                events,
                Box::new(SpillTake {
                    inner: inner.clone(),
                    store,
                    txn,
                }),
            )),
            None => Ok(Take::empty()),
        }
    }

    async fn wait_for_events(&self, timeout: Duration) {
        match &self.inner.overflow {
            Some(overflow) => {
                tokio::select! {
                    _ = self.inner.memory.wait_for_events(timeout) => {}
                    _ = overflow.wait_for_events(timeout) => {}
                }
            }
            None => self.inner.memory.wait_for_events(timeout).await,
        }
    }

    fn counters(&self) -> &ChannelCounters {
        &self.inner.counters
    }

    fn describe(&self) -> String {
        let c = &self.inner.config;
        let overflow = match &self.inner.overflow {
            Some(f) => f.describe(),
            None => "disabled".to_string(),
        };
        format!(
            "memoryCapacity={} overflowCapacity={} overflowTimeout={}s byteCapacity={} overflow=[{overflow}]",
            c.memory_capacity,
            c.overflow_capacity,
            c.overflow_timeout.as_secs(),
            c.byte_capacity
        )
    }

    async fn start(&self) -> Result<(), ChannelError> {
        if let Some(overflow) = &self.inner.overflow {
            overflow.start().await?;
            let replayed = overflow.len();
            if replayed > 0 {
                let mut order = self.inner.order();
                order.push_back(Store::Overflow, replayed);
                order.overflow_active = true;
            }
        }
        self.update_size();
        Ok(())
    }

    async fn stop(&self) {
        self.inner.memory.stop().await;
        if let Some(overflow) = &self.inner.overflow {
            overflow.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, memory: usize) -> SpillableConfig {
        let mut file = FileChannelConfig::with_base(dir);
        file.transaction_capacity = 100;
        file.capacity = 1000;
        file.keep_alive = Duration::ZERO;
        file.minimum_required_space = 1 << 20;
        SpillableConfig {
            memory_capacity: memory,
            overflow_capacity: 1000,
            overflow_timeout: Duration::from_millis(20),
            deactivation_threshold: 5,
            byte_capacity: 1 << 30,
            byte_capacity_buffer_percentage: 20,
            file,
        }
    }

    fn batch(prefix: &str, n: usize) -> Vec<Event> {
        (0..n).map(|i| Event::new(format!("{prefix}{i}"))).collect()
    }

    async fn take_all(ch: &SpillableChannel) -> Vec<Vec<String>> {
        let mut takes = Vec::new();
        loop {
            let t = ch.take(100).await.unwrap();
            if t.is_empty() {
                return takes;
            }
            takes.push(
                t.events()
                    .iter()
                    .map(|e| String::from_utf8_lossy(&e.body).into_owned())
                    .collect(),
            );
            t.commit().await.unwrap();
        }
    }

    #[tokio::test]
    async fn takes_follow_arrival_order_across_memory_and_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let ch = SpillableChannel::new("c1", config(dir.path(), 5));
        ch.start().await.unwrap();
        ch.put(batch("m", 3)).await.unwrap(); // memory
        ch.put(batch("o", 4)).await.unwrap(); // no room: overflow after overflowTimeout
        ch.put(batch("n", 2)).await.unwrap(); // room again: memory
        assert_eq!(ch.inner.overflow.as_ref().unwrap().len(), 4);
        let takes = take_all(&ch).await;
        assert_eq!(
            takes,
            vec![
                vec!["m0", "m1", "m2"],
                vec!["o0", "o1", "o2", "o3"],
                vec!["n0", "n1"]
            ]
        );
        ch.stop().await;
    }

    #[tokio::test]
    async fn overflow_survives_a_restart_and_memory_is_reported_lost() {
        let dir = tempfile::tempdir().unwrap();
        let ch = SpillableChannel::new("c1", config(dir.path(), 5));
        ch.start().await.unwrap();
        ch.put(batch("mem", 2)).await.unwrap();
        ch.put(batch("disk", 10)).await.unwrap(); // larger than memory: overflow
        assert_eq!(ch.lost_on_stop(), 2);
        assert_eq!(ch.pending(), 12);
        ch.stop().await;
        let again = SpillableChannel::new("c1", config(dir.path(), 5));
        again.start().await.unwrap();
        let takes = take_all(&again).await;
        assert_eq!(takes.concat().len(), 10);
        assert!(takes.concat().iter().all(|b| b.starts_with("disk")));
        again.stop().await;
    }

    #[tokio::test]
    async fn a_rolled_back_take_comes_back_first() {
        let dir = tempfile::tempdir().unwrap();
        let ch = SpillableChannel::new("c1", config(dir.path(), 5));
        ch.start().await.unwrap();
        ch.put(batch("o", 8)).await.unwrap();
        ch.put(batch("m", 2)).await.unwrap();
        let t = ch.take(3).await.unwrap();
        drop(t);
        let takes = take_all(&ch).await;
        assert_eq!(takes[0][..3], ["o0", "o1", "o2"]);
        assert_eq!(takes.concat().len(), 10);
        ch.stop().await;
    }
}
