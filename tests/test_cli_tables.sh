#!/usr/bin/env bash
# The CLI's option tables (tools/cli.c): every command's --help lists every
# flag its table in tools/cmd_*.c has, and a bad value of a sample of each
# command's flags exits 2 with one line "wick CMD: --flag expects ..., got '...'".
# The tables are read from the sources, so that a flag --help forgets fails here.
set -u
W=${WICK:-build/wick}
S=$(cd "$(dirname "$0")/.." && pwd)/tools
T=${WICK_TEST_TMP:-/tmp}/wick-tables.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/check.sh"

# The flag names of table TABLE in FILE: the rows between "TABLE[" and the
# line that closes it ("{0}};"), each a string followed by a CLI_ type.
flags_of() {
    awk -v t="$2" '
        index($0, t "[") && /cli_opt/ { on = 1; next }
        on && /\{0\}\};/ { on = 0 }
        on { while (match($0, /"[a-z0-9-]+", CLI_[A-Z0-9]+/)) {
                 s = substr($0, RSTART + 1, RLENGTH); sub(/".*/, "", s); print s
                 $0 = substr($0, RSTART + RLENGTH) } }' "$1"
}

# command, source file, table
while read -r cmd file table; do
    flags=$(flags_of "$S/$file" "$table")
    n=$(printf '%s\n' "$flags" | grep -c .)
    if [ "$n" -lt 2 ]; then bad "$cmd: no table $table found in tools/$file"; continue; fi
    help=$("$W" "$cmd" --help 2>&1); rc=$?
    miss=""
    for f in $flags; do grep -q -- "--$f\b" <<<"$help" || miss="$miss --$f"; done
    [ $rc = 0 ] && [ -z "$miss" ]
    ok $? "$cmd --help lists all $n flags of its table${miss:+ (missing:$miss)}"
done <<'LIST'
train cmd_train.c train_opts
eval cmd_train.c eval_opts
theory cmd_theory.c theory_opts
ensemble cmd_ensemble.c ensemble_opts
ntk cmd_ntk.c ntk_opts
sweep cmd_sweep.c sweep_opts
kernel cmd_kernel.c kernel_opts
gd cmd_gd.c gd_opts
predict cmd_predict.c predict_opts
summary cmd_summary.c summary_opts
LIST

# command flag value: exit 2, one line naming the flag and the value given
while read -r cmd flag value; do
    "$W" "$cmd" "$flag" "$value" >/dev/null 2>"$T/err"
    rc=$?
    if [ $rc = 2 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -q -- "^wick $cmd: $flag expects .*, got '$value'\$" "$T/err"; then
        good "wick $cmd $flag $value: usage error naming the flag"
    else
        bad "wick $cmd $flag $value: exit $rc, $(cat "$T/err")"
    fi
done <<'LIST'
train --lr -0.1
train --epochs 0
train --batch x
train --label-smoothing 1.5
train --shuffle maybe
train --seed -1
train --threads 0
train --cb 1,x
eval --batch 0
eval --label-col -2
theory --depth 0
theory --width 0
theory --cw abc
ensemble --depth 0
ensemble --width 1
ensemble --q -1
ntk --depth 4,0
ntk --outputs 0
ntk --samples 1
sweep --depths 0
sweep --widths 1
sweep --q 0
kernel --depths 0
kernel --classes 11
kernel --ntk-ridge 1
kernel --noises 0.1,x
gd --depth 0
gd --widths 0
gd --antithetic 2
predict --format xml
predict --batch 0
LIST

# an unknown activation is bad usage in every command that takes --act
for c in train eval theory ensemble ntk sweep kernel gd predict summary; do
    "$W" "$c" --act rleu >/dev/null 2>"$T/err"
    rc=$?
    [ $rc = 2 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -q "^wick $c: unknown activation 'rleu'" "$T/err"
    ok $? "wick $c --act rleu: usage error (exit $rc: $(head -c 80 "$T/err"))"
done

# one range of depths everywhere: 100000 is accepted by the parser of each
# command that takes a depth (checked with --help after it: nothing runs),
# 100001 refused by each
for c in "theory --depth" "ensemble --depth" "ntk --depth" "sweep --depths" "kernel --depths" "gd --depth"; do
    set -- $c
    "$W" "$1" "$2" 100000 --help >/dev/null 2>&1; a=$?
    "$W" "$1" "$2" 100001 >/dev/null 2>"$T/err"; b=$?
    [ $a = 0 ] && [ $b = 2 ] && grep -q "in \[1, 100000\]" "$T/err"
    ok $? "wick $1 $2: the same range 1..100000 (100000: exit $a, 100001: exit $b)"
done
finish
