"""Previews: `labelbin preview`, Array.preview() / save_preview().

Every PNG written is decoded (pypng, Debian's python3-png) and compared
pixel by pixel with an independent rendering of the documented rule
(labelbin.h, "Previews") in numpy, from data read with zarr-python: label
colours, grey labels under overlays, overlay blending, mask stripes,
nearest-neighbour scaling, panels, titles and legend layout (text pixels
are checked to be text-coloured where text goes). Also: colour stability
across processes, the chunks a section reads (lb_array_io_stats against a
count computed here), refusals with one clear line and their exit codes,
and huge sizes refused before anything is allocated.

Run: /usr/bin/python3 -m pytest -q tests/py_preview.py
"""
import hashlib
import json
import math
import os
import resource
import subprocess
import sys

import numpy as np
import png
import pytest
import zarr
from numcodecs import Zstd

import labelbin

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("LB_BUILD_DIR", os.path.join(HERE, "..", "build"))
LABELBIN = os.path.abspath(os.path.join(BUILD, "labelbin"))

# ---------------------------------------------------------------------------
# The rule, written again from the manual
# ---------------------------------------------------------------------------

M64 = (1 << 64) - 1
BG = (32, 32, 32)
TEXT = (224, 224, 224)


def hsv(h, s, v):
    sector, f = (h >> 8) % 6, h & 255
    p = v * (255 - s) // 255
    q = v * (255 - s * f // 255) // 255
    t = v * (255 - s * (255 - f) // 255) // 255
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][sector]


def hue(bits):
    return ((((bits * 0x9E3779B97F4A7C15) & M64) >> 40) * 1536) >> 24


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def label_color(v):
    b = int(v) & M64
    if b == 0:
        return (0, 0, 0)
    m = mix64(b)
    return hsv(hue(b), 170 + m % 86, 200 + (m >> 8) % 56)


def group_color(i):
    return hsv(hue(i), 255, 255)


def glyphs(text, limit=48):
    """Code points drawn (the font draws one glyph per code point)."""
    return min(len(text), limit)


def colour_image(lab):
    """RGB of every label in a 2-D array of ids."""
    ids, inv = np.unique(lab, return_inverse=True)
    lut = np.array([label_color(int(i)) for i in ids], dtype=np.int64).reshape(-1, 3)
    return lut[inv.reshape(lab.shape)]


def grey_image(vals, lo, hi):
    g = np.zeros(vals.shape, dtype=np.int64)
    fin = np.isfinite(vals)
    if hi > lo:
        g[fin] = np.floor((vals[fin].astype(np.float64) - lo) * 255.0 / (hi - lo))
    else:
        g[fin] = 128
    return np.repeat(g[..., None], 3, axis=2)


def render_panel(lab, ov, mk, pw, ph, c0, c1, frange=None):
    """One panel: lab (rows, cols) ids or floats or None; ov / mk (C, rows,
    cols) bool or None (mk: True = kept); channels [c0, c1)."""
    shape = (lab if lab is not None else (ov if ov is not None else mk)[0]).shape
    n_r, n_c = shape
    ry = np.arange(ph) * n_r // ph
    cx = np.arange(pw) * n_c // pw
    if lab is None:
        px = np.zeros((ph, pw, 3), dtype=np.int64)
    elif frange is not None:
        px = grey_image(lab[np.ix_(ry, cx)], *frange)
    else:
        px = colour_image(lab[np.ix_(ry, cx)])
    if c1 <= c0:
        return px
    g = ((77 * px[..., 0] + 150 * px[..., 1] + 29 * px[..., 2]) >> 8) >> 1
    px = np.repeat(g[..., None], 3, axis=2)
    if ov is not None:
        for c in range(c0, c1):
            on = ov[c][np.ix_(ry, cx)]
            col = np.array(group_color(c))
            px = np.where(on[..., None], (3 * col + px) >> 2, px)
    if mk is not None:
        off = np.stack([~mk[c][np.ix_(ry, cx)] for c in range(c0, c1)])
        n_off = off.sum(axis=0)
        dim = n_off == (c1 - c0)
        px = np.where(dim[..., None], px >> 1, px)
        yy, xx = np.mgrid[0:ph, 0:pw]
        diag = ((xx + yy) % 6 == 0) & (n_off > 0)
        k = np.where(n_off > 0, ((xx + yy) // 6) % np.maximum(n_off, 1), 0)
        which = np.argmax(np.cumsum(off, axis=0) == (k + 1)[None], axis=0)
        cols = np.array([group_color(c) for c in range(c0, c1)])
        px = np.where(diag[..., None], cols[which], px)
    return px


class Expected:
    """The whole picture: panels, title bars, legend; text boxes are
    checked apart (text or background pixels only, some text)."""

    def __init__(self, panels, pw, ph, titles=None, names=(), has_ov=False, has_mk=False):
        self.n = len(panels)
        self.cols = math.ceil(math.sqrt(self.n))
        self.rows = -(-self.n // self.cols)
        self.pw, self.ph = pw, ph
        self.title_h = 11 if titles else 0
        legend_rows = len(names) + (1 if has_mk else 0) if (has_ov or has_mk) else 0
        tx = 2 + (int(has_ov) + int(has_mk)) * 11 + 1
        texts = list(names) + (["stripes: masked off"] if has_mk else [])
        legend_w = max([tx + glyphs(t) * 6 + 2 for t in texts], default=0) if legend_rows else 0
        legend_h = 4 + legend_rows * 12 if legend_rows else 0
        self.mosaic_w = self.cols * pw + (self.cols - 1) * 4
        self.mosaic_h = self.rows * (self.title_h + ph) + (self.rows - 1) * 4
        self.width = max(self.mosaic_w, legend_w)
        self.height = self.mosaic_h + legend_h
        img = np.zeros((self.height, self.width, 3), dtype=np.int64)
        img[...] = BG
        self.text_boxes = []  # (x0, y0, x1, y1, text)
        for k, p in enumerate(panels):
            x0 = (k % self.cols) * (pw + 4)
            y0 = (k // self.cols) * (self.title_h + ph + 4)
            img[y0 + self.title_h:y0 + self.title_h + ph, x0:x0 + pw] = p
            if titles:
                self.text_boxes.append((x0 + 1, y0 + 2, x0 + pw, y0 + 9, titles[k]))
        for r in range(legend_rows):
            y = self.mosaic_h + 4 + r * 12
            key = r == len(names)
            c = TEXT if key else group_color(r)
            x = 2
            if has_ov:
                if not key:
                    img[y + 1:y + 10, x:x + 9] = c
                x += 11
            if has_mk:
                for i in range(9):
                    for j in range(9):
                        if (i + j) % 3 == 0:
                            img[y + 1 + i, x + j] = c
            self.text_boxes.append((tx, y + 2, self.width, y + 9, texts[r]))
        self.img = img

    def check(self, got):
        assert got.shape == self.img.shape, (got.shape, self.img.shape)
        care = np.ones(got.shape[:2], dtype=bool)
        for x0, y0, x1, y1, text in self.text_boxes:
            care[y0:y1, x0:x1] = False
            box = got[y0:y1, x0:x1].reshape(-1, 3)
            is_text = (box == TEXT).all(axis=1)
            assert ((box == BG).all(axis=1) | is_text).all(), "stray colour in text " + text
            fits = (x1 - x0) >= 5
            if text.strip() and fits:
                assert is_text.any(), "no text drawn for %r" % text
        diff = (got != self.img).any(axis=2) & care
        if diff.any():
            ys, xs = np.nonzero(diff)
            y, x = ys[0], xs[0]
            raise AssertionError("%d pixels differ; first at (x=%d, y=%d): got %s, expected %s"
                                 % (diff.sum(), x, y, got[y, x], self.img[y, x]))


# ---------------------------------------------------------------------------
# Data, runs, decoding
# ---------------------------------------------------------------------------

def decode_png(path):
    w, h, rows, info = png.Reader(filename=str(path)).asRGB8()
    img = np.vstack([np.frombuffer(bytes(r), dtype=np.uint8) for r in rows])
    return img.reshape(h, w, 3)


def lb(*args, timeout=120, preexec_fn=None):
    p = subprocess.run([LABELBIN, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, preexec_fn=preexec_fn)
    return p.returncode, p.stdout, p.stderr


def preview_cli(src, out, *args):
    rc, so, se = lb("preview", src, "-o", out, "-q", *args)
    assert rc == 0, se
    assert se == ""
    return decode_png(out)


def blobs(rng, shape, ids, n=40):
    """Labels made of boxes of random ids over background 0."""
    lab = np.zeros(shape, dtype=np.uint64)
    ids = np.array(ids, dtype=np.uint64)
    for _ in range(n):
        lo = [rng.integers(0, s) for s in shape]
        hi = [min(s, l + rng.integers(1, max(2, s // 2))) for l, s in zip(lo, shape)]
        lab[tuple(slice(l, h) for l, h in zip(lo, hi))] = rng.choice(ids)
    return lab


IDS = [1, 2, 3, 4, 5, 16, 17, 18, 255, 256, 65535, 2**32 + 7, 2**63 + 5, 2**64 - 1]
GROUPS = [("mito", [3, 4, 5]), ("er", [16, 17, 18]), ("big", [2**63 + 5]), ("cell", [])]
# id 5 is present but not annotated: "mito" is masked off everywhere.
LABELS_ATTR = [{"value": v, "annotationState": {"present": True, "annotated": v != 5}}
               for v in (1, 2, 3, 4, 5, 16, 17, 18)]


def write(root, name, data, chunks, resolution, offset, attrs=None, compressor=None):
    z = zarr.open_group(str(root), mode="a")
    a = z.create_dataset(name, data=data, chunks=chunks, compressor=compressor or Zstd(3),
                         overwrite=True)
    a.attrs["resolution"] = list(resolution)
    a.attrs["offset"] = list(offset)
    if attrs:
        a.attrs.update(attrs)
    return os.path.join(str(root), name)


@pytest.fixture(scope="module")
def vol(tmp_path_factory):
    d = tmp_path_factory.mktemp("preview")
    rng = np.random.default_rng(15)
    lab = blobs(rng, (20, 37, 45), IDS, n=60)
    path = write(d / "crop.zarr", "labels", lab, (4, 8, 16), (8, 4, 2), (80, 40, 20),
                 {"labels": LABELS_ATTR})
    return {"dir": d, "path": path, "lab": lab, "vs": (8, 4, 2), "off": (80, 40, 20)}


def g_args(groups):
    out = []
    for name, ids in groups:
        out += ["-g", name + "=" + ",".join(str(i) for i in ids)]
    return out


def binarize(lab, groups, background=0):
    return np.stack([np.isin(lab, np.array(ids, dtype=lab.dtype)) if ids else lab != background
                     for _, ids in groups])


def mask(lab, groups, pna=(5,)):
    return np.stack([(lab > 0) & (not any(i in pna for i in ids)) for _, ids in groups])


def section(arr, axis, k):
    return arr[(slice(None),) * axis + (k,)]


# ---------------------------------------------------------------------------
# Labels alone: colours, sections, scaling
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("axis,at,k", [
    (None, None, 10),   # default: the middle section across z
    ("z", 80, 0), ("z", 239, 19), ("y", 40 + 4 * 17 + 3, 17), ("x", 20 + 2 * 44, 44),
])
def test_labels_section(vol, tmp_path, axis, at, k):
    args = []
    if axis:
        args += ["--axis", axis]
    if at is not None:
        args += ["--at", at]
    got = preview_cli(vol["path"], tmp_path / "a.png", *args)
    sec = section(vol["lab"], "zyx".index(axis or "z"), k)
    exp = Expected([render_panel(sec, None, None, sec.shape[1], sec.shape[0], 0, 0)],
                   sec.shape[1], sec.shape[0])
    exp.check(got)


@pytest.mark.parametrize("args,pw_ph", [
    (["--scale", "3"], (135, 111)),
    (["--max-size", "30"], (30, 24)),    # 45 x 37 shrunk by 30 / 45
    (["--max-size", "17"], (17, 13)),
    (["--max-size", "1000"], (45, 37)),  # never enlarged
])
def test_scaling_nearest_neighbour(vol, tmp_path, args, pw_ph):
    got = preview_cli(vol["path"], tmp_path / "s.png", *args)
    sec = vol["lab"][10]
    pw, ph = pw_ph
    Expected([render_panel(sec, None, None, pw, ph, 0, 0)], pw, ph).check(got)


def test_roi_window(vol, tmp_path):
    # z 120:200 (sections 5..14), y 48:100 (voxels 2..14), x 30:70 (5..24)
    got = preview_cli(vol["path"], tmp_path / "r.png", "--roi", "120:200,48:100,30:70")
    sec = vol["lab"][5 + 10 // 2, 2:15, 5:25]
    Expected([render_panel(sec, None, None, 20, 13, 0, 0)], 20, 13).check(got)


def test_python_matches_cli(vol, tmp_path):
    a = labelbin.ZarrArray(vol["path"])
    img = a.preview(axis="y", scale=2)
    assert img.dtype == np.uint8 and img.shape == (40, 90, 3)
    cli = preview_cli(vol["path"], tmp_path / "p.png", "--axis", "y", "--scale", "2")
    assert np.array_equal(img, cli)
    info = a.save_preview(str(tmp_path / "q.png"), axis="y", scale=2)
    assert np.array_equal(decode_png(tmp_path / "q.png"), img)
    assert info["width"] == 90 and info["height"] == 40 and info["first_at"] == 40 + 4 * 18


def test_signed_and_small_dtypes_share_colours(tmp_path):
    rng = np.random.default_rng(3)
    lab = rng.choice(np.array([0, 1, 2, 7, -1, -3, -2**31], dtype=np.int32), size=(3, 9, 11))
    p32 = write(tmp_path / "s.zarr", "i32", lab, (3, 4, 4), (1, 1, 1), (0, 0, 0))
    got = preview_cli(p32, tmp_path / "i.png", "--at", "1")
    Expected([render_panel(lab[1].astype(np.int64), None, None, 11, 9, 0, 0)], 11, 9).check(got)
    # -1 is the 64-bit pattern 2^64 - 1, whatever the dtype
    assert label_color(-1) == label_color(2**64 - 1)
    u8 = (np.abs(lab) % 200).astype(np.uint8)
    p8 = write(tmp_path / "s.zarr", "u8", u8, (3, 4, 4), (1, 1, 1), (0, 0, 0))
    p64 = write(tmp_path / "s.zarr", "u64", u8.astype(np.uint64), (3, 4, 4), (1, 1, 1),
                (0, 0, 0))
    assert np.array_equal(preview_cli(p8, tmp_path / "a.png"), preview_cli(p64, tmp_path / "b.png"))


def test_float_array_grey(tmp_path):
    rng = np.random.default_rng(4)
    data = rng.normal(size=(6, 10, 12)).astype(np.float32)
    data[3, 2, 2] = np.nan
    data[3, 4, 5] = np.inf
    p = write(tmp_path / "f.zarr", "pred", data, (2, 5, 5), (1, 1, 1), (0, 0, 0))
    got = preview_cli(p, tmp_path / "f.png")
    sec = data[3].astype(np.float64)
    fin = sec[np.isfinite(sec)]
    Expected([render_panel(sec, None, None, 12, 10, 0, 0, (fin.min(), fin.max()))],
             12, 10).check(got)
    # a montage scales every section to the range of all of them
    got = preview_cli(p, tmp_path / "m.png", "--montage", "2")
    ks = [1, 4]
    allv = np.concatenate([data[k][np.isfinite(data[k])] for k in ks]).astype(np.float64)
    fr = (allv.min(), allv.max())
    Expected([render_panel(data[k].astype(np.float64), None, None, 12, 10, 0, 0, fr)
              for k in ks], 12, 10, titles=["z=1", "z=4"]).check(got)


def test_two_d_array(tmp_path):
    rng = np.random.default_rng(5)
    lab = blobs(rng, (13, 29), IDS, n=10)
    p = write(tmp_path / "t.zarr", "img", lab, (5, 7), (2, 2), (10, 0))
    got = preview_cli(p, tmp_path / "t.png", "--scale", "2")
    Expected([render_panel(lab, None, None, 58, 26, 0, 0)], 58, 26).check(got)
    rc, _, err = lb("preview", p, "-o", tmp_path / "u.png", "--axis", "z")
    assert rc == 2 and "is 2-D (axes y, x)" in err


# ---------------------------------------------------------------------------
# Overlays, mask stripes, grid, montage, written targets
# ---------------------------------------------------------------------------

def test_overlays_and_mask(vol, tmp_path):
    got = preview_cli(vol["path"], tmp_path / "o.png", *g_args(GROUPS), "--mask", "--scale", "2",
                      "--at", 80 + 8 * 7)
    sec = vol["lab"][7]
    ov, mk = binarize(sec, GROUPS), mask(sec, GROUPS)
    assert not mk[0].any() and mk[1].any()  # mito off everywhere, er where labelled
    exp = Expected([render_panel(sec, ov, mk, 90, 74, 0, len(GROUPS))], 90, 74,
                   names=[n for n, _ in GROUPS], has_ov=True, has_mk=True)
    exp.check(got)
    # the striped pixels of a voxel masked in "mito" only are mito's colour
    assert (got == np.array(group_color(0))).all(axis=2).any()


def test_overlays_without_mask_and_background(vol, tmp_path):
    groups = [("cell", []), ("ids", [1, 2])]
    got = preview_cli(vol["path"], tmp_path / "o.png", *g_args(groups), "--background", "1")
    sec = vol["lab"][10]
    exp = Expected([render_panel(sec, binarize(sec, groups, background=1), None, 45, 37, 0, 2)],
                   45, 37, names=["cell", "ids"], has_ov=True)
    exp.check(got)


def test_grid(vol, tmp_path):
    got = preview_cli(vol["path"], tmp_path / "g.png", *g_args(GROUPS[:3]), "--mask", "--grid")
    sec = vol["lab"][10]
    ov, mk = binarize(sec, GROUPS[:3]), mask(sec, GROUPS[:3])
    panels = [render_panel(sec, None, None, 45, 37, 0, 0)] + \
        [render_panel(sec, ov, mk, 45, 37, c, c + 1) for c in range(3)]
    names = [n for n, _ in GROUPS[:3]]
    Expected(panels, 45, 37, titles=["labels"] + names, names=names, has_ov=True,
             has_mk=True).check(got)


def fit(n_r, n_c, panels, titled, legend_h, m):
    """The documented --max-size rule: the panel size (width, height)."""
    cols = math.ceil(math.sqrt(panels))
    rows = -(-panels // cols)
    wb = m - (cols - 1) * 4
    hb = m - rows * (11 if titled else 0) - (rows - 1) * 4 - legend_h
    x, y = cols * n_c, rows * n_r
    if x <= wb and y <= hb:
        return n_c, n_r
    num, den = (hb, y) if hb * x < wb * y else (wb, x)
    return max(1, n_c * num // den), max(1, n_r * num // den)


@pytest.mark.parametrize("size", [100, 200])
def test_montage(vol, tmp_path, size):
    got = preview_cli(vol["path"], tmp_path / "m.png", "--montage", "5", "--axis", "x",
                      "--max-size", size)
    n = 45
    ks = [(2 * j + 1) * n // 10 for j in range(5)]
    # 3 x 2 panels of 20 x 37 voxels (rows z, columns y)
    pw, ph = fit(20, 37, 5, True, 0, size)
    assert (pw, ph) == {100: (30, 16), 200: (37, 20)}[size]
    panels = [render_panel(vol["lab"][:, :, k], None, None, pw, ph, 0, 0) for k in ks]
    Expected(panels, pw, ph, titles=["x=%d" % (20 + 2 * k) for k in ks]).check(got)
    assert got.shape[0] <= size and got.shape[1] <= size


def test_max_size_counts_the_legend(vol, tmp_path):
    got = preview_cli(vol["path"], tmp_path / "l.png", *g_args(GROUPS), "--mask",
                      "--max-size", "100")
    legend_h = 4 + 5 * 12
    pw, ph = fit(37, 45, 1, False, legend_h, 100)
    assert (pw, ph) == (43, 36)
    sec = vol["lab"][10]
    Expected([render_panel(sec, binarize(sec, GROUPS), mask(sec, GROUPS), pw, ph, 0, 4)],
             pw, ph, names=[n for n, _ in GROUPS], has_ov=True, has_mk=True).check(got)
    assert got.shape[0] <= 100


def test_binarize_and_mask_arrays_from_python(vol, tmp_path):
    groups = {"mito": [3, 4, 5], "er": [16, 17, 18]}
    gl = list(groups.items())
    sec = vol["lab"][10]
    b = labelbin.BinarizeArray(vol["path"], groups)
    Expected([render_panel(sec, binarize(sec, gl), None, 45, 37, 0, 2)], 45, 37,
             names=list(groups), has_ov=True).check(b.preview())
    both = b.preview(mask=True)
    Expected([render_panel(sec, binarize(sec, gl), mask(sec, gl), 45, 37, 0, 2)], 45, 37,
             names=list(groups), has_ov=True, has_mk=True).check(both)
    m = labelbin.MissingAnnotationsMask(vol["path"], groups)
    Expected([render_panel(sec, None, mask(sec, gl), 45, 37, 0, 2)], 45, 37,
             names=list(groups), has_mk=True).check(m.preview())
    # the same as the label array with groups
    a = labelbin.ZarrArray(vol["path"])
    assert np.array_equal(a.preview(groups=groups, mask=True), both)


def test_written_target_and_mask(vol, tmp_path):
    out = tmp_path / "out.zarr"
    groups = GROUPS[:2]
    for kind in ("binarize", "mask"):
        rc, _, err = lb(kind, vol["path"], out / kind, *g_args(groups), "-q")
        assert rc == 0, err
    sec = vol["lab"][10]
    names = [n for n, _ in groups]
    # a target over its labels
    got = preview_cli(out / "binarize", tmp_path / "t.png", "--labels", vol["path"])
    Expected([render_panel(sec, binarize(sec, groups), None, 45, 37, 0, 2)], 45, 37,
             names=names, has_ov=True).check(got)
    # a target alone: overlays on black
    got = preview_cli(out / "binarize", tmp_path / "u.png")
    Expected([render_panel(None, binarize(sec, groups), None, 45, 37, 0, 2)], 45, 37,
             names=names, has_ov=True).check(got)
    # a written mask is drawn as stripes
    got = preview_cli(out / "mask", tmp_path / "v.png", "--labels", vol["path"], "--grid")
    mk = mask(sec, groups)
    Expected([render_panel(sec, None, None, 45, 37, 0, 0)] +
             [render_panel(sec, None, mk, 45, 37, c, c + 1) for c in range(2)], 45, 37,
             titles=["labels"] + names, names=names, has_mk=True).check(got)


def test_legend_names_utf8_and_long(vol, tmp_path):
    groups = [("mitochondrion_ü€", [3]), ("x" * 60, [4])]
    a = labelbin.ZarrArray(vol["path"])
    img = a.preview(groups=groups)
    sec = vol["lab"][10]
    # "ü" and "€" are one glyph each ('?'); names stop at 48 glyphs
    Expected([render_panel(sec, binarize(sec, groups), None, 45, 37, 0, 2)], 45, 37,
             names=["mitochondrion_??", "x" * 60], has_ov=True).check(img)
    assert img.shape[1] == 2 + 11 + 1 + 48 * 6 + 2


# ---------------------------------------------------------------------------
# Colours: stable, background black, neighbours apart
# ---------------------------------------------------------------------------

def test_colours_documented_values():
    ids = [0, 1, 2, 3, 255, 2**63, 2**64 - 1, -1, -(2**63)]
    labs, groups = labelbin._labelbin.preview_colors(ids, 12)
    assert labs == [label_color(i) for i in ids]
    assert labs[0] == (0, 0, 0)
    assert groups == [group_color(i) for i in range(12)]
    assert groups[0] == (255, 0, 0)


def test_neighbouring_ids_far_apart():
    # consecutive ids differ by ~222 degrees of hue: far apart in RGB
    cols = np.array([label_color(i) for i in range(1, 2001)], dtype=np.int64)
    d = np.abs(np.diff(cols, axis=0)).sum(axis=1)
    assert d.min() >= 120, d.min()
    gcols = np.array([group_color(i) for i in range(8)], dtype=np.int64)
    gd = [np.abs(gcols[i] - gcols[j]).sum() for i in range(8) for j in range(i + 1, 8)]
    assert min(gd) >= 90


def test_colour_stability_across_processes(vol, tmp_path):
    args = [*g_args(GROUPS), "--mask", "--montage", "4"]
    digests = set()
    for i in range(3):
        out = tmp_path / ("run%d.png" % i)
        preview_cli(vol["path"], out, *args)
        digests.add(hashlib.sha256(out.read_bytes()).hexdigest())
    code = ("import labelbin, hashlib; a = labelbin.ZarrArray(%r); "
            "print(hashlib.sha256(a.preview(groups=%r, mask=True, montage=4).tobytes())"
            ".hexdigest())" % (vol["path"], GROUPS))
    py = set()
    for _ in range(2):
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env=dict(os.environ, PYTHONHASHSEED="random"))
        py.add(p.stdout.strip())
    assert len(digests) == 1 and len(py) == 1
    assert py == {hashlib.sha256(decode_png(tmp_path / "run0.png").tobytes()).hexdigest()}


# ---------------------------------------------------------------------------
# Reads: only the chunks the section needs
# ---------------------------------------------------------------------------

def chunks_touched(sel_r, sel_c, chunk_r, chunk_c):
    return len({v // chunk_r for v in sel_r}) * len({v // chunk_c for v in sel_c})


@pytest.mark.parametrize("axis,kwargs", [
    ("z", {}), ("y", {}), ("x", {}), ("z", {"scale": 3}),
    ("z", {"roi": (104, 44, 34, 120, 80, 60)}), ("x", {"roi": (104, 44, 34, 120, 80, 60)}),
])
def test_section_reads_only_its_chunks(vol, axis, kwargs):
    a = labelbin.ZarrArray(vol["path"])
    before = a.io_stats()["requests"]
    kw = dict(kwargs)
    shape = np.array([20, 37, 45])
    lo = np.zeros(3, dtype=int)
    if "roi" in kw:
        r = kw.pop("roi")
        kw["roi"] = labelbin.Roi(r[:3], r[3:])
        lo = (np.array(r[:3]) - vol["off"]) // vol["vs"]
        shape = np.array(r[3:]) // vol["vs"]
    a.preview(axis=axis, **kw)
    got = a.io_stats()["requests"] - before
    ax = "zyx".index(axis)
    rest = [i for i in range(3) if i != ax]
    chunks = (4, 8, 16)
    # the voxel range of the window along the two in-plane axes, in the
    # stored grid; chunks touched = product of the chunk ranges
    n = 1
    for i in rest:
        first, last = lo[i], lo[i] + shape[i] - 1
        n *= last // chunks[i] - first // chunks[i] + 1
    assert got == n


def test_shrunk_section_skips_unsampled_chunks(tmp_path):
    # 1 x 64 x 4096 voxels in chunks of 1 x 8 x 8: 8 x 512 chunks; at
    # --max-size 64 every 64th column is shown, one chunk column in 8
    lab = np.tile(np.arange(4096, dtype=np.uint32), (1, 64, 1))
    p = write(tmp_path / "w.zarr", "wide", lab, (1, 8, 8), (1, 1, 1), (0, 0, 0))
    a = labelbin.ZarrArray(p)
    before = a.io_stats()["requests"]
    img = a.preview(max_size=64)
    assert img.shape == (1, 64, 3)
    rows = [i * 64 // 1 for i in range(1)]
    cols = [i * 4096 // 64 for i in range(64)]
    assert a.io_stats()["requests"] - before == chunks_touched(rows, cols, 8, 8) == 64
    Expected([render_panel(lab[0], None, None, 64, 1, 0, 0)], 64, 1).check(img)


def test_n5_reads_and_pixels(vol, tmp_path):
    z = zarr.open(zarr.N5FSStore(str(tmp_path / "c.n5")), mode="a")
    a = z.create_dataset("labels", data=vol["lab"], chunks=(4, 8, 16), compressor=Zstd(3))
    a.attrs["resolution"] = list(vol["vs"][::-1])
    a.attrs["offset"] = list(vol["off"][::-1])
    arr = labelbin.ZarrArray(str(tmp_path / "c.n5" / "labels"))
    before = arr.io_stats()["requests"]
    img = arr.preview(axis="y")
    assert arr.io_stats()["requests"] - before == 5 * 3
    sec = vol["lab"][:, 18, :]
    Expected([render_panel(sec, None, None, 45, 20, 0, 0)], 45, 20).check(img)


def test_sharded_zarr3_reads_indexes_and_inner_chunks(tmp_path):
    rng = np.random.default_rng(6)
    lab = blobs(rng, (16, 64, 96), IDS, n=30)
    a = labelbin.create_dataset(str(tmp_path / "v3.zarr" / "labels"), shape=lab.shape,
                                chunks=(4, 8, 16), dtype="uint64", format="zarr3",
                                shard=(8, 32, 48), codec="zstd:1")
    a[a.roi] = lab
    b = labelbin.ZarrArray(str(tmp_path / "v3.zarr" / "labels"))
    before = b.io_stats()["requests"]
    img = b.preview(axis="y", at=37)
    # section y = 37: inner chunks z 4 x x 6 in shards z 2 x x 2: one index
    # read per shard, then the inner chunks the index lists (all-zero ones
    # are not stored)
    yc = 37 // 8
    stored = sum(lab[z:z + 4, yc * 8:yc * 8 + 8, x:x + 16].any()
                 for z in range(0, 16, 4) for x in range(0, 96, 16))
    assert 0 < stored < 24
    assert b.io_stats()["requests"] - before == 2 * 2 + stored
    Expected([render_panel(lab[:, 37, :], None, None, 96, 16, 0, 0)], 96, 16).check(img)


# ---------------------------------------------------------------------------
# Refusals: one clear line, exit 2 for usage, 1 for the data
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("args,code,needle", [
    (["--at", "5000"], 1, "position z = 5000 lies outside the ROI [80:240, 40:188, 20:110]"),
    (["--at", "79"], 1, "lies outside the ROI"),
    (["--axis", "w"], 2, "axis \"w\" does not exist in"),
    (["--scale", "0"], 2, "--scale '0': expected whole pixels per voxel"),
    (["--scale", "2x"], 2, "--scale '2x'"),
    (["--max-size", "-5"], 2, "--max-size '-5'"),
    (["--scale", "2", "--max-size", "40"], 2, "--scale and --max-size exclude each other"),
    (["--montage", "21"], 2, "a montage of 21 sections, but the ROI holds only 20 along z"),
    (["--montage", "3", "--at", "100"], 2, "give --at or --montage, not both"),
    (["--grid"], 2, "a grid draws one panel per channel, and there are none"),
    (["--mask"], 2, "the mask needs groups"),
    (["--roi", "0:8,40:80,20:40"], 1, "lies outside the ROI"),
    (["--roi", "80:88,41:80,20:40"], 1, "is not aligned to the voxel size (8, 4, 2)"),
    (["--labels", "nowhere.zarr/x"], 1, "nowhere.zarr/x"),
    (["-g", "a=1", "--grid", "--montage", "2"], 2, "--grid and --montage exclude each other"),
])
def test_bad_arguments(vol, tmp_path, args, code, needle):
    out = tmp_path / "bad.png"
    rc, so, err = lb("preview", vol["path"], "-o", out, *args)
    assert rc == code, err
    first = err.splitlines()[0]
    assert first.startswith("labelbin: ") and needle in first, err
    assert len(err.splitlines()) <= 2  # the line, and for usage a pointer to --help
    assert not out.exists()


@pytest.mark.parametrize("args", [["preview", "--help"], ["preview", "-h"], ["help", "preview"]])
def test_help(args):
    rc, out, err = lb(*args)
    assert rc == 0 and err == ""
    assert out.startswith("Usage: labelbin preview [OPTIONS] SOURCE -o OUT.png") and "Examples" in out
    for opt in ("--axis", "--at", "--roi", "--scale", "--max-size", "--group", "--mask", "--grid",
                "--montage", "--labels"):
        assert opt in out


def test_listed_and_suggested():
    rc, out, _ = lb("--help")
    assert "  preview   SOURCE -o OUT.png" in out
    rc, _, err = lb("preveiw")
    assert rc == 2 and "did you mean 'preview'?" in err
    rc, _, err = lb("preview", "--montgae", "3")
    assert rc == 2 and "did you mean '--montage'?" in err


def test_missing_output_and_source(vol, tmp_path):
    rc, _, err = lb("preview", vol["path"])
    assert rc == 2 and "missing -o OUT.png" in err
    rc, _, err = lb("preview", "-o", tmp_path / "x.png")
    assert rc == 2 and "missing SOURCE" in err
    rc, _, err = lb("preview", tmp_path / "none.zarr" / "x", "-o", tmp_path / "x.png")
    assert rc == 1 and err.startswith("labelbin: ")


def test_python_refusals(vol):
    a = labelbin.ZarrArray(vol["path"])
    with pytest.raises(ValueError, match="lies outside the ROI"):
        a.preview(at=10**6)
    with pytest.raises(ValueError, match="axis \"q\" does not exist"):
        a.preview(axis="q")
    with pytest.raises(ValueError, match="scale must be 1 or more"):
        a.preview(scale=0)
    with pytest.raises(labelbin.FormatError, match="beyond the limit"):
        a.preview(scale=30000)


def test_never_alters_inputs(vol, tmp_path):
    chunk = os.path.join(vol["path"], "0.0.0")
    before = open(chunk, "rb").read()
    rc, _, err = lb("preview", vol["path"], "-o", chunk)
    assert rc == 1 and "lies inside the input dataset" in err
    rc, _, err = lb("preview", vol["path"], "-o", os.path.join(vol["path"], "new.png"))
    assert rc == 1 and "lies inside the input dataset" in err
    assert not os.path.exists(os.path.join(vol["path"], "new.png"))
    assert open(chunk, "rb").read() == before
    # an existing file that is not a PNG is kept; a PNG is replaced
    keep = tmp_path / "notes.txt"
    keep.write_text("keep me")
    rc, _, err = lb("preview", vol["path"], "-o", keep)
    assert rc == 1 and "exists and is not a PNG image" in err
    assert keep.read_text() == "keep me"
    old = tmp_path / "old.png"
    preview_cli(vol["path"], old, "--scale", "2")
    img = preview_cli(vol["path"], old)
    assert img.shape == (37, 45, 3)
    rc, _, err = lb("preview", vol["path"], "-o", tmp_path)
    assert rc == 1 and "is not a file" in err


def test_huge_sizes_refused_before_allocation(tmp_path):
    # a 2^20-cubed array (metadata only, no chunk stored)
    z = zarr.open_group(str(tmp_path / "huge.zarr"), mode="a")
    a = z.create_dataset("labels", shape=(2**20,) * 3, chunks=(64, 64, 64), dtype="uint16",
                         compressor=Zstd(3))
    a.attrs["resolution"] = [4, 4, 4]
    p = str(tmp_path / "huge.zarr" / "labels")

    def small_memory():  # 256 MiB of address space for the whole process
        resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20))

    out = tmp_path / "h.png"
    for args in (["--scale", "1"], ["--scale", "32768"], ["--montage", "4096"],
                 ["-g", "a=1", "--grid", "--max-size", "32768"]):
        rc, _, err = lb("preview", p, "-o", out, *args, preexec_fn=small_memory)
        assert rc == 1 and "beyond the limit" in err, err
        assert not out.exists()
    # shrunk to 96 pixels it reads 96 x 96 (absent) chunks and draws black
    rc, so, err = lb("preview", p, "-o", out, "--max-size", "96", "-v",
                     preexec_fn=small_memory)
    assert rc == 0, err
    assert "read %d objects" % (96 * 96) in so
    assert (decode_png(out) == 0).all()


# ---------------------------------------------------------------------------
# The README's picture is what `make demo` draws
# ---------------------------------------------------------------------------

def test_docs_image_is_the_demo_preview(tmp_path):
    source = os.environ.get("LB_SOURCE_DIR", os.path.join(HERE, ".."))
    demo = open(os.path.join(source, "scripts", "demo")).read()
    line = next(l for l in demo.splitlines() if l.startswith("PREVIEW="))
    args = line.split("=", 1)[1].strip('"').split()
    src = tmp_path / "crop.zarr" / "volumes" / "labels" / "all"
    rc, _, err = lb("sample", "-q", src)
    assert rc == 0, err
    got = preview_cli(src, tmp_path / "preview.png", *args)
    assert np.array_equal(got, decode_png(os.path.join(source, "docs", "preview-demo.png")))
    # and it is the rule: labels grey, mito and ER overlays, mito striped
    lab = zarr.open(str(src), mode="r")[...]
    groups = [("mito", [3, 4, 5]), ("er", list(range(16, 24)))]
    k = (3408 - 3200) // 8
    sec = lab[k]
    pna = [v["value"] for v in zarr.open(str(src), mode="r").attrs["labels"]
           if v["annotationState"]["present"] and not v["annotationState"]["annotated"]]
    mk = mask(sec, groups, pna)
    assert not mk[0].any()
    Expected([render_panel(sec, binarize(sec, groups), mk, 384, 384, 0, 2)], 384, 384,
             names=["mito", "er"], has_ov=True, has_mk=True).check(got)
