//! The `hdfs` sink's keys, as Flume 1.11's `HDFSEventSink.configure` reads them, plus
//! Flumen's `hdfs.stagingDir` and the `hdfs.<hadoop key>` overrides of `core-site.xml`.

use std::path::PathBuf;
use std::time::Duration;

use super::codec::Codec;
use super::escape::{PathTemplate, RoundUnit, Rounding, Zone};
use super::format::{BodySerializer, FileType, FormatSpec};
use super::sequence_file::ValueFormat;
use super::target::{self, HadoopConf, Location, ResolveError};
use crate::config::{Finding, FindingKind, PropReader};
use crate::registry::BuildContext;
use crate::serializer::avro_event::{self, AvroEventConfig};
use crate::serializer::Serializer;

/// Flume's `hdfs.filePrefix` default.
pub const DEFAULT_FILE_PREFIX: &str = "FlumeData";
/// Flume's `hdfs.inUseSuffix` default.
pub const DEFAULT_IN_USE_SUFFIX: &str = ".tmp";
/// Flume's `hdfs.rollInterval` default, in seconds.
pub const DEFAULT_ROLL_INTERVAL_SECS: u64 = 30;
/// Flume's `hdfs.rollSize` default, in body bytes.
pub const DEFAULT_ROLL_SIZE: u64 = 1024;
/// Flume's `hdfs.rollCount` default, in events.
pub const DEFAULT_ROLL_COUNT: u64 = 10;
/// Flume's `hdfs.batchSize` default.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// Flume's `hdfs.maxOpenFiles` default.
pub const DEFAULT_MAX_OPEN_FILES: usize = 5000;
/// Flume's `hdfs.callTimeout` default, in milliseconds.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 30_000;
/// Flume's `hdfs.threadsPoolSize` default.
pub const DEFAULT_THREADS: usize = 10;
/// Flumen's `hdfs.maxUnfinishedFiles` default.
pub const DEFAULT_MAX_UNFINISHED_FILES: usize = 1000;
/// Flume's `hdfs.retryInterval` default, in seconds.
pub const DEFAULT_RETRY_INTERVAL_SECS: u64 = 180;

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct HdfsConfig {
    /// `hdfs.path`: the store and the directory template.
    pub location: Location,
    /// The directory template, parsed.
    pub path: PathTemplate,
    /// `hdfs.filePrefix`, parsed (it may hold escapes too).
    pub file_prefix: PathTemplate,
    /// `hdfs.fileSuffix`.
    pub file_suffix: String,
    /// `hdfs.inUsePrefix`.
    pub in_use_prefix: String,
    /// `hdfs.inUseSuffix` (empty with `hdfs.emptyInUseSuffix`).
    pub in_use_suffix: String,
    /// `hdfs.rollInterval`; zero never rolls on time.
    pub roll_interval: Duration,
    /// `hdfs.rollSize` in body bytes; 0 never rolls on size.
    pub roll_size: u64,
    /// `hdfs.rollCount` in events; 0 never rolls on count.
    pub roll_count: u64,
    /// `hdfs.idleTimeout`; zero never closes idle files.
    pub idle_timeout: Duration,
    /// `hdfs.batchSize`.
    pub batch_size: usize,
    /// `hdfs.fileType`, `hdfs.codeC`, `hdfs.writeFormat`, `serializer`.
    pub format: FormatSpec,
    /// `hdfs.maxOpenFiles`.
    pub max_open_files: usize,
    /// `hdfs.callTimeout`: bound on each call to a remote store (zero: none). Local file
    /// I/O is not bounded: a blocking system call cannot be cancelled.
    pub call_timeout: Duration,
    /// Flumen's `hdfs.maxUnfinishedFiles`: closed files waiting to be uploaded (or renamed)
    /// beyond which batches are refused, so the channel holds the events while the store is
    /// down instead of staging growing without bound.
    pub max_unfinished_files: usize,
    /// `hdfs.threadsPoolSize`: uploads running at once.
    pub threads: usize,
    /// `hdfs.closeTries`: attempts to finish (rename or upload) a closed file; 0 = until done.
    pub close_tries: u32,
    /// `hdfs.retryInterval`: wait between those attempts.
    pub retry_interval: Duration,
    /// `hdfs.timeZone`.
    pub time_zone: Zone,
    /// `hdfs.round`, `hdfs.roundValue`, `hdfs.roundUnit`.
    pub round: Option<Rounding>,
    /// `hdfs.useLocalTimeStamp`.
    pub use_local_timestamp: bool,
    /// Flumen's `hdfs.stagingDir`: where open files of a remote store are staged, and where
    /// every open file's committed length is recorded.
    pub staging_dir: PathBuf,
}

/// Keys Flume reads that have no effect here, with why (documented, not reported).
pub const WITHOUT_EFFECT: &[&str] = &[
    // HDFS block replication: there are no DataNodes behind a local file or a bucket.
    "hdfs.minBlockReplicas",
    // Rolls run from the sink's own periodic work, not from a timer pool.
    "hdfs.rollTimerPoolSize",
];

impl HdfsConfig {
    /// Reads the sink's keys; `None` when the sink cannot run (findings say why).
    pub fn from_props(ctx: &BuildContext<'_>, r: &mut PropReader<'_>) -> Option<Self> {
        kerberos_unsupported(r);
        for key in WITHOUT_EFFECT {
            r.mark_used(key);
        }
        let conf = hadoop_conf(ctx, r);
        let raw_path = r.required_string("hdfs.path")?;
        let location = match target::resolve(&raw_path, &conf) {
            Ok(l) => l,
            Err(ResolveError::Unsupported(why)) => {
                let prop = r.raw("hdfs.path")?;
                let f = Finding::new(
                    FindingKind::UnsupportedType,
                    Some(prop.origin.clone()),
                    prop.full_key.clone(),
                    format!("hdfs.path: {why}."),
                );
                r.unsupported(
                    format!("HDFS's native client (for `{}`)", raw_path.trim()),
                    f,
                );
                return None;
            }
            Err(ResolveError::Invalid(why)) => {
                refuse(r, "hdfs.path", &format!("hdfs.path: {why}."));
                return None;
            }
        };
        if !raw_path.contains(':') && location.store == target::Store::Local {
            // Flume on a Hadoop host would usually write such a path to HDFS: say loudly
            // where it goes here.
            tracing::warn!(
                sink = ctx.name,
                path = %raw_path,
                core_site = ?conf.source,
                "hdfs.path has no scheme and no fs.defaultFS names a remote store: the sink writes local files. Use file:// to say so, or give core-site.xml with -c or HADOOP_CONF_DIR."
            );
        }
        let path = template(r, "hdfs.path", &location.path);
        let prefix_raw = r.string("hdfs.filePrefix", DEFAULT_FILE_PREFIX);
        let file_prefix = template(r, "hdfs.filePrefix", &prefix_raw);
        let file_suffix = r.string("hdfs.fileSuffix", "");
        let in_use_prefix = r.string("hdfs.inUsePrefix", "");
        let in_use_suffix = if r.bool("hdfs.emptyInUseSuffix", false) {
            r.mark_used("hdfs.inUseSuffix");
            String::new()
        } else {
            r.string("hdfs.inUseSuffix", DEFAULT_IN_USE_SUFFIX)
        };
        // Flume takes any number here; zero or less turns the trigger off.
        let roll_interval = non_negative(r, "hdfs.rollInterval", DEFAULT_ROLL_INTERVAL_SECS);
        let roll_size = non_negative(r, "hdfs.rollSize", DEFAULT_ROLL_SIZE);
        let roll_count = non_negative(r, "hdfs.rollCount", DEFAULT_ROLL_COUNT);
        let idle = non_negative(r, "hdfs.idleTimeout", 0);
        let batch_size = r.number("hdfs.batchSize", DEFAULT_BATCH_SIZE, 1, 1 << 24);
        let format = format_spec(r);
        let max_open = r.number("hdfs.maxOpenFiles", DEFAULT_MAX_OPEN_FILES, 1, usize::MAX);
        let call_timeout = non_negative(r, "hdfs.callTimeout", DEFAULT_CALL_TIMEOUT_MS);
        let max_unfinished = r.number(
            "hdfs.maxUnfinishedFiles",
            DEFAULT_MAX_UNFINISHED_FILES,
            1,
            usize::MAX,
        );
        let threads = r.number("hdfs.threadsPoolSize", DEFAULT_THREADS, 1, 1024);
        // Flume: a count of 0 or less means "until closed".
        let close_tries = r.number("hdfs.closeTries", 0i64, i64::MIN, i64::MAX);
        let retry = r.number(
            "hdfs.retryInterval",
            DEFAULT_RETRY_INTERVAL_SECS as i64,
            i64::MIN,
            i64::MAX / 1000,
        );
        let time_zone = time_zone(r);
        let round = rounding(r);
        let use_local_timestamp = r.bool("hdfs.useLocalTimeStamp", false);
        let staging_dir = r
            .opt_string("hdfs.stagingDir")
            .map(PathBuf::from)
            .unwrap_or_else(|| default_staging_dir(ctx));
        let retry = retry?;
        // Flume: a retry interval of 0 or less means one close attempt only.
        let close_tries = if retry <= 0 { 1 } else { close_tries?.max(0) };
        Some(HdfsConfig {
            location,
            path: path?,
            file_prefix: file_prefix?,
            file_suffix,
            in_use_prefix,
            in_use_suffix,
            roll_interval: Duration::from_secs(roll_interval?.min(u64::MAX / 1000)),
            roll_size: roll_size?,
            roll_count: roll_count?,
            idle_timeout: Duration::from_secs(idle?.min(u64::MAX / 1000)),
            batch_size: batch_size?,
            format: format?,
            max_open_files: max_open?,
            call_timeout: Duration::from_millis(call_timeout?),
            max_unfinished_files: max_unfinished?,
            threads: threads?,
            close_tries: u32::try_from(close_tries).unwrap_or(u32::MAX),
            retry_interval: Duration::from_secs(retry.max(0) as u64),
            time_zone: time_zone?,
            round: round?,
            use_local_timestamp,
            staging_dir,
        })
    }
}

/// A whole number Flume reads as a `long`; zero or less (off) reads as 0.
fn non_negative(r: &mut PropReader<'_>, key: &str, default: u64) -> Option<u64> {
    let v = r.number(key, default.min(i64::MAX as u64) as i64, i64::MIN, i64::MAX)?;
    Some(v.max(0) as u64)
}

/// `~/.flumen/hdfs/<agent>/<sink>`, as the file channel keeps its default directories
/// under the home directory.
fn default_staging_dir(ctx: &BuildContext<'_>) -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".flumen")
        .join("hdfs")
        .join(ctx.agent)
        .join(ctx.name)
}

/// `core-site.xml` from the `-c` directory or `$HADOOP_CONF_DIR`, then `hdfs.<key>`
/// overrides for Hadoop's `fs.*` keys.
fn hadoop_conf(ctx: &BuildContext<'_>, r: &mut PropReader<'_>) -> HadoopConf {
    let mut dirs = Vec::new();
    if let Some(dir) = ctx.system_properties.get(crate::config::CONF_DIR_PROPERTY) {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("HADOOP_CONF_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    // Where `flume-ng` finds it through `hadoop classpath` on a Hadoop host.
    if let Some(home) = std::env::var_os("HADOOP_HOME") {
        dirs.push(PathBuf::from(home).join("etc/hadoop"));
    }
    dirs.push(PathBuf::from("/etc/hadoop/conf"));
    let mut conf = match HadoopConf::find(&dirs) {
        Ok(c) => c,
        Err(why) => {
            tracing::warn!(%why, "Cannot read core-site.xml; using Hadoop's defaults.");
            HadoopConf::default()
        }
    };
    for (key, prop) in r.sub_entries("hdfs.fs") {
        conf.set(&format!("fs.{key}"), prop.value.trim());
    }
    r.mark_prefix_used("hdfs.fs");
    conf
}

/// Kerberos and impersonation need a secured HDFS client this build does not have.
fn kerberos_unsupported(r: &mut PropReader<'_>) {
    for key in [
        "hdfs.kerberosPrincipal",
        "hdfs.kerberosKeytab",
        "hdfs.proxyUser",
    ] {
        let Some(prop) = r.raw(key) else { continue };
        if prop.value.trim().is_empty() {
            continue;
        }
        let f = Finding::new(
            FindingKind::UnsupportedType,
            Some(prop.origin.clone()),
            prop.full_key.clone(),
            format!("{key}: Kerberos authentication and proxy users are not implemented by Flumen; Flume would log in with them."),
        );
        r.unsupported(format!("Kerberos (`{key}`)"), f);
    }
}

fn template(r: &mut PropReader<'_>, key: &str, raw: &str) -> Option<PathTemplate> {
    match PathTemplate::parse(raw) {
        Ok(t) => Some(t),
        Err(why) => {
            refuse(
                r,
                key,
                &format!("{key} is not a valid path template: {why}."),
            );
            None
        }
    }
}

fn format_spec(r: &mut PropReader<'_>) -> Option<FormatSpec> {
    let type_name = r.choice("hdfs.fileType", "SequenceFile", &FileType::NAMES);
    let file_type = FileType::from_name(type_name)?;
    let codec = match r.opt_string("hdfs.codeC").filter(|c| !c.trim().is_empty()) {
        None => None,
        Some(name) => match Codec::from_flume_name(name.trim()) {
            Ok(c) => c,
            Err(why) => {
                let prop = r.raw("hdfs.codeC")?;
                let f = Finding::new(
                    FindingKind::UnsupportedType,
                    Some(prop.origin.clone()),
                    prop.full_key.clone(),
                    format!("hdfs.codeC: {why}."),
                );
                r.unsupported(format!("the codec `{}`", name.trim()), f);
                return None;
            }
        },
    };
    // As Flume: a DataStream takes no codec and a CompressedStream needs one.
    let mismatch = match (file_type, codec) {
        (FileType::DataStream, Some(_)) => Some(
            "a codec is set while `hdfs.fileType = DataStream` does not support compressed output",
        ),
        (FileType::CompressedStream, None) => {
            Some("`hdfs.fileType = CompressedStream` needs `hdfs.codeC`")
        }
        _ => None,
    };
    if let Some(why) = mismatch {
        let key = if codec.is_some() {
            "hdfs.codeC"
        } else {
            "hdfs.fileType"
        };
        if let Some(prop) = r.raw(key) {
            let f = Finding::new(
                FindingKind::DroppedComponent,
                Some(prop.origin.clone()),
                prop.full_key.clone(),
                format!("{why}; Flume refuses this sink."),
            );
            r.drop_component(f);
        }
        return None;
    }
    let write_format = match r.choice("hdfs.writeFormat", "Writable", &["Writable", "Text"]) {
        "Text" => ValueFormat::Text,
        _ => ValueFormat::BytesWritable,
    };
    let serializer = serializer(r)?;
    Some(FormatSpec {
        file_type,
        codec,
        serializer,
        write_format,
    })
}

/// `serializer`: TEXT, HEADER_AND_TEXT or avro_event (with `serializer.syncIntervalBytes`
/// and `serializer.compressionCodec`).
fn serializer(r: &mut PropReader<'_>) -> Option<BodySerializer> {
    let name = r.string("serializer", "TEXT");
    let avro = [
        "avro_event",
        "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder",
    ];
    if avro.iter().any(|a| a.eq_ignore_ascii_case(name.trim())) {
        return avro_event(r).map(BodySerializer::AvroEvent);
    }
    Serializer::from_props(r, "serializer").map(BodySerializer::Text)
}

/// `serializer.syncIntervalBytes` and `serializer.compressionCodec` of `avro_event`.
fn avro_event(r: &mut PropReader<'_>) -> Option<AvroEventConfig> {
    let mut config = AvroEventConfig::default();
    let interval_key = format!("serializer.{}", avro_event::SYNC_INTERVAL_BYTES_KEY);
    let interval = r.number(
        &interval_key,
        avro_event::DEFAULT_SYNC_INTERVAL_BYTES as i64,
        i64::MIN,
        i64::MAX,
    )?;
    match AvroEventConfig::check_sync_interval(interval) {
        Ok(v) => config.sync_interval_bytes = v,
        Err(why) => {
            refuse(
                r,
                &interval_key,
                &format!("{interval_key}: {why}; Avro refuses it."),
            );
            return None;
        }
    }
    let codec_key = format!("serializer.{}", avro_event::COMPRESSION_CODEC_KEY);
    let codec = r.string(&codec_key, avro_event::DEFAULT_COMPRESSION_CODEC);
    match AvroEventConfig::parse_codec(codec.trim()) {
        Ok(c) => config.codec = c,
        Err(why) => match why.flume_fallback() {
            Some(c) => {
                if let Some(prop) = r.raw(&codec_key) {
                    r.bad_value(prop, &why.to_string(), "no compression, as Flume does");
                }
                config.codec = c;
            }
            None => {
                let prop = r.raw(&codec_key)?;
                let f = Finding::new(
                    FindingKind::UnsupportedType,
                    Some(prop.origin.clone()),
                    prop.full_key.clone(),
                    format!("{codec_key}: {why}."),
                );
                r.unsupported(format!("the Avro codec `{}`", codec.trim()), f);
                return None;
            }
        },
    }
    Some(config)
}

fn time_zone(r: &mut PropReader<'_>) -> Option<Zone> {
    let Some(name) = r.opt_string("hdfs.timeZone") else {
        return Some(Zone::Local);
    };
    match Zone::parse(name.trim()) {
        Ok(z) => Some(z),
        Err(why) => {
            // Java's TimeZone.getTimeZone falls back to GMT for an unknown ID.
            let prop = r.raw("hdfs.timeZone")?;
            r.bad_value(
                prop,
                &format!("a Java time-zone ID ({why})"),
                "GMT, as Java does",
            );
            Some(Zone::parse("GMT").unwrap_or(Zone::Local))
        }
    }
}

fn rounding(r: &mut PropReader<'_>) -> Option<Option<Rounding>> {
    if !r.bool("hdfs.round", false) {
        r.mark_used("hdfs.roundValue");
        r.mark_used("hdfs.roundUnit");
        return Some(None);
    }
    let unit = r.string("hdfs.roundUnit", "second");
    let unit = match RoundUnit::parse(unit.trim()) {
        Ok(u) => u,
        Err(why) => {
            // Flume logs it and does not round.
            if let Some(prop) = r.raw("hdfs.roundUnit") {
                r.bad_value(prop, &why, "no rounding, as Flume does");
            }
            r.mark_used("hdfs.roundValue");
            return Some(None);
        }
    };
    let value = r.number("hdfs.roundValue", 1i64, i64::MIN, i64::MAX)?;
    match Rounding::new(unit, value) {
        Ok(round) => Some(Some(round)),
        Err(why) => {
            // Flume's Preconditions check fails the sink's configuration.
            refuse(
                r,
                "hdfs.roundValue",
                &format!("hdfs.roundValue: {why}; Flume refuses this sink."),
            );
            None
        }
    }
}

/// Records that `key`'s value keeps the sink from running.
pub fn refuse(r: &mut PropReader<'_>, key: &str, message: &str) {
    if let Some(prop) = r.raw(key) {
        let f = Finding::new(
            FindingKind::BadValue,
            Some(prop.origin.clone()),
            prop.full_key.clone(),
            message.to_string(),
        );
        r.drop_component(f);
    }
}
