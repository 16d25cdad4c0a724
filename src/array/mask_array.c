/*
 * mask_array.c — DaCapo's MissingAnnotationsMask: per group, `label > 0`,
 * or all 0 when the group lists an id that the crop's `labels` metadata marks
 * present but not annotated (docs/semantics.md §2). Computed on read, slab by slab.
 * Says why: which ids switched a channel off, and which ids > 0 the reads
 * met that the metadata does not list as present (DaCapo's rule counts them
 * as annotated without a word).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array/array.h"
#include "array/crop.h"
#include "core/json.h"
#include "kernels/cseg.h"
#include "kernels/kernels.h"

typedef struct mask_impl {
    lb__wrap_info info; /* first: see array.h */
    uint8_t *enabled;   /* one flag per channel */
    size_t channels;
    /* Channel k is off because of off_ids[off_start[k] .. off_start[k+1]). */
    lb_id *off_ids;
    size_t *off_start;
    /* Ids > 0 met by reads that `labels` does not list as present: tracked
     * only when the source has a `labels` attribute (`track`), against
     * `present` (sorted ids > 0 listed as present). */
    int track;
    uint64_t *present;
    size_t n_present;
    pthread_mutex_t lock; /* guards unlisted / n_unlisted */
    int lock_ok;
    uint64_t unlisted[LB_MASK_UNLISTED_MAX]; /* sorted */
    size_t n_unlisted;
    atomic_int full; /* the list is full: reads stop looking */
} mask_impl;

typedef struct slab_ctx {
    lb_dtype dtype;         /* the labels' */
    const uint8_t *enabled; /* channels flags */
    size_t channels;
    uint8_t *out;
    size_t plane_stride;
    mask_impl *m;           /* for the unlisted ids */
} slab_ctx;

static int u64_cmp(const void *pa, const void *pb) {
    uint64_t x = *(const uint64_t *)pa, y = *(const uint64_t *)pb;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static int is_present(const mask_impl *m, uint64_t v) {
    size_t lo = 0, hi = m->n_present;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->present[mid] == v) return 1;
        if (m->present[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* Merge a slab's finds into the shared sorted list. */
static void record_unlisted(mask_impl *m, const uint64_t *v, size_t n) {
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < n && m->n_unlisted < LB_MASK_UNLISTED_MAX; i++) {
        size_t k = 0;
        while (k < m->n_unlisted && m->unlisted[k] < v[i]) k++;
        if (k < m->n_unlisted && m->unlisted[k] == v[i]) continue;
        memmove(&m->unlisted[k + 1], &m->unlisted[k], (m->n_unlisted - k) * sizeof *v);
        m->unlisted[k] = v[i];
        m->n_unlisted++;
    }
    if (m->n_unlisted == LB_MASK_UNLISTED_MAX)
        atomic_store_explicit(&m->full, 1, memory_order_relaxed);
    pthread_mutex_unlock(&m->lock);
}

/* One pass over a slab of labels looking for ids > 0 not listed as
 * present. Labels come in runs, so only a change of value costs a lookup;
 * a slab's finds are merged under the lock once. */
#define SCAN_UNLISTED(T, IS_POS)                                                    \
    do {                                                                            \
        const T *p = labels;                                                        \
        T prev = 0;                                                                 \
        for (size_t i = 0; i < n; i++) {                                            \
            T x = p[i];                                                             \
            if (x == prev) continue;                                                \
            prev = x;                                                               \
            if (!(IS_POS) || is_present(m, (uint64_t)x)) continue;                  \
            size_t k = 0;                                                           \
            while (k < nf && found[k] != (uint64_t)x) k++;                          \
            if (k < nf) continue;                                                   \
            if (nf == sizeof found / sizeof *found) {                               \
                record_unlisted(m, found, nf);                                      \
                nf = 0;                                                             \
            }                                                                       \
            found[nf++] = (uint64_t)x;                                              \
        }                                                                           \
    } while (0)

static void scan_unlisted(mask_impl *m, lb_dtype dtype, const void *labels, size_t n) {
    if (!m->track || atomic_load_explicit(&m->full, memory_order_relaxed)) return;
    uint64_t found[16];
    size_t nf = 0;
    switch (dtype) {
    case LB_DTYPE_UINT8: SCAN_UNLISTED(uint8_t, x != 0); break;
    case LB_DTYPE_UINT16: SCAN_UNLISTED(uint16_t, x != 0); break;
    case LB_DTYPE_UINT32: SCAN_UNLISTED(uint32_t, x != 0); break;
    case LB_DTYPE_UINT64: SCAN_UNLISTED(uint64_t, x != 0); break;
    case LB_DTYPE_INT8: SCAN_UNLISTED(int8_t, x > 0); break;
    case LB_DTYPE_INT16: SCAN_UNLISTED(int16_t, x > 0); break;
    case LB_DTYPE_INT32: SCAN_UNLISTED(int32_t, x > 0); break;
    case LB_DTYPE_INT64: SCAN_UNLISTED(int64_t, x > 0); break;
    default: break;
    }
    if (nf) record_unlisted(m, found, nf);
}

static int mask_slab(void *user, const void *labels, size_t n, size_t first, lb_error *err) {
    slab_ctx *c = user;
    (void)err;
    lb__mask(c->dtype, labels, n, c->enabled, c->channels, c->out + first, c->plane_stride);
    scan_unlisted(c->m, c->dtype, labels, n);
    return 0;
}

/* ---- from the label cache: label > 0 per block id, ids from the tables ---- */

/* Label bit pattern `id` (zero-extended) > 0 in `dtype`. */
static int positive(lb_dtype dtype, uint64_t id) {
    switch (dtype) {
    case LB_DTYPE_INT8: return (int8_t)(uint8_t)id > 0;
    case LB_DTYPE_INT16: return (int16_t)(uint16_t)id > 0;
    case LB_DTYPE_INT32: return (int32_t)(uint32_t)id > 0;
    case LB_DTYPE_INT64: return (int64_t)id > 0;
    default: return id != 0;
    }
}

typedef struct cseg_ctx {
    lb_dtype dtype;
    uint8_t *plane;
    size_t plane_stride;
    mask_impl *m;
} cseg_ctx;

typedef struct unlisted_acc {
    const cseg_ctx *c;
    uint64_t found[16];
    size_t nf;
} unlisted_acc;

static void positive_channel(void *user, uint64_t id, uint64_t *bits) {
    const cseg_ctx *c = user;
    bits[0] = (uint64_t)positive(c->dtype, id);
}

static void unlisted_id(void *user, uint64_t id) {
    unlisted_acc *u = user;
    mask_impl *m = u->c->m;
    if (!positive(u->c->dtype, id) || is_present(m, id)) return;
    for (size_t k = 0; k < u->nf; k++)
        if (u->found[k] == id) return;
    if (u->nf == sizeof u->found / sizeof *u->found) {
        record_unlisted(m, u->found, u->nf);
        u->nf = 0;
    }
    u->found[u->nf++] = id;
}

/* The ids of a chunk's part of the ROI that `labels` does not list. */
static void part_unlisted(void *user, const lb__cseg_part *p) {
    const cseg_ctx *c = user;
    mask_impl *m = c->m;
    if (!m->track || atomic_load_explicit(&m->full, memory_order_relaxed)) return;
    lb__cseg_box b;
    for (int k = 0; k < 3; k++) {
        b.cstart[k] = p->cstart[k];
        b.cnt[k] = b.dshape[k] = p->cnt[k];
        b.dstart[k] = 0;
    }
    unlisted_acc u = {c, {0}, 0};
    lb__cseg_ids_in_box(p->cseg, &b, unlisted_id, &u);
    if (u.nf) record_unlisted(m, u.found, u.nf);
}

/* Plane of the first enabled channel from the encoded chunks, then copied
 * to the other enabled channels; disabled channels are zero. */
static int mask_read_cseg(const lb_array *a, const lb_roi *roi, void *out, size_t n,
                          lb__workspace *ws, lb_error *err) {
    mask_impl *m = a->impl;
    uint8_t *o = out;
    size_t first = 0;
    while (first < m->channels && !m->enabled[first]) first++;
    if (first < m->channels) {
        cseg_ctx c = {a->source->dtype, o + first * n, n, m};
        /* Chunks the cache declines: the plane from the decoded labels. */
        static const uint8_t on = 1;
        slab_ctx sc = {a->source->dtype, &on, 1, c.plane, n, m};
        int rc = lb__cseg_read_region(a->source, roi, 1, positive_channel, &c, c.plane, n,
                                      lb__array_read_threads(a), part_unlisted, &c, mask_slab,
                                      &sc, ws, err);
        if (rc) return rc;
    }
    for (size_t k = 0; k < m->channels; k++) {
        if (k == first) continue;
        if (m->enabled[k]) memcpy(o + k * n, o + first * n, n);
        else memset(o + k * n, 0, n);
    }
    return 0;
}

static int mask_read(const lb_array *a, const lb_roi *roi, void *out, lb__workspace *ws,
                     lb_error *err) {
    mask_impl *m = a->impl;
    int64_t n = lb__roi_voxels(a, roi, NULL);
    if (n < 0) return lb__err(err, LB_ELIMIT, "the ROI's voxel count overflows");
    if (lb__array_cseg_source(a->source)) {
        int rc = mask_read_cseg(a, roi, out, (size_t)n, ws, err);
        if (rc != 1) return rc; /* 1: a chunk declined by the cache */
    }
    slab_ctx c = {a->source->dtype, m->enabled, m->channels, out, (size_t)n, m};
    return lb__array_read_slabs(a->source, roi, mask_slab, &c, ws, err);
}

/* Every enabled channel is the same plane (label > 0) and the disabled ones
 * are zero: compute the first enabled plane once, count it, and copy it to
 * the other enabled planes only when it has a voxel on. */
static int mask_read_sparse(const lb_array *a, const lb_roi *roi, void *out, uint64_t *counts,
                            lb__workspace *ws, lb_error *err) {
    mask_impl *m = a->impl;
    int64_t n = lb__roi_voxels(a, roi, NULL);
    if (n < 0) return lb__err(err, LB_ELIMIT, "the ROI's voxel count overflows");
    size_t first = 0;
    while (first < m->channels && !m->enabled[first]) first++;
    if (first == m->channels) return 0; /* every plane is zero; counts are 0 */
    static const uint8_t on = 1;
    uint8_t *plane0 = (uint8_t *)out + first * (size_t)n;
    slab_ctx c = {a->source->dtype, &on, 1, plane0, (size_t)n, m};
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
        free(m->off_ids);
        free(m->off_start);
        free(m->present);
        if (m->lock_ok) pthread_mutex_destroy(&m->lock);
        lb_groupings_free(m->info.groupings);
    }
    free(m);
}

static const lb__array_vtable mask_vt = {"MissingAnnotationsMask", mask_read,
                                         mask_read_sparse, mask_destroy, NULL};

/* The mask behind `a`, or NULL when `a` is not a MissingAnnotationsMask. */
static mask_impl *mask_of(const lb_array *a) {
    return a && a->vt == &mask_vt ? a->impl : NULL;
}

static int id_cmp(const void *pa, const void *pb) {
    const lb_id *x = pa, *y = pb;
    if (x->negative != y->negative) return x->negative ? -1 : 1;
    /* Same sign: the bits order the values (two's complement for negatives). */
    return x->bits < y->bits ? -1 : (x->bits > y->bits ? 1 : 0);
}

/* A group is switched off when it lists any present-but-not-annotated id.
 * Ids compare by value, also ids the source dtype cannot hold: the metadata
 * speaks of ids, not of stored values. Each channel keeps the ids that
 * switched it off (each once, in group order) for lb_mask_off_ids. */
static int compute_enabled(const lb_groupings *g, lb_id *pna, size_t n_pna, mask_impl *mi,
                           lb_error *err) {
    size_t n = lb_groupings_count(g), total = 0;
    if (n_pna > 1) qsort(pna, n_pna, sizeof *pna, id_cmp);
    for (size_t i = 0; i < n; i++) total += lb_groupings_ids(g, i, NULL);
    mi->off_start = lb__calloc(n + 1, sizeof *mi->off_start, "channel flags", err);
    mi->off_ids = lb__calloc(total ? total : 1, sizeof *mi->off_ids, "channel flags", err);
    if (!mi->off_start || !mi->off_ids) return LB_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const lb_id *ids;
        size_t m = lb_groupings_ids(g, i, &ids);
        mi->off_start[i] = k;
        for (size_t j = 0; j < m && n_pna; j++) {
            if (!bsearch(&ids[j], pna, n_pna, sizeof *pna, id_cmp)) continue;
            size_t d = mi->off_start[i];
            while (d < k && id_cmp(&mi->off_ids[d], &ids[j]) != 0) d++;
            if (d == k) mi->off_ids[k++] = ids[j];
        }
        mi->enabled[i] = k == mi->off_start[i];
    }
    mi->off_start[n] = k;
    return 0;
}

/* The ids > 0 that the (validated) `labels` attribute lists as present,
 * sorted: any other id > 0 met in the data is "unlisted". */
static int present_ids(json_object *attrs, mask_impl *mi, lb_error *err) {
    json_object *labels = lb__json_get(attrs, "labels");
    size_t n = labels ? json_object_array_length(labels) : 0, k = 0;
    mi->present = lb__calloc(n ? n : 1, sizeof *mi->present, "annotation ids", err);
    if (!mi->present) return LB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_object *l = json_object_array_get_idx(labels, i);
        json_object *state = lb__json_get(l, "annotationState");
        json_object *present = state ? lb__json_get(state, "present") : NULL;
        lb_id v;
        if (!present || !json_object_get_boolean(present) ||
            lb__json_id(lb__json_get(l, "value"), "labels", &v, NULL) != 0 || v.negative ||
            v.bits == 0)
            continue;
        mi->present[k++] = v.bits;
    }
    if (k > 1) qsort(mi->present, k, sizeof *mi->present, u64_cmp);
    mi->n_present = k;
    return 0;
}

size_t lb_mask_off_ids(const lb_array *a, int64_t channel, const lb_id **ids) {
    const mask_impl *m = mask_of(a);
    if (ids) *ids = NULL;
    if (!m || channel < 0 || (uint64_t)channel >= m->channels) return 0;
    size_t b = m->off_start[channel], e = m->off_start[channel + 1];
    if (ids && e > b) *ids = &m->off_ids[b];
    return e - b;
}

size_t lb_mask_unlisted_ids(const lb_array *a, lb_id *out, size_t cap) {
    mask_impl *m = mask_of(a);
    if (!m || !m->track) return 0;
    pthread_mutex_lock(&m->lock);
    size_t n = m->n_unlisted;
    for (size_t i = 0; i < n && i < cap && out; i++) out[i] = (lb_id){m->unlisted[i], 0};
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* Over the dense `all` array of a crop, the ids whose class the crop does
 * not annotate switch channels off like present-but-not-annotated ids: add
 * them to `pna`. */
static int add_crop_rule(const lb_array *source, const lb_groupings *groupings,
                         const lb_classes *classes, lb_id **pna, size_t *n_pna, lb_error *err) {
    const lb_array *st = lb__array_stored(source);
    if (!st) return 0;
    int is_crop = 0;
    lb_id *ids = NULL;
    size_t n = 0;
    int rc = lb__crop_all_rule(st->ds->store, st->ds->path, groupings, classes, &is_crop, &ids,
                               &n, err);
    if (rc || n == 0) return rc;
    lb_id *all = realloc(*pna, (*n_pna + n) * sizeof *all);
    if (!all) {
        free(ids);
        return lb__err(err, LB_ENOMEM, "out of memory (annotation ids)");
    }
    memcpy(all + *n_pna, ids, n * sizeof *ids);
    free(ids);
    *pna = all;
    *n_pna += n;
    return 0;
}

int lb_mask_new(lb_array *source, const lb_groupings *groupings, lb_array **out,
                lb_error *err) {
    return lb_mask_new_ex(source, groupings, NULL, out, err);
}

int lb_mask_new_ex(lb_array *source, const lb_groupings *groupings, const lb_classes *classes,
                   lb_array **out, lb_error *err) {
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
        rc = lb__refuse_source(source, "build a mask over", LB_EINVAL, err);
        goto fail;
    }
    if (!lb_dtype_is_integer(source->dtype)) {
        rc = lb__refuse_source(source, "build a mask over", LB_EUNSUPPORTED, err);
        goto fail;
    }
    if (lb_groupings_count(groupings) == 0) {
        rc = lb__err(err, LB_EINVAL, "the groupings are empty: a MissingAnnotationsMask needs "
                     "at least one group (each group is one output channel)");
        goto fail;
    }
    lb_annotations kind;
    rc = lb__annotations_parse(source->attrs, &kind, &pna, &n_pna, err);
    if (rc) {
        const lb_array *st = lb__array_stored(source);
        if (st)
            lb__err_prefix(err, "%s/%s", st->ds->path,
                           st->ds->format->attrs_file);
        goto fail;
    }
    rc = add_crop_rule(source, groupings, classes, &pna, &n_pna, err);
    if (rc) goto fail;
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
    rc = compute_enabled(groupings, pna, n_pna, m, err);
    if (rc) goto fail;
    if (kind != LB_ANNOTATIONS_NONE) {
        rc = present_ids(source->attrs, m, err);
        if (rc) goto fail;
        if (pthread_mutex_init(&m->lock, NULL) != 0) {
            rc = lb__err(err, LB_ENOMEM, "cannot create a mutex");
            goto fail;
        }
        m->lock_ok = 1;
        m->track = 1;
    }
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
