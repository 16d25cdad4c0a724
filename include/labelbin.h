/*
 * labelbin.h — the one public header of labelbin.
 *
 * labelbin turns chunked label volumes (Zarr v2, N5) into per-class binary
 * channels (DaCapo's BinarizeArray) and per-class training masks (DaCapo's
 * MissingAnnotationsMask), and writes them out as new Zarr datasets, in
 * parallel, atomically and resumably. CellMap crops (per-class arrays with
 * absent / present / unknown values) get three-valued targets and masks,
 * a linter and state counts (the last section).
 *
 * This header is the manual. Conventions, true for every function below:
 *
 *  - Fallible functions return `int`: 0 (LB_OK) on success or a negative
 *    LB_E* code. When a caller-owned `lb_error *err` is passed (it may be
 *    NULL), it receives the code and a message naming the path, chunk key,
 *    JSON path or ROI at fault. lb_strerror() gives static text for a code.
 *  - The library never prints, never exits, never aborts on bad data, and
 *    keeps no global mutable state but the log handler (see "Logging").
 *  - Inputs are borrowed for the duration of the call unless a function says
 *    it takes ownership. Strings returned as `const char *` live as long as
 *    the object they came from.
 *  - Every `_free` accepts NULL.
 *  - Geometry is in world units (normally nanometres), int64. A ROI is
 *    `offset` + `shape`; `end = offset + shape`. "Spatial" dimensions are the
 *    last `dims` dimensions of an array; a channel axis, if any, is named "c".
 *  - Buffers are C order (last dimension fastest), native byte order.
 *  - Objects may be used from several threads at once for reading
 *    (lb_array_read); configuration calls (set_cache, write) need the caller
 *    to serialise them.
 *
 * The header compiles as C99 and as C++.
 */
#ifndef LABELBIN_H
#define LABELBIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define LB_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define LB_API __attribute__((visibility("default")))
#else
#  define LB_API
#endif

#define LB_VERSION_MAJOR 0
#define LB_VERSION_MINOR 1
#define LB_VERSION_PATCH 0
#define LB_VERSION_STRING "0.1.0"

/** The version of the library actually linked, e.g. "0.1.0". */
LB_API const char *lb_version(void);

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

enum {
    LB_OK = 0,
    LB_EINVAL = -1,       /* bad argument from the caller (usage error)        */
    LB_ENOMEM = -2,       /* an allocation failed                              */
    LB_EIO = -3,          /* the operating system refused a read or write      */
    LB_EFORMAT = -4,      /* corrupt or invalid data or metadata               */
    LB_EUNSUPPORTED = -5, /* valid but not supported (dtype, codec, filter)    */
    LB_ENOTFOUND = -6,    /* no dataset / file where one was expected          */
    LB_EEXIST = -7,       /* destination exists and overwriting was not asked  */
    LB_EROI = -8,         /* ROI outside the array or not voxel-aligned        */
    LB_ELIMIT = -9,       /* a size overflows or exceeds a safety limit        */
    LB_ECANCELED = -10,   /* the caller asked to stop                          */
    LB_EVIRTUAL = -11,    /* the operation needs a stored array, not a view    */
    LB_EOVERLAP = -12     /* the destination is, contains or lies inside an
                             input dataset: writing would destroy the input   */
};

#define LB_ERROR_MESSAGE_SIZE 1024

/** Caller-owned error record. Zero-initialise it (`lb_error e = {0};`).
 *  On failure `code` is the returned code and `message` a complete sentence
 *  fragment such as "crop.zarr/labels/.zarray: shape[1]: expected a
 *  non-negative integer". On success the record is left untouched. */
typedef struct lb_error {
    int code;
    char message[LB_ERROR_MESSAGE_SIZE];
} lb_error;

/** Static text for a code ("invalid argument", "corrupt data", …). */
LB_API const char *lb_strerror(int code);

/* ------------------------------------------------------------------------
 * Logging
 *
 * The library never writes to stderr (or anywhere else) by itself. What it
 * has to say outside an lb_error — a request retried, a server that sends
 * whole objects for byte ranges, one line per HTTP request — goes to a
 * handler that the program sets; with none set (the default) it is dropped
 * and costs one atomic load. The LB_VERBOSE environment variable does
 * nothing in the library: the `labelbin` tool and the Python module read
 * it and set a handler that prints to stderr.
 *
 * Messages are one line, without a trailing newline or a "labelbin: "
 * prefix, and never show credentials: URLs appear without userinfo and
 * query string (see lb_path_display).
 * ------------------------------------------------------------------------ */

/** Levels, most severe first. A handler set at level L receives messages
 *  of levels 1..L. */
enum {
    LB_LOG_OFF = 0,   /* as a handler's level: nothing                       */
    LB_LOG_ERROR = 1, /* something failed that no returned error reports     */
    LB_LOG_WARN = 2,  /* suspicious but handled                              */
    LB_LOG_INFO = 3,  /* remote reads: each retry (with its cause and wait)
                         and each whole object sent for a byte range         */
    LB_LOG_DEBUG = 4  /* remote reads: every request (method, URL, range,
                         status, bytes, milliseconds)                        */
};

/** A log handler: `message` (valid for the call only) at `level`. It is
 *  called from whichever thread has something to say, worker threads
 *  included, but never by two threads at once. It must return quickly and
 *  must not call any labelbin function (lb_set_log_handler included). */
typedef void (*lb_log_fn)(void *user, int level, const char *message);

/** Set the process-wide log handler: messages of level 1..`level` go to
 *  `fn(user, level, message)`. `fn` NULL (or `level` LB_LOG_OFF) removes
 *  the handler; `level` above LB_LOG_DEBUG counts as LB_LOG_DEBUG. The
 *  change is atomic and may be made from any thread at any time: when the
 *  call returns, the previous handler is not running and will not be
 *  called again (so its `user` may be freed). */
LB_API void lb_set_log_handler(lb_log_fn fn, void *user, int level);

/** `path` as it may be shown to people, in messages, logs and metadata: a
 *  URL (`scheme://…`) without userinfo (`user:password@`), query string
 *  (`?X-Amz-Signature=…`) and fragment; any other path unchanged. Writes at
 *  most `size` bytes (NUL included) to `buf` and returns the length of the
 *  whole result, like snprintf. The library's own messages and
 *  lb_array_path already show URLs this way. */
LB_API size_t lb_path_display(const char *path, char *buf, size_t size);

/* ------------------------------------------------------------------------
 * Geometry (funlib.geometry semantics)
 * ------------------------------------------------------------------------ */

/** Maximum number of dimensions of any array or ROI. */
#define LB_MAX_DIMS 32

/** A region in world units. `ndim` is 0..LB_MAX_DIMS; entries beyond it are
 *  unused. A ROI is empty when any shape entry is <= 0. */
typedef struct lb_roi {
    int ndim;
    int64_t offset[LB_MAX_DIMS];
    int64_t shape[LB_MAX_DIMS];
} lb_roi;

typedef enum lb_snap_mode {
    LB_SNAP_GROW = 0,   /* begin floored, end ceiled to the grid   */
    LB_SNAP_SHRINK = 1, /* begin ceiled, end floored                */
    LB_SNAP_CLOSEST = 2 /* both rounded to the nearest, ties down    */
} lb_snap_mode;

/** Fill `roi` from offset/shape arrays of length `ndim`. Fails (LB_EINVAL)
 *  for ndim outside 0..LB_MAX_DIMS or an end that overflows int64. */
LB_API int lb_roi_set(lb_roi *roi, int ndim, const int64_t *offset,
                      const int64_t *shape, lb_error *err);

/** 1 if any shape entry is <= 0, else 0. */
LB_API int lb_roi_empty(const lb_roi *roi);

/** 1 if `inner` lies in `outer` (funlib: an empty inner is contained when
 *  its begin is, or when outer is empty); 0 otherwise or if dims differ. */
LB_API int lb_roi_contains(const lb_roi *outer, const lb_roi *inner);

/** 1 if `point` (ndim entries) is inside: begin <= p < end on every axis. */
LB_API int lb_roi_contains_point(const lb_roi *roi, const int64_t *point);

/** out = a ∩ b; an empty intersection gives an empty ROI (shape all 0,
 *  offset a's begin clamped into b). `out` may alias a or b. LB_EINVAL if
 *  the dimensions differ. */
LB_API int lb_roi_intersect(const lb_roi *a, const lb_roi *b, lb_roi *out,
                            lb_error *err);

/** Snap to the grid `voxel_size` (ndim entries, all > 0) with floor
 *  division, correct for negative coordinates. `out` may alias `roi`. */
LB_API int lb_roi_snap(const lb_roi *roi, const int64_t *voxel_size,
                       lb_snap_mode mode, lb_roi *out, lb_error *err);

/** Grow by `neg` before the begin and `pos` after the end (either may be
 *  NULL = 0; negative values shrink). Overflow-checked. */
LB_API int lb_roi_grow(const lb_roi *roi, const int64_t *neg,
                       const int64_t *pos, lb_roi *out, lb_error *err);

/** Shift the offset by `delta`. Overflow-checked. */
LB_API int lb_roi_shift(const lb_roi *roi, const int64_t *delta, lb_roi *out,
                        lb_error *err);

/** 1 if offset and shape are multiples of `voxel_size` (entries > 0). */
LB_API int lb_roi_aligned(const lb_roi *roi, const int64_t *voxel_size);

/** Parse "b0:e0,b1:e1,…" or "[b0:e0, b1:e1, …]" (spaces allowed, negative
 *  values allowed, end >= begin). */
LB_API int lb_roi_parse(const char *text, lb_roi *out, lb_error *err);

/** Print funlib's form "[b0:e0, b1:e1, …]" into buf (always NUL-terminated
 *  when size > 0); returns the length it needed, like snprintf. */
LB_API int lb_roi_format(const lb_roi *roi, char *buf, size_t size);

/** Print a coordinate "(a, b, c)" (funlib's Coordinate repr). */
LB_API int lb_coord_format(const int64_t *coord, int ndim, char *buf,
                           size_t size);

/* ------------------------------------------------------------------------
 * Data types
 * ------------------------------------------------------------------------ */

typedef enum lb_dtype {
    LB_DTYPE_UINT8 = 0,
    LB_DTYPE_UINT16,
    LB_DTYPE_UINT32,
    LB_DTYPE_UINT64,
    LB_DTYPE_INT8,
    LB_DTYPE_INT16,
    LB_DTYPE_INT32,
    LB_DTYPE_INT64,
    LB_DTYPE_BOOL,    /* read only */
    LB_DTYPE_FLOAT32, /* read only */
    LB_DTYPE_FLOAT64  /* read only */
} lb_dtype;

/** numpy's name without byte order: "uint64", "int32", "bool", … */
LB_API const char *lb_dtype_name(lb_dtype dtype);
/** Bytes per element (1, 2, 4 or 8). */
LB_API size_t lb_dtype_size(lb_dtype dtype);
/** 1 for the eight integer types, else 0. */
LB_API int lb_dtype_is_integer(lb_dtype dtype);
/** 1 for int8..int64, else 0. */
LB_API int lb_dtype_is_signed(lb_dtype dtype);

/* ------------------------------------------------------------------------
 * Label ids: exact from -2^63 to 2^64-1
 * ------------------------------------------------------------------------ */

/** A label id. `negative` = 0: the value is `bits` (0..2^64-1).
 *  `negative` = 1: the value is (int64_t)bits, which is < 0. */
typedef struct lb_id {
    uint64_t bits;
    int negative;
} lb_id;

/** Parse a decimal id ("-3", "18446744073709551615"); anything else,
 *  including values outside [-2^63, 2^64-1], is LB_EINVAL. */
LB_API int lb_id_parse(const char *text, lb_id *out, lb_error *err);
/** 1 if `dtype` (an integer dtype) can hold the id exactly. */
LB_API int lb_id_fits(lb_id id, lb_dtype dtype);
/** Decimal form into buf; returns the length needed, like snprintf. */
LB_API int lb_id_format(lb_id id, char *buf, size_t size);

/* ------------------------------------------------------------------------
 * Groupings: ordered (name, [ids]) pairs; channel i = group i
 *
 * Every group names an output channel (the `channels` attribute, the
 * summary tables, Python's `channels`), so a name must be non-empty and
 * unique within its groupings: a second group "mito" or a group named ""
 * is refused (LB_EINVAL from lb_groupings_add / _add_arg, LB_EFORMAT with
 * the JSON path from _add_json), in every front end alike. DaCapo accepts
 * both and writes indistinguishable channels. Overlapping ids between
 * groups and repeated ids within a group are fine. An empty groupings
 * (no group at all) can be built here but lb_binarize_new and lb_mask_new
 * refuse it: an array without channels is never what was meant.
 * ------------------------------------------------------------------------ */

typedef struct lb_groupings lb_groupings;

LB_API int lb_groupings_new(lb_groupings **out, lb_error *err);
LB_API void lb_groupings_free(lb_groupings *g);
/** Append a group; `ids` may be NULL when `n_ids` is 0 (empty group:
 *  "label != background"). `name` (copied) is free text in UTF-8 but must
 *  be non-empty, valid UTF-8 (it becomes a channel name in JSON metadata)
 *  and not used by an earlier group (LB_EINVAL). lb_groupings_add_arg and
 *  lb_groupings_add_json apply the same rules. */
LB_API int lb_groupings_add(lb_groupings *g, const char *name, const lb_id *ids,
                            size_t n_ids, lb_error *err);
/** Append from the CLI form "NAME=ID,ID,…" ("all=" is an empty group; the
 *  name is everything before the first '='). */
LB_API int lb_groupings_add_arg(lb_groupings *g, const char *arg,
                                lb_error *err);
/** Append from JSON: DaCapo's form `[["mito", [3,4,5]], …]`, or an object
 *  `{"mito": [3,4,5], …}` whose keys are taken in file order (as Python's
 *  dicts keep them; a key given twice keeps its last value, as in Python).
 *  `[]` and `{}` add nothing. Errors name the JSON path
 *  ("groupings[2][1][0]: expected an integer",
 *  "groupings[\"mito\"][0]: expected an integer"); on failure nothing is
 *  added. */
LB_API int lb_groupings_add_json(lb_groupings *g, const char *json,
                                 lb_error *err);
/** A deep copy. */
LB_API int lb_groupings_copy(const lb_groupings *g, lb_groupings **out,
                             lb_error *err);
LB_API size_t lb_groupings_count(const lb_groupings *g);
LB_API const char *lb_groupings_name(const lb_groupings *g, size_t i);
/** The ids of group i; returns their number and sets *ids (may be NULL). */
LB_API size_t lb_groupings_ids(const lb_groupings *g, size_t i,
                               const lb_id **ids);
/** The groupings as DaCapo JSON, `[["mito",[3,4,5]],…]` (owned by `g`,
 *  valid until the next call that changes or formats `g`). */
LB_API const char *lb_groupings_json(lb_groupings *g);

/* ------------------------------------------------------------------------
 * Arrays: ZarrArray, BinarizeArray, MissingAnnotationsMask
 * ------------------------------------------------------------------------ */

typedef struct lb_array lb_array;

enum {
    LB_OPEN_READONLY = 0,
    LB_OPEN_WRITE = 1 /* the array may be written with lb_array_write */
};

/** Open a stored dataset (DaCapo's ZarrArray). `path` is the dataset
 *  directory, e.g. "crop.zarr/volumes/labels/all" or
 *  "crop.n5/volumes/groundtruth/crop1/labels/all", or a URL:
 *  "https://host/crop.zarr/…/s0", "s3://bucket/crop.zarr/…/s0" (read only;
 *  docs/remote.md lists the environment variables: S3 region, endpoint and
 *  credentials, CA bundle, timeouts, retries). Over a network only a
 *  definite "no such key" reads as the fill value; any other failure is an
 *  error (LB_EIO naming the URL, never its credentials). The format is detected
 *  from its metadata (.zarray = Zarr v2, attributes.json with "dimensions" =
 *  N5). Geometry (voxel size, offset, axes) is read from the metadata as
 *  docs/semantics.md §1 describes.
 *  `axes_override` (may be NULL) replaces the axes from metadata, as
 *  ZarrArrayConfig.axes does; `n_axes` is its length. */
LB_API int lb_array_open(const char *path, int flags, const char *const *axes_override,
                         int n_axes, lb_array **out, lb_error *err);

/** BinarizeArray over `source`; takes ownership of `source` on success AND
 *  on failure. Leading non-spatial axes of a stored source that all have
 *  extent 1 (the t and c axes of an OME-NGFF label image) are squeezed: the
 *  output is ("c", spatial axes…). Fails with "<path>: cannot binarize a
 *  source array with channels (axes c, z, y, x): …" (LB_EINVAL) when the
 *  source has a leading axis of another extent or is itself a BinarizeArray
 *  or MissingAnnotationsMask, or "<path>: cannot binarize a source array of
 *  dtype float32: …" (LB_EUNSUPPORTED) when its dtype is not an integer
 *  type; both messages end with a hint at what the path probably is (an
 *  output of labelbin names the labels it was made from). Empty groupings
 *  (no group) are LB_EINVAL: DaCapo would build an array without channels,
 *  never what was meant. `groupings` is copied. */
LB_API int lb_binarize_new(lb_array *source, const lb_groupings *groupings,
                           lb_id background, lb_array **out, lb_error *err);

/** MissingAnnotationsMask over `source`; ownership, sources and refusals as
 *  lb_binarize_new. Reads the source's `labels` attribute; malformed
 *  metadata fails here (LB_EFORMAT) with the JSON path in the message. A
 *  source that is the dense `all` array of a CellMap crop also switches off
 *  groups naming a class the crop does not annotate (lb_mask_new_ex, with
 *  the built-in class table). */
LB_API int lb_mask_new(lb_array *source, const lb_groupings *groupings,
                       lb_array **out, lb_error *err);

/** Why channel `channel` of the MissingAnnotationsMask `a` is 0 everywhere:
 *  the ids of its group that the source's `labels` attribute marks present
 *  but not annotated, and — over the `all` array of a CellMap crop — those
 *  whose class the crop does not annotate (lb_mask_new_ex); each once, in
 *  group order. Returns their number and sets *ids (may be NULL; owned by
 *  `a`); 0 when the channel is enabled or `a` is not a mask. */
LB_API size_t lb_mask_off_ids(const lb_array *a, int64_t channel,
                              const lb_id **ids);

/** At most this many ids are kept by lb_mask_unlisted_ids. */
#define LB_MASK_UNLISTED_MAX 64

/** Label ids > 0 that reads of the MissingAnnotationsMask `a` have met in
 *  the data although the source's `labels` attribute does not list them as
 *  present (no entry, or `present: false`). DaCapo's rule counts their
 *  voxels as annotated (1 in every channel not switched off) without a
 *  word; it often means stale or incomplete metadata, so front ends say
 *  so. The ids are collected as reads go (one cheap pass over each slab of
 *  labels, looking up only where the value changes), only when the source
 *  has a `labels` attribute, and only from the voxels read so far — after
 *  lb_array_materialize, from every block it processed. The first
 *  LB_MASK_UNLISTED_MAX distinct ids are kept (then reads stop looking).
 *  Copies up to `cap` of them, ascending, into `out` (may be NULL when
 *  `cap` is 0) and returns how many are kept; 0 when `a` is not a mask.
 *  Thread-safe. */
LB_API size_t lb_mask_unlisted_ids(const lb_array *a, lb_id *out, size_t cap);

/** Build an array from DaCapo's serialised config (a JSON object with
 *  "__type__": ZarrArrayConfig, BinarizeArrayConfig or
 *  MissingAnnotationsMaskConfig, nested). Relative file_names resolve
 *  against `base_dir` (NULL = the current directory, as in DaCapo). */
LB_API int lb_array_from_config(const char *json, const char *base_dir,
                                lb_array **out, lb_error *err);

/** Free the array and (for wrappers) the source it owns. */
LB_API void lb_array_free(lb_array *a);

/* Properties. None fails; strings live as long as the array. */

/** "ZarrArray", "BinarizeArray" or "MissingAnnotationsMask"; over a
 *  CellMap crop "CropBinarizeArray" or "CropMissingAnnotationsMask". */
LB_API const char *lb_array_kind(const lb_array *a);
/** Number of spatial dimensions (the length of voxel_size). */
LB_API int lb_array_dims(const lb_array *a);
/** Number of array dimensions, channel axes included. */
LB_API int lb_array_ndim(const lb_array *a);
/** Axis name i (0 <= i < ndim), e.g. "c", "z", "y", "x". */
LB_API const char *lb_array_axis(const lb_array *a, int i);
/** Voxel size, `dims` entries, world units. */
LB_API const int64_t *lb_array_voxel_size(const lb_array *a);
/** The array's ROI (spatial, world units). */
LB_API void lb_array_roi(const lb_array *a, lb_roi *out);
/** Shape of the whole array in elements, `ndim` entries (channels first). */
LB_API const int64_t *lb_array_shape(const lb_array *a);
LB_API lb_dtype lb_array_dtype(const lb_array *a);
/** Extent of the "c" axis, or -1 when the array has none. */
LB_API int64_t lb_array_num_channels(const lb_array *a);
/** Name of channel i (groupings' names), or NULL when there are none. */
LB_API const char *lb_array_channel_name(const lb_array *a, int64_t i);
/** 1 for a ZarrArray opened with LB_OPEN_WRITE, else 0. */
LB_API int lb_array_writable(const lb_array *a);
/** The attributes as a JSON object text, integers exact (wrappers pass the
 *  source's attributes through). */
LB_API const char *lb_array_attrs_json(const lb_array *a);
/** The wrapped source, or NULL for a stored array and for arrays over a
 *  crop (they read several stored arrays; lb_array_io_stats, set_cache and
 *  set_threads reach all of them). */
LB_API const lb_array *lb_array_source(const lb_array *a);
/** The groupings a BinarizeArray or MissingAnnotationsMask was built with
 *  (channel i = group i; lives as long as `a`), NULL for a stored array. */
LB_API const lb_groupings *lb_array_groupings(const lb_array *a);

/* Storage details of a stored array (the source for wrappers is reached
 * with lb_array_source). For virtual arrays these return NULL / 0. */

/** "zarr2", "n5" or "zarr3"; NULL for virtual arrays. */
LB_API const char *lb_array_format(const lb_array *a);
/** Chunk shape in elements (`ndim` entries), NULL for virtual arrays. For a
 *  sharded Zarr v3 array this is the inner chunk shape (as zarr-python 3's
 *  `Array.chunks`): the unit that one decode reads. */
LB_API const int64_t *lb_array_chunks(const lb_array *a);
/** The shard shape of a sharded Zarr v3 array (`ndim` entries; what is
 *  stored under one key), else NULL. */
LB_API const int64_t *lb_array_shard_shape(const lb_array *a);
/** The codecs as JSON in the format's own words: a Zarr v2 compressor
 *  object ("null" for none), an N5 compression object, the Zarr v3
 *  "codecs" list. */
LB_API const char *lb_array_codec_json(const lb_array *a);
/** The codec chain in words, e.g. "bytes(little) | zstd(3)" or
 *  "sharding_indexed(chunk_shape [64, 64, 64], codecs [bytes(little),
 *  zstd(3)], index at the end)". */
LB_API const char *lb_array_codec_description(const lb_array *a);
/** The dataset path as opened. */
LB_API const char *lb_array_path(const lb_array *a);
/** Warnings raised while reading metadata (truncated non-integer voxel
 *  sizes, rounded offsets, an unfinished output — see lb_array_incomplete,
 *  …). */
LB_API int lb_array_warning_count(const lb_array *a);
LB_API const char *lb_array_warning(const lb_array *a, int i);

/** What reading the stored array (under `a`, for wrappers) has fetched from
 *  its store since it was opened: the number of reads (whole objects or byte
 *  ranges, absent keys included) and the bytes they returned. A sharded
 *  array's reads fetch its shard indexes and the inner chunks they need. */
typedef struct lb_io_stats {
    uint64_t requests;
    uint64_t bytes;
} lb_io_stats;
LB_API void lb_array_io_stats(const lb_array *a, lb_io_stats *out);

/** 1 when the stored array (under `a`, for wrappers) is an output of
 *  lb_array_materialize that no run has finished — its attributes hold
 *  `"labelbin": {…, "complete": false}` — else 0. Chunks not yet written
 *  read as zeros, so its data is not to be trusted; finish it with
 *  lb_write_options.resume (the CLI's --resume). lb_array_open records a
 *  warning for such an array. */
LB_API int lb_array_incomplete(const lb_array *a);

/** Annotation metadata state of an array's `labels` attribute. */
typedef enum lb_annotations {
    LB_ANNOTATIONS_NONE = 0,    /* no `labels` attribute                 */
    LB_ANNOTATIONS_BOOLEAN = 1, /* annotationState.annotated is a bool   */
    LB_ANNOTATIONS_STRING = 2,  /* 2023+ "dense"|"sparse"|"empty" form   */
    LB_ANNOTATIONS_INVALID = 3  /* present but malformed                 */
} lb_annotations;
LB_API lb_annotations lb_array_annotations(const lb_array *a);

/** Read `roi` (world units, inside the array's ROI, aligned to its voxel
 *  size) into `out`, which must hold exactly
 *  channels × Π(roi.shape / voxel_size) elements of lb_array_dtype — the
 *  size is checked against `out_size` (bytes). Only chunks the ROI touches
 *  are decoded; absent chunks read as the fill value. Thread-safe.
 *  Errors: LB_EROI naming the ROI, the array's ROI and the voxel size. */
LB_API int lb_array_read(const lb_array *a, const lb_roi *roi, void *out,
                         size_t out_size, lb_error *err);

/** Bytes lb_array_read needs for `roi` (0 on overflow or bad dims). */
LB_API size_t lb_array_read_size(const lb_array *a, const lb_roi *roi);

/** Write `roi` of a writable stored array from `in` (layout as
 *  lb_array_read). Whole chunks are replaced atomically (temporary file +
 *  rename in the same folder); partially covered chunks are read, modified
 *  and written the same way. Not thread-safe for overlapping chunks. */
LB_API int lb_array_write(lb_array *a, const lb_roi *roi, const void *in,
                          size_t in_size, lb_error *err);

/** The "data view": index-space access to all `ndim` axes of a stored
 *  array (start[i], count[i] in elements). Virtual arrays refuse with
 *  LB_EVIRTUAL and DaCapo's message "cannot get a writable view of this
 *  array because it is a virtual array created by modifying another array
 *  on demand". */
LB_API int lb_array_data_read(const lb_array *a, const int64_t *start,
                              const int64_t *count, void *out, size_t out_size,
                              lb_error *err);
LB_API int lb_array_data_write(lb_array *a, const int64_t *start,
                               const int64_t *count, const void *in,
                               size_t in_size, lb_error *err);

/** Give a stored array (or the stored array under a wrapper) a cache of
 *  decoded chunks of at most `bytes` (0 = no cache, the default; a new cache
 *  replaces the previous one). Repeated and overlapping reads then decode
 *  each chunk once while it stays cached (least recently used chunks are
 *  evicted), and a read that misses costs about what it costs without a
 *  cache: the memory — `bytes`, or the array's whole decoded size when that
 *  is less — is reserved and touched here, once, so that reads never wait
 *  for fresh memory pages. That takes typically 0.1-0.5 s per GiB (more when
 *  the kernel must first free or compact memory); LB_ENOMEM when the system
 *  refuses it. Bookkeeping adds about 100 bytes per cached chunk. An array
 *  over a CellMap crop shares `bytes` out equally between the class arrays
 *  it reads. Not thread-safe against concurrent reads: call it before
 *  reading. */
LB_API int lb_array_set_cache(lb_array *a, size_t bytes, lb_error *err);

/** Decode the chunks of each read of a stored array (or of the stored
 *  array under a wrapper) with up to `threads` threads, the calling one
 *  included: 1 = the caller's thread only (the default for local files;
 *  arrays read over http(s) or s3 default to 32 — the LB_HTTP_CONCURRENCY
 *  environment variable — so that the requests' latencies overlap), 0 = one
 *  per online CPU; at most 64. Reads that touch one chunk stay in the
 *  caller's thread. Worth it for ROIs spanning many chunks (training reads, Python
 *  slicing); lb_array_materialize parallelises over blocks instead
 *  (lb_write_options.threads). An array over a CellMap crop reads its
 *  blocks (all its classes' chunks at one place) with up to `threads`
 *  threads. Call before reading, like lb_array_set_cache.
 *  LB_EINVAL for a negative count. */
LB_API int lb_array_set_threads(lb_array *a, int threads, lb_error *err);

/* ------------------------------------------------------------------------
 * The label cache: training reads from shared memory
 * ------------------------------------------------------------------------
 * A training loop reads random ROIs of a few hundred crops thousands of
 * times, in several data-loader worker processes. The label cache keeps
 * every decoded chunk of integer labels in a compact, random-access form —
 * per block of 8×8×8 voxels, the table of its distinct ids and one index
 * per voxel packed at 0, 1, 2, 4, 8 or 16 bits — in one shared-memory file
 * (/dev/shm/NAME) that every process opening the same NAME maps, so N
 * workers hold the cache once. A chunk is decoded once by whichever
 * process reads it first; later reads in any process copy its encoded form
 * (1/47 of the uint64 labels on the default built-in sample crop) and expand only
 * what the read needs. A chunk whose encoding would take more than a byte
 * per voxel (many ids in most blocks) is not kept: the cache notes that it
 * declined it, and reads decode it as without a cache (a lookup of the
 * note counts as a miss; the note is an entry of no raw bytes). A
 * BinarizeArray or MissingAnnotationsMask over a
 * cached array works from the encoded form directly: each block's few ids
 * are mapped to channel bits once, then its indices are expanded — it
 * never rebuilds the labels. Reads are exact for every integer dtype and
 * every id (2^64 − 1 included): results equal uncached reads byte for
 * byte.
 *
 * Entries are keyed by the dataset's identity (its resolved location and
 * metadata) and the chunk, so one cache serves any number of arrays. The
 * file is a fixed-size ring: when it is full the oldest entries are
 * evicted first. Filling is safe between threads and processes: a short
 * lock guards only the index (never held while a chunk is decoded or
 * copied); an entry becomes visible once its data and checksum are
 * written, and every hit is checked against its checksum, so a torn or
 * damaged entry is a miss that is decoded again, never labels. A process
 * killed mid-fill (or while holding the lock) leaves the cache usable; a
 * process stopped while holding the lock makes the others wait at most
 * 2 s, then read without the cache while it stays held (a warning says
 * so once).
 *
 * A cache keeps the size it was made with: a process that opens an
 * existing cache with another size uses it as it is (a warning says so
 * once per process; remove the cache to resize it). A cache file of
 * another labelbin version, or with a damaged header or lock, is replaced
 * by a new one when opened (a warning says so); arrays that had the old
 * file go on reading its entries but store nothing more in it. Anything
 * else at /dev/shm/NAME — a file that is not a labelbin cache, a link,
 * another user's cache (caches are private to their user: mode 0600) — is
 * never used, replaced or removed: opening it fails with LB_EEXIST. An
 * entry may take at most half the cache; larger chunks are read without
 * it (a warning says so once). Besides its bytes, the index limits the
 * number of entries (lb_cache_info.max_entries, one per 1.33 KiB of the
 * file): a cache of chunks whose entries are smaller than that evicts
 * for the index before its bytes are used up.
 *
 * The cache outlives the processes that fill it, and the crops on disk may
 * change meanwhile. Each entry remembers its chunk file (or shard) as it
 * was when read: identity, size, modification and change times. The first
 * time an array takes an entry from the cache, it compares them with the
 * file's now; an entry whose file changed (rewritten, replaced, removed, or
 * a file where there was none) is stale: dropped and read anew
 * (lb_cache_info.stale counts them). Later reads by the same array take
 * only entries of the chunk as it saw it, without asking the file system
 * again, so a change made while an array is in use is seen by arrays
 * opened after it, and an entry of the chunk as it was before (stored late
 * by a process that read it then) is never taken. Remote stores (http, s3)
 * are not checked: remove the cache (lb_cache_remove) after changing a
 * remote crop. Chunks rewritten through the same array (lb_array_write)
 * are dropped at once, and a write of part of a chunk builds on the chunk
 * as stored, never on a cached copy (with a chunk cache too), so it does
 * not undo another program's change. The cache file stays in /dev/shm until removed (lb_cache_remove, the
 * CLI's `labelbin cache-stats --remove`); its memory is taken only as
 * entries are written. A cache larger than the whole /dev/shm is refused
 * (LB_EINVAL). When /dev/shm fills up (containers often give it 64 MB),
 * entries that do not fit are not stored, a warning (LB_LOG_WARN) says so
 * once, and reads go on without them.
 */

/** Give the stored array under `a` (integer dtype) a label cache: the
 *  shared-memory file /dev/shm/`name` (NULL: "labelbin-cache-UID", one per
 *  user; names are 1-127 letters, digits, '.', '_' or '-') of `bytes` bytes
 *  (at least 1 MiB; 0 removes the array's label cache), created when
 *  absent. Replaces the array's chunk cache (lb_array_set_cache), and that
 *  replaces this one. Not thread-safe against concurrent reads: call it
 *  before reading. LB_EUNSUPPORTED for a float dtype or chunks with an
 *  extent above 1 in front of their last three dimensions. In a
 *  data-loader, give every worker's array the same name (a forked worker
 *  inherits the mapping; a spawned one opens the same file). An existing
 *  cache keeps its size whatever `bytes` says. LB_EEXIST when something
 *  that is not this user's labelbin cache is at /dev/shm/`name`. A call
 *  that fails leaves the array's cache as it was. */
LB_API int lb_array_set_label_cache(lb_array *a, const char *name, size_t bytes,
                                    lb_error *err);

/** Fill the label cache of the stored array under `a` with every chunk
 *  that `roi` (NULL: the whole array) touches, decoding with `threads`
 *  threads (0: one per CPU). Chunks already cached are not decoded again.
 *  LB_EINVAL without a label cache. */
LB_API int lb_array_warm(lb_array *a, const lb_roi *roi, int threads, lb_error *err);

/** What a cache holds and how it did. For a label cache, entries, bytes,
 *  raw_bytes and the hit counts are those of the shared file (every
 *  process's), process_hits / process_misses this array's. */
typedef struct lb_cache_info {
    int kind;            /* 0 none, 1 chunk cache (lb_array_set_cache),
                            2 label cache (lb_array_set_label_cache)       */
    char name[128];      /* the label cache's name                          */
    char path[160];      /* its file                                        */
    uint64_t capacity;   /* bytes entries may use                           */
    uint64_t bytes;      /* bytes the entries use                           */
    uint64_t entries;    /* chunks cached                                   */
    uint64_t raw_bytes;  /* their decoded size: raw_bytes / bytes is the
                            compression ratio (chunk cache: = bytes)       */
    uint64_t hits, misses;
    uint64_t inserts, evictions;
    uint64_t corrupt;    /* entries that failed their checksum (refilled)   */
    uint64_t process_hits, process_misses;
    uint64_t declined;   /* entries that only note a chunk the label cache
                            declined (it does not compress); reads decode
                            those chunks as without a cache                */
    uint64_t memory_bytes; /* label cache: the memory its file takes (the
                              file is sparse: its pages, not its size)     */
    uint64_t fs_free_bytes, fs_bytes; /* label cache: room left in, and
                              size of, the file system that holds it
                              (/dev/shm)                                   */
    uint64_t stale;      /* label cache: entries dropped because their chunk
                            (or shard) changed on disk since it was cached:
                            read anew                                      */
    uint64_t max_entries; /* label cache: the most entries its index holds
                            (one per 1.33 KiB of the file); smaller entries
                            are evicted for this limit before the bytes
                            run out                                        */
} lb_cache_info;

/** The cache of the stored array under `a`. */
LB_API int lb_array_cache_info(const lb_array *a, lb_cache_info *out, lb_error *err);

/** The label cache `name` (NULL: the per-user default) without opening an
 *  array: LB_ENOTFOUND when there is none, LB_EFORMAT when it is a labelbin
 *  cache of another version or damaged, LB_EEXIST when the file is not a
 *  labelbin cache. out->name and out->path are filled on those errors
 *  too. */
LB_API int lb_cache_stats(const char *name, lb_cache_info *out, lb_error *err);

/** Remove the label cache file `name` (NULL: the per-user default), and
 *  the temporaries that processes killed while making it left behind
 *  (those over a minute old). Processes that have it open keep their
 *  mapping until they close it. LB_ENOTFOUND when there is none; LB_EEXIST,
 *  removing nothing, when the file there is not a labelbin cache. */
LB_API int lb_cache_remove(const char *name, lb_error *err);

/* ------------------------------------------------------------------------
 * Materialisation: write an array out as a new dataset
 * ------------------------------------------------------------------------ */

/** The on-disk formats: Zarr v2, N5 (read and write) and Zarr v3 (with
 *  sharding). */
typedef enum lb_format {
    LB_FORMAT_ZARR2 = 0,
    LB_FORMAT_N5 = 1,
    LB_FORMAT_ZARR3 = 2
} lb_format;

typedef struct lb_write_stats {
    int64_t blocks_total;   /* spatial blocks of the output grid            */
    int64_t blocks_done;    /* processed in this run                        */
    int64_t blocks_skipped; /* already complete (resume)                    */
    int64_t chunks_written; /* output chunk files written (shards, for a
                               sharded output)                              */
    int64_t chunks_empty;   /* all-zero chunks not written (inner chunks of
                               a sharded output, each left out of its shard) */
    int64_t bytes_written;  /* compressed bytes written                     */
    /* In: an array of `positive_len` counters, or NULL. Out: the number of
     * non-zero voxels per channel among the blocks processed in this run
     * (blocks skipped by --resume are not counted). */
    int64_t *positive;
    size_t positive_len;
    int threads;            /* worker threads this run used: the requested
                               number (all cores for 0; for a source read
                               over a network up to LB_HTTP_CONCURRENCY, as
                               they mostly wait), at most one per block     */
} lb_write_stats;

typedef void (*lb_progress_fn)(void *user, int64_t done, int64_t total);

typedef struct lb_write_options {
    int struct_size;       /* set by lb_write_options_init                    */
    int threads;           /* worker threads, 0 = all cores                    */
    const char *codec;     /* a short form ("zstd:3", "blosc-lz4", "gzip:6",
                              "none") or JSON in any format's words (a Zarr v2
                              compressor object, a Zarr v3 codec object);
                              NULL = the documented default                    */
    const int64_t *chunks; /* spatial chunk shape in voxels (dims entries);
                              NULL = the source's (inner) chunks; with
                              `shard`, the inner chunks of each shard          */
    const lb_roi *roi;     /* world units; NULL = the array's whole ROI         */
    int overwrite;         /* replace an existing DEST                          */
    int resume;            /* finish an interrupted run into DEST               */
    int ome_ngff;          /* DEST is an OME-NGFF multiscale group (0.4 for
                              Zarr v2, 0.5 for Zarr v3); the array goes to
                              DEST/s0                                           */
    const char *provenance_json; /* extra JSON object merged into the
                              "labelbin" provenance attribute (may be NULL)     */
    lb_progress_fn progress;     /* called from one thread at a time          */
    void *progress_user;
    volatile int *cancel;  /* set to non-zero (from a signal handler, or from
                              another thread with an atomic store such as
                              __atomic_store_n) to stop after the chunks in
                              flight: LB_ECANCELED                              */
    lb_format format;      /* LB_FORMAT_ZARR2 (the default) or LB_FORMAT_ZARR3 */
    const int64_t *shard;  /* Zarr v3: spatial shard shape in voxels (dims
                              entries, each a multiple of the chunk): each
                              shard of inner chunks is one file; NULL = none  */
    int channel_chunks;    /* how channels share a chunk: 0 = the default
                              (LB_CHANNELS_TOGETHER), LB_CHANNELS_TOGETHER
                              (chunks (channels, spatial…): all channels of
                              a block in one file), LB_CHANNELS_SEPARATE
                              (chunks (1, spatial…): one file per channel per
                              block). The default writes a file per block
                              instead of one per channel: on a disk (ext4,
                              NFS, Lustre) creating files costs more than
                              computing them; SEPARATE lets a read of one
                              channel decode only that channel             */
} lb_write_options;

enum { LB_CHANNELS_DEFAULT = 0, LB_CHANNELS_SEPARATE = 1, LB_CHANNELS_TOGETHER = 2 };

/** Defaults: all cores, default codec, source chunks, whole ROI, refuse an
 *  existing DEST. */
LB_API void lb_write_options_init(lb_write_options *opt);

/** Description of the default output codec (Zarr v2 compressor JSON). */
LB_API const char *lb_default_codec_json(void);

/** Materialise `a` (any array) over the options' ROI into a new Zarr v2
 *  dataset at `dest`: shape (channels, spatial voxels…) — or the spatial
 *  shape when the array has no channels — in `a`'s dtype, attributes
 *  `resolution`, `offset`, `axes`, `channels` and `labelbin` provenance.
 *  Parent groups get `.zgroup`s up to the containing `*.zarr` directory.
 *  Output chunks are (1, spatial chunk…): each channel of each block is one
 *  file, all-zero chunks are not written. Every chunk is written to a
 *  temporary name and renamed; metadata is written before any chunk. With
 *  `resume`, an existing DEST whose metadata matches is completed and
 *  blocks already complete are skipped. `stats` may be NULL; its counters
 *  are reset (the `positive` pointer is kept and filled).
 *
 *  The input is never written: before anything is created or removed,
 *  with or without `overwrite` / `resume`, a `dest` that is a stored array
 *  the output is computed from (any along a chain of wrappers), lies
 *  inside its directory, or contains it (so that overwriting `dest` would
 *  remove it) fails with LB_EOVERLAP and a message naming both paths. For
 *  OME-NGFF the group `dest` is compared. Paths are compared as places:
 *  symlinks and ".." are resolved (the real path of the deepest existing
 *  ancestor plus the remaining names) and existing directories are
 *  compared by device and inode, so a bind mount is seen through too. An
 *  input that is itself unfinished (lb_array_incomplete) is refused with
 *  LB_EFORMAT: its missing chunks would read as zeros.
 *
 *  An unfinished output says so: the `labelbin` attribute holds
 *  `"complete": false` from the first metadata write (or, on resume, from
 *  before any chunk is written) until the run that finishes the output
 *  rewrites the attributes atomically without that key; a finished
 *  output's attributes are otherwise exactly those of its first run. Any
 *  failure after `dest` was created ends its message with
 *  "<dest> is incomplete: run again with --resume to finish it" (a
 *  cancelled run says "interrupted; run again with --resume to finish").
 *
 *  Metadata files are pure ASCII JSON, as zarr-python writes them: every
 *  non-ASCII character in a name, path or attribute is a \uXXXX escape (a
 *  surrogate pair above U+FFFF). Group names must be UTF-8
 *  (lb_groupings_add); a byte that is not valid UTF-8 elsewhere (a source
 *  path in another encoding, recorded in the provenance) is written as
 *  U+FFFD, the replacement character. */
LB_API int lb_array_materialize(const lb_array *a, const char *dest,
                                const lb_write_options *opt,
                                lb_write_stats *stats, lb_error *err);

/* ------------------------------------------------------------------------
 * Writing in parts: one output from many processes (MPI ranks, Dask tasks)
 *
 * lb_array_materialize is these calls in one process:
 *
 *     lb_write_begin(a, dest, &opt, &job, &err);            one process
 *     lb_write_blocks(job, 0, lb_write_block_count(job),    any processes,
 *                     opt.threads, &stats, &err);           any ranges
 *     lb_write_finish(job, &err);                           one process
 *     lb_write_job_free(job);
 *
 * A distributed driver runs lb_write_begin in one process (MPI rank 0, the
 * Dask client) before any other starts; every other process builds the
 * same array with the same options and calls lb_write_attach; the block
 * indices 0 .. lb_write_block_count()-1 are then shared out in ranges, in
 * any order, each block to one process (a block given twice is written
 * twice with the same bytes: harmless); once every block is done,
 * lb_write_finish is called once, by one process. The output is byte for
 * byte the one lb_array_materialize writes, however the blocks were
 * shared. A block is one stored chunk, or one shard with `shard` (one
 * per channel with LB_CHANNELS_SEPARATE); blocks
 * cost different amounts of time (all-zero regions are cheap), so share
 * them out dynamically rather than in equal parts.
 *
 * Failures: lb_write_blocks stops at its first error; the others go on
 * until told to stop (set the `cancel` flag). Whatever happened, the
 * output stays marked unfinished until lb_write_finish, and a later run
 * with `resume` (begin and attach alike) skips the blocks already
 * complete: kill any or all processes at any time and resume with any
 * number of them.
 * ------------------------------------------------------------------------ */

typedef struct lb_write_job lb_write_job;

/** Validate everything as lb_array_materialize does, then prepare `dest`
 *  (per `overwrite` / `resume`), write its metadata and mark it unfinished
 *  (`"labelbin": {…, "complete": false}`). Nothing else writes metadata:
 *  call it in exactly one process, and let no other process attach before
 *  it has returned. With `resume`, the temporaries of killed writers are
 *  removed here. Errors after `dest` was created end with the
 *  "is incomplete: run again with --resume" hint. `opt` is read during the
 *  call, except `progress`, `progress_user` and `cancel`, which the job
 *  keeps and lb_write_blocks uses: they must stay valid until
 *  lb_write_job_free. On success *out is a new job (lb_write_job_free). */
LB_API int lb_write_begin(const lb_array *a, const char *dest,
                          const lb_write_options *opt, lb_write_job **out,
                          lb_error *err);

/** For every process but the one that called lb_write_begin: open the
 *  output that lb_write_begin prepared, with the same array and options.
 *  Nothing is written or removed (other processes may be writing already).
 *  Fails with LB_ENOTFOUND when there is no output at `dest`, LB_EEXIST
 *  naming the first difference when its metadata or attributes are not
 *  what these options would write (volatile provenance excepted, as for
 *  resume), or when it is not marked unfinished (already finished, or
 *  never begun). `overwrite` is ignored; `resume` makes lb_write_blocks
 *  skip complete blocks, as it does for lb_write_begin's job. */
LB_API int lb_write_attach(const lb_array *a, const char *dest,
                           const lb_write_options *opt, lb_write_job **out,
                           lb_error *err);

/** The number of blocks of the output (0 for NULL). Blocks are numbered
 *  in C order over the spatial block grid (last axis fastest), so a range
 *  of consecutive indices is a compact slab of the volume. */
LB_API int64_t lb_write_block_count(const lb_write_job *job);

/** Compute and write blocks [first, first + count) with `threads` worker
 *  threads (0 = one per online CPU; never more than `count`): each stored
 *  chunk or shard is written atomically, all-zero chunks are left out,
 *  and with `resume` complete blocks are skipped. The job's `progress` is
 *  called as blocks finish with (blocks of this call done, `count`);
 *  `cancel` stops it after the chunks in flight: LB_ECANCELED. Any error
 *  stops this call only (set `cancel` in the others' options to stop them)
 *  and ends with the "is incomplete: run again with --resume" hint. May be
 *  called any number of times, from one thread at a time per job; ranges
 *  may be given in any order; 0 blocks is a no-op. LB_EINVAL for a range
 *  outside 0..lb_write_block_count.
 *  `stats` (may be NULL) accumulates: this call's blocks_done,
 *  blocks_skipped, chunks_written, chunks_empty, bytes_written and
 *  positive[c] are ADDED to it, blocks_total is set to the job's block
 *  count and threads to the largest number any call used. Zero a
 *  lb_write_stats (and its positive array) once, pass it to every call,
 *  and add up those of several processes field by field (positive per
 *  channel) to get lb_array_materialize's statistics. */
LB_API int lb_write_blocks(lb_write_job *job, int64_t first, int64_t count,
                           int threads, lb_write_stats *stats, lb_error *err);

/** After every block of the output is done (by all processes): remove the
 *  completion journal and the unfinished mark, rewriting the attributes
 *  atomically. Call once, in one process (any job of the output will do).
 *  It cannot tell whether every block was written: a finish called early
 *  marks an incomplete output complete. */
LB_API int lb_write_finish(lb_write_job *job, lb_error *err);

/** Release a job (NULL is fine). The output is left as it is. */
LB_API void lb_write_job_free(lb_write_job *job);

/* ------------------------------------------------------------------------
 * Creating and writing stored datasets
 * ------------------------------------------------------------------------ */

typedef struct lb_create_options {
    int struct_size;       /* set by lb_create_options_init                 */
    lb_format format;      /* default LB_FORMAT_ZARR2                        */
    lb_dtype dtype;        /* default uint8                                  */
    int big_endian;        /* Zarr v2: ">" dtypes (N5 is always big-endian)  */
    int fortran_order;     /* Zarr v2: order "F"                             */
    char separator;        /* chunk key separator '.' or '/'; 0 = the format's
                              default ('.' for Zarr v2, '/' for Zarr v3)     */
    const char *codec;     /* compressor JSON in the format's own words, or a
                              short form; NULL = none (raw)                  */
    const char *fill_value_json; /* Zarr v2 fill_value JSON, NULL = "0"      */
    const char *attrs_json;      /* attributes (JSON object), may be NULL    */
    int overwrite;         /* replace an existing dataset                    */
    const int64_t *shard;  /* Zarr v3: the shard shape (ndim entries, each a
                              multiple of `chunks`); NULL = no sharding      */
    const char *const *dimension_names; /* Zarr v3: ndim names, may be NULL */
} lb_create_options;

LB_API void lb_create_options_init(lb_create_options *opt);

/** Create a dataset at `path` with `shape` and `chunks` (`ndim` entries, C
 *  order of dimensions — reversed on disk for N5) and open it for writing.
 *  Parent groups are created (.zgroup / N5 attributes.json) up to the
 *  containing `*.zarr` / `*.n5` directory. Metadata is validated before
 *  anything is written, and written as pure ASCII JSON (non-ASCII
 *  characters as \uXXXX escapes, see lb_array_materialize). */
LB_API int lb_dataset_create(const char *path, int ndim, const int64_t *shape,
                             const int64_t *chunks,
                             const lb_create_options *opt, lb_array **out,
                             lb_error *err);

/* ------------------------------------------------------------------------
 * CellMap crops: per-class arrays, three-state targets and masks
 *
 * A crop as CellMap publishes its ground truth (Zarr v2, OME-NGFF 0.4) is a
 * group whose attribute `cellmap.annotation.class_names` lists the classes
 * that were annotated in it; each class is a multiscale group `<crop>/<name>`
 * whose arrays `s0`, `s1`, … carry `cellmap.annotation.annotation_type`:
 * `semantic_segmentation` with an encoding {absent, present, unknown} of
 * values, or `instance_segmentation` with {absent, unknown} and instance ids
 * for every other value. `<crop>/all` holds the dense ids. Class names map
 * to ids through a class table (lb_classes): the built-in CellMap table, or
 * one read from a CSV file.
 *
 * For a label id k the state at a voxel is (docs/semantics.md §5):
 *   unknown  where the crop has no array for k's class (it is not in
 *            class_names; a group class such as mito = 3,4,5 without its own
 *            array takes its members' states instead: present if one is,
 *            absent if all are, else unknown), or its array holds `unknown`
 *            (or, semantic, a value outside its encoding);
 *   absent   where the array holds `absent`;
 *   present  otherwise (semantic: `present`; instance: any other value).
 * For a group G of ids: target = 1 where some id of G is present; mask = 1
 * where the target is 1 or every id of G is absent. An empty group means
 * "any class of the crop". With inferred negatives, an id of G that is
 * unknown counts as absent where a class of the crop is present whose
 * atomic ids (its members, or itself) share none with G's.
 * ------------------------------------------------------------------------ */

/** A class table: (name, id, member ids) rows; a row with members is a
 *  group class. Immutable once built; share it freely. */
typedef struct lb_classes lb_classes;

/** The built-in CellMap table (74 classes, ids 1 to 74: ecs = 1, pm = 2,
 *  mito_mem = 3, …, mito = 50 with members 3, 4, 5, …). */
LB_API int lb_classes_builtin(lb_classes **out, lb_error *err);
/** Parse a table in the CSV form `name,id,"member ids"` (one row per line,
 *  the member list quoted and comma-separated, empty or missing for atomic
 *  classes; an optional header row `name,id,...`; blank lines ignored).
 *  Names must be unique and usable as group names (no '/', not "." or
 *  ".."), ids unique, members ids of other rows of the table (group classes
 *  may contain group classes, without cycles). Errors name `where` (a file
 *  name, for messages) and the line: "classes.csv:12: id \"x\": expected a
 *  decimal integer". */
LB_API int lb_classes_parse(const char *text, size_t len, const char *where,
                            lb_classes **out, lb_error *err);
LB_API void lb_classes_free(lb_classes *c);
LB_API size_t lb_classes_count(const lb_classes *c);
LB_API const char *lb_classes_name(const lb_classes *c, size_t i);
LB_API uint64_t lb_classes_id(const lb_classes *c, size_t i);
/** The member ids of row i (a group class); 0 and *ids = NULL for an
 *  atomic class. */
LB_API size_t lb_classes_members(const lb_classes *c, size_t i, const uint64_t **ids);
/** "built-in CellMap table" or the `where` given to lb_classes_parse. */
LB_API const char *lb_classes_source(const lb_classes *c);

typedef struct lb_crop lb_crop;

/** 1 when `path` is a group whose attributes have
 *  `cellmap.annotation.class_names` (it claims to be a crop; lb_crop_open
 *  validates it), else 0. Never fails. */
LB_API int lb_crop_probe(const char *path);

/** Open the crop at `path` (a group path or URL, e.g.
 *  "jrc_cos7-1a.zarr/recon-1/labels/groundtruth/crop243") with the class
 *  table `classes` (copied; NULL = the built-in CellMap table). Reads and
 *  validates the crop's, each class group's and each level array's
 *  metadata; reads no chunks. Hostile metadata is refused (LB_EFORMAT) with
 *  the file and JSON path: wrong types, keys unknown to the schema inside
 *  `cellmap.annotation`, encodings that use a value twice, encoding values
 *  the array's dtype cannot hold, `class_names` entries that are not safe
 *  group names (`..`, '/'), a class listed twice, a class group or array
 *  that names another class, a level that disagrees with its group's
 *  encoding. A listed class without a group is LB_ENOTFOUND. Classes the
 *  table does not know are kept (they have no id) with a warning. */
LB_API int lb_crop_open(const char *path, const lb_classes *classes, lb_crop **out,
                        lb_error *err);
LB_API void lb_crop_free(lb_crop *c);
/** The crop's path as opened (a URL without its userinfo and query
 *  string, as every message shows it), its `name` attribute (or the
 *  group's last path segment) and its schema version ("0.1.1"). */
LB_API const char *lb_crop_path(const lb_crop *c);
LB_API const char *lb_crop_name(const lb_crop *c);
LB_API const char *lb_crop_version(const lb_crop *c);
/** The class table the crop was opened with (lives as long as `c`). */
LB_API const lb_classes *lb_crop_classes(const lb_crop *c);
/** "all/s0" when the crop has dense ids in `all`, else NULL. */
LB_API const char *lb_crop_all_path(const lb_crop *c);
LB_API int lb_crop_warning_count(const lb_crop *c);
LB_API const char *lb_crop_warning(const lb_crop *c, int i);

/** One class of a crop, as lb_crop_class fills it (strings and arrays live
 *  as long as the crop). */
typedef struct lb_crop_class_info {
    const char *name;
    int has_id;              /* the class table knows the name           */
    uint64_t id;
    size_t n_members;        /* > 0 for a group class of the table       */
    const uint64_t *members;
    int instance;            /* instance_segmentation, else semantic      */
    int has_absent, has_present, has_unknown; /* keys of the encoding    */
    lb_id absent, present, unknown;
    int n_levels;            /* arrays of its multiscale group, finest first */
} lb_crop_class_info;

/** One level (array) of a class: `path` relative to the class group
 *  ("s0"), voxel size and ROI in world units (`dims` entries), its shape,
 *  dtype, and `complement_counts` (-1 for a key the attribute does not
 *  have, all -1 without the attribute). */
typedef struct lb_crop_level_info {
    const char *path;
    int dims;
    const int64_t *voxel_size;
    lb_roi roi;
    const int64_t *shape;
    const int64_t *chunks;
    lb_dtype dtype;
    int64_t absent, unknown, present;
} lb_crop_level_info;

/** Number of classes (the order of `class_names`). */
LB_API size_t lb_crop_class_count(const lb_crop *c);
/** Class i; LB_EINVAL when i is out of range. */
LB_API int lb_crop_class(const lb_crop *c, size_t i, lb_crop_class_info *out,
                         lb_error *err);
/** Level `level` of class i; LB_EINVAL when out of range. */
LB_API int lb_crop_level(const lb_crop *c, size_t i, int level, lb_crop_level_info *out,
                         lb_error *err);

/** How an array over a crop is built. */
typedef struct lb_crop_options {
    int struct_size;            /* set by lb_crop_options_init                */
    const int64_t *voxel_size;  /* `dims` entries: read each class at its level
                                   of this voxel size; NULL = each class's
                                   finest level (s0), which must then agree   */
    int dims;                   /* entries of voxel_size                      */
    int infer_negatives;        /* unknown counts as absent where a class
                                   disjoint from the group is present         */
    int unknown;                /* lb_crop_binarize_new: -1 (the default) =
                                   0/1 targets; 2..255 = three-state output:
                                   1 present, 0 absent, this value unknown    */
} lb_crop_options;

LB_API void lb_crop_options_init(lb_crop_options *opt);

/** The target of each group over a crop: uint8, channels (c, z, y, x) in
 *  group order, geometry of the classes' arrays at the chosen voxel size.
 *  `groupings` is copied; NULL gives one channel per class of the crop
 *  (class_names order, named after the classes), each from its own array.
 *  The arrays read are opened here and owned by the result (`crop` may be
 *  freed afterwards). Refusals (LB_EINVAL, naming what to do): without
 *  opt->voxel_size when the classes read have different finest voxel sizes
 *  ("... mito_mem (4, 4, 4), ecs (8, 8, 8); choose one with a voxel size:
 *  (8, 8, 8) is available for all of them"), a voxel size some class read
 *  has no level of (its levels are listed), an unknown value outside
 *  2..255, empty groupings; classes whose arrays at that voxel size cover
 *  different ROIs are LB_EFORMAT (the crop is inconsistent). The kind is "CropBinarizeArray". Reads are thread-safe; reads
 *  in several threads and lb_array_materialize parallelise over blocks. */
LB_API int lb_crop_binarize_new(const lb_crop *crop, const lb_groupings *groupings,
                                const lb_crop_options *opt, lb_array **out, lb_error *err);
/** The mask of each group over a crop (1 where its target is known): as
 *  lb_crop_binarize_new; opt->unknown must be -1. The kind is
 *  "CropMissingAnnotationsMask". */
LB_API int lb_crop_mask_new(const lb_crop *crop, const lb_groupings *groupings,
                            const lb_crop_options *opt, lb_array **out, lb_error *err);

/** 1 when `a` is an array over a crop (lb_crop_binarize_new,
 *  lb_crop_mask_new, or a config with a crop source), else 0. */
LB_API int lb_array_is_crop(const lb_array *a);

/** lb_mask_new with the class table that decides, for a source that is the
 *  dense `all` array of a crop (`<crop>/all/s0`), which classes the crop
 *  annotates (NULL = the built-in table; lb_mask_new uses it). Over such a
 *  source a channel is also 0 everywhere when its group holds an id whose
 *  class is not in the crop's `class_names` (a group class counts as
 *  annotated when it is listed or all its members are); lb_mask_off_ids
 *  names those ids too. */
LB_API int lb_mask_new_ex(lb_array *source, const lb_groupings *groupings,
                          const lb_classes *classes, lb_array **out, lb_error *err);

/** Write a three-state array (lb_crop_binarize_new with opt->unknown set)
 *  as a new crop at `dest`: a group with `cellmap.annotation` (version
 *  0.1.1, class_names = the group names) holding, per group, an OME-NGFF
 *  0.4 (0.5 for Zarr v3) multiscale group `dest/<name>` with
 *  `cellmap.annotation` {class_name, annotation_type semantic_segmentation
 *  with encoding {absent: 0, present: 1, unknown: N}} and its array
 *  `dest/<name>/s0` with the same plus `complement_counts` {absent,
 *  unknown, present}, counted while writing (re-counted from the output
 *  when --resume skipped blocks). Group names must be safe group names.
 *  Options and guarantees are those of lb_array_materialize (ome_ngff is
 *  implied); `dest` may not be, contain or lie inside the crop read. With
 *  `overwrite`, an existing `dest` must itself be a crop. `stats` (may be
 *  NULL) receives the totals over all groups; stats->positive, when given,
 *  must have one counter per group and receives the present counts. */
LB_API int lb_crop_materialize(const lb_array *a, const char *dest,
                               const lb_write_options *opt, lb_write_stats *stats,
                               lb_error *err);

/** Voxel counts of one channel. */
typedef struct lb_state_counts {
    uint64_t present, absent, unknown;
} lb_state_counts;

/** Count, per channel over `roi` (NULL = the whole ROI), the voxels that
 *  are present (target 1), absent (target 0, mask 1) and unknown (mask 0):
 *  `target` and `mask` have the same channels and geometry (a BinarizeArray
 *  and its MissingAnnotationsMask, or a crop target and mask); or `mask` is
 *  NULL and `target` is a three-state crop array (opt->unknown set; with
 *  NULL groupings, the states of each class), whose values it counts. The
 *  ROI is read in blocks of the stored chunk grid by up to `threads`
 *  threads (0 = all cores); memory stays bounded whatever its size.
 *  `out` must hold one record per channel (`n_out` of them). `cancel`
 *  (may be NULL) stops it early with LB_ECANCELED. */
LB_API int lb_count_states(const lb_array *target, const lb_array *mask, const lb_roi *roi,
                           int threads, lb_state_counts *out, size_t n_out,
                           volatile int *cancel, lb_error *err);

/** What lb_crop_check found. */
typedef enum lb_check_level { LB_CHECK_WARNING = 1, LB_CHECK_ERROR = 2 } lb_check_level;

typedef struct lb_check_finding {
    lb_check_level level;
    const char *code;    /* a short stable name, e.g. "class-without-group" */
    const char *path;    /* the group, array or metadata file concerned     */
    const char *message; /* one sentence                                    */
} lb_check_finding;

typedef struct lb_check_report lb_check_report;

/** Lint the crop at `path`, reading every class array once (streamed, up
 *  to `threads` threads, 0 = all cores): listed classes without a group and
 *  groups not listed (a store that cannot be listed, http or s3, gives the
 *  warning "groups-not-listable" instead); invalid annotation metadata (the reasons lb_crop_open
 *  refuses, one finding per class); semantic arrays with values outside
 *  their encoding; instance arrays whose ids run past the `unknown` value
 *  while holding it; `complement_counts` that disagree with the data; empty
 *  classes; multiscale metadata that is missing or inconsistent (voxel
 *  sizes, offsets, level shapes); classes whose finest levels differ in
 *  voxel size or ROI; and `all` disagreeing with the class arrays (a voxel
 *  whose id belongs to a class whose array says absent there, or a class
 *  present where `all` holds an id outside it). Fails (returns < 0) only
 *  when nothing can be checked (no group at `path`, out of memory); a
 *  group that is no crop is an error finding. */
LB_API int lb_crop_check(const char *path, const lb_classes *classes, int threads,
                         lb_check_report **out, lb_error *err);
LB_API void lb_check_report_free(lb_check_report *r);
LB_API size_t lb_check_count(const lb_check_report *r);
/** Finding i (NULL past the end); lives as long as `r`. */
LB_API const lb_check_finding *lb_check_get(const lb_check_report *r, size_t i);
/** The number of findings of `level`. */
LB_API size_t lb_check_count_level(const lb_check_report *r, lb_check_level level);

/* ------------------------------------------------------------------------
 * Previews: PNG pictures of 2-D sections, to check targets by eye
 *
 * A preview draws one 2-D section of an array — or several (a montage, a
 * grid) — into an RGB8 image: labels in a stable colour per id, binary
 * channels as coloured overlays on the labels, masks as stripes over the
 * voxels they switch off, and a legend naming the channels.
 *
 * What is drawn, by the array `a` given:
 *  - A label array (no channel axis; integer or bool dtype): the labels.
 *    With `groups`, each group is an overlay, computed from the labels as
 *    lb_binarize_new(a, groups, background) would; with `mask` as well,
 *    the stripes of the MissingAnnotationsMask over `a` with those groups.
 *    A float array (a prediction, raw data) is drawn grey, from black at
 *    the smallest finite value of the sections drawn to white at the
 *    largest (NaN black; all equal: mid grey); groups need integer ids.
 *  - A BinarizeArray: its source's labels with its channels as overlays
 *    (and, with `mask`, the mask over the same labels and groups).
 *  - A MissingAnnotationsMask: its source's labels with its channels as
 *    stripes.
 *    For both wrappers the labels are read once and the channels computed
 *    from them by the wrappers' own rules.
 *  - A stored array with channels (a materialised target or mask, any
 *    array whose leading axes hold more than one element, an array over a
 *    crop whatever its channels, lb_crop_binarize_new): each channel as
 *    an overlay where it is non-zero (float channels: >= 0.5) — or, for a
 *    labelbin mask (attribute labelbin.kind "MissingAnnotationsMask", or a
 *    mask over a crop, lb_crop_mask_new), as
 *    stripes where it is 0 — over `labels` when given (a label array on the
 *    same voxel grid whose ROI holds the section), else over black. A
 *    three-state crop array (opt->unknown set) is on where it is 1 only.
 *
 * The section: `axis` names the spatial axis across it (NULL = the first
 * spatial axis, "z" of z, y, x); the picture's rows follow the first of the
 * two other spatial axes and its columns the second (axis z: rows y,
 * columns x; axis y: z, x; axis x: z, y), top-left at the ROI's begin. `at`
 * (world units) picks the section holding that coordinate (NULL = the
 * middle one, index n / 2 of the n voxels along the axis); `roi` limits
 * the section to a window (NULL = the array's ROI; inside it and aligned
 * to the voxel size). A 2-D array has one section: `axis`, `at` and
 * `montage` must be unset. 1-D and 4-D or more arrays are refused.
 *
 * Colours (integer arithmetic; lb_preview_label_color and
 * lb_preview_group_color give them):
 *  - Label id v (its 64-bit two's complement pattern b): hue from the top
 *    24 bits of b × 0x9E3779B97F4A7C15 (mod 2^64) — consecutive ids lie
 *    about 222° apart on the colour circle — mapped to 0..1535 (× 1536 >>
 *    24); saturation 170 + m mod 86 and value 200 + (m >> 8) mod 56 with
 *    m = splitmix64's finaliser of b; HSV to RGB in integers (six sectors
 *    of 256). Id 0 (background) is black. The same id has the same colour
 *    in every picture, run and dtype.
 *  - Group (channel) i: the same hue rule applied to i, at full saturation
 *    and value (group 0 red, then about 222° on for each next group).
 *  - A panel that draws channels shows its labels grey (luminance
 *    (77 R + 150 G + 29 B) >> 9, at most half brightness); each channel
 *    that is on, in channel order, blends its colour over the pixel as
 *    (3 × colour + pixel) >> 2.
 *  - Mask stripes: where some of the panel's mask channels are 0, pixels
 *    on the diagonals (x + y) mod 6 = 0 (panel pixel coordinates) take the
 *    colour of one of those channels, taking turns diagonal by diagonal
 *    ((x + y) / 6 modulo their number, in channel order); where all of
 *    them are 0 the other pixels are dimmed to half. So "mito is masked
 *    off here" is mito-coloured stripes.
 *
 * Size and layout: by default one pixel per voxel. `scale` (1..32768)
 * draws every voxel as scale × scale pixels; `max_size` (pixels) shrinks
 * the picture so that its panels, titles and legend fit in max_size ×
 * max_size, never enlarging it: with X × Y the voxels of all panels side
 * by side (columns × section width, rows × section height) and W × H the
 * pixels left for them (max_size less the gaps, title bars and legend), a
 * panel of n voxels across becomes max(1, n × f) pixels, rounded down,
 * with f the smaller of W / X and H / Y (f >= 1: one pixel per voxel); a
 * legend wider than max_size keeps its width. Scaling is nearest
 * neighbour: pixel x of a panel w pixels wide shows voxel x × n / w
 * (rounded down) of the n voxels across. Panels (a montage's sections, a
 * grid's channels) are laid out in ceil(sqrt(panels)) columns, 4 pixels
 * apart, each under an 11-pixel title bar: a montage's titles give the
 * section's world coordinate ("z=1200"), a grid's the channel name. A
 * legend is added below only when channels are drawn: one 12-pixel row per
 * channel (a 9 × 9 swatch of its colour, a striped swatch when a mask is
 * drawn, and its name, at most 48 characters) and, with a mask, a row
 * "stripes: masked off". Titles and legend use a built-in 5 × 7 font
 * (printable ASCII; other characters show as '?'); gaps, title bars and
 * the legend are dark grey (32, 32, 32).
 *  - `montage` = N (>= 1): N sections evenly spaced along the axis,
 *    indices (2j + 1) × n / (2N) for j = 0..N-1 (N <= n); excludes `at`.
 *  - `grid`: one panel per channel (its overlay and stripes alone), after
 *    a first panel of the labels alone when there are labels; needs
 *    channels and excludes `montage`.
 *
 * Reading: only the voxels that pixels show are needed, and only the
 * chunks that hold them are read — at one pixel per voxel, exactly the
 * chunks the section touches, each fetched once (lb_array_io_stats counts
 * them); when shrinking, chunks holding no shown voxel are skipped. Reads
 * use the threads set with lb_array_set_threads. A preview is refused
 * before anything is allocated when it would exceed LB_PREVIEW_MAX_SIDE
 * pixels on a side or LB_PREVIEW_MAX_PIXELS pixels in all (LB_ELIMIT).
 *
 * Errors: LB_EINVAL for options that contradict each other or the array
 * (an axis the array does not have, a montage larger than the axis, groups
 * over an array with channels, scale and max_size together, ...), LB_EROI
 * for `at` outside the ROI or a `roi` outside the array or not aligned,
 * LB_ELIMIT for sizes beyond the limits, and any error of the reads. The
 * messages name the array, the axes and the ROI.
 * ------------------------------------------------------------------------ */

#define LB_PREVIEW_MAX_SIDE 32768
#define LB_PREVIEW_MAX_PIXELS ((int64_t)1 << 27)

typedef struct lb_preview_options {
    int struct_size;        /* set by lb_preview_options_init                  */
    const char *axis;       /* spatial axis across the section, by name
                               ("z"); NULL = the first spatial axis          */
    const int64_t *at;      /* world coordinate along `axis`; NULL = middle   */
    const lb_roi *roi;      /* window (world units); NULL = the array's ROI  */
    int64_t scale;          /* pixels per voxel; 0 = 1                         */
    int64_t max_size;       /* fit in max_size × max_size pixels; 0 = off     */
    int grid;               /* one panel per channel                           */
    int64_t montage;        /* N evenly spaced sections; 0 = one section      */
    const lb_groupings *groups; /* overlays computed from a label array      */
    lb_id background;       /* for empty groups (label != background); 0      */
    int mask;               /* also draw the mask of the groups               */
    const lb_array *labels; /* labels under a stored array's channels         */
} lb_preview_options;

/** All defaults: the middle section across the first spatial axis, the
 *  whole ROI, one pixel per voxel, no groups. */
LB_API void lb_preview_options_init(lb_preview_options *opt);

/** What a preview draws, filled by lb_preview_size and
 *  lb_preview_write_png. */
typedef struct lb_preview_info {
    int64_t width, height;              /* the whole picture, pixels          */
    int64_t panel_width, panel_height;  /* one panel, pixels                  */
    int64_t panels;                     /* panels drawn                       */
    int axis;                           /* spatial axis across the section(s)
                                           (0..dims-1), -1 for a 2-D array   */
    int64_t sections;                   /* sections drawn                     */
    int64_t first_at, last_at;          /* world coordinates of the first and
                                           last section along `axis`         */
    int64_t channels;                   /* channels drawn (overlays / stripes) */
} lb_preview_info;

/** The size and contents of the preview of `a` with `opt` (may be NULL:
 *  defaults), without reading any data: the checks of the render, then
 *  `info` filled. */
LB_API int lb_preview_size(const lb_array *a, const lb_preview_options *opt,
                           lb_preview_info *info, lb_error *err);

/** Draw the preview into `rgb`: width × height pixels (lb_preview_size),
 *  3 bytes each (R, G, B), rows top to bottom; `rgb_size` must be exactly
 *  width × height × 3 (LB_EINVAL otherwise). Thread-safe like
 *  lb_array_read. */
LB_API int lb_preview_render(const lb_array *a, const lb_preview_options *opt,
                             uint8_t *rgb, size_t rgb_size, lb_error *err);

/** Draw the preview and write it to `path` as a PNG file (8-bit RGB,
 *  encoded by libspng), atomically: a temporary file in the same folder,
 *  renamed over `path` once complete, so a failure leaves any earlier file
 *  untouched. Missing parent folders are created. Nothing an input is
 *  made of is replaced: a `path` at, inside or around a stored array the
 *  preview reads is refused with LB_EOVERLAP, and an existing `path` that
 *  is a folder or a file other than a PNG image with LB_EEXIST (an
 *  existing PNG is replaced). `info` (may be NULL) is filled on success. */
LB_API int lb_preview_write_png(const lb_array *a, const lb_preview_options *opt,
                                const char *path, lb_preview_info *info,
                                lb_error *err);

/** The colour of label id `id` in previews (black for 0). */
LB_API void lb_preview_label_color(lb_id id, uint8_t rgb[3]);
/** The colour of group (channel) `i` in previews. */
LB_API void lb_preview_group_color(size_t i, uint8_t rgb[3]);

#ifdef __cplusplus
}
#endif
#endif /* LABELBIN_H */
