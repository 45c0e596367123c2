#!/usr/bin/env bash
# Every command README.md shows runs as written on the current build, in a short form: each
# `build/wick ...` line of the README's code blocks gets flags that cut it short (fewer epochs,
# steps, samples), and a README line this file has no short form for fails, so the two stay in
# step. Also: the README's Python recipe with Debian's torch, scripts/main.sh's two wick train
# lines, the bench scripts the README names (syntax, and that they install what they link), and
# the LICENSE the README and wick.pc state. The heavy lines (conv net, kernel, gd) are skipped
# under the sanitizer builds, which run the same code slower.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${WICK:-$ROOT/build/wick}
case $W in /*) ;; *) W=$ROOT/$W ;; esac
T=${WICK_TEST_TMP:-/tmp}/readme.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
if [ -f "$ROOT/tests/lib/check.sh" ]; then . "$ROOT/tests/lib/check.sh"; else . "$ROOT/tests/check.sh"; fi
export OMP_NUM_THREADS=1   # short runs; one thread keeps them quick on a loaded machine
DATA=/usr/share/datasets/fashion-mnist
have_data=0; [ -f "$DATA/train-images-idx3-ubyte.gz" ] && have_data=1
lib=$(dirname "$W")/libwick.a
sanitized=0; nm "$lib" 2>/dev/null | grep -qE "__asan_report|__ubsan_handle" && sanitized=1
skipped() { skip=$((skip + 1)); echo "  SKIP $1" >&2; }

# the README's CSV example: 20 features, 4 classes, label first
python3 - "$T" <<'PY'
import random, sys
random.seed(3)
for name, n in (("train.csv", 300), ("test.csv", 100), ("rows.csv", 20)):
    with open(f"{sys.argv[1]}/{name}", "w") as f:
        for _ in range(n):
            x = [random.gauss(0, 1) for _ in range(20)]
            label = "" if name == "rows.csv" else f"{int(x[0] > 0) + 2 * int(x[1] > 0)},"
            f.write(label + ",".join(f"{v:.5f}" for v in x) + "\n")
PY

# The short form of a README line: flags appended (later ones win), and whether the line needs
# Fashion-MNIST or is too heavy for a sanitizer build. Unknown lines print nothing.
short() {
    case $1 in
    "train --train-csv"*) echo "light --epochs 1 --quiet" ;;
    "train --checkpoint"*) echo "data --epochs 1 --max-steps 2 --quiet" ;;
    "train "*) echo "data --epochs 1 --max-steps 2 --quiet" ;;
    "eval "*) echo "data" ;;
    "summary "*) echo "light" ;;
    "theory "*) echo "light" ;;
    "ensemble "*) echo "light --samples 200" ;;
    "sweep "*) echo "light --samples 200" ;;
    "ntk "*) echo "light --samples 8" ;;
    "gd --order1"*) echo "light --samples 8" ;;
    "gd "*) echo "heavy --samples 2 --steps 5 --train 32 --test 40" ;;
    "kernel "*) echo "heavy --train 60 --test 60 --depths 1 --cbs 0 --noises 0.01" ;;
    "predict "*"--csv"*) echo "light" ;;
    "predict "*) echo "data" ;;
    esac
}

# The README's shell lines that run build/wick, comments cut, in order (train before eval).
mapfile -t lines < <(awk '/^```/{code = !code; next} code && /^build\/wick /' "$ROOT/README.md" |
                     sed -e 's/[[:space:]]*#.*$//' -e 's/^build\/wick //')
[ "${#lines[@]}" -ge 10 ]
ok $? "the README shows the wick commands (${#lines[@]} lines)"
for line in "${lines[@]}"; do
    spec=$(short "$line")
    if [ -z "$spec" ]; then ok 1 "README line 'wick $line' has a short form in tests/test_readme_commands.sh"; continue; fi
    kind=${spec%% *}; extra=${spec#"$kind"}
    [ "$kind" = data ] && [ $have_data = 0 ] && { skipped "wick $line (no $DATA)"; continue; }
    { [ "$kind" = heavy ] || [ "$kind" = data ]; } && [ $sanitized = 1 ] &&
        { skipped "wick $line under a sanitizer build"; continue; }
    # shellcheck disable=SC2086
    (cd "$T" && eval "\"$W\" $line $extra") >"$T/out" 2>&1
    rc=$?
    [ $rc = 0 ] || tail -n 5 "$T/out" | sed 's/^/  /' >&2
    ok $rc "wick $line (short form)"
done

# what the README says the lines leave behind, and the --resume its comment names
if [ $have_data = 1 ] && [ $sanitized = 0 ]; then
    [ -s "$T/fmnist.safetensors" ] && [ -e "$T/epochs.jsonl" ] && [ -s "$T/flow.png" ] && [ "$(wc -l < "$T/pred.csv")" = 21 ]   # no epoch ends in 2 steps
    ok $? "train --out/--log, theory --plot and predict --out write their files"
    (cd "$T" && "$W" train --resume run.safetensors --epochs 1 --max-steps 4 --quiet) >"$T/out" 2>&1
    ok $? "train --resume run.safetensors continues the checkpoint"
    # the Python recipe, as printed, with the model it loads into
    awk '/^```python/{p = 1; next} /^```/{p = 0} p' "$ROOT/README.md" > "$T/recipe.py"
    (cd "$T" && ln -sf "$ROOT/examples" examples && /usr/bin/python3 - <<'PY') >"$T/out" 2>&1
import sys
try:
    import torch
except ImportError:
    print("no torch"); sys.exit(0)
model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                            torch.nn.ReLU(), torch.nn.Linear(512, 10))
exec(open("recipe.py").read())
print("loaded", sum(p.numel() for p in model.parameters()))
PY
    rc=$?
    [ $rc = 0 ] || tail -n 5 "$T/out" | sed 's/^/  /' >&2
    ok $rc "the README's Python recipe loads a wick model into torch (examples/safetensors_np.py)"
else
    skipped "the files, --resume and the Python recipe (no data or a sanitizer build)"
fi

# scripts/main.sh's wick train lines (its MLP and --cnn), cut short; the script itself also
# installs and builds, which is scripts/test.sh's job here
mapfile -t mains < <(sed -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta' "$ROOT/scripts/main.sh" |
                     grep -E '^[[:space:]]*exec build/wick train' | sed -e 's/^[[:space:]]*exec build\/wick //' -e 's/"\$@"//')
[ "${#mains[@]}" = 2 ]
ok $? "scripts/main.sh runs wick train for the MLP and the conv net"
for line in "${mains[@]}"; do
    if [ $have_data = 0 ] || [ $sanitized = 1 ]; then skipped "main.sh's wick $line"; continue; fi
    # shellcheck disable=SC2086
    (cd "$T" && "$W" $line --epochs 1 --max-steps 2 --val 500 --quiet) >"$T/out" 2>&1
    rc=$?
    [ $rc = 0 ] || tail -n 5 "$T/out" | sed 's/^/  /' >&2
    ok $rc "main.sh: wick ${line:0:60}... (short form)"
done
bash -n "$ROOT/scripts/main.sh" && bash -n "$ROOT/scripts/test.sh"
ok $? "scripts/main.sh and scripts/test.sh parse"

# the bench scripts (the README names run.sh and cnn.sh): each parses, and one that builds
# installs what it builds against first, as a fresh machine needs (`make bench` links libxsmm,
# which only scripts/setup.sh --bench installs)
for s in "$ROOT"/bench/*.sh; do
    bash -n "$s" || { ok 1 "bench/${s##*/} parses"; continue; }
    if grep -qE '^[^#]*make [^#]*bench|bench/steptime' "$s"; then
        grep -q "scripts/setup.sh --bench" "$s"; ok $? "bench/${s##*/} runs scripts/setup.sh --bench before building"
    elif grep -qE '^[^#]*(make|gcc|cc) ' "$s"; then
        grep -q "scripts/setup.sh" "$s"; ok $? "bench/${s##*/} runs scripts/setup.sh before building"
    else
        ok 0 "bench/${s##*/} parses"
    fi
done
for s in $(grep -oE 'bench/[a-z_]+\.sh' "$ROOT/README.md" | sort -u); do
    [ -f "$ROOT/$s" ]; ok $? "$s, which the README names, exists"
done

# the license the README states
grep -q "^MIT License" "$ROOT/LICENSE" && grep -q "MIT" "$ROOT/README.md" && grep -q "^License: MIT" "$ROOT/wick.pc.in"
ok $? "LICENSE is MIT, and README.md and wick.pc say so"
finish
