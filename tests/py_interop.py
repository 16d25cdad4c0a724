"""Byte-exact interoperability between labelbin and zarr-python 2.13.

zarr-python (Debian's python3-zarr, with numcodecs) is the independent
oracle. Data flows both ways through tests/tool_lbio (public API only):

1. zarr-python writes (Zarr v2 and N5), labelbin reads: every label dtype,
   both byte orders, order C/F, both chunk-key separators, every compressor,
   ragged shapes, absent chunks, non-zero and null fill values, truncated N5
   edge blocks, world-unit ROI reads.
2. labelbin writes, zarr-python reads: the same matrix, the metadata zarr-
   python sees, parent groups, and partial (read-modify-write) updates.
3. The golden inputs read the same through both.
4. A few corrupt chunks: a clean error naming the chunk, never a crash.

Run: /usr/bin/python3 -m pytest -q tests/py_interop.py with LB_BUILD_DIR set
(CTest sets it). Random data is seeded (LB_SEED overrides; printed below).
"""

import itertools
import json
import os
import subprocess
import warnings
import zlib

import numpy as np
import numcodecs
import pytest
import zarr
from zarr.n5 import N5ChunkWrapper, N5FSStore, N5Store

SOURCE_DIR = os.environ.get(
    "LB_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("LB_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
CONFORMANCE_DIR = os.environ.get("LB_CONFORMANCE_DIR", os.path.join(BUILD_DIR, "conformance"))
GOLDEN_DIR = os.environ.get(
    "LB_GOLDEN_DIR", os.path.join(SOURCE_DIR, "..", "shared", "golden"))
TOOL = os.path.join(BUILD_DIR, "tests", "tool_lbio")
SEED = int(os.environ.get("LB_SEED", "20240611"))

# zarr's N5 store warns that blosc/lzma are not portable N5; we know.
warnings.filterwarnings("ignore", message="Not all N5 implementations")
pytestmark = pytest.mark.filterwarnings(
    "ignore:Not all N5 implementations:RuntimeWarning")


# ---------------------------------------------------------------- helpers --

@pytest.fixture(autouse=True)
def _print_seed():
    """Shown with a failing test's captured output."""
    print(f"py_interop: seed {SEED} (set LB_SEED to change)")


def rng_for(name):
    """A generator seeded from SEED and the case name (stable per case)."""
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def run_tool(*args, expect_ok=True):
    if not os.path.exists(TOOL):
        pytest.fail(f"{TOOL} is missing: build the tool_lbio target "
                    f"(LB_BUILD_DIR={BUILD_DIR})")
    proc = subprocess.run([TOOL, *map(str, args)], capture_output=True,
                          text=True, timeout=60)
    if expect_ok and proc.returncode != 0:
        raise AssertionError(
            f"tool_lbio {' '.join(map(str, args))} exited {proc.returncode}:\n"
            f"{proc.stderr}")
    return proc


def lb_read(path, tmp_path, roi=None, start=None, count=None):
    """tool_lbio read -> (info dict, raw bytes)."""
    out = tmp_path / "lb_read.bin"
    args = ["read", path, out]
    if roi is not None:
        args += ["--roi", roi]
    if start is not None:
        args += ["--start", ",".join(map(str, start)),
                 "--count", ",".join(map(str, count))]
    proc = run_tool(*args)
    info = json.loads(proc.stdout)
    return info, out.read_bytes()


def native(dtype):
    return np.dtype(dtype).newbyteorder("=")


def assert_same(got_bytes, expected, what):
    """Raw native bytes from the tool == the numpy array, with a useful
    message (first differing index and values) when not."""
    expected = np.ascontiguousarray(expected, dtype=native(expected.dtype))
    if got_bytes == expected.tobytes():
        return
    if len(got_bytes) != expected.nbytes:
        raise AssertionError(f"{what}: got {len(got_bytes)} bytes, expected "
                             f"{expected.nbytes} (shape {expected.shape})")
    got = np.frombuffer(got_bytes, dtype=expected.dtype).reshape(expected.shape)
    diff = np.argwhere(got != expected)
    first = tuple(int(i) for i in diff[0])
    raise AssertionError(f"{what}: {len(diff)} elements differ; first at "
                         f"{first}: got {got[first]}, expected {expected[first]}")


def make_data(dtype, shape, rng):
    """Label-like data: objects (a coarse random label map, upsampled) from a
    small palette that includes the dtype's min and max and some full-range
    values (so every byte of an element matters), plus 3% noise. Compressible
    like real labels, so shuffle and compression do real work."""
    dt = native(dtype)
    info = np.iinfo(dt)
    rand = rng.integers(info.min, info.max, size=3, dtype=dt, endpoint=True)
    palette = np.array([info.min, info.max, 0, 1, 7, *rand], dtype=dt)
    run = 3 if len(shape) >= 3 else 8
    data = palette[rng.integers(0, len(palette), size=[-(-s // run) for s in shape])]
    for axis in range(len(shape)):
        data = np.repeat(data, run, axis=axis)
    data = np.ascontiguousarray(data[tuple(slice(0, s) for s in shape)])
    noise = rng.random(shape) < 0.03
    data[noise] = palette[rng.integers(0, len(palette), size=int(noise.sum()))]
    flat = data.reshape(-1)
    if flat.size:
        flat[0], flat[-1], flat[flat.size // 2] = info.min, info.max, info.max
    return data


def chunk_grid(shape, chunks):
    return tuple(-(-s // c) for s, c in zip(shape, chunks))


def partial_region(shape, chunks):
    """A box that leaves whole chunks untouched (absent) and cuts others."""
    grid = chunk_grid(shape, chunks)
    region = [slice(0, s) for s in shape]
    for d in sorted(range(len(shape)), key=lambda d: -grid[d]):
        if grid[d] >= 2:
            lo = min(1, shape[d] - 1)
            hi = (grid[d] - 1) * chunks[d] - (1 if chunks[d] > 2 else 0)
            region[d] = slice(lo, max(hi, lo + 1))
            break
    return tuple(region)


def stored_chunks(dataset_dir):
    """Chunk files under a dataset directory (metadata files excluded)."""
    names = []
    for root, _, files in os.walk(dataset_dir):
        for f in files:
            if f in (".zarray", ".zattrs", ".zgroup", "attributes.json"):
                continue
            names.append(os.path.relpath(os.path.join(root, f), dataset_dir))
    return names


def fill_for(kind, dtype):
    info = np.iinfo(native(dtype))
    return {"7": 7, "max": int(info.max), "min": int(info.min), "0": 0,
            "null": None}[kind]


def csv(values):
    return ",".join(str(int(v)) for v in values)


# ------------------------------------------------------- the case matrix --

DTYPES = ["u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8",
          ">u2", ">u4", ">u8", ">i2", ">i4", ">i8"]

# (id, numcodecs codec or None). Blosc: every cname x every shuffle (incl.
# -1 AUTOSHUFFLE: bit for 1-byte, byte otherwise) and explicit block sizes
# that leave a short leftover block.
COMPRESSORS = [("raw", None)]
for _cname in ("lz4", "lz4hc", "zstd", "zlib", "blosclz"):
    for _shuf in (0, 1, 2, -1):
        COMPRESSORS.append(
            (f"blosc_{_cname}_s{_shuf if _shuf >= 0 else 'auto'}",
             numcodecs.Blosc(cname=_cname, clevel=5, shuffle=_shuf)))
COMPRESSORS += [
    ("blosc_lz4_s1_bs256", numcodecs.Blosc("lz4", 5, 1, blocksize=256)),
    ("blosc_zstd_s2_bs512", numcodecs.Blosc("zstd", 3, 2, blocksize=512)),
    ("blosc_blosclz_s2_bs128", numcodecs.Blosc("blosclz", 9, 2, blocksize=128)),
    ("zstd1", numcodecs.Zstd(level=1)),
    ("zstd9", numcodecs.Zstd(level=9)),
    ("gzip1", numcodecs.GZip(level=1)),
    ("gzip9", numcodecs.GZip(level=9)),
    ("zlib1", numcodecs.Zlib(level=1)),
    ("zlib6", numcodecs.Zlib(level=6)),
    ("lz4", numcodecs.LZ4()),
    ("lz4_acc9", numcodecs.LZ4(acceleration=9)),
    ("bz2_1", numcodecs.BZ2(level=1)),
    ("bz2_9", numcodecs.BZ2(level=9)),
    ("lzma", numcodecs.LZMA()),
]
COMPRESSOR_BY_ID = dict(COMPRESSORS)

# (shape, chunks), all ragged. Small ones for the many layout cases; blosc
# gets the big ones: it stores chunks under 128 bytes (and incompressible
# ones) as a plain copy, and only larger chunks have several blocks, split
# streams and short leftover blocks.
SHAPES = [((13, 17, 11), (5, 6, 4)),
          ((9, 10, 23), (4, 4, 8)),
          ((3, 30, 7), (2, 8, 3)),
          ((21, 5), (6, 5)),
          ((50,), (16,)),
          ((3, 4, 5, 6), (2, 3, 2, 4))]
BIG_SHAPES = [((19, 37, 45), (8, 16, 32)),
              ((300, 70), (128, 64)),
              ((5000,), (2048,))]
N_SMALL = len(SHAPES)
SHAPES += BIG_SHAPES


def shape_for(cid, i):
    if cid.startswith("blosc"):
        return N_SMALL + i % len(BIG_SHAPES)
    return i % N_SMALL
FILLS = ["7", "max", "null", "min", "0"]


def zarr2_cases():
    """dtype x order x separator, the compressor rotating through the list;
    then every compressor with a 1-byte and an 8-byte type (shuffle and
    bitshuffle depend on the item size)."""
    cases = []
    for i, (dt, order, sep) in enumerate(itertools.product(DTYPES, "CF", "./")):
        cid = COMPRESSORS[i % len(COMPRESSORS)][0]
        cases.append((dt, order, sep, cid, FILLS[i % len(FILLS)], shape_for(cid, i)))
    for j, (cid, _) in enumerate(COMPRESSORS):
        for k, dt in enumerate(("u1", ">u8" if j % 2 else "i8")):
            cases.append((dt, "CF"[(j + k) % 2], "./"[j % 2], cid,
                           FILLS[(j + k) % len(FILLS)], shape_for(cid, j + k)))
    return list(dict.fromkeys(cases))  # drop repeats, keep the order


def case_id(case):
    dt, order, sep, cid, fill, si = case
    return (f"{dt.replace('>', 'be')}-{order}-{'dot' if sep == '.' else 'slash'}"
            f"-{cid}-fill{fill}-shape{si}")


ZARR2_CASES = zarr2_cases()

# N5 through zarr's N5Store: the compressions it maps onto N5 types. (Its
# "lz4" is numcodecs' framing, not N5's LZ4Block stream, so it is not N5.)
N5_COMPRESSORS = [("raw", None),
                  ("gzip5", numcodecs.GZip(level=5)),
                  ("gzip_zlib", numcodecs.Zlib(level=5)),
                  ("bzip2", numcodecs.BZ2(level=9)),
                  ("xz", numcodecs.LZMA()),
                  ("blosc_lz4_s1", numcodecs.Blosc("lz4", 5, 1)),
                  ("blosc_zstd_s2", numcodecs.Blosc("zstd", 3, 2)),
                  ("zstd3", numcodecs.Zstd(level=3))]
N5_DTYPES = ["u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8"]
N5_CASES = [(dt, cid, i % 2 == 0, "fs" if i % 3 == 0 else "dir",
             shape_for(cid, i) if cid.startswith("blosc") else i % 4)
            for i, (dt, (cid, _)) in enumerate(
                itertools.product(N5_DTYPES, N5_COMPRESSORS))]


def n5_case_id(case):
    dt, cid, truncate, store, si = case
    return f"{dt}-{cid}-{'truncated' if truncate else 'padded'}-{store}-shape{si}"


def n5_store(kind, root):
    return N5FSStore(str(root)) if kind == "fs" else N5Store(str(root))


def truncate_n5_edge_blocks(z, dataset_dir):
    """Rewrite zarr-python's padded N5 edge blocks the way the Java reference
    writes them: header and payload cut to the part inside the array.
    Returns how many blocks were rewritten."""
    wrapper = z._compressor
    codec = N5ChunkWrapper(z.dtype, z.chunks,
                           compressor_config=wrapper.compressor_config)
    n = 0
    for rel in stored_chunks(dataset_dir):
        cidx = tuple(int(p) for p in rel.split(os.sep))[::-1]  # N5 key is x,y,z
        inside = tuple(min(c, s - i * c)
                       for i, c, s in zip(cidx, z.chunks, z.shape))
        if inside == tuple(z.chunks):
            continue
        fn = os.path.join(dataset_dir, rel)
        with open(fn, "rb") as f:
            full = codec.decode(f.read())
        if not isinstance(full, np.ndarray):  # 1-byte types come back as bytes
            full = np.frombuffer(full, dtype=z.dtype)
        full = full.reshape(z.chunks)
        part = np.ascontiguousarray(full[tuple(slice(0, k) for k in inside)])
        with open(fn, "wb") as f:
            f.write(codec.encode(part))
        n += 1
    return n


# ---------------------------------- 1. zarr-python writes, labelbin reads --

@pytest.mark.parametrize("case", ZARR2_CASES, ids=[case_id(c) for c in ZARR2_CASES])
def test_zarr2_written_by_zarr_python(case, tmp_path):
    dt, order, sep, cid, fill_kind, si = case
    shape, chunks = SHAPES[si]
    rng = rng_for(case_id(case))
    fill = fill_for(fill_kind, dt)
    path = tmp_path / "data.zarr" / "labels"
    z = zarr.open_array(str(path), mode="w", shape=shape, chunks=chunks,
                        dtype=dt, order=order, dimension_separator=sep,
                        compressor=COMPRESSOR_BY_ID[cid], fill_value=fill)
    region = partial_region(shape, chunks)
    data = make_data(dt, tuple(r.stop - r.start for r in region), rng)
    z[region] = data
    expected = np.full(shape, 0 if fill is None else fill, dtype=native(dt))
    expected[region] = data
    if fill is not None:  # zarr-python leaves null-fill chunks undefined
        np.testing.assert_array_equal(zarr.open_array(str(path), mode="r")[...],
                                      expected)
    n_chunks = int(np.prod(chunk_grid(shape, chunks)))
    if len(shape) > 0 and max(chunk_grid(shape, chunks)) >= 2:
        assert len(stored_chunks(path)) < n_chunks, "no chunk left absent"

    if cid.startswith("blosc"):
        # the data is compressible, so blosc really shuffled and compressed
        # (flag 0x02 = stored as a plain copy, which would test nothing)
        flags = [(path / k).read_bytes()[2] for k in stored_chunks(path)]
        assert any(not f & 0x02 for f in flags), flags

    info, got = lb_read(path, tmp_path)
    assert info["dtype"] == native(dt).name
    assert info["shape"] == list(shape)
    assert info["format"] == "zarr2"
    assert info["chunks"] == list(chunks)
    assert info["writable"] is False
    # the compressor as labelbin reports it means the same to numcodecs
    codec = COMPRESSOR_BY_ID[cid]
    if codec is None:
        assert info["codec"] is None
    else:
        def norm(config):  # lzma preset null means the default, 6
            return {**config, "preset": 6} if config.get("preset", 0) is None else config
        assert norm(numcodecs.get_codec(dict(info["codec"])).get_config()) == \
            norm(codec.get_config()), info["codec"]
    assert_same(got, expected, f"{path}")


def test_zarr2_odd_metadata(tmp_path):
    """Writers in the wild: '<u1'/'>i1' for 1-byte types, `filters: []`, no
    dimension_separator key (means '.')."""
    rng = rng_for("odd")
    for dt, odd in (("u1", "<u1"), ("i1", ">i1"), ("u2", "<u2")):
        path = tmp_path / f"odd_{dt}.zarr"
        shape, chunks = (7, 9), (4, 4)
        z = zarr.open_array(str(path), mode="w", shape=shape, chunks=chunks,
                            dtype=dt, compressor=numcodecs.Zlib(1), fill_value=3)
        data = make_data(dt, (7, 5), rng)
        z[:, :5] = data
        meta = json.loads((path / ".zarray").read_text())
        meta["dtype"] = odd
        meta["filters"] = []
        meta.pop("dimension_separator", None)
        (path / ".zarray").write_text(json.dumps(meta))
        expected = np.full(shape, 3, dtype=native(dt))
        expected[:, :5] = data
        info, got = lb_read(path, tmp_path)
        assert info["dtype"] == native(dt).name
        assert_same(got, expected, f"{path} with dtype {odd!r}, filters []")


@pytest.mark.parametrize("case", N5_CASES, ids=[n5_case_id(c) for c in N5_CASES])
def test_n5_written_by_zarr_python(case, tmp_path):
    dt, cid, truncate, store_kind, si = case
    shape, chunks = SHAPES[si]
    rng = rng_for(n5_case_id(case))
    root = tmp_path / "crop.n5"
    z = zarr.open_array(store=n5_store(store_kind, root), path="volumes/labels",
                        mode="w", shape=shape, chunks=chunks, dtype=dt,
                        compressor=dict(N5_COMPRESSORS)[cid], fill_value=0)
    region = partial_region(shape, chunks)
    data = make_data(dt, tuple(r.stop - r.start for r in region), rng)
    z[region] = data
    expected = np.zeros(shape, dtype=native(dt))
    expected[region] = data
    dataset = root / "volumes" / "labels"
    if truncate:
        # the far corner block is an edge block on every ragged axis
        corner = (-1,) * len(shape)
        z[corner] = expected[corner] = np.iinfo(native(dt)).max
        n = truncate_n5_edge_blocks(z, str(dataset))
        if any(s % c for s, c in zip(shape, chunks)):
            assert n > 0, "no edge block to truncate"
    # zarr-python itself reads both block forms
    np.testing.assert_array_equal(
        zarr.open_array(store=N5Store(str(root)), path="volumes/labels",
                        mode="r")[...], expected)

    info, got = lb_read(dataset, tmp_path)
    assert info["dtype"] == native(dt).name
    assert info["shape"] == list(shape)
    assert info["format"] == "n5"
    assert info["chunks"] == list(chunks)
    on_disk = json.loads((dataset / "attributes.json").read_text())["compression"]
    assert info["codec"]["type"] == on_disk["type"], (info["codec"], on_disk)
    assert_same(got, expected, f"{dataset}")


ROI_CASES = [("zarr2", "u8"), ("zarr2", ">i4"), ("zarr2", "u2"),
             ("n5", "u8"), ("n5", "i2")]


@pytest.mark.parametrize("fmt,dt", ROI_CASES,
                         ids=[f"{f}-{d.replace('>', 'be')}" for f, d in ROI_CASES])
def test_roi_reads(fmt, dt, tmp_path):
    """World-unit ROI reads (lb_array_read) and index-space sub-boxes
    (lb_array_data_read) equal numpy slicing of the same data."""
    rng = rng_for(f"roi-{fmt}-{dt}")
    shape, chunks = (11, 14, 9), (4, 5, 4)
    vs, off = np.array([2, 3, 4]), np.array([10, -6, 8])
    data = make_data(dt, shape, rng)
    if fmt == "zarr2":
        path = tmp_path / "roi.zarr" / "labels"
        z = zarr.open_array(str(path), mode="w", shape=shape, chunks=chunks,
                            dtype=dt, compressor=numcodecs.Blosc("zstd", 3, 2),
                            order="F", fill_value=0)
        # order "F": funlib (and labelbin) read these fastest axis first,
        # reversed as for N5
        z.attrs.update({"resolution": vs[::-1].tolist(), "offset": off[::-1].tolist()})
    else:
        root = tmp_path / "roi.n5"
        z = zarr.open_array(store=N5Store(str(root)), path="labels", mode="w",
                            shape=shape, chunks=chunks, dtype=dt,
                            compressor=numcodecs.GZip(5), fill_value=0)
        # N5 keeps these in x,y,z order; labelbin reports z,y,x
        z.attrs.update({"resolution": vs[::-1].tolist(),
                        "offset": off[::-1].tolist(), "axes": ["x", "y", "z"]})
        path = root / "labels"
    z[...] = data

    info, got = lb_read(path, tmp_path)
    assert info["voxel_size"] == vs.tolist()
    assert info["roi"] == {"offset": off.tolist(),
                           "shape": (np.array(shape) * vs).tolist()}
    assert info["axes"] == ["z", "y", "x"]
    assert_same(got, data, f"{path} whole")

    boxes = [((0, 0, 0), shape), ((3, 4, 3), (1, 1, 1))]
    for _ in range(6):
        lo = rng.integers(0, shape)
        hi = np.array([rng.integers(low + 1, s + 1) for low, s in zip(lo, shape)])
        boxes.append((tuple(lo), tuple(hi - lo)))
    for lo, cnt in boxes:
        lo, cnt = np.array(lo), np.array(cnt)
        sl = tuple(slice(a, a + c) for a, c in zip(lo, cnt))
        begin = off + lo * vs
        end = begin + cnt * vs
        roi = ",".join(f"{b}:{e}" for b, e in zip(begin, end))
        _, got = lb_read(path, tmp_path, roi=roi)
        assert_same(got, data[sl], f"{path} roi {roi}")
        _, got = lb_read(path, tmp_path, start=lo, count=cnt)
        assert_same(got, data[sl], f"{path} box start {lo} count {cnt}")

    # a ROI off the voxel grid is refused with a message naming it
    begin = off + 1
    proc = run_tool("read", path, tmp_path / "x.bin", "--roi",
                    ",".join(f"{b}:{b + 2 * v}" for b, v in zip(begin, vs)),
                    expect_ok=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("tool_lbio: ")


# ---------------------------------- 2. labelbin writes, zarr-python reads --

def codec_spec_zarr2(cid):
    """Half the cases give the compressor as numcodecs' own JSON, the rest
    as labelbin's short forms (with the config they must mean)."""
    short = {"raw": ("none", None),
             "zstd1": ("zstd:1", {"id": "zstd", "level": 1}),
             "gzip9": ("gzip:9", {"id": "gzip", "level": 9}),
             "zlib1": ("zlib:1", {"id": "zlib", "level": 1}),
             "bz2_9": ("bz2:9", {"id": "bz2", "level": 9}),
             "lz4": ("lz4", {"id": "lz4"}),
             "lzma": ("lzma", {"id": "lzma"}),
             "blosc_lz4_s1": ("blosc", {"id": "blosc", "cname": "lz4", "shuffle": 1}),
             "blosc_zstd_s1": ("blosc-zstd:3", {"id": "blosc", "cname": "zstd",
                                                "clevel": 3, "shuffle": 1})}
    if cid in short:
        return short[cid]
    codec = COMPRESSOR_BY_ID[cid]
    config = codec.get_config()
    return json.dumps(config), config


def check_zgroups(container, dataset):
    """Every directory from the container down to the dataset's parent is a
    group zarr-python recognises."""
    d = dataset.parent
    while True:
        meta = json.loads((d / ".zgroup").read_text())
        assert meta == {"zarr_format": 2}, f"{d}/.zgroup: {meta}"
        if d == container:
            break
        d = d.parent


@pytest.mark.parametrize("case", ZARR2_CASES, ids=[case_id(c) for c in ZARR2_CASES])
def test_zarr2_written_by_labelbin(case, tmp_path):
    dt, order, sep, cid, fill_kind, si = case
    shape, chunks = SHAPES[si]
    rng = rng_for("w-" + case_id(case))
    fill = fill_for(fill_kind, dt)
    spec, want_config = codec_spec_zarr2(cid)
    container = tmp_path / "out.zarr"
    path = container / "volumes" / "labels" / "all"
    data = make_data(dt, shape, rng)
    infile = tmp_path / "in.bin"
    infile.write_bytes(np.ascontiguousarray(data, dtype=native(dt)).tobytes())
    attrs = {"resolution": [4] * len(shape), "note": "zarr-python reads this",
             "big": 2 ** 64 - 1}
    args = ["write", path, infile, "--format", "zarr2",
            "--dtype", native(dt).name, "--shape", csv(shape),
            "--chunks", csv(chunks), "--order", order, "--sep", sep,
            "--codec", spec, "--fill", json.dumps(fill), "--attrs",
            json.dumps(attrs)]
    if dt.startswith(">"):
        args.append("--big-endian")
    run_tool(*args)

    if cid.startswith("blosc"):  # labelbin compressed, not just stored
        flags = [(path / k).read_bytes()[2] for k in stored_chunks(path)]
        assert any(not f & 0x02 for f in flags), flags

    # the metadata as written and as zarr-python sees it
    meta = json.loads((path / ".zarray").read_text())
    assert meta["zarr_format"] == 2
    assert meta["shape"] == list(shape) and meta["chunks"] == list(chunks)
    assert meta["dtype"] == np.dtype(dt).str, meta["dtype"]
    assert meta["order"] == order
    assert meta["fill_value"] == fill
    assert meta["filters"] in (None, [])
    assert meta.get("dimension_separator", ".") == sep
    check_zgroups(container, path)
    z = zarr.open(str(container), mode="r")["volumes/labels/all"]
    assert z.dtype == np.dtype(dt)
    assert z.order == order
    assert z.fill_value == fill
    assert z._dimension_separator in (sep, None if sep == "." else sep)
    if want_config is None:
        assert z.compressor is None
    else:
        got_config = z.compressor.get_config()
        for key, value in want_config.items():
            assert got_config[key] == value, (got_config, want_config)
        if spec.startswith("{"):
            assert got_config == numcodecs.get_codec(want_config).get_config()
    assert dict(z.attrs) == attrs
    np.testing.assert_array_equal(z[...], data)
    # chunk keys use the separator
    keys = stored_chunks(path)
    assert all((os.sep in k) == (sep == "/" and len(shape) > 1) for k in keys), keys

    # partial writes: read-modify-write of chunks labelbin wrote
    expected = data.astype(native(dt))
    for n in range(2):
        lo = rng.integers(0, shape)
        cnt = np.array([rng.integers(1, s - a + 1) for a, s in zip(lo, shape)])
        patch = make_data(dt, tuple(cnt), rng)
        infile.write_bytes(patch.tobytes())
        run_tool("write-partial", path, infile, "--start", csv(lo),
                 "--count", csv(cnt))
        expected[tuple(slice(a, a + c) for a, c in zip(lo, cnt))] = patch
    z = zarr.open_array(str(path), mode="r")
    np.testing.assert_array_equal(z[...], expected)

    # and the other way round: zarr-python edits labelbin's dataset
    z = zarr.open_array(str(path), mode="r+")
    z[tuple(slice(0, (s + 1) // 2) for s in shape)] = 1
    expected[tuple(slice(0, (s + 1) // 2) for s in shape)] = 1
    info, got = lb_read(path, tmp_path)
    assert info["attrs"] == attrs  # 2^64-1 exact
    assert_same(got, expected, f"{path} after zarr-python wrote to it")


N5_WRITE_CODECS = [("raw", '{"type": "raw"}', None),
                   ("gzip", '{"type": "gzip", "level": 6}', {"id": "gzip", "level": 6}),
                   ("gzip_zlib", '{"type": "gzip", "level": 3, "useZlib": true}',
                    {"id": "zlib", "level": 3}),
                   ("bzip2", '{"type": "bzip2", "blockSize": 9}', {"id": "bz2", "level": 9}),
                   ("xz", '{"type": "xz", "preset": 6}', {"id": "lzma", "preset": 6}),
                   ("blosc", '{"type": "blosc", "cname": "lz4", "clevel": 5, '
                    '"shuffle": 1, "blocksize": 0}',
                    {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1}),
                   ("zstd", '{"type": "zstd", "level": 3}', {"id": "zstd", "level": 3}),
                   ("short_gzip", "gzip:5", {"id": "gzip", "level": 5}),
                   ("short_none", "none", None)]
N5_WRITE_CASES = [(dt, cid, shape_for(cid, i))
                  for i, (dt, cid) in enumerate(itertools.product(
                      N5_DTYPES, [c[0] for c in N5_WRITE_CODECS]))
                  if i % 2 == 0 or dt in ("u8", "u1")]


@pytest.mark.parametrize("case", N5_WRITE_CASES,
                         ids=[f"{d}-{c}-shape{s}" for d, c, s in N5_WRITE_CASES])
def test_n5_written_by_labelbin(case, tmp_path):
    dt, cid, si = case
    _, spec, want = next(c for c in N5_WRITE_CODECS if c[0] == cid)
    shape, chunks = SHAPES[si]
    rng = rng_for(f"n5w-{dt}-{cid}-{si}")
    root = tmp_path / "out.n5"
    path = root / "volumes" / "groundtruth" / "labels"
    data = make_data(dt, shape, rng)
    infile = tmp_path / "in.bin"
    infile.write_bytes(data.tobytes())
    run_tool("write", path, infile, "--format", "n5", "--dtype",
             native(dt).name, "--shape", csv(shape), "--chunks", csv(chunks),
             "--codec", spec, "--attrs",
             json.dumps({"resolution": [8, 4, 2, 1][:len(shape)]}))

    meta = json.loads((path / "attributes.json").read_text())
    assert meta["dimensions"] == list(shape)[::-1]
    assert meta["blockSize"] == list(chunks)[::-1]
    assert meta["dataType"] == native(dt).name
    assert meta["resolution"] == [8, 4, 2, 1][:len(shape)]
    assert (want is None) == (meta["compression"]["type"] == "raw"), meta
    root_attrs = json.loads((root / "attributes.json").read_text())
    assert "n5" in root_attrs, root_attrs
    # edge blocks are truncated to the array, as the Java reference writes
    for rel in stored_chunks(path):
        cidx = tuple(int(p) for p in rel.split(os.sep))[::-1]
        head = (path / rel).read_bytes()[:4 + 4 * len(shape)]
        dims = np.frombuffer(head[4:], dtype=">u4")[::-1]
        inside = [min(c, s - i * c) for i, c, s in zip(cidx, chunks, shape)]
        assert head[:2] == b"\0\0" and dims.tolist() == inside, (rel, dims)

    for store in (N5Store(str(root)), N5FSStore(str(root))):
        g = zarr.open_group(store=store, mode="r")
        z = g["volumes/groundtruth/labels"]
        assert z.dtype == native(dt)
        assert z.shape == tuple(shape) and z.chunks == tuple(chunks)
        config = z._compressor.compressor_config
        if want is None:
            assert config is None
        else:
            for key, value in want.items():
                assert config[key] == value, (config, want)
        np.testing.assert_array_equal(z[...], data)

    # read-modify-write across blocks, including truncated edge blocks
    expected = data.copy()
    lo = [s // 3 for s in shape]
    cnt = [s - a for a, s in zip(lo, shape)]
    patch = make_data(dt, tuple(cnt), rng)
    infile.write_bytes(patch.tobytes())
    run_tool("write-partial", path, infile, "--start", csv(lo), "--count", csv(cnt))
    expected[tuple(slice(a, a + c) for a, c in zip(lo, cnt))] = patch
    z = zarr.open_array(store=N5Store(str(root)), path="volumes/groundtruth/labels",
                        mode="r")
    np.testing.assert_array_equal(z[...], expected)


SPARSE_CASES = [("zarr2", "u8", "18446744073709551615", "zstd:1"),
                ("zarr2", "i2", "-7", '{"id": "blosc", "cname": "lz4", "clevel": 5, '
                 '"shuffle": 2, "blocksize": 0}'),
                ("zarr2", "u1", "null", "none"),
                ("n5", "u4", None, '{"type": "gzip", "level": 6}'),
                ("n5", "i8", None, '{"type": "raw"}')]


@pytest.mark.parametrize("case", SPARSE_CASES,
                         ids=[f"{c[0]}-{c[1]}-fill{c[2]}" for c in SPARSE_CASES])
def test_sparse_dataset_written_by_labelbin(case, tmp_path):
    """labelbin creates a dataset without data and writes one box: chunks it
    never touched stay absent and zarr-python reads them as the fill value;
    the chunks it touched were initialised from the fill value."""
    fmt, dt, fill_json, spec = case
    shape, chunks = (13, 17, 11), (5, 6, 4)
    rng = rng_for(f"sparse-{fmt}-{dt}")
    if fmt == "zarr2":
        container = tmp_path / "sparse.zarr"
        path = container / "a" / "b"
    else:
        container = tmp_path / "sparse.n5"
        path = container / "a" / "b"
    args = ["write", path, "-", "--format", fmt, "--dtype", native(dt).name,
            "--shape", csv(shape), "--chunks", csv(chunks), "--codec", spec,
            "--no-data"]
    if fill_json is not None:
        args += ["--fill", fill_json]
    run_tool(*args)
    assert stored_chunks(path) == []
    fill = json.loads(fill_json) if fill_json is not None else 0
    expected = np.full(shape, 0 if fill is None else fill, dtype=native(dt))
    lo, cnt = (2, 3, 1), (4, 9, 6)  # inside chunks (0..1, 0..2, 0..1)
    patch = make_data(dt, cnt, rng)
    infile = tmp_path / "patch.bin"
    infile.write_bytes(patch.tobytes())
    run_tool("write-partial", path, infile, "--start", csv(lo), "--count", csv(cnt))
    expected[tuple(slice(a, a + c) for a, c in zip(lo, cnt))] = patch
    assert len(stored_chunks(path)) == 2 * 2 * 2
    if fmt == "zarr2":
        z = zarr.open(str(container), mode="r")["a/b"]
        assert z.fill_value == fill
    else:
        z = zarr.open_array(store=N5Store(str(container)), path="a/b", mode="r")
    if fill is None:  # zarr-python leaves absent null-fill chunks undefined
        stored = tuple(slice(0, 2 * c) for c in chunks)
        np.testing.assert_array_equal(z[stored], expected[stored])
    else:
        np.testing.assert_array_equal(z[...], expected)
    _, got = lb_read(path, tmp_path)
    assert_same(got, expected, f"{path}")


CROSS_CASES = [("zarr2", "u8", "max", "C", COMPRESSOR_BY_ID["blosc_zstd_s2"]),
               ("zarr2", ">i2", "min", "F", COMPRESSOR_BY_ID["gzip1"]),
               ("zarr2", "u4", "7", "F", None),
               ("zarr2", "u1", "null", "C", COMPRESSOR_BY_ID["lz4"]),
               ("n5", "u2", "0", "C", numcodecs.GZip(5)),
               ("n5", "i8", "0", "C", numcodecs.Blosc("lz4", 5, 1))]


@pytest.mark.parametrize("case", CROSS_CASES, ids=[
    f"{c[0]}-{c[1].replace('>', 'be')}-fill{c[2]}-{c[3]}" for c in CROSS_CASES])
def test_partial_write_into_zarr_python_dataset(case, tmp_path):
    """zarr-python creates a dataset with absent chunks; labelbin writes a
    box across present, absent and edge chunks; zarr-python reads the merge.
    Absent chunks that labelbin touches must start from the fill value."""
    fmt, dt, fill_kind, order, compressor = case
    fill = fill_for(fill_kind, dt)
    shape, chunks = (13, 17, 11), (5, 6, 4)
    rng = rng_for(f"cross-{fmt}-{dt}")
    if fmt == "zarr2":
        path = tmp_path / "x.zarr"
        z = zarr.open_array(str(path), mode="w", shape=shape, chunks=chunks,
                            dtype=dt, order=order, compressor=compressor,
                            fill_value=fill)

        def reopen():
            return zarr.open_array(str(path), mode="r")
    else:
        root = tmp_path / "x.n5"
        z = zarr.open_array(store=N5Store(str(root)), path="labels", mode="w",
                            shape=shape, chunks=chunks, dtype=dt,
                            compressor=compressor, fill_value=0)
        path = root / "labels"

        def reopen():
            return zarr.open_array(store=N5Store(str(root)), path="labels", mode="r")
    expected = np.full(shape, 0 if fill is None else fill, dtype=native(dt))
    first = make_data(dt, (5, 6, 11), rng)
    z[:5, :6, :] = first
    expected[:5, :6, :] = first
    lo, cnt = (3, 4, 2), (10, 13, 9)  # reaches every edge and absent chunks
    patch = make_data(dt, cnt, rng)
    infile = tmp_path / "patch.bin"
    infile.write_bytes(patch.tobytes())
    run_tool("write-partial", path, infile, "--start", csv(lo), "--count", csv(cnt))
    expected[tuple(slice(a, a + c) for a, c in zip(lo, cnt))] = patch
    got = reopen()[...]
    if fill is None:  # undefined where nothing was written: compare the rest
        mask = np.zeros(shape, bool)
        mask[:5, :6, :] = True
        mask[tuple(slice(a, a + c) for a, c in zip(lo, cnt))] = True
        np.testing.assert_array_equal(got[mask], expected[mask])
    else:
        np.testing.assert_array_equal(got, expected)
    _, raw = lb_read(path, tmp_path)
    assert_same(raw, expected, f"{path} after write-partial")


# ------------------------------------------------------- 3. golden inputs --

def golden_cases():
    """The repository's conformance cases, then those in GOLDEN_DIR if any."""
    out = []
    for root in (CONFORMANCE_DIR, GOLDEN_DIR):
        if os.path.isdir(root):
            out += [os.path.join(root, d) for d in sorted(os.listdir(root))
                    if os.path.isfile(os.path.join(root, d, "case.json"))]
    return out


@pytest.mark.parametrize("case_dir", golden_cases())
def test_golden_source_reads_like_zarr_python(case_dir, tmp_path):
    with open(os.path.join(case_dir, "case.json")) as f:
        case = json.load(f)
    source = case["source"]
    parts = source.split("/")
    k = next(i for i, p in enumerate(parts) if p.endswith((".zarr", ".n5")))
    container = os.path.join(case_dir, *parts[:k + 1])
    inner = "/".join(parts[k + 1:])
    if parts[k].endswith(".n5"):
        z = zarr.open_array(store=N5Store(container), path=inner, mode="r")
    else:
        z = zarr.open_array(store=container, path=inner, mode="r")
    info, got = lb_read(os.path.join(case_dir, source), tmp_path)
    props = case.get("expected_properties", {})
    assert info["dtype"] == z.dtype.name
    assert info["shape"] == list(z.shape)
    for key in ("dtype", "axes", "voxel_size", "roi"):
        if key in props:
            assert info[key] == props[key], (key, info[key], props[key])
    assert_same(got, z[...], source)


def test_golden_cases_present():
    assert len(golden_cases()) >= 7, f"no conformance cases in {CONFORMANCE_DIR}"


# --------------------------------------------------------- 4. bad chunks --

BAD_CASES = [("zarr2", "gzip", "truncated"), ("zarr2", "gzip", "garbage"),
             ("zarr2", "blosc", "truncated"), ("zarr2", "blosc", "garbage"),
             ("zarr2", "zstd", "garbage"), ("zarr2", "raw", "truncated"),
             ("zarr2", "lz4", "garbage"), ("zarr2", "bz2", "empty"),
             ("n5", "gzip", "truncated"), ("n5", "gzip", "garbage"),
             ("n5", "raw", "truncated"), ("n5", "raw", "header_only")]
BAD_CODECS = {"gzip": numcodecs.GZip(5), "blosc": numcodecs.Blosc("lz4", 5, 1),
              "zstd": numcodecs.Zstd(3), "raw": None, "lz4": numcodecs.LZ4(),
              "bz2": numcodecs.BZ2(5)}


@pytest.mark.parametrize("case", BAD_CASES, ids=["-".join(c) for c in BAD_CASES])
def test_corrupt_chunk_is_a_clean_error(case, tmp_path):
    fmt, cid, damage = case
    shape, chunks = (9, 10, 12), (4, 4, 4)
    rng = rng_for("bad-" + "-".join(case))
    data = make_data("u4", shape, rng)
    if fmt == "zarr2":
        path = tmp_path / "bad.zarr"
        z = zarr.open_array(str(path), mode="w", shape=shape, chunks=chunks,
                            dtype="u4", compressor=BAD_CODECS[cid])
        key = "1.2.0"
    else:
        path = tmp_path / "bad.n5" / "labels"
        z = zarr.open_array(store=N5Store(str(tmp_path / "bad.n5")), path="labels",
                            mode="w", shape=shape, chunks=chunks, dtype="u4",
                            compressor=BAD_CODECS[cid], fill_value=0)
        key = "0/2/1"  # C-order chunk (1, 2, 0), reversed
    z[...] = data
    chunk = path / key
    blob = chunk.read_bytes()
    if damage == "truncated":
        blob = blob[:len(blob) // 2]
    elif damage == "garbage":
        blob = rng.integers(0, 256, size=len(blob), dtype=np.uint8).tobytes()
    elif damage == "empty":
        blob = b""
    elif damage == "header_only":
        blob = blob[:4 + 4 * len(shape)]
    chunk.write_bytes(blob)

    for extra in ([], ["--roi", "4:8,8:10,0:4"]):
        proc = run_tool("read", path, tmp_path / "out.bin", *extra, expect_ok=False)
        assert proc.returncode == 1, (
            f"exit {proc.returncode} (negative = killed by a signal): {proc.stderr}")
        assert proc.stderr.startswith("tool_lbio: "), proc.stderr
        assert key in proc.stderr, f"message does not name chunk {key}: {proc.stderr}"
    # the intact chunks still read
    _, got = lb_read(path, tmp_path, roi="0:4,0:4,0:4")
    assert_same(got, data[:4, :4, :4], "an intact chunk next to a corrupt one")
