//! The AVRO deserializer (Flume's `AvroEventDeserializer`): one event per record of an Avro
//! object container file.
//!
//! Each record is decoded with the file's schema and re-encoded in Avro binary as the event
//! body, as Flume does. With `deserializer.schemaType = HASH` (the default) each event carries
//! `flume.avro.schema.hash`: the schema's CRC-64-AVRO fingerprint (of its parsing canonical
//! form) as 16 lower-case hex digits, byte order as Java's `SchemaNormalization`; with
//! `LITERAL`, `flume.avro.schema.literal`: the schema JSON as the file's header holds it
//! (Flume prints its parsed schema again, which gives the same text for files written by
//! Java's `DataFileWriter`). Codecs: null, deflate, snappy, zstandard (bzip2 and xz are
//! refused with an error naming the file).
//!
//! The container is read block by block here (the `apache-avro` crate decodes and encodes
//! records and decompresses blocks); a position is a block's offset plus the records of it
//! already committed, so a restart resumes at the exact record (Flume resumes at the start of
//! the block and delivers its first records again).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::str::FromStr;

use apache_avro::rabin::Rabin;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{Codec, Schema};
use bytes::Bytes;

use super::config::SchemaType;
use super::read::{Batch, Deserializer, ReadError};
use super::tracker::Position;
use crate::event::{Event, HeaderString, Headers};

/// The header holding the schema fingerprint.
pub const SCHEMA_HASH_HEADER: &str = "flume.avro.schema.hash";
/// The header holding the schema itself.
pub const SCHEMA_LITERAL_HEADER: &str = "flume.avro.schema.literal";
const MAGIC: &[u8; 4] = b"Obj\x01";
/// Largest header string or block accepted (a corrupt length must not exhaust memory).
const MAX_CHUNK: u64 = 1 << 30;

/// The AVRO deserializer on one file.
pub struct AvroReader {
    input: CountingReader,
    limit: u64,
    schema: Schema,
    codec: Codec,
    sync: [u8; 16],
    headers: Headers,
    /// Re-encoded records of the current block, the next to hand out, and the block's range.
    records: Vec<Bytes>,
    next: usize,
    block_start: u64,
    block_end: u64,
    skip: u64,
}

/// A buffered reader that knows its offset in the file.
struct CountingReader {
    inner: BufReader<File>,
    offset: u64,
}

impl CountingReader {
    fn seek(&mut self, offset: u64) -> std::io::Result<()> {
        self.inner.seek(SeekFrom::Start(offset))?;
        self.offset = offset;
        Ok(())
    }
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.offset += n as u64;
        Ok(n)
    }
}

impl AvroReader {
    /// Reads the container header of `file` and positions at `start` (offset 0: the first
    /// block).
    pub fn open(
        file: File,
        limit: u64,
        start: Position,
        schema_type: SchemaType,
    ) -> Result<Self, ReadError> {
        let mut input = CountingReader {
            inner: BufReader::with_capacity(256 << 10, file),
            offset: 0,
        };
        let bad = |offset: u64, reason: String| ReadError::Avro { offset, reason };
        let mut magic = [0u8; 4];
        read_exact(&mut input, &mut magic)?;
        if &magic != MAGIC {
            return Err(bad(
                0,
                "not an Avro object container file (bad magic)".into(),
            ));
        }
        let mut schema_json = None;
        let mut codec_name = None;
        loop {
            let mut count = read_long(&mut input)?;
            if count == 0 {
                break;
            }
            if count < 0 {
                count = count.checked_neg().unwrap_or(0);
                let _size = read_long(&mut input)?;
            }
            for _ in 0..count {
                let key = read_bytes(&mut input)?;
                let value = read_bytes(&mut input)?;
                match key.as_slice() {
                    b"avro.schema" => schema_json = Some(value),
                    b"avro.codec" => codec_name = Some(value),
                    _ => {}
                }
            }
        }
        let mut sync = [0u8; 16];
        read_exact(&mut input, &mut sync)?;
        let header_end = input.offset;
        let schema_json =
            schema_json.ok_or_else(|| bad(0, "no avro.schema in the header".into()))?;
        let schema_text = String::from_utf8(schema_json)
            .map_err(|_| bad(0, "avro.schema is not UTF-8".into()))?;
        let schema =
            Schema::parse_str(&schema_text).map_err(|e| bad(0, format!("invalid schema: {e}")))?;
        let codec = match codec_name {
            None => Codec::Null,
            Some(name) => {
                let name = String::from_utf8_lossy(&name).into_owned();
                Codec::from_str(&name).map_err(|_| bad(0, format!("unsupported codec `{name}`")))?
            }
        };
        let mut headers = Headers::new();
        match schema_type {
            SchemaType::Hash => {
                let hash = schema.fingerprint::<Rabin>().to_string();
                headers.insert(SCHEMA_HASH_HEADER.into(), HeaderString::from(hash));
            }
            SchemaType::Literal => {
                headers.insert(
                    SCHEMA_LITERAL_HEADER.into(),
                    HeaderString::from(schema_text),
                );
            }
        }
        let block_start = start.offset.max(header_end);
        Ok(AvroReader {
            input,
            limit,
            schema,
            codec,
            sync,
            headers,
            records: Vec::new(),
            next: 0,
            block_start,
            block_end: block_start,
            skip: if start.offset >= header_end {
                start.skip
            } else {
                0
            },
        })
    }

    /// Reads and decodes the block at `block_end`; `Ok(false)` at the end of the file.
    fn next_block(&mut self) -> Result<bool, ReadError> {
        let at = self.block_end;
        if at >= self.limit {
            return Ok(false);
        }
        let bad = |reason: String| ReadError::Avro { offset: at, reason };
        self.input
            .seek(at)
            .map_err(|source| ReadError::Io { offset: at, source })?;
        let count = read_long(&mut self.input)?;
        let size = read_long(&mut self.input)?;
        if count < 0 || size < 0 || size as u64 > MAX_CHUNK {
            return Err(bad(format!(
                "bad block header (count {count}, size {size})"
            )));
        }
        let mut data = vec![0u8; size as usize];
        read_exact(&mut self.input, &mut data)?;
        let mut sync = [0u8; 16];
        read_exact(&mut self.input, &mut sync)?;
        if sync != self.sync {
            return Err(bad("sync marker does not match the header's".into()));
        }
        let end = self.input.offset;
        self.codec
            .decompress(&mut data)
            .map_err(|e| bad(format!("cannot decompress the block: {e}")))?;
        let reader = GenericDatumReader::builder(&self.schema)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let writer = GenericDatumWriter::builder(&self.schema)
            .validate(false)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        self.records.clear();
        let mut slice = &data[..];
        for i in 0..count {
            let value = reader
                .read_value(&mut slice)
                .map_err(|e| bad(format!("record {i}: {e}")))?;
            let body = writer
                .write_value_to_vec(value)
                .map_err(|e| bad(format!("record {i}: {e}")))?;
            self.records.push(Bytes::from(body));
        }
        self.block_start = at;
        self.block_end = end;
        self.next = (std::mem::take(&mut self.skip) as usize).min(self.records.len());
        Ok(true)
    }
}

impl Deserializer for AvroReader {
    fn read_batch(&mut self, max: usize) -> Batch {
        let mut batch = Batch::default();
        while batch.events.len() < max {
            if self.next < self.records.len() {
                let body = self.records[self.next].clone();
                self.next += 1;
                batch
                    .events
                    .push(Event::with_headers(self.headers.clone(), body));
                continue;
            }
            match self.next_block() {
                Ok(true) => {}
                Ok(false) => {
                    batch.eof = true;
                    break;
                }
                Err(e) => {
                    batch.error = Some(e);
                    break;
                }
            }
        }
        batch.end = if self.next < self.records.len() {
            Position {
                offset: self.block_start,
                skip: self.next as u64,
            }
        } else {
            Position {
                offset: self.block_end,
                skip: 0,
            }
        };
        batch
    }
}

fn read_exact(input: &mut CountingReader, buf: &mut [u8]) -> Result<(), ReadError> {
    let offset = input.offset;
    input.read_exact(buf).map_err(|source| {
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            ReadError::Avro {
                offset,
                reason: "the file ends inside a header or block".into(),
            }
        } else {
            ReadError::Io { offset, source }
        }
    })
}

/// A zig-zag varint `long`.
fn read_long(input: &mut CountingReader) -> Result<i64, ReadError> {
    let offset = input.offset;
    let mut value: u64 = 0;
    for shift in (0..70).step_by(7) {
        let mut b = [0u8; 1];
        read_exact(input, &mut b)?;
        value |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    Err(ReadError::Avro {
        offset,
        reason: "varint longer than 10 bytes".into(),
    })
}

/// A length-prefixed byte string.
fn read_bytes(input: &mut CountingReader) -> Result<Vec<u8>, ReadError> {
    let offset = input.offset;
    let len = read_long(input)?;
    if len < 0 || len as u64 > MAX_CHUNK {
        return Err(ReadError::Avro {
            offset,
            reason: format!("bad length {len}"),
        });
    }
    let mut buf = vec![0u8; len as usize];
    read_exact(input, &mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::{Record, Value};
    use apache_avro::Writer;

    const SCHEMA: &str = r#"{"type":"record","name":"R","fields":[{"name":"id","type":"long"},{"name":"s","type":"string"}]}"#;

    /// A container with `n` records in blocks of `per_block`.
    fn container(n: i64, per_block: i64, codec: Codec) -> Vec<u8> {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let mut w = Writer::with_codec(&schema, Vec::new(), codec).unwrap();
        for i in 0..n {
            let mut r = Record::new(&schema).unwrap();
            r.put("id", i);
            r.put("s", format!("rec-{i}"));
            w.append_value(r).unwrap();
            if (i + 1) % per_block == 0 {
                w.flush().unwrap();
            }
        }
        w.into_inner().unwrap()
    }

    fn ids(schema: &Schema, b: &Batch) -> Vec<i64> {
        b.events
            .iter()
            .map(|e| {
                let reader = GenericDatumReader::builder(schema).build().unwrap();
                match reader.read_value(&mut &e.body[..]).unwrap() {
                    Value::Record(fields) => match fields[0].1 {
                        Value::Long(v) => v,
                        ref other => panic!("{other:?}"),
                    },
                    other => panic!("{other:?}"),
                }
            })
            .collect()
    }

    fn open_bytes(bytes: &[u8], start: Position, t: SchemaType) -> (tempfile::TempDir, AvroReader) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.avro");
        std::fs::write(&p, bytes).unwrap();
        let r = AvroReader::open(File::open(&p).unwrap(), bytes.len() as u64, start, t).unwrap();
        (dir, r)
    }

    #[test]
    fn records_become_events_with_the_schema_hash() {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        for codec in [
            Codec::Null,
            Codec::Deflate(Default::default()),
            Codec::Snappy,
        ] {
            let bytes = container(25, 10, codec);
            let (_d, mut r) = open_bytes(&bytes, Position::default(), SchemaType::Hash);
            let b = r.read_batch(100);
            assert!(b.eof && b.error.is_none(), "{:?}", b.error);
            assert_eq!(ids(&schema, &b), (0..25).collect::<Vec<_>>());
            let hash = b.events[0].headers.get(SCHEMA_HASH_HEADER).unwrap();
            assert_eq!(hash.as_str(), schema.fingerprint::<Rabin>().to_string());
            assert_eq!(hash.len(), 16);
        }
    }

    #[test]
    fn the_hash_is_javas_crc64_avro_byte_order() {
        // The Avro specification's test vector: "int" has the 64-bit fingerprint
        // 0x7275d51a3f395c8f; Java's parsingFingerprint gives its bytes little-endian.
        let schema = Schema::parse_str(r#""int""#).unwrap();
        assert_eq!(
            schema.fingerprint::<Rabin>().to_string(),
            "8f5c393f1ad57572"
        );
    }

    #[test]
    fn positions_resume_at_the_exact_record() {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let bytes = container(25, 10, Codec::Null);
        let (_d, mut r) = open_bytes(&bytes, Position::default(), SchemaType::Literal);
        let b = r.read_batch(13);
        assert_eq!(ids(&schema, &b), (0..13).collect::<Vec<_>>());
        assert_eq!(b.end.skip, 3);
        assert_eq!(
            b.events[0]
                .headers
                .get(SCHEMA_LITERAL_HEADER)
                .map(|h| h.as_str()),
            Some(SCHEMA)
        );
        let (_d2, mut again) = open_bytes(&bytes, b.end, SchemaType::Hash);
        let rest = again.read_batch(100);
        assert_eq!(ids(&schema, &rest), (13..25).collect::<Vec<_>>());
    }

    #[test]
    fn a_truncated_or_foreign_file_is_an_error() {
        let bytes = container(25, 10, Codec::Null);
        let (_d, mut r) = open_bytes(
            &bytes[..bytes.len() - 5],
            Position::default(),
            SchemaType::Hash,
        );
        let b = r.read_batch(100);
        assert_eq!(b.events.len(), 20);
        assert!(matches!(b.error, Some(ReadError::Avro { .. })));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"not avro at all").unwrap();
        let e = AvroReader::open(
            File::open(&p).unwrap(),
            15,
            Position::default(),
            SchemaType::Hash,
        );
        assert!(matches!(e, Err(ReadError::Avro { .. })));
    }
}
