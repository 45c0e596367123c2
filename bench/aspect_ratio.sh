#!/usr/bin/env bash
# aspect_ratio.sh — the optimal depth-to-width ratio r = L/n, measured beside
# the book's estimate (docs/theory-residual.md): MLPs of about P parameters
# (P = 8n + (L-1) n^2 + 4n + biases for L hidden layers of width n) trained by
# `wick train` at the critical initialisation on a small task, their test loss
# against r, for ReLU and tanh; the predicted r* for one and four outputs from
# `wick theory --residual 0` (nu r* = 4/(20 + 3 n_L)).
#   bench/aspect_ratio.sh                    P = 20000, 3 seeds, 40 epochs
#   P=5000 SEEDS=2 EPOCHS=20 bench/aspect_ratio.sh   quicker
# The task: 8 Gaussian features, 4 classes labelled by a random 2-hidden-layer
# tanh teacher (fixed seed), 8000 training and 4000 test rows; early stopping
# on 1000 held-out rows keeps each net at its best epoch.
# Writes bench/out/aspect_ratio/{runs.csv,summary.csv,aspect_ratio.png}.
# Each run is one thread: the loss is the figure, not the time, so a busy
# machine changes nothing but the wall clock.
set -euo pipefail
cd "$(dirname "$0")/.."
P=${P:-20000}
SEEDS=${SEEDS:-3}
EPOCHS=${EPOCHS:-40}
BUILD=${BUILD:-build}
DEPTHS=${DEPTHS:-"1 2 3 4 6 8 12 16 24"}
bash scripts/setup.sh   # the build packages and gnuplot
make -s -j2 BUILD="$BUILD" "$BUILD"/wick >/dev/null
W="$BUILD"/wick
D=bench/out/aspect_ratio
mkdir -p "$D"
/usr/bin/python3 - "$D" <<'EOF'
import sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(20261206)
n0, h = 8, 32
W1 = rng.normal(size=(n0, h)) / np.sqrt(n0)
W2 = rng.normal(size=(h, h)) / np.sqrt(h)
W3 = rng.normal(size=(h, 4)) / np.sqrt(h)
label = lambda X: np.argmax(np.tanh(2 * np.tanh(2 * X @ W1) @ W2) @ W3, axis=1)
for name, N in (("train", 8000), ("test", 4000)):
    X = rng.normal(size=(N, n0))
    np.savetxt(f"{d}/{name}.csv", np.column_stack([label(X), X]), delimiter=",",
               fmt=["%d"] + ["%.6f"] * n0)
EOF
# the width of L hidden layers that gives about P parameters
width_for() {
    awk -v P="$P" -v L="$1" 'BEGIN { a = L - 1; b = 8 + 4 + L; c = 4 - P;
        n = a > 0 ? (-b + sqrt(b * b - 4 * a * c)) / (2 * a) : -c / b; printf "%d\n", n + 0.5 }'
}
echo "act,L,n,r,seed,params,test_loss,test_acc" > "$D/runs.csv"
for act in relu tanh; do
    for L in $DEPTHS; do
        n=$(width_for "$L")
        for s in $(seq 1 "$SEEDS"); do
            # a run that diverges (exit 3) is recorded as such, not averaged
            j=$("$W" train --train-csv "$D/train.csv" --test-csv "$D/test.csv" \
                --arch "8-[$n]x$L-4" --act "$act" --epochs "$EPOCHS" --val 1000 --patience 6 \
                --seed "$s" --threads 1 --quiet --json --out "$D/last.safetensors" \
                2>/dev/null | tail -n 1) || j=diverged
            /usr/bin/python3 -c "
import json, sys
L, n = int(sys.argv[3]), int(sys.argv[4])
try: j = json.loads(sys.argv[1]); loss, acc = f'{j[\"test_loss\"]:.6g}', f'{j[\"test_acc\"]:.6g}'
except ValueError: loss, acc = 'diverged', 'diverged'
p = 8 * n + (L - 1) * n * n + 4 * n + L * n + 4
print(f'{sys.argv[2]},{L},{n},{L / n:.6g},{sys.argv[5]},{p},{loss},{acc}')
" "$j" "$act" "$L" "$n" "$s" | tee -a "$D/runs.csv"
        done
    done
done
# mean and standard error over seeds; the book's r* for 1 and 4 outputs
/usr/bin/python3 - "$D" "$W" <<'EOF'
import sys, json, subprocess, csv, math
d, w = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(f"{d}/runs.csv")))
out = open(f"{d}/summary.csv", "w")
out.write("act,L,n,r,mean_test_loss,se\n")
best = {}
for act in ("relu", "tanh"):
    for L in sorted({int(r["L"]) for r in rows if r["act"] == act}):
        v = [float(r["test_loss"]) for r in rows if r["act"] == act and int(r["L"]) == L
             and r["test_loss"] != "diverged"]
        nd = sum(1 for r in rows if r["act"] == act and int(r["L"]) == L and r["test_loss"] == "diverged")
        if nd: print(f"{act} L = {L}: {nd} run(s) diverged, left out of the mean")
        if not v: continue
        n = int(next(r["n"] for r in rows if r["act"] == act and int(r["L"]) == L))
        m = sum(v) / len(v)
        se = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v)) if len(v) > 1 else 0
        out.write(f"{act},{L},{n},{L / n:.6g},{m:.6g},{se:.3g}\n")
        if act not in best or m < best[act][1]: best[act] = (L / n, m, L, n)
out.close()
for act in ("relu", "tanh"):
    j = json.loads(subprocess.run([w, "theory", "--residual", "0", "--act", act, "--depth", "3",
                                   "--json"], capture_output=True, text=True).stdout.splitlines()[-1])
    nu = j["residual"]["nu_plain"]
    r1, r4 = 4 / (23 * nu), 4 / (32 * nu)
    b = best[act]
    print(f"{act}: predicted r* = {r1:.4g} (one output), {r4:.4g} (n_L = 4; nu = {nu:.4g}); "
          f"measured best r = {b[0]:.4g} (L = {b[2]}, n = {b[3]}, test loss {b[1]:.4g})")
    open(f"{d}/rstar_{act}", "w").write(f"{r1} {r4}\n")
EOF
read -r rr1 rr4 < "$D/rstar_relu"
read -r tr1 tr4 < "$D/rstar_tanh"
gnuplot <<EOF
set terminal pngcairo size 900,600
set output "$D/aspect_ratio.png"
set datafile separator ","
set logscale x
set xlabel "aspect ratio r = L/n (about $P parameters)"
set ylabel "test loss (cross-entropy), mean over $SEEDS seeds"
set key top left
set title "Trained MLPs at fixed parameter count; vertical lines: the book's r* (solid: n_L = 1, dashed: n_L = 4)"
set arrow from $rr1, graph 0 to $rr1, graph 1 nohead lc rgb "#1f77b4" lw 2
set arrow from $rr4, graph 0 to $rr4, graph 1 nohead lc rgb "#1f77b4" lw 2 dt 2
set arrow from $tr1, graph 0 to $tr1, graph 1 nohead lc rgb "#d62728" lw 2
set arrow from $tr4, graph 0 to $tr4, graph 1 nohead lc rgb "#d62728" lw 2 dt 2
plot "< grep '^relu' $D/summary.csv" using 4:5:6 with yerrorlines lc rgb "#1f77b4" pt 7 title "ReLU", \
     "< grep '^tanh' $D/summary.csv" using 4:5:6 with yerrorlines lc rgb "#d62728" pt 5 title "tanh"
EOF
echo "plot: $D/aspect_ratio.png"
