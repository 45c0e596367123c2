#!/usr/bin/env bash
# bench/ci_time.sh [OLD] — the CI's time (`CI=true bash .ci/run`: scripts/test.sh, three builds
# and the suite under each) with this commit's test runner against the one-at-a-time runner,
# on the same suite: a fresh clone of HEAD as it is ("new"), and one whose runner files
# (scripts/test.sh, tests/run.sh, and the sanitizer short forms: tests/check.h,
# test_theory_bayes.c, test_theory_ddntk2.c) are OLD's ("old", default 737deac, the commit
# before them).  Runs old, new, new, old (ABBA, so that a drift in the machine's load falls on
# both) and prints each run's wall and CPU seconds and its phases.  The CI is a quiet 2-core
# machine; each run takes 7 to 15 minutes there.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
old=${1:-737deac}
files="scripts/test.sh tests/run.sh tests/check.h tests/test_theory_bayes.c tests/test_theory_ddntk2.c"
out=$(mktemp -d /tmp/wick-ci-time.XXXXXX)
n=0
for which in old new new old; do
    n=$((n + 1))
    d=$out/$n-$which
    git clone -q "$repo" "$d" || exit 1
    if [ $which = old ]; then
        for f in $files; do git -C "$d" show "$old:$f" >"$d/$f" || exit 1; done
    fi
    (cd "$d" && CI=true /usr/bin/time -f "TIME %e s wall, %U+%S s cpu" bash .ci/run >"$d.log" 2>&1)
    rc=$?
    echo "== $which (HEAD $(git -C "$d" log --oneline -1 | cut -c1-50)...): exit $rc"
    grep -E '^== make|^\((build|tests|all)|^total:|^TIME ' "$d.log"
    rm -rf "$d"
done
echo "logs: $out/*.log"
