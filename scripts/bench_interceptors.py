#!/usr/bin/env python3
"""Interceptor-chain cost benchmark for Flumen.

netcat -> memory -> file_roll with 256-byte lines (the shared W2 input), once with no
interceptors and once with a chain of four common ones: timestamp, host, static and a
regex_filter that keeps exactly half of the events (even sequence numbers). Runs are
interleaved (plain, chain, plain, chain, ...); each run sends the whole input over one TCP
connection and is timed from the first byte sent until the output holds the expected number
of bytes (lines are 256 bytes); the exact line count is asserted afterwards. Prints one JSON line with medians and the chain's cost.

    scripts/bench_interceptors.py --flumen target/release/flumen [--lines 2000000] [--runs 5]
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench")

BASE = """a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 0
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 10000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
"""

CHAIN = """a1.sources.r1.interceptors = ts host st even
a1.sources.r1.interceptors.ts.type = timestamp
a1.sources.r1.interceptors.host.type = host
a1.sources.r1.interceptors.st.type = static
a1.sources.r1.interceptors.st.key = datacenter
a1.sources.r1.interceptors.st.value = eu-west-1
a1.sources.r1.interceptors.even.type = regex_filter
a1.sources.r1.interceptors.even.regex = ^[0-9]{9}[02468] 
"""


def output_bytes(directory):
    if not os.path.isdir(directory):
        return 0
    return sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory))


def count_lines(directory):
    total = 0
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        with open(os.path.join(directory, name), "rb") as f:
            while True:
                block = f.read(1 << 20)
                if not block:
                    break
                total += block.count(b"\n")
    return total


def one_run(flumen, data, chain, expected):
    with tempfile.TemporaryDirectory(prefix="flumen-bench-icpt-") as d:
        out = os.path.join(d, "out")
        conf = os.path.join(d, "agent.properties")
        with open(conf, "w") as f:
            f.write(BASE.format(out=out) + (CHAIN if chain else ""))
        proc = subprocess.Popen([flumen, "agent", "-n", "a1", "-f", conf],
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        port = None
        for line in proc.stderr:
            if "listening" in line and "address=" in line:
                port = int(line.split("address=")[1].split()[0].rsplit(":", 1)[1])
                break
        if port is None:
            raise SystemExit("agent did not start")
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(data)
        # Poll the size (cheap) while the agent works; count lines once at the end.
        while output_bytes(out) < expected * 256:
            if time.monotonic() - start > 300:
                raise SystemExit("timed out")
            time.sleep(0.02)
        elapsed = time.monotonic() - start
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        got = count_lines(out)
        if got != expected:
            raise SystemExit(f"expected {expected} lines, got {got}")
        return elapsed


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--flumen", required=True)
    p.add_argument("--lines", type=int, default=2_000_000)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    cache = os.path.expanduser("~/.cache/flumen-bench")
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"input-{a.lines}.log")
    subprocess.run([sys.executable, os.path.join(BENCH, "gen_input.py"), "--lines", str(a.lines), "--out", path],
                   check=True, stdout=subprocess.DEVNULL)
    with open(path, "rb") as f:
        data = f.read()
    plain, chain = [], []
    for _ in range(a.runs):
        plain.append(one_run(a.flumen, data, False, a.lines))
        chain.append(one_run(a.flumen, data, True, (a.lines + 1) // 2))
    mp, mc = statistics.median(plain), statistics.median(chain)
    # The chain run writes half the events; compare input events per second.
    print(json.dumps({
        "workload": "netcat-interceptors-file_roll", "lines": a.lines, "runs": a.runs,
        "plain_median_s": round(mp, 3), "plain_events_per_s": round(a.lines / mp),
        "chain_median_s": round(mc, 3), "chain_events_per_s": round(a.lines / mc),
        "chain_cost_pct": round((1 - mp / mc) * 100, 1),
    }))


if __name__ == "__main__":
    main()
