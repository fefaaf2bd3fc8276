//! What the source keeps on disk about its progress: the durable read position of the file
//! being read, and how a finished file is marked (renamed, deleted, or tracked in
//! `trackerDir`).
//!
//! # The position file
//! `<trackerDir>/.flumen-position.json` holds one JSON object (`version` 1): the file being
//! read (`file`, absolute), its identity when it was opened (`dev`, `ino`, `size`,
//! `mtime_ns`), and where the next uncommitted event starts (`offset` in bytes of the unit —
//! line, blob piece or Avro block — that holds it, plus `skip`, the events of that unit already
//! committed), and `events`, the events committed from the file so far. It is written after
//! every committed batch to a temporary file that is fsynced and renamed over the old one, so
//! a crash leaves either the old or the new position, never a torn one. Flume keeps its own
//! `.flumespool-main.meta` (an Avro file) there; Flumen neither reads nor writes it.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::{DeletePolicy, TrackingPolicy};

/// The position file's name inside the tracker directory.
pub const POSITION_FILE: &str = ".flumen-position.json";
const POSITION_VERSION: u32 = 1;

/// What identifies a file's content at one moment: a change in any field after the file was
/// picked up means someone wrote to, replaced or truncated it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
}

impl FileId {
    /// The identity of the file described by `m`.
    pub fn of(m: &Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime_ns: m
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.mtime_nsec()),
        }
    }

    /// Whether both describe the same inode (whatever its content).
    pub fn same_inode(&self, other: &FileId) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// Where reading resumes: the start of a unit (line, blob piece, Avro block) and how many
/// events of it were already committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Byte offset of the unit.
    pub offset: u64,
    /// Events of that unit already committed.
    pub skip: u64,
}

/// The content of the position file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionRecord {
    /// Format version.
    pub version: u32,
    /// The file being read, absolute.
    pub file: String,
    /// Its identity when it was opened.
    #[serde(flatten)]
    pub id: FileId,
    /// Where the next uncommitted event starts.
    #[serde(flatten)]
    pub position: Position,
    /// Events committed from the file so far.
    pub events: u64,
}

impl PositionRecord {
    /// A record for `file`.
    pub fn new(file: &Path, id: FileId, position: Position, events: u64) -> Self {
        PositionRecord {
            version: POSITION_VERSION,
            file: file.to_string_lossy().into_owned(),
            id,
            position,
            events,
        }
    }
}

/// Why the position file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The position file holds something else.
    #[error("{path} is not a Flumen position file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The name a finished file would be renamed to, or its tracker marker, already exists.
    #[error("{dest} already exists; the file name was used twice in the spooling directory")]
    Collision {
        /// The existing name.
        dest: PathBuf,
    },
}

fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> TrackerError + 'a {
    move |source| TrackerError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The durable position of the file being read.
#[derive(Debug)]
pub struct PositionStore {
    path: PathBuf,
    tmp: PathBuf,
}

impl PositionStore {
    /// The store inside `tracker_dir`.
    pub fn new(tracker_dir: &Path) -> Self {
        PositionStore {
            path: tracker_dir.join(POSITION_FILE),
            tmp: tracker_dir.join(format!("{POSITION_FILE}.tmp")),
        }
    }

    /// The saved record, if any.
    pub fn load(&self) -> Result<Option<PositionRecord>, TrackerError> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("reading", &self.path)(e)),
        };
        let record: PositionRecord =
            serde_json::from_slice(&text).map_err(|e| TrackerError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        if record.version != POSITION_VERSION {
            return Err(TrackerError::Corrupt {
                path: self.path.clone(),
                reason: format!("version {} (expected {POSITION_VERSION})", record.version),
            });
        }
        Ok(Some(record))
    }

    /// Replaces the record atomically: write a temporary file, fsync it, rename it over.
    pub fn save(&self, record: &PositionRecord) -> Result<(), TrackerError> {
        let bytes = serde_json::to_vec(record).map_err(|e| TrackerError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let mut f = File::create(&self.tmp).map_err(io("creating", &self.tmp))?;
        f.write_all(&bytes).map_err(io("writing", &self.tmp))?;
        f.sync_all().map_err(io("syncing", &self.tmp))?;
        std::fs::rename(&self.tmp, &self.path).map_err(io("renaming", &self.tmp))
    }

    /// Removes the record (the file it named is finished or gone).
    pub fn clear(&self) -> Result<(), TrackerError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("removing", &self.path)(e)),
        }
    }
}

/// How finished files are marked.
#[derive(Clone, Debug)]
pub struct Retirer {
    /// `spoolDir`, absolute.
    pub spool_dir: PathBuf,
    /// `trackerDir`, absolute.
    pub tracker_dir: PathBuf,
    /// `fileSuffix`.
    pub suffix: String,
    /// `deletePolicy`.
    pub delete: DeletePolicy,
    /// `trackingPolicy`.
    pub tracking: TrackingPolicy,
}

/// What was done with a finished file.
#[derive(Debug, PartialEq, Eq)]
pub enum Retired {
    /// Renamed to this path.
    Renamed(PathBuf),
    /// Deleted.
    Deleted,
    /// Left in place; this empty marker records it.
    Tracked(PathBuf),
}

impl Retirer {
    /// The tracker marker of `file` (`<trackerDir>/<path relative to spoolDir><suffix>`).
    pub fn marker(&self, file: &Path) -> PathBuf {
        let rel = file.strip_prefix(&self.spool_dir).unwrap_or(file);
        let mut name = self.tracker_dir.join(rel).into_os_string();
        name.push(&self.suffix);
        PathBuf::from(name)
    }

    /// Whether `file` is recorded as finished in the tracker directory.
    pub fn is_tracked(&self, file: &Path) -> bool {
        self.tracking == TrackingPolicy::TrackerDir
            && self.delete == DeletePolicy::Never
            && self.marker(file).exists()
    }

    /// Marks `file` finished: renamed (never over an existing file), deleted, or tracked.
    pub fn retire(&self, file: &Path) -> Result<Retired, TrackerError> {
        match (self.delete, self.tracking) {
            (DeletePolicy::Immediate, _) => {
                std::fs::remove_file(file).map_err(io("deleting", file))?;
                sync_parent(file);
                Ok(Retired::Deleted)
            }
            (DeletePolicy::Never, TrackingPolicy::Rename) => {
                let mut dest = file.as_os_str().to_owned();
                dest.push(&self.suffix);
                let dest = PathBuf::from(dest);
                rename_no_replace(file, &dest)?;
                sync_parent(file);
                Ok(Retired::Renamed(dest))
            }
            (DeletePolicy::Never, TrackingPolicy::TrackerDir) => {
                let marker = self.marker(file);
                if let Some(parent) = marker.parent() {
                    std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
                }
                match OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&marker)
                {
                    Ok(f) => {
                        let _ = f.sync_all();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Err(TrackerError::Collision { dest: marker });
                    }
                    Err(e) => return Err(io("creating", &marker)(e)),
                }
                sync_parent(&marker);
                Ok(Retired::Tracked(marker))
            }
        }
    }
}

/// Renames `from` to `to` unless `to` exists (atomically where the file system supports it).
fn rename_no_replace(from: &Path, to: &Path) -> Result<(), TrackerError> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(TrackerError::Collision {
            dest: to.to_path_buf(),
        }),
        // The file system cannot rename without replacing: check, then rename.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            if to.exists() {
                return Err(TrackerError::Collision {
                    dest: to.to_path_buf(),
                });
            }
            std::fs::rename(from, to).map_err(io("renaming", from))
        }
        Err(e) => Err(io("renaming", from)(std::io::Error::from(e))),
    }
}

/// Makes a rename or unlink in `path`'s directory durable (best effort).
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retirer(dir: &Path, delete: DeletePolicy, tracking: TrackingPolicy) -> Retirer {
        Retirer {
            spool_dir: dir.to_path_buf(),
            tracker_dir: dir.join(".flumespool"),
            suffix: ".COMPLETED".into(),
            delete,
            tracking,
        }
    }

    #[test]
    fn position_round_trips_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let store = PositionStore::new(dir.path());
        assert!(store.load().unwrap().is_none());
        let id = FileId {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: 4,
        };
        let rec = PositionRecord::new(
            Path::new("/s/a.log"),
            id,
            Position {
                offset: 10,
                skip: 2,
            },
            7,
        );
        store.save(&rec).unwrap();
        assert_eq!(store.load().unwrap(), Some(rec));
        store.clear().unwrap();
        assert!(store.load().unwrap().is_none());
    }

    #[test]
    fn a_foreign_position_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(POSITION_FILE), b"{\"x\":1}").unwrap();
        let err = PositionStore::new(dir.path()).load().unwrap_err();
        assert!(matches!(err, TrackerError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn rename_never_replaces_an_existing_completed_file() {
        let dir = tempfile::tempdir().unwrap();
        let r = retirer(dir.path(), DeletePolicy::Never, TrackingPolicy::Rename);
        let a = dir.path().join("a.log");
        std::fs::write(&a, b"new").unwrap();
        std::fs::write(dir.path().join("a.log.COMPLETED"), b"old").unwrap();
        let err = r.retire(&a).unwrap_err();
        assert!(matches!(err, TrackerError::Collision { .. }), "{err}");
        assert!(a.exists());
        assert_eq!(
            std::fs::read(dir.path().join("a.log.COMPLETED")).unwrap(),
            b"old"
        );
        let b = dir.path().join("b.log");
        std::fs::write(&b, b"x").unwrap();
        assert_eq!(
            r.retire(&b).unwrap(),
            Retired::Renamed(dir.path().join("b.log.COMPLETED"))
        );
        assert!(!b.exists());
    }

    #[test]
    fn tracker_dir_marks_relative_paths_and_delete_removes() {
        let dir = tempfile::tempdir().unwrap();
        let r = retirer(dir.path(), DeletePolicy::Never, TrackingPolicy::TrackerDir);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let f = dir.path().join("sub/x.log");
        std::fs::write(&f, b"x").unwrap();
        assert!(!r.is_tracked(&f));
        let marker = dir.path().join(".flumespool/sub/x.log.COMPLETED");
        assert_eq!(r.retire(&f).unwrap(), Retired::Tracked(marker.clone()));
        assert!(f.exists() && marker.exists() && r.is_tracked(&f));
        assert!(matches!(r.retire(&f), Err(TrackerError::Collision { .. })));
        let d = retirer(dir.path(), DeletePolicy::Immediate, TrackingPolicy::Rename);
        assert_eq!(d.retire(&f).unwrap(), Retired::Deleted);
        assert!(!f.exists());
    }
}
