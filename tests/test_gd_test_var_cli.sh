#!/usr/bin/env bash
# test_gd_test_var_cli.sh — `wick gd --order1 --test-gram ... --variance`: the
# variance across initialisations at the test input after gradient descent on
# the training input (wick_gd_var_test beside wick_gd_test_var_measure;
# docs/theory-finite-width.md, "the variance at a test input"): the fully
# trained infinite-width variance K_bb - 2 c K_ab + c^2 K_aa, c =
# Theta_ba/Theta_aa, against the arc-cosine kernels of ReLU (an independent
# closed form, in Python), the terms' sums, a measured row, the refusals.
# Uses $WICK (tests/run.sh exports it).
set -u
WICK=${WICK:-build/wick}
T=${WICK_TEST_TMP:-/tmp}
. "$(dirname "$0")/check.sh"

jcheck() {  # name, json, python expression over j that must be True
    if printf '%s' "$2" | /usr/bin/python3 -c "
import json,sys,math
def relu_kh(G, L, cw=2.0):
    # the book's ch. 7 forward equations for ReLU, C_b = 0, lambda = 1:
    # <s s> = sqrt(Kaa Kbb) (sin t + (pi - t) cos t) / (2 pi), <s' s'> = (pi - t) / (2 pi)
    K = [[cw * G[0], cw * G[1]], [cw * G[1], cw * G[2]]]
    H = [[1 + G[0], 1 + G[1]], [1 + G[1], 1 + G[2]]]
    for l in range(1, L):
        Kn = [[0, 0], [0, 0]]; Hn = [[0, 0], [0, 0]]
        for a in range(2):
            for b in range(2):
                r = math.sqrt(K[a][a] * K[b][b]); c = max(-1.0, min(1.0, K[a][b] / r)); t = math.acos(c)
                ss = r * (math.sin(t) + (math.pi - t) * c) / (2 * math.pi)
                Kn[a][b] = cw * ss
                Hn[a][b] = 1 + ss + cw * (math.pi - t) / (2 * math.pi) * H[a][b]
        K, H = Kn, Hn
    return K, H
def gpvar(G, L, eta, t):
    K, H = relu_kh(G, L); c = H[1][0] / H[0][0]
    if t > 0: c *= 1 - (1 - eta * H[0][0]) ** t
    return K[1][1] - 2 * c * K[1][0] + c * c * K[0][0]
j=json.loads(sys.stdin.read()); sys.exit(0 if ($3) else 1)"; then
        good "$1"; else bad "$1: $3"; fi
}

out=$("$WICK" gd --order1 --act relu --depth 3 --eta 0.15 --target 0.7 --test-gram 1,0.5,1.5 --trained --variance --widths 8 --samples 40 --json 2>"$T/err")
rc=$?
[ $rc -eq 0 ] || bad "relu fully trained: exit code $rc: $(cat "$T/err")"
j=$(printf '%s\n' "$out" | tail -n 1)
jcheck "relu fully trained: var = K_bb - 2 c K_ab + c^2 K_aa (arc-cosine)" "$j" "abs(j['var'] - gpvar([1, .5, 1.5], 3, .15, -1)) < 1e-9"
jcheck "relu fully trained: the terms add up, the vertex 0" "$j" "abs(j['var_frozen'] - j['var_ntk1'] - j['var_DF'] - j['var_AB']) < 1e-12 and abs(j['var_beyond'] - j['var_dntk'] - j['var_ddI'] - j['var_ddII']) < 1e-12 and j['var_V'] == 0"
jcheck "relu fully trained: a measured row" "$j" "j['widths'][0]['pairs'] == 20 and math.isfinite(j['widths'][0]['n_var_beyond']) and j['widths'][0]['steps_taken'] > 5"
out=$("$WICK" gd --order1 --act relu --depth 3 --eta 0.15 --steps 3 --target 0.7 --test-gram 1,0.5,1.5 --variance --widths 8 --samples 20 --json 2>"$T/err")
j=$(printf '%s\n' "$out" | tail -n 1)
jcheck "relu t = 3: var with c = Theta_ba/Theta_aa (1 - (1 - eta Theta_aa)^3)" "$j" "abs(j['var'] - gpvar([1, .5, 1.5], 3, .15, 3)) < 1e-9"

"$WICK" gd --order1 --eta 0.1 --test-gram 1,.5,1.5 --target 1,2 --variance --samples 40 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "one --target" "$T/err" && good "two targets: usage error" || bad "two targets: $(cat "$T/err")"
"$WICK" gd --order1 --eta 0.1 --trained --variance --samples 40 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q -- "--trained only with --test-gram" "$T/err" && good "--trained --variance without --test-gram: usage error" || bad "--trained --variance: $(cat "$T/err")"
finish
