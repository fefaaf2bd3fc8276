//! The staging directory (`hdfs.stagingDir`): one sink's own, held with a lock, with the
//! counter that names its files.
//!
//! - `flumen.lock` is locked (`flock`) while the sink runs, so two agents or two sinks never
//!   share a staging directory: the second one fails to start its batches (and retries) rather
//!   than recovering files the first is still writing. The kernel drops the lock when the
//!   process dies, so a kill -9 leaves none behind.
//! - `counter` holds a high-water mark of the file counter. Flume starts each bucket's counter
//!   at the clock's milliseconds; a sink that rolls faster than once a millisecond runs ahead
//!   of the clock, and a restart would then give out names already used. So counters are
//!   reserved in blocks of [`RESERVE`], the end of each block written and fsynced before any
//!   counter of it is used, and a start begins past the last block.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::open_file::sync_dir;

/// Counters reserved per durable write of the high-water mark.
pub const RESERVE: u64 = 100_000;

/// A sink's locked staging directory.
pub struct Staging {
    dir: PathBuf,
    /// Holds the lock while the sink runs.
    _lock: File,
    next: u64,
    reserved: u64,
}

impl Staging {
    /// Creates and locks `dir`; the counter starts at `now_millis` or past the last
    /// reserved block, whichever is later.
    pub fn open(dir: &Path, now_millis: u64) -> std::io::Result<Staging> {
        std::fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("flumen.lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!(
                        "{} is in use by another sink or agent (each sink needs its own hdfs.stagingDir)",
                        dir.display()
                    ),
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let reserved = read_mark(&dir.join("counter"))?;
        Ok(Staging {
            dir: dir.to_path_buf(),
            _lock: lock,
            next: now_millis.max(reserved),
            reserved,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves the counter past `counter` (a file an earlier run left to finish).
    pub fn skip_past(&mut self, counter: u64) {
        self.next = self.next.max(counter);
    }

    /// The next file counter: past the last one and not behind the clock (Flume's names).
    pub fn next_counter(&mut self, now_millis: u64) -> std::io::Result<u64> {
        let counter = self.next.max(now_millis) + 1;
        if counter >= self.reserved {
            let mark = counter + RESERVE;
            write_mark(&self.dir.join("counter"), mark)?;
            self.reserved = mark;
        }
        self.next = counter;
        Ok(counter)
    }
}

fn read_mark(path: &Path) -> std::io::Result<u64> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse().unwrap_or(0)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Writes the mark to a new file, fsyncs it and renames it over the old one.
fn write_mark(path: &Path, mark: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("new");
    let mut file = File::create(&tmp)?;
    file.write_all(mark.to_string().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_sink_cannot_take_a_staging_directory_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let first = Staging::open(dir.path(), 1).unwrap();
        let err = Staging::open(dir.path(), 1).err().unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        assert!(err.to_string().contains("own hdfs.stagingDir"), "{err}");
        drop(first);
        assert!(Staging::open(dir.path(), 1).is_ok(), "free once released");
    }

    #[test]
    fn counters_never_repeat_across_restarts_even_ahead_of_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let mut used = std::collections::HashSet::new();
        for _ in 0..3 {
            let mut s = Staging::open(dir.path(), 1000).unwrap();
            // Far more files than milliseconds pass: the counter runs ahead of the clock.
            for _ in 0..2500 {
                assert!(used.insert(s.next_counter(1000).unwrap()));
            }
        }
    }
}
