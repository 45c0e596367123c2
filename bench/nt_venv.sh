#!/usr/bin/env bash
# nt_venv.sh — a virtual environment bench/nt-venv with neural-tangents from
# PyPI, for the theory engine's speed row only (bench/nt_gram.py).  Never a
# dependency of wick.
#
# neural-tangents 0.6.5 (its last release) imports APIs that later JAX
# releases removed, so JAX is pinned to 0.4.26, the newest found here to
# import and run it (the CPU wheel; pip also brings tf2jax and TensorFlow,
# which neural-tangents requires, about 600 MB).
# Usage: bench/nt_venv.sh [python]   (default: python3 on PATH)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${1:-python3}
venv=$here/nt-venv
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import neural_tangents' 2>/dev/null; then
    echo "nt_venv: $venv already has neural-tangents"
    exit 0
fi
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet neural-tangents==0.6.5 "jax[cpu]==0.4.26"
"$venv/bin/python" -c 'import neural_tangents as nt, jax; print("nt_venv: neural-tangents", nt.__version__, "jax", jax.__version__)'
