#!/usr/bin/python3
"""test_conv_torch.py — the graph's image ops against torch.nn.functional
(Debian's torch), forward values and every gradient.

wick runs through ctypes on $BUILD/libwick.so: each case builds a small graph
(the input a parameter seen as an image, so it gets a gradient), sets the
same random values in wick and in torch, runs forward and a backward seeded
with a random tensor gy (the vector-Jacobian product, torch's y.backward(gy)),
and compares y and the gradients of x, weight, bias, gamma, beta.

Ops: conv2d (stride, padding, dilation, groups, depthwise, 1x1, non-square),
max_pool2d, avg_pool2d (count_include_pad), adaptive_avg_pool2d(1),
batch_norm in training mode (with the running-statistics update and the
counter) and eval mode, on images and on plain [N, C] tensors, dropout's
scaling and its identity in eval, and mean(|x|).

Tolerance, on the largest difference relative to the reference's largest
magnitude per tensor: 1e-10 in float64 (wick and torch in float64), 1e-5 in
float32 (wick in float32, torch in float64 on the same float32 values).
Run from the repository root (tests/run.sh does); honours $BUILD.  Prints
"RESULT passed failed skipped" last; without torch (or numpy) it skips."""
import ctypes
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except Exception as e:  # no torch: nothing to compare against
    print("  SKIP test_conv_torch: import torch failed: %s" % e, file=sys.stderr)
    print("RESULT 0 0 1")
    sys.exit(0)

torch.set_num_threads(1)
BUILD = os.environ.get("BUILD", "build")
LIB = os.path.join(BUILD, "libwick.so")
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
    print("%-48s %s  %s" % (name, "ok" if ok else "FAIL", detail))


# A sanitizer build aborts the process that loads it (ASan must come first) or
# lacks its runtime's symbols (clang's UBSan): probe in a child process.
import subprocess
probe = subprocess.run([sys.executable, "-c", "import ctypes; ctypes.CDLL(%r)" % LIB], capture_output=True, text=True)
if probe.returncode != 0:
    print("  SKIP test_conv_torch: cannot load %s into python: %s" % (LIB, probe.stderr.strip()[:200]), file=sys.stderr)
    print("RESULT 0 0 1")
    sys.exit(0)
try:
    lib = ctypes.CDLL(LIB)
except OSError as e:
    if "__ubsan" in str(e) or "__asan" in str(e) or "__kmpc" in str(e):
        # a sanitizer build (clang's UBSan, ASan) cannot be loaded into a plain python
        print("  SKIP test_conv_torch: %s is a sanitizer build python cannot load" % LIB, file=sys.stderr)
        print("RESULT 0 0 1")
        sys.exit(0)
    report("load_libwick", False, "%s: %s" % (LIB, e))
    print("RESULT %d %d 0" % (passed, failed))
    sys.exit(1)

F32, F64, I64 = 0, 1, 4   # wick_dtype: WICK_DT_F32, WICK_DT_F64, WICK_DT_I64


class ConvParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in ("kh", "kw", "stride_h", "stride_w", "pad_h", "pad_w",
                                             "dil_h", "dil_w", "groups")]


def _sig(name, res, *args):
    f = getattr(lib, name)
    f.restype, f.argtypes = res, list(args)


G, N, I, D, CP = ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_double, ctypes.POINTER(ConvParams)
_sig("wick_graph_new", I, ctypes.POINTER(G), I, I)
_sig("wick_graph_free", None, G)
_sig("wick_graph_compile", I, G)
_sig("wick_last_error", ctypes.c_char_p)
_sig("wick_g_param", N, G, ctypes.c_char_p, I, I)
_sig("wick_g_as_image", N, G, N, I, I, I)
_sig("wick_g_conv2d", N, G, N, N, N, CP)
_sig("wick_g_maxpool2d", N, G, N, CP)
_sig("wick_g_avgpool2d", N, G, N, CP)
_sig("wick_g_global_avgpool", N, G, N)
_sig("wick_g_batchnorm_named", N, G, ctypes.c_char_p, N, D, D)
_sig("wick_g_dropout", N, G, N, D)
_sig("wick_g_l1", N, G, N)
_sig("wick_graph_find", N, G, ctypes.c_char_p)
_sig("wick_graph_rows", I, G, N)
_sig("wick_graph_cols", I, G, N)
_sig("wick_graph_shape", I, G, N, ctypes.POINTER(ctypes.c_int))
_sig("wick_graph_value", ctypes.c_void_p, G, N)
_sig("wick_graph_grad", ctypes.c_void_p, G, N)
_sig("wick_graph_forward", None, G)
_sig("wick_graph_backward_seed", None, G, N, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
_sig("wick_graph_set_training", None, G, I)
_sig("wick_graph_set_step", None, G, ctypes.c_uint64)


class Graph:
    """A wick graph of one dtype; values in and out as numpy arrays."""

    def __init__(self, dtype, batch):
        self.g = G()
        assert lib.wick_graph_new(ctypes.byref(self.g), dtype, batch) == 0
        self.np = np.float32 if dtype == F32 else np.float64

    def compile(self):
        if lib.wick_graph_compile(self.g) != 0:
            raise RuntimeError(lib.wick_last_error().decode())

    def _view(self, ptr, n, node, dt=None):
        dt = dt or self.np
        shape = (lib.wick_graph_rows(self.g, node), lib.wick_graph_cols(self.g, node))
        buf = (ctypes.c_char * (int(np.prod(shape)) * np.dtype(dt).itemsize)).from_address(ptr)
        return np.frombuffer(buf, dtype=dt).reshape(shape)

    def value(self, node, dt=None):
        return self._view(lib.wick_graph_value(self.g, node), 0, node, dt)

    def grad(self, node):
        p = lib.wick_graph_grad(self.g, node)
        return None if not p else self._view(p, 0, node).copy()

    def set(self, node, arr):
        self.value(node)[...] = np.asarray(arr, dtype=self.np).reshape(self.value(node).shape)

    def shape(self, node):
        chw = (ctypes.c_int * 3)()
        lib.wick_graph_shape(self.g, node, chw)
        return tuple(chw)

    def backward(self, out, gy):
        seed = np.ascontiguousarray(gy, dtype=self.np)
        lib.wick_graph_backward_seed(self.g, out, seed.ctypes.data, None, None)

    def __del__(self):
        lib.wick_graph_free(self.g)


def rel_err(a, ref):
    a = np.asarray(a, dtype=np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    if a.shape != ref.shape:
        return float("inf")
    scale = max(np.abs(ref).max(), 1e-300)
    return float(np.abs(a - ref).max() / scale)


def compare(name, pairs, tol):
    """pairs: (label, wick array, torch tensor or array)."""
    worst, where = 0.0, ""
    for label, mine, ref in pairs:
        r = ref.detach().numpy() if isinstance(ref, torch.Tensor) else ref
        e = rel_err(mine, r)
        if e > worst or not where:
            worst, where = e, label
    report(name, worst <= tol, "max rel err %.2e (%s), tol %g" % (worst, where, tol))


rng = np.random.default_rng(20240607)


def inputs(dtype, *shape):
    """Random N(0,1) values, rounded to the dtype: the same numbers for both."""
    a = rng.standard_normal(shape)
    return a.astype(np.float32).astype(np.float64) if dtype == F32 else a


def tt(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


TOL = {F64: 1e-10, F32: 1e-5}
DTN = {F64: "f64", F32: "f32"}

# --------------------------------------------------------------------------
# conv2d: (N, C, H, W, OUT, (kh, kw), (sh, sw), (ph, pw), (dh, dw), groups, bias)

CONV_CASES = [
    ("pad1", 3, 3, 9, 7, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1, True),
    ("stride2_nonsquare", 2, 2, 11, 8, 4, (3, 2), (2, 2), (0, 1), (1, 1), 1, True),
    ("dilation2", 2, 3, 10, 10, 4, (3, 3), (1, 1), (2, 2), (2, 2), 1, False),
    ("groups2", 3, 4, 8, 7, 6, (3, 3), (1, 2), (1, 0), (1, 1), 2, True),
    ("depthwise", 2, 5, 7, 9, 5, (3, 3), (1, 1), (1, 1), (1, 1), 5, True),
    ("depthwise_x2", 2, 3, 6, 6, 6, (2, 2), (2, 1), (0, 1), (1, 1), 3, False),
    ("1x1", 3, 6, 5, 4, 7, (1, 1), (1, 1), (0, 0), (1, 1), 1, True),
    ("1x1_stride2_groups", 2, 4, 7, 6, 4, (1, 1), (2, 2), (0, 0), (1, 1), 2, True),
    ("5x3_stride3x2_dil2x1", 2, 2, 13, 9, 3, (5, 3), (3, 2), (2, 1), (2, 1), 1, True),
    ("mnist_like", 4, 1, 28, 28, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1, True),
]


def check_conv(dtype, case):
    name, n, c, h, w, out, k, s, p, d, groups, bias = case
    g = Graph(dtype, n)
    xp = lib.wick_g_param(g.g, b"x", n, c * h * w)
    x = lib.wick_g_as_image(g.g, xp, c, h, w)
    W = lib.wick_g_param(g.g, b"W", out, c // groups * k[0] * k[1])
    b = lib.wick_g_param(g.g, b"b", 1, out) if bias else -1
    prm = ConvParams(k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1], groups)
    y = lib.wick_g_conv2d(g.g, x, W, b, ctypes.byref(prm))
    g.compile()
    xv, Wv = inputs(dtype, n, c, h, w), inputs(dtype, out, c // groups, k[0], k[1])
    bv = inputs(dtype, out)
    g.set(xp, xv)
    g.set(W, Wv)
    if bias:
        g.set(b, bv)
    lib.wick_graph_forward(g.g)
    xt, Wt, bt = tt(xv), tt(Wv), tt(bv)
    yt = F.conv2d(xt, Wt, bt if bias else None, stride=s, padding=p, dilation=d, groups=groups)
    gy = inputs(dtype, *yt.shape)
    g.backward(y, gy)
    yt.backward(torch.tensor(gy))
    ok_shape = g.shape(y) == tuple(yt.shape[1:])
    pairs = [("y", g.value(y), yt.reshape(n, -1)), ("dx", g.grad(xp), xt.grad.reshape(n, -1)),
             ("dW", g.grad(W), Wt.grad.reshape(out, -1))]
    if bias:
        pairs.append(("db", g.grad(b), bt.grad))
    if not ok_shape:
        report("conv2d_%s_%s" % (name, DTN[dtype]), False, "shape %s, torch %s" % (g.shape(y), tuple(yt.shape)))
        return
    compare("conv2d_%s_%s" % (name, DTN[dtype]), pairs, TOL[dtype])


# --------------------------------------------------------------------------
# pooling: (N, C, H, W, kind, (kh, kw), stride or None, (ph, pw), (dh, dw))

POOL_CASES = [
    ("max_3x3_s2_p1", 2, 3, 9, 8, "max", (3, 3), (2, 2), (1, 1), (1, 1)),
    ("max_2x2", 3, 2, 8, 6, "max", (2, 2), None, (0, 0), (1, 1)),
    ("max_3x2_s1x2_dil2x1", 2, 2, 9, 7, "max", (3, 2), (1, 2), (1, 1), (2, 1)),
    ("max_odd_5x5", 2, 3, 7, 7, "max", (5, 5), (2, 2), (2, 2), (1, 1)),
    ("avg_3x3_s2_p1", 2, 3, 9, 8, "avg", (3, 3), (2, 2), (1, 1), (1, 1)),
    ("avg_2x3_s1x2_p1", 2, 2, 6, 5, "avg", (2, 3), (1, 2), (1, 1), (1, 1)),
    ("avg_2x2", 3, 4, 8, 8, "avg", (2, 2), None, (0, 0), (1, 1)),
    ("global_avg", 3, 5, 6, 7, "gap", None, None, None, None),
]


def check_pool(dtype, case):
    name, n, c, h, w, kind, k, s, p, d = case
    g = Graph(dtype, n)
    xp = lib.wick_g_param(g.g, b"x", n, c * h * w)
    x = lib.wick_g_as_image(g.g, xp, c, h, w)
    if kind == "gap":
        y = lib.wick_g_global_avgpool(g.g, x)
    else:
        st = s or (0, 0)
        prm = ConvParams(k[0], k[1], st[0], st[1], p[0], p[1], d[0], d[1], 0)
        fn = lib.wick_g_maxpool2d if kind == "max" else lib.wick_g_avgpool2d
        y = fn(g.g, x, ctypes.byref(prm))
    g.compile()
    xv = inputs(dtype, n, c, h, w)
    g.set(xp, xv)
    lib.wick_graph_forward(g.g)
    xt = tt(xv)
    if kind == "max":
        yt = F.max_pool2d(xt, k, stride=s, padding=p, dilation=d)
    elif kind == "avg":
        yt = F.avg_pool2d(xt, k, stride=s, padding=p, count_include_pad=True)
    else:
        yt = F.adaptive_avg_pool2d(xt, 1)
    gy = inputs(dtype, *yt.shape)
    g.backward(y, gy)
    yt.backward(torch.tensor(gy))
    compare("pool_%s_%s" % (name, DTN[dtype]),
            [("y", g.value(y), yt.reshape(n, -1)), ("dx", g.grad(xp), xt.grad.reshape(n, -1))], TOL[dtype])


# --------------------------------------------------------------------------
# batch norm: training (batch statistics, running update, counter) and eval

BN_CASES = [("image", 4, 3, 5, 6), ("image_1x1", 6, 4, 1, 1), ("plain", 7, 5, 0, 0)]


def check_bn(dtype, case, training):
    name, n, c, h, w = case
    cols = c * h * w if h else c
    g = Graph(dtype, n)
    xp = lib.wick_g_param(g.g, b"x", n, cols)
    x = lib.wick_g_as_image(g.g, xp, c, h, w) if h else xp
    y = lib.wick_g_batchnorm_named(g.g, b"bn", x, 0.1, 1e-5)
    g.compile()
    lib.wick_graph_set_training(g.g, training)
    node = {k: lib.wick_graph_find(g.g, ("bn." + k).encode())
            for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    shape = (n, c, h, w) if h else (n, c)
    xv = inputs(dtype, *shape) * 1.7 + 0.4
    gam, bet = inputs(dtype, c), inputs(dtype, c)
    rm, rv = inputs(dtype, c) * 0.3, np.exp(inputs(dtype, c) * 0.5)
    if dtype == F32:
        rv = rv.astype(np.float32).astype(np.float64)
    g.set(xp, xv)
    for k, v in (("weight", gam), ("bias", bet), ("running_mean", rm), ("running_var", rv)):
        g.set(node[k], v)
    lib.wick_graph_forward(g.g)
    xt, gt, bt = tt(xv), tt(gam), tt(bet)
    rmt, rvt = torch.tensor(rm), torch.tensor(rv)
    yt = F.batch_norm(xt, rmt, rvt, gt, bt, training=bool(training), momentum=0.1, eps=1e-5)
    gy = inputs(dtype, *yt.shape)
    g.backward(y, gy)
    yt.backward(torch.tensor(gy))
    pairs = [("y", g.value(y), yt.reshape(n, -1)), ("dx", g.grad(xp), xt.grad.reshape(n, -1)),
             ("dgamma", g.grad(node["weight"]), gt.grad), ("dbeta", g.grad(node["bias"]), bt.grad),
             ("running_mean", g.value(node["running_mean"]), rmt),
             ("running_var", g.value(node["running_var"]), rvt)]
    count = int(g.value(node["num_batches_tracked"], np.int64)[0, 0])
    label = "batchnorm_%s_%s_%s" % (name, "train" if training else "eval", DTN[dtype])
    if count != (1 if training else 0):
        report(label, False, "num_batches_tracked %d" % count)
        return
    compare(label, pairs, TOL[dtype])


# --------------------------------------------------------------------------
# dropout: kept elements are x / (1 - p) as in torch, about 1 - p of them;
# the gradient goes through the same mask; eval is the identity in both

def check_dropout(dtype, p):
    n, cols = 8, 5000
    g = Graph(dtype, n)
    xp = lib.wick_g_param(g.g, b"x", n, cols)
    y = lib.wick_g_dropout(g.g, xp, p)
    g.compile()
    xv = inputs(dtype, n, cols)
    g.set(xp, xv)
    lib.wick_graph_set_step(g.g, 3)
    lib.wick_graph_forward(g.g)
    mine = g.value(y).astype(np.float64).copy()
    gy = inputs(dtype, n, cols)
    g.backward(y, gy)
    dx = g.grad(xp)
    xt = torch.tensor(xv)
    yt = F.dropout(xt, p, training=True).numpy()
    kt, km = yt != 0, mine != 0
    frac_t, frac_m = kt.mean(), km.mean()
    sd = np.sqrt(p * (1 - p) / (n * cols))
    errs = [rel_err(mine[km], xv[km] / (1 - p)), rel_err(yt[kt], xv[kt] / (1 - p)),
            rel_err(dx, np.where(km, gy / (1 - p), 0))]
    ye = F.dropout(xt, p, training=False).numpy()
    lib.wick_graph_set_training(g.g, 0)
    lib.wick_graph_forward(g.g)
    eval_same = np.array_equal(g.value(y).astype(np.float64), ye.astype(g.np).astype(np.float64))
    tol = TOL[dtype]
    ok = (max(errs) <= tol and abs(frac_m - (1 - p)) < 4 * sd and abs(frac_t - (1 - p)) < 4 * sd
          and eval_same)
    report("dropout_p%g_%s" % (p, DTN[dtype]), ok,
           "kept %.4f (torch %.4f, expect %.2f), scale/grad rel err %.2e, eval identity %s" % (
               frac_m, frac_t, 1 - p, max(errs), eval_same))


# --------------------------------------------------------------------------
# mean(|x|) and its gradient sign(x) / n (torch's abs has sign(0) = 0)

def check_l1(dtype):
    g = Graph(dtype, 3)
    xp = lib.wick_g_param(g.g, b"x", 3, 17)
    y = lib.wick_g_l1(g.g, xp)
    g.compile()
    xv = inputs(dtype, 3, 17)
    xv[0, :3] = 0
    g.set(xp, xv)
    lib.wick_graph_forward(g.g)
    g.backward(y, np.array([1.3]))
    xt = tt(xv)
    yt = torch.mean(torch.abs(xt))
    (yt * 1.3).backward()
    compare("l1_%s" % DTN[dtype], [("y", g.value(y), yt.reshape(1, 1)), ("dx", g.grad(xp), xt.grad)], TOL[dtype])


for dt in (F64, F32):
    for case in CONV_CASES:
        check_conv(dt, case)
    for case in POOL_CASES:
        check_pool(dt, case)
    for case in BN_CASES:
        for training in (1, 0):
            check_bn(dt, case, training)
    for p in (0.1, 0.5):
        check_dropout(dt, p)
    check_l1(dt)

print("RESULT %d %d 0" % (passed, failed))
sys.exit(1 if failed else 0)
