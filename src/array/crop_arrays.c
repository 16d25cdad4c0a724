/*
 * crop_arrays.c — targets, masks and three-state arrays over a CellMap crop
 * (docs/semantics.md §5): the three-valued rule evaluated from the
 * per-class arrays, computed on read in blocks of the classes' chunk grid.
 *
 * How: every class read gets a bit. For a block of voxels, one pass per
 * class sets its bit in P (present) or U (unknown) — absent sets neither.
 * A group is then three words per voxel: its class bits G (a group class
 * without its own array contributes its members' bits; an id whose class
 * the crop lacks makes the group "constant unknown"), and with inferred
 * negatives the bits D of the crop's classes disjoint from it:
 *   target = (P & G) != 0
 *   known  = target || (!const_unknown && (U & G) == 0) || (P & D) != 0
 * (when no class of G is present, every class of G is absent or unknown:
 * all absent exactly when none is unknown). Cost O(voxels × (classes +
 * groups)), whatever the number of ids the groups list.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "array/array.h"
#include "array/crop.h"
#include "array/crop_kernel.h"
#include "core/json.h"

/* A block holds at most this many voxels, and the labels of all its
 * classes at most MAX_BLOCK_LABEL_BYTES: a worker's memory stays bounded
 * however many classes a crop has. */
#define MAX_BLOCK_VOXELS ((int64_t)1 << 20)
#define MAX_BLOCK_LABEL_BYTES ((int64_t)64 << 20)

typedef struct crop_input {
    size_t cls;         /* index in the crop's classes            */
    char *url;          /* the array read, for lb__crop_array_channel */
    lb__encoding enc;
    lb_dtype dtype;
    lb__class_code code;
} crop_input;

typedef struct crop_impl {
    lb__wrap_info info;   /* first: see array.h                      */
    lb__crop_mode mode;
    int unknown;          /* LB__CROP_STATES: the unknown value       */
    int squeeze;
    int infer;
    size_t n_in;
    crop_input *in;       /* a->inputs[i] is its array               */
    size_t words;         /* 64-bit words per voxel bitset           */
    /* The same as lists of input indices, for the kernel: channel ch reads
     * glist[gstart[ch] .. gstart[ch + 1]) and infers from dlist[…]. */
    uint32_t *glist, *dlist;
    size_t *gstart, *dstart;
    size_t channels;
    uint64_t *gbits;      /* channels × words                        */
    uint64_t *dbits;      /* channels × words (inferred negatives)   */
    uint8_t *const_unknown;
    int count;
    _Atomic uint64_t *counts; /* channels × 3: absent, present, unknown */
    char *crop_url;       /* provenance                              */
    char *classes_source;
    int64_t voxel_size[LB_MAX_DIMS];
    char **class_names;   /* per-class mode: NULL groupings          */
} crop_impl;

/* ---- per-class codes ---------------------------------------------------- */

static void prepare_input(crop_input *in) {
    uint64_t v[3];
    for (int k = 0; k < 3; k++) v[k] = in->enc.value[k].bits;
    lb__class_code_init(&in->code, in->dtype, in->enc.instance, in->enc.has, v);
}

/* The kernel's lists from the channel bitmasks. */
static int build_lists(crop_impl *c, lb_error *err) {
    size_t ng = 0, nd = 0;
    for (size_t ch = 0; ch < c->channels; ch++)
        for (size_t k = 0; k < c->n_in; k++) {
            uint64_t b = (uint64_t)1 << (k % 64);
            ng += (c->gbits[ch * c->words + k / 64] & b) != 0;
            nd += c->dbits && (c->dbits[ch * c->words + k / 64] & b) != 0;
        }
    c->glist = lb__calloc(ng ? ng : 1, sizeof *c->glist, "crop groups", err);
    c->dlist = lb__calloc(nd ? nd : 1, sizeof *c->dlist, "crop groups", err);
    c->gstart = lb__calloc(c->channels + 1, sizeof *c->gstart, "crop groups", err);
    c->dstart = lb__calloc(c->channels + 1, sizeof *c->dstart, "crop groups", err);
    if (!c->glist || !c->dlist || !c->gstart || !c->dstart) return LB_ENOMEM;
    size_t gi = 0, di = 0;
    for (size_t ch = 0; ch < c->channels; ch++) {
        c->gstart[ch] = gi;
        c->dstart[ch] = di;
        for (size_t k = 0; k < c->n_in; k++) {
            uint64_t b = (uint64_t)1 << (k % 64);
            if (c->gbits[ch * c->words + k / 64] & b) c->glist[gi++] = (uint32_t)k;
            if (c->dbits && (c->dbits[ch * c->words + k / 64] & b)) c->dlist[di++] = (uint32_t)k;
        }
    }
    c->gstart[c->channels] = gi;
    c->dstart[c->channels] = di;
    return 0;
}

/* ---- blocks ------------------------------------------------------------------ */

/* The block grid over a ROI: boundaries on the first input's chunk grid,
 * split further so that a block holds at most MAX_BLOCK_VOXELS. */
typedef struct block_grid {
    int dims;
    int64_t origin[LB_MAX_DIMS], step[LB_MAX_DIMS]; /* world units */
    int64_t first[LB_MAX_DIMS], count[LB_MAX_DIMS]; /* block indices over the ROI */
    int64_t total;
} block_grid;

static void make_grid(const lb_array *a, const lb_roi *roi, size_t label_bytes, block_grid *g) {
    int64_t max_vox = MAX_BLOCK_VOXELS;
    if (label_bytes && (int64_t)label_bytes * max_vox > MAX_BLOCK_LABEL_BYTES)
        max_vox = MAX_BLOCK_LABEL_BYTES / (int64_t)label_bytes;
    if (max_vox < 1) max_vox = 1;
    g->dims = a->dims;
    int64_t step_vox[LB_MAX_DIMS];
    for (int d = 0; d < a->dims; d++) {
        int64_t origin = 0, step = 0;
        if (a->n_inputs == 0 || lb__array_chunk_grid(a->inputs[0], d, &origin, &step) != 0 ||
            step <= 0) {
            origin = a->roi.offset[d];
            step = 64 * a->voxel_size[d];
        }
        g->origin[d] = origin;
        step_vox[d] = step / a->voxel_size[d];
        if (step_vox[d] < 1) step_vox[d] = 1;
    }
    /* Halve the largest extent until a block is small enough. */
    for (;;) {
        int64_t n = 1;
        int big = 0;
        for (int d = 0; d < a->dims; d++) {
            n = n > INT64_MAX / step_vox[d] ? INT64_MAX : n * step_vox[d];
            if (step_vox[d] > step_vox[big]) big = d;
        }
        if (n <= max_vox || step_vox[big] <= 1) break;
        step_vox[big] = (step_vox[big] + 1) / 2;
    }
    g->total = 1;
    for (int d = 0; d < a->dims; d++) {
        g->step[d] = step_vox[d] * a->voxel_size[d];
        int64_t b = roi->offset[d], e = roi->offset[d] + roi->shape[d];
        int64_t k0 = lb__floordiv(b - g->origin[d], g->step[d]);
        int64_t k1 = roi->shape[d] > 0 ? lb__floordiv(e - 1 - g->origin[d], g->step[d]) : k0 - 1;
        g->first[d] = k0;
        g->count[d] = k1 - k0 + 1;
        if (g->count[d] < 0) g->count[d] = 0;
        g->total *= g->count[d];
    }
}

/* Block `i` of the grid, clipped to the ROI. */
static void block_roi(const block_grid *g, const lb_roi *roi, int64_t i, lb_roi *out) {
    out->ndim = g->dims;
    for (int d = g->dims - 1; d >= 0; d--) {
        int64_t k = g->first[d] + i % g->count[d];
        i /= g->count[d];
        int64_t b = g->origin[d] + k * g->step[d], e = b + g->step[d];
        int64_t rb = roi->offset[d], re = roi->offset[d] + roi->shape[d];
        if (b < rb) b = rb;
        if (e > re) e = re;
        out->offset[d] = b;
        out->shape[d] = e - b;
    }
}

/* Voxels per tile: the class bitmaps of a tile (2 × TILE_VOXELS / 8 bytes
 * per class) stay in the caches while every group reads them. */
#define TILE_VOXELS 4096
#define TILE_WORDS (TILE_VOXELS / 64)

/* Working memory of one worker: every class's labels of a block, the
 * bitmaps of one tile, a group's output bytes. */
typedef struct scratch {
    lb__buf mem;
    uint64_t *bits;   /* per input: P then U, TILE_WORDS each */
    uint64_t *T, *Ua, *I, *K;
    uint8_t *bytes;   /* TILE_VOXELS */
    uint8_t *labels;
} scratch;

static int scratch_reserve(scratch *s, size_t n, size_t n_in, size_t label_bytes_per_voxel,
                           lb_error *err) {
    size_t bits_bytes, label_bytes, total;
    if (lb__mul_size((2 * n_in + 4) * TILE_WORDS, sizeof(uint64_t), &bits_bytes) ||
        lb__mul_size(n, label_bytes_per_voxel, &label_bytes) ||
        lb__add_size(bits_bytes + TILE_VOXELS, label_bytes + 64, &total))
        return lb__err(err, LB_ELIMIT, "a block's working memory overflows");
    if (lb__buf_reserve(&s->mem, total, err)) return LB_ENOMEM;
    s->bits = (uint64_t *)s->mem.data;
    s->T = s->bits + 2 * n_in * TILE_WORDS;
    s->Ua = s->T + TILE_WORDS;
    s->I = s->Ua + TILE_WORDS;
    s->K = s->I + TILE_WORDS;
    s->bytes = (uint8_t *)(s->K + TILE_WORDS);
    s->labels = s->bytes + TILE_VOXELS;
    return 0;
}

typedef struct read_ctx {
    const lb_array *a;
    const crop_impl *c;
    const lb_roi *roi;
    block_grid grid;
    uint8_t *out;
    size_t plane;          /* voxels of the whole ROI              */
    int64_t rvox[LB_MAX_DIMS];
    scratch *scr;          /* one per worker                       */
    lb__workspace *ws;     /* one per worker                       */
    size_t label_bytes;    /* Σ itemsize of the inputs: per voxel  */
    uint64_t *counts;      /* per worker: channels × 3             */
    lb_error *errs;        /* per worker                           */
} read_ctx;

static uint64_t popcount_words(const uint64_t *w, size_t n) {
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++) c += (uint64_t)__builtin_popcountll(w[i]);
    return c;
}

/* Group `ch` over the tile's `tn` voxels: bitmaps T (present) and K
 * (known) in s->T / s->K, output bytes in s->bytes. */
static void tile_group(const crop_impl *c, scratch *s, size_t ch, size_t tn, uint64_t *cnt) {
    const size_t tw = (tn + 63) / 64;
    uint64_t *T = s->T, *Ua = s->Ua, *I = s->I, *K = s->K;
    memset(T, 0, tw * sizeof *T);
    memset(Ua, c->const_unknown[ch] ? 0xFF : 0, tw * sizeof *Ua);
    memset(I, 0, tw * sizeof *I);
    for (size_t j = c->gstart[ch]; j < c->gstart[ch + 1]; j++) {
        const uint64_t *P = s->bits + (size_t)c->glist[j] * 2 * TILE_WORDS, *U = P + TILE_WORDS;
        for (size_t w = 0; w < tw; w++) {
            T[w] |= P[w];
            Ua[w] |= U[w];
        }
    }
    for (size_t j = c->dstart[ch]; j < c->dstart[ch + 1]; j++) {
        const uint64_t *P = s->bits + (size_t)c->dlist[j] * 2 * TILE_WORDS;
        for (size_t w = 0; w < tw; w++) I[w] |= P[w];
    }
    for (size_t w = 0; w < tw; w++) K[w] = T[w] | ~Ua[w] | I[w];
    if (tn % 64) K[tw - 1] &= ((uint64_t)1 << (tn % 64)) - 1;
    if (cnt) {
        uint64_t np = popcount_words(T, tw), nk = popcount_words(K, tw);
        cnt[LB__PRESENT] += np;
        cnt[LB__ABSENT] += nk - np;
        cnt[LB__UNKNOWN] += tn - nk;
    }
    int mode = c->mode == LB__CROP_TARGET ? 0 : c->mode == LB__CROP_MASK ? 1 : 2;
    lb__group_bytes(T, K, tn, mode, (uint8_t)c->unknown, s->bytes);
}

static int do_block(void *user, int worker, int64_t bi) {
    read_ctx *r = user;
    const lb_array *a = r->a;
    const crop_impl *c = r->c;
    scratch *s = &r->scr[worker];
    lb__workspace *ws = &r->ws[worker];
    lb_roi b;
    block_roi(&r->grid, r->roi, bi, &b);
    int64_t bv[LB_MAX_DIMS], off[LB_MAX_DIMS];
    size_t n = 1;
    const int dims = a->dims;
    for (int d = 0; d < dims; d++) {
        bv[d] = b.shape[d] / a->voxel_size[d];
        off[d] = (b.offset[d] - r->roi->offset[d]) / a->voxel_size[d];
        n *= (size_t)bv[d];
    }
    if (n == 0) return 0;
    lb_error *err = &r->errs[worker];
    int rc = scratch_reserve(s, n, c->n_in, r->label_bytes, err);
    if (rc) return rc;
    /* Every class's labels of the block: each chunk decoded once. */
    size_t lo = 0;
    for (size_t k = 0; k < c->n_in; k++) {
        size_t bytes = n * lb_dtype_size(c->in[k].dtype);
        rc = lb__array_read_ws(a->inputs[k], &b, s->labels + lo, bytes, ws, err);
        if (rc) return rc;
        lo += bytes;
    }
    uint64_t *cnt = r->counts ? r->counts + (size_t)worker * c->channels * 3 : NULL;
    /* Tiles of whole rows (the last axis is contiguous in the output), or
     * parts of one row when a row is longer than a tile. */
    const size_t row = (size_t)bv[dims - 1], rows = n / row;
    size_t tile_rows = TILE_VOXELS / row;
    if (tile_rows < 1) tile_rows = 1;
    for (size_t q0 = 0; q0 < rows; q0 += tile_rows) {
        size_t nr = rows - q0 < tile_rows ? rows - q0 : tile_rows;
        for (size_t x0 = 0; x0 < row; x0 += TILE_VOXELS) {
            int whole = row <= TILE_VOXELS;
            size_t xn = whole ? row : (row - x0 < TILE_VOXELS ? row - x0 : TILE_VOXELS);
            size_t tn = whole ? nr * row : xn;
            size_t first = q0 * row + (whole ? 0 : x0);
            size_t lk = 0;
            for (size_t k = 0; k < c->n_in; k++) {
                size_t is = lb_dtype_size(c->in[k].dtype);
                uint64_t *P = s->bits + k * 2 * TILE_WORDS;
                lb__class_bits(&c->in[k].code, s->labels + lk + first * is, tn, P,
                               P + TILE_WORDS);
                lk += n * is;
            }
            for (size_t ch = 0; ch < c->channels; ch++) {
                tile_group(c, s, ch, tn, cnt ? cnt + ch * 3 : NULL);
                uint8_t *plane = r->out + ch * r->plane;
                for (size_t q = 0; q < nr; q++) {
                    /* the output index of this row's first voxel in the tile */
                    size_t rem = q0 + q, idx = 0, mul = 1;
                    int64_t coord[LB_MAX_DIMS];
                    coord[dims - 1] = off[dims - 1] + (int64_t)(whole ? 0 : x0);
                    for (int d = dims - 2; d >= 0; d--) {
                        coord[d] = off[d] + (int64_t)(rem % (size_t)bv[d]);
                        rem /= (size_t)bv[d];
                    }
                    for (int d = dims - 1; d >= 0; d--) {
                        idx += (size_t)coord[d] * mul;
                        mul *= (size_t)r->rvox[d];
                    }
                    memcpy(plane + idx, s->bytes + q * xn, xn);
                }
            }
            if (whole) break;
        }
    }
    return 0;
}

/* Threads for block-parallel reads: what lb_array_set_threads gave the
 * arrays read. */
static int read_threads(const lb_array *a) {
    int t = 1;
    for (size_t i = 0; i < a->n_inputs; i++)
        if (a->inputs[i]->ds->read_threads > t) t = a->inputs[i]->ds->read_threads;
    return t;
}

static int crop_read(const lb_array *a, const lb_roi *roi, void *out, lb__workspace *ws,
                     lb_error *err) {
    crop_impl *c = a->impl;
    read_ctx r;
    memset(&r, 0, sizeof r);
    r.a = a;
    r.c = c;
    r.roi = roi;
    r.out = out;
    int64_t n = lb__roi_voxels(a, roi, r.rvox);
    if (n < 0) return lb__err(err, LB_ELIMIT, "the ROI's voxel count overflows");
    if (n == 0) return 0;
    r.plane = (size_t)n;
    if (c->n_in == 0) {
        /* Nothing is read: every group is constant unknown. */
        uint8_t v = c->mode == LB__CROP_STATES ? (uint8_t)c->unknown : 0;
        memset(out, v, r.plane * c->channels);
        if (c->counts)
            for (size_t ch = 0; ch < c->channels; ch++)
                atomic_fetch_add(&c->counts[ch * 3 + LB__UNKNOWN], (uint64_t)n);
        return 0;
    }
    for (size_t i = 0; i < c->n_in; i++) r.label_bytes += lb_dtype_size(c->in[i].dtype);
    make_grid(a, roi, r.label_bytes, &r.grid);
    int threads = read_threads(a);
    if (threads > r.grid.total) threads = (int)r.grid.total;
    if (threads < 1) threads = 1;
    int rc = 0;
    r.scr = calloc((size_t)threads, sizeof *r.scr);
    r.ws = calloc((size_t)threads, sizeof *r.ws);
    r.errs = calloc((size_t)threads, sizeof *r.errs);
    if (c->counts) r.counts = calloc((size_t)threads * c->channels * 3, sizeof *r.counts);
    if (!r.scr || !r.ws || !r.errs || (c->counts && !r.counts)) {
        rc = lb__err(err, LB_ENOMEM, "out of memory reading a crop");
        goto done;
    }
    /* Worker 0 is the calling thread: its memory is the caller's workspace. */
    int borrowed = ws && !ws->slab_busy;
    if (borrowed) {
        r.scr[0].mem = ws->slab;
        ws->slab_busy = 1;
        r.ws[0].io = ws->io;
    }
    int failed = 0;
    rc = lb__parallel_for(threads, r.grid.total, do_block, &r, &failed);
    if (rc && err) *err = r.errs[failed];
    if (borrowed) {
        ws->slab = r.scr[0].mem;
        ws->slab_busy = 0;
        ws->io = r.ws[0].io;
        memset(&r.scr[0].mem, 0, sizeof r.scr[0].mem);
        memset(&r.ws[0].io, 0, sizeof r.ws[0].io);
    }
    if (!rc && r.counts)
        for (int t = 0; t < threads; t++)
            for (size_t k = 0; k < c->channels * 3; k++)
                atomic_fetch_add(&c->counts[k], r.counts[(size_t)t * c->channels * 3 + k]);
done:
    for (int t = 0; r.scr && t < threads; t++) lb__buf_free(&r.scr[t].mem);
    for (int t = 0; r.ws && t < threads; t++) lb__workspace_free(&r.ws[t]);
    free(r.scr);
    free(r.ws);
    free(r.errs);
    free(r.counts);
    return rc;
}

/* ---- the array ------------------------------------------------------------- */

static void crop_destroy(lb_array *a) {
    crop_impl *c = a->impl;
    if (!c) return;
    for (size_t i = 0; c->in && i < c->n_in; i++) free(c->in[i].url);
    free(c->in);
    free(c->gbits);
    free(c->dbits);
    free(c->const_unknown);
    free(c->glist);
    free(c->dlist);
    free(c->gstart);
    free(c->dstart);
    free((void *)c->counts);
    free(c->crop_url);
    free(c->classes_source);
    if (c->class_names)
        for (size_t i = 0; i < c->channels; i++) free(c->class_names[i]);
    free(c->class_names);
    lb_groupings_free(c->info.groupings);
    free(c);
}

static int crop_provenance(const lb_array *a, json_object *lb, lb_error *err) {
    const crop_impl *c = a->impl;
    char *abs = realpath(c->crop_url, NULL);
    json_object_object_add(lb, "source", json_object_new_string(abs ? abs : c->crop_url));
    free(abs);
    json_object *o = json_object_new_object();
    if (!o) return lb__err(err, LB_ENOMEM, "out of memory building attributes");
    json_object_object_add(o, "voxel_size", lb__json_int64_list(c->voxel_size, a->dims, 0));
    json_object_object_add(o, "infer_negatives", json_object_new_boolean(c->infer));
    if (c->mode == LB__CROP_STATES)
        json_object_object_add(o, "unknown", json_object_new_int(c->unknown));
    json_object_object_add(o, "classes", json_object_new_string(c->classes_source));
    if (c->class_names) {
        json_object *names = json_object_new_array();
        for (size_t i = 0; i < c->channels; i++)
            json_object_array_add(names, json_object_new_string(c->class_names[i]));
        json_object_object_add(o, "per_class", names);
    }
    json_object_object_add(lb, "crop", o);
    return 0;
}

static const lb__array_vtable target_vt = {"CropBinarizeArray", crop_read, NULL, crop_destroy,
                                           crop_provenance};
static const lb__array_vtable mask_vt = {"CropMissingAnnotationsMask", crop_read, NULL,
                                         crop_destroy, crop_provenance};

int lb__crop_array_is(const lb_array *a) {
    return a && (a->vt == &target_vt || a->vt == &mask_vt);
}

int lb_array_is_crop(const lb_array *a) { return lb__crop_array_is(a); }

int lb__crop_array_unknown(const lb_array *a) {
    if (!lb__crop_array_is(a)) return -1;
    const crop_impl *c = a->impl;
    return c->mode == LB__CROP_STATES ? c->unknown : -1;
}

int lb__crop_array_counts(const lb_array *a, int64_t ch, uint64_t out[3]) {
    if (!lb__crop_array_is(a)) return -1;
    const crop_impl *c = a->impl;
    if (!c->counts || ch < 0 || (size_t)ch >= c->channels) return -1;
    for (int k = 0; k < 3; k++) out[k] = atomic_load(&c->counts[(size_t)ch * 3 + k]);
    return 0;
}

/* ---- building ------------------------------------------------------------------ */

/* What a group is made of, in crop class indices. */
typedef struct group_plan {
    uint8_t *uses;      /* per crop class: the group reads it          */
    int const_unknown;
    lb__buf atomic;     /* uint64 atomic ids of the group (inference)  */
} group_plan;

/* The crop class whose name is row t of the table, or -1. */
static long crop_class_of_row(const lb_crop *crop, long t) {
    if (t < 0) return -1;
    for (size_t i = 0; i < crop->n; i++)
        if (crop->cls[i].table == t) return (long)i;
    return -1;
}

/* Add id k to a group: its class's own array, or its members', or
 * constant unknown. `depth` bounds nesting (the table has no cycles). */
static int plan_id(const lb_crop *crop, uint64_t k, int negative, group_plan *g, int depth,
                   lb_error *err) {
    long t = negative ? -1 : lb__classes_by_id(crop->classes, k);
    long ci = crop_class_of_row(crop, t);
    if (ci >= 0) {
        g->uses[ci] = 1;
        return 0;
    }
    const lb__class_entry *e = t >= 0 ? &crop->classes->e[t] : NULL;
    if (!e || e->n_members == 0 || depth > 64) {
        g->const_unknown = 1;
        return 0;
    }
    for (size_t m = 0; m < e->n_members; m++) {
        int rc = plan_id(crop, e->members[m], 0, g, depth + 1, err);
        if (rc) return rc;
    }
    return 0;
}

static int u64_cmp(const void *pa, const void *pb) {
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return a < b ? -1 : a > b;
}

/* 1 if the sorted lists share an element. */
static int intersects(const uint64_t *a, size_t na, const uint64_t *b, size_t nb) {
    size_t i = 0, j = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) return 1;
        if (a[i] < b[j]) i++;
        else j++;
    }
    return 0;
}

static int same_roi(const lb_roi *a, const lb_roi *b) {
    if (a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->offset[d] != b->offset[d] || a->shape[d] != b->shape[d]) return 0;
    return 1;
}

static int same_vs(const int64_t *a, const int64_t *b, int n) {
    for (int d = 0; d < n; d++)
        if (a[d] != b[d]) return 0;
    return 1;
}

/* The level of class k with voxel size vs, or -1. */
static int level_with(const lb__crop_class *k, const int64_t *vs, int dims) {
    for (int l = 0; l < k->n_levels; l++)
        if (k->levels[l].dims == dims && same_vs(k->levels[l].voxel_size, vs, dims)) return l;
    return -1;
}

/* Pick each read class's level: at opt->voxel_size, or the finest when
 * those agree; refuse otherwise, listing the choices. */
static int choose_levels(const lb_crop *crop, const uint8_t *read, const lb_crop_options *opt,
                         int *level, lb_error *err) {
    size_t first = crop->n;
    for (size_t i = 0; i < crop->n; i++)
        if (read[i]) {
            first = i;
            break;
        }
    if (first == crop->n) return lb__err(err, LB_EINVAL, "%s: the crop has no classes", crop->url);
    int dims = crop->cls[first].levels[0].dims;
    char buf[LB_ERROR_MESSAGE_SIZE];
    size_t len = 0;
    if (opt && opt->voxel_size) {
        if (opt->dims != dims)
            return lb__err(err, LB_EINVAL, "the voxel size has %d entries, the crop's arrays %d "
                           "spatial dimensions", opt->dims, dims);
        for (size_t i = 0; i < crop->n; i++) {
            if (!read[i]) continue;
            const lb__crop_class *k = &crop->cls[i];
            level[i] = level_with(k, opt->voxel_size, dims);
            if (level[i] >= 0) continue;
            char want[256];
            lb_coord_format(opt->voxel_size, dims, want, sizeof want);
            buf[0] = '\0';
            for (int l = 0; l < k->n_levels && len < sizeof buf; l++) {
                char vs[256];
                lb_coord_format(k->levels[l].voxel_size, k->levels[l].dims, vs, sizeof vs);
                len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s %s", l ? ", " : "",
                                        k->levels[l].path, vs);
            }
            return lb__err(err, LB_EINVAL, "%s/%s: no level has the voxel size %s (its levels: "
                           "%s)", crop->url, k->name, want, buf);
        }
        return 0;
    }
    int agree = 1;
    for (size_t i = 0; i < crop->n; i++) {
        if (!read[i]) continue;
        level[i] = 0;
        const lb__crop_level *l0 = &crop->cls[i].levels[0], *f0 = &crop->cls[first].levels[0];
        if (l0->dims != dims || !same_vs(l0->voxel_size, f0->voxel_size, dims)) agree = 0;
    }
    if (agree) return 0;
    /* List the finest voxel sizes, then those every class has. */
    for (size_t i = 0; i < crop->n && len < sizeof buf; i++) {
        if (!read[i]) continue;
        char vs[256];
        const lb__crop_level *l0 = &crop->cls[i].levels[0];
        lb_coord_format(l0->voxel_size, l0->dims, vs, sizeof vs);
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s %s", len ? ", " : "",
                                crop->cls[i].name, vs);
    }
    char common[512] = "";
    size_t cl = 0;
    const lb__crop_class *f = &crop->cls[first];
    for (int l = 0; l < f->n_levels && cl < sizeof common; l++) {
        int all = 1;
        for (size_t i = 0; i < crop->n && all; i++)
            if (read[i] && level_with(&crop->cls[i], f->levels[l].voxel_size, dims) < 0) all = 0;
        if (!all) continue;
        char vs[256];
        lb_coord_format(f->levels[l].voxel_size, dims, vs, sizeof vs);
        cl += (size_t)snprintf(common + cl, sizeof common - cl, "%s%s", cl ? ", " : "", vs);
    }
    return lb__err(err, LB_EINVAL, "%s: the classes read have different voxel sizes at their "
                   "finest level: %s; choose one with a voxel size (--voxel-size Z,Y,X)%s%s%s",
                   crop->url, buf, cl ? ": " : " (no voxel size is available for all of them)",
                   common, cl ? (strchr(common, ')') != strrchr(common, ')')
                                     ? " are available for all of them"
                                     : " is available for all of them")
                              : "");
}

static int set_axes(lb_array *a, const lb_array *in0, lb_error *err) {
    int lead = a->ndim - a->dims;
    if (lead) {
        a->axes[0] = lb__strdup("c", err);
        if (!a->axes[0]) return LB_ENOMEM;
    }
    for (int i = 0; i < a->dims; i++) {
        const char *name = in0 ? in0->axes[in0->ndim - in0->dims + i] : NULL;
        static const char *const zyx[3] = {"z", "y", "x"};
        char def[16];
        if (!name) {
            int from_end = a->dims - i;
            if (from_end <= 3) name = zyx[3 - from_end];
            else {
                snprintf(def, sizeof def, "d%d", i);
                name = def;
            }
        }
        a->axes[lead + i] = lb__strdup(name, err);
        if (!a->axes[lead + i]) return LB_ENOMEM;
    }
    return 0;
}

int lb__crop_array_new(const lb_crop *crop, const lb_groupings *groupings,
                       const lb_crop_options *opt_in, lb__crop_mode mode, int squeeze, int count,
                       lb_array **out, lb_error *err) {
    *out = NULL;
    lb_crop_options opt;
    lb_crop_options_init(&opt);
    if (opt_in) {
        if (opt_in->struct_size < (int)sizeof(int) || opt_in->struct_size > (int)sizeof opt)
            return lb__err(err, LB_EINVAL, "crop options not initialised with "
                           "lb_crop_options_init");
        memcpy(&opt, opt_in, (size_t)opt_in->struct_size);
    }
    size_t channels = groupings ? lb_groupings_count(groupings) : crop->n;
    if (groupings && channels == 0)
        return lb__err(err, LB_EINVAL, "the groupings are empty: at least one group is needed "
                       "(each group is one output channel)");
    if (!groupings && crop->n == 0)
        return lb__err(err, LB_EINVAL, "%s: the crop has no classes", crop->url);
    if (squeeze && channels != 1)
        return lb__err(err, LB_EINVAL, "a single-channel array needs exactly one group");
    if (mode == LB__CROP_STATES && (opt.unknown < 2 || opt.unknown > 255))
        return lb__err(err, LB_EINVAL, "the unknown value is %d: it must be from 2 to 255 (0 "
                       "and 1 are absent and present)", opt.unknown);
    if (opt.voxel_size && (opt.dims < 1 || opt.dims > LB_MAX_DIMS))
        return lb__err(err, LB_EINVAL, "the voxel size has %d entries", opt.dims);
    for (int d = 0; opt.voxel_size && d < opt.dims; d++)
        if (opt.voxel_size[d] <= 0)
            return lb__err(err, LB_EINVAL, "the voxel size must be positive");

    lb_array *a = NULL;
    crop_impl *c = NULL;
    group_plan *gp = lb__calloc(channels, sizeof *gp, "groups", err);
    uint8_t *read = lb__calloc(crop->n ? crop->n : 1, 1, "groups", err);
    int *level = lb__calloc(crop->n ? crop->n : 1, sizeof *level, "groups", err);
    long *bit = lb__calloc(crop->n ? crop->n : 1, sizeof *bit, "groups", err);
    int rc = (!gp || !read || !level || !bit) ? LB_ENOMEM : 0;
    for (size_t g = 0; g < channels && !rc; g++) {
        gp[g].uses = lb__calloc(crop->n ? crop->n : 1, 1, "groups", err);
        if (!gp[g].uses) {
            rc = LB_ENOMEM;
            break;
        }
        if (!groupings) {
            gp[g].uses[g] = 1;
            continue;
        }
        const lb_id *ids;
        size_t m = lb_groupings_ids(groupings, g, &ids);
        if (m == 0) {
            /* Empty group: any class of the crop. */
            for (size_t i = 0; i < crop->n; i++) gp[g].uses[i] = 1;
            continue;
        }
        for (size_t j = 0; j < m && !rc; j++) {
            rc = plan_id(crop, ids[j].bits, ids[j].negative, &gp[g], 0, err);
            if (rc || !opt.infer_negatives || ids[j].negative) continue;
            long t = lb__classes_by_id(crop->classes, ids[j].bits);
            if (t >= 0) {
                const lb__class_entry *e = &crop->classes->e[t];
                rc = lb__buf_append(&gp[g].atomic, e->atomic, e->n_atomic * sizeof(uint64_t), err);
            } else {
                rc = lb__buf_append(&gp[g].atomic, &ids[j].bits, sizeof(uint64_t), err);
            }
        }
        if (!rc && gp[g].atomic.size > sizeof(uint64_t))
            qsort(gp[g].atomic.data, gp[g].atomic.size / sizeof(uint64_t), sizeof(uint64_t),
                  u64_cmp);
    }
    if (rc) goto fail;

    /* Inferred negatives: the crop's classes (with an entry in the table)
     * whose atomic ids share none with the group's. */
    uint8_t **disj = NULL;
    if (opt.infer_negatives && groupings) {
        disj = lb__calloc(channels, sizeof *disj, "groups", err);
        if (!disj) {
            rc = LB_ENOMEM;
            goto fail;
        }
        for (size_t g = 0; g < channels; g++) {
            const lb_id *ids;
            if (lb_groupings_ids(groupings, g, &ids) == 0) continue; /* the whole crop */
            disj[g] = lb__calloc(crop->n ? crop->n : 1, 1, "groups", err);
            if (!disj[g]) {
                rc = LB_ENOMEM;
                break;
            }
            const uint64_t *ga = (const uint64_t *)gp[g].atomic.data;
            size_t gn = gp[g].atomic.size / sizeof(uint64_t);
            for (size_t i = 0; i < crop->n; i++) {
                long t = crop->cls[i].table;
                if (t < 0 || gp[g].uses[i]) continue;
                const lb__class_entry *e = &crop->classes->e[t];
                if (!intersects(e->atomic, e->n_atomic, ga, gn)) disj[g][i] = 1;
            }
        }
    }
    if (rc) goto fail_disj;

    /* The classes read, and their bits. */
    size_t n_in = 0;
    for (size_t i = 0; i < crop->n; i++) {
        for (size_t g = 0; g < channels; g++)
            if (gp[g].uses[i] || (disj && disj[g] && disj[g][i])) read[i] = 1;
        bit[i] = read[i] ? (long)n_in++ : -1;
    }
    /* Geometry from the classes read, or, when none is, from all of them. */
    {
        uint8_t *geo = read;
        uint8_t *all = NULL;
        if (n_in == 0) {
            all = lb__calloc(crop->n ? crop->n : 1, 1, "groups", err);
            if (!all) {
                rc = LB_ENOMEM;
                goto fail_disj;
            }
            memset(all, 1, crop->n);
            geo = all;
            if (crop->n == 0) {
                free(all);
                rc = lb__err(err, LB_EINVAL, "%s: the crop has no classes: nothing to compute "
                             "a geometry from", crop->url);
                goto fail_disj;
            }
        }
        rc = choose_levels(crop, geo, &opt, level, err);
        const lb__crop_level *ref = NULL;
        for (size_t i = 0; i < crop->n && !rc; i++) {
            if (!geo[i]) continue;
            const lb__crop_level *lv = &crop->cls[i].levels[level[i]];
            if (!ref) {
                ref = lv;
                continue;
            }
            if (!same_roi(&lv->roi, &ref->roi)) {
                char r1[512], r2[512];
                lb_roi_format(&ref->roi, r1, sizeof r1);
                lb_roi_format(&lv->roi, r2, sizeof r2);
                size_t fi = 0;
                while (!geo[fi]) fi++;
                /* The crop's fault, not the caller's: LB_EFORMAT. */
                rc = lb__err(err, LB_EFORMAT, "%s: the classes' arrays at this voxel size cover "
                             "different ROIs: %s/%s %s, %s/%s %s; a crop's classes must share "
                             "one ROI", crop->url, crop->cls[fi].name, ref->path, r1,
                             crop->cls[i].name, lv->path, r2);
            }
        }
        if (!rc && !ref) rc = lb__err(err, LB_EINVAL, "%s: no class to read", crop->url);
        if (rc) {
            free(all);
            goto fail_disj;
        }
        a = lb__array_alloc(mode == LB__CROP_MASK ? &mask_vt : &target_vt, err);
        if (!a) {
            free(all);
            rc = LB_ENOMEM;
            goto fail_disj;
        }
        a->dims = ref->dims;
        a->ndim = ref->dims + (squeeze ? 0 : 1);
        memcpy(a->voxel_size, ref->voxel_size, sizeof a->voxel_size);
        a->roi = ref->roi;
        free(all);
    }
    c = lb__calloc(1, sizeof *c, "crop array", err);
    if (!c) {
        rc = LB_ENOMEM;
        goto fail_disj;
    }
    a->impl = c;
    c->mode = mode;
    c->unknown = opt.unknown;
    c->squeeze = squeeze;
    c->infer = opt.infer_negatives ? 1 : 0;
    c->channels = channels;
    c->n_in = n_in;
    c->words = n_in ? (n_in + 63) / 64 : 1;
    memcpy(c->voxel_size, a->voxel_size, sizeof c->voxel_size);
    c->crop_url = lb__strdup(crop->shown, err);
    c->classes_source = lb__strdup(crop->classes->source, err);
    c->in = lb__calloc(n_in ? n_in : 1, sizeof *c->in, "crop inputs", err);
    c->gbits = lb__calloc(channels * c->words, sizeof *c->gbits, "crop groups", err);
    c->const_unknown = lb__calloc(channels, 1, "crop groups", err);
    if (disj) c->dbits = lb__calloc(channels * c->words, sizeof *c->dbits, "crop groups", err);
    if (count) c->counts = lb__calloc(channels * 3, sizeof *c->counts, "crop counts", err);
    a->inputs = lb__calloc(n_in ? n_in : 1, sizeof *a->inputs, "crop inputs", err);
    if (!c->crop_url || !c->classes_source || !c->in || !c->gbits || !c->const_unknown ||
        (disj && !c->dbits) || (count && !c->counts) || !a->inputs) {
        rc = LB_ENOMEM;
        goto fail_disj;
    }
    for (size_t g = 0; g < channels; g++) {
        for (size_t i = 0; i < crop->n; i++) {
            if (gp[g].uses[i]) c->gbits[g * c->words + (size_t)bit[i] / 64] |= (uint64_t)1 << (bit[i] % 64);
            if (disj && disj[g] && disj[g][i])
                c->dbits[g * c->words + (size_t)bit[i] / 64] |= (uint64_t)1 << (bit[i] % 64);
        }
        /* A group that reads no class at all: unknown everywhere. */
        int any = 0;
        for (size_t i = 0; i < crop->n; i++) any |= gp[g].uses[i];
        c->const_unknown[g] = gp[g].const_unknown || !any;
    }
    rc = build_lists(c, err);
    if (rc) goto fail_disj;
    /* Open the arrays read, at the chosen levels. */
    for (size_t i = 0; i < crop->n; i++) {
        if (!read[i]) continue;
        size_t k = (size_t)bit[i];
        const lb__crop_level *lv = &crop->cls[i].levels[level[i]];
        rc = lb_array_open(lv->url, LB_OPEN_READONLY, NULL, 0, &a->inputs[k], err);
        if (rc) goto fail_disj;
        a->n_inputs = k + 1 > a->n_inputs ? k + 1 : a->n_inputs;
        const lb_array *in = a->inputs[k];
        /* The data may have changed since the crop was opened. */
        if (!lb_dtype_is_integer(in->dtype) || in->ndim != in->dims || in->dims != a->dims ||
            !same_roi(&in->roi, &a->roi) || !same_vs(in->voxel_size, a->voxel_size, a->dims)) {
            rc = lb__err(err, LB_EFORMAT, "%s: the array changed since the crop was opened",
                         lv->url);
            goto fail_disj;
        }
        if (lb_array_incomplete(in)) {
            rc = lb__err(err, LB_EFORMAT, "%s: an unfinished labelbin output (labelbin.complete "
                         "is false): chunks not yet written would read as zeros; finish it with "
                         "--resume first", lv->url);
            goto fail_disj;
        }
        c->in[k].cls = i;
        c->in[k].url = lb__strdup(lv->url, err);
        if (!c->in[k].url) {
            rc = LB_ENOMEM;
            goto fail_disj;
        }
        c->in[k].enc = crop->cls[i].enc;
        c->in[k].dtype = in->dtype;
        prepare_input(&c->in[k]);
    }
    a->n_inputs = n_in;
    /* Shape, axes, channel names, attributes. */
    int lead = squeeze ? 0 : 1;
    if (lead) {
        a->shape[0] = (int64_t)channels;
        a->num_channels = (int64_t)channels;
    }
    for (int d = 0; d < a->dims; d++) a->shape[lead + d] = a->roi.shape[d] / a->voxel_size[d];
    rc = set_axes(a, n_in ? a->inputs[0] : NULL, err);
    if (rc) goto fail_disj;
    if (groupings) {
        rc = lb_groupings_copy(groupings, &c->info.groupings, err);
        if (rc) goto fail_disj;
    } else {
        c->class_names = lb__calloc(channels, sizeof *c->class_names, "class names", err);
        if (!c->class_names) {
            rc = LB_ENOMEM;
            goto fail_disj;
        }
        for (size_t i = 0; i < channels; i++) {
            c->class_names[i] = lb__strdup(crop->cls[i].name, err);
            if (!c->class_names[i]) {
                rc = LB_ENOMEM;
                goto fail_disj;
            }
        }
    }
    if (lead) {
        a->channel_names = lb__calloc(channels, sizeof *a->channel_names, "channel names", err);
        if (!a->channel_names) {
            rc = LB_ENOMEM;
            goto fail_disj;
        }
        for (size_t g = 0; g < channels; g++) {
            a->channel_names[g] = lb__strdup(groupings ? lb_groupings_name(groupings, g)
                                                       : crop->cls[g].name, err);
            if (!a->channel_names[g]) {
                rc = LB_ENOMEM;
                goto fail_disj;
            }
        }
    }
    rc = lb__array_set_attrs(a, crop->attrs, err);
    if (rc) goto fail_disj;
    a->dtype = LB_DTYPE_UINT8;
    a->writable = 0;
    rc = lb__store_open(crop->url, &a->group_store, &a->group_path, err);
    if (rc) goto fail_disj;
    for (int w = 0; w < crop->n_warnings && !rc; w++)
        rc = lb__array_warn(a, err, "%s", crop->warnings[w]);
    if (rc) goto fail_disj;
    *out = a;
    a = NULL;
fail_disj:
    for (size_t g = 0; disj && g < channels; g++) free(disj[g]);
    free(disj);
fail:
    for (size_t g = 0; gp && g < channels; g++) {
        free(gp[g].uses);
        lb__buf_free(&gp[g].atomic);
    }
    free(gp);
    free(read);
    free(level);
    free(bit);
    lb_array_free(a);
    return rc;
}

int lb_crop_binarize_new(const lb_crop *crop, const lb_groupings *groupings,
                         const lb_crop_options *opt, lb_array **out, lb_error *err) {
    if (!out) return lb__err(err, LB_EINVAL, "lb_crop_binarize_new: no output pointer");
    *out = NULL;
    if (!crop) return lb__err(err, LB_EINVAL, "lb_crop_binarize_new: no crop");
    int three = opt && opt->struct_size >= (int)(offsetof(lb_crop_options, unknown) + sizeof(int))
                && opt->unknown != -1;
    return lb__crop_array_new(crop, groupings, opt, three ? LB__CROP_STATES : LB__CROP_TARGET,
                              0, 0, out, err);
}

int lb_crop_mask_new(const lb_crop *crop, const lb_groupings *groupings,
                     const lb_crop_options *opt, lb_array **out, lb_error *err) {
    if (!out) return lb__err(err, LB_EINVAL, "lb_crop_mask_new: no output pointer");
    *out = NULL;
    if (!crop) return lb__err(err, LB_EINVAL, "lb_crop_mask_new: no crop");
    if (opt && opt->struct_size >= (int)(offsetof(lb_crop_options, unknown) + sizeof(int)) &&
        opt->unknown != -1)
        return lb__err(err, LB_EINVAL, "a mask has no unknown value: it is 1 where the target "
                       "is known (three-state output is a binarize option)");
    return lb__crop_array_new(crop, groupings, opt, LB__CROP_MASK, 0, 0, out, err);
}

/* ---- one channel alone ------------------------------------------------------ */

int lb__crop_array_channel(const lb_array *a, size_t ch, int count, lb_array **out,
                           lb_error *err) {
    *out = NULL;
    if (!lb__crop_array_is(a)) return lb__err(err, LB_EINVAL, "not an array over a crop");
    const crop_impl *c = a->impl;
    if (ch >= c->channels) return lb__err(err, LB_EINVAL, "no channel %zu", ch);
    const uint64_t *G = c->gbits + ch * c->words, *D = c->dbits ? c->dbits + ch * c->words : NULL;
    size_t n_in = 0;
    for (size_t k = 0; k < c->n_in; k++) {
        uint64_t b = (uint64_t)1 << (k % 64);
        if ((G[k / 64] & b) || (D && (D[k / 64] & b))) n_in++;
    }
    lb_array *v = lb__array_alloc(a->vt, err);
    if (!v) return LB_ENOMEM;
    crop_impl *n = lb__calloc(1, sizeof *n, "crop array", err);
    int rc = n ? 0 : LB_ENOMEM;
    if (rc) goto fail;
    v->impl = n;
    n->mode = c->mode;
    n->unknown = c->unknown;
    n->squeeze = 1;
    n->infer = c->infer;
    n->channels = 1;
    n->n_in = n_in;
    n->words = n_in ? (n_in + 63) / 64 : 1;
    memcpy(n->voxel_size, c->voxel_size, sizeof n->voxel_size);
    n->crop_url = lb__strdup(c->crop_url, err);
    n->classes_source = lb__strdup(c->classes_source, err);
    n->in = lb__calloc(n_in ? n_in : 1, sizeof *n->in, "crop inputs", err);
    n->gbits = lb__calloc(n->words, sizeof *n->gbits, "crop groups", err);
    n->const_unknown = lb__calloc(1, 1, "crop groups", err);
    if (D) n->dbits = lb__calloc(n->words, sizeof *n->dbits, "crop groups", err);
    if (count) n->counts = lb__calloc(3, sizeof *n->counts, "crop counts", err);
    v->inputs = lb__calloc(n_in ? n_in : 1, sizeof *v->inputs, "crop inputs", err);
    if (!n->crop_url || !n->classes_source || !n->in || !n->gbits || !n->const_unknown ||
        (D && !n->dbits) || (count && !n->counts) || !v->inputs) {
        rc = LB_ENOMEM;
        goto fail;
    }
    n->const_unknown[0] = c->const_unknown[ch];
    size_t j = 0;
    for (size_t k = 0; k < c->n_in; k++) {
        uint64_t b = (uint64_t)1 << (k % 64), nb = (uint64_t)1 << (j % 64);
        int in_g = (G[k / 64] & b) != 0, in_d = D && (D[k / 64] & b);
        if (!in_g && !in_d) continue;
        if (in_g) n->gbits[j / 64] |= nb;
        if (in_d) n->dbits[j / 64] |= nb;
        n->in[j] = c->in[k];
        n->in[j].url = lb__strdup(c->in[k].url, err);
        if (!n->in[j].url) {
            rc = LB_ENOMEM;
            goto fail;
        }
        rc = lb_array_open(c->in[k].url, LB_OPEN_READONLY, NULL, 0, &v->inputs[j], err);
        if (rc) goto fail;
        v->n_inputs = ++j;
    }
    rc = build_lists(n, err);
    if (rc) goto fail;
    v->dims = a->dims;
    v->ndim = a->dims;
    memcpy(v->voxel_size, a->voxel_size, sizeof v->voxel_size);
    v->roi = a->roi;
    int lead = a->ndim - a->dims;
    for (int d = 0; d < a->dims; d++) {
        v->shape[d] = a->shape[lead + d];
        v->axes[d] = lb__strdup(a->axes[lead + d], err);
        if (!v->axes[d]) {
            rc = LB_ENOMEM;
            goto fail;
        }
    }
    if (c->info.groupings) {
        const lb_id *ids;
        size_t m = lb_groupings_ids(c->info.groupings, ch, &ids);
        rc = lb_groupings_new(&n->info.groupings, err);
        if (!rc) rc = lb_groupings_add(n->info.groupings, lb_groupings_name(c->info.groupings, ch),
                                       ids, m, err);
        if (rc) goto fail;
    } else if (c->class_names) {
        n->class_names = lb__calloc(1, sizeof *n->class_names, "class names", err);
        if (!n->class_names || !(n->class_names[0] = lb__strdup(c->class_names[ch], err))) {
            rc = LB_ENOMEM;
            goto fail;
        }
    }
    rc = lb__array_set_attrs(v, a->attrs, err);
    if (rc) goto fail;
    v->dtype = LB_DTYPE_UINT8;
    v->group_store = a->group_store ? lb__store_ref(a->group_store) : NULL;
    v->group_path = lb__strdup(a->group_path, err);
    if (a->group_path && !v->group_path) {
        rc = LB_ENOMEM;
        goto fail;
    }
    for (int w = 0; w < a->n_warnings && !rc; w++) rc = lb__array_warn(v, err, "%s", a->warnings[w]);
    if (rc) goto fail;
    *out = v;
    return 0;
fail:
    lb_array_free(v);
    return rc;
}
