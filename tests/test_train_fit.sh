#!/usr/bin/env bash
# wick train / eval / predict as a new user meets them: --resume and --init-from take the model
# (and a checkpoint's optimiser and schedule) from the file and refuse a contradicting flag; data
# that does not fit the model is refused before the first step; a torch.save file is recognised;
# the first line names the backend that runs; how a run ended is said; flags that would do
# nothing are refused.
set -u
W=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}/wick-fit.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/check.sh"

# a small CSV problem: label first, 6 features, 4 classes
python3 - "$T" <<'PY'
import sys, random
random.seed(1)
rows = []
for i in range(400):
    x = [random.gauss(0, 1) for _ in range(6)]
    rows.append((int(x[0] + x[1] > 0) + 2 * int(x[2] > 0), x))
d = sys.argv[1]
open(d + "/d.csv", "w").write("".join(f"{y}," + ",".join(f"{v:.6f}" for v in x) + "\n" for y, x in rows))
# a test set with a label the 4-output model does not have, and one with 5 features
open(d + "/badlabel.csv", "w").write("".join(f"{7 if i == 3 else y}," + ",".join(f"{v:.6f}" for v in x) + "\n" for i, (y, x) in enumerate(rows[:50])))
open(d + "/fivefeat.csv", "w").write("".join(f"{y}," + ",".join(f"{v:.6f}" for v in x[:5]) + "\n" for y, x in rows[:50]))
PY
D="--train-csv $T/d.csv --test-csv $T/d.csv --batch 16"

# ---- --resume takes everything from the checkpoint ----
$W train $D --arch 6-16-4 --act tanh --optimizer adam --lr 0.01 --epochs 4 --seed 5 --quiet --log-steps "$T/full.txt" >/dev/null 2>&1
$W train $D --arch 6-16-4 --act tanh --optimizer adam --lr 0.01 --epochs 4 --seed 5 --quiet --max-steps 30 \
    --checkpoint "$T/c.safetensors" --log-steps "$T/a.txt" >/dev/null 2>&1
$W train --train-csv "$T/d.csv" --test-csv "$T/d.csv" --epochs 4 --quiet --resume "$T/c.safetensors" \
    --log-steps "$T/b.txt" >/dev/null 2>&1
[ "$(wc -l < "$T/full.txt")" -gt 30 ] && cat "$T/a.txt" "$T/b.txt" | cmp -s - "$T/full.txt"
ok $? "--resume with no model or optimiser flags continues the tanh/Adam run bit-identically"
expect 2 "\-\-act relu contradicts .*c.safetensors, whose activation is tanh" "--resume refuses a contradicting --act naming both" -- \
    $W train $D --epochs 4 --resume "$T/c.safetensors" --act relu
expect 2 "\-\-optimizer sgd contradicts .*whose optimizer is adam" "--resume refuses a contradicting --optimizer" -- \
    $W train $D --epochs 4 --resume "$T/c.safetensors" --optimizer sgd
expect 2 "\-\-lr 0.5 contradicts .*whose lr is 0.01" "--resume refuses a contradicting --lr" -- \
    $W train $D --epochs 4 --resume "$T/c.safetensors" --lr 0.5
expect 2 "\-\-arch 6-32-4 contradicts .*architecture is 6-16-4" "--resume refuses a contradicting --arch" -- \
    $W train $D --epochs 4 --resume "$T/c.safetensors" --arch 6-32-4
expect 0 "test accuracy" "--resume accepts flags that agree with the checkpoint" -- \
    $W train $D --epochs 4 --resume "$T/c.safetensors" --act tanh --arch 6-16-4 --lr 0.01 --quiet
expect 0 "may change" "--help says which flags may change on --resume" -- $W train --help
$W train $D --arch 6-16-4 --act tanh --epochs 1 --quiet --out "$T/m.safetensors" >/dev/null 2>&1
expect 2 "\-\-act relu contradicts .*m.safetensors, whose activation is tanh" "--init-from refuses a contradicting --act" -- \
    $W train $D --epochs 1 --init-from "$T/m.safetensors" --act relu
out=$($W train $D --epochs 1 --init-from "$T/m.safetensors" 2>&1 >/dev/null)
grep -q "6-16-4 tanh" <<<"$out"
ok $? "--init-from takes the architecture and activation from the model file"

# ---- every data set checked before the first step ----
expect 1 "test set .*sample 3 has label 7, the model has 4 outputs" "a test label out of range is refused before training" -- \
    $W train --train-csv "$T/d.csv" --test-csv "$T/badlabel.csv" --arch 6-16-4 --epochs 1 --out "$T/x.safetensors"
[ ! -e "$T/x.safetensors" ]
ok $? "... and nothing was trained (no model written)"
expect 1 "test set .*has 5 features, the model takes 6" "a test set with the wrong feature count is refused before training" -- \
    $W train --train-csv "$T/d.csv" --test-csv "$T/fivefeat.csv" --arch 6-16-4 --epochs 1

# ---- a torch.save file is recognised ----
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    /usr/bin/python3 - "$T" <<'PY'
import sys, torch
m = torch.nn.Sequential(torch.nn.Linear(6, 4))
torch.save(m.state_dict(), sys.argv[1] + "/zip.pt")
torch.save(m.state_dict(), sys.argv[1] + "/pickle.pt", _use_new_zipfile_serialization=False)
PY
    expect 1 "zip.pt: a PyTorch torch.save file (zip archive), not safetensors: save the state_dict with safetensors" \
        "a torch.save zip is recognised and the message says what to do" -- $W eval --model "$T/zip.pt" --test-csv "$T/d.csv"
    expect 1 "torch.save file (pickle)" "an old torch.save pickle is recognised" -- $W eval --model "$T/pickle.pt" --test-csv "$T/d.csv"
else
    echo "  SKIP torch.save files: no torch" >&2; skip=$((skip+2))
fi

# ---- what runs, and how the run ended ----
expect 0 "backend wick's own kernel" "the first lines name the kernel an MLP really trains on" -- $W train $D --arch 6-16-4 --epochs 1
expect 0 "stopped by --max-steps 30 in epoch 2, after batch 7 of 23" "--max-steps stopping mid-epoch says so" -- \
    $W train $D --arch 6-16-4 --epochs 3 --max-steps 30 --val 40
python3 - "$T" <<'PY'
import sys, random
random.seed(2)   # random labels: the validation loss soon stops improving
open(sys.argv[1] + "/noise.csv", "w").write("".join(f"{random.randrange(3)}," + ",".join(f"{random.gauss(0,1):.5f}" for _ in range(8)) + "\n" for _ in range(300)))
PY
out=$($W train --train-csv "$T/noise.csv" --arch 8-64-64-3 --optimizer adam --lr 0.01 --epochs 60 --patience 2 --val 100 --batch 16 2>&1)
grep -q "early stopping after epoch [0-9]*: the validation loss did not improve for 2 epochs" <<<"$out" && grep -q "restored the weights of epoch [0-9]*, the best validation loss" <<<"$out"
ok $? "early stopping and the restore of the best weights are said"

# ---- flags that would do nothing are refused ----
expect 2 "\-\-patience needs a validation set" "--patience with --val 0 is refused" -- $W train $D --arch 6-16-4 --val 0 --patience 2
expect 2 "\-\-schedule plateau needs a validation set" "--schedule plateau with --val 0 is refused" -- $W train $D --arch 6-16-4 --val 0 --schedule plateau
expect 2 "\-\-momentum applies to --optimizer sgd only" "--momentum with Adam is refused" -- $W train $D --arch 6-16-4 --optimizer adam --momentum 0.5
expect 2 "\-\-beta1 applies to --optimizer adam" "--beta1 with SGD is refused" -- $W train $D --arch 6-16-4 --beta1 0.5
expect 0 "a tenth of the rows" "--help says what --val is for CSV data" -- $W train --help
# ---- exit codes and messages ----
expect 2 "^wick train: --lr expects a number > 0, got '-0.1'" "--lr -0.1 is a usage error, in the command's prefix" -- $W train --lr -0.1
expect 2 "^wick train: --label-smoothing expects a number in \[0, 1), got '1.5'" "--label-smoothing 1.5 is a usage error" -- $W train --label-smoothing 1.5
expect 2 "^wick train: unknown activation 'rleu'" "--act rleu is a usage error" -- $W train --act rleu
expect 2 "^wick train: --momentum expects a number in \[0, 1)" "--momentum 1 is a usage error" -- $W train --momentum 1
expect 2 "^wick sweep: --depth" "sweep --depth 0 is a usage error" -- $W sweep --depth 0
bad=""
for c in train eval theory ensemble ntk sweep kernel summary gd predict; do
    $W $c -h 2>/dev/null | grep -q "usage: wick $c" || bad="$bad $c:-h"
    $W $c --version 2>/dev/null | grep -q "^wick [0-9]" || bad="$bad $c:--version"
done
[ -z "$bad" ]
ok $? "-h and --version on every command ($bad)"
err=$($W train $D --arch 6-16-4 --epochs 1 --log "$T/log.jsonl" 2>&1 >/dev/null)
grep -q "^epoch  1/1  train loss [0-9.]*  train acc 0\.[0-9]*  val loss" <<<"$err" && ! grep -q $'\r' <<<"$err" && grep -q ", 1 epoch |" <<<"$err"
ok $? "stderr not a terminal: plain epoch lines with the training accuracy, no progress bar; '1 epoch'"
python3 -c "import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert 0 <= o['train_acc'] <= 1 and o['val_loss'] > 0, o" "$T/log.jsonl"
ok $? "the JSON log has each epoch's training accuracy"
err=$($W train $D --arch 6-16-4 --epochs 1 --val 0 --log /dev/null 2>&1 >/dev/null)
grep -q "val loss n/a  val acc n/a" <<<"$err"
ok $? "no validation set: n/a, not nan"
out=$($W train $D --arch 6-16-4 --epochs 1 --quiet --json 2>/dev/null)
[ "$(grep -v "^{" <<<"$out" | grep -c "accuracy")" = 1 ] && grep -q "^test accuracy 0\.[0-9]* ([0-9]*/400), test loss" <<<"$out" && \
    python3 -c "import json,sys; o=json.loads(sys.argv[1]); assert o['activation'] == 'relu' and 'act' not in o" "$(tail -n 1 <<<"$out")"
ok $? "one accuracy line (count and loss), JSON key 'activation' as the other commands have it"
if command -v script >/dev/null; then
    bar=$(TERM=xterm script -qec "$W train $D --arch 6-16-4 --epochs 2 --val 0" /dev/null 2>&1)
    grep -q $'\r'"epoch 1/2 \[.*ETA [0-9]*m[0-9]*s" <<<"$bar"
    ok $? "on a terminal: a progress bar with an ETA"
    dumb=$(TERM=dumb script -qec "$W train $D --arch 6-16-4 --epochs 2 --val 0" /dev/null 2>&1)
    ! grep -q "ETA" <<<"$dumb" && grep -q "^epoch  2/2  train loss" <<<"$dumb"
    ok $? "TERM=dumb: plain lines, no bar"
else
    echo "  SKIP the progress bar: no script(1)" >&2; skip=$((skip+2))
fi
# ---- wick predict: from the model file alone ----
$W train $D --arch 6-16-4 --act tanh --epochs 2 --quiet --out "$T/p.safetensors" >/dev/null 2>&1
$W eval --model "$T/p.safetensors" --test-csv "$T/d.csv" --logits "$T/logits.csv" >/dev/null 2>&1
cut -d, -f2- "$T/d.csv" > "$T/unlabelled.csv"
$W predict --model "$T/p.safetensors" --csv "$T/unlabelled.csv" > "$T/pred.csv" 2>/dev/null
python3 - "$T" <<'PY'
import sys, math
d = sys.argv[1]
logits = [[float(v) for v in l.split(",")] for l in open(d + "/logits.csv")]
rows = open(d + "/pred.csv").read().splitlines()
assert rows[0] == "class,p0,p1,p2,p3", rows[0]
for z, r in zip(logits, rows[1:]):
    c, *p = r.split(",")
    p = [float(v) for v in p]
    assert int(c) == max(range(4), key=lambda j: z[j]) and abs(sum(p) - 1) < 1e-4
    e = [math.exp(v - max(z)) for v in z]
    assert all(abs(a - b / sum(e)) < 1e-5 for a, b in zip(p, e))
assert len(rows) == 401
PY
ok $? "predict on unlabelled CSV rows: eval's classes, the softmax of its logits"
$W predict --model "$T/p.safetensors" --csv "$T/d.csv" --label-col 0 --out "$T/pred.json" 2>/dev/null
python3 -c "import json,sys; o=json.load(open(sys.argv[1])); p=o['predictions']; assert o['command']=='predict' and o['classes']==4 and len(p)==400 and 0<=p[0]['class']<4 and len(p[0]['probabilities'])==4" "$T/pred.json"
ok $? "predict --out FILE.json: JSON, a labelled CSV's label column left out"
python3 - "$T" <<'PY'
import struct, sys
# 5 images of 2x3 u8 pixels, in IDX as a data set's images are
px = bytes((i * 37 + j * 11) % 256 for i in range(5) for j in range(6))
open(sys.argv[1] + "/img.idx", "wb").write(struct.pack(">BBBBIII", 0, 0, 8, 3, 5, 2, 3) + px)
PY
out=$($W predict --model "$T/p.safetensors" --images "$T/img.idx" --format json 2>/dev/null)
python3 -c "import json,sys; o=json.loads(sys.argv[1]); assert len(o['predictions'])==5" "$out"
ok $? "predict on IDX images"
expect 1 "has 7 features a sample, .*p.safetensors takes 6" "predict refuses rows of the wrong width, naming both" -- \
    $W predict --model "$T/p.safetensors" --csv "$T/d.csv"
expect 2 "give one of --csv FILE and --images FILE" "predict needs its input" -- $W predict --model "$T/p.safetensors"
# ---- CSV inputs standardised, folded into the model file; --train-limit ----
python3 - "$T" <<'PY'
import sys
d = sys.argv[1]
with open(d + "/x1000.csv", "w") as f:
    for l in open(d + "/d.csv"):
        y, *x = l.strip().split(",")
        f.write(y + "," + ",".join(f"{float(v) * 1000 + 500:.3f}" for v in x) + "\n")
PY
a=$($W train $D --arch 6-16-4 --epochs 3 --quiet 2>/dev/null | head -n 1)
b=$($W train --train-csv "$T/x1000.csv" --test-csv "$T/x1000.csv" --batch 16 --arch 6-16-4 --epochs 3 --quiet --out "$T/k.safetensors" 2>/dev/null | head -n 1)
[ -n "$a" ] && [ "$a" = "$b" ] && grep -q "^test accuracy 0\.9" <<<"$b"
ok $? "inputs scaled x1000 (and shifted) train as the unit ones do ($b)"
expect 3 "diverged" "... where --standardize off diverges" -- \
    $W train --train-csv "$T/x1000.csv" --batch 16 --arch 6-16-4 --epochs 3 --standardize off --out "$T/k2.safetensors"
c=$($W eval --model "$T/k.safetensors" --test-csv "$T/x1000.csv" 2>/dev/null | head -n 1)
[ "$b" = "$c" ]
ok $? "eval of the model file on the raw rows gives the run's test accuracy and loss (the standardisation is in the file)"
$W predict --model "$T/k.safetensors" --csv "$T/x1000.csv" --label-col 0 > "$T/kp.csv" 2>/dev/null
python3 - "$T" <<'PY'
import sys
d = sys.argv[1]
y = [int(l.split(",")[0]) for l in open(d + "/x1000.csv")]
p = [int(l.split(",")[0]) for l in open(d + "/kp.csv").read().splitlines()[1:]]
assert sum(a == b for a, b in zip(y, p)) / len(y) > 0.9
PY
ok $? "predict on the raw rows applies it too"
expect 0 "| 90 train, 10 val" "--train-limit 100: the first 100 samples, a tenth of them for validation" -- \
    $W train --train-csv "$T/d.csv" --arch 6-16-4 --train-limit 100 --epochs 1
$W train --train-csv "$T/x1000.csv" --batch 16 --arch 6-16-4 --epochs 2 --quiet --checkpoint "$T/kc.safetensors" >/dev/null 2>&1
expect 1 "kc.safetensors is a checkpoint of a run on standardised inputs" "eval refuses a checkpoint whose net takes standardised rows, saying what to use" -- \
    $W eval --model "$T/kc.safetensors" --test-csv "$T/x1000.csv"
expect 0 "test accuracy" "... and the run resumes from it" -- \
    $W train --train-csv "$T/x1000.csv" --test-csv "$T/x1000.csv" --epochs 3 --quiet --resume "$T/kc.safetensors"
expect 2 "\-\-standardize off contradicts .*kc.safetensors, whose standardisation is on" "--resume refuses --standardize that differs from the checkpoint's" -- \
    $W train --train-csv "$T/x1000.csv" --epochs 3 --resume "$T/kc.safetensors" --standardize off
finish
