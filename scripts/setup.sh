#!/usr/bin/env bash
# Installs the Debian packages wick needs, when they are missing.
#   scripts/setup.sh          build + run dependencies
#   scripts/setup.sh --test   also what the test suite's cross-checks need
#   scripts/setup.sh --bench  also what bench/ links beside wick (libxsmm) and Debian's torch
set -eu
pkgs="build-essential libopenblas-dev libopenblas-openmp-dev liblapacke-dev libdnnl-dev zlib1g-dev libjansson-dev
      gnuplot-nox dataset-fashion-mnist pkg-config libopenmpi-dev openmpi-bin"   # Open MPI: mpirun -np K wick train
[ "${1:-}" = "--test" ] && pkgs="$pkgs python3-torch python3-numpy locales clang libomp-14-dev"   # locales: the CSV test under de_DE
[ "${1:-}" = "--bench" ] && pkgs="$pkgs libxsmm-dev python3-torch python3-numpy"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "wick setup: missing Debian packages:$missing" >&2
        echo "wick setup: run as root, or: sudo apt-get install$missing" >&2
        exit 1
    fi
    echo "wick setup: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# the locale tests (test_csv, test_untrusted) run under de_DE.UTF-8; without
# it generated they compile it themselves with localedef, or skip
if [ "${1:-}" = "--test" ] && ! locale -a 2>/dev/null | grep -qi '^de_DE\.utf-\?8$'; then
    if [ "$(id -u)" -eq 0 ] && [ -f /etc/locale.gen ]; then
        sed -i 's/^# *de_DE.UTF-8 UTF-8/de_DE.UTF-8 UTF-8/' /etc/locale.gen && locale-gen >/dev/null
    else
        echo "wick setup: de_DE.UTF-8 is not generated (as root: locale-gen after enabling it in /etc/locale.gen)" >&2
    fi
fi
