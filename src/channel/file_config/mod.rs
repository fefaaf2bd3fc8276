//! Reading Flume's file-channel keys into a [`FileChannelConfig`], with Flume's bounds: the
//! file channel crate takes only the resolved values.

use std::path::PathBuf;
use std::time::Duration;

use crate::channel::file::config::{
    default_base, DEFAULT_CHECKPOINT_INTERVAL_MS, DEFAULT_MINIMUM_REQUIRED_SPACE,
    FLOOR_MINIMUM_REQUIRED_SPACE, MAX_FILE_SIZE, MIN_FILE_SIZE,
};
use crate::channel::file::FileChannelConfig;
use crate::config::{Finding, FindingKind, PropReader};

mod encryption;

/// Reads Flume's file-channel keys for channel `name`. `None` when Flume would drop it.
pub fn from_props(name: &str, r: &mut PropReader<'_>) -> Option<FileChannelConfig> {
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
    let fsync_interval = r.duration("fsyncInterval", d.fsync_interval, Duration::from_secs(1))?;
    let checkpoint_on_close = r.bool("checkpointOnClose", true);
    encryption::refuse_encryption(r);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Props;

    fn read(pairs: &[(&str, &str)]) -> (Option<FileChannelConfig>, Vec<Finding>) {
        let props = Props::from_pairs("a.conf", "a1.channels.c1", pairs);
        let mut r = PropReader::new(&props, "c1");
        let c = from_props("c1", &mut r);
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
