//! `memory` channel (`org.apache.flume.channel.MemoryChannel`): a bounded in-memory queue.
//!
//! Capacity counts queued events plus events held by open take transactions, so the channel
//! never holds more than `capacity` events however many sinks take from it. Byte capacity
//! counts event bodies, as Flume does. Contents are lost when the process dies; a clean stop
//! drains them first (see `agent`).
//!
//! A hot reload that changes a memory channel's keys resizes it in place, keeping its events
//! ([`MemoryChannel::resize`], as Flume's `MemoryChannel.configure` does). A smaller capacity
//! than the channel holds takes effect at once: puts wait until sinks bring it below the new
//! limit, and nothing is dropped. (Flume instead abandons a shrink its queue cannot fit within
//! `keep-alive` and keeps the old capacity.)

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::batch_queue::BatchQueue;
use super::{Channel, ChannelError, Reconfigure, Take, TakeTxn};
use crate::config::PropReader;
use crate::event::Event;
use crate::metrics::{ChannelCounter, ChannelCounters};

/// Flume's default `capacity`.
pub const DEFAULT_CAPACITY: usize = 100;
/// Flume's default `transactionCapacity`.
pub const DEFAULT_TRANSACTION_CAPACITY: usize = 100;
/// Flume's default `keep-alive`, in seconds.
pub const DEFAULT_KEEP_ALIVE_SECS: u64 = 3;
/// Flume's default `byteCapacityBufferPercentage`.
pub const DEFAULT_BYTE_CAPACITY_BUFFER_PERCENTAGE: u64 = 20;
/// Flume's "unlimited" byte capacity when `byteCapacity = 0` (about 200 GB in Flume).
const UNLIMITED_BYTES: u64 = 200 * 1024 * 1024 * 1024;

/// The resolved configuration of a memory channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryChannelConfig {
    /// `capacity`: most events held (queued + taken, uncommitted).
    pub capacity: usize,
    /// `transactionCapacity`: most events in one put or take.
    pub transaction_capacity: usize,
    /// `keep-alive` (seconds): how long a put waits for room.
    pub keep_alive: Duration,
    /// `byteCapacity` (bytes of bodies). Default: a fifth of the machine's memory (Flume uses
    /// 80% of the JVM heap, which Flumen does not have); 0 means unlimited, as in Flume.
    pub byte_capacity: u64,
    /// `byteCapacityBufferPercentage`: share of byteCapacity kept free for headers.
    pub byte_capacity_buffer_percentage: u64,
}

impl Default for MemoryChannelConfig {
    fn default() -> Self {
        MemoryChannelConfig {
            capacity: DEFAULT_CAPACITY,
            transaction_capacity: DEFAULT_TRANSACTION_CAPACITY,
            keep_alive: Duration::from_secs(DEFAULT_KEEP_ALIVE_SECS),
            byte_capacity: default_byte_capacity(),
            byte_capacity_buffer_percentage: DEFAULT_BYTE_CAPACITY_BUFFER_PERCENTAGE,
        }
    }
}

impl MemoryChannelConfig {
    /// Reads Flume's memory-channel keys. `None` when Flume would drop the channel.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let d = MemoryChannelConfig::default();
        let capacity = r.number("capacity", d.capacity, 1, usize::MAX / 2)?;
        let transaction_capacity = r.number(
            "transactionCapacity",
            d.transaction_capacity,
            1,
            usize::MAX / 2,
        )?;
        let keep_alive_secs = r.number("keep-alive", DEFAULT_KEEP_ALIVE_SECS, 0, 86_400 * 365)?;
        let byte_capacity = r.number("byteCapacity", d.byte_capacity, 0, u64::MAX / 2)?;
        let byte_capacity_buffer_percentage = r.number(
            "byteCapacityBufferPercentage",
            DEFAULT_BYTE_CAPACITY_BUFFER_PERCENTAGE,
            0,
            100,
        )?;
        // Flume refuses (and drops) a channel whose transactions could exceed its capacity.
        super::transaction_fits(r, transaction_capacity, capacity)?;
        Some(MemoryChannelConfig {
            capacity,
            transaction_capacity,
            keep_alive: Duration::from_secs(keep_alive_secs),
            byte_capacity,
            byte_capacity_buffer_percentage,
        })
    }

    /// Body bytes the channel admits: byteCapacity less the buffer share.
    fn byte_limit(&self) -> u64 {
        let total = if self.byte_capacity == 0 {
            UNLIMITED_BYTES
        } else {
            self.byte_capacity
        };
        total / 100 * (100 - self.byte_capacity_buffer_percentage.min(100))
    }
}

/// A fifth of the memory this process may use ([`crate::memory_limit`]: physical memory, or its
/// cgroup's limit when that is smaller), or 1 GiB when neither can be read. Flume's default is
/// 80% of the JVM heap, which Flumen does not have.
pub fn default_byte_capacity() -> u64 {
    crate::memory_limit::process_memory_limit()
        .map(|t| t / 5)
        .unwrap_or(1 << 30)
}

struct State {
    queue: BatchQueue,
    /// Events taken by open transactions.
    in_flight: usize,
    /// Body bytes of queued plus in-flight events.
    bytes: u64,
    closed: bool,
}

/// The limits a reload may change while the channel runs (read once per batch).
struct Limits {
    capacity: AtomicUsize,
    transaction_capacity: AtomicUsize,
    byte_limit: AtomicU64,
    keep_alive_ms: AtomicU64,
}

impl Limits {
    fn of(config: &MemoryChannelConfig) -> Limits {
        let limits = Limits {
            capacity: AtomicUsize::new(0),
            transaction_capacity: AtomicUsize::new(0),
            byte_limit: AtomicU64::new(0),
            keep_alive_ms: AtomicU64::new(0),
        };
        limits.set(config);
        limits
    }

    fn set(&self, config: &MemoryChannelConfig) {
        self.capacity.store(config.capacity, Relaxed);
        self.transaction_capacity
            .store(config.transaction_capacity, Relaxed);
        self.byte_limit.store(config.byte_limit(), Relaxed);
        self.keep_alive_ms
            .store(config.keep_alive.as_millis() as u64, Relaxed);
    }

    fn capacity(&self) -> usize {
        self.capacity.load(Relaxed)
    }

    fn transaction_capacity(&self) -> usize {
        self.transaction_capacity.load(Relaxed)
    }

    fn byte_limit(&self) -> u64 {
        self.byte_limit.load(Relaxed)
    }
}

struct Inner {
    name: String,
    /// The configuration as last applied (for `describe`).
    config: Mutex<MemoryChannelConfig>,
    limits: Limits,
    state: Mutex<State>,
    /// Woken when room is freed (commit of a take).
    space: Notify,
    /// Woken when events are queued (put, rollback).
    data: Notify,
    counters: ChannelCounters,
}

/// The memory channel.
#[derive(Clone)]
pub struct MemoryChannel {
    inner: Arc<Inner>,
}

impl MemoryChannel {
    /// A channel named `name` with `config`.
    pub fn new(name: &str, config: MemoryChannelConfig) -> Self {
        let counters = Arc::new(ChannelCounter::default());
        counters.capacity.set(config.capacity as i64);
        MemoryChannel {
            inner: Arc::new(Inner {
                name: name.to_string(),
                limits: Limits::of(&config),
                config: Mutex::new(config),
                state: Mutex::new(State {
                    queue: BatchQueue::new(),
                    in_flight: 0,
                    bytes: 0,
                    closed: false,
                }),
                space: Notify::new(),
                data: Notify::new(),
                counters,
            }),
        }
    }

    /// The configuration as last applied.
    pub fn config(&self) -> MemoryChannelConfig {
        self.inner
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies `config` in place, keeping every event (a hot reload). Waiting puts retry
    /// against the new limits.
    pub fn resize(&self, config: &MemoryChannelConfig) {
        let inner = &self.inner;
        {
            // Under the state lock, so a put that re-reads the limits under it sees one set.
            let _state = inner.lock();
            inner.limits.set(config);
        }
        inner.counters.capacity.set(config.capacity as i64);
        *inner.config.lock().unwrap_or_else(|p| p.into_inner()) = config.clone();
        inner.space.notify_waiters();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic while holding it; the queue itself is still consistent
        // because no code path panics between two mutations.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues the batch if it fits now; gives it back otherwise.
    fn try_put(&self, events: Vec<Event>, bytes: u64) -> Result<(), Vec<Event>> {
        let mut s = self.lock();
        let held = s.queue.len() + s.in_flight;
        if held + events.len() > self.limits.capacity()
            || s.bytes + bytes > self.limits.byte_limit()
        {
            return Err(events);
        }
        s.bytes += bytes;
        s.queue.push_back(events);
        self.counters.size.set(s.queue.len() as i64);
        let held = (s.queue.len() + s.in_flight) as i64;
        if held > self.counters.peak_held.get() {
            self.counters.peak_held.set(held);
        }
        Ok(())
    }
}

struct MemoryTake {
    inner: Arc<Inner>,
    bytes: u64,
}

#[async_trait]
impl TakeTxn for MemoryTake {
    async fn commit(self: Box<Self>, events: Vec<Event>) -> Result<(), ChannelError> {
        let n = events.len();
        {
            let mut s = self.inner.lock();
            s.in_flight -= n;
            s.bytes -= self.bytes;
        }
        drop(events);
        self.inner.counters.take_success.add(n as u64);
        self.inner.space.notify_waiters();
        Ok(())
    }

    fn rollback(self: Box<Self>, events: Vec<Event>) {
        let n = events.len();
        {
            let mut s = self.inner.lock();
            s.in_flight -= n;
            s.queue.push_front(events);
            self.inner.counters.size.set(s.queue.len() as i64);
        }
        self.inner.data.notify_waiters();
        self.inner.space.notify_waiters();
    }
}

#[async_trait]
impl Channel for MemoryChannel {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn type_name(&self) -> &'static str {
        "memory"
    }

    fn transaction_capacity(&self) -> usize {
        self.inner.limits.transaction_capacity()
    }

    fn len(&self) -> usize {
        self.inner.lock().queue.len()
    }

    fn pending(&self) -> usize {
        let s = self.inner.lock();
        s.queue.len() + s.in_flight
    }

    async fn put(&self, events: Vec<Event>) -> Result<(), ChannelError> {
        let inner = &self.inner;
        let n = events.len();
        inner.counters.put_attempt.add(n as u64);
        if n == 0 {
            return Ok(());
        }
        let bytes: u64 = events.iter().map(|e| e.body_len() as u64).sum();
        let limits = &inner.limits;
        if n > limits.transaction_capacity() || n > limits.capacity() || bytes > limits.byte_limit()
        {
            // Rare: decide under the state lock, where a resize writes the limits together.
            let _state = inner.lock();
            if n > limits.transaction_capacity() {
                return Err(ChannelError::BatchTooLarge {
                    channel: inner.name.clone(),
                    size: n,
                    capacity: limits.transaction_capacity(),
                });
            }
            if n > limits.capacity() || bytes > limits.byte_limit() {
                let reason = if n > limits.capacity() {
                    "capacity"
                } else {
                    "byteCapacity"
                };
                return Err(ChannelError::NeverFits {
                    channel: inner.name.clone(),
                    size: n,
                    bytes: bytes as usize,
                    reason,
                });
            }
        }
        let deadline = Instant::now() + Duration::from_millis(limits.keep_alive_ms.load(Relaxed));
        let mut events = events;
        loop {
            let notified = inner.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if inner.lock().closed {
                return Err(ChannelError::Closed {
                    channel: inner.name.clone(),
                });
            }
            match inner.try_put(events, bytes) {
                Ok(()) => {
                    inner.counters.put_success.add(n as u64);
                    inner.data.notify_waiters();
                    return Ok(());
                }
                Err(back) => events = back,
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(ChannelError::Full {
                    channel: inner.name.clone(),
                    events,
                });
            }
        }
    }

    async fn take(&self, max: usize) -> Result<Take, ChannelError> {
        let inner = &self.inner;
        let max = max.min(inner.limits.transaction_capacity());
        let events = {
            let mut s = inner.lock();
            let events = s.queue.take(max);
            if events.is_empty() {
                return Ok(Take::empty());
            }
            s.in_flight += events.len();
            inner.counters.size.set(s.queue.len() as i64);
            events
        };
        let bytes: u64 = events.iter().map(|e| e.body_len() as u64).sum();
        inner.counters.take_attempt.add(events.len() as u64);
        Ok(Take::new(
            events,
            Box::new(MemoryTake {
                inner: inner.clone(),
                bytes,
            }),
        ))
    }

    async fn wait_for_events(&self, timeout: Duration) {
        let notified = self.inner.data.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.inner.lock().queue.is_empty() {
            return;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
    }

    fn counters(&self) -> &ChannelCounters {
        &self.inner.counters
    }

    fn reload_hooks(&self) -> Option<&dyn Reconfigure> {
        Some(self)
    }

    fn describe(&self) -> String {
        let c = self.config();
        format!(
            "capacity={} transactionCapacity={} keep-alive={}s byteCapacity={} byteCapacityBufferPercentage={}",
            c.capacity,
            c.transaction_capacity,
            c.keep_alive.as_secs(),
            c.byte_capacity,
            c.byte_capacity_buffer_percentage
        )
    }

    async fn stop(&self) {
        self.inner.lock().closed = true;
        self.inner.space.notify_waiters();
    }
}

/// A memory channel takes a changed `capacity`, `transactionCapacity`, `keep-alive` or
/// `byteCapacity` in place, keeping its events.
impl Reconfigure for MemoryChannel {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn can_reconfigure(&self, replacement: &dyn Channel) -> bool {
        replacement
            .reload_hooks()
            .is_some_and(|r| r.as_any().is::<MemoryChannel>())
    }

    fn reconfigure(&self, replacement: &dyn Channel) {
        let new = replacement
            .reload_hooks()
            .and_then(|r| r.as_any().downcast_ref::<MemoryChannel>());
        if let Some(new) = new {
            self.resize(&new.config());
        }
    }
}
