#!/usr/bin/python3
"""bench_python.py — random 96^3-voxel ROI reads + binarize with the 16
CellMap groups of the cosem golden case, from a uint64 dataset with 64^3
chunks written by zarr-python with zstd and again with blosc-zstd:
labelbin's BinarizeArray[roi] against zarr-python + DaCapo's numpy rule, in
one process (same data, same ROIs, same machine moment).

Usage: PYTHONPATH=build/python /usr/bin/python3 bench/bench_python.py [--smoke]
       [--size 256] [--roi 96] [--runs 7] [--rois 8] [--seed N]
Prints a table row and one JSON line per codec; timings are seconds per ROI
(median over runs). "cached" is a warm cache (after a warm-up pass);
"cold" is the first pass over a fresh array with a new cache (set_cache
timed apart), to compare with the first pass over a fresh array without a
cache ("fresh").
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
try:
    import labelbin
except ImportError:  # run from the source tree without PYTHONPATH
    for cand in (os.environ.get("LB_BUILD_DIR"), HERE.parent / "build"):
        if cand and (pathlib.Path(cand) / "python" / "labelbin").is_dir():
            sys.path.insert(0, str(pathlib.Path(cand) / "python"))
            break
    import labelbin
import zarr
from numcodecs import Blosc, Zstd

GOLDEN = pathlib.Path(os.environ.get("LB_GOLDEN_DIR", HERE.parent.parent / "shared" / "golden"))
FALLBACK_GROUPS = [["ecs", [1]], ["pm", [2]], ["mito", [3, 4, 5]], ["mito_mem", [3]],
                   ["golgi", [6, 7]], ["ves", [8, 9]], ["endo", [10, 11]], ["lyso", [12, 13]],
                   ["ld", [14, 15]], ["er", [16, 17, 18, 19, 20, 21, 22, 23]],
                   ["er_mem_all", [16, 18, 20]], ["eres", [18, 19]],
                   ["nuc", [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 37]], ["mt", [30, 36]],
                   ["perox", [47, 48]], ["cell_all", []]]


def groupings():
    case = GOLDEN / "cosem_u64_blosc" / "case.json"
    if case.is_file():
        return json.loads(case.read_text())["groupings"]
    return FALLBACK_GROUPS


def cellmap_labels(rng, n):
    """Blobs (organelles on a coarse grid, nearest-upsampled with jittered
    boundaries) plus runs of membrane ids along x; 0 = unannotated."""
    ids = np.array([0, 0, 1, 2, 3, 4, 5, 8, 9, 16, 17, 20, 28, 35, 37, 47, 48, 60, 1000],
                   dtype=np.uint64)
    cell = 16
    coarse = rng.integers(0, len(ids), size=(n // cell + 2,) * 3)
    idx = np.arange(n)
    out = np.empty((n, n, n), dtype=np.uint64)
    for z in range(n):
        jz = (z + rng.integers(0, 4)) // cell
        jy = (idx + rng.integers(0, 4, size=n)) // cell
        jx = (idx[None, :] + rng.integers(0, 4, size=(n, 1))) // cell
        out[z] = ids[coarse[jz][jy[:, None], jx]]
    # membranes: short runs of ids 2/3/16 where the label changes along x
    edge = np.zeros_like(out, dtype=bool)
    edge[:, :, 1:] = out[:, :, 1:] != out[:, :, :-1]
    out[edge] = np.uint64(3)
    return out


def dacapo_rule(labels, groups, background=0):
    """DaCapo's BinarizeArray.__getitem__ (legacy numpy loop)."""
    grouped = np.zeros((len(groups), *labels.shape), dtype=np.uint8)
    for i, (_, ids) in enumerate(groups):
        if len(ids) == 0:
            grouped[i] += labels != background
        for label_id in ids:
            grouped[i] += labels == label_id
    return grouped


def median_per_roi(fn, rois, runs):
    fn(rois[0])  # warm-up (page cache, allocator)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for r in rois:
            fn(r)
        times.append((time.perf_counter() - t0) / len(rois))
    return statistics.median(times)


def first_pass(make, rois, runs, cache_bytes=0):
    """Median seconds per ROI of the first pass over a fresh array (and, with
    a cache, of set_cache and of the second, warm pass)."""
    first, warm, setup = [], [], []
    for _ in range(runs):
        arr = make()
        t0 = time.perf_counter()
        if cache_bytes:
            arr.set_cache(cache_bytes)
        t1 = time.perf_counter()
        for r in rois:
            arr[r]
        t2 = time.perf_counter()
        for r in rois:
            arr[r]
        t3 = time.perf_counter()
        setup.append(t1 - t0)
        first.append((t2 - t1) / len(rois))
        warm.append((t3 - t2) / len(rois))
        del arr
    return statistics.median(first), statistics.median(warm), statistics.median(setup)


def bench_codec(args, tmp, labels, groups, codec_name, compressor, rng_seed):
    vs = 8
    rng = np.random.default_rng(rng_seed)
    root = zarr.open_group(os.path.join(tmp, codec_name + ".zarr"), mode="w")
    chunk = min(64, args.size)
    z = root.create_dataset("labels", shape=labels.shape, chunks=(chunk,) * 3,
                            dtype="uint64", compressor=compressor)
    z[...] = labels
    z.attrs.update({"resolution": [vs] * 3, "offset": [0, 0, 0], "axes": ["z", "y", "x"]})

    container = os.path.join(tmp, codec_name + ".zarr")
    src = labelbin.ZarrArray(container, "labels")
    gt = labelbin.BinarizeArray(src, groups)
    rois = []
    for _ in range(args.rois):
        lo = [int(rng.integers(0, args.size - args.roi + 1)) for _ in range(3)]
        rois.append(labelbin.Roi([v * vs for v in lo], [args.roi * vs] * 3))

    zarr_ds = zarr.open(container, mode="r")["labels"]

    def numpy_read(roi):
        sl = tuple(slice(o // vs, (o + s) // vs) for o, s in zip(roi.offset, roi.shape))
        return dacapo_rule(zarr_ds[sl], groups)

    # same answer first (DaCapo's legacy += gives 2 for duplicates: clip)
    for r in rois[:2]:
        if not np.array_equal(gt[r], np.minimum(numpy_read(r), 1)):
            print("bench_python: labelbin and the numpy rule disagree on %r" % (r,),
                  file=sys.stderr)
            return None

    cache_bytes = labels.nbytes  # the whole decoded volume
    lb_s = median_per_roi(lambda r: gt[r], rois, args.runs)
    np_s = median_per_roi(numpy_read, rois, args.runs)
    cached = labelbin.BinarizeArray(src, groups)
    cached.set_cache(cache_bytes)
    lbc_s = median_per_roi(lambda r: cached[r], rois, args.runs)
    threaded = labelbin.BinarizeArray(src, groups)
    threaded.set_threads(2)
    lbt_s = median_per_roi(lambda r: threaded[r], rois, args.runs)
    cached.set_threads(2)
    lbct_s = median_per_roi(lambda r: cached[r], rois, args.runs)

    # cold: the first pass over a fresh array, with a new cache and without
    def fresh(threads):
        def make():
            a = labelbin.BinarizeArray(labelbin.ZarrArray(container, "labels"), groups)
            a.set_threads(threads)
            return a
        return make

    cold = {}
    for threads in (1, 2):
        fresh_s, _, _ = first_pass(fresh(threads), rois, args.runs)
        cold_s, warm_s, set_s = first_pass(fresh(threads), rois, args.runs, cache_bytes)
        cold[threads] = (fresh_s, cold_s, warm_s, set_s)

    voxels = args.roi ** 3
    result = {"bench": "python_roi_binarize", "codec": codec_name,
              "labelbin_s": round(lb_s, 6),
              "numpy_s": round(np_s, 6), "speedup": round(np_s / lb_s, 2),
              "labelbin_cached_s": round(lbc_s, 6),
              "speedup_cached": round(np_s / lbc_s, 2),
              "labelbin_2threads_s": round(lbt_s, 6),
              "speedup_2threads": round(np_s / lbt_s, 2),
              "labelbin_cached_2threads_s": round(lbct_s, 6),
              "speedup_cached_2threads": round(np_s / lbct_s, 2),
              "roi_voxels": voxels, "groups": len(groups), "volume": [args.size] * 3,
              "chunks": [chunk] * 3, "dtype": "uint64", "cache_bytes": cache_bytes,
              "runs": args.runs, "rois_per_run": args.rois, "smoke": args.smoke}
    for threads, (fresh_s, cold_s, warm_s, set_s) in cold.items():
        suffix = "" if threads == 1 else "_2threads"
        result["labelbin_fresh%s_s" % suffix] = round(fresh_s, 6)
        result["labelbin_cached_cold%s_s" % suffix] = round(cold_s, 6)
        result["labelbin_cached_warm%s_s" % suffix] = round(warm_s, 6)
        result["cold_vs_fresh%s" % suffix] = round(cold_s / fresh_s, 3)
        result["set_cache%s_s" % suffix] = round(set_s, 6)
    print("| Python ROI read + binarize (%d^3 vox, %d groups, u64 %s) "
          "| labelbin %.4f s | 2 threads %.4f s | cached %.4f s | cached, 2 threads %.4f s "
          "| zarr+numpy %.4f s | %.1fx | %.1fx 2 threads | %.1fx cached "
          "| %.1fx cached, 2 threads |"
          % (args.roi, len(groups), codec_name, lb_s, lbt_s, lbc_s, lbct_s, np_s, np_s / lb_s,
             np_s / lbt_s, np_s / lbc_s, np_s / lbct_s))
    for threads, (fresh_s, cold_s, warm_s, set_s) in cold.items():
        print("| Python first pass, fresh array (%d^3 vox, u64 %s, %d thread%s) "
              "| no cache %.4f s | cached, cold %.4f s = %.2fx | cached, warm %.4f s "
              "| set_cache %.3f s |"
              % (args.roi, codec_name, threads, "s" if threads > 1 else "", fresh_s, cold_s,
                 cold_s / fresh_s, warm_s, set_s))
    print(json.dumps(result))
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny run (a test, not a benchmark)")
    ap.add_argument("--size", type=int, default=256, help="volume edge in voxels")
    ap.add_argument("--roi", type=int, default=96, help="ROI edge in voxels")
    ap.add_argument("--runs", type=int, default=7, help="timed runs (>= 5)")
    ap.add_argument("--rois", type=int, default=8, help="random ROIs per run")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    if args.smoke:
        args.size, args.roi, args.runs, args.rois = 64, 32, 2, 2
    print("seed", args.seed, file=sys.stderr)
    rng = np.random.default_rng(args.seed)
    groups = groupings()
    tmp = tempfile.mkdtemp(prefix="lb_bench_python_")
    try:
        labels = cellmap_labels(rng, args.size)
        codecs = [("zstd:3", Zstd(level=3)),
                  ("blosc-zstd:5", Blosc(cname="zstd", clevel=5, shuffle=Blosc.SHUFFLE))]
        for name, compressor in codecs:
            # the same ROIs for every codec
            if bench_codec(args, tmp, labels, groups, name, compressor, args.seed + 1) is None:
                return 1
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
