#!/usr/bin/python3
"""roi_numpy.py — the zarr-python + DaCapo numpy side of bench_e2e's ROI
benchmark: random ROI reads of a Zarr v2 label dataset, each followed by
DaCapo's BinarizeArray rule, timed in process.

Usage: /usr/bin/python3 roi_numpy.py TASK.json
TASK.json: {"path": "<dataset dir>", "rois": [[z, y, x], ...] (voxel
offsets), "edge": E (ROI edge in voxels), "runs": R, "groupings":
[["mito", [3, 4, 5]], ...], "background": 0}
Timing matches bench_e2e's C side: one warm-up pass over all ROIs, then R
passes; each pass gives seconds per ROI; the median is reported. Prints one
JSON line: {"numpy_s": median, "runs": [...], "read_s": median of the
zarr reads alone (no rule), "nonzero": [per channel, ROI 0,
values clipped to 0/1 as DaCapo >= 0.3.2 does]}.
"""
import json
import statistics
import sys
import time

import numpy as np
import zarr

# DaCapo's rule, shared by every benchmark (this script's folder is on sys.path).
from numpy_rule import binarize as rule




def main():
    with open(sys.argv[1]) as f:
        task = json.load(f)
    ds = zarr.open(task["path"], mode="r")
    groupings = [(g[0], [int(x) for x in g[1]]) for g in task["groupings"]]
    bg = int(task.get("background", 0))
    e = int(task["edge"])
    sls = [tuple(slice(o, o + e) for o in off) for off in task["rois"]]

    def one_pass():
        t0 = time.perf_counter()
        out = None
        for sl in sls:
            out = rule(ds[sl], groupings, bg)
        return (time.perf_counter() - t0) / len(sls), out

    def read_pass():
        t0 = time.perf_counter()
        for sl in sls:
            ds[sl]
        return (time.perf_counter() - t0) / len(sls)

    one_pass()  # warm-up: page cache, allocator, imports
    runs, reads = [], []
    for _ in range(max(1, int(task["runs"]))):
        runs.append(one_pass()[0])
        reads.append(read_pass())
    first = np.minimum(rule(ds[sls[0]], groupings, bg), 1)
    nonzero = [int(np.count_nonzero(first[i])) for i in range(len(groupings))]
    print(json.dumps({"numpy_s": statistics.median(runs), "runs": runs,
                      "read_s": statistics.median(reads),
                      "nonzero": nonzero}), flush=True)


if __name__ == "__main__":
    main()
