"""labelbin-mpi under mpirun: the DEST of every run is compared byte for byte
(every file and folder, metadata included) with the DEST of one `labelbin`
process — with 1, 2, 3 and 5 ranks on the built-in sample and on the
repository's conformance cases, Zarr v2 and Zarr v3 with shards, more ranks
than blocks; a rank killed mid-run, then --resume with another number of
ranks; signals; a corrupt chunk met by one rank (exit 1, its message once,
the other ranks stopped); rank 0 alone printing.

Skipped, saying why, when mpirun or build/labelbin-mpi is missing (an MPI
library is needed to build it: scripts/install-deps installs OpenMPI).
Environment: LB_BUILD_DIR, LB_CONFORMANCE_DIR as for tests/py_cli.py.
Run: /usr/bin/python3 -m pytest -q tests/py_mpi.py
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from trees import assert_same_tree  # noqa: E402
BUILD = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "build"))
LABELBIN = os.path.abspath(os.path.join(BUILD, "labelbin"))
LABELBIN_MPI = os.path.abspath(os.path.join(BUILD, "labelbin-mpi"))
CONFORMANCE = os.environ.get("LB_CONFORMANCE_DIR", os.path.join(BUILD, "conformance"))
MPIRUN = shutil.which("mpirun")

if not MPIRUN:
    pytest.skip("mpirun not found (Debian: openmpi-bin, installed by scripts/install-deps)",
                allow_module_level=True)
if not os.access(LABELBIN_MPI, os.X_OK):
    pytest.skip(f"{LABELBIN_MPI} not built (CMake found no MPI library; Debian: "
                "libopenmpi-dev, installed by scripts/install-deps)", allow_module_level=True)

if not os.path.isfile(os.path.join(CONFORMANCE, "cosem_u64_blosc", "case.json")):
    subprocess.run([sys.executable, os.path.join(HERE, "conformance", "make_cases.py"),
                    CONFORMANCE], check=True)

RANKS = [1, 2, 3, 5]
GROUPS = ["-g", "mito=3,4,5", "-g", "er=16,17,18,19", "-g", "nuc=20,21,22,23,37",
          "-g", "cell="]
# The launcher's own noise is not ours; everything else on stderr is.
MPIRUN_ARGS = ["--oversubscribe", "--allow-run-as-root"]


def lb(*args, cwd=None):
    p = subprocess.run([LABELBIN, *args], cwd=cwd, capture_output=True, text=True,
                       timeout=300)
    return p.returncode, p.stdout, p.stderr


def mpi_cmd(n, *args):
    return [MPIRUN, *MPIRUN_ARGS, "-n", str(n), LABELBIN_MPI, *args]


def launcher_noise_removed(err):
    """stderr without the lines the MPI stack prints about the machine, not
    about the job: hwloc's "[hwloc/linux] failed to find sysfs cpu topology
    directory" where /sys is not mounted (containers, chroots)."""
    return "".join(line for line in err.splitlines(keepends=True)
                   if not line.startswith("[hwloc/"))


def mpi(n, *args, cwd=None):
    p = subprocess.run(mpi_cmd(n, *args), cwd=cwd, capture_output=True, text=True,
                       timeout=300)
    return p.returncode, p.stdout, launcher_noise_removed(p.stderr)


def summary(out, dest):
    """The summary table without DEST and the time, for comparing rank 0's
    output with one process's."""
    lines = out.replace(dest, "DEST").splitlines()
    return [line.rsplit(",", 1)[0] if line.startswith("wrote ") else line for line in lines]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("sample")
    src = str(d / "crop.zarr" / "volumes" / "labels" / "all")
    rc, _, err = lb("sample", "-q", "--shape", "96,128,128", src)
    assert rc == 0, err
    return src


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """Enough 16^3 blocks (4096) for a run to be stopped half way."""
    d = tmp_path_factory.mktemp("big")
    src = str(d / "big.zarr" / "volumes" / "labels" / "all")
    rc, _, err = lb("sample", "-q", "--shape", "256,256,256", "--chunks", "32,64,64", src)
    assert rc == 0, err
    return src


# ---------------------------------------------------------------------------
# The byte-identity matrix
# ---------------------------------------------------------------------------

LAYOUTS = {
    "zarr2": ["--chunks", "32,32,32"],
    "zarr3-shards": ["--format", "zarr3", "--chunks", "16,32,32", "--shard", "32,64,64"],
    "zarr3-together": ["--format", "zarr3", "--chunks", "32,32,32",
                       "--channel-chunks", "together"],
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("command", ["binarize", "mask"])
def test_sample_matrix(tmp_path, sample, command, layout):
    one = str(tmp_path / "one.zarr" / "gt")
    rc, out1, err = lb(command, sample, one, *GROUPS, *LAYOUTS[layout], "-j", "2")
    assert rc == 0, err
    for n in RANKS:
        dest = str(tmp_path / f"n{n}.zarr" / "gt")
        rc, out, err = mpi(n, command, sample, dest, *GROUPS, *LAYOUTS[layout], "-j", "1")
        assert rc == 0, err
        assert_same_tree(str(tmp_path / "one.zarr"), str(tmp_path / f"n{n}.zarr"))
        # Rank 0 alone prints, the counts summed over the ranks.
        assert summary(out, dest) == summary(out1, one), (n, out)
        assert err == "", (n, err)


def load_case(case_dir):
    with open(os.path.join(case_dir, "case.json")) as f:
        return json.load(f)


def roi_arg(roi):
    return "--roi=" + ",".join(f"{o}:{o + s}" for o, s in zip(roi["offset"], roi["shape"]))


CASES = sorted(d for d in os.listdir(CONFORMANCE)
               if os.path.isfile(os.path.join(CONFORMANCE, d, "case.json")))


@pytest.mark.parametrize("case_name", CASES)
def test_conformance_matrix(tmp_path, case_name):
    case_dir = os.path.join(CONFORMANCE, case_name)
    case = load_case(case_dir)
    src = os.path.join(case_dir, case["source"])
    gfile = tmp_path / "groups.json"
    gfile.write_text(json.dumps(case["groupings"]))
    req = next(r for r in case["requests"] if "error" not in r)
    runs = {
        "binarize": ["binarize", src, None, "--groupings", str(gfile),
                     "--background", str(case["background"]), roi_arg(req["roi"])],
        "mask": ["mask", src, None, "--groupings", str(gfile), roi_arg(req["roi"])],
    }
    for kind, args in runs.items():
        args[2] = str(tmp_path / "one.zarr" / kind)
        rc, out1, err1 = lb(*args)
        assert rc == 0, err1
        for n in RANKS:
            args[2] = str(tmp_path / f"{kind}{n}.zarr" / kind)
            rc, out, err = mpi(n, *args)
            assert rc == 0, err
            assert_same_tree(str(tmp_path / "one.zarr" / kind), args[2])
            assert summary(out, args[2]) == summary(out1, str(tmp_path / "one.zarr" / kind))
            # The same warnings (the mask's unlisted ids of every rank), once.
            assert err == err1, (n, err, err1)


def test_refused_roi_prints_once_and_leaves_nothing(tmp_path):
    case_dir = os.path.join(CONFORMANCE, "u8_gzip_forder")
    case = load_case(case_dir)
    req = next(r for r in case["requests"] if "error" in r)
    dest = tmp_path / "out.zarr" / "gt"
    rc, out, err = mpi(3, "binarize", os.path.join(case_dir, case["source"]), str(dest),
                       "-g", "a=1", roi_arg(req["roi"]))
    assert rc == 1
    assert sum(line.startswith("labelbin: ") for line in err.splitlines()) == 1, err
    assert not os.path.exists(tmp_path / "out.zarr")


def test_more_ranks_than_blocks(tmp_path, sample):
    one = str(tmp_path / "one.zarr" / "gt")
    rc, out1, err = lb("binarize", sample, one, *GROUPS, "--chunks", "96,64,128")
    assert rc == 0, err
    assert "wrote " + one + ": 2 blocks" in out1
    dest = str(tmp_path / "n5.zarr" / "gt")
    rc, out, err = mpi(5, "binarize", sample, dest, *GROUPS, "--chunks", "96,64,128")
    assert rc == 0, err
    assert_same_tree(one, dest)
    assert summary(out, dest) == summary(out1, one)


def test_run_command(tmp_path, sample):
    cfg = {"__type__": "MissingAnnotationsMaskConfig", "name": "m",
           "source_array_config": {"__type__": "ZarrArrayConfig", "name": "l",
                                   "file_name": sample.rsplit("/volumes", 1)[0],
                                   "dataset": "volumes/labels/all"},
           "groupings": [["mito", [3, 4, 5]], ["er", [16, 17]]]}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    one = str(tmp_path / "one.zarr" / "m")
    assert lb("run", str(path), one, "--chunks", "32,32,32", "-q")[0] == 0
    dest = str(tmp_path / "n3.zarr" / "m")
    rc, _, err = mpi(3, "run", str(path), dest, "--chunks", "32,32,32", "-q")
    assert rc == 0, err
    assert_same_tree(one, dest)


# ---------------------------------------------------------------------------
# Killed, interrupted, failing ranks
# ---------------------------------------------------------------------------

def ranks_of(proc):
    """The PIDs of mpirun's rank processes (its children)."""
    pids = []
    for t in os.listdir(f"/proc/{proc.pid}/task"):
        try:
            with open(f"/proc/{proc.pid}/task/{t}/children") as f:
                pids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return pids


def wait_for_chunks(dest, count, proc):
    """Until `count` chunk files exist under dest (or the run ended)."""
    while proc.poll() is None:
        n = sum(len(fs) for _, _, fs in os.walk(dest)) if os.path.isdir(dest) else 0
        if n >= count:
            return True
        time.sleep(0.02)
    return False


BIG_ARGS = [*GROUPS, "--chunks", "16,16,16"]


@pytest.fixture(scope="module")
def big_one(tmp_path_factory, big):
    """One labelbin process's output of the big job (read only)."""
    one = str(tmp_path_factory.mktemp("big_one") / "one.zarr" / "gt")
    rc, _, err = lb("binarize", big, one, *BIG_ARGS, "-q")
    assert rc == 0, err
    return one


@pytest.mark.parametrize("first,then", [(3, 2), (2, 5)])
def test_rank_killed_then_resume_with_other_n(tmp_path, big, big_one, first, then):
    one = big_one
    dest = str(tmp_path / "k.zarr" / "gt")
    proc = subprocess.Popen(mpi_cmd(first, "binarize", big, dest, *BIG_ARGS, "-j", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for_chunks(dest, 200, proc), "the run ended before it could be killed"
    victim = ranks_of(proc)[-1]
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err
    with open(os.path.join(dest, ".zattrs")) as f:
        assert json.load(f)["labelbin"]["complete"] is False
    rc, out, err = mpi(then, "binarize", big, dest, *BIG_ARGS, "--resume")
    assert rc == 0, err
    assert "already complete" in out
    assert_same_tree(one, dest)


def test_sigterm_to_every_rank_stops_cleanly_then_resume(tmp_path, big, big_one):
    """What a scheduler does (scancel, srun on a time limit): every rank
    gets SIGTERM; rank 0 says how to finish; --resume with another N."""
    one = big_one
    dest = str(tmp_path / "t.zarr" / "gt")
    proc = subprocess.Popen(mpi_cmd(3, "binarize", big, dest, *BIG_ARGS, "-j", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for_chunks(dest, 200, proc), "the run ended before it could be stopped"
    for pid in ranks_of(proc):
        os.kill(pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    hint = "labelbin: interrupted; run the same command with --resume to finish"
    assert err.count(hint) == 1, err
    assert "wrote " not in out
    rc, out, err = mpi(5, "binarize", big, dest, *BIG_ARGS, "--resume", "-q")
    assert rc == 0, err
    assert_same_tree(one, dest)


def test_sigint_to_mpirun_then_resume(tmp_path, big, big_one):
    """Ctrl-C to mpirun: it forwards SIGTERM to the ranks and kills them a
    second later; whatever was written, --resume finishes it."""
    one = big_one
    dest = str(tmp_path / "i.zarr" / "gt")
    proc = subprocess.Popen(mpi_cmd(2, "binarize", big, dest, *BIG_ARGS, "-j", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for_chunks(dest, 200, proc), "the run ended before it could be stopped"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    rc, _, err = mpi(3, "binarize", big, dest, *BIG_ARGS, "--resume", "-q")
    assert rc == 0, err
    assert_same_tree(one, dest)


def test_corrupt_chunk_on_one_rank_stops_all(tmp_path, big, big_one):
    src_root = big.rsplit("/volumes", 1)[0]
    bad_root = str(tmp_path / "bad.zarr")
    shutil.copytree(src_root, bad_root)
    bad = bad_root + "/volumes/labels/all"
    # A chunk a third of the way through the block order (z first).
    with open(os.path.join(bad, "2.1.1"), "wb") as f:
        f.write(b"not zstd at all")
    rc1, _, err1 = lb("binarize", bad, str(tmp_path / "one.zarr" / "gt"), *BIG_ARGS)
    assert rc1 == 1
    why = "2.1.1: zstd data is truncated or corrupt"
    assert why in err1
    n_full = sum(len(fs) for _, _, fs in os.walk(big_one))
    dest = str(tmp_path / "n3.zarr" / "gt")
    rc, out, err = mpi(3, "binarize", bad, dest, *BIG_ARGS, "-j", "1")
    assert rc == 1, err
    lines = [x for x in err.splitlines() if x.startswith("labelbin: ")]
    assert len(lines) == 1, err
    assert why in lines[0]
    assert lines[0].endswith(f"{dest} is incomplete: run again with --resume to finish it")
    assert "wrote " not in out
    # The others stopped: most of the blocks after the bad one were never
    # handed out, and the output says it is unfinished.
    n = sum(len(fs) for _, _, fs in os.walk(dest))
    assert n < n_full * 0.8, (n, n_full)
    with open(os.path.join(dest, ".zattrs")) as f:
        assert json.load(f)["labelbin"]["complete"] is False


# ---------------------------------------------------------------------------
# The tool around the driver
# ---------------------------------------------------------------------------

def test_usage_error_printed_once(tmp_path, sample):
    rc, out, err = mpi(3, "binarize", sample, str(tmp_path / "o.zarr"), "-g", "a=1",
                       "--frobnicate")
    assert rc == 2
    assert err.count("labelbin: binarize: unknown option '--frobnicate'") == 1, err
    assert not os.path.exists(tmp_path / "o.zarr")


def test_stdin_refused_under_mpi(tmp_path, sample):
    rc, _, err = mpi(2, "binarize", sample, str(tmp_path / "o.zarr"), "--groupings", "-")
    assert rc == 2
    assert "'-' (standard input) cannot be used under MPI" in err
    assert not os.path.exists(tmp_path / "o.zarr")


def test_help_and_info_on_rank_0_only(sample):
    rc, out, err = mpi(2, "--help")
    assert rc == 0, err
    assert out.count("Usage: mpirun [-n N] labelbin-mpi COMMAND") == 1
    assert "--resume" in out and "rank 0" in out
    rc, out, err = mpi(3, "info", sample)
    assert rc == 0, err
    rc1, out1, _ = lb("info", sample)
    assert out == out1


def test_one_process_tool_does_not_link_mpi():
    ldd = shutil.which("ldd")
    if not ldd:
        pytest.skip("ldd not found")
    libs = subprocess.run([ldd, LABELBIN], capture_output=True, text=True).stdout
    assert "libmpi" not in libs
    libs = subprocess.run([ldd, LABELBIN_MPI], capture_output=True, text=True).stdout
    assert "libmpi" in libs
