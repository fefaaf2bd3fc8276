//! The file channel's directories: creating, locking, and refusing anybody else's files.
//!
//! Before anything is written, every directory is listed and every file in it must be one of
//! Flumen's: `flumen.lock`, `checkpoint`, `checkpoint.tmp` in checkpoint directories and
//! `log-<id>.flumen` (with Flumen's magic) in data directories. Anything else — a Flume file
//! channel's `log-1`, `checkpoint.meta`, `inflightputs`, or a `log-3.flumen` with foreign bytes —
//! makes the channel refuse to start and leaves every file as it was. The only files the
//! channel ever deletes or truncates are ones it has proven to be its own.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::checkpoint::{self, CHECKPOINT_FILE, CHECKPOINT_TMP};
use super::format::{self, HeaderProblem, FILE_HEADER_LEN, LOG_MAGIC};
use super::fs::{DirLock, Fs, LOCK_FILE};

/// Why the channel's directories cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// Another process holds the lock.
    #[error("directory {} is in use by another Flumen process (lock {}); two agents must not share file-channel directories", dir.display(), dir.join(LOCK_FILE).display())]
    InUse {
        /// The directory.
        dir: PathBuf,
    },
    /// Files that are not Flumen's.
    #[error("refusing to use {}: it holds files that are not Flumen's file-channel files ({}); they were left untouched — give the channel its own empty directory", dir.display(), files.join(", "))]
    Foreign {
        /// The directory.
        dir: PathBuf,
        /// The offending names.
        files: Vec<String>,
    },
    /// A data file written by a newer Flumen.
    #[error("{} was written in file-channel format version {version}, which this Flumen cannot read; upgrade Flumen", path.display())]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// Its version.
        version: u32,
    },
    /// An I/O error.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// Wraps an I/O error with what and where.
pub fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> DirError + 'a {
    move |source| DirError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The directories of one channel.
#[derive(Clone, Debug)]
pub struct Layout {
    /// `checkpointDir`.
    pub checkpoint_dir: PathBuf,
    /// `backupCheckpointDir` when dual checkpoints are on.
    pub backup_dir: Option<PathBuf>,
    /// `dataDirs`.
    pub data_dirs: Vec<PathBuf>,
}

impl Layout {
    /// Every distinct directory with whether it holds checkpoints and/or data.
    fn roles(&self) -> BTreeMap<PathBuf, (bool, bool)> {
        let mut roles: BTreeMap<PathBuf, (bool, bool)> = BTreeMap::new();
        roles.entry(self.checkpoint_dir.clone()).or_default().0 = true;
        if let Some(b) = &self.backup_dir {
            roles.entry(b.clone()).or_default().0 = true;
        }
        for d in &self.data_dirs {
            roles.entry(d.clone()).or_default().1 = true;
        }
        roles
    }
}

/// Creates and locks every directory. The locks are held as long as the returned guards live.
pub fn lock_all(fs: &dyn Fs, layout: &Layout) -> Result<Vec<Box<dyn DirLock>>, DirError> {
    let mut locks = Vec::new();
    for dir in layout.roles().keys() {
        fs.create_dir_all(dir)
            .map_err(io_err("cannot create", dir))?;
        match fs.lock_dir(dir) {
            Ok(lock) => locks.push(lock),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(DirError::InUse { dir: dir.clone() })
            }
            Err(e) => return Err(io_err("cannot lock", dir)(e)),
        }
    }
    Ok(locks)
}

/// A data file found on disk.
#[derive(Clone, Debug)]
pub struct LogFileInfo {
    /// Its id (from its name, checked against its header).
    pub id: u32,
    /// Its path.
    pub path: PathBuf,
    /// Its length.
    pub len: u64,
}

/// What the directories hold, once proven to be all Flumen's.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Data files by id.
    pub logs: BTreeMap<u32, LogFileInfo>,
    /// Data files too short to hold a header (a crash right after creating them): deletable.
    pub stubs: Vec<PathBuf>,
    /// Leftover `checkpoint.tmp` files: deletable.
    pub stale_tmp: Vec<PathBuf>,
}

/// The name of data file `id`.
pub fn log_name(id: u32) -> String {
    format!("log-{id}.flumen")
}

fn parse_log_name(name: &str) -> Option<u32> {
    name.strip_prefix("log-")?
        .strip_suffix(".flumen")?
        .parse()
        .ok()
}

/// Lists and checks every directory; refuses foreign files.
pub fn inventory(fs: &dyn Fs, layout: &Layout) -> Result<Inventory, DirError> {
    let mut inv = Inventory::default();
    for (dir, (is_checkpoint, is_data)) in layout.roles() {
        let mut foreign = Vec::new();
        let entries = fs.list(&dir).map_err(io_err("cannot list", &dir))?;
        for entry in entries {
            let name = entry.name.as_str();
            let path = dir.join(name);
            if name == LOCK_FILE || (entry.is_dir && name == "lost+found") {
                continue;
            }
            if entry.is_dir {
                foreign.push(name.to_string());
                continue;
            }
            if is_checkpoint && (name == CHECKPOINT_FILE || name == CHECKPOINT_TMP) {
                let head = read_head(fs, &path, 8)?;
                if !checkpoint::looks_ours(&head) {
                    foreign.push(name.to_string());
                } else if name == CHECKPOINT_TMP {
                    inv.stale_tmp.push(path);
                }
                continue;
            }
            let Some(id) = parse_log_name(name).filter(|_| is_data) else {
                foreign.push(name.to_string());
                continue;
            };
            let f = fs.open_read(&path).map_err(io_err("cannot open", &path))?;
            let len = f.size().map_err(io_err("cannot stat", &path))?;
            let head = read_head(fs, &path, FILE_HEADER_LEN)?;
            match format::decode_file_header(&head) {
                Ok(_) | Err(HeaderProblem::Corrupt) => {
                    // A damaged header with our magic is still ours: replay reports it.
                    inv.logs.insert(id, LogFileInfo { id, path, len });
                }
                Err(HeaderProblem::Short) if LOG_MAGIC.starts_with(&head) => inv.stubs.push(path),
                Err(HeaderProblem::Version(version)) => {
                    return Err(DirError::NewerFormat { path, version })
                }
                Err(HeaderProblem::Short | HeaderProblem::Foreign) => {
                    foreign.push(name.to_string())
                }
            }
        }
        if !foreign.is_empty() {
            foreign.sort();
            return Err(DirError::Foreign {
                dir: dir.clone(),
                files: foreign,
            });
        }
    }
    Ok(inv)
}

fn read_head(fs: &dyn Fs, path: &Path, n: usize) -> Result<Vec<u8>, DirError> {
    let f = fs.open_read(path).map_err(io_err("cannot open", path))?;
    let len = f.size().map_err(io_err("cannot stat", path))? as usize;
    let mut buf = vec![0u8; n.min(len)];
    f.read_exact_at(&mut buf, 0)
        .map_err(io_err("cannot read", path))?;
    Ok(buf)
}

/// The data directory file `id` goes to: files are spread over the data dirs in turn.
pub fn data_dir_for(layout: &Layout, id: u32) -> &Path {
    &layout.data_dirs[id as usize % layout.data_dirs.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_round_trip() {
        assert_eq!(parse_log_name(&log_name(42)), Some(42));
        assert_eq!(parse_log_name("log-1"), None);
        assert_eq!(parse_log_name("log-1.meta"), None);
    }
}
