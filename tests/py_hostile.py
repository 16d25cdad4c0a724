"""Hostile inputs through the real `labelbin` CLI: malformed and truncated
metadata, absurd shapes, unsupported dtypes/codecs, corrupt and
decompression-bomb chunks, bad N5 blocks, bad annotation metadata and DaCapo
configs -- each must end in exit 1 (never 0, never a signal), one message
`labelbin: <path>: <why>`, within a time limit and under a 1 GiB address
space limit, and a refused run must change nothing on disk. Also crash
safety: SIGKILL at random moments followed by --resume gives the same bytes
as an uninterrupted run, and a failed chunk write (file-size limit) keeps
every chunk already written intact.

Environment: LB_BUILD_DIR (holds `labelbin`), LB_GOLDEN_DIR (unused here).
Run: /usr/bin/python3 -m pytest -q tests/py_hostile.py
"""
import json
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time

import numcodecs
import numpy as np
import pytest
import zarr

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "build"))
sys.path.insert(0, HERE)
import trees  # noqa: E402
LABELBIN = os.path.abspath(os.path.join(BUILD, "labelbin"))

TIMEOUT = 20          # a hang fails the test
MEM_LIMIT = 1 << 30   # a giant allocation fails loudly instead of swapping

GROUPS = ["-g", "mito=3,4,5", "-g", "er=16,17,18,19",
          "-g", "nuc=20,21,22,23,24,28,29", "-g", "cell="]


def _limits(fsize=None):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return apply


def lb(*args, cwd=None, fsize=None, limit=True):
    """Run labelbin under the limits; returns (returncode, stdout, stderr)."""
    p = subprocess.run([LABELBIN, *map(str, args)], cwd=cwd, capture_output=True,
                       text=True, timeout=TIMEOUT,
                       preexec_fn=_limits(fsize) if limit else None)
    return p.returncode, p.stdout, p.stderr


def snapshot(root):
    """Every entry under root: relative path -> (kind, size, mtime_ns)."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            kind = "d" if os.path.isdir(p) and not os.path.islink(p) else "f"
            out[os.path.relpath(p, root)] = (kind, st.st_size if kind == "f" else 0,
                                             st.st_mtime_ns)
    return out


def changed(before, after):
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}


def temp_files(root):
    return [os.path.join(d, n) for d, _, files in os.walk(root) for n in files
            if n.startswith(".") and ".lbtmp." in n]


def assert_refused(rc, err, *needles):
    assert rc == 1, f"exit {rc}, stderr: {err!r}"
    assert err.startswith("labelbin: "), err
    assert err.count("\n") == 1, f"expected one line: {err!r}"
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"


# ---------------------------------------------------------------------------
# Metadata: refused before anything is read, allocated or created
# ---------------------------------------------------------------------------

BASE = {"zarr_format": 2, "shape": [8, 8, 8], "chunks": [4, 4, 4], "dtype": "<u2",
        "compressor": None, "fill_value": 0, "order": "C", "filters": None}


def make_zarr(root, name, zarray=None, raw=None, chunks=None, zattrs=None):
    """A Zarr v2 dataset root/c.zarr/name written by hand (no validation)."""
    cont = os.path.join(root, "c.zarr")
    d = os.path.join(cont, name)
    os.makedirs(d)
    with open(os.path.join(cont, ".zgroup"), "w") as f:
        f.write('{"zarr_format": 2}')
    with open(os.path.join(d, ".zarray"), "w") as f:
        f.write(raw if raw is not None else json.dumps({**BASE, **(zarray or {})}))
    if zattrs is not None:
        with open(os.path.join(d, ".zattrs"), "w") as f:
            f.write(zattrs if isinstance(zattrs, str) else json.dumps(zattrs))
    for key, data in (chunks or {}).items():
        p = os.path.join(d, key)
        if data is None:
            os.makedirs(p)
        else:
            with open(p, "wb") as f:
                f.write(data)
    return d


def without(key):
    return json.dumps({k: v for k, v in BASE.items() if k != key})


# (id, .zarray overrides or raw text, file at fault, reason)
META_CASES = [
    ("json_truncated", '{"zarr_format": 2, "shape": [8,', ".zarray", "truncated"),
    ("json_garbage", "hello", ".zarray", "invalid JSON at line 1, column 1"),
    ("json_empty", "", ".zarray", "truncated or empty"),
    ("json_not_object", "[1, 2]", ".zarray", "expected a JSON object"),
    ("missing_shape", without("shape"), ".zarray", 'missing key "shape"'),
    ("missing_dtype", without("dtype"), ".zarray", 'missing key "dtype"'),
    ("missing_chunks", without("chunks"), ".zarray", 'missing key "chunks"'),
    ("shape_negative", {"shape": [-1, 8, 8]}, ".zarray", "shape[0]: expected a non-negative"),
    ("chunks_zero", {"chunks": [0, 4, 4]}, ".zarray", "chunks[0]: expected a positive"),
    ("chunks_negative", {"chunks": [4, -4, 4]}, ".zarray", "chunks[1]"),
    ("shape_huge", {"shape": [2**62, 2**62], "chunks": [2**40, 2**40]}, ".zarray",
     "one chunk exceeds the limit"),
    ("chunks_huge_3d", {"shape": [2**62, 2**62, 8], "chunks": [2**20, 2**20, 8]}, ".zarray",
     "one chunk exceeds the limit"),
    ("shape_beyond_int64", {"shape": [2**64 - 1, 8, 8]}, ".zarray", "shape[0]"),
    ("rank_mismatch", {"chunks": [4, 4]}, ".zarray", "chunks: has 2 entries, shape has 3"),
    ("dims_33", {"shape": [1] * 33, "chunks": [1] * 33}, ".zarray",
     "33 dimensions, more than the limit of 32"),
    ("dtype_object", {"dtype": "|O"}, ".zarray", 'dtype: "|O" is not supported'),
    ("dtype_structured", {"dtype": [["a", "<u2"]]}, ".zarray", "structured dtypes are not supported"),
    ("dtype_complex", {"dtype": "<c16"}, ".zarray", 'dtype: "<c16" is not supported'),
    ("dtype_bytes", {"dtype": "|S4"}, ".zarray", 'dtype: "|S4" is not supported'),
    ("codec_unknown", {"compressor": {"id": "nope"}}, ".zarray", 'unsupported compressor id "nope"'),
    ("codec_not_object", {"compressor": "zstd"}, ".zarray", "compressor"),
    ("filters", {"filters": [{"id": "delta", "dtype": "<u2"}]}, ".zarray", "filters are not supported"),
    ("fill_string", {"dtype": "|u1", "fill_value": "abc"}, ".zarray", "fill_value: expected an integer"),
    ("fill_fraction", {"fill_value": 1.5}, ".zarray", "fill_value: expected an integer"),
    ("fill_negative_u8", {"dtype": "|u1", "fill_value": -1}, ".zarray", "fill_value: -1 is out of range"),
    ("fill_300_u8", {"dtype": "|u1", "fill_value": 300}, ".zarray", "fill_value: 300 is out of range"),
    ("order_X", {"order": "X"}, ".zarray", 'order: expected "C" or "F", found "X"'),
    ("separator_dash", {"dimension_separator": "-"}, ".zarray", 'dimension_separator: expected "." or "/"'),
    ("zarr_format_3", {"zarr_format": 3}, ".zarray", "zarr_format"),
]


@pytest.mark.parametrize("case", META_CASES, ids=[c[0] for c in META_CASES])
def test_bad_zarray(tmp_path, case):
    name, spec, fname, reason = case
    d = make_zarr(str(tmp_path), name, **({"raw": spec} if isinstance(spec, str) else {"zarray": spec}))
    before = snapshot(str(tmp_path))
    rc, out, err = lb("info", d)
    assert_refused(rc, err, os.path.join(d, fname), reason)
    assert out == ""
    rc, _, err = lb("binarize", d, tmp_path / "out.zarr/gt", "-g", "a=1", "--no-progress")
    assert_refused(rc, err, os.path.join(d, fname), reason)
    assert snapshot(str(tmp_path)) == before, "a refused run changed the disk"


ZATTRS_CASES = [
    ("zattrs_truncated", '{"resolution": [8, 8', "truncated or empty"),
    ("zattrs_nul_bytes", "\x00\x01garbage", "invalid JSON at line 1, column 1: NUL byte"),
    ("zattrs_garbage", "{\"a\": tru}", "invalid JSON at line 1"),
    ("zattrs_list", "[1, 2]", "expected a JSON object, found an array"),
]


@pytest.mark.parametrize("case", ZATTRS_CASES, ids=[c[0] for c in ZATTRS_CASES])
def test_bad_zattrs(tmp_path, case):
    name, text, reason = case
    d = make_zarr(str(tmp_path), name, zattrs=text)
    before = snapshot(str(tmp_path))
    rc, _, err = lb("info", d)
    assert_refused(rc, err, os.path.join(d, ".zattrs"), reason)
    rc, _, err = lb("binarize", d, tmp_path / "out.zarr/gt", "-g", "a=1", "--no-progress")
    assert_refused(rc, err, os.path.join(d, ".zattrs"), reason)
    assert snapshot(str(tmp_path)) == before


N5_ATTRS = {"dimensions": [8, 8, 8], "blockSize": [4, 4, 4], "dataType": "uint16",
            "compression": {"type": "raw"}}


def make_n5(root, name, attrs, block=None):
    cont = os.path.join(root, "c.n5")
    d = os.path.join(cont, name)
    os.makedirs(os.path.join(d, "0", "0"))
    with open(os.path.join(cont, "attributes.json"), "w") as f:
        f.write('{"n5": "2.0.0"}')
    with open(os.path.join(d, "attributes.json"), "w") as f:
        f.write(attrs if isinstance(attrs, str) else json.dumps(attrs))
    if block is not None:
        with open(os.path.join(d, "0", "0", "0"), "wb") as f:
            f.write(block)
    return d


N5_META_CASES = [
    ("n5_truncated", '{"dimensions": [8, 8,', "truncated or empty"),
    ("n5_rank_mismatch", {**N5_ATTRS, "dimensions": [8, 8]}, "blockSize: has 3 entries, dimensions has 2"),
    ("n5_bad_type", {**N5_ATTRS, "dataType": "object"}, "dataType"),
    ("n5_bad_compression", {**N5_ATTRS, "compression": {"type": "zip"}}, "compression"),
]


@pytest.mark.parametrize("case", N5_META_CASES, ids=[c[0] for c in N5_META_CASES])
def test_bad_n5_attributes(tmp_path, case):
    name, attrs, reason = case
    d = make_n5(str(tmp_path), name, attrs)
    before = snapshot(str(tmp_path))
    rc, _, err = lb("info", d)
    assert_refused(rc, err, os.path.join(d, "attributes.json"), reason)
    rc, _, err = lb("binarize", d, tmp_path / "out.zarr/gt", "-g", "a=1", "--no-progress")
    assert_refused(rc, err, os.path.join(d, "attributes.json"), reason)
    assert snapshot(str(tmp_path)) == before


def test_metadata_is_a_fifo(tmp_path):
    # Opening a FIFO for reading would block forever; it must be refused.
    d = make_zarr(str(tmp_path), "fifo")
    os.remove(os.path.join(d, ".zarray"))
    os.mkfifo(os.path.join(d, ".zarray"))
    rc, _, err = lb("info", d)
    assert_refused(rc, err, os.path.join(d, ".zarray"), "is not a regular file")


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: file permissions do not apply")
def test_unreadable_zarray(tmp_path):
    d = make_zarr(str(tmp_path), "noperm")
    os.chmod(os.path.join(d, ".zarray"), 0)
    rc, _, err = lb("info", d)
    assert_refused(rc, err, os.path.join(d, ".zarray"), "Permission denied")


# ---------------------------------------------------------------------------
# Chunks: found while writing; the run fails with the chunk's path
# ---------------------------------------------------------------------------

def zeros(n):
    return np.zeros(n, np.uint16).tobytes()  # 64 elements = one 4x4x4 chunk


ZSTD = {"compressor": {"id": "zstd", "level": 1}}
GZIP = {"compressor": {"id": "gzip", "level": 1}}
BLOSC = {"compressor": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1}}
LZ4 = {"compressor": {"id": "lz4", "acceleration": 1}}


def zstd_bomb():
    # A single-segment frame header whose 8-byte content size says 2^40.
    return b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + struct.pack("<Q", 1 << 40) + b"\x01\x00\x00"


def zstd_without_size(payload):
    """A zstd frame that does not declare its content size (as streaming
    compressors write it): the decoder cannot refuse it up front and must
    stop at the chunk's size."""
    f = numcodecs.Zstd(1).encode(payload)
    fhd = f[4]
    fcs_flag, single, dict_id, checksum = fhd >> 6, (fhd >> 5) & 1, fhd & 3, (fhd >> 2) & 1
    n = 5 + (0 if single else 1) + [0, 1, 2, 4][dict_id] + [single, 2, 4, 8][fcs_flag]
    return b"\x28\xb5\x2f\xfd" + bytes([checksum << 2, 11 << 3]) + f[n:]  # 2 MiB window


def gzip_lying_trailer():
    g = bytearray(numcodecs.GZip(1).encode(zeros(1 << 22)))  # 8 MiB of zeros
    g[-4:] = struct.pack("<I", 128)  # ISIZE claims the chunk's size
    return bytes(g)


def blosc_claiming(nbytes):
    b = bytearray(numcodecs.Blosc("lz4", 5, 1).encode(zeros(64)))
    b[4:8] = struct.pack("<I", nbytes)
    return bytes(b)


CHUNK_CASES = [
    ("raw_truncated", None, b"\0" * 10, "chunk holds 10 bytes, expected 128 (64 elements of 2 bytes)"),
    ("raw_too_long", None, b"\0" * 200, "chunk holds 200 bytes, expected 128"),
    ("raw_empty", None, b"", "chunk holds 0 bytes, expected 128"),
    ("chunk_is_directory", None, None, "is a directory"),
    ("zstd_garbage", ZSTD, b"garbagegarbage", "zstd data is truncated or corrupt"),
    ("zstd_truncated", ZSTD, None, "zstd"),
    ("zstd_wrong_size", ZSTD, numcodecs.Zstd(1).encode(zeros(32)), "zstd frame declares 64 bytes, chunk holds 128"),
    ("zstd_bomb_2e40", ZSTD, zstd_bomb(), "zstd frame declares 1099511627776 bytes"),
    ("zstd_bomb_no_size", ZSTD, zstd_without_size(zeros(1 << 22)), "zstd data expands beyond the chunk's 128 bytes"),
    ("gzip_bomb_lying_trailer", GZIP, gzip_lying_trailer(), "gzip data is truncated or corrupt"),
    ("gzip_garbage", GZIP, b"garbagegarbage", "gzip data is truncated"),
    ("gzip_wrong_size", GZIP, numcodecs.GZip(1).encode(zeros(32)), "gzip data holds 64 bytes, chunk holds 128"),
    ("gzip_bomb_8MiB", GZIP, numcodecs.GZip(1).encode(zeros(1 << 22)), "gzip trailer declares 8388608 bytes"),
    ("blosc_garbage", BLOSC, b"garbagegarbage", "blosc data is truncated"),
    ("blosc_wrong_size", BLOSC, numcodecs.Blosc("lz4", 5, 1).encode(zeros(32)), "blosc header: nbytes 64"),
    ("blosc_claims_2GiB", BLOSC, blosc_claiming(1 << 31), "blosc header: nbytes 2147483648"),
    ("lz4_garbage", LZ4, b"garbagegarbage", "lz4 header declares 1651663207 bytes"),
    ("lz4_truncated", LZ4, numcodecs.LZ4(1).encode(zeros(64))[:-3], "lz4 data is truncated or corrupt"),
    ("lz4_wrong_size", LZ4, numcodecs.LZ4(1).encode(zeros(32)), "lz4 header declares 64 bytes"),
]


def check_failed_write(tmp_path, before, err):
    """A run that failed mid-way: nothing outside out.zarr changed and no
    temporaries are left (DEST itself is kept, resumable; see
    docs/hostile-inputs.md)."""
    after = snapshot(str(tmp_path))
    assert all(k == "out.zarr" or k.startswith("out.zarr" + os.sep)
               for k in changed(before, after)), changed(before, after)
    assert temp_files(str(tmp_path)) == []


@pytest.mark.parametrize("case", CHUNK_CASES, ids=[c[0] for c in CHUNK_CASES])
def test_bad_chunk(tmp_path, case):
    name, codec, data, reason = case
    if name == "zstd_truncated":
        data = numcodecs.Zstd(1).encode(np.arange(64, dtype=np.uint16).tobytes())[:-5]
    d = make_zarr(str(tmp_path), name, zarray=codec, chunks={"0.0.0": data})
    rc, _, err = lb("info", d)
    assert rc == 0, err  # info reads metadata only
    before = snapshot(str(tmp_path))
    t0 = time.monotonic()
    rc, _, err = lb("binarize", d, tmp_path / "out.zarr/gt", "-g", "a=1", "--no-progress", "-j1")
    assert time.monotonic() - t0 < 5, "refusing a bad chunk took too long"
    assert_refused(rc, err, os.path.join(d, "0.0.0"), reason, "[0:4, 0:4, 0:4]")
    check_failed_write(tmp_path, before, err)


def test_zstd_without_size_still_decodes(tmp_path):
    # The bomb test above must not pass merely because such frames are
    # refused: an honest frame without a content size decodes.
    data = np.arange(64, dtype=np.uint16) % 3
    d = make_zarr(str(tmp_path), "nosize", zarray=ZSTD,
                  chunks={"0.0.0": zstd_without_size(data.tobytes())})
    rc, out, err = lb("binarize", d, tmp_path / "out.zarr/gt", "-g", "one=1", "--no-progress")
    assert rc == 0, err
    got = zarr.open(str(tmp_path / "out.zarr/gt"), mode="r")[0, :4, :4, :4]
    assert np.array_equal(got.ravel(), (data == 1).astype(np.uint8))


def test_chunk_is_a_fifo(tmp_path):
    d = make_zarr(str(tmp_path), "fifo")
    os.mkfifo(os.path.join(d, "0.0.0"))
    before = snapshot(str(tmp_path))
    rc, _, err = lb("binarize", d, tmp_path / "out.zarr/gt", "-g", "a=1", "--no-progress")
    assert_refused(rc, err, os.path.join(d, "0.0.0"), "is not a regular file")
    check_failed_write(tmp_path, before, err)


def test_chunk_symlink_loop(tmp_path):
    d = make_zarr(str(tmp_path), "loop")
    os.symlink("0.0.0", os.path.join(d, "0.0.0"))
    rc, _, err = lb("binarize", d, tmp_path / "out.zarr/gt", "-g", "a=1", "--no-progress")
    assert_refused(rc, err, os.path.join(d, "0.0.0"), "Too many levels of symbolic links")


def n5_header(mode, dims):
    return struct.pack(">HH", mode, len(dims)) + b"".join(struct.pack(">I", x) for x in dims)


N5_BLOCK_CASES = [
    ("n5_block_larger_than_blocksize", n5_header(0, [8, 8, 8]) + b"\0" * 1024,
     "block header dimension 0 is 8, outside 1..4"),
    ("n5_block_wrong_rank", n5_header(0, [4, 4]) + b"\0" * 32, "block header has 2 dimensions, the dataset has 3"),
    ("n5_block_mode_2", n5_header(2, [4, 4, 4]) + b"\0" * 128, "mode 2"),
    ("n5_block_header_truncated", b"\0\0\0", "too short for an N5 block header"),
    ("n5_block_data_short", n5_header(0, [4, 4, 4]) + b"\0" * 10, "block decodes to 10 bytes, its header says 128"),
]


@pytest.mark.parametrize("case", N5_BLOCK_CASES, ids=[c[0] for c in N5_BLOCK_CASES])
def test_bad_n5_block(tmp_path, case):
    name, block, reason = case
    d = make_n5(str(tmp_path), name, N5_ATTRS, block)
    before = snapshot(str(tmp_path))
    rc, _, err = lb("binarize", d, tmp_path / "out.zarr/gt", "-g", "a=1", "--no-progress")
    assert_refused(rc, err, os.path.join(d, "0", "0", "0"), reason)
    check_failed_write(tmp_path, before, err)


# ---------------------------------------------------------------------------
# Paths, annotation metadata, DaCapo configs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dest", ["out.zarr/../x", "out.zarr/a/../../etc"])
def test_dest_with_dotdot(tmp_path, dest):
    d = make_zarr(str(tmp_path), "ok")
    before = snapshot(str(tmp_path))
    rc, _, err = lb("binarize", d, dest, "-g", "a=1", "--no-progress", cwd=tmp_path)
    # A malformed DEST argument is a usage error (docs/cli.md): exit 2.
    assert rc == 2, err
    assert err.startswith(f"labelbin: {dest}: '..' is not allowed in a dataset path"), err
    assert snapshot(str(tmp_path)) == before


@pytest.mark.parametrize("source", ["c.zarr/../x", "c.zarr/a/../../etc"])
def test_source_with_dotdot(tmp_path, source):
    make_zarr(str(tmp_path), "ok")
    before = snapshot(str(tmp_path))
    rc, _, err = lb("info", source, cwd=tmp_path)
    assert_refused(rc, err, f"labelbin: {source}: '..' is not allowed in a dataset path")
    rc, _, err = lb("binarize", source, "out.zarr/gt", "-g", "a=1", cwd=tmp_path)
    assert_refused(rc, err, f"labelbin: {source}: '..' is not allowed in a dataset path")
    assert snapshot(str(tmp_path)) == before


LABEL = {"value": 1, "name": {"long": "a", "short": "a"},
         "annotationState": {"present": True, "annotated": True}}
ANN_CASES = [
    ("labels_not_a_list", {"x": 1}, "labels: expected an array of label objects, found an object"),
    ("present_not_bool", [{**LABEL, "annotationState": {"present": "yes", "annotated": True}}],
     "labels[0].annotationState.present: expected a boolean, found a string"),
    ("annotated_bad_string", [{**LABEL, "annotationState": {"present": True, "annotated": "mostly"}}],
     "labels[0].annotationState.annotated"),
    ("annotated_integer", [LABEL, {**LABEL, "annotationState": {"present": True, "annotated": 5}}],
     "labels[1].annotationState.annotated: expected a boolean or one of"),
]


@pytest.mark.parametrize("case", ANN_CASES, ids=[c[0] for c in ANN_CASES])
def test_bad_annotations_mask(tmp_path, case):
    name, labels, reason = case
    d = make_zarr(str(tmp_path), name, zattrs={"labels": labels})
    before = snapshot(str(tmp_path))
    rc, _, err = lb("mask", d, tmp_path / "out.zarr/m", "-g", "a=1", "--no-progress")
    assert_refused(rc, err, os.path.join(d, ".zattrs"), reason)
    assert snapshot(str(tmp_path)) == before
    rc, out, err = lb("info", "--json", d)  # info describes it instead of refusing
    assert rc == 0 and json.loads(out)["annotations"] == "invalid", (out, err)


def _src(tmp_path):
    return {"__type__": "ZarrArrayConfig", "name": "l",
            "file_name": str(tmp_path / "c.zarr"), "dataset": "ok"}


CONFIG_CASES = [
    ("unknown_type", lambda s: {"__type__": "Nope", "name": "x"}, 'config.__type__: unsupported array config type "Nope"'),
    ("missing_groupings", lambda s: {"__type__": "BinarizeArrayConfig", "name": "x", "source_array_config": s},
     "BinarizeArrayConfig.groupings: missing"),
    ("ids_not_list", lambda s: {"__type__": "BinarizeArrayConfig", "name": "x", "source_array_config": s,
                                "groupings": [["a", "1"]]}, "BinarizeArrayConfig.groupings[0][1]: expected an array"),
    ("nested_wrong_type", lambda s: {"__type__": "MissingAnnotationsMaskConfig", "name": "x",
                                     "source_array_config": {**s, "dataset": 5}, "groupings": [["a", [1]]]},
     "MissingAnnotationsMaskConfig.source_array_config.dataset: expected a string, found an integer"),
    ("not_an_object", lambda s: [1, 2], "config"),
    ("truncated", None, "config: JSON text is truncated or empty"),
]


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_run(tmp_path, case):
    name, build, reason = case
    make_zarr(str(tmp_path), "ok")
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"__type__": "Binar' if build is None else json.dumps(build(_src(tmp_path))))
    before = snapshot(str(tmp_path))
    rc, _, err = lb("run", cfg, tmp_path / "out.zarr/gt", "--no-progress")
    assert_refused(rc, err, f"labelbin: {cfg}: ", reason)
    assert snapshot(str(tmp_path)) == before


# ---------------------------------------------------------------------------
# Crash safety
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crash_env(tmp_path_factory):
    """A CellMap-like sample and an uninterrupted reference output."""
    root = tmp_path_factory.mktemp("crash")
    src = root / "s.zarr" / "labels"
    rc, _, err = lb("sample", "--shape", "96,192,192", "--seed", "5", "-q", src)
    assert rc == 0, err
    ref = root / "ref.zarr" / "gt"
    t0 = time.monotonic()
    rc, _, err = lb("binarize", src, ref, *GROUPS, "--chunks", "16,32,32", "-j2", "--no-progress", "-q")
    assert rc == 0, err
    return root, src, ref, time.monotonic() - t0


def tree(root):
    """relative path -> bytes for every file under root."""
    return trees.tree(root, folders=False)


def check_partial(dest, ref):
    """Every chunk present after a kill decodes and equals the reference."""
    ref_arr = zarr.open(str(ref), mode="r")
    have = tree(dest) if os.path.isdir(dest) else {}
    chunks = [k for k in have if k[0].isdigit()]
    if chunks:
        assert ".zarray" in have, "chunks without metadata"
        arr = zarr.open(str(dest), mode="r")
        for k in chunks:
            raw = arr._decode_chunk(have[k]) if hasattr(arr, "_decode_chunk") else None
            want = ref_arr._decode_chunk(open(os.path.join(ref, k), "rb").read()) \
                if raw is not None else None
            if raw is not None:
                assert np.array_equal(raw, want), k
            assert have[k] == open(os.path.join(ref, k), "rb").read(), k
    return len(chunks), ".zarray" in have


def test_sigkill_then_resume(crash_env):
    root, src, ref, ref_secs = crash_env
    seed = int(os.environ.get("LB_HOSTILE_SEED", "20261122"))
    rng = random.Random(seed)
    # Very early (before the metadata is complete), random, and late.
    # Scaled by the reference run's duration so that the kills land inside
    # the run on a fast idle machine and on a loaded one alike.
    delays = [0.0, 0.001, rng.uniform(0.01, 0.05) * ref_secs, rng.uniform(0.05, 0.3) * ref_secs,
              rng.uniform(0.3, 0.6) * ref_secs, rng.uniform(0.6, 0.9) * ref_secs]
    print(f"seed {seed}; reference run {ref_secs:.2f} s; delays {[round(d, 4) for d in delays]}")
    want = tree(ref)
    for i, delay in enumerate(delays):
        dest = root / f"k{i}.zarr" / "gt"
        args = ["binarize", src, dest, *GROUPS, "--chunks", "16,32,32", "-j2", "--no-progress", "-q"]
        p = subprocess.Popen([LABELBIN, *map(str, args)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, preexec_fn=_limits())
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=TIMEOUT)
        killed = p.returncode == -signal.SIGKILL
        nchunks, meta = check_partial(dest, ref)
        assert temp_files(str(dest)) == [] or killed
        rc, _, err = lb(*args, "--resume")
        assert rc == 0, f"trial {i} (delay {delay:.4f}): --resume failed: {err}"
        got = tree(dest)
        assert got.keys() == want.keys(), (i, set(got) ^ set(want))
        for k in want:
            assert got[k] == want[k], (i, k)
        assert temp_files(str(dest.parent)) == []
        assert not os.path.exists(dest / ".labelbin-done")
        print(f"trial {i}: delay {delay:.4f} s, {'killed' if killed else 'finished first'}, "
              f"{nchunks} chunks and {'complete' if meta else 'no'} metadata before --resume: identical")


def test_resume_after_kill_during_metadata(crash_env, tmp_path):
    # The state a kill between writing .zattrs and .zarray leaves (.zattrs
    # goes first, plus a temporary): --resume starts over instead of refusing.
    root, src, ref, _ = crash_env
    dest = tmp_path / "o.zarr" / "gt"
    os.makedirs(dest)
    shutil.copy(ref / ".zattrs", dest / ".zattrs")
    (tmp_path / "o.zarr" / ".zgroup").write_text('{\n    "zarr_format": 2\n}')
    (dest / ".zarray.lbtmp.1234.1").write_text('{"zarr_for')
    rc, _, err = lb("binarize", src, dest, *GROUPS, "--chunks", "16,32,32", "-j2",
                    "--no-progress", "-q", "--resume")
    assert rc == 0, err
    assert tree(dest) == tree(ref)
    # Something else than our own unfinished start is still refused.
    other = tmp_path / "p.zarr" / "gt"
    os.makedirs(other)
    (other / "notes.txt").write_text("mine")
    before = snapshot(str(tmp_path / "p.zarr"))
    rc, _, err = lb("binarize", src, other, *GROUPS, "--no-progress", "-q", "--resume")
    assert_refused(rc, err, str(other), "not a dataset")
    assert snapshot(str(tmp_path / "p.zarr")) == before


def test_write_error_file_size_limit(crash_env, tmp_path):
    # lz4 output chunks range from ~80 bytes to a few KiB, so a limit just
    # above the metadata's size lets most chunks through and stops some.
    root, src, _, _ = crash_env
    args = [*GROUPS, "--chunks", "16,32,32", "-j2", "--no-progress", "--codec", "lz4"]
    ref = tmp_path / "ref.zarr" / "gt"
    rc, _, err = lb("binarize", src, ref, *args, "-q")
    assert rc == 0, err
    sizes = sorted(os.path.getsize(ref / k) for k in os.listdir(ref) if k[0].isdigit())
    limit = max(os.path.getsize(ref / ".zarray"), os.path.getsize(ref / ".zattrs")) + 64
    assert sizes[0] < limit < sizes[-1], (limit, sizes[0], sizes[-1])
    dest = tmp_path / "o.zarr" / "gt"
    before = snapshot(str(tmp_path))
    rc, _, err = lb("binarize", src, dest, *args, fsize=limit)
    assert_refused(rc, err, str(dest) + "/", "File too large")
    print("write error:", err.strip())
    assert temp_files(str(tmp_path)) == []
    nchunks, meta_ok = check_partial(dest, ref)
    assert meta_ok and nchunks > 0, "expected some chunks written before the failure"
    after = snapshot(str(tmp_path))
    assert all(k.startswith("o.zarr") for k in changed(before, after))
    # Lift the limit and finish: identical to the reference.
    rc, _, err = lb("binarize", src, dest, *args, "-q", "--resume")
    assert rc == 0, err
    assert tree(dest) == tree(ref)


def test_nothing_outside_dest(crash_env, tmp_path):
    root, src, ref, _ = crash_env
    cont = tmp_path / "t.zarr"
    os.makedirs(cont)
    (cont / ".zgroup").write_text('{"zarr_format": 2}')
    (tmp_path / "bystander.txt").write_text("x")
    small = ["--roi", "3200:3328,4800:4928,9600:9728", "--no-progress", "-q"]

    # Success: only DEST and the .zgroup of its new parent group change.
    before = snapshot(str(tmp_path))
    rc, _, err = lb("binarize", src, cont / "g" / "gt", *GROUPS, *small)
    assert rc == 0, err
    diff = changed(before, snapshot(str(tmp_path)))
    assert diff and all(k == "t.zarr" or k.startswith(os.path.join("t.zarr", "g")) for k in diff), diff

    # Refused (DEST exists): nothing at all changes.
    before = snapshot(str(tmp_path))
    rc, _, err = lb("binarize", src, cont / "g" / "gt", *GROUPS, *small)
    assert_refused(rc, err, str(cont / "g" / "gt"), "already exists")
    assert snapshot(str(tmp_path)) == before

    # Refused (ROI outside): nothing at all changes.
    rc, _, err = lb("binarize", src, cont / "h", *GROUPS, "--roi", "0:8,0:8,0:8", "--no-progress")
    assert_refused(rc, err, "ROI")
    assert snapshot(str(tmp_path)) == before

    # Failed (file-size limit): only DEST changes.
    rc, _, err = lb("binarize", src, cont / "f", *GROUPS, *small, "--codec", "none", fsize=2048)
    assert_refused(rc, err, str(cont / "f"), "File too large")
    diff = changed(before, snapshot(str(tmp_path)))
    assert all(k == "t.zarr" or k.startswith(os.path.join("t.zarr", "f")) for k in diff), diff
    assert temp_files(str(tmp_path)) == []
