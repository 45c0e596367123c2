#!/usr/bin/env bash
# The main job: install what is missing, build, and train a critical-initialised
# MLP on Fashion-MNIST; prints the test accuracy and the confusion matrix.
set -eu
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -j"$(nproc)" >/dev/null
exec build/wick train "$@"
