//! Hadoop compression codecs, written the way Flume's HDFS sink drives them.
//!
//! # Where the bytes come from
//!
//! Flume 1.11's `HDFSCompressedDataStream` (fileType `CompressedStream`) wraps the file in
//! `codec.createOutputStream(fsOut, CodecPool.getCompressor(codec))`. Each event is written as
//! two `write` calls on that stream (`BodyTextEventSerializer`: the body, then `'\n'`). At each
//! batch end `sync()` calls `finish()`, and the first `append` after that calls
//! `resetState()`, so every batch becomes an independent compressed unit and the file is the
//! concatenation of the units. `close()` calls `finish()` if needed and then `close()` on the
//! stream. Flume's `HDFSSequenceFile` uses the same codecs inside Hadoop's
//! `SequenceFile.Writer` (see `sequence_file.rs`), again one unit per compressed value or
//! buffer.
//!
//! [`Compressor`] mirrors one such `CompressionOutputStream`: [`Compressor::write`] is one
//! `write` call, [`Compressor::finish`] is `finish()`, a write after a finish starts a new
//! unit (`resetState()`), and [`Compressor::close`] is `close()`.
//!
//! # One unit, per codec
//!
//! | codec | Hadoop class | extension | one unit |
//! | --- | --- | --- | --- |
//! | [`Codec::Gzip`] | `GzipCodec` | `.gz` | one gzip member (RFC 1952) |
//! | [`Codec::Bzip2`] | `BZip2Codec` | `.bz2` | one bzip2 stream, `BZh9` |
//! | [`Codec::Default`] | `DefaultCodec` | `.deflate` | one zlib stream (RFC 1950), `78 9c` |
//! | [`Codec::Deflate`] | `DeflateCodec` | `.deflate` | same bytes as `DefaultCodec` |
//! | [`Codec::Zstd`] | `ZStandardCodec` | `.zst` | one zstd frame, level 3 |
//! | [`Codec::Snappy`] | `SnappyCodec` | `.snappy` | Hadoop block framing, raw snappy |
//! | [`Codec::Lz4`] | `Lz4Codec` | `.lz4` | Hadoop block framing, raw LZ4 block |
//!
//! * **gzip**: the 10-byte header `1f 8b 08 00 00 00 00 00 00 00` (deflate, no flags,
//!   mtime 0, XFL 0, OS 0), raw deflate at zlib's default level 6, then CRC-32 and the input
//!   length mod 2^32, both 4 bytes little-endian. That header is the constant Hadoop's own
//!   gzip code writes (`ResetableGZIPOutputStream.resetState`, `BuiltInGzipCompressor`).
//!   Other Hadoop setups differ only in the OS byte, which readers ignore: pure-Java Hadoop
//!   3.3.4 on JDK 17 writes `ff` in the file's first member (the JDK's `GZIPOutputStream`) and
//!   `00` in later ones; native zlib writes `03`.
//! * **bzip2**: `BZh9` (900k blocks), then blocks and the end-of-stream marker with the
//!   combined CRC. Hadoop's pure-Java `BZip2CompressionOutputStream` writes `BZ` itself and
//!   `CBZip2OutputStream` the rest (`h9`...), so its units are ordinary bzip2 streams. Its
//!   `close()` after a `finish()` (always the case under Flume) writes one more, empty
//!   stream: the 14 bytes [`EMPTY_BZIP2_STREAM`]; [`Compressor::close`] does the same.
//! * **zlib** (`DefaultCodec`, `DeflateCodec`): a zlib stream at level 6 (`78 9c`, deflate,
//!   Adler-32 big-endian), as `ZlibCompressor` / `BuiltInZlibDeflater` write it.
//! * **zstd**: one frame per unit at level 3 (`io.compression.codec.zstd.level`), streamed,
//!   so the frame header carries no content size and no checksum. Hadoop has only a native
//!   (libhadoop) zstd codec.
//! * **snappy / lz4**: Hadoop's `BlockCompressorStream` framing. A unit is one or more
//!   blocks; a block is a 4-byte big-endian uncompressed length, then one or more chunks, each
//!   a 4-byte big-endian compressed length and that many bytes of raw codec output (a raw
//!   snappy buffer; an LZ4 block without frame header). Chunks are at most the buffer size
//!   (`io.compression.codec.{snappy,lz4}.buffersize`, default 262144) long, and each holds at
//!   most `MAX_INPUT` uncompressed bytes: buffer size minus the codec's overhead, `size/6 + 32`
//!   for snappy (218422) and `size/255 + 16` for lz4 (261100). Hadoop buffers written bytes
//!   and emits a block when a write would take the buffered bytes over `MAX_INPUT` (the
//!   buffered bytes become a block first) and at `finish()`. A single write longer than
//!   `MAX_INPUT` becomes its own block: its full length, then one chunk per `MAX_INPUT` slice;
//!   the compressor is then empty but the unit open, so a `finish()` right after writes a
//!   block header of length 0 with no chunk (`00 00 00 00`).
//!
//! Compressed payloads (the deflate, bzip2, zstd, snappy and lz4 bytes themselves) come from
//! Rust encoders and need not equal Java's or libhadoop's byte for byte; everything around
//! them (headers, trailers, framing, unit boundaries) is as Hadoop writes it.
//!
//! Checked against Hadoop 3.3.4 (pure Java, the tests' `hadoop_read.sh`): Hadoop decodes
//! every codec's multi-batch output but zstd (native only); the snappy and lz4 block layout
//! (block lengths, chunk counts) equals that of Hadoop's own stream fed the same writes; its
//! bzip2 output ends with [`EMPTY_BZIP2_STREAM`]. Sources: Flume 1.11
//! `HDFSCompressedDataStream`, `BodyTextEventSerializer`; Hadoop `BlockCompressorStream`,
//! `SnappyCodec`, `Lz4Codec`, `BZip2Codec`, `GzipCodec`, `CommonConfigurationKeys`.
//!
//! Allocation: a [`Compressor`] reuses its state across units, except bzip2 (a new libbz2
//! stream per unit, as Hadoop makes a new `CBZip2OutputStream`) and lz4 (`lz4_flex` sets up
//! its hash table per chunk). Output goes straight into the caller's `Vec`, apart from
//! snappy/lz4 chunks, which pass through a reused scratch buffer.

use std::fmt;
use std::io;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use zstd::stream::raw::{Encoder as ZstdEncoder, InBuffer, Operation, OutBuffer};

/// Hadoop's default `io.compression.codec.snappy.buffersize` and `...lz4.buffersize`.
pub const BLOCK_BUFFER_SIZE: usize = 256 * 1024;
/// Most uncompressed bytes in one snappy chunk: `BLOCK_BUFFER_SIZE - (BLOCK_BUFFER_SIZE / 6 + 32)`.
pub const SNAPPY_MAX_INPUT: usize = BLOCK_BUFFER_SIZE - (BLOCK_BUFFER_SIZE / 6 + 32);
/// Most uncompressed bytes in one lz4 chunk: `BLOCK_BUFFER_SIZE - (BLOCK_BUFFER_SIZE / 255 + 16)`.
pub const LZ4_MAX_INPUT: usize = BLOCK_BUFFER_SIZE - (BLOCK_BUFFER_SIZE / 255 + 16);
/// The empty bzip2 stream Hadoop's pure-Java bzip2 stream writes on `close()` after `finish()`.
pub const EMPTY_BZIP2_STREAM: [u8; 14] = [
    b'B', b'Z', b'h', b'9', 0x17, 0x72, 0x45, 0x38, 0x50, 0x90, 0, 0, 0, 0,
];
/// The gzip member header written before each unit (see the module doc).
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0];
/// zlib's and Hadoop's default deflate level.
const ZLIB_LEVEL: u32 = 6;
/// Hadoop's default `io.compression.codec.zstd.level`.
const ZSTD_LEVEL: i32 = 3;
/// Output room reserved before each call into a streaming encoder.
const OUT_STEP: usize = 32 * 1024;

/// The codecs Flume's `hdfs.codeC` can name on a stock Hadoop classpath.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// `org.apache.hadoop.io.compress.GzipCodec`.
    Gzip,
    /// `org.apache.hadoop.io.compress.BZip2Codec`.
    Bzip2,
    /// `org.apache.hadoop.io.compress.DefaultCodec` (zlib).
    Default,
    /// `org.apache.hadoop.io.compress.DeflateCodec` (zlib too; only the class name differs).
    Deflate,
    /// `org.apache.hadoop.io.compress.ZStandardCodec`.
    Zstd,
    /// `org.apache.hadoop.io.compress.SnappyCodec`.
    Snappy,
    /// `org.apache.hadoop.io.compress.Lz4Codec`.
    Lz4,
}

/// Why an `hdfs.codeC` value names no codec this module writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecNameError {
    /// No Hadoop codec has this name; Flume fails the same way.
    Unsupported(String),
    /// An LZO name: those codecs live in the GPL hadoop-lzo library, which is not supported.
    NeedsHadoopLzo(String),
}

impl fmt::Display for CodecNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecNameError::Unsupported(name) => write!(
                f,
                "Unsupported compression codec {name}.  Please choose from: [None, {}]",
                Codec::HADOOP_ORDER.map(Codec::simple_name).join(", ")
            ),
            CodecNameError::NeedsHadoopLzo(name) => write!(
                f,
                "compression codec {name} is not supported: LZO needs the GPL hadoop-lzo library"
            ),
        }
    }
}

impl std::error::Error for CodecNameError {}

/// Names that select hadoop-lzo's codecs when that library is installed.
const LZO_NAMES: [&str; 6] = [
    "lzo",
    "lzop",
    "lzocodec",
    "lzopcodec",
    "com.hadoop.compression.lzo.lzocodec",
    "com.hadoop.compression.lzo.lzopcodec",
];

impl Codec {
    /// The codecs in the order Hadoop registers them (its `CompressionCodec` service file).
    pub const HADOOP_ORDER: [Codec; 7] = [
        Codec::Bzip2,
        Codec::Default,
        Codec::Deflate,
        Codec::Gzip,
        Codec::Lz4,
        Codec::Snappy,
        Codec::Zstd,
    ];

    /// Resolves Flume's `hdfs.codeC` as `HDFSEventSink.getCodec` does: the full class name
    /// (exact case), or the simple class name with or without its `Codec` suffix (any case).
    /// So `gzip`, `bzip2`, `default`, `deflate`, `snappy`, `lz4` and `zstandard` work; Flumen
    /// also takes `zstd`, which Flume refuses. `None` (any case) means no codec: `Ok(None)`.
    pub fn from_flume_name(name: &str) -> Result<Option<Codec>, CodecNameError> {
        let found = Codec::HADOOP_ORDER.into_iter().find(|codec| {
            let simple = codec.simple_name();
            let short = &simple[..simple.len() - "Codec".len()];
            name == codec.hadoop_class()
                || name.eq_ignore_ascii_case(simple)
                || name.eq_ignore_ascii_case(short)
        });
        match found {
            Some(codec) => Ok(Some(codec)),
            // Flumen also takes `zstd`, the name every other tool uses (Flume refuses it).
            None if name.eq_ignore_ascii_case("zstd") => Ok(Some(Codec::Zstd)),
            None if name.eq_ignore_ascii_case("None") => Ok(None),
            None if LZO_NAMES.iter().any(|lzo| name.eq_ignore_ascii_case(lzo)) => {
                Err(CodecNameError::NeedsHadoopLzo(name.to_owned()))
            }
            None => Err(CodecNameError::Unsupported(name.to_owned())),
        }
    }

    /// The Hadoop class name, as a SequenceFile header names the codec.
    pub fn hadoop_class(self) -> &'static str {
        match self {
            Codec::Gzip => "org.apache.hadoop.io.compress.GzipCodec",
            Codec::Bzip2 => "org.apache.hadoop.io.compress.BZip2Codec",
            Codec::Default => "org.apache.hadoop.io.compress.DefaultCodec",
            Codec::Deflate => "org.apache.hadoop.io.compress.DeflateCodec",
            Codec::Zstd => "org.apache.hadoop.io.compress.ZStandardCodec",
            Codec::Snappy => "org.apache.hadoop.io.compress.SnappyCodec",
            Codec::Lz4 => "org.apache.hadoop.io.compress.Lz4Codec",
        }
    }

    /// The class's simple name (`GzipCodec`), as Flume lists the choices.
    pub fn simple_name(self) -> &'static str {
        let class = self.hadoop_class();
        &class["org.apache.hadoop.io.compress.".len()..]
    }

    /// Hadoop's `getDefaultExtension()`, which Flume appends to the file name when
    /// `hdfs.fileSuffix` is empty.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => ".gz",
            Codec::Bzip2 => ".bz2",
            Codec::Default | Codec::Deflate => ".deflate",
            Codec::Zstd => ".zst",
            Codec::Snappy => ".snappy",
            Codec::Lz4 => ".lz4",
        }
    }

    /// A compressor for this codec; keep it and reuse it for every unit of a file.
    pub fn compressor(self) -> io::Result<Compressor> {
        Compressor::new(self)
    }

    /// Compresses `input` as one independent unit (one `write` call, then `finish()`)
    /// appended to `out`. Sets up a new encoder each call: a writer should keep a
    /// [`Compressor`] instead.
    pub fn compress_unit(self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let mut compressor = Compressor::new(self)?;
        compressor.write(input, out)?;
        compressor.finish(out)
    }
}

/// Encoder state per codec.
enum State {
    Zlib(Compress),
    Gzip {
        deflate: Compress,
        crc: Crc,
    },
    /// Made anew for each unit: libbz2 has no reset.
    Bzip2(Option<bzip2::Compress>),
    Zstd(Box<ZstdEncoder<'static>>),
    Block(Box<BlockState>),
}

/// A Hadoop `BlockCompressorStream` with its snappy or lz4 compressor.
struct BlockState {
    lz4: bool,
    max_input: usize,
    /// Bytes given to the compressor and not yet compressed (Hadoop's `getBytesRead()`).
    pending: Vec<u8>,
    /// Compressed output of one compressor call, before it is cut into chunks.
    scratch: Vec<u8>,
    snappy: snap::raw::Encoder,
}

/// One Hadoop `CompressionOutputStream` over a growing output buffer. See the module doc.
pub struct Compressor {
    codec: Codec,
    state: State,
    /// Whether a unit has been started and not finished.
    open: bool,
}

impl Compressor {
    /// A compressor for `codec` with Hadoop's default settings.
    pub fn new(codec: Codec) -> io::Result<Self> {
        let state = match codec {
            Codec::Default | Codec::Deflate => {
                State::Zlib(Compress::new(Compression::new(ZLIB_LEVEL), true))
            }
            Codec::Gzip => State::Gzip {
                deflate: Compress::new(Compression::new(ZLIB_LEVEL), false),
                crc: Crc::new(),
            },
            Codec::Bzip2 => State::Bzip2(None),
            Codec::Zstd => State::Zstd(Box::new(ZstdEncoder::new(ZSTD_LEVEL)?)),
            Codec::Snappy | Codec::Lz4 => {
                let lz4 = codec == Codec::Lz4;
                State::Block(Box::new(BlockState {
                    lz4,
                    max_input: if lz4 { LZ4_MAX_INPUT } else { SNAPPY_MAX_INPUT },
                    pending: Vec::new(),
                    scratch: Vec::new(),
                    snappy: snap::raw::Encoder::new(),
                }))
            }
        };
        Ok(Compressor {
            codec,
            state,
            open: false,
        })
    }

    /// The codec this compressor writes.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Whether a unit is open: written to and not finished yet.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// One `write(data)` on Hadoop's stream: starts a unit if none is open, and appends to
    /// `out` whatever compressed bytes that produces (block codecs may hold data back).
    pub fn write(&mut self, data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        if !self.open {
            self.open = true;
            match &mut self.state {
                State::Gzip { .. } => out.extend_from_slice(&GZIP_HEADER),
                State::Bzip2(enc) => {
                    *enc = Some(bzip2::Compress::new(bzip2::Compression::best(), 30));
                }
                _ => {}
            }
        }
        match &mut self.state {
            State::Zlib(deflate) => deflate_run(deflate, data, out, FlushCompress::None),
            State::Gzip { deflate, crc } => {
                crc.update(data);
                deflate_run(deflate, data, out, FlushCompress::None)
            }
            State::Bzip2(enc) => match enc {
                Some(enc) => bzip2_run(enc, data, out, bzip2::Action::Run),
                None => Err(io::Error::other("bzip2 unit not started")),
            },
            State::Zstd(enc) => zstd_write(enc, data, out),
            State::Block(block) => block.write(data, out),
        }
    }

    /// Hadoop's `finish()`: ends the open unit, appending its remaining bytes to `out`.
    /// Does nothing when no unit is open (Flume never finishes twice).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        match &mut self.state {
            State::Zlib(deflate) => {
                deflate_run(deflate, &[], out, FlushCompress::Finish)?;
                deflate.reset();
            }
            State::Gzip { deflate, crc } => {
                deflate_run(deflate, &[], out, FlushCompress::Finish)?;
                out.extend_from_slice(&crc.sum().to_le_bytes());
                out.extend_from_slice(&crc.amount().to_le_bytes());
                deflate.reset();
                crc.reset();
            }
            State::Bzip2(enc) => {
                if let Some(mut enc) = enc.take() {
                    bzip2_run(&mut enc, &[], out, bzip2::Action::Finish)?;
                }
            }
            State::Zstd(enc) => {
                loop {
                    out.reserve(OUT_STEP);
                    let pos = out.len();
                    let mut output = OutBuffer::around_pos(out, pos);
                    if enc.finish(&mut output, false)? == 0 {
                        break;
                    }
                }
                enc.reinit()?;
            }
            State::Block(block) => block.finish(out)?,
        }
        Ok(())
    }

    /// Hadoop's `close()` on the stream: finishes an open unit; with bzip2 and no open unit
    /// it appends [`EMPTY_BZIP2_STREAM`], as Hadoop's pure-Java bzip2 stream does.
    pub fn close(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if self.open {
            self.finish(out)
        } else {
            if self.codec == Codec::Bzip2 {
                out.extend_from_slice(&EMPTY_BZIP2_STREAM);
            }
            Ok(())
        }
    }
}

/// Feeds `input` to a deflate stream, appending output to `out`; with `Finish`, runs to the
/// end of the stream.
fn deflate_run(
    deflate: &mut Compress,
    input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> io::Result<()> {
    let finishing = matches!(flush, FlushCompress::Finish);
    let mut consumed = 0;
    loop {
        out.reserve(OUT_STEP);
        let before = deflate.total_in();
        let status = deflate
            .compress_vec(&input[consumed..], out, flush)
            .map_err(io::Error::other)?;
        consumed += (deflate.total_in() - before) as usize;
        if (finishing && status == Status::StreamEnd) || (!finishing && consumed == input.len()) {
            return Ok(());
        }
    }
}

/// Feeds `input` to a bzip2 stream, appending output to `out`; with `Finish`, runs to the end
/// of the stream.
fn bzip2_run(
    enc: &mut bzip2::Compress,
    input: &[u8],
    out: &mut Vec<u8>,
    action: bzip2::Action,
) -> io::Result<()> {
    let finishing = matches!(action, bzip2::Action::Finish);
    let mut consumed = 0;
    loop {
        out.reserve(OUT_STEP);
        let before = enc.total_in();
        let status = enc
            .compress_vec(&input[consumed..], out, action)
            .map_err(io::Error::other)?;
        consumed += (enc.total_in() - before) as usize;
        if (finishing && status == bzip2::Status::StreamEnd)
            || (!finishing && consumed == input.len())
        {
            return Ok(());
        }
    }
}

/// Feeds `input` to the zstd stream, appending output to `out`.
fn zstd_write(enc: &mut ZstdEncoder<'static>, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let mut input = InBuffer::around(input);
    while input.pos < input.src.len() {
        out.reserve(OUT_STEP);
        let pos = out.len();
        let mut output = OutBuffer::around_pos(out, pos);
        enc.run(&mut input, &mut output)?;
    }
    Ok(())
}

impl BlockState {
    /// `BlockCompressorStream.write`, with the compressor's buffering.
    fn write(&mut self, data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if !self.pending.is_empty() && data.len() + self.pending.len() > self.max_input {
            self.finish(out)?;
        }
        if data.len() > self.max_input {
            out.extend_from_slice(&len_u32(data.len())?.to_be_bytes());
            for slice in data.chunks(self.max_input) {
                self.compress_chunks(slice, out)?;
            }
            return Ok(());
        }
        self.pending.extend_from_slice(data);
        Ok(())
    }

    /// `BlockCompressorStream.finish`: the buffered bytes as one block (length 0 and no chunk
    /// if nothing is buffered).
    fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        out.extend_from_slice(&len_u32(self.pending.len())?.to_be_bytes());
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            let result = self.compress_chunks(&pending, out);
            self.pending = pending;
            self.pending.clear();
            result?;
        }
        Ok(())
    }

    /// Compresses `input` in one compressor call and appends the output as length-prefixed
    /// chunks of at most the buffer size.
    fn compress_chunks(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let bound = if self.lz4 {
            lz4_flex::block::get_maximum_output_size(input.len())
        } else {
            snap::raw::max_compress_len(input.len())
        };
        self.scratch.clear();
        self.scratch.resize(bound, 0);
        let n = if self.lz4 {
            lz4_flex::block::compress_into(input, &mut self.scratch).map_err(io::Error::other)?
        } else {
            self.snappy
                .compress(input, &mut self.scratch)
                .map_err(io::Error::other)?
        };
        for chunk in self.scratch[..n].chunks(BLOCK_BUFFER_SIZE) {
            out.extend_from_slice(&len_u32(chunk.len())?.to_be_bytes());
            out.extend_from_slice(chunk);
        }
        Ok(())
    }
}

/// A length as Hadoop's 4-byte int; longer than `i32::MAX` is an error, as in Java.
fn len_u32(len: usize) -> io::Result<u32> {
    i32::try_from(len)
        .map(|v| v as u32)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length over 2^31-1"))
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
