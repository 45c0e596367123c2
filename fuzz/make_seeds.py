#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/{safetensors,idx,csv}/seed-*: a few
good files and a few bad ones per parser.  Run once; the files are committed."""
import gzip, json, os, struct

here = os.path.dirname(os.path.abspath(__file__))

def put(parser, name, data):
    d = os.path.join(here, "corpus", parser)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

def st(header, data=b"", pad=True):
    h = json.dumps(header, separators=(",", ":")).encode() if not isinstance(header, bytes) else header
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data

# safetensors
put("safetensors", "good-mlp", st({"__metadata__": {"arch": "mlp"},
    "0.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
    "0.bias": {"dtype": "F32", "shape": [2], "data_offsets": [24, 32]},
    "step": {"dtype": "I64", "shape": [], "data_offsets": [32, 40]},
    "empty": {"dtype": "F64", "shape": [2, 0], "data_offsets": [40, 40]}},
    struct.pack("<6f", 1, 2, 3, 4, 5, 6) + struct.pack("<2f", -1, 1) + struct.pack("<q", 7)))
put("safetensors", "good-empty", st({}))
put("safetensors", "good-alltypes", st({k: {"dtype": k, "shape": [1], "data_offsets": [o, o + s]}
    for k, o, s in [("F64", 0, 8), ("I64", 8, 8), ("F32", 16, 4), ("I32", 20, 4), ("F16", 24, 2),
                    ("BF16", 26, 2), ("I16", 28, 2), ("U8", 30, 1), ("I8", 31, 1), ("BOOL", 32, 1)]},
    bytes(range(33))))
put("safetensors", "bad-overlap", st({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
    "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(16)))
put("safetensors", "bad-mismatch", st({"w": {"dtype": "F32", "shape": [10, 784], "data_offsets": [0, 100]}}, bytes(100)))
put("safetensors", "bad-nul", struct.pack("<Q", 8) + b"{}\0\0\0\0\0\0")
put("safetensors", "bad-short", b"\x10\0\0")
put("safetensors", "bad-dup", st(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x"))

# idx
def idx(t, dims, data):
    return bytes([0, 0, t, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data
img = idx(8, [3, 4, 4], bytes(range(48)))
put("idx", "good-u8", img)
put("idx", "good-u8-gz", gzip.compress(img))
put("idx", "good-labels", idx(8, [3], b"\x01\x00\x02"))
put("idx", "good-i16", idx(0x0B, [2], struct.pack(">2h", -2, 300)))
put("idx", "good-f64-gz", gzip.compress(idx(0x0E, [1, 2], struct.pack(">2d", 3.5, -1e300))))
put("idx", "bad-truncated-gz", gzip.compress(img)[:-5])
put("idx", "bad-long", img + b"x")
put("idx", "bad-type", idx(0x0A, [1], b"x"))

# csv
put("csv", "good-header", b"x1,x2,label\n0.5,1e-3,1\n-2,3.25,0\n")
put("csv", "good-crlf-bom-quotes", b"\xef\xbb\xbf\"a\",b\r\n \"1\" , 2\r\n3,4\r\n\r\n")
put("csv", "good-nonfinite", b"nan,inf\n-Infinity,1e-400\n")
put("csv", "bad-ragged", b"1,2,3\n4,5\n")
put("csv", "bad-junk", b"1,2\n1.5abc,2\n")
put("csv", "bad-quote", b"1,\"2\n")
put("csv", "bad-hex", b"0x1p3,1\n")
