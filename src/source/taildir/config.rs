//! The taildir source's configuration: Flume's keys and defaults, plus Flumen's multi-line keys.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Finding, FindingKind, PropReader};
use crate::event::{HeaderString, Headers};
use crate::interceptor::java_regex;

/// Flume's default `batchSize`.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// Flume's default `idleTimeout` (ms).
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 120_000;
/// Flume's default `writePosInterval` (ms).
pub const DEFAULT_WRITE_POS_INTERVAL_MS: u64 = 3_000;
/// Flume's default `backoffSleepIncrement` (ms).
pub const DEFAULT_BACKOFF_INCREMENT_MS: u64 = 1_000;
/// Flume's default `maxBackoffSleep` (ms).
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 5_000;
/// Flume's default `fileHeaderKey`.
pub const DEFAULT_FILE_HEADER_KEY: &str = "file";
/// Flume's byte-offset header name.
pub const BYTE_OFFSET_HEADER: &str = "byteoffset";
/// Default `multiline.timeout` (ms).
pub const DEFAULT_MULTILINE_TIMEOUT_MS: u64 = 1_000;
/// Default `multiline.maxLines`.
pub const DEFAULT_MULTILINE_MAX_LINES: usize = 500;

/// One file group: a directory and a pattern the file names must match whole.
#[derive(Clone, Debug)]
pub struct FileGroup {
    /// The group's name (`f1`).
    pub name: String,
    /// The directory (literal).
    pub dir: PathBuf,
    /// The file-name pattern (anchored).
    pub pattern: regex::Regex,
    /// The configured value, for messages.
    pub spec: String,
    /// `headers.<fg>.*`.
    pub headers: Headers,
}

/// Whether continuation lines join the line before them or the line after them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultilineMatch {
    /// A continuation line joins the event before it (stack traces).
    After,
    /// A continuation line joins the event after it (lines ending in `\`).
    Before,
}

/// Multi-line events (Flumen's, in Filebeat's terms): a line is a continuation when it matches
/// `pattern` (or does not, with `negate`).
#[derive(Clone, Debug)]
pub struct Multiline {
    /// `multiline.pattern`.
    pub pattern: regex::bytes::Regex,
    /// `multiline.negate`.
    pub negate: bool,
    /// `multiline.match`.
    pub matching: MultilineMatch,
    /// `multiline.timeout`: a pending event is emitted after this long without a new line.
    pub timeout: Duration,
    /// `multiline.maxLines`: an event never grows beyond this many lines.
    pub max_lines: usize,
}

impl Multiline {
    /// Whether `line` continues an event (per pattern and negate).
    pub fn is_continuation(&self, line: &[u8]) -> bool {
        self.pattern.is_match(line) != self.negate
    }
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct TaildirConfig {
    /// `filegroups` with `filegroups.<fg>`.
    pub groups: Vec<FileGroup>,
    /// `positionFile`.
    pub position_file: PathBuf,
    /// `byteOffsetHeader`.
    pub byte_offset_header: bool,
    /// `skipToEnd`: files not in the position file start at their end.
    pub skip_to_end: bool,
    /// `idleTimeout`: a file unchanged this long is closed, and its partial last line emitted.
    pub idle_timeout: Duration,
    /// `writePosInterval`: how often the position file is written (0: after every commit).
    pub write_pos_interval: Duration,
    /// `batchSize`.
    pub batch_size: usize,
    /// `maxBatchCount`: batches read from one file before moving to the next.
    pub max_batch_count: u64,
    /// `backoffSleepIncrement`.
    pub backoff_increment: Duration,
    /// `maxBackoffSleep`: also the polling period when no file event arrives.
    pub max_backoff: Duration,
    /// `cachePatternMatching` (accepted; directories are listed on change events anyway).
    pub cache_pattern_matching: bool,
    /// `fileHeader` with `fileHeaderKey`.
    pub file_header: Option<HeaderString>,
    /// Multi-line events, when `multiline.pattern` is set.
    pub multiline: Option<Multiline>,
}

impl TaildirConfig {
    /// Reads Flume's taildir keys; `None` when Flume would drop the source.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let names = r.required_string("filegroups")?;
        let mut groups = Vec::new();
        for name in names.split_whitespace() {
            groups.push(file_group(r, name)?);
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let position_file = r
            .opt_string("positionFile")
            .map(|s| PathBuf::from(s.trim()))
            .unwrap_or_else(|| home.join(".flume").join("taildir_position.json"));
        let ms = Duration::from_millis(1);
        let byte_offset_header = r.bool("byteOffsetHeader", false);
        let skip_to_end = r.bool("skipToEnd", false);
        let idle_timeout = r.duration(
            "idleTimeout",
            Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS),
            ms,
        )?;
        let write_pos_interval = r.duration(
            "writePosInterval",
            Duration::from_millis(DEFAULT_WRITE_POS_INTERVAL_MS),
            ms,
        )?;
        let batch_size = r.number("batchSize", DEFAULT_BATCH_SIZE, 1, 1 << 24)?;
        let max_batch_count = r.number("maxBatchCount", u64::MAX, 1, u64::MAX)?;
        let backoff_increment = r.duration(
            "backoffSleepIncrement",
            Duration::from_millis(DEFAULT_BACKOFF_INCREMENT_MS),
            ms,
        )?;
        let max_backoff = r.duration(
            "maxBackoffSleep",
            Duration::from_millis(DEFAULT_MAX_BACKOFF_MS),
            ms,
        )?;
        let cache_pattern_matching = r.bool("cachePatternMatching", true);
        let file_header = r
            .bool("fileHeader", false)
            .then(|| HeaderString::from(r.string("fileHeaderKey", DEFAULT_FILE_HEADER_KEY)));
        r.mark_used("fileHeaderKey");
        let multiline = multiline(r)?;
        Some(TaildirConfig {
            groups,
            position_file,
            byte_offset_header,
            skip_to_end,
            idle_timeout,
            write_pos_interval,
            batch_size,
            max_batch_count,
            backoff_increment,
            max_backoff: max_backoff.max(Duration::from_millis(10)),
            cache_pattern_matching,
            file_header,
            multiline,
        })
    }
}

fn file_group(r: &mut PropReader<'_>, name: &str) -> Option<FileGroup> {
    let key = format!("filegroups.{name}");
    let spec = r.required_string(&key)?;
    let path = PathBuf::from(spec.trim());
    let (dir, file) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(file)) if path.is_absolute() => {
            (dir.to_path_buf(), file.to_string_lossy().into_owned())
        }
        _ => {
            java_regex::drop_for_bad_value(
                r,
                &key,
                format!("`{spec}` is not an absolute path ending in a file name pattern; Flume drops the source."),
                "an absolute path such as /var/log/app/.*\\.log",
            );
            return None;
        }
    };
    // Flume matches the whole name (`Matcher.matches`).
    let pattern = java_regex::compile_str(r, &key, &format!("^(?:{file})$"))?;
    let mut headers = Headers::new();
    for (k, prop) in r.sub_entries(&format!("headers.{name}")) {
        headers.insert(
            HeaderString::from(k.as_str()),
            HeaderString::from(prop.value.as_str()),
        );
    }
    r.mark_prefix_used(&format!("headers.{name}"));
    Some(FileGroup {
        name: name.to_string(),
        dir,
        pattern,
        spec,
        headers,
    })
}

fn multiline(r: &mut PropReader<'_>) -> Option<Option<Multiline>> {
    let Some(pattern_src) = r.opt_string("multiline.pattern") else {
        for key in [
            "multiline.negate",
            "multiline.match",
            "multiline.timeout",
            "multiline.maxLines",
        ] {
            if let Some(prop) = r.raw(key) {
                let finding = Finding::new(
                    FindingKind::IgnoredKey,
                    Some(prop.origin.clone()),
                    prop.full_key.clone(),
                    "Ignored: multi-line events need `multiline.pattern`.".to_string(),
                );
                r.push(finding);
            }
        }
        return Some(None);
    };
    let pattern = java_regex::compile(r, "multiline.pattern", &pattern_src)?;
    let negate = r.bool("multiline.negate", false);
    let matching = match r.choice("multiline.match", "after", &["after", "before"]) {
        "before" => MultilineMatch::Before,
        _ => MultilineMatch::After,
    };
    let timeout = r.duration(
        "multiline.timeout",
        Duration::from_millis(DEFAULT_MULTILINE_TIMEOUT_MS),
        Duration::from_millis(1),
    )?;
    let max_lines = r.number(
        "multiline.maxLines",
        DEFAULT_MULTILINE_MAX_LINES,
        1,
        1 << 20,
    )?;
    Some(Some(Multiline {
        pattern,
        negate,
        matching,
        timeout,
        max_lines,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Props;

    fn read(pairs: &[(&str, &str)]) -> (Option<TaildirConfig>, Vec<Finding>) {
        let props = Props::from_pairs("a.conf", "a1.sources.r1", pairs);
        let mut r = PropReader::new(&props, "r1");
        let c = TaildirConfig::from_props(&mut r);
        (c, r.finish())
    }

    #[test]
    fn defaults_are_flumes() {
        let (c, findings) = read(&[
            ("filegroups", "f1 f2"),
            ("filegroups.f1", "/var/log/app/.*\\.log"),
            ("filegroups.f2", "/var/log/other/x.log"),
            ("headers.f1.topic", "app"),
        ]);
        assert!(findings.is_empty(), "{findings:?}");
        let c = c.unwrap();
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.write_pos_interval, Duration::from_secs(3));
        assert_eq!(c.max_backoff, Duration::from_secs(5));
        assert!(c.position_file.ends_with(".flume/taildir_position.json"));
        assert!(c.groups[0].pattern.is_match("a.log"));
        assert!(
            !c.groups[0].pattern.is_match("a.log.1"),
            "the whole name must match"
        );
        assert_eq!(
            c.groups[0].headers.get("topic").map(|v| v.as_str()),
            Some("app")
        );
        assert!(c.multiline.is_none());
    }

    #[test]
    fn bad_groups_and_patterns_drop_the_source_with_the_key() {
        let (c, findings) = read(&[("filegroups", "f1"), ("filegroups.f1", "relative/x.log")]);
        assert!(c.is_none());
        assert!(findings[0].key.ends_with("filegroups.f1"), "{findings:?}");
        let (c, findings) = read(&[
            ("filegroups", "f1"),
            ("filegroups.f1", "/x/a.log"),
            ("multiline.pattern", "(unclosed"),
        ]);
        assert!(c.is_none());
        assert!(findings[0].key.ends_with("multiline.pattern"));
        let (_, findings) = read(&[
            ("filegroups", "f1"),
            ("filegroups.f1", "/x/a.log"),
            ("multiline.negate", "true"),
        ]);
        assert!(findings[0].message.contains("multiline.pattern"));
    }
}
