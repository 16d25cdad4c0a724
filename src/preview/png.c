/*
 * png.c — previews as PNG bytes through libspng (its encoder does the
 * filtering and the deflate stream; nothing of PNG is written by hand).
 */
#include "preview/png.h"

#include <inttypes.h>
#include <spng.h>
#include <stdlib.h>

int lb__png_encode(const uint8_t *rgb, uint32_t w, uint32_t h, void **png, size_t *len,
                   lb_error *err) {
    *png = NULL;
    *len = 0;
    size_t bytes;
    if (lb__mul_size((size_t)w * 3, (size_t)h, &bytes))
        return lb__err(err, LB_ELIMIT, "a %" PRIu32 " x %" PRIu32 " image overflows", w, h);
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (!ctx) return lb__err(err, LB_ENOMEM, "out of memory starting the PNG encoder");
    struct spng_ihdr ihdr = {0};
    ihdr.width = w;
    ihdr.height = h;
    ihdr.bit_depth = 8;
    ihdr.color_type = SPNG_COLOR_TYPE_TRUECOLOR;
    char keyword[] = "Software", text[] = "labelbin " LB_VERSION_STRING;
    struct spng_text t = {0};
    memcpy(t.keyword, keyword, sizeof keyword);
    t.type = SPNG_TEXT;
    t.length = sizeof text - 1;
    t.text = text;
    int rc = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    if (!rc) rc = spng_set_ihdr(ctx, &ihdr);
    if (!rc) rc = spng_set_text(ctx, &t, 1);
    if (!rc) rc = spng_encode_image(ctx, rgb, bytes, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    if (!rc) {
        *png = spng_get_png_buffer(ctx, len, &rc);
        if (!*png && !rc) rc = SPNG_EMEM;
    }
    spng_ctx_free(ctx);
    if (rc) {
        free(*png);
        *png = NULL;
        *len = 0;
        return lb__err(err, rc == SPNG_EMEM ? LB_ENOMEM : LB_EFORMAT,
                       "PNG encoder (libspng): %s", spng_strerror(rc));
    }
    return 0;
}
