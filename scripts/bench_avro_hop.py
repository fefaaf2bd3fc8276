#!/usr/bin/env python3
"""One Avro RPC hop against the TCP-only figure, in one run: W2's input (256-byte lines over
one TCP connection to a netcat source) through

  tcp:  netcat -> memory -> file_roll                                   (W2, one agent)
  hop:  netcat -> memory -> avro sink (batch B) => avro source -> memory -> file_roll

for each batch size B (and each avro sink `concurrency` C), runs interleaved; prints a Markdown table with events/s, the hop's
share of the TCP figure, and CPU seconds per million events of each agent.

    python3 scripts/bench_avro_hop.py --flumen target/release/flumen [--lines N] [--runs R]
        [--batches 100,1000]
"""
import argparse
import datetime
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import free_port, wait_port

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS



def make_input(path, lines):
    if os.path.exists(path):
        return
    with open(path, "wb") as f:
        for i in range(lines):
            f.write(b"%010d " % i + b"x" * 244 + b"\n")


def start(flumen, name, config, workdir):
    path = os.path.join(workdir, f"{name}.properties")
    with open(path, "w") as f:
        f.write(config)
    log = open(os.path.join(workdir, f"{name}.log"), "w")
    return subprocess.Popen([flumen, "agent", "-n", name, "-f", path], stdout=log, stderr=log)



def out_bytes(outdir):
    total = 0
    for root, _, files in os.walk(outdir):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def memory(name):
    return (f"{name}.channels.c1.type = memory\n{name}.channels.c1.capacity = 100000\n"
            f"{name}.channels.c1.transactionCapacity = 10000\n")


def file_roll(name, outdir):
    return (f"{name}.sinks.k1.type = file_roll\n{name}.sinks.k1.channel = c1\n"
            f"{name}.sinks.k1.sink.directory = {outdir}\n{name}.sinks.k1.sink.rollInterval = 0\n"
            f"{name}.sinks.k1.sink.batchSize = 1000\n")


def netcat(name, port):
    return (f"{name}.sources = r1\n{name}.channels = c1\n{name}.sinks = k1\n"
            f"{name}.sources.r1.type = netcat\n{name}.sources.r1.channels = c1\n"
            f"{name}.sources.r1.bind = 127.0.0.1\n{name}.sources.r1.port = {port}\n"
            f"{name}.sources.r1.ack-every-event = false\n{name}.sources.r1.max-line-length = 512\n")


def one_run(flumen, input_path, lines, variant):
    batch, concurrency = variant if variant else (None, 1)
    work = tempfile.mkdtemp(prefix="avro-hop-", dir=os.path.dirname(input_path))
    outdir = os.path.join(work, "out")
    os.mkdir(outdir)
    in_port = free_port()
    agents = []
    try:
        if batch is None:
            agents.append(start(flumen, "a1", netcat("a1", in_port) + memory("a1")
                                + file_roll("a1", outdir), work))
        else:
            hop_port = free_port()
            collector = (f"c.sources = r1\nc.channels = c1\nc.sinks = k1\n"
                         f"c.sources.r1.type = avro\nc.sources.r1.channels = c1\n"
                         f"c.sources.r1.bind = 127.0.0.1\nc.sources.r1.port = {hop_port}\n"
                         + memory("c") + file_roll("c", outdir))
            agents.append(start(flumen, "c", collector, work))
            wait_port(hop_port)
            edge = (netcat("a1", in_port) + memory("a1")
                    + f"a1.sinks.k1.type = avro\na1.sinks.k1.channel = c1\n"
                    f"a1.sinks.k1.hostname = 127.0.0.1\na1.sinks.k1.port = {hop_port}\n"
                    f"a1.sinks.k1.batch-size = {batch}\n"
                    f"a1.sinks.k1.concurrency = {concurrency}\n")
            agents.insert(0, start(flumen, "a1", edge, work))
        wait_port(in_port)
        time.sleep(1)
        cpu0 = [cpu_seconds(a.pid) for a in agents]
        want = os.path.getsize(input_path)
        sock = socket.create_connection(("127.0.0.1", in_port))
        t0 = time.monotonic()
        sender = threading.Thread(target=lambda: (sock.sendall(open(input_path, "rb").read()),))
        sender.start()
        deadline = t0 + 300
        while out_bytes(outdir) < want:
            if time.monotonic() > deadline:
                raise SystemExit("timed out")
            time.sleep(0.02)
        wall = time.monotonic() - t0
        cpu = [cpu_seconds(a.pid) - c for a, c in zip(agents, cpu0)]
        sender.join()
        sock.close()
        return wall, cpu
    finally:
        for a in agents:
            a.terminate()
        for a in agents:
            try:
                a.wait(timeout=20)
            except subprocess.TimeoutExpired:
                a.kill()
        shutil.rmtree(work, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--flumen", default="target/release/flumen")
    p.add_argument("--lines", type=int, default=2_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batches", default="100,1000")
    p.add_argument("--concurrency", default="1,4")
    p.add_argument("--data", default=os.path.expanduser("~/.cache/flumen-bench"))
    a = p.parse_args()
    os.makedirs(a.data, exist_ok=True)
    input_path = os.path.join(a.data, f"hop-input-{a.lines}.log")
    make_input(input_path, a.lines)
    variants = [None] + [(int(b), int(c)) for b in a.batches.split(",")
                         for c in a.concurrency.split(",")]
    results = {v: [] for v in variants}
    for r in range(a.runs):
        for v in (variants if r % 2 == 0 else list(reversed(variants))):
            wall, cpu = one_run(a.flumen, input_path, a.lines, v)
            results[v].append((wall, cpu))
            label = "tcp" if v is None else f"hop batch {v[0]} concurrency {v[1]}"
            print(f"run {r + 1} {label}: {wall:.2f} s ({a.lines / wall:,.0f} events/s), "
                  f"CPU {', '.join(f'{c:.2f}' for c in cpu)} s", flush=True)
    tcp = statistics.median(w for w, _ in results[None])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print()
    print(f"- Date: {datetime.date.today()}; commit `{commit}`; {os.cpu_count()} CPUs; "
          f"{a.lines:,} lines of 256 bytes; medians of {a.runs} interleaved runs; command: "
          f"`python3 scripts/bench_avro_hop.py --flumen {a.flumen} --lines {a.lines} "
          f"--runs {a.runs} --batches {a.batches} --concurrency {a.concurrency}`")
    print()
    print("| path | median s | events/s | vs tcp | CPU s per M events (edge / collector) |")
    print("|---|---|---|---|---|")
    for v in variants:
        wall = statistics.median(w for w, _ in results[v])
        cpus = [statistics.median(c[i] for _, c in results[v]) * 1e6 / a.lines
                for i in range(len(results[v][0][1]))]
        label = ("tcp (W2: netcat -> memory -> file_roll)" if v is None
                 else f"avro hop, batch {v[0]}, concurrency {v[1]}")
        cpu_text = " / ".join(f"{c:.2f}" for c in cpus)
        print(f"| {label} | {wall:.2f} | {a.lines / wall:,.0f} | {tcp / wall:.0%} | {cpu_text} |")


if __name__ == "__main__":
    sys.exit(main())
