#!/usr/bin/env python3
"""Read and write safetensors files (wick's models and checkpoints) with numpy alone.

Debian ships no python3-safetensors; the format is small enough not to need it: an 8-byte
little-endian header length N, N bytes of JSON ({name: {"dtype", "shape", "data_offsets"}},
plus an optional "__metadata__" of strings), then the raw little-endian tensor data.

    import torch, safetensors_np as st
    sd, meta = st.load("model.safetensors")            # numpy arrays, metadata dict
    model.load_state_dict(st.to_torch(sd), strict=True)
    st.save("model.safetensors", st.from_torch(model.state_dict()), meta)

`python3 examples/safetensors_np.py FILE` lists a file's tensors and metadata.
A checkpoint's optimiser state is under "optimizer."; load() leaves it out unless asked.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
          "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}
MAX_HEADER = 100_000_000  # the reference implementation's limit


def load(path, optimizer=False):
    """Returns ({name: numpy array}, {metadata key: string}); refuses a malformed file."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"PK":
        raise ValueError(f"{path}: a zip archive (torch.save?); save with safetensors instead")
    if len(raw) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    n = struct.unpack("<Q", raw[:8])[0]
    if n > MAX_HEADER or 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} does not fit the file ({len(raw)} bytes)")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None) or {}
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, t in header.items():
        if name.startswith("optimizer.") and not optimizer:
            continue
        if t["dtype"] not in DTYPES:
            raise ValueError(f"{path}: tensor '{name}': dtype {t['dtype']} not handled here")
        dt = np.dtype(DTYPES[t["dtype"]]).newbyteorder("<")
        b, e = t["data_offsets"]
        count = int(np.prod(t["shape"], dtype=np.int64))
        if not 0 <= b <= e <= len(data) or e - b != count * dt.itemsize:
            raise ValueError(f"{path}: tensor '{name}': data_offsets [{b}, {e}] do not fit")
        out[name] = np.frombuffer(data[b:e], dt).reshape(t["shape"]).astype(dt.newbyteorder("="))
    return out, meta


def save(path, tensors, metadata=None):
    """Writes {name: numpy array} (and string metadata) as a safetensors file."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr)
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": CODES[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)  # keeps the data 8-byte aligned, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def to_torch(arrays):
    """numpy dict -> torch state_dict (copies)."""
    import torch
    return {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}


def from_torch(state_dict):
    """torch state_dict -> numpy dict."""
    return {k: v.detach().cpu().contiguous().numpy() for k, v in state_dict.items()}


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[0] + "\nusage: safetensors_np.py FILE")
        sys.exit(0 if len(sys.argv) == 2 else 2)
    try:
        tensors, meta = load(sys.argv[1], optimizer=True)
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"safetensors_np.py: {e}")
    for k, v in tensors.items():
        print(f"{k:40s} {str(v.dtype):8s} {list(v.shape)}")
    for k, v in meta.items():
        print(f"__metadata__ {k} = {v}")
