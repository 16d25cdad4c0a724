/*
 * chain.c — codecs composed into a chain: validation against the chunk it
 * codes, and the one decode and one encode path of every format. Buffers are
 * routed so that the common chains (a compressor over little-endian bytes)
 * decode straight into the caller's chunk with no copy.
 */
#include "codec/chain.h"

#include <stdio.h>
#include <stdlib.h>

#include "codec/impl.h"
#include "codec/sharding.h"
#include "core/nd.h"

/* At most this many nested shards (a shard inside a shard inside …). */
#define MAX_NESTING 4

int lb__chunk_repr_set(lb__chunk_repr *r, int ndim, const int64_t *shape, size_t itemsize,
                       const uint8_t *fill, lb_error *err) {
    memset(r, 0, sizeof *r);
    if (ndim < 0 || ndim > LB_MAX_DIMS)
        return lb__err(err, LB_ELIMIT, "%d dimensions, the limit is %d", ndim, LB_MAX_DIMS);
    if (itemsize == 0 || itemsize > 8)
        return lb__err(err, LB_EINVAL, "element size %zu is not supported", itemsize);
    r->ndim = ndim;
    r->itemsize = itemsize;
    size_t total = itemsize;
    for (int k = 0; k < ndim; k++) {
        if (shape[k] <= 0)
            return lb__err(err, LB_EFORMAT, "chunk shape[%d] is %lld, expected a positive "
                           "integer", k, (long long)shape[k]);
        r->shape[k] = shape[k];
        if (lb__mul_size(total, (size_t)shape[k], &total) || total > LB__MAX_CHUNK_BYTES)
            return lb__err(err, LB_ELIMIT, "one chunk exceeds the limit of %zu bytes",
                           (size_t)LB__MAX_CHUNK_BYTES);
    }
    r->nbytes = total;
    if (fill) memcpy(r->fill, fill, itemsize);
    return 0;
}

void lb__codec_scratch_free(lb__codec_scratch *s) {
    if (!s) return;
    lb__buf_free(&s->a);
    lb__buf_free(&s->b);
    lb__buf_free(&s->c);
    lb__buf_free(&s->own);
    lb__buf_free(&s->box);
    lb__buf_free(&s->idx);
    if (s->nested) {
        lb__codec_scratch_free(s->nested);
        free(s->nested);
        s->nested = NULL;
    }
}

/* ---- building ---------------------------------------------------------------- */

void lb__chain_free(lb__chain *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) lb__codec_clear(&c->codec[i]);
    free(c);
}

lb__chain *lb__chain_dup(const lb__chain *c, lb_error *err) {
    if (!c) return NULL;
    lb__chain *d = lb__calloc(1, sizeof *d, "a codec chain", err);
    if (!d) return NULL;
    for (int i = 0; i < c->n; i++) {
        lb__codec *k = lb__codec_dup(&c->codec[i], err);
        if (!k) {
            lb__chain_free(d);
            return NULL;
        }
        d->codec[i] = *k; /* take over what it owns */
        free(k);
        d->n = i + 1;
    }
    d->ab = c->ab;
    return d;
}

/* Representations through the array→array codecs: reprs[0] = decoded,
 * reprs[ab] = what the array→bytes codec sees. */
static int chain_reprs(const lb__chain *c, const lb__chunk_repr *repr, lb__chunk_repr *reprs,
                       lb_error *err) {
    reprs[0] = *repr;
    for (int i = 0; i < c->ab; i++) {
        const lb__codec *t = &c->codec[i];
        if (t->ndim != reprs[i].ndim)
            return lb__err(err, LB_EFORMAT, "codecs[%d] (transpose): order has %d entries, "
                           "the chunk has %d dimensions", i, t->ndim, reprs[i].ndim);
        reprs[i + 1] = reprs[i];
        lb__transpose_encoded_shape(t, reprs[i].shape, reprs[i + 1].shape);
    }
    return 0;
}

static int check_chain(const lb__chain *c, const lb__chunk_repr *repr, const char *where,
                       int depth, lb_error *err);

/* Sharding: the inner shape divides the shard, the inner chain fits the inner
 * chunk, the index chain has a fixed size. */
static int check_sharding(const lb__codec *sh, const lb__chunk_repr *shard, const char *where,
                          int depth, lb_error *err) {
    if (depth >= MAX_NESTING)
        return lb__err(err, LB_ELIMIT, "%s: sharding nested more than %d levels deep", where,
                       MAX_NESTING);
    if (!sh->inner || !sh->index)
        return lb__err(err, LB_EFORMAT, "%s: sharding_indexed needs codecs and index_codecs",
                       where);
    if (sh->ndim != shard->ndim)
        return lb__err(err, LB_EFORMAT, "%s: sharding_indexed chunk_shape has %d entries, the "
                       "shard has %d dimensions", where, sh->ndim, shard->ndim);
    for (int k = 0; k < shard->ndim; k++)
        if (sh->inner_shape[k] <= 0 || shard->shape[k] % sh->inner_shape[k] != 0)
            return lb__err(err, LB_EFORMAT, "%s: sharding_indexed chunk_shape[%d] = %lld does "
                           "not divide the shard shape %lld", where, k,
                           (long long)sh->inner_shape[k], (long long)shard->shape[k]);
    int64_t per[LB_MAX_DIMS], count;
    int rc = lb__shard_grid(sh, shard, per, &count, err);
    if (rc) return rc;
    size_t isize;
    if ((rc = lb__shard_index_size(sh, count, &isize, err))) return lb__err_prefix(err, "%s", where);
    lb__chunk_repr inner;
    rc = lb__chunk_repr_set(&inner, shard->ndim, sh->inner_shape, shard->itemsize, shard->fill,
                            err);
    if (rc) return lb__err_prefix(err, "%s: sharding_indexed", where);
    char w[512];
    snprintf(w, sizeof w, "%s: sharding_indexed.codecs", where);
    if ((rc = check_chain(sh->inner, &inner, w, depth + 1, err))) return rc;
    return 0;
}

static int check_chain(const lb__chain *c, const lb__chunk_repr *repr, const char *where,
                       int depth, lb_error *err) {
    int n_ab = 0;
    for (int i = 0; i < c->n; i++) {
        lb__codec_kind k = lb__codec_kind_of(c->codec[i].id);
        if (k == LB__KIND_ARRAY_BYTES) n_ab++;
        if (n_ab == 0 && k == LB__KIND_BYTES_BYTES)
            return lb__err(err, LB_EFORMAT, "%s: codecs[%d] (%s) is a bytes→bytes codec before "
                           "the array→bytes codec", where, i, lb__codec_name(c->codec[i].id));
        if (n_ab > 0 && k == LB__KIND_ARRAY_ARRAY)
            return lb__err(err, LB_EFORMAT, "%s: codecs[%d] (%s) is an array→array codec after "
                           "the array→bytes codec", where, i, lb__codec_name(c->codec[i].id));
    }
    if (n_ab != 1)
        return lb__err(err, LB_EFORMAT, "%s: expected exactly one array→bytes codec (bytes, "
                       "sharding_indexed, …), found %d", where, n_ab);
    lb__chunk_repr reprs[LB__CHAIN_MAX + 1];
    int rc = chain_reprs(c, repr, reprs, err);
    if (rc) return lb__err_prefix(err, "%s", where);
    for (int i = 0; i < c->ab; i++) {
        const lb__codec *t = &c->codec[i];
        int seen[LB_MAX_DIMS] = {0};
        for (int k = 0; k < t->ndim; k++) {
            if (t->order[k] < 0 || t->order[k] >= t->ndim || seen[t->order[k]])
                return lb__err(err, LB_EFORMAT, "%s: codecs[%d] (transpose): order is not a "
                               "permutation of 0..%d", where, i, t->ndim - 1);
            seen[t->order[k]] = 1;
        }
    }
    const lb__codec *ab = &c->codec[c->ab];
    if (ab->id == LB__CODEC_SHARDING) {
        rc = check_sharding(ab, &reprs[c->ab], where, depth, err);
        if (rc) return rc;
    }
    return 0;
}

int lb__chain_new(const lb__codec *codecs, int n, const lb__chunk_repr *repr, const char *where,
                  lb__chain **out, lb_error *err) {
    *out = NULL;
    if (n < 1 || n > LB__CHAIN_MAX)
        return lb__err(err, n < 1 ? LB_EFORMAT : LB_ELIMIT, "%s: %d codecs (expected 1 to %d)",
                       where, n, LB__CHAIN_MAX);
    lb__chain tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.n = n;
    memcpy(tmp.codec, codecs, (size_t)n * sizeof *codecs);
    tmp.ab = -1;
    for (int i = 0; i < n; i++)
        if (tmp.ab < 0 && lb__codec_kind_of(codecs[i].id) == LB__KIND_ARRAY_BYTES) tmp.ab = i;
    int rc = check_chain(&tmp, repr, where, 0, err);
    if (rc) return rc;
    lb__chain *c = lb__chain_dup(&tmp, err);
    if (!c) return LB_ENOMEM;
    *out = c;
    return 0;
}

const lb__codec *lb__chain_partial_sharding(const lb__chain *c) {
    if (!c || c->n != 1 || c->ab != 0 || c->codec[0].id != LB__CODEC_SHARDING) return NULL;
    return &c->codec[0];
}

size_t lb__chain_bound(const lb__chain *c, const lb__chunk_repr *repr) {
    lb__chunk_repr reprs[LB__CHAIN_MAX + 1];
    if (chain_reprs(c, repr, reprs, NULL)) return SIZE_MAX;
    const lb__codec *ab = &c->codec[c->ab];
    size_t b = lb__codec_ops_of(ab->id)->ab_bound(ab, &reprs[c->ab]);
    for (int k = c->ab + 1; k < c->n && b != SIZE_MAX; k++) b = lb__codec_bb_bound(&c->codec[k], b);
    return b;
}

int64_t lb__chain_fixed_size(const lb__chain *c, const lb__chunk_repr *repr) {
    if (c->codec[c->ab].id != LB__CODEC_BYTES) return -1;
    int64_t size = (int64_t)repr->nbytes;
    for (int i = c->ab + 1; i < c->n; i++) {
        if (c->codec[i].id != LB__CODEC_CRC32C) return -1;
        size += 4;
    }
    return size;
}

/* ---- decoding ------------------------------------------------------------------ */

int lb__chain_decode(const lb__chain *c, const lb__chunk_repr *repr, const uint8_t *src,
                     size_t n, void *dst, lb__codec_scratch *s, lb_error *err) {
    lb__chunk_repr reprs[LB__CHAIN_MAX + 1];
    int rc = chain_reprs(c, repr, reprs, err);
    if (rc) return rc;
    const lb__codec *ab = &c->codec[c->ab];
    const lb__codec_ops *abops = lb__codec_ops_of(ab->id);
    const lb__chunk_repr *abr = &reprs[c->ab];

    /* Where the array→bytes codec writes: the caller's chunk unless a
     * transpose follows. */
    uint8_t *ab_out = dst;
    if (c->ab > 0) {
        if ((rc = lb__buf_reserve(&s->a, abr->nbytes, err))) return rc;
        ab_out = s->a.data;
    }

    /* bytes → bytes, last codec first. Decode capacities follow the
     * encoding sizes upward from the array→bytes codec's bound. */
    const uint8_t *cur = src;
    size_t cur_n = n;
    if (c->n > c->ab + 1) {
        size_t cap[LB__CHAIN_MAX];
        size_t base = abops->ab_bound(ab, abr);
        for (int k = c->ab + 1; k < c->n; k++) {
            cap[k] = base;
            base = base == SIZE_MAX ? SIZE_MAX : lb__codec_bb_bound(&c->codec[k], base);
        }
        lb__buf *bufs[2] = {&s->b, &s->c};
        int which = 0;
        for (int k = c->n - 1; k > c->ab; k--) {
            int into_chunk = k == c->ab + 1 && ab->id == LB__CODEC_BYTES;
            uint8_t *out;
            size_t room;
            if (into_chunk) {
                out = ab_out;
                room = abr->nbytes;
            } else {
                room = cap[k] == SIZE_MAX ? LB__MAX_CHUNK_FILE_BYTES : cap[k];
                if ((rc = lb__buf_reserve(bufs[which], room, err))) return rc;
                out = bufs[which]->data;
                which ^= 1;
            }
            size_t got = 0;
            rc = lb__codec_bb_decode(&c->codec[k], cur, cur_n, out, room, &got, into_chunk, err);
            if (rc) return rc;
            cur = out;
            cur_n = got;
        }
    }

    rc = abops->ab_decode(ab, abr, cur, cur_n, ab_out, s, err);
    if (rc) return rc;

    /* array → array, last first; the first writes the caller's chunk. */
    uint8_t *in = ab_out;
    for (int i = c->ab - 1; i >= 0; i--) {
        uint8_t *out;
        if (i == 0) {
            out = dst;
        } else {
            lb__buf *b = in == s->a.data ? &s->b : &s->a;
            if ((rc = lb__buf_reserve(b, reprs[i].nbytes, err))) return rc;
            out = b->data;
        }
        lb__transpose_decode(&c->codec[i], &reprs[i], in, out);
        in = out;
    }
    return 0;
}

/* ---- encoding ------------------------------------------------------------------ */

int lb__chain_encode(const lb__chain *c, const lb__chunk_repr *repr, const int64_t *extent,
                     const void *src, lb__buf *out, lb__codec_scratch *s, lb_error *err) {
    lb__chunk_repr reprs[LB__CHAIN_MAX + 1];
    int rc = chain_reprs(c, repr, reprs, err);
    if (rc) return rc;
    const lb__codec *ab = &c->codec[c->ab];
    const lb__codec_ops *abops = lb__codec_ops_of(ab->id);
    const uint8_t *in = src;

    /* The part of an edge chunk outside the array is stored as the fill
     * value whatever the caller left there, so that equal arrays give equal
     * chunks. N5 truncates edge blocks instead (its codec gets the extent). */
    int partial = 0;
    if (extent)
        for (int k = 0; k < repr->ndim; k++) partial |= extent[k] < repr->shape[k];
    const int64_t *ab_extent = NULL;
    if (partial && ab->id == LB__CODEC_N5_BLOCK && c->ab == 0) {
        ab_extent = extent;
    } else if (partial) {
        if ((rc = lb__buf_reserve(&s->c, repr->nbytes, err))) return rc;
        static const int64_t zero[LB_MAX_DIMS];
        lb__nd_fill(s->c.data, repr->nbytes, repr->fill, repr->itemsize);
        lb__nd_copy_box(repr->ndim, repr->itemsize, extent, src, repr->shape, zero, s->c.data,
                        repr->shape, zero);
        in = s->c.data;
    }

    for (int i = 0; i < c->ab; i++) {
        lb__buf *b = in == s->a.data ? &s->b : &s->a;
        if ((rc = lb__buf_reserve(b, reprs[i + 1].nbytes, err))) return rc;
        lb__transpose_encode(&c->codec[i], &reprs[i], in, b->data);
        in = b->data;
    }

    if (c->n == c->ab + 1) return abops->ab_encode(ab, &reprs[c->ab], ab_extent, in, out, s, err);

    /* bytes → bytes: the array→bytes output goes to a scratch buffer unless
     * it is native-order bytes, which are the array itself. */
    lb__buf *pool[3] = {&s->a, &s->b, &s->c};
    const uint8_t *cur;
    size_t cur_n;
    if (ab->id == LB__CODEC_BYTES && (ab->big_endian == lb__host_is_big_endian() ||
                                      reprs[c->ab].itemsize == 1)) {
        cur = in;
        cur_n = reprs[c->ab].nbytes;
    } else {
        lb__buf *b = pool[0]->data == in ? pool[1] : pool[0];
        rc = abops->ab_encode(ab, &reprs[c->ab], ab_extent, in, b, s, err);
        if (rc) return rc;
        cur = b->data;
        cur_n = b->size;
    }
    /* Two buffers that do not hold `cur`, used in turn. */
    lb__buf *turn[2] = {NULL, NULL};
    for (int i = 0, j = 0; i < 3 && j < 2; i++)
        if (pool[i]->data != cur || !cur) turn[j++] = pool[i];
    for (int k = c->ab + 1, which = 0; k < c->n; k++, which ^= 1) {
        lb__buf *target = k == c->n - 1 ? out : turn[which];
        rc = lb__codec_bb_encode(&c->codec[k], cur, cur_n, repr->itemsize, target, err);
        if (rc) return rc;
        cur = target->data;
        cur_n = target->size;
    }
    return 0;
}
