#!/usr/bin/env bash
# Runs every test: each binary build/tests/test_*, each script tests/test_*.sh
# and tests/test_*.py.  Each prints "RESULT passed failed skipped" last; a
# program that dies without it counts as one failure.  Ends with the line
# "N passed, N failed, N skipped" and exits non-zero when anything failed.
# WICK_TEST_JOBS tests run at once (default: the core count, at most 2; 1 runs
# them one by one); the reports come in the list's order all the same.  Most
# tests leave part of a core idle (one thread, a process start-up, mpirun, a
# sleep), so on the 2-core CI two at a time take ~40% less wall time.  Tests
# that measure wall time against a bound (below) run alone.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export WICK=$PWD/$BUILD/wick
tmp=$(mktemp -d /tmp/wick-tests.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
jobs=${WICK_TEST_JOBS:-$(nproc)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
[ -z "${WICK_TEST_JOBS:-}" ] && [ "$jobs" -gt 2 ] && jobs=2
# wall-time bounds: test_idx (a gzip bomb refused in 50 ms), test_redo (steps
# with a stalled worker against steps without), test_threads (a detached run
# returns in 100 ms, an idle pool's CPU time)
alone=" test_idx test_redo test_threads "
pass=0; fail=0; skip=0; failed_names=()
# run_one NAME COMMAND...: runs one test, writes its report to $tmp/NAME.report
# and "passed failed skipped bad" to $tmp/NAME.count (last: it marks the end)
run_one() {
    local name=$1; shift
    local dir=$tmp/$name; mkdir -p "$dir"
    local t0=$SECONDS p=0 f=0 s=0 bad=0
    WICK_TEST_TMP=$dir timeout 600 "$@" >"$dir.out" 2>"$dir.err"
    local rc=$? line
    line=$(grep '^RESULT ' "$dir.out" | tail -n 1)
    {
        if [ -z "$line" ]; then
            echo "not ok $name: died with exit code $rc and no RESULT line"; tail -n 20 "$dir.err" "$dir.out"
            f=1; bad=1
        else
            set -- $line
            p=$2; f=$3; s=$4
            printf '%-28s %3d passed, %d failed, %d skipped  (%ds)\n' "$name" "$p" "$f" "$s" $((SECONDS - t0))
            if [ "$f" -ne 0 ] || [ $rc -ne 0 ]; then
                grep -E 'FAIL|not ok' "$dir.err" | head -n 40
                [ "$f" -eq 0 ] && { f=1; echo "  exit code $rc"; }
                bad=1
            fi
            grep -E '^  SKIP' "$dir.err" | head -n 5
        fi
    } >"$dir.report"
    echo "$p $f $s $bad" >"$dir.count.part" && mv "$dir.count.part" "$dir.count"
}
names=(); cmds=()
add() { names+=("$1"); shift; cmds+=("$(printf '%q ' "$@")"); }
for t in "$BUILD"/tests/test_*; do [ -x "$t" ] && add "$(basename "$t")" "$t"; done
# on an AVX-512 CPU the products take the zmm tile: test the AVX2 one too
grep -qw avx512f /proc/cpuinfo && add test_kernel_avx2 env WICK_KERN_ISA=avx2 "$BUILD/tests/test_kernel"
# and oneDNN's convolutions take nChw16c, where the conv net's nChw8c paths
# stand aside: test those with oneDNN held to AVX2 (its nChw8c)
grep -qw avx512f /proc/cpuinfo && add test_conv_fastpath_avx2 env ONEDNN_MAX_CPU_ISA=AVX2 "$BUILD/tests/test_conv_fastpath"
for t in tests/test_*.sh; do [ -f "$t" ] && add "$(basename "$t")" bash "$t"; done
for t in tests/test_*.py; do [ -f "$t" ] && add "$(basename "$t")" /usr/bin/python3 "$t"; done
# print the reports that are complete, in the list's order
next=0
report() {
    local p f s bad
    while [ $next -lt ${#names[@]} ] && [ -f "$tmp/${names[$next]}.count" ]; do
        cat "$tmp/${names[$next]}.report"
        read -r p f s bad <"$tmp/${names[$next]}.count"
        pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
        [ "$bad" = 1 ] && failed_names+=("${names[$next]}")
        next=$((next + 1))
    done
}
# two at a time, the longest tests start first, so that no long one runs
# alone at the end (the reports still come in the list's order)
first=" "
[ "$jobs" -gt 1 ] && first=" test_mpi.sh test_theory_ddntk2 test_readme_commands.sh test_theory_bayes test_train_cli.sh test_train_fit.sh "
order=()
for i in "${!names[@]}"; do [[ $first == *" ${names[$i]} "* ]] && order+=("$i"); done
for i in "${!names[@]}"; do [[ $first == *" ${names[$i]} "* ]] || order+=("$i"); done
for i in "${order[@]}"; do
    if [ "$jobs" = 1 ] || [[ $alone == *" ${names[$i]} "* ]]; then
        wait
        eval "run_one ${names[$i]} ${cmds[$i]}"
    else
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
        eval "run_one ${names[$i]} ${cmds[$i]}" &
    fi
    report
done
wait
report
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
