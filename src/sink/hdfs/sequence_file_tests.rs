use std::path::Path;

use super::super::hadoop_test_support as hts;
use super::*;

type Batch = Vec<(i64, Vec<u8>)>;

const MARKER: [u8; 16] = *b"0123456789abcdef";

/// Small records of all kinds, values around the 8192-byte serializer buffer and the snappy
/// block limit, and enough bytes to pass SYNC_INTERVAL.
fn batches() -> Vec<Batch> {
    vec![
        vec![
            (1000, b"hello".to_vec()),
            (2000, b"world".to_vec()),
            (-5, Vec::new()),
            (i64::MAX, (0..=255u8).collect()),
            (i64::MIN, "h\u{e9}llo \u{2603}".as_bytes().to_vec()),
        ],
        (0..60)
            .map(|i| (i, hts::text_bytes(i as u64, 2000)))
            .collect(),
        vec![
            (7, hts::text_bytes(70, 8187)),
            (8, hts::text_bytes(80, 8188)),
            (9, hts::text_bytes(90, 8189)),
            (10, hts::text_bytes(100, 300_000)),
        ],
    ]
}

/// Over 1,000,000 bytes in one batch: the BLOCK writer emits a block mid-batch.
fn big_batch() -> Batch {
    (0..600)
        .map(|i| (i, hts::text_bytes(i as u64 + 9, 2000)))
        .collect()
}

/// Writes `batches` as Flume does: append per event, end_batch per batch, finish at close.
/// Returns the file and the file length after each batch end.
fn flume_file(mut w: SequenceFileWriter, batches: &[Batch]) -> (Vec<u8>, Vec<usize>) {
    let (mut out, mut cuts) = (Vec::new(), Vec::new());
    w.header(&mut out);
    for batch in batches {
        for (key, value) in batch {
            w.append(*key, value, &mut out).unwrap();
            assert_eq!(w.position(), out.len() as u64);
        }
        w.end_batch(&mut out).unwrap();
        cuts.push(out.len());
    }
    w.finish(&mut out).unwrap();
    assert_eq!(w.position(), out.len() as u64);
    (out, cuts)
}

fn writer(value: ValueFormat, compression: Option<(Codec, CompressionType)>) -> SequenceFileWriter {
    SequenceFileWriter::new(value, compression, MARKER).unwrap()
}

/// The `read-seq` lines expected for `batches`.
fn expected_records(batches: &[Batch]) -> Vec<String> {
    batches
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}\t{}", hts::hex(v)))
        .collect()
}

/// Hadoop's reading of `path`: header lines and record lines.
fn hadoop_read(hadoop: &Path, path: &str) -> (Vec<String>, Vec<String>) {
    let out = String::from_utf8(hts::hadoop_run(hadoop, &["seq", path])).unwrap();
    let lines: Vec<String> = out.lines().map(str::to_owned).collect();
    let (header, rest) = lines.split_at(5);
    let (records, tail) = rest.split_at(rest.len() - 1);
    assert_eq!(tail[0], format!("records {}", records.len()));
    (header.to_vec(), records.to_vec())
}

/// Writes `batches` with Hadoop's own SequenceFile writer, as Flume drives it.
fn hadoop_write(
    hadoop: &Path,
    dir: &Path,
    value: &str,
    comp: &str,
    codec: &str,
    batches: &[Batch],
) -> Vec<u8> {
    let files: Vec<String> = batches
        .iter()
        .enumerate()
        .map(|(i, batch)| {
            let text: String = batch
                .iter()
                .map(|(k, v)| format!("{k}\t{}\n", hts::hex(v)))
                .collect();
            hts::write_file(dir, &format!("in-{value}-{comp}-{i}"), text.as_bytes())
        })
        .collect();
    let out = dir.join(format!("hadoop-{value}-{comp}.seq"));
    let out_str = out.to_string_lossy().into_owned();
    let mut args = vec!["java", "write-seq", value, comp, codec, out_str.as_str()];
    args.extend(files.iter().map(String::as_str));
    hts::hadoop_run(hadoop, &args);
    std::fs::read(&out).unwrap()
}

/// The sync marker of a file with `header_len` header bytes.
fn marker_of(file: &[u8], header_len: usize) -> [u8; 16] {
    file[header_len - 16..header_len].try_into().unwrap()
}

/// Records per block of a BLOCK file.
fn block_shape(file: &[u8], header_len: usize) -> Vec<i64> {
    fn vint(data: &[u8], i: &mut usize) -> i64 {
        let first = data[*i] as i8;
        *i += 1;
        if first >= -112 {
            return i64::from(first);
        }
        let negative = first < -120;
        let n = if negative {
            -(first as i32 + 120)
        } else {
            -(first as i32 + 112)
        };
        let mut v: i64 = 0;
        for _ in 0..n {
            v = (v << 8) | i64::from(data[*i]);
            *i += 1;
        }
        if negative {
            !v
        } else {
            v
        }
    }
    let marker = marker_of(file, header_len);
    let (mut i, mut shape) = (header_len, Vec::new());
    while i < file.len() {
        assert_eq!(file[i..i + 4], SYNC_ESCAPE);
        assert_eq!(file[i + 4..i + 20], marker);
        i += 20;
        shape.push(vint(file, &mut i));
        for _ in 0..4 {
            let len = vint(file, &mut i) as usize;
            i += len;
        }
    }
    shape
}

#[test]
fn vint_matches_writable_utils() {
    let cases: [(i64, &[u8]); 10] = [
        (0, &[0x00]),
        (127, &[0x7f]),
        (-112, &[0x90]),
        (128, &[0x8f, 0x80]),
        (255, &[0x8f, 0xff]),
        (256, &[0x8e, 0x01, 0x00]),
        (-113, &[0x87, 0x70]),
        (1_000_000, &[0x8d, 0x0f, 0x42, 0x40]),
        (
            i64::MAX,
            &[0x88, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            i64::MIN,
            &[0x80, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
    ];
    for (v, bytes) in cases {
        let mut out = Vec::new();
        write_vint(v, &mut out);
        assert_eq!(out, bytes, "{v}");
    }
}

#[test]
fn header_layout() {
    let mut out = Vec::new();
    writer(ValueFormat::BytesWritable, None).header(&mut out);
    let mut expected = b"SEQ\x06\x21org.apache.hadoop.io.LongWritable".to_vec();
    expected.extend_from_slice(b"\x22org.apache.hadoop.io.BytesWritable\x00\x00\x00\x00\x00\x00");
    expected.extend_from_slice(&MARKER);
    assert_eq!(out, expected);
    let mut out = Vec::new();
    writer(
        ValueFormat::Text,
        Some((Codec::Snappy, CompressionType::Block)),
    )
    .header(&mut out);
    let mut expected = b"SEQ\x06\x21org.apache.hadoop.io.LongWritable".to_vec();
    expected.extend_from_slice(b"\x19org.apache.hadoop.io.Text\x01\x01");
    expected.extend_from_slice(b"\x29org.apache.hadoop.io.compress.SnappyCodec\x00\x00\x00\x00");
    expected.extend_from_slice(&MARKER);
    assert_eq!(out, expected);
}

#[test]
fn uncompressed_records_and_batch_sync() {
    let mut w = writer(ValueFormat::BytesWritable, None);
    let mut out = Vec::new();
    w.header(&mut out);
    let header_len = out.len();
    w.append(1000, b"hello", &mut out).unwrap();
    let mut record = vec![
        0, 0, 0, 17, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 5,
    ];
    record.extend_from_slice(b"hello");
    assert_eq!(out[header_len..], record);
    w.end_batch(&mut out).unwrap();
    assert_eq!(
        out[header_len + record.len()..header_len + record.len() + 4],
        SYNC_ESCAPE
    );
    assert_eq!(out[out.len() - 16..], MARKER);
    let len = out.len();
    w.end_batch(&mut out).unwrap();
    w.finish(&mut out).unwrap();
    assert_eq!(
        out.len(),
        len,
        "no second sync entry at the same position; close adds nothing"
    );
    let mut w = writer(ValueFormat::Text, None);
    let mut out = Vec::new();
    w.append(1, &[b'x'; 200], &mut out).unwrap();
    let record = &out[out.len() - 218..];
    assert_eq!(record[..4], 210u32.to_be_bytes());
    assert_eq!(record[16..18], [0x8f, 200], "Text length is a VInt");
}

#[test]
fn flume_key_parses_like_long_value_of() {
    assert_eq!(flume_key(Some("1700000000000"), 5), Ok(1_700_000_000_000));
    assert_eq!(flume_key(Some("-12"), 5), Ok(-12));
    assert_eq!(flume_key(Some("+12"), 5), Ok(12));
    assert_eq!(flume_key(None, 5), Ok(5));
    assert!(flume_key(Some(" 12"), 5).is_err());
    assert!(flume_key(Some("1.5"), 5).is_err());
    assert_ne!(new_sync_marker(), new_sync_marker());
}

#[test]
fn uncompressed_files_equal_hadoops_bytes() {
    let Some(hadoop) = hts::hadoop("SequenceFile NONE byte comparison") else {
        return;
    };
    let dir = hts::temp_dir("seq-exact");
    let batches = batches();
    for (format, name) in [
        (ValueFormat::BytesWritable, "bytes"),
        (ValueFormat::Text, "text"),
    ] {
        let theirs = hadoop_write(&hadoop, &dir, name, "NONE", "none", &batches);
        let mut header = Vec::new();
        writer(format, None).header(&mut header);
        let marker = marker_of(&theirs, header.len());
        let w = SequenceFileWriter::new(format, None, marker).unwrap();
        let (ours, _) = flume_file(w, &batches);
        assert!(
            ours == theirs,
            "{name}: {} vs {} bytes",
            ours.len(),
            theirs.len()
        );
        let syncs = ours
            .windows(20)
            .filter(|w| w[..4] == SYNC_ESCAPE && w[4..] == marker)
            .count();
        assert!(syncs > batches.len(), "{name}: periodic sync entries too");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hadoop_reads_every_variant() {
    let Some(hadoop) = hts::hadoop("SequenceFile reads") else {
        return;
    };
    let dir = hts::temp_dir("seq-read");
    let batches = batches();
    let expected = expected_records(&batches);
    let mut variants = vec![
        (ValueFormat::BytesWritable, None),
        (ValueFormat::Text, None),
    ];
    for codec in Codec::HADOOP_ORDER {
        for kind in [CompressionType::Record, CompressionType::Block] {
            variants.push((ValueFormat::BytesWritable, Some((codec, kind))));
        }
    }
    variants.push((
        ValueFormat::Text,
        Some((Codec::Snappy, CompressionType::Block)),
    ));
    variants.push((
        ValueFormat::Text,
        Some((Codec::Deflate, CompressionType::Record)),
    ));
    for (i, (format, compression)) in variants.into_iter().enumerate() {
        let (file, cuts) = flume_file(writer(format, compression), &batches);
        let path = hts::write_file(&dir, &format!("v{i}.seq"), &file);
        let label = format!("{format:?} {compression:?}");
        if let Some((Codec::Zstd, _)) = compression {
            let output = hts::hadoop_output(&hadoop, &["seq", &path]);
            assert!(!output.status.success(), "{label}");
            println!("SKIP: Hadoop read of {label}: zstd needs native libhadoop");
            continue;
        }
        let (header, records) = hadoop_read(&hadoop, &path);
        assert_eq!(
            header[1],
            format!("value-class {}", format.hadoop_class()),
            "{label}"
        );
        let kind = match compression {
            None => "NONE",
            Some((_, CompressionType::Record)) => "RECORD",
            Some((_, CompressionType::Block)) => "BLOCK",
        };
        assert_eq!(header[2], format!("compression {kind}"), "{label}");
        let codec = compression.map_or("none", |(c, _)| c.hadoop_class());
        assert_eq!(header[3], format!("codec {codec}"), "{label}");
        assert!(records == expected, "{label}: records differ");
        // A file cut right after the first batch end is complete.
        if i % 5 == 0 {
            let cut = hts::write_file(&dir, &format!("v{i}-cut.seq"), &file[..cuts[0]]);
            let (_, records) = hadoop_read(&hadoop, &cut);
            assert_eq!(records, expected[..batches[0].len()], "{label} cut");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn blocks_match_hadoops_own_writer() {
    let Some(hadoop) = hts::hadoop("SequenceFile BLOCK layout") else {
        return;
    };
    let dir = hts::temp_dir("seq-blocks");
    let mut batches = batches();
    batches.push(big_batch());
    let theirs = hadoop_write(
        &hadoop,
        &dir,
        "bytes",
        "BLOCK",
        Codec::Snappy.hadoop_class(),
        &batches,
    );
    let compression = Some((Codec::Snappy, CompressionType::Block));
    let mut header = Vec::new();
    writer(ValueFormat::BytesWritable, compression).header(&mut header);
    let ours_w = SequenceFileWriter::new(
        ValueFormat::BytesWritable,
        compression,
        marker_of(&theirs, header.len()),
    );
    let (ours, _) = flume_file(ours_w.unwrap(), &batches);
    assert_eq!(ours[..header.len()], theirs[..header.len()]);
    let shape = block_shape(&ours, header.len());
    assert_eq!(shape, block_shape(&theirs, header.len()));
    assert!(
        shape.len() > batches.len(),
        "a block cut mid-batch: {shape:?}"
    );
    let path = hts::write_file(&dir, "ours.seq", &ours);
    let (_, records) = hadoop_read(&hadoop, &path);
    assert!(records == expected_records(&batches));
    // `hadoop fs -text` prints key<TAB>value.toString() (BytesWritable: spaced hex).
    let small = hts::write_file(
        &dir,
        "small.seq",
        &flume_file(
            writer(ValueFormat::BytesWritable, compression),
            &batches[..1],
        )
        .0,
    );
    let text = String::from_utf8(hts::hadoop_run(&hadoop, &[&small])).unwrap();
    assert_eq!(text.lines().next(), Some("1000\t68 65 6c 6c 6f"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Per record of a RECORD snappy file: its key and the (uncompressed length, chunk count) of
/// each block of its value's unit.
fn record_units(file: &[u8], header_len: usize) -> Vec<(i64, Vec<(u32, usize)>)> {
    let int = |i: usize| u32::from_be_bytes(file[i..i + 4].try_into().unwrap());
    let (mut i, mut records) = (header_len, Vec::new());
    while i < file.len() {
        if file[i..i + 4] == SYNC_ESCAPE {
            i += 20;
            continue;
        }
        let (record_len, key_len) = (int(i) as usize, int(i + 4) as usize);
        let key = i64::from_be_bytes(file[i + 8..i + 16].try_into().unwrap());
        let (mut j, end) = (i + 8 + key_len, i + 8 + record_len);
        let mut blocks = Vec::new();
        while j < end {
            let ulen = int(j);
            j += 4;
            let (mut got, mut chunks) = (0, 0);
            while got < ulen as usize {
                let clen = int(j) as usize;
                got += snap::raw::decompress_len(&file[j + 4..j + 4 + clen]).unwrap();
                j += 4 + clen;
                chunks += 1;
            }
            blocks.push((ulen, chunks));
        }
        records.push((key, blocks));
        i = end;
    }
    records
}

#[test]
fn record_units_match_hadoops_own_writer() {
    let Some(hadoop) = hts::hadoop("SequenceFile RECORD layout") else {
        return;
    };
    let dir = hts::temp_dir("seq-record");
    let batches = batches();
    let class = Codec::Snappy.hadoop_class();
    let theirs = hadoop_write(&hadoop, &dir, "bytes", "RECORD", class, &batches);
    let compression = Some((Codec::Snappy, CompressionType::Record));
    let mut header = Vec::new();
    writer(ValueFormat::BytesWritable, compression).header(&mut header);
    let marker = marker_of(&theirs, header.len());
    let w = SequenceFileWriter::new(ValueFormat::BytesWritable, compression, marker).unwrap();
    let (ours, _) = flume_file(w, &batches);
    let units = record_units(&ours, header.len());
    assert_eq!(units, record_units(&theirs, header.len()));
    // The 300000-byte value: its 4-byte prefix alone, then a two-chunk block, then empty.
    assert_eq!(units.last().unwrap().1, [(4, 1), (300_000, 2), (0, 0)]);
    let _ = std::fs::remove_dir_all(&dir);
}
