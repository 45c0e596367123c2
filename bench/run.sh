#!/usr/bin/env bash
# run.sh — wick's training speed beside PyTorch's, in one run.
#
# For each configuration, alternately, REPS times: wick, PyTorch from PyPI
# (bench/venv, made by bench/torch_venv.sh) with 1 and 2 intra-op threads,
# Debian's python3-torch 1.13 (/usr/bin/python3) with 1 and 2 threads; the
# 2-thread PyTorch runs once with each OpenMP wait policy (below).  Every
# run is one epoch of Fashion-MNIST (60000 samples), SGD momentum 0.9,
# lr 0.05.  The machine's FMA peak (build/bench/peak) is measured at the
# start and the end; the table gives medians over the repetitions:
# samples/s, GFLOP/s (2 per multiply-add: 3.21 MFLOP a sample for
# 784-512-512-10), the fraction of the 2-core peak, and wick / best PyTorch.
#
#   bench/run.sh                       everything: about 20 min on 2 cores
#   REPS=1 CONFIGS=headline bench/run.sh   one configuration once: ~1 min
#   SYSTEMS="torch-pypi debian"        leave wick out (e.g. before `wick train` exists)
#   LIMIT=20000                        PyTorch trains on the first N samples only (quick probes)
#
# Configurations: headline (784-512-512-10 relu b128), tanh, b32, b512, deep,
# and bf16 (the headline with --precision bf16 against PyTorch's bf16 autocast,
# its % of the bf16 dot product's peak; by default only on a CPU with
# AVX512-BF16)
# (784-[128]x16-10 relu b128).  Raw JSON lines go to bench/out/run-*.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
bf16_cfg=$(grep -qw avx512_bf16 /proc/cpuinfo && echo " bf16")
CONFIGS=${CONFIGS:-"headline$bf16_cfg tanh b32 b512 deep"}
SYSTEMS=${SYSTEMS:-"wick torch-pypi debian"}
deep_arch="784$(printf -- '-128%.0s' $(seq 16))-10"
venv_py=bench/venv/bin/python
out=bench/out/run-$(date -u +%Y%m%dT%H%M%SZ).jsonl
mkdir -p bench/out
: > "$out"

bash scripts/setup.sh --bench
make -s bench >/dev/null
if [[ " $SYSTEMS " == *" wick "* ]]; then
    make -s -j2 build/wick >/dev/null
    if ! build/wick train --help >/dev/null 2>&1; then
        echo "run.sh: build/wick has no 'train' command yet; wick rows are skipped" >&2
        SYSTEMS=${SYSTEMS//wick/}
    fi
fi
if [[ " $SYSTEMS " == *" torch-pypi "* ]] && ! [ -x "$venv_py" ]; then
    echo "run.sh: no $venv_py; run bench/torch_venv.sh first (PyPI rows skipped)" >&2
    SYSTEMS=${SYSTEMS//torch-pypi/}
fi

config() {   # name -> "arch act batch precision"
    case $1 in
    headline) echo "784-512-512-10 relu 128 f32" ;;
    bf16) echo "784-512-512-10 relu 128 bf16" ;;
    tanh) echo "784-512-512-10 tanh 128 f32" ;;
    b32) echo "784-512-512-10 relu 32 f32" ;;
    b512) echo "784-512-512-10 relu 512 f32" ;;
    deep) echo "$deep_arch relu 128 f32" ;;
    *) echo "run.sh: unknown configuration $1" >&2; exit 2 ;;
    esac
}

record() {   # config system threads json-line [OpenMP wait policy]
    local line
    line=$(printf '%s\n' "$4" | tail -n 1)
    if [[ $line != "{"* ]]; then
        echo "run.sh: $2 ($3 threads, $1) printed no JSON line" >&2
        return
    fi
    printf '{"config": "%s", "arch": "%s", "sys": "%s", "thr": %s, "wait": "%s", "r": %s}\n' "$1" "$arch" "$2" "$3" "${5:-}" "$line" >> "$out"
}

# PyTorch's best configuration: with 2 threads, libgomp's default (active,
# spinning) wait and the passive one each win somewhere: on the shared 2-core
# box passive was 4-17x faster (Debian 1.13: 435 vs 7257 samples/s), on a
# quiet AVX-512 Xeon active may be ahead.  So every 2-thread run is made with
# both (TORCH_WAIT="passive active", the default; one of them to save time),
# and the table counts the better of all PyTorch rows.
TORCH_WAIT=${TORCH_WAIT:-"passive active"}
torch_run() {   # python threads wait arch act batch precision
    OMP_NUM_THREADS=$2 MKL_NUM_THREADS=$2 OPENBLAS_NUM_THREADS=$2 OMP_WAIT_POLICY=$3 \
        "$1" bench/torch_mlp.py --threads "$2" --arch "$4" --act "$5" --batch "$6" --precision "$7" \
        ${LIMIT:+--limit $LIMIT} 2>/dev/null || true
}
torch_all() {   # python system-name: 1 thread, then 2 threads with each wait policy
    record "$name" "$2" 1 "$(torch_run "$1" 1 active "$arch" "$act" "$batch" "$prec")" active
    for w in $TORCH_WAIT; do
        record "$name" "$2" 2 "$(torch_run "$1" 2 "$w" "$arch" "$act" "$batch" "$prec")" "$w"
    done
}

build/bench/peak --json > bench/out/peak-start.json
echo "run.sh: peak $(cat bench/out/peak-start.json)" >&2
start=$(date +%s)
for name in $CONFIGS; do
    read -r arch act batch prec <<< "$(config "$name")"
    for rep in $(seq "$REPS"); do
        echo "run.sh: $name rep $rep/$REPS ($(($(date +%s) - start)) s)" >&2
        for sys in $SYSTEMS; do
            case $sys in
            wick)
                record "$name" wick 2 "$(build/wick train --arch "$arch" --act "$act" --batch "$batch" \
                    --precision "$prec" --epochs 1 --optimizer sgd --momentum 0.9 --lr 0.05 --json 2>/dev/null || true)" ;;
            torch-pypi) torch_all "$venv_py" torch-pypi ;;
            debian) torch_all /usr/bin/python3 torch-debian ;;
            esac
        done
    done
done
build/bench/peak --json > bench/out/peak-end.json
echo "run.sh: done in $(($(date +%s) - start)) s; raw results in $out" >&2

/usr/bin/python3 - "$out" bench/out/peak-start.json bench/out/peak-end.json <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
p0, p1 = (json.load(open(f)) for f in sys.argv[2:4])
peak1 = max(p0["peak_gflops_1"], p1["peak_gflops_1"])
peak2 = max(p0["peak_gflops_all"], p1["peak_gflops_all"])
bpeak2 = max(p0.get("bf16_peak_gflops_all", 0), p1.get("bf16_peak_gflops_all", 0))
def fps(arch):
    d = []
    for part in arch.split("-"):
        w, _, n = part.partition("x")
        d += [int(w)] * (int(n) if n else 1)
    lin = [d[i] * d[i + 1] for i in range(len(d) - 1)]
    return 2 * (2 * sum(lin) + sum(lin[1:]))
print(f"FMA peak (best of start/end): 1 core {peak1:.1f} GFLOP/s, 2 cores {peak2:.1f} GFLOP/s"
      + (f"; bf16 dot-product peak 2 cores {bpeak2:.1f} GFLOP/s (the bf16 rows' %peak2)" if bpeak2 else ""))
print(f"{'config':9} {'system':34} {'thr':>3} {'n':>2} {'samples/s':>10} {'(min-max)':>17} {'GFLOP/s':>8} {'%peak2':>6} {'acc':>6}")
configs = list(dict.fromkeys(r["config"] for r in rows))
arch, wick_med = {}, {}
for c in configs:
    groups = {}
    for r in rows:
        if r["config"] == c:
            arch[c] = r["arch"]
            label = r["r"].get("system", r["sys"]) + (f' ({r["wait"]})' if r.get("wait") and r["thr"] > 1 else "")
            groups.setdefault((r["sys"], r["thr"], label), []).append(r["r"])
    best_torch, wick = 0, None
    for (sys_, thr, label), rs in groups.items():
        sps = [x["samples_per_s"] for x in rs]
        med = statistics.median(sps)
        f = rs[0].get("flops_per_sample") or fps(arch[c])
        gf = med * f / 1e9
        acc = statistics.median(x.get("test_acc", float("nan")) for x in rs)
        pk = bpeak2 if c == "bf16" and bpeak2 else peak2
        print(f"{c:9} {label[:34]:34} {thr:>3} {len(rs):>2} {med:>10.0f} {min(sps):>8.0f}-{max(sps):<8.0f} {gf:>8.1f} {100 * gf / pk:>5.1f}% {acc:>6.3f}")
        if sys_.startswith("torch"):
            best_torch = max(best_torch, med)
        else:
            wick = med
    if wick and best_torch:
        print(f"{c:9} wick / best PyTorch (medians): {wick / best_torch:.2f}")
    wick_med[c] = wick
if wick_med.get("bf16") and wick_med.get("headline"):
    print(f"bf16      wick bf16 / wick float32 (headline medians): {wick_med['bf16'] / wick_med['headline']:.2f}")
PY
