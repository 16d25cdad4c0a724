/*
 * codec.h — one interface for every byte codec. Zarr v2 compressors, N5
 * compressions (and later Zarr v3 bytes->bytes codecs) are all parsed into an
 * lb__codec and then encode/decode buffers. Decoding always targets a known
 * size (the chunk's byte size): a frame that claims any other size, or would
 * expand past it, is refused before allocation (decompression bombs).
 * Codecs are immutable after parsing and safe to use from many threads.
 */
#ifndef LB_CODEC_H
#define LB_CODEC_H

#include <json-c/json.h>

#include "core/util.h"

typedef enum lb__codec_id {
    LB__CODEC_RAW = 0, /* no compression                               */
    LB__CODEC_BLOSC,   /* blosc1 frame                                 */
    LB__CODEC_ZSTD,    /* zstd frame(s)                                */
    LB__CODEC_GZIP,    /* RFC 1952 gzip member(s)                      */
    LB__CODEC_ZLIB,    /* RFC 1950 zlib stream                         */
    LB__CODEC_LZ4,     /* numcodecs: 4-byte LE size + one LZ4 block     */
    LB__CODEC_LZ4_N5,  /* N5: lz4-java LZ4Block stream                  */
    LB__CODEC_BZ2,     /* bzip2 stream                                  */
    LB__CODEC_XZ       /* xz / lzma stream                              */
} lb__codec_id;

typedef struct lb__codec {
    lb__codec_id id;
    int level;          /* zstd/gzip/zlib/bz2/xz level, blosc clevel        */
    int blosc_cname;    /* blosc: 0 blosclz 1 lz4 2 lz4hc 3 zlib 4 zstd        */
    int blosc_shuffle;  /* blosc: -1 auto, 0 none, 1 byte, 2 bit              */
    int blosc_blocksize;/* blosc: 0 = automatic                              */
    int acceleration;   /* lz4                                               */
    int checksum;       /* zstd content checksum                             */
    int n5_use_zlib;    /* N5 gzip with useZlib                              */
    int n5_block_size;  /* N5 lz4 / bzip2 blockSize                          */
    int xz_extreme;     /* xz: preset | LZMA_PRESET_EXTREME                   */
} lb__codec;

/* Parse a Zarr v2 "compressor" value (JSON object with "id", or null =
 * raw). Unknown ids: LB_EUNSUPPORTED naming the id and the supported ones.
 * `where` is the JSON path for messages. */
int lb__codec_from_zarr2(json_object *compressor, const char *where,
                         lb__codec *out, lb_error *err);
/* Parse an N5 "compression" object ({"type": "gzip", ...}); also accept the
 * legacy flat "compressionType" string (pass it as a JSON string). */
int lb__codec_from_n5(json_object *compression, const char *where,
                      lb__codec *out, lb_error *err);
/* Parse a user codec spec for Zarr v2 output: a JSON compressor object or a
 * short form: "none", "raw", "zstd", "zstd:LEVEL", "gzip[:L]", "zlib[:L]",
 * "bz2[:L]", "lz4", "blosc" (= blosc-lz4), "blosc-CNAME[:CLEVEL]"
 * (CNAME lz4|lz4hc|zstd|zlib|blosclz, shuffle = byte), "lzma"/"xz". */
int lb__codec_parse_spec(const char *spec, lb__codec *out, lb_error *err);

/* The codec as a new Zarr v2 compressor JSON object (json null for raw) /
 * as a new N5 compression object. Caller puts/frees. NULL on ENOMEM or when
 * the format cannot express the codec (err says which). */
json_object *lb__codec_to_zarr2(const lb__codec *c, lb_error *err);
json_object *lb__codec_to_n5(const lb__codec *c, lb_error *err);

/* Short human name, e.g. "blosc(lz4, clevel 5, byte shuffle)", "zstd(3)". */
void lb__codec_describe(const lb__codec *c, char *buf, size_t size);

/* Decode `src` (n bytes) into exactly `dst_size` bytes at `dst`.
 * `typesize` is the element size (blosc needs nothing else; N5 blocks that
 * are truncated pass their own smaller dst_size). Output that would be
 * larger or smaller than dst_size is LB_EFORMAT with a message such as
 * "zstd frame declares 9000000000 bytes, chunk holds 262144". The message
 * does not name the chunk; callers prefix it. */
int lb__codec_decode(const lb__codec *c, const void *src, size_t n,
                     void *dst, size_t dst_size, size_t typesize,
                     lb_error *err);

/* Decode when the output size is only bounded (N5 blocks whose header
 * gives the size but the codec frame is checked against it): same as
 * lb__codec_decode but also succeeds when fewer than dst_size bytes come out,
 * setting *out_size. */
int lb__codec_decode_upto(const lb__codec *c, const void *src, size_t n,
                          void *dst, size_t dst_capacity, size_t *out_size,
                          size_t typesize, lb_error *err);

/* Whether the codec can encode: parsing accepts parameters that only
 * matter for encoding (e.g. any zstd level) so that every stored chunk
 * reads; this refuses those the encoder cannot use, with a message naming
 * the value and the valid range. lb__codec_encode checks it too. */
int lb__codec_check_encode(const lb__codec *c, lb_error *err);

/* Encode n bytes into `out` (replacing its contents). `typesize` drives
 * blosc's shuffle. */
int lb__codec_encode(const lb__codec *c, const void *src, size_t n,
                     size_t typesize, lb__buf *out, lb_error *err);

/* XXH32 of n bytes with `seed` (lz4-java checksums N5 lz4 blocks with it);
 * exposed for tests. */
uint32_t lb__xxh32(const void *data, size_t n, uint32_t seed);

#endif /* LB_CODEC_H */
