/*
 * array.h — the virtual-array interface behind lb_array: a struct of
 * properties plus a vtable. ZarrArray (zarr_array.c), BinarizeArray
 * (binarize_array.c) and MissingAnnotationsMask (mask_array.c) implement
 * it; wrappers own their source. Everything here is internal.
 */
#ifndef LB_ARRAY_H
#define LB_ARRAY_H

#include <json-c/json.h>

#include "dataset/dataset.h"
#include "core/util.h"

/* Working memory of array reads, kept by a caller that reads many times
 * (a writer's worker thread) so that nothing is allocated per block: the
 * stored array's chunk I/O and the wrappers' slab of labels. Zero-initialise,
 * one per thread, release with lb__workspace_free. */
typedef struct lb__workspace {
    lb__io io;
    lb__buf slab;
    int slab_busy; /* a wrapper further up the chain holds `slab` */
} lb__workspace;
void lb__workspace_free(lb__workspace *ws);

typedef struct lb__array_vtable {
    const char *kind;
    /* Read `roi` (already validated: inside, aligned) into out; ws is never
     * NULL. */
    int (*read)(const lb_array *a, const lb_roi *roi, void *out, lb__workspace *ws,
                lb_error *err);
    /* Optional: the sparse read of lb__array_read_sparse. */
    int (*read_sparse)(const lb_array *a, const lb_roi *roi, void *out, uint64_t *counts,
                       lb__workspace *ws, lb_error *err);
    void (*destroy)(lb_array *a); /* free kind-specific state (not `a`) */
    /* Optional: add what the array is computed from to the "labelbin"
     * provenance object of an output (after kind, source and groupings;
     * may replace them). Writers compare the key "crop" on resume. */
    int (*provenance)(const lb_array *a, json_object *lb, lb_error *err);
} lb__array_vtable;

/* lb_array_read with caller-kept working memory (ws NULL: per call). */
int lb__array_read_ws(const lb_array *a, const lb_roi *roi, void *out, size_t out_size,
                      lb__workspace *ws, lb_error *err);

/* A read for writers that skip all-zero chunks. The output is planes: one
 * per element of the leading (non-spatial) dimensions, each the ROI's
 * voxels. counts[k] receives the number of non-zero elements of plane k;
 * planes with counts[k] == 0 may be left unwritten (they are all zero).
 * Arrays that can (BinarizeArray) count while computing and never write the
 * all-zero planes; the others are read whole and counted. */
int lb__array_read_sparse(const lb_array *a, const lb_roi *roi, void *out, size_t out_size,
                          uint64_t *counts, lb__workspace *ws, lb_error *err);

struct lb_array {
    const lb__array_vtable *vt;
    int dims;                           /* spatial dims                     */
    int ndim;                           /* all dims (channels first)        */
    char *axes[LB_MAX_DIMS];            /* ndim names                        */
    int64_t voxel_size[LB_MAX_DIMS];    /* dims entries                      */
    lb_roi roi;                         /* spatial, world units              */
    int64_t shape[LB_MAX_DIMS];         /* ndim entries                      */
    lb_dtype dtype;
    int64_t num_channels;               /* -1 = none                         */
    char **channel_names;               /* num_channels names or NULL        */
    int writable;
    json_object *attrs;                 /* owned reference (json_object_get) */
    char *attrs_text;                   /* lazily serialised attrs           */
    char **warnings;
    int n_warnings;
    lb_array *source;                   /* owned; NULL for stored arrays     */
    lb__dataset *ds;                    /* stored arrays only                */
    char *codec_text;                   /* stored arrays only                */
    char *codec_desc;                   /* stored arrays only                */
    lb_annotations annotations;
    void *impl;                         /* kind-specific state               */
    /* Arrays computed from several stored arrays (over a CellMap crop):
     * the stored arrays they read (owned) and the group they belong to.
     * Writers refuse a destination that is, holds or lies inside any of
     * them, as they do for `source`. */
    lb_array **inputs;
    size_t n_inputs;
    lb__store *group_store;             /* owned reference, or NULL          */
    char *group_path;
};

/* Allocate a zeroed lb_array with vtable `vt`. */
lb_array *lb__array_alloc(const lb__array_vtable *vt, lb_error *err);
/* Append a warning (copied). */
int lb__array_warn(lb_array *a, lb_error *err, const char *fmt, ...) LB__PRINTF(3, 4);
/* Copy axes/dims/voxel_size/roi/attrs/warnings from `src` into `dst` and
 * prepend a channel axis "c" of extent n_channels with the given names.
 * Used by the wrappers. */
int lb__array_wrap_geometry(lb_array *dst, const lb_array *src,
                            int64_t n_channels, const lb_groupings *g,
                            lb_error *err);

/* 1 when the wrappers (BinarizeArray, MissingAnnotationsMask) can take
 * `src` as their source: it has no leading non-spatial axes, or it is a
 * stored array whose leading axes all have extent 1 (an OME-NGFF label
 * image's t and c): those are squeezed, and reads of the source's spatial
 * voxels give the same bytes as if they were absent. */
int lb__array_squeezable(const lb_array *src);

/* Take a new reference to `attrs` (NULL = an empty object) as the array's
 * attributes and serialise them once, so lb_array_attrs_json needs no lazy,
 * thread-unsafe work later. */
int lb__array_set_attrs(lb_array *a, json_object *attrs, lb_error *err);

/* The stored array at the bottom of a chain of wrappers (a itself for a
 * ZarrArray), NULL if there is none. */
const lb_array *lb__array_stored(const lb_array *a);

/* Call fn for every stored array `a` reads: along its chain of sources,
 * and the inputs of arrays over a crop. Stops at fn's first non-zero
 * result and returns it. */
typedef int (*lb__stored_fn)(void *user, const lb_array *stored);
int lb__array_each_stored(const lb_array *a, lb__stored_fn fn, void *user);

/* Where `a` reads from, for messages: the stored array's path, or the
 * crop's, or "(no stored array)". */
const char *lb__array_where(const lb_array *a);

/* The read threads set on the stored array under `a` (lb_array_set_threads),
 * 1 when none or unset: wrappers split their own work as widely. */
int lb__array_read_threads(const lb_array *a);

/* World-unit chunk grid of the stored array under `a` along spatial axis
 * `axis` (0 <= axis < dims): chunk boundaries lie at origin + k * step.
 * Returns 0, or -1 when unknown (then *step = 0). Wrappers read in slabs
 * aligned to it so that no chunk is decoded twice. */
int lb__array_chunk_grid(const lb_array *a, int axis, int64_t *origin, int64_t *step);

/* Read `roi` (validated) of `src` — an array without channels — in slabs
 * along its first spatial axis, aligned to the stored chunk rows when that
 * keeps a slab small, and hand each slab to fn: n labels (src's dtype, C
 * order) that are the ROI's voxels [first, first + n) in C order. Memory
 * stays bounded whatever the ROI size. */
typedef int (*lb__slab_fn)(void *user, const void *labels, size_t n, size_t first,
                           lb_error *err);
int lb__array_read_slabs(const lb_array *src, const lb_roi *roi, lb__slab_fn fn, void *user,
                         lb__workspace *ws, lb_error *err);
/* The same with an explicit target slab size in bytes (tests use tiny ones). */
int lb__array_read_slabs_ex(const lb_array *src, const lb_roi *roi, size_t slab_bytes,
                            lb__slab_fn fn, void *user, lb__workspace *ws, lb_error *err);

/* Refuse `src` as the label source of a wrapper (`what`: "binarize",
 * "build a mask over"): LB_EINVAL for a channel axis, LB_EUNSUPPORTED for a
 * non-integer dtype. The message names the path and hints at what the
 * path probably is (a labelbin output names its own source). Returns code.
 * binarize_array.c. */
int lb__refuse_source(const lb_array *src, const char *what, int code, lb_error *err);

/* Every wrapper's impl starts with this: what it was built from. */
typedef struct lb__wrap_info {
    lb_groupings *groupings; /* owned copy */
    lb_id background;
    int has_background;      /* BinarizeArray: 1; MissingAnnotationsMask: 0 */
} lb__wrap_info;

/* The groupings (and background) a wrapper was built with, for provenance.
 * Returns 0, or -1 for a stored array. *g lives as long as `a`. */
#define LB__ARRAY_HAS_GROUPINGS 1
int lb__array_groupings(const lb_array *a, const lb_groupings **g, lb_id *background,
                        int *has_background);

/* ZarrArrayConfig.snap_to_grid: give a ZarrArray the smaller ROI `roi`
 * (inside its own, aligned). Reads keep addressing the stored data by its
 * real offset (DaCapo's shifted reads are not reproduced). zarr_array.c. */
int lb__zarr_array_set_roi(lb_array *a, const lb_roi *roi, lb_error *err);

/* The index-space region (all ndim dimensions of its dataset) that a read
 * of `roi` (validated) of stored array `a` covers. zarr_array.c. */
void lb__zarr_array_box(const lb_array *a, const lb_roi *roi, int64_t *start, int64_t *count);

/* 1 when wrapper reads over `src` can work from the label cache's encoded
 * chunks (src is a stored array with a label cache). */
int lb__array_cseg_source(const lb_array *src);

/* Beyond this many bytes of labels, a ROI with a chunk the cache declines
 * is read again without the cache (lb__cseg_read_region returns 1); a
 * variable only so that tests can reach that path with small ROIs. */
extern size_t lb__raw_region_max_bytes;

/* Channel planes (at most 64; plane c at out + c * plane_stride) of `roi`
 * (validated) of stored array `src` that has a label cache, computed from
 * the encoded chunks the ROI touches through fn (kernels/cseg.h), the ROI's
 * rows shared out between `threads` threads. `each` (may be NULL) is
 * called for every encoded chunk part first. A chunk the cache declines
 * (it does not compress) is read decoded: with `raw` (may be NULL), the
 * ROI's labels are then assembled (declined chunks decoded once, the
 * others expanded from their encoding) and passed whole to raw(raw_user,
 * labels, n, 0) instead of computing channels through fn; without it, 1 is
 * returned, having written nothing, for the caller to read the ROI from
 * the decoded labels. array.c. */
typedef void (*lb__cseg_channels_fn)(void *user, uint64_t id, uint64_t *out);
typedef struct lb__cseg_part lb__cseg_part;
typedef void (*lb__cseg_part_fn)(void *user, const lb__cseg_part *part);
int lb__cseg_read_region(const lb_array *src, const lb_roi *roi, size_t channels,
                         lb__cseg_channels_fn fn, void *user, uint8_t *out, size_t plane_stride,
                         int threads, lb__cseg_part_fn each, void *each_user,
                         lb__slab_fn raw, void *raw_user, lb__workspace *ws, lb_error *err);

/* Validate a read ROI against the array: dims, inside, aligned. The
 * message names the ROI, the array's ROI and the voxel size. */
int lb__array_check_roi(const lb_array *a, const lb_roi *roi, lb_error *err);

/* Number of voxels of `roi` in the array's grid (Π shape/voxel); -1 on
 * overflow. Fills vox[] (dims entries) when not NULL. */
int64_t lb__roi_voxels(const lb_array *a, const lb_roi *roi, int64_t *vox);


/* Parse the `labels` annotation attribute (fibsem-tools LabelList, boolean
 * or 2023 string form) of `attrs`. Sets *kind; on success *pna / *n_pna
 * receive the present-but-not-annotated ids (malloc'd, may be NULL when 0).
 * Malformed metadata: LB_EFORMAT naming the JSON path, *kind =
 * LB_ANNOTATIONS_INVALID. Implemented in annotations.c. */
int lb__annotations_parse(json_object *attrs, lb_annotations *kind,
                          lb_id **pna, size_t *n_pna, lb_error *err);

#endif /* LB_ARRAY_H */
