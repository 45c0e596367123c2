#!/usr/bin/env bash
# Do the single-process MLP fast path (wick_chain) and the general graph executor (the path every
# data-parallel step takes) compute the same training step?  The main job (784-512-512-10 on
# Fashion-MNIST, SGD lr 0.05, momentum 0.9, linear schedule, batch 128) is run on the fast path
# through a chain of checkpoints; at each sampled step s both paths take step s + 1 from the same
# checkpoint (weights, momentum, data position, schedule), and the script prints
#   |w_fast - w_general| / |w_fast - w_s|     the paths' disagreement relative to the step taken
# at early steps, the first epoch's last (partial, 88-row) batch, the epoch boundaries and late in
# training.  Rounding gives ~1e-6; a difference in the algorithm (a missed term, another weighting
# of the partial batch, another learning rate) gives ~1e-2 or more at the steps it touches.
# Second part (PERTURB=1): what rounding does to the 20-epoch accuracy on its own: fast-path runs
# with a rounding-level perturbation and nothing else (their first k = 1..NPERT steps on the
# general executor; or one general step, s -> s + 1 for s in QSTEPS, inside a fast run), beside
# the pure fast and pure general runs of the same seed.
#   bench/mpi_paths.sh                  one-step comparison (about 4 minutes, 1 thread)
#   PERTURB=1 bench/mpi_paths.sh        also 2 + NPERT + 4 runs of 20 epochs (2-3 minutes each on a
#                                       quiet core, JOBS at a time; finished runs are kept)
set -eu
cd "$(dirname "$0")/.."
W=${WICK:-build/wick}
OUT=${OUT:-bench/out/mpi_paths}
SEED=${SEED:-1}
STEPS=${STEPS:-1 2 5 50 429 430 431 860 2000 4300 6000 8599}
PERTURB=${PERTURB:-0}
NPERT=${NPERT:-4}
QSTEPS=${QSTEPS:-1 2 5 50}
JOBS=${JOBS:-2}
mkdir -p "$OUT"
bash scripts/setup.sh
[ -n "${WICK:-}" ] || make -s -j2 build/wick >/dev/null
[ -x "$W" ] || { echo "mpi_paths: build $W first (make)" >&2; exit 1; }
R="--quiet --threads 1 --seed $SEED"
GEN="--clip-value 1e30"   # any clipping leaves the fast path; 1e30 clips nothing
# cmp.py CK F G: |F - G| / |F - CK| and |F - CK| / |CK| over the model's tensors (not the optimiser's)
cat > "$OUT/cmp.py" <<'PY'
import json, math, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: struct.unpack(f"<{(v['data_offsets'][1] - v['data_offsets'][0]) // 4}f",
                             b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]])
            for k, v in h.items() if k != "__metadata__" and not k.startswith("optimizer.")}
c, f, g = (load(p) for p in sys.argv[1:4])
d = math.sqrt(sum((x - y) ** 2 for k in f for x, y in zip(f[k], g[k])))
st = math.sqrt(sum((x - y) ** 2 for k in f for x, y in zip(f[k], c[k])))
w = math.sqrt(sum(x * x for k in c for x in c[k]))
print("%.3g %.3g" % (d / st, st / w))
PY
prev=""
printf "%-6s %-28s %-14s %s\n" step "what" "|dw|/|w|" "|w_fast - w_general| / |dw|"
for s in $STEPS; do
    ck="$OUT/ck$s.safetensors"
    if [ ! -s "$ck" ]; then   # the fast path from the previous checkpoint to step s
        if [ -z "$prev" ]; then $W train $R --max-steps $s --checkpoint "$ck" >/dev/null
        else $W train $R --resume "$prev" --max-steps $s --checkpoint "$ck" >/dev/null; fi
    fi
    prev=$ck
    n=$((s + 1))
    $W train $R --resume "$ck" --max-steps $n --out "$OUT/f.safetensors" >/dev/null
    $W train $R --resume "$ck" --max-steps $n $GEN --out "$OUT/g.safetensors" >/dev/null
    set -- $(python3 "$OUT/cmp.py" "$ck" "$OUT/f.safetensors" "$OUT/g.safetensors")
    e=$(( n % 430 ))
    what="epoch $(( (n - 1) / 430 + 1 )), batch $(( e ? e : 430 )) of 430"
    [ $e = 0 ] && what="$what (88 rows)"
    printf "%-6s %-28s %-14s %s\n" $n "$what" "$2" "$1"
done
[ "$PERTURB" = 1 ] || exit 0

# ---- rounding alone: the fast path after k general-executor steps, 20 epochs ----
run() {   # run NAME ARGS...: the test accuracy and loss of a finished run, kept in NAME.json
    local f="$OUT/$1.json"; shift
    [ -s "$f" ] || { "$@" | tail -n 1 > "$f.tmp" && mv "$f.tmp" "$f"; }
}
pert() {
    local k=$1
    [ -s "$OUT/p$k.json" ] && return
    $W train $R $GEN --max-steps $k --checkpoint "$OUT/pk$k.safetensors" >/dev/null
    run p$k nice -n 10 $W train $R --json --resume "$OUT/pk$k.safetensors"
}
once() {   # one general step s -> s + 1 (from the fast path's checkpoint at s), then the fast path
    local s=$1
    [ -s "$OUT/q$s.json" ] && return
    $W train $R $GEN --resume "$OUT/ck$s.safetensors" --max-steps $((s + 1)) --checkpoint "$OUT/qk$s.safetensors" >/dev/null
    run q$s nice -n 10 $W train $R --json --resume "$OUT/qk$s.safetensors"
}
jobs_=("run fast nice -n 10 $W train $R --json" "run general nice -n 10 $W train $R $GEN --json")
for k in $(seq $NPERT); do jobs_+=("pert $k"); done
for s in $QSTEPS; do jobs_+=("once $s"); done
for j in "${jobs_[@]}"; do
    $j &
    [ $(jobs -r | wc -l) -ge $JOBS ] && wait -n
done
wait
python3 - "$OUT" "$NPERT" "$QSTEPS" <<'PY'
import json, statistics, sys
out, n, qs = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
get = lambda name: json.load(open(f"{out}/{name}.json"))
f, g = get("fast"), get("general")
print(f"\n20 epochs, test accuracy / loss: fast path {f['test_acc']:.4f} / {f['test_loss']:.4f}, "
      f"general executor {g['test_acc']:.4f} / {g['test_loss']:.4f}")
acc = []
for name, what in [(f"p{k}", f"the first {k} step{'s' if k > 1 else ''} general, then fast") for k in range(1, n + 1)] + \
                  [(f"q{s}", f"fast, step {int(s) + 1} general, fast") for s in qs]:
    p = get(name)
    acc.append(p["test_acc"])
    print(f"{what:>36}: {p['test_acc']:.4f} / {p['test_loss']:.4f}")
print(f"fast path under rounding perturbations: mean {statistics.mean(acc):.4f}, sd {statistics.stdev(acc):.4f}, "
      f"range {min(acc):.4f} .. {max(acc):.4f}")
PY
