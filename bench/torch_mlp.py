#!/usr/bin/env python3
"""PyTorch reference for wick's training speed (bench/run.sh): an MLP trained
on Fashion-MNIST with SGD + momentum, the same steps as `wick train`.

Adapted from /work/shared/bench/torch_mlp.py: the architecture is a wick
--arch string; only the training loop is timed (data loading, model
construction and the test evaluation are outside the clock); the thread count
is set both through torch.set_num_threads and the BLAS environment, which the
caller must set before Python starts (run.sh does: OMP_NUM_THREADS,
MKL_NUM_THREADS, OPENBLAS_NUM_THREADS).  Runs with Debian's python3-torch
(/usr/bin/python3) or with the PyPI wheel in bench/venv.

FLOPs counted as in issue 7: 2*m*n*k for each forward, weight-gradient and
input-gradient product, no input gradient for the first layer (3.21 MFLOP
per sample for 784-512-512-10); biases and activations not counted.
Prints one JSON line.
"""
import argparse, gzip, json, time

import numpy as np
import torch


def parse_arch(s):
    """'784-512-512-10', with 'WxN' for N layers of width W: '784-128x16-10'."""
    dims = []
    for part in s.split("-"):
        if "x" in part:
            w, n = part.split("x")
            dims += [int(w)] * int(n)
        else:
            dims.append(int(part))
    if len(dims) < 2 or min(dims) < 1:
        raise SystemExit(f"torch_mlp: bad --arch {s!r}")
    return dims


p = argparse.ArgumentParser()
p.add_argument("--arch", default="784-512-512-10")
p.add_argument("--act", default="relu", choices=["relu", "tanh"])
p.add_argument("--batch", type=int, default=128)
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--lr", type=float, default=0.05)
p.add_argument("--momentum", type=float, default=0.9)
p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist/")
p.add_argument("--limit", type=int, default=0, help="train on the first N samples only (quick probes)")
p.add_argument("--precision", default="f32", choices=["f32", "bf16"],
               help="bf16: the forward under torch.autocast('cpu', dtype=torch.bfloat16), float32 weights")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
dims = parse_arch(a.arch)


def images(f):
    raw = gzip.open(a.data + f).read()
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255


def labels(f):
    return np.frombuffer(gzip.open(a.data + f).read(), np.uint8, offset=8).astype(np.int64)


Xtr, Ytr = torch.tensor(images("train-images-idx3-ubyte.gz")), torch.tensor(labels("train-labels-idx1-ubyte.gz"))
Xte, Yte = torch.tensor(images("t10k-images-idx3-ubyte.gz")), torch.tensor(labels("t10k-labels-idx1-ubyte.gz"))
if dims[0] != Xtr.shape[1] or dims[-1] != 10:
    raise SystemExit(f"torch_mlp: --arch must start at 784 and end at 10 for Fashion-MNIST")

Act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[a.act]
layers = []
for i in range(len(dims) - 2):
    layers += [torch.nn.Linear(dims[i], dims[i + 1]), Act()]
model = torch.nn.Sequential(*layers, torch.nn.Linear(dims[-2], dims[-1]))
opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
loss_fn = torch.nn.CrossEntropyLoss()

n = min(a.limit, len(Xtr)) if a.limit > 0 else len(Xtr)
t0, seen = time.perf_counter(), 0
for _ in range(a.epochs):
    perm = torch.randperm(n)
    for i in range(0, n, a.batch):
        idx = perm[i:i + a.batch]
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = loss_fn(model(Xtr[idx]), Ytr[idx])
        loss.backward()
        opt.step()
        seen += len(idx)
dt = time.perf_counter() - t0

with torch.no_grad():
    acc = (model(Xte).argmax(1) == Yte).float().mean().item()
lin = [dims[i] * dims[i + 1] for i in range(len(dims) - 1)]
flops_per_sample = 2 * (2 * sum(lin) + sum(lin[1:]))
print(json.dumps({"system": f"torch {torch.__version__}" + (" bf16" if a.precision == "bf16" else ""), "precision": a.precision, "arch": a.arch, "act": a.act, "batch": a.batch,
                  "threads": a.threads, "torch_threads": torch.get_num_threads(),
                  "samples_per_s": round(seen / dt, 1), "gflops": round(flops_per_sample * seen / dt / 1e9, 2),
                  "flops_per_sample": flops_per_sample, "test_acc": round(acc, 4),
                  "final_loss": round(loss.item(), 4), "seconds": round(dt, 3)}))
