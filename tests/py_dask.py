"""labelbin arrays in Dask: ``Array.to_dask()`` equals direct reads on random
ROIs (Dask's threads and a dask.distributed LocalCluster of 2 worker
processes), ``da.to_zarr`` of it equals zarr-python's reading of what it
wrote, and ``labelbin.materialize`` on the cluster writes the DEST of the
CLI byte for byte (every file, metadata included; Zarr v2 and Zarr v3 with
shards); a failing task stops the job with its message and resume=True
finishes it.

Skipped, saying why, when dask or distributed cannot be imported (Debian:
python3-dask, python3-distributed; scripts/install-deps installs them).
Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/py_dask.py
"""
import json
import os
import pickle
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest
import zarr

try:
    import dask
    import dask.array as da
    import distributed
except ImportError as e:  # pragma: no cover - depends on the machine
    pytest.skip(f"dask / distributed not importable ({e}); Debian: python3-dask "
                "python3-distributed (scripts/install-deps)", allow_module_level=True)

import labelbin

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from trees import assert_same_tree  # noqa: E402
BUILD = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "build"))
LABELBIN = os.path.abspath(os.path.join(BUILD, "labelbin"))

GROUPS = [("mito", [3, 4, 5]), ("er", [16, 17, 18, 19]), ("nuc", [20, 21, 22, 37]),
          ("cell", [])]
SEED = 1414


def lb(*args):
    p = subprocess.run([LABELBIN, *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def g_args():
    out = []
    for name, ids in GROUPS:
        out += ["-g", name + "=" + ",".join(map(str, ids))]
    return out


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("sample")
    src = str(d / "crop.zarr" / "volumes" / "labels" / "all")
    rc, _, err = lb("sample", "-q", "--shape", "96,128,160", "--chunks", "32,32,64", src)
    assert rc == 0, err
    return src


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def arrays(src):
    labels = labelbin.ZarrArray(src)
    return {"binarize": labelbin.BinarizeArray(labels, GROUPS),
            "mask": labelbin.MissingAnnotationsMask(labels, GROUPS),
            "labels": labels}


def random_rois(a, k, rng):
    """k random index boxes (spatial) and their world ROIs."""
    out = []
    vs, off = a.voxel_size, a.roi.offset
    shape = a.shape[a.ndim - a.dims:]
    for _ in range(k):
        lo = [rng.randrange(0, n) for n in shape]
        hi = [rng.randrange(b + 1, n + 1) for b, n in zip(lo, shape)]
        roi = labelbin.Roi([o + b * v for o, b, v in zip(off, lo, vs)],
                           [(e - b) * v for b, e, v in zip(lo, hi, vs)])
        out.append((tuple(slice(b, e) for b, e in zip(lo, hi)), roi))
    return out


# ---------------------------------------------------------------------------
# to_dask
# ---------------------------------------------------------------------------

def test_to_dask_shape_and_chunks(sample):
    a = arrays(sample)
    d = a["binarize"].to_dask()
    assert d.shape == a["binarize"].shape and d.dtype == np.uint8
    # The source's chunks, all channels in each block.
    assert d.chunksize == (4, 32, 32, 64)
    assert a["labels"].to_dask().chunksize == (32, 32, 64)
    assert a["binarize"].to_dask(chunks=16).chunksize == (4, 16, 16, 16)
    assert a["binarize"].to_dask(chunks=(1, 48, 48, 48)).chunksize == (1, 48, 48, 48)
    # The same array gives the same graph keys (Dask can reuse results).
    assert a["binarize"].to_dask().name == arrays(sample)["binarize"].to_dask().name
    assert a["mask"].to_dask().name != d.name


@pytest.mark.parametrize("kind", ["binarize", "mask", "labels"])
def test_to_dask_equals_direct_reads_threads(sample, kind):
    rng = random.Random(SEED)
    print("seed", SEED)
    a = arrays(sample)[kind]
    d = a.to_dask(chunks=(24, 40, 56))
    lead = (slice(None),) * (a.ndim - a.dims)
    for box, roi in random_rois(a, 12, rng):
        got = d[lead + box].compute(scheduler="threads")
        np.testing.assert_array_equal(got, a[roi])
    # Channels sliced too.
    if a.ndim > a.dims:
        box, roi = random_rois(a, 1, rng)[0]
        np.testing.assert_array_equal(d[(slice(1, 3),) + box].compute(), a[roi][1:3])


def test_to_dask_on_cluster(client, sample):
    rng = random.Random(SEED + 1)
    print("seed", SEED + 1)
    a = arrays(sample)
    for kind in ("binarize", "mask"):
        d = a[kind].to_dask()
        for box, roi in random_rois(a[kind], 6, rng):
            np.testing.assert_array_equal(d[(slice(None),) + box].compute(), a[kind][roi])
    # BinarizeArray(...).to_dask()[roi].compute() on the workers, whole.
    np.testing.assert_array_equal(client.compute(a["binarize"].to_dask()).result(),
                                  a["binarize"].to_ndarray())


def test_da_to_zarr_on_cluster(client, sample, tmp_path):
    b = arrays(sample)["binarize"]
    out = str(tmp_path / "dask.zarr")
    da.to_zarr(b.to_dask(), out)
    np.testing.assert_array_equal(zarr.open(out, mode="r")[...], b.to_ndarray())


def test_arrays_pickle_for_workers(sample):
    b = arrays(sample)["binarize"]
    c = pickle.loads(pickle.dumps(b))
    assert c.config == b.config
    np.testing.assert_array_equal(c.to_ndarray(), b.to_ndarray())


# ---------------------------------------------------------------------------
# materialize
# ---------------------------------------------------------------------------

LAYOUTS = {
    "zarr2": ({"chunks": 32}, ["--chunks", "32,32,32"]),
    "zarr3-shards": ({"format": "zarr3", "chunks": (16, 32, 32), "shard": (32, 64, 64)},
                     ["--format", "zarr3", "--chunks", "16,32,32", "--shard", "32,64,64"]),
    "zarr3-together": ({"format": "zarr3", "chunks": 32, "channel_chunks": "together"},
                       ["--format", "zarr3", "--chunks", "32,32,32", "--channel-chunks",
                        "together"]),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_materialize_on_cluster_equals_cli(client, sample, tmp_path, layout):
    kw, cli = LAYOUTS[layout]
    one = str(tmp_path / "cli.zarr" / "gt")
    rc, out, err = lb("binarize", sample, one, *g_args(), *cli)
    assert rc == 0, err
    b = arrays(sample)["binarize"]
    dest = str(tmp_path / "dask.zarr" / "gt")
    seen = []
    st = labelbin.materialize(b, dest, client=client, provenance={"command": "binarize"},
                              blocks_per_task=5, progress=lambda d, t: seen.append((d, t)),
                              **kw)
    assert_same_tree(one, dest)
    # The statistics add up to the CLI's table.
    ref = b.to_zarr(str(tmp_path / "ref.zarr" / "gt"), provenance={"command": "binarize"},
                    **kw)
    for k in ("blocks_total", "blocks_done", "chunks_written", "chunks_empty",
              "bytes_written", "positive"):
        assert st[k] == ref[k], k
    assert seen[-1] == (st["blocks_total"], st["blocks_total"])
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_materialize_local_threads_equals_cli(sample, tmp_path):
    one = str(tmp_path / "cli.zarr" / "m")
    rc, _, err = lb("mask", sample, one, *g_args(), "--chunks", "32,32,32")
    assert rc == 0, err
    m = arrays(sample)["mask"]
    dest = str(tmp_path / "dask.zarr" / "m")
    # Dask's threads in this process, though a distributed client exists.
    labelbin.materialize(m, dest, client=False, provenance={"command": "mask"}, chunks=32,
                         blocks_per_task=3)
    assert_same_tree(one, dest)


def test_failing_task_then_resume(client, sample, tmp_path):
    root = sample.rsplit("/volumes", 1)[0]
    copy = str(tmp_path / "copy.zarr")
    shutil.copytree(root, copy)
    src = copy + "/volumes/labels/all"
    chunk = os.path.join(src, "1.2.1")
    with open(chunk, "rb") as f:
        good = f.read()
    with open(chunk, "wb") as f:
        f.write(b"garbage")
    b = labelbin.BinarizeArray(labelbin.ZarrArray(src), GROUPS)
    dest = str(tmp_path / "out.zarr" / "gt")
    with pytest.raises(labelbin.FormatError) as e:
        labelbin.materialize(b, dest, client=client, chunks=32, blocks_per_task=2,
                             provenance={"command": "binarize"})
    msg = str(e.value)
    assert "1.2.1: zstd data is truncated or corrupt" in msg
    assert msg.endswith("is incomplete: run again with resume=True to finish it")
    with open(os.path.join(dest, ".zattrs")) as f:
        assert json.load(f)["labelbin"]["complete"] is False
    # Repaired, the job is finished by resume (here on this process's
    # threads: any workers will do) and equals an uninterrupted CLI run.
    with open(chunk, "wb") as f:
        f.write(good)
    st = labelbin.materialize(b, dest, client=client, chunks=32, resume=True,
                              provenance={"command": "binarize"})
    assert st["blocks_done"] + st["blocks_skipped"] == st["blocks_total"]
    one = str(tmp_path / "cli.zarr" / "gt")
    rc, _, err = lb("binarize", src, one, *g_args(), "--chunks", "32,32,32")
    assert rc == 0, err
    assert_same_tree(one, dest)


def test_materialize_refuses_like_to_zarr(sample, tmp_path):
    b = arrays(sample)["binarize"]
    dest = str(tmp_path / "o.zarr" / "gt")
    labelbin.materialize(b, dest, client=False, chunks=32)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        labelbin.materialize(b, dest, client=False, chunks=32)
    with pytest.raises(ValueError, match="is the source|lies inside"):
        labelbin.materialize(b, sample, client=False, overwrite=True)
    with pytest.raises(ValueError, match="channel_chunks"):
        labelbin.materialize(b, dest, channel_chunks="sideways")
