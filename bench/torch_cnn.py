#!/usr/bin/env python3
"""PyTorch reference for wick's convolution speed: the issue's CNN trained on
Fashion-MNIST with SGD + momentum 0.9, batch 128, the training loop only.

The network is a wick layer spec (the tokens of wick's spec language that
this script knows: input:CxHxW, conv2d:OUT:K[:stride=S][:pad=P][:dilation=D]
[:groups=G][:bias=0], batchnorm, relu, tanh, maxpool:K[:stride=S][:pad=P],
avgpool:K, flatten, dropout:P, linear:OUT[:bias=0]) made into the same
nn.Sequential.  --warmup steps run first, then --steps steps are timed (the
batches walk a random permutation of the data set, wrapping around); data
loading and model construction are outside the clock.  --data random uses
N(0,1) images and random labels of the same shape instead of the files.

The thread count is set both through torch.set_num_threads and the BLAS /
OpenMP environment, which the caller sets before Python starts, as
bench/run.sh does for torch_mlp.py:
  OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_WAIT_POLICY=passive \\
      /usr/bin/python3 bench/torch_cnn.py --threads 2
Runs with Debian's python3-torch (/usr/bin/python3) or the PyPI wheel in
bench/venv (bench/torch_venv.sh).

FLOPs counted as in the issue: 2 per multiply-add of each forward,
weight-gradient and input-gradient product of the conv and linear layers,
no input gradient for the first one (27.4 MFLOP a sample for the default
spec); batch norm, pooling, activations and biases not counted.
Prints one JSON line.
"""
import argparse, gzip, json, time

import numpy as np
import torch

SPEC = ("input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,batchnorm,relu,"
        "maxpool:2,flatten,dropout:0.25,linear:256,relu,dropout:0.5,linear:10")

p = argparse.ArgumentParser()
p.add_argument("--spec", default=SPEC)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--warmup", type=int, default=10)
p.add_argument("--steps", type=int, default=60)
p.add_argument("--lr", type=float, default=0.01)
p.add_argument("--momentum", type=float, default=0.9)
p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist/", help="a directory or 'random'")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)


def pair(v):
    if "x" in v:
        h, w = v.split("x")
        return int(h), int(w)
    return int(v), int(v)


def build(spec):
    """nn.Sequential, the input shape (C, H, W) and the FLOPs of one sample's step."""
    mods, shape, flops, first = [], None, 0, True
    for tok in spec.split(","):
        f = tok.split(":")
        name, pos = f[0], [x for x in f[1:] if "=" not in x]
        kw = dict(x.split("=") for x in f[1:] if "=" in x)
        if name == "input":
            c, h, w = (int(v) for v in pos[0].split("x"))
            shape = (c, h, w)
            continue
        c, h, w = shape
        if name == "conv2d":
            out, (kh, kw_) = int(pos[0]), pair(pos[1])
            s, pd, d = pair(kw.get("stride", "1")), pair(kw.get("pad", "0")), pair(kw.get("dilation", "1"))
            g = int(kw.get("groups", "1"))
            mods.append(torch.nn.Conv2d(c, out, (kh, kw_), s, pd, d, g, bias=kw.get("bias", "1") != "0"))
            oh = (h + 2 * pd[0] - d[0] * (kh - 1) - 1) // s[0] + 1
            ow = (w + 2 * pd[1] - d[1] * (kw_ - 1) - 1) // s[1] + 1
            mac = out * oh * ow * (c // g) * kh * kw_
            flops += 2 * mac * (2 if first else 3)
            first, shape = False, (out, oh, ow)
        elif name == "linear":
            n_in, out = c * h * w, int(pos[0])
            mods.append(torch.nn.Linear(n_in, out, bias=kw.get("bias", "1") != "0"))
            flops += 2 * n_in * out * (2 if first else 3)
            first, shape = False, (out, 1, 1)
        elif name == "batchnorm":
            mods.append(torch.nn.BatchNorm2d(c) if h * w > 1 else torch.nn.BatchNorm1d(c))
        elif name in ("maxpool", "avgpool"):
            k = pair(pos[0])
            s, pd = pair(kw.get("stride", pos[0])), pair(kw.get("pad", "0"))
            mods.append((torch.nn.MaxPool2d if name == "maxpool" else torch.nn.AvgPool2d)(k, s, pd))
            shape = (c, (h + 2 * pd[0] - k[0]) // s[0] + 1, (w + 2 * pd[1] - k[1]) // s[1] + 1)
        elif name == "flatten":
            mods.append(torch.nn.Flatten())
            shape = (c * h * w, 1, 1)
        elif name == "dropout":
            mods.append(torch.nn.Dropout(float(pos[0])))
        elif name == "relu":
            mods.append(torch.nn.ReLU())
        elif name == "tanh":
            mods.append(torch.nn.Tanh())
        else:
            raise SystemExit(f"torch_cnn: token {tok!r} is not one this script knows")
    return torch.nn.Sequential(*mods), flops


model, flops_per_sample = build(a.spec)
c0, h0, w0 = (int(v) for v in a.spec.split(",")[0].split(":")[1].split("x"))

if a.data == "random":
    X = torch.randn(60000, c0, h0, w0)
    Y = torch.randint(0, 10, (60000,))
else:
    raw = gzip.open(a.data + "train-images-idx3-ubyte.gz").read()
    X = torch.tensor(np.frombuffer(raw, np.uint8, offset=16).reshape(-1, c0, h0, w0).astype(np.float32) / 255)
    Y = torch.tensor(np.frombuffer(gzip.open(a.data + "train-labels-idx1-ubyte.gz").read(), np.uint8,
                                   offset=8).astype(np.int64))

opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
loss_fn = torch.nn.CrossEntropyLoss()
model.train()
perm = torch.randperm(len(X))
nb = len(X) // a.batch


def step(i):
    idx = perm[(i % nb) * a.batch:(i % nb + 1) * a.batch]
    opt.zero_grad()
    loss = loss_fn(model(X[idx]), Y[idx])
    loss.backward()
    opt.step()
    return loss


for i in range(a.warmup):
    step(i)
t0 = time.perf_counter()
for i in range(a.warmup, a.warmup + a.steps):
    loss = step(i)
dt = time.perf_counter() - t0
seen = a.steps * a.batch
print(json.dumps({"system": f"torch {torch.__version__}", "spec": a.spec, "batch": a.batch,
                  "threads": a.threads, "torch_threads": torch.get_num_threads(),
                  "samples_per_s": round(seen / dt, 1), "gflops": round(flops_per_sample * seen / dt / 1e9, 2),
                  "flops_per_sample": flops_per_sample, "steps": a.steps, "warmup": a.warmup,
                  "final_loss": round(loss.item(), 4), "seconds": round(dt, 3)}))
