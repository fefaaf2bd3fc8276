//! One open file of the hdfs sink and its record of committed bytes.
//!
//! Bytes go to a local file: the in-use file itself for a local store
//! (`<dir>/<inUsePrefix><name><inUseSuffix>`), or a staged copy `<stagingDir>/<id>.data` for a
//! remote store. Beside it, `<stagingDir>/<id>.meta` records how many bytes are committed and
//! where the file goes when closed:
//!
//! | offset | width | content |
//! |---|---|---|
//! | 0 | 8 | committed length, little-endian |
//! | 8 | 4 | CRC32C of those 8 bytes, little-endian |
//! | 12 | rest | JSON: `{"final": ..., "data": ..., "remote": bool}` |
//!
//! The record is created (and, for a remote store, fsynced with its directory) before the data
//! file, so every data file has one. At each batch end the encoded bytes are written, then the
//! length is rewritten in place (12 bytes, one sector). For a remote store both are
//! `fdatasync`ed before the take commits: the staged bytes are the only copy until the upload.
//! For a local store they reach the page cache before the commit, as Flume's `hflush` on a
//! local file system: a kill -9 loses nothing; a power cut may (Flume's own guarantee there).
//! A close syncs data and record on both stores before the file is finished. After a crash,
//! recovery cuts the data file back to the committed length (a batch torn by the crash was not
//! committed and is delivered again), then finishes the file as a close would; a file with no
//! committed byte is deleted instead.
//!
//! Finishing never replaces an existing file: a local file is hard-linked to its final name
//! (which fails when the name exists) before the in-use name is removed, and a name already
//! taken by another file moves the counter on.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::format::Encoder;

/// Where a file goes when it is closed; stored in its meta record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Destination {
    /// The final path: absolute for a local store, the object key (leading `/`) for a bucket.
    #[serde(rename = "final")]
    pub final_path: String,
    /// The local file the bytes are in (the in-use file, or the staged copy).
    pub data: PathBuf,
    /// Whether it is uploaded (true) or renamed in place (false).
    pub remote: bool,
    /// The counter in the final name (`<prefix>.<counter>`), moved on when that name is
    /// taken by another file.
    #[serde(default)]
    pub counter: u64,
}

impl Destination {
    /// The final path with the counter moved on by `step`.
    pub fn bumped(&self, step: u64) -> String {
        let old = format!(".{}", self.counter);
        match self.final_path.rfind(&old) {
            Some(at) => format!(
                "{}.{}{}",
                &self.final_path[..at],
                self.counter + step,
                &self.final_path[at + old.len()..]
            ),
            None => format!("{}.{step}", self.final_path),
        }
    }
}

/// The meta record of an open (or closed, not yet finished) file. Not held open: an open
/// file costs one descriptor, as in Flume, and a batch end reopens its record.
pub struct Meta {
    path: PathBuf,
}

const LENGTH_BYTES: usize = 12;

impl Meta {
    /// Creates the record for a new file with zero committed bytes.
    pub fn create(path: &Path, dest: &Destination, durable: bool) -> std::io::Result<Meta> {
        let mut bytes = length_record(0).to_vec();
        serde_json::to_writer(&mut bytes, dest).map_err(std::io::Error::other)?;
        let mut file = OpenOptions::new().create_new(true).write(true).open(path)?;
        file.write_all(&bytes)?;
        if durable {
            file.sync_all()?;
            sync_dir(path)?;
        }
        Ok(Meta {
            path: path.to_path_buf(),
        })
    }

    /// Records `len` committed bytes.
    pub fn commit(&self, len: u64, durable: bool) -> std::io::Result<()> {
        let file = OpenOptions::new().write(true).open(&self.path)?;
        file.write_all_at(&length_record(len), 0)?;
        if durable {
            file.sync_data()?;
        }
        Ok(())
    }

    /// The record's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn length_record(len: u64) -> [u8; LENGTH_BYTES] {
    let mut out = [0u8; LENGTH_BYTES];
    out[..8].copy_from_slice(&len.to_le_bytes());
    out[8..].copy_from_slice(&crc32c::crc32c(&len.to_le_bytes()).to_le_bytes());
    out
}

/// Reads a meta record: the committed length (`None` when its checksum fails) and the
/// destination.
pub fn read_meta(path: &Path) -> std::io::Result<(Option<u64>, Destination)> {
    let bytes = std::fs::read(path)?;
    if bytes.len() < LENGTH_BYTES {
        return Err(std::io::Error::other("meta record shorter than 12 bytes"));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[..8]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[8..12]);
    let ok = crc32c::crc32c(&len) == u32::from_le_bytes(crc);
    let dest: Destination =
        serde_json::from_slice(&bytes[LENGTH_BYTES..]).map_err(std::io::Error::other)?;
    Ok((ok.then_some(u64::from_le_bytes(len)), dest))
}

/// Makes a directory entry durable (a created or renamed file).
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// A file being written.
pub struct OpenFile {
    /// Where it goes when closed.
    pub dest: Destination,
    data: File,
    meta: Meta,
    encoder: Encoder,
    /// Events appended (for `hdfs.rollCount`).
    pub events: u64,
    /// Body bytes appended, uncompressed (for `hdfs.rollSize`).
    pub body_bytes: u64,
    /// Bytes written to the data file.
    written: u64,
    /// Bytes recorded committed in the meta record.
    committed: u64,
    /// Encoded bytes not yet written.
    pending: Vec<u8>,
    /// Whether each batch is fsynced (a staged file of a remote store).
    durable: bool,
    /// When it was opened (for `hdfs.rollInterval`).
    pub opened: Instant,
    /// When an event was last appended (for `hdfs.idleTimeout`).
    pub last_append: Instant,
    /// Whether events were appended since the last batch end.
    pub dirty: bool,
}

impl OpenFile {
    /// Creates the meta record, then the data file, and starts the encoding.
    pub fn create(
        dest: Destination,
        meta_path: &Path,
        mut encoder: Encoder,
    ) -> std::io::Result<OpenFile> {
        let durable = dest.remote;
        if let Some(dir) = dest.data.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let meta = Meta::create(meta_path, &dest, durable)?;
        let data = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&dest.data);
        let data = match data {
            Ok(d) => d,
            Err(e) => {
                let _ = std::fs::remove_file(meta_path);
                return Err(e);
            }
        };
        let mut pending = Vec::new();
        encoder.begin(&mut pending)?;
        let now = Instant::now();
        Ok(OpenFile {
            dest,
            data,
            meta,
            encoder,
            events: 0,
            body_bytes: 0,
            written: 0,
            committed: 0,
            pending,
            durable,
            opened: now,
            last_append: now,
            dirty: true,
        })
    }

    /// Encodes one event (written at the batch end); `at` is the batch's clock reading.
    pub fn append(
        &mut self,
        event: &crate::event::Event,
        now_millis: i64,
        at: Instant,
    ) -> std::io::Result<()> {
        self.encoder.append(event, now_millis, &mut self.pending)?;
        self.events += 1;
        self.body_bytes += event.body.len() as u64;
        self.last_append = at;
        self.dirty = true;
        Ok(())
    }

    /// Ends the batch: writes what is encoded and records it committed (fsynced for a staged
    /// file). On return the events are as durable as the store allows before close.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.encoder.end_batch(&mut self.pending)?;
        self.write_pending()?;
        self.dirty = false;
        // A large batch leaves a large buffer; do not keep it for every open file.
        if self.pending.capacity() > 4 << 20 {
            self.pending = Vec::new();
        }
        Ok(())
    }

    fn write_pending(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            self.data.write_all(&self.pending)?;
            self.written += self.pending.len() as u64;
            self.pending.clear();
        }
        if self.durable {
            self.data.sync_data()?;
        }
        self.meta.commit(self.written, self.durable)?;
        self.committed = self.written;
        Ok(())
    }

    /// Flushes, adds the format's trailer and syncs data and record on both stores; the file
    /// is then ready to be finished (renamed or uploaded) from its record.
    pub fn close(mut self) -> Result<Closed, Box<(std::io::Error, OpenFile)>> {
        match self.close_inner() {
            Ok(()) => Ok(Closed {
                dest: self.dest,
                meta: self.meta.path,
                length: self.written,
            }),
            Err(e) => Err(Box::new((e, self))),
        }
    }

    fn close_inner(&mut self) -> std::io::Result<()> {
        self.flush()?;
        self.encoder.finish(&mut self.pending)?;
        self.write_pending()?;
        self.data.sync_all()?;
        self.meta.commit(self.written, true)
    }

    /// Gives a file up after a write failure: cuts it back to its committed bytes and returns
    /// it to be finished, or `None` when even that fails (the next start recovers it from its
    /// record).
    pub fn abandon(self) -> Option<Closed> {
        let cut = self
            .data
            .set_len(self.committed)
            .and_then(|()| self.data.sync_all());
        match cut {
            Ok(()) => Some(Closed {
                dest: self.dest,
                meta: self.meta.path,
                length: self.committed,
            }),
            Err(error) => {
                tracing::error!(path = %self.dest.data.display(), %error, "Cannot cut a failed file back to its committed bytes; it is recovered at the next start.");
                None
            }
        }
    }
}

/// A closed file waiting to be finished: renamed to its final name, or uploaded.
#[derive(Clone, Debug)]
pub struct Closed {
    /// Where it goes.
    pub dest: Destination,
    /// Its meta record, removed once it is finished.
    pub meta: PathBuf,
    /// Its committed length.
    pub length: u64,
}

/// Most other names tried when a final name is taken.
const NAME_TRIES: u64 = 1000;

/// Finishes a closed local file: links it to its final name (never replacing a file there),
/// removes the in-use name and the record. A name taken by another file moves the counter
/// on. Returns the final path.
pub fn finish_local(closed: &Closed) -> std::io::Result<PathBuf> {
    let data = &closed.dest.data;
    for step in 0..NAME_TRIES {
        let target = if step == 0 {
            PathBuf::from(&closed.dest.final_path)
        } else {
            PathBuf::from(closed.dest.bumped(step))
        };
        if *data == target {
            remove_if_exists(&closed.meta)?;
            return Ok(target);
        }
        match std::fs::hard_link(data, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !same_file(data, &target)? {
                    tracing::warn!(taken = %target.display(), "A final name is taken by another file; moving the counter on.");
                    continue;
                }
                // Linked before a crash: only the in-use name is left to remove.
            }
            Err(e) => return Err(e),
        }
        remove_if_exists(data)?;
        sync_dir(&target)?;
        remove_if_exists(&closed.meta)?;
        return Ok(target);
    }
    Err(std::io::Error::other(format!(
        "{NAME_TRIES} final names from {} are taken",
        closed.dest.final_path
    )))
}

fn same_file(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

/// Removes a file; missing is fine (a finish that crashed after it).
pub fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(dir: &Path, counter: u64) -> Destination {
        Destination {
            final_path: format!("{}/FlumeData.{counter}.gz", dir.display()),
            data: dir.join(format!("FlumeData.{counter}.gz.tmp")),
            remote: false,
            counter,
        }
    }

    fn closed(dir: &Path, counter: u64, body: &[u8]) -> Closed {
        let d = dest(dir, counter);
        std::fs::write(&d.data, body).unwrap();
        let meta = dir.join(format!("{counter}.meta"));
        Meta::create(&meta, &d, false).unwrap();
        Closed {
            dest: d,
            meta,
            length: body.len() as u64,
        }
    }

    #[test]
    fn finishing_never_replaces_a_file_of_the_same_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("FlumeData.7.gz"), b"older").unwrap();
        let c = closed(dir.path(), 7, b"newer");
        let target = finish_local(&c).unwrap();
        assert_eq!(target, dir.path().join("FlumeData.8.gz"));
        assert_eq!(
            std::fs::read(dir.path().join("FlumeData.7.gz")).unwrap(),
            b"older"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"newer");
        assert!(!c.dest.data.exists() && !c.meta.exists());
    }

    #[test]
    fn a_finish_cut_short_after_the_link_completes_on_the_next_try() {
        let dir = tempfile::tempdir().unwrap();
        let c = closed(dir.path(), 9, b"body");
        std::fs::hard_link(&c.dest.data, &c.dest.final_path).unwrap();
        let target = finish_local(&c).unwrap();
        assert_eq!(target, PathBuf::from(&c.dest.final_path));
        assert_eq!(std::fs::read(&target).unwrap(), b"body");
        assert!(!c.dest.data.exists() && !c.meta.exists());
    }

    #[test]
    fn the_record_keeps_the_committed_length_and_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let d = dest(dir.path(), 3);
        let meta = Meta::create(&dir.path().join("3.meta"), &d, true).unwrap();
        meta.commit(1234, true).unwrap();
        let (len, read) = read_meta(meta.path()).unwrap();
        assert_eq!(len, Some(1234));
        assert_eq!(read, d);
        // A torn length fails its checksum.
        let f = OpenOptions::new().write(true).open(meta.path()).unwrap();
        f.write_all_at(&[0xff], 0).unwrap();
        assert_eq!(read_meta(meta.path()).unwrap().0, None);
    }
}
