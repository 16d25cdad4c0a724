/*
 * fuzz_shard.c — one shard of a sharded_indexed Zarr v3 array, decoded
 * through a fixed array definition so that the fuzzer spends its time in
 * the shard, not in JSON. Header bytes:
 *   [0] bit 0 index at the start, bit 1 crc32c after the index, bit 2 index
 *       big-endian, bit 3 nested (each inner chunk a shard of [1, 2] inner
 *       chunks), bit 4 a transpose before the sharding codec (the shard is
 *       then decoded whole), bit 5 an edge shard (array [3, 7])
 *   [1] inner codecs (mod 8): bytes little | bytes big | bytes + gzip |
 *       bytes + zstd | bytes + blosc lz4 shuffle | bytes + crc32c |
 *       transpose + bytes | bytes big + zstd + crc32c
 *   [2] data type (mod 4): uint8 | uint16 | int32 | uint64
 * The rest is the shard: array [4, 8] (or [3, 7]), shard [4, 8], inner
 * chunks [2, 4], so an index of 4 entries (64 bytes, 68 with crc32c).
 * Read as fuzz_v3.h describes: by byte ranges and whole, which must agree,
 * and re-encoded.
 */
#include "fuzz_v3.h"

#define BYTES_LE "{\"name\":\"bytes\",\"configuration\":{\"endian\":\"little\"}}"
#define BYTES_BE "{\"name\":\"bytes\",\"configuration\":{\"endian\":\"big\"}}"
#define CRC "{\"name\":\"crc32c\"}"

static const char *const inner_codecs[] = {
    BYTES_LE,
    BYTES_BE,
    BYTES_LE ",{\"name\":\"gzip\",\"configuration\":{\"level\":1}}",
    BYTES_LE ",{\"name\":\"zstd\",\"configuration\":{\"level\":1,\"checksum\":false}}",
    BYTES_LE ",{\"name\":\"blosc\",\"configuration\":{\"cname\":\"lz4\",\"clevel\":5,"
             "\"shuffle\":\"shuffle\",\"typesize\":2,\"blocksize\":0}}",
    BYTES_LE "," CRC,
    "{\"name\":\"transpose\",\"configuration\":{\"order\":[1,0]}}," BYTES_LE,
    BYTES_BE ",{\"name\":\"zstd\",\"configuration\":{\"level\":1,\"checksum\":false}}," CRC,
};
static const char *const dtypes[] = {"uint8", "uint16", "int32", "uint64"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    int flags = data[0];
    const char *inner = inner_codecs[data[1] % 8];
    char nested[512], index[256], sharding[1024], meta[2048];
    if (flags & 8) {
        snprintf(nested, sizeof nested,
                 "{\"name\":\"sharding_indexed\",\"configuration\":{\"chunk_shape\":[1,2],"
                 "\"codecs\":[%s],\"index_codecs\":[" BYTES_LE "," CRC "]}}",
                 inner);
        inner = nested;
    }
    snprintf(index, sizeof index, "%s%s", flags & 4 ? BYTES_BE : BYTES_LE,
             flags & 2 ? "," CRC : "");
    snprintf(sharding, sizeof sharding,
             "{\"name\":\"sharding_indexed\",\"configuration\":{\"chunk_shape\":%s,"
             "\"codecs\":[%s],\"index_codecs\":[%s],\"index_location\":\"%s\"}}",
             flags & 16 ? "[4,2]" : "[2,4]", inner, index, flags & 1 ? "start" : "end");
    snprintf(meta, sizeof meta,
             "{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":%s,\"data_type\":\"%s\","
             "\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":[4,8]}},"
             "\"chunk_key_encoding\":{\"name\":\"default\"},\"fill_value\":7,"
             "\"codecs\":[%s%s]}",
             flags & 32 ? "[3,7]" : "[4,8]", dtypes[data[2] % 4],
             flags & 16 ? "{\"name\":\"transpose\",\"configuration\":{\"order\":[1,0]}}," : "",
             sharding);
    fuzz_v3_check((const uint8_t *)meta, strlen(meta), data + 3, size - 3);
    return 0;
}
