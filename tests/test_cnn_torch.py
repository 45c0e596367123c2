#!/usr/bin/env python3
"""test_cnn_torch.py — conv nets between wick and PyTorch, both ways, and the
same training steps.

1. PyTorch -> wick: an nn.Sequential with conv, batch norm (running
   statistics moved by 20 training steps), pooling and dropout, saved as
   safetensors by hand, evaluates in `wick eval --arch SPEC` with the same
   logits (1e-4) and accuracy.
2. wick -> PyTorch: a CNN trained by `wick train --arch SPEC` loads into the
   same nn.Sequential with strict=True and gives wick's logits (1e-4).
3. The same steps: from the same initial weights, 6 steps of SGD with
   momentum and weight decay on the same batches (no shuffle, no dropout)
   give the same weights and running statistics in wick and PyTorch
   (float32: 2e-4 relative to each tensor's scale), plainly and with each
   regulariser: clip_grad_norm_, clip_grad_value_, renorm after the step
   (max-norm), and the activations' mean |h| added to the loss.
The nn.Sequential is built from the modules `wick summary --json` names, so
the test also checks that mapping.  Skipped without torch.
Prints RESULT passed failed skipped."""
import json, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "py"))
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
    import numpy as np
    import torch
    from torch import nn
    import st
except ImportError:
    print("  SKIP torch or numpy not installed", file=sys.stderr)
    print("RESULT 0 0 1")
    sys.exit(0)

torch.manual_seed(3)
torch.set_num_threads(1)
tmp = os.environ.get("WICK_TEST_TMP") or tempfile.mkdtemp()
SPEC = ("input:1x12x12,conv2d:6:3:pad=1,batchnorm,relu,maxpool:2,conv2d:8:3:stride=2:pad=1,batchnorm,relu,"
        "flatten,dropout:0.3,linear:16,relu,dropout:0.5,linear:4")


def run(*args):
    r = subprocess.run([WICK] + list(args), capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def build(spec):
    rc, out, err = run("summary", "--arch", spec, "--json")
    assert rc == 0, err
    j = json.loads(out.strip().splitlines()[-1])
    return nn.Sequential(*[eval(L["torch"], vars(nn)) for L in j["layers"]])


def data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 12, 12, generator=g)
    # labels from a fixed rule on the image, so that training learns something
    y = ((x[:, 0, :6].mean((1, 2)) > x[:, 0, 6:].mean((1, 2))).long() * 2 +
         (x[:, 0, :, :6].mean((1, 2)) > x[:, 0, :, 6:].mean((1, 2))).long())
    return x, y


def write_csv(path, x, y):
    a = np.concatenate([y.numpy()[:, None].astype(np.float64), x.reshape(len(x), -1).numpy().astype(np.float64)], 1)
    np.savetxt(path, a, delimiter=",", fmt="%.9g")


def save_torch(net, path):
    st.save(path, {k: v.detach().numpy() for k, v in net.state_dict().items()})


def load_into(net, path):
    t, _ = st.load(path)
    sd = {k: torch.from_numpy(v) for k, v in t.items()}
    net.load_state_dict(sd, strict=True)


def logits_csv(path):
    return np.loadtxt(path, delimiter=",", ndmin=2)


xtr, ytr = data(512, 1)
xte, yte = data(200, 2)
train_csv, test_csv = os.path.join(tmp, "train.csv"), os.path.join(tmp, "test.csv")
write_csv(train_csv, xtr, ytr)
write_csv(test_csv, xte, yte)

# ---- 1. PyTorch -> wick -----------------------------------------------------
net = build(SPEC)
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
net.train()
for step in range(20):
    i = torch.arange(step * 25, step * 25 + 25) % 512
    loss = nn.functional.cross_entropy(net(xtr[i]), ytr[i])
    opt.zero_grad()
    loss.backward()
    opt.step()
net.eval()
with torch.no_grad():
    want = net(xte).numpy()
ok("torch's batch norm moved its running statistics", int(net[1].num_batches_tracked) == 20
   and float(net[1].running_var.std()) > 0)
path = os.path.join(tmp, "torch.safetensors")
save_torch(net, path)
out = os.path.join(tmp, "logits.csv")
rc, o, e = run("eval", "--model", path, "--arch", SPEC, "--test-csv", test_csv, "--logits", out, "--json")
ok("wick eval takes a PyTorch CNN: exit 0", rc == 0, e)
if rc == 0:
    got = logits_csv(out)
    d = np.abs(got - want).max()
    ok("PyTorch CNN in wick: logits within 1e-4 (max %.2e)" % d, d < 1e-4)
    acc = json.loads(o.strip().splitlines()[-1])["test_acc"]
    ok("PyTorch CNN in wick: same accuracy", abs(acc - float((want.argmax(1) == yte.numpy()).mean())) < 1e-12)

# ---- 2. wick -> PyTorch -----------------------------------------------------
wpath = os.path.join(tmp, "wick.safetensors")
rc, o, e = run("train", "--arch", SPEC, "--train-csv", train_csv, "--test-csv", test_csv, "--val", "0",
               "--epochs", "3", "--batch", "32", "--lr", "0.05", "--out", wpath, "--quiet", "--threads", "2")
ok("wick train --arch CNN: exit 0", rc == 0, e)
if rc == 0:
    net2 = build(SPEC)
    try:
        load_into(net2, wpath)
        loaded = True
    except Exception as ex:  # noqa: BLE001 - the message is the test's output
        loaded = False
        ok("wick CNN loads into nn.Sequential strictly", False, str(ex))
    if loaded:
        ok("wick CNN loads into nn.Sequential strictly", True)
        net2.eval()
        with torch.no_grad():
            tl = net2(xte).numpy()
        rc, o, e = run("eval", "--model", wpath, "--test-csv", test_csv, "--logits", out)
        ok("wick eval of its own CNN: exit 0", rc == 0, e)
        if rc == 0:
            d = np.abs(logits_csv(out) - tl).max()
            ok("wick CNN in PyTorch: logits within 1e-4 (max %.2e)" % d, d < 1e-4)

# ---- 3. the same steps --------------------------------------------------------
# plain, and with each regulariser on the update or the loss, as PyTorch does it
SPEC3 = ("input:1x12x12,conv2d:5:3:pad=1,batchnorm,relu,avgpool:2,conv2d:7:3:dilation=2:groups=1,batchnorm,"
         "tanh,globalavgpool,flatten,linear:4")
base3 = build(SPEC3)
init = os.path.join(tmp, "init.safetensors")
save_torch(base3, init)
B, steps = 32, 6
for flag, value in [(None, None), ("--clip-norm", 0.05), ("--clip-value", 0.002), ("--max-norm", 0.6),
                    ("--act-l1", 0.05)]:
    net3 = build(SPEC3)
    net3.load_state_dict(base3.state_dict())
    acts = []
    for m in net3:
        if isinstance(m, (nn.ReLU, nn.Tanh)):
            m.register_forward_hook(lambda mod, inp, out: acts.append(out))
    opt = torch.optim.SGD(net3.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    net3.train()
    for step in range(steps):
        i = torch.arange(step * B, step * B + B)
        acts.clear()
        loss = nn.functional.cross_entropy(net3(xtr[i]), ytr[i])
        if flag == "--act-l1":
            loss = loss + sum(value * a.abs().mean() for a in acts)
        opt.zero_grad()
        loss.backward()
        if flag == "--clip-norm":
            torch.nn.utils.clip_grad_norm_(net3.parameters(), value)
        if flag == "--clip-value":
            torch.nn.utils.clip_grad_value_(net3.parameters(), value)
        opt.step()
        if flag == "--max-norm":
            with torch.no_grad():
                for m in net3:
                    if isinstance(m, (nn.Conv2d, nn.Linear)):
                        m.weight.copy_(torch.renorm(m.weight, 2, 0, value))
    after = os.path.join(tmp, "after.safetensors")
    extra = [flag, str(value)] if flag else []
    rc, o, e = run("train", "--arch", SPEC3, "--train-csv", train_csv, "--val", "0", "--shuffle", "off",
                   "--batch", str(B), "--max-steps", str(steps), "--epochs", "1", "--lr", "0.1", "--schedule",
                   "constant", "--momentum", "0.9", "--weight-decay", "1e-3", "--init", "torch", "--init-from", init,
                   "--out", after, "--quiet", "--threads", "1", *extra)
    what = flag or "plain"
    ok("%s: wick train from torch's initial weights: exit 0" % what, rc == 0, e)
    if rc == 0:
        got, _ = st.load(after)
        worst, where = 0.0, ""
        for k, v in net3.state_dict().items():
            a = v.detach().numpy().astype(np.float64)
            b = got[k].astype(np.float64).reshape(a.shape)
            scale = max(np.abs(a).max(), 1e-3)
            err = np.abs(a - b).max() / scale
            if err > worst:
                worst, where = err, k
        ok("%s: 6 SGD steps in wick and torch: every tensor within 2e-4 (worst %.2e at %s)" % (what, worst, where),
           worst < 2e-4)
        # the regulariser did something: the plain run's weights differ
        if flag:
            plain = os.path.join(tmp, "plain.safetensors")
            if os.path.exists(plain):
                p0, _ = st.load(plain)
                ok("%s: changes the weights" % what, max(np.abs(p0[k] - got[k]).max() for k in got) > 1e-5)
        else:
            os.replace(after, os.path.join(tmp, "plain.safetensors"))

print("RESULT %d %d %d" % (passed, failed, skipped))
sys.exit(1 if failed else 0)
