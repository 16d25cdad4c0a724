/*
 * crop_check.c — lint a CellMap crop: its metadata against the schema (the
 * validators lb_crop_open uses, one finding per class instead of stopping
 * at the first), its multiscale pyramids, and its data against its own
 * metadata: values outside an encoding, instance ids running through the
 * unknown value, complement counts, empty classes, and the dense ids in
 * `all` against the class arrays. Every array is streamed in slabs of a few
 * MB, its chunks decoded by up to `threads` threads.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "array/array.h"
#include "array/crop.h"
#include "core/json.h"
#include "core/path.h"
#include "format/common.h"
#include "format/format.h"
#include "format/ome.h"

#define SLAB_BYTES ((size_t)8 << 20)

struct lb_check_report {
    lb_check_finding *f;
    size_t n, cap;
};

void lb_check_report_free(lb_check_report *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        free((char *)r->f[i].path);
        free((char *)r->f[i].message);
    }
    free(r->f);
    free(r);
}

size_t lb_check_count(const lb_check_report *r) { return r ? r->n : 0; }

const lb_check_finding *lb_check_get(const lb_check_report *r, size_t i) {
    return r && i < r->n ? &r->f[i] : NULL;
}

size_t lb_check_count_level(const lb_check_report *r, lb_check_level level) {
    size_t n = 0;
    for (size_t i = 0; r && i < r->n; i++) n += r->f[i].level == level;
    return n;
}

typedef struct checker {
    lb_check_report *r;
    lb__store *s;
    const char *url;       /* the crop as given */
    char *path;            /* in the store      */
    const lb_classes *classes;
    int threads;
    lb_error *err;         /* for out-of-memory only */
    int oom;
} checker;

static void add(checker *k, lb_check_level level, const char *code, const char *path,
                const char *fmt, ...) LB__PRINTF(5, 6);
static void add(checker *k, lb_check_level level, const char *code, const char *path,
                const char *fmt, ...) {
    lb_check_report *r = k->r;
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 16;
        lb_check_finding *f = realloc(r->f, nc * sizeof *f);
        if (!f) {
            k->oom = 1;
            return;
        }
        r->f = f;
        r->cap = nc;
    }
    char msg[LB_ERROR_MESSAGE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lb__hide_credentials(msg);
    lb_check_finding *f = &r->f[r->n];
    f->level = level;
    f->code = code;
    f->path = strdup(path);
    if (f->path) lb__hide_credentials((char *)f->path);
    f->message = strdup(msg);
    if (!f->path || !f->message) {
        free((char *)f->path);
        free((char *)f->message);
        k->oom = 1;
        return;
    }
    r->n++;
}

#define ERROR(k, code, path, ...) add(k, LB_CHECK_ERROR, code, path, __VA_ARGS__)

/* A library message without the path the finding already names. */
static const char *after(const char *msg, const char *path) {
    char shown[LB_ERROR_MESSAGE_SIZE];
    size_t n = lb__url_shown(path, shown, sizeof shown);
    if (n >= sizeof shown) return msg;
    path = shown;
    return !strncmp(msg, path, n) && msg[n] == ':' && msg[n + 1] == ' ' ? msg + n + 2 : msg;
}
#define WARN(k, code, path, ...) add(k, LB_CHECK_WARNING, code, path, __VA_ARGS__)

/* ---- reading an array's values ---------------------------------------------- */

/* Call fn on slabs of `a` (z planes, a few MB each). */
typedef int (*slab_fn)(void *user, const void *v, size_t n, int64_t z0, int64_t nz);

static int each_slab(const lb_array *a, int64_t extra_bytes_per_voxel, slab_fn fn, void *user,
                     lb_error *err) {
    int64_t vox[LB_MAX_DIMS];
    if (lb__roi_voxels(a, &a->roi, vox) < 0) return lb__err(err, LB_ELIMIT, "ROI overflows");
    size_t plane = 1, item = lb_dtype_size(a->dtype);
    for (int d = 1; d < a->dims; d++) plane *= (size_t)vox[d];
    if (a->dims == 0 || vox[0] == 0 || plane == 0) return 0;
    size_t per = plane * (item + (size_t)extra_bytes_per_voxel);
    int64_t step = (int64_t)(SLAB_BYTES / (per ? per : 1));
    int64_t origin, cstep;
    if (lb__array_chunk_grid(a, 0, &origin, &cstep) == 0 && cstep > 0) {
        int64_t cz = cstep / a->voxel_size[0];
        if (cz > 0 && step >= cz) step = step / cz * cz;
        else if (cz > 0 && (size_t)cz * per <= 16 * SLAB_BYTES) step = cz;
    }
    if (step < 1) step = 1;
    lb__buf b = {0};
    if (lb__buf_reserve(&b, plane * item * (size_t)(step < vox[0] ? step : vox[0]), err))
        return LB_ENOMEM;
    int rc = 0;
    for (int64_t z = 0; z < vox[0] && !rc; z += step) {
        int64_t nz = vox[0] - z < step ? vox[0] - z : step;
        lb_roi r = a->roi;
        r.offset[0] = a->roi.offset[0] + z * a->voxel_size[0];
        r.shape[0] = nz * a->voxel_size[0];
        size_t n = plane * (size_t)nz;
        rc = lb_array_read(a, &r, b.data, n * item, err);
        if (!rc) rc = fn(user, b.data, n, z, nz);
    }
    lb__buf_free(&b);
    return rc;
}

static uint64_t get_value(const void *v, size_t i, size_t item) {
    switch (item) {
    case 1: return ((const uint8_t *)v)[i];
    case 2: return ((const uint16_t *)v)[i];
    case 4: return ((const uint32_t *)v)[i];
    default: return ((const uint64_t *)v)[i];
    }
}

/* A value as a signed or unsigned id of `dt`. */
static lb_id as_id(uint64_t raw, lb_dtype dt) {
    lb_id id = {raw, 0};
    if (lb_dtype_is_signed(dt)) {
        size_t s = lb_dtype_size(dt);
        int64_t v = s == 1 ? (int8_t)raw : s == 2 ? (int16_t)raw : s == 4 ? (int32_t)raw
                                                                         : (int64_t)raw;
        id.bits = (uint64_t)v;
        id.negative = v < 0;
    }
    return id;
}

static int id_less(lb_id a, lb_id b) {
    if (a.negative != b.negative) return a.negative;
    return a.bits < b.bits;
}

static int id_eq(lb_id a, lb_id b) { return a.bits == b.bits && a.negative == b.negative; }

/* What one level's values say. */
typedef struct value_stats {
    const lb__encoding *enc;
    lb_dtype dtype;
    uint64_t n[3];          /* absent, present, unknown */
    uint64_t outside;       /* semantic: values outside the encoding */
    lb_id outside_ids[4];
    int n_outside_ids;
    lb_id max_id;           /* instance: the largest instance id */
    int have_id;
} value_stats;

static int tally(void *user, const void *v, size_t n, int64_t z0, int64_t nz) {
    value_stats *s = user;
    (void)z0;
    (void)nz;
    size_t item = lb_dtype_size(s->dtype);
    const lb__encoding *e = s->enc;
    uint64_t mask = item >= 8 ? UINT64_MAX : (((uint64_t)1 << (8 * item)) - 1);
    uint64_t ev[3];
    for (int k = 0; k < 3; k++) ev[k] = e->value[k].bits & mask;
    uint64_t prev = 0;
    int prev_state = -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = get_value(v, i, item);
        if (prev_state >= 0 && x == prev) {
            if (prev_state < 3) s->n[prev_state]++;
            else s->outside++;
            continue;
        }
        int st;
        if (e->has[LB__UNKNOWN] && x == ev[LB__UNKNOWN]) st = LB__UNKNOWN;
        else if (e->has[LB__ABSENT] && x == ev[LB__ABSENT]) st = LB__ABSENT;
        else if (e->has[LB__PRESENT] && x == ev[LB__PRESENT]) st = LB__PRESENT;
        else if (e->instance) {
            st = LB__PRESENT;
            lb_id id = as_id(x, s->dtype);
            if (!s->have_id || id_less(s->max_id, id)) s->max_id = id;
            s->have_id = 1;
        } else {
            st = 3;
            lb_id id = as_id(x, s->dtype);
            int seen = 0;
            for (int k = 0; k < s->n_outside_ids; k++) seen |= id_eq(s->outside_ids[k], id);
            if (!seen && s->n_outside_ids < 4) s->outside_ids[s->n_outside_ids++] = id;
        }
        prev = x;
        prev_state = st;
        if (st < 3) s->n[st]++;
        else s->outside++;
    }
    return 0;
}

/* ---- multiscale metadata ------------------------------------------------------ */

/* scale and translation of datasets[i] (doubles), when readable. */
static int level_transform(json_object *attrs, size_t i, double *scale, double *trans, int *n) {
    json_object *ms = lb__ome_multiscales(attrs, NULL);
    json_object *m0 = ms && json_object_is_type(ms, json_type_array)
                          ? json_object_array_get_idx(ms, 0) : NULL;
    json_object *ds = m0 ? lb__json_get(m0, "datasets") : NULL;
    json_object *d = ds && json_object_is_type(ds, json_type_array)
                         ? json_object_array_get_idx(ds, i) : NULL;
    json_object *ct = d ? lb__json_get(d, "coordinateTransformations") : NULL;
    *n = 0;
    if (!ct || !json_object_is_type(ct, json_type_array)) return -1;
    int ns = -1, nt = -1;
    for (size_t k = 0; k < json_object_array_length(ct); k++) {
        json_object *t = json_object_array_get_idx(ct, k);
        json_object *type = lb__json_get(t, "type");
        if (!type || !json_object_is_type(type, json_type_string)) continue;
        const char *ty = json_object_get_string(type);
        int is_scale = !strcmp(ty, "scale");
        if (!is_scale && strcmp(ty, "translation") != 0) continue;
        json_object *vals = lb__json_get(t, ty);
        int m = 0;
        if (lb__json_number_array(vals, "", is_scale ? scale : trans, LB_MAX_DIMS, &m, NULL))
            return -1;
        if (is_scale) ns = m;
        else nt = m;
    }
    if (ns < 0) return -1;
    if (nt < 0) {
        for (int k = 0; k < ns; k++) trans[k] = 0;
        nt = ns;
    }
    if (nt != ns) return -1;
    *n = ns;
    return 0;
}

static void fmt_doubles(const double *v, int n, char *buf, size_t size) {
    size_t len = 0;
    len += (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%g", i ? ", " : "", v[i]);
    if (len < size) snprintf(buf + len, size - len, ")");
}

/* Voxel sizes finest first, offsets on one of the two conventions (level
 * corners at the same place, or voxel centres: t_i = t_0 + (s_i - s_0)/2),
 * level shapes the finest shape scaled down. */
static void check_pyramid(checker *k, const char *gfile, json_object *gattrs,
                          const lb__crop_class *cls) {
    double s0[LB_MAX_DIMS], t0[LB_MAX_DIMS];
    int n0;
    if (level_transform(gattrs, 0, s0, t0, &n0) != 0) {
        ERROR(k, "multiscale-metadata", gfile, "multiscales[0].datasets[0]: no readable scale "
              "transformation");
        return;
    }
    const lb__crop_level *l0 = &cls->levels[0];
    for (int i = 1; i < cls->n_levels; i++) {
        const lb__crop_level *li = &cls->levels[i], *lp = &cls->levels[i - 1];
        double si[LB_MAX_DIMS], ti[LB_MAX_DIMS];
        int ni;
        if (level_transform(gattrs, (size_t)i, si, ti, &ni) != 0 || ni != n0) {
            ERROR(k, "multiscale-metadata", gfile, "multiscales[0].datasets[%d] (%s): no readable "
                  "scale and translation of %d entries", i, li->path, n0);
            continue;
        }
        int order_ok = 1, corner = 1, centre = 1, shape_ok = 1;
        for (int d = 0; d < li->dims && d < lp->dims; d++)
            if (li->voxel_size[d] < lp->voxel_size[d]) order_ok = 0;
        for (int d = 0; d < n0; d++) {
            double tol = 1e-6 * (fabs(t0[d]) + fabs(s0[d]) + 1);
            if (fabs(ti[d] - t0[d]) > tol) corner = 0;
            if (fabs(ti[d] - (t0[d] + (si[d] - s0[d]) / 2)) > tol) centre = 0;
        }
        int lead = li->ndim - li->dims;
        for (int d = 0; d < li->dims && d < l0->dims; d++) {
            double want = (double)l0->shape[lead + d] * (double)l0->voxel_size[d] /
                          (double)li->voxel_size[d];
            int64_t got = li->shape[lead + d];
            if ((double)got < floor(want) - 0.5 || (double)got > ceil(want) + 0.5) shape_ok = 0;
        }
        char a[300], b[300];
        if (!order_ok) {
            lb_coord_format(li->voxel_size, li->dims, a, sizeof a);
            lb_coord_format(lp->voxel_size, lp->dims, b, sizeof b);
            WARN(k, "multiscale-order", gfile, "level %s has the voxel size %s, finer than the "
                 "level before it, %s %s: levels go finest first", li->path, a, lp->path, b);
        }
        if (!corner && !centre) {
            fmt_doubles(ti, n0, a, sizeof a);
            fmt_doubles(t0, n0, b, sizeof b);
            WARN(k, "multiscale-offset", gfile, "level %s has the translation %s, which is "
                 "neither the finest level's %s nor its voxel-centre shift (translation_0 + "
                 "(scale_i - scale_0) / 2)", li->path, a, b);
        }
        if (!shape_ok) {
            lb_coord_format(li->shape + lead, li->dims, a, sizeof a);
            lb_coord_format(l0->shape + (l0->ndim - l0->dims), l0->dims, b, sizeof b);
            ERROR(k, "level-shape", gfile, "level %s has the shape %s, which is not the shape "
                  "%s of %s scaled by the ratio of their voxel sizes", li->path, a, b, l0->path);
        }
    }
}

/* ---- one class ------------------------------------------------------------------ */

typedef struct class_result {
    int ok;                 /* metadata usable, levels opened */
    lb__crop_class cls;
    uint64_t s0_counts[3];
} class_result;

static void free_class(lb__crop_class *c) {
    for (int l = 0; l < c->n_levels; l++) {
        free(c->levels[l].path);
        free(c->levels[l].url);
    }
    free(c->levels);
    free(c->name);
    memset(c, 0, sizeof *c);
}

static void check_values(checker *k, const lb__crop_class *cls, const lb__crop_level *lv,
                         const lb_array *a, uint64_t *counts_out) {
    value_stats vs;
    memset(&vs, 0, sizeof vs);
    vs.enc = &cls->enc;
    vs.dtype = a->dtype;
    lb_error e = {0};
    if (each_slab(a, 0, tally, &vs, &e) != 0) {
        ERROR(k, "read", lv->url, "%s", after(e.message, lv->url));
        return;
    }
    if (counts_out) memcpy(counts_out, vs.n, sizeof vs.n);
    if (vs.outside) {
        char ids[200] = "";
        size_t len = 0;
        for (int i = 0; i < vs.n_outside_ids; i++) {
            char v[32];
            lb_id_format(vs.outside_ids[i], v, sizeof v);
            len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%s", i ? ", " : "", v);
        }
        char enc[160];
        lb__encoding_describe(&cls->enc, enc, sizeof enc);
        ERROR(k, "value-outside-encoding", lv->url, "%" PRIu64 " voxel(s) hold values outside the "
              "encoding (%s): %s%s; they read as unknown", vs.outside, enc, ids,
              vs.n_outside_ids == 4 ? ", ..." : "");
    }
    if (cls->enc.instance && cls->enc.has[LB__UNKNOWN] && vs.have_id && vs.n[LB__UNKNOWN] &&
        id_less(cls->enc.value[LB__UNKNOWN], vs.max_id)) {
        char u[32], m[32];
        lb_id_format(cls->enc.value[LB__UNKNOWN], u, sizeof u);
        lb_id_format(vs.max_id, m, sizeof m);
        ERROR(k, "instance-id-is-unknown", lv->url, "instance ids run past the unknown value %s "
              "(up to %s) and %" PRIu64 " voxel(s) hold %s: those may be an instance, read as "
              "unknown", u, m, vs.n[LB__UNKNOWN], u);
    }
    /* complement_counts against the data */
    if (lv->counts.given) {
        for (int s = 0; s < 3; s++) {
            if (!lv->counts.has[s]) continue;
            if (!cls->enc.has[s] && s != LB__PRESENT) {
                ERROR(k, "complement-counts", lv->url, "complement_counts has \"%s\" but the "
                      "encoding has no %s value", lb__state_names[s], lb__state_names[s]);
                continue;
            }
            if (lv->counts.n[s] != vs.n[s])
                ERROR(k, "complement-counts", lv->url, "complement_counts.%s is %" PRIu64
                      " but the array holds %" PRIu64 " %s voxels", lb__state_names[s],
                      lv->counts.n[s], vs.n[s], lb__state_names[s]);
        }
    }
}

static void check_class(checker *k, const char *name, class_result *res) {
    lb__crop_class *cls = &res->cls;
    memset(res, 0, sizeof *res);
    char *dir = lb__path_join(k->path, name, k->err);
    json_object *attrs = NULL;
    const char **paths = NULL;
    size_t np = 0;
    const char *fname;
    char file[1400];
    lb_error e = {0};
    if (!dir) {
        k->oom = 1;
        return;
    }
    cls->name = strdup(name);
    cls->table = lb__classes_by_name(k->classes, name);
    if (!cls->name) {
        k->oom = 1;
        goto done;
    }
    if (lb__group_attrs_any(k->s, dir, &attrs, &fname, &e) != 0) {
        ERROR(k, "class-metadata", dir, "%s", after(e.message, dir));
        goto done;
    }
    snprintf(file, sizeof file, "%s/%s", dir, fname);
    if (!attrs) {
        if (lb__store_kind(k->s, dir) == LB__KEY_NONE)
            ERROR(k, "class-without-group", dir, "class \"%s\" is listed in class_names but "
                  "the crop has no group of that name", name);
        else
            ERROR(k, "class-metadata", dir, "the class group has no attributes (expected "
                  "cellmap.annotation and multiscales)");
        goto done;
    }
    if (lb__class_group_attrs_parse(attrs, file, name, &cls->enc, &e) != 0) {
        ERROR(k, "class-metadata", file, "%s", after(e.message, file));
        goto done;
    }
    if (cls->table < 0)
        WARN(k, "class-not-in-table", dir, "class \"%s\" is not in the %s: it has no id, so "
             "groups of ids cannot name it", name, k->classes->source);
    if (!cls->enc.instance && !cls->enc.has[LB__PRESENT])
        WARN(k, "encoding-incomplete", file, "the semantic encoding has no \"present\" value: "
             "nothing in this class can be present");
    if (!cls->enc.has[LB__ABSENT])
        WARN(k, "encoding-incomplete", file, "the encoding has no \"absent\" value: nothing in "
             "this class can be absent");
    if (lb__multiscale_paths(attrs, file, &paths, &np, &e) != 0) {
        ERROR(k, "multiscale-metadata", file, "%s", after(e.message, file));
        goto done;
    }
    if (np == 0) {
        ERROR(k, "multiscale-missing", file, "no OME-NGFF multiscales: a class group lists its "
              "arrays s0, s1, ... in multiscales[0].datasets");
        goto done;
    }
    cls->levels = calloc(np, sizeof *cls->levels);
    if (!cls->levels) {
        k->oom = 1;
        goto done;
    }
    int ok = 1;
    for (size_t i = 0; i < np; i++) {
        lb__crop_level *lv = &cls->levels[i];
        cls->n_levels = (int)i + 1;
        char rel[1200];
        snprintf(rel, sizeof rel, "%s/%s", name, paths[i]);
        lv->path = strdup(paths[i]);
        lv->url = lb__path_join(k->url, rel, k->err);
        if (!lv->path || !lv->url) {
            k->oom = 1;
            goto done;
        }
        lb_array *a = NULL;
        lb_error ea = {0};
        if (lb_array_open(lv->url, LB_OPEN_READONLY, NULL, 0, &a, &ea) != 0) {
            ERROR(k, "level-metadata", lv->url, "%s", after(ea.message, lv->url));
            ok = 0;
            continue;
        }
        char afile[1400];
        snprintf(afile, sizeof afile, "%s/%s", a->ds->path, a->ds->format->attrs_file);
        lv->ndim = a->ndim;
        lv->dims = a->dims;
        memcpy(lv->shape, a->shape, sizeof lv->shape);
        memcpy(lv->voxel_size, a->voxel_size, sizeof lv->voxel_size);
        lv->roi = a->roi;
        lv->dtype = a->dtype;
        lb__encoding enc;
        int found, usable = 1;
        if (!lb_dtype_is_integer(a->dtype)) {
            ERROR(k, "level-dtype", lv->url, "class arrays hold integers, this one is %s",
                  lb_dtype_name(a->dtype));
            usable = 0;
        } else if (a->ndim != a->dims) {
            ERROR(k, "level-axes", lv->url, "%d dimensions of which %d spatial: a class array "
                  "has no channel axis", a->ndim, a->dims);
            usable = 0;
        }
        for (int s = 0; usable && s < 3; s++)
            if (cls->enc.has[s] && !lb_id_fits(cls->enc.value[s], a->dtype)) {
                char v[32];
                lb_id_format(cls->enc.value[s], v, sizeof v);
                ERROR(k, "encoding-dtype", lv->url, "the encoding's %s value %s does not fit the "
                      "array's dtype %s", lb__state_names[s], v, lb_dtype_name(a->dtype));
                usable = 0;
            }
        if (lb__class_array_attrs_parse(a->attrs, afile, name, &enc, &lv->counts, &found, &e)) {
            ERROR(k, "level-metadata", afile, "%s", after(e.message, afile));
            memset(&lv->counts, 0, sizeof lv->counts);
            found = 0;
        } else if (!found) {
            WARN(k, "level-annotation-missing", afile, "no cellmap.annotation attribute (class "
                 "arrays repeat their group's, with complement_counts)");
        } else if (!lb__encoding_equal(&enc, &cls->enc)) {
            ERROR(k, "encoding-mismatch", afile, "cellmap.annotation.annotation_type differs "
                  "from its class group's");
            usable = 0;
        }
        if (i == 0)
            for (int w = 0; w < a->n_warnings; w++)
                WARN(k, "geometry", lv->url, "%s", a->warnings[w]);
        if (usable) {
            lb_array_set_threads(a, k->threads, NULL);
            check_values(k, cls, lv, a, i == 0 ? res->s0_counts : NULL);
        } else {
            ok = 0;
        }
        lb_array_free(a);
    }
    if (ok) {
        check_pyramid(k, file, attrs, cls);
        const uint64_t *c = res->s0_counts;
        if (c[LB__PRESENT] == 0 && c[LB__ABSENT] + c[LB__UNKNOWN] > 0)
            WARN(k, c[LB__ABSENT] ? "class-empty" : "class-all-unknown", cls->levels[0].url,
                 "no voxel is present%s", c[LB__ABSENT] ? " (the class is absent or unknown "
                 "everywhere in the crop)" : ": every voxel is unknown");
        res->ok = 1;
    }
done:
    free(paths);
    json_object_put(attrs);
    free(dir);
}

/* ---- `all` against the class arrays ------------------------------------------------ */

typedef struct all_cmp {
    const lb_array *all;
    size_t n;                 /* classes compared */
    lb_array **arr;
    const lb__crop_class **cls;
    const lb__class_entry **entry;
    uint64_t *absent_but_all;  /* per class: all says the class, the class says absent */
    uint64_t *present_not_all; /* per class: the class says present, all holds another id */
    int64_t (*first)[2][LB_MAX_DIMS];
    int *have_first;          /* bit 0: absent_but_all, bit 1: present_not_all */
    lb__buf labels;
    lb_error *err;
} all_cmp;

static int belongs(const lb__class_entry *e, lb_id id) {
    if (id.negative) return 0;
    if (id.bits == e->id) return 1;
    size_t lo = 0, hi = e->n_atomic;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->atomic[mid] == id.bits) return 1;
        if (e->atomic[mid] < id.bits) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

static void where_of(const lb_array *a, int64_t z0, size_t i, int64_t *out) {
    int64_t vox[LB_MAX_DIMS];
    lb__roi_voxels(a, &a->roi, vox);
    int64_t rem = (int64_t)i;
    for (int d = a->dims - 1; d >= 1; d--) {
        out[d] = a->roi.offset[d] + (rem % vox[d]) * a->voxel_size[d];
        rem /= vox[d];
    }
    out[0] = a->roi.offset[0] + (z0 + rem) * a->voxel_size[0];
}

static int compare_slab(void *user, const void *ids, size_t n, int64_t z0, int64_t nz) {
    all_cmp *c = user;
    size_t item_all = lb_dtype_size(c->all->dtype);
    for (size_t k = 0; k < c->n; k++) {
        const lb_array *a = c->arr[k];
        size_t item = lb_dtype_size(a->dtype);
        lb_roi r = a->roi;
        r.offset[0] = a->roi.offset[0] + z0 * a->voxel_size[0];
        r.shape[0] = nz * a->voxel_size[0];
        if (lb__buf_reserve(&c->labels, n * item, c->err)) return LB_ENOMEM;
        int rc = lb_array_read(a, &r, c->labels.data, n * item, c->err);
        if (rc) return rc;
        const lb__encoding *e = &c->cls[k]->enc;
        uint64_t mask = item >= 8 ? UINT64_MAX : (((uint64_t)1 << (8 * item)) - 1);
        uint64_t ev[3];
        for (int s = 0; s < 3; s++) ev[s] = e->value[s].bits & mask;
        uint64_t prev_id = 0;
        int prev_in = -1;
        for (size_t i = 0; i < n; i++) {
            uint64_t x = get_value(c->labels.data, i, item);
            int st = (e->has[LB__UNKNOWN] && x == ev[LB__UNKNOWN])   ? LB__UNKNOWN
                     : (e->has[LB__ABSENT] && x == ev[LB__ABSENT])   ? LB__ABSENT
                     : (e->has[LB__PRESENT] && x == ev[LB__PRESENT]) ? LB__PRESENT
                     : e->instance                                    ? LB__PRESENT
                                                                      : LB__UNKNOWN;
            if (st == LB__UNKNOWN) continue;
            uint64_t id = get_value(ids, i, item_all);
            if (prev_in < 0 || id != prev_id) {
                prev_id = id;
                prev_in = belongs(c->entry[k], as_id(id, c->all->dtype));
            }
            int bad = (st == LB__ABSENT && prev_in) ? 0 : (st == LB__PRESENT && !prev_in) ? 1 : -1;
            if (bad < 0) continue;
            if (bad == 0) c->absent_but_all[k]++;
            else c->present_not_all[k]++;
            if (!(c->have_first[k] & (1 << bad))) {
                c->have_first[k] |= 1 << bad;
                where_of(a, z0, i, c->first[k][bad]);
            }
        }
    }
    return 0;
}

static void check_all(checker *k, const lb_crop *crop_like, class_result *res, size_t n_classes) {
    (void)crop_like;
    char *dir = lb__path_join(k->path, "all", k->err);
    json_object *attrs = NULL;
    const char **paths = NULL;
    size_t np = 0;
    lb_error e = {0};
    const char *fname;
    all_cmp c;
    memset(&c, 0, sizeof c);
    if (!dir) {
        k->oom = 1;
        return;
    }
    if (lb__store_kind(k->s, dir) == LB__KEY_NONE) goto done; /* `all` is optional */
    char file[1400];
    if (lb__group_attrs_any(k->s, dir, &attrs, &fname, &e) != 0) {
        WARN(k, "all-metadata", dir, "%s", after(e.message, dir));
        goto done;
    }
    snprintf(file, sizeof file, "%s/%s", dir, fname);
    if (attrs && lb__multiscale_paths(attrs, file, &paths, &np, &e) != 0) {
        WARN(k, "all-metadata", file, "%s", after(e.message, file));
        goto done;
    }
    char rel[1200], *url;
    snprintf(rel, sizeof rel, "all/%s", np ? paths[0] : "s0");
    url = lb__path_join(k->url, rel, k->err);
    if (!url) {
        k->oom = 1;
        goto done;
    }
    lb_array *all = NULL;
    if (lb_array_open(url, LB_OPEN_READONLY, NULL, 0, &all, &e) != 0) {
        WARN(k, "all-metadata", url, "cannot be read: %s", e.message);
        free(url);
        goto done;
    }
    if (!lb_dtype_is_integer(all->dtype) || all->ndim != all->dims) {
        WARN(k, "all-metadata", url, "not a label array (dtype %s, %d dimensions of which %d "
             "spatial)", lb_dtype_name(all->dtype), all->ndim, all->dims);
        lb_array_free(all);
        free(url);
        goto done;
    }
    lb_array_set_threads(all, k->threads, NULL);
    c.all = all;
    c.err = &e;
    c.arr = calloc(n_classes ? n_classes : 1, sizeof *c.arr);
    c.cls = calloc(n_classes ? n_classes : 1, sizeof *c.cls);
    c.entry = calloc(n_classes ? n_classes : 1, sizeof *c.entry);
    c.absent_but_all = calloc(n_classes ? n_classes : 1, sizeof *c.absent_but_all);
    c.present_not_all = calloc(n_classes ? n_classes : 1, sizeof *c.present_not_all);
    c.first = calloc(n_classes ? n_classes : 1, sizeof *c.first);
    c.have_first = calloc(n_classes ? n_classes : 1, sizeof *c.have_first);
    if (!c.arr || !c.cls || !c.entry || !c.absent_but_all || !c.present_not_all || !c.first ||
        !c.have_first) {
        k->oom = 1;
        goto free_all;
    }
    /* The classes with a level at `all`'s voxel size and ROI. */
    int finer = 0;
    for (size_t i = 0; i < n_classes; i++) {
        const lb__crop_class *cls = &res[i].cls;
        if (!res[i].ok) continue;
        if (cls->table < 0) continue;
        if (cls->levels[0].dims == all->dims) {
            int smaller = 1;
            for (int d = 0; d < all->dims; d++)
                smaller &= cls->levels[0].voxel_size[d] <= all->voxel_size[d];
            int same = 1;
            for (int d = 0; d < all->dims; d++)
                same &= cls->levels[0].voxel_size[d] == all->voxel_size[d];
            if (smaller && !same) finer = 1;
        }
        for (int l = 0; l < cls->n_levels; l++) {
            const lb__crop_level *lv = &cls->levels[l];
            if (lv->dims != all->dims) continue;
            int same = 1;
            for (int d = 0; d < all->dims; d++)
                same &= lv->voxel_size[d] == all->voxel_size[d] &&
                        lv->roi.offset[d] == all->roi.offset[d] &&
                        lv->roi.shape[d] == all->roi.shape[d];
            if (!same) continue;
            if (lb_array_open(lv->url, LB_OPEN_READONLY, NULL, 0, &c.arr[c.n], &e) != 0) break;
            lb_array_set_threads(c.arr[c.n], k->threads, NULL);
            c.cls[c.n] = cls;
            c.entry[c.n] = &k->classes->e[cls->table];
            c.n++;
            break;
        }
    }
    if (finer) {
        char vs[200];
        lb_coord_format(all->voxel_size, all->dims, vs, sizeof vs);
        WARN(k, "all-resolution", url, "has the voxel size %s, coarser than the finest class "
             "level: `all` holds the dense ids at the finest class level", vs);
    }
    if (c.n == 0) {
        WARN(k, "all-not-compared", url, "no class array with a table entry shares its voxel "
             "size and ROI: nothing to compare");
        goto free_all;
    }
    e.code = 0;
    e.message[0] = '\0';
    if (each_slab(all, 8, compare_slab, &c, &e) != 0) {
        ERROR(k, "read", url, "%s", after(e.message, url));
        goto free_all;
    }
    for (size_t i = 0; i < c.n; i++) {
        char p[300];
        if (c.absent_but_all[i]) {
            lb_coord_format(c.first[i][0], all->dims, p, sizeof p);
            ERROR(k, "all-disagrees", c.arr[i]->ds->path, "%" PRIu64 " voxel(s) hold an id of "
                  "class \"%s\" in `all` but are absent in the class array (first at %s)",
                  c.absent_but_all[i], c.cls[i]->name, p);
        }
        if (c.present_not_all[i]) {
            lb_coord_format(c.first[i][1], all->dims, p, sizeof p);
            ERROR(k, "all-disagrees", c.arr[i]->ds->path, "%" PRIu64 " voxel(s) are present in "
                  "class \"%s\" but hold an id outside it in `all` (first at %s)",
                  c.present_not_all[i], c.cls[i]->name, p);
        }
    }
free_all:
    for (size_t i = 0; c.arr && i < c.n; i++) lb_array_free(c.arr[i]);
    free(c.arr);
    free(c.cls);
    free(c.entry);
    free(c.absent_but_all);
    free(c.present_not_all);
    free(c.first);
    free(c.have_first);
    lb__buf_free(&c.labels);
    lb_array_free(all);
    free(url);
done:
    free(paths);
    json_object_put(attrs);
    free(dir);
}

/* ---- groups the crop does not list ----------------------------------------------- */

typedef struct listing {
    char **names;
    size_t n, cap;
} listing;

static int collect(void *user, const char *name, int is_dir) {
    listing *l = user;
    if (!is_dir || name[0] == '.') return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        char **p = realloc(l->names, nc * sizeof *p);
        if (!p) return LB_ENOMEM;
        l->names = p;
        l->cap = nc;
    }
    l->names[l->n] = strdup(name);
    if (!l->names[l->n]) return LB_ENOMEM;
    l->n++;
    return 0;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- the crop ---------------------------------------------------------------------- */

int lb_crop_check(const char *path, const lb_classes *classes, int threads,
                  lb_check_report **out, lb_error *err) {
    if (!out) return lb__err(err, LB_EINVAL, "lb_crop_check: no output pointer");
    *out = NULL;
    if (!path || !*path) return lb__err(err, LB_EINVAL, "lb_crop_check: no path given");
    if (threads < 0) return lb__err(err, LB_EINVAL, "lb_crop_check: %d threads", threads);
    checker k;
    memset(&k, 0, sizeof k);
    k.err = err;
    k.threads = threads ? threads : lb__ncpu();
    lb_classes *own = NULL;
    json_object *attrs = NULL;
    lb__crop_attrs ca;
    memset(&ca, 0, sizeof ca);
    class_result *res = NULL;
    listing l = {0};
    char *url = NULL;
    int rc;
    size_t ul = strlen(path);
    while (ul > 1 && path[ul - 1] == '/') ul--;
    url = strndup(path, ul);
    k.r = calloc(1, sizeof *k.r);
    if (!url || !k.r) {
        rc = lb__err(err, LB_ENOMEM, "out of memory checking a crop");
        goto fail;
    }
    k.url = url;
    rc = lb__store_open(url, &k.s, &k.path, err);
    if (rc) goto fail;
    if (!classes) {
        rc = lb_classes_builtin(&own, err);
        if (rc) goto fail;
        classes = own;
    }
    k.classes = classes;
    if (lb__store_kind(k.s, k.path) == LB__KEY_NONE) {
        rc = lb__err(err, LB_ENOTFOUND, "%s: no such crop (nothing is there)", url);
        goto fail;
    }
    const char *fname;
    lb_error e = {0};
    char file[1400];
    if (lb__group_attrs_any(k.s, k.path, &attrs, &fname, &e) != 0) {
        ERROR(&k, "crop-metadata", k.path, "%s", after(e.message, k.path));
        goto report;
    }
    snprintf(file, sizeof file, "%s/%s", k.path, fname);
    if (!attrs || !lb__crop_attrs_claim(attrs)) {
        ERROR(&k, "not-a-crop", attrs ? file : k.path, "no cellmap.annotation.class_names "
              "attribute: not a CellMap crop");
        goto report;
    }
    if (lb__crop_attrs_parse(attrs, file, &ca, &e) != 0) {
        ERROR(&k, "crop-metadata", file, "%s", after(e.message, file));
        goto report;
    }
    if (lb__attrs_incomplete(attrs))
        ERROR(&k, "unfinished", file, "an unfinished labelbin output (labelbin.complete is "
              "false): finish it with --resume");
    if (ca.version && strcmp(ca.version, "0.1.1") != 0)
        WARN(&k, "crop-version", file, "cellmap.annotation.version \"%s\": labelbin knows "
             "0.1.1", ca.version);
    if (ca.n_classes == 0)
        WARN(&k, "no-classes", file, "class_names is empty: nothing in the crop is annotated");

    /* Groups not listed in class_names (a store that cannot be listed,
     * http or s3, says so rather than passing silently). */
    int lrc = lb__store_list(k.s, k.path, collect, &l, &e);
    if (lrc == LB_EUNSUPPORTED) {
        WARN(&k, "groups-not-listable", k.path, "the store cannot list the crop's groups "
             "(http, s3): groups missing from class_names were not looked for");
    } else if (lrc == 0) {
        qsort(l.names, l.n, sizeof *l.names, name_cmp);
        for (size_t i = 0; i < l.n; i++) {
            int listed = !strcmp(l.names[i], "all");
            for (size_t j = 0; j < ca.n_classes && !listed; j++)
                listed = !strcmp(ca.class_names[j], l.names[i]);
            if (listed) continue;
            char *p = lb__path_join(k.path, l.names[i], err);
            if (!p) {
                k.oom = 1;
                break;
            }
            WARN(&k, "group-not-listed", p, "a group the crop does not list in class_names: "
                 "readers ignore it");
            free(p);
        }
    }

    res = calloc(ca.n_classes ? ca.n_classes : 1, sizeof *res);
    if (!res) {
        k.oom = 1;
        goto report;
    }
    for (size_t i = 0; i < ca.n_classes && !k.oom; i++) check_class(&k, ca.class_names[i], &res[i]);

    /* Classes against each other: finest voxel sizes, ROIs at one voxel size. */
    {
        const lb__crop_level *ref = NULL;
        const char *ref_name = NULL;
        char list[700] = "";
        size_t len = 0;
        int differ = 0;
        for (size_t i = 0; i < ca.n_classes; i++) {
            if (!res[i].ok) continue;
            const lb__crop_level *l0 = &res[i].cls.levels[0];
            char vs[200];
            lb_coord_format(l0->voxel_size, l0->dims, vs, sizeof vs);
            if (len < sizeof list)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s %s", len ? ", " : "",
                                        res[i].cls.name, vs);
            if (!ref) {
                ref = l0;
                ref_name = res[i].cls.name;
                continue;
            }
            if (l0->dims != ref->dims ||
                memcmp(l0->voxel_size, ref->voxel_size, (size_t)l0->dims * sizeof(int64_t)))
                differ = 1;
        }
        if (differ)
            WARN(&k, "voxel-sizes-differ", k.path, "the classes' finest levels differ in voxel "
                 "size (%s): targets over several classes need a voxel size they all have",
                 list);
        /* ROIs: every pair of levels with the same voxel size. */
        for (size_t i = 0; i < ca.n_classes; i++) {
            if (!res[i].ok) continue;
            for (int li = 0; li < res[i].cls.n_levels; li++) {
                const lb__crop_level *a = &res[i].cls.levels[li];
                int reported = 0;
                for (size_t j = 0; j < i && !reported; j++) {
                    if (!res[j].ok) continue;
                    for (int lj = 0; lj < res[j].cls.n_levels && !reported; lj++) {
                        const lb__crop_level *b = &res[j].cls.levels[lj];
                        if (a->dims != b->dims ||
                            memcmp(a->voxel_size, b->voxel_size, (size_t)a->dims * sizeof(int64_t)))
                            continue;
                        int same = 1;
                        for (int d = 0; d < a->dims; d++)
                            same &= a->roi.offset[d] == b->roi.offset[d] &&
                                    a->roi.shape[d] == b->roi.shape[d];
                        if (same) continue;
                        char r1[400], r2[400];
                        lb_roi_format(&a->roi, r1, sizeof r1);
                        lb_roi_format(&b->roi, r2, sizeof r2);
                        ERROR(&k, "roi-mismatch", a->url, "covers %s, but %s/%s at the same "
                              "voxel size covers %s: a crop's classes share one ROI", r1,
                              res[j].cls.name, b->path, r2);
                        reported = 1;
                    }
                }
            }
        }
        (void)ref_name;
    }
    if (!k.oom) check_all(&k, NULL, res, ca.n_classes);

report:
    if (k.oom) {
        rc = lb__err(err, LB_ENOMEM, "out of memory checking a crop");
        goto fail;
    }
    *out = k.r;
    k.r = NULL;
    rc = 0;
fail:
    for (size_t i = 0; res && i < ca.n_classes; i++) free_class(&res[i].cls);
    free(res);
    for (size_t i = 0; i < l.n; i++) free(l.names[i]);
    free(l.names);
    lb__crop_attrs_clear(&ca);
    json_object_put(attrs);
    lb_classes_free(own);
    lb_check_report_free(k.r);
    lb__store_free(k.s);
    free(k.path);
    free(url);
    return rc;
}
