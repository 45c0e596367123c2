#!/usr/bin/env bash
# test_theory_residual_cli.sh — `wick theory --residual XI`: the residual
# critical point ((1 - xi^2)/gamma^2 times the MLP's), the vertex table and
# its JSON against the closed forms of docs/theory-residual.md, and the
# refusals.  Uses $WICK (tests/run.sh exports it).
set -u
WICK=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
. "$(dirname "$0")/check.sh"

jcheck() {  # name, json, python expression over j that must be True
    if printf '%s' "$2" | /usr/bin/python3 -c "import json,sys,math; j=json.loads(sys.stdin.read()); sys.exit(0 if ($3) else 1)"; then
        good "$1"; else bad "$1: $3"; fi
}

# ReLU, xi = 0.6, gamma = 0.8: C_W = 2 (1 - 0.36)/0.64 = 2; layer 2 V/K^2 =
# (1 - xi^2)(5 - xi^2) = 2.9696 exactly (the closure is exact at layer 2);
# the MLP beside it 5 (l - 1); K constant at criticality
out=$("$WICK" theory --residual 0.6 --gamma 0.8 --act relu --depth 6 --json 2>"$T/err")
rc=$?
[ $rc -eq 0 ] || bad "relu residual: exit code $rc: $(cat "$T/err")"
j=$(printf '%s\n' "$out" | tail -n 1)
jcheck "relu residual critical C_W" "$j" "abs(j['residual']['critical_cw'] - 2.0) < 1e-14 and j['residual']['critical_cb'] == 0 and abs(j['cw'] - 2.0) < 1e-14"
jcheck "relu residual layer-2 vertex" "$j" "abs(j['residual']['V'][1] / j['residual']['K'][1]**2 - 0.64 * 4.64) < 1e-12 and j['residual']['V'][0] == 0"
jcheck "relu residual: K constant, chi = 1" "$j" "all(abs(k - 2.0) < 1e-13 for k in j['residual']['K']) and all(abs(c - 1) < 1e-13 for c in j['residual']['chi_par'])"
jcheck "relu residual: modes beyond the closure at layer 6" "$j" "j['residual']['V'][5] > 1.1 * j['residual']['V_closure'][5]"
jcheck "relu MLP beside it: 5 (l - 1) K^2" "$j" "abs(j['residual']['V_plain'][5] - 25 * 4.0) < 1e-10"
jcheck "relu: the book's r* (nu = 5, one output)" "$j" "abs(j['residual']['rstar_plain'] - 4 / 23 / 5) < 1e-12 and abs(j['residual']['nu_plain'] - 5) < 1e-12 and j['residual']['nu'] > 0"
printf '%s\n' "$out" | grep -q "vertex growth" && good "growth line printed" || bad "no growth line"

# xi^2 >= 1: no critical point, said so, exit 0; gamma <= 0 and --inputs: usage errors
out=$("$WICK" theory --residual 1.0 --depth 3 2>&1)
[ $? -eq 0 ] && printf '%s' "$out" | grep -q "none (xi^2 >= 1" && good "xi = 1: no critical point" || bad "xi = 1: $out"
"$WICK" theory --residual 0.5 --gamma 0 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "gamma" "$T/err" && good "gamma 0 refused" || bad "gamma 0: $(cat "$T/err")"
printf '1,0\n0,1\n' > "$T/res_in.csv"
"$WICK" theory --residual 0.5 --inputs "$T/res_in.csv" >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "one input" "$T/err" && good "--inputs refused" || bad "--inputs: $(cat "$T/err")"
"$WICK" theory --residual 0.5 --act perceptron >/dev/null 2>"$T/err"
[ $? -ne 0 ] && grep -q "perceptron" "$T/err" && good "perceptron refused" || bad "perceptron: $(cat "$T/err")"
finish
