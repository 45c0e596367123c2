# check.sh — the shell tests' harness (the counterpart of check.h): source it,
# call ok/expect (or good/bad/skip), end with `finish`, which prints "RESULT passed failed skipped".
pass=0; fail=0; skip=0
# ok STATUS DESCRIPTION: a check passed when STATUS is 0
ok() { if [ "$1" = 0 ]; then pass=$((pass+1)); echo "ok     $2" >&2; else fail=$((fail+1)); echo "not ok $2" >&2; echo "  FAIL $2" >&2; fi; }
# expect CODE NEEDLE DESCRIPTION -- command...: exit code CODE and NEEDLE in its output
expect() {
    local code=$1 needle=$2 what=$3; shift 4
    local out rc
    out=$("$@" 2>&1); rc=$?
    [ "$rc" = "$code" ] && { [ -z "$needle" ] || grep -q -- "$needle" <<<"$out"; }
    local r=$?
    [ $r != 0 ] && echo "  got exit $rc: $(tail -n 3 <<<"$out")" >&2
    ok $r "$what"
}
# good DESCRIPTION / bad DESCRIPTION: a check that passed / failed
good() { ok 0 "$1"; }
bad() { ok 1 "$1"; }
# skip DESCRIPTION: a check that cannot run here (run.sh shows the reason)
skip() { skip=$((skip+1)); echo "  SKIP $1" >&2; }
finish() { echo "RESULT $pass $fail $skip"; [ $fail = 0 ]; }
