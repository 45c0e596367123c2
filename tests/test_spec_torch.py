#!/usr/bin/env python3
"""test_spec_torch.py — `wick summary --json` against PyTorch: each spec's
layers, written as torch.nn modules by wick, make an nn.Sequential whose
forward gives the same output shape at every layer, whose modules have the
same parameter counts, whose state_dict has the names wick's layer indices
imply ("<i>.weight", "<i>.running_mean", ...), and whose products, counted
from torch's own output shapes, take the FLOPs wick reports.  Bad specs exit
2 with the token named.  Skipped without torch.  Prints RESULT passed failed skipped.
"""
import json, os, subprocess, sys

WICK = os.environ.get("WICK", "build/wick")
passed = failed = skipped = 0


def ok(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok     " + name, file=sys.stderr)
    else:
        failed += 1
        print("  FAIL %s %s" % (name, detail), file=sys.stderr)


try:
    import torch
    from torch import nn
except ImportError:
    print("  SKIP torch not installed", file=sys.stderr)
    print("RESULT 0 0 1")
    sys.exit(0)


class Sin(nn.Module):
    def forward(self, x):
        return torch.sin(x)


class Perceptron(nn.Module):
    def forward(self, x):
        return (x >= 0).to(x.dtype)


SPECS = [
    "input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,batchnorm,relu,maxpool:2,"
    "flatten,dropout:0.25,linear:256,relu,dropout:0.5,linear:10",
    "input:3x17x13,conv2d:8:3x5:stride=2:pad=1x2:dilation=2,leaky_relu:0.2,conv2d:8:3:groups=8:bias=0,"
    "avgpool:3:stride=2:pad=1,gelu,globalavgpool,flatten,batchnorm,swish,linear:5:bias=0",
    "input:4x9x9,conv2d:6:1:groups=2,tanh,maxpool:3x2:stride=1:pad=1,sigmoid,flatten,softplus,linear:3,sin",
    "input:20,linear:64,tanh,dropout:0.1,batchnorm,linear:4",
]


def summary(spec):
    r = subprocess.run([WICK, "summary", "--arch", spec, "--json"], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


for k, spec in enumerate(SPECS):
    rc, out, err = summary(spec)
    ok("spec %d: exit 0" % k, rc == 0, err)
    if rc:
        continue
    j = json.loads(out.strip().splitlines()[-1])
    ok("spec %d: canonical text is the spec" % k, j["arch"] == spec, j["arch"])
    mods = [eval(L["torch"], {**vars(nn), "Sin": Sin, "Perceptron": Perceptron}) for L in j["layers"]]
    net = nn.Sequential(*mods).eval()
    x = torch.randn([2] + j["input"])
    shapes, flops = [], []
    with torch.no_grad():
        h = x
        for m in net:
            y = m(h)
            shapes.append(list(y.shape[1:]))
            if isinstance(m, nn.Conv2d):
                fan = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                flops.append(2.0 * y[0].numel() * fan)
            elif isinstance(m, nn.Linear):
                flops.append(2.0 * m.in_features * m.out_features)
            else:
                flops.append(0.0)
            h = y
    # globalavgpool's output is [C, 1, 1] in torch too
    ok("spec %d: every layer's output shape" % k, shapes == [L["output"] for L in j["layers"]],
       "%s vs %s" % (shapes, [L["output"] for L in j["layers"]]))
    ok("spec %d: parameters per layer" % k,
       [sum(p.numel() for p in m.parameters()) for m in net] == [L["params"] for L in j["layers"]])
    ok("spec %d: total parameters" % k, sum(p.numel() for p in net.parameters()) == j["params"])
    ok("spec %d: forward FLOPs from torch's shapes" % k,
       all(abs(a - L["flops_fwd"]) <= 1e-9 * max(1, a) for a, L in zip(flops, j["layers"])))
    names = set(net.state_dict().keys())
    want = set()
    for L in j["layers"]:
        i = L["index"]
        if L["kind"] in ("linear", "conv2d"):
            want.add("%d.weight" % i)
            if "bias=0" not in L["layer"]:
                want.add("%d.bias" % i)
        elif L["kind"] == "batchnorm":
            want |= {"%d.%s" % (i, s) for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    ok("spec %d: state_dict names" % k, names == want, "%s" % (names ^ want))

# bad specs: usage error, the token named, one line
for spec, needle in [("input:1x28x28,conv2d:32", "conv2d:32: missing kernel size"),
                     ("input:1x28x28,conv2d:32:3,linear:10", "linear:10 after conv2d needs flatten"),
                     ("input:1x8x8,conv2d:4:3:groups=3,flatten,linear:2", "groups=3 must divide")]:
    rc, out, err = summary(spec)
    ok("bad spec '%s': exit 2, one line naming it" % spec,
       rc == 2 and needle in err and len(err.strip().splitlines()) == 1, "rc %d: %s" % (rc, err))

print("RESULT %d %d %d" % (passed, failed, skipped))
sys.exit(1 if failed else 0)
