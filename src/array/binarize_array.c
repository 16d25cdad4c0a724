/*
 * binarize_array.c — DaCapo's BinarizeArray: one uint8 0/1 channel per group
 * of label ids over a label source, computed on read (docs/semantics.md §2) by the
 * binarize kernel, slab by slab so memory stays bounded.
 */
#include <stdio.h>
#include <stdlib.h>

#include "array/array.h"
#include "core/json.h"
#include "kernels/cseg.h"
#include "kernels/kernels.h"

typedef struct binarize_impl {
    lb__wrap_info info; /* first: see array.h */
    lb__binplan *plan;
} binarize_impl;

/* Below this many voxels per thread a slab is binarized in one thread. */
#define PAR_MIN_VOXELS ((size_t)1 << 16)

typedef struct slab_ctx {
    const lb__binplan *plan;
    uint8_t *out;
    size_t plane_stride; /* voxels of the whole ROI: one output channel */
    uint64_t *counts;    /* sparse reads: ones per channel */
    int threads;         /* dense reads: split each slab this many ways */
    size_t itemsize;     /* of a label */
    const unsigned char *labels; /* the slab being split ... */
    size_t n, first, piece;      /* ... its voxels, offset and piece size */
} slab_ctx;

static int binarize_piece(void *user, int worker, int64_t k) {
    const slab_ctx *c = user;
    (void)worker;
    size_t lo = (size_t)k * c->piece, m = c->n - lo < c->piece ? c->n - lo : c->piece;
    lb__binarize(c->plan, c->labels + lo * c->itemsize, m,
                 c->out + c->first + lo, c->plane_stride);
    return 0;
}

static int binarize_slab(void *user, const void *labels, size_t n, size_t first,
                         lb_error *err) {
    slab_ctx *c = user;
    (void)err;
    if (c->counts) {
        lb__binarize_sparse(c->plan, labels, n, c->out + first, first, c->plane_stride,
                            c->counts, 0);
    } else if (c->threads > 1 && n >= 2 * PAR_MIN_VOXELS) {
        /* Disjoint voxel ranges of every plane: no two threads share a
         * cache line but at the seams (64-voxel aligned pieces). */
        int t = n / PAR_MIN_VOXELS < (size_t)c->threads ? (int)(n / PAR_MIN_VOXELS) : c->threads;
        c->labels = labels;
        c->n = n;
        c->first = first;
        c->piece = ((n + (size_t)t - 1) / (size_t)t + 63) & ~(size_t)63;
        return lb__parallel_for(t, (int64_t)((n + c->piece - 1) / c->piece), binarize_piece, c,
                                NULL);
    } else {
        lb__binarize(c->plan, labels, n, c->out + first, c->plane_stride);
    }
    return 0;
}

static int binarize_any(const lb_array *a, const lb_roi *roi, void *out, uint64_t *counts,
                        lb__workspace *ws, lb_error *err) {
    const binarize_impl *b = a->impl;
    int64_t n = lb__roi_voxels(a, roi, NULL);
    if (n < 0) return lb__err(err, LB_ELIMIT, "the ROI's voxel count overflows");
    slab_ctx c = {b->plan, out, (size_t)n, counts, lb__array_read_threads(a),
                  lb_dtype_size(a->source->dtype), NULL, 0, 0, 0};
    return lb__array_read_slabs(a->source, roi, binarize_slab, &c, ws, err);
}

/* ---- from the label cache: each block's ids mapped to channels once ---- */

typedef struct cseg_ctx {
    const lb__binplan *plan;
    uint8_t *out;
    size_t plane_stride, channels;
} cseg_ctx;

static void plan_channels(void *user, uint64_t id, uint64_t *bits) {
    lb__binplan_channel_set(user, id, bits);
}

static int binarize_chunk(void *user, const void *cseg, const lb__cseg_box *b, size_t lead,
                          lb_error *err) {
    const cseg_ctx *c = user;
    if (lb__cseg_channels_box(cseg, b, c->channels, plan_channels, (void *)c->plan,
                              c->out + lead, c->plane_stride))
        return lb__err(err, LB_ENOMEM, "out of memory binarizing %zu channels", c->channels);
    return 0;
}

static int binarize_read(const lb_array *a, const lb_roi *roi, void *out, lb__workspace *ws,
                         lb_error *err) {
    if (lb__array_cseg_source(a->source)) {
        const binarize_impl *b = a->impl;
        int64_t n = lb__roi_voxels(a, roi, NULL);
        if (n < 0) return lb__err(err, LB_ELIMIT, "the ROI's voxel count overflows");
        size_t channels = lb__binplan_channels(b->plan);
        if (channels <= 64) {
            /* A chunk the cache declines (many ids per block, where
             * encoding and binarizing from the encoding cost more than
             * decoding) is binarized from its decoded labels, as without
             * the cache: the ROI through binarize_slab. */
            slab_ctx sc = {b->plan, out, (size_t)n, NULL, lb__array_read_threads(a),
                           lb_dtype_size(a->source->dtype), NULL, 0, 0, 0};
            int rc = lb__cseg_read_region(a->source, roi, channels, plan_channels,
                                          (void *)b->plan, out, (size_t)n,
                                          lb__array_read_threads(a), NULL, NULL, binarize_slab,
                                          &sc, ws, err);
            /* 1: declined, and the ROI too large to assemble its labels. */
            if (rc != 1) return rc;
            return binarize_any(a, roi, out, NULL, ws, err);
        }
        int64_t start[LB_MAX_DIMS], count[LB_MAX_DIMS];
        lb__zarr_array_box(a->source, roi, start, count);
        cseg_ctx c = {b->plan, out, (size_t)n, channels};
        return lb__dataset_visit_cseg(a->source->ds, start, count, binarize_chunk, &c, &ws->io,
                                      err);
    }
    return binarize_any(a, roi, out, NULL, ws, err);
}

static int binarize_read_sparse(const lb_array *a, const lb_roi *roi, void *out,
                                uint64_t *counts, lb__workspace *ws, lb_error *err) {
    return binarize_any(a, roi, out, counts, ws, err);
}

static void binarize_destroy(lb_array *a) {
    binarize_impl *b = a->impl;
    if (b) {
        lb__binplan_free(b->plan);
        lb_groupings_free(b->info.groupings);
    }
    free(b);
}

/* Ids the source dtype cannot hold never match: say so through the array's
 * warnings, which front ends print. */
static int warn_unfit(lb_array *a, const lb_groupings *g, lb_dtype dtype, lb_id background,
                      lb_error *err) {
    size_t n = lb_groupings_count(g);
    int any_empty = 0;
    for (size_t i = 0; i < n; i++) {
        const lb_id *ids;
        size_t m = lb_groupings_ids(g, i, &ids);
        if (m == 0) any_empty = 1;
        for (size_t j = 0; j < m; j++) {
            if (lb_id_fits(ids[j], dtype)) continue;
            char buf[32];
            lb_id_format(ids[j], buf, sizeof buf);
            int rc = lb__array_warn(a, err,
                                    "group \"%s\": id %s does not fit the source dtype %s "
                                    "and never matches",
                                    lb_groupings_name(g, i), buf, lb_dtype_name(dtype));
            if (rc) return rc;
        }
    }
    if (any_empty && !lb_id_fits(background, dtype)) {
        char buf[32];
        lb_id_format(background, buf, sizeof buf);
        return lb__array_warn(a, err,
                              "background %s does not fit the source dtype %s: empty groups "
                              "select every voxel",
                              buf, lb_dtype_name(dtype));
    }
    return 0;
}

static const lb__array_vtable binarize_vt = {"BinarizeArray", binarize_read,
                                             binarize_read_sparse, binarize_destroy, NULL};

int lb__refuse_source(const lb_array *src, const char *what, int code, lb_error *err) {
    const char *path = lb__array_where(src);
    char where[1100], axes[256] = "", hint[700];
    if (src->ds)
        snprintf(where, sizeof where, "%s", path);
    else
        snprintf(where, sizeof where, "%s over %s", src->vt->kind, path);
    size_t len = 0;
    for (int i = 0; i < src->ndim && len < sizeof axes; i++)
        len += (size_t)snprintf(axes + len, sizeof axes - len, "%s%s", i ? ", " : "",
                                src->axes[i] ? src->axes[i] : "?");
    /* A labelbin output names what it was made from: point there. */
    json_object *lb = src->attrs ? lb__json_get(src->attrs, "labelbin") : NULL;
    json_object *kind = lb ? lb__json_get(lb, "kind") : NULL;
    json_object *from = lb ? lb__json_get(lb, "source") : NULL;
    if (!src->ds)
        snprintf(hint, sizeof hint, "build it over the label dataset itself");
    else if (kind && from && json_object_is_type(kind, json_type_string) &&
             json_object_is_type(from, json_type_string))
        snprintf(hint, sizeof hint, "it is a %s that labelbin wrote from %s: give that label "
                 "dataset instead", json_object_get_string(kind), json_object_get_string(from));
    else if (lb)
        snprintf(hint, sizeof hint, "it is an output of labelbin, not a label dataset: give "
                 "the labels it was made from");
    else
        snprintf(hint, sizeof hint, "is this an output (a target, mask or prediction) or raw "
                 "data rather than a label dataset?");
    if (code == LB_EUNSUPPORTED)
        return lb__err(err, code, "%s: cannot %s a source array of dtype %s: label ids must be "
                       "integers; %s", where, what, lb_dtype_name(src->dtype), hint);
    return lb__err(err, code, "%s: cannot %s a source array with channels (axes %s): a label "
                   "dataset has one id per voxel and no channel axis; %s", where, what, axes,
                   hint);
}

int lb_binarize_new(lb_array *source, const lb_groupings *groupings, lb_id background,
                    lb_array **out, lb_error *err) {
    lb_array *a = NULL;
    int rc;
    if (out) *out = NULL;
    if (!source) return lb__err(err, LB_EINVAL, "lb_binarize_new: no source array");
    if (!out || !groupings) {
        rc = lb__err(err, LB_EINVAL, "lb_binarize_new: no %s", out ? "groupings" : "output");
        goto fail;
    }
    if (!lb__array_squeezable(source)) {
        rc = lb__refuse_source(source, "binarize", LB_EINVAL, err);
        goto fail;
    }
    if (!lb_dtype_is_integer(source->dtype)) {
        rc = lb__refuse_source(source, "binarize", LB_EUNSUPPORTED, err);
        goto fail;
    }
    if (lb_groupings_count(groupings) == 0) {
        rc = lb__err(err, LB_EINVAL, "the groupings are empty: a BinarizeArray needs at least "
                     "one group (each group is one output channel)");
        goto fail;
    }
    a = lb__array_alloc(&binarize_vt, err);
    if (!a) {
        rc = LB_ENOMEM;
        goto fail;
    }
    binarize_impl *b = lb__calloc(1, sizeof *b, "BinarizeArray state", err);
    if (!b) {
        rc = LB_ENOMEM;
        goto fail;
    }
    a->impl = b;
    b->info.background = background;
    b->info.has_background = 1;
    rc = lb_groupings_copy(groupings, &b->info.groupings, err);
    if (rc) goto fail;
    rc = lb__binplan_new(groupings, source->dtype, background, &b->plan, err);
    if (rc) goto fail;
    size_t g = lb_groupings_count(groupings);
    rc = lb__array_wrap_geometry(a, source, (int64_t)g, groupings, err);
    if (rc) goto fail;
    rc = warn_unfit(a, groupings, source->dtype, background, err);
    if (rc) goto fail;
    a->dtype = LB_DTYPE_UINT8;
    a->writable = 0;
    a->source = source;
    *out = a;
    return 0;
fail:
    lb_array_free(a);
    lb_array_free(source);
    return rc;
}
