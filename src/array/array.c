/*
 * array.c — what every lb_array shares: the property getters, ROI
 * validation with messages that name both ROIs and the voxel size, the read /
 * write / data-view entry points and the helpers the wrappers build on.
 */
#include "array/array.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "dataset/chunk_cache.h"
#include "dataset/label_cache.h"
#include "kernels/cseg.h"
#include "kernels/kernels.h"

static const char virtual_msg[] =
    "cannot get a writable view of this array because it is a virtual array "
    "created by modifying another array on demand";

/* ---- allocation, warnings, attributes ------------------------------------ */

lb_array *lb__array_alloc(const lb__array_vtable *vt, lb_error *err) {
    lb_array *a = lb__calloc(1, sizeof *a, "an array", err);
    if (!a) return NULL;
    a->vt = vt;
    a->num_channels = -1;
    a->annotations = LB_ANNOTATIONS_NONE;
    return a;
}

int lb__array_warn(lb_array *a, lb_error *err, const char *fmt, ...) {
    char msg[LB_ERROR_MESSAGE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char **w = realloc(a->warnings, ((size_t)a->n_warnings + 1) * sizeof *w);
    if (!w) return lb__err(err, LB_ENOMEM, "out of memory recording a warning");
    a->warnings = w;
    w[a->n_warnings] = lb__strdup(msg, err);
    if (!w[a->n_warnings]) return LB_ENOMEM;
    a->n_warnings++;
    return 0;
}

int lb__array_set_attrs(lb_array *a, json_object *attrs, lb_error *err) {
    json_object *o = attrs ? json_object_get(attrs) : json_object_new_object();
    if (!o) return lb__err(err, LB_ENOMEM, "out of memory (attributes)");
    char *text = lb__strdup(lb__json_string(o, 0), err);
    if (!text) {
        json_object_put(o);
        return LB_ENOMEM;
    }
    json_object_put(a->attrs);
    free(a->attrs_text);
    a->attrs = o;
    a->attrs_text = text;
    return 0;
}

int lb__array_wrap_geometry(lb_array *dst, const lb_array *src, int64_t n_channels,
                            const lb_groupings *g, lb_error *err) {
    if (src->dims + 1 > LB_MAX_DIMS)
        return lb__err(err, LB_ELIMIT, "a channel axis on %d spatial dimensions exceeds %d",
                       src->dims, LB_MAX_DIMS);
    if (n_channels < 0 || (g && lb_groupings_count(g) != (size_t)n_channels))
        return lb__err(err, LB_EINVAL, "channel count does not match the groupings");
    dst->dims = src->dims;
    dst->ndim = src->dims + 1;
    memcpy(dst->voxel_size, src->voxel_size, sizeof dst->voxel_size);
    dst->roi = src->roi;
    dst->num_channels = n_channels;
    dst->shape[0] = n_channels;
    /* Leading axes are 0, or all of extent 1 (lb__array_squeezable): the
     * output has none of them. */
    int lead = src->ndim - src->dims;
    dst->axes[0] = lb__strdup("c", err);
    if (!dst->axes[0]) return LB_ENOMEM;
    for (int i = 0; i < src->dims; i++) {
        dst->axes[i + 1] = lb__strdup(src->axes[lead + i], err);
        if (!dst->axes[i + 1]) return LB_ENOMEM;
        dst->shape[i + 1] = src->roi.shape[i] / src->voxel_size[i];
    }
    if (g && n_channels > 0) {
        dst->channel_names = lb__calloc((size_t)n_channels, sizeof(char *), "channel names", err);
        if (!dst->channel_names) return LB_ENOMEM;
        for (int64_t c = 0; c < n_channels; c++) {
            dst->channel_names[c] = lb__strdup(lb_groupings_name(g, (size_t)c), err);
            if (!dst->channel_names[c]) return LB_ENOMEM;
        }
    }
    int rc = lb__array_set_attrs(dst, src->attrs, err);
    if (rc) return rc;
    for (int i = 0; i < src->n_warnings; i++) {
        rc = lb__array_warn(dst, err, "%s", src->warnings[i]);
        if (rc) return rc;
    }
    dst->annotations = src->annotations;
    return 0;
}

int lb__array_squeezable(const lb_array *src) {
    if (src->ndim == src->dims) return 1;
    if (!src->ds) return 0; /* a wrapper's channels are real */
    /* So are those of an array that names them (labelbin's targets and
     * masks, even with one channel): binarizing those 0/1 values as label
     * ids would be silently meaningless. */
    if (src->channel_names || lb__json_get(src->attrs, "channels")) return 0;
    for (int i = 0; i < src->ndim - src->dims; i++)
        if (src->shape[i] != 1) return 0;
    return 1;
}

void lb_array_free(lb_array *a) {
    if (!a) return;
    if (a->vt && a->vt->destroy) a->vt->destroy(a);
    for (int i = 0; i < LB_MAX_DIMS; i++) free(a->axes[i]);
    if (a->channel_names) {
        for (int64_t c = 0; c < a->num_channels; c++) free(a->channel_names[c]);
        free(a->channel_names);
    }
    json_object_put(a->attrs);
    free(a->attrs_text);
    for (int i = 0; i < a->n_warnings; i++) free(a->warnings[i]);
    free(a->warnings);
    lb_array_free(a->source);
    for (size_t i = 0; i < a->n_inputs; i++) lb_array_free(a->inputs[i]);
    free(a->inputs);
    lb__store_free(a->group_store);
    free(a->group_path);
    lb__dataset_free(a->ds);
    free(a->codec_text);
    free(a->codec_desc);
    free(a);
}

/* ---- properties ---------------------------------------------------------- */

const char *lb_array_kind(const lb_array *a) { return a->vt->kind; }
int lb_array_dims(const lb_array *a) { return a->dims; }
int lb_array_ndim(const lb_array *a) { return a->ndim; }
const char *lb_array_axis(const lb_array *a, int i) {
    return i >= 0 && i < a->ndim ? a->axes[i] : NULL;
}
const int64_t *lb_array_voxel_size(const lb_array *a) { return a->voxel_size; }
void lb_array_roi(const lb_array *a, lb_roi *out) { *out = a->roi; }
const int64_t *lb_array_shape(const lb_array *a) { return a->shape; }
lb_dtype lb_array_dtype(const lb_array *a) { return a->dtype; }
int64_t lb_array_num_channels(const lb_array *a) { return a->num_channels; }
const char *lb_array_channel_name(const lb_array *a, int64_t i) {
    if (!a->channel_names || i < 0 || i >= a->num_channels) return NULL;
    return a->channel_names[i];
}
int lb_array_writable(const lb_array *a) { return a->writable; }
const char *lb_array_attrs_json(const lb_array *a) {
    return a->attrs_text ? a->attrs_text : "{}";
}
const lb_array *lb_array_source(const lb_array *a) { return a->source; }
const char *lb_array_format(const lb_array *a) {
    if (!a->ds) return NULL;
    return a->ds->format->name;
}
/* The array→bytes codec of a stored array when it is sharding_indexed. */
static const lb__codec *sharding_of(const lb_array *a) {
    if (!a->ds) return NULL;
    const lb__codec *ab = lb__chain_ab(a->ds->m.chain);
    return ab->id == LB__CODEC_SHARDING ? ab : NULL;
}
const int64_t *lb_array_chunks(const lb_array *a) {
    const lb__codec *sh = sharding_of(a);
    return sh ? sh->inner_shape : a->ds ? a->ds->schunks : NULL;
}
const int64_t *lb_array_shard_shape(const lb_array *a) {
    return sharding_of(a) ? a->ds->schunks : NULL;
}
const char *lb_array_codec_description(const lb_array *a) { return a->ds ? a->codec_desc : NULL; }

static int add_io_stats(void *user, const lb_array *st) {
    lb_io_stats *out = user;
    uint64_t r = 0, b = 0;
    lb__store_stats(st->ds->store, &r, &b);
    out->requests += r;
    out->bytes += b;
    return 0;
}

void lb_array_io_stats(const lb_array *a, lb_io_stats *out) {
    memset(out, 0, sizeof *out);
    lb__array_each_stored(a, add_io_stats, out);
}
const char *lb_array_codec_json(const lb_array *a) { return a->ds ? a->codec_text : NULL; }
const char *lb_array_path(const lb_array *a) { return a->ds ? a->ds->path : NULL; }
int lb_array_warning_count(const lb_array *a) { return a->n_warnings; }
const char *lb_array_warning(const lb_array *a, int i) {
    return i >= 0 && i < a->n_warnings ? a->warnings[i] : NULL;
}
lb_annotations lb_array_annotations(const lb_array *a) { return a->annotations; }

int lb__array_groupings(const lb_array *a, const lb_groupings **g, lb_id *background,
                        int *has_background) {
    /* Every virtual array's impl starts with its lb__wrap_info. */
    if (!a || a->ds || !a->impl) return -1;
    const lb__wrap_info *w = a->impl;
    if (g) *g = w->groupings;
    if (background) *background = w->background;
    if (has_background) *has_background = w->has_background;
    return 0;
}

const lb_array *lb__array_stored(const lb_array *a) {
    while (a && !a->ds) a = a->source;
    return a;
}

int lb__array_each_stored(const lb_array *a, lb__stored_fn fn, void *user) {
    for (; a; a = a->source) {
        int rc = a->ds ? fn(user, a) : 0;
        for (size_t i = 0; !rc && i < a->n_inputs; i++) rc = lb__array_each_stored(a->inputs[i], fn, user);
        if (rc) return rc;
    }
    return 0;
}

const char *lb__array_where(const lb_array *a) {
    const lb_array *st = lb__array_stored(a);
    if (st) return st->ds->path;
    for (; a; a = a->source)
        if (a->group_path) return a->group_path;
    return "(no stored array)";
}

/* ---- ROI checks ---------------------------------------------------------- */

/* "array crop.zarr/labels/all" or "BinarizeArray over crop.zarr/labels/all". */
static void describe(const lb_array *a, char *buf, size_t size) {
    const char *path = lb__array_where(a);
    if (a->ds)
        snprintf(buf, size, "array %s", path);
    else
        snprintf(buf, size, "%s over %s", a->vt->kind, path);
}

int64_t lb__roi_voxels(const lb_array *a, const lb_roi *roi, int64_t *vox) {
    if (roi->ndim != a->dims) return -1;
    int64_t n = 1;
    for (int i = 0; i < a->dims; i++) {
        if (roi->shape[i] < 0) return -1;
        int64_t v = roi->shape[i] / a->voxel_size[i];
        if (vox) vox[i] = v;
        if (lb__mul_i64(n, v, &n)) return -1;
    }
    return n;
}

/* The three descriptions a refusal names; formatted only on failure. */
typedef struct roi_words {
    char rs[512], as[512], vs[256], what[600];
} roi_words;

static void words(const lb_array *a, const lb_roi *roi, roi_words *w) {
    lb_roi_format(roi, w->rs, sizeof w->rs);
    lb_roi_format(&a->roi, w->as, sizeof w->as);
    lb_coord_format(a->voxel_size, a->dims, w->vs, sizeof w->vs);
    describe(a, w->what, sizeof w->what);
}

int lb__array_check_roi(const lb_array *a, const lb_roi *roi, lb_error *err) {
    roi_words w;
    if (!roi) return lb__err(err, LB_EINVAL, "no ROI given");
    if (roi->ndim != a->dims) {
        if (roi->ndim < 0 || roi->ndim > LB_MAX_DIMS)
            return lb__err(err, LB_EROI, "ROI has %d dimensions", roi->ndim);
        words(a, roi, &w);
        return lb__err(err, LB_EROI, "ROI %s has %d dimensions but %s with ROI %s has %d", w.rs,
                       roi->ndim, w.what, w.as, a->dims);
    }
    for (int i = 0; i < roi->ndim; i++) {
        int64_t end;
        if (roi->shape[i] < 0 || lb__add_i64(roi->offset[i], roi->shape[i], &end)) {
            words(a, roi, &w);
            return lb__err(err, LB_EROI, "ROI %s has a %s in dimension %d", w.rs,
                           roi->shape[i] < 0 ? "negative shape" : "end beyond 2^63", i);
        }
    }
    if (!lb_roi_contains(&a->roi, roi)) {
        words(a, roi, &w);
        return lb__err(err, LB_EROI, "ROI %s lies outside the ROI %s of %s (voxel size %s)",
                       w.rs, w.as, w.what, w.vs);
    }
    if (!lb_roi_aligned(roi, a->voxel_size)) {
        words(a, roi, &w);
        return lb__err(err, LB_EROI,
                       "ROI %s is not aligned to the voxel size %s of %s with ROI %s", w.rs,
                       w.vs, w.what, w.as);
    }
    return 0;
}

/* Elements per spatial voxel: the product of the leading (channel) dims. */
static int64_t lead_elements(const lb_array *a) {
    int64_t n = 1;
    for (int i = 0; i < a->ndim - a->dims; i++)
        if (lb__mul_i64(n, a->shape[i], &n)) return -1;
    return n;
}

size_t lb_array_read_size(const lb_array *a, const lb_roi *roi) {
    if (!a || !roi) return 0;
    int64_t vox = lb__roi_voxels(a, roi, NULL);
    int64_t lead = lead_elements(a);
    if (vox < 0 || lead < 0) return 0;
    size_t n;
    if (lb__mul_size((size_t)vox, (size_t)lead, &n)) return 0;
    if (lb__mul_size(n, lb_dtype_size(a->dtype), &n)) return 0;
    return n;
}

static int check_size(const lb_array *a, const lb_roi *roi, size_t have, const char *what,
                      lb_error *err) {
    size_t need = lb_array_read_size(a, roi);
    if (need == 0 && lb__roi_voxels(a, roi, NULL) != 0 && lead_elements(a) != 0)
        return lb__err(err, LB_ELIMIT, "the ROI's size in bytes overflows");
    if (have != need)
        return lb__err(err, LB_EINVAL, "%s buffer holds %zu bytes, the ROI needs %zu", what,
                       have, need);
    return 0;
}

void lb__workspace_free(lb__workspace *ws) {
    if (!ws) return;
    lb__io_free(&ws->io);
    lb__buf_free(&ws->slab);
}

/* The checks every read makes before it touches the output. 1: nothing to
 * read. */
static int read_checks(const lb_array *a, const lb_roi *roi, const void *out, size_t out_size,
                       lb_error *err) {
    if (!a) return lb__err(err, LB_EINVAL, "no array given");
    int rc = lb__array_check_roi(a, roi, err);
    if (rc) return rc;
    rc = check_size(a, roi, out_size, "output", err);
    if (rc) return rc;
    if (out_size == 0) return 1;
    if (!out) return lb__err(err, LB_EINVAL, "no output buffer given");
    return 0;
}

int lb__array_read_ws(const lb_array *a, const lb_roi *roi, void *out, size_t out_size,
                      lb__workspace *ws, lb_error *err) {
    int rc = read_checks(a, roi, out, out_size, err);
    if (rc) return rc < 0 ? rc : 0;
    lb__workspace local; /* stays empty when the caller gave one */
    memset(&local, 0, sizeof local);
    rc = a->vt->read(a, roi, out, ws ? ws : &local, err);
    lb__workspace_free(&local);
    return rc;
}

int lb_array_read(const lb_array *a, const lb_roi *roi, void *out, size_t out_size,
                  lb_error *err) {
    return lb__array_read_ws(a, roi, out, out_size, NULL, err);
}

static uint64_t count_nonzero(const uint8_t *q, size_t n, size_t itemsize) {
    if (itemsize == 1) return lb__count_nonzero(q, n);
    uint64_t count = 0;
    for (size_t i = 0; i < n; i++, q += itemsize) {
        uint64_t v = 0;
        memcpy(&v, q, itemsize);
        count += v != 0;
    }
    return count;
}

int lb__array_read_sparse(const lb_array *a, const lb_roi *roi, void *out, size_t out_size,
                          uint64_t *counts, lb__workspace *ws, lb_error *err) {
    int rc = read_checks(a, roi, out, out_size, err);
    if (rc < 0) return rc;
    size_t itemsize = lb_dtype_size(a->dtype);
    size_t planes = 1, plane_items = out_size / itemsize;
    for (int i = 0; i < a->ndim - a->dims; i++) planes *= (size_t)a->shape[i];
    if (planes) plane_items /= planes;
    memset(counts, 0, planes * sizeof *counts);
    if (rc) return 0;
    lb__workspace local; /* stays empty when the caller gave one */
    memset(&local, 0, sizeof local);
    lb__workspace *w = ws ? ws : &local;
    if (a->vt->read_sparse) {
        rc = a->vt->read_sparse(a, roi, out, counts, w, err);
    } else {
        rc = a->vt->read(a, roi, out, w, err);
        for (size_t k = 0; !rc && k < planes; k++)
            counts[k] = count_nonzero((const uint8_t *)out + k * plane_items * itemsize,
                                      plane_items, itemsize);
    }
    lb__workspace_free(&local);
    return rc;
}

/* ---- writing and the data view -------------------------------------------- */

static int need_stored(const lb_array *a, int writing, lb_error *err) {
    if (!a) return lb__err(err, LB_EINVAL, "no array given");
    if (!a->ds) return lb__err(err, LB_EVIRTUAL, "%s", virtual_msg);
    if (writing && !a->writable)
        return lb__err(err, LB_EINVAL, "%s: the array was opened read-only", a->ds->path);
    return 0;
}

/* The zarr impl keeps the world offset of element 0 (it differs from the ROI
 * offset after snap_to_grid); lb__array_chunk_grid exposes it. */
static int element_box(const lb_array *a, const lb_roi *roi, int64_t *start, int64_t *count) {
    int lead = a->ndim - a->dims;
    for (int i = 0; i < lead; i++) {
        start[i] = 0;
        count[i] = a->ds->shape[i];
    }
    for (int i = 0; i < a->dims; i++) {
        int64_t origin, step;
        if (lb__array_chunk_grid(a, i, &origin, &step)) return -1;
        start[lead + i] = (roi->offset[i] - origin) / a->voxel_size[i];
        count[lead + i] = roi->shape[i] / a->voxel_size[i];
    }
    return 0;
}

int lb_array_write(lb_array *a, const lb_roi *roi, const void *in, size_t in_size,
                   lb_error *err) {
    int rc = need_stored(a, 1, err);
    if (rc) return rc;
    rc = lb__array_check_roi(a, roi, err);
    if (rc) return rc;
    rc = check_size(a, roi, in_size, "input", err);
    if (rc) return rc;
    if (in_size == 0) return 0;
    if (!in) return lb__err(err, LB_EINVAL, "no input buffer given");
    int64_t start[LB_MAX_DIMS], count[LB_MAX_DIMS];
    if (element_box(a, roi, start, count))
        return lb__err(err, LB_EINVAL, "%s: no chunk grid", a->ds->path);
    return lb__dataset_write(a->ds, start, count, in, err);
}

/* Validate an index-space box against the stored shape; *bytes = its size. */
static int check_box(const lb_array *a, const int64_t *start, const int64_t *count,
                     size_t *bytes, lb_error *err) {
    const lb__dataset *d = a->ds;
    if (!start || !count) return lb__err(err, LB_EINVAL, "no start/count given");
    for (int i = 0; i < d->ndim; i++) {
        if (start[i] < 0 || count[i] < 0 || start[i] > d->shape[i] ||
            count[i] > d->shape[i] - start[i])
            return lb__err(err, LB_EROI,
                           "%s: index range [%" PRId64 ", %" PRId64 ") of dimension %d is "
                           "outside the shape %" PRId64,
                           d->path, start[i], start[i] + (count[i] > 0 ? count[i] : 0), i,
                           d->shape[i]);
    }
    size_t n;
    if (lb__prod_size(count, d->ndim, &n) || lb__mul_size(n, d->itemsize, &n))
        return lb__err(err, LB_ELIMIT, "%s: the region's size in bytes overflows", d->path);
    *bytes = n;
    return 0;
}

int lb_array_data_read(const lb_array *a, const int64_t *start, const int64_t *count,
                       void *out, size_t out_size, lb_error *err) {
    int rc = need_stored(a, 0, err);
    if (rc) return rc;
    size_t need;
    rc = check_box(a, start, count, &need, err);
    if (rc) return rc;
    if (need != out_size)
        return lb__err(err, LB_EINVAL, "output buffer holds %zu bytes, the region needs %zu",
                       out_size, need);
    if (need == 0) return 0;
    if (!out) return lb__err(err, LB_EINVAL, "no output buffer given");
    return lb__dataset_read(a->ds, start, count, out, err);
}

int lb_array_data_write(lb_array *a, const int64_t *start, const int64_t *count,
                        const void *in, size_t in_size, lb_error *err) {
    int rc = need_stored(a, 1, err);
    if (rc) return rc;
    size_t need;
    rc = check_box(a, start, count, &need, err);
    if (rc) return rc;
    if (need != in_size)
        return lb__err(err, LB_EINVAL, "input buffer holds %zu bytes, the region needs %zu",
                       in_size, need);
    if (need == 0) return 0;
    if (!in) return lb__err(err, LB_EINVAL, "no input buffer given");
    return lb__dataset_write(a->ds, start, count, in, err);
}

/* Arrays over a crop read several stored arrays: a setting applies to each
 * (a cache's bytes are shared out between them). */
typedef struct setting {
    int cache;
    size_t bytes;
    int threads;
    lb_error *err;
} setting;

static int apply_setting(void *user, const lb_array *st) {
    setting *s = user;
    return s->cache ? lb__dataset_set_cache(st->ds, s->bytes, s->err)
                    : lb__dataset_set_threads(st->ds, s->threads, s->err);
}

static int count_stored(void *user, const lb_array *st) {
    (void)st;
    (*(size_t *)user)++;
    return 0;
}

int lb_array_set_cache(lb_array *a, size_t bytes, lb_error *err) {
    if (!a) return lb__err(err, LB_EINVAL, "no array given");
    size_t n = 0;
    lb__array_each_stored(a, count_stored, &n);
    if (!n) return lb__err(err, LB_EINVAL, "the array has no stored source to cache");
    setting s = {1, bytes / n, 0, err};
    return lb__array_each_stored(a, apply_setting, &s);
}

int lb_array_set_label_cache(lb_array *a, const char *name, size_t bytes, lb_error *err) {
    if (!a) return lb__err(err, LB_EINVAL, "no array given");
    const lb_array *st = lb__array_stored(a);
    if (!st) return lb__err(err, LB_EINVAL, "the array has no stored source to cache");
    return lb__dataset_set_label_cache(st->ds, name, bytes, err);
}

int lb__array_cseg_source(const lb_array *src) {
    return src && src->ds && src->ds->lcache;
}

typedef struct region_job {
    const lb__cseg_part *parts;
    const int64_t *np;
    int64_t shape[3], rows_per_task;
    size_t channels;
    lb__cseg_channels_fn fn;
    void *user;
    uint8_t *out;
    size_t plane_stride;
} region_job;

static int region_task(void *vjob, int worker, int64_t k) {
    const region_job *j = vjob;
    static const int64_t origin[3] = {0, 0, 0};
    (void)worker;
    int64_t z0 = k * j->rows_per_task, z1 = z0 + j->rows_per_task;
    if (z1 > j->shape[0]) z1 = j->shape[0];
    return lb__cseg_channels_region(j->parts, j->np, j->shape, origin, z0, z1, j->channels, j->fn,
                                    j->user, j->out, j->plane_stride) ? LB_ENOMEM : 0;
}

size_t lb__raw_region_max_bytes = (size_t)256 << 20;

int lb__cseg_read_region(const lb_array *src, const lb_roi *roi, size_t channels,
                         lb__cseg_channels_fn fn, void *user, uint8_t *out, size_t plane_stride,
                         int threads, lb__cseg_part_fn each, void *each_user,
                         lb__slab_fn raw, void *raw_user, lb__workspace *ws, lb_error *err) {
    const lb__dataset *d = src->ds;
    int64_t start[LB_MAX_DIMS], count[LB_MAX_DIMS], np[3];
    lb__zarr_array_box(src, roi, start, count);
    for (int k = 0; k < d->ndim; k++)
        if (count[k] == 0) return 0;
    /* Room for the ROI's labels, in case a chunk is declined: the
     * workspace's slab (grown once, reused), up to a bound. */
    lb__buf local = {NULL, 0, 0}, *labels = NULL;
    size_t nvox = 1, nbytes = 0;
    for (int k = 0; k < d->ndim; k++) nvox *= (size_t)count[k]; /* the ROI: validated */
    if (raw && !lb__mul_size(nvox, d->itemsize, &nbytes) &&
        nbytes <= lb__raw_region_max_bytes) {
        labels = ws && !ws->slab_busy ? &ws->slab : &local;
        if (lb__buf_reserve(labels, nbytes, err)) return LB_ENOMEM;
    }
    lb__parts *pp = NULL;
    int rc = lb__dataset_region_parts(d, start, count, labels ? labels->data : NULL, &pp, err);
    if (rc) goto done;
    const lb__cseg_part *parts = lb__parts_grid(pp, np);
    region_job j = {parts, np, {1, 1, 1}, 0, channels, fn, user, out, plane_stride};
    for (int k = 0; k < 3; k++)
        if (k + d->ndim - 3 >= 0) j.shape[k] = count[k + d->ndim - 3];
    if (lb__parts_raw(pp)) {
        /* Some chunks were declined and are in labels already: expand the
         * others there and read the ROI as without the cache. */
        int64_t z = 0;
        for (int64_t a = 0; a < np[0]; a++) {
            int64_t y = 0;
            for (int64_t b = 0; b < np[1]; b++) {
                int64_t x = 0;
                for (int64_t c = 0; c < np[2]; c++) {
                    const lb__cseg_part *q = &parts[(a * np[1] + b) * np[2] + c];
                    if (q->cseg) {
                        lb__cseg_box bx;
                        for (int k = 0; k < 3; k++) {
                            bx.cstart[k] = q->cstart[k];
                            bx.cnt[k] = q->cnt[k];
                            bx.dshape[k] = j.shape[k];
                        }
                        bx.dstart[0] = z;
                        bx.dstart[1] = y;
                        bx.dstart[2] = x;
                        lb__cseg_decode_box(q->cseg, &bx, labels->data);
                    }
                    x += q->cnt[2];
                }
                y += parts[(a * np[1] + b) * np[2]].cnt[1];
            }
            z += parts[a * np[1] * np[2]].cnt[0];
        }
        if (labels != &local) ws->slab_busy = 1;
        rc = raw(raw_user, labels->data, nvox, 0, err);
        if (labels != &local) ws->slab_busy = 0;
        goto done;
    }
    if (each)
        for (int64_t i = 0; i < np[0] * np[1] * np[2]; i++) each(each_user, &parts[i]);
    int64_t tasks = threads > 1 ? threads : 1;
    if (tasks > j.shape[0]) tasks = j.shape[0];
    j.rows_per_task = (j.shape[0] + tasks - 1) / tasks;
    tasks = (j.shape[0] + j.rows_per_task - 1) / j.rows_per_task;
    rc = lb__parallel_for((int)tasks, tasks, region_task, &j, NULL);
    if (rc) rc = lb__err(err, LB_ENOMEM, "out of memory computing %zu channels", channels);
done:
    lb__dataset_free_parts(d, pp);
    lb__buf_free(&local);
    return rc;
}

int lb_array_warm(lb_array *a, const lb_roi *roi, int threads, lb_error *err) {
    if (!a) return lb__err(err, LB_EINVAL, "no array given");
    const lb_array *st = lb__array_stored(a);
    if (!st || !st->ds->lcache)
        return lb__err(err, LB_EINVAL, "%s: warm needs a label cache: set one first "
                       "(set_label_cache)", st ? st->ds->path : "the array");
    if (!roi) return lb__dataset_warm(st->ds, NULL, NULL, threads, err);
    int rc = lb__array_check_roi(st, roi, err);
    if (rc) return rc;
    int64_t start[LB_MAX_DIMS], count[LB_MAX_DIMS];
    lb__zarr_array_box(st, roi, start, count);
    return lb__dataset_warm(st->ds, start, count, threads, err);
}

static void info_from(lb__lcache *c, lb_cache_info *out) {
    lb__lcache_stats s;
    lb__lcache_get_stats(c, &s);
    out->kind = 2;
    snprintf(out->name, sizeof out->name, "%s", lb__lcache_name(c));
    snprintf(out->path, sizeof out->path, "%s", lb__lcache_path(c));
    out->capacity = s.capacity;
    out->bytes = s.bytes;
    out->entries = s.entries;
    out->raw_bytes = s.raw_bytes;
    out->declined = s.declined;
    out->hits = s.hits;
    out->misses = s.misses;
    out->inserts = s.inserts;
    out->evictions = s.evictions;
    out->corrupt = s.corrupt;
    out->stale = s.stale;
    out->process_hits = s.my_hits;
    out->process_misses = s.my_misses;
    out->memory_bytes = s.memory;
    out->fs_free_bytes = s.fs_free;
    out->fs_bytes = s.fs_size;
    out->max_entries = s.max_entries;
}

int lb_array_cache_info(const lb_array *a, lb_cache_info *out, lb_error *err) {
    if (!a || !out) return lb__err(err, LB_EINVAL, "no %s given", a ? "output" : "array");
    memset(out, 0, sizeof *out);
    const lb_array *st = lb__array_stored(a);
    if (!st) return 0;
    if (st->ds->lcache) {
        info_from(st->ds->lcache, out);
    } else if (st->ds->cache) {
        lb__chunk_cache_stats s;
        lb__chunk_cache_get_stats(st->ds->cache, &s);
        out->kind = 1;
        out->capacity = s.bytes;
        out->bytes = s.bytes;
        out->entries = s.entries;
        out->raw_bytes = s.bytes;
        out->hits = out->process_hits = s.hits;
        out->misses = out->process_misses = s.misses;
        out->evictions = s.evictions;
    }
    return 0;
}

int lb_cache_stats(const char *name, lb_cache_info *out, lb_error *err) {
    if (!out) return lb__err(err, LB_EINVAL, "no output given");
    memset(out, 0, sizeof *out);
    lb__lcache_where(name, out->name, sizeof out->name, out->path, sizeof out->path);
    lb__lcache *c;
    int rc = lb__lcache_attach(name, &c, err);
    if (rc) return rc;
    info_from(c, out);
    out->process_hits = out->process_misses = 0;
    lb__lcache_close(c);
    return 0;
}

int lb_cache_remove(const char *name, lb_error *err) {
    return lb__lcache_remove(name, err);
}

int lb_array_set_threads(lb_array *a, int threads, lb_error *err) {
    if (!a) return lb__err(err, LB_EINVAL, "no array given");
    size_t n = 0;
    lb__array_each_stored(a, count_stored, &n);
    if (!n) return lb__err(err, LB_EINVAL, "the array has no stored source to read");
    setting s = {0, 0, threads, err};
    return lb__array_each_stored(a, apply_setting, &s);
}

int lb__array_read_threads(const lb_array *a) {
    const lb_array *st = lb__array_stored(a);
    return st && st->ds->read_threads > 1 ? st->ds->read_threads : 1;
}

/* ---- slab reads for the wrappers ------------------------------------------ */

/* Labels per slab: small enough to stay in cache-friendly, bounded memory,
 * large enough that per-read overhead vanishes. */
#define SLAB_BYTES ((size_t)8 << 20)
/* A slab may grow to a whole chunk row up to this size (no chunk decoded
 * twice); beyond it, bounded memory wins. */
#define SLAB_MAX_ALIGNED_BYTES ((size_t)128 << 20)

int lb__array_read_slabs(const lb_array *src, const lb_roi *roi, lb__slab_fn fn, void *user,
                         lb__workspace *ws, lb_error *err) {
    return lb__array_read_slabs_ex(src, roi, SLAB_BYTES, fn, user, ws, err);
}

int lb__array_read_slabs_ex(const lb_array *src, const lb_roi *roi, size_t slab_bytes,
                            lb__slab_fn fn, void *user, lb__workspace *ws, lb_error *err) {
    int64_t vox[LB_MAX_DIMS];
    int64_t total = lb__roi_voxels(src, roi, vox);
    size_t itemsize = lb_dtype_size(src->dtype);
    if (total < 0) return lb__err(err, LB_ELIMIT, "the ROI's voxel count overflows");
    if (total == 0) return 0;
    size_t plane = 1; /* voxels per plane of the first spatial axis */
    if (src->dims > 0 && lb__prod_size(vox + 1, src->dims - 1, &plane))
        return lb__err(err, LB_ELIMIT, "the ROI's voxel count overflows");
    size_t plane_bytes;
    if (lb__mul_size(plane, itemsize, &plane_bytes))
        return lb__err(err, LB_ELIMIT, "the ROI's size in bytes overflows");
    int64_t planes = src->dims > 0 ? vox[0] : 1;
    int64_t vs0 = src->dims > 0 ? src->voxel_size[0] : 1;

    int64_t t = (int64_t)(slab_bytes / plane_bytes);
    if (t < 1) t = 1;
    int64_t origin = 0, step = 0;
    if (src->dims > 0 && lb__array_chunk_grid(src, 0, &origin, &step) == 0 && step > 0) {
        int64_t sp = step / vs0; /* planes per chunk row */
        int64_t ta = ((t + sp - 1) / sp) * sp;
        size_t max_aligned = slab_bytes > SLAB_MAX_ALIGNED_BYTES / 16 ? SLAB_MAX_ALIGNED_BYTES
                                                                        : slab_bytes * 16;
        if (sp > 0 && (uint64_t)ta <= max_aligned / plane_bytes) t = ta;
        else step = 0;
    } else {
        step = 0;
    }
    if (t > planes) t = planes;

    size_t buf_bytes = (size_t)t * plane_bytes;
    /* The workspace's slab unless a wrapper further up holds it. */
    lb__buf local = {NULL, 0, 0}, *slab = ws && !ws->slab_busy ? &ws->slab : &local;
    if (lb__buf_reserve(slab, buf_bytes, err)) return LB_ENOMEM;
    if (slab != &local) ws->slab_busy = 1;
    void *buf = slab->data;
    lb_roi sub = *roi;
    int64_t cur = src->dims > 0 ? roi->offset[0] : 0;
    int64_t end = cur + planes * vs0;
    int rc = 0;
    size_t first = 0;
    while (cur < end) {
        int64_t next = cur + t * vs0;
        if (step > 0 && next < end) {
            /* the last chunk-row boundary in (cur, cur + t*vs0] */
            int64_t k = lb__floordiv(next - origin, step);
            int64_t b = origin + k * step;
            if (b > cur) next = b;
        }
        if (next > end) next = end;
        if (src->dims > 0) {
            sub.offset[0] = cur;
            sub.shape[0] = next - cur;
        }
        size_t n = (size_t)((next - cur) / vs0) * plane;
        rc = lb__array_read_ws(src, &sub, buf, n * itemsize, ws, err);
        if (rc) break;
        rc = fn(user, buf, n, first, err);
        if (rc) break;
        first += n;
        cur = next;
        if (src->dims == 0) break;
    }
    if (slab == &local) lb__buf_free(&local);
    else ws->slab_busy = 0;
    return rc;
}
