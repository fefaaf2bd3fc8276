//! The component registry: Flume type names and Java class names → Flumen builders.
//!
//! One table, one line per component: it resolves `type` values (aliases case-insensitively,
//! as Flume's factories do; class names exactly), feeds "did you mean" and `flumen check`, and
//! knows which Flume components Flumen does not implement so they are reported by name
//! ([`builtins`] holds Flume's facts about every built-in, implemented or not).

use crate::channel::file::FileChannel;
#[cfg(feature = "kafka")]
use crate::channel::kafka::{KafkaChannel, KafkaChannelConfig};
use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
use crate::channel::spillable::{SpillableChannel, SpillableConfig};
use crate::channel::ChannelRef;
use crate::config::{did_you_mean, ComponentKind, PropReader};
use crate::metrics::CounterSet;
#[cfg(feature = "avro-rpc")]
use crate::sink::avro::{AvroSink, AvroSinkConfig};
use crate::sink::file_roll::{FileRollConfig, FileRollSink};
use crate::sink::http::HttpSink;
#[cfg(feature = "kafka")]
use crate::sink::kafka::{KafkaSink, KafkaSinkConfig};
use crate::sink::logger::LoggerSink;
use crate::sink::null::NullSink;
use crate::sink::Sink;
#[cfg(feature = "avro-rpc")]
use crate::source::avro::{AvroSource, AvroSourceConfig};
use crate::source::exec::{ExecConfig, ExecSource};
use crate::source::http::{HttpConfig, HttpSource};
#[cfg(feature = "kafka")]
use crate::source::kafka::{KafkaSource, KafkaSourceConfig};
use crate::source::netcat::{NetcatConfig, NetcatSource};
use crate::source::netcat_udp::{NetcatUdpConfig, NetcatUdpSource};
use crate::source::seq::{SeqConfig, SeqSource};
use crate::source::spooldir::{SpoolDirConfig, SpoolDirSource};
use crate::source::taildir::{TaildirConfig, TaildirSource};
use crate::source::Source;
use std::collections::BTreeMap;
use std::sync::Arc;

pub mod builtins;

pub use builtins::Builtin;

/// A component built from its config, not yet started.
pub enum Built {
    /// A source.
    Source(Box<dyn Source>),
    /// A channel.
    Channel(ChannelRef),
    /// A sink.
    Sink(Box<dyn Sink>),
}

/// What a builder gets besides the component's properties. It grows with the connectors:
/// TLS material and shared clients belong here, not in each component's keys.
pub struct BuildContext<'a> {
    /// The agent's name.
    pub agent: &'a str,
    /// The component's name (`c1`).
    pub name: &'a str,
    /// The `-D` system properties (Flume's `javax.net.ssl.*` defaults, `flume.*` switches).
    pub system_properties: &'a BTreeMap<String, String>,
}

/// Builds a component from its properties; `None` when its config makes Flume drop it (the
/// reasons are findings in the reader).
pub type BuildFn = fn(ctx: &BuildContext<'_>, props: &mut PropReader<'_>) -> Option<Built>;

/// One implemented component type.
pub struct Entry {
    /// Source, channel or sink.
    pub kind: ComponentKind,
    /// Flume's short type name.
    pub alias: &'static str,
    /// Flume's Java class names that mean this type.
    pub classes: &'static [&'static str],
    /// One line of documentation.
    pub doc: &'static str,
    /// The counters it reports, as Flume's counter classes name them.
    pub counters: CounterSet,
    /// The builder.
    pub build: BuildFn,
}

/// Every component Flumen implements.
pub static ENTRIES: &[Entry] = &[
    Entry {
        kind: ComponentKind::Source,
        alias: "seq",
        classes: &["org.apache.flume.source.SequenceGeneratorSource"],
        doc: "Generates events whose bodies count 0, 1, 2, ...",
        counters: CounterSet::Standard,
        build: |_, r| {
            Some(Built::Source(Box::new(SeqSource::new(
                SeqConfig::from_props(r)?,
            ))))
        },
    },
    Entry {
        kind: ComponentKind::Source,
        alias: "netcat",
        classes: &["org.apache.flume.source.NetcatSource"],
        doc: "Newline-delimited lines over TCP, optionally acknowledged with OK.",
        counters: CounterSet::Standard,
        build: |_, r| {
            Some(Built::Source(Box::new(NetcatSource::new(
                NetcatConfig::from_props(r)?,
            ))))
        },
    },
    Entry {
        kind: ComponentKind::Source,
        alias: "http",
        classes: &["org.apache.flume.source.http.HTTPSource"],
        doc: "Batches of events posted over HTTP (JSON or blob handler); one request, one transaction.",
        counters: CounterSet::Standard,
        build: |_, r| Some(Built::Source(Box::new(HttpSource::new(HttpConfig::from_props(r)?)))),
    },
    #[cfg(feature = "avro-rpc")]
    Entry {
        kind: ComponentKind::Source,
        alias: "avro",
        classes: &["org.apache.flume.source.AvroSource"],
        doc: "Events from Flume's avro sinks and RPC clients (Avro RPC); OK once committed.",
        counters: CounterSet::Standard,
        build: |ctx, r| {
            Some(Built::Source(Box::new(AvroSource::new(
                AvroSourceConfig::from_props(r, ctx.system_properties)?,
            ))))
        },
    },
    Entry {
        kind: ComponentKind::Source,
        alias: "exec",
        classes: &["org.apache.flume.source.ExecSource"],
        doc: "Lines a command writes to stdout, optionally restarting it.",
        counters: CounterSet::Standard,
        build: |_, r| Some(Built::Source(Box::new(ExecSource::new(ExecConfig::from_props(r)?)))),
    },
    Entry {
        kind: ComponentKind::Source,
        alias: "TAILDIR",
        classes: &["org.apache.flume.source.taildir.TaildirSource"],
        doc: "Follows log files through rotations (by inode), resuming from a position file.",
        counters: CounterSet::Standard,
        build: |_, r| {
            Some(Built::Source(Box::new(TaildirSource::new(
                TaildirConfig::from_props(r)?,
            ))))
        },
    },
    Entry {
        kind: ComponentKind::Source,
        alias: "netcatudp",
        classes: &["org.apache.flume.source.NetcatUdpSource"],
        doc: "One event per UDP datagram, optionally with the sender's address as a header.",
        counters: CounterSet::Standard,
        build: |_, r| {
            Some(Built::Source(Box::new(NetcatUdpSource::new(
                NetcatUdpConfig::from_props(r)?,
            ))))
        },
    },
    Entry {
        kind: ComponentKind::Source,
        alias: "spooldir",
        classes: &["org.apache.flume.source.SpoolDirectorySource"],
        doc: "Files dropped into a directory, one event per line (or Avro record, or blob); each file renamed, deleted or tracked once all its events are committed.",
        counters: CounterSet::Standard,
        build: |_, r| Some(Built::Source(Box::new(SpoolDirSource::new(SpoolDirConfig::from_props(r)?)))),
    },
    #[cfg(feature = "kafka")]
    Entry {
        kind: ComponentKind::Source,
        alias: "org.apache.flume.source.kafka.KafkaSource",
        classes: &["org.apache.flume.source.kafka.KafkaSource"],
        doc: "Records from Kafka topics; offsets committed after the channel commit.",
        counters: CounterSet::Kafka,
        build: |_, r| Some(Built::Source(Box::new(KafkaSource::new(KafkaSourceConfig::from_props(r)?)))),
    },
    Entry {
        kind: ComponentKind::Channel,
        alias: "memory",
        classes: &["org.apache.flume.channel.MemoryChannel"],
        doc: "Bounded in-memory transactional queue.",
        counters: CounterSet::Standard,
        build: |ctx, r| {
            let config = MemoryChannelConfig::from_props(r)?;
            Some(Built::Channel(Arc::new(MemoryChannel::new(ctx.name, config))))
        },
    },
    Entry {
        kind: ComponentKind::Channel,
        alias: "file",
        classes: &["org.apache.flume.channel.file.FileChannel"],
        doc: "Durable write-ahead-log channel: survives kill -9 and power loss.",
        counters: CounterSet::FileChannel,
        build: |ctx, r| {
            let config = crate::channel::file_config::from_props(ctx.name, r)?;
            Some(Built::Channel(Arc::new(FileChannel::new(ctx.name, config))))
        },
    },
    Entry {
        kind: ComponentKind::Channel,
        alias: "spillablememory",
        classes: &["org.apache.flume.channel.SpillableMemoryChannel"],
        doc: "Memory queue that overflows to a file channel when full.",
        counters: CounterSet::FileChannel,
        build: |ctx, r| {
            let config = SpillableConfig::from_props(ctx.name, r)?;
            Some(Built::Channel(Arc::new(SpillableChannel::new(ctx.name, config))))
        },
    },
    #[cfg(feature = "kafka")]
    Entry {
        kind: ComponentKind::Channel,
        alias: "org.apache.flume.channel.kafka.KafkaChannel",
        classes: &["org.apache.flume.channel.kafka.KafkaChannel"],
        doc: "A Kafka topic as a durable channel: puts acknowledged by the broker, takes commit offsets.",
        counters: CounterSet::Kafka,
        build: |ctx, r| {
            let config = KafkaChannelConfig::from_props(r)?;
            Some(Built::Channel(Arc::new(KafkaChannel::new(ctx.name, config))))
        },
    },
    Entry {
        kind: ComponentKind::Sink,
        alias: "logger",
        classes: &["org.apache.flume.sink.LoggerSink"],
        doc: "Logs each event at INFO in Flume's format.",
        counters: CounterSet::Standard,
        build: |_, r| Some(Built::Sink(Box::new(LoggerSink::from_props(r)?))),
    },
    Entry {
        kind: ComponentKind::Sink,
        alias: "null",
        classes: &["org.apache.flume.sink.NullSink"],
        doc: "Discards events.",
        counters: CounterSet::Standard,
        build: |_, r| Some(Built::Sink(Box::new(NullSink::from_props(r)?))),
    },
    Entry {
        kind: ComponentKind::Sink,
        alias: "file_roll",
        classes: &["org.apache.flume.sink.RollingFileSink"],
        doc: "Writes events to files in a directory, rolling on an interval.",
        counters: CounterSet::Standard,
        build: |_, r| {
            Some(Built::Sink(Box::new(FileRollSink::new(
                FileRollConfig::from_props(r)?,
            ))))
        },
    },
    #[cfg(feature = "hdfs")]
    Entry {
        kind: ComponentKind::Sink,
        alias: "hdfs",
        classes: &["org.apache.flume.sink.hdfs.HDFSEventSink"],
        doc: "Bucketed, rolled files (SequenceFile, DataStream, CompressedStream) on local disk, S3 or WebHDFS.",
        counters: CounterSet::Standard,
        build: |ctx, r| Some(Built::Sink(crate::sink::hdfs::build(ctx, r)?)),
    },
    Entry {
        kind: ComponentKind::Sink,
        alias: "http",
        classes: &["org.apache.flume.sink.http.HttpSink"],
        doc: "POSTs each event body (or, with batchMode = json, each batch) to an HTTP(S) endpoint; per-status rollback, backoff and metrics.",
        counters: CounterSet::Standard,
        build: |_, r| Some(Built::Sink(Box::new(HttpSink::from_props(r)?))),
    },
    #[cfg(feature = "avro-rpc")]
    Entry {
        kind: ComponentKind::Sink,
        alias: "avro",
        classes: &["org.apache.flume.sink.AvroSink"],
        doc: "Sends each batch to an avro source (another tier) over Avro RPC; commits after its OK.",
        counters: CounterSet::Standard,
        build: |ctx, r| {
            Some(Built::Sink(Box::new(AvroSink::new(AvroSinkConfig::from_props(
                r,
                ctx.system_properties,
            )?))))
        },
    },
    #[cfg(feature = "kafka")]
    Entry {
        kind: ComponentKind::Sink,
        alias: "org.apache.flume.sink.kafka.KafkaSink",
        classes: &["org.apache.flume.sink.kafka.KafkaSink"],
        doc: "Publishes each batch to Kafka; commits after the broker acknowledged every record.",
        counters: CounterSet::Kafka,
        build: |ctx, r| Some(Built::Sink(Box::new(KafkaSink::new(ctx.name, KafkaSinkConfig::from_props(r)?)))),
    },
];

/// What a `type` value resolves to.
pub enum Lookup {
    /// An implemented type.
    Found(&'static Entry),
    /// A type Flume would run that Flumen does not implement: one of Flume's built-ins
    /// (`Some`), or a custom class from a plugin (`None`).
    Unsupported(Option<&'static Builtin>),
    /// Neither an alias nor a class name: Flume's factory cannot load it. Carries the closest
    /// known name.
    Unknown(Option<String>),
}

/// Resolves a `type` value for a kind of component, as Flume's factories do: a built-in alias
/// (case-insensitively), else a class name. A value without a dot is no class name, and a
/// built-in class in other letter case is no class either, so Flume's `Class.forName` fails on
/// them.
pub fn lookup(kind: ComponentKind, type_name: &str) -> Lookup {
    let t = type_name.trim();
    for entry in ENTRIES.iter().filter(|e| e.kind == kind) {
        // A type with no alias (the Kafka components) is listed under its class name, which
        // loads only as written.
        let alias = !entry.alias.contains('.') && entry.alias.eq_ignore_ascii_case(t);
        if alias || entry.classes.contains(&t) {
            return Lookup::Found(entry);
        }
    }
    if let Some(builtin) = builtins::find(kind, t) {
        return Lookup::Unsupported(Some(builtin));
    }
    // Java's class loader is case-sensitive: `...hdfs.HdfsEventSink` does not load.
    if let Some(class) = builtins::misspelt_class(kind, t) {
        return Lookup::Unknown(Some(class.to_string()));
    }
    if t.contains('.') {
        return Lookup::Unsupported(None);
    }
    Lookup::Unknown(did_you_mean(t, builtins::aliases(kind)))
}

impl Entry {
    /// Flume's facts about this type (its batch key), from [`builtins`].
    pub fn builtin(&self) -> Option<&'static Builtin> {
        builtins::find(self.kind, self.alias)
    }
}

/// Implemented aliases of a kind, for messages.
pub fn aliases(kind: ComponentKind) -> Vec<&'static str> {
    ENTRIES
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.alias)
        .collect()
}
