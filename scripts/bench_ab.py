#!/usr/bin/env python3
"""Before/after on the hot path: seq -> memory -> null (the bench_metrics.py workload, endpoint
not polled) with two builds of the agent, runs interleaved, medians reported.

    python3 scripts/bench_ab.py --before OLD_BIN --after target/release/flumen [--events N] [--runs R]

Prints a Markdown table for BENCHMARKS.md.
"""
import argparse
import datetime
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_metrics import one_run  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--before", required=True)
    p.add_argument("--after", default="target/release/flumen")
    p.add_argument("--events", type=int, default=20_000_000)
    p.add_argument("--runs", type=int, default=7)
    a = p.parse_args()
    times = {"before": [], "after": []}
    for i in range(a.runs):
        order = ("before", "after") if i % 2 == 0 else ("after", "before")
        for which in order:
            secs, _ = one_run(getattr(a, which), a.events, False)
            times[which].append(secs)
            print(f"run {i + 1} {which:6}: {secs:.3f} s ({a.events / secs:,.0f} events/s)",
                  flush=True)
    mb, ma = statistics.median(times["before"]), statistics.median(times["after"])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print()
    print(f"- Date: {datetime.date.today()}; commit `{commit}`; {os.cpu_count()} CPUs; "
          f"command: `python3 scripts/bench_ab.py --before {a.before} --after {a.after} "
          f"--events {a.events} --runs {a.runs}`")
    print()
    print("| build | median s | events/s | runs (s) |")
    print("|---|---|---|---|")
    for which, m in (("before", mb), ("after", ma)):
        print(f"| {which} | {m:.3f} | {a.events / m:,.0f} | "
              f"{', '.join(f'{x:.3f}' for x in times[which])} |")
    print(f"| after vs before | {(ma - mb) / mb:+.1%} time | | |")


if __name__ == "__main__":
    main()
