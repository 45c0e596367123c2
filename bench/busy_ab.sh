#!/usr/bin/env bash
# busy_ab.sh CONFIG... — bench/busy_ab.c beside a busy neighbour: a process
# spinning on core CORE (default 1), started in this script's session (the
# kernel's autogroup weighs sessions, not threads: bench/README.md,
# "Harvesting the shared core"), stopped at the end.  NEIGHBOUR=0: without it.
#   bash bench/busy_ab.sh 't1:WICK_TEAM_SIZE=1' 'redo:WICK_TEAM_SIZE=2,WICK_REDO=1'
#   ROUNDS=60 BLOCK=20 BUILD=build-x bash bench/busy_ab.sh ...
# On a machine loaded by other sessions, `PRIO=1` (root) raises this session's
# autogroup priority (echo -20 > /proc/self/autogroup, run under setsid) so that
# the spinner is wick's only real neighbour.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${PRIO:-0}" = 1 ] && [ -z "${BUSY_AB_SETSID:-}" ]; then
    BUSY_AB_SETSID=1 exec setsid -w bash "$0" "$@"
fi
[ "${PRIO:-0}" = 1 ] && { echo -20 > /proc/self/autogroup || echo "busy_ab.sh: no priority raise" >&2; }
BUILD=${BUILD:-build}
bash scripts/setup.sh --bench >/dev/null   # bench programs link libxsmm
make -s -j2 BUILD="$BUILD" "$BUILD/bench/busy_ab" >/dev/null
spinner=""
stop_spinner() { [ -n "$spinner" ] && kill "$spinner" 2>/dev/null; spinner=""; }
trap stop_spinner EXIT
if [ "${NEIGHBOUR:-1}" = 1 ]; then
    taskset -c "${CORE:-1}" sh -c 'while :; do :; done' &
    spinner=$!
    sleep 0.3
fi
"$BUILD/bench/busy_ab" --rounds "${ROUNDS:-40}" --block "${BLOCK:-20}" "$@"
