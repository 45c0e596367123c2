#!/usr/bin/env bash
# torch_venv.sh — a virtual environment bench/venv with the current PyTorch
# from PyPI and numpy, for the speed comparison only (bench/run.sh).  PyTorch
# is never a dependency of wick.
#
# Only PyPI is reachable from the build machines, so the wheel is plain
# `pip install torch`: on Linux x86_64 that is the CUDA-bundled wheel (the
# nvidia-* packages come with it, a few GB).  Its CPU code is the same as the
# CPU-only wheel's; the CUDA libraries are just never loaded.
# Usage: bench/torch_venv.sh [python]   (default: python3 on PATH)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${1:-python3}
venv=$here/venv
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import torch, numpy' 2>/dev/null; then
    echo "torch_venv: $venv already has torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)')"
    exit 0
fi
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet torch numpy
"$venv/bin/python" -c 'import torch; print("torch_venv: torch", torch.__version__, "in", "'"$venv"'")'
