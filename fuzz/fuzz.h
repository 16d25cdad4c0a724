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

#endif /* LB_FUZZ_H */
