"""Seed corpora of the Zarr v3 fuzz targets, from the oracles' arrays.

fuzz/corpus/zarr3 (fuzz/fuzz_zarr3.c): zarr.json, a NUL, the bytes stored
under the first chunk's key -- for every sharded case and every malformed
case of shard_writer.py (--cases, --hostile), the unsharded matrix of
tests/py_v3_oracles.py written by shard_writer.py, and the core spec's
examples.

fuzz/corpus/shard (fuzz/fuzz_shard.c): three header bytes choosing the
fixed array definition (see fuzz_shard.c) and a shard written for it by
shard_writer.py, for each index location / checksum / byte order / nesting
/ transpose / edge / inner codec / data type, plus shards whose index is
broken the ways the hostile cases break it.

Files are named by the SHA-1 of their content, as libFuzzer names its own.
Usage: /usr/bin/python3 tests/v3/make_fuzz_seeds.py [FUZZ_CORPUS_DIR]
(default: fuzz/corpus of this repository). Existing files are kept.
"""
import hashlib
import json
import os
import struct
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import shard_writer as sw  # noqa: E402

CORE_EXAMPLE = {
    "zarr_format": 3, "node_type": "array", "shape": [10000, 1000],
    "dimension_names": ["rows", "columns"], "data_type": "float64",
    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1000, 100]}},
    "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
    "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
    "fill_value": "NaN", "attributes": {"foo": 42, "bar": "apples", "baz": [1, 2, 3, 4]}}


def save(out_dir, blob):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, hashlib.sha1(blob).hexdigest())
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(blob)
    return path


def first_chunk(path):
    """zarr.json (compacted when it is JSON) and the bytes under chunk
    (0, ...) of an array, or None."""
    with open(os.path.join(path, "zarr.json"), "rb") as f:
        meta = f.read()
    try:   # compact JSON: the fuzzer's inputs stay short
        meta = json.dumps(json.loads(meta), separators=(",", ":")).encode()
    except ValueError:
        pass
    try:
        doc = json.loads(meta)
        key = sw.chunk_key([0] * len(doc["shape"]), doc["chunk_key_encoding"])
        with open(os.path.join(path, *key.split("/")), "rb") as f:
            return meta, f.read()
    except (ValueError, KeyError, TypeError, AttributeError, OSError, sw.Malformed):
        return meta, None


def zarr3_seeds(out_dir):
    n = 0
    with tempfile.TemporaryDirectory() as tmp:
        arrays = []
        for e in sw.write_cases(os.path.join(tmp, "cases"), seed=1):
            arrays.append(os.path.join(tmp, "cases", e["path"]))
        for e in sw.hostile_cases(os.path.join(tmp, "hostile")):
            arrays.append(os.path.join(tmp, "hostile", e["path"]))
        import py_v3_oracles as oracles
        for name, case in oracles.MATRIX.items():
            data = oracles.make_data(name, oracles.SHAPE, case["dtype"], oracles.CHUNKS,
                                     case["fill"])
            path = os.path.join(tmp, "matrix", name + ".zarr")
            sw.write_array(path, data, oracles.CHUNKS, case["codecs"], case["fill"],
                           chunk_key_encoding=case["cke"], dimension_names=["z", "y", None],
                           write_empty_chunks=True)
            arrays.append(path)
        for path in arrays:
            meta, chunk = first_chunk(path)
            save(out_dir, meta if chunk is None else meta + b"\0" + chunk)
            n += 1
    save(out_dir, json.dumps(CORE_EXAMPLE, indent=4).encode())
    ext = dict(CORE_EXAMPLE, data_type={"name": "urn:example:datetime",
                                        "configuration": {"unit": "ns"}}, fill_value=None)
    save(out_dir, json.dumps(ext).encode())
    return n + 2


# fuzz_shard.c's definition, in shard_writer.py's words.
INNER = [
    [sw._bytes()],
    [sw._bytes("big")],
    [sw._bytes(), {"name": "gzip", "configuration": {"level": 1}}],
    [sw._bytes(), {"name": "zstd", "configuration": {"level": 1, "checksum": False}}],
    [sw._bytes(), {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5,
                                                      "shuffle": "shuffle", "typesize": 2,
                                                      "blocksize": 0}}],
    [sw._bytes(), sw.CRC],
    [{"name": "transpose", "configuration": {"order": [1, 0]}}, sw._bytes()],
    [sw._bytes("big"), {"name": "zstd", "configuration": {"level": 1, "checksum": False}},
     sw.CRC],
]
DTYPES = ["uint8", "uint16", "int32", "uint64"]


def shard_codecs(flags, inner):
    codecs = INNER[inner]
    if flags & 8:
        codecs = [sw.sharding((1, 2), codecs, [sw._bytes(), sw.CRC])]
    index = [sw._bytes("big" if flags & 4 else "little")] + ([sw.CRC] if flags & 2 else [])
    sh = sw.sharding((4, 2) if flags & 16 else (2, 4), codecs, index,
                     "start" if flags & 1 else "end")
    if flags & 16:
        return [{"name": "transpose", "configuration": {"order": [1, 0]}}, sh]
    return [sh]


def one_shard(tmp, flags, inner, dtype, rng, fill_all=False):
    shape = (3, 7) if flags & 32 else (4, 8)
    dt = sw.DTYPES[dtype]
    info = np.iinfo(dt)
    data = rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
    data[:2, :4] = 7                   # inner chunk 0 is the fill value: absent
    if fill_all:
        data[...] = 7
    path = tempfile.mkdtemp(dir=tmp, suffix=".zarr")
    os.rmdir(path)
    sw.write_array(path, data, (4, 8), shard_codecs(flags, inner), 7, write_empty_chunks=True,
                   layout=sw.Layout("shuffled", 6, seed=flags * 64 + inner))
    with open(os.path.join(path, "c", "0", "0"), "rb") as f:
        return f.read()


def broken(blob, flags, how):
    """The shard with its index broken as a hostile case breaks it."""
    isize = 64 + (4 if flags & 2 else 0)
    at = 0 if flags & 1 else len(blob) - isize
    fmt = ">4Q" if flags & 4 else "<4Q"
    index = list(struct.unpack(fmt, blob[at:at + 32])) + \
        list(struct.unpack(fmt, blob[at + 32:at + 64]))
    if how == "outside":
        index[2] = len(blob) + 1000
    elif how == "overlap":
        index[4:6] = index[2:4]
    elif how == "half":
        index[3] = sw.U64_MAX
    elif how == "overflow":
        index[2:4] = [sw.U64_MAX - 15, 32]
    raw = struct.pack(fmt, *index[:4]) + struct.pack(fmt, *index[4:])
    if flags & 2:
        raw += struct.pack("<I", sw.crc32c(raw) ^ (1 if how == "crc" else 0))
    out = blob[:at] + raw + blob[at + isize:]
    return out[:isize - 1] if how == "truncated" else out


def shard_seeds(out_dir):
    rng = np.random.default_rng(11)
    n = 0
    with tempfile.TemporaryDirectory() as tmp:
        for flags in range(64):
            for inner in range(8):
                # Every definition once; data types spread over them.
                dtype = (flags + inner) % 4
                blob = one_shard(tmp, flags, inner, DTYPES[dtype], rng)
                save(out_dir, bytes([flags, inner, dtype]) + blob)
                n += 1
        for flags in (0, 1, 2, 3, 6, 7):
            blob = one_shard(tmp, flags, 2, "uint16", rng)
            for how in ("outside", "overlap", "half", "overflow", "crc", "truncated"):
                save(out_dir, bytes([flags, 2, 1]) + broken(blob, flags, how))
                n += 1
            save(out_dir, bytes([flags, 2, 1]) + one_shard(tmp, flags, 2, "uint16", rng, True))
            n += 1
    return n


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                       "fuzz", "corpus")
    print(json.dumps({"zarr3": zarr3_seeds(os.path.join(root, "zarr3")),
                      "shard": shard_seeds(os.path.join(root, "shard"))}))


if __name__ == "__main__":
    main(sys.argv)
