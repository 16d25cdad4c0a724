#!/usr/bin/python3
"""labelbin's conformance cases, generated at test time.

    /usr/bin/python3 tests/conformance/make_cases.py OUTDIR

writes one folder per case into OUTDIR (CTest: build/conformance). Every input
dataset is written by zarr-python 2.13 (N5 through zarr.N5Store), an
independent writer; every expected output is computed here, in numpy, from the
semantics in docs/semantics.md — nothing in this file uses labelbin. Seeds are
fixed, so the same script always gives the same cases. The format of
`case.json` is described in tests/conformance/README.md.

Before a case is written out, its input is read back with zarr-python and
compared with the label volume it was made from, and the geometry rules below
are checked against what the case means to exercise, so a case can only be
wrong if the rules are.
"""
import gzip
import json
import os
import shutil
import struct
import sys

import numcodecs
import numpy as np
import zarr

# ---------------------------------------------------------------------------
# The rules (docs/semantics.md), written independently of labelbin
# ---------------------------------------------------------------------------


def id_fits(i, dtype):
    info = np.iinfo(dtype)
    return info.min <= i <= info.max


def binarize(labels, groupings, background):
    """One uint8 0/1 channel per group: 1 where the label is one of the
    group's ids; for an empty group, 1 where the label is not `background`.
    A duplicated id still gives 1; an id the dtype cannot hold never matches."""
    out = np.zeros((len(groupings),) + labels.shape, dtype=np.uint8)
    for c, (_, ids) in enumerate(groupings):
        if not ids:
            hit = labels != np.array(background, dtype=labels.dtype) \
                if id_fits(background, labels.dtype) else np.ones(labels.shape, bool)
        else:
            hit = np.zeros(labels.shape, dtype=bool)
            for i in ids:
                if id_fits(i, labels.dtype):
                    hit |= labels == np.array(i, dtype=labels.dtype)
        out[c] = hit
    return out


def present_not_annotated(attrs):
    """Ids that the `labels` attribute lists as present but not annotated
    (boolean form: present and not annotated; 2023 string form: present and
    annotated other than "dense"). None when there is no `labels` attribute."""
    if "labels" not in attrs:
        return None
    out = set()
    for entry in attrs["labels"]:
        state = entry["annotationState"]
        annotated = state["annotated"]
        if isinstance(annotated, str):
            annotated = annotated == "dense"
        if state["present"] is True and not annotated:
            out.add(int(entry["value"]))
    return out


def mask(labels, groupings, attrs):
    """Per channel `label > 0`; a channel is all 0 when its group holds an id
    that is present but not annotated. Empty groups are never switched off."""
    pna = present_not_annotated(attrs) or set()
    out = np.zeros((len(groupings),) + labels.shape, dtype=np.uint8)
    base = labels > 0
    for c, (_, ids) in enumerate(groupings):
        if not any(i in pna for i in ids):
            out[c] = base
    return out


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def geometry(case_dir, source, fmt, ndim):
    """(voxel_size, offset, axes) of `source` from its metadata:
    1. Zarr: OME-NGFF `multiscales` on an enclosing group whose datasets[]
       entry has the array's path (scale, translation, axis names);
    2. else the array's attributes, then its parent group's: voxel size from
       resolution | scale | pixelResolution.dimensions | transform.scale,
       offset from offset | transform.translate, axes from axes; N5 stores
       them x, y, z first, so they are reversed;
    3. else voxel size 1, offset 0, axes the last dims of z, y, x.
    Non-integer values are truncated toward zero; an offset that is not a
    multiple of the voxel size is rounded to the nearest multiple."""
    parts = source.split("/")
    k = next(i for i, p in enumerate(parts) if p.endswith((".zarr", ".n5")))
    attrs_name = "attributes.json" if fmt == "n5" else ".zattrs"
    vs = off = axes = None
    if fmt == "zarr2":
        for up in range(len(parts) - 1, k, -1):
            group = os.path.join(case_dir, *parts[:up])
            rel = "/".join(parts[up:])
            for ms in read_json(os.path.join(group, ".zattrs")).get("multiscales", []):
                for ds in ms["datasets"]:
                    if ds["path"].strip("/") != rel:
                        continue
                    for t in ds["coordinateTransformations"]:
                        if t["type"] == "scale":
                            vs = t["scale"]
                        elif t["type"] == "translation":
                            off = t["translation"]
                    axes = [a["name"] for a in ms["axes"]]
            if vs is not None:
                break
    if vs is None:
        own = read_json(os.path.join(case_dir, *parts, attrs_name))
        parent = read_json(os.path.join(case_dir, *parts[:-1], attrs_name))

        def first(keys):
            for attrs in (own, parent):
                for key in keys:
                    v = attrs
                    for step in key.split("."):
                        v = v.get(step) if isinstance(v, dict) else None
                    if v is not None:
                        return list(v)
            return None

        vs = first(["resolution", "scale", "pixelResolution.dimensions", "transform.scale"])
        off = first(["offset", "transform.translate"])
        axes = first(["axes"])
        if fmt == "n5":
            vs, off, axes = [None if v is None else v[::-1] for v in (vs, off, axes)]
    vs = [int(v) for v in vs] if vs is not None else [1] * ndim
    off = [int(v) for v in off] if off is not None else [0] * ndim
    off = [(o + v // 2) // v * v if o % v else o for o, v in zip(off, vs)]
    axes = axes if axes is not None else ["z", "y", "x"][-ndim:]
    return vs, off, axes


def check_request(roi, array_roi, vs):
    """None for a readable ROI, else why it must be refused."""
    off, shape = roi
    if any(o % v for o, v in zip(off, vs)):
        return "offset not a multiple of the voxel size"
    if any(s % v for s, v in zip(shape, vs)):
        return "shape not a multiple of the voxel size"
    a_off, a_shape = array_roi
    for o, s, ao, ash in zip(off, shape, a_off, a_shape):
        if o < ao or o + s > ao + ash:
            return "outside the array's roi"
    return None


# ---------------------------------------------------------------------------
# Label volumes
# ---------------------------------------------------------------------------


def blobby(rng, shape, ids, p=None, block=(3, 4, 5), noise=0.06):
    """Label volume made of boxes of one id (runs of equal labels, as in real
    crops) with a few voxels of other ids sprinkled in."""
    ids = np.asarray(ids)
    coarse = tuple(-(-s // b) for s, b in zip(shape, block))
    vol = rng.choice(ids, size=coarse, p=p)
    for ax, b in enumerate(block):
        vol = np.repeat(vol, b, axis=ax)
    vol = vol[tuple(slice(0, s) for s in shape)].copy()
    flip = rng.random(shape) < noise
    vol[flip] = rng.choice(ids, size=int(flip.sum()))
    return vol


def label_entry(value, present, annotated):
    return {"value": value, "name": {"long": f"label {value}", "short": f"l{value}"},
            "annotationState": {"present": present, "annotated": annotated}, "count": None}


COSEM_GROUPS = [
    ["ecs", [1]], ["pm", [2]], ["mito", [3, 4, 5]], ["mito_mem", [3]], ["golgi", [6, 7]],
    ["ves", [8, 9]], ["endo", [10, 11]], ["lyso", [12, 13]], ["ld", [14, 15]],
    ["er", [16, 17, 18, 19, 20, 21, 22, 23]], ["er_mem_all", [16, 18, 20]], ["eres", [18, 19]],
    ["nuc", [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 37]], ["mt", [30, 36]], ["perox", [47, 48]],
    ["cell_all", []],
]


def case_cosem(d):
    rng = np.random.default_rng(1001)
    shape = (20, 36, 44)
    ids = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                    20, 21, 24, 28, 29, 30, 35, 36, 37, 47, 48, 2**63, 2**64 - 1],
                   dtype=np.uint64)
    p = np.full(len(ids), 1.0)
    p[0], p[1], p[35 == ids] = 8.0, 4.0, 4.0
    labels = blobby(rng, shape, ids, p / p.sum())
    z = zarr.open(os.path.join(d, "crop.zarr"), mode="w")
    a = z.create_dataset("volumes/labels/all", shape=shape, chunks=(8, 16, 16), dtype="<u8",
                         compressor=numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE))
    a[...] = labels
    a.attrs.update({
        "resolution": [8, 4, 4], "offset": [80, 40, 400], "axes": ["z", "y", "x"],
        "labels": [label_entry(1, True, True), label_entry(2, True, True),
                   label_entry(3, True, False), label_entry(4, True, True),
                   label_entry(16, True, True), label_entry(8, False, False),
                   label_entry(47, False, True),
                   label_entry(28, True, False)]})
    return {
        "source": "crop.zarr/volumes/labels/all", "labels": labels,
        "note": "COSEM-like crop: uint64 with ids up to 2^64-1, blosc-lz4 byte shuffle, "
                "ragged edge chunks, boolean annotationState (ids 3 and 28 present but not "
                "annotated, 8 absent and not annotated)",
        "groupings": COSEM_GROUPS, "background": 0, "dacapo_compatible": True,
        "requests": [((80, 40, 400), (160, 144, 176)), ((120, 76, 452), (72, 68, 80)),
                     ((232, 180, 572), (8, 4, 4)),
                     ((81, 40, 400), (8, 4, 4)), ((80, 40, 400), (800, 4, 4)),
                     ((72, 40, 400), (16, 4, 4))],
    }


def case_i32(d):
    rng = np.random.default_rng(1002)
    shape = (9, 21, 30)
    ids = np.arange(-40, 121, dtype=np.int32)
    labels = blobby(rng, shape, ids, block=(2, 3, 3), noise=0.1)
    labels[0, 0, :3] = [np.iinfo(np.int32).min, np.iinfo(np.int32).max, -1]
    groupings = []
    for g in range(80):
        n = int(rng.integers(1, 4))
        groupings.append([f"g{g}", [int(v) for v in rng.choice(ids, n, replace=False)]])
    groupings[78][1].append(int(np.iinfo(np.int32).min))
    groupings[79][1] += [int(np.iinfo(np.int32).max), 2**40]  # 2^40 never fits int32
    z = zarr.open(os.path.join(d, "big.zarr"), mode="w")
    a = z.create_dataset("labels", shape=shape, chunks=(9, 10, 10), dtype="<i4",
                         compressor=numcodecs.Blosc("zstd", 3, numcodecs.Blosc.NOSHUFFLE))
    a[...] = labels
    a.attrs.update({"resolution": [1, 1, 1], "offset": [0, 0, 0], "axes": ["z", "y", "x"]})
    return {
        "source": "big.zarr/labels", "labels": labels,
        "note": "int32 with negative ids and the dtype's extremes, 80 overlapping groups (more "
                "than 64 channels), an id the dtype cannot hold; no `labels` metadata "
                "(mask = label > 0: negative labels are 0)",
        "groupings": groupings, "background": 0, "dacapo_compatible": True,
        "requests": [((0, 0, 0), (9, 21, 30)), ((2, 3, 4), (5, 15, 20)),
                     ((0, 0, 29), (9, 21, 2))],
    }


def truncate_n5_edge_blocks(array_dir, shape_czyx, block_czyx):
    """Rewrite every edge block as n5-java writes it: the header holds the
    block's true (cut) size and the data only that part, gzip-compressed."""
    for root, _, files in os.walk(array_dir):
        for f in files:
            if f == "attributes.json":
                continue
            path = os.path.join(root, f)
            grid = [int(x) for x in os.path.relpath(path, array_dir).split("/")][::-1]
            true = tuple(min(b, s - g * b) for g, b, s in zip(grid, block_czyx, shape_czyx))
            if true == tuple(block_czyx):
                continue
            with open(path, "rb") as fh:
                raw = fh.read()
            mode, nd = struct.unpack(">HH", raw[:4])
            dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])[::-1]
            assert mode == 0 and tuple(dims) == tuple(block_czyx), path
            full = np.frombuffer(gzip.decompress(raw[4 + 4 * nd:]), dtype=">u8").reshape(dims)
            cut = np.ascontiguousarray(full[tuple(slice(0, t) for t in true)])
            header = struct.pack(">HH", 0, nd) + struct.pack(">" + "I" * nd, *true[::-1])
            with open(path, "wb") as fh:
                fh.write(header + gzip.compress(cut.tobytes(), mtime=0))


def case_n5(d):
    rng = np.random.default_rng(1003)
    shape = (14, 19, 25)
    ids = np.array([0, 0, 0, 3, 4, 5, 16, 17, 20, 23, 24, 47, 48, 2**64 - 2], dtype=np.uint64)
    labels = blobby(rng, shape, ids, block=(2, 4, 3))
    store = zarr.N5Store(os.path.join(d, "crop.n5"))
    path = "volumes/groundtruth/crop1/labels/all"
    a = zarr.create(store=store, path=path, shape=shape, chunks=(6, 8, 10), dtype="<u8",
                    compressor=numcodecs.GZip(6))
    a[...] = labels
    # N5 metadata is x, y, z first.
    a.attrs.update({"resolution": [2, 4, 8], "offset": [20, 40, 80], "axes": ["x", "y", "z"],
                    "labels": [label_entry(3, True, False), label_entry(47, True, True)]})
    truncate_n5_edge_blocks(os.path.join(d, "crop.n5", path), shape, (6, 8, 10))
    return {
        "source": "crop.n5/" + path, "labels": labels, "format": "n5",
        "reread": lambda: zarr.open(zarr.N5Store(os.path.join(d, "crop.n5")), mode="r")[path],
        "note": "N5 (zarr.N5Store), gzip, big-endian blocks, edge blocks cut to their true "
                "size as n5-java writes them; resolution/offset/axes stored x,y,z and "
                "reported z,y,x; id 3 present but not annotated",
        "groupings": [["mito", [3, 4, 5]], ["perox", [47, 48]],
                      ["er", [16, 17, 18, 19, 20, 21, 22, 23]], ["all", []]],
        "background": 0, "dacapo_compatible": False,
        "requests": [((80, 40, 20), (112, 76, 50)), ((96, 48, 24), (64, 44, 30)),
                     ((184, 112, 68), (8, 4, 2)), ((80, 40, 21), (8, 4, 2))],
    }


def case_u16(d):
    rng = np.random.default_rng(1004)
    shape = (16, 20, 24)
    ids = np.array([0, 0, 1, 2, 3, 5, 300, 301, 1000, 65535], dtype=np.uint16)
    labels = blobby(rng, shape, ids, block=(4, 2, 3))
    labels[labels == 5] = 2  # id 5 is listed as absent: it must not occur
    z = zarr.open(os.path.join(d, "data.zarr"), mode="w")
    a = z.create_dataset("seg", shape=shape, chunks=(8, 8, 8), dtype="<u2",
                         compressor=numcodecs.Zstd(3), dimension_separator="/")
    a[...] = labels
    a.attrs.update({"resolution": [4, 4, 4], "offset": [-16, 8, 0], "axes": ["z", "y", "x"],
                    "labels": [label_entry(1, True, "dense"), label_entry(3, True, "sparse"),
                               label_entry(300, True, "empty"), label_entry(5, False, "empty")]})
    return {
        "source": "data.zarr/seg", "labels": labels,
        "note": "uint16, zstd, nested chunk keys (dimension_separator /), negative offset; "
                "annotationState.annotated in the 2023 string form: only 'dense' counts as "
                "annotated, so ids 3 (sparse) and 300 (empty) switch their channels off; "
                "id 5 is absent so it switches nothing off",
        "groupings": [["one", [1]], ["three", [3]], ["big", [300, 301]], ["max", [65535]],
                      ["five", [5]], ["neg", [-1, 70000]]],
        "background": 0, "dacapo_compatible": False,
        "requests": [((-16, 8, 0), (64, 80, 96)), ((-8, 16, 12), (32, 40, 48)),
                     ((-16, 8, 0), (4, 4, 6)), ((-20, 8, 0), (8, 8, 8))],
    }


def case_u32(d):
    rng = np.random.default_rng(1005)
    shape, chunks = (12, 18, 20), (4, 6, 8)
    ids = np.array([0, 7, 8, 9, 1000000, 2**32 - 1, 12], dtype=np.uint32)
    labels = blobby(rng, shape, ids, block=(2, 3, 2))
    root = zarr.open(os.path.join(d, "ome.zarr"), mode="w")
    g = root.create_group("labels")
    a = g.create_dataset("s0", shape=shape, chunks=chunks, dtype="<u4", compressor=None,
                         fill_value=7)
    a[...] = labels
    g.attrs["multiscales"] = [{
        "version": "0.4", "name": "labels",
        "axes": [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"],
        "datasets": [{"path": "s0", "coordinateTransformations": [
            {"type": "scale", "scale": [3.0, 3.0, 3.0]},
            {"type": "translation", "translation": [30.0, 60.0, 90.0]}]}]}]
    # Every third stored chunk removed: it reads as the fill value 7.
    arr_dir = os.path.join(d, "ome.zarr", "labels", "s0")
    keys = sorted(k for k in os.listdir(arr_dir) if not k.startswith("."))
    for k in keys[::3]:
        os.remove(os.path.join(arr_dir, k))
        idx = [int(x) for x in k.split(".")]
        labels[tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, chunks))] = 7
    return {
        "source": "ome.zarr/labels/s0", "labels": labels,
        "note": "uint32, no compressor, fill_value 7 with every third chunk absent, geometry "
                "only from OME-NGFF 0.4 multiscales on the parent group (array attributes "
                "empty)",
        "groupings": [["seven", [7]], ["eight_nine", [8, 9]], ["million", [1000000]],
                      ["top", [4294967295]], ["fg", []]],
        "background": 0, "dacapo_compatible": True,
        "requests": [((30, 60, 90), (36, 54, 60)), ((33, 66, 99), (24, 36, 42)),
                     ((30, 60, 90), (36, 54, 61))],
    }


def case_u8(d):
    rng = np.random.default_rng(1006)
    shape = (17, 23, 29)
    labels = blobby(rng, shape, np.arange(0, 16, dtype=np.uint8), block=(2, 2, 3))
    z = zarr.open(os.path.join(d, "data.zarr"), mode="w")
    a = z.create_dataset("labels", shape=shape, chunks=(5, 7, 11), dtype="|u1",
                         compressor=numcodecs.GZip(5), order="F")
    a[...] = labels
    a.attrs.update({"resolution": [2, 2, 2], "offset": [0, 0, 0]})
    return {
        "source": "data.zarr/labels", "labels": labels,
        "note": "uint8, order F, gzip; a duplicated id in 'b' (the output stays 0/1); an "
                "empty group with background 1; id 200 never occurs and 300 cannot; no "
                "`labels` metadata (mask = label > 0); no axes attribute (z, y, x)",
        "groupings": [["a", [0, 1]], ["b", [2, 3, 3]], ["not_bg", []],
                      ["c", [9, 10, 11, 200, 300]]],
        "background": 1, "dacapo_compatible": False,
        "requests": [((0, 0, 0), (34, 46, 58)), ((2, 4, 6), (10, 14, 22)),
                     ((1, 0, 0), (2, 2, 2))],
    }


def case_i64(d):
    rng = np.random.default_rng(1007)
    shape = (10, 13, 11)
    big = np.iinfo(np.int64)
    ids = np.array([0, 0, -5, -1, 1, 2, 3, 4, 9, big.min, big.max], dtype=np.int64)
    labels = blobby(rng, shape, ids, block=(3, 2, 2))
    z = zarr.open(os.path.join(d, "be.zarr"), mode="w")
    g = z.create_group("crop")
    a = g.create_dataset("labels", shape=shape, chunks=(4, 5, 3), dtype=">i8",
                         compressor=numcodecs.Blosc("zstd", 1, numcodecs.Blosc.BITSHUFFLE))
    a[...] = labels
    a.attrs.update({"axes": ["z", "y", "x"],
                    "labels": [label_entry(2, True, False), label_entry(3, False, False),
                               label_entry(4, True, True), label_entry(-5, True, True)]})
    # Geometry on the parent group only; a fractional voxel size is truncated
    # (4.9 -> 4) and an offset off the voxel grid rounded to the nearest
    # multiple, also below zero (-7 -> -8, 10 -> 9, 23 -> 25).
    g.attrs.update({"resolution": [4.9, 3, 5], "offset": [-7, 10, 23]})
    return {
        "source": "be.zarr/crop/labels", "labels": labels,
        "note": "big-endian int64, blosc-zstd bit shuffle, chunks not dividing the shape; "
                "geometry from the parent group's attributes: voxel size 4.9 truncated to 4, "
                "offsets rounded to the nearest voxel multiple (-7 -> -8); boolean metadata "
                "with id 2 present but not annotated in a group with other ids; an empty "
                "group is never switched off",
        "groupings": [["two_four", [2, 4]], ["neg", [-5, -1]], ["three", [3]],
                      ["extremes", [int(big.min), int(big.max)]], ["any", []],
                      ["nine", [9]]],
        "background": -5, "dacapo_compatible": False,
        "requests": [((-8, 9, 25), (40, 39, 55)), ((0, 12, 30), (20, 15, 25)),
                     ((-8, 9, 25), (40, 39, 60)), ((-7, 9, 25), (4, 3, 5))],
    }


CASES = {
    "cosem_u64_blosc": case_cosem,
    "i32_many_groups": case_i32,
    "n5_u64_gzip": case_n5,
    "u16_zstd_nested": case_u16,
    "u32_raw_ome_missing": case_u32,
    "u8_gzip_forder": case_u8,
    "i64_be_parent_attrs": case_i64,
}


# ---------------------------------------------------------------------------
# Writing a case
# ---------------------------------------------------------------------------


def make_case(name, make, case_dir):
    os.makedirs(case_dir)
    c = make(case_dir)
    labels, fmt = c["labels"], c.get("format", "zarr2")
    # The writer wrote what we meant.
    reread = c["reread"]() if "reread" in c else zarr.open(os.path.join(case_dir, c["source"]),
                                                          mode="r")
    got = reread[...]
    assert got.dtype.name == labels.dtype.name and np.array_equal(got, labels), \
        f"{name}: zarr read-back"
    attrs = dict(reread.attrs.asdict())

    vs, off, axes = geometry(case_dir, c["source"], fmt, labels.ndim)
    roi = (off, [s * v for s, v in zip(labels.shape, vs)])
    groupings = c["groupings"]
    requests = []
    os.makedirs(os.path.join(case_dir, "expected"))
    for i, (r_off, r_shape) in enumerate(c["requests"]):
        req = {"roi": {"offset": list(r_off), "shape": list(r_shape)}}
        why = check_request((r_off, r_shape), roi, vs)
        if why:
            req["error"] = why
        else:
            sl = tuple(slice((o - ao) // v, (o - ao + s) // v)
                       for o, s, ao, v in zip(r_off, r_shape, off, vs))
            part = labels[sl]
            req["shape"] = [len(groupings), *part.shape]
            for kind, out in (("binarize", binarize(part, groupings, c["background"])),
                              ("mask", mask(part, groupings, attrs))):
                rel = f"expected/{kind}_{i}.u8"
                out.tofile(os.path.join(case_dir, rel))
                req[kind] = rel
        requests.append(req)
    assert any("error" not in r for r in requests), name
    case = {
        "name": name, "note": c["note"], "source": c["source"],
        "groupings": groupings, "background": c["background"],
        "dacapo_compatible": c["dacapo_compatible"],
        "expected_properties": {
            "dtype": labels.dtype.name, "axes": axes, "dims": labels.ndim, "voxel_size": vs,
            "roi": {"offset": roi[0], "shape": roi[1]},
            "num_channels": len(groupings), "channels": [g[0] for g in groupings],
        },
        "requests": requests,
    }
    with open(os.path.join(case_dir, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
        f.write("\n")


def main(argv):
    if len(argv) != 2:
        print("usage: make_cases.py OUTDIR", file=sys.stderr)
        return 2
    out = os.path.abspath(argv[1])
    # Build beside OUTDIR, then swap it in: a reader never sees half a case.
    tmp = f"{out}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name, make in CASES.items():
        make_case(name, make, os.path.join(tmp, name))
    old = f"{out}.old{os.getpid()}"
    if os.path.exists(out):
        os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    print(f"make_cases: {len(CASES)} cases in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
