#!/usr/bin/env python3
"""Events/s into and out of a local Kafka-protocol broker (tansu, sqlite storage) at 256-byte
events: Flumen's kafka sink and kafka source next to a plain librdkafka client (Python's
confluent-kafka) doing the same against the same broker, in the same run.

  into:  plain   confluent-kafka Producer: produce N records, flush (acks=1, as the sink)
         flumen  256-byte lines over TCP -> netcat -> memory -> kafka sink (flumeBatchSize B,
                 concurrency C); timed until the topic's high watermarks add up to N
  out:   plain   confluent-kafka Consumer (fresh group, from the earliest offset): first
                 record to the N-th
         flumen  kafka source (batchSize 1000) -> memory -> null: from the first accepted batch
                 (EventAcceptedCount > 0) to N, scaled to N records
  Start-up and the consumer group join are left out of both "out" figures.

    python3 scripts/bench_kafka.py --flumen target/release/flumen --tansu $(which tansu)
        [--events N] [--runs R]
"""
import argparse
import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from benchlib import free_port, wait_port




class Broker:
    def __init__(self, tansu, workdir):
        self.tansu, self.dir, self.port = tansu, workdir, free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        self.url = url
        self.proc = subprocess.Popen(
            [tansu, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "sqlite://tansu.db"],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "tansu.log"), "w"))
        wait_port(self.port)

    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def create(self, topic, partitions):
        subprocess.run([self.tansu, "topic", "create", topic, "--partitions", str(partitions),
                        "--broker", self.url], check=True, stdout=subprocess.DEVNULL)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def high_watermarks(consumer, topic, partitions):
    return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
               for p in range(partitions))


def plain_produce(bootstrap, topic, n, payload):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 5})
    t0 = time.monotonic()
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=payload)
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
    p.flush(120)
    return time.monotonic() - t0


def plain_consume(bootstrap, topic, n):
    """Seconds from the first record to the last (start-up and the group join excluded)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "plain-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    t0 = time.monotonic()
    c.subscribe([topic])
    seen, first = 0, None
    while seen < n and time.monotonic() - t0 < 300:
        for m in c.consume(num_messages=1000, timeout=1.0):
            if not m.error():
                if first is None:
                    first = time.monotonic()
                seen += 1
    wall = time.monotonic() - first
    c.close()
    return wall


def start_agent(flumen, name, config, workdir, metrics_port=None):
    path = os.path.join(workdir, f"{name}-{uuid.uuid4().hex[:6]}.properties")
    with open(path, "w") as f:
        f.write(config)
    args = [flumen, "agent", "-n", name, "-f", path]
    if metrics_port:
        args += ["--metrics-addr", f"127.0.0.1:{metrics_port}"]
    log = open(path + ".log", "w")
    return subprocess.Popen(args, stdout=log, stderr=log)


def stop_agent(agent):
    agent.terminate()
    try:
        agent.wait(timeout=30)
    except subprocess.TimeoutExpired:
        agent.kill()


def flumen_produce(flumen, broker, topic, partitions, input_path, n, batch, concurrency, work,
                   extra=""):
    port = free_port()
    config = (
        "a.sources = r1\na.channels = c1\na.sinks = k1\n"
        "a.sources.r1.type = netcat\na.sources.r1.channels = c1\n"
        f"a.sources.r1.bind = 127.0.0.1\na.sources.r1.port = {port}\n"
        "a.sources.r1.ack-every-event = false\na.sources.r1.max-line-length = 512\n"
        "a.channels.c1.type = memory\na.channels.c1.capacity = 100000\n"
        "a.channels.c1.transactionCapacity = 10000\n"
        "a.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\na.sinks.k1.channel = c1\n"
        f"a.sinks.k1.kafka.bootstrap.servers = {broker.bootstrap()}\n"
        f"a.sinks.k1.kafka.topic = {topic}\na.sinks.k1.flumeBatchSize = {batch}\n"
        f"a.sinks.k1.concurrency = {concurrency}\n" + extra)
    agent = start_agent(flumen, "a", config, work)
    watcher = Consumer({"bootstrap.servers": broker.bootstrap(), "group.id": "wm-" + uuid.uuid4().hex})
    try:
        wait_port(port)
        time.sleep(1)
        sock = socket.create_connection(("127.0.0.1", port))
        t0 = time.monotonic()
        sender = threading.Thread(target=lambda: sock.sendall(open(input_path, "rb").read()))
        sender.start()
        while high_watermarks(watcher, topic, partitions) < n:
            if time.monotonic() - t0 > 300:
                raise SystemExit("flumen produce timed out")
            time.sleep(0.05)
        wall = time.monotonic() - t0
        sender.join()
        sock.close()
        return wall
    finally:
        watcher.close()
        stop_agent(agent)


def accepted(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return int(json.load(r)["SOURCE.r1"]["EventAcceptedCount"])
    except (OSError, KeyError, ValueError):
        return 0


def flumen_consume(flumen, broker, topic, n, work):
    mport = free_port()
    config = (
        "r.sources = r1\nr.channels = c1\nr.sinks = k1\n"
        "r.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\nr.sources.r1.channels = c1\n"
        f"r.sources.r1.kafka.bootstrap.servers = {broker.bootstrap()}\n"
        f"r.sources.r1.kafka.topics = {topic}\n"
        f"r.sources.r1.kafka.consumer.group.id = flumen-{uuid.uuid4().hex}\n"
        "r.sources.r1.kafka.consumer.auto.offset.reset = earliest\n"
        "r.sources.r1.batchSize = 1000\nr.sources.r1.batchDurationMillis = 100\n"
        "r.channels.c1.type = memory\nr.channels.c1.capacity = 100000\n"
        "r.channels.c1.transactionCapacity = 1000\n"
        "r.sinks.k1.type = null\nr.sinks.k1.channel = c1\nr.sinks.k1.batchSize = 1000\n")
    t0 = time.monotonic()
    agent = start_agent(flumen, "r", config, work, mport)
    try:
        # From the first batch accepted to the last, as for the plain consumer (the first
        # batch's own time is not seen here: the plain consumer's first record is).
        first = None
        while True:
            got = accepted(mport)
            if got and first is None:
                first = (time.monotonic(), got)
            if got >= n:
                break
            if time.monotonic() - t0 > 300:
                raise SystemExit("flumen consume timed out")
            time.sleep(0.01)
        # Scale to all n records from the rate measured after the first batch.
        at, done = first
        return (time.monotonic() - at) * n / max(n - done, 1)
    finally:
        stop_agent(agent)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--flumen", default="target/release/flumen")
    p.add_argument("--tansu", default=shutil.which("tansu") or "tansu")
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--sink", default="1000x1,1000x4", help="flumeBatchSize x concurrency [x linger.ms], ...")
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-kafka-")
    payload = b"x" * 256
    input_path = os.path.join(work, "input.log")
    with open(input_path, "wb") as f:
        for i in range(a.events):
            f.write(b"%010d " % i + b"x" * 244 + b"\n")
    sinks = [tuple(int(x) for x in s.split("x")) for s in a.sink.split(",")]
    sinks = [s if len(s) == 3 else (s[0], s[1], 0) for s in sinks]
    into = {"plain": [], **{s: [] for s in sinks}}
    out = {"plain": [], "flumen": []}
    broker = Broker(a.tansu, work)
    try:
        for r in range(a.runs):
            topic = f"plain{r}"
            broker.create(topic, a.partitions)
            into["plain"].append(plain_produce(broker.bootstrap(), topic, a.events, payload))
            for s in sinks:
                t = f"flumen{r}-{s[0]}-{s[1]}-{s[2]}"
                broker.create(t, a.partitions)
                linger = f"a.sinks.k1.kafka.producer.linger.ms = {s[2]}\n" if s[2] else ""
                into[s].append(flumen_produce(a.flumen, broker, t, a.partitions, input_path,
                                              a.events, s[0], s[1], work, linger))
            # Out of the broker: both read the plain producer's topic, in alternating order.
            readers = [("plain", lambda: plain_consume(broker.bootstrap(), topic, a.events)),
                       ("flumen", lambda: flumen_consume(a.flumen, broker, topic, a.events, work))]
            for name, run in (readers if r % 2 == 0 else reversed(readers)):
                out[name].append(run())
            print(f"run {r + 1}: " + ", ".join(
                f"{k}: {v[-1]:.2f} s" for k, v in list(into.items()) + list(out.items())), flush=True)
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    med = {k: statistics.median(v) for k, v in list(into.items())}
    print()
    print(f"- Date: {datetime.date.today()}; commit `{commit}`; {os.cpu_count()} CPUs; "
          f"{a.events:,} events of 256 bytes; {a.partitions} partitions; tansu (sqlite) on "
          f"127.0.0.1; medians of {a.runs} runs; command: `python3 scripts/bench_kafka.py "
          f"--events {a.events} --runs {a.runs} --sink {a.sink}`")
    print()
    print("| direction | client | median s | events/s | vs plain client |")
    print("|---|---|---|---|---|")
    plain_in = med["plain"]
    print(f"| into the broker | confluent-kafka Producer | {plain_in:.2f} | "
          f"{a.events / plain_in:,.0f} | 100% |")
    for s in sinks:
        linger = f", linger.ms {s[2]}" if s[2] else ""
        print(f"| into the broker | Flumen netcat → memory → kafka sink (flumeBatchSize {s[0]}, "
              f"concurrency {s[1]}{linger}) | {med[s]:.2f} | {a.events / med[s]:,.0f} | {plain_in / med[s]:.0%} |")
    po, fo = statistics.median(out["plain"]), statistics.median(out["flumen"])
    print(f"| out of the broker | confluent-kafka Consumer | {po:.2f} | {a.events / po:,.0f} | 100% |")
    print(f"| out of the broker | Flumen kafka source → memory → null | {fo:.2f} | "
          f"{a.events / fo:,.0f} | {po / fo:.0%} |")


if __name__ == "__main__":
    sys.exit(main())
