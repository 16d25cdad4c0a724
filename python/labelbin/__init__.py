"""labelbin for Python: DaCapo's BinarizeArray / MissingAnnotationsMask /
ZarrArray over Zarr v2 and N5 label volumes, backed by labelbin's C library.

    import labelbin
    labels = labelbin.ZarrArray("crop.zarr", "volumes/labels/all")
    gt = labelbin.BinarizeArray(labels, [("mito", [3, 4, 5]), ("er", [16, 17])])
    mask = labelbin.MissingAnnotationsMask(labels, gt.groupings)
    batch = gt[labelbin.Roi((80, 40, 400), (64, 64, 64))]  # numpy uint8 (2, z, y, x)

CellMap crops (per-class arrays with absent / present / unknown values):

    crop = labelbin.Crop("jrc_cos7-1a.zarr/recon-1/labels/groundtruth/crop243")
    gt = labelbin.BinarizeArray(crop, [("mito", [3, 4, 5])], unknown=float("nan"))
    mask = labelbin.MissingAnnotationsMask(crop, [("mito", [3, 4, 5])])
    labelbin.stats(crop), labelbin.check(crop.path)

The API mirrors DaCapo's legacy array classes (properties attrs, axes, dims,
voxel_size, roi, writable, dtype, num_channels, channels, data; ``array[roi]``
returns a numpy array) and funlib.geometry's Coordinate / Roi, so pipelines
can swap their arrays without changing the code around them.

Past one machine: ``array.to_dask()`` is a lazy dask.array of labelbin reads,
and ``labelbin.materialize(array, dest, client=...)`` writes what
``array.to_zarr(dest)`` writes with its blocks shared out as Dask tasks.

Logging: labelbin prints nothing of its own but warnings on stderr, as
"labelbin: warning: ..." lines. ``labelbin.set_log_level(1)`` (or LB_VERBOSE=1 in the
environment at import) adds a line for each retry of a remote read, 2 (or
LB_VERBOSE=2) one for every HTTP request, -1 silences even warnings; it
returns the previous level. URLs in these lines, in error messages and in
the metadata written show no password or query string.

Errors: ValueError for bad ROIs, arguments and virtual-array views;
FileNotFoundError / FileExistsError / OSError for the file system;
labelbin.FormatError (a subclass of Exception, not of ValueError) for
corrupt, invalid or unsupported data and metadata; MemoryError. The message
is always the library's.
"""

from ._labelbin import (FormatError, cache_remove, cache_stats, default_codec_json,
                         get_log_level, set_log_level, version)
from .arrays import (Array, BinarizeArray, DataView, MissingAnnotationsMask, ZarrArray,
                     create_dataset, from_config)
from ._dask import materialize
from .config import normalise_groupings, split_dataset_path
from .crops import (Crop, CropClass, CropLevel, builtin_classes, check, read_classes,
                    stats)
from .geometry import Coordinate, Roi

__version__ = version()

__all__ = [
    "Array", "BinarizeArray", "Coordinate", "Crop", "CropClass", "CropLevel", "DataView",
    "FormatError", "MissingAnnotationsMask", "Roi", "ZarrArray", "builtin_classes",
    "cache_remove", "cache_stats", "check", "create_dataset", "default_codec_json",
    "from_config", "get_log_level", "materialize", "normalise_groupings", "read_classes",
    "set_log_level", "split_dataset_path", "stats", "version",
]
