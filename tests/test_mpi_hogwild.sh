#!/usr/bin/env bash
# wick train --hogwild T (src/dist/hogwild.c, docs/distributed.md): one thread is plain SGD (the
# weights of an ordinary run to 1e-6), two and four threads train a small problem as well as one
# process does, and what Hogwild cannot do is refused before training.
set -u
W=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
. "$(dirname "$0")/check.sh"

small_csv "$T/d.csv"
cat > "$T/cmp.py" <<'PY'
import json, math, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: struct.unpack(f"<{(v['data_offsets'][1] - v['data_offsets'][0]) // 4}f",
                             b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
num = sum((x - y) ** 2 for k in a for x, y in zip(a[k], b[k])); den = sum(x * x for k in a for x in a[k])
print("%.3g" % math.sqrt(num / den))
PY
# raw features (--hogwild does not standardise CSV inputs, an ordinary run does by default)
D="--train-csv $T/d.csv --test-csv $T/d.csv --val 0 --arch 6-32-4 --batch 16 --quiet --standardize off"
acc() { sed -n 's/^test accuracy \([0-9.]*\).*/\1/p' "$1"; }

$W train $D --epochs 3 --threads 1 --out "$T/sgd.safetensors" >/dev/null 2>&1
$W train $D --epochs 3 --hogwild 1 --out "$T/h1.safetensors" > "$T/h1.txt" 2>&1
dev=$(/usr/bin/python3 "$T/cmp.py" "$T/sgd.safetensors" "$T/h1.safetensors" 2>/dev/null || echo 1)
/usr/bin/python3 -c "import sys; sys.exit(float(sys.argv[1]) > 1e-6)" "$dev"
ok $? "--hogwild 1 is plain SGD with momentum: an ordinary run's weights after 3 epochs (|dw|/|w| $dev)"

$W train $D --epochs 20 --threads 1 > "$T/one.txt" 2>&1
for n in 2 4; do
    $W train $D --epochs 20 --hogwild $n > "$T/h$n.txt" 2>&1
    rc=$?
    a1=$(acc "$T/one.txt"); an=$(acc "$T/h$n.txt")
    [ $rc = 0 ] && grep -q "training (hogwild, $n threads): 500 steps" "$T/h$n.txt" &&
        /usr/bin/python3 -c "import sys; sys.exit(float(sys.argv[2]) < float(sys.argv[1]) - 0.03)" "$a1" "${an:-0}"
    ok $? "--hogwild $n: 20 epochs of 25 batches, test accuracy $an within 0.03 of one thread's $a1"
done

expect 2 "does not combine with --checkpoint" "--hogwild with a checkpoint is a usage error" -- \
    $W train $D --hogwild 2 --checkpoint "$T/c.safetensors"
expect 2 "does not combine with --patience" "--hogwild with early stopping is a usage error" -- \
    $W train $D --hogwild 2 --patience 2 --val 40
expect 1 "batch norm" "--hogwild refuses batch norm (shared running statistics)" -- \
    $W train $D --hogwild 2 --arch input:6,linear:16,batchnorm,relu,linear:4
expect 2 "expects an integer" "--hogwild 0 is a usage error" -- $W train $D --hogwild 0
finish
