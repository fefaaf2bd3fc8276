//! Every source, channel and sink Apache Flume 1.11 ships, implemented by Flumen or not: its
//! alias, class, batch key and the keys without which its `configure` throws.
//!
//! Flume's rules about a component depend on these facts even when Flumen cannot run it:
//! a sink whose batch exceeds its channel's `transactionCapacity` is dropped by Flume
//! (`AbstractConfigurationProvider.checkSinkChannelCompatibility`, for classes implementing
//! `BatchSizeSupported` only), and an avro source without `port` is dropped by Flume too. Such
//! a component is not something Flumen lacks: Flume would not run it either. Facts are from
//! Flume's source at tag `release-1.11.0-rc2` (file named per row).

use crate::config::{ComponentKind, Props};

/// What `configure` does with a batch size below 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonPositive {
    /// Kept as written (it never exceeds a transactionCapacity).
    Kept,
    /// Rejected: `configure` throws (`Preconditions.checkArgument(batchSize > 0)`).
    Rejected,
    /// Zero is rejected, a negative value replaced by the default (the Hive sink).
    ZeroRejected,
}

/// How a component reads its batch size (it implements Flume's `BatchSizeSupported`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchKey {
    /// The property (`batchSize`, `hdfs.batchSize`, `batch-size`, ...).
    pub key: &'static str,
    /// Flume's default.
    pub default: u64,
    /// A deprecated key read when `key` is absent (the Kafka sink's `batchSize`).
    pub fallback: Option<&'static str>,
    /// A value that is not a number (or below 1) falls back to the default instead of failing
    /// (`AbstractRpcClient.parseBatchSize` for the avro and thrift sinks).
    pub lenient: bool,
    /// What a value below 1 does.
    pub non_positive: NonPositive,
}

/// A configure-time rule beyond required keys and numbers: `Some((key, why))` when Flume's
/// `configure` throws on these properties.
pub type Check = fn(&Props) -> Option<(&'static str, String)>;

/// One Flume 1.11 component.
#[derive(Debug)]
pub struct Builtin {
    /// Source, channel or sink.
    pub kind: ComponentKind,
    /// The short type name (`SourceType`, `ChannelType`, `SinkType`), when there is one.
    pub alias: Option<&'static str>,
    /// The Java class.
    pub class: &'static str,
    /// The batch key, when the class implements `BatchSizeSupported`.
    pub batch: Option<BatchKey>,
    /// The default `transactionCapacity`, when the channel class implements
    /// `TransactionCapacitySupported`.
    pub transaction_capacity: Option<u64>,
    /// Keys `configure` requires: each inner list holds alternatives, one of which must be set
    /// and not empty.
    pub required: &'static [&'static [&'static str]],
    /// Keys `configure` parses as whole numbers (`Context.getInteger`/`getLong`: anything else
    /// throws `NumberFormatException`).
    pub numbers: &'static [&'static str],
    /// Other rules `configure` enforces.
    pub check: Option<Check>,
    /// Why Flume 1.11 itself no longer has this type, when it does not.
    pub removed: Option<&'static str>,
}

/// A batch size as Flume would read it for a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchSize {
    /// The value and the key it came from (or the default's key).
    Value(u64, &'static str),
    /// A value Flume's `configure` fails on, and why.
    Invalid(&'static str, String),
}

impl Builtin {
    const fn new(kind: ComponentKind, alias: Option<&'static str>, class: &'static str) -> Self {
        Builtin {
            kind,
            alias,
            class,
            batch: None,
            transaction_capacity: None,
            required: &[],
            numbers: &[],
            check: None,
            removed: None,
        }
    }

    const fn batch(mut self, key: &'static str, default: u64, non_positive: NonPositive) -> Self {
        self.batch = Some(BatchKey {
            key,
            default,
            fallback: None,
            lenient: false,
            non_positive,
        });
        self
    }

    const fn requires(mut self, required: &'static [&'static [&'static str]]) -> Self {
        self.required = required;
        self
    }

    const fn numbers(mut self, numbers: &'static [&'static str]) -> Self {
        self.numbers = numbers;
        self
    }

    const fn check(mut self, check: Check) -> Self {
        self.check = Some(check);
        self
    }

    const fn transactions(mut self, default: u64) -> Self {
        self.transaction_capacity = Some(default);
        self
    }

    const fn removed(mut self, why: &'static str) -> Self {
        self.removed = Some(why);
        self
    }

    /// The batch size Flume would check against the channel's `transactionCapacity`, or
    /// `None` when this class is not `BatchSizeSupported`.
    pub fn batch_size(&self, props: &Props) -> Option<BatchSize> {
        let b = self.batch?;
        let (key, prop) = match (props.get(b.key), b.fallback) {
            (Some(p), _) => (b.key, Some(p)),
            (None, Some(old)) => (old, props.get(old)),
            (None, None) => (b.key, None),
        };
        let Some(prop) = prop else {
            return Some(BatchSize::Value(b.default, b.key));
        };
        let written = prop.value.trim();
        let default = BatchSize::Value(b.default, key);
        let invalid = |why: &str| BatchSize::Invalid(key, format!("`{written}` {why}"));
        Some(match written.parse::<i64>() {
            Ok(v) if v >= 1 => BatchSize::Value(v as u64, key),
            _ if b.lenient => default,
            Ok(v) => match (b.non_positive, v) {
                (NonPositive::Kept, _) => BatchSize::Value(0, key),
                (NonPositive::ZeroRejected, v) if v < 0 => default,
                _ => invalid("is not greater than 0"),
            },
            Err(_) => invalid("is not a whole number"),
        })
    }

    /// The transactionCapacity Flume would give this channel, when it has one.
    pub fn channel_capacity(&self, props: &Props) -> Option<u64> {
        let default = self.transaction_capacity?;
        let written = props.get("transactionCapacity");
        Some(
            written
                .and_then(|p| p.value.trim().parse::<u64>().ok())
                .filter(|&v| v > 0)
                .unwrap_or(default),
        )
    }

    /// Why Flume's `configure` of this built-in would fail on `props`, beyond required keys:
    /// `(key, why)` per problem.
    pub fn configure_failures(&self, props: &Props) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for &key in self.numbers {
            if let Some(p) = props.get(key) {
                if p.value.trim().parse::<i64>().is_err() {
                    out.push((key, format!("`{}` is not a whole number", p.value.trim())));
                }
            }
        }
        if let Some(BatchSize::Invalid(key, why)) = self.batch_size(props) {
            out.push((key, why));
        }
        out.extend(self.check.and_then(|check| check(props)));
        out
    }

    /// The name to show: the alias, or else the class.
    pub fn name(&self) -> &'static str {
        self.alias.unwrap_or(self.class)
    }
}

/// Resolves a `type` value among Flume's built-ins: aliases case-insensitively (Flume's
/// `valueOf(type.toUpperCase())`), classes exactly (`Class.forName`).
pub fn find(kind: ComponentKind, type_name: &str) -> Option<&'static Builtin> {
    let t = type_name.trim();
    BUILTINS.iter().find(|b| {
        b.kind == kind && (b.alias.is_some_and(|a| a.eq_ignore_ascii_case(t)) || b.class == t)
    })
}

/// A built-in class written with other letter case (`...hdfs.HdfsEventSink`): Java's class
/// loader is case-sensitive, so Flume cannot load it. Returns the class as spelled.
pub fn misspelt_class(kind: ComponentKind, type_name: &str) -> Option<&'static str> {
    let t = type_name.trim();
    BUILTINS
        .iter()
        .find(|b| b.kind == kind && b.class != t && b.class.eq_ignore_ascii_case(t))
        .map(|b| b.class)
}

/// The aliases of a kind, for "did you mean".
pub fn aliases(kind: ComponentKind) -> impl Iterator<Item = &'static str> + Clone {
    BUILTINS
        .iter()
        .filter(move |b| b.kind == kind)
        .filter_map(|b| b.alias)
}

/// `HDFSEventSink.configure`: a `DataStream` takes no codec, a `CompressedStream` needs one,
/// and with `hdfs.round` the `hdfs.roundValue` is a whole number.
fn hdfs_rules(props: &Props) -> Option<(&'static str, String)> {
    let value = |k: &str| props.get(k).map(|p| p.value.trim().to_string());
    let file_type = value("hdfs.fileType").unwrap_or_else(|| "SequenceFile".into());
    let codec = value("hdfs.codeC").filter(|c| !c.is_empty());
    if file_type.eq_ignore_ascii_case("DataStream") && codec.is_some() {
        return Some((
            "hdfs.codeC",
            "a codec is set while `hdfs.fileType = DataStream` does not support compressed output"
                .into(),
        ));
    }
    if file_type.eq_ignore_ascii_case("CompressedStream") && codec.is_none() {
        return Some((
            "hdfs.codeC",
            "no codec is set while `hdfs.fileType = CompressedStream` needs one".into(),
        ));
    }
    let round = value("hdfs.round").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let round_value = value("hdfs.roundValue");
    if let Some(v) = round_value.filter(|v| round && v.parse::<i64>().is_err()) {
        return Some(("hdfs.roundValue", format!("`{v}` is not a whole number")));
    }
    None
}

/// `JMSSource.configure`: `destinationType` is QUEUE or TOPIC.
fn jms_rules(props: &Props) -> Option<(&'static str, String)> {
    let t = props.get("destinationType")?.value.trim();
    let known = ["QUEUE", "TOPIC"].iter().any(|k| k.eq_ignore_ascii_case(t));
    (!known).then(|| {
        (
            "destinationType",
            format!("`{t}` is neither QUEUE nor TOPIC"),
        )
    })
}

/// `MultiportSyslogTCPSource.configure`: every entry of `ports` is a whole number.
fn multiport_rules(props: &Props) -> Option<(&'static str, String)> {
    let ports = props.get("ports")?;
    let bad = ports
        .value
        .split_whitespace()
        .find(|p| p.parse::<i32>().is_err())?;
    Some(("ports", format!("`{bad}` is not a port number")))
}

use ComponentKind::{Channel, Sink, Source};
use NonPositive::{Kept, Rejected, ZeroRejected};

const RPC_BATCH: BatchKey = BatchKey {
    key: "batch-size",
    default: 100,
    fallback: None,
    lenient: true,
    non_positive: Kept,
};

const fn rpc_sink(alias: &'static str, class: &'static str) -> Builtin {
    let mut b = Builtin::new(Sink, Some(alias), class)
        .requires(&[&["hostname"], &["port"]])
        .numbers(&["port", "reset-connection-interval"]);
    b.batch = Some(RPC_BATCH);
    b
}

const HDFS_NUMBERS: &[&str] = &[
    "hdfs.rollInterval",
    "hdfs.rollSize",
    "hdfs.rollCount",
    "hdfs.idleTimeout",
    "hdfs.maxOpenFiles",
    "hdfs.callTimeout",
    "hdfs.threadsPoolSize",
    "hdfs.rollTimerPoolSize",
    "hdfs.closeTries",
    "hdfs.retryInterval",
];

/// Flume 1.11's components. Paths are relative to Flume's repository; `core/` is
/// `flume-ng-core/src/main/java/org/apache/flume/`.
#[rustfmt::skip]
pub static BUILTINS: &[Builtin] = &[
    // core/source/SequenceGeneratorSource.java: batchSize 1, > 0.
    Builtin::new(Source, Some("seq"), "org.apache.flume.source.SequenceGeneratorSource")
        .batch("batchSize", 1, Rejected).numbers(&["totalEvents"]),
    // core/source/NetcatSource.java: ensureRequiredNonNull(bind, port).
    Builtin::new(Source, Some("netcat"), "org.apache.flume.source.NetcatSource")
        .requires(&[&["bind"], &["port"]]).numbers(&["port", "max-line-length"]),
    // core/source/NetcatUdpSource.java: ensureRequiredNonNull(port).
    Builtin::new(Source, Some("netcatudp"), "org.apache.flume.source.NetcatUdpSource")
        .requires(&[&["port"]]).numbers(&["port"]),
    // core/source/ExecSource.java: command required; batchSize 20
    // (ExecSourceConfigurationConstants).
    Builtin::new(Source, Some("exec"), "org.apache.flume.source.ExecSource")
        .batch("batchSize", 20, Kept).requires(&[&["command"]])
        .numbers(&["restartThrottle", "batchTimeout"]),
    // core/source/AvroSource.java: ensureRequiredNonNull(port, bind).
    Builtin::new(Source, Some("avro"), "org.apache.flume.source.AvroSource")
        .requires(&[&["port"], &["bind"]]).numbers(&["port"]),
    // core/source/ThriftSource.java: checkNotNull(port), checkNotNull(bind).
    Builtin::new(Source, Some("thrift"), "org.apache.flume.source.ThriftSource")
        .requires(&[&["port"], &["bind"]]).numbers(&["port"]),
    // core/source/SyslogTcpSource.java: ensureRequiredNonNull(port).
    Builtin::new(Source, Some("syslogtcp"), "org.apache.flume.source.SyslogTcpSource")
        .requires(&[&["port"]]).numbers(&["port", "eventSize"]),
    // core/source/MultiportSyslogTCPSource.java: ports required, each a number; batchSize 100.
    Builtin::new(Source, Some("multiport_syslogtcp"), "org.apache.flume.source.MultiportSyslogTCPSource")
        .batch("batchSize", 100, Kept).requires(&[&["ports"]])
        .numbers(&["numProcessors", "eventSize", "readBufferBytes"]).check(multiport_rules),
    // core/source/SyslogUDPSource.java: ensureRequiredNonNull(port).
    Builtin::new(Source, Some("syslogudp"), "org.apache.flume.source.SyslogUDPSource")
        .requires(&[&["port"]]).numbers(&["port"]),
    // core/source/SpoolDirectorySource.java: spoolDir required; batchSize 100.
    Builtin::new(Source, Some("spooldir"), "org.apache.flume.source.SpoolDirectorySource")
        .batch("batchSize", 100, Kept).requires(&[&["spoolDir"]]),
    // core/source/http/HTTPSource.java: port required.
    Builtin::new(Source, Some("http"), "org.apache.flume.source.http.HTTPSource")
        .requires(&[&["port"]]).numbers(&["port"]),
    // flume-ng-sources/flume-jms-source/.../JMSSource.java: four keys required; batchSize 100,
    // > 0.
    Builtin::new(Source, Some("jms"), "org.apache.flume.source.jms.JMSSource")
        .batch("batchSize", 100, Rejected)
        .requires(&[&["initialContextFactory"], &["providerURL"], &["destinationName"], &["destinationType"]])
        .check(jms_rules),
    // flume-ng-sources/flume-taildir-source/.../TaildirSource.java: filegroups; batchSize 100.
    Builtin::new(Source, Some("TAILDIR"), "org.apache.flume.source.taildir.TaildirSource")
        .batch("batchSize", 100, Kept).requires(&[&["filegroups"]]),
    // flume-ng-sources/flume-kafka-source/.../KafkaSource.java: a topic and the bootstrap
    // servers (or the deprecated zookeeperConnect); batchSize 1000.
    Builtin::new(Source, None, "org.apache.flume.source.kafka.KafkaSource")
        .batch("batchSize", 1000, Kept)
        .requires(&[&["kafka.topics.regex", "kafka.topics", "topic"], &["kafka.bootstrap.servers", "zookeeperConnect"]]),
    // flume-ng-sources/flume-twitter-source/.../TwitterSource.java: maxBatchSize 1000 (its
    // credentials are checked by twitter4j, not by Flume).
    Builtin::new(Source, None, "org.apache.flume.source.twitter.TwitterSource")
        .batch("maxBatchSize", 1000, Kept).numbers(&["maxBatchDurationMillis"]),
    // core/source/StressSource.java: batchSize 1.
    Builtin::new(Source, None, "org.apache.flume.source.StressSource")
        .batch("batchSize", 1, Kept)
        .numbers(&["size", "maxTotalEvents", "maxSuccessfulEvents", "maxEventsPerSecond"]),
    // flume-ng-sources/flume-scribe-source/.../ScribeSource.java.
    Builtin::new(Source, None, "org.apache.flume.source.scribe.ScribeSource")
        .numbers(&["port", "maxReadBufferBytes", "workerThreads"]),
    // flume-ng-legacy-sources/...: Integer.parseInt(port).
    Builtin::new(Source, None, "org.apache.flume.source.avroLegacy.AvroLegacySource")
        .requires(&[&["port"]]).numbers(&["port"]),
    Builtin::new(Source, None, "org.apache.flume.source.thriftLegacy.ThriftLegacySource")
        .requires(&[&["port"]]).numbers(&["port"]),

    // core/channel/MemoryChannel.java (transactionCapacity 100; bad numbers fall back to the
    // defaults); flume-file-channel/.../FileChannel.java (10000); SpillableMemoryChannel
    // extends FileChannel.
    Builtin::new(Channel, Some("memory"), "org.apache.flume.channel.MemoryChannel").transactions(100),
    Builtin::new(Channel, Some("file"), "org.apache.flume.channel.file.FileChannel")
        .transactions(10_000)
        .numbers(&["capacity", "keep-alive", "transactionCapacity", "checkpointInterval", "maxFileSize", "minimumRequiredSpace", "fsyncInterval"]),
    Builtin::new(Channel, Some("spillablememory"), "org.apache.flume.channel.SpillableMemoryChannel").transactions(10_000),
    Builtin::new(Channel, Some("jdbc"), "org.apache.flume.channel.jdbc.JdbcChannel"),
    // flume-ng-channels/flume-kafka-channel/.../KafkaChannel.java: bootstrap servers required.
    Builtin::new(Channel, None, "org.apache.flume.channel.kafka.KafkaChannel")
        .requires(&[&["kafka.bootstrap.servers", "brokerList"]])
        .numbers(&["defaultPartitionId", "kafka.pollTimeout"]),
    Builtin::new(Channel, None, "org.apache.flume.channel.PseudoTxnMemoryChannel")
        .numbers(&["capacity", "keep-alive"]),

    // core/sink/NullSink.java: batchSize 100, > 0.
    Builtin::new(Sink, Some("null"), "org.apache.flume.sink.NullSink")
        .batch("batchSize", 100, Rejected).numbers(&["logEveryNEvents"]),
    // core/sink/LoggerSink.java: not BatchSizeSupported; one event per transaction.
    Builtin::new(Sink, Some("logger"), "org.apache.flume.sink.LoggerSink"),
    // core/sink/RollingFileSink.java: sink.directory required; sink.batchSize 100.
    Builtin::new(Sink, Some("file_roll"), "org.apache.flume.sink.RollingFileSink")
        .batch("sink.batchSize", 100, Kept).requires(&[&["sink.directory"]])
        .numbers(&["sink.rollInterval"]),
    // core/sink/AbstractRpcSink.java: hostname and port required; batch-size 100, parsed
    // leniently by AbstractRpcClient.parseBatchSize.
    rpc_sink("avro", "org.apache.flume.sink.AvroSink"),
    rpc_sink("thrift", "org.apache.flume.sink.ThriftSink"),
    // flume-ng-sinks/flume-hdfs-sink/.../HDFSEventSink.java: hdfs.path; hdfs.batchSize 100, > 0.
    Builtin::new(Sink, Some("hdfs"), "org.apache.flume.sink.hdfs.HDFSEventSink")
        .batch("hdfs.batchSize", 100, Rejected).requires(&[&["hdfs.path"]])
        .numbers(HDFS_NUMBERS).check(hdfs_rules),
    // flume-ng-sinks/flume-hive-sink/.../HiveSink.java: batchSize 15000 (0 rejected, a
    // negative value reset to the default).
    Builtin::new(Sink, Some("hive"), "org.apache.flume.sink.hive.HiveSink")
        .batch("batchSize", 15_000, ZeroRejected)
        .requires(&[&["hive.metastore"], &["hive.database"], &["hive.table"], &["serializer"]]),
    // flume-ng-sinks/flume-ng-hbase-sink, flume-ng-hbase2-sink: table, columnFamily; batchSize 100.
    Builtin::new(Sink, Some("hbase"), "org.apache.flume.sink.hbase.HBaseSink")
        .batch("batchSize", 100, Kept).requires(&[&["table"], &["columnFamily"]]),
    Builtin::new(Sink, Some("asynchbase"), "org.apache.flume.sink.hbase.AsyncHBaseSink")
        .batch("batchSize", 100, Kept).requires(&[&["table"], &["columnFamily"]])
        .numbers(&["timeout", "maxConsecutiveFails"]),
    Builtin::new(Sink, Some("hbase2"), "org.apache.flume.sink.hbase2.HBase2Sink")
        .batch("batchSize", 100, Kept).requires(&[&["table"], &["columnFamily"]]),
    // flume-ng-sinks/flume-ng-morphline-solr-sink/.../MorphlineSink.java: batchSize 1000; the
    // Solr sink extends it.
    Builtin::new(Sink, Some("morphline_solr"), "org.apache.flume.sink.solr.morphline.MorphlineSolrSink")
        .batch("batchSize", 1000, Kept).numbers(&["batchDurationMillis"]),
    Builtin::new(Sink, None, "org.apache.flume.sink.solr.morphline.MorphlineSink")
        .batch("batchSize", 1000, Kept).numbers(&["batchDurationMillis"]),
    // flume-ng-sinks/flume-http-sink/.../HttpSink.java: not BatchSizeSupported.
    Builtin::new(Sink, Some("http"), "org.apache.flume.sink.http.HttpSink")
        .requires(&[&["endpoint"]]).numbers(&["connectTimeout", "requestTimeout"]),
    // flume-ng-sinks/flume-irc-sink/.../IRCSink.java.
    Builtin::new(Sink, Some("irc"), "org.apache.flume.sink.irc.IRCSink")
        .requires(&[&["hostname"], &["nick"], &["chan"]]).numbers(&["port"]),
    // flume-ng-sinks/flume-ng-kafka-sink/.../KafkaSink.java: flumeBatchSize 100, the
    // deprecated batchSize when it is absent; bootstrap servers (or brokerList) required.
    kafka_sink(),
    // flume-ng-sinks/flume-ng-kudu-sink/.../KuduSink.java: reads batchSize but is not
    // BatchSizeSupported, so Flume never checks it against the channel.
    Builtin::new(Sink, None, "org.apache.flume.sink.kudu.KuduSink")
        .requires(&[&["masterAddresses"], &["tableName"]]).numbers(&["batchSize"]),
    // Gone from Flume 1.10.0 on; the alias `elasticsearch` is still in SinkType, so Flume
    // 1.11 fails to load it and starts nothing unless the separately released jar is added.
    Builtin::new(Sink, Some("elasticsearch"), "org.apache.flume.sink.elasticsearch.ElasticSearchSink")
        .batch("batchSize", 100, Kept)
        .removed("Flume 1.10.0 moved the Elasticsearch sink out of Flume (FLUME-3414, FLUME-3417): Flume 1.11 runs it only from a separately installed plugin jar"),
    Builtin::new(Sink, None, "org.apache.flume.sink.kite.DatasetSink")
        .batch("kite.batchSize", 100, Kept)
        .removed("Flume 1.10.0 removed the Kite Dataset sink (FLUME-3401): Flume 1.11 runs it only from an old plugin jar"),
];

const fn kafka_sink() -> Builtin {
    let mut b = Builtin::new(Sink, None, "org.apache.flume.sink.kafka.KafkaSink")
        .requires(&[&["kafka.bootstrap.servers", "brokerList"]])
        .numbers(&["defaultPartitionId"]);
    b.batch = Some(BatchKey {
        key: "flumeBatchSize",
        default: 100,
        fallback: Some("batchSize"),
        lenient: false,
        non_positive: Kept,
    });
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(entries: &[(&str, &str)]) -> Props {
        Props::from_pairs("t.properties", "a1.sinks.k1", entries)
    }

    #[test]
    fn aliases_resolve_case_insensitively_and_classes_exactly() {
        assert_eq!(
            find(Sink, "HDFS").map(|b| b.class),
            Some("org.apache.flume.sink.hdfs.HDFSEventSink")
        );
        assert!(find(Sink, "org.apache.flume.sink.hdfs.hdfseventsink").is_none());
        assert!(find(Source, "taildir").is_some());
        assert!(find(Source, "hdfs").is_none());
    }

    #[test]
    fn the_table_agrees_with_the_readers_flumen_implements() {
        let default = |kind, t| find(kind, t).and_then(|b| b.batch).map(|b| b.default);
        assert_eq!(
            default(Source, "exec"),
            Some(crate::source::exec::DEFAULT_BATCH_SIZE as u64)
        );
        assert_eq!(
            default(Source, "taildir"),
            Some(crate::source::taildir::config::DEFAULT_BATCH_SIZE as u64)
        );
        assert_eq!(
            default(Source, "spooldir"),
            Some(crate::source::spooldir::config::DEFAULT_BATCH_SIZE as u64)
        );
        assert_eq!(
            default(Sink, "null"),
            Some(crate::sink::null::DEFAULT_BATCH_SIZE as u64)
        );
        assert_eq!(
            default(Sink, "file_roll"),
            Some(crate::sink::file_roll::DEFAULT_BATCH_SIZE as u64)
        );
        // Every implemented type is a Flume built-in of the table.
        for e in crate::registry::ENTRIES {
            assert!(e.builtin().is_some(), "{} is missing", e.alias);
        }
    }

    #[test]
    fn the_logger_sink_has_no_batch_size() {
        let logger = find(Sink, "logger").map(|b| b.batch_size(&props(&[("batchSize", "5000")])));
        assert_eq!(logger, Some(None));
    }

    #[test]
    fn the_kafka_sink_reads_the_deprecated_batch_size_only_without_the_new_one() {
        let kafka = find(Sink, "org.apache.flume.sink.kafka.KafkaSink").map(|b| {
            (
                b.batch_size(&props(&[("batchSize", "500")])),
                b.batch_size(&props(&[("batchSize", "500"), ("flumeBatchSize", "50")])),
                b.batch_size(&props(&[])),
            )
        });
        assert_eq!(
            kafka,
            Some((
                Some(BatchSize::Value(500, "batchSize")),
                Some(BatchSize::Value(50, "flumeBatchSize")),
                Some(BatchSize::Value(100, "flumeBatchSize")),
            ))
        );
    }

    #[test]
    fn rpc_sinks_fall_back_to_the_default_on_a_bad_batch_size_others_fail() {
        let avro = find(Sink, "avro").and_then(|b| b.batch_size(&props(&[("batch-size", "x")])));
        assert_eq!(avro, Some(BatchSize::Value(100, "batch-size")));
        let hdfs = find(Sink, "hdfs");
        let batch = |v| hdfs.and_then(|b| b.batch_size(&props(&[("hdfs.batchSize", v)])));
        assert!(matches!(
            batch("x"),
            Some(BatchSize::Invalid("hdfs.batchSize", _))
        ));
        assert!(matches!(
            batch("0"),
            Some(BatchSize::Invalid("hdfs.batchSize", _))
        ));
        let hive = find(Sink, "hive").and_then(|b| b.batch_size(&props(&[("batchSize", "-5")])));
        assert_eq!(hive, Some(BatchSize::Value(15_000, "batchSize")));
    }

    #[test]
    fn configure_failures_cover_numbers_and_rules() {
        let hdfs = find(Sink, "hdfs").map(|b| {
            b.configure_failures(&props(&[
                ("hdfs.rollInterval", "30s"),
                ("hdfs.fileType", "DataStream"),
                ("hdfs.codeC", "snappy"),
            ]))
        });
        let keys: Vec<&str> = hdfs.iter().flatten().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["hdfs.rollInterval", "hdfs.codeC"]);
        assert_eq!(
            misspelt_class(Sink, "org.apache.flume.sink.hdfs.HdfsEventSink"),
            Some("org.apache.flume.sink.hdfs.HDFSEventSink")
        );
    }
}
