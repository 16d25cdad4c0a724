"""The Python module (python/labelbin): golden cases through the Python API,
equality with DaCapo's numpy rule for every integer dtype, configs, errors,
threads, funlib geometry, writes and to_zarr.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/py_python_module.py
"""

import json
import os
import pathlib
import pickle
import random
import signal
import threading

import numpy as np
import pytest
import zarr
from numcodecs import GZip, Zstd

import labelbin
from labelbin import BinarizeArray, Coordinate, MissingAnnotationsMask, Roi, ZarrArray

SEED = int(os.environ.get("LB_SEED", "20240611"))
print("seed", SEED)

_SRC = pathlib.Path(os.environ.get("LB_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[1]))
# The repository's conformance cases (tests/conformance/make_cases.py, CTest
# fixture "conformance") and, as "extra/NAME", those in LB_GOLDEN_DIR if any.
CONFORMANCE = pathlib.Path(os.environ.get("LB_CONFORMANCE_DIR", _SRC / "build" / "conformance"))
GOLDEN = pathlib.Path(os.environ.get("LB_GOLDEN_DIR", _SRC.parent / "shared" / "golden"))


def _case_names(root, prefix=""):
    return sorted(prefix + p.name for p in root.iterdir() if (p / "case.json").is_file()) \
        if root.is_dir() else []


CASES = _case_names(CONFORMANCE) + _case_names(GOLDEN, "extra/")

DACAPO_VIRTUAL = ("Cannot get a writable view of this array because it is a virtual "
                  "array created by modifying another array on demand.")
INT_DTYPES = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"]


# ---- helpers ------------------------------------------------------------------

def load_case(name):
    d = GOLDEN / name[len("extra/"):] if name.startswith("extra/") else CONFORMANCE / name
    return d, json.loads((d / "case.json").read_text())


def roi_of(r):
    return Roi(r["offset"], r["shape"])


def roi_text(roi):
    """funlib's bracket form, as the library prints ROIs in its messages."""
    return "[" + ", ".join("%d:%d" % (b, b + s) for b, s in zip(roi.offset, roi.shape)) + "]"


def expected(d, req, key):
    return np.fromfile(d / req[key], dtype=np.uint8).reshape(req["shape"])


def dacapo_binarize(labels, groupings, background=0):
    """DaCapo's numpy rule (grouped[i] += labels == id), clipped to 0/1 as
    DaCapo >= 0.3.2 and DESIGN.md §1.4 do; ids the dtype cannot hold never
    match (compared exactly, not through numpy's float promotion)."""
    info = np.iinfo(labels.dtype)
    out = np.zeros((len(groupings),) + labels.shape, np.uint8)
    for i, (_, ids) in enumerate(groupings):
        if len(ids) == 0:
            out[i] += labels != labels.dtype.type(background)
        for v in ids:
            if info.min <= v <= info.max:
                out[i] += labels == labels.dtype.type(v)
    return np.minimum(out, 1)


def dacapo_mask(labels, groupings, present_not_annotated=()):
    out = np.empty((len(groupings),) + labels.shape, np.uint8)
    out[:] = labels > 0
    for i, (_, ids) in enumerate(groupings):
        if any(v in present_not_annotated for v in ids):
            out[i] = 0
    return out


def random_labels(rng, shape, values, dtype):
    """CellMap-like labels: runs along x of values drawn from `values`."""
    runs = rng.integers(0, len(values), size=shape[:-1] + (shape[-1] // 4 + 1,))
    lab = np.repeat(np.array(values, dtype=object)[runs], 4, axis=-1)[..., :shape[-1]]
    return lab.astype(dtype)


def write_zarr(root, name, data, chunks, attrs=None, compressor=None):
    g = zarr.open_group(str(root), mode="a")
    z = g.create_dataset(name, shape=data.shape, chunks=chunks, dtype=data.dtype,
                         compressor=compressor, overwrite=True)
    z[...] = data
    if attrs:
        z.attrs.update(attrs)
    return str(root), name


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    """A uint32 volume with annotation metadata: ids 3 present-not-annotated."""
    rng = np.random.default_rng(SEED)
    root = tmp_path_factory.mktemp("vol") / "crop.zarr"
    lab = random_labels(rng, (24, 30, 36), [0, 1, 2, 3, 4, 5, 6, 1000, 2**32 - 1], "uint32")
    attrs = {"resolution": [4, 2, 2], "offset": [8, -4, 0], "axes": ["z", "y", "x"],
             "labels": [{"value": 3, "annotationState": {"present": True, "annotated": False}},
                        {"value": 4, "annotationState": {"present": True, "annotated": True}}]}
    write_zarr(root, "labels/all", lab, (8, 16, 10), attrs, Zstd(level=3))
    return root, lab


GROUPS = [("one", [1]), ("mito", [3, 4, 5]), ("dup", [2, 2]), ("big", [1000, 4294967295]),
          ("all", []), ("none", [99])]


# ---- golden cases --------------------------------------------------------------

@pytest.mark.parametrize("name", CASES)
def test_golden_properties(name):
    d, case = load_case(name)
    p = case["expected_properties"]
    src = ZarrArray(str(d / case["source"]))
    assert str(src.dtype) == p["dtype"]
    assert src.axes == p["axes"]
    assert src.dims == p["dims"]
    assert src.voxel_size == Coordinate(p["voxel_size"])
    assert isinstance(src.voxel_size, Coordinate)
    assert src.roi == roi_of(p["roi"])
    assert src.num_channels is None
    assert src.writable is False
    assert isinstance(src.attrs, dict)
    for cls in (BinarizeArray, MissingAnnotationsMask):
        kw = {"background": case["background"]} if cls is BinarizeArray else {}
        a = cls(src, case["groupings"], **kw)
        assert a.axes == ["c"] + p["axes"]
        assert a.dims == p["dims"]
        assert a.voxel_size == Coordinate(p["voxel_size"])
        assert a.roi == roi_of(p["roi"])
        assert a.dtype == np.uint8
        assert a.num_channels == p["num_channels"]
        assert list(a.channels) == p["channels"]
        assert a.writable is False
        assert a.attrs == src.attrs
        with pytest.raises(ValueError) as e:
            a.data
        assert str(e.value) == DACAPO_VIRTUAL


@pytest.mark.parametrize("name", CASES)
def test_golden_requests(name):
    d, case = load_case(name)
    cfg = {"__type__": "BinarizeArrayConfig", "name": name,
           "source_array_config": {"__type__": "ZarrArrayConfig", "name": "src",
                                   "file_name": str(d / case["source"].split("/")[0]),
                                   "dataset": "/".join(case["source"].split("/")[1:])},
           "groupings": case["groupings"], "background": case["background"]}
    b = labelbin.from_config(cfg)
    assert isinstance(b, BinarizeArray)
    mcfg = dict(cfg, __type__="MissingAnnotationsMaskConfig")
    del mcfg["background"]
    m = labelbin.from_config(json.dumps(mcfg))
    assert isinstance(m, MissingAnnotationsMask)
    for req in case["requests"]:
        roi = roi_of(req["roi"])
        if "error" in req:
            for a in (b, m):
                with pytest.raises(ValueError) as e:
                    a[roi]
                assert roi_text(roi) in str(e.value), str(e.value)
            continue
        got = b[roi]
        assert got.dtype == np.uint8 and got.flags.c_contiguous
        assert got.shape == tuple(req["shape"])
        np.testing.assert_array_equal(got, expected(d, req, "binarize"))
        np.testing.assert_array_equal(m[roi], expected(d, req, "mask"))


# ---- DaCapo's numpy rule on random volumes, every integer dtype ----------------

def _values_for(dtype, rng):
    info = np.iinfo(dtype)
    vals = {0, 1, 2, 3, 7, int(info.max), int(info.max) - 1}
    if info.min < 0:
        vals |= {-1, -5, int(info.min)}
    vals |= {int(v) for v in rng.integers(0, min(int(info.max), 2**62), size=4)}
    return sorted(vals)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_numpy_rule_every_dtype(tmp_path, dtype):
    rng = np.random.default_rng(SEED + INT_DTYPES.index(dtype))
    values = _values_for(dtype, rng)
    lab = random_labels(rng, (13, 17, 22), values, dtype)
    info = np.iinfo(dtype)
    groups = [("g%d" % i, [values[k] for k in rng.integers(0, len(values), rng.integers(1, 4))])
              for i in range(6)]
    unfit = [v for v in (int(info.max) + 1, int(info.min) - 1) if -2**63 <= v < 2**64]
    groups += [("empty", []), ("dup", [values[1], values[1]]),
               ("unfit", unfit), ("max", [int(info.max)])]
    background = values[2]
    root, ds = write_zarr(tmp_path / "r.zarr", "labels", lab, (5, 8, 9),
                          {"resolution": [2, 3, 1], "offset": [4, 6, -7]}, GZip(level=1))
    src = ZarrArray(root, ds)
    assert src.dtype == np.dtype(dtype)
    b = BinarizeArray(src, groups, background=background)
    m = MissingAnnotationsMask(src, groups)
    np.testing.assert_array_equal(src[src.roi], lab)
    np.testing.assert_array_equal(b[b.roi], dacapo_binarize(lab, groups, background))
    np.testing.assert_array_equal(m[m.roi], dacapo_mask(lab, groups))
    # sub-ROIs: offsets relative to the array's world offset
    for _ in range(5):
        lo = [int(rng.integers(0, n)) for n in lab.shape]
        hi = [int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, lab.shape)]
        vs = src.voxel_size
        roi = Roi(src.roi.offset + Coordinate(lo) * vs, (Coordinate(hi) - Coordinate(lo)) * vs)
        sl = tuple(slice(a, z) for a, z in zip(lo, hi))
        np.testing.assert_array_equal(b[roi], dacapo_binarize(lab[sl], groups, background))


def test_mask_annotation_metadata(volume):
    root, lab = volume
    src = ZarrArray(root, "labels/all")
    assert src.annotations == "boolean"
    m = MissingAnnotationsMask(src, GROUPS)
    np.testing.assert_array_equal(m[m.roi], dacapo_mask(lab, GROUPS, {3}))
    b = BinarizeArray(src, GROUPS)
    np.testing.assert_array_equal(b[b.roi], dacapo_binarize(lab, GROUPS))


def test_read_into_out(volume):
    """to_ndarray(roi, out=buf) reads into a caller's buffer (reused across
    reads, as a training loop does) and returns it; anything that is not
    exactly the read's shape and dtype, C-contiguous and writable is
    refused with a message that says what is expected."""
    root, lab = volume
    src = ZarrArray(root, "labels/all")
    b = BinarizeArray(src, GROUPS)
    m = MissingAnnotationsMask(src, GROUPS)
    rng = np.random.default_rng(SEED)
    for arr, rule in ((b, dacapo_binarize(lab, GROUPS)), (m, dacapo_mask(lab, GROUPS, {3})),
                      (src, lab)):
        vs = arr.voxel_size
        shape = (6, 10, 12)
        buf = np.full(rule.shape[:rule.ndim - 3] + shape, 77, dtype=arr.dtype)
        for _ in range(4):
            o = [int(rng.integers(0, lab.shape[k] - shape[k] + 1)) for k in range(3)]
            roi = Roi(tuple(arr.roi.offset[k] + o[k] * vs[k] for k in range(3)),
                      tuple(shape[k] * vs[k] for k in range(3)))
            got = arr.to_ndarray(roi, out=buf)
            assert got is buf
            want = rule[(Ellipsis,) + tuple(slice(o[k], o[k] + shape[k]) for k in range(3))]
            np.testing.assert_array_equal(buf, want)
            np.testing.assert_array_equal(arr[roi], want)
    roi = Roi(b.roi.offset, tuple(4 * v for v in b.voxel_size))
    good = b.to_ndarray(roi)
    bad = [np.empty(good.shape[:-1] + (3,), np.uint8),      # shape
           np.empty(good.shape, np.uint16),                 # dtype
           np.empty(good.shape[:-1] + (8,), np.uint8)[..., ::2]]  # not contiguous
    for out in bad:
        with pytest.raises(ValueError, match=r"out must .*shape \(6, 4, 4, 4\)|C-contiguous"):
            b.to_ndarray(roi, out=out)
    ro = np.empty_like(good)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        b.to_ndarray(roi, out=ro)
    with pytest.raises(TypeError, match="numpy array"):
        b.to_ndarray(roi, out=[0] * good.size)


def test_read_into_out_says_what_was_given(volume):
    """A refused `out` is described beside what the read needs: its dtype
    and shape, or which of C-contiguous, aligned and writable it is not
    (no advice to copy it: the read must fill the caller's own array)."""
    root, _ = volume
    b = BinarizeArray(ZarrArray(root, "labels/all"), GROUPS)
    src = ZarrArray(root, "labels/all")
    roi = Roi(b.roi.offset, tuple(4 * v for v in b.voxel_size))
    need = "out must have dtype uint8 and shape (6, 4, 4, 4), the shape and dtype of this read"
    flags = "out must be C-contiguous, aligned and writable: the read fills it in place; " \
            "the array given is "
    ro = np.empty((6, 4, 4, 4), np.uint8)
    ro.flags.writeable = False
    fro = np.empty((6, 4, 4, 4), np.uint8, order="F")
    fro.flags.writeable = False
    unaligned = np.frombuffer(bytearray(4 * 64 + 1), np.uint8)[1:].view(np.uint32)
    cases = [
        (b, np.empty((6, 4, 4, 3), np.uint8), need + ", not dtype uint8 and shape (6, 4, 4, 3)"),
        (b, np.empty((6, 4, 4, 4), np.uint16), need + ", not dtype uint16 and shape (6, 4, 4, 4)"),
        (b, np.empty(6 * 64, np.uint8), need + ", not dtype uint8 and shape (384,)"),
        (b, np.empty((6, 4, 4, 8), np.uint8)[..., ::2],
         flags + "not C-contiguous (strides (128, 32, 8, 2))"),
        (b, np.empty((6, 4, 4, 4), np.uint8, order="F"),
         flags + "not C-contiguous (strides (1, 6, 24, 96))"),
        (b, ro, flags + "read-only"),
        (b, fro, flags + "not C-contiguous (strides (1, 6, 24, 96)) and read-only"),
        (src, np.empty((4, 4, 4), ">u4"), "out must have dtype uint32 and shape (4, 4, 4), the "
         "shape and dtype of this read, not dtype >u4 and shape (4, 4, 4)"),
        (src, unaligned.reshape(4, 4, 4), flags + "not aligned"),
    ]
    for arr, out, message in cases:
        with pytest.raises(ValueError) as e:
            arr.to_ndarray(roi, out=out)
        assert str(e.value) == message
        assert "ascontiguousarray" not in str(e.value)
    with pytest.raises(TypeError) as e:
        b.to_ndarray(roi, out=bytearray(384))
    assert str(e.value) == "out must be a numpy array, not bytearray"


# ---- ROIs, configs, sources ----------------------------------------------------

class FunlibLikeRoi:
    """Duck-typed: only .offset and .shape, tuples of ints."""

    def __init__(self, offset, shape):
        self.offset = tuple(offset)
        self.shape = tuple(shape)


def test_duck_typed_roi(volume):
    root, lab = volume
    b = BinarizeArray(ZarrArray(root, "labels/all"), GROUPS)
    roi = Roi((16, -2, 4), (12, 10, 8))
    duck = FunlibLikeRoi([np.int64(16), -2, 4], (12, 10, 8))
    np.testing.assert_array_equal(b[duck], b[roi])
    assert b[roi].shape == (len(GROUPS), 3, 5, 4)
    with pytest.raises(TypeError):
        b[(16, -2, 4)]


class ZarrArrayConfig:
    def __init__(self, name, file_name, dataset, axes=None, snap_to_grid=None):
        self.name, self.file_name, self.dataset = name, file_name, dataset
        self.axes, self.snap_to_grid = axes, snap_to_grid


class BinarizeArrayConfig:
    def __init__(self, name, source_array_config, groupings, background=0):
        self.name, self.source_array_config = name, source_array_config
        self.groupings, self.background = groupings, background


class MyMaskConfig:  # no telling class name: the constructor says what it is
    def __init__(self, name, source_array_config, groupings):
        self.name, self.source_array_config, self.groupings = name, source_array_config, groupings


def test_config_objects_and_dicts(volume, tmp_path, monkeypatch):
    root, lab = volume
    zc = ZarrArrayConfig("labels", pathlib.Path(root), "labels/all")
    bc = BinarizeArrayConfig("gt", zc, [tuple(g) for g in GROUPS], background=0)
    want = dacapo_binarize(lab, GROUPS)
    b1 = BinarizeArray(bc)
    np.testing.assert_array_equal(b1[b1.roi], want)
    b2 = labelbin.from_config(bc)
    assert isinstance(b2, BinarizeArray)
    np.testing.assert_array_equal(b2[b2.roi], want)
    d = b1.config
    assert d["__type__"] == "BinarizeArrayConfig"
    assert d["source_array_config"]["__type__"] == "ZarrArrayConfig"
    np.testing.assert_array_equal(labelbin.from_config(d)[b1.roi], want)
    np.testing.assert_array_equal(BinarizeArray(d)[b1.roi], want)
    mc = MyMaskConfig("mask", zc, GROUPS)
    m = MissingAnnotationsMask(mc)
    np.testing.assert_array_equal(m[m.roi], dacapo_mask(lab, GROUPS, {3}))
    # sources: a live array, a config object, a path
    for source in (ZarrArray(zc), zc, os.path.join(root, "labels/all"),
                   pathlib.Path(root) / "labels" / "all"):
        np.testing.assert_array_equal(BinarizeArray(source, GROUPS)[b1.roi], want)
    # nested: a mask over a ZarrArrayConfig given as a dict, relative file_name
    monkeypatch.chdir(pathlib.Path(root).parent)
    rel = {"__type__": "ZarrArrayConfig", "name": "x", "file_name": "crop.zarr",
           "dataset": "labels/all"}
    m2 = MissingAnnotationsMask(rel, GROUPS)
    monkeypatch.chdir(tmp_path)  # relative names were fixed when used
    np.testing.assert_array_equal(m2[m2.roi], m[m.roi])
    np.testing.assert_array_equal(MissingAnnotationsMask(m2.config)[m.roi], m[m.roi])
    # axes override and ZarrArray(config)
    z = ZarrArray(ZarrArrayConfig("l", root, "labels/all", axes=["a", "b", "x"]))
    assert z.axes == ["a", "b", "x"]
    # pickling rebuilds from the config
    b3 = pickle.loads(pickle.dumps(b1))
    np.testing.assert_array_equal(b3[b1.roi], want)


def test_snap_to_grid_config(volume):
    root, lab = volume
    src = ZarrArray(root, "labels/all")  # roi [8:104, -4:56, 0:72]
    snapped = ZarrArray(ZarrArrayConfig("s", root, "labels/all", snap_to_grid=(16, 16, 16)))
    # shrink to lcm(voxel_size, snap) = (16, 16, 16)
    assert snapped.roi == src.roi.snap_to_grid((16, 16, 16), mode="shrink")
    roi = snapped.roi
    # reads keep addressing the data by its real offset (no DaCapo shift)
    np.testing.assert_array_equal(snapped[roi], src[roi])


def test_config_missing_keys(volume):
    # The library's own words for the same JSON, not ".../<object object at 0x...>"
    root, _ = volume
    zarr_cfg = {"__type__": "ZarrArrayConfig", "name": "l", "file_name": str(root)}
    for cfg, where in (
            (zarr_cfg, "ZarrArrayConfig.dataset"),
            (json.dumps(zarr_cfg), "ZarrArrayConfig.dataset"),
            ({"__type__": "ZarrArrayConfig", "name": "l", "dataset": "labels/all"},
             "ZarrArrayConfig.file_name"),
            (dict(zarr_cfg, dataset=None), "ZarrArrayConfig.dataset"),
            (ZarrArrayConfig("l", root, None), "ZarrArrayConfig.dataset"),
            ({"__type__": "BinarizeArrayConfig", "name": "gt", "groupings": GROUPS,
              "source_array_config": zarr_cfg},
             "BinarizeArrayConfig.source_array_config.dataset"),
            (BinarizeArrayConfig("gt", ZarrArrayConfig("l", root, None), GROUPS),
             "BinarizeArrayConfig.source_array_config.dataset"),
            ({"__type__": "MissingAnnotationsMaskConfig", "name": "m",
              "source_array_config": dict(zarr_cfg, dataset="labels/all")},
             "MissingAnnotationsMaskConfig.groupings"),
            ({"__type__": "MissingAnnotationsMaskConfig", "name": "m", "groupings": GROUPS},
             "MissingAnnotationsMaskConfig.source_array_config")):
        with pytest.raises(labelbin.FormatError) as e:
            labelbin.from_config(cfg)
        assert str(e.value) == where + ": missing"
    with pytest.raises(labelbin.FormatError) as e:
        ZarrArray(zarr_cfg)
    assert str(e.value) == "ZarrArrayConfig.dataset: missing"


def test_group_names_and_empty_groupings(volume):
    root, lab = volume
    src = os.path.join(root, "labels/all")
    for cls in (BinarizeArray, MissingAnnotationsMask):
        with pytest.raises(ValueError) as e:
            cls(src, [("a", [1]), ("b", [2]), ("a", [3])])
        assert str(e.value) == (
            'groupings[2][0]: group "a" is given twice (groups 0 and 2): every group names an '
            'output channel, so names must be unique; merge the ids into one group or rename '
            'one')
        with pytest.raises(ValueError) as e:
            cls(src, [("a", [1]), ("", [2])])
        assert str(e.value).startswith("groupings[1][0]: group 1 has an empty name")
        for empty in ([], {}):
            with pytest.raises(ValueError) as e:
                cls(src, empty)
            assert "the groupings are empty" in str(e.value)
    # a serialised config gets the same refusal from the library
    cfg = json.dumps({"__type__": "BinarizeArrayConfig", "name": "gt",
                      "source_array_config": {"__type__": "ZarrArrayConfig", "name": "l",
                                              "file_name": str(root), "dataset": "labels/all"},
                      "groupings": [["a", [1]], ["a", [2]]]})
    with pytest.raises(ValueError) as e:
        labelbin.from_config(cfg)
    assert 'group "a" is given twice' in str(e.value)
    # the object form keeps its order
    b = BinarizeArray(src, {"mito": [3, 4, 5], "one": [1]})
    assert b.channels == ["mito", "one"]
    np.testing.assert_array_equal(b[b.roi], dacapo_binarize(lab, [("mito", [3, 4, 5]),
                                                                  ("one", [1])]))


def test_mask_says_why(volume, tmp_path):
    root, lab = volume
    m = MissingAnnotationsMask(os.path.join(root, "labels/all"), GROUPS)
    # id 3 is present but not annotated: mito is off, because of 3
    assert m.masked_off == {"mito": [3]}
    assert m.unlisted_ids == []  # nothing read yet
    roi = Roi((8, -4, 0), (4, 4, 4))
    part = lab[:1, :2, :2]
    m[roi]
    want = sorted(set(part[part > 0].tolist()) - {3, 4})
    assert m.unlisted_ids == want
    m[m.roi]
    # every id > 0 in the data but 3 and 4 is missing from `labels`
    assert m.unlisted_ids == [1, 2, 5, 6, 1000, 2**32 - 1]
    # the writer's reads too; and its stats say how many threads it used
    m2 = MissingAnnotationsMask(os.path.join(root, "labels/all"), GROUPS)
    stats = m2.to_zarr(str(tmp_path / "m.zarr" / "m"), threads=2)
    assert m2.unlisted_ids == [1, 2, 5, 6, 1000, 2**32 - 1]
    assert stats["threads"] == 2
    # no `labels` attribute: nothing to say
    write_zarr(tmp_path / "n.zarr", "l", lab, (8, 16, 10))
    m3 = MissingAnnotationsMask(ZarrArray(tmp_path / "n.zarr", "l"), GROUPS)
    m3[m3.roi]
    assert m3.masked_off == {} and m3.unlisted_ids == []


def test_refused_source_names_the_path(tmp_path):
    write_zarr(tmp_path / "r.zarr", "pred", np.zeros((4, 4, 4), np.float32), (4, 4, 4))
    with pytest.raises(labelbin.FormatError) as e:
        BinarizeArray(str(tmp_path / "r.zarr" / "pred"), GROUPS)
    assert ("%s: cannot binarize a source array of dtype float32: label ids must be integers"
            % (tmp_path / "r.zarr" / "pred")) in str(e.value)


def test_unknown_config_type():
    with pytest.raises(labelbin.FormatError) as e:  # LB_EUNSUPPORTED
        labelbin.from_config({"__type__": "IntensitiesArrayConfig", "name": "x"})
    assert "ZarrArrayConfig" in str(e.value)


# ---- errors ------------------------------------------------------------------------

def test_errors(volume, tmp_path):
    root, lab = volume
    src = ZarrArray(root, "labels/all")
    b = BinarizeArray(src, GROUPS)
    for roi in (Roi((9, -4, 0), (4, 2, 2)),       # offset not aligned
                Roi((8, -4, 0), (4, 3, 2)),       # shape not aligned
                Roi((8, -4, 0), (4000, 2, 2)),    # outside
                Roi((0, -4, 0), (4, 2, 2)),       # before the begin
                Roi((8, -4, 0), (10**15, 2, 2))):  # absurd: ValueError, not MemoryError
        for a in (src, b):
            with pytest.raises(ValueError) as e:
                a[roi]
            assert roi_text(roi) in str(e.value), str(e.value)
    with pytest.raises(ValueError):
        b[Roi((8, -4), (4, 2))]  # wrong dims
    with pytest.raises(FileNotFoundError) as e:
        ZarrArray(root, "labels/nothing")
    assert "nothing" in str(e.value)
    with pytest.raises(FileNotFoundError):
        BinarizeArray(os.path.join(root, "labels/nothing"), GROUPS)
    # malformed annotations: FormatError naming the JSON path
    bad = np.ones((4, 4, 4), np.uint8)
    write_zarr(tmp_path / "bad.zarr", "l", bad, (4, 4, 4),
               {"labels": [{"value": 1, "annotationState": {"present": True,
                                                            "annotated": False}},
                           {"value": 2, "annotationState": {"present": "yes",
                                                            "annotated": True}}]})
    with pytest.raises(labelbin.FormatError) as e:
        MissingAnnotationsMask(ZarrArray(tmp_path / "bad.zarr", "l"), GROUPS)
    assert "labels[1].annotationState.present" in str(e.value)
    assert not issubclass(labelbin.FormatError, ValueError)
    # a source with channels
    ch = np.zeros((2, 4, 4, 4), np.uint8)
    write_zarr(tmp_path / "ch.zarr", "c", ch, (1, 4, 4, 4),
               {"axes": ["c", "z", "y", "x"], "resolution": [1, 1, 1], "offset": [0, 0, 0]})
    chan = ZarrArray(tmp_path / "ch.zarr", "c")
    assert chan.num_channels == 2 and chan.axes == ["c", "z", "y", "x"]
    assert chan[chan.roi].shape == (2, 4, 4, 4)
    for cls in (BinarizeArray, MissingAnnotationsMask):
        with pytest.raises(ValueError) as e:
            cls(chan, GROUPS)
        assert "source array with channels" in str(e.value)
        if cls is BinarizeArray:
            assert "cannot binarize a source array with channels" in str(e.value)
    # virtual arrays have no data view; read-only arrays refuse writes
    with pytest.raises(ValueError) as e:
        b.data
    assert str(e.value) == DACAPO_VIRTUAL
    with pytest.raises(ValueError) as e:
        src[src.roi] = 0
    assert "read-only" in str(e.value)
    with pytest.raises(TypeError):
        BinarizeArray(src, [("x", [1.5])])
    with pytest.raises(ValueError) as e:
        BinarizeArray(src, [("x", [1]), ("y", [2**64])])
    assert "groupings[1][1][0]" in str(e.value)
    with pytest.raises(ValueError):
        ZarrArray(root, "labels/all", mode="w")


# ---- threads ------------------------------------------------------------------------

def test_concurrent_reads(volume):
    root, lab = volume
    b = BinarizeArray(ZarrArray(root, "labels/all"), GROUPS)
    rng = random.Random(SEED)
    vs, whole = b.voxel_size, b.roi
    rois = []
    for _ in range(64):
        lo = [rng.randrange(n) for n in lab.shape]
        hi = [rng.randrange(a + 1, n + 1) for a, n in zip(lo, lab.shape)]
        rois.append(Roi(whole.offset + Coordinate(lo) * vs,
                        (Coordinate(hi) - Coordinate(lo)) * vs))
    serial = [b[r] for r in rois]
    results = [[None] * len(rois) for _ in range(4)]
    errors = []

    def work(t):
        try:
            order = list(range(len(rois)))
            random.Random(SEED + t).shuffle(order)
            for i in order:
                results[t][i] = b[rois[i]]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for t in range(4):
        for i in range(len(rois)):
            np.testing.assert_array_equal(results[t][i], serial[i])
    # with several decoding threads per read, then also a chunk cache; both
    # survive pickling
    b.set_threads(3)
    for i in range(len(rois)):
        np.testing.assert_array_equal(b[rois[i]], serial[i])
    with pytest.raises(ValueError):  # LB_EINVAL
        b.set_threads(-1)
    b.set_cache(1 << 20)
    np.testing.assert_array_equal(b[rois[0]], serial[0])
    np.testing.assert_array_equal(b[rois[0]], serial[0])
    c = pickle.loads(pickle.dumps(b))
    assert c._read_threads == 3 and c._cache_bytes == 1 << 20
    np.testing.assert_array_equal(c[rois[1]], serial[1])
    c.close()
    b.close()
    assert b.closed
    with pytest.raises(ValueError):
        b[rois[0]]


# ---- geometry (funlib.geometry examples, DACAPO_NOTES §1) ----------------------------

def test_roi_coordinate():
    r = Roi((1, 2, 3), (10, 10, 10))
    assert repr(r.snap_to_grid(Coordinate(4, 4, 4), mode="grow")) == "[0:12, 0:12, 0:16] (12, 12, 16)"
    assert repr(r.snap_to_grid((4, 4, 4), mode="shrink")) == "[4:8, 4:12, 4:12] (4, 8, 8)"
    assert repr(r.snap_to_grid(4, mode="closest")) == "[0:12, 0:12, 4:12] (12, 12, 8)"
    assert r.snap_to_grid((4, 4, 4)) == Roi((0, 0, 0), (12, 12, 16))
    n = Roi((-5,), (10,))
    assert n.snap_to_grid((4,), mode="grow") == Roi((-8,), (16,))
    assert repr(n.snap_to_grid((4,), mode="grow")).startswith("[-8:8]")
    assert repr(n.snap_to_grid((4,), mode="shrink")).startswith("[-4:4]")
    with pytest.raises(RuntimeError):
        r.snap_to_grid((4, 4, 4), mode="nearest")
    assert Coordinate(-3) / 2 == (-1,)
    assert Coordinate(-3) // 2 == (-2,)
    assert Coordinate((7, -7)) / Coordinate((2, 2)) == (3, -3)
    assert Coordinate(2.62, 2.0, -2.7) == (2, 2, -2)
    assert repr(Coordinate((2, 4, 4))) == "(2, 4, 4)"
    assert isinstance(Coordinate(1, 2) + (1, 1), Coordinate)
    assert Coordinate(1, 2) + 1 == (2, 3)
    assert Coordinate(1, 2) * Coordinate(3, 4) == (3, 8)
    assert Coordinate(1, 2) - 1 == (0, 1)
    assert Coordinate(5, 6) % 4 == (1, 2)
    assert Coordinate(None, 2) + 1 == (None, 3)
    assert hash(Coordinate(1, 2)) == hash((1, 2))
    assert r.begin == (1, 2, 3) and r.end == (11, 12, 13) and r.dims == 3
    assert r.contains(Roi((1, 2, 3), (1, 1, 1))) and not r.contains(Roi((0, 2, 3), (1, 1, 1)))
    assert r.contains((10, 11, 12)) and not r.contains((11, 11, 12))
    assert r.intersect(Roi((5, 5, 5), (100, 100, 100))) == Roi((5, 5, 5), (6, 7, 8))
    assert r.intersect(Roi((50, 5, 5), (1, 1, 1))).empty
    assert repr(Roi((0,), (0,))) == "[empty ROI]"
    assert r.grow((1, 1, 1), (2, 2, 2)) == Roi((0, 1, 2), (13, 13, 13))
    assert r.grow(1, 1) == Roi((0, 1, 2), (12, 12, 12))
    assert r.shift((1, 1, 1)) == r + (1, 1, 1) == Roi((2, 3, 4), (10, 10, 10))
    assert r - (1, 2, 3) == Roi((0, 0, 0), (10, 10, 10))
    assert r * 2 == Roi((2, 4, 6), (20, 20, 20))
    assert Roi((-3, 4), (6, 6)) / 2 == Roi((-1, 2), (3, 3))
    assert Roi((-3, 4), (6, 6)) // 2 == Roi((-2, 2), (3, 3))
    assert r.to_slices() == (slice(1, 11), slice(2, 12), slice(3, 13))
    assert len({r, Roi((1, 2, 3), (10, 10, 10))}) == 1
    assert Roi((0, 0), (None, 4)).unbounded
    with pytest.raises(AssertionError):
        Roi((0, 0), (1,))


# ---- writes and to_zarr ----------------------------------------------------------------

def test_setitem_and_data_view(tmp_path):
    rng = np.random.default_rng(SEED)
    lab = rng.integers(0, 9, size=(10, 12, 14)).astype("uint16")
    root, ds = write_zarr(tmp_path / "w.zarr", "labels", lab, (4, 5, 6),
                          {"resolution": [2, 2, 2], "offset": [0, 10, 20]}, Zstd(level=1))
    z = ZarrArray(root, ds, mode="r+")
    assert z.writable
    roi = Roi((2, 14, 24), (6, 8, 10))
    block = rng.integers(100, 200, size=(3, 4, 5)).astype("uint16")
    z[roi] = block
    np.testing.assert_array_equal(z[roi], block)
    lab[1:4, 2:6, 2:7] = block
    np.testing.assert_array_equal(zarr.open(root, mode="r")[ds][...], lab)
    z[Roi((0, 10, 20), (2, 2, 2))] = np.ones((1, 1, 1)) * 7  # broadcast, cast
    lab[0, 0, 0] = 7
    z[Roi((18, 10, 20), (2, 24, 28))] = 5  # scalar
    lab[9] = 5
    np.testing.assert_array_equal(z[z.roi], lab)
    np.testing.assert_array_equal(zarr.open(root, mode="r")[ds][...], lab)
    # the index-space view
    v = z.data
    assert v.shape == lab.shape and v.dtype == np.uint16
    np.testing.assert_array_equal(v[...], lab)
    np.testing.assert_array_equal(v[2, 3:7, -4:], lab[2, 3:7, -4:])
    np.testing.assert_array_equal(v[::2, ::-3, 1:10:4], lab[::2, ::-3, 1:10:4])
    assert v[1, 2, 3] == lab[1, 2, 3]
    v[0:2, 0:3, 0:4] = 42
    lab[0:2, 0:3, 0:4] = 42
    np.testing.assert_array_equal(np.asarray(v), lab)
    np.testing.assert_array_equal(zarr.open(root, mode="r")[ds][...], lab)
    with pytest.raises(IndexError):
        v[20]


def test_to_zarr(volume, tmp_path):
    root, lab = volume
    b = BinarizeArray(ZarrArray(root, "labels/all"), GROUPS)
    dest = tmp_path / "out.zarr" / "gt"
    seen = []
    stats = b.to_zarr(dest, threads=2, codec="zstd:3",
                      progress=lambda done, total: seen.append((done, total)))
    assert stats["blocks_total"] >= 1
    assert len(stats["positive"]) == len(GROUPS)
    want = dacapo_binarize(lab, GROUPS)
    assert stats["positive"] == [int(c.sum()) for c in want]
    z = zarr.open(str(dest), mode="r")
    np.testing.assert_array_equal(z[...], want)
    assert z.attrs["resolution"] == list(b.voxel_size)
    assert z.attrs["offset"] == list(b.roi.offset)
    assert z.attrs["axes"] == ["c", "z", "y", "x"]
    assert z.attrs["channels"] == [g[0] for g in GROUPS]
    # read back through labelbin: same geometry
    out = ZarrArray(str(dest))
    assert out.roi == b.roi and out.voxel_size == b.voxel_size and out.num_channels == len(GROUPS)
    np.testing.assert_array_equal(out[b.roi], want)
    with pytest.raises(FileExistsError):
        b.to_zarr(dest)
    assert seen and seen[-1][0] <= seen[-1][1]
    # an exception in the progress callback cancels the run and propagates;
    # resume then completes it
    dest2 = tmp_path / "out.zarr" / "again"

    def stop(done, total):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        b.to_zarr(dest2, threads=1, chunks=(8, 10, 12), progress=stop)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C during the run
        b.to_zarr(dest2, threads=1, chunks=(8, 10, 12), resume=True,
                  progress=lambda done, total: os.kill(os.getpid(), signal.SIGINT))
    stats = b.to_zarr(dest2, threads=1, chunks=(8, 10, 12), resume=True)
    assert stats["blocks_done"] + stats["blocks_skipped"] == stats["blocks_total"]
    np.testing.assert_array_equal(zarr.open(str(dest2), mode="r")[...], want)
    sub = Roi((16, 0, 8), (32, 20, 24))
    b.to_zarr(dest, roi=sub, overwrite=True, chunks=(8, 10, 12))
    z = zarr.open(str(dest), mode="r")
    np.testing.assert_array_equal(z[...], b[sub])


def test_create_dataset(tmp_path):
    a = labelbin.create_dataset(tmp_path / "c.zarr" / "seg", (6, 8, 10), (3, 4, 5),
                                dtype="int16", codec="gzip:1",
                                attrs={"resolution": [4, 4, 4], "offset": [0, 0, 0]})
    data = np.arange(480, dtype="int16").reshape(6, 8, 10) - 200
    a[a.roi] = data
    np.testing.assert_array_equal(zarr.open(str(tmp_path / "c.zarr" / "seg"))[...], data)
