#!/usr/bin/env bash
# wick train / wick eval from the command line: help, usage errors, bad outputs caught before
# training, divergence and interrupt exit codes, --json, resume, a Fashion-MNIST slice.
set -u
W=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
. "$(dirname "$0")/check.sh"

# a small CSV problem: label first, 6 features
small_csv "$T/d.csv"
D="--train-csv $T/d.csv --test-csv $T/d.csv --arch 6-16-4 --batch 16 --quiet"

expect 0 "--arch SPEC" "train --help lists flags" -- $W train --help
expect 0 "--model FILE" "eval --help lists flags" -- $W eval --help
expect 0 "train" "wick --help lists commands" -- $W --help
expect 0 "OpenBLAS" "--version names the libraries" -- $W --version
expect 2 "unknown command" "unknown command is a usage error" -- $W frobnicate
expect 2 "" "unknown flag is a usage error" -- $W train --frobnicate
expect 2 "expects an integer" "bad number is a usage error" -- $W train --epochs x
expect 2 "unknown activation" "unknown activation" -- $W train --act foo
expect 1 "is a directory" "output path that is a directory fails before training" -- $W train $D --out "$T"
expect 1 "cannot write in" "output in a missing directory fails before training" -- $W train $D --out "$T/no/such/dir/m.safetensors"
expect 1 "No such file" "missing data file" -- $W train --train-csv "$T/none.csv" --quiet
expect 1 "no critical point" "sigmoid has no critical init" -- $W train $D --act sigmoid --epochs 1
expect 3 "diverged at step" "a diverging run exits 3" -- $W train $D --lr 1e4 --epochs 3 --out "$T/div.safetensors"

out=$($W train $D --epochs 2 --json --out "$T/m.safetensors" 2>/dev/null | tail -n 1)
python3 -c "import json,sys; o=json.loads(sys.argv[1]); assert o['command']=='train' and len(o['train_loss'])==2 and o['samples_per_s']>0 and 0<=o['test_acc']<=1" "$out"
ok $? "--json: the last stdout line is one object with losses, samples/s, test accuracy"
expect 0 "test accuracy" "eval reads the trained model" -- $W eval --model "$T/m.safetensors" --test-csv "$T/d.csv"

# resume through the CLI: 2 + 2 epochs equal 4 epochs, step by step
$W train $D --epochs 4 --log-steps "$T/full.txt" --seed 5 >/dev/null 2>&1
$W train $D --epochs 4 --max-steps 38 --checkpoint "$T/c.safetensors" --log-steps "$T/a.txt" --seed 5 >/dev/null 2>&1
$W train $D --epochs 4 --resume "$T/c.safetensors" --log-steps "$T/b.txt" --seed 5 >/dev/null 2>&1
# three empty logs would compare equal: the stopped run logged its 38 steps,
# the resumed one the rest
na=$(cat "$T/a.txt" 2>/dev/null | wc -l); nb=$(cat "$T/b.txt" 2>/dev/null | wc -l)
nfull=$(cat "$T/full.txt" 2>/dev/null | wc -l)
[ "$na" = 38 ] && [ "$nb" -gt 0 ] && [ $((na + nb)) = "$nfull" ] && cat "$T/a.txt" "$T/b.txt" | cmp -s - "$T/full.txt"
ok $? "stop at step 38 and resume: the same per-step losses as an uninterrupted run ($na + $nb of $nfull steps)"

# until_file FILE: waits (at most 60 s) for FILE to be written: a run's first epoch is done,
# so it is past its start-up and takes SIGINT as a stop request (a fixed sleep is too short
# on a loaded machine, where a run still starting dies of the signal)
until_file() { for _ in $(seq 600); do [ -s "$1" ] && return; sleep 0.1; done; }

# SIGINT: a checkpoint is left, exit 130
rm -f "$T/int.safetensors"
$W train $D --epochs 100000 --checkpoint "$T/int.safetensors" >/dev/null 2>&1 &
pid=$!; until_file "$T/int.safetensors"; kill -INT $pid; wait $pid; rc=$?
[ $rc = 130 ] && [ -s "$T/int.safetensors" ]
ok $? "SIGINT stops with exit 130 and leaves a checkpoint (exit $rc)"

# a truncated checkpoint is refused
head -c 100 "$T/c.safetensors" > "$T/trunc.safetensors"
expect 1 "trunc.safetensors" "a truncated checkpoint is refused, naming the file" -- $W train $D --resume "$T/trunc.safetensors"

# ---- files and runs from strangers (docs/file-formats.md) ----
# st.py IN OUT [drop-checksum] [set KEY VALUE] [nan TENSOR] [extra NAME]: rewrites a safetensors file
cat > "$T/st.py" <<'PY'
import json, struct, sys
src, dst, *ops = sys.argv[1:]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n]); data = bytearray(b[8 + n:])
meta = h.get("__metadata__", {})
while ops:
    op = ops.pop(0)
    if op == "drop-checksum":
        meta.pop("checksum", None); meta.pop("crc32", None)
    elif op == "set":
        k, v = ops.pop(0), ops.pop(0); meta[k] = v
    elif op == "nan":
        lo, hi = h[ops.pop(0)]["data_offsets"]
        for i in range(lo, hi, 4): data[i:i + 4] = struct.pack("<f", float("nan"))
    elif op == "extra":
        h[ops.pop(0)] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
        data += bytes(4)
h["__metadata__"] = meta
j = json.dumps(h).encode(); j += b" " * (-len(j) % 8)
open(dst, "wb").write(struct.pack("<Q", len(j)) + j + bytes(data))
PY
$W train $D --epochs 1 --out "$T/ok.safetensors" >/dev/null 2>&1
python3 "$T/st.py" "$T/ok.safetensors" "$T/nan.safetensors" drop-checksum nan 2.weight
expect 1 "'2.weight' is not finite at index 0" "eval refuses a model with a NaN layer, naming the tensor" -- $W eval --model "$T/nan.safetensors" --test-csv "$T/d.csv"
expect 1 "'2.weight' is not finite" "--init-from refuses a NaN model" -- $W train $D --epochs 1 --init-from "$T/nan.safetensors"
python3 "$T/st.py" "$T/ok.safetensors" "$T/esc.safetensors" drop-checksum extra $'x\e[2J\e]0;owned\a'
err=$($W eval --model "$T/esc.safetensors" --test-csv "$T/d.csv" 2>&1 >/dev/null)
! printf '%s' "$err" | LC_ALL=C grep -q $'[\x01-\x1f\x7f]' && printf '%s' "$err" | grep -q 'x1b'
ok $? "a tensor name with control characters reaches the terminal escaped"
$W train $D --epochs 2 --max-steps 30 --checkpoint "$T/k.safetensors" >/dev/null 2>&1
python3 "$T/st.py" "$T/k.safetensors" "$T/k-nosum.safetensors" drop-checksum
expect 1 "has no 'checksum'" "a checkpoint without its checksum is refused, saying how to re-save" -- $W train $D --epochs 2 --resume "$T/k-nosum.safetensors"
python3 "$T/st.py" "$T/k.safetensors" "$T/k-edit.safetensors" set batch_in_epoch -5
expect 1 "checksum mismatch" "an edited checkpoint counter is refused by the checksum" -- $W train $D --epochs 2 --resume "$T/k-edit.safetensors"

# a run that stops early leaves its last good weights where the message says
mkdir -p "$T/cwd" && rm -f "$T/cwd/"*
expect 3 "written to wick-last-good.safetensors" "divergence writes the last good weights (cwd by default)" -- \
    sh -c "cd '$T/cwd' && exec $W train $D --lr 1e4 --epochs 3"
expect 0 "test accuracy" "... and they are a model eval reads" -- $W eval --model "$T/cwd/wick-last-good.safetensors" --test-csv "$T/d.csv"
expect 3 "written to $T/dv.safetensors" "divergence with --out writes them there" -- $W train $D --lr 1e4 --epochs 3 --out "$T/dv.safetensors"
expect 3 "written to $T/dc.last-good.safetensors" "divergence with only --checkpoint writes them beside it" -- $W train $D --lr 1e4 --epochs 3 --checkpoint "$T/dc.safetensors"
rm -f "$T/cwd/"*
(cd "$T/cwd" && exec $W train $D --epochs 100000 --log "$T/int.jsonl") >/dev/null 2>"$T/int.err" &
pid=$!; until_file "$T/int.jsonl"; kill -INT $pid; wait $pid; rc=$?
[ $rc = 130 ] && grep -q "written to wick-last-good.safetensors" "$T/int.err" && [ -s "$T/cwd/wick-last-good.safetensors" ]
ok $? "SIGINT without --checkpoint writes the weights and says where (exit $rc)"

# logs on a full disk fail the run
# (the run stops as interrupted: its weights go to --out)
expect 1 "/dev/full: writing the log failed" "--log-steps on a full disk fails" -- $W train $D --epochs 2 --log-steps /dev/full --out "$T/full1.safetensors"
expect 1 "/dev/full: writing the log failed" "--log on a full disk fails" -- $W train $D --epochs 2 --log /dev/full --out "$T/full2.safetensors"

# two runs on one checkpoint: the second is refused
$W train $D --epochs 100000 --checkpoint "$T/lock.safetensors" >/dev/null 2>&1 &
pid=$!; until_file "$T/lock.safetensors"
expect 1 "locked by another wick run" "a second run on the same checkpoint is refused" -- $W train $D --epochs 1 --checkpoint "$T/lock.safetensors"
kill -INT $pid; wait $pid

# a slice of the real data: 20 steps of the main job's net
if [ -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    out=$($W train --max-steps 20 --val 1000 --quiet --json 2>/dev/null | tail -n 1)
    python3 -c "import json,sys; o=json.loads(sys.argv[1]); assert o['steps']==20 and o['test_acc']>0.5, o" "$out"
    ok $? "20 steps on Fashion-MNIST reach > 0.5 test accuracy"
else
    echo "  SKIP Fashion-MNIST slice: dataset-fashion-mnist not installed" >&2; skip=$((skip+1))
fi
finish
