"""The shared label cache through Python: cached reads (labels, BinarizeArray,
MissingAnnotationsMask) equal uncached reads and DaCapo's numpy rule byte
for byte for every integer dtype, ids at the dtype limits, blocks of 1..512
distinct ids, chunks that are not multiples of 8, edge chunks; in worker
processes started by fork and by spawn from pickled arrays, sharing one
cache; a worker killed while filling; eviction under a tiny budget; a
damaged cache file detected and rebuilt; a /dev/shm too small for the
cache, or filling up (a private mount namespace with a small tmpfs, where
unshare is allowed); warm(), cache_info() and `labelbin cache-stats`.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/py_label_cache.py
"""

import json
import mmap
import multiprocessing as mp
import os
import pathlib
import pickle
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import zarr
from numcodecs import Zstd

import labelbin
from labelbin import BinarizeArray, MissingAnnotationsMask, Roi, ZarrArray

SEED = int(os.environ.get("LB_SEED", "20261201"))
_SRC = pathlib.Path(os.environ.get("LB_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[1]))
BUILD = pathlib.Path(os.environ.get("LB_BUILD_DIR", _SRC / "build"))
INT_DTYPES = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"]
SHAPE, CHUNKS = (29, 37, 23), (10, 12, 9)
LABELS_ATTR = {"labels": [{"value": 1, "annotationState": {"present": True,
                                                           "annotated": True}}]}


def limits(dtype):
    i = np.iinfo(dtype)
    return [i.min, i.max, i.max - 1, i.min + 1, 0, 1]


def groups_for(dtype):
    i = np.iinfo(dtype)
    return [("one", [1]), ("two_three", [2, 3]), ("max", [int(i.max)]),
            ("min_or_5", [int(i.min), 5]), ("any", [])]


def numpy_rule(labels, groups, background=0):
    """DaCapo's BinarizeArray rule, clipped to 0/1."""
    out = np.zeros((len(groups),) + labels.shape, np.uint8)
    for k, (_n, ids) in enumerate(groups):
        if not ids:
            out[k] = labels != background
        for i in ids:
            out[k] |= labels == labels.dtype.type(i)
    return out


def make_volume(path, dtype, rng, shape=SHAPE, chunks=CHUNKS):
    """Organelle-like regions, noise and the dtype's limits."""
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    v = ((z // 5) + (y // 7) * 3 + (x // 6) * 2) % 6
    labels = np.array(limits(dtype), dtype=dtype)[v]
    noise = rng.random(shape) < 0.03
    labels[noise] = rng.integers(0, 6, size=int(noise.sum())).astype(dtype)
    a = zarr.open(str(path), mode="w", shape=shape, chunks=chunks, dtype=dtype,
                  compressor=Zstd(level=1), fill_value=0)
    a[...] = labels
    a.attrs.update(LABELS_ATTR)
    return labels


def write_labels(path, labels, chunks, compressor=None):
    """`labels` as a Zarr v2 array at path (zarr-python, little-endian)."""
    a = zarr.open(str(path), mode="w", shape=labels.shape, chunks=chunks,
                  dtype=labels.dtype.newbyteorder("<"), compressor=compressor)
    a[...] = labels


@pytest.fixture
def cache_name():
    name = "lb-pytest-%s" % uuid.uuid4().hex[:12]
    yield name
    try:
        labelbin.cache_remove(name)
    except FileNotFoundError:
        pass


def rois(shape, n, rng):
    out = []
    for _ in range(n):
        off = [int(rng.integers(0, s)) for s in shape]
        sh = [int(rng.integers(1, s - o + 1)) for s, o in zip(shape, off)]
        out.append(Roi(off, sh))
    out.append(Roi((0, 0, 0), shape))
    return out


def trio(path, groups, name=None, nbytes=8 << 20):
    arrs = [ZarrArray(str(path)), BinarizeArray(ZarrArray(str(path)), groups),
            MissingAnnotationsMask(ZarrArray(str(path)), groups)]
    if name:
        for a in arrs:
            a.set_label_cache(nbytes, name=name)
    return arrs


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_cached_equals_uncached(tmp_path, dtype, cache_name):
    rng = np.random.default_rng(SEED)
    labels = make_volume(tmp_path / "v.zarr", dtype, rng)
    groups = groups_for(dtype)
    plain = trio(tmp_path / "v.zarr", groups)
    cached = trio(tmp_path / "v.zarr", groups, cache_name)
    for pass_ in range(2):  # cold, then warm
        for roi in rois(SHAPE, 8, rng):
            sl = tuple(slice(o, o + s) for o, s in zip(roi.offset, roi.shape))
            for u, c in zip(plain, cached):
                a, b = u[roi], c[roi]
                assert a.dtype == b.dtype and a.shape == b.shape
                assert a.tobytes() == b.tobytes(), (dtype, pass_, roi, type(u).__name__)
            assert np.array_equal(cached[0][roi], labels[sl])
            assert np.array_equal(cached[1][roi], numpy_rule(labels[sl], groups))
    info = cached[1].cache_info()
    assert info["kind"] == "label" and info["name"] == cache_name
    assert info["entries"] > 0 and info["process_hits"] > 0
    assert plain[2].unlisted_ids == cached[2].unlisted_ids
    # warm(roi) then reads inside it are all hits
    cached[0].warm(Roi((0, 0, 0), SHAPE), threads=2)
    before = cached[0].cache_info()["process_misses"]
    cached[0][Roi((0, 0, 0), SHAPE)]
    assert cached[0].cache_info()["process_misses"] == before


@pytest.mark.parametrize("k", [1, 2, 3, 17, 300, 512])
def test_distinct_ids_per_block(tmp_path, k, cache_name):
    """Every 8^3 block has k distinct uint64 ids, 2^64 - 1 among them;
    chunks of 24 x 20 x 16 over a 50 x 44 x 40 volume (edges)."""
    rng = np.random.default_rng(SEED + k)
    shape, chunks = (50, 44, 40), (24, 20, 16)
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    within = ((z % 8) * 64 + (y % 8) * 8 + x % 8) % k
    block = (z // 8) * 100 + (y // 8) * 10 + x // 8
    labels = (np.uint64(2**64 - 1) - within.astype(np.uint64) * np.uint64(7919)
              - block.astype(np.uint64) * np.uint64(k > 256))
    labels[rng.random(shape) < 0.001] = 2**64 - 1
    write_labels(tmp_path / "k.zarr", labels, chunks, Zstd(level=1))
    c = ZarrArray(str(tmp_path / "k.zarr"))
    c.set_label_cache(16 << 20, name=cache_name)
    for _ in range(2):
        assert np.array_equal(c[Roi((0, 0, 0), shape)], labels)
        for roi in rois(shape, 5, rng):
            sl = tuple(slice(o, o + s) for o, s in zip(roi.offset, roi.shape))
            assert np.array_equal(c[roi], labels[sl])
    groups = [("max", [2**64 - 1]), ("other", [2**64 - 1 - 7919])]
    b = BinarizeArray(ZarrArray(str(tmp_path / "k.zarr")), groups)
    b.set_label_cache(16 << 20, name=cache_name)
    assert np.array_equal(b[Roi((0, 0, 0), shape)], numpy_rule(labels, groups))


# ---- processes ------------------------------------------------------------------

def _read_all(blob):
    arr, roi_list = pickle.loads(blob)
    out = [arr[r].tobytes() for r in roi_list]
    return out, arr.cache_info()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_workers_share_the_cache(tmp_path, method, cache_name):
    rng = np.random.default_rng(SEED)
    labels = make_volume(tmp_path / "v.zarr", "uint64", rng)
    groups = groups_for("uint64")
    b = BinarizeArray(ZarrArray(str(tmp_path / "v.zarr")), groups)
    b.set_label_cache(8 << 20, name=cache_name)
    b2 = pickle.loads(pickle.dumps(b))  # the setting survives pickling
    assert b2.cache_info()["name"] == cache_name
    roi_list = rois(SHAPE, 6, rng)
    expect = [numpy_rule(labels[tuple(slice(o, o + s) for o, s in zip(r.offset, r.shape))],
                         groups).tobytes() for r in roi_list]
    blob = pickle.dumps((b, roi_list))
    ctx = mp.get_context(method)
    with ctx.Pool(3) as pool:
        results = pool.map(_read_all, [blob] * 3)
    for out, info in results:
        assert out == expect
        assert info["kind"] == "label" and info["name"] == cache_name
    shared = labelbin.cache_stats(cache_name)
    assert shared["entries"] > 0
    # three workers read the same chunks: most lookups after the first hit
    assert shared["hits"] > 0
    assert shared["misses"] <= shared["entries"] * 3
    # and this process now reads them without decoding
    before = b.cache_info()["process_misses"]
    assert [b[r].tobytes() for r in roi_list] == expect
    assert b.cache_info()["process_misses"] == before


def _fill_forever(path, name):
    a = ZarrArray(path)
    a.set_label_cache(2 << 20, name=name)
    while True:
        a.warm(threads=1)
        labelbin.cache_remove(name)
        a.set_label_cache(2 << 20, name=name)


def test_worker_killed_mid_fill(tmp_path, cache_name):
    rng = np.random.default_rng(SEED)
    labels = make_volume(tmp_path / "v.zarr", "int32", rng, shape=(60, 70, 50),
                         chunks=(16, 16, 16))
    ctx = mp.get_context("fork")
    for delay in (0.05, 0.11, 0.2):
        p = ctx.Process(target=_fill_forever, args=(str(tmp_path / "v.zarr"), cache_name))
        p.start()
        time.sleep(delay)
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        c = ZarrArray(str(tmp_path / "v.zarr"))
        c.set_label_cache(2 << 20, name=cache_name)
        for _ in range(2):
            assert np.array_equal(c[c.roi], labels)


def test_eviction_under_a_tiny_budget(tmp_path, cache_name):
    rng = np.random.default_rng(SEED)
    shape = (128, 128, 128)
    # noise of 16 large ids: large entries, still admitted (4-bit indices)
    labels = (2**62 + rng.integers(0, 16, size=shape)).astype(np.int64)
    write_labels(tmp_path / "n.zarr", labels, (32, 32, 32))
    c = ZarrArray(str(tmp_path / "n.zarr"))
    c.set_label_cache(1 << 20, name=cache_name)
    for _ in range(2):
        assert np.array_equal(c[c.roi], labels)
        for roi in rois(shape, 4, rng):
            sl = tuple(slice(o, o + s) for o, s in zip(roi.offset, roi.shape))
            assert np.array_equal(c[roi], labels[sl])
    info = c.cache_info()
    assert info["evictions"] > 0
    assert info["bytes"] <= info["capacity"] <= 1 << 20


_SHM_FULL_CHILD = r"""
import sys, numpy as np, labelbin
from labelbin import BinarizeArray, ZarrArray
path, labels_npy = sys.argv[1], sys.argv[2]
labels = np.load(labels_npy)
groups = [("low", [0, 1]), ("any", [])]
try:
    ZarrArray(path).set_label_cache(64 << 20, name="lb-big")
    print("ACCEPTED a 64 MiB cache on a 2 MiB /dev/shm", flush=True)
except ValueError as e:
    print("REFUSED", e, flush=True)
b = BinarizeArray(ZarrArray(path), groups)
b.set_label_cache(1 << 20, name="lb-full")
b.warm(threads=2)
for _ in range(2):
    out = b[b.roi]
    assert out.shape == (2,) + labels.shape
    assert np.array_equal(out[0], np.isin(labels, [0, 1]).astype(np.uint8))
    assert np.array_equal(out[1], (labels != 0).astype(np.uint8))
info = b.cache_info()
print("INFO", info["bytes"], info["capacity"], info["entries"], flush=True)
"""


def test_dev_shm_full(tmp_path):
    """A container's small /dev/shm: a cache larger than all of it is refused
    with a clear error; when it fills up, entries that do not fit are not
    stored (one warning) and reads stay exact, where writing into the
    mapping would have killed the process with SIGBUS. Runs in a private
    mount namespace with a 2 MiB tmpfs over /dev/shm."""
    try:
        probe = subprocess.run(["unshare", "-m", "sh", "-c",
                                "mount -t tmpfs -o size=64k tmpfs /dev/shm"],
                               capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip("cannot run unshare: %s" % e)
    if probe.returncode != 0:
        pytest.skip("no private mount namespace here (unshare -m and mount need root): %s"
                    % probe.stderr.decode(errors="replace").strip())
    rng = np.random.default_rng(SEED)
    shape = (128, 128, 128)
    # 4 ids per block: 2-bit indices, about 0.3 bytes a voxel encoded (640 KB
    # in all), more than the room left below
    labels = rng.integers(0, 4, size=shape).astype(np.uint32)
    write_labels(tmp_path / "v.zarr", labels, (32, 32, 32))
    np.save(tmp_path / "labels.npy", labels)
    (tmp_path / "child.py").write_text(_SHM_FULL_CHILD)
    env = dict(os.environ, PYTHONPATH=str(BUILD / "python"), LB_VERBOSE="0")
    script = ("mount -t tmpfs -o size=2m tmpfs /dev/shm && "
              "head -c 1600000 /dev/zero > /dev/shm/ballast && "
              "exec %s %s %s %s" % (sys.executable, tmp_path / "child.py",
                                    tmp_path / "v.zarr", tmp_path / "labels.npy"))
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "rc %d\nstdout %s\nstderr %s" % (r.returncode, r.stdout, r.stderr)
    refused = [ln for ln in r.stdout.splitlines() if ln.startswith("REFUSED")]
    assert refused and "does not fit in /dev/shm" in refused[0] and "--shm-size" in refused[0], \
        r.stdout
    warnings = [ln for ln in r.stderr.splitlines() if "no room left in /dev/shm" in ln]
    assert len(warnings) == 1, r.stderr
    nbytes, capacity, entries = map(int, [ln for ln in r.stdout.splitlines()
                                          if ln.startswith("INFO")][0].split()[1:])
    assert 0 < entries < 64 and nbytes < capacity


def test_damaged_file_is_detected_and_rebuilt(tmp_path, cache_name):
    rng = np.random.default_rng(SEED)
    labels = make_volume(tmp_path / "v.zarr", "uint16", rng)
    groups = groups_for("uint16")
    plain = trio(tmp_path / "v.zarr", groups)
    cached = trio(tmp_path / "v.zarr", groups, cache_name, 4 << 20)
    for a in cached:
        a.warm()
    assert labelbin.cache_stats(cache_name)["entries"] > 0
    path = "/dev/shm/" + cache_name
    size = os.path.getsize(path)
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), size) as m:
        # every byte of the entries' data and part of the index, flipped
        for i in range(size // 2, size, 7):
            m[i] ^= 0xA5
        for i in range(8 * 4096, size // 2, 4093):
            m[i] ^= 0xFF
    for roi in rois(SHAPE, 6, rng):
        for u, c in zip(plain, cached):
            assert u[roi].tobytes() == c[roi].tobytes()
    s = labelbin.cache_stats(cache_name)
    assert s["corrupt"] + s["misses"] > 0
    # the header: the file is refused, then replaced by the next opener
    with open(path, "r+b") as f:
        f.write(b"\0" * 64)
    with pytest.raises(labelbin.FormatError):
        labelbin.cache_stats(cache_name)
    r = subprocess.run([str(BUILD / "labelbin"), "cache-stats", cache_name],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and path in r.stderr
    assert "labelbin cache-stats --remove " + cache_name in r.stderr
    fresh = trio(tmp_path / "v.zarr", groups, cache_name, 4 << 20)
    assert fresh[0].cache_info()["entries"] == 0
    for roi in rois(SHAPE, 6, rng):
        for u, c in zip(plain, fresh):
            assert u[roi].tobytes() == c[roi].tobytes()
    assert labelbin.cache_stats(cache_name)["entries"] > 0


def test_changed_chunks_are_read_anew(tmp_path, cache_name):
    """The cache outlives the processes that fill it: a crop changed on
    disk since (annotations corrected, by zarr-python here) must not be
    read from it. Arrays opened afterwards check each chunk's file (its
    identity, size and change times) the first time they take it from the
    cache, and read changed, removed and new chunks anew; the other
    entries stay hits."""
    rng = np.random.default_rng(SEED)
    labels = make_volume(tmp_path / "v.zarr", "uint32", rng)
    raw = tmp_path / "raw.zarr"  # no compressor: a rewrite in place keeps the size
    write_labels(raw, labels, CHUNKS)
    groups = groups_for("uint32")
    for a in trio(tmp_path / "v.zarr", groups, cache_name) + trio(raw, groups, cache_name):
        a.warm()
    before = labelbin.cache_stats(cache_name)
    time.sleep(0.05)  # past the file system's timestamp granularity
    # zarr-python rewrites a region (its chunks are replaced) ...
    z = zarr.open(str(tmp_path / "v.zarr"), mode="r+")
    labels[3:17, 5:20, 2:11] = 7
    z[3:17, 5:20, 2:11] = 7
    # ... a chunk file goes (now the fill value) ...
    os.remove(tmp_path / "v.zarr" / "2.2.1")
    labels[20:29, 24:36, 9:18] = 0
    # ... and a chunk of the uncompressed copy is overwritten in place.
    chunk = tmp_path / "raw.zarr" / "1.1.1"
    size = chunk.stat().st_size
    new = (np.arange(np.prod(CHUNKS)) % 5).astype("<u4").reshape(CHUNKS)
    with open(chunk, "r+b") as f:
        f.write(new.tobytes())
    assert chunk.stat().st_size == size
    raw_labels = np.array(zarr.open(str(raw), mode="r")[...])
    assert np.array_equal(raw_labels[10:20, 12:24, 9:18], new)
    for path, truth in ((tmp_path / "v.zarr", labels), (raw, raw_labels)):
        plain = trio(path, groups)
        cached = trio(path, groups, cache_name)
        assert np.array_equal(cached[0][cached[0].roi], truth)
        for roi in rois(SHAPE, 4, rng):
            for u, c in zip(plain, cached):
                assert u[roi].tobytes() == c[roi].tobytes()
        info = cached[0].cache_info()
        assert info["stale"] > 0 and info["process_hits"] > 0
    after = labelbin.cache_stats(cache_name)
    # the 8 chunks the region touches, the removed one and the one
    # overwritten in place: each found stale once (the first array that
    # looks drops it; the others miss and read it anew), no other
    assert after["stale"] - before["stale"] == 8 + 1 + 1
    r = subprocess.run([str(BUILD / "labelbin"), "cache-stats", "--json", cache_name],
                       capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["stale"] == after["stale"]


def test_declined_chunks_are_counted(tmp_path, cache_name):
    """A chunk with hundreds of ids per 8^3 block is declined (a note, no
    labels): cache_info, cache_stats and the CLI count it apart."""
    rng = np.random.default_rng(SEED)
    shape, chunk = (32, 32, 64), (32, 32, 32)
    labels = np.zeros(shape, np.uint64)
    labels[:, :, :32] = 3                                   # compresses: one id
    labels[:, :, 32:] = rng.integers(0, 2**63, size=(32, 32, 32), dtype=np.uint64)  # noise
    write_labels(tmp_path / "d.zarr", labels, chunk)
    a = ZarrArray(str(tmp_path / "d.zarr"))
    a.set_label_cache(4 << 20, name=cache_name)
    for _ in range(2):
        assert np.array_equal(a[a.roi], labels)
    info = a.cache_info()
    assert (info["entries"], info["declined"]) == (2, 1)
    assert info["raw_bytes"] == 32 * 32 * 32 * 8  # the note stands for no labels
    assert labelbin.cache_stats(cache_name)["declined"] == 1
    exe = str(BUILD / "labelbin")
    r = subprocess.run([exe, "cache-stats", "--json", cache_name], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["declined"] == 1
    r = subprocess.run([exe, "cache-stats", cache_name], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "2 chunks (1 declined" in r.stdout


def test_cache_stats_cli_and_settings(tmp_path, cache_name):
    rng = np.random.default_rng(SEED)
    make_volume(tmp_path / "v.zarr", "uint64", rng)
    a = ZarrArray(str(tmp_path / "v.zarr"))
    assert a.cache_info()["kind"] == "none"
    a.set_label_cache(4 << 20, name=cache_name)
    a.warm(threads=0)
    info = a.cache_info()
    exe = str(BUILD / "labelbin")
    r = subprocess.run([exe, "cache-stats", "--json", cache_name], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["entries"] == info["entries"] and j["bytes"] == info["bytes"]
    assert j["raw_bytes"] == info["raw_bytes"] == 3 * 4 * 3 * 10 * 12 * 9 * 8
    assert abs(j["compression"] - info["raw_bytes"] / info["bytes"]) < 1e-2
    # the file's pages: at least its entries, far less than its sparse size
    st = os.stat("/dev/shm/" + cache_name)
    assert j["memory_bytes"] == st.st_blocks * 512
    assert j["bytes"] <= j["memory_bytes"] < st.st_size
    vfs = os.statvfs("/dev/shm")
    assert j["fs_bytes"] == vfs.f_blocks * vfs.f_frsize and 0 < j["fs_free_bytes"] <= j["fs_bytes"]
    r = subprocess.run([exe, "cache-stats", cache_name], capture_output=True, text=True)
    assert r.returncode == 0 and "compression" in r.stdout and cache_name in r.stdout
    assert "free of" in r.stdout and "in /dev/shm" in r.stdout
    info = a.cache_info()
    assert info["memory_bytes"] == os.stat("/dev/shm/" + cache_name).st_blocks * 512
    assert info["fs_bytes"] == j["fs_bytes"] and 0 < info["fs_free_bytes"] <= info["fs_bytes"]
    # the other cache replaces this one, and the other way round
    a.set_cache(1 << 20)
    assert a.cache_info()["kind"] == "chunk"
    a.set_label_cache(4 << 20, name=cache_name)
    assert a.cache_info()["kind"] == "label"
    with pytest.raises(ValueError, match="bad/name"):
        a.set_label_cache(4 << 20, name="bad/name")
    r = subprocess.run([exe, "cache-stats", "--remove", cache_name], capture_output=True,
                       text=True)
    assert r.returncode == 0
    assert not os.path.exists("/dev/shm/" + cache_name)
    r = subprocess.run([exe, "cache-stats", cache_name], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.startswith("labelbin: cache-stats: no label cache '%s'" % cache_name)
    # a float dataset has no label cache
    f = zarr.open(str(tmp_path / "f.zarr"), mode="w", shape=(4, 4, 4), dtype="<f4")
    f[...] = 1.5
    with pytest.raises(labelbin.FormatError, match="float32"):
        ZarrArray(str(tmp_path / "f.zarr")).set_label_cache(4 << 20, name=cache_name)


# ---- arguments ---------------------------------------------------------------------

def test_counts_are_ints_in_range(tmp_path, cache_name):
    """Byte and thread counts take an int (numpy's too) in range, never a
    bool, float or str, and never wrap modulo 2**64 or truncate: a refused
    value names the function, the argument and the value, and changes
    nothing (the cache set before stays, also in a pickled copy)."""
    rng = np.random.default_rng(SEED)
    make_volume(tmp_path / "v.zarr", "uint64", rng)
    a = ZarrArray(str(tmp_path / "v.zarr"))
    a.set_label_cache(np.int64(4 << 20), name=cache_name)
    assert a._label_cache == (4 << 20, cache_name) and type(a._label_cache[0]) is int
    lc = "set_label_cache: nbytes must be between 0 and 2**63-1 bytes, not %d"
    bad = [
        (lambda v: a.set_label_cache(v, name=cache_name), "set_label_cache: nbytes",
         [(2**64, ValueError, lc % 2**64),
          (2**64 + (5 << 20), ValueError, lc % (2**64 + (5 << 20))),
          (2**63, ValueError, lc % 2**63), (-1, ValueError, lc % -1),
          (np.uint64(2**63), ValueError, lc % 2**63)]),
        (lambda v: a.set_cache(v), "set_cache: nbytes",
         [(2**64, ValueError, "set_cache: nbytes must be between 0 and 2**64-1 bytes, not "
           "18446744073709551616"),
          (-1, ValueError, "set_cache: nbytes must be between 0 and 2**64-1 bytes, not -1")]),
        (lambda v: a.set_threads(v), "set_threads: n",
         [(-1, ValueError, "set_threads: n must be between 0 and 2**31-1, not -1"),
          (2**31, ValueError, "set_threads: n must be between 0 and 2**31-1, not 2147483648")]),
        (lambda v: a.warm(threads=v), "warm: threads",
         [(-1, ValueError, "warm: threads must be between 0 and 2**31-1, not -1"),
          (2**32 + 2, ValueError, "warm: threads must be between 0 and 2**31-1, not "
           "4294967298")]),
        (lambda v: a.to_zarr(str(tmp_path / "o.zarr"), threads=v), "to_zarr: threads", []),
        (lambda v: labelbin.stats(a, [("one", [1])], threads=v), "stats: threads", []),
        (lambda v: labelbin.check(str(tmp_path / "v.zarr"), threads=v), "check: threads",
         []),
        (lambda v: labelbin.materialize(a, str(tmp_path / "o.zarr"), threads=v),
         "materialize: threads", []),
    ]
    for call, what, cases in bad:
        for value, type_name in ((1.5, "float 1.5"), (float(4 << 20), "float 4194304.0"),
                                 (True, "bool True"), (False, "bool False"),
                                 ("1G", "str '1G'"), ("x", "str 'x'"),
                                 (None, "NoneType None"),
                                 (np.bool_(True), "bool_ True")):
            cases = cases + [(value, TypeError, "%s must be an int, not %s"
                              % (what, type_name))]
        for value, exc, message in cases:
            with pytest.raises(exc) as e:
                call(value)
            assert str(e.value) == message, (what, value)
            info = a.cache_info()
            assert (info["kind"], info["name"], info["capacity"] > 0) == \
                ("label", cache_name, True), (what, value)
            assert a._label_cache == (4 << 20, cache_name) and a._cache_bytes == 0
    assert not os.path.exists(tmp_path / "o.zarr")
    c = pickle.loads(pickle.dumps(a))
    assert (c.cache_info()["kind"], c.cache_info()["name"]) == ("label", cache_name)
    # numpy integers are integers; the values reach the library unchanged
    a.set_threads(np.int32(2))
    a.warm(threads=np.uint8(2))
    assert a._read_threads == 2 and type(a._read_threads) is int
    a.set_cache(np.uint64(2**64 - 1))  # at most the array's decoded size is reserved
    assert a.cache_info()["kind"] == "chunk"
    assert pickle.loads(pickle.dumps(a))._cache_bytes == 2**64 - 1


def test_cache_names_are_str(tmp_path, cache_name):
    """A cache name is a str (or None for the per-user default): an int or
    bytes is refused, not turned into /dev/shm/5 or a name "b'x'"."""
    rng = np.random.default_rng(SEED)
    make_volume(tmp_path / "v.zarr", "uint16", rng)
    a = ZarrArray(str(tmp_path / "v.zarr"))
    made = ["/dev/shm/5", "/dev/shm/b'x'", "/dev/shm/x"]
    before = [os.path.exists(p) for p in made]
    for name, text in ((5, "int 5"), (b"x", "bytes b'x'"), (pathlib.Path("x"),
                                                            "PosixPath PosixPath('x')")):
        with pytest.raises(TypeError) as e:
            a.set_label_cache(4 << 20, name=name)
        assert str(e.value) == "set_label_cache: name must be a str or None, not " + text
        assert a.cache_info()["kind"] == "none" and a._label_cache is None
    assert [os.path.exists(p) for p in made] == before
    a.set_label_cache(4 << 20, name=cache_name)
    assert a.cache_info()["path"] == "/dev/shm/" + cache_name
    assert "1-127 letters, digits, '.', '_' or '-'" in " ".join(
        ZarrArray.set_label_cache.__doc__.split())


def test_cache_stats_and_remove_take_name_by_keyword(tmp_path, cache_name):
    """cache_stats(name=...) and cache_remove(name=...) as their docstrings
    show them; cache_stats counts no lookups of its own."""
    rng = np.random.default_rng(SEED)
    make_volume(tmp_path / "v.zarr", "uint8", rng)
    a = ZarrArray(str(tmp_path / "v.zarr"))
    a.set_label_cache(4 << 20, name=cache_name)
    a[a.roi]
    a[a.roi]
    s = labelbin.cache_stats(name=cache_name)
    info = a.cache_info()
    assert s.keys() == info.keys()
    assert (s["kind"], s["name"], s["entries"]) == ("label", cache_name, info["entries"])
    assert s["hits"] == info["hits"] > 0 and info["process_hits"] > 0
    assert s["process_hits"] == s["process_misses"] == 0
    assert labelbin.cache_stats(cache_name) == s
    with pytest.raises(TypeError):
        labelbin.cache_stats(nmae=cache_name)
    labelbin.cache_remove(name=cache_name)
    assert not os.path.exists("/dev/shm/" + cache_name)
    with pytest.raises(FileNotFoundError):
        labelbin.cache_stats(name=cache_name)
    with pytest.raises(FileNotFoundError):
        labelbin.cache_remove(name=cache_name)


def test_failed_set_label_cache_changes_nothing(tmp_path, cache_name):
    """A set_label_cache that fails (a size below 1 MiB, a bad name, more
    than /dev/shm holds) leaves the array as it was: the cache set before
    stays in use, and the setting that pickles with the array is that one,
    so a pickled copy (a DataLoader worker) agrees with the array."""
    rng = np.random.default_rng(SEED)
    labels = make_volume(tmp_path / "v.zarr", "uint32", rng)
    shm = os.statvfs("/dev/shm")
    too_big = shm.f_blocks * shm.f_frsize + (1 << 30)
    failing = [((1 << 20) - 1, cache_name), (4 << 20, "bad/name"), (4 << 20, ".hidden"),
               (too_big, cache_name + "-big")]
    a = ZarrArray(str(tmp_path / "v.zarr"))
    a.set_label_cache(4 << 20, name=cache_name)
    a.warm()
    before = a.cache_info()
    for nbytes, name in failing:
        with pytest.raises(ValueError):
            a.set_label_cache(nbytes, name=name)
        info = a.cache_info()
        assert (info["kind"], info["name"], info["capacity"]) == \
            ("label", cache_name, before["capacity"]), (nbytes, name)
        hits = info["process_hits"]
        assert np.array_equal(a[a.roi], labels)
        assert a.cache_info()["process_hits"] > hits  # still read through it
        assert a._label_cache == (4 << 20, cache_name) and a._cache_bytes == 0
        c = pickle.loads(pickle.dumps(a)).cache_info()
        assert (c["kind"], c["name"], c["capacity"]) == \
            ("label", cache_name, before["capacity"])
    assert not os.path.exists("/dev/shm/%s-big" % cache_name)
    # a private chunk cache stays too
    b = ZarrArray(str(tmp_path / "v.zarr"))
    b.set_cache(1 << 20)
    for nbytes, name in failing:
        with pytest.raises(ValueError):
            b.set_label_cache(nbytes, name=name)
        assert b.cache_info()["kind"] == "chunk", (nbytes, name)
        assert b._cache_bytes == 1 << 20 and b._label_cache is None
        assert pickle.loads(pickle.dumps(b)).cache_info()["kind"] == "chunk"


def test_wrappers_take_the_source_settings(tmp_path, cache_name):
    """BinarizeArray(z, groups) and MissingAnnotationsMask(z, groups) read
    through the label cache set on z (and take its read threads), and keep
    them when pickled; a chunk cache, memory of each array's own, is not
    doubled unasked: a warning says so."""
    rng = np.random.default_rng(SEED)
    labels = make_volume(tmp_path / "v.zarr", "int64", rng)
    groups = groups_for("int64")
    z = ZarrArray(str(tmp_path / "v.zarr"))
    z.set_label_cache(4 << 20, name=cache_name)
    z.set_threads(2)
    z.warm()
    entries = z.cache_info()["entries"]
    g = BinarizeArray(z, groups)
    m = MissingAnnotationsMask(z, groups)
    again = BinarizeArray(g)  # a copy of a wrapper, from its config
    for w in (g, m, again):
        info = w.cache_info()
        assert (info["kind"], info["name"], info["capacity"]) == \
            ("label", cache_name, z.cache_info()["capacity"]), type(w).__name__
        assert w._label_cache == (4 << 20, cache_name) and w._read_threads == 2
        out = w[w.roi]
        info = w.cache_info()
        # every chunk came from the entries z's warm() made
        assert info["process_misses"] == 0 and info["process_hits"] >= entries
        assert info["entries"] == entries
    assert np.array_equal(g[g.roi], numpy_rule(labels, groups))
    for w in (g, m):
        c = pickle.loads(pickle.dumps(w))
        assert (c.cache_info()["kind"], c.cache_info()["name"]) == ("label", cache_name)
        assert c._read_threads == 2
        assert c[c.roi].tobytes() == w[w.roi].tobytes()
        assert c.cache_info()["process_misses"] == 0
    # a chunk cache: not taken (it would be reserved twice), and said so
    z2 = ZarrArray(str(tmp_path / "v.zarr"))
    z2.set_cache(1 << 20)
    with pytest.warns(RuntimeWarning, match=r"set_cache\(1048576\)\) is not taken"):
        g2 = BinarizeArray(z2, groups)
    assert g2.cache_info()["kind"] == "none" and g2._cache_bytes == 0
    assert g2._label_cache is None and g2._read_threads is None
    assert np.array_equal(g2[g2.roi], numpy_rule(labels, groups))
    assert z2.cache_info()["kind"] == "chunk"
    # without settings, none
    plain = BinarizeArray(ZarrArray(str(tmp_path / "v.zarr")), groups)
    assert plain.cache_info()["kind"] == "none" and plain._read_threads is None


_WARN_CHILD = r"""
import sys, labelbin
a = labelbin.ZarrArray(sys.argv[1])
a.set_label_cache(4 << 20, name=sys.argv[2])
labelbin.cache_remove(sys.argv[2])
a.warm()
a.warm()
"""


def test_warnings_say_warning(tmp_path, cache_name):
    """The library's warnings reach stderr as the CLI words its own:
    "labelbin: warning: <message>", once."""
    rng = np.random.default_rng(SEED)
    make_volume(tmp_path / "v.zarr", "uint8", rng)
    env = dict(os.environ, PYTHONPATH=str(BUILD / "python"), LB_VERBOSE="0")
    r = subprocess.run([sys.executable, "-c", _WARN_CHILD, str(tmp_path / "v.zarr"),
                        cache_name], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        "labelbin: warning: label cache /dev/shm/%s: the file was replaced or removed since "
        "this array opened it; this array stores no more entries in it (its entries are "
        "still read)" % cache_name]


def test_warm_without_a_cache(tmp_path):
    """warm() without a label cache says what to do in words that fit
    Python as well as C (no C function name)."""
    rng = np.random.default_rng(SEED)
    make_volume(tmp_path / "v.zarr", "uint8", rng)
    path = str(tmp_path / "v.zarr")
    for a in (ZarrArray(path), BinarizeArray(ZarrArray(path), groups_for("uint8"))):
        with pytest.raises(ValueError) as e:
            a.warm()
        assert str(e.value) == ("%s: warm needs a label cache: set one first "
                                "(set_label_cache)" % path)


def test_set_cache_0_leaves_the_label_cache_on(tmp_path, cache_name):
    """set_cache(0) turns a chunk cache off only: a label cache stays on
    (also in pickled copies) until set_label_cache(0), as the docstrings
    of both say."""
    rng = np.random.default_rng(SEED)
    make_volume(tmp_path / "v.zarr", "uint16", rng)
    a = ZarrArray(str(tmp_path / "v.zarr"))
    a.set_label_cache(4 << 20, name=cache_name)
    a.set_cache(0)
    assert (a.cache_info()["kind"], a.cache_info()["name"]) == ("label", cache_name)
    assert pickle.loads(pickle.dumps(a)).cache_info()["kind"] == "label"
    a.set_label_cache(0)
    assert a.cache_info()["kind"] == "none"
    assert pickle.loads(pickle.dumps(a)).cache_info()["kind"] == "none"
    a.set_cache(1 << 20)
    a.set_label_cache(0)  # and the other way round: the chunk cache stays
    assert a.cache_info()["kind"] == "chunk"
    assert pickle.loads(pickle.dumps(a)).cache_info()["kind"] == "chunk"
    for doc in (ZarrArray.set_cache.__doc__, ZarrArray.set_label_cache.__doc__):
        assert "set_cache(0)" in doc and "label cache on" in " ".join(doc.split())


def test_training_docs_match_cache_info(tmp_path, cache_name):
    """docs/training.md lists every key cache_info() returns (and the
    values of kind), and the ratio it gives for the default `labelbin
    sample` crop is what warm() of the whole crop measures."""
    text = (_SRC / "docs" / "training.md").read_text()
    listed = []
    for line in text[text.index("- `cache_info()` returns a dict"):].splitlines()[3:]:
        if not line.startswith("  - `"):
            break
        listed.append(line[5:line.index("`", 5)])
    sample = tmp_path / "crop.zarr" / "labels"
    r = subprocess.run([str(BUILD / "labelbin"), "sample", "-q", str(sample)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    a = ZarrArray(str(sample))
    assert listed == list(a.cache_info().keys())
    kind_line = [ln for ln in text.splitlines() if ln.startswith("  - `kind`:")][0]
    assert all('`"%s"`' % k in kind_line for k in ("none", "chunk", "label"))
    a.set_label_cache(8 << 20, name=cache_name)
    a.warm()
    ratio = a.cache_info()["compression"]
    assert 44 < ratio < 50, ratio
    assert "about\n1/47 of the uint64 size on the crop that `labelbin sample` writes" in text
