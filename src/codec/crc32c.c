/*
 * crc32c.c — the "crc32c" bytes→bytes codec: the bytes followed by their
 * CRC32C (Castagnoli, RFC 3720) as a little-endian uint32, computed with
 * ISA-L. Decoding verifies the checksum and strips it.
 */
#include <isa-l/crc.h>
#include <stdio.h>

#include "codec/crc32c.h"
#include "codec/impl.h"

uint32_t lb__crc32c(const void *data, size_t n) {
    const unsigned char *p = data;
    uint32_t crc = 0xFFFFFFFFu;
    while (n > 0) { /* ISA-L takes an int length */
        int step = n > ((size_t)1 << 30) ? 1 << 30 : (int)n;
        crc = crc32_iscsi((unsigned char *)p, step, crc);
        p += step;
        n -= (size_t)step;
    }
    return crc ^ 0xFFFFFFFFu;
}

static int crc_decode(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                      size_t cap, size_t *got, int exact, lb_error *err) {
    (void)c;
    if (n < 4)
        return lb__err(err, LB_EFORMAT, "crc32c: %zu bytes, too short to hold a checksum", n);
    size_t m = n - 4;
    if (m > cap || (exact && m != cap))
        return lb__codec_err_short(err, "crc32c data", m, cap);
    uint32_t want = (uint32_t)src[m] | (uint32_t)src[m + 1] << 8 | (uint32_t)src[m + 2] << 16 |
                    (uint32_t)src[m + 3] << 24;
    uint32_t have = lb__crc32c(src, m);
    if (want != have)
        return lb__err(err, LB_EFORMAT, "crc32c checksum mismatch (stored %08x, computed %08x)",
                       want, have);
    if (m && dst != src) memmove(dst, src, m);
    *got = m;
    return 0;
}

static int crc_encode(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                      lb__buf *out, lb_error *err) {
    (void)c;
    (void)typesize;
    int rc = lb__codec_reserve(out, n, 4, "crc32c", err);
    if (rc) return rc;
    if (n) memcpy(out->data, src, n);
    uint32_t v = lb__crc32c(src, n);
    out->data[n] = (uint8_t)v;
    out->data[n + 1] = (uint8_t)(v >> 8);
    out->data[n + 2] = (uint8_t)(v >> 16);
    out->data[n + 3] = (uint8_t)(v >> 24);
    out->size = n + 4;
    return 0;
}

static size_t crc_bound(const lb__codec *c, size_t n) {
    (void)c;
    return n > SIZE_MAX - 4 ? SIZE_MAX : n + 4;
}

static void crc_describe(const lb__codec *c, char *buf, size_t size) {
    (void)c;
    snprintf(buf, size, "crc32c");
}

const lb__codec_ops lb__ops_crc32c = {
    .name = "crc32c",
    .kind = LB__KIND_BYTES_BYTES,
    .bb_decode = crc_decode,
    .bb_encode = crc_encode,
    .bb_bound = crc_bound,
    .describe = crc_describe,
};
