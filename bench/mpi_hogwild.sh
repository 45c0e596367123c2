#!/usr/bin/env bash
# Hogwild (wick train --hogwild T: T threads of lock-free asynchronous SGD on shared weights, each
# its own batches) against synchronous SGD on the same T cores (wick train --threads T: every batch
# split over the T threads, one update a batch), on Fashion-MNIST with the headline MLP.  Prints per
# epoch, for each: samples seen, wall seconds so far, training loss, validation loss and accuracy;
# then the test accuracy; draws loss against wall time and against samples (gnuplot, when present).
#   bench/mpi_hogwild.sh                    T=2, batches 128 and 16, 3 epochs
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
    $W train $common --threads $T | tail -n 1 > "$OUT/sync_b$b.json"
    OMP_NUM_THREADS=1 $W train $common --hogwild $T | tail -n 1 > "$OUT/hogwild_b$b.json"
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
        rows.append((b, mode, t, o.get("samples_per_s", 0), o.get("test_acc", float("nan")), o["epochs"][-1]["val_loss"]))
print(f"\n{'batch':>6} {'mode':8}{'train s':>9}{'samples/s':>11}{'final val loss':>16}{'test acc':>10}")
for b, mode, t, sps, acc, vl in rows:
    print(f"{b:>6} {mode:8}{t:>9.1f}{sps:>11.0f}{vl:>16.4f}{acc:>10.4f}")
PY
if command -v gnuplot >/dev/null; then
    plots=""
    for b in $BATCHES; do
        plots="$plots '$OUT/sync_b$b.dat' using X:4 w lp t 'sync, batch $b', '$OUT/hogwild_b$b.dat' using X:4 w lp t 'hogwild, batch $b',"
    done
    gnuplot <<GP
set terminal pngcairo size 1100,450
set output '$OUT/hogwild.png'
set multiplot layout 1,2 title "Hogwild vs synchronous SGD on $T cores ($ARCH, Fashion-MNIST): validation loss"
set xlabel 'wall seconds'; set ylabel 'validation loss'
plot ${plots//X/2}
set xlabel 'samples seen'
plot ${plots//X/1}
unset multiplot
GP
    echo "plot: $OUT/hogwild.png" >&2
fi
