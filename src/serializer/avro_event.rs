//! Flume's `avro_event` serializer (`org.apache.flume.serialization.FlumeEventAvroEventSerializer`,
//! built on `AbstractAvroEventSerializer`): each output file of the `file_roll` or `hdfs` sink is
//! one Avro object container file whose records are the Flume events.
//!
//! # File layout
//!
//! ```text
//! header: "Obj" 0x01
//!         metadata, an Avro map<bytes> in one block:
//!           "avro.schema" -> FLUME_EVENT_SCHEMA (Flume's schema, as Java Avro prints it)
//!           "avro.codec"  -> "null" | "deflate" | "snappy" | "zstandard" (present even for null)
//!         sync marker, 16 random bytes drawn per file
//! block:  record count (long), byte length of the data (long),
//!         data = the records' binary encodings, compressed as a whole by the codec,
//!         the file's sync marker
//! block:  ...
//! ```
//!
//! Each record is `Event { headers: map<string>, body: bytes }` in that field order: the headers as
//! one map block (the count, then key/value strings, then the `0` end; no headers is the `0`
//! alone, as Java's `BinaryEncoder` writes it), then the body as bytes. No namespace, so readers
//! see the record as plain `Event`.
//!
//! # When blocks are cut
//!
//! As in Avro's Java `DataFileWriter`, which Flume drives:
//! - [`AvroEventWriter::append`] encodes the event into the pending block; when the pending
//!   (uncompressed) bytes reach `syncIntervalBytes` (`>=`), the block is written at once.
//! - [`AvroEventWriter::flush`] writes the pending block if it holds any record, and nothing
//!   otherwise. Flume's sinks call the serializer's `flush()` at the end of each batch (and before
//!   closing a file), and `DataFileWriter.flush()` writes the pending block, so each batch ends on a
//!   block boundary: the bytes given out up to then are a complete, readable container file.
//!
//! The header is written by [`AvroEventWriter::header`], as Flume's `afterCreate()` does when the
//! file is opened; `append` and `flush` write it first if it is still due, so an empty batch still
//! leaves a readable (empty) file.
//!
//! Appending to an existing file is not supported, as in Flume (`supportsReopen()` is false and
//! `afterReopen()` throws): a file always starts with its own header and marker.
//!
//! # Configuration (keys under `<sink>.serializer.`)
//!
//! - `syncIntervalBytes`, default `2048000`. Avro accepts 32 to 2^30 and throws otherwise, so Flume
//!   fails to build the serializer; [`AvroEventConfig::check_sync_interval`] gives that verdict.
//! - `compressionCodec`, default `null`, looked up (case-sensitively) among the names Avro's
//!   `CodecFactory` registers: `null`, `deflate` (level 6, raw deflate), `snappy` (each block
//!   followed by the big-endian CRC32 of its uncompressed data), `zstandard` (level 3, no checksum),
//!   `bzip2`, `xz`. For any other name Flume logs a warning and writes uncompressed; see
//!   [`CodecError`].
//! - `schemaURL` is not read by this serializer (only by the HDFS sink's other, configurable-schema
//!   `AvroEventSerializer`).
//!
//! # Divergences from Flume
//!
//! - `bzip2` and `xz` are valid in Flume but this build's `apache-avro` has neither codec
//!   (its `bzip` and `xz` features are off): [`AvroEventConfig::parse_codec`] reports them as
//!   [`CodecError::Unavailable`] rather than writing a file Flume would compress.
//! - Sync markers: Java hashes a random UUID and the time; here the marker is a random v4 UUID's
//!   bytes. Either is unique per file, which is all readers need.
//! - Metadata entry order follows a `HashMap` in both; readers do not depend on it.
//! - With the same marker, blocks are byte-identical to Java Avro 1.11's `DataFileWriter` output
//!   for `null` and `zstandard`; `deflate` (miniz_oxide vs zlib) and `snappy` (`snap` vs
//!   snappy-java) compress to different but equally valid bytes.
//!
//! # What comes from `apache-avro`, and why not its `Writer`
//!
//! The crate compresses the blocks (`Codec::compress`, the same code its `Writer` uses) and encodes
//! the header's metadata map (`GenericDatumWriter`); its `Reader` checks the output in the tests.
//! The container framing and the record encoding are written here (zig-zag varints and
//! length-prefixed bytes), because the crate's `Writer`:
//! - takes records only as `types::Value` or serde `Serialize` values. A `Value` per event
//!   allocates a `HashMap`, a `String` per header key and value, the field names and a copy of
//!   the body; serde is not a dependency of this module, and the crate re-exports no way in;
//! - writes into a writer it owns, so every block would be copied again into the caller's buffer;
//! - leaves `avro.codec` out for `null`, adds `avro.codec.compression_level` for zstandard, and
//!   prints the schema through `serde_json`, not as the text Flume's files carry.
//!
//! Per event the cost is encoding into a reused buffer: no allocation once the buffer has grown
//! to a block. A block with a compressing codec costs a copy of its data and the codec's output.

use std::collections::HashMap;
use std::fmt;

use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{Codec, DeflateSettings, Schema, ZstandardSettings};

/// The errors of this module: `apache-avro`'s (a codec failing to compress a block, or the header
/// metadata failing to encode).
pub type Error = apache_avro::Error;

/// Flume's record schema, exactly as Java Avro's `Schema.toString()` prints the schema that
/// `FlumeEventAvroEventSerializer` parses; it is the `avro.schema` of every file.
pub const FLUME_EVENT_SCHEMA: &str = r#"{"type":"record","name":"Event","fields":[{"name":"headers","type":{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}"#;

/// The property naming the sync interval, in approximate bytes.
pub const SYNC_INTERVAL_BYTES_KEY: &str = "syncIntervalBytes";
/// Flume's default sync interval (`DEFAULT_SYNC_INTERVAL_BYTES`, "2MB").
pub const DEFAULT_SYNC_INTERVAL_BYTES: usize = 2_048_000;
/// The property naming the compression codec.
pub const COMPRESSION_CODEC_KEY: &str = "compressionCodec";
/// Flume's default codec name: no compression.
pub const DEFAULT_COMPRESSION_CODEC: &str = "null";

/// The smallest sync interval Avro's `DataFileWriter.setSyncInterval` accepts.
const MIN_SYNC_INTERVAL: i64 = 32;
/// The largest sync interval Avro accepts (2^30).
const MAX_SYNC_INTERVAL: i64 = 1 << 30;
/// The container file's first four bytes.
const MAGIC: &[u8; 4] = b"Obj\x01";
/// Avro's `CodecFactory.DEFAULT_ZSTANDARD_LEVEL`, which `fromString("zstandard")` uses.
const ZSTANDARD_LEVEL: u8 = 3;

/// A block compression codec, named as in the file's `avro.codec`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AvroCodec {
    /// `null`: blocks stored as encoded.
    #[default]
    Null,
    /// `deflate`: raw deflate (RFC 1951) at the default level 6, as Java's `Deflater(-1, true)`.
    Deflate,
    /// `snappy`: raw snappy, then the big-endian CRC32 of the uncompressed data.
    Snappy,
    /// `zstandard`: one zstd frame at level 3, without checksum.
    Zstandard,
}

impl AvroCodec {
    /// The codec's name in Avro's `CodecFactory` and in the file's `avro.codec` metadata.
    pub fn name(self) -> &'static str {
        match self {
            AvroCodec::Null => "null",
            AvroCodec::Deflate => "deflate",
            AvroCodec::Snappy => "snappy",
            AvroCodec::Zstandard => "zstandard",
        }
    }

    /// The `apache-avro` codec that compresses this codec's blocks.
    pub fn to_avro(self) -> Codec {
        match self {
            AvroCodec::Null => Codec::Null,
            AvroCodec::Deflate => Codec::Deflate(DeflateSettings::default()),
            AvroCodec::Snappy => Codec::Snappy,
            AvroCodec::Zstandard => Codec::Zstandard(ZstandardSettings::new(ZSTANDARD_LEVEL)),
        }
    }
}

impl fmt::Display for AvroCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a `compressionCodec` value gives no [`AvroCodec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// A name Avro's `CodecFactory` does not register (the lookup is case-sensitive). Flume logs a
    /// warning ("Compression disabled") and writes uncompressed: [`CodecError::flume_fallback`].
    Unrecognized(String),
    /// `bzip2` or `xz`: Flume compresses with it, but this build of `apache-avro` lacks the codec.
    Unavailable(&'static str),
}

impl CodecError {
    /// The codec Flume goes on with: `null` for an unrecognized name, none for a codec Flume has
    /// and Flumen lacks (writing uncompressed would not be what Flume writes).
    pub fn flume_fallback(&self) -> Option<AvroCodec> {
        match self {
            CodecError::Unrecognized(_) => Some(AvroCodec::Null),
            CodecError::Unavailable(_) => None,
        }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Unrecognized(name) => write!(
                f,
                "unrecognized Avro codec `{name}` (Avro knows null, deflate, snappy, bzip2, xz, \
                 zstandard); Flume writes uncompressed"
            ),
            CodecError::Unavailable(name) => write!(
                f,
                "Avro codec `{name}` is valid in Flume but not built into Flumen \
                 (it has null, deflate, snappy, zstandard)"
            ),
        }
    }
}

impl std::error::Error for CodecError {}

/// The serializer's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvroEventConfig {
    /// `syncIntervalBytes`: a block is written once its uncompressed records reach this many bytes.
    /// Meant to lie in Avro's range (see [`AvroEventConfig::check_sync_interval`]); a smaller value
    /// only makes smaller blocks (0 gives one record per block).
    pub sync_interval_bytes: usize,
    /// `compressionCodec`.
    pub codec: AvroCodec,
}

impl Default for AvroEventConfig {
    /// Flume's defaults: 2048000 bytes, `null` codec.
    fn default() -> Self {
        AvroEventConfig {
            sync_interval_bytes: DEFAULT_SYNC_INTERVAL_BYTES,
            codec: AvroCodec::Null,
        }
    }
}

impl AvroEventConfig {
    /// Looks up a `compressionCodec` value as Avro's `CodecFactory.fromString` does: exact names
    /// `null`, `deflate`, `snappy`, `zstandard`; see [`CodecError`] for the rest.
    pub fn parse_codec(name: &str) -> Result<AvroCodec, CodecError> {
        match name {
            "null" => Ok(AvroCodec::Null),
            "deflate" => Ok(AvroCodec::Deflate),
            "snappy" => Ok(AvroCodec::Snappy),
            "zstandard" => Ok(AvroCodec::Zstandard),
            "bzip2" => Err(CodecError::Unavailable("bzip2")),
            "xz" => Err(CodecError::Unavailable("xz")),
            other => Err(CodecError::Unrecognized(other.to_owned())),
        }
    }

    /// Checks a `syncIntervalBytes` value as Avro's `DataFileWriter.setSyncInterval` does: 32 to
    /// 2^30 inclusive. Outside it Avro throws and Flume cannot build the serializer.
    pub fn check_sync_interval(value: i64) -> Result<usize, String> {
        if (MIN_SYNC_INTERVAL..=MAX_SYNC_INTERVAL).contains(&value) {
            usize::try_from(value).map_err(|e| e.to_string())
        } else {
            Err(format!(
                "invalid {SYNC_INTERVAL_BYTES_KEY} {value}: Avro accepts \
                 {MIN_SYNC_INTERVAL} to {MAX_SYNC_INTERVAL}"
            ))
        }
    }
}

/// Writes one Avro container file of Flume events, handing its bytes to the caller's buffer as
/// they become final. One writer per file; [`AvroEventWriter::reset`] starts the next file.
#[derive(Debug)]
pub struct AvroEventWriter {
    sync_interval: usize,
    codec: AvroCodec,
    marker: [u8; 16],
    header_written: bool,
    /// The pending block's encoded records, uncompressed; reused from block to block.
    block: Vec<u8>,
    /// Records in `block`.
    records: u64,
}

impl AvroEventWriter {
    /// A writer for a new file, with a fresh sync marker; nothing is written yet.
    pub fn new(config: &AvroEventConfig) -> Self {
        AvroEventWriter {
            sync_interval: config.sync_interval_bytes,
            codec: config.codec,
            marker: new_sync_marker(),
            header_written: false,
            block: Vec::new(),
            records: 0,
        }
    }

    /// The file's 16-byte sync marker (ends the header and every block).
    pub fn sync_marker(&self) -> [u8; 16] {
        self.marker
    }

    /// The codec the blocks are compressed with.
    pub fn codec(&self) -> AvroCodec {
        self.codec
    }

    /// Records appended and not yet written in a block.
    pub fn pending_records(&self) -> u64 {
        self.records
    }

    /// Appends the container header (magic, `avro.schema`, `avro.codec`, sync marker) to `out`,
    /// unless this file's header was already written. Call it when the file is created, before
    /// anything else is written to it.
    pub fn header(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.header_written {
            return Ok(());
        }
        // The metadata map, encoded by apache-avro (once per file, so a `Value` is fine here).
        let meta_schema = Schema::map(Schema::Bytes).build();
        let meta = HashMap::from([
            (
                "avro.schema".to_owned(),
                Value::Bytes(FLUME_EVENT_SCHEMA.as_bytes().to_vec()),
            ),
            (
                "avro.codec".to_owned(),
                Value::Bytes(self.codec.name().as_bytes().to_vec()),
            ),
        ]);
        let mut header = Vec::with_capacity(MAGIC.len() + FLUME_EVENT_SCHEMA.len() + 64);
        header.extend_from_slice(MAGIC);
        GenericDatumWriter::builder(&meta_schema)
            .build()?
            .write_value(&mut header, Value::Map(meta))?;
        header.extend_from_slice(&self.marker);
        out.extend_from_slice(&header);
        self.header_written = true;
        Ok(())
    }

    /// Appends one event, given its headers as (key, value) pairs and its body. The record joins
    /// the pending block; when that block reaches the sync interval it is written to `out` (with
    /// the header first if still due).
    ///
    /// Keys are written as given: a repeated key makes a map readers resolve to its last value.
    /// On an error (a codec failing) the block is not written and its records, this event
    /// included, stay pending.
    pub fn append<'a>(
        &mut self,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.header(out)?;
        encode_event(&mut self.block, headers, body);
        self.records += 1;
        if self.block.len() >= self.sync_interval {
            self.write_block(out)?;
        }
        Ok(())
    }

    /// Ends a batch: writes the pending block to `out` if it holds any record (and the header
    /// first if still due). Afterwards the bytes given out so far form a complete container file.
    /// On an error the block is not written and its records stay pending.
    pub fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.header(out)?;
        self.write_block(out)
    }

    /// Starts a new file with the same settings: a fresh sync marker, the header due again, and
    /// any unflushed records dropped. The block buffer keeps its capacity.
    pub fn reset(&mut self) {
        self.marker = new_sync_marker();
        self.header_written = false;
        self.block.clear();
        self.records = 0;
    }

    /// Writes the pending block, if any: count, length, (compressed) data, sync marker.
    fn write_block(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.records == 0 {
            return Ok(());
        }
        let count = i64::try_from(self.records).unwrap_or(i64::MAX);
        if self.codec == AvroCodec::Null {
            put_long(out, count);
            put_bytes(out, &self.block);
        } else {
            // `Codec::compress` replaces the vector it is given; compress a copy so the block
            // buffer keeps its capacity for the next block.
            let mut packed = self.block.clone();
            self.codec.to_avro().compress(&mut packed)?;
            put_long(out, count);
            put_bytes(out, &packed);
        }
        out.extend_from_slice(&self.marker);
        self.block.clear();
        self.records = 0;
        Ok(())
    }
}

/// Encodes one `Event` record (headers map, then body bytes) at the end of `buf`.
fn encode_event<'a>(
    buf: &mut Vec<u8>,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &[u8],
) {
    // The map's item count precedes its items but an iterator's length is known only at its end:
    // one byte is held for it (enough for up to 63 items), widened in place in the rare case of
    // more. With no items that byte is the map's terminating 0.
    let at = buf.len();
    buf.push(0);
    let mut count: i64 = 0;
    for (key, value) in headers {
        put_bytes(buf, key.as_bytes());
        put_bytes(buf, value.as_bytes());
        count += 1;
    }
    if count > 0 {
        let (varint, len) = long_varint(count);
        if len == 1 {
            buf[at] = varint[0];
        } else {
            buf.splice(at..=at, varint[..len].iter().copied());
        }
        buf.push(0);
    }
    put_bytes(buf, body);
}

/// Avro's `long` encoding: zig-zag, then base-128 varint, low groups first.
fn long_varint(n: i64) -> ([u8; 10], usize) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let mut bytes = [0u8; 10];
    let mut len = 0;
    while z >= 0x80 {
        bytes[len] = (z as u8) | 0x80;
        z >>= 7;
        len += 1;
    }
    bytes[len] = z as u8;
    (bytes, len + 1)
}

/// Appends an Avro `long`.
fn put_long(buf: &mut Vec<u8>, n: i64) {
    let (varint, len) = long_varint(n);
    buf.extend_from_slice(&varint[..len]);
}

/// Appends Avro `bytes` (or `string`): the length as a `long`, then the bytes.
fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_long(buf, i64::try_from(bytes.len()).unwrap_or(i64::MAX));
    buf.extend_from_slice(bytes);
}

/// 16 random bytes unique to this file (from the OS, through `uuid`'s v4 generator).
fn new_sync_marker() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

#[cfg(test)]
#[path = "avro_event_tests.rs"]
mod tests;
