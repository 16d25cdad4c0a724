/*
 * test_config.c — arrays from DaCapo's serialised configs: ZarrArrayConfig
 * (relative paths, axes, snap_to_grid, mode), BinarizeArrayConfig and
 * MissingAnnotationsMaskConfig nested in each other, and errors that name
 * the JSON path inside the config.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "labelbin.h"
#include "core/path.h"
#include "store/fs.h"
#include "tap.h"

static char tmpdir[256];

/* crop.zarr/labels: uint8 (8, 8, 8), resolution 2, offset (2, 2, 2),
 * value = z * 64 + y * 8 + x (mod 256), labels metadata: 3 present but not
 * annotated. */
static void make_data(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/crop.zarr/labels", tmpdir);
    lb_create_options o;
    lb_create_options_init(&o);
    o.attrs_json =
        "{\"resolution\": [2, 2, 2], \"offset\": [2, 2, 2], \"labels\": [{\"value\": 3, "
        "\"annotationState\": {\"present\": true, \"annotated\": false}}]}";
    int64_t s[3] = {8, 8, 8}, ch[3] = {4, 4, 4};
    lb_array *a = NULL;
    lb_error e = {0};
    CHECK_INT(lb_dataset_create(p, 3, s, ch, &o, &a, &e), 0);
    if (!a) {
        fprintf(stderr, "# %s\n", e.message);
        return;
    }
    uint8_t v[512];
    for (int i = 0; i < 512; i++) v[i] = (uint8_t)i;
    int64_t st[3] = {0, 0, 0};
    CHECK_INT(lb_array_data_write(a, st, s, v, sizeof v, &e), 0);
    lb_array_free(a);
}

static int from(const char *json, const char *base, lb_array **a, lb_error *e) {
    *a = NULL;
    e->message[0] = '\0';
    return lb_array_from_config(json, base, a, e);
}

#define ZARR(extra)                                                                     \
    "{\"__type__\": \"ZarrArrayConfig\", \"name\": \"labels\", \"file_name\": "          \
    "\"crop.zarr\", \"dataset\": \"labels\"" extra "}"

static void test_zarr(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    CHECK_INT(from(ZARR(""), tmpdir, &a, &e), 0);
    if (a) {
        CHECK_STR(lb_array_kind(a), "ZarrArray");
        lb_roi r;
        lb_array_roi(a, &r);
        CHECK_INT(r.offset[0], 2);
        CHECK_INT(r.shape[0], 16);
        CHECK_INT(lb_array_writable(a), 0);
        CHECK(strstr(lb_array_path(a), "crop.zarr/labels") != NULL);
    }
    lb_array_free(a);
    /* dataset with a leading slash; mode a opens writable */
    CHECK_INT(from("{\"__type__\": \"ZarrArrayConfig\", \"name\": \"l\", \"file_name\": "
                   "\"crop.zarr\", \"dataset\": \"/labels\", \"mode\": \"a\"}",
                   tmpdir, &a, &e),
              0);
    if (a) CHECK_INT(lb_array_writable(a), 1);
    lb_array_free(a);
    CHECK_INT(from(ZARR(", \"mode\": \"r\""), tmpdir, &a, &e), 0);
    if (a) CHECK_INT(lb_array_writable(a), 0);
    lb_array_free(a);
    CHECK_INT(from(ZARR(", \"mode\": \"x\""), tmpdir, &a, &e), LB_EFORMAT);
    CHECK_MSG(e, "ZarrArrayConfig.mode: unknown mode \"x\"");
    /* axes override */
    CHECK_INT(from(ZARR(", \"axes\": [\"a\", \"b\", \"c2\"]"), tmpdir, &a, &e), 0);
    if (a) CHECK_STR(lb_array_axis(a, 2), "c2");
    lb_array_free(a);
    CHECK_INT(from(ZARR(", \"axes\": [\"a\", 3]"), tmpdir, &a, &e), LB_EFORMAT);
    CHECK_MSG(e, "ZarrArrayConfig.axes[1]: expected a string");
    CHECK_INT(from(ZARR(", \"axes\": [\"y\", \"x\"]"), tmpdir, &a, &e), LB_EINVAL);
    CHECK_MSG(e, "ZarrArrayConfig \"labels\": ");
    /* an absolute file_name ignores base_dir */
    char json[1024];
    snprintf(json, sizeof json,
             "{\"__type__\": \"ZarrArrayConfig\", \"name\": \"l\", \"file_name\": \"%s/crop.zarr\", "
             "\"dataset\": \"labels\"}",
             tmpdir);
    CHECK_INT(from(json, "/nonexistent", &a, &e), 0);
    lb_array_free(a);
    /* NULL base_dir: the current directory, as in DaCapo */
    char cwd[1024];
    if (getcwd(cwd, sizeof cwd) && chdir(tmpdir) == 0) {
        CHECK_INT(from(ZARR(""), NULL, &a, &e), 0);
        lb_array_free(a);
        CHECK(chdir(cwd) == 0);
    }
    /* missing dataset: the error names the config and the path */
    CHECK_INT(from("{\"__type__\": \"ZarrArrayConfig\", \"name\": \"labels\", \"file_name\": "
                   "\"crop.zarr\", \"dataset\": \"nothing/here\"}",
                   tmpdir, &a, &e),
              LB_ENOTFOUND);
    CHECK_MSG(e, "ZarrArrayConfig \"labels\": ");
    CHECK_MSG(e, "crop.zarr/nothing/here");
    /* '..' inside the container is refused */
    CHECK_INT(from("{\"__type__\": \"ZarrArrayConfig\", \"name\": \"labels\", \"file_name\": "
                   "\"crop.zarr\", \"dataset\": \"../../etc\"}",
                   tmpdir, &a, &e),
              LB_EINVAL);
    /* missing fields */
    CHECK_INT(from("{\"__type__\": \"ZarrArrayConfig\", \"name\": \"l\", \"file_name\": "
                   "\"crop.zarr\"}",
                   tmpdir, &a, &e),
              LB_EFORMAT);
    CHECK_STR(e.message, "ZarrArrayConfig.dataset: missing");
    CHECK_INT(from("{\"__type__\": \"ZarrArrayConfig\", \"name\": \"l\", \"file_name\": 5, "
                   "\"dataset\": \"labels\"}",
                   tmpdir, &a, &e),
              LB_EFORMAT);
    CHECK_MSG(e, "ZarrArrayConfig.file_name: expected a string");
}

static void test_snap(void) {
    lb_error e = {0};
    lb_array *a = NULL, *raw = NULL;
    /* ROI [2:18]^3, voxel 2, snap 4: lcm 4, shrink -> [4:16]^3 */
    CHECK_INT(from(ZARR(", \"snap_to_grid\": [4, 4, 4]"), tmpdir, &a, &e), 0);
    CHECK_INT(from(ZARR(""), tmpdir, &raw, &e), 0);
    if (!a || !raw) {
        lb_array_free(a);
        lb_array_free(raw);
        return;
    }
    lb_roi r;
    lb_array_roi(a, &r);
    CHECK_INT(r.offset[0], 4);
    CHECK_INT(r.shape[0], 12);
    CHECK_INT(r.offset[2], 4);
    CHECK_INT(r.shape[2], 12);
    CHECK_INT(lb_array_shape(a)[0], 6);
    /* reads return the data that lies at the ROI (DaCapo shifts them) */
    uint8_t got[6 * 6 * 6], want[6 * 6 * 6];
    CHECK_INT(lb_array_read(a, &r, got, sizeof got, &e), 0);
    CHECK_INT(lb_array_read(raw, &r, want, sizeof want, &e), 0);
    CHECK(memcmp(got, want, sizeof got) == 0);
    CHECK_INT(got[0], 1 * 64 + 1 * 8 + 1);
    /* the old ROI is no longer readable */
    lb_roi full;
    lb_array_roi(raw, &full);
    uint8_t all[512];
    CHECK_INT(lb_array_read(a, &full, all, sizeof all, &e), LB_EROI);
    lb_array_free(a);
    lb_array_free(raw);
    /* a snap that is a multiple of the voxel size already: lcm(2, 3) = 6 */
    CHECK_INT(from(ZARR(", \"snap_to_grid\": [3, 2, 2]"), tmpdir, &a, &e), 0);
    if (a) {
        lb_array_roi(a, &r);
        CHECK_INT(r.offset[0], 6);
        CHECK_INT(r.shape[0], 12);
        CHECK_INT(r.offset[1], 2);
        CHECK_INT(r.shape[1], 16);
    }
    lb_array_free(a);
    CHECK_INT(from(ZARR(", \"snap_to_grid\": [4, 4]"), tmpdir, &a, &e), LB_EFORMAT);
    CHECK_MSG(e, "ZarrArrayConfig.snap_to_grid: 2 entries");
    CHECK_INT(from(ZARR(", \"snap_to_grid\": [4, 0, 4]"), tmpdir, &a, &e), LB_EFORMAT);
    CHECK_MSG(e, "ZarrArrayConfig.snap_to_grid[1]");
    /* a grid coarser than the ROI leaves an empty ROI */
    CHECK_INT(from(ZARR(", \"snap_to_grid\": [64, 64, 64]"), tmpdir, &a, &e), 0);
    if (a) {
        lb_array_roi(a, &r);
        CHECK(lb_roi_empty(&r));
    }
    lb_array_free(a);
}

#define GROUPS "[[\"mito\", [3, 4, 5]], [\"ecs\", [1]], [\"all\", []]]"

static void test_wrappers(void) {
    lb_error e = {0};
    lb_array *a = NULL;
    CHECK_INT(from("{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"gt\", "
                   "\"source_array_config\": " ZARR("") ", \"groupings\": " GROUPS
                   ", \"background\": 4}",
                   tmpdir, &a, &e),
              0);
    if (a) {
        CHECK_STR(lb_array_kind(a), "BinarizeArray");
        CHECK_INT(lb_array_num_channels(a), 3);
        CHECK_STR(lb_array_channel_name(a, 1), "ecs");
        lb_roi r;
        lb_array_roi(a, &r);
        uint8_t out[3 * 512];
        CHECK_INT(lb_array_read(a, &r, out, sizeof out, &e), 0);
        size_t bad = 0;
        for (int i = 0; i < 512; i++) {
            int l = i % 256;
            bad += out[i] != (l >= 3 && l <= 5);
            bad += out[512 + i] != (l == 1);
            bad += out[1024 + i] != (l != 4); /* empty group: label != background 4 */
        }
        CHECK_INT(bad, 0);
    }
    lb_array_free(a);
    CHECK_INT(from("{\"__type__\": \"MissingAnnotationsMaskConfig\", \"name\": \"mask\", "
                   "\"source_array_config\": " ZARR("") ", \"groupings\": " GROUPS "}",
                   tmpdir, &a, &e),
              0);
    if (a) {
        CHECK_STR(lb_array_kind(a), "MissingAnnotationsMask");
        CHECK_INT(lb_array_annotations(a), LB_ANNOTATIONS_BOOLEAN);
        lb_roi r;
        lb_array_roi(a, &r);
        uint8_t out[3 * 512];
        CHECK_INT(lb_array_read(a, &r, out, sizeof out, &e), 0);
        size_t bad = 0;
        for (int i = 0; i < 512; i++) {
            bad += out[i] != 0;                        /* mito lists 3 */
            bad += out[512 + i] != (i % 256 != 0);     /* label > 0 */
            bad += out[1024 + i] != (i % 256 != 0);
        }
        CHECK_INT(bad, 0);
    }
    lb_array_free(a);
    /* a mask over a binarized source has channels */
    CHECK_INT(from("{\"__type__\": \"MissingAnnotationsMaskConfig\", \"name\": \"mask\", "
                   "\"groupings\": " GROUPS ", \"source_array_config\": "
                   "{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"gt\", "
                   "\"source_array_config\": " ZARR("") ", \"groupings\": " GROUPS "}}",
                   tmpdir, &a, &e),
              LB_EINVAL);
    CHECK_MSG(e, "MissingAnnotationsMaskConfig \"mask\": ");
    CHECK_MSG(e, "with channels");
    /* errors inside nested configs carry the JSON path */
    CHECK_INT(from("{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"gt\", "
                   "\"source_array_config\": " ZARR("") "}",
                   tmpdir, &a, &e),
              LB_EFORMAT);
    CHECK_STR(e.message, "BinarizeArrayConfig.groupings: missing");
    CHECK_INT(from("{\"__type__\": \"MissingAnnotationsMaskConfig\", \"name\": \"m\", "
                   "\"groupings\": []}",
                   tmpdir, &a, &e),
              LB_EFORMAT);
    CHECK_STR(e.message, "MissingAnnotationsMaskConfig.source_array_config: missing");
    CHECK_INT(from("{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"gt\", \"groupings\": "
                   "[], \"source_array_config\": {\"__type__\": \"ZarrArrayConfig\", \"name\": "
                   "\"l\", \"file_name\": \"crop.zarr\"}}",
                   tmpdir, &a, &e),
              LB_EFORMAT);
    CHECK_STR(e.message, "BinarizeArrayConfig.source_array_config.dataset: missing");
    CHECK_INT(from("{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"gt\", \"groupings\": "
                   "[[\"a\", [1]], [\"b\", [2.5]]], \"source_array_config\": " ZARR("") "}",
                   tmpdir, &a, &e),
              LB_EFORMAT);
    CHECK_MSG(e, "BinarizeArrayConfig.groupings[1][1][0]: expected an integer");
    CHECK_INT(from("{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"gt\", \"groupings\": "
                   "[[\"a\", 1]], \"source_array_config\": " ZARR("") "}",
                   tmpdir, &a, &e),
              LB_EFORMAT);
    CHECK_MSG(e, "BinarizeArrayConfig.groupings[0][1]");
    CHECK_INT(from("{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"gt\", \"groupings\": "
                   "[], \"background\": \"x\", \"source_array_config\": " ZARR("") "}",
                   tmpdir, &a, &e),
              LB_EFORMAT);
    CHECK_MSG(e, "BinarizeArrayConfig.background: expected an integer");
    /* unknown and missing types */
    CHECK_INT(from("{\"__type__\": \"IntensitiesArrayConfig\", \"name\": \"x\"}", tmpdir, &a, &e),
              LB_EUNSUPPORTED);
    CHECK_MSG(e, "IntensitiesArrayConfig");
    CHECK_MSG(e, "ZarrArrayConfig, BinarizeArrayConfig, MissingAnnotationsMaskConfig");
    CHECK_INT(from("{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"gt\", \"groupings\": "
                   "[], \"source_array_config\": {\"__type__\": \"CropArrayConfig\"}}",
                   tmpdir, &a, &e),
              LB_EUNSUPPORTED);
    CHECK_MSG(e, "BinarizeArrayConfig.source_array_config.__type__");
    CHECK_INT(from("{\"name\": \"x\"}", tmpdir, &a, &e), LB_EFORMAT);
    CHECK_MSG(e, "__type__: missing");
    CHECK_INT(from("[1, 2]", tmpdir, &a, &e), LB_EFORMAT);
    CHECK_INT(from("{\"__type__\": ", tmpdir, &a, &e), LB_EFORMAT);
    CHECK_INT(from("{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"gt\", \"groupings\": "
                   "[], \"source_array_config\": 7}",
                   tmpdir, &a, &e),
              LB_EFORMAT);
    CHECK_MSG(e, "BinarizeArrayConfig.source_array_config: expected a config object");
    CHECK_INT(lb_array_from_config(NULL, NULL, &a, &e), LB_EINVAL);
    /* absurd nesting is refused before any recursion limit bites */
    lb__buf deep = {0};
    for (int i = 0; i < 40; i++)
        lb__buf_printf(&deep, &e,
                       "{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"b\", \"groupings\": "
                       "[], \"source_array_config\": ");
    lb__buf_printf(&deep, &e, "%s", ZARR(""));
    for (int i = 0; i < 40; i++) lb__buf_printf(&deep, &e, "}");
    CHECK(from((const char *)deep.data, tmpdir, &a, &e) < 0);
    CHECK(a == NULL);
    lb__buf_free(&deep);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lb_test_config.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    make_data();
    test_zarr();
    test_snap();
    test_wrappers();
    lb_error e = {0};
    lb__fs_remove_tree(tmpdir, &e);
    return tap_done();
}
