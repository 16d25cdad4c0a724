/*
 * geometry_meta.c — voxel size, offset and axis names of a stored dataset from
 * its metadata (docs/semantics.md §1): OME-NGFF multiscales on an enclosing group,
 * else funlib's attribute keys on the array and its parent group, else
 * defaults; N5 / F-order reversal, funlib's truncation and offset rounding
 * (done right for negative offsets), and validation against the array's rank.
 *
 * Decisions beyond docs/semantics.md, in one place:
 *  - OME-NGFF multiscales are looked up on Zarr groups only (funlib does the
 *    same). Inside a `*.zarr` container every enclosing group up to the
 *    container root is tried; elsewhere the enclosing directories are tried
 *    while they are Zarr groups (.zgroup or .zattrs), at most
 *    OME_MAX_LEVELS of them. The first `datasets[]` entry whose path matches
 *    the dataset's path relative to the group wins ("s0", "labels/s0").
 *    Multiscale-level coordinateTransformations are applied after the
 *    dataset's own.
 *  - Units. World coordinates are integers in nanometres, the unit funlib's
 *    world coordinates assume. An OME-NGFF spatial axis with a "unit" other
 *    than nanometres has its scale and translation converted: the spatial
 *    unit names OME-NGFF takes from UDUNITS-2 (angstrom, picometer,
 *    nanometer, micrometer, millimeter, centimeter, decimeter, meter,
 *    kilometer, inch, foot, yard, mile, …, with British "-metre" spellings)
 *    and the abbreviations found in files (Å, pm, nm, um, µm, μm, micron, mm,
 *    cm, m). A converted value must be a whole number of nanometres
 *    (within 1e-9 relative), else the array is refused naming the axis, the
 *    unit and the value: 0.5 micrometer is 500 nm, 2.5 angstrom (0.25 nm)
 *    is refused. An unknown unit on a spatial axis is refused too. Values
 *    already in nanometres (or without a unit) keep funlib's behaviour:
 *    truncated toward zero, with a warning.
 *  - Axis kinds. An axis named "c" is the channel axis and one named "t" is
 *    time; an OME-NGFF axis of type "channel" is reported as "c", and one
 *    of type "time" (or any type other than "space") is non-spatial and
 *    keeps its name. Non-spatial axes must all come before the spatial ones
 *    (t, c, z, y, x); their OME-NGFF scale/translation entries are dropped.
 *    num_channels is the extent of the "c" axis among them.
 *  - `transform.scale/translate` are read in the order the transform declares
 *    (`ordering` or `order`, default "C"), whatever the format; this is what
 *    funlib's two reversals amount to. `resolution`, `scale`, `offset`,
 *    `pixelResolution` and `axes` are reversed for N5 and, as funlib does, for
 *    a Zarr array whose order is "F" (the `order` attribute when the array
 *    has one, else the .zarray order).
 *  - N5 scale pyramids in the n5-viewer / neuroglancer layout: a voxel size
 *    taken from `pixelResolution` (the base resolution in that layout), or
 *    from the parent group's `resolution`, is multiplied per axis by the
 *    dataset's own `downsamplingFactors`, or else (for a dataset named
 *    `s<k>`) by entry k of the parent group's `scales` or
 *    `downsamplingFactors`; without any voxel size the factors are the voxel
 *    size. A dataset's own `resolution`, `scale` or `transform` is its voxel
 *    size as it stands. The offset is not shifted: funlib's voxels are boxes
 *    whose corner is the offset, and a downsampled box starts where the
 *    boxes it averages start (BigDataViewer's half-voxel shift belongs to its
 *    voxel-centre convention).
 *  - Without any voxel size, offset or axes, the spatial dims are the last
 *    min(ndim, 3) dimensions (funlib >= 0.3's default); the leading ones are
 *    named "c" (one) or "s", "c" (two, DaCapo's default names); more leading
 *    dimensions need axis names. With axes but no voxel size or offset, the
 *    spatial dims are the spatial axes. Default spatial names are the last
 *    dims of z, y, x, with "d0", "d1", … for extra leading spatial
 *    dimensions.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "array/geometry_meta.h"

#include <stdarg.h>

#include "core/json.h"
#include "core/path.h"
#include "format/ome.h"

#define WHERE_SIZE 768

/* Enclosing directories tried for OME-NGFF multiscales outside a `*.zarr`
 * container (paths "s0", "labels/s0", … relative to the group). */
#define OME_MAX_LEVELS 8

/* One metadata vector as found (before conversion to integers). */
typedef struct vec {
    int found;
    int n;
    int64_t ival[LB_MAX_DIMS];
    double dval[LB_MAX_DIMS];
    int is_int[LB_MAX_DIMS];
    char where[WHERE_SIZE]; /* "crop.zarr/a/.zattrs: resolution" */
} vec;

enum { AXIS_SPATIAL = 0, AXIS_CHANNEL, AXIS_OTHER };

/* Axis names as found, with their kind (spatial, channel, other
 * non-spatial) and OME-NGFF unit ("" when none). */
typedef struct names {
    int found;
    int n;
    char name[LB_MAX_DIMS][64];
    int kind[LB_MAX_DIMS];
    char unit[LB_MAX_DIMS][32];
    char where[WHERE_SIZE];
} names;

static const char *attrs_file(const lb__dataset *ds) { return ds->format->attrs_file; }

/* Append a warning (funlib's truncation and rounding are reported). */
static int warn(lb__geometry *g, lb_error *err, const char *fmt, ...) LB__PRINTF(3, 4);
static int warn(lb__geometry *g, lb_error *err, const char *fmt, ...) {
    char msg[LB_ERROR_MESSAGE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char **w = realloc(g->warnings, ((size_t)g->n_warnings + 1) * sizeof *w);
    if (!w) return lb__err(err, LB_ENOMEM, "out of memory recording a warning");
    g->warnings = w;
    w[g->n_warnings] = lb__strdup(msg, err);
    if (!w[g->n_warnings]) return LB_ENOMEM;
    g->n_warnings++;
    return 0;
}

void lb__geometry_clear(lb__geometry *g) {
    if (!g) return;
    for (int i = 0; i < g->n_warnings; i++) free(g->warnings[i]);
    free(g->warnings);
    memset(g, 0, sizeof *g);
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
        char t[64], u[32];
        memcpy(t, a->name[i], sizeof t);
        memcpy(a->name[i], a->name[j], sizeof t);
        memcpy(a->name[j], t, sizeof t);
        memcpy(u, a->unit[i], sizeof u);
        memcpy(a->unit[i], a->unit[j], sizeof u);
        memcpy(a->unit[j], u, sizeof u);
        int k = a->kind[i];
        a->kind[i] = a->kind[j];
        a->kind[j] = k;
    }
}

/* The kind an axis name alone implies: "c" is a channel, "t" is time. */
static int kind_of_name(const char *s) {
    if (!strcmp(s, "c")) return AXIS_CHANNEL;
    if (!strcmp(s, "t")) return AXIS_OTHER;
    return AXIS_SPATIAL;
}

/* Axis names: strings, or OME-style objects with "name", "type" ("channel"
 * makes the name "c"; "time" and other non-"space" types are non-spatial)
 * and "unit". */
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
        int kind = -1;
        if (e && json_object_is_type(e, json_type_object)) {
            char wn[WHERE_SIZE + 48];
            snprintf(wn, sizeof wn, "%s.name", w);
            json_object *nm = NULL;
            int rc = lb__json_require(e, "name", w, &nm, err);
            if (!rc) rc = lb__json_str(nm, wn, &s, err);
            if (rc) return rc;
            json_object *type = lb__json_get(e, "type");
            if (type && json_object_is_type(type, json_type_string)) {
                const char *t = json_object_get_string(type);
                kind = !strcmp(t, "channel") ? AXIS_CHANNEL
                     : !strcmp(t, "space")   ? AXIS_SPATIAL
                                             : AXIS_OTHER;
            }
            json_object *unit = lb__json_get(e, "unit");
            if (unit) {
                const char *u;
                snprintf(wn, sizeof wn, "%s.unit", w);
                rc = lb__json_str(unit, wn, &u, err);
                if (rc) return rc;
                if (strlen(u) >= sizeof a->unit[0])
                    return lb__err(err, LB_EUNSUPPORTED, "%s: unknown unit \"%.40s...\"", wn, u);
                snprintf(a->unit[i], sizeof a->unit[i], "%s", u);
            }
        } else {
            int rc = lb__json_str(e, w, &s, err);
            if (rc) return rc;
        }
        if (!*s || strlen(s) >= sizeof a->name[0])
            return lb__err(err, LB_EFORMAT, "%s: axis names must have 1 to %zu characters", w,
                           sizeof a->name[0] - 1);
        if (kind < 0) kind = kind_of_name(s);
        a->kind[i] = kind;
        snprintf(a->name[i], sizeof a->name[i], "%s", kind == AXIS_CHANNEL ? "c" : s);
    }
    a->n = (int)n;
    a->found = 1;
    return 0;
}

/* The group's attributes, leaving `err` untouched unless it fails: a group
 * without attributes is normal. */
static int group_attrs(const lb__dataset *ds, const char *dir, json_object **out, lb_error *err) {
    lb_error local = {0};
    int rc = lb__dataset_group_attrs(ds, dir, out, &local);
    if (rc && err) *err = local;
    return rc;
}

/* ---- units ----------------------------------------------------------------- */

/* A length unit as a factor to nanometres, mul / div (both whole numbers
 * where the factor is exact, so that common values convert exactly). */
typedef struct unit_def {
    const char *name;
    double mul, div;
} unit_def;

static const unit_def units[] = {
    /* OME-NGFF's spatial units (UDUNITS-2 names) */
    {"angstrom", 1, 10},       {"attometer", 1, 1e9},       {"centimeter", 1e7, 1},
    {"decimeter", 1e8, 1},     {"exameter", 1e27, 1},       {"femtometer", 1, 1e6},
    {"foot", 3.048e8, 1},      {"gigameter", 1e18, 1},      {"hectometer", 1e11, 1},
    {"inch", 2.54e7, 1},       {"kilometer", 1e12, 1},      {"megameter", 1e15, 1},
    {"meter", 1e9, 1},         {"micrometer", 1e3, 1},      {"mile", 1.609344e12, 1},
    {"millimeter", 1e6, 1},    {"nanometer", 1, 1},         {"parsec", 3.0856775814913673e25, 1},
    {"petameter", 1e24, 1},    {"picometer", 1, 1e3},       {"terameter", 1e21, 1},
    {"yard", 9.144e8, 1},      {"yoctometer", 1, 1e15},     {"yottameter", 1e33, 1},
    {"zeptometer", 1, 1e12},   {"zettameter", 1e30, 1},
    /* British spellings */
    {"picometre", 1, 1e3},     {"nanometre", 1, 1},         {"micrometre", 1e3, 1},
    {"millimetre", 1e6, 1},    {"centimetre", 1e7, 1},      {"decimetre", 1e8, 1},
    {"metre", 1e9, 1},         {"kilometre", 1e12, 1},
    /* abbreviations and other names seen in files (case matters: Mm ≠ mm) */
    {"\xc3\x85", 1, 10},       /* Å, U+00C5 */
    {"\xe2\x84\xab", 1, 10},   /* Å, U+212B ANGSTROM SIGN */
    {"pm", 1, 1e3},            {"nm", 1, 1},                {"um", 1e3, 1},
    {"\xc2\xb5m", 1e3, 1},     /* µm, U+00B5 MICRO SIGN */
    {"\xce\xbcm", 1e3, 1},     /* μm, U+03BC GREEK SMALL LETTER MU */
    {"micron", 1e3, 1},        {"mm", 1e6, 1},              {"cm", 1e7, 1},
    {"m", 1e9, 1},
};

/* The unit named `s`: exact names first, then full names ignoring case and
 * a plural "s" ("Micrometers"). NULL when unknown. */
static const unit_def *find_unit(const char *s) {
    size_t nu = sizeof units / sizeof units[0];
    for (size_t i = 0; i < nu; i++)
        if (!strcmp(s, units[i].name)) return &units[i];
    size_t len = strlen(s);
    for (int plural = 0; plural < 2; plural++) {
        size_t l = len - (size_t)plural;
        if (l < 4 || (plural && tolower((unsigned char)s[len - 1]) != 's')) continue;
        for (size_t i = 0; i < nu; i++)
            if (strlen(units[i].name) == l && strlen(units[i].name) >= 4 &&
                !strncasecmp(s, units[i].name, l))
                return &units[i];
    }
    return NULL;
}

/* Convert entry k of v (an OME-NGFF scale or translation on spatial axis
 * `axis` with unit `unit`) to whole nanometres in place. */
static int convert_unit(vec *v, int k, const char *axis, const char *unit, const char *what,
                        lb_error *err) {
    if (!unit[0]) return 0;
    const unit_def *u = find_unit(unit);
    if (!u)
        return lb__err(err, LB_EUNSUPPORTED,
                       "%s: unknown unit \"%s\" of the spatial axis \"%s\" (known: nanometer, "
                       "micrometer, millimeter, meter, angstrom and the other OME-NGFF length "
                       "units, nm, um, mm, ...)",
                       v->where, unit, axis);
    if (u->mul == 1 && u->div == 1) return 0; /* nanometres: funlib's rules apply */
    double x = v->dval[k] * u->mul / u->div, r = nearbyint(x);
    if (!(fabs(r) < 9.2e18))
        return lb__err(err, LB_ELIMIT, "%s: axis \"%s\": %s %.15g %s is out of range in nanometres",
                       v->where, axis, what, v->dval[k], unit);
    if (fabs(x - r) > 1e-9 * (fabs(r) > 1 ? fabs(r) : 1))
        return lb__err(err, LB_EFORMAT,
                       "%s: axis \"%s\": %s %.15g %s is %.10g nm, not a whole number of "
                       "nanometres (the world unit)",
                       v->where, axis, what, v->dval[k], unit, x);
    v->ival[k] = (int64_t)r;
    v->dval[k] = r;
    v->is_int[k] = 1;
    return 0;
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
    json_object *ms = lb__ome_multiscales(gattrs, NULL);
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

/* 1 if `dir` is a Zarr group (or array). */
static int is_zarr_node(const lb__dataset *ds, const char *dir) {
    const lb__format *f = lb__format_detect_group(ds->store, dir);
    if (f && f->ome) return 1;
    lb_error ignored = {0};
    return lb__format_detect(ds->store, dir, &f, &ignored) == 0 && f && f->ome;
}

/* Walk the enclosing groups of the dataset: up to the container root when
 * the path has a `*.zarr` container, else while the directories are Zarr
 * nodes, at most OME_MAX_LEVELS levels. */
static int ome_lookup(const lb__dataset *ds, ome_hit *h, int *hit, lb_error *err) {
    *hit = 0;
    memset(h, 0, sizeof *h);
    if (!ds->format->ome) return 0;
    const char *p = ds->path;
    size_t clen = lb__path_container_len(p);
    size_t cut = strlen(p);
    int rc = 0;
    for (int level = 0; !*hit && (clen > 0 || level < OME_MAX_LEVELS); level++) {
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
        rc = group_attrs(ds, dir, &g, err);
        if (!rc && g) {
            char file[WHERE_SIZE];
            snprintf(file, sizeof file, "%s/%s", dir, attrs_file(ds));
            rc = ome_match(g, file, p + k + 1, h, hit, err);
        }
        /* Outside a container, go further up only from a Zarr group. */
        int more = clen > 0 || is_zarr_node(ds, dir);
        json_object_put(g);
        free(dir);
        if (rc) return rc;
        if (!more) break;
        cut = k;
    }
    return 0;
}

/* ---- step 2: funlib's attribute keys --------------------------------------- */

/* Where a voxel size came from (the n5-viewer layout scales only a base
 * resolution). */
enum { VS_NONE = 0, VS_RESOLUTION, VS_SCALE, VS_PIXELRES, VS_TRANSFORM };

typedef struct attr_hit {
    vec vs, off;
    names axes;
    int vs_key;         /* VS_*                                        */
    int vs_from_parent; /* the voxel size is the parent group's        */
} attr_hit;

/* Voxel size / offset / axes from one attribute object (`file` names it).
 * `reverse`: the keys list dimensions fastest first (N5, order "F"). */
static int attrs_lookup(json_object *attrs, const char *file, int reverse, int parent,
                        attr_hit *h, lb_error *err) {
    char w[WHERE_SIZE];
    int rc = 0;
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
        int rev = reverse, key = VS_NONE;
        json_object *pr = lb__json_get(attrs, "pixelResolution");
        if ((o = lb__json_get(attrs, "resolution"))) {
            snprintf(w, sizeof w, "%s: resolution", file);
            key = VS_RESOLUTION;
        } else if ((o = lb__json_get(attrs, "scale"))) {
            snprintf(w, sizeof w, "%s: scale", file);
            key = VS_SCALE;
        } else if (pr && json_object_is_type(pr, json_type_array)) {
            o = pr; /* n5-viewer also writes a plain array */
            snprintf(w, sizeof w, "%s: pixelResolution", file);
            key = VS_PIXELRES;
        } else if ((o = lb__json_get(pr, "dimensions"))) {
            snprintf(w, sizeof w, "%s: pixelResolution.dimensions", file);
            key = VS_PIXELRES;
        } else if (t && (o = lb__json_get(t, "scale"))) {
            snprintf(w, sizeof w, "%s: transform.scale", file);
            rev = t_reverse;
            key = VS_TRANSFORM;
        }
        if (o) {
            rc = read_vec(o, w, &h->vs, err);
            if (rc) return rc;
            if (rev) reverse_vec(&h->vs);
            h->vs_key = key;
            h->vs_from_parent = parent;
        }
    }
    if (!h->off.found) {
        int rev = reverse;
        if ((o = lb__json_get(attrs, "offset"))) {
            snprintf(w, sizeof w, "%s: offset", file);
        } else if (t && (o = lb__json_get(t, "translate"))) {
            snprintf(w, sizeof w, "%s: transform.translate", file);
            rev = t_reverse;
        }
        if (o) {
            rc = read_vec(o, w, &h->off, err);
            if (rc) return rc;
            if (rev) reverse_vec(&h->off);
        }
    }
    if (!h->axes.found && (o = lb__json_get(attrs, "axes"))) {
        snprintf(w, sizeof w, "%s: axes", file);
        rc = read_names(o, w, &h->axes, err);
        if (rc) return rc;
        if (reverse) reverse_names(&h->axes);
    }
    return 0;
}

/* funlib's order for a Zarr array: the `order` attribute when there is one,
 * else the array's memory order. */
static int zarr_order_f(const lb__dataset *ds) {
    json_object *o = lb__json_get(ds->attrs, "order");
    if (o && json_object_is_type(o, json_type_string))
        return strcmp(json_object_get_string(o), "F") == 0;
    return ds->m.reverse_attrs;
}

/* ---- N5 scale pyramids (n5-viewer / neuroglancer layout) ------------------- */

/* k when the last segment of `path` is "s<k>", else -1. */
static int scale_level(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    if (b[0] != 's' || !b[1]) return -1;
    long k = 0;
    for (const char *q = b + 1; *q; q++) {
        if (*q < '0' || *q > '9' || k > 100000) return -1;
        k = k * 10 + (*q - '0');
    }
    return (int)k;
}

/* The downsampling factors that apply to the dataset's voxel size (see the
 * file comment); f->found = 0 when none apply. */
static int n5_factors(const lb__dataset *ds, json_object *parent, const char *pfile,
                      const attr_hit *at, vec *f, lb_error *err) {
    memset(f, 0, sizeof *f);
    char w[WHERE_SIZE + 32];
    int own_base = at->vs.found && !at->vs_from_parent && at->vs_key == VS_PIXELRES;
    int parent_base = at->vs.found && at->vs_from_parent &&
                      (at->vs_key == VS_PIXELRES || at->vs_key == VS_RESOLUTION);
    if (at->vs.found && !own_base && !parent_base) return 0;
    json_object *o = lb__json_get(ds->attrs, "downsamplingFactors");
    if (o) {
        snprintf(w, sizeof w, "%s/attributes.json: downsamplingFactors", ds->path);
    } else if (!own_base && parent) {
        int k = scale_level(ds->path);
        const char *key = lb__json_get(parent, "scales") ? "scales" : "downsamplingFactors";
        json_object *list = lb__json_get(parent, key);
        if (k < 0 || !list) return 0;
        if (!json_object_is_type(list, json_type_array))
            return lb__err(err, LB_EFORMAT, "%s: %s: expected an array of factor lists, found %s",
                           pfile, key, lb__json_type_name(list));
        if ((size_t)k >= json_object_array_length(list))
            return lb__err(err, LB_EFORMAT,
                           "%s: %s: has %zu entries, none for the scale level s%d (%s)", pfile,
                           key, json_object_array_length(list), k, ds->path);
        o = json_object_array_get_idx(list, (size_t)k);
        snprintf(w, sizeof w, "%s: %s[%d]", pfile, key, k);
    } else {
        return 0;
    }
    int rc = read_vec(o, w, f, err);
    if (rc) return rc;
    reverse_vec(f); /* N5 order */
    for (int i = 0; i < f->n; i++)
        if (!(f->dval[i] > 0))
            return lb__err(err, LB_EFORMAT, "%s[%d]: a downsampling factor must be > 0, found %g",
                           w, f->n - 1 - i, f->dval[i]);
    return 0;
}

/* vs *= factors, entry by entry (vs of ones when absent). */
static int apply_factors(vec *vs, const vec *f, lb_error *err) {
    if (!vs->found) {
        memset(vs, 0, sizeof *vs);
        vs->found = 1;
        vs->n = f->n;
        for (int i = 0; i < f->n; i++) {
            vs->ival[i] = 1;
            vs->dval[i] = 1;
            vs->is_int[i] = 1;
        }
        snprintf(vs->where, sizeof vs->where, "%s", f->where);
    } else if (vs->n != f->n) {
        return lb__err(err, LB_EFORMAT, "%s has %d entries but %s has %d", vs->where, vs->n,
                       f->where, f->n);
    } else {
        char w[WHERE_SIZE];
        snprintf(w, sizeof w, "%s", vs->where);
        snprintf(vs->where, sizeof vs->where, "%s times %s", w, f->where);
    }
    for (int i = 0; i < f->n; i++) {
        int64_t p;
        if (vs->is_int[i] && f->is_int[i] && !lb__mul_i64(vs->ival[i], f->ival[i], &p)) {
            vs->ival[i] = p;
        } else {
            vs->is_int[i] = 0;
        }
        vs->dval[i] *= f->dval[i];
    }
    return 0;
}

/* ---- conversion and validation --------------------------------------------- */

/* Integer value of entry i, truncated toward zero like funlib's int(). */
static int to_int(lb__geometry *a, const vec *v, int i, const char *what, int64_t *out,
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
        return warn(a, err, "%s %g truncated to %" PRId64 ", as funlib does (%s[%d])",
                              what, d, *out, v->where, i);
    return 0;
}

/* Default names: the leading (non-spatial) dimensions "c" or "s", "c"
 * (DaCapo's defaults), the spatial ones the last of z, y, x, then d0, d1, …
 * for extra leading spatial dimensions. */
static void default_axes(names *ax, int ndim, int dims) {
    static const char *const zyx[3] = {"z", "y", "x"};
    static const char *const sc[2] = {"s", "c"};
    memset(ax, 0, sizeof *ax);
    ax->n = ndim;
    int lead = ndim - dims;
    for (int i = 0; i < lead; i++) {
        snprintf(ax->name[i], sizeof ax->name[i], "%s", sc[2 - lead + i]);
        ax->kind[i] = !strcmp(sc[2 - lead + i], "c") ? AXIS_CHANNEL : AXIS_OTHER;
    }
    for (int i = 0; i < dims; i++) {
        int from_end = dims - i; /* 3 = z, 2 = y, 1 = x */
        if (from_end <= 3)
            snprintf(ax->name[lead + i], sizeof ax->name[0], "%s", zyx[3 - from_end]);
        else
            snprintf(ax->name[lead + i], sizeof ax->name[0], "d%d", i);
    }
}

/* "z, y, x" for the spatial axes of `a`. */
static void spatial_list(const names *a, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < a->n && len < size; i++) {
        if (a->kind[i] != AXIS_SPATIAL) continue;
        len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? ", " : "", a->name[i]);
    }
}

int lb__geometry_from_meta(const lb__dataset *ds, const char *const *axes_override, int n_axes,
                           lb__geometry *a, lb_error *err) {
    const int ndim = ds->ndim;
    const int n5 = ds->format->n5_conventions;
    memset(a, 0, sizeof *a);
    ome_hit ome;
    attr_hit at;
    names axes;
    memset(&at, 0, sizeof at);
    memset(&axes, 0, sizeof axes);
    json_object *parent = NULL;
    char *pdir = NULL;
    int hit = 0, rc;
    char file[WHERE_SIZE], pfile[WHERE_SIZE] = "";
    const char *srcdesc = "";

    rc = ome_lookup(ds, &ome, &hit, err);
    if (rc) goto fail;

    const vec *vs = NULL, *off = NULL;
    const names *meta_axes = NULL;
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
        /* Keep the spatial entries, in nanometres; without a scale the
         * voxel size is 1. */
        memset(&ome_vs, 0, sizeof ome_vs);
        memset(&ome_off, 0, sizeof ome_off);
        snprintf(ome_vs.where, sizeof ome_vs.where, "%s", ome.scale.where);
        snprintf(ome_off.where, sizeof ome_off.where, "%s", ome.translation.where);
        for (int i = 0; i < n; i++) {
            if (ome.axes.found && ome.axes.kind[i] != AXIS_SPATIAL) continue;
            int k = ome_vs.n++;
            ome_off.n++;
            ome_vs.dval[k] = ome.scale.found ? ome.scale.dval[i] : 1.0;
            ome_vs.ival[k] = ome.scale.found ? ome.scale.ival[i] : 1;
            ome_vs.is_int[k] = ome.scale.found ? ome.scale.is_int[i] : 1;
            ome_off.dval[k] = ome.translation.found ? ome.translation.dval[i] : 0.0;
            ome_off.ival[k] = ome.translation.found ? ome.translation.ival[i] : 0;
            ome_off.is_int[k] = ome.translation.found ? ome.translation.is_int[i] : 1;
            if (ome.axes.found) {
                const char *ax = ome.axes.name[i], *unit = ome.axes.unit[i];
                if (ome.scale.found &&
                    (rc = convert_unit(&ome_vs, k, ax, unit, "scale", err)))
                    goto fail;
                if (ome.translation.found &&
                    (rc = convert_unit(&ome_off, k, ax, unit, "translation", err)))
                    goto fail;
            }
        }
        ome_vs.found = ome.scale.found;
        ome_off.found = ome.translation.found;
        if (ome_vs.found) vs = &ome_vs;
        if (ome_off.found) off = &ome_off;
        srcdesc = " (from OME-NGFF multiscales)";
    }

    /* Step 2 only fills what OME-NGFF did not give. */
    if (!hit || !vs || !off || !meta_axes) {
        /* funlib reverses these keys for N5 and for order "F". */
        int reverse = n5 || zarr_order_f(ds);
        if (hit) {
            if (vs) at.vs = *vs;
            if (off) at.off = *off;
            if (meta_axes) at.axes = *meta_axes;
        }
        snprintf(file, sizeof file, "%s/%s", ds->path, attrs_file(ds));
        rc = attrs_lookup(ds->attrs, file, reverse, 0, &at, err);
        if (rc) goto fail;
        size_t clen = lb__path_container_len(ds->path);
        if ((!at.vs.found || !at.off.found || !at.axes.found) &&
            (clen == 0 || strlen(ds->path) > clen)) {
            pdir = lb__path_parent(ds->path, err);
            if (!pdir) {
                rc = LB_ENOMEM;
                goto fail;
            }
            rc = group_attrs(ds, pdir, &parent, err);
            if (rc) goto fail;
            if (parent) {
                snprintf(pfile, sizeof pfile, "%s/%s", pdir, attrs_file(ds));
                rc = attrs_lookup(parent, pfile, reverse, 1, &at, err);
                if (rc) goto fail;
            }
        }
        if (n5 && !hit) {
            vec f;
            rc = n5_factors(ds, parent, pfile, &at, &f, err);
            if (!rc && f.found) rc = apply_factors(&at.vs, &f, err);
            if (rc) goto fail;
        }
        /* Zarr v3 names its dimensions in zarr.json. */
        if (!at.axes.found && ndim > 0) {
            int all = 1;
            for (int k = 0; k < ndim; k++)
                all &= ds->m.dim_names[k] && *ds->m.dim_names[k] &&
                       strlen(ds->m.dim_names[k]) < sizeof at.axes.name[0];
            if (all) {
                at.axes.found = 1;
                at.axes.n = ndim;
                snprintf(at.axes.where, sizeof at.axes.where, "%s/%s: dimension_names",
                         ds->path, ds->format->meta_file);
                for (int k = 0; k < ndim; k++) {
                    at.axes.kind[k] = kind_of_name(ds->m.dim_names[k]);
                    snprintf(at.axes.name[k], sizeof at.axes.name[k], "%s",
                             at.axes.kind[k] == AXIS_CHANNEL ? "c" : ds->m.dim_names[k]);
                }
            }
        }
        vs = at.vs.found ? &at.vs : NULL;
        off = at.off.found ? &at.off : NULL;
        meta_axes = at.axes.found ? &at.axes : NULL;
    }

    /* Axis names: the override wins over metadata (its kinds follow the
     * names, as DaCapo's do). */
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
            axes.kind[i] = kind_of_name(axes.name[i]);
        }
    } else if (meta_axes) {
        axes = *meta_axes;
    }
    const int axes_code = axes_override && n_axes > 0 ? LB_EINVAL : LB_EFORMAT;

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
        for (int i = 0; i < axes.n; i++) dims += axes.kind[i] == AXIS_SPATIAL;
    } else {
        dims = ndim < 3 ? ndim : 3; /* funlib >= 0.3 */
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
            rc = lb__err(err, axes_code, "%s has %d entries, the array %s has %d dimension%s",
                         axes.where, axes.n, ds->path, ndim, ndim == 1 ? "" : "s");
            goto fail;
        }
        int nspatial = 0;
        for (int i = 0; i < ndim; i++) {
            for (int j = 0; j < i; j++)
                if (!strcmp(axes.name[i], axes.name[j])) {
                    rc = lb__err(err, axes_code, "%s: axis \"%s\" appears twice", axes.where,
                                 axes.name[i]);
                    goto fail;
                }
            nspatial += axes.kind[i] == AXIS_SPATIAL;
        }
        if (nspatial != dims) {
            /* The voxel size (or offset) and the axes disagree on how many
             * axes are spatial: name both lengths. */
            char sp[600];
            spatial_list(&axes, sp, sizeof sp);
            rc = lb__err(err, axes_code,
                         "%s has %d entr%s but %s has %d spatial ax%s (%s)%s; the voxel size "
                         "and offset need one entry per spatial axis",
                         vs ? vs->where : off->where, dims, dims == 1 ? "y" : "ies", axes.where,
                         nspatial, nspatial == 1 ? "is" : "es", sp,
                         ndim > nspatial ? " besides its non-spatial axes" : "");
            goto fail;
        }
        /* Then exactly the first `lead` axes are the non-spatial ones. */
        for (int i = lead; i < ndim; i++) {
            if (axes.kind[i] == AXIS_SPATIAL) continue;
            int first = 0;
            while (axes.kind[first] != AXIS_SPATIAL) first++;
            rc = lb__err(err, axes_code,
                         "%s: the %s axis \"%s\" comes after the spatial axis \"%s\"; "
                         "non-spatial axes (channel, time) must come first",
                         axes.where, axes.kind[i] == AXIS_CHANNEL ? "channel" : "non-spatial",
                         axes.name[i], axes.name[first]);
            goto fail;
        }
    } else {
        if (lead > 2) {
            rc = lb__err(err, LB_EUNSUPPORTED,
                         "%s: %d dimensions but a voxel size of %d entries; name the %d leading "
                         "non-spatial axes in an \"axes\" attribute",
                         ds->path, ndim, dims, lead);
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
        rc = warn(a, err, "offset %s is not a multiple of the voxel size %s; rounded "
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
    for (int i = 0; i < ndim; i++) snprintf(a->axes[i], sizeof a->axes[i], "%s", axes.name[i]);
    memcpy(a->voxel_size, v, (size_t)dims * sizeof *v);
    a->roi = roi;
    a->num_channels = -1;
    for (int i = 0; i < lead; i++)
        if (axes.kind[i] == AXIS_CHANNEL) {
            a->num_channels = ds->shape[i];
            break;
        }
    rc = 0;
fail:
    json_object_put(parent);
    free(pdir);
    if (rc) lb__geometry_clear(a);
    return rc;
}
