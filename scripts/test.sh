#!/usr/bin/env bash
# Install what is missing, build, and run every test three times: the optimised build, the
# same suite under gcc's AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/), and
# under clang's UndefinedBehaviorSanitizer with local array bounds (build-ubsan/).  Ends with
# "total: N passed, N failed, N skipped" over the runs; exits non-zero if anything failed.
# While one build's tests run, the next build compiles at the lowest priority (nice 19): it
# takes the CPU time the tests leave idle (a process start-up, mpirun, a sleep), and little
# else.  Each phase prints its wall time.
set -u
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test || exit 1
jobs=$(nproc)
pass=0; fail=0; skip=0; rc=0
variants=("BUILD=build" "BUILD=build-asan SANITIZE=1" "BUILD=build-ubsan CC=clang SANITIZE=ubsan")
t0=$SECONDS
bpid=
for i in "${!variants[@]}"; do
    variant=${variants[$i]}
    echo "== make test $variant"
    t=$SECONDS
    if [ -z "$bpid" ]; then
        make -s -j"$jobs" $variant all >/dev/null 2>&1
    else
        wait "$bpid"
    fi || { echo "build failed ($variant)"; make -s $variant all 2>&1 | tail -20; exit 1; }
    if [ -z "$bpid" ]; then echo "(build: $((SECONDS - t)) s)"; else echo "(build: $((SECONDS - t)) s after the last tests)"; fi
    bpid=
    if [ $((i + 1)) -lt ${#variants[@]} ]; then
        nice -n 19 make -s -j"$jobs" ${variants[$((i + 1))]} all >/dev/null 2>&1 &
        bpid=$!
    fi
    t=$SECONDS
    make -s $variant test 2>&1 | tee /tmp/wick-test.$$.log
    [ "${PIPESTATUS[0]}" = 0 ] || rc=1
    echo "(tests: $((SECONDS - t)) s)"
    set -- $(grep -E '^[0-9]+ passed, [0-9]+ failed' /tmp/wick-test.$$.log | tail -n 1 | tr -d ',')
    [ $# -ge 4 ] || { rc=1; set -- 0 passed 1 failed 0 skipped; }
    pass=$((pass + $1)); fail=$((fail + $3)); skip=$((skip + ${5:-0}))
done
rm -f /tmp/wick-test.$$.log
echo "(all: $((SECONDS - t0)) s)"
echo "total: $pass passed, $fail failed, $skip skipped"
[ $rc = 0 ] && [ $fail = 0 ]
