#!/usr/bin/python3
"""bench_crops.py — targets and masks over a CellMap crop: a crop with 30
classes (28 semantic uint8 with absent/present/unknown, 2 instance uint16),
64^3 chunks, blosc-zstd, written by zarr-python; 16 CellMap groups (group
classes through their members, ids the crop lacks, an empty group). Times
labelbin's BinarizeArray + MissingAnnotationsMask over the crop (the whole
ROI, and with inferred negatives; two arrays, each reading the classes) and
the three-state array (both in one read) against reading the same 30 class
arrays with zarr-python and applying the three-valued rule in numpy, in one
process (same data, same machine moment); results are compared first. The
floor is labelbin decoding the 30 class arrays once and nothing else.

Usage: PYTHONPATH=build/python /usr/bin/python3 bench/bench_crops.py [--smoke]
       [--size 160] [--runs 5] [--seed N]
Prints table rows and one JSON line per result; seconds are medians.
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
from numcodecs import Blosc

# CellMap ids 1..30 (the crop's classes) and the group classes used.
NAMES = ["ecs", "pm", "mito_mem", "mito_lum", "mito_ribo", "golgi_mem", "golgi_lum", "ves_mem",
         "ves_lum", "endo_mem", "endo_lum", "lyso_mem", "lyso_lum", "ld_mem", "ld_lum", "er_mem",
         "er_lum", "eres_mem", "eres_lum", "ne_mem", "ne_lum", "np_out", "np_in", "hchrom",
         "nhchrom", "echrom", "nechrom", "nucpl", "nucleo", "mt_out"]
INSTANCE = {"mito_lum", "ves_lum"}
GROUPS = [["ecs", [1]], ["pm", [2]], ["mito", [50]], ["mito_mem", [3]], ["golgi", [40]],
          ["ves", [8, 9]], ["endo", [10, 11]], ["lyso", [12, 13]], ["ld", [14, 15]],
          ["er", [16, 17, 18, 19, 20, 21, 22, 23]], ["er_mem_all", [16, 18, 20]],
          ["eres", [18, 19]], ["nuc", [37]], ["mt", [30, 36]], ["perox", [47, 48]],
          ["any", []]]
MEMBERS = {50: [3, 4, 5], 40: [6, 7], 37: list(range(20, 30))}
S3 = {"absent": 0, "present": 1, "unknown": 255}
INST = {"absent": 0, "unknown": 65535}


def multiscales(vs):
    return [{"version": "0.4", "name": None, "axes": [
        {"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"],
        "datasets": [{"path": "s0", "coordinateTransformations": [
            {"type": "scale", "scale": [float(vs)] * 3},
            {"type": "translation", "translation": [0.0] * 3}]}]}]


def write_crop(path, rng, n):
    """Dense atomic ids 1..30 in blobs; each class array says present where
    the id is its own, absent elsewhere, unknown in a slab of its own."""
    coarse = rng.integers(1, 31, size=(n // 8 + 1,) * 3)
    truth = coarse.repeat(8, 0).repeat(8, 1).repeat(8, 2)[:n, :n, :n].astype(np.uint8)
    root = zarr.open_group(path, mode="w")
    crop = root.require_group("crop")
    crop.attrs.put({"cellmap": {"annotation": {"version": "0.1.1", "class_names": NAMES}}})
    comp = Blosc("zstd", 3, Blosc.SHUFFLE)
    for i, name in enumerate(NAMES):
        k = i + 1
        inst = name in INSTANCE
        enc = INST if inst else S3
        at = {"type": ("instance" if inst else "semantic") + "_segmentation", "encoding": enc}
        g = crop.require_group(name)
        g.attrs.put({"cellmap": {"annotation": {"class_name": name, "annotation_type": at}},
                     "multiscales": multiscales(8)})
        inside = truth == k
        if inst:
            d = np.where(inside, (np.arange(truth.size).reshape(truth.shape) // 512) + 1, 0)
            d = d.astype(np.uint16)
        else:
            d = inside.astype(np.uint8)
        lo = (i * 5) % n
        d[lo:lo + max(1, n // 16)] = enc["unknown"]
        z = g.create_dataset("s0", data=d, chunks=(64, 64, 64), compressor=comp,
                             dimension_separator="/")
        z.attrs.put({"cellmap": {"annotation": {
            "class_name": name, "annotation_type": at, "complement_counts": {
                "absent": int((d == enc["absent"]).sum()),
                "unknown": int((d == enc["unknown"]).sum())}}}})
    return str(pathlib.Path(path) / "crop")


def atomic(k):
    if k in MEMBERS:
        out = set()
        for m in MEMBERS[k]:
            out |= atomic(m)
        return out
    return {k}


def numpy_rule(arrays, groups, infer):
    """zarr-python reads of the class arrays + the three-valued rule."""
    states = {}
    for i, (name, z) in enumerate(arrays):
        d = z[...]
        enc = INST if name in INSTANCE else S3
        absent = d == enc["absent"]
        unknown = d == enc["unknown"]
        present = ~absent & ~unknown if name in INSTANCE else d == enc["present"]
        states[i + 1] = (present, absent)
    shape = next(iter(states.values()))[0].shape
    none = np.zeros(shape, bool)

    def state(k):
        if k in states:
            return states[k]
        if k in MEMBERS:
            s = [state(m) for m in MEMBERS[k]]
            return np.logical_or.reduce([p for p, _ in s]), np.logical_and.reduce([a for _, a in s])
        return none, none

    targets, masks = [], []
    for _, ids in groups:
        ks = ids or list(states)
        s = [state(k) for k in ks]
        present = np.logical_or.reduce([p for p, _ in s])
        if infer and ids:
            g = set()
            for k in ids:
                g |= atomic(k)
            inferred = np.logical_or.reduce(
                [states[j][0] for j in states if not (atomic(j) & g)] or [none])
            all_absent = np.logical_and.reduce([a | (~p & inferred) for p, a in s])
        else:
            all_absent = np.logical_and.reduce([a for _, a in s])
        targets.append(present)
        masks.append(present | all_absent)
    return np.array(targets, np.uint8), np.array(masks, np.uint8)


def median(fn, runs):
    fn()  # warm-up: page cache, allocator
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny run (a test, not a benchmark)")
    ap.add_argument("--size", type=int, default=160, help="crop edge in voxels")
    ap.add_argument("--runs", type=int, default=5, help="timed runs (>= 5)")
    ap.add_argument("--seed", type=int, default=1313)
    args = ap.parse_args()
    if args.smoke:
        args.size, args.runs = 32, 1
    print("seed", args.seed, file=sys.stderr)
    rng = np.random.default_rng(args.seed)
    tmp = tempfile.mkdtemp(prefix="lb_bench_crops_")
    try:
        path = write_crop(os.path.join(tmp, "c.zarr"), rng, args.size)
        crop = labelbin.Crop(path)
        zs = [(name, zarr.open(os.path.join(path, name, "s0"), mode="r")) for name in NAMES]
        for infer in (False, True):
            t = labelbin.BinarizeArray(crop, GROUPS, infer_negatives=infer)
            m = labelbin.MissingAnnotationsMask(crop, GROUPS, infer_negatives=infer)
            roi = t.roi
            got_t, got_m = t[roi], m[roi]
            exp_t, exp_m = numpy_rule(zs, GROUPS, infer)
            if not (np.array_equal(got_t, exp_t) and np.array_equal(got_m, exp_m)):
                print("bench_crops: labelbin and the numpy rule disagree (infer=%s)" % infer,
                      file=sys.stderr)
                return 1
            three = labelbin.BinarizeArray(crop, GROUPS, infer_negatives=infer, unknown=255)
            got3 = three[roi]
            if not np.array_equal(got3, np.where(exp_t == 1, 1, np.where(exp_m == 1, 0, 255))):
                print("bench_crops: the three-state array disagrees", file=sys.stderr)
                return 1
            lb1 = median(lambda: (t[roi], m[roi]), args.runs)
            lb3 = median(lambda: three[roi], args.runs)
            t.set_threads(2)
            m.set_threads(2)
            lb2 = median(lambda: (t[roi], m[roi]), args.runs)
            npy = median(lambda: numpy_rule(zs, GROUPS, infer), args.runs)
            # the floor: labelbin decoding the 30 class arrays once, nothing else
            plain = [labelbin.ZarrArray(os.path.join(path, name, "s0")) for name in NAMES]
            floor = median(lambda: [z[roi] for z in plain], args.runs)
            vox = args.size ** 3
            result = {"bench": "crop_binarize_mask", "infer_negatives": infer,
                      "labelbin_s": round(lb1, 6), "labelbin_2threads_s": round(lb2, 6),
                      "labelbin_three_state_s": round(lb3, 6), "decode_floor_s": round(floor, 6),
                      "zarr_numpy_s": round(npy, 6), "speedup": round(npy / lb1, 2),
                      "speedup_2threads": round(npy / lb2, 2),
                      "speedup_three_state": round(npy / lb3, 2),
                      "three_state_vs_floor": round(lb3 / floor, 2), "classes": len(NAMES),
                      "groups": len(GROUPS), "volume": [args.size] * 3, "voxels": vox,
                      "chunks": [64, 64, 64], "codec": "blosc-zstd:3", "runs": args.runs,
                      "smoke": args.smoke}
            print("| Crop binarize + mask (%d classes, %d groups, %d^3 vox%s) | labelbin %.3f s "
                  "| 2 threads %.3f s | three-state, one read %.3f s | zarr-python+numpy %.3f s "
                  "| %.1fx | %.1fx 2 threads | %.1fx three-state | decode floor %.3f s |"
                  % (len(NAMES), len(GROUPS), args.size,
                     ", inferred negatives" if infer else "", lb1, lb2, lb3, npy, npy / lb1,
                     npy / lb2, npy / lb3, floor))
            print(json.dumps(result))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
