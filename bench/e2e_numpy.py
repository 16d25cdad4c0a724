#!/usr/bin/python3
"""e2e_numpy.py — the zarr-python + numpy side of bench_e2e's end-to-end
benchmark: the whole `labelbin binarize` job written the obvious way.

Usage: /usr/bin/python3 e2e_numpy.py TASK.json
TASK.json: {"source": "<dataset dir>", "dest": "<new dataset dir>",
"runs": R, "groupings": [...], "background": 0, "compare": "<labelbin's
output dataset dir>" (optional)}
Per run (timed with perf_counter): create DEST_<run> as a (G, Z, Y, X) uint8 Zarr v2 array with the source's compressor,
chunks (1, source chunk), write_empty_chunks=False (labelbin does not store
all-zero chunks either); then for every source chunk: read it, apply
DaCapo's rule (legacy `grouped[i] += labels == id`, clipped to 0/1 as DaCapo
>= 0.3.2 and labelbin give), write the (G, chunk) block. Single process, as
DaCapo's numpy runs. Prints one JSON line: {"seconds": median, "runs": [...],
"chunks_written": n, "equal": true|false|null (compared with "compare")}.
"""
import itertools
import json
import os
import statistics
import sys
import time

import numpy as np
import zarr

# DaCapo's rule, shared by every benchmark (this script's folder is on sys.path).
from numpy_rule import binarize as rule




def job(src, dest, groupings, bg):
    out = zarr.open(dest, mode="w", shape=(len(groupings),) + src.shape,
                    chunks=(1,) + src.chunks, dtype="uint8",
                    compressor=src.compressor, fill_value=0,
                    write_empty_chunks=False)
    ranges = [range(0, n, c) for n, c in zip(src.shape, src.chunks)]
    for start in itertools.product(*ranges):
        sl = tuple(slice(s, min(s + c, n)) for s, c, n in zip(start, src.chunks, src.shape))
        out[(slice(None),) + sl] = np.minimum(rule(src[sl], groupings, bg), 1)
    return out


def main():
    with open(sys.argv[1]) as f:
        task = json.load(f)
    src = zarr.open(task["source"], mode="r")
    groupings = [(g[0], [int(x) for x in g[1]]) for g in task["groupings"]]
    bg = int(task.get("background", 0))
    runs = []
    out = None
    for r in range(max(1, int(task["runs"]))):
        # a new dataset per run, as bench_e2e does for labelbin (bench_e2e
        # removes the container afterwards)
        dest = "%s_%d" % (task["dest"], r)
        t0 = time.perf_counter()
        out = job(src, dest, groupings, bg)
        runs.append(time.perf_counter() - t0)
    written = sum(1 for n in os.listdir(dest) if not n.startswith("."))
    equal = None
    if task.get("compare"):
        lb = zarr.open(task["compare"], mode="r")
        equal = lb.shape == out.shape and all(
            np.array_equal(lb[c], out[c]) for c in range(out.shape[0]))
    print(json.dumps({"seconds": statistics.median(runs), "runs": runs,
                      "chunks_written": written, "equal": equal}), flush=True)


if __name__ == "__main__":
    main()
