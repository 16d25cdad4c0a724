"""The README's examples, run as a user runs them, so they cannot rot.

- The Usage block (shell) runs as written in a fresh directory that holds the
  sample crop `make demo` writes (demo-out/crop.zarr) and `build/` (a link
  to the build tree); its outputs are checked against a numpy rule.
- The Python block runs there too; each `print(...)  # text` must print
  exactly `text`.
- The C block is examples/minimal.c, byte for byte; the program's output
  shown in the README is what it prints, and its counts are numpy's.
- The Library block builds examples/minimal.c against an installed copy
  (`cmake --install build --prefix DIR`) with pkg-config and with CMake's
  find_package(labelbin), and runs both.

Environment: LB_BUILD_DIR, LB_SOURCE_DIR (CTest sets them).
Run: /usr/bin/python3 -m pytest -q tests/py_readme.py
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import zarr

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.environ.get("LB_SOURCE_DIR", os.path.join(HERE, "..")))
BUILD = os.path.abspath(os.environ.get("LB_BUILD_DIR", os.path.join(SOURCE, "build")))
CROP = "demo-out/crop.zarr/volumes/labels/all"

with open(os.path.join(SOURCE, "README.md")) as f:
    README = f.read()


def block(section, lang):
    """The first ```lang block after the heading `## section`."""
    start = README.index("\n## " + section + "\n")
    m = re.compile(r"^```" + lang + r"\n(.*?)^```$", re.S | re.M).search(README, start)
    assert m, f"no {lang} block in section {section}"
    return m.group(1)


@pytest.fixture
def workdir(tmp_path):
    """A directory like the repository after `make demo`: build/ and the
    sample crop in demo-out/."""
    os.symlink(BUILD, tmp_path / "build")
    p = subprocess.run([os.path.join(BUILD, "labelbin"), "sample", "-q", CROP],
                       cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return tmp_path


def binarize(labels, groups):
    return np.stack([np.isin(labels, ids) if ids else labels != 0
                     for _, ids in groups]).astype(np.uint8)


def test_usage_block_runs(workdir):
    script = block("Usage", "sh")
    p = subprocess.run(["sh", "-eu"], input=script, cwd=workdir, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "masked off" in p.stdout  # what the text after the block says
    labels = zarr.open(str(workdir / CROP), mode="r")[...]
    groups = [("mito", [3, 4, 5]), ("mito_mem", [3]),
              ("er", [16, 17, 18, 19, 20, 21, 22, 23]), ("cell", [])]
    out = workdir / "demo-out" / "my.zarr"
    gt = zarr.open(str(out / "gt"), mode="r")
    assert gt.attrs["channels"] == [g for g, _ in groups]
    np.testing.assert_array_equal(gt[...], binarize(labels, groups))
    m = zarr.open(str(out / "mask"), mode="r")[...]
    assert m[0].max() == 0  # id 5 is present but not annotated
    for c in (1, 2, 3):
        np.testing.assert_array_equal(m[c], (labels > 0).astype(np.uint8))
    roi = zarr.open(str(out / "roi"), mode="r")
    assert roi.compressor.codec_id == "gzip"
    assert roi.attrs["offset"] == [3200, 4800, 9600]
    np.testing.assert_array_equal(
        roi[...], binarize(labels[:32, :64, :64], [("mito", [3, 4, 5]), ("perox", [47, 48])]))
    run = zarr.open(str(out / "run"), mode="r")
    np.testing.assert_array_equal(run[...], binarize(labels, [("mito", [3, 4, 5])]))


def test_python_block_prints_what_it_says(workdir):
    code = block("Python", "python")
    want = [line.split("  # ", 1)[1] for line in code.splitlines()
            if line.startswith("print(") and "  # " in line]
    assert len(want) >= 2
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    p = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == want


def shown_output():
    """The output of minimal.c that the README shows after "It prints"."""
    text = README[README.index("It prints"):]
    return [line.strip() for line in text.splitlines()[1:] if line.startswith("    channel")]


def test_c_block_is_examples_minimal_c():
    with open(os.path.join(SOURCE, "examples", "minimal.c")) as f:
        assert block("Library", "c") == f.read()


def test_minimal_c_output(workdir):
    p = subprocess.run([os.path.join(BUILD, "examples", "minimal"), CROP], cwd=workdir,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == shown_output()
    labels = zarr.open(str(workdir / CROP), mode="r")[:64, :64, :64]
    groups = [("mito", [3, 4, 5]), ("er", list(range(16, 24)))]
    b = binarize(labels, groups)
    # The sample marks id 5 present but not annotated: mito's mask is off.
    kept = [0, int((labels > 0).sum())]
    want = [f"channel {c} ({name}): {int(b[c].sum())} of {labels.size} voxels are 1, "
            f"the mask keeps {kept[c]}" for c, (name, _) in enumerate(groups)]
    assert p.stdout.splitlines() == want


def install_libdir():
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        m = re.search(r"^CMAKE_INSTALL_LIBDIR:\w+=(.*)$", f.read(), re.M)
    return m.group(1) if m else "lib"


def test_library_block_builds_against_an_installed_copy(workdir, tmp_path_factory):
    prefix = tmp_path_factory.mktemp("prefix")
    p = subprocess.run(["cmake", "--install", BUILD, "--prefix", str(prefix)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    libdir = prefix / install_libdir()
    for f in ("pkgconfig/labelbin.pc", "cmake/labelbin/labelbinConfig.cmake",
              "cmake/labelbin/labelbinConfigVersion.cmake", "liblabelbin.a"):
        assert (libdir / f).is_file(), f
    assert (prefix / "include" / "labelbin.h").is_file()
    # Nothing outside the prefix: the Python package goes under it too.
    assert list(prefix.glob("lib/python3*/dist-packages/labelbin/__init__.py"))
    os.symlink(os.path.join(SOURCE, "examples"), workdir / "examples")
    env = dict(os.environ, PKG_CONFIG_PATH=str(libdir / "pkgconfig"),
               CMAKE_PREFIX_PATH=str(prefix), LD_LIBRARY_PATH=str(libdir))
    script = block("Library", "sh")
    assert "pkg-config --cflags --libs labelbin" in script
    assert "cmake -S examples" in script
    p = subprocess.run(["sh", "-eu"], input=script, cwd=workdir, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    # Both programs (pkg-config, CMake) print what the README shows.
    printed = [line for line in p.stdout.splitlines() if line.startswith("channel ")]
    assert printed == shown_output() * 2
    # They really use the installed library, not the build tree's.
    ldd = subprocess.run(["ldd", str(workdir / "minimal")], env=env, capture_output=True,
                         text=True).stdout
    assert str(libdir / "liblabelbin.so") in ldd, ldd
    with open(libdir / "pkgconfig" / "labelbin.pc") as f:
        assert re.search(r"^Version: \d+\.\d+\.\d+$", f.read(), re.M)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
