#!/usr/bin/env bash
# File channel benchmark: the disk's limits and the channel's figures, measured in one run on
# the same disk, printed as a Markdown section ready for BENCHMARKS.md.
#
#   scripts/bench_file_channel.sh [--quick] [--dir DIR] [--events N] [--putters P] [--runs R]
#                                 [--pipelined K] [--no-build]
#
# Parts 1 and 2 run R times (default 3), interleaved, because the disk's speed drifts (shared
# virtual disks do); the report gives medians and ranges.
# 1. Disk limits: `dd` of 1 GiB with fdatasync (MB/s), and 1,000 writes of 25.6 KB (100 events
#    of 256 bytes) each followed by fdatasync (synced writes/s).
# 2. Put+take throughput (examples/file_channel_bench.rs `throughput`): N events of 256 bytes,
#    P putters, one taker, batches of 100 and of 1,000, fsyncPerTransaction = true. Each taker
#    keeps K commits in flight (default 4, what the agent's sinks do: COMMITS_IN_FLIGHT in
#    src/sink/slot.rs); --pipelined 0 commits in line, as this script did before issue 17.
# 3. Replay after kill -9: a fill process puts N (and 4 N) events, prints `filled` and is
#    SIGKILLed; a second process times `start()` and checks the queued count. Once without a
#    checkpoint newer than the fill (checkpointInterval 30 s), once after one (1 s interval,
#    the fill waits 2 s and then for the checkpoint). Next to it, `cat` of the data files, with
#    the page cache emptied before both (drop_caches when permitted, otherwise posix_fadvise
#    DONTNEED on every file of the channel; the output says which and what stayed cached),
#    then again warm.
# 4. Peak RSS (VmHWM) of the fill and of the replay processes.
#
# N defaults to 1,000,000 (--quick: 200,000), P to 4. The files live under DIR (default
# ~/.cache/flumen-bench/file-channel, or $FLUMEN_BENCH_DIR), which must be on the disk to
# measure; each run works in DIR/run-<pid> and removes it at the end. Raw JSON lines are kept in
# DIR/results-<date>-<commit>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=1000000
PUTTERS=4
RUNS=3
PIPELINED=4
BUILD=1
QUICK=0
DIR="${FLUMEN_BENCH_DIR:-$HOME/.cache/flumen-bench/file-channel}"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; EVENTS=200000 ;;
    --dir) DIR="$2"; shift ;;
    --events) EVENTS="$2"; shift ;;
    --putters) PUTTERS="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    --pipelined) PIPELINED="$2"; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
COMMAND="scripts/bench_file_channel.sh"
if [ "$QUICK" = 1 ]; then COMMAND="$COMMAND --quick"; fi
if [ "$EVENTS" != 1000000 ] && [ "$EVENTS" != 200000 ]; then COMMAND="$COMMAND --events $EVENTS"; fi
if [ "$PUTTERS" != 4 ]; then COMMAND="$COMMAND --putters $PUTTERS"; fi
if [ "$RUNS" != 3 ]; then COMMAND="$COMMAND --runs $RUNS"; fi
if [ "$PIPELINED" != 4 ]; then COMMAND="$COMMAND --pipelined $PIPELINED"; fi

TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/examples/file_channel_bench"
if [ "$BUILD" = 1 ]; then
  cargo build --release --example file_channel_bench >&2
fi
[ -x "$BIN" ] || { echo "no $BIN: build it first" >&2; exit 1; }

mkdir -p "$DIR"
RUN="$DIR/run-$$"
rm -rf "$RUN"
mkdir -p "$RUN"
COMMIT="$(git rev-parse --short HEAD)"
DIRTY="$(git diff --quiet HEAD -- src examples 2>/dev/null || echo ' (with uncommitted changes)')"
RESULTS="$DIR/results-$(date +%Y%m%d-%H%M%S)-$COMMIT.jsonl"
: > "$RESULTS"
FILL_PID=
MAIN_PID=$BASHPID
cleanup() {
  # Subshells inherit the trap; only the script itself cleans up.
  [ "$BASHPID" = "$MAIN_PID" ] || return 0
  if [ -n "$FILL_PID" ]; then kill -KILL "$FILL_PID" 2>/dev/null || true; fi
  rm -rf "$RUN"
}
trap cleanup EXIT
export RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0

say() { printf '== %s\n' "$*" >&2; }
record() { echo "$1" >> "$RESULTS"; echo "$1" >&2; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }

# Empties the page cache for the files under $1: drop_caches if permitted, otherwise
# posix_fadvise(DONTNEED) per file (after a sync, so every page is clean and can go). Prints the
# method and the bytes still cached (fincore), as JSON fields.
evict() {
  sync
  local method
  if (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then
    method=drop_caches
  else
    method=fadvise
    python3 - "$1" <<'EOF'
import os, sys
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        fd = os.open(os.path.join(root, name), os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
EOF
  fi
  local cached=null
  if command -v fincore >/dev/null 2>&1; then
    cached=$(find "$1" -type f -print0 | xargs -0 -r fincore --bytes --noheadings --output RES 2>/dev/null \
      | awk '{s += $1} END {print s + 0}')
  fi
  echo "\"evict\": \"$method\", \"still_cached_bytes\": $cached"
}

LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

# --- 1 and 2. Disk limits and put+take throughput, interleaved, RUNS times ---------------------
# Records a JSON line of this repetition (adds "run").
record_run() { record "{\"run\": $RUN_NO, ${1#\{}"; }

measure_dd() {
  say "dd: 1 GiB, bs=1M, conv=fdatasync (run $RUN_NO)"
  dd_out=$(dd if=/dev/zero of="$RUN/dd.bin" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1)
  rm -f "$RUN/dd.bin"
  json_line=$(python3 - "$dd_out" <<'EOF'
import json, re, sys
line = sys.argv[1]
m = re.match(r"(\d+) bytes .* copied, ([0-9.,]+) s", line)
if not m:
    sys.exit(f"cannot read dd's output: {line}")
size, secs = int(m.group(1)), float(m.group(2).replace(",", "."))
print(json.dumps({"measure": "dd", "bytes": size, "secs": secs, "mb_per_s": size / secs / 1e6,
                  "dd_says": line}))
EOF
)
  record_run "$json_line"
}

measure_synced_writes() {
  say "synced writes: 1,000 x 25,600 bytes, fdatasync after each"
  json_line=$(python3 - "$RUN/synced.bin" <<'EOF'
import json, os, sys, time
path, count, size = sys.argv[1], 1000, 25600
block = os.urandom(size)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
try:
    start = time.monotonic()
    for _ in range(count):
        view = memoryview(block)
        while view:
            view = view[os.write(fd, view):]
        os.fdatasync(fd)
    secs = time.monotonic() - start
finally:
    os.close(fd)
    os.unlink(path)
print(json.dumps({"measure": "synced_writes", "writes": count, "bytes_each": size, "secs": secs,
                  "writes_per_s": count / secs, "mb_per_s": count * size / secs / 1e6}))
EOF
)
  record_run "$json_line"
}

measure_throughput() {
  local batch=$1 takers=$2 line
  say "throughput: $EVENTS events, batch $batch, $PUTTERS putters, $takers taker(s) (run $RUN_NO)"
  rm -rf "$RUN/tp"
  line=$("$BIN" throughput --dir "$RUN/tp" --events "$EVENTS" --batch "$batch" \
    --putters "$PUTTERS" --takers "$takers" --pipelined "$PIPELINED")
  record_run "$line"
  rm -rf "$RUN/tp"
}

for RUN_NO in $(seq 1 "$RUNS"); do
  measure_dd
  measure_synced_writes
  measure_throughput 100 1
  measure_throughput 1000 1
  measure_throughput 1000 2
done

# --- 3 and 4. Fill, kill -9, replay -----------------------------------------------------------
# Starts a fill in the background, waits for `filled`, SIGKILLs it; records its JSON line.
fill_and_kill() {
  local dir=$1 events=$2 ckpt_args=$3 label=$4 out="$RUN/fill.out"
  # shellcheck disable=SC2086 # ckpt_args is a list of options
  "$BIN" fill --dir "$dir" --events "$events" --putters "$PUTTERS" $ckpt_args > "$out" &
  FILL_PID=$!
  local deadline=$((SECONDS + 1800))
  until grep -qx filled "$out"; do
    if ! kill -0 "$FILL_PID" 2>/dev/null; then
      echo "fill process exited before filling:" >&2; cat "$out" >&2; exit 1
    fi
    [ $SECONDS -lt $deadline ] || { echo "fill did not finish in 30 minutes" >&2; exit 1; }
    sleep 0.05
  done
  kill -KILL "$FILL_PID"
  local status=0
  wait "$FILL_PID" || status=$?
  FILL_PID=
  [ "$status" = 137 ] || { echo "fill exited with $status, not by SIGKILL" >&2; exit 1; }
  local ckpt_after=false
  if [ -f "$dir/checkpoint/checkpoint" ]; then ckpt_after=true; fi
  json_line=$(python3 - "$(grep -v '^filled$' "$out")" "$ckpt_after" "$label" \
    "$(du -sb "$dir/data" | cut -f1)" "$(find "$dir/data" -name 'log-*' | wc -l)" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
d["killed_with"] = "SIGKILL"
d["checkpoint_file_after_kill"] = sys.argv[2] == "true"
d["variant"] = sys.argv[3]
d["data_bytes"] = int(sys.argv[4])
d["data_files"] = int(sys.argv[5])
print(json.dumps(d))
EOF
)
  record "$json_line"
}

# Times `cat` of the data files; $3 = cold|warm.
time_cat() {
  local dir=$1 events=$2 cache=$3 label=$4 evict_json='"evict": null'
  if [ "$cache" = cold ]; then evict_json=$(evict "$dir"); fi
  local t0 t1
  t0=$(now)
  find "$dir/data" -type f -name 'log-*' -print0 | xargs -0 cat > /dev/null
  t1=$(now)
  record "{\"measure\": \"cat\", \"variant\": \"$label\", \"events\": $events, \"cache\": \"$cache\", $evict_json, \"secs\": $(elapsed "$t0" "$t1")}"
}

# One replay process; extra arguments go to the example.
time_replay() {
  local dir=$1 events=$2 cache=$3 label=$4 evict_json='"evict": null'
  shift 4
  if [ "$cache" = cold ]; then evict_json=$(evict "$dir"); fi
  local t0 t1 line
  t0=$(now)
  line=$("$BIN" replay --dir "$dir" --events "$events" "$@")
  t1=$(now)
  json_line=$(python3 - "$line" "$label" "$cache" "{$evict_json}" "$(elapsed "$t0" "$t1")" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
d.update({"variant": sys.argv[2], "cache": sys.argv[3], **json.loads(sys.argv[4]),
          "process_secs": float(sys.argv[5])})
print(json.dumps(d))
EOF
)
  record "$json_line"
}

for events in "$EVENTS" $((EVENTS * 4)); do
  for variant in no-checkpoint checkpoint; do
    if [ "$variant" = checkpoint ]; then
      args="--checkpoint-interval-ms 1000 --wait-checkpoint-ms 2000"
    else
      args="--checkpoint-interval-ms 30000"
    fi
    label="$events/$variant"
    say "replay: fill $events events ($variant), SIGKILL, replay cold then warm"
    d="$RUN/replay"
    rm -rf "$d"
    fill_and_kill "$d" "$events" "$args" "$label"
    time_cat "$d" "$events" cold "$label"
    time_replay "$d" "$events" cold "$label"
    time_cat "$d" "$events" warm "$label"
    time_replay "$d" "$events" warm "$label" --drain
    rm -rf "$d"
  done
done

# The report: Python reading the JSON lines ($1) and the run's description ($2, JSON).
report_py() {
  cat <<'PY'
import json, sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
meta = json.loads(sys.argv[2])
base = int(meta["events"])


def one(measure, **kw):
    for r in rows:
        if r["measure"] == measure and all(r.get(k) == v for k, v in kw.items()):
            return r
    sys.exit(f"no {measure} result with {kw}")


def mib(kib):
    return f"{kib / 1024:.1f}"


def n(x, d=0):
    return f"{x:,.{d}f}"


def verdict(ok):
    return "met" if ok else "**missed**"


import statistics


def runs(measure, **kw):
    return [r for r in rows if r["measure"] == measure
            and all(r.get(k) == v for k, v in kw.items())]


def med(rs, key):
    return statistics.median(r[key] for r in rs)


def spread(rs, key, d=0):
    """Median, with the range when there are several runs."""
    vals = [r[key] for r in rs]
    m = n(statistics.median(vals), d)
    return m if len(vals) == 1 else f"{m} ({n(min(vals), d)}–{n(max(vals), d)})"


dd, sw = runs("dd"), runs("synced_writes")
nruns = len(dd)
print(f"## {meta['date']} — file channel: put+take, replay after kill -9, peak RSS\n")
print(f"- Commit: `{meta['commit']}`")
print(f"- Machine: {meta['nproc']} × {meta['cpu']}, {meta['mem']} RAM, {meta['fs']} "
      f"(bench directory `{meta['dir']}`)")
print(f"- Command: `{meta['command']}` (raw JSON lines: `{meta['results']}`)")
print(f"- Load average (1 min) at the start / end of the run: {meta['load_start']} / "
      f"{meta['load_end']}")
print(f"- Disk, same run ({nruns} runs interleaved with the throughput runs; median (min–max)): "
      f"`dd` 1 GiB with fdatasync **{spread(dd, 'mb_per_s', 1)} MB/s**; 1,000 writes of 25.6 KB "
      f"each followed by fdatasync **{spread(sw, 'writes_per_s')} synced writes/s**")
print("- Events: 256-byte bodies, no headers; fsyncPerTransaction = true (the default); "
      "MB = 10^6 bytes of event bodies\n")

print("### Put + take throughput\n")
print(f"{meta['putters']} putter tasks putting batches, one taker (or two, as two sinks on one "
      f"channel) taking batches of the same size and committing each, with "
      f"{meta['pipelined']} commits in flight per taker (0: in line); median (min–max) of "
      f"{nruns} runs.\n")
print("| batch | takers | events | events/s | MB/s | mean put ms | mean commit ms | peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|")
tp = {}
for b, t in ((100, 1), (1000, 1), (1000, 2)):
    rs = tp[(b, t)] = runs("throughput", batch=b, takers=t)
    print(f"| {n(b)} | {t} | {n(rs[0]['events'])} | {spread(rs, 'events_per_s')} | "
          f"{spread(rs, 'mb_per_s', 1)} | {med(rs, 'mean_put_ms'):.2f} | "
          f"{med(rs, 'mean_commit_ms'):.2f} | "
          f"{mib(max(r['memory']['vmhwm_kib'] for r in rs))} |")

print("\n### Replay after kill -9\n")
cold = [r for r in rows if r["measure"] in ("cat", "replay") and r["cache"] == "cold"]
left = max((r["still_cached_bytes"] or 0) for r in cold)
how = {"drop_caches": "the page cache dropped (`echo 3 > /proc/sys/vm/drop_caches`)",
       "fadvise": "`drop_caches` is not permitted here, so every file of the channel was "
                  "evicted with `posix_fadvise(DONTNEED)` after a sync"}
print(f"Cold: {'; '.join(how[m] for m in sorted({r['evict'] for r in cold}))}, before each cold "
      f"`cat` and each cold replay (`fincore` then found at most {n(left / 1e6, 1)} MB of them "
      "cached). Warm: right after, files cached; the warm replay opens what the cold one left: "
      "`start()` writes a checkpoint once it has replayed, so the warm replay loads a checkpoint "
      "of every event; it then drains them all (take + commit, batches of 1,000). "
      "`cat` reads the data files (`log-*`). The fill puts batches of 1,000 from "
      f"{meta['putters']} putters and is SIGKILLed once it has printed `filled`.\n")
print("| events | data MB | checkpoint after the fill | fill s | cat cold s | replay cold s | "
      "queued | cat warm s | replay warm s | drain s | peak RSS MiB fill / replay |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
fills = [r for r in rows if r["measure"] == "fill"]
for f in fills:
    v = f["variant"]
    cc, rc = one("cat", variant=v, cache="cold"), one("replay", variant=v, cache="cold")
    cw, rw = one("cat", variant=v, cache="warm"), one("replay", variant=v, cache="warm")
    after, entries = f.get("checkpoint_after_fill_s"), f.get("checkpoint_entries")
    covered = after is not None and after >= 0
    ck = (f"{'yes' if covered else 'no'}: holds {n(entries or 0)} events (interval "
          f"{f['checkpoint_interval_ms'] / 1000:g} s"
          + (f", waited {f['waited_for_checkpoint_s']:.1f} s)" if covered else ")"))
    print(f"| {n(f['events'])} | {n(f['data_bytes'] / 1e6)} | {ck} | {f['secs']:.2f} | "
          f"{cc['secs']:.2f} | **{rc['replay_s']:.2f}** | {n(rc['queued'])}"
          f"{'' if rc['queued_ok'] else ' (WRONG)'} | {cw['secs']:.2f} | {rw['replay_s']:.2f} | "
          f"{rw.get('drain_s', 0):.2f} | {mib(f['memory']['vmhwm_kib'])} / "
          f"{mib(max(rc['memory']['vmhwm_kib'], rw['memory']['vmhwm_kib']))} |")

print("\n### Against the targets\n")
print("| target | figure | verdict |")
print("|---|---|---|")
def paired(num, den, key_num, key_den):
    """Per-run ratios (same repetition), for the figure column."""
    by_run = {r["run"]: r[key_den] for r in den}
    return [r[key_num] / by_run[r["run"]] for r in num if r["run"] in by_run]


for t in (1, 2):
    rs = tp[(1000, t)]
    ratio = med(rs, "mb_per_s") / med(dd, "mb_per_s")
    per_run = ", ".join(f"{x:.0%}" for x in paired(rs, dd, "mb_per_s", "mb_per_s"))
    print(f"| batch 1,000 ({t} taker{'s' if t > 1 else ''}): MB/s ≥ 55% of dd | medians "
          f"{n(med(rs, 'mb_per_s'), 1)} / {n(med(dd, 'mb_per_s'), 1)} = **{ratio:.0%}** "
          f"(per run: {per_run}) | {verdict(ratio >= 0.55)} |")
tp100 = tp[(100, 1)]
per = med(tp100, "events_per_s") / med(sw, "writes_per_s")
per_run = ", ".join(f"{x:.0f}" for x in paired(tp100, sw, "events_per_s", "writes_per_s"))
print(f"| batch 100: ≥ 50 events per synced write | medians {n(med(tp100, 'events_per_s'))} / "
      f"{n(med(sw, 'writes_per_s'))} = **{per:.0f}** (per run: {per_run}) | "
      f"{verdict(per >= 50)} |")
for f in (f for f in fills if f["events"] == base):
    v = f["variant"]
    rc = one("replay", variant=v, cache="cold")
    print(f"| replay of {n(base)} < 2 s ({v.split('/')[1]}, cold) | **{rc['replay_s']:.2f} s**"
          f" | {verdict(rc['replay_s'] < 2 and rc['queued_ok'])} |")
for f in (f for f in fills if f["events"] == base):
    v = f["variant"]
    rc = one("replay", variant=v, cache="cold")
    fill, rep = f["memory"]["vmhwm_kib"], rc["memory"]["vmhwm_kib"]
    print(f"| peak RSS < 64 MiB with {n(base)} queued ({v.split('/')[1]}) | fill "
          f"**{mib(fill)}**, replay **{mib(rep)}** MiB | {verdict(max(fill, rep) < 64 * 1024)} |")
if base != 1_000_000:
    print(f"\n(The targets are set for 1,000,000 events; this run used {n(base)}.)")
PY
}

# --- Report -----------------------------------------------------------------------------------
FSTYPE=$(df --output=fstype "$DIR" | tail -1 | tr -d ' ')
FSDEV=$(df --output=source "$DIR" | tail -1 | tr -d ' ')
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
META=$(python3 -c 'import json, sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' \
  date "$(date +%Y-%m-%d)" commit "$COMMIT$DIRTY" nproc "$(nproc)" cpu "$CPU" mem "$MEM" \
  fs "$FSTYPE on $FSDEV" dir "$DIR" command "$COMMAND" putters "$PUTTERS" pipelined "$PIPELINED" events "$EVENTS" \
  results "$RESULTS" load_start "$LOAD_START" load_end "$(cut -d' ' -f1 /proc/loadavg)")
python3 -c "$(report_py)" "$RESULTS" "$META"
