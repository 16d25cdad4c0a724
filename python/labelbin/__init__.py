"""labelbin for Python: DaCapo's BinarizeArray / MissingAnnotationsMask /
ZarrArray over Zarr v2 and N5 label volumes, backed by labelbin's C library.

    import labelbin
    labels = labelbin.ZarrArray("crop.zarr", "volumes/labels/all")
    gt = labelbin.BinarizeArray(labels, [("mito", [3, 4, 5]), ("er", [16, 17])])
    mask = labelbin.MissingAnnotationsMask(labels, gt.groupings)
    batch = gt[labelbin.Roi((80, 40, 400), (64, 64, 64))]  # numpy uint8 (2, z, y, x)

The API mirrors DaCapo's legacy array classes (properties attrs, axes, dims,
voxel_size, roi, writable, dtype, num_channels, channels, data; ``array[roi]``
returns a numpy array) and funlib.geometry's Coordinate / Roi, so pipelines
can swap their arrays without changing the code around them.

Past one machine: ``array.to_dask()`` is a lazy dask.array of labelbin reads,
and ``labelbin.materialize(array, dest, client=...)`` writes what
``array.to_zarr(dest)`` writes with its blocks shared out as Dask tasks.

Errors: ValueError for bad ROIs, arguments and virtual-array views;
FileNotFoundError / FileExistsError / OSError for the file system;
labelbin.FormatError (a subclass of Exception, not of ValueError) for
corrupt, invalid or unsupported data and metadata; MemoryError. The message
is always the library's.
"""

from ._labelbin import FormatError, default_codec_json, version
from .arrays import (Array, BinarizeArray, DataView, MissingAnnotationsMask, ZarrArray,
                     create_dataset, from_config)
from ._dask import materialize
from .config import normalise_groupings, split_dataset_path
from .geometry import Coordinate, Roi

__version__ = version()

__all__ = [
    "Array", "BinarizeArray", "Coordinate", "DataView", "FormatError",
    "MissingAnnotationsMask", "Roi", "ZarrArray", "create_dataset", "default_codec_json",
    "from_config", "materialize", "normalise_groupings", "split_dataset_path", "version",
]
