"""DaCapo's arrays over labelbin's C core: ZarrArray, BinarizeArray,
MissingAnnotationsMask (docs/semantics.md §2-3).

Every array is a labelbin._labelbin.Array (one lb_array) plus the
serialised config it was built from. Wrappers are built from that config:
``BinarizeArray(zarr_array, groupings)`` opens its own handle on the same
dataset (lb_binarize_new takes ownership of its source, so the caller's array
stays independent and usable) and gives it the runtime settings of the array
it wraps that cost no memory of their own (label cache, read threads), which
then pickle with the wrapper; a chunk cache is not doubled unasked.
"""

import json
import numbers
import operator
import os
import warnings

import numpy as np

from . import _labelbin
from .config import (BINARIZE, CROP, MASK, ZARR, normalise_groupings, split_dataset_path,
                     to_config_dict, _absolute, _count)
from .geometry import Coordinate, Roi

__all__ = ["Array", "ZarrArray", "BinarizeArray", "MissingAnnotationsMask", "from_config",
           "create_dataset"]

VIRTUAL_MESSAGE = ("Cannot get a writable view of this array because it is a virtual "
                   "array created by modifying another array on demand.")

_WRITE_MODES = {"r": False, "r+": True, "a": True}


def _roi_of(roi):
    """(offset, shape) int tuples of a labelbin/funlib Roi or any object with
    .offset and .shape."""
    if isinstance(roi, Roi):
        offset, shape = roi.offset, roi.shape
    else:
        try:
            offset, shape = roi.offset, roi.shape
        except AttributeError:
            raise TypeError("expected a Roi (an object with .offset and .shape), got %s"
                            % type(roi).__name__) from None
        if callable(offset):  # funlib < 0.2 had get_offset()-style methods
            offset, shape = offset(), shape()
    return _ints(offset, "offset", roi), _ints(shape, "shape", roi)


def _ints(values, what, roi):
    out = []
    for v in values:
        if v is None:
            raise ValueError("cannot read the unbounded ROI %r" % (roi,))
        try:
            out.append(operator.index(v))
        except TypeError:
            if isinstance(v, numbers.Real) and float(v).is_integer():
                out.append(int(v))
            else:
                raise TypeError("ROI %s entries must be integers, got %r" % (what, v)) from None
    return tuple(out)


class Array(_labelbin.Array):
    """Properties and ROI reads shared by all labelbin arrays."""

    _config = None
    _mode = "r"
    _cache_bytes = 0
    _read_threads = None  # n of set_threads; None: the library's default
    _nan = False  # a three-state crop target read as float32 with NaN for unknown
    _label_cache = None  # (bytes, name) of set_label_cache

    # -- construction helpers --
    def _build(self, cfg):
        self._config = cfg
        lib_cfg = cfg
        if cfg.get("unknown") == "nan":
            # Python only: the library computes 255 for unknown, reads convert.
            lib_cfg = dict(cfg, unknown=255)
            self._nan = True
        self._from_config(json.dumps(lib_cfg), None)

    def __reduce__(self):
        # Pickles as its config (DataLoader workers, multiprocessing).
        return (_rebuild, (type(self), self._config, self._mode, self._cache_bytes,
                           self._read_threads, self._label_cache))

    # -- DaCapo's Array properties --
    @property
    def attrs(self):
        """The attributes (a fresh dict; integers exact)."""
        return json.loads(self._attrs_json)

    @property
    def axes(self):
        return self._axes

    @property
    def dims(self):
        return self._dims

    @property
    def voxel_size(self):
        return Coordinate(self._voxel_size)

    @property
    def roi(self):
        offset, shape = self._roi
        return Roi(offset, shape)

    @property
    def writable(self):
        return self._writable

    @property
    def dtype(self):
        return np.dtype(np.float32) if self._nan else self._dtype

    @property
    def num_channels(self):
        return self._num_channels

    @property
    def channels(self):
        """Channel names (the groupings' names) for wrappers, else []."""
        return self._channels

    @property
    def data(self):
        raise ValueError(VIRTUAL_MESSAGE)

    # -- extras --
    @property
    def shape(self):
        """Shape of the whole array in elements (channels first)."""
        return self._shape

    @property
    def ndim(self):
        return self._ndim

    @property
    def kind(self):
        """"ZarrArray", "BinarizeArray" or "MissingAnnotationsMask"."""
        return self._kind

    @property
    def format(self):
        """"zarr2", "n5" or "zarr3" for stored arrays, None for virtual ones."""
        return self._format

    @property
    def chunks(self):
        """Chunk shape in elements (stored arrays), else None; for a sharded
        Zarr v3 array the inner chunk shape, as zarr-python 3's
        ``Array.chunks``."""
        return self._chunks

    @property
    def shards(self):
        """The shard shape of a sharded Zarr v3 array, else None."""
        return self._shards

    @property
    def codec(self):
        """The codecs in the format's own words: a Zarr v2 compressor (dict,
        None if raw), an N5 compression (dict), the Zarr v3 codecs (list);
        None for virtual arrays."""
        text = self._codec_json
        return None if text is None else json.loads(text)

    @property
    def codecs(self):
        """The codec chain in words, e.g. "bytes(little) | zstd(3)"."""
        return self._codecs

    @property
    def path(self):
        """The stored dataset path (for wrappers: the source's)."""
        return self._source_path

    @property
    def warnings(self):
        return self._warnings

    @property
    def annotations(self):
        """Kind of `labels` metadata: "none", "boolean", "string" or "invalid"."""
        return self._annotations

    @property
    def config(self):
        """The serialised DaCapo config this array was built from (a copy)."""
        return json.loads(json.dumps(self._config))

    def set_cache(self, nbytes):
        """Cache up to `nbytes` (an int) of decoded chunks of the stored array,
        privately in this process. The memory (at most the array's decoded
        size) is reserved here, once, so that reads that miss cost no more
        than without a cache. A chunk cache replaces a label cache
        (set_label_cache); set_cache(0) turns the chunk cache off and
        leaves a label cache on (turn that off with set_label_cache(0)).
        Waits for reads in other threads to finish."""
        nbytes = _count(nbytes, "set_cache", "nbytes", _labelbin._SIZE_MAX, " bytes")
        super().set_cache(nbytes)
        self._cache_bytes = nbytes
        if nbytes:
            self._label_cache = None

    def set_label_cache(self, nbytes, name=None):
        """Keep the chunks of the stored (integer) label array compressed in
        a cache shared by every process that uses the same `name`: the file
        /dev/shm/`name` of `nbytes` bytes (an int: at least 1 MiB, at most
        2**63-1 and what /dev/shm holds; 0 = off), created when absent; a
        cache already there keeps its size (a warning says so when it
        differs; remove it to resize it). `name` is a str of 1-127 letters,
        digits, '.', '_' or '-', not starting with '.' (None:
        "labelbin-cache-UID", one per user). FileExistsError when something
        that is not this user's labelbin cache is at /dev/shm/`name`: it is
        never used, replaced or removed.
        Chunks are stored as per-8³-block id tables and packed indices, so
        a cache usually holds a crop in a small fraction of its uint64 size,
        and BinarizeArray / MissingAnnotationsMask read from that form
        directly. Reads equal uncached reads byte for byte. The setting
        survives pickling: DataLoader workers, forked or spawned, open the
        same file and share its entries. The file outlives the processes:
        an entry whose chunk file changed on disk since it was cached is
        found stale the first time this array takes it, and read anew
        (cache_info()["stale"]; files only, not http/s3); later reads take
        only entries of the chunk as this array saw it. Replaces
        set_cache, and the other way round, except that set_cache(0) only
        turns a chunk cache off and leaves the label cache on:
        set_label_cache(0) turns it off. When the call fails (too few
        bytes, a bad name, no room in /dev/shm), the array keeps the cache
        it had, and so do its pickled copies. Waits for reads in other
        threads to finish."""
        nbytes = _count(nbytes, "set_label_cache", "nbytes", _labelbin._LABEL_CACHE_MAX,
                        " bytes")
        if name is not None and not isinstance(name, str):
            raise TypeError("set_label_cache: name must be a str or None, not %s %.40r"
                            % (type(name).__name__, name))
        # The settings that pickle change only once the library took the new
        # one: after a failure the array keeps its cache, and so do copies.
        super()._set_label_cache(name, nbytes)
        self._label_cache = (nbytes, name) if nbytes else None
        if nbytes:
            self._cache_bytes = 0

    def warm(self, roi=None, threads=0):
        """Fill the label cache (set_label_cache) with every chunk that `roi`
        (default: the whole array) touches, decoding with `threads` threads
        (0 = one per CPU). Chunks already cached are not decoded again.
        Releases the GIL."""
        threads = _count(threads, "warm", "threads", _labelbin._INT_MAX)
        if roi is None:
            self._warm(None, None, threads)
        else:
            offset, shape = _roi_of(roi)
            self._warm(offset, shape, threads)

    def set_threads(self, n):
        """Decode the chunks of each read with up to `n` threads (1 = the
        calling thread only, the default for local files; arrays read over
        http(s) or s3 default to 32, LB_HTTP_CONCURRENCY; 0 = one per CPU).
        Pays off for ROIs spanning many chunks; reads touching one chunk stay
        single-threaded."""
        n = _count(n, "set_threads", "n", _labelbin._INT_MAX)
        super().set_threads(n)
        self._read_threads = n

    def _take_settings(self, other):
        """The runtime settings of `other` that cost no memory of their own
        (its label cache, a shared file; its read threads), for a wrapper
        built over it. A chunk cache is memory reserved per array: making
        the wrapper another would double it unasked, so it is not taken,
        and a warning says how to move it."""
        if other._label_cache:
            self.set_label_cache(*other._label_cache)
        elif other._cache_bytes:
            warnings.warn(
                "%s: the chunk cache set on its source (set_cache(%d)) is not taken: a chunk "
                "cache is memory of each array's own, and the wrapper reads through a handle "
                "of its own; call set_cache on the wrapper (and set_cache(0) on the source "
                "if it is not read otherwise), or use set_label_cache, which is shared"
                % (type(self).__name__, other._cache_bytes), RuntimeWarning, stacklevel=4)
        if other._read_threads is not None:
            self.set_threads(other._read_threads)

    # -- reading --
    def __getitem__(self, roi):
        """Read `roi` (world units; inside the array's ROI and voxel-aligned)
        into a new C-contiguous numpy array of shape (channels,) +
        roi.shape / voxel_size. Releases the GIL; safe from several threads."""
        return self._read_roi(*_roi_of(roi), None)

    def to_ndarray(self, roi=None, out=None):
        """`self[roi]`, the whole ROI by default. With `out`, a numpy array of
        exactly the read's shape and dtype (C-contiguous, aligned and
        writable, e.g. a buffer reused across training steps or the numpy
        view of a pinned torch tensor), the read goes into it and returns
        it: no new array is made. Any other `out` is refused with a message
        that says what it is (a copy made to fit, such as
        np.ascontiguousarray's, would not be the buffer filled). If the
        read fails, `out` holds undefined values."""
        return self._read_roi(*_roi_of(self.roi if roi is None else roi), out)

    def _read_roi(self, offset, shape, out):
        if not self._nan:
            return self._read(offset, shape, out)
        raw = self._read(offset, shape)
        f = raw.astype(np.float32)
        f[raw == 255] = np.nan
        if out is None:
            return f
        _labelbin._check_out(out, f)
        out[...] = f
        return out

    def to_zarr(self, dest, roi=None, threads=0, codec=None, chunks=None, overwrite=False,
                resume=False, ome_ngff=False, progress=None, provenance=None, format=None,
                shard=None, channel_chunks=None):
        """Materialise the array (over `roi`, default all) as a new Zarr
        dataset at `dest`, in parallel, atomically, resumably — the CLI's
        writer. `format`: "zarr2" (the default) or "zarr3"; `shard` (Zarr
        v3): spatial shard shape in voxels, a multiple of the chunks, each
        shard one file; `channel_chunks`: "together" (the default, all
        channels of a block in one chunk) or "separate" (one chunk per
        channel). `codec`: a short form ("zstd:3", "blosc-lz4", "gzip:6",
        "none"), a Zarr v2 compressor dict or a Zarr v3 codec dict; `chunks`:
        spatial (inner) chunk shape in voxels; `progress(done, total)` is
        called from this thread. Ctrl-C
        stops after the chunks in flight (KeyboardInterrupt). Returns the
        write statistics as a dict.

        `dest` may not be, contain or lie inside the stored array this one
        reads (symlinks and ".." resolved): ValueError, with or without
        `overwrite`. Until the run completes, `dest` carries
        ``"labelbin": {"complete": false}`` in its attributes; after a
        failure, call again with ``resume=True`` to finish it."""
        threads = _count(threads, "to_zarr", "threads", _labelbin._INT_MAX)
        o = _write_options(self, roi, codec, chunks, overwrite, resume, ome_ngff, provenance,
                           format, shard, channel_chunks)
        return self._materialize(_absolute(dest), o["offset"], o["shape"], threads,
                                 o["codec"], o["chunks"], o["overwrite"], o["resume"],
                                 o["ome_ngff"], o["provenance"], progress, o["format"],
                                 o["shard"], o["channel_chunks"])

    def to_dask(self, chunks=None):
        """A lazy ``dask.array.Array`` of the whole array (channels first,
        index 0 at the ROI's begin) whose blocks are labelbin reads: slice
        it, ``compute()`` it or ``da.to_zarr`` it, on Dask's threads (reads
        release the GIL) or a dask.distributed cluster (the array pickles as
        its config). `chunks`: None = the stored chunks under the array,
        all channels in each block; an int or a tuple of spatial sizes; or
        a chunks argument over all axes as ``dask.array`` takes it."""
        from ._dask import to_dask
        return to_dask(self, chunks)

    # -- previews --
    def preview(self, axis=None, at=None, roi=None, scale=None, max_size=None, grid=False,
                montage=None, groups=None, background=0, mask=False, labels=None):
        """Draw a 2-D section as a numpy (height, width, 3) uint8 RGB image,
        as ``labelbin preview`` does (labelbin.h, "Previews").

        `axis`: the spatial axis across the section by name ("z", "y", "x";
        default the first spatial axis); `at`: a world coordinate along it
        (default the middle of the ROI); `roi`: a window (a Roi, world
        units); `scale`: pixels per voxel (default 1) or `max_size`: shrink
        to fit max_size × max_size pixels (nearest neighbour); `montage`:
        N evenly spaced sections; `grid`: one panel per channel. Over a
        label array, `groups` ({"mito": [3, 4, 5]} or [("mito", [3, 4, 5])])
        are drawn as overlays (empty groups: label != `background`) and
        `mask=True` adds stripes where their training mask is 0. A
        BinarizeArray or MissingAnnotationsMask is drawn over its labels; a
        written target or mask over `labels` (an array or a dataset path)
        when given. Colours: a stable colour per label id (background
        black), group i its own hue. Releases the GIL; reads only the
        chunks the section touches."""
        kw = self._preview_kwargs(axis, at, roi, scale, max_size, grid, montage, groups,
                                  background, mask, labels)
        return self._preview(**kw)

    def save_preview(self, path, axis=None, at=None, roi=None, scale=None, max_size=None,
                     grid=False, montage=None, groups=None, background=0, mask=False,
                     labels=None):
        """Write `self.preview(...)` to `path` as a PNG image (atomically;
        an existing PNG is replaced, any other existing file or a path in
        an input dataset is refused). Returns what was drawn: a dict with
        width, height, panel_width, panel_height, panels, axis (spatial
        index, -1 for 2-D), sections, first_at, last_at, channels."""
        kw = self._preview_kwargs(axis, at, roi, scale, max_size, grid, montage, groups,
                                  background, mask, labels)
        return self._save_preview(_absolute(path), **kw)

    def _preview_kwargs(self, axis, at, roi, scale, max_size, grid, montage, groups,
                        background, mask, labels):
        kw = {"axis": axis, "grid": bool(grid), "mask": bool(mask),
              "background": operator.index(background)}
        if at is not None:
            kw["at"] = operator.index(at)
        if roi is not None:
            kw["offset"], kw["shape"] = _roi_of(roi)
        for name, value in (("scale", scale), ("max_size", max_size), ("montage", montage)):
            if value is not None:
                value = operator.index(value)
                if value < 1:
                    raise ValueError("%s must be 1 or more, not %d" % (name, value))
                kw[name] = value
        if groups is not None:
            kw["groups"] = json.dumps(normalise_groupings(groups))
        if labels is not None:
            if not isinstance(labels, _labelbin.Array):
                labels = ZarrArray(labels)
            kw["labels"] = labels
        return kw

    # -- context manager --
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        if self.closed:
            return "%s(<closed>)" % type(self).__name__
        return "%s(%s, %d channels, roi %r)" % (type(self).__name__, self._source_path,
                                                self._num_channels or 0, self.roi)


def _write_options(array, roi, codec, chunks, overwrite, resume, ome_ngff, provenance,
                   format, shard, channel_chunks):
    """to_zarr's keyword arguments in the extension's words (to_zarr, to_crop
    and labelbin.materialize share them)."""
    offset = shape = None
    if roi is not None:
        offset, shape = _roi_of(roi)
    if isinstance(codec, dict):
        codec = json.dumps(codec)

    def per_dim(v):  # an int for every spatial dimension, or a sequence of them
        if v is None:
            return None
        if isinstance(v, numbers.Integral):
            return (int(v),) * array.dims
        return tuple(operator.index(c) for c in v)

    chunks, shard = per_dim(chunks), per_dim(shard)
    if provenance is not None and not isinstance(provenance, str):
        provenance = json.dumps(provenance)
    layouts = {None: 0, "separate": 1, "together": 2}
    if channel_chunks not in layouts:
        raise ValueError('channel_chunks must be "together" or "separate", not %r'
                         % (channel_chunks,))
    return {"offset": offset, "shape": shape, "codec": codec, "chunks": chunks,
            "overwrite": bool(overwrite), "resume": bool(resume), "ome_ngff": bool(ome_ngff),
            "provenance": provenance, "format": format, "shard": shard,
            "channel_chunks": layouts[channel_chunks]}



def _rebuild(cls, cfg, mode, cache_bytes, read_threads=None, label_cache=None):
    if cls is ZarrArray:
        a = ZarrArray(cfg, mode=mode)
    else:
        a = cls.__new__(cls)
        Array._build(a, cfg)
    if cache_bytes:
        a.set_cache(cache_bytes)
    if label_cache:
        a.set_label_cache(*label_cache)
    if read_threads is not None:
        a.set_threads(read_threads)
    return a


def _is_config_like(obj):
    return not isinstance(obj, (str, bytes)) and not hasattr(obj, "__fspath__")


class ZarrArray(Array):
    """A stored dataset (Zarr v2, N5 or Zarr v3), DaCapo's ZarrArray.

    ``ZarrArray(file_name, dataset, axes=None, mode="r")`` or
    ``ZarrArray(array_config)``; ``ZarrArray("crop.zarr/volumes/labels/all")``
    also works (the container is the last ``*.zarr``/``*.n5`` component).
    `file_name` may be a URL — ``https://…/crop.zarr``, ``s3://bucket/…``
    — read only (docs/remote.md).
    mode "r" opens read-only; "r+" and "a" allow writes. With a config, the
    config's own ``mode`` is used when `mode` is not given.
    """

    def __init__(self, file_name, dataset=None, axes=None, mode=None, snap_to_grid=None,
                 name=None):
        if _is_config_like(file_name):
            cfg = to_config_dict(file_name, ZARR)
            if cfg.get("__type__") != ZARR:
                raise TypeError("ZarrArray needs a ZarrArrayConfig, got %s"
                                % cfg.get("__type__"))
            if mode is None:
                cfg_mode = getattr(file_name, "mode", None)
                if cfg_mode is None and isinstance(file_name, dict):
                    cfg_mode = file_name.get("mode")
                mode = cfg_mode
        else:
            if dataset is None:
                file_name, dataset = split_dataset_path(file_name)
            cfg = {"__type__": ZARR, "name": name or str(dataset),
                   "file_name": _absolute(file_name), "dataset": str(dataset).lstrip("/")}
            if axes is not None:
                cfg["axes"] = [str(a) for a in axes]
            if snap_to_grid is not None:
                cfg["snap_to_grid"] = [operator.index(v) for v in snap_to_grid]
        mode = "r" if mode is None else mode
        if mode not in _WRITE_MODES:
            raise ValueError("Mode %s not in %s" % (mode, list(_WRITE_MODES)))
        self._mode = mode
        if "snap_to_grid" in cfg:
            # Only the config path knows snap_to_grid; those arrays are read-only.
            if _WRITE_MODES[mode]:
                raise ValueError("a ZarrArray with snap_to_grid is read-only: open it "
                                 "with mode='r'")
            self._build(cfg)
            return
        self._config = cfg
        self._open(cfg["file_name"].rstrip("/") + "/" + cfg["dataset"], _WRITE_MODES[mode],
                   cfg.get("axes"))

    @property
    def file_name(self):
        return self._config["file_name"]

    @property
    def dataset(self):
        return self._config["dataset"]

    @property
    def mode(self):
        return self._mode

    @property
    def data(self):
        """Index-space view over all axes (numpy-style basic indexing)."""
        return DataView(self)

    def __setitem__(self, roi, value):
        """Write `value` (array of the ROI's shape, broadcastable, or scalar)
        into `roi` (world units, aligned, inside)."""
        offset, shape = _roi_of(roi)
        vs = self._voxel_size
        if (len(shape) != len(vs) or any(s < 0 for s in shape)
                or not self.roi.contains(Roi(offset, shape))
                or not Coordinate(offset + shape).is_multiple_of(vs + vs)):
            # Refused before allocating anything; the library words the error.
            self._write(offset, shape, b"")
        lead = self._shape[:self._ndim - self._dims]
        out_shape = tuple(lead) + tuple(s // v for s, v in zip(shape, vs))
        self._write(offset, shape, _as_buffer(value, out_shape, self._dtype))

    def __repr__(self):
        if not self._config:
            return "ZarrArray(<unopened>)"
        return "ZarrArray(%s, %s)" % (self._config["file_name"], self._config["dataset"])


def _as_buffer(value, shape, dtype):
    arr = value
    if not (isinstance(arr, np.ndarray) and arr.dtype == dtype and arr.shape == shape
            and arr.flags.c_contiguous):
        arr = np.empty(shape, dtype=dtype)
        arr[...] = value
    return arr


class DataView:
    """``ZarrArray.data``: numpy-style basic indexing (ints, slices with any
    step for reads and step 1 for writes, Ellipsis) over all array axes,
    backed by lb_array_data_read / lb_array_data_write."""

    def __init__(self, array):
        self._array = array

    @property
    def shape(self):
        return self._array.shape

    @property
    def dtype(self):
        return self._array.dtype

    @property
    def ndim(self):
        return self._array.ndim

    @property
    def chunks(self):
        return self._array.chunks

    def __len__(self):
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        a = self[...]
        return a if dtype is None else a.astype(dtype, copy=False)

    def _box(self, key, writing):
        shape = self.shape
        if not isinstance(key, tuple):
            key = (key,)
        if sum(k is Ellipsis for k in key) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        if Ellipsis in [k for k in key if k is Ellipsis]:
            i = next(i for i, k in enumerate(key) if k is Ellipsis)
            fill = len(shape) - (len(key) - 1)
            key = key[:i] + (slice(None),) * fill + key[i + 1:]
        if len(key) > len(shape):
            raise IndexError("too many indices: array is %d-dimensional, but %d were "
                             "indexed" % (len(shape), len(key)))
        key = key + (slice(None),) * (len(shape) - len(key))
        start, count, post, squeeze = [], [], [], []
        for axis, (k, n) in enumerate(zip(key, shape)):
            if isinstance(k, slice):
                b, e, step = k.indices(n)
                if step != 1 and writing:
                    raise IndexError("writes through .data need step 1 slices")
                if step > 0:
                    lo, hi = b, max(b, e)
                    sub = slice(None, None, step)
                else:
                    lo, hi = (e + 1, b + 1) if e < b else (0, 0)
                    sub = slice(None, None, step)
                start.append(lo)
                count.append(hi - lo)
                post.append(sub)
            else:
                try:
                    i = operator.index(k)
                except TypeError:
                    raise IndexError("only integers, slices and Ellipsis are valid indices "
                                     "for .data, got %r" % (k,)) from None
                if i < 0:
                    i += n
                if not 0 <= i < n:
                    raise IndexError("index %d is out of bounds for axis %d with size %d"
                                     % (operator.index(k), axis, n))
                start.append(i)
                count.append(1)
                post.append(0)
                squeeze.append(axis)
        return start, count, tuple(post)

    def __getitem__(self, key):
        start, count, post = self._box(key, False)
        out = self._array._data_read(start, count)
        if all(isinstance(p, slice) and p.step == 1 for p in post):
            return out
        res = out[post]
        return np.ascontiguousarray(res) if isinstance(res, np.ndarray) else res

    def __setitem__(self, key, value):
        start, count, post = self._box(key, True)
        self._array._data_write(start, count, _as_buffer(value, tuple(count), self.dtype))

    def __repr__(self):
        return "<labelbin data view %s %s>" % (self.shape, self.dtype)


def _source_config(source):
    if isinstance(source, (str, bytes)) and not str(source).lstrip().startswith("{") \
            or hasattr(source, "__fspath__"):
        file_name, dataset = split_dataset_path(source)
        return {"__type__": ZARR, "name": str(dataset), "file_name": _absolute(file_name),
                "dataset": dataset}
    return to_config_dict(source)


class _Wrapper(Array):
    _type = None

    def _init(self, source, groupings, extra, name):
        if groupings is None:
            cfg = to_config_dict(source, self._type)
            if cfg.get("__type__") != self._type:
                raise TypeError("%s needs a %s (or a source and groupings), got %s"
                                % (type(self).__name__, self._type, cfg.get("__type__")))
        else:
            cfg = {"__type__": self._type,
                   "name": name or ("binarize" if self._type == BINARIZE else "mask"),
                   "source_array_config": _source_config(source),
                   "groupings": normalise_groupings(groupings)}
            cfg.update(extra)
        self._build(cfg)
        if isinstance(source, Array):
            self._take_settings(source)

    def _init_crop(self, crop, groupings, name, extra):
        """Over a CellMap crop (crops.py): a CellMapCropConfig source;
        groupings None gives one channel per class of the crop."""
        from .crops import _unknown_value
        voxel_size = extra.pop("voxel_size", None)
        cfg = {"__type__": self._type,
               "name": name or ("binarize" if self._type == BINARIZE else "mask"),
               "source_array_config": crop.config(voxel_size),
               "groupings": None if groupings is None else normalise_groupings(groupings)}
        if extra.pop("infer_negatives", False):
            cfg["infer_negatives"] = True
        unknown = extra.pop("unknown", None)
        value, nan = _unknown_value(unknown)
        if value is not None:
            cfg["unknown"] = "nan" if nan else value
        self._build(cfg)

    @property
    def groupings(self):
        """[(name, [ids])…] as configured (None: one channel per class of a
        crop)."""
        g = self._config["groupings"]
        return None if g is None else [(n, list(ids)) for n, ids in g]

    @property
    def source_array_config(self):
        return json.loads(json.dumps(self._config["source_array_config"]))

    @property
    def source(self):
        """A new array for the source (built from its config, without this
        array's cache and thread settings); a Crop for arrays over a crop."""
        src = self._config["source_array_config"]
        if src.get("__type__") == CROP:
            from .crops import Crop
            return Crop(os.path.join(src["file_name"], src["dataset"]), src.get("classes"))
        return from_config(src)

    @property
    def crop(self):
        """True for an array over a CellMap crop."""
        return self._config["source_array_config"].get("__type__") == CROP


# What a wrapper takes from a labelbin array it is built over (the class
# docstrings of BinarizeArray and MissingAnnotationsMask end with it).
_SOURCE_SETTINGS = """
    When `source` is a labelbin array, the wrapper reads its dataset
    through a handle of its own that takes `source`'s label cache
    (set_label_cache: the same shared file) and read threads
    (set_threads). A chunk cache (set_cache) is memory of each array's own
    and is not taken (a RuntimeWarning says so): set one on the wrapper.
    The settings taken pickle with the wrapper. Settings changed on
    `source` afterwards do not reach the wrapper: set them on the wrapper.
    """


class BinarizeArray(_Wrapper):
    __doc__ = """DaCapo's BinarizeArray: channel i is 1 where the label is in group i's
    ids (an empty group: label != background), else 0; uint8, always 0/1.

    ``BinarizeArray(source, groupings, background=0)`` with `source` a
    labelbin array, a dataset path or a source config; or
    ``BinarizeArray(binarize_array_config)``.
    """ + _SOURCE_SETTINGS

    _type = BINARIZE

    def __init__(self, source, groupings=None, background=0, name=None, infer_negatives=False,
                 unknown=None, voxel_size=None, classes=None):
        from .crops import _crop_of
        crop = _crop_of(source, classes)
        if crop is not None:
            if operator.index(background) != 0:
                raise ValueError("a crop has no background id (an empty group means any "
                                 "class of the crop)")
            self._init_crop(crop, groupings, name, {"infer_negatives": infer_negatives,
                                                    "unknown": unknown,
                                                    "voxel_size": voxel_size})
            return
        if infer_negatives or unknown is not None or voxel_size is not None or classes:
            raise ValueError("infer_negatives, unknown, voxel_size and classes apply to a "
                             "CellMap crop source (labelbin.Crop)")
        self._init(source, groupings, {"background": operator.index(background)}, name)

    @property
    def background(self):
        return self._config.get("background", 0)

    @property
    def unknown(self):
        """The unknown value of a three-state target over a crop (float NaN
        when reads give float32), else None."""
        u = self._config.get("unknown")
        return float("nan") if u == "nan" else u

    def to_crop(self, dest, roi=None, threads=0, codec=None, chunks=None, overwrite=False,
                resume=False, progress=None, provenance=None, format=None, shard=None):
        """Write a three-state target over a crop (``unknown`` set) as a new
        CellMap crop at `dest`: a class group ``dest/<group>`` per group,
        its array ``s0`` holding 1 present, 0 absent and the unknown value,
        with ``cellmap.annotation`` attributes and ``complement_counts``
        counted while writing. Options as ``to_zarr``."""
        if self._config.get("unknown") is None:
            raise ValueError("to_crop writes three-state targets: build the array with "
                             "unknown=255 (or another value from 2 to 255)")
        threads = _count(threads, "to_crop", "threads", _labelbin._INT_MAX)
        # a crop's levels are OME-NGFF multiscales; channels are class groups
        o = _write_options(self, roi, codec, chunks, overwrite, resume, True, provenance,
                           format, shard, None)
        return self._materialize(_absolute(dest), o["offset"], o["shape"], threads,
                                 o["codec"], o["chunks"], o["overwrite"], o["resume"],
                                 o["ome_ngff"], o["provenance"], progress, o["format"],
                                 o["shard"], o["channel_chunks"], True)


class MissingAnnotationsMask(_Wrapper):
    __doc__ = """DaCapo's MissingAnnotationsMask: every channel is label > 0, except
    channels whose group holds an id that the `labels` metadata marks present
    but not annotated (all 0).

    ``MissingAnnotationsMask(source, groupings)`` or
    ``MissingAnnotationsMask(mask_config)``.
    """ + _SOURCE_SETTINGS

    _type = MASK

    def __init__(self, source, groupings=None, name=None, infer_negatives=False,
                 voxel_size=None, classes=None):
        from .crops import _crop_of
        crop = _crop_of(source, classes)
        if crop is not None:
            self._init_crop(crop, groupings, name, {"infer_negatives": infer_negatives,
                                                    "voxel_size": voxel_size})
            return
        if infer_negatives or voxel_size is not None or classes:
            raise ValueError("infer_negatives, voxel_size and classes apply to a CellMap crop "
                             "source (labelbin.Crop)")
        self._init(source, groupings, {}, name)

    @property
    def masked_off(self):
        """{channel name: [ids]} for the channels that are 0 everywhere: the
        ids of each such group that the `labels` metadata marks present but
        not annotated."""
        return {name: ids for name, ids in zip(self.channels, self._mask_off_ids) if ids}

    @property
    def unlisted_ids(self):
        """Label ids > 0 that reads so far met in the data although the
        `labels` metadata does not list them as present (no entry, or
        ``present: false``). DaCapo's rule counts them as annotated (1 in
        every channel not masked off); it often means stale metadata.
        Ascending, at most 64; [] without a `labels` attribute."""
        return self._mask_unlisted_ids


_CLASSES = {ZARR: ZarrArray, BINARIZE: BinarizeArray, MASK: MissingAnnotationsMask}


def from_config(cfg, mode=None):
    """Build the array a DaCapo array config describes: a config object, its
    serialised dict (``__type__``) or JSON text. Unknown types raise
    ValueError listing the supported ones."""
    d = to_config_dict(cfg)
    kind = d.get("__type__")
    if kind == ZARR:
        if mode is None and not isinstance(cfg, (str, bytes, dict)):
            mode = getattr(cfg, "mode", None)
        return ZarrArray(d, mode=mode)
    cls = _CLASSES.get(kind, Array)
    a = cls.__new__(cls)
    Array._build(a, d)
    return a


def create_dataset(path, shape, chunks, dtype="uint8", codec=None, fill_value=0,
                   attrs=None, overwrite=False, format="zarr2", order="C", separator=None,
                   big_endian=False, shard=None):
    """Create a stored dataset (Zarr v2, N5 or Zarr v3) and return it as a
    writable ZarrArray. `codec`: short form or compressor dict, None = raw;
    `attrs`: a dict (e.g. {"resolution": [8, 4, 4], "offset": [0, 0, 0]});
    `separator`: the chunk key separator, None = the format's default;
    `shard` (Zarr v3): the shard shape, a multiple of `chunks`."""
    a = ZarrArray.__new__(ZarrArray)
    if isinstance(codec, dict):
        codec = json.dumps(codec)
    dtype = np.dtype(dtype).name
    path = _absolute(path)
    a._create(path, tuple(shape), tuple(chunks), dtype=dtype, format=format, codec=codec,
              fill_value=json.dumps(fill_value),
              attrs=None if attrs is None else json.dumps(attrs), overwrite=bool(overwrite),
              big_endian=bool(big_endian), order=order, separator=separator,
              shard=None if shard is None else tuple(shard))
    file_name, dataset = split_dataset_path(path)
    a._config = {"__type__": ZARR, "name": dataset, "file_name": file_name,
                 "dataset": dataset}
    a._mode = "r+"
    return a
