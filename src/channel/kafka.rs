//! `org.apache.flume.channel.kafka.KafkaChannel`: a Kafka topic as the channel. A put
//! produces the batch and returns once the broker acknowledged every record (`acks = all`,
//! as Flume's channel producer); a take reads records and commits their offsets only when the
//! take commits.
//!
//! Keys, as Flume 1.11 reads them: `kafka.bootstrap.servers` (deprecated `brokerList`),
//! `kafka.topic` (`flume-channel`; deprecated `topic`), `kafka.consumer.group.id` (`flume`;
//! deprecated `groupId`), `parseAsFlumeEvent` (true: each record a bare `AvroFlumeEvent`
//! datum, so headers survive), `kafka.pollTimeout` (500 ms; the user guide's `pollTimeout` is
//! read too, with a finding), `defaultPartitionId`, `partitionIdHeader`, the `key` header as
//! the record key, and `kafka.producer.*` / `kafka.consumer.*` pass-through. The consumer
//! starts from the earliest offset of a new group (`auto.offset.reset = earliest`, as Flume's
//! code sets it; its user guide says latest).
//!
//! Transactions: Kafka has no "take back", so a rolled-back take's records wait in memory at
//! the head of the channel and come again; their offsets stay uncommitted until a take that
//! holds them commits ([`OffsetTracker`]), so a kill loses nothing: the records are read again
//! from the last committed offset. A put that fails part-way may have written some records;
//! the source puts the batch again (at-least-once, duplicates possible, as with Flume).
//!
//! With `parseAsFlumeEvent`, a record that is not an `AvroFlumeEvent` (another producer wrote
//! to the topic) is handed on as its raw bytes with a `flumen.error.reason` header and counted
//! in `EventTakeErrorCount`, so it is neither lost nor able to stop the channel; Flume's
//! channel fails the take on it for ever.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::{Channel, ChannelError, Take, TakeTxn};
use crate::config::{Finding, FindingKind, PropReader};
use crate::event::Event;
use crate::kafka::context::TracingContext;
use crate::kafka::offsets::{OffsetTracker, Position};
use crate::kafka::{self, ClientSettings, Role};
use crate::metrics::ChannelCounters;

/// Flume's default topic.
pub const DEFAULT_TOPIC: &str = "flume-channel";
/// Flume's default `kafka.pollTimeout`, in milliseconds.
pub const DEFAULT_POLL_TIMEOUT_MS: u64 = 500;
/// Most events one put or take holds (Flume's Kafka channel has no transactionCapacity).
const TRANSACTION_CAPACITY: usize = 1 << 20;

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct KafkaChannelConfig {
    /// librdkafka producer settings.
    pub producer: ClientSettings,
    /// librdkafka consumer settings.
    pub consumer: ClientSettings,
    /// `kafka.topic`.
    pub topic: String,
    /// `parseAsFlumeEvent`.
    pub parse_as_flume_event: bool,
    /// `kafka.pollTimeout`.
    pub poll_timeout: Duration,
    /// `defaultPartitionId`.
    pub default_partition: Option<i32>,
    /// `partitionIdHeader`.
    pub partition_header: Option<String>,
}

impl KafkaChannelConfig {
    /// Reads Flume's Kafka channel keys; `None` when Flume would drop the channel.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let servers = kafka::bootstrap_servers(r, &["brokerList"]);
        let topic = kafka::topic(r, DEFAULT_TOPIC);
        let mut producer = kafka::pass_through(r, Role::Producer);
        let mut consumer = kafka::pass_through(r, Role::Consumer);
        let group = consumer
            .get("group.id")
            .map(str::to_string)
            .or_else(|| kafka::deprecated(r, "groupId", "kafka.consumer.group.id"))
            .unwrap_or_else(|| "flume".into());
        let parse_as_flume_event = r.bool("parseAsFlumeEvent", true);
        let poll_timeout = poll_timeout(r);
        let partitions = kafka::partition_keys(r);
        let _ = r.raw("migrateZookeeperOffsets");
        if let Some(prop) = r.raw("zookeeperConnect") {
            r.push(Finding::new(
                FindingKind::IgnoredKey,
                Some(prop.origin.clone()),
                prop.full_key.clone(),
                "Migrating consumer offsets from ZooKeeper is not supported; the offsets Kafka keeps for the group are used.",
            ));
        }
        if r.is_fatal() {
            return None;
        }
        let (default_partition, partition_header) = partitions?;
        let servers = servers?;
        producer.set_default("acks", "all");
        kafka::java_producer_defaults(&mut producer);
        producer.set("bootstrap.servers", servers.clone());
        consumer.set_default("auto.offset.reset", "earliest");
        consumer.set("bootstrap.servers", servers);
        consumer.set("group.id", group);
        consumer.set("enable.auto.commit", "false");
        consumer.set("enable.auto.offset.store", "false");
        Some(KafkaChannelConfig {
            producer,
            consumer,
            topic,
            parse_as_flume_event,
            poll_timeout: poll_timeout?,
            default_partition,
            partition_header,
        })
    }
}

/// `kafka.pollTimeout`, or the user guide's `pollTimeout` (which Flume's code does not read;
/// Flumen reads it and says so).
fn poll_timeout(r: &mut PropReader<'_>) -> Option<Duration> {
    let key = match (r.raw("kafka.pollTimeout"), r.raw("pollTimeout")) {
        (None, Some(prop)) => {
            r.push(Finding::new(
                FindingKind::Deprecated,
                Some(prop.origin.clone()),
                prop.full_key.clone(),
                "Flume's code reads `kafka.pollTimeout`, not the user guide's `pollTimeout`; Flumen reads it as `kafka.pollTimeout`. Rename it.",
            ));
            "pollTimeout"
        }
        _ => "kafka.pollTimeout",
    };
    r.number(key, DEFAULT_POLL_TIMEOUT_MS, 1, 3_600_000)
        .map(Duration::from_millis)
}

/// Records read and not taken (rolled-back ones first), and the offsets not yet committed.
#[derive(Default)]
struct State {
    buffer: VecDeque<(Event, Option<Position>)>,
    tracker: OffsetTracker,
}

/// The Kafka channel.
pub struct KafkaChannel {
    name: String,
    config: KafkaChannelConfig,
    counters: ChannelCounters,
    /// Made when the channel starts.
    producer: OnceLock<FutureProducer<TracingContext>>,
    /// Made and subscribed on the first take: a channel no sink of this agent drains (a
    /// producer for other programs) must not join the consumer group and hold partitions.
    consumer: tokio::sync::OnceCell<Arc<StreamConsumer<TracingContext>>>,
    state: Arc<Mutex<State>>,
    /// One poller at a time, so records enter the buffer in the order they were read.
    poller: tokio::sync::Mutex<()>,
}

impl KafkaChannel {
    /// A channel named `name`; it connects when it starts.
    pub fn new(name: &str, config: KafkaChannelConfig) -> Self {
        KafkaChannel {
            name: name.to_string(),
            config,
            counters: ChannelCounters::default(),
            producer: OnceLock::new(),
            consumer: tokio::sync::OnceCell::new(),
            state: Arc::default(),
            poller: tokio::sync::Mutex::new(()),
        }
    }

    fn producer(&self) -> Result<&FutureProducer<TracingContext>, ChannelError> {
        self.producer.get().ok_or_else(|| ChannelError::Closed {
            channel: self.name.clone(),
        })
    }

    async fn consumer(&self) -> Result<&Arc<StreamConsumer<TracingContext>>, ChannelError> {
        self.consumer
            .get_or_try_init(|| async {
                let consumer: StreamConsumer<TracingContext> = self
                    .config
                    .consumer
                    .client_config()
                    .create_with_context(TracingContext::new(&self.name))
                    .map_err(|e| {
                        self.unavailable(format!("creating the Kafka consumer: {e}"), Vec::new())
                    })?;
                consumer
                    .subscribe(&[&self.config.topic])
                    .map_err(|e| self.unavailable(format!("subscribing: {e}"), Vec::new()))?;
                Ok(Arc::new(consumer))
            })
            .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn unavailable(&self, reason: String, events: Vec<Event>) -> ChannelError {
        ChannelError::Unavailable {
            channel: self.name.clone(),
            reason,
            events,
        }
    }

    /// A record as an event (see the module doc for records that are not events).
    fn event_of(&self, m: &BorrowedMessage<'_>) -> Event {
        let payload = Bytes::copy_from_slice(m.payload().unwrap_or_default());
        if !self.config.parse_as_flume_event {
            return Event::new(payload);
        }
        flumen_avro_rpc::events::decode_event(payload.clone()).unwrap_or_else(|error| {
            self.counters.take_error.inc();
            tracing::warn!(channel = %self.name, topic = m.topic(), partition = m.partition(), offset = m.offset(), %error, "Record is not an AvroFlumeEvent; passed on as raw bytes.");
            let mut event = Event::new(payload);
            event.headers.insert(
                crate::interceptor::ERROR_REASON_HEADER.into(),
                format!("not an AvroFlumeEvent: {error}").into(),
            );
            event
        })
    }

    fn buffer(&self, m: &BorrowedMessage<'_>) {
        let event = self.event_of(m);
        let mut s = self.lock();
        s.tracker.read(m.topic(), m.partition(), m.offset());
        let position = Position {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
        };
        s.buffer.push_back((event, Some(position)));
    }

    /// Moves records the consumer has ready into the buffer, without waiting, until it holds
    /// `want`.
    async fn read_ready(&self, want: usize) {
        let Ok(consumer) = self.consumer().await else {
            return;
        };
        let Ok(_poller) = self.poller.try_lock() else {
            return;
        };
        let started = Instant::now();
        while self.lock().buffer.len() < want {
            match consumer.recv().now_or_never() {
                Some(Ok(m)) => self.buffer(&m),
                Some(Err(error)) => {
                    tracing::warn!(channel = %self.name, %error, "Kafka poll failed.");
                    break;
                }
                None => break,
            }
        }
        self.counters
            .kafka
            .event_get_timer
            .add(started.elapsed().as_millis() as u64);
    }

    fn record<'a>(
        &self,
        event: &'a Event,
        topic: &'a str,
        payload: &'a [u8],
    ) -> FutureRecord<'a, [u8], [u8]> {
        let mut record = FutureRecord::to(topic).payload(payload);
        if let Some(key) = event.headers.get("key") {
            record = record.key(key.as_bytes());
        }
        let from_header = self
            .config
            .partition_header
            .as_ref()
            .and_then(|h| event.headers.get(h))
            .and_then(|v| v.trim().parse::<i32>().ok());
        if let Some(p) = from_header.or(self.config.default_partition) {
            record = record.partition(p);
        }
        record
    }
}

/// The open take: the offsets of its records.
struct KafkaTake {
    positions: Vec<Option<Position>>,
    state: Arc<Mutex<State>>,
    consumer: Arc<StreamConsumer<TracingContext>>,
    counters: ChannelCounters,
    channel: String,
}

#[async_trait]
impl TakeTxn for KafkaTake {
    async fn commit(self: Box<Self>, events: Vec<Event>) -> Result<(), ChannelError> {
        let n = events.len() as u64;
        drop(events);
        let to_commit = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            for p in self.positions.iter().flatten() {
                s.tracker.done(p);
            }
            s.tracker.to_commit()
        };
        self.counters.take_success.add(n);
        if to_commit.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition, next) in to_commit {
            let _ = list.add_partition_offset(&topic, partition, Offset::Offset(next));
        }
        let started = Instant::now();
        let consumer = self.consumer.clone();
        let done =
            tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync)).await;
        self.counters
            .kafka
            .commit_timer
            .add(started.elapsed().as_millis() as u64);
        if !matches!(done, Ok(Ok(()))) {
            // The records are done; a later commit moves the position past them, and until
            // then a restart reads them again (a duplicate, never a loss).
            tracing::warn!(channel = %self.channel, outcome = ?done.map(|r| r.err()), "Committing Kafka offsets failed; will retry with the next commit.");
        }
        Ok(())
    }

    fn rollback(self: Box<Self>, events: Vec<Event>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for pair in events.into_iter().zip(self.positions).rev() {
            s.buffer.push_front(pair);
        }
        self.counters.kafka.rollback.inc();
    }
}

#[async_trait]
impl Channel for KafkaChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn type_name(&self) -> &'static str {
        "org.apache.flume.channel.kafka.KafkaChannel"
    }

    fn transaction_capacity(&self) -> usize {
        TRANSACTION_CAPACITY
    }

    fn len(&self) -> usize {
        self.lock().buffer.len()
    }

    fn pending(&self) -> usize {
        self.lock().tracker.outstanding()
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn drained_elsewhere(&self) -> bool {
        true
    }

    async fn put(&self, events: Vec<Event>) -> Result<(), ChannelError> {
        let producer = self.producer()?;
        let n = events.len();
        self.counters.put_attempt.add(n as u64);
        let started = Instant::now();
        let mut acks = Vec::with_capacity(n);
        let mut payload = Vec::new();
        for event in &events {
            let body: &[u8] = if self.config.parse_as_flume_event {
                payload.clear();
                flumen_avro_rpc::events::encode_event(event, &mut payload);
                &payload
            } else {
                &event.body
            };
            let record = self.record(event, &self.config.topic, body);
            match producer.send_result(record) {
                Ok(ack) => acks.push(ack),
                Err((error, _)) => {
                    return Err(self.unavailable(format!("producing to Kafka: {error}"), events))
                }
            }
        }
        for ack in acks {
            match ack.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => {
                    return Err(
                        self.unavailable(format!("Kafka did not acknowledge: {error}"), events)
                    )
                }
                Err(_) => return Err(self.unavailable("the Kafka producer closed".into(), events)),
            }
        }
        self.counters
            .kafka
            .event_send_timer
            .add(started.elapsed().as_millis() as u64);
        self.counters.put_success.add(n as u64);
        Ok(())
    }

    async fn take(&self, max: usize) -> Result<Take, ChannelError> {
        let consumer = self.consumer().await?.clone();
        let max = max.min(TRANSACTION_CAPACITY);
        self.read_ready(max).await;
        let (events, positions): (Vec<Event>, Vec<Option<Position>>) = {
            let mut s = self.lock();
            let n = max.min(s.buffer.len());
            s.buffer.drain(..n).unzip()
        };
        if events.is_empty() {
            return Ok(Take::empty());
        }
        self.counters.take_attempt.add(events.len() as u64);
        crate::failpoint::crash_at("kafka-channel-after-take");
        Ok(Take::new(
            events,
            Box::new(KafkaTake {
                positions,
                state: self.state.clone(),
                consumer,
                counters: self.counters.clone(),
                channel: self.name.clone(),
            }),
        ))
    }

    async fn wait_for_events(&self, timeout: Duration) {
        if !self.lock().buffer.is_empty() {
            return;
        }
        let consumer = match self.consumer().await {
            Ok(consumer) => consumer,
            Err(error) => {
                tracing::warn!(channel = %self.name, %error, "Kafka consumer unavailable.");
                tokio::time::sleep(timeout).await;
                return;
            }
        };
        let _poller = self.poller.lock().await;
        if !self.lock().buffer.is_empty() {
            return;
        }
        let wait = timeout.min(self.config.poll_timeout);
        match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(Ok(m)) => self.buffer(&m),
            Ok(Err(error)) => tracing::warn!(channel = %self.name, %error, "Kafka poll failed."),
            Err(_) => {}
        }
    }

    fn counters(&self) -> &ChannelCounters {
        &self.counters
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "kafka.topic={} parseAsFlumeEvent={} kafka.pollTimeout={} producer: {} consumer: {}",
            c.topic,
            c.parse_as_flume_event,
            c.poll_timeout.as_millis(),
            c.producer.describe(),
            c.consumer.describe()
        )
    }

    async fn start(&self) -> Result<(), ChannelError> {
        let fail = |what: &str, e: rdkafka::error::KafkaError| {
            self.unavailable(format!("{what}: {e}"), Vec::new())
        };
        let producer: FutureProducer<TracingContext> = self
            .config
            .producer
            .client_config()
            .create_with_context(TracingContext::new(&self.name))
            .map_err(|e| fail("creating the Kafka producer", e))?;
        self.counters.lifetime.started();
        let _ = self.producer.set(producer);
        Ok(())
    }

    async fn stop(&self) {
        self.counters.lifetime.stopped();
    }
}
