#!/usr/bin/python3
"""test_optim_torch.py — wick's optimisers and learning-rate schedules against
torch.optim and torch.optim.lr_scheduler (Debian's torch 1.13).

The optimisers: build/tests/tools/optim_trace runs wick on a fixed parameter and
gradient sequence (p0[i] = 0.5 cos(0.11 i + 0.3), p0[0] = 0; g_t[i] =
sin(0.37 i + 1.3 t), both rounded to float) and prints the parameters after
each of 100 steps; torch takes the same steps here, and every parameter of
every step must agree to 1e-5 relative: |w - t| <= 1e-5 max(|t|, 0.01).  The
floor: parameters are O(0.5) and some cross zero, where the difference is a
few float ulps of the O(0.1) terms summed (torch's vectorised kernels fuse
multiply-adds that wick rounds twice), not a relative error of the result.
The schedules: build/tests/tools/sched_trace prints the rate of each of 30
epochs; torch's scheduler must give the same rates to 1e-12 relative.

Run from the repository root (tests/run.sh does); honours $BUILD.  Prints
"RESULT passed failed skipped" last; without torch it skips."""
import math
import os
import subprocess
import sys
import warnings

try:
    import torch
except Exception as e:  # no torch: nothing to compare against
    print("SKIP: import torch failed: %s" % e, file=sys.stderr)
    print("  SKIP test_optim_torch: import torch failed: %s" % e, file=sys.stderr)
    print("RESULT 0 0 1")
    sys.exit(0)

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
BUILD = os.environ.get("BUILD", "build")
OPTIM_TRACE = os.path.join(BUILD, "tests", "tools", "optim_trace")
SCHED_TRACE = os.path.join(BUILD, "tests", "tools", "sched_trace")
passed = failed = 0


def report(name, ok, detail):
    global passed, failed
    if ok:
        passed += 1
        print("ok     %s  %s" % (name, detail), file=sys.stderr)
    else:
        failed += 1
        print("  FAIL %s: %s" % (name, detail), file=sys.stderr)
        print("not ok %s" % name, file=sys.stderr)
    print("%-40s %s  %s" % (name, "ok" if ok else "FAIL", detail))


def run(prog, args):
    out = subprocess.run([prog] + args, check=True, stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    return [[float(x) for x in line.split()] for line in out.splitlines()]


# --------------------------------------------------------------------------
# Optimisers

def torch_trace(kind, lr=0.01, steps=100, n=37, n2=0, momentum=0.0, nesterov=False,
                beta1=0.9, beta2=0.999, eps=1e-8, wd=None, l1=0.0, nodecay2=False,
                vary_lr=False, reverse=False):
    """The same run as optim_trace's, with torch.optim.  L1 is not in torch:
    l1*sign(p) is added to the gradient, which is wick's definition."""
    if wd is None:
        wd = 0.01 if kind == "adamw" else 0.0
    total = n + n2
    p0 = [0.5 * math.cos(0.11 * i + 0.3) for i in range(total)]
    p0[0] = 0.0
    full = torch.tensor(p0, dtype=torch.float32)
    params = [full[:n].clone().requires_grad_(True)]
    if n2 > 0:
        params.append(full[n:].clone().requires_grad_(True))
    decays = [True, not nodecay2]
    groups = [{"params": [p], "weight_decay": wd if decays[k] else 0.0}
              for k, p in enumerate(params)]
    if kind == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov)
    elif kind == "adam":
        opt = torch.optim.Adam(groups, lr=lr, betas=(beta1, beta2), eps=eps)
    else:
        opt = torch.optim.AdamW(groups, lr=lr, betas=(beta1, beta2), eps=eps)
    rows = []
    for t in range(steps):
        g = torch.tensor([math.sin(0.37 * i + 1.3 * t) for i in range(total)],
                         dtype=torch.float32)
        gs = [g[:n], g[n:]]
        for k, p in enumerate(params):
            gk = gs[k].clone()
            if l1 and decays[k]:
                gk = gk + l1 * torch.sign(p.detach())
            p.grad = gk
        lr_t = lr * (1.0 + 0.5 * math.cos(0.7 * t)) if vary_lr else lr
        for group in opt.param_groups:
            group["lr"] = lr_t
        opt.step()
        rows.append(torch.cat([p.detach() for p in params]).tolist())
    return rows


def trace_args(kind, kw):
    a = [kind]
    for key, flag in (("lr", "--lr"), ("steps", "--steps"), ("n", "--n"), ("n2", "--n2"),
                      ("momentum", "--momentum"), ("beta1", "--beta1"), ("beta2", "--beta2"),
                      ("eps", "--eps"), ("wd", "--wd"), ("l1", "--l1")):
        if key in kw:
            a += [flag, repr(float(kw[key])) if isinstance(kw[key], float) else str(kw[key])]
    for key, flag in (("nesterov", "--nesterov"), ("nodecay2", "--nodecay2"),
                      ("vary_lr", "--vary-lr"), ("reverse", "--reverse")):
        if kw.get(key):
            a.append(flag)
    return a


worst_opt = 0.0


def check_optim(name, kind, **kw):
    global worst_opt
    try:
        mine = run(OPTIM_TRACE, trace_args(kind, kw))
    except Exception as e:
        report(name, False, "%s failed: %s" % (OPTIM_TRACE, e))
        return
    ref = torch_trace(kind, **kw)
    if len(mine) != len(ref) or any(len(a) != len(b) for a, b in zip(mine, ref)):
        report(name, False, "shape differs: %d steps from wick, %d from torch" % (len(mine), len(ref)))
        return
    worst, where, moved, worst_abs = 0.0, None, 0.0, 0.0
    for t, (a, b) in enumerate(zip(mine, ref)):
        for i, (x, y) in enumerate(zip(a, b)):
            worst_abs = max(worst_abs, abs(x - y))
            r = abs(x - y) / max(abs(y), 0.01)
            if r > worst:
                worst, where = r, (t, i, x, y)
    # the run must actually move the parameters, or agreement proves nothing
    p0 = [0.5 * math.cos(0.11 * i + 0.3) for i in range(len(ref[-1]))]
    p0[0] = 0.0
    moved = max(abs(x - y) for x, y in zip(ref[-1], p0))
    worst_opt = max(worst_opt, worst)
    detail = "max rel err %.2e, max abs err %.2e over %d steps x %d params; moved up to %.3g" % (
        worst, worst_abs, len(ref), len(ref[0]), moved)
    if worst > 1e-5 and where:
        detail += "; worst at step %d param %d: wick %.9g torch %.9g" % where
    report(name, worst <= 1e-5 and moved > 1e-2, detail)


check_optim("sgd", "sgd", lr=0.05)
check_optim("sgd_weight_decay", "sgd", lr=0.05, wd=0.01)
check_optim("sgd_momentum_wd", "sgd", lr=0.02, momentum=0.9, wd=0.01)
check_optim("sgd_nesterov_wd", "sgd", lr=0.02, momentum=0.9, nesterov=True, wd=0.001)
check_optim("sgd_momentum_l1", "sgd", lr=0.02, momentum=0.8, wd=0.01, l1=0.003)
check_optim("adam", "adam", lr=0.01)
check_optim("adam_wd_betas", "adam", lr=0.005, wd=0.01, beta1=0.8, beta2=0.99, eps=1e-6)
check_optim("adam_l1", "adam", lr=0.01, l1=0.01, wd=0.001)
check_optim("adamw", "adamw", lr=0.01)
check_optim("adamw_wd", "adamw", lr=0.01, wd=0.1, beta2=0.95)
# two tensors, no decay on the second, updated in alternating order, lr varying per step
check_optim("sgd_nesterov_two_tensors", "sgd", lr=0.03, momentum=0.9, nesterov=True, wd=0.01,
            n=23, n2=11, nodecay2=True, vary_lr=True, reverse=True)
check_optim("adam_two_tensors", "adam", lr=0.01, wd=0.01, n=23, n2=11, nodecay2=True,
            vary_lr=True, reverse=True)
check_optim("adamw_two_tensors", "adamw", lr=0.01, wd=0.05, l1=0.001, n=23, n2=11,
            nodecay2=True, vary_lr=True, reverse=True)
# a big tensor takes the multithreaded path (n > 2^15)
check_optim("adam_big_tensor", "adam", lr=0.01, wd=0.01, n=40000, steps=20)


# --------------------------------------------------------------------------
# Schedules: rate of epoch e = torch's get_last_lr() after e scheduler steps.

def torch_lrs(make, lr0, epochs, losses=None):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr0)
    sched = make(opt)
    out = []
    for e in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if losses is not None:
            sched.step(losses[e])
        else:
            sched.step()
    return out


def check_sched(name, kind, make, lr0, args, losses=None, epochs=30):
    try:
        mine = [r[0] for r in run(SCHED_TRACE, [kind, "--lr0", repr(lr0), "--epochs", str(epochs)]
                                  + args + (["--losses", ",".join(repr(x) for x in losses)]
                                            if losses else []))]
    except Exception as e:
        report(name, False, "%s failed: %s" % (SCHED_TRACE, e))
        return
    ref = torch_lrs(make, lr0, epochs, losses)
    worst = max(abs(a - b) / abs(b) for a, b in zip(mine, ref)) if len(mine) == len(ref) else 1.0
    distinct = len(set(ref))
    report(name, len(mine) == len(ref) and worst <= 1e-12 and (distinct > 1 or kind == "constant"),
           "max rel err %.2e over %d epochs, %d distinct rates, last %.6g" % (
               worst, len(ref), distinct, ref[-1]))


L = torch.optim.lr_scheduler
check_sched("sched_constant", "constant", lambda o: L.LambdaLR(o, lambda e: 1.0), 0.1, [])
check_sched("sched_step", "step", lambda o: L.StepLR(o, step_size=7, gamma=0.5), 0.1,
            ["--step-size", "7", "--gamma", "0.5"])
check_sched("sched_exp", "exp", lambda o: L.ExponentialLR(o, gamma=0.9), 0.05, ["--gamma", "0.9"])
check_sched("sched_linear", "linear",
            lambda o: L.LinearLR(o, start_factor=1.0, end_factor=0.001 / 0.1, total_iters=20), 0.1,
            ["--floor", "0.001", "--over", "20"])
check_sched("sched_linear_to_zero", "linear",
            lambda o: L.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=30), 0.1,
            ["--floor", "0", "--over", "30"], epochs=30)
# improvements, improvements smaller than the 1e-4 relative threshold (bad),
# a NaN (bad), and the floor reached
losses = [1.0, 0.9, 0.85, 0.85, 0.84995, 0.86, 0.7, 0.7, 0.69996, 0.7, 0.71, 0.6,
          0.59, 0.58, 0.58, 0.58, float("nan"), 0.57, 0.57, 0.57, 0.57, 0.57, 0.57,
          0.57, 0.57, 0.5, 0.57, 0.57, 0.57, 0.57]
check_sched("sched_plateau", "plateau",
            lambda o: L.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=2, threshold=1e-4,
                                          min_lr=0.01), 0.1,
            ["--factor", "0.5", "--patience", "2", "--threshold", "1e-4", "--floor", "0.01"],
            losses)
# patience 0, no floor, tiny rates: torch skips a reduction smaller than 1e-8
check_sched("sched_plateau_eps", "plateau",
            lambda o: L.ReduceLROnPlateau(o, factor=0.5, patience=0, min_lr=0.0), 1e-7,
            ["--factor", "0.5", "--patience", "0", "--threshold", "1e-4", "--floor", "0"],
            [1.0] * 30)

print("optimisers: worst relative difference from torch %.3g (torch %s)" % (worst_opt, torch.__version__))
print("RESULT %d %d 0" % (passed, failed))
sys.exit(1 if failed else 0)
