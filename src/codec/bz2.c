/*
 * bz2.c — the bzip2 codec (libbz2), decoded in bounded steps so that a
 * stream can never write past the chunk.
 */
#include <bzlib.h>
#include <limits.h>

#include "codec/impl.h"

#define DEFAULT_BZ2_LEVEL 9

static int dec_bz2(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                   int exact, lb_error *err) {
    if (n < 14) return lb__err(err, LB_EFORMAT, "bz2 data is truncated (%zu bytes)", n);
    if (n > UINT_MAX || cap > UINT_MAX)
        return lb__err(err, LB_ELIMIT, "bz2 chunks over 4 GiB are not supported");
    bz_stream s;
    memset(&s, 0, sizeof s);
    uint8_t spill; /* one byte past cap tells "too big" from "exactly full" */
    int spilled = 0, inited = 0, rc = 0;
    s.next_in = (char *)(uintptr_t)src;
    s.avail_in = (unsigned)n;
    s.next_out = (char *)dst;
    s.avail_out = (unsigned)cap;
    /* Streams may be concatenated (pbzip2); each gets a fresh decoder. */
    for (;;) {
        if (!inited) {
            int r = BZ2_bzDecompressInit(&s, 0, 0);
            if (r != BZ_OK) {
                rc = lb__err(err, r == BZ_MEM_ERROR ? LB_ENOMEM : LB_EFORMAT,
                             "bz2: cannot start a decoder (%d)", r);
                break;
            }
            inited = 1;
        }
        unsigned in0 = s.avail_in, out0 = s.avail_out;
        int r = BZ2_bzDecompress(&s);
        if (r == BZ_STREAM_END) {
            BZ2_bzDecompressEnd(&s);
            inited = 0;
            if (s.avail_in == 0) break;
            continue;
        }
        if (r != BZ_OK) {
            rc = lb__err(err, r == BZ_MEM_ERROR ? LB_ENOMEM : LB_EFORMAT,
                         "bz2 data is corrupt (%d)", r);
            break;
        }
        if (s.avail_out == 0) {
            if (spilled) {
                rc = lb__codec_err_expands(err, "bz2 data", cap);
                break;
            }
            spilled = 1;
            s.next_out = (char *)&spill;
            s.avail_out = 1;
            continue;
        }
        if (s.avail_in == in0 && s.avail_out == out0) {
            rc = lb__err(err, LB_EFORMAT, "bz2 data is truncated");
            break;
        }
    }
    if (inited) BZ2_bzDecompressEnd(&s);
    if (rc) return rc;
    if (spilled && s.avail_out == 0) return lb__codec_err_expands(err, "bz2 data", cap);
    size_t out = spilled ? cap : cap - s.avail_out;
    if (exact && out != cap) return lb__codec_err_short(err, "bz2 data", out, cap);
    *got = out;
    return 0;
}

static int enc_bz2(const lb__codec *c, const uint8_t *src, size_t n, lb__buf *out,
                   lb_error *err) {
    if (n > UINT_MAX / 2)
        return lb__err(err, LB_ELIMIT, "bz2 cannot compress %zu bytes in one call", n);
    size_t bound = n + n / 100 + 601; /* bzlib manual: 1% + 600 bytes */
    int rc = lb__buf_reserve(out, bound, err);
    if (rc) return rc;
    unsigned dlen = (unsigned)bound;
    int level = c->level >= 1 && c->level <= 9 ? c->level : DEFAULT_BZ2_LEVEL;
    int r = BZ2_bzBuffToBuffCompress((char *)out->data, &dlen, (char *)(uintptr_t)src,
                                     (unsigned)n, level, 0, 0);
    if (r != BZ_OK)
        return lb__err(err, r == BZ_MEM_ERROR ? LB_ENOMEM : LB_EINVAL,
                       "bz2 compression failed (%d)", r);
    out->size = dlen;
    return 0;
}

static int bz2_bb_decode(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                       size_t cap, size_t *got, int exact, lb_error *err) {
    (void)c;
    return dec_bz2(src, n, dst, cap, got, exact, err);
}

static int bz2_bb_encode(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                       lb__buf *out, lb_error *err) {
    (void)typesize;
    return enc_bz2(c, src, n, out, err);
}

static size_t bz2_bb_bound(const lb__codec *c, size_t n) {
    (void)c;
    return n > SIZE_MAX / 2 ? SIZE_MAX : n + n / 100 + 601;
}

const lb__codec_ops lb__ops_bz2 = {
    .name = "numcodecs.bz2",
    .kind = LB__KIND_BYTES_BYTES,
    .bb_decode = bz2_bb_decode,
    .bb_encode = bz2_bb_encode,
    .bb_bound = bz2_bb_bound,
};
