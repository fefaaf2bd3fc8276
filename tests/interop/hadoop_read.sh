#!/usr/bin/env bash
# Reads files with Hadoop's own Java code, for interop tests of the HDFS sink's writers.
#
#   hadoop_read.sh install          fetch Hadoop 3.3.4 client jars (from PyPI's pyspark sdist)
#   hadoop_read.sh FILE             Hadoop's `fs -text FILE`: SequenceFile records as
#                                   key<TAB>value.toString(), codec files decompressed by extension
#   hadoop_read.sh seq FILE         SequenceFile header, then key<TAB>hex(value bytes) per record
#   hadoop_read.sh codec FILE [CLS] decompress FILE with Hadoop's codec for its extension (or CLS)
#   hadoop_read.sh java ARGS...     run HadoopInterop (see HadoopInterop.java) with ARGS
#   hadoop_read.sh check            exit 0 if java, javac and the jars are there
#
# Jars live in $HADOOP_INTEROP_HOME (default ~/.cache/hadoop-interop). Pure Java reads
# SequenceFiles (NONE/RECORD/BLOCK), gzip, bzip2, deflate, snappy (snappy-java) and lz4
# (lz4-java); zstd needs native libhadoop and fails here.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HOME_DIR="${HADOOP_INTEROP_HOME:-$HOME/.cache/hadoop-interop}"
JARS="$HOME_DIR/jars"
PYSPARK_VERSION=3.5.8 # ships hadoop-client-api/runtime 3.3.4, snappy-java, lz4-java

install() {
    mkdir -p "$JARS"
    local tmp
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN
    pip download --no-cache-dir --no-deps --no-binary :all: "pyspark==$PYSPARK_VERSION" -d "$tmp" >&2
    local prefix="pyspark-$PYSPARK_VERSION/deps/jars"
    tar -xzf "$tmp/pyspark-$PYSPARK_VERSION.tar.gz" -C "$JARS" --strip-components=3 --wildcards \
        "$prefix/hadoop-client-api-*.jar" "$prefix/hadoop-client-runtime-*.jar" \
        "$prefix/snappy-java-*.jar" "$prefix/lz4-java-*.jar" \
        "$prefix/slf4j-api-*.jar" "$prefix/commons-logging-*.jar"
}

have() {
    command -v java >/dev/null && command -v javac >/dev/null &&
        compgen -G "$JARS/hadoop-client-api-*.jar" >/dev/null &&
        compgen -G "$JARS/hadoop-client-runtime-*.jar" >/dev/null
}

# Compiles HadoopInterop.java when the class is missing or older than the source; writes an
# empty core-site.xml, which Hadoop's Configuration insists on finding on the classpath.
prepare() {
    mkdir -p "$HOME_DIR/conf"
    # Tests run this script in parallel: every file is made aside and renamed into place, so a
    # concurrent run sees all of it or none of it.
    if [ ! -f "$HOME_DIR/conf/core-site.xml" ]; then
        local conf
        conf="$(mktemp "$HOME_DIR/conf/.core-site.XXXXXX")"
        printf '<?xml version="1.0"?>\n<configuration></configuration>\n' >"$conf"
        mv -f "$conf" "$HOME_DIR/conf/core-site.xml"
    fi
    # Classes live in a directory named by the source's hash: a changed source compiles anew.
    local classes
    classes="$HOME_DIR/classes-$(sha256sum "$HERE/HadoopInterop.java" | cut -c1-16)"
    if [ ! -f "$classes/HadoopInterop.class" ]; then
        local tmp
        tmp="$(mktemp -d "$HOME_DIR/.classes.XXXXXX")"
        javac -nowarn -cp "$JARS/*" -d "$tmp" "$HERE/HadoopInterop.java" 2>&1 |
            grep -v '^Note:' >&2 || true
        # The loser of a race to rename drops its copy.
        if [ ! -f "$tmp/HadoopInterop.class" ] || ! mv -T "$tmp" "$classes" 2>/dev/null; then
            rm -rf "$tmp"
        fi
    fi
    CP="$classes:$HOME_DIR/conf:$JARS/*"
}

run_java() {
    # slf4j has no provider on this classpath and says so on stderr; drop those lines only.
    java -cp "$CP" "$@" 2> >(grep -v '^SLF4J:' >&2)
}

case "${1:-}" in
install) install ;;
check) have ;;
seq)
    prepare
    run_java HadoopInterop read-seq "$2"
    ;;
codec)
    prepare
    shift
    run_java HadoopInterop read-codec "$@"
    ;;
java)
    prepare
    shift
    run_java HadoopInterop "$@"
    ;;
"")
    echo "usage: $0 install|check|FILE|seq FILE|codec FILE [CLASS]|java ARGS..." >&2
    exit 2
    ;;
*)
    prepare
    run_java org.apache.hadoop.fs.FsShell -text "file://$(realpath "$1")"
    ;;
esac
