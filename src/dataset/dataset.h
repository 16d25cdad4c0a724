/*
 * dataset.h — one stored chunked dataset (Zarr v2 or N5): its metadata in a
 * format-neutral form (C order of dimensions, native-endian fill value, one
 * codec) and region / chunk I/O in element-index space. Everything about
 * on-disk layout (F order, byte order, N5 block headers and reversed axes,
 * chunk keys and separators) stays inside this module and zarr2.c / n5.c.
 */
#ifndef LB_DATASET_H
#define LB_DATASET_H

#include <json-c/json.h>

#include "codec/codec.h"
#include "core/util.h"

typedef struct lb__chunk_cache lb__chunk_cache;
typedef struct lb__io_pool lb__io_pool;

typedef struct lb__dataset {
    char *path;         /* normalised dataset directory                  */
    lb_format format;   /* LB_FORMAT_ZARR2 / LB_FORMAT_N5                */
    int ndim;
    int64_t shape[LB_MAX_DIMS];  /* C order (N5: reversed from disk)     */
    int64_t chunks[LB_MAX_DIMS]; /* C order                               */
    int64_t grid[LB_MAX_DIMS];   /* chunks per dimension = ceil(shape/chunks) */
    lb_dtype dtype;
    size_t itemsize;
    int big_endian;     /* on-disk element byte order (N5: always 1)      */
    int order_f;        /* Zarr v2 order "F"                               */
    char separator;     /* Zarr v2 dimension_separator '.' or '/'          */
    int fill_null;      /* Zarr v2 fill_value null (reads as 0)            */
    uint8_t fill[8];    /* fill value, native byte order, itemsize bytes   */
    lb__codec codec;
    size_t chunk_bytes; /* Π chunks × itemsize, <= LB__MAX_CHUNK_BYTES     */
    json_object *meta;  /* the parsed .zarray / attributes.json            */
    json_object *attrs; /* user attributes: .zattrs, or N5 attributes.json
                           without the dataset keys (dimensions, blockSize,
                           dataType, compression); never NULL              */
    int writable;
    lb__chunk_cache *cache; /* NULL = no cache                             */
    int read_threads;   /* threads per region read; 0 or 1 = the caller's  */
    lb__io_pool *io_pool; /* read workers' buffers, kept between reads    */
} lb__dataset;

/* At most this many threads decode the chunks of one region read. */
#define LB__MAX_READ_THREADS 64

/* What lb__dataset_create needs; fields mirror lb__dataset. */
typedef struct lb__dataset_spec {
    lb_format format;
    int ndim;
    int64_t shape[LB_MAX_DIMS];
    int64_t chunks[LB_MAX_DIMS];
    lb_dtype dtype;
    int big_endian;
    int order_f;
    char separator;
    int fill_null;
    uint8_t fill[8];
    lb__codec codec;
    json_object *attrs; /* borrowed; may be NULL */
} lb__dataset_spec;

typedef enum lb__create_mode {
    LB__CREATE_NEW = 0,   /* fail with LB_EEXIST if anything is at path         */
    LB__CREATE_OVERWRITE, /* remove an existing dataset at path first (refuses
                             to remove a directory that is not a dataset)      */
    LB__CREATE_RESUME     /* open an existing dataset whose metadata equals the
                             spec (else LB_EEXIST explaining the difference);
                             create it when absent                             */
} lb__create_mode;

/* Detect the format at `path` (.zarray or attributes.json with
 * "dimensions") and open it. Validates every metadata field (ranks, sizes,
 * dtype, codec, fill value, order, separator, limits) before allocating.
 * Errors name the metadata file and the JSON key. */
int lb__dataset_open(const char *path, int writable, lb__dataset **out,
                     lb_error *err);

/* Create (per `mode`) a dataset: validate the spec, create parent groups up
 * to the container directory (.zgroup for Zarr v2, attributes.json with
 * {"n5": "2.0.0"} for N5 roots), write the metadata (.zarray + .zattrs, or
 * attributes.json) atomically, and open it writable. */
int lb__dataset_create(const char *path, const lb__dataset_spec *spec,
                       lb__create_mode mode, lb__dataset **out, lb_error *err);

void lb__dataset_free(lb__dataset *d);

/* Replace the user attributes (written atomically; Zarr v2 .zattrs, N5
 * merged into attributes.json). `attrs` is borrowed. */
int lb__dataset_set_attrs(lb__dataset *d, json_object *attrs, lb_error *err);

/* Read the region [start, start+count) (ndim entries, in elements, inside
 * the shape) into dst, C order, native byte order. Decodes each touched
 * chunk once; absent chunks give the fill value. Thread-safe. */
int lb__dataset_read(const lb__dataset *d, const int64_t *start,
                     const int64_t *count, void *dst, lb_error *err);

/* Write the region; whole chunks are encoded and replaced atomically,
 * partial chunks are read (or fill-initialised), modified and replaced. */
int lb__dataset_write(lb__dataset *d, const int64_t *start,
                      const int64_t *count, const void *src, lb_error *err);

/* Reusable working memory of chunk and region I/O: the chunk file's bytes,
 * codec scratch and one decoded chunk. Zero-initialise, keep one per thread
 * (never share one between threads), release with lb__io_free. A long run
 * that reuses one allocates nothing per chunk. */
typedef struct lb__io {
    lb__buf file, scratch, scratch2, chunk;
} lb__io;
void lb__io_free(lb__io *io);

/* lb__dataset_read with caller-kept working memory (NULL: per call). A
 * chunk that the region covers whole, landing contiguously in dst, is
 * decoded straight into dst. */
int lb__dataset_read_io(const lb__dataset *d, const int64_t *start,
                        const int64_t *count, void *dst, lb__io *io,
                        lb_error *err);

/* Decode chunk `cidx` (grid index, ndim entries) into dst: the full chunk
 * (chunk_bytes), C order, native byte order, overhang/truncated parts set to
 * the fill value. *present = 0 when the chunk is absent (dst = fill).
 * Uses the cache when one is set. Thread-safe. */
int lb__dataset_read_chunk(const lb__dataset *d, const int64_t *cidx,
                           void *dst, int *present, lb_error *err);

/* Encode and atomically write chunk `cidx` from a full chunk buffer
 * (chunk_bytes, C order, native byte order). N5 edge blocks are written
 * truncated to the array (as the Java reference does). Thread-safe for
 * distinct chunks. If `out_bytes` is not NULL it receives the stored size. */
int lb__dataset_write_chunk(const lb__dataset *d, const int64_t *cidx,
                            const void *src, size_t *out_bytes, lb_error *err);

/* lb__dataset_write_chunk with caller-kept working memory (NULL: per call). */
int lb__dataset_write_chunk_io(const lb__dataset *d, const int64_t *cidx,
                               const void *src, size_t *out_bytes, lb__io *io,
                               lb_error *err);

/* 1 if chunk `cidx` is stored. */
int lb__dataset_chunk_exists(const lb__dataset *d, const int64_t *cidx);

/* The chunk's key relative to the dataset ("1.0.3", "1/0/3", N5 "3/0/1")
 * and full path; return the length needed, like snprintf. */
int lb__dataset_chunk_key(const lb__dataset *d, const int64_t *cidx,
                          char *buf, size_t size);
int lb__dataset_chunk_path(const lb__dataset *d, const int64_t *cidx,
                           char *buf, size_t size);

/* Attributes of the group directory `dir` (Zarr v2 .zattrs or N5
 * attributes.json); *out = NULL when it has none. */
int lb__group_attrs(const char *dir, lb_format format, json_object **out,
                    lb_error *err);

/* Cache of decoded chunks, at most `bytes` (0 removes it), never more
 * slots than the dataset has chunks; the memory is mapped and touched here,
 * not during reads. Not safe against concurrent reads of the same dataset. */
int lb__dataset_set_cache(lb__dataset *d, size_t bytes, lb_error *err);
/* Decode the chunks of each region read with up to `threads` threads (1:
 * the caller's only, the default; 0: one per online CPU; capped at
 * LB__MAX_READ_THREADS). Call before reading. */
int lb__dataset_set_threads(lb__dataset *d, int threads, lb_error *err);

/* Fill value as JSON text into buf (e.g. "0", "null", "7"). */
void lb__dataset_fill_json(const lb__dataset *d, char *buf, size_t size);

/* Layout helpers shared with the kernels and writer. */
/* Copy an n-d box between two C-order buffers of the same element size:
 * `count` elements per dim, from src (dims src_shape) at src_start to dst
 * (dims dst_shape) at dst_start. */
void lb__copy_box(int ndim, size_t itemsize, const int64_t *count,
                  const void *src, const int64_t *src_shape,
                  const int64_t *src_start, void *dst,
                  const int64_t *dst_shape, const int64_t *dst_start);
/* Transpose a full chunk between F and C order (shape in C order). */
void lb__transpose_f_to_c(int ndim, size_t itemsize, const int64_t *shape,
                          const void *src, void *dst);
void lb__transpose_c_to_f(int ndim, size_t itemsize, const int64_t *shape,
                          const void *src, void *dst);

/* ------------------------------------------------------------------------
 * Internal to the dataset module (dataset.c, zarr2.c, n5.c, chunk_cache.c).
 * ------------------------------------------------------------------------ */

/* Validate d->ndim, shape (>= 0), chunks (> 0) and d->itemsize against the
 * limits (rank <= LB_MAX_DIMS, chunk bytes <= LB__MAX_CHUNK_BYTES, Π shape ×
 * itemsize fits int64 and size_t) and fill d->grid and d->chunk_bytes.
 * Messages start with `where` (the metadata file) and name the keys
 * `shape_key` / `chunks_key`. */
int lb__dataset_check_geometry(lb__dataset *d, const char *where,
                               const char *shape_key, const char *chunks_key,
                               int reversed, lb_error *err);
/* `reversed`: the file lists dimensions in reverse (N5), so messages give
 * the file's index. */
/* Parse meta[key] as an array of at most LB_MAX_DIMS integers (LB_ELIMIT
 * beyond); the range of each entry is checked by check_geometry. */
int lb__meta_dims(json_object *meta, const char *key, const char *where,
                  int64_t *out, int *n_out, lb_error *err);
/* Extent of chunk `cidx` inside the array (ext[k] <= chunks[k]); returns 1
 * when the chunk overhangs the array edge in some dimension. */
int lb__dataset_chunk_extent(const lb__dataset *d, const int64_t *cidx,
                             int64_t *ext);
/* Set `nbytes` bytes of dst (a multiple of itemsize) to the fill value. */
void lb__dataset_fill(const lb__dataset *d, void *dst, size_t nbytes);

/* Zarr v2 (zarr2.c). `where` names the .zarray file in messages. */
/* Fill d's layout fields from a parsed .zarray (not path/meta/attrs). */
int lb__zarr2_parse(lb__dataset *d, json_object *zarray, const char *where,
                    lb_error *err);
/* The .zarray object for a spec (new reference). */
int lb__zarr2_build(const lb__dataset_spec *spec, json_object **out,
                    lb_error *err);
/* Write parent .zgroups (up to the container), .zattrs, then .zarray. */
int lb__zarr2_write_meta(const char *path, json_object *zarray,
                         json_object *attrs, lb_error *err);
int lb__zarr2_chunk_key(const lb__dataset *d, const int64_t *cidx, char *buf,
                        size_t size);
/* For a .zarray without "dimension_separator" (zarr-python before 2.8 kept
 * the layout in the store, not the metadata: NestedDirectoryStore wrote
 * "0/0/0"): set d->separator from the chunks present in d->path — '/' when
 * there are digit-named sub-directories, '.' otherwise. Both kinds present:
 * LB_EFORMAT naming the path and one key of each kind. */
int lb__zarr2_detect_separator(lb__dataset *d, lb_error *err);
/* Stored chunk bytes -> full chunk (C order, native). `scratch` is reused
 * between calls. Messages do not name the chunk (the caller prefixes). */
int lb__zarr2_decode(const lb__dataset *d, const void *src, size_t n,
                     void *dst, lb__buf *scratch, lb_error *err);
/* Full chunk (C order, native) -> stored bytes in `out`; the overhang of
 * edge chunks is stored as the fill value. */
int lb__zarr2_encode(const lb__dataset *d, const int64_t *cidx,
                     const void *src, lb__buf *out, lb__buf *scratch1,
                     lb__buf *scratch2, lb_error *err);

/* N5 (n5.c). `where` names the attributes.json file in messages. */
/* Fill d's layout fields and d->attrs (user attributes) from a parsed
 * attributes.json. */
int lb__n5_parse(lb__dataset *d, json_object *attributes, const char *where,
                 lb_error *err);
/* The dataset attributes.json object (user attributes + dataset keys). */
int lb__n5_build(const lb__dataset_spec *spec, json_object **out,
                 lb_error *err);
/* Write {"n5": "2.0.0"} into the container root and parent groups (merged
 * into existing attributes), then the dataset's attributes.json. */
int lb__n5_write_meta(const char *path, json_object *attributes,
                      lb_error *err);
int lb__n5_chunk_key(const lb__dataset *d, const int64_t *cidx, char *buf,
                     size_t size);
int lb__n5_decode(const lb__dataset *d, const void *src, size_t n, void *dst,
                  lb__buf *scratch, lb_error *err);
/* Full chunk -> block with header; edge blocks truncated to the array. */
int lb__n5_encode(const lb__dataset *d, const int64_t *cidx, const void *src,
                  lb__buf *out, lb__buf *scratch, lb_error *err);
/* The dataset keys of an N5 attributes.json (not user attributes). */
int lb__n5_is_dataset_key(const char *key);

/* Write JSON to dir/name atomically, pretty-printed with a 4-space indent
 * and as pure ASCII (\uXXXX escapes, lb__json_append_ascii), as zarr-python
 * does. */
int lb__meta_write(const char *dir, const char *name, json_object *o,
                   lb_error *err);

/* A deep copy of a JSON value with object keys sorted (zarr-python writes
 * sorted keys); scalars are shared. NULL in -> NULL out. */
json_object *lb__meta_sorted_copy(json_object *o, lb_error *err);

/* Chunk cache (chunk_cache.c): an LRU of decoded full chunks keyed by the
 * linear chunk index, bounded in bytes, guarded by its own mutex. Chunks
 * live in fixed slots of one arena mapped and touched by lb__chunk_cache_new
 * (min(max_bytes / chunk_bytes, max_chunks) slots), so reads never fault in
 * fresh memory; absent chunks are remembered without a slot, their
 * bookkeeping counted against the limit. A miss decodes
 * straight into a reserved slot; no decode or copy runs under the lock.
 * `max_chunks` < 0: no cap on the slot count. */
int lb__chunk_cache_new(size_t max_bytes, size_t chunk_bytes, int64_t max_chunks,
                        lb__chunk_cache **out, lb_error *err);
void lb__chunk_cache_free(lb__chunk_cache *c);
/* A reader's hold on one cached chunk: `data` stays valid (never evicted,
 * reused or invalidated under it) until released or committed. */
typedef struct lb__cache_ref {
    void *entry;   /* NULL: nothing held */
    uint8_t *data; /* the chunk (lookup hit with data) or the slot to decode into (reserve) */
    int present;   /* lookup hit: 0 = the chunk is not stored (no data) */
} lb__cache_ref;
/* 1 on a hit: ref->present set and, when present, ref->data holds the
 * chunk until lb__chunk_cache_release(ref). 0 on a miss (also while another
 * reader is still decoding the chunk). */
int lb__chunk_cache_lookup(lb__chunk_cache *c, uint64_t key, lb__cache_ref *ref);
void lb__chunk_cache_release(lb__chunk_cache *c, lb__cache_ref *ref);
/* After a miss on a stored chunk: reserve a slot for `key` (evicting the
 * least recently used chunk when none is free) and return 1 with ref->data
 * = chunk_bytes to decode into; then lb__chunk_cache_commit(ref, ok) makes it
 * visible (ok) or drops it (the decode failed). 0 when no slot can be had
 * (the cache holds no slot, all are in use, or another reader is decoding
 * the chunk): decode elsewhere, nothing is cached. */
int lb__chunk_cache_reserve(lb__chunk_cache *c, uint64_t key, lb__cache_ref *ref);
void lb__chunk_cache_commit(lb__chunk_cache *c, lb__cache_ref *ref, int ok);
/* Remember that chunk `key` is not stored. */
void lb__chunk_cache_put_absent(lb__chunk_cache *c, uint64_t key);
/* Forget chunk `key` (its file is about to change); a reader holding it
 * keeps its bytes until it lets go. */
void lb__chunk_cache_invalidate(lb__chunk_cache *c, uint64_t key);
typedef struct lb__chunk_cache_stats {
    uint64_t hits, misses, evictions;
    size_t entries, bytes; /* bytes: what counts against the limit (the arena,
                              entries beyond one per slot) */
    int64_t slots, free_slots;
} lb__chunk_cache_stats;
void lb__chunk_cache_get_stats(lb__chunk_cache *c, lb__chunk_cache_stats *out);
/* The linear cache key of a chunk index (row-major over d->grid). */
uint64_t lb__dataset_chunk_linear(const lb__dataset *d, const int64_t *cidx);

#endif /* LB_DATASET_H */
