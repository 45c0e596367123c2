"""A minimal safetensors reader/writer for the cross-checks: Debian's python3-torch has no
`safetensors` package, and the format is small (8-byte little-endian header length, JSON
header, raw little-endian data)."""
import json, struct
import numpy as np

DT = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def save(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr)
        code = {np.dtype(v): k for k, v in DT.items()}[a.dtype]
        b = a.tobytes()
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], DT[t["dtype"]]).reshape(t["shape"]).copy()
    return out, meta
