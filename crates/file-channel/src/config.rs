//! The file channel's configuration and Flume's defaults and bounds. Reading Flume's keys into
//! it is the agent's business (`flumen::channel::file_config`): this crate only takes the
//! resolved values.

use std::path::PathBuf;
use std::time::Duration;

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
}
