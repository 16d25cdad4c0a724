/*
 * n5_block.c — N5's blocks as an array→bytes codec: a big-endian header
 * (mode, rank, the block's own shape in N5's reversed order, and for mode 1
 * the element count) followed by the big-endian elements compressed with the
 * dataset's compression. Edge blocks are stored truncated to the array, as
 * the Java reference writes them; blocks padded to full size (zarr-python's
 * N5 store) read too.
 */
#include <stdio.h>

#include "codec/impl.h"
#include "core/nd.h"

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static size_t header_size(int ndim, int mode) { return 4 + 4 * (size_t)ndim + (mode == 1 ? 4 : 0); }

/* Decompress `n` bytes into at most `cap` (raw when there is no compression). */
static int payload_decode(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                          size_t cap, size_t *got, lb_error *err) {
    if (!c->compression) {
        if (n > cap) return lb__codec_err_declared(err, "raw block data", n, cap, 0);
        if (n) memcpy(dst, src, n);
        *got = n;
        return 0;
    }
    return lb__codec_bb_decode(c->compression, src, n, dst, cap, got, 0, err);
}

static int n5_decode(const lb__codec *c, const lb__chunk_repr *r, const uint8_t *p, size_t n,
                     uint8_t *dst, lb__codec_scratch *s, lb_error *err) {
    int nd = r->ndim;
    if (n < 4)
        return lb__err(err, LB_EFORMAT, "block is %zu bytes, too short for an N5 block header", n);
    unsigned mode = be16(p), hnd = be16(p + 2);
    if (mode == 2) return lb__err(err, LB_EUNSUPPORTED, "N5 object blocks (mode 2) are not supported");
    if (mode > 2) return lb__err(err, LB_EFORMAT, "unknown N5 block mode %u", mode);
    if ((int)hnd != nd)
        return lb__err(err, LB_EFORMAT, "block header has %u dimensions, the dataset has %d", hnd,
                       nd);
    size_t hdr = header_size(nd, (int)mode);
    if (n < hdr) return lb__err(err, LB_EFORMAT, "block is %zu bytes, its header needs %zu", n, hdr);
    int64_t bshape[LB_MAX_DIMS]; /* C order */
    int full = 1;
    size_t elems = 1;
    for (int k = 0; k < nd; k++) {
        int ck = nd - 1 - k;
        uint32_t v = be32(p + 4 + 4 * (size_t)k);
        if (v == 0 || (int64_t)v > r->shape[ck])
            return lb__err(err, LB_EFORMAT,
                           "block header dimension %d is %u, outside 1..%lld (the block size)", k,
                           v, (long long)r->shape[ck]);
        bshape[ck] = v;
        full &= (int64_t)v == r->shape[ck];
        elems *= v; /* <= the chunk's elements: cannot overflow */
    }
    if (mode == 1) {
        uint32_t ne = be32(p + 4 + 4 * (size_t)nd);
        if (ne != elems)
            return lb__err(err, LB_EFORMAT,
                           "varlength block declares %u elements, its dimensions give %zu", ne,
                           elems);
    }
    size_t bytes = elems * r->itemsize;
    uint8_t *target = dst;
    if (!full) {
        int rc = lb__buf_reserve(&s->own, bytes, err);
        if (rc) return rc;
        target = s->own.data;
    }
    size_t got = 0;
    int rc = payload_decode(c, p + hdr, n - hdr, target, bytes, &got, err);
    if (rc) return rc;
    if (got != bytes)
        return lb__err(err, LB_EFORMAT, "block decodes to %zu bytes, its header says %zu", got,
                       bytes);
    if (r->itemsize > 1 && !lb__host_is_big_endian()) lb__byteswap(target, elems, r->itemsize);
    if (!full) {
        static const int64_t zero[LB_MAX_DIMS];
        lb__nd_fill(dst, r->nbytes, r->fill, r->itemsize);
        lb__nd_copy_box(nd, r->itemsize, bshape, target, bshape, zero, dst, r->shape, zero);
    }
    return 0;
}

static int n5_encode(const lb__codec *c, const lb__chunk_repr *r, const int64_t *extent,
                     const uint8_t *src, lb__buf *out, lb__codec_scratch *s, lb_error *err) {
    int nd = r->ndim;
    int64_t ext[LB_MAX_DIMS];
    int edge = 0;
    size_t elems = 1;
    for (int k = 0; k < nd; k++) {
        ext[k] = extent ? extent[k] : r->shape[k];
        edge |= ext[k] != r->shape[k];
        elems *= (size_t)ext[k];
    }
    size_t bytes = elems * r->itemsize;
    int swap = r->itemsize > 1 && !lb__host_is_big_endian();
    const uint8_t *cur = src;
    int rc;
    if (edge || swap) {
        if ((rc = lb__buf_reserve(&s->own, bytes, err))) return rc;
        if (edge) {
            static const int64_t zero[LB_MAX_DIMS];
            lb__nd_copy_box(nd, r->itemsize, ext, src, r->shape, zero, s->own.data, ext, zero);
        } else {
            memcpy(s->own.data, src, bytes);
        }
        if (swap) lb__byteswap(s->own.data, elems, r->itemsize);
        cur = s->own.data;
    }
    size_t hdr = header_size(nd, 0);
    if (c->compression) {
        if ((rc = lb__codec_bb_encode(c->compression, cur, bytes, r->itemsize, out, err)))
            return rc;
    } else {
        if ((rc = lb__buf_reserve(out, bytes, err))) return rc;
        if (bytes) memcpy(out->data, cur, bytes);
        out->size = bytes;
    }
    if ((rc = lb__codec_reserve(out, out->size, hdr, "N5 block", err))) return rc;
    memmove(out->data + hdr, out->data, out->size);
    put16(out->data, 0);
    put16(out->data + 2, (uint16_t)nd);
    for (int k = 0; k < nd; k++) put32(out->data + 4 + 4 * (size_t)k, (uint32_t)ext[nd - 1 - k]);
    out->size += hdr;
    return 0;
}

static size_t n5_bound(const lb__codec *c, const lb__chunk_repr *r) {
    size_t body = c->compression ? lb__codec_bb_bound(c->compression, r->nbytes) : r->nbytes;
    size_t hdr = header_size(r->ndim, 1);
    return body > SIZE_MAX - hdr ? SIZE_MAX : body + hdr;
}

static void n5_describe(const lb__codec *c, char *buf, size_t size) {
    char inner[256] = "raw";
    if (c->compression) lb__codec_describe(c->compression, inner, sizeof inner);
    snprintf(buf, size, "n5 block(%s)", inner);
}

const lb__codec_ops lb__ops_n5_block = {
    .name = "n5_block",
    .kind = LB__KIND_ARRAY_BYTES,
    .ab_decode = n5_decode,
    .ab_encode = n5_encode,
    .ab_bound = n5_bound,
    .describe = n5_describe,
};
