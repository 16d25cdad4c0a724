/*
 * chain.h — codecs composed into a chain: zero or more array→array codecs,
 * one array→bytes codec, zero or more bytes→bytes codecs. The one decode
 * and the one encode path of every format; Zarr v2 (order, byte order,
 * compressor) and N5 (block header, compression) are chains too.
 */
#ifndef LB_CODEC_CHAIN_H
#define LB_CODEC_CHAIN_H

#include "codec/codec.h"

/* The decoded form an array codec sees: a chunk of `shape`, elements of
 * `itemsize` bytes, C order, native byte order, and its fill value. */
typedef struct lb__chunk_repr {
    int ndim;
    int64_t shape[LB_MAX_DIMS];
    size_t itemsize;
    uint8_t fill[8];
    size_t nbytes;       /* Π shape × itemsize, checked against the limits  */
} lb__chunk_repr;

/* Fill `r` and compute r->nbytes; LB_ELIMIT when a chunk would exceed
 * LB__MAX_CHUNK_BYTES. */
int lb__chunk_repr_set(lb__chunk_repr *r, int ndim, const int64_t *shape, size_t itemsize,
                       const uint8_t *fill, lb_error *err);

/* Working memory of decode and encode, kept per thread (never shared). */
typedef struct lb__codec_scratch {
    lb__buf a, b, c;   /* the chain's own: in-flight data between codecs   */
    lb__buf own, box, idx; /* an array→bytes codec's private buffers       */
    struct lb__codec_scratch *nested; /* the inner chain of a shard        */
} lb__codec_scratch;
void lb__codec_scratch_free(lb__codec_scratch *s);

/* ---- chains ---------------------------------------------------------------- */

#define LB__CHAIN_MAX 16

struct lb__chain {
    int n;
    lb__codec codec[LB__CHAIN_MAX];
    int ab; /* index of the array→bytes codec */
};

/* A chain from `n` codecs (copied, deep), checked against the decoded chunk
 * representation `repr` (order of kinds, transpose rank, sharding's inner
 * shape dividing the chunk, index codecs of fixed size). `where` names the
 * metadata for messages. */
int lb__chain_new(const lb__codec *codecs, int n, const lb__chunk_repr *repr,
                  const char *where, lb__chain **out, lb_error *err);
void lb__chain_free(lb__chain *c);
lb__chain *lb__chain_dup(const lb__chain *c, lb_error *err);

/* The array→bytes codec. */
static inline const lb__codec *lb__chain_ab(const lb__chain *c) { return &c->codec[c->ab]; }

/* Decode stored bytes into a full chunk of `repr` (C order, native byte
 * order; parts not stored — truncated N5 blocks, absent inner chunks — get
 * the fill value). */
int lb__chain_decode(const lb__chain *c, const lb__chunk_repr *repr, const uint8_t *src,
                     size_t n, void *dst, lb__codec_scratch *s, lb_error *err);

/* Encode a full chunk of `repr`. `extent` (may be NULL = the whole chunk) is
 * the part inside the array: N5 stores edge blocks truncated to it, the
 * other codecs store the rest as the fill value. */
int lb__chain_encode(const lb__chain *c, const lb__chunk_repr *repr, const int64_t *extent,
                     const void *src, lb__buf *out, lb__codec_scratch *s, lb_error *err);

/* When stored bytes can be read partially: the chain is exactly one
 * sharding_indexed codec (no array→array codec before it, no bytes→bytes
 * codec after it). Returns the sharding codec, else NULL. */
const lb__codec *lb__chain_partial_sharding(const lb__chain *c);

/* The largest encoding of a chunk of `repr` (SIZE_MAX when unbounded). */
size_t lb__chain_bound(const lb__chain *c, const lb__chunk_repr *repr);

/* The encoded size of a fixed-size chain (bytes + crc32c …) for `repr`, or
 * -1 when it varies (compression). */
int64_t lb__chain_fixed_size(const lb__chain *c, const lb__chunk_repr *repr);

#endif /* LB_CODEC_CHAIN_H */
