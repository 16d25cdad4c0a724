#!/usr/bin/python3
"""bench_label_cache.py — the shared label cache on training-style reads,
every ratio from one run: random 96^3 ROIs of a BinarizeArray (16 CellMap
groups) over two uint64 zstd volumes of 256x512x512 with 64^3 chunks — the
built-in sample (`labelbin sample`, organelle-shaped labels) and a blocky
worst case (random ids in 4^3 cubes that straddle the 8^3 blocks of the
cache's encoding, ~27 ids per block) — measuring:

  warm     labelbin with a warmed label cache, against zarr-python + DaCapo's
           numpy rule (target >= 20x) and against writing the same output
           bytes once (a new numpy array of the same size, filled: <= 2x)
  cold     a fresh cache's first pass against a fresh uncached array
           (the first pass costs <= 1.05x an uncached one)
  size     the cache's bytes after warming the whole volume against the
           decoded (uint64) size (target <= 1/8)
  workers  1 and 4 forked worker processes reading warm ROIs at once, each
           with its own arrays (as DataLoader workers): the sum of their
           PSS (/proc/PID/smaps_rollup) and ROIs per second (targets: 4
           workers <= 1.25x the memory of one, >= 1.8x its throughput on 2
           cores); beside them the floor, workers forked alike that only
           write each read's output bytes: the throughput ratio the memory
           bus allows, and the memory that is each worker's own (Python,
           numpy, the output array), which no cache can share; the difference
           of the two is the private memory labelbin's reads add per worker

Usage: PYTHONPATH=build/python /usr/bin/python3 bench/bench_label_cache.py
       [--smoke] [--data DIR] [--runs R] [--rois N]
Prints table rows ("| ...") and one JSON line per result with the load
average (1 min) before and after. --smoke: 64x128x128 volumes, few ROIs,
no timing claims (a CTest smoke test). Data is generated once into DIR
(default build/bench-data) and reused.
"""
import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import labelbin as lb

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from numpy_rule import binarize as numpy_rule  # noqa: E402  DaCapo's rule

GROUPS = [("ecs", [1]), ("pm", [2]), ("mito", [3, 4, 5]), ("mito_mem", [3]),
          ("golgi", [6, 7]), ("ves", [8, 9]), ("endo", [10, 11]), ("lyso", [12, 13]),
          ("ld", [14, 15]), ("er", [16, 17, 18, 19, 20, 21, 22, 23]),
          ("er_mem_all", [16, 18, 20]), ("eres", [18, 19]),
          ("nuc", [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 37]), ("mt", [30, 36]),
          ("perox", [47, 48]), ("cell_all", [])]


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def rollup_kib(pid="self"):
    """PSS and USS (private pages) of process pid, KiB."""
    pss = uss = 0
    with open("/proc/%s/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith(("Private_Clean:", "Private_Dirty:")):
                uss += int(line.split()[1])
    return pss, uss


def mapping_kib(path, pid="self"):
    """PSS and private pages of the mappings of file `path` (the cache) in
    process pid, KiB (a shared file's page is private while only this
    process maps it)."""
    pss = priv = 0
    inside = False
    with open("/proc/%s/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if head and not head[0].endswith(":"):  # a mapping's header line
                inside = head[-1] == path
            elif inside and head[0] == "Pss:":
                pss += int(head[1])
            elif inside and head[0] in ("Private_Clean:", "Private_Dirty:"):
                priv += int(head[1])
    return pss, priv


def emit(row, record):
    print(row, flush=True)
    print(json.dumps(record), flush=True)


def make_sample(labelbin_exe, path, shape, chunk):
    if os.path.exists(os.path.join(path, ".zarray")):
        return
    subprocess.run([labelbin_exe, "sample", "-q", "-f", "--seed", "1", "--shape",
                    ",".join(map(str, shape)), "--chunks", ",".join([str(chunk)] * 3),
                    "--codec", "zstd:3", path], check=True)


def make_blocky(path, shape, chunk):
    """Random uint64 ids in 4^3 cubes offset by 2 voxels: every 8^3 block
    meets 27 cubes; some ids are CellMap ids so the groups switch on."""
    if os.path.exists(os.path.join(path, ".zarray")):
        return
    import zarr
    from numcodecs import Zstd
    z = zarr.open(path, mode="w", shape=shape, chunks=(chunk,) * 3, dtype="<u8",
                  compressor=Zstd(level=3), fill_value=0)
    for z0 in range(0, shape[0], chunk):
        for y0 in range(0, shape[1], chunk):
            for x0 in range(0, shape[2], chunk):
                zz, yy, xx = np.meshgrid(np.arange(z0, z0 + chunk), np.arange(y0, y0 + chunk),
                                         np.arange(x0, x0 + chunk), indexing="ij")
                cube = (((zz + 2) // 4).astype(np.uint64) * np.uint64(1000003)
                        + ((yy + 2) // 4).astype(np.uint64) * np.uint64(7919)
                        + ((xx + 2) // 4).astype(np.uint64))
                h = (cube * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(20)
                ids = np.where(h % np.uint64(3) == 0, h % np.uint64(50), h)
                z[z0:z0 + chunk, y0:y0 + chunk, x0:x0 + chunk] = ids


def rois_for(arr, edge, n, seed):
    rng = np.random.default_rng(seed)
    r, vs = arr.roi, arr.voxel_size
    shape = [r.shape[k] // vs[k] for k in range(3)]
    offs = [tuple(int(rng.integers(0, shape[k] - edge + 1)) for k in range(3))
            for _ in range(n)]
    return offs, [lb.Roi(tuple(r.offset[k] + o[k] * vs[k] for k in range(3)),
                         tuple(edge * v for v in vs)) for o in offs]


CPU = {}  # per_roi's last CPU time per item, by function name


def per_roi(fn, items, tag=None):
    """Wall seconds per item; the process CPU seconds per item go to
    CPU[tag] (the machine is shared: CPU time moves less with its load)."""
    t0, c0 = time.perf_counter(), time.process_time()
    for it in items:
        fn(it)
    if tag:
        CPU.setdefault(tag, []).append((time.process_time() - c0) / len(items))
    return (time.perf_counter() - t0) / len(items)


def binarized(path, cache=None, nbytes=0):
    a = lb.BinarizeArray(lb.ZarrArray(path), GROUPS)
    if cache:
        a.set_label_cache(nbytes, name=cache)
    return a


def fresh_cache(name):
    try:
        lb.cache_remove(name)
    except FileNotFoundError:
        pass


def worker(path, cache, nbytes, rois, seconds, q, out_shape=None):
    if path is None:  # the floor: only write each read's output bytes
        read = lambda r: np.empty(out_shape, np.uint8).fill(1)  # noqa: E731
    elif cache:
        read = binarized(path, cache, nbytes).__getitem__
    else:  # the private cache of decoded chunks, for comparison
        a = binarized(path)
        a.set_cache(nbytes)
        read = a.__getitem__
    t_end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < t_end:
        read(rois[n % len(rois)])
        n += 1
    pss, uss = rollup_kib()
    cpss, cpriv = mapping_kib("/dev/shm/" + cache) if cache else (0, 0)
    q.put((n, pss, uss - cpriv, cpss))  # USS: the worker's own pages, not the cache's


def run_workers(path, cache, nbytes, rois, k, seconds, out_shape=None):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    ps = [ctx.Process(target=worker, args=(path, cache, nbytes, rois, seconds, q, out_shape))
          for _ in range(k)]
    for p in ps:
        p.start()
    res = [q.get() for _ in ps]
    for p in ps:
        p.join()
    # ROIs/s, PSS, USS outside the cache, PSS of the cache mapping (summed)
    return tuple(sum(r[i] for r in res) / (seconds if i == 0 else 1) for i in range(4))


def bench_volume(label, path, args, cache_name):
    import zarr
    nbytes = 1 << 30
    probe = binarized(path)
    offs, rois = rois_for(probe, args.edge, args.rois, 7)
    out_shape = (len(GROUPS),) + (args.edge,) * 3
    tag = {"volume": label, "edge": args.edge, "rois": args.rois, "runs": args.runs}

    # cold: a fresh cache's first pass vs a fresh uncached array's
    l0 = loadavg()
    unc, cold = [], []
    for _ in range(args.runs):
        u = binarized(path)
        unc.append(per_roi(lambda r: u[r], rois, "unc"))
        fresh_cache(cache_name)
        c = binarized(path, cache_name, nbytes)
        cold.append(per_roi(lambda r: c[r], rois, "cold"))
    unc_s, cold_s = statistics.median(unc), statistics.median(cold)
    uc, cc = statistics.median(CPU.pop("unc")), statistics.median(CPU.pop("cold"))
    emit("| %s: cold cached vs uncached, %d random %d^3 ROIs | uncached %.2f ms/ROI | cached "
         "first pass %.2f ms/ROI | %.3fx (target <= 1.05); CPU time %.2f / %.2f ms = %.3fx "
         "| load %.1f |"
         % (label, args.rois, args.edge, 1e3 * unc_s, 1e3 * cold_s, cold_s / unc_s, 1e3 * uc,
            1e3 * cc, cc / uc, l0),
         dict(tag, bench="label_cache_cold", uncached_s=unc_s, cold_s=cold_s,
              ratio=cold_s / unc_s, uncached_cpu_s=uc, cold_cpu_s=cc, cpu_ratio=cc / uc,
              load_before=l0, load_after=loadavg()))

    # size after warming the whole volume
    l0 = loadavg()
    fresh_cache(cache_name)
    c = binarized(path, cache_name, nbytes)
    t0 = time.perf_counter()
    c.warm(threads=0)
    warm_s = time.perf_counter() - t0
    info = c.cache_info()
    # chunks that do not compress are declined: a note each, no raw bytes
    ratio = ("ratio 1/%.1f" % info["compression"] if info["raw_bytes"]
             else "every chunk declined (does not compress): notes only")
    if info["raw_bytes"] and info["declined"]:
        ratio += " (%d chunks declined)" % info["declined"]
    emit("| %s: cache after warm() of the whole volume | %d entries, %.2f MB for %.1f MB of "
         "uint64 | %s (target <= 1/8) | warm() %.2f s on all cores | load %.1f |"
         % (label, info["entries"], info["bytes"] / 1e6, info["raw_bytes"] / 1e6,
            ratio, warm_s, l0),
         dict(tag, bench="label_cache_size", entries=info["entries"],
              declined=info["declined"], bytes=info["bytes"],
              raw_bytes=info["raw_bytes"], compression=info["compression"], warm_s=warm_s,
              load_before=l0, load_after=loadavg()))

    # warm: labelbin vs zarr-python + numpy rule vs filling the same bytes
    l0 = loadavg()
    ds = zarr.open(path, mode="r")
    sls = [tuple(slice(o, o + args.edge) for o in off) for off in offs]
    per_roi(lambda r: c[r], rois)
    warm, npr, fill = [], [], []
    for _ in range(args.runs):
        warm.append(per_roi(lambda r: c[r], rois, "warm"))
        npr.append(per_roi(lambda s: numpy_rule(ds[s], GROUPS, 0), sls[:max(2, len(sls) // 4)],
                           "numpy"))
        fill.append(per_roi(lambda r: np.empty(out_shape, np.uint8).fill(1), rois, "fill"))
    w, n_, f = statistics.median(warm), statistics.median(npr), statistics.median(fill)
    wc, nc, fc = (statistics.median(CPU.pop(k)) for k in ("warm", "numpy", "fill"))
    # the same reads into one reused buffer (to_ndarray(roi, out=buf)), and
    # with 2 read threads (one training process, both cores)
    buf = np.empty(out_shape, np.uint8)
    wo = statistics.median(per_roi(lambda r: c.to_ndarray(r, out=buf), rois)
                           for _ in range(args.runs))
    c.set_threads(2)
    w2 = statistics.median(per_roi(lambda r: c[r], rois) for _ in range(args.runs))
    c.set_threads(1)
    same = all((c[r] == numpy_rule(ds[s], GROUPS, 0).clip(0, 1)).all()
               for r, s in zip(rois[:2], sls[:2]))
    emit("| %s: warm cached reads, %d^3 ROIs, 16 groups | labelbin %.2f ms/ROI | zarr-python + "
         "DaCapo numpy %.1f ms/ROI = %.1fx (target >= 20) | new array filled %.2f ms/ROI: "
         "labelbin %.2fx of it (target <= 2) | CPU time: %.1fx numpy, %.2fx fill | into a "
         "reused buffer (out=): %.2f ms/ROI = %.1fx numpy | 2 read threads: %.2f ms/ROI = "
         "%.1fx numpy | same bytes: %s | load %.1f |"
         % (label, args.edge, 1e3 * w, 1e3 * n_, n_ / w, 1e3 * f, w / f, nc / wc, wc / fc,
            1e3 * wo, n_ / wo, 1e3 * w2, n_ / w2, same, l0),
         dict(tag, bench="label_cache_warm", warm_s=w, warm_out_s=wo, warm_2threads_s=w2,
              numpy_s=n_, fill_s=f,
              vs_numpy=n_ / w, vs_fill=w / f, warm_cpu_s=wc, numpy_cpu_s=nc, fill_cpu_s=fc,
              cpu_vs_numpy=nc / wc, cpu_vs_fill=wc / fc, equal=same, load_before=l0,
              load_after=loadavg()))

    # 1 vs 4 worker processes, all warm
    l0 = loadavg()
    del c
    cache_file = os.stat("/dev/shm/" + cache_name).st_blocks * 512  # tmpfs pages: once
    t1, m1, u1, c1 = run_workers(path, cache_name, nbytes, rois, 1, args.seconds)
    t4, m4, u4, c4 = run_workers(path, cache_name, nbytes, rois, 4, args.seconds)
    # The floor, in the same run: workers forked alike that only write each
    # read's output bytes (a new array, filled) — what the memory system
    # allows 4 writers against 1.
    f1, _, fu1, _ = run_workers(None, None, 0, rois, 1, args.seconds, out_shape)
    f4, _, fu4, _ = run_workers(None, None, 0, rois, 4, args.seconds, out_shape)
    emit("| %s: warm worker processes (fork), %d^3 ROIs | 1 worker %.1f ROI/s, 4 workers %.1f "
         "ROI/s = %.2fx (target >= 1.8 on 2 cores); floor, workers that only write the output "
         "bytes: %.2fx | memory (sum of PSS): 1 worker %.1f MB, 4 workers %.1f MB = %.2fx "
         "(target <= 1.25) | each worker's own pages (USS: its Python, numpy and %.1f MB "
         "output array): %.1f MB alone, %.1f MB each of 4; a floor worker's: %.1f MB, %.1f "
         "MB each of 4, so labelbin's own per worker: %.1f MB, %.1f MB | the cache: a %.1f "
         "MB file in /dev/shm, in memory once for all workers (its PSS summed: %.1f MB for "
         "1, %.1f MB for 4) | load %.1f |"
         % (label, args.edge, t1, t4, t4 / t1, f4 / f1, m1 / 1024, m4 / 1024, m4 / m1,
            np.prod(out_shape) / 2**20, u1 / 1024, u4 / 4 / 1024, fu1 / 1024, fu4 / 4 / 1024,
            (u1 - fu1) / 1024, (u4 - fu4) / 4 / 1024, cache_file / 2**20,
            c1 / 1024, c4 / 1024, l0),
         dict(tag, bench="label_cache_workers", rois_per_s_1=t1, rois_per_s_4=t4,
              throughput_ratio=t4 / t1, floor_rois_per_s_1=f1, floor_rois_per_s_4=f4,
              floor_throughput_ratio=f4 / f1, pss_kib_1=m1, pss_kib_4=m4, pss_ratio=m4 / m1,
              uss_kib_1=u1, uss_kib_4=u4, floor_uss_kib_1=fu1, floor_uss_kib_4=fu4,
              cache_pss_kib_1=c1, cache_pss_kib_4=c4,
              cache_file_bytes=cache_file, cache_bytes=info["bytes"], cpus=os.cpu_count(),
              load_before=l0, load_after=loadavg()))
    if not args.smoke:
        # The same with each worker's private cache of decoded chunks.
        l0 = loadavg()
        raw = 8 * int(np.prod([probe.roi.shape[k] // probe.voxel_size[k] for k in range(3)]))
        t1, m1, _, _ = run_workers(path, None, raw, rois, 1, args.seconds)
        t4, m4, _, _ = run_workers(path, None, raw, rois, 4, args.seconds)
        emit("| %s: for comparison, a private decoded-chunk cache (set_cache) per worker | "
             "1 worker %.1f ROI/s, PSS %.1f MB | 4 workers %.1f ROI/s = %.2fx, PSS %.1f MB = "
             "%.2fx | load %.1f |"
             % (label, t1, m1 / 1024, t4, t4 / t1, m4 / 1024, m4 / m1, l0),
             dict(tag, bench="chunk_cache_workers", rois_per_s_1=t1, rois_per_s_4=t4,
                  throughput_ratio=t4 / t1, pss_kib_1=m1, pss_kib_4=m4, pss_ratio=m4 / m1,
                  load_before=l0, load_after=loadavg()))
    fresh_cache(cache_name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--data", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rois", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    build = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "build"))
    exe = os.path.join(build, "labelbin")
    if args.smoke:
        import tempfile
        tmp = tempfile.mkdtemp(prefix="lb_bench_lcache")
        data, shape, args.edge = tmp, (64, 128, 128), 32
        args.runs, args.rois, args.seconds = 1, 3, 0.3
    else:
        data = args.data or os.path.join(build, "bench-data")
        shape, args.edge = (256, 512, 512), 96
    os.makedirs(data, exist_ok=True)
    tag = "x".join(map(str, shape))
    sample = os.path.join(data, "lcache_sample_%s.zarr/labels" % tag)
    blocky = os.path.join(data, "lcache_blocky_%s.zarr/labels" % tag)
    make_sample(exe, sample, shape, 64 if not args.smoke else 32)
    make_blocky(blocky, shape, 64 if not args.smoke else 32)
    name = "labelbin-bench-%d" % os.getpid()
    print("load average before: %.2f on %d CPUs" % (loadavg(), os.cpu_count()), flush=True)
    bench_volume("sample", sample, args, name)
    bench_volume("blocky", blocky, args, name)
    if args.smoke:
        import shutil
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
