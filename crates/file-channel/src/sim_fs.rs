//! A simulated disk for crash and fault tests.
//!
//! Each file keeps what is durable (synced) apart from what is only written. A "power cut"
//! keeps the durable bytes and, depending on the mode, nothing, a random prefix, or a prefix
//! with a flipped bit of what was not synced: exactly the states a real disk may be found in.
//! Faults: ENOSPC when the simulated disk is full (the write is cut where space ran out), and
//! a failing fsync, after which the unsynced data is gone (Linux drops the dirty pages).
//! Directory operations (create, rename, remove) are durable at once: the channel syncs the
//! directory after each of them anyway.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::fs::{DirEntry, DirLock, FileHandle, Fs};

#[derive(Default)]
struct Data {
    durable: Vec<u8>,
    current: Vec<u8>,
}

#[derive(Default)]
struct Disk {
    files: HashMap<PathBuf, Arc<Mutex<Data>>>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
    /// Total bytes the disk holds (all files' current lengths); `None`: unlimited.
    size: Option<u64>,
    /// The next `sync_data` fails with EIO (and loses the unsynced data).
    fail_next_sync: bool,
    /// Only a sync on a thread whose name starts with this takes the failure.
    fail_sync_thread: Option<String>,
    /// Syncs on threads whose name starts with this take this long first.
    slow_sync: Option<(String, std::time::Duration)>,
    /// Every sync fails and every later operation fails: the machine is going down.
    dying: bool,
}

impl Disk {
    fn used(&self) -> u64 {
        self.files
            .values()
            .map(|d| lock(d).current.len() as u64)
            .sum()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a power cut leaves the unsynced tail of each file.
#[derive(Clone, Copy, Debug)]
pub enum CrashMode {
    /// All unsynced bytes are lost.
    LoseUnsynced,
    /// A prefix of the unsynced bytes survives (`keep_per_mille` of it).
    Torn {
        /// Thousandths of the unsynced tail kept.
        keep_per_mille: u16,
    },
    /// All unsynced bytes survive but one bit of them is flipped.
    FlipBit {
        /// Which unsynced byte (modulo their count).
        at: u32,
    },
}

/// The simulated disk. Clones share it.
#[derive(Clone, Default)]
pub struct SimFs {
    disk: Arc<Mutex<Disk>>,
}

struct SimFile {
    disk: Arc<Mutex<Disk>>,
    data: Arc<Mutex<Data>>,
    writable: bool,
}

fn dead() -> io::Error {
    io::Error::other("simulated machine is going down")
}

impl FileHandle for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let d = lock(&self.data);
        let start = offset as usize;
        let end = start + buf.len();
        if end > d.current.len() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        buf.copy_from_slice(&d.current[start..end]);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        let disk = lock(&self.disk);
        if disk.dying {
            return Err(dead());
        }
        let room = disk.size.map(|s| s.saturating_sub(disk.used()));
        drop(disk);
        let mut d = lock(&self.data);
        let start = offset as usize;
        let grow = (start + buf.len()).saturating_sub(d.current.len()) as u64;
        let fits = match room {
            Some(room) if grow > room => buf.len() - (grow - room) as usize,
            _ => buf.len(),
        };
        if d.current.len() < start + fits {
            d.current.resize(start + fits, 0);
        }
        d.current[start..start + fits].copy_from_slice(&buf[..fits]);
        if fits < buf.len() {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let thread = std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string();
        let slow = lock(&self.disk).slow_sync.clone();
        if let Some((prefix, delay)) = slow {
            if thread.starts_with(&prefix) {
                std::thread::sleep(delay);
            }
        }
        let mut disk = lock(&self.disk);
        if disk.dying {
            return Err(dead());
        }
        let this_thread = disk
            .fail_sync_thread
            .as_ref()
            .is_none_or(|prefix| thread.starts_with(prefix));
        if disk.fail_next_sync && this_thread {
            disk.fail_next_sync = false;
            disk.fail_sync_thread = None;
            disk.fail_sync_thread = None;
            let mut d = lock(&self.data);
            d.current = d.durable.clone();
            return Err(io::Error::from_raw_os_error(5)); // EIO
        }
        let mut d = lock(&self.data);
        d.durable = d.current.clone();
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(lock(&self.data).current.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if lock(&self.disk).dying {
            return Err(dead());
        }
        lock(&self.data).current.resize(len as usize, 0);
        Ok(())
    }
}

struct SimLock {
    disk: Arc<Mutex<Disk>>,
    dir: PathBuf,
}

impl DirLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        lock(&self.disk).locks.remove(&self.dir);
    }
}

impl SimFs {
    /// A new empty disk.
    pub fn new() -> Self {
        SimFs::default()
    }

    /// Limits the disk to `bytes` in total (`None`: unlimited).
    pub fn set_size(&self, bytes: Option<u64>) {
        lock(&self.disk).size = bytes;
    }

    /// Makes the next fsync fail with EIO, dropping unsynced data.
    pub fn fail_next_sync(&self) {
        lock(&self.disk).fail_next_sync = true;
    }

    /// Makes the next fsync on a thread whose name starts with `prefix` fail with EIO.
    pub fn fail_next_sync_on(&self, prefix: &str) {
        let mut disk = lock(&self.disk);
        disk.fail_next_sync = true;
        disk.fail_sync_thread = Some(prefix.to_string());
    }

    /// Delays every fsync on a thread whose name starts with `prefix` by `delay`.
    pub fn slow_syncs_on(&self, prefix: &str, delay: std::time::Duration) {
        lock(&self.disk).slow_sync = Some((prefix.to_string(), delay));
    }

    /// From now on every write and sync fails: the moment before a power cut.
    pub fn start_dying(&self) {
        lock(&self.disk).dying = true;
    }

    /// A power cut: every file keeps its durable bytes and, per `mode`, some of the rest. Open
    /// handles are cut off (they keep writing into the old, unreachable copy). Locks vanish.
    pub fn crash(&self, mode: CrashMode) {
        let mut disk = lock(&self.disk);
        let mut files = HashMap::new();
        for (path, data) in disk.files.drain() {
            let d = lock(&data);
            let mut after = d.durable.clone();
            if d.current.len() > d.durable.len() && d.current.starts_with(&d.durable) {
                let tail = &d.current[d.durable.len()..];
                match mode {
                    CrashMode::LoseUnsynced => {}
                    CrashMode::Torn { keep_per_mille } => {
                        let keep = tail.len() * keep_per_mille.min(1000) as usize / 1000;
                        after.extend_from_slice(&tail[..keep]);
                    }
                    CrashMode::FlipBit { at } => {
                        let from = after.len();
                        after.extend_from_slice(tail);
                        let i = from + at as usize % tail.len();
                        after[i] ^= 0x10;
                    }
                }
            }
            files.insert(
                path,
                Arc::new(Mutex::new(Data {
                    durable: after.clone(),
                    current: after,
                })),
            );
        }
        disk.files = files;
        disk.locks.clear();
        disk.dying = false;
        disk.fail_next_sync = false;
    }

    /// A file's current bytes (tests that damage files on purpose).
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let disk = lock(&self.disk);
        disk.files.get(path).map(|d| lock(d).current.clone())
    }

    /// Replaces a file's bytes, durably.
    pub fn write(&self, path: &Path, bytes: &[u8]) {
        let mut disk = lock(&self.disk);
        if let Some(parent) = path.parent() {
            disk.dirs.insert(parent.to_path_buf());
        }
        disk.files.insert(
            path.to_path_buf(),
            Arc::new(Mutex::new(Data {
                durable: bytes.to_vec(),
                current: bytes.to_vec(),
            })),
        );
    }

    /// Paths of the files in `dir`.
    pub fn files_in(&self, dir: &Path) -> Vec<PathBuf> {
        let disk = lock(&self.disk);
        let mut v: Vec<PathBuf> = disk
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect();
        v.sort();
        v
    }

    fn handle(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn FileHandle>> {
        let disk = lock(&self.disk);
        let data = disk
            .files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(Arc::new(SimFile {
            disk: self.disk.clone(),
            data,
            writable,
        }))
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        for a in dir.ancestors() {
            disk.dirs.insert(a.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let disk = lock(&self.disk);
        if !disk.dirs.contains(dir) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let mut out: Vec<DirEntry> = disk
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .map(|p| DirEntry {
                name: p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                is_dir: false,
            })
            .collect();
        out.extend(
            disk.dirs
                .iter()
                .filter(|d| d.parent() == Some(dir))
                .map(|d| DirEntry {
                    name: d
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    is_dir: true,
                }),
        );
        Ok(out)
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        self.handle(path, false)
    }

    fn open_rw(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        self.handle(path, true)
    }

    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        {
            let mut disk = lock(&self.disk);
            if disk.dying {
                return Err(dead());
            }
            if disk.files.contains_key(path) {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            disk.files.insert(path.to_path_buf(), Arc::default());
        }
        self.handle(path, true)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        if disk.dying {
            return Err(dead());
        }
        let data = disk
            .files
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        disk.files.insert(to.to_path_buf(), data);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = lock(&self.disk);
        disk.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        if lock(&self.disk).dying {
            return Err(dead());
        }
        Ok(())
    }

    fn available_space(&self, _dir: &Path) -> io::Result<u64> {
        let disk = lock(&self.disk);
        Ok(match disk.size {
            Some(size) => size.saturating_sub(disk.used()),
            None => u64::MAX / 4,
        })
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<Box<dyn DirLock>> {
        let mut disk = lock(&self.disk);
        if !disk.locks.insert(dir.to_path_buf()) {
            return Err(io::Error::from(io::ErrorKind::WouldBlock));
        }
        Ok(Box::new(SimLock {
            disk: self.disk.clone(),
            dir: dir.to_path_buf(),
        }))
    }
}
