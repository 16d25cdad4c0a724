"""The datasets the remote-store tests serve: one label volume (`labelbin
sample`, a CellMap-like crop) stored in every layout a reader must handle,
so that each read over HTTP or S3 can be compared byte for byte with the
same dataset read from disk.

make(root) writes under root (paths relative to it):
  crop.zarr/recon-1/labels/groundtruth/crop1/all   Zarr v2, flat keys, no
                                                   dimension_separator (as
                                                   `labelbin sample` writes)
  nested.zarr/labels/sep                           Zarr v2, '/' keys, declared
  nested.zarr/labels/nosep                         Zarr v2, '/' keys, not
                                                   declared (old zarr-python)
  empty.zarr/labels/nosep                          no separator, no chunks
  sparse.zarr/labels/nosep                         '/' keys, not declared,
                                                   the chunks opening probes
                                                   absent
  mixed.zarr/labels/nosep                          no separator, both layouts
  crop.n5/labels/all                               N5 (zarr-python, gzip)
  sharded.zarr/labels/all                          Zarr v3, sharding_indexed
                                                   (tests/v3/shard_writer.py):
                                                   index at the end, zstd,
                                                   crc32c, absent inner chunks
  v3cases/                                         shard_writer.py --cases
and returns {name: path} plus the numpy labels as "labels" (and the sparse
array's as "sparse").
"""
import json
import os
import shutil
import subprocess
import sys

import numcodecs
import numpy as np
import zarr

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "v3"))
sys.path.insert(0, os.path.join(HERE, ".."))
import shard_writer  # noqa: E402
import trees  # noqa: E402

BUILD = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
LABELBIN = os.path.abspath(os.path.join(BUILD, "labelbin"))

SHAPE = (64, 96, 96)
CHUNKS = (32, 32, 32)
CROP = "crop.zarr/recon-1/labels/groundtruth/crop1/all"


def _drop_separator(path):
    meta = os.path.join(path, ".zarray")
    with open(meta) as f:
        z = json.load(f)
    z.pop("dimension_separator", None)
    with open(meta, "w") as f:
        json.dump(z, f, indent=4)


def make(root, v3cases=True):
    os.makedirs(root, exist_ok=True)
    out = {}
    crop = os.path.join(root, CROP)
    subprocess.run([LABELBIN, "sample", "-q", "-f", "--shape", ",".join(map(str, SHAPE)),
                    "--chunks", ",".join(map(str, CHUNKS)), crop], check=True)
    out["zarr2"] = CROP
    labels = zarr.open(crop, mode="r")[...]
    out["labels"] = labels
    attrs = dict(zarr.open(crop, mode="r").attrs)

    # Zarr v2 with nested keys, declared and not (the layout then probed).
    for name in ("sep", "nosep"):
        p = os.path.join(root, "nested.zarr", "labels", name)
        z = zarr.open(p, mode="w", shape=SHAPE, chunks=CHUNKS, dtype="<u8",
                      compressor=numcodecs.Zstd(3), dimension_separator="/", fill_value=0)
        z[...] = labels
        z.attrs.update(attrs)
        if name == "nosep":
            _drop_separator(p)
        out["zarr2_nested_" + name] = "nested.zarr/labels/" + name
    # No separator and nothing stored: the layout cannot be told.
    p = os.path.join(root, "empty.zarr", "labels", "nosep")
    zarr.open(p, mode="w", shape=SHAPE, chunks=CHUNKS, dtype="<u8", fill_value=0)
    _drop_separator(p)
    out["zarr2_empty_nosep"] = "empty.zarr/labels/nosep"
    # Nested, undeclared, and none of the chunks opening probes (the first,
    # the last, the middle one) stored: the reader finds the layout.
    p = os.path.join(root, "sparse.zarr", "labels", "nosep")
    z = zarr.open(p, mode="w", shape=SHAPE, chunks=CHUNKS, dtype="<u8",
                  compressor=numcodecs.Zstd(3), dimension_separator="/", fill_value=0,
                  write_empty_chunks=False)
    sparse = np.zeros(SHAPE, dtype="<u8")
    sparse[0:32, 32:64, 64:96] = labels[0:32, 32:64, 64:96]
    sparse[32:64, 0:32, 32:64] = labels[32:64, 0:32, 32:64]
    z[...] = sparse
    _drop_separator(p)
    out["zarr2_sparse_nosep"] = "sparse.zarr/labels/nosep"
    out["sparse"] = sparse
    # Both layouts stored: refused as on disk.
    p = os.path.join(root, "mixed.zarr", "labels", "nosep")
    z = zarr.open(p, mode="w", shape=SHAPE, chunks=CHUNKS, dtype="<u8", fill_value=0,
                  compressor=None)
    z[...] = labels
    _drop_separator(p)
    os.makedirs(os.path.join(p, "0", "0"))
    shutil.copy(os.path.join(p, "0.0.0"), os.path.join(p, "0", "0", "0"))
    out["zarr2_mixed_nosep"] = "mixed.zarr/labels/nosep"

    # N5, as zarr-python writes it.
    p = os.path.join(root, "crop.n5")
    store = zarr.N5FSStore(p)
    g = zarr.group(store=store, overwrite=True)
    a = g.create_dataset("labels/all", shape=SHAPE, chunks=CHUNKS, dtype="<u8",
                         compressor=numcodecs.GZip(5), fill_value=0)
    a[...] = labels
    out["n5"] = "crop.n5/labels/all"

    # Zarr v3 with shards: 2x2x2 inner chunks per shard, index at the end,
    # inner chunks in shuffled order with gaps, the fill-valued ones absent.
    p = os.path.join(root, "sharded.zarr", "labels", "all")
    os.makedirs(os.path.dirname(p), exist_ok=True)
    codecs = [{"name": "sharding_indexed", "configuration": {
        "chunk_shape": [16, 16, 16],
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                   {"name": "zstd", "configuration": {"level": 3, "checksum": False}}],
        "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                         {"name": "crc32c"}],
        "index_location": "end"}}]
    shard_writer.write_array(p, labels, [32, 32, 32], codecs=codecs, fill_value=0,
                             attributes=attrs,
                             layout=shard_writer.Layout(order="shuffled", gap=7, seed=5))
    out["zarr3_sharded"] = "sharded.zarr/labels/all"
    if v3cases:
        out["v3cases"] = shard_writer.write_cases(os.path.join(root, "v3cases"))
    return out


def chunk_files(root):
    return trees.tree(root, folders=False)


def assert_same_output(a, b):
    """Two outputs of binarize/mask: the same files, the same bytes, but for
    the provenance's `source`."""
    fa, fb = chunk_files(a), chunk_files(b)
    assert sorted(fa) == sorted(fb)
    for k in fa:
        if k.endswith(".zattrs") or k.endswith("zarr.json"):
            ja, jb = json.loads(fa[k]), json.loads(fb[k])
            for j in (ja, jb):
                (j.get("attributes", j).get("labelbin") or {}).pop("source", None)
            assert ja == jb, k
        else:
            assert fa[k] == fb[k], k
