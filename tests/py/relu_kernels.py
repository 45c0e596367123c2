"""relu_kernels.py — the two-input ReLU kernels in closed form, for the tests of
`wick gd --order1` with --test-gram and --train-gram (tests/gd_check.sh): an
independent reference, the arc-cosine recursion, written here and not in wick.

The book's ch. 7 forward equations for ReLU, C_b = 0, lambda = 1:
<s s> = sqrt(Kaa Kbb) (sin t + (pi - t) cos t) / (2 pi), <s' s'> = (pi - t) / (2 pi).
"""
import math


def relu_kh(G, L, cw=2.0):
    """The kernel K and the NTK H at layer L of inputs with Gram (G00, G01, G11)."""
    K = [[cw * G[0], cw * G[1]], [cw * G[1], cw * G[2]]]
    H = [[1 + G[0], 1 + G[1]], [1 + G[1], 1 + G[2]]]
    for _ in range(1, L):
        Kn = [[0, 0], [0, 0]]
        Hn = [[0, 0], [0, 0]]
        for a in range(2):
            for b in range(2):
                r = math.sqrt(K[a][a] * K[b][b])
                c = max(-1.0, min(1.0, K[a][b] / r))
                t = math.acos(c)
                ss = r * (math.sin(t) + (math.pi - t) * c) / (2 * math.pi)
                Kn[a][b] = cw * ss
                Hn[a][b] = 1 + ss + cw * (math.pi - t) / (2 * math.pi) * H[a][b]
        K, H = Kn, Hn
    return K, H


def relu_ntk(G, L, cw=2.0):
    """The NTK alone."""
    return relu_kh(G, L, cw)[1]


def gpvar(G, L, eta, t):
    """The infinite-width variance at input b after training on input a: t steps
    at rate eta, or fully trained (t < 0)."""
    K, H = relu_kh(G, L)
    c = H[1][0] / H[0][0]
    if t > 0:
        c *= 1 - (1 - eta * H[0][0]) ** t
    return K[1][1] - 2 * c * K[1][0] + c * c * K[0][0]
