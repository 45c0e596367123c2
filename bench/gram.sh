#!/usr/bin/env bash
# gram.sh — the theory engine's speed and neural-tangents' in the
# same run: NNGP + NTK Gram matrices of N Fashion-MNIST images through depth
# L (ReLU by its closed form, tanh by the tabulated map; neural-tangents:
# ReLU), then neural-tangents' kernels checked against wick's on 64 inputs.
#   bench/gram.sh            N = 10000, L = 10: about 2 minutes on 2 cores
#   N=2000 bench/gram.sh     quicker
# neural-tangents' row needs bench/nt-venv (bench/nt_venv.sh); without it
# the row is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
L=${L:-10}
bash scripts/setup.sh --bench   # libxsmm, which `make bench` links
BUILD=${BUILD:-build}
make -s -j2 BUILD="$BUILD" bench >/dev/null
dump=$(mktemp)
trap 'rm -f "$dump"' EXIT
"$BUILD"/bench/gram --n "$N" --depth "$L" --dump "$dump"
if [ -x bench/nt-venv/bin/python ]; then
    bench/nt-venv/bin/python bench/nt_gram.py --n "$N" --depth "$L" --check "$dump" 2>/dev/null
else
    echo "gram.sh: no bench/nt-venv (run bench/nt_venv.sh): neural-tangents row skipped" >&2
fi
