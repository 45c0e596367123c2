#!/usr/bin/env bash
# test_theory_bayes_cli.sh — `wick theory --bayes`: finite-width Bayesian
# inference at order 1/n (docs/theory-bayes.md) through the CLI: the deep
# linear net's posterior mean and covariance keys against numpy's Gaussian
# process and the book's noiseless closed form (cov1 = (L-1)(y^T K^-1 y - nA)
# cov0), a tanh net's keys, and the refusals.  Uses $WICK (tests/run.sh exports it).
set -u
WICK=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
. "$(dirname "$0")/check.sh"

printf '1.0,0.2,-0.5\n-0.3,1.1,0.4\n0.6,-0.7,0.9\n0.8,0.5,0.1\n-0.2,0.3,1.2\n' >"$T/bayes5.csv"
head -n 4 "$T/bayes5.csv" >"$T/bayes4.csv"

jcheck() {  # name, json, python expression over j (and np, X) that must be True
    if printf '%s' "$2" | /usr/bin/python3 -c "
import json, sys, numpy as np
j = json.loads(sys.stdin.read())
X = np.loadtxt('$T/bayes5.csv', delimiter=',')
G = X @ X.T / X.shape[1]
sys.exit(0 if ($3) else 1)"; then good "$1"; else bad "$1: $3"; fi
}

# deep linear, depth 3, C_W 1.3, no noise: GP by numpy, 1/n by the closed form
out=$("$WICK" theory --act linear --depth 3 --cw 1.3 --inputs "$T/bayes5.csv" --bayes 0.7,-1.2,0.4 --noise 0 --json 2>"$T/err")
rc=$?
j=$(printf '%s\n' "$out" | tail -n 1)
if [ $rc -ne 0 ]; then bad "deep linear: exit $rc: $(cat "$T/err")"; else
    jcheck "deep linear, noiseless: GP mean and covariance" "$j" "np.allclose(np.array(j['bayes']['mean0']), (1.3**3*G[3:,:3]) @ np.linalg.inv(1.3**3*G[:3,:3]) @ np.array([0.7,-1.2,0.4]), rtol=1e-9)"
    jcheck "deep linear, noiseless: cov1 = (L-1)(y^T K^-1 y - nA) cov0, mean1 = 0" "$j" "(lambda K, y: (lambda Ki: (lambda c0: np.allclose(np.array(j['bayes']['cov1']), 2 * (y @ Ki @ y - 3) * c0, rtol=1e-8) and np.allclose(j['bayes']['cov0'], c0, rtol=1e-9) and np.allclose(j['bayes']['mean1'], 0, atol=1e-9))(K[3:,3:] - K[3:,:3] @ Ki @ K[:3,3:]))(np.linalg.inv(K[:3,:3])))(1.3**3 * G, np.array([0.7,-1.2,0.4]))"
fi

# tanh, depth 2, two observations, two test inputs: the keys and their shapes
out=$("$WICK" theory --act tanh --depth 2 --cb 0.1 --cw 2 --inputs "$T/bayes4.csv" --bayes 0.9,-0.4 --noise 0.05 --json 2>"$T/err")
rc=$?
j=$(printf '%s\n' "$out" | tail -n 1)
[ $rc -eq 0 ] && jcheck "tanh depth 2: mean0/mean1 [2], cov0/cov1 2 x 2, cov0 positive definite" "$j" "len(j['bayes']['mean1']) == 2 and np.array(j['bayes']['cov1']).shape == (2, 2) and np.all(np.linalg.eigvalsh(np.array(j['bayes']['cov0'])) > 0) and j['bayes']['train'] == 2" || bad "tanh depth 2: exit $rc: $(cat "$T/err")"

expect 2 "needs --inputs" "--bayes without --inputs: exit 2" -- "$WICK" theory --bayes 0.9
expect 2 "comma-separated" "--bayes with a non-number: exit 2" -- "$WICK" theory --inputs "$T/bayes5.csv" --bayes 0.9,x
expect 2 "fewer observations" "--bayes with as many observations as inputs: exit 2" -- "$WICK" theory --inputs "$T/bayes5.csv" --bayes 1,2,3,4,5
expect 1 "exactly 2 deeper" "--bayes, five inputs at depth 3: refused" -- "$WICK" theory --act tanh --depth 3 --inputs "$T/bayes5.csv" --bayes 0.9
finish
