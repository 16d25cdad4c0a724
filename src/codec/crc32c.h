/*
 * crc32c.h — CRC32C (Castagnoli, RFC 3720), as the crc32c codec appends it.
 */
#ifndef LB_CODEC_CRC32C_H
#define LB_CODEC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t lb__crc32c(const void *data, size_t n);

#endif /* LB_CODEC_CRC32C_H */
