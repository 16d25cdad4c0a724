/*
 * bench_preview.c — previews of one section of a large volume: time and
 * chunks read. The volume is 4096^3 uint64 labels (64 Gvoxel) in 64^3
 * chunks, zstd:3, of which only the 256 chunks that the 1024 x 1024 window
 * y, x 2048..3071 at z = 2048 cuts are stored (the rest read as absent):
 * a section must read exactly those 256, whatever the volume's size.
 *
 *   bench_preview [--smoke] [--data DIR] [--runs R]
 *
 * Rows (median of R runs, default 5, after one warm-up; each run on a
 * freshly opened array, so no chunk is cached inside labelbin; the OS page
 * cache is warm): the 1024 x 1024 section drawn into memory with 1 and 2
 * read threads; the same with the 16 CellMap groups as overlays and their
 * mask; written as a PNG file; the whole 4096 x 4096 section shrunk to
 * 1024 x 1024 (every 4th voxel: 4096 chunks looked up, 256 present); and
 * the floor, lb_array_read of the same 1 x 1024 x 1024 voxels (what reading
 * the chunks costs without drawing). Each row gives chunks (objects) and
 * bytes read, counted by lb_array_io_stats, against the count computed
 * here. One table row and one JSON line per result on stdout.
 * --smoke: a 256^3 volume in 32^3 chunks in a temporary directory, one run;
 * fails only when a section reads other than the chunks it cuts (a CTest
 * smoke test; no timing is asserted).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "labelbin.h"

/* The 16 CellMap groups of the conformance case cosem_u64_blosc. */
static const char GROUPS[] =
    "[[\"ecs\",[1]],[\"pm\",[2]],[\"mito\",[3,4,5]],[\"mito_mem\",[3]],"
    "[\"golgi\",[6,7]],[\"ves\",[8,9]],[\"endo\",[10,11]],[\"lyso\",[12,13]],"
    "[\"ld\",[14,15]],[\"er\",[16,17,18,19,20,21,22,23]],[\"er_mem_all\",[16,18,20]],"
    "[\"eres\",[18,19]],[\"nuc\",[20,21,22,23,24,25,26,27,28,29,37]],[\"mt\",[30,36]],"
    "[\"perox\",[47,48]],[\"cell_all\",[]]]";

typedef struct geom {
    int64_t n;      /* volume edge, voxels                */
    int64_t chunk;  /* chunk edge                          */
    int64_t win;    /* window edge (the section drawn)     */
    int64_t z;      /* the section's z                     */
} geom;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Cells of labels 0..59 (0..2 background), blocky like a segmentation, so
 * chunks compress as real ones do. */
static uint64_t label_at(int64_t z, int64_t y, int64_t x) {
    uint64_t c = (uint64_t)(((y >> 5) * 131 + (x >> 5) * 71 + (z >> 4) * 29 + ((x + y) >> 7)) % 60);
    return c < 3 ? 0 : c;
}

/* The volume, with only the chunks of the window at z stored. Reused when
 * the last chunk is there. */
static int make_volume(const char *path, const geom *g) {
    char last[PATH_MAX];
    int64_t c1 = (g->n / 2 + g->win) / g->chunk - 1;
    snprintf(last, sizeof last, "%s/%" PRId64 ".%" PRId64 ".%" PRId64, path, g->z / g->chunk,
             c1, c1);
    if (access(last, F_OK) == 0) return 0;
    fprintf(stderr, "bench_preview: writing %s (%" PRId64 "^3 voxels, %" PRId64
            " chunks stored)\n", path, g->n, (g->win / g->chunk) * (g->win / g->chunk));
    lb_create_options o;
    lb_create_options_init(&o);
    o.dtype = LB_DTYPE_UINT64;
    o.codec = "zstd:3";
    o.overwrite = 1;
    o.attrs_json = "{\"resolution\": [8, 8, 8], \"offset\": [0, 0, 0], \"labels\": ["
                   "{\"value\": 3, \"annotationState\": {\"present\": true, \"annotated\": true}},"
                   "{\"value\": 5, \"annotationState\": {\"present\": true, \"annotated\": false}}]}";
    int64_t shape[3] = {g->n, g->n, g->n}, chunks[3] = {g->chunk, g->chunk, g->chunk};
    lb_array *a = NULL;
    lb_error e = {0};
    if (lb_dataset_create(path, 3, shape, chunks, &o, &a, &e) != 0) {
        fprintf(stderr, "bench_preview: %s\n", e.message);
        return -1;
    }
    /* One chunk row (chunk x chunk x win voxels) at a time. */
    size_t n = (size_t)(g->chunk * g->chunk * g->win);
    uint64_t *buf = malloc(n * sizeof *buf);
    int rc = buf ? 0 : -1;
    int64_t z0 = g->z / g->chunk * g->chunk, lo = g->n / 2;
    for (int64_t y0 = lo; !rc && y0 < lo + g->win; y0 += g->chunk) {
        size_t i = 0;
        for (int64_t z = z0; z < z0 + g->chunk; z++)
            for (int64_t y = y0; y < y0 + g->chunk; y++)
                for (int64_t x = lo; x < lo + g->win; x++) buf[i++] = label_at(z, y, x);
        lb_roi roi;
        int64_t off[3] = {8 * z0, 8 * y0, 8 * lo}, shp[3] = {8 * g->chunk, 8 * g->chunk, 8 * g->win};
        lb_roi_set(&roi, 3, off, shp, &e);
        rc = lb_array_write(a, &roi, buf, n * sizeof *buf, &e);
        if (rc) fprintf(stderr, "bench_preview: %s\n", e.message);
    }
    free(buf);
    lb_array_free(a);
    return rc;
}

typedef enum { RUN_RENDER, RUN_PNG, RUN_READ } run_kind;

typedef struct result {
    double s;
    uint64_t requests, bytes;
    int64_t width, height;
    long png_bytes;
} result;

/* One timed run on a freshly opened array. */
static int run_once(const char *path, run_kind kind, const lb_preview_options *o, int threads,
                    const char *png, result *r) {
    lb_array *a = NULL;
    lb_error e = {0};
    lb_io_stats s0, s1;
    uint8_t *buf = NULL;
    int rc = lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &a, &e);
    if (!rc) rc = lb_array_set_threads(a, threads, &e);
    if (rc) goto done;
    lb_preview_info info = {0};
    size_t size = 0;
    if (kind == RUN_READ) {
        size = lb_array_read_size(a, o->roi);
    } else {
        rc = lb_preview_size(a, o, &info, &e);
        if (rc) goto done;
        size = (size_t)info.width * (size_t)info.height * 3;
    }
    if (kind != RUN_PNG && !(buf = malloc(size))) {
        rc = LB_ENOMEM;
        goto done;
    }
    lb_array_io_stats(a, &s0);
    double t0 = now_s();
    if (kind == RUN_READ) rc = lb_array_read(a, o->roi, buf, size, &e);
    else if (kind == RUN_RENDER) rc = lb_preview_render(a, o, buf, size, &e);
    else rc = lb_preview_write_png(a, o, png, &info, &e);
    r->s = now_s() - t0;
    lb_array_io_stats(a, &s1);
    r->requests = s1.requests - s0.requests;
    r->bytes = s1.bytes - s0.bytes;
    r->width = info.width;
    r->height = info.height;
    if (kind == RUN_PNG) {
        struct stat st;
        r->png_bytes = stat(png, &st) == 0 ? (long)st.st_size : -1;
    }
done:
    if (rc) fprintf(stderr, "bench_preview: %s\n", e.message[0] ? e.message : lb_strerror(rc));
    free(buf);
    lb_array_free(a);
    return rc;
}

typedef struct bench {
    const char *path;
    char png[PATH_MAX];
    const geom *g;
    int runs, smoke;
    double floor_s[3]; /* the read floor per thread count (index = threads) */
} bench;

/* Time `runs` runs after a warm-up; print the row and the JSON line.
 * Returns -1 when a run fails or reads other than `expect` chunks. */
static int measure(bench *b, const char *name, const char *what, run_kind kind,
                   const lb_preview_options *o, int threads, uint64_t expect) {
    double t[64];
    result r = {0};
    double l0 = loadavg();
    if (!b->smoke && run_once(b->path, kind, o, threads, b->png, &r)) return -1;
    for (int i = 0; i < b->runs; i++) {
        if (run_once(b->path, kind, o, threads, b->png, &r)) return -1;
        t[i] = r.s;
    }
    double l1 = loadavg(), lo = t[0], hi = t[0];
    for (int i = 1; i < b->runs; i++) {
        if (t[i] < lo) lo = t[i];
        if (t[i] > hi) hi = t[i];
    }
    double med = median(t, b->runs);
    if (kind == RUN_READ) b->floor_s[threads] = med;
    double fl = b->floor_s[threads];
    char notes[160];
    if (kind == RUN_READ) snprintf(notes, sizeof notes, "the read floor");
    else if (fl > 0) snprintf(notes, sizeof notes, "%.2fx the read floor", med / fl);
    else snprintf(notes, sizeof notes, "%" PRId64 "x%" PRId64 " pixels", r.width, r.height);
    if (kind == RUN_PNG) {
        size_t l = strlen(notes);
        snprintf(notes + l, sizeof notes - l, ", PNG %.1f KiB", r.png_bytes / 1024.0);
    }
    printf("| %s | -j%d | %.1f ms (%.1f-%.1f) | %" PRIu64 " chunks (expected %" PRIu64
           "), %.1f MiB | %s |\n", what, threads, 1e3 * med, 1e3 * lo, 1e3 * hi, r.requests,
           expect, r.bytes / 1048576.0, notes);
    json_object *j = json_object_new_object();
    json_object_object_add(j, "bench", json_object_new_string("preview"));
    json_object_object_add(j, "case", json_object_new_string(name));
    json_object_object_add(j, "volume", json_object_new_int64(b->g->n));
    json_object_object_add(j, "chunk", json_object_new_int64(b->g->chunk));
    json_object_object_add(j, "window", json_object_new_int64(b->g->win));
    json_object_object_add(j, "threads", json_object_new_int(threads));
    json_object_object_add(j, "runs", json_object_new_int(b->runs));
    json_object_object_add(j, "seconds", json_object_new_double(med));
    json_object_object_add(j, "min_s", json_object_new_double(lo));
    json_object_object_add(j, "max_s", json_object_new_double(hi));
    json_object_object_add(j, "chunks_read", json_object_new_uint64(r.requests));
    json_object_object_add(j, "chunks_expected", json_object_new_uint64(expect));
    json_object_object_add(j, "bytes_read", json_object_new_uint64(r.bytes));
    if (kind != RUN_READ) {
        json_object_object_add(j, "width", json_object_new_int64(r.width));
        json_object_object_add(j, "height", json_object_new_int64(r.height));
        if (fl > 0) json_object_object_add(j, "vs_read_floor", json_object_new_double(med / fl));
    }
    if (kind == RUN_PNG) json_object_object_add(j, "png_bytes", json_object_new_int64(r.png_bytes));
    json_object_object_add(j, "load_before", json_object_new_double(l0));
    json_object_object_add(j, "load_after", json_object_new_double(l1));
    json_object_object_add(j, "smoke", json_object_new_boolean(b->smoke));
    printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    json_object_put(j);
    fflush(stdout);
    if (r.requests != expect) {
        fprintf(stderr, "bench_preview: %s read %" PRIu64 " chunks, expected %" PRIu64 "\n",
                name, r.requests, expect);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int smoke = 0, runs = 5;
    const char *data = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--smoke")) smoke = 1;
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_preview [--smoke] [--data DIR] [--runs R]\n");
            return 2;
        }
    }
    if (runs < 1) runs = 1;
    if (runs > 64) runs = 64;
    geom g = smoke ? (geom){256, 32, 128, 128} : (geom){4096, 64, 1024, 2048};
    if (smoke) runs = 1;
    char dir[PATH_MAX], path[PATH_MAX];
    int tmp = 0;
    if (smoke || !data) {
        if (smoke) {
            snprintf(dir, sizeof dir, "/tmp/lb_bench_preview_XXXXXX");
            if (!mkdtemp(dir)) {
                perror("bench_preview: mkdtemp");
                return 1;
            }
            tmp = 1;
        } else {
            char self[PATH_MAX];
            ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
            if (n <= 0) return 1;
            self[n] = '\0';
            char *slash = strrchr(self, '/');
            if (slash) *slash = '\0';
            snprintf(dir, sizeof dir, "%s/bench-data", self);
        }
    } else {
        snprintf(dir, sizeof dir, "%s", data);
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        perror("bench_preview: mkdir");
        return 1;
    }
    snprintf(path, sizeof path, "%s/preview-%" PRId64 ".zarr/labels", dir, g.n);
    if (make_volume(path, &g)) return 1;

    bench b = {path, "", &g, runs, smoke, {0, 0, 0}};
    snprintf(b.png, sizeof b.png, "%s/preview-bench.png", dir);
    lb_error e = {0};
    lb_groupings *groups = NULL;
    if (lb_groupings_new(&groups, &e) || lb_groupings_add_json(groups, GROUPS, &e)) {
        fprintf(stderr, "bench_preview: %s\n", e.message);
        return 1;
    }
    /* The window, and the section through it at z (world units, voxel 8). */
    int64_t lo = g.n / 2, off[3] = {0, 8 * lo, 8 * lo}, shp[3] = {8 * g.n, 8 * g.win, 8 * g.win};
    int64_t at = 8 * g.z;
    lb_roi win, sec;
    lb_roi_set(&win, 3, off, shp, &e);
    int64_t soff[3] = {8 * g.z, 8 * lo, 8 * lo}, sshp[3] = {8, 8 * g.win, 8 * g.win};
    lb_roi_set(&sec, 3, soff, sshp, &e);
    /* The chunks a section cuts, computed here: (window / chunk)^2; the
     * whole section shrunk 4x samples every 4th voxel, so it meets every
     * chunk of its z layer: (n / chunk)^2. */
    uint64_t cut = (uint64_t)((g.win / g.chunk) * (g.win / g.chunk));
    uint64_t layer = (uint64_t)((g.n / g.chunk) * (g.n / g.chunk));
    char what[160], whole[160];
    snprintf(what, sizeof what, "%" PRId64 "x%" PRId64 " section of %" PRId64 "^3 u64 "
             "(%.0f Gvoxel) zstd:3 %" PRId64 "^3 chunks", g.win, g.win, g.n,
             (double)g.n * g.n * g.n / (1 << 30), g.chunk);
    snprintf(whole, sizeof whole, "whole %" PRId64 "x%" PRId64 " section shrunk to %" PRId64
             "x%" PRId64, g.n, g.n, g.win, g.win);

    lb_preview_options o, og, ow;
    lb_preview_options_init(&o);
    o.roi = &win;
    o.at = &at;
    og = o;
    og.groups = groups;
    og.mask = 1;
    lb_preview_options_init(&ow);
    ow.at = &at;
    ow.max_size = g.win;
    lb_preview_options rd = o;
    rd.roi = &sec;

    printf("| bench | threads | time (median, range) | reads | notes |\n|---|---|---|---|---|\n");
    int rc = 0;
    for (int th = 1; th <= 2 && !rc; th++) {
        char w[200];
        snprintf(w, sizeof w, "lb_array_read of the same section (%s)", what);
        rc = measure(&b, "read_floor", w, RUN_READ, &rd, th, cut);
        if (!rc) rc = measure(&b, "labels", what, RUN_RENDER, &o, th, cut);
    }
    if (!rc) {
        char w[220];
        snprintf(w, sizeof w, "%s, 16 groups as overlays + their mask", what);
        rc = measure(&b, "groups_mask", w, RUN_RENDER, &og, 2, cut);
    }
    if (!rc) {
        char w[220];
        snprintf(w, sizeof w, "%s, written as PNG", what);
        rc = measure(&b, "png", w, RUN_PNG, &o, 2, cut);
    }
    if (!rc) rc = measure(&b, "whole_shrunk", whole, RUN_RENDER, &ow, 2, layer);
    lb_groupings_free(groups);
    remove(b.png);
    if (tmp) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc ? 1 : 0;
}
