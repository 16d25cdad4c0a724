/*
 * test_arrays.c — ZarrArray geometry from metadata (OME-NGFF, funlib keys,
 * parent groups, N5 reversal, truncation, offset rounding, defaults, channel
 * axes), read refusals, writes, and the BinarizeArray / MissingAnnotationsMask
 * rules, on small datasets written to a temporary directory.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "array/array.h"
#include "core/json.h"
#include "labelbin.h"
#include "core/path.h"
#include "store/fs.h"
#include "tap.h"

static char tmpdir[256];

static void path_of(const char *rel, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", tmpdir, rel);
}

static void write_text(const char *rel, const char *text) {
    char p[1024];
    path_of(rel, p, sizeof p);
    lb_error e = {0};
    char *dir = lb__path_parent(p, &e);
    if (dir) lb__fs_mkdirs(dir, &e);
    free(dir);
    if (lb__fs_write_atomic(p, text, strlen(text), &e)) {
        fprintf(stderr, "# write %s: %s\n", p, e.message);
        CHECK(0);
    }
}

/* Create a dataset (chunks given or = shape) with attributes; NULL on error. */
static lb_array *mk(const char *rel, lb_format fmt, lb_dtype dt, int ndim, const int64_t *shape,
                    const int64_t *chunks, const char *attrs) {
    char p[1024];
    path_of(rel, p, sizeof p);
    lb_create_options o;
    lb_create_options_init(&o);
    o.format = fmt;
    o.dtype = dt;
    o.attrs_json = attrs;
    o.overwrite = 1;
    lb_array *a = NULL;
    lb_error e = {0};
    int rc = lb_dataset_create(p, ndim, shape, chunks ? chunks : shape, &o, &a, &e);
    if (rc) fprintf(stderr, "# create %s: %s\n", p, e.message);
    CHECK_INT(rc, 0);
    return a;
}

/* Create (and close) a dataset, then open it read-only. */
static int geo(const char *rel, lb_format fmt, int ndim, const int64_t *shape, const char *attrs,
               lb_array **out, lb_error *e) {
    if (fmt == LB_FORMAT_ZARR2 && attrs) {
        /* attributes written afterwards, so that opening (not creating)
         * meets them */
        char za[512];
        lb_array_free(mk(rel, fmt, LB_DTYPE_UINT8, ndim, shape, NULL, NULL));
        snprintf(za, sizeof za, "%s/.zattrs", rel);
        write_text(za, attrs);
    } else {
        lb_array_free(mk(rel, fmt, LB_DTYPE_UINT8, ndim, shape, NULL, attrs));
    }
    char p[1024];
    path_of(rel, p, sizeof p);
    return lb_array_open(p, LB_OPEN_READONLY, NULL, 0, out, e);
}

static int open_rel(const char *rel, lb_array **out, lb_error *e) {
    char p[1024];
    path_of(rel, p, sizeof p);
    return lb_array_open(p, LB_OPEN_READONLY, NULL, 0, out, e);
}

/* Axes as "z,y,x". */
static void axes_str(const lb_array *a, char *buf, size_t size) {
    buf[0] = '\0';
    for (int i = 0; i < lb_array_ndim(a); i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, size - l, "%s%s", i ? "," : "", lb_array_axis(a, i));
    }
}

/* dims, voxel size, ROI (offset, world shape) and axes in one go. */
static void check_geo(int line, const lb_array *a, int dims, const int64_t *vs,
                      const int64_t *off, const int64_t *wshape, const char *axes) {
    if (!a) {
        fprintf(stderr, "not ok line %d: no array\n", line);
        CHECK(0);
        return;
    }
    int bad = lb_array_dims(a) != dims;
    lb_roi r;
    lb_array_roi(a, &r);
    bad |= r.ndim != dims;
    for (int i = 0; i < dims && !bad; i++)
        bad |= lb_array_voxel_size(a)[i] != vs[i] || r.offset[i] != off[i] ||
               r.shape[i] != wshape[i];
    char ax[256];
    axes_str(a, ax, sizeof ax);
    bad |= strcmp(ax, axes) != 0;
    if (bad) {
        char rs[256], vb[256];
        lb_roi_format(&r, rs, sizeof rs);
        lb_coord_format(lb_array_voxel_size(a), lb_array_dims(a), vb, sizeof vb);
        fprintf(stderr, "not ok line %d: dims %d vs %s roi %s axes %s\n", line, lb_array_dims(a),
                vb, rs, ax);
    }
    CHECK(!bad);
}

static int has_warning(const lb_array *a, const char *needle) {
    for (int i = 0; i < lb_array_warning_count(a); i++)
        if (strstr(lb_array_warning(a, i), needle)) return 1;
    return 0;
}

/* ---- geometry ------------------------------------------------------------- */

static void test_defaults(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    int64_t s3[3] = {4, 5, 6}, s2[2] = {5, 6}, s1[1] = {7}, s4[4] = {2, 3, 4, 5};
    CHECK_INT(geo("def.zarr/a3", LB_FORMAT_ZARR2, 3, s3, NULL, &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){1, 1, 1}, (int64_t[]){0, 0, 0},
              (int64_t[]){4, 5, 6}, "z,y,x");
    if (a) {
        CHECK_INT(lb_array_num_channels(a), -1);
        CHECK_STR(lb_array_kind(a), "ZarrArray");
        CHECK_STR(lb_array_format(a), "zarr2");
        CHECK_INT(lb_array_writable(a), 0);
        CHECK_INT(lb_array_annotations(a), LB_ANNOTATIONS_NONE);
        CHECK_INT(lb_array_warning_count(a), 0);
        CHECK_STR(lb_array_codec_json(a), "null");
        CHECK(lb_array_source(a) == NULL);
        CHECK(strstr(lb_array_path(a), "def.zarr/a3") != NULL);
        CHECK_INT(lb_array_chunks(a)[2], 6);
    }
    lb_array_free(a);
    a = NULL;
    /* success leaves the error record untouched */
    lb_error untouched = {12345, "sentinel"};
    CHECK_INT(open_rel("def.zarr/a3", &a, &untouched), 0);
    CHECK_INT(untouched.code, 12345);
    CHECK_STR(untouched.message, "sentinel");
    lb_array_free(a);
    a = NULL;
    CHECK_INT(geo("def.zarr/a2", LB_FORMAT_ZARR2, 2, s2, NULL, &a, &e), 0);
    check_geo(__LINE__, a, 2, (int64_t[]){1, 1}, (int64_t[]){0, 0}, (int64_t[]){5, 6}, "y,x");
    lb_array_free(a);
    a = NULL;
    CHECK_INT(geo("def.zarr/a1", LB_FORMAT_ZARR2, 1, s1, NULL, &a, &e), 0);
    check_geo(__LINE__, a, 1, (int64_t[]){1}, (int64_t[]){0}, (int64_t[]){7}, "x");
    lb_array_free(a);
    a = NULL;
    /* Four dims without metadata: funlib >= 0.3 makes the last three
     * spatial (min(ndim, 3)), so the first is a channel axis "c". */
    CHECK_INT(geo("def.zarr/a4", LB_FORMAT_ZARR2, 4, s4, NULL, &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){1, 1, 1}, (int64_t[]){0, 0, 0},
              (int64_t[]){3, 4, 5}, "c,z,y,x");
    if (a) CHECK_INT(lb_array_num_channels(a), 2);
    lb_array_free(a);
}

static void test_keys(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    int64_t s[3] = {4, 5, 6};
    /* resolution + offset + axes on the array */
    CHECK_INT(geo("keys.zarr/res", LB_FORMAT_ZARR2, 3, s,
                  "{\"resolution\": [8, 4, 2], \"offset\": [80, -40, 20], \"axes\": "
                  "[\"z\", \"y\", \"x\"]}",
                  &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){8, 4, 2}, (int64_t[]){80, -40, 20},
              (int64_t[]){32, 20, 12}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    /* resolution wins over scale */
    CHECK_INT(geo("keys.zarr/both", LB_FORMAT_ZARR2, 3, s,
                  "{\"scale\": [3, 3, 3], \"resolution\": [2, 2, 2]}", &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){2, 2, 2}, (int64_t[]){0, 0, 0},
              (int64_t[]){8, 10, 12}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    /* scale alone */
    CHECK_INT(geo("keys.zarr/scale", LB_FORMAT_ZARR2, 3, s, "{\"scale\": [3, 3, 1]}", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){3, 3, 1}, (int64_t[]){0, 0, 0},
              (int64_t[]){12, 15, 6}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    /* pixelResolution wins over transform.scale; transform.translate is the offset */
    CHECK_INT(geo("keys.zarr/pix", LB_FORMAT_ZARR2, 3, s,
                  "{\"pixelResolution\": {\"dimensions\": [5, 6, 7], \"unit\": \"nm\"}, "
                  "\"transform\": {\"scale\": [9, 9, 9], \"translate\": [9, 18, 27]}}",
                  &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){5, 6, 7}, (int64_t[]){10, 18, 28},
              (int64_t[]){20, 30, 42}, "z,y,x");
    if (a) CHECK(has_warning(a, "rounded"));
    lb_array_free(a);
    a = NULL;
    /* transform alone; offset wins over transform.translate */
    CHECK_INT(geo("keys.zarr/tr", LB_FORMAT_ZARR2, 3, s,
                  "{\"transform\": {\"axes\": [\"z\", \"y\", \"x\"], \"scale\": [4, 2, 2], "
                  "\"translate\": [40, 20, 20]}, \"offset\": [4, 2, 2]}",
                  &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){4, 2, 2}, (int64_t[]){4, 2, 2},
              (int64_t[]){16, 10, 12}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    CHECK_INT(geo("keys.zarr/tr2", LB_FORMAT_ZARR2, 3, s,
                  "{\"transform\": {\"scale\": [4, 2, 2], \"translate\": [40, 20, 20]}}", &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){4, 2, 2}, (int64_t[]){40, 20, 20},
              (int64_t[]){16, 10, 12}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    /* an "F" ordered transform is reversed */
    CHECK_INT(geo("keys.zarr/trf", LB_FORMAT_ZARR2, 3, s,
                  "{\"transform\": {\"ordering\": \"F\", \"scale\": [2, 2, 4], \"translate\": "
                  "[20, 20, 40]}}",
                  &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){4, 2, 2}, (int64_t[]){40, 20, 20},
              (int64_t[]){16, 10, 12}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    /* offset alone: voxel size 1 */
    CHECK_INT(geo("keys.zarr/off", LB_FORMAT_ZARR2, 3, s, "{\"offset\": [1, 2, 3]}", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){1, 1, 1}, (int64_t[]){1, 2, 3},
              (int64_t[]){4, 5, 6}, "z,y,x");
    lb_array_free(a);
}

static void test_parent_group(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    int64_t s[3] = {4, 5, 6};
    lb_array_free(mk("par.zarr/grp/arr", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, NULL, NULL));
    write_text("par.zarr/grp/.zattrs",
               "{\"resolution\": [2, 3, 4], \"offset\": [2, 3, 4], \"axes\": [\"z\", \"y\", "
               "\"x\"]}");
    CHECK_INT(open_rel("par.zarr/grp/arr", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){2, 3, 4}, (int64_t[]){2, 3, 4},
              (int64_t[]){8, 15, 24}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    /* the array's own attributes win; missing ones still come from the parent */
    lb_array_free(mk("par.zarr/grp/own", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, NULL,
                     "{\"resolution\": [1, 1, 2]}"));
    CHECK_INT(open_rel("par.zarr/grp/own", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){1, 1, 2}, (int64_t[]){2, 3, 4},
              (int64_t[]){4, 5, 12}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    /* a grandparent's resolution is not consulted */
    lb_array_free(mk("par.zarr/grp/sub/deep", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, NULL, NULL));
    CHECK_INT(open_rel("par.zarr/grp/sub/deep", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){1, 1, 1}, (int64_t[]){0, 0, 0},
              (int64_t[]){4, 5, 6}, "z,y,x");
    lb_array_free(a);
}

static const char ome_attrs[] =
    "{\"multiscales\": [{\"version\": \"0.4\", \"name\": \"labels\", \"axes\": ["
    "{\"name\": \"z\", \"type\": \"space\", \"unit\": \"nanometer\"},"
    "{\"name\": \"y\", \"type\": \"space\", \"unit\": \"nanometer\"},"
    "{\"name\": \"x\", \"type\": \"space\", \"unit\": \"nanometer\"}],"
    "\"datasets\": [{\"path\": \"%s\", \"coordinateTransformations\": ["
    "{\"type\": \"scale\", \"scale\": [3.0, 3.0, 3.0]},"
    "{\"type\": \"translation\", \"translation\": [30.0, 60.0, 90.0]}]},"
    "{\"path\": \"%s\", \"coordinateTransformations\": ["
    "{\"type\": \"scale\", \"scale\": [6.0, 6.0, 6.0]},"
    "{\"type\": \"translation\", \"translation\": [33.0, 63.0, 93.0]}]}]}]}";

static void test_ome(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    int64_t s[3] = {4, 5, 6};
    char attrs[2048];
    /* On the parent group; it wins over the array's own resolution. */
    lb_array_free(mk("ome.zarr/labels/s0", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, NULL,
                     "{\"resolution\": [1, 1, 1], \"offset\": [0, 0, 0]}"));
    lb_array_free(mk("ome.zarr/labels/s1", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, NULL, NULL));
    snprintf(attrs, sizeof attrs, ome_attrs, "s0", "/s1");
    write_text("ome.zarr/labels/.zattrs", attrs);
    CHECK_INT(open_rel("ome.zarr/labels/s0", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){3, 3, 3}, (int64_t[]){30, 60, 90},
              (int64_t[]){12, 15, 18}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    /* translation 33 is rounded to a multiple of 6 */
    CHECK_INT(open_rel("ome.zarr/labels/s1", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){6, 6, 6}, (int64_t[]){36, 66, 96},
              (int64_t[]){24, 30, 36}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    /* On an ancestor, with the path relative to it. */
    lb_array_free(mk("anc.zarr/img/labels/s0", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, NULL, NULL));
    snprintf(attrs, sizeof attrs, ome_attrs, "img/labels/s0", "img/labels/s1");
    write_text("anc.zarr/.zattrs", attrs);
    CHECK_INT(open_rel("anc.zarr/img/labels/s0", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){3, 3, 3}, (int64_t[]){30, 60, 90},
              (int64_t[]){12, 15, 18}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    /* multiscales that do not list the array: the array's own attributes */
    lb_array_free(mk("ome.zarr/labels/other", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, NULL,
                     "{\"resolution\": [2, 2, 2]}"));
    CHECK_INT(open_rel("ome.zarr/labels/other", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){2, 2, 2}, (int64_t[]){0, 0, 0},
              (int64_t[]){8, 10, 12}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    /* A channel axis in OME-NGFF: dropped from the voxel size. */
    int64_t s4[4] = {2, 4, 5, 6};
    lb_array_free(mk("omec.zarr/img/s0", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 4, s4, NULL, NULL));
    write_text("omec.zarr/img/.zattrs",
               "{\"multiscales\": [{\"version\": \"0.4\", \"axes\": [{\"name\": \"c\", \"type\": "
               "\"channel\"}, {\"name\": \"z\", \"type\": \"space\"}, {\"name\": \"y\", "
               "\"type\": \"space\"}, {\"name\": \"x\", \"type\": \"space\"}], \"datasets\": "
               "[{\"path\": \"s0\", \"coordinateTransformations\": [{\"type\": \"scale\", "
               "\"scale\": [1, 4, 4, 4]}]}]}]}");
    CHECK_INT(open_rel("omec.zarr/img/s0", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){4, 4, 4}, (int64_t[]){0, 0, 0},
              (int64_t[]){16, 20, 24}, "c,z,y,x");
    if (a) CHECK_INT(lb_array_num_channels(a), 2);
    lb_array_free(a);
    a = NULL;
    /* Malformed multiscales: an error naming the file and JSON path. */
    lb_array_free(mk("bad.zarr/grp/s0", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, NULL, NULL));
    write_text("bad.zarr/grp/.zattrs",
               "{\"multiscales\": [{\"datasets\": [{\"path\": \"s0\", "
               "\"coordinateTransformations\": [{\"type\": \"scale\", \"scale\": \"big\"}]}]}]}");
    CHECK_INT(open_rel("bad.zarr/grp/s0", &a, &e), LB_EFORMAT);
    CHECK_MSG(e, "bad.zarr/grp/.zattrs: multiscales[0].datasets[0].coordinateTransformations[0].scale");
    lb_array_free(a);
}

static void test_n5(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    int64_t s[3] = {4, 5, 6}; /* C order: z, y, x */
    CHECK_INT(geo("g.n5/crop/labels", LB_FORMAT_N5, 3, s,
                  "{\"resolution\": [2, 4, 8], \"offset\": [20, 40, 80], \"axes\": [\"x\", "
                  "\"y\", \"z\"]}",
                  &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){8, 4, 2}, (int64_t[]){80, 40, 20},
              (int64_t[]){32, 20, 12}, "z,y,x");
    if (a) {
        CHECK_STR(lb_array_format(a), "n5");
        CHECK_INT(lb_array_shape(a)[0], 4);
        CHECK_INT(lb_array_shape(a)[2], 6);
    }
    lb_array_free(a);
    a = NULL;
    /* pixelResolution reversed; transform in its own (C) order */
    CHECK_INT(geo("g.n5/crop/pix", LB_FORMAT_N5, 3, s,
                  "{\"pixelResolution\": {\"dimensions\": [1, 2, 3], \"unit\": \"nm\"}}", &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){3, 2, 1}, (int64_t[]){0, 0, 0},
              (int64_t[]){12, 10, 6}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    CHECK_INT(geo("g.n5/crop/tr", LB_FORMAT_N5, 3, s,
                  "{\"transform\": {\"axes\": [\"z\", \"y\", \"x\"], \"ordering\": \"C\", "
                  "\"scale\": [2.62, 2.0, 1.0], \"translate\": [0.0, 4.0, 6.0]}}",
                  &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){2, 2, 1}, (int64_t[]){0, 4, 6},
              (int64_t[]){8, 10, 6}, "z,y,x");
    if (a) CHECK(has_warning(a, "voxel size 2.62 truncated to 2, as funlib does"));
    lb_array_free(a);
    a = NULL;
    /* N5 channels: axes stored ["x","y","z","c"] */
    int64_t s4[4] = {3, 4, 5, 6};
    CHECK_INT(geo("g.n5/crop/ch", LB_FORMAT_N5, 4, s4,
                  "{\"resolution\": [1, 2, 3], \"axes\": [\"x\", \"y\", \"z\", \"c\"]}", &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){3, 2, 1}, (int64_t[]){0, 0, 0},
              (int64_t[]){12, 10, 6}, "c,z,y,x");
    if (a) CHECK_INT(lb_array_num_channels(a), 3);
    lb_array_free(a);
}

static void test_rounding(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    int64_t s[3] = {4, 5, 6};
    CHECK_INT(geo("rnd.zarr/trunc", LB_FORMAT_ZARR2, 3, s,
                  "{\"resolution\": [2.62, 2.0, 2], \"offset\": [0, 0, 0]}", &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){2, 2, 2}, (int64_t[]){0, 0, 0},
              (int64_t[]){8, 10, 12}, "z,y,x");
    if (a) {
        CHECK_INT(lb_array_warning_count(a), 1);
        CHECK(has_warning(a, "voxel size 2.62 truncated to 2, as funlib does"));
        CHECK(has_warning(a, "resolution[0]"));
    }
    lb_array_free(a);
    a = NULL;
    CHECK_INT(geo("rnd.zarr/pos", LB_FORMAT_ZARR2, 3, s,
                  "{\"resolution\": [4, 4, 4], \"offset\": [6, 5, 3]}", &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){4, 4, 4}, (int64_t[]){8, 4, 4},
              (int64_t[]){16, 20, 24}, "z,y,x");
    if (a) CHECK(has_warning(a, "(6, 5, 3) is not a multiple of the voxel size (4, 4, 4)"));
    lb_array_free(a);
    a = NULL;
    /* negatives round to the nearest multiple too (funlib gets (-4, -4, 0)) */
    CHECK_INT(geo("rnd.zarr/neg", LB_FORMAT_ZARR2, 3, s,
                  "{\"resolution\": [4, 4, 4], \"offset\": [-7, -6, -5]}", &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){4, 4, 4}, (int64_t[]){-8, -4, -4},
              (int64_t[]){16, 20, 24}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    /* a fractional offset is truncated first, then rounded */
    CHECK_INT(geo("rnd.zarr/frac", LB_FORMAT_ZARR2, 3, s,
                  "{\"resolution\": [4, 4, 4], \"offset\": [7.9, -3.5, 8.0]}", &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){4, 4, 4}, (int64_t[]){8, -4, 8},
              (int64_t[]){16, 20, 24}, "z,y,x");
    if (a) CHECK(has_warning(a, "offset 7.9 truncated to 7"));
    lb_array_free(a);
}

static void test_geometry_errors(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    int64_t s[3] = {4, 5, 6};
    CHECK_INT(geo("err.zarr/zero", LB_FORMAT_ZARR2, 3, s, "{\"resolution\": [4, 0, 4]}", &a, &e),
              LB_EFORMAT);
    CHECK_MSG(e, "resolution[1]");
    CHECK_MSG(e, "must be > 0");
    CHECK(a == NULL);
    CHECK_INT(geo("err.zarr/half", LB_FORMAT_ZARR2, 3, s, "{\"resolution\": [4, 0.5, 4]}", &a, &e),
              LB_EFORMAT);
    CHECK_MSG(e, "resolution[1]");
    CHECK_INT(geo("err.zarr/negvs", LB_FORMAT_ZARR2, 3, s, "{\"scale\": [4, -1, 4]}", &a, &e),
              LB_EFORMAT);
    CHECK_MSG(e, "scale[1]");
    CHECK_INT(geo("err.zarr/axes", LB_FORMAT_ZARR2, 3, s, "{\"axes\": [\"y\", \"x\"]}", &a, &e),
              LB_EFORMAT);
    CHECK_MSG(e, "axes");
    CHECK_INT(geo("err.zarr/axdup", LB_FORMAT_ZARR2, 3, s, "{\"axes\": [\"y\", \"x\", \"x\"]}",
                  &a, &e),
              LB_EFORMAT);
    CHECK_MSG(e, "appears twice");
    CHECK_INT(geo("err.zarr/long", LB_FORMAT_ZARR2, 3, s, "{\"resolution\": [1, 1, 1, 1]}", &a,
                  &e),
              LB_EFORMAT);
    CHECK_MSG(e, "resolution");
    CHECK_INT(geo("err.zarr/mismatch", LB_FORMAT_ZARR2, 3, s,
                  "{\"resolution\": [1, 1, 1], \"offset\": [0, 0]}", &a, &e),
              LB_EFORMAT);
    CHECK_MSG(e, "offset");
    CHECK_INT(geo("err.zarr/str", LB_FORMAT_ZARR2, 3, s, "{\"resolution\": \"4,4,4\"}", &a, &e),
              LB_EFORMAT);
    CHECK_MSG(e, "resolution");
    /* a "c" axis among the spatial ones */
    CHECK_INT(geo("err.zarr/cmid", LB_FORMAT_ZARR2, 3, s, "{\"axes\": [\"z\", \"c\", \"x\"]}", &a,
                  &e),
              LB_EFORMAT);
    CHECK_MSG(e, "axes");
    /* two leading non-spatial dims without names get DaCapo's "s", "c";
     * three need names */
    int64_t s5[5] = {2, 2, 3, 4, 5};
    CHECK_INT(geo("err.zarr/five", LB_FORMAT_ZARR2, 5, s5, "{\"resolution\": [1, 1, 1]}", &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){1, 1, 1}, (int64_t[]){0, 0, 0},
              (int64_t[]){3, 4, 5}, "s,c,z,y,x");
    lb_array_free(a);
    a = NULL;
    /* written by hand: creating it refuses such geometry */
    write_text("err.zarr/six/.zarray",
               "{\"zarr_format\": 2, \"shape\": [2, 2, 2, 3, 4, 5], \"chunks\": [2, 2, 2, 3, 4, "
               "5], \"dtype\": \"|u1\", \"compressor\": null, \"fill_value\": 0, \"order\": "
               "\"C\", \"filters\": null}");
    write_text("err.zarr/six/.zattrs", "{\"resolution\": [1, 1, 1]}");
    CHECK_INT(open_rel("err.zarr/six", &a, &e), LB_EUNSUPPORTED);
    CHECK_MSG(e, "name the 3 leading non-spatial axes");
    lb_array_free(a);
    /* lb_dataset_create refuses such attributes before writing anything */
    char p[1024];
    path_of("err2.zarr/zero", p, sizeof p);
    lb_create_options o;
    lb_create_options_init(&o);
    o.attrs_json = "{\"resolution\": [4, 0, 4]}";
    a = NULL;
    CHECK_INT(lb_dataset_create(p, 3, s, s, &o, &a, &e), LB_EFORMAT);
    CHECK_MSG(e, "resolution[1]");
    CHECK(a == NULL);
    CHECK(!lb__fs_exists(p));
    o.attrs_json = "[1, 2]";
    CHECK_INT(lb_dataset_create(p, 3, s, s, &o, &a, &e), LB_EINVAL);
    CHECK(!lb__fs_exists(p));
}

static void test_channels_and_override(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    int64_t s4[4] = {2, 3, 4, 5};
    /* axes with "c" and a 3-entry resolution */
    CHECK_INT(geo("ch.zarr/a", LB_FORMAT_ZARR2, 4, s4,
                  "{\"axes\": [\"c\", \"z\", \"y\", \"x\"], \"resolution\": [2, 2, 2], "
                  "\"channels\": [\"p\", \"q\"]}",
                  &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){2, 2, 2}, (int64_t[]){0, 0, 0},
              (int64_t[]){6, 8, 10}, "c,z,y,x");
    if (a) {
        CHECK_INT(lb_array_num_channels(a), 2);
        CHECK_STR(lb_array_channel_name(a, 1), "q");
        /* reads include every channel */
        lb_roi r;
        lb_array_roi(a, &r);
        CHECK_INT(lb_array_read_size(a, &r), 2 * 3 * 4 * 5);
    }
    lb_array_free(a);
    a = NULL;
    /* resolution only: the leading dim is the channel axis */
    CHECK_INT(geo("ch.zarr/b", LB_FORMAT_ZARR2, 4, s4, "{\"resolution\": [2, 2, 2]}", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){2, 2, 2}, (int64_t[]){0, 0, 0},
              (int64_t[]){6, 8, 10}, "c,z,y,x");
    if (a) {
        CHECK_INT(lb_array_num_channels(a), 2);
        CHECK(lb_array_channel_name(a, 0) == NULL);
    }
    lb_array_free(a);
    a = NULL;
    /* axes only */
    CHECK_INT(geo("ch.zarr/c", LB_FORMAT_ZARR2, 4, s4, "{\"axes\": [\"c\", \"z\", \"y\", \"x\"]}",
                  &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){1, 1, 1}, (int64_t[]){0, 0, 0},
              (int64_t[]){3, 4, 5}, "c,z,y,x");
    lb_array_free(a);
    a = NULL;
    /* the override replaces the metadata's axes */
    char p[1024];
    path_of("ch.zarr/c", p, sizeof p);
    const char *ov[4] = {"t", "z", "y", "x"};
    CHECK_INT(lb_array_open(p, LB_OPEN_READONLY, ov, 4, &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){1, 1, 1}, (int64_t[]){0, 0, 0},
              (int64_t[]){3, 4, 5}, "t,z,y,x");
    if (a) CHECK_INT(lb_array_num_channels(a), -1);
    lb_array_free(a);
    a = NULL;
    const char *ovs[4] = {"w", "z", "y", "x"};
    CHECK_INT(lb_array_open(p, LB_OPEN_READONLY, ovs, 4, &a, &e), 0);
    check_geo(__LINE__, a, 4, (int64_t[]){1, 1, 1, 1}, (int64_t[]){0, 0, 0, 0},
              (int64_t[]){2, 3, 4, 5}, "w,z,y,x");
    lb_array_free(a);
    a = NULL;
    const char *ov3[3] = {"z", "y", "x"};
    CHECK_INT(lb_array_open(p, LB_OPEN_READONLY, ov3, 3, &a, &e), LB_EINVAL);
    CHECK_MSG(e, "axes override");
    lb_array_free(a);
}

/* ---- reads and writes ------------------------------------------------------ */

static void test_read_write(void) {
    lb_error e = {0};
    int64_t s[3] = {10, 11, 12}, ch[3] = {4, 5, 6};
    lb_array *a = mk("rw.zarr/volumes/labels/all", LB_FORMAT_ZARR2, LB_DTYPE_UINT16, 3, s, ch,
                     "{\"resolution\": [8, 4, 4], \"offset\": [80, 40, 400]}");
    if (!a) return;
    CHECK_INT(lb_array_writable(a), 1);
    lb_roi full, r;
    lb_array_roi(a, &full);
    CHECK_INT(full.offset[0], 80);
    CHECK_INT(full.shape[0], 80);
    /* write a box, read the whole array back */
    int64_t off[3] = {88, 44, 404}, shp[3] = {24, 12, 20};
    lb_roi_set(&r, 3, off, shp, &e);
    size_t n = lb_array_read_size(a, &r);
    CHECK_INT(n, 3 * 3 * 5 * 2);
    uint16_t *in = malloc(n);
    for (size_t i = 0; i < n / 2; i++) in[i] = (uint16_t)(1000 + i);
    CHECK_INT(lb_array_write(a, &r, in, n, &e), 0);
    size_t nf = lb_array_read_size(a, &full);
    uint16_t *all = malloc(nf);
    CHECK_INT(lb_array_read(a, &full, all, nf, &e), 0);
    size_t bad = 0, k = 0;
    for (int z = 0; z < 10; z++)
        for (int y = 0; y < 11; y++)
            for (int x = 0; x < 12; x++) {
                int inside = z >= 1 && z < 4 && y >= 1 && y < 4 && x >= 1 && x < 6;
                uint16_t want = inside ? in[k++] : 0;
                bad += all[(z * 11 + y) * 12 + x] != want;
            }
    CHECK_INT(bad, 0);
    /* the data view sees the same elements */
    int64_t st[3] = {1, 1, 1}, cnt[3] = {3, 3, 5};
    uint16_t view[45];
    CHECK_INT(lb_array_data_read(a, st, cnt, view, sizeof view, &e), 0);
    CHECK(memcmp(view, in, sizeof view) == 0);
    view[0] = 7;
    CHECK_INT(lb_array_data_write(a, st, cnt, view, sizeof view, &e), 0);
    uint16_t one;
    int64_t one_cnt[3] = {1, 1, 1};
    CHECK_INT(lb_array_data_read(a, st, one_cnt, &one, 2, &e), 0);
    CHECK_INT(one, 7);
    int64_t st_bad[3] = {9, 0, 0}, cnt_bad[3] = {2, 1, 1};
    CHECK_INT(lb_array_data_read(a, st_bad, cnt_bad, view, 4, &e), LB_EROI);
    CHECK_INT(lb_array_data_read(a, st, cnt, view, sizeof view - 2, &e), LB_EINVAL);
    CHECK_INT(lb_array_set_cache(a, 1 << 20, &e), 0);
    CHECK_INT(lb_array_read(a, &full, all, nf, &e), 0);
    CHECK_INT(all[(1 * 11 + 1) * 12 + 1], 7);

    /* refusals: misaligned, outside, dims, size */
    int64_t mo[3] = {81, 40, 400}, ms[3] = {8, 4, 4};
    lb_roi_set(&r, 3, mo, ms, &e);
    e.message[0] = '\0';
    CHECK_INT(lb_array_read(a, &r, all, 8 * 8, &e), LB_EROI);
    CHECK_MSG(e, "ROI [81:89, 40:44, 400:404] is not aligned to the voxel size (8, 4, 4) of "
                 "array ");
    CHECK_MSG(e, "rw.zarr/volumes/labels/all with ROI [80:160, 40:84, 400:448]");
    int64_t oo[3] = {80, 40, 400}, os[3] = {800, 4, 4};
    lb_roi_set(&r, 3, oo, os, &e);
    CHECK_INT(lb_array_read(a, &r, all, nf, &e), LB_EROI);
    CHECK_MSG(e, "ROI [80:880, 40:44, 400:404] lies outside the ROI [80:160, 40:84, 400:448]");
    CHECK_MSG(e, "(voxel size (8, 4, 4))");
    int64_t so[3] = {80, 40, 402}, ss[3] = {8, 4, 4};
    lb_roi_set(&r, 3, so, ss, &e);
    CHECK_INT(lb_array_read(a, &r, all, nf, &e), LB_EROI);
    CHECK_MSG(e, "not aligned");
    int64_t s2o[3] = {80, 40, 400}, s2s[3] = {8, 4, 6};
    lb_roi_set(&r, 3, s2o, s2s, &e);
    CHECK_INT(lb_array_read(a, &r, all, nf, &e), LB_EROI);
    lb_roi r2;
    lb_roi_set(&r2, 2, oo, ms, &e);
    CHECK_INT(lb_array_read(a, &r2, all, nf, &e), LB_EROI);
    CHECK_MSG(e, "2 dimensions");
    lb_roi_set(&r, 3, oo, ms, &e);
    CHECK_INT(lb_array_read_size(a, &r), 2);
    CHECK_INT(lb_array_read(a, &r, all, 4, &e), LB_EINVAL);
    CHECK_INT(lb_array_read(a, &r, all, 2, &e), 0);
    /* an empty ROI reads nothing */
    int64_t zs[3] = {0, 4, 4};
    lb_roi_set(&r, 3, oo, zs, &e);
    CHECK_INT(lb_array_read_size(a, &r), 0);
    CHECK_INT(lb_array_read(a, &r, NULL, 0, &e), 0);

    /* read-only arrays refuse writes */
    char p[1024];
    path_of("rw.zarr/volumes/labels/all", p, sizeof p);
    lb_array *ro = NULL;
    CHECK_INT(lb_array_open(p, LB_OPEN_READONLY, NULL, 0, &ro, &e), 0);
    lb_roi_set(&r, 3, off, shp, &e);
    CHECK_INT(lb_array_write(ro, &r, in, n, &e), LB_EINVAL);
    CHECK_MSG(e, "read-only");
    CHECK_INT(lb_array_data_write(ro, st, cnt, view, sizeof view, &e), LB_EINVAL);
    /* and it reads what the writer wrote */
    uint16_t *back = malloc(n);
    CHECK_INT(lb_array_read(ro, &r, back, n, &e), 0);
    CHECK(back[0] == 7 && memcmp(back + 1, in + 1, n - 2) == 0);
    free(back);
    lb_array_free(ro);
    free(in);
    free(all);
    lb_array_free(a);

    CHECK_INT(lb_array_open("no/such.zarr/ds", LB_OPEN_READONLY, NULL, 0, &ro, &e), LB_ENOTFOUND);
    CHECK_INT(lb_array_open("x.zarr/../../etc", LB_OPEN_READONLY, NULL, 0, &ro, &e), LB_EINVAL);
    CHECK_INT(lb_array_open(p, 7, NULL, 0, &ro, &e), LB_EINVAL);
}

static void test_attrs_exact(void) {
    lb_error e = {0};
    int64_t s[1] = {4};
    lb_array *a = mk("attrs.zarr/a", LB_FORMAT_ZARR2, LB_DTYPE_UINT64, 1, s, NULL,
                     "{\"big\": 18446744073709551615, \"neg\": -9223372036854775808}");
    if (!a) return;
    CHECK(strstr(lb_array_attrs_json(a), "18446744073709551615") != NULL);
    CHECK(strstr(lb_array_attrs_json(a), "-9223372036854775808") != NULL);
    lb_array_free(a);
    /* and after reopening */
    lb_array *b = NULL;
    CHECK_INT(open_rel("attrs.zarr/a", &b, &e), 0);
    if (b) CHECK(strstr(lb_array_attrs_json(b), "18446744073709551615") != NULL);
    lb_array_free(b);
}

/* ---- lb_dataset_create options --------------------------------------------- */

/* Create with options, read the whole (unwritten) array back. */
static int create_read(const char *rel, lb_create_options *o, void *out, size_t size,
                       lb_error *e) {
    char p[1024];
    path_of(rel, p, sizeof p);
    int64_t s[2] = {3, 4}, ch[2] = {2, 3};
    lb_array *a = NULL;
    int rc = lb_dataset_create(p, 2, s, ch, o, &a, e);
    if (rc) return rc;
    lb_roi r;
    lb_array_roi(a, &r);
    rc = lb_array_read(a, &r, out, size, e);
    lb_array_free(a);
    return rc;
}

static void test_create(void) {
    lb_error e = {0};
    lb_create_options o;
    uint64_t u64[12];
    uint16_t u16[12];
    int8_t i8[12];
    lb_create_options_init(&o);
    o.dtype = LB_DTYPE_UINT16;
    o.fill_value_json = "7";
    CHECK_INT(create_read("cr.zarr/f7", &o, u16, sizeof u16, &e), 0);
    CHECK(u16[0] == 7 && u16[11] == 7);
    o.dtype = LB_DTYPE_UINT64;
    o.fill_value_json = "18446744073709551615";
    o.codec = "zstd:3";
    CHECK_INT(create_read("cr.zarr/fmax", &o, u64, sizeof u64, &e), 0);
    CHECK(u64[0] == UINT64_MAX && u64[11] == UINT64_MAX);
    lb_array *a = NULL;
    CHECK_INT(open_rel("cr.zarr/fmax", &a, &e), 0);
    if (a) CHECK(strstr(lb_array_codec_json(a), "zstd") != NULL);
    lb_array_free(a);
    a = NULL;
    o.codec = NULL;
    o.fill_value_json = "null";
    CHECK_INT(create_read("cr.zarr/fnull", &o, u64, sizeof u64, &e), 0);
    CHECK(u64[0] == 0 && u64[11] == 0);
    o.dtype = LB_DTYPE_INT8;
    o.fill_value_json = "-1";
    CHECK_INT(create_read("cr.zarr/fneg", &o, i8, sizeof i8, &e), 0);
    CHECK(i8[0] == -1 && i8[11] == -1);
    o.dtype = LB_DTYPE_UINT8;
    o.fill_value_json = "300";
    CHECK_INT(create_read("cr.zarr/fbig", &o, i8, sizeof i8, &e), LB_EINVAL);
    CHECK_MSG(e, "fill_value");
    char p[1024];
    path_of("cr.zarr/fbig", p, sizeof p);
    CHECK(!lb__fs_exists(p));
    o.fill_value_json = NULL;
    o.codec = "nonsense-codec";
    CHECK(create_read("cr.zarr/badcodec", &o, i8, sizeof i8, &e) < 0);
    /* N5 with its own compression JSON */
    lb_create_options_init(&o);
    o.format = LB_FORMAT_N5;
    o.dtype = LB_DTYPE_UINT32;
    o.codec = "{\"type\": \"gzip\", \"level\": 3}";
    int64_t s[3] = {3, 4, 5}, ch[3] = {2, 3, 4};
    path_of("cr.n5/vol", p, sizeof p);
    CHECK_INT(lb_dataset_create(p, 3, s, ch, &o, &a, &e), 0);
    if (a) {
        CHECK_STR(lb_array_format(a), "n5");
        CHECK(strstr(lb_array_codec_json(a), "gzip") != NULL);
        uint32_t v[60], back[60];
        for (int i = 0; i < 60; i++) v[i] = (uint32_t)(i * 1000003u);
        lb_roi r;
        lb_array_roi(a, &r);
        CHECK_INT(lb_array_write(a, &r, v, sizeof v, &e), 0);
        lb_array *b = NULL;
        CHECK_INT(lb_array_open(p, LB_OPEN_READONLY, NULL, 0, &b, &e), 0);
        if (b) {
            CHECK_INT(lb_array_read(b, &r, back, sizeof back, &e), 0);
            CHECK(memcmp(v, back, sizeof v) == 0);
        }
        lb_array_free(b);
    }
    lb_array_free(a);
    a = NULL;
    /* an existing dataset needs overwrite */
    CHECK_INT(lb_dataset_create(p, 3, s, ch, &o, &a, &e), LB_EEXIST);
    o.overwrite = 1;
    CHECK_INT(lb_dataset_create(p, 3, s, ch, &o, &a, &e), 0);
    lb_array_free(a);
    a = NULL;
    /* big-endian, F order, nested keys: a round trip */
    lb_create_options_init(&o);
    o.dtype = LB_DTYPE_INT32;
    o.big_endian = 1;
    o.fortran_order = 1;
    o.separator = '/';
    o.codec = "blosc-zstd:3";
    path_of("cr.zarr/bef", p, sizeof p);
    CHECK_INT(lb_dataset_create(p, 3, s, ch, &o, &a, &e), 0);
    if (a) {
        int32_t v[60], back[60];
        for (int i = 0; i < 60; i++) v[i] = -i * 77777;
        int64_t st[3] = {0, 0, 0};
        CHECK_INT(lb_array_data_write(a, st, s, v, sizeof v, &e), 0);
        lb_array *b = NULL;
        CHECK_INT(lb_array_open(p, LB_OPEN_READONLY, NULL, 0, &b, &e), 0);
        if (b) {
            CHECK_INT(lb_array_data_read(b, st, s, back, sizeof back, &e), 0);
            CHECK(memcmp(v, back, sizeof v) == 0);
        }
        lb_array_free(b);
    }
    lb_array_free(a);
    a = NULL;
    /* argument checks */
    o.struct_size = 3;
    CHECK_INT(lb_dataset_create(p, 3, s, ch, &o, &a, &e), LB_EINVAL);
    lb_create_options_init(&o);
    int64_t zc[3] = {2, 0, 4};
    CHECK_INT(lb_dataset_create(p, 3, s, zc, &o, &a, &e), LB_EINVAL);
    CHECK_MSG(e, "chunks[1]");
    CHECK_INT(lb_dataset_create(p, 0, s, ch, &o, &a, &e), LB_EINVAL);
    CHECK(a == NULL);
}

/* ---- slabs ------------------------------------------------------------------ */

typedef struct slab_rec {
    int calls;
    size_t next;
    size_t bad;
    const uint8_t *all; /* expected labels of the whole ROI */
} slab_rec;

static int record_slab(void *user, const void *labels, size_t n, size_t first, lb_error *err) {
    slab_rec *s = user;
    (void)err;
    s->calls++;
    if (first != s->next) s->bad++;
    if (memcmp(labels, s->all + first, n) != 0) s->bad++;
    s->next = first + n;
    return 0;
}

static void test_slabs(void) {
    lb_error e = {0};
    int64_t s[3] = {20, 6, 7}, ch[3] = {4, 3, 3};
    lb_array *a = mk("slab.zarr/a", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, ch,
                     "{\"resolution\": [2, 1, 1], \"offset\": [2, 0, 0]}");
    if (!a) return;
    size_t n = 20 * 6 * 7;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++) data[i] = (uint8_t)(i * 31 + 7);
    int64_t st[3] = {0, 0, 0};
    CHECK_INT(lb_array_data_write(a, st, s, data, n, &e), 0);
    /* ROI from z-index 3 to 17: slabs must cover it in order */
    int64_t off[3] = {8, 1, 2}, shp[3] = {28, 4, 5};
    lb_roi r;
    lb_roi_set(&r, 3, off, shp, &e);
    size_t m = 14 * 4 * 5;
    uint8_t *want = malloc(m);
    CHECK_INT(lb_array_read(a, &r, want, m, &e), 0);
    CHECK_INT(want[0], data[(3 * 6 + 1) * 7 + 2]);
    size_t sizes[4] = {1, 20, 45, 1 << 20};
    int calls[4] = {14, 5, 5, 1};
    for (int k = 0; k < 4; k++) {
        slab_rec rec = {0, 0, 0, want};
        CHECK_INT(lb__array_read_slabs_ex(a, &r, sizes[k], record_slab, &rec, NULL, &e), 0);
        CHECK_INT(rec.bad, 0);
        CHECK_INT(rec.next, m);
        /* 1 byte: a plane per slab (a chunk row would exceed 16x the target);
         * 20, 45: chunk rows of 4 planes: [3,4) [4,8) [8,12) [12,16) [16,17);
         * 1 MiB: everything at once. */
        CHECK_INT(rec.calls, calls[k]);
    }
    free(want);
    free(data);
    lb_array_free(a);
}

/* ---- BinarizeArray ----------------------------------------------------------- */

static lb_id label_at(lb_dtype dt, const void *buf, size_t i) {
    lb_id v = {0, 0};
    switch (dt) {
    case LB_DTYPE_UINT8: v.bits = ((const uint8_t *)buf)[i]; break;
    case LB_DTYPE_UINT16: v.bits = ((const uint16_t *)buf)[i]; break;
    case LB_DTYPE_UINT32: v.bits = ((const uint32_t *)buf)[i]; break;
    case LB_DTYPE_UINT64: v.bits = ((const uint64_t *)buf)[i]; break;
    case LB_DTYPE_INT8: v.bits = (uint64_t)(int64_t)((const int8_t *)buf)[i]; break;
    case LB_DTYPE_INT16: v.bits = (uint64_t)(int64_t)((const int16_t *)buf)[i]; break;
    case LB_DTYPE_INT32: v.bits = (uint64_t)(int64_t)((const int32_t *)buf)[i]; break;
    case LB_DTYPE_INT64: v.bits = (uint64_t)((const int64_t *)buf)[i]; break;
    default: break;
    }
    if (lb_dtype_is_signed(dt)) v.negative = (int64_t)v.bits < 0;
    return v;
}

static int id_eq(lb_id a, lb_id b) { return a.negative == b.negative && a.bits == b.bits; }

/* DaCapo ≥ 0.3.2's rule, by value. */
static void reference(const lb_groupings *g, lb_id bg, lb_dtype dt, const void *labels,
                      size_t n, uint8_t *out) {
    for (size_t c = 0; c < lb_groupings_count(g); c++) {
        const lb_id *ids;
        size_t m = lb_groupings_ids(g, c, &ids);
        for (size_t i = 0; i < n; i++) {
            lb_id l = label_at(dt, labels, i);
            uint8_t v = 0;
            if (m == 0) v = !id_eq(l, bg);
            for (size_t j = 0; j < m && !v; j++) v = id_eq(ids[j], l);
            out[c * n + i] = v;
        }
    }
}

/* Write `labels` into a new dataset, binarize the whole ROI, compare. */
/* lb__array_read_sparse of `roi` against a plain read (`want`, G planes
 * of n voxels): counts are the planes' non-zero voxels and planes with any
 * are complete. Run with and without a workspace (the writers keep one). */
static void check_sparse(const char *rel, const lb_array *a, const lb_roi *roi, size_t G,
                         size_t n, const uint8_t *want) {
    lb_error e = {0};
    uint8_t *got = malloc(G * n + 1);
    uint64_t *counts = calloc(G + 1, sizeof *counts);
    lb__workspace ws;
    memset(&ws, 0, sizeof ws);
    for (int pass = 0; pass < 3 && got && counts; pass++) {
        memset(got, 0xEE, G * n + 1);
        CHECK_INT(lb__array_read_sparse(a, roi, got, G * n, counts, pass ? &ws : NULL, &e), 0);
        size_t bad = 0;
        for (size_t c = 0; c < G; c++) {
            uint64_t ones = 0;
            for (size_t i = 0; i < n; i++) ones += want[c * n + i] != 0;
            bad += counts[c] != ones;
            if (counts[c]) bad += memcmp(got + c * n, want + c * n, n) != 0;
        }
        CHECK_INT(bad, 0);
        CHECK_INT(got[G * n], 0xEE);
        if (bad) fprintf(stderr, "# %s: sparse read: %zu planes differ\n", rel, bad);
    }
    lb__workspace_free(&ws);
    free(counts);
    free(got);
}

static void binarize_case(const char *rel, lb_dtype dt, const void *labels, const int64_t *s,
                          const lb_groupings *g, lb_id bg, int expect_warnings) {
    lb_error e = {0};
    int64_t ch[3] = {2, 3, 4};
    lb_array *a = mk(rel, LB_FORMAT_ZARR2, dt, 3, s, ch, "{\"resolution\": [2, 2, 2]}");
    if (!a) return;
    size_t n = (size_t)(s[0] * s[1] * s[2]);
    int64_t st[3] = {0, 0, 0};
    CHECK_INT(lb_array_data_write(a, st, s, labels, n * lb_dtype_size(dt), &e), 0);
    lb_array *b = NULL;
    int rc = lb_binarize_new(a, g, bg, &b, &e);
    CHECK_INT(rc, 0);
    if (rc) {
        fprintf(stderr, "# %s: %s\n", rel, e.message);
        return;
    }
    size_t G = lb_groupings_count(g);
    CHECK_INT(lb_array_num_channels(b), (int64_t)G);
    CHECK_INT(lb_array_warning_count(b), expect_warnings);
    lb_roi r;
    lb_array_roi(b, &r);
    CHECK_INT(lb_array_read_size(b, &r), G * n);
    uint8_t *got = malloc(G * n), *want = malloc(G * n);
    CHECK_INT(lb_array_read(b, &r, got, G * n, &e), 0);
    reference(g, bg, dt, labels, n, want);
    size_t bad = 0;
    for (size_t i = 0; i < G * n; i++) bad += got[i] != want[i];
    CHECK_INT(bad, 0);
    if (bad) fprintf(stderr, "# %s: %zu bytes differ\n", rel, bad);
    check_sparse(rel, b, &r, G, n, want);
    /* a sub-ROI: channel planes of the sub-box */
    int64_t so[3] = {2, 2, 2}, ss[3] = {2, 4, 4};
    lb_roi sub;
    lb_roi_set(&sub, 3, so, ss, &e);
    size_t sn = 1 * 2 * 2;
    uint8_t *sg = malloc(G * sn);
    CHECK_INT(lb_array_read(b, &sub, sg, G * sn, &e), 0);
    bad = 0;
    for (size_t c = 0; c < G; c++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 2; x++)
                bad += sg[c * sn + (size_t)(y * 2 + x)] !=
                       want[c * n + (size_t)((1 * s[1] + 1 + y) * s[2] + 1 + x)];
    CHECK_INT(bad, 0);
    check_sparse(rel, b, &sub, G, sn, sg);
    free(sg);
    free(got);
    free(want);
    lb_array_free(b);
}

static void add_group(lb_groupings *g, const char *name, const char *ids) {
    char arg[512];
    lb_error e = {0};
    snprintf(arg, sizeof arg, "%s=%s", name, ids);
    int rc = lb_groupings_add_arg(g, arg, &e);
    if (rc) fprintf(stderr, "# group %s: %s\n", arg, e.message);
    CHECK_INT(rc, 0);
}

static uint32_t xorshift(uint32_t *s);

/* Reads split between threads (chunks decoded in parallel, slabs binarized
 * in parallel pieces) give the bytes of single-threaded reads: a ROI large
 * enough to be split (> 2^17 voxels), odd offsets, with and without a
 * cache, and the mask over the same labels. */
static void test_threaded_reads(void) {
    lb_error e = {0};
    int64_t s[3] = {70, 66, 68}, ch[3] = {16, 32, 24};
    size_t n = 70 * 66 * 68;
    lb_array *a = mk("thr.zarr/labels", LB_FORMAT_ZARR2, LB_DTYPE_UINT16, 3, s, ch,
                     "{\"resolution\": [1, 1, 1]}");
    if (!a) return;
    uint16_t *lab = malloc(n * 2);
    uint32_t st = 12345;
    for (size_t i = 0; i < n; i++) { /* runs of 1-16 voxels of 0..40 */
        if (i == 0 || xorshift(&st) % 9 == 0) st ^= (uint32_t)i;
        lab[i] = (uint16_t)(i && (st & 15) ? lab[i - 1] : xorshift(&st) % 41);
    }
    int64_t z[3] = {0, 0, 0};
    CHECK_INT(lb_array_data_write(a, z, s, lab, n * 2, &e), 0);
    lb_groupings *g = NULL;
    CHECK_INT(lb_groupings_new(&g, &e), 0);
    add_group(g, "a", "1,2,3");
    add_group(g, "b", "3,40");
    add_group(g, "all", "");
    add_group(g, "c", "7");
    lb_array *b = NULL;
    CHECK_INT(lb_binarize_new(a, g, (lb_id){0, 0}, &b, &e), 0);
    if (!b) goto done;
    CHECK_INT(lb_array_set_threads(b, -2, &e), LB_EINVAL);
    int64_t off[3] = {3, 1, 5}, shp[3] = {64, 65, 60};
    lb_roi r;
    lb_roi_set(&r, 3, off, shp, &e);
    size_t size = lb_array_read_size(b, &r);
    uint8_t *want = malloc(size), *got = malloc(size);
    CHECK_INT(lb_array_read(b, &r, want, size, &e), 0);
    for (int threads = 2; threads <= 5; threads += 3) {
        for (int cached = 0; cached < 2; cached++) {
            CHECK_INT(lb_array_set_threads(b, threads, &e), 0);
            CHECK_INT(lb_array_set_cache(b, cached ? (size_t)8 << 20 : 0, &e), 0);
            for (int pass = 0; pass < 2; pass++) {
                memset(got, 0xEE, size);
                CHECK_INT(lb_array_read(b, &r, got, size, &e), 0);
                CHECK(memcmp(got, want, size) == 0);
            }
        }
    }
    CHECK_INT(lb_array_set_threads(b, 1, &e), 0);
    free(want);
    free(got);
done:
    lb_array_free(b);
    lb_groupings_free(g);
    free(lab);
}

static void test_binarize(void) {
    lb_error e = {0};
    int64_t s[3] = {4, 8, 10};
    size_t n = 320;
    lb_groupings *g = NULL;

    /* uint8: overlap, duplicates, empty group with background 1, unfit id */
    uint8_t *u8 = malloc(n);
    for (size_t i = 0; i < n; i++) u8[i] = (uint8_t)(i % 256);
    lb_groupings_new(&g, &e);
    add_group(g, "mito", "3,4,5");
    add_group(g, "mito_mem", "3");
    add_group(g, "dup", "1,1,7,7");
    add_group(g, "fg", "");
    add_group(g, "zero", "0");
    add_group(g, "unfit", "300,255");
    add_group(g, "none", "");
    binarize_case("bin.zarr/u8", LB_DTYPE_UINT8, u8, s, g, (lb_id){1, 0}, 1);
    lb_groupings_free(g);
    free(u8);

    /* more than 64 groups */
    uint16_t *u16 = malloc(n * 2);
    for (size_t i = 0; i < n; i++) u16[i] = (uint16_t)((i * 37) % 90);
    lb_groupings_new(&g, &e);
    for (int k = 0; k < 80; k++) {
        char name[16], ids[32];
        snprintf(name, sizeof name, "g%d", k);
        snprintf(ids, sizeof ids, "%d,%d", k, (k * 7) % 90);
        add_group(g, name, ids);
    }
    binarize_case("bin.zarr/many", LB_DTYPE_UINT16, u16, s, g, (lb_id){0, 0}, 0);
    lb_groupings_free(g);
    free(u16);

    /* signed ids */
    int16_t *i16 = malloc(n * 2);
    for (size_t i = 0; i < n; i++) i16[i] = (int16_t)((int)(i % 64) - 32);
    lb_groupings_new(&g, &e);
    add_group(g, "neg", "-1,-32,-5");
    add_group(g, "pos", "1,31");
    add_group(g, "not_minus_one", "");
    add_group(g, "huge", "40000,-40000");
    binarize_case("bin.zarr/i16", LB_DTYPE_INT16, i16, s, g, (lb_id){(uint64_t)-1, 1}, 2);
    lb_groupings_free(g);
    free(i16);

    /* uint64 with 2^64-1; -1 is a different value */
    uint64_t *u64 = malloc(n * 8);
    for (size_t i = 0; i < n; i++) u64[i] = i % 3 == 0 ? UINT64_MAX : (uint64_t)i;
    lb_groupings_new(&g, &e);
    add_group(g, "max", "18446744073709551615");
    add_group(g, "minus_one", "-1");
    add_group(g, "big", "9223372036854775808,5");
    binarize_case("bin.zarr/u64", LB_DTYPE_UINT64, u64, s, g, (lb_id){0, 0}, 1);
    lb_groupings_free(g);
    free(u64);

    /* properties and refusals */
    lb_groupings_new(&g, &e);
    add_group(g, "a", "1");
    add_group(g, "b", "2");
    lb_array *src = NULL, *b = NULL;
    CHECK_INT(open_rel("bin.zarr/u8", &src, &e), 0);
    CHECK_INT(lb_binarize_new(src, g, (lb_id){0, 0}, &b, &e), 0);
    if (b) {
        char ax[64];
        axes_str(b, ax, sizeof ax);
        CHECK_STR(ax, "c,z,y,x");
        CHECK_INT(lb_array_dims(b), 3);
        CHECK_INT(lb_array_ndim(b), 4);
        CHECK_INT(lb_array_voxel_size(b)[0], 2);
        CHECK_INT(lb_array_shape(b)[0], 2);
        CHECK_INT(lb_array_shape(b)[3], 10);
        CHECK_STR(lb_array_channel_name(b, 1), "b");
        CHECK(lb_array_channel_name(b, 2) == NULL);
        CHECK_STR(lb_array_kind(b), "BinarizeArray");
        CHECK(lb_array_format(b) == NULL);
        CHECK(lb_array_chunks(b) == NULL);
        CHECK(lb_array_path(b) == NULL);
        CHECK(lb_array_source(b) != NULL);
        CHECK_STR(lb_array_kind(lb_array_source(b)), "ZarrArray");
        CHECK_INT(lb_array_set_cache(b, 1 << 20, &e), 0);
        const lb_groupings *gg = NULL;
        lb_id bgv = {9, 0};
        int hasbg = 0;
        CHECK_INT(lb__array_groupings(b, &gg, &bgv, &hasbg), 0);
        CHECK(gg != NULL && gg != g && lb_groupings_count(gg) == 2);
        CHECK(hasbg == 1 && bgv.bits == 0);
        CHECK_INT(lb__array_groupings(lb_array_source(b), &gg, &bgv, &hasbg), -1);
        /* the data view and writes are refused with DaCapo's message */
        int64_t st[4] = {0, 0, 0, 0}, cnt[4] = {1, 1, 1, 1};
        uint8_t buf[8];
        CHECK_INT(lb_array_data_read(b, st, cnt, buf, 1, &e), LB_EVIRTUAL);
        CHECK_STR(e.message, "cannot get a writable view of this array because it is a "
                             "virtual array created by modifying another array on demand");
        CHECK_INT(lb_array_data_write(b, st, cnt, buf, 1, &e), LB_EVIRTUAL);
        CHECK_STR(e.message, "cannot get a writable view of this array because it is a "
                             "virtual array created by modifying another array on demand");
        lb_roi r;
        lb_array_roi(b, &r);
        CHECK_INT(lb_array_write(b, &r, buf, 1, &e), LB_EVIRTUAL);
        /* reads name the wrapper and the stored array */
        int64_t mo[3] = {1, 0, 0}, ms[3] = {2, 2, 2};
        lb_roi_set(&r, 3, mo, ms, &e);
        CHECK_INT(lb_array_read(b, &r, buf, 2, &e), LB_EROI);
        CHECK_MSG(e, "ROI [1:3, 0:2, 0:2] is not aligned to the voxel size (2, 2, 2) of "
                     "BinarizeArray over ");
    }
    lb_array_free(b);
    b = NULL;

    /* a source with channels is refused (and freed) */
    int64_t s4[4] = {2, 3, 4, 5};
    lb_array *c4 = mk("bin.zarr/ch", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 4, s4, NULL,
                      "{\"axes\": [\"c\", \"z\", \"y\", \"x\"]}");
    CHECK_INT(lb_binarize_new(c4, g, (lb_id){0, 0}, &b, &e), LB_EINVAL);
    /* the message names the path and says what the path may be */
    CHECK_MSG(e, "bin.zarr/ch: cannot binarize a source array with channels (axes c, z, y, x)");
    CHECK_MSG(e, "rather than a label dataset?");
    CHECK(b == NULL);
    c4 = NULL;
    CHECK_INT(open_rel("bin.zarr/ch", &c4, &e), 0);
    CHECK_INT(lb_mask_new(c4, g, &b, &e), LB_EINVAL);
    CHECK_MSG(e, "with channels");
    /* nor can a wrapper be wrapped */
    lb_array *w = NULL;
    CHECK_INT(open_rel("bin.zarr/u8", &src, &e), 0);
    CHECK_INT(lb_binarize_new(src, g, (lb_id){0, 0}, &w, &e), 0);
    CHECK_INT(lb_binarize_new(w, g, (lb_id){0, 0}, &b, &e), LB_EINVAL);
    CHECK_MSG(e, "with channels");
    /* float labels */
    write_text("bin.zarr/f32/.zarray",
               "{\"zarr_format\": 2, \"shape\": [4, 8, 10], \"chunks\": [4, 8, 10], "
               "\"dtype\": \"<f4\", \"compressor\": null, \"fill_value\": 0.0, "
               "\"filters\": null, \"order\": \"C\"}");
    lb_array *f = NULL;
    CHECK_INT(open_rel("bin.zarr/f32", &f, &e), 0);
    CHECK_INT(lb_binarize_new(f, g, (lb_id){0, 0}, &b, &e), LB_EUNSUPPORTED);
    CHECK_MSG(e, "bin.zarr/f32: cannot binarize a source array of dtype float32: label ids "
                 "must be integers; is this an output");
    CHECK_INT(open_rel("bin.zarr/f32", &f, &e), 0);
    CHECK_INT(lb_mask_new(f, g, &b, &e), LB_EUNSUPPORTED);
    CHECK_MSG(e, "bin.zarr/f32: cannot build a mask over a source array of dtype float32");
    /* an output of labelbin names the labels it was made from */
    lb_array *out4 = mk("bin.zarr/made", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 4, s4, NULL,
                        "{\"axes\": [\"c\", \"z\", \"y\", \"x\"], \"labelbin\": "
                        "{\"kind\": \"BinarizeArray\", \"source\": \"/data/crop.zarr/labels\"}}");
    CHECK_INT(lb_binarize_new(out4, g, (lb_id){0, 0}, &b, &e), LB_EINVAL);
    CHECK_MSG(e, "bin.zarr/made: cannot binarize a source array with channels");
    CHECK_MSG(e, "it is a BinarizeArray that labelbin wrote from /data/crop.zarr/labels: give "
                 "that label dataset instead");
    /* empty groupings: an array without channels is never what was meant */
    lb_groupings *none = NULL;
    CHECK_INT(lb_groupings_new(&none, &e), 0);
    CHECK_INT(open_rel("bin.zarr/u8", &src, &e), 0);
    CHECK_INT(lb_binarize_new(src, none, (lb_id){0, 0}, &b, &e), LB_EINVAL);
    CHECK_MSG(e, "the groupings are empty");
    CHECK_INT(open_rel("bin.zarr/u8", &src, &e), 0);
    CHECK_INT(lb_mask_new(src, none, &b, &e), LB_EINVAL);
    CHECK_MSG(e, "the groupings are empty");
    CHECK(b == NULL);
    lb_groupings_free(none);
    CHECK_INT(lb_binarize_new(NULL, g, (lb_id){0, 0}, &b, &e), LB_EINVAL);
    lb_groupings_free(g);
}

/* ---- MissingAnnotationsMask ---------------------------------------------------- */

static void label_json(lb__buf *b, int value, const char *present, const char *annotated) {
    lb_error e = {0};
    lb__buf_printf(b, &e,
                   "%s{\"value\": %d, \"name\": {\"long\": \"label %d\", \"short\": \"l%d\"}, "
                   "\"annotationState\": {\"present\": %s, \"annotated\": %s}, \"count\": null}",
                   b->size && b->data[b->size - 1] != '[' ? ", " : "", value, value, value,
                   present, annotated);
}

/* Mask of `labels` (uint8) given the attrs; enabled[c] expected per group. */
static void mask_case(const char *rel, const char *attrs, const lb_groupings *g,
                      const uint8_t *enabled, lb_annotations kind) {
    lb_error e = {0};
    int64_t s[3] = {3, 4, 5};
    size_t n = 60;
    lb_array *a = mk(rel, LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, NULL, attrs);
    if (!a) return;
    uint8_t labels[60];
    for (size_t i = 0; i < n; i++) labels[i] = (uint8_t)(i % 7 == 0 ? 0 : i % 40);
    int64_t st[3] = {0, 0, 0};
    CHECK_INT(lb_array_data_write(a, st, s, labels, n, &e), 0);
    CHECK_INT(lb_array_annotations(a), kind);
    lb_array *m = NULL;
    int rc = lb_mask_new(a, g, &m, &e);
    CHECK_INT(rc, 0);
    if (rc) {
        fprintf(stderr, "# %s: %s\n", rel, e.message);
        return;
    }
    CHECK_STR(lb_array_kind(m), "MissingAnnotationsMask");
    CHECK_INT(lb_array_annotations(m), kind);
    size_t G = lb_groupings_count(g);
    lb_roi r;
    lb_array_roi(m, &r);
    uint8_t *got = malloc(G * n);
    CHECK_INT(lb_array_read(m, &r, got, G * n, &e), 0);
    size_t bad = 0;
    for (size_t c = 0; c < G; c++)
        for (size_t i = 0; i < n; i++) bad += got[c * n + i] != (enabled[c] && labels[i] > 0);
    CHECK_INT(bad, 0);
    if (bad) fprintf(stderr, "# %s: %zu bytes differ\n", rel, bad);
    check_sparse(rel, m, &r, G, n, got);
    free(got);
    lb_array_free(m);
}

static void test_mask(void) {
    lb_error e = {0};
    lb_groupings *g = NULL;
    lb_groupings_new(&g, &e);
    add_group(g, "ecs", "1");
    add_group(g, "mito", "3,4,5");
    add_group(g, "nuc", "37,28");
    add_group(g, "all", "");
    add_group(g, "big", "300");
    add_group(g, "absent", "8");

    /* boolean metadata: 3 and 28 present but not annotated; 8 absent */
    lb__buf b = {0};
    lb__buf_printf(&b, &e, "{\"labels\": [");
    label_json(&b, 1, "true", "true");
    label_json(&b, 3, "true", "false");
    label_json(&b, 28, "true", "false");
    label_json(&b, 37, "true", "true");
    label_json(&b, 8, "false", "false");
    label_json(&b, 300, "false", "true");
    lb__buf_printf(&b, &e, "]}");
    uint8_t en1[6] = {1, 0, 0, 1, 1, 1};
    mask_case("mask.zarr/bool", (const char *)b.data, g, en1, LB_ANNOTATIONS_BOOLEAN);

    /* string metadata: only "dense" counts as annotated */
    b.size = 0;
    lb__buf_printf(&b, &e, "{\"labels\": [");
    label_json(&b, 1, "true", "\"dense\"");
    label_json(&b, 3, "true", "\"sparse\"");
    label_json(&b, 300, "true", "\"empty\"");
    label_json(&b, 8, "false", "\"empty\"");
    lb__buf_printf(&b, &e, "]}");
    uint8_t en2[6] = {1, 0, 1, 1, 0, 1};
    mask_case("mask.zarr/str", (const char *)b.data, g, en2, LB_ANNOTATIONS_STRING);

    /* no metadata: label > 0 everywhere */
    uint8_t en3[6] = {1, 1, 1, 1, 1, 1};
    mask_case("mask.zarr/none", "{\"resolution\": [1, 1, 1]}", g, en3, LB_ANNOTATIONS_NONE);
    /* an empty list */
    mask_case("mask.zarr/empty", "{\"labels\": []}", g, en3, LB_ANNOTATIONS_BOOLEAN);

    /* malformed metadata: the message names the JSON path */
    static const struct {
        const char *label3; /* the 4th entry of `labels`, or the whole value */
        int whole;
        const char *needle;
    } bad[] = {
        {"{\"a\": 1}", 1, "labels: expected an array"},
        {"5", 0, "labels[3]: expected an object"},
        {"{\"annotationState\": {\"present\": true, \"annotated\": true}}", 0,
         "labels[3]: missing key \"value\""},
        {"{\"value\": 1.5, \"annotationState\": {\"present\": true, \"annotated\": true}}", 0,
         "labels[3].value: expected an integer"},
        {"{\"value\": \"3\", \"annotationState\": {\"present\": true, \"annotated\": true}}", 0,
         "labels[3].value: expected an integer"},
        {"{\"value\": 3}", 0, "labels[3]: missing key \"annotationState\""},
        {"{\"value\": 3, \"annotationState\": [true, true]}", 0,
         "labels[3].annotationState: expected an object"},
        {"{\"value\": 3, \"annotationState\": {\"present\": 2, \"annotated\": true}}", 0,
         "labels[3].annotationState.present: expected a boolean"},
        {"{\"value\": 3, \"annotationState\": {\"annotated\": true}}", 0,
         "labels[3].annotationState: missing key \"present\""},
        {"{\"value\": 3, \"annotationState\": {\"present\": true, \"annotated\": \"partial\"}}",
         0, "labels[3].annotationState.annotated: unknown value \"partial\""},
        {"{\"value\": 3, \"annotationState\": {\"present\": true, \"annotated\": null}}", 0,
         "labels[3].annotationState.annotated: expected a boolean or one of"},
        {"{\"value\": 3, \"name\": \"mito\", \"annotationState\": {\"present\": true, "
         "\"annotated\": true}}",
         0, "labels[3].name: expected an object"},
        {"{\"value\": 3, \"count\": -2, \"annotationState\": {\"present\": true, "
         "\"annotated\": true}}",
         0, "labels[3].count"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char rel[64];
        snprintf(rel, sizeof rel, "mask.zarr/bad%zu", k);
        b.size = 0;
        if (bad[k].whole) {
            lb__buf_printf(&b, &e, "{\"labels\": %s}", bad[k].label3);
        } else {
            lb__buf_printf(&b, &e, "{\"labels\": [");
            label_json(&b, 1, "true", "true");
            label_json(&b, 2, "true", "true");
            label_json(&b, 4, "true", "true");
            lb__buf_printf(&b, &e, ", %s]}", bad[k].label3);
        }
        int64_t s[3] = {2, 2, 2};
        lb_array *a = mk(rel, LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, NULL, (const char *)b.data);
        if (!a) continue;
        CHECK_INT(lb_array_annotations(a), LB_ANNOTATIONS_INVALID);
        lb_array *m = NULL;
        e.message[0] = '\0';
        CHECK_INT(lb_mask_new(a, g, &m, &e), LB_EFORMAT);
        CHECK_MSG(e, bad[k].needle);
        CHECK_MSG(e, rel);
        CHECK(m == NULL);
    }
    /* unknown keys are ignored, extra optional ones accepted */
    b.size = 0;
    lb__buf_printf(&b, &e,
                   "{\"labels\": [{\"value\": 3, \"annotationState\": {\"present\": true, "
                   "\"annotated\": false, \"sparse\": false}, \"extra\": 1, \"count\": 10}]}");
    uint8_t en4[6] = {1, 0, 1, 1, 1, 1};
    mask_case("mask.zarr/extra", (const char *)b.data, g, en4, LB_ANNOTATIONS_BOOLEAN);
    /* ids compare by value, also ids the dtype cannot hold */
    b.size = 0;
    lb__buf_printf(&b, &e, "{\"labels\": [");
    label_json(&b, 300, "true", "false");
    lb__buf_printf(&b, &e, "]}");
    uint8_t en5[6] = {1, 1, 1, 1, 0, 1};
    mask_case("mask.zarr/unfit", (const char *)b.data, g, en5, LB_ANNOTATIONS_BOOLEAN);
    lb__buf_free(&b);
    lb_groupings_free(g);
}

/* A mask says why: the ids that switched a channel off, and the ids > 0
 * met in the data that `labels` does not list as present (DaCapo counts
 * those as annotated without a word). */
static void test_mask_reasons(void) {
    lb_error e = {0};
    int64_t s[3] = {6, 8, 10}, ch[3] = {3, 4, 5};
    size_t n = 480;
    /* 1 annotated, 3 present not annotated, 5 annotated, 7 present: false,
     * 40 and 41 not listed; 0 and 2 (listed, present) fill the rest. */
    const char *attrs =
        "{\"labels\": ["
        "{\"value\": 1, \"annotationState\": {\"present\": true, \"annotated\": true}},"
        "{\"value\": 2, \"annotationState\": {\"present\": true, \"annotated\": true}},"
        "{\"value\": 3, \"annotationState\": {\"present\": true, \"annotated\": false}},"
        "{\"value\": 5, \"annotationState\": {\"present\": true, \"annotated\": true}},"
        "{\"value\": 7, \"annotationState\": {\"present\": false, \"annotated\": true}}]}";
    uint16_t *lab = calloc(n, sizeof *lab);
    for (size_t i = 0; i < n; i++) lab[i] = (uint16_t)(i % 3 ? 2 : 1);
    lab[10] = 3;
    lab[11] = 5;
    lab[200] = 7;
    lab[201] = 7;
    lab[300] = 41;
    lab[470] = 40; /* in the last z plane: z = 5 */
    lab[471] = 0;
    lb_array *a = mk("why.zarr/l", LB_FORMAT_ZARR2, LB_DTYPE_UINT16, 3, s, ch, attrs);
    int64_t z[3] = {0, 0, 0};
    if (a) CHECK_INT(lb_array_data_write(a, z, s, lab, n * 2, &e), 0);
    lb_array_free(a);

    lb_groupings *g = NULL;
    CHECK_INT(lb_groupings_new(&g, &e), 0);
    add_group(g, "mito", "4,3,5,3"); /* 3 switches it off, named once */
    add_group(g, "ecs", "1");
    add_group(g, "odd", "7,41");
    add_group(g, "all", "");

    lb_array *src = NULL, *m = NULL;
    CHECK_INT(open_rel("why.zarr/l", &src, &e), 0);
    CHECK_INT(lb_mask_new(src, g, &m, &e), 0);
    if (!m) goto done;
    const lb_id *ids = NULL;
    CHECK_INT(lb_mask_off_ids(m, 0, &ids), 1);
    CHECK(ids && ids[0].bits == 3 && !ids[0].negative);
    for (int64_t c = 1; c < 4; c++) CHECK_INT(lb_mask_off_ids(m, c, &ids), 0);
    CHECK(ids == NULL);
    CHECK_INT(lb_mask_off_ids(m, 4, NULL), 0);
    CHECK_INT(lb_mask_off_ids(m, -1, NULL), 0);
    /* nothing read yet, nothing met */
    CHECK_INT(lb_mask_unlisted_ids(m, NULL, 0), 0);
    /* read the first 5 z planes: 7 and 41, not 40 */
    int64_t off[3] = {0, 0, 0}, shp[3] = {5, 8, 10};
    lb_roi r;
    lb_roi_set(&r, 3, off, shp, &e);
    size_t size = lb_array_read_size(m, &r);
    uint8_t *buf = malloc(size);
    CHECK_INT(lb_array_read(m, &r, buf, size, &e), 0);
    lb_id got[8];
    CHECK_INT(lb_mask_unlisted_ids(m, got, 8), 2);
    CHECK(got[0].bits == 7 && got[1].bits == 41);
    lb_array_roi(m, &r);
    free(buf);
    size = lb_array_read_size(m, &r);
    buf = malloc(size);
    CHECK_INT(lb_array_read(m, &r, buf, size, &e), 0);
    free(buf);
    CHECK_INT(lb_mask_unlisted_ids(m, got, 1), 3); /* copies one, says three */
    CHECK_INT(got[0].bits, 7);
    CHECK_INT(lb_mask_unlisted_ids(m, got, 8), 3);
    CHECK(got[0].bits == 7 && got[1].bits == 40 && got[2].bits == 41);
    lb_array_free(m);
    m = NULL;

    /* the writer's reads (sparse, threaded) collect them too */
    CHECK_INT(open_rel("why.zarr/l", &src, &e), 0);
    CHECK_INT(lb_mask_new(src, g, &m, &e), 0);
    if (m) {
        char dest[1024];
        path_of("why.zarr/mask", dest, sizeof dest);
        lb_write_options o;
        lb_write_options_init(&o);
        o.threads = 3;
        CHECK_INT(lb_array_materialize(m, dest, &o, NULL, &e), 0);
        CHECK_INT(lb_mask_unlisted_ids(m, got, 8), 3);
        CHECK(got[0].bits == 7 && got[1].bits == 40 && got[2].bits == 41);
        lb_array_free(m);
        m = NULL;
    }

    /* not a mask, or no `labels` attribute: nothing to say */
    lb_array *b = NULL;
    CHECK_INT(open_rel("why.zarr/l", &src, &e), 0);
    CHECK_INT(lb_binarize_new(src, g, (lb_id){0, 0}, &b, &e), 0);
    CHECK_INT(lb_mask_off_ids(b, 0, NULL), 0);
    CHECK_INT(lb_mask_unlisted_ids(b, got, 8), 0);
    CHECK_INT(lb_mask_unlisted_ids(NULL, got, 8), 0);
    lb_array_free(b);
    a = mk("why.zarr/nolabels", LB_FORMAT_ZARR2, LB_DTYPE_UINT16, 3, s, ch, "{}");
    if (a) CHECK_INT(lb_array_data_write(a, z, s, lab, n * 2, &e), 0);
    CHECK_INT(lb_mask_new(a, g, &m, &e), 0);
    if (m) {
        lb_array_roi(m, &r);
        size = lb_array_read_size(m, &r);
        buf = malloc(size);
        CHECK_INT(lb_array_read(m, &r, buf, size, &e), 0);
        free(buf);
        CHECK_INT(lb_mask_unlisted_ids(m, got, 8), 0);
        CHECK_INT(lb_mask_off_ids(m, 0, NULL), 0);
        lb_array_free(m);
        m = NULL;
    }

    /* signed labels: negatives never count (label > 0 is the mask); at
     * most LB_MASK_UNLISTED_MAX ids are kept, ascending */
    int32_t *i32 = malloc(n * sizeof *i32);
    for (size_t i = 0; i < n; i++) i32[i] = (int32_t)(i % 2 ? -(int32_t)i : 1000 + (int32_t)i);
    a = mk("why.zarr/i32", LB_FORMAT_ZARR2, LB_DTYPE_INT32, 3, s, ch, attrs);
    if (a) CHECK_INT(lb_array_data_write(a, z, s, i32, n * 4, &e), 0);
    CHECK_INT(lb_mask_new(a, g, &m, &e), 0);
    if (m) {
        lb_array_roi(m, &r);
        size = lb_array_read_size(m, &r);
        buf = malloc(size);
        CHECK_INT(lb_array_read(m, &r, buf, size, &e), 0);
        free(buf);
        lb_id many[LB_MASK_UNLISTED_MAX + 1];
        CHECK_INT(lb_mask_unlisted_ids(m, many, LB_MASK_UNLISTED_MAX + 1),
                  LB_MASK_UNLISTED_MAX);
        int ok = 1;
        for (int i = 0; i < LB_MASK_UNLISTED_MAX; i++) {
            ok &= !many[i].negative && many[i].bits >= 1000 && many[i].bits % 2 == 0;
            if (i) ok &= many[i].bits > many[i - 1].bits;
        }
        CHECK(ok);
        lb_array_free(m);
        m = NULL;
    }
    free(i32);
done:
    lb_array_free(m);
    lb_groupings_free(g);
    free(lab);
}

/* The parser on its own: kinds and the present-but-not-annotated list. */
static void test_annotations_parse(void) {
    lb_error e = {0};
    json_object *o = NULL;
    const char *t =
        "{\"labels\": [{\"value\": 18446744073709551615, \"annotationState\": {\"present\": "
        "true, \"annotated\": false}}, {\"value\": -3, \"annotationState\": {\"present\": true, "
        "\"annotated\": \"sparse\"}}, {\"value\": 4, \"annotationState\": {\"present\": false, "
        "\"annotated\": false}}]}";
    CHECK_INT(lb__json_parse(t, strlen(t), "t", &o, &e), 0);
    lb_annotations kind;
    lb_id *pna = NULL;
    size_t n = 0;
    CHECK_INT(lb__annotations_parse(o, &kind, &pna, &n, &e), 0);
    CHECK_INT(kind, LB_ANNOTATIONS_STRING);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK(pna[0].bits == UINT64_MAX && !pna[0].negative);
        CHECK(pna[1].negative && (int64_t)pna[1].bits == -3);
    }
    free(pna);
    json_object_put(o);
    CHECK_INT(lb__annotations_parse(NULL, &kind, &pna, &n, &e), 0);
    CHECK_INT(kind, LB_ANNOTATIONS_NONE);
}

/* ---- data written by other tools ------------------------------------------------ */

/* OME-NGFF axes with units: scales and translations become whole
 * nanometres; a value that is not a whole number of nanometres, or a unit we
 * do not know, is refused naming the axis, the unit and the value. */
static void test_ome_units(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    int64_t s[3] = {4, 5, 6};
    char attrs[2048];
    static const char fmt[] =
        "{\"multiscales\": [{\"version\": \"0.4\", \"axes\": ["
        "{\"name\": \"z\", \"type\": \"space\", \"unit\": \"%s\"},"
        "{\"name\": \"y\", \"type\": \"space\", \"unit\": \"%s\"},"
        "{\"name\": \"x\", \"type\": \"space\", \"unit\": \"%s\"}],"
        "\"datasets\": [{\"path\": \"s0\", \"coordinateTransformations\": ["
        "{\"type\": \"scale\", \"scale\": [%s]},"
        "{\"type\": \"translation\", \"translation\": [%s]}]}]}]}";
    lb_array_free(mk("units.zarr/img/s0", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, NULL, NULL));
    struct {
        const char *unit[3], *scale, *translation;
        int64_t vs[3], off[3];
    } ok[] = {
        {{"micrometer", "micrometer", "micrometer"}, "0.5, 0.5, 0.5", "1.5, 0.0, -2.0",
         {500, 500, 500}, {1500, 0, -2000}},
        {{"\xc2\xb5m", "um", "\xce\xbcm"}, "0.04, 0.008, 0.004", "0.4, 0.8, 0.004",
         {40, 8, 4}, {400, 800, 4}},
        {{"angstrom", "nanometer", "millimeter"}, "40, 4, 0.000004", "80, 8, 0.000008",
         {4, 4, 4}, {8, 8, 8}},
        {{"meter", "Micrometers", "nm"}, "5e-07, 0.25, 4", "0, 0, 0", {500, 250, 4}, {0, 0, 0}},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(attrs, sizeof attrs, fmt, ok[i].unit[0], ok[i].unit[1], ok[i].unit[2],
                 ok[i].scale, ok[i].translation);
        write_text("units.zarr/img/.zattrs", attrs);
        a = NULL;
        CHECK_INT(open_rel("units.zarr/img/s0", &a, &e), 0);
        if (!a) {
            fprintf(stderr, "# units case %zu: %s\n", i, e.message);
            continue;
        }
        int64_t ws[3];
        for (int k = 0; k < 3; k++) ws[k] = s[k] * ok[i].vs[k];
        check_geo(__LINE__, a, 3, ok[i].vs, ok[i].off, ws, "z,y,x");
        CHECK_INT(lb_array_warning_count(a), 0);
        lb_array_free(a);
    }
    struct {
        const char *unit[3], *scale, *translation;
        int code;
        const char *msg;
    } bad[] = {
        {{"nanometer", "angstrom", "nanometer"}, "4, 5, 4", "0, 0, 0", LB_EFORMAT,
         "coordinateTransformations[0].scale: axis \"y\": scale 5 angstrom is 0.5 nm, not a "
         "whole number of nanometres"},
        {{"micrometer", "micrometer", "micrometer"}, "0.5, 0.5, 0.5", "0, 0.0005, 0",
         LB_EFORMAT, "axis \"y\": translation 0.0005 micrometer is 0.5 nm"},
        {{"furlong", "nanometer", "nanometer"}, "1, 1, 1", "0, 0, 0", LB_EUNSUPPORTED,
         "unknown unit \"furlong\" of the spatial axis \"z\""},
        {{"parsec", "nanometer", "nanometer"}, "1, 1, 1", "0, 0, 0", LB_ELIMIT,
         "axis \"z\": scale 1 parsec is out of range in nanometres"},
        /* nanometres keep funlib's truncation: 0.5 nm is no voxel size */
        {{"nanometer", "nanometer", "nanometer"}, "4, 0.5, 4", "0, 0, 0", LB_EFORMAT,
         "voxel size must be > 0, found 0.5"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(attrs, sizeof attrs, fmt, bad[i].unit[0], bad[i].unit[1], bad[i].unit[2],
                 bad[i].scale, bad[i].translation);
        write_text("units.zarr/img/.zattrs", attrs);
        a = NULL;
        CHECK_INT(open_rel("units.zarr/img/s0", &a, &e), bad[i].code);
        CHECK_MSG(e, bad[i].msg);
        CHECK_MSG(e, "units.zarr/img/.zattrs: multiscales[0].datasets[0]");
        lb_array_free(a);
    }
}

/* Fill a (lead..., z, y, x) uint16 label volume whose voxel i holds i % 9. */
static lb_array *labels_with_lead(const char *rel, int ndim, const int64_t *shape,
                                  const char *attrs) {
    lb_array *w = mk(rel, LB_FORMAT_ZARR2, LB_DTYPE_UINT16, ndim, shape, NULL, NULL);
    if (!w) return NULL;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    uint16_t *v = malloc(n * 2);
    for (size_t i = 0; i < n; i++) v[i] = (uint16_t)(i % 9);
    int64_t zero[LB_MAX_DIMS] = {0};
    lb_error e = {0};
    CHECK_INT(lb_array_data_write(w, zero, shape, v, n * 2, &e), 0);
    free(v);
    lb_array_free(w);
    char za[512];
    snprintf(za, sizeof za, "%s/.zattrs", rel);
    write_text(za, attrs);
    lb_array *a = NULL;
    CHECK_INT(open_rel(rel, &a, &e), 0);
    if (e.code) fprintf(stderr, "# %s: %s\n", rel, e.message);
    return a;
}

/* t, c, z, y, x OME-NGFF images: the leading axes are non-spatial; the
 * wrappers take sources whose leading axes all have extent 1 and refuse the
 * others. */
static void test_leading_axes(void) {
    lb_error e = {0};
    static const char tczyx[] =
        "{\"multiscales\": [{\"version\": \"0.4\", \"axes\": ["
        "{\"name\": \"t\", \"type\": \"time\", \"unit\": \"second\"},"
        "{\"name\": \"c\", \"type\": \"channel\"},"
        "{\"name\": \"z\", \"type\": \"space\", \"unit\": \"micrometer\"},"
        "{\"name\": \"y\", \"type\": \"space\", \"unit\": \"micrometer\"},"
        "{\"name\": \"x\", \"type\": \"space\", \"unit\": \"micrometer\"}],"
        "\"datasets\": [{\"path\": \"0\", \"coordinateTransformations\": ["
        "{\"type\": \"scale\", \"scale\": [1.0, 1.0, 0.008, 0.004, 0.004]}]}]}]}";
    int64_t s5[5] = {1, 1, 3, 4, 5};
    write_text("img5.zarr/labels/.zattrs", tczyx);
    lb_array *a = labels_with_lead("img5.zarr/labels/0", 5, s5, "{}");
    check_geo(__LINE__, a, 3, (int64_t[]){8, 4, 4}, (int64_t[]){0, 0, 0},
              (int64_t[]){24, 16, 20}, "t,c,z,y,x");
    if (!a) return;
    CHECK_INT(lb_array_num_channels(a), 1);
    CHECK_INT(lb_array_ndim(a), 5);
    lb_groupings *g = NULL;
    lb_groupings_new(&g, &e);
    add_group(g, "a", "1,2");
    add_group(g, "b", "");
    lb_array *b = NULL;
    CHECK_INT(lb_binarize_new(a, g, (lb_id){0, 0}, &b, &e), 0);
    if (b) {
        char ax[64];
        axes_str(b, ax, sizeof ax);
        CHECK_STR(ax, "c,z,y,x");
        CHECK_INT(lb_array_ndim(b), 4);
        CHECK_INT(lb_array_num_channels(b), 2);
        lb_roi r;
        lb_array_roi(b, &r);
        uint8_t out[2 * 60];
        CHECK_INT(lb_array_read(b, &r, out, sizeof out, &e), 0);
        int bad = 0;
        for (int i = 0; i < 60; i++) {
            int v = i % 9;
            bad += out[i] != (v == 1 || v == 2);
            bad += out[60 + i] != (v != 0);
        }
        CHECK_INT(bad, 0);
    }
    lb_array_free(b);
    CHECK_INT(open_rel("img5.zarr/labels/0", &a, &e), 0);
    lb_array *m = NULL;
    CHECK_INT(lb_mask_new(a, g, &m, &e), 0);
    if (m) {
        char ax[64];
        axes_str(m, ax, sizeof ax);
        CHECK_STR(ax, "c,z,y,x");
        lb_roi r;
        lb_array_roi(m, &r);
        uint8_t out[2 * 60];
        CHECK_INT(lb_array_read(m, &r, out, sizeof out, &e), 0);
        int bad = 0;
        for (int i = 0; i < 60; i++) bad += out[i] != (i % 9 > 0) || out[60 + i] != (i % 9 > 0);
        CHECK_INT(bad, 0);
    }
    lb_array_free(m);

    /* two channels: refused (and freed); a 4-D (1, z, y, x) c-source is squeezed */
    int64_t s5c[5] = {1, 2, 3, 4, 5};
    lb_array_free(mk("img5.zarr/two/0", LB_FORMAT_ZARR2, LB_DTYPE_UINT16, 5, s5c, NULL, NULL));
    write_text("img5.zarr/two/.zattrs", tczyx);
    a = NULL;
    CHECK_INT(open_rel("img5.zarr/two/0", &a, &e), 0);
    if (a) CHECK_INT(lb_array_num_channels(a), 2);
    b = NULL;
    CHECK_INT(lb_binarize_new(a, g, (lb_id){0, 0}, &b, &e), LB_EINVAL);
    CHECK(b == NULL);
    int64_t s4[4] = {1, 3, 4, 5};
    a = labels_with_lead("c1.zarr/l", 4, s4, "{\"axes\": [\"c\", \"z\", \"y\", \"x\"]}");
    b = NULL;
    CHECK_INT(lb_binarize_new(a, g, (lb_id){0, 0}, &b, &e), 0);
    if (b) {
        char ax[64];
        axes_str(b, ax, sizeof ax);
        CHECK_STR(ax, "c,z,y,x");
        lb_roi r;
        lb_array_roi(b, &r);
        uint8_t out[2 * 60];
        CHECK_INT(lb_array_read(b, &r, out, sizeof out, &e), 0);
        CHECK_INT(out[1] + out[2] + out[3], 2);
    }
    /* a wrapper's channels are never squeezed, even a single one */
    lb_groupings *one = NULL;
    lb_groupings_new(&one, &e);
    add_group(one, "a", "1");
    lb_array *bb = NULL;
    CHECK_INT(lb_binarize_new(b, one, (lb_id){0, 0}, &bb, &e), LB_EINVAL);
    b = NULL;
    a = NULL;
    CHECK_INT(open_rel("c1.zarr/l", &a, &e), 0);
    CHECK_INT(lb_binarize_new(a, one, (lb_id){0, 0}, &b, &e), 0);
    CHECK_INT(lb_mask_new(b, one, &bb, &e), LB_EINVAL);
    lb_groupings_free(one);
    lb_groupings_free(g);

    /* non-spatial axes after spatial ones are refused */
    int64_t s3[3] = {3, 4, 5};
    a = NULL;
    CHECK_INT(geo("img5.zarr/late", LB_FORMAT_ZARR2, 3, s3, "{\"axes\": [\"z\", \"c\", \"x\"]}",
                  &a, &e),
              LB_EFORMAT);
    CHECK_MSG(e, "the channel axis \"c\" comes after the spatial axis \"z\"");
}

/* N5 scale pyramids as n5-viewer, n5-spark, neuroglancer and BigDataViewer
 * lay them out: the voxel size of s<k> is the base resolution times its
 * downsampling factors (all in N5's x, y, z order). */
static void test_n5_pyramids(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    int64_t s[3] = {8, 8, 8};
    /* per-dataset pixelResolution (the base) and downsamplingFactors */
    for (int k = 0; k < 3; k++) {
        char rel[64], attrs[256];
        snprintf(rel, sizeof rel, "pyr.n5/viewer/s%d", k);
        snprintf(attrs, sizeof attrs,
                 "{\"pixelResolution\": {\"unit\": \"nm\", \"dimensions\": [4.0, 4.0, 40.0]}%s}",
                 k == 1 ? ", \"downsamplingFactors\": [2, 2, 1]"
                 : k == 2 ? ", \"downsamplingFactors\": [4, 4, 2]" : "");
        lb_array_free(mk(rel, LB_FORMAT_N5, LB_DTYPE_UINT8, 3, s, NULL, attrs));
    }
    int64_t want[3][3] = {{40, 4, 4}, {40, 8, 8}, {80, 16, 16}};
    for (int k = 0; k < 3; k++) {
        char rel[64];
        snprintf(rel, sizeof rel, "pyr.n5/viewer/s%d", k);
        a = NULL;
        CHECK_INT(open_rel(rel, &a, &e), 0);
        int64_t ws[3] = {8 * want[k][0], 8 * want[k][1], 8 * want[k][2]};
        check_geo(__LINE__, a, 3, want[k], (int64_t[]){0, 0, 0}, ws, "z,y,x");
        lb_array_free(a);
    }
    /* the group's deprecated "scales" with its pixelResolution and offset */
    for (int k = 0; k < 3; k++) {
        char rel[64];
        snprintf(rel, sizeof rel, "pyr.n5/group/s%d", k);
        lb_array_free(mk(rel, LB_FORMAT_N5, LB_DTYPE_UINT8, 3, s, NULL, NULL));
    }
    write_text("pyr.n5/group/attributes.json",
               "{\"n5\": \"2.0.0\", \"scales\": [[1, 1, 1], [2, 2, 1], [4, 4, 2]], "
               "\"pixelResolution\": {\"unit\": \"nm\", \"dimensions\": [4, 4, 40]}, "
               "\"offset\": [16, 32, 80]}");
    for (int k = 0; k < 3; k++) {
        char rel[64];
        snprintf(rel, sizeof rel, "pyr.n5/group/s%d", k);
        a = NULL;
        CHECK_INT(open_rel(rel, &a, &e), 0);
        int64_t ws[3] = {8 * want[k][0], 8 * want[k][1], 8 * want[k][2]};
        check_geo(__LINE__, a, 3, want[k], (int64_t[]){80, 32, 16}, ws, "z,y,x");
        lb_array_free(a);
    }
    /* neuroglancer's group "downsamplingFactors" with "resolution" */
    write_text("pyr.n5/group/attributes.json",
               "{\"n5\": \"2.0.0\", \"downsamplingFactors\": [[1, 1, 1], [2, 2, 1], [4, 4, 2]], "
               "\"resolution\": [4, 4, 40], \"units\": [\"nm\", \"nm\", \"nm\"]}");
    a = NULL;
    CHECK_INT(open_rel("pyr.n5/group/s2", &a, &e), 0);
    check_geo(__LINE__, a, 3, want[2], (int64_t[]){0, 0, 0},
              (int64_t[]){640, 128, 128}, "z,y,x");
    lb_array_free(a);
    /* BigDataViewer: factors only (the resolution lives in its XML) */
    lb_array_free(mk("pyr.n5/setup0/timepoint0/s1", LB_FORMAT_N5, LB_DTYPE_UINT8, 3, s, NULL,
                     "{\"downsamplingFactors\": [2, 2, 1]}"));
    a = NULL;
    CHECK_INT(open_rel("pyr.n5/setup0/timepoint0/s1", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){1, 2, 2}, (int64_t[]){0, 0, 0},
              (int64_t[]){8, 16, 16}, "z,y,x");
    lb_array_free(a);
    /* pixelResolution as a plain array (n5-viewer accepts both forms) */
    a = NULL;
    CHECK_INT(geo("pyr.n5/plain/s1", LB_FORMAT_N5, 3, s,
                  "{\"pixelResolution\": [4, 4, 40], \"downsamplingFactors\": [2, 2, 1]}", &a,
                  &e),
              0);
    check_geo(__LINE__, a, 3, want[1], (int64_t[]){0, 0, 0}, (int64_t[]){320, 64, 64}, "z,y,x");
    lb_array_free(a);
    /* a dataset's own resolution is its voxel size as it stands */
    a = NULL;
    CHECK_INT(geo("pyr.n5/own/s1", LB_FORMAT_N5, 3, s,
                  "{\"resolution\": [8, 8, 40], \"downsamplingFactors\": [2, 2, 1]}", &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){40, 8, 8}, (int64_t[]){0, 0, 0},
              (int64_t[]){320, 64, 64}, "z,y,x");
    lb_array_free(a);
    /* a scale level the group's list does not cover, bad factors */
    write_text("pyr.n5/group/attributes.json",
               "{\"n5\": \"2.0.0\", \"scales\": [[1, 1, 1]], \"resolution\": [4, 4, 40]}");
    a = NULL;
    CHECK_INT(open_rel("pyr.n5/group/s2", &a, &e), LB_EFORMAT);
    CHECK_MSG(e, "pyr.n5/group/attributes.json: scales: has 1 entries, none for the scale level s2");
    /* (refused when creating such a dataset as when opening one) */
    char p[1024];
    lb_create_options o;
    lb_create_options_init(&o);
    o.format = LB_FORMAT_N5;
    o.attrs_json = "{\"pixelResolution\": [4, 4, 40], \"downsamplingFactors\": [2, 0, 1]}";
    path_of("pyr.n5/bad/s1", p, sizeof p);
    a = NULL;
    CHECK_INT(lb_dataset_create(p, 3, s, s, &o, &a, &e), LB_EFORMAT);
    CHECK_MSG(e, "bad/s1/attributes.json: downsamplingFactors[1]: a downsampling factor must be "
                 "> 0, found 0");
    o.attrs_json = "{\"pixelResolution\": [4, 4, 40], \"downsamplingFactors\": [2, 2]}";
    CHECK_INT(lb_dataset_create(p, 3, s, s, &o, &a, &e), LB_EFORMAT);
    CHECK_MSG(e, "bad/s1/attributes.json: pixelResolution has 3 entries but ");
    CHECK_MSG(e, "downsamplingFactors has 2");
    CHECK(a == NULL);
}

/* OME-NGFF multiscales whose paths go two levels down are found whatever
 * the container is called, while the directories are Zarr groups. */
static void test_ome_outside_container(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    int64_t s[3] = {4, 5, 6};
    char attrs[2048];
    lb_array_free(mk("plain/crop/labels/s0", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, NULL, NULL));
    write_text("plain/crop/labels/.zgroup", "{\"zarr_format\": 2}");
    write_text("plain/crop/.zgroup", "{\"zarr_format\": 2}");
    snprintf(attrs, sizeof attrs, ome_attrs, "labels/s0", "labels/s1");
    write_text("plain/crop/.zattrs", attrs);
    CHECK_INT(open_rel("plain/crop/labels/s0", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){3, 3, 3}, (int64_t[]){30, 60, 90},
              (int64_t[]){12, 15, 18}, "z,y,x");
    lb_array_free(a);
    /* a directory that is no Zarr group ends the walk */
    lb_array_free(mk("plain2/crop/mid/labels/s0", LB_FORMAT_ZARR2, LB_DTYPE_UINT8, 3, s, NULL,
                     NULL));
    write_text("plain2/crop/.zgroup", "{\"zarr_format\": 2}");
    snprintf(attrs, sizeof attrs, ome_attrs, "mid/labels/s0", "x");
    write_text("plain2/crop/.zattrs", attrs);
    a = NULL;
    CHECK_INT(open_rel("plain2/crop/mid/labels/s0", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){1, 1, 1}, (int64_t[]){0, 0, 0},
              (int64_t[]){4, 5, 6}, "z,y,x");
    lb_array_free(a);
    write_text("plain2/crop/mid/labels/.zgroup", "{\"zarr_format\": 2}");
    write_text("plain2/crop/mid/.zgroup", "{\"zarr_format\": 2}");
    a = NULL;
    CHECK_INT(open_rel("plain2/crop/mid/labels/s0", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){3, 3, 3}, (int64_t[]){30, 60, 90},
              (int64_t[]){12, 15, 18}, "z,y,x");
    lb_array_free(a);
}

/* funlib's F-order rule, the voxel-size/axes length message, 0/1 booleans
 * in annotation metadata. */
static void test_funlib_details(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    int64_t s[3] = {4, 5, 6};
    char p[1024];
    path_of("ford.zarr/a", p, sizeof p);
    lb_create_options o;
    lb_create_options_init(&o);
    o.fortran_order = 1;
    o.overwrite = 1;
    CHECK_INT(lb_dataset_create(p, 3, s, s, &o, &a, &e), 0);
    lb_array_free(a);
    write_text("ford.zarr/a/.zattrs",
               "{\"resolution\": [2, 3, 4], \"offset\": [20, 30, 40], \"axes\": [\"x\", \"y\", "
               "\"z\"]}");
    a = NULL;
    CHECK_INT(open_rel("ford.zarr/a", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){4, 3, 2}, (int64_t[]){40, 30, 20},
              (int64_t[]){16, 15, 12}, "z,y,x");
    lb_array_free(a);
    /* an "order" attribute says otherwise */
    write_text("ford.zarr/a/.zattrs",
               "{\"resolution\": [2, 3, 4], \"offset\": [20, 30, 40], \"order\": \"C\"}");
    a = NULL;
    CHECK_INT(open_rel("ford.zarr/a", &a, &e), 0);
    check_geo(__LINE__, a, 3, (int64_t[]){2, 3, 4}, (int64_t[]){20, 30, 40},
              (int64_t[]){8, 15, 24}, "z,y,x");
    lb_array_free(a);
    a = NULL;
    CHECK_INT(geo("ford.zarr/c", LB_FORMAT_ZARR2, 3, s,
                  "{\"resolution\": [2, 3, 4], \"order\": \"F\"}", &a, &e),
              0);
    check_geo(__LINE__, a, 3, (int64_t[]){4, 3, 2}, (int64_t[]){0, 0, 0},
              (int64_t[]){16, 15, 12}, "z,y,x");
    lb_array_free(a);

    /* a channel axis first and a voxel size with one entry too many */
    int64_t s4[4] = {2, 4, 5, 6};
    a = NULL;
    CHECK_INT(geo("len.zarr/a", LB_FORMAT_ZARR2, 4, s4,
                  "{\"axes\": [\"c\", \"z\", \"y\", \"x\"], \"resolution\": [1, 2, 2, 2]}", &a,
                  &e),
              LB_EFORMAT);
    CHECK_MSG(e, "len.zarr/a/.zattrs: resolution has 4 entries but ");
    CHECK_MSG(e, "axes has 3 spatial axes (z, y, x) besides its non-spatial axes");
    CHECK(!strstr(e.message, "must come first"));

    /* annotated / present as 0 and 1 */
    json_object *j = NULL;
    const char *t =
        "{\"labels\": [{\"value\": 3, \"annotationState\": {\"present\": 1, \"annotated\": 0}}, "
        "{\"value\": 4, \"annotationState\": {\"present\": 1, \"annotated\": 1}}, "
        "{\"value\": 5, \"annotationState\": {\"present\": 0, \"annotated\": false}}]}";
    CHECK_INT(lb__json_parse(t, strlen(t), "t", &j, &e), 0);
    lb_annotations kind;
    lb_id *pna = NULL;
    size_t n = 0;
    CHECK_INT(lb__annotations_parse(j, &kind, &pna, &n, &e), 0);
    CHECK_INT(kind, LB_ANNOTATIONS_BOOLEAN);
    CHECK_INT(n, 1);
    if (n == 1) CHECK_INT(pna[0].bits, 3);
    free(pna);
    json_object_put(j);
    t = "{\"labels\": [{\"value\": 3, \"annotationState\": {\"present\": true, \"annotated\": "
        "2}}]}";
    CHECK_INT(lb__json_parse(t, strlen(t), "t", &j, &e), 0);
    CHECK_INT(lb__annotations_parse(j, &kind, &pna, &n, &e), LB_EFORMAT);
    CHECK_MSG(e, "labels[0].annotationState.annotated: expected a boolean");
    json_object_put(j);
}

/* ---- concurrent reads ---------------------------------------------------------- */

typedef struct reader {
    const lb_array *a;   /* channels-first uint8 wrapper over a (12, 14, 16) volume */
    const uint8_t *full; /* its whole-ROI output */
    size_t G;
    uint32_t seed;
    size_t bad;
    int failed;
} reader;

static uint32_t xorshift(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void *reader_main(void *arg) {
    reader *r = arg;
    const int64_t S[3] = {12, 14, 16};
    uint8_t *buf = malloc(r->G * 12 * 14 * 16);
    for (int it = 0; it < 40; it++) {
        int64_t b[3], n[3], off[3], shp[3];
        for (int d = 0; d < 3; d++) {
            b[d] = xorshift(&r->seed) % (uint32_t)S[d];
            n[d] = 1 + xorshift(&r->seed) % (uint32_t)(S[d] - b[d]);
            off[d] = b[d] * 2;
            shp[d] = n[d] * 2;
        }
        lb_roi roi;
        lb_error e = {0};
        lb_roi_set(&roi, 3, off, shp, &e);
        size_t m = (size_t)(n[0] * n[1] * n[2]);
        if (lb_array_read(r->a, &roi, buf, r->G * m, &e)) {
            r->failed = 1;
            break;
        }
        for (size_t c = 0; c < r->G; c++)
            for (int64_t z = 0; z < n[0]; z++)
                for (int64_t y = 0; y < n[1]; y++)
                    for (int64_t x = 0; x < n[2]; x++) {
                        size_t i = c * m + (size_t)((z * n[1] + y) * n[2] + x);
                        size_t j = c * 12 * 14 * 16 +
                                   (size_t)(((b[0] + z) * 14 + b[1] + y) * 16 + b[2] + x);
                        r->bad += buf[i] != r->full[j];
                    }
    }
    free(buf);
    return NULL;
}

static void test_threads(void) {
    lb_error e = {0};
    int64_t s[3] = {12, 14, 16}, ch[3] = {5, 4, 6};
    lb_array *a = mk("thr.zarr/labels", LB_FORMAT_ZARR2, LB_DTYPE_UINT32, 3, s, ch,
                     "{\"resolution\": [2, 2, 2], \"labels\": [{\"value\": 5, "
                     "\"annotationState\": {\"present\": true, \"annotated\": false}}]}");
    if (!a) return;
    uint32_t seed = (uint32_t)getpid() | 1u;
    printf("# test_threads seed %u\n", seed);
    size_t n = 12 * 14 * 16;
    uint32_t *labels = malloc(n * 4);
    uint32_t st = seed;
    for (size_t i = 0; i < n; i++) labels[i] = xorshift(&st) % 9;
    int64_t z0[3] = {0, 0, 0};
    CHECK_INT(lb_array_data_write(a, z0, s, labels, n * 4, &e), 0);
    lb_array_free(a);
    lb_groupings *g = NULL;
    lb_groupings_new(&g, &e);
    add_group(g, "a", "1,2");
    add_group(g, "b", "5");
    add_group(g, "c", "");
    for (int kind = 0; kind < 2; kind++) {
        lb_array *src = NULL, *w = NULL;
        CHECK_INT(open_rel("thr.zarr/labels", &src, &e), 0);
        int rc = kind == 0 ? lb_binarize_new(src, g, (lb_id){0, 0}, &w, &e)
                           : lb_mask_new(src, g, &w, &e);
        CHECK_INT(rc, 0);
        if (rc) continue;
        if (kind == 1) {
            const lb_groupings *gg = NULL;
            int hasbg = 1;
            CHECK_INT(lb__array_groupings(w, &gg, NULL, &hasbg), 0);
            CHECK(gg && lb_groupings_count(gg) == 3 && hasbg == 0);
        }
        CHECK_INT(lb_array_set_cache(w, 1 << 16, &e), 0);
        lb_roi roi;
        lb_array_roi(w, &roi);
        uint8_t *full = malloc(3 * n);
        CHECK_INT(lb_array_read(w, &roi, full, 3 * n, &e), 0);
        /* spot-check the full output against the rules */
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t l = labels[i];
            if (kind == 0)
                bad += full[i] != (l == 1 || l == 2) || full[n + i] != (l == 5) ||
                       full[2 * n + i] != (l != 0);
            else
                bad += full[i] != (l > 0) || full[n + i] != 0 || full[2 * n + i] != (l > 0);
        }
        CHECK_INT(bad, 0);
        /* the cache (small: evictions happen) stays on while threads read */
        pthread_t th[4];
        reader rd[4];
        for (int t = 0; t < 4; t++) {
            rd[t] = (reader){w, full, 3, seed + (uint32_t)t * 7919u, 0, 0};
            pthread_create(&th[t], NULL, reader_main, &rd[t]);
        }
        for (int t = 0; t < 4; t++) {
            pthread_join(th[t], NULL);
            CHECK_INT(rd[t].failed, 0);
            CHECK_INT(rd[t].bad, 0);
        }
        free(full);
        lb_array_free(w);
    }
    lb_groupings_free(g);
    free(labels);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lb_test_arrays.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_defaults();
    test_keys();
    test_parent_group();
    test_ome();
    test_n5();
    test_rounding();
    test_geometry_errors();
    test_channels_and_override();
    test_read_write();
    test_attrs_exact();
    test_create();
    test_slabs();
    test_binarize();
    test_threaded_reads();
    test_mask();
    test_mask_reasons();
    test_annotations_parse();
    test_ome_units();
    test_leading_axes();
    test_n5_pyramids();
    test_ome_outside_container();
    test_funlib_details();
    test_threads();
    lb_error e = {0};
    lb__fs_remove_tree(tmpdir, &e);
    return tap_done();
}
