/*
 * transpose.c — the "transpose" array→array codec: the encoded chunk's
 * dimension i is the decoded chunk's dimension order[i]. Zarr v2's order "F"
 * is the transpose that reverses every dimension.
 */
#include <stdio.h>

#include "codec/impl.h"
#include "core/nd.h"

void lb__transpose_encoded_shape(const lb__codec *c, const int64_t *decoded, int64_t *encoded) {
    for (int i = 0; i < c->ndim; i++) encoded[i] = decoded[c->order[i]];
}

void lb__transpose_encode(const lb__codec *c, const lb__chunk_repr *decoded, const uint8_t *src,
                          uint8_t *dst) {
    lb__nd_transpose(decoded->ndim, decoded->itemsize, decoded->shape, c->order, src, dst);
}

void lb__transpose_decode(const lb__codec *c, const lb__chunk_repr *decoded, const uint8_t *src,
                          uint8_t *dst) {
    int inv[LB_MAX_DIMS];
    int64_t enc[LB_MAX_DIMS];
    for (int i = 0; i < c->ndim; i++) inv[c->order[i]] = i;
    lb__transpose_encoded_shape(c, decoded->shape, enc);
    lb__nd_transpose(decoded->ndim, decoded->itemsize, enc, inv, src, dst);
}

static void transpose_describe(const lb__codec *c, char *buf, size_t size) {
    size_t len = (size_t)snprintf(buf, size, "transpose(");
    for (int i = 0; i < c->ndim && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%d", i ? "," : "", c->order[i]);
    if (len < size) snprintf(buf + len, size - len, ")");
}

const lb__codec_ops lb__ops_transpose = {
    .name = "transpose",
    .kind = LB__KIND_ARRAY_ARRAY,
    .describe = transpose_describe,
};
