#!/usr/bin/env bash
# Regenerates link/symbol-order.txt: the functions of the `flumen` binary that an agent runs to
# start, to move a few events and to sit idle, which build.rs asks the linker to place first
# and together.
#
#   scripts/symbol_order.sh [BIN]      (default: target/release/flumen, built first)
#
# Why: the kernel maps the 64 KiB around every code page a process touches, and the code an
# agent runs at start (clap, the config loader, the registry, tracing, tokio) is scattered over
# 17 MB of text shared with Kafka, OpenDAL, rustls and Avro. Packed together it takes a fifth
# of the resident pages (BENCHMARKS.md, issue 17 part 3).
#
# How: the agent runs under valgrind's callgrind (which names every function executed) on a
# config with the common components (netcat, TAILDIR and http sources; memory and file
# channels; file_roll and logger sinks), takes a few events on each source, idles, and stops.
# The functions it ran are written in the order of their addresses in BIN, so that code that
# was together stays together. Symbols that a later change renames are ignored by the linker
# (the file only ever helps); regenerate after large changes. Needs valgrind (apt install
# valgrind) and takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${1:-}"
if [ -z "$BIN" ]; then
  cargo build --release --bin flumen >&2
  BIN="${CARGO_TARGET_DIR:-target}/release/flumen"
fi
command -v valgrind >/dev/null || { echo "valgrind is needed (apt install valgrind)" >&2; exit 1; }

WORK="$(mktemp -d)"
AGENT=
cleanup() {
  if [ -n "$AGENT" ]; then kill -KILL "$AGENT" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NC_PORT="$(free_port)"
HTTP_PORT="$(free_port)"
mkdir -p "$WORK/in" "$WORK/out" "$WORK/fc"
echo "first line" > "$WORK/in/app.log"
cat > "$WORK/agent.properties" <<EOF
a1.sources = nc tail web
a1.channels = mem file
a1.sinks = roll log

a1.sources.nc.type = netcat
a1.sources.nc.bind = 127.0.0.1
a1.sources.nc.port = $NC_PORT
a1.sources.nc.channels = mem

a1.sources.tail.type = TAILDIR
a1.sources.tail.filegroups = f1
a1.sources.tail.filegroups.f1 = $WORK/in/.*\.log
a1.sources.tail.positionFile = $WORK/taildir_position.json
a1.sources.tail.channels = file

a1.sources.web.channels = mem
a1.sources.web.type = http
a1.sources.web.port = $HTTP_PORT
a1.sources.web.bind = 127.0.0.1

a1.channels.mem.type = memory
a1.channels.file.type = file
a1.channels.file.checkpointDir = $WORK/fc/checkpoint
a1.channels.file.dataDirs = $WORK/fc/data

a1.sinks.roll.type = file_roll
a1.sinks.roll.channel = mem
a1.sinks.roll.sink.directory = $WORK/out
a1.sinks.log.type = logger
a1.sinks.log.channel = file
EOF

valgrind --tool=callgrind --demangle=no --callgrind-out-file="$WORK/callgrind.out" \
  "$BIN" agent -n a1 -f "$WORK/agent.properties" > "$WORK/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 600); do
  if (echo > "/dev/tcp/127.0.0.1/$NC_PORT") 2>/dev/null && (echo > "/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null; then
    break
  fi
  sleep 0.1
done
python3 - "$NC_PORT" "$HTTP_PORT" <<'EOF'
import socket, sys, urllib.request
nc, http = int(sys.argv[1]), int(sys.argv[2])
with socket.create_connection(("127.0.0.1", nc)) as s:
    s.sendall(b"".join(b"netcat line %d\n" % i for i in range(100)))
    s.recv(64)
body = b'[{"headers": {"h": "v"}, "body": "http event"}]'
req = urllib.request.Request(f"http://127.0.0.1:{http}/", data=body, headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=30).read()
EOF
for i in $(seq 100); do echo "tailed line $i"; done >> "$WORK/in/app.log"
# Long enough for the idle timers (file_roll's roll check, the config watcher, the file
# channel's checkpoint) to run under valgrind's slowdown.
sleep 40
kill -INT "$AGENT"
wait "$AGENT" || true
AGENT=

grep -oE '^c?fn=\([0-9]+\) .*' "$WORK/callgrind.out" | sed -E 's/^c?fn=\([0-9]+\) //' | sort -u > "$WORK/ran.txt"
mkdir -p link
nm --defined-only "$BIN" | awk '$2 ~ /^[tTwW]$/ { print $1, $3 }' | sort \
  | awk 'NR == FNR { ran[$1] = 1; next } ($2 in ran) { print $2 }' "$WORK/ran.txt" - \
  | awk '!seen[$0]++' > link/symbol-order.txt
echo "link/symbol-order.txt: $(wc -l < link/symbol-order.txt) functions" >&2
