/*
 * font.h — a tiny bitmap font for the titles and legends of previews:
 * printable ASCII in 5×7 glyphs on a 6-pixel advance. Other characters
 * (UTF-8 sequences included) are drawn as '?', one per code point.
 */
#ifndef LB_PREVIEW_FONT_H
#define LB_PREVIEW_FONT_H

#include <stddef.h>
#include <stdint.h>

#define LB__FONT_W 5       /* glyph width in pixels              */
#define LB__FONT_H 7       /* glyph height in pixels             */
#define LB__FONT_ADVANCE 6 /* pixels from one glyph to the next  */

/* Number of glyphs `text` draws (code points, at most `max` of them). */
size_t lb__font_glyphs(const char *text, size_t max);

/* Draw `text` with its top-left corner at (x, y) into the RGB8 image
 * `img` (width w, height h), in colour rgb: at most `max` glyphs, and only
 * those that end left of x_end. Pixels outside the image are skipped. */
void lb__font_draw(uint8_t *img, int64_t w, int64_t h, int64_t x, int64_t y,
                   const char *text, size_t max, int64_t x_end, const uint8_t rgb[3]);

#endif /* LB_PREVIEW_FONT_H */
