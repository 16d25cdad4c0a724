#!/usr/bin/python3
"""bench_scale.py — labelbin past one process, and the parameters of the
petavoxel model in docs/scaling.md, measured on this machine:

  mpi     the same binarize job (16 CellMap groups, uint64 labels, 64^3
          chunks) through labelbin-mpi with 1 and 2 ranks (-j1 each), and
          through one labelbin process with -j1 and -j2: the speedup of 2
          ranks over 1
  dask    the same job through labelbin.materialize on a dask.distributed
          LocalCluster (2 worker processes x 1 thread), on Dask's local
          threads, and the CLI -j2: Dask's cost against the CLI
  params  the model's inputs: CPU time per 64^3 block and per voxel (-j1),
          compressed bytes read per voxel and written per chunk, the share
          of all-zero output chunks; the cost of creating one chunk file the
          way the writer does (temporary name, write, rename) and of one
          stat (what --resume does per chunk) on the disk (ext4 here) and
          on tmpfs (/dev/shm)

Usage: PYTHONPATH=build/python /usr/bin/python3 bench/bench_scale.py
           [--smoke] [--runs 5] [--data DIR] [--out DIR] [--only mpi|dask|params]...
Data: `labelbin sample --seed 1 --shape 1024,512,512 --chunks 64,64,64
--codec zstd:3` (268 Mvoxel, reused from DIR, default build/bench-data).
Outputs go to --out (default /dev/shm when writable: the file system left
out of the CPU comparison). Timings: median of --runs runs after one
warm-up, the configurations interleaved run by run so that they share the
machine's moments; the job's own time is the one the tool prints ("wrote
...: X s": from before the output is begun to after it is finished, MPI
and Python start-up excluded); wall clock includes them. One table row and
one JSON line per result; the 1-min load average before and after in each.
--smoke: a 64^3 volume, one run (seconds; no timing claims).
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
BUILD = pathlib.Path(os.environ.get("LB_BUILD_DIR", HERE.parent / "build")).resolve()
LABELBIN = str(BUILD / "labelbin")
LABELBIN_MPI = str(BUILD / "labelbin-mpi")
sys.path.insert(0, str(BUILD / "python"))

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


def load():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return -1.0


def emit(row, result):
    print(row)
    print(json.dumps(result), flush=True)


WROTE = re.compile(r"^wrote .*: (\d+) blocks.*?, (\d+) (?:chunks|shards), (\d+) empty "
                   r".*?, ([0-9.]+) s$", re.M)


def run_tool(cmd):
    """(wall seconds, the tool's own seconds, blocks, chunks, empty)."""
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd[:6]), p.returncode, p.stderr))
    m = WROTE.search(p.stdout)
    if not m:
        raise RuntimeError("no summary line in: " + p.stdout)
    return wall, float(m.group(4)), int(m.group(1)), int(m.group(2)), int(m.group(3))


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def make_data(args):
    shape = "64,64,64" if args.smoke else "1024,512,512"
    src = pathlib.Path(args.data) / ("scale_%s.zarr" % shape.replace(",", "x")) / "labels"
    if not (src / ".zarray").is_file():
        subprocess.run([LABELBIN, "sample", "-q", "-f", "--seed", "1", "--shape", shape,
                        "--chunks", "64,64,64", "--codec", "zstd:3", str(src)], check=True)
    return str(src)


# ---------------------------------------------------------------------------

def bench_mpi(args, src, out):
    mpirun = shutil.which("mpirun")
    if not mpirun or not os.access(LABELBIN_MPI, os.X_OK):
        print("bench_scale: mpi skipped: mpirun or %s missing" % LABELBIN_MPI, file=sys.stderr)
        return
    # Unbound: this machine is shared, and a rank bound to a core that
    # another job is using cannot move (the one-process CLI can).
    mpi = [mpirun, "--oversubscribe", "--allow-run-as-root", "--bind-to", "none"]
    configs = {
        "mpi-1x1": mpi + ["-n", "1", LABELBIN_MPI],
        "mpi-2x1": mpi + ["-n", "2", LABELBIN_MPI],
        "cli-j1": [LABELBIN],
        "cli-j2": [LABELBIN],
    }
    threads = {"mpi-1x1": "1", "mpi-2x1": "1", "cli-j1": "1", "cli-j2": "2"}
    res = {k: {"wall": [], "own": []} for k in configs}
    l0 = load()
    info = None
    for r in range(args.runs + 1):
        for name, pre in configs.items():
            dest = os.path.join(out, "scale_%s.zarr" % name, "gt")
            w, own, blocks, chunks, empty = run_tool(
                pre + ["binarize", src, dest, *g_args(), "-j", threads[name], "-f"])
            info = (blocks, chunks, empty)
            if r > 0:  # the first round warms up
                res[name]["wall"].append(w)
                res[name]["own"].append(own)
    l1 = load()
    med = {k: (median(v["own"]), median(v["wall"])) for k, v in res.items()}
    speed = med["mpi-1x1"][0] / med["mpi-2x1"][0]
    speed_wall = med["mpi-1x1"][1] / med["mpi-2x1"][1]
    for name in configs:
        emit("| scale %-14s | job %.3f s | wall %.3f s | %d blocks |"
             % (name, med[name][0], med[name][1], info[0]),
             {"bench": "scale", "part": "mpi", "config": name, "job_s": med[name][0],
              "wall_s": med[name][1], "blocks": info[0], "runs": args.runs,
              "load_before": l0, "load_after": l1})
    emit("| scale MPI 2 ranks vs 1     | job %.2fx | wall %.2fx | target >= 1.7x (job); "
         "CLI -j1/-j2 meanwhile %.2fx |" % (speed, speed_wall, med["cli-j1"][0] / med["cli-j2"][0]),
         {"bench": "scale", "part": "mpi", "config": "speedup-2-ranks", "job_x": speed,
          "wall_x": speed_wall, "cli_j1_over_j2": med["cli-j1"][0] / med["cli-j2"][0],
          "mpi2_over_cli_j2": med["mpi-2x1"][0] / med["cli-j2"][0], "runs": args.runs,
          "load_before": l0, "load_after": l1})


def bench_dask(args, src, out):
    try:
        import distributed
        import labelbin
    except ImportError as e:
        print("bench_scale: dask skipped: %s" % e, file=sys.stderr)
        return
    b = labelbin.BinarizeArray(labelbin.ZarrArray(src), GROUPS)
    t = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
    client = distributed.Client(cluster)
    startup = time.perf_counter() - t
    res = {"cli-j2": [], "dask-cluster-2x1": [], "dask-threads-2": []}
    l0 = load()
    try:
        for r in range(args.runs + 1):
            dest = os.path.join(out, "scale_cli.zarr", "gt")
            _, own, *_ = run_tool([LABELBIN, "binarize", src, dest, *g_args(), "-j", "2", "-f"])
            times = {"cli-j2": own}
            dest = os.path.join(out, "scale_dask.zarr", "gt")
            t = time.perf_counter()
            labelbin.materialize(b, dest, client=client, overwrite=True, threads=1,
                                 provenance={"command": "binarize"})
            times["dask-cluster-2x1"] = time.perf_counter() - t
            dest = os.path.join(out, "scale_dask_threads.zarr", "gt")
            import dask
            with dask.config.set(scheduler="threads", num_workers=2):
                t = time.perf_counter()
                labelbin.materialize(b, dest, client=False, overwrite=True, threads=1,
                                     provenance={"command": "binarize"})
                times["dask-threads-2"] = time.perf_counter() - t
            if r > 0:
                for k, v in times.items():
                    res[k].append(v)
    finally:
        client.close()
        cluster.close()
    l1 = load()
    cli = median(res["cli-j2"])
    for name, v in res.items():
        m = median(v)
        emit("| scale %-17s | %.3f s | %.2fx the CLI -j2 |" % (name, m, m / cli),
             {"bench": "scale", "part": "dask", "config": name, "job_s": m,
              "over_cli_j2": m / cli, "cluster_startup_s": startup, "runs": args.runs,
              "load_before": l0, "load_after": l1})


def file_costs(root, n):
    """Seconds per file: created as the writer does (O_EXCL temporary,
    2 KiB written, renamed), then per stat of an existing file."""
    d = tempfile.mkdtemp(prefix="lb-files-", dir=root)
    data = b"\1" * 2048
    try:
        t = time.perf_counter()
        for i in range(n):
            tmp = os.path.join(d, ".%d.lbtmp.1.%d" % (i, i))
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.close(fd)
            os.rename(tmp, os.path.join(d, str(i)))
        create = (time.perf_counter() - t) / n
        t = time.perf_counter()
        for i in range(n):
            os.stat(os.path.join(d, str(i)))
        stat = (time.perf_counter() - t) / n
    finally:
        shutil.rmtree(d)
    return create, stat


def bench_params(args, src, out):
    dest = os.path.join(out, "scale_params.zarr", "gt")
    owns = []
    info = None
    for r in range(args.runs + 1):
        _, own, blocks, chunks, empty = run_tool(
            [LABELBIN, "binarize", src, dest, *g_args(), "-j", "1", "-f"])
        info = (blocks, chunks, empty)
        if r > 0:
            owns.append(own)
    own = median(owns)
    blocks, chunks, empty = info
    voxels = blocks * 64 ** 3
    src_bytes = sum(f.stat().st_size for f in pathlib.Path(src).iterdir() if f.is_file()
                    and not f.name.startswith("."))
    out_bytes = sum(f.stat().st_size for f in pathlib.Path(dest).iterdir() if f.is_file()
                    and not f.name.startswith("."))
    emit("| scale CPU per 64^3 block (-j1, %d channels) | %.2f ms | %.2f ns/voxel |"
         % (len(GROUPS), 1e3 * own / blocks, 1e9 * own / voxels),
         {"bench": "scale", "part": "params", "what": "cpu", "s_per_block": own / blocks,
          "ns_per_voxel": 1e9 * own / voxels, "channels": len(GROUPS), "blocks": blocks,
          "runs": args.runs})
    emit("| scale bytes | read %.4f B/voxel (uint64 zstd:3) | written %.0f B/chunk | "
         "%.1f%% of chunks all zero |" % (src_bytes / voxels, out_bytes / max(chunks, 1),
                                          100.0 * empty / (chunks + empty)),
         {"bench": "scale", "part": "params", "what": "bytes",
          "read_bytes_per_voxel": src_bytes / voxels,
          "written_bytes_per_chunk": out_bytes / max(chunks, 1),
          "empty_share": empty / (chunks + empty), "chunks_written": chunks,
          "chunks_empty": empty})
    n = 500 if args.smoke else 20000
    places = [("disk", args.data)]
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        places.append(("tmpfs", "/dev/shm"))
    for name, root in places:
        fs = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", root],
                            capture_output=True, text=True).stdout.split("\n")[0].strip() or "?"
        creates, stats = [], []
        for _ in range(3 if not args.smoke else 1):
            c, s = file_costs(root, n)
            creates.append(c)
            stats.append(s)
        c, s = median(creates), median(stats)
        emit("| scale file create (%s, %s) | %.1f us | %.0f files/s | stat %.2f us |"
             % (name, fs, 1e6 * c, 1 / c, 1e6 * s),
             {"bench": "scale", "part": "params", "what": "files", "place": name,
              "fs": fs, "create_us": 1e6 * c, "stat_us": 1e6 * s, "files": n})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--data", default=str(BUILD / "bench-data"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--only", action="append", choices=["mpi", "dask", "params"])
    args = ap.parse_args()
    if args.smoke:
        args.runs = 1
    os.makedirs(args.data, exist_ok=True)
    shm = os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)
    out = args.out or tempfile.mkdtemp(prefix="lb-scale-", dir="/dev/shm" if shm else args.data)
    only = set(args.only or ["mpi", "dask", "params"])
    try:
        src = make_data(args)
        if "mpi" in only:
            bench_mpi(args, src, out)
        if "dask" in only:
            bench_dask(args, src, out)
        if "params" in only:
            bench_params(args, src, out)
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
