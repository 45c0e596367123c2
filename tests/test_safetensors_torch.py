#!/usr/bin/env python3
"""Cross-check of wick's safetensors reader and writer against PyTorch tensors.

Debian's python3-torch has no `safetensors` package, so the format is written
and read here by hand (struct + json, as the format's specification states:
8-byte little-endian header length, JSON header, data), and wick is called
through ctypes on build/libwick.so.  Checks:
  1. a file written by hand from torch tensors of every dtype (JSON order not
     the offset order, metadata, a 0-rank scalar, a zero-size tensor) reads in
     wick with the same names, dtypes, shapes and bytes, in offset order;
  2. a file written by wick from torch tensors parses by hand into tensors
     torch.equal to the originals, with __metadata__ first and the data
     section 8-byte aligned;
  3. a malformed file is refused with a message naming the tensor.
Prints "RESULT passed failed skipped" last (tests/run.sh)."""
import ctypes, json, os, struct, subprocess, sys, tempfile

passed = failed = skipped = 0

def result():
    print(f"RESULT {passed} {failed} {skipped}")
    sys.exit(1 if failed else 0)

try:
    import torch
except ImportError:
    print("SKIP: torch not installed (python3-torch)", file=sys.stderr)
    skipped = 3
    result()

build = os.path.dirname(os.environ["WICK"]) if os.environ.get("WICK") else "build"
so = os.path.join(build, "libwick.so")
# An ASan build (make SANITIZE=1) aborts the process that loads it without the
# ASan runtime first: probe in a child process.
probe = subprocess.run([sys.executable, "-c", f"import ctypes; ctypes.CDLL({so!r})"],
                       capture_output=True, text=True)
if probe.returncode != 0:
    print(f"  SKIP: cannot load {so} into python: {probe.stderr.strip()[:200]}", file=sys.stderr)
    skipped = 3
    result()
lib = ctypes.CDLL(so)

MAXD = 8
class Tensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * MAXD), ("data", ctypes.c_void_p)]

lib.wick_st_read.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
lib.wick_st_read.restype = ctypes.c_int
lib.wick_st_free.argtypes = [ctypes.c_void_p]
lib.wick_st_count.argtypes = [ctypes.c_void_p]
lib.wick_st_get.argtypes = [ctypes.c_void_p, ctypes.c_int]
lib.wick_st_get.restype = ctypes.POINTER(Tensor)
lib.wick_st_meta.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
lib.wick_st_meta.restype = ctypes.c_char_p
lib.wick_st_write.argtypes = [ctypes.c_char_p, ctypes.POINTER(Tensor), ctypes.c_int,
                              ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
lib.wick_st_write.restype = ctypes.c_int
lib.wick_last_error.restype = ctypes.c_char_p
lib.wick_dtype_name.restype = ctypes.c_char_p

# wick_dtype order (include/wick.h) and the torch dtype of each name
WICK_DTYPES = ["F32", "F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"]
TORCH = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
         "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
         "U8": torch.uint8, "BOOL": torch.bool}
NAME = {v: k for k, v in TORCH.items()}

def raw(t):
    t = t.contiguous()
    return ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()) if t.numel() else b""

def tensors():
    g = torch.Generator().manual_seed(0)
    return {
        "0.weight": torch.randn(3, 4, generator=g),
        "0.bias": torch.randn(3, generator=g, dtype=torch.float64),
        "half": torch.randn(5, generator=g).half(),
        "bf": torch.randn(2, 2, generator=g).bfloat16(),
        "step": torch.tensor(123456789012, dtype=torch.int64),          # 0-rank
        "i32": torch.tensor([-7, 2**31 - 1], dtype=torch.int32),
        "i16": torch.tensor([[-300], [5]], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 9], dtype=torch.uint8),
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(2, 0),
        "nonfinite": torch.tensor([float("nan"), float("inf"), -float("inf")]),
    }

def check(cond, what):
    global passed, failed
    if cond:
        return True
    print(f"  FAIL {what}", file=sys.stderr)
    return False

def test_wick_reads_torch_file(tmp):
    ts = tensors()
    # offsets in reverse name order, JSON in dict order: wick must follow offsets
    order = sorted(ts, reverse=True)
    hdr, data, off = {"__metadata__": {"format": "pt", "arch": "mlp"}}, b"", 0
    for k in order:
        b = raw(ts[k])
        hdr[k] = {"dtype": NAME[ts[k].dtype], "shape": list(ts[k].shape), "data_offsets": [off, off + len(b)]}
        data += b
        off += len(b)
    h = json.dumps({k: hdr[k] for k in ["__metadata__"] + list(ts)}).encode()
    h += b" " * (-len(h) % 8)
    path = os.path.join(tmp, "torch.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
    fp = ctypes.c_void_p()
    ok = check(lib.wick_st_read(path.encode(), ctypes.byref(fp)) == 0, f"wick_st_read: {lib.wick_last_error()}")
    if not ok:
        return False
    ok &= check(lib.wick_st_count(fp) == len(ts), "count")
    ok &= check(lib.wick_st_meta(fp, b"arch") == b"mlp", "metadata")
    # offset order; zero-size tensors sort before the tensor at the same offset
    got = [lib.wick_st_get(fp, i).contents for i in range(lib.wick_st_count(fp))]
    offs = [hdr[t.name.decode()]["data_offsets"] for t in got]
    ok &= check(offs == sorted(offs), "tensors in offset order")
    for t in got:
        k = t.name.decode()
        ref = ts[k]
        ok &= check(WICK_DTYPES[t.dtype] == NAME[ref.dtype], f"{k}: dtype")
        ok &= check(list(t.shape[:t.ndim]) == list(ref.shape), f"{k}: shape")
        n = len(raw(ref))
        ok &= check((ctypes.string_at(t.data, n) if n else b"") == raw(ref), f"{k}: bytes")
    lib.wick_st_free(fp)
    return ok

def test_torch_reads_wick_file(tmp):
    ts = tensors()
    keep = []   # contiguous tensors that own the memory wick reads
    arr = (Tensor * len(ts))()
    for i, (k, v) in enumerate(ts.items()):
        v = v.contiguous()
        keep.append(v)
        shape = (ctypes.c_int64 * MAXD)(*v.shape)
        arr[i] = Tensor(k.encode(), WICK_DTYPES.index(NAME[v.dtype]), v.dim(), shape,
                        v.data_ptr() if v.numel() else None)
    meta = (ctypes.c_char_p * 4)(b"arch", b"mlp 784-100-10", b"epoch", b"3")
    path = os.path.join(tmp, "wick.safetensors")
    ok = check(lib.wick_st_write(path.encode(), arr, len(ts), meta, 2) == 0,
               f"wick_st_write: {lib.wick_last_error()}")
    if not ok:
        return False
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    ok &= check((8 + n) % 8 == 0, "data section 8-byte aligned")
    text = blob[8:8 + n].decode("utf-8")
    ok &= check(text.rstrip(" ") == text.strip(), "header padded with spaces only")
    hdr = json.loads(text)
    ok &= check(list(hdr)[0] == "__metadata__", "__metadata__ first")
    ok &= check(hdr["__metadata__"] == {"arch": "mlp 784-100-10", "epoch": "3"}, "metadata")
    data = blob[8 + n:]
    end = 0
    for k, ref in ts.items():
        e = hdr[k]
        b, f = e["data_offsets"]
        ok &= check(e["dtype"] == NAME[ref.dtype] and e["shape"] == list(ref.shape), f"{k}: entry")
        t = (torch.frombuffer(bytearray(data[b:f]), dtype=TORCH[e["dtype"]]) if f > b
             else torch.empty(0, dtype=TORCH[e["dtype"]])).reshape(e["shape"])
        same = torch.equal(t, ref) if not ref.is_floating_point() else \
            bool(((t == ref) | (t.isnan() & ref.isnan())).all())
        ok &= check(same, f"{k}: values")
        end = max(end, f)
    ok &= check(end == len(data), "no bytes after the last tensor")
    return ok

def test_bad_file_refused(tmp):
    h = json.dumps({"0.weight": {"dtype": "F32", "shape": [10, 784], "data_offsets": [0, 100]}}).encode()
    path = os.path.join(tmp, "model.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + bytes(100))
    fp = ctypes.c_void_p()
    s = lib.wick_st_read(path.encode(), ctypes.byref(fp))
    msg = lib.wick_last_error().decode()
    return check(s == 4 and not fp.value and "tensor '0.weight'" in msg and "needs 31360" in msg,
                 f"refusal: status {s}, {msg}")

with tempfile.TemporaryDirectory(dir=os.environ.get("WICK_TEST_TMP")) as tmp:
    for test in (test_wick_reads_torch_file, test_torch_reads_wick_file, test_bad_file_refused):
        ok = test(tmp)
        print(f"{'ok    ' if ok else 'not ok'} {test.__name__}", file=sys.stderr)
        if ok:
            passed += 1
        else:
            failed += 1
result()
