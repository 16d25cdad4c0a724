/*
 * lz4.c — the two lz4 framings: numcodecs' (a 4-byte little-endian size and
 * one LZ4 block) and N5's (lz4-java's LZ4Block stream, each block with a
 * header and an XXH32 checksum).
 */
#include <limits.h>
#include <lz4.h>

#include "codec/impl.h"
#include "codec/lz4.h"

#define DEFAULT_N5_LZ4_BLOCK 65536
/* lz4-java LZ4BlockOutputStream framing (N5 "lz4"). */
#define N5LZ4_MAGIC "LZ4Block"
#define N5LZ4_HEADER 21
#define N5LZ4_RAW 0x10
#define N5LZ4_LZ4 0x20
#define N5LZ4_LEVEL_BASE 10
#define N5LZ4_MIN_BLOCK 64
#define N5LZ4_MAX_BLOCK (1 << 25)
#define N5LZ4_SEED 0x9747b28cU


static uint32_t rd_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* XXH32 (Yann Collet's xxHash, 32-bit variant), written from the published
 * algorithm description; lz4-java checksums N5 lz4 blocks with it. */
#define XXP1 0x9E3779B1U
#define XXP2 0x85EBCA77U
#define XXP3 0xC2B2AE3DU
#define XXP4 0x27D4EB2FU
#define XXP5 0x165667B1U
static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
static uint32_t xxh_round(uint32_t acc, uint32_t lane) {
    return rotl32(acc + lane * XXP2, 13) * XXP1;
}
uint32_t lb__xxh32(const void *data, size_t len, uint32_t seed) {
    const uint8_t *p = data ? data : (const void *)"", *end = p + (data ? len : 0);
    uint32_t h;
    if (len >= 16) {
        uint32_t v1 = seed + XXP1 + XXP2, v2 = seed + XXP2, v3 = seed, v4 = seed - XXP1;
        const uint8_t *limit = end - 16;
        do {
            v1 = xxh_round(v1, rd_le32(p));
            v2 = xxh_round(v2, rd_le32(p + 4));
            v3 = xxh_round(v3, rd_le32(p + 8));
            v4 = xxh_round(v4, rd_le32(p + 12));
            p += 16;
        } while (p <= limit);
        h = rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18);
    } else {
        h = seed + XXP5;
    }
    h += (uint32_t)len;
    while (end - p >= 4) {
        h = rotl32(h + rd_le32(p) * XXP3, 17) * XXP4;
        p += 4;
    }
    while (p < end) {
        h = rotl32(h + (*p++) * XXP5, 11) * XXP1;
    }
    h ^= h >> 15;
    h *= XXP2;
    h ^= h >> 13;
    h *= XXP3;
    h ^= h >> 16;
    return h;
}

static int dec_lz4(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                   int exact, lb_error *err) {
    if (n < 4) return lb__err(err, LB_EFORMAT, "lz4 data is truncated (%zu bytes)", n);
    size_t declared = rd_le32(src);
    if (declared > cap || (exact && declared != cap))
        return lb__codec_err_declared(err, "lz4 header", declared, cap, exact);
    if (declared > LZ4_MAX_INPUT_SIZE || n - 4 > INT_MAX)
        return lb__err(err, LB_EFORMAT, "lz4 block is too large (%zu bytes)", declared);
    if (declared == 0 && n == 4) { /* no block at all: accept as empty */
        *got = 0;
        return 0;
    }
    int r = LZ4_decompress_safe((const char *)src + 4, (char *)dst, (int)(n - 4), (int)declared);
    if (r < 0 || (size_t)r != declared)
        return lb__err(err, LB_EFORMAT, "lz4 data is truncated or corrupt");
    *got = declared;
    return 0;
}

static int dec_lz4_n5(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                      int exact, lb_error *err) {
    size_t in = 0, out = 0;
    for (;;) {
        if (in == n) break; /* lz4-java also accepts a stream without its end block */
        if (n - in < N5LZ4_HEADER)
            return lb__err(err, LB_EFORMAT, "N5 lz4 block header at byte %zu is truncated", in);
        const uint8_t *h = src + in;
        if (memcmp(h, N5LZ4_MAGIC, 8) != 0)
            return lb__err(err, LB_EFORMAT, "N5 lz4 block at byte %zu lacks the \"LZ4Block\" "
                           "magic", in);
        int method = h[8] & 0xF0, level = N5LZ4_LEVEL_BASE + (h[8] & 0x0F);
        uint32_t clen = rd_le32(h + 9), olen = rd_le32(h + 13), check = rd_le32(h + 17);
        if ((method != N5LZ4_RAW && method != N5LZ4_LZ4) || olen > (1U << level) ||
            clen > INT_MAX || (olen == 0) != (clen == 0) ||
            (method == N5LZ4_RAW && olen != clen))
            return lb__err(err, LB_EFORMAT, "N5 lz4 block header at byte %zu is invalid", in);
        in += N5LZ4_HEADER;
        if (olen == 0) { /* end block */
            if (check != 0)
                return lb__err(err, LB_EFORMAT, "N5 lz4 end block has a nonzero checksum");
            if (in != n)
                return lb__err(err, LB_EFORMAT, "N5 lz4 data has %zu bytes after its end block",
                               n - in);
            break;
        }
        if (clen > n - in)
            return lb__err(err, LB_EFORMAT, "N5 lz4 block at byte %zu is truncated",
                           in - N5LZ4_HEADER);
        if (olen > cap - out)
            return lb__codec_err_expands(err, "N5 lz4 data", cap);
        if (method == N5LZ4_RAW) {
            memcpy(dst + out, src + in, olen);
        } else {
            int r = LZ4_decompress_safe((const char *)src + in, (char *)dst + out, (int)clen,
                                        (int)olen);
            if (r < 0 || (uint32_t)r != olen)
                return lb__err(err, LB_EFORMAT, "N5 lz4 block at byte %zu is corrupt",
                               in - N5LZ4_HEADER);
        }
        if ((lb__xxh32(dst + out, olen, N5LZ4_SEED) & 0x0FFFFFFFU) != check)
            return lb__err(err, LB_EFORMAT, "N5 lz4 block at byte %zu fails its checksum",
                           in - N5LZ4_HEADER);
        in += clen;
        out += olen;
    }
    if (exact && out != cap) return lb__codec_err_short(err, "N5 lz4 data", out, cap);
    *got = out;
    return 0;
}

static int enc_lz4(const lb__codec *c, const uint8_t *src, size_t n, lb__buf *out,
                   lb_error *err) {
    if (n > LZ4_MAX_INPUT_SIZE)
        return lb__err(err, LB_ELIMIT, "lz4 cannot compress %zu bytes (at most %d)", n,
                       LZ4_MAX_INPUT_SIZE);
    int bound = LZ4_compressBound((int)n);
    int rc = lb__codec_reserve(out, (size_t)bound, 4, "lz4", err);
    if (rc) return rc;
    wr_le32(out->data, (uint32_t)n);
    int r = LZ4_compress_fast((const char *)src, (char *)out->data + 4, (int)n, bound,
                              c->acceleration);
    if (r <= 0) return lb__err(err, LB_EINVAL, "lz4 compression failed");
    out->size = 4 + (size_t)r;
    return 0;
}

static int enc_lz4_n5(const lb__codec *c, const uint8_t *src, size_t n, lb__buf *out,
                      lb_error *err) {
    size_t bs = (size_t)(c->n5_block_size >= N5LZ4_MIN_BLOCK && c->n5_block_size <= N5LZ4_MAX_BLOCK
                             ? c->n5_block_size
                             : DEFAULT_N5_LZ4_BLOCK);
    /* lz4-java's token level: ceil(log2(blockSize)) - 10, at least 0. */
    int level = 0;
    while (((size_t)1 << (level + N5LZ4_LEVEL_BASE)) < bs) level++;
    size_t nblocks = n / bs + (n % bs != 0);
    size_t per = N5LZ4_HEADER + (size_t)LZ4_compressBound((int)bs), need;
    if (lb__mul_size(nblocks, per, &need))
        return lb__err(err, LB_ELIMIT, "N5 lz4: output bound overflows");
    int rc = lb__codec_reserve(out, need, N5LZ4_HEADER, "N5 lz4", err);
    if (rc) return rc;
    uint8_t *o = out->data;
    for (size_t i = 0; i < nblocks; i++) {
        size_t len = i + 1 < nblocks ? bs : n - i * bs;
        const uint8_t *blk = src + i * bs;
        uint8_t *h = o;
        int r = LZ4_compress_default((const char *)blk, (char *)h + N5LZ4_HEADER, (int)len,
                                     LZ4_compressBound((int)bs));
        int method = N5LZ4_LZ4;
        if (r <= 0 || (size_t)r >= len) { /* incompressible: store, as lz4-java does */
            memcpy(h + N5LZ4_HEADER, blk, len);
            r = (int)len;
            method = N5LZ4_RAW;
        }
        memcpy(h, N5LZ4_MAGIC, 8);
        h[8] = (uint8_t)(method | level);
        wr_le32(h + 9, (uint32_t)r);
        wr_le32(h + 13, (uint32_t)len);
        wr_le32(h + 17, lb__xxh32(blk, len, N5LZ4_SEED) & 0x0FFFFFFFU);
        o += N5LZ4_HEADER + (size_t)r;
    }
    memcpy(o, N5LZ4_MAGIC, 8); /* end block: raw, empty, checksum 0 */
    o[8] = (uint8_t)(N5LZ4_RAW | level);
    memset(o + 9, 0, 12);
    o += N5LZ4_HEADER;
    out->size = (size_t)(o - out->data);
    return 0;
}

static int lz4_bb_decode(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                       size_t cap, size_t *got, int exact, lb_error *err) {
    (void)c;
    return dec_lz4(src, n, dst, cap, got, exact, err);
}

static int lz4_bb_encode(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                       lb__buf *out, lb_error *err) {
    (void)typesize;
    return enc_lz4(c, src, n, out, err);
}

static size_t lz4_bb_bound(const lb__codec *c, size_t n) {
    (void)c;
    return n > LZ4_MAX_INPUT_SIZE ? SIZE_MAX : (size_t)LZ4_compressBound((int)n) + 4;
}

const lb__codec_ops lb__ops_lz4 = {
    .name = "numcodecs.lz4",
    .kind = LB__KIND_BYTES_BYTES,
    .bb_decode = lz4_bb_decode,
    .bb_encode = lz4_bb_encode,
    .bb_bound = lz4_bb_bound,
};

static int lz4_n5_bb_decode(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                       size_t cap, size_t *got, int exact, lb_error *err) {
    (void)c;
    return dec_lz4_n5(src, n, dst, cap, got, exact, err);
}

static int lz4_n5_bb_encode(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                       lb__buf *out, lb_error *err) {
    (void)typesize;
    return enc_lz4_n5(c, src, n, out, err);
}

static size_t lz4_n5_bb_bound(const lb__codec *c, size_t n) {
    (void)c;
    size_t blocks = n / 64 + 2;
    return n > SIZE_MAX / 2 ? SIZE_MAX : n + n / 255 + blocks * N5LZ4_HEADER + 64;
}

const lb__codec_ops lb__ops_lz4_n5 = {
    .name = "n5.lz4",
    .kind = LB__KIND_BYTES_BYTES,
    .bb_decode = lz4_n5_bb_decode,
    .bb_encode = lz4_n5_bb_encode,
    .bb_bound = lz4_n5_bb_bound,
};
