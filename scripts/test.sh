#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs
# formatting and lint checks, unit tests and the integration tests (real binary, real
# sockets, real files, a real JVM for the java.util.Properties comparison).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# Waits for a server built in the background (NAME PID LOG); no PID: nothing was built.
wait_build() {
  [ -n "$2" ] || return 0
  step "waiting for the $1 build"
  if ! wait "$2"; then
    tail -n 40 "$3"
    echo "building $1 failed" >&2
    exit 1
  fi
}

need_apt=()
command -v javac >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# The file channel's durability-order test traces the agent (tests/file_channel_crash.rs).
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
# `flumen top` is tested in a real terminal (tests/top.rs).
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
# librdkafka is built from the rdkafka crate's sources (the Kafka components): cmake, and the
# system OpenSSL and zlib it links.
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need_apt+=(zlib1g-dev)
# librdkafka 2.12 includes <curl/curl.h> under `#ifdef WITH_OAUTHBEARER_OIDC`, which its CMake
# build defines as 0: the header must exist even though curl is not linked (WITH_CURL=0).
dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || need_apt+=(libcurl4-openssl-dev)
# The hdfs sink's compressed files are checked with the standard tools.
for tool in gzip bzip2 zstd; do command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool"); done
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# Independent decoders for the codec and crypto cross-checks (tests/interceptors_codec.rs)
# and the independent Avro RPC peer (tests/avro_interop.rs).
if ! python3 -c 'import cryptography, zstandard, lz4, cramjam, avro.io' >/dev/null 2>&1; then
  step "installing Python cross-check packages"
  python3 -m pip install --quiet --disable-pip-version-check cryptography zstandard lz4 cramjam avro
fi

# The Kafka tests' independent client (tests/interop/kafka_peer.py).
if ! python3 -c 'import confluent_kafka' >/dev/null 2>&1; then
  step "installing confluent-kafka"
  python3 -m pip install --quiet --disable-pip-version-check confluent-kafka
fi

# The Kafka tests' broker: tansu (Kafka's wire protocol, in Rust; ../shared/components.md).
# It takes minutes to build, so it builds in the background, at a low priority, while the
# rest of the suite runs, and the broker tests run last. A debug build: it compiles in about
# two thirds of the CPU time of a release build and is fast enough for the tests (the
# benchmark, scripts/bench_kafka.py, is run against a release build).
tansu_log="$(mktemp)"
tansu_pid=""
if [ -z "${TANSU_BIN:-}" ] && ! command -v tansu >/dev/null 2>&1; then
  step "building the tansu broker in the background (log: $tansu_log)"
  nice -n 15 cargo install tansu --locked --features libsql --debug >"$tansu_log" 2>&1 &
  tansu_pid=$!
fi

# The hdfs sink's S3 tests' server: s3s-fs (../shared/components.md), which keeps objects as
# files, so a stop and restart keeps them. Built in the background like tansu (a debug
# build: it compiles faster and is fast enough for the tests).
s3s_log="$(mktemp)"
s3s_pid=""
if [ -z "${S3S_FS_BIN:-}" ] && ! command -v s3s-fs >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
  step "building the s3s-fs server in the background (log: $s3s_log)"
  nice -n 15 cargo install s3s-fs@0.14.1 --locked --features binary --debug >"$s3s_log" 2>&1 &
  s3s_pid=$!
fi

# Hadoop's own SequenceFile reader and codecs on a JVM (tests/interop/hadoop_read.sh): the
# Hadoop 3.3.4 client jars, taken from PyPI's pyspark source package (~320 MB download,
# 51 MB kept).
if ! bash tests/interop/hadoop_read.sh check; then
  step "fetching Hadoop's client jars"
  bash tests/interop/hadoop_read.sh install
fi
export HADOOP_INTEROP_REQUIRED=1

# The JVM Properties comparison and the Python cross-checks must run here, never be skipped.
export FLUMEN_REQUIRE_JVM=1
export FLUMEN_REQUIRE_PY=1
# Likewise the strace durability-order test and the low-disk test on a tmpfs (needs root).
export FLUMEN_REQUIRE_STRACE=1
export FLUMEN_REQUIRE_MOUNT=1
# And the dashboard test in tmux.
export FLUMEN_REQUIRE_TMUX=1
# And the Kafka tests against the real broker.
export FLUMEN_REQUIRE_KAFKA=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --release --workspace --all-targets -- -D warnings

step "cargo check --no-default-features (the build without its connectors still compiles)"
cargo check --release --no-default-features

step "cargo test (release: integration tests run the optimised binary)"
cargo test --release --workspace -- --skip kafka_live_ --skip s3_live_

wait_build s3s-fs "$s3s_pid" "$s3s_log"
export PATH="$HOME/.cargo/bin:$PATH"
export FLUMEN_REQUIRE_S3=1

step "cargo test: the hdfs sink against a real S3-compatible server"
cargo test --release --test hdfs s3_live_

wait_build tansu "$tansu_pid" "$tansu_log"

step "cargo test: Kafka against a real broker"
cargo test --release --test kafka
