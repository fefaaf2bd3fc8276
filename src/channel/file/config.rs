//! The file channel's configuration: Flume's keys, defaults and bounds.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Finding, FindingKind, PropReader};

/// Flume's default `capacity`.
pub const DEFAULT_CAPACITY: usize = 1_000_000;
/// Flume's default `transactionCapacity`.
pub const DEFAULT_TRANSACTION_CAPACITY: usize = 10_000;
/// Flume's default `checkpointInterval` (ms).
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 30_000;
/// Flume's default and largest `maxFileSize`: `Integer.MAX_VALUE` less 500 MiB (about 1.62 GB).
pub const MAX_FILE_SIZE: u64 = i32::MAX as u64 - 500 * 1024 * 1024;
/// Flume's default `minimumRequiredSpace` (500 MiB).
pub const DEFAULT_MINIMUM_REQUIRED_SPACE: u64 = 500 * 1024 * 1024;
/// Flume's floor for `minimumRequiredSpace` (1 MiB).
pub const FLOOR_MINIMUM_REQUIRED_SPACE: u64 = 1024 * 1024;
/// Flume's default `keep-alive` (s).
pub const DEFAULT_KEEP_ALIVE_SECS: u64 = 3;
/// Flume's default `fsyncInterval` (s), used when `fsyncPerTransaction = false`.
pub const DEFAULT_FSYNC_INTERVAL_SECS: u64 = 5;
/// Smallest data file Flumen rolls at (a header and a few records); smaller values are raised.
pub const MIN_FILE_SIZE: u64 = 64 * 1024;

/// The resolved configuration of a file channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChannelConfig {
    /// `checkpointDir`.
    pub checkpoint_dir: PathBuf,
    /// `dataDirs`: data files are spread over them in turn (one disk each, ideally).
    pub data_dirs: Vec<PathBuf>,
    /// `capacity`: most events held (queued + taken, uncommitted).
    pub capacity: usize,
    /// `transactionCapacity`: most events in one put or take.
    pub transaction_capacity: usize,
    /// `checkpointInterval`.
    pub checkpoint_interval: Duration,
    /// `maxFileSize`: a data file rolls once it reaches this size.
    pub max_file_size: u64,
    /// `minimumRequiredSpace`: puts are refused while a data dir has less free space.
    pub minimum_required_space: u64,
    /// `useDualCheckpoints`.
    pub use_dual_checkpoints: bool,
    /// `backupCheckpointDir` (required with dual checkpoints).
    pub backup_checkpoint_dir: Option<PathBuf>,
    /// `keep-alive`: how long a put waits for room.
    pub keep_alive: Duration,
    /// `fsyncPerTransaction`: fsync before every commit returns (the default, and the only
    /// mode that survives power loss).
    pub fsync_per_transaction: bool,
    /// `fsyncInterval`: how often to fsync when `fsyncPerTransaction = false`.
    pub fsync_interval: Duration,
    /// `checkpointOnClose`.
    pub checkpoint_on_close: bool,
}

/// `~/.flumen/file-channel/<channel>`: Flumen's default home for a channel's files. The
/// channel name is part of it so that two default-configured channels do not collide (Flume's
/// single shared default makes the second one fail on the lock); never Flume's `~/.flume`.
pub fn default_base(channel: &str) -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".flumen").join("file-channel").join(channel)
}

impl Default for FileChannelConfig {
    fn default() -> Self {
        FileChannelConfig::with_base(&default_base("default"))
    }
}

impl FileChannelConfig {
    /// Defaults with the directories under `base` (`checkpoint`, `data`).
    pub fn with_base(base: &std::path::Path) -> Self {
        FileChannelConfig {
            checkpoint_dir: base.join("checkpoint"),
            data_dirs: vec![base.join("data")],
            capacity: DEFAULT_CAPACITY,
            transaction_capacity: DEFAULT_TRANSACTION_CAPACITY,
            checkpoint_interval: Duration::from_millis(DEFAULT_CHECKPOINT_INTERVAL_MS),
            max_file_size: MAX_FILE_SIZE,
            minimum_required_space: DEFAULT_MINIMUM_REQUIRED_SPACE,
            use_dual_checkpoints: false,
            backup_checkpoint_dir: None,
            keep_alive: Duration::from_secs(DEFAULT_KEEP_ALIVE_SECS),
            fsync_per_transaction: true,
            fsync_interval: Duration::from_secs(DEFAULT_FSYNC_INTERVAL_SECS),
            checkpoint_on_close: true,
        }
    }

    /// Reads Flume's file-channel keys for channel `name`. `None` when Flume would drop it.
    pub fn from_props(name: &str, r: &mut PropReader<'_>) -> Option<Self> {
        let d = FileChannelConfig::with_base(&default_base(name));
        let checkpoint_dir = r
            .opt_string("checkpointDir")
            .map(|s| PathBuf::from(s.trim()))
            .unwrap_or(d.checkpoint_dir);
        let data_dirs = match r.opt_string("dataDirs") {
            Some(s) => {
                let dirs: Vec<PathBuf> = s
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect();
                if dirs.is_empty() {
                    d.data_dirs
                } else {
                    dirs
                }
            }
            None => d.data_dirs,
        };
        let use_dual_checkpoints = r.bool("useDualCheckpoints", false);
        let backup_checkpoint_dir = r
            .opt_string("backupCheckpointDir")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        if use_dual_checkpoints {
            let problem = match &backup_checkpoint_dir {
                None => Some("useDualCheckpoints is true but backupCheckpointDir is not set"),
                Some(b) if *b == checkpoint_dir => {
                    Some("backupCheckpointDir is the same directory as checkpointDir")
                }
                Some(_) => None,
            };
            if let Some(problem) = problem {
                let origin = r.raw("useDualCheckpoints").map(|p| p.origin.clone());
                r.drop_component(
                    Finding::new(
                        FindingKind::DroppedComponent,
                        origin,
                        r.full_key("backupCheckpointDir"),
                        format!("{problem}; Flume drops this channel."),
                    )
                    .expected("a backupCheckpointDir other than checkpointDir"),
                );
                return None;
            }
        }
        // Flume replaces a capacity <= 0 with the default (with a warning); a non-number drops.
        let capacity = match r.number("capacity", d.capacity as i64, i64::MIN, i64::MAX)? {
            c if c <= 0 => d.capacity,
            c => usize::try_from(c)
                .unwrap_or(usize::MAX / 2)
                .min(usize::MAX / 2),
        };
        let transaction_capacity = match r.number(
            "transactionCapacity",
            d.transaction_capacity as i64,
            i64::MIN,
            i64::MAX,
        )? {
            t if t <= 0 => d.transaction_capacity,
            t => usize::try_from(t)
                .unwrap_or(usize::MAX / 2)
                .min(usize::MAX / 2),
        };
        // Flume refuses (and drops) a channel whose transactions could exceed its capacity.
        crate::channel::transaction_fits(r, transaction_capacity, capacity)?;
        let interval_ms = r.number(
            "checkpointInterval",
            DEFAULT_CHECKPOINT_INTERVAL_MS as i64,
            i64::MIN,
            i64::MAX,
        )?;
        let checkpoint_interval = Duration::from_millis(if interval_ms <= 0 {
            DEFAULT_CHECKPOINT_INTERVAL_MS
        } else {
            interval_ms as u64
        });
        let max_file_size = r
            .number("maxFileSize", MAX_FILE_SIZE as i64, i64::MIN, i64::MAX)?
            .clamp(MIN_FILE_SIZE as i64, MAX_FILE_SIZE as i64) as u64;
        let minimum_required_space = r
            .number(
                "minimumRequiredSpace",
                DEFAULT_MINIMUM_REQUIRED_SPACE as i64,
                i64::MIN,
                i64::MAX,
            )?
            .max(FLOOR_MINIMUM_REQUIRED_SPACE as i64) as u64;
        let keep_alive = r.duration("keep-alive", d.keep_alive, Duration::from_secs(1))?;
        let fsync_per_transaction = r.bool("fsyncPerTransaction", true);
        let fsync_interval =
            r.duration("fsyncInterval", d.fsync_interval, Duration::from_secs(1))?;
        let checkpoint_on_close = r.bool("checkpointOnClose", true);
        super::encryption::refuse_encryption(r);
        if r.is_fatal() {
            return None;
        }
        // Flume-only keys Flumen reads and does not need: its replay is always the fast one.
        for key in [
            "use-log-replay-v1",
            "use-fast-replay",
            "compressBackupCheckpoint",
        ] {
            r.bool(key, false);
        }
        Some(FileChannelConfig {
            checkpoint_dir,
            data_dirs,
            capacity,
            transaction_capacity,
            checkpoint_interval,
            max_file_size,
            minimum_required_space,
            use_dual_checkpoints,
            backup_checkpoint_dir,
            keep_alive,
            fsync_per_transaction,
            fsync_interval: fsync_interval.max(Duration::from_millis(1)),
            checkpoint_on_close,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Props;

    fn read(pairs: &[(&str, &str)]) -> (Option<FileChannelConfig>, Vec<Finding>) {
        let props = Props::from_pairs("a.conf", "a1.channels.c1", pairs);
        let mut r = PropReader::new(&props, "c1");
        let c = FileChannelConfig::from_props("c1", &mut r);
        (c, r.finish())
    }

    #[test]
    fn defaults_are_flumes_under_flumens_home() {
        let (c, findings) = read(&[]);
        let c = c.unwrap();
        assert!(findings.is_empty());
        assert_eq!(c.capacity, 1_000_000);
        assert_eq!(c.transaction_capacity, 10_000);
        assert_eq!(c.checkpoint_interval, Duration::from_secs(30));
        assert_eq!(c.max_file_size, 1_623_195_647);
        assert_eq!(c.minimum_required_space, 524_288_000);
        assert!(c.fsync_per_transaction && c.checkpoint_on_close);
        assert!(c
            .checkpoint_dir
            .ends_with(".flumen/file-channel/c1/checkpoint"));
        assert!(c.data_dirs[0].ends_with(".flumen/file-channel/c1/data"));
    }

    #[test]
    fn bounds_and_lists_follow_flume() {
        let (c, _) = read(&[
            ("dataDirs", " /d1 , ,/d2"),
            ("maxFileSize", "99999999999"),
            ("minimumRequiredSpace", "10"),
            ("capacity", "0"),
            ("checkpointInterval", "-5"),
        ]);
        let c = c.unwrap();
        assert_eq!(
            c.data_dirs,
            vec![PathBuf::from("/d1"), PathBuf::from("/d2")]
        );
        assert_eq!(c.max_file_size, MAX_FILE_SIZE);
        assert_eq!(c.minimum_required_space, 1_048_576);
        assert_eq!(c.capacity, 1_000_000);
        assert_eq!(c.checkpoint_interval, Duration::from_secs(30));
    }

    #[test]
    fn dual_checkpoints_need_a_distinct_backup_dir() {
        let (c, findings) = read(&[("useDualCheckpoints", "true"), ("checkpointDir", "/x")]);
        assert!(c.is_none());
        assert!(findings[0]
            .message
            .contains("backupCheckpointDir is not set"));
        let (c, _) = read(&[
            ("useDualCheckpoints", "true"),
            ("checkpointDir", "/x"),
            ("backupCheckpointDir", "/x"),
        ]);
        assert!(c.is_none());
        let (c, _) = read(&[("transactionCapacity", "20"), ("capacity", "10")]);
        assert!(c.is_none());
    }
}
