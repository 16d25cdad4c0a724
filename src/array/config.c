/*
 * config.c — arrays from DaCapo's serialised array configs (ZarrArrayConfig,
 * BinarizeArrayConfig, MissingAnnotationsMaskConfig, nested), with errors that
 * name the JSON path inside the config ("BinarizeArrayConfig.groupings[2][1]:
 * expected an array of label ids").
 *
 * Departures from DaCapo, on purpose: a snapped ZarrArray reads the data that
 * really lies at its (snapped) ROI — DaCapo's reads are shifted by the snap;
 * a config without `mode` opens the dataset read-only (DaCapo: 'a').
 */
#include <stdio.h>
#include <stdlib.h>

#include "array/array.h"
#include "array/groupings.h"
#include "core/json.h"
#include "store/store.h"

#define PATH_SIZE 512
#define MAX_NESTING 16

static const char supported[] = "ZarrArrayConfig, BinarizeArrayConfig, MissingAnnotationsMaskConfig";

static int build(json_object *cfg, const char *where, const char *base_dir, int depth,
                 lb_array **out, lb_error *err);

/* Required member `key` of `cfg`; `where` is the config's own path. */
static int field(json_object *cfg, const char *where, const char *key, json_object **out,
                 lb_error *err) {
    if (!json_object_object_get_ex(cfg, key, out))
        return lb__err(err, LB_EFORMAT, "%s.%s: missing", where, key);
    return 0;
}

static int string_field(json_object *cfg, const char *where, const char *key, const char **out,
                        lb_error *err) {
    json_object *o;
    int rc = field(cfg, where, key, &o, err);
    if (rc) return rc;
    char w[PATH_SIZE + 64];
    snprintf(w, sizeof w, "%s.%s", where, key);
    return lb__json_str(o, w, out, err);
}

/* Name the config in a message: "BinarizeArrayConfig \"gt\": …" at the root,
 * "X.source_array_config (ZarrArrayConfig \"labels\"): …" below it. */
static int ctx_prefix(lb_error *err, int rc, const char *where, const char *type,
                      const char *name) {
    if (!strcmp(where, type))
        lb__err_prefix(err, "%s \"%s\"", type, name);
    else
        lb__err_prefix(err, "%s (%s \"%s\")", where, type, name);
    return rc;
}

static int64_t gcd64(int64_t a, int64_t b) {
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int zarr_config(json_object *cfg, const char *where, const char *base_dir,
                       lb_array **out, lb_error *err) {
    const char *file_name, *dataset, *name;
    char w[PATH_SIZE + 64];
    int rc = string_field(cfg, where, "name", &name, err);
    if (!rc) rc = string_field(cfg, where, "file_name", &file_name, err);
    if (!rc) rc = string_field(cfg, where, "dataset", &dataset, err);
    if (rc) return rc;

    /* axes (optional) */
    const char *axes[LB_MAX_DIMS];
    int n_axes = 0;
    json_object *o = lb__json_get(cfg, "axes");
    if (o) {
        snprintf(w, sizeof w, "%s.axes", where);
        if (!json_object_is_type(o, json_type_array))
            return lb__err(err, LB_EFORMAT, "%s: expected an array of axis names, found %s", w,
                           lb__json_type_name(o));
        size_t n = json_object_array_length(o);
        if (n > LB_MAX_DIMS)
            return lb__err(err, LB_ELIMIT, "%s: %zu axes, at most %d are supported", w, n,
                           LB_MAX_DIMS);
        for (size_t i = 0; i < n; i++) {
            char wi[PATH_SIZE + 96];
            snprintf(wi, sizeof wi, "%s[%zu]", w, i);
            rc = lb__json_str(json_object_array_get_idx(o, i), wi, &axes[i], err);
            if (rc) return rc;
        }
        n_axes = (int)n;
    }

    /* snap_to_grid (optional) */
    int64_t snap[LB_MAX_DIMS];
    int n_snap = 0;
    o = lb__json_get(cfg, "snap_to_grid");
    if (o) {
        snprintf(w, sizeof w, "%s.snap_to_grid", where);
        rc = lb__json_int64_array(o, w, snap, LB_MAX_DIMS, &n_snap, err);
        if (rc) return rc;
        for (int i = 0; i < n_snap; i++)
            if (snap[i] <= 0)
                return lb__err(err, LB_EFORMAT, "%s[%d]: expected a positive integer", w, i);
    }

    /* mode (optional): r = read-only; a, r+, w = writable (never created). */
    int flags = LB_OPEN_READONLY;
    o = lb__json_get(cfg, "mode");
    if (o) {
        const char *mode;
        snprintf(w, sizeof w, "%s.mode", where);
        rc = lb__json_str(o, w, &mode, err);
        if (rc) return rc;
        if (!strcmp(mode, "a") || !strcmp(mode, "w") || !strcmp(mode, "r+"))
            flags = LB_OPEN_WRITE;
        else if (strcmp(mode, "r") != 0)
            return lb__err(err, LB_EFORMAT, "%s: unknown mode \"%s\" (expected r, r+, a or w)",
                           w, mode);
    }

    /* file_name relative to base_dir (unless absolute or a URL), then the
     * dataset inside it. */
    while (*dataset == '/') dataset++;
    lb__buf path = {0};
    if (file_name[0] != '/' && !strstr(file_name, "://") && base_dir && *base_dir)
        rc = lb__buf_printf(&path, err, "%s/", base_dir);
    if (!rc) rc = lb__buf_printf(&path, err, "%s", file_name);
    if (!rc && *dataset) rc = lb__buf_printf(&path, err, "/%s", dataset);
    if (rc) {
        lb__buf_free(&path);
        return rc;
    }
    lb_array *a = NULL;
    rc = lb_array_open((const char *)path.data, flags, n_axes ? axes : NULL, n_axes, &a, err);
    lb__buf_free(&path);
    if (rc) return ctx_prefix(err, rc, where, "ZarrArrayConfig", name);

    if (n_snap) {
        snprintf(w, sizeof w, "%s.snap_to_grid", where);
        int dims = lb_array_dims(a);
        if (n_snap != dims) {
            rc = lb__err(err, LB_EFORMAT, "%s: %d entries, the array has %d spatial dimensions",
                         w, n_snap, dims);
            goto fail;
        }
        int64_t grid[LB_MAX_DIMS];
        for (int i = 0; i < dims; i++) {
            int64_t vs = a->voxel_size[i];
            if (lb__mul_i64(vs / gcd64(vs, snap[i]), snap[i], &grid[i])) {
                rc = lb__err(err, LB_ELIMIT, "%s[%d]: the grid overflows", w, i);
                goto fail;
            }
        }
        lb_roi snapped;
        rc = lb_roi_snap(&a->roi, grid, LB_SNAP_SHRINK, &snapped, err);
        if (rc) goto fail;
        for (int i = 0; i < dims; i++)
            if (snapped.shape[i] < 0) snapped.shape[i] = 0;
        if (lb_roi_empty(&snapped) && !lb_roi_contains(&a->roi, &snapped)) {
            /* Nothing of the ROI survives: keep an empty ROI at its begin. */
            for (int i = 0; i < dims; i++) snapped.shape[i] = 0;
            memcpy(snapped.offset, a->roi.offset, sizeof snapped.offset);
        }
        rc = lb__zarr_array_set_roi(a, &snapped, err);
        if (rc) {
            lb__err_prefix(err, "%s", w);
            goto fail;
        }
    }
    *out = a;
    return 0;
fail:
    lb_array_free(a);
    return rc;
}

/* groupings: [["name", [ids…]], …] */
static int read_groupings(json_object *cfg, const char *where, lb_groupings **out,
                          lb_error *err) {
    json_object *o;
    char w[PATH_SIZE + 64];
    int rc = field(cfg, where, "groupings", &o, err);
    if (rc) return rc;
    snprintf(w, sizeof w, "%s.groupings", where);
    if (!o)
        return lb__err(err, LB_EFORMAT, "%s: expected an array of [name, [ids]] pairs, found null",
                       w);
    lb_groupings *g = NULL;
    rc = lb_groupings_new(&g, err);
    if (rc) return rc;
    rc = lb__groupings_add_json_object(g, o, w, err);
    if (rc) {
        lb_groupings_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

static int wrapper_config(json_object *cfg, const char *where, const char *type, int binarize,
                          const char *base_dir, int depth, lb_array **out, lb_error *err) {
    const char *name;
    lb_groupings *g = NULL;
    lb_id background = {0, 0};
    char w[PATH_SIZE + 64];
    int rc = string_field(cfg, where, "name", &name, err);
    if (!rc) rc = read_groupings(cfg, where, &g, err);
    if (rc) return rc;
    json_object *o = lb__json_get(cfg, "background");
    if (binarize && o) {
        snprintf(w, sizeof w, "%s.background", where);
        rc = lb__json_id(o, w, &background, err);
        if (rc) goto done;
    }
    json_object *src;
    rc = field(cfg, where, "source_array_config", &src, err);
    if (rc) goto done;
    snprintf(w, sizeof w, "%s.source_array_config", where);
    lb_array *source = NULL;
    rc = build(src, w, base_dir, depth + 1, &source, err);
    if (rc) goto done;
    rc = binarize ? lb_binarize_new(source, g, background, out, err)
                  : lb_mask_new(source, g, out, err);
    if (rc) ctx_prefix(err, rc, where, type, name);
done:
    lb_groupings_free(g);
    return rc;
}

static int build(json_object *cfg, const char *where, const char *base_dir, int depth,
                 lb_array **out, lb_error *err) {
    if (depth > MAX_NESTING)
        return lb__err(err, LB_ELIMIT, "%s: configs nested more than %d deep", where,
                       MAX_NESTING);
    if (!cfg || !json_object_is_type(cfg, json_type_object))
        return lb__err(err, LB_EFORMAT, "%s: expected a config object, found %s",
                       *where ? where : "config", cfg ? lb__json_type_name(cfg) : "null");
    json_object *t;
    const char *type;
    char w[PATH_SIZE + 64];
    if (!json_object_object_get_ex(cfg, "__type__", &t))
        return lb__err(err, LB_EFORMAT, "%s.__type__: missing (expected one of %s)",
                       *where ? where : "config", supported);
    snprintf(w, sizeof w, "%s.__type__", *where ? where : "config");
    int rc = lb__json_str(t, w, &type, err);
    if (rc) return rc;
    /* The root's path starts with its type: "BinarizeArrayConfig.groupings". */
    char here[PATH_SIZE];
    snprintf(here, sizeof here, "%s", *where ? where : type);
    if (!strcmp(type, "ZarrArrayConfig")) return zarr_config(cfg, here, base_dir, out, err);
    if (!strcmp(type, "BinarizeArrayConfig"))
        return wrapper_config(cfg, here, type, 1, base_dir, depth, out, err);
    if (!strcmp(type, "MissingAnnotationsMaskConfig"))
        return wrapper_config(cfg, here, type, 0, base_dir, depth, out, err);
    return lb__err(err, LB_EUNSUPPORTED, "%s: unsupported array config type \"%s\" (supported: %s)",
                   w, type, supported);
}

int lb_array_from_config(const char *json, const char *base_dir, lb_array **out,
                         lb_error *err) {
    if (!out) return lb__err(err, LB_EINVAL, "lb_array_from_config: no output pointer");
    *out = NULL;
    if (!json) return lb__err(err, LB_EINVAL, "lb_array_from_config: no config given");
    json_object *cfg = NULL;
    int rc = lb__json_parse(json, strlen(json), "config", &cfg, err);
    if (rc) return rc;
    rc = build(cfg, "", base_dir, 0, out, err);
    json_object_put(cfg);
    return rc;
}
