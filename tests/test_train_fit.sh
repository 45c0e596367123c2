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
out=$($W train $D --epochs 1 --init-from "$T/m.safetensors" 2>&1 >/dev/null | head -n 2)
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
expect 0 "CSV: a tenth of the rows" "--help says what --val is for CSV data" -- $W train --help
finish
