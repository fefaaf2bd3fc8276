//! The common interface of the deserializers: a [`Deserializer`] reads one file from a
//! [`Position`] in [`Batch`]es, stopping at a [`ReadError`]. LINE, AVRO and BLOB implement it;
//! [`super::deserializer::open`] picks one.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::tracker::Position;
use crate::event::Event;

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
