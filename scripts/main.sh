#!/usr/bin/env bash
# The main job: install what is missing, build, and train on Fashion-MNIST; prints the test
# accuracy and the confusion matrix.
#   scripts/main.sh [FLAGS]          a critical-initialised MLP (wick train's defaults)
#   scripts/main.sh --cnn [FLAGS]    a conv net with batch norm, dropout and augmentation
# Further flags go to wick train (e.g. --json, --epochs, --threads).
set -eu
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -j"$(nproc)" >/dev/null
if [ "${1:-}" = "--cnn" ]; then
    shift
    # Three conv blocks (conv, batch norm, ReLU, max pooling: 28 -> 14 -> 7 -> 3) and a
    # classifier with batch norm and dropout; random horizontal flips (clothes are left-right
    # symmetric); SGD with Nesterov momentum, the learning rate decaying linearly over 20
    # epochs; weight decay.  46 MFLOP a training sample; docs/layers.md explains the spec.
    exec build/wick train \
        --arch input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,batchnorm,relu,maxpool:2,conv2d:128:3:pad=1,batchnorm,relu,maxpool:2,flatten,dropout:0.25,linear:256,batchnorm,relu,dropout:0.25,linear:10 \
        --init he --momentum 0.9 --nesterov --lr 0.05 --schedule linear --lr-floor 0.0005 \
        --weight-decay 5e-4 --flip --epochs 20 --batch 128 "$@"
fi
# wick train's defaults (784-512-512-10 ReLU, critical init, SGD momentum 0.9, lr 0.05
# decaying linearly, batch 128) for 30 epochs, with light regularisation.
exec build/wick train --epochs 30 --label-smoothing 0.1 --weight-decay 5e-4 "$@"
