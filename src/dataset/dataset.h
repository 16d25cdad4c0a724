/*
 * dataset.h — one stored chunked array, whatever its format: opened by
 * probing the formats (format/format.h) at a location of a store, read and
 * written in element-index space through its codec chain. There are no
 * format branches here: what differs between Zarr v2, N5 and Zarr v3 is in
 * the format's metadata, chunk keys and chain.
 *
 * Two grids: chunks are what is stored under one key (a shard, for Zarr v3
 * sharding_indexed), and "read chunks" are what one decode produces — the
 * inner chunks of a sharded array when its shards can be read in parts (the
 * index and each inner chunk by a byte range), else the stored chunks.
 * Reads work on read chunks; writes replace stored chunks.
 */
#ifndef LB_DATASET_DATASET_H
#define LB_DATASET_DATASET_H

#include <json-c/json.h>
#include <stdatomic.h>

#include "codec/chain.h"
#include "core/util.h"
#include "format/format.h"
#include "store/store.h"

typedef struct lb__chunk_cache lb__chunk_cache;
typedef struct lb__io_pool lb__io_pool;
typedef struct lb__index_cache lb__index_cache;
typedef struct lb__lcache lb__lcache;

typedef struct lb__dataset {
    lb__store *store;            /* owned reference                          */
    char *path;                  /* the array's location in the store         */
    const lb__format *format;
    lb__array_meta m;            /* the format's description (owned)          */
    /* Copies of what every reader needs (fixed once open). */
    int ndim;
    int64_t shape[LB_MAX_DIMS];  /* C order                                   */
    lb_dtype dtype;
    size_t itemsize;
    uint8_t fill[8];             /* native byte order                         */
    json_object *attrs;          /* = m.attrs (user attributes, never NULL)   */
    json_object *meta;           /* = m.meta (the metadata document)          */
    /* the read grid */
    int64_t chunks[LB_MAX_DIMS]; /* one read chunk                            */
    int64_t grid[LB_MAX_DIMS];   /* read chunks per dimension                 */
    size_t chunk_bytes;          /* Π chunks × itemsize                       */
    lb__chunk_repr rrepr;        /* a read chunk, for decoding                */
    /* the stored grid (= the read grid unless sharded) */
    int64_t schunks[LB_MAX_DIMS];
    int64_t sgrid[LB_MAX_DIMS];
    size_t schunk_bytes;
    lb__chunk_repr srepr;
    /* partial shard reads: the sharding codec, read chunks per shard */
    const lb__codec *sharding;   /* NULL unless shards are read in parts      */
    int64_t per_shard[LB_MAX_DIMS];
    int64_t shard_count;         /* inner chunks per shard                    */
    size_t index_bytes;          /* the encoded index's size                  */
    int writable;
    lb__chunk_cache *cache;      /* decoded read chunks; NULL = no cache      */
    lb__index_cache *index_cache;/* decoded shard indexes (sharded only)      */
    int read_threads;            /* threads per region read; 0 = not set      */
    int store_threads;           /* the store's wish when not set (remote: 32)*/
    /* Zarr v2 without dimension_separator where the store could not tell
     * the layout (m.key_separator 0): the separator of the first chunk
     * found, 0 until then. */
    atomic_int layout_sep;
    lb__io_pool *io_pool;        /* read workers' buffers, kept between reads */
    /* The shared cache of encoded label chunks (label_cache.h), NULL = none;
     * entries are keyed by lc_id, a hash of the dataset's identity. */
    lb__lcache *lcache;
    uint64_t lc_id;
    int64_t lc_chunk[3];         /* the read chunk seen as 3-D                */
    /* Per read chunk, the stamp of its source (lb__store_stamp) + 1 that
     * this array checked or filled it with (0: none yet): later reads take
     * only entries of that stamp, without asking the store again, so an
     * entry of the chunk as it was before (stored late by a process that
     * read it then) is never taken. Cleared when the array writes the
     * chunk. NULL: check on every read. */
    _Atomic uint64_t *lc_seen;
    uint64_t lc_nchunks;
} lb__dataset;

/* At most this many threads decode the chunks of one region read. */
#define LB__MAX_READ_THREADS 64

/* A new dataset: the format (LB_FORMAT_*) and the format-neutral spec. */
typedef struct lb__dataset_spec {
    lb_format format;
    int ndim;
    int64_t shape[LB_MAX_DIMS];
    int64_t chunks[LB_MAX_DIMS]; /* stored chunks (shards)                  */
    int64_t inner[LB_MAX_DIMS];  /* Zarr v3 inner chunks; all 0 = unsharded */
    lb_dtype dtype;
    int big_endian;
    int order_f;
    char separator;
    int fill_null;
    uint8_t fill[8];
    lb__codec codec;             /* bytes→bytes; LB__CODEC_RAW = none      */
    json_object *attrs;          /* borrowed; may be NULL                  */
    const char *const *dim_names;/* Zarr v3; may be NULL                   */
} lb__dataset_spec;

typedef enum lb__create_mode {
    LB__CREATE_NEW = 0,   /* fail with LB_EEXIST if anything is at path         */
    LB__CREATE_OVERWRITE, /* remove an existing dataset at path first (refuses
                             to remove a directory that is not a dataset)      */
    LB__CREATE_RESUME,    /* open an existing dataset whose metadata equals the
                             spec (else LB_EEXIST explaining the difference);
                             create it when absent                             */
    LB__CREATE_ATTACH     /* as RESUME, but the dataset must exist
                             (LB_ENOTFOUND) and nothing is written or removed:
                             other processes may be writing its chunks       */
} lb__create_mode;

/* The format table entry of a public format (NULL for an unknown value). */
const lb__format *lb__format_of(lb_format f);

/* Open the array at `url` (a path or a URL): the format is found by
 * probing; every metadata field is validated before anything is allocated;
 * errors name the metadata file and the JSON key. */
int lb__dataset_open(const char *url, int writable, lb__dataset **out, lb_error *err);
/* The same at a location of an open store (a new reference is taken). */
int lb__dataset_open_at(lb__store *s, const char *path, int writable, lb__dataset **out,
                        lb_error *err);

/* Create (per `mode`) a dataset at `url`: validate the spec, write the
 * metadata through its format (parent groups, then the array's documents,
 * atomically) and open it writable. */
int lb__dataset_create(const char *url, const lb__dataset_spec *spec, lb__create_mode mode,
                       lb__dataset **out, lb_error *err);

void lb__dataset_free(lb__dataset *d);

/* Replace the user attributes (atomically). `attrs` is borrowed. */
int lb__dataset_set_attrs(lb__dataset *d, json_object *attrs, lb_error *err);

/* Read the region [start, start+count) (ndim entries, in elements, inside
 * the shape) into dst, C order, native byte order. Decodes each touched
 * read chunk once; absent chunks give the fill value. Thread-safe. */
int lb__dataset_read(const lb__dataset *d, const int64_t *start, const int64_t *count,
                     void *dst, lb_error *err);

/* Write the region; whole stored chunks are encoded and replaced
 * atomically, partial ones are read (or fill-initialised), modified and
 * replaced. */
int lb__dataset_write(lb__dataset *d, const int64_t *start, const int64_t *count,
                      const void *src, lb_error *err);

/* Reusable working memory of chunk and region I/O. Zero-initialise, keep
 * one per thread (never share one between threads), release with
 * lb__io_free. A long run that reuses one allocates nothing per chunk. */
typedef struct lb__io {
    lb__buf file;              /* stored bytes                              */
    lb__buf chunk;             /* one decoded chunk                         */
    lb__buf index;             /* a shard index                             */
    lb__buf cseg;              /* an encoded chunk (label cache)            */
    lb__buf arena;             /* encoded chunks of a region (label cache)  */
    lb__codec_scratch codec;
} lb__io;
void lb__io_free(lb__io *io);

/* lb__dataset_read with caller-kept working memory (NULL: per call). A
 * read chunk that the region covers whole, landing contiguously in dst, is
 * decoded straight into dst. */
int lb__dataset_read_io(const lb__dataset *d, const int64_t *start, const int64_t *count,
                        void *dst, lb__io *io, lb_error *err);

/* Decode read chunk `cidx` (read-grid index) into dst: chunk_bytes, C
 * order, native byte order, parts outside the array set to the fill value.
 * *present = 0 when it is not stored (dst = fill). Uses the cache when one
 * is set. Thread-safe. */
int lb__dataset_read_chunk(const lb__dataset *d, const int64_t *cidx, void *dst, int *present,
                           lb_error *err);

/* Encode and atomically write stored chunk `cidx` (stored-grid index) from
 * a full stored chunk (schunk_bytes, C order, native byte order). N5 edge
 * blocks are written truncated to the array (as the Java reference does).
 * Thread-safe for distinct chunks. `out_bytes` (may be NULL) receives the
 * stored size. */
int lb__dataset_write_chunk(const lb__dataset *d, const int64_t *cidx, const void *src,
                            size_t *out_bytes, lb_error *err);
/* lb__dataset_write_chunk with caller-kept working memory (NULL: per call). */
int lb__dataset_write_chunk_io(const lb__dataset *d, const int64_t *cidx, const void *src,
                               size_t *out_bytes, lb__io *io, lb_error *err);
/* Write stored chunk `cidx` from bytes already encoded (a shard assembled
 * by the caller). */
int lb__dataset_put_chunk(const lb__dataset *d, const int64_t *cidx, const void *bytes,
                          size_t n, lb_error *err);

/* 1 if stored chunk `cidx` exists. */
int lb__dataset_chunk_exists(const lb__dataset *d, const int64_t *cidx);

/* The stored chunk's key relative to the dataset ("1.0.3", "1/0/3", N5
 * "3/0/1", Zarr v3 "c/1/0/3") and its full key in the store; both return
 * the length needed, like snprintf. */
int lb__dataset_chunk_key(const lb__dataset *d, const int64_t *cidx, char *buf, size_t size);
int lb__dataset_chunk_path(const lb__dataset *d, const int64_t *cidx, char *buf, size_t size);

/* Attributes of the group at `dir` of the dataset's store, in the
 * dataset's format; *out = NULL when it has none. */
int lb__dataset_group_attrs(const lb__dataset *d, const char *dir, json_object **out,
                            lb_error *err);

/* Cache of decoded read chunks, at most `bytes` (0 removes it), never more
 * slots than the dataset has read chunks; the memory is mapped and touched
 * here, not during reads. Not safe against concurrent reads. */
int lb__dataset_set_cache(lb__dataset *d, size_t bytes, lb_error *err);

/* Keep read chunks encoded (kernels/cseg.h) in the shared label cache
 * `name` (NULL: the per-user default) of `bytes` bytes (0 removes it;
 * replaces the cache of lb__dataset_set_cache). Integer dtypes whose read
 * chunks have at most 3 dimensions of extent > 1 at the end:
 * LB_EUNSUPPORTED otherwise. Not safe against concurrent reads. */
int lb__dataset_set_label_cache(lb__dataset *d, const char *name, size_t bytes,
                                lb_error *err);

/* Visit the read chunks of a region in their encoded form (from the label
 * cache, or decoded, encoded and stored there on a miss; absent chunks as
 * the fill value): fn gets the encoded chunk, the 3-D box of it inside
 * the region and where that lands in the region (the region seen as 3-D
 * over its last three dimensions), and `lead`, the offset in voxels of the
 * region's leading dimensions (arrays of more than 3). Chunks are visited
 * with the dataset's read threads, in any order, each once. Needs
 * d->lcache. */
typedef struct lb__cseg_box lb__cseg_box;
typedef int (*lb__cseg_visit)(void *user, const void *cseg, const lb__cseg_box *box,
                              size_t lead, lb_error *err);
int lb__dataset_visit_cseg(const lb__dataset *d, const int64_t *start, const int64_t *count,
                           lb__cseg_visit fn, void *user, lb__io *io, lb_error *err);

/* The encoded read chunks of a region whose dimensions before the last 3
 * have count 1, as a grid of parts (kernels/cseg.h), copied into the
 * arenas of read buffers kept by the dataset (no allocation per read once
 * they have grown). Chunks are fetched with the dataset's read threads.
 * Returns 1 (and no parts) when the cache declines a chunk of the region
 * (its encoding would not be smaller than a byte per voxel), for the caller
 * to read the region from the decoded labels instead. Needs d->lcache. */
typedef struct lb__cseg_part lb__cseg_part;
typedef struct lb__parts lb__parts;
int lb__dataset_region_parts(const lb__dataset *d, const int64_t *start, const int64_t *count,
                             uint8_t *raw, lb__parts **out, lb_error *err);
/* The parts (a grid np[3], C order) of region_parts, valid until
 * lb__dataset_free_parts. With `raw` (the region's labels, count-shaped,
 * C order, may be NULL), a chunk the cache declines is not encoded for the
 * read (nor decoded twice): its part is decoded into raw instead and has
 * cseg NULL; lb__parts_raw counts such parts (the caller then fills the
 * rest of raw from the encoded parts and reads the region from raw). */
const lb__cseg_part *lb__parts_grid(const lb__parts *p, int64_t *np);
int64_t lb__parts_raw(const lb__parts *p);
void lb__dataset_free_parts(const lb__dataset *d, lb__parts *p);

/* Fill the label cache with the read chunks of a region (all of them when
 * start is NULL) with `threads` threads (0: one per CPU). */
int lb__dataset_warm(const lb__dataset *d, const int64_t *start, const int64_t *count,
                     int threads, lb_error *err);
/* Decode the chunks of each region read with up to `threads` threads (1:
 * the caller's only, the default for local files; 0: one per online CPU;
 * capped at LB__MAX_READ_THREADS). Remote stores read with
 * lb__store_concurrency threads until this is called. Call before
 * reading. */
int lb__dataset_set_threads(lb__dataset *d, int threads, lb_error *err);

/* Fill value as JSON text into buf (e.g. "0", "null", "7"). */
void lb__dataset_fill_json(const lb__dataset *d, char *buf, size_t size);

/* Extent of stored chunk `cidx` inside the array (ext[k] <= schunks[k]);
 * returns 1 when the chunk overhangs the array edge in some dimension. */
int lb__dataset_chunk_extent(const lb__dataset *d, const int64_t *cidx, int64_t *ext);
/* Set `nbytes` bytes of dst (a multiple of itemsize) to the fill value. */
void lb__dataset_fill(const lb__dataset *d, void *dst, size_t nbytes);
/* The linear cache key of a read chunk index (row-major over d->grid). */
uint64_t lb__dataset_chunk_linear(const lb__dataset *d, const int64_t *cidx);

/* The chain that encodes one read chunk (the shard's inner chain when
 * shards are read in parts), with its representation. */
const lb__chain *lb__dataset_read_chain(const lb__dataset *d);

#endif /* LB_DATASET_DATASET_H */
