/*
 * codec.h — one codec object for every format, and the chain that composes
 * codecs (chains: codec/chain.h). Zarr v3 names three kinds: array→array (transpose), array→bytes
 * (bytes, N5's block, sharding_indexed) and bytes→bytes (compressors, crc32c).
 * A chain is zero or more array→array codecs, one array→bytes codec and zero
 * or more bytes→bytes codecs; Zarr v2 and N5 metadata are expressed as chains
 * too, so one decode and one encode path serve every format.
 *
 * Codecs are immutable once built and safe to use from many threads. Every
 * decode writes into a buffer of known, bounded size: a frame that declares
 * or produces more is refused before anything larger is allocated.
 */
#ifndef LB_CODEC_CODEC_H
#define LB_CODEC_CODEC_H

#include "core/util.h"

typedef enum lb__codec_kind {
    LB__KIND_ARRAY_ARRAY = 0,
    LB__KIND_ARRAY_BYTES = 1,
    LB__KIND_BYTES_BYTES = 2
} lb__codec_kind;

typedef enum lb__codec_id {
    /* bytes -> bytes */
    LB__CODEC_RAW = 0,   /* no compression: the bytes as they are          */
    LB__CODEC_BLOSC, /* blosc1 frame                                  */
    LB__CODEC_ZSTD,      /* zstd frame(s)                                 */
    LB__CODEC_GZIP,      /* RFC 1952 member(s); zlib streams also decoded  */
    LB__CODEC_ZLIB,      /* RFC 1950 stream; gzip members also decoded     */
    LB__CODEC_LZ4,       /* numcodecs: 4-byte LE size + one LZ4 block       */
    LB__CODEC_LZ4_N5,    /* N5: lz4-java LZ4Block stream                    */
    LB__CODEC_BZ2,       /* bzip2 stream                                    */
    LB__CODEC_XZ,        /* xz stream                                       */
    LB__CODEC_CRC32C,    /* appends a little-endian CRC32C of the bytes      */
    /* array -> bytes */
    LB__CODEC_BYTES,     /* the elements in C order, little or big endian   */
    LB__CODEC_N5_BLOCK,  /* N5 block header + compressed big-endian data    */
    LB__CODEC_SHARDING,  /* sharding_indexed: inner chunks + an index       */
    /* array -> array */
    LB__CODEC_TRANSPOSE, /* permutes the dimensions                         */
    LB__CODEC_COUNT
} lb__codec_id;

typedef struct lb__chain lb__chain;

/* One configured codec. Only the fields of its `id` are meaningful. Formats
 * read them to write their own metadata back. */
typedef struct lb__codec {
    lb__codec_id id;
    /* compressors */
    int level;           /* zstd/gzip/zlib/bz2/xz level, blosc clevel          */
    int blosc_cname;     /* 0 blosclz 1 lz4 2 lz4hc 3 zlib 4 zstd               */
    int blosc_shuffle;   /* -1 auto (by typesize), 0 none, 1 byte, 2 bit         */
    int blosc_blocksize; /* 0 = automatic                                      */
    int blosc_typesize;  /* 0 = the element size of the data coded              */
    int acceleration;    /* lz4                                                */
    int checksum;        /* zstd content checksum                              */
    int n5_block_size;   /* N5 lz4 / bzip2 blockSize                           */
    int xz_extreme;      /* xz: preset | LZMA_PRESET_EXTREME                    */
    int n5_use_zlib;     /* N5 gzip with useZlib: write zlib, not gzip          */
    /* bytes */
    int big_endian;
    /* transpose: encoded dimension i is decoded dimension order[i] */
    int ndim;
    int order[LB_MAX_DIMS];
    /* n5_block: its compression (NULL = raw) */
    struct lb__codec *compression;
    /* sharding_indexed */
    int64_t inner_shape[LB_MAX_DIMS]; /* ndim entries                       */
    lb__chain *inner;                  /* codecs of each inner chunk         */
    lb__chain *index;                  /* codecs of the index                */
    int index_at_start;                /* index_location "start"             */
} lb__codec;

/* ---- codecs ---------------------------------------------------------------- */

/* A codec with the defaults of its kind (numcodecs' for compressors). */
void lb__codec_init(lb__codec *c, lb__codec_id id);
/* A heap copy (deep for n5_block and sharding); NULL on ENOMEM. */
lb__codec *lb__codec_dup(const lb__codec *c, lb_error *err);
/* Free a codec made by lb__codec_dup (and what it owns); NULL is fine. */
void lb__codec_free(lb__codec *c);
/* Release what a codec value owns (its nested chains), not the value. */
void lb__codec_clear(lb__codec *c);

lb__codec_kind lb__codec_kind_of(lb__codec_id id);
/* The Zarr v3 name ("blosc", "zstd", "bytes", "sharding_indexed", …). */
const char *lb__codec_name(lb__codec_id id);

/* bytes → bytes: decode `n` bytes into at most `cap` bytes at dst (*got set);
 * with `exact`, exactly cap. Bombs, truncation and trailing garbage are
 * LB_EFORMAT; messages do not name the chunk (callers prefix it). */
int lb__codec_bb_decode(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                        size_t cap, size_t *got, int exact, lb_error *err);
/* bytes → bytes: encode into `out` (replaced). `typesize` is the element
 * size of the data underneath (blosc's shuffle). */
int lb__codec_bb_encode(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                        lb__buf *out, lb_error *err);
/* The largest encoding of n bytes (for sizing decode buffers of stacked
 * bytes→bytes codecs); SIZE_MAX on overflow. */
size_t lb__codec_bb_bound(const lb__codec *c, size_t n);

/* Short human description: "zstd(level 3)", "blosc(lz4, clevel 5, shuffle)". */
void lb__codec_describe(const lb__codec *c, char *buf, size_t size);

/* Refuse a codec that can decode but not encode as configured (a zstd
 * level outside the library's range). */
int lb__codec_check_encode(const lb__codec *c, lb_error *err);

/* Compatibility spellings of the bytes→bytes calls: decode exactly
 * `dst_size` bytes, or at most `dst_capacity` (*out_size set). */
int lb__codec_decode(const lb__codec *c, const void *src, size_t n, void *dst,
                     size_t dst_size, size_t typesize, lb_error *err);
int lb__codec_decode_upto(const lb__codec *c, const void *src, size_t n, void *dst,
                          size_t dst_capacity, size_t *out_size, size_t typesize,
                          lb_error *err);
int lb__codec_encode(const lb__codec *c, const void *src, size_t n, size_t typesize,
                     lb__buf *out, lb_error *err);

#endif /* LB_CODEC_CODEC_H */
