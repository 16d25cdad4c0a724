"""CLI behaviour of `labelbin`: exit codes, messages, help texts, the golden
cases through `binarize`, `mask` and `run` (outputs read back with
zarr-python), overwrite / resume / interruption, `sample` and `info`.

Environment: LB_BUILD_DIR (holds the `labelbin` binary), LB_GOLDEN_DIR.
Run: /usr/bin/python3 -m pytest -q tests/py_cli.py
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "build"))
LABELBIN = os.path.abspath(os.path.join(BUILD, "labelbin"))
GOLDEN = os.environ.get("LB_GOLDEN_DIR", os.path.join(HERE, "..", "..", "shared", "golden"))

CASES = sorted(
    d for d in os.listdir(GOLDEN) if os.path.isfile(os.path.join(GOLDEN, d, "case.json"))
) if os.path.isdir(GOLDEN) else []

CELLMAP_GROUPS = [
    "mito=3,4,5", "mito_mem=3", "er=16,17,18,19,20,21,22,23",
    "nucleus=20,21,22,23,24,25,26,27,28,29,37", "perox=47,48", "cell=",
]


def lb(*args, cwd=None, stdin=None, timeout=120):
    """Run labelbin; returns (returncode, stdout, stderr)."""
    p = subprocess.run([LABELBIN, *args], cwd=cwd, input=stdin, capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def load_case(name):
    with open(os.path.join(GOLDEN, name, "case.json")) as f:
        return json.load(f)


def roi_arg(roi):
    return ",".join(f"{o}:{o + s}" for o, s in zip(roi["offset"], roi["shape"]))


def roi_funlib(roi):
    return "[" + ", ".join(f"{o}:{o + s}" for o, s in zip(roi["offset"], roi["shape"])) + "]"


def g_args(groupings):
    out = []
    for name, ids in groupings:
        out += ["-g", name + "=" + ",".join(str(i) for i in ids)]
    return out


def expected(case_name, req, kind):
    return np.fromfile(os.path.join(GOLDEN, case_name, req[kind]),
                       dtype=np.uint8).reshape(req["shape"])


def check_output(dest, case, req, kind, case_name):
    z = zarr.open(dest, mode="r")
    got = z[...]
    exp = expected(case_name, req, kind)
    assert got.dtype == np.uint8
    assert got.shape == exp.shape
    assert np.array_equal(got, exp), f"{case_name} {kind} differs at " \
        f"{np.argwhere(got != exp)[:5].tolist()}"
    attrs = z.attrs.asdict()
    props = case["expected_properties"]
    assert attrs["resolution"] == props["voxel_size"]
    assert attrs["offset"] == req["roi"]["offset"]
    assert attrs["axes"] == ["c"] + props["axes"]
    assert attrs["channels"] == [g[0] for g in case["groupings"]]


def tree_files(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


# ---------------------------------------------------------------------------
# Help, version, usage errors
# ---------------------------------------------------------------------------

def test_binary_exists():
    assert os.access(LABELBIN, os.X_OK), LABELBIN


@pytest.mark.parametrize("args", [
    ["--help"], ["-h"], ["help"],
    ["info", "--help"], ["binarize", "-h"], ["mask", "--help"], ["run", "-h"],
    ["sample", "--help"], ["help", "binarize"],
])
def test_help(args):
    rc, out, err = lb(*args)
    assert rc == 0
    assert "Usage: labelbin" in out
    assert "Examples" in out
    assert err == ""


def test_main_help_lists_commands():
    rc, out, _ = lb("--help")
    for cmd in ("info", "binarize", "mask", "run", "sample"):
        assert f"  {cmd} " in out


def test_version():
    for flag in ("-V", "--version"):
        rc, out, _ = lb(flag)
        assert rc == 0 and out.startswith("labelbin ") and "0.1.0" in out


SRC = "cosem_u64_blosc/crop.zarr/volumes/labels/all"


@pytest.mark.parametrize("args,needle", [
    ([], "command"),
    (["--bogus"], "--bogus"),
    (["frobnicate"], "frobnicate"),
    (["binarize", "@SRC", "@DEST"], "-g"),
    (["binarize", "@SRC", "@DEST", "--bogus", "-g", "a=1"], "--bogus"),
    (["binarize", "@SRC", "-g", "a=1"], "DEST"),
    (["binarize", "@SRC", "@DEST", "-g", "mito"], "mito"),
    (["binarize", "@SRC", "@DEST", "-g", "mito=3,x"], "x"),
    (["binarize", "@SRC", "@DEST", "-g", "mito=18446744073709551616"], "18446744073709551616"),
    (["binarize", "@SRC", "@DEST", "-g", "a=1", "--roi", "1:2:3"], "ROI"),
    (["binarize", "@SRC", "@DEST", "-g", "a=1", "--roi", "banana"], "ROI"),
    (["binarize", "@SRC", "@DEST", "-g", "a=1", "-j", "-1"], "-j"),
    (["binarize", "@SRC", "@DEST", "-g", "a=1", "-j", "many"], "-j"),
    (["binarize", "@SRC", "@DEST", "-g", "a=1", "-j"], "-j"),
    (["binarize", "@SRC", "@DEST", "-g", "a=1", "--background", "x"], "background"),
    (["binarize", "@SRC", "@DEST", "-g", "a=1", "--chunks", "0,4,4"], "chunks"),
    (["binarize", "@SRC", "@DEST", "-g", "a=1", "--chunks", "4,4"], "chunks"),
    (["binarize", "@SRC", "@DEST", "-g", "a=1", "-f", "--resume"], "resume"),
    (["mask", "@SRC", "@DEST", "-g", "a=1", "--background", "1"], "background"),
    (["mask", "@SRC", "@DEST"], "-g"),
    (["run", "cfg.json"], "DEST"),
    (["run", "cfg.json", "@DEST", "-g", "a=1"], "-g"),
    (["info"], "SOURCE"),
    (["info", "@SRC", "extra"], "extra"),
    (["sample", "--shape", "8,8"], "shape"),
    (["sample"], "DEST"),
])
def test_usage_errors(tmp_path, args, needle):
    dest = str(tmp_path / "out.zarr" / "gt")
    args = [a.replace("@SRC", os.path.join(GOLDEN, SRC)).replace("@DEST", dest)
            for a in args]
    rc, out, err = lb(*args)
    assert rc == 2, err
    assert err.startswith("labelbin: "), err
    assert needle in err
    assert out == ""
    assert not os.path.exists(dest)


def test_bad_codec_is_usage_error(tmp_path):
    dest = str(tmp_path / "o.zarr" / "gt")
    rc, _, err = lb("binarize", os.path.join(GOLDEN, SRC), dest, "-g", "a=1",
                    "--codec", "snappy-deluxe")
    assert rc == 2 and err.startswith("labelbin: ") and "snappy-deluxe" in err


def test_missing_source(tmp_path):
    missing = str(tmp_path / "nope.zarr" / "labels")
    for cmd in (["info", missing],
                ["binarize", missing, str(tmp_path / "o.zarr/a"), "-g", "a=1"],
                ["mask", missing, str(tmp_path / "o.zarr/a"), "-g", "a=1"]):
        rc, _, err = lb(*cmd)
        assert rc == 1
        assert err.startswith(f"labelbin: {missing}: "), err
    assert not os.path.exists(tmp_path / "o.zarr")


def test_missing_groupings_file(tmp_path):
    rc, _, err = lb("binarize", os.path.join(GOLDEN, SRC), str(tmp_path / "o.zarr/a"),
                    "--groupings", str(tmp_path / "none.json"))
    assert rc == 1 and "none.json" in err


def test_bad_groupings_file(tmp_path):
    gf = tmp_path / "g.json"
    gf.write_text('[["mito", [3, "four"]]]')
    rc, _, err = lb("binarize", os.path.join(GOLDEN, SRC), str(tmp_path / "o.zarr/a"),
                    "--groupings", str(gf))
    assert rc == 1 and err.startswith("labelbin: ") and "g.json" in err


# ---------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", CASES)
def test_info_json_golden(name):
    case = load_case(name)
    src = os.path.join(GOLDEN, name, case["source"])
    rc, out, err = lb("info", "--json", src)
    assert rc == 0, err
    info = json.loads(out)
    props = case["expected_properties"]
    for key in ("dtype", "axes", "dims", "voxel_size", "roi"):
        assert info[key] == props[key], key
    assert info["num_channels"] is None
    assert info["format"] == ("n5" if ".n5" in case["source"] else "zarr2")
    assert info["path"] == src
    assert isinstance(info["attrs"], dict)
    assert isinstance(info["warnings"], list)
    assert info["annotations"] in ("none", "boolean", "string", "invalid")
    assert len(info["shape"]) == len(info["chunks"]) == info["dims"]
    assert info["codec"] is None or isinstance(info["codec"], dict)


def test_info_annotation_kinds():
    kinds = {}
    for name in CASES:
        case = load_case(name)
        rc, out, _ = lb("info", "--json", os.path.join(GOLDEN, name, case["source"]))
        kinds[name] = json.loads(out)["annotations"]
    if "cosem_u64_blosc" in kinds:
        assert kinds["cosem_u64_blosc"] == "boolean"
    if "u16_zstd_nested" in kinds:
        assert kinds["u16_zstd_nested"] == "string"
    if "u8_gzip_forder" in kinds:
        assert kinds["u8_gzip_forder"] == "none"


def test_info_human():
    case = load_case("cosem_u64_blosc")
    rc, out, _ = lb("info", os.path.join(GOLDEN, "cosem_u64_blosc", case["source"]))
    assert rc == 0
    assert "dtype:        uint64" in out
    assert "roi:          " + roi_funlib(case["expected_properties"]["roi"]) in out
    assert "voxel size:   (8, 4, 4)" in out
    assert "boolean" in out


def test_info_json_exact_uint64_and_escapes(tmp_path):
    # Attributes with 2^64-1 and characters that need escaping survive
    # verbatim; a path with a quote and a control character is escaped.
    d = tmp_path / 'we"ird\tname.zarr'
    z = zarr.open(str(d / "labels"), mode="w", shape=(4, 4), chunks=(4, 4), dtype="<u8")
    z[...] = 1
    with open(d / "labels" / ".zattrs", "w") as f:
        f.write('{"big": 18446744073709551615, "s": "a\\"b\\\\c\\u0001"}')
    rc, out, err = lb("info", "--json", str(d / "labels"))
    assert rc == 0, err
    info = json.loads(out)
    assert info["attrs"]["big"] == 2**64 - 1
    assert info["attrs"]["s"] == 'a"b\\c\x01'
    assert info["path"] == str(d / "labels")
    assert info["axes"] == ["y", "x"]


def test_info_invalid_annotations(tmp_path):
    z = zarr.open(str(tmp_path / "c.zarr" / "l"), mode="w", shape=(4, 4, 4),
                  chunks=(4, 4, 4), dtype="<u8")
    z.attrs["labels"] = [{"value": 1, "annotationState": {"present": "yes", "annotated": True}}]
    rc, out, _ = lb("info", "--json", str(tmp_path / "c.zarr" / "l"))
    assert rc == 0
    info = json.loads(out)
    assert info["annotations"] == "invalid"
    assert "labels[0]" in info.get("annotations_error", "")
    rc, _, err = lb("mask", str(tmp_path / "c.zarr" / "l"), str(tmp_path / "o.zarr/m"),
                    "-g", "a=1")
    assert rc == 1 and "labels[0]" in err
    assert not os.path.exists(tmp_path / "o.zarr" / "m")


# ---------------------------------------------------------------------------
# Golden cases through binarize / mask / run
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", CASES)
def test_golden_binarize_and_mask(tmp_path, name):
    case = load_case(name)
    src = os.path.join(GOLDEN, name, case["source"])
    gfile = tmp_path / "groups.json"
    gfile.write_text(json.dumps(case["groupings"]))
    for i, req in enumerate(case["requests"]):
        roi = "--roi=" + roi_arg(req["roi"])
        for kind in ("binarize", "mask"):
            dest = str(tmp_path / f"out{i}.zarr" / kind)
            if kind == "binarize":
                # -g on the command line (negative ids, duplicates, empties)
                args = ["binarize", src, dest, *g_args(case["groupings"]),
                        "--background", str(case["background"]), roi, "-j", "2"]
            else:
                args = ["mask", src, dest, "--groupings", str(gfile), roi, "-j", "2"]
            rc, out, err = lb(*args)
            if "error" in req:
                assert rc == 1, err
                assert err.startswith("labelbin: ")
                assert roi_funlib(req["roi"]) in err, err
                assert not os.path.exists(dest)
                assert not os.path.exists(tmp_path / f"out{i}.zarr")
                continue
            assert rc == 0, err
            check_output(dest, case, req, kind, name)


@pytest.mark.parametrize("name", CASES)
def test_golden_run_config(tmp_path, name):
    case = load_case(name)
    case_dir = os.path.join(GOLDEN, name)
    parts = case["source"].split("/")
    k = next(i for i, p in enumerate(parts) if p.endswith((".zarr", ".n5")))
    source_cfg = {"__type__": "ZarrArrayConfig", "name": "labels",
                  "file_name": "/".join(parts[:k + 1]),  # relative to cwd
                  "dataset": "/".join(parts[k + 1:])}
    configs = {
        "binarize": {"__type__": "BinarizeArrayConfig", "name": "gt",
                     "source_array_config": source_cfg,
                     "groupings": case["groupings"], "background": case["background"]},
        "mask": {"__type__": "MissingAnnotationsMaskConfig", "name": "mask",
                 "source_array_config": source_cfg, "groupings": case["groupings"]},
    }
    req = next(r for r in case["requests"] if "error" not in r)
    for kind, cfg in configs.items():
        cfg_path = tmp_path / f"{kind}.json"
        cfg_path.write_text(json.dumps(cfg))
        dest = str(tmp_path / "run.zarr" / kind)
        rc, out, err = lb("run", str(cfg_path), dest, "--roi=" + roi_arg(req["roi"]),
                          cwd=case_dir)
        assert rc == 0, err
        check_output(dest, case, req, kind, name)
    # CONFIG "-" reads standard input
    dest = str(tmp_path / "stdin.zarr" / "gt")
    rc, _, err = lb("run", "-", dest, "--roi=" + roi_arg(req["roi"]), cwd=case_dir,
                    stdin=json.dumps(configs["binarize"]))
    assert rc == 0, err
    check_output(dest, case, req, "binarize", name)


def test_run_bad_config(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"__type__": "FancyArrayConfig", "name": "x"}')
    rc, _, err = lb("run", str(cfg), str(tmp_path / "o.zarr/a"))
    assert rc == 1 and err.startswith("labelbin: ") and "FancyArrayConfig" in err
    rc, _, err = lb("run", str(tmp_path / "missing.json"), str(tmp_path / "o.zarr/a"))
    assert rc == 1 and "missing.json" in err


def test_roi_negative_forms(tmp_path):
    # Both `--roi=-16:48,...` and `--roi -16:48,...` reach the ROI parser.
    name = "u16_zstd_nested"
    if name not in CASES:
        pytest.skip("golden case missing")
    case = load_case(name)
    src = os.path.join(GOLDEN, name, case["source"])
    req = case["requests"][0]
    for j, form in enumerate((["--roi", roi_arg(req["roi"])],
                              ["--roi", roi_funlib(req["roi"])])):
        dest = str(tmp_path / f"o{j}.zarr" / "gt")
        rc, _, err = lb("binarize", src, dest, *g_args(case["groupings"]), *form)
        assert rc == 0, err
        check_output(dest, case, req, "binarize", name)


# ---------------------------------------------------------------------------
# Destination handling, OME-NGFF, ids
# ---------------------------------------------------------------------------

def test_existing_dest_refused_then_forced(tmp_path):
    src = os.path.join(GOLDEN, SRC)
    dest = str(tmp_path / "o.zarr" / "gt")
    rc, _, err = lb("binarize", src, dest, "-g", "mito=3,4,5", "-q")
    assert rc == 0, err
    before = tree_files(dest)
    rc, _, err = lb("binarize", src, dest, "-g", "ecs=1", "-g", "pm=2")
    assert rc == 1 and err.startswith("labelbin: ") and dest in err
    assert tree_files(dest) == before
    rc, _, err = lb("binarize", src, dest, "-g", "ecs=1", "-g", "pm=2", "-f", "-q")
    assert rc == 0, err
    z = zarr.open(dest, mode="r")
    assert z.shape[0] == 2 and z.attrs["channels"] == ["ecs", "pm"]


def test_ome_ngff(tmp_path):
    src = os.path.join(GOLDEN, SRC)
    dest = str(tmp_path / "o.zarr" / "gt")
    rc, _, err = lb("binarize", src, dest, "-g", "mito=3,4,5", "-g", "all=",
                    "--ome-ngff", "-q")
    assert rc == 0, err
    g = zarr.open_group(dest, mode="r")
    ms = g.attrs["multiscales"]
    assert ms[0]["datasets"][0]["path"] == "s0"
    arr = zarr.open(os.path.join(dest, "s0"), mode="r")
    assert arr.shape == (2, 20, 36, 44) and arr.dtype == np.uint8
    case = load_case("cosem_u64_blosc")
    req = case["requests"][0]
    exp = expected("cosem_u64_blosc", req, "binarize")
    assert np.array_equal(arr[0], exp[2])   # "mito" is group 2 of the case
    assert np.array_equal(arr[1], exp[15])  # "cell_all" = label != 0


def test_codec_and_chunks(tmp_path):
    src = os.path.join(GOLDEN, SRC)
    case = load_case("cosem_u64_blosc")
    req = case["requests"][0]
    for codec, cid in (("zstd:5", "zstd"), ("gzip:6", "gzip"), ("none", None),
                       ('{"id": "zlib", "level": 1}', "zlib"), ("blosc-lz4", "blosc")):
        dest = str(tmp_path / "o.zarr" / (cid or "raw"))
        rc, _, err = lb("binarize", src, dest, *g_args(case["groupings"][:3]),
                        "--codec", codec, "--chunks", "8,16,8", "-q")
        assert rc == 0, (codec, err)
        z = zarr.open(dest, mode="r")
        assert z.chunks == (1, 8, 16, 8)
        assert (z.compressor.codec_id if z.compressor else None) == cid
        assert np.array_equal(z[...], expected("cosem_u64_blosc", req, "binarize")[:3])


def test_extreme_ids(tmp_path):
    # uint64 labels with 2^64-1; ids outside the dtype warn and never match.
    z = zarr.open(str(tmp_path / "in.zarr" / "l"), mode="w", shape=(6, 5, 4),
                  chunks=(3, 5, 4), dtype="<u8")
    data = np.zeros((6, 5, 4), dtype=np.uint64)
    data[1, 2, 3] = 2**64 - 1
    data[4, 0, 0] = 2**63
    data[5, 4, 3] = 7
    z[...] = data
    dest = str(tmp_path / "o.zarr" / "gt")
    rc, out, err = lb("binarize", str(tmp_path / "in.zarr" / "l"), dest,
                      "-g", "max=18446744073709551615", "-g", "half=9223372036854775808",
                      "-g", "neg=-1,7")
    assert rc == 0, err
    assert "labelbin: warning:" in err and "-1" in err
    got = zarr.open(dest, mode="r")[...]
    assert np.array_equal(got[0], (data == 2**64 - 1).astype(np.uint8))
    assert np.array_equal(got[1], (data == 2**63).astype(np.uint8))
    assert np.array_equal(got[2], (data == 7).astype(np.uint8))
    # The summary names every channel with its positive count.
    assert "max" in out and "half" in out


def test_int8_warning(tmp_path):
    z = zarr.open(str(tmp_path / "in.zarr" / "l"), mode="w", shape=(4, 4),
                  chunks=(4, 4), dtype="|i1")
    z[...] = np.array([[-3, 0, 1, 127]] * 4, dtype=np.int8)
    dest = str(tmp_path / "o.zarr" / "gt")
    rc, out, err = lb("binarize", str(tmp_path / "in.zarr" / "l"), dest,
                      "-g", "neg=-3", "-g", "big=300", "-g", "top=127")
    assert rc == 0, err
    assert "300" in err and "int8" in err
    got = zarr.open(dest, mode="r")[...]
    assert got[0].sum() == 4 and got[1].sum() == 0 and got[2].sum() == 4
    # -q silences the warning and the summary
    rc, out, err = lb("binarize", str(tmp_path / "in.zarr" / "l"), dest + "2",
                      "-g", "big=300", "-q")
    assert rc == 0 and out == "" and err == ""


def test_groupings_stdin_and_order(tmp_path):
    # -g and --groupings combine in command-line order.
    src = os.path.join(GOLDEN, SRC)
    dest = str(tmp_path / "o.zarr" / "gt")
    rc, _, err = lb("binarize", src, dest, "-g", "first=1", "--groupings", "-",
                    "-g", "last=", "-q", stdin='[["mid", [3, 4, 5]]]')
    assert rc == 0, err
    assert zarr.open(dest, mode="r").attrs["channels"] == ["first", "mid", "last"]


def test_mask_summary_and_note(tmp_path):
    # No `labels` metadata: a note; with metadata: masked channels listed.
    name = "u8_gzip_forder"
    case = load_case(name)
    rc, out, err = lb("mask", os.path.join(GOLDEN, name, case["source"]),
                      str(tmp_path / "a.zarr/m"), *g_args(case["groupings"]))
    assert rc == 0, err
    assert "no annotation metadata" in err
    case = load_case("cosem_u64_blosc")
    rc, out, err = lb("mask", os.path.join(GOLDEN, SRC), str(tmp_path / "b.zarr/m"),
                      *g_args(case["groupings"]))
    assert rc == 0, err
    lines = {l.split()[1]: l for l in out.splitlines() if l[:3].strip().isdigit()}
    # ids 3 and 28 are present but not annotated: mito, mito_mem, nuc masked
    for ch in ("mito", "mito_mem", "nuc"):
        assert "masked off: " in lines[ch], lines[ch]
    for ch in ("ecs", "pm", "er", "cell_all"):
        assert lines[ch].rstrip().endswith("enabled"), lines[ch]


def test_progress_and_verbose(tmp_path):
    src = os.path.join(GOLDEN, SRC)
    p = subprocess.run([LABELBIN, "binarize", src, str(tmp_path / "a.zarr/gt"),
                        "-g", "m=3,4,5", "--progress", "-v"], capture_output=True)
    out, err = p.stdout.decode(), p.stderr.decode()
    assert p.returncode == 0, err
    # one line rewritten with \r, ended by a newline
    assert "\r100% 27/27 blocks" in err and "Mvoxel/s" in err and err.endswith("\n")
    assert "BinarizeArray" in err          # -v says what it does
    assert "\r" not in out and "wrote " in out
    # not a terminal: no progress bar by default
    rc, out, err = lb("binarize", src, str(tmp_path / "b.zarr/gt"), "-g", "m=3,4,5")
    assert rc == 0 and err == ""


# ---------------------------------------------------------------------------
# sample
# ---------------------------------------------------------------------------

def test_sample_info_and_mask(tmp_path):
    dest = str(tmp_path / "crop.zarr" / "volumes" / "labels" / "all")
    rc, out, err = lb("sample", "--shape", "32,48,40", dest)
    assert rc == 0, err
    z = zarr.open(dest, mode="r")
    data = z[...]
    assert data.dtype == np.uint64 and data.shape == (32, 48, 40)
    assert z.attrs["axes"] == ["z", "y", "x"]
    labels = {l["value"]: l for l in z.attrs["labels"]}
    present = set(np.unique(data).tolist())
    for v, l in labels.items():
        assert l["annotationState"]["present"] == (v in present)
        assert l["count"] == int((data == v).sum())
    assert labels[5]["annotationState"] == {"present": True, "annotated": False}
    assert {0, 1, 2, 3, 4, 5, 35}.issubset(present)
    assert os.path.exists(tmp_path / "crop.zarr" / ".zgroup")
    # deterministic for a seed, different for another
    rc, _, _ = lb("sample", "--shape", "32,48,40", str(tmp_path / "again.zarr/l"))
    assert np.array_equal(zarr.open(str(tmp_path / "again.zarr/l"), "r")[...], data)
    rc, _, _ = lb("sample", "--shape", "32,48,40", "--seed", "9", str(tmp_path / "s9.zarr/l"))
    assert not np.array_equal(zarr.open(str(tmp_path / "s9.zarr/l"), "r")[...], data)
    # existing DEST refused, -f replaces
    rc, _, err = lb("sample", "--shape", "32,48,40", dest)
    assert rc == 1 and dest in err
    rc, _, err = lb("sample", "--shape", "32,48,40", "-f", dest)
    assert rc == 0, err
    rc, out, _ = lb("info", "--json", dest)
    info = json.loads(out)
    assert info["annotations"] == "boolean" and info["dtype"] == "uint64"
    assert info["voxel_size"] == z.attrs["resolution"]
    assert info["roi"]["offset"] == z.attrs["offset"]
    # the mask of a group holding id 5 is off; the rest is label > 0
    mdest = str(tmp_path / "t.zarr" / "mask")
    rc, out, err = lb("mask", dest, mdest, "-g", "mito=3,4,5", "-g", "ecs=1", "-g", "all=")
    assert rc == 0, err
    m = zarr.open(mdest, "r")[...]
    assert m[0].sum() == 0
    assert np.array_equal(m[1], (data > 0).astype(np.uint8))
    assert np.array_equal(m[2], (data > 0).astype(np.uint8))
    assert "masked off" in out


# ---------------------------------------------------------------------------
# Interruption and --resume
# ---------------------------------------------------------------------------

BIG_SHAPE = "128,256,256"


@pytest.fixture(scope="module")
def big_sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    src = str(d / "big.zarr" / "labels")
    rc, _, err = lb("sample", "--shape", BIG_SHAPE, src, timeout=300)
    assert rc == 0, err
    ref = str(d / "ref.zarr" / "gt")
    rc, _, err = lb("binarize", src, ref, *[x for g in CELLMAP_GROUPS for x in ("-g", g)],
                    "--chunks", "16,32,32", "-j", "1", "-q", timeout=300)
    assert rc == 0, err
    return src, ref


def start_binarize(src, dest):
    return subprocess.Popen(
        [LABELBIN, "binarize", src, dest, *[x for g in CELLMAP_GROUPS for x in ("-g", g)],
         "--chunks", "16,32,32", "-j", "1", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_chunks(dest, proc, n=5, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if os.path.isdir(dest):
            k = sum(1 for f in os.listdir(dest) if f[0].isdigit())
            if k >= n:
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def assert_same_output(dest, ref):
    got, exp = tree_files(dest), tree_files(ref)
    leftovers = [f for f in got if ".lbtmp." in f or ".labelbin-done" in f]
    assert not leftovers, leftovers[:5]
    assert sorted(got) == sorted(exp)
    for f in exp:
        if os.path.basename(f) == ".zattrs":
            a, b = json.loads(got[f]), json.loads(exp[f])
            # The provenance names the source path and command; both runs
            # used the same ones, so nothing may differ.
            assert a == b, f
        else:
            assert got[f] == exp[f], f


def test_sigkill_then_resume(tmp_path, big_sample):
    src, ref = big_sample
    dest = str(tmp_path / "o.zarr" / "gt")
    proc = start_binarize(src, dest)
    got_chunks = wait_for_chunks(dest, proc)
    proc.kill()
    proc.wait()
    if not got_chunks or proc.returncode == 0:
        pytest.skip("the run finished before it could be killed")
    # Without --resume the half-written DEST is refused.
    rc, _, err = lb("binarize", src, dest, *[x for g in CELLMAP_GROUPS for x in ("-g", g)],
                    "--chunks", "16,32,32")
    assert rc == 1, err
    rc, out, err = lb("binarize", src, dest, *[x for g in CELLMAP_GROUPS for x in ("-g", g)],
                      "--chunks", "16,32,32", "-j", "2", "--resume", timeout=300)
    assert rc == 0, err
    assert "already complete" in out
    assert_same_output(dest, ref)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_exit_then_resume(tmp_path, big_sample, sig, code):
    src, ref = big_sample
    dest = str(tmp_path / "o.zarr" / "gt")
    proc = start_binarize(src, dest)
    got_chunks = wait_for_chunks(dest, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    if not got_chunks or proc.returncode == 0:
        pytest.skip("the run finished before it could be interrupted")
    assert proc.returncode == code, err
    assert "interrupted" in err and "--resume" in err
    assert out == ""
    rc, _, err = lb("binarize", src, dest, *[x for g in CELLMAP_GROUPS for x in ("-g", g)],
                    "--chunks", "16,32,32", "--resume", "-q", timeout=300)
    assert rc == 0, err
    assert_same_output(dest, ref)


def test_resume_of_complete_output_is_noop(tmp_path, big_sample):
    src, ref = big_sample
    # --resume on a fresh DEST simply writes it.
    name = "cosem_u64_blosc"
    dest = str(tmp_path / "o.zarr" / "gt")
    rc, _, err = lb("binarize", os.path.join(GOLDEN, SRC), dest, "-g", "m=3,4,5",
                    "--resume", "-q")
    assert rc == 0, err
    before = tree_files(dest)
    rc, out, err = lb("binarize", os.path.join(GOLDEN, SRC), dest, "-g", "m=3,4,5",
                      "--resume")
    assert rc == 0, err
    assert tree_files(dest) == before
    # a different grouping does not match the existing metadata
    rc, _, err = lb("binarize", os.path.join(GOLDEN, SRC), dest, "-g", "m=3,4",
                    "--resume")
    assert rc == 1 and err.startswith("labelbin: ")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
