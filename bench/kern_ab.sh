#!/usr/bin/env bash
# kern_ab.sh REV [WINDOWS] — src/backend/kernel.c of git revision REV ("old")
# against the working tree's ("new"), interleaved on both cores (kern_ab.c).
#   bench/kern_ab.sh HEAD~1          # ~1 minute
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: bench/kern_ab.sh REV [WINDOWS]}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash scripts/setup.sh   # gcc and the headers
git show "$rev:src/backend/kernel.c" > "$tmp/kernel_old.c"
flags="-O3 -march=native -fopenmp -Isrc -Iinclude -Ibench"
ren="-Dwick_kern_gemm=old_kern_gemm -Dwick_kern_ok=old_kern_ok -Dwick_kern_pack_fwd=old_pack_fwd
     -Dwick_kern_pack_bwd=old_pack_bwd -Dwick_kern_fwd_elems=old_fwd_elems -Dwick_kern_bwd_elems=old_bwd_elems"
gcc $flags $ren -c "$tmp/kernel_old.c" -o "$tmp/old.o"
gcc $flags bench/kern_ab.c src/backend/kernel.c "$tmp/old.o" -o "$tmp/kern_ab"
echo "kern_ab: old = $rev, new = working tree; $(build/bench/peak 2>/dev/null || true)"
"$tmp/kern_ab" "${2:-150}"
