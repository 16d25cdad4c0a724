/*
 * crop_kernel.h — the pure compute of arrays over a crop: one class's
 * labels to two bitmaps (present, unknown), and bitmaps of a group back to
 * output bytes. No I/O, no allocation. Bit i of a bitmap is bit i % 64 of
 * word i / 64.
 */
#ifndef LB_ARRAY_CROP_KERNEL_H
#define LB_ARRAY_CROP_KERNEL_H

#include "core/util.h"

/* How one class array codes its states. */
typedef struct lb__class_code {
    lb_dtype dtype;
    int instance;      /* values not encoded are instance ids (present) */
    int has[3];        /* absent, present, unknown keys of the encoding  */
    uint64_t v[3];     /* their values as stored bits (masked to dtype)  */
    uint8_t lut[256];  /* 8-bit dtypes: 0 absent, 1 present, 2 unknown   */
} lb__class_code;

/* Fill `c` from an encoding's values (`values[k]` meaningful when
 * has[k]). */
void lb__class_code_init(lb__class_code *c, lb_dtype dtype, int instance, const int *has,
                         const uint64_t *values);

/* The states of n labels (c's dtype, native byte order) as bitmaps: P
 * present, U unknown (absent: neither). Writes ceil(n / 64) words of each;
 * bits past n are 0. Semantic values outside the encoding are unknown. */
void lb__class_bits(const lb__class_code *c, const void *labels, size_t n, uint64_t *P,
                    uint64_t *U);
/* The same without SIMD (tests compare the two). */
void lb__class_bits_portable(const lb__class_code *c, const void *labels, size_t n,
                             uint64_t *P, uint64_t *U);

/* Output bytes of a group from its bitmaps T (present) and K (known):
 * mode 0 target (T), 1 mask (K), 2 states (1 present, 0 absent, `unknown`
 * otherwise). n bytes. */
void lb__group_bytes(const uint64_t *T, const uint64_t *K, size_t n, int mode,
                     uint8_t unknown, uint8_t *out);

#endif /* LB_ARRAY_CROP_KERNEL_H */
