"""labelbin arrays in Dask: ``Array.to_dask()`` (a lazy dask.array whose
blocks read through labelbin) and ``materialize()`` (the writer of
``to_zarr`` with its blocks shared out as Dask tasks, on a
dask.distributed cluster or Dask's local threads).

Arrays pickle as their DaCapo config and are reopened where a task runs;
labelbin's reads and writes release the GIL, so threaded workers run them in
parallel. Dask is imported when these functions are called, never by
``import labelbin``.
"""

import json
import numbers

import numpy as np

from . import _labelbin
from .arrays import _write_options
from .config import _absolute, _count

__all__ = ["to_dask", "materialize"]

DEFAULT_CHUNK = 64


class _DaskSource:
    """What ``dask.array.from_array`` reads: shape, dtype and ``x[slices]``
    in element indices over all axes (channels first), turned into a labelbin
    ROI read (all channels) and sliced along the channel axes."""

    def __init__(self, array):
        self.array = array
        self.shape = tuple(array.shape)
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)
        self._lead = self.ndim - array.dims
        self._offset = tuple(array.roi.offset)
        self._voxel = tuple(array.voxel_size)

    def __dask_tokenize__(self):
        a = self.array
        return ("labelbin", type(a).__name__, json.dumps(a._config, sort_keys=True),
                getattr(a, "_mode", "r"))

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        box = []
        for k, n in zip(key, self.shape):
            if not isinstance(k, slice):
                raise IndexError("labelbin's Dask source takes slices, got %r" % (k,))
            b, e, step = k.indices(n)
            if step != 1:
                raise IndexError("labelbin's Dask source takes step 1 slices")
            box.append((b, max(b, e)))
        out_shape = tuple(e - b for b, e in box)
        spatial = box[self._lead:]
        if any(e == b for b, e in box):
            return np.zeros(out_shape, dtype=self.dtype)
        offset = [o + b * v for o, (b, _), v in zip(self._offset, spatial, self._voxel)]
        shape = [(e - b) * v for (b, e), v in zip(spatial, self._voxel)]
        # as array[roi] reads (a three-state target as float32 with NaN)
        data = self.array._read_roi(tuple(offset), tuple(shape), None)
        lead = tuple(slice(b, e) for b, e in box[:self._lead])
        return np.ascontiguousarray(data[lead]) if lead else data


def _default_chunks(array):
    """The stored chunks under the array (its source's for wrappers; the
    inner chunks of a sharded source), channels whole."""
    spatial = None
    stored = array
    try:
        # a crop (labelbin.Crop) as the source has no chunks of its own
        while (stored is not None and getattr(stored, "chunks", None) is None
               and hasattr(stored, "source")):
            stored = stored.source
        if stored is not None and getattr(stored, "chunks", None) is not None:
            spatial = tuple(stored.chunks)[-array.dims:]
    except (OSError, ValueError, TypeError):
        spatial = None
    if spatial is None or len(spatial) != array.dims:
        spatial = (DEFAULT_CHUNK,) * array.dims
    lead = tuple(array.shape[:array.ndim - array.dims])
    return lead + tuple(spatial)


def to_dask(array, chunks=None):
    """A lazy ``dask.array.Array`` over the whole array (channels first, the
    array's voxel grid, index 0 at its ROI's begin), each block one labelbin
    read. `chunks`: None = the stored chunks under the array with all
    channels in each block; an int or a tuple of spatial chunk sizes (the
    channels stay whole); a tuple over all axes; or anything
    ``dask.array.from_array`` takes ("auto", ...)."""
    import dask.array as da

    lead = array.ndim - array.dims
    natural = _default_chunks(array)
    if chunks is None:
        chunks = natural
    elif isinstance(chunks, numbers.Integral):
        chunks = natural[:lead] + (int(chunks),) * array.dims
    elif isinstance(chunks, (tuple, list)) and len(chunks) == array.dims and lead:
        chunks = natural[:lead] + tuple(chunks)
    src = _DaskSource(array)
    return da.from_array(src, chunks=chunks, asarray=False, fancy=False, lock=False,
                         meta=np.empty((0,) * src.ndim, dtype=src.dtype),
                         name="labelbin-" + da.core.tokenize(src, chunks))


def _write_blocks(array, dest, options, first, count, threads):
    """One Dask task: attach to the output and write blocks
    [first, first + count); returns the statistics of those blocks."""
    job = _labelbin._write_job(array, True, dest, **options)
    try:
        return job.blocks(first, count, threads)
    finally:
        job.close()


def _add_stats(total, s):
    for k in ("blocks_done", "blocks_skipped", "chunks_written", "chunks_empty",
              "bytes_written"):
        total[k] += s[k]
    total["threads"] = max(total["threads"], s["threads"])  # per task
    total["positive"] = [a + b for a, b in zip(total["positive"], s["positive"])]


def materialize(array, dest, client=None, roi=None, codec=None, chunks=None, overwrite=False,
                resume=False, ome_ngff=False, provenance=None, format=None, shard=None,
                channel_chunks=None, blocks_per_task=None, threads=1, progress=None):
    """Write `array` to `dest` as ``array.to_zarr`` does — the same bytes,
    atomically and resumably — with the blocks shared out as Dask tasks.

    The caller prepares `dest` and writes its metadata (``lb_write_begin``);
    each task attaches to it and writes `blocks_per_task` consecutive blocks
    (default: about 8 tasks per worker thread of the cluster, at least one
    block each) with `threads` threads; when every task has succeeded the
    caller marks the output complete. `client`: a ``distributed.Client``;
    None = the current one when there is one, else Dask's local threads;
    False = Dask's local threads (its current scheduler settings).
    The other keyword arguments are those of ``to_zarr``; `progress(done,
    total)` is called here as tasks finish (blocks done, blocks in all).

    A failing task cancels the tasks not yet finished and its exception is
    raised here; `dest` then stays unfinished: call again with
    ``resume=True`` (any cluster, any number of workers) to finish it.
    Returns the statistics summed over the tasks, as ``to_zarr``'s."""
    options = _write_options(array, roi, codec, chunks, overwrite, resume, ome_ngff,
                             provenance, format, shard, channel_chunks)
    dest = _absolute(dest)
    threads = _count(threads, "materialize", "threads", _labelbin._INT_MAX)
    if client is False:  # Dask's threads here, even with a client about
        client = None
    elif client is None:
        try:
            from distributed import default_client
            client = default_client()
        except (ImportError, ValueError):
            client = None

    job = _labelbin._write_job(array, False, dest, **options)
    try:
        n = job.block_count
        nch = array.num_channels or 1
        total = {"blocks_total": n, "blocks_done": 0, "blocks_skipped": 0,
                 "chunks_written": 0, "chunks_empty": 0, "bytes_written": 0,
                 "positive": [0] * nch, "threads": 0}
        if blocks_per_task is None:
            slots = 1
            if client is not None:
                slots = max(1, sum(client.nthreads().values()))
            else:
                import os
                slots = os.cpu_count() or 1
            blocks_per_task = max(1, -(-n // (8 * slots)))
        blocks_per_task = int(blocks_per_task)
        if blocks_per_task < 1:
            raise ValueError("blocks_per_task must be >= 1")
        ranges = [(f, min(blocks_per_task, n - f)) for f in range(0, n, blocks_per_task)]
        if client is not None:
            _run_distributed(client, array, dest, options, ranges, threads, total, progress)
        else:
            _run_local(array, dest, options, ranges, threads, total, progress)
        job.finish()
    finally:
        job.close()
    return total


def _run_distributed(client, array, dest, options, ranges, threads, total, progress):
    from distributed import as_completed

    shared = client.scatter(array, hash=False, broadcast=True)
    futures = [client.submit(_write_blocks, shared, dest, options, f, c, threads, pure=False)
               for f, c in ranges]
    try:
        for fut in as_completed(futures):
            if fut.status == "error":
                exc = fut.exception()
                client.cancel([f for f in futures if f is not fut])
                raise exc
            _add_stats(total, fut.result())
            if progress is not None:
                progress(total["blocks_done"] + total["blocks_skipped"], total["blocks_total"])
    except BaseException:  # this one's failure, or Ctrl-C here: stop the rest
        client.cancel([f for f in futures if f.status == "pending"])
        raise


def _run_local(array, dest, options, ranges, threads, total, progress):
    import dask
    from dask.threaded import get

    tasks = [dask.delayed(_write_blocks, pure=False)(array, dest, options, f, c, threads)
             for f, c in ranges]
    for s in dask.compute(*tasks, scheduler=get,
                          num_workers=dask.config.get("num_workers", None)):
        _add_stats(total, s)
    if progress is not None:
        progress(total["blocks_done"] + total["blocks_skipped"], total["blocks_total"])
