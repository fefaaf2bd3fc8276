//! Hadoop SequenceFile (version 6) writer, as Flume's `HDFSSequenceFile` writes it.
//!
//! # What Flume asks of Hadoop
//!
//! Flume 1.11 (`HDFSSequenceFile`) opens the file and calls
//! `SequenceFile.createWriter(conf, out, LongWritable, valueClass, compressionType, codec)`
//! with empty metadata. Each event becomes one record: the key is a `LongWritable`, the
//! event's `timestamp` header parsed with `Long.valueOf`, else the current time in ms
//! ([`flume_key`]); the value is a `BytesWritable` of the body (`hdfs.writeFormat = Writable`,
//! the default, `HDFSWritableSerializer`) or a `Text` of the body bytes, unvalidated
//! (`writeFormat = Text`, `HDFSTextSerializer`). Every batch end (`BucketWriter.flush` →
//! `sync()`) calls `writer.sync()` and then hflush/hsync; closing flushes an unfinished batch
//! the same way and then calls `writer.close()`. Without `hdfs.codeC` the compression type is
//! NONE; with a codec, `HDFSEventSink` always uses BLOCK (there is no setting for it).
//!
//! # Layout (all integers big-endian)
//!
//! Header:
//! * `SEQ` and the version byte 6;
//! * key class, value class: Hadoop `Text.writeString`, a VInt byte length and the UTF-8 name
//!   (`org.apache.hadoop.io.LongWritable`; `...BytesWritable` or `...Text`);
//! * two booleans, one byte each: compressed (RECORD or BLOCK), block-compressed (BLOCK);
//! * if compressed, the codec class name as `Text.writeString`;
//! * metadata: a 4-byte entry count (0: Flume sets none);
//! * the 16-byte sync marker (random per file; Hadoop takes an MD5 of a UID and the time).
//!
//! Serialized forms: the key (`LongWritable`) is 8 bytes; a `BytesWritable` is a 4-byte length
//! and the bytes; a `Text` is a VInt length and the bytes.
//!
//! NONE and RECORD records: 4-byte record length (key + value bytes as stored), 4-byte key
//! length (8), the key, the value. RECORD stores the serialized value compressed as one
//! codec unit (Hadoop's `deflateFilter.resetState()` ... `finish()` per value).
//! Before a record is written, if the position is at least `SYNC_INTERVAL` (102400 bytes,
//! `5 * 1024 * 20`, Hadoop since 2.8 / HADOOP-1381) past the last sync point (initially 0, the
//! file start), a sync entry is written: the 4-byte escape -1 (`ff ff ff ff`) then the marker.
//! `Writer.sync()`, so each Flume batch end, writes a sync entry unless the last one ends
//! exactly at the current position. `close()` adds nothing.
//!
//! BLOCK: records are buffered in four buffers: key lengths (VInts), keys, value lengths
//! (VInts of the serialized value sizes), values (serialized). A block goes out when the keys
//! and values buffered reach `io.seqfile.compress.blocksize` (1,000,000 bytes) after an
//! append, at every `sync()` (so every Flume batch end) and at `close()`, and only if it holds
//! records. A block is: a sync entry (written when the last one does not end at the current
//! position, which is always the case here), a VInt record count, then for each of the four
//! buffers in the order above a VInt compressed length and the buffer compressed as one codec
//! unit (one `write` call, then `finish()`). `SYNC_INTERVAL` plays no part in BLOCK files.
//!
//! VInt is Hadoop's `WritableUtils.writeVLong`: -112..=127 in one byte; else a first byte
//! -113..-120 (positive) or -121..-128 (negative, stored as one's complement) giving the byte
//! count, then that many big-endian bytes.
//!
//! A file cut right after any [`SequenceFileWriter::end_batch`] is complete for Hadoop's
//! reader: it ends after a sync entry (NONE, RECORD) or after a whole block (BLOCK).
//!
//! Hadoop itself refuses to write GzipCodec SequenceFiles without native libhadoop ("doesn't
//! work with GzipCodec without native-hadoop code"); the bytes are still the same format, and
//! pure-Java Hadoop reads them.
//!
//! Checked against Hadoop 3.3.4 (the tests' `hadoop_read.sh`): NONE files with either value
//! class equal the bytes Hadoop's `SequenceFile.Writer` writes for the same records, batches
//! and marker (periodic sync entries included); RECORD and BLOCK files of every codec but
//! zstd (native only) read back record for record, also when cut after a batch end; the
//! snappy RECORD units and the BLOCK records-per-block equal Hadoop's. Sources: Flume 1.11
//! `HDFSSequenceFile`, `HDFSWritableSerializer`, `HDFSTextSerializer`, `HDFSEventSink`,
//! `BucketWriter`; Hadoop `SequenceFile`, `WritableUtils`, `Text`, `BytesWritable`.
//!
//! Allocation: appending writes into the caller's `Vec`; RECORD values and BLOCK buffers are
//! compressed into a reused scratch buffer first (their VInt/int length precedes them).

use std::io;

use super::codec::{Codec, Compressor};

/// Bytes between sync entries in NONE and RECORD files (`SequenceFile.SYNC_INTERVAL`).
pub const SYNC_INTERVAL: u64 = 5 * 1024 * 20;
/// Hadoop's default `io.seqfile.compress.blocksize`.
pub const COMPRESS_BLOCK_SIZE: usize = 1_000_000;
const KEY_CLASS: &str = "org.apache.hadoop.io.LongWritable";
const SYNC_ESCAPE: [u8; 4] = [0xff; 4];

/// The value class of the records (Flume's `hdfs.writeFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// `org.apache.hadoop.io.BytesWritable` (`writeFormat = Writable`, Flume's default).
    BytesWritable,
    /// `org.apache.hadoop.io.Text` (`writeFormat = Text`).
    Text,
}

impl ValueFormat {
    /// The Hadoop class name written in the header.
    pub fn hadoop_class(self) -> &'static str {
        match self {
            ValueFormat::BytesWritable => "org.apache.hadoop.io.BytesWritable",
            ValueFormat::Text => "org.apache.hadoop.io.Text",
        }
    }
}

/// Hadoop's `SequenceFile.CompressionType` for a file with a codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// Each value compressed on its own.
    Record,
    /// Keys and values compressed together in blocks (what Flume uses with a codec).
    Block,
}

/// The record key Flume uses: the `timestamp` header as Java's `Long.valueOf` reads it (an
/// optional sign and decimal digits; Java also takes non-ASCII Unicode digits, this does not),
/// else `now_ms`. An unparsable header is an error, as in Flume.
pub fn flume_key(
    timestamp_header: Option<&str>,
    now_ms: i64,
) -> Result<i64, std::num::ParseIntError> {
    match timestamp_header {
        Some(text) => text.parse(),
        None => Ok(now_ms),
    }
}

/// A fresh 16-byte sync marker: random bytes from the OS (through `uuid`'s v4 generator), as
/// Hadoop draws its marker at random.
pub fn new_sync_marker() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

/// Buffers of the BLOCK writer.
struct BlockBuffers {
    key_lens: Vec<u8>,
    keys: Vec<u8>,
    value_lens: Vec<u8>,
    values: Vec<u8>,
    records: u32,
    block_size: usize,
}

/// The compression type and its state.
enum Mode {
    None,
    Record(Compressor),
    Block(Compressor, Box<BlockBuffers>),
}

/// Writes one SequenceFile as a sequence of byte runs; each method appends to `out` exactly
/// the file's next bytes and tracks the file position itself. Appending allocates nothing
/// once the internal buffers have grown to the largest record or block.
pub struct SequenceFileWriter {
    value: ValueFormat,
    codec: Option<Codec>,
    mode: Mode,
    sync: [u8; 16],
    /// Bytes of the file written so far.
    pos: u64,
    /// Where the last sync entry ended (Hadoop's `lastSyncPos`), 0 before any.
    last_sync_pos: u64,
    sync_interval: u64,
    header_written: bool,
    /// Compressed bytes of one value or buffer, before they are appended after their length.
    scratch: Vec<u8>,
}

impl SequenceFileWriter {
    /// A writer for values of `value` class, uncompressed (`compression = None`, Hadoop's
    /// NONE) or compressed with a codec, and the file's 16-byte `sync_marker` (see
    /// [`new_sync_marker`]).
    pub fn new(
        value: ValueFormat,
        compression: Option<(Codec, CompressionType)>,
        sync_marker: [u8; 16],
    ) -> io::Result<Self> {
        let (codec, mode) = match compression {
            None => (None, Mode::None),
            Some((codec, CompressionType::Record)) => {
                (Some(codec), Mode::Record(Compressor::new(codec)?))
            }
            Some((codec, CompressionType::Block)) => {
                let buffers = BlockBuffers {
                    key_lens: Vec::new(),
                    keys: Vec::new(),
                    value_lens: Vec::new(),
                    values: Vec::new(),
                    records: 0,
                    block_size: COMPRESS_BLOCK_SIZE,
                };
                (
                    Some(codec),
                    Mode::Block(Compressor::new(codec)?, Box::new(buffers)),
                )
            }
        };
        Ok(SequenceFileWriter {
            value,
            codec,
            mode,
            sync: sync_marker,
            pos: 0,
            last_sync_pos: 0,
            sync_interval: SYNC_INTERVAL,
            header_written: false,
            scratch: Vec::new(),
        })
    }

    /// Sets the sync interval of NONE and RECORD files (Hadoop's `Writer.syncInterval`
    /// option; [`SYNC_INTERVAL`] by default).
    pub fn with_sync_interval(mut self, bytes: u64) -> Self {
        self.sync_interval = bytes;
        self
    }

    /// Sets the BLOCK threshold (`io.seqfile.compress.blocksize`; [`COMPRESS_BLOCK_SIZE`] by
    /// default).
    pub fn with_block_size(mut self, bytes: usize) -> Self {
        if let Mode::Block(_, buffers) = &mut self.mode {
            buffers.block_size = bytes;
        }
        self
    }

    /// The number of bytes of the file written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The file's sync marker.
    pub fn sync_marker(&self) -> [u8; 16] {
        self.sync
    }

    /// Appends the header, once; the other methods write it first if it is missing.
    pub fn header(&mut self, out: &mut Vec<u8>) {
        if self.header_written {
            return;
        }
        self.header_written = true;
        let start = out.len();
        out.extend_from_slice(b"SEQ\x06");
        write_string(KEY_CLASS, out);
        write_string(self.value.hadoop_class(), out);
        out.push(u8::from(!matches!(self.mode, Mode::None)));
        out.push(u8::from(matches!(self.mode, Mode::Block(..))));
        if let Some(codec) = self.codec {
            write_string(codec.hadoop_class(), out);
        }
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&self.sync);
        self.pos += (out.len() - start) as u64;
    }

    /// Appends one record (Hadoop's `Writer.append`) with key `key` and value `value`: the
    /// record itself (NONE, RECORD), or nothing until its block is written (BLOCK).
    pub fn append(&mut self, key: i64, value: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.header(out);
        let start = out.len();
        let result = self.append_inner(key, value, out);
        self.pos += (out.len() - start) as u64;
        result
    }

    /// What Flume's batch end (`writer.sync()`) appends: a sync entry (NONE, RECORD) or the
    /// buffered block (BLOCK).
    pub fn end_batch(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.header(out);
        let start = out.len();
        let result = match self.mode {
            Mode::None | Mode::Record(_) => {
                self.sync_entry(self.pos, out);
                Ok(())
            }
            Mode::Block(..) => self.write_block(self.pos, out),
        };
        self.pos += (out.len() - start) as u64;
        result
    }

    /// What `writer.close()` appends: the buffered block (BLOCK), else nothing. Flume ends the
    /// batch first ([`Self::end_batch`]), which leaves no block to write.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.header(out);
        if let Mode::Block(..) = self.mode {
            let start = out.len();
            let result = self.write_block(self.pos, out);
            self.pos += (out.len() - start) as u64;
            return result;
        }
        Ok(())
    }

    fn append_inner(&mut self, key: i64, value: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let format = self.value;
        let mut prefix_buf = [0u8; 9];
        let prefix = fill_prefix(format, value.len(), &mut prefix_buf)?;
        match &mut self.mode {
            Mode::None => {
                let record_len = int_len(8 + prefix.len() + value.len())?;
                self.check_and_write_sync(self.pos, out);
                out.extend_from_slice(&record_len.to_be_bytes());
                out.extend_from_slice(&8u32.to_be_bytes());
                out.extend_from_slice(&key.to_be_bytes());
                out.extend_from_slice(prefix);
                out.extend_from_slice(value);
            }
            Mode::Record(compressor) => {
                // Hadoop writes the serialized value through a BufferedOutputStream: one codec
                // write of prefix and value, or two when the value is too long for the buffer.
                // Both give the same bytes here, so this always makes two.
                self.scratch.clear();
                compressor.write(prefix, &mut self.scratch)?;
                compressor.write(value, &mut self.scratch)?;
                compressor.finish(&mut self.scratch)?;
                let record_len = int_len(8 + self.scratch.len())?;
                self.check_and_write_sync(self.pos, out);
                out.extend_from_slice(&record_len.to_be_bytes());
                out.extend_from_slice(&8u32.to_be_bytes());
                out.extend_from_slice(&key.to_be_bytes());
                out.extend_from_slice(&self.scratch);
            }
            Mode::Block(_, buffers) => {
                let serialized = int_len(prefix.len() + value.len())?;
                write_vint(8, &mut buffers.key_lens);
                buffers.keys.extend_from_slice(&key.to_be_bytes());
                write_vint(i64::from(serialized), &mut buffers.value_lens);
                buffers.values.extend_from_slice(prefix);
                buffers.values.extend_from_slice(value);
                buffers.records += 1;
                if buffers.keys.len() + buffers.values.len() >= buffers.block_size {
                    self.write_block(self.pos, out)?;
                }
            }
        }
        Ok(())
    }

    /// Hadoop's `checkAndWriteSync`, with the file at `pos`.
    fn check_and_write_sync(&mut self, pos: u64, out: &mut Vec<u8>) {
        if pos >= self.last_sync_pos + self.sync_interval {
            self.sync_entry(pos, out);
        }
    }

    /// Hadoop's `Writer.sync()`, with the file at `pos`: a sync entry unless one ends there.
    fn sync_entry(&mut self, pos: u64, out: &mut Vec<u8>) {
        if self.last_sync_pos != pos {
            out.extend_from_slice(&SYNC_ESCAPE);
            out.extend_from_slice(&self.sync);
            self.last_sync_pos = pos + (SYNC_ESCAPE.len() + self.sync.len()) as u64;
        }
    }

    /// `BlockCompressWriter.sync()`, with the file at `pos`: the buffered records as a block.
    fn write_block(&mut self, pos: u64, out: &mut Vec<u8>) -> io::Result<()> {
        let records = match &self.mode {
            Mode::Block(_, buffers) if buffers.records > 0 => buffers.records,
            _ => return Ok(()),
        };
        self.sync_entry(pos, out);
        let Mode::Block(compressor, buffers) = &mut self.mode else {
            return Ok(());
        };
        write_vint(i64::from(records), out);
        for buffer in [
            &mut buffers.key_lens,
            &mut buffers.keys,
            &mut buffers.value_lens,
            &mut buffers.values,
        ] {
            self.scratch.clear();
            compressor.write(buffer, &mut self.scratch)?;
            compressor.finish(&mut self.scratch)?;
            write_vint(i64::from(int_len(self.scratch.len())?), out);
            out.extend_from_slice(&self.scratch);
            buffer.clear();
        }
        buffers.records = 0;
        Ok(())
    }
}

/// Writes the value's length prefix (4 bytes for `BytesWritable`, a VInt for `Text`) into
/// `buf` and returns it.
fn fill_prefix(format: ValueFormat, len: usize, buf: &mut [u8; 9]) -> io::Result<&[u8]> {
    let len = int_len(len)?;
    match format {
        ValueFormat::BytesWritable => {
            buf[..4].copy_from_slice(&len.to_be_bytes());
            Ok(&buf[..4])
        }
        ValueFormat::Text => {
            let n = vint_into(i64::from(len), buf);
            Ok(&buf[..n])
        }
    }
}

/// Hadoop's `Text.writeString`: VInt byte length, then the UTF-8 bytes.
fn write_string(s: &str, out: &mut Vec<u8>) {
    write_vint(s.len() as i64, out);
    out.extend_from_slice(s.as_bytes());
}

/// Appends `v` as Hadoop's VInt/VLong (`WritableUtils.writeVLong`).
pub fn write_vint(v: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 9];
    let n = vint_into(v, &mut buf);
    out.extend_from_slice(&buf[..n]);
}

/// Encodes `v` as Hadoop's VLong into `buf`, returning the byte count (1 to 9).
fn vint_into(v: i64, buf: &mut [u8; 9]) -> usize {
    if (-112..=127).contains(&v) {
        buf[0] = v as u8;
        return 1;
    }
    let (magnitude, base) = if v < 0 { (!v, -120i32) } else { (v, -112i32) };
    let bytes = 8 - (magnitude.leading_zeros() / 8) as usize;
    buf[0] = (base - bytes as i32) as u8;
    for i in 0..bytes {
        buf[1 + i] = (magnitude >> (8 * (bytes - 1 - i))) as u8;
    }
    1 + bytes
}

/// A length as a Java int; over `i32::MAX` is an error, as Hadoop cannot store it.
fn int_len(len: usize) -> io::Result<u32> {
    i32::try_from(len)
        .map(|v| v as u32)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length over 2^31-1"))
}

#[cfg(test)]
#[path = "sequence_file_tests.rs"]
mod tests;
