/*
 * crop_kernel.c — class labels to state bitmaps and group bitmaps to output
 * bytes (crop_kernel.h). The bitmaps make a group one OR per 64 voxels per
 * class; with SSE2 (every x86-64) 16 labels become 16 bits in a few
 * instructions.
 */
#include "array/crop_kernel.h"

#if defined(__SSE2__)
#  include <emmintrin.h>
#  define LB__CROP_SSE2 1
#else
#  define LB__CROP_SSE2 0
#endif

enum { ABSENT = 0, PRESENT = 1, UNKNOWN = 2 };

void lb__class_code_init(lb__class_code *c, lb_dtype dtype, int instance, const int *has,
                         const uint64_t *values) {
    size_t s = lb_dtype_size(dtype);
    uint64_t m = s >= 8 ? UINT64_MAX : (((uint64_t)1 << (8 * s)) - 1);
    memset(c, 0, sizeof *c);
    c->dtype = dtype;
    c->instance = instance;
    for (int k = 0; k < 3; k++) {
        c->has[k] = has[k];
        c->v[k] = has[k] ? values[k] & m : 0;
    }
    for (unsigned x = 0; x < 256; x++) {
        uint8_t st = instance ? PRESENT : UNKNOWN;
        if (has[UNKNOWN] && x == c->v[UNKNOWN]) st = UNKNOWN;
        else if (has[ABSENT] && x == c->v[ABSENT]) st = ABSENT;
        else if (has[PRESENT] && x == c->v[PRESENT]) st = PRESENT;
        c->lut[x] = st;
    }
}

/* One label's (present, unknown) bits. */
static inline void state_bits(const lb__class_code *c, uint64_t v, uint64_t *p, uint64_t *u) {
    uint64_t a = (uint64_t)(c->has[ABSENT] && v == c->v[ABSENT]);
    if (c->instance) {
        uint64_t uu = (uint64_t)(c->has[UNKNOWN] && v == c->v[UNKNOWN]);
        *u = uu;
        *p = (a | uu) ^ 1;
    } else {
        uint64_t pp = (uint64_t)(c->has[PRESENT] && v == c->v[PRESENT]);
        *p = pp;
        *u = (a | pp) ^ 1;
    }
}

/* Words [i / 64, …) from label i on, the scalar way. */
static void bits_scalar(const lb__class_code *c, const void *labels, size_t i, size_t n,
                        uint64_t *P, uint64_t *U) {
    size_t is = lb_dtype_size(c->dtype);
    for (; i < n; i++) {
        uint64_t p, u;
        if (is == 1) {
            uint8_t st = c->lut[((const uint8_t *)labels)[i]];
            p = st & 1;
            u = st >> 1;
        } else {
            uint64_t v;
            switch (is) {
            case 2: v = ((const uint16_t *)labels)[i]; break;
            case 4: v = ((const uint32_t *)labels)[i]; break;
            default: v = ((const uint64_t *)labels)[i]; break;
            }
            state_bits(c, v, &p, &u);
        }
        P[i / 64] |= p << (i % 64);
        U[i / 64] |= u << (i % 64);
    }
}

void lb__class_bits_portable(const lb__class_code *c, const void *labels, size_t n,
                             uint64_t *P, uint64_t *U) {
    size_t words = (n + 63) / 64;
    memset(P, 0, words * sizeof *P);
    memset(U, 0, words * sizeof *U);
    bits_scalar(c, labels, 0, n, P, U);
}

#if LB__CROP_SSE2
/* 16 labels -> 16 bits of p and u from byte masks eq(absent), eq(present),
 * eq(unknown). */
static inline void merge16(const lb__class_code *c, unsigned ma, unsigned mp, unsigned mu,
                           uint64_t *P, uint64_t *U, size_t i) {
    unsigned p, u;
    if (c->instance) {
        u = mu;
        p = ~(ma | mu) & 0xFFFFu;
    } else {
        p = mp;
        u = ~(ma | mp) & 0xFFFFu;
    }
    P[i / 64] |= (uint64_t)p << (i % 64);
    U[i / 64] |= (uint64_t)u << (i % 64);
}
#endif

void lb__class_bits(const lb__class_code *c, const void *labels, size_t n, uint64_t *P,
                    uint64_t *U) {
    size_t words = (n + 63) / 64;
    memset(P, 0, words * sizeof *P);
    memset(U, 0, words * sizeof *U);
    size_t i = 0;
#if LB__CROP_SSE2
    size_t is = lb_dtype_size(c->dtype);
    const int ha = c->has[ABSENT], hp = c->has[PRESENT], hu = c->has[UNKNOWN];
    if (is == 1) {
        const __m128i va = _mm_set1_epi8((char)c->v[ABSENT]),
                      vp = _mm_set1_epi8((char)c->v[PRESENT]),
                      vu = _mm_set1_epi8((char)c->v[UNKNOWN]);
        const uint8_t *x = labels;
        for (; i + 16 <= n; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(x + i));
            unsigned ma = ha ? (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, va)) : 0;
            unsigned mp = hp ? (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vp)) : 0;
            unsigned mu = hu ? (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vu)) : 0;
            merge16(c, ma, mp, mu, P, U, i);
        }
    } else if (is == 2) {
        const __m128i va = _mm_set1_epi16((short)c->v[ABSENT]),
                      vp = _mm_set1_epi16((short)c->v[PRESENT]),
                      vu = _mm_set1_epi16((short)c->v[UNKNOWN]);
        const uint16_t *x = labels;
        for (; i + 16 <= n; i += 16) {
            __m128i v0 = _mm_loadu_si128((const __m128i *)(x + i));
            __m128i v1 = _mm_loadu_si128((const __m128i *)(x + i + 8));
            /* equal lanes are 0xFFFF; packs keeps them -1 (0xFF) */
#define EQ16(vv) (unsigned)_mm_movemask_epi8(_mm_packs_epi16(_mm_cmpeq_epi16(v0, vv), \
                                                             _mm_cmpeq_epi16(v1, vv)))
            unsigned ma = ha ? EQ16(va) : 0;
            unsigned mp = hp ? EQ16(vp) : 0;
            unsigned mu = hu ? EQ16(vu) : 0;
#undef EQ16
            merge16(c, ma, mp, mu, P, U, i);
        }
    }
#endif
    bits_scalar(c, labels, i, n, P, U);
}

/* 8 bits -> 8 bytes 0/1 (little-endian byte i = bit i). */
static uint64_t expand8(unsigned b) {
    uint64_t x = b & 0xFFu;
    /* spread bit j to bit 8 j */
    x = (x | (x << 28)) & 0x0000000F0000000FULL;
    x = (x | (x << 14)) & 0x0003000300030003ULL;
    x = (x | (x << 7)) & 0x0101010101010101ULL;
    return x;
}

void lb__group_bytes(const uint64_t *T, const uint64_t *K, size_t n, int mode,
                     uint8_t unknown, uint8_t *out) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        unsigned t = (unsigned)(T[i / 64] >> (i % 64)) & 0xFFu;
        unsigned k = (unsigned)(K[i / 64] >> (i % 64)) & 0xFFu;
        uint64_t v = mode == 0 ? expand8(t)
                     : mode == 1 ? expand8(k)
                                 : expand8(t) | expand8(~k & 0xFFu) * unknown;
        if (lb__host_is_big_endian()) v = __builtin_bswap64(v);
        memcpy(out + i, &v, 8);
    }
    for (; i < n; i++) {
        unsigned t = (unsigned)(T[i / 64] >> (i % 64)) & 1u;
        unsigned k = (unsigned)(K[i / 64] >> (i % 64)) & 1u;
        out[i] = (uint8_t)(mode == 0 ? t : mode == 1 ? k : t ? 1 : k ? 0 : unknown);
    }
}
