#!/usr/bin/env bash
# Runs every test: each binary build/tests/test_*, each script tests/test_*.sh
# and tests/test_*.py.  Each prints "RESULT passed failed skipped" last; a
# program that dies without it counts as one failure.  Ends with the line
# "N passed, N failed, N skipped" and exits non-zero when anything failed.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export WICK=$PWD/$BUILD/wick
tmp=$(mktemp -d /tmp/wick-tests.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0; skip=0; failed_names=()
run_one() {
    local name=$1; shift
    local dir=$tmp/$name; mkdir -p "$dir"
    local t0=$SECONDS
    WICK_TEST_TMP=$dir timeout 600 "$@" >"$dir.out" 2>"$dir.err"
    local rc=$? line
    line=$(grep '^RESULT ' "$dir.out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "not ok $name: died with exit code $rc and no RESULT line"; tail -n 20 "$dir.err" "$dir.out"
        fail=$((fail + 1)); failed_names+=("$name"); return
    fi
    set -- $line
    pass=$((pass + $2)); fail=$((fail + $3)); skip=$((skip + $4))
    printf '%-28s %3d passed, %d failed, %d skipped  (%ds)\n' "$name" "$2" "$3" "$4" $((SECONDS - t0))
    if [ "$3" -ne 0 ] || [ $rc -ne 0 ]; then
        grep -E 'FAIL|not ok' "$dir.err" | head -n 40
        [ "$3" -eq 0 ] && { fail=$((fail + 1)); echo "  exit code $rc"; }
        failed_names+=("$name")
    fi
    grep -E '^  SKIP' "$dir.err" | head -n 5
}
for t in "$BUILD"/tests/test_*; do [ -x "$t" ] && run_one "$(basename "$t")" "$t"; done
# on an AVX-512 CPU the products take the zmm tile: test the AVX2 one too
grep -qw avx512f /proc/cpuinfo && run_one test_kernel_avx2 env WICK_KERN_ISA=avx2 "$BUILD/tests/test_kernel"
for t in tests/test_*.sh; do [ -f "$t" ] && run_one "$(basename "$t")" bash "$t"; done
for t in tests/test_*.py; do [ -f "$t" ] && run_one "$(basename "$t")" /usr/bin/python3 "$t"; done
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
