/*
 * test_golden.c — the conformance cases: the repository's own
 * ($LB_CONFORMANCE_DIR, written by tests/conformance/make_cases.py) and, when
 * that directory exists, those in $LB_GOLDEN_DIR. Every case's source opens
 * with the expected geometry, and BinarizeArray / MissingAnnotationsMask —
 * built directly and from a DaCapo config — return the expected bytes for
 * every request and refuse the bad ROIs.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/json.h"
#include "labelbin.h"
#include "core/path.h"
#include "store/fs.h"
#include "support.h"
#include "tap.h"

static int read_file(const char *path, lb__buf *out) {
    lb_error e = {0};
    int rc = lb__fs_read(path, (size_t)1 << 30, out, &e);
    if (rc) fprintf(stderr, "# %s\n", e.message);
    return rc;
}

static int roi_from_json(json_object *r, lb_roi *roi) {
    int64_t off[LB_MAX_DIMS], shp[LB_MAX_DIMS];
    int n1 = 0, n2 = 0;
    lb_error e = {0};
    if (lb__json_int64_array(lb__json_get(r, "offset"), "offset", off, LB_MAX_DIMS, &n1, &e) ||
        lb__json_int64_array(lb__json_get(r, "shape"), "shape", shp, LB_MAX_DIMS, &n2, &e) ||
        n1 != n2)
        return -1;
    return lb_roi_set(roi, n1, off, shp, &e);
}

static void check_props(const char *name, const lb_array *a, json_object *exp) {
    const char *dtype = json_object_get_string(lb__json_get(exp, "dtype"));
    CHECK_STR(lb_dtype_name(lb_array_dtype(a)), dtype);
    json_object *axes = lb__json_get(exp, "axes");
    int dims = json_object_get_int(lb__json_get(exp, "dims"));
    CHECK_INT(lb_array_dims(a), dims);
    CHECK_INT(lb_array_ndim(a), (int)json_object_array_length(axes));
    for (size_t i = 0; i < json_object_array_length(axes) && (int)i < lb_array_ndim(a); i++)
        CHECK_STR(lb_array_axis(a, (int)i), json_object_get_string(json_object_array_get_idx(axes, i)));
    json_object *vs = lb__json_get(exp, "voxel_size");
    for (int i = 0; i < dims; i++)
        CHECK_INT(lb_array_voxel_size(a)[i], json_object_get_int64(json_object_array_get_idx(vs, (size_t)i)));
    lb_roi want, have;
    CHECK(roi_from_json(lb__json_get(exp, "roi"), &want) == 0);
    lb_array_roi(a, &have);
    CHECK_INT(have.ndim, want.ndim);
    for (int i = 0; i < want.ndim; i++) {
        CHECK_INT(have.offset[i], want.offset[i]);
        CHECK_INT(have.shape[i], want.shape[i]);
    }
    CHECK_INT(lb_array_num_channels(a), -1);
    CHECK_STR(lb_array_kind(a), "ZarrArray");
    CHECK(lb_array_format(a) != NULL);
    (void)name;
}

static void check_wrapper(const lb_array *w, const char *kind, json_object *exp,
                          const lb_array *src) {
    CHECK_STR(lb_array_kind(w), kind);
    json_object *names = lb__json_get(exp, "channels");
    int64_t nc = json_object_get_int64(lb__json_get(exp, "num_channels"));
    CHECK_INT(lb_array_num_channels(w), nc);
    CHECK_INT(lb_array_ndim(w), lb_array_dims(src) + 1);
    CHECK_STR(lb_array_axis(w, 0), "c");
    for (int i = 0; i < lb_array_dims(src); i++)
        CHECK_STR(lb_array_axis(w, i + 1), lb_array_axis(src, i));
    CHECK_INT(lb_array_dtype(w), LB_DTYPE_UINT8);
    CHECK_INT(lb_array_writable(w), 0);
    CHECK_INT(lb_array_shape(w)[0], nc);
    for (int64_t c = 0; c < nc; c++)
        CHECK_STR(lb_array_channel_name(w, c),
                  json_object_get_string(json_object_array_get_idx(names, (size_t)c)));
    CHECK_STR(lb_array_attrs_json(w), lb_array_attrs_json(src));
}

/* Read `roi` through `a` and compare with the expected file. */
static void check_read(const lb_array *a, const char *casedir, const char *file,
                       const lb_roi *roi, json_object *shape, const char *what) {
    size_t n = 1;
    for (size_t i = 0; i < json_object_array_length(shape); i++)
        n *= (size_t)json_object_get_int64(json_object_array_get_idx(shape, i));
    CHECK_INT(lb_array_read_size(a, roi), n);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", casedir, file);
    lb__buf want = {0};
    if (read_file(path, &want)) {
        CHECK(0);
        return;
    }
    CHECK_INT(want.size, n);
    uint8_t *got = malloc(n);
    lb_error e = {0};
    int rc = lb_array_read(a, roi, got, n, &e);
    CHECK_INT(rc, 0);
    if (rc) fprintf(stderr, "# %s: %s\n", what, e.message);
    if (!rc && want.size == n) {
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < n; i++)
            if (got[i] != want.data[i] && bad++ == 0) first = i;
        CHECK_INT(bad, 0);
        if (bad) fprintf(stderr, "# %s: %zu bytes differ, first at %zu\n", what, bad, first);
    }
    free(got);
    lb__buf_free(&want);
}

static void check_refused(const lb_array *a, const lb_roi *roi, const char *what) {
    char rs[512];
    lb_roi_format(roi, rs, sizeof rs);
    size_t n = 4096;
    uint8_t *buf = malloc(n * 8);
    lb_error e = {0};
    int rc = lb_array_read(a, roi, buf, n, &e);
    CHECK_INT(rc, LB_EROI);
    CHECK_MSG(e, rs);
    if (rc != LB_EROI) fprintf(stderr, "# %s: %s\n", what, e.message);
    free(buf);
}

/* "crop.zarr/volumes/labels/all" -> file_name "crop.zarr", dataset the rest. */
static void split_source(const char *src, char *file, char *dataset, size_t size) {
    size_t c = lb__path_container_len(src);
    snprintf(file, size, "%.*s", (int)c, src);
    snprintf(dataset, size, "%s", src[c] == '/' ? src + c + 1 : src + c);
}

static void run_case(const char *gdir, const char *name) {
    char casedir[4096], path[4200];
    snprintf(casedir, sizeof casedir, "%s/%s", gdir, name);
    snprintf(path, sizeof path, "%s/case.json", casedir);
    json_object *c = NULL;
    lb_error e = {0};
    if (lb__json_read_file(path, &c, &e)) {
        fprintf(stderr, "# %s\n", e.message);
        CHECK(0);
        return;
    }
    printf("# case %s\n", name);
    const char *source = json_object_get_string(lb__json_get(c, "source"));
    json_object *exp = lb__json_get(c, "expected_properties");
    snprintf(path, sizeof path, "%s/%s", casedir, source);

    lb_array *src = NULL, *bin = NULL, *mask = NULL, *cbin = NULL, *cmask = NULL;
    int rc = lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &src, &e);
    CHECK_INT(rc, 0);
    if (rc) {
        fprintf(stderr, "# %s: %s\n", name, e.message);
        json_object_put(c);
        return;
    }
    check_props(name, src, exp);

    lb_groupings *g = NULL;
    CHECK_INT(lb_groupings_new(&g, &e), 0);
    const char *gjson = lb__json_string(lb__json_get(c, "groupings"), 0);
    rc = lb_groupings_add_json(g, gjson, &e);
    CHECK_INT(rc, 0);
    lb_id bg = {0, 0};
    CHECK_INT(lb__json_id(lb__json_get(c, "background"), "background", &bg, &e), 0);

    lb_array *s1 = NULL, *s2 = NULL;
    CHECK_INT(lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &s1, &e), 0);
    CHECK_INT(lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &s2, &e), 0);
    rc = lb_binarize_new(s1, g, bg, &bin, &e);
    CHECK_INT(rc, 0);
    if (rc) fprintf(stderr, "# %s: %s\n", name, e.message);
    rc = lb_mask_new(s2, g, &mask, &e);
    CHECK_INT(rc, 0);
    if (rc) fprintf(stderr, "# %s: %s\n", name, e.message);

    /* The same arrays from DaCapo configs. */
    char file[1024], dataset[1024], bgs[32];
    split_source(source, file, dataset, sizeof file);
    lb_id_format(bg, bgs, sizeof bgs);
    lb__buf cfg = {0};
    lb__buf_printf(&cfg, &e,
                   "{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"gt\", "
                   "\"source_array_config\": {\"__type__\": \"ZarrArrayConfig\", \"name\": "
                   "\"labels\", \"file_name\": \"%s\", \"dataset\": \"%s\"}, \"groupings\": %s, "
                   "\"background\": %s}",
                   file, dataset, gjson, bgs);
    rc = lb_array_from_config((const char *)cfg.data, casedir, &cbin, &e);
    CHECK_INT(rc, 0);
    if (rc) fprintf(stderr, "# %s: config: %s\n", name, e.message);
    cfg.size = 0;
    lb__buf_printf(&cfg, &e,
                   "{\"__type__\": \"MissingAnnotationsMaskConfig\", \"name\": \"mask\", "
                   "\"source_array_config\": {\"__type__\": \"ZarrArrayConfig\", \"name\": "
                   "\"labels\", \"file_name\": \"%s\", \"dataset\": \"%s\"}, \"groupings\": %s}",
                   file, dataset, gjson);
    rc = lb_array_from_config((const char *)cfg.data, casedir, &cmask, &e);
    CHECK_INT(rc, 0);
    if (rc) fprintf(stderr, "# %s: config: %s\n", name, e.message);
    lb__buf_free(&cfg);

    if (bin) check_wrapper(bin, "BinarizeArray", exp, src);
    if (mask) check_wrapper(mask, "MissingAnnotationsMask", exp, src);
    if (cbin) check_wrapper(cbin, "BinarizeArray", exp, src);
    if (cmask) check_wrapper(cmask, "MissingAnnotationsMask", exp, src);

    json_object *reqs = lb__json_get(c, "requests");
    for (size_t i = 0; i < json_object_array_length(reqs); i++) {
        json_object *r = json_object_array_get_idx(reqs, i);
        lb_roi roi;
        CHECK(roi_from_json(lb__json_get(r, "roi"), &roi) == 0);
        char what[256];
        snprintf(what, sizeof what, "%s request %zu", name, i);
        if (lb__json_get(r, "error")) {
            check_refused(src, &roi, what);
            if (bin) check_refused(bin, &roi, what);
            if (mask) check_refused(mask, &roi, what);
            if (cbin) check_refused(cbin, &roi, what);
            continue;
        }
        json_object *shape = lb__json_get(r, "shape");
        const char *bfile = json_object_get_string(lb__json_get(r, "binarize"));
        const char *mfile = json_object_get_string(lb__json_get(r, "mask"));
        if (bin && bfile) check_read(bin, casedir, bfile, &roi, shape, what);
        if (mask && mfile) check_read(mask, casedir, mfile, &roi, shape, what);
        if (cbin && bfile) check_read(cbin, casedir, bfile, &roi, shape, what);
        if (cmask && mfile) check_read(cmask, casedir, mfile, &roi, shape, what);
    }
    lb_groupings_free(g);
    lb_array_free(src);
    lb_array_free(bin);
    lb_array_free(mask);
    lb_array_free(cbin);
    lb_array_free(cmask);
    json_object_put(c);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every case of `dir` (folders holding a case.json); returns their number,
 * or -1 when the directory cannot be opened. */
static int run_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    char *names[256];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 256) {
        if (de->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s/case.json", dir, de->d_name);
        if (lb__fs_is_file(p)) names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        run_case(dir, names[i]);
        free(names[i]);
    }
    printf("# %d cases in %s\n", n, dir);
    return n;
}

static void env_dir(char *buf, size_t size, const char *var, const char *base_var,
                    const char *rel) {
    const char *d = getenv(var), *base = getenv(base_var);
    if (d && *d) snprintf(buf, size, "%s", d);
    else snprintf(buf, size, "%s/%s", base && *base ? base : ".", rel);
}

int main(void) {
    char dir[4096];
    /* The repository's own cases (tests/conformance/make_cases.py, run by
     * the CTest fixture "conformance"): required. */
    env_dir(dir, sizeof dir, "LB_CONFORMANCE_DIR", "LB_BUILD_DIR", "conformance");
    int n = run_dir(dir);
    if (n < 0) fprintf(stderr, "# cannot open %s: run tests/conformance/make_cases.py\n", dir);
    CHECK(n >= 7);
    /* More cases in the same format, when there are any. */
    env_dir(dir, sizeof dir, "LB_GOLDEN_DIR", "LB_SOURCE_DIR", "../shared/golden");
    if (run_dir(dir) < 0) printf("# no extra cases in %s: skipped\n", dir);
    return tap_done();
}
