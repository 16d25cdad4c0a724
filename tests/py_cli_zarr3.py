"""Zarr v3 through the CLI: `--format zarr3`, `--shard`, `--channel-chunks`,
OME-NGFF 0.5, `sample --format zarr3`, what `info` says about each format,
usage errors, and `--resume` of a sharded run that was killed or cancelled.

Every output is read back twice — by labelbin (the Python module) and by
tests/v3/shard_writer.py's strict reader, which follows the specification
and shares no code with labelbin — and compared value for value with the
Zarr v2 output of the same job read by zarr-python.

Environment: LB_BUILD_DIR (holds `labelbin` and python/), LB_SOURCE_DIR.
Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/py_cli_zarr3.py
"""
import json
import os
import signal
import subprocess
import sys
import time

import numcodecs
import numpy as np
import pytest
import zarr
from zarr.n5 import N5Store

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "build"))
LABELBIN = os.path.abspath(os.path.join(BUILD, "labelbin"))
sys.path.insert(0, os.path.join(HERE, "v3"))
if os.path.join(BUILD, "python") not in sys.path:
    sys.path.insert(0, os.path.join(BUILD, "python"))
import labelbin  # noqa: E402
import shard_writer as sw  # noqa: E402

# CellMap groups over the sample's ids: 5 (mito_ribo) is present but not
# annotated, so the mask switches "mito" off; "cell=" is an empty group.
GROUPS = ["mito=3,4,5", "er=16,17", "nucleus=20,21,22,23,24,28,29", "perox=47,48", "cell="]
G_ARGS = [x for g in GROUPS for x in ("-g", g)]
SHAPE = (40, 64, 72)      # partial edge chunks and shards in z and x
CHUNKS = (16, 32, 32)
SHARD = (32, 64, 64)


def lb(*args, timeout=300):
    p = subprocess.run([LABELBIN, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def csv(v):
    return ",".join(str(x) for x in v)


def zjson(path):
    with open(os.path.join(path, "zarr.json")) as f:
        return json.load(f)


def chunk_files(path):
    """The chunk (or shard) files of a Zarr v3 array with the default key
    encoding: everything under `c/`."""
    out = []
    for d, _, files in os.walk(os.path.join(path, "c")):
        out += [os.path.relpath(os.path.join(d, f), path) for f in files]
    return sorted(out)


def tree_files(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def read_lb(path):
    return labelbin.ZarrArray(str(path)).to_ndarray()


def assert_same_values(got, want, what):
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        raise AssertionError("%s: %d values differ, first at %s"
                             % (what, len(bad), bad[:5].tolist()))


def expected_files(data, block, together):
    """How many chunk files a writer that skips all-zero chunks leaves for
    `data` (channels first) cut into spatial `block`s: one per channel per
    block with a non-zero voxel, or (together) one per non-zero block."""
    n = 0
    grid = [-(-s // b) for s, b in zip(data.shape[1:], block)]
    for pos in np.ndindex(*grid):
        sl = tuple(slice(p * b, (p + 1) * b) for p, b in zip(pos, block))
        part = data[(slice(None),) + sl]
        if together:
            n += int(part.any())
        else:
            n += sum(int(part[c].any()) for c in range(part.shape[0]))
    return n


def summary_count(out):
    """The chunk (or shard) count of the summary line "wrote DEST: ..."."""
    line = [l for l in out.splitlines() if l.startswith("wrote ")][-1]
    words = line.split(", ")
    n, unit = words[1].split()[:2]
    return int(n), unit


# ---------------------------------------------------------------------------
# Sources: the same sample crop as Zarr v2 and as sharded Zarr v3
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crop(tmp_path_factory):
    d = tmp_path_factory.mktemp("crop")
    v2 = d / "crop.zarr" / "labels"
    v3 = d / "crop3.zarr" / "labels"
    rc, _, err = lb("sample", "--shape", csv(SHAPE), "--chunks", csv(CHUNKS), v2)
    assert rc == 0, err
    rc, out, err = lb("sample", "--shape", csv(SHAPE), "--chunks", csv(CHUNKS),
                      "--format", "zarr3", "--shard", csv(SHARD), v3)
    assert rc == 0, err
    assert out.startswith("wrote %s: uint64 (40, 64, 72) voxels" % v3)
    return d, v2, v3


@pytest.fixture(scope="module")
def config_files(crop):
    d, _, _ = crop
    src = {"__type__": "ZarrArrayConfig", "name": "labels",
           "file_name": str(d / "crop.zarr"), "dataset": "labels"}
    groupings = [[g.split("=")[0], [int(i) for i in g.split("=")[1].split(",") if i]]
                 for g in GROUPS]
    out = {}
    for kind, typ in (("bin", "BinarizeArrayConfig"), ("mask", "MissingAnnotationsMaskConfig")):
        p = d / ("%s.json" % kind)
        p.write_text(json.dumps({"__type__": typ, "name": kind, "source_array_config": src,
                                 "groupings": groupings}))
        out[kind] = p
    return out


def job(cmd, crop, config_files, dest, *extra):
    """The CLI arguments of one of the three jobs writing to `dest`."""
    _, v2, _ = crop
    if cmd == "binarize":
        return ["binarize", v2, dest, *G_ARGS, *extra]
    if cmd == "mask":
        return ["mask", v2, dest, *G_ARGS, *extra]
    return ["run", config_files["bin"], dest, *extra]


@pytest.fixture(scope="module")
def references(crop, config_files, tmp_path_factory):
    """Each job's Zarr v2 output (the default layout), read by zarr-python."""
    d = tmp_path_factory.mktemp("ref")
    refs = {}
    for cmd in ("binarize", "mask", "run"):
        dest = d / "ref.zarr" / cmd
        rc, _, err = lb(*job(cmd, crop, config_files, dest, "-q"))
        assert rc == 0, err
        z = zarr.open(str(dest), mode="r")
        refs[cmd] = (z[...], z.attrs.asdict())
    # the jobs differ, or the comparisons below would prove little
    assert not np.array_equal(refs["binarize"][0], refs["mask"][0])
    assert refs["binarize"][0][:4].any() and not refs["mask"][0][0].any()
    return refs


# ---------------------------------------------------------------------------
# sample --format zarr3 [--shard]
# ---------------------------------------------------------------------------

def test_sample_zarr3_sharded_is_the_v2_sample(crop):
    _, v2, v3 = crop
    want = zarr.open(str(v2), mode="r")[...]
    assert_same_values(read_lb(v3), want, "labelbin reading the v3 sample")
    assert_same_values(sw.read_array(str(v3)), want, "the strict reader on the v3 sample")
    meta = zjson(v3)
    assert meta["zarr_format"] == 3 and meta["node_type"] == "array"
    assert meta["data_type"] == "uint64" and meta["shape"] == list(SHAPE)
    assert meta["dimension_names"] == ["z", "y", "x"]
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == list(SHARD)
    (sh,) = meta["codecs"]
    assert sh["name"] == "sharding_indexed"
    assert sh["configuration"]["chunk_shape"] == list(CHUNKS)
    # one file per shard: 2 x 1 x 2 shards over (40, 64, 72)
    assert len(chunk_files(v3)) == 4
    # the same metadata as the v2 sample (geometry, the labels list)
    a2 = zarr.open(str(v2), mode="r").attrs.asdict()
    assert meta["attributes"] == a2


def test_sample_zarr3_unsharded(tmp_path, crop):
    _, v2, _ = crop
    dest = tmp_path / "s.zarr" / "labels"
    rc, _, err = lb("sample", "--shape", csv(SHAPE), "--chunks", csv(CHUNKS),
                    "--format", "zarr3", "--codec", "gzip:5", dest)
    assert rc == 0, err
    meta = zjson(dest)
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == list(CHUNKS)
    assert [c["name"] for c in meta["codecs"]] == ["bytes", "gzip"]
    assert len(chunk_files(dest)) == 3 * 2 * 3
    want = zarr.open(str(v2), mode="r")[...]
    assert_same_values(read_lb(dest), want, "labelbin")
    assert_same_values(sw.read_array(str(dest)), want, "strict reader")


def test_sample_shard_larger_than_the_volume(tmp_path, crop):
    # a chunk larger than the volume shrinks to it, and so does its shard
    # (z); shards larger than the volume are valid Zarr (y, x)
    _, v2, _ = crop
    dest = tmp_path / "s.zarr" / "labels"
    rc, _, err = lb("sample", "--shape", csv(SHAPE), "--chunks", "64,64,64",
                    "--format", "zarr3", "--shard", "128,128,128", dest)
    assert rc == 0, err
    meta = zjson(dest)
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [40, 128, 128]
    assert meta["codecs"][0]["configuration"]["chunk_shape"] == [40, 64, 64]
    assert len(chunk_files(dest)) == 1
    assert_same_values(sw.read_array(str(dest)), zarr.open(str(v2), mode="r")[...], "values")


# ---------------------------------------------------------------------------
# binarize / mask / run to Zarr v3: values, layout, file counts
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["binarize", "mask", "run"])
@pytest.mark.parametrize("sharded", [False, True], ids=["unsharded", "sharded"])
@pytest.mark.parametrize("layout", ["separate", "together"])
def test_zarr3_output_equals_zarr2(tmp_path, crop, config_files, references, cmd, sharded,
                                   layout):
    dest = tmp_path / "o.zarr" / cmd
    extra = ["--format", "zarr3", "--chunks", csv(CHUNKS), "--channel-chunks", layout]
    if sharded:
        extra += ["--shard", csv(SHARD)]
    rc, out, err = lb(*job(cmd, crop, config_files, dest, *extra, "-j", "2"))
    assert rc == 0, err
    want, want_attrs = references[cmd]
    assert_same_values(read_lb(dest), want, "labelbin reading %s" % dest)
    assert_same_values(sw.read_array(str(dest)), want, "the strict reader on %s" % dest)

    nch = want.shape[0]
    lead = nch if layout == "together" else 1
    meta = zjson(dest)
    assert meta["data_type"] == "uint8" and meta["shape"] == list(want.shape)
    assert meta["dimension_names"] == ["c", "z", "y", "x"]
    grid = meta["chunk_grid"]["configuration"]["chunk_shape"]
    if sharded:
        assert grid == [lead, *SHARD]
        (sh,) = meta["codecs"]
        assert sh["name"] == "sharding_indexed"
        assert sh["configuration"]["chunk_shape"] == [lead, *CHUNKS]
        assert [c["name"] for c in sh["configuration"]["codecs"]] == ["bytes", "zstd"]
    else:
        assert grid == [lead, *CHUNKS]
        assert [c["name"] for c in meta["codecs"]] == ["bytes", "zstd"]
    # the geometry and channel names are those of the Zarr v2 output
    for key in ("resolution", "offset", "axes", "channels"):
        assert meta["attributes"][key] == want_attrs[key], key

    # File count: one file per channel per block (separate) or per block
    # (together), a block being a chunk or, sharded, a shard; all-zero ones
    # are not written. The summary says how many it wrote.
    files = chunk_files(dest)
    assert len(files) == expected_files(want, SHARD if sharded else CHUNKS,
                                        layout == "together")
    assert summary_count(out) == (len(files), "shards" if sharded else "chunks")


@pytest.mark.parametrize("codec,names", [
    ("gzip:5", ["bytes", "gzip"]),
    ("blosc-lz4", ["bytes", "blosc"]),
    ('{"name": "zstd", "configuration": {"level": 7, "checksum": true}}', ["bytes", "zstd"]),
    ('{"id": "zlib", "level": 4}', ["bytes", "numcodecs.zlib"]),
    ("none", ["bytes"]),
])
def test_zarr3_codecs(tmp_path, crop, references, codec, names):
    _, v2, _ = crop
    dest = tmp_path / "o.zarr" / "gt"
    rc, _, err = lb("binarize", v2, dest, *G_ARGS, "--format", "zarr3", "--shard", csv(SHARD),
                    "--codec", codec, "-q")
    assert rc == 0, err
    (sh,) = zjson(dest)["codecs"]
    inner = sh["configuration"]["codecs"]
    assert [c["name"] for c in inner] == names
    if names[-1] == "blosc":
        # Zarr v3 blosc names the element size it shuffles: a positive
        # typesize (zarr-python 3 refuses 0), here uint8's
        assert inner[-1]["configuration"]["typesize"] == 1
        assert inner[-1]["configuration"]["shuffle"] == "shuffle"
    if names[-1] == "zstd":
        assert inner[-1]["configuration"] == {"level": 7, "checksum": True}
    assert_same_values(read_lb(dest), references["binarize"][0], "labelbin")
    if not names[-1].startswith("numcodecs."):  # the strict reader knows the core codecs
        assert_same_values(sw.read_array(str(dest)), references["binarize"][0], "strict")


def test_sample_zarr3_blosc_typesize(tmp_path, crop):
    _, v2, _ = crop
    dest = tmp_path / "s.zarr" / "labels"
    rc, _, err = lb("sample", "--shape", csv(SHAPE), "--chunks", csv(CHUNKS), "--format", "zarr3",
                    "--codec", "blosc-zstd:5", dest)
    assert rc == 0, err
    blosc = zjson(dest)["codecs"][-1]
    assert blosc["name"] == "blosc"
    assert blosc["configuration"]["typesize"] == 8 and blosc["configuration"]["cname"] == "zstd"
    assert_same_values(sw.read_array(str(dest)), zarr.open(str(v2), mode="r")[...], "strict")


def test_zarr3_from_a_sharded_zarr3_source(tmp_path, crop, references):
    # the source's format does not change the values
    _, _, v3 = crop
    dest = tmp_path / "o.zarr" / "gt"
    rc, _, err = lb("binarize", v3, dest, *G_ARGS, "--format", "zarr3", "--shard", csv(SHARD),
                    "-q")
    assert rc == 0, err
    assert_same_values(read_lb(dest), references["binarize"][0], "binarize of a v3 source")
    # the default inner chunks are the source's inner chunks
    (sh,) = zjson(dest)["codecs"]
    assert sh["configuration"]["chunk_shape"] == [5, *CHUNKS]  # all channels: the default
    # and to Zarr v2 as well
    dest2 = tmp_path / "o.zarr" / "gt2"
    rc, _, err = lb("mask", v3, dest2, *G_ARGS, "-q")
    assert rc == 0, err
    assert_same_values(zarr.open(str(dest2), mode="r")[...], references["mask"][0],
                       "mask of a v3 source")


def test_zarr2_channels_together(tmp_path, crop, config_files, references):
    # --channel-chunks is not only for Zarr v3
    dest = tmp_path / "o.zarr" / "gt"
    rc, out, err = lb(*job("binarize", crop, config_files, dest, "--chunks", csv(CHUNKS),
                           "--channel-chunks", "together"))
    assert rc == 0, err
    z = zarr.open(str(dest), mode="r")
    want = references["binarize"][0]
    assert z.chunks == (want.shape[0], *CHUNKS)
    assert_same_values(z[...], want, "zarr-python")
    n = len([f for f in os.listdir(dest) if f[0].isdigit()])
    assert n == expected_files(want, CHUNKS, True)
    assert summary_count(out) == (n, "chunks")


def test_ome_ngff_0_5(tmp_path, crop, references):
    _, v2, _ = crop
    dest = tmp_path / "o.zarr" / "gt"
    rc, _, err = lb("binarize", v2, dest, *G_ARGS, "--format", "zarr3", "--shard", csv(SHARD),
                    "--chunks", csv(CHUNKS), "--ome-ngff", "-q")
    assert rc == 0, err
    group = zjson(dest)
    assert group["zarr_format"] == 3 and group["node_type"] == "group"
    attrs = group["attributes"]
    assert set(attrs) == {"ome"}  # 0.5 keeps everything under "ome"
    ome = attrs["ome"]
    assert ome["version"] == "0.5"
    (ms,) = ome["multiscales"]
    assert "version" not in ms
    assert [(a["name"], a["type"]) for a in ms["axes"]] == \
        [("c", "channel"), ("z", "space"), ("y", "space"), ("x", "space")]
    assert all(a.get("unit") == "nanometer" for a in ms["axes"][1:])
    (ds,) = ms["datasets"]
    assert ds["path"] == "s0"
    want_attrs = references["binarize"][1]
    assert ds["coordinateTransformations"] == [
        {"type": "scale", "scale": [1, *want_attrs["resolution"]]},
        {"type": "translation", "translation": [0, *want_attrs["offset"]]}]
    # no Zarr v2 metadata anywhere in the group
    assert not [f for f in tree_files(dest) if f.endswith((".zattrs", ".zarray", ".zgroup"))]
    s0 = dest / "s0"
    assert zjson(s0)["node_type"] == "array"
    assert_same_values(read_lb(s0), references["binarize"][0], "s0")
    assert_same_values(sw.read_array(str(s0)), references["binarize"][0], "s0, strict reader")
    # the group is not a dataset: info lists s0 and suggests it
    rc, out, err = lb("info", dest)
    assert rc == 1 and out == ""
    assert "%s/s0  zarr3 uint8 (5, 40, 64, 72), sharded, channels" % dest in err
    assert err.splitlines()[-1] == "labelbin: did you mean %s/s0?" % dest


# ---------------------------------------------------------------------------
# info: format, codecs, shards and inner chunks of every format
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def formats(crop, tmp_path_factory):
    """A small array in every format: v2 with and without a compressor, N5,
    v3 unsharded and sharded (written by labelbin sample)."""
    _, v2, v3 = crop
    d = tmp_path_factory.mktemp("formats")
    raw = zarr.open(str(d / "raw.zarr" / "a"), mode="w", shape=(8, 8), chunks=(4, 4),
                    dtype="<u2", compressor=None)
    raw[...] = 1
    n5 = d / "c.n5"
    g = zarr.open_group(N5Store(str(n5)), mode="w")
    g.create_dataset("labels", shape=(8, 12), chunks=(4, 6), dtype="u4",
                     compressor=numcodecs.GZip(level=5))[...] = 7
    v3u = d / "u.zarr" / "labels"
    rc, _, err = lb("sample", "--shape", "16,16,16", "--chunks", "8,8,8", "--format", "zarr3",
                    v3u)
    assert rc == 0, err
    return {"zarr2": v2, "zarr2_raw": d / "raw.zarr" / "a", "n5": n5 / "labels",
            "zarr3": v3u, "zarr3_sharded": v3}


def info_json(path):
    rc, out, err = lb("info", "--json", path)
    assert rc == 0, err
    return json.loads(out)


def info_text(path):
    rc, out, err = lb("info", path)
    assert rc == 0, err
    return {l[:14].rstrip(): l[14:] for l in out.splitlines() if l[:1] != " "}


def test_info_zarr2(formats):
    p = formats["zarr2"]
    info = info_json(p)
    compressor = zarr.open(str(p), mode="r").compressor.get_config()
    assert info["format"] == "zarr2"
    assert info["chunks"] == list(CHUNKS) and info["shard_shape"] is None
    assert info["codec"] == compressor
    assert info["codecs"] == [compressor]
    assert info["codec_chain"] == "bytes(little) | zstd(3)"
    t = info_text(p)
    assert t["format:"] == "zarr2" and t["chunks:"] == "(16, 32, 32)"
    assert "shards:" not in t
    assert t["codec chain:"] == "bytes(little) | zstd(3)"
    raw = info_json(formats["zarr2_raw"])
    assert raw["codec"] is None and raw["codecs"] == [] and raw["shard_shape"] is None


def test_info_n5(formats):
    p = formats["n5"]
    info = info_json(p)
    with open(os.path.join(p, "attributes.json")) as f:
        compression = json.load(f)["compression"]
    assert info["format"] == "n5" and info["shard_shape"] is None
    assert info["chunks"] == [4, 6]
    assert info["codec"] == compression == {"type": "gzip", "level": 5, "useZlib": False}
    assert info["codecs"] == [info["codec"]]
    assert isinstance(info["codec_chain"], str) and info["codec_chain"]
    t = info_text(p)
    assert t["format:"] == "n5" and "shards:" not in t
    assert t["codec chain:"] == info["codec_chain"]


def test_info_zarr3_unsharded(formats):
    p = formats["zarr3"]
    info = info_json(p)
    meta = zjson(p)
    assert info["format"] == "zarr3"
    assert info["chunks"] == [8, 8, 8] and info["shard_shape"] is None
    assert info["codecs"] == meta["codecs"] and info["codec"] == meta["codecs"]
    assert info["codec_chain"] == "bytes(little) | zstd(3)"
    assert info["axes"] == ["z", "y", "x"] and info["voxel_size"] == [8, 8, 8]
    t = info_text(p)
    assert t["format:"] == "zarr3" and t["chunks:"] == "(8, 8, 8)"
    assert "shards:" not in t
    assert t["codec chain:"] == "bytes(little) | zstd(3)"


def test_info_zarr3_sharded(formats):
    p = formats["zarr3_sharded"]
    info = info_json(p)
    meta = zjson(p)
    assert info["format"] == "zarr3"
    assert info["shard_shape"] == list(SHARD) == meta["chunk_grid"]["configuration"]["chunk_shape"]
    assert info["chunks"] == list(CHUNKS)
    assert info["codecs"] == meta["codecs"]
    assert info["codec_chain"] == ("sharding_indexed(chunk_shape [16, 32, 32], codecs "
                                   "[bytes(little), zstd(3)], index at the end)")
    assert info["annotations"] == "boolean" and info["complete"] is True
    t = info_text(p)
    assert t["format:"] == "zarr3"
    assert t["chunks:"] == "(16, 32, 32) (inner chunks of each shard)"
    assert t["shards:"] == "(32, 64, 64) (one file each)"
    assert t["codec chain:"] == info["codec_chain"]


def test_info_of_a_zarr3_output(tmp_path, crop):
    _, v2, _ = crop
    dest = tmp_path / "o.zarr" / "gt"
    rc, _, err = lb("binarize", v2, dest, *G_ARGS, "--format", "zarr3", "--shard", "32,64,64",
                    "--chunks", "16,32,32", "--channel-chunks", "together", "-q")
    assert rc == 0, err
    info = info_json(dest)
    assert info["shard_shape"] == [5, 32, 64, 64] and info["chunks"] == [5, 16, 32, 32]
    assert info["num_channels"] == 5 and info["axes"] == ["c", "z", "y", "x"]
    assert info["attrs"]["channels"] == [g.split("=")[0] for g in GROUPS]


def test_container_walk_lists_zarr3(tmp_path, crop):
    # Zarr v3 arrays and groups are walked like the others
    _, v2, _ = crop
    root = tmp_path / "mixed.zarr"
    for name, extra in (("v3/gt", ["--format", "zarr3"]),
                        ("v3/sharded", ["--format", "zarr3", "--shard", csv(SHARD)]),
                        ("v2/gt", [])):
        rc, _, err = lb("binarize", v2, root / name, "-g", "a=1", *extra, "-q")
        assert rc == 0, err
    rc, _, err = lb("binarize", v2, root / "ome", "-g", "a=1", "--format", "zarr3",
                    "--ome-ngff", "-q")
    assert rc == 0, err
    rc, out, err = lb("info", root)
    assert rc == 1 and out == ""
    lines = err.splitlines()
    assert lines[1] == "labelbin: %s is a group; the datasets below it:" % root
    listed = {l.split()[0]: " ".join(l.split()[1:]) for l in lines[2:-1]}
    assert listed == {
        "%s/ome/s0" % root: "zarr3 uint8 (1, 40, 64, 72), channels",
        "%s/v2/gt" % root: "zarr2 uint8 (1, 40, 64, 72), channels",
        "%s/v3/gt" % root: "zarr3 uint8 (1, 40, 64, 72), channels",
        "%s/v3/sharded" % root: "zarr3 uint8 (1, 40, 64, 72), sharded, channels",
    }
    assert lines[-1] == "labelbin: did you mean %s/ome/s0?" % root


# ---------------------------------------------------------------------------
# Usage errors: exit 2, one line that says what is wrong, nothing written
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("cmd,args,message", [
    ("binarize", ["--shard", "32,64,64"],
     "--shard needs --format zarr3 (Zarr v2 has no shards)"),
    ("mask", ["--format", "zarr2", "--shard", "32,64,64"],
     "--shard needs --format zarr3 (Zarr v2 has no shards)"),
    ("run", ["--shard", "32,64,64"],
     "--shard needs --format zarr3 (Zarr v2 has no shards)"),
    ("binarize", ["--format", "zarr3", "--shard", "40,64,64"],
     "--shard 40,64,64: each entry must be a multiple of the chunk shape (16, 32, 32) "
     "(the source's chunks; --chunks sets another), e.g. --shard 48,64,64"),
    ("binarize", ["--format", "zarr3", "--shard", "24,64,64"],
     "--shard 24,64,64: each entry must be a multiple of the chunk shape (16, 32, 32) "
     "(the source's chunks; --chunks sets another), e.g. --shard 32,64,64"),
    ("mask", ["--format", "zarr3", "--chunks", "8,16,16", "--shard", "16,40,16"],
     "--shard 16,40,16: each entry must be a multiple of the chunk shape (8, 16, 16) "
     "(set by --chunks), e.g. --shard 16,48,16"),
    ("run", ["--format", "zarr3", "--shard", "8,32,32"],
     "--shard 8,32,32: each entry must be a multiple of the chunk shape (16, 32, 32) "
     "(the source's chunks; --chunks sets another), e.g. --shard 16,32,32"),
    ("binarize", ["--format", "zarr3", "--shard", "32,64"],
     "--shard has 2 entries, the array has 3 spatial dimensions"),
    ("binarize", ["--format", "zarr3", "--shard", "0,64,64"],
     "--shard '0,64,64': expected positive integers separated by commas, e.g. 256,256,256"),
    ("binarize", ["--format", "zar3"],
     "--format 'zar3': expected zarr2 or zarr3; did you mean 'zarr3'?"),
    ("mask", ["--format", "zarr"], "--format 'zarr': expected zarr2 (the default) or zarr3"),
    ("binarize", ["--format", "v3"], "--format 'v3': expected zarr2 (the default) or zarr3"),
    ("mask", ["--format", "n5"], "--format n5: labelbin reads N5 but writes zarr2 or zarr3"),
    ("run", ["--format", "ZARR3"], "--format 'ZARR3': expected zarr2 (the default) or zarr3"),
    ("binarize", ["--channel-chunks", "joined"],
     "--channel-chunks 'joined': expected together (the default) or separate"),
])
def test_usage_errors(tmp_path, crop, config_files, cmd, args, message):
    dest = tmp_path / "o.zarr" / "gt"
    rc, out, err = lb(*job(cmd, crop, config_files, dest, *args))
    assert rc == 2, err
    assert out == ""
    assert err.splitlines() == ["labelbin: %s: %s" % (cmd, message),
                                "Try 'labelbin %s --help' for more information." % cmd]
    assert not (tmp_path / "o.zarr").exists()


@pytest.mark.parametrize("args,message", [
    (["--shard", "32,64,64"], "--shard needs --format zarr3 (Zarr v2 has no shards)"),
    (["--format", "zarr3", "--shard", "48,64,64"],
     "--shard 48,64,64: each entry must be a multiple of the chunk shape (32, 64, 64) "
     "(the default; --chunks sets another), e.g. --shard 64,64,64"),
    (["--format", "zarr3", "--chunks", "8,8,8", "--shard", "8,8,12"],
     "--shard 8,8,12: each entry must be a multiple of the chunk shape (8, 8, 8) "
     "(set by --chunks), e.g. --shard 8,8,16"),
    (["--format", "zarr3", "--shard", "64,64"],
     "--shard '64,64': expected Z,Y,X, positive multiples of the chunk shape"),
    (["--format", "zarr2 "], "--format 'zarr2 ': expected zarr2 or zarr3; did you mean "
     "'zarr2'?"),
])
def test_sample_usage_errors(tmp_path, args, message):
    dest = tmp_path / "s.zarr" / "labels"
    rc, out, err = lb("sample", *args, dest)
    assert rc == 2 and out == ""
    assert err.splitlines() == ["labelbin: sample: " + message,
                                "Try 'labelbin sample --help' for more information."]
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("cmd", ["binarize", "mask", "run", "sample"])
def test_help_documents_the_options(cmd):
    rc, out, err = lb(cmd, "--help")
    assert rc == 0 and err == ""
    for opt in ("--format", "--shard") + (("--channel-chunks",) if cmd != "sample" else ()):
        assert opt in out, (cmd, opt)
    assert "zarr3" in out


# ---------------------------------------------------------------------------
# --resume of a sharded Zarr v3 run that was killed or cancelled
# ---------------------------------------------------------------------------

BIG = "128,256,256"
BIG_OUT = ["--format", "zarr3", "--chunks", "8,16,16", "--shard", "16,32,32"]


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    src = d / "big.zarr" / "labels"
    rc, _, err = lb("sample", "--shape", BIG, "--chunks", "32,64,64", src)
    assert rc == 0, err
    refs = {}
    for layout in ("separate", "together"):
        ref = d / "ref.zarr" / layout
        rc, _, err = lb("binarize", src, ref, *G_ARGS, *BIG_OUT, "--channel-chunks", layout,
                        "-j", "2", "-q")
        assert rc == 0, err
        refs[layout] = ref
    return src, refs


def start(src, dest, layout):
    return subprocess.Popen(
        [LABELBIN, "binarize", str(src), str(dest), *G_ARGS, *BIG_OUT, "--channel-chunks",
         layout, "-j", "1", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_shards(dest, proc, n=5, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if len([f for f in chunk_files(dest) if ".lbtmp." not in f]) >= n:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def assert_same_tree(dest, ref):
    """Every file of a resumed output is byte for byte the file of a clean
    run: the shards, and zarr.json (whose provenance names the same source
    and command)."""
    got, want = tree_files(dest), tree_files(ref)
    leftovers = [f for f in got if ".lbtmp." in f or ".labelbin-" in f]
    assert not leftovers, leftovers[:5]
    assert sorted(got) == sorted(want)
    for f in want:
        assert got[f] == want[f], f


@pytest.mark.parametrize("layout", ["separate", "together"])
def test_sigkill_then_resume_is_byte_identical(tmp_path, big, layout):
    src, refs = big
    dest = tmp_path / "o.zarr" / "gt"
    proc = start(src, dest, layout)
    got = wait_for_shards(dest, proc)
    proc.kill()
    proc.wait()
    if not got or proc.returncode == 0:
        pytest.skip("the run finished before it could be killed")
    partial = len(chunk_files(dest))
    assert 0 < partial < len(chunk_files(refs[layout]))
    # the unfinished output says so, and is not overwritten without --resume
    assert info_json(dest)["complete"] is False
    rc, _, err = lb("binarize", src, dest, *G_ARGS, *BIG_OUT, "--channel-chunks", layout)
    assert rc == 1 and err.startswith("labelbin: "), err
    # --resume with another shard shape does not match the metadata
    rc, _, err = lb("binarize", src, dest, *G_ARGS, "--format", "zarr3", "--chunks", "8,16,16",
                    "--shard", "32,32,32", "--channel-chunks", layout, "--resume")
    assert rc == 1 and err.startswith("labelbin: "), err
    rc, out, err = lb("binarize", src, dest, *G_ARGS, *BIG_OUT, "--channel-chunks", layout,
                      "-j", "2", "--resume")
    assert rc == 0, err
    assert "already complete" in out
    assert_same_tree(dest, refs[layout])
    assert_same_values(read_lb(dest), read_lb(refs[layout]), "resumed output")


@pytest.mark.parametrize("first,second,message", [
    ([], ["--format", "zarr3"],
     "%s: cannot resume: it is Zarr v2, this run writes Zarr v3 (resume with the format of "
     "the first run)"),
    (["--format", "zarr3"], [],
     "%s: cannot resume: it is Zarr v3, this run writes Zarr v2 (resume with the format of "
     "the first run)"),
    (["--format", "zarr3", "--ome-ngff"], ["--ome-ngff"],
     "%s/s0: cannot resume: it is Zarr v3, this run writes Zarr v2 (resume with the format "
     "of the first run)"),
    (["--format", "zarr3", "--channel-chunks", "separate"], ["--format", "zarr3"],
     "%s: exists with different metadata (chunk_grid "),
    (["--channel-chunks", "together"], ["--channel-chunks", "separate"],
     "%s: exists with different metadata (chunks [5, 16, 32, 32], requested [1, 16, 32, 32])"),
    (["--format", "zarr3", "--shard", "32,64,64"], ["--format", "zarr3"],
     "%s: exists with different metadata ("),
    # an output started with one chunk per channel, resumed with the default
    (["--channel-chunks", "separate"], [],
     "%s: exists with different metadata (chunks [1, 16, 32, 32], requested [5, 16, 32, 32]); "
     "it was written with one chunk per channel: resume with --channel-chunks separate "
     "(LB_CHANNELS_SEPARATE)"),
], ids=["zarr2-as-zarr3", "zarr3-as-zarr2", "ome-zarr3-as-zarr2", "separate-as-together",
        "together-as-separate", "sharded-as-unsharded", "separate-as-default"])
def test_resume_refuses_another_layout(tmp_path, crop, first, second, message):
    # an output is only ever finished in the layout it was started in
    _, v2, _ = crop
    dest = tmp_path / "o.zarr" / "gt"
    rc, _, err = lb("binarize", v2, dest, *G_ARGS, *first, "-q")
    assert rc == 0, err
    before = tree_files(dest)
    rc, out, err = lb("binarize", v2, dest, *G_ARGS, *second, "--resume")
    assert rc == 1 and out == ""
    assert err.startswith("labelbin: " + message % dest), err
    assert len(err.splitlines()) == 1
    assert tree_files(dest) == before


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cancel_then_resume_is_byte_identical(tmp_path, big, sig, code):
    src, refs = big
    dest = tmp_path / "o.zarr" / "gt"
    proc = start(src, dest, "separate")
    got = wait_for_shards(dest, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    if not got or proc.returncode == 0:
        pytest.skip("the run finished before it could be interrupted")
    assert proc.returncode == code, err
    assert err.splitlines()[-1] == ("labelbin: interrupted; run the same command with "
                                    "--resume to finish")
    assert out == ""
    rc, _, err = lb("binarize", src, dest, *G_ARGS, *BIG_OUT, "--channel-chunks", "separate",
                    "--resume", "-q")
    assert rc == 0, err
    assert_same_tree(dest, refs["separate"])


def test_resume_of_a_complete_sharded_output_is_the_same(tmp_path, big):
    src, refs = big
    dest = tmp_path / "o.zarr" / "gt"
    rc, _, err = lb("binarize", src, dest, *G_ARGS, *BIG_OUT, "--resume", "-q")
    assert rc == 0, err
    assert_same_tree(dest, refs["together"])  # the default layout
    # (blocks whose chunks all exist are skipped; the others are computed
    # again, to the same bytes)
    rc, out, err = lb("binarize", src, dest, *G_ARGS, *BIG_OUT, "--resume", "-q")
    assert rc == 0, err
    assert_same_tree(dest, refs["together"])


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
