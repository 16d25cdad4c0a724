/*
 * test_preview.c — previews in C (run under the sanitizers too): the colour
 * and font helpers, pixels of every kind of preview against the labels
 * read back, the reads a section makes, PNG files decoded again with
 * libspng, and refusals. The pixel-exact comparison with an independent
 * rendering lives in py_preview.py.
 */
#include <inttypes.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "labelbin.h"
#include "preview/color.h"
#include "preview/font.h"
#include "store/fs.h"
#include "tap.h"

static char tmpdir[256];

/* A 3-D uint64 label dataset (12 x 20 x 30 voxels, chunks 4 x 8 x 8,
 * voxel size (4, 2, 1), offset (40, 20, 10)) whose label at (z, y, x) is
 * label_at(z, y, x); id 5 is present but not annotated. */
static uint64_t label_at(int64_t z, int64_t y, int64_t x) {
    if (x < 3) return 0;
    if ((x + y) % 7 == 0) return 5;
    return (uint64_t)(1 + (z * 31 + y * 3 + x / 4) % 40) + (x > 25 ? (1ull << 63) : 0);
}

static const int64_t SHAPE[3] = {12, 20, 30}, CHUNKS[3] = {4, 8, 8};

static void make_labels(const char *path) {
    lb_create_options o;
    lb_create_options_init(&o);
    o.dtype = LB_DTYPE_UINT64;
    o.codec = "zstd:1";
    o.overwrite = 1;
    o.attrs_json = "{\"resolution\": [4, 2, 1], \"offset\": [40, 20, 10], \"labels\": ["
                   "{\"value\": 3, \"annotationState\": {\"present\": true, \"annotated\": true}},"
                   "{\"value\": 5, \"annotationState\": {\"present\": true, \"annotated\": false}}]}";
    lb_array *a = NULL;
    lb_error e = {0};
    CHECK_INT(lb_dataset_create(path, 3, SHAPE, CHUNKS, &o, &a, &e), 0);
    size_t n = (size_t)(SHAPE[0] * SHAPE[1] * SHAPE[2]);
    uint64_t *buf = malloc(n * 8);
    for (int64_t z = 0, i = 0; z < SHAPE[0]; z++)
        for (int64_t y = 0; y < SHAPE[1]; y++)
            for (int64_t x = 0; x < SHAPE[2]; x++) buf[i++] = label_at(z, y, x);
    lb_roi roi;
    lb_array_roi(a, &roi);
    CHECK_INT(lb_array_write(a, &roi, buf, n * 8, &e), 0);
    free(buf);
    lb_array_free(a);
}

static lb_array *open_ro(const char *path) {
    lb_array *a = NULL;
    lb_error e = {0};
    CHECK_INT(lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &a, &e), 0);
    return a;
}

static uint8_t *render(const lb_array *a, const lb_preview_options *o, lb_preview_info *info) {
    lb_error e = {0};
    int rc = lb_preview_size(a, o, info, &e);
    if (rc) fprintf(stderr, "# size: %s\n", e.message);
    CHECK_INT(rc, 0);
    if (rc) return NULL;
    size_t n = (size_t)info->width * (size_t)info->height * 3;
    uint8_t *img = malloc(n);
    rc = lb_preview_render(a, o, img, n, &e);
    if (rc) fprintf(stderr, "# render: %s\n", e.message);
    CHECK_INT(rc, 0);
    return img;
}

static int same(const uint8_t *a, const uint8_t *b) {
    return a[0] == b[0] && a[1] == b[1] && a[2] == b[2];
}

static void test_colors_and_font(void) {
    uint8_t c[3];
    lb__label_color(0, c);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0);
    lb__group_color(0, c);
    CHECK(c[0] == 255 && c[1] == 0 && c[2] == 0); /* hue 0: red */
    lb__hsv_rgb(512, 255, 255, c);                /* sector 2 start: green */
    CHECK(c[0] == 0 && c[1] == 255 && c[2] == 0);
    lb__hsv_rgb(1024, 0, 200, c);                 /* no saturation: grey */
    CHECK(c[0] == 200 && c[1] == 200 && c[2] == 200);
    uint8_t d[3];
    lb_preview_label_color((lb_id){(uint64_t)-1, 1}, c);
    lb_preview_label_color((lb_id){UINT64_MAX, 0}, d);
    CHECK(same(c, d)); /* -1 and 2^64-1 share a bit pattern */
    CHECK_INT(lb__font_glyphs("mito", 99), 4);
    CHECK_INT(lb__font_glyphs("\xc3\xbc\xe2\x82\xac!", 99), 3); /* ü€! */
    CHECK_INT(lb__font_glyphs("abcdef", 4), 4);
    uint8_t img[12 * 9 * 3];
    memset(img, 0, sizeof img);
    const uint8_t w[3] = {255, 255, 255};
    lb__font_draw(img, 12, 9, 0, 1, "I|", 9, 12, w);
    /* 'I' has its stem in column 2, rows 1..5 of the glyph */
    CHECK(img[((1 + 3) * 12 + 2) * 3] == 255);
    CHECK(img[((1 + 3) * 12 + 0) * 3] == 0);
    /* '|' (second glyph, advance 6) fills column 2 of its cell on every row */
    for (int r = 0; r < 7; r++) CHECK(img[((1 + r) * 12 + 8) * 3] == 255);
    /* clipped: nothing beyond x_end */
    memset(img, 0, sizeof img);
    lb__font_draw(img, 12, 9, 0, 1, "I|", 9, 8, w);
    for (int r = 0; r < 9; r++) CHECK(img[(r * 12 + 8) * 3] == 0);
}

static void test_labels(const char *path) {
    lb_array *a = open_ro(path);
    lb_preview_options o;
    lb_preview_info info;
    lb_preview_options_init(&o);
    lb_io_stats s0, s1;
    lb_array_io_stats(a, &s0);
    uint8_t *img = render(a, &o, &info);
    lb_array_io_stats(a, &s1);
    CHECK_INT(info.width, 30);
    CHECK_INT(info.height, 20);
    CHECK_INT(info.first_at, 40 + 4 * 6);
    CHECK_INT(s1.requests - s0.requests, 3 * 4); /* y: 3 chunk rows, x: 4 columns */
    for (int64_t y = 0; img && y < 20; y++)
        for (int64_t x = 0; x < 30; x++) {
            uint8_t c[3];
            lb__label_color(label_at(6, y, x), c);
            CHECK(same(img + (y * 30 + x) * 3, c));
        }
    free(img);

    /* across x at world 10 + 17, scale 2: rows z, columns y */
    int64_t at = 27;
    o.axis = "x";
    o.at = &at;
    o.scale = 2;
    img = render(a, &o, &info);
    CHECK_INT(info.width, 40);
    CHECK_INT(info.height, 24);
    for (int64_t y = 0; img && y < 24; y++)
        for (int64_t x = 0; x < 40; x++) {
            uint8_t c[3];
            lb__label_color(label_at(y / 2, x / 2, 17), c);
            CHECK(same(img + (y * 40 + x) * 3, c));
        }
    free(img);

    /* shrunk to 10 pixels: every third column, every third row */
    lb_preview_options_init(&o);
    o.max_size = 10;
    lb_array_io_stats(a, &s0);
    img = render(a, &o, &info);
    lb_array_io_stats(a, &s1);
    CHECK_INT(info.width, 10);
    CHECK_INT(info.height, 6);
    for (int64_t y = 0; img && y < 6; y++)
        for (int64_t x = 0; x < 10; x++) {
            uint8_t c[3];
            lb__label_color(label_at(6, y * 20 / 6, x * 3), c);
            CHECK(same(img + (y * 10 + x) * 3, c));
        }
    CHECK_INT(s1.requests - s0.requests, 3 * 4);
    free(img);
    lb_array_free(a);
}

static void test_overlays_mask_grid(const char *path) {
    lb_array *a = open_ro(path);
    lb_groupings *g = NULL;
    lb_error e = {0};
    lb_groupings_new(&g, &e);
    lb_groupings_add_arg(g, "mito=3,4,5", &e);
    lb_groupings_add_arg(g, "cell=", &e);
    lb_preview_options o;
    lb_preview_info info;
    lb_preview_options_init(&o);
    o.groups = g;
    o.mask = 1;
    uint8_t *img = render(a, &o, &info);
    /* the legend: 3 rows of 12 under the 20 rows of the section */
    CHECK_INT(info.height, 20 + 4 + 3 * 12);
    CHECK_INT(info.channels, 2);
    uint8_t red[3], c1[3];
    lb__group_color(0, red);
    lb__group_color(1, c1);
    /* legend swatch of group 1 at x 2..10, row 1 */
    if (img) CHECK(same(img + ((20 + 4 + 12 + 1) * info.width + 2) * 3, c1));
    /* "mito" is off everywhere: the stripes (x + y) % 6 == 0 are drawn in
     * its colour, or group 1's where both are off (label 0, x < 3) */
    for (int64_t y = 0; img && y < 20; y++)
        for (int64_t x = 3; x < 30; x++)
            if ((x + y) % 6 == 0) CHECK(same(img + (y * info.width + x) * 3, red));
    if (img) {
        /* label 0 at (x 1, y 5): both off, (1+5)/6 = 1 -> the second one */
        CHECK(same(img + (5 * info.width + 1) * 3, c1));
        /* off the stripes, label 0 under both channels off: black, dimmed */
        const uint8_t black[3] = {0, 0, 0};
        CHECK(same(img + (5 * info.width + 2) * 3, black));
    }
    free(img);

    o.grid = 1;
    img = render(a, &o, &info);
    CHECK_INT(info.panels, 3);
    CHECK_INT(info.width, 25 + 19 * 6 + 2); /* the legend is wider than 2 panels */
    CHECK_INT(info.height, 2 * (11 + 20) + 4 + 4 + 3 * 12);
    if (img) { /* the labels panel is drawn in full colour */
        uint8_t c[3];
        lb__label_color(label_at(6, 4, 9), c);
        CHECK(same(img + ((11 + 4) * info.width + 9) * 3, c));
    }
    free(img);

    /* a montage of 3 along z: sections 2, 6, 10 */
    lb_preview_options_init(&o);
    o.montage = 3;
    img = render(a, &o, &info);
    CHECK_INT(info.sections, 3);
    CHECK_INT(info.first_at, 40 + 4 * 2);
    CHECK_INT(info.last_at, 40 + 4 * 10);
    if (img) {
        uint8_t c[3];
        lb__label_color(label_at(10, 3, 4), c); /* third panel: row 1, column 0 */
        CHECK(same(img + ((31 + 4 + 11 + 3) * info.width + 4) * 3, c));
    }
    free(img);

    /* a BinarizeArray over the same labels reads them once */
    lb_array *b = NULL, *src = open_ro(path);
    CHECK_INT(lb_binarize_new(src, g, (lb_id){0, 0}, &b, &e), 0);
    lb_preview_options_init(&o);
    lb_io_stats s0, s1;
    lb_array_io_stats(b, &s0);
    img = render(b, &o, &info);
    lb_array_io_stats(b, &s1);
    CHECK_INT(s1.requests - s0.requests, 3 * 4);
    free(img);
    lb_array_free(b);
    lb_groupings_free(g);
    lb_array_free(a);
}

static void test_png_round_trip(const char *path) {
    lb_array *a = open_ro(path);
    lb_preview_options o;
    lb_preview_info info;
    lb_preview_options_init(&o);
    o.scale = 3;
    uint8_t *img = render(a, &o, &info);
    char out[512];
    snprintf(out, sizeof out, "%s/out/slice.png", tmpdir);
    lb_error e = {0};
    CHECK_INT(lb_preview_write_png(a, &o, out, NULL, &e), 0);
    lb__buf file = {0};
    CHECK_INT(lb__fs_read(out, 1 << 24, &file, &e), 0);
    spng_ctx *ctx = spng_ctx_new(0);
    size_t n = 0;
    spng_set_png_buffer(ctx, file.data, file.size);
    CHECK_INT(spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &n), 0);
    CHECK_INT(n, (size_t)info.width * info.height * 3);
    uint8_t *dec = malloc(n);
    CHECK_INT(spng_decode_image(ctx, dec, n, SPNG_FMT_RGB8, 0), 0);
    CHECK(img && memcmp(dec, img, n) == 0);
    spng_ctx_free(ctx);
    free(dec);
    lb__buf_free(&file);
    free(img);

    /* inside the input dataset: refused, nothing written */
    char in[512];
    snprintf(in, sizeof in, "%s/x.png", path);
    CHECK_INT(lb_preview_write_png(a, &o, in, NULL, &e), LB_EOVERLAP);
    CHECK(!lb__fs_exists(in));
    lb_array_free(a);
}

static void test_refusals(const char *path) {
    lb_array *a = open_ro(path);
    lb_preview_options o;
    lb_preview_info info;
    lb_error e = {0};
    int64_t at = 40 + 48;
    lb_preview_options_init(&o);
    o.at = &at;
    CHECK_INT(lb_preview_size(a, &o, &info, &e), LB_EROI);
    CHECK_MSG(e, "position z = 88 lies outside the ROI [40:88, 20:60, 10:40]");
    lb_preview_options_init(&o);
    o.axis = "t";
    CHECK_INT(lb_preview_size(a, &o, &info, &e), LB_EINVAL);
    CHECK_MSG(e, "its spatial axes are z, y, x");
    lb_preview_options_init(&o);
    o.scale = 2000; /* 60000 pixels across */
    CHECK_INT(lb_preview_size(a, &o, &info, &e), LB_ELIMIT);
    lb_preview_options_init(&o);
    o.montage = 13;
    CHECK_INT(lb_preview_size(a, &o, &info, &e), LB_EINVAL);
    lb_preview_options_init(&o);
    o.struct_size = -1;
    CHECK_INT(lb_preview_size(a, &o, &info, &e), LB_EINVAL);
    memset(&o, 0, sizeof o); /* zeroed without init: the defaults */
    CHECK_INT(lb_preview_size(a, &o, &info, &e), 0);
    uint8_t small[9];
    CHECK_INT(lb_preview_render(a, NULL, small, sizeof small, &e), LB_EINVAL);
    CHECK_MSG(e, "needs 1800");
    CHECK_INT(lb_preview_size(NULL, NULL, &info, &e), LB_EINVAL);
    lb_array_free(a);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lb_test_preview.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/crop.zarr/labels", tmpdir);
    make_labels(path);
    test_colors_and_font();
    test_labels(path);
    test_overlays_mask_grid(path);
    test_png_round_trip(path);
    test_refusals(path);
    lb_error e = {0};
    lb__fs_remove_tree(tmpdir, &e);
    return tap_done();
}
