/*
 * util.h — small internal helpers shared by every module: error filling,
 * overflow-checked arithmetic, growable byte buffers, byte swapping.
 * Internal: `lb__` prefix, never installed.
 */
#ifndef LB_UTIL_H
#define LB_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "labelbin.h"

#if defined(__GNUC__)
#  define LB__PRINTF(f, a) __attribute__((format(printf, f, a)))
#  define LB__LIKELY(x) __builtin_expect(!!(x), 1)
#  define LB__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#  define LB__PRINTF(f, a)
#  define LB__LIKELY(x) (x)
#  define LB__UNLIKELY(x) (x)
#endif

/* Safety limits, checked before anything is allocated. */
#define LB__MAX_CHUNK_BYTES ((size_t)1 << 31)    /* one decoded chunk       */
#define LB__MAX_META_BYTES ((size_t)64 << 20)    /* one metadata file       */
#define LB__MAX_CHUNK_FILE_BYTES ((size_t)1 << 32) /* one stored chunk file */

/* Fill `err` (may be NULL) with `code` and a printf-style message; returns
 * `code` so callers can write `return lb__err(err, LB_EFORMAT, "...")`. */
int lb__err(lb_error *err, int code, const char *fmt, ...) LB__PRINTF(3, 4);
int lb__verr(lb_error *err, int code, const char *fmt, va_list ap);
/* Prefix an existing message: "<prefix>: <old message>". */
int lb__err_prefix(lb_error *err, const char *fmt, ...) LB__PRINTF(2, 3);
/* errno-based I/O error: "<path>: <strerror(errnum)>" with LB_EIO, or
 * LB_ENOTFOUND for ENOENT/ENOTDIR, LB_ENOMEM for ENOMEM. */
int lb__err_errno(lb_error *err, int errnum, const char *what, const char *path);

/* Overflow-checked arithmetic: return 0 on success, -1 on overflow. */
static inline int lb__add_i64(int64_t a, int64_t b, int64_t *r) {
    return __builtin_add_overflow(a, b, r) ? -1 : 0;
}
static inline int lb__sub_i64(int64_t a, int64_t b, int64_t *r) {
    return __builtin_sub_overflow(a, b, r) ? -1 : 0;
}
static inline int lb__mul_i64(int64_t a, int64_t b, int64_t *r) {
    return __builtin_mul_overflow(a, b, r) ? -1 : 0;
}
static inline int lb__mul_size(size_t a, size_t b, size_t *r) {
    return __builtin_mul_overflow(a, b, r) ? -1 : 0;
}
static inline int lb__add_size(size_t a, size_t b, size_t *r) {
    return __builtin_add_overflow(a, b, r) ? -1 : 0;
}
/* Product of n non-negative int64 values as size_t; -1 on overflow. */
int lb__prod_size(const int64_t *v, int n, size_t *r);

/* Run fn(user, worker, i) for every i in [0, n) on up to `threads`
 * threads, the calling one included (worker 0); worker indices are below
 * min(threads, n), for per-worker state. Items are handed out in order; after
 * a non-zero result no new item starts, and the first such result is
 * returned with its worker in *failed (may be NULL). A thread that cannot be
 * started leaves its share to the others. */
typedef int (*lb__task_fn)(void *user, int worker, int64_t i);
int lb__parallel_for(int threads, int64_t n, lb__task_fn fn, void *user, int *failed);

/* Floor division and modulo for b > 0 (correct for negative a). */
static inline int64_t lb__floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}
static inline int64_t lb__floormod(int64_t a, int64_t b) {
    int64_t m = a % b;
    return m < 0 ? m + b : m;
}
/* Ceil division for b > 0 (correct for negative a); overflow-free for the
 * ranges we use (|a| < 2^62). */
static inline int64_t lb__ceildiv(int64_t a, int64_t b) {
    return -lb__floordiv(-a, b);
}

/* A growable byte buffer. Zero-initialise; lb__buf_free releases. */
typedef struct lb__buf {
    uint8_t *data;
    size_t size;
    size_t cap;
} lb__buf;
int lb__buf_reserve(lb__buf *b, size_t cap, lb_error *err);
int lb__buf_append(lb__buf *b, const void *p, size_t n, lb_error *err);
int lb__buf_printf(lb__buf *b, lb_error *err, const char *fmt, ...) LB__PRINTF(3, 4);
void lb__buf_free(lb__buf *b);

/* strdup that reports LB_ENOMEM through err; NULL in -> NULL out, no error. */
char *lb__strdup(const char *s, lb_error *err);
/* malloc/calloc that report LB_ENOMEM naming `what`. */
void *lb__malloc(size_t n, const char *what, lb_error *err);
void *lb__calloc(size_t n, size_t size, const char *what, lb_error *err);

/* Byte swapping in place: n elements of `size` bytes (2, 4 or 8). */
void lb__byteswap(void *data, size_t n, size_t size);
static inline int lb__host_is_big_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 0;
}

/* Number of online CPUs (>= 1). */
int lb__ncpu(void);

/* A 64-bit hash of n bytes (identities, checksums, stamps), and the
 * finaliser it ends with (a bijective mix of one word). */
uint64_t lb__hash64(const void *p, size_t n, uint64_t seed);
static inline uint64_t lb__mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

#endif /* LB_UTIL_H */
