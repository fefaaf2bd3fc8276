// Test helper: reads and writes files with Hadoop's own classes, so the Rust writers in this
// crate can be checked against Hadoop. Not part of the shipped module.
//
// Usage (classpath: Hadoop client jars + a dir with an empty core-site.xml):
//   read-seq FILE            print the SequenceFile header, then "key<TAB>hex(value bytes)" per record
//   read-codec FILE [CLASS]  decompress FILE with the codec for its extension (or CLASS) to stdout
//   write-stream CLASS OUT BATCH...
//                            write OUT as Flume's HDFSCompressedDataStream does: each BATCH file
//                            holds events, one per line; per event write(body) then write('\n'),
//                            finish() at each batch end and resetState() before the next batch
//   write-seq VALUE COMP CLASS OUT BATCH...
//                            write OUT as Flume's HDFSSequenceFile does (VALUE: bytes|text,
//                            COMP: NONE|RECORD|BLOCK, CLASS: codec class or "none"); each BATCH
//                            line is "key<TAB>hex(value)"; writer.sync() at each batch end, close() last
//   codecs                   list the codec classes Hadoop registers (CompressionCodecFactory)

import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.*;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.*;
import org.apache.hadoop.io.*;
import org.apache.hadoop.io.compress.*;
import org.apache.hadoop.util.ReflectionUtils;

public class HadoopInterop {
  public static void main(String[] args) throws Exception {
    Configuration conf = new Configuration();
    switch (args[0]) {
      case "read-seq": readSeq(conf, args[1]); break;
      case "read-codec": readCodec(conf, args); break;
      case "write-stream": writeStream(conf, args); break;
      case "write-seq": writeSeq(conf, args); break;
      case "codecs":
        for (Class<?> c : CompressionCodecFactory.getCodecClasses(conf)) {
          System.out.println(c.getName());
        }
        break;
      default: throw new IllegalArgumentException("unknown mode " + args[0]);
    }
  }

  static String hex(byte[] b, int len) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < len; i++) sb.append(String.format("%02x", b[i] & 0xff));
    return sb.toString();
  }

  static void readSeq(Configuration conf, String file) throws IOException {
    Path p = new Path(new File(file).getAbsoluteFile().toURI());
    try (SequenceFile.Reader r = new SequenceFile.Reader(conf, SequenceFile.Reader.file(p))) {
      PrintStream o = System.out;
      o.println("key-class " + r.getKeyClassName());
      o.println("value-class " + r.getValueClassName());
      o.println("compression " + r.getCompressionType());
      CompressionCodec c = r.getCompressionCodec();
      o.println("codec " + (c == null ? "none" : c.getClass().getName()));
      o.println("metadata-entries " + r.getMetadata().getMetadata().size());
      Writable k = (Writable) ReflectionUtils.newInstance(r.getKeyClass(), conf);
      Writable v = (Writable) ReflectionUtils.newInstance(r.getValueClass(), conf);
      long n = 0;
      while (r.next(k, v)) {
        String val;
        if (v instanceof BytesWritable) {
          BytesWritable bw = (BytesWritable) v;
          val = hex(bw.getBytes(), bw.getLength());
        } else if (v instanceof Text) {
          Text t = (Text) v;
          val = hex(t.getBytes(), t.getLength());
        } else {
          val = v.toString();
        }
        o.println(k + "\t" + val);
        n++;
      }
      o.println("records " + n);
    }
  }

  static void readCodec(Configuration conf, String[] args) throws Exception {
    CompressionCodec codec;
    if (args.length > 2) {
      codec = (CompressionCodec) ReflectionUtils.newInstance(conf.getClassByName(args[2]), conf);
    } else {
      codec = new CompressionCodecFactory(conf).getCodec(new Path(args[1]));
      if (codec == null) throw new IOException("no codec for " + args[1]);
    }
    Decompressor d = CodecPool.getDecompressor(codec);
    try (InputStream in = codec.createInputStream(new FileInputStream(args[1]), d)) {
      byte[] buf = new byte[65536];
      int n;
      while ((n = in.read(buf)) > 0) System.out.write(buf, 0, n);
    }
    System.out.flush();
  }

  static byte[] unhex(String s) {
    byte[] b = new byte[s.length() / 2];
    for (int i = 0; i < b.length; i++) b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
    return b;
  }

  static CompressionCodec codec(Configuration conf, String cls) throws Exception {
    return (CompressionCodec) ReflectionUtils.newInstance(conf.getClassByName(cls), conf);
  }

  static List<byte[]> lines(String file) throws IOException {
    byte[] all = Files.readAllBytes(Paths.get(file));
    List<byte[]> out = new ArrayList<>();
    int start = 0;
    for (int i = 0; i < all.length; i++) {
      if (all[i] == '\n') {
        out.add(Arrays.copyOfRange(all, start, i));
        start = i + 1;
      }
    }
    if (start < all.length) out.add(Arrays.copyOfRange(all, start, all.length));
    return out;
  }

  static void writeStream(Configuration conf, String[] args) throws Exception {
    CompressionCodec codec = codec(conf, args[1]);
    Compressor compressor = CodecPool.getCompressor(codec, conf);
    System.err.println("compressor " + (compressor == null ? "null" : compressor.getClass().getName()));
    try (FileOutputStream fsOut = new FileOutputStream(args[2])) {
      CompressionOutputStream cmpOut = codec.createOutputStream(fsOut, compressor);
      System.err.println("stream " + cmpOut.getClass().getName());
      boolean finished = false;
      for (int b = 3; b < args.length; b++) {
        for (byte[] body : lines(args[b])) {
          if (finished) {
            cmpOut.resetState();
            finished = false;
          }
          cmpOut.write(body);
          cmpOut.write('\n');
        }
        if (!finished) {
          cmpOut.finish();
          finished = true;
        }
        fsOut.flush();
      }
      cmpOut.close();
      if (compressor != null) CodecPool.returnCompressor(compressor);
    }
  }

  static void writeSeq(Configuration conf, String[] args) throws Exception {
    boolean text = args[1].equals("text");
    SequenceFile.CompressionType ct = SequenceFile.CompressionType.valueOf(args[2]);
    CompressionCodec codec = args[3].equals("none") ? null : codec(conf, args[3]);
    Path p = new Path(new File(args[4]).getAbsoluteFile().toURI());
    FileSystem raw = ((LocalFileSystem) p.getFileSystem(conf)).getRaw();
    try (FSDataOutputStream out = raw.create(p)) {
      SequenceFile.Writer w = SequenceFile.createWriter(conf, out, LongWritable.class,
          text ? Text.class : BytesWritable.class, ct, codec);
      for (int b = 5; b < args.length; b++) {
        for (byte[] line : lines(args[b])) {
          int tab = 0;
          while (line[tab] != '\t') tab++;
          long key = Long.parseLong(new String(line, 0, tab, StandardCharsets.UTF_8));
          byte[] body = unhex(new String(line, tab + 1, line.length - tab - 1, StandardCharsets.US_ASCII));
          Writable v;
          if (text) {
            Text t = new Text();
            t.set(body, 0, body.length);
            v = t;
          } else {
            BytesWritable bw = new BytesWritable();
            bw.set(body, 0, body.length);
            v = bw;
          }
          w.append(new LongWritable(key), v);
        }
        w.sync();
        out.hflush();
      }
      w.close();
    }
  }
}
