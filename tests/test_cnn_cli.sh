#!/usr/bin/env bash
# test_cnn_cli.sh — conv nets through `wick train` and `wick eval`:
#  - a run with batch norm, dropout and augmentation stopped mid-epoch and resumed gives
#    the uninterrupted run's model byte for byte (dropout's step and the running
#    statistics are in the checkpoint);
#  - the same seed on 1 and 2 threads gives the same model byte for byte;
#  - the run's first lines show the spec's table (shapes, parameters, FLOPs);
#  - bad specs and flags that do not fit the net are refused with exit 2 and the reason.
# Uses $WICK (tests/run.sh exports it).
set -u
WICK=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
. "$(dirname "$0")/check.sh"

/usr/bin/python3 -c "
import numpy as np
rng = np.random.default_rng(1)
def make(n):
    x = rng.random((n, 1, 10, 10)).astype(np.float32)
    y = (x[:, 0, :5].mean((1, 2)) > x[:, 0, 5:].mean((1, 2))).astype(int) * 2 + \
        (x[:, 0, :, :5].mean((1, 2)) > x[:, 0, :, 5:].mean((1, 2)))
    return np.concatenate([y[:, None], x.reshape(n, -1)], 1)
np.savetxt('$T/train.csv', make(300), delimiter=',', fmt='%.6g')
np.savetxt('$T/test.csv', make(100), delimiter=',', fmt='%.6g')
" || { echo "RESULT 0 1 0"; exit 1; }
S="input:1x10x10,conv2d:4:3:pad=1,batchnorm,relu,maxpool:2,flatten,dropout:0.3,linear:8,relu,dropout:0.2,linear:4"
C="--arch $S --train-csv $T/train.csv --test-csv $T/test.csv --val 50 --batch 32 --shift 1 --flip --seed 9 --epochs 3"

"$WICK" train $C --threads 2 --quiet --out "$T/a.safetensors" >/dev/null 2>"$T/err" || ok 1 "uninterrupted run: $(cat "$T/err")"
"$WICK" train $C --threads 2 --quiet --max-steps 12 --checkpoint "$T/ck.safetensors" >/dev/null 2>"$T/err" ||
    ok 1 "first half: $(cat "$T/err")"
"$WICK" train $C --threads 2 --quiet --resume "$T/ck.safetensors" --out "$T/b.safetensors" >/dev/null 2>"$T/err" ||
    ok 1 "resumed half: $(cat "$T/err")"
if cmp -s "$T/a.safetensors" "$T/b.safetensors"; then ok 0 "stopped at step 12 and resumed: the same model, byte for byte"
else ok 1 "resumed model differs from the uninterrupted one"; fi

"$WICK" train $C --threads 1 --quiet --out "$T/t1.safetensors" >/dev/null 2>&1
if cmp -s "$T/a.safetensors" "$T/t1.safetensors"; then ok 0 "1 and 2 threads: the same model, byte for byte"
else ok 1 "1 and 2 threads give different models"; fi

"$WICK" train $C --threads 1 --epochs 1 >/dev/null 2>"$T/first"
if grep -q "conv2d:4:3:pad=1 .* 4x10x10 .* 40" "$T/first" && grep -q "total" "$T/first"; then ok 0 "train prints the spec's table"
else ok 1 "no layer table in train's first lines: $(head -5 "$T/first")"; fi

"$WICK" eval --model "$T/a.safetensors" --test-csv "$T/test.csv" --json >"$T/ev" 2>"$T/err"
if [ $? -eq 0 ] && tail -n 1 "$T/ev" | grep -q '"test_acc"'; then ok 0 "eval reads the spec from the file"
else ok 1 "eval of a CNN file: $(cat "$T/err")"; fi

while IFS='|' read -r cmd needle; do
    eval "\"\$WICK\" $cmd" >/dev/null 2>"$T/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$needle" "$T/err" && [ "$(wc -l <"$T/err")" -eq 1 ]; then ok 0 "refused: $needle"
    else ok 1 "$cmd: exit $rc, $(cat "$T/err")"; fi
done <<'LIST'
train --arch input:1x28x28,conv2d:32 --epochs 1|conv2d:32: missing kernel size
train --arch input:1x28x28,conv2d:8:3,linear:10 --epochs 1|linear:10 after conv2d needs flatten
train --arch input:1x28x28,conv2d:8:3:groups=3,flatten,linear:10 --epochs 1|groups=3 must divide
train --arch input:1x28x28,maxpool:2:pad=2,flatten,linear:10 --epochs 1|padding 2x2 is more than half
LIST
"$WICK" train --arch input:1x10x10,conv2d:4:3,relu,flatten,linear:8,tanh,linear:4 --train-csv "$T/train.csv" \
    --val 0 --epochs 1 --quiet >/dev/null 2>"$T/err"
if [ $? -ne 0 ] && grep -q "needs one activation throughout" "$T/err"; then ok 0 "critical init with two activations: says why"
else ok 1 "mixed activations under --init critical: $(cat "$T/err")"; fi
"$WICK" train --arch 100-8-4 --train-csv "$T/train.csv" --val 0 --epochs 1 --shift 2 --quiet >/dev/null 2>"$T/err"
if [ $? -ne 0 ] && grep -q "augmentation needs image data" "$T/err"; then ok 0 "augmentation of flat data: refused"
else ok 1 "--shift on an MLP: $(cat "$T/err")"; fi
"$WICK" eval --model "$T/a.safetensors" --test-csv "$T/test.csv" --act tanh >/dev/null 2>"$T/err"
if [ $? -ne 0 ] && grep -q "its layer spec names the activations" "$T/err"; then ok 0 "eval --act on a spec model: refused"
else ok 1 "eval --act on a CNN: $(cat "$T/err")"; fi

finish
