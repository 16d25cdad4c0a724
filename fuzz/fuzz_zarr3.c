/*
 * fuzz_zarr3.c — Zarr v3 metadata (zarr.json) and the array's first chunk.
 * Input: zarr.json text, optionally a NUL and the bytes stored under the
 * first chunk's key (a whole shard for a sharded array). fuzz_open_and_read
 * opens it through the memory store and decodes the first read chunk (for
 * a sharded array: the index and inner chunk 0, by byte range);
 * fuzz_v3_check then reads the first stored chunk as a region and decodes
 * it whole, which must agree, and re-encodes what decoded (fuzz_v3.h).
 */
#include "fuzz_v3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t n1, nchunk;
    const uint8_t *chunk;
    fuzz_split(data, size, &n1, &chunk, &nchunk);
    fuzz_open_and_read("zarr.json", data, n1, chunk, nchunk);
    fuzz_v3_check(data, n1, chunk, nchunk);
    return 0;
}
