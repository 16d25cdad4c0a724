/*
 * materialize.c — the writer: any array (stored or virtual) out as a new
 * Zarr v2 or v3 dataset, block by block in parallel worker threads, with
 * atomic chunk writes, all-zero chunks skipped, cancellation and resume. It
 * is a plan (everything decided and validated, DEST prepared: a job), the
 * execution of block ranges (by any number of jobs, in any processes) and a
 * finish; lb_array_materialize is the three in one call. It never writes
 * where an input lives, and an output says it is unfinished ("labelbin":
 * {"complete": false}) until the finish.
 */

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array/array.h"
#include "codec/sharding.h"
#include "core/json.h"
#include "core/nd.h"
#include "core/path.h"
#include "core/util.h"
#include "dataset/dataset.h"
#include "format/common.h"
#include "format/format.h"
#include "format/ome.h"
#include "kernels/kernels.h"
#include "store/store.h"

/* The completion journal of an unfinished run, inside the output dataset
 * directory: one empty marker file per finished block that left at least one
 * chunk unwritten (all zero). Blocks whose every chunk file exists are
 * recognised as finished without a marker. Removed when a run completes. */
#define JOURNAL_DIR ".labelbin-done"

/* Spatial chunk edge when the source has no chunk grid to follow. */
#define DEFAULT_CHUNK 64

/* The default output codec: plain zstd, level 3 — chosen by measurement
 * (bench/bench_codecs.c) on binary 0/1 uint8 chunks binarized (9 classes)
 * from a CellMap-like synthetic volume with rough surfaces, all-zero chunks
 * left out since they are never written. 192^3 volume, 64^3 chunks (182
 * non-empty chunks, 47.7 MB), medians of 7-15 runs, one core, on a busy
 * shared machine (speeds vary by ~1.5x between runs, ratios are exact):
 *
 *   codec                        ratio   encode MB/s   decode MB/s
 *   zstd:1                       124       640-930     1360-2260
 *   zstd:3            (default)  122       780-1200    1310-2120
 *   zstd:5                       148          270-380     2050-2300
 *   zstd:9                       160          140-220     3400-5100
 *   blosc-zstd:1 bitshuffle      153          480-610      430-550
 *   blosc-zstd:3 bitshuffle      203          320-500      390-600
 *   blosc-zstd:5 bitshuffle      231          190-370      500-840
 *   blosc-zstd:3 noshuffle       124          320-740     1630-3950
 *   blosc-zstd:5 noshuffle       158          115-325     2390-5020
 *   blosc-lz4:5 shuffle           36        1400-5300     3600-10400
 *   blosc-lz4:5 bitshuffle        72          625-840      400-610
 *   blosc-lz4hc:5 bitshuffle     101          130-360      360-1340
 *   gzip:1                        83           90-140      630-1180
 *   gzip:6                       125           85-115     1020-1260
 *   lz4                           36        1840-1990     2730-3130
 *   memcpy (bound)                 1        3900-6400
 * (256^3 volume: 64^3 chunks zstd:3 141x vs blosc-zstd:3 bitshuffle 227x;
 * 128^3 chunks 150x vs 242x; same speed ordering.)
 *
 * Why zstd:3: binary label chunks compress so well that a 64^3 chunk is
 * ~2 KB with zstd and ~1.3 KB with bitshuffled blosc — both below one 4 KiB
 * filesystem block, so the extra ratio of bitshuffle saves little real space
 * while it costs about 2x on encode (the writer) and 3-4x on decode (every
 * training read). zstd:1 and zstd:3 give the same ratio and zstd:3 encoded
 * as fast or faster in every run; lz4 variants are fast but 3-4x larger,
 * gzip is slow. zstd is read by zarr-python 2/3 (numcodecs), tensorstore,
 * neuroglancer and webknossos, and Janelia's own published Zarr v2 volumes
 * use it. The encoder records the content size in the frame (older
 * numcodecs.js needs it) and no "checksum" key (numcodecs < 0.12 refuses
 * it). */
#define DEFAULT_CODEC_JSON "{\"id\":\"zstd\",\"level\":3}"

void lb_write_options_init(lb_write_options *opt) {
    if (!opt) return;
    memset(opt, 0, sizeof *opt);
    opt->struct_size = (int)sizeof *opt;
}

const char *lb_default_codec_json(void) { return DEFAULT_CODEC_JSON; }

/* ------------------------------------------------------------------------
 * The plan: everything decided before anything is written
 * ------------------------------------------------------------------------ */

typedef struct plan {
    const lb_array *a;
    lb_roi roi;                   /* output ROI, world units                */
    int dims;                     /* spatial dims                           */
    int nlead;                    /* leading non-spatial dims (0 or 1…)      */
    int ndim;                     /* nlead + dims                           */
    int64_t lead_shape[LB_MAX_DIMS];
    int64_t planes;               /* Π lead_shape (channels)                */
    int64_t group;                /* planes per stored chunk: 1 or planes   */
    int64_t vox[LB_MAX_DIMS];     /* output spatial extent, voxels          */
    int64_t chunk[LB_MAX_DIMS];   /* spatial (inner) chunk, voxels          */
    int64_t block[LB_MAX_DIMS];   /* spatial stored chunk (shard), voxels   */
    int64_t grid[LB_MAX_DIMS];    /* blocks per spatial dim                 */
    int64_t sub[LB_MAX_DIMS];     /* chunks per block per spatial dim       */
    int64_t n_sub;                /* chunks per block                       */
    int64_t n_blocks;
    int sharded;
    size_t itemsize;
    size_t chunk_elems;           /* Π chunk                                */
    size_t chunk_bytes;           /* chunk_elems × itemsize                 */
    size_t read_bytes;            /* planes × chunk_bytes                   */
    lb__dataset *ds;              /* the output                             */
    char *journal;                /* journal prefix                         */
    const char *dest;             /* as the caller named it, for messages   */
    int resume;
} plan;

/* ------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------ */

typedef struct shared {
    plan *p;
    const lb_write_options *opt;
    atomic_llong next;            /* next block index to take               */
    int64_t end;                  /* one past the last block of the range   */
    int64_t count;                /* blocks in the range                    */
    atomic_int stop;              /* an error happened or cancel was seen   */
    int canceled;                 /* a worker saw cancel with work left     */
    pthread_mutex_t lock;         /* err, progress, canceled, done          */
    int failed;
    lb_error err;
    int64_t done;                 /* blocks finished or skipped             */
} shared;

typedef struct worker {
    shared *sh;
    uint8_t *rbuf;                /* planes × block voxels                  */
    uint8_t *cbuf;                /* one full stored-or-inner chunk          */
    lb__buf *shard;               /* per plane group: its shard's inner chunks */
    uint64_t **entries;           /* per plane group: the shard's index      */
    int *shard_used;              /* per plane group: some inner chunk stored */
    lb__buf enc;                  /* one encoded inner chunk                 */
    int64_t *positive;            /* planes counters                        */
    uint64_t *counts;             /* the block's non-zero voxels per plane  */
    uint8_t *zeroed;              /* per plane: all zero in rbuf (see below) */
    size_t zeroed_bytes;          /* the plane size those flags hold for     */
    lb__workspace ws;             /* reused by every read and chunk write   */
    int64_t blocks_done, blocks_skipped, chunks_written, chunks_empty;
    int64_t bytes_written;
    lb_error err;
} worker;

/* Block b's grid index and its world ROI (clipped to the output ROI). */
static void block_geometry(const plan *p, int64_t b, int64_t *bidx,
                           int64_t *bvox, lb_roi *broi) {
    const int64_t *vs = p->a->voxel_size;
    for (int d = p->dims - 1; d >= 0; d--) {
        bidx[d] = b % p->grid[d];
        b /= p->grid[d];
    }
    broi->ndim = p->dims;
    for (int d = 0; d < p->dims; d++) {
        int64_t start = bidx[d] * p->block[d];
        int64_t n = p->vox[d] - start;
        if (n > p->block[d]) n = p->block[d];
        bvox[d] = n;
        /* No overflow: start + n <= vox and vox × vs is the ROI shape. */
        broi->offset[d] = p->roi.offset[d] + start * vs[d];
        broi->shape[d] = n * vs[d];
    }
}

/* Stored chunk index of plane group `g` of block `bidx`. */
static void chunk_index(const plan *p, int64_t g, const int64_t *bidx, int64_t *cidx) {
    if (p->group > 1) g = 0; /* every plane in one chunk */
    for (int d = p->nlead - 1; d >= 0; d--) {
        cidx[d] = g % p->lead_shape[d];
        g /= p->lead_shape[d];
    }
    for (int d = 0; d < p->dims; d++) cidx[p->nlead + d] = bidx[d];
}

static int64_t n_groups(const plan *p) { return p->group > 1 ? 1 : p->planes; }

static int marker_key(const plan *p, int64_t b, char *buf, size_t size) {
    return snprintf(buf, size, "%s/%" PRId64, p->journal, b);
}

/* A block is complete when its journal marker exists or every one of its
 * stored chunks does (chunks are written atomically and a recomputation
 * gives the same bytes, so either way nothing is left to do). */
static int block_complete(const plan *p, int64_t b, const int64_t *bidx) {
    char key[4096];
    int n = marker_key(p, b, key, sizeof key);
    if (n > 0 && (size_t)n < sizeof key && lb__store_exists(p->ds->store, key)) return 1;
    int64_t cidx[LB_MAX_DIMS];
    for (int64_t g = 0; g < n_groups(p); g++) {
        chunk_index(p, g, bidx, cidx);
        if (!lb__dataset_chunk_exists(p->ds, cidx)) return 0;
    }
    return 1;
}

static int write_marker(const plan *p, int64_t b, lb_error *err) {
    char key[4096];
    int n = marker_key(p, b, key, sizeof key);
    if (n < 0 || (size_t)n >= sizeof key)
        return lb__err(err, LB_ELIMIT, "%s: path too long", p->journal);
    return lb__store_put(p->ds->store, key, "", 0, err);
}

/* Copy plane group g's box `bvox` of one sub-block (planes × bvox in rbuf)
 * into a full chunk (group planes × chunk) at w->cbuf, the overhang 0. */
static const uint8_t *group_chunk(worker *w, int64_t g, const int64_t *bvox, int edge) {
    const plan *p = w->sh->p;
    size_t bel = 1;
    for (int d = 0; d < p->dims; d++) bel *= (size_t)bvox[d];
    size_t plane_bytes = bel * p->itemsize;
    int64_t first = p->group > 1 ? 0 : g;
    uint8_t *src = w->rbuf + (size_t)first * plane_bytes;
    /* A sparse read leaves all-zero planes unwritten: a chunk that holds
     * several planes needs them zeroed. A plane zeroed for an earlier chunk
     * of the same size and not written since (its count stayed 0: the read
     * left it alone or wrote zeros) is zero still: most channels of a
     * training crop are empty block after block. */
    if (p->group > 1 && w->zeroed_bytes != plane_bytes) {
        memset(w->zeroed, 0, (size_t)p->group);
        w->zeroed_bytes = plane_bytes;
    }
    for (int64_t k = 0; p->group > 1 && k < p->group; k++) {
        if (w->counts[first + k] != 0) {
            w->zeroed[k] = 0;
        } else if (!w->zeroed[k]) {
            memset(src + (size_t)k * plane_bytes, 0, plane_bytes);
            w->zeroed[k] = 1;
        }
    }
    if (!edge) return src; /* the planes lie one after the other already */
    static const int64_t zero[LB_MAX_DIMS];
    memset(w->cbuf, 0, (size_t)p->group * p->chunk_bytes);
    for (int64_t k = 0; k < p->group; k++)
        lb__nd_copy_box(p->dims, p->itemsize, bvox, src + (size_t)k * plane_bytes, bvox, zero,
                        w->cbuf + (size_t)k * p->chunk_bytes, p->chunk, zero);
    return w->cbuf;
}

/* Sub-block s of block bidx: its ROI, voxels, chunk index inside the shard
 * (linear) and whether it lies inside the output at all. */
static int sub_geometry(const plan *p, const int64_t *bidx, int64_t s, int64_t *svox,
                        lb_roi *sroi, int64_t *inner) {
    const int64_t *vs = p->a->voxel_size;
    int64_t sidx[LB_MAX_DIMS];
    for (int d = p->dims - 1; d >= 0; d--) {
        sidx[d] = s % p->sub[d];
        s /= p->sub[d];
    }
    /* The inner chunk's linear index in the shard's grid, which has the
     * lead dimensions first (one chunk along them). */
    *inner = 0;
    sroi->ndim = p->dims;
    for (int d = 0; d < p->dims; d++) {
        *inner = *inner * p->sub[d] + sidx[d];
        int64_t start = bidx[d] * p->block[d] + sidx[d] * p->chunk[d];
        int64_t n = p->vox[d] - start;
        if (n <= 0) return 0;
        if (n > p->chunk[d]) n = p->chunk[d];
        svox[d] = n;
        sroi->offset[d] = p->roi.offset[d] + start * vs[d];
        sroi->shape[d] = n * vs[d];
    }
    return 1;
}

/* Process block b: for each of its (inner) chunks, read every plane, then
 * write each plane group's chunk — or, sharded, encode it into the group's
 * shard, written whole at the end. All-zero chunks are not written. */
static int do_block(worker *w, int64_t b, lb_error *err) {
    const plan *p = w->sh->p;
    int64_t bidx[LB_MAX_DIMS], bvox[LB_MAX_DIMS], cidx[LB_MAX_DIMS];
    lb_roi broi;
    block_geometry(p, b, bidx, bvox, &broi);

    if (p->resume && block_complete(p, b, bidx)) {
        w->blocks_skipped++;
        return 1;
    }
    int64_t groups = n_groups(p);
    if (p->sharded)
        for (int64_t g = 0; g < groups; g++) {
            w->shard[g].size = 0;
            w->shard_used[g] = 0;
            for (int64_t i = 0; i < p->n_sub; i++)
                w->entries[g][2 * i] = w->entries[g][2 * i + 1] = LB__SHARD_EMPTY;
        }

    int skipped_any = 0, rc = 0;
    for (int64_t s = 0; s < p->n_sub; s++) {
        int64_t svox[LB_MAX_DIMS], inner = 0;
        lb_roi sroi;
        if (!sub_geometry(p, bidx, s, svox, &sroi, &inner)) continue; /* past the edge */
        size_t bel = 1;
        int edge = 0;
        for (int d = 0; d < p->dims; d++) {
            bel *= (size_t)svox[d];
            edge |= svox[d] != p->chunk[d];
        }
        size_t rsize = (size_t)p->planes * bel * p->itemsize;
        /* Planes that stay all zero are neither computed nor written. */
        rc = lb__array_read_sparse(p->a, &sroi, w->rbuf, rsize, w->counts, &w->ws, err);
        if (rc < 0) {
            char r[512];
            lb_roi_format(&sroi, r, sizeof r);
            return lb__err_prefix(err, "reading block %s", r);
        }
        for (int64_t g = 0; g < groups; g++) {
            int64_t first = p->group > 1 ? 0 : g, any = 0;
            for (int64_t k = 0; k < p->group; k++) {
                any |= w->counts[first + k] != 0;
                w->positive[first + k] += (int64_t)w->counts[first + k];
            }
            if (!any) {
                w->chunks_empty++;
                skipped_any = 1;
                continue;
            }
            const uint8_t *src = group_chunk(w, g, svox, edge);
            chunk_index(p, g, bidx, cidx);
            if (!p->sharded) {
                size_t nbytes = 0;
                rc = lb__dataset_write_chunk_io(p->ds, cidx, src, &nbytes, &w->ws.io, err);
                if (rc < 0) {
                    char key[256];
                    lb__dataset_chunk_key(p->ds, cidx, key, sizeof key);
                    return lb__err_prefix(err, "%s: chunk %s", p->ds->path, key);
                }
                w->chunks_written++;
                w->bytes_written += (int64_t)nbytes;
                continue;
            }
            /* The inner chunk, into its group's shard. */
            int64_t ext[LB_MAX_DIMS];
            for (int d = 0; d < p->nlead; d++) ext[d] = p->ds->chunks[d];
            for (int d = 0; d < p->dims; d++) ext[p->nlead + d] = svox[d];
            rc = lb__chain_encode(lb__dataset_read_chain(p->ds), &p->ds->rrepr, ext, src,
                                  &w->enc, &w->ws.io.codec, err);
            if (!rc) {
                w->entries[g][2 * inner] = w->shard[g].size;
                w->entries[g][2 * inner + 1] = w->enc.size;
                rc = lb__buf_append(&w->shard[g], w->enc.data, w->enc.size, err);
            }
            if (rc < 0) return lb__err_prefix(err, "%s: encoding an inner chunk", p->ds->path);
            w->shard_used[g] = 1;
        }
    }
    for (int64_t g = 0; p->sharded && g < groups; g++) {
        if (!w->shard_used[g]) { /* all zero: no shard at all */
            skipped_any = 1;
            continue;
        }
        chunk_index(p, g, bidx, cidx);
        rc = lb__shard_assemble(p->ds->sharding, p->n_sub, w->entries[g], w->shard[g].data,
                                w->shard[g].size, &w->ws.io.file, &w->ws.io.codec, err);
        if (!rc) rc = lb__dataset_put_chunk(p->ds, cidx, w->ws.io.file.data, w->ws.io.file.size,
                                            err);
        if (rc < 0) {
            char key[256];
            lb__dataset_chunk_key(p->ds, cidx, key, sizeof key);
            return lb__err_prefix(err, "%s: shard %s", p->ds->path, key);
        }
        w->chunks_written++;
        w->bytes_written += (int64_t)w->ws.io.file.size;
    }
    if (skipped_any) {
        rc = write_marker(p, b, err);
        if (rc < 0) return rc;
    }
    w->blocks_done++;
    return 0;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    shared *sh = w->sh;
    const lb_write_options *opt = sh->opt;
    for (;;) {
        if (atomic_load(&sh->stop)) break;
        /* Atomic: another thread may be storing it right now. */
        if (opt->cancel && __atomic_load_n(opt->cancel, __ATOMIC_RELAXED)) {
            /* Stop taking blocks; in-flight ones in other workers finish. */
            pthread_mutex_lock(&sh->lock);
            if (atomic_load(&sh->next) < sh->end) sh->canceled = 1;
            pthread_mutex_unlock(&sh->lock);
            atomic_store(&sh->stop, 1);
            break;
        }
        int64_t b = atomic_fetch_add(&sh->next, 1);
        if (b >= sh->end) break;
        int rc = do_block(w, b, &w->err);
        if (rc < 0) {
            pthread_mutex_lock(&sh->lock);
            if (!sh->failed) {
                sh->failed = 1;
                sh->err = w->err;
            }
            pthread_mutex_unlock(&sh->lock);
            atomic_store(&sh->stop, 1);
            break;
        }
        pthread_mutex_lock(&sh->lock);
        sh->done++;
        if (opt->progress) opt->progress(opt->progress_user, sh->done, sh->count);
        pthread_mutex_unlock(&sh->lock);
    }
    return NULL;
}

static void worker_free(worker *w) {
    if (!w) return;
    int64_t groups = w->sh && w->sh->p ? n_groups(w->sh->p) : 0;
    for (int64_t g = 0; w->shard && g < groups; g++) lb__buf_free(&w->shard[g]);
    for (int64_t g = 0; w->entries && g < groups; g++) free(w->entries[g]);
    free(w->shard);
    free(w->entries);
    free(w->shard_used);
    lb__buf_free(&w->enc);
    w->shard = NULL;
    w->entries = NULL;
    w->shard_used = NULL;
    free(w->rbuf);
    free(w->cbuf);
    free(w->positive);
    free(w->counts);
    free(w->zeroed);
    lb__workspace_free(&w->ws);
    w->rbuf = w->cbuf = NULL;
    w->positive = NULL;
    w->counts = NULL;
    w->zeroed = NULL;
}

static int worker_init(worker *w, shared *sh, lb_error *err) {
    memset(w, 0, sizeof *w);
    w->sh = sh;
    const plan *p = sh->p;
    /* +1: malloc(0) may return NULL for an empty plan. */
    w->rbuf = lb__malloc(p->read_bytes + 1, "block buffer", err);
    w->cbuf = lb__malloc((size_t)p->group * p->chunk_bytes + 1, "chunk buffer", err);
    w->positive = lb__calloc((size_t)p->planes + 1, sizeof *w->positive,
                             "counters", err);
    w->counts = lb__calloc((size_t)p->planes + 1, sizeof *w->counts, "counters", err);
    w->zeroed = lb__calloc((size_t)p->planes + 1, 1, "plane flags", err);
    if (!w->rbuf || !w->cbuf || !w->positive || !w->counts || !w->zeroed) {
        worker_free(w);
        return LB_ENOMEM;
    }
    if (p->sharded) {
        int64_t groups = n_groups(p);
        w->shard = lb__calloc((size_t)groups, sizeof *w->shard, "shard buffers", err);
        w->entries = lb__calloc((size_t)groups, sizeof *w->entries, "shard indexes", err);
        w->shard_used = lb__calloc((size_t)groups, sizeof *w->shard_used, "shard flags", err);
        for (int64_t g = 0; w->entries && g < groups; g++)
            if (!(w->entries[g] = lb__malloc((size_t)p->n_sub * 16, "a shard index", err))) break;
        if (!w->shard || !w->entries || !w->shard_used || !w->entries[groups - 1]) {
            worker_free(w);
            return LB_ENOMEM;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Metadata
 * ------------------------------------------------------------------------ */

static json_object *json_i64_array(const int64_t *v, int n) {
    json_object *arr = json_object_new_array();
    if (!arr) return NULL;
    for (int i = 0; i < n; i++) json_object_array_add(arr, json_object_new_int64(v[i]));
    return arr;
}

static json_object *id_json(lb_id id) {
    if (id.negative) return json_object_new_int64((int64_t)id.bits);
    return json_object_new_uint64(id.bits);
}

/* The groupings (DaCapo JSON) and background of a wrapper, for provenance. */
static int add_groupings(json_object *lb, const lb_array *a, lb_error *err) {
    const lb_groupings *g = NULL;
    lb_id background = {0, 0};
    int has_background = 0;
    if (lb__array_groupings(a, &g, &background, &has_background) != 0 || !g) return 0;
    /* lb_groupings_json formats into the groupings it is given: use a copy,
     * the array is const and may be read by other threads. */
    lb_groupings *copy = NULL;
    int rc = lb_groupings_copy(g, &copy, err);
    if (rc < 0) return rc;
    const char *text = lb_groupings_json(copy);
    json_object *gj = NULL;
    rc = text ? lb__json_parse(text, strlen(text), "groupings", &gj, err)
              : lb__err(err, LB_ENOMEM, "out of memory formatting the groupings");
    lb_groupings_free(copy);
    if (rc < 0) return rc;
    json_object_object_add(lb, "groupings", gj);
    if (has_background) json_object_object_add(lb, "background", id_json(background));
    return 0;
}

/* Keys of the "labelbin" attribute that describe the data: resume compares
 * them (with resolution, offset, axes, channels). Everything else in
 * "labelbin" — the version and whatever the caller merged in through
 * provenance_json (command line, host, time…) — is volatile: it may differ
 * between the interrupted run and the resumed one. */
static const char *const fixed_keys[] = {"kind", "source", "groupings",
                                         "background", "roi", "codec", "crop"};

static int build_attrs(const plan *p, const lb__format *f, const lb__codec *codec,
                       json_object *provenance, json_object **out, lb_error *err) {
    const lb_array *a = p->a;
    json_object *attrs = json_object_new_object();
    json_object *lb = NULL;
    if (!attrs) goto nomem;
    json_object_object_add(attrs, "resolution", json_i64_array(a->voxel_size, p->dims));
    json_object_object_add(attrs, "offset", json_i64_array(p->roi.offset, p->dims));
    json_object *axes = json_object_new_array();
    for (int i = 0; i < a->ndim; i++)
        json_object_array_add(axes, json_object_new_string(lb_array_axis(a, i)));
    json_object_object_add(attrs, "axes", axes);
    if (a->num_channels >= 0 && a->channel_names) {
        json_object *ch = json_object_new_array();
        for (int64_t i = 0; i < a->num_channels; i++)
            json_object_array_add(ch, json_object_new_string(a->channel_names[i]
                                                             ? a->channel_names[i] : ""));
        json_object_object_add(attrs, "channels", ch);
    }

    lb = json_object_new_object();
    if (!lb) goto nomem;
    if (provenance) {
        json_object_object_foreach(provenance, key, val) {
            json_object_object_add(lb, key, json_object_get(val));
        }
    }
    json_object_object_add(lb, "version", json_object_new_string(lb_version()));
    json_object_object_add(lb, "kind", json_object_new_string(lb_array_kind(a)));
    const lb_array *st = lb__array_stored(a);
    const char *src_path = st ? lb_array_path(st) : NULL;
    if (src_path) {
        /* Absolute, so that the provenance means something elsewhere and a
         * resume from another directory compares equal. */
        char *abs = strstr(src_path, "://") ? NULL : realpath(src_path, NULL); /* URLs as they are */
        json_object_object_add(lb, "source", json_object_new_string(abs ? abs : src_path));
        free(abs);
    }
    int rc = add_groupings(lb, a, err);
    if (rc >= 0 && a->vt->provenance) rc = a->vt->provenance(a, lb, err);
    if (rc < 0) {
        json_object_put(lb);
        json_object_put(attrs);
        return rc;
    }
    char roi_text[2048];
    lb_roi_format(&p->roi, roi_text, sizeof roi_text);
    json_object_object_add(lb, "roi", json_object_new_string(roi_text));
    lb_error cerr = {0};
    json_object *cj = f->codec_words(codec, &cerr);
    if (!cj && cerr.code) {
        if (err) *err = cerr;
        json_object_put(lb);
        json_object_put(attrs);
        return err ? err->code : LB_EUNSUPPORTED;
    }
    json_object_object_add(lb, "codec", cj);
    /* Written with the metadata, before any chunk; removed by the run that
     * finishes the output (mark_complete). */
    json_object_object_add(lb, LB__COMPLETE_KEY, json_object_new_boolean(0));
    json_object_object_add(attrs, LB__PROVENANCE_KEY, lb);
    *out = attrs;
    return 0;
nomem:
    json_object_put(attrs);
    return lb__err(err, LB_ENOMEM, "out of memory building attributes");
}

/* Compare the attributes of an existing output with the ones this run would
 * write, ignoring volatile provenance. On a difference: LB_EEXIST naming it. */
static int attrs_match_parsed(json_object *have, json_object *want, const char *path,
                              lb_error *err) {
    static const char *const top[] = {"resolution", "offset", "axes", "channels"};
    for (size_t i = 0; i < sizeof top / sizeof *top; i++) {
        json_object *h = lb__json_get(have, top[i]), *w = lb__json_get(want, top[i]);
        if (!json_object_equal(h, w))
            return lb__err(err, LB_EEXIST,
                           "%s: cannot resume: attribute \"%s\" differs (%s, this run "
                           "would write %s)", path, top[i],
                           h ? lb__json_string(h, 0) : "absent",
                           w ? lb__json_string(w, 0) : "absent");
    }
    json_object *hl = lb__json_get(have, LB__PROVENANCE_KEY);
    json_object *wl = lb__json_get(want, LB__PROVENANCE_KEY);
    for (size_t i = 0; i < sizeof fixed_keys / sizeof *fixed_keys; i++) {
        json_object *h = hl ? lb__json_get(hl, fixed_keys[i]) : NULL;
        json_object *w = wl ? lb__json_get(wl, fixed_keys[i]) : NULL;
        if (!json_object_equal(h, w))
            return lb__err(err, LB_EEXIST,
                           "%s: cannot resume: attribute \"labelbin.%s\" differs (%s, "
                           "this run would write %s)", path, fixed_keys[i],
                           h ? lb__json_string(h, 0) : "absent",
                           w ? lb__json_string(w, 0) : "absent");
    }
    return 0;
}

static int attrs_match(json_object *have, json_object *want_mem, const char *path,
                       lb_error *err) {
    /* `have` was read back from the ASCII text written; compare it with
     * `want` as it reads back too (a name with bytes that are not UTF-8
     * does not survive the round trip unchanged). */
    json_object *want = NULL;
    lb__buf text = {0};
    const char *plain = lb__json_string(want_mem, 0);
    int rc = plain ? lb__json_append_ascii(&text, plain, strlen(plain), err)
                   : lb__err(err, LB_ENOMEM, "out of memory serialising attributes");
    if (!rc) rc = lb__json_parse((const char *)text.data, text.size, "attributes", &want, err);
    lb__buf_free(&text);
    if (rc < 0) return rc;
    rc = attrs_match_parsed(have, want, path, err);
    json_object_put(want);
    return rc;
}

/* The OME-NGFF group attributes for DEST (0.4 for Zarr v2, 0.5 for v3). */
static json_object *ome_attrs(const plan *p, const lb__format *f, const char *dest,
                              lb_error *err) {
    const lb_array *a = p->a;
    const char *base = dest + strlen(dest);
    while (base > dest && base[-1] == '/') base--;
    const char *end = base;
    while (base > dest && base[-1] != '/') base--;
    char name[512];
    snprintf(name, sizeof name, "%.*s", (int)(end - base), base);
    const char *axes[LB_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++) axes[i] = lb_array_axis(a, i);
    lb__ome_image img = {f == &lb__format_zarr3 ? "0.5" : "0.4", name, a->ndim, axes,
                         p->nlead, a->voxel_size, p->roi.offset, "s0"};
    return lb__ome_group_attrs(&img, err);
}

/* ------------------------------------------------------------------------
 * Inputs and the unfinished state
 * ------------------------------------------------------------------------ */

static int stored_incomplete(void *user, const lb_array *st) {
    (void)user;
    return lb__attrs_incomplete(st->ds->attrs);
}

int lb_array_incomplete(const lb_array *a) {
    return lb__array_each_stored(a, stored_incomplete, NULL) ? 1 : 0;
}

/* Refuse DEST when it is, lies inside, or contains a stored array the
 * output is computed from (every one along the chain of wrappers): the
 * writer would replace or alter its own input. For OME-NGFF the array goes
 * to DEST/s0, inside DEST, so DEST itself is what is compared. Also refuse
 * an input that is itself an unfinished output, whose missing chunks would
 * read as zeros into an output that says it is complete. Nothing has been
 * created or removed yet. */
typedef struct input_check {
    lb__store *ds;
    const char *dest, *shown;
    lb_error *err;
} input_check;

/* DEST against one input location (`what`: "source dataset", "crop"). */
static int check_place(const input_check *ic, lb__store *store, const char *src,
                       const char *what) {
    lb_error *err = ic->err;
    const char *shown = ic->shown;
    lb__store_rel rel = LB__STORE_APART;
    int rc = lb__store_relation(ic->ds, ic->dest, store, src, &rel, err);
    if (rc < 0) return lb__err_prefix(err, "cannot compare \"%s\" with the source \"%s\"",
                                      shown, src);
    switch (rel) {
    case LB__STORE_SAME:
        return lb__err(err, LB_EOVERLAP, "refusing to write to \"%s\": it is the %s \"%s\" "
                       "(the output would replace its input); choose another destination",
                       shown, what, src);
    case LB__STORE_A_IN_B:
        return lb__err(err, LB_EOVERLAP, "refusing to write to \"%s\": it lies inside the %s "
                       "\"%s\" (the output would alter its input); choose a destination "
                       "outside it", shown, what, src);
    case LB__STORE_B_IN_A:
        return lb__err(err, LB_EOVERLAP, "refusing to write to \"%s\": the %s \"%s\" lies "
                       "inside it (the output would replace or alter its input); choose a "
                       "destination outside it", shown, what, src);
    case LB__STORE_APART: break;
    }
    return 0;
}

static int check_stored(void *user, const lb_array *x) {
    const input_check *ic = user;
    const char *src = x->ds->path;
    int rc = check_place(ic, x->ds->store, src, "source dataset");
    if (rc) return rc;
    if (lb__attrs_incomplete(x->ds->attrs))
        return lb__err(ic->err, LB_EFORMAT, "%s: the source is an unfinished labelbin output "
                       "(attribute labelbin.complete is false: chunks not yet written "
                       "would read as zeros); finish it with --resume first", src);
    return 0;
}

static int check_inputs(const lb_array *a, lb__store *ds, const char *dest, const char *shown,
                        lb_error *err) {
    input_check ic = {ds, dest, shown, err};
    /* Arrays over a crop: the crop's group as a whole is their input. */
    for (const lb_array *x = a; x; x = x->source)
        if (x->group_path) {
            int rc = check_place(&ic, x->group_store, x->group_path, "crop");
            if (rc) return rc;
        }
    return lb__array_each_stored(a, check_stored, &ic);
}

/* Set the output's unfinished mark (complete = 0) or remove it (1),
 * rewriting .zattrs atomically. Nothing is written when it already says
 * so. */
static int mark_complete(plan *p, int complete, lb_error *err) {
    if (lb__attrs_incomplete(p->ds->attrs) == !complete) return 0;
    json_object *attrs = NULL;
    if (json_object_deep_copy(p->ds->attrs, &attrs, NULL) != 0 || !attrs)
        return lb__err(err, LB_ENOMEM, "out of memory copying attributes");
    json_object *lb = lb__json_get(attrs, LB__PROVENANCE_KEY);
    if (!lb || !json_object_is_type(lb, json_type_object)) {
        lb = json_object_new_object();
        json_object_object_add(attrs, LB__PROVENANCE_KEY, lb);
    }
    if (complete) json_object_object_del(lb, LB__COMPLETE_KEY);
    else json_object_object_add(lb, LB__COMPLETE_KEY, json_object_new_boolean(0));
    int rc = lb__dataset_set_attrs(p->ds, attrs, err);
    json_object_put(attrs);
    return rc;
}

/* A failure after DEST was created leaves an unfinished output: say so,
 * and how to finish it, in the same message. */
static void hint_unfinished(lb_error *err, const char *dest) {
    if (!err) return;
    char hint[LB_ERROR_MESSAGE_SIZE];
    int n = snprintf(hint, sizeof hint, "; %s is incomplete: run again with --resume to "
                     "finish it", dest);
    if (n < 0) return;
    size_t room = sizeof err->message - 1, len = strlen(err->message);
    if ((size_t)n > room) return;
    if (len + (size_t)n > room) len = room - (size_t)n; /* shorten the cause, keep the hint */
    memcpy(err->message + len, hint, (size_t)n + 1);
}

/* ------------------------------------------------------------------------
 * lb_array_materialize
 * ------------------------------------------------------------------------ */

/* Validate the options and fill the geometry part of the plan. Nothing is
 * written here. */
static int make_plan(const lb_array *a, const lb_write_options *opt, plan *p,
                     lb_error *err) {
    memset(p, 0, sizeof *p);
    p->a = a;
    p->dims = a->dims;
    p->ndim = a->ndim;
    p->nlead = a->ndim - a->dims;
    if (p->dims < 1 || p->nlead < 0)
        return lb__err(err, LB_EINVAL, "%s: cannot materialise an array with %d "
                       "spatial dimensions", lb_array_kind(a), p->dims);
    if (!lb_dtype_is_integer(a->dtype))
        return lb__err(err, LB_EUNSUPPORTED, "cannot write %s data (integer dtypes only)",
                       lb_dtype_name(a->dtype));
    p->itemsize = lb_dtype_size(a->dtype);

    if (opt->roi) p->roi = *opt->roi;
    else p->roi = a->roi;
    int rc = lb__array_check_roi(a, &p->roi, err);
    if (rc < 0) return rc;
    if (lb__roi_voxels(a, &p->roi, p->vox) < 0)
        return lb__err(err, LB_ELIMIT, "ROI too large");

    p->planes = 1;
    for (int i = 0; i < p->nlead; i++) {
        p->lead_shape[i] = a->shape[i];
        if (lb__mul_i64(p->planes, a->shape[i], &p->planes))
            return lb__err(err, LB_ELIMIT, "too many channels");
    }

    /* Default chunks: the stored source's spatial chunks, so that blocks
     * line up with source chunks whenever the ROI begins on the source chunk
     * grid (each source chunk is then decoded once, by one worker). When it
     * does not, the output grid still starts at the ROI begin (output chunk
     * 0 must start at the output origin) and each block straddles up to 2^dims
     * source chunks, which neighbouring blocks decode again. */
    p->sharded = opt->shard != NULL;
    /* The default is all channels of a block in one chunk: a file per
     * block rather than one per channel, which is what costs time on disks
     * (ext4, NFS, Lustre); see docs/benchmarks.md. */
    p->group = opt->channel_chunks != LB_CHANNELS_SEPARATE && p->planes > 0 ? p->planes : 1;
    for (int d = 0; d < p->dims; d++) {
        int64_t c = DEFAULT_CHUNK, origin = 0, step = 0;
        if (opt->chunks) {
            c = opt->chunks[d];
            if (c <= 0)
                return lb__err(err, LB_EINVAL, "chunks[%d] = %" PRId64 ": expected a "
                               "positive number of voxels", d, c);
        } else if (lb__array_chunk_grid(a, d, &origin, &step) == 0 && step > 0) {
            c = step / a->voxel_size[d];
            if (c < 1) c = 1;
        }
        int64_t b = c;
        if (opt->shard) {
            b = opt->shard[d];
            if (b <= 0 || b % c != 0)
                return lb__err(err, LB_EINVAL, "shard[%d] = %" PRId64 ": expected a positive "
                               "multiple of the chunk, %" PRId64 " voxels", d, b, c);
        }
        /* Chunks larger than the output shrink to it; a shard keeps its
         * shape (a multiple of the chunk) unless it would hold no more than
         * the output. */
        if (c > p->vox[d]) c = p->vox[d] < 1 ? 1 : p->vox[d];
        if (!opt->shard) b = c;
        else if (b >= p->vox[d] && p->vox[d] % c == 0 && p->vox[d] > 0) b = p->vox[d];
        p->chunk[d] = c;
        p->block[d] = b;
        p->sub[d] = b / c;
        p->grid[d] = lb__ceildiv(p->vox[d] > 0 ? p->vox[d] : 1, b);
    }
    p->n_sub = 1;
    for (int d = 0; d < p->dims; d++)
        if (lb__mul_i64(p->n_sub, p->sub[d], &p->n_sub) || p->n_sub > LB__SHARD_MAX_INNER)
            return lb__err(err, LB_ELIMIT, "a shard of %" PRId64 " chunks is more than the limit "
                           "of %" PRId64, p->n_sub, (int64_t)LB__SHARD_MAX_INNER);
    size_t group_bytes;
    if (lb__prod_size(p->chunk, p->dims, &p->chunk_elems) ||
        lb__mul_size(p->chunk_elems, p->itemsize, &p->chunk_bytes) ||
        lb__mul_size(p->chunk_bytes, (size_t)p->group, &group_bytes) ||
        group_bytes > LB__MAX_CHUNK_BYTES ||
        lb__mul_size(p->chunk_bytes, (size_t)p->planes, &p->read_bytes))
        return lb__err(err, LB_ELIMIT, "output chunk too large (limit %zu bytes per "
                       "chunk)", (size_t)LB__MAX_CHUNK_BYTES);
    p->n_blocks = 1;
    for (int d = 0; d < p->dims; d++)
        if (lb__mul_i64(p->n_blocks, p->grid[d], &p->n_blocks))
            return lb__err(err, LB_ELIMIT, "too many blocks");
    return 0;
}

static int options_copy(const lb_write_options *in, lb_write_options *out,
                        lb_error *err) {
    lb_write_options_init(out);
    if (!in) return 0;
    /* struct_size lets an older caller pass a shorter struct; 0 (a struct
     * zero-initialised without lb_write_options_init) means all defaults
     * of this version's layout. */
    size_t n = in->struct_size == 0 ? sizeof *in : (size_t)in->struct_size;
    if (in->struct_size < 0 || n > sizeof *in || n < sizeof(int))
        return lb__err(err, LB_EINVAL, "lb_write_options.struct_size = %d: use "
                       "lb_write_options_init", in->struct_size);
    memcpy(out, in, n);
    out->struct_size = (int)sizeof *out;
    if (out->threads < 0)
        return lb__err(err, LB_EINVAL, "threads = %d: expected 0 (all cores) or more",
                       out->threads);
    if (out->overwrite && out->resume)
        return lb__err(err, LB_EINVAL, "overwrite and resume exclude each other");
    if (out->format != LB_FORMAT_ZARR2 && out->format != LB_FORMAT_ZARR3)
        return lb__err(err, LB_EINVAL, "format %d: outputs are Zarr v2 or Zarr v3",
                       (int)out->format);
    if (out->shard && out->format != LB_FORMAT_ZARR3)
        return lb__err(err, LB_EINVAL, "shards need Zarr v3 output (--format zarr3)");
    if (out->channel_chunks < 0 || out->channel_chunks > LB_CHANNELS_TOGETHER)
        return lb__err(err, LB_EINVAL, "channel_chunks = %d: expected LB_CHANNELS_SEPARATE or "
                       "LB_CHANNELS_TOGETHER", out->channel_chunks);
    return 0;
}

/* Memory the extra workers of a remote source may take together. */
#define IO_WORKERS_BYTES ((size_t)256 << 20)

/* The number of workers for `count` blocks: `threads` (all cores for 0), and more when the
 * source is read over a network — each block then waits on requests rather
 * than the CPU, so up to the store's concurrency (LB_HTTP_CONCURRENCY) run at
 * once while their buffers fit IO_WORKERS_BYTES. At most one per block. */
static int worker_count(const plan *p, int threads, int64_t count) {
    int n = threads > 0 ? threads : lb__ncpu();
    if (n < 1) n = 1;
    const lb_array *st = lb__array_stored(p->a);
    int conc = st && st->ds ? lb__store_concurrency(st->ds->store) : 1;
    if (conc > n) {
        /* a worker's buffers: the block, a chunk group, a slab of source
         * labels (at most 8 MiB; 8-byte labels at most) */
        size_t slab = 8;
        for (int d = 0; d < p->dims && slab < ((size_t)8 << 20); d++) slab *= (size_t)p->block[d];
        if (slab > ((size_t)8 << 20)) slab = (size_t)8 << 20;
        size_t each = p->read_bytes + (size_t)p->group * p->chunk_bytes + slab;
        size_t fit = IO_WORKERS_BYTES / (each ? each : 1);
        int io = fit < (size_t)conc ? (int)fit : conc;
        if (io > n) n = io;
    }
    if ((int64_t)n > count) n = (int)(count > 0 ? count : 1);
    return n;
}

/* Process blocks [first, first + count) of the plan with worker_count()
 * threads, each taking the next block as it finishes one. Counters are
 * added to `stats` (may be NULL). */
static int run_workers(plan *p, const lb_write_options *opt, int64_t first, int64_t count,
                       int threads, lb_write_stats *stats, lb_error *err) {
    int nthreads = worker_count(p, threads, count);

    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.p = p;
    sh.opt = opt;
    sh.end = first + count;
    sh.count = count;
    atomic_init(&sh.next, first);
    atomic_init(&sh.stop, 0);
    if (pthread_mutex_init(&sh.lock, NULL) != 0)
        return lb__err(err, LB_ENOMEM, "cannot create a mutex");

    int rc = 0, started = 0;
    pthread_t *tids = NULL;
    worker *ws = lb__calloc((size_t)nthreads, sizeof *ws, "workers", err);
    if (!ws) {
        rc = LB_ENOMEM;
        goto done;
    }
    for (int i = 0; i < nthreads; i++) {
        rc = worker_init(&ws[i], &sh, err);
        if (rc < 0) goto done;
    }
    if (nthreads == 1) {
        worker_main(&ws[0]);
        started = 1;
    } else {
        tids = lb__calloc((size_t)nthreads, sizeof *tids, "threads", err);
        if (!tids) {
            rc = LB_ENOMEM;
            goto done;
        }
        for (; started < nthreads; started++) {
            int e = pthread_create(&tids[started], NULL, worker_main, &ws[started]);
            if (e != 0) {
                if (started > 0) break; /* run with the ones we have */
                rc = lb__err(err, LB_ENOMEM, "cannot start a worker thread: %s",
                             strerror(e));
                goto done;
            }
        }
        for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);
    }

    if (stats) {
        if (started > stats->threads) stats->threads = started;
        for (int i = 0; i < nthreads; i++) {
            stats->blocks_done += ws[i].blocks_done;
            stats->blocks_skipped += ws[i].blocks_skipped;
            stats->chunks_written += ws[i].chunks_written;
            stats->chunks_empty += ws[i].chunks_empty;
            stats->bytes_written += ws[i].bytes_written;
            if (stats->positive)
                for (size_t c = 0; c < stats->positive_len && (int64_t)c < p->planes; c++)
                    stats->positive[c] += ws[i].positive[c];
        }
    }
    if (sh.failed) {
        if (err) *err = sh.err;
        rc = sh.err.code < 0 ? sh.err.code : LB_EIO;
    } else if (sh.canceled) {
        rc = lb__err(err, LB_ECANCELED, "%s: interrupted; run again with --resume to "
                     "finish", p->dest);
    }
done:
    if (ws)
        for (int i = 0; i < nthreads; i++) worker_free(&ws[i]);
    free(ws);
    free(tids);
    pthread_mutex_destroy(&sh.lock);
    return rc;
}

/* A run killed while creating a Zarr v2 dataset's metadata leaves a folder
 * with .zattrs (written before .zarray) and perhaps temporaries, but no
 * .zarray. On --resume that is an unfinished start, not someone else's
 * data: clear it so the run starts over. Anything else in the folder keeps
 * it refused. */
typedef struct only_zattrs_scan {
    int others;
} only_zattrs_scan;

static int scan_only_zattrs(void *user, const char *name, int is_dir) {
    only_zattrs_scan *o = user;
    if (is_dir || strcmp(name, ".zattrs") != 0) o->others = 1;
    return o->others;
}

static int clear_unfinished_start(lb__store *s, const char *path, lb_error *err) {
    int rc = lb__store_cleanup(s, path, err);
    if (rc < 0) return rc;
    only_zattrs_scan o = {0};
    lb_error ignored = {0};
    if (lb__store_list(s, path, scan_only_zattrs, &o, &ignored) != 0 || o.others) return 0;
    char *zattrs = lb__path_join(path, ".zattrs", err);
    if (!zattrs) return LB_ENOMEM;
    if (lb__store_exists(s, zattrs)) rc = lb__store_erase(s, zattrs, err);
    free(zattrs);
    return rc;
}

/* 1 when -f could replace what is at DEST (so the refusal may suggest it):
 * an array of any format or an empty folder; for OME-NGFF an array or a
 * group. Anything else is refused with -f too. */
static int replaceable(lb__store *s, const char *dest, int ome_ngff) {
    const lb__format *f = NULL;
    lb_error ignored = {0};
    if (lb__format_detect(s, dest, &f, &ignored) == 0 && f) return 1;
    if (ome_ngff) return lb__format_detect_group(s, dest) != NULL;
    return lb__store_kind(s, dest) == LB__KEY_PREFIX && lb__store_empty(s, dest);
}

/* Prepare DEST for the array (per the overwrite/resume options) and open
 * the output dataset. For OME-NGFF the group metadata is written too. */
static int open_output(plan *p, lb__store *s, const char *dest, const lb__format *f,
                       const lb_write_options *opt, lb__dataset_spec *spec, json_object *attrs,
                       json_object *group_attrs, lb_error *err) {
    int rc = 0;
    char *apath = NULL;
    lb__dataset *old = NULL;
    lb__create_mode mode = LB__CREATE_NEW;

    if (lb__store_kind(s, dest) != LB__KEY_NONE) {
        if (!opt->overwrite && !opt->resume && !replaceable(s, dest, opt->ome_ngff))
            return lb__err(err, LB_EEXIST, "%s: already exists and is not a Zarr dataset%s; "
                           "refusing to replace it: choose another destination", p->dest,
                           opt->ome_ngff ? " or group" : "");
        if (!opt->overwrite && !opt->resume)
            return lb__err(err, LB_EEXIST, "%s: already exists (use -f to overwrite or "
                           "--resume to finish an interrupted run)", p->dest);
        mode = opt->overwrite ? LB__CREATE_OVERWRITE : LB__CREATE_RESUME;
    }
    if (opt->ome_ngff) {
        apath = lb__path_join(dest, "s0", err);
        if (!apath) return LB_ENOMEM;
        if (mode == LB__CREATE_OVERWRITE) {
            /* DEST must be something we may replace: an array (a previous
             * run without --ome-ngff) or a group. */
            const lb__format *have = NULL;
            lb_error ignored = {0};
            if (lb__format_detect(s, dest, &have, &ignored) == 0 && have)
                rc = lb__store_erase_tree(s, dest, err);
            else if (!lb__format_detect_group(s, dest))
                rc = lb__err(err, LB_EEXIST, "%s: not a Zarr dataset or group; refusing "
                             "to overwrite it", p->dest);
            if (rc < 0) goto fail;
        }
    } else {
        apath = lb__strdup(dest, err);
        if (!apath) return LB_ENOMEM;
    }

    const lb__format *have_f = NULL;
    lb_error ignored = {0};
    lb__format_detect(s, apath, &have_f, &ignored);
    if (mode == LB__CREATE_RESUME && have_f && have_f != f) {
        rc = lb__err(err, LB_EEXIST, "%s: cannot resume: it is %s, this run writes %s (resume "
                     "with the format of the first run)", apath, have_f->title, f->title);
        goto fail;
    }
    if (mode == LB__CREATE_RESUME && have_f) {
        /* lb__dataset_create compares the array metadata; the attributes
         * (geometry, provenance) are compared here. */
        rc = lb__dataset_open_at(s, apath, 0, &old, err);
        if (rc < 0) {
            lb__err_prefix(err, "cannot resume");
            goto fail;
        }
        rc = attrs_match(old->attrs, attrs, apath, err);
        if (rc < 0) goto fail;
        /* Keep the first run's (volatile) provenance. */
        spec->attrs = old->attrs;
    } else {
        if (mode == LB__CREATE_RESUME && lb__store_kind(s, apath) == LB__KEY_PREFIX) {
            rc = clear_unfinished_start(s, apath, err);
            if (rc < 0) goto fail;
        }
        spec->attrs = attrs;
    }
    rc = lb__dataset_create(apath, spec, mode, &p->ds, err);
    if (rc == LB_EEXIST && mode == LB__CREATE_RESUME && err && p->group > 1 &&
        strstr(err->message, "(chunks [1, ")) {
        /* Outputs once defaulted to one chunk per channel. */
        size_t n = strlen(err->message);
        snprintf(err->message + n, sizeof err->message - n, "; it was written with one chunk "
                 "per channel: resume with --channel-chunks separate (LB_CHANNELS_SEPARATE)");
    }
    if (rc < 0) goto fail;
    if (opt->ome_ngff) {
        rc = f->create_group(s, dest, group_attrs, err);
        if (rc < 0) goto fail;
    }
    /* LB__CREATE_RESUME already removed the interrupted run's temporaries
     * inside the dataset; the group's own files may have some too. */
    if (mode == LB__CREATE_RESUME && opt->ome_ngff) {
        rc = lb__store_cleanup(s, dest, err);
        if (rc < 0) goto fail;
    }
fail:
    lb__dataset_free(old);
    free(apath);
    return rc;
}


/* Open the output a begin prepared, for another process's share of the
 * blocks: nothing is written or removed. Its array metadata (through
 * LB__CREATE_ATTACH) and its attributes must be what this process would
 * write, and it must still be marked unfinished. */
static int attach_output(plan *p, lb__store *s, const char *dest, const lb__format *f,
                         const lb_write_options *opt, lb__dataset_spec *spec,
                         json_object *attrs, lb_error *err) {
    int rc = 0;
    char *apath = opt->ome_ngff ? lb__path_join(dest, "s0", err) : lb__strdup(dest, err);
    if (!apath) return LB_ENOMEM;
    const lb__format *have_f = NULL;
    lb_error ignored = {0};
    lb__format_detect(s, apath, &have_f, &ignored);
    if (have_f && have_f != f) {
        rc = lb__err(err, LB_EEXIST, "%s: cannot attach: it is %s, this process writes %s",
                     apath, have_f->title, f->title);
        goto fail;
    }
    spec->attrs = attrs;
    rc = lb__dataset_create(apath, spec, LB__CREATE_ATTACH, &p->ds, err);
    if (rc < 0) {
        lb__err_prefix(err, "cannot attach");
        goto fail;
    }
    rc = attrs_match(p->ds->attrs, attrs, apath, err);
    if (rc < 0) goto fail;
    if (!lb__attrs_incomplete(p->ds->attrs))
        rc = lb__err(err, LB_EEXIST, "%s: cannot attach: not an unfinished output (it is "
                     "finished, or lb_write_begin has not prepared it)", apath);
fail:
    free(apath);
    return rc;
}

/* ------------------------------------------------------------------------
 * Jobs: begin or attach -> blocks (any ranges, any processes) -> finish
 * ------------------------------------------------------------------------ */

struct lb_write_job {
    plan p;
    lb_write_options opt;  /* pointer members other than progress and cancel
                              are not used after the job is made             */
    lb__store *store;
    char *dest;            /* DEST in the store                              */
    char *dest_url;        /* as the caller named it, for messages           */
};

void lb_write_job_free(lb_write_job *job) {
    if (!job) return;
    lb__dataset_free(job->p.ds);
    lb__store_free(job->store);
    free(job->dest);
    free(job->dest_url);
    free(job->p.journal);
    free(job);
}

/* Make a job: validate everything, then (begin) prepare DEST per the
 * overwrite/resume options, write its metadata and mark it unfinished, or
 * (attach) open the DEST a begin prepared. *unfinished is set once a
 * failure would leave an unfinished DEST behind. */
static int job_make(const char *caller, const lb_array *a, const char *dest_url,
                    const lb_write_options *opt_in, int attach, lb_write_job **out,
                    int *unfinished, lb_error *err) {
    lb_write_job *job = NULL;
    lb__dataset_spec spec;
    lb__codec codec;
    json_object *prov = NULL, *attrs = NULL, *group_attrs = NULL;
    int rc;

    *out = NULL;
    *unfinished = 0;
    if (!a || !dest_url || !*dest_url)
        return lb__err(err, LB_EINVAL, "%s: %s is NULL or empty", caller,
                       !a ? "the array" : "the destination");
    job = lb__calloc(1, sizeof *job, "a write job", err);
    if (!job) return LB_ENOMEM;
    job->dest_url = lb__strdup(dest_url, err);
    if (!job->dest_url) {
        rc = LB_ENOMEM;
        goto fail;
    }
    plan *p = &job->p;
    p->dest = job->dest_url;

    /* Everything is validated before anything is created. */
    rc = options_copy(opt_in, &job->opt, err);
    if (rc < 0) goto fail;
    const lb_write_options *opt = &job->opt;
    const lb__format *f = lb__format_of(opt->format);
    rc = lb__store_open(dest_url, &job->store, &job->dest, err);
    if (rc < 0) goto fail;
    lb__store *store = job->store;
    const char *dest = job->dest;
    if (!lb__store_writable(store)) {
        rc = lb__err(err, LB_EINVAL, "%s: outputs go to the file system (%s URLs are read-only)",
                     dest, lb__store_scheme(store)); /* dest: the URL without credentials */
        goto fail;
    }
    rc = check_inputs(a, store, dest, dest_url, err);
    if (rc < 0) goto fail;
    rc = make_plan(a, opt, p, err);
    p->dest = job->dest_url;
    if (rc < 0) goto fail;
    if (opt->ome_ngff && (p->nlead > 1 || p->dims < 2 || p->dims > 3)) {
        rc = lb__err(err, LB_EUNSUPPORTED, "OME-NGFF needs 2 or 3 spatial axes and at most one "
                     "channel axis (the array has %d and %d)", p->dims, p->nlead);
        goto fail;
    }
    const char *spec_text = opt->codec ? opt->codec : lb_default_codec_json();
    rc = lb__codec_parse_spec(spec_text, &codec, err);
    if (rc < 0) {
        /* The message names the spec. Whatever is wrong with it (malformed
         * JSON, an unknown id) is wrong with the caller's argument. */
        if (rc != LB_ENOMEM && err) err->code = LB_EINVAL;
        rc = rc == LB_ENOMEM ? rc : LB_EINVAL;
        goto fail;
    }
    if (opt->provenance_json) {
        rc = lb__json_parse(opt->provenance_json, strlen(opt->provenance_json),
                            "provenance", &prov, err);
        if (rc < 0) goto fail;
        if (!json_object_is_type(prov, json_type_object)) {
            rc = lb__err(err, LB_EINVAL, "provenance: expected a JSON object, got %s",
                         lb__json_type_name(prov));
            goto fail;
        }
    }
    rc = build_attrs(p, f, &codec, prov, &attrs, err);
    if (rc < 0) goto fail;
    if (opt->ome_ngff && !attach) {
        group_attrs = ome_attrs(p, f, dest, err);
        if (!group_attrs) {
            rc = err && err->code ? err->code : LB_ENOMEM;
            goto fail;
        }
    }

    memset(&spec, 0, sizeof spec);
    spec.format = opt->format;
    spec.ndim = p->ndim;
    for (int i = 0; i < p->nlead; i++) {
        spec.shape[i] = p->lead_shape[i];
        spec.chunks[i] = p->group > 1 ? p->lead_shape[i] : 1;
        if (p->sharded) spec.inner[i] = spec.chunks[i];
    }
    for (int d = 0; d < p->dims; d++) {
        spec.shape[p->nlead + d] = p->vox[d];
        spec.chunks[p->nlead + d] = p->block[d];
        if (p->sharded) spec.inner[p->nlead + d] = p->chunk[d];
    }
    spec.dtype = a->dtype;
    spec.big_endian = 0;
    spec.order_f = 0;
    spec.separator = opt->ome_ngff || opt->format == LB_FORMAT_ZARR3 ? '/' : '.';
    spec.fill_null = 0;
    spec.codec = codec;
    const char *names[LB_MAX_DIMS];
    if (opt->format == LB_FORMAT_ZARR3) { /* zarr-python 3 and xarray read these */
        for (int i = 0; i < a->ndim; i++) names[i] = lb_array_axis(a, i);
        spec.dim_names = names;
    }
    p->resume = opt->resume;

    if (attach) {
        rc = attach_output(p, store, dest, f, opt, &spec, attrs, err);
        if (rc < 0) goto fail;
    } else {
        int existed = lb__store_kind(store, dest) != LB__KEY_NONE;
        rc = open_output(p, store, dest, f, opt, &spec, attrs, group_attrs, err);
        /* The system refused a write of a new DEST's metadata (a full disk):
         * what is there is an unfinished start that --resume clears. */
        *unfinished = rc == LB_EIO && !existed && lb__store_kind(store, dest) != LB__KEY_NONE;
        if (rc < 0) goto fail;
        /* From here on a failure leaves DEST unfinished, and it says so: a
         * fresh output is marked in the metadata just written; a resumed one
         * that is not (finished, or written by an older version) is marked
         * before any chunk changes. */
        *unfinished = 1;
        rc = mark_complete(p, 0, err);
        if (rc < 0) goto fail;
    }
    p->journal = lb__path_join(p->ds->path, JOURNAL_DIR, err);
    if (!p->journal) {
        rc = LB_ENOMEM;
        goto fail;
    }
    *out = job;
    job = NULL;
fail:
    json_object_put(prov);
    json_object_put(attrs);
    json_object_put(group_attrs);
    lb_write_job_free(job);
    return rc;
}

/* Finished: a complete DEST holds only metadata and chunks, and the mark
 * goes last, once nothing is left to do. */
static int job_finish(lb_write_job *job, lb_error *err) {
    int rc = lb__store_erase_tree(job->p.ds->store, job->p.journal, err);
    if (rc < 0) return rc;
    return mark_complete(&job->p, 1, err);
}

static void stats_reset(lb_write_stats *stats) {
    if (!stats) return;
    int64_t *pos = stats->positive;
    size_t pos_len = stats->positive_len;
    memset(stats, 0, sizeof *stats);
    stats->positive = pos;
    stats->positive_len = pos ? pos_len : 0;
    for (size_t i = 0; i < stats->positive_len; i++) pos[i] = 0;
}

int lb_write_begin(const lb_array *a, const char *dest, const lb_write_options *opt,
                   lb_write_job **out, lb_error *err) {
    if (!out) return lb__err(err, LB_EINVAL, "lb_write_begin: out is NULL");
    int unfinished = 0;
    int rc = job_make("lb_write_begin", a, dest, opt, 0, out, &unfinished, err);
    if (rc < 0 && unfinished) hint_unfinished(err, dest);
    return rc;
}

int lb_write_attach(const lb_array *a, const char *dest, const lb_write_options *opt,
                    lb_write_job **out, lb_error *err) {
    if (!out) return lb__err(err, LB_EINVAL, "lb_write_attach: out is NULL");
    int unfinished = 0;
    return job_make("lb_write_attach", a, dest, opt, 1, out, &unfinished, err);
}

int64_t lb_write_block_count(const lb_write_job *job) { return job ? job->p.n_blocks : 0; }

int lb_write_blocks(lb_write_job *job, int64_t first, int64_t count, int threads,
                    lb_write_stats *stats, lb_error *err) {
    if (!job) return lb__err(err, LB_EINVAL, "lb_write_blocks: the job is NULL");
    if (threads < 0)
        return lb__err(err, LB_EINVAL, "threads = %d: expected 0 (all cores) or more", threads);
    if (first < 0 || count < 0 || first > job->p.n_blocks || count > job->p.n_blocks - first)
        return lb__err(err, LB_EINVAL, "blocks %" PRId64 " + %" PRId64 ": outside the job's "
                       "%" PRId64 " blocks", first, count, job->p.n_blocks);
    if (stats) stats->blocks_total = job->p.n_blocks;
    if (count == 0) return 0;
    int rc = run_workers(&job->p, &job->opt, first, count, threads, stats, err);
    /* The canceled message already says how to finish. */
    if (rc < 0 && rc != LB_ECANCELED) hint_unfinished(err, job->dest_url);
    return rc;
}

int lb_write_finish(lb_write_job *job, lb_error *err) {
    if (!job) return lb__err(err, LB_EINVAL, "lb_write_finish: the job is NULL");
    int rc = job_finish(job, err);
    if (rc < 0) hint_unfinished(err, job->dest_url);
    return rc;
}

/* ------------------------------------------------------------------------
 * lb_array_materialize: begin, every block here, finish
 * ------------------------------------------------------------------------ */

int lb_array_materialize(const lb_array *a, const char *dest_url,
                         const lb_write_options *opt_in, lb_write_stats *stats,
                         lb_error *err) {
    lb_write_job *job = NULL;
    int unfinished = 0; /* a failure now leaves an unfinished DEST */
    stats_reset(stats);
    int rc = job_make("lb_array_materialize", a, dest_url, opt_in, 0, &job, &unfinished, err);
    if (rc < 0) goto fail;
    if (stats) stats->blocks_total = job->p.n_blocks;
    rc = run_workers(&job->p, &job->opt, 0, job->p.n_blocks, job->opt.threads, stats, err);
    if (rc < 0) goto fail;
    rc = job_finish(job, err);
fail:
    /* The canceled message already says how to finish. */
    if (rc < 0 && unfinished && rc != LB_ECANCELED) hint_unfinished(err, dest_url);
    lb_write_job_free(job);
    return rc;
}
