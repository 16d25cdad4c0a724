/*
 * zstd.h — the zstd levels this build can compress with.
 */
#ifndef LB_CODEC_ZSTD_H
#define LB_CODEC_ZSTD_H

#include "core/util.h"

/* LB_EINVAL naming the level and the valid range when zstd cannot compress
 * with `level` (any level decodes). */
int lb__zstd_check_level(int level, lb_error *err);
/* The library's level range. */
int lb__zstd_level_range(int *lo, int *hi);

#endif /* LB_CODEC_ZSTD_H */
