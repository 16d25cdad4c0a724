/*
 * png.h — PNG encoding of previews, on libspng: an RGB8 image in memory
 * becomes the bytes of a PNG file (8-bit truecolour, no interlace).
 */
#ifndef LB_PREVIEW_PNG_H
#define LB_PREVIEW_PNG_H

#include "core/util.h"

/* Encode `rgb` (w × h pixels, 3 bytes each, rows top to bottom) into *png
 * (malloc'd; free() it) of *len bytes. LB_ENOMEM or LB_EFORMAT with
 * libspng's words on failure. */
int lb__png_encode(const uint8_t *rgb, uint32_t w, uint32_t h, void **png, size_t *len,
                   lb_error *err);

#endif /* LB_PREVIEW_PNG_H */
