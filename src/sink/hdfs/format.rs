//! What an open file's bytes are: Flume's `hdfs.fileType` with its codec and serializer.
//!
//! An [`Encoder`] turns one file's events into its bytes, appended to a caller's buffer. Each
//! `end_batch` leaves the bytes so far a complete, readable file: the batch is one compressed
//! unit (a gzip member, a bzip2 stream, a zstd frame, Hadoop-framed blocks), a SequenceFile
//! sync, or an Avro block, as Flume's writers leave them at every `sync()`. So a file cut after
//! any committed batch (a crash) is still valid, and recovery only has to cut it there.
//!
//! | fileType | bytes |
//! |---|---|
//! | `DataStream` | the serializer's output (`TEXT`, `HEADER_AND_TEXT`, `avro_event`) |
//! | `CompressedStream` | that output, each batch compressed as one unit of `hdfs.codeC` |
//! | `SequenceFile` | Hadoop's SequenceFile: key `LongWritable` (the `timestamp` header, else now), value `BytesWritable` (`hdfs.writeFormat = Writable`) or `Text` (`Text`), block-compressed with `hdfs.codeC` when set; the serializer is not used, as in Flume |

use super::codec::{Codec, Compressor};
use super::sequence_file::{
    flume_key, new_sync_marker, CompressionType, SequenceFileWriter, ValueFormat,
};
use crate::event::Event;
use crate::serializer::avro_event::{AvroEventConfig, AvroEventWriter};
use crate::serializer::Serializer;

/// Flume's `hdfs.fileType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    /// `SequenceFile` (Flume's default).
    SequenceFile,
    /// `DataStream`: uncompressed serializer output.
    DataStream,
    /// `CompressedStream`: serializer output through `hdfs.codeC`.
    CompressedStream,
}

impl FileType {
    /// Flume's names, matched case-insensitively.
    pub const NAMES: [&'static str; 3] = ["SequenceFile", "DataStream", "CompressedStream"];

    /// From one of [`FileType::NAMES`].
    pub fn from_name(name: &str) -> Option<FileType> {
        match name.to_ascii_lowercase().as_str() {
            "sequencefile" => Some(FileType::SequenceFile),
            "datastream" => Some(FileType::DataStream),
            "compressedstream" => Some(FileType::CompressedStream),
            _ => None,
        }
    }
}

/// The event serializer of `DataStream` and `CompressedStream` files.
#[derive(Clone, Debug)]
pub enum BodySerializer {
    /// `TEXT` or `HEADER_AND_TEXT`.
    Text(Serializer),
    /// `avro_event`: an Avro container of Flume events.
    AvroEvent(AvroEventConfig),
}

impl BodySerializer {
    /// The name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            BodySerializer::Text(s) => s.name(),
            BodySerializer::AvroEvent(_) => "avro_event",
        }
    }
}

/// Everything that decides a file's bytes.
#[derive(Clone, Debug)]
pub struct FormatSpec {
    /// `hdfs.fileType`.
    pub file_type: FileType,
    /// `hdfs.codeC`.
    pub codec: Option<Codec>,
    /// `serializer`.
    pub serializer: BodySerializer,
    /// `hdfs.writeFormat`.
    pub write_format: ValueFormat,
}

impl FormatSpec {
    /// A fresh encoder for one file.
    pub fn encoder(&self) -> std::io::Result<Encoder> {
        let kind = match self.file_type {
            FileType::SequenceFile => {
                // Flume writes a SequenceFile with a codec BLOCK-compressed.
                let compression = self.codec.map(|c| (c, CompressionType::Block));
                Kind::Sequence(SequenceFileWriter::new(
                    self.write_format,
                    compression,
                    new_sync_marker(),
                )?)
            }
            FileType::DataStream => Kind::Stream(self.body()),
            FileType::CompressedStream => match self.codec {
                Some(codec) => Kind::Compressed {
                    body: self.body(),
                    compressor: codec.compressor()?,
                    plain: Vec::new(),
                },
                // The config refuses CompressedStream without a codec; stay uncompressed.
                None => Kind::Stream(self.body()),
            },
        };
        Ok(Encoder { kind })
    }

    fn body(&self) -> Body {
        match &self.serializer {
            BodySerializer::Text(s) => Body::Text(*s),
            BodySerializer::AvroEvent(c) => Body::Avro(Box::new(AvroEventWriter::new(c))),
        }
    }

    /// The codec's extension, added to file names that have no `hdfs.fileSuffix`.
    pub fn extension(&self) -> &'static str {
        self.codec.map(Codec::extension).unwrap_or("")
    }
}

/// Turns one file's events into its bytes.
pub struct Encoder {
    kind: Kind,
}

enum Kind {
    Stream(Body),
    Compressed {
        body: Body,
        /// One per file, as Hadoop's stream: finished at each batch end, reset after.
        compressor: Compressor,
        /// This batch's serialized bytes, before compression.
        plain: Vec<u8>,
    },
    Sequence(SequenceFileWriter),
}

/// A serializer with its per-file state.
enum Body {
    Text(Serializer),
    Avro(Box<AvroEventWriter>),
}

impl Body {
    fn begin(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            Body::Text(_) => Ok(()),
            Body::Avro(w) => w.header(out).map_err(std::io::Error::other),
        }
    }

    fn append(&mut self, event: &Event, out: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            Body::Text(s) => {
                s.write_batch(std::slice::from_ref(event), out);
                Ok(())
            }
            Body::Avro(w) => w
                .append(
                    event.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    &event.body,
                    out,
                )
                .map_err(std::io::Error::other),
        }
    }

    fn end_batch(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            Body::Text(_) => Ok(()),
            Body::Avro(w) => w.flush(out).map_err(std::io::Error::other),
        }
    }
}

impl Encoder {
    /// The bytes that start a file (SequenceFile and Avro headers).
    pub fn begin(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        match &mut self.kind {
            Kind::Stream(body) => body.begin(out),
            Kind::Compressed { body, plain, .. } => body.begin(plain),
            Kind::Sequence(w) => {
                w.header(out);
                Ok(())
            }
        }
    }

    /// Appends one event; `now_millis` keys a SequenceFile record without a `timestamp`.
    pub fn append(
        &mut self,
        event: &Event,
        now_millis: i64,
        out: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        match &mut self.kind {
            Kind::Stream(body) => body.append(event, out),
            Kind::Compressed { body, plain, .. } => body.append(event, plain),
            Kind::Sequence(w) => {
                // The sink screens out events whose timestamp does not parse.
                let stamp = event.headers.get("timestamp").map(|t| t.as_str());
                let key = flume_key(stamp, now_millis).unwrap_or(now_millis);
                w.append(key, &event.body, out)
            }
        }
    }

    /// Ends a batch: afterwards the bytes given so far are a complete, readable file.
    pub fn end_batch(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        match &mut self.kind {
            Kind::Stream(body) => body.end_batch(out),
            Kind::Compressed {
                body,
                compressor,
                plain,
            } => {
                body.end_batch(plain)?;
                if !plain.is_empty() {
                    compressor.write(plain, out)?;
                    compressor.finish(out)?;
                    plain.clear();
                }
                Ok(())
            }
            Kind::Sequence(w) => w.end_batch(out),
        }
    }

    /// What a close adds after the last batch end (Hadoop's bzip2 stream ends with an empty
    /// stream; the others add nothing). A file recovered after a crash lacks it and is still
    /// complete.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        match &mut self.kind {
            Kind::Stream(_) => Ok(()),
            Kind::Compressed { compressor, .. } => compressor.close(out),
            Kind::Sequence(w) => w.finish(out),
        }
    }
}
