#!/usr/bin/env python3
"""MB/s of the hdfs sink into local files and into a local S3 server (s3s-fs), per file
format, next to a plain write/upload of the same bytes with the same client in the same run.

  input   one file of deterministic text lines (--mb MB of --line-bytes-byte lines, newline
          included), generated once in a temp dir
  flumen  spooldir (the input file, batchSize B) -> memory -> hdfs sink (hdfs.batchSize B,
          rollSize --roll-mb, rollCount 0, rollInterval 0), one format per agent run:
          DataStream (TEXT), CompressedStream gzip, CompressedStream zstd, SequenceFile
          (BytesWritable). Timed from the agent's start until it has exited after SIGTERM,
          sent once its sink's EventDrainSuccessCount (/metrics) reaches the line count: the
          open file is closed at stop (local: fsynced and renamed; S3: uploaded), so every
          event is then in a finished file. Each run checks that no in-use file, staged file
          or meta record is left, and that DataStream's output is byte-for-byte the input's
          size.
  plain   examples/opendal_put on the same input file: local, 1 MiB std::fs writes then fsync;
          s3, the sink's own OpenDAL operator and upload loop (writer_with(key).chunk(8 MiB),
          1 MiB writes, close). Its own timing: from opening the input to the upload's
          completion (the agent's figure includes its start-up, a few ms).
  ceiling spooldir -> memory -> null sink on the same input (--no-ceiling skips it): what the
          source and channel alone can feed, whatever the sink.

Columns: "drained at" is when EventDrainSuccessCount reached the line count, "stop→exit" the
rest (for S3, the upload of the file still open at stop). CPU seconds per measurement: the
writer's (the agent or opendal_put), s3s-fs's, and everyone else's on the machine (from
/proc/stat, less ours; it includes the kernel's writeback threads): a busy neighbour on a small
machine shows there, and makes the figures worth re-running.

MB/s are 10^6 body bytes (the lines without their newline) per second; the plain write moves
the same file and is counted the same way, so "vs plain" is the plain time over the sink's.
Medians of --runs runs; the plain reference and the formats alternate their order per run.

    cargo build --release --bin flumen --example opendal_put
    python3 scripts/bench_hdfs.py [--flumen target/release/flumen]
        [--opendal-put target/release/examples/opendal_put] [--s3s-fs PATH]
        [--mb 256] [--runs 3] [--stores local,s3] [--formats text,gzip,zstd,seq]
        [--batch 10000] [--roll-mb 128] [--log-level debug] [--keep]

The binaries are copied into the temp dir first, so a rebuild during the run does not mix
builds. --keep leaves the temp dir (agent configs and logs, not the data) for a look afterwards.
"""
import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import free_port, wait_port

ACCESS_KEY = "flumen-bench"
SECRET_KEY = "flumen-bench-secret"
BUCKET = "bench"

FORMATS = {
    "text": ("DataStream (TEXT)", {"hdfs.fileType": "DataStream"}),
    "gzip": ("CompressedStream gzip", {"hdfs.fileType": "CompressedStream", "hdfs.codeC": "gzip"}),
    "zstd": ("CompressedStream zstd", {"hdfs.fileType": "CompressedStream", "hdfs.codeC": "zstd"}),
    "seq": ("SequenceFile (BytesWritable)", {"hdfs.fileType": "SequenceFile"}),
}




class S3Server:
    """s3s-fs over <work>/s3: a bucket is a directory, an object a file in it."""

    def __init__(self, binary, work):
        self.data = os.path.join(work, "s3")
        os.makedirs(os.path.join(self.data, BUCKET))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(self.port), "--access-key",
             ACCESS_KEY, "--secret-key", SECRET_KEY, self.data],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "s3s-fs.log"), "w"))
        wait_port(self.port)

    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def bucket_dir(self):
        return os.path.join(self.data, BUCKET)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def make_input(path, mb, line_bytes):
    """Log-like lines: a counter, then words drawn (seeded) from a small vocabulary; the lines
    are built from a pool of 65,536 distinct tails (about 13 MB, larger than zstd's window at
    its default level), so the data compresses like text rather than like a repeated block."""
    rng = random.Random(16)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
             for _ in range(2000)]
    tail_len = line_bytes - 12  # "%010d " and "\n"
    pool = []
    for _ in range(65536):
        words, n = [], 0
        while n < tail_len:
            w = rng.choice(vocab)
            words.append(w)
            n += len(w) + 1
        pool.append(" ".join(words)[:tail_len].encode())
    lines = max(1, mb * 1_000_000 // line_bytes)
    with open(path, "wb", buffering=8 << 20) as f:
        for i in range(lines):
            f.write(b"%010d " % i + pool[(i * 7919) & 65535] + b"\n")
    return lines, os.path.getsize(path)


def plain(tool, store, input_path, work, s3, tag):
    if store == "local":
        dest = os.path.join(work, f"plain-{tag}")
        args = [tool, "local", input_path, dest]
    else:
        args = [tool, "s3", "--endpoint", s3.endpoint(), "--bucket", BUCKET, "--key",
                f"plain/{tag}", "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY,
                input_path]
    cpu = Cpu(s3)
    out = subprocess.run(args, capture_output=True, text=True, env={**os.environ,
                                                                     "RUST_BACKTRACE": "0"})
    usage = cpu.done()
    if out.returncode != 0:
        raise SystemExit(f"opendal_put failed: {out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if store == "local":
        os.remove(dest)
    else:
        os.remove(os.path.join(s3.bucket_dir(), "plain", tag))
    return {"seconds": result["seconds"], **usage}


def sink_config(store, fmt, out_dir, staging, s3, batch, roll_bytes):
    keys = {"hdfs.stagingDir": staging, "hdfs.batchSize": batch, "hdfs.rollSize": roll_bytes,
            "hdfs.rollCount": 0, "hdfs.rollInterval": 0, "hdfs.filePrefix": "bench"}
    keys.update(FORMATS[fmt][1])
    if store == "local":
        keys["hdfs.path"] = f"file://{out_dir}"
    else:
        keys["hdfs.path"] = f"s3a://{BUCKET}/{out_dir}"
        keys.update({"hdfs.fs.s3a.endpoint": s3.endpoint(), "hdfs.fs.s3a.access.key": ACCESS_KEY,
                     "hdfs.fs.s3a.secret.key": SECRET_KEY,
                     "hdfs.fs.s3a.path.style.access": "true",
                     "hdfs.fs.s3a.endpoint.region": "us-east-1"})
    return "".join(f"a.sinks.k1.{k} = {v}\n" for k, v in keys.items())


def metrics_port(log_path, agent, timeout=30):
    end = time.monotonic() + timeout
    pattern = re.compile(r"Monitoring listening.*address=\S*?:(\d+)")
    while time.monotonic() < end:
        with open(log_path, errors="replace") as f:
            m = pattern.search(f.read())
        if m:
            return int(m.group(1))
        if agent.poll() is not None:
            break
        time.sleep(0.005)
    raise SystemExit(f"no metrics address in {log_path}")


def drained(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return int(json.load(r)["SINK.k1"]["EventDrainSuccessCount"])
    except (OSError, KeyError, ValueError):
        return 0


def files_under(root):
    found = []
    for d, _, names in os.walk(root):
        found += [os.path.join(d, n) for n in names]
    return found


class Cpu:
    """CPU seconds over one measurement: the measured processes' (the agent or opendal_put,
    waited for, and s3s-fs), and everyone else's on the machine (from /proc/stat, less ours
    and this script's): a busy neighbour on a 2-core machine shows there."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, server):
        self.server = server
        self.start = self.snapshot()

    def snapshot(self):
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = (sum(v[:8]) - v[3] - v[4]) / self.TICK  # all but idle and iowait
        t = os.times()
        server = 0.0
        if self.server:
            with open(f"/proc/{self.server.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            server = (int(fields[11]) + int(fields[12])) / self.TICK
        return busy, t.children_user + t.children_system, t.user + t.system, server

    def done(self):
        end = self.snapshot()
        busy, child, me, server = (e - s for e, s in zip(end, self.start))
        return {"cpu_measured": round(child, 2), "cpu_server": round(server, 2),
                "cpu_others": round(max(0.0, busy - child - me - server), 2)}


def flumen_run(flumen, store, fmt, input_path, lines, input_bytes, work, s3, a, tag):
    """One agent run; store "null" is the pipeline's ceiling: the same source and channel
    into a null sink."""
    run_dir = os.path.join(work, tag)
    spool = os.path.join(run_dir, "spool")
    staging = os.path.join(run_dir, "staging")
    os.makedirs(spool)
    # A hard link: the source renames it to .COMPLETED, the input stays for the next run.
    os.link(input_path, os.path.join(spool, "input.log"))
    out_dir = out_root = None
    if store == "null":
        sink = f"a.sinks.k1.type = null\na.sinks.k1.channel = c1\na.sinks.k1.batchSize = {a.batch}\n"
    else:
        if store == "local":
            out_dir = os.path.join(run_dir, "out")
            out_root = out_dir
        else:
            out_dir = f"flumen/{tag}"
            out_root = os.path.join(s3.bucket_dir(), out_dir)
        sink = ("a.sinks.k1.type = hdfs\na.sinks.k1.channel = c1\n"
                + sink_config(store, fmt, out_dir, staging, s3, a.batch, a.roll_mb * 1_000_000))
    config = (
        "a.sources = r1\na.channels = c1\na.sinks = k1\n"
        "a.sources.r1.type = spooldir\na.sources.r1.channels = c1\n"
        f"a.sources.r1.spoolDir = {spool}\na.sources.r1.batchSize = {a.batch}\n"
        "a.channels.c1.type = memory\n"
        f"a.channels.c1.capacity = {a.batch * 20}\na.channels.c1.transactionCapacity = {a.batch}\n"
        + sink)
    conf_path = os.path.join(run_dir, "agent.properties")
    with open(conf_path, "w") as f:
        f.write(config)
    log_path = conf_path + ".log"
    log = open(log_path, "w")
    env = {**os.environ, "RUST_LOG": a.log_level} if a.log_level else None
    cpu = Cpu(s3)
    t0 = time.monotonic()
    agent = subprocess.Popen([flumen, "agent", "-n", "a", "-f", conf_path, "--metrics-addr",
                              "127.0.0.1:0"], stdout=log, stderr=log, env=env)
    try:
        port = metrics_port(log_path, agent)
        while drained(port) < lines:
            if agent.poll() is not None:
                raise SystemExit(f"agent exited early ({agent.returncode}); see {log_path}")
            if time.monotonic() - t0 > a.timeout:
                raise SystemExit(f"timed out; see {log_path}")
            time.sleep(0.01)
        t_drained = time.monotonic() - t0
        agent.send_signal(signal.SIGTERM)
        rc = agent.wait(timeout=a.timeout)
        wall = time.monotonic() - t0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    usage = cpu.done()
    log.close()
    if rc != 0:
        raise SystemExit(f"agent exit status {rc}; see {log_path}")
    outputs, out_bytes = [], 0
    if out_root:
        outputs = files_under(out_root)
        left = [f for f in outputs if f.endswith(".tmp")]
        left += [f for f in files_under(staging)
                 if os.path.basename(f) not in ("flumen.lock", "counter")]
        if left:
            raise SystemExit(f"left in use or staged after stop: {left}")
        out_bytes = sum(os.path.getsize(f) for f in outputs)
        if not outputs or (fmt == "text" and out_bytes != input_bytes):
            raise SystemExit(f"{tag}: {len(outputs)} files of {out_bytes} bytes for "
                             f"{input_bytes} input bytes")
        shutil.rmtree(out_root)
    # The data always goes; --keep leaves the config and the agent's log.
    shutil.rmtree(spool)
    shutil.rmtree(staging, ignore_errors=True)
    if not a.keep:
        shutil.rmtree(run_dir)
    return {"seconds": wall, "drained_at": t_drained, "stop_to_exit": wall - t_drained,
            "files": len(outputs), "out_bytes": out_bytes, **usage}


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--flumen", default=os.path.join(repo, "target/release/flumen"))
    p.add_argument("--opendal-put",
                   default=os.path.join(repo, "target/release/examples/opendal_put"))
    p.add_argument("--s3s-fs", default=shutil.which("s3s-fs") or "/work/tools/s3s-fs/bin/s3s-fs")
    p.add_argument("--mb", type=int, default=256, help="input size, 10^6 bytes")
    p.add_argument("--line-bytes", type=int, default=200, help="bytes per line, newline included")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--stores", default="local,s3")
    p.add_argument("--formats", default="text,gzip,zstd,seq")
    p.add_argument("--batch", type=int, default=10000,
                   help="spooldir batchSize, hdfs.batchSize and transactionCapacity")
    p.add_argument("--roll-mb", type=int, default=128, help="hdfs.rollSize, 10^6 bytes")
    p.add_argument("--no-ceiling", action="store_true",
                   help="skip the spooldir -> memory -> null run (the pipeline's ceiling)")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--log-level", default="", help="RUST_LOG for the agents (e.g. debug)")
    p.add_argument("--keep", action="store_true",
                   help="keep the temp dir with the agents' configs and logs (not their data)")
    a = p.parse_args()
    stores = a.stores.split(",")
    formats = a.formats.split(",")
    work = tempfile.mkdtemp(prefix="bench-hdfs-")
    flumen = shutil.copy(a.flumen, os.path.join(work, "flumen"))
    put = shutil.copy(a.opendal_put, os.path.join(work, "opendal_put"))
    input_path = os.path.join(work, "input.log")
    lines, input_bytes = make_input(input_path, a.mb, a.line_bytes)
    body = input_bytes - lines  # without the newlines
    s3 = S3Server(a.s3s_fs, work) if "s3" in stores else None
    # (store, writer) in table order; the ceiling is its own "store".
    cells = [(s, f) for s in stores for f in ["plain"] + formats]
    if not a.no_ceiling:
        cells.append(("null", "null"))
    res = {c: [] for c in cells}
    try:
        for r in range(a.runs):
            groups = [[c for c in cells if c[0] == s] for s in stores]
            if not a.no_ceiling:
                groups.insert(0, [("null", "null")])
            for group in groups:
                if r % 2:
                    group = group[::-1]
                for store, f in group:
                    tag = f"{store}-{f}-{r}"
                    if f == "plain":
                        res[(store, f)].append(plain(put, store, input_path, work, s3, tag))
                    else:
                        res[(store, f)].append(flumen_run(flumen, store, f, input_path, lines,
                                                          input_bytes, work, s3, a, tag))
                print(f"run {r + 1} {group[0][0]}: " + ", ".join(
                    f"{f} {res[(st, f)][-1]['seconds']:.2f} s" for st, f in group), flush=True)
    finally:
        if s3:
            s3.stop()
        if a.keep:
            print(f"kept {work}")
            os.remove(input_path)
        else:
            shutil.rmtree(work, ignore_errors=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=repo).stdout.strip()
    med = lambda c, k: statistics.median(x[k] for x in res[c])
    mbps = lambda s: body / 1e6 / s
    print()
    print(f"- Date: {datetime.date.today()}; commit `{commit}`; {os.cpu_count()} CPUs; input "
          f"{input_bytes / 1e6:.0f} MB ({lines:,} lines of {a.line_bytes} bytes, {body / 1e6:.0f} "
          f"MB of bodies); batch {a.batch}; rollSize {a.roll_mb} MB; s3s-fs on 127.0.0.1; "
          f"medians of {a.runs} runs; command: `python3 scripts/bench_hdfs.py --mb {a.mb} "
          f"--runs {a.runs} --stores {a.stores} --formats {a.formats} --batch {a.batch} "
          f"--roll-mb {a.roll_mb}`")
    print()
    print("| store | writer | median s (min–max) | MB/s | vs plain | drained at s | stop→exit s "
          "| output MB | CPU s: writer / s3s-fs / others |")
    print("|---|---|---|---|---|---|---|---|---|")
    summary = {"commit": commit, "cpus": os.cpu_count(), "input_bytes": input_bytes,
               "body_bytes": body, "lines": lines, "batch": a.batch, "roll_mb": a.roll_mb,
               "runs": a.runs, "results": []}
    names = {"local": "plain: std::fs, 1 MiB writes + fsync",
             "s3": "plain: OpenDAL writer (8 MiB parts), the sink's operator"}
    for c in cells:
        store, f = c
        secs = [x["seconds"] for x in res[c]]
        m = med(c, "seconds")
        ref = med((store, "plain"), "seconds") if store != "null" else None
        if f == "plain":
            label, out = names[store], input_bytes
        elif f == "null":
            label, out = "ceiling: spooldir → memory → null sink", 0
        else:
            label, out = f"flumen hdfs sink: {FORMATS[f][0]}", med(c, "out_bytes")
        vs = f"{ref / m:.0%}" if ref else "–"
        drain, tail = (f"{med(c, 'drained_at'):.2f}", f"{med(c, 'stop_to_exit'):.2f}") \
            if f != "plain" else ("–", "–")
        cpu = " / ".join(f"{med(c, k):.2f}" for k in ("cpu_measured", "cpu_server", "cpu_others"))
        print(f"| {store} | {label} | {m:.2f} ({min(secs):.2f}–{max(secs):.2f}) | "
              f"{mbps(m):.0f} | {vs} | {drain} | {tail} | {out / 1e6:.0f} | {cpu} |")
        summary["results"].append({
            "store": store, "writer": f, "median_seconds": round(m, 3),
            "mb_per_s": round(mbps(m), 1), "vs_plain": round(ref / m, 3) if ref else None,
            "output_bytes": out, "runs": res[c]})
    print()
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
