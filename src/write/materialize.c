/*
 * materialize.c — lb_array_materialize: write any array (stored or virtual)
 * out as a new Zarr v2 dataset, block by block in parallel worker threads,
 * with atomic chunk writes, all-zero chunks skipped, cancellation and resume.
 * It never writes where an input lives, and an output says it is unfinished
 * ("labelbin": {"complete": false}) until the run that completes it.
 */
#include "array/array.h"
#include "codec/codec.h"
#include "dataset/dataset.h"
#include "core/json.h"
#include "kernels/kernels.h"
#include "write/materialize.h"
#include "store/store.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    int64_t vox[LB_MAX_DIMS];     /* output spatial extent, voxels          */
    int64_t chunk[LB_MAX_DIMS];   /* spatial chunk, voxels                  */
    int64_t grid[LB_MAX_DIMS];    /* blocks per spatial dim                 */
    int64_t n_blocks;
    size_t itemsize;
    size_t chunk_elems;           /* Π chunk                                */
    size_t chunk_bytes;           /* chunk_elems × itemsize                 */
    size_t read_bytes;            /* planes × chunk_bytes                   */
    lb__dataset *ds;              /* the output                             */
    char *journal;                /* journal directory                      */
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
    uint8_t *cbuf;                /* one full chunk (edge padding)          */
    int64_t *positive;            /* planes counters                        */
    uint64_t *counts;             /* the block's non-zero voxels per plane  */
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
        int64_t start = bidx[d] * p->chunk[d];
        int64_t n = p->vox[d] - start;
        if (n > p->chunk[d]) n = p->chunk[d];
        bvox[d] = n;
        /* No overflow: start + n <= vox and vox × vs is the ROI shape. */
        broi->offset[d] = p->roi.offset[d] + start * vs[d];
        broi->shape[d] = n * vs[d];
    }
}

/* Full chunk index of plane `plane` of block `bidx`. */
static void chunk_index(const plan *p, int64_t plane, const int64_t *bidx,
                        int64_t *cidx) {
    for (int d = p->nlead - 1; d >= 0; d--) {
        cidx[d] = plane % p->lead_shape[d];
        plane /= p->lead_shape[d];
    }
    for (int d = 0; d < p->dims; d++) cidx[p->nlead + d] = bidx[d];
}

static int marker_path(const plan *p, int64_t b, char *buf, size_t size) {
    return snprintf(buf, size, "%s/%" PRId64, p->journal, b);
}

/* A block is complete when its journal marker exists or every one of its
 * chunk files does (chunks are written atomically and a recomputation gives
 * the same bytes, so either way nothing is left to do). */
static int block_complete(const plan *p, int64_t b, const int64_t *bidx) {
    char path[4096];
    int n = marker_path(p, b, path, sizeof path);
    if (n > 0 && (size_t)n < sizeof path && lb__store_exists(path)) return 1;
    int64_t cidx[LB_MAX_DIMS];
    for (int64_t c = 0; c < p->planes; c++) {
        chunk_index(p, c, bidx, cidx);
        if (!lb__dataset_chunk_exists(p->ds, cidx)) return 0;
    }
    return 1;
}

static int write_marker(const plan *p, int64_t b, lb_error *err) {
    char path[4096];
    int n = marker_path(p, b, path, sizeof path);
    if (n < 0 || (size_t)n >= sizeof path)
        return lb__err(err, LB_ELIMIT, "%s: path too long", p->journal);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return lb__err_errno(err, errno, "cannot create", path);
    close(fd);
    return 0;
}

/* Process block b: read, then one chunk per plane. */
static int do_block(worker *w, int64_t b, lb_error *err) {
    const plan *p = w->sh->p;
    int64_t bidx[LB_MAX_DIMS], bvox[LB_MAX_DIMS], cidx[LB_MAX_DIMS];
    int64_t chunk_full[LB_MAX_DIMS], zero[LB_MAX_DIMS] = {0};
    lb_roi broi;
    block_geometry(p, b, bidx, bvox, &broi);

    if (p->resume && block_complete(p, b, bidx)) {
        w->blocks_skipped++;
        return 1;
    }

    size_t bel = 1;
    int edge = 0;
    for (int d = 0; d < p->dims; d++) {
        bel *= (size_t)bvox[d]; /* <= chunk_elems, checked in the plan */
        if (bvox[d] != p->chunk[d]) edge = 1;
        chunk_full[d] = p->chunk[d];
    }
    size_t plane_bytes = bel * p->itemsize;
    size_t rsize = (size_t)p->planes * plane_bytes;
    /* Planes that stay all zero are neither computed nor written. */
    int rc = lb__array_read_sparse(p->a, &broi, w->rbuf, rsize, w->counts, &w->ws, err);
    if (rc < 0) {
        char r[512];
        lb_roi_format(&broi, r, sizeof r);
        return lb__err_prefix(err, "reading block %s", r);
    }

    int skipped_any = 0;
    for (int64_t c = 0; c < p->planes; c++) {
        const uint8_t *plane_data = w->rbuf + (size_t)c * plane_bytes;
        if (w->counts[c] == 0) {
            w->chunks_empty++;
            skipped_any = 1;
            continue;
        }
        w->positive[c] += (int64_t)w->counts[c];
        const void *src = plane_data;
        if (edge) {
            /* Zarr v2 stores edge chunks full size; the overhang holds the
             * fill value (0). */
            memset(w->cbuf, 0, p->chunk_bytes);
            lb__copy_box(p->dims, p->itemsize, bvox, plane_data, bvox, zero,
                         w->cbuf, chunk_full, zero);
            src = w->cbuf;
        }
        chunk_index(p, c, bidx, cidx);
        size_t nbytes = 0;
        rc = lb__dataset_write_chunk_io(p->ds, cidx, src, &nbytes, &w->ws.io, err);
        if (rc < 0) {
            char key[256];
            lb__dataset_chunk_key(p->ds, cidx, key, sizeof key);
            return lb__err_prefix(err, "%s: chunk %s", p->ds->path, key);
        }
        w->chunks_written++;
        w->bytes_written += (int64_t)nbytes;
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
            if (atomic_load(&sh->next) < sh->p->n_blocks) sh->canceled = 1;
            pthread_mutex_unlock(&sh->lock);
            atomic_store(&sh->stop, 1);
            break;
        }
        int64_t b = atomic_fetch_add(&sh->next, 1);
        if (b >= sh->p->n_blocks) break;
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
        if (opt->progress) opt->progress(opt->progress_user, sh->done, sh->p->n_blocks);
        pthread_mutex_unlock(&sh->lock);
    }
    return NULL;
}

static void worker_free(worker *w) {
    if (!w) return;
    free(w->rbuf);
    free(w->cbuf);
    free(w->positive);
    free(w->counts);
    lb__workspace_free(&w->ws);
    w->rbuf = w->cbuf = NULL;
    w->positive = NULL;
    w->counts = NULL;
}

static int worker_init(worker *w, shared *sh, lb_error *err) {
    memset(w, 0, sizeof *w);
    w->sh = sh;
    const plan *p = sh->p;
    /* +1: malloc(0) may return NULL for an empty plan. */
    w->rbuf = lb__malloc(p->read_bytes + 1, "block buffer", err);
    w->cbuf = lb__malloc(p->chunk_bytes + 1, "chunk buffer", err);
    w->positive = lb__calloc((size_t)p->planes + 1, sizeof *w->positive,
                             "counters", err);
    w->counts = lb__calloc((size_t)p->planes + 1, sizeof *w->counts, "counters", err);
    if (!w->rbuf || !w->cbuf || !w->positive || !w->counts) {
        worker_free(w);
        return LB_ENOMEM;
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
                                         "background", "roi", "codec"};

static int build_attrs(const plan *p, const lb__codec *codec,
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
        char *abs = realpath(src_path, NULL);
        json_object_object_add(lb, "source", json_object_new_string(abs ? abs : src_path));
        free(abs);
    }
    int rc = add_groupings(lb, a, err);
    if (rc < 0) {
        json_object_put(lb);
        json_object_put(attrs);
        return rc;
    }
    char roi_text[2048];
    lb_roi_format(&p->roi, roi_text, sizeof roi_text);
    json_object_object_add(lb, "roi", json_object_new_string(roi_text));
    json_object *cj = lb__codec_to_zarr2(codec, err);
    if (!cj && codec->id != LB__CODEC_RAW) {
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

/* The OME-NGFF 0.4 group attributes for DEST. */
static json_object *ome_attrs(const plan *p, const char *dest) {
    const lb_array *a = p->a;
    const char *base = dest + strlen(dest);
    while (base > dest && base[-1] == '/') base--;
    const char *end = base;
    while (base > dest && base[-1] != '/') base--;

    json_object *root = json_object_new_object();
    json_object *ms = json_object_new_array();
    json_object *m = json_object_new_object();
    json_object *axes = json_object_new_array();
    json_object *scale = json_object_new_array();
    json_object *trans = json_object_new_array();
    json_object_object_add(root, "multiscales", ms);
    json_object_array_add(ms, m);
    json_object_object_add(m, "version", json_object_new_string("0.4"));
    json_object_object_add(m, "name", json_object_new_string_len(base, (int)(end - base)));
    json_object_object_add(m, "axes", axes);
    for (int i = 0; i < a->ndim; i++) {
        json_object *ax = json_object_new_object();
        json_object_object_add(ax, "name", json_object_new_string(lb_array_axis(a, i)));
        if (i < p->nlead) {
            json_object_object_add(ax, "type", json_object_new_string("channel"));
            json_object_array_add(scale, json_object_new_int64(1));
            json_object_array_add(trans, json_object_new_int64(0));
        } else {
            int d = i - p->nlead;
            json_object_object_add(ax, "type", json_object_new_string("space"));
            json_object_object_add(ax, "unit", json_object_new_string("nanometer"));
            json_object_array_add(scale, json_object_new_int64(a->voxel_size[d]));
            json_object_array_add(trans, json_object_new_int64(p->roi.offset[d]));
        }
        json_object_array_add(axes, ax);
    }
    json_object *datasets = json_object_new_array();
    json_object *ds = json_object_new_object();
    json_object *cts = json_object_new_array();
    json_object *s = json_object_new_object(), *t = json_object_new_object();
    json_object_object_add(s, "type", json_object_new_string("scale"));
    json_object_object_add(s, "scale", scale);
    json_object_object_add(t, "type", json_object_new_string("translation"));
    json_object_object_add(t, "translation", trans);
    json_object_array_add(cts, s);
    json_object_array_add(cts, t);
    json_object_object_add(ds, "path", json_object_new_string("s0"));
    json_object_object_add(ds, "coordinateTransformations", cts);
    json_object_array_add(datasets, ds);
    json_object_object_add(m, "datasets", datasets);
    return root;
}

/* ------------------------------------------------------------------------
 * Inputs and the unfinished state
 * ------------------------------------------------------------------------ */

int lb__attrs_incomplete(json_object *attrs) {
    json_object *c = lb__json_get(lb__json_get(attrs, LB__PROVENANCE_KEY), LB__COMPLETE_KEY);
    return c && json_object_is_type(c, json_type_boolean) && !json_object_get_boolean(c);
}

int lb_array_incomplete(const lb_array *a) {
    for (; a; a = a->source)
        if (a->ds && lb__attrs_incomplete(a->ds->attrs)) return 1;
    return 0;
}

/* Refuse DEST when it is, lies inside, or contains a stored array the
 * output is computed from (every one along the chain of wrappers): the
 * writer would replace or alter its own input. For OME-NGFF the array goes
 * to DEST/s0, inside DEST, so DEST itself is what is compared. Also refuse
 * an input that is itself an unfinished output, whose missing chunks would
 * read as zeros into an output that says it is complete. Nothing has been
 * created or removed yet. */
static int check_inputs(const lb_array *a, const char *dest, lb_error *err) {
    for (const lb_array *x = a; x; x = x->source) {
        if (!x->ds) continue;
        const char *src = x->ds->path;
        lb__path_rel rel = LB__PATHS_APART;
        int rc = lb__path_relation(dest, src, &rel, err);
        if (rc < 0) return lb__err_prefix(err, "cannot compare \"%s\" with the source \"%s\"",
                                          dest, src);
        switch (rel) {
        case LB__PATHS_SAME:
            return lb__err(err, LB_EOVERLAP, "refusing to write to \"%s\": it is the source "
                           "dataset \"%s\" (the output would replace its input); choose "
                           "another destination", dest, src);
        case LB__PATH_A_IN_B:
            return lb__err(err, LB_EOVERLAP, "refusing to write to \"%s\": it lies inside "
                           "the source dataset \"%s\" (the output would alter its input); "
                           "choose a destination outside it", dest, src);
        case LB__PATH_B_IN_A:
            return lb__err(err, LB_EOVERLAP, "refusing to write to \"%s\": the source "
                           "dataset \"%s\" lies inside it (the output would replace or "
                           "alter its input); choose a destination outside it", dest, src);
        case LB__PATHS_APART: break;
        }
        if (lb__attrs_incomplete(x->ds->attrs))
            return lb__err(err, LB_EFORMAT, "%s: the source is an unfinished labelbin output "
                           "(attribute labelbin.complete is false: chunks not yet written "
                           "would read as zeros); finish it with --resume first", src);
    }
    return 0;
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
        if (c > p->vox[d]) c = p->vox[d];
        if (c < 1) c = 1;
        p->chunk[d] = c;
        p->grid[d] = lb__ceildiv(p->vox[d], c);
    }
    if (lb__prod_size(p->chunk, p->dims, &p->chunk_elems) ||
        lb__mul_size(p->chunk_elems, p->itemsize, &p->chunk_bytes) ||
        p->chunk_bytes > LB__MAX_CHUNK_BYTES ||
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
    return 0;
}

static int run_workers(plan *p, const lb_write_options *opt, lb_write_stats *stats,
                       lb_error *err) {
    int nthreads = opt->threads > 0 ? opt->threads : lb__ncpu();
    if (nthreads < 1) nthreads = 1;
    if ((int64_t)nthreads > p->n_blocks) nthreads = (int)(p->n_blocks > 0 ? p->n_blocks : 1);

    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.p = p;
    sh.opt = opt;
    atomic_init(&sh.next, 0);
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
        stats->threads = started;
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

/* A run killed while creating the dataset's metadata leaves a folder with
 * .zattrs (written before .zarray) and perhaps temporaries, but no
 * .zarray. On --resume that is an unfinished start, not someone else's
 * data: clear it so the run starts over. Anything else in the folder
 * keeps it refused. */
static int clear_unfinished_start(const char *path, lb_error *err) {
    int rc = lb__store_remove_temps(path, err);
    if (rc < 0) return rc;
    DIR *dir = opendir(path);
    if (!dir) return 0; /* vanished or unreadable: lb__dataset_create reports it */
    int only_zattrs = 1;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        const char *nm = de->d_name;
        if (strcmp(nm, ".") && strcmp(nm, "..") && strcmp(nm, ".zattrs")) only_zattrs = 0;
    }
    closedir(dir);
    if (!only_zattrs) return 0;
    char *zattrs = lb__path_join(path, ".zattrs", err);
    if (!zattrs) return LB_ENOMEM;
    if (lb__store_is_file(zattrs)) rc = lb__store_unlink(zattrs, err);
    free(zattrs);
    return rc;
}

/* 1 when `name` in `dir` is a JSON object file whose `key` is present. */
static int json_file_has(const char *dir, const char *name, const char *key) {
    char *p = lb__path_join(dir, name, NULL);
    json_object *o = NULL;
    int yes = p && lb__json_read_file(p, &o, NULL) == 0 && lb__json_get(o, key) != NULL;
    json_object_put(o);
    free(p);
    return yes;
}

/* 1 when -f could replace what is at DEST (so the refusal may suggest it):
 * a dataset (Zarr v2, v3 or N5) or an empty folder; for OME-NGFF a
 * dataset or a Zarr group. Anything else is refused with -f too. */
static int replaceable(const char *dest, int ome_ngff) {
    char *zarray = lb__path_join(dest, ".zarray", NULL);
    char *zgroup = lb__path_join(dest, ".zgroup", NULL);
    int yes = (zarray && lb__store_exists(zarray)) ||
              (ome_ngff ? zgroup && lb__store_is_file(zgroup)
                        : lb__store_is_empty_dir(dest) ||
                              json_file_has(dest, "attributes.json", "dimensions") ||
                              json_file_has(dest, "zarr.json", "node_type"));
    free(zarray);
    free(zgroup);
    return yes;
}

/* Prepare DEST for the array (per the overwrite/resume options) and open
 * the output dataset. For OME-NGFF the group metadata is written too. */
static int open_output(plan *p, const char *dest, const lb_write_options *opt,
                       lb__dataset_spec *spec, json_object *attrs,
                       json_object *group_attrs, lb_error *err) {
    int rc = 0;
    char *apath = NULL;
    lb__dataset *old = NULL;
    lb__create_mode mode = LB__CREATE_NEW;

    if (lb__store_exists(dest)) {
        if (!opt->overwrite && !opt->resume && !replaceable(dest, opt->ome_ngff))
            return lb__err(err, LB_EEXIST, "%s: already exists and is not a Zarr dataset%s; "
                           "refusing to replace it: choose another destination", dest,
                           opt->ome_ngff ? " or group" : "");
        if (!opt->overwrite && !opt->resume)
            return lb__err(err, LB_EEXIST, "%s: already exists (use -f to overwrite or "
                           "--resume to finish an interrupted run)", dest);
        mode = opt->overwrite ? LB__CREATE_OVERWRITE : LB__CREATE_RESUME;
    }
    if (opt->ome_ngff) {
        apath = lb__path_join(dest, "s0", err);
        if (!apath) return LB_ENOMEM;
        if (mode == LB__CREATE_OVERWRITE) {
            /* DEST must be something we may replace: a dataset (a previous
             * run without --ome-ngff) or a Zarr group. */
            char *zarray = lb__path_join(dest, ".zarray", err);
            char *zgroup = lb__path_join(dest, ".zgroup", err);
            if (!zarray || !zgroup) rc = LB_ENOMEM;
            else if (lb__store_is_file(zarray)) rc = lb__store_remove_tree(dest, err);
            else if (!lb__store_is_file(zgroup))
                rc = lb__err(err, LB_EEXIST, "%s: not a Zarr dataset or group; refusing "
                             "to overwrite it", dest);
            free(zarray);
            free(zgroup);
            if (rc < 0) goto fail;
        }
    } else {
        apath = lb__strdup(dest, err);
        if (!apath) return LB_ENOMEM;
    }

    char *zarray = lb__path_join(apath, ".zarray", err);
    if (!zarray) {
        rc = LB_ENOMEM;
        goto fail;
    }
    int have_dataset = lb__store_is_file(zarray);
    free(zarray);
    if (mode == LB__CREATE_RESUME && have_dataset) {
        /* lb__dataset_create compares the array metadata; the attributes
         * (geometry, provenance) are compared here. */
        rc = lb__dataset_open(apath, 0, &old, err);
        if (rc < 0) {
            lb__err_prefix(err, "cannot resume");
            goto fail;
        }
        rc = attrs_match(old->attrs, attrs, apath, err);
        if (rc < 0) goto fail;
        /* Keep the first run's (volatile) provenance. */
        spec->attrs = old->attrs;
    } else {
        if (mode == LB__CREATE_RESUME && lb__store_is_dir(apath)) {
            rc = clear_unfinished_start(apath, err);
            if (rc < 0) goto fail;
        }
        spec->attrs = attrs;
    }
    rc = lb__dataset_create(apath, spec, mode, &p->ds, err);
    if (rc < 0) goto fail;
    if (opt->ome_ngff) {
        json_object *zg = json_object_new_object();
        json_object_object_add(zg, "zarr_format", json_object_new_int(2));
        rc = lb__meta_write(dest, ".zgroup", zg, err);
        json_object_put(zg);
        if (rc < 0) goto fail;
        rc = lb__meta_write(dest, ".zattrs", group_attrs, err);
        if (rc < 0) goto fail;
    }
    /* LB__CREATE_RESUME already removed the interrupted run's temporaries
     * inside the dataset; the group's own files may have some too. */
    if (mode == LB__CREATE_RESUME && opt->ome_ngff) {
        rc = lb__store_remove_temps(dest, err);
        if (rc < 0) goto fail;
    }
fail:
    lb__dataset_free(old);
    free(apath);
    return rc;
}

int lb_array_materialize(const lb_array *a, const char *dest,
                         const lb_write_options *opt_in, lb_write_stats *stats,
                         lb_error *err) {
    lb_write_options opt;
    plan p;
    lb__dataset_spec spec;
    lb__codec codec;
    json_object *prov = NULL, *attrs = NULL, *group_attrs = NULL;
    int rc, unfinished = 0; /* a failure now leaves an unfinished DEST */

    memset(&p, 0, sizeof p);
    if (!a || !dest || !*dest)
        return lb__err(err, LB_EINVAL, "lb_array_materialize: %s is NULL or empty",
                       !a ? "the array" : "the destination");
    if (stats) {
        int64_t *pos = stats->positive;
        size_t pos_len = stats->positive_len;
        memset(stats, 0, sizeof *stats);
        stats->positive = pos;
        stats->positive_len = pos ? pos_len : 0;
        for (size_t i = 0; i < stats->positive_len; i++) pos[i] = 0;
    }

    /* Everything is validated before anything is created. */
    rc = options_copy(opt_in, &opt, err);
    if (rc < 0) return rc;
    rc = check_inputs(a, dest, err);
    if (rc < 0) return rc;
    rc = make_plan(a, &opt, &p, err);
    if (rc < 0) return rc;
    if (opt.ome_ngff && (p.nlead > 1 || p.dims < 2 || p.dims > 3))
        return lb__err(err, LB_EUNSUPPORTED, "OME-NGFF 0.4 needs 2 or 3 spatial axes and "
                       "at most one channel axis (the array has %d and %d)", p.dims,
                       p.nlead);
    const char *spec_text = opt.codec ? opt.codec : lb_default_codec_json();
    rc = lb__codec_parse_spec(spec_text, &codec, err);
    if (rc < 0) {
        /* The message names the spec. Whatever is wrong with it (malformed
         * JSON, an unknown id) is wrong with the caller's argument. */
        if (rc != LB_ENOMEM && err) err->code = LB_EINVAL;
        return rc == LB_ENOMEM ? rc : LB_EINVAL;
    }
    if (opt.provenance_json) {
        rc = lb__json_parse(opt.provenance_json, strlen(opt.provenance_json),
                            "provenance", &prov, err);
        if (rc < 0) return rc;
        if (!json_object_is_type(prov, json_type_object)) {
            json_object_put(prov);
            return lb__err(err, LB_EINVAL, "provenance: expected a JSON object, got %s",
                           lb__json_type_name(prov));
        }
    }
    rc = build_attrs(&p, &codec, prov, &attrs, err);
    if (rc < 0) goto fail;
    if (opt.ome_ngff) {
        group_attrs = ome_attrs(&p, dest);
        if (!group_attrs) {
            rc = lb__err(err, LB_ENOMEM, "out of memory building OME-NGFF metadata");
            goto fail;
        }
    }

    memset(&spec, 0, sizeof spec);
    spec.format = LB_FORMAT_ZARR2;
    spec.ndim = p.ndim;
    for (int i = 0; i < p.nlead; i++) {
        spec.shape[i] = p.lead_shape[i];
        spec.chunks[i] = 1;
    }
    for (int d = 0; d < p.dims; d++) {
        spec.shape[p.nlead + d] = p.vox[d];
        spec.chunks[p.nlead + d] = p.chunk[d];
    }
    spec.dtype = a->dtype;
    spec.big_endian = 0;
    spec.order_f = 0;
    spec.separator = opt.ome_ngff ? '/' : '.';
    spec.fill_null = 0;
    spec.codec = codec;
    p.resume = opt.resume;
    p.dest = dest;

    int existed = lb__store_exists(dest);
    rc = open_output(&p, dest, &opt, &spec, attrs, group_attrs, err);
    /* The system refused a write of a new DEST's metadata (a full disk):
     * what is there is an unfinished start that --resume clears. */
    unfinished = rc == LB_EIO && !existed && lb__store_exists(dest);
    if (rc < 0) goto fail;
    /* From here on a failure leaves DEST unfinished, and it says so: a
     * fresh output is marked in the metadata just written; a resumed one
     * that is not (finished, or written by an older version) is marked
     * before any chunk changes. */
    unfinished = 1;
    rc = mark_complete(&p, 0, err);
    if (rc < 0) goto fail;
    p.journal = lb__path_join(p.ds->path, JOURNAL_DIR, err);
    if (!p.journal) {
        rc = LB_ENOMEM;
        goto fail;
    }
    rc = lb__store_mkdirs(p.journal, err);
    if (rc < 0) goto fail;

    if (stats) stats->blocks_total = p.n_blocks;
    rc = run_workers(&p, &opt, stats, err);
    if (rc < 0) goto fail;
    /* Finished: a complete DEST holds only metadata and chunks, and the
     * mark goes last, once nothing is left to do. */
    rc = lb__store_remove_tree(p.journal, err);
    if (rc < 0) goto fail;
    rc = mark_complete(&p, 1, err);

fail:
    /* The canceled message already says how to finish. */
    if (rc < 0 && unfinished && rc != LB_ECANCELED) hint_unfinished(err, dest);
    json_object_put(prov);
    json_object_put(attrs);
    json_object_put(group_attrs);
    lb__dataset_free(p.ds);
    free(p.journal);
    return rc;
}
