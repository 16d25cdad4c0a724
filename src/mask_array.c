/*
 * mask_array.c — DaCapo's MissingAnnotationsMask: per group, `label > 0`,
 * or all 0 when the group lists an id that the crop's `labels` metadata marks
 * present but not annotated (DESIGN.md §1.5). Computed on read, slab by slab.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "kernels.h"

typedef struct mask_impl {
    lb__wrap_info info; /* first: see array.h */
    uint8_t *enabled;   /* one flag per channel */
    size_t channels;
} mask_impl;

typedef struct slab_ctx {
    lb_dtype dtype;         /* the labels' */
    const uint8_t *enabled; /* channels flags */
    size_t channels;
    uint8_t *out;
    size_t plane_stride;
} slab_ctx;

static int mask_slab(void *user, const void *labels, size_t n, size_t first, lb_error *err) {
    slab_ctx *c = user;
    (void)err;
    lb__mask(c->dtype, labels, n, c->enabled, c->channels, c->out + first, c->plane_stride);
    return 0;
}

static int mask_read(const lb_array *a, const lb_roi *roi, void *out, lb__workspace *ws,
                     lb_error *err) {
    const mask_impl *m = a->impl;
    int64_t n = lb__roi_voxels(a, roi, NULL);
    if (n < 0) return lb__err(err, LB_ELIMIT, "the ROI's voxel count overflows");
    slab_ctx c = {a->source->dtype, m->enabled, m->channels, out, (size_t)n};
    return lb__array_read_slabs(a->source, roi, mask_slab, &c, ws, err);
}

/* Every enabled channel is the same plane (label > 0) and the disabled ones
 * are zero: compute the first enabled plane once, count it, and copy it to
 * the other enabled planes only when it has a voxel on. */
static int mask_read_sparse(const lb_array *a, const lb_roi *roi, void *out, uint64_t *counts,
                            lb__workspace *ws, lb_error *err) {
    const mask_impl *m = a->impl;
    int64_t n = lb__roi_voxels(a, roi, NULL);
    if (n < 0) return lb__err(err, LB_ELIMIT, "the ROI's voxel count overflows");
    size_t first = 0;
    while (first < m->channels && !m->enabled[first]) first++;
    if (first == m->channels) return 0; /* every plane is zero; counts are 0 */
    static const uint8_t on = 1;
    uint8_t *plane0 = (uint8_t *)out + first * (size_t)n;
    slab_ctx c = {a->source->dtype, &on, 1, plane0, (size_t)n};
    int rc = lb__array_read_slabs(a->source, roi, mask_slab, &c, ws, err);
    if (rc) return rc;
    uint64_t ones = lb__count_nonzero(plane0, (size_t)n);
    for (size_t k = first; k < m->channels && ones; k++) {
        if (!m->enabled[k]) continue;
        counts[k] = ones;
        if (k != first) memcpy((uint8_t *)out + k * (size_t)n, plane0, (size_t)n);
    }
    return 0;
}

static void mask_destroy(lb_array *a) {
    mask_impl *m = a->impl;
    if (m) {
        free(m->enabled);
        lb_groupings_free(m->info.groupings);
    }
    free(m);
}

static const lb__array_vtable mask_vt = {"MissingAnnotationsMask", mask_read,
                                         mask_read_sparse, mask_destroy};

static int id_cmp(const void *pa, const void *pb) {
    const lb_id *x = pa, *y = pb;
    if (x->negative != y->negative) return x->negative ? -1 : 1;
    /* Same sign: the bits order the values (two's complement for negatives). */
    return x->bits < y->bits ? -1 : (x->bits > y->bits ? 1 : 0);
}

/* A group is switched off when it lists any present-but-not-annotated id.
 * Ids compare by value, also ids the source dtype cannot hold: the metadata
 * speaks of ids, not of stored values. */
static void compute_enabled(const lb_groupings *g, lb_id *pna, size_t n_pna, uint8_t *enabled) {
    size_t n = lb_groupings_count(g);
    if (n_pna > 1) qsort(pna, n_pna, sizeof *pna, id_cmp);
    for (size_t i = 0; i < n; i++) {
        const lb_id *ids;
        size_t m = lb_groupings_ids(g, i, &ids);
        enabled[i] = 1;
        for (size_t j = 0; j < m && n_pna; j++)
            if (bsearch(&ids[j], pna, n_pna, sizeof *pna, id_cmp)) {
                enabled[i] = 0;
                break;
            }
    }
}

int lb_mask_new(lb_array *source, const lb_groupings *groupings, lb_array **out,
                lb_error *err) {
    lb_array *a = NULL;
    lb_id *pna = NULL;
    size_t n_pna = 0;
    int rc;
    if (out) *out = NULL;
    if (!source) return lb__err(err, LB_EINVAL, "lb_mask_new: no source array");
    if (!out || !groupings) {
        rc = lb__err(err, LB_EINVAL, "lb_mask_new: no %s", out ? "groupings" : "output");
        goto fail;
    }
    if (!lb__array_squeezable(source)) {
        rc = lb__err(err, LB_EINVAL, "cannot build a mask over a source array with channels");
        goto fail;
    }
    if (!lb_dtype_is_integer(source->dtype)) {
        rc = lb__err(err, LB_EUNSUPPORTED,
                     "cannot build a mask over a source array of dtype %s: label ids must be "
                     "integers",
                     lb_dtype_name(source->dtype));
        goto fail;
    }
    lb_annotations kind;
    rc = lb__annotations_parse(source->attrs, &kind, &pna, &n_pna, err);
    if (rc) {
        const lb_array *st = lb__array_stored(source);
        if (st)
            lb__err_prefix(err, "%s/%s", st->ds->path,
                           st->ds->format == LB_FORMAT_N5 ? "attributes.json" : ".zattrs");
        goto fail;
    }
    a = lb__array_alloc(&mask_vt, err);
    if (!a) {
        rc = LB_ENOMEM;
        goto fail;
    }
    size_t g = lb_groupings_count(groupings);
    mask_impl *m = lb__calloc(1, sizeof *m, "MissingAnnotationsMask state", err);
    if (!m) {
        rc = LB_ENOMEM;
        goto fail;
    }
    a->impl = m;
    rc = lb_groupings_copy(groupings, &m->info.groupings, err);
    if (rc) goto fail;
    m->channels = g;
    m->enabled = lb__calloc(g ? g : 1, 1, "channel flags", err);
    if (!m->enabled) {
        rc = LB_ENOMEM;
        goto fail;
    }
    compute_enabled(groupings, pna, n_pna, m->enabled);
    rc = lb__array_wrap_geometry(a, source, (int64_t)g, groupings, err);
    if (rc) goto fail;
    a->annotations = kind;
    a->dtype = LB_DTYPE_UINT8;
    a->writable = 0;
    a->source = source;
    free(pna);
    *out = a;
    return 0;
fail:
    free(pna);
    lb_array_free(a);
    lb_array_free(source);
    return rc;
}
