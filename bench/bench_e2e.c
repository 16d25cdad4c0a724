/*
 * bench_e2e.c — labelbin end to end, every ratio measured in the
 * same run: (1) random ROI reads + binarize in process against zarr-python +
 * DaCapo's numpy rule (also warm through the shared label cache, against a
 * memset of the output), and random ROI reads with and without a chunk cache,
 * cold (first pass over a fresh array) and warm, on zstd and blosc inputs
 * (--only cache runs just those), (2) the `labelbin binarize` CLI at -j1 / -j2 against
 * the codec floor and the same job in zarr-python + numpy, (3) time per voxel
 * and peak memory of the CLI at three volume sizes.
 *
 *   bench_e2e [--smoke] [--data DIR] [--out DIR] [--runs R] [--seed S]
 *             [--no-python] [--only roi|cache|e2e|scale]...
 *
 * Data: CellMap-like uint64 labels written once by `labelbin sample --chunks
 * 64,64,64 --codec zstd:3` into DIR (default: bench-data/ next to this
 * program; reused when present): 256^3 (16 Mvoxel), 256x512x512 (64 Mvoxel),
 * 1024x512x512 (256 Mvoxel); for the cache part also 256^3 and 512^3 with
 * --codec blosc-zstd:5. Groups: the 16 CellMap groups of the golden
 * case cosem_u64_blosc (LB_GOLDEN_DIR, default ../shared/golden next to the
 * source tree). Outputs go to --out DIR (default: the data directory; e.g.
 * /dev/shm to leave the file system out). Python helpers (roi_numpy.py, e2e_numpy.py, next to this
 * file) run under /usr/bin/python3 (LB_PYTHON overrides).
 *
 * Timings: wall clock (CLOCK_MONOTONIC); median of R runs (default 5) after
 * one warm-up run. CLI runs are build/labelbin, each into a new dataset (all
 * removed at the end, untimed), started through a small launcher (this
 * program, --measure) that times it and takes its peak memory (ru_maxrss
 * from wait4) without counting this process's own memory in. One table row and one JSON line per result, on stdout; the load
 * average (/proc/loadavg, 1 min) before and after each result is in the JSON.
 * --smoke: tiny volumes in a temporary directory, one run, no Python, no
 * timing assertions (a CTest smoke test, < 10 s).
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
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#include "codec/codec.h"
#include "dataset/dataset.h"
#include "core/path.h"
#include "store/fs.h"
#include "core/util.h"

/* The 16 groups of golden/cosem_u64_blosc/case.json, for when the golden
 * directory is not there. */
static const char FALLBACK_GROUPS[] =
    "[[\"ecs\",[1]],[\"pm\",[2]],[\"mito\",[3,4,5]],[\"mito_mem\",[3]],"
    "[\"golgi\",[6,7]],[\"ves\",[8,9]],[\"endo\",[10,11]],[\"lyso\",[12,13]],"
    "[\"ld\",[14,15]],[\"er\",[16,17,18,19,20,21,22,23]],[\"er_mem_all\",[16,18,20]],"
    "[\"eres\",[18,19]],[\"nuc\",[20,21,22,23,24,25,26,27,28,29,37]],[\"mt\",[30,36]],"
    "[\"perox\",[47,48]],[\"cell_all\",[]]]";

typedef struct cfg {
    int smoke, runs;
    uint64_t seed;
    int only_roi, only_e2e, only_scale, only_cache;
    char data[PATH_MAX];    /* data cache directory                     */
    char out[PATH_MAX];     /* where outputs are written (default: data) */
    const char *out_fs;     /* its file system: "tmpfs", "ext4", ...     */
    char exe_dir[PATH_MAX]; /* where labelbin lives                     */
    char labelbin[PATH_MAX];
    char script_dir[PATH_MAX];
    char groups_file[PATH_MAX];
    const char *python;
    char *groups_json;      /* DaCapo JSON text                         */
    lb_groupings *groups;
    int tmp_data;           /* data dir is a temporary one (smoke)      */
} cfg;

/* Run `python script task` and parse the last JSON line it prints. */
static json_object *run_python(const cfg *c, const char *script, const char *task) {
    char cmd[3 * PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "'%s' '%s/%s' '%s'", c->python, c->script_dir, script, task);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    char line[1 << 16];
    json_object *last = NULL;
    while (fgets(line, sizeof line, p)) {
        if (line[0] != '{') continue;
        json_object *o = json_tokener_parse(line);
        if (o) {
            json_object_put(last);
            last = o;
        }
    }
    int st = pclose(p);
    if (st != 0) fprintf(stderr, "bench_e2e: %s exited with status %d\n", script, st);
    return last;
}

static double jnum(json_object *o, const char *key) {
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : -1;
}

/* Dataset directory of the sample of shape z,y,x written with `codec`,
 * generated when absent. */
static int ensure_sample_codec(const cfg *c, int64_t z, int64_t y, int64_t x, int64_t chunk,
                               const char *codec, char *out, size_t size) {
    char tag[64] = "";
    if (strcmp(codec, "zstd:3") != 0) { /* zstd:3 keeps the name it always had */
        snprintf(tag, sizeof tag, "_%s", codec);
        for (char *p = tag; *p; p++)
            if (*p == ':') *p = '-';
    }
    snprintf(out, size, "%s/v%" PRId64 "x%" PRId64 "x%" PRId64 "_c%" PRId64 "%s.zarr/labels",
             c->data, z, y, x, chunk, tag);
    char meta[PATH_MAX + 16];
    snprintf(meta, sizeof meta, "%s/.zarray", out);
    if (file_exists(meta)) return 0;
    char shape[96], chunks[64];
    snprintf(shape, sizeof shape, "%" PRId64 ",%" PRId64 ",%" PRId64, z, y, x);
    snprintf(chunks, sizeof chunks, "%" PRId64 ",%" PRId64 ",%" PRId64, chunk, chunk, chunk);
    fprintf(stderr, "bench_e2e: generating %s\n", out);
    char *argv[] = {(char *)c->labelbin, "sample", "-q", "-f", "--seed", "1", "--shape", shape,
                    "--chunks", chunks, "--codec", (char *)codec, out, NULL};
    if (run_child(argv, NULL, NULL) != 0 || !file_exists(meta)) {
        fprintf(stderr, "bench_e2e: could not generate %s with %s\n", out, c->labelbin);
        return -1;
    }
    return 0;
}

static int ensure_sample(const cfg *c, int64_t z, int64_t y, int64_t x, int64_t chunk,
                         char *out, size_t size) {
    return ensure_sample_codec(c, z, y, x, chunk, "zstd:3", out, size);
}

/* --------------------------------------------------------------------------
 * 1. Random ROI reads + binarize in process
 * -------------------------------------------------------------------------- */

static int open_binarize(const cfg *c, const char *path, lb_array **out) {
    lb_error e = {0};
    lb_array *src = NULL;
    if (lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &src, &e) ||
        lb_binarize_new(src, c->groups, (lb_id){0, 0}, out, &e)) {
        fprintf(stderr, "bench_e2e: %s: %s\n", path, e.message);
        return -1;
    }
    return 0;
}

/* One pass over the ROIs; seconds per ROI. */
static double roi_pass(const lb_array *a, const lb_roi *rois, int n, uint8_t *buf, size_t size,
                       int *fail) {
    lb_error e = {0};
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        if (lb_array_read(a, &rois[i], buf, size, &e)) {
            fprintf(stderr, "bench_e2e: read: %s\n", e.message);
            *fail = 1;
            return 0;
        }
    return (now_s() - t0) / n;
}

static int bench_roi(const cfg *c) {
    int64_t n = c->smoke ? 64 : 256, chunk = c->smoke ? 32 : 64, edge = c->smoke ? 32 : 96;
    int n_rois = c->smoke ? 2 : 8, runs = c->runs;
    char path[PATH_MAX];
    if (ensure_sample(c, n, n, n, chunk, path, sizeof path)) return -1;
    lb_array *plain = NULL, *cached = NULL, *threaded = NULL, *both = NULL, *lcached = NULL;
    uint8_t *buf = NULL, *lbuf = NULL;
    int rc = -1, fail = 0;
    char lc_name[64];
    snprintf(lc_name, sizeof lc_name, "lb-bench-e2e-%ld", (long)getpid());
    json_object *py = NULL, *o = NULL;
    char task[PATH_MAX + 32];
    task[0] = '\0';
    if (open_binarize(c, path, &plain) || open_binarize(c, path, &cached) ||
        open_binarize(c, path, &threaded) || open_binarize(c, path, &both) ||
        open_binarize(c, path, &lcached))
        goto done;
    lb_error e = {0};
    /* threaded: no cache, the chunks of each ROI decoded (and the ROI
     * binarized) by 2 threads; both: that and the cache */
    if (lb_array_set_threads(threaded, 2, &e) || lb_array_set_threads(both, 2, &e)) {
        fprintf(stderr, "bench_e2e: set_threads: %s\n", e.message);
        goto done;
    }
    size_t cache_bytes = (size_t)n * (size_t)n * (size_t)n * 8; /* the whole volume */
    if (lb_array_set_cache(cached, cache_bytes, &e) || lb_array_set_cache(both, cache_bytes, &e)) {
        fprintf(stderr, "bench_e2e: set_cache: %s\n", e.message);
        goto done;
    }
    /* lcached: the shared label cache (a new file, removed at the end),
     * filled ahead by warm(): its reads are all hits */
    if (lb_array_set_label_cache(lcached, lc_name, (size_t)256 << 20, &e) ||
        lb_array_warm(lcached, NULL, 0, &e)) {
        fprintf(stderr, "bench_e2e: label cache: %s\n", e.message);
        goto done;
    }
    const int64_t *vs = lb_array_voxel_size(plain);
    lb_roi whole;
    lb_array_roi(plain, &whole);
    lb_roi rois[64];
    int64_t offs[64][3];
    uint64_t s = c->seed;
    for (int i = 0; i < n_rois; i++) {
        int64_t o3[3], sh[3];
        for (int k = 0; k < 3; k++) {
            offs[i][k] = (int64_t)(rng_next(&s) % (uint64_t)(n - edge + 1));
            o3[k] = whole.offset[k] + offs[i][k] * vs[k];
            sh[k] = edge * vs[k];
        }
        if (lb_roi_set(&rois[i], 3, o3, sh, &e)) goto done;
    }
    size_t groups = lb_groupings_count(c->groups);
    size_t size = lb_array_read_size(plain, &rois[0]);
    buf = malloc(size);
    if (!buf) goto done;

    /* the labels alone (decode + copy, no binarize): what any reader pays */
    const lb_array *labels_src = lb_array_source(plain);
    size_t lsize = lb_array_read_size(labels_src, &rois[0]);
    lbuf = malloc(lsize);
    if (!lbuf) goto done;
    double l0 = loadavg();
    double t_plain[64], t_cached[64], t_read[64], t_thr[64], t_both[64], t_label[64], t_fill[64];
    roi_pass(labels_src, rois, n_rois, lbuf, lsize, &fail);
    roi_pass(plain, rois, n_rois, buf, size, &fail); /* warm-up */
    roi_pass(cached, rois, n_rois, buf, size, &fail); /* fills the cache */
    roi_pass(threaded, rois, n_rois, buf, size, &fail);
    roi_pass(both, rois, n_rois, buf, size, &fail); /* fills its cache */
    for (int r = 0; r < runs && !fail; r++) {
        t_plain[r] = roi_pass(plain, rois, n_rois, buf, size, &fail);
        t_cached[r] = roi_pass(cached, rois, n_rois, buf, size, &fail);
        t_read[r] = roi_pass(labels_src, rois, n_rois, lbuf, lsize, &fail);
        t_thr[r] = roi_pass(threaded, rois, n_rois, buf, size, &fail);
        t_both[r] = roi_pass(both, rois, n_rois, buf, size, &fail);
        t_label[r] = roi_pass(lcached, rois, n_rois, buf, size, &fail);
        /* the floor of a read: writing its output bytes once */
        double f0 = now_s();
        for (int i = 0; i < n_rois; i++) memset(buf, i & 1, size);
        t_fill[r] = (now_s() - f0) / n_rois;
    }
    if (fail) goto done;
    double lb_s = median(t_plain, runs), lbc_s = median(t_cached, runs);
    double read_s = median(t_read, runs), thr_s = median(t_thr, runs);
    double both_s = median(t_both, runs);
    double label_s = median(t_label, runs), fill_s = median(t_fill, runs);

    /* per-channel non-zero counts of ROI 0, to check against numpy */
    if (lb_array_read(plain, &rois[0], buf, size, &e)) goto done;
    size_t per = size / groups;
    int64_t nonzero[256];
    for (size_t g = 0; g < groups && g < 256; g++) {
        nonzero[g] = 0;
        for (size_t i = 0; i < per; i++) nonzero[g] += buf[g * per + i] != 0;
    }

    double np_s = -1, np_read_s = -1;
    int verified = -1; /* unknown */
    if (c->python) {
        snprintf(task, sizeof task, "%s/roi_task.json", c->data);
        FILE *f = fopen(task, "w");
        if (!f) goto done;
        fprintf(f, "{\"path\": \"%s\", \"edge\": %" PRId64 ", \"runs\": %d, \"groupings\": %s, "
                   "\"rois\": [", path, edge, runs, c->groups_json);
        for (int i = 0; i < n_rois; i++)
            fprintf(f, "%s[%" PRId64 ", %" PRId64 ", %" PRId64 "]", i ? ", " : "", offs[i][0],
                    offs[i][1], offs[i][2]);
        fprintf(f, "]}\n");
        fclose(f);
        py = run_python(c, "roi_numpy.py", task);
        np_s = jnum(py, "numpy_s");
        np_read_s = jnum(py, "read_s");
        json_object *nz;
        if (py && json_object_object_get_ex(py, "nonzero", &nz) &&
            json_object_array_length(nz) == groups) {
            verified = 1;
            for (size_t g = 0; g < groups; g++)
                if (json_object_get_int64(json_object_array_get_idx(nz, g)) != nonzero[g])
                    verified = 0;
        } else {
            verified = 0;
        }
    }
    double l1 = loadavg();
    printf("| ROI read + binarize, %d random %" PRId64 "^3 ROIs of a %" PRId64
           "^3 u64 zstd:3 %" PRId64 "^3-chunk volume, %zu groups | labelbin %.2f ms/ROI | "
           "2 threads %.2f | cached %.2f | cached, 2 threads %.2f | label cache, warm %.2f "
           "(%.2fx a fill of the output, %.2f) | labels only %.2f "
           "| zarr+numpy %.2f ms/ROI (zarr read %.2f) "
           "| speedup %.1fx (2 threads %.1fx, cached %.1fx, cached 2 threads %.1fx, label "
           "cache %.1fx), target >= 10x |\n",
           n_rois, edge, n, chunk, groups, 1e3 * lb_s, 1e3 * thr_s, 1e3 * lbc_s, 1e3 * both_s,
           1e3 * label_s, label_s / fill_s, 1e3 * fill_s, 1e3 * read_s, 1e3 * np_s,
           1e3 * np_read_s, np_s > 0 ? np_s / lb_s : 0, np_s > 0 ? np_s / thr_s : 0,
           np_s > 0 ? np_s / lbc_s : 0, np_s > 0 ? np_s / both_s : 0,
           np_s > 0 ? np_s / label_s : 0);
    o = json_object_new_object();
    json_object_object_add(o, "bench", json_object_new_string("e2e_roi"));
    json_object_object_add(o, "volume", json_object_new_int64(n));
    json_object_object_add(o, "chunk", json_object_new_int64(chunk));
    json_object_object_add(o, "roi_edge", json_object_new_int64(edge));
    json_object_object_add(o, "rois", json_object_new_int(n_rois));
    json_object_object_add(o, "groups", json_object_new_int64((int64_t)groups));
    json_object_object_add(o, "runs", json_object_new_int(runs));
    json_object_object_add(o, "seed", json_object_new_uint64(c->seed));
    json_object_object_add(o, "labelbin_s", json_object_new_double(lb_s));
    json_object_object_add(o, "labelbin_cached_s", json_object_new_double(lbc_s));
    json_object_object_add(o, "labelbin_2threads_s", json_object_new_double(thr_s));
    json_object_object_add(o, "labelbin_cached_2threads_s", json_object_new_double(both_s));
    json_object_object_add(o, "labelbin_labels_only_s", json_object_new_double(read_s));
    json_object_object_add(o, "labelbin_label_cache_s", json_object_new_double(label_s));
    json_object_object_add(o, "fill_s", json_object_new_double(fill_s));
    json_object_object_add(o, "cache_bytes", json_object_new_int64((int64_t)cache_bytes));
    if (np_s > 0) {
        json_object_object_add(o, "numpy_s", json_object_new_double(np_s));
        json_object_object_add(o, "speedup", json_object_new_double(np_s / lb_s));
        json_object_object_add(o, "speedup_cached", json_object_new_double(np_s / lbc_s));
        json_object_object_add(o, "speedup_2threads", json_object_new_double(np_s / thr_s));
        json_object_object_add(o, "speedup_cached_2threads", json_object_new_double(np_s / both_s));
        json_object_object_add(o, "speedup_label_cache", json_object_new_double(np_s / label_s));
        json_object_object_add(o, "numpy_read_only_s", json_object_new_double(np_read_s));
        json_object_object_add(o, "target_speedup", json_object_new_double(10));
        json_object_object_add(o, "met", json_object_new_boolean(np_s / lb_s >= 10));
    }
    if (verified >= 0) json_object_object_add(o, "verified", json_object_new_boolean(verified));
    json_object_object_add(o, "load_before", json_object_new_double(l0));
    json_object_object_add(o, "load_after", json_object_new_double(l1));
    json_object_object_add(o, "smoke", json_object_new_boolean(c->smoke));
    print_json(o);
    rc = verified == 0 ? -1 : 0;
    if (verified == 0) fprintf(stderr, "bench_e2e: labelbin and numpy disagree on ROI 0\n");
done:
    json_object_put(o);
    json_object_put(py);
    if (task[0]) remove(task);
    free(buf);
    free(lbuf);
    lb_array_free(plain);
    lb_array_free(cached);
    lb_array_free(threaded);
    lb_array_free(both);
    if (lcached) {
        lb_error re = {0};
        lb_array_free(lcached);
        lb_cache_remove(lc_name, &re);
    }
    return rc;
}

/* --------------------------------------------------------------------------
 * 1b. The chunk cache: cold and warm ROI reads, with and without a cache
 * -------------------------------------------------------------------------- */

/* Random ROIs of edge `edge` voxels inside the array at `path`; their
 * voxel offsets in offs. */
static int random_rois(const char *path, int64_t edge, int n_rois, uint64_t seed, lb_roi *rois,
                       int64_t (*offs)[3], size_t *size) {
    lb_error e = {0};
    lb_array *a = NULL;
    if (lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &a, &e)) {
        fprintf(stderr, "bench_e2e: %s: %s\n", path, e.message);
        return -1;
    }
    const int64_t *vs = lb_array_voxel_size(a);
    lb_roi whole;
    lb_array_roi(a, &whole);
    int rc = 0;
    for (int i = 0; i < n_rois && !rc; i++) {
        int64_t o3[3], sh[3];
        for (int k = 0; k < 3; k++) {
            int64_t n = whole.shape[k] / vs[k];
            offs[i][k] = (int64_t)(rng_next(&seed) % (uint64_t)(n - edge + 1));
            o3[k] = whole.offset[k] + offs[i][k] * vs[k];
            sh[k] = edge * vs[k];
        }
        rc = lb_roi_set(&rois[i], 3, o3, sh, &e);
    }
    *size = lb_array_read_size(a, &rois[0]);
    lb_array_free(a);
    return rc;
}

/* A fresh ZarrArray (nothing decoded yet) reading with `threads`. */
static lb_array *open_labels(const char *path, int threads) {
    lb_error e = {0};
    lb_array *a = NULL;
    if (lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &a, &e) ||
        lb_array_set_threads(a, threads, &e)) {
        fprintf(stderr, "bench_e2e: %s: %s\n", path, e.message);
        lb_array_free(a);
        return NULL;
    }
    return a;
}

/* One input of the cache benchmark: every chunk a random ROI touches in the
 * first pass over a fresh array is a cold read (decoded from its file), and
 * a cache must not make those slower. Per run and thread count, in turn: a
 * fresh array without a cache (one pass), and a fresh array with a cache of
 * the whole volume (set_cache timed apart: it maps and touches the memory;
 * then the cold first pass and a warm second one). Medians over the runs. */
static int cache_case(const cfg *c, int64_t n, int64_t chunk, const char *codec, int64_t edge,
                      int n_rois) {
    char path[PATH_MAX];
    if (ensure_sample_codec(c, n, n, n, chunk, codec, path, sizeof path)) return -1;
    lb_roi rois[64];
    int64_t offs[64][3];
    size_t size = 0;
    if (random_rois(path, edge, n_rois, c->seed, rois, offs, &size)) return -1;
    /* How many of the pass's chunk reads are first reads (decodes, with a
     * cache): the rest hit even in the cold pass. */
    int64_t g = n / chunk, visits = 0, distinct = 0;
    uint8_t *seen = calloc((size_t)(g * g * g), 1);
    if (!seen) return -1;
    for (int i = 0; i < n_rois; i++)
        for (int64_t z = offs[i][0] / chunk; z <= (offs[i][0] + edge - 1) / chunk; z++)
            for (int64_t y = offs[i][1] / chunk; y <= (offs[i][1] + edge - 1) / chunk; y++)
                for (int64_t x = offs[i][2] / chunk; x <= (offs[i][2] + edge - 1) / chunk; x++) {
                    visits++;
                    distinct += !seen[(z * g + y) * g + x];
                    seen[(z * g + y) * g + x] = 1;
                }
    free(seen);
    uint8_t *buf = malloc(size);
    if (!buf) return -1;
    memset(buf, 0, size); /* the caller's buffer is warm in a training loop too */
    size_t cache_bytes = (size_t)n * (size_t)n * (size_t)n * 8; /* the whole volume */
    int runs = c->runs, fail = 0, rc = 0;
    for (int threads = 1; threads <= 2 && !rc; threads++) {
        double t_unc[64], t_cold[64], t_warm[64], t_set[64];
        double l0 = loadavg();
        lb_array *a = open_labels(path, threads); /* warm-up: page cache, allocator */
        if (!a) return -1;
        roi_pass(a, rois, n_rois, buf, size, &fail);
        lb_array_free(a);
        for (int r = 0; r < runs && !fail; r++) {
            if (!(a = open_labels(path, threads))) {
                fail = 1;
                break;
            }
            t_unc[r] = roi_pass(a, rois, n_rois, buf, size, &fail);
            lb_array_free(a);
            if (!(a = open_labels(path, threads))) {
                fail = 1;
                break;
            }
            lb_error e = {0};
            double t0 = now_s();
            if (lb_array_set_cache(a, cache_bytes, &e)) {
                fprintf(stderr, "bench_e2e: set_cache: %s\n", e.message);
                fail = 1;
            }
            t_set[r] = now_s() - t0;
            t_cold[r] = roi_pass(a, rois, n_rois, buf, size, &fail);
            t_warm[r] = roi_pass(a, rois, n_rois, buf, size, &fail);
            lb_array_free(a);
        }
        if (fail) {
            rc = -1;
            break;
        }
        double unc = median(t_unc, runs), cold = median(t_cold, runs);
        double warm = median(t_warm, runs), set = median(t_set, runs);
        double l1 = loadavg();
        printf("| ROI read, cache cold/warm: %d random %" PRId64 "^3 ROIs of a %" PRId64
               "^3 u64 %s %" PRId64 "^3-chunk volume, %d thread%s | no cache %.2f ms/ROI "
               "| cached, cold (first pass) %.2f ms/ROI = %.2fx no cache "
               "(%" PRId64 " of %" PRId64 " chunk reads decode) "
               "| cached, warm %.2f ms/ROI = %.2fx | set_cache %.0f ms (%.0f MB) |\n",
               n_rois, edge, n, codec, chunk, threads, threads > 1 ? "s" : "", 1e3 * unc,
               1e3 * cold, cold / unc, distinct, visits, 1e3 * warm, warm / unc, 1e3 * set,
               (double)cache_bytes / 1e6);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "bench", json_object_new_string("e2e_roi_cache"));
        json_object_object_add(o, "array", json_object_new_string("ZarrArray"));
        json_object_object_add(o, "codec", json_object_new_string(codec));
        json_object_object_add(o, "volume", json_object_new_int64(n));
        json_object_object_add(o, "chunk", json_object_new_int64(chunk));
        json_object_object_add(o, "roi_edge", json_object_new_int64(edge));
        json_object_object_add(o, "rois", json_object_new_int(n_rois));
        json_object_object_add(o, "threads", json_object_new_int(threads));
        json_object_object_add(o, "runs", json_object_new_int(runs));
        json_object_object_add(o, "seed", json_object_new_uint64(c->seed));
        json_object_object_add(o, "uncached_s", json_object_new_double(unc));
        json_object_object_add(o, "cached_cold_s", json_object_new_double(cold));
        json_object_object_add(o, "cached_warm_s", json_object_new_double(warm));
        json_object_object_add(o, "cold_vs_uncached", json_object_new_double(cold / unc));
        json_object_object_add(o, "warm_vs_uncached", json_object_new_double(warm / unc));
        json_object_object_add(o, "set_cache_s", json_object_new_double(set));
        json_object_object_add(o, "chunk_reads", json_object_new_int64(visits));
        json_object_object_add(o, "cold_decodes", json_object_new_int64(distinct));
        json_object_object_add(o, "cache_bytes", json_object_new_int64((int64_t)cache_bytes));
        json_object_object_add(o, "load_before", json_object_new_double(l0));
        json_object_object_add(o, "load_after", json_object_new_double(l1));
        json_object_object_add(o, "smoke", json_object_new_boolean(c->smoke));
        print_json(o);
        json_object_put(o);
    }
    free(buf);
    return rc;
}

/* blosc and zstd inputs; the 512^3 blosc case with 128^3 ROIs is the one
 * where a cache once made cold reads several times slower. */
static int bench_roi_cache(const cfg *c) {
    if (c->smoke) return cache_case(c, 64, 32, "blosc-zstd:5", 32, 2) ||
                         cache_case(c, 64, 32, "zstd:3", 32, 2);
    return cache_case(c, 256, 64, "zstd:3", 96, 8) ||
           cache_case(c, 256, 64, "blosc-zstd:5", 96, 8) ||
           cache_case(c, 512, 64, "blosc-zstd:5", 128, 8);
}

/* --------------------------------------------------------------------------
 * 2. End-to-end binarize: CLI -j1 / -j2 vs codec floor vs zarr-python
 * -------------------------------------------------------------------------- */

/* One CLI binarize of src into a new dataset dest_base_N (N counts the
 * calls; *dest_out receives the path). Outputs are removed only at the end
 * of a benchmark: on ext4, creating files right after deleting as many costs
 * the kernel a scan for recently deleted inodes (several times the whole
 * job here), which would measure the benchmark's own clean-up. */
static int cli_binarize(const cfg *c, const char *src, const char *dest_base, int threads,
                        double *wall, long *rss, char *dest_out) {
    static int serial;
    char j[16], dest[PATH_MAX + 64];
    snprintf(j, sizeof j, "-j%d", threads);
    snprintf(dest, sizeof dest, "%s_%d", dest_base, serial++);
    if (dest_out) snprintf(dest_out, PATH_MAX + 64, "%s", dest);
    /* One chunk per channel, as the codec floor and zarr-python write them
     * (bench_storage compares the layouts). */
    char *argv[] = {(char *)c->labelbin, "binarize", "-q", "--no-progress", j, "--codec", "zstd:3",
                    "--channel-chunks", "separate", "--groupings", (char *)c->groups_file,
                    (char *)src, (char *)dest, NULL};
    int st = run_child(argv, wall, rss);
    if (st != 0) fprintf(stderr, "bench_e2e: labelbin binarize %s exited with %d\n", j, st);
    return st == 0 ? 0 : -1;
}

/* The codec floor. decode: lb__dataset_read_chunk of every source chunk
 * (open + read of the stored file from the page cache, zstd decode into a
 * full chunk buffer). encode: lb__codec_encode of every non-empty output
 * chunk that labelbin wrote, with the output codec (the chunk bytes are
 * taken untimed from labelbin's own output). Not included: the binarize
 * kernel, the all-zero test, writing files, metadata. Single thread.
 * Reported beside it, not in it: write = lb__fs_write_atomic of each
 * encoded chunk into a fresh folder next to dest (temporary file, write,
 * close, rename: what any Zarr v2 writer that leaves no torn chunk does),
 * the file-system part of the job that no codec choice removes. */
static int codec_floor(const cfg *c, const char *src, const char *dest, double *dec_s,
                       double *enc_s, double *wr_s, int64_t *n_in, int64_t *n_out) {
    lb_error e = {0};
    lb__dataset *in = NULL, *out = NULL;
    uint8_t *buf = NULL;
    lb__buf enc = {0};
    double td[64], te[64], tw[64];
    char wdir[PATH_MAX + 16], wpath[PATH_MAX + 300], key[256];
    snprintf(wdir, sizeof wdir, "%s.floor", dest);
    int rc = -1, runs = c->runs;
    if (lb__dataset_open(src, 0, &in, &e) || lb__dataset_open(dest, 0, &out, &e)) {
        fprintf(stderr, "bench_e2e: floor: %s\n", e.message);
        goto done;
    }
    size_t cap = in->chunk_bytes > out->chunk_bytes ? in->chunk_bytes : out->chunk_bytes;
    buf = malloc(cap);
    if (!buf) goto done;
    for (int r = -1; r < runs; r++) { /* r = -1: warm-up */
        int64_t idx[LB_MAX_DIMS] = {0};
        *n_in = 0;
        double t0 = now_s();
        for (;;) {
            int present;
            if (lb__dataset_read_chunk(in, idx, buf, &present, &e)) goto fail;
            (*n_in)++;
            int k = in->ndim - 1;
            while (k >= 0 && ++idx[k] == in->grid[k]) idx[k--] = 0;
            if (k < 0) break;
        }
        double t_dec = now_s() - t0, t_enc = 0, t_wr = 0;
        memset(idx, 0, sizeof idx);
        *n_out = 0;
        rm_rf(wdir);
        if (mkdir(wdir, 0755) != 0) goto fail;
        for (;;) {
            if (lb__dataset_chunk_exists(out, idx)) {
                int present;
                if (lb__dataset_read_chunk(out, idx, buf, &present, &e)) goto fail;
                double t1 = now_s();
                lb__codec_scratch cs;
                memset(&cs, 0, sizeof cs);
                int erc = lb__chain_encode(out->m.chain, &out->srepr, NULL, buf, &enc, &cs, &e);
                lb__codec_scratch_free(&cs);
                if (erc) goto fail;
                t_enc += now_s() - t1;
                lb__dataset_chunk_key(out, idx, key, sizeof key);
                snprintf(wpath, sizeof wpath, "%s/%s", wdir, key);
                t1 = now_s();
                if (lb__fs_write_atomic(wpath, enc.data, enc.size, &e)) goto fail;
                t_wr += now_s() - t1;
                (*n_out)++;
            }
            int k = out->ndim - 1;
            while (k >= 0 && ++idx[k] == out->grid[k]) idx[k--] = 0;
            if (k < 0) break;
        }
        if (r >= 0) {
            td[r] = t_dec;
            te[r] = t_enc;
            tw[r] = t_wr;
        }
    }
    *dec_s = median(td, runs);
    *enc_s = median(te, runs);
    *wr_s = median(tw, runs);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "bench_e2e: floor: %s\n", e.message);
done:
    rm_rf(wdir);
    lb__buf_free(&enc);
    free(buf);
    lb__dataset_free(in);
    lb__dataset_free(out);
    return rc;
}

static int bench_e2e(const cfg *c) {
    int64_t z = c->smoke ? 64 : 256, yx = c->smoke ? 64 : 512, chunk = c->smoke ? 32 : 64;
    int runs = c->runs, rc = -1;
    char src[PATH_MAX], dest[PATH_MAX + 64], base[PATH_MAX + 32], npdest[PATH_MAX + 32],
        task[PATH_MAX + 32], outdir[PATH_MAX + 32], npdir[PATH_MAX + 32];
    json_object *py = NULL, *o = NULL;
    task[0] = '\0';
    if (ensure_sample(c, z, yx, yx, chunk, src, sizeof src)) return -1;
    snprintf(outdir, sizeof outdir, "%s/out_labelbin.zarr", c->out);
    snprintf(base, sizeof base, "%s/gt", outdir);
    snprintf(npdir, sizeof npdir, "%s/out_numpy.zarr", c->out);
    snprintf(npdest, sizeof npdest, "%s/gt", npdir);
    rm_rf(outdir);
    rm_rf(npdir);
    dest[0] = '\0';
    double l0 = loadavg();
    double w1[64], w2[64], w, c1[64], c2[64];
    long rss1 = 0, rss2 = 0, rss;
    if (!c->smoke && cli_binarize(c, src, base, 2, &w, &rss, dest)) goto done; /* warm-up */
    for (int r = 0; r < runs; r++) { /* interleaved so both see the same load */
        if (cli_binarize(c, src, base, 1, &w1[r], &rss, dest)) goto done;
        c1[r] = last_cpu_s;
        rss1 = rss > rss1 ? rss : rss1;
        if (cli_binarize(c, src, base, 2, &w2[r], &rss, dest)) goto done;
        c2[r] = last_cpu_s;
        rss2 = rss > rss2 ? rss : rss2;
    }
    double j1 = median(w1, runs), j2 = median(w2, runs);
    double dec = 0, enc = 0, wr = 0;
    int64_t n_in = 0, n_out = 0;
    if (codec_floor(c, src, dest, &dec, &enc, &wr, &n_in, &n_out)) goto done;
    double floor_s = dec + enc;

    double np_s = -1;
    int equal = -1;
    if (c->python) {
        snprintf(task, sizeof task, "%s/e2e_task.json", c->data);
        FILE *f = fopen(task, "w");
        if (!f) goto done;
        int np_runs = runs < 3 ? runs : 3; /* tens of seconds each */
        fprintf(f, "{\"source\": \"%s\", \"dest\": \"%s\", \"runs\": %d, \"groupings\": %s, "
                   "\"compare\": \"%s\"}\n", src, npdest, np_runs, c->groups_json, dest);
        fclose(f);
        py = run_python(c, "e2e_numpy.py", task);
        np_s = jnum(py, "seconds");
        json_object *eq;
        equal = py && json_object_object_get_ex(py, "equal", &eq) && json_object_get_boolean(eq);
        rm_rf(npdir);
    }
    double l1 = loadavg();
    double mvox = (double)(z * yx * yx) / 1e6;
    size_t groups = lb_groupings_count(c->groups);
    printf("| binarize %" PRId64 "x%" PRId64 "x%" PRId64 " u64 (%.0f Mvox) zstd:3 %" PRId64
           "^3, %zu groups, output on %s | -j1 %.3f s | -j2 %.3f s | floor %.3f s (decode %.3f + encode %.3f) "
           "| file writes %.3f s | zarr+numpy %.3f s | j1/floor %.2f (<= 1.3) | j1/(floor+writes) %.2f "
           "| j1/j2 %.2f (>= 1.7) | numpy/j2 %.1f (>= 4) |\n",
           z, yx, yx, mvox, chunk, groups, c->out_fs, j1, j2, floor_s, dec, enc, wr, np_s,
           j1 / floor_s, j1 / (floor_s + wr), j1 / j2, np_s > 0 ? np_s / j2 : 0);
    o = json_object_new_object();
    json_object_object_add(o, "bench", json_object_new_string("e2e_binarize"));
    json_object_object_add(o, "source", json_object_new_string(src));
    json_object_object_add(o, "mvoxels", json_object_new_double(mvox));
    json_object_object_add(o, "groups", json_object_new_int64((int64_t)groups));
    json_object_object_add(o, "runs", json_object_new_int(runs));
    json_object_object_add(o, "j1_s", json_object_new_double(j1));
    json_object_object_add(o, "j2_s", json_object_new_double(j2));
    json_object_object_add(o, "j1_cpu_s", json_object_new_double(median(c1, runs)));
    json_object_object_add(o, "j2_cpu_s", json_object_new_double(median(c2, runs)));
    json_object_object_add(o, "j1_maxrss_kb", json_object_new_int64(rss1));
    json_object_object_add(o, "j2_maxrss_kb", json_object_new_int64(rss2));
    json_object_object_add(o, "out_fs", json_object_new_string(c->out_fs));
    json_object_object_add(o, "floor_s", json_object_new_double(floor_s));
    json_object_object_add(o, "floor_decode_s", json_object_new_double(dec));
    json_object_object_add(o, "floor_encode_s", json_object_new_double(enc));
    json_object_object_add(o, "file_writes_s", json_object_new_double(wr));
    json_object_object_add(o, "j1_over_floor_and_writes", json_object_new_double(j1 / (floor_s + wr)));
    json_object_object_add(o, "chunks_in", json_object_new_int64(n_in));
    json_object_object_add(o, "chunks_out", json_object_new_int64(n_out));
    json_object_object_add(o, "j1_over_floor", json_object_new_double(j1 / floor_s));
    json_object_object_add(o, "j1_over_j2", json_object_new_double(j1 / j2));
    json_object_object_add(o, "met_floor", json_object_new_boolean(j1 / floor_s <= 1.3));
    json_object_object_add(o, "met_scaling", json_object_new_boolean(j1 / j2 >= 1.7));
    if (np_s > 0) {
        json_object_object_add(o, "numpy_s", json_object_new_double(np_s));
        json_object_object_add(o, "numpy_over_j2", json_object_new_double(np_s / j2));
        json_object_object_add(o, "met_numpy", json_object_new_boolean(np_s / j2 >= 4));
        json_object_object_add(o, "verified", json_object_new_boolean(equal == 1));
    }
    json_object_object_add(o, "load_before", json_object_new_double(l0));
    json_object_object_add(o, "load_after", json_object_new_double(l1));
    json_object_object_add(o, "smoke", json_object_new_boolean(c->smoke));
    print_json(o);
    rc = equal == 0 ? -1 : 0;
    if (equal == 0) fprintf(stderr, "bench_e2e: labelbin's and zarr-python's outputs differ\n");
done:
    json_object_put(o);
    json_object_put(py);
    if (task[0]) remove(task);
    rm_rf(outdir);
    return rc;
}

/* --------------------------------------------------------------------------
 * 3. Time per voxel and peak memory at three sizes
 * -------------------------------------------------------------------------- */

static int bench_scale(const cfg *c) {
    static const int64_t full[3][3] = {{256, 256, 256}, {256, 512, 512}, {1024, 512, 512}};
    static const int64_t tiny[3][3] = {{32, 32, 32}, {32, 64, 64}, {64, 64, 64}};
    int64_t chunk = c->smoke ? 32 : 64;
    int runs = c->runs < 3 ? c->runs : 3;
    char outdir[PATH_MAX + 32], base[PATH_MAX + 32];
    snprintf(outdir, sizeof outdir, "%s/out_scale.zarr", c->out);
    snprintf(base, sizeof base, "%s/gt", outdir);
    rm_rf(outdir);
    for (int threads = 1; threads <= 2; threads++)
        for (int i = 0; i < 3; i++) {
            const int64_t *s = c->smoke ? tiny[i] : full[i];
            char src[PATH_MAX];
            if (ensure_sample(c, s[0], s[1], s[2], chunk, src, sizeof src)) return -1;
            double l0 = loadavg(), w[64], cpu[64], wall;
            long rss = 0, r1;
            if (!c->smoke && cli_binarize(c, src, base, threads, &wall, &r1, NULL)) return -1;
            for (int r = 0; r < runs; r++) {
                if (cli_binarize(c, src, base, threads, &w[r], &r1, NULL)) return -1;
                cpu[r] = last_cpu_s;
                rss = r1 > rss ? r1 : rss;
            }
            rm_rf(outdir);
            double t = median(w, runs), vox = (double)(s[0] * s[1] * s[2]);
            printf("| binarize scaling -j%d, %" PRId64 "x%" PRId64 "x%" PRId64 " (%.0f Mvox), "
                   "output on %s | "
                   "%.3f s | %.2f ns/voxel | peak RSS %.1f MB (<= 256) |\n",
                   threads, s[0], s[1], s[2], vox / 1e6, c->out_fs, t, 1e9 * t / vox, rss / 1024.0);
            json_object *o = json_object_new_object();
            json_object_object_add(o, "bench", json_object_new_string("e2e_scale"));
            json_object_object_add(o, "threads", json_object_new_int(threads));
            json_object_object_add(o, "mvoxels", json_object_new_double(vox / 1e6));
            json_object_object_add(o, "runs", json_object_new_int(runs));
            json_object_object_add(o, "seconds", json_object_new_double(t));
            json_object_object_add(o, "ns_per_voxel", json_object_new_double(1e9 * t / vox));
            json_object_object_add(o, "cpu_s", json_object_new_double(median(cpu, runs)));
            json_object_object_add(o, "maxrss_kb", json_object_new_int64(rss));
            json_object_object_add(o, "out_fs", json_object_new_string(c->out_fs));
            json_object_object_add(o, "met_memory", json_object_new_boolean(rss <= 256 * 1024));
            json_object_object_add(o, "load_before", json_object_new_double(l0));
            json_object_object_add(o, "load_after", json_object_new_double(loadavg()));
            json_object_object_add(o, "smoke", json_object_new_boolean(c->smoke));
            print_json(o);
            json_object_put(o);
        }
    return 0;
}

/* --------------------------------------------------------------------------
 * Setup
 * -------------------------------------------------------------------------- */

static int load_groups(cfg *c) {
    char golden[PATH_MAX], file[PATH_MAX + 64];
    const char *env = getenv("LB_GOLDEN_DIR");
    if (env) snprintf(golden, sizeof golden, "%s", env);
    else snprintf(golden, sizeof golden, "%s/../../shared/golden", c->script_dir);
    snprintf(file, sizeof file, "%s/cosem_u64_blosc/case.json", golden);
    json_object *root = json_object_from_file(file), *g = NULL;
    if (root && json_object_object_get_ex(root, "groupings", &g))
        c->groups_json = strdup(json_object_to_json_string_ext(g, JSON_C_TO_STRING_PLAIN));
    else
        c->groups_json = strdup(FALLBACK_GROUPS);
    json_object_put(root);
    lb_error e = {0};
    if (!c->groups_json || lb_groupings_new(&c->groups, &e) ||
        lb_groupings_add_json(c->groups, c->groups_json, &e)) {
        fprintf(stderr, "bench_e2e: groupings: %s\n", e.message);
        return -1;
    }
    snprintf(c->groups_file, sizeof c->groups_file, "%s/groups.json", c->data);
    FILE *f = fopen(c->groups_file, "w");
    if (!f) return -1;
    fprintf(f, "%s\n", c->groups_json);
    return fclose(f) == 0 ? 0 : -1;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_e2e [--smoke] [--data DIR] [--runs R] [--seed S] "
                    "[--no-python] [--out DIR] [--only roi|cache|e2e|scale]...\n");
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--measure")) return measure_main(argc, argv);
    ssize_t sl = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (sl <= 0) {
        fprintf(stderr, "bench_e2e: cannot find its own executable\n");
        return 1;
    }
    self_exe[sl] = '\0';
    cfg c;
    memset(&c, 0, sizeof c);
    c.runs = 5;
    c.python = getenv("LB_PYTHON") ? getenv("LB_PYTHON") : "/usr/bin/python3";
    c.seed = 20260422;
    int python = 1, only = 0;
    const char *data = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--smoke")) c.smoke = 1;
        else if (!strcmp(a, "--no-python")) python = 0;
        else if (!strcmp(a, "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(a, "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(a, "--runs") && i + 1 < argc) c.runs = atoi(argv[++i]);
        else if (!strcmp(a, "--seed") && i + 1 < argc) c.seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--only") && i + 1 < argc) {
            const char *w = argv[++i];
            only = 1;
            if (!strcmp(w, "roi")) c.only_roi = 1;
            else if (!strcmp(w, "e2e")) c.only_e2e = 1;
            else if (!strcmp(w, "scale")) c.only_scale = 1;
            else if (!strcmp(w, "cache")) c.only_cache = 1;
            else {
                usage();
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    if (!only) c.only_roi = c.only_e2e = c.only_scale = 1;
    if (c.runs < 1) c.runs = 1;
    if (c.runs > 64) c.runs = 64;
    if (c.smoke) {
        c.runs = 1;
        python = 0;
    }
    c.python = python ? c.python : NULL;
    fprintf(stderr, "bench_e2e: seed %" PRIu64 "\n", c.seed);

    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "bench_e2e: cannot find myself\n");
        return 1;
    }
    self[n] = '\0';
    dirname_of(self, c.exe_dir, sizeof c.exe_dir);
    snprintf(c.labelbin, sizeof c.labelbin, "%s/labelbin", c.exe_dir);
    const char *sd = getenv("LB_BENCH_SCRIPTS");
    if (sd) snprintf(c.script_dir, sizeof c.script_dir, "%s", sd);
    else dirname_of(__FILE__, c.script_dir, sizeof c.script_dir);
    if (access(c.labelbin, X_OK) != 0) {
        fprintf(stderr, "bench_e2e: %s is missing (build the CLI first)\n", c.labelbin);
        return 1;
    }
    if (c.smoke) {
        snprintf(c.data, sizeof c.data, "/tmp/lb_bench_e2e_XXXXXX");
        if (!mkdtemp(c.data)) {
            perror("bench_e2e: mkdtemp");
            return 1;
        }
        c.tmp_data = 1;
    } else {
        if (data) snprintf(c.data, sizeof c.data, "%s", data);
        else snprintf(c.data, sizeof c.data, "%s/bench-data", c.exe_dir);
        if (mkdir(c.data, 0777) != 0 && errno != EEXIST) {
            perror("bench_e2e: mkdir");
            return 1;
        }
    }

    snprintf(c.out, sizeof c.out, "%s", out && !c.smoke ? out : c.data);
    if (mkdir(c.out, 0777) != 0 && errno != EEXIST) {
        perror("bench_e2e: mkdir --out");
        return 1;
    }
    struct statfs sf;
    c.out_fs = "other";
    if (statfs(c.out, &sf) == 0) {
        if (sf.f_type == 0x01021994) c.out_fs = "tmpfs";
        else if (sf.f_type == 0xEF53) c.out_fs = "ext4";
        else if (sf.f_type == 0x58465342) c.out_fs = "xfs";
        else if (sf.f_type == 0x794c7630) c.out_fs = "overlayfs";
    }
    int rc = load_groups(&c);
    if (!rc && c.only_roi) rc = bench_roi(&c);
    if (!rc && (c.only_roi || c.only_cache)) rc = bench_roi_cache(&c);
    if (!rc && c.only_e2e) rc = bench_e2e(&c);
    if (!rc && c.only_scale) rc = bench_scale(&c);
    if (c.tmp_data) rm_rf(c.data);
    else remove(c.groups_file);
    free(c.groups_json);
    lb_groupings_free(c.groups);
    return rc ? 1 : 0;
}
