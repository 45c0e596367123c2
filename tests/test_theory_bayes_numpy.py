#!/usr/bin/env python3
"""test_theory_bayes_numpy.py — `wick theory --bayes` for a nonlinear net
(docs/theory-bayes.md §4) against two independent computations in numpy:

1. the first-order Edgeworth formulas re-implemented (mean1 = (1/6)
   kappa(r,a,c,d) H^acd, cov1 = (1/2) kappa(r_i,r_j,a,c) H^ac), with the
   hidden layer's moments by numpy's own Gauss-Hermite rule;
2. a different derivation: the depth-2 net is a mixture over the hidden
   layer's kernel Ghat of Gaussian processes, Ghat = K + delta with
   Cov(delta_ab, delta_cd) = V_(ab)(cd)/n, so the posterior's 1/n terms are
   the delta method over Ghat's entries (finite differences of the Gaussian
   posterior mean mu, covariance v and log-likelihood log w):
     mean1 = C:(d mu x d log w) + (1/2) C:d2 mu,
     cov1_ij = C:(d v_ij x d log w) + (1/2) C:d2 v_ij + C:(d mu_i x d mu_j).
tanh, depth 2, two training and two test inputs.  A wrong factor (1/3
instead of 1/2 in cov1, or no mean1) fails both.  Prints RESULT p f s."""
import json, os, subprocess, sys, tempfile
import numpy as np
from numpy.polynomial.hermite_e import hermegauss

WICK = os.environ.get("WICK", "build/wick")
passed = failed = 0


def ok(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok     " + name, file=sys.stderr)
    else:
        failed += 1
        print("not ok " + name + ("  " + detail if detail else ""), file=sys.stderr)


cb, cw, noise = 0.1, 2.0, 0.05
X = np.array([[1.0, 0.2, -0.5], [-0.3, 1.1, 0.4], [0.6, -0.7, 0.9], [0.8, 0.5, 0.1]])
y = np.array([1.2, -0.9])
A, Bi = [0, 1], [2, 3]
G0 = X @ X.T / X.shape[1]
m = 4

with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "x.csv")
    np.savetxt(path, X, delimiter=",")
    r = subprocess.run([WICK, "theory", "--act", "tanh", "--depth", "2", "--cb", str(cb), "--cw",
                        str(cw), "--inputs", path, "--bayes", ",".join(map(str, y)), "--noise",
                        str(noise), "--json"], capture_output=True, text=True)
ok("wick theory --bayes runs", r.returncode == 0, r.stderr.strip())
j = json.loads(r.stdout.strip().splitlines()[-1])["bayes"]
w_m0, w_m1 = np.array(j["mean0"]), np.array(j["mean1"])
w_c0, w_c1 = np.array(j["cov0"]), np.array(j["cov1"])

# the hidden layer's moments over N(0, C_b + C_W G0), numpy's Gauss-Hermite rule
lam, Q = np.linalg.eigh(cb + cw * G0)
x, w = hermegauss(24)
w = w / w.sum()
Xi = np.array(np.meshgrid(*[x] * m, indexing="ij")).reshape(m, -1)
W = np.prod(np.array(np.meshgrid(*[w] * m, indexing="ij")).reshape(m, -1), axis=0)
S = np.tanh(Q @ (np.sqrt(np.maximum(lam, 0))[:, None] * Xi))
P = np.einsum("ap,bp->abp", S, S).reshape(m * m, -1)
E2 = P @ W
E4 = (P * W) @ P.T
K = (cb + cw * E2).reshape(m, m)
V = (cw ** 2 * (E4 - np.outer(E2, E2))).reshape(m, m, m, m)   # V[a,b,c,d] = V_(ab)(cd)

# 1. Edgeworth, re-implemented
kap = V + V.transpose(0, 2, 1, 3) + V.transpose(0, 3, 1, 2)
Kt = K[np.ix_(A, A)] + noise * np.eye(len(A))
Ki = np.linalg.inv(Kt)
yh = Ki @ y
B = K[np.ix_(Bi, A)] @ Ki
m0 = B @ y
c0 = K[np.ix_(Bi, Bi)] - B @ K[np.ix_(A, Bi)]
k1 = kap[Bi] - np.einsum("ie,e...->i...", B, kap[A])           # kappa(r_i, x, y, z)
k2 = k1[:, Bi] - np.einsum("jf,if...->ij...", B, k1[:, A])      # kappa(r_i, r_j, y, z)
H3 = (np.einsum("a,c,d->acd", yh, yh, yh) - np.einsum("ac,d->acd", Ki, yh)
      - np.einsum("ad,c->acd", Ki, yh) - np.einsum("cd,a->acd", Ki, yh))
H2 = np.outer(yh, yh) - Ki
e_m1 = np.einsum("iacd,acd->i", k1[np.ix_(range(2), A, A, A)], H3) / 6
e_c1 = np.einsum("ijac,ac->ij", k2[np.ix_(range(2), range(2), A, A)], H2) / 2

# 2. the delta method over Ghat's unique entries
U = [(a, b) for a in range(m) for b in range(a, m)]
C = np.array([[V[u[0], u[1], v[0], v[1]] for v in U] for u in U])


def post(g):
    Gm = np.zeros((m, m))
    for k, (a, b) in enumerate(U):
        Gm[a, b] = Gm[b, a] = g[k]
    Kt_ = Gm[np.ix_(A, A)] + noise * np.eye(len(A))
    Ki_ = np.linalg.inv(Kt_)
    mu = Gm[np.ix_(Bi, A)] @ Ki_ @ y
    v = Gm[np.ix_(Bi, Bi)] - Gm[np.ix_(Bi, A)] @ Ki_ @ Gm[np.ix_(A, Bi)]
    lw = -0.5 * np.linalg.slogdet(Kt_)[1] - 0.5 * y @ Ki_ @ y
    return np.concatenate([mu, v.ravel(), [lw]])


g0 = np.array([K[a, b] for a, b in U])
h, nu = 1e-4, len(U)
D = np.zeros((nu, 7))
Hs = np.zeros((nu, nu, 7))
for i in range(nu):
    ei = np.eye(nu)[i] * h
    D[i] = (post(g0 + ei) - post(g0 - ei)) / (2 * h)
    for k in range(i, nu):
        ek = np.eye(nu)[k] * h
        Hs[i, k] = Hs[k, i] = (post(g0 + ei + ek) - post(g0 + ei - ek) - post(g0 - ei + ek)
                               + post(g0 - ei - ek)) / (4 * h * h)
dlw = D[:, 6]
d_m1 = np.array([C @ dlw @ D[:, i] + 0.5 * np.sum(C * Hs[:, :, i]) for i in range(2)])
d_c1 = np.array([[C @ dlw @ D[:, 2 + 2 * i + k] + 0.5 * np.sum(C * Hs[:, :, 2 + 2 * i + k])
                  + D[:, i] @ C @ D[:, k] for k in range(2)] for i in range(2)])

print("  wick   mean1 %s cov1 %s" % (w_m1, w_c1.ravel()), file=sys.stderr)
print("  numpy  mean1 %s cov1 %s (Edgeworth)" % (e_m1, e_c1.ravel()), file=sys.stderr)
print("  delta  mean1 %s cov1 %s (mixture over Ghat)" % (d_m1, d_c1.ravel()), file=sys.stderr)
ok("GP mean and covariance", np.allclose(w_m0, m0, rtol=1e-6) and np.allclose(w_c0, c0, rtol=1e-6))
ok("mean1 against numpy's Edgeworth", np.allclose(w_m1, e_m1, rtol=1e-3, atol=1e-7))
ok("cov1 against numpy's Edgeworth", np.allclose(w_c1, e_c1, rtol=1e-3, atol=1e-7))
ok("mean1 against the delta method", np.allclose(w_m1, d_m1, rtol=1e-3, atol=1e-6))
ok("cov1 against the delta method", np.allclose(w_c1, d_c1, rtol=1e-3, atol=1e-6))
ok("1.2 x cov1 is not the delta method's", not np.allclose(1.2 * w_c1, d_c1, rtol=1e-2))
print("RESULT %d %d 0" % (passed, failed))
sys.exit(1 if failed else 0)
