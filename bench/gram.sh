#!/usr/bin/env bash
# gram.sh — the kernel Grams' speed and neural-tangents' in the
# same run: NNGP + NTK Gram matrices of N Fashion-MNIST images through depth
# L at criticality by wick_kgram (ReLU and tanh; neural-tangents: ReLU), each
# checked against the theory engine's layer-by-layer flow with direct
# quadrature on the first CHECK inputs, neural-tangents' kernels against
# wick's on 64 inputs, and the speed ratio.
#   bench/gram.sh            N = 10000, L = 10
#   N=2000 bench/gram.sh     quicker
#   OLD=1 bench/gram.sh      also the theory engine's tabulated flow
# neural-tangents' row needs bench/nt-venv (bench/nt_venv.sh); without it
# the row is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
L=${L:-10}
CHECK=${CHECK:-48}
BUILD=${BUILD:-build}
bash scripts/setup.sh --bench   # libxsmm, which `make bench` links
make -s -j2 BUILD="$BUILD" bench >/dev/null
dump=$(mktemp)
out=$(mktemp)
trap 'rm -f "$dump" "$out"' EXIT
"$BUILD"/bench/gram --n "$N" --depth "$L" --check "$CHECK" --dump "$dump" ${OLD:+--old} | tee "$out"
if [ -x bench/nt-venv/bin/python ]; then
    nt=$(bench/nt-venv/bin/python bench/nt_gram.py --n "$N" --depth "$L" --check "$dump" 2>/dev/null)
    echo "$nt"
    w=$(sed -n 's/^relu .* in \([0-9.]*\) s .*/\1/p' "$out")
    t=$(echo "$nt" | sed -n 's/.* in \([0-9.]*\) s = .*/\1/p')
    [ -n "$w" ] && [ -n "$t" ] && awk -v w="$w" -v t="$t" \
        'BEGIN { printf "ReLU: wick %.2f s, neural-tangents %.2f s: %.1fx\n", w, t, t / w }'
else
    echo "gram.sh: no bench/nt-venv (run bench/nt_venv.sh): neural-tangents row skipped" >&2
fi
