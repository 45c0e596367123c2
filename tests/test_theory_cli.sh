#!/usr/bin/env bash
# test_theory_cli.sh — `wick theory`: the critical point and class of every
# activation (docs/theory.md §12) through --critical --json, the table, several inputs,
# errors and --help.  Uses $WICK (tests/run.sh exports it).
set -u
WICK=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
. "$(dirname "$0")/check.sh"

# JSON field checks with python3 (the JSON line is the last line of stdout)
jcheck() {  # name, json, python expression over j that must be True
    if printf '%s' "$2" | /usr/bin/python3 -c "import json,sys,math; j=json.loads(sys.stdin.read()); sys.exit(0 if ($3) else 1)"; then
        good "$1"; else bad "$1: $3"; fi
}

# name cb cw class (docs/theory.md §12; leaky ReLU at slope 0.1: 2/1.01)
while read -r act cb cw cls; do
    out=$("$WICK" theory --act "$act" --critical --json --depth 3 2>"$T/err")
    rc=$?
    [ $rc -eq 0 ] || { bad "$act: exit code $rc: $(cat "$T/err")"; continue; }
    j=$(printf '%s\n' "$out" | tail -n 1)
    if [ "$cls" = none ]; then
        jcheck "$act: no critical point" "$j" "j['critical']['class'] == 'none' and j['critical']['cb'] is None and 'no critical point for $act' in j['critical']['message']"
    else
        jcheck "$act: critical ($cb, $cw), class $cls" "$j" "j['critical']['class'] == '$cls' and abs(j['critical']['cb'] - $cb) < 1e-12 and abs(j['critical']['cw'] - ($cw)) < 1e-12 and abs(j['cw'] - ($cw)) < 1e-12"
    fi
done <<'LIST'
linear 0 1 scale-invariant
relu 0 2 scale-invariant
leaky_relu:0.1 0 2/1.01 scale-invariant
tanh 0 1 K*=0
sin 0 1 K*=0
sigmoid - - none
softplus - - none
perceptron - - none
LIST
for act in swish gelu; do
    j=$("$WICK" theory --act $act --critical --json --depth 2 | tail -n 1)
    jcheck "$act: half-stable, C_b > 0, C_W just below 2" "$j" "j['critical']['class'] == 'half-stable' and j['critical']['cb'] > 0 and 1.9 < j['critical']['cw'] < 2"
done

# the K*=0 class's power law, and per-layer arrays
out=$("$WICK" theory --act tanh --critical --depth 4)
printf '%s\n' "$out" | grep -q "power law: K(l) ~ 0.5 \* l^-1" && good "tanh power law printed" || bad "tanh power law: $out"
j=$("$WICK" theory --act relu --critical --depth 5 --json | tail -n 1)
jcheck "relu: per-layer K, chi, V = 5(l-1)K^2, ntk" "$j" "len(j['K']) == 5 and all(abs(k - 2) < 1e-12 for k in j['K']) and all(abs(c - 1) < 1e-12 for c in j['chi_par'] + j['chi_perp']) and all(abs(j['V'][l] - 5 * l * 4) < 1e-9 for l in range(5)) and len(j['ntk']) == 5"
# the order-1/n tensors (docs/theory-finite-width.md): ReLU at criticality, K = 2, lambda = 1,
# by the recursions: A = 13, 61; B = 8, 40; D = 14, 42; F = 8, 24; K1 = Theta1 = 0
j=$("$WICK" theory --act relu --depth 3 --json | tail -n 1)
jcheck "relu: order-1/n tensors per layer" "$j" "j['A'] == [0, 13, 61] and j['B'] == [0, 8, 40] and j['D'] == [0, 14, 42] and j['F'] == [0, 8, 24] and j['K1'] == [0, 0, 0] and j['ntk1'] == [0, 0, 0]"
# the dNTK's P, Q (ch. 11): P = 2 Theta + P + F/2, Q = 4 Theta + Q + F
jcheck "relu: dNTK-preactivation P, Q per layer" "$j" "j['P'] == [0, 4, 16] and j['Q'] == [0, 8, 32]"
# the ddNTK means (ch. 11): sigma'' = 0 a.e., so R = U = 0, S = Theta^2 + B/2 + S, T = Theta + F/4 + Q/2 + T
jcheck "relu: ddNTK means R, S, T, U per layer" "$j" "j['R'] == [0, 0, 0] and j['S'] == [0, 4, 24] and j['T'] == [0, 2, 12] and j['U'] == [0, 0, 0]"
j=$("$WICK" theory --act tanh --depth 3 --json | tail -n 1)
jcheck "tanh: K1 first non-zero at layer 3, negative" "$j" "j['K1'][1] == 0 and j['K1'][2] < -0.03 and len(j['F']) == 3"
j=$("$WICK" theory --act perceptron --depth 3 --json | tail -n 1)
jcheck "perceptron: derivative quantities are null" "$j" "all(v is None for v in j['chi_par'] + j['chi_perp'] + j['V'] + j['ntk']) and abs(j['K'][1] - 0.5) < 1e-15"

# the readable table
out=$("$WICK" theory --act relu --depth 3 --width 64)
printf '%s\n' "$out" | grep -qE '^ *layer +K +chi_par +chi_perp +V/\(nK\^2\) +Theta' && \
printf '%s\n' "$out" | grep -qE '^ +3 +2 +1 +1 +0\.15625 +6$' && good "table (V/(nK^2) = 10/64 at layer 3)" || bad "table: $out"
out=$("$WICK" theory --act perceptron --depth 2)
printf '%s\n' "$out" | grep -q "n/a" && good "perceptron table says n/a" || bad "perceptron table: $out"

# several inputs from a CSV: Gram matrices per layer, the two-input vertex
printf '1,0,1\n0.5,1,-1\n' > "$T/in.csv"
j=$("$WICK" theory --act relu --depth 3 --inputs "$T/in.csv" --json | tail -n 1)
jcheck "two inputs: K and ntk matrices, V 4x4" "$j" "len(j['K']) == 3 and len(j['K'][0]) == 2 and abs(j['K'][0][0][1] - 2 * (0.5 - 1) / 3) < 1e-12 and len(j['V'][2]) == 4 and len(j['ntk'][1][0]) == 2"
jcheck "two inputs: the subleading kernel K1, 2x2 per layer, ReLU's diagonal 0, off-diagonal first at layer 3" "$j" "len(j['K1']) == 3 and j['K1'][1] == [[0, 0], [0, 0]] and j['K1'][2][0][0] == 0 and j['K1'][2][0][1] < 0 and j['K1'][2][0][1] == j['K1'][2][1][0]"
jcheck "two inputs: the NTK's ntk1 (2x2) and A, B, D, F (4x4) per layer, the first input's (q = 2/3) diagonal B = 2 Theta^2 at layer 2, D = 20 at layer 3 as for one input" "$j" "len(j['ntk1'][2]) == 2 and len(j['A'][2]) == 4 and len(j['F'][1][3]) == 4 and j['A'][0][0][0] == 0 and abs(j['B'][1][0][0] - 2 * j['ntk'][0][0][0] ** 2) < 1e-9 and abs(j['D'][2][0][0] - 20) < 1e-9"
jcheck "two inputs: the dNTK's P, Q and their pathwise forms (4x4 per layer, row 2 a0 + a1), 0 at layer 1; the first input's (q = 2/3) P = 20/9, Q = 40/9 at layer 2 as for one input (lambda_W C_W Theta <s^2 s'^2>)" "$j" "len(j['P'][2]) == 4 and len(j['Q_pathwise'][2][3]) == 4 and j['P'][0][0][0] == 0 and abs(j['P'][1][0][0] - 20 / 9) < 1e-9 and abs(j['Q'][1][0][0] - 40 / 9) < 1e-9 and abs(j['P_pathwise'][1][0][0] - 20 / 9) < 1e-9"
jcheck "two inputs: the ddNTK means R, S, T, U (4x4 per layer, row 2 a0 + a1), 0 at layer 1; the first input's (q = 2/3, Theta = 5/3, K = 4/3) S = lambda C_W Theta^2 <s'^4> = 25/9 and T = Theta lambda^2 <s^2 s'^2> = 10/9 at layer 2 as for one input, R = U = 0 (ReLU, pathwise)" "$j" "len(j['R'][2]) == 4 and len(j['U'][2][3]) == 4 and j['S'][0][1][2] == 0 and abs(j['S'][1][0][0] - 25 / 9) < 1e-9 and abs(j['T'][1][0][0] - 10 / 9) < 1e-9 and j['R'][2][0][0] == 0 and j['U'][2][1][2] == 0"
printf '1,0\n0,1\n1,1\n' > "$T/in3.csv"
j=$("$WICK" theory --act tanh --depth 2 --inputs "$T/in3.csv" --json | tail -n 1)
jcheck "three inputs: 3x3 matrices" "$j" "len(j['K'][1]) == 3 and len(j['chi_par'][1]) == 3 and abs(j['K'][1][0][1] - j['K'][1][1][0]) == 0"

# plot
if command -v gnuplot >/dev/null 2>&1; then
    rm -f "$T/flow.png"
    "$WICK" theory --act tanh --depth 6 --plot "$T/flow.png" >/dev/null && [ -s "$T/flow.png" ] && good "--plot writes a PNG" || bad "--plot"
else
    skip "--plot: gnuplot not installed"
fi

# errors: one line, exit 1 for invalid input, 2 for bad usage
expect_err() {  # name, exit code, message substring, args...
    local name=$1 code=$2 msg=$3; shift 3
    "$WICK" theory "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc -eq "$code" ] && grep -q -- "$msg" "$T/err" && [ "$(wc -l <"$T/err")" -eq 1 ]; then good "$name"
    else bad "$name: exit $rc, stderr: $(cat "$T/err")"; fi
}
expect_err "unknown activation is a usage error" 2 "unknown activation 'relux'" --act relux
expect_err "negative variance" 1 "C_b = -1" --cb -1
expect_err "negative C_W" 1 "C_W = -2" --cw -2
expect_err "depth 0 is a usage error" 2 "wick theory: --depth expects an integer in" --depth 0
expect_err "negative norm" 1 "q = |x|^2/n0 = -1" --q -1
expect_err "missing inputs file" 1 "cannot open" --inputs "$T/nonexistent.csv"
expect_err "junk number" 2 "expects a finite number" --cw abc
expect_err "unknown flag" 2 "unknown or incomplete flag" --frobnicate
expect_err "stray argument" 2 "unexpected argument" relu

# --help lists every flag with its default
out=$("$WICK" theory --help); rc=$?
miss=""
for flag in --act --cb --cw --depth --width --lambda-b --lambda-w --q --inputs --critical --json --plot --help; do
    printf '%s\n' "$out" | grep -q -- "$flag" || miss="$miss $flag"
done
[ $rc -eq 0 ] && [ -z "$miss" ] && printf '%s\n' "$out" | grep -q "default 128" && good "--help lists every flag" || bad "--help: missing$miss"

finish
