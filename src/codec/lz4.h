/*
 * lz4.h — XXH32, with which lz4-java checksums the blocks of N5's lz4
 * stream (exposed for tests).
 */
#ifndef LB_CODEC_LZ4_H
#define LB_CODEC_LZ4_H

#include <stddef.h>
#include <stdint.h>

uint32_t lb__xxh32(const void *data, size_t n, uint32_t seed);

#endif /* LB_CODEC_LZ4_H */
