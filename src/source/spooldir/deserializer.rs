//! Opening the deserializer a config names (LINE, AVRO, BLOB), and BLOB itself; the common
//! interface is in [`super::read`].
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

use bytes::{Bytes, BytesMut};

use super::avro::AvroReader;
use super::config::DeserializerConfig;
use super::line::LineReader;
use super::read::{read_full_at, Batch, Deserializer, ReadError};
use super::tracker::Position;
use crate::event::Event;

/// A BLOB batch stops growing once it holds this many bytes.
const BLOB_BATCH_BYTES: usize = 64 << 20;

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
