//! Flume's `/metrics` JSON: `{"CHANNEL.c1": {"Type": "CHANNEL", "ChannelSize": "0", …}, …}`,
//! every value a string, keys as Flume's counters name them.

use serde_json::{Map, Value};

use super::{Component, Counters, View};

/// The whole document.
pub fn render(view: &View) -> Value {
    let mut doc = Map::new();
    for c in view.components.iter() {
        doc.insert(format!("{}.{}", c.kind(), c.name), Value::Object(fields(c)));
    }
    Value::Object(doc)
}

/// One component's `(key, value)` pairs, in Flume's names.
pub fn pairs(c: &Component) -> Vec<(&'static str, String)> {
    let (start, stop) = c.times();
    let mut v: Vec<(&'static str, String)> = vec![
        ("Type", c.kind().to_string()),
        ("StartTime", start.to_string()),
        ("StopTime", stop.to_string()),
    ];
    match &c.counters {
        Counters::Source(s) => v.extend([
            ("EventReceivedCount", s.event_received.get().to_string()),
            ("EventAcceptedCount", s.event_accepted.get().to_string()),
            // Flume's Avro-era single appends: Flumen's sources append in batches.
            ("AppendReceivedCount", "0".to_string()),
            ("AppendAcceptedCount", "0".to_string()),
            (
                "AppendBatchReceivedCount",
                s.append_batch_received.get().to_string(),
            ),
            (
                "AppendBatchAcceptedCount",
                s.append_batch_accepted.get().to_string(),
            ),
            ("OpenConnectionCount", s.open_connections.get().to_string()),
            ("EventReadFail", s.event_read_fail.get().to_string()),
            ("ChannelWriteFail", s.channel_write_fail.get().to_string()),
            (
                "GenericProcessingFail",
                s.generic_processing_fail.get().to_string(),
            ),
            ("EventFilteredCount", s.event_filtered.get().to_string()),
            (
                "EventDeadLetteredCount",
                s.event_dead_lettered.get().to_string(),
            ),
        ]),
        Counters::Channel(ch) => {
            let k = ch.counters();
            // Flume reports the live size; the gauge is kept per batch by the channel.
            let size = ch.len();
            let capacity = k.capacity.get();
            let fill = if capacity == 0 {
                f64::MAX
            } else {
                size as f64 * 100.0 / capacity as f64
            };
            v.extend([
                ("ChannelSize", size.to_string()),
                ("ChannelCapacity", capacity.to_string()),
                ("ChannelFillPercentage", java_double(fill)),
                ("EventPutAttemptCount", k.put_attempt.get().to_string()),
                ("EventPutSuccessCount", k.put_success.get().to_string()),
                ("EventTakeAttemptCount", k.take_attempt.get().to_string()),
                ("EventTakeSuccessCount", k.take_success.get().to_string()),
                ("ChannelPeakHeld", k.peak_held.get().to_string()),
            ]);
            if c.counter_set == crate::metrics::CounterSet::FileChannel {
                v.extend([
                    ("EventPutErrorCount", k.put_error.get().to_string()),
                    ("EventTakeErrorCount", k.take_error.get().to_string()),
                    (
                        "CheckpointWriteErrorCount",
                        k.checkpoint_write_error.get().to_string(),
                    ),
                    (
                        "CheckpointBackupWriteErrorCount",
                        k.checkpoint_backup_write_error.get().to_string(),
                    ),
                    ("Open", (c.is_running()).to_string()),
                    ("Unhealthy", k.unhealthy.get().to_string()),
                ]);
            }
        }
        Counters::Sink(s) => v.extend([
            (
                "ConnectionCreatedCount",
                s.connection_created.get().to_string(),
            ),
            (
                "ConnectionClosedCount",
                s.connection_closed.get().to_string(),
            ),
            (
                "ConnectionFailedCount",
                s.connection_failed.get().to_string(),
            ),
            ("BatchEmptyCount", s.batch_empty.get().to_string()),
            ("BatchUnderflowCount", s.batch_underflow.get().to_string()),
            ("BatchCompleteCount", s.batch_complete.get().to_string()),
            ("EventDrainAttemptCount", s.drain_attempt.get().to_string()),
            ("EventDrainSuccessCount", s.drain_success.get().to_string()),
            ("EventWriteFail", s.event_write_fail.get().to_string()),
            ("ChannelReadFail", s.channel_read_fail.get().to_string()),
            ("EventFilteredCount", s.event_filtered.get().to_string()),
            (
                "EventDeadLetteredCount",
                s.event_dead_lettered.get().to_string(),
            ),
        ]),
    }
    if c.counter_set == crate::metrics::CounterSet::Kafka {
        v.extend(kafka_pairs(c));
    }
    v
}

/// The Kafka counter classes' additions, per kind, in Flume's names.
fn kafka_pairs(c: &Component) -> Vec<(&'static str, String)> {
    let get = |k: &crate::metrics::Counter| k.get().to_string();
    match &c.counters {
        Counters::Source(s) => vec![
            ("KafkaEventGetTimer", get(&s.kafka.event_get_timer)),
            ("KafkaCommitTimer", get(&s.kafka.commit_timer)),
            ("KafkaEmptyCount", get(&s.kafka.empty)),
        ],
        Counters::Channel(ch) => {
            let k = &ch.counters().kafka;
            vec![
                ("KafkaEventGetTimer", get(&k.event_get_timer)),
                ("KafkaEventSendTimer", get(&k.event_send_timer)),
                ("KafkaCommitTimer", get(&k.commit_timer)),
                ("RollbackCounter", get(&k.rollback)),
            ]
        }
        Counters::Sink(s) => vec![
            ("KafkaEventSendTimer", get(&s.kafka.event_send_timer)),
            ("RollbackCount", get(&s.kafka.rollback)),
        ],
    }
}

fn fields(c: &Component) -> Map<String, Value> {
    pairs(c)
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect()
}

/// A double as Java's `String.valueOf(double)` writes the common cases (`0.0`, `12.5`).
fn java_double(x: f64) -> String {
    if x == f64::MAX {
        return "1.7976931348623157E308".to_string();
    }
    if x.fract() == 0.0 && x.abs() < 1e7 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_look_like_javas() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(100.0), "100.0");
        assert_eq!(java_double(12.5), "12.5");
    }
}
