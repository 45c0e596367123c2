#!/usr/bin/env bash
# Hogwild (wick train --hogwild T: T threads of lock-free asynchronous SGD on shared weights, each
# its own batches) against synchronous SGD on the same T cores (wick train --threads T: every batch
# split over the T threads, one update a batch), on Fashion-MNIST with the headline MLP.  Prints per
# epoch, for each: samples seen, wall seconds so far, training loss, validation loss and accuracy;
# then the final validation loss, test accuracy and samples/s, and the training loss (each step's,
# --log-steps, averaged over 50 steps) at a quarter, half and all of the samples.  Draws validation
# loss against wall time and against samples, and the per-step training loss against both (within
# an epoch, steps are spread evenly over its seconds) (gnuplot).
#   bench/mpi_hogwild.sh                    T=2, batches 128 and 16, 3 epochs (~3 minutes, 2 quiet cores)
#   T=4 EPOCHS=5 BATCHES="128" ARCH=784-1024-10 bench/mpi_hogwild.sh
# Timings taken while other work runs on the machine are noisy: re-run on a quiet one.
set -eu
cd "$(dirname "$0")/.."
W=${WICK:-build/wick}
T=${T:-2}
EPOCHS=${EPOCHS:-3}
ARCH=${ARCH:-784-512-512-10}
BATCHES=${BATCHES:-128 16}
LR=${LR:-0.05}
OUT=${OUT:-bench/out/hogwild}
mkdir -p "$OUT"
bash scripts/setup.sh   # what wick links, and gnuplot
[ -n "${WICK:-}" ] || make -s -j2 build/wick >/dev/null
[ -x "$W" ] || { echo "mpi_hogwild: build $W first (make)" >&2; exit 1; }
for b in $BATCHES; do
    # a batch of 16 takes the lr down with it (the same lr per sample)
    lr=$(python3 -c "print($LR * $b / 128)")
    common="--arch $ARCH --epochs $EPOCHS --batch $b --lr $lr --seed 1 --quiet --json"
    echo "== batch $b, lr $lr, $T cores: sync (--threads $T) and hogwild (--hogwild $T)" >&2
    $W train $common --threads $T --log-steps "$OUT/sync_b$b.steps" | tail -n 1 > "$OUT/sync_b$b.json"
    OMP_NUM_THREADS=1 $W train $common --hogwild $T --log-steps "$OUT/hogwild_b$b.steps" | tail -n 1 > "$OUT/hogwild_b$b.json"
done
python3 - "$OUT" "$T" $BATCHES <<'PY'
import json, sys
out, T, batches = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = []
for b in batches:
    print(f"\nbatch {b}, {T} cores")
    print(f"{'':8}{'epoch':>6}{'samples':>10}{'wall s':>9}{'train loss':>12}{'val loss':>10}{'val acc':>9}")
    for mode in ("sync", "hogwild"):
        o = json.load(open(f"{out}/{mode}_b{b}.json"))
        t = 0
        with open(f"{out}/{mode}_b{b}.dat", "w") as f:
            for e in o["epochs"]:
                t += e["seconds"]
                n = e["epoch"] * 55000
                print(f"{mode:8}{e['epoch']:>6}{n:>10}{t:>9.1f}{e['train_loss']:>12.4f}{e['val_loss']:>10.4f}{e['val_acc']:>9.4f}")
                f.write(f"{n} {t} {e['train_loss']} {e['val_loss']} {e['val_acc']}\n")
        # each step's training loss (in the order the steps finished), a running mean over 50 steps,
        # against samples seen and wall seconds (an epoch's seconds spread evenly over its steps)
        loss = [float(l) for l in open(f"{out}/{mode}_b{b}.steps") if l.strip()]
        nb = -(-55000 // int(b))
        ends, acc_t = [], 0
        for e in o["epochs"]:
            acc_t += e["seconds"]; ends.append(acc_t)
        smooth, run = [], 0.0
        with open(f"{out}/{mode}_b{b}.stepdat", "w") as f:
            for i, l in enumerate(loss):
                run += l - (loss[i - 50] if i >= 50 else 0)
                m = run / min(i + 1, 50)
                smooth.append(m)
                e = min(i // nb, len(ends) - 1)
                secs = (ends[e - 1] if e else 0) + (ends[e] - (ends[e - 1] if e else 0)) * ((i % nb) + 1) / nb
                if i % 5 == 4 or i == len(loss) - 1: f.write(f"{(i + 1) * int(b)} {secs:.3f} {m}\n")
        q = [smooth[max(0, len(smooth) * k // 4 - 1)] for k in (1, 2, 4)] if smooth else [float("nan")] * 3
        rows.append((b, mode, t, o.get("samples_per_s", 0), o.get("test_acc", float("nan")), o["epochs"][-1]["val_loss"], q))
print(f"\n{'batch':>6} {'mode':8}{'train s':>9}{'samples/s':>11}{'final val loss':>16}{'test acc':>10}"
      f"   train loss at 1/4, 1/2, all samples")
for b, mode, t, sps, acc, vl, q in rows:
    print(f"{b:>6} {mode:8}{t:>9.1f}{sps:>11.0f}{vl:>16.4f}{acc:>10.4f}   {q[0]:>9.4f}{q[1]:>9.4f}{q[2]:>9.4f}")
PY
if command -v gnuplot >/dev/null; then
    plots=""; steps=""
    for b in $BATCHES; do
        plots="$plots '$OUT/sync_b$b.dat' using X:4 w lp t 'sync, batch $b', '$OUT/hogwild_b$b.dat' using X:4 w lp t 'hogwild, batch $b',"
        steps="$steps '$OUT/sync_b$b.stepdat' using X:3 w l t 'sync, batch $b', '$OUT/hogwild_b$b.stepdat' using X:3 w l t 'hogwild, batch $b',"
    done
    gnuplot <<GP
set terminal pngcairo size 1200,900
set output '$OUT/hogwild.png'
set multiplot layout 2,2 title "Hogwild vs synchronous SGD on $T cores ($ARCH, Fashion-MNIST)"
set xlabel 'wall seconds'; set ylabel 'validation loss (each epoch)'
plot ${plots//X/2}
set xlabel 'samples seen'
plot ${plots//X/1}
set yrange [0.2:0.8]
set xlabel 'wall seconds'; set ylabel 'training loss (mean of 50 steps)'
plot ${steps//X/2}
set xlabel 'samples seen'
plot ${steps//X/1}
unset multiplot
GP
    echo "plot: $OUT/hogwild.png" >&2
fi
