/*
 * bench_storage.c — what the storage layout costs, every ratio measured in
 * the same run:
 *  (1) shard: end-to-end binarize (16 groups) from a sharded Zarr v3 input
 *      to a sharded Zarr v3 output against the same job from Zarr v2 to
 *      Zarr v2 with the same inner chunks, at -j1 and -j2, each run into a
 *      new directory, on tmpfs and on each disk; time, files and bytes of
 *      each output;
 *  (2) roi: random ROI reads from the sharded input and from the Zarr v2
 *      one, without a cache and with a cache (cold first pass, warm second
 *      pass), and what each read fetches (requests and bytes);
 *  (3) layout: the output chunk layouts — one chunk per channel per block
 *      (Zarr v2), all channels of a block in one chunk (the default),
 *      and Zarr v3 shards of each — written at -j2 into a directory just
 *      emptied (what a rerun with -f does) on tmpfs and on each disk: time,
 *      time of the removal, files, bytes, and the time to read a training
 *      ROI (every channel of a random box) back from the output.
 *
 *   bench_storage [--smoke] [--data DIR] [--disk DIR]... [--tmpfs DIR]
 *                 [--runs R] [--seed S] [--settle S]
 *                 [--only shard|roi|layout]... [--layout TAG]... [--input NAME]
 *
 * Inputs (made once into DIR, default bench-data/ next to this program, and
 * reused): "sample", `labelbin sample --seed 1 --shape 256,512,512 --chunks
 * 64,64,64 --codec zstd:3` (the input of bench_e2e; 939 non-empty output
 * chunks of 4096 at 16 groups: one cell, so most classes sit in few
 * blocks); "dense", a 48x96x96 sample tiled to 256x512x512 (64^3 chunks,
 * zstd:3), so that every block holds every class the sample has, as in a
 * crop with many cells (2720 non-empty output chunks); and the sharded
 * Zarr v3 twin of "sample" (shards 256^3 of 64^3 inner chunks, zstd:3, the
 * same labels and attributes), written with lb_dataset_create +
 * lb_array_data_write.
 *
 * Jobs: each job is a process of its own (this program, --job), which does
 * what `labelbin binarize -jN --codec zstd:3 -f` does through the library
 * (lb_binarize_new + lb_array_materialize) with the output format, shard and
 * channel layout of the case; it is started through the --measure launcher
 * (bench_util.h), which takes its wall time. Removal of the previous output
 * (for "just emptied") is timed apart by this program, right before the job.
 *
 * Disks: --disk DIR (repeatable; default: the data directory) and --tmpfs
 * DIR (default a fresh folder in /dev/shm). An ext4 file system without a
 * journal holds a freshly deleted inode back from reuse for 60 s (300 s
 * while its inode table block is dirty): every file created meanwhile in
 * the same block group first skips over all the recently deleted ones
 * (recently_deleted() in fs/ext4/ialloc.c), so a write into a directory
 * just emptied pays for every file the previous output had — and for every
 * other file deleted there in the last minute, so back-to-back reruns get
 * slower and slower. On such a disk every timed write therefore waits
 * first until --settle seconds (default 62) have passed since the last
 * deletion there, with the deleted inodes written back (sync): the only
 * recent deletions it meets are those of its own removal, the previous
 * output. That makes the layout part take about half an hour on such a
 * disk; --settle 0 measures back-to-back reruns instead.
 *
 * --layout TAG (v2_separate, v2_together, v3_shard_separate,
 * v3_shard_together; repeatable) and --input sample|dense restrict the
 * layout part to those cases (to repeat a row).
 *
 * Timings: wall clock (CLOCK_MONOTONIC); median of R runs (default 5) after
 * one warm-up run. One table row and one JSON line per result, on stdout;
 * the 1-minute load average before and after each result is in the JSON.
 * Outputs are checked: ROIs read back from every output equal the
 * BinarizeArray of the input over the same ROI. --smoke: tiny volumes in a
 * temporary directory, one run, no pauses, no timing assertions (a CTest
 * smoke test).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "bench_util.h"
#include "labelbin.h"

/* The 16 CellMap training groups of bench_e2e. */
static const char GROUPS[] =
    "[[\"ecs\",[1]],[\"pm\",[2]],[\"mito\",[3,4,5]],[\"mito_mem\",[3]],"
    "[\"golgi\",[6,7]],[\"ves\",[8,9]],[\"endo\",[10,11]],[\"lyso\",[12,13]],"
    "[\"ld\",[14,15]],[\"er\",[16,17,18,19,20,21,22,23]],[\"er_mem_all\",[16,18,20]],"
    "[\"eres\",[18,19]],[\"nuc\",[20,21,22,23,24,25,26,27,28,29,37]],[\"mt\",[30,36]],"
    "[\"perox\",[47,48]],[\"cell_all\",[]]]";

#define MAX_DISKS 4
#define MAX_ROIS 16

typedef struct place {
    char dir[PATH_MAX];
    char fs[64]; /* "tmpfs", "ext4", "ext4 (no journal)", ... */
    int slow_reuse; /* ext4 without a journal: deleted inodes held back */
} place;

typedef struct cfg {
    int smoke, runs, settle;
    double last_delete; /* when something was last deleted on a slow-reuse disk */
    uint64_t seed;
    int do_shard, do_roi, do_layout;
    const char *layouts[8]; /* --layout TAG: only these layouts (none = all) */
    int n_layouts;
    const char *input;      /* --input sample|dense: only this input (NULL = both) */
    char data[PATH_MAX];
    char labelbin[PATH_MAX];
    place tmpfs;
    place disks[MAX_DISKS];
    int n_disks;
    int tmp_data, tmp_tmpfs;
    /* geometry: volume, chunk, shard, ROI edge, dense tile */
    int64_t shape[3], chunk, shard, edge, tile[3];
    int n_rois;
    char sample[PATH_MAX], dense[PATH_MAX], sharded[PATH_MAX];
} cfg;

/* --------------------------------------------------------------------------
 * The job: one binarize, in a process of its own
 * -------------------------------------------------------------------------- */

/* bench_storage --job SRC DEST THREADS zarr2|zarr3 SHARD|- separate|together CHUNK */
static int job_main(int argc, char **argv) {
    if (argc != 9) return 2;
    const char *src = argv[2], *dest = argv[3];
    int threads = atoi(argv[4]);
    lb_format fmt = strcmp(argv[5], "zarr3") == 0 ? LB_FORMAT_ZARR3 : LB_FORMAT_ZARR2;
    int64_t shard[3], chunks[3], ch = atoll(argv[8]);
    int sharded = strcmp(argv[6], "-") != 0;
    for (int d = 0; d < 3; d++) {
        shard[d] = sharded ? atoll(argv[6]) : 0;
        chunks[d] = ch;
    }
    lb_error e = {0};
    lb_array *labels = NULL, *bin = NULL;
    lb_groupings *g = NULL;
    int rc = 1;
    if (lb_array_open(src, LB_OPEN_READONLY, NULL, 0, &labels, &e) ||
        lb_groupings_new(&g, &e) || lb_groupings_add_json(g, GROUPS, &e) ||
        lb_binarize_new(labels, g, (lb_id){0, 0}, &bin, &e))
        goto done;
    labels = NULL; /* owned by bin */
    lb_write_options opt;
    lb_write_options_init(&opt);
    opt.threads = threads;
    opt.codec = "zstd:3";
    opt.chunks = chunks;
    opt.overwrite = 1;
    opt.provenance_json = "{\"command\": \"binarize\"}";
    opt.format = fmt;
    opt.shard = sharded ? shard : NULL;
    opt.channel_chunks =
        strcmp(argv[7], "together") == 0 ? LB_CHANNELS_TOGETHER : LB_CHANNELS_SEPARATE;
    if (lb_array_materialize(bin, dest, &opt, NULL, &e)) goto done;
    rc = 0;
done:
    if (rc) fprintf(stderr, "bench_storage --job: %s\n", e.message);
    lb_array_free(bin);
    lb_array_free(labels);
    lb_groupings_free(g);
    return rc;
}

/* An output layout (also the input/output pairs of the shard part). */
typedef struct layout {
    const char *name; /* for the table */
    const char *tag;  /* for JSON and file names */
    int v3_in;        /* read the sharded Zarr v3 input */
    int v3_out;       /* Zarr v3 sharded output */
    int together;     /* all channels of a block in one chunk */
} layout;

/* Run one job into dest; wall seconds in *wall. */
static int run_job(const cfg *c, const char *src, const char *dest, int threads,
                   const layout *l, double *wall) {
    char j[16], shard[32], chunk[32];
    snprintf(j, sizeof j, "%d", threads);
    snprintf(shard, sizeof shard, "%" PRId64, c->shard);
    snprintf(chunk, sizeof chunk, "%" PRId64, c->chunk);
    char *argv[] = {self_exe, "--job", (char *)src, (char *)dest, j,
                    l->v3_out ? "zarr3" : "zarr2", l->v3_out ? shard : "-",
                    l->together ? "together" : "separate", chunk, NULL};
    long rss = 0;
    int st = run_child(argv, wall, &rss);
    if (st != 0) fprintf(stderr, "bench_storage: job %s -> %s exited with %d\n", l->tag, dest, st);
    return st == 0 ? 0 : -1;
}

/* --------------------------------------------------------------------------
 * Inputs
 * -------------------------------------------------------------------------- */

static int sample_cli(const cfg *c, const int64_t *shape, int64_t chunk, const char *out) {
    char s[96], ch[64];
    snprintf(s, sizeof s, "%" PRId64 ",%" PRId64 ",%" PRId64, shape[0], shape[1], shape[2]);
    snprintf(ch, sizeof ch, "%" PRId64 ",%" PRId64 ",%" PRId64, chunk, chunk, chunk);
    fprintf(stderr, "bench_storage: generating %s\n", out);
    char *argv[] = {(char *)c->labelbin, "sample", "-q", "-f", "--seed", "1", "--shape", s,
                    "--chunks", ch, "--codec", "zstd:3", (char *)out, NULL};
    if (run_child(argv, NULL, NULL) != 0) {
        fprintf(stderr, "bench_storage: could not generate %s with %s\n", out, c->labelbin);
        return -1;
    }
    return 0;
}

/* Write `dest` (a "*.zarr/labels" dataset) from `src`'s attributes and
 * labels, `src` tiled periodically when its shape is smaller: a new Zarr v2
 * or v3 (sharded when shard > 0) array of `shape` with `chunk`^3 chunks,
 * zstd:3, one stored chunk (shard) at a time. Written under a temporary
 * name and renamed, so an interrupted run leaves nothing to reuse. */
static int copy_labels(const char *src, const char *dest, const int64_t *shape, int64_t chunk,
                       lb_format fmt, int64_t shard) {
    char root[PATH_MAX], tmp_root[PATH_MAX + 16], tmp[PATH_MAX + 32];
    dirname_of(dest, root, sizeof root); /* X.zarr */
    size_t rl = strlen(root);
    if (rl < 5 || strcmp(root + rl - 5, ".zarr") != 0) return -1;
    snprintf(tmp_root, sizeof tmp_root, "%.*s.tmp.zarr", (int)(rl - 5), root);
    snprintf(tmp, sizeof tmp, "%s/%s", tmp_root, dest + rl + 1);
    rm_rf(tmp_root);
    lb_error e = {0};
    lb_array *in = NULL, *out = NULL;
    uint64_t *sbuf = NULL, *dbuf = NULL;
    int rc = -1;
    if (lb_array_open(src, LB_OPEN_READONLY, NULL, 0, &in, &e)) goto fail;
    const int64_t *ish = lb_array_shape(in);
    size_t in_n = (size_t)ish[0] * (size_t)ish[1] * (size_t)ish[2];
    int64_t unit = shard > 0 ? shard : chunk; /* what one write replaces */
    size_t blk_n = (size_t)unit * (size_t)unit * (size_t)unit;
    sbuf = malloc(in_n * 8);
    dbuf = malloc(blk_n * 8);
    if (!sbuf || !dbuf) goto fail;
    const int64_t zero[3] = {0, 0, 0};
    if (lb_array_data_read(in, zero, ish, sbuf, in_n * 8, &e)) goto fail;
    static const char *const names[3] = {"z", "y", "x"};
    int64_t chunks[3] = {chunk, chunk, chunk}, sh[3] = {shard, shard, shard};
    lb_create_options co;
    lb_create_options_init(&co);
    co.format = fmt;
    co.dtype = LB_DTYPE_UINT64;
    co.codec = "zstd:3";
    co.attrs_json = lb_array_attrs_json(in);
    co.shard = shard > 0 ? sh : NULL;
    co.dimension_names = fmt == LB_FORMAT_ZARR3 ? names : NULL;
    if (lb_dataset_create(tmp, 3, shape, chunks, &co, &out, &e)) goto fail;
    for (int64_t z0 = 0; z0 < shape[0]; z0 += unit)
        for (int64_t y0 = 0; y0 < shape[1]; y0 += unit)
            for (int64_t x0 = 0; x0 < shape[2]; x0 += unit) {
                int64_t st[3] = {z0, y0, x0}, n[3];
                for (int d = 0; d < 3; d++) n[d] = shape[d] - st[d] < unit ? shape[d] - st[d] : unit;
                size_t k = 0;
                for (int64_t z = 0; z < n[0]; z++)
                    for (int64_t y = 0; y < n[1]; y++)
                        for (int64_t x = 0; x < n[2]; x++)
                            dbuf[k++] = sbuf[((size_t)((z0 + z) % ish[0]) * (size_t)ish[1] +
                                              (size_t)((y0 + y) % ish[1])) *
                                                 (size_t)ish[2] +
                                             (size_t)((x0 + x) % ish[2])];
                if (lb_array_data_write(out, st, n, dbuf, k * 8, &e)) goto fail;
            }
    lb_array_free(out);
    out = NULL;
    rm_rf(root);
    if (rename(tmp_root, root) != 0) {
        perror("bench_storage: rename");
        goto done;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "bench_storage: writing %s: %s\n", dest, e.message);
done:
    lb_array_free(in);
    lb_array_free(out);
    free(sbuf);
    free(dbuf);
    if (rc) rm_rf(tmp_root);
    return rc;
}

static int make_inputs(cfg *c) {
    char meta[PATH_MAX + 32];
    /* the sample: the same file as bench_e2e's */
    snprintf(c->sample, sizeof c->sample, "%s/v%" PRId64 "x%" PRId64 "x%" PRId64 "_c%" PRId64
             ".zarr/labels", c->data, c->shape[0], c->shape[1], c->shape[2], c->chunk);
    snprintf(meta, sizeof meta, "%s/.zarray", c->sample);
    if (!file_exists(meta) && sample_cli(c, c->shape, c->chunk, c->sample)) return -1;

    snprintf(c->sharded, sizeof c->sharded, "%s/v%" PRId64 "x%" PRId64 "x%" PRId64 "_c%" PRId64
             "_s%" PRId64 ".zarr/labels", c->data, c->shape[0], c->shape[1], c->shape[2],
             c->chunk, c->shard);
    snprintf(meta, sizeof meta, "%s/zarr.json", c->sharded);
    if (!file_exists(meta)) {
        fprintf(stderr, "bench_storage: generating %s\n", c->sharded);
        if (copy_labels(c->sample, c->sharded, c->shape, c->chunk, LB_FORMAT_ZARR3, c->shard))
            return -1;
    }

    snprintf(c->dense, sizeof c->dense, "%s/dense%" PRId64 "x%" PRId64 "x%" PRId64 "_t%" PRId64
             "x%" PRId64 "x%" PRId64 "_c%" PRId64 ".zarr/labels", c->data, c->shape[0],
             c->shape[1], c->shape[2], c->tile[0], c->tile[1], c->tile[2], c->chunk);
    snprintf(meta, sizeof meta, "%s/.zarray", c->dense);
    if (!file_exists(meta)) {
        char tile[PATH_MAX + 64];
        snprintf(tile, sizeof tile, "%s/tile%" PRId64 "x%" PRId64 "x%" PRId64 ".zarr/labels",
                 c->data, c->tile[0], c->tile[1], c->tile[2]);
        snprintf(meta, sizeof meta, "%s/.zarray", tile);
        if (!file_exists(meta) && sample_cli(c, c->tile, 16, tile)) return -1;
        fprintf(stderr, "bench_storage: generating %s\n", c->dense);
        if (copy_labels(tile, c->dense, c->shape, c->chunk, LB_FORMAT_ZARR2, 0)) return -1;
    }
    return 0;
}

/* --------------------------------------------------------------------------
 * File systems, outputs, reads back
 * -------------------------------------------------------------------------- */

/* Name the file system holding dir; ext4 without a journal is told apart
 * (/proc/fs/jbd2/<device>-8 exists for a journaled one). */
static void classify(place *p) {
    struct statfs sf;
    snprintf(p->fs, sizeof p->fs, "other");
    p->slow_reuse = 0;
    if (statfs(p->dir, &sf) != 0) return;
    if (sf.f_type == 0x01021994) snprintf(p->fs, sizeof p->fs, "tmpfs");
    else if (sf.f_type == 0x58465342) snprintf(p->fs, sizeof p->fs, "xfs");
    else if (sf.f_type == 0x6969) snprintf(p->fs, sizeof p->fs, "nfs");
    else if (sf.f_type == 0x794c7630) snprintf(p->fs, sizeof p->fs, "overlayfs");
    else if (sf.f_type == 0xEF53) {
        struct stat st;
        char path[128], line[256], dev[64] = "";
        snprintf(p->fs, sizeof p->fs, "ext4");
        if (stat(p->dir, &st) != 0) return;
        snprintf(path, sizeof path, "/sys/dev/block/%u:%u/uevent", major(st.st_dev),
                 minor(st.st_dev));
        FILE *f = fopen(path, "r");
        if (!f) return;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "DEVNAME=%63s", dev) == 1) break;
        fclose(f);
        if (!dev[0]) return;
        snprintf(path, sizeof path, "/proc/fs/jbd2/%s-8", dev);
        if (!file_exists(path)) {
            snprintf(p->fs, sizeof p->fs, "ext4 (no journal)");
            p->slow_reuse = 1;
        }
    }
}

typedef struct tree_count {
    int64_t files, dirs, bytes, blocks;
} tree_count;

static tree_count g_count;

static int count_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)p;
    (void)ftw;
    if (flag == FTW_F) {
        g_count.files++;
        g_count.bytes += st->st_size;
        g_count.blocks += st->st_blocks;
    } else if (flag == FTW_D) {
        g_count.dirs++;
    }
    return 0;
}

/* Files, directories, bytes and allocated bytes under `path` (the dataset
 * and its parent *.zarr group). */
static tree_count count_tree(const char *path) {
    memset(&g_count, 0, sizeof g_count);
    nftw(path, count_entry, 16, FTW_PHYS);
    g_count.blocks *= 512;
    return g_count;
}

/* The n random ROIs (edge^3 voxels, world units) of the seed. */
static int make_rois(const cfg *c, const char *path, lb_roi *rois) {
    lb_error e = {0};
    lb_array *a = NULL;
    if (lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &a, &e)) {
        fprintf(stderr, "bench_storage: %s: %s\n", path, e.message);
        return -1;
    }
    const int64_t *vs = lb_array_voxel_size(a);
    lb_roi whole;
    lb_array_roi(a, &whole);
    uint64_t s = c->seed;
    int rc = 0;
    for (int i = 0; i < c->n_rois && !rc; i++) {
        int64_t o[3], sh[3];
        for (int k = 0; k < 3; k++) {
            int64_t n = whole.shape[k] / vs[k];
            o[k] = whole.offset[k] + (int64_t)(rng_next(&s) % (uint64_t)(n - c->edge + 1)) * vs[k];
            sh[k] = c->edge * vs[k];
        }
        rc = lb_roi_set(&rois[i], 3, o, sh, &e);
    }
    lb_array_free(a);
    return rc;
}

/* A fresh stored array (labels or an output) reading with `threads`. */
static lb_array *open_stored(const char *path, int threads) {
    lb_error e = {0};
    lb_array *a = NULL;
    if (lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &a, &e) ||
        lb_array_set_threads(a, threads, &e)) {
        fprintf(stderr, "bench_storage: %s: %s\n", path, e.message);
        lb_array_free(a);
        return NULL;
    }
    return a;
}

static lb_array *open_binarize(const char *path) {
    lb_error e = {0};
    lb_array *a = NULL, *b = NULL;
    lb_groupings *g = NULL;
    if (lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &a, &e) || lb_groupings_new(&g, &e) ||
        lb_groupings_add_json(g, GROUPS, &e) || lb_binarize_new(a, g, (lb_id){0, 0}, &b, &e)) {
        fprintf(stderr, "bench_storage: %s: %s\n", path, e.message);
        lb_array_free(a);
        b = NULL;
    }
    lb_groupings_free(g);
    return b;
}

/* One pass over the ROIs; seconds per ROI (-1 on failure). */
static double roi_pass(const lb_array *a, const lb_roi *rois, int n, void *buf, size_t size) {
    lb_error e = {0};
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        if (lb_array_read(a, &rois[i], buf, size, &e)) {
            fprintf(stderr, "bench_storage: read %s: %s\n", lb_array_path(a), e.message);
            return -1;
        }
    return (now_s() - t0) / n;
}

/* 1 when every ROI of `out` (an output) equals the BinarizeArray of `src`. */
static int output_matches(const cfg *c, const char *src, const char *out, const lb_roi *rois) {
    lb_array *b = open_binarize(src), *o = open_stored(out, 1);
    int ok = b && o;
    size_t size = ok ? lb_array_read_size(b, &rois[0]) : 0;
    ok = ok && size == lb_array_read_size(o, &rois[0]);
    uint8_t *x = ok ? malloc(size) : NULL, *y = ok ? malloc(size) : NULL;
    lb_error e = {0};
    for (int i = 0; ok && x && y && i < c->n_rois; i++) {
        if (lb_array_read(b, &rois[i], x, size, &e) || lb_array_read(o, &rois[i], y, size, &e)) {
            fprintf(stderr, "bench_storage: verify %s: %s\n", out, e.message);
            ok = 0;
        } else if (memcmp(x, y, size) != 0) {
            fprintf(stderr, "bench_storage: %s differs from the BinarizeArray of %s on ROI %d\n",
                    out, src, i);
            ok = 0;
        }
    }
    ok = ok && x && y;
    free(x);
    free(y);
    lb_array_free(b);
    lb_array_free(o);
    return ok;
}

/* Let the inodes deleted on an ext4 without a journal become reusable:
 * write them back, then wait until --settle seconds have passed since the
 * last deletion there. */
static void settle(const cfg *c, const char *why) {
    int slow = 0;
    for (int i = 0; i < c->n_disks; i++) slow |= c->disks[i].slow_reuse;
    if (!slow || c->settle <= 0) return;
    sync();
    double wait = c->last_delete + c->settle - now_s();
    if (wait <= 0) return;
    fprintf(stderr, "bench_storage: waiting %.0f s (%s)\n", wait, why);
    struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Something was deleted on place p (or p's job deleted its journal). */
static void deleted_on(cfg *c, const place *p) {
    if (p->slow_reuse) c->last_delete = now_s();
}

static void add_str(json_object *o, const char *k, const char *v) {
    json_object_object_add(o, k, json_object_new_string(v));
}
static void add_num(json_object *o, const char *k, double v) {
    json_object_object_add(o, k, json_object_new_double(v));
}
static void add_int(json_object *o, const char *k, int64_t v) {
    json_object_object_add(o, k, json_object_new_int64(v));
}

/* --------------------------------------------------------------------------
 * 1. Sharded in and out against Zarr v2 in and out
 * -------------------------------------------------------------------------- */

static const layout SHARD_CASES[] = {
    {"Zarr v2 -> Zarr v2, channel per chunk", "v2_v2", 0, 0, 0},
    {"sharded v3 -> sharded v3, channel per chunk", "v3s_v3s", 1, 1, 0},
    {"sharded v3 -> sharded v3, channels together", "v3s_v3s_together", 1, 1, 1},
    {"sharded v3 -> Zarr v2, channel per chunk", "v3s_v2", 1, 0, 0},
    {"Zarr v2 -> sharded v3, channel per chunk", "v2_v3s", 0, 1, 0},
};
#define N_SHARD_CASES (int)(sizeof SHARD_CASES / sizeof SHARD_CASES[0])

static int bench_shard(cfg *c) {
    const place *places[1 + MAX_DISKS];
    int np = 0;
    places[np++] = &c->tmpfs;
    for (int i = 0; i < c->n_disks; i++) places[np++] = &c->disks[i];
    lb_roi rois[MAX_ROIS];
    if (make_rois(c, c->sample, rois)) return -1;
    settle(c, "earlier deletions on the disk");
    /* t[place][case][threads-1][run]; each run into a new directory */
    static double t[1 + MAX_DISKS][N_SHARD_CASES][2][64];
    static char last[1 + MAX_DISKS][N_SHARD_CASES][PATH_MAX + 64]; /* a -j2 output */
    int serial = 0, rc = 0;
    double l0 = loadavg();
    for (int r = -1; r < c->runs && !rc; r++)
        for (int k = 0; k < N_SHARD_CASES && !rc; k++)
            for (int th = 1; th <= 2 && !rc; th++)
                for (int p = 0; p < np && !rc; p++) {
                    const layout *l = &SHARD_CASES[k];
                    char dest[PATH_MAX + 64];
                    snprintf(dest, sizeof dest, "%s/out_shard.zarr/%s_%d", places[p]->dir, l->tag,
                             serial++);
                    double w = 0;
                    rc = run_job(c, l->v3_in ? c->sharded : c->sample, dest, th, l, &w);
                    deleted_on(c, places[p]); /* the job's own journal */
                    if (r >= 0) t[p][k][th - 1][r] = w;
                    if (th == 2) snprintf(last[p][k], sizeof last[p][k], "%s", dest);
                }
    double l1 = loadavg();
    for (int p = 0; p < np && !rc; p++) {
        double base[2] = {median(t[p][0][0], c->runs), median(t[p][0][1], c->runs)};
        for (int k = 0; k < N_SHARD_CASES && !rc; k++) {
            const layout *l = &SHARD_CASES[k];
            tree_count tc = count_tree(last[p][k]);
            int ok = output_matches(c, c->sample, last[p][k], rois);
            double j1 = median(t[p][k][0], c->runs), j2 = median(t[p][k][1], c->runs);
            printf("| %s, %s | -j1 %.3f s (%.2fx) | -j2 %.3f s (%.2fx) | %" PRId64 " files, %"
                   PRId64 " dirs | %.2f MB (%.2f MB allocated) | %s |\n",
                   l->name, places[p]->fs, j1, j1 / base[0], j2, j2 / base[1], tc.files, tc.dirs,
                   tc.bytes / 1e6, tc.blocks / 1e6, ok ? "verified" : "OUTPUT DIFFERS");
            json_object *o = json_object_new_object();
            add_str(o, "bench", "storage_shard");
            add_str(o, "case", l->tag);
            add_str(o, "input", l->v3_in ? c->sharded : c->sample);
            add_str(o, "out_fs", places[p]->fs);
            add_str(o, "out_dir", places[p]->dir);
            add_int(o, "runs", c->runs);
            add_num(o, "j1_s", j1);
            add_num(o, "j2_s", j2);
            add_num(o, "j1_vs_v2", j1 / base[0]);
            add_num(o, "j2_vs_v2", j2 / base[1]);
            if (k == 1) {
                add_num(o, "target_vs_v2", 1.1);
                json_object_object_add(o, "met", json_object_new_boolean(
                                                      j1 / base[0] <= 1.1 && j2 / base[1] <= 1.1));
            }
            add_int(o, "files", tc.files);
            add_int(o, "dirs", tc.dirs);
            add_int(o, "bytes", tc.bytes);
            add_int(o, "allocated_bytes", tc.blocks);
            json_object_object_add(o, "verified", json_object_new_boolean(ok));
            add_num(o, "load_before", l0);
            add_num(o, "load_after", l1);
            json_object_object_add(o, "smoke", json_object_new_boolean(c->smoke));
            print_json(o);
            json_object_put(o);
            if (!ok) rc = -1;
        }
    }
    for (int p = 0; p < np; p++) {
        char out[PATH_MAX + 32];
        snprintf(out, sizeof out, "%s/out_shard.zarr", places[p]->dir);
        rm_rf(out);
        deleted_on(c, places[p]);
    }
    return rc;
}

/* --------------------------------------------------------------------------
 * 2. ROI reads from the sharded input and the Zarr v2 input
 * -------------------------------------------------------------------------- */

static int bench_roi(const cfg *c) {
    lb_roi rois[MAX_ROIS];
    if (make_rois(c, c->sample, rois)) return -1;
    const char *paths[2] = {c->sample, c->sharded};
    const char *names[2] = {"Zarr v2", "sharded Zarr v3"};
    size_t size = 0;
    {
        lb_array *a = open_stored(c->sample, 1);
        if (!a) return -1;
        size = lb_array_read_size(a, &rois[0]);
        lb_array_free(a);
    }
    size_t cache_bytes = (size_t)c->shape[0] * (size_t)c->shape[1] * (size_t)c->shape[2] * 8;
    void *buf = malloc(size), *ref = malloc(size);
    if (!buf || !ref) {
        free(buf);
        free(ref);
        return -1;
    }
    memset(buf, 0, size);
    char shard_note[64];
    snprintf(shard_note, sizeof shard_note, " in %" PRId64 "^3 shards", c->shard);
    int rc = 0;
    for (int threads = 1; threads <= 2 && !rc; threads++) {
        double unc[2][64], cold[2][64], warm[2][64];
        lb_io_stats io[2] = {{0, 0}, {0, 0}};
        double l0 = loadavg();
        for (int r = -1; r < c->runs && !rc; r++)
            for (int k = 0; k < 2 && !rc; k++) { /* interleaved: same moment */
                lb_array *a = open_stored(paths[k], threads);
                if (!a) {
                    rc = -1;
                    break;
                }
                double u = roi_pass(a, rois, c->n_rois, buf, size);
                if (r == -1) lb_array_io_stats(a, &io[k]); /* one pass, fresh array */
                lb_array_free(a);
                if (!(a = open_stored(paths[k], threads))) {
                    rc = -1;
                    break;
                }
                lb_error e = {0};
                if (lb_array_set_cache(a, cache_bytes, &e)) {
                    fprintf(stderr, "bench_storage: set_cache: %s\n", e.message);
                    lb_array_free(a);
                    rc = -1;
                    break;
                }
                double cd = roi_pass(a, rois, c->n_rois, buf, size);
                double wm = roi_pass(a, rois, c->n_rois, buf, size);
                lb_array_free(a);
                if (u < 0 || cd < 0 || wm < 0) rc = -1;
                if (r >= 0) {
                    unc[k][r] = u;
                    cold[k][r] = cd;
                    warm[k][r] = wm;
                }
                /* the last ROI read the same from both inputs */
                if (k == 0) memcpy(ref, buf, size);
                else if (memcmp(ref, buf, size) != 0) {
                    fprintf(stderr, "bench_storage: the sharded input reads differently\n");
                    rc = -1;
                }
            }
        double l1 = loadavg();
        for (int k = 0; k < 2 && !rc; k++) {
            double u = median(unc[k], c->runs), cd = median(cold[k], c->runs),
                   wm = median(warm[k], c->runs);
            double u0 = median(unc[0], c->runs), c0 = median(cold[0], c->runs),
                   w0 = median(warm[0], c->runs);
            printf("| ROI read, %d random %" PRId64 "^3 ROIs of %" PRId64 "x%" PRId64 "x%" PRId64
                   " u64 zstd:3, %s (%" PRId64 "^3 chunks%s), %d thread%s | no cache %.2f ms/ROI "
                   "(%.2fx v2) | cached cold %.2f ms (%.2fx) | cached warm %.2f ms (%.2fx) "
                   "| %.1f reads, %.2f MB per ROI |\n",
                   c->n_rois, c->edge, c->shape[0], c->shape[1], c->shape[2], names[k], c->chunk,
                   k ? shard_note : "", threads, threads > 1 ? "s" : "", 1e3 * u,
                   u / u0, 1e3 * cd, cd / c0, 1e3 * wm, wm / w0,
                   (double)io[k].requests / c->n_rois, (double)io[k].bytes / c->n_rois / 1e6);
            json_object *o = json_object_new_object();
            add_str(o, "bench", "storage_roi");
            add_str(o, "input", paths[k]);
            add_str(o, "format", k ? "zarr3_sharded" : "zarr2");
            add_int(o, "chunk", c->chunk);
            add_int(o, "shard", k ? c->shard : 0);
            add_int(o, "roi_edge", c->edge);
            add_int(o, "rois", c->n_rois);
            add_int(o, "threads", threads);
            add_int(o, "runs", c->runs);
            json_object_object_add(o, "seed", json_object_new_uint64(c->seed));
            add_num(o, "uncached_s", u);
            add_num(o, "cached_cold_s", cd);
            add_num(o, "cached_warm_s", wm);
            add_num(o, "uncached_vs_v2", u / u0);
            add_num(o, "cold_vs_v2", cd / c0);
            add_num(o, "warm_vs_v2", wm / w0);
            add_num(o, "requests_per_roi", (double)io[k].requests / c->n_rois);
            add_num(o, "bytes_per_roi", (double)io[k].bytes / c->n_rois);
            add_int(o, "cache_bytes", (int64_t)cache_bytes);
            add_num(o, "load_before", l0);
            add_num(o, "load_after", l1);
            json_object_object_add(o, "smoke", json_object_new_boolean(c->smoke));
            print_json(o);
            json_object_put(o);
        }
    }
    free(buf);
    free(ref);
    return rc;
}

/* --------------------------------------------------------------------------
 * 3. Output layouts, written into a directory just emptied
 * -------------------------------------------------------------------------- */

static const layout LAYOUTS[] = {
    {"Zarr v2, a chunk per channel per block", "v2_separate", 0, 0, 0},
    {"Zarr v2, all channels of a block in one chunk (default)", "v2_together", 0, 0, 1},
    {"Zarr v3 shards, a chunk per channel per block", "v3_shard_separate", 0, 1, 0},
    {"Zarr v3 shards, all channels of a block in one chunk", "v3_shard_together", 0, 1, 1},
};
#define N_LAYOUTS (int)(sizeof LAYOUTS / sizeof LAYOUTS[0])

static int layout_case(cfg *c, const char *input_name, const char *src,
                       const layout *l, const lb_roi *rois) {
    const place *places[1 + MAX_DISKS];
    int np = 0;
    places[np++] = &c->tmpfs;
    for (int i = 0; i < c->n_disks; i++) places[np++] = &c->disks[i];
    char dest[1 + MAX_DISKS][PATH_MAX + 64], root[1 + MAX_DISKS][PATH_MAX + 64];
    for (int p = 0; p < np; p++) {
        snprintf(root[p], sizeof root[p], "%s/out_layout.zarr", places[p]->dir);
        snprintf(dest[p], sizeof dest[p], "%s/gt", root[p]);
        rm_rf(root[p]);
        deleted_on(c, places[p]);
    }
    char why[256];
    double tw[1 + MAX_DISKS][64], trm[1 + MAX_DISKS][64];
    int rc = 0;
    double l0 = loadavg();
    /* r = -2: the first output; r = -1: warm-up rerun */
    for (int r = -2; r < c->runs && !rc; r++)
        for (int p = 0; p < np && !rc; p++) {
            if (r >= 0 && places[p]->slow_reuse) {
                snprintf(why, sizeof why, "%s input, %s, run %d", input_name, l->tag, r + 1);
                settle(c, why);
            }
            double t0 = now_s();
            rm_rf(dest[p]); /* what -f does first */
            double rm = now_s() - t0, w = 0;
            rc = run_job(c, src, dest[p], 2, l, &w);
            deleted_on(c, places[p]); /* the removal, and the job's journal */
            if (r >= 0) {
                tw[p][r] = w;
                trm[p][r] = rm;
            }
        }
    double l1 = loadavg();
    if (rc) return rc;

    /* Read a training ROI (all channels) back from the output on the
     * first disk (tmpfs when there is none): fresh array, 1 thread, no
     * cache; and the same ROIs computed from the labels for comparison. */
    const char *rb = dest[np > 1 ? 1 : 0];
    int ok = output_matches(c, src, rb, rois);
    lb_array *a = open_stored(rb, 1);
    if (!a) return -1;
    size_t size = lb_array_read_size(a, &rois[0]);
    void *buf = malloc(size);
    double tr[64];
    lb_io_stats io = {0, 0};
    if (!buf) rc = -1;
    for (int r = -1; r < c->runs && !rc; r++) {
        lb_array_free(a);
        if (!(a = open_stored(rb, 1))) {
            rc = -1;
            break;
        }
        double t = roi_pass(a, rois, c->n_rois, buf, size);
        if (t < 0) rc = -1;
        if (r == -1) lb_array_io_stats(a, &io);
        else tr[r] = t;
    }
    lb_array_free(a);
    free(buf);
    if (rc) return rc;
    double read_s = median(tr, c->runs);
    tree_count tc = count_tree(root[np > 1 ? 1 : 0]);
    double base_w = median(tw[0], c->runs), base_rm = median(trm[0], c->runs);
    for (int p = 0; p < np; p++) {
        double w = median(tw[p], c->runs), rm = median(trm[p], c->runs);
        printf("| %s input, %s, -j2, written to %s just emptied | %.3f s (%.2fx tmpfs) "
               "| removal %.3f s; with it %.3f s (%.2fx) | %" PRId64 " files, %" PRId64
               " dirs, %.2f MB (%.2f MB allocated) | ROI read back %.2f ms (%.1f reads, "
               "%.2f MB) | %s |\n",
               input_name, l->name, places[p]->fs, w, w / base_w, rm, w + rm,
               (w + rm) / (base_w + base_rm), tc.files, tc.dirs, tc.bytes / 1e6, tc.blocks / 1e6,
               1e3 * read_s, (double)io.requests / c->n_rois, (double)io.bytes / c->n_rois / 1e6,
               ok ? "verified" : "OUTPUT DIFFERS");
        json_object *o = json_object_new_object();
        add_str(o, "bench", "storage_layout");
        add_str(o, "input", input_name);
        add_str(o, "source", src);
        add_str(o, "layout", l->tag);
        add_str(o, "out_fs", places[p]->fs);
        add_str(o, "out_dir", places[p]->dir);
        add_int(o, "threads", 2);
        add_int(o, "runs", c->runs);
        add_num(o, "write_s", w);
        add_num(o, "remove_s", rm);
        add_num(o, "write_vs_tmpfs", w / base_w);
        add_num(o, "remove_and_write_vs_tmpfs", (w + rm) / (base_w + base_rm));
        if (p > 0) {
            add_num(o, "target_vs_tmpfs", 1.2);
            json_object_object_add(o, "met", json_object_new_boolean(w / base_w <= 1.2));
        }
        add_int(o, "files", tc.files);
        add_int(o, "dirs", tc.dirs);
        add_int(o, "bytes", tc.bytes);
        add_int(o, "allocated_bytes", tc.blocks);
        add_num(o, "roi_read_s", read_s);
        add_int(o, "roi_edge", c->edge);
        add_num(o, "roi_requests", (double)io.requests / c->n_rois);
        add_num(o, "roi_bytes", (double)io.bytes / c->n_rois);
        json_object_object_add(o, "verified", json_object_new_boolean(ok));
        add_num(o, "load_before", l0);
        add_num(o, "load_after", l1);
        json_object_object_add(o, "smoke", json_object_new_boolean(c->smoke));
        print_json(o);
        json_object_put(o);
    }
    return ok ? 0 : -1;
}

static int bench_layout(cfg *c) {
    const char *inputs[2] = {c->sample, c->dense}, *names[2] = {"sample", "dense"};
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        if (c->input && strcmp(c->input, names[i]) != 0) continue;
        lb_roi rois[MAX_ROIS];
        if (make_rois(c, inputs[i], rois)) return -1;
        /* BinarizeArray of the labels, the same ROIs: what reading the
         * output saves (or not) against computing it on the fly */
        lb_array *b = open_binarize(inputs[i]);
        if (!b) return -1;
        size_t size = lb_array_read_size(b, &rois[0]);
        void *buf = malloc(size);
        double t[64];
        for (int r = -1; buf && r < c->runs; r++) {
            double x = roi_pass(b, rois, c->n_rois, buf, size);
            if (r >= 0) t[r] = x;
        }
        lb_array_free(b);
        free(buf);
        if (!buf) return -1;
        printf("| %s input: BinarizeArray of the labels, the same ROIs, 1 thread, no cache "
               "| %.2f ms/ROI |\n", names[i], 1e3 * median(t, c->runs));
        json_object *o = json_object_new_object();
        add_str(o, "bench", "storage_layout_reference");
        add_str(o, "input", names[i]);
        add_num(o, "binarize_roi_s", median(t, c->runs));
        add_int(o, "roi_edge", c->edge);
        json_object_object_add(o, "smoke", json_object_new_boolean(c->smoke));
        print_json(o);
        json_object_put(o);
        for (int k = 0; k < N_LAYOUTS && !rc; k++) {
            int wanted = c->n_layouts == 0;
            for (int j = 0; j < c->n_layouts; j++) wanted |= !strcmp(c->layouts[j], LAYOUTS[k].tag);
            if (wanted) rc = layout_case(c, names[i], inputs[i], &LAYOUTS[k], rois);
        }
    }
    for (int p = 0; p <= c->n_disks; p++) {
        char root[PATH_MAX + 32];
        snprintf(root, sizeof root, "%s/out_layout.zarr", p ? c->disks[p - 1].dir : c->tmpfs.dir);
        rm_rf(root);
    }
    return rc;
}

/* --------------------------------------------------------------------------
 * Setup
 * -------------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr, "usage: bench_storage [--smoke] [--data DIR] [--disk DIR]... [--tmpfs DIR] "
                    "[--runs R] [--seed S] [--settle S] [--only shard|roi|layout]...\n"
                    "       [--layout v2_separate|v2_together|v3_shard_separate|"
                    "v3_shard_together]... [--input sample|dense]\n");
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--measure")) return measure_main(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "--job")) return job_main(argc, argv);
    ssize_t sl = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (sl <= 0) {
        fprintf(stderr, "bench_storage: cannot find its own executable\n");
        return 1;
    }
    self_exe[sl] = '\0';
    static cfg c;
    c.runs = 5;
    c.seed = 20260422;
    c.settle = 62;
    const char *data = NULL, *tmpfs = NULL, *disks[MAX_DISKS];
    int only = 0, n_disks = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--smoke")) c.smoke = 1;
        else if (!strcmp(a, "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(a, "--tmpfs") && i + 1 < argc) tmpfs = argv[++i];
        else if (!strcmp(a, "--disk") && i + 1 < argc && n_disks < MAX_DISKS)
            disks[n_disks++] = argv[++i];
        else if (!strcmp(a, "--runs") && i + 1 < argc) c.runs = atoi(argv[++i]);
        else if (!strcmp(a, "--seed") && i + 1 < argc) c.seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--settle") && i + 1 < argc) c.settle = atoi(argv[++i]);
        else if (!strcmp(a, "--layout") && i + 1 < argc && c.n_layouts < 8)
            c.layouts[c.n_layouts++] = argv[++i];
        else if (!strcmp(a, "--input") && i + 1 < argc) c.input = argv[++i];
        else if (!strcmp(a, "--only") && i + 1 < argc) {
            const char *w = argv[++i];
            only = 1;
            if (!strcmp(w, "shard")) c.do_shard = 1;
            else if (!strcmp(w, "roi")) c.do_roi = 1;
            else if (!strcmp(w, "layout")) c.do_layout = 1;
            else {
                usage();
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    if (!only) c.do_shard = c.do_roi = c.do_layout = 1;
    if (c.runs < 1) c.runs = 1;
    if (c.runs > 64) c.runs = 64;
    if (c.smoke) {
        c.runs = 1;
        c.settle = 0;
    }
    fprintf(stderr, "bench_storage: seed %" PRIu64 "\n", c.seed);
    int64_t full[3] = {256, 512, 512}, tiny[3] = {64, 64, 64};
    int64_t tile_full[3] = {48, 96, 96}, tile_tiny[3] = {16, 32, 32};
    memcpy(c.shape, c.smoke ? tiny : full, sizeof c.shape);
    memcpy(c.tile, c.smoke ? tile_tiny : tile_full, sizeof c.tile);
    c.chunk = c.smoke ? 32 : 64;
    c.shard = c.smoke ? 64 : 256;
    c.edge = c.smoke ? 24 : 96;
    c.n_rois = c.smoke ? 2 : 8;

    char exe_dir[PATH_MAX];
    dirname_of(self_exe, exe_dir, sizeof exe_dir);
    snprintf(c.labelbin, sizeof c.labelbin, "%s/labelbin", exe_dir);
    if (access(c.labelbin, X_OK) != 0) {
        fprintf(stderr, "bench_storage: %s is missing (build the CLI first)\n", c.labelbin);
        return 1;
    }
    if (c.smoke) {
        snprintf(c.data, sizeof c.data, "/tmp/lb_bench_storage_XXXXXX");
        if (!mkdtemp(c.data)) {
            perror("bench_storage: mkdtemp");
            return 1;
        }
        c.tmp_data = 1;
    } else {
        if (data) snprintf(c.data, sizeof c.data, "%s", data);
        else snprintf(c.data, sizeof c.data, "%s/bench-data", exe_dir);
        if (mkdir(c.data, 0777) != 0 && errno != EEXIST) {
            perror("bench_storage: mkdir");
            return 1;
        }
    }
    /* Places: tmpfs (given, or a new folder in /dev/shm, or in the smoke
     * test the data directory) and the disks (default: the data directory). */
    if (tmpfs && !c.smoke) {
        snprintf(c.tmpfs.dir, sizeof c.tmpfs.dir, "%s", tmpfs);
    } else if (!c.smoke && access("/dev/shm", W_OK) == 0) {
        snprintf(c.tmpfs.dir, sizeof c.tmpfs.dir, "/dev/shm/lb_bench_storage_XXXXXX");
        if (!mkdtemp(c.tmpfs.dir)) {
            perror("bench_storage: mkdtemp /dev/shm");
            return 1;
        }
        c.tmp_tmpfs = 1;
    } else {
        snprintf(c.tmpfs.dir, sizeof c.tmpfs.dir, "%s/tmpfs", c.data);
    }
    if (mkdir(c.tmpfs.dir, 0777) != 0 && errno != EEXIST) {
        perror("bench_storage: mkdir --tmpfs");
        return 1;
    }
    classify(&c.tmpfs);
    if (!n_disks || c.smoke) {
        disks[0] = c.data;
        n_disks = 1;
    }
    for (int i = 0; i < n_disks; i++) {
        snprintf(c.disks[i].dir, sizeof c.disks[i].dir, "%s", disks[i]);
        if (mkdir(c.disks[i].dir, 0777) != 0 && errno != EEXIST) {
            perror("bench_storage: mkdir --disk");
            return 1;
        }
        classify(&c.disks[i]);
        fprintf(stderr, "bench_storage: disk %s: %s\n", c.disks[i].dir, c.disks[i].fs);
    }
    c.n_disks = n_disks;
    fprintf(stderr, "bench_storage: tmpfs %s: %s\n", c.tmpfs.dir, c.tmpfs.fs);

    int rc = make_inputs(&c);
    /* What was deleted on the disks before (other benchmarks, making the
     * inputs) is unknown: count it as just now. */
    c.last_delete = now_s();
    if (!rc && c.do_shard) rc = bench_shard(&c);
    if (!rc && c.do_roi) rc = bench_roi(&c);
    if (!rc && c.do_layout) rc = bench_layout(&c);
    if (c.tmp_data) rm_rf(c.data);
    if (c.tmp_tmpfs) rm_rf(c.tmpfs.dir);
    return rc ? 1 : 0;
}
