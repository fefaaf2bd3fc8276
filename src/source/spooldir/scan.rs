//! Finding the next file to read, as Flume's `ReliableSpoolingFileEventReader` does.
//!
//! A candidate is a file (or a link to one) whose name does not start with `.`, does not end
//! with `fileSuffix`, matches `includePattern`, does not match `ignorePattern`, and is not
//! recorded as finished in `trackerDir`. With `recursiveDirectorySearch`, subdirectories are
//! searched too, except those whose name starts with `.` or matches `ignorePattern` and the
//! tracker directory itself; links to directories are not followed. Patterns match the whole
//! name. `oldest` / `youngest` pick by modification time in milliseconds (Flume's
//! `lastModified`), ties by the smaller file name; `random` takes a shuffled listing and lists
//! again only when it is used up.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use regex::Regex;

use super::config::ConsumeOrder;
use super::tracker::Retirer;

/// What decides whether a file is a candidate.
#[derive(Clone, Debug)]
pub struct Filter {
    /// `includePattern`.
    pub include: Regex,
    /// `ignorePattern`.
    pub ignore: Regex,
    /// `recursiveDirectorySearch`.
    pub recursive: bool,
    /// Marks finished files; also names the tracker directory to skip.
    pub retirer: Retirer,
}

/// One candidate file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Absolute path.
    pub path: PathBuf,
    /// Modification time in milliseconds.
    pub mtime_ms: i128,
}

/// Problems met while listing (the listing goes on; Flume counts them as
/// GenericProcessingFail).
#[derive(Debug, Default)]
pub struct Listing {
    /// The candidates.
    pub files: Vec<Candidate>,
    /// Directories that could not be read, with why.
    pub errors: Vec<(PathBuf, std::io::Error)>,
}

impl Filter {
    /// Every candidate under the spooling directory, in directory order.
    pub fn list(&self) -> Listing {
        let mut out = Listing::default();
        let root = self.retirer.spool_dir.clone();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) => {
                    out.errors.push((dir, e));
                    continue;
                }
            };
            for entry in entries {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        out.errors.push((dir.clone(), e));
                        continue;
                    }
                };
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') {
                    continue;
                }
                let path = entry.path();
                let Ok(file_type) = entry.file_type() else {
                    continue;
                };
                if file_type.is_dir() {
                    if self.recursive
                        && !self.ignore.is_match(&name)
                        && path != self.retirer.tracker_dir
                    {
                        stack.push(path);
                    }
                    continue;
                }
                // Links are followed to decide whether they are files (Flume opens them).
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if !meta.is_file() || !self.accepts_name(&name) || self.retirer.is_tracked(&path) {
                    continue;
                }
                let mtime_ms = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as i128)
                    .unwrap_or(0);
                out.files.push(Candidate { path, mtime_ms });
            }
        }
        out
    }

    /// Whether a file name passes the suffix, include and ignore rules.
    pub fn accepts_name(&self, name: &str) -> bool {
        !name.starts_with('.')
            && !name.ends_with(&self.retirer.suffix)
            && self.include.is_match(name)
            && !self.ignore.is_match(name)
    }

    /// Whether `path` is a candidate now (used to resume the file named in the position
    /// file only if it would be picked at all).
    pub fn is_candidate(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.retirer.spool_dir) else {
            return false;
        };
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let Some((name, dirs)) = parts.split_last() else {
            return false;
        };
        if !dirs.is_empty() && !self.recursive {
            return false;
        }
        let mut dir = self.retirer.spool_dir.clone();
        for d in dirs {
            dir.push(d);
            if d.starts_with('.') || self.ignore.is_match(d) || dir == self.retirer.tracker_dir {
                return false;
            }
        }
        self.accepts_name(name)
            && std::fs::metadata(path).is_ok_and(|m| m.is_file())
            && !self.retirer.is_tracked(path)
    }
}

/// The file to read next from `files`, by `order` (`Random` takes the last: the listing is
/// shuffled beforehand).
pub fn pick(files: &[Candidate], order: ConsumeOrder) -> Option<&Candidate> {
    let name = |c: &Candidate| c.path.file_name().map(|n| n.to_os_string());
    match order {
        ConsumeOrder::Oldest => files
            .iter()
            .min_by(|a, b| (a.mtime_ms, name(a), &a.path).cmp(&(b.mtime_ms, name(b), &b.path))),
        ConsumeOrder::Youngest => files.iter().min_by(|a, b| {
            (std::cmp::Reverse(a.mtime_ms), name(a), &a.path).cmp(&(
                std::cmp::Reverse(b.mtime_ms),
                name(b),
                &b.path,
            ))
        }),
        ConsumeOrder::Random => files.last(),
    }
}

/// Shuffles `files` in place (Fisher-Yates with the OS random source).
pub fn shuffle(files: &mut [Candidate]) {
    for i in (1..files.len()).rev() {
        let mut b = [0u8; 8];
        let r = getrandom::getrandom(&mut b).map(|()| u64::from_le_bytes(b));
        let j = (r.unwrap_or(i as u64) % (i as u64 + 1)) as usize;
        files.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::spooldir::config::{DeletePolicy, TrackingPolicy};

    fn filter(dir: &Path, recursive: bool, tracking: TrackingPolicy) -> Filter {
        Filter {
            include: Regex::new("^(?:.*)$").unwrap(),
            ignore: Regex::new("^(?:skip.*)$").unwrap(),
            recursive,
            retirer: Retirer {
                spool_dir: dir.to_path_buf(),
                tracker_dir: dir.join(".flumespool"),
                suffix: ".COMPLETED".into(),
                delete: DeletePolicy::Never,
                tracking,
            },
        }
    }

    fn names(l: &Listing, root: &Path) -> Vec<String> {
        let mut v: Vec<String> = l
            .files
            .iter()
            .map(|c| c.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn hidden_completed_ignored_and_tracked_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "a.log",
            ".hidden",
            "b.log.COMPLETED",
            "skipme",
            "sub/c.log",
            "skipdir/d.log",
            ".x/e.log",
        ] {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        std::fs::create_dir_all(d.join(".flumespool")).unwrap();
        std::fs::write(d.join(".flumespool/t.log"), b"x").unwrap();
        let flat = filter(d, false, TrackingPolicy::Rename);
        assert_eq!(names(&flat.list(), d), ["a.log"]);
        let deep = filter(d, true, TrackingPolicy::TrackerDir);
        assert_eq!(names(&deep.list(), d), ["a.log", "sub/c.log"]);
        std::fs::create_dir_all(d.join(".flumespool/sub")).unwrap();
        std::fs::write(d.join(".flumespool/sub/c.log.COMPLETED"), b"").unwrap();
        assert_eq!(names(&deep.list(), d), ["a.log"]);
        assert!(deep.is_candidate(&d.join("a.log")));
        assert!(!deep.is_candidate(&d.join("sub/c.log")));
        assert!(!deep.is_candidate(&d.join("skipdir/d.log")));
        assert!(!flat.is_candidate(&d.join("sub/c.log")));
    }

    #[test]
    fn oldest_and_youngest_break_ties_by_name() {
        let c = |p: &str, t| Candidate {
            path: PathBuf::from(p),
            mtime_ms: t,
        };
        let files = [
            c("/s/b", 5),
            c("/s/a", 5),
            c("/s/z", 1),
            c("/s/y", 9),
            c("/s/x", 9),
        ];
        assert_eq!(
            pick(&files, ConsumeOrder::Oldest).unwrap().path,
            Path::new("/s/z")
        );
        assert_eq!(
            pick(&files, ConsumeOrder::Youngest).unwrap().path,
            Path::new("/s/x")
        );
        let ties = [c("/s/b", 5), c("/s/a", 5)];
        assert_eq!(
            pick(&ties, ConsumeOrder::Oldest).unwrap().path,
            Path::new("/s/a")
        );
        assert!(pick(&[], ConsumeOrder::Random).is_none());
    }
}
