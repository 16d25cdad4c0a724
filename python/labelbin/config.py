"""DaCapo array configs -> labelbin's serialised config dicts.

Accepts what DaCapo code has at hand: a config object (attrs class, or any
object with the config's attributes), its serialised dict with ``__type__``,
JSON text, or a live labelbin array. The result is the plain dict form that
lb_array_from_config reads (docs/semantics.md §3), with relative ``file_name``s
made absolute against the current directory (what DaCapo does, fixed at the
moment the config is used so that later ``chdir``s do not change it).
"""

import json
import numbers
import operator
import os
from collections.abc import Mapping

__all__ = ["to_config_dict", "normalise_groupings", "split_dataset_path", "TYPES"]

ZARR = "ZarrArrayConfig"
BINARIZE = "BinarizeArrayConfig"
MASK = "MissingAnnotationsMaskConfig"
CROP = "CellMapCropConfig"  # a crop as the source of BINARIZE / MASK (crops.py)
TYPES = (ZARR, BINARIZE, MASK)

_MISSING = object()


def _get(cfg, key, default=_MISSING):
    """A field of a dict or an object (attrs classes keep `axes` as `_axes`)."""
    if isinstance(cfg, Mapping):
        if key in cfg:
            return cfg[key]
        if key == "axes" and "_axes" in cfg:
            return cfg["_axes"]
        return default
    value = getattr(cfg, key, _MISSING)
    if value is _MISSING and key == "axes":
        value = getattr(cfg, "_axes", _MISSING)
    return default if value is _MISSING else value


def _has(cfg, key):
    return _get(cfg, key) is not _MISSING


def _path_text(p):
    try:
        return os.fspath(p)
    except TypeError:
        return str(p)


def _absolute(path):
    path = _path_text(path)
    if "://" in path or os.path.isabs(path):
        return path
    # join, not abspath: keep ".." meaning what the file system says
    return os.path.join(os.getcwd(), path)


def _bound(n):
    """n in words: 2**k-1 for those, else the digits."""
    return "2**%d-1" % n.bit_length() if n > 0 and not n & (n + 1) \
        else str(n)


def _count(value, where, name, hi, unit=""):
    """`value`, the argument `name` of `where` (a byte or thread count), as
    an int in [0, hi]: an integer (int or numpy integer, not bool — never
    truncated, never wrapped modulo 2**64) or TypeError / ValueError saying
    which argument and what was given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        text = repr(value)
        if len(text) > 40:
            text = text[:37] + "..."
        raise TypeError("%s: %s must be an int, not %s %s"
                        % (where, name, type(value).__name__, text))
    n = operator.index(value)
    if not 0 <= n <= hi:
        raise ValueError("%s: %s must be between 0 and %s%s, not %d"
                         % (where, name, _bound(hi), unit, n))
    return n


def split_dataset_path(path):
    """Split "a/crop.zarr/volumes/labels" into ("a/crop.zarr", "volumes/labels").

    The container is the last path component ending in .zarr or .n5; without
    one, the parent directory is the container and the last component the
    dataset.
    """
    path = _path_text(path).rstrip("/")
    parts = path.split("/")
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].lower().endswith((".zarr", ".n5")) and i < len(parts) - 1:
            return "/".join(parts[:i + 1]) or "/", "/".join(parts[i + 1:])
    head, tail = os.path.split(path)
    return head or ".", tail


def normalise_groupings(groupings):
    """[(name, [ids])…] or {name: ids} -> [[str, [int…]]…] (ids exact).

    Every group names an output channel, so names must be non-empty and
    unique (ValueError otherwise, worded as the library words it); an empty
    groupings is refused when an array is built from it."""
    if isinstance(groupings, (str, bytes)):
        groupings = json.loads(groupings)
    items = groupings.items() if isinstance(groupings, Mapping) else groupings
    out = []
    seen = {}
    for i, group in enumerate(items):
        try:
            name, ids = group
        except (TypeError, ValueError):
            raise TypeError("groupings[%d]: expected a (name, [ids]) pair, got %r"
                            % (i, group)) from None
        if not isinstance(name, str):
            raise TypeError("groupings[%d][0]: the group name must be a string, got %r"
                            % (i, name))
        if not name:
            raise ValueError("groupings[%d][0]: group %d has an empty name: every group "
                             "names an output channel, give it a name" % (i, i))
        if name in seen:
            raise ValueError("groupings[%d][0]: group %s is given twice (groups %d and %d): "
                             "every group names an output channel, so names must be unique; "
                             "merge the ids into one group or rename one"
                             % (i, json.dumps(name, ensure_ascii=False), seen[name], i))
        seen[name] = i
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
            raise TypeError("groupings[%d][1]: expected a list of ids, got %r" % (i, ids))
        clean = []
        for k, v in enumerate(ids):
            try:
                v = operator.index(v)
            except TypeError:
                raise TypeError("groupings[%d][1][%d]: expected an integer id, got %r"
                                % (i, k, v)) from None
            if not -2**63 <= v < 2**64:
                raise ValueError("groupings[%d][1][%d]: id %d is outside [-2^63, 2^64-1]"
                                 % (i, k, v))
            clean.append(v)
        out.append([name, clean])
    return out


def _infer_type(cfg, expected):
    if isinstance(cfg, Mapping):
        t = cfg.get("__type__")
        if t is not None:
            return str(t)
    else:
        name = type(cfg).__name__
        if name in TYPES:
            return name
        if name == "ZarrArray" or name.endswith("ZarrArrayConfig"):
            return ZARR
        if "MissingAnnotationsMask" in name:
            return MASK
        if "Binarize" in name:
            return BINARIZE
    if _has(cfg, "source_array_config") and _has(cfg, "groupings"):
        if expected in (BINARIZE, MASK):
            return expected
        if _has(cfg, "background"):
            return BINARIZE
        raise ValueError("cannot tell whether this config is a BinarizeArrayConfig or a "
                         "MissingAnnotationsMaskConfig: give it a '__type__'")
    if _has(cfg, "file_name") and _has(cfg, "dataset"):
        return ZARR
    if expected is not None:
        return expected
    raise ValueError("not an array config: expected a dict with '__type__' or an object "
                     "with the config's attributes (file_name/dataset or "
                     "source_array_config/groupings), got %r" % (cfg,))


def _required(cfg, key, where):
    """A field the config cannot do without; missing (or None) is the
    library's error for the same JSON: FormatError "<where>.<key>: missing"."""
    value = _get(cfg, key, None)
    if value is None:
        from ._labelbin import FormatError
        raise FormatError("%s.%s: missing" % (where, key))
    return value


def to_config_dict(cfg, expected=None, where=None):
    """The serialised dict form of `cfg` (see the module docstring). `where`
    is the config's path in messages (the type at the root, e.g.
    "BinarizeArrayConfig.source_array_config" below it)."""
    from .arrays import Array  # circular at import time

    if isinstance(cfg, Array):
        return json.loads(json.dumps(cfg._config))
    if isinstance(cfg, (str, bytes)):
        cfg = json.loads(cfg)
    kind = _infer_type(cfg, expected)
    here = where or kind
    name = _get(cfg, "name", None)
    if kind == ZARR:
        file_name = _required(cfg, "file_name", here)
        dataset = _required(cfg, "dataset", here)
        out = {"__type__": ZARR, "name": str(name) if name is not None else "zarr",
               "file_name": _absolute(file_name),
               "dataset": _path_text(dataset).lstrip("/")}
        axes = _get(cfg, "axes", None)
        if axes is not None:
            out["axes"] = [str(a) for a in axes]
        snap = _get(cfg, "snap_to_grid", None)
        if snap is not None:
            out["snap_to_grid"] = [operator.index(v) for v in snap]
        return out
    if kind in (BINARIZE, MASK) and _is_crop_config(_get(cfg, "source_array_config", None)):
        return _crop_wrapper_dict(cfg, kind, here, name)
    if kind in (BINARIZE, MASK):
        src = _required(cfg, "source_array_config", here)
        groupings = _required(cfg, "groupings", here)
        out = {"__type__": kind,
               "name": str(name) if name is not None else
               ("binarize" if kind == BINARIZE else "mask"),
               "source_array_config": to_config_dict(src, where=here + ".source_array_config"),
               "groupings": normalise_groupings(groupings)}
        if kind == BINARIZE:
            out["background"] = operator.index(_get(cfg, "background", 0) or 0)
        return out
    # An unknown type: pass it through so that the library names the
    # supported ones in its error.
    if isinstance(cfg, Mapping):
        return dict(cfg)
    return {"__type__": kind, "name": str(name)}


def _is_crop_config(src):
    return isinstance(src, Mapping) and src.get("__type__") == CROP


def _crop_wrapper_dict(cfg, kind, here, name):
    """A BinarizeArrayConfig / MissingAnnotationsMaskConfig over a crop:
    groupings may be None (one channel per class); the crop options pass
    through (the library refuses what it does not know, naming the key)."""
    src = dict(_get(cfg, "source_array_config"))
    for key in ("file_name", "classes"):
        if isinstance(src.get(key), str):
            src[key] = _absolute(src[key])
    groupings = _get(cfg, "groupings", None)
    out = {"__type__": kind,
           "name": str(name) if name is not None else
           ("binarize" if kind == BINARIZE else "mask"),
           "source_array_config": src,
           "groupings": None if groupings is None else normalise_groupings(groupings)}
    for key in ("infer_negatives", "unknown", "background"):
        if _has(cfg, key):
            out[key] = _get(cfg, key)
    return out
