"""Zarr v3 through labelbin, checked against independent implementations.

The oracles are those of tests/v3 (see tests/v3/README.md and
tests/py_v3_oracles.py, which checks them against each other): zarrita
0.7.5 (the npm package, run by node) and shard_writer.py (a writer and strict
reader written from the specification with numpy and numcodecs).

1. labelbin reads what zarrita writes, identically: every dtype, codec,
   transpose order, chunk key encoding and fill value form of the oracles'
   matrix, whole and in ROIs (chunk-aligned, unaligned, edge chunks, absent
   chunks = fill value), with and without a cache and threads; geometry from
   funlib attributes, from OME-NGFF 0.5 multiscales on the parent group and
   axes from dimension_names.
2. zarrita (and the strict reader) read labelbin's Zarr v3 outputs
   identically: to_zarr(format="zarr3") unsharded and sharded, both channel
   layouts, several codecs, a sub-ROI, OME-NGFF 0.5, the CLI; and
   create_dataset(format="zarr3", shard=...) arrays of every integer dtype
   after a sequence of partial writes (read-modify-write of shards).
3. Every sharded case of shard_writer.py --cases reads identically (whole, in
   ROIs, through a cache and threads), and the same as zarrita reads it where
   zarrita can (directly, or with the index moved to the end).
4. The specifications' examples: the sharding spec's 68-byte index, the core
   spec's array metadata document, its extension data type example.
5. Bytes read: a ROI of a sharded array fetches each touched shard's index
   and only the touched inner chunks, by byte range, counted with
   Array.io_stats() against sums computed from the shard files; a second
   read fetches no index again, and nothing at all with a cache.
6. Hostile Zarr v3 input (shard_writer.py --hostile and a few more): every
   refusal exits 1 from `labelbin info` / `binarize` with one line naming the
   path, under the limits of tests/py_hostile.py (1 GiB address space, 20 s);
   unknown codecs, chunk grids and data types are LB_EUNSUPPORTED (checked
   through the C API with ctypes); every valid odd case reads correctly.

Needs node and zarrita in BUILD/node (scripts/install-deps); the zarrita
parts skip, saying why, without them. Env: LB_BUILD_DIR, LB_SOURCE_DIR,
LB_SEED. Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest -q
tests/py_zarr3.py
"""
import ctypes
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import pytest
import zarr

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("LB_SOURCE_DIR", os.path.dirname(HERE))
BUILD_DIR = os.environ.get("LB_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
sys.path.insert(0, os.path.join(HERE, "v3"))
sys.path.insert(0, HERE)
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.join(BUILD_DIR, "python"))

import labelbin  # noqa: E402
from labelbin import Roi  # noqa: E402
import shard_writer as sw  # noqa: E402
import py_v3_oracles as oracles  # noqa: E402
# The oracles' fixtures: zarrita (skips when node or zarrita is missing),
# the matrix zarrita writes, and the sharded cases.
from py_v3_oracles import cases, zarrita, zarrita_written  # noqa: E402,F401

LABELBIN = os.path.join(BUILD_DIR, "labelbin")
SEED = int(os.environ.get("LB_SEED", "20250411"))
TIMEOUT = 20          # as tests/py_hostile.py: a hang fails the test
MEM_LIMIT = 1 << 30   # and a giant allocation fails loudly
assert_same, bits = oracles.assert_same, oracles.bits
VALID = sorted(sw.valid_case_specs())   # the sharded cases of shard_writer.py


@pytest.fixture(autouse=True)
def _print_seed():
    print(f"py_zarr3: seed {SEED} (set LB_SEED to change)")


def rng_for(name):
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def lb_read(path, box=None, cache=0, threads=1):
    """labelbin's reading of `path` (index space, all of it or `box`)."""
    a = labelbin.ZarrArray(os.path.abspath(path))
    if cache:
        a.set_cache(cache)
    if threads != 1:
        a.set_threads(threads)
    return a.data[box if box is not None else ...]


def random_boxes(rng, shape, n):
    """n random non-empty boxes (tuples of slices) inside shape."""
    out = []
    for _ in range(n):
        box = []
        for s in shape:
            lo = int(rng.integers(0, s))
            hi = int(rng.integers(lo + 1, s + 1))
            box.append(slice(lo, hi))
        out.append(tuple(box))
    return out


def limits():
    resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))


def lb_cli(*args):
    """The CLI under the hostile-input limits: (returncode, stdout, stderr)."""
    p = subprocess.run([LABELBIN, *map(str, args)], capture_output=True, text=True,
                       timeout=TIMEOUT, preexec_fn=limits)
    return p.returncode, p.stdout, p.stderr


def assert_refused(rc, err, *needles):
    assert rc == 1, f"exit {rc}, stderr: {err!r}"
    assert err.startswith("labelbin: "), err
    assert err.count("\n") == 1, f"expected one line: {err!r}"
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"


# The C API, for the error codes the Python module folds into FormatError.
LB_EUNSUPPORTED, LB_ELIMIT = -5, -9


class _LbError(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("message", ctypes.c_char * 1024)]


def lb_open_code(path):
    """(code, message) of lb_array_open(path) through the shared library."""
    lib = ctypes.CDLL(os.path.join(BUILD_DIR, "liblabelbin.so"))
    lib.lb_array_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                                  ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(_LbError)]
    lib.lb_array_free.argtypes = [ctypes.c_void_p]
    out, err = ctypes.c_void_p(), _LbError()
    rc = lib.lb_array_open(path.encode(), 0, None, 0, ctypes.byref(out), ctypes.byref(err))
    lib.lb_array_free(out)
    return rc, err.message.decode()


# ======================================= 1. labelbin reads what zarrita writes

SHAPE, CHUNKS = oracles.SHAPE, oracles.CHUNKS   # (7, 10, 13) in (3, 4, 5)
# Chunk-aligned, unaligned, edge-only, one voxel, one absent-or-not chunk.
BOXES = [(slice(3, 6), slice(4, 8), slice(5, 10)),
         (slice(1, 6), slice(2, 9), slice(3, 12)),
         (slice(6, 7), slice(8, 10), slice(10, 13)),
         (slice(4, 5), slice(9, 10), slice(0, 1)),
         (slice(0, 7), slice(0, 10), slice(12, 13))]


# Every case zarrita writes, blosc's snappy included (c-blosc has it).
READABLE = sorted(oracles.MATRIX)


@pytest.mark.parametrize("name", READABLE)
def test_labelbin_reads_zarrita(name, zarrita_written):
    data, spec, report = zarrita_written[name]
    assert "error" not in report, report["error"]
    assert report["chunks_skipped"] > 0, "absent chunks must be filled in"
    a = labelbin.ZarrArray(spec["path"])
    assert (a.format, a.shape, a.chunks, a.shards) == ("zarr3", SHAPE, CHUNKS, None)
    assert a.dtype == data.dtype
    assert a.axes == ["z", "y", "x"]          # dimension_names ["z", "y", null]
    assert a.attrs == {"case": name}
    assert_same(a.data[...], data, f"{name}: whole")
    for box in BOXES:
        assert_same(a.data[box], data[box], f"{name}: {box}")
        # The same in world units (voxel size 1, offset 0).
        roi = Roi([s.start for s in box], [s.stop - s.start for s in box])
        assert_same(a[roi], data[box], f"{name}: world {roi}")


@pytest.mark.parametrize("name", ["everything", "transpose_F_big_gzip_u64", "blosc_zstd_shuffle",
                                  "fill_float32_NaN", "key_v2_dot", "crc32c_then_zstd"])
def test_labelbin_reads_zarrita_cached_threaded(name, zarrita_written):
    """The cache and read threads change nothing: random ROIs, twice each."""
    data, spec, _ = zarrita_written[name]
    a = labelbin.ZarrArray(spec["path"])
    a.set_cache(1 << 20)
    a.set_threads(2)
    for box in random_boxes(rng_for(name), SHAPE, 12) * 2:
        assert_same(a.data[box], data[box], f"{name}: {box}")


def test_zarrita_chunk_keys_are_where_labelbin_looks(zarrita_written):
    """Deleting the chunk file a key encoding names turns exactly that chunk
    into the fill value in labelbin's reading: the keys agree."""
    keys = {"key_default_slash": "c/1/2/0", "key_default_dot": "c.1.2.0",
            "key_v2_dot": "1.2.0", "key_v2_slash": "1/2/0", "key_v2_no_config": "1.2.0"}
    for name, key in keys.items():
        data, spec, _ = zarrita_written[name]
        if not os.path.isfile(os.path.join(spec["path"], key)):
            continue   # an all-fill chunk zarrita left out
        copy = spec["path"] + ".nokey"
        shutil.copytree(spec["path"], copy)
        os.remove(os.path.join(copy, key))
        want = data.copy()
        want[3:6, 8:10, 0:5] = 0
        assert_same(lb_read(copy), want, name)


@pytest.fixture(scope="module")
def zarrita_geometry(zarrita, tmp_path_factory):
    """Arrays zarrita writes whose geometry comes from attributes: funlib's
    resolution/offset/axes, OME-NGFF 0.5 on the parent group, and
    dimension_names alone."""
    root = str(tmp_path_factory.mktemp("geo"))
    data = rng_for("geo").integers(0, 9, (12, 14, 10)).astype(np.uint32)
    raw = os.path.join(root, "src.bin")
    sw.dump_raw(data, raw)

    def spec(path, **kw):
        s = {"path": os.path.join(root, path), "shape": list(data.shape),
             "chunk_shape": [5, 4, 3], "data_type": "uint32",
             "codecs": [oracles.BYTES(), oracles.ZSTD()], "fill_value": 0,
             "chunk_key_encoding": oracles.DEFAULT_SLASH, "data": raw,
             "write_empty_chunks": False}
        s.update(kw)
        return s
    specs = [
        spec("funlib.zarr/labels", attributes={"resolution": [8, 4, 2], "offset": [16, 40, 6],
                                               "axes": ["z", "y", "x"]},
             dimension_names=["z", "y", "x"]),
        spec("ome.zarr/labels/s0", dimension_names=["z", "y", "x"]),
        spec("names.zarr/labels", dimension_names=["t", "y", "x"]),
    ]
    reports = zarrita.write(specs)
    assert all("error" not in r for r in reports), reports
    groups = {"ome.zarr": {}, "ome.zarr/labels": {"ome": {"version": "0.5", "multiscales": [{
        "name": "labels",
        "axes": [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"],
        "datasets": [{"path": "s0", "coordinateTransformations": [
            {"type": "scale", "scale": [6, 5, 4]},
            {"type": "translation", "translation": [12, -10, 40]}]}]}]}},
        "funlib.zarr": {}, "names.zarr": {}}
    for g, attrs in groups.items():
        with open(os.path.join(root, g, "zarr.json"), "w") as f:
            json.dump({"zarr_format": 3, "node_type": "group", "attributes": attrs}, f)
    return root, data


def test_geometry_from_funlib_attributes(zarrita_geometry):
    root, data = zarrita_geometry
    a = labelbin.ZarrArray(os.path.join(root, "funlib.zarr/labels"))
    assert a.voxel_size == (8, 4, 2) and a.axes == ["z", "y", "x"]
    assert a.roi == Roi((16, 40, 6), (96, 56, 20))
    got = a[Roi((16 + 8 * 3, 40 + 4 * 5, 6 + 2 * 1), (8 * 7, 4 * 6, 2 * 8))]
    assert_same(got, data[3:10, 5:11, 1:9], "funlib world ROI")


def test_geometry_from_ome_ngff_05(zarrita_geometry):
    root, data = zarrita_geometry
    a = labelbin.ZarrArray(os.path.join(root, "ome.zarr/labels/s0"))
    assert a.voxel_size == (6, 5, 4) and a.axes == ["z", "y", "x"]
    assert a.roi == Roi((12, -10, 40), (72, 70, 40))
    got = a[Roi((12 + 6 * 2, -10 + 5 * 13, 40), (6 * 9, 5 * 1, 4 * 10))]
    assert_same(got, data[2:11, 13:14, 0:10], "OME-NGFF world ROI")


def test_axes_from_dimension_names(zarrita_geometry):
    root, data = zarrita_geometry
    a = labelbin.ZarrArray(os.path.join(root, "names.zarr/labels"))
    assert a.axes == ["t", "y", "x"] and a.dims == 2
    assert_same(a.data[...], data, "t, y, x")


# ============================== 2. zarrita reads what labelbin writes (Zarr v3)

GROUPS = [("mito", [3, 4, 5]), ("er", [16, 17]), ("cell", [])]
SRC_SHAPE, SRC_RES, SRC_OFF = (20, 26, 31), (8, 4, 2), (16, 8, 4)


def binarize(labels, groups=GROUPS, background=0):
    """DaCapo's BinarizeArray in numpy: channel i = label in group i; an
    empty group is label != background."""
    return np.stack([np.isin(labels, ids) if ids else labels != background
                     for _, ids in groups]).astype(np.uint8)


@pytest.fixture(scope="module")
def label_source(tmp_path_factory):
    """A Zarr v2 label volume written by zarr-python (the writer under test
    reads it; what it writes is checked)."""
    root = str(tmp_path_factory.mktemp("src"))
    rng = rng_for("labels")
    labels = rng.choice(np.array([0, 3, 4, 5, 9, 16, 17, 30], np.uint64), SRC_SHAPE)
    labels[:8, :8, :16] = 0                 # an all-zero region: absent chunks
    path = os.path.join(root, "crop.zarr", "labels")
    z = zarr.open_array(path, mode="w", shape=SRC_SHAPE, chunks=(6, 7, 9), dtype="<u8",
                        compressor=None)
    z[...] = labels
    z.attrs.update({"resolution": list(SRC_RES), "offset": list(SRC_OFF),
                    "axes": ["z", "y", "x"]})
    with open(os.path.join(root, "crop.zarr", ".zgroup"), "w") as f:
        f.write('{"zarr_format": 2}')
    return path, labels


def _shard_meta(path):
    with open(os.path.join(path, "zarr.json")) as f:
        return json.load(f)


# (name, to_zarr keyword arguments, sub-ROI in voxels or None)
OUTPUTS = [
    ("plain", dict(chunks=(8, 8, 8), channel_chunks="separate"), None),
    ("plain_together_gzip", dict(chunks=(8, 8, 8), channel_chunks="together", codec="gzip:6"), None),
    ("sharded", dict(chunks=(8, 8, 8), shard=(16, 16, 16), channel_chunks="separate"), None),
    ("sharded_together", dict(chunks=(4, 8, 8), shard=(8, 16, 32), channel_chunks="together"), None),
    ("sharded_blosc", dict(chunks=(4, 4, 8), shard=(8, 8, 16), codec="blosc-lz4"), None),
    ("sharded_raw", dict(chunks=(4, 4, 4), shard=(8, 12, 16), codec="none"), None),
    ("sharded_crc32c", dict(chunks=(8, 8, 8), shard=(16, 16, 16),
                            codec={"name": "crc32c"}), None),
    ("sharded_roi", dict(chunks=(4, 4, 4), shard=(8, 8, 8), channel_chunks="together"),
     (slice(3, 15), slice(5, 22), slice(7, 27))),
    ("sharded_ome", dict(chunks=(8, 8, 8), shard=(16, 16, 16), ome_ngff=True), None),
]


@pytest.fixture(scope="module")
def labelbin_outputs(label_source, tmp_path_factory):
    """name -> (array dir, expected data, write stats) for each OUTPUTS entry
    and one CLI run."""
    src, labels = label_source
    root = str(tmp_path_factory.mktemp("out"))
    b = labelbin.BinarizeArray(labelbin.ZarrArray(src), GROUPS)
    want = binarize(labels)
    out = {}
    for name, kw, box in OUTPUTS:
        dest = os.path.join(root, "out.zarr", name)
        kw = dict(kw, format="zarr3")
        expect = want
        if box:
            kw["roi"] = Roi([o + s.start * r for o, s, r in zip(SRC_OFF, box, SRC_RES)],
                            [(s.stop - s.start) * r for s, r in zip(box, SRC_RES)])
            expect = want[(slice(None),) + box]
        stats = b.to_zarr(dest, **kw)
        if kw.get("ome_ngff"):
            dest = os.path.join(dest, "s0")
        out[name] = (dest, expect, stats)
    if cli_writes_zarr3():
        dest = os.path.join(root, "out.zarr", "cli")
        rc, _, err = lb_cli("binarize", src, dest, "-g", "mito=3,4,5", "-g", "er=16,17",
                            "-g", "cell=", "--format", "zarr3", "--shard", "16,16,32",
                            "--chunks", "8,8,8", "--no-progress", "-q")
        assert rc == 0, err
        out["cli"] = (dest, want, None)
    return out


def cli_writes_zarr3():
    """Whether this build's CLI has --format (and --shard) for binarize."""
    p = subprocess.run([LABELBIN, "binarize", "--help"], capture_output=True, text=True)
    return "--format" in p.stdout and "--shard" in p.stdout


def _output(outputs, name):
    if name not in outputs:
        pytest.skip("this build's `labelbin binarize` has no --format/--shard options")
    return outputs[name]


OUTPUT_NAMES = [n for n, _, _ in OUTPUTS] + ["cli"]


@pytest.fixture(scope="module")
def zarrita_on_outputs(zarrita, labelbin_outputs, tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("zo"))
    return zarrita.read_arrays([d for d, _, _ in labelbin_outputs.values()], tmp)


@pytest.mark.parametrize("name", OUTPUT_NAMES)
def test_zarrita_reads_labelbin_output(name, labelbin_outputs, zarrita_on_outputs):
    dest, want, _ = _output(labelbin_outputs, name)
    got, h = zarrita_on_outputs[dest]
    assert got is not None, f"{name}: zarrita: {h.get('error')}"
    assert_same(got, want, f"{name}: zarrita")
    meta = _shard_meta(dest)
    assert h["sharded"] == (meta["codecs"][0]["name"] == "sharding_indexed")
    assert h["dimension_names"] == ["c", "z", "y", "x"]
    assert h["attributes"]["channels"] == [g for g, _ in GROUPS]
    if "ome" not in name:
        assert h["attributes"]["resolution"] == list(SRC_RES)


@pytest.mark.parametrize("name", OUTPUT_NAMES)
def test_strict_reader_and_labelbin_read_labelbin_output(name, labelbin_outputs):
    """The spec-following reader (index ranges, checksums, sizes) and
    labelbin itself read the output as the numpy rule says."""
    dest, want, _ = _output(labelbin_outputs, name)
    assert_same(sw.read_array(dest), want, f"{name}: strict reader")
    assert_same(lb_read(dest), want, f"{name}: labelbin")


def test_labelbin_output_layouts(labelbin_outputs):
    """Sharded outputs: the shard grid is as asked, both channel layouts,
    the index at the end with crc32c, one file per shard; all-zero inner
    chunks are marked absent in their shard."""
    dest, want, _ = labelbin_outputs["sharded"]
    meta = _shard_meta(dest)
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [1, 16, 16, 16]
    cfg = meta["codecs"][0]["configuration"]
    assert cfg["chunk_shape"] == [1, 8, 8, 8] and cfg["index_location"] == "end"
    assert [c["name"] for c in cfg["index_codecs"]] == ["bytes", "crc32c"]
    files = list(oracles._shard_files(dest))
    assert len(files) == 3 * 2 * 2 * 2
    # the default layout: all channels in each inner chunk, one file per shard
    blosc = _shard_meta(labelbin_outputs["sharded_blosc"][0])
    assert blosc["codecs"][0]["configuration"]["chunk_shape"] == [3, 4, 4, 8]
    # Shard (0, 0, 0, 0): channel 0 over [0:16, 0:16, 0:16], whose [0:8, 0:8, 0:16]
    # is all zero: inner chunks (0, 0, 0) and (0, 0, 1) are absent.
    with open(os.path.join(dest, "c", "0", "0", "0", "0"), "rb") as f:
        blob = f.read()
    index, _, _ = oracles._parse_index(blob, cfg, 8)
    absent = [k for k in range(8) if int(index[k, 0]) == sw.U64_MAX]
    assert absent == [0, 1], absent
    dest, _, _ = labelbin_outputs["sharded_together"]
    meta = _shard_meta(dest)
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [3, 8, 16, 32]
    assert meta["codecs"][0]["configuration"]["chunk_shape"] == [3, 4, 8, 8]


INT_DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"]
# dtype -> (codec for create_dataset, fill value): zarrita parses these fills
# right (it rounds integers beyond 2^53).
CREATE = {"uint8": (None, 0), "int8": ("gzip:6", -3), "uint16": ("zstd:3", 7),
          "int16": ("blosc-lz4", -300), "uint32": ({"name": "crc32c"}, 0),
          "int32": ("blosc-zstd", 5), "uint64": ("zstd:1", 42), "int64": ("gzip:1", -1)}
W_SHAPE, W_CHUNKS, W_SHARD = (19, 23, 29), (4, 4, 8), (8, 8, 16)
# Writes in order: partial (no shard exists yet), overlapping (read-modify-
# write of existing shards), an all-fill shard, a whole edge shard, a voxel.
W_STEPS = [(slice(1, 10), slice(2, 13), slice(3, 20)),
           (slice(5, 17), slice(0, 23), slice(10, 29)),
           (slice(0, 8), slice(0, 8), slice(0, 16)),
           (slice(8, 16), slice(8, 16), slice(16, 29)),
           (slice(18, 19), slice(22, 23), slice(28, 29))]


@pytest.fixture(scope="module")
def created(tmp_path_factory):
    """Every integer dtype: create_dataset(format="zarr3", shard=...), the
    W_STEPS writes through .data, a copy of the array after each. Returns
    [(dtype, step, copy dir, expected)]."""
    root = str(tmp_path_factory.mktemp("created"))
    out = []
    for dt in INT_DTYPES:
        codec, fill = CREATE[dt]
        path = os.path.join(root, f"{dt}.zarr", "a")
        a = labelbin.create_dataset(path, W_SHAPE, W_CHUNKS, dtype=dt, codec=codec,
                                    fill_value=fill, format="zarr3", shard=W_SHARD)
        model = np.full(W_SHAPE, fill, np.dtype(dt))
        rng = rng_for("create " + dt)
        info = np.iinfo(np.dtype(dt))
        for step, box in enumerate(W_STEPS):
            shape = tuple(s.stop - s.start for s in box)
            if step == 2:
                value = np.full(shape, fill, np.dtype(dt))
            else:
                value = rng.integers(info.min, info.max, shape, dtype=np.dtype(dt), endpoint=True)
                value[:2, :3] = fill           # some inner chunks stay all fill
            a.data[box] = value
            model[box] = value
            snap = os.path.join(root, f"{dt}_step{step}.zarr")
            shutil.copytree(path, snap)
            out.append((dt, step, snap, model.copy()))
    return out


def test_created_arrays_read_back(created):
    for dt, step, path, want in created:
        assert_same(sw.read_array(path), want, f"{dt} step {step}: strict reader")
        assert_same(lb_read(path), want, f"{dt} step {step}: labelbin")


def test_zarrita_reads_created_arrays(zarrita, created, tmp_path):
    got = zarrita.read_arrays([p for _, _, p, _ in created], str(tmp_path))
    for dt, step, path, want in created:
        arr, h = got[path]
        assert arr is not None, f"{dt} step {step}: {h.get('error')}"
        assert h["sharded"] and h["dtype"] == dt
        assert_same(arr, want, f"{dt} step {step}: zarrita")


def test_created_all_fill_shard(created):
    """Step 2 made shard (0, 0, 0) all fill: it is gone or every entry of
    its index is absent — never stored fill chunks."""
    for dt, step, path, _ in created:
        if step != 2:
            continue
        shard = os.path.join(path, "c", "0", "0", "0")
        if os.path.exists(shard):
            cfg = _shard_meta(path)["codecs"][0]["configuration"]
            with open(shard, "rb") as f:
                index, _, _ = oracles._parse_index(f.read(), cfg, 8)
            assert (index == sw.U64_MAX).all(), dt


@pytest.fixture(scope="module")
def written_cases(cases, tmp_path_factory):
    """Every sharded case copied and written into by labelbin (random boxes,
    one of them all fill value) through a cached handle that reads each
    write back: index at the start, big-endian index without checksum,
    nested sharding, a transpose before sharding, bool, floats. Returns
    name -> (path, expected)."""
    root, manifest = cases
    tmp = str(tmp_path_factory.mktemp("written"))
    out = {}
    for name, e in manifest.items():
        path = os.path.join(tmp, e["path"])
        shutil.copytree(os.path.join(root, e["path"]), path)
        model = sw.load_raw(os.path.join(root, e["data"]), e["dtype"], e["shape"])
        fill = sw.fill_array(e["dtype"], sw.valid_case_specs()[name]["fill"])
        a = labelbin.ZarrArray(path, mode="r+")
        a.set_cache(1 << 20)
        rng = rng_for("write " + name)
        for i, box in enumerate(random_boxes(rng, model.shape, 5)):
            shape = tuple(b.stop - b.start for b in box)
            if i == 2:
                value = np.full(shape, fill, model.dtype)
            elif model.dtype.kind == "f":
                value = rng.standard_normal(shape).astype(model.dtype)
            elif model.dtype.kind == "b":
                value = rng.integers(0, 2, shape).astype(bool)
            else:
                info = np.iinfo(model.dtype)
                value = rng.integers(info.min, info.max, shape, dtype=model.dtype, endpoint=True)
            a.data[box] = value
            model[box] = value
            assert_same(a.data[...], model, f"{name}: cached read after write {i}")
        out[name] = (path, model)
    return out


@pytest.mark.parametrize("name", VALID)
def test_writes_into_foreign_shards(name, written_cases):
    path, want = written_cases[name]
    assert_same(sw.read_array(path), want, f"{name}: strict reader")
    assert_same(lb_read(path), want, f"{name}: labelbin, a new handle")


def test_zarrita_reads_writes_into_foreign_shards(zarrita, cases, written_cases, tmp_path):
    """zarrita reads the written copies of the cases it reads directly (its
    own fill value parsing aside)."""
    direct = [n for n, e in cases[1].items() if e["zarrita"] == "direct"]
    got = zarrita.read_arrays([written_cases[n][0] for n in direct], str(tmp_path))
    for name in direct:
        path, want = written_cases[name]
        arr, h = got[path]
        assert arr is not None, f"{name}: {h.get('error')}"
        assert_same(arr, want, f"{name}: zarrita")


# ==================================================== 3. the sharded cases

def _case(cases, name):
    return oracles._case(cases, name)


@pytest.mark.parametrize("name", VALID)
def test_labelbin_reads_sharded_case(cases, name):
    path, data = _case(cases, name)
    a = labelbin.ZarrArray(path)
    assert a.format == "zarr3" and a.shape == data.shape
    assert_same(a.data[...], data, f"{name}: whole")
    for box in random_boxes(rng_for(name), data.shape, 10):
        assert_same(a.data[box], data[box], f"{name}: {box}")
    # Through a cache and two threads, every read twice.
    b = labelbin.ZarrArray(path)
    b.set_cache(8 << 20)
    b.set_threads(2)
    for box in random_boxes(rng_for(name + "/cache"), data.shape, 8) * 2:
        assert_same(b.data[box], data[box], f"{name}: cached {box}")


@pytest.fixture(scope="module")
def zarrita_case_reads(zarrita, cases, tmp_path_factory):
    """zarrita's readings of the cases it can read as they are ("direct",
    "nonfill") or with the index moved to the end ("relocate")."""
    tmp = str(tmp_path_factory.mktemp("zcr"))
    plan = {}
    for name, e in cases[1].items():
        path, _ = _case(cases, name)
        if e["zarrita"] in ("direct", "nonfill"):
            plan[name] = path
        elif e["zarrita"] == "relocate":
            plan[name] = oracles.relocate(path, os.path.join(tmp, name))
    return plan, zarrita.read_arrays(list(plan.values()), tmp)


@pytest.mark.parametrize("name", VALID)
def test_labelbin_reads_sharded_case_as_zarrita(name, cases, zarrita_case_reads):
    plan, reads = zarrita_case_reads
    if name not in plan:
        pytest.skip(f"zarrita 0.7.5 cannot read {name} (tests/v3/README.md); "
                    "py_v3_oracles checks it shard by shard")
    got, h = reads[plan[name]]
    assert got is not None, h.get("error")
    path, data = _case(cases, name)
    mine = lb_read(path)
    if cases[1][name]["zarrita"] == "nonfill":
        keep = bits(data) != bits(sw.fill_array(cases[1][name]["dtype"],
                                                sw.valid_case_specs()[name]["fill"]))
        assert_same(mine[keep], got[keep], f"{name}: labelbin vs zarrita outside fill")
    else:
        assert_same(mine, got, f"{name}: labelbin vs zarrita")


# ======================================================= 4. the spec examples

def test_sharding_spec_example_index(cases):
    """The sharding spec's example: shard [64, 64] of [32, 32] inner chunks,
    index bytes little + crc32c at the end, 16 * 4 + 4 = 68 bytes. labelbin
    reads it, and reading one inner chunk fetches those 68 bytes and the
    chunk's bytes."""
    path, data = _case(cases, "spec_example")
    a = labelbin.ZarrArray(path)
    assert a.shards == (64, 64) and a.chunks == (32, 32)
    assert a.codecs == ("sharding_indexed(chunk_shape [32, 32], codecs [bytes(little), "
                        "gzip(1)], index at the end)")
    assert_same(a.data[...], data, "spec example")
    with open(os.path.join(path, "c", "1", "0"), "rb") as f:
        blob = f.read()
    index = np.frombuffer(blob[-68:-4], "<u8").reshape(4, 2)
    present = [k for k in range(4) if int(index[k, 0]) != sw.U64_MAX]
    k = present[0]
    r, c = divmod(k, 2)
    b = labelbin.ZarrArray(path)
    before = b.io_stats()
    box = (slice(64 + 32 * r, 64 + 32 * r + 1), slice(32 * c, 32 * c + 1))
    assert_same(b.data[box], data[box], "one voxel")
    after = b.io_stats()
    assert after["requests"] - before["requests"] == 2
    assert after["bytes"] - before["bytes"] == 68 + int(index[k, 1])


CORE_EXAMPLE = """{
    "zarr_format": 3,
    "node_type": "array",
    "shape": [10000, 1000],
    "dimension_names": ["rows", "columns"],
    "data_type": "float64",
    "chunk_grid": {
        "name": "regular",
        "configuration": {
            "chunk_shape": [1000, 100]
        }
    },
    "chunk_key_encoding": {
        "name": "default",
        "configuration": {
            "separator": "/"
        }
    },
    "codecs": [{
        "name": "bytes",
        "configuration": {
            "endian": "little"
        }
    }],
    "fill_value": "NaN",
    "attributes": {
        "foo": 42,
        "bar": "apples",
        "baz": [1, 2, 3, 4]
    }
}"""


def test_core_spec_array_example(tmp_path):
    """The core spec's array metadata example, verbatim, with two of its
    100 chunks written (little-endian float64, C order): the rest read as
    NaN, the dimension names are the axes, the attributes come through."""
    path = tmp_path / "example.zarr"
    (path / "c" / "3").mkdir(parents=True)
    (path / "zarr.json").write_text(CORE_EXAMPLE)
    rng = rng_for("core example")
    full = np.full((10000, 1000), np.nan)
    for key in [(3, 4), (3, 5)]:
        block = rng.standard_normal((1000, 100))
        full[key[0] * 1000:(key[0] + 1) * 1000, key[1] * 100:(key[1] + 1) * 100] = block
        (path / "c" / str(key[0]) / str(key[1])).write_bytes(block.astype("<f8").tobytes())
    a = labelbin.ZarrArray(str(path))
    assert a.shape == (10000, 1000) and a.chunks == (1000, 100) and a.dtype == np.float64
    assert a.axes == ["rows", "columns"]
    assert a.attrs == {"foo": 42, "bar": "apples", "baz": [1, 2, 3, 4]}
    for box in [(slice(2990, 4010), slice(390, 610)), (slice(3500, 3501), slice(0, 1000)),
                (slice(9990, 10000), slice(990, 1000))]:
        assert_same(a.data[box], full[box], f"core example {box}")


def test_core_spec_extension_dtype_example(tmp_path):
    """The core spec's second example (a made-up extension data type, its
    trailing comma removed): refused as unsupported, naming the type."""
    doc = json.loads(CORE_EXAMPLE)
    del doc["dimension_names"], doc["attributes"]
    doc["data_type"] = {"name": "urn:example:datetime", "configuration": {"unit": "ns"}}
    doc["codecs"][0]["configuration"]["endian"] = "big"
    doc["fill_value"] = None
    path = tmp_path / "ext.zarr"
    path.mkdir()
    (path / "zarr.json").write_text(json.dumps(doc))
    rc, msg = lb_open_code(str(path))
    assert rc == LB_EUNSUPPORTED, (rc, msg)
    assert '"urn:example:datetime" is not supported' in msg
    rc, _, err = lb_cli("info", path)
    assert_refused(rc, err, str(path / "zarr.json"), "urn:example:datetime")


# ========================================================= 5. bytes read

IO_SHAPE, IO_SHARD, IO_INNER = (24, 24, 40), (8, 8, 16), (4, 4, 8)


def _io_data():
    rng = rng_for("io")
    data = rng.integers(1, 1000, IO_SHAPE).astype(np.uint16)
    data[0:8, 8:16, 0:16] = 0          # shard (0, 1, 0) is all fill: no file
    for pos in np.ndindex(6, 6, 5):    # about a third of the inner chunks absent
        if rng.random() < 0.35:
            data[tuple(slice(p * c, (p + 1) * c) for p, c in zip(pos, IO_INNER))] = 0
    return data


IO_LAYOUTS = {
    "end_crc": dict(location="end", index_codecs=None),
    "start_crc": dict(location="start", index_codecs=None),
    "end_no_crc": dict(location="end", index_codecs=[sw._bytes()]),
    "start_big": dict(location="start", index_codecs=[sw._bytes("big"), sw.CRC]),
}
# Unaligned across 2 x 2 x 2 shards (one of them absent); inside one inner
# chunk; one whole shard.
IO_ROIS = [(slice(3, 13), slice(5, 14), slice(6, 30)),
           (slice(9, 10), slice(13, 15), slice(17, 20)),
           (slice(16, 24), slice(16, 24), slice(16, 32))]


def expected_io(path, meta, box):
    """(requests, bytes, index requests, index bytes) a ROI read needs,
    worked out from the shard files themselves: per touched shard its index
    (one request; an absent shard is one request and no bytes), per touched
    inner chunk its stored bytes (none when the index marks it absent)."""
    cfg = meta["codecs"][0]["configuration"]
    shard = meta["chunk_grid"]["configuration"]["chunk_shape"]
    inner = cfg["chunk_shape"]
    per = [s // c for s, c in zip(shard, inner)]
    n = int(np.prod(per))
    isize = 16 * n + 4 * sum(c["name"] == "crc32c" for c in cfg["index_codecs"])
    big = cfg["index_codecs"][0]["configuration"]["endian"] == "big"
    req = nbytes = ireq = ibytes = 0
    lo = [s.start // c for s, c in zip(box, shard)]
    hi = [(s.stop - 1) // c for s, c in zip(box, shard)]
    for spos in np.ndindex(*[h - l + 1 for l, h in zip(lo, hi)]):
        spos = [l + p for l, p in zip(lo, spos)]
        req += 1
        ireq += 1
        key = os.path.join(path, "c", *map(str, spos))
        if not os.path.isfile(key):
            continue
        with open(key, "rb") as f:
            blob = f.read()
        raw = blob[:isize] if cfg["index_location"] == "start" else blob[-isize:]
        index = np.frombuffer(raw[:16 * n], ">u8" if big else "<u8").reshape(per + [2])
        nbytes += isize
        ibytes += isize
        # The inner chunks of this shard that the box touches.
        ilo = [max(b.start, p * s) // c - p * s // c for b, p, s, c in zip(box, spos, shard, inner)]
        ihi = [(min(b.stop, (p + 1) * s) - 1) // c - p * s // c
               for b, p, s, c in zip(box, spos, shard, inner)]
        for ipos in np.ndindex(*[h - l + 1 for l, h in zip(ilo, ihi)]):
            off, nb = (int(v) for v in index[tuple(l + p for l, p in zip(ilo, ipos))])
            if off == sw.U64_MAX:
                continue
            req += 1
            nbytes += nb
    return req, nbytes, ireq, ibytes


@pytest.fixture(scope="module")
def io_arrays(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("io"))
    data = _io_data()
    out = {}
    for name, lay in IO_LAYOUTS.items():
        path = os.path.join(root, name + ".zarr")
        codec = sw.sharding(IO_INNER, [sw._bytes(), {"name": "gzip", "configuration": {"level": 5}}],
                            index_codecs=lay["index_codecs"], location=lay["location"])
        sw.write_array(path, data, IO_SHARD, [codec], 0, layout=sw.Layout("shuffled", 40, SEED))
        out[name] = path
    assert not os.path.exists(os.path.join(out["end_crc"], "c", "0", "1", "0"))
    return out, data


def _delta(a, before):
    now = a.io_stats()
    return now["requests"] - before["requests"], now["bytes"] - before["bytes"]


@pytest.mark.parametrize("layout", sorted(IO_LAYOUTS))
@pytest.mark.parametrize("roi", range(len(IO_ROIS)))
def test_bytes_read_without_cache(io_arrays, layout, roi):
    paths, data = io_arrays
    path, box = paths[layout], IO_ROIS[roi]
    req, nbytes, ireq, ibytes = expected_io(path, _shard_meta(path), box)
    a = labelbin.ZarrArray(path)
    s = a.io_stats()
    assert_same(a.data[box], data[box], f"{layout} {box}")
    assert _delta(a, s) == (req, nbytes)
    # Again: the shard indexes (absent shards too) are remembered; only the
    # inner chunks are fetched again.
    s = a.io_stats()
    assert_same(a.data[box], data[box], f"{layout} {box} again")
    assert _delta(a, s) == (req - ireq, nbytes - ibytes)


@pytest.mark.parametrize("layout", sorted(IO_LAYOUTS))
@pytest.mark.parametrize("roi", range(len(IO_ROIS)))
def test_bytes_read_with_cache(io_arrays, layout, roi):
    paths, data = io_arrays
    path, box = paths[layout], IO_ROIS[roi]
    req, nbytes, _, _ = expected_io(path, _shard_meta(path), box)
    a = labelbin.ZarrArray(path)
    a.set_cache(16 << 20)
    s = a.io_stats()
    assert_same(a.data[box], data[box], f"{layout} {box}")
    assert _delta(a, s) == (req, nbytes)
    s = a.io_stats()
    assert_same(a.data[box], data[box], f"{layout} {box} cached")
    assert _delta(a, s) == (0, 0), "a cached read fetches nothing"


def test_bytes_read_are_a_small_part_of_the_shards(io_arrays):
    """The point of it: the one-inner-chunk ROI reads a fraction of its shard."""
    paths, _ = io_arrays
    path, box = paths["end_crc"], IO_ROIS[1]
    _, nbytes, _, _ = expected_io(path, _shard_meta(path), box)
    shard = os.path.getsize(os.path.join(path, "c", "1", "1", "1"))
    assert 0 < nbytes < shard // 3, (nbytes, shard)


def test_bytes_read_nested_and_transposed(cases):
    """Nested sharding reads the outer index and the touched inner shards
    whole; a transpose before sharding reads whole shards (what one decode
    needs)."""
    path, data = _case(cases, "nested")
    meta = _shard_meta(path)
    box = (slice(2, 5), slice(3, 6), slice(20, 23))   # inner shard (0, 0, 1) of shard (0, 0, 1)
    req, nbytes, _, _ = expected_io(path, meta, box)
    a = labelbin.ZarrArray(path)
    s = a.io_stats()
    assert_same(a.data[box], data[box], "nested")
    assert _delta(a, s) == (req, nbytes)
    path, data = _case(cases, "transpose_then_shard")
    box = (slice(0, 3), slice(0, 3), slice(0, 3))
    a = labelbin.ZarrArray(path)
    s = a.io_stats()
    assert_same(a.data[box], data[box], "transpose then shard")
    assert _delta(a, s) == (1, os.path.getsize(os.path.join(path, "c", "0", "0", "0")))


# ===================================================== 6. hostile Zarr v3 input

@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("hostile"))
    manifest = sw.hostile_cases(root)
    return root, {e["name"]: e for e in manifest}


@pytest.fixture(scope="module")
def hostile_extra(tmp_path_factory):
    """More cases in the manifest's form: nesting at and past the limit,
    the inner chunk count limit, shard keys that are not files, a truncated
    shard with the index at the start, extension keys."""
    root = str(tmp_path_factory.mktemp("hostile_extra"))
    out = {}

    def add(name, note, expect="refuse", arr=None):
        e = {"name": name, "path": name + ".zarr", "note": note, "expect": expect}
        if arr is not None:
            sw.dump_raw(arr, os.path.join(root, name + ".bin"))
            e.update(data=name + ".bin", shape=list(arr.shape),
                     dtype=next(k for k, v in sw.DTYPES.items() if v == arr.dtype))
        out[name] = e

    for levels in (4, 5):
        deep = [sw._bytes()]
        for _ in range(levels):
            deep = [sw.sharding((1, 1, 1), deep)]
        p = os.path.join(root, f"nest_{levels}.zarr")
        sw._write_meta(p, [1, 1, 1], "uint8", [1, 1, 1], deep)
        sw._put_chunk(p, sw._deep_shard(levels))
        if levels == 4:
            add("nest_4", "4 levels of nested sharding (the limit)", "read", np.ones((1, 1, 1), np.uint8))
        else:
            add("nest_5", "5 levels of nested sharding, one past the limit")
    for n, name in ((256, "inner_count_limit"), (257, "inner_count_over")):
        p = os.path.join(root, name + ".zarr")
        sw._write_meta(p, [n] * 3, "uint8", [n] * 3, [sw.sharding((1, 1, 1))])
        sw._put_chunk(p, bytes(64))
        add(name, f"{n}^3 inner chunks of one voxel per shard (a {16 * n ** 3 >> 20} MiB "
                  f"index) and a 64-byte shard file")
    data = np.arange(1, 513, dtype=np.uint16).reshape(8, 8, 8)
    for kind in ("dir", "fifo"):
        p = os.path.join(root, f"shard_is_{kind}.zarr")
        sw.write_array(p, data, (8, 8, 8), [sw.sharding((4, 4, 4))])
        key = os.path.join(p, "c", "0", "0", "0")
        os.remove(key)
        os.mkdir(key) if kind == "dir" else os.mkfifo(key)
        add(f"shard_is_{kind}", f"the shard's key is a {kind}")
    p = os.path.join(root, "start_truncated.zarr")
    sw.write_array(p, data, (8, 8, 8), [sw.sharding((4, 4, 4), location="start")])
    with open(os.path.join(p, "c", "0", "0", "0"), "r+b") as f:
        f.truncate(100)
    add("start_truncated", "index at the start; the shard is shorter than its index")
    p = os.path.join(root, "ext_must_understand.zarr")
    sw.write_array(p, data, (8, 8, 8), [sw.sharding((4, 4, 4))],
                   extra={"lb_extension": {"must_understand": True}})
    add("ext_must_understand", 'an unknown top-level key "lb_extension"')
    p = os.path.join(root, "ext_optional.zarr")
    sw.write_array(p, data, (8, 8, 8), [sw.sharding((4, 4, 4))],
                   extra={"lb_extension": {"must_understand": False, "x": 1}})
    add("ext_optional", 'an unknown key marked "must_understand": false', "read", data)
    return root, out


# labelbin reads these "refuse" cases of the hostile manifest on purpose.
ACCEPTED = {
    "fill_null": "zarrita's create() writes fill_value null when none is given; labelbin "
                 "reads it as 0, as zarrita does (checked below)",
}


def _hostile_names():
    """The hostile manifest's (name, expect) pairs, from a scratch run."""
    with tempfile.TemporaryDirectory() as d:
        return [(e["name"], e["expect"]) for e in sw.hostile_cases(d)]


_HOSTILE = _hostile_names()
REFUSE = [n for n, x in _HOSTILE if x == "refuse" and n not in ACCEPTED]
READ = [n for n, x in _HOSTILE if x == "read"]
EXTRA_REFUSE = ["nest_5", "inner_count_limit", "inner_count_over", "shard_is_dir",
                "shard_is_fifo", "start_truncated", "ext_must_understand"]
EXTRA_READ = ["nest_4", "ext_optional"]


def _check_refused(root, e, tmp_path):
    path = os.path.join(root, e["path"])
    dest = tmp_path / "out.zarr" / "gt"
    rc, _, err = lb_cli("info", path)
    if rc == 0:  # metadata is fine; the chunks are not
        rc, _, err = lb_cli("binarize", path, dest, "-g", "a=1", "--no-progress", "-j1")
        # The message names the shard at fault (every case has one, c/0/0/0).
        assert_refused(rc, err, os.path.join(path, "c", "0", "0", "0") + ":")
    elif e["name"] == "node_type_group":
        # A group where an array was expected: the CLI says so, then looks
        # for datasets below it (docs/cli.md), so two lines.
        assert rc == 1, err
        lines = err.splitlines()
        assert all(line.startswith("labelbin: " + path) for line in lines), err
        assert "holds no Zarr or N5 dataset" in lines[-1], err
        return err
    else:
        assert_refused(rc, err, path)
        rc2, _, err2 = lb_cli("binarize", path, dest, "-g", "a=1", "--no-progress", "-j1")
        assert (rc2, err2) == (rc, err)
        assert not dest.exists(), "a refused source creates nothing"
    return err


@pytest.mark.parametrize("name", REFUSE)
def test_hostile_refused(hostile, name, tmp_path):
    root, m = hostile
    err = _check_refused(root, m[name], tmp_path)
    if name != "node_type_group":   # the document or the shard at fault
        assert "zarr.json: " in err or "/c/0/0/0: " in err, err


@pytest.mark.parametrize("name", EXTRA_REFUSE)
def test_hostile_extra_refused(hostile_extra, name, tmp_path):
    root, m = hostile_extra
    err = _check_refused(root, m[name], tmp_path)
    want = {"nest_5": "nested more than 4 levels deep",
            "inner_count_limit": "shorter than its 268435460-byte index",
            "inner_count_over": "more than the limit of 16777216",
            "shard_is_dir": "is a directory", "shard_is_fifo": "is not a regular file",
            "start_truncated": "past the end of the 100-byte file",
            "ext_must_understand": '"lb_extension" is an extension'}[name]
    assert want in err, err


@pytest.mark.parametrize("name", READ)
def test_hostile_odd_but_valid_reads(hostile, name):
    root, m = hostile
    e = m[name]
    want = sw.load_raw(os.path.join(root, e["data"]), e["dtype"], e["shape"])
    assert_same(lb_read(os.path.join(root, e["path"])), want, name)


@pytest.mark.parametrize("name", EXTRA_READ)
def test_hostile_extra_odd_but_valid_reads(hostile_extra, name):
    root, m = hostile_extra
    e = m[name]
    want = sw.load_raw(os.path.join(root, e["data"]), e["dtype"], e["shape"])
    assert_same(lb_read(os.path.join(root, e["path"])), want, name)
    rc, _, err = lb_cli("info", os.path.join(root, e["path"]))
    assert rc == 0, err


@pytest.mark.parametrize("name,what", [
    ("unknown_codec", 'codec "lb_unknown_codec" is not supported'),
    ("unknown_inner_codec", 'codec "lb_unknown_codec" is not supported'),
    ("unknown_array_to_bytes", 'codec "vlen-utf8" is not supported'),
    ("unknown_chunk_grid", 'chunk grid "rectilinear" is not supported'),
    ("unknown_key_encoding", 'chunk key encoding "lb_flat" is not supported'),
    ("unknown_dtype", '"complex64" is not supported'),
    ("dtype_float16", '"float16" is not supported'),
    ("storage_transformer", "storage_transformers are not supported"),
])
def test_hostile_unsupported_code(hostile, name, what):
    """Unknown extensions are LB_EUNSUPPORTED (valid, not supported), and
    the message names what is not supported."""
    root, m = hostile
    path = os.path.join(root, m[name]["path"])
    rc, msg = lb_open_code(path)
    assert rc == LB_EUNSUPPORTED, (rc, msg)
    assert what in msg and msg.startswith(path + "/zarr.json"), msg


@pytest.mark.parametrize("name", ["index_offset_outside", "overlap_partial", "index_bad_crc",
                                  "truncated_shard", "gzip_bomb", "chunk_size_short"])
def test_hostile_shards_through_python(hostile, name):
    """The same refusals reach Python as labelbin.FormatError, from a ROI
    read touching the bad shard, with or without a cache — never zeros."""
    root, m = hostile
    path = os.path.join(root, m[name]["path"])
    for cache in (0, 1 << 20):
        a = labelbin.ZarrArray(path)
        if cache:
            a.set_cache(cache)
        with pytest.raises(labelbin.FormatError, match="c/0/0/0"):
            a.data[...]


def test_nest_limit_is_elimit(hostile_extra):
    root, m = hostile_extra
    rc, msg = lb_open_code(os.path.join(root, m["nest_5"]["path"]))
    assert rc == LB_ELIMIT, (rc, msg)
    rc, msg = lb_open_code(os.path.join(root, m["inner_count_over"]["path"]))
    assert rc == LB_ELIMIT, (rc, msg)


def test_fill_null_reads_as_zero_like_zarrita(hostile, zarrita, tmp_path):
    """fill_value null breaks the spec but is what zarrita's create() writes
    by default; labelbin, like zarrita, reads the missing chunks as 0."""
    root, m = hostile
    path = os.path.join(root, m["fill_null"]["path"])
    want = np.zeros((8, 8, 8), np.uint16)
    assert_same(lb_read(path), want, "labelbin")
    (got, h), = zarrita.read_arrays([path], str(tmp_path)).values()
    assert got is not None, h
    assert_same(got, want, "zarrita")
