/*
 * xz.c — the xz codec (liblzma, the .xz container), decoded with a memory
 * limit on the decoder's dictionary.
 */
#include <lzma.h>

#include "codec/impl.h"

#define DEFAULT_XZ_PRESET 6
/* xz decoders may ask for large dictionaries; above this they are refused. */
#define XZ_MEMLIMIT ((uint64_t)1 << 30)

static int dec_xz(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                  int exact, lb_error *err) {
    if (n < 32) return lb__err(err, LB_EFORMAT, "xz data is truncated (%zu bytes)", n);
    lzma_stream s = LZMA_STREAM_INIT;
    lzma_ret r = lzma_stream_decoder(&s, XZ_MEMLIMIT, LZMA_CONCATENATED);
    if (r != LZMA_OK)
        return lb__err(err, r == LZMA_MEM_ERROR ? LB_ENOMEM : LB_EFORMAT,
                       "xz: cannot start a decoder (%d)", (int)r);
    uint8_t spill;
    int spilled = 0, rc = 0;
    s.next_in = src;
    s.avail_in = n;
    s.next_out = dst;
    s.avail_out = cap;
    for (;;) {
        r = lzma_code(&s, LZMA_FINISH);
        if (r == LZMA_STREAM_END) break;
        if (r == LZMA_OK && s.avail_out == 0) {
            if (spilled) {
                rc = lb__codec_err_expands(err, "xz data", cap);
                break;
            }
            spilled = 1;
            s.next_out = &spill;
            s.avail_out = 1;
            continue;
        }
        if (r == LZMA_OK) continue;
        if (r == LZMA_BUF_ERROR && s.avail_out == 0)
            rc = lb__codec_err_expands(err, "xz data", cap);
        else if (r == LZMA_MEM_ERROR)
            rc = lb__err(err, LB_ENOMEM, "xz: out of memory");
        else if (r == LZMA_MEMLIMIT_ERROR)
            rc = lb__err(err, LB_EFORMAT, "xz data needs more than %" PRIu64 " MiB to decode",
                         XZ_MEMLIMIT >> 20);
        else if (r == LZMA_BUF_ERROR)
            rc = lb__err(err, LB_EFORMAT, "xz data is truncated");
        else
            rc = lb__err(err, LB_EFORMAT, "xz data is corrupt (%d)", (int)r);
        break;
    }
    size_t left = s.avail_out;
    lzma_end(&s);
    if (rc) return rc;
    if (spilled && left == 0) return lb__codec_err_expands(err, "xz data", cap);
    size_t out = spilled ? cap : cap - left;
    if (exact && out != cap) return lb__codec_err_short(err, "xz data", out, cap);
    *got = out;
    return 0;
}

static int enc_xz(const lb__codec *c, const uint8_t *src, size_t n, lb__buf *out,
                  lb_error *err) {
    size_t bound = lzma_stream_buffer_bound(n);
    if (bound == 0) return lb__err(err, LB_ELIMIT, "xz cannot compress %zu bytes", n);
    int rc = lb__buf_reserve(out, bound, err);
    if (rc) return rc;
    uint32_t preset = (uint32_t)(c->level >= 0 && c->level <= 9 ? c->level : DEFAULT_XZ_PRESET);
    if (c->xz_extreme) preset |= LZMA_PRESET_EXTREME;
    size_t pos = 0;
    lzma_ret r = lzma_easy_buffer_encode(preset, LZMA_CHECK_CRC64, NULL, src, n, out->data,
                                         &pos, bound);
    if (r != LZMA_OK)
        return lb__err(err, r == LZMA_MEM_ERROR ? LB_ENOMEM : LB_EINVAL,
                       "xz compression failed (%d)", (int)r);
    out->size = pos;
    return 0;
}

static int xz_bb_decode(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                       size_t cap, size_t *got, int exact, lb_error *err) {
    (void)c;
    return dec_xz(src, n, dst, cap, got, exact, err);
}

static int xz_bb_encode(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                       lb__buf *out, lb_error *err) {
    (void)typesize;
    return enc_xz(c, src, n, out, err);
}

static size_t xz_bb_bound(const lb__codec *c, size_t n) {
    (void)c;
    size_t b = lzma_stream_buffer_bound(n);
    return b ? b : SIZE_MAX;
}

const lb__codec_ops lb__ops_xz = {
    .name = "numcodecs.lzma",
    .kind = LB__KIND_BYTES_BYTES,
    .bb_decode = xz_bb_decode,
    .bb_encode = xz_bb_encode,
    .bb_bound = xz_bb_bound,
};
