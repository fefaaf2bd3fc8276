//! `org.apache.flume.sink.kafka.KafkaSink`: publishes each take to Kafka and commits it only
//! after the broker acknowledged every record of it.
//!
//! Keys, as Flume 1.11 reads them: `kafka.bootstrap.servers` (deprecated `brokerList`),
//! `kafka.topic` (`default-flume-topic`; deprecated `topic`), `flumeBatchSize` (100;
//! deprecated `batchSize`), `kafka.producer.acks` (1; deprecated `requiredAcks`),
//! `useFlumeEventFormat` (the event as a bare `AvroFlumeEvent` datum, headers and all),
//! `defaultPartitionId`, `partitionIdHeader`, `allowTopicOverride` (true) with `topicHeader`
//! (`topic`), `timestampHeader` (the record's timestamp) and `header.<flume>=<kafka>` (event
//! headers copied as record headers). The record key is the `key` header. With
//! `allowTopicOverride`, an event without the topic header goes to `kafka.topic` with
//! `%{header}` replaced by header values; without it, `kafka.topic` is used as written.
//! `kafka.producer.*` pass through to librdkafka ([`crate::kafka`]).
//!
//! A partition header that is not a number fails Flume's whole batch, for ever; Flumen logs it
//! and lets the partitioner place that record, so one bad header cannot stop the sink.
//!
//! Flumen's `concurrency` (default 1, Flume's one batch at a time) keeps that many takes in
//! flight, each acknowledged by the broker's acks for all its records.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use super::{Ack, Delivered, Delivery, Sink, SinkError};
use crate::config::PropReader;
use crate::event::Event;
use crate::kafka::context::TracingContext;
use crate::kafka::{self, ClientSettings, Role};
use crate::metrics::SinkCounters;
use crate::rate_limit::RateLimit;

/// Flume's default topic.
pub const DEFAULT_TOPIC: &str = "default-flume-topic";
/// Flume's default `flumeBatchSize`.
pub const DEFAULT_BATCH_SIZE: usize = 100;

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct KafkaSinkConfig {
    /// librdkafka producer settings.
    pub settings: ClientSettings,
    /// `kafka.topic`.
    pub topic: String,
    /// `flumeBatchSize`.
    pub batch_size: usize,
    /// `useFlumeEventFormat`.
    pub flume_event_format: bool,
    /// `defaultPartitionId`.
    pub default_partition: Option<i32>,
    /// `partitionIdHeader`.
    pub partition_header: Option<String>,
    /// `allowTopicOverride`.
    pub allow_topic_override: bool,
    /// `topicHeader`.
    pub topic_header: String,
    /// `timestampHeader`.
    pub timestamp_header: Option<String>,
    /// `header.<flume header> = <kafka header>`.
    pub header_map: Vec<(String, String)>,
    /// Flumen's `concurrency`.
    pub concurrency: usize,
}

impl KafkaSinkConfig {
    /// Reads Flume's Kafka sink keys; `None` when Flume would drop the sink.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let servers = kafka::bootstrap_servers(r, &["brokerList"]);
        let topic = kafka::topic(r, DEFAULT_TOPIC);
        let batch_size = match r.raw("flumeBatchSize") {
            Some(_) => r.number("flumeBatchSize", DEFAULT_BATCH_SIZE, 1, 1 << 20),
            None => match kafka::deprecated(r, "batchSize", "flumeBatchSize") {
                Some(_) => r.number("batchSize", DEFAULT_BATCH_SIZE, 1, 1 << 20),
                None => Some(DEFAULT_BATCH_SIZE),
            },
        };
        let mut settings = kafka::pass_through(r, Role::Producer);
        if settings.get("acks").is_none() {
            let acks = kafka::deprecated(r, "requiredAcks", "kafka.producer.acks");
            settings.set("acks", acks.unwrap_or_else(|| "1".into()));
        } else {
            r.mark_used("requiredAcks");
        }
        for old in ["serializer.class", "key.serializer.class"] {
            kafka::deprecated(r, old, "nothing: Flumen serializes records itself");
        }
        kafka::java_producer_defaults(&mut settings);
        let flume_event_format = r.bool("useFlumeEventFormat", false);
        let partitions = kafka::partition_keys(r);
        let allow_topic_override = r.bool("allowTopicOverride", true);
        let topic_header = r.string("topicHeader", "topic");
        let timestamp_header = r.opt_string("timestampHeader");
        let header_map = kafka::header_map(r);
        let concurrency = r.number("concurrency", 1usize, 1, 64);
        if r.is_fatal() {
            return None;
        }
        let (default_partition, partition_header) = partitions?;
        settings.set("bootstrap.servers", servers?);
        Some(KafkaSinkConfig {
            settings,
            topic,
            batch_size: batch_size?,
            flume_event_format,
            default_partition,
            partition_header,
            allow_topic_override,
            topic_header,
            timestamp_header,
            header_map,
            concurrency: concurrency?,
        })
    }
}

/// The Kafka sink.
pub struct KafkaSink {
    name: String,
    config: KafkaSinkConfig,
    producer: Option<FutureProducer<TracingContext>>,
    counters: Option<SinkCounters>,
    warnings: Arc<RateLimit>,
    scratch: Vec<u8>,
}

impl KafkaSink {
    /// A sink named `name`; its producer is created on the first delivery.
    pub fn new(name: &str, config: KafkaSinkConfig) -> Self {
        KafkaSink {
            name: name.to_string(),
            config,
            producer: None,
            counters: None,
            warnings: Arc::new(RateLimit::new(Duration::from_secs(5))),
            scratch: Vec::new(),
        }
    }

    fn producer(&mut self) -> Result<FutureProducer<TracingContext>, SinkError> {
        if let Some(p) = &self.producer {
            return Ok(p.clone());
        }
        let producer = self
            .config
            .settings
            .client_config()
            .create_with_context(TracingContext::new(&self.name))
            .map_err(|e| transport(&self.name, "creating the Kafka producer", e))?;
        self.producer = Some(producer);
        self.producer()
    }

    /// The partition an event asks for: the header's, else `defaultPartitionId`.
    fn partition_of(&self, event: &Event) -> Option<i32> {
        let c = &self.config;
        if let Some(value) = c
            .partition_header
            .as_ref()
            .and_then(|h| event.headers.get(h))
        {
            match value.trim().parse::<i32>() {
                Ok(p) => return Some(p),
                Err(_) => {
                    if let Some(suppressed) = self.warnings.check() {
                        tracing::warn!(sink = %self.name, value = %value, suppressed, "Partition header is not a number; the partitioner places this record.");
                    }
                }
            }
        }
        c.default_partition
    }

    fn timestamp_of(&self, event: &Event) -> Option<i64> {
        let header = self.config.timestamp_header.as_ref()?;
        let value = event.headers.get(header)?;
        match value.trim().parse::<i64>() {
            Ok(t) => Some(t),
            Err(_) => {
                tracing::warn!(sink = %self.name, %value, "Invalid timestamp in header {header}.");
                None
            }
        }
    }

    fn record_headers(&self, event: &Event) -> Option<OwnedHeaders> {
        let mut out: Option<OwnedHeaders> = None;
        for (flume, kafka_name) in &self.config.header_map {
            if let Some(value) = event.headers.get(flume) {
                out = Some(out.unwrap_or_default().insert(Header {
                    key: kafka_name,
                    value: Some(value.as_bytes()),
                }));
            }
        }
        out
    }

    /// Enqueues every record of the take; the futures complete with the broker's acks.
    async fn enqueue(&mut self, events: &[Event]) -> Result<Vec<DeliveryFuture>, SinkError> {
        let producer = self.producer()?;
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let topic = topic_of(&self.config, event);
            let payload: &[u8] = if self.config.flume_event_format {
                self.scratch.clear();
                let mut buf = std::mem::take(&mut self.scratch);
                flumen_avro_rpc::events::encode_event(event, &mut buf);
                self.scratch = buf;
                &self.scratch
            } else {
                &event.body
            };
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&topic).payload(payload);
            if let Some(key) = event.headers.get("key") {
                record = record.key(key.as_bytes());
            }
            if let Some(p) = self.partition_of(event) {
                record = record.partition(p);
            }
            if let Some(t) = self.timestamp_of(event) {
                record = record.timestamp(t);
            }
            if let Some(h) = self.record_headers(event) {
                record = record.headers(h);
            }
            acks.push(send_waiting_for_room(&producer, record, &self.name).await?);
        }
        Ok(acks)
    }
}

/// The topic an event goes to (borrowed: no allocation unless `%{header}` is substituted).
fn topic_of<'a>(c: &'a KafkaSinkConfig, event: &'a Event) -> Cow<'a, str> {
    if !c.allow_topic_override {
        return Cow::Borrowed(&c.topic);
    }
    match event.headers.get(&c.topic_header) {
        Some(t) => Cow::Borrowed(t.as_str()),
        None if c.topic.contains("%{") => {
            Cow::Owned(kafka::substitute_headers(&c.topic, &event.headers))
        }
        None => Cow::Borrowed(&c.topic),
    }
}

/// Enqueues one record, waiting while librdkafka's queue is full (its own backpressure).
async fn send_waiting_for_room<'a>(
    producer: &FutureProducer<TracingContext>,
    mut record: FutureRecord<'a, [u8], [u8]>,
    name: &str,
) -> Result<DeliveryFuture, SinkError> {
    loop {
        match producer.send_result(record) {
            Ok(ack) => return Ok(ack),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err((error, _)) => return Err(transport(name, "queueing a record", error)),
        }
    }
}

/// Waits for every ack of a take, in order.
async fn acknowledged(
    acks: Vec<DeliveryFuture>,
    name: &str,
    counters: Option<&SinkCounters>,
    started: Instant,
) -> Result<Delivered, SinkError> {
    let n = acks.len();
    for ack in acks {
        let outcome = match ack.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((error, _))) => Err(transport(name, "delivering a record", error)),
            Err(_) => Err(transport(name, "delivering a record", KafkaError::Canceled)),
        };
        if let Err(e) = outcome {
            if let Some(c) = counters {
                c.kafka.rollback.inc();
            }
            return Err(e);
        }
    }
    if let Some(c) = counters {
        c.kafka
            .event_send_timer
            .add(started.elapsed().as_millis() as u64);
    }
    Ok(Delivered::all(n))
}

fn transport(name: &str, what: &str, error: KafkaError) -> SinkError {
    SinkError::Transport {
        context: format!("kafka sink `{name}` {what}"),
        detail: error.to_string(),
        source: Box::new(error),
    }
}

#[async_trait]
impl Sink for KafkaSink {
    fn type_name(&self) -> &'static str {
        "org.apache.flume.sink.kafka.KafkaSink"
    }

    fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "kafka.topic={} flumeBatchSize={} useFlumeEventFormat={} allowTopicOverride={} topicHeader={} concurrency={} {}",
            c.topic,
            c.batch_size,
            c.flume_event_format,
            c.allow_topic_override,
            c.topic_header,
            c.concurrency,
            c.settings.describe()
        )
    }

    fn use_counters(&mut self, counters: &SinkCounters) {
        self.counters = Some(counters.clone());
    }

    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let started = Instant::now();
        let acks = self.enqueue(events).await?;
        acknowledged(acks, &self.name, self.counters.as_ref(), started).await?;
        Ok(())
    }

    async fn submit(&mut self, events: &[Event]) -> Result<Delivery, SinkError> {
        let started = Instant::now();
        let acks = self.enqueue(events).await?;
        if self.config.concurrency <= 1 {
            let delivered = acknowledged(acks, &self.name, self.counters.as_ref(), started).await?;
            return Ok(Delivery::Done(delivered));
        }
        let (name, counters) = (self.name.clone(), self.counters.clone());
        Ok(Delivery::Later(Ack::new(async move {
            acknowledged(acks, &name, counters.as_ref(), started).await
        })))
    }

    fn acks_in_flight(&self) -> usize {
        self.config.concurrency
    }

    async fn stop(&mut self) -> Result<(), SinkError> {
        if let Some(p) = self.producer.take() {
            // Everything delivered was acknowledged already; flush what a cancelled take left.
            let _ = tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(5))).await;
        }
        Ok(())
    }
}
