/*
 * color.h — the colours of previews: one stable colour per label id (a
 * multiplicative hash of the id gives a golden-ratio-spaced hue, a second
 * hash the saturation and value), one per group (channel) index, and the
 * integer HSV conversion both use. Pure functions of their arguments.
 */
#ifndef LB_PREVIEW_COLOR_H
#define LB_PREVIEW_COLOR_H

#include <stdint.h>

/* Integer HSV -> RGB: hue in [0, 1536) (six sectors of 256), saturation and
 * value in [0, 255]. */
void lb__hsv_rgb(uint32_t hue, uint32_t sat, uint32_t val, uint8_t rgb[3]);

/* The colour of the label id whose 64-bit pattern (two's complement for
 * negative ids) is `bits`; black for 0. */
void lb__label_color(uint64_t bits, uint8_t rgb[3]);

/* The colour of group (channel) `i`: a golden-ratio-spaced hue at full
 * saturation and value. */
void lb__group_color(uint64_t i, uint8_t rgb[3]);

#endif /* LB_PREVIEW_COLOR_H */
