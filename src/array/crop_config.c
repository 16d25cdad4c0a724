/*
 * crop_config.c — DaCapo-style configs over a CellMap crop: a
 * BinarizeArrayConfig or MissingAnnotationsMaskConfig whose
 * source_array_config is a CellMapCropConfig
 *
 *   {"__type__": "CellMapCropConfig", "name": "crop243",
 *    "file_name": "jrc_cos7-1a.zarr",
 *    "dataset": "recon-1/labels/groundtruth/crop243",
 *    "voxel_size": [8, 8, 8], "classes": "classes.csv"}
 *
 * (voxel_size and classes optional). The wrapper may add
 * "infer_negatives": true and, for BinarizeArrayConfig, "unknown": 255
 * (three-state output); "groupings": null means one channel per class of the
 * crop. Keys outside these are refused: a misspelt option would otherwise
 * change nothing, silently.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "array/array.h"
#include "array/crop.h"
#include "array/groupings.h"
#include "core/json.h"

#define PATH_SIZE 700

static const char crop_type[] = "CellMapCropConfig";

int lb__crop_config_is(json_object *src) {
    json_object *t = lb__json_get(src, "__type__");
    return t && json_object_is_type(t, json_type_string) &&
           !strcmp(json_object_get_string(t), crop_type);
}

static int only_keys(json_object *o, const char *where, const char *const *keys, size_t n,
                     lb_error *err) {
    json_object_object_foreach(o, key, val) {
        (void)val;
        size_t i = 0;
        while (i < n && strcmp(key, keys[i]) != 0) i++;
        if (i == n) {
            char known[400];
            size_t len = 0;
            for (i = 0; i < n && len < sizeof known; i++)
                len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "",
                                        keys[i]);
            return lb__err(err, LB_EFORMAT, "%s: unknown key \"%.80s\" (known: %s)", where, key,
                           known);
        }
    }
    return 0;
}

static int str_member(json_object *o, const char *where, const char *key, int required,
                      const char **out, lb_error *err) {
    json_object *v = NULL;
    char w[PATH_SIZE + 64];
    *out = NULL;
    snprintf(w, sizeof w, "%s.%s", where, key);
    if (!json_object_object_get_ex(o, key, &v)) {
        if (required) return lb__err(err, LB_EFORMAT, "%s: missing", w);
        return 0;
    }
    if (!v && !required) return 0;
    return lb__json_str(v, w, out, err);
}

/* file_name (relative to base_dir) joined with dataset. */
static int join_path(const char *base_dir, const char *file_name, const char *rel, lb__buf *out,
                     lb_error *err) {
    int rc = 0;
    while (*rel == '/') rel++;
    if (file_name[0] != '/' && base_dir && *base_dir) rc = lb__buf_printf(out, err, "%s/", base_dir);
    if (!rc) rc = lb__buf_printf(out, err, "%s", file_name);
    if (!rc && *rel) rc = lb__buf_printf(out, err, "/%s", rel);
    return rc;
}

static int load_classes(const char *path, const char *where, lb_classes **out, lb_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lb__err_errno(err, errno, where, path);
    lb__buf b = {0};
    char tmp[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0 && !rc) {
        if (b.size + n > ((size_t)16 << 20))
            rc = lb__err(err, LB_ELIMIT, "%s: %s: larger than 16 MiB", where, path);
        else
            rc = lb__buf_append(&b, tmp, n, err);
    }
    if (!rc && ferror(f)) rc = lb__err_errno(err, errno, where, path);
    fclose(f);
    if (!rc) rc = lb_classes_parse((const char *)b.data, b.size, path, out, err);
    lb__buf_free(&b);
    return rc;
}

int lb__crop_config_build(json_object *cfg, const char *where, int binarize,
                          const char *base_dir, lb_array **out, lb_error *err) {
    static const char *const bin_keys[] = {"__type__", "name", "source_array_config",
                                           "groupings", "background", "infer_negatives",
                                           "unknown"};
    static const char *const mask_keys[] = {"__type__", "name", "source_array_config",
                                            "groupings", "infer_negatives"};
    static const char *const src_keys[] = {"__type__", "name", "file_name", "dataset",
                                           "voxel_size", "classes"};
    char w[PATH_SIZE + 64], ws[PATH_SIZE + 64];
    lb_groupings *g = NULL;
    lb_classes *classes = NULL;
    lb_crop *crop = NULL;
    lb__buf path = {0}, cpath = {0};
    int rc = binarize ? only_keys(cfg, where, bin_keys, 7, err)
                      : only_keys(cfg, where, mask_keys, 5, err);
    if (rc) return rc;
    lb_crop_options opt;
    lb_crop_options_init(&opt);
    json_object *o = lb__json_get(cfg, "infer_negatives");
    if (o) {
        snprintf(w, sizeof w, "%s.infer_negatives", where);
        rc = lb__json_bool(o, w, &opt.infer_negatives, err);
        if (rc) return rc;
    }
    o = lb__json_get(cfg, "unknown");
    if (o) {
        int64_t v;
        snprintf(w, sizeof w, "%s.unknown", where);
        rc = lb__json_int64(o, w, &v, err);
        if (rc) return rc;
        if (v < 2 || v > 255)
            return lb__err(err, LB_EFORMAT, "%s: %lld: the unknown value must be from 2 to 255",
                           w, (long long)v);
        opt.unknown = (int)v;
    }
    o = lb__json_get(cfg, "background");
    if (o) {
        lb_id bg;
        snprintf(w, sizeof w, "%s.background", where);
        rc = lb__json_id(o, w, &bg, err);
        if (rc) return rc;
        if (bg.bits != 0)
            return lb__err(err, LB_EFORMAT, "%s: a crop has no background id (an empty group "
                           "means any class of the crop); leave it out or give 0", w);
    }
    /* groupings: DaCapo's list, or null for one channel per class */
    json_object *gj = NULL;
    snprintf(w, sizeof w, "%s.groupings", where);
    if (!json_object_object_get_ex(cfg, "groupings", &gj))
        return lb__err(err, LB_EFORMAT, "%s: missing (null gives one channel per class of the "
                       "crop)", w);
    if (gj) {
        rc = lb_groupings_new(&g, err);
        if (!rc) rc = lb__groupings_add_json_object(g, gj, w, err);
        if (rc) goto done;
    }
    /* the crop */
    json_object *src = lb__json_get(cfg, "source_array_config");
    snprintf(ws, sizeof ws, "%s.source_array_config", where);
    rc = only_keys(src, ws, src_keys, 6, err);
    if (rc) goto done;
    const char *name, *file_name, *dataset, *cls;
    rc = str_member(src, ws, "name", 1, &name, err);
    if (!rc) rc = str_member(src, ws, "file_name", 1, &file_name, err);
    if (!rc) rc = str_member(src, ws, "dataset", 1, &dataset, err);
    if (!rc) rc = str_member(src, ws, "classes", 0, &cls, err);
    if (rc) goto done;
    int64_t vs[LB_MAX_DIMS];
    o = lb__json_get(src, "voxel_size");
    if (o) {
        snprintf(w, sizeof w, "%s.voxel_size", ws);
        rc = lb__json_int64_array(o, w, vs, LB_MAX_DIMS, &opt.dims, err);
        if (rc) goto done;
        for (int i = 0; i < opt.dims; i++)
            if (vs[i] <= 0) {
                rc = lb__err(err, LB_EFORMAT, "%s[%d]: expected a positive integer", w, i);
                goto done;
            }
        if (opt.dims == 0) {
            rc = lb__err(err, LB_EFORMAT, "%s: empty", w);
            goto done;
        }
        opt.voxel_size = vs;
    }
    if (cls) {
        snprintf(w, sizeof w, "%s.classes", ws);
        rc = join_path(base_dir, cls, "", &cpath, err);
        if (!rc) rc = load_classes((const char *)cpath.data, w, &classes, err);
        if (rc) goto done;
    }
    rc = join_path(base_dir, file_name, dataset, &path, err);
    if (!rc) rc = lb_crop_open((const char *)path.data, classes, &crop, err);
    if (rc) {
        lb__err_prefix(err, "%s (%s \"%s\")", ws, crop_type, name);
        goto done;
    }
    rc = binarize ? lb_crop_binarize_new(crop, g, &opt, out, err)
                  : lb_crop_mask_new(crop, g, &opt, out, err);
done:
    lb_crop_free(crop);
    lb_classes_free(classes);
    lb_groupings_free(g);
    lb__buf_free(&path);
    lb__buf_free(&cpath);
    return rc;
}
