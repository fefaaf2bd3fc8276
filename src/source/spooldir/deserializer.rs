//! Turning a file into events: the common interface of the deserializers, and BLOB.
//!
//! A deserializer reads one file from a [`Position`] up to the size the file had when it was
//! picked up (bytes appended later are never read; the change itself is caught by the source),
//! in batches. Each batch says where the next event starts, so the source can record that
//! position once the batch is committed. Files are read with positioned reads on a blocking
//! thread; LINE bodies are slices of the 1 MiB blocks read (no copy per event).
//!
//! BLOB (`org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder`): the file as one
//! event, or pieces of `deserializer.maxBlobLength` bytes when it is longer (Flume's too). A
//! batch holds at most `batchSize` events and stops early once it holds 64 MiB (Flume
//! collects `batchSize` blobs of up to 100 MB each in memory).

use std::fs::File;
use std::os::unix::fs::FileExt;

use bytes::{Bytes, BytesMut};

use super::avro::AvroReader;
use super::config::DeserializerConfig;
use super::line::LineReader;
use super::tracker::Position;
use crate::event::Event;

/// A BLOB batch stops growing once it holds this many bytes.
const BLOB_BATCH_BYTES: usize = 64 << 20;

/// Why reading a file stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading failed.
    #[error("reading at byte {offset}: {source}")]
    Io {
        /// Where.
        offset: u64,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Input is not valid in `inputCharset` and `decodeErrorPolicy` is FAIL.
    #[error("malformed {charset} input at byte {offset} (decodeErrorPolicy = FAIL)")]
    Malformed {
        /// Byte offset of the first malformed byte.
        offset: u64,
        /// The input charset.
        charset: &'static str,
    },
    /// Not a valid Avro container file.
    #[error("invalid Avro container at byte {offset}: {reason}")]
    Avro {
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Events read from a file in one go.
#[derive(Debug, Default)]
pub struct Batch {
    /// The events, in file order.
    pub events: Vec<Event>,
    /// Where the event after the last one starts.
    pub end: Position,
    /// The file's end (as picked up) was reached: there is nothing after these events.
    pub eof: bool,
    /// Reading stopped at this error; the events before it are valid.
    pub error: Option<ReadError>,
    /// Lines or blobs cut at `maxLineLength` / `maxBlobLength` in this batch.
    pub cut: u64,
}

/// Reads one file into batches of events.
pub trait Deserializer: Send {
    /// Up to `max` events from where the previous batch ended.
    fn read_batch(&mut self, max: usize) -> Batch;
}

/// Opens the deserializer `config` names on `file` (of `limit` bytes), resuming at `start`.
pub fn open(
    config: &DeserializerConfig,
    file: File,
    limit: u64,
    start: Position,
) -> Result<Box<dyn Deserializer>, ReadError> {
    Ok(match config {
        DeserializerConfig::Line {
            input,
            policy,
            output,
            max_line_length,
        } => Box::new(LineReader::new(
            file,
            limit,
            start,
            *input,
            *policy,
            *output,
            *max_line_length,
        )),
        DeserializerConfig::Avro { schema_type } => {
            Box::new(AvroReader::open(file, limit, start, *schema_type)?)
        }
        DeserializerConfig::Blob { max_blob_length } => Box::new(BlobReader {
            file,
            limit,
            offset: start.offset,
            max: *max_blob_length,
        }),
    })
}

/// Reads into `buf` at `offset` until it is full or the file ends; returns the bytes read.
pub fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// The BLOB deserializer.
struct BlobReader {
    file: File,
    limit: u64,
    offset: u64,
    max: usize,
}

impl Deserializer for BlobReader {
    fn read_batch(&mut self, max: usize) -> Batch {
        let mut batch = Batch::default();
        let mut bytes = 0;
        while batch.events.len() < max && bytes < BLOB_BATCH_BYTES {
            let left = self.limit.saturating_sub(self.offset);
            if left == 0 {
                batch.eof = true;
                break;
            }
            let len = left.min(self.max as u64) as usize;
            let mut buf = BytesMut::zeroed(len);
            match read_full_at(&self.file, &mut buf, self.offset) {
                Ok(0) => {
                    // The file shrank; the source notices the change.
                    batch.eof = true;
                    break;
                }
                Ok(n) => {
                    buf.truncate(n);
                    if n as u64 == self.max as u64 && left > self.max as u64 {
                        batch.cut += 1;
                    }
                    self.offset += n as u64;
                    bytes += n;
                    batch.events.push(Event::new(Bytes::from(buf)));
                }
                Err(source) => {
                    batch.error = Some(ReadError::Io {
                        offset: self.offset,
                        source,
                    });
                    break;
                }
            }
        }
        batch.end = Position {
            offset: self.offset,
            skip: 0,
        };
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, bytes).unwrap();
        let f = File::open(&p).unwrap();
        (dir, f)
    }

    #[test]
    fn blob_is_the_whole_file_or_pieces_of_max_length() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let (_d, f) = file_with(&data);
        let cfg = DeserializerConfig::Blob {
            max_blob_length: 100_000,
        };
        let mut r = open(&cfg, f, 1000, Position::default()).unwrap();
        let b = r.read_batch(10);
        assert_eq!(b.events.len(), 1);
        assert_eq!(&b.events[0].body[..], &data[..]);
        assert!(b.eof);
        assert_eq!(b.cut, 0);

        let (_d, f) = file_with(&data);
        let cfg = DeserializerConfig::Blob {
            max_blob_length: 300,
        };
        let mut r = open(&cfg, f, 1000, Position::default()).unwrap();
        let b = r.read_batch(2);
        assert_eq!(b.events.len(), 2);
        assert_eq!(
            b.end,
            Position {
                offset: 600,
                skip: 0
            }
        );
        assert!(!b.eof);
        let b2 = r.read_batch(10);
        assert_eq!(b2.events.len(), 2);
        assert_eq!(b2.events[1].body.len(), 100);
        assert!(b2.eof);
        assert_eq!(b.cut + b2.cut, 3);
    }

    #[test]
    fn blob_resumes_at_its_position_and_stops_at_the_picked_up_size() {
        let (_d, f) = file_with(b"0123456789");
        let cfg = DeserializerConfig::Blob {
            max_blob_length: 100,
        };
        let mut r = open(&cfg, f, 8, Position { offset: 3, skip: 0 }).unwrap();
        let b = r.read_batch(5);
        assert_eq!(&b.events[0].body[..], b"34567");
    }
}
