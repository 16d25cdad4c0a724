/*
 * codec.c — the codec table (one static entry per codec id; nothing
 * registers itself at run time), codec values (defaults, copies, freeing)
 * and the bytes→bytes dispatch every chain goes through.
 */
#include "codec/codec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "codec/blosc.h"
#include "codec/chain.h"
#include "codec/impl.h"
#include "codec/zstd.h"

static int raw_decode(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                      size_t cap, size_t *got, int exact, lb_error *err) {
    (void)c;
    if (n > cap || (exact && n != cap))
        return lb__err(err, LB_EFORMAT, "raw chunk holds %zu bytes, expected %s%zu", n,
                       exact ? "" : "at most ", cap);
    if (n) memcpy(dst, src, n);
    *got = n;
    return 0;
}

static int raw_encode(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                      lb__buf *out, lb_error *err) {
    (void)c;
    (void)typesize;
    int rc = lb__buf_reserve(out, n, err);
    if (rc) return rc;
    if (n) memcpy(out->data, src, n);
    out->size = n;
    return 0;
}

static size_t raw_bound(const lb__codec *c, size_t n) {
    (void)c;
    return n;
}

/* "No compression": never part of a chain (formats leave it out), but a
 * value users and metadata can name. */
static const lb__codec_ops ops_raw = {
    .name = "raw",
    .kind = LB__KIND_BYTES_BYTES,
    .bb_decode = raw_decode,
    .bb_encode = raw_encode,
    .bb_bound = raw_bound,
};

static const lb__codec_ops *const table[LB__CODEC_COUNT] = {
    [LB__CODEC_RAW] = &ops_raw,
    [LB__CODEC_BLOSC] = &lb__ops_blosc,     [LB__CODEC_ZSTD] = &lb__ops_zstd,
    [LB__CODEC_GZIP] = &lb__ops_gzip,       [LB__CODEC_ZLIB] = &lb__ops_zlib,
    [LB__CODEC_LZ4] = &lb__ops_lz4,         [LB__CODEC_LZ4_N5] = &lb__ops_lz4_n5,
    [LB__CODEC_BZ2] = &lb__ops_bz2,         [LB__CODEC_XZ] = &lb__ops_xz,
    [LB__CODEC_CRC32C] = &lb__ops_crc32c,   [LB__CODEC_BYTES] = &lb__ops_bytes,
    [LB__CODEC_N5_BLOCK] = &lb__ops_n5_block, [LB__CODEC_SHARDING] = &lb__ops_sharding,
    [LB__CODEC_TRANSPOSE] = &lb__ops_transpose,
};

const lb__codec_ops *lb__codec_ops_of(lb__codec_id id) {
    return (unsigned)id < LB__CODEC_COUNT ? table[id] : NULL;
}

lb__codec_kind lb__codec_kind_of(lb__codec_id id) {
    const lb__codec_ops *o = lb__codec_ops_of(id);
    return o ? o->kind : LB__KIND_BYTES_BYTES;
}

const char *lb__codec_name(lb__codec_id id) {
    const lb__codec_ops *o = lb__codec_ops_of(id);
    return o ? o->name : "?";
}

/* Defaults: numcodecs' for the compressors (what an absent key means in a
 * Zarr v2 compressor object), the libraries' usual ones otherwise. */
void lb__codec_init(lb__codec *c, lb__codec_id id) {
    memset(c, 0, sizeof *c);
    c->id = id;
    switch (id) {
    case LB__CODEC_BLOSC:
        c->level = 5;
        c->blosc_cname = 1; /* lz4 */
        c->blosc_shuffle = 1;
        break;
    case LB__CODEC_ZSTD: c->level = 3; break;
    case LB__CODEC_GZIP:
    case LB__CODEC_ZLIB: c->level = 6; break; /* what zlib means by level -1 */
    case LB__CODEC_LZ4: c->acceleration = 1; break;
    case LB__CODEC_LZ4_N5: c->n5_block_size = 65536; break;
    case LB__CODEC_BZ2:
        c->level = 9;
        c->n5_block_size = 9;
        break;
    case LB__CODEC_XZ: c->level = 6; break;
    default: break;
    }
}

void lb__codec_clear(lb__codec *c) {
    if (!c) return;
    lb__codec_free(c->compression);
    lb__chain_free(c->inner);
    lb__chain_free(c->index);
    c->compression = NULL;
    c->inner = c->index = NULL;
}

void lb__codec_free(lb__codec *c) {
    if (!c) return;
    lb__codec_clear(c);
    free(c);
}

lb__codec *lb__codec_dup(const lb__codec *c, lb_error *err) {
    lb__codec *d = lb__malloc(sizeof *d, "a codec", err);
    if (!d) return NULL;
    *d = *c;
    d->compression = NULL;
    d->inner = d->index = NULL;
    if ((c->compression && !(d->compression = lb__codec_dup(c->compression, err))) ||
        (c->inner && !(d->inner = lb__chain_dup(c->inner, err))) ||
        (c->index && !(d->index = lb__chain_dup(c->index, err)))) {
        lb__codec_free(d);
        return NULL;
    }
    return d;
}

int lb__codec_bb_decode(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                        size_t cap, size_t *got, int exact, lb_error *err) {
    const lb__codec_ops *o = lb__codec_ops_of(c->id);
    if (!o || !o->bb_decode)
        return lb__err(err, LB_EINVAL, "%s is not a bytes→bytes codec", lb__codec_name(c->id));
    size_t g = 0;
    int rc = o->bb_decode(c, src, n, dst, cap, &g, exact, err);
    if (!rc) *got = g;
    return rc;
}

int lb__codec_bb_encode(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                        lb__buf *out, lb_error *err) {
    const lb__codec_ops *o = lb__codec_ops_of(c->id);
    if (!o || !o->bb_encode)
        return lb__err(err, LB_EINVAL, "%s is not a bytes→bytes codec", lb__codec_name(c->id));
    out->size = 0;
    return o->bb_encode(c, src, n, typesize, out, err);
}

size_t lb__codec_bb_bound(const lb__codec *c, size_t n) {
    const lb__codec_ops *o = lb__codec_ops_of(c->id);
    return o && o->bb_bound ? o->bb_bound(c, n) : SIZE_MAX;
}

/* Compressors, described in the words numcodecs users know. */
static void describe_compressor(const lb__codec *c, char *buf, size_t size) {
    static const char *const shuffles[] = {"auto shuffle", "no shuffle", "byte shuffle",
                                           "bit shuffle"};
    if (!buf || !size) return;
    switch (c->id) {
    case LB__CODEC_RAW: snprintf(buf, size, "raw"); break;
    case LB__CODEC_BLOSC: {
        int sh = c->blosc_shuffle >= -1 && c->blosc_shuffle <= 2 ? c->blosc_shuffle + 1 : 0;
        if (c->blosc_blocksize)
            snprintf(buf, size, "blosc(%s, clevel %d, %s, blocksize %d)", (lb__blosc_cname(c->blosc_cname) ? lb__blosc_cname(c->blosc_cname) : "?"),
                     c->level, shuffles[sh], c->blosc_blocksize);
        else
            snprintf(buf, size, "blosc(%s, clevel %d, %s)", (lb__blosc_cname(c->blosc_cname) ? lb__blosc_cname(c->blosc_cname) : "?"), c->level,
                     shuffles[sh]);
        break;
    }
    case LB__CODEC_ZSTD:
        snprintf(buf, size, c->checksum ? "zstd(%d, checksum)" : "zstd(%d)", c->level);
        break;
    case LB__CODEC_GZIP: snprintf(buf, size, "gzip(%d)", c->level); break;
    case LB__CODEC_ZLIB: snprintf(buf, size, "zlib(%d)", c->level); break;
    case LB__CODEC_LZ4: snprintf(buf, size, "lz4(acceleration %d)", c->acceleration); break;
    case LB__CODEC_LZ4_N5: snprintf(buf, size, "lz4-n5(blockSize %d)", c->n5_block_size); break;
    case LB__CODEC_BZ2: snprintf(buf, size, "bz2(%d)", c->level); break;
    case LB__CODEC_XZ:
        snprintf(buf, size, c->xz_extreme ? "xz(%de)" : "xz(%d)", c->level);
        break;
    default: snprintf(buf, size, "unknown codec %d", (int)c->id); break;
    }
}

void lb__codec_describe(const lb__codec *c, char *buf, size_t size) {
    const lb__codec_ops *o = lb__codec_ops_of(c->id);
    if (!size) return;
    if (o && o->describe) o->describe(c, buf, size);
    else describe_compressor(c, buf, size);
}

int lb__codec_check_encode(const lb__codec *c, lb_error *err) {
    if (c->id == LB__CODEC_ZSTD) return lb__zstd_check_level(c->level, err);
    return 0;
}

int lb__codec_decode(const lb__codec *c, const void *src, size_t n, void *dst, size_t dst_size,
                     size_t typesize, lb_error *err) {
    size_t got = 0;
    (void)typesize; /* every supported frame describes its own layout */
    if (!c || (!src && n) || (!dst && dst_size))
        return lb__err(err, LB_EINVAL, "codec decode: NULL argument");
    return lb__codec_bb_decode(c, src, n, dst, dst_size, &got, 1, err);
}

int lb__codec_decode_upto(const lb__codec *c, const void *src, size_t n, void *dst,
                          size_t dst_capacity, size_t *out_size, size_t typesize,
                          lb_error *err) {
    size_t got = 0;
    (void)typesize;
    if (!c || (!src && n) || (!dst && dst_capacity))
        return lb__err(err, LB_EINVAL, "codec decode: NULL argument");
    int rc = lb__codec_bb_decode(c, src, n, dst, dst_capacity, &got, 0, err);
    if (!rc && out_size) *out_size = got;
    return rc;
}

int lb__codec_encode(const lb__codec *c, const void *src, size_t n, size_t typesize,
                     lb__buf *out, lb_error *err) {
    static const uint8_t empty[1] = {0};
    if (!c || !out || (!src && n)) return lb__err(err, LB_EINVAL, "codec encode: NULL argument");
    return lb__codec_bb_encode(c, n ? src : empty, n, typesize, out, err);
}

/* ---- shared by the codec files -------------------------------------------------- */

int lb__codec_err_declared(lb_error *err, const char *what, uint64_t declared, size_t cap,
                           int exact) {
    return lb__err(err, LB_EFORMAT, "%s declares %" PRIu64 " bytes, chunk holds %s%zu", what,
                   declared, exact ? "" : "at most ", cap);
}

int lb__codec_err_expands(lb_error *err, const char *what, size_t cap) {
    return lb__err(err, LB_EFORMAT, "%s expands beyond the chunk's %zu bytes", what, cap);
}

int lb__codec_err_short(lb_error *err, const char *what, size_t got, size_t cap) {
    return lb__err(err, LB_EFORMAT, "%s holds %zu bytes, chunk holds %zu", what, got, cap);
}

int lb__codec_reserve(lb__buf *out, size_t base, size_t extra, const char *what, lb_error *err) {
    size_t need;
    if (lb__add_size(base, extra, &need))
        return lb__err(err, LB_ELIMIT, "%s: output bound overflows", what);
    return lb__buf_reserve(out, need, err);
}
