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
# small_csv FILE [SEED]: 400 rows of a 4-class problem, the label first, then 6 N(0, 1) features
small_csv() {
    python3 - "$1" "${2:-1}" <<'PY'
import sys, random
random.seed(int(sys.argv[2]))
with open(sys.argv[1], "w") as f:
    for i in range(400):
        x = [random.gauss(0, 1) for _ in range(6)]
        f.write(f"{int(x[0] + x[1] > 0) + 2 * int(x[2] > 0)}," + ",".join(f"{v:.6f}" for v in x) + "\n")
PY
}
finish() { echo "RESULT $pass $fail $skip"; [ $fail = 0 ]; }
