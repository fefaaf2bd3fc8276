//! Checkpoints: a snapshot of the live pointers and the log position it reflects.
//!
//! Replay loads the newest good checkpoint and reads only the log written after its position,
//! which bounds recovery time. A checkpoint is written to `checkpoint.tmp`, fsynced, renamed
//! over `checkpoint` and the directory fsynced, so a crash leaves either the old or the new one.
//! Layout: magic, version, position (file id, offset), next sequence number, entry count,
//! entries (`seq u64, file u32, offset u32`), CRC-32C of everything before it.

use std::io;
use std::path::Path;

use super::format::{CHECKPOINT_MAGIC, FORMAT_VERSION};
use super::fs::Fs;
use super::queue::Ptr;

/// The checkpoint's file name.
pub const CHECKPOINT_FILE: &str = "checkpoint";
/// The name it is written under before the rename.
pub const CHECKPOINT_TMP: &str = "checkpoint.tmp";
const HEADER_LEN: usize = 48;
const ENTRY_LEN: usize = 16;

/// A log position: records at or after it are not reflected in the checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Data file id.
    pub file: u32,
    /// Offset in that file.
    pub offset: u64,
}

/// A loaded checkpoint.
#[derive(Debug)]
pub struct Checkpoint {
    /// Where replay resumes.
    pub position: Position,
    /// The next sequence number to hand out.
    pub next_seq: u64,
    /// Live pointers, in no particular order.
    pub ptrs: Vec<Ptr>,
}

/// What a checkpoint records besides its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Where replay resumes.
    pub position: Position,
    /// The next sequence number to hand out.
    pub next_seq: u64,
    /// How many entries follow.
    pub count: usize,
}

fn encode_header(out: &mut Vec<u8>, h: &Header) {
    out.extend_from_slice(CHECKPOINT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&h.position.file.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&h.position.offset.to_le_bytes());
    out.extend_from_slice(&h.next_seq.to_le_bytes());
    out.extend_from_slice(&(h.count as u64).to_le_bytes());
}

fn encode_entry(out: &mut Vec<u8>, p: &Ptr) {
    out.extend_from_slice(&p.seq.to_le_bytes());
    out.extend_from_slice(&p.file.to_le_bytes());
    out.extend_from_slice(&p.offset.to_le_bytes());
}

/// Writes the checkpoint of `dir`, atomically and durably, streaming its entries.
///
/// `next_chunk` appends the next entries to the (empty) vector it is given and returns whether
/// more follow. Each chunk is encoded and written before the next is asked for, so a
/// checkpoint of millions of events needs one chunk of memory, not a second copy of the queue.
/// Fails (and leaves the previous checkpoint in place) if the chunks do not hold exactly
/// `header.count` entries.
pub fn write(
    fs: &dyn Fs,
    dir: &Path,
    header: &Header,
    mut next_chunk: impl FnMut(&mut Vec<Ptr>) -> bool,
) -> io::Result<()> {
    let tmp = dir.join(CHECKPOINT_TMP);
    match fs.remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let f = fs.create_new(&tmp)?;
    let mut bytes = Vec::new();
    encode_header(&mut bytes, header);
    let mut crc = 0;
    let mut at = 0u64;
    let mut entries = 0usize;
    let mut ptrs = Vec::new();
    let written = loop {
        ptrs.clear();
        let more = next_chunk(&mut ptrs);
        entries += ptrs.len();
        bytes.reserve(ptrs.len() * ENTRY_LEN);
        ptrs.iter().for_each(|p| encode_entry(&mut bytes, p));
        crc = crc32c::crc32c_append(crc, &bytes);
        if !more {
            if entries != header.count {
                break Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "checkpoint of {entries} entries where {} were counted",
                        header.count
                    ),
                ));
            }
            bytes.extend_from_slice(&crc.to_le_bytes());
        }
        if let Err(e) = f.write_all_at(&bytes, at) {
            break Err(e);
        }
        at += bytes.len() as u64;
        bytes.clear();
        if !more {
            break f.sync_data();
        }
    };
    drop(f);
    if let Err(e) = written {
        // Best effort: the next checkpoint removes it anyway, and replay ignores it.
        let _ = fs.remove_file(&tmp);
        return Err(e);
    }
    fs.rename(&tmp, &dir.join(CHECKPOINT_FILE))?;
    fs.sync_dir(dir)
}

/// Why a checkpoint could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// None was ever written.
    #[error("no checkpoint")]
    Missing,
    /// Not Flumen's file.
    #[error("not a Flumen checkpoint (wrong magic)")]
    Foreign,
    /// Ours, but damaged or cut short (a crash while writing is impossible by construction, so
    /// this is disk damage or tampering).
    #[error("checkpoint damaged: {0}")]
    Damaged(String),
    /// Reading failed.
    #[error("checkpoint unreadable: {0}")]
    Io(#[from] io::Error),
}

/// Reads and checks the checkpoint of `dir`.
pub fn read(fs: &dyn Fs, dir: &Path) -> Result<Checkpoint, CheckpointError> {
    let path = dir.join(CHECKPOINT_FILE);
    let f = match fs.open_read(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(CheckpointError::Missing),
        Err(e) => return Err(e.into()),
    };
    let len = f.size()?;
    decode(len, |buf, at| f.read_exact_at(buf, at))
}

/// Whether `bytes` start like one of our checkpoints (or a prefix of one).
pub fn looks_ours(bytes: &[u8]) -> bool {
    let n = bytes.len().min(CHECKPOINT_MAGIC.len());
    bytes[..n] == CHECKPOINT_MAGIC[..n]
}

/// Entries decoded per read: the file is streamed, never held whole in memory.
const ENTRIES_PER_READ: usize = 64 * 1024;

/// Decodes a checkpoint of `len` bytes read through `read_at`.
fn decode(
    len: u64,
    mut read_at: impl FnMut(&mut [u8], u64) -> io::Result<()>,
) -> Result<Checkpoint, CheckpointError> {
    let mut header = vec![0u8; (HEADER_LEN as u64).min(len) as usize];
    read_at(&mut header, 0)?;
    if header.len() < CHECKPOINT_MAGIC.len() || !looks_ours(&header) {
        return Err(CheckpointError::Foreign);
    }
    if len < (HEADER_LEN + 4) as u64 {
        return Err(CheckpointError::Damaged(format!(
            "{len} bytes, shorter than a header"
        )));
    }
    let u32_at = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let u64_at = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&header[at..at + 8]);
        u64::from_le_bytes(a)
    };
    let version = u32_at(8);
    let position = Position {
        file: u32_at(16),
        offset: u64_at(24),
    };
    let next_seq = u64_at(32);
    let count = u64_at(40);
    let expected = (HEADER_LEN as u64 + 4).saturating_add(count.saturating_mul(ENTRY_LEN as u64));
    if len != expected {
        return Err(CheckpointError::Damaged(format!(
            "{count} entries announced, {len} bytes present"
        )));
    }
    let mut crc = crc32c::crc32c(&header);
    let mut ptrs = Vec::with_capacity(count as usize);
    let mut chunk = vec![0u8; ENTRIES_PER_READ * ENTRY_LEN];
    let mut at = HEADER_LEN as u64;
    let mut left = count as usize;
    while left > 0 {
        let n = left.min(ENTRIES_PER_READ);
        let buf = &mut chunk[..n * ENTRY_LEN];
        read_at(buf, at)?;
        crc = crc32c::crc32c_append(crc, buf);
        ptrs.extend(buf.chunks_exact(ENTRY_LEN).map(|c| {
            let mut s = [0u8; 8];
            s.copy_from_slice(&c[..8]);
            Ptr {
                seq: u64::from_le_bytes(s),
                file: u32::from_le_bytes([c[8], c[9], c[10], c[11]]),
                offset: u32::from_le_bytes([c[12], c[13], c[14], c[15]]),
            }
        }));
        at += buf.len() as u64;
        left -= n;
    }
    let mut trailer = [0u8; 4];
    read_at(&mut trailer, at)?;
    if crc != u32::from_le_bytes(trailer) {
        return Err(CheckpointError::Damaged("checksum mismatch".into()));
    }
    if version != FORMAT_VERSION {
        return Err(CheckpointError::Damaged(format!(
            "format version {version}, this build reads {FORMAT_VERSION}"
        )));
    }
    Ok(Checkpoint {
        position,
        next_seq,
        ptrs,
    })
}

/// Decodes a checkpoint held in memory (tests).
#[cfg(test)]
fn decode_bytes(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    decode(bytes.len() as u64, |buf, at| {
        let at = at as usize;
        buf.copy_from_slice(&bytes[at..at + buf.len()]);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim_fs::SimFs;

    fn ptrs(n: u64) -> Vec<Ptr> {
        (0..n)
            .map(|seq| Ptr {
                seq: seq * 3 + 5,
                file: 1 + (seq % 4) as u32,
                offset: seq as u32 * 64,
            })
            .collect()
    }

    /// Writes `all` through `write`, `per_chunk` entries at a time.
    fn write_chunked(fs: &SimFs, dir: &Path, header: &Header, all: &[Ptr], per_chunk: usize) {
        let mut rest = all;
        write(fs, dir, header, |out| {
            let n = per_chunk.min(rest.len());
            out.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            !rest.is_empty()
        })
        .unwrap();
    }

    #[test]
    fn round_trip_in_chunks_and_damage_detection() {
        let fs = SimFs::new();
        let dir = Path::new("/ckpt");
        fs.create_dir_all(dir).unwrap();
        let all = ptrs(10);
        let header = Header {
            position: Position {
                file: 2,
                offset: 99,
            },
            next_seq: 77,
            count: all.len(),
        };
        for per_chunk in [1, 3, 10, 64] {
            write_chunked(&fs, dir, &header, &all, per_chunk);
            let c = read(&fs, dir).unwrap();
            assert_eq!(c.position, header.position);
            assert_eq!(c.next_seq, 77);
            assert_eq!(c.ptrs, all, "{per_chunk} per chunk");
            assert!(fs.read(&dir.join(CHECKPOINT_TMP)).is_none());
        }
        let bytes = fs.read(&dir.join(CHECKPOINT_FILE)).unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + all.len() * ENTRY_LEN + 4);
        let mut bad = bytes.clone();
        bad[50] ^= 4;
        assert!(matches!(
            decode_bytes(&bad),
            Err(CheckpointError::Damaged(_))
        ));
        assert!(matches!(
            decode_bytes(&bytes[..40]),
            Err(CheckpointError::Damaged(_))
        ));
        assert!(matches!(
            decode_bytes(b"\x00\x00flume"),
            Err(CheckpointError::Foreign)
        ));
    }

    #[test]
    fn an_empty_checkpoint_round_trips() {
        let fs = SimFs::new();
        let dir = Path::new("/ckpt");
        fs.create_dir_all(dir).unwrap();
        let header = Header {
            position: Position::default(),
            next_seq: 1,
            count: 0,
        };
        write(&fs, dir, &header, |_| false).unwrap();
        let c = read(&fs, dir).unwrap();
        assert!(c.ptrs.is_empty());
        assert_eq!(c.next_seq, 1);
    }

    #[test]
    fn a_count_mismatch_fails_and_keeps_the_previous_checkpoint() {
        let fs = SimFs::new();
        let dir = Path::new("/ckpt");
        fs.create_dir_all(dir).unwrap();
        let all = ptrs(4);
        let mut header = Header {
            position: Position::default(),
            next_seq: 9,
            count: all.len(),
        };
        write_chunked(&fs, dir, &header, &all, 2);
        header.count = 5;
        header.next_seq = 10;
        let mut rest: &[Ptr] = &all;
        let err = write(&fs, dir, &header, |out| {
            out.extend_from_slice(rest);
            rest = &[];
            false
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let c = read(&fs, dir).unwrap();
        assert_eq!((c.next_seq, c.ptrs), (9, all));
        assert!(fs.read(&dir.join(CHECKPOINT_TMP)).is_none());
    }
}
