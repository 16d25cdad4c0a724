#!/usr/bin/python3
"""bench_remote.py — the same reads from a server with latency and from
disk: random ROI reads + binarize (16 CellMap groups, in process through the
Python module) and the end-to-end `labelbin binarize -j2`, on a 384^3
uint64 Zarr v2 volume (`labelbin sample`, 64^3 chunks, zstd) and a sharded
Zarr v3 copy (128^3 shards of 64^3 inner chunks), served by nginx on
loopback behind the proxy of the test suite (tests/remote/faultproxy.py)
adding LATENCY ms to every request.

Usage: PYTHONPATH=build/python /usr/bin/python3 bench/bench_remote.py [--smoke]
       [--runs 5] [--rois 8] [--roi 96] [--latency-ms 20] [--out DIR]
Reports per case: local and remote time (median of runs after a warm-up),
their ratio, and the requests and bytes the server saw per ROI (a first
pass over a freshly opened array: shard indexes included, metadata not) or
per run, counted in nginx's access log. Remote region reads use the default of
32 concurrent requests (LB_HTTP_CONCURRENCY); local reads get 2 read threads
(the -j2 of the end-to-end runs). One table row and one JSON line per
result. --smoke: a tiny volume, one run, no timing claims (a CTest test).
Needs Debian's nginx (scripts/install-deps); exits 77 without it.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = pathlib.Path(os.environ.get("LB_BUILD_DIR", ROOT / "build"))
sys.path.insert(0, str(ROOT / "tests" / "remote"))
try:
    import labelbin
except ImportError:
    sys.path.insert(0, str(BUILD / "python"))
    import labelbin
import servers  # noqa: E402

LABELBIN = str(BUILD / "labelbin")
GROUPS = [["ecs", [1]], ["pm", [2]], ["mito", [3, 4, 5]], ["mito_mem", [3]],
          ["golgi", [6, 7]], ["ves", [8, 9]], ["endo", [10, 11]], ["lyso", [12, 13]],
          ["ld", [14, 15]], ["er", [16, 17, 18, 19, 20, 21, 22, 23]],
          ["er_mem_all", [16, 18, 20]], ["eres", [18, 19]],
          ["nuc", [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 37]], ["mt", [30, 36]],
          ["perox", [47, 48]], ["cell_all", []]]


def g_args():
    out = []
    for name, ids in GROUPS:
        out += ["-g", name + "=" + ",".join(map(str, ids))]
    return out


def make_data(root, shape, chunk, shard, inner):
    labels = str(root / "labels.zarr" / "s0")
    subprocess.run([LABELBIN, "sample", "-q", "-f", "--shape", ",".join(map(str, shape)),
                    "--chunks", ",".join([str(chunk)] * 3), "--codec", "zstd:3", labels],
                   check=True)
    src = labelbin.ZarrArray(labels)
    sharded = str(root / "sharded.zarr" / "s0")
    a = labelbin.create_dataset(sharded, shape, [inner] * 3, dtype="uint64", codec="zstd:3",
                                attrs=dict(src.attrs), format="zarr3", shard=[shard] * 3,
                                overwrite=True)
    a[a.roi] = src[src.roi]
    servers.world_readable(str(root))
    return {"zarr2": "labels.zarr/s0", "zarr3_sharded": "sharded.zarr/s0"}


class LatencyProxy:
    """tests/remote/faultproxy.py in a process of its own (no GIL shared
    with the reads timed here)."""

    def __init__(self, upstream, latency_ms):
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "remote" / "faultproxy.py"), "--upstream",
             upstream, "--latency-ms", str(latency_ms)], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        self.url = "http://127.0.0.1:%s" % line[1]

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def counts(web):
    log = web.log()
    return len(log), sum(b for *_, b in log)


def roi_case(web, base, path, shape, args, rng):
    """Seconds per ROI, local and remote, and what the server saw per ROI."""
    n = args.roi
    whole = labelbin.ZarrArray(str(args.data / path))
    vs, origin = whole.voxel_size, whole.roi.offset
    rois = []
    for _ in range(args.rois):
        lo = [int(rng.integers(0, s - n + 1)) for s in shape]
        rois.append(labelbin.Roi([o + v * w for o, v, w in zip(origin, lo, vs)],
                                 [n * w for w in vs]))

    def make(src, threads):
        a = labelbin.BinarizeArray(labelbin.ZarrArray(src), GROUPS)
        if threads:
            a.set_threads(threads)
        return a

    def per_roi(a):
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            for r in rois:
                a[r]
            times.append((time.perf_counter() - t0) / len(rois))
        return statistics.median(times)

    local = make(str(args.data / path), 2)
    remote = make(base + "/" + path, 0)        # the remote default: 32 in flight
    remote1 = make(base + "/" + path, 1)       # one request at a time
    for r in rois[:2]:
        assert np.array_equal(local[r], remote[r]), "remote and local reads differ"
    for a in (local, remote, remote1):  # warm-up
        for r in rois:
            a[r]
    t_local = per_roi(local)
    # What a first pass costs the server (shard indexes included), on a
    # fresh array opened before the count starts.
    fresh = make(base + "/" + path, 0)
    web.clear_log()
    for r in rois:
        fresh[r]
    nreq, nbytes = counts(web)
    t_remote = per_roi(remote)
    t_remote1 = per_roi(remote1)
    return t_local, t_remote, t_remote1, nreq / len(rois), nbytes / len(rois)


def e2e_case(web, base, path, args, out):
    def once(src, dest):
        t0 = time.perf_counter()
        p = subprocess.run([LABELBIN, "binarize", "-q", "-j2", src, dest, *g_args()],
                           env=bench_env(), capture_output=True, text=True)
        t = time.perf_counter() - t0
        if p.returncode:
            raise RuntimeError(p.stderr)
        shutil.rmtree(os.path.dirname(dest), ignore_errors=True)
        return t

    def median(src, tag):
        once(src, str(out / ("warm-%s.zarr" % tag) / "gt"))
        return statistics.median(once(src, str(out / ("%s%d.zarr" % (tag, i)) / "gt"))
                                 for i in range(args.runs))

    t_local = median(str(args.data / path), "l")
    web.clear_log()
    once(base + "/" + path, str(out / "count.zarr" / "gt"))
    nreq, nbytes = counts(web)
    t_remote = median(base + "/" + path, "r")
    return t_local, t_remote, nreq, nbytes


def report(kind, name, row, record):
    print(row, flush=True)
    record.update({"bench": kind, "case": name,
                   "load": open("/proc/loadavg").read().split()[0]})
    print(json.dumps(record), flush=True)


def bench_env():
    """servers.env(), keeping a LB_HTTP_CONCURRENCY the caller set."""
    t = os.environ.get("LB_HTTP_CONCURRENCY")
    return servers.env(**({"LB_HTTP_CONCURRENCY": t} if t else {}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rois", type=int, default=8)
    ap.add_argument("--roi", type=int, default=96)
    ap.add_argument("--latency-ms", type=float, default=20)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", default=None, help="where outputs go (default: /dev/shm)")
    args = ap.parse_args()
    if not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        print("bench_remote: skipped: nginx is not installed (scripts/install-deps)",
              file=sys.stderr)
        return 77
    if args.smoke:
        args.runs, args.rois, args.roi = 1, 2, 24
        shape, chunk, shard, inner = (64, 64, 64), 32, 64, 16
    else:
        shape, chunk, shard, inner = (384, 384, 384), 64, 128, 64
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="lb-bench-remote-"))
    out_root = args.out or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    out = pathlib.Path(tempfile.mkdtemp(prefix="lb-bench-remote-out-", dir=out_root))
    args.data = tmp
    web = proxy = None
    try:
        paths = make_data(tmp, shape, chunk, shard, inner)
        web = servers.Nginx(str(tmp)).start()
        proxy = LatencyProxy(web.url, args.latency_ms)
        for k, v in bench_env().items():  # for the in-process reads
            os.environ[k] = v
        rng = np.random.default_rng(args.seed)
        lat = "%g ms" % args.latency_ms
        for name, path in paths.items():
            tl, tr, tr1, nreq, nbytes = roi_case(web, proxy.url, path, shape, args, rng)
            report("remote_roi", name,
                   "| ROI read + binarize, %d random %d^3 ROIs, %s, 16 groups | local (2 "
                   "threads) %.1f ms | over HTTP +%s/request: %.1f ms (%.2fx local), one "
                   "request at a time %.1f ms | %.1f requests, %.0f KiB per ROI |"
                   % (len(range(args.rois)), args.roi, name, 1e3 * tl, lat, 1e3 * tr, tr / tl,
                      1e3 * tr1, nreq, nbytes / 1024),
                   {"local_s": tl, "remote_s": tr, "remote_1_s": tr1, "ratio": tr / tl,
                    "latency_ms": args.latency_ms, "requests_per_roi": nreq,
                    "bytes_per_roi": nbytes, "roi": args.roi, "shape": shape})
        for name, path in paths.items():
            tl, tr, nreq, nbytes = e2e_case(web, proxy.url, path, args, out)
            report("remote_e2e", name,
                   "| `labelbin binarize -j2`, %s voxels, %s, 16 groups | local %.2f s | "
                   "over HTTP +%s/request %.2f s (%.2fx local) | %d requests, %.1f MiB |"
                   % ("x".join(map(str, shape)), name, tl, lat, tr, tr / tl, nreq,
                      nbytes / 2**20),
                   {"local_s": tl, "remote_s": tr, "ratio": tr / tl,
                    "latency_ms": args.latency_ms, "requests": nreq, "bytes": nbytes,
                    "shape": shape})
    finally:
        if proxy:
            proxy.close()
        if web:
            web.close()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
