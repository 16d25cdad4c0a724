/*
 * fuzz_zarray.c — Zarr v2 metadata and chunk decoding. Input: .zarray text,
 * optionally a NUL and stored chunk bytes, which are decoded through the
 * opened array (codec chain, byte order, F order, fill value) when the
 * chunk is small enough.
 */
#include "dataset/dataset.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t n1, nchunk;
    const uint8_t *chunk;
    fuzz_split(data, size, &n1, &chunk, &nchunk);
    fuzz_open_and_read(".zarray", data, n1, chunk, nchunk);
    return 0;
}
