/*
 * sharding.h — the sharding_indexed codec's index, for reads that fetch a
 * shard's index and only the inner chunks they need (by byte range).
 */
#ifndef LB_CODEC_SHARDING_H
#define LB_CODEC_SHARDING_H

#include "codec/chain.h"

/* ---- sharding_indexed: what partial reads need ------------------------------ */

/* Index entry of an absent inner chunk. */
#define LB__SHARD_EMPTY UINT64_MAX

/* At most this many inner chunks per shard, counting every nesting level. */
#define LB__SHARD_MAX_INNER ((int64_t)1 << 24)

/* Inner chunks per shard along each dimension for a shard of `repr`; their
 * product in *count. */
int lb__shard_grid(const lb__codec *sh, const lb__chunk_repr *repr, int64_t *per_dim,
                   int64_t *count, lb_error *err);
/* Byte size of the encoded index for `count` inner chunks. */
int lb__shard_index_size(const lb__codec *sh, int64_t count, size_t *out, lb_error *err);
/* Decode an index (`n` bytes, exactly its encoded size) into 2 × count
 * values (offset, nbytes), validated against a shard of `shard_size` bytes:
 * every range inside the shard, outside the index, and no two overlapping.
 * LB_EFORMAT naming the inner chunk otherwise. */
int lb__shard_index_decode(const lb__codec *sh, const uint8_t *src, size_t n, int64_t count,
                           uint64_t shard_size, uint64_t *entries, lb__codec_scratch *s,
                           lb_error *err);

/* Assemble a shard from its inner chunks' encoded bytes, laid one after
 * the other in `data` (n bytes): entries[2i] is the offset of inner chunk i
 * in `data`, entries[2i + 1] its size, both LB__SHARD_EMPTY for an absent
 * one. The index is encoded with the index chain and put first or last
 * (offsets shifted to the shard's start); the result replaces `out`. */
int lb__shard_assemble(const lb__codec *sh, int64_t count, uint64_t *entries,
                       const uint8_t *data, size_t n, lb__buf *out, lb__codec_scratch *s,
                       lb_error *err);

#endif /* LB_CODEC_SHARDING_H */
