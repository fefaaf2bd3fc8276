#!/usr/bin/env python3
"""Cost of monitoring on the hot path: seq -> memory -> null with the monitoring endpoint on,
once left alone and once polled (/metrics and /prometheus) every 100 ms; runs interleaved,
medians reported.

    python3 scripts/bench_metrics.py [--bin target/release/flumen] [--events N] [--runs R]

The figure is the source's time from "Source starting" to "Sequence source finished" (both
logged by the agent with microsecond timestamps): the put path, with the sink draining
concurrently. Prints a Markdown table for BENCHMARKS.md.
"""
import argparse
import datetime
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

CONFIG = """a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = {events}
a1.sources.r1.batchSize = 1000
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = null
a1.sinks.k1.batchSize = 1000
a1.sinks.k1.channel = c1
"""

STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")


def stamp(line):
    m = STAMP.match(line)
    if not m:
        return None
    text = m.group(1)
    head, frac = text.split(".")
    return datetime.datetime.fromisoformat(head).timestamp() + float("0." + frac)


def one_run(binary, events, polled):
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "a.conf")
        with open(conf, "w") as f:
            f.write(CONFIG.format(events=events))
        proc = subprocess.Popen(
            [binary, "agent", "-n", "a1", "-f", conf, "--metrics-addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        start = end = None
        port = None
        stop = threading.Event()
        polls = [0]

        def poll():
            while not stop.is_set():
                for path in ("/metrics", "/prometheus"):
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2).read()
                        polls[0] += 1
                    except OSError:
                        pass
                time.sleep(0.1)

        poller = None
        for line in proc.stdout:
            if "Monitoring listening" in line:
                port = int(line.split("address=")[1].split()[0].rsplit(":", 1)[1])
                if polled:
                    poller = threading.Thread(target=poll, daemon=True)
                    poller.start()
            if "Source starting" in line:
                start = stamp(line)
            if "Sequence source finished" in line:
                end = stamp(line)
                break
        stop.set()
        proc.terminate()
        proc.wait(timeout=30)
        if poller:
            poller.join(timeout=5)
        if start is None or end is None:
            raise SystemExit("the agent did not log start and finish")
        return end - start, polls[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default="target/release/flumen")
    p.add_argument("--events", type=int, default=20_000_000)
    p.add_argument("--runs", type=int, default=7)
    a = p.parse_args()
    quiet, polled, requests = [], [], 0
    for i in range(a.runs):
        for mode in (False, True) if i % 2 == 0 else (True, False):
            secs, n = one_run(a.bin, a.events, mode)
            (polled if mode else quiet).append(secs)
            requests += n
            print(f"run {i + 1} {'polled' if mode else 'quiet '}: {secs:.3f} s "
                  f"({a.events / secs:,.0f} events/s{f', {n} requests' if mode else ''})",
                  flush=True)
    mq, mp = statistics.median(quiet), statistics.median(polled)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print()
    print(f"- Date: {datetime.date.today()}; commit `{commit}`; {os.cpu_count()} CPUs; "
          f"command: `python3 scripts/bench_metrics.py --events {a.events} --runs {a.runs}`")
    print(f"- {a.events:,} events, seq -> memory -> null, batches of 1,000; "
          f"{a.runs} runs per mode, interleaved; {requests} monitoring requests in the polled runs")
    print()
    print("| mode | median s | events/s | runs (s) |")
    print("|---|---|---|---|")
    print(f"| endpoint on, not polled | {mq:.3f} | {a.events / mq:,.0f} | "
          f"{', '.join(f'{x:.3f}' for x in quiet)} |")
    print(f"| endpoint polled every 100 ms | {mp:.3f} | {a.events / mp:,.0f} | "
          f"{', '.join(f'{x:.3f}' for x in polled)} |")
    print(f"| difference | {(mp - mq) / mq:+.1%} | | |")


if __name__ == "__main__":
    main()
