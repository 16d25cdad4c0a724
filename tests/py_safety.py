"""Writers never destroy their input, and an unfinished output says so.

- DEST equal to the source dataset, inside it, or containing it — also
  through a symlink, `..`, a relative path or a bind mount — is refused
  (exit 1, one line naming both paths, no "-f" hint) by `binarize`, `mask`
  and `run`, with and without -f / --resume / --ome-ngff, and by Python's
  `to_zarr` (ValueError); every source file stays byte-identical.
- An output carries "labelbin": {"complete": false} until its run finishes;
  `info` (text and --json) and `ZarrArray.warnings` show it; --resume clears
  it; a finished output's attributes are those of an uninterrupted run.
- A failure after DEST was created (corrupt source chunk, full disk) ends
  with the --resume hint.
- Metadata is pure ASCII: non-ASCII group names read back exactly with
  zarr-python 2.13; a name that is not UTF-8 is refused.

Environment: LB_BUILD_DIR (holds `labelbin`), PYTHONPATH=build/python.
Run: /usr/bin/python3 -m pytest -q tests/py_safety.py
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import zarr

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "build"))
LABELBIN = os.path.abspath(os.path.join(BUILD, "labelbin"))
sys.path.insert(0, os.path.join(BUILD, "python"))

import labelbin  # noqa: E402
from labelbin import BinarizeArray, MissingAnnotationsMask, ZarrArray  # noqa: E402

GROUP = ["-g", "mito=3,4,5", "-g", "all="]
SRC_REL = os.path.join("src.zarr", "volumes", "labels", "all")


def lb(*args, cwd=None, timeout=120):
    """Run labelbin; returns (returncode, stdout, stderr)."""
    p = subprocess.run([LABELBIN, *map(str, args)], cwd=cwd, capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def files(root):
    """relative path -> bytes of every file (symlinks: their target) under
    root, plus every directory (-> None): the whole state of a tree."""
    out = {}
    for d, dirs, names in os.walk(root):
        for n in dirs:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = ("link", os.readlink(p)) if os.path.islink(p) \
                else None
        for n in names:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            else:
                with open(p, "rb") as f:
                    out[rel] = f.read()
    return out


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    base = tmp_path_factory.mktemp("sample")
    src = base / SRC_REL
    rc, _, err = lb("sample", "--shape", "32,64,64", "--chunks", "16,32,32", src)
    assert rc == 0, err
    ref = base / "ref.zarr" / "gt"
    rc, _, err = lb("binarize", src, ref, *GROUP, "-q")
    assert rc == 0, err
    return base, src, ref


@pytest.fixture
def work(sample, tmp_path):
    """A private copy of the sample container (tests may try to damage it)."""
    base, _, ref = sample
    shutil.copytree(base / "src.zarr", tmp_path / "src.zarr", symlinks=True)
    return tmp_path, tmp_path / SRC_REL, ref


# ---------------------------------------------------------------------------
# DEST overlapping the source
# ---------------------------------------------------------------------------

def _dest(root, kind):
    """DEST for an overlap kind (may set up links); returns (dest, cwd, why)."""
    src = root / SRC_REL
    if kind == "same":
        return src, None, "it is the source dataset"
    if kind == "same_trailing_slash":
        return str(src) + "/", None, "it is the source dataset"
    if kind == "inside":
        return src / "out", None, "lies inside the source dataset"
    if kind == "inside_deep":
        return src / "a" / "b" / "out", None, "lies inside the source dataset"
    if kind == "contains_container":
        return root / "src.zarr", None, "lies inside it"
    if kind == "contains_group":
        return root / "src.zarr" / "volumes", None, "lies inside it"
    if kind == "symlink_container":
        os.symlink(root / "src.zarr", root / "link.zarr")
        return root / "link.zarr" / "volumes" / "labels" / "all", None, \
            "it is the source dataset"
    if kind == "symlink_dataset":
        os.symlink(src, root / "alias")
        return root / "alias", None, "it is the source dataset"
    if kind == "symlink_inside":
        os.symlink(root / "src.zarr" / "volumes", root / "vol")
        return root / "vol" / "labels" / "all" / "x", None, "lies inside the source dataset"
    if kind == "dotdot":
        os.makedirs(root / "elsewhere" / "deeper")
        return root / "elsewhere" / "deeper" / ".." / ".." / SRC_REL, None, \
            "it is the source dataset"
    if kind == "dotdot_missing":
        # "missing/.." does not exist, yet mkdir -p would land in the source.
        return root / "missing" / ".." / SRC_REL, None, "it is the source dataset"
    if kind == "relative":
        return os.path.join("labels", "all"), root / "src.zarr" / "volumes", \
            "it is the source dataset"
    if kind == "relative_up":
        os.makedirs(root / "jobs")
        return os.path.join("..", "src.zarr"), root / "jobs", "lies inside it"
    raise AssertionError(kind)


KINDS = ["same", "same_trailing_slash", "inside", "inside_deep", "contains_container",
         "contains_group", "symlink_container", "symlink_dataset", "symlink_inside", "dotdot",
         "dotdot_missing", "relative", "relative_up"]
MODES = {"plain": [], "force": ["-f"], "resume": ["--resume"],
         "ome_force": ["--ome-ngff", "-f"]}


def assert_overlap_refused(rc, err, dest, src, why):
    assert rc == 1, f"exit {rc}: {err!r}"
    assert err.count("\n") == 1 and err.startswith("labelbin: refusing to write to "), err
    assert f'"{dest}"' in err and str(src) in err and why in err, err
    assert "-f" not in err and "--resume" not in err, err  # no hint at a fatal step


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("kind", KINDS)
def test_cli_refuses_dest_overlapping_source(work, kind, mode):
    root, src, _ = work
    dest, cwd, why = _dest(root, kind)
    src_arg = os.path.relpath(src, cwd) if cwd else src
    before = files(root)
    rc, out, err = lb("binarize", src_arg, dest, *GROUP, *MODES[mode], cwd=cwd)
    assert_overlap_refused(rc, err, dest, src_arg, why)
    assert out == ""
    assert files(root) == before  # not a byte, not a directory changed


@pytest.mark.parametrize("mode", ["plain", "force", "resume"])
def test_cli_mask_and_run_refuse_too(work, tmp_path, mode):
    root, src, _ = work
    before = files(root / "src.zarr")
    rc, _, err = lb("mask", src, src, *GROUP, *MODES[mode])
    assert_overlap_refused(rc, err, src, src, "it is the source dataset")
    # A config: the stored array at the bottom of the wrapper chain counts.
    cfg = {"__type__": "BinarizeArrayConfig", "name": "gt",
           "source_array_config": {"__type__": "ZarrArrayConfig", "name": "labels",
                                   "file_name": str(root / "src.zarr"),
                                   "dataset": "volumes/labels/all"},
           "groupings": [["mito", [3, 4, 5]]], "background": 0}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    for dest in (src, root / "src.zarr", src / "sub"):
        rc, _, err = lb("run", tmp_path / "cfg.json", dest, *MODES[mode])
        assert rc == 1 and "refusing to write to" in err and str(src) in err, err
    assert files(root / "src.zarr") == before


def try_mount(*args):
    """Run mount(8); skip the test where mounting is not allowed."""
    try:
        p = subprocess.run(["mount", *map(str, args)], capture_output=True)
    except OSError as e:
        pytest.skip(f"cannot run mount: {e}")
    if p.returncode != 0:
        pytest.skip("cannot mount here: " + p.stderr.decode(errors="replace").strip())


def test_cli_refuses_through_bind_mount(work):
    root, src, _ = work
    other = root / "mnt"
    os.makedirs(other)
    try_mount("--bind", src, other)
    try:
        before = files(src)
        for mode in ([], ["-f"], ["--resume"]):
            rc, _, err = lb("binarize", src, other, *GROUP, *mode)
            assert_overlap_refused(rc, err, other, src, "it is the source dataset")
            rc, _, err = lb("binarize", src, other / "x", *GROUP, *mode)
            assert_overlap_refused(rc, err, other / "x", src, "lies inside the source dataset")
        assert files(src) == before
    finally:
        subprocess.run(["umount", str(other)], check=True)


def test_neighbours_are_not_overlaps(work):
    # A sibling whose name starts with the source's ("all" vs "all2") and a
    # sibling group of the same container are fine.
    root, src, ref = work
    for dest in (src.parent / "all2", root / "src.zarr" / "gt" / "out"):
        rc, _, err = lb("binarize", src, dest, *GROUP, "-q")
        assert rc == 0, err
        np.testing.assert_array_equal(zarr.open(str(dest), "r")[...],
                                      zarr.open(str(ref), "r")[...])


@pytest.mark.parametrize("kind", KINDS)
def test_python_to_zarr_refuses(work, kind, monkeypatch):
    root, src, _ = work
    dest, cwd, why = _dest(root, kind)
    if cwd:
        monkeypatch.chdir(cwd)
    before = files(root)
    arrays = [BinarizeArray(ZarrArray(str(src)), [("mito", [3, 4, 5])]),
              MissingAnnotationsMask(ZarrArray(str(src)), [("mito", [3, 4, 5])]),
              ZarrArray(str(src))]
    for a in arrays:
        for kw in ({}, {"overwrite": True}, {"resume": True},
                   {"overwrite": True, "ome_ngff": True}):
            with pytest.raises(ValueError, match="refusing to write to") as e:
                a.to_zarr(dest, **kw)
            assert why in str(e.value) and "overwrite=True" not in str(e.value)
    assert files(root) == before


def test_python_from_config_refuses(work):
    root, src, _ = work
    cfg = {"__type__": "MissingAnnotationsMaskConfig", "name": "mask",
           "source_array_config": {"__type__": "ZarrArrayConfig", "name": "labels",
                                   "file_name": str(root / "src.zarr"),
                                   "dataset": "volumes/labels/all"},
           "groupings": [["mito", [3, 4, 5]]]}
    before = files(root)
    a = labelbin.from_config(cfg)
    with pytest.raises(ValueError, match="the source dataset"):
        a.to_zarr(root / "src.zarr", overwrite=True)
    assert files(root) == before


# ---------------------------------------------------------------------------
# Unfinished outputs
# ---------------------------------------------------------------------------

LABELBIN_KEYS = {"version", "kind", "source", "groupings", "background", "roi", "codec",
                 "command"}


def corrupt_one_chunk(src):
    names = sorted(n for n in os.listdir(src) if n[0].isdigit())
    victim = src / names[len(names) // 2]
    good = victim.read_bytes()
    victim.write_bytes(b"this is not a zstd frame")
    return victim, good


def test_failed_run_is_marked_and_resume_finishes(work, tmp_path):
    root, src, _ = work
    victim, good = corrupt_one_chunk(src)
    dest = tmp_path / "out.zarr" / "gt"
    rc, _, err = lb("binarize", src, dest, *GROUP, "-j", "1")
    assert rc == 1, err
    assert err.count("\n") == 1, err
    assert str(victim) in err and "corrupt" in err, err
    assert err.rstrip().endswith(f"{dest} is incomplete: run again with --resume to "
                                 "finish it"), err
    # Other readers see the mark.
    z = zarr.open(str(dest), "r")
    assert z.attrs["labelbin"]["complete"] is False
    # labelbin shows it: info, info --json, the Python warnings.
    rc, out, err = lb("info", dest)
    assert rc == 0, err
    assert out.splitlines()[1].startswith("status:       INCOMPLETE"), out
    assert "--resume" in out.splitlines()[1]
    rc, out, err = lb("info", "--json", dest)
    info = json.loads(out)
    assert info["complete"] is False
    assert any("unfinished output" in w and "--resume" in w for w in info["warnings"])
    assert any("unfinished output" in w for w in ZarrArray(str(dest)).warnings)
    # Reading an unfinished output into a new one is refused (its missing
    # chunks would read as zeros).
    rc, _, err = lb("run", _zarr_cfg(tmp_path, dest), tmp_path / "copy.zarr" / "c")
    assert rc == 1 and "unfinished labelbin output" in err, err
    assert not os.path.exists(tmp_path / "copy.zarr" / "c")
    # Repair the source and finish.
    victim.write_bytes(good)
    rc, out, err = lb("binarize", src, dest, *GROUP, "--resume", "-q")
    assert rc == 0, err
    rc, out, err = lb("info", "--json", dest)
    info = json.loads(out)
    assert info["complete"] is True and info["warnings"] == []
    rc, out, _ = lb("info", dest)
    assert "INCOMPLETE" not in out
    assert ZarrArray(str(dest)).warnings == []
    # The finished output's attributes are an uninterrupted run's, byte for
    # byte (same source, same command), and so are its chunks.
    ref = tmp_path / "ref.zarr" / "gt"
    rc, _, err = lb("binarize", src, ref, *GROUP, "-q")
    assert rc == 0, err
    got, want = files(dest), files(ref)
    assert got == want
    attrs = json.loads(want[".zattrs"])
    assert set(attrs["labelbin"]) == LABELBIN_KEYS


def _zarr_cfg(tmp_path, dest):
    cfg = tmp_path / "plain.json"
    cfg.write_text(json.dumps({"__type__": "ZarrArrayConfig", "name": "x",
                               "file_name": str(dest.parent), "dataset": dest.name}))
    return cfg


def test_fresh_run_attributes(sample, tmp_path):
    _, src, _ = sample
    dest = tmp_path / "o.zarr" / "gt"
    rc, _, err = lb("binarize", src, dest, *GROUP, "-q")
    assert rc == 0, err
    attrs = json.loads((dest / ".zattrs").read_text())
    assert set(attrs) == {"axes", "channels", "labelbin", "offset", "resolution"}
    assert set(attrs["labelbin"]) == LABELBIN_KEYS
    assert sorted(os.listdir(dest))[:2] == [".zarray", ".zattrs"]
    assert not os.path.exists(dest / ".labelbin-done")


def test_python_to_zarr_failure_is_marked(work, tmp_path):
    root, src, _ = work
    victim, good = corrupt_one_chunk(src)
    dest = tmp_path / "py.zarr" / "copy"
    a = ZarrArray(str(src))
    with pytest.raises(labelbin.FormatError) as e:
        a.to_zarr(dest, threads=1)
    assert "is incomplete: run again with resume=True to finish it" in str(e.value)
    assert zarr.open(str(dest), "r").attrs["labelbin"]["complete"] is False
    # An unfinished labels array is not a source.
    with pytest.raises(labelbin.FormatError, match="unfinished labelbin output"):
        BinarizeArray(ZarrArray(str(dest)), [("m", [3])]).to_zarr(tmp_path / "b.zarr" / "b")
    victim.write_bytes(good)
    a.to_zarr(dest, resume=True)
    assert "complete" not in zarr.open(str(dest), "r").attrs["labelbin"]
    np.testing.assert_array_equal(zarr.open(str(dest), "r")[...],
                                  zarr.open(str(src), "r")[...])


# ---------------------------------------------------------------------------
# A full disk
# ---------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    d = tmp_path / "disk"
    os.makedirs(d)
    try_mount("-t", "tmpfs", "-o", "size=96k", "tmpfs", d)
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=True)


def test_disk_full_gives_resume_hint(sample, small_disk):
    _, src, _ = sample
    dest = small_disk / "o.zarr" / "gt"
    # Uncompressed 16x32x32 uint8 chunks are 16 KiB: the disk holds a few.
    args = [src, dest, *GROUP, "--codec", "none", "-j", "1", "--no-progress"]
    rc, out, err = lb("binarize", *args)
    assert rc == 1, err
    assert err.count("\n") == 1, err
    assert "No space left on device" in err, err
    assert err.rstrip().endswith(f"{dest} is incomplete: run again with --resume to "
                                 "finish it"), err
    assert json.loads((dest / ".zattrs").read_text())["labelbin"]["complete"] is False
    # Room again: --resume finishes it, equal to a run that had room.
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    rc, _, err = lb("binarize", *args, "--resume", "-q")
    assert rc == 0, err
    ref = small_disk / "ref.zarr" / "gt"
    rc, _, err = lb("binarize", src, ref, *GROUP, "--codec", "none", "-q")
    assert rc == 0, err
    assert files(dest) == files(ref)


# ---------------------------------------------------------------------------
# Non-ASCII names
# ---------------------------------------------------------------------------

NAMES = ["группа", "mitochondrie·é", "x😀y", "泡"]


def test_non_ascii_group_names(sample, tmp_path):
    _, src, _ = sample
    dest = tmp_path / "u.zarr" / "gt"
    args = [f"{n}={i}" for i, n in enumerate(NAMES, start=3)]
    gargs = [x for a in args for x in ("-g", a)]
    rc, _, err = lb("binarize", src, dest, *gargs, "-q")
    assert rc == 0, err
    raw = (dest / ".zattrs").read_bytes()
    assert max(raw) < 0x80, "metadata must be pure ASCII"
    assert b"\\ud83d\\ude00" in raw  # a surrogate pair above U+FFFF
    z = zarr.open(str(dest), "r")  # zarr-python 2.13 decodes it
    assert z.attrs["channels"] == NAMES
    assert [g[0] for g in z.attrs["labelbin"]["groupings"]] == NAMES
    assert json.loads(raw) == z.attrs.asdict()  # the same as Python's own escapes
    assert ZarrArray(str(dest)).channels == NAMES  # read back by labelbin
    # A resume compares the names as they read back: equal.
    rc, _, err = lb("binarize", src, dest, *gargs, "--resume", "-q")
    assert rc == 0, err
    assert (dest / ".zattrs").read_bytes() == raw
    # OME-NGFF group metadata (its name is DEST's last segment) too.
    ome = tmp_path / "données.zarr"
    rc, _, err = lb("binarize", src, ome, *gargs, "--ome-ngff", "-q")
    assert rc == 0, err
    for f in (ome / ".zattrs", ome / ".zgroup", ome / "s0" / ".zattrs"):
        assert max(f.read_bytes()) < 0x80, f
    g = zarr.open_group(str(ome), "r")
    assert g.attrs["multiscales"][0]["name"] == "données.zarr"
    assert g["s0"].attrs["channels"] == NAMES


def test_non_ascii_python_api(sample, tmp_path):
    _, src, _ = sample
    b = BinarizeArray(ZarrArray(str(src)), [(NAMES[0], [3]), (NAMES[2], [4])])
    dest = tmp_path / "p.zarr" / "gt"
    b.to_zarr(dest)
    assert max((dest / ".zattrs").read_bytes()) < 0x80
    assert zarr.open(str(dest), "r").attrs["channels"] == [NAMES[0], NAMES[2]]
    c = labelbin.create_dataset(tmp_path / "c.zarr" / "seg", (4, 4, 4), (2, 2, 2),
                                attrs={"resolution": [1, 1, 1], "offset": [0, 0, 0],
                                       "note": "Zellkern ☃"})
    del c
    raw = (tmp_path / "c.zarr" / "seg" / ".zattrs").read_bytes()
    assert max(raw) < 0x80
    assert zarr.open(str(tmp_path / "c.zarr" / "seg"), "r").attrs["note"] == "Zellkern ☃"


def test_group_name_not_utf8_is_refused(sample, tmp_path):
    _, src, _ = sample
    dest = tmp_path / "bad.zarr" / "gt"
    p = subprocess.run([LABELBIN.encode(), b"binarize", bytes(src), bytes(dest), b"-g",
                        b"\xe9t\xe9=3"], capture_output=True)
    assert p.returncode == 2, p.stderr
    assert b"not valid UTF-8" in p.stderr
    assert not os.path.exists(tmp_path / "bad.zarr")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
