/*
 * geometry_meta.c — voxel size, offset and axis names of a stored dataset from
 * its metadata (DESIGN.md §1.2): OME-NGFF multiscales on an enclosing group,
 * else funlib's attribute keys on the array and its parent group, else
 * defaults; N5 reversal, funlib's truncation and offset rounding (done right
 * for negative offsets), and validation against the array's rank.
 *
 * Decisions beyond DESIGN.md, in one place:
 *  - OME-NGFF multiscales are looked up on Zarr containers only (funlib does
 *    the same); every enclosing group up to the container root is tried, the
 *    first `datasets[]` entry whose path matches wins. Multiscale-level
 *    coordinateTransformations are applied after the dataset's own.
 *  - An OME-NGFF axis of type "channel" is reported as "c".
 *  - `transform.scale/translate` are read in the order the transform declares
 *    (`ordering` or `order`, default "C"), whatever the format; this is what
 *    funlib's two reversals amount to for N5. `resolution`, `scale`,
 *    `offset`, `pixelResolution.dimensions` and `axes` are reversed for N5.
 *  - Without any voxel size or offset, the spatial dims are the non-"c" axes
 *    when axes are known, else all dimensions (no cap at 3). Default names are
 *    the last dims of z, y, x, with "d0", "d1", … for extra leading spatial
 *    dimensions and "c" for a single leading non-spatial dimension.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "array.h"
#include "json.h"
#include "store.h"

#define WHERE_SIZE 768

/* One metadata vector as found (before conversion to integers). */
typedef struct vec {
    int found;
    int n;
    int64_t ival[LB_MAX_DIMS];
    double dval[LB_MAX_DIMS];
    int is_int[LB_MAX_DIMS];
    char where[WHERE_SIZE]; /* "crop.zarr/a/.zattrs: resolution" */
} vec;

/* Axis names as found. */
typedef struct names {
    int found;
    int n;
    char name[LB_MAX_DIMS][64];
    char where[WHERE_SIZE];
} names;

static const char *attrs_file(lb_format f) {
    return f == LB_FORMAT_N5 ? "attributes.json" : ".zattrs";
}

/* Parse an array of numbers into v (n <= LB_MAX_DIMS). */
static int read_vec(json_object *o, const char *where, vec *v, lb_error *err) {
    memset(v, 0, sizeof *v);
    snprintf(v->where, sizeof v->where, "%s", where);
    if (!o || !json_object_is_type(o, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s: expected an array of numbers, found %s", where,
                       o ? lb__json_type_name(o) : "null");
    size_t n = json_object_array_length(o);
    if (n > LB_MAX_DIMS)
        return lb__err(err, LB_ELIMIT, "%s: %zu entries, at most %d dimensions are supported",
                       where, n, LB_MAX_DIMS);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(o, i);
        char w[WHERE_SIZE + 32];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        int rc;
        if (e && json_object_is_type(e, json_type_int)) {
            rc = lb__json_int64(e, w, &v->ival[i], err);
            v->is_int[i] = 1;
            v->dval[i] = (double)v->ival[i];
        } else {
            rc = lb__json_number(e, w, &v->dval[i], err);
        }
        if (rc) return rc;
    }
    v->n = (int)n;
    v->found = 1;
    return 0;
}

static void reverse_vec(vec *v) {
    for (int i = 0, j = v->n - 1; i < j; i++, j--) {
        int64_t t = v->ival[i];
        v->ival[i] = v->ival[j];
        v->ival[j] = t;
        double d = v->dval[i];
        v->dval[i] = v->dval[j];
        v->dval[j] = d;
        int b = v->is_int[i];
        v->is_int[i] = v->is_int[j];
        v->is_int[j] = b;
    }
}

static void reverse_names(names *a) {
    for (int i = 0, j = a->n - 1; i < j; i++, j--) {
        char t[64];
        memcpy(t, a->name[i], sizeof t);
        memcpy(a->name[i], a->name[j], sizeof t);
        memcpy(a->name[j], t, sizeof t);
    }
}

/* Axis names: strings, or OME-style objects with "name" (and "type":
 * "channel" makes the name "c"). */
static int read_names(json_object *o, const char *where, names *a, lb_error *err) {
    memset(a, 0, sizeof *a);
    snprintf(a->where, sizeof a->where, "%s", where);
    if (!o || !json_object_is_type(o, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s: expected an array of axis names, found %s", where,
                       o ? lb__json_type_name(o) : "null");
    size_t n = json_object_array_length(o);
    if (n > LB_MAX_DIMS)
        return lb__err(err, LB_ELIMIT, "%s: %zu axes, at most %d are supported", where, n,
                       LB_MAX_DIMS);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(o, i);
        char w[WHERE_SIZE + 32];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        const char *s = NULL;
        int channel = 0;
        if (e && json_object_is_type(e, json_type_object)) {
            char wn[WHERE_SIZE + 48];
            snprintf(wn, sizeof wn, "%s.name", w);
            json_object *nm = NULL;
            int rc = lb__json_require(e, "name", w, &nm, err);
            if (!rc) rc = lb__json_str(nm, wn, &s, err);
            if (rc) return rc;
            json_object *type = lb__json_get(e, "type");
            if (type && json_object_is_type(type, json_type_string) &&
                strcmp(json_object_get_string(type), "channel") == 0)
                channel = 1;
        } else {
            int rc = lb__json_str(e, w, &s, err);
            if (rc) return rc;
        }
        if (!*s || strlen(s) >= sizeof a->name[0])
            return lb__err(err, LB_EFORMAT, "%s: axis names must have 1 to %zu characters", w,
                           sizeof a->name[0] - 1);
        snprintf(a->name[i], sizeof a->name[i], "%s", channel ? "c" : s);
    }
    a->n = (int)n;
    a->found = 1;
    return 0;
}

/* lb__group_attrs, leaving `err` untouched unless it fails: a group without
 * attributes is normal. */
static int group_attrs(const char *dir, lb_format fmt, json_object **out, lb_error *err) {
    lb_error local = {0};
    int rc = lb__group_attrs(dir, fmt, out, &local);
    if (rc && err) *err = local;
    return rc;
}

/* ---- step 1: OME-NGFF multiscales ------------------------------------------ */

typedef struct ome_hit {
    vec scale, translation;
    names axes;
} ome_hit;

/* Read the scale / translation of one coordinateTransformations list. */
static int read_transforms(json_object *ct, const char *where, vec *scale, vec *translation,
                           lb_error *err) {
    memset(scale, 0, sizeof *scale);
    memset(translation, 0, sizeof *translation);
    if (!ct) return 0;
    if (!json_object_is_type(ct, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s: expected an array, found %s", where,
                       lb__json_type_name(ct));
    size_t n = json_object_array_length(ct);
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(ct, i), *type = NULL;
        char w[WHERE_SIZE + 32], wk[WHERE_SIZE + 64];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        const char *ty;
        snprintf(wk, sizeof wk, "%s.type", w);
        int rc = lb__json_require(t, "type", w, &type, err);
        if (!rc) rc = lb__json_str(type, wk, &ty, err);
        if (rc) return rc;
        if (strcmp(ty, "scale") == 0 || strcmp(ty, "translation") == 0) {
            vec *v = ty[0] == 's' ? scale : translation;
            json_object *val = NULL;
            snprintf(wk, sizeof wk, "%s.%s", w, ty);
            rc = lb__json_require(t, ty, w, &val, err);
            if (!rc) rc = read_vec(val, wk, v, err);
            if (rc) return rc;
        } else if (strcmp(ty, "identity") != 0) {
            return lb__err(err, LB_EUNSUPPORTED,
                           "%s: coordinate transformation of type \"%s\" is not supported "
                           "(only scale, translation, identity)",
                           wk, ty);
        }
    }
    return 0;
}

/* Look for `rel` among the datasets of the multiscales in `gattrs`.
 * *hit = 1 and `h` filled when found. */
static int ome_match(json_object *gattrs, const char *file, const char *rel, ome_hit *h,
                     int *hit, lb_error *err) {
    *hit = 0;
    json_object *ms = lb__json_get(gattrs, "multiscales");
    if (!ms) return 0;
    if (!json_object_is_type(ms, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s: multiscales: expected an array, found %s", file,
                       lb__json_type_name(ms));
    size_t nm = json_object_array_length(ms);
    for (size_t m = 0; m < nm; m++) {
        json_object *msm = json_object_array_get_idx(ms, m);
        char wm[WHERE_SIZE];
        snprintf(wm, sizeof wm, "%s: multiscales[%zu]", file, m);
        if (!msm || !json_object_is_type(msm, json_type_object))
            return lb__err(err, LB_EFORMAT, "%s: expected an object, found %s", wm,
                           msm ? lb__json_type_name(msm) : "null");
        json_object *dsets = lb__json_get(msm, "datasets");
        if (!dsets) continue;
        if (!json_object_is_type(dsets, json_type_array))
            return lb__err(err, LB_EFORMAT, "%s.datasets: expected an array, found %s", wm,
                           lb__json_type_name(dsets));
        size_t nd = json_object_array_length(dsets);
        for (size_t d = 0; d < nd; d++) {
            json_object *e = json_object_array_get_idx(dsets, d), *p = NULL;
            char wd[WHERE_SIZE + 32], wp[WHERE_SIZE + 48];
            snprintf(wd, sizeof wd, "%s.datasets[%zu]", wm, d);
            snprintf(wp, sizeof wp, "%s.path", wd);
            const char *path;
            int rc = lb__json_require(e, "path", wd, &p, err);
            if (!rc) rc = lb__json_str(p, wp, &path, err);
            if (rc) return rc;
            while (*path == '/') path++;
            size_t pl = strlen(path);
            while (pl > 0 && path[pl - 1] == '/') pl--;
            if (pl != strlen(rel) || strncmp(path, rel, pl) != 0) continue;

            char wc[WHERE_SIZE + 64];
            snprintf(wc, sizeof wc, "%s.coordinateTransformations", wd);
            rc = read_transforms(lb__json_get(e, "coordinateTransformations"), wc, &h->scale,
                                 &h->translation, err);
            if (rc) return rc;
            /* Multiscale-level transformations apply after the dataset's. */
            vec ms_scale, ms_tr;
            snprintf(wc, sizeof wc, "%s.coordinateTransformations", wm);
            rc = read_transforms(lb__json_get(msm, "coordinateTransformations"), wc, &ms_scale,
                                 &ms_tr, err);
            if (rc) return rc;
            if (ms_scale.found || ms_tr.found) {
                int n = h->scale.found ? h->scale.n
                                       : (ms_scale.found ? ms_scale.n : ms_tr.n);
                if ((h->scale.found && h->scale.n != n) || (ms_scale.found && ms_scale.n != n) ||
                    (ms_tr.found && ms_tr.n != n) ||
                    (h->translation.found && h->translation.n != n))
                    return lb__err(err, LB_EFORMAT,
                                   "%s: coordinate transformations of different lengths", wm);
                for (int i = 0; i < n; i++) {
                    double s = h->scale.found ? h->scale.dval[i] : 1.0;
                    double t = h->translation.found ? h->translation.dval[i] : 0.0;
                    double S = ms_scale.found ? ms_scale.dval[i] : 1.0;
                    double T = ms_tr.found ? ms_tr.dval[i] : 0.0;
                    h->scale.dval[i] = s * S;
                    h->translation.dval[i] = t * S + T;
                    h->scale.is_int[i] = h->translation.is_int[i] = 0;
                }
                h->scale.found = h->translation.found = 1;
                h->scale.n = h->translation.n = n;
            }
            json_object *axes = lb__json_get(msm, "axes");
            if (axes) {
                char wa[WHERE_SIZE + 16];
                snprintf(wa, sizeof wa, "%s.axes", wm);
                rc = read_names(axes, wa, &h->axes, err);
                if (rc) return rc;
            }
            *hit = 1;
            return 0;
        }
    }
    return 0;
}

/* Walk the enclosing groups of `path` up to the container root. */
static int ome_lookup(const lb__dataset *ds, ome_hit *h, int *hit, lb_error *err) {
    *hit = 0;
    memset(h, 0, sizeof *h);
    if (ds->format != LB_FORMAT_ZARR2) return 0;
    const char *p = ds->path;
    size_t clen = lb__path_container_len(p);
    size_t cut = strlen(p);
    int rc = 0;
    while (!*hit) {
        size_t k = cut;
        while (k > 0 && p[k - 1] != '/') k--;
        if (k == 0) break;      /* no enclosing directory inside the path */
        k--;                    /* index of the '/' */
        if (k == 0) break;      /* the file-system root is not a group */
        if (clen > 0 && k < clen) break;
        char *dir = lb__malloc(k + 1, "a group path", err);
        if (!dir) return LB_ENOMEM;
        memcpy(dir, p, k);
        dir[k] = '\0';
        json_object *g = NULL;
        rc = group_attrs(dir, ds->format, &g, err);
        if (!rc && g) {
            char file[WHERE_SIZE];
            snprintf(file, sizeof file, "%s/%s", dir, attrs_file(ds->format));
            rc = ome_match(g, file, p + k + 1, h, hit, err);
        }
        json_object_put(g);
        free(dir);
        if (rc) return rc;
        if (clen == 0) break; /* no container: only the parent directory */
        cut = k;
    }
    return 0;
}

/* ---- step 2: funlib's attribute keys --------------------------------------- */

typedef struct attr_hit {
    vec vs, off;
    names axes;
} attr_hit;

/* Voxel size / offset / axes from one attribute object (`file` names it). */
static int attrs_lookup(json_object *attrs, const char *file, lb_format fmt, attr_hit *h,
                        lb_error *err) {
    char w[WHERE_SIZE];
    int rc = 0, n5 = fmt == LB_FORMAT_N5;
    json_object *o, *t = lb__json_get(attrs, "transform");
    int t_reverse = 0;
    if (t && json_object_is_type(t, json_type_object)) {
        json_object *ord = lb__json_get(t, "ordering");
        if (!ord) ord = lb__json_get(t, "order");
        if (ord && json_object_is_type(ord, json_type_string) &&
            strcmp(json_object_get_string(ord), "F") == 0)
            t_reverse = 1;
    } else {
        t = NULL;
    }
    if (!h->vs.found) {
        int reverse = n5;
        if ((o = lb__json_get(attrs, "resolution"))) {
            snprintf(w, sizeof w, "%s: resolution", file);
        } else if ((o = lb__json_get(attrs, "scale"))) {
            snprintf(w, sizeof w, "%s: scale", file);
        } else if ((o = lb__json_get(lb__json_get(attrs, "pixelResolution"), "dimensions"))) {
            snprintf(w, sizeof w, "%s: pixelResolution.dimensions", file);
        } else if (t && (o = lb__json_get(t, "scale"))) {
            snprintf(w, sizeof w, "%s: transform.scale", file);
            reverse = t_reverse;
        }
        if (o) {
            rc = read_vec(o, w, &h->vs, err);
            if (rc) return rc;
            if (reverse) reverse_vec(&h->vs);
        }
    }
    if (!h->off.found) {
        int reverse = n5;
        if ((o = lb__json_get(attrs, "offset"))) {
            snprintf(w, sizeof w, "%s: offset", file);
        } else if (t && (o = lb__json_get(t, "translate"))) {
            snprintf(w, sizeof w, "%s: transform.translate", file);
            reverse = t_reverse;
        }
        if (o) {
            rc = read_vec(o, w, &h->off, err);
            if (rc) return rc;
            if (reverse) reverse_vec(&h->off);
        }
    }
    if (!h->axes.found && (o = lb__json_get(attrs, "axes"))) {
        snprintf(w, sizeof w, "%s: axes", file);
        rc = read_names(o, w, &h->axes, err);
        if (rc) return rc;
        if (n5) reverse_names(&h->axes);
    }
    return 0;
}

/* ---- conversion and validation --------------------------------------------- */

/* Integer value of entry i, truncated toward zero like funlib's int(). */
static int to_int(lb_array *a, const vec *v, int i, const char *what, int64_t *out,
                  lb_error *err) {
    if (v->is_int[i]) {
        *out = v->ival[i];
        return 0;
    }
    double d = v->dval[i], t = trunc(d);
    if (!(fabs(t) < 9.2e18))
        return lb__err(err, LB_EFORMAT, "%s[%d]: %g is out of range", v->where, i, d);
    *out = (int64_t)t;
    if (t != d)
        return lb__array_warn(a, err, "%s %g truncated to %" PRId64 ", as funlib does (%s[%d])",
                              what, d, *out, v->where, i);
    return 0;
}

static int default_axes(names *ax, int ndim, int dims) {
    static const char *const zyx[3] = {"z", "y", "x"};
    memset(ax, 0, sizeof *ax);
    ax->n = ndim;
    int lead = ndim - dims;
    for (int i = 0; i < lead; i++) snprintf(ax->name[i], sizeof ax->name[i], "c");
    for (int i = 0; i < dims; i++) {
        int from_end = dims - i; /* 3 = z, 2 = y, 1 = x */
        if (from_end <= 3)
            snprintf(ax->name[lead + i], sizeof ax->name[0], "%s", zyx[3 - from_end]);
        else
            snprintf(ax->name[lead + i], sizeof ax->name[0], "d%d", i);
    }
    return 0;
}

int lb__array_geometry_from_meta(lb_array *a, const lb__dataset *ds,
                                 const char *const *axes_override, int n_axes, lb_error *err) {
    const int ndim = ds->ndim;
    ome_hit ome;
    attr_hit at;
    names axes;
    memset(&at, 0, sizeof at);
    memset(&axes, 0, sizeof axes);
    json_object *parent = NULL;
    char *pdir = NULL;
    int hit = 0, rc;
    char file[WHERE_SIZE];
    const char *srcdesc = "";

    rc = ome_lookup(ds, &ome, &hit, err);
    if (rc) goto fail;

    const vec *vs = NULL, *off = NULL;
    const names *meta_axes = NULL;
    /* Positions of OME channel axes, removed from scale/translation. */
    int ome_channel[LB_MAX_DIMS] = {0};
    vec ome_vs, ome_off;
    if (hit) {
        int n = ome.scale.found ? ome.scale.n : (ome.translation.found ? ome.translation.n : 0);
        if (ome.axes.found) {
            if (n && ome.axes.n != n) {
                rc = lb__err(err, LB_EFORMAT, "%s has %d entries but %s has %d",
                             ome.scale.found ? ome.scale.where : ome.translation.where, n,
                             ome.axes.where, ome.axes.n);
                goto fail;
            }
            for (int i = 0; i < ome.axes.n; i++) ome_channel[i] = !strcmp(ome.axes.name[i], "c");
            meta_axes = &ome.axes;
        }
        if (ome.scale.found && ome.translation.found && ome.scale.n != ome.translation.n) {
            rc = lb__err(err, LB_EFORMAT, "%s has %d entries but %s has %d", ome.scale.where,
                         ome.scale.n, ome.translation.where, ome.translation.n);
            goto fail;
        }
        if (n && n != ndim) {
            rc = lb__err(err, LB_EFORMAT, "%s has %d entries, the array %s has %d dimension%s",
                         ome.scale.found ? ome.scale.where : ome.translation.where, n, ds->path,
                         ndim, ndim == 1 ? "" : "s");
            goto fail;
        }
        /* Keep the spatial entries; without a scale the voxel size is 1. */
        memset(&ome_vs, 0, sizeof ome_vs);
        memset(&ome_off, 0, sizeof ome_off);
        snprintf(ome_vs.where, sizeof ome_vs.where, "%s", ome.scale.where);
        snprintf(ome_off.where, sizeof ome_off.where, "%s", ome.translation.where);
        for (int i = 0; i < n; i++) {
            if (ome_channel[i]) continue;
            int k = ome_vs.n++;
            ome_off.n++;
            ome_vs.dval[k] = ome.scale.found ? ome.scale.dval[i] : 1.0;
            ome_vs.ival[k] = ome.scale.found ? ome.scale.ival[i] : 1;
            ome_vs.is_int[k] = ome.scale.found ? ome.scale.is_int[i] : 1;
            ome_off.dval[k] = ome.translation.found ? ome.translation.dval[i] : 0.0;
            ome_off.ival[k] = ome.translation.found ? ome.translation.ival[i] : 0;
            ome_off.is_int[k] = ome.translation.found ? ome.translation.is_int[i] : 1;
        }
        ome_vs.found = ome.scale.found;
        ome_off.found = ome.translation.found;
        if (ome_vs.found) vs = &ome_vs;
        if (ome_off.found) off = &ome_off;
        srcdesc = " (from OME-NGFF multiscales)";
    }

    /* Step 2 only fills what OME-NGFF did not give. */
    if (!hit || !vs || !off || !meta_axes) {
        if (hit) {
            if (vs) at.vs = *vs;
            if (off) at.off = *off;
            if (meta_axes) at.axes = *meta_axes;
        }
        snprintf(file, sizeof file, "%s/%s", ds->path, attrs_file(ds->format));
        rc = attrs_lookup(ds->attrs, file, ds->format, &at, err);
        if (rc) goto fail;
        size_t clen = lb__path_container_len(ds->path);
        if ((!at.vs.found || !at.off.found || !at.axes.found) &&
            (clen == 0 || strlen(ds->path) > clen)) {
            pdir = lb__path_parent(ds->path, err);
            if (!pdir) {
                rc = LB_ENOMEM;
                goto fail;
            }
            rc = group_attrs(pdir, ds->format, &parent, err);
            if (rc) goto fail;
            if (parent) {
                snprintf(file, sizeof file, "%s/%s", pdir, attrs_file(ds->format));
                rc = attrs_lookup(parent, file, ds->format, &at, err);
                if (rc) goto fail;
            }
        }
        vs = at.vs.found ? &at.vs : NULL;
        off = at.off.found ? &at.off : NULL;
        meta_axes = at.axes.found ? &at.axes : NULL;
    }

    /* Axis names: the override wins over metadata. */
    if (axes_override && n_axes > 0) {
        axes.found = 1;
        axes.n = n_axes;
        snprintf(axes.where, sizeof axes.where, "axes override");
        for (int i = 0; i < n_axes; i++) {
            if (!axes_override[i] || !*axes_override[i] ||
                strlen(axes_override[i]) >= sizeof axes.name[0]) {
                rc = lb__err(err, LB_EINVAL, "axes override [%d]: expected a name of 1 to %zu "
                             "characters", i, sizeof axes.name[0] - 1);
                goto fail;
            }
            snprintf(axes.name[i], sizeof axes.name[i], "%s", axes_override[i]);
        }
    } else if (meta_axes) {
        axes = *meta_axes;
    }

    /* Number of spatial dims. */
    int dims;
    if (vs && off && vs->n != off->n) {
        rc = lb__err(err, LB_EFORMAT, "%s has %d entries but %s has %d", vs->where, vs->n,
                     off->where, off->n);
        goto fail;
    }
    if (vs) {
        dims = vs->n;
    } else if (off) {
        dims = off->n;
    } else if (axes.found) {
        dims = 0;
        for (int i = 0; i < axes.n; i++) dims += strcmp(axes.name[i], "c") != 0;
    } else {
        dims = ndim;
    }
    if (dims > ndim) {
        const char *what = vs ? vs->where : (off ? off->where : axes.where);
        rc = lb__err(err, LB_EFORMAT, "%s has %d entries, the array %s has only %d dimension%s",
                     what, dims, ds->path, ndim, ndim == 1 ? "" : "s");
        goto fail;
    }
    int lead = ndim - dims;

    if (axes.found) {
        if (axes.n != ndim) {
            rc = lb__err(err, axes_override && n_axes > 0 ? LB_EINVAL : LB_EFORMAT,
                         "%s has %d entries, the array %s has %d dimension%s",
                         axes.where, axes.n, ds->path, ndim, ndim == 1 ? "" : "s");
            goto fail;
        }
        for (int i = 0; i < ndim; i++) {
            for (int j = 0; j < i; j++)
                if (!strcmp(axes.name[i], axes.name[j])) {
                    rc = lb__err(err, LB_EFORMAT, "%s: axis \"%s\" appears twice", axes.where,
                                 axes.name[i]);
                    goto fail;
                }
            int is_c = !strcmp(axes.name[i], "c");
            if (i < lead && !is_c) {
                rc = lb__err(err, lead > 1 ? LB_EUNSUPPORTED : LB_EFORMAT,
                             "%s: axis %d (\"%s\") is not spatial (the voxel size has %d "
                             "entries for %d dimensions) but only a channel axis \"c\" may "
                             "precede the spatial axes",
                             axes.where, i, axes.name[i], dims, ndim);
                goto fail;
            }
            if (i >= lead && is_c) {
                rc = lb__err(err, LB_EFORMAT,
                             "%s: the channel axis \"c\" must come first, before the %d spatial "
                             "axes",
                             axes.where, dims);
                goto fail;
            }
        }
    } else {
        if (lead > 1) {
            rc = lb__err(err, LB_EUNSUPPORTED,
                         "%s: %d dimensions but a voxel size of %d entries; only one leading "
                         "channel dimension is supported",
                         ds->path, ndim, dims);
            goto fail;
        }
        default_axes(&axes, ndim, dims);
    }

    /* Voxel size, offset, ROI. */
    int64_t v[LB_MAX_DIMS], o[LB_MAX_DIMS];
    for (int i = 0; i < dims; i++) {
        v[i] = 1;
        o[i] = 0;
        if (vs) {
            rc = to_int(a, vs, i, "voxel size", &v[i], err);
            if (rc) goto fail;
            if (v[i] <= 0) {
                rc = lb__err(err, LB_EFORMAT, "%s[%d]: voxel size must be > 0, found %g%s",
                             vs->where, i, vs->dval[i], srcdesc);
                goto fail;
            }
        }
        if (off) {
            rc = to_int(a, off, i, "offset", &o[i], err);
            if (rc) goto fail;
        }
    }
    int64_t rounded[LB_MAX_DIMS];
    int changed = 0;
    for (int i = 0; i < dims; i++) {
        rounded[i] = o[i];
        if (lb__floormod(o[i], v[i]) == 0) continue;
        int64_t t;
        if (lb__add_i64(o[i], v[i] / 2, &t) ||
            lb__mul_i64(lb__floordiv(t, v[i]), v[i], &rounded[i])) {
            rc = lb__err(err, LB_ELIMIT, "%s[%d]: offset overflows", off->where, i);
            goto fail;
        }
        changed = 1;
    }
    if (changed) {
        char ob[512], vb[512], rb[512];
        lb_coord_format(o, dims, ob, sizeof ob);
        lb_coord_format(v, dims, vb, sizeof vb);
        lb_coord_format(rounded, dims, rb, sizeof rb);
        rc = lb__array_warn(a, err, "offset %s is not a multiple of the voxel size %s; rounded "
                            "to the nearest multiple %s (%s)", ob, vb, rb, off->where);
        if (rc) goto fail;
    }

    lb_roi roi;
    memset(&roi, 0, sizeof roi);
    roi.ndim = dims;
    for (int i = 0; i < dims; i++) {
        int64_t ext, end;
        if (lb__mul_i64(ds->shape[lead + i], v[i], &ext) || lb__add_i64(rounded[i], ext, &end)) {
            rc = lb__err(err, LB_ELIMIT, "%s: the ROI overflows 64 bits in dimension %d",
                         ds->path, i);
            goto fail;
        }
        roi.offset[i] = rounded[i];
        roi.shape[i] = ext;
    }

    /* Commit. */
    a->ndim = ndim;
    a->dims = dims;
    for (int i = 0; i < ndim; i++) {
        free(a->axes[i]);
        a->axes[i] = lb__strdup(axes.name[i], err);
        if (!a->axes[i]) {
            rc = LB_ENOMEM;
            goto fail;
        }
        a->shape[i] = ds->shape[i];
    }
    memcpy(a->voxel_size, v, (size_t)dims * sizeof *v);
    a->roi = roi;
    a->num_channels = lead == 1 ? ds->shape[0] : -1;
    rc = 0;
fail:
    json_object_put(parent);
    free(pdir);
    return rc;
}
