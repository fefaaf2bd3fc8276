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
          1 MiB writes, close).

MB/s are 10^6 body bytes (the lines without their newline) per second; the plain write moves
the same file and is counted the same way, so "vs plain" is the plain time over the sink's.
Medians of --runs runs; the plain reference and the formats alternate their order per run.

    CARGO_TARGET_DIR=target cargo build --release --bin flumen --example opendal_put
    python3 scripts/bench_hdfs.py [--flumen target/release/flumen]
        [--opendal-put target/release/examples/opendal_put] [--s3s-fs PATH]
        [--mb 256] [--runs 3] [--stores local,s3] [--formats text,gzip,zstd,seq]

The binaries are copied into the temp dir first, so a rebuild during the run does not mix
builds. --keep leaves the temp dir (agent logs and configs) for a look afterwards.
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

ACCESS_KEY = "flumen-bench"
SECRET_KEY = "flumen-bench-secret"
BUCKET = "bench"

FORMATS = {
    "text": ("DataStream (TEXT)", {"hdfs.fileType": "DataStream"}),
    "gzip": ("CompressedStream gzip", {"hdfs.fileType": "CompressedStream", "hdfs.codeC": "gzip"}),
    "zstd": ("CompressedStream zstd", {"hdfs.fileType": "CompressedStream", "hdfs.codeC": "zstd"}),
    "seq": ("SequenceFile (BytesWritable)", {"hdfs.fileType": "SequenceFile"}),
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} never opened")


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
    out = subprocess.run(args, capture_output=True, text=True, env={**os.environ,
                                                                     "RUST_BACKTRACE": "0"})
    if out.returncode != 0:
        raise SystemExit(f"opendal_put failed: {out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if store == "local":
        os.remove(dest)
    else:
        os.remove(os.path.join(s3.bucket_dir(), "plain", tag))
    return result["seconds"]


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


def flumen_run(flumen, store, fmt, input_path, lines, input_bytes, work, s3, a, tag):
    run_dir = os.path.join(work, tag)
    spool = os.path.join(run_dir, "spool")
    staging = os.path.join(run_dir, "staging")
    os.makedirs(spool)
    # A hard link: the source renames it to .COMPLETED, the input stays for the next run.
    os.link(input_path, os.path.join(spool, "input.log"))
    if store == "local":
        out_dir = os.path.join(run_dir, "out")
        out_root = out_dir
    else:
        out_dir = f"flumen/{tag}"
        out_root = os.path.join(s3.bucket_dir(), out_dir)
    config = (
        "a.sources = r1\na.channels = c1\na.sinks = k1\n"
        "a.sources.r1.type = spooldir\na.sources.r1.channels = c1\n"
        f"a.sources.r1.spoolDir = {spool}\na.sources.r1.batchSize = {a.batch}\n"
        "a.channels.c1.type = memory\n"
        f"a.channels.c1.capacity = {a.batch * 20}\na.channels.c1.transactionCapacity = {a.batch}\n"
        "a.sinks.k1.type = hdfs\na.sinks.k1.channel = c1\n"
        + sink_config(store, fmt, out_dir, staging, s3, a.batch, a.roll_mb * 1_000_000))
    conf_path = os.path.join(run_dir, "agent.properties")
    with open(conf_path, "w") as f:
        f.write(config)
    log_path = conf_path + ".log"
    log = open(log_path, "w")
    env = {**os.environ, "RUST_LOG": a.log_level} if a.log_level else None
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
    if rc != 0:
        raise SystemExit(f"agent exit status {rc}; see {log_path}")
    outputs = files_under(out_root)
    left = [f for f in outputs if f.endswith(".tmp")]
    left += [f for f in files_under(staging) if os.path.basename(f) not in ("flumen.lock",
                                                                            "counter")]
    if left:
        raise SystemExit(f"left in use or staged after stop: {left}")
    out_bytes = sum(os.path.getsize(f) for f in outputs)
    if not outputs or (fmt == "text" and out_bytes != input_bytes):
        raise SystemExit(f"{tag}: {len(outputs)} files of {out_bytes} bytes for {input_bytes} "
                         f"input bytes")
    if not a.keep:
        shutil.rmtree(run_dir)
        if store == "s3":
            shutil.rmtree(out_root)
    return {"seconds": wall, "drained_at": t_drained, "files": len(outputs),
            "out_bytes": out_bytes}


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
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--log-level", default="", help="RUST_LOG for the agents (e.g. debug)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
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
    seconds = {(s, f): [] for s in stores for f in ["plain"] + formats}
    detail = {}
    try:
        for r in range(a.runs):
            for store in stores:
                order = ["plain"] + formats
                if r % 2:
                    order.reverse()
                for f in order:
                    tag = f"{store}-{f}-{r}"
                    if f == "plain":
                        s = plain(put, store, input_path, work, s3, tag)
                    else:
                        res = flumen_run(flumen, store, f, input_path, lines, input_bytes, work,
                                         s3, a, tag)
                        s = res["seconds"]
                        detail.setdefault((store, f), []).append(res)
                    seconds[(store, f)].append(s)
                print(f"run {r + 1} {store}: " + ", ".join(
                    f"{f} {seconds[(store, f)][-1]:.2f} s" for f in ["plain"] + formats),
                    flush=True)
    finally:
        if s3:
            s3.stop()
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=repo).stdout.strip()
    med = {k: statistics.median(v) for k, v in seconds.items()}
    mbps = lambda s: body / 1e6 / s
    print()
    print(f"- Date: {datetime.date.today()}; commit `{commit}`; {os.cpu_count()} CPUs; input "
          f"{input_bytes / 1e6:.0f} MB ({lines:,} lines of {a.line_bytes} bytes, {body / 1e6:.0f} "
          f"MB of bodies); batch {a.batch}; rollSize {a.roll_mb} MB; s3s-fs on 127.0.0.1; "
          f"medians of {a.runs} runs; command: `python3 scripts/bench_hdfs.py --mb {a.mb} "
          f"--runs {a.runs} --stores {a.stores} --formats {a.formats} --batch {a.batch} "
          f"--roll-mb {a.roll_mb}`")
    print()
    print("| store | writer | median s (min–max) | MB/s | output MB | vs plain |")
    print("|---|---|---|---|---|---|")
    summary = {"commit": commit, "cpus": os.cpu_count(), "input_bytes": input_bytes,
               "body_bytes": body, "lines": lines, "batch": a.batch, "roll_mb": a.roll_mb,
               "runs": a.runs, "results": []}
    for store in stores:
        ref = med[(store, "plain")]
        name = "std::fs, 1 MiB writes + fsync" if store == "local" else \
            "OpenDAL writer (8 MiB parts), the sink's operator"
        for f in ["plain"] + formats:
            v = seconds[(store, f)]
            label = f"plain: {name}" if f == "plain" else f"flumen hdfs sink: {FORMATS[f][0]}"
            out = input_bytes if f == "plain" else statistics.median(
                d["out_bytes"] for d in detail[(store, f)])
            print(f"| {store} | {label} | {med[(store, f)]:.2f} ({min(v):.2f}–{max(v):.2f}) | "
                  f"{mbps(med[(store, f)]):.0f} | {out / 1e6:.0f} | {ref / med[(store, f)]:.0%} |")
            summary["results"].append({
                "store": store, "writer": f, "seconds": v, "median_seconds": med[(store, f)],
                "mb_per_s": round(mbps(med[(store, f)]), 1), "output_bytes": out,
                "vs_plain": round(ref / med[(store, f)], 3),
                **({"drained_at": [d["drained_at"] for d in detail[(store, f)]]}
                   if f != "plain" else {})})
    print()
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
