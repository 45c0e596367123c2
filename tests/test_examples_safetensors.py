#!/usr/bin/env python3
"""examples/safetensors_np.py, the README's Python recipe, round-trips a wick model through
numpy and PyTorch: a model `wick train` wrote loads into torch's nn.Sequential with
strict=True; torch's state_dict written back (with and without wick's __metadata__) evaluates
in `wick eval` to the logits torch computes; a torch.save zip and a truncated file are refused.
Runs the wick binary only (no ctypes), so it runs under the sanitizer builds too.
Prints "RESULT passed failed skipped" last (tests/run.sh)."""
import os, subprocess, sys

passed = failed = skipped = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok     {what}", file=sys.stderr)
    else:
        failed += 1
        print(f"not ok {what}\n  FAIL {what}", file=sys.stderr)


def result():
    print(f"RESULT {passed} {failed} {skipped}")
    sys.exit(1 if failed else 0)


try:
    import numpy as np
    import torch
except ImportError:
    print("  SKIP: numpy or torch not installed (python3-numpy, python3-torch)", file=sys.stderr)
    skipped = 1
    result()

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, "examples"))
import safetensors_np as st  # noqa: E402

W = os.environ.get("WICK", os.path.join(root, "build", "wick"))
T = os.environ.get("WICK_TEST_TMP", "/tmp")


def wick(*args):
    return subprocess.run([W, *args], capture_output=True, text=True)


# a small CSV problem: label first, 6 features
rng = np.random.default_rng(1)
x = rng.standard_normal((300, 6))
y = (x[:, 0] + x[:, 1] > 0).astype(int) + 2 * (x[:, 2] > 0).astype(int)
csv = os.path.join(T, "d.csv")
np.savetxt(csv, np.column_stack([y, x]), fmt=["%d"] + ["%.6f"] * 6, delimiter=",")

model = os.path.join(T, "m.safetensors")
r = wick("train", "--train-csv", csv, "--test-csv", csv, "--arch", "6-16-4", "--epochs", "2",
         "--batch", "16", "--quiet", "--out", model)
check(r.returncode == 0, "wick train writes a model")
if r.returncode != 0:
    print(r.stderr[-2000:], file=sys.stderr)
    result()

sd, meta = st.load(model)
check(sorted(sd) == ["0.bias", "0.weight", "2.bias", "2.weight"], "the reader finds the layers")
check(sd["0.weight"].shape == (16, 6) and sd["0.weight"].dtype == np.float32,
      "0.weight is [out, in] float32")
check(isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values()) and meta,
      "__metadata__ reads as a dict of strings")

net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
try:
    net.load_state_dict(st.to_torch(sd), strict=True)
    ok = True
except RuntimeError as e:
    ok = False
    print(f"  {e}", file=sys.stderr)
check(ok, "the wick model loads into nn.Sequential with strict=True")

# torch's logits on the raw features, against wick eval of torch's weights with no metadata
# (a file PyTorch wrote: architecture from the shapes, --act given, no preprocessing)
with torch.no_grad():
    want = net(torch.from_numpy(x.astype(np.float32))).double().numpy()
bare = os.path.join(T, "torch.safetensors")
st.save(bare, st.from_torch(net.state_dict()))
logits = os.path.join(T, "logits.csv")
r = wick("eval", "--model", bare, "--act", "relu", "--test-csv", csv, "--logits", logits)
check(r.returncode == 0, "wick eval reads the file the numpy writer wrote from torch")
if r.returncode == 0:
    got = np.loadtxt(logits, delimiter=",", ndmin=2)
    err = np.abs(got - want).max() / max(1.0, np.abs(want).max())
    check(got.shape == want.shape and err < 1e-5, f"wick's logits match torch's ({err:.2g})")
else:
    print(r.stderr[-1000:], file=sys.stderr)

# the torch state_dict written back with wick's metadata evaluates like the original model
again = os.path.join(T, "again.safetensors")
st.save(again, st.from_torch(net.state_dict()), meta)
a, b = os.path.join(T, "a.csv"), os.path.join(T, "b.csv")
ra = wick("eval", "--model", model, "--test-csv", csv, "--logits", a)
rb = wick("eval", "--model", again, "--test-csv", csv, "--logits", b)
check(ra.returncode == 0 and rb.returncode == 0 and open(a).read() == open(b).read(),
      "wick -> numpy -> torch -> numpy -> wick keeps the logits bit for bit")
back, meta2 = st.load(again)
check(meta2 == meta and all(np.array_equal(back[k], sd[k]) for k in sd),
      "the writer keeps tensors and metadata exactly")

# refusals: a torch.save zip, a truncated file
zipped = os.path.join(T, "pickled.pt")
torch.save(net.state_dict(), zipped)
for path, what in ((zipped, "zip archive"), (None, "do not fit")):
    if path is None:
        path = os.path.join(T, "short.safetensors")
        with open(model, "rb") as f, open(path, "wb") as g:
            g.write(f.read()[:-4])
    try:
        st.load(path)
        msg = ""
    except ValueError as e:
        msg = str(e)
    check(what in msg, f"the reader refuses a file whose {what!r} it names")

r = subprocess.run([sys.executable, os.path.join(root, "examples", "safetensors_np.py"), model],
                   capture_output=True, text=True)
check(r.returncode == 0 and "0.weight" in r.stdout and "__metadata__" in r.stdout,
      "python3 examples/safetensors_np.py FILE lists tensors and metadata")
result()
