#!/usr/bin/env bash
# Data-parallel training under mpirun (src/dist/, docs/distributed.md): K = 1..4 ranks give one
# process's weights to 1e-6 relative (2-norm) after 100 steps (MLPs and a conv net; several optimisers, weight decay, schedules,
# label smoothing, clipping); batch norm is synchronised (the global batch's statistics: a conv net
# with batch norm on K = 3, 4 ranks gives one process's weights, running statistics and losses;
# gradients summed in float within the same bound; with micro-shards K = 1, 3, 4 give one process's bits); a checkpoint written
# by 2 ranks resumes on 3 and on one process on the same data order (with micro-shards: the same bits as an uninterrupted
# run); --allreduce and --shards refuse bad values and contradictions (exit 2); a killed rank ends the job
# within 30 s with the checkpoint intact; a rank without its data, or with other data or another
# configuration, fails the job at start-up naming the rank.
set -u
W=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
. "$(dirname "$0")/check.sh"

# ---- the flags: bad values and contradictions are usage errors, before any work (no mpirun needed) ----
small_csv "$T/u.csv"
U="--train-csv $T/u.csv --test-csv $T/u.csv --val 0 --batch 16 --quiet --standardize off --arch 6-16-4"
expect 2 "--allreduce expects f64 or f32, got 'f16'" "--allreduce f16 is refused" -- "$W" train $U --allreduce f16
expect 2 "--shards expects an integer in \[0, 4096\], got '5000'" "--shards 5000 is refused" -- "$W" train $U --shards 5000
expect 2 "--shards expects an integer" "--shards -1 is refused" -- "$W" train $U --shards -1
expect 2 "no --allreduce f32" "--shards with --allreduce f32 is refused" -- "$W" train $U --shards 4 --allreduce f32
expect 2 "--shards takes no batch norm" "--shards with batch norm is refused" -- \
    "$W" train $U --shards 4 --arch input:6,linear:16,batchnorm,relu,linear:4
expect 2 "--allreduce f32 sums the gradients over mpirun's ranks: this run is one process" \
    "--allreduce f32 without mpirun is refused" -- "$W" train $U --allreduce f32
expect 2 "no --shards or --allreduce" "--shards with --hogwild is refused" -- "$W" train $U --shards 4 --hogwild 2
expect 2 "--shards does not combine with --ensemble" "--shards with --ensemble is refused" -- \
    "$W" train $U --shards 4 --ensemble 2

if ! command -v mpirun >/dev/null; then
    echo "  SKIP mpirun is not installed (scripts/setup.sh --test installs openmpi-bin)" >&2
    skip=$((skip+1)); finish; exit
fi
# Open MPI keeps some memory to the end: the sanitizer builds check leaks elsewhere
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0
MPI="mpirun --oversubscribe --allow-run-as-root --mca btl self,vader"
# rank 0's oversubscribed neighbours yield instead of spinning
export OMPI_MCA_mpi_yield_when_idle=1 OMP_NUM_THREADS=1
if $MPI -np 1 "$W" train --help 2>&1 | grep -q "built without MPI"; then
    echo "  SKIP $W was built without MPI (install libopenmpi-dev and rebuild)" >&2
    skip=$((skip+1)); finish; exit
fi

# a sanitizer build runs the same code slower: there, a short form (the suite runs three builds)
short=0
if nm "$W" 2>/dev/null | grep -qE "__asan_report|__ubsan_handle"; then
    short=1
    echo "  SKIP sanitizer build: config 0 on 2 and 4 ranks only, no config 1, batch norm on 2 ranks, three start-up checks" >&2
fi

python3 - "$T" <<'PY'
import sys, random
random.seed(1)
for name, seed in (("d", 1), ("e", 2)):
    random.seed(seed)
    with open(f"{sys.argv[1]}/{name}.csv", "w") as f:
        for i in range(400):
            x = [random.gauss(0, 1) for _ in range(6)]
            f.write(f"{int(x[0] + x[1] > 0) + 2 * int(x[2] > 0)}," + ",".join(f"{v:.6f}" for v in x) + "\n")
random.seed(3)   # 4x4 images for a conv net
with open(f"{sys.argv[1]}/img.csv", "w") as f:
    for i in range(256):
        x = [random.gauss(0, 1) for _ in range(16)]
        f.write(f"{int(sum(x[:8]) > sum(x[8:])) + 2 * int(x[5] + x[6] + x[9] + x[10] > 0)}," + ",".join(f"{v:.6f}" for v in x) + "\n")
PY
# cmp.py A B [NAME]: |a - b| / |a| over the float tensors of two safetensors files (those whose name
# holds NAME), the 2-norm over all of them, and the largest elementwise |a - b| / max|a| of a tensor
cat > "$T/cmp.py" <<'PY'
import json, math, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__" or v["dtype"] != "F32": continue
        s, e = v["data_offsets"]
        out[k] = struct.unpack(f"<{(e - s) // 4}f", b[8 + n + s:8 + n + e])
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
keys = [k for k in a if len(sys.argv) < 4 or sys.argv[3] in k]
num = sum((x - y) ** 2 for k in keys for x, y in zip(a[k], b[k]))
den = sum(x * x for k in keys for x in a[k])
elem = max(max(abs(x - y) for x, y in zip(a[k], b[k])) / max(max(abs(x) for x in a[k]), 1e-30) for k in keys)
print("%.3g %.3g" % (math.sqrt(num / den), elem))
PY
# raw features (no --standardize): a checkpoint of a standardised run is no model wick eval takes
D="--train-csv $T/d.csv --test-csv $T/d.csv --val 0 --batch 16 --quiet --standardize off"
within() { /usr/bin/python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)" "$1" "$2"; }

# ---- equal results: K ranks against one process, 100 steps ----
cfgs=("--arch 6-16-4 --optimizer sgd --lr 0.1 --weight-decay 1e-3 --label-smoothing 0.1 --schedule linear"
      "--arch 6-32-16-4 --optimizer adamw --lr 0.01 --weight-decay 0.01 --clip-norm 0.5 --schedule exp --gamma 0.9")
ranks=("1 2 3 4" "2 3")
configs="0 1"
[ $short = 1 ] && { ranks=("2 4"); configs=0; }
for c in $configs; do
    $W train $D ${cfgs[$c]} --epochs 4 --max-steps 100 --out "$T/one$c.safetensors" >/dev/null 2>&1
    for K in ${ranks[$c]}; do
        $MPI -np $K "$W" train $D ${cfgs[$c]} --epochs 4 --max-steps 100 --out "$T/k$K.$c.safetensors" >"$T/k$K.log" 2>&1
        set -- $(/usr/bin/python3 "$T/cmp.py" "$T/one$c.safetensors" "$T/k$K.$c.safetensors" 2>/dev/null || echo 1 1)
        within "$1" 1e-6
        ok $? "config $c, $K ranks: weights after 100 steps within 1e-6 of one process (|dw|/|w| $1, elementwise $2)"
    done
done
# a conv net (two convolutions, max pooling), Adam with weight decay
if [ $short = 0 ]; then
    C="--train-csv $T/img.csv --test-csv $T/img.csv --val 0 --batch 32 --quiet --optimizer adam --lr 0.01 --weight-decay 1e-4
       --arch input:1x4x4,conv2d:8:3:pad=1,relu,maxpool:2,conv2d:8:3:pad=1,relu,flatten,linear:4 --epochs 13 --max-steps 100"
    $W train $C --out "$T/conv1.safetensors" >/dev/null 2>&1
    for K in 2 4; do
        $MPI -np $K "$W" train $C --out "$T/conv$K.safetensors" >/dev/null 2>&1
        set -- $(/usr/bin/python3 "$T/cmp.py" "$T/conv1.safetensors" "$T/conv$K.safetensors" 2>/dev/null || echo 1 1)
        within "$1" 1e-6
        ok $? "conv net, $K ranks: weights after 100 steps within 1e-6 of one process (|dw|/|w| $1, elementwise $2)"
    done
fi

# ---- batch norm, synchronised: batch statistics of the global batch (sums over the ranks) ----
# A conv net with two batch norms (one fused with its ReLU and max pool), convolutions without
# bias (a bias before batch norm has a zero gradient up to rounding, which Adam would amplify
# to +-lr): K ranks give one process's weights and running statistics to 1e-6 (2-norm) and
# every elementwise deviation within 1e-5 of its tensor's largest value, and its losses.
if [ $short = 0 ]; then bn_ranks="3 4"; else bn_ranks="2"; fi   # 3: shares 10, 11, 11 of 32
C="--train-csv $T/img.csv --test-csv $T/img.csv --val 0 --batch 32 --quiet --optimizer adam --lr 0.01 --weight-decay 1e-4
   --arch input:1x4x4,conv2d:8:3:pad=1:bias=0,batchnorm,relu,maxpool:2,conv2d:8:3:pad=1:bias=0,batchnorm,relu,flatten,linear:4
   --epochs 4 --max-steps 30 --json"
$W train $C --out "$T/bnc1.safetensors" 2>/dev/null | tail -n 1 > "$T/bnc1.json"
for K in $bn_ranks; do
    $MPI -np $K "$W" train $C --out "$T/bnc$K.safetensors" 2>/dev/null | tail -n 1 > "$T/bnc$K.json"
    set -- $(/usr/bin/python3 "$T/cmp.py" "$T/bnc1.safetensors" "$T/bnc$K.safetensors" 2>/dev/null || echo 1 1)
    l=$(/usr/bin/python3 -c "
import json, sys
a, b = (json.load(open(f))['train_loss'] for f in sys.argv[1:])
print('%.3g' % max(abs(x - y) / abs(x) for x, y in zip(a, b)) if len(a) == len(b) >= 3 else 1)" "$T/bnc1.json" "$T/bnc$K.json" 2>/dev/null || echo 1)
    within "$1" 1e-6 && within "$2" 1e-5 && within "$l" 1e-6
    ok $? "batch norm, $K ranks: weights and running statistics after 30 steps within 1e-6 of one process (|dw|/|w| $1, elementwise $2), epoch losses within 1e-6 ($l)"
done
K=${bn_ranks%% *}
set -- $(/usr/bin/python3 "$T/cmp.py" "$T/bnc1.safetensors" "$T/bnc$K.safetensors" running_var 2>/dev/null || echo 1 1)
within "$1" 1e-6
ok $? "batch norm, $K ranks: the running variance is the global batch's (|d|/|v| $1)"
# the gradients summed in float (--allreduce f32: half the bytes): the same bound, on 3 ranks
# (on 2, a float sum of two terms is the double sum rounded: the same bits)
$MPI -np 3 "$W" train $D ${cfgs[0]} --epochs 4 --max-steps 100 --allreduce f32 \
    --out "$T/f32.safetensors" >/dev/null 2>&1
set -- $(/usr/bin/python3 "$T/cmp.py" "$T/one0.safetensors" "$T/f32.safetensors" 2>/dev/null || echo 1 1)
within "$1" 1e-6
ok $? "gradients summed in float, 3 ranks: weights after 100 steps within 1e-6 of one process (|dw|/|w| $1, elementwise $2)"
expect 1 "rank 1's gradient sum (--allreduce, --shards) differs" "ranks that sum in different precisions are refused" -- \
    $MPI -np 1 "$W" train $D --arch 6-16-4 : -np 1 "$W" train $D --arch 6-16-4 --allreduce f32
# micro-shards (--shards S): each global batch in S fixed shards whose gradients are summed
# exactly and added in a fixed order: the same bits on any K <= S ranks and on one process
# with --shards S (files compared whole)
if [ $short = 0 ]; then sh_ranks="1 3 4"; else sh_ranks="3"; fi
$W train $D ${cfgs[0]} --epochs 4 --max-steps 100 --shards 12 --out "$T/sh0.safetensors" >/dev/null 2>&1
for K in $sh_ranks; do
    $MPI -np $K "$W" train $D ${cfgs[0]} --epochs 4 --max-steps 100 --shards 12 \
        --out "$T/sh$K.safetensors" >/dev/null 2>&1
    [ -s "$T/sh0.safetensors" ] && cmp -s "$T/sh0.safetensors" "$T/sh$K.safetensors"
    ok $? "12 micro-shards, $K ranks: after 100 steps the same bits as one process with --shards 12"
done
expect 1 "2 micro-shards for 3 ranks: each rank needs one at least" "fewer micro-shards than ranks is refused" -- \
    $MPI -np 3 "$W" train $D --arch 6-16-4 --shards 2
# with dropout (keyed by shard), AdamW and clipping by norm; and a checkpoint of 2 ranks resumed on
# 3 ranks, then on one process, ends with the bits of an uninterrupted run
Q="--arch input:6,linear:32,relu,dropout:0.3,linear:16,relu,linear:4 --optimizer adamw --lr 0.01 --weight-decay 0.01
   --clip-norm 0.5 --schedule exp --gamma 0.9 --epochs 4 --shards 6"
$W train $D $Q --out "$T/shq0.safetensors" >/dev/null 2>&1
if [ $short = 0 ]; then
    $MPI -np 3 "$W" train $D $Q --out "$T/shq3.safetensors" >/dev/null 2>&1
    [ -s "$T/shq0.safetensors" ] && cmp -s "$T/shq0.safetensors" "$T/shq3.safetensors"
    ok $? "6 micro-shards with dropout, AdamW and clipping by norm: 3 ranks give one process's bits (100 steps)"
fi
rm -f "$T/shc.safetensors"
$MPI -np 2 "$W" train $D $Q --max-steps 38 --checkpoint "$T/shc.safetensors" >/dev/null 2>&1 &&
$MPI -np 3 "$W" train $D $Q --max-steps 70 --resume "$T/shc.safetensors" --checkpoint "$T/shc.safetensors" >/dev/null 2>&1 &&
$W train $D $Q --resume "$T/shc.safetensors" --out "$T/shqr.safetensors" >/dev/null 2>&1 &&
[ -s "$T/shq0.safetensors" ] && cmp -s "$T/shq0.safetensors" "$T/shqr.safetensors"
ok $? "6 micro-shards: a checkpoint of 2 ranks resumed on 3, then on one process, ends with an uninterrupted run's bits"
# every rank takes part in every batch norm's sums: a global batch of fewer rows than ranks is refused
expect 1 "batch norm over 3 ranks needs at least 3 rows in every global batch" \
    "batch norm with a last batch of 2 rows on 3 ranks is refused at start-up" -- \
    $MPI -np 3 "$W" train $D --arch input:6,linear:16,batchnorm,relu,linear:4 --batch 398

# ---- checkpoints: 2 ranks to step 38, 3 ranks to step 70, one process to the end ----
R="--arch 6-16-4 --optimizer sgd --lr 0.1 --epochs 4"
$W train $D $R --out "$T/full.safetensors" >/dev/null 2>&1
$MPI -np 2 "$W" train $D $R --max-steps 38 --checkpoint "$T/c.safetensors" >/dev/null 2>&1 &&
$MPI -np 3 "$W" train $D $R --max-steps 70 --resume "$T/c.safetensors" --checkpoint "$T/c.safetensors" >/dev/null 2>&1 &&
$W train $D $R --resume "$T/c.safetensors" --out "$T/resumed.safetensors" >/dev/null 2>&1
ok $? "a checkpoint of 2 ranks resumes on 3 ranks, and theirs on one process"
set -- $(/usr/bin/python3 "$T/cmp.py" "$T/full.safetensors" "$T/resumed.safetensors" 2>/dev/null || echo 1 1)
within "$1" 1e-6
ok $? "... and ends within 1e-6 of one uninterrupted process (|dw|/|w| $1, elementwise $2)"

# ---- faults ----
# a rank killed mid-run: the job ends within 30 s, non-zero, and the last checkpoint loads
rm -f "$T/kill.safetensors"
$MPI -np 4 "$W" train $D --arch 6-16-4 --epochs 1000000 --checkpoint "$T/kill.safetensors" \
    --checkpoint-steps 20 >"$T/kill.log" 2>&1 &
mp=$!
for i in $(seq 100); do [ -s "$T/kill.safetensors" ] && break; sleep 0.1; done
victim=$(pgrep -P $mp | tail -n 1)
t0=$(date +%s.%N)
[ -n "$victim" ] && kill -9 "$victim"
# wait at most 30 s for the job to end
for i in $(seq 300); do kill -0 $mp 2>/dev/null || break; sleep 0.1; done
if kill -0 $mp 2>/dev/null; then
    kill -9 $mp 2>/dev/null; wait $mp; rc=999
else
    wait $mp; rc=$?
fi
secs=$(/usr/bin/python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")
[ -n "$victim" ] && [ $rc != 0 ] && [ $rc != 999 ] && grep -q "signal 9" "$T/kill.log"
ok $? "a rank killed with SIGKILL ends the 4-rank job in ${secs} s (< 30), exit $rc, mpirun names the signal"
$W eval --model "$T/kill.safetensors" --test-csv "$T/d.csv" >/dev/null 2>&1
ok $? "... and the checkpoint it leaves is intact (checksum verified, it evaluates)"

# a rank that cannot read its data: the job fails at start-up, naming the rank
expect 1 "rank 1 of 2 failed at start-up: .*none.csv" "a rank without its data fails the job at start-up" -- \
    $MPI -np 1 "$W" train $D --arch 6-16-4 : -np 1 "$W" train --train-csv "$T/none.csv" --test-csv "$T/d.csv" \
    --val 0 --batch 16 --quiet --arch 6-16-4
expect 1 "rank 1's data set .* differs from rank 0's" "a rank with other data is refused at start-up" -- \
    $MPI -np 1 "$W" train $D --arch 6-16-4 : -np 1 "$W" train --train-csv "$T/e.csv" --test-csv "$T/d.csv" \
    --val 0 --batch 16 --quiet --arch 6-16-4
[ $short = 1 ] && { finish; exit; }
# decisions every rank takes together: a diverged loss (exit 3, rank 0 keeps the weights) and a stop
# request sent to one rank (all stop at the same step, rank 0 writes the checkpoint, exit 130)
rm -rf "$T/cwd"; mkdir -p "$T/cwd"   # empty: nothing but this run may write there
(cd "$T/cwd" && $MPI -np 2 "$W" train $D --arch 6-16-4 --lr 1e4 --epochs 3 --out "$T/div.safetensors" >"$T/div.log" 2>&1)
rc=$?
[ $rc = 3 ] && grep -q "diverged at step" "$T/div.log" && [ -s "$T/div.safetensors" ] && [ -z "$(ls "$T/cwd")" ]
ok $? "a diverged loss ends every rank with exit 3; rank 0 alone writes the last good weights (exit $rc)"
rm -f "$T/int.safetensors"
$MPI -np 2 "$W" train $D --arch 6-16-4 --epochs 1000000 --checkpoint "$T/int.safetensors" >"$T/int.log" 2>&1 &
mp=$!
# both ranks are past their start-up (SIGINT is then a stop request, not death) once rank 0
# has written the first epoch's checkpoint (a fixed sleep was too short on a loaded machine)
for i in $(seq 600); do [ -s "$T/int.safetensors" ] && break; sleep 0.1; done
kill -INT $(pgrep -P $mp | tail -n 1) 2>/dev/null
wait $mp; rc=$?
[ $rc = 130 ] && grep -q "interrupted at step" "$T/int.log" && $W eval --model "$T/int.safetensors" --test-csv "$T/d.csv" >/dev/null 2>&1
ok $? "SIGINT to one rank stops both at the same step: exit 130, rank 0's checkpoint evaluates (exit $rc)"
expect 1 "rank 2's configuration differs" "a rank with another learning rate is refused at start-up" -- \
    $MPI -np 2 "$W" train $D --arch 6-16-4 : -np 1 "$W" train $D --arch 6-16-4 --lr 0.2
expect 1 "rank 1's initial weights" "a rank with another seed is refused at start-up" -- \
    $MPI -np 1 "$W" train $D --arch 6-16-4 : -np 1 "$W" train $D --arch 6-16-4 --init-from "$T/one0.safetensors"
expect 2 "does not run under mpirun" "--ensemble under mpirun is a usage error" -- \
    $MPI -np 2 "$W" train $D --arch 6-16-4 --ensemble 2
finish
