#!/usr/bin/env bash
# wick kernel on the whole-training-set path (src/experiments/gram.c): the
# memory line and the refusal when it would not fit, the per-depth evidence
# report, --variance's and --grad's JSON, bad flags.
set -u
W=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
FM=/usr/share/datasets/fashion-mnist
. "$(dirname "$0")/check.sh"
pyjson() { /usr/bin/python3 -c "import json,sys,math; j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); sys.exit(0 if ($2) else 1)" "$1"; }

expect 2 "ntk-ridge" "kernel --ntk-ridge -1: usage error" -- $W kernel --ntk-ridge -1
expect 2 "select" "kernel --select 1: usage error" -- $W kernel --select 1
if [ -f "$FM/train-images-idx3-ubyte.gz" ] || [ -f "$FM/train-images-idx3-ubyte" ]; then
    # 3000 training images need ~80 MB: with 10 MB "available" it must refuse, not start
    expect 1 "refusing rather than swapping" "kernel refuses a solve larger than MemAvailable" -- \
        env WICK_MEMAVAILABLE=10000000 $W kernel --train 3000 --test 100 --depths 2 --cbs 0 --noises 0.01 --select 50
    $W kernel --train 150 --test 80 --depths 2,3 --cbs 0 --noises 0.001,0.01 --variance --grad --grad-probes 16 --json > "$T/kg.json" 2>/dev/null
    ok $? "kernel --variance runs"
    pyjson "$T/kg.json" "len(j['nngp_variance']) == 80 and all(v > 0 for v in j['nngp_variance']) and j['accuracy_nngp'] > 0.5 and math.isfinite(j['log_evidence_full'])"
    ok $? "kernel --variance: a positive posterior variance per test image, accuracy above chance"
    pyjson "$T/kg.json" "len(j['evidence_grad']) == 3 and all(math.isfinite(v) for v in j['evidence_grad'] + j['evidence_grad_full']) and j['evidence_grad'][2] != 0"
    ok $? "kernel --grad, --grad-probes: the evidence's gradient in the JSON"
    grep -q "best at depth 3" "$T/kg.json" && grep -q "^memory: the solve needs" "$T/kg.json"
    ok $? "kernel: the report shows each depth's best evidence and the memory needed"
    rm -f "$T/kg.json"
    # float32 factors refined by conjugate gradients against the float64 solve on 2,000 images
    for p in double mixed; do
        $W kernel --train 2000 --test 1000 --select 100 --depths 2 --cbs 0.1 --noises 0.000001 \
            --precision $p --json > "$T/kg-$p.json" 2>/dev/null
        ok $? "kernel --precision $p runs"
    done
    /usr/bin/python3 - "$T/kg-double.json" "$T/kg-mixed.json" <<'PY'
import json, sys
d, m = (json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[1:])
print("# double: NNGP %.4f NTK %.4f log evidence %.6f; mixed: NNGP %.4f NTK %.4f log evidence %.6f, passes %s"
      % (d["accuracy_nngp"], d["accuracy_ntk"], d["log_evidence_full"], m["accuracy_nngp"],
         m["accuracy_ntk"], m["log_evidence_full"], m.get("refinement_passes")))
ok = (m["mixed_precision"] and not d["mixed_precision"] and d["accuracy_nngp"] == m["accuracy_nngp"]
      and d["accuracy_ntk"] == m["accuracy_ntk"]
      and abs(d["log_evidence_full"] - m["log_evidence_full"]) <= 1e-4 * abs(d["log_evidence_full"]))
sys.exit(0 if ok else 1)
PY
    ok $? "kernel --precision mixed: the float64 solve's accuracies on 1000 test images, its log evidence to 1e-4 (log det from the float32 factor)"
    expect 2 "precision" "kernel --precision single: usage error" -- $W kernel --precision single
    rm -f "$T/kg-double.json" "$T/kg-mixed.json"
else
    skip "Fashion-MNIST not installed"
fi
finish
