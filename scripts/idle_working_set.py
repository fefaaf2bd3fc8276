#!/usr/bin/env python3
"""How much of an idle agent's RSS it really uses: the idle working set.

    scripts/idle_working_set.py --flumen BIN [--rounds 3] [--settle 2] [--idle 5]

Starts BIN on the shared W2 config (netcat -> memory -> file_roll, as the shared benchmark's
idle RSS figure does), waits until it listens plus --settle seconds, and reads VmRSS. Then it
asks the kernel to page out every file-backed mapping of the agent (process_madvise with
MADV_PAGEOUT; needs root or CAP_SYS_NICE), reads VmRSS again, lets the agent idle --idle
seconds and reads it a third time: what came back is what the idle agent touches. What never
left is memory that cannot be paged out (dirty copy-on-write pages, such as the relocated
RELRO data of a position-independent binary, and pages other processes map too, such as
libc's). Prints, per round, the three figures and the mappings' RSS at the end, then medians.

A diagnostic for BENCHMARKS.md, not something the agent does: the agent never pages itself out.
"""
import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, wait_port  # noqa: E402

SYS_PIDFD_OPEN = 434
SYS_PROCESS_MADVISE = 440
MADV_PAGEOUT = 21
W2_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "..", "..", "shared", "bench", "configs", "flumen", "w2.properties")


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def page_out_files(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        raise OSError(ctypes.get_errno(), "pidfd_open")
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 6 or not parts[5].startswith("/"):
                    continue
                start, end = (int(x, 16) for x in parts[0].split("-"))
                iov = IoVec(start, end - start)
                if libc.syscall(SYS_PROCESS_MADVISE, pidfd, ctypes.byref(iov), 1,
                                MADV_PAGEOUT, 0) < 0:
                    raise OSError(ctypes.get_errno(), f"process_madvise on {parts[5]}")
    finally:
        os.close(pidfd)


def rss_by_mapping(pid):
    """KiB of RSS per (file or [anon], permissions), largest first."""
    sizes, key = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split()
            if "-" in first[0] and len(first) >= 5:
                key = (first[5] if len(first) > 5 else "[anon]", first[1])
            elif first[0] == "Rss:" and key:
                sizes[key] = sizes.get(key, 0) + int(first[1])
    return sorted(((kib, name, perm) for (name, perm), kib in sizes.items() if kib),
                  reverse=True)


def one_round(flumen, settle, idle):
    with tempfile.TemporaryDirectory() as work:
        port = free_port()
        out = os.path.join(work, "out")
        os.makedirs(out)
        config = os.path.join(work, "w2.properties")
        with open(W2_CONFIG) as f:
            text = f.read().replace("{PORT}", str(port)).replace("{OUTDIR}", out)
        with open(config, "w") as f:
            f.write(text)
        with open(os.path.join(work, "agent.log"), "w") as log:
            proc = subprocess.Popen([flumen, "agent", "-n", "a1", "-f", config],
                                    stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_port(port, 30)
            time.sleep(settle)
            before = vm_rss_kib(proc.pid)
            page_out_files(proc.pid)
            paged_out = vm_rss_kib(proc.pid)
            time.sleep(idle)
            after = vm_rss_kib(proc.pid)
            return before, paged_out, after, rss_by_mapping(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flumen", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--idle", type=float, default=5.0)
    args = ap.parse_args()
    rows = []
    for n in range(args.rounds):
        before, paged_out, after, maps = one_round(args.flumen, args.settle, args.idle)
        rows.append((before, paged_out, after))
        print(f"round {n + 1}: idle {before / 1024:.1f} MiB, paged out {paged_out / 1024:.1f} MiB,"
              f" after {args.idle:g} s idle {after / 1024:.1f} MiB")
        for kib, name, perm in maps[:12]:
            print(f"    {kib:6d} KiB  {perm}  {name}")
    med = [statistics.median(col) / 1024 for col in zip(*rows)]
    print(f"median: idle {med[0]:.1f} MiB, paged out {med[1]:.1f} MiB,"
          f" idle working set {med[2]:.1f} MiB")


if __name__ == "__main__":
    main()
