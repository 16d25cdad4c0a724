/*
 * bytes.c — the "bytes" array→bytes codec: a chunk's elements in C order, in
 * little- or big-endian byte order (Zarr v3 `bytes`; what Zarr v2 stores
 * under its dtype's byte order).
 */
#include <stdio.h>

#include "codec/impl.h"

static int swaps(const lb__codec *c, const lb__chunk_repr *r) {
    return r->itemsize > 1 && (c->big_endian != 0) != (lb__host_is_big_endian() != 0);
}

static int bytes_decode(const lb__codec *c, const lb__chunk_repr *r, const uint8_t *src,
                        size_t n, uint8_t *dst, lb__codec_scratch *s, lb_error *err) {
    (void)s;
    if (n != r->nbytes)
        return lb__err(err, LB_EFORMAT, "chunk holds %zu bytes, expected %zu (%zu elements "
                       "of %zu bytes)", n, r->nbytes, r->nbytes / r->itemsize, r->itemsize);
    if (src != dst) memcpy(dst, src, n);
    if (swaps(c, r)) lb__byteswap(dst, n / r->itemsize, r->itemsize);
    return 0;
}

static int bytes_encode(const lb__codec *c, const lb__chunk_repr *r, const int64_t *extent,
                        const uint8_t *src, lb__buf *out, lb__codec_scratch *s, lb_error *err) {
    (void)extent;
    (void)s;
    int rc = lb__buf_reserve(out, r->nbytes, err);
    if (rc) return rc;
    memcpy(out->data, src, r->nbytes);
    out->size = r->nbytes;
    if (swaps(c, r)) lb__byteswap(out->data, r->nbytes / r->itemsize, r->itemsize);
    return 0;
}

static size_t bytes_bound(const lb__codec *c, const lb__chunk_repr *r) {
    (void)c;
    return r->nbytes;
}

static void bytes_describe(const lb__codec *c, char *buf, size_t size) {
    snprintf(buf, size, "bytes(%s)", c->big_endian ? "big" : "little");
}

const lb__codec_ops lb__ops_bytes = {
    .name = "bytes",
    .kind = LB__KIND_ARRAY_BYTES,
    .ab_decode = bytes_decode,
    .ab_encode = bytes_encode,
    .ab_bound = bytes_bound,
    .describe = bytes_describe,
};
