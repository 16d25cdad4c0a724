/*
 * blosc.c — the blosc codec (blosc1 frames, c-blosc's _ctx calls, which are
 * thread-safe): the frame's header is checked against the chunk before
 * c-blosc reads it, and bytes after a complete frame are ignored as c-blosc
 * and numcodecs ignore them.
 */
#include <blosc.h>
#include <limits.h>

#include "codec/blosc.h"
#include "codec/impl.h"

/* c-blosc's compressor names, indexed by lb__codec.blosc_cname. */
static const char *const blosc_cnames[] = {"blosclz", "lz4", "lz4hc", "zlib", "zstd", "snappy"};
#define N_BLOSC_CNAMES ((int)(sizeof blosc_cnames / sizeof blosc_cnames[0]))

static const char *cname_of(const lb__codec *c) {
    return c->blosc_cname >= 0 && c->blosc_cname < N_BLOSC_CNAMES ? blosc_cnames[c->blosc_cname]
                                                                   : "lz4";
}

static uint32_t rd_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int dec_blosc(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                     int exact, lb_error *err) {
    if (n < BLOSC_MIN_HEADER_LENGTH)
        return lb__err(err, LB_EFORMAT, "blosc data is truncated (%zu bytes, the header alone "
                       "has 16)", n);
    int version = src[0], flags = src[2], typesize = src[3];
    if (version < 1 || version > BLOSC_VERSION_FORMAT)
        return lb__err(err, LB_EFORMAT,
                       "blosc header: format version %d is not blosc1 (expected 1..%d)",
                       version, BLOSC_VERSION_FORMAT);
    size_t nbytes = rd_le32(src + 4), blocksize = rd_le32(src + 8), cbytes = rd_le32(src + 12);
    /* Bytes after a complete frame are ignored, as c-blosc and numcodecs
     * ignore them (z5py before 2.0.10 padded every chunk with 16). From here
     * on the frame is the first cbytes bytes. */
    if (cbytes > n)
        return lb__err(err, LB_EFORMAT,
                       "blosc header: cbytes %zu but the compressed chunk has %zu bytes "
                       "(truncated)",
                       cbytes, n);
    if (cbytes < BLOSC_MIN_HEADER_LENGTH)
        return lb__err(err, LB_EFORMAT, "blosc header: cbytes %zu is shorter than the header",
                       cbytes);
    n = cbytes;
    if (nbytes > cap || (exact && nbytes != cap))
        return lb__err(err, LB_EFORMAT, "blosc header: nbytes %zu but chunk holds %s%zu",
                       nbytes, exact ? "" : "at most ", cap);
    /* Sanity beyond what c-blosc checks, so that it never divides by zero or
     * walks a block table past the end of the frame. */
    if (typesize == 0 || (nbytes > 0 && blocksize == 0) || nbytes > BLOSC_MAX_BUFFERSIZE)
        return lb__err(err, LB_EFORMAT, "blosc header is invalid (typesize %d, blocksize %zu)",
                       typesize, blocksize);
    if (flags & BLOSC_MEMCPYED) {
        if (cbytes != nbytes + BLOSC_MAX_OVERHEAD)
            return lb__err(err, LB_EFORMAT, "blosc header: stored frame of %zu bytes needs "
                           "cbytes %zu, has %zu", nbytes, nbytes + BLOSC_MAX_OVERHEAD, cbytes);
    } else if (nbytes > 0) {
        size_t nblocks = nbytes / blocksize + (nbytes % blocksize != 0);
        if (nblocks > (n - BLOSC_MIN_HEADER_LENGTH) / 4)
            return lb__err(err, LB_EFORMAT, "blosc data is truncated (%zu blocks do not fit "
                           "in %zu bytes)", nblocks, n);
        size_t table_end = BLOSC_MIN_HEADER_LENGTH + 4 * nblocks;
        for (size_t i = 0; i < nblocks; i++) {
            size_t start = rd_le32(src + BLOSC_MIN_HEADER_LENGTH + 4 * i);
            if (start < table_end || start > n - 4)
                return lb__err(err, LB_EFORMAT, "blosc block %zu starts at %zu, outside the "
                               "%zu-byte frame", i, start, n);
        }
    }
    size_t vbytes = 0;
    if (blosc_cbuffer_validate(src, n, &vbytes) != 0 || vbytes != nbytes)
        return lb__err(err, LB_EFORMAT, "blosc header is invalid");
    if (nbytes == 0) {
        *got = 0;
        return 0;
    }
    int r = blosc_decompress_ctx(src, dst, nbytes, 1);
    if (r < 0 || (size_t)r != nbytes)
        return lb__err(err, LB_EFORMAT, "blosc data is corrupt (decompression returned %d)", r);
    *got = nbytes;
    return 0;
}

static int enc_blosc(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                     lb__buf *out, lb_error *err) {
    if (n > BLOSC_MAX_BUFFERSIZE)
        return lb__err(err, LB_ELIMIT, "blosc cannot compress %zu bytes (at most %d)", n,
                       BLOSC_MAX_BUFFERSIZE);
    int rc = lb__codec_reserve(out, n, BLOSC_MAX_OVERHEAD, "blosc", err);
    if (rc) return rc;
    if (typesize == 0) typesize = 1;
    if (c->blosc_typesize > 0) typesize = (size_t)c->blosc_typesize;
    int shuffle = c->blosc_shuffle;
    if (shuffle < 0) /* numcodecs AUTOSHUFFLE */
        shuffle = typesize == 1 ? BLOSC_BITSHUFFLE : BLOSC_SHUFFLE;
    int r = blosc_compress_ctx(c->level, shuffle, typesize, n, src, out->data,
                               n + BLOSC_MAX_OVERHEAD, cname_of(c),
                               (size_t)(c->blosc_blocksize > 0 ? c->blosc_blocksize : 0), 1);
    if (r <= 0) return lb__err(err, LB_EINVAL, "blosc compression failed (%d)", r);
    out->size = (size_t)r;
    return 0;
}

static int blosc_bb_decode(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                       size_t cap, size_t *got, int exact, lb_error *err) {
    (void)c;
    return dec_blosc(src, n, dst, cap, got, exact, err);
}

static int blosc_bb_encode(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                       lb__buf *out, lb_error *err) {
    return enc_blosc(c, src, n, typesize, out, err);
}

static size_t blosc_bb_bound(const lb__codec *c, size_t n) {
    (void)c;
    return n > SIZE_MAX - BLOSC_MAX_OVERHEAD ? SIZE_MAX : n + BLOSC_MAX_OVERHEAD;
}

const lb__codec_ops lb__ops_blosc = {
    .name = "blosc",
    .kind = LB__KIND_BYTES_BYTES,
    .bb_decode = blosc_bb_decode,
    .bb_encode = blosc_bb_encode,
    .bb_bound = blosc_bb_bound,
};

const char *lb__blosc_cname(int i) { return i >= 0 && i < N_BLOSC_CNAMES ? blosc_cnames[i] : NULL; }

int lb__blosc_cname_index(const char *name) {
    for (int i = 0; i < N_BLOSC_CNAMES; i++)
        if (strcmp(name, blosc_cnames[i]) == 0) return i;
    return -1;
}
