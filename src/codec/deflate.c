/*
 * deflate.c — the gzip and zlib codecs (libdeflate). Either container is
 * decoded under either name, told apart by its first two bytes as zlib's
 * inflateInit2(15 + 32) does; gzip members may be concatenated.
 */
#include <libdeflate.h>

#include "codec/impl.h"

#define DEFAULT_DEFLATE_LEVEL 6 /* what zlib means by level -1 */

static uint32_t rd_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* libdeflate reads past the end of a truncated stream as if zeros followed,
 * so "out of output space" can also mean truncation or corruption. */
static int deflate_result(enum libdeflate_result r, const char *what, size_t cap,
                          lb_error *err) {
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE)
        return lb__err(err, LB_EFORMAT,
                       "%s expands beyond the chunk's %zu bytes (or is truncated or corrupt)",
                       what, cap);
    return lb__err(err, LB_EFORMAT, "%s is truncated or corrupt", what);
}

/* For gzip the ISIZE trailer (size mod 2^32 of the last member) says more:
 * a plausible one (deflate expands at most ~1032:1) that exceeds the room
 * left is a size mismatch; anything else is damage. */
static int gzip_overflow(const uint8_t *src, size_t n, size_t in, size_t room, size_t cap,
                         int exact, lb_error *err) {
    uint64_t isize = rd_le32(src + n - 4);
    if (isize > room && isize <= (uint64_t)(n - in) * 1032) {
        if (in == 0) return lb__codec_err_declared(err, "gzip trailer", isize, cap, exact);
        return lb__codec_err_expands(err, "gzip data", cap);
    }
    return lb__err(err, LB_EFORMAT, "gzip data is truncated or corrupt");
}

static int dec_gzip(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                    int exact, lb_error *err) {
    /* 10-byte header + empty deflate block + 8-byte trailer */
    if (n < 20) return lb__err(err, LB_EFORMAT, "gzip data is truncated (%zu bytes)", n);
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    if (!d) return lb__err(err, LB_ENOMEM, "out of memory (gzip decompressor)");
    size_t in = 0, out = 0;
    int rc = 0;
    /* Members are concatenated (RFC 1952 2.2); gzip readers also skip zero
     * padding after the last one. */
    while (in < n) {
        size_t used_in = 0, used_out = 0;
        enum libdeflate_result r = libdeflate_gzip_decompress_ex(
            d, src + in, n - in, dst + out, cap - out, &used_in, &used_out);
        if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
            rc = gzip_overflow(src, n, in, cap - out, cap, exact, err);
            break;
        }
        if (r != LIBDEFLATE_SUCCESS) {
            rc = deflate_result(r, "gzip data", cap, err);
            break;
        }
        in += used_in;
        out += used_out;
        size_t z = in;
        while (z < n && src[z] == 0) z++;
        if (z == n) break;
        if (n - in < 2 || src[in] != 0x1f || src[in + 1] != 0x8b) {
            rc = lb__err(err, LB_EFORMAT, "gzip data has %zu bytes of trailing garbage",
                         n - in);
            break;
        }
    }
    libdeflate_free_decompressor(d);
    if (rc) return rc;
    if (exact && out != cap) return lb__codec_err_short(err, "gzip data", out, cap);
    *got = out;
    return 0;
}

static int dec_zlib(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                    int exact, lb_error *err) {
    if (n < 7) return lb__err(err, LB_EFORMAT, "zlib data is truncated (%zu bytes)", n);
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    if (!d) return lb__err(err, LB_ENOMEM, "out of memory (zlib decompressor)");
    size_t used_in = 0, used_out = 0;
    enum libdeflate_result r =
        libdeflate_zlib_decompress_ex(d, src, n, dst, cap, &used_in, &used_out);
    libdeflate_free_decompressor(d);
    if (r != LIBDEFLATE_SUCCESS) return deflate_result(r, "zlib data", cap, err);
    if (used_in != n)
        return lb__err(err, LB_EFORMAT, "zlib data has %zu bytes of trailing garbage",
                       n - used_in);
    if (exact && used_out != cap) return lb__codec_err_short(err, "zlib data", used_out, cap);
    *got = used_out;
    return 0;
}

/* The container of a deflate stream, from its first two bytes, as zlib's
 * inflateInit2(windowBits 15 + 32) tells them apart: gzip's magic 1f 8b, or
 * a zlib header (CM 8 = deflate, a window of at most 32 KiB, FCHECK making
 * CMF * 256 + FLG a multiple of 31). The two never overlap (CM of 0x1f is
 * 15). Writers put either under either name: old z5py wrote zlib streams
 * under the Zarr "gzip" id, N5's useZlib flag is easily mismatched. */
static int is_gzip_header(const uint8_t *s, size_t n) {
    return n >= 2 && s[0] == 0x1f && s[1] == 0x8b;
}
static int is_zlib_header(const uint8_t *s, size_t n) {
    return n >= 2 && (s[0] & 0x0F) == 8 && (s[0] >> 4) <= 7 && ((s[0] << 8) | s[1]) % 31 == 0;
}

static int dec_deflate(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                       size_t cap, size_t *got, int exact, lb_error *err) {
    int declared_gzip = c->id == LB__CODEC_GZIP && !c->n5_use_zlib;
    int gzip = declared_gzip;
    if (is_gzip_header(src, n)) gzip = 1;
    else if (is_zlib_header(src, n)) gzip = 0;
    /* Neither header: the declared container says what is wrong. */
    return gzip ? dec_gzip(src, n, dst, cap, got, exact, err)
                : dec_zlib(src, n, dst, cap, got, exact, err);
}

static int enc_deflate(const lb__codec *c, const uint8_t *src, size_t n, lb__buf *out,
                       lb_error *err) {
    int gzip = c->id == LB__CODEC_GZIP && !c->n5_use_zlib;
    int level = c->level < 0 ? DEFAULT_DEFLATE_LEVEL : c->level;
    if (level > 12) level = 12;
    struct libdeflate_compressor *d = libdeflate_alloc_compressor(level);
    if (!d) return lb__err(err, LB_ENOMEM, "out of memory (deflate compressor)");
    size_t bound = gzip ? libdeflate_gzip_compress_bound(d, n) : libdeflate_zlib_compress_bound(d, n);
    int rc = lb__buf_reserve(out, bound, err);
    if (!rc) {
        size_t r = gzip ? libdeflate_gzip_compress(d, src, n, out->data, bound)
                        : libdeflate_zlib_compress(d, src, n, out->data, bound);
        if (r == 0) rc = lb__err(err, LB_EINVAL, "%s compression failed", gzip ? "gzip" : "zlib");
        else out->size = r;
    }
    libdeflate_free_compressor(d);
    return rc;
}

static int gzip_bb_decode(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                       size_t cap, size_t *got, int exact, lb_error *err) {
    return dec_deflate(c, src, n, dst, cap, got, exact, err);
}

static int gzip_bb_encode(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                       lb__buf *out, lb_error *err) {
    (void)typesize;
    return enc_deflate(c, src, n, out, err);
}

static size_t gzip_bb_bound(const lb__codec *c, size_t n) {
    (void)c;
    return n > SIZE_MAX / 2 - 1024 ? SIZE_MAX : n + n / 2 + 1024;
}

const lb__codec_ops lb__ops_gzip = {
    .name = "gzip",
    .kind = LB__KIND_BYTES_BYTES,
    .bb_decode = gzip_bb_decode,
    .bb_encode = gzip_bb_encode,
    .bb_bound = gzip_bb_bound,
};

static int zlib_bb_decode(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                       size_t cap, size_t *got, int exact, lb_error *err) {
    return dec_deflate(c, src, n, dst, cap, got, exact, err);
}

static int zlib_bb_encode(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                       lb__buf *out, lb_error *err) {
    (void)typesize;
    return enc_deflate(c, src, n, out, err);
}

static size_t zlib_bb_bound(const lb__codec *c, size_t n) {
    (void)c;
    return n > SIZE_MAX / 2 - 1024 ? SIZE_MAX : n + n / 2 + 1024;
}

const lb__codec_ops lb__ops_zlib = {
    .name = "zlib",
    .kind = LB__KIND_BYTES_BYTES,
    .bb_decode = zlib_bb_decode,
    .bb_encode = zlib_bb_encode,
    .bb_bound = zlib_bb_bound,
};
