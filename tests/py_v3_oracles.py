"""The Zarr v3 oracles of tests/v3 checked against each other, without labelbin.

labelbin's Zarr v3 tests trust three tools; this file shows they deserve it:
- tests/v3/zarrita_write.mjs and zarrita_read.mjs (zarrita 0.7.5, the npm
  package, in BUILD/node) and
- tests/v3/shard_writer.py (an independent writer and strict reader written
  from the specification with numpy and numcodecs).

1. zarrita writes every dtype, codec (each blosc cname and shuffle),
   transpose order, chunk key encoding and fill value form; zarrita and the
   Python reader both read back exactly the source data.
2. The Python writer writes the same matrix (not sharded); zarrita reads it.
3. Every sharded case of shard_writer.py --cases reads back exactly through
   the Python reader and through zarrita: directly (index at the end), after
   moving the index to the end (index at the start), or re-wrapped shard by
   shard (nested sharding, transpose before sharding), which zarrita cannot
   read as they are.
4. What zarrita 0.7.5 cannot do is confirmed, so the interop matrix in
   tests/v3/README.md stays true: no gzip/crc32c encoding, blosc shuffle
   ignored on write, no sharded writes, index at the start misread (node
   aborts), nested sharding refused, a transpose before sharding silently
   ignored, crc32c never verified, hex and > 2^53 integer fill values
   misparsed.
5. Every --hostile case is malformed the way its note says (the strict
   reader refuses it) and every odd-but-valid one reads correctly.

Needs node and zarrita (scripts/install-deps puts zarrita in BUILD/node);
the zarrita tests skip, saying so, only when node or zarrita is not
installed. LB_BUILD_DIR gives the build directory. Seeded (LB_SEED).
Run: /usr/bin/python3 -m pytest -q tests/py_v3_oracles.py
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
V3 = os.path.join(HERE, "v3")
sys.path.insert(0, V3)
import shard_writer as sw  # noqa: E402

SOURCE_DIR = os.environ.get("LB_SOURCE_DIR", os.path.dirname(HERE))
BUILD_DIR = os.environ.get("LB_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
SEED = int(os.environ.get("LB_SEED", "20250301"))
WRITE = os.path.join(V3, "zarrita_write.mjs")
READ = os.path.join(V3, "zarrita_read.mjs")


@pytest.fixture(autouse=True)
def _print_seed():
    print(f"py_v3_oracles: seed {SEED} (set LB_SEED to change)")


def rng_for(name):
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def bits(a):
    """An unsigned view, so NaNs and -0.0 compare by their bits."""
    a = np.ascontiguousarray(a)
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def assert_same(got, want, what):
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    diff = bits(got) != bits(want)
    if diff.any():
        pos = tuple(int(i) for i in np.argwhere(diff)[0])
        raise AssertionError(f"{what}: {int(diff.sum())} elements differ, first at {pos}: "
                             f"{got[pos]!r} != {want[pos]!r}")


# ------------------------------------------------------------------ zarrita --

class Zarrita:
    """Runs the two node scripts against the zarrita in BUILD/node."""

    def __init__(self, node, node_dir):
        self.node, self.env = node, dict(os.environ, LB_NODE_DIR=node_dir)

    def run(self, script, *args, stdin=None):
        return subprocess.run([self.node, script, *map(str, args)], input=stdin, env=self.env,
                              capture_output=True, text=True, timeout=600)

    def _lines(self, proc):
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def write(self, specs):
        """Write a batch; returns the report lines (with "error" for failures)."""
        proc = self.run(WRITE, "-", stdin=json.dumps(specs))
        lines = self._lines(proc)
        if len(lines) != len(specs):
            raise AssertionError(f"zarrita_write.mjs exited {proc.returncode}:\n{proc.stderr}")
        return lines

    def read(self, items):
        """Read a batch of {"path", "out", "region"?}; returns header lines."""
        proc = self.run(READ, "--batch", "-", stdin=json.dumps(items))
        lines = self._lines(proc)
        if len(lines) != len(items):
            raise AssertionError(f"zarrita_read.mjs exited {proc.returncode}:\n{proc.stderr}")
        return lines

    def read_arrays(self, paths, tmp):
        """path -> (numpy array or None, header); arrays it refuses give None."""
        items = [{"path": p, "out": os.path.join(tmp, f"zr{i}.bin")} for i, p in enumerate(paths)]
        out = {}
        for item, h in zip(items, self.read(items)):
            if "error" in h:
                out[item["path"]] = (None, h)
            else:
                out[item["path"]] = (sw.load_raw(item["out"], h["dtype"], h["shape"]), h)
        return out


def _find_node_dir():
    for d in (os.environ.get("LB_NODE_DIR"), os.path.join(BUILD_DIR, "node"),
              os.path.join(SOURCE_DIR, "build", "node")):
        if d and os.path.isfile(os.path.join(d, "node_modules", "zarrita", "package.json")):
            return d
    return None


@pytest.fixture(scope="module")
def zarrita():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (scripts/install-deps installs Debian's nodejs)")
    d = _find_node_dir()
    if d is None:
        pytest.skip(f"zarrita is not installed in {BUILD_DIR}/node "
                    f"(run scripts/install-node-deps {BUILD_DIR})")
    with open(os.path.join(d, "node_modules", "zarrita", "package.json")) as f:
        assert json.load(f)["version"] == "0.7.5", "the matrix below is zarrita 0.7.5's"
    return Zarrita(node, d)


# ------------------------------------------------------------- the matrix --

FILL_OF = {"bool": True, "int8": -3, "uint8": 200, "int16": -300, "uint16": 65000,
           "int32": -70000, "uint32": 4000000000, "int64": -(1 << 40), "uint64": (1 << 53) - 7,
           "float32": -0.5, "float64": 1.5e300}


def make_data(name, shape, dtype, chunks, fill):
    """Random data with about a third of the chunks all fill value, so that
    writers leave them out and readers must fill them in."""
    rng = rng_for(name)
    dt = sw.DTYPES[dtype]
    if dtype == "bool":
        a = rng.integers(0, 2, shape).astype(bool)
    elif dt.kind == "f":
        a = (rng.standard_normal(shape) * 1000).astype(dt)
    else:
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
    f = sw.fill_array(dtype, fill)
    grid = [-(-s // c) for s, c in zip(shape, chunks)]
    for pos in np.ndindex(*grid):
        if rng.random() < 0.35:
            a[tuple(slice(p * c, (p + 1) * c) for p, c in zip(pos, chunks))] = f
    return a


def BYTES(endian="little"):
    return {"name": "bytes", "configuration": {"endian": endian}}


def TRANSPOSE(order):
    return {"name": "transpose", "configuration": {"order": order}}


def GZIP(level=5):
    return {"name": "gzip", "configuration": {"level": level}}


def ZSTD(level=3):
    return {"name": "zstd", "configuration": {"level": level, "checksum": False}}


def BLOSC(cname, shuffle, typesize):
    return {"name": "blosc", "configuration": {"cname": cname, "clevel": 5, "shuffle": shuffle,
                                               "typesize": typesize, "blocksize": 0}}


CRC = {"name": "crc32c"}
DEFAULT_SLASH = {"name": "default", "configuration": {"separator": "/"}}


def matrix():
    """name -> dict(dtype, codecs, fill (JSON value), cke): zarrita's write
    matrix, also written by the Python writer for zarrita to read."""
    m = {}
    for dt in sw.DTYPES:
        m[f"dtype_{dt}"] = dict(dtype=dt, codecs=[BYTES()], fill=FILL_OF[dt])
    for dt in ("uint16", "int32", "uint64", "float32", "float64"):
        m[f"bytes_big_{dt}"] = dict(dtype=dt, codecs=[BYTES("big")], fill=FILL_OF[dt])
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]):
        m["transpose_" + "".join(map(str, order))] = dict(
            dtype="uint32", codecs=[TRANSPOSE(order), BYTES()], fill=0)
    m["transpose_F_big_gzip_u64"] = dict(dtype="uint64", codecs=[TRANSPOSE([2, 1, 0]), BYTES("big"), GZIP(1)], fill=0)
    m["gzip_1"] = dict(dtype="uint16", codecs=[BYTES(), GZIP(1)], fill=0)
    m["gzip_9_int8"] = dict(dtype="int8", codecs=[BYTES(), GZIP(9)], fill=0)
    m["zstd_3"] = dict(dtype="int32", codecs=[BYTES(), ZSTD(3)], fill=0)
    m["zstd_19_f64"] = dict(dtype="float64", codecs=[BYTES(), ZSTD(19)], fill=0.0)
    for cname in ("lz4", "lz4hc", "blosclz", "zstd", "snappy", "zlib"):
        for shuffle in ("noshuffle", "shuffle", "bitshuffle"):
            m[f"blosc_{cname}_{shuffle}"] = dict(dtype="uint16", codecs=[BYTES(), BLOSC(cname, shuffle, 2)], fill=0)
    m["blosc_shuffle_u64"] = dict(dtype="uint64", codecs=[BYTES(), BLOSC("lz4", "shuffle", 8)], fill=0)
    m["crc32c"] = dict(dtype="uint8", codecs=[BYTES(), CRC], fill=0)
    m["gzip_crc32c"] = dict(dtype="int16", codecs=[BYTES(), GZIP(), CRC], fill=0)
    m["crc32c_then_zstd"] = dict(dtype="int64", codecs=[BYTES("big"), CRC, ZSTD()], fill=0)
    m["everything"] = dict(dtype="uint32", codecs=[TRANSPOSE([1, 2, 0]), BYTES("big"),
                                                   BLOSC("zstd", "bitshuffle", 4), CRC], fill=7)
    for name, sep in (("default", "/"), ("default", "."), ("v2", "."), ("v2", "/")):
        m[f"key_{name}_{'slash' if sep == '/' else 'dot'}"] = dict(
            dtype="uint16", codecs=[BYTES()], fill=0,
            cke={"name": name, "configuration": {"separator": sep}})
    m["key_v2_no_config"] = dict(dtype="uint16", codecs=[BYTES()], fill=0, cke={"name": "v2"})
    for dt, fill in (("float32", "NaN"), ("float32", "Infinity"), ("float64", "-Infinity"),
                     ("float32", -0.0), ("float64", 0.1), ("int64", -(1 << 63)),
                     ("uint32", (1 << 32) - 1), ("bool", False)):
        m[f"fill_{dt}_{fill}"] = dict(dtype=dt, codecs=[BYTES()], fill=fill)
    # Fill values zarrita 0.7.5 misparses (test_zarrita_misparses_fill).
    for dt, fill in (("uint64", (1 << 64) - 1), ("int64", (1 << 63) - 1),
                     ("float32", "0x7fc00001"), ("float64", "0x7ff0000000000001"),
                     ("float32", "0x3f800000")):
        m[f"fill_{dt}_{fill}"] = dict(dtype=dt, codecs=[BYTES()], fill=fill, misparsed=True)
    for c in m.values():
        c.setdefault("cke", DEFAULT_SLASH)
    return m


MATRIX = matrix()
SHAPE, CHUNKS = (7, 10, 13), (3, 4, 5)


def _spec(name, case, root):
    data = make_data(name, SHAPE, case["dtype"], CHUNKS, case["fill"])
    raw = os.path.join(root, name + ".src")
    sw.dump_raw(data, raw)
    return data, {"path": os.path.join(root, name + ".zarr"), "shape": list(SHAPE),
                  "chunk_shape": list(CHUNKS), "data_type": case["dtype"], "codecs": case["codecs"],
                  "fill_value_json": json.dumps(case["fill"]), "chunk_key_encoding": case["cke"],
                  "dimension_names": ["z", "y", None], "attributes": {"case": name},
                  "data": raw, "write_empty_chunks": False}


@pytest.fixture(scope="module")
def zarrita_written(zarrita, tmp_path_factory):
    """Every MATRIX case written by zarrita: name -> (source, spec, report)."""
    root = str(tmp_path_factory.mktemp("zw"))
    built = {n: _spec(n, c, root) for n, c in MATRIX.items()}
    reports = zarrita.write([s for _, s in built.values()])
    return {n: (d, s, r) for (n, (d, s)), r in zip(built.items(), reports)}


@pytest.fixture(scope="module")
def zarrita_read_back(zarrita, zarrita_written, tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("zr"))
    return zarrita.read_arrays([s["path"] for _, s, _ in zarrita_written.values()], tmp)


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_zarrita_writes_and_both_read_back(name, zarrita_written, zarrita_read_back):
    data, spec, report = zarrita_written[name]
    assert "error" not in report, report["error"]
    assert report["chunks_skipped"] > 0, "the data has all-fill chunks to leave out"
    # The independent strict reader: checksums, sizes, fill value forms.
    assert_same(sw.read_array(spec["path"]), data, f"{name}: Python reader")
    got, header = zarrita_read_back[spec["path"]]
    assert got is not None, header.get("error")
    assert header["dimension_names"] == ["z", "y", None]
    assert header["attributes"] == {"case": name}
    if MATRIX[name].get("misparsed"):
        keep = bits(data) != bits(sw.fill_array(MATRIX[name]["dtype"], MATRIX[name]["fill"]))
        assert_same(got[keep], data[keep], f"{name}: zarrita outside fill")
    else:
        assert_same(got, data, f"{name}: zarrita")


def test_zarrita_writes_every_key_encoding(zarrita_written):
    want = {"key_default_slash": "c/1/2/0", "key_default_dot": "c.1.2.0",
            "key_v2_dot": "1.2.0", "key_v2_slash": "1/2/0", "key_v2_no_config": "1.2.0"}
    for name, key in want.items():
        data, spec, _ = zarrita_written[name]
        block = data[3:6, 8:10, 0:5]
        present = not (bits(block) == bits(sw.fill_array("uint16", 0))).all()
        assert os.path.isfile(os.path.join(spec["path"], key)) == present, (name, key)


def test_zarrita_blosc_header_matches_request(zarrita_written):
    """With the augmented encoder, each chunk's blosc header carries the
    shuffle the metadata names (typesize stays numcodecs.js' fixed 4)."""
    flag = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 4}
    for shuffle in flag:
        _, spec, _ = zarrita_written[f"blosc_lz4_{shuffle}"]
        for path in _shard_files(spec["path"]):
            with open(path, "rb") as f:
                head = f.read(4)
            assert head[2] & 0x5 == flag[shuffle], (shuffle, path, head[2])
            assert head[3] == 4


def _py_written(root):
    out = {}
    for name, case in MATRIX.items():
        data = make_data(name, SHAPE, case["dtype"], CHUNKS, case["fill"])
        path = os.path.join(root, name + ".zarr")
        sw.write_array(path, data, CHUNKS, case["codecs"], case["fill"],
                       chunk_key_encoding=case["cke"], dimension_names=["z", "y", None])
        out[name] = (data, path)
    return out


def test_zarrita_reads_python_writer(zarrita, tmp_path):
    written = _py_written(str(tmp_path / "w"))
    got = zarrita.read_arrays([p for _, p in written.values()], str(tmp_path))
    for name, (data, path) in written.items():
        arr, header = got[path]
        assert arr is not None, f"{name}: {header.get('error')}"
        if MATRIX[name].get("misparsed"):
            keep = bits(data) != bits(sw.fill_array(MATRIX[name]["dtype"], MATRIX[name]["fill"]))
            assert_same(arr[keep], data[keep], f"{name}: zarrita outside fill")
        else:
            assert_same(arr, data, f"{name}: zarrita")


def test_python_writer_reads_back_itself(tmp_path):
    for name, (data, path) in _py_written(str(tmp_path)).items():
        assert_same(sw.read_array(path), data, name)


def test_zarrita_reads_regions(zarrita, zarrita_written, tmp_path):
    data, spec, _ = zarrita_written["everything"]
    items = [{"path": spec["path"], "out": str(tmp_path / "r.bin"), "region": "2:6,,5:11"}]
    (h,) = zarrita.read(items)
    assert h["shape"] == [4, 10, 6]
    assert_same(sw.load_raw(items[0]["out"], "uint32", h["shape"]), data[2:6, :, 5:11], "region")


# ------------------------------------------------- what zarrita cannot do --

def _one_spec(tmp_path, name, dtype="uint16", codecs=None, encoders="zarrita"):
    data, spec = _spec(name, dict(dtype=dtype, codecs=codecs or [BYTES()], fill=0, cke=DEFAULT_SLASH),
                       str(tmp_path))
    spec["encoders"] = encoders
    return data, spec


@pytest.mark.parametrize("codec,message", [
    (GZIP(), "Unsupported: gzip encode"),
    (CRC, "Unsupported: crc32c encode"),
])
def test_zarrita_cannot_encode(zarrita, tmp_path, codec, message):
    _, spec = _one_spec(tmp_path, "enc", codecs=[BYTES(), codec])
    p = zarrita.run(WRITE, "-", stdin=json.dumps(spec))
    assert p.returncode == 1 and message in p.stderr, p.stderr


def test_zarrita_native_encoders(zarrita, tmp_path):
    """What zarrita encodes by itself: bytes, transpose, zstd, blosc -- but
    its blosc ignores the v3 shuffle string (numcodecs.js wants a number)."""
    cases = {"native_zstd": [BYTES(), ZSTD()],
             "native_transpose_big": [TRANSPOSE([2, 0, 1]), BYTES("big")],
             "native_blosc": [BYTES(), BLOSC("lz4", "bitshuffle", 2)]}
    built = {n: _one_spec(tmp_path, n, codecs=c) for n, c in cases.items()}
    reports = zarrita.write([s for _, s in built.values()])
    for (name, (data, spec)), rep in zip(built.items(), reports):
        assert "error" not in rep, rep
        assert set(rep["encoders"].values()) <= {"zarrita", "zarrita (numcodecs.js wasm)"}
        assert_same(sw.read_array(spec["path"]), data, name)
    for path in _shard_files(built["native_blosc"][1]["path"]):
        with open(path, "rb") as f:
            assert f.read(4)[2] & 0x5 == 0, "zarrita's own blosc encoder does not shuffle"


def test_zarrita_cannot_write_sharded(zarrita, tmp_path):
    _, spec = _one_spec(tmp_path, "sharded", codecs=[sw.sharding((1, 2, 5))], encoders="augmented")
    p = zarrita.run(WRITE, "-", stdin=json.dumps(spec))
    assert p.returncode == 1 and "set on sharded arrays" in p.stderr, p.stderr


def test_zarrita_misparses_fill(zarrita, zarrita_written, zarrita_read_back):
    """JSON.parse rounds integers beyond 2^53 (2^64-1 becomes 2^64, stored as
    0) and a hex float fill is filled in as the number the hex digits spell."""
    want = {"fill_uint64_18446744073709551615": 0,
            "fill_int64_9223372036854775807": -(1 << 63),
            "fill_float32_0x3f800000": np.float32(0x3F800000),
            "fill_float64_0x7ff0000000000001": np.float64(0x7FF0000000000001)}
    for name, value in want.items():
        data, spec, _ = zarrita_written[name]
        got, _ = zarrita_read_back[spec["path"]]
        at_fill = bits(data) == bits(sw.fill_array(MATRIX[name]["dtype"], MATRIX[name]["fill"]))
        assert at_fill.any()
        assert (got[at_fill] == value).all(), (name, got[at_fill][:3])


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("cases"))
    return root, {e["name"]: e for e in sw.write_cases(root, SEED)}


def _case(cases, name):
    root, m = cases
    e = m[name]
    return os.path.join(root, e["path"]), sw.load_raw(os.path.join(root, e["data"]), e["dtype"], e["shape"])


def test_zarrita_misreads_index_at_start(zarrita, cases, tmp_path):
    """zarrita 0.7.5 always takes the index from the end of a shard: with
    the index at the start, garbage offsets reach fs.read, which can abort
    node itself. So the direction is covered by relocating the index."""
    for name in ("start_bytes_crc", "start_blosc_lz4_shuffle"):
        path, data = _case(cases, name)
        p = zarrita.run(READ, path, tmp_path / "o.bin")
        if p.returncode == 0:
            got = sw.load_raw(tmp_path / "o.bin", cases[1][name]["dtype"], data.shape)
            assert (bits(got) != bits(data)).any(), f"{name}: zarrita read it right after all"
        else:   # an error, or node aborting on an assertion in fs.read
            assert p.returncode in (1, -signal.SIGABRT), (p.returncode, p.stderr)


def test_zarrita_refuses_nested_sharding(zarrita, cases, tmp_path):
    path, _ = _case(cases, "nested")
    p = zarrita.run(READ, path, tmp_path / "o.bin")
    assert p.returncode == 1 and "Unknown codec: sharding_indexed" in p.stderr, p.stderr


def test_zarrita_ignores_transpose_before_sharding(zarrita, tmp_path):
    """zarrita keeps only the sharding codec of the outer chain: a transpose
    before it is dropped and the data comes back permuted, without error."""
    data = np.arange(8 * 8 * 8, dtype=np.uint16).reshape(8, 8, 8)
    path = str(tmp_path / "t.zarr")
    sw.write_array(path, data, (8, 8, 8), [TRANSPOSE([2, 1, 0]), sw.sharding((4, 4, 4))])
    assert_same(sw.read_array(path), data, "Python reader")
    (got, h), = zarrita.read_arrays([path], str(tmp_path)).values()
    assert got is not None, h
    assert_same(got, data.transpose(2, 1, 0), "zarrita reads the stored (transposed) order")


def test_zarrita_does_not_verify_crc32c(zarrita, tmp_path):
    data = np.arange(8 * 8 * 8, dtype=np.uint16).reshape(8, 8, 8) + 1
    path = str(tmp_path / "crc.zarr")
    sw.write_array(path, data, (8, 8, 8), [sw.sharding((4, 4, 4), [BYTES(), CRC])],
                   layout=sw.Layout(order="c", gap=0))
    shard = os.path.join(path, "c", "0", "0", "0")
    with open(shard, "r+b") as f:      # a data byte of inner chunk 0
        f.seek(0)
        f.write(b"\xff")
    with pytest.raises(sw.Malformed, match="crc32c mismatch"):
        sw.read_array(path)
    (got, h), = zarrita.read_arrays([path], str(tmp_path)).values()
    assert got is not None, h
    assert got[0, 0, 0] != data[0, 0, 0] and (got.ravel()[1:] == data.ravel()[1:]).all()


# ------------------------------------------------------- the sharded cases --

def _shard_files(path):
    for d, _, files in os.walk(path):
        for f in files:
            if f != "zarr.json":
                yield os.path.join(d, f)


def _top_sharding(meta):
    for i, c in enumerate(meta["codecs"]):
        if c["name"] == "sharding_indexed":
            return i, c["configuration"]
    raise AssertionError("not sharded")


def _parse_index(blob, cfg, n):
    """(offset, nbytes) per inner chunk; index codecs bytes (+ crc32c)."""
    isize = sw._index_size(cfg, n)
    at_start = cfg.get("index_location", "end") == "start"
    raw = blob[:isize] if at_start else blob[len(blob) - isize:]
    endian = cfg["index_codecs"][0]["configuration"]["endian"]
    index = np.frombuffer(raw[:16 * n], "<u8" if endian == "little" else ">u8").reshape(n, 2)
    return index.astype(np.uint64), isize, at_start


def relocate(src, dest):
    """Copy an array whose shards have the index at the start, moving each
    index to the end (offsets shifted, crc32c recomputed): the same shard
    content in the form zarrita can read."""
    shutil.copytree(src, dest)
    with open(os.path.join(dest, "zarr.json")) as f:
        meta = json.load(f)
    i, cfg = _top_sharding(meta)
    shard_shape = sw._shard_shape_of(meta)
    for o in meta["codecs"][:i]:
        shard_shape = [shard_shape[k] for k in o["configuration"]["order"]]
    n = int(np.prod([s // c for s, c in zip(shard_shape, cfg["chunk_shape"])]))
    for path in _shard_files(dest):
        with open(path, "rb") as f:
            blob = f.read()
        index, isize, at_start = _parse_index(blob, cfg, n)
        assert at_start
        index = index.copy()
        present = ~((index[:, 0] == sw.U64_MAX) & (index[:, 1] == sw.U64_MAX))
        index[present, 0] -= np.uint64(isize)
        raw = index.astype("<u8").tobytes()
        tail = raw + (struct.pack("<I", sw.crc32c(raw)) if isize > 16 * n else b"")
        with open(path, "wb") as f:
            f.write(blob[isize:] + tail)
    cfg["index_location"] = "end"
    for c in cfg["index_codecs"]:
        if c["name"] == "bytes":
            c["configuration"]["endian"] = "little"
    with open(os.path.join(dest, "zarr.json"), "w") as f:
        json.dump(meta, f)
    return dest


def _standalone(path, shape, dtype, fill, codecs, blob):
    os.makedirs(path)
    meta = {"zarr_format": 3, "node_type": "array", "shape": list(shape), "data_type": dtype,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(shape)}},
            "chunk_key_encoding": DEFAULT_SLASH, "fill_value": fill, "codecs": codecs}
    with open(os.path.join(path, "zarr.json"), "w") as f:
        json.dump(meta, f)
    key = os.path.join(path, *sw.chunk_key([0] * len(shape), DEFAULT_SLASH).split("/"))
    os.makedirs(os.path.dirname(key), exist_ok=True)
    with open(key, "wb") as f:
        f.write(blob)


def rewrap(src, data, root):
    """Turn each shard into arrays zarrita can read: a shard after a
    transpose becomes an array of the transposed shard shape; each inner
    shard of a nested shard becomes an array of the inner chunk shape.
    Returns [(array dir, expected numpy data)]."""
    with open(os.path.join(src, "zarr.json")) as f:
        meta = json.load(f)
    i, cfg = _top_sharding(meta)
    dt, fill = meta["data_type"], meta["fill_value"]
    shard = sw._shard_shape_of(meta)
    f0 = sw.fill_array(dt, fill)
    grid = [-(-s // c) for s, c in zip(data.shape, shard)]
    out = []
    for pos in np.ndindex(*grid):
        key = os.path.join(src, *sw.chunk_key(pos, meta["chunk_key_encoding"]).split("/"))
        if not os.path.isfile(key):
            continue
        with open(key, "rb") as f:
            blob = f.read()
        block = np.empty(shard, data.dtype)
        block[...] = f0
        sl = tuple(slice(p * c, min((p + 1) * c, s)) for p, c, s in zip(pos, shard, data.shape))
        block[tuple(slice(0, s.stop - s.start) for s in sl)] = data[sl]
        for o in meta["codecs"][:i]:
            block = block.transpose(o["configuration"]["order"])
        name = os.path.join(root, "shard_" + "_".join(map(str, pos)))
        inner = cfg["codecs"]
        if i > 0:   # a transpose before sharding: the shard as it is
            _standalone(name, block.shape, dt, fill, [meta["codecs"][i]], blob)
            out.append((name, np.ascontiguousarray(block)))
            continue
        assert inner[0]["name"] == "sharding_indexed", "rewrap handles nesting or a transpose"
        cs = cfg["chunk_shape"]
        igrid = [s // c for s, c in zip(block.shape, cs)]
        index, _, _ = _parse_index(blob, cfg, int(np.prod(igrid)))
        for k, ipos in enumerate(np.ndindex(*igrid)):
            off, nb = (int(x) for x in index[k])
            if off == sw.U64_MAX:
                continue
            sub = block[tuple(slice(p * c, (p + 1) * c) for p, c in zip(ipos, cs))]
            iname = f"{name}_{k}"
            _standalone(iname, cs, dt, fill, inner, blob[off:off + nb])
            out.append((iname, np.ascontiguousarray(sub)))
    return out


@pytest.mark.parametrize("name", sorted(sw.valid_case_specs()))
def test_python_reader_reads_sharded_case(cases, name):
    path, data = _case(cases, name)
    assert_same(sw.read_array(path), data, name)


@pytest.fixture(scope="module")
def zarrita_on_cases(zarrita, cases, tmp_path_factory):
    """For each case, [(array dir zarrita reads, expected)] and the reads."""
    root, manifest = cases
    tmp = str(tmp_path_factory.mktemp("zc"))
    plan = {}
    for name, e in manifest.items():
        path, data = _case(cases, name)
        how = e["zarrita"]
        if how in ("direct", "nonfill"):
            plan[name] = [(path, data)]
        elif how == "relocate":
            plan[name] = [(relocate(path, os.path.join(tmp, name)), data)]
        elif how in ("rewrap", "rewrap+relocate"):
            wrapped = rewrap(path, data, os.path.join(tmp, name))
            if how == "rewrap+relocate":
                wrapped = [(relocate(p, p + "_end"), d) for p, d in wrapped]
            assert wrapped, f"{name}: nothing to rewrap"
            plan[name] = wrapped
        else:
            raise AssertionError(f"{name}: unknown zarrita mode {how}")
    reads = zarrita.read_arrays([p for v in plan.values() for p, _ in v], tmp)
    return plan, reads


@pytest.mark.parametrize("name", sorted(sw.valid_case_specs()))
def test_zarrita_reads_sharded_case(name, cases, zarrita_on_cases):
    plan, reads = zarrita_on_cases
    e = cases[1][name]
    for path, want in plan[name]:
        got, h = reads[path]
        assert got is not None, f"{name}: {path}: {h.get('error')}"
        assert h["sharded"]
        if e["zarrita"] == "nonfill":
            keep = bits(want) != bits(sw.fill_array(e["dtype"], sw.valid_case_specs()[name]["fill"]))
            assert keep.any() and not keep.all()
            assert_same(got[keep], want[keep], f"{name}: zarrita outside fill")
        else:
            assert_same(got, want, f"{name}: zarrita ({e['zarrita']}) {os.path.basename(path)}")


def test_shards_have_shuffled_inner_chunks_with_gaps_and_absences(cases):
    path, _ = _case(cases, "end_bytes_crc")
    cfg = sw.valid_case_specs()["end_bytes_crc"]["codecs"][0]["configuration"]
    n = 2 * 2 * 2
    shuffled = gaps = absent = False
    for f in _shard_files(path):
        with open(f, "rb") as fh:
            blob = fh.read()
        index, isize, _ = _parse_index(blob, cfg, n)
        raw = blob[-isize:]
        assert struct.unpack("<I", raw[-4:])[0] == sw.crc32c(raw[:-4])
        present = index[:, 0] != sw.U64_MAX
        absent |= not present.all()
        offs = index[present, 0].astype(np.int64)
        shuffled |= bool((np.diff(offs) < 0).any())
        gaps |= int(index[present, 1].sum()) + isize < len(blob)
    assert shuffled and gaps and absent


def test_spec_example_index_is_68_bytes(cases):
    """The sharding spec's example: a [64, 64] shard of [32, 32] chunks with
    bytes + crc32c index codecs has a 16 * 4 + 4 = 68 byte index."""
    path, _ = _case(cases, "spec_example")
    cfg = sw.valid_case_specs()["spec_example"]["codecs"][0]["configuration"]
    assert sw._index_size(cfg, 4) == 68
    with open(os.path.join(path, "c", "0", "0"), "rb") as f:
        blob = f.read()
    raw = blob[-68:]
    assert struct.unpack("<I", raw[64:])[0] == sw.crc32c(raw[:64])
    index = np.frombuffer(raw[:64], "<u8").reshape(4, 2)
    present = index[:, 0] != sw.U64_MAX
    assert ((index[present, 0] + index[present, 1]) <= len(blob) - 68).all()


def test_nested_and_edge_shards_exist(cases):
    path, data = _case(cases, "nested")
    assert data.shape[2] % 16 != 0          # edge shards along x
    assert any(os.path.basename(f) == "2" for f in _shard_files(path))


# ------------------------------------------------------------ crc and fill --

def test_crc32c_check_values():
    assert sw.crc32c(b"123456789") == 0xE3069283
    assert sw.crc32c(bytes(32)) == 0x8A9136AA
    assert sw.crc32c(b"\xff" * 32) == 0x62A8AB43      # RFC 3720 B.4


def test_crc32c_of_zarrita_write_matches(zarrita_written):
    """The JS crc32c (zarrita_write.mjs) and the Python one agree."""
    _, spec, report = zarrita_written["crc32c"]
    assert report["encoders"]["crc32c"] == "zarrita_write.mjs crc32c"
    n = 0
    for path in _shard_files(spec["path"]):
        with open(path, "rb") as f:
            blob = f.read()
        assert struct.unpack("<I", blob[-4:])[0] == sw.crc32c(blob[:-4])
        n += 1
    assert n > 10


@pytest.mark.parametrize("dtype,value,want", [
    ("float32", "NaN", 0x7FC00000), ("float64", "NaN", 0x7FF8000000000000),
    ("float32", "Infinity", 0x7F800000), ("float64", "-Infinity", 0xFFF0000000000000),
    ("float32", "0x7fc00001", 0x7FC00001), ("float64", "0x0000000000000001", 1),
    ("float32", -0.0, 0x80000000), ("float64", 1.0, 0x3FF0000000000000),
    ("uint64", (1 << 64) - 1, (1 << 64) - 1), ("int64", -1, (1 << 64) - 1),
    ("int8", -128, 0x80), ("bool", True, 1),
])
def test_fill_value_forms(dtype, value, want):
    assert int(bits(sw.fill_array(dtype, value).reshape(1))[0]) == want


# ----------------------------------------------------------------- hostile --

@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("hostile"))
    return root, sw.hostile_cases(root)


def test_hostile_manifest_is_complete(hostile):
    root, manifest = hostile
    names = [e["name"] for e in manifest]
    assert len(names) == len(set(names))
    for e in manifest:
        assert e["expect"] in ("read", "refuse") and e["note"].strip(), e
        assert os.path.isfile(os.path.join(root, e["path"], "zarr.json")), e
    assert sum(e["expect"] == "refuse" for e in manifest) >= 60
    kinds = " ".join(names)
    for word in ("index_offset_outside", "overlap_identical", "index_overflow", "index_bad_crc",
                 "truncated_shard", "chunk_size_short", "nest_deep", "nest_huge_shape",
                 "unknown_codec", "unknown_chunk_grid", "zarr_format_2", "node_type_group",
                 "missing_shape", "shape_string"):
        assert word in kinds


def test_hostile_cases_are_what_they_say(hostile):
    """The strict reader refuses each "refuse" case and reads each "read"
    case exactly: the corpus is malformed where, and only where, it claims."""
    root, manifest = hostile
    for e in manifest:
        path = os.path.join(root, e["path"])
        if e["expect"] == "refuse":
            with pytest.raises(sw.Malformed):
                sw.read_array(path)
        else:
            want = sw.load_raw(os.path.join(root, e["data"]), e["dtype"], e["shape"])
            assert_same(sw.read_array(path), want, e["name"])


def test_hostile_index_cases_differ_from_a_valid_shard_only_in_the_index(hostile):
    """The index cases keep the valid shard's chunk bytes: only the entries
    named in the note (and the checksum) changed."""
    root, manifest = hostile
    ok = os.path.join(root, "ok_inner_absent_fill7.zarr")
    assert os.path.isdir(ok)
    with open(next(_shard_files(os.path.join(root, "index_offset_outside.zarr"))), "rb") as f:
        blob = f.read()
    cfg = sw.sharding((4, 4, 4))["configuration"]
    index, isize, _ = _parse_index(blob, cfg, 8)
    assert int(index[3, 0]) == 1 << 20
    others = [k for k in range(8) if k != 3]
    assert all(int(index[k, 0]) + int(index[k, 1]) <= len(blob) - isize for k in others)
