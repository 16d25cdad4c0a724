/*
 * sharding.c — the "sharding_indexed" array→bytes codec (Zarr v3): a shard
 * holds inner chunks, each coded by its own chain, and an index of
 * (offset, nbytes) pairs, uint64, coded by the index chain (a fixed size:
 * bytes, then usually crc32c), at the start or the end of the shard. An
 * entry of two 2^64-1 marks an absent inner chunk (the fill value).
 *
 * Hostile shards are refused, never read as zeros: index entries outside
 * the shard, on the index, overlapping each other or half-empty; a wrong
 * index checksum; inner chunks that decode to the wrong size. Nesting is
 * bounded (chain.c) and so is the number of inner chunks.
 */
#include <stdio.h>
#include <stdlib.h>

#include "codec/impl.h"
#include "codec/sharding.h"
#include "core/nd.h"

int lb__shard_grid(const lb__codec *sh, const lb__chunk_repr *r, int64_t *per, int64_t *count,
                   lb_error *err) {
    int64_t n = 1;
    for (int k = 0; k < r->ndim; k++) {
        if (sh->inner_shape[k] <= 0 || r->shape[k] % sh->inner_shape[k] != 0)
            return lb__err(err, LB_EFORMAT, "inner chunk shape[%d] = %lld does not divide the "
                           "shard shape %lld", k, (long long)sh->inner_shape[k],
                           (long long)r->shape[k]);
        per[k] = r->shape[k] / sh->inner_shape[k];
        if (lb__mul_i64(n, per[k], &n) || n > LB__SHARD_MAX_INNER)
            return lb__err(err, LB_ELIMIT, "a shard of this shape holds more than %lld inner "
                           "chunks", (long long)LB__SHARD_MAX_INNER);
    }
    *count = n;
    return 0;
}

/* The index as an array: per-dim counts + a trailing 2, uint64. */
static int index_repr(const lb__codec *sh, int64_t count, lb__chunk_repr *ir, lb_error *err) {
    (void)sh;
    int64_t shape[2] = {count, 2};
    /* The index chain is validated as 2-d (count, 2): only bytes/crc32c
     * (and transposes of that shape) may code it. */
    return lb__chunk_repr_set(ir, 2, shape, 8, NULL, err);
}

int lb__shard_index_size(const lb__codec *sh, int64_t count, size_t *out, lb_error *err) {
    lb__chunk_repr ir;
    int rc = index_repr(sh, count, &ir, err);
    if (rc) return rc;
    int64_t size = lb__chain_fixed_size(sh->index, &ir);
    if (size < 0)
        return lb__err(err, LB_EFORMAT, "sharding_indexed: index_codecs must have a fixed size "
                       "(bytes, optionally followed by crc32c)");
    *out = (size_t)size;
    return 0;
}

typedef struct span {
    uint64_t offset, nbytes;
    int64_t chunk;
} span;

static int span_cmp(const void *pa, const void *pb) {
    const span *a = pa, *b = pb;
    return a->offset < b->offset ? -1 : a->offset > b->offset;
}

int lb__shard_index_decode(const lb__codec *sh, const uint8_t *src, size_t n, int64_t count,
                           uint64_t shard_size, uint64_t *entries, lb__codec_scratch *s,
                           lb_error *err) {
    lb__chunk_repr ir;
    size_t isize = 0;
    int rc = index_repr(sh, count, &ir, err);
    if (!rc) rc = lb__shard_index_size(sh, count, &isize, err);
    if (rc) return rc;
    if (n != isize)
        return lb__err(err, LB_EFORMAT, "shard index is %zu bytes, expected %zu", n, isize);
    rc = lb__chain_decode(sh->index, &ir, src, n, entries, s, err);
    if (rc) return lb__err_prefix(err, "shard index");
    /* Where the index itself lies, when the shard's size is known. */
    uint64_t ilo = 0, ihi = 0;
    if (shard_size != UINT64_MAX) {
        if (shard_size < isize)
            return lb__err(err, LB_EFORMAT, "shard is %llu bytes, shorter than its %zu-byte "
                           "index", (unsigned long long)shard_size, isize);
        ilo = sh->index_at_start ? 0 : shard_size - isize;
        ihi = ilo + isize;
    }
    span *sp = malloc((size_t)count * sizeof *sp + 1);
    if (!sp) return lb__err(err, LB_ENOMEM, "out of memory checking a shard index");
    size_t m = 0;
    for (int64_t i = 0; i < count && !rc; i++) {
        uint64_t off = entries[2 * i], nb = entries[2 * i + 1];
        if (off == LB__SHARD_EMPTY && nb == LB__SHARD_EMPTY) continue;
        if (off == LB__SHARD_EMPTY || nb == LB__SHARD_EMPTY) {
            rc = lb__err(err, LB_EFORMAT, "shard index entry %lld is half empty (offset %llu, "
                         "nbytes %llu)", (long long)i, (unsigned long long)off,
                         (unsigned long long)nb);
            break;
        }
        uint64_t end;
        if (__builtin_add_overflow(off, nb, &end) ||
            (shard_size != UINT64_MAX && end > shard_size)) {
            rc = lb__err(err, LB_EFORMAT, "shard index entry %lld (offset %llu, nbytes %llu) "
                         "points outside the %llu-byte shard", (long long)i,
                         (unsigned long long)off, (unsigned long long)nb,
                         (unsigned long long)shard_size);
            break;
        }
        if (shard_size != UINT64_MAX && nb > 0 && off < ihi && end > ilo) {
            rc = lb__err(err, LB_EFORMAT, "shard index entry %lld (offset %llu, nbytes %llu) "
                         "overlaps the index", (long long)i, (unsigned long long)off,
                         (unsigned long long)nb);
            break;
        }
        if (nb > 0) sp[m++] = (span){off, nb, i};
    }
    if (!rc && m > 1) {
        qsort(sp, m, sizeof *sp, span_cmp);
        for (size_t i = 1; i < m; i++)
            if (sp[i].offset < sp[i - 1].offset + sp[i - 1].nbytes) {
                rc = lb__err(err, LB_EFORMAT, "shard index entries %lld and %lld overlap",
                             (long long)sp[i - 1].chunk, (long long)sp[i].chunk);
                break;
            }
    }
    free(sp);
    return rc;
}

/* Inner chunk i of a shard of `r`: its origin in the shard. */
static void inner_origin(const lb__codec *sh, const lb__chunk_repr *r, const int64_t *per,
                         int64_t i, int64_t *origin) {
    for (int k = r->ndim - 1; k >= 0; k--) {
        origin[k] = (i % per[k]) * sh->inner_shape[k];
        i /= per[k];
    }
}

static lb__codec_scratch *nested(lb__codec_scratch *s, lb_error *err) {
    if (!s->nested) s->nested = lb__calloc(1, sizeof *s->nested, "codec scratch", err);
    return s->nested;
}

static int shard_decode(const lb__codec *sh, const lb__chunk_repr *r, const uint8_t *src,
                        size_t n, uint8_t *dst, lb__codec_scratch *s, lb_error *err) {
    int64_t per[LB_MAX_DIMS], count = 0;
    size_t isize = 0;
    int rc = lb__shard_grid(sh, r, per, &count, err);
    if (!rc) rc = lb__shard_index_size(sh, count, &isize, err);
    if (rc) return rc;
    if (n < isize)
        return lb__err(err, LB_EFORMAT, "shard is %zu bytes, shorter than its %zu-byte index", n,
                       isize);
    lb__codec_scratch *ns = nested(s, err);
    if (!ns) return LB_ENOMEM;
    if ((rc = lb__buf_reserve(&s->idx, (size_t)count * 16, err))) return rc;
    uint64_t *entries = (uint64_t *)(void *)s->idx.data;
    const uint8_t *isrc = sh->index_at_start ? src : src + (n - isize);
    rc = lb__shard_index_decode(sh, isrc, isize, count, n, entries, ns, err);
    if (rc) return rc;
    lb__chunk_repr ir;
    if ((rc = lb__chunk_repr_set(&ir, r->ndim, sh->inner_shape, r->itemsize, r->fill, err)))
        return rc;
    if ((rc = lb__buf_reserve(&s->box, ir.nbytes, err))) return rc;
    static const int64_t zero[LB_MAX_DIMS];
    for (int64_t i = 0; i < count; i++) {
        int64_t origin[LB_MAX_DIMS];
        inner_origin(sh, r, per, i, origin);
        uint64_t off = entries[2 * i], nb = entries[2 * i + 1];
        if (off == LB__SHARD_EMPTY) {
            lb__nd_fill(s->box.data, ir.nbytes, r->fill, r->itemsize);
        } else {
            rc = lb__chain_decode(sh->inner, &ir, src + off, (size_t)nb, s->box.data, ns, err);
            if (rc) return lb__err_prefix(err, "inner chunk %lld", (long long)i);
        }
        lb__nd_copy_box(r->ndim, r->itemsize, ir.shape, s->box.data, ir.shape, zero, dst,
                        r->shape, origin);
    }
    return 0;
}

static int shard_encode(const lb__codec *sh, const lb__chunk_repr *r, const int64_t *extent,
                        const uint8_t *src, lb__buf *out, lb__codec_scratch *s, lb_error *err) {
    int64_t per[LB_MAX_DIMS], count = 0;
    size_t isize = 0;
    int rc = lb__shard_grid(sh, r, per, &count, err);
    if (!rc) rc = lb__shard_index_size(sh, count, &isize, err);
    if (rc) return rc;
    lb__codec_scratch *ns = nested(s, err);
    if (!ns) return LB_ENOMEM;
    lb__chunk_repr ir;
    if ((rc = lb__chunk_repr_set(&ir, r->ndim, sh->inner_shape, r->itemsize, r->fill, err)))
        return rc;
    if ((rc = lb__buf_reserve(&s->box, ir.nbytes, err))) return rc;
    if ((rc = lb__buf_reserve(&s->idx, (size_t)count * 16, err))) return rc;
    uint64_t *entries = (uint64_t *)(void *)s->idx.data;
    out->size = 0;
    if (sh->index_at_start && (rc = lb__buf_reserve(out, isize, err))) return rc;
    if (sh->index_at_start) out->size = isize;
    for (int64_t i = 0; i < count; i++) {
        int64_t origin[LB_MAX_DIMS], ext[LB_MAX_DIMS];
        static const int64_t zero[LB_MAX_DIMS];
        inner_origin(sh, r, per, i, origin);
        int outside = 0, partial = 0;
        for (int k = 0; k < r->ndim; k++) {
            int64_t e = (extent ? extent[k] : r->shape[k]) - origin[k];
            if (e <= 0) outside = 1;
            ext[k] = e > ir.shape[k] ? ir.shape[k] : e;
            partial |= ext[k] < ir.shape[k];
        }
        entries[2 * i] = entries[2 * i + 1] = LB__SHARD_EMPTY;
        if (outside) continue;
        lb__nd_copy_box(r->ndim, r->itemsize, ir.shape, src, r->shape, origin, s->box.data,
                        ir.shape, zero);
        if (lb__nd_is_fill(s->box.data, ir.nbytes, r->fill, r->itemsize)) continue;
        rc = lb__chain_encode(sh->inner, &ir, partial ? ext : NULL, s->box.data, &s->own, ns,
                              err);
        if (rc) return lb__err_prefix(err, "inner chunk %lld", (long long)i);
        entries[2 * i] = out->size;
        entries[2 * i + 1] = s->own.size;
        if ((rc = lb__buf_append(out, s->own.data, s->own.size, err))) return rc;
    }
    /* The index is coded with the index chain as little-endian uint64 in
     * memory order; entries are native here, as the bytes codec expects. */
    lb__chunk_repr xr;
    if ((rc = index_repr(sh, count, &xr, err))) return rc;
    rc = lb__chain_encode(sh->index, &xr, NULL, entries, &s->own, ns, err);
    if (rc) return lb__err_prefix(err, "shard index");
    if (s->own.size != isize)
        return lb__err(err, LB_EFORMAT, "shard index encoded to %zu bytes, expected %zu",
                       s->own.size, isize);
    if (sh->index_at_start) {
        memcpy(out->data, s->own.data, isize);
        return 0;
    }
    return lb__buf_append(out, s->own.data, isize, err);
}

int lb__shard_assemble(const lb__codec *sh, int64_t count, uint64_t *entries,
                       const uint8_t *data, size_t n, lb__buf *out, lb__codec_scratch *s,
                       lb_error *err) {
    size_t isize = 0;
    lb__chunk_repr xr;
    int rc = lb__shard_index_size(sh, count, &isize, err);
    if (!rc) rc = index_repr(sh, count, &xr, err);
    if (rc) return rc;
    if (sh->index_at_start)
        for (int64_t i = 0; i < count; i++)
            if (entries[2 * i] != LB__SHARD_EMPTY) entries[2 * i] += isize;
    lb__codec_scratch *ns = nested(s, err);
    if (!ns) return LB_ENOMEM;
    rc = lb__chain_encode(sh->index, &xr, NULL, entries, &s->own, ns, err);
    if (rc) return lb__err_prefix(err, "shard index");
    if (s->own.size != isize)
        return lb__err(err, LB_EFORMAT, "shard index encoded to %zu bytes, expected %zu",
                       s->own.size, isize);
    out->size = 0;
    if (sh->index_at_start && (rc = lb__buf_append(out, s->own.data, isize, err))) return rc;
    if (n && (rc = lb__buf_append(out, data, n, err))) return rc;
    if (!sh->index_at_start) rc = lb__buf_append(out, s->own.data, isize, err);
    return rc;
}

static size_t shard_bound(const lb__codec *sh, const lb__chunk_repr *r) {
    int64_t per[LB_MAX_DIMS], count = 0;
    size_t isize = 0;
    lb__chunk_repr ir;
    if (lb__shard_grid(sh, r, per, &count, NULL) || lb__shard_index_size(sh, count, &isize, NULL) ||
        lb__chunk_repr_set(&ir, r->ndim, sh->inner_shape, r->itemsize, r->fill, NULL))
        return SIZE_MAX;
    size_t inner = lb__chain_bound(sh->inner, &ir), total;
    if (inner == SIZE_MAX || lb__mul_size(inner, (size_t)count, &total) ||
        lb__add_size(total, isize, &total))
        return SIZE_MAX;
    return total;
}

static void shard_describe(const lb__codec *sh, char *buf, size_t size) {
    size_t len = (size_t)snprintf(buf, size, "sharding_indexed(chunk_shape [");
    for (int k = 0; k < sh->ndim && len < size; k++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", k ? ", " : "",
                                (long long)sh->inner_shape[k]);
    if (len < size) len += (size_t)snprintf(buf + len, size - len, "], codecs [");
    for (int i = 0; sh->inner && i < sh->inner->n && len < size; i++) {
        char one[256];
        lb__codec_describe(&sh->inner->codec[i], one, sizeof one);
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "", one);
    }
    if (len < size)
        snprintf(buf + len, size - len, "], index at the %s)", sh->index_at_start ? "start" : "end");
}

const lb__codec_ops lb__ops_sharding = {
    .name = "sharding_indexed",
    .kind = LB__KIND_ARRAY_BYTES,
    .ab_decode = shard_decode,
    .ab_encode = shard_encode,
    .ab_bound = shard_bound,
    .describe = shard_describe,
};
