#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang and runs each for N seconds.
#   fuzz/run.sh [SECONDS] [PARSER ...]      (default: 60 s each; safetensors idx csv)
# New interesting inputs go to build-fuzz/corpus-PARSER; a crash is written
# into fuzz/corpus/PARSER/crash-*, which the test suite then replays
# (tests/test_fuzz_corpus.c): fix the bug and keep the file.  Exits non-zero
# when any fuzzer found a crash.
# Needs Debian's clang (apt-get install clang); not needed to build wick.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
parsers=${*:-safetensors idx csv}
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null || { echo "fuzz/run.sh: $CLANG not found (apt-get install clang)" >&2; exit 1; }
out=build-fuzz
mkdir -p "$out"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c11 -D_GNU_SOURCE -Iinclude -Isrc"
core="src/core/alloc.c src/core/status.c src/core/dtype.c"
crashed=
for p in $parsers; do
    case $p in
        safetensors) src=src/io/safetensors.c ;;
        idx)         src=src/io/idx.c ;;
        csv)         src="src/io/csv.c src/io/idx.c" ;;
        *) echo "fuzz/run.sh: unknown parser $p" >&2; exit 2 ;;
    esac
    $CLANG $flags "fuzz/fuzz_$p.c" $src $core -o "$out/fuzz_$p" -ljansson -lz -lm -lpthread
    mkdir -p "$out/corpus-$p"
    echo "fuzz/run.sh: fuzzing $p for ${secs}s" >&2
    # -malloc_limit_mb: no input of at most 4 KiB justifies a 64 MiB allocation
    dict=
    [ -f "fuzz/$p.dict" ] && dict="-dict=fuzz/$p.dict"
    "$out/fuzz_$p" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=64 $dict \
        -artifact_prefix="fuzz/corpus/$p/" -print_final_stats=1 "$out/corpus-$p" "fuzz/corpus/$p" ||
        { echo "fuzz/run.sh: $p: the fuzzer failed (a crash: see fuzz/corpus/$p/crash-*)" >&2; crashed="$crashed $p"; }
done
[ -z "$crashed" ] || { echo "fuzz/run.sh: crashes in:$crashed" >&2; exit 1; }
