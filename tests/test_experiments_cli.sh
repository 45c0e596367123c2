#!/usr/bin/env bash
# wick ensemble / ntk / sweep / kernel / gd from the command line: --help lists
# every flag, usage errors, --json keys and values against the theory, plots,
# thread-count independence, small Fashion-MNIST runs.
set -u
W=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
FM=/usr/share/datasets/fashion-mnist
. "$(dirname "$0")/check.sh"
# pyjson FILE EXPR: evaluates a Python expression over j = the last line's JSON
pyjson() { /usr/bin/python3 -c "import json,sys,math; j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); sys.exit(0 if ($2) else 1)" "$1"; }

# --help: every flag with its default
for c in ensemble ntk sweep kernel gd; do
    expect 0 "--help" "$c --help" -- $W $c --help
done
out=$($W ensemble --help)
for f in --act --cb --cw --width --depth --samples --seed --q --inputs --threads --json --plot; do
    grep -q -- "$f" <<<"$out" || { echo "  ensemble --help lacks $f" >&2; fail=$((fail+1)); }
done
expect 0 "ensemble" "wick --help lists ensemble" -- $W --help
expect 2 "expects an integer" "bad width is a usage error" -- $W ensemble --width x
expect 2 "expects an integer" "width 1 is a usage error" -- $W ensemble --width 1
expect 2 "" "unknown flag" -- $W sweep --frobnicate
expect 2 "unknown activation" "unknown activation is a usage error" -- $W ensemble --act foo
expect 1 "No such file\|cannot open" "missing inputs file" -- $W ensemble --inputs "$T/none.csv"
expect 2 "comma" "bad depth list" -- $W ntk --depth 4,x
expect 1 "not found" "gd: missing data directory" -- $W gd --data "$T/nowhere"

# deep linear (docs/theory.md §5): JSON keys, exact value within 4 s.e., 1.2x rejected
$W ensemble --act linear --width 16 --depth 4 --samples 20000 --seed 5 --json > "$T/lin.json" 2>/dev/null
ok $? "ensemble deep linear runs"
pyjson "$T/lin.json" "all(k in j for k in ['kernel','kernel_theory','kernel_stderr','connected4','connected4_theory','connected4_stderr','connected4_exact','pair4','pair4_theory'])"
ok $? "ensemble --json has the per-layer keys"
pyjson "$T/lin.json" "abs(j['connected4'][3]-j['connected4_exact'][3]) < 4*j['connected4_stderr'][3] and abs(j['connected4'][3]-1.2*j['connected4_exact'][3]) > 4*j['connected4_stderr'][3]"
ok $? "deep linear four-point: exact within 4 s.e., 1.2x exact rejected"
pyjson "$T/lin.json" "abs(j['connected4_exact'][3] - 3*0.423828125) < 1e-12 and len(j['kernel']) == 4"
ok $? "exact value 3K^2((1+2/16)^3 - 1)"

# thread-count independence, bit for bit
$W ensemble --act tanh --width 12 --depth 3 --samples 300 --threads 1 --json 2>/dev/null | tail -n 1 | sed 's/"threads":[0-9]*,//; s/"seconds":[^,]*,//' > "$T/t1"
$W ensemble --act tanh --width 12 --depth 3 --samples 300 --threads 2 --json 2>/dev/null | tail -n 1 | sed 's/"threads":[0-9]*,//; s/"seconds":[^,]*,//' > "$T/t2"
cmp -s "$T/t1" "$T/t2"; ok $? "ensemble: same JSON for 1 and 2 threads"

$W ntk --act tanh --width 12 --depth 3 --samples 40 --threads 1 --json 2>/dev/null | tail -n 1 > "$T/n1"
$W ntk --act tanh --width 12 --depth 3 --samples 40 --threads 2 --json 2>/dev/null | tail -n 1 > "$T/n2"
cmp -s "$T/n1" "$T/n2"; ok $? "ntk: same JSON for 1 and 2 threads"

# several inputs from a CSV: matrices per layer
printf '1,0,0\n0.5,0.5,0\n' > "$T/in.csv"
$W ensemble --act relu --width 16 --depth 3 --samples 500 --inputs "$T/in.csv" --json > "$T/two.json" 2>/dev/null
pyjson "$T/two.json" "len(j['kernel'][2]) == 2 and len(j['kernel'][2][0]) == 2 and len(j['connected4'][2]) == 2"
ok $? "ensemble --inputs: 2x2 kernels and per-input correlators"

# plots
if command -v gnuplot >/dev/null; then
    $W ensemble --act relu --width 16 --depth 4 --samples 200 --plot "$T/e.png" >/dev/null 2>&1 && [ -s "$T/e.png" ]
    ok $? "ensemble --plot writes a PNG"
    $W sweep --act relu --widths 8,16 --depths 2,4 --samples 300 --plot "$T/s.png" >/dev/null 2>&1 && [ -s "$T/s.png" ]
    ok $? "sweep --plot writes a PNG"
else
    skip=$((skip+2)); echo "  SKIP plots: no gnuplot" >&2
fi

# sweep: deep linear, slope of R against L/n near 2 (R = (1+2/n)^(L-1) - 1)
$W sweep --act linear --widths 32,64 --depths 2,4,8 --samples 4000 --json > "$T/sw.json" 2>/dev/null
pyjson "$T/sw.json" "abs(j['slope'] - j['slope_theory']) < 4*j['slope_stderr'] + 0.1 and 1.5 < j['slope_theory'] < 2.5 and len(j['ratio4']) == 6"
ok $? "sweep: fitted slope agrees with the theory's"

# ntk: deep linear mean Theta = L exactly (lambda_b = 0)
$W ntk --act linear --width 16 --depth 2,4 --lambda-b 0 --samples 600 --json > "$T/ntk.json" 2>/dev/null
pyjson "$T/ntk.json" "all(abs(j['ntk'][d]-j['ntk_theory'][d]) < 4*j['ntk_stderr'][d] for d in range(2)) and j['ntk_theory'] == [2.0, 4.0]"
ok $? "ntk: deep linear ensemble mean equals Theta = L within 4 s.e."

# ntk --order1: ReLU at criticality, n = 32, the NTK's variance B within 4 s.e. of the recursion
# (B = 8 at layer 2, 40 at layer 3; an O(1/n) shift is far below 4 s.e. at this M) and 1.2 B
# rejected; the kernel's and NTK's means have no 1/n shift for ReLU (K1 = Theta1 = 0)
$W ntk --order1 --act relu --width 32 --depth 3 --samples 1500 --json > "$T/o1.json" 2>/dev/null
pyjson "$T/o1.json" "j['B']['predicted'] == [0, 8, 40] and all(abs(j['B']['measured'][l] - j['B']['predicted'][l]) < 4 * j['B']['stderr'][l] + 1e-9 for l in range(3)) and all(abs(j['B']['measured'][l] - 1.2 * j['B']['predicted'][l]) > 4 * j['B']['stderr'][l] for l in (1, 2)) and all(abs(j['K1']['measured'][l]) < 4 * j['K1']['stderr'][l] + 1e-9 for l in range(3))"
ok $? "ntk --order1: ReLU's B per layer within 4 s.e., 1.2 B rejected, K1 = 0"
# ntk --order1 --dntk: the dNTK-preactivation correlators (ch. 11) of ReLU at criticality, P = 4 and
# Q = 8 at layer 2 (layer 3's O(1/n) shift is 2-4 s.e. at n = 32: tests/test_theory_dntk.c fits widths)
$W ntk --order1 --dntk --act relu --width 32 --depth 3 --samples 1500 --json > "$T/o1d.json" 2>/dev/null
pyjson "$T/o1d.json" "j['P']['predicted'] == [0, 4, 16] and j['Q']['predicted'] == [0, 8, 32] and all(abs(j[k]['measured'][1] - j[k]['predicted'][1]) < 4 * j[k]['stderr'][1] and abs(j[k]['measured'][1] - 1.2 * j[k]['predicted'][1]) > 4 * j[k]['stderr'][1] for k in 'PQ')"
ok $? "ntk --order1 --dntk: ReLU's P, Q at layer 2 within 4 s.e., 1.2x rejected"
# ntk --order1 --ddntk: the ddNTK means (ch. 11) of ReLU at criticality, S = 4 and T = 2 at layer 2
# (one width: the O(1/n) bias is fitted away in tests/test_theory_ddntk.c)
$W ntk --order1 --ddntk --act relu --width 32 --depth 2 --samples 1000 --json > "$T/o1dd.json" 2>/dev/null
pyjson "$T/o1dd.json" "j['S']['predicted'] == [0, 4] and j['T']['predicted'] == [0, 2] and j['R']['measured'] == [0, 0] and all(abs(j[k]['measured'][1] - j[k]['predicted'][1]) < 4 * j[k]['stderr'][1] + 0.15 * j[k]['predicted'][1] for k in 'ST')"
ok $? "ntk --order1 --ddntk: ReLU's S, T at layer 2 near the prediction, R = 0"
$W ntk --dntk > /dev/null 2>"$T/o1d.err"; rc=$?
[ $rc -eq 2 ] && grep -q "goes with --order1" "$T/o1d.err"
ok $? "ntk --dntk without --order1: usage error"
# ntk --order1 --dntk --inputs (two rows): every two-input component of P, Q (4x4 a layer), the
# measured (pathwise) ones within 4 s.e. + 3 % (O(1/n) at n = 32) of the pathwise prediction, which
# differs from the delta's where the inputs mix (ReLU), and equals it on the all-equal corner
printf '1,0,1\n0.5,1,-1\n' > "$T/in2.csv"
$W ntk --order1 --dntk --inputs "$T/in2.csv" --act relu --width 32 --depth 2 --samples 1500 --json > "$T/o1d2.json" 2>/dev/null
pyjson "$T/o1d2.json" "all(abs(j[k]['measured'][1][r][c] - j[k]['predicted'][1][r][c]) < 4 * j[k]['stderr'][1][r][c] + 0.03 * abs(j[k]['predicted'][1][r][c]) for k in 'PQ' for r in range(4) for c in range(4)) and abs(j['P']['predicted'][1][0][0] - 20 / 9) < 1e-9 and j['P']['predicted_delta'][1][0][1] > j['P']['predicted'][1][0][1] + 1"
ok $? "ntk --order1 --dntk --inputs: two-input P, Q at layer 2 within 4 s.e. (+3 %)"
printf '1,0\n' > "$T/in1.csv"
$W ntk --order1 --dntk --inputs "$T/in1.csv" > /dev/null 2>"$T/o1d2.err"; rc=$?
[ $rc -eq 2 ] && grep -q "two inputs" "$T/o1d2.err"
ok $? "ntk --order1 --dntk --inputs with one row: usage error"
$W ntk --order1 --depth 2,3 > /dev/null 2>"$T/o1.err"; rc=$?
[ $rc -eq 2 ] && grep -q "one depth" "$T/o1.err"
ok $? "ntk --order1 with two depths: usage error"

# Fashion-MNIST, small
if [ -f "$FM/train-images-idx3-ubyte.gz" ]; then
    $W kernel --train 200 --test 300 --depths 2 --cbs 0 --noises 0.0001,0.01 --json > "$T/k.json" 2>/dev/null
    pyjson "$T/k.json" "j['accuracy_nngp'] > 0.5 and j['accuracy_ntk'] > 0.5 and len(j['grid']) == 2"
    ok $? "kernel: NNGP and NTK predictors beat chance by far on 200 Fashion-MNIST images"
    $W gd --widths 16,128 --samples 2 --steps 10 --train 32 --test 50 --json > "$T/gd.json" 2>/dev/null
    pyjson "$T/gd.json" "j['ntk_change'][1] < j['ntk_change'][0] and j['eta'] > 0"
    ok $? "gd: the NTK moves less at the larger width"
else
    skip=$((skip+2)); echo "  SKIP Fashion-MNIST: not installed" >&2
fi

finish
