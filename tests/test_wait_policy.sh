#!/usr/bin/env bash
# test_wait_policy.sh — the CLI bounds its OpenMP regions' spinning waits
# (tools/wick.c re-executes itself with GOMP_SPINCOUNT=1000): libgomp's own
# report (OMP_DISPLAY_ENV) shows a spin count of 1000, not its default
# 300000; a policy or spin count the user set is kept; the output is the
# same as without the re-exec.
set -u
WICK=${WICK:-build/wick}
. "$(dirname "$0")/check.sh"
expect 0 "GOMP_SPINCOUNT = '1000'" "bounded spinning by default" -- env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose "$WICK" --version
expect 0 "GOMP_SPINCOUNT = '20'" "the user's GOMP_SPINCOUNT kept" -- env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=20 OMP_DISPLAY_ENV=verbose "$WICK" --version
out=$(env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=verbose "$WICK" --version 2>&1)
grep -q "OMP_WAIT_POLICY = 'ACTIVE'" <<<"$out" && ! grep -q "GOMP_SPINCOUNT = '1000'" <<<"$out"
ok $? "the user's OMP_WAIT_POLICY=active kept"
a=$(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$WICK" summary --arch 784-512-10 2>&1; echo "rc $?")
b=$(env GOMP_SPINCOUNT=1000 "$WICK" summary --arch 784-512-10 2>&1; echo "rc $?")
[ "$a" = "$b" ]
ok $? "the same output and exit code through the re-exec"
expect 2 "unknown command" "bad usage still exits 2" -- env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$WICK" nosuchcommand
finish
