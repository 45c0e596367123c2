#!/usr/bin/env bash
# test_precision_cli.sh — wick train --precision: f32 is accepted; bf16 is
# refused before any data is read, with the reason for this CPU (neither AMX
# nor AVX512-BF16: which is missing; with them: no bf16 kernel in this
# version), exit 1; an unknown precision is bad usage, exit 2.
set -u
WICK=${WICK:-build/wick}
. "$(dirname "$0")/check.sh"
has=$(grep -m1 '^flags' /proc/cpuinfo | grep -ow 'amx_bf16\|avx512_bf16' | tr '\n' ' ')
if [ -z "$has" ]; then
    expect 1 "needs a CPU with AMX (amx_bf16) or AVX512-BF16 (avx512_bf16), and this one has neither" \
        "bf16 refused on a CPU without bf16 instructions" -- "$WICK" train --precision bf16 --data /nonexistent
else
    expect 1 "no bf16 kernel yet" "bf16 refused: no kernel in this version" -- "$WICK" train --precision bf16 --data /nonexistent
fi
expect 1 "this CPU has avx512_bf16, but this build of wick has no bf16 kernel yet" \
    "bf16 on a CPU reporting avx512_bf16 (WICK_TEST_CPU_BF16)" -- env WICK_TEST_CPU_BF16=avx512_bf16 "$WICK" train --precision bf16
expect 2 "--precision expects f32 or bf16, got 'fp8'" "an unknown precision is bad usage" -- "$WICK" train --precision fp8
expect 0 "--precision P" "f32 accepted, and --help lists the flag" -- "$WICK" train --precision f32 --help
finish
