"""Data written by other tools reads right or is refused with a clear message.

Each test writes data the way another tool writes it — with zarr-python 2.13
and numcodecs 0.11 where they can, else the exact bytes that tool writes —
and checks labelbin's reading against an independent oracle: zarr-python
reading the same files, or numpy.

- old nested-layout Zarr v2 arrays (no dimension_separator in .zarray)
- z5py's padded blosc chunks; zlib streams under the gzip names
- bool arrays with an integer fill value; zstd levels outside 1..22
- OME-NGFF label images in micrometres, t/c/z/y/x images, multiscales two
  levels down outside a *.zarr container
- N5 pyramids in the n5-viewer, neuroglancer and BigDataViewer layouts
- funlib's order-F reversal, 4-D arrays without axes, 0/1 annotation flags

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/py_foreign.py
(CTest sets LB_BUILD_DIR and PYTHONPATH). Random data is seeded (LB_SEED).
"""

import gzip
import json
import os
import pathlib
import struct
import subprocess
import zlib

import numcodecs
import numpy as np
import pytest
import zarr

import labelbin
from labelbin import BinarizeArray, MissingAnnotationsMask, Roi, ZarrArray

SEED = int(os.environ.get("LB_SEED", "20240611"))
_SRC = pathlib.Path(os.environ.get("LB_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[1]))
BUILD = pathlib.Path(os.environ.get("LB_BUILD_DIR", _SRC / "build"))
CLI = BUILD / "labelbin"
GROUPS = [("a", [1, 2]), ("b", [3]), ("fg", [])]

# zarr's N5 store warns that blosc is not portable N5; z5py wrote it anyway.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Not all N5 implementations:RuntimeWarning")


def rng_for(name):
    print("py_foreign: seed", SEED, "(set LB_SEED to change)")
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def labels(shape, dtype, rng, top=6):
    """Label-like blocks of a few ids."""
    coarse = rng.integers(0, top, size=tuple(max(1, s // 3) for s in shape))
    up = coarse
    for ax, s in enumerate(shape):
        up = np.repeat(up, 3, axis=ax).take(range(s), axis=ax, mode="clip")
    return up.astype(dtype)


def edit_json(path, fn):
    meta = json.loads(path.read_text())
    fn(meta)
    path.write_text(json.dumps(meta, indent=4))


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=4))


def cli(*args):
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def dacapo_binarize(lab, groups, background=0):
    return np.stack([(lab != background) if not ids else np.isin(lab, ids)
                     for _, ids in groups]).astype(np.uint8)


# ---- 1. nested layout without dimension_separator (zarr-python < 2.8) --------

@pytest.mark.parametrize("dtype,compressor", [
    ("u8", numcodecs.Blosc("zstd", 5, numcodecs.Blosc.BITSHUFFLE)),
    ("<u2", numcodecs.GZip(5)),
    ("u1", None),
])
def test_nested_layout_without_separator(dtype, compressor, tmp_path):
    rng = rng_for(f"nested-{dtype}")
    shape, chunks = (9, 10, 7), (4, 3, 5)
    path = tmp_path / "old.zarr" / "labels"
    z = zarr.open_array(zarr.NestedDirectoryStore(str(path)), mode="w", shape=shape,
                        chunks=chunks, dtype=dtype, compressor=compressor, fill_value=3)
    data = labels(shape, dtype, rng)
    z[:, :6, :] = data[:, :6, :]  # chunks beyond y 6 stay absent (fill 3)
    # what zarr-python wrote before dimension_separator existed
    edit_json(path / ".zarray", lambda m: m.pop("dimension_separator"))
    assert (path / "0" / "0" / "0").is_file() and not (path / "0.0.0").exists()
    oracle = zarr.open_array(zarr.NestedDirectoryStore(str(path)), mode="r")[...]
    assert (oracle[:, 6:, :] == 3).all()

    a = ZarrArray(str(path))
    np.testing.assert_array_equal(a.data[...], oracle)
    np.testing.assert_array_equal(a[a.roi], oracle)

    # writes keep the nested layout that zarr-python reads back
    w = ZarrArray(str(path), mode="r+")
    w.data[1:3, 5:9, 2:4] = np.full((2, 4, 2), 5, dtype)
    oracle[1:3, 5:9, 2:4] = 5
    back = zarr.open_array(zarr.NestedDirectoryStore(str(path)), mode="r")[...]
    np.testing.assert_array_equal(back, oracle)
    assert not any(p.name.count(".") == 2 for p in path.iterdir())


def test_nested_and_flat_chunks_together_are_refused(tmp_path):
    path = tmp_path / "mixed.zarr" / "labels"
    z = zarr.open_array(zarr.NestedDirectoryStore(str(path)), mode="w", shape=(4, 4),
                        chunks=(2, 2), dtype="u1", compressor=None)
    z[...] = 1
    edit_json(path / ".zarray", lambda m: m.pop("dimension_separator"))
    (path / "1.1").write_bytes(bytes(4))  # a flat key too
    with pytest.raises(labelbin.FormatError) as e:
        ZarrArray(str(path))
    msg = str(e.value)
    assert f"{path}: chunks are stored both as flat keys (\"1.1\") and in nested " \
           "directories (\"" in msg
    assert "dimension_separator" in msg
    proc = cli("info", path)
    assert proc.returncode == 1
    assert str(path) in proc.stderr and "dimension_separator" in proc.stderr


# ---- 2. z5py's padded blosc chunks --------------------------------------------

@pytest.mark.parametrize("fmt", ["zarr", "n5"])
@pytest.mark.parametrize("cname,shuffle", [("lz4", 1), ("zstd", 2), ("blosclz", 0)])
def test_blosc_chunks_padded_by_z5py(fmt, cname, shuffle, tmp_path):
    rng = rng_for(f"pad-{fmt}-{cname}")
    shape, chunks = (10, 12, 9), (5, 5, 5)
    data = labels(shape, "u4", rng, top=40)
    data[0] = rng.integers(0, 2**32, size=shape[1:], dtype="u4")  # memcpyed frames too
    comp = numcodecs.Blosc(cname, 5, shuffle)
    if fmt == "zarr":
        root = tmp_path / "z5.zarr"
        z = zarr.open_array(str(root / "d"), mode="w", shape=shape, chunks=chunks,
                            dtype="u4", compressor=comp)
    else:
        root = tmp_path / "z5.n5"
        z = zarr.open_array(store=zarr.N5Store(str(root)), path="d", mode="w", shape=shape,
                            chunks=chunks, dtype="u4", compressor=comp)
    z[...] = data
    chunk_files = [p for p in (root / "d").rglob("*") if p.is_file()
                   and not p.name.startswith((".", "attributes"))]
    assert chunk_files
    for p in chunk_files:  # z5py < 2.0.10 wrote 16 bytes after each frame
        p.write_bytes(p.read_bytes() + bytes(16))
    if fmt == "zarr":
        oracle = zarr.open_array(str(root / "d"), mode="r")[...]
    else:
        oracle = zarr.open_array(store=zarr.N5Store(str(root)), path="d", mode="r")[...]
    np.testing.assert_array_equal(oracle, data)  # zarr-python reads them
    np.testing.assert_array_equal(ZarrArray(str(root), "d").data[...], oracle)

    # a frame cut short is still refused, naming the chunk
    victim = sorted(chunk_files)[0]
    victim.write_bytes(victim.read_bytes()[:-20])
    with pytest.raises(labelbin.FormatError) as e:
        ZarrArray(str(root), "d").data[...]
    assert str(victim) in str(e.value) and "truncated" in str(e.value)


# ---- 3. zlib streams under the gzip names (old z5py), gzip under useZlib ------

def test_zlib_stream_under_zarr_gzip(tmp_path):
    rng = rng_for("zlib-under-gzip")
    shape, chunks = (6, 8), (3, 4)
    data = labels(shape, "<u2", rng, top=300)
    path = tmp_path / "z5.zarr" / "d"
    write_json(path / ".zarray", {
        "chunks": list(chunks), "compressor": {"id": "gzip", "level": 5}, "dtype": "<u2",
        "fill_value": 0, "filters": None, "order": "C", "shape": list(shape),
        "zarr_format": 2})
    for i in range(2):
        for j in range(2):
            block = np.ascontiguousarray(data[i * 3:(i + 1) * 3, j * 4:(j + 1) * 4])
            raw = block.tobytes()
            # old z5py: zlib streams; a few chunks as a gzip writer would
            body = gzip.compress(raw) if (i, j) == (1, 1) else zlib.compress(raw, 1 + 3 * j)
            (path / f"{i}.{j}").write_bytes(body)
    np.testing.assert_array_equal(ZarrArray(str(path)).data[...], data)


@pytest.mark.parametrize("use_zlib,stream", [(False, "zlib"), (True, "gzip"),
                                             (False, "gzip"), (True, "zlib")])
def test_n5_gzip_either_container(use_zlib, stream, tmp_path):
    rng = rng_for(f"n5-gzip-{use_zlib}-{stream}")
    shape = (5, 7)  # C order; N5 lists (7, 5)
    data = labels(shape, ">i8", rng, top=1000) - 500
    path = tmp_path / "g.n5" / "d"
    write_json(tmp_path / "g.n5" / "attributes.json", {"n5": "2.0.0"})
    write_json(path / "attributes.json", {
        "dimensions": [7, 5], "blockSize": [7, 5], "dataType": "int64",
        "compression": {"type": "gzip", "level": -1, "useZlib": use_zlib}})
    raw = np.ascontiguousarray(data, dtype=">i8").tobytes()
    body = zlib.compress(raw) if stream == "zlib" else gzip.compress(raw)
    header = struct.pack(">HHII", 0, 2, 7, 5)
    (path / "0").mkdir()
    (path / "0" / "0").write_bytes(header + body)
    np.testing.assert_array_equal(ZarrArray(str(path)).data[...], data)


# ---- 4. bool arrays with fill_value 0 / 1 --------------------------------------

@pytest.mark.parametrize("fill", [0, 1])
def test_bool_fill_value_integer(fill, tmp_path):
    path = tmp_path / "b.zarr" / "mask"
    z = zarr.open_array(str(path), mode="w", shape=(5, 6), chunks=(2, 3), dtype=bool)
    z[:2, :3] = [[True, False, True], [False, True, False]]
    # zarr-python 2 and zarr.js write an integer here
    edit_json(path / ".zarray", lambda m: m.update(fill_value=fill))
    oracle = zarr.open_array(str(path), mode="r")[...]
    assert oracle[4, 5] == bool(fill)
    got = ZarrArray(str(path)).data[...]
    np.testing.assert_array_equal(got.astype(bool), oracle)


# ---- 5. zstd levels outside 1..22 ---------------------------------------------

@pytest.mark.parametrize("level", [0, -5, 23, 99])
def test_zstd_level_outside_1_to_22(level, tmp_path):
    rng = rng_for(f"zstd-{level}")
    path = tmp_path / "z.zarr" / "d"
    z = zarr.open_array(str(path), mode="w", shape=(8, 9), chunks=(4, 9), dtype="u8",
                        compressor=numcodecs.Zstd(level=level))
    data = labels((8, 9), "u8", rng)
    z[...] = data
    assert json.loads((path / ".zarray").read_text())["compressor"]["level"] == level
    a = ZarrArray(str(path))
    np.testing.assert_array_equal(a.data[...], zarr.open_array(str(path), mode="r")[...])
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    w = ZarrArray(str(path), mode="r+")
    if -131072 <= level <= 22:
        w.data[0:1, 0:1] = np.array([[7]], "u8")
        assert zarr.open_array(str(path), mode="r")[0, 0] == 7
    else:
        with pytest.raises(ValueError) as e:
            w.data[0:1, 0:1] = np.array([[7]], "u8")
        assert f"zstd level {level} cannot be used to compress: the valid levels are " \
               "-131072..22" in str(e.value)
        assert {p.name: p.read_bytes() for p in path.iterdir()} == before


# ---- 6/7/9. OME-NGFF: units, t/c/z/y/x images, paths two levels down -----------

def ome_axes(units, time=False, channel=False):
    axes = []
    if time:
        axes.append({"name": "t", "type": "time", "unit": "second"})
    if channel:
        axes.append({"name": "c", "type": "channel"})
    axes += [{"name": n, "type": "space", "unit": u} for n, u in zip("zyx", units)]
    return axes


def write_ome_labels(group, arrays, axes, scales, translations, nested=True):
    """An OME-NGFF 0.4 image-label group as ome-zarr-py writes it: arrays
    "0", "1", … with "/" chunk keys, multiscales on the group."""
    g = zarr.open_group(str(group), mode="a")
    datasets = []
    for k, (arr, sc, tr) in enumerate(zip(arrays, scales, translations)):
        g.create_dataset(str(k), data=arr, chunks=tuple(min(4, s) for s in arr.shape),
                         dimension_separator="/" if nested else ".",
                         compressor=numcodecs.Blosc("zstd", 5, 1), overwrite=True)
        datasets.append({"path": str(k), "coordinateTransformations": [
            {"type": "scale", "scale": sc}, {"type": "translation", "translation": tr}]})
    g.attrs.update({"multiscales": [{"version": "0.4", "name": group.name, "axes": axes,
                                     "datasets": datasets}],
                    "image-label": {"version": "0.4", "colors": []}})


def test_ome_ngff_labels_in_micrometres(tmp_path):
    rng = rng_for("ome-um")
    s0 = labels((6, 8, 10), "u4", rng)
    s1 = s0[::2, ::2, ::2]
    group = tmp_path / "image.zarr" / "labels" / "cells"
    write_ome_labels(group, [s0, s1], ome_axes(["micrometer"] * 3),
                     [[0.5, 0.25, 0.004], [1.0, 0.5, 0.008]],
                     [[1.0, -0.5, 0.012], [2.0, -1.0, 0.016]])
    for k, arr in enumerate([s0, s1]):
        a = ZarrArray(str(group), str(k))
        vs = np.round(np.array([[0.5, 0.25, 0.004], [1.0, 0.5, 0.008]][k]) * 1000)
        off = np.round(np.array([[1.0, -0.5, 0.012], [2.0, -1.0, 0.016]][k]) * 1000)
        assert tuple(a.voxel_size) == tuple(int(v) for v in vs)
        assert tuple(a.roi.offset) == tuple(int(o) for o in off)
        assert tuple(a.roi.shape) == tuple(int(v) * s for v, s in zip(vs, arr.shape))
        assert a.axes == ["z", "y", "x"]
        assert not a.warnings
        np.testing.assert_array_equal(a[a.roi], arr)
    # a world ROI in nanometres picks the same voxels from both scales
    a0, a1 = ZarrArray(str(group), "0"), ZarrArray(str(group), "1")
    roi = Roi((2000, -1000, 16), (2000, 1000, 32))
    np.testing.assert_array_equal(a1[roi], s1[0:2, 0:2, 0:4])
    roi0 = Roi((1000, -500, 12), (2000, 1000, 40))
    np.testing.assert_array_equal(a0[roi0], s0[0:4, 0:4, 0:10])

    # not a whole number of nanometres: refused, naming axis, unit and value
    edit_json(group / ".zattrs", lambda m: m["multiscales"][0]["datasets"][0][
        "coordinateTransformations"][0].update(scale=[0.5, 0.0005, 0.004]))
    with pytest.raises(labelbin.FormatError) as e:
        ZarrArray(str(group), "0")
    assert "axis \"y\": scale 0.0005 micrometer is 0.5 nm, not a whole number of " \
           "nanometres" in str(e.value)
    assert str(group / ".zattrs") in str(e.value)


def test_ome_ngff_tczyx_label_image(tmp_path):
    rng = rng_for("ome-tczyx")
    lab = labels((5, 6, 7), "u2", rng)
    group = tmp_path / "image.zarr" / "labels" / "organelles"
    write_ome_labels(group, [lab[None, None]], ome_axes(["micrometer"] * 3, True, True),
                     [[1.0, 1.0, 0.008, 0.004, 0.004]], [[0.0, 0.0, 0.0, 0.0, 0.0]])
    a = ZarrArray(str(group), "0")
    assert a.axes == ["t", "c", "z", "y", "x"]
    assert tuple(a.voxel_size) == (8, 4, 4)
    assert a.num_channels == 1
    np.testing.assert_array_equal(a[a.roi], lab[None, None])

    b = BinarizeArray(a, GROUPS)
    assert b.axes == ["c", "z", "y", "x"]
    np.testing.assert_array_equal(b[b.roi], dacapo_binarize(lab, GROUPS))
    m = MissingAnnotationsMask(ZarrArray(str(group), "0"), GROUPS)
    assert m.axes == ["c", "z", "y", "x"]
    np.testing.assert_array_equal(m[m.roi], np.stack([lab > 0] * len(GROUPS)).astype(np.uint8))
    # through the CLI and back through zarr-python
    out = tmp_path / "out.zarr" / "gt"
    proc = cli("binarize", group / "0", out, "-g", "a=1,2", "-g", "b=3", "-g", "fg=")
    assert proc.returncode == 0, proc.stderr
    got = zarr.open_array(str(out), mode="r")[...]
    np.testing.assert_array_equal(got, dacapo_binarize(lab, GROUPS))

    # two channels are real channels: refused
    group2 = tmp_path / "image.zarr" / "labels" / "two"
    write_ome_labels(group2, [np.stack([lab, lab])[None]],
                     ome_axes(["micrometer"] * 3, True, True),
                     [[1.0, 1.0, 0.008, 0.004, 0.004]], [[0.0] * 5])
    with pytest.raises(ValueError) as e:
        BinarizeArray(ZarrArray(str(group2), "0"), GROUPS)
    assert "with channels" in str(e.value)


@pytest.mark.parametrize("container", ["crop", "crop.zarr"])
def test_ome_ngff_paths_two_levels_down(container, tmp_path):
    rng = rng_for("ome-two-levels")
    lab = labels((4, 5, 6), "u1", rng)
    root = tmp_path / container
    g = zarr.open_group(str(root), mode="w")
    g.create_dataset("labels/s0", data=lab, chunks=(2, 5, 6))
    g.attrs["multiscales"] = [{"version": "0.4", "axes": ome_axes(["nanometer"] * 3),
                               "datasets": [{"path": "labels/s0", "coordinateTransformations": [
                                   {"type": "scale", "scale": [8.0, 4.0, 4.0]},
                                   {"type": "translation", "translation": [80.0, 40.0, 0.0]}]}]}]
    a = ZarrArray(str(root), "labels/s0")
    assert tuple(a.voxel_size) == (8, 4, 4)
    assert tuple(a.roi.offset) == (80, 40, 0)
    np.testing.assert_array_equal(a[a.roi], lab)


# ---- 8. N5 pyramids -------------------------------------------------------------

def n5_level(root, path, data, attrs):
    z = zarr.open_array(store=zarr.N5Store(str(root)), path=path, mode="w", shape=data.shape,
                        chunks=tuple(min(4, s) for s in data.shape), dtype=data.dtype,
                        compressor=numcodecs.GZip(-1))
    z[...] = data
    z.attrs.update(attrs)


def pyramid(rng):
    s0 = labels((8, 16, 16), "u8", rng)
    # factors in N5's x, y, z order: (2, 2, 1) then (4, 4, 2)
    return [(s0, [1, 1, 1]), (s0[:, ::2, ::2], [2, 2, 1]), (s0[::2, ::4, ::4], [4, 4, 2])]


def check_pyramid(open_level, levels, base_zyx, offset_zyx=(0, 0, 0)):
    world = None
    for k, (arr, f) in enumerate(levels):
        a = open_level(k)
        want = tuple(b * ff for b, ff in zip(base_zyx, f[::-1]))
        assert tuple(a.voxel_size) == want, f"s{k}"
        assert tuple(a.roi.offset) == tuple(offset_zyx)
        # every level covers the same world box
        world = world or tuple(a.roi.shape)
        assert tuple(a.roi.shape) == world, f"s{k}"
        np.testing.assert_array_equal(a[a.roi], arr)


def test_n5_viewer_per_dataset_factors(tmp_path):
    """n5-viewer / n5-spark: every scale carries pixelResolution (the base)
    and downsamplingFactors."""
    levels = pyramid(rng_for("n5-viewer"))
    root = tmp_path / "em.n5"
    for k, (arr, f) in enumerate(levels):
        attrs = {"pixelResolution": {"unit": "nm", "dimensions": [4.0, 4.0, 40.0]}}
        if k:
            attrs["downsamplingFactors"] = f
        n5_level(root, f"c0/s{k}", arr, attrs)
    check_pyramid(lambda k: ZarrArray(str(root), f"c0/s{k}"), levels, (40, 4, 4))


def test_n5_viewer_group_scales(tmp_path):
    """n5-viewer's older layout (and fibsem-tools' neuroglancer N5 groups):
    the group holds scales and the base pixelResolution."""
    levels = pyramid(rng_for("n5-group"))
    root = tmp_path / "em.n5"
    for k, (arr, _) in enumerate(levels):
        n5_level(root, f"volumes/raw/s{k}", arr, {})
    g = zarr.open_group(store=zarr.N5Store(str(root)), path="volumes/raw", mode="a")
    g.attrs.update({"scales": [f for _, f in levels], "axes": ["x", "y", "z"],
                    "units": ["nm", "nm", "nm"],
                    "pixelResolution": {"unit": "nm", "dimensions": [4, 4, 40]},
                    "offset": [32, 32, 160]})
    check_pyramid(lambda k: ZarrArray(str(root), f"volumes/raw/s{k}"), levels, (40, 4, 4),
                  (160, 32, 32))


def test_bigdataviewer_n5(tmp_path):
    """BigDataViewer's N5: factors on the setup and on each level, the
    resolution in its XML: voxel sizes in units of s0's voxels."""
    levels = pyramid(rng_for("bdv"))
    root = tmp_path / "dataset.n5"
    for k, (arr, f) in enumerate(levels):
        n5_level(root, f"setup0/timepoint0/s{k}", arr, {"downsamplingFactors": f})
    write_json(root / "setup0" / "attributes.json",
               {"downsamplingFactors": [f for _, f in levels], "dataType": "uint64"})
    check_pyramid(lambda k: ZarrArray(str(root), f"setup0/timepoint0/s{k}"), levels, (1, 1, 1))


# ---- 10. funlib's rules ------------------------------------------------------------

def test_order_f_reverses_like_funlib(tmp_path):
    """funlib.persistence reverses resolution/offset for order "F" (the
    `order` attribute, else the array's order), as for N5."""
    rng = rng_for("order-f")
    data = labels((4, 5, 6), "u2", rng)
    path = tmp_path / "f.zarr" / "d"
    z = zarr.open_array(str(path), mode="w", shape=data.shape, chunks=(2, 5, 3), dtype="u2",
                        order="F")
    z[...] = data
    res_zyx, off_zyx = np.array([8, 4, 2]), np.array([80, 40, 20])
    z.attrs.update({"resolution": res_zyx[::-1].tolist(), "offset": off_zyx[::-1].tolist(),
                    "axes": ["x", "y", "z"]})
    a = ZarrArray(str(path))
    assert tuple(a.voxel_size) == tuple(res_zyx)
    assert tuple(a.roi.offset) == tuple(off_zyx)
    assert a.axes == ["z", "y", "x"]
    np.testing.assert_array_equal(a[a.roi], zarr.open_array(str(path), mode="r")[...])
    z.attrs["order"] = "C"  # funlib's attribute wins over the array's order
    a = ZarrArray(str(path))
    assert tuple(a.voxel_size) == tuple(res_zyx[::-1])


def test_channel_axes_with_a_voxel_size_too_long(tmp_path):
    path = tmp_path / "c.zarr" / "d"
    z = zarr.open_array(str(path), mode="w", shape=(2, 4, 5, 6), chunks=(1, 4, 5, 6), dtype="u1")
    z.attrs.update({"axes": ["c", "z", "y", "x"], "resolution": [1, 4, 4, 4]})
    with pytest.raises(labelbin.FormatError) as e:
        ZarrArray(str(path))
    msg = str(e.value)
    assert "resolution has 4 entries but " in msg and "has 3 spatial axes (z, y, x)" in msg
    assert "must come first" not in msg


def test_four_dims_without_axes(tmp_path):
    """funlib >= 0.3: without metadata the last min(ndim, 3) dims are spatial."""
    path = tmp_path / "n.zarr" / "d"
    zarr.open_array(str(path), mode="w", shape=(3, 4, 5, 6), chunks=(1, 4, 5, 6), dtype="u1")
    a = ZarrArray(str(path))
    assert a.axes == ["c", "z", "y", "x"]
    assert a.num_channels == 3 and tuple(a.voxel_size) == (1, 1, 1)


def test_annotation_flags_as_integers(tmp_path):
    """DaCapo's LabelList (pydantic bool) takes 0/1 for the flags."""
    rng = rng_for("ann01")
    lab = labels((4, 6, 6), "u1", rng, top=5)
    path = tmp_path / "crop.zarr" / "labels" / "all"
    z = zarr.open_array(str(path), mode="w", shape=lab.shape, chunks=lab.shape, dtype="u1")
    z[...] = lab
    z.attrs["labels"] = [
        {"value": 1, "name": {"long": "a", "short": "a"},
         "annotationState": {"present": 1, "annotated": 1}},
        {"value": 3, "name": {"long": "b", "short": "b"},
         "annotationState": {"present": 1, "annotated": 0}},
        {"value": 4, "name": {"long": "c", "short": "c"},
         "annotationState": {"present": 0, "annotated": 0}},
    ]
    m = MissingAnnotationsMask(ZarrArray(str(path)), GROUPS)
    assert m.annotations == "boolean"
    want = np.stack([lab > 0, np.zeros_like(lab, bool), lab > 0]).astype(np.uint8)
    np.testing.assert_array_equal(m[m.roi], want)
