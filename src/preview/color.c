/*
 * color.c — the colour rule of previews (labelbin.h, "Previews"). Integer
 * arithmetic only, so that every platform and every run gives the same
 * bytes, and a test can recompute it exactly.
 */
#include "preview/color.h"

#include "labelbin.h"

/* 2^64 / φ: multiplying by it spreads consecutive integers round the circle
 * by the golden ratio (Fibonacci hashing), so neighbouring ids get hues
 * about 222° apart and no run of ids repeats a hue soon. */
#define GOLDEN 0x9E3779B97F4A7C15ull

void lb__hsv_rgb(uint32_t hue, uint32_t sat, uint32_t val, uint8_t rgb[3]) {
    uint32_t sector = (hue >> 8) % 6, f = hue & 255;
    uint32_t p = val * (255 - sat) / 255;
    uint32_t q = val * (255 - sat * f / 255) / 255;
    uint32_t t = val * (255 - sat * (255 - f) / 255) / 255;
    uint32_t r, g, b;
    switch (sector) {
    case 0: r = val, g = t, b = p; break;
    case 1: r = q, g = val, b = p; break;
    case 2: r = p, g = val, b = t; break;
    case 3: r = p, g = q, b = val; break;
    case 4: r = t, g = p, b = val; break;
    default: r = val, g = p, b = q; break;
    }
    rgb[0] = (uint8_t)r;
    rgb[1] = (uint8_t)g;
    rgb[2] = (uint8_t)b;
}

/* A hue in [0, 1536) from the top 24 bits of bits * 2^64/φ. */
static uint32_t golden_hue(uint64_t bits) {
    uint64_t h = (bits * GOLDEN) >> 40;
    return (uint32_t)((h * 1536) >> 24);
}

/* splitmix64's finaliser: every bit of the id affects every bit. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void lb__label_color(uint64_t bits, uint8_t rgb[3]) {
    if (bits == 0) {
        rgb[0] = rgb[1] = rgb[2] = 0;
        return;
    }
    uint64_t m = mix64(bits);
    /* Saturation 170..255 and value 200..255 vary with a second hash, so
     * ids whose hues happen to lie close still differ. */
    lb__hsv_rgb(golden_hue(bits), 170 + (uint32_t)(m % 86), 200 + (uint32_t)((m >> 8) % 56),
                rgb);
}

void lb__group_color(uint64_t i, uint8_t rgb[3]) {
    lb__hsv_rgb(golden_hue(i), 255, 255, rgb);
}

/* The public face of the rule. */
void lb_preview_label_color(lb_id id, uint8_t rgb[3]) {
    if (rgb) lb__label_color(id.bits, rgb);
}

void lb_preview_group_color(size_t i, uint8_t rgb[3]) {
    if (rgb) lb__group_color((uint64_t)i, rgb);
}
