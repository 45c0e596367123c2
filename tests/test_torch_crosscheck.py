#!/usr/bin/env python3
"""PyTorch cross-checks of the training engine (Debian's python3-torch):
1. the same initial weights and batch order give the same per-step losses for 100 SGD steps
   with momentum (to 1e-4 relative);
2. a model trained by wick loads into PyTorch (load_state_dict, strict) and gives the same
   logits (to 1e-5); a model trained by PyTorch loads into wick and gives the same logits;
3. a wick checkpoint loads into PyTorch once the optimizer.* tensors are dropped.
Skipped, with a message, when torch is missing."""
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "py"))
passed = failed = 0


def check(cond, what):
    global passed, failed
    print(("ok     " if cond else "not ok ") + what, file=sys.stderr)
    passed += bool(cond)
    failed += not cond


try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"  SKIP torch cross-checks: {e} (install python3-torch)", file=sys.stderr)
    print("RESULT 0 0 1")
    sys.exit(0)
import st

wick = os.environ.get("WICK", "build/wick")
tmp = os.environ.get("WICK_TEST_TMP", "/tmp")
torch.manual_seed(0)
rng = np.random.default_rng(0)

# data: 3200 training rows = 100 steps of 32; labels from a random linear teacher
D, C, N, NT = 20, 4, 3200, 500
teacher = rng.normal(size=(D, C))
def make(n):
    x = rng.normal(size=(n, D)).astype(np.float32)
    return x, (x @ teacher).argmax(1)
xtr, ytr = make(N)
xte, yte = make(NT)
def write_csv(path, x, y):
    with open(path, "w") as f:
        for xi, yi in zip(x, y):
            f.write(f"{yi}," + ",".join(f"{v:.9g}" for v in xi) + "\n")
train_csv, test_csv = f"{tmp}/train.csv", f"{tmp}/test.csv"
write_csv(train_csv, xtr, ytr)
write_csv(test_csv, xte, yte)
xtr_t, ytr_t = torch.tensor(xtr), torch.tensor(ytr)
xte_t = torch.tensor(xte)

def net():
    return torch.nn.Sequential(torch.nn.Linear(D, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32),
                               torch.nn.Tanh(), torch.nn.Linear(32, C))
model = net()
init_path = f"{tmp}/init.safetensors"
st.save(init_path, {k: v.detach().numpy() for k, v in model.state_dict().items()})

# 1. 100 SGD steps, momentum 0.9, batches in order
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
torch_losses = []
for i in range(0, N, 32):
    opt.zero_grad()
    loss = loss_fn(model(xtr_t[i:i + 32]), ytr_t[i:i + 32])
    loss.backward()
    opt.step()
    torch_losses.append(loss.item())

steps_path, wick_model = f"{tmp}/steps.txt", f"{tmp}/wick_model.safetensors"
ckpt = f"{tmp}/ckpt.safetensors"
r = subprocess.run([wick, "train", "--train-csv", train_csv, "--test-csv", test_csv, "--val", "0",
                    "--arch", f"{D}-32-32-{C}", "--act", "tanh", "--init-from", init_path,
                    "--shuffle", "off", "--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9",
                    "--schedule", "constant", "--batch", "32", "--epochs", "1", "--threads", "2",
                    "--log-steps", steps_path, "--out", wick_model, "--checkpoint", ckpt, "--quiet",
                    "--standardize", "off"],   # torch trains on the raw rows too
                   capture_output=True, text=True)
check(r.returncode == 0, f"wick train runs (exit {r.returncode}: {r.stderr.strip()[-300:]})")
wick_losses = [float(l) for l in open(steps_path)] if r.returncode == 0 else []
check(len(wick_losses) == 100, f"100 steps logged ({len(wick_losses)})")
worst = max((abs(a - b) / abs(b) for a, b in zip(wick_losses, torch_losses)), default=1)
check(len(wick_losses) == 100 and worst < 1e-4, f"per-step losses match torch to 1e-4 relative (worst {worst:.2e})")

# 2a. wick's trained model into torch: strict load, same weights as torch's run, same logits
def torch_logits(m):
    with torch.no_grad():
        return m(xte_t).numpy()
if r.returncode == 0:
    tensors, meta = st.load(wick_model)
    m2 = net()
    m2.load_state_dict({k: torch.tensor(v) for k, v in tensors.items()}, strict=True)
    wdiff = max((m2.state_dict()[k] - model.state_dict()[k]).abs().max().item() for k in tensors)
    check(wdiff < 1e-4, f"wick's trained weights match torch's (max diff {wdiff:.2e})")
    check(meta.get("arch") == f"{D}-32-32-{C}" and meta.get("act") == "tanh", "model metadata names arch and act")
    lpath = f"{tmp}/wick_logits.csv"
    e = subprocess.run([wick, "eval", "--model", wick_model, "--test-csv", test_csv, "--logits", lpath],
                       capture_output=True, text=True)
    check(e.returncode == 0, f"wick eval runs ({e.stderr.strip()[-200:]})")
    if e.returncode == 0:
        wl = np.loadtxt(lpath, delimiter=",")
        d = np.abs(wl - torch_logits(m2)).max()
        check(d < 1e-5, f"wick model in torch: same logits (max diff {d:.2e})")
    # 3. the checkpoint, optimizer.* tensors dropped, loads strictly
    ct, cmeta = st.load(ckpt)
    sd = {k: torch.tensor(v) for k, v in ct.items() if not k.startswith("optimizer.")}
    m3 = net()
    m3.load_state_dict(sd, strict=True)
    check(any(k.startswith("optimizer.") and k.endswith(".momentum") for k in ct)
          and cmeta.get("format") == "wick-checkpoint", "checkpoint holds optimizer.*.momentum and its format")

# 2b. a torch-trained model (no metadata) into wick: --act given, same logits
torch_model = f"{tmp}/torch_model.safetensors"
st.save(torch_model, {k: v.detach().numpy() for k, v in model.state_dict().items()})
lpath = f"{tmp}/torch_logits.csv"
e = subprocess.run([wick, "eval", "--model", torch_model, "--act", "tanh", "--test-csv", test_csv,
                    "--logits", lpath], capture_output=True, text=True)
check(e.returncode == 0, f"wick eval reads a torch model ({e.stderr.strip()[-200:]})")
if e.returncode == 0:
    d = np.abs(np.loadtxt(lpath, delimiter=",") - torch_logits(model)).max()
    check(d < 1e-5, f"torch model in wick: same logits (max diff {d:.2e})")
e = subprocess.run([wick, "eval", "--model", torch_model, "--test-csv", test_csv], capture_output=True, text=True)
check(e.returncode == 1 and "--act" in e.stderr, "a model without metadata needs --act: clear error")

print(f"RESULT {passed} {failed} 0")
sys.exit(1 if failed else 0)
