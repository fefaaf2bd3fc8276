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

/// How a component reads its batch size (it implements Flume's `BatchSizeSupported`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchKey {
    /// The property (`batchSize`, `hdfs.batchSize`, `batch-size`, ...).
    pub key: &'static str,
    /// Flume's default.
    pub default: u64,
    /// A deprecated key read when `key` is absent (the Kafka sink's `batchSize`).
    pub fallback: Option<&'static str>,
    /// A value that is not a number falls back to the default instead of failing
    /// (`AbstractRpcClient.parseBatchSize` for the avro and thrift sinks).
    pub lenient: bool,
}

impl BatchKey {
    const fn new(key: &'static str, default: u64) -> Self {
        BatchKey {
            key,
            default,
            fallback: None,
            lenient: false,
        }
    }
}

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
    /// Keys `configure` requires: each inner list holds alternatives, one of which must be set
    /// and not empty.
    pub required: &'static [&'static [&'static str]],
    /// Why Flume 1.11 itself no longer has this type, when it does not.
    pub removed: Option<&'static str>,
}

/// A batch size as Flume would read it for a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchSize {
    /// The value and the key it came from (or the default's key).
    Value(u64, &'static str),
    /// A value Flume's `configure` fails on (not a number).
    Invalid(&'static str, String),
}

impl Builtin {
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
        // A number below 1 never exceeds a transactionCapacity; some classes reject it, which
        // their own readers report when Flumen implements them.
        match prop.value.trim().parse::<i64>() {
            Ok(v) => Some(BatchSize::Value(v.max(0) as u64, key)),
            Err(_) if b.lenient => Some(BatchSize::Value(b.default, key)),
            Err(_) => Some(BatchSize::Invalid(key, prop.value.trim().to_string())),
        }
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

/// The aliases of a kind, for "did you mean".
pub fn aliases(kind: ComponentKind) -> impl Iterator<Item = &'static str> + Clone {
    BUILTINS
        .iter()
        .filter(move |b| b.kind == kind)
        .filter_map(|b| b.alias)
}

const fn row(
    kind: ComponentKind,
    alias: Option<&'static str>,
    class: &'static str,
    batch: Option<BatchKey>,
    required: &'static [&'static [&'static str]],
) -> Builtin {
    Builtin {
        kind,
        alias,
        class,
        batch,
        required,
        removed: None,
    }
}

use ComponentKind::{Channel, Sink, Source};

const fn batch(key: &'static str, default: u64) -> Option<BatchKey> {
    Some(BatchKey::new(key, default))
}

/// Flume 1.11's components. Paths are relative to Flume's repository.
#[rustfmt::skip]
pub static BUILTINS: &[Builtin] = &[
    // flume-ng-core/.../source/SequenceGeneratorSource.java: batchSize 1.
    row(Source, Some("seq"), "org.apache.flume.source.SequenceGeneratorSource", batch("batchSize", 1), &[]),
    // .../source/NetcatSource.java: ensureRequiredNonNull(bind, port).
    row(Source, Some("netcat"), "org.apache.flume.source.NetcatSource", None, &[&["bind"], &["port"]]),
    // .../source/NetcatUdpSource.java: ensureRequiredNonNull(port).
    row(Source, Some("netcatudp"), "org.apache.flume.source.NetcatUdpSource", None, &[&["port"]]),
    // .../source/ExecSource.java: command required; ExecSourceConfigurationConstants batchSize 20.
    row(Source, Some("exec"), "org.apache.flume.source.ExecSource", batch("batchSize", 20), &[&["command"]]),
    // .../source/AvroSource.java: ensureRequiredNonNull(port, bind).
    row(Source, Some("avro"), "org.apache.flume.source.AvroSource", None, &[&["port"], &["bind"]]),
    // .../source/ThriftSource.java: checkNotNull(port), checkNotNull(bind).
    row(Source, Some("thrift"), "org.apache.flume.source.ThriftSource", None, &[&["port"], &["bind"]]),
    // .../source/SyslogTcpSource.java: ensureRequiredNonNull(port).
    row(Source, Some("syslogtcp"), "org.apache.flume.source.SyslogTcpSource", None, &[&["port"]]),
    // .../source/MultiportSyslogTCPSource.java: ports required; batchSize 100.
    row(Source, Some("multiport_syslogtcp"), "org.apache.flume.source.MultiportSyslogTCPSource", batch("batchSize", 100), &[&["ports"]]),
    // .../source/SyslogUDPSource.java: ensureRequiredNonNull(port).
    row(Source, Some("syslogudp"), "org.apache.flume.source.SyslogUDPSource", None, &[&["port"]]),
    // .../source/SpoolDirectorySource.java: spoolDir required; batchSize 100.
    row(Source, Some("spooldir"), "org.apache.flume.source.SpoolDirectorySource", batch("batchSize", 100), &[&["spoolDir"]]),
    // .../source/http/HTTPSource.java: port required.
    row(Source, Some("http"), "org.apache.flume.source.http.HTTPSource", None, &[&["port"]]),
    // flume-ng-sources/flume-jms-source/.../JMSSource.java: four keys required; batchSize 100.
    row(Source, Some("jms"), "org.apache.flume.source.jms.JMSSource", batch("batchSize", 100),
        &[&["initialContextFactory"], &["providerURL"], &["destinationName"], &["destinationType"]]),
    // flume-ng-sources/flume-taildir-source/.../TaildirSource.java: filegroups; batchSize 100.
    row(Source, Some("TAILDIR"), "org.apache.flume.source.taildir.TaildirSource", batch("batchSize", 100), &[&["filegroups"]]),
    // flume-ng-sources/flume-kafka-source/.../KafkaSource.java: a topic and the bootstrap
    // servers (or the deprecated zookeeperConnect); batchSize 1000.
    row(Source, None, "org.apache.flume.source.kafka.KafkaSource", batch("batchSize", 1000),
        &[&["kafka.topics.regex", "kafka.topics", "topic"], &["kafka.bootstrap.servers", "zookeeperConnect"]]),
    // flume-ng-sources/flume-twitter-source/.../TwitterSource.java: maxBatchSize 1000 (its
    // credentials are checked by twitter4j, not by Flume).
    row(Source, None, "org.apache.flume.source.twitter.TwitterSource", batch("maxBatchSize", 1000), &[]),
    // .../source/StressSource.java: batchSize 1.
    row(Source, None, "org.apache.flume.source.StressSource", batch("batchSize", 1), &[]),
    // flume-ng-sources/flume-scribe-source/.../ScribeSource.java.
    row(Source, None, "org.apache.flume.source.scribe.ScribeSource", None, &[]),
    // flume-ng-legacy-sources/...: Integer.parseInt(port).
    row(Source, None, "org.apache.flume.source.avroLegacy.AvroLegacySource", None, &[&["port"]]),
    row(Source, None, "org.apache.flume.source.thriftLegacy.ThriftLegacySource", None, &[&["port"]]),

    // .../channel/MemoryChannel.java, flume-file-channel/.../FileChannel.java, ...
    row(Channel, Some("memory"), "org.apache.flume.channel.MemoryChannel", None, &[]),
    row(Channel, Some("file"), "org.apache.flume.channel.file.FileChannel", None, &[]),
    row(Channel, Some("spillablememory"), "org.apache.flume.channel.SpillableMemoryChannel", None, &[]),
    row(Channel, Some("jdbc"), "org.apache.flume.channel.jdbc.JdbcChannel", None, &[]),
    // flume-ng-channels/flume-kafka-channel/.../KafkaChannel.java: bootstrap servers required.
    row(Channel, None, "org.apache.flume.channel.kafka.KafkaChannel", None, &[&["kafka.bootstrap.servers", "brokerList"]]),
    row(Channel, None, "org.apache.flume.channel.PseudoTxnMemoryChannel", None, &[]),

    // .../sink/NullSink.java: batchSize 100.
    row(Sink, Some("null"), "org.apache.flume.sink.NullSink", batch("batchSize", 100), &[]),
    // .../sink/LoggerSink.java: not BatchSizeSupported; one event per transaction.
    row(Sink, Some("logger"), "org.apache.flume.sink.LoggerSink", None, &[]),
    // .../sink/RollingFileSink.java: sink.directory required; sink.batchSize 100.
    row(Sink, Some("file_roll"), "org.apache.flume.sink.RollingFileSink", batch("sink.batchSize", 100), &[&["sink.directory"]]),
    // .../sink/AbstractRpcSink.java: hostname and port required; batch-size 100, parsed
    // leniently by AbstractRpcClient.parseBatchSize.
    row(Sink, Some("avro"), "org.apache.flume.sink.AvroSink", RPC_BATCH, &[&["hostname"], &["port"]]),
    row(Sink, Some("thrift"), "org.apache.flume.sink.ThriftSink", RPC_BATCH, &[&["hostname"], &["port"]]),
    // flume-ng-sinks/flume-hdfs-sink/.../HDFSEventSink.java: hdfs.path; hdfs.batchSize 100.
    row(Sink, Some("hdfs"), "org.apache.flume.sink.hdfs.HDFSEventSink", batch("hdfs.batchSize", 100), &[&["hdfs.path"]]),
    // flume-ng-sinks/flume-hive-sink/.../HiveSink.java: batchSize 15000.
    row(Sink, Some("hive"), "org.apache.flume.sink.hive.HiveSink", batch("batchSize", 15000),
        &[&["hive.metastore"], &["hive.database"], &["hive.table"], &["serializer"]]),
    // flume-ng-sinks/flume-ng-hbase-sink, flume-ng-hbase2-sink: table, columnFamily; batchSize 100.
    row(Sink, Some("hbase"), "org.apache.flume.sink.hbase.HBaseSink", batch("batchSize", 100), &[&["table"], &["columnFamily"]]),
    row(Sink, Some("asynchbase"), "org.apache.flume.sink.hbase.AsyncHBaseSink", batch("batchSize", 100), &[&["table"], &["columnFamily"]]),
    row(Sink, Some("hbase2"), "org.apache.flume.sink.hbase2.HBase2Sink", batch("batchSize", 100), &[&["table"], &["columnFamily"]]),
    // flume-ng-sinks/flume-ng-morphline-solr-sink/.../MorphlineSink.java: batchSize 1000.
    row(Sink, Some("morphline_solr"), "org.apache.flume.sink.solr.morphline.MorphlineSolrSink", batch("batchSize", 1000), &[]),
    // flume-ng-sinks/flume-http-sink/.../HttpSink.java: not BatchSizeSupported.
    row(Sink, Some("http"), "org.apache.flume.sink.http.HttpSink", None, &[&["endpoint"]]),
    // flume-ng-sinks/flume-irc-sink/.../IRCSink.java.
    row(Sink, Some("irc"), "org.apache.flume.sink.irc.IRCSink", None, &[&["hostname"], &["nick"], &["chan"]]),
    // flume-ng-sinks/flume-ng-kafka-sink/.../KafkaSink.java: flumeBatchSize 100, the
    // deprecated batchSize when it is absent; bootstrap servers (or brokerList) required.
    row(Sink, None, "org.apache.flume.sink.kafka.KafkaSink",
        Some(BatchKey { key: "flumeBatchSize", default: 100, fallback: Some("batchSize"), lenient: false }),
        &[&["kafka.bootstrap.servers", "brokerList"]]),
    // flume-ng-sinks/flume-ng-kudu-sink/.../KuduSink.java: reads batchSize but is not
    // BatchSizeSupported, so Flume never checks it against the channel.
    row(Sink, None, "org.apache.flume.sink.kudu.KuduSink", None, &[&["masterAddresses"], &["tableName"]]),
    // Gone from Flume 1.10.0 on; the alias `elasticsearch` is still in SinkType, so Flume
    // 1.11 fails to load it and starts nothing unless the separately released jar is added.
    Builtin {
        kind: Sink,
        alias: Some("elasticsearch"),
        class: "org.apache.flume.sink.elasticsearch.ElasticSearchSink",
        batch: batch("batchSize", 100),
        required: &[],
        removed: Some("Flume 1.10.0 moved the Elasticsearch sink out of Flume (FLUME-3414, FLUME-3417): Flume 1.11 runs it only from a separately installed plugin jar"),
    },
    Builtin {
        kind: Sink,
        alias: None,
        class: "org.apache.flume.sink.kite.DatasetSink",
        batch: batch("kite.batchSize", 100),
        required: &[],
        removed: Some("Flume 1.10.0 removed the Kite Dataset sink (FLUME-3401): Flume 1.11 runs it only from an old plugin jar"),
    },
];

const RPC_BATCH: Option<BatchKey> = Some(BatchKey {
    key: "batch-size",
    default: 100,
    fallback: None,
    lenient: true,
});

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
        let hdfs =
            find(Sink, "hdfs").and_then(|b| b.batch_size(&props(&[("hdfs.batchSize", "x")])));
        assert_eq!(hdfs, Some(BatchSize::Invalid("hdfs.batchSize", "x".into())));
    }
}
