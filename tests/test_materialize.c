/*
 * test_materialize.c — lb_array_materialize on a small labelled dataset:
 * BinarizeArray, MissingAnnotationsMask and plain ZarrArray outputs read back
 * and compared with the virtual arrays; attributes; all-zero chunks; existing
 * destinations (refuse / overwrite / non-datasets); cancellation and resume
 * (byte-identical to an uninterrupted run); validation before writing; the
 * OME-NGFF layout; destinations that are, contain or lie inside the input
 * (refused, the input untouched); the unfinished-output mark.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array/array.h"
#include "core/json.h"
#include "labelbin.h"
#include "core/path.h"
#include "store/fs.h"
#include "support.h"
#include "tap.h"

static char tmpdir[256];

/* Source geometry: 24 x 20 x 28 voxels of (8, 4, 4) nm at (16, 8, 0),
 * chunks 8^3 -> a 3 x 3 x 4 block grid. */
static const int64_t SHAPE[3] = {24, 20, 28};
static const int64_t CHUNKS[3] = {8, 8, 8};
static const int64_t VOXEL[3] = {8, 4, 4};
static const int64_t OFFSET[3] = {16, 8, 0};
#define N_BLOCKS 36
#define N_GROUPS 4

static const char *const GROUPS[N_GROUPS] = {"mito=3,4", "pm=2", "all=", "odd=5,7"};

static void path_of(const char *rel, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", tmpdir, rel);
}

static uint64_t rng_state;
static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Labels: runs of ids from {0,1,2,3,4,5,7}; the first z chunk row is all 0
 * (so every output chunk there is empty) and label 7 only appears in the
 * last x chunk column. */
static int make_source(void) {
    char p[1024];
    path_of("src.zarr/labels", p, sizeof p);
    lb_create_options o;
    lb_create_options_init(&o);
    o.dtype = LB_DTYPE_UINT64;
    o.codec = "gzip:1";
    o.attrs_json =
        "{\"resolution\": [8, 4, 4], \"offset\": [16, 8, 0], \"axes\": [\"z\", \"y\", \"x\"],"
        " \"labels\": [{\"value\": 3, \"annotationState\": {\"present\": true, \"annotated\": "
        "true}}, {\"value\": 5, \"annotationState\": {\"present\": true, \"annotated\": "
        "false}}]}";
    lb_array *a = NULL;
    lb_error e = {0};
    int rc = lb_dataset_create(p, 3, SHAPE, CHUNKS, &o, &a, &e);
    if (rc) {
        fprintf(stderr, "# create %s: %s\n", p, e.message);
        return rc;
    }
    size_t n = (size_t)(SHAPE[0] * SHAPE[1] * SHAPE[2]);
    uint64_t *v = calloc(n, sizeof *v);
    static const uint64_t ids[] = {0, 1, 2, 3, 4, 5, 0, 0, 2, 3};
    uint64_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        if (rng_next() % 6 == 0) cur = ids[rng_next() % 10];
        int64_t z = (int64_t)(i / (size_t)(SHAPE[1] * SHAPE[2]));
        int64_t x = (int64_t)(i % (size_t)SHAPE[2]);
        uint64_t lab = cur;
        if (x >= 24 && rng_next() % 4 == 0) lab = 7;
        v[i] = z < 8 ? 0 : lab;
    }
    lb_roi r;
    lb_roi_set(&r, 3, OFFSET, (int64_t[]){SHAPE[0] * 8, SHAPE[1] * 4, SHAPE[2] * 4}, &e);
    rc = lb_array_write(a, &r, v, n * sizeof *v, &e);
    if (rc) fprintf(stderr, "# write: %s\n", e.message);
    free(v);
    lb_array_free(a);
    return rc;
}

static lb_groupings *groupings(void) {
    lb_groupings *g = NULL;
    lb_error e = {0};
    CHECK_INT(lb_groupings_new(&g, &e), 0);
    for (int i = 0; i < N_GROUPS; i++) CHECK_INT(lb_groupings_add_arg(g, GROUPS[i], &e), 0);
    return g;
}

static lb_array *open_source(void) {
    char p[1024];
    path_of("src.zarr/labels", p, sizeof p);
    lb_array *a = NULL;
    lb_error e = {0};
    int rc = lb_array_open(p, LB_OPEN_READONLY, NULL, 0, &a, &e);
    if (rc) fprintf(stderr, "# open %s: %s\n", p, e.message);
    return a;
}

static lb_array *binarize(void) {
    lb_groupings *g = groupings();
    lb_array *a = NULL;
    lb_error e = {0};
    lb_id bg = {0, 0};
    int rc = lb_binarize_new(open_source(), g, bg, &a, &e);
    if (rc) fprintf(stderr, "# binarize: %s\n", e.message);
    lb_groupings_free(g);
    return a;
}

static lb_array *mask(void) {
    lb_groupings *g = groupings();
    lb_array *a = NULL;
    lb_error e = {0};
    int rc = lb_mask_new(open_source(), g, &a, &e);
    if (rc) fprintf(stderr, "# mask: %s\n", e.message);
    lb_groupings_free(g);
    return a;
}

/* Read `roi` of `a` into a new buffer (*size bytes). */
static uint8_t *read_all(const lb_array *a, const lb_roi *roi, size_t *size) {
    lb_error e = {0};
    *size = lb_array_read_size(a, roi);
    uint8_t *buf = malloc(*size ? *size : 1);
    int rc = lb_array_read(a, roi, buf, *size, &e);
    if (rc) {
        fprintf(stderr, "# read: %s\n", e.message);
        free(buf);
        return NULL;
    }
    return buf;
}

/* The output at `dest` holds exactly what `a` gives over `roi`. */
static void check_same(const lb_array *a, const lb_roi *roi, const char *dest) {
    lb_array *out = NULL;
    lb_error e = {0};
    int rc = lb_array_open(dest, LB_OPEN_READONLY, NULL, 0, &out, &e);
    if (rc) fprintf(stderr, "# open %s: %s\n", dest, e.message);
    CHECK_INT(rc, 0);
    if (!out) return;
    lb_roi oroi;
    lb_array_roi(out, &oroi);
    CHECK_INT(oroi.ndim, 3);
    for (int d = 0; d < 3; d++) {
        CHECK_INT(oroi.offset[d], roi->offset[d]);
        CHECK_INT(oroi.shape[d], roi->shape[d]);
        CHECK_INT(lb_array_voxel_size(out)[d], VOXEL[d]);
    }
    CHECK_INT(lb_array_num_channels(out), lb_array_num_channels(a));
    CHECK_INT(lb_array_dtype(out), lb_array_dtype(a));
    CHECK_INT(lb_array_ndim(out), lb_array_ndim(a));
    for (int i = 0; i < lb_array_ndim(a); i++) CHECK_STR(lb_array_axis(out, i), lb_array_axis(a, i));
    size_t n1 = 0, n2 = 0;
    uint8_t *want = read_all(a, roi, &n1);
    uint8_t *have = read_all(out, roi, &n2);
    CHECK(want && have && n1 == n2 && memcmp(want, have, n1) == 0);
    free(want);
    free(have);
    lb_array_free(out);
}

/* ---- directory trees ------------------------------------------------------ */

typedef struct tree {
    char **names; /* relative paths of regular files, sorted */
    size_t n;
} tree;

static tree *walk_tree;
static size_t walk_prefix;

static int walk_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    if (flag != FTW_F) return 0;
    walk_tree->names = realloc(walk_tree->names, (walk_tree->n + 1) * sizeof(char *));
    walk_tree->names[walk_tree->n++] = strdup(path + walk_prefix);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static tree list_tree(const char *dir) {
    tree t = {NULL, 0};
    walk_tree = &t;
    walk_prefix = strlen(dir);
    nftw(dir, walk_cb, 16, FTW_PHYS);
    if (t.n) qsort(t.names, t.n, sizeof *t.names, cmp_str);
    return t;
}

static void tree_free(tree *t) {
    for (size_t i = 0; i < t->n; i++) free(t->names[i]);
    free(t->names);
}

static size_t count_matching(const tree *t, const char *needle) {
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) k += strstr(t->names[i], needle) != NULL;
    return k;
}

/* Chunk files: names without a leading dot in their last segment. */
static size_t count_chunks(const tree *t) {
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        const char *s = strrchr(t->names[i], '/');
        s = s ? s + 1 : t->names[i];
        k += s[0] != '.';
    }
    return k;
}

static int file_equal(const char *a, const char *b) {
    lb__buf x = {0}, y = {0};
    lb_error e = {0};
    int same = lb__fs_read(a, 1u << 26, &x, &e) == 0 && lb__fs_read(b, 1u << 26, &y, &e) == 0 &&
               x.size == y.size && (x.size == 0 || memcmp(x.data, y.data, x.size) == 0);
    lb__buf_free(&x);
    lb__buf_free(&y);
    return same;
}

/* Same files with the same bytes. */
static int trees_equal(const char *a, const char *b) {
    tree ta = list_tree(a), tb = list_tree(b);
    int same = ta.n == tb.n && ta.n > 0;
    for (size_t i = 0; same && i < ta.n; i++) {
        char pa[2048], pb[2048];
        same = strcmp(ta.names[i], tb.names[i]) == 0;
        snprintf(pa, sizeof pa, "%s%s", a, ta.names[i]);
        snprintf(pb, sizeof pb, "%s%s", b, tb.names[i]);
        if (same && !file_equal(pa, pb)) {
            fprintf(stderr, "# %s differs\n", ta.names[i]);
            same = 0;
        }
    }
    if (ta.n != tb.n) fprintf(stderr, "# %zu vs %zu files\n", ta.n, tb.n);
    tree_free(&ta);
    tree_free(&tb);
    return same;
}

static json_object *read_json(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    json_object *o = NULL;
    lb_error e = {0};
    if (lb__json_read_file(p, &o, &e)) fprintf(stderr, "# %s: %s\n", p, e.message);
    return o;
}

static const char *json_at(json_object *o, const char *key) {
    json_object *v = lb__json_get(o, key);
    return v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE) : "(absent)";
}

/* ---- materialisation ------------------------------------------------------- */

static int run(const lb_array *a, const char *rel, lb_write_options *o, lb_write_stats *st,
               lb_error *e) {
    char dest[1024];
    path_of(rel, dest, sizeof dest);
    memset(e, 0, sizeof *e);
    return lb_array_materialize(a, dest, o, st, e);
}

/* Reference counts per channel over the whole array: non-zero voxels and
 * non-empty (block, channel) chunks. */
static void reference_counts(const lb_array *a, int64_t *positive, int64_t *nonempty) {
    lb_roi whole;
    lb_array_roi(a, &whole);
    int64_t nc = lb_array_num_channels(a);
    for (int64_t c = 0; c < nc; c++) positive[c] = nonempty[c] = 0;
    for (int64_t bz = 0; bz < 3; bz++)
        for (int64_t by = 0; by < 3; by++)
            for (int64_t bx = 0; bx < 4; bx++) {
                int64_t off[3] = {OFFSET[0] + bz * 64, OFFSET[1] + by * 32, OFFSET[2] + bx * 32};
                int64_t shp[3] = {64, (by == 2 ? 4 : 8) * 4, (bx == 3 ? 4 : 8) * 4};
                lb_roi r;
                lb_error e = {0};
                lb_roi_set(&r, 3, off, shp, &e);
                size_t n = 0;
                uint8_t *buf = read_all(a, &r, &n);
                if (!buf) continue;
                size_t plane = n / (size_t)nc;
                for (int64_t c = 0; c < nc; c++) {
                    int64_t k = 0;
                    for (size_t i = 0; i < plane; i++) k += buf[(size_t)c * plane + i] != 0;
                    positive[c] += k;
                    nonempty[c] += k > 0;
                }
                free(buf);
            }
}

static void test_binarize_threads(void) {
    lb_array *b = binarize();
    CHECK(b != NULL);
    if (!b) return;
    lb_roi whole;
    lb_array_roi(b, &whole);
    int64_t want_pos[N_GROUPS], want_chunks[N_GROUPS], total_chunks = 0;
    reference_counts(b, want_pos, want_chunks);
    for (int c = 0; c < N_GROUPS; c++) total_chunks += want_chunks[c];

    const int threads[2] = {1, 3};
    const char *dests[2] = {"out1.zarr/bin", "out3.zarr/bin"};
    for (int t = 0; t < 2; t++) {
        lb_write_options o;
        lb_write_options_init(&o);
        o.threads = threads[t];
        o.channel_chunks = LB_CHANNELS_SEPARATE; /* chunk counts per channel below */
        o.provenance_json = "{\"command\": \"labelbin binarize test\", \"run\": 7}";
        int64_t pos[N_GROUPS + 2];
        lb_write_stats st;
        memset(&st, 0, sizeof st);
        st.positive = pos;
        st.positive_len = N_GROUPS + 2;
        pos[N_GROUPS + 1] = 99;
        lb_error e;
        int rc = run(b, dests[t], &o, &st, &e);
        if (rc) fprintf(stderr, "# materialize: %s\n", e.message);
        CHECK_INT(rc, 0);
        CHECK_INT(st.blocks_total, N_BLOCKS);
        CHECK_INT(st.blocks_done, N_BLOCKS);
        CHECK_INT(st.blocks_skipped, 0);
        CHECK_INT(st.chunks_written, total_chunks);
        CHECK_INT(st.chunks_empty, N_BLOCKS * N_GROUPS - total_chunks);
        CHECK(st.bytes_written > 0);
        for (int c = 0; c < N_GROUPS; c++) CHECK_INT(pos[c], want_pos[c]);
        CHECK_INT(pos[N_GROUPS + 1], 0); /* reset, beyond the channels */

        char dest[1024];
        path_of(dests[t], dest, sizeof dest);
        check_same(b, &whole, dest);
        /* All-zero chunks are not stored; nothing but metadata and chunks. */
        tree tr = list_tree(dest);
        CHECK_INT(count_chunks(&tr), total_chunks);
        CHECK_INT(tr.n, total_chunks + 2);
        CHECK_INT(count_matching(&tr, ".lbtmp"), 0);
        CHECK_INT(count_matching(&tr, ".labelbin-done"), 0);
        tree_free(&tr);
        /* The z < 8 row is all zero: no chunk 0.*.*.* exists. */
        char p[1200];
        snprintf(p, sizeof p, "%s/1.0.0.0", dest);
        CHECK(!lb__fs_exists(p));
        snprintf(p, sizeof p, "%s/2.1.0.0", dest);
        CHECK(lb__fs_exists(p)); /* "all" is on wherever label != 0 */

        json_object *za = read_json(dest, ".zarray");
        CHECK_STR(json_at(za, "shape"), "[4,24,20,28]");
        CHECK_STR(json_at(za, "chunks"), "[1,8,8,8]");
        CHECK_STR(json_at(za, "dtype"), "\"|u1\"");
        CHECK_STR(json_at(za, "fill_value"), "0");
        CHECK_STR(json_at(za, "order"), "\"C\"");
        json_object_put(za);
        json_object *at = read_json(dest, ".zattrs");
        CHECK_STR(json_at(at, "resolution"), "[8,4,4]");
        CHECK_STR(json_at(at, "offset"), "[16,8,0]");
        CHECK_STR(json_at(at, "axes"), "[\"c\",\"z\",\"y\",\"x\"]");
        CHECK_STR(json_at(at, "channels"), "[\"mito\",\"pm\",\"all\",\"odd\"]");
        CHECK(lb__json_get(at, "multiscales") == NULL);
        json_object *lb = lb__json_get(at, "labelbin");
        CHECK(lb != NULL);
        CHECK_STR(json_at(lb, "version"), "\"" LB_VERSION_STRING "\"");
        CHECK_STR(json_at(lb, "kind"), "\"BinarizeArray\"");
        CHECK_STR(json_at(lb, "groupings"),
                  "[[\"mito\",[3,4]],[\"pm\",[2]],[\"all\",[]],[\"odd\",[5,7]]]");
        CHECK_STR(json_at(lb, "background"), "0");
        CHECK(strstr(json_at(lb, "source"), "src.zarr/labels") != NULL);
        CHECK(strncmp(json_at(lb, "source"), "\"/", 2) == 0); /* absolute */
        CHECK_STR(json_at(lb, "roi"), "\"[16:208, 8:88, 0:112]\"");
        CHECK_STR(json_at(lb, "codec"), "{\"id\":\"zstd\",\"level\":3}");
        CHECK_STR(json_at(lb, "command"), "\"labelbin binarize test\"");
        CHECK_STR(json_at(lb, "run"), "7");
        json_object_put(at);
    }
    /* The thread count changes nothing on disk. */
    char d1[1024], d3[1024];
    path_of("out1.zarr/bin", d1, sizeof d1);
    path_of("out3.zarr/bin", d3, sizeof d3);
    CHECK(trees_equal(d1, d3));
    /* Parent group. */
    char zg[1024];
    path_of("out1.zarr/.zgroup", zg, sizeof zg);
    CHECK(lb__fs_is_file(zg));
    lb_array_free(b);
}

static void test_roi_and_mask(void) {
    lb_array *m = mask();
    CHECK(m != NULL);
    if (!m) return;
    /* Not aligned to the source chunks: blocks start at the ROI begin. */
    lb_roi r;
    lb_error e = {0};
    lb_roi_set(&r, 3, (int64_t[]){16 + 24, 8 + 12, 8}, (int64_t[]){8 * 13, 4 * 7, 4 * 19}, &e);
    lb_write_options o;
    lb_write_options_init(&o);
    o.roi = &r;
    o.threads = 3;
    lb_write_stats st;
    memset(&st, 0, sizeof st);
    int rc = run(m, "roi.zarr/mask", &o, &st, &e);
    if (rc) fprintf(stderr, "# materialize: %s\n", e.message);
    CHECK_INT(rc, 0);
    CHECK_INT(st.blocks_total, 2 * 1 * 3); /* 13/8, 7/8, 19/8 */
    char dest[1024];
    path_of("roi.zarr/mask", dest, sizeof dest);
    check_same(m, &r, dest);
    json_object *za = read_json(dest, ".zarray");
    CHECK_STR(json_at(za, "shape"), "[4,13,7,19]");
    CHECK_STR(json_at(za, "chunks"), "[4,8,7,8]"); /* clamped to the extent; the
                                                      default: all channels */
    json_object_put(za);
    json_object *at = read_json(dest, ".zattrs");
    CHECK_STR(json_at(at, "offset"), "[40,20,8]");
    json_object *lb = lb__json_get(at, "labelbin");
    CHECK_STR(json_at(lb, "kind"), "\"MissingAnnotationsMask\"");
    CHECK_STR(json_at(lb, "groupings"),
              "[[\"mito\",[3,4]],[\"pm\",[2]],[\"all\",[]],[\"odd\",[5,7]]]");
    CHECK(lb__json_get(lb, "background") == NULL);
    CHECK_STR(json_at(lb, "roi"), "\"[40:144, 20:48, 8:84]\"");
    json_object_put(at);
    /* Channel "odd" holds the present-but-unannotated id 5: never stored. */
    tree tr = list_tree(dest);
    CHECK_INT(count_matching(&tr, "/3."), 0);
    tree_free(&tr);

    /* Explicit chunks, and more threads than blocks. */
    lb_write_options_init(&o);
    o.chunks = (const int64_t[]){16, 5, 100};
    o.threads = 64;
    o.codec = "gzip:1";
    rc = run(m, "chunks.zarr/mask", &o, &st, &e);
    if (rc) fprintf(stderr, "# materialize: %s\n", e.message);
    CHECK_INT(rc, 0);
    CHECK_INT(st.blocks_total, 2 * 4 * 1);
    path_of("chunks.zarr/mask", dest, sizeof dest);
    lb_roi whole;
    lb_array_roi(m, &whole);
    check_same(m, &whole, dest);
    za = read_json(dest, ".zarray");
    CHECK_STR(json_at(za, "chunks"), "[4,16,5,28]");
    CHECK(strstr(json_at(za, "compressor"), "gzip") != NULL);
    json_object_put(za);
    lb_array_free(m);
}

static void test_plain_copy(void) {
    lb_array *s = open_source();
    CHECK(s != NULL);
    if (!s) return;
    lb_write_options o;
    lb_write_options_init(&o);
    o.threads = 2;
    lb_write_stats st;
    memset(&st, 0, sizeof st);
    lb_error e;
    int rc = run(s, "copy.zarr/labels", &o, &st, &e);
    if (rc) fprintf(stderr, "# materialize: %s\n", e.message);
    CHECK_INT(rc, 0);
    CHECK_INT(st.blocks_total, N_BLOCKS);
    CHECK_INT(st.chunks_written, N_BLOCKS - 12); /* the first z row is empty */
    char dest[1024];
    path_of("copy.zarr/labels", dest, sizeof dest);
    lb_roi whole;
    lb_array_roi(s, &whole);
    check_same(s, &whole, dest);
    json_object *za = read_json(dest, ".zarray");
    CHECK_STR(json_at(za, "shape"), "[24,20,28]");
    CHECK_STR(json_at(za, "chunks"), "[8,8,8]");
    CHECK_STR(json_at(za, "dtype"), "\"<u8\"");
    json_object_put(za);
    json_object *at = read_json(dest, ".zattrs");
    CHECK_STR(json_at(at, "axes"), "[\"z\",\"y\",\"x\"]");
    CHECK(lb__json_get(at, "channels") == NULL);
    CHECK_STR(json_at(lb__json_get(at, "labelbin"), "kind"), "\"ZarrArray\"");
    CHECK(lb__json_get(lb__json_get(at, "labelbin"), "groupings") == NULL);
    json_object_put(at);
    lb_array_free(s);
}

static void test_existing(void) {
    lb_array *b = binarize();
    if (!b) return;
    char dest[1024], snap[1024];
    path_of("exist.zarr/bin", dest, sizeof dest);
    path_of("exist_snapshot.zarr/bin", snap, sizeof snap);
    lb_write_options o;
    lb_write_options_init(&o);
    lb_error e;
    CHECK_INT(run(b, "exist.zarr/bin", &o, NULL, &e), 0);
    CHECK_INT(run(b, "exist_snapshot.zarr/bin", &o, NULL, &e), 0);

    /* Refused without -f / --resume; nothing touched. */
    o.codec = "gzip:1";
    CHECK_INT(run(b, "exist.zarr/bin", &o, NULL, &e), LB_EEXIST);
    CHECK_MSG(e, "already exists (use -f to overwrite or --resume");
    CHECK_MSG(e, "exist.zarr/bin");
    CHECK(trees_equal(dest, snap));

    /* Overwrite replaces it. */
    o.overwrite = 1;
    int rc = run(b, "exist.zarr/bin", &o, NULL, &e);
    if (rc) fprintf(stderr, "# overwrite: %s\n", e.message);
    CHECK_INT(rc, 0);
    json_object *za = read_json(dest, ".zarray");
    CHECK(strstr(json_at(za, "compressor"), "gzip") != NULL);
    json_object_put(za);
    lb_roi whole;
    lb_array_roi(b, &whole);
    check_same(b, &whole, dest);

    /* A directory that is not a dataset is never removed. */
    char p[1200];
    path_of("notds/precious", p, sizeof p);
    lb__fs_mkdirs(p, &e);
    snprintf(p, sizeof p, "%s/notds/precious/keep.txt", tmpdir);
    lb__fs_write_atomic(p, "x", 1, &e);
    rc = run(b, "notds/precious", &o, NULL, &e);
    CHECK(rc < 0);
    CHECK_MSG(e, "not a dataset");
    CHECK(lb__fs_is_file(p));
    /* Without -f the refusal does not suggest -f, which would be refused. */
    o.overwrite = 0;
    CHECK_INT(run(b, "notds/precious", &o, NULL, &e), LB_EEXIST);
    CHECK_MSG(e, "is not a Zarr dataset; refusing to replace it");
    CHECK(strstr(e.message, "-f") == NULL);
    o.ome_ngff = 1;
    CHECK_INT(run(b, "notds/precious", &o, NULL, &e), LB_EEXIST);
    CHECK_MSG(e, "is not a Zarr dataset or group");
    CHECK(strstr(e.message, "-f") == NULL);
    o.ome_ngff = 0;
    o.overwrite = 1;
    /* ... nor with --ome-ngff. */
    o.ome_ngff = 1;
    rc = run(b, "notds/precious", &o, NULL, &e);
    CHECK(rc < 0);
    CHECK(lb__fs_is_file(p));
    lb_array_free(b);
}

typedef struct cancel_ctx {
    volatile int *flag;
    int64_t after;
    int64_t calls;
    int64_t last_done, last_total;
} cancel_ctx;

static void on_progress(void *user, int64_t done, int64_t total) {
    cancel_ctx *c = user;
    c->calls++;
    CHECK(done > c->last_done); /* serialised, increasing */
    c->last_done = done;
    c->last_total = total;
    if (c->flag && done >= c->after) __atomic_store_n(c->flag, 1, __ATOMIC_RELAXED);
}

static void test_resume(void) {
    lb_array *b = binarize();
    if (!b) return;
    lb_error e;
    lb_write_options o;
    lb_write_options_init(&o);
    o.threads = 1;
    o.provenance_json = "{\"started\": \"first\"}";
    CHECK_INT(run(b, "full.zarr/bin", &o, NULL, &e), 0);

    /* Interrupted after 15 blocks: the first 12 (the empty z row) leave
     * journal markers, the next ones have every chunk stored. */
    volatile int flag = 0;
    cancel_ctx cc = {&flag, 15, 0, 0, 0};
    o.threads = 2;
    o.cancel = &flag;
    o.progress = on_progress;
    o.progress_user = &cc;
    lb_write_stats st;
    memset(&st, 0, sizeof st);
    int rc = run(b, "part.zarr/bin", &o, &st, &e);
    CHECK_INT(rc, LB_ECANCELED);
    CHECK_MSG(e, "interrupted; run again with --resume to finish");
    CHECK(st.blocks_done >= 15 && st.blocks_done <= 16);
    CHECK_INT(cc.last_total, N_BLOCKS);
    char dest[1024], full[1024], p[1300];
    path_of("part.zarr/bin", dest, sizeof dest);
    path_of("full.zarr/bin", full, sizeof full);
    tree tr = list_tree(dest);
    CHECK(count_matching(&tr, "/.labelbin-done/") >= 12);
    tree_free(&tr);
    /* The interrupted output says it is unfinished, to labelbin and to
     * anyone reading its attributes. */
    json_object *at = read_json(dest, ".zattrs");
    CHECK_STR(json_at(lb__json_get(at, "labelbin"), "complete"), "false");
    json_object_put(at);
    lb_array *half = NULL;
    CHECK_INT(lb_array_open(dest, LB_OPEN_READONLY, NULL, 0, &half, &e), 0);
    CHECK_INT(lb_array_incomplete(half), 1);
    CHECK_INT(lb_array_warning_count(half), 1);
    CHECK(half && strstr(lb_array_warning(half, 0), "unfinished output") != NULL);
    CHECK(half && strstr(lb_array_warning(half, 0), "--resume") != NULL);
    lb_array_free(half);
    /* A stale temporary of a writer killed mid-chunk. */
    snprintf(p, sizeof p, "%s/.2.2.2.3.lbtmp.999.1", dest);
    lb__fs_write_atomic(p, "garbage", 7, &e);
    CHECK(lb__fs_exists(p));

    /* Without --resume: refused. Different chunks: refused. */
    o.cancel = NULL;
    o.progress = NULL;
    CHECK_INT(run(b, "part.zarr/bin", &o, NULL, &e), LB_EEXIST);
    o.resume = 1;
    o.chunks = (const int64_t[]){8, 8, 4};
    CHECK_INT(run(b, "part.zarr/bin", &o, NULL, &e), LB_EEXIST);
    CHECK_MSG(e, "chunks");
    o.chunks = NULL;
    /* A different ROI: the shape differs. */
    lb_roi r;
    lb_roi_set(&r, 3, OFFSET, (int64_t[]){64, 80, 112}, &e);
    o.roi = &r;
    CHECK_INT(run(b, "part.zarr/bin", &o, NULL, &e), LB_EEXIST);
    o.roi = NULL;

    /* Resume: volatile provenance may differ; the result equals the
     * uninterrupted run byte for byte. */
    o.provenance_json = "{\"started\": \"second\"}";
    o.threads = 3;
    memset(&cc, 0, sizeof cc);
    o.progress = on_progress;
    o.progress_user = &cc;
    memset(&st, 0, sizeof st);
    rc = run(b, "part.zarr/bin", &o, &st, &e);
    if (rc) fprintf(stderr, "# resume: %s\n", e.message);
    CHECK_INT(rc, 0);
    CHECK(st.blocks_skipped >= 15);
    CHECK_INT(st.blocks_skipped + st.blocks_done, N_BLOCKS);
    CHECK_INT(cc.last_done, N_BLOCKS);
    CHECK(!lb__fs_exists(p));
    tr = list_tree(dest);
    CHECK_INT(count_matching(&tr, ".lbtmp"), 0);
    CHECK_INT(count_matching(&tr, ".labelbin-done"), 0);
    tree_free(&tr);
    CHECK(trees_equal(dest, full));
    at = read_json(dest, ".zattrs");
    CHECK(lb__json_get(lb__json_get(at, "labelbin"), "complete") == NULL);
    json_object_put(at);
    CHECK_INT(lb_array_open(dest, LB_OPEN_READONLY, NULL, 0, &half, &e), 0);
    CHECK_INT(lb_array_incomplete(half), 0);
    CHECK_INT(lb_array_warning_count(half), 0);
    lb_array_free(half);

    /* Resuming a finished output changes nothing (blocks with an empty
     * chunk are recomputed: the journal is gone). */
    memset(&st, 0, sizeof st);
    memset(&cc, 0, sizeof cc);
    CHECK_INT(run(b, "part.zarr/bin", &o, &st, &e), 0);
    CHECK(st.blocks_skipped >= 15);
    CHECK(trees_equal(dest, full));

    /* Cancelled before the first block. */
    flag = 1;
    o.cancel = &flag;
    o.resume = 0;
    o.progress = NULL;
    CHECK_INT(run(b, "never.zarr/bin", &o, NULL, &e), LB_ECANCELED);
    lb_array_free(b);
}

static void test_validation(void) {
    lb_array *b = binarize();
    if (!b) return;
    lb_error e;
    lb_write_options o;
    lb_write_options_init(&o);
    char dest[1024];
    path_of("bad.zarr", dest, sizeof dest);
    lb_roi r;

    /* Not voxel-aligned. */
    lb_roi_set(&r, 3, (int64_t[]){16, 8, 2}, (int64_t[]){64, 32, 32}, &e);
    o.roi = &r;
    CHECK_INT(run(b, "bad.zarr/x", &o, NULL, &e), LB_EROI);
    CHECK(!lb__fs_exists(dest));
    /* Outside. */
    lb_roi_set(&r, 3, (int64_t[]){0, 8, 0}, (int64_t[]){64, 32, 32}, &e);
    CHECK_INT(run(b, "bad.zarr/x", &o, NULL, &e), LB_EROI);
    CHECK_MSG(e, "outside");
    CHECK(!lb__fs_exists(dest));
    /* Wrong rank. */
    lb_roi_set(&r, 2, (int64_t[]){16, 8}, (int64_t[]){64, 32}, &e);
    CHECK_INT(run(b, "bad.zarr/x", &o, NULL, &e), LB_EROI);
    CHECK(!lb__fs_exists(dest));
    o.roi = NULL;
    /* Chunks. */
    o.chunks = (const int64_t[]){8, 0, 8};
    CHECK_INT(run(b, "bad.zarr/x", &o, NULL, &e), LB_EINVAL);
    CHECK_MSG(e, "chunks[1]");
    CHECK(!lb__fs_exists(dest));
    o.chunks = NULL;
    /* Codec. */
    o.codec = "snappy:9";
    CHECK_INT(run(b, "bad.zarr/x", &o, NULL, &e), LB_EINVAL);
    CHECK_STR(e.message, "codec spec \"snappy:9\": unknown codec (expected none, zstd[:LEVEL], "
                         "gzip[:LEVEL], zlib[:LEVEL], bz2[:LEVEL], lz4[:ACCELERATION], "
                         "blosc[-CNAME][:CLEVEL], lzma[:PRESET] or a JSON compressor object)");
    CHECK(!lb__fs_exists(dest));
    /* said once, not "codec \"zstd:99\": codec spec \"zstd:99\": ..." */
    o.codec = "zstd:99";
    CHECK_INT(run(b, "bad.zarr/x", &o, NULL, &e), LB_EINVAL);
    {
        const char *want = "codec spec \"zstd:99\": level must be";
        CHECK(strncmp(e.message, want, strlen(want)) == 0);
    }
    /* a malformed JSON compressor is the caller's argument too */
    o.codec = "{\"id\": \"zstd\", \"level\": \"x\"}";
    CHECK_INT(run(b, "bad.zarr/x", &o, NULL, &e), LB_EINVAL);
    CHECK_MSG(e, "codec spec.level");
    CHECK(!lb__fs_exists(dest));
    o.codec = NULL;
    /* Provenance. */
    o.provenance_json = "[1]";
    CHECK_INT(run(b, "bad.zarr/x", &o, NULL, &e), LB_EINVAL);
    o.provenance_json = "{bad";
    CHECK(run(b, "bad.zarr/x", &o, NULL, &e) < 0);
    CHECK(!lb__fs_exists(dest));
    o.provenance_json = NULL;
    /* Options. */
    o.threads = -1;
    CHECK_INT(run(b, "bad.zarr/x", &o, NULL, &e), LB_EINVAL);
    o.threads = 0;
    o.overwrite = o.resume = 1;
    CHECK_INT(run(b, "bad.zarr/x", &o, NULL, &e), LB_EINVAL);
    CHECK(!lb__fs_exists(dest));
    CHECK_INT(lb_array_materialize(NULL, dest, NULL, NULL, &e), LB_EINVAL);
    CHECK_INT(lb_array_materialize(b, NULL, NULL, NULL, &e), LB_EINVAL);
    /* NULL options = defaults. */
    path_of("defaults.zarr/bin", dest, sizeof dest);
    CHECK_INT(lb_array_materialize(b, dest, NULL, NULL, &e), 0);
    lb_array_free(b);
}

static void test_ome(void) {
    lb_array *b = binarize();
    if (!b) return;
    lb_error e;
    lb_write_options o;
    lb_write_options_init(&o);
    o.ome_ngff = 1;
    o.threads = 2;
    lb_roi r;
    lb_roi_set(&r, 3, (int64_t[]){16 + 64, 8, 16}, (int64_t[]){128, 80, 96}, &e);
    o.roi = &r;
    int rc = run(b, "ome.zarr", &o, NULL, &e);
    if (rc) fprintf(stderr, "# ome: %s\n", e.message);
    CHECK_INT(rc, 0);
    char dest[1024], s0[1100], p[1200];
    path_of("ome.zarr", dest, sizeof dest);
    snprintf(s0, sizeof s0, "%s/s0", dest);
    json_object *zg = read_json(dest, ".zgroup");
    CHECK_STR(json_at(zg, "zarr_format"), "2");
    json_object_put(zg);
    json_object *ga = read_json(dest, ".zattrs");
    json_object *ms = lb__json_get(ga, "multiscales");
    CHECK(ms && json_object_array_length(ms) == 1);
    json_object *m0 = ms ? json_object_array_get_idx(ms, 0) : NULL;
    CHECK_STR(json_at(m0, "version"), "\"0.4\"");
    CHECK_STR(json_at(m0, "name"), "\"ome.zarr\"");
    CHECK_STR(json_at(m0, "axes"),
              "[{\"name\":\"c\",\"type\":\"channel\"},"
              "{\"name\":\"z\",\"type\":\"space\",\"unit\":\"nanometer\"},"
              "{\"name\":\"y\",\"type\":\"space\",\"unit\":\"nanometer\"},"
              "{\"name\":\"x\",\"type\":\"space\",\"unit\":\"nanometer\"}]");
    CHECK_STR(json_at(m0, "datasets"),
              "[{\"path\":\"s0\",\"coordinateTransformations\":["
              "{\"type\":\"scale\",\"scale\":[1,8,4,4]},"
              "{\"type\":\"translation\",\"translation\":[0,80,8,16]}]}]");
    json_object_put(ga);
    json_object *za = read_json(s0, ".zarray");
    CHECK_STR(json_at(za, "dimension_separator"), "\"/\"");
    CHECK_STR(json_at(za, "shape"), "[4,16,20,24]");
    json_object_put(za);
    json_object *at = read_json(s0, ".zattrs");
    CHECK_STR(json_at(at, "resolution"), "[8,4,4]");
    CHECK_STR(json_at(at, "offset"), "[80,8,16]");
    CHECK_STR(json_at(at, "axes"), "[\"c\",\"z\",\"y\",\"x\"]");
    json_object_put(at);
    snprintf(p, sizeof p, "%s/0/1/0/0", s0); /* nested chunk keys */
    CHECK(lb__fs_is_file(p));
    check_same(b, &r, s0);

    /* Overwrite an OME group; and overwrite a plain output with one. */
    o.overwrite = 1;
    CHECK_INT(run(b, "ome.zarr", &o, NULL, &e), 0);
    check_same(b, &r, s0);
    o.roi = NULL;
    CHECK_INT(run(b, "out1.zarr/bin", &o, NULL, &e), 0);
    path_of("out1.zarr/bin/s0", s0, sizeof s0);
    lb_roi whole;
    lb_array_roi(b, &whole);
    check_same(b, &whole, s0);
    lb_array_free(b);
}

/* ---- the input is never the output ------------------------------------------ */

/* Copy every file under `from` to `to` (same relative names). */
static void copy_tree(const char *from, const char *to) {
    tree t = list_tree(from);
    for (size_t i = 0; i < t.n; i++) {
        char a[2048], b[2048];
        lb__buf x = {0};
        lb_error e = {0};
        snprintf(a, sizeof a, "%s%s", from, t.names[i]);
        snprintf(b, sizeof b, "%s%s", to, t.names[i]);
        char *dir = lb__path_parent(b, &e);
        CHECK(dir && lb__fs_mkdirs(dir, &e) == 0);
        free(dir);
        CHECK(lb__fs_read(a, 1u << 26, &x, &e) == 0);
        CHECK(lb__fs_write_atomic(b, x.data, x.size, &e) == 0);
        lb__buf_free(&x);
    }
    tree_free(&t);
}

/* A BinarizeArrayConfig over the source, as `labelbin run` builds it. */
static lb_array *binarize_config(void) {
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"b\","
             " \"groupings\": [[\"mito\", [3, 4]]], \"source_array_config\":"
             " {\"__type__\": \"ZarrArrayConfig\", \"name\": \"l\","
             "  \"file_name\": \"%s/src.zarr\", \"dataset\": \"labels\"}}",
             tmpdir);
    lb_array *a = NULL;
    lb_error e = {0};
    if (lb_array_from_config(cfg, NULL, &a, &e)) fprintf(stderr, "# config: %s\n", e.message);
    return a;
}

static void test_overlap(void) {
    char src[1024], snap[1024], dest[1024], p[1200];
    lb_error e;
    path_of("src.zarr", src, sizeof src);
    path_of("src_snapshot.zarr", snap, sizeof snap);
    copy_tree(src, snap);
    CHECK(trees_equal(src, snap));
    /* A symlink to the container, a symlink to the dataset, a real folder
     * to climb out of with "..". */
    path_of("link.zarr", p, sizeof p);
    CHECK_INT(symlink(src, p), 0);
    path_of("alias", p, sizeof p);
    snprintf(dest, sizeof dest, "%s/labels", src);
    CHECK_INT(symlink(dest, p), 0);
    path_of("somewhere/deeper", p, sizeof p);
    CHECK_INT(lb__fs_mkdirs(p, &e), 0);

    static const struct {
        const char *dest; /* relative to tmpdir */
        const char *why;
    } cases[] = {
        {"src.zarr/labels", "it is the source dataset"},
        {"src.zarr/labels/", "it is the source dataset"},
        {"src.zarr//labels/.", "it is the source dataset"},
        {"src.zarr/labels/out", "lies inside the source dataset"},
        {"src.zarr/labels/a/b/c", "lies inside the source dataset"},
        {"src.zarr", "lies inside it"},
        {"link.zarr/labels", "it is the source dataset"},
        {"link.zarr/labels/x", "lies inside the source dataset"},
        {"link.zarr", "lies inside it"},
        {"alias", "it is the source dataset"},
        {"somewhere/deeper/../../src.zarr/labels", "it is the source dataset"},
        {"missing/../src.zarr/labels", "it is the source dataset"},
        {"somewhere/../link.zarr/labels/y", "lies inside the source dataset"},
    };
    lb_array *arrays[3] = {binarize(), open_source(), binarize_config()};
    for (int k = 0; k < 3; k++) CHECK(arrays[k] != NULL);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int mode = 0; mode < 4; mode++) {
            for (int k = 0; k < 3; k++) {
                if (!arrays[k]) continue;
                lb_write_options o;
                lb_write_options_init(&o);
                o.overwrite = mode == 1 || mode == 3;
                o.resume = mode == 2;
                o.ome_ngff = mode == 3;
                int rc = run(arrays[k], cases[i].dest, &o, NULL, &e);
                CHECK_INT(rc, LB_EOVERLAP);
                if (rc != LB_EOVERLAP) fprintf(stderr, "# %s mode %d: %s\n", cases[i].dest, mode, e.message);
                CHECK_MSG(e, "refusing to write to \"");
                CHECK_MSG(e, cases[i].dest);
                CHECK_MSG(e, "src.zarr/labels\"");
                CHECK_MSG(e, cases[i].why);
                CHECK(strstr(e.message, "use -f") == NULL);
            }
        }
    }
    CHECK(trees_equal(src, snap));
    snprintf(p, sizeof p, "%s/labels/out", src);
    CHECK(!lb__fs_exists(p));
    snprintf(p, sizeof p, "%s/labels/a", src);
    CHECK(!lb__fs_exists(p));
    path_of("missing", p, sizeof p);
    CHECK(!lb__fs_exists(p));
    CHECK_STR(lb_strerror(LB_EOVERLAP), "the destination overlaps an input dataset");

    /* The helpers underneath: resolved names and relations. */
    char *r = lb__fs_resolve("/nonexistent-lb/./a//b/../c/", &e);
    CHECK_STR(r, "/nonexistent-lb/a/c");
    free(r);
    r = lb__fs_resolve("/../..", &e);
    CHECK_STR(r, "/");
    free(r);
    path_of("link.zarr/labels/new/../x", p, sizeof p);
    r = lb__fs_resolve(p, &e);
    snprintf(dest, sizeof dest, "%s/labels/x", src);
    char *real_src = realpath(src, NULL);
    CHECK(r && real_src && strncmp(r, real_src, strlen(real_src)) == 0 &&
          strcmp(r + strlen(real_src), "/labels/x") == 0);
    free(r);
    free(real_src);
    lb__fs_rel rel;
    CHECK_INT(lb__fs_relation("/a/b", "/a/b/", &rel, &e), 0);
    CHECK_INT(rel, LB__FS_SAME);
    CHECK_INT(lb__fs_relation("/a/b/c", "/a/b", &rel, &e), 0);
    CHECK_INT(rel, LB__FS_A_IN_B);
    CHECK_INT(lb__fs_relation("/a", "/a/b", &rel, &e), 0);
    CHECK_INT(rel, LB__FS_B_IN_A);
    CHECK_INT(lb__fs_relation("/a/b2", "/a/b", &rel, &e), 0);
    CHECK_INT(rel, LB__FS_APART);
    CHECK_INT(lb__fs_relation("/", "/a", &rel, &e), 0);
    CHECK_INT(rel, LB__FS_B_IN_A);

    /* A relative DEST from inside the container, as a user in a shell. */
    char cwd[1024];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK_INT(chdir(src), 0);
    lb_write_options o;
    lb_write_options_init(&o);
    o.overwrite = 1;
    memset(&e, 0, sizeof e);
    CHECK_INT(lb_array_materialize(arrays[0], "labels", &o, NULL, &e), LB_EOVERLAP);
    CHECK_INT(lb_array_materialize(arrays[0], "./labels/../labels/new", &o, NULL, &e), LB_EOVERLAP);
    CHECK_INT(lb_array_materialize(arrays[0], "..", &o, NULL, &e), LB_EOVERLAP);
    CHECK_INT(chdir(cwd), 0);
    CHECK(trees_equal(src, snap));

    /* Neighbours are not overlaps: a name sharing the prefix, a sibling. */
    lb_write_options_init(&o);
    CHECK_INT(run(arrays[1], "src.zarr/labels2", &o, NULL, &e), 0);
    CHECK_INT(run(arrays[0], "src.zarr/gt/bin", &o, NULL, &e), 0);
    path_of("src.zarr/labels2", dest, sizeof dest);
    lb_roi whole;
    lb_array_roi(arrays[1], &whole);
    check_same(arrays[1], &whole, dest);
    for (int k = 0; k < 3; k++) lb_array_free(arrays[k]);
}

/* A run that fails on a corrupt source chunk leaves an output marked
 * unfinished; the message says how to finish it; --resume does. */
static void test_unfinished(void) {
    char src[1024], dest[1024], chunk[1200];
    lb_error e = {0};
    path_of("src.zarr/labels", src, sizeof src);
    path_of("copysrc.zarr/labels", dest, sizeof dest);
    copy_tree(src, dest); /* a private source to damage */
    lb_array *s = NULL;
    CHECK_INT(lb_array_open(dest, LB_OPEN_READONLY, NULL, 0, &s, &e), 0);
    if (!s) return;
    snprintf(chunk, sizeof chunk, "%s/2.1.1", dest);
    lb__buf good = {0};
    CHECK_INT(lb__fs_read(chunk, 1u << 26, &good, &e), 0);
    CHECK_INT(lb__fs_write_atomic(chunk, "garbage", 7, &e), 0);

    lb_write_options o;
    lb_write_options_init(&o);
    o.threads = 2;
    char out[1024];
    path_of("unfinished.zarr/copy", out, sizeof out);
    int rc = run(s, "unfinished.zarr/copy", &o, NULL, &e);
    CHECK(rc < 0 && rc != LB_ECANCELED);
    CHECK_MSG(e, "2.1.1");
    CHECK_MSG(e, "/unfinished.zarr/copy is incomplete: run again with --resume to finish it");
    json_object *at = read_json(out, ".zattrs");
    CHECK_STR(json_at(lb__json_get(at, "labelbin"), "complete"), "false");
    json_object_put(at);
    lb_array *u = NULL;
    CHECK_INT(lb_array_open(out, LB_OPEN_READONLY, NULL, 0, &u, &e), 0);
    CHECK_INT(lb_array_incomplete(u), 1);
    /* Through a wrapper too; and as a source it is refused. */
    lb_groupings *g = groupings();
    lb_array *w = NULL;
    CHECK_INT(lb_binarize_new(u, g, (lb_id){0, 0}, &w, &e), 0);
    lb_groupings_free(g);
    CHECK_INT(lb_array_incomplete(w), 1);
    CHECK_INT(run(w, "from_unfinished.zarr/bin", &o, NULL, &e), LB_EFORMAT);
    CHECK_MSG(e, "unfinished labelbin output");
    path_of("from_unfinished.zarr", chunk + 600, 600);
    CHECK(!lb__fs_exists(chunk + 600));
    lb_array_free(w);

    /* Repaired source: resume finishes and clears the mark; the result is
     * the same as a fresh run's. */
    snprintf(chunk, sizeof chunk, "%s/2.1.1", dest);
    CHECK_INT(lb__fs_write_atomic(chunk, good.data, good.size, &e), 0);
    lb__buf_free(&good);
    o.resume = 1;
    rc = run(s, "unfinished.zarr/copy", &o, NULL, &e);
    if (rc) fprintf(stderr, "# resume: %s\n", e.message);
    CHECK_INT(rc, 0);
    o.resume = 0;
    CHECK_INT(run(s, "fresh.zarr/copy", &o, NULL, &e), 0);
    char fresh[1024];
    path_of("fresh.zarr/copy", fresh, sizeof fresh);
    CHECK(trees_equal(out, fresh));
    CHECK_INT(lb_array_open(out, LB_OPEN_READONLY, NULL, 0, &u, &e), 0);
    CHECK_INT(lb_array_incomplete(u), 0);
    lb_array_free(u);
    lb_array_free(s);
    CHECK_INT(lb_array_incomplete(NULL), 0);
}

/* Non-ASCII names are written as \u escapes, read back exactly. */
static void test_ascii_metadata(void) {
    lb_groupings *g = NULL;
    lb_error e = {0};
    CHECK_INT(lb_groupings_new(&g, &e), 0);
    CHECK_INT(lb_groupings_add_arg(g, "\xd0\xb3\xd1\x80\xd1\x83\xd0\xbf\xd0\xbf\xd0\xb0=3", &e), 0);
    CHECK_INT(lb_groupings_add_arg(g, "x\xf0\x9f\x98\x80y=4", &e), 0);
    CHECK_INT(lb_groupings_add_arg(g, "\xe9t\xe9=5", &e), LB_EINVAL);
    CHECK_MSG(e, "not valid UTF-8");
    CHECK_INT(lb_groupings_add_json(g, "[[\"a\xff\", [1]]]", &e), LB_EINVAL);
    CHECK_INT((int)lb_groupings_count(g), 2);
    lb_array *b = NULL;
    CHECK_INT(lb_binarize_new(open_source(), g, (lb_id){0, 0}, &b, &e), 0);
    lb_groupings_free(g);
    if (!b) return;
    lb_write_options o;
    lb_write_options_init(&o);
    CHECK_INT(run(b, "ascii.zarr/bin", &o, NULL, &e), 0);
    char dest[1024], p[1200];
    path_of("ascii.zarr/bin", dest, sizeof dest);
    snprintf(p, sizeof p, "%s/.zattrs", dest);
    lb__buf raw = {0};
    CHECK_INT(lb__fs_read(p, 1u << 20, &raw, &e), 0);
    int ascii = 1;
    for (size_t i = 0; i < raw.size; i++) ascii &= raw.data[i] < 0x80;
    CHECK(ascii);
    CHECK(strstr((const char *)raw.data,
                 "\"\\u0433\\u0440\\u0443\\u043f\\u043f\\u0430\"") != NULL);
    CHECK(strstr((const char *)raw.data, "\"x\\ud83d\\ude00y\"") != NULL);
    lb__buf_free(&raw);
    lb_array *out = NULL;
    CHECK_INT(lb_array_open(dest, LB_OPEN_READONLY, NULL, 0, &out, &e), 0);
    CHECK_STR(lb_array_channel_name(out, 0), "\xd0\xb3\xd1\x80\xd1\x83\xd0\xbf\xd0\xbf\xd0\xb0");
    CHECK_STR(lb_array_channel_name(out, 1), "x\xf0\x9f\x98\x80y");
    lb_array_free(out);
    /* Resume compares the names as they read back. */
    o.resume = 1;
    CHECK_INT(run(b, "ascii.zarr/bin", &o, NULL, &e), 0);
    lb_array_free(b);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lb_test_materialize_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const char *seed_env = getenv("LB_SEED");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : 20240611;
    rng_state = seed;
    printf("# seed %" PRIu64 ", directory %s\n", seed, tmpdir);
    CHECK_INT(make_source(), 0);

    lb_write_options o;
    lb_write_options_init(&o);
    CHECK_INT(o.struct_size, (int)sizeof o);
    CHECK_INT(o.threads, 0);
    CHECK(o.codec == NULL && o.roi == NULL && !o.overwrite && !o.resume && !o.ome_ngff);
    CHECK(strstr(lb_default_codec_json(), "\"id\"") != NULL);

    test_binarize_threads();
    test_roi_and_mask();
    test_plain_copy();
    test_existing();
    test_resume();
    test_validation();
    test_ome();
    test_overlap();
    test_unfinished();
    test_ascii_metadata();

    if (!getenv("LB_KEEP")) nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
