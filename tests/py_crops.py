"""CellMap crops: crops written by zarr-python following the published schema
(per-class multiscale groups with cellmap.annotation, both encodings,
semantic and instance classes, missing classes, unknown regions, group
classes, several levels, mismatched voxel sizes), every rule of the
three-valued semantics checked against an independent numpy implementation
below, through the CLI (binarize, mask, info, stats, check, run) and the
Python API (Crop, BinarizeArray / MissingAnnotationsMask over a crop, stats,
check); check findings on deliberately broken crops; hostile metadata
refused with its JSON path; CLI exit codes and one-line messages.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/py_crops.py
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import zarr
from numcodecs import Blosc, Zstd

HERE = pathlib.Path(__file__).resolve().parent
BUILD = pathlib.Path(os.environ.get("LB_BUILD_DIR", HERE.parent / "build"))
LABELBIN = str((BUILD / "labelbin").resolve())
sys.path.insert(0, str(BUILD / "python"))
import labelbin  # noqa: E402

SEED = int(os.environ.get("LB_SEED", "1313"))
print("seed", SEED)

# ---------------------------------------------------------------------------
# The part of CellMap's class table these tests use (name -> id, group
# classes -> members), written down independently of the library's copy.
# ---------------------------------------------------------------------------

IDS = {"ecs": 1, "pm": 2, "mito_mem": 3, "mito_lum": 4, "mito_ribo": 5, "golgi_mem": 6,
       "golgi_lum": 7, "er_mem": 16, "er_lum": 17, "eres_mem": 18, "eres_lum": 19,
       "ne_mem": 20, "ne_lum": 21, "np_out": 22, "np_in": 23, "hchrom": 24, "nhchrom": 25,
       "echrom": 26, "nechrom": 27, "nucpl": 28, "nucleo": 29, "cyto": 35, "nuc": 37,
       "golgi": 40, "mito": 50, "er": 51, "cell": 60}
NAMES = {v: k for k, v in IDS.items()}
MEMBERS = {37: list(range(20, 30)), 40: [6, 7], 50: [3, 4, 5],
           51: [16, 17, 18, 19, 20, 21, 22, 23],
           60: [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
                24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 38, 39, 47, 48, 56, 57, 58,
                61, 62]}

S3 = {"absent": 0, "present": 1, "unknown": 255}   # semantic, with unknown
S2 = {"absent": 0, "present": 1}                   # semantic, the fibsem-tools form
ODD = {"absent": 2, "present": 7, "unknown": 9}    # semantic, other values


def atomic(k):
    if k in MEMBERS:
        out = set()
        for m in MEMBERS[k]:
            out |= atomic(m)
        return out
    return {k}


# ---------------------------------------------------------------------------
# Writing crops with zarr-python, as the schema says
# ---------------------------------------------------------------------------

def multiscales(levels, vs, offset, name=None):
    ds = []
    for l in range(levels):
        s = [v * 2 ** l for v in vs]
        # CellMap's pyramids: voxel centres, so level l is shifted by half
        # the voxel-size difference
        t = [o + (si - v) / 2 for o, si, v in zip(offset, s, vs)]
        ds.append({"path": "s%d" % l, "coordinateTransformations": [
            {"type": "scale", "scale": [float(x) for x in s]},
            {"type": "translation", "translation": [float(x) for x in t]}]})
    return [{"version": "0.4", "name": name, "axes": [
        {"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"], "datasets": ds}]


def complement(d, enc):
    return {k: int((d == enc[k]).sum()) for k in ("absent", "unknown") if k in enc}


def write_crop(container, crop, classes, vs=(4, 4, 4), offset=(8, -16, 40), levels=2,
               all_ids=None, chunks=(8, 8, 8), class_names=None):
    """classes: [{"name", "data" (s0), "type" semantic|instance, "encoding",
    optional "vs" and "levels"}]. Level l is data[::2**l, ::2**l, ::2**l]."""
    root = zarr.open_group(str(container), mode="a")
    g = root.require_group(crop)
    names = [c["name"] for c in classes] if class_names is None else class_names
    g.attrs.put({"cellmap": {"annotation": {
        "version": "0.1.1", "name": crop.split("/")[-1], "description": None,
        "created_by": ["test"], "created_with": ["zarr-python"], "start_date": None,
        "end_date": None, "duration_days": None, "protocol_uri": None, "class_names": names}}})
    for c in classes:
        kind = c.get("type", "semantic")
        enc = c["encoding"]
        at = {"type": kind + "_segmentation", "encoding": enc}
        cg = g.require_group(c["name"])
        nl = c.get("levels", levels)
        cg.attrs.put({"cellmap": {"annotation": {"class_name": c["name"], "annotation_type": at}},
                      "multiscales": multiscales(nl, c.get("vs", vs), offset, c["name"])})
        for l in range(nl):
            d = c["data"][tuple(slice(None, None, 2 ** l) for _ in range(3))]
            z = cg.create_dataset("s%d" % l, data=d, chunks=chunks, overwrite=True,
                                  dimension_separator="/", compressor=Blosc("zstd", 3))
            z.attrs.put({"cellmap": {"annotation": {
                "class_name": c["name"], "annotation_type": at,
                "complement_counts": complement(d, enc)}}})
    if all_ids is not None:
        ag = g.require_group("all")
        ag.attrs.put({"multiscales": multiscales(1, vs, offset, "all")})
        ag.create_dataset("s0", data=all_ids, chunks=chunks, overwrite=True,
                          dimension_separator="/", compressor=Zstd(3))
    return os.path.join(str(container), crop)


def truth_volume(rng, shape, ids):
    """Dense atomic ids in blobs (a coarse grid upsampled), so that classes
    have runs and boundaries."""
    coarse = rng.choice(ids, size=tuple((s + 3) // 4 for s in shape))
    big = coarse.repeat(4, 0).repeat(4, 1).repeat(4, 2)
    return big[:shape[0], :shape[1], :shape[2]].astype(np.uint16)


def semantic(truth, name, enc, unknown=None):
    d = np.where(np.isin(truth, list(atomic(IDS[name]))), enc["present"], enc["absent"])
    d = d.astype(np.uint8)
    if unknown is not None:
        d[unknown] = enc["unknown"]
    return d


def instances(truth, name, enc, unknown=None, dtype=np.uint16):
    """An instance array: one id per connected run along x (enough to have
    many distinct ids), absent elsewhere."""
    inside = np.isin(truth, list(atomic(IDS[name])))
    starts = inside & ~np.concatenate([np.zeros_like(inside[..., :1]), inside[..., :-1]], -1)
    ids = np.cumsum(starts.ravel()).reshape(inside.shape) + 10
    d = np.where(inside, ids, enc["absent"]).astype(dtype)
    if unknown is not None:
        d[unknown] = enc["unknown"]
    return d


SHAPE = (16, 24, 20)


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    """Crop A (the main one), crop B (a group class only through its
    members), crop C (classes at different voxel sizes)."""
    rng = np.random.default_rng(SEED)
    root = tmp_path_factory.mktemp("crops")
    container = root / "data.zarr"
    truth = truth_volume(rng, SHAPE, [0, 1, 2, 3, 4, 5, 16, 17, 35, 35])
    a_classes = [
        {"name": "ecs", "data": semantic(truth, "ecs", S3, np.s_[:, :4, :]), "encoding": S3},
        {"name": "pm", "data": semantic(truth, "pm", S2), "encoding": S2},
        {"name": "mito_mem", "data": semantic(truth, "mito_mem", S3, np.s_[:4]), "encoding": S3},
        {"name": "mito_lum", "data": semantic(truth, "mito_lum", S3), "encoding": S3},
        {"name": "mito", "type": "instance", "encoding": {"absent": 0, "unknown": 65535},
         "data": instances(truth, "mito", {"absent": 0, "unknown": 65535}, np.s_[12:, 20:])},
        {"name": "er_mem", "data": semantic(truth, "er_mem", ODD, np.s_[:, :, 16:]),
         "encoding": ODD},
        {"name": "cyto", "data": semantic(truth, "cyto", S3, np.s_[8:12, 8:12]),
         "encoding": S3},
        # a class the table does not know: no id, but part of "any class"
        {"name": "weird_thing", "data": semantic(truth, "ecs", S3), "encoding": S3},
    ]
    crop_a = write_crop(container, "groundtruth/cropA", a_classes, all_ids=truth)
    b_classes = [
        {"name": "mito_mem", "data": semantic(truth, "mito_mem", S3, np.s_[:, :, :5]),
         "encoding": S3},
        {"name": "mito_lum", "data": semantic(truth, "mito_lum", S2), "encoding": S2},
        {"name": "mito_ribo", "data": semantic(truth, "mito_ribo", S3), "encoding": S3},
        {"name": "ecs", "data": semantic(truth, "ecs", S3), "encoding": S3},
    ]
    crop_b = write_crop(container, "groundtruth/cropB", b_classes, all_ids=truth)
    coarse = truth[::2, ::2, ::2]
    c_classes = [
        {"name": "mito_mem", "data": semantic(truth, "mito_mem", S3), "encoding": S3},
        {"name": "ecs", "data": semantic(coarse, "ecs", S3), "encoding": S3, "vs": (8, 8, 8),
         "levels": 1},
    ]
    crop_c = write_crop(container, "groundtruth/cropC", c_classes)
    return {"root": root, "truth": truth, "A": (crop_a, a_classes), "B": (crop_b, b_classes),
            "C": (crop_c, c_classes)}


# ---------------------------------------------------------------------------
# The three-valued rule, in numpy (the oracle)
# ---------------------------------------------------------------------------

def class_state(c):
    """(present, absent) of a class array as written."""
    d, e = c["data"], c["encoding"]
    unk = (d == e["unknown"]) if "unknown" in e else np.zeros(d.shape, bool)
    absent = (d == e["absent"]) if "absent" in e else np.zeros(d.shape, bool)
    if c.get("type", "semantic") == "instance":
        present = ~unk & ~absent
    else:
        present = (d == e["present"]) if "present" in e else np.zeros(d.shape, bool)
    return present, absent


def id_state(k, by_name, shape):
    name = NAMES.get(k)
    if name in by_name:
        return class_state(by_name[name])
    if k in MEMBERS:
        ps, abs_ = [], []
        for m in MEMBERS[k]:
            p, a = id_state(m, by_name, shape)
            ps.append(p)
            abs_.append(a)
        return np.any(ps, 0), np.all(abs_, 0)
    return np.zeros(shape, bool), np.zeros(shape, bool)


def oracle(classes, groups, infer=False, shape=SHAPE, level=0):
    """[(target, mask)] per group, bool arrays."""
    step = 2 ** level
    cl = [dict(c, data=c["data"][::step, ::step, ::step]) for c in classes]
    shape = cl[0]["data"].shape if cl else shape
    by_name = {c["name"]: c for c in cl}
    out = []
    for name, ids in groups:
        if not ids:
            states = [class_state(c) for c in cl]
            present = np.any([p for p, _ in states], 0)
            all_absent = np.all([a for _, a in states], 0) if states else np.zeros(shape, bool)
            out.append((present, present | all_absent))
            continue
        states = [id_state(k, by_name, shape) for k in ids]
        present = np.any([p for p, _ in states], 0)
        inferred = np.zeros(shape, bool)
        if infer:
            g_atomic = set()
            for k in ids:
                g_atomic |= atomic(k)
            for c in cl:
                if c["name"] in IDS and not (atomic(IDS[c["name"]]) & g_atomic):
                    inferred |= class_state(c)[0]
        all_absent = np.all([a | (~p & ~a & inferred) for p, a in states], 0)
        out.append((present, present | all_absent))
    return out


def per_class_oracle(classes):
    return [class_state(c) for c in classes]


GROUPS = [("mito", [3, 4, 5]), ("mito_inst", [50]), ("mito_mem", [3]), ("ecs", [1]),
          ("pm", [2]), ("er", [16, 17]), ("cyto", [35]), ("nuc", [37]), ("nothing", [999]),
          ("golgi", [40]), ("any", [])]


def gargs(groups):
    out = []
    for name, ids in groups:
        out += ["-g", name + "=" + ",".join(str(i) for i in ids)]
    return out


def lb(*args, cwd=None, stdin=None):
    p = subprocess.run([LABELBIN, *map(str, args)], capture_output=True, text=True,
                       cwd=cwd, input=stdin, timeout=300)
    return p.returncode, p.stdout, p.stderr


def one_line(err):
    """The failure message: exactly one line 'labelbin: ...' (plus the usage
    hint line for usage errors)."""
    lines = [l for l in err.splitlines() if not l.startswith("labelbin: warning:")]
    assert lines and lines[0].startswith("labelbin: "), err
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("Try 'labelbin")), err
    return lines[0]


# ---------------------------------------------------------------------------
# The class table
# ---------------------------------------------------------------------------

def test_builtin_table_matches_cellmap():
    table = {name: (i, members) for name, i, members in labelbin.builtin_classes()}
    assert len(table) == 74
    assert sorted(v[0] for v in table.values()) == list(range(1, 75))
    for name, i in IDS.items():
        assert table[name][0] == i, name
        assert table[name][1] == MEMBERS.get(i, []), name


def test_class_table_csv(tmp_path):
    f = tmp_path / "classes.csv"
    f.write_text('name,id,members\nfoo,7,""\nbar,8,"7"\nbaz,9,"8, 10"\nqux,10,\n')
    rows = labelbin.read_classes(f)
    assert rows == [("foo", 7, []), ("bar", 8, [7]), ("baz", 9, [8, 10]), ("qux", 10, [])]
    bad = {
        'a,1,""\nb,x,""\n': "classes.csv:2: id \"x\"",
        'a,1,""\na,2,""\n': "classes.csv:2: class \"a\" is listed twice",
        'a,1,""\nb,1,""\n': "classes.csv:2: id 1 is used by",
        'a,1,"2"\n': "classes.csv:1: member 2 of \"a\" is not an id of the table",
        'a,1,"2"\nb,2,"1"\n': "contains itself",
        'a/b,1,""\n': "cannot name a group",
        '..,1,""\n': "cannot name a group",
        'a,1,"1"\n': "lists its own id",
    }
    for text, msg in bad.items():
        f.write_text(text)
        with pytest.raises(labelbin.FormatError, match=None) as e:
            labelbin.read_classes(f)
        assert msg in str(e.value), (text, str(e.value))


# ---------------------------------------------------------------------------
# info, Crop
# ---------------------------------------------------------------------------

def test_info_json(crops):
    path, classes = crops["A"]
    rc, out, err = lb("info", "--json", path)
    assert rc == 0, err
    d = json.loads(out)
    assert d["format"] == "cellmap-crop"
    assert d["name"] == "cropA" and d["version"] == "0.1.1"
    assert d["all"] == "all/s0"
    assert [c["name"] for c in d["classes"]] == [c["name"] for c in classes]
    by = {c["name"]: c for c in d["classes"]}
    assert by["ecs"]["id"] == 1 and by["ecs"]["type"] == "semantic_segmentation"
    assert by["ecs"]["encoding"] == S3
    assert by["pm"]["encoding"] == S2
    assert by["er_mem"]["encoding"] == ODD
    assert by["mito"]["id"] == 50 and by["mito"]["members"] == [3, 4, 5]
    assert by["mito"]["type"] == "instance_segmentation"
    assert by["weird_thing"]["id"] is None
    lv = by["mito_mem"]["levels"]
    assert [l["path"] for l in lv] == ["s0", "s1"]
    assert lv[0]["voxel_size"] == [4, 4, 4] and lv[1]["voxel_size"] == [8, 8, 8]
    assert lv[0]["offset"] == [8, -16, 40] and lv[0]["shape"] == list(SHAPE)
    data = classes[2]["data"]
    assert lv[0]["complement_counts"] == complement(data, S3)
    assert lv[1]["complement_counts"] == complement(data[::2, ::2, ::2], S3)
    assert any("weird_thing" in w for w in d["warnings"])


def test_info_text(crops):
    path, _ = crops["A"]
    rc, out, err = lb("info", path)
    assert rc == 0, err
    assert "CellMap crop" in out
    assert "mito_mem" in out and "absent 0, present 1, unknown 255" in out
    assert "s1 (8, 8, 8)" in out


def test_python_crop(crops):
    path, classes = crops["A"]
    c = labelbin.Crop(path)
    assert c.class_names == [k["name"] for k in classes]
    assert c["mito"].instance and c["mito"].id == 50
    assert c["ecs"].levels[1].voxel_size == labelbin.Coordinate((8, 8, 8))
    assert c["ecs"].levels[0].roi == labelbin.Roi((8, -16, 40), (64, 96, 80))
    assert c.all_path == "all/s0"
    assert "weird_thing" in c and "nope" not in c


# ---------------------------------------------------------------------------
# binarize / mask on a crop: every rule against the oracle
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("infer", [False, True])
def test_cli_rules(crops, tmp_path, infer):
    path, classes = crops["A"]
    extra = ["--infer-negatives"] if infer else []
    rc, out, err = lb("binarize", path, tmp_path / "o.zarr/gt", *gargs(GROUPS), *extra)
    assert rc == 0, err
    rc, out, err = lb("mask", path, tmp_path / "o.zarr/mask", *gargs(GROUPS), *extra)
    assert rc == 0, err
    # groups naming classes the crop lacks are said so
    assert "id 5 (mito_ribo)" in err and "999" in err
    gt = zarr.open(str(tmp_path / "o.zarr/gt"), "r")
    mask = zarr.open(str(tmp_path / "o.zarr/mask"), "r")
    assert gt.shape == (len(GROUPS),) + SHAPE and gt.dtype == np.uint8
    assert gt.attrs["channels"] == [g[0] for g in GROUPS]
    assert gt.attrs["resolution"] == [4, 4, 4] and gt.attrs["offset"] == [8, -16, 40]
    assert gt.attrs["labelbin"]["crop"]["infer_negatives"] is infer
    for i, (t, m) in enumerate(oracle(classes, GROUPS, infer)):
        assert np.array_equal(gt[i], t), GROUPS[i]
        assert np.array_equal(mask[i], m), GROUPS[i]


def test_rules_individually(crops):
    """Each rule on its own, with the expectation spelt out (not only the
    oracle's): a missing member is unknown, a group class uses its own
    array, an id the crop lacks is unknown everywhere, the semantic encoding
    without `unknown`, other encoding values, instance ids."""
    path, classes = crops["A"]
    by = {c["name"]: c for c in classes}
    crop = labelbin.Crop(path)

    def read(groups, **kw):
        t = labelbin.BinarizeArray(crop, groups, **kw)
        return t[t.roi]

    def mask(groups, **kw):
        m = labelbin.MissingAnnotationsMask(crop, groups, **kw)
        return m[m.roi]

    mm = by["mito_mem"]["data"]
    # a class alone: present / absent / unknown from its array
    assert np.array_equal(read([("m", [3])])[0], mm == 1)
    assert np.array_equal(mask([("m", [3])])[0], mm != 255)
    # mito_ribo (5) has no array: {3,5} is known only where 3 is present
    assert np.array_equal(mask([("m", [3, 5])])[0], mm == 1)
    # the group class 50 from its own (instance) array
    inst = by["mito"]["data"]
    assert np.array_equal(read([("m", [50])])[0], (inst != 0) & (inst != 65535))
    assert np.array_equal(mask([("m", [50])])[0], inst != 65535)
    # an id no class has: unknown everywhere, target 0
    assert not read([("x", [999])]).any() and not mask([("x", [999])]).any()
    # other encoding values (absent 2, present 7, unknown 9)
    er = by["er_mem"]["data"]
    assert np.array_equal(read([("e", [16])])[0], er == 7)
    assert np.array_equal(mask([("e", [16])])[0], er != 9)
    # pm: {absent 0, present 1}, no unknown value: known everywhere
    assert mask([("p", [2])]).all()
    # an empty group: any class of the crop
    exp_t, exp_m = oracle(classes, [("any", [])])[0]
    assert np.array_equal(read([("any", [])])[0], exp_t)
    assert np.array_equal(mask([("any", [])])[0], exp_m)


def test_group_class_from_members(crops, tmp_path):
    path, classes = crops["B"]
    groups = [("mito", [50]), ("mito_parts", [3, 4, 5]), ("er", [51]), ("ecs", [1])]
    t = labelbin.BinarizeArray(path, groups)
    m = labelbin.MissingAnnotationsMask(path, groups)
    got_t, got_m = t[t.roi], m[m.roi]
    for i, (et, em) in enumerate(oracle(classes, groups)):
        assert np.array_equal(got_t[i], et), groups[i]
        assert np.array_equal(got_m[i], em), groups[i]
    # 50 from its members = the members listed one by one
    assert np.array_equal(got_t[0], got_t[1]) and np.array_equal(got_m[0], got_m[1])
    # mito_mem's unknown columns make mito unknown where nothing is present
    mm = classes[0]["data"]
    assert not got_m[0][(mm == 255) & (got_t[0] == 0)].any()


def test_inferred_negatives_worked_example(crops):
    """mito_mem unknown, ecs present there: mito (3,4,5) counts as absent
    only with inferred negatives."""
    path, classes = crops["A"]
    by = {c["name"]: c for c in classes}
    ecs = by["ecs"]["data"] == 1
    mm_unknown = by["mito_mem"]["data"] == 255
    where = ecs & mm_unknown
    assert where.any()
    crop = labelbin.Crop(path)
    plain = labelbin.MissingAnnotationsMask(crop, [("mito", [3, 4])])
    inferred = labelbin.MissingAnnotationsMask(crop, [("mito", [3, 4])], infer_negatives=True)
    assert not plain[plain.roi][0][where].any()
    assert inferred[inferred.roi][0][where].all()
    # a class that shares atomic ids with the group infers nothing: cell (60)
    # contains ecs? no -- but mito (50) contains 3: present mito never makes
    # mito_mem absent
    both = labelbin.MissingAnnotationsMask(crop, [("mm", [3])], infer_negatives=True)
    inst = by["mito"]["data"]
    mito_only = (inst != 0) & (inst != 65535) & mm_unknown & ~ecs
    mito_only &= ~(by["cyto"]["data"] == 1) & ~(by["er_mem"]["data"] == 7)
    mito_only &= ~(by["pm"]["data"] == 1)
    assert mito_only.any()
    assert not both[both.roi][0][mito_only].any()


@pytest.mark.parametrize("infer", [False, True])
def test_python_rules_random_rois(crops, infer):
    path, classes = crops["A"]
    rng = np.random.default_rng(SEED + 1)
    crop = labelbin.Crop(path)
    t = labelbin.BinarizeArray(crop, GROUPS, infer_negatives=infer)
    m = labelbin.MissingAnnotationsMask(crop, GROUPS, infer_negatives=infer)
    assert t.kind == "CropBinarizeArray" and m.kind == "CropMissingAnnotationsMask"
    assert t.channels == [g[0] for g in GROUPS] and t.crop
    exp = oracle(classes, GROUPS, infer)
    for _ in range(6):
        lo = [int(rng.integers(0, s - 1)) for s in SHAPE]
        hi = [int(rng.integers(l + 1, s + 1)) for l, s in zip(lo, SHAPE)]
        roi = labelbin.Roi([o + 4 * l for o, l in zip((8, -16, 40), lo)],
                           [4 * (h - l) for l, h in zip(lo, hi)])
        sl = tuple(slice(l, h) for l, h in zip(lo, hi))
        gt, gm = t[roi], m[roi]
        for i, (et, em) in enumerate(exp):
            assert np.array_equal(gt[i], et[sl]), (GROUPS[i], roi)
            assert np.array_equal(gm[i], em[sl]), (GROUPS[i], roi)


def test_threads_and_pickle(crops):
    import pickle
    path, classes = crops["A"]
    t = labelbin.BinarizeArray(labelbin.Crop(path), GROUPS, infer_negatives=True)
    t.set_threads(3)
    exp = oracle(classes, GROUPS, True)
    got = t[t.roi]
    for i, (et, _) in enumerate(exp):
        assert np.array_equal(got[i], et)
    t2 = pickle.loads(pickle.dumps(t))
    assert np.array_equal(t2[t2.roi], got)


def test_per_class_channels(crops):
    path, classes = crops["A"]
    t = labelbin.BinarizeArray(path, None, unknown=255)
    assert t.channels == [c["name"] for c in classes]
    got = t[t.roi]
    for i, (p, a) in enumerate(per_class_oracle(classes)):
        exp = np.where(p, 1, np.where(a, 0, 255))
        assert np.array_equal(got[i], exp), classes[i]["name"]


def test_float_nan(crops):
    path, classes = crops["A"]
    t = labelbin.BinarizeArray(labelbin.Crop(path), [("mito", [3, 4, 5]), ("ecs", [1])],
                               unknown=float("nan"))
    assert t.dtype == np.float32
    got = t[t.roi]
    assert got.dtype == np.float32
    for i, (et, em) in enumerate(oracle(classes, [("mito", [3, 4, 5]), ("ecs", [1])])):
        assert np.array_equal(np.isnan(got[i]), ~em)
        assert np.array_equal(got[i][em], et[em].astype(np.float32))
    # the same values through a caller's buffer and through Dask's blocks
    buf = np.empty_like(got)
    assert t.to_ndarray(out=buf) is buf
    np.testing.assert_array_equal(buf, got)  # NaN == NaN here
    shape = "(%s)" % ", ".join(map(str, got.shape))
    need = ("out must have dtype float32 and shape %s, the shape and dtype of this read"
            % shape)
    with pytest.raises(ValueError) as e:
        t.to_ndarray(out=np.empty(got.shape, np.uint8))
    assert str(e.value) == need + ", not dtype uint8 and shape " + shape
    with pytest.raises(ValueError) as e:
        t.to_ndarray(out=np.empty(got.shape[:-1] + (1,), np.float32))
    assert str(e.value) == need + ", not dtype float32 and shape %s" % (got.shape[:-1] + (1,),)
    fortran = np.empty(got.shape, np.float32, order="F")
    fortran.flags.writeable = False
    with pytest.raises(ValueError) as e:
        t.to_ndarray(out=fortran)
    assert str(e.value) == ("out must be C-contiguous, aligned and writable: the read fills "
                            "it in place; the array given is not C-contiguous (strides %s) "
                            "and read-only" % (fortran.strides,))
    with pytest.raises(TypeError) as e:
        t.to_ndarray(out=[0.0] * got.size)
    assert str(e.value) == "out must be a numpy array, not list"
    pytest.importorskip("dask.array")
    d = t.to_dask(chunks=(16, 16, 16))
    assert d.dtype == np.float32
    np.testing.assert_array_equal(d.compute(scheduler="sync"), got)


def test_roi(crops, tmp_path):
    path, classes = crops["A"]
    groups = [("mito", [3, 4, 5]), ("any", [])]
    rc, _, err = lb("binarize", path, tmp_path / "r.zarr/gt", *gargs(groups),
                    "--roi", "16:48,0:48,48:100")
    assert rc == 0, err
    z = zarr.open(str(tmp_path / "r.zarr/gt"), "r")
    assert z.attrs["offset"] == [16, 0, 48]
    sl = (slice(2, 10), slice(4, 16), slice(2, 15))
    for i, (et, _) in enumerate(oracle(classes, groups)):
        assert np.array_equal(z[i], et[sl])
    rc, _, err = lb("binarize", path, tmp_path / "r2.zarr/gt", *gargs(groups),
                    "--roi", "17:48,0:48,48:100")
    assert rc == 1 and "not aligned" in one_line(err)
    assert not (tmp_path / "r2.zarr").exists()


# ---------------------------------------------------------------------------
# Voxel sizes
# ---------------------------------------------------------------------------

def test_voxel_size_choice(crops, tmp_path):
    path, classes = crops["C"]
    rc, _, err = lb("binarize", path, tmp_path / "v.zarr/gt", "-g", "mito=3", "-g", "ecs=1")
    assert rc == 2
    line = one_line(err)
    assert "different voxel sizes" in line and "mito_mem (4, 4, 4)" in line
    assert "ecs (8, 8, 8)" in line and "(8, 8, 8) is available for all of them" in line
    assert not (tmp_path / "v.zarr").exists()
    rc, _, err = lb("binarize", path, tmp_path / "v.zarr/gt", "-g", "mito=3", "-g", "ecs=1",
                    "--voxel-size", "8,8,8")
    assert rc == 0, err
    z = zarr.open(str(tmp_path / "v.zarr/gt"), "r")
    assert z.attrs["resolution"] == [8, 8, 8] and z.shape == (2, 8, 12, 10)
    mm = classes[0]["data"][::2, ::2, ::2]
    assert np.array_equal(z[0], mm == 1)
    assert np.array_equal(z[1], classes[1]["data"] == 1)
    # one class alone: its own s0, whatever the others have
    rc, _, err = lb("binarize", path, tmp_path / "v2.zarr/gt", "-g", "mito=3")
    assert rc == 0, err
    assert zarr.open(str(tmp_path / "v2.zarr/gt"), "r").attrs["resolution"] == [4, 4, 4]
    rc, _, err = lb("binarize", path, tmp_path / "v3.zarr/gt", "-g", "ecs=1",
                    "--voxel-size", "2,2,2")
    assert rc == 2
    assert "no level has the voxel size (2, 2, 2) (its levels: s0 (8, 8, 8))" in one_line(err)
    rc, _, err = lb("binarize", path, tmp_path / "v4.zarr/gt", "-g", "ecs=1",
                    "--voxel-size", "8,x")
    assert rc == 2 and "--voxel-size '8,x'" in one_line(err)


# ---------------------------------------------------------------------------
# Three-state output
# ---------------------------------------------------------------------------

def test_three_state_output(crops, tmp_path):
    path, classes = crops["A"]
    groups = [("mito", [3, 4, 5]), ("ecs", [1]), ("any", [])]
    dest = tmp_path / "t.zarr/cropA_pred"
    rc, out, err = lb("binarize", path, dest, *gargs(groups), "--unknown", "255",
                      "--infer-negatives")
    assert rc == 0, err
    top = zarr.open_group(str(dest), "r")
    an = top.attrs["cellmap"]["annotation"]
    assert an["class_names"] == ["mito", "ecs", "any"] and an["version"] == "0.1.1"
    for i, (et, em) in enumerate(oracle(classes, groups, infer=True)):
        name = groups[i][0]
        exp = np.where(et, 1, np.where(em, 0, 255))
        arr = zarr.open(str(dest / name / "s0"), "r")
        assert np.array_equal(arr[...], exp), name
        a = arr.attrs["cellmap"]["annotation"]
        assert a["class_name"] == name
        assert a["annotation_type"] == {"type": "semantic_segmentation", "encoding": S3}
        assert a["complement_counts"] == {"absent": int((exp == 0).sum()),
                                          "unknown": int((exp == 255).sum()),
                                          "present": int((exp == 1).sum())}
        g = zarr.open_group(str(dest / name), "r")
        assert g.attrs["cellmap"]["annotation"]["annotation_type"]["encoding"] == S3
        ms = g.attrs["multiscales"][0]
        assert ms["datasets"][0]["path"] == "s0"
    # the output is itself a valid crop: labelbin reads it and finds it clean
    out_crop = labelbin.Crop(dest)
    assert out_crop.class_names == ["mito", "ecs", "any"]
    rc, out, err = lb("check", dest)
    assert rc == 0, out + err
    # "any" is no class of the table: a warning, no error
    assert "0 errors, 1 warning" in out and "[class-not-in-table]" in out
    # not again without -f; -f replaces a crop labelbin wrote
    rc, _, err = lb("binarize", path, dest, *gargs(groups), "--unknown", "255")
    assert rc == 1 and "already exists" in one_line(err)
    rc, _, err = lb("binarize", path, dest, "-g", "mito=3", "--unknown", "7", "-f")
    assert rc == 0, err
    assert labelbin.Crop(dest).class_names == ["mito"]
    assert not (dest / "ecs").exists()
    assert zarr.open(str(dest / "mito/s0"), "r").attrs["cellmap"]["annotation"][
        "annotation_type"]["encoding"]["unknown"] == 7


def test_three_state_python_to_crop(crops, tmp_path):
    path, classes = crops["B"]
    groups = [("mito", [50])]
    t = labelbin.BinarizeArray(labelbin.Crop(path), groups, unknown=255)
    stats = t.to_crop(tmp_path / "p.zarr/out")
    (et, em), = oracle(classes, groups)
    exp = np.where(et, 1, np.where(em, 0, 255))
    assert np.array_equal(zarr.open(str(tmp_path / "p.zarr/out/mito/s0"), "r")[...], exp)
    assert stats["positive"] == [int(et.sum())]


def test_three_state_refusals(crops, tmp_path):
    path, _ = crops["A"]
    # the input is never written: not into the crop, not over it
    for dest in (path, os.path.join(path, "pred"), os.path.dirname(path)):
        rc, _, err = lb("binarize", path, dest, "-g", "m=3", "--unknown", "255", "-f")
        assert rc == 1 and "refusing to write" in one_line(err), err
    rc, _, err = lb("binarize", path, os.path.join(path, "gt"), "-g", "m=3")
    assert rc == 1 and "refusing to write" in one_line(err)
    assert [f["code"] for f in labelbin.check(path)] == ["class-not-in-table"]
    rc, _, err = lb("binarize", path, tmp_path / "x.zarr/c", "-g", "a/b=3", "--unknown", "255")
    assert rc == 2 and "cannot name a class group" in one_line(err)
    rc, _, err = lb("mask", path, tmp_path / "x.zarr/m", "-g", "m=3", "--unknown", "255")
    assert rc == 2 and "--unknown applies to 'binarize'" in one_line(err)
    rc, _, err = lb("binarize", path, tmp_path / "x.zarr/m", "-g", "m=3", "--unknown", "1")
    assert rc == 2 and "--unknown '1'" in one_line(err)


# ---------------------------------------------------------------------------
# The `labels` path and crop/all/s0
# ---------------------------------------------------------------------------

def test_mask_over_all(crops, tmp_path):
    path, _ = crops["A"]
    truth = crops["truth"]
    groups = [("mito", [3, 4, 5]), ("mito2", [3, 4]), ("nuc", [37]), ("mito50", [50]),
              ("any", [])]
    rc, out, err = lb("mask", path + "/all/s0", tmp_path / "a.zarr/mask", *gargs(groups))
    assert rc == 0, err
    assert "dense ids of a crop" in err
    z = zarr.open(str(tmp_path / "a.zarr/mask"), "r")
    # 5 (mito_ribo) and 37 (nuc: neither listed nor all members) are not
    # annotated: their channels are off; 50 (mito) is listed
    assert not z[0].any() and not z[2].any()
    for ch in (1, 3, 4):
        assert np.array_equal(z[ch], truth > 0)
    assert "masked off: 5" in out
    m = labelbin.MissingAnnotationsMask(path + "/all/s0", groups)
    assert m.masked_off == {"mito": [5], "nuc": [37]}
    # a custom class table that names id 5 "cyto" (a class the crop lists):
    # then {3, 4, 5} is annotated
    table = tmp_path / "t.csv"
    rows = labelbin.builtin_classes()
    with open(table, "w") as f:
        for n, i, mem in rows:
            name = {5: "cyto", 35: "mito_ribo"}.get(i, n)
            f.write('%s,%d,"%s"\n' % (name, i, ",".join(map(str, mem))))
    rc, out, err = lb("mask", path + "/all/s0", tmp_path / "a2.zarr/mask", *gargs(groups[:1]),
                      "--classes", table)
    assert rc == 0, err
    assert np.array_equal(zarr.open(str(tmp_path / "a2.zarr/mask"), "r")[0], truth > 0)


# ---------------------------------------------------------------------------
# stats
# ---------------------------------------------------------------------------

def test_stats_per_class(crops):
    path, classes = crops["A"]
    rc, out, err = lb("stats", "--json", path)
    assert rc == 0, err
    d = json.loads(out)
    assert d["kind"] == "crop" and d["per"] == "class"
    n = int(np.prod(SHAPE))
    assert d["voxels"] == n
    for row, c, (p, a) in zip(d["rows"], classes, per_class_oracle(classes)):
        assert row["name"] == c["name"]
        assert (row["present"], row["absent"], row["unknown"]) == \
            (int(p.sum()), int(a.sum()), int(n - p.sum() - a.sum()))
        assert abs(row["present_share"] - p.sum() / n) < 1e-6
    rc, out, _ = lb("stats", path)
    assert rc == 0 and "mito_mem" in out and "present" in out


@pytest.mark.parametrize("infer", [False, True])
def test_stats_groups(crops, infer):
    path, classes = crops["A"]
    extra = ["--infer-negatives"] if infer else []
    rc, out, err = lb("stats", "--json", path, *gargs(GROUPS), *extra, "-j", "3")
    assert rc == 0, err
    rows = json.loads(out)["rows"]
    py = labelbin.stats(labelbin.Crop(path), GROUPS, infer_negatives=infer)
    for row, prow, (et, em), g in zip(rows, py, oracle(classes, GROUPS, infer), GROUPS):
        exp = (int(et.sum()), int((em & ~et).sum()), int((~em).sum()))
        assert (row["present"], row["absent"], row["unknown"]) == exp, g
        assert (prow["present"], prow["absent"], prow["unknown"]) == exp, g
        assert row["ids"] == g[1]


def test_stats_label_array(crops, tmp_path):
    truth = crops["truth"]
    z = zarr.open(str(tmp_path / "l.zarr"), "w", shape=truth.shape, chunks=(8, 8, 8),
                  dtype="uint16")
    z[...] = truth
    z.attrs.update({"resolution": [4, 4, 4], "offset": [0, 0, 0],
                    "labels": [{"value": 3, "annotationState": {"present": True,
                                                                "annotated": True}},
                               {"value": 35, "annotationState": {"present": True,
                                                                 "annotated": False}}]})
    groups = [("mito", [3, 4]), ("cyto", [35])]
    rc, out, err = lb("stats", "--json", tmp_path / "l.zarr", *gargs(groups))
    assert rc == 0, err
    rows = json.loads(out)["rows"]
    known = truth > 0
    mito = np.isin(truth, [3, 4])
    assert (rows[0]["present"], rows[0]["absent"], rows[0]["unknown"]) == \
        (int(mito.sum()), int((known & ~mito).sum()), int((~known).sum()))
    # cyto (35) is present but not annotated: the whole channel is unknown
    assert (rows[1]["present"], rows[1]["absent"], rows[1]["unknown"]) == (0, 0, truth.size)
    rc, _, err = lb("stats", tmp_path / "l.zarr")
    assert rc == 2 and "needs groups" in one_line(err)
    py = labelbin.stats(str(tmp_path / "l.zarr"), groups)
    assert [r["present"] for r in py] == [rows[0]["present"], 0]


# ---------------------------------------------------------------------------
# check: clean and broken crops
# ---------------------------------------------------------------------------

def test_check_clean(crops):
    for key in ("A", "B"):
        path, _ = crops[key]
        rc, out, err = lb("check", path)
        assert rc == 0, out + err
        assert "0 errors" in out
    # C: classes at different voxel sizes: a warning, exit 0
    path, _ = crops["C"]
    rc, out, err = lb("check", "--json", path)
    assert rc == 0, out
    d = json.loads(out)
    assert d["errors"] == 0
    assert [f["code"] for f in d["findings"]] == ["voxel-sizes-differ"]


def broken(tmp_path, name, mutate, truth=None):
    """A small clean crop, then `mutate(crop_path)`."""
    if truth is None:
        truth = np.full((8, 8, 8), 35, np.uint16)
        truth[:4] = 1
        truth[4:, :4] = 3
        truth[4:, 4:, :4] = 4
    classes = [
        {"name": "ecs", "data": semantic(truth, "ecs", S3), "encoding": S3},
        {"name": "mito_mem", "data": semantic(truth, "mito_mem", S3), "encoding": S3},
        {"name": "mito", "type": "instance", "encoding": {"absent": 0, "unknown": 255},
         "data": instances(truth, "mito", {"absent": 0, "unknown": 255})},
    ]
    path = write_crop(tmp_path / (name + ".zarr"), "crop", classes, offset=(0, 0, 0),
                      all_ids=truth, chunks=(4, 4, 4))
    mutate(pathlib.Path(path), truth)
    return path


def edit_attrs(p, fn):
    with open(p) as f:
        d = json.load(f)
    fn(d)
    with open(p, "w") as f:
        json.dump(d, f)


def _rm_class(p, truth):
    shutil.rmtree(p / "mito_mem")


def _extra_group(p, truth):
    zarr.open_group(str(p), "a").create_group("stray")


def _bad_key(p, truth):
    edit_attrs(p / "ecs/.zattrs", lambda d: d["cellmap"]["annotation"]["annotation_type"][
        "encoding"].update({"maybe": 3}))


def _outside(p, truth):
    z = zarr.open(str(p / "ecs/s0"), "a")
    z[0, 0, :3] = 7


def _instance_unknown(p, truth):
    z = zarr.open(str(p / "mito/s0"), "a")
    z[0, 0, 0] = 255       # an instance id equal to `unknown`
    z[0, 0, 1] = 300 if z.dtype.itemsize > 1 else 254


def _counts(p, truth):
    edit_attrs(p / "mito_mem/s0/.zattrs", lambda d: d["cellmap"]["annotation"][
        "complement_counts"].update({"absent": 1}))


def _empty(p, truth):
    a = zarr.open(str(p / "all/s0"), "a")
    v = a[...]
    v[v == 3] = 4
    a[...] = v
    z = zarr.open(str(p / "mito_mem/s0"), "a")
    z[...] = 0
    z.attrs["cellmap"] = dict(z.attrs["cellmap"], annotation=dict(
        z.attrs["cellmap"]["annotation"], complement_counts={"absent": z.size, "unknown": 0}))
    z1 = zarr.open(str(p / "mito_mem/s1"), "a")
    z1[...] = 0
    z1.attrs["cellmap"] = dict(z1.attrs["cellmap"], annotation=dict(
        z1.attrs["cellmap"]["annotation"], complement_counts={"absent": z1.size, "unknown": 0}))


def _no_multiscales(p, truth):
    edit_attrs(p / "ecs/.zattrs", lambda d: d.pop("multiscales"))


def _bad_offset(p, truth):
    def f(d):
        d["multiscales"][0]["datasets"][1]["coordinateTransformations"][1]["translation"] = \
            [1.0, 2.0, 2.0]
    edit_attrs(p / "ecs/.zattrs", f)


def _bad_shape(p, truth):
    z = zarr.open(str(p / "ecs/s1"), "a")
    z.resize(3, 4, 4)
    edit_attrs(p / "ecs/s1/.zattrs", lambda d: d["cellmap"]["annotation"].update(
        complement_counts=None))


def _all_disagrees(p, truth):
    z = zarr.open(str(p / "all/s0"), "a")
    v = z[...]
    v[v == 1] = 35   # ecs voxels now say cyto in `all`
    z[...] = v


def _not_a_crop(p, truth):
    edit_attrs(p / ".zattrs", lambda d: d.pop("cellmap"))


BROKEN = {
    "class-without-group": (_rm_class, "error"),
    "group-not-listed": (_extra_group, "warning"),
    "class-metadata": (_bad_key, "error"),
    "value-outside-encoding": (_outside, "error"),
    "instance-id-is-unknown": (_instance_unknown, "error"),
    "complement-counts": (_counts, "error"),
    "class-empty": (_empty, "warning"),
    "multiscale-missing": (_no_multiscales, "error"),
    "multiscale-offset": (_bad_offset, "warning"),
    "level-shape": (_bad_shape, "error"),
    "all-disagrees": (_all_disagrees, "error"),
    "not-a-crop": (_not_a_crop, "error"),
}


@pytest.mark.parametrize("code", sorted(BROKEN))
def test_check_finds(tmp_path, code):
    mutate, level = BROKEN[code]
    path = broken(tmp_path, code, mutate)
    rc, out, err = lb("check", "--json", path)
    d = json.loads(out)
    codes = {f["code"]: f for f in d["findings"]}
    assert code in codes, d
    f = codes[code]
    assert f["level"] == level
    assert f["path"].startswith(path) or f["path"].startswith(os.path.dirname(path)), f
    assert rc == (1 if d["errors"] else 0)
    if level == "warning":
        assert d["errors"] == 0, d
    # one line per finding in the text form, and the Python function agrees
    rc2, text, _ = lb("check", path)
    assert rc2 == rc
    assert any(l.startswith(level + ": ") and l.endswith("[%s]" % code)
               for l in text.splitlines())
    assert code in [x["code"] for x in labelbin.check(path)]


def test_check_complement_message(tmp_path):
    path = broken(tmp_path, "cc", _counts)
    rc, out, _ = lb("check", path)
    assert rc == 1
    line = [l for l in out.splitlines() if "[complement-counts]" in l][0]
    assert "complement_counts.absent is 1 but the array holds" in line
    assert line.startswith("error: ") and "mito_mem/s0" in line


def test_check_all_message(tmp_path):
    path = broken(tmp_path, "all", _all_disagrees)
    findings = [f for f in labelbin.check(path) if f["code"] == "all-disagrees"]
    assert any("absent in the class array" in f["message"] or
               "hold an id outside it" in f["message"] for f in findings)
    # ecs is present where `all` says 35: the reverse direction
    assert any("present in class \"ecs\"" in f["message"] for f in findings)


def test_check_missing_path(tmp_path):
    rc, _, err = lb("check", tmp_path / "nothing.zarr/crop")
    assert rc == 1 and "no such crop" in one_line(err)


# ---------------------------------------------------------------------------
# Hostile metadata: refused with the JSON path
# ---------------------------------------------------------------------------

def _crop_attrs(fn):
    def m(p, truth):
        edit_attrs(p / ".zattrs", lambda d: fn(d["cellmap"]["annotation"]))
    return m


def _class_attrs(fn, cls="ecs"):
    def m(p, truth):
        edit_attrs(p / cls / ".zattrs", lambda d: fn(d["cellmap"]["annotation"]))
    return m


def _array_attrs(fn, cls="ecs"):
    def m(p, truth):
        edit_attrs(p / cls / "s0/.zattrs", lambda d: fn(d["cellmap"]["annotation"]))
    return m


HOSTILE = {
    "class_names_not_list": (_crop_attrs(lambda a: a.update(class_names="ecs")),
                             "cellmap.annotation.class_names: expected an array"),
    "class_name_int": (_crop_attrs(lambda a: a.update(class_names=["ecs", 3])),
                       "cellmap.annotation.class_names[1]: expected a string"),
    "class_name_dotdot": (_crop_attrs(lambda a: a.update(class_names=["ecs", ".."])),
                          "cellmap.annotation.class_names[1]: \"..\" cannot name a class group"),
    "class_name_slash": (_crop_attrs(lambda a: a.update(class_names=["../../etc"])),
                         "cellmap.annotation.class_names[0]: \"../../etc\" cannot name"),
    "class_name_twice": (_crop_attrs(lambda a: a.update(class_names=["ecs", "ecs"])),
                         "cellmap.annotation.class_names[1]: \"ecs\" is listed twice"),
    "crop_unknown_key": (_crop_attrs(lambda a: a.update(clas_names=["ecs"])),
                         "cellmap.annotation: unknown key \"clas_names\""),
    "duration_type": (_crop_attrs(lambda a: a.update(duration_days="3")),
                      "cellmap.annotation.duration_days: expected an integer"),
    "encoding_duplicate": (_class_attrs(lambda a: a["annotation_type"]["encoding"].update(
        unknown=1)), "annotation_type.encoding: \"present\" and \"unknown\" both use the value 1"),
    "encoding_string": (_class_attrs(lambda a: a["annotation_type"]["encoding"].update(
        absent="0")), "annotation_type.encoding.absent: expected an integer"),
    "encoding_key": (_class_attrs(lambda a: a["annotation_type"]["encoding"].update(maybe=3)),
                     "annotation_type.encoding: unknown key \"maybe\""),
    "type_unknown": (_class_attrs(lambda a: a["annotation_type"].update(type="points")),
                     "annotation_type.type: unknown annotation type \"points\""),
    "type_key": (_class_attrs(lambda a: a["annotation_type"].update(extra=1)),
                 "annotation_type: unknown key \"extra\""),
    "instance_present": (_class_attrs(lambda a: a["annotation_type"]["encoding"].update(
        present=5), cls="mito"), "has no \"present\" value"),
    "class_name_other": (_class_attrs(lambda a: a.update(class_name="pm")),
                         "cellmap.annotation.class_name: \"pm\", but the group is the class "
                         "\"ecs\""),
    "counts_negative": (_array_attrs(lambda a: a["complement_counts"].update(absent=-1)),
                        "complement_counts.absent: expected a count >= 0"),
    "counts_key": (_array_attrs(lambda a: a["complement_counts"].update(maybe=1)),
                   "complement_counts: unknown key \"maybe\""),
    "level_encoding": (_array_attrs(lambda a: a["annotation_type"]["encoding"].update(
        unknown=254)), "differs from its class group's"),
    "value_too_big": (lambda p, t: (_class_attrs(lambda a: a["annotation_type"][
        "encoding"].update(unknown=256))(p, t), _array_attrs(lambda a: a["annotation_type"][
            "encoding"].update(unknown=256))(p, t)),
        "the encoding's unknown value 256 does not fit the array's dtype uint8"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_metadata(tmp_path, case):
    mutate, msg = HOSTILE[case]
    path = broken(tmp_path, case, mutate)
    rc, out, err = lb("info", path)
    assert rc == 1, out
    line = one_line(err)
    assert msg in line, line
    assert ".zattrs" in line or "dtype" in line
    with pytest.raises(labelbin.FormatError) as e:
        labelbin.Crop(path)
    assert msg in str(e.value)
    rc, _, err = lb("binarize", path, tmp_path / "o.zarr/x", "-g", "e=1")
    assert rc == 1 and msg in one_line(err)
    assert not (tmp_path / "o.zarr").exists()
    # check reports it as an error finding and exits 1
    rc, out, _ = lb("check", path)
    assert rc == 1 and msg in out


def test_hostile_missing_class_group(tmp_path):
    path = broken(tmp_path, "missing", _rm_class)
    rc, _, err = lb("info", path)
    assert rc == 1
    assert "class \"mito_mem\" is listed in class_names but the crop has no group of that " \
           "name" in one_line(err)


# ---------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------

def test_run_config(crops, tmp_path):
    path, classes = crops["A"]
    file_name, dataset = path.split(".zarr/")
    groups = [["mito", [3, 4, 5]], ["ecs", [1]]]
    cfg = {"__type__": "BinarizeArrayConfig", "name": "gt", "groupings": groups,
           "infer_negatives": True, "unknown": 255,
           "source_array_config": {"__type__": "CellMapCropConfig", "name": "cropA",
                                   "file_name": file_name + ".zarr", "dataset": dataset,
                                   "voxel_size": [4, 4, 4]}}
    f = tmp_path / "c.json"
    f.write_text(json.dumps(cfg))
    rc, _, err = lb("run", f, tmp_path / "run.zarr/gt")
    assert rc == 0, err
    z = zarr.open(str(tmp_path / "run.zarr/gt"), "r")
    for i, (et, em) in enumerate(oracle(classes, [tuple(g) for g in groups], True)):
        assert np.array_equal(z[i], np.where(et, 1, np.where(em, 0, 255)))
    # the same through Python, from the config
    a = labelbin.from_config(cfg)
    assert np.array_equal(a[a.roi], z[...])
    # refusals name the JSON path
    bad = json.loads(json.dumps(cfg))
    bad["source_array_config"]["voxelsize"] = [4, 4, 4]
    f.write_text(json.dumps(bad))
    rc, _, err = lb("run", f, tmp_path / "run2.zarr/gt")
    assert rc == 1
    assert "BinarizeArrayConfig.source_array_config: unknown key \"voxelsize\"" in one_line(err)
    bad = json.loads(json.dumps(cfg))
    bad["source_array_config"] = {"__type__": "ZarrArrayConfig", "name": "l",
                                  "file_name": file_name + ".zarr",
                                  "dataset": dataset + "/all/s0"}
    f.write_text(json.dumps(bad))
    rc, _, err = lb("run", f, tmp_path / "run3.zarr/gt")
    assert rc == 1 and "BinarizeArrayConfig.infer_negatives: applies to a crop source" \
        in one_line(err)
    bad = json.loads(json.dumps(cfg))
    bad["unknown"] = 1
    f.write_text(json.dumps(bad))
    rc, _, err = lb("run", f, tmp_path / "run4.zarr/gt")
    assert rc == 1 and "BinarizeArrayConfig.unknown: 1: the unknown value must be from 2 " \
        "to 255" in one_line(err)
    rc, _, err = lb("run", "-", tmp_path / "run5.zarr/gt",
                    stdin=json.dumps(cfg["source_array_config"]))
    assert rc != 0 and "is a crop, not an array" in one_line(err)


def test_mask_config_per_class(crops):
    path, classes = crops["A"]
    file_name, dataset = path.split(".zarr/")
    cfg = {"__type__": "MissingAnnotationsMaskConfig", "name": "m", "groupings": None,
           "source_array_config": {"__type__": "CellMapCropConfig", "name": "cropA",
                                   "file_name": file_name + ".zarr", "dataset": dataset}}
    m = labelbin.from_config(cfg)
    got = m[m.roi]
    for i, (p, a) in enumerate(per_class_oracle(classes)):
        assert np.array_equal(got[i], p | a)


# ---------------------------------------------------------------------------
# CLI usage errors: exit 2, one line
# ---------------------------------------------------------------------------

def test_usage_errors(crops, tmp_path):
    path, _ = crops["A"]
    label_array = path + "/all/s0"
    cases = [
        (["binarize", path, tmp_path / "u.zarr/x", "-g", "m=3", "--background", "2"],
         "--background: a crop has no background id"),
        (["binarize", label_array, tmp_path / "u.zarr/x", "-g", "m=3", "--infer-negatives"],
         "apply to a crop SOURCE"),
        (["binarize", label_array, tmp_path / "u.zarr/x", "-g", "m=3", "--classes", "x.csv"],
         "--classes applies to a crop SOURCE"),
        (["run", tmp_path / "c.json", tmp_path / "u.zarr/x", "--infer-negatives"],
         "the crop options of 'run' come from the config"),
        (["stats", path, "--unknown", "255"], "--unknown: stats counts unknown voxels itself"),
        (["info", label_array, "--classes", "x.csv"], "--classes applies to a CellMap crop"),
        (["check"], "expected CROP"),
        (["stats"], "expected SOURCE"),
    ]
    for args, msg in cases:
        rc, out, err = lb(*args)
        assert rc == 2, (args, err)
        assert msg in one_line(err), (args, err)
    assert not (tmp_path / "u.zarr").exists()


def test_classes_option(crops, tmp_path):
    path, _ = crops["A"]
    rc, _, err = lb("info", path, "--classes", tmp_path / "missing.csv")
    assert rc == 1 and "missing.csv" in one_line(err)
    bad = tmp_path / "bad.csv"
    bad.write_text('ecs,1,""\necs,2,""\n')
    rc, _, err = lb("binarize", path, tmp_path / "c.zarr/x", "-g", "e=1", "--classes", bad)
    assert rc == 1 and "bad.csv:2: class \"ecs\" is listed twice" in one_line(err)
    # a table where ecs is id 1001: -g e=1 finds no class, e=1001 finds ecs
    table = tmp_path / "t.csv"
    table.write_text('ecs,1001,""\nmito_mem,3,""\n')
    rc, out, err = lb("info", "--json", path, "--classes", table)
    assert rc == 0, err
    by = {c["name"]: c for c in json.loads(out)["classes"]}
    assert by["ecs"]["id"] == 1001 and by["pm"]["id"] is None
    t = labelbin.BinarizeArray(path, [("e", [1001])], classes=str(table))
    crop = labelbin.Crop(path)
    assert np.array_equal(t[t.roi][0], crop["ecs"] and
                          zarr.open(path + "/ecs/s0", "r")[...] == 1)


def test_help_and_commands():
    for cmd in ("check", "stats"):
        rc, out, err = lb(cmd, "--help")
        assert rc == 0 and "Usage: labelbin " + cmd in out and "Examples" in out
    rc, out, _ = lb("--help")
    assert "  check " in out and "  stats " in out
    rc, _, err = lb("chek")
    assert rc == 2 and "did you mean 'check'" in err


# ---------------------------------------------------------------------------
# The worked examples of docs/semantics.md §5, value for value
# ---------------------------------------------------------------------------

def test_semantics_worked_examples(tmp_path):
    row = lambda *v: np.array(v, np.uint8).reshape(1, 1, 6)  # noqa: E731
    classes = [
        {"name": "mito_mem", "data": row(1, 0, 0, 255, 255, 0), "encoding": S3},
        {"name": "mito_lum", "data": row(0, 1, 0, 0, 0, 0), "encoding": S2},
        {"name": "ecs", "data": row(0, 0, 1, 0, 1, 255), "encoding": S3},
    ]
    path = write_crop(tmp_path / "doc.zarr", "crop", classes, offset=(0, 0, 0), levels=1,
                      all_ids=row(3, 4, 0, 0, 0, 0).astype(np.uint16), chunks=(1, 1, 6))
    crop = labelbin.Crop(path)

    def rows(groups, three=False, infer=False):
        if three:
            a = labelbin.BinarizeArray(crop, groups, unknown=255, infer_negatives=infer)
            return [list(map(int, a[a.roi][i].ravel())) for i in range(len(groups))]
        t = labelbin.BinarizeArray(crop, groups, infer_negatives=infer)
        m = labelbin.MissingAnnotationsMask(crop, groups, infer_negatives=infer)
        return [(list(map(int, t[t.roi][i].ravel())), list(map(int, m[m.roi][i].ravel())))
                for i in range(len(groups))]

    # rule 1 (states, via three-state single ids)
    assert rows([("a", [3]), ("b", [4]), ("c", [1]), ("d", [5])], three=True) == [
        [1, 0, 0, 255, 255, 0], [0, 1, 0, 0, 0, 0], [0, 0, 1, 0, 1, 255], [255] * 6]
    # rules 2 and 3
    assert rows([("m", [3, 4, 5]), ("m2", [3, 4])]) == [
        ([1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0]), ([1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 1])]
    # rule 4, from members
    assert rows([("m", [50])]) == [([1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0])]
    # rule 5
    assert rows([("m", [3, 4, 5])], infer=True) == [([1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 1, 0])]
    # rule 6
    assert rows([("any", [])]) == [([1, 1, 1, 0, 1, 0], [1, 1, 1, 0, 1, 0])]
    # rule 8
    assert rows([("m", [3, 4, 5])], three=True, infer=True) == [[1, 1, 0, 255, 0, 255]]
    rc, _, err = lb("binarize", path, tmp_path / "o.zarr/c", "-g", "m=3,4,5", "--unknown",
                    "255", "--infer-negatives")
    assert rc == 0, err
    cc = zarr.open(str(tmp_path / "o.zarr/c/m/s0"), "r").attrs["cellmap"]["annotation"][
        "complement_counts"]
    assert cc == {"absent": 2, "unknown": 2, "present": 2}
    # rule 10
    m = labelbin.MissingAnnotationsMask(path + "/all/s0",
                                        [("a", [3, 4, 5]), ("b", [3, 4]), ("c", [50])])
    assert [list(map(int, v.ravel())) for v in m[m.roi]] == [
        [0] * 6, [1, 1, 0, 0, 0, 0], [0] * 6]
    # rules 11 and 12
    (mm,) = [r for r in labelbin.stats(crop) if r["name"] == "mito_mem"]
    assert (mm["present"], mm["absent"], mm["unknown"]) == (1, 3, 2)
    (g,) = labelbin.stats(crop, [("m", [3, 4, 5])])
    assert (g["present"], g["absent"], g["unknown"]) == (2, 0, 4)
    (g,) = labelbin.stats(crop, [("m", [3, 4, 5])], infer_negatives=True)
    assert (g["present"], g["absent"], g["unknown"]) == (2, 2, 2)
    # rule 4 with the group class's own (instance) array
    inst = classes + [{"name": "mito", "type": "instance", "data": row(7, 7, 0, 0, 255, 0),
                       "encoding": {"absent": 0, "unknown": 255}}]
    path2 = write_crop(tmp_path / "doc2.zarr", "crop", inst, offset=(0, 0, 0), levels=1,
                       chunks=(1, 1, 6))
    crop = labelbin.Crop(path2)
    assert rows([("m", [50])]) == [([1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 1])]
    # rule 7: a value outside the encoding is unknown
    z = zarr.open(path2 + "/mito_mem/s0", "a")
    z[0, 0, 0] = 7
    assert rows([("a", [3])], three=True) == [[255, 0, 0, 255, 255, 0]]


def test_bench_smoke():
    """bench/bench_crops.py runs (tiny) and agrees with its numpy rule."""
    p = subprocess.run([sys.executable, str(HERE.parent / "bench" / "bench_crops.py"), "--smoke"],
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=str(BUILD / "python")))
    assert p.returncode == 0, p.stderr
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    assert [l["infer_negatives"] for l in lines] == [False, True]


def test_three_state_resume(crops, tmp_path):
    path, classes = crops["A"]
    groups = [("mito", [3, 4, 5]), ("ecs", [1])]
    dest = tmp_path / "res.zarr/out"
    rc, _, err = lb("binarize", path, dest, *gargs(groups), "--unknown", "255")
    assert rc == 0, err
    before = json.loads((dest / "ecs/s0/.zattrs").read_text())
    # other options: refused, and the finished output stays finished
    rc, _, err = lb("binarize", path, dest, *gargs(groups), "--unknown", "255", "--resume",
                    "--infer-negatives")
    assert rc == 1 and "labelbin.crop\" differs" in one_line(err)
    assert "complete" not in json.loads((dest / ".zattrs").read_text())["labelbin"]
    assert labelbin.check(dest) == []
    # an interrupted run (a group missing, the crop marked unfinished)
    shutil.rmtree(dest / "ecs")
    edit_attrs(dest / ".zattrs", lambda d: d["labelbin"].update(complete=False))
    rc, _, err = lb("info", dest)
    assert rc == 1 and "unfinished labelbin output" in one_line(err)
    rc, _, err = lb("binarize", path, dest, *gargs(groups), "--unknown", "255", "--resume")
    assert rc == 0, err
    after = json.loads((dest / "ecs/s0/.zattrs").read_text())
    assert after["cellmap"] == before["cellmap"]
    # every block of mito was already there: its counts are recounted
    mito = json.loads((dest / "mito/s0/.zattrs").read_text())["cellmap"]["annotation"]
    (et, em), = oracle(classes, groups[:1])
    assert mito["complement_counts"] == {"absent": int((em & ~et).sum()),
                                         "unknown": int((~em).sum()),
                                         "present": int(et.sum())}
    assert labelbin.check(dest) == []


def _doc_section(doc, title):
    start = doc.index("## " + title + "\n")
    nxt = doc.find("\n## ", start + 1)
    return doc[start:nxt if nxt >= 0 else len(doc)]


@pytest.mark.parametrize("cmd", ["check", "stats"])
def test_options_documented(cmd):
    import re
    doc = (HERE.parent / "docs" / "cli.md").read_text()
    text = _doc_section(doc, "labelbin " + cmd)
    rc, out, _ = lb(cmd, "--help")
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", out)) - {"--help"}
    assert options
    missing = sorted(o for o in options if o not in text and o not in ("--quiet",))
    assert not missing, missing


# ---------------------------------------------------------------------------
# A crop over HTTP: nginx on loopback (as tests/py_remote.py), every result
# compared byte for byte with the same crop read from disk
# ---------------------------------------------------------------------------

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                  else None)


def _paths_as(obj, prefix):
    """`obj` (parsed JSON) with `prefix` written CROP in every string."""
    if isinstance(obj, dict):
        return {k: _paths_as(v, prefix) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_paths_as(v, prefix) for v in obj]
    return obj.replace(prefix, "CROP") if isinstance(obj, str) else obj


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian's nginx; "
                    "scripts/install-deps installs it)")
def test_crop_over_http(crops, tmp_path):
    import tempfile
    sys.path.insert(0, str(HERE / "remote"))
    import datasets  # noqa: E402
    import servers  # noqa: E402
    local, classes = crops["A"]
    # nginx's workers read as `nobody`: serve a copy outside pytest's 0700 tree
    served = tempfile.mkdtemp(prefix="lb-crop-http-")
    try:
        shutil.copytree(crops["root"] / "data.zarr", os.path.join(served, "data.zarr"))
        rel = os.path.relpath(local, crops["root"])
        with servers.Nginx(served) as web:
            url = web.url + "/" + rel
            env = servers.env()

            def lbe(*args):
                p = subprocess.run([LABELBIN, *map(str, args)], capture_output=True, text=True,
                                   env=env, timeout=300)
                return p.returncode, p.stdout, p.stderr

            # info: the same text but for the path line; the same JSON but the path
            rc, r_out, err = lbe("info", url)
            assert rc == 0, err
            rc, l_out, err = lbe("info", local)
            assert rc == 0, err
            assert r_out.replace(url, "CROP") == l_out.replace(local, "CROP")
            rc, r_js, _ = lbe("info", "--json", url)
            rc2, l_js, _ = lbe("info", "--json", local)
            r_js, l_js = json.loads(r_js), json.loads(l_js)
            assert r_js["path"] == url and l_js["path"] == local
            assert _paths_as(r_js, url) == _paths_as(l_js, local)
            assert r_js["format"] == "cellmap-crop"
            # binarize (0/1 and three-state), mask, mask over all/s0: same bytes
            groups = gargs(GROUPS)
            runs = [("binarize", "gt", [], url, local),
                    ("binarize", "gti", ["--infer-negatives"], url, local),
                    ("mask", "mask", ["--infer-negatives"], url, local),
                    ("mask", "mall", [], url + "/all/s0", local + "/all/s0")]
            for kind, name, extra, src_r, src_l in runs:
                a, b = tmp_path / ("r.zarr/" + name), tmp_path / ("l.zarr/" + name)
                rc, _, err = lbe(kind, "-q", "-j2", src_r, a, *groups, *extra)
                assert rc == 0, err
                rc, _, err = lbe(kind, "-q", "-j2", src_l, b, *groups, *extra)
                assert rc == 0, err
                datasets.assert_same_output(str(a), str(b))
            a, b = tmp_path / "r3.zarr/pred", tmp_path / "l3.zarr/pred"
            rc, _, err = lbe("binarize", "-q", url, a, *gargs(GROUPS[:4]), "--unknown", "255")
            assert rc == 0, err
            rc, _, err = lbe("binarize", "-q", local, b, *gargs(GROUPS[:4]), "--unknown", "255")
            assert rc == 0, err
            fa, fb = datasets.chunk_files(str(a)), datasets.chunk_files(str(b))
            assert sorted(fa) == sorted(fb)
            for k in fa:
                if k.endswith(".zattrs"):
                    ja, jb = json.loads(fa[k]), json.loads(fb[k])
                    for j in (ja, jb):
                        (j.get("labelbin") or {}).pop("source", None)
                    assert ja == jb, k
                else:
                    assert fa[k] == fb[k], k
            # and the expected values, from the numpy rule
            for i, (et, em) in enumerate(oracle(classes, GROUPS[:4])):
                got = zarr.open(str(a / GROUPS[i][0] / "s0"), "r")[...]
                assert np.array_equal(got, np.where(et, 1, np.where(em, 0, 255)))
            # stats: the same rows
            rc, r_st, err = lbe("stats", "--json", url, *groups, "--infer-negatives")
            assert rc == 0, err
            rc, l_st, err = lbe("stats", "--json", local, *groups, "--infer-negatives")
            assert rc == 0, err
            r_st, l_st = json.loads(r_st), json.loads(l_st)
            assert r_st["source"] == url and l_st["source"] == local
            assert _paths_as(r_st, url) == _paths_as(l_st, local)
            # check: the same findings, plus one warning that groups cannot be
            # listed over HTTP
            rc, r_ck, err = lbe("check", "--json", url)
            assert rc == 0, err
            rc, l_ck, err = lbe("check", "--json", local)
            assert rc == 0, err
            r_f = _paths_as(json.loads(r_ck)["findings"], url)
            l_f = _paths_as(json.loads(l_ck)["findings"], local)
            assert [f for f in r_f if f["code"] != "groups-not-listable"] == l_f
            assert [f["path"] for f in r_f if f["code"] == "groups-not-listable"] == ["CROP"]
            # A URL with a password: the same results, the password nowhere in
            # what is printed or written (messages, -v lines, JSON, provenance).
            secret = url.replace("://", "://reader:s3cr3tpw@", 1)
            shown = []
            for args in (["info", secret], ["info", "--json", secret],
                         ["stats", "--json", secret, *groups], ["check", "--json", secret],
                         ["check", "-v", secret],
                         ["binarize", "-v", "-j2", secret, tmp_path / "s.zarr/gt", *groups],
                         ["binarize", "-q", secret, tmp_path / "s3.zarr/gt", *gargs(GROUPS[:4]),
                          "--unknown", "255"],
                         ["mask", "-v", secret, tmp_path / "s.zarr/mask", *groups],
                         ["info", secret + "/no-such-class"]):
                rc, out, err = lbe(*args)
                shown.append(out + err)
                assert rc == (1 if args[-1].endswith("no-such-class") else 0), err
            for d in ("s.zarr", "s3.zarr"):
                for k, v in datasets.chunk_files(str(tmp_path / d)).items():
                    if k.endswith((".zattrs", ".zarray", ".zgroup", "zarr.json")):
                        shown.append(v.decode())
            assert not [t for t in shown if "s3cr3tpw" in t], shown
            # Python: Crop(url), a BinarizeArray over it, the same voxels
            env_keep = dict(os.environ)
            os.environ.update(env)
            try:
                cu = labelbin.Crop(url)
                assert cu.class_names == labelbin.Crop(local).class_names
                t_r = labelbin.BinarizeArray(cu, GROUPS, infer_negatives=True)
                t_l = labelbin.BinarizeArray(labelbin.Crop(local), GROUPS, infer_negatives=True)
                assert np.array_equal(t_r[t_r.roi], t_l[t_l.roi])
                m_r = labelbin.MissingAnnotationsMask(url, GROUPS)
                m_l = labelbin.MissingAnnotationsMask(local, GROUPS)
                assert np.array_equal(m_r[m_r.roi], m_l[m_l.roi])
            finally:
                os.environ.clear()
                os.environ.update(env_keep)
    finally:
        shutil.rmtree(served, ignore_errors=True)


# ---------------------------------------------------------------------------
# Previews of a crop: every class (or group) drawn, checked pixel by pixel
# against tests/py_preview.py's independent rendering of the documented rule
# ---------------------------------------------------------------------------

def test_preview_crop(crops, tmp_path):
    sys.path.insert(0, str(HERE))
    import py_preview as pv  # noqa: E402
    path, classes = crops["A"]
    truth = crops["truth"]
    k = SHAPE[0] // 2                     # the middle section across z
    sec = truth[k]
    h, w = sec.shape
    names = [c["name"] for c in classes]
    present = np.stack([p[k] for p, _ in per_class_oracle(classes)])
    # no groups: every class of the crop, over the dense ids of all/s0
    rc, out, err = lb("preview", path, "-o", tmp_path / "a.png", "-q")
    assert rc == 0, err
    exp = pv.Expected([pv.render_panel(sec, present, None, w, h, 0, len(names))], w, h,
                      names=names, has_ov=True)
    exp.check(pv.decode_png(tmp_path / "a.png"))
    # groups, by the three-valued rule (inferred negatives change nothing drawn:
    # only present voxels are); one panel per group with --grid
    groups = GROUPS[:3]
    rc, out, err = lb("preview", path, "-o", tmp_path / "g.png", "-q", "--grid",
                      *gargs(groups), "--infer-negatives")
    assert rc == 0, err
    tg = np.stack([t[k] for t, _ in oracle(classes, groups, infer=True)])
    gnames = [n for n, _ in groups]
    pv.Expected([pv.render_panel(sec, None, None, w, h, 0, 0)] +
                [pv.render_panel(sec, tg, None, w, h, c, c + 1) for c in range(len(groups))],
                w, h, titles=["labels"] + gnames, names=gnames, has_ov=True).check(
        pv.decode_png(tmp_path / "g.png"))
    # a single group is still a channel, not a label array
    rc, out, err = lb("preview", path, "-o", tmp_path / "one.png", "-q", *gargs(groups[:1]))
    assert rc == 0, err
    pv.Expected([pv.render_panel(sec, tg[:1], None, w, h, 0, 1)], w, h, names=gnames[:1],
                has_ov=True).check(pv.decode_png(tmp_path / "one.png"))
    # Python: the same picture; a three-state target draws only present as on;
    # a mask over the crop is drawn as stripes where the state is unknown
    crop = labelbin.Crop(path)
    labels = labelbin.ZarrArray(path + "/all/s0")
    t = labelbin.BinarizeArray(crop, None)
    exp.check(t.preview(labels=labels))
    t3 = labelbin.BinarizeArray(crop, groups, unknown=255)
    t01 = labelbin.BinarizeArray(crop, groups)
    assert np.array_equal(t3.preview(labels=labels), t01.preview(labels=labels))
    m = labelbin.MissingAnnotationsMask(crop, groups)
    mk = np.stack([mm[k] for _, mm in oracle(classes, groups)])
    pv.Expected([pv.render_panel(sec, None, mk, w, h, 0, len(groups))], w, h, names=gnames,
                has_mk=True).check(m.preview(labels=labels))
    # refusals: one line each
    rc, _, err = lb("preview", path, "-o", tmp_path / "m.png", "-g", "m=3", "--mask")
    assert rc == 2 and "--mask: a crop's unknown voxels are not drawn" in one_line(err)
    rc, _, err = lb("preview", crops["C"][0], "-o", tmp_path / "c.png")
    assert rc == 2 and "different voxel sizes" in one_line(err)
    rc, _, err = lb("preview", path + "/all/s0", "-o", tmp_path / "x.png", "--voxel-size",
                    "8,8,8")
    assert rc == 2 and "apply to a crop SOURCE" in one_line(err)
    assert not any((tmp_path / n).exists() for n in ("m.png", "c.png", "x.png"))
    # crop C at 8 nm: the classes over black (all/s0 absent there)
    rc, _, err = lb("preview", crops["C"][0], "-o", tmp_path / "c.png", "-q",
                    "--voxel-size", "8,8,8")
    assert rc == 0, err
    cc = crops["C"][1]
    k8 = SHAPE[0] // 4
    pc = np.stack([cc[0]["data"][::2, ::2, ::2][k8] == 1, cc[1]["data"][k8] == 1])
    h8, w8 = pc.shape[1:]
    pv.Expected([pv.render_panel(None, pc, None, w8, h8, 0, 2)], w8, h8,
                names=["mito_mem", "ecs"], has_ov=True).check(pv.decode_png(tmp_path / "c.png"))


def test_check_multiscale_order_and_roi_mismatch(tmp_path):
    """Levels listed coarsest first (a warning), and a class whose arrays
    cover another ROI than the others' at the same voxel size (an error)."""
    def swap(p, truth):
        edit_attrs(p / "ecs/.zattrs", lambda d: d["multiscales"][0]["datasets"].reverse())

    def shift(p, truth):
        def f(d):
            for ds in d["multiscales"][0]["datasets"]:
                t = ds["coordinateTransformations"][1]["translation"]
                ds["coordinateTransformations"][1]["translation"] = [t[0] + 8.0] + t[1:]
        edit_attrs(p / "mito_mem/.zattrs", f)

    path = broken(tmp_path, "order", swap)
    found = {f["code"]: f for f in labelbin.check(path)}
    assert found["multiscale-order"]["level"] == "warning"
    assert found["multiscale-order"]["path"] == os.path.join(path, "ecs", ".zattrs")
    assert "level s0 has the voxel size (4, 4, 4), finer than" in \
        found["multiscale-order"]["message"]
    path = broken(tmp_path, "shift", shift)
    rc, out, _ = lb("check", "--json", path)
    d = json.loads(out)
    found = {f["code"]: f for f in d["findings"]}
    assert rc == 1 and found["roi-mismatch"]["level"] == "error", d
    assert "mito_mem" in found["roi-mismatch"]["message"]
    # and binarize refuses to mix them: the crop's fault (exit 1), not a usage error
    rc, _, err = lb("binarize", path, tmp_path / "o.zarr/x", "-g", "m=3", "-g", "e=1")
    line = one_line(err)
    assert rc == 1 and "cover different ROIs" in line and "mito_mem/s0 [8:40, 0:32, 0:32]" \
        in line, err
    assert not (tmp_path / "o.zarr").exists()
    with pytest.raises(labelbin.FormatError):
        labelbin.BinarizeArray(labelbin.Crop(path), [("m", [3]), ("e", [1])])


# ---------------------------------------------------------------------------
# labelbin-mpi over a crop: the same bytes as labelbin; --unknown refused
# ---------------------------------------------------------------------------

MPIRUN = shutil.which("mpirun")
LABELBIN_MPI = str((BUILD / "labelbin-mpi").resolve())


@pytest.mark.skipif(MPIRUN is None or not os.path.exists(LABELBIN_MPI),
                    reason="mpirun or build/labelbin-mpi missing (openmpi-bin)")
def test_crop_under_mpi(crops, tmp_path):
    sys.path.insert(0, str(HERE / "remote"))
    import datasets  # noqa: E402
    path, classes = crops["A"]
    mpi = [MPIRUN, "--oversubscribe", "--allow-run-as-root", "-n", "2", LABELBIN_MPI]
    for kind in ("binarize", "mask"):
        a, b = tmp_path / ("m.zarr/" + kind), tmp_path / ("l.zarr/" + kind)
        p = subprocess.run([*mpi, kind, "-q", path, str(a), *gargs(GROUPS),
                            "--infer-negatives", "--chunks", "8,8,8"],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        rc, _, err = lb(kind, "-q", path, a.parent.parent / "l.zarr" / kind, *gargs(GROUPS),
                        "--infer-negatives", "--chunks", "8,8,8")
        assert rc == 0, err
        datasets.assert_same_output(str(a), str(b))
        z = zarr.open(str(a), "r")
        for i, (et, em) in enumerate(oracle(classes, GROUPS, infer=True)):
            assert np.array_equal(z[i], et if kind == "binarize" else em), GROUPS[i][0]
    p = subprocess.run([*mpi, "binarize", path, str(tmp_path / "u.zarr/x"), "-g", "m=3",
                        "--unknown", "255"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    assert p.stderr.count("--unknown writes a three-state crop from one process") == 1
    assert not (tmp_path / "u.zarr").exists()
