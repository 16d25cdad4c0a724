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

#include "codec.h"
#include "util.h"

typedef struct lb__chunk_cache lb__chunk_cache;

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
} lb__dataset;

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

/* Cache of decoded chunks, at most `bytes` (0 removes it). Not safe against
 * concurrent reads of the same dataset. */
int lb__dataset_set_cache(lb__dataset *d, size_t bytes, lb_error *err);

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

#endif /* LB_DATASET_H */
