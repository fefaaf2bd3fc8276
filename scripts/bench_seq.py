#!/usr/bin/env python3
"""seq -> memory -> null throughput benchmark for Flumen.

Runs the agent on a generated config, times from process start to the source's
"Sequence source finished." log line (the channel holds at most `capacity` events, so the sink
is never further behind than that), stops the agent with SIGTERM, checks that the drain report
says every event was taken, and prints one JSON line: events, seconds, events/s, CPU seconds.

    scripts/bench_seq.py --flumen target/release/flumen [--events 20000000] [--runs 5]
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time

CONFIG = """a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = {events}
a1.sources.r1.batchSize = {batch}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = {capacity}
a1.channels.c1.transactionCapacity = {batch}
a1.sinks.k1.type = null
a1.sinks.k1.batchSize = {batch}
a1.sinks.k1.channel = c1
"""


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def one_run(flumen, events, batch, capacity):
    with tempfile.TemporaryDirectory(prefix="flumen-bench-seq-") as d:
        conf = os.path.join(d, "seq.properties")
        with open(conf, "w") as f:
            f.write(CONFIG.format(events=events, batch=batch, capacity=capacity))
        start = time.monotonic()
        proc = subprocess.Popen([flumen, "agent", "-n", "a1", "-f", conf],
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        elapsed = cpu = None
        for line in proc.stderr:
            if "Sequence source finished." in line:
                elapsed = time.monotonic() - start
                cpu = cpu_seconds(proc.pid)
                proc.send_signal(signal.SIGTERM)
            if "Channel drained." in line and f"taken={events}" not in line:
                raise SystemExit(f"drain report does not show {events} taken: {line}")
        proc.wait()
        if elapsed is None or proc.returncode != 0:
            raise SystemExit(f"run failed (exit {proc.returncode})")
        return elapsed, cpu


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--flumen", required=True)
    p.add_argument("--events", type=int, default=20_000_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--capacity", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    runs = [one_run(a.flumen, a.events, a.batch, a.capacity) for _ in range(a.runs)]
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    print(json.dumps({"workload": "seq-memory-null", "events": a.events, "batch": a.batch,
                      "runs": a.runs, "median_s": round(wall, 3),
                      "events_per_s": round(a.events / wall), "cpu_s": round(cpu, 2)}))


if __name__ == "__main__":
    main()
