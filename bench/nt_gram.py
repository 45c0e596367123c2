"""nt_gram.py — neural-tangents' row beside build/bench/gram (issue 7).

The same ReLU NNGP and NTK Gram matrices as `gram`: N Fashion-MNIST training
images (centred on their mean, each scaled to |x|^2/n0 = 1, as
wick_kernel_normalise does), depth L at criticality (W_std^2 = C_W = 2,
b_std^2 = C_b = 0), in neural-tangents' NTK parameterisation, float64 on the
CPU, in batches (nt.batch) to bound memory.  Prints seconds and ns per entry
per layer counted as gram counts them (the n(n+1)/2 distinct entries, L
layers).  With --check FILE (written by `gram --dump FILE`) it compares the
first 64 inputs' K and Theta with wick's, entry by entry.

Benchmark-only: runs in a virtual environment with neural-tangents from PyPI
(bench/nt_venv.sh), never a dependency of wick.

    python bench/nt_gram.py [--n 10000] [--depth 10] [--batch 2000] [--check FILE] [--json]
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"


def load_images(n):
    for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"):
        path = os.path.join(DATA, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                raw = f.read()
            count = int.from_bytes(raw[4:8], "big")
            rows, cols = int.from_bytes(raw[8:12], "big"), int.from_bytes(raw[12:16], "big")
            x = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, rows * cols)
            # as wick's IDX reader: float32 pixel / 255.0f, then float64
            # (exact float64 division moves the kernels by ~4e-9)
            return (x[:n].astype(np.float32) / np.float32(255)).astype(np.float64)
    sys.exit(f"nt_gram: no Fashion-MNIST training images in {DATA}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--check")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    x = load_images(a.n)
    x = x - x.mean(axis=0)                      # wick_kernel_normalise, nA = n
    n0 = x.shape[1]
    x = x / np.sqrt((x * x).sum(axis=1, keepdims=True) / n0)

    layers = []
    for _ in range(a.depth):
        layers += [stax.Dense(1, W_std=np.sqrt(2.0), b_std=0.0, parameterization="ntk"), stax.Relu()]
    # the readout layer is layer L: depth-1 hidden ReLU layers then the last Dense
    layers = layers[:-1]
    _, _, kernel_fn = stax.serial(*layers)
    kfn = nt.batch(kernel_fn, batch_size=a.batch, store_on_device=False)

    xs = jax.numpy.asarray(x)
    kfn(xs[: a.batch], xs[: a.batch], ("nngp", "ntk"))   # compile outside the clock
    t0 = time.perf_counter()
    k = kfn(xs, None, ("nngp", "ntk"))
    K, T = np.asarray(k.nngp), np.asarray(k.ntk)
    secs = time.perf_counter() - t0
    entries = a.n * (a.n + 1) / 2 * a.depth
    out = {"system": f"neural-tangents {nt.__version__}", "jax": jax.__version__, "n": a.n,
           "depth": a.depth, "seconds": round(secs, 3),
           "ns_per_entry_layer": round(1e9 * secs / entries, 2)}
    if a.check:
        w = np.fromfile(a.check, dtype=np.float64)
        m = 64
        wk, wt = w[: m * m].reshape(m, m), w[m * m:].reshape(m, m)
        out["max_rel_diff_K"] = float(np.abs(K[:m, :m] - wk).max() / np.abs(wk).max())
        out["max_rel_diff_ntk"] = float(np.abs(T[:m, :m] - wt).max() / np.abs(wt).max())
        # off the diagonal: on it the correlation is 1, where ReLU's NTK has a
        # square-root branch, so neural-tangents' rounding of 1 - rho^2
        # (1e-16) moves its Theta_aa by ~1e-8 a layer; wick sets rho = 1 there
        off = ~np.eye(m, dtype=bool)
        # a third opinion: the arccos recursion in numpy, correlation 1 on
        # the diagonal (PDLT sec. 5.5 for K, the NTK recursion of ch. 8)
        xs64 = x[:m]
        G = xs64 @ xs64.T / n0
        nk, nt_ = 2 * G, 2 * G
        for _ in range(a.depth - 1):
            d = np.sqrt(np.outer(np.diag(nk), np.diag(nk)))
            r = np.clip(nk / d, -1, 1)
            np.fill_diagonal(r, 1)
            th = np.arccos(r)
            ss = d / (2 * np.pi) * (np.sqrt(1 - r * r) + (np.pi - th) * r)
            nt_ = 2 * ss + 2 * (np.pi - th) / (2 * np.pi) * nt_
            nk = 2 * ss
        out["numpy_max_rel_diff_K"] = float(np.abs(nk - wk).max() / np.abs(wk).max())
        out["numpy_max_rel_diff_ntk"] = float(np.abs(nt_ - wt).max() / np.abs(wt).max())
        out["max_rel_diff_K_offdiag"] = float(np.abs(K[:m, :m] - wk)[off].max() / np.abs(wk).max())
        out["max_rel_diff_ntk_offdiag"] = float(np.abs(T[:m, :m] - wt)[off].max() / np.abs(wt).max())
    if a.json:
        print(json.dumps(out))
    else:
        print(f"neural-tangents {nt.__version__} (jax {jax.__version__}), n = {a.n}, depth {a.depth}: "
              f"NNGP + NTK in {secs:.2f} s = {out['ns_per_entry_layer']} ns per entry per layer"
              + (f"; vs wick on 64 inputs: max rel diff {out['max_rel_diff_K']:.2g} (K), "
                 f"{out['max_rel_diff_ntk']:.2g} (NTK); off the diagonal "
                 f"{out['max_rel_diff_K_offdiag']:.2g} (K), {out['max_rel_diff_ntk_offdiag']:.2g} (NTK); "
                 f"numpy's arccos recursion vs wick {out['numpy_max_rel_diff_K']:.2g} (K), "
                 f"{out['numpy_max_rel_diff_ntk']:.2g} (NTK)"
                 if a.check else ""))


if __name__ == "__main__":
    main()
