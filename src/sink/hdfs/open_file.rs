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
//! At each batch end the encoded bytes are written, then the length is rewritten in place
//! (12 bytes, one sector). For a remote store both are `fdatasync`ed before the take commits:
//! the staged bytes are the only copy until the upload. For a local store they reach the page
//! cache before the commit, as Flume's `hflush` on a local file system: a kill -9 loses
//! nothing; a power cut may (Flume's own guarantee there). After a crash, recovery cuts the
//! data file back to the committed length (a batch torn by the crash was not committed and is
//! delivered again), then finishes the file as a close would.

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
}

/// The meta record of an open (or closed, not yet finished) file.
pub struct Meta {
    file: File,
    path: PathBuf,
}

const LENGTH_BYTES: usize = 12;

impl Meta {
    /// Creates the record for a new file with zero committed bytes.
    pub fn create(path: &Path, dest: &Destination, durable: bool) -> std::io::Result<Meta> {
        let mut bytes = length_record(0).to_vec();
        serde_json::to_writer(&mut bytes, dest).map_err(std::io::Error::other)?;
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .read(true)
            .open(path)?;
        file.write_all(&bytes)?;
        if durable {
            file.sync_all()?;
            sync_dir(path)?;
        }
        Ok(Meta {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Records `len` committed bytes.
    pub fn commit(&self, len: u64, durable: bool) -> std::io::Result<()> {
        self.file.write_all_at(&length_record(len), 0)?;
        if durable {
            self.file.sync_data()?;
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
    /// Creates the data file and its meta record and starts the encoding.
    pub fn create(
        dest: Destination,
        meta_path: &Path,
        mut encoder: Encoder,
    ) -> std::io::Result<OpenFile> {
        let durable = dest.remote;
        if let Some(dir) = dest.data.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let data = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&dest.data)?;
        let meta = Meta::create(meta_path, &dest, durable)?;
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
            pending,
            durable,
            opened: now,
            last_append: now,
            dirty: true,
        })
    }

    /// Encodes one event (written at the batch end).
    pub fn append(&mut self, event: &crate::event::Event, now_millis: i64) -> std::io::Result<()> {
        self.encoder.append(event, now_millis, &mut self.pending)?;
        self.events += 1;
        self.body_bytes += event.body.len() as u64;
        self.last_append = Instant::now();
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
        if !self.pending.is_empty() {
            self.data.write_all(&self.pending)?;
            self.written += self.pending.len() as u64;
            self.pending.clear();
        }
        if self.durable {
            self.data.sync_data()?;
        }
        self.meta.commit(self.written, self.durable)?;
        self.dirty = false;
        // A large batch leaves a large buffer; do not keep it for every open file.
        if self.pending.capacity() > 4 << 20 {
            self.pending = Vec::new();
        }
        Ok(())
    }

    /// Flushes and syncs the data; the file is then ready to be finished (renamed or
    /// uploaded) from its meta record.
    pub fn close(mut self) -> std::io::Result<Closed> {
        self.flush()?;
        self.encoder.finish(&mut self.pending)?;
        if !self.pending.is_empty() {
            // No batch end: only the trailer goes out.
            self.data.write_all(&self.pending)?;
            self.written += self.pending.len() as u64;
            self.pending.clear();
            if self.durable {
                self.data.sync_data()?;
            }
            self.meta.commit(self.written, self.durable)?;
        }
        self.data.sync_all()?;
        Ok(Closed {
            dest: self.dest,
            meta: self.meta.path,
            length: self.written,
        })
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

/// Finishes a closed local file: renames the in-use file to its final name and removes the
/// meta record.
pub fn finish_local(closed: &Closed) -> std::io::Result<()> {
    let target = Path::new(&closed.dest.final_path);
    if closed.dest.data != target {
        std::fs::rename(&closed.dest.data, target)?;
        sync_dir(target)?;
    }
    remove_meta(&closed.meta)
}

/// Removes a meta record (missing is fine: a finish that crashed after it).
pub fn remove_meta(meta: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(meta) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
