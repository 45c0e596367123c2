#!/usr/bin/env bash
# What data parallelism costs as it grows: a model of one synchronous step on K ranks,
#   T(K) = C(B/K) + A(K, 8P),   A(K, n) = 2(K-1) alpha + 2 (K-1)/K n / bw   (ring allreduce of n bytes),
# C(b) the compute of a step on b samples (one rank, one thread), P the parameter count (wick sums
# gradients in double: 8 bytes each).  alpha and bw are fitted on MPI_Allreduce timed here over
# shared memory (K = 2, 3, 4; bench/mpi/allreduce.c), C(b) is measured (mpirun -np 1, batch B/K);
# then the model is set beside measured K-rank steps (K = 1, 2, 4; one thread a rank; K above the
# core count shares cores, which the model's compute term counts as C(B/K) * K/cores), and used to
# predict K = 8..64 ranks, one per machine, on 10 and 100 Gbit/s networks, with the gradients summed
# in double (the default) and in float (--allreduce f32: 4P bytes), and the allreduce's share of a step.
# About 3 minutes on 2 quiet cores (STEPS=30; the CNN's steps are most of it).
#   bench/mpi_scaling.sh                     the headline MLP, a small MLP and the CNN, B = 128
#   MODELS="mlp" STEPS=20 B=256 bench/mpi_scaling.sh
# Timings taken while other work runs on the machine are noisy: re-run on a quiet one.
set -eu
cd "$(dirname "$0")/.."
W=${WICK:-build/wick}
B=${B:-128}
STEPS=${STEPS:-30}
MODELS=${MODELS:-mlp small cnn}
OUT=${OUT:-bench/out/mpi_scaling}
CORES=${CORES:-$(nproc)}
CNN=input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,batchnorm,relu,maxpool:2,conv2d:128:3:pad=1,batchnorm,relu,maxpool:2,flatten,dropout:0.25,linear:256,batchnorm,relu,dropout:0.25,linear:10
mkdir -p "$OUT"
bash scripts/setup.sh   # Open MPI (mpirun, mpicc) and what wick links
[ -n "${WICK:-}" ] || make -s -j2 build/wick >/dev/null
command -v mpirun >/dev/null && command -v mpicc >/dev/null || { echo "mpi_scaling: needs openmpi-bin and libopenmpi-dev" >&2; exit 1; }
[ -x "$W" ] || { echo "mpi_scaling: build $W first (make)" >&2; exit 1; }
export OMPI_MCA_mpi_yield_when_idle=1 OMP_NUM_THREADS=1
MPI="mpirun --oversubscribe --allow-run-as-root --mca btl self,vader"

mpicc -O2 bench/mpi/allreduce.c -o "$OUT/allreduce"
: > "$OUT/allreduce.txt"
for K in 2 3 4; do $MPI -np $K "$OUT/allreduce" $((16 << 20)) >> "$OUT/allreduce.txt"; done

# step_time K BATCH ARCH: seconds a step and the share rank 0 waited for sums
step_time() {
    $MPI -np "$1" "$W" train --arch "$3" --batch "$2" --threads 1 --max-steps "$STEPS" --epochs 1 --val 0 --quiet \
        2>/dev/null | awk -v b="$2" '/^training:/ {r = $7} /^data parallel:/ {w = $NF; gsub(/[()%]/, "", w)} END {print b / r, w}'
}
: > "$OUT/steps.txt"
for name in $MODELS; do
    case $name in
        mlp) arch=784-512-512-10 ;;
        small) arch=784-128-10 ;;
        cnn) arch=$CNN ;;
        *) arch=$name ;;
    esac
    P=$("$W" summary --arch "$arch" 2>/dev/null | awk '/total/ {print $2}')
    for K in 1 2 4; do
        set -- $(step_time 1 $((B / K)) "$arch")
        c=$1
        set -- $(step_time $K $B "$arch")
        echo "$name $P $K $c $1 $2" | tee -a "$OUT/steps.txt" >&2
    done
done

python3 - "$OUT" "$B" "$CORES" <<'PY'
import sys
out, B, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# ring allreduce fitted by least squares on the times (relative: each point weighted by 1/t)
pts = [tuple(float(v) for v in l.split()) for l in open(f"{out}/allreduce.txt") if l.strip()]
rows = [(2 * (K - 1), 2 * (K - 1) / K * n, t) for K, n, t in pts]
s11 = sum((a / t) ** 2 for a, b, t in rows); s12 = sum(a * b / t ** 2 for a, b, t in rows)
s22 = sum((b / t) ** 2 for a, b, t in rows); r1 = sum(a / t for a, b, t in rows); r2 = sum(b / t for a, b, t in rows)
det = s11 * s22 - s12 * s12
alpha = (r1 * s22 - r2 * s12) / det; inv_bw = (s11 * r2 - s12 * r1) / det
alpha, inv_bw = max(alpha, 1e-7), max(inv_bw, 1e-12)
A = lambda K, n, a, ib: 0 if K == 1 else 2 * (K - 1) * a + 2 * (K - 1) / K * n * ib
print(f"allreduce over shared memory, fitted: alpha {alpha * 1e6:.2f} us per message step, bandwidth {1 / inv_bw / 1e9:.2f} GB/s")
print(f"{'K':>3}{'bytes':>11}{'measured ms':>13}{'model ms':>10}")
for K, n, t in pts:
    if n in (8, 8192, 524288, 8388608): print(f"{int(K):>3}{int(n):>11}{t * 1e3:>13.4f}{A(K, n, alpha, inv_bw) * 1e3:>10.4f}")
steps = [l.split() for l in open(f"{out}/steps.txt") if l.strip()]
models = {}
for name, P, K, c, m, w in steps:
    models.setdefault(name, []).append((int(K), int(P), float(c), float(m), float(w) if w not in ("", "nan") else float("nan")))
print(f"\nstep time here, B = {B}, one thread a rank, {cores} cores (ms)")
print(f"{'model':>7}{'params':>9}{'K':>3}{'C(B/K)':>9}{'A(K,8P)':>9}{'model':>9}{'measured':>10}{'wait %':>8}")
for name, rs in models.items():
    for K, P, c, m, w in rs:
        a = A(K, 8 * P, alpha, inv_bw)
        pred = c * max(1, K / cores) + a
        print(f"{name:>7}{P:>9}{K:>3}{c * 1e3:>9.2f}{a * 1e3:>9.2f}{pred * 1e3:>9.2f}{m * 1e3:>10.2f}{w:>8.1f}")
# the cluster: one rank a machine; compute C(b) = c0 + c1 b fitted on the measured B/K
nets = [("10 Gbit/s", 25e-6, 10e9 / 8), ("100 Gbit/s", 5e-6, 100e9 / 8)]
for batch in (B, 8 * B):
    print(f"\npredicted on a cluster, global batch {batch}, one rank (one core's compute, as measured here) a machine")
    print(f"{'model':>7}{'network':>12}{'K':>4}{'step ms':>9}{'speed-up':>10}{'allreduce %':>13}"
          f"{'f32 step ms':>13}{'f32 speed-up':>14}{'f32 allreduce %':>17}")
    for name, rs in models.items():
        xs = [B / K for K, *_ in rs]; ys = [c for K, P, c, m, w in rs]
        n = len(xs); mx = sum(xs) / n; my = sum(ys) / n
        c1 = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / max(sum((x - mx) ** 2 for x in xs), 1e-30)
        c0 = max(my - c1 * mx, 0)
        C = lambda b: c0 + c1 * b
        P = rs[0][1]
        for label, a, bw in nets:
            for K in (8, 16, 32, 64):
                comm = A(K, 8 * P, a, 1 / bw)
                t = C(batch / K) + comm
                comm4 = A(K, 4 * P, a, 1 / bw)
                t4 = C(batch / K) + comm4
                print(f"{name:>7}{label:>12}{K:>4}{t * 1e3:>9.2f}{C(batch) / t:>10.1f}{100 * comm / t:>13.1f}"
                      f"{t4 * 1e3:>13.2f}{C(batch) / t4:>14.1f}{100 * comm4 / t4:>17.1f}")
PY
