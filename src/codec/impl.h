/*
 * impl.h — what each codec file provides to the chain (internal to
 * src/codec/). One static table in codec.c maps a codec id to these; nothing
 * registers itself at run time.
 */
#ifndef LB_CODEC_IMPL_H
#define LB_CODEC_IMPL_H

#include "codec/chain.h"

typedef struct lb__codec_ops {
    const char *name;        /* Zarr v3 name */
    lb__codec_kind kind;
    /* bytes → bytes */
    int (*bb_decode)(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                     size_t cap, size_t *got, int exact, lb_error *err);
    int (*bb_encode)(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                     lb__buf *out, lb_error *err);
    size_t (*bb_bound)(const lb__codec *c, size_t n);
    /* array → bytes: decode into a full chunk of `repr` */
    int (*ab_decode)(const lb__codec *c, const lb__chunk_repr *repr, const uint8_t *src,
                     size_t n, uint8_t *dst, lb__codec_scratch *s, lb_error *err);
    int (*ab_encode)(const lb__codec *c, const lb__chunk_repr *repr, const int64_t *extent,
                     const uint8_t *src, lb__buf *out, lb__codec_scratch *s, lb_error *err);
    /* largest encoding of a chunk of `repr`, or SIZE_MAX when unbounded */
    size_t (*ab_bound)(const lb__codec *c, const lb__chunk_repr *repr);
    void (*describe)(const lb__codec *c, char *buf, size_t size);
} lb__codec_ops;

extern const lb__codec_ops lb__ops_blosc, lb__ops_zstd, lb__ops_gzip, lb__ops_zlib,
    lb__ops_lz4, lb__ops_lz4_n5, lb__ops_bz2, lb__ops_xz, lb__ops_crc32c, lb__ops_bytes,
    lb__ops_n5_block, lb__ops_sharding, lb__ops_transpose;

const lb__codec_ops *lb__codec_ops_of(lb__codec_id id);

/* The transpose codec's shapes: encoded shape[i] = decoded shape[order[i]]. */
void lb__transpose_encoded_shape(const lb__codec *c, const int64_t *decoded, int64_t *encoded);
void lb__transpose_decode(const lb__codec *c, const lb__chunk_repr *decoded,
                          const uint8_t *src, uint8_t *dst);
void lb__transpose_encode(const lb__codec *c, const lb__chunk_repr *decoded,
                          const uint8_t *src, uint8_t *dst);

/* Size errors, worded once. */
int lb__codec_err_declared(lb_error *err, const char *what, uint64_t declared, size_t cap,
                           int exact);
int lb__codec_err_expands(lb_error *err, const char *what, size_t cap);
int lb__codec_err_short(lb_error *err, const char *what, size_t got, size_t cap);
/* Reserve base + extra bytes in out (overflow-checked). */
int lb__codec_reserve(lb__buf *out, size_t base, size_t extra, const char *what,
                      lb_error *err);

#endif /* LB_CODEC_IMPL_H */
