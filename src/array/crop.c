/*
 * crop.c — open a CellMap crop: the crop group's `cellmap.annotation`
 * (class_names), each class group's annotation type and multiscales, each
 * level array's geometry and complement counts; validated strictly, with
 * the file and JSON path in every refusal. The validators are shared with
 * the linter (crop_check.c) and the mask over a crop's `all` array.
 *
 * Decisions beyond the schema: inside `cellmap.annotation` objects, keys the
 * schema does not define are refused (a typo would otherwise silently change
 * nothing); a level without its own `cellmap.annotation` takes its group's;
 * one that has one must agree with the group's encoding; a class name the
 * class table does not know is kept (it has no id) with a warning.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "array/array.h"
#include "array/crop.h"
#include "core/json.h"
#include "core/path.h"
#include "format/common.h"
#include "format/format.h"
#include "format/ome.h"

#define W 1400 /* room for "<file>: <json path>" */

const char *const lb__state_names[3] = {"absent", "present", "unknown"};

static const char *const crop_keys[] = {
    "version",    "name",       "description",   "created_by",   "created_with",
    "start_date", "end_date",   "duration_days", "protocol_uri", "class_names"};
static const char *const class_group_keys[] = {"class_name", "annotation_type"};
static const char *const class_array_keys[] = {"class_name", "annotation_type",
                                               "complement_counts"};

/* ---- small JSON helpers ---------------------------------------------------- */

/* Refuse keys of `o` not in `keys`. */
static int known_keys(json_object *o, const char *where, const char *const *keys, size_t n,
                      lb_error *err) {
    json_object_object_foreach(o, key, val) {
        (void)val;
        size_t i = 0;
        while (i < n && strcmp(key, keys[i]) != 0) i++;
        if (i < n) continue;
        char known[512];
        size_t len = 0;
        known[0] = '\0';
        for (i = 0; i < n && len < sizeof known; i++)
            len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "",
                                    keys[i]);
        return lb__err(err, LB_EFORMAT, "%s: unknown key \"%.80s\" (the schema has %s)", where,
                       key, known);
    }
    return 0;
}

static int need_object(json_object *o, const char *where, lb_error *err) {
    if (o && json_object_is_type(o, json_type_object)) return 0;
    return lb__err(err, LB_EFORMAT, "%s: expected an object, found %s", where,
                   o ? lb__json_type_name(o) : "null");
}

/* An optional member that is a string or null. */
static int opt_string(json_object *obj, const char *key, const char *where, const char **out,
                      lb_error *err) {
    json_object *o = NULL;
    *out = NULL;
    if (!json_object_object_get_ex(obj, key, &o) || !o) return 0;
    char w[W + 64];
    snprintf(w, sizeof w, "%s.%s", where, key);
    return lb__json_str(o, w, out, err);
}

/* `cellmap.annotation` of `attrs` (borrowed) or NULL; *what says which
 * level is missing for messages. */
static json_object *annotation_of(json_object *attrs, const char **what) {
    json_object *cm = NULL, *an = NULL;
    *what = "cellmap";
    if (!attrs || !json_object_object_get_ex(attrs, "cellmap", &cm)) return NULL;
    *what = "cellmap.annotation";
    if (!cm || !json_object_is_type(cm, json_type_object) ||
        !json_object_object_get_ex(cm, "annotation", &an))
        return NULL;
    return an;
}

/* The `cellmap` and `cellmap.annotation` objects, validated as objects. */
static int annotation_object(json_object *attrs, const char *file, json_object **out,
                             lb_error *err) {
    char w[W];
    json_object *cm = lb__json_get(attrs, "cellmap");
    snprintf(w, sizeof w, "%s: cellmap", file);
    if (!cm) return lb__err(err, LB_EFORMAT, "%s: missing", w);
    int rc = need_object(cm, w, err);
    if (rc) return rc;
    json_object *an = NULL;
    if (!json_object_object_get_ex(cm, "annotation", &an))
        return lb__err(err, LB_EFORMAT, "%s.annotation: missing", w);
    snprintf(w, sizeof w, "%s: cellmap.annotation", file);
    rc = need_object(an, w, err);
    if (rc) return rc;
    *out = an;
    return 0;
}

/* ---- annotation types ---------------------------------------------------- */

int lb__encoding_parse(json_object *o, const char *where, lb__encoding *out, lb_error *err) {
    static const char *const keys[] = {"type", "encoding"};
    memset(out, 0, sizeof *out);
    int rc = need_object(o, where, err);
    if (!rc) rc = known_keys(o, where, keys, 2, err);
    if (rc) return rc;
    json_object *t = NULL, *e = NULL;
    const char *type;
    char w[W + 64];
    rc = lb__json_require(o, "type", where, &t, err);
    snprintf(w, sizeof w, "%s.type", where);
    if (!rc) rc = lb__json_str(t, w, &type, err);
    if (rc) return rc;
    if (!strcmp(type, "instance_segmentation"))
        out->instance = 1;
    else if (strcmp(type, "semantic_segmentation") != 0)
        return lb__err(err, LB_EFORMAT, "%s: unknown annotation type \"%.80s\" (expected "
                       "semantic_segmentation or instance_segmentation)", w, type);
    rc = lb__json_require(o, "encoding", where, &e, err);
    snprintf(w, sizeof w, "%s.encoding", where);
    if (!rc) rc = need_object(e, w, err);
    if (rc) return rc;
    json_object_object_foreach(e, key, val) {
        int k = !strcmp(key, "absent")    ? LB__ABSENT
                : !strcmp(key, "present") ? LB__PRESENT
                : !strcmp(key, "unknown") ? LB__UNKNOWN
                                          : -1;
        if (k < 0)
            return lb__err(err, LB_EFORMAT, "%s: unknown key \"%.80s\" (an encoding has absent, "
                           "present and unknown)", w, key);
        if (k == LB__PRESENT && out->instance)
            return lb__err(err, LB_EFORMAT, "%s: an instance_segmentation encoding has no "
                           "\"present\" value (every value other than absent and unknown is "
                           "an instance id)", w);
        char wk[W + 96];
        snprintf(wk, sizeof wk, "%s.%s", w, key);
        rc = lb__json_id(val, wk, &out->value[k], err);
        if (rc) return rc;
        out->has[k] = 1;
    }
    for (int a = 0; a < 3; a++)
        for (int b = a + 1; b < 3; b++)
            if (out->has[a] && out->has[b] && out->value[a].bits == out->value[b].bits &&
                out->value[a].negative == out->value[b].negative) {
                char v[32];
                lb_id_format(out->value[a], v, sizeof v);
                return lb__err(err, LB_EFORMAT, "%s: \"%s\" and \"%s\" both use the value %s: "
                               "a voxel's state would be ambiguous", w, lb__state_names[a],
                               lb__state_names[b], v);
            }
    return 0;
}

int lb__encoding_equal(const lb__encoding *a, const lb__encoding *b) {
    if (a->instance != b->instance) return 0;
    for (int k = 0; k < 3; k++) {
        if (a->has[k] != b->has[k]) return 0;
        if (a->has[k] && (a->value[k].bits != b->value[k].bits ||
                          a->value[k].negative != b->value[k].negative))
            return 0;
    }
    return 1;
}

void lb__encoding_describe(const lb__encoding *e, char *buf, size_t size) {
    static const int order[3] = {LB__ABSENT, LB__PRESENT, LB__UNKNOWN};
    size_t len = 0;
    if (size) buf[0] = '\0';
    for (int i = 0; i < 3 && len < size; i++) {
        int k = order[i];
        if (!e->has[k]) continue;
        char v[32];
        lb_id_format(e->value[k], v, sizeof v);
        len += (size_t)snprintf(buf + len, size - len, "%s%s %s", len ? ", " : "",
                                lb__state_names[k], v);
    }
    if (len == 0 && size) snprintf(buf, size, "(empty)");
}

/* ---- the crop group -------------------------------------------------------- */

int lb__crop_attrs_claim(json_object *attrs) {
    const char *what;
    json_object *an = annotation_of(attrs, &what);
    return an && json_object_is_type(an, json_type_object) &&
           json_object_object_get_ex(an, "class_names", NULL);
}

void lb__crop_attrs_clear(lb__crop_attrs *a) {
    free(a->class_names);
    memset(a, 0, sizeof *a);
}

static int string_list(json_object *o, const char *where, lb_error *err) {
    if (!o) return 0;
    if (!json_object_is_type(o, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s: expected an array of strings, found %s", where,
                       lb__json_type_name(o));
    for (size_t i = 0; i < json_object_array_length(o); i++) {
        char w[W + 32];
        const char *s;
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        int rc = lb__json_str(json_object_array_get_idx(o, i), w, &s, err);
        if (rc) return rc;
    }
    return 0;
}

int lb__crop_attrs_parse(json_object *attrs, const char *file, lb__crop_attrs *out,
                         lb_error *err) {
    memset(out, 0, sizeof *out);
    json_object *an = NULL;
    char w[W], wk[W + 64];
    int rc = annotation_object(attrs, file, &an, err);
    if (rc) return rc;
    snprintf(w, sizeof w, "%s: cellmap.annotation", file);
    rc = known_keys(an, w, crop_keys, sizeof crop_keys / sizeof *crop_keys, err);
    if (rc) return rc;
    const char *s;
    rc = opt_string(an, "version", w, &out->version, err);
    if (!rc) rc = opt_string(an, "name", w, &out->name, err);
    if (!rc) rc = opt_string(an, "description", w, &s, err);
    if (!rc) rc = opt_string(an, "start_date", w, &s, err);
    if (!rc) rc = opt_string(an, "end_date", w, &s, err);
    if (!rc) rc = opt_string(an, "protocol_uri", w, &s, err);
    if (rc) return rc;
    static const char *const lists[] = {"created_by", "created_with"};
    for (int i = 0; i < 2; i++) {
        snprintf(wk, sizeof wk, "%s.%s", w, lists[i]);
        rc = string_list(lb__json_get(an, lists[i]), wk, err);
        if (rc) return rc;
    }
    json_object *d = lb__json_get(an, "duration_days");
    if (d) {
        int64_t v;
        snprintf(wk, sizeof wk, "%s.duration_days", w);
        rc = lb__json_int64(d, wk, &v, err);
        if (rc) return rc;
        if (v < 0) return lb__err(err, LB_EFORMAT, "%s: expected a number of days >= 0", wk);
    }
    json_object *cn = NULL;
    rc = lb__json_require(an, "class_names", w, &cn, err);
    if (rc) return rc;
    snprintf(wk, sizeof wk, "%s.class_names", w);
    if (!cn || !json_object_is_type(cn, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s: expected an array of class names, found %s", wk,
                       cn ? lb__json_type_name(cn) : "null");
    size_t n = json_object_array_length(cn);
    out->class_names = lb__calloc(n ? n : 1, sizeof *out->class_names, "class names", err);
    if (!out->class_names) return LB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char wi[W + 96];
        snprintf(wi, sizeof wi, "%s[%zu]", wk, i);
        json_object *e = json_object_array_get_idx(cn, i);
        rc = lb__json_str(e, wi, &s, err);
        if (!rc && strlen(s) != (size_t)json_object_get_string_len(e))
            rc = lb__err(err, LB_EFORMAT, "%s: the name contains a NUL byte", wi);
        if (rc) goto fail;
        const char *why = lb__crop_name_problem(s);
        if (why) {
            rc = lb__err(err, LB_EFORMAT, "%s: \"%.80s\" cannot name a class group: %s", wi, s,
                         why);
            goto fail;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(out->class_names[j], s)) {
                rc = lb__err(err, LB_EFORMAT, "%s: \"%.80s\" is listed twice (also at [%zu])",
                             wi, s, j);
                goto fail;
            }
        out->class_names[i] = s;
    }
    out->n_classes = n;
    return 0;
fail:
    lb__crop_attrs_clear(out);
    return rc;
}

/* ---- class groups and arrays ---------------------------------------------- */

static int class_name_field(json_object *an, const char *w, const char *class_name,
                            lb_error *err) {
    json_object *o = NULL;
    const char *s;
    char wk[W + 64];
    int rc = lb__json_require(an, "class_name", w, &o, err);
    snprintf(wk, sizeof wk, "%s.class_name", w);
    if (!rc) rc = lb__json_str(o, wk, &s, err);
    if (rc) return rc;
    if (strcmp(s, class_name) != 0)
        return lb__err(err, LB_EFORMAT, "%s: \"%.80s\", but the group is the class \"%s\"", wk,
                       s, class_name);
    return 0;
}

int lb__class_group_attrs_parse(json_object *attrs, const char *file, const char *class_name,
                                lb__encoding *out, lb_error *err) {
    json_object *an = NULL, *t = NULL;
    char w[W], wk[W + 64];
    int rc = annotation_object(attrs, file, &an, err);
    if (rc) return rc;
    snprintf(w, sizeof w, "%s: cellmap.annotation", file);
    rc = known_keys(an, w, class_group_keys, 2, err);
    if (!rc) rc = class_name_field(an, w, class_name, err);
    if (!rc) rc = lb__json_require(an, "annotation_type", w, &t, err);
    if (rc) return rc;
    snprintf(wk, sizeof wk, "%s.annotation_type", w);
    return lb__encoding_parse(t, wk, out, err);
}

int lb__class_array_attrs_parse(json_object *attrs, const char *file, const char *class_name,
                                lb__encoding *enc, lb__counts *counts, int *found,
                                lb_error *err) {
    memset(counts, 0, sizeof *counts);
    *found = 0;
    const char *what;
    if (!annotation_of(attrs, &what) && !lb__json_get(attrs, "cellmap")) return 0;
    json_object *an = NULL, *t = NULL;
    char w[W], wk[W + 64];
    int rc = annotation_object(attrs, file, &an, err);
    if (rc) return rc;
    *found = 1;
    snprintf(w, sizeof w, "%s: cellmap.annotation", file);
    rc = known_keys(an, w, class_array_keys, 3, err);
    if (!rc) rc = class_name_field(an, w, class_name, err);
    if (!rc) rc = lb__json_require(an, "annotation_type", w, &t, err);
    if (rc) return rc;
    snprintf(wk, sizeof wk, "%s.annotation_type", w);
    rc = lb__encoding_parse(t, wk, enc, err);
    if (rc) return rc;
    json_object *cc = NULL;
    if (!json_object_object_get_ex(an, "complement_counts", &cc) || !cc) return 0;
    snprintf(wk, sizeof wk, "%s.complement_counts", w);
    rc = need_object(cc, wk, err);
    if (rc) return rc;
    json_object_object_foreach(cc, key, val) {
        int k = !strcmp(key, "absent")    ? LB__ABSENT
                : !strcmp(key, "present") ? LB__PRESENT
                : !strcmp(key, "unknown") ? LB__UNKNOWN
                                          : -1;
        if (k < 0)
            return lb__err(err, LB_EFORMAT, "%s: unknown key \"%.80s\" (complement counts are "
                           "absent, unknown and present)", wk, key);
        char wc[W + 160];
        lb_id v;
        snprintf(wc, sizeof wc, "%s.%s", wk, key);
        rc = lb__json_id(val, wc, &v, err);
        if (rc) return rc;
        if (v.negative) return lb__err(err, LB_EFORMAT, "%s: expected a count >= 0", wc);
        counts->has[k] = 1;
        counts->n[k] = v.bits;
    }
    counts->given = 1;
    return 0;
}

/* ---- group attributes and multiscales --------------------------------------- */

int lb__group_attrs_any(lb__store *s, const char *dir, json_object **out, const char **file,
                        lb_error *err) {
    *out = NULL;
    if (file) *file = ".zattrs";
    const lb__format *f = lb__format_detect_group(s, dir);
    if (f) {
        if (file) *file = f->attrs_file;
        return f->group_attrs(s, dir, out, err);
    }
    /* No group document: attributes alone still say what the group is. */
    for (int i = 0; i < lb__n_formats; i++) {
        int rc = lb__formats[i]->group_attrs(s, dir, out, err);
        if (rc) return rc;
        if (*out) {
            if (file) *file = lb__formats[i]->attrs_file;
            return 0;
        }
    }
    return 0;
}

static const char *path_problem(const char *p) {
    if (!*p) return "it is empty";
    if (*p == '/') return "it is absolute";
    if (strchr(p, '\\')) return "it contains a backslash";
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0) return "it has an empty segment";
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return "it has a \".\" or \"..\" segment";
        if (!e) break;
        s = e + 1;
    }
    if (p[strlen(p) - 1] == '/') return "it ends with '/'";
    for (const unsigned char *c = (const unsigned char *)p; *c; c++)
        if (*c < 0x20) return "it contains a control character";
    return NULL;
}

int lb__multiscale_paths(json_object *attrs, const char *file, const char ***paths, size_t *n,
                         lb_error *err) {
    *paths = NULL;
    *n = 0;
    json_object *ms = lb__ome_multiscales(attrs, NULL);
    if (!ms) return 0;
    char w[W], wd[W + 64];
    snprintf(w, sizeof w, "%s: multiscales", file);
    if (!json_object_is_type(ms, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s: expected an array, found %s", w,
                       lb__json_type_name(ms));
    if (json_object_array_length(ms) == 0)
        return lb__err(err, LB_EFORMAT, "%s: empty (expected one multiscale image)", w);
    json_object *m0 = json_object_array_get_idx(ms, 0), *ds = NULL;
    snprintf(wd, sizeof wd, "%s[0]", w);
    int rc = need_object(m0, wd, err);
    if (!rc) rc = lb__json_require(m0, "datasets", wd, &ds, err);
    if (rc) return rc;
    snprintf(wd, sizeof wd, "%s[0].datasets", w);
    if (!ds || !json_object_is_type(ds, json_type_array) || json_object_array_length(ds) == 0)
        return lb__err(err, LB_EFORMAT, "%s: expected a non-empty array of datasets, found %s",
                       wd, ds ? lb__json_type_name(ds) : "null");
    size_t nd = json_object_array_length(ds);
    const char **out = lb__calloc(nd, sizeof *out, "multiscale paths", err);
    if (!out) return LB_ENOMEM;
    for (size_t i = 0; i < nd; i++) {
        char wi[W + 96], wp[W + 128];
        snprintf(wi, sizeof wi, "%s[%zu]", wd, i);
        snprintf(wp, sizeof wp, "%s.path", wi);
        json_object *e = json_object_array_get_idx(ds, i), *p = NULL;
        const char *s;
        rc = need_object(e, wi, err);
        if (!rc) rc = lb__json_require(e, "path", wi, &p, err);
        if (!rc) rc = lb__json_str(p, wp, &s, err);
        if (!rc) {
            const char *why = path_problem(s);
            if (why) rc = lb__err(err, LB_EFORMAT, "%s: \"%.80s\": %s", wp, s, why);
        }
        for (size_t j = 0; !rc && j < i; j++)
            if (!strcmp(out[j], s))
                rc = lb__err(err, LB_EFORMAT, "%s: \"%.80s\" is listed twice", wp, s);
        if (rc) {
            free(out);
            return rc;
        }
        out[i] = s;
    }
    *paths = out;
    *n = nd;
    return 0;
}

/* ---- opening a crop ------------------------------------------------------------ */

static int crop_warn(lb_crop *c, lb_error *err, const char *fmt, ...) LB__PRINTF(3, 4);
static int crop_warn(lb_crop *c, lb_error *err, const char *fmt, ...) {
    char msg[LB_ERROR_MESSAGE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char **w = realloc(c->warnings, ((size_t)c->n_warnings + 1) * sizeof *w);
    if (!w) return lb__err(err, LB_ENOMEM, "out of memory recording a warning");
    c->warnings = w;
    w[c->n_warnings] = lb__strdup(msg, err);
    if (!w[c->n_warnings]) return LB_ENOMEM;
    c->n_warnings++;
    return 0;
}

char *lb__crop_url(const lb_crop *c, const char *rel, lb_error *err) {
    return lb__path_join(c->url, rel, err);
}

void lb_crop_free(lb_crop *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        lb__crop_class *k = &c->cls[i];
        for (int l = 0; l < k->n_levels; l++) {
            free(k->levels[l].path);
            free(k->levels[l].url);
        }
        free(k->levels);
        free(k->name);
    }
    free(c->cls);
    for (int i = 0; i < c->n_warnings; i++) free(c->warnings[i]);
    free(c->warnings);
    lb_classes_free(c->classes);
    lb__store_free(c->store);
    free(c->path);
    free(c->url);
    free(c->shown);
    free(c->name);
    free(c->version);
    free(c->all_path);
    json_object_put(c->attrs);
    free(c);
}

/* 1 if the id fits the dtype. */
static int value_fits(lb_id v, lb_dtype dt) { return lb_id_fits(v, dt); }

/* Open one level array and record what the crop needs of it. */
static int open_level(lb_crop *c, lb__crop_class *k, const char *rel, lb__crop_level *lv,
                      lb_error *err) {
    char relpath[1200];
    snprintf(relpath, sizeof relpath, "%s/%s", k->name, rel);
    lv->path = lb__strdup(rel, err);
    lv->url = lb__crop_url(c, relpath, err);
    if (!lv->path || !lv->url) return LB_ENOMEM;
    lb_array *a = NULL;
    int rc = lb_array_open(lv->url, LB_OPEN_READONLY, NULL, 0, &a, err);
    if (rc) return rc;
    char file[W];
    snprintf(file, sizeof file, "%s/%s", a->ds->path, a->ds->format->attrs_file);
    if (!lb_dtype_is_integer(a->dtype)) {
        rc = lb__err(err, LB_EFORMAT, "%s: class arrays hold integers, this one is %s",
                     a->ds->path, lb_dtype_name(a->dtype));
        goto done;
    }
    if (a->ndim != a->dims) {
        rc = lb__err(err, LB_EFORMAT, "%s: %d dimensions of which %d spatial: a class array "
                     "has no channel axis", a->ds->path, a->ndim, a->dims);
        goto done;
    }
    for (int s = 0; s < 3; s++) {
        if (!k->enc.has[s] || value_fits(k->enc.value[s], a->dtype)) continue;
        char v[32];
        lb_id_format(k->enc.value[s], v, sizeof v);
        rc = lb__err(err, LB_EFORMAT, "%s: the encoding's %s value %s does not fit the array's "
                     "dtype %s", a->ds->path, lb__state_names[s], v, lb_dtype_name(a->dtype));
        goto done;
    }
    lb__encoding enc;
    int found;
    rc = lb__class_array_attrs_parse(a->attrs, file, k->name, &enc, &lv->counts, &found, err);
    if (rc) goto done;
    if (found && !lb__encoding_equal(&enc, &k->enc)) {
        char e1[160], e2[160];
        lb__encoding_describe(&enc, e1, sizeof e1);
        lb__encoding_describe(&k->enc, e2, sizeof e2);
        rc = lb__err(err, LB_EFORMAT, "%s: cellmap.annotation.annotation_type (%s %s) differs "
                     "from its class group's (%s %s)", file,
                     enc.instance ? "instance" : "semantic", e1,
                     k->enc.instance ? "instance" : "semantic", e2);
        goto done;
    }
    lv->ndim = a->ndim;
    lv->dims = a->dims;
    memcpy(lv->shape, a->shape, sizeof lv->shape);
    memcpy(lv->chunks, lb_array_chunks(a), (size_t)a->ndim * sizeof *lv->chunks);
    memcpy(lv->voxel_size, a->voxel_size, sizeof lv->voxel_size);
    lv->roi = a->roi;
    lv->dtype = a->dtype;
    for (int s = 0; s < 3; s++) lv->cc[s] = lv->counts.has[s] ? (int64_t)lv->counts.n[s] : -1;
    /* Downsampled levels: CellMap shifts their translation by half a voxel
     * (voxel centres), which the geometry reader rounds back to the finest
     * level's corner and would warn about for every level; `check` judges
     * pyramids instead. */
    for (int i = 0; i < a->n_warnings && !rc && !strcmp(rel, k->levels[0].path); i++)
        rc = crop_warn(c, err, "%s", a->warnings[i]);
done:
    lb_array_free(a);
    return rc;
}

static int open_class(lb_crop *c, lb__crop_class *k, lb_error *err) {
    char *dir = lb__path_join(c->path, k->name, err);
    if (!dir) return LB_ENOMEM;
    json_object *attrs = NULL;
    const char *fname;
    const char **paths = NULL;
    size_t np = 0;
    char file[W];
    int rc = lb__group_attrs_any(c->store, dir, &attrs, &fname, err);
    if (rc) goto done;
    snprintf(file, sizeof file, "%s/%s", dir, fname);
    if (!attrs) {
        int kind = lb__store_kind(c->store, dir);
        rc = lb__err(err, LB_ENOTFOUND, "%s: class \"%s\" is listed in class_names but %s",
                     dir, k->name, kind == LB__KEY_NONE ? "the crop has no group of that name"
                                                       : "its group has no attributes");
        goto done;
    }
    rc = lb__class_group_attrs_parse(attrs, file, k->name, &k->enc, err);
    if (rc) goto done;
    rc = lb__multiscale_paths(attrs, file, &paths, &np, err);
    if (rc) goto done;
    if (np == 0) {
        rc = lb__err(err, LB_EFORMAT, "%s: multiscales: missing (a class group is an OME-NGFF "
                     "multiscale group listing its arrays s0, s1, ...)", file);
        goto done;
    }
    if (np > 64) {
        rc = lb__err(err, LB_ELIMIT, "%s: multiscales[0].datasets: %zu levels, at most 64", file,
                     np);
        goto done;
    }
    k->levels = lb__calloc(np, sizeof *k->levels, "class levels", err);
    if (!k->levels) {
        rc = LB_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < np && !rc; i++) {
        k->n_levels = (int)i + 1;
        rc = open_level(c, k, paths[i], &k->levels[i], err);
    }
    if (!rc && k->levels[0].dims != 0)
        for (int i = 1; i < k->n_levels && !rc; i++)
            if (k->levels[i].dims != k->levels[0].dims)
                rc = lb__err(err, LB_EFORMAT, "%s: %s has %d dimensions, %s %d", file,
                             k->levels[i].path, k->levels[i].dims, k->levels[0].path,
                             k->levels[0].dims);
done:
    free(paths);
    json_object_put(attrs);
    free(dir);
    return rc;
}

/* The dense ids: `all/<finest level>`, when there. Problems are warnings:
 * `all` is not needed to compute anything over a crop. */
static int find_all(lb_crop *c, lb_error *err) {
    char *dir = lb__path_join(c->path, "all", err);
    if (!dir) return LB_ENOMEM;
    json_object *attrs = NULL;
    const char **paths = NULL;
    size_t np = 0;
    lb_error local = {0};
    const char *fname;
    int rc = 0;
    if (lb__group_attrs_any(c->store, dir, &attrs, &fname, &local) == 0 && attrs) {
        char file[W];
        snprintf(file, sizeof file, "%s/%s", dir, fname);
        if (lb__multiscale_paths(attrs, file, &paths, &np, &local) != 0)
            rc = crop_warn(c, err, "%s", local.message);
    }
    const char *first = np ? paths[0] : "s0";
    char rel[600];
    snprintf(rel, sizeof rel, "all/%s", first);
    char *key = lb__path_join(c->path, rel, err);
    const lb__format *f = NULL;
    if (key && !rc) {
        lb_error e2 = {0};
        if (lb__format_detect(c->store, key, &f, &e2) == 0 && f) {
            c->all_path = lb__strdup(rel, err);
            if (!c->all_path) rc = LB_ENOMEM;
        }
    } else if (!key) {
        rc = LB_ENOMEM;
    }
    free(key);
    free(paths);
    json_object_put(attrs);
    free(dir);
    return rc;
}

int lb_crop_probe(const char *path) {
    lb__store *s = NULL;
    char *p = NULL;
    json_object *attrs = NULL;
    int yes = 0;
    if (path && *path && lb__store_open(path, &s, &p, NULL) == 0 &&
        lb__group_attrs_any(s, p, &attrs, NULL, NULL) == 0)
        yes = lb__crop_attrs_claim(attrs);
    json_object_put(attrs);
    free(p);
    lb__store_free(s);
    return yes;
}

int lb_crop_open(const char *path, const lb_classes *classes, lb_crop **out, lb_error *err) {
    if (!out) return lb__err(err, LB_EINVAL, "lb_crop_open: no output pointer");
    *out = NULL;
    if (!path || !*path) return lb__err(err, LB_EINVAL, "lb_crop_open: no path given");
    lb_crop *c = lb__calloc(1, sizeof *c, "a crop", err);
    if (!c) return LB_ENOMEM;
    json_object *attrs = NULL;
    lb__crop_attrs ca;
    memset(&ca, 0, sizeof ca);
    const char *fname;
    char file[W];
    int rc;
    size_t ul = strlen(path);
    while (ul > 1 && path[ul - 1] == '/') ul--;
    c->url = lb__malloc(ul + 1, "a crop", err);
    if (!c->url) {
        rc = LB_ENOMEM;
        goto fail;
    }
    memcpy(c->url, path, ul);
    c->url[ul] = '\0';
    c->shown = lb__malloc(ul + 1, "a crop", err);
    if (!c->shown) {
        rc = LB_ENOMEM;
        goto fail;
    }
    lb__url_shown(c->url, c->shown, ul + 1);
    rc = lb__store_open(c->url, &c->store, &c->path, err);
    if (rc) goto fail;
    rc = classes ? lb__classes_copy(classes, &c->classes, err)
                 : lb_classes_builtin(&c->classes, err);
    if (rc) goto fail;
    rc = lb__group_attrs_any(c->store, c->path, &attrs, &fname, err);
    if (rc) goto fail;
    snprintf(file, sizeof file, "%s/%s", c->path, fname);
    if (!attrs) {
        int kind = lb__store_kind(c->store, c->path);
        rc = lb__err(err, LB_ENOTFOUND, "%s: %s", c->path,
                     kind == LB__KEY_NONE ? "no such crop (nothing is there)"
                                          : "not a CellMap crop: the group has no attributes");
        goto fail;
    }
    if (!lb__crop_attrs_claim(attrs)) {
        rc = lb__err(err, LB_ENOTFOUND, "%s: not a CellMap crop: no "
                     "cellmap.annotation.class_names attribute", file);
        goto fail;
    }
    rc = lb__crop_attrs_parse(attrs, file, &ca, err);
    if (rc) goto fail;
    if (lb__attrs_incomplete(attrs)) {
        rc = lb__err(err, LB_EFORMAT, "%s: an unfinished labelbin output (labelbin.complete is "
                     "false): groups not yet written are missing; finish it by running the same "
                     "command with --resume", file);
        goto fail;
    }
    if (ca.version && strcmp(ca.version, "0.1.1") != 0) {
        rc = crop_warn(c, err, "%s: cellmap.annotation.version \"%.40s\": read as version "
                       "0.1.1, the one labelbin knows", file, ca.version);
        if (rc) goto fail;
    }
    c->version = lb__strdup(ca.version ? ca.version : "0.1.1", err);
    if (ca.name) {
        c->name = lb__strdup(ca.name, err);
    } else {
        const char *b = strrchr(c->path, '/');
        c->name = lb__strdup(b ? b + 1 : c->path, err);
    }
    if (!c->version || !c->name) {
        rc = LB_ENOMEM;
        goto fail;
    }
    c->cls = lb__calloc(ca.n_classes ? ca.n_classes : 1, sizeof *c->cls, "crop classes", err);
    if (!c->cls) {
        rc = LB_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < ca.n_classes; i++) {
        lb__crop_class *k = &c->cls[i];
        c->n = i + 1;
        k->name = lb__strdup(ca.class_names[i], err);
        if (!k->name) {
            rc = LB_ENOMEM;
            goto fail;
        }
        k->table = lb__classes_by_name(c->classes, k->name);
        rc = open_class(c, k, err);
        if (rc) goto fail;
        if (k->table < 0) {
            rc = crop_warn(c, err, "%s/%s: class \"%s\" is not in the %s: it has no id, so "
                           "groups of ids cannot name it (it counts for empty groups and "
                           "per-class results)", c->path, k->name, k->name,
                           c->classes->source);
            if (rc) goto fail;
        }
    }
    rc = find_all(c, err);
    if (rc) goto fail;
    lb__crop_attrs_clear(&ca);
    c->attrs = attrs;
    *out = c;
    return 0;
fail:
    lb__crop_attrs_clear(&ca);
    json_object_put(attrs);
    lb_crop_free(c);
    return rc;
}

/* ---- properties ---------------------------------------------------------------- */

const char *lb_crop_path(const lb_crop *c) { return c->shown; }
const char *lb_crop_name(const lb_crop *c) { return c->name; }
const char *lb_crop_version(const lb_crop *c) { return c->version; }
const lb_classes *lb_crop_classes(const lb_crop *c) { return c->classes; }
const char *lb_crop_all_path(const lb_crop *c) { return c->all_path; }
int lb_crop_warning_count(const lb_crop *c) { return c->n_warnings; }
const char *lb_crop_warning(const lb_crop *c, int i) {
    return i >= 0 && i < c->n_warnings ? c->warnings[i] : NULL;
}
size_t lb_crop_class_count(const lb_crop *c) { return c->n; }

int lb_crop_class(const lb_crop *c, size_t i, lb_crop_class_info *out, lb_error *err) {
    if (!c || !out || i >= c->n)
        return lb__err(err, LB_EINVAL, "lb_crop_class: no class %zu (the crop has %zu)", i,
                       c ? c->n : 0);
    const lb__crop_class *k = &c->cls[i];
    memset(out, 0, sizeof *out);
    out->name = k->name;
    if (k->table >= 0) {
        const lb__class_entry *e = &c->classes->e[k->table];
        out->has_id = 1;
        out->id = e->id;
        out->n_members = e->n_members;
        out->members = e->members;
    }
    out->instance = k->enc.instance;
    out->has_absent = k->enc.has[LB__ABSENT];
    out->has_present = k->enc.has[LB__PRESENT];
    out->has_unknown = k->enc.has[LB__UNKNOWN];
    out->absent = k->enc.value[LB__ABSENT];
    out->present = k->enc.value[LB__PRESENT];
    out->unknown = k->enc.value[LB__UNKNOWN];
    out->n_levels = k->n_levels;
    return 0;
}

int lb_crop_level(const lb_crop *c, size_t i, int level, lb_crop_level_info *out,
                  lb_error *err) {
    if (!c || !out || i >= c->n || level < 0 || level >= c->cls[i].n_levels)
        return lb__err(err, LB_EINVAL, "lb_crop_level: no level %d of class %zu", level, i);
    const lb__crop_level *lv = &c->cls[i].levels[level];
    memset(out, 0, sizeof *out);
    out->path = lv->path;
    out->dims = lv->dims;
    out->voxel_size = lv->voxel_size;
    out->roi = lv->roi;
    out->shape = lv->shape;
    out->chunks = lv->chunks;
    out->dtype = lv->dtype;
    out->absent = lv->cc[LB__ABSENT];
    out->unknown = lv->cc[LB__UNKNOWN];
    out->present = lv->cc[LB__PRESENT];
    return 0;
}

void lb_crop_options_init(lb_crop_options *opt) {
    if (!opt) return;
    memset(opt, 0, sizeof *opt);
    opt->struct_size = (int)sizeof *opt;
    opt->unknown = -1;
}

/* ---- the `all` array of a crop ---------------------------------------------------- */

/* 1 when id k's class is annotated in the crop: listed, or a group class
 * whose members all are. */
static int annotated(const lb_classes *t, const lb__crop_attrs *ca, uint64_t k, int depth) {
    long r = lb__classes_by_id(t, k);
    if (r < 0 || depth > 64) return 0;
    const lb__class_entry *e = &t->e[r];
    for (size_t i = 0; i < ca->n_classes; i++)
        if (!strcmp(ca->class_names[i], e->name)) return 1;
    if (e->n_members == 0) return 0;
    for (size_t m = 0; m < e->n_members; m++)
        if (!annotated(t, ca, e->members[m], depth + 1)) return 0;
    return 1;
}

int lb__crop_all_rule(lb__store *s, const char *path, const lb_groupings *g,
                      const lb_classes *classes, int *is_crop, lb_id **ids, size_t *n,
                      lb_error *err) {
    *is_crop = 0;
    *ids = NULL;
    *n = 0;
    char *parent = lb__path_parent(path, err);
    char *crop = parent ? lb__path_parent(parent, err) : NULL;
    json_object *attrs = NULL;
    lb_classes *own = NULL;
    lb__crop_attrs ca;
    memset(&ca, 0, sizeof ca);
    int rc = (!parent || !crop) ? LB_ENOMEM : 0;
    const char *base = parent ? strrchr(parent, '/') : NULL;
    base = base ? base + 1 : parent;
    if (rc || strcmp(base, "all") != 0 || !strcmp(crop, ".")) goto done;
    const char *fname;
    lb_error local = {0};
    if (lb__group_attrs_any(s, crop, &attrs, &fname, &local) != 0 || !attrs ||
        !lb__crop_attrs_claim(attrs))
        goto done;
    char file[W];
    snprintf(file, sizeof file, "%s/%s", crop, fname);
    rc = lb__crop_attrs_parse(attrs, file, &ca, err);
    if (rc) goto done;
    *is_crop = 1;
    if (!classes) {
        rc = lb_classes_builtin(&own, err);
        if (rc) goto done;
        classes = own;
    }
    size_t total = 0;
    for (size_t i = 0; i < lb_groupings_count(g); i++) total += lb_groupings_ids(g, i, NULL);
    lb_id *out = lb__calloc(total ? total : 1, sizeof *out, "annotation ids", err);
    if (!out) {
        rc = LB_ENOMEM;
        goto done;
    }
    size_t m = 0;
    for (size_t i = 0; i < lb_groupings_count(g); i++) {
        const lb_id *gi;
        size_t ng = lb_groupings_ids(g, i, &gi);
        for (size_t j = 0; j < ng; j++) {
            if (!gi[j].negative && annotated(classes, &ca, gi[j].bits, 0)) continue;
            size_t d = 0;
            while (d < m && !(out[d].bits == gi[j].bits && out[d].negative == gi[j].negative)) d++;
            if (d == m) out[m++] = gi[j];
        }
    }
    if (m == 0) {
        free(out);
        out = NULL;
    }
    *ids = out;
    *n = m;
done:
    lb__crop_attrs_clear(&ca);
    json_object_put(attrs);
    lb_classes_free(own);
    free(crop);
    free(parent);
    return rc;
}
