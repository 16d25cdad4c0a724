/*
 * test_write_job.c — writing one output in parts (lb_write_begin / _attach
 * / _blocks / _finish): ranges in any order and from several jobs give the
 * bytes of lb_array_materialize, every file and the metadata alike, in
 * Zarr v2, Zarr v3 with shards and with channels together; statistics add
 * up; attach refuses what begin did not prepare and removes nothing; a job
 * abandoned half way is finished by resume with other ranges.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "labelbin.h"
#include "tap.h"

static char tmpdir[256];

/* 40 x 36 x 44 voxels, chunks 8^3: a 5 x 5 x 6 = 150 block grid. */
static const int64_t SHAPE[3] = {40, 36, 44};
static const int64_t CHUNKS[3] = {8, 8, 8};

static void path_of(const char *rel, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", tmpdir, rel);
}

static uint64_t rng_state = 77;
static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Runs of ids 0..6; the first 16 z planes all 0 (empty blocks). */
static int make_source(void) {
    char p[1024];
    path_of("src.zarr/labels", p, sizeof p);
    lb_create_options o;
    lb_create_options_init(&o);
    o.dtype = LB_DTYPE_UINT32;
    o.codec = "zstd:1";
    o.attrs_json = "{\"resolution\": [4, 4, 4], \"offset\": [0, 0, 0]}";
    lb_array *a = NULL;
    lb_error e = {0};
    int rc = lb_dataset_create(p, 3, SHAPE, CHUNKS, &o, &a, &e);
    if (rc) {
        fprintf(stderr, "# create %s: %s\n", p, e.message);
        return rc;
    }
    size_t n = (size_t)(SHAPE[0] * SHAPE[1] * SHAPE[2]);
    uint32_t *v = calloc(n, sizeof *v);
    uint32_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        if (rng_next() % 9 == 0) cur = (uint32_t)(rng_next() % 7);
        v[i] = i < (size_t)(16 * SHAPE[1] * SHAPE[2]) ? 0 : cur;
    }
    lb_roi r;
    lb_roi_set(&r, 3, (int64_t[]){0, 0, 0}, (int64_t[]){160, 144, 176}, &e);
    rc = lb_array_write(a, &r, v, n * sizeof *v, &e);
    if (rc) fprintf(stderr, "# write: %s\n", e.message);
    free(v);
    lb_array_free(a);
    return rc;
}

static lb_array *binarize(void) {
    char p[1024];
    path_of("src.zarr/labels", p, sizeof p);
    lb_array *src = NULL, *a = NULL;
    lb_groupings *g = NULL;
    lb_error e = {0};
    lb_id bg = {0, 0};
    if (lb_array_open(p, LB_OPEN_READONLY, NULL, 0, &src, &e) != 0 ||
        lb_groupings_new(&g, &e) != 0 || lb_groupings_add_arg(g, "a=1,2", &e) != 0 ||
        lb_groupings_add_arg(g, "b=3", &e) != 0 || lb_groupings_add_arg(g, "all=", &e) != 0 ||
        lb_binarize_new(src, g, bg, &a, &e) != 0) {
        fprintf(stderr, "# binarize: %s\n", e.message);
        a = NULL;
    }
    lb_groupings_free(g);
    return a;
}

/* ---- comparing two output trees, every file ------------------------------ */

typedef struct tree {
    char root[1024];
    size_t rootlen;
    char **names;
    size_t n, cap;
} tree;
static tree *g_tree;

static int tree_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    if (flag != FTW_F) return 0;
    if (g_tree->n == g_tree->cap) {
        g_tree->cap = g_tree->cap ? 2 * g_tree->cap : 64;
        g_tree->names = realloc(g_tree->names, g_tree->cap * sizeof *g_tree->names);
    }
    g_tree->names[g_tree->n++] = strdup(path + g_tree->rootlen);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void tree_list(tree *t, const char *rel) {
    memset(t, 0, sizeof *t);
    path_of(rel, t->root, sizeof t->root);
    t->rootlen = strlen(t->root);
    g_tree = t;
    nftw(t->root, tree_cb, 16, FTW_PHYS);
    qsort(t->names, t->n, sizeof *t->names, cmp_str);
}

static void tree_free(tree *t) {
    for (size_t i = 0; i < t->n; i++) free(t->names[i]);
    free(t->names);
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

/* 1 when the trees hold the same file names with the same bytes. */
static int same_tree(const char *a, const char *b) {
    tree ta, tb;
    tree_list(&ta, a);
    tree_list(&tb, b);
    int same = ta.n == tb.n && ta.n > 0;
    for (size_t i = 0; same && i < ta.n; i++) {
        char pa[2048], pb[2048];
        size_t na = 0, nb = 0;
        if (strcmp(ta.names[i], tb.names[i]) != 0) {
            printf("# %s: file %s vs %s\n", b, ta.names[i], tb.names[i]);
            same = 0;
            break;
        }
        snprintf(pa, sizeof pa, "%s%s", ta.root, ta.names[i]);
        snprintf(pb, sizeof pb, "%s%s", tb.root, tb.names[i]);
        char *x = slurp(pa, &na), *y = slurp(pb, &nb);
        if (!x || !y || na != nb || memcmp(x, y, na) != 0) {
            printf("# %s: %s differs\n", b, ta.names[i]);
            same = 0;
        }
        free(x);
        free(y);
    }
    if (ta.n != tb.n) printf("# %s: %zu files, %s: %zu\n", a, ta.n, b, tb.n);
    tree_free(&ta);
    tree_free(&tb);
    return same;
}

/* ---- tests ------------------------------------------------------------------- */

static void options(lb_write_options *o, int layout) {
    static const int64_t inner[3] = {8, 8, 8}, shard[3] = {16, 16, 16};
    lb_write_options_init(o);
    o->threads = 2;
    o->provenance_json = "{\"command\": \"test\"}";
    if (layout == 1) {
        o->format = LB_FORMAT_ZARR3;
        o->chunks = inner;
        o->shard = shard;
    } else if (layout == 2) {
        o->format = LB_FORMAT_ZARR3;
        o->channel_chunks = LB_CHANNELS_TOGETHER;
    }
}

/* Ranges in reverse order through begin's job and two attached jobs give
 * lb_array_materialize's bytes and statistics. */
static void test_parts(int layout) {
    static const char *const names[] = {"zarr2", "zarr3-shards", "zarr3-together"};
    printf("# parts, %s\n", names[layout]);
    lb_array *a = binarize();
    CHECK(a != NULL);
    if (!a) return;
    char ref[1024], out[1024], rel_ref[64], rel_out[64];
    snprintf(rel_ref, sizeof rel_ref, "ref-%d.zarr/gt", layout);
    snprintf(rel_out, sizeof rel_out, "parts-%d.zarr/gt", layout);
    path_of(rel_ref, ref, sizeof ref);
    path_of(rel_out, out, sizeof out);
    lb_write_options o;
    options(&o, layout);
    int64_t pos_ref[3], pos[3] = {0, 0, 0};
    lb_write_stats sref = {0}, s = {0};
    sref.positive = pos_ref;
    sref.positive_len = 3;
    s.positive = pos;
    s.positive_len = 3;
    lb_error e = {0};
    CHECK_INT(lb_array_materialize(a, ref, &o, &sref, &e), 0);

    lb_write_job *j0 = NULL, *j1 = NULL, *j2 = NULL;
    CHECK_INT(lb_write_begin(a, out, &o, &j0, &e), 0);
    int64_t n = lb_write_block_count(j0);
    CHECK_INT(n, sref.blocks_total);
    CHECK_INT(lb_write_attach(a, out, &o, &j1, &e), 0);
    CHECK_INT(lb_write_attach(a, out, &o, &j2, &e), 0);
    CHECK_INT(lb_write_block_count(j1), n);
    /* Uneven ranges, last first, spread over the three jobs. */
    int64_t end = n, k = 0;
    lb_write_job *jobs[3] = {j0, j1, j2};
    while (end > 0) {
        int64_t len = 1 + (k * 7) % 13;
        if (len > end) len = end;
        CHECK_INT(lb_write_blocks(jobs[k % 3], end - len, len, (int)(k % 2), &s, &e), 0);
        end -= len;
        k++;
    }
    /* Not complete before finish; complete after it. */
    lb_array *half = NULL;
    CHECK_INT(lb_array_open(out, LB_OPEN_READONLY, NULL, 0, &half, &e), 0);
    CHECK_INT(lb_array_incomplete(half), 1);
    lb_array_free(half);
    CHECK_INT(lb_write_finish(j1, &e), 0);
    CHECK(same_tree(rel_ref, rel_out));

    CHECK_INT(s.blocks_total, sref.blocks_total);
    CHECK_INT(s.blocks_done, sref.blocks_done);
    CHECK_INT(s.blocks_skipped, 0);
    CHECK_INT(s.chunks_written, sref.chunks_written);
    CHECK_INT(s.chunks_empty, sref.chunks_empty);
    CHECK_INT(s.bytes_written, sref.bytes_written);
    for (int c = 0; c < 3; c++) CHECK_INT(pos[c], pos_ref[c]);
    CHECK(pos_ref[0] > 0 && pos_ref[2] > pos_ref[0]);
    CHECK_INT(s.threads, 2);

    /* Finished: nothing attaches any more. */
    lb_write_job *late = NULL;
    CHECK_INT(lb_write_attach(a, out, &o, &late, &e), LB_EEXIST);
    CHECK_MSG(e, "not an unfinished output");
    CHECK(late == NULL);
    lb_write_job_free(j0);
    lb_write_job_free(j1);
    lb_write_job_free(j2);
    lb_array_free(a);
}

static void test_refusals(void) {
    lb_array *a = binarize();
    CHECK(a != NULL);
    if (!a) return;
    char out[1024];
    path_of("refuse.zarr/gt", out, sizeof out);
    lb_write_options o;
    options(&o, 0);
    lb_error e = {0};
    lb_write_job *j = NULL, *k = NULL;

    /* Nothing to attach to before begin. */
    CHECK_INT(lb_write_attach(a, out, &o, &k, &e), LB_ENOTFOUND);
    CHECK_MSG(e, "no dataset to attach to");
    CHECK_INT(lb_write_begin(a, out, &o, &j, &e), 0);

    /* Other options than begin's: the difference is named. */
    lb_write_options o2 = o;
    o2.codec = "gzip:1";
    CHECK_INT(lb_write_attach(a, out, &o2, &k, &e), LB_EEXIST);
    CHECK_MSG(e, "cannot attach");
    o2 = o;
    o2.chunks = (const int64_t[]){8, 8, 4};
    CHECK_INT(lb_write_attach(a, out, &o2, &k, &e), LB_EEXIST);
    o2 = o;
    o2.format = LB_FORMAT_ZARR3;
    CHECK_INT(lb_write_attach(a, out, &o2, &k, &e), LB_EEXIST);
    CHECK(k == NULL);

    /* Attach leaves other writers' temporaries alone. */
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s/.0.0.0.lbtmp.%d.0", out, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    CHECK(f != NULL);
    if (f) fclose(f);
    CHECK_INT(lb_write_attach(a, out, &o, &k, &e), 0);
    CHECK(access(tmp, F_OK) == 0);
    remove(tmp);

    /* Ranges outside the job. */
    int64_t n = lb_write_block_count(j);
    CHECK_INT(lb_write_blocks(j, -1, 1, 1, NULL, &e), LB_EINVAL);
    CHECK_INT(lb_write_blocks(j, 0, n + 1, 1, NULL, &e), LB_EINVAL);
    CHECK_INT(lb_write_blocks(j, n, 1, 1, NULL, &e), LB_EINVAL);
    CHECK_MSG(e, "outside the job");
    CHECK_INT(lb_write_blocks(j, n, 0, 1, NULL, &e), 0);
    CHECK_INT(lb_write_blocks(j, 0, 1, -1, NULL, &e), LB_EINVAL);
    CHECK_INT(lb_write_blocks(NULL, 0, 1, 1, NULL, &e), LB_EINVAL);
    CHECK_INT(lb_write_finish(NULL, &e), LB_EINVAL);
    CHECK_INT(lb_write_block_count(NULL), 0);
    CHECK_INT(lb_write_begin(a, out, &o, NULL, &e), LB_EINVAL);
    /* A second begin without resume finds DEST there. */
    lb_write_job *j2 = NULL;
    CHECK_INT(lb_write_begin(a, out, &o, &j2, &e), LB_EEXIST);
    lb_write_job_free(NULL);
    lb_write_job_free(k);
    lb_write_job_free(j);
    lb_array_free(a);
}

/* A run abandoned after some ranges (the processes killed) is finished by
 * resume, begin and attach alike, with other ranges: the same bytes, the
 * blocks done before skipped. A cancel flag stops a call. */
static void test_resume(void) {
    lb_array *a = binarize();
    CHECK(a != NULL);
    if (!a) return;
    char out[1024];
    path_of("resume.zarr/gt", out, sizeof out);
    lb_write_options o;
    options(&o, 1);
    lb_error e = {0};
    lb_write_job *j = NULL, *k = NULL;
    CHECK_INT(lb_write_begin(a, out, &o, &j, &e), 0);
    int64_t n = lb_write_block_count(j);
    CHECK_INT(lb_write_blocks(j, 0, n / 3, 2, NULL, &e), 0);
    CHECK_INT(lb_write_attach(a, out, &o, &k, &e), 0);
    CHECK_INT(lb_write_blocks(k, n - 5, 5, 1, NULL, &e), 0);
    volatile int cancel = 1;
    lb_write_options oc = o;
    oc.cancel = &cancel;
    lb_write_job *c = NULL;
    CHECK_INT(lb_write_attach(a, out, &oc, &c, &e), 0);
    CHECK_INT(lb_write_blocks(c, n / 3, 4, 1, NULL, &e), LB_ECANCELED);
    CHECK_MSG(e, "--resume");
    lb_write_job_free(c);
    lb_write_job_free(j);
    lb_write_job_free(k);

    o.resume = 1;
    o.threads = 1;
    int64_t pos[3] = {0, 0, 0};
    lb_write_stats s = {0};
    s.positive = pos;
    s.positive_len = 3;
    CHECK_INT(lb_write_begin(a, out, &o, &j, &e), 0);
    CHECK_INT(lb_write_attach(a, out, &o, &k, &e), 0);
    CHECK_INT(lb_write_blocks(k, n / 2, n - n / 2, 2, &s, &e), 0);
    CHECK_INT(lb_write_blocks(j, 0, n / 2, 1, &s, &e), 0);
    CHECK_INT(s.blocks_done + s.blocks_skipped, n);
    CHECK(s.blocks_skipped >= n / 3 + 5);
    CHECK_INT(lb_write_finish(j, &e), 0);
    lb_write_job_free(j);
    lb_write_job_free(k);
    CHECK(same_tree("ref-1.zarr/gt", "resume.zarr/gt"));
    lb_array_free(a);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lb_test_write_job_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    printf("# directory %s\n", tmpdir);
    CHECK_INT(make_source(), 0);
    for (int layout = 0; layout < 3; layout++) test_parts(layout);
    test_refusals();
    test_resume();
    if (!getenv("LB_KEEP")) nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
