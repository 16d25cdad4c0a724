/*
 * util.c — error records, growable buffers, byte swapping, a parallel loop
 * and the other small helpers every module shares (see util.h).
 */
#include "core/util.h"
#include "core/path.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LB_VERSION
#  define LB_VERSION LB_VERSION_STRING
#endif

const char *lb_version(void) { return LB_VERSION; }

const char *lb_strerror(int code) {
    switch (code) {
    case LB_OK: return "success";
    case LB_EINVAL: return "invalid argument";
    case LB_ENOMEM: return "out of memory";
    case LB_EIO: return "input/output error";
    case LB_EFORMAT: return "corrupt or invalid data";
    case LB_EUNSUPPORTED: return "not supported";
    case LB_ENOTFOUND: return "not found";
    case LB_EEXIST: return "already exists";
    case LB_EROI: return "region outside the array or not aligned to the voxel size";
    case LB_ELIMIT: return "size limit exceeded";
    case LB_ECANCELED: return "canceled";
    case LB_EVIRTUAL: return "not possible on a virtual array";
    case LB_EOVERLAP: return "the destination overlaps an input dataset";
    default: return "unknown error";
    }
}

int lb__verr(lb_error *err, int code, const char *fmt, va_list ap) {
    if (err) {
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        lb__hide_credentials(err->message);
    }
    return code;
}

int lb__err(lb_error *err, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lb__verr(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int lb__err_prefix(lb_error *err, const char *fmt, ...) {
    if (!err) return 0;
    char prefix[LB_ERROR_MESSAGE_SIZE];
    char old[LB_ERROR_MESSAGE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    old[sizeof old - 1] = '\0';
    snprintf(err->message, sizeof err->message, "%s: %s", prefix, old);
    lb__hide_credentials(err->message);
    return err->code;
}

int lb__err_errno(lb_error *err, int errnum, const char *what, const char *path) {
    int code = LB_EIO;
    if (errnum == ENOENT || errnum == ENOTDIR) code = LB_ENOTFOUND;
    else if (errnum == ENOMEM) code = LB_ENOMEM;
    if (what && *what)
        return lb__err(err, code, "%s: %s: %s", path, what, strerror(errnum));
    return lb__err(err, code, "%s: %s", path, strerror(errnum));
}

int lb__prod_size(const int64_t *v, int n, size_t *r) {
    size_t p = 1;
    for (int i = 0; i < n; i++) {
        if (v[i] < 0 || (uint64_t)v[i] > SIZE_MAX) return -1;
        if (lb__mul_size(p, (size_t)v[i], &p)) return -1;
    }
    *r = p;
    return 0;
}

int lb__buf_reserve(lb__buf *b, size_t cap, lb_error *err) {
    if (cap <= b->cap) return 0;
    /* Double for amortised appends, but never overshoot a large request
     * (a decoded chunk may be up to 2 GiB: give exactly that). */
    size_t ncap = b->cap < 32 ? 64 : b->cap;
    if (ncap < ((size_t)64 << 20)) ncap *= 2;
    if (ncap < cap) ncap = cap;
    uint8_t *p = realloc(b->data, ncap);
    if (!p) return lb__err(err, LB_ENOMEM, "out of memory (buffer of %zu bytes)", ncap);
    b->data = p;
    b->cap = ncap;
    return 0;
}

int lb__buf_append(lb__buf *b, const void *p, size_t n, lb_error *err) {
    size_t need;
    if (lb__add_size(b->size, n, &need))
        return lb__err(err, LB_ELIMIT, "buffer size overflows");
    int rc = lb__buf_reserve(b, need + 1, err); /* room for a NUL */
    if (rc) return rc;
    if (n) memcpy(b->data + b->size, p, n);
    b->size = need;
    b->data[b->size] = 0;
    return 0;
}

int lb__buf_printf(lb__buf *b, lb_error *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return lb__err(err, LB_EINVAL, "bad format");
    int rc = lb__buf_reserve(b, b->size + (size_t)n + 1, err);
    if (rc) return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->size, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->size += (size_t)n;
    return 0;
}

void lb__buf_free(lb__buf *b) {
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->size = b->cap = 0;
}

char *lb__strdup(const char *s, lb_error *err) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (!p) {
        lb__err(err, LB_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(p, s, n);
    return p;
}

void *lb__malloc(size_t n, const char *what, lb_error *err) {
    void *p = malloc(n ? n : 1);
    if (!p) lb__err(err, LB_ENOMEM, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *lb__calloc(size_t n, size_t size, const char *what, lb_error *err) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) lb__err(err, LB_ENOMEM, "out of memory allocating %zu x %zu bytes for %s", n, size, what);
    return p;
}

void lb__byteswap(void *data, size_t n, size_t size) {
    uint8_t *p = data;
    switch (size) {
    case 2:
        for (size_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, p + 2 * i, 2);
            v = __builtin_bswap16(v);
            memcpy(p + 2 * i, &v, 2);
        }
        break;
    case 4:
        for (size_t i = 0; i < n; i++) {
            uint32_t v;
            memcpy(&v, p + 4 * i, 4);
            v = __builtin_bswap32(v);
            memcpy(p + 4 * i, &v, 4);
        }
        break;
    case 8:
        for (size_t i = 0; i < n; i++) {
            uint64_t v;
            memcpy(&v, p + 8 * i, 8);
            v = __builtin_bswap64(v);
            memcpy(p + 8 * i, &v, 8);
        }
        break;
    default:
        break;
    }
}

int lb__ncpu(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
}

/* ------------------------------------------------------------------------
 * lb__parallel_for
 * ------------------------------------------------------------------------ */

typedef struct par_state {
    lb__task_fn fn;
    void *user;
    int64_t n;
    atomic_int_fast64_t next;
    atomic_int stop;
    pthread_mutex_t mu;
    int rc, failed; /* the first failure */
} par_state;

typedef struct par_arg {
    par_state *st;
    int worker;
} par_arg;

static void *par_main(void *v) {
    par_arg *a = v;
    par_state *st = a->st;
    while (!atomic_load(&st->stop)) {
        int64_t i = atomic_fetch_add(&st->next, 1);
        if (i >= st->n) break;
        int rc = st->fn(st->user, a->worker, i);
        if (rc) {
            pthread_mutex_lock(&st->mu);
            if (!st->rc) {
                st->rc = rc;
                st->failed = a->worker;
            }
            pthread_mutex_unlock(&st->mu);
            atomic_store(&st->stop, 1);
        }
    }
    return NULL;
}

int lb__parallel_for(int threads, int64_t n, lb__task_fn fn, void *user, int *failed) {
    enum { MAX_THREADS = 256 };
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (n < threads) threads = (int)n;
    par_state st;
    memset(&st, 0, sizeof st);
    st.fn = fn;
    st.user = user;
    st.n = n;
    atomic_init(&st.next, 0);
    atomic_init(&st.stop, 0);
    if (threads <= 1 || pthread_mutex_init(&st.mu, NULL) != 0) {
        for (int64_t i = 0; i < n; i++) {
            int rc = fn(user, 0, i);
            if (rc) {
                if (failed) *failed = 0;
                return rc;
            }
        }
        return 0;
    }
    par_arg args[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS];
    for (int w = 0; w < threads; w++) {
        args[w].st = &st;
        args[w].worker = w;
        started[w] = w > 0 && pthread_create(&tid[w], NULL, par_main, &args[w]) == 0;
    }
    par_main(&args[0]);
    for (int w = 1; w < threads; w++)
        if (started[w]) pthread_join(tid[w], NULL);
    pthread_mutex_destroy(&st.mu);
    if (st.rc && failed) *failed = st.failed;
    return st.rc;
}

/* ---- hashing ---- */

static inline uint64_t rotl(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

uint64_t lb__hash64(const void *p, size_t n, uint64_t seed) {
    const uint8_t *b = p;
    const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full;
    /* Four independent lanes: checksums of every cache hit must be cheap. */
    uint64_t a[4] = {seed + P1, seed ^ P2, seed - P1, ~seed};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, b + i + 8 * k, 8);
            a[k] = rotl(a[k] + w * P2, 31) * P1;
        }
    uint64_t h = rotl(a[0], 1) + rotl(a[1], 7) + rotl(a[2], 12) + rotl(a[3], 18) + n;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = rotl(h ^ (w * P2), 27) * P1 + P2;
    }
    for (; i < n; i++) h = rotl(h ^ (b[i] * P1), 11) * P2;
    return lb__mix64(h);
}
