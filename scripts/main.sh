#!/usr/bin/env bash
# The main job: install what is missing, build, and train a critical-initialised
# MLP on Fashion-MNIST; prints the test accuracy and the confusion matrix.
set -eu
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -j"$(nproc)" >/dev/null
# wick train's defaults (784-512-512-10 ReLU, critical init, SGD momentum 0.9, lr 0.05
# decaying linearly, batch 128) for 30 epochs, with light regularisation.
exec build/wick train --epochs 30 --label-smoothing 0.1 --weight-decay 5e-4 "$@"
