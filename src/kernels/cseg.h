/*
 * cseg.h — a compact, random-access form of one decoded chunk of integer
 * labels (in the manner of neuroglancer's compressed segmentation): the
 * chunk is cut into blocks of 8×8×8 voxels, each block stores the table of
 * its distinct ids and one index per voxel packed at 0, 1, 2, 4, 8 or 16
 * bits. Label volumes have few ids per block, so the form is many times
 * smaller than the labels, and BinarizeArray / MissingAnnotationsMask can
 * work from it directly: each block's few ids are mapped to channel bits
 * once, then its indices are expanded. Pure compute: no I/O, no locks.
 *
 * Chunks are seen as 3-D (z, y, x): arrays of 1 or 2 dimensions get leading
 * extents of 1. Layout of an encoded chunk (native byte order, 8-aligned):
 *   lb__cseg_hdr | block descriptors | id table (itemsize each) | indices
 * A chunk of one value is the header and a table of one id (no blocks).
 */
#ifndef LB_KERNELS_CSEG_H
#define LB_KERNELS_CSEG_H

#include <stddef.h>
#include <stdint.h>

#define LB__CSEG_MAGIC 0x5343424Cu /* "LBCS" */
#define LB__CSEG_UNIFORM 1u        /* flags: the whole chunk is table[0] */
#define LB__CSEG_ABSENT 2u         /* flags: a chunk not stored (the fill value) */

typedef struct lb__cseg_hdr {
    uint32_t magic;
    uint8_t itemsize;  /* 1, 2, 4 or 8                                 */
    uint8_t flags;
    uint16_t reserved;
    uint32_t dims[3];  /* the chunk (z, y, x)                           */
    uint32_t bdims[3]; /* a block: min(8, dims[k])                      */
    uint32_t nb[3];    /* blocks per dimension                          */
    uint32_t nblocks;
    uint64_t nids;     /* table entries                                 */
    uint64_t table_off;/* bytes from the header's start                 */
    uint64_t index_off;
    uint64_t bytes;    /* the whole encoded chunk                       */
} lb__cseg_hdr;

typedef struct lb__cseg_block {
    uint32_t tab;  /* first id of the block's table                    */
    uint32_t idx;  /* first 32-bit word of the block's indices         */
    uint16_t n;    /* distinct ids                                     */
    uint8_t bits;  /* index width: 0, 1, 2, 4, 8 or 16                 */
    uint8_t pad;
} lb__cseg_block;

/* Bytes an encoding of a chunk of `dims` (3 entries) may need at most. 0 on
 * overflow. */
size_t lb__cseg_bound(const int64_t *dims, size_t itemsize);

/* Encode a decoded chunk (C order, `dims` = z, y, x, native byte order)
 * into out (at least lb__cseg_bound bytes, 8-aligned). Returns the encoded
 * size. Exact for any bit pattern of the itemsize. */
size_t lb__cseg_encode(const void *chunk, const int64_t *dims, size_t itemsize, void *out);

/* The same, but give up (returning LB__CSEG_DECLINED, out then holds
 * nothing usable) when `limit` is set and the encoding takes more than one
 * byte per voxel: checked after each row of blocks, so that a chunk of many
 * ids per block costs little before it is declined. */
#define LB__CSEG_DECLINED ((size_t)-1)
size_t lb__cseg_encode_limit(const void *chunk, const int64_t *dims, size_t itemsize, void *out,
                             int limit);

/* The cache's note that a chunk was declined (it holds no labels): the
 * header alone, flags LB__CSEG_DECLINED_MARK, no ids, so that
 * lb__cseg_valid never takes it for an encoding. out needs
 * sizeof(lb__cseg_hdr) bytes. lb__cseg_is_declined: 1 when p (n bytes) is
 * exactly such a note for a chunk of `dims` and `itemsize`. */
#define LB__CSEG_DECLINED_MARK 4u
size_t lb__cseg_encode_declined(const int64_t *dims, size_t itemsize, void *out);
int lb__cseg_is_declined(const void *p, size_t n, const int64_t *dims, size_t itemsize);

/* A chunk made of one value `v` (the low itemsize bytes of v): an absent
 * chunk's fill value. out needs sizeof(lb__cseg_hdr) + 8 bytes. */
size_t lb__cseg_encode_uniform(uint64_t v, const int64_t *dims, size_t itemsize, void *out);

/* 1 when `p` (n bytes) is a well-formed encoding of a chunk of `dims` and
 * `itemsize` (every offset inside, the indices 4-aligned, every table
 * reference in range, every index below its block's id count); 0 else.
 * Used on what comes out of a shared cache before it is read: the readers
 * below trust whatever it accepts. */
int lb__cseg_valid(const void *p, size_t n, const int64_t *dims, size_t itemsize);

/* A box of a chunk and where it lands: the box (cstart, cnt) of the chunk
 * goes to dst (shape dshape) at dstart; all 3-D. */
typedef struct lb__cseg_box {
    int64_t cstart[3], cnt[3];
    int64_t dshape[3], dstart[3];
} lb__cseg_box;

/* Expand the box to labels (the chunk's itemsize) into dst. */
void lb__cseg_decode_box(const void *cseg, const lb__cseg_box *b, void *dst);

/* The channel set of one id (the low itemsize bytes of `id`): `words`
 * uint64 words of channel bits into out. */
typedef void (*lb__cseg_channels_fn)(void *user, uint64_t id, uint64_t *out);

/* Write `channels` 0/1 planes of the box: plane c at out + c * plane_stride,
 * each laid out as dst (shape dshape). Every byte of the box in every plane
 * is written. Each block's ids are mapped through fn once. Returns 0, or -1
 * when more than 256 channels need scratch memory that cannot be had
 * (nothing is then promised about the output). */
int lb__cseg_channels_box(const void *cseg, const lb__cseg_box *b, size_t channels,
                           lb__cseg_channels_fn fn, void *user, uint8_t *out,
                           size_t plane_stride);

/* A region made of boxes of several encoded chunks (all of the same chunk
 * shape): parts is a grid np[0] × np[1] × np[2] (C order) of chunk boxes
 * that tile the region in order (the region's rows of part (i, j, k) follow
 * those of part (i - 1, j, k), and so on). Write `channels` (at most 64)
 * 0/1 planes of region rows z0 <= z < z1 into out (plane c at out + c *
 * plane_stride, the region at dstart inside a destination of shape
 * dshape). Disjoint z ranges may run in parallel. Returns 0, or -1 when out
 * of memory (or channels > 64). */
typedef struct lb__cseg_part {
    const void *cseg;
    int64_t cstart[3], cnt[3];
} lb__cseg_part;
int lb__cseg_channels_region(const lb__cseg_part *parts, const int64_t *np,
                             const int64_t *dshape, const int64_t *dstart, int64_t z0,
                             int64_t z1, size_t channels, lb__cseg_channels_fn fn, void *user,
                             uint8_t *out, size_t plane_stride);

/* Call fn for every distinct id occurring inside the box (each block's
 * table, restricted to the ids the box's voxels use); an id may be
 * reported more than once. */
typedef void (*lb__cseg_id_fn)(void *user, uint64_t id);
void lb__cseg_ids_in_box(const void *cseg, const lb__cseg_box *b, lb__cseg_id_fn fn,
                         void *user);

#endif /* LB_KERNELS_CSEG_H */
