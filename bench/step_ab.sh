#!/usr/bin/env bash
# step_ab.sh REV [step_ab args] — the library of git revision REV ("old")
# against the working tree's ("new"), training the same net in one process,
# a block of steps each in turn (bench/step_ab.c).  ~1 min to build REV.
#   bench/step_ab.sh HEAD~1
#   bench/step_ab.sh main --batch 512 --blocks 100
#   BUILD=build-x bench/step_ab.sh HEAD     the working tree's library built in build-x
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: bench/step_ab.sh REV [--arch A] [--act F] [--batch B] [--blocks N] [--block K] [--data DIR]}
shift
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/old" 2>/dev/null || true; rm -rf "$tmp"' EXIT
bash scripts/setup.sh   # the libraries both sides link
git worktree add --detach -q "$tmp/old" "$rev"
BUILD=${BUILD:-build}
make -s -j2 BUILD="$BUILD" "$BUILD/libwick.a"
make -s -C "$tmp/old" -j2 BUILD=build build/libwick.a
# every global symbol the old library defines gets an old_ prefix, in its
# definitions and its references alike
nm --defined-only -g "$tmp/old/build/libwick.a" | awk 'NF == 3 { print $3, "old_" $3 }' | sort -u > "$tmp/syms"
objcopy --redefine-syms="$tmp/syms" "$tmp/old/build/libwick.a" "$tmp/old.a"
# the old side sees the old wick.h with its functions renamed the same way
awk '$1 ~ /^[A-Za-z_][A-Za-z0-9_]*$/ { print "#define " $1 " " $2 }' "$tmp/syms" > "$tmp/old_syms.h"
flags="-std=c11 -O2 -march=native -fopenmp -D_GNU_SOURCE"
gcc $flags -Iinclude -c bench/step_ab_side.c -o "$tmp/new_side.o"
gcc $flags -I"$tmp/old/include" -include "$tmp/old_syms.h" '-DSIDE(n)=old_##n' \
    -c bench/step_ab_side.c -o "$tmp/old_side.o"
# the libraries the Makefile links (its OpenMP OpenBLAS when installed)
ob=/usr/lib/x86_64-linux-gnu/openblas-openmp
blas=""
[ -e "$ob/libopenblas.so" ] && blas="-L$ob -Wl,-rpath,$ob -Wl,--disable-new-dtags"
gcc $flags -Ibench bench/step_ab.c "$tmp/new_side.o" "$tmp/old_side.o" "$BUILD/libwick.a" "$tmp/old.a" \
    $blas -lopenblas -llapacke -ldnnl -ljansson -lz -lm -o "$tmp/step_ab"
echo "step_ab: old = $rev ($(git rev-parse --short "$rev")), new = working tree"
"$tmp/step_ab" "$@"
