#!/usr/bin/env python3
"""An independent Kafka peer for Flumen's Kafka tests: librdkafka through Python's
confluent-kafka for the wire, Python's `avro` package for Flume's AvroFlumeEvent datums, and
Kafka's murmur2 partitioner written out from the Java client's definition.

  consume BOOTSTRAP TOPIC --count N [--avro] [--partitions P] [--out FILE]
      Reads N records from the start of TOPIC (a fresh group), writes one JSON line per
      record: partition, offset, key, timestamp, record headers, and either the decoded
      AvroFlumeEvent (headers, body) or the raw body; with --partitions, the partition
      Java's default partitioner gives the key.
  selftest
      Checks murmur2 against the Java client's published test vectors.
  produce BOOTSTRAP TOPIC --count N [--avro] [--garbage K]
      Writes N records ("py-<i>", headers seq=<i> and src=python when --avro), then K
      records that are not AvroFlumeEvent datums.
"""

import argparse
import io
import json
import sys
import time
import uuid

import avro.io
import avro.schema
from confluent_kafka import Consumer, Producer

SCHEMA = avro.schema.parse(json.dumps({
    "type": "record",
    "name": "AvroFlumeEvent",
    "namespace": "org.apache.flume.source.avro",
    "fields": [
        {"name": "headers", "type": {"type": "map", "values": "string"}},
        {"name": "body", "type": "bytes"},
    ],
}))

MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2 (32-bit, seed 0x9747b28c), as a signed Java int."""
    length = len(data)
    seed, m, r = 0x9747B28C, 0x5BD1E995, 24
    h = (seed ^ length) & MASK
    for i in range(length // 4):
        k = int.from_bytes(data[i * 4:i * 4 + 4], "little")
        k = (k * m) & MASK
        k ^= k >> r
        k = (k * m) & MASK
        h = (h * m) & MASK
        h ^= k
    tail = length & ~3
    rest = length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & MASK
    h ^= h >> 13
    h = (h * m) & MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    """DefaultPartitioner for a keyed record: toPositive(murmur2(key)) % partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def decode(value: bytes):
    reader = avro.io.DatumReader(SCHEMA)
    buf = io.BytesIO(value)
    datum = reader.read(avro.io.BinaryDecoder(buf))
    if buf.tell() != len(value):
        raise ValueError("bytes after the datum")
    return datum


def encode(headers, body: bytes) -> bytes:
    out = io.BytesIO()
    avro.io.DatumWriter(SCHEMA).write({"headers": headers, "body": body}, avro.io.BinaryEncoder(out))
    return out.getvalue()


def consume(args):
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "kafka-peer-" + uuid.uuid4().hex,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([args.topic])
    out = open(args.out, "w") if args.out else sys.stdout
    seen, deadline = 0, time.time() + args.timeout
    while seen < args.count and time.time() < deadline:
        for msg in consumer.consume(num_messages=1000, timeout=1.0):
            if msg.error():
                continue
            key = msg.key()
            line = {
                "partition": msg.partition(),
                "offset": msg.offset(),
                "key": key.decode() if key is not None else None,
                "timestamp": msg.timestamp()[1],
                "record_headers": {k: v.decode() for k, v in (msg.headers() or [])},
            }
            if args.avro:
                datum = decode(msg.value())
                line["headers"] = datum["headers"]
                line["body"] = datum["body"].decode("utf-8", "replace")
            else:
                line["body"] = msg.value().decode("utf-8", "replace")
            if args.partitions and key is not None:
                line["java_partition"] = java_partition(key, args.partitions)
            out.write(json.dumps(line) + "\n")
            seen += 1
    consumer.close()
    if out is not sys.stdout:
        out.close()
    print(json.dumps({"consumed": seen}), file=sys.stderr)
    return 0 if seen >= args.count else 1


def produce(args):
    producer = Producer({"bootstrap.servers": args.bootstrap, "acks": "all"})
    failures = []

    def report(err, _msg):
        if err is not None:
            failures.append(str(err))

    for i in range(args.count):
        body = f"py-{i}".encode()
        value = encode({"seq": str(i), "src": "python"}, body) if args.avro else body
        producer.produce(args.topic, value=value, on_delivery=report)
        producer.poll(0)
    for i in range(args.garbage):
        producer.produce(args.topic, value=f"\xff\xfe not avro {i}".encode(), on_delivery=report)
    producer.flush(30)
    print(json.dumps({"produced": args.count + args.garbage, "failures": failures}))
    return 0 if not failures else 1


# Kafka's own test vectors for Utils.murmur2 (UtilsTest.testMurmur2).
VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


def selftest(_args):
    wrong = [(k, murmur2(k), want) for k, want in VECTORS if murmur2(k) != want]
    print(json.dumps({"vectors": len(VECTORS), "wrong": [str(w) for w in wrong]}))
    return 1 if wrong else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("consume")
    c.add_argument("bootstrap")
    c.add_argument("topic")
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--avro", action="store_true")
    c.add_argument("--partitions", type=int, default=0)
    c.add_argument("--out")
    c.add_argument("--timeout", type=float, default=120)
    w = sub.add_parser("produce")
    w.add_argument("bootstrap")
    w.add_argument("topic")
    w.add_argument("--count", type=int, required=True)
    w.add_argument("--avro", action="store_true")
    w.add_argument("--garbage", type=int, default=0)
    sub.add_parser("selftest")
    args = p.parse_args()
    if args.cmd == "selftest":
        return selftest(args)
    if args.cmd == "consume":
        return consume(args)
    return produce(args)


if __name__ == "__main__":
    sys.exit(main())
