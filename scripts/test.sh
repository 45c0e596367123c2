#!/usr/bin/env bash
# Install what is missing, build, and run every test (ends "N passed, N failed, N skipped").
set -eu
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
make -j"$(nproc)" >/dev/null
make test
