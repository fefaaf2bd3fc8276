//! The spooling directory source's configuration: Flume's keys, defaults and units
//! (`SpoolDirectorySourceConfigurationConstants`, `LineDeserializer`,
//! `AvroEventDeserializer`, morphline's `BlobDeserializer`).
//!
//! Values Flume refuses when it configures or starts the source (an unknown policy, order,
//! charset or deserializer, a bad number, an invalid pattern) drop the source with a finding
//! naming the key, file and line.

use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use super::charset::{Charset, DecodeErrorPolicy};
use crate::config::{did_you_mean, Finding, FindingKind, PropReader};

/// `fileSuffix` default.
pub const DEFAULT_FILE_SUFFIX: &str = ".COMPLETED";
/// `fileHeaderKey` default.
pub const DEFAULT_FILE_HEADER_KEY: &str = "file";
/// `basenameHeaderKey` default.
pub const DEFAULT_BASENAME_HEADER_KEY: &str = "basename";
/// `batchSize` default.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// `includePattern` default: every file.
pub const DEFAULT_INCLUDE_PATTERN: &str = "^.*$";
/// `ignorePattern` default: no file.
pub const DEFAULT_IGNORE_PATTERN: &str = "^$";
/// `trackerDir` default (relative to `spoolDir`).
pub const DEFAULT_TRACKER_DIR: &str = ".flumespool";
/// `pollDelay` default, milliseconds.
pub const DEFAULT_POLL_DELAY_MS: u64 = 500;
/// `maxBackoff` default, milliseconds.
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 4000;
/// `deserializer.maxLineLength` default, characters.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 2048;
/// `deserializer.maxBlobLength` default, bytes.
pub const DEFAULT_MAX_BLOB_LENGTH: usize = 100_000_000;
/// The BLOB deserializer's builder class (from Flume's morphline Solr sink module).
pub const BLOB_BUILDER_CLASS: &str =
    "org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder";

/// `deletePolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletePolicy {
    /// `never`: keep the file (renamed or tracked).
    Never,
    /// `immediate`: delete it once all its events are committed.
    Immediate,
}

/// `trackingPolicy`: how a finished file is marked when it is not deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackingPolicy {
    /// `rename`: append `fileSuffix` to its name.
    Rename,
    /// `tracker_dir`: leave it, create an empty `<trackerDir>/<relative path><fileSuffix>`.
    TrackerDir,
}

/// `consumeOrder`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumeOrder {
    /// Oldest modification time first (ties: smaller name first).
    Oldest,
    /// Youngest modification time first (ties: smaller name first).
    Youngest,
    /// Any order.
    Random,
}

/// `deserializer.schemaType` of the AVRO deserializer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaType {
    /// Header `flume.avro.schema.hash`: the schema's CRC-64-AVRO fingerprint in hex.
    Hash,
    /// Header `flume.avro.schema.literal`: the schema's JSON.
    Literal,
}

/// The deserializer and its `deserializer.*` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeserializerConfig {
    /// `LINE`: one event per line.
    Line {
        /// `inputCharset` (UTF-8).
        input: Charset,
        /// `decodeErrorPolicy` (FAIL).
        policy: DecodeErrorPolicy,
        /// `deserializer.outputCharset` (UTF-8).
        output: Charset,
        /// `deserializer.maxLineLength` (2048 characters; longer lines are cut).
        max_line_length: usize,
    },
    /// `AVRO`: one event per record of an Avro container file.
    Avro {
        /// `deserializer.schemaType` (HASH).
        schema_type: SchemaType,
    },
    /// `...BlobDeserializer$Builder`: the whole file as one event.
    Blob {
        /// `deserializer.maxBlobLength` (100,000,000 bytes per event).
        max_blob_length: usize,
    },
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct SpoolDirConfig {
    /// `spoolDir` (required).
    pub spool_dir: PathBuf,
    /// `fileSuffix` (`.COMPLETED`).
    pub file_suffix: String,
    /// `deletePolicy` (never).
    pub delete_policy: DeletePolicy,
    /// `fileHeaderKey` when `fileHeader` is true: the absolute path goes there.
    pub file_header: Option<String>,
    /// `basenameHeaderKey` when `basenameHeader` is true: the file name goes there.
    pub basename_header: Option<String>,
    /// `includePattern` (`^.*$`), matched against the whole file name.
    pub include: Regex,
    /// `ignorePattern` (`^$`), matched against the whole file (or directory) name.
    pub ignore: Regex,
    /// `trackerDir` (`.flumespool`; relative to `spoolDir` unless absolute).
    pub tracker_dir: PathBuf,
    /// `trackingPolicy` (rename).
    pub tracking_policy: TrackingPolicy,
    /// `consumeOrder` (oldest).
    pub consume_order: ConsumeOrder,
    /// `pollDelay` (500 ms): pause between scans of an empty directory.
    pub poll_delay: Duration,
    /// `recursiveDirectorySearch` (false).
    pub recursive: bool,
    /// `maxBackoff` (4000 ms): longest pause between retries of a batch a channel refused
    /// for a reason other than being full.
    pub max_backoff: Duration,
    /// `batchSize` (100).
    pub batch_size: usize,
    /// `deserializer` (LINE) and its settings.
    pub deserializer: DeserializerConfig,
}

impl SpoolDirConfig {
    /// Reads Flume's keys; `None` when Flume would drop (or fail to start) the source.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let spool_dir = r.required_string("spoolDir").map(PathBuf::from);
        let file_suffix = r.string("fileSuffix", DEFAULT_FILE_SUFFIX);
        let delete_policy =
            fatal_choice(r, "deletePolicy", "never", &["never", "immediate"]).map(|v| match v {
                "immediate" => DeletePolicy::Immediate,
                _ => DeletePolicy::Never,
            });
        let file_header = r.bool("fileHeader", false);
        let file_header_key = r.string("fileHeaderKey", DEFAULT_FILE_HEADER_KEY);
        let basename_header = r.bool("basenameHeader", false);
        let basename_header_key = r.string("basenameHeaderKey", DEFAULT_BASENAME_HEADER_KEY);
        let batch_size = r.number("batchSize", DEFAULT_BATCH_SIZE, 1, 1 << 24);
        let input = charset(r, "inputCharset");
        let policy = fatal_choice(
            r,
            "decodeErrorPolicy",
            "FAIL",
            &["FAIL", "REPLACE", "IGNORE"],
        )
        .map(|v| match v {
            "REPLACE" => DecodeErrorPolicy::Replace,
            "IGNORE" => DecodeErrorPolicy::Ignore,
            _ => DecodeErrorPolicy::Fail,
        });
        let include_text = r.string("includePattern", DEFAULT_INCLUDE_PATTERN);
        let include = whole_name_regex(r, "includePattern", &include_text);
        let ignore_text = r.string("ignorePattern", DEFAULT_IGNORE_PATTERN);
        let ignore = whole_name_regex(r, "ignorePattern", &ignore_text);
        let tracker_dir = PathBuf::from(r.string("trackerDir", DEFAULT_TRACKER_DIR));
        let deserializer = deserializer(r, input, policy);
        let consume_order = fatal_choice(
            r,
            "consumeOrder",
            "oldest",
            &["oldest", "youngest", "random"],
        )
        .map(|v| match v {
            "youngest" => ConsumeOrder::Youngest,
            "random" => ConsumeOrder::Random,
            _ => ConsumeOrder::Oldest,
        });
        let ms = Duration::from_millis(1);
        let poll_delay = r.duration(
            "pollDelay",
            Duration::from_millis(DEFAULT_POLL_DELAY_MS),
            ms,
        );
        let recursive = r.bool("recursiveDirectorySearch", false);
        let max_backoff = r.duration(
            "maxBackoff",
            Duration::from_millis(DEFAULT_MAX_BACKOFF_MS),
            ms,
        );
        let tracking_policy =
            fatal_choice(r, "trackingPolicy", "rename", &["rename", "tracker_dir"]).map(
                |v| match v {
                    "tracker_dir" => TrackingPolicy::TrackerDir,
                    _ => TrackingPolicy::Rename,
                },
            );
        let spool_dir = spool_dir?;
        let tracker_dir = if tracker_dir.is_absolute() {
            tracker_dir
        } else {
            spool_dir.join(tracker_dir)
        };
        Some(SpoolDirConfig {
            spool_dir,
            file_suffix,
            delete_policy: delete_policy?,
            file_header: file_header.then_some(file_header_key),
            basename_header: basename_header.then_some(basename_header_key),
            include: include?,
            ignore: ignore?,
            tracker_dir,
            tracking_policy: tracking_policy?,
            consume_order: consume_order?,
            poll_delay: poll_delay?,
            recursive,
            max_backoff: max_backoff?,
            batch_size: batch_size?,
            deserializer: deserializer?,
        })
    }
}

/// Reads `deserializer` and its sub-keys.
fn deserializer(
    r: &mut PropReader<'_>,
    input: Option<Charset>,
    policy: Option<DecodeErrorPolicy>,
) -> Option<DeserializerConfig> {
    let kind = r.string("deserializer", "LINE");
    let upper = kind.to_ascii_uppercase();
    match (upper.as_str(), kind.as_str()) {
        ("LINE", _) | (_, "org.apache.flume.serialization.LineDeserializer$Builder") => {
            let output = charset(r, "deserializer.outputCharset");
            let max = r.number(
                "deserializer.maxLineLength",
                DEFAULT_MAX_LINE_LENGTH,
                1,
                i32::MAX as usize,
            );
            // Flume's deprecated `bufferMaxLineLength` overrides it for LINE.
            let legacy = match r.raw("bufferMaxLineLength") {
                Some(_) => r.number("bufferMaxLineLength", 0, 1, i32::MAX as usize),
                None => Some(0),
            };
            let max = match legacy? {
                0 => max?,
                legacy => legacy,
            };
            Some(DeserializerConfig::Line {
                input: input?,
                policy: policy?,
                output: output?,
                max_line_length: max,
            })
        }
        ("AVRO", _) | (_, "org.apache.flume.serialization.AvroEventDeserializer$Builder") => {
            let schema_type =
                fatal_choice(r, "deserializer.schemaType", "HASH", &["HASH", "LITERAL"])?;
            let schema_type = match schema_type {
                "LITERAL" => SchemaType::Literal,
                _ => SchemaType::Hash,
            };
            input?;
            policy?;
            Some(DeserializerConfig::Avro { schema_type })
        }
        (_, BLOB_BUILDER_CLASS) => {
            let max = r.number(
                "deserializer.maxBlobLength",
                DEFAULT_MAX_BLOB_LENGTH,
                1,
                i32::MAX as usize,
            )?;
            input?;
            policy?;
            Some(DeserializerConfig::Blob {
                max_blob_length: max,
            })
        }
        _ => {
            let known = ["LINE", "AVRO", BLOB_BUILDER_CLASS];
            let origin = r.raw("deserializer").map(|p| p.origin.clone());
            let key = r.full_key("deserializer");
            // Its settings belong to it; reporting each as ignored would only add noise.
            r.mark_prefix_used("deserializer");
            let finding = |kind_, message| {
                Finding::new(kind_, origin, key, message)
                    .expected(format!("one of {}", known.join(", ")))
            };
            if kind.contains('.') {
                let what = format!("deserializer `{kind}`");
                let f = finding(
                    FindingKind::UnsupportedType,
                    format!("Deserializer class `{kind}` cannot be loaded by Flumen (it cannot run Java plugins); Flume would hand it the `deserializer.*` keys."),
                );
                r.unsupported(what, f);
            } else {
                let f = finding(
                    FindingKind::BadValue,
                    format!("Deserializer `{kind}` is not known; Flume fails to start the source with it."),
                )
                .suggest(did_you_mean(&kind, known));
                r.drop_component(f);
            }
            None
        }
    }
}

/// A charset key (default UTF-8); an unknown or unsupported one drops the source.
fn charset(r: &mut PropReader<'_>, key: &str) -> Option<Charset> {
    let name = r.string(key, "UTF-8");
    match Charset::for_name(&name) {
        Ok(c) => Some(c),
        Err(error) => {
            let origin = r.raw(key).map(|p| p.origin.clone());
            let full_key = r.full_key(key);
            r.drop_component(
                Finding::new(
                    FindingKind::BadValue,
                    origin,
                    full_key,
                    format!("{error}; the source is dropped."),
                )
                .expected("an ASCII-compatible charset such as UTF-8, ISO-8859-1, windows-1252"),
            );
            None
        }
    }
}

/// One of a fixed set of words (case-insensitive); anything else drops the source, as Flume's
/// `valueOf` / policy checks throw on it.
fn fatal_choice(
    r: &mut PropReader<'_>,
    key: &str,
    default: &'static str,
    allowed: &[&'static str],
) -> Option<&'static str> {
    let Some(prop) = r.raw(key) else {
        return Some(default);
    };
    let v = prop.value.trim();
    if let Some(found) = allowed.iter().find(|a| a.eq_ignore_ascii_case(v)) {
        return Some(found);
    }
    let finding = Finding::new(
        FindingKind::BadValue,
        Some(prop.origin.clone()),
        prop.full_key.clone(),
        format!("Value `{v}` is not valid; Flume refuses the source with it."),
    )
    .expected(format!("one of {}", allowed.join(", ")))
    .suggest(did_you_mean(v, allowed.iter().copied()));
    r.drop_component(finding);
    None
}

/// A Java pattern matched against a whole name (`Matcher.matches()`); an invalid one drops
/// the source (Flume's `Pattern.compile` throws at start).
fn whole_name_regex(r: &mut PropReader<'_>, key: &str, pattern: &str) -> Option<Regex> {
    match Regex::new(&format!("^(?:{pattern})$")) {
        Ok(re) => Some(re),
        Err(error) => {
            let detail = error.to_string();
            let last = detail.lines().last().unwrap_or("").trim().to_string();
            let origin = r.raw(key).map(|p| p.origin.clone());
            let full_key = r.full_key(key);
            r.drop_component(
                Finding::new(
                    FindingKind::BadValue,
                    origin,
                    full_key,
                    format!("`{pattern}` is not a valid regular expression ({last}); the source is dropped."),
                )
                .expected("a regular expression (no look-around or back-references)"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Props;

    fn read(entries: &[(&str, &str)]) -> (Option<SpoolDirConfig>, Vec<Finding>) {
        let p = Props::from_pairs("spool.properties", "a1.sources.r1", entries);
        let mut r = PropReader::new(&p, "r1");
        let c = SpoolDirConfig::from_props(&mut r);
        (c, r.finish())
    }

    #[test]
    fn defaults_are_flumes() {
        let (c, findings) = read(&[("spoolDir", "/var/spool")]);
        assert!(findings.is_empty(), "{findings:?}");
        let c = c.expect("config");
        assert_eq!(c.spool_dir, PathBuf::from("/var/spool"));
        assert_eq!(c.file_suffix, ".COMPLETED");
        assert_eq!(c.delete_policy, DeletePolicy::Never);
        assert_eq!(c.file_header, None);
        assert_eq!(c.basename_header, None);
        assert!(c.include.is_match("anything.log"));
        assert!(!c.ignore.is_match("anything.log"));
        assert_eq!(c.tracker_dir, PathBuf::from("/var/spool/.flumespool"));
        assert_eq!(c.tracking_policy, TrackingPolicy::Rename);
        assert_eq!(c.consume_order, ConsumeOrder::Oldest);
        assert_eq!(c.poll_delay, Duration::from_millis(500));
        assert!(!c.recursive);
        assert_eq!(c.max_backoff, Duration::from_millis(4000));
        assert_eq!(c.batch_size, 100);
        assert_eq!(
            c.deserializer,
            DeserializerConfig::Line {
                input: Charset::Utf8,
                policy: DecodeErrorPolicy::Fail,
                output: Charset::Utf8,
                max_line_length: 2048,
            }
        );
    }

    #[test]
    fn every_key_is_read() {
        let (c, findings) = read(&[
            ("spoolDir", "/s"),
            ("fileSuffix", ".DONE"),
            ("deletePolicy", "IMMEDIATE"),
            ("fileHeader", "true"),
            ("fileHeaderKey", "path"),
            ("basenameHeader", "true"),
            ("includePattern", "[a-z]+\\.log"),
            ("ignorePattern", "tmp.*"),
            ("trackerDir", "/t"),
            ("trackingPolicy", "tracker_dir"),
            ("consumeOrder", "youngest"),
            ("pollDelay", "20"),
            ("recursiveDirectorySearch", "true"),
            ("maxBackoff", "100"),
            ("batchSize", "7"),
            ("inputCharset", "ISO-8859-1"),
            ("decodeErrorPolicy", "replace"),
            ("deserializer.maxLineLength", "10"),
            ("deserializer.outputCharset", "windows-1252"),
        ]);
        assert!(findings.is_empty(), "{findings:?}");
        let c = c.expect("config");
        assert_eq!(c.file_suffix, ".DONE");
        assert_eq!(c.delete_policy, DeletePolicy::Immediate);
        assert_eq!(c.file_header.as_deref(), Some("path"));
        assert_eq!(c.basename_header.as_deref(), Some("basename"));
        // Whole-name matching, as Java's Matcher.matches().
        assert!(c.include.is_match("app.log"));
        assert!(!c.include.is_match("app.log.1"));
        assert!(c.ignore.is_match("tmp1"));
        assert!(!c.ignore.is_match("a-tmp1"));
        assert_eq!(c.tracker_dir, PathBuf::from("/t"));
        assert_eq!(c.tracking_policy, TrackingPolicy::TrackerDir);
        assert_eq!(c.consume_order, ConsumeOrder::Youngest);
        assert_eq!(c.poll_delay, Duration::from_millis(20));
        assert!(c.recursive);
        assert_eq!(c.max_backoff, Duration::from_millis(100));
        assert_eq!(c.batch_size, 7);
        match c.deserializer {
            DeserializerConfig::Line {
                input,
                policy,
                output,
                max_line_length,
            } => {
                assert_eq!(input, Charset::Latin1);
                assert_eq!(policy, DecodeErrorPolicy::Replace);
                assert_eq!(output.name(), "windows-1252");
                assert_eq!(max_line_length, 10);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn avro_and_blob_deserializers() {
        let (c, f) = read(&[
            ("spoolDir", "/s"),
            ("deserializer", "avro"),
            ("deserializer.schemaType", "LITERAL"),
        ]);
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(
            c.expect("config").deserializer,
            DeserializerConfig::Avro {
                schema_type: SchemaType::Literal
            }
        );
        let (c, f) = read(&[
            ("spoolDir", "/s"),
            ("deserializer", BLOB_BUILDER_CLASS),
            ("deserializer.maxBlobLength", "1000"),
        ]);
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(
            c.expect("config").deserializer,
            DeserializerConfig::Blob {
                max_blob_length: 1000
            }
        );
    }

    #[test]
    fn legacy_buffer_max_line_length_overrides_for_line() {
        let (c, f) = read(&[
            ("spoolDir", "/s"),
            ("deserializer.maxLineLength", "10"),
            ("bufferMaxLineLength", "99"),
        ]);
        assert!(f.is_empty(), "{f:?}");
        assert!(matches!(
            c.expect("config").deserializer,
            DeserializerConfig::Line {
                max_line_length: 99,
                ..
            }
        ));
    }

    /// Each bad value drops the source with a finding naming its key and line.
    #[test]
    fn bad_values_are_reported_with_file_line_and_key() {
        let cases: &[(&str, &str)] = &[
            ("deletePolicy", "later"),
            ("trackingPolicy", "renam"),
            ("consumeOrder", "newest"),
            ("decodeErrorPolicy", "SKIP"),
            ("batchSize", "0"),
            ("pollDelay", "soon"),
            ("inputCharset", "UTF-16"),
            ("deserializer.outputCharset", "klingon"),
            ("deserializer", "JSON"),
            ("includePattern", "(unclosed"),
            ("ignorePattern", "a(?=b)"),
            ("deserializer.maxLineLength", "0"),
        ];
        for (key, value) in cases {
            let (c, findings) = read(&[("spoolDir", "/s"), (key, value)]);
            assert!(c.is_none(), "{key} = {value} should drop the source");
            let f = findings
                .iter()
                .find(|f| f.key == format!("a1.sources.r1.{key}"))
                .unwrap_or_else(|| panic!("no finding for {key}: {findings:?}"));
            assert_eq!(f.kind, FindingKind::BadValue);
            let origin = f.origin.as_ref().expect("origin");
            assert_eq!(origin.line, 2, "{key}");
            assert!(origin.file.ends_with("spool.properties"));
        }
    }

    #[test]
    fn missing_spool_dir_drops_the_source() {
        let (c, findings) = read(&[("batchSize", "10")]);
        assert!(c.is_none());
        assert_eq!(findings[0].kind, FindingKind::DroppedComponent);
        assert!(
            findings[0].key.ends_with("r1.spoolDir"),
            "{}",
            findings[0].key
        );
    }

    #[test]
    fn keys_of_another_deserializer_are_reported_as_ignored() {
        let (c, findings) = read(&[("spoolDir", "/s"), ("deserializer.maxBlobLength", "5")]);
        assert!(c.is_some());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].kind, FindingKind::IgnoredKey);
    }

    #[test]
    fn a_custom_deserializer_class_is_unsupported_and_its_keys_are_not_noise() {
        let (c, f) = read(&[
            ("spoolDir", "/s"),
            ("deserializer", "com.example.MyDeserializer$Builder"),
            ("deserializer.delimiter", "</doc>"),
        ]);
        assert!(c.is_none());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, FindingKind::UnsupportedType);
        assert_eq!(f[0].key, "a1.sources.r1.deserializer");
    }

    #[test]
    fn blob_length_must_be_positive() {
        let (c, f) = read(&[
            ("spoolDir", "/s"),
            ("deserializer", BLOB_BUILDER_CLASS),
            ("deserializer.maxBlobLength", "0"),
        ]);
        assert!(c.is_none());
        assert_eq!(f[0].key, "a1.sources.r1.deserializer.maxBlobLength");
    }
}
