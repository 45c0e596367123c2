#!/usr/bin/env bash
# test_rounds_cli.sh — bagging and early stopping's second round through the CLI:
#  - `wick train --ensemble 3` writes three members; `wick eval` of the three gives the
#    ensemble accuracy train reported, and that accuracy is what averaging the members'
#    softmax probabilities (from each member's --logits, in numpy) gives;
#  - bootstrap members differ from seed-only members;
#  - --second-round retrain runs exactly best_epoch x (batches of the first round's
#    training set) steps on all the data; continue stops at the first epoch whose
#    validation loss is at most the training loss at the stopping point, or at the cap;
#  - contradicting flags are refused with exit 2 and one line.
# Uses $WICK (tests/run.sh exports it).
set -u
WICK=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
. "$(dirname "$0")/check.sh"
py() { /usr/bin/python3 -c "$@"; }

py "
import numpy as np
rng = np.random.default_rng(0)
def make(n):
    x = rng.normal(size=(n, 12)); w = np.linspace(-1, 1, 12)
    y = ((x @ w) > 0).astype(int) + 2 * (x[:, 0] > 0.4)
    return np.concatenate([y[:, None], x], 1)
np.savetxt('$T/train.csv', make(900), delimiter=',', fmt='%.6g')
np.savetxt('$T/test.csv', make(300), delimiter=',', fmt='%.6g')
" || { echo "RESULT 0 1 0"; exit 1; }
D="--arch 12-24-4 --train-csv $T/train.csv --test-csv $T/test.csv --threads 1 --quiet --json"

# ---- bagging -------------------------------------------------------------------
"$WICK" train $D --epochs 5 --ensemble 3 --out "$T/ens.safetensors" >"$T/ens.out" 2>"$T/ens.err"
ok $? "train --ensemble 3: exit 0 $(head -c 300 "$T/ens.err")"
for k in 0 1 2; do [ -f "$T/ens.$k.safetensors" ] || ok 1 "member file ens.$k.safetensors"; done
"$WICK" eval --model "$T/ens.0.safetensors" --model "$T/ens.1.safetensors" --model "$T/ens.2.safetensors" \
    --test-csv "$T/test.csv" --json >"$T/eval.out" 2>"$T/eval.err"
ok $? "eval of three members: exit 0 $(head -c 300 "$T/eval.err")"
for k in 0 1 2; do "$WICK" eval --model "$T/ens.$k.safetensors" --test-csv "$T/test.csv" --logits "$T/l$k.csv" >/dev/null 2>&1; done
py "
import json, numpy as np
t = json.loads(open('$T/ens.out').read().strip().splitlines()[-1])
e = json.loads(open('$T/eval.out').read().strip().splitlines()[-1])
y = np.loadtxt('$T/test.csv', delimiter=',')[:, 0].astype(int)
P = 0
for k in range(3):
    z = np.loadtxt('$T/l%d.csv' % k, delimiter=',')
    z = np.exp(z - z.max(1, keepdims=True)); P = P + z / z.sum(1, keepdims=True)
ref = float((P.argmax(1) == y).mean())
assert len(t['members']) == 3 and len(e['members']) == 3, 'three members'
assert abs(t['test_acc'] - e['test_acc']) < 1e-12, ('train vs eval', t['test_acc'], e['test_acc'])
assert abs(e['test_acc'] - ref) < 1e-12, ('eval vs numpy', e['test_acc'], ref)
assert [m['test_acc'] for m in t['members']] == [m['test_acc'] for m in e['members']], 'member accuracies'
"
ok $? "ensemble accuracy: train = eval = numpy's average of the members' softmax"
"$WICK" train $D --epochs 5 --ensemble 2 --bagging seeds >"$T/seeds.out" 2>/dev/null
py "
import json
a = json.loads(open('$T/ens.out').read().strip().splitlines()[-1])['members'][0]['test_acc']
b = json.loads(open('$T/seeds.out').read().strip().splitlines()[-1])['members'][0]['test_acc']
assert a != b, (a, b)
"
ok $? "a bootstrap member is not the seed-only member"

# ---- second round ------------------------------------------------------------------
for kind in retrain continue; do
    "$WICK" train $D --epochs 8 --patience 2 --val 150 --batch 64 --second-round $kind >"$T/$kind.out" 2>"$T/$kind.err"
    ok $? "--second-round $kind: exit 0 $(head -c 300 "$T/$kind.err")"
done
py "
import json, math
j = json.loads(open('$T/retrain.out').read().strip().splitlines()[-1])
r = j['second_round']
want = j['best_epoch'] * math.ceil(750 / 64)
assert r['strategy'] == 'retrain' and r['samples'] == 900 and r['steps'] == want, (r, want)
"
ok $? "retrain: best_epoch x ceil(750/64) steps on all 900 samples"
py "
import json, math
j = json.loads(open('$T/continue.out').read().strip().splitlines()[-1])
r = j['second_round']
eps = j['epochs'][j['best_epoch'] - 1]['train_loss']
assert r['strategy'] == 'continue' and abs(r['target_loss'] - eps) < 1e-9, r
assert 0 < r['steps'] <= 8 * math.ceil(900 / 64) and r['steps'] % math.ceil(900 / 64) == 0, r
"
ok $? "continue: whole epochs on all the data, towards the stopping point's training loss"

# ---- contradictions ----------------------------------------------------------------
while IFS='|' read -r flags needle; do
    "$WICK" train $D $flags >/dev/null 2>"$T/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$needle" "$T/err" && [ "$(wc -l <"$T/err")" -eq 1 ]; then ok 0 "refused: $flags"
    else ok 1 "$flags: exit $rc, $(cat "$T/err")"; fi
done <<'LIST'
--second-round retrain|--second-round needs early stopping
--patience 2 --val 0 --second-round continue|needs a validation set
--ensemble 2 --checkpoint ck.safetensors|no --checkpoint or --resume
--patience 2 --second-round sometimes|--second-round expects retrain or continue, got 'sometimes'
--ensemble 0|--ensemble expects an integer
LIST

finish
