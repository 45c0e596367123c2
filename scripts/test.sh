#!/usr/bin/env bash
# Install what is missing, build, and run every test twice: the optimised build, then the
# same suite under AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/).  Ends with
# "total: N passed, N failed, N skipped" over both runs; exits non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test || exit 1
jobs=$(nproc)
pass=0; fail=0; skip=0; rc=0
for variant in "BUILD=build" "BUILD=build-asan SANITIZE=1"; do
    echo "== make test $variant"
    make -s -j"$jobs" $variant all >/dev/null || { echo "build failed ($variant)"; exit 1; }
    make -s $variant test 2>&1 | tee /tmp/wick-test.$$.log
    [ "${PIPESTATUS[0]}" = 0 ] || rc=1
    set -- $(grep -E '^[0-9]+ passed, [0-9]+ failed' /tmp/wick-test.$$.log | tail -n 1 | tr -d ',')
    [ $# -ge 4 ] || { rc=1; set -- 0 passed 1 failed 0 skipped; }
    pass=$((pass + $1)); fail=$((fail + $3)); skip=$((skip + ${5:-0}))
done
rm -f /tmp/wick-test.$$.log
echo "total: $pass passed, $fail failed, $skip skipped"
[ $rc = 0 ] && [ $fail = 0 ]
