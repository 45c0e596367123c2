#!/usr/bin/env bash
# test_precision_cli.sh — wick train --precision: f32 is accepted; bf16 trains
# where the CPU has AVX512-BF16 and is refused elsewhere before any data is
# read, with the reason (neither AMX nor AVX512-BF16; AMX alone), exit 1; a
# conv net in bf16 is refused (the fast path's alone); an unknown precision is
# bad usage, exit 2.
set -u
WICK=${WICK:-build/wick}
. "$(dirname "$0")/check.sh"
has=$(grep -m1 '^flags' /proc/cpuinfo | grep -ow 'amx_bf16\|avx512_bf16' | tr '\n' ' ')
if [ -z "$has" ]; then
    expect 1 "needs a CPU with AMX (amx_bf16) or AVX512-BF16 (avx512_bf16), and this one has neither" \
        "bf16 refused on a CPU without bf16 instructions" -- "$WICK" train --precision bf16 --data /nonexistent
elif [[ $has != *avx512_bf16* ]]; then
    expect 1 "but not avx512_bf16" "bf16 refused on AMX alone" -- "$WICK" train --precision bf16 --data /nonexistent
else
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    small_csv "$tmp/d.csv"
    expect 0 "test accuracy" "bf16 trains an MLP here" -- "$WICK" train --precision bf16 --train-csv "$tmp/d.csv" \
        --test-csv "$tmp/d.csv" --arch 6-32-4 --epochs 2 --batch 16
    expect 0 "backend wick's own kernel (one parallel region a step), bf16 products (AVX512-BF16)" \
        "the first lines say the products are bf16" -- "$WICK" train --precision bf16 --train-csv "$tmp/d.csv" \
        --test-csv "$tmp/d.csv" --arch 6-32-4 --epochs 1 --batch 16
    expect 0 '"precision":"bf16"' "--json names the precision" -- "$WICK" train --precision bf16 --json \
        --train-csv "$tmp/d.csv" --test-csv "$tmp/d.csv" --arch 6-32-4 --epochs 1 --batch 16
    # a checkpoint keeps the precision: --resume takes it, --precision f32 may change it, and a
    # CPU without bf16 is told how to go on
    "$WICK" train --precision bf16 --train-csv "$tmp/d.csv" --test-csv "$tmp/d.csv" --arch 6-32-4 --epochs 1 \
        --batch 16 --checkpoint "$tmp/ck.safetensors" --quiet >/dev/null 2>&1
    expect 0 "bf16 products (AVX512-BF16)" "--resume continues in bf16" -- "$WICK" train --resume "$tmp/ck.safetensors" \
        --train-csv "$tmp/d.csv" --test-csv "$tmp/d.csv" --epochs 2
    out=$("$WICK" train --resume "$tmp/ck.safetensors" --precision f32 --train-csv "$tmp/d.csv" \
        --test-csv "$tmp/d.csv" --epochs 2 2>&1); rc=$?
    [ $rc = 0 ] && ! grep -q "bf16 products" <<<"$out" && good "--resume --precision f32 continues in float32" \
        || bad "--resume --precision f32: exit $rc: $(tail -n 2 <<<"$out")"
    expect 1 "trained with bf16 products: bf16 needs a CPU with AMX (amx_bf16) or AVX512-BF16 (avx512_bf16), and this one has neither: train in float32; --precision f32 continues it in float32" \
        "--resume of a bf16 run on a CPU without bf16" -- env WICK_TEST_CPU_BF16= "$WICK" train \
        --resume "$tmp/ck.safetensors" --train-csv "$tmp/d.csv" --test-csv "$tmp/d.csv" --epochs 2
    expect 1 "bf16 trains an MLP on the fast path only" "a conv net in bf16 is refused" -- "$WICK" train \
        --precision bf16 --train-csv "$tmp/d.csv" --test-csv "$tmp/d.csv" --epochs 1 \
        --arch input:1x2x3,conv2d:2:1,relu,flatten,linear:4
fi
expect 1 "this CPU has amx_bf16 but not avx512_bf16" \
    "bf16 on a CPU reporting AMX alone (WICK_TEST_CPU_BF16)" -- env WICK_TEST_CPU_BF16=amx_bf16 "$WICK" train --precision bf16
expect 2 "--precision expects f32 or bf16, got 'fp8'" "an unknown precision is bad usage" -- "$WICK" train --precision fp8
expect 0 "--precision P" "f32 accepted, and --help lists the flag" -- "$WICK" train --precision f32 --help
finish
