#!/usr/bin/python3
"""numpy_rule.py — DaCapo's numpy rules, timed, for bench_kernels.

Reads a task file (JSON) naming a raw label volume (C order, native byte
order) and a list of tasks; for each task runs DaCapo's rule on the whole
volume, in process, timed with time.perf_counter (or time.thread_time when
the task file says "clock": "cpu"), median of `reps` runs (loading the
volume is not timed), and prints one JSON line:
  {"kind": ..., "groups": G, "seconds": median, "runs": [...],
   "nonzero": [non-zero voxels per channel]}
The rules are DaCapo's BinarizeArray / MissingAnnotationsMask __getitem__
(legacy, cellmap_stable) without the I/O:
  binarize: grouped = zeros((G,)+shape, uint8); empty group: grouped[i] +=
            labels != background; else for id in ids: grouped[i] += labels == id
  mask:     grouped = ones((G,)+shape, bool); grouped[:] = labels > 0;
            grouped[i] = 0 for each channel that is not enabled
Usage: /usr/bin/python3 numpy_rule.py TASKS.json
"""
import json
import statistics
import sys
import time

import numpy as np


def binarize(labels, groupings, background):
    grouped = np.zeros((len(groupings),) + labels.shape, dtype=np.uint8)
    for i, (_name, ids) in enumerate(groupings):
        if len(ids) == 0:
            grouped[i] += labels != background
        else:
            for id_ in ids:
                grouped[i] += labels == id_
    return grouped


def mask(labels, enabled):
    grouped = np.ones((len(enabled),) + labels.shape, dtype=bool)
    grouped[:] = labels > 0
    for i, on in enumerate(enabled):
        if not on:
            grouped[i] = 0
    return grouped


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    labels = np.fromfile(spec["labels"], dtype=np.dtype(spec["dtype"]))
    labels = labels.reshape(spec["shape"])
    reps = max(1, int(spec.get("reps", 3)))
    # "cpu": this thread's CPU time, as bench_kernels --cpu measures its own.
    clock = time.thread_time if spec.get("clock") == "cpu" else time.perf_counter
    for task in spec["tasks"]:
        if task["kind"] == "binarize":
            groupings = [(g[0], [int(x) for x in g[1]]) for g in task["groupings"]]
            bg = int(task.get("background", 0))

            def run():
                return binarize(labels, groupings, bg)
            groups = len(groupings)
        else:
            enabled = [bool(x) for x in task["enabled"]]

            def run():
                return mask(labels, enabled)
            groups = len(enabled)
        runs = []
        out = None
        for _ in range(reps):
            out = None  # free the previous result before timing the next
            t0 = clock()
            out = run()
            runs.append(clock() - t0)
        nonzero = [int(np.count_nonzero(out[i])) for i in range(groups)]
        out = None
        print(json.dumps({"kind": task["kind"], "groups": groups,
                          "seconds": statistics.median(runs), "runs": runs,
                          "nonzero": nonzero}), flush=True)


if __name__ == "__main__":
    main()
