"""CellMap crops (docs/semantics.md §5): ``Crop(path)`` with its classes,
and the functions ``stats`` and ``check``. Targets and masks over a crop are
``BinarizeArray(crop, groupings)`` and ``MissingAnnotationsMask(crop,
groupings)`` (arrays.py), built from a ``CellMapCropConfig`` source.

    crop = labelbin.Crop("jrc_cos7-1a.zarr/recon-1/labels/groundtruth/crop243")
    [c.name for c in crop.classes]            # ['ecs', 'pm', 'mito_mem', ...]
    gt = labelbin.BinarizeArray(crop, [("mito", [3, 4, 5])], unknown=float("nan"))
    gt[gt.roi]                                 # float32: 1, 0, NaN where unknown
    labelbin.stats(crop, [("mito", [3, 4, 5])])
    labelbin.check(crop.path)                  # [] for a clean crop
"""

import json
import math
import numbers
import os

from . import _labelbin
from .config import CROP, _absolute, _count, normalise_groupings
from .geometry import Coordinate, Roi

__all__ = ["Crop", "CropClass", "CropLevel", "builtin_classes", "read_classes", "stats",
           "check"]


def _classes_text(classes):
    """(csv text, file name) of a class table given as a file path, or
    (None, None) for the built-in table."""
    if classes is None:
        return None, None
    path = os.fspath(classes)
    with open(path, "rb") as f:
        text = f.read()
    return text, path


def builtin_classes():
    """The built-in CellMap class table: [(name, id, [member ids])…]."""
    return _labelbin.classes()


def read_classes(path):
    """A class table from a CSV file (rows ``name,id,"member ids"``), checked
    as the library checks it: [(name, id, [member ids])…]."""
    text, where = _classes_text(path)
    return _labelbin.classes(text, where)


class CropLevel:
    """One array of a class's multiscale group: ``path`` ("s0"),
    ``voxel_size``, ``offset`` and ``roi`` in world units, ``shape``,
    ``chunks``, ``dtype`` and ``complement_counts`` (a dict, None when the
    array has none)."""

    def __init__(self, d):
        self.path = d["path"]
        self.voxel_size = Coordinate(d["voxel_size"])
        self.offset = Coordinate(d["offset"])
        self.shape = tuple(d["shape"])
        self.chunks = tuple(d["chunks"])
        self.dtype = d["dtype"]
        self.complement_counts = d["complement_counts"]

    @property
    def roi(self):
        return Roi(self.offset, Coordinate(s * v for s, v in zip(self.shape, self.voxel_size)))

    def __repr__(self):
        return "CropLevel(%s, voxel_size %s, shape %s)" % (self.path, tuple(self.voxel_size),
                                                           self.shape)


class CropClass:
    """One class of a crop: ``name``, ``id`` (None when the class table does
    not know the name), ``members`` (a group class's member ids), ``type``
    ("semantic_segmentation" or "instance_segmentation"), ``encoding``
    ({"absent": 0, "present": 1, "unknown": 255}), ``levels``."""

    def __init__(self, d):
        self.name = d["name"]
        self.id = d["id"]
        self.members = list(d["members"])
        self.type = d["type"]
        self.encoding = dict(d["encoding"])
        self.levels = [CropLevel(level) for level in d["levels"]]

    @property
    def instance(self):
        return self.type == "instance_segmentation"

    def __repr__(self):
        return "CropClass(%r, id=%r, %s, %s)" % (self.name, self.id, self.type.split("_")[0],
                                               self.encoding)


class Crop:
    """A CellMap crop: the group whose ``cellmap.annotation.class_names``
    lists the classes annotated in it, each a multiscale group of arrays.

    ``Crop(path, classes=None)``: `classes` is a CSV class table file (rows
    ``name,id,"member ids"``), None for the built-in CellMap table. The
    metadata is read and validated here (FormatError naming the file and
    JSON path for what the schema does not allow); no data is read.
    """

    def __init__(self, path, classes=None):
        self._path = _absolute(path).rstrip("/") or "/"
        self._classes_file = None if classes is None else _absolute(classes)
        text, where = _classes_text(self._classes_file)
        self._info = _labelbin.crop_info(self._path, text, where)
        self._classes = [CropClass(c) for c in self._info["classes"]]

    @property
    def path(self):
        return self._path

    @property
    def name(self):
        return self._info["name"]

    @property
    def version(self):
        return self._info["version"]

    @property
    def classes(self):
        """The classes, in the order of ``class_names``."""
        return list(self._classes)

    @property
    def class_names(self):
        return [c.name for c in self._classes]

    @property
    def class_table(self):
        """"built-in CellMap table" or the class file given."""
        return self._info["class_table"]

    @property
    def classes_file(self):
        return self._classes_file

    @property
    def all_path(self):
        """"all/s0" when the crop holds its dense ids, else None."""
        return self._info["all"]

    @property
    def warnings(self):
        return list(self._info["warnings"])

    def __getitem__(self, name):
        for c in self._classes:
            if c.name == name:
                return c
        raise KeyError(name)

    def __contains__(self, name):
        return any(c.name == name for c in self._classes)

    def __len__(self):
        return len(self._classes)

    def config(self, voxel_size=None):
        """The crop as a source config (``CellMapCropConfig``), for
        BinarizeArrayConfig / MissingAnnotationsMaskConfig."""
        head, tail = os.path.split(self._path)
        cfg = {"__type__": CROP, "name": self.name, "file_name": head or "/", "dataset": tail}
        if voxel_size is not None:
            cfg["voxel_size"] = [int(v) for v in voxel_size]
        if self._classes_file is not None:
            cfg["classes"] = self._classes_file
        return cfg

    def __repr__(self):
        return "Crop(%s, %d classes)" % (self._path, len(self._classes))


def _crop_of(source, classes=None):
    """A Crop for `source` when it is one (a Crop, or the path of a crop
    group), else None."""
    if isinstance(source, Crop):
        return source
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        path = os.fsdecode(source) if isinstance(source, bytes) else os.fspath(source)
        if not path.lstrip().startswith("{") and _labelbin.crop_probe(_absolute(path)):
            return Crop(path, classes)
    return None


def _unknown_value(unknown):
    """(value for the library, NaN output) of BinarizeArray's `unknown`."""
    if unknown is None:
        return None, False
    if isinstance(unknown, float) and math.isnan(unknown):
        return 255, True
    if isinstance(unknown, numbers.Integral) and not isinstance(unknown, bool):
        return int(unknown), False
    raise TypeError("unknown must be an integer from 2 to 255, float('nan') or None, got %r"
                    % (unknown,))


def _roi_args(roi):
    if roi is None:
        return None, None
    from .arrays import _roi_of
    return _roi_of(roi)


def stats(source, groupings=None, infer_negatives=False, voxel_size=None, classes=None,
          roi=None, threads=0, background=0):
    """Present / absent / unknown voxel counts per class or group, streamed
    at codec speed with bounded memory.

    `source` a Crop (or a crop's path): without `groupings` one row per class
    of the crop (from its own array), with them one row per group (the
    three-valued rule; `infer_negatives`, `voxel_size` as for
    BinarizeArray). `source` a label array (path, config or array):
    `groupings` needed; present where BinarizeArray is 1, unknown where
    MissingAnnotationsMask is 0, absent otherwise.

    Returns [{"name", "ids" (groups only), "present", "absent", "unknown",
    "present_share", "absent_share", "unknown_share"}…]."""
    from .arrays import BinarizeArray, MissingAnnotationsMask
    threads = _count(threads, "stats", "threads", _labelbin._INT_MAX)
    crop = _crop_of(source, classes)
    offset, shape = _roi_args(roi)
    if crop is not None:
        target = BinarizeArray(crop, groupings, infer_negatives=infer_negatives, unknown=255,
                               voxel_size=voxel_size)
        rows = _labelbin.count_states(target, None, offset, shape, threads)
    else:
        if infer_negatives or voxel_size is not None or classes is not None:
            raise ValueError("infer_negatives, voxel_size and classes apply to a crop source")
        if groupings is None:
            raise ValueError("a label array needs groupings (a crop without them gives one "
                             "row per class)")
        target = BinarizeArray(source, groupings, background=background)
        mask = MissingAnnotationsMask(source, groupings)
        rows = _labelbin.count_states(target, mask, offset, shape, threads)
    names = target.channels
    groups = None if groupings is None else normalise_groupings(groupings)
    out = []
    for i, (present, absent, unknown) in enumerate(rows):
        total = present + absent + unknown
        row = {"name": names[i]}
        if groups is not None:
            row["ids"] = list(groups[i][1])
        row.update({"present": present, "absent": absent, "unknown": unknown,
                    "present_share": present / total if total else 0.0,
                    "absent_share": absent / total if total else 0.0,
                    "unknown_share": unknown / total if total else 0.0})
        out.append(row)
    return out


def check(path, classes=None, threads=0):
    """Lint the crop at `path` (see ``labelbin check``): a list of findings
    {"level": "error"|"warning", "code", "path", "message"}; [] when
    clean. Raises only when nothing can be checked (no such path)."""
    if isinstance(path, Crop):
        if classes is None:
            classes = path.classes_file
        path = path.path
    threads = _count(threads, "check", "threads", _labelbin._INT_MAX)
    text, where = _classes_text(None if classes is None else _absolute(classes))
    return _labelbin.check(_absolute(path), text, where, threads)
