/*
 * bench_codecs.c — which compressor should labelbin's output use? Measures
 * compression ratio and encode / decode speed of candidate Zarr v2 codecs on
 * binary (0/1 uint8) chunks binarized from a CellMap-like synthetic volume.
 *
 *   bench_codecs [--smoke] [--size N] [--chunk C] [--runs R] [--seed S]
 *                [--codec SPEC]...   (only these codecs; default: all below)
 *
 * The volume (N^3 uint16 labels, default 192^3) imitates a COSEM crop at
 * 8 nm, with surfaces roughened by a smooth noise of about one voxel as
 * hand annotations are: Voronoi cells with 3-voxel plasma membrane, one cell of
 * extracellular space, a nucleus with envelope and heterochromatin blobs,
 * mitochondria (membrane shell, lumen, ribosome dots), ER tubes, vesicles
 * and microtubules. Nine classes are binarized with the library's kernel
 * into C^3 chunks (default 64^3); all-zero chunks are left out because the
 * writer never stores them. Each codec encodes and decodes every remaining
 * chunk; medians of R runs after a warm-up. memcpy of the same bytes is the
 * physical bound. One line per result:
 *   codec=<spec> chunks=<n> raw=<bytes> stored=<bytes> ratio=<x>
 *   encode_MBps=<v> decode_MBps=<v>
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/codec.h"
#include "format/format.h"
#include "kernels/kernels.h"
#include "core/util.h"

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) / 9007199254740992.0; }
static double rng_range(rng *r, double lo, double hi) { return lo + (hi - lo) * rng_unit(r); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CellMap ids (CellMap's published class table). */
enum {
    ECS = 1, PM = 2, MITO_MEM = 3, MITO_LUM = 4, MITO_RIBO = 5, VES_MEM = 8,
    VES_LUM = 9, ER_MEM = 16, ER_LUM = 17, NE_MEM = 20, HCHROM = 24,
    NUCPL = 28, MT_OUT = 30, CYTO = 35
};

/* Smooth value noise in [-1, 1] on a 4-voxel lattice: hand-drawn
 * annotation boundaries are rough at the scale of a few voxels, and
 * perfectly smooth shapes would flatter every codec. */
static double lattice(int64_t z, int64_t y, int64_t x) {
    uint64_t h = (uint64_t)z * 0x9E3779B97F4A7C15ull ^ (uint64_t)y * 0xC2B2AE3D27D4EB4Full ^
                 (uint64_t)x * 0x165667B19E3779F9ull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return (double)(h >> 11) / 4503599627370496.0 - 1.0;
}

static double noise(double z, double y, double x) {
    const double s = 0.25;
    z *= s;
    y *= s;
    x *= s;
    double fz = floor(z), fy = floor(y), fx = floor(x);
    double tz = z - fz, ty = y - fy, tx = x - fx;
    int64_t iz = (int64_t)fz, iy = (int64_t)fy, ix = (int64_t)fx;
    double v = 0;
    for (int c = 0; c < 8; c++) {
        int dz = c >> 2, dy = (c >> 1) & 1, dx = c & 1;
        double w = (dz ? tz : 1 - tz) * (dy ? ty : 1 - ty) * (dx ? tx : 1 - tx);
        v += w * lattice(iz + dz, iy + dy, ix + dx);
    }
    return v;
}

typedef struct vol {
    int n;
    uint16_t *v;
} vol;

static inline size_t vidx(const vol *V, int z, int y, int x) {
    return ((size_t)z * (size_t)V->n + (size_t)y) * (size_t)V->n + (size_t)x;
}

/* Paint a sphere shell: label `shell` within `thick` voxels of the surface,
 * `core` inside (core 0 = leave). Only over voxels whose label is in
 * `under` (a 0-terminated list) or anywhere when under is NULL. */
static void paint_ellipsoid(vol *V, double cz, double cy, double cx, double rz,
                            double ry, double rx, double thick, uint16_t shell,
                            uint16_t core, const uint16_t *under) {
    int z0 = (int)floor(cz - rz - 1), z1 = (int)ceil(cz + rz + 1);
    int y0 = (int)floor(cy - ry - 1), y1 = (int)ceil(cy + ry + 1);
    int x0 = (int)floor(cx - rx - 1), x1 = (int)ceil(cx + rx + 1);
    double rmin = fmin(rz, fmin(ry, rx));
    for (int z = z0 < 0 ? 0 : z0; z <= z1 && z < V->n; z++)
        for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < V->n; y++)
            for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < V->n; x++) {
                double dz = (z - cz) / rz, dy = (y - cy) / ry, dx = (x - cx) / rx;
                double r = sqrt(dz * dz + dy * dy + dx * dx);
                if (r > 1.0) continue;
                uint16_t *p = &V->v[vidx(V, z, y, x)];
                if (under) {
                    int ok = 0;
                    for (const uint16_t *u = under; *u; u++) ok |= *p == *u;
                    if (!ok) continue;
                }
                /* Distance to the surface in voxels, approximately, with
                 * a rough surface. */
                double depth = (1.0 - r) * rmin + noise(z, y, x);
                if (depth < 0) continue;
                if (depth < thick) *p = shell;
                else if (core) *p = core;
            }
}

/* A tube of radius r from a to b: membrane shell + lumen. */
static void paint_tube(vol *V, const double *a, const double *b, double r,
                       uint16_t mem, uint16_t lum, const uint16_t *under) {
    double d[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
    double len2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
    int lo[3], hi[3];
    for (int k = 0; k < 3; k++) {
        lo[k] = (int)floor(fmin(a[k], b[k]) - r - 1);
        hi[k] = (int)ceil(fmax(a[k], b[k]) + r + 1);
        if (lo[k] < 0) lo[k] = 0;
        if (hi[k] >= V->n) hi[k] = V->n - 1;
    }
    for (int z = lo[0]; z <= hi[0]; z++)
        for (int y = lo[1]; y <= hi[1]; y++)
            for (int x = lo[2]; x <= hi[2]; x++) {
                double p[3] = {z - a[0], y - a[1], x - a[2]};
                double t = len2 > 0 ? (p[0] * d[0] + p[1] * d[1] + p[2] * d[2]) / len2 : 0;
                if (t < 0) t = 0;
                if (t > 1) t = 1;
                double q[3] = {p[0] - t * d[0], p[1] - t * d[1], p[2] - t * d[2]};
                double dist = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]);
                if (dist > r + 0.7 * noise(z, y, x)) continue;
                uint16_t *pv = &V->v[vidx(V, z, y, x)];
                int ok = !under;
                for (const uint16_t *u = under; u && *u; u++) ok |= *pv == *u;
                if (!ok) continue;
                *pv = (r - dist < 1.0 || !lum) ? mem : lum;
            }
}

static int make_volume(vol *V, int n, uint64_t seed) {
    V->n = n;
    size_t total = (size_t)n * (size_t)n * (size_t)n;
    V->v = calloc(total, sizeof *V->v);
    if (!V->v) return -1;
    rng r = {seed};

    /* Voronoi cells; cell 0 is extracellular space. */
    enum { CELLS = 7 };
    double seeds[CELLS][3];
    for (int i = 0; i < CELLS; i++)
        for (int k = 0; k < 3; k++) seeds[i][k] = rng_range(&r, -0.2 * n, 1.2 * n);
    for (int z = 0; z < n; z++)
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++) {
                double best = 1e30, second = 1e30;
                int bi = 0;
                for (int i = 0; i < CELLS; i++) {
                    double dz = z - seeds[i][0], dy = y - seeds[i][1], dx = x - seeds[i][2];
                    double dd = sqrt(dz * dz + dy * dy + dx * dx);
                    if (dd < best) {
                        second = best;
                        best = dd;
                        bi = i;
                    } else if (dd < second) {
                        second = dd;
                    }
                }
                uint16_t lab = bi == 0 ? ECS : CYTO;
                if (second - best < 3.0 + 1.5 * noise(z, y, x)) lab = PM; /* ~3 voxels */
                V->v[vidx(V, z, y, x)] = lab;
            }

    static const uint16_t in_cyto[] = {CYTO, 0};
    static const uint16_t in_nuc[] = {NUCPL, 0};
    /* Nucleus: big, 2-voxel envelope, heterochromatin blobs inside. */
    double nr = 0.28 * n;
    double nc[3] = {rng_range(&r, nr, n - nr), rng_range(&r, nr, n - nr),
                    rng_range(&r, nr, n - nr)};
    paint_ellipsoid(V, nc[0], nc[1], nc[2], nr, nr * 0.9, nr * 1.1, 2.0, NE_MEM, NUCPL,
                    in_cyto);
    for (int i = 0; i < n / 6; i++) {
        double rr = rng_range(&r, 2, 6);
        paint_ellipsoid(V, nc[0] + rng_range(&r, -nr, nr), nc[1] + rng_range(&r, -nr, nr),
                        nc[2] + rng_range(&r, -nr, nr), rr, rr, rr, 0.0, HCHROM, HCHROM,
                        in_nuc);
    }
    /* Mitochondria: elongated, 2-voxel membrane, lumen, ribosome dots. */
    int n_mito = (int)(30.0 * pow(n / 192.0, 3)) + 2;
    for (int i = 0; i < n_mito; i++) {
        double c[3] = {rng_range(&r, 0, n), rng_range(&r, 0, n), rng_range(&r, 0, n)};
        double rz = rng_range(&r, 5, 10), ry = rng_range(&r, 5, 10), rx = rng_range(&r, 10, 25);
        paint_ellipsoid(V, c[0], c[1], c[2], rz, ry, rx, 2.0, MITO_MEM, MITO_LUM, in_cyto);
        static const uint16_t in_lum[] = {MITO_LUM, 0};
        for (int k = 0; k < 4; k++)
            paint_ellipsoid(V, c[0] + rng_range(&r, -rz, rz), c[1] + rng_range(&r, -ry, ry),
                            c[2] + rng_range(&r, -rx, rx), 1.5, 1.5, 1.5, 0.0, MITO_RIBO,
                            MITO_RIBO, in_lum);
    }
    /* ER: chains of thin tubes (runs along random directions). */
    int n_er = (int)(25.0 * pow(n / 192.0, 3)) + 2;
    for (int i = 0; i < n_er; i++) {
        double a[3] = {rng_range(&r, 0, n), rng_range(&r, 0, n), rng_range(&r, 0, n)};
        for (int seg = 0; seg < 5; seg++) {
            double b[3];
            for (int k = 0; k < 3; k++) b[k] = a[k] + rng_range(&r, -20, 20);
            paint_tube(V, a, b, rng_range(&r, 1.5, 3.0), ER_MEM, ER_LUM, in_cyto);
            memcpy(a, b, sizeof a);
        }
    }
    /* Vesicles. */
    int n_ves = (int)(150.0 * pow(n / 192.0, 3)) + 2;
    for (int i = 0; i < n_ves; i++) {
        double rr = rng_range(&r, 2.5, 5);
        paint_ellipsoid(V, rng_range(&r, 0, n), rng_range(&r, 0, n), rng_range(&r, 0, n), rr,
                        rr, rr, 1.0, VES_MEM, VES_LUM, in_cyto);
    }
    /* Microtubules: long straight thin runs. */
    int n_mt = (int)(20.0 * pow(n / 192.0, 3)) + 2;
    for (int i = 0; i < n_mt; i++) {
        double a[3] = {rng_range(&r, 0, n), rng_range(&r, 0, n), rng_range(&r, 0, n)};
        double b[3];
        for (int k = 0; k < 3; k++) b[k] = a[k] + rng_range(&r, -n, n);
        paint_tube(V, a, b, 1.2, MT_OUT, 0, in_cyto);
    }
    return 0;
}

typedef struct corpus {
    uint8_t **planes;
    size_t n, cap;
    size_t plane_bytes;
    size_t zero_planes; /* skipped: the writer never stores them */
} corpus;

static int corpus_add(corpus *c, const uint8_t *p) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        uint8_t **np = realloc(c->planes, cap * sizeof *np);
        if (!np) return -1;
        c->planes = np;
        c->cap = cap;
    }
    c->planes[c->n] = malloc(c->plane_bytes);
    if (!c->planes[c->n]) return -1;
    memcpy(c->planes[c->n], p, c->plane_bytes);
    c->n++;
    return 0;
}

static int build_corpus(const vol *V, int chunk, corpus *c, lb_error *err) {
    static const char *const groups[] = {
        "ecs=1", "pm=2", "mito=3,4,5", "mito_mem=3", "nuc=20,21,22,23,24,25,26,27,28,29",
        "er=16,17", "ves=8,9", "mt=30", "cyto=35"};
    const size_t G = sizeof groups / sizeof *groups;
    lb_groupings *g = NULL;
    lb__binplan *plan = NULL;
    uint16_t *labels = NULL;
    uint8_t *out = NULL;
    int rc = lb_groupings_new(&g, err);
    for (size_t i = 0; rc == 0 && i < G; i++) rc = lb_groupings_add_arg(g, groups[i], err);
    lb_id bg = {0, 0};
    if (rc == 0) rc = lb__binplan_new(g, LB_DTYPE_UINT16, bg, &plan, err);
    if (rc < 0) goto done;
    size_t cv = (size_t)chunk * (size_t)chunk * (size_t)chunk;
    c->plane_bytes = cv;
    labels = malloc(cv * sizeof *labels);
    out = malloc(cv * G);
    if (!labels || !out) {
        rc = lb__err(err, LB_ENOMEM, "out of memory");
        goto done;
    }
    for (int z0 = 0; z0 + chunk <= V->n; z0 += chunk)
        for (int y0 = 0; y0 + chunk <= V->n; y0 += chunk)
            for (int x0 = 0; x0 + chunk <= V->n; x0 += chunk) {
                size_t k = 0;
                for (int z = 0; z < chunk; z++)
                    for (int y = 0; y < chunk; y++) {
                        memcpy(&labels[k], &V->v[vidx(V, z0 + z, y0 + y, x0)],
                               (size_t)chunk * sizeof *labels);
                        k += (size_t)chunk;
                    }
                lb__binarize(plan, labels, cv, out, cv);
                for (size_t ch = 0; ch < G; ch++) {
                    const uint8_t *p = out + ch * cv;
                    if (lb__all_zero(p, cv)) {
                        c->zero_planes++;
                        continue;
                    }
                    if (corpus_add(c, p)) {
                        rc = lb__err(err, LB_ENOMEM, "out of memory");
                        goto done;
                    }
                }
            }
done:
    free(labels);
    free(out);
    lb__binplan_free(plan);
    lb_groupings_free(g);
    return rc;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Encode + decode every plane `runs` times (plus a warm-up); verify. */
static int measure(const char *spec, const corpus *c, int runs, lb_error *err) {
    lb__codec codec;
    int rc = lb__codec_parse_spec(spec, &codec, err);
    if (rc < 0) return rc;
    lb__buf *enc = calloc(c->n, sizeof *enc);
    uint8_t *dec = malloc(c->plane_bytes);
    double *te = malloc((size_t)runs * sizeof *te), *td = malloc((size_t)runs * sizeof *td);
    if (!enc || !dec || !te || !td) {
        rc = lb__err(err, LB_ENOMEM, "out of memory");
        goto done;
    }
    size_t stored = 0;
    for (int run = -1; run < runs; run++) {
        double t0 = now_s();
        stored = 0;
        for (size_t i = 0; i < c->n; i++) {
            rc = lb__codec_encode(&codec, c->planes[i], c->plane_bytes, 1, &enc[i], err);
            if (rc < 0) goto done;
            stored += enc[i].size;
        }
        double t1 = now_s();
        for (size_t i = 0; i < c->n; i++) {
            rc = lb__codec_decode(&codec, enc[i].data, enc[i].size, dec, c->plane_bytes, 1,
                                  err);
            if (rc < 0) goto done;
            if (run == -1 && memcmp(dec, c->planes[i], c->plane_bytes) != 0) {
                rc = lb__err(err, LB_EFORMAT, "%s: round trip differs", spec);
                goto done;
            }
        }
        double t2 = now_s();
        if (run >= 0) {
            te[run] = t1 - t0;
            td[run] = t2 - t1;
        }
    }
    double raw = (double)c->n * (double)c->plane_bytes;
    double me = median(te, runs), md = median(td, runs);
    printf("codec=%s chunks=%zu raw=%.0f stored=%zu ratio=%.1f encode_MBps=%.0f "
           "decode_MBps=%.0f\n",
           spec, c->n, raw, stored, stored ? raw / (double)stored : 0.0,
           me > 0 ? raw / me / 1e6 : 0.0, md > 0 ? raw / md / 1e6 : 0.0);
    fflush(stdout);
done:
    if (enc)
        for (size_t i = 0; i < c->n; i++) lb__buf_free(&enc[i]);
    free(enc);
    free(dec);
    free(te);
    free(td);
    return rc;
}

/* The physical bound: copying the same bytes. */
static void measure_memcpy(const corpus *c, int runs) {
    uint8_t *dst = malloc(c->plane_bytes);
    double *t = malloc((size_t)runs * sizeof *t);
    if (!dst || !t) {
        free(dst);
        free(t);
        return;
    }
    volatile uint8_t sink = 0;
    for (int run = -1; run < runs; run++) {
        double t0 = now_s();
        for (size_t i = 0; i < c->n; i++) {
            memcpy(dst, c->planes[i], c->plane_bytes);
            sink ^= dst[i % c->plane_bytes];
        }
        if (run >= 0) t[run] = now_s() - t0;
    }
    double m = median(t, runs);
    double raw = (double)c->n * (double)c->plane_bytes;
    printf("codec=memcpy chunks=%zu raw=%.0f stored=%.0f ratio=1.0 encode_MBps=%.0f "
           "decode_MBps=%.0f\n", c->n, raw, raw, m > 0 ? raw / m / 1e6 : 0.0,
           m > 0 ? raw / m / 1e6 : 0.0);
    (void)sink;
    free(dst);
    free(t);
}

int main(int argc, char **argv) {
    int n = 192, chunk = 64, runs = 5, smoke = 0;
    const char *only[64];
    size_t n_only = 0;
    uint64_t seed = 20240521;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--smoke")) smoke = 1;
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc) chunk = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--codec") && i + 1 < argc && n_only < 64)
            only[n_only++] = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--smoke] [--size N] [--chunk C] [--runs R] "
                    "[--seed S] [--codec SPEC]...\n", argv[0]);
            return 2;
        }
    }
    if (smoke) {
        n = 64;
        chunk = 32;
        runs = 1;
    }
    if (n < 8 || chunk < 4 || chunk > n || runs < 1 || runs > 100) {
        fprintf(stderr, "bench_codecs: bad --size/--chunk/--runs\n");
        return 2;
    }
    printf("# bench_codecs size=%d chunk=%d runs=%d seed=%" PRIu64 "\n", n, chunk, runs, seed);

    static const char *const specs[] = {
        "zstd:1", "zstd:3", "zstd:5", "zstd:9",
        "{\"id\":\"blosc\",\"cname\":\"zstd\",\"clevel\":1,\"shuffle\":2,\"blocksize\":0}",
        "{\"id\":\"blosc\",\"cname\":\"zstd\",\"clevel\":3,\"shuffle\":2,\"blocksize\":0}",
        "{\"id\":\"blosc\",\"cname\":\"zstd\",\"clevel\":5,\"shuffle\":2,\"blocksize\":0}",
        "{\"id\":\"blosc\",\"cname\":\"zstd\",\"clevel\":3,\"shuffle\":0,\"blocksize\":0}",
        "{\"id\":\"blosc\",\"cname\":\"zstd\",\"clevel\":5,\"shuffle\":0,\"blocksize\":0}",
        "{\"id\":\"blosc\",\"cname\":\"lz4\",\"clevel\":5,\"shuffle\":1,\"blocksize\":0}",
        "{\"id\":\"blosc\",\"cname\":\"lz4\",\"clevel\":5,\"shuffle\":2,\"blocksize\":0}",
        "{\"id\":\"blosc\",\"cname\":\"lz4hc\",\"clevel\":5,\"shuffle\":2,\"blocksize\":0}",
        "gzip:1", "gzip:6", "lz4",
    };
    vol V = {0, NULL};
    corpus c;
    memset(&c, 0, sizeof c);
    lb_error err = {0};
    int status = 0;
    double t0 = now_s();
    if (make_volume(&V, n, seed)) {
        fprintf(stderr, "bench_codecs: out of memory\n");
        return 1;
    }
    if (build_corpus(&V, chunk, &c, &err) < 0) {
        fprintf(stderr, "bench_codecs: %s\n", err.message);
        status = 1;
        goto done;
    }
    printf("# volume built in %.1f s: %zu non-empty chunks of %zu bytes, %zu all-zero "
           "chunks left out\n", now_s() - t0, c.n, c.plane_bytes, c.zero_planes);
    if (c.n == 0) {
        fprintf(stderr, "bench_codecs: no non-empty chunks\n");
        status = 1;
        goto done;
    }
    measure_memcpy(&c, runs);
    const char *const *list = n_only ? only : specs;
    size_t n_list = n_only ? n_only : sizeof specs / sizeof *specs;
    for (size_t i = 0; i < n_list; i++) {
        if (measure(list[i], &c, runs, &err) < 0) {
            fprintf(stderr, "bench_codecs: %s: %s\n", list[i], err.message);
            status = 1;
        }
    }
done:
    for (size_t i = 0; i < c.n; i++) free(c.planes[i]);
    free(c.planes);
    free(V.v);
    return status;
}
