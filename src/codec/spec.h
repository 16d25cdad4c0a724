/*
 * spec.h — a codec from its short name.
 */
#ifndef LB_CODEC_SPEC_H
#define LB_CODEC_SPEC_H

#include "codec/codec.h"

/* "none" / "raw" (no compression: LB__CODEC_RAW), "zstd[:LEVEL]",
 * "gzip[:L]", "zlib[:L]", "bz2[:L]", "lz4[:ACCELERATION]",
 * "blosc[-CNAME][:CLEVEL]" (CNAME lz4|lz4hc|zstd|zlib|blosclz, byte
 * shuffle), "lzma[:PRESET]" / "xz". Anything else is LB_EINVAL naming the
 * spec and listing the forms. */
int lb__codec_parse_short(const char *spec, lb__codec *out, lb_error *err);

#endif /* LB_CODEC_SPEC_H */
