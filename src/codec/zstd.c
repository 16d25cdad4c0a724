/*
 * zstd.c — the zstd codec: frames' declared sizes are checked before
 * decoding, contexts are kept per thread, and any level is read (the level
 * only matters when compressing).
 */
#include <pthread.h>
#include <stdlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "codec/impl.h"
#include "codec/zstd.h"

/* ------------------------------------------------------------------------
 * Per-thread codec contexts
 *
 * A zstd context costs as much to create (and its tables to clear) as a
 * small chunk costs to code: ZSTD_compress2 with a fresh level-3 context per
 * 256 KiB binary chunk spent ~1/3 of its time in creating and resetting it
 * (perf, -j1 binarize of 64 Mvoxels). Each thread keeps one compression and
 * one decompression context and reuses them; they are freed when the thread
 * ends. Without thread-specific storage the coders fall back to a context per
 * call.
 * ------------------------------------------------------------------------ */

typedef struct thread_ctx {
    ZSTD_CCtx *zc;
    ZSTD_DCtx *zd;
} thread_ctx;

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static int ctx_key_ok;

static void thread_ctx_free(void *v) {
    thread_ctx *t = v;
    if (!t) return;
    ZSTD_freeCCtx(t->zc);
    ZSTD_freeDCtx(t->zd);
    free(t);
}

static void ctx_key_init(void) { ctx_key_ok = pthread_key_create(&ctx_key, thread_ctx_free) == 0; }

/* When the library is unloaded, threads that outlive it must not call into
 * it at exit: forget the key (their contexts leak, once). */
__attribute__((destructor)) static void ctx_key_fini(void) {
    if (ctx_key_ok) {
        thread_ctx_free(pthread_getspecific(ctx_key));
        pthread_setspecific(ctx_key, NULL);
        pthread_key_delete(ctx_key);
        ctx_key_ok = 0;
    }
}

/* This thread's contexts; NULL when there is no thread-specific storage. */
static thread_ctx *thread_ctx_get(void) {
    pthread_once(&ctx_once, ctx_key_init);
    if (!ctx_key_ok) return NULL;
    thread_ctx *t = pthread_getspecific(ctx_key);
    if (t) return t;
    t = calloc(1, sizeof *t);
    if (t && pthread_setspecific(ctx_key, t) != 0) {
        free(t);
        t = NULL;
    }
    return t;
}

/* Sum of the content sizes that the frames declare (skippable frames count
 * 0), stopping at the first frame whose structure is broken (-1; the
 * decoder then says how). *unknown is set when a frame has no content size. */
static int zstd_declared(const uint8_t *src, size_t n, uint64_t *total, int *unknown) {
    size_t pos = 0;
    *total = 0;
    *unknown = 0;
    while (pos < n) {
        unsigned long long cs = ZSTD_getFrameContentSize(src + pos, n - pos);
        if (cs == ZSTD_CONTENTSIZE_ERROR) return -1;
        if (cs == ZSTD_CONTENTSIZE_UNKNOWN) *unknown = 1;
        else if (__builtin_add_overflow(*total, (uint64_t)cs, total)) *total = UINT64_MAX;
        size_t fs = ZSTD_findFrameCompressedSize(src + pos, n - pos);
        if (ZSTD_isError(fs) || fs == 0) return -1;
        pos += fs;
    }
    return 0;
}

static int dec_zstd(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got,
                    int exact, lb_error *err) {
    if (n == 0) return lb__err(err, LB_EFORMAT, "zstd data is empty");
    /* Declared sizes are checked before any decoding (even those of a frame
     * that turns out truncated); frames without one decode straight into
     * dst, which bounds them (one-shot decoding needs no window buffer). */
    uint64_t total;
    int unknown;
    int whole = zstd_declared(src, n, &total, &unknown) == 0;
    if (total > cap || (whole && exact && !unknown && total != cap))
        return lb__codec_err_declared(err, "zstd frame", total, cap, exact);
    thread_ctx *t = thread_ctx_get();
    if (t && !t->zd) t->zd = ZSTD_createDCtx();
    size_t r = t && t->zd ? ZSTD_decompressDCtx(t->zd, dst, cap, src, n)
                          : ZSTD_decompress(dst, cap, src, n);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
            return lb__codec_err_expands(err, "zstd data", cap);
        if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
            return lb__err(err, LB_ENOMEM, "zstd: out of memory");
        return lb__err(err, LB_EFORMAT, "zstd data is truncated or corrupt (%s)",
                       ZSTD_getErrorName(r));
    }
    if (exact && r != cap) return lb__codec_err_short(err, "zstd data", r, cap);
    *got = r;
    return 0;
}

int lb__zstd_check_level(int level, lb_error *err) {
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
        return lb__err(err, LB_EINVAL,
                       "zstd level %d cannot be used to compress: the valid levels are %d..%d "
                       "(0 = the default, 3)",
                       level, ZSTD_minCLevel(), ZSTD_maxCLevel());
    return 0;
}

int lb__zstd_level_range(int *lo, int *hi) {
    *lo = ZSTD_minCLevel();
    *hi = ZSTD_maxCLevel();
    return 0;
}

static int enc_zstd(const lb__codec *c, const uint8_t *src, size_t n, lb__buf *out,
                    lb_error *err) {
    int rc = lb__zstd_check_level(c->level, err);
    if (rc) return rc;
    size_t bound = ZSTD_compressBound(n);
    if (ZSTD_isError(bound)) return lb__err(err, LB_ELIMIT, "zstd cannot compress %zu bytes", n);
    rc = lb__buf_reserve(out, bound, err);
    if (rc) return rc;
    thread_ctx *t = thread_ctx_get();
    if (t && !t->zc) t->zc = ZSTD_createCCtx();
    ZSTD_CCtx *cc = t && t->zc ? t->zc : ZSTD_createCCtx();
    if (!cc) return lb__err(err, LB_ENOMEM, "out of memory (zstd compressor)");
    /* A reused context keeps the parameters of its last use: set all. */
    size_t r = ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, c->level);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, c->checksum ? 1 : 0);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
    if (!ZSTD_isError(r)) r = ZSTD_compress2(cc, out->data, bound, src, n);
    if (!t || cc != t->zc) ZSTD_freeCCtx(cc);
    if (ZSTD_isError(r))
        return lb__err(err, LB_EINVAL, "zstd compression failed (%s)", ZSTD_getErrorName(r));
    out->size = r;
    return 0;
}

static int zstd_bb_decode(const lb__codec *c, const uint8_t *src, size_t n, uint8_t *dst,
                       size_t cap, size_t *got, int exact, lb_error *err) {
    (void)c;
    return dec_zstd(src, n, dst, cap, got, exact, err);
}

static int zstd_bb_encode(const lb__codec *c, const uint8_t *src, size_t n, size_t typesize,
                       lb__buf *out, lb_error *err) {
    (void)typesize;
    return enc_zstd(c, src, n, out, err);
}

static size_t zstd_bb_bound(const lb__codec *c, size_t n) {
    (void)c;
    size_t b = ZSTD_compressBound(n);
    return ZSTD_isError(b) ? SIZE_MAX : b;
}

const lb__codec_ops lb__ops_zstd = {
    .name = "zstd",
    .kind = LB__KIND_BYTES_BYTES,
    .bb_decode = zstd_bb_decode,
    .bb_encode = zstd_bb_encode,
    .bb_bound = zstd_bb_bound,
};
