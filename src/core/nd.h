/*
 * nd.h — n-dimensional buffer helpers for C-order chunks: box copies,
 * transposes by any permutation, filling with and testing for a fill value.
 */
#ifndef LB_CORE_ND_H
#define LB_CORE_ND_H

#include <stddef.h>
#include <stdint.h>

/* Copy an n-d box between two C-order buffers of the same element size:
 * `count` elements per dim, from src (dims src_shape) at src_start to dst
 * (dims dst_shape) at dst_start. */
void lb__nd_copy_box(int ndim, size_t itemsize, const int64_t *count, const void *src,
                     const int64_t *src_shape, const int64_t *src_start, void *dst,
                     const int64_t *dst_shape, const int64_t *dst_start);

/* dst = src with its dimensions permuted: dst's dimension i is src's
 * dimension perm[i] (dst shape[i] = src_shape[perm[i]]). Both C order. */
void lb__nd_transpose(int ndim, size_t itemsize, const int64_t *src_shape, const int *perm,
                      const void *src, void *dst);

/* Set nbytes bytes (a multiple of itemsize) to copies of `fill`. */
void lb__nd_fill(void *dst, size_t nbytes, const uint8_t *fill, size_t itemsize);

/* 1 if every element of the nbytes bytes equals `fill`. */
int lb__nd_is_fill(const void *data, size_t nbytes, const uint8_t *fill, size_t itemsize);

#endif /* LB_CORE_ND_H */
