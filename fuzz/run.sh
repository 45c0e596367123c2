#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang and runs each for N seconds.
#   fuzz/run.sh [SECONDS] [TARGET ...]   (default: 60 s each; safetensors idx csv model resume)
#   FUZZ_RUNS=10000000 fuzz/run.sh 3600 resume   stops after that many inputs
# safetensors, idx and csv fuzz the parsers alone; model and resume the
# loaders above them (fuzz/fuzz_nn.h), linked against the whole library built
# with clang under the same sanitizers into build-fuzz/lib (about a minute).
# New interesting inputs go to build-fuzz/corpus-PARSER; a crash is written
# into fuzz/corpus/PARSER/crash-*, which the test suite then replays
# (tests/test_fuzz_corpus.c): fix the bug and keep the file.  Exits non-zero
# when any fuzzer found a crash.
# Needs Debian's clang (apt-get install clang); not needed to build wick.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
parsers=${*:-safetensors idx csv model resume}
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null || { echo "fuzz/run.sh: $CLANG not found (apt-get install clang)" >&2; exit 1; }
out=build-fuzz
mkdir -p "$out"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c11 -D_GNU_SOURCE -Iinclude -Isrc"
# what every src/io reader needs beside itself
core="src/core/alloc.c src/core/status.c src/core/dtype.c src/core/cnum.c src/io/path.c src/io/text.c"
# the whole library, for the harnesses above the parsers (object files newer
# than their source and every header are kept)
blas=/usr/lib/x86_64-linux-gnu/openblas-openmp
[ -f $blas/libopenblas.so ] && blaslink="-L$blas -Wl,-rpath,$blas" || blaslink=
build_lib() {
    mkdir -p "$out/lib"
    local newest
    newest=$(ls -t include/*.h src/*/*.h | head -n 1)
    for f in src/*/*.c; do
        o="$out/lib/$(echo "${f%.c}" | tr / _).o"
        [ "$o" -nt "$f" ] && [ "$o" -nt "$newest" ] || echo "$f $o"
    done | xargs -r -P "$(nproc)" -n 2 sh -c '$0 '"$flags"' -fsanitize=fuzzer-no-link -fopenmp -march=native -fno-math-errno -c "$1" -o "$2"' "$CLANG" || return 1
    for o in "$out"/lib/*.o; do   # objects of sources that are gone
        f=$(basename "$o" .o); [ -f "$(echo "$f" | sed 's|_|/|; s|_|/|').c" ] || rm -f "$o"
    done
}
crashed=
for p in $parsers; do
    case $p in
        safetensors) src=src/io/safetensors.c ;;
        idx)         src=src/io/idx.c ;;
        csv)         src="src/io/csv.c src/io/idx.c" ;;
        model|resume) src= ;;
        *) echo "fuzz/run.sh: unknown target $p" >&2; exit 2 ;;
    esac
    if [ -z "$src" ]; then
        build_lib
        $CLANG $flags -fopenmp -Ifuzz "fuzz/fuzz_$p.c" "$out"/lib/*.o -o "$out/fuzz_$p" $blaslink \
            -lopenblas -llapacke -ldnnl -ljansson -lz -lm -lpthread
    else
        $CLANG $flags "fuzz/fuzz_$p.c" $src $core -o "$out/fuzz_$p" -ljansson -lz -lm -lpthread
    fi
    mkdir -p "$out/corpus-$p"
    echo "fuzz/run.sh: fuzzing $p for ${secs}s" >&2
    # -malloc_limit_mb: no input of at most 4 KiB justifies a 64 MiB allocation
    dict=
    [ -f "fuzz/$p.dict" ] && dict="-dict=fuzz/$p.dict"
    runs=
    [ -n "${FUZZ_RUNS:-}" ] && runs="-runs=$FUZZ_RUNS"
    "$out/fuzz_$p" -max_total_time="$secs" $runs -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=64 $dict \
        -artifact_prefix="fuzz/corpus/$p/" -print_final_stats=1 "$out/corpus-$p" "fuzz/corpus/$p" ||
        { echo "fuzz/run.sh: $p: the fuzzer failed (a crash: see fuzz/corpus/$p/crash-*)" >&2; crashed="$crashed $p"; }
done
[ -z "$crashed" ] || { echo "fuzz/run.sh: crashes in:$crashed" >&2; exit 1; }
