# gd_check.sh — sourced by the tests of `wick gd --order1` with two inputs
# (test_gd_test_input_cli.sh, test_gd_test_var_cli.sh, test_gd_train_gram_cli.sh)
# after check.sh: jcheck NAME JSON EXPR passes when the Python expression EXPR over
# j (the JSON) is True, with math and tests/py/relu_kernels.py's closed forms in scope.
jcheck() {
    if printf '%s' "$2" | PYTHONPATH="$(dirname "${BASH_SOURCE[0]}")/py" /usr/bin/python3 -c "
import json, sys, math
from relu_kernels import relu_kh, relu_ntk, gpvar
j = json.loads(sys.stdin.read()); sys.exit(0 if ($3) else 1)"; then
        good "$1"; else bad "$1: $3"; fi
}
