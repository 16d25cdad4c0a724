/*
 * nd.c — n-dimensional buffer helpers (see nd.h). The inner loops are kept
 * simple enough for the compiler to vectorise: merged contiguous runs for
 * box copies, element-size specialised strided copies for transposes.
 */
#include "core/nd.h"

#include <string.h>

#include "labelbin.h"

void lb__nd_copy_box(int ndim, size_t itemsize, const int64_t *count, const void *src,
                     const int64_t *src_shape, const int64_t *src_start, void *dst,
                     const int64_t *dst_shape, const int64_t *dst_start) {
    if (ndim == 0) {
        memcpy(dst, src, itemsize);
        return;
    }
    for (int k = 0; k < ndim; k++)
        if (count[k] <= 0) return;
    size_t ss[LB_MAX_DIMS], ds[LB_MAX_DIMS]; /* byte strides */
    ss[ndim - 1] = ds[ndim - 1] = itemsize;
    for (int k = ndim - 2; k >= 0; k--) {
        ss[k] = ss[k + 1] * (size_t)src_shape[k + 1];
        ds[k] = ds[k + 1] * (size_t)dst_shape[k + 1];
    }
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *d = (uint8_t *)dst;
    for (int k = 0; k < ndim; k++) {
        s += (size_t)src_start[k] * ss[k];
        d += (size_t)dst_start[k] * ds[k];
    }
    /* Dimensions spanned whole in both buffers merge into one contiguous
     * run with the dimension outside them. */
    int k = ndim - 1;
    size_t run = (size_t)count[k] * itemsize;
    while (k > 0 && count[k] == src_shape[k] && count[k] == dst_shape[k]) {
        k--;
        run *= (size_t)count[k];
    }
    if (k == 0) {
        memcpy(d, s, run);
        return;
    }
    int64_t idx[LB_MAX_DIMS] = {0};
    for (;;) { /* odometer over dimensions 0..k-1 */
        memcpy(d, s, run);
        int j = k - 1;
        for (; j >= 0; j--) {
            s += ss[j];
            d += ds[j];
            if (++idx[j] < count[j]) break;
            s -= (size_t)count[j] * ss[j];
            d -= (size_t)count[j] * ds[j];
            idx[j] = 0;
        }
        if (j < 0) return;
    }
}

/* Copy every element of `shape` (C order over dst), reading with byte
 * strides ss and writing with ds. */
static void strided_copy(int ndim, size_t itemsize, const int64_t *shape, const uint8_t *src,
                         const size_t *ss, uint8_t *dst, const size_t *ds) {
    for (int k = 0; k < ndim; k++)
        if (shape[k] <= 0) return;
    int64_t idx[LB_MAX_DIMS] = {0};
    int last = ndim - 1;
    size_t n = (size_t)shape[last], sst = ss[last], dst_ = ds[last];
    for (;;) {
        const uint8_t *s = src;
        uint8_t *d = dst;
        switch (itemsize) {
        case 1:
            for (size_t i = 0; i < n; i++, s += sst, d += dst_) *d = *s;
            break;
        case 2:
            for (size_t i = 0; i < n; i++, s += sst, d += dst_) memcpy(d, s, 2);
            break;
        case 4:
            for (size_t i = 0; i < n; i++, s += sst, d += dst_) memcpy(d, s, 4);
            break;
        case 8:
            for (size_t i = 0; i < n; i++, s += sst, d += dst_) memcpy(d, s, 8);
            break;
        default:
            for (size_t i = 0; i < n; i++, s += sst, d += dst_) memcpy(d, s, itemsize);
        }
        int j = last - 1;
        for (; j >= 0; j--) {
            src += ss[j];
            dst += ds[j];
            if (++idx[j] < shape[j]) break;
            src -= (size_t)shape[j] * ss[j];
            dst -= (size_t)shape[j] * ds[j];
            idx[j] = 0;
        }
        if (j < 0) return;
    }
}

void lb__nd_transpose(int ndim, size_t itemsize, const int64_t *src_shape, const int *perm,
                      const void *src, void *dst) {
    size_t n = itemsize;
    int identity = 1;
    for (int k = 0; k < ndim; k++) {
        n *= (size_t)src_shape[k];
        identity &= perm[k] == k || src_shape[perm[k]] == 1;
    }
    if (identity) { /* also covers ranks 0 and 1 and size-1 dimensions */
        memcpy(dst, src, n);
        return;
    }
    size_t sstr[LB_MAX_DIMS], ss[LB_MAX_DIMS], ds[LB_MAX_DIMS];
    int64_t dshape[LB_MAX_DIMS];
    size_t s = itemsize;
    for (int k = ndim - 1; k >= 0; k--) {
        sstr[k] = s;
        s *= (size_t)src_shape[k];
    }
    for (int i = 0; i < ndim; i++) {
        dshape[i] = src_shape[perm[i]];
        ss[i] = sstr[perm[i]];
    }
    s = itemsize;
    for (int i = ndim - 1; i >= 0; i--) {
        ds[i] = s;
        s *= (size_t)dshape[i];
    }
    strided_copy(ndim, itemsize, dshape, src, ss, dst, ds);
}

void lb__nd_fill(void *dst, size_t nbytes, const uint8_t *fill, size_t itemsize) {
    int zero = 1;
    for (size_t i = 0; i < itemsize; i++) zero &= fill[i] == 0;
    if (zero) {
        memset(dst, 0, nbytes);
        return;
    }
    uint8_t *p = dst;
    if (nbytes < itemsize) return;
    memcpy(p, fill, itemsize);
    size_t done = itemsize;
    while (done < nbytes) { /* doubling copies */
        size_t k = done < nbytes - done ? done : nbytes - done;
        memcpy(p + done, p, k);
        done += k;
    }
}

int lb__nd_is_fill(const void *data, size_t nbytes, const uint8_t *fill, size_t itemsize) {
    const uint8_t *p = data;
    if (nbytes < itemsize) return 1;
    if (memcmp(p, fill, itemsize) != 0) return 0;
    /* p[0..itemsize) is the fill; the rest equals it iff it equals the bytes
     * one element earlier. */
    return memcmp(p, p + itemsize, nbytes - itemsize) == 0;
}
