/*
 * fuzz_zarray.c — Zarr v2 metadata and chunk decoding. Input: .zarray text,
 * optionally a NUL and stored chunk bytes, which are decoded through the
 * parsed dataset (codec, byte order, F order, fill value) when the chunk is
 * small enough.
 */
#include <json-c/json.h>

#include "dataset/dataset.h"
#include "fuzz.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t n1, nchunk;
    const uint8_t *chunk;
    fuzz_split(data, size, &n1, &chunk, &nchunk);
    json_object *meta = NULL;
    lb_error err = {0};
    if (lb__json_parse((const char *)data, n1, ".zarray", &meta, &err)) return 0;
    lb__dataset d;
    memset(&d, 0, sizeof d);
    d.format = LB_FORMAT_ZARR2;
    if (lb__zarr2_parse(&d, meta, ".zarray", &err) == 0) {
        char buf[64];
        lb__dataset_fill_json(&d, buf, sizeof buf);
        int64_t cidx[LB_MAX_DIMS] = {0};
        char key[LB_MAX_DIMS * 24];
        lb__zarr2_chunk_key(&d, cidx, key, sizeof key);
        if (chunk && d.chunk_bytes <= FUZZ_MAX_OUT) {
            void *dst = malloc(d.chunk_bytes ? d.chunk_bytes : 1);
            lb__buf scratch = {0};
            if (dst) lb__zarr2_decode(&d, chunk, nchunk, dst, &scratch, &err);
            lb__buf_free(&scratch);
            free(dst);
        }
    }
    json_object_put(d.attrs);
    json_object_put(meta);
    return 0;
}
