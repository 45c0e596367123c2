#!/usr/bin/env bash
# The wick program is a client of include/wick.h: its objects need nothing from the library
# that libwick.so does not export (the internal helpers, wick_fail, wick_malloc, ..., are
# hidden there), so that it links against the installed shared library like any user program.
set -u
W=${WICK:-build/wick}
B=$(dirname "$W")
T=${WICK_TEST_TMP:-/tmp}/wick-shared.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/check.sh"

if [ ! -f "$B/libwick.so" ] || ! ls "$B"/tools/*.o >/dev/null 2>&1; then
    echo "  SKIP no $B/libwick.so or tool objects" >&2; skip=$((skip+1)); finish; exit
fi
nm -D --defined-only "$B/libwick.so" | awk '{print $3}' | sort -u > "$T/exported"
# what the program's own objects define (the commands, src/dist/)
nm --defined-only "$B"/tools/*.o $(ls "$B"/src/dist/*.o 2>/dev/null) | awk 'NF == 3 {print $3}' | sort -u > "$T/own"
sort -u "$T/exported" "$T/own" > "$T/available"
missing() { nm -u "$1" | awk '{print $2}' | grep '^wick_\|^nn_' | sort -u | comm -23 - "$T/available" | tr '\n' ' '; }
bad=""
for o in "$B"/tools/*.o; do
    m=$(missing "$o")
    [ -n "$m" ] && bad="$bad $(basename "$o"): $m"
done
[ -z "$bad" ]
ok $? "the CLI's objects use only what libwick.so exports ($bad)"
# the whole program against the shared library
others=""
for o in "$B"/tools/*.o "$B"/src/dist/*.o; do
    [ -f "$o" ] || continue
    m=$(missing "$o")
    [ -n "$m" ] && others="$others $(basename "$o"): $m"
done
if [ -n "$others" ]; then
    echo "  SKIP linking wick against libwick.so: still internal symbols in$others" >&2; skip=$((skip+1))
else
    # the library's soname is libwick.so.0, which the install makes and the build does not
    ln -sf "$(cd "$B" && pwd)/libwick.so" "$T/libwick.so.0"
    # the build's compiler and link flags (a sanitizer build's objects need its runtime)
    ${WICK_CC:-cc} -fopenmp ${WICK_LDFLAGS:-} -o "$T/wick" "$B"/tools/*.o $(ls "$B"/src/dist/*.o 2>/dev/null) -L"$B" -lwick -Wl,-rpath,"$T" \
        $(pkg-config --libs ompi-c 2>/dev/null) -ljansson -lz -lm 2>"$T/ld.err" && "$T/wick" --version | grep -q "^wick "
    r=$?
    [ $r != 0 ] && head -n 5 "$T/ld.err" >&2
    ok $r "wick links against libwick.so and runs"
fi
finish
