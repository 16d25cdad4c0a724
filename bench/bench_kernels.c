/*
 * bench_kernels.c — throughput of lb__binarize and lb__mask on a CellMap-like
 * label volume, against the memory floor and DaCapo's numpy rules, measured
 * in the same run. One table for people, one JSON line per result.
 *
 *   bench_kernels [--smoke] [--size N] [--no-numpy] [--reps R]
 *                 [--dtype NAME] [--groups G] [--kind binarize|mask] [--cpu]
 *
 * Per dtype (uint8..uint64) and groupings (1 group, 4 groups, the 16 groups
 * of the golden COSEM case, 80 groups of 1-3 random ids in 1..120):
 *  - kernel: lb__binarize over the whole N^3 volume in one call (planes of
 *    N^3 bytes, C order), median of R runs after one warm-up run;
 *  - floor ("memcpy"): memcpy(scratch, labels, in_bytes) followed by
 *    memset(out, 0, out_bytes), median of R runs, interleaved with the
 *    kernel runs (same buffers, pages already faulted in). What it measures:
 *    one read of the input, one write of the input bytes and one write of
 *    the output bytes. So it moves in_bytes more than the kernel must (the
 *    kernel writes no copy of its input) and the kernel can beat it (>100%)
 *    when the input is large next to the output (uint64, few groups). It
 *    is also a fast floor in two ways: glibc streams buffers this large
 *    (non-temporal stores, no read-for-ownership), and on the machine this
 *    was tuned on streaming zeros runs ~1.6x faster than streaming other
 *    bytes (33 vs 20 GB/s), which memset(0) enjoys fully and the kernel's
 *    mostly-zero output only partly. efficiency = t_floor / t_kernel;
 *  - numpy: bench/numpy_rule.py run by /usr/bin/python3 on the same volume
 *    (written to a temporary file), timed in process with perf_counter,
 *    median of 3 runs; its per-channel non-zero counts are compared with the
 *    kernel's output (a mismatch is reported and marks the result).
 * The mask kernel is measured the same way with every 4th channel disabled.
 * GB/s counts input + output bytes once each.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernels/kernels.h"

#define MAX_RESULTS 64

typedef struct result {
    const char *kind; /* "kernel" (binarize) or "mask" */
    lb_dtype dtype;
    size_t groups;
    size_t gi; /* which groupings */
    double t_kernel, t_floor, t_numpy; /* seconds; t_numpy < 0: not run */
    size_t in_bytes, out_bytes, voxels;
    int verified; /* 1 matches numpy, 0 mismatch, -1 not checked */
    size_t *nonzero; /* kernel's per-channel counts */
} result;

/* Wall clock by default; --cpu times this thread's CPU time instead (and
 * numpy's with time.thread_time), which is steadier on a loaded machine
 * but hides time spent waiting for nothing but memory in neither case. */
static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t rng = 0x5eed1234abcdull;
static uint64_t rnd(void) {
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The directory of this source file (CMake passes absolute paths), for
 * numpy_rule.py and the golden cases. */
static void source_dir(char *buf, size_t size) {
    snprintf(buf, size, "%s", __FILE__);
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(buf, size, ".");
}

/* ------------------------------------------------------------------------
 * A CellMap-like volume: unannotated background (0) around organelle blobs
 * with ids 1..48; membrane/lumen pairs (3/4 mito, 6/7 golgi, …) as a shell
 * around a core, so runs along x are tens of voxels as in real crops.
 * ------------------------------------------------------------------------ */
static void make_volume(uint64_t *lab, int N) {
    static const int pairs[][2] = {{3, 4}, {6, 7}, {8, 9}, {10, 11}, {12, 13},
                                   {14, 15}, {16, 17}, {20, 21}, {30, 36}};
    size_t n = (size_t)N * N * N, covered = 0;
    memset(lab, 0, n * sizeof *lab);
    double rmin = N / 64.0 + 1.5, rmax = N / 10.0 + 2.0;
    for (int blob = 0; covered < n * 6 / 10 && blob < 100000; blob++) {
        int cz = (int)(rnd() % (unsigned)N), cy = (int)(rnd() % (unsigned)N),
            cx = (int)(rnd() % (unsigned)N);
        double r = rmin + (rmax - rmin) * (double)(rnd() % 1000) / 1000.0;
        int shell = (int)(rnd() % 3) != 0;
        uint64_t outer, inner;
        if (shell) {
            const int *pr = pairs[rnd() % (sizeof pairs / sizeof *pairs)];
            outer = (uint64_t)pr[0];
            inner = (uint64_t)pr[1];
        } else {
            outer = inner = 1 + rnd() % 48;
        }
        double r2 = r * r, ri2 = (r - 2) * (r - 2);
        int ir = (int)r + 1;
        for (int z = cz - ir; z <= cz + ir; z++) {
            if (z < 0 || z >= N) continue;
            for (int y = cy - ir; y <= cy + ir; y++) {
                if (y < 0 || y >= N) continue;
                for (int x = cx - ir; x <= cx + ir; x++) {
                    if (x < 0 || x >= N) continue;
                    double d2 = (double)(z - cz) * (z - cz) + (double)(y - cy) * (y - cy) +
                                (double)(x - cx) * (x - cx);
                    if (d2 > r2) continue;
                    uint64_t *v = &lab[((size_t)z * N + y) * N + x];
                    if (*v == 0) covered++;
                    *v = d2 > ri2 ? outer : inner;
                }
            }
        }
    }
}

static void convert(const uint64_t *src, size_t n, lb_dtype d, void *dst) {
    for (size_t i = 0; i < n; i++) switch (lb_dtype_size(d)) {
        case 1: ((uint8_t *)dst)[i] = (uint8_t)src[i]; break;
        case 2: ((uint16_t *)dst)[i] = (uint16_t)src[i]; break;
        case 4: ((uint32_t *)dst)[i] = (uint32_t)src[i]; break;
        default: ((uint64_t *)dst)[i] = src[i]; break;
        }
}

/* ------------------------------------------------------------------------
 * Groupings
 * ------------------------------------------------------------------------ */

/* The golden COSEM case's groupings, copied here in case the file is not
 * where the source tree says (only used as a fallback). */
static const char cellmap16_fallback[] =
    "[[\"ecs\",[1]],[\"pm\",[2]],[\"mito\",[3,4,5]],[\"mito_mem\",[3]],"
    "[\"golgi\",[6,7]],[\"ves\",[8,9]],[\"endo\",[10,11]],[\"lyso\",[12,13]],"
    "[\"ld\",[14,15]],[\"er\",[16,17,18,19,20,21,22,23]],[\"er_mem_all\",[16,18,20]],"
    "[\"eres\",[18,19]],[\"nuc\",[20,21,22,23,24,25,26,27,28,29,37]],"
    "[\"mt\",[30,36]],[\"perox\",[47,48]],[\"cell_all\",[]]]";

/* Build groupings from a parsed `[["name", [ids]], …]`. */
static lb_groupings *groupings_from_json(json_object *arr) {
    lb_groupings *g = NULL;
    lb_error err = {0};
    if (!json_object_is_type(arr, json_type_array) || lb_groupings_new(&g, &err) != 0)
        return NULL;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *pair = json_object_array_get_idx(arr, i);
        json_object *name = json_object_array_get_idx(pair, 0);
        json_object *ids = json_object_array_get_idx(pair, 1);
        lb_id buf[64];
        size_t k = ids ? json_object_array_length(ids) : 0;
        if (k > 64) k = 64;
        for (size_t j = 0; j < k; j++) {
            int64_t v = json_object_get_int64(json_object_array_get_idx(ids, j));
            buf[j].bits = (uint64_t)v;
            buf[j].negative = v < 0;
        }
        if (lb_groupings_add(g, json_object_get_string(name), buf, k, &err) != 0) {
            lb_groupings_free(g);
            return NULL;
        }
    }
    return g;
}

static lb_groupings *cellmap16(const char *srcdir, int *from_file) {
    char path[4096 + 64]; /* srcdir is at most 4096 bytes */
    const char *env = getenv("LB_GOLDEN_DIR");
    if (env)
        snprintf(path, sizeof path, "%s/cosem_u64_blosc/case.json", env);
    else
        snprintf(path, sizeof path, "%s/../../shared/golden/cosem_u64_blosc/case.json",
                 srcdir);
    lb_groupings *g = NULL;
    json_object *root = json_object_from_file(path), *gr = NULL;
    if (root && json_object_object_get_ex(root, "groupings", &gr))
        g = groupings_from_json(gr);
    json_object_put(root);
    *from_file = g != NULL;
    if (!g) {
        json_object *arr = json_tokener_parse(cellmap16_fallback);
        g = groupings_from_json(arr);
        json_object_put(arr);
    }
    return g;
}

static lb_groupings *simple_groupings(size_t which) {
    lb_groupings *g = NULL;
    lb_error err = {0};
    if (lb_groupings_new(&g, &err) != 0) return NULL;
    lb_id ids[3];
    int ok = 1;
    if (which == 1) {
        for (int j = 0; j < 3; j++) ids[j] = (lb_id){(uint64_t)(3 + j), 0};
        ok = lb_groupings_add(g, "mito", ids, 3, &err) == 0;
    } else if (which == 4) {
        ids[0] = (lb_id){1, 0};
        ok = lb_groupings_add(g, "ecs", ids, 1, &err) == 0;
        ids[0] = (lb_id){3, 0};
        ok = ok && lb_groupings_add(g, "mito_mem", ids, 1, &err) == 0;
        for (int j = 0; j < 3; j++) ids[j] = (lb_id){(uint64_t)(3 + j), 0};
        ok = ok && lb_groupings_add(g, "mito", ids, 3, &err) == 0;
        ok = ok && lb_groupings_add(g, "all", NULL, 0, &err) == 0;
    } else { /* 80 groups of 1-3 random ids in 1..120, fixed seed */
        uint64_t saved = rng;
        rng = 80;
        for (int i = 0; i < 80 && ok; i++) {
            size_t k = 1 + rnd() % 3;
            for (size_t j = 0; j < k; j++) ids[j] = (lb_id){1 + rnd() % 120, 0};
            char name[16];
            snprintf(name, sizeof name, "c%d", i);
            ok = lb_groupings_add(g, name, ids, k, &err) == 0;
        }
        rng = saved;
    }
    if (!ok) {
        lb_groupings_free(g);
        return NULL;
    }
    return g;
}

/* `[["name",[ids]],…]` for the numpy task file. */
static void groupings_json(FILE *f, const lb_groupings *g) {
    fputc('[', f);
    for (size_t i = 0; i < lb_groupings_count(g); i++) {
        const lb_id *ids;
        size_t k = lb_groupings_ids(g, i, &ids);
        fprintf(f, "%s[\"%s\",[", i ? "," : "", lb_groupings_name(g, i));
        for (size_t j = 0; j < k; j++) {
            char buf[32];
            lb_id_format(ids[j], buf, sizeof buf);
            fprintf(f, "%s%s", j ? "," : "", buf);
        }
        fputs("]]", f);
    }
    fputc(']', f);
}

static int mask_enabled(size_t c) {
    return c % 4 != 2;
}

/* ------------------------------------------------------------------------
 * numpy: one python process per dtype runs every task on the same volume.
 * ------------------------------------------------------------------------ */
static void run_numpy(const char *srcdir, const void *labels, size_t in_bytes,
                      lb_dtype d, int N, lb_groupings *const *gs, int reps,
                      result *res, size_t nres) {
    char lpath[] = "/tmp/bench_kernels_labels_XXXXXX";
    char tpath[] = "/tmp/bench_kernels_tasks_XXXXXX";
    int lfd = mkstemp(lpath), tfd = lfd >= 0 ? mkstemp(tpath) : -1;
    FILE *tf = NULL, *pf = NULL;
    if (lfd < 0 || tfd < 0) goto done;
    const char *p = labels;
    size_t left = in_bytes;
    while (left) {
        ssize_t w = write(lfd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) goto done;
        p += w;
        left -= (size_t)w;
    }
    tf = fdopen(tfd, "w");
    if (!tf) goto done;
    tfd = -1;
    fprintf(tf, "{\"labels\":\"%s\",\"dtype\":\"%s\",\"shape\":[%d,%d,%d],\"reps\":%d,"
                "\"clock\":\"%s\",\"tasks\":[",
            lpath, lb_dtype_name(d), N, N, N, reps,
            bench_clock == CLOCK_MONOTONIC ? "wall" : "cpu");
    for (size_t t = 0; t < nres; t++) {
        const lb_groupings *g = gs[res[t].gi];
        if (!strcmp(res[t].kind, "kernel")) {
            fprintf(tf, "%s{\"kind\":\"binarize\",\"background\":0,\"groupings\":",
                    t ? "," : "");
            groupings_json(tf, g);
            fputs("}", tf);
        } else {
            fprintf(tf, "%s{\"kind\":\"mask\",\"enabled\":[", t ? "," : "");
            for (size_t c = 0; c < lb_groupings_count(g); c++)
                fprintf(tf, "%s%d", c ? "," : "", mask_enabled(c));
            fputs("]}", tf);
        }
    }
    fputs("]}\n", tf);
    if (fclose(tf) != 0) {
        tf = NULL;
        goto done;
    }
    tf = NULL;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/numpy_rule.py' '%s'", srcdir, tpath);
    pf = popen(cmd, "r");
    if (!pf) goto done;
    char line[1 << 16];
    for (size_t t = 0; t < nres && fgets(line, sizeof line, pf); t++) {
        json_object *o = json_tokener_parse(line), *sec, *nz;
        result *r = &res[t];
        if (o && json_object_object_get_ex(o, "seconds", &sec) &&
            json_object_object_get_ex(o, "nonzero", &nz)) {
            r->t_numpy = json_object_get_double(sec);
            r->verified = json_object_array_length(nz) == r->groups;
            for (size_t c = 0; c < r->groups && r->verified; c++)
                if ((size_t)json_object_get_int64(json_object_array_get_idx(nz, c)) !=
                    r->nonzero[c])
                    r->verified = 0;
        }
        json_object_put(o);
    }
done:
    if (pf) pclose(pf);
    if (tf) fclose(tf);
    if (tfd >= 0) close(tfd);
    if (lfd >= 0) close(lfd);
    unlink(lpath);
    unlink(tpath);
}

/* ------------------------------------------------------------------------
 * Timing
 * ------------------------------------------------------------------------ */

static void time_one(result *r, const lb__binplan *plan, const void *labels, uint8_t *out, void *scratch, int reps) {
    size_t n = r->voxels, G = r->groups;
    uint8_t enabled[256];
    for (size_t c = 0; c < G && c < sizeof enabled; c++) enabled[c] = (uint8_t)mask_enabled(c);
    double tk[64], tf[64];
    for (int rep = -1; rep < reps; rep++) {
        double t0 = now();
        if (plan)
            lb__binarize(plan, labels, n, out, n);
        else
            lb__mask(r->dtype, labels, n, enabled, G, out, n);
        double t1 = now();
        memcpy(scratch, labels, r->in_bytes);
        memset(out, 0, r->out_bytes);
        double t2 = now();
        if (rep >= 0) {
            tk[rep] = t1 - t0;
            tf[rep] = t2 - t1;
        }
    }
    /* The last floor run clobbered the output: recompute for the counts. */
    if (plan)
        lb__binarize(plan, labels, n, out, n);
    else
        lb__mask(r->dtype, labels, n, enabled, G, out, n);
    for (size_t c = 0; c < G; c++) r->nonzero[c] = lb__count_nonzero(out + c * n, n);
    r->t_kernel = median(tk, reps);
    r->t_floor = median(tf, reps);
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_kernels [--smoke] [--size N] [--no-numpy] [--reps R]\n"
               "                     [--dtype NAME] [--groups G] [--kind binarize|mask] [--cpu]\n"
               "  --smoke      tiny volume, few runs (the CTest smoke test)\n"
               "  --size N     volume edge in voxels (default 256)\n"
               "  --no-numpy   skip DaCapo's numpy rules\n"
               "  --reps R     timed runs per result (default 7, median)\n"
               "  --dtype, --groups, --kind   run only the matching results\n"
               "  --cpu        time thread CPU time instead of wall time (numpy too)\n");
}

int main(int argc, char **argv) {
    int smoke = 0, numpy = 1, N = 256, reps = 7, nreps = 3;
    const char *only_dtype = NULL, *only_kind = NULL;
    size_t only_groups = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--smoke")) {
            smoke = 1;
        } else if (!strcmp(argv[i], "--cpu")) {
            bench_clock = CLOCK_THREAD_CPUTIME_ID;
        } else if (!strcmp(argv[i], "--no-numpy")) {
            numpy = 0;
        } else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            N = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
            only_dtype = argv[++i];
        } else if (!strcmp(argv[i], "--groups") && i + 1 < argc) {
            only_groups = (size_t)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--kind") && i + 1 < argc) {
            only_kind = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (smoke) {
        N = 24;
        reps = 3;
        nreps = 1;
    }
    if (N < 4 || N > 2048 || reps < 1 || reps > 64) {
        fprintf(stderr, "bench_kernels: --size must be 4..2048 and --reps 1..64\n");
        return 2;
    }
    if (numpy && access("/usr/bin/python3", X_OK) != 0) numpy = 0;

    char srcdir[4096];
    source_dir(srcdir, sizeof srcdir);
    int from_file = 0;
    lb_groupings *gs[4] = {simple_groupings(1), simple_groupings(4),
                           cellmap16(srcdir, &from_file), simple_groupings(80)};
    const size_t ngs = 4;
    size_t n = (size_t)N * N * N;
    uint64_t *base = malloc(n * sizeof *base);
    void *labels = malloc(n * sizeof(uint64_t));
    void *scratch = malloc(n * sizeof(uint64_t));
    static result res[MAX_RESULTS];
    size_t nres = 0;
    int rc = 0;
    if (!base || !labels || !scratch || !gs[0] || !gs[1] || !gs[2] || !gs[3]) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        rc = 1;
        goto done;
    }
    make_volume(base, N);
    size_t bgvox = 0;
    for (size_t i = 0; i < n; i++) bgvox += base[i] == 0;
    printf("# bench_kernels: %d^3 = %.2f Mvoxel CellMap-like volume (%.0f%% background), "
           "median of %d runs (numpy: %d), %s time%s\n",
           N, n / 1e6, 100.0 * (double)bgvox / (double)n, reps, nreps,
           bench_clock == CLOCK_MONOTONIC ? "wall" : "thread CPU", smoke ? " [smoke]" : "");
    printf("# 16 CellMap groups from %s\n",
           from_file ? "golden/cosem_u64_blosc/case.json" : "the built-in copy");
    printf("# floor = memcpy(input) + memset(output, 0): reads the input once, writes "
           "input + output bytes\n");

    static const lb_dtype dtypes[] = {LB_DTYPE_UINT8, LB_DTYPE_UINT16, LB_DTYPE_UINT32,
                                      LB_DTYPE_UINT64};
    for (size_t di = 0; di < 4; di++) {
        lb_dtype d = dtypes[di];
        size_t w = lb_dtype_size(d);
        if (only_dtype && strcmp(only_dtype, lb_dtype_name(d)) != 0) continue;
        convert(base, n, d, labels);
        memcpy(scratch, labels, n * w); /* fault the scratch pages in */
        result *first = &res[nres];
        for (int kind = 0; kind < 2; kind++) {
            for (size_t gi = 0; gi < ngs; gi++) {
                if ((only_groups && only_groups != lb_groupings_count(gs[gi])) ||
                    (only_kind && strcmp(only_kind, kind ? "mask" : "binarize") != 0))
                    continue;
                result *r = &res[nres++];
                memset(r, 0, sizeof *r);
                r->kind = kind == 0 ? "kernel" : "mask";
                r->dtype = d;
                r->groups = lb_groupings_count(gs[gi]);
                r->gi = gi;
                r->voxels = n;
                r->in_bytes = n * w;
                r->out_bytes = n * r->groups;
                r->t_numpy = -1;
                r->verified = -1;
                r->nonzero = calloc(r->groups, sizeof *r->nonzero);
                uint8_t *out = malloc(r->out_bytes);
                lb__binplan *plan = NULL;
                lb_error err = {0};
                if (kind == 0 && lb__binplan_new(gs[gi], d, (lb_id){0, 0}, &plan, &err) != 0) {
                    fprintf(stderr, "bench_kernels: %s\n", err.message);
                    rc = 1;
                }
                if (!out || !r->nonzero) {
                    fprintf(stderr, "bench_kernels: out of memory\n");
                    rc = 1;
                }
                if (rc == 0) {
                    memset(out, 0, r->out_bytes);
                    time_one(r, plan, labels, out, scratch, reps);
                }
                lb__binplan_free(plan);
                free(out);
                if (rc) goto done;
            }
        }
        /* One numpy task per result of this dtype, answered in order. */
        if (numpy && &res[nres] != first)
            run_numpy(srcdir, labels, n * w, d, N, gs, nreps, first,
                      (size_t)(&res[nres] - first));
    }

    printf("\n%-8s %-7s %6s %10s %8s %10s %10s %9s\n", "kernel", "dtype", "groups",
           "Mvox/s", "GB/s", "vs floor", "numpy x", "checked");
    for (size_t i = 0; i < nres; i++) {
        result *r = &res[i];
        double bytes = (double)(r->in_bytes + r->out_bytes);
        char np[32];
        if (r->t_numpy > 0)
            snprintf(np, sizeof np, "%.1f", r->t_numpy / r->t_kernel);
        else
            snprintf(np, sizeof np, "-");
        printf("%-8s %-7s %6zu %10.0f %8.2f %9.0f%% %10s %9s\n",
               strcmp(r->kind, "kernel") ? "mask" : "binarize", lb_dtype_name(r->dtype),
               r->groups, r->voxels / r->t_kernel / 1e6, bytes / r->t_kernel / 1e9,
               100.0 * r->t_floor / r->t_kernel, np,
               r->verified < 0 ? "-" : r->verified ? "ok" : "MISMATCH");
        if (r->verified == 0) rc = 1;
    }
    printf("\n");
    for (size_t i = 0; i < nres; i++) {
        result *r = &res[i];
        double bytes = (double)(r->in_bytes + r->out_bytes);
        printf("{\"bench\":\"%s\",\"dtype\":\"%s\",\"groups\":%zu,\"voxels\":%zu,"
               "\"seconds\":%.6f,\"mvoxels_per_s\":%.1f,\"gbytes_per_s\":%.3f,"
               "\"floor_seconds\":%.6f,\"memcpy_efficiency\":%.3f,",
               r->kind, lb_dtype_name(r->dtype), r->groups, r->voxels, r->t_kernel,
               r->voxels / r->t_kernel / 1e6, bytes / r->t_kernel / 1e9, r->t_floor,
               r->t_floor / r->t_kernel);
        if (r->t_numpy > 0)
            printf("\"numpy_seconds\":%.6f,\"numpy_speedup\":%.2f,\"verified\":%s}\n",
                   r->t_numpy, r->t_numpy / r->t_kernel, r->verified ? "true" : "false");
        else
            printf("\"numpy_seconds\":null,\"numpy_speedup\":null,\"verified\":null}\n");
    }

done:
    for (size_t i = 0; i < nres; i++) free(res[i].nonzero);
    for (size_t i = 0; i < ngs; i++) lb_groupings_free(gs[i]);
    free(base);
    free(labels);
    free(scratch);
    return rc;
}
