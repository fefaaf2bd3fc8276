//! Per-component counters with Flume's names.
//!
//! Counters are plain atomics updated once per batch, never per event. Their names are the JMX
//! attribute names of Flume's `SourceCounter`, `ChannelCounter` and `SinkCounter`, which are
//! also the keys of Flume's JSON monitoring endpoint.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (open connections, channel size).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Adds `n` (may be negative).
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Which of Flume's counter classes a component reports: the kind's standard set, or the file
/// channel's (`FileChannelCounter`: the put, take and checkpoint error counts, `Open` and
/// `Unhealthy`), which the spillable memory channel shares, as it does in Flume.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CounterSet {
    /// The kind's standard counters.
    #[default]
    Standard,
    /// `FileChannelCounter`.
    FileChannel,
    /// The Kafka components' counters (`KafkaSourceCounter`, `KafkaChannelCounter`,
    /// `KafkaSinkCounter`): the kind's standard set plus [`KafkaCounter`]'s.
    Kafka,
}

/// What Flume's Kafka counter classes add: timers in milliseconds summed over batches, and
/// counts. Each Kafka component reports the ones its Flume class has.
#[derive(Debug, Default)]
pub struct KafkaCounter {
    /// KafkaEventGetTimer: time spent polling the broker for records.
    pub event_get_timer: Counter,
    /// KafkaEventSendTimer: time spent sending records until the broker acknowledged them.
    pub event_send_timer: Counter,
    /// KafkaCommitTimer: time spent committing consumer offsets.
    pub commit_timer: Counter,
    /// KafkaEmptyCount: polls that returned no record.
    pub empty: Counter,
    /// RollbackCount (sink) / RollbackCounter (channel): transactions rolled back.
    pub rollback: Counter,
}

/// Start and stop times in milliseconds since the epoch (Flume's `StartTime`, `StopTime`).
#[derive(Debug, Default)]
pub struct Lifetime {
    start: AtomicU64,
    stop: AtomicU64,
}

impl Lifetime {
    /// Records the start now.
    pub fn started(&self) {
        self.start.store(now_millis(), Ordering::Relaxed);
    }
    /// Records the stop now.
    pub fn stopped(&self) {
        self.stop.store(now_millis(), Ordering::Relaxed);
    }
    /// `(StartTime, StopTime)`.
    pub fn times(&self) -> (u64, u64) {
        (
            self.start.load(Ordering::Relaxed),
            self.stop.load(Ordering::Relaxed),
        )
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Flume's `SourceCounter`.
#[derive(Debug, Default)]
pub struct SourceCounter {
    /// StartTime / StopTime.
    pub lifetime: Lifetime,
    /// EventReceivedCount: events the source read.
    pub event_received: Counter,
    /// EventAcceptedCount: events committed to the channel(s).
    pub event_accepted: Counter,
    /// AppendBatchReceivedCount.
    pub append_batch_received: Counter,
    /// AppendBatchAcceptedCount.
    pub append_batch_accepted: Counter,
    /// OpenConnectionCount.
    pub open_connections: Gauge,
    /// EventReadFail: input the source could not turn into events.
    pub event_read_fail: Counter,
    /// ChannelWriteFail: channel puts that failed (full channel, ...).
    pub channel_write_fail: Counter,
    /// GenericProcessingFail.
    pub generic_processing_fail: Counter,
    /// Events interceptors removed on purpose (Flumen's EventFilteredCount).
    pub event_filtered: Counter,
    /// Bad events sent to the dead-letter channel (Flumen's EventDeadLetteredCount).
    pub event_dead_lettered: Counter,
    /// The Kafka source's counters.
    pub kafka: KafkaCounter,
}

/// Flume's `ChannelCounter`.
#[derive(Debug, Default)]
pub struct ChannelCounter {
    /// StartTime / StopTime.
    pub lifetime: Lifetime,
    /// EventPutAttemptCount.
    pub put_attempt: Counter,
    /// EventPutSuccessCount.
    pub put_success: Counter,
    /// EventTakeAttemptCount.
    pub take_attempt: Counter,
    /// EventTakeSuccessCount.
    pub take_success: Counter,
    /// ChannelSize.
    pub size: Gauge,
    /// ChannelCapacity.
    pub capacity: Gauge,
    /// Most events the channel ever held at once (queued plus taken, uncommitted); Flumen's
    /// own, reported at shutdown.
    pub peak_held: Gauge,
    /// EventPutErrorCount (file channel): puts that failed on a disk error.
    pub put_error: Counter,
    /// EventTakeErrorCount (file channel): takes or take commits that failed on a disk error
    /// or met a damaged event.
    pub take_error: Counter,
    /// CheckpointWriteErrorCount (file channel).
    pub checkpoint_write_error: Counter,
    /// CheckpointBackupWriteErrorCount (file channel).
    pub checkpoint_backup_write_error: Counter,
    /// Unhealthy (file channel): 1 while the channel is reopening after an I/O error.
    pub unhealthy: Gauge,
    /// The Kafka channel's counters.
    pub kafka: KafkaCounter,
}

impl ChannelCounter {
    /// ChannelFillPercentage as Flume computes it (size / capacity × 100).
    pub fn fill_percentage(&self) -> f64 {
        let capacity = self.capacity.get();
        if capacity == 0 {
            return f64::MAX;
        }
        self.size.get() as f64 * 100.0 / capacity as f64
    }
}

/// Flume's `SinkCounter`.
#[derive(Debug, Default)]
pub struct SinkCounter {
    /// StartTime / StopTime.
    pub lifetime: Lifetime,
    /// ConnectionCreatedCount (files opened, for file sinks).
    pub connection_created: Counter,
    /// ConnectionClosedCount.
    pub connection_closed: Counter,
    /// ConnectionFailedCount.
    pub connection_failed: Counter,
    /// BatchEmptyCount.
    pub batch_empty: Counter,
    /// BatchUnderflowCount.
    pub batch_underflow: Counter,
    /// BatchCompleteCount.
    pub batch_complete: Counter,
    /// EventDrainAttemptCount.
    pub drain_attempt: Counter,
    /// EventDrainSuccessCount.
    pub drain_success: Counter,
    /// EventWriteFail.
    pub event_write_fail: Counter,
    /// ChannelReadFail.
    pub channel_read_fail: Counter,
    /// Events a sink-side chain removed on purpose (Flumen's EventFilteredCount).
    pub event_filtered: Counter,
    /// Bad events sent to the dead-letter channel (Flumen's EventDeadLetteredCount).
    pub event_dead_lettered: Counter,
    /// The Kafka sink's counters.
    pub kafka: KafkaCounter,
}

/// Shared handle types.
pub type SourceCounters = Arc<SourceCounter>;
/// Shared handle types.
pub type ChannelCounters = Arc<ChannelCounter>;
/// Shared handle types.
pub type SinkCounters = Arc<SinkCounter>;
