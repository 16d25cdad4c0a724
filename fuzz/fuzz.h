/*
 * fuzz.h — shared helpers of the libFuzzer targets in fuzz/: the entry point
 * declaration (so the targets compile warning-free under gcc's
 * -Wmissing-prototypes too) and bounds every target applies.
 */
#ifndef LB_FUZZ_H
#define LB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* Decoded buffers the targets allocate stay below this (the library's own
 * limits are much larger; the fuzzer must not spend its time in memset). */
#define FUZZ_MAX_OUT ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of data (the text APIs take C strings). NULL only
 * on allocation failure. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return NULL;
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Split data at the first NUL: [data, *n1) and the rest after the NUL
 * (*rest = NULL when there is none). */
static inline void fuzz_split(const uint8_t *data, size_t size, size_t *n1,
                              const uint8_t **rest, size_t *nrest) {
    const uint8_t *z = size ? memchr(data, 0, size) : NULL;
    if (!z) {
        *n1 = size;
        *rest = NULL;
        *nrest = 0;
        return;
    }
    *n1 = (size_t)(z - data);
    *rest = z + 1;
    *nrest = size - *n1 - 1;
}

#ifdef LB_DATASET_DATASET_H
#include "store/memory.h"

/* Open the array whose metadata file `meta_name` (".zarray",
 * "attributes.json", "zarr.json") holds [meta, meta + n) in a memory store,
 * at "a". When `chunk` is given it is stored as the array's first chunk
 * (index 0, …) and decoded, when it is small enough. Every failure is an
 * answer, never a crash. */
static inline void fuzz_open_and_read(const char *meta_name, const uint8_t *meta, size_t n,
                                      const uint8_t *chunk, size_t nchunk) {
    lb__store *s = NULL;
    lb_error err = {0};
    if (lb__store_memory(&s, &err)) return;
    char key[64];
    snprintf(key, sizeof key, "a/%s", meta_name);
    lb__dataset *d = NULL;
    if (lb__store_put(s, key, meta, n, &err) == 0 && lb__dataset_open_at(s, "a", 0, &d, &err) == 0) {
        char buf[64];
        lb__dataset_fill_json(d, buf, sizeof buf);
        int64_t cidx[LB_MAX_DIMS] = {0};
        char ck[LB_MAX_DIMS * 24];
        lb__dataset_chunk_path(d, cidx, ck, sizeof ck);
        json_object *cj = d->format->codec_json(&d->m, &err);
        json_object_put(cj);
        int nonempty = 1;
        for (int k = 0; k < d->ndim; k++) nonempty &= d->shape[k] > 0;
        if (chunk && nonempty && d->chunk_bytes <= FUZZ_MAX_OUT &&
            lb__store_put(s, ck, chunk, nchunk, &err) == 0) {
            void *dst = malloc(d->chunk_bytes ? d->chunk_bytes : 1);
            int present;
            if (dst) lb__dataset_read_chunk(d, cidx, dst, &present, &err);
            free(dst);
        }
    }
    lb__dataset_free(d);
    lb__store_free(s);
}
#endif

#endif /* LB_FUZZ_H */
