//! `org.apache.flume.source.kafka.KafkaSource`: reads records from Kafka topics in batches and
//! commits their offsets only after the batch is committed to the channels.
//!
//! Keys, as Flume 1.11 reads them: `kafka.bootstrap.servers`, `kafka.topics` (a comma list;
//! deprecated `topic`) or `kafka.topics.regex` (wins over the list), `kafka.consumer.group.id`
//! (`flume`; deprecated `groupId`), `batchSize` (1000), `batchDurationMillis` (1000),
//! `backoffSleepIncrement` and `maxBackoffSleep` (read; a poll that finds nothing already
//! waits for records), `useFlumeEventFormat` (each record a bare `AvroFlumeEvent` datum),
//! `setTopicHeader` (true) with `topicHeader` (`topic`), and `header.<flume>=<kafka>` (record
//! headers copied as event headers). Each event gets the headers Flume sets when absent:
//! `timestamp` (the record's), `topic`, `partition`, `offset`, and `key` (the record key).
//! `kafka.consumer.*` pass through to librdkafka ([`crate::kafka`]).
//!
//! A record that is not an `AvroFlumeEvent` under `useFlumeEventFormat` is bad input: it goes
//! to the source's `errorChannel` as its raw bytes, with the reason (Flume logs it and loses
//! it). Reading broker addresses or offsets from ZooKeeper (`zookeeperConnect`,
//! `migrateZookeeperOffsets`, Flume 0.9-era offsets) is not supported and is reported.
//!
//! At-least-once: a kill between the channel commit and the offset commit delivers the batch
//! again after the restart; nothing is committed that was not put. Flume commits each batch
//! synchronously before it polls again; Flumen keeps one commit in flight while it reads on,
//! and commits the batches put meanwhile together after it (the same guarantee, without a
//! broker round trip per batch).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::{Source, SourceContext, SourceError};
use crate::config::{Finding, FindingKind, PropReader};
use crate::event::{Event, Headers as EventHeaders};
use crate::interceptor::BadEvent;
use crate::kafka::context::TracingContext;
use crate::kafka::{self, ClientSettings, Role};

/// Flume's default `batchSize`.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// Flume's default `batchDurationMillis`.
pub const DEFAULT_BATCH_DURATION_MS: u64 = 1000;

/// What the source subscribes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topics {
    /// `kafka.topics`.
    List(Vec<String>),
    /// `kafka.topics.regex`: topics whose whole name matches.
    Regex(String),
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct KafkaSourceConfig {
    /// librdkafka consumer settings.
    pub settings: ClientSettings,
    /// The subscription.
    pub topics: Topics,
    /// `batchSize`.
    pub batch_size: usize,
    /// `batchDurationMillis`.
    pub batch_duration: Duration,
    /// `useFlumeEventFormat`.
    pub flume_event_format: bool,
    /// `setTopicHeader` ? `topicHeader`.
    pub topic_header: Option<String>,
    /// `header.<flume header> = <kafka header>`.
    pub header_map: Vec<(String, String)>,
}

impl KafkaSourceConfig {
    /// Reads Flume's Kafka source keys; `None` when Flume would drop it or Flumen lacks what
    /// it asks for.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let servers = match r
            .opt_string("kafka.bootstrap.servers")
            .filter(|s| !s.is_empty())
        {
            Some(s) => Some(s),
            None => zookeeper_only(r),
        };
        let topics = topics(r);
        let mut settings = kafka::pass_through(r, Role::Consumer);
        let group = settings
            .get("group.id")
            .map(str::to_string)
            .or_else(|| kafka::deprecated(r, "groupId", "kafka.consumer.group.id"))
            .unwrap_or_else(|| "flume".into());
        let batch_size = r.number("batchSize", DEFAULT_BATCH_SIZE, 1, 1 << 20);
        let duration = r.number(
            "batchDurationMillis",
            DEFAULT_BATCH_DURATION_MS,
            1,
            3_600_000,
        );
        let _ = r.number("backoffSleepIncrement", 1000u64, 0, u64::MAX);
        let _ = r.number("maxBackoffSleep", 5000u64, 0, u64::MAX);
        let flume_event_format = r.bool("useFlumeEventFormat", false);
        let set_topic_header = r.bool("setTopicHeader", true);
        let topic_header = r.string("topicHeader", "topic");
        let header_map = kafka::header_map(r);
        migrate_zookeeper_offsets(r);
        if r.is_fatal() || r.lacking().is_some() {
            return None;
        }
        settings.set("bootstrap.servers", servers?);
        settings.set("group.id", group);
        // Offsets are Flume's to commit, after the channel commit.
        settings.set("enable.auto.commit", "false");
        settings.set("enable.auto.offset.store", "false");
        Some(KafkaSourceConfig {
            settings,
            topics: topics?,
            batch_size: batch_size?,
            batch_duration: Duration::from_millis(duration?),
            flume_event_format,
            topic_header: set_topic_header.then_some(topic_header),
            header_map,
        })
    }
}

/// `kafka.topics.regex`, else `kafka.topics`, else the deprecated `topic`.
fn topics(r: &mut PropReader<'_>) -> Option<Topics> {
    if let Some(regex) = r.opt_string("kafka.topics.regex").filter(|s| !s.is_empty()) {
        r.mark_used("kafka.topics");
        return Some(Topics::Regex(regex));
    }
    let list = r
        .opt_string("kafka.topics")
        .filter(|s| !s.is_empty())
        .or_else(|| kafka::deprecated(r, "topic", "kafka.topics"));
    match list {
        Some(list) => Some(Topics::List(
            list.split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
        )),
        None => r
            .required_string("kafka.topics")
            .map(|_| Topics::List(Vec::new())),
    }
}

/// Flume reads the brokers from ZooKeeper when only `zookeeperConnect` is set; Flumen cannot.
fn zookeeper_only(r: &mut PropReader<'_>) -> Option<String> {
    let Some(prop) = r.raw("zookeeperConnect") else {
        return r.required_string("kafka.bootstrap.servers");
    };
    r.unsupported(
        "broker discovery through ZooKeeper (`zookeeperConnect`)",
        Finding::new(
            FindingKind::UnsupportedType,
            Some(prop.origin.clone()),
            prop.full_key.clone(),
            "Flume finds the brokers through ZooKeeper when only `zookeeperConnect` is set; Flumen cannot. Set `kafka.bootstrap.servers` to the brokers.",
        ),
    );
    None
}

/// `migrateZookeeperOffsets` only matters with offsets a Flume older than 1.7 kept in
/// ZooKeeper; Flumen uses the offsets Kafka keeps and says so when asked to migrate.
fn migrate_zookeeper_offsets(r: &mut PropReader<'_>) {
    let asked = r.raw("migrateZookeeperOffsets");
    let zookeeper = r.raw("zookeeperConnect").is_some();
    if let Some(prop) = asked.filter(|p| p.value.trim().eq_ignore_ascii_case("true") || zookeeper) {
        r.push(Finding::new(
            FindingKind::IgnoredKey,
            Some(prop.origin.clone()),
            prop.full_key.clone(),
            "Migrating consumer offsets from ZooKeeper is not supported; the offsets Kafka keeps for the group are used.",
        ));
    }
}

/// The Kafka source.
pub struct KafkaSource {
    config: KafkaSourceConfig,
}

impl KafkaSource {
    /// A source with `config`; it connects when it runs.
    pub fn new(config: KafkaSourceConfig) -> Self {
        KafkaSource { config }
    }

    fn consumer(&self, name: &str) -> Result<Arc<StreamConsumer<TracingContext>>, SourceError> {
        let consumer: StreamConsumer<TracingContext> = self
            .config
            .settings
            .client_config()
            .create_with_context(TracingContext::new(name))
            .map_err(|e| SourceError::Config(format!("creating the Kafka consumer: {e}")))?;
        let subscribed = match &self.config.topics {
            Topics::List(list) => {
                let names: Vec<&str> = list.iter().map(String::as_str).collect();
                consumer.subscribe(&names)
            }
            // librdkafka takes a name starting with `^` as a regex; Java's matches whole names.
            Topics::Regex(regex) => consumer.subscribe(&[&format!("^({regex})$")]),
        };
        subscribed.map_err(|e| SourceError::Config(format!("subscribing: {e}")))?;
        Ok(Arc::new(consumer))
    }

    /// A record as an event with Flume's headers into the batch, or into its bad events
    /// when it is not the format expected.
    fn read_into(&self, m: &BorrowedMessage<'_>, batch: &mut Batch) {
        let payload = Bytes::copy_from_slice(m.payload().unwrap_or_default());
        let mut event = if self.config.flume_event_format {
            match flumen_avro_rpc::events::decode_event(payload.clone()) {
                Ok(event) => event,
                Err(e) => {
                    batch.bad.push(BadEvent {
                        event: Event::new(payload),
                        reason: format!(
                            "record {}/{}@{} is not an AvroFlumeEvent (useFlumeEventFormat = true): {e}",
                            m.topic(),
                            m.partition(),
                            m.offset()
                        ),
                        stage: "useFlumeEventFormat".into(),
                    });
                    return;
                }
            }
        } else {
            Event::new(payload)
        };
        let h = &mut event.headers;
        if let Some(ts) = m.timestamp().to_millis() {
            insert_absent(h, "timestamp", &ts.to_string());
        }
        if let Some(headers) = m.headers() {
            for (flume, kafka_name) in &self.config.header_map {
                for header in headers.iter().filter(|x| x.key == kafka_name) {
                    let value = String::from_utf8_lossy(header.value.unwrap_or_default());
                    h.insert(flume.as_str().into(), value.as_ref().into());
                }
            }
        }
        if let Some(name) = &self.config.topic_header {
            insert_absent(h, name, m.topic());
        }
        insert_absent(h, "partition", &m.partition().to_string());
        insert_absent(h, "offset", &m.offset().to_string());
        if let Some(key) = m.key() {
            h.insert("key".into(), String::from_utf8_lossy(key).as_ref().into());
        }
        batch.events.push(event);
    }
}

fn insert_absent(h: &mut EventHeaders, key: &str, value: &str) {
    if h.get(key).is_none() {
        h.insert(key.into(), value.into());
    }
}

/// The next offset to read per partition, for the commit after the batch.
type Positions = HashMap<(String, i32), i64>;

/// One batch read from Kafka.
#[derive(Default)]
struct Batch {
    events: Vec<Event>,
    bad: Vec<BadEvent>,
    positions: Positions,
}

impl Batch {
    fn len(&self) -> usize {
        self.events.len() + self.bad.len()
    }
}

#[async_trait]
impl Source for KafkaSource {
    fn type_name(&self) -> &'static str {
        "org.apache.flume.source.kafka.KafkaSource"
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "topics={:?} batchSize={} batchDurationMillis={} useFlumeEventFormat={} topicHeader={:?} {}",
            c.topics,
            c.batch_size,
            c.batch_duration.as_millis(),
            c.flume_event_format,
            c.topic_header,
            c.settings.describe()
        )
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let consumer = self.consumer(&ctx.name)?;
        tracing::info!(source = %ctx.name, topics = ?self.config.topics, "Kafka source subscribed.");
        let mut committing: Option<tokio::task::JoinHandle<()>> = None;
        let mut uncommitted = Positions::new();
        while !ctx.shutdown.is_cancelled() {
            let started = Instant::now();
            let batch = self.read_batch(&consumer, &ctx).await;
            if batch.len() == 0 {
                ctx.counters.kafka.empty.inc();
                continue;
            }
            let k = &ctx.counters.kafka;
            k.event_get_timer.add(started.elapsed().as_millis() as u64);
            let n = batch.len() as u64;
            crate::failpoint::crash_at("kafka-source-after-poll");
            ctx.counters.event_received.add(n);
            ctx.counters.append_batch_received.inc();
            let put = ctx
                .processor
                .process_with_bad(batch.events, batch.bad, &ctx)
                .await;
            if put.is_err() {
                // Stopping: nothing was committed to Kafka, so the batch is read again.
                break;
            }
            ctx.counters.event_accepted.add(n);
            ctx.counters.append_batch_accepted.inc();
            crate::failpoint::crash_at("kafka-source-after-put");
            // One commit in flight while the next batches are read; batches committed to the
            // channels meanwhile are committed together after it. A commit covers only
            // records already in the channels, and a lost one only means a re-read.
            uncommitted.extend(batch.positions);
            if committing.as_ref().is_none_or(|c| c.is_finished()) {
                if let Some(previous) = committing.take() {
                    let _ = previous.await;
                }
                committing = Some(commit(&consumer, std::mem::take(&mut uncommitted), &ctx));
            }
        }
        if let Some(last) = committing {
            let _ = last.await;
        }
        if !uncommitted.is_empty() {
            let _ = commit(&consumer, uncommitted, &ctx).await;
        }
        drop(consumer);
        Ok(())
    }
}

impl KafkaSource {
    /// Reads until `batchSize` records or `batchDurationMillis` since the first poll.
    async fn read_batch(
        &self,
        consumer: &StreamConsumer<TracingContext>,
        ctx: &SourceContext,
    ) -> Batch {
        let deadline = tokio::time::Instant::now() + self.config.batch_duration;
        let mut batch = Batch::default();
        while batch.len() < self.config.batch_size {
            let received = tokio::select! {
                _ = ctx.shutdown.cancelled() => return Batch::default(),
                r = tokio::time::timeout_at(deadline, consumer.recv()) => r,
            };
            let message = match received {
                Err(_) => break,
                Ok(Ok(m)) => m,
                Ok(Err(error)) => {
                    ctx.counters.event_read_fail.inc();
                    tracing::warn!(source = %ctx.name, %error, "Kafka poll failed.");
                    break;
                }
            };
            batch.positions.insert(
                (message.topic().to_string(), message.partition()),
                message.offset() + 1,
            );
            self.read_into(&message, &mut batch);
        }
        batch
    }
}

/// Commits the next offsets of a committed batch on a blocking task (librdkafka's
/// synchronous commit blocks its thread), timed in `KafkaCommitTimer`. A failed commit is
/// logged: the batch is then read again after a restart or rebalance (a duplicate, never a
/// loss).
fn commit(
    consumer: &Arc<StreamConsumer<TracingContext>>,
    positions: Positions,
    ctx: &SourceContext,
) -> tokio::task::JoinHandle<()> {
    let (consumer, counters, name) = (consumer.clone(), ctx.counters.clone(), ctx.name.clone());
    tokio::task::spawn_blocking(move || {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), next) in &positions {
            if let Err(error) = list.add_partition_offset(topic, *partition, Offset::Offset(*next))
            {
                tracing::warn!(source = %name, %error, "Offset not committed.");
            }
        }
        let started = Instant::now();
        if let Err(error) = consumer.commit(&list, CommitMode::Sync) {
            tracing::warn!(source = %name, %error, "Committing Kafka offsets failed; the batch may be read again.");
        }
        counters
            .kafka
            .commit_timer
            .add(started.elapsed().as_millis() as u64);
    })
}
