/*
 * kernels.h — the pure compute kernels: labels -> binary channels
 * (BinarizeArray) and labels -> per-channel mask (MissingAnnotationsMask).
 * No I/O, no allocation on the hot path; cost O(voxels) whatever the number
 * of ids the groups list. Benchmarked and fuzzed on their own.
 */
#ifndef LB_KERNELS_H
#define LB_KERNELS_H

#include "core/util.h"

/* A compiled grouping for one label dtype: every label value maps to a
 * "signature" (the set of channels it switches on). Immutable once built;
 * share it between threads freely. */
typedef struct lb__binplan lb__binplan;

/* Build a plan. `dtype` must be an integer dtype. Ids the dtype cannot hold
 * never match; their number is reported by lb__binplan_unfit. A background
 * the dtype cannot hold means "every label is != background". Duplicated ids
 * and ids listed in several groups are fine (outputs stay 0/1). Works for
 * any number of groups (no 64-group limit). */
int lb__binplan_new(const lb_groupings *g, lb_dtype dtype, lb_id background,
                    lb__binplan **out, lb_error *err);
void lb__binplan_free(lb__binplan *p);
size_t lb__binplan_channels(const lb__binplan *p);
/* How many listed ids (counting duplicates once per group) do not fit. */
size_t lb__binplan_unfit(const lb__binplan *p);
/* The channels label `v` (its bit pattern in the plan's dtype, zero-extended)
 * switches on: (channels + 63) / 64 words of channel bits into out. */
void lb__binplan_channel_set(const lb__binplan *p, uint64_t v, uint64_t *out);

/* Binarize n labels (native byte order, the plan's dtype) into
 * `channels` planes of n bytes each: plane c starts at out + c*plane_stride
 * (plane_stride >= n). Every output byte is written (0 or 1). */
void lb__binarize(const lb__binplan *p, const void *labels, size_t n,
                  uint8_t *out, size_t plane_stride);
/* lb__binarize without the code paths picked by CPU features at run time
 * (AVX2): the same output, for tests and benchmarks of the portable code. */
void lb__binarize_portable(const lb__binplan *p, const void *labels, size_t n,
                           uint8_t *out, size_t plane_stride);

/* Binarize for writers that skip all-zero chunks: the same values as
 * lb__binarize, plus counts[c] += the number of ones in plane c, and planes
 * that are still all zero are not written at all. `out` points at voxel
 * `first` of plane 0; a plane is the voxels [0, first + n) of every call so
 * far, each call continuing where the one before ended (counts start at 0
 * for first == 0). On return, every plane with counts[c] > 0 holds all of
 * [0, first + n); planes with counts[c] == 0 hold anything. The ones are
 * counted from the run lengths pass 1 already finds, so the counts cost
 * nearly nothing. `portable`: as lb__binarize_portable. */
void lb__binarize_sparse(const lb__binplan *p, const void *labels, size_t n,
                         uint8_t *out, size_t first, size_t plane_stride,
                         uint64_t *counts, int portable);

/* Mask: plane c = (label > 0) when enabled[c], else all 0. Signed dtypes
 * compare as signed (negative labels give 0). Every output byte is written. */
void lb__mask(lb_dtype dtype, const void *labels, size_t n,
              const uint8_t *enabled, size_t channels, uint8_t *out,
              size_t plane_stride);

/* Count non-zero bytes in n bytes (for positive-voxel statistics and the
 * all-zero chunk test). */
size_t lb__count_nonzero(const uint8_t *p, size_t n);
/* 1 if all n bytes are zero. */
int lb__all_zero(const void *p, size_t n);

/* DaCapo's numpy rule, voxel by voxel, for tests: out[c][i] = any id of
 * group c equals label i (or label != background for empty groups). */
void lb__binarize_reference(const lb_groupings *g, lb_dtype dtype,
                            lb_id background, const void *labels, size_t n,
                            uint8_t *out, size_t plane_stride);

#endif /* LB_KERNELS_H */
