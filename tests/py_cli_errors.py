"""What a new user meets in the first hour of `labelbin`: mistyped commands
and options, a container given where a dataset is expected, outputs given
where labels are expected, group names, empty groupings, masks that are
switched off or rest on incomplete metadata, -v, and docs/cli.md agreeing
with the tool. Every test checks exit codes (0 ok, 1 runtime, 2 usage) and
the words of the message.

Stands alone: the inputs come from `labelbin sample` and zarr-python.
Run: /usr/bin/python3 -m pytest -q tests/py_cli_errors.py (LB_BUILD_DIR set).
"""
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import zarr
from zarr.n5 import N5Store

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("LB_SOURCE_DIR", os.path.join(HERE, ".."))
BUILD = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "build"))
LABELBIN = os.path.abspath(os.path.join(BUILD, "labelbin"))
CLI_MD = os.path.join(SOURCE_DIR, "docs", "cli.md")


def lb(*args, cwd=None, stdin=None):
    p = subprocess.run([LABELBIN, *map(str, args)], cwd=cwd, input=stdin,
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def crop(tmp_path_factory):
    """A CellMap-like sample crop (5 mito_ribo present but not annotated)
    inside a container that also holds a raw multiscale group."""
    root = tmp_path_factory.mktemp("crop") / "crop.zarr"
    labels = root / "volumes" / "labels" / "all"
    rc, _, err = lb("sample", "--shape", "32,48,40", "--chunks", "16,16,16", labels)
    assert rc == 0, err
    g = zarr.open_group(str(root / "volumes" / "raw"), mode="a")
    for i, n in enumerate((32, 16)):
        g.create_dataset("s%d" % i, shape=(n, n, n), chunks=(16, 16, 16), dtype="u1")
    g.attrs["multiscales"] = [{"version": "0.4", "datasets": [{"path": "s0"}, {"path": "s1"}]}]
    return root, labels


# ---------------------------------------------------------------------------
# Mistyped commands and options: the nearest name is suggested
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["binarise"], "labelbin: unknown command 'binarise'; did you mean 'binarize'?"),
    (["bianrize"], "labelbin: unknown command 'bianrize'; did you mean 'binarize'?"),
    (["mask2"], "labelbin: unknown command 'mask2'; did you mean 'mask'?"),
    (["ifno"], "labelbin: unknown command 'ifno'; did you mean 'info'?"),
    (["help", "smaple"], "labelbin: help: unknown command 'smaple'; did you mean 'sample'?"),
    (["frobnicate"], "labelbin: unknown command 'frobnicate' (commands: info, binarize, "
                     "mask, run, sample, preview, help)"),
    (["--verison"], "labelbin: unknown option '--verison'; did you mean '--version'?"),
    (["info", "--jsno", "x"], "labelbin: info: unknown option '--jsno'; did you mean '--json'?"),
    (["binarize", "--codc=zstd", "a", "b", "-g", "a=1"],
     "labelbin: binarize: unknown option '--codc'; did you mean '--codec'?"),
    (["mask", "--resmue", "a", "b", "-g", "a=1"],
     "labelbin: mask: unknown option '--resmue'; did you mean '--resume'?"),
    (["sample", "--sead", "3", "x"],
     "labelbin: sample: unknown option '--sead'; did you mean '--seed'?"),
    (["binarize", "--gro", "a=1", "a", "b"],
     "labelbin: binarize: option '--gro' is ambiguous: --group, --groupings"),
    (["binarize", "--zzzzzz", "a", "b"], "labelbin: binarize: unknown option '--zzzzzz'"),
])
def test_suggestions(args, message):
    rc, out, err = lb(*args)
    assert rc == 2, err
    first = err.splitlines()[0]
    assert first == message, err
    assert "--help' for more information" in err
    assert out == ""


def test_unambiguous_prefix_is_taken(crop, tmp_path):
    _, labels = crop
    rc, _, err = lb("binarize", labels, tmp_path / "o.zarr" / "gt", "-g", "a=1", "--thr", "2",
                    "--no-prog", "-q")
    assert rc == 0, err


# ---------------------------------------------------------------------------
# A container or group where a dataset is expected
# ---------------------------------------------------------------------------

def test_info_on_container_lists_datasets(crop):
    root, labels = crop
    rc, out, err = lb("info", root)
    assert rc == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == "labelbin: %s: no Zarr v2 (.zarray), N5 (attributes.json with " \
                       "dimensions) or Zarr v3 (zarr.json) array here" % root
    assert lines[1] == "labelbin: %s is a group; the datasets below it:" % root
    listed = [l.split()[0] for l in lines[2:-1]]
    assert listed == ["%s/volumes/labels/all" % root, "%s/volumes/raw/s0" % root,
                      "%s/volumes/raw/s1" % root]
    assert "zarr2 uint64 (32, 48, 40), `labels` metadata" in lines[2]
    assert "zarr2 uint8 (32, 32, 32)" in lines[3]
    # the labels, not raw, are what binarize and mask want
    assert lines[-1] == "labelbin: did you mean %s?" % labels


def test_multiscale_group_suggests_s0(crop, tmp_path):
    root, _ = crop
    for cmd in (["info"], ["binarize", "@", tmp_path / "o.zarr/x", "-g", "a=1"],
                ["mask", "@", tmp_path / "o.zarr/y", "-g", "a=1"]):
        args = [root / "volumes" / "raw" if a == "@" else a for a in cmd]
        if args == ["info"]:
            args.append(root / "volumes" / "raw")
        rc, out, err = lb(*args)
        assert rc == 1, err
        assert err.splitlines()[-1] == "labelbin: did you mean %s/volumes/raw/s0?" % root
    assert not (tmp_path / "o.zarr").exists()


def test_n5_container_and_broken_zarr3(tmp_path):
    n5 = tmp_path / "c.n5"
    g = zarr.open_group(N5Store(str(n5)), mode="w")
    g.create_dataset("labels/s0", shape=(8, 8), chunks=(4, 4), dtype="u4", compressor=None)
    g.create_dataset("labels/s1", shape=(4, 4), chunks=(4, 4), dtype="u4", compressor=None)
    rc, _, err = lb("info", n5)
    assert rc == 1
    assert "%s/labels/s0  n5 uint32 (8, 8)" % n5 in err
    assert err.splitlines()[-1] == "labelbin: did you mean %s/labels/s0?" % n5
    # a Zarr v3 array that cannot be opened is named with the way to see why
    v3 = tmp_path / "v3.zarr" / "arr"
    v3.mkdir(parents=True)
    (v3 / "zarr.json").write_text('{"zarr_format": 3, "node_type": "array"}')
    rc, _, err = lb("info", tmp_path / "v3.zarr")
    assert rc == 1 and "%s  cannot be opened (run 'labelbin info' on it)" % v3 in err
    assert "did you mean" not in err


def test_no_dataset_below(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    rc, _, err = lb("info", tmp_path / "empty")
    assert rc == 1
    assert err.splitlines()[-1].startswith(
        "labelbin: %s holds no Zarr or N5 dataset: give the path of a dataset folder"
        % (tmp_path / "empty"))
    # a missing path says so and lists nothing
    rc, _, err = lb("info", tmp_path / "nope.zarr")
    assert rc == 1 and err.count("\n") == 1 and "(the path does not exist)" in err


def test_walk_is_bounded(tmp_path):
    # datasets deeper than the bound are not searched for; many are cut short
    deep = tmp_path / "deep.zarr"
    zarr.open_group(str(deep), mode="a").create_dataset(
        "/".join("d%d" % i for i in range(9)) + "/arr", shape=(2,), chunks=(2,), dtype="u1")
    rc, _, err = lb("info", deep)
    assert rc == 1 and "holds no Zarr or N5 dataset near the top" in err
    many = zarr.open_group(str(tmp_path / "many.zarr"), mode="a")
    for i in range(25):
        many.create_dataset("a%02d" % i, shape=(2,), chunks=(2,), dtype="u1")
    rc, _, err = lb("info", tmp_path / "many.zarr")
    assert rc == 1 and "  ... and 5 more" in err
    assert sum(l.startswith("  %s/a" % (tmp_path / "many.zarr")) for l in err.splitlines()) == 20


# ---------------------------------------------------------------------------
# An output or raw data where labels are expected
# ---------------------------------------------------------------------------

def test_binarize_an_output_names_its_labels(crop, tmp_path):
    _, labels = crop
    gt = tmp_path / "t.zarr" / "gt"
    rc, _, err = lb("binarize", labels, gt, "-g", "mito=3,4,5", "-q")
    assert rc == 0, err
    for cmd, verb in (("binarize", "binarize"), ("mask", "build a mask over")):
        rc, out, err = lb(cmd, gt, tmp_path / "again.zarr" / "x", "-g", "a=1")
        assert rc == 1 and out == ""
        assert err == ("labelbin: %s: cannot %s a source array with channels (axes c, z, y, "
                       "x): a label dataset has one id per voxel and no channel axis; it is a "
                       "BinarizeArray that labelbin wrote from %s: give that label dataset "
                       "instead\n" % (gt, verb, os.path.realpath(labels)))
    assert not (tmp_path / "again.zarr").exists()


def test_binarize_float_or_channels_names_the_path(tmp_path):
    raw = tmp_path / "r.zarr"
    zarr.open_group(str(raw), mode="a").create_dataset("pred", shape=(4, 4, 4), chunks=(4, 4, 4),
                                                       dtype="f4")
    rc, _, err = lb("binarize", raw / "pred", tmp_path / "o.zarr/x", "-g", "a=1")
    assert rc == 1
    assert err == ("labelbin: %s: cannot binarize a source array of dtype float32: label ids "
                   "must be integers; is this an output (a target, mask or prediction) or raw "
                   "data rather than a label dataset?\n" % (raw / "pred"))
    z = zarr.open_group(str(raw), mode="a").create_dataset("ch", shape=(2, 4, 4, 4),
                                                           chunks=(1, 4, 4, 4), dtype="u1")
    z.attrs["axes"] = ["c", "z", "y", "x"]
    rc, _, err = lb("mask", raw / "ch", tmp_path / "o.zarr/x", "-g", "a=1")
    assert rc == 1
    assert err.startswith("labelbin: %s: cannot build a mask over a source array with "
                          "channels (axes c, z, y, x)" % (raw / "ch"))
    assert err.rstrip().endswith("rather than a label dataset?")


# ---------------------------------------------------------------------------
# Group names, groupings files, empty groupings
# ---------------------------------------------------------------------------

def test_duplicate_and_empty_group_names(crop, tmp_path):
    _, labels = crop
    dest = tmp_path / "o.zarr" / "gt"
    rc, _, err = lb("binarize", labels, dest, "-g", "a=3", "-g", "a=4")
    assert rc == 2
    assert err.splitlines()[0] == (
        'labelbin: binarize: -g: group "a" is given twice (groups 0 and 1): every group names '
        'an output channel, so names must be unique; merge the ids into one group or rename '
        'one')
    rc, _, err = lb("mask", labels, dest, "-g", "=4")
    assert rc == 2 and "expected NAME=ID" in err
    g = tmp_path / "g.json"
    for text, message in (
            ('[["a", [3]], ["a", [4]]]', 'groupings[1][0]: group "a" is given twice'),
            ('[["", [3]]]', "groupings[0][0]: group 0 has an empty name"),
            ('{"": [3]}', 'groupings[""]: group 0 has an empty name')):
        g.write_text(text)
        rc, _, err = lb("binarize", labels, dest, "--groupings", g)
        assert rc == 1, err
        assert err.startswith("labelbin: %s: %s" % (g, message)), err
    # across -g and a file
    g.write_text('{"a": [1]}')
    rc, _, err = lb("binarize", labels, dest, "-g", "a=2", "--groupings", g)
    assert rc == 1 and 'groupings["a"]: group "a" is given twice (groups 0 and 1)' in err
    assert not dest.exists()


@pytest.mark.parametrize("text", ["[]", "{}"])
def test_empty_groupings_file(crop, tmp_path, text):
    _, labels = crop
    g = tmp_path / "g.json"
    g.write_text(text)
    for cmd in ("binarize", "mask"):
        rc, out, err = lb(cmd, labels, tmp_path / "o.zarr" / "gt", "--groupings", g)
        assert rc == 1 and out == ""
        assert err == ("labelbin: %s: the groupings are empty: at least one group is needed "
                       "(each group is one output channel)\n" % g)
    # and from a config
    cfg = {"__type__": "BinarizeArrayConfig", "name": "gt", "groupings": json.loads(text),
           "source_array_config": {"__type__": "ZarrArrayConfig", "name": "l",
                                   "file_name": str(labels), "dataset": ""}}
    rc, _, err = lb("run", "-", tmp_path / "o.zarr" / "gt", stdin=json.dumps(cfg))
    assert rc == 1 and "the groupings are empty" in err
    assert not (tmp_path / "o.zarr").exists()


def test_object_form_groupings(crop, tmp_path):
    _, labels = crop
    data = zarr.open(str(labels), mode="r")[...]
    g = tmp_path / "g.json"
    g.write_text('{"mito": [3, 4, 5], "all": [], "er": [16, 17]}')
    dest = tmp_path / "o.zarr" / "gt"
    rc, out, err = lb("binarize", labels, dest, "-g", "first=1", "--groupings", g)
    assert rc == 0, err
    z = zarr.open(str(dest), mode="r")
    assert z.attrs["channels"] == ["first", "mito", "all", "er"]
    want = np.stack([data == 1, np.isin(data, [3, 4, 5]), data != 0, np.isin(data, [16, 17])])
    np.testing.assert_array_equal(z[...], want.astype(np.uint8))
    assert z.attrs["labelbin"]["groupings"] == [["first", [1]], ["mito", [3, 4, 5]],
                                                ["all", []], ["er", [16, 17]]]


# ---------------------------------------------------------------------------
# Masks say why
# ---------------------------------------------------------------------------

def table(out):
    return {l.split()[1]: l for l in out.splitlines() if l[:3].strip().isdigit()}


def test_mask_names_the_ids_that_switch_it_off(crop, tmp_path):
    _, labels = crop
    rc, out, err = lb("mask", labels, tmp_path / "m.zarr" / "m", "-g", "mito=3,4,5",
                      "-g", "ribo=5,5", "-g", "mem=3", "-g", "all=")
    assert rc == 0, err
    t = table(out)
    assert t["mito"].endswith("  masked off: 5 present, not annotated")
    assert t["ribo"].endswith("  masked off: 5 present, not annotated")
    assert t["mem"].endswith("  enabled")
    assert re.search(r"all\s+\(any label\)\s", t["all"])
    assert err == ""  # the metadata lists every id in the data


def with_labels(src, dest, keep):
    """A copy of the dataset `src` whose `labels` list is edited by keep(l)."""
    shutil.copytree(src, dest)
    z = zarr.open(str(dest), mode="r+")
    labels = [l for l in z.attrs["labels"] if keep(l)]
    z.attrs["labels"] = labels
    return dest


def test_mask_warns_of_ids_the_metadata_does_not_list(crop, tmp_path):
    _, labels = crop
    data = zarr.open(str(labels), mode="r")[...]
    stale = tmp_path / "stale.zarr" / "labels"
    with_labels(labels, stale, lambda l: l["value"] not in (4, 9))
    z = zarr.open(str(stale), mode="r+")
    attrs = z.attrs.asdict()
    for l in attrs["labels"]:
        if l["value"] == 35:
            l["annotationState"]["present"] = False  # present in the data all the same
    z.attrs.put(attrs)
    present = set(np.unique(data).tolist())
    assert {4, 9, 35} <= present
    dest = tmp_path / "m.zarr" / "m"
    rc, out, err = lb("mask", stale, dest, "-g", "mito=3,4,5", "-g", "ves=8,9")
    assert rc == 0, err
    assert err == ("labelbin: warning: %s: labels 4,9,35 occur in the data but the `labels` "
                   "attribute does not list them as present: the mask counts their voxels as "
                   "annotated (1 in every channel that is not masked off); check the annotation "
                   "metadata\n" % stale)
    # DaCapo's rule all the same: ves is label > 0, mito is off (5)
    m = zarr.open(str(dest), mode="r")[...]
    np.testing.assert_array_equal(m[1], (data > 0).astype(np.uint8))
    assert m[0].sum() == 0
    # -q keeps it quiet; a ROI without those ids says nothing
    rc, out, err = lb("mask", stale, tmp_path / "m.zarr" / "q", "-g", "ves=8,9", "-q")
    assert rc == 0 and out == "" and err == ""
    # run of a MissingAnnotationsMaskConfig warns the same way
    cfg = {"__type__": "MissingAnnotationsMaskConfig", "name": "m",
           "groupings": [["ves", [8, 9]]],
           "source_array_config": {"__type__": "ZarrArrayConfig", "name": "l",
                                   "file_name": str(stale.parent), "dataset": "labels"}}
    rc, out, err = lb("run", "-", tmp_path / "m.zarr" / "r", stdin=json.dumps(cfg))
    assert rc == 0 and "labels 4,9,35 occur in the data" in err
    assert table(out)["ves"].split()[2] == "8,9"


# ---------------------------------------------------------------------------
# -v, the run table, the codec message
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("j,want", [("1", 1), ("3", 3), ("64", "blocks"), ("0", "cores")])
def test_verbose_prints_threads_used(crop, tmp_path, j, want):
    _, labels = crop  # 32x48x40 in 16^3 chunks: 2*3*3 = 18 blocks
    blocks = 18
    if want == "blocks":  # never more threads than blocks
        want = blocks
    elif want == "cores":  # -j 0: one per online CPU
        want = min(os.sysconf("SC_NPROCESSORS_ONLN"), blocks)
    rc, _, err = lb("binarize", labels, tmp_path / "o.zarr" / "gt", "-g", "a=1", "-j", j, "-v")
    assert rc == 0, err
    assert "labelbin: %d worker thread%s for %d blocks\n" % (want, "" if want == 1 else "s",
                                                               blocks) in err
    assert " 0 threads" not in err


def test_run_table_has_ids(crop, tmp_path):
    _, labels = crop
    cfg = {"__type__": "BinarizeArrayConfig", "name": "gt", "background": 0,
           "groupings": {"mito": [3, 4, 5], "nuc": [20, 21, 22, 23, 24, 28], "all": []},
           "source_array_config": {"__type__": "ZarrArrayConfig", "name": "l",
                                   "file_name": str(labels), "dataset": ""}}
    rc, out, err = lb("run", "-", tmp_path / "o.zarr" / "gt", stdin=json.dumps(cfg))
    assert rc == 0, err
    t = table(out)
    assert t["mito"].split()[2] == "3..5"
    assert t["nuc"].split()[2] == "20..24,28"
    assert "(not background)" in t["all"]
    assert out.splitlines()[0].split()[:3] == ["#", "channel", "ids"]


def test_missing_config_key(crop, tmp_path):
    _, labels = crop
    cfg = tmp_path / "gt.json"
    cfg.write_text(json.dumps({
        "__type__": "BinarizeArrayConfig", "name": "gt", "groupings": [["a", [1]]],
        "source_array_config": {"__type__": "ZarrArrayConfig", "name": "l",
                                "file_name": str(labels)}}))
    rc, _, err = lb("run", cfg, tmp_path / "o.zarr" / "gt")
    assert rc == 1
    assert err == "labelbin: %s: BinarizeArrayConfig.source_array_config.dataset: missing\n" % cfg


@pytest.mark.parametrize("codec,message", [
    ("zstd:99", 'labelbin: codec spec "zstd:99": level must be an integer -131072..22'),
    ("blosc-brotli", 'labelbin: codec spec "blosc-brotli": unknown blosc compressor "brotli"'),
    ('{"id": "zstd", "level": "x"}', "labelbin: codec spec.level: expected an integer"),
])
def test_codec_said_once(crop, tmp_path, codec, message):
    _, labels = crop
    rc, out, err = lb("binarize", labels, tmp_path / "o.zarr" / "gt", "-g", "a=1",
                      "--codec", codec)
    assert rc == 2, err
    assert err.startswith(message), err
    assert err.count("codec spec") == 1 and 'codec "' not in err
    assert not (tmp_path / "o.zarr").exists()


# ---------------------------------------------------------------------------
# docs/cli.md says what the tool does
# ---------------------------------------------------------------------------

def test_documented_default_codec(crop, tmp_path):
    _, labels = crop
    doc = open(CLI_MD, encoding="utf-8").read()
    m = re.search(r"The default is the library's \(`lb_default_codec_json\(\)`\): [^`]*`(\{[^`]*\})`",
                  doc)
    assert m, "docs/cli.md does not state the default codec"
    dest = tmp_path / "o.zarr" / "gt"
    rc, _, err = lb("binarize", labels, dest, "-g", "a=1", "-v")
    assert rc == 0, err
    assert json.loads(m.group(1)) == zarr.open(str(dest), mode="r").compressor.get_config()
    assert "labelbin: codec %s" % m.group(1) in err


def section(doc, cmd):
    m = re.search(r"^## labelbin %s\n(.*?)(?=^## )" % cmd, doc, re.S | re.M)
    return m.group(1) if m else ""


@pytest.mark.parametrize("cmd", ["info", "binarize", "mask", "run", "sample"])
def test_every_option_documented(cmd):
    doc = open(CLI_MD, encoding="utf-8").read()
    rc, out, _ = lb(cmd, "--help")
    assert rc == 0
    text = section(doc, cmd)
    # mask and run point to binarize for the shared options
    if cmd in ("mask", "run"):
        text += section(doc, "binarize")
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", out))
    assert options, out
    missing = sorted(o for o in options if o not in text and o != "--help")
    assert not missing, "%s: not in docs/cli.md: %s" % (cmd, missing)
    assert "`-h/--help` prints the command's help" in doc


def test_documented_exit_codes_for_usage_errors(crop, tmp_path):
    # each kind of mistake the exit-code table calls a usage error is 2
    _, labels = crop
    d = tmp_path / "o.zarr" / "gt"
    for args in (["binarize", labels, d, "-g", "a=1", "--chunks", "4,4"],
                 ["mask", labels, d, "-g", "a=1", "--background", "0"],
                 ["run", "x.json", d, "--groupings", "g.json"],
                 ["binarize", labels, d, "-g", "a=1", "extra"],
                 ["binarize", labels, d, "-g", "a=1", "-f", "--resume"]):
        rc, out, err = lb(*args)
        assert rc == 2, (args, err)
        assert err.startswith("labelbin: ") and out == ""
    # and the runtime failures 1
    for args in (["binarize", labels, d, "-g", "a=1", "--roi", "0:8"],
                 ["binarize", tmp_path / "none.zarr/l", d, "-g", "a=1"],
                 ["binarize", labels, d, "--groupings", tmp_path / "none.json"]):
        rc, out, err = lb(*args)
        assert rc == 1, (args, err)
    assert not d.exists()
