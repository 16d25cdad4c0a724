/*
 * test_label_cache.c — the label cache: the encoded chunk form (every
 * integer width, ids at the limits, blocks of 1..512 distinct ids, chunk
 * shapes not multiples of 8) against the labels it encodes; reads, binarized
 * and masked reads through a shared cache equal uncached ones byte for byte
 * (edge chunks, several dtypes, other processes); eviction under a tiny
 * budget; a damaged cache file or entry is detected and rebuilt; a process
 * killed mid-fill or inside the lock leaves the cache usable.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "array/array.h"
#include "dataset/dataset.h"
#include "dataset/label_cache.h"
#include "kernels/cseg.h"
#include "labelbin.h"
#include "tap.h"

static char tmpdir[256];
static char cname[64]; /* this run's cache name */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const lb_dtype dtypes[] = {LB_DTYPE_UINT8, LB_DTYPE_INT8,   LB_DTYPE_UINT16,
                                  LB_DTYPE_INT16, LB_DTYPE_UINT32, LB_DTYPE_INT32,
                                  LB_DTYPE_UINT64, LB_DTYPE_INT64};

/* Interesting bit patterns of a width: 0, 1, the limits of both
 * signednesses (2^64 - 1 for 8 bytes). */
static uint64_t special(size_t w, unsigned k) {
    uint64_t all = w == 8 ? UINT64_MAX : (((uint64_t)1 << (8 * w)) - 1);
    uint64_t top = (uint64_t)1 << (8 * w - 1);
    uint64_t v[] = {0, 1, all, top, top - 1, all - 1, 2, top + 1};
    return v[k % 8];
}

static void put_label(void *buf, size_t i, uint64_t v, size_t w) {
    memcpy((unsigned char *)buf + i * w, &v, w); /* little-endian */
}

static uint64_t get_label(const void *buf, size_t i, size_t w) {
    uint64_t v = 0;
    memcpy(&v, (const unsigned char *)buf + i * w, w);
    return v;
}

/* A chunk whose 8^3 blocks hold `k` distinct ids each (as far as the
 * width and the block's size allow), from a pool that includes the
 * width's limits. */
static void fill_chunk(void *buf, const int64_t *d, size_t w, unsigned k) {
    size_t n = (size_t)(d[0] * d[1] * d[2]);
    uint64_t mask = w == 8 ? UINT64_MAX : (((uint64_t)1 << (8 * w)) - 1);
    for (size_t i = 0; i < n; i++) {
        size_t z = i / (size_t)(d[1] * d[2]), y = i / (size_t)d[2] % (size_t)d[1],
               x = i % (size_t)d[2];
        size_t inblock = (z % 8) * 64 + (y % 8) * 8 + x % 8;
        size_t blk = (z / 8) * 1000 + (y / 8) * 100 + x / 8;
        unsigned j = (unsigned)((inblock * 7 + (rnd() % 3 == 0 ? rnd() : 0)) % k);
        uint64_t v = j < 8 ? special(w, j + (unsigned)blk) : ((uint64_t)j * 0x10001 + blk) & mask;
        put_label(buf, i, v, w);
    }
}

static void check_cseg_case(size_t w, const int64_t *d, unsigned k) {
    size_t n = (size_t)(d[0] * d[1] * d[2]);
    void *chunk = malloc(n * w), *back = malloc(n * w);
    size_t bound = lb__cseg_bound(d, w);
    void *enc = malloc(bound);
    fill_chunk(chunk, d, w, k);
    size_t size = lb__cseg_encode(chunk, d, w, enc);
    CHECK(size > 0 && size <= bound);
    CHECK(lb__cseg_valid(enc, size, d, w));
    /* The whole chunk back. */
    lb__cseg_box b;
    for (int i = 0; i < 3; i++) {
        b.cstart[i] = b.dstart[i] = 0;
        b.cnt[i] = b.dshape[i] = d[i];
    }
    memset(back, 0x5A, n * w);
    lb__cseg_decode_box(enc, &b, back);
    CHECK(memcmp(chunk, back, n * w) == 0);
    /* Random boxes into a bigger destination, and their channels: channel
     * c is on for ids whose low bits are c mod 3 (c < 5), and for the
     * width's maximum (c == 4). */
    for (int t = 0; t < 6; t++) {
        int64_t ds[3], dst0[3];
        for (int i = 0; i < 3; i++) {
            b.cstart[i] = (int64_t)(rnd() % (uint64_t)d[i]);
            b.cnt[i] = 1 + (int64_t)(rnd() % (uint64_t)(d[i] - b.cstart[i]));
            dst0[i] = (int64_t)(rnd() % 3);
            ds[i] = b.cnt[i] + dst0[i] + 1;
            b.dshape[i] = ds[i];
            b.dstart[i] = dst0[i];
        }
        size_t dn = (size_t)(ds[0] * ds[1] * ds[2]);
        unsigned char *out = malloc(dn * w);
        memset(out, 0x77, dn * w);
        lb__cseg_decode_box(enc, &b, out);
        int ok = 1;
        for (int64_t z = 0; z < b.cnt[0]; z++)
            for (int64_t y = 0; y < b.cnt[1]; y++)
                for (int64_t x = 0; x < b.cnt[2]; x++) {
                    size_t ci = (size_t)(((b.cstart[0] + z) * d[1] + b.cstart[1] + y) * d[2] +
                                         b.cstart[2] + x);
                    size_t di = (size_t)(((dst0[0] + z) * ds[1] + dst0[1] + y) * ds[2] +
                                         dst0[2] + x);
                    if (get_label(chunk, ci, w) != get_label(out, di, w)) ok = 0;
                }
        CHECK(ok);
        free(out);
    }
    free(chunk);
    free(back);
    free(enc);
}

static size_t chan_w;
static void chan_fn(void *user, uint64_t id, uint64_t *bits) {
    (void)user;
    uint64_t all = chan_w == 8 ? UINT64_MAX : (((uint64_t)1 << (8 * chan_w)) - 1);
    for (unsigned c = 0; c < 4; c++)
        if (id % 3 == c % 3) bits[0] |= (uint64_t)1 << c;
    if (id == all) bits[0] |= 16;
}

/* Channel c of *(unsigned *)user channels is on where id % 7 == c % 7. */
static void mod7_fn(void *user, uint64_t id, uint64_t *bits) {
    unsigned channels = *(const unsigned *)user;
    for (unsigned c = 0; c < channels; c++)
        if (id % 7 == c % 7) bits[c / 64] |= (uint64_t)1 << (c % 64);
}

static void check_channels_case(size_t w, const int64_t *d, unsigned k) {
    size_t n = (size_t)(d[0] * d[1] * d[2]);
    void *chunk = malloc(n * w);
    void *enc = malloc(lb__cseg_bound(d, w));
    fill_chunk(chunk, d, w, k);
    size_t size = lb__cseg_encode(chunk, d, w, enc);
    CHECK(size > 0);
    /* Every byte of the encoding is set (gaps included): the same chunk
     * encoded into a buffer of other leftovers gives the same bytes. */
    void *enc2 = malloc(lb__cseg_bound(d, w));
    memset(enc2, 0xA5, lb__cseg_bound(d, w));
    CHECK_INT(lb__cseg_encode(chunk, d, w, enc2), size);
    CHECK(memcmp(enc, enc2, size) == 0);
    free(enc2);
    lb__cseg_box b;
    for (int i = 0; i < 3; i++) {
        b.cstart[i] = (int64_t)(rnd() % (uint64_t)d[i]);
        b.cnt[i] = d[i] - b.cstart[i];
        b.dstart[i] = 0;
        b.dshape[i] = b.cnt[i];
    }
    size_t bn = (size_t)(b.cnt[0] * b.cnt[1] * b.cnt[2]);
    uint8_t *out = malloc(5 * bn);
    memset(out, 7, 5 * bn);
    chan_w = w;
    CHECK_INT(lb__cseg_channels_box(enc, &b, 5, chan_fn, NULL, out, bn), 0);
    int ok = 1;
    size_t i = 0;
    for (int64_t z = 0; z < b.cnt[0]; z++)
        for (int64_t y = 0; y < b.cnt[1]; y++)
            for (int64_t x = 0; x < b.cnt[2]; x++, i++) {
                size_t ci = (size_t)(((b.cstart[0] + z) * d[1] + b.cstart[1] + y) * d[2] +
                                     b.cstart[2] + x);
                uint64_t bits = 0;
                chan_fn(NULL, get_label(chunk, ci, w), &bits);
                for (unsigned c = 0; c < 5; c++)
                    if (out[c * bn + i] != ((bits >> c) & 1)) ok = 0;
            }
    CHECK(ok);
    /* More than 64 channels: the block-by-block path. */
    uint8_t *wide = malloc(70 * bn);
    memset(wide, 7, 70 * bn);
    unsigned n70 = 70;
    CHECK_INT(lb__cseg_channels_box(enc, &b, 70, mod7_fn, &n70, wide, bn), 0);
    ok = 1;
    i = 0;
    for (int64_t z = 0; z < b.cnt[0]; z++)
        for (int64_t y = 0; y < b.cnt[1]; y++)
            for (int64_t x = 0; x < b.cnt[2]; x++, i++) {
                size_t ci = (size_t)(((b.cstart[0] + z) * d[1] + b.cstart[1] + y) * d[2] +
                                     b.cstart[2] + x);
                uint64_t id = get_label(chunk, ci, w);
                for (unsigned c = 0; c < 70; c++)
                    if (wide[c * bn + i] != (id % 7 == c % 7)) ok = 0;
            }
    CHECK(ok);
    /* 16 and 20 channels (two and three words of 8 per voxel), the box
     * inside a larger destination: rows do not follow each other, and
     * nothing outside the box is written. */
    lb__cseg_box bb = b;
    static const int64_t pad[3] = {2, 3, 11};
    for (int a = 0; a < 3; a++) {
        bb.dshape[a] = b.cnt[a] + pad[a];
        bb.dstart[a] = pad[a] / 2 + (a == 2);
    }
    size_t dn = (size_t)(bb.dshape[0] * bb.dshape[1] * bb.dshape[2]);
    uint8_t *big = malloc(20 * dn);
    for (unsigned nch = 16; nch <= 20; nch += 4) {
        memset(big, 7, 20 * dn);
        CHECK_INT(lb__cseg_channels_box(enc, &bb, nch, mod7_fn, &nch, big, dn), 0);
        ok = 1;
        i = 0;
        for (int64_t z = 0; z < bb.dshape[0]; z++)
            for (int64_t y = 0; y < bb.dshape[1]; y++)
                for (int64_t x = 0; x < bb.dshape[2]; x++, i++) {
                    int64_t q[3] = {z - bb.dstart[0], y - bb.dstart[1], x - bb.dstart[2]};
                    int inside = 1;
                    for (int a = 0; a < 3; a++)
                        if (q[a] < 0 || q[a] >= b.cnt[a]) inside = 0;
                    uint64_t id = 0;
                    if (inside)
                        id = get_label(chunk,
                                       (size_t)(((b.cstart[0] + q[0]) * d[1] + b.cstart[1] +
                                                 q[1]) * d[2] + b.cstart[2] + q[2]),
                                       w);
                    for (unsigned c = 0; c < 20; c++) {
                        uint8_t want = c >= nch ? 7 : inside ? (uint8_t)(id % 7 == c % 7) : 7;
                        if (big[c * dn + i] != want) ok = 0;
                    }
                }
        CHECK(ok);
    }
    free(big);
    free(wide);
    free(out);
    free(chunk);
    free(enc);
}

static void test_cseg(void) {
    static const int64_t shapes[][3] = {{8, 8, 8},  {16, 16, 16}, {13, 9, 20},
                                        {1, 5, 7},  {3, 1, 30},   {17, 8, 9}};
    static const unsigned ks[] = {1, 2, 3, 17, 300, 512};
    static const size_t widths[] = {1, 2, 4, 8};
    for (size_t wi = 0; wi < 4; wi++)
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
            for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
                check_cseg_case(widths[wi], shapes[si], ks[ki]);
                check_channels_case(widths[wi], shapes[si], ks[ki]);
            }
    /* A block of 512 distinct 64-bit ids, 300 ids, and exact bit widths. */
    int64_t d[3] = {8, 8, 8};
    uint64_t chunk[512];
    for (unsigned k = 1; k <= 512; k = k < 4 ? k + 1 : k * 2 + 1) {
        for (unsigned i = 0; i < 512; i++) chunk[i] = UINT64_MAX - (i % k);
        unsigned char enc[16384];
        CHECK(lb__cseg_bound(d, 8) <= sizeof enc);
        size_t size = lb__cseg_encode(chunk, d, 8, enc);
        uint64_t back[512];
        lb__cseg_box b = {{0, 0, 0}, {8, 8, 8}, {8, 8, 8}, {0, 0, 0}};
        lb__cseg_decode_box(enc, &b, back);
        CHECK(memcmp(chunk, back, sizeof chunk) == 0);
        CHECK(size < 8 * 512 || k > 256);
    }
    /* One value everywhere: the header and one id. */
    for (unsigned i = 0; i < 512; i++) chunk[i] = UINT64_MAX;
    unsigned char enc[16384];
    size_t size = lb__cseg_encode(chunk, d, 8, enc);
    CHECK(size <= 128);
    CHECK(lb__cseg_valid(enc, size, d, 8));
    /* Damage is refused. */
    size = lb__cseg_encode((uint64_t[512]){0}, d, 8, enc);
    CHECK(!lb__cseg_valid(enc, size - 8, d, 8));
    int64_t other[3] = {8, 8, 9};
    CHECK(!lb__cseg_valid(enc, size, other, 8));
    /* Past a byte a voxel the encoder declines when asked to; the cache's
     * note of a declined chunk is never taken for an encoding. */
    for (unsigned i = 0; i < 512; i++) chunk[i] = rnd();
    CHECK(lb__cseg_encode_limit(chunk, d, 8, enc, 1) == LB__CSEG_DECLINED);
    CHECK(lb__cseg_encode_limit(chunk, d, 8, enc, 0) > 8 * 512);
    for (unsigned i = 0; i < 512; i++) chunk[i] = UINT64_MAX - i % 16;
    size = lb__cseg_encode_limit(chunk, d, 8, enc, 1);
    CHECK(size != LB__CSEG_DECLINED && size == lb__cseg_encode(chunk, d, 8, enc));
    lb__cseg_hdr note;
    size = lb__cseg_encode_declined(d, 8, &note);
    CHECK(size == sizeof note);
    CHECK(lb__cseg_is_declined(&note, size, d, 8));
    CHECK(!lb__cseg_is_declined(&note, size, other, 8));
    CHECK(!lb__cseg_is_declined(enc, lb__cseg_encode(chunk, d, 8, enc), d, 8));
    CHECK(!lb__cseg_valid(&note, size, d, 8));
}

/* ---- arrays through the cache ------------------------------------------ */

/* Stamps take file times: a change must fall in another tick. */
static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static lb_array *create(const char *rel, lb_dtype dt, const int64_t *shape, const int64_t *chunks,
                        const char *codec, void **labels_out) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    lb_create_options o;
    lb_create_options_init(&o);
    o.dtype = dt;
    o.codec = codec;
    o.overwrite = 1;
    o.attrs_json = "{\"labels\": [{\"value\": 1, \"annotationState\": {\"present\": true, "
                   "\"annotated\": true}}]}";
    lb_array *a = NULL;
    lb_error e = {0};
    int rc = lb_dataset_create(p, 3, shape, chunks, &o, &a, &e);
    if (rc) fprintf(stderr, "# create %s: %s\n", p, e.message);
    CHECK_INT(rc, 0);
    size_t w = lb_dtype_size(dt), n = (size_t)(shape[0] * shape[1] * shape[2]);
    void *labels = malloc(n * w);
    /* Organelle-like regions of ids plus noise and the dtype's limits. */
    for (size_t i = 0; i < n; i++) {
        size_t z = i / (size_t)(shape[1] * shape[2]), y = i / (size_t)shape[2] % (size_t)shape[1],
               x = i % (size_t)shape[2];
        uint64_t v = ((z / 5) + (y / 7) * 3 + (x / 6) * 2) % 6;
        if (rnd() % 50 == 0) v = rnd() % 40;
        if (v >= 4) v = special(w, (unsigned)v);
        put_label(labels, i, v, w);
    }
    int64_t start[3] = {0, 0, 0};
    rc = lb_array_data_write(a, start, shape, labels, n * w, &e);
    if (rc) fprintf(stderr, "# write: %s\n", e.message);
    CHECK_INT(rc, 0);
    lb_array_free(a);
    a = NULL;
    rc = lb_array_open(p, 0, NULL, 0, &a, &e);
    CHECK_INT(rc, 0);
    if (labels_out) *labels_out = labels;
    else free(labels);
    return a;
}

static lb_array *open_rel(const char *rel) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    lb_array *a = NULL;
    lb_error e = {0};
    int rc = lb_array_open(p, 0, NULL, 0, &a, &e);
    if (rc) fprintf(stderr, "# open %s: %s\n", p, e.message);
    CHECK_INT(rc, 0);
    return a;
}

static lb_groupings *groups(void) {
    lb_groupings *g = NULL;
    lb_error e = {0};
    CHECK_INT(lb_groupings_new(&g, &e), 0);
    CHECK_INT(lb_groupings_add_arg(g, "a=1", &e), 0);
    CHECK_INT(lb_groupings_add_arg(g, "b=2,3", &e), 0);
    CHECK_INT(lb_groupings_add_arg(g, "lim=255,127,65535,32767,4294967295,2147483647,"
                                      "18446744073709551615,9223372036854775807", &e), 0);
    CHECK_INT(lb_groupings_add_arg(g, "any=", &e), 0);
    return g;
}

/* Read `roi` of a and b and compare the bytes. */
static int same_read(const lb_array *a, const lb_array *b, const lb_roi *roi) {
    size_t n = lb_array_read_size(a, roi);
    if (n != lb_array_read_size(b, roi) || n == 0) return 0;
    unsigned char *x = malloc(n), *y = malloc(n);
    memset(x, 0x11, n);
    memset(y, 0x22, n);
    lb_error e = {0};
    int r1 = lb_array_read(a, roi, x, n, &e);
    if (r1) fprintf(stderr, "# read: %s\n", e.message);
    int r2 = lb_array_read(b, roi, y, n, &e);
    if (r2) fprintf(stderr, "# read: %s\n", e.message);
    int ok = !r1 && !r2 && memcmp(x, y, n) == 0;
    free(x);
    free(y);
    return ok;
}

static void random_roi(const int64_t *shape, lb_roi *roi) {
    roi->ndim = 3;
    for (int k = 0; k < 3; k++) {
        roi->offset[k] = (int64_t)(rnd() % (uint64_t)shape[k]);
        roi->shape[k] = 1 + (int64_t)(rnd() % (uint64_t)(shape[k] - roi->offset[k]));
    }
}

/* Plain, binarized and masked arrays over a dataset, uncached and cached. */
typedef struct trio {
    lb_array *raw, *bin, *mask;
} trio;

static void trio_open(const char *rel, trio *t, const char *cache, size_t bytes) {
    lb_error e = {0};
    lb_groupings *g = groups();
    t->raw = open_rel(rel);
    lb_array *s1 = open_rel(rel), *s2 = open_rel(rel);
    if (cache) {
        CHECK_INT(lb_array_set_label_cache(t->raw, cache, bytes, &e), 0);
        CHECK_INT(lb_array_set_label_cache(s1, cache, bytes, &e), 0);
        CHECK_INT(lb_array_set_label_cache(s2, cache, bytes, &e), 0);
    }
    lb_id bg = {0, 0};
    CHECK_INT(lb_binarize_new(s1, g, bg, &t->bin, &e), 0);
    CHECK_INT(lb_mask_new(s2, g, &t->mask, &e), 0);
    lb_groupings_free(g);
}

static void trio_free(trio *t) {
    lb_array_free(t->raw);
    lb_array_free(t->bin);
    lb_array_free(t->mask);
}

static int trio_same(const trio *u, const trio *c, const int64_t *shape, int rois) {
    int ok = 1;
    for (int i = 0; i < rois; i++) {
        lb_roi roi;
        random_roi(shape, &roi);
        ok &= same_read(u->raw, c->raw, &roi);
        ok &= same_read(u->bin, c->bin, &roi);
        ok &= same_read(u->mask, c->mask, &roi);
    }
    lb_roi all = {3, {0, 0, 0}, {shape[0], shape[1], shape[2]}};
    ok &= same_read(u->raw, c->raw, &all);
    ok &= same_read(u->bin, c->bin, &all);
    ok &= same_read(u->mask, c->mask, &all);
    return ok;
}

static void test_arrays_equal(void) {
    const int64_t shape[3] = {29, 37, 23}, chunks[3] = {10, 12, 9}; /* edges, not multiples of 8 */
    lb_error e = {0};
    for (size_t di = 0; di < sizeof dtypes / sizeof *dtypes; di++) {
        char rel[64];
        snprintf(rel, sizeof rel, "c.zarr/%s", lb_dtype_name(dtypes[di]));
        lb_array *a = create(rel, dtypes[di], shape, chunks, di % 2 ? "zstd:1" : NULL, NULL);
        lb_array_free(a);
        trio u, c;
        trio_open(rel, &u, NULL, 0);
        trio_open(rel, &c, cname, (size_t)8 << 20);
        CHECK(trio_same(&u, &c, shape, 12)); /* first pass: misses, filled */
        lb_cache_info before;
        CHECK_INT(lb_array_cache_info(c.raw, &before, &e), 0);
        CHECK_INT(before.kind, 2);
        CHECK(before.entries > 0);
        if (lb_dtype_size(dtypes[di]) >= 4) CHECK(before.raw_bytes > before.bytes);
        CHECK(trio_same(&u, &c, shape, 12)); /* second pass: hits */
        /* Read threads: each takes slabs of rows that cut through chunks. */
        for (int th = 2; th <= 3; th++) {
            CHECK_INT(lb_array_set_threads(c.bin, th, &e), 0);
            CHECK_INT(lb_array_set_threads(c.mask, th, &e), 0);
            CHECK(trio_same(&u, &c, shape, 6));
            int ok = 1; /* every start row against the chunks' rows */
            for (int64_t o = 0; o < chunks[0]; o++) {
                lb_roi r = {3, {o, 1, 0}, {shape[0] - o, shape[1] - 1, shape[2]}};
                ok &= same_read(u.bin, c.bin, &r) && same_read(u.mask, c.mask, &r);
            }
            CHECK(ok);
        }
        CHECK_INT(lb_array_set_threads(c.bin, 1, &e), 0);
        CHECK_INT(lb_array_set_threads(c.mask, 1, &e), 0);
        /* The mask's unlisted ids (from the blocks' tables) as uncached. */
        lb_id ua[LB_MASK_UNLISTED_MAX], ca[LB_MASK_UNLISTED_MAX];
        size_t nu = lb_mask_unlisted_ids(u.mask, ua, LB_MASK_UNLISTED_MAX);
        size_t nc = lb_mask_unlisted_ids(c.mask, ca, LB_MASK_UNLISTED_MAX);
        CHECK_INT(nc, nu);
        CHECK(nu > 0);
        for (size_t k = 0; k < nu && k < nc; k++) CHECK(ua[k].bits == ca[k].bits);
        lb_cache_info after;
        CHECK_INT(lb_array_cache_info(c.raw, &after, &e), 0);
        CHECK(after.process_hits > before.process_hits);
        /* Reads that touch only cached chunks are all hits. */
        lb_roi all = {3, {0, 0, 0}, {shape[0], shape[1], shape[2]}};
        CHECK_INT(lb_array_warm(c.raw, &all, 2, &e), 0);
        CHECK_INT(lb_array_cache_info(c.raw, &before, &e), 0);
        CHECK(same_read(u.raw, c.raw, &all));
        CHECK_INT(lb_array_cache_info(c.raw, &after, &e), 0);
        CHECK_INT(after.process_misses, before.process_misses);
        trio_free(&u);
        trio_free(&c);
    }
    /* Writes through a cached array drop the chunks they replace. */
    lb_array *w = create("c.zarr/rewrite", LB_DTYPE_UINT16, shape, chunks, NULL, NULL);
    lb_array_free(w);
    char p[512];
    snprintf(p, sizeof p, "%s/c.zarr/rewrite", tmpdir);
    CHECK_INT(lb_array_open(p, LB_OPEN_WRITE, NULL, 0, &w, &e), 0);
    CHECK_INT(lb_array_set_label_cache(w, cname, (size_t)8 << 20, &e), 0);
    lb_roi all = {3, {0, 0, 0}, {shape[0], shape[1], shape[2]}};
    CHECK_INT(lb_array_warm(w, NULL, 1, &e), 0);
    uint16_t box[2 * 2 * 2] = {9, 9, 9, 9, 9, 9, 9, 9};
    int64_t st[3] = {10, 12, 9}, cnt[3] = {2, 2, 2};
    CHECK_INT(lb_array_data_write(w, st, cnt, box, sizeof box, &e), 0);
    lb_array *fresh = open_rel("c.zarr/rewrite");
    CHECK(same_read(fresh, w, &all));
    lb_array_free(fresh);
    lb_array_free(w);
}

/* A cache of the minimum size over a volume whose encoded chunks are about
 * twice that (~0.75 byte a voxel): evictions, and reads still exact. */
static void test_eviction(void) {
    const int64_t shape[3] = {128, 128, 192}, chunks[3] = {32, 32, 32};
    char rel[] = "c.zarr/noisy";
    void *labels = NULL;
    lb_array *a = create(rel, LB_DTYPE_UINT64, shape, chunks, NULL, &labels);
    /* Noise of 16 large ids: entries are large (4-bit indices) but still
     * admitted (noise of distinct ids is declined, not cached). */
    size_t n = (size_t)(shape[0] * shape[1] * shape[2]);
    for (size_t i = 0; i < n; i++) put_label(labels, i, UINT64_MAX - rnd() % 16, 8);
    lb_array_free(a);
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    lb_error e = {0};
    CHECK_INT(lb_array_open(p, LB_OPEN_WRITE, NULL, 0, &a, &e), 0);
    int64_t start[3] = {0, 0, 0};
    CHECK_INT(lb_array_data_write(a, start, shape, labels, n * 8, &e), 0);
    lb_array_free(a);
    free(labels);
    char tiny[80];
    snprintf(tiny, sizeof tiny, "%s-tiny", cname);
    trio u, c;
    int resets = lb__lcache_test_resets;
    trio_open(rel, &u, NULL, 0);
    trio_open(rel, &c, tiny, LB__LCACHE_MIN_BYTES);
    CHECK(trio_same(&u, &c, shape, 6));
    CHECK(trio_same(&u, &c, shape, 6));
    lb_cache_info info;
    CHECK_INT(lb_array_cache_info(c.raw, &info, &e), 0);
    CHECK(info.evictions > 0);
    CHECK(info.bytes <= info.capacity);
    trio_free(&u);
    trio_free(&c);
    CHECK_INT(lb_cache_remove(tiny, &e), 0);

    /* Small entries until the index is as full as it may be, then the
     * ring lapping many times, with records of every size that leave the
     * end of the ring unused (short of a record header, or marked): the
     * index is never reset (its consistency checks hold), and the newest
     * entry always hits. */
    lb__lcache *lc = NULL;
    CHECK_INT(lb__lcache_open(tiny, LB__LCACHE_MIN_BYTES, &lc, &e), 0);
    static unsigned char data[40000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 7 + 1);
    lb__buf buf = {NULL, 0, 0};
    int ok = 1;
    for (uint64_t k = 0; k < 6000; k++) {
        size_t len = 1 + (size_t)(rnd() % (k < 3000 ? 100 : k % 5 == 0 ? 40000 : 300));
        lb__lcache_put(lc, 9, k, 7, data, len, 8 * len);
        buf.size = 0;
        if (lb__lcache_get(lc, 9, k, 7, &buf) != 1 || buf.size != len ||
            memcmp(buf.data, data, len))
            ok = 0;
    }
    CHECK(ok);
    lb__lcache_stats st;
    lb__lcache_get_stats(lc, &st);
    CHECK(st.evictions > 1000);
    CHECK_INT(lb__lcache_test_resets, resets);
    lb__buf_free(&buf);
    lb__lcache_close(lc);
    CHECK_INT(lb_cache_remove(tiny, &e), 0);
}

/* Chunks of noise (declined by the cache: they do not compress) next to
 * chunks that compress, edge chunks not multiples of the block size: every
 * ROI mixes both, and reads equal the uncached ones in the first pass
 * (declined chunks decoded once, encoded ones expanded beside them) and the
 * second (the cache's notes of declined chunks). */
static void test_declined(void) {
    const int64_t shape[3] = {40, 44, 52}, chunks[3] = {16, 16, 20};
    const lb_dtype dts[] = {LB_DTYPE_UINT64, LB_DTYPE_UINT16};
    lb_error e = {0};
    for (size_t di = 0; di < 2; di++) {
        char rel[64];
        snprintf(rel, sizeof rel, "c.zarr/declined%zu", di);
        void *labels = NULL;
        lb_array *a = create(rel, dts[di], shape, chunks, di ? "zstd:1" : NULL, &labels);
        lb_array_free(a);
        size_t w = lb_dtype_size(dts[di]), n = (size_t)(shape[0] * shape[1] * shape[2]);
        for (size_t i = 0; i < n; i++) {
            size_t z = i / (size_t)(shape[1] * shape[2]),
                   y = i / (size_t)shape[2] % (size_t)shape[1], x = i % (size_t)shape[2];
            if ((z / 16 + y / 16 + x / 20) % 2)
                put_label(labels, i, rnd() % 4 ? rnd() : rnd() % 4, w);
        }
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
        CHECK_INT(lb_array_open(p, LB_OPEN_WRITE, NULL, 0, &a, &e), 0);
        int64_t start[3] = {0, 0, 0};
        CHECK_INT(lb_array_data_write(a, start, shape, labels, n * w, &e), 0);
        lb_array_free(a);
        free(labels);
        char name[80];
        snprintf(name, sizeof name, "%s-declined%zu", cname, di);
        trio u, c;
        trio_open(rel, &u, NULL, 0);
        trio_open(rel, &c, name, (size_t)8 << 20);
        CHECK(trio_same(&u, &c, shape, 12)); /* first pass */
        CHECK(trio_same(&u, &c, shape, 12)); /* second: hits and notes */
        /* ROIs too large to assemble their labels: a ROI meeting a
         * declined chunk is read again without the cache, the chunk
         * declined before (the notes above) or now (a fresh cache). */
        size_t max = lb__raw_region_max_bytes;
        lb__raw_region_max_bytes = 64;
        CHECK(trio_same(&u, &c, shape, 12));
        trio g;
        char fresh[96];
        snprintf(fresh, sizeof fresh, "%s-giveup", name);
        trio_open(rel, &g, fresh, (size_t)8 << 20);
        lb_roi whole = {3, {0, 0, 0}, {shape[0], shape[1], shape[2]}};
        CHECK(same_read(u.bin, g.bin, &whole)); /* binarized first: declined now */
        CHECK(trio_same(&u, &g, shape, 12));
        CHECK(trio_same(&u, &g, shape, 12));
        lb__raw_region_max_bytes = max;
        trio_free(&g);
        CHECK_INT(lb_cache_remove(fresh, &e), 0);
        lb_cache_info info;
        CHECK_INT(lb_array_cache_info(c.raw, &info, &e), 0);
        CHECK(info.entries > 0);
        CHECK(info.bytes < info.raw_bytes / 2); /* no noise kept */
        CHECK(info.declined > 0 && info.declined < info.entries); /* the noise chunks */
        trio_free(&u);
        trio_free(&c);
        CHECK_INT(lb_cache_remove(name, &e), 0);
    }
    /* One chunk of noise read twice: two misses (the second finds the
     * note and decodes), nothing kept but the note. */
    const int64_t one[3] = {16, 16, 16};
    void *labels = NULL;
    lb_array *a = create("c.zarr/noise", LB_DTYPE_UINT64, one, one, NULL, &labels);
    lb_array_free(a);
    for (size_t i = 0; i < 4096; i++) put_label(labels, i, rnd(), 8);
    char p[512], name[80];
    snprintf(p, sizeof p, "%s/c.zarr/noise", tmpdir);
    CHECK_INT(lb_array_open(p, LB_OPEN_WRITE, NULL, 0, &a, &e), 0);
    int64_t start[3] = {0, 0, 0};
    CHECK_INT(lb_array_data_write(a, start, one, labels, 4096 * 8, &e), 0);
    lb_array_free(a);
    snprintf(name, sizeof name, "%s-noise", cname);
    a = open_rel("c.zarr/noise");
    CHECK_INT(lb_array_set_label_cache(a, name, (size_t)8 << 20, &e), 0);
    lb_roi all = {3, {0, 0, 0}, {16, 16, 16}};
    uint64_t *back = malloc(4096 * 8);
    for (int pass = 0; pass < 2; pass++) {
        CHECK_INT(lb_array_read(a, &all, back, 4096 * 8, &e), 0);
        CHECK(memcmp(back, labels, 4096 * 8) == 0);
    }
    lb_cache_info info;
    CHECK_INT(lb_array_cache_info(a, &info, &e), 0);
    CHECK_INT(info.process_hits, 0);
    CHECK_INT(info.process_misses, 2);
    CHECK_INT(info.hits, 0);
    CHECK_INT(info.entries, 1);
    CHECK_INT(info.declined, 1);
    CHECK_INT(info.raw_bytes, 0);
    CHECK(info.bytes < 256);
    free(back);
    free(labels);
    lb_array_free(a);
    CHECK_INT(lb_cache_remove(name, &e), 0);
}

/* Map cache `name`'s file as another process writing it would: its bytes,
 * *size of them (unmap with munmap). */
static unsigned char *map_cache_file(const char *name, size_t *size) {
    char path[256];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    struct stat st;
    CHECK_INT(fstat(fd, &st), 0);
    *size = (size_t)st.st_size;
    unsigned char *m = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    close(fd);
    return m;
}

/* Damage: entries' bytes (checksums catch them: misses, refilled) and the
 * header (the file is replaced when next opened). */
static void test_corruption(void) {
    const int64_t shape[3] = {29, 37, 23};
    const char *rel = "c.zarr/uint32";
    char name[80];
    snprintf(name, sizeof name, "%s-damage", cname);
    lb_error e = {0};
    trio u, c;
    trio_open(rel, &u, NULL, 0);
    trio_open(rel, &c, name, (size_t)4 << 20);
    CHECK_INT(lb_array_warm(c.raw, NULL, 1, &e), 0);
    lb_cache_info info;
    CHECK_INT(lb_array_cache_info(c.raw, &info, &e), 0);
    CHECK(info.entries > 0);
    /* Flip bytes all over the ring (past the header and index). */
    size_t size;
    unsigned char *m = map_cache_file(name, &size);
    size_t ring = size / 2; /* well inside the ring */
    for (size_t i = 0; i < 200000 && ring + i < size; i += 37) m[ring + i] ^= 0x5A;
    for (size_t i = 4096 * 8; i < ring; i += 4093) m[i] ^= 0xFF; /* and the index */
    CHECK(trio_same(&u, &c, shape, 10));
    CHECK(trio_same(&u, &c, shape, 10));
    CHECK_INT(lb_array_cache_info(c.raw, &info, &e), 0);
    CHECK(info.corrupt > 0 || info.misses > 0);
    /* The header: the next opener replaces the file; this mapping still
     * reads exactly. */
    memset(m, 0xEE, 64);
    munmap(m, size);
    lb_cache_info s;
    CHECK_INT(lb_cache_stats(name, &s, &e), LB_EFORMAT);
    trio c2;
    trio_open(rel, &c2, name, (size_t)4 << 20);
    CHECK_INT(lb_array_cache_info(c2.raw, &info, &e), 0);
    CHECK_INT(info.entries, 0);
    CHECK(trio_same(&u, &c2, shape, 10));
    CHECK_INT(lb_cache_stats(name, &s, &e), 0);
    CHECK(s.entries > 0);
    trio_free(&u);
    trio_free(&c);
    trio_free(&c2);
    CHECK_INT(lb_cache_remove(name, &e), 0);
    CHECK_INT(lb_cache_remove(name, &e), LB_ENOTFOUND);
}

/* Other processes: forked workers fill and read the same cache; a worker
 * killed mid-fill or inside the lock leaves it usable. */
static void test_processes(void) {
    const int64_t shape[3] = {29, 37, 23};
    const char *rel = "c.zarr/int64";
    char name[80];
    snprintf(name, sizeof name, "%s-procs", cname);
    lb_error e = {0};
    trio u, c;
    trio_open(rel, &u, NULL, 0);
    trio_open(rel, &c, name, (size_t)4 << 20);
    pid_t kids[3];
    for (int k = 0; k < 3; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            rng += (uint64_t)k * 7919;
            int ok = trio_same(&u, &c, shape, 8);
            lb_cache_info i;
            lb_array_cache_info(c.raw, &i, &e);
            _exit(ok ? 0 : 1);
        }
    }
    for (int k = 0; k < 3; k++) {
        int status = 0;
        CHECK(waitpid(kids[k], &status, 0) == kids[k]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    lb_cache_info info;
    CHECK_INT(lb_array_cache_info(c.raw, &info, &e), 0);
    CHECK(info.entries > 0);
    CHECK(info.hits > 0);           /* the workers shared their entries */
    CHECK_INT(info.process_misses, 0); /* this process read nothing yet */

    /* Killed mid-fill: a reserved, never published entry. */
    lb__lcache *lc = NULL;
    CHECK_INT(lb__lcache_open(name, (size_t)4 << 20, &lc, &e), 0);
    pid_t k = fork();
    if (k == 0) {
        lb__lcache_test_abandon_fill(lc, 42, 7, 1000);
        _exit(0);
    }
    int status = 0;
    waitpid(k, &status, 0);
    lb__buf buf = {NULL, 0, 0};
    CHECK_INT(lb__lcache_get(lc, 42, 7, 7, &buf), 0); /* not labels: a miss */
    unsigned char data[1000];
    memset(data, 3, sizeof data);
    lb__lcache_put(lc, 42, 7, 7, data, sizeof data, 8000); /* the dead filler's place is taken */
    buf.size = 0;
    CHECK_INT(lb__lcache_get(lc, 42, 7, 7, &buf), 1);
    CHECK(buf.size == sizeof data && memcmp(buf.data, data, sizeof data) == 0);
    /* Killed inside the lock: the next locker resets the index. */
    k = fork();
    if (k == 0) {
        lb__lcache_test_take_lock(lc);
        _exit(0);
    }
    waitpid(k, &status, 0);
    CHECK_INT(lb__lcache_get(lc, 42, 7, 7, &buf), 0); /* reset: empty */
    lb__lcache_put(lc, 42, 7, 7, data, sizeof data, 8000);
    CHECK_INT(lb__lcache_get(lc, 42, 7, 7, &buf), 1);
    CHECK(trio_same(&u, &c, shape, 6));
    lb__buf_free(&buf);
    lb__lcache_close(lc);
    trio_free(&u);
    trio_free(&c);
    CHECK_INT(lb_cache_remove(name, &e), 0);
}

/* A log handler counting the warnings that contain `needle`. */
typedef struct warnings {
    const char *needle;
    int n;
} warnings;
static void count_warnings(void *user, int level, const char *message) {
    warnings *w = user;
    if (level == LB_LOG_WARN && strstr(message, w->needle)) w->n++;
}

/* Chunks changed on disk after they were cached (by another array here, as
 * by any other writer): an array opened afterwards reads them anew, in
 * every layout — Zarr v2 nested keys, Zarr v3 shards (the shard's stamp),
 * N5 — and counts them stale. */
static void test_changed_on_disk(void) {
    const int64_t shape[3] = {24, 20, 28}, chunks[3] = {8, 10, 7}, shard[3] = {16, 20, 14};
    struct {
        const char *rel;
        lb_format format;
        char sep;
        const int64_t *shard;
    } cases[] = {{"d.zarr/nested", LB_FORMAT_ZARR2, '/', NULL},
                 {"d.zarr/sharded", LB_FORMAT_ZARR3, 0, shard},
                 {"d.n5/n5", LB_FORMAT_N5, 0, NULL}};
    char name[80];
    snprintf(name, sizeof name, "%s-changed", cname);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpdir, cases[i].rel);
        lb_create_options o;
        lb_create_options_init(&o);
        o.dtype = LB_DTYPE_UINT16;
        o.format = cases[i].format;
        o.separator = cases[i].sep;
        o.shard = cases[i].shard;
        o.overwrite = 1;
        lb_array *w = NULL;
        lb_error e = {0};
        int rc = lb_dataset_create(p, 3, shape, chunks, &o, &w, &e);
        if (rc) fprintf(stderr, "# create %s: %s\n", p, e.message);
        CHECK_INT(rc, 0);
        size_t n = (size_t)(shape[0] * shape[1] * shape[2]);
        uint16_t *labels = malloc(n * 2);
        for (size_t v = 0; v < n; v++) labels[v] = (uint16_t)(v / 97 % 5);
        int64_t start[3] = {0, 0, 0};
        CHECK_INT(lb_array_data_write(w, start, shape, labels, n * 2, &e), 0);
        lb_array_free(w);
        lb_array *a = NULL;
        CHECK_INT(lb_array_open(p, 0, NULL, 0, &a, &e), 0);
        CHECK_INT(lb_array_set_label_cache(a, name, (size_t)4 << 20, &e), 0);
        CHECK_INT(lb_array_warm(a, NULL, 1, &e), 0);
        lb_array_free(a);
        usleep(30000); /* past the file system's timestamp granularity */
        /* Another array rewrites a box across chunk (and shard) borders. */
        CHECK_INT(lb_array_open(p, LB_OPEN_WRITE, NULL, 0, &w, &e), 0);
        const int64_t bs[3] = {5, 4, 3}, bc[3] = {6, 9, 10};
        uint16_t box[6 * 9 * 10];
        for (size_t v = 0; v < sizeof box / 2; v++) box[v] = 4000;
        CHECK_INT(lb_array_data_write(w, bs, bc, box, sizeof box, &e), 0);
        lb_array_free(w);
        lb_array *u = NULL, *c = NULL;
        CHECK_INT(lb_array_open(p, 0, NULL, 0, &u, &e), 0);
        CHECK_INT(lb_array_open(p, 0, NULL, 0, &c, &e), 0);
        CHECK_INT(lb_array_set_label_cache(c, name, (size_t)4 << 20, &e), 0);
        lb_roi all = {3, {0, 0, 0}, {shape[0], shape[1], shape[2]}};
        CHECK(same_read(u, c, &all));
        CHECK(same_read(u, c, &all));
        lb_cache_info info;
        CHECK_INT(lb_array_cache_info(c, &info, &e), 0);
        if (info.stale == 0) fprintf(stderr, "# %s: no stale entry found\n", cases[i].rel);
        CHECK(info.stale > 0);
        CHECK(info.process_hits > 0);
        lb_array_free(u);
        lb_array_free(c);
        free(labels);
        lb_cache_remove(name, &e);
    }
}

/* Damage anywhere: a few bytes of the cache file overwritten at random —
 * in its header's changing fields and lock, its index or its entries —
 * while arrays have it open. Arrays that had it open and arrays that open
 * it afterwards read exactly, nothing crashes or hangs (each round runs in
 * a child with an alarm), and the cache is in use again afterwards. */
static void damage_round(const char *rel, const char *name, const int64_t *shape, int round) {
    lb_error e = {0};
    trio u, c;
    trio_open(rel, &u, NULL, 0);
    trio_open(rel, &c, name, (size_t)4 << 20);
    CHECK_INT(lb_array_warm(c.raw, NULL, 1, &e), 0);
    size_t size;
    unsigned char *m = map_cache_file(name, &size);
    /* Where: the header's changing part (its lock, ring positions and
     * counts), the index, the entries, anywhere, the header's fixed part
     * (the layout: arrays that have the file open keep their own copy);
     * what: random bytes, all ones, zeros, or a lock word naming a thread
     * that does not exist. */
    int where = round % 5, what = round / 5 % 4, hits = 1 + (int)(rnd() % 12);
    for (int h = 0; h < hits; h++) {
        static const size_t lo_of[5] = {64, 4096, 0, 0, 0};
        size_t lo = where == 2 ? size / 2 : lo_of[where];
        size_t hi = where == 0 ? 256 : where == 1 ? size / 2 : where == 4 ? 64 : size;
        size_t at = lo + (size_t)(rnd() % (hi - lo)), len = 1 + (size_t)(rnd() % 8);
        if (at + len > size) len = size - at;
        for (size_t i = 0; i < len; i++)
            m[at + i] = what == 0 ? (unsigned char)rnd() : what == 1 ? 0xFF : 0;
        if (what == 3) {
            uint32_t tid = 0x3FFF0000u | (uint32_t)(rnd() & 0xFFFF);
            memcpy(m + 64, &tid, 4); /* the lock word: the header's first changing field */
        }
    }
    munmap(m, size);
    warnings held = {"reads go on without the cache", 0};
    lb_set_log_handler(count_warnings, &held, LB_LOG_WARN);
    int ok = trio_same(&u, &c, shape, 4);
    ok &= trio_same(&u, &c, shape, 4);
    lb_set_log_handler(NULL, NULL, LB_LOG_OFF);
    /* A lock word naming no live thread: each handle waits once, warns
     * once, then passes the cache by without waiting (other damage to
     * the lock: each warns once too). */
    CHECK(held.n <= 3);
    if (what == 3) CHECK(held.n >= 1);
    trio c2;
    trio_open(rel, &c2, name, (size_t)4 << 20);
    ok &= trio_same(&u, &c2, shape, 4);
    ok &= trio_same(&u, &c2, shape, 4);
    lb_cache_info info;
    CHECK_INT(lb_array_cache_info(c2.raw, &info, &e), 0);
    if (!ok) fprintf(stderr, "# damage round %d: reads differ\n", round);
    if (info.process_hits == 0) fprintf(stderr, "# damage round %d: no hits after\n", round);
    CHECK(ok);
    CHECK(info.process_hits > 0);
    trio_free(&u);
    trio_free(&c);
    trio_free(&c2);
}

/* Run fn(arg) in a forked child with an alarm of `seconds`: whether it
 * exited with no failed check (a crash, a hang or a failed check in the
 * child is reported under `what`). */
static int in_child(void (*fn)(void *), void *arg, unsigned seconds, const char *what) {
    fflush(NULL);
    int before = tap_failures;
    pid_t k = fork();
    if (k == 0) {
        alarm(seconds);
        fn(arg);
        fflush(NULL);
        _exit(tap_failures != before ? 1 : 0);
    }
    int status = 0;
    if (waitpid(k, &status, 0) != k) return 0;
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok)
        fprintf(stderr, "# %s: %s %d\n", what,
                WIFSIGNALED(status) ? "killed by signal" : "exit",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    return ok;
}

/* The cache file `name`, by path: a round may damage it past recognition
 * (both markers), and lb_cache_remove leaves such a file alone. */
static void unlink_cache_file(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    unlink(path);
}

typedef struct damage_args {
    const char *name;
    const int64_t *shape;
    int round;
} damage_args;

static void damage_child(void *arg) {
    const damage_args *d = arg;
    rng += (uint64_t)d->round * 0x9E37u;
    damage_round(d->round % 2 ? "c.zarr/uint16" : "c.zarr/int64", d->name, d->shape, d->round);
}

static void test_damage_anywhere(void) {
    const int64_t shape[3] = {29, 37, 23};
    char name[80];
    snprintf(name, sizeof name, "%s-anywhere", cname);
    lb__lcache_lock_wait_ms = 100; /* a damaged lock word: passed by sooner */
    /* LB_DAMAGE_ROUNDS=N: more rounds (a longer soak than CI's). */
    const char *env = getenv("LB_DAMAGE_ROUNDS");
    int rounds = env && atoi(env) > 0 ? atoi(env) : 40;
    for (int round = 0; round < rounds; round++) {
        unlink_cache_file(name);
        damage_args d = {name, shape, round};
        char what[40];
        snprintf(what, sizeof what, "damage round %d", round);
        CHECK(in_child(damage_child, &d, 15, what));
    }
    lb__lcache_lock_wait_ms = 2000;
    unlink_cache_file(name);
}

/* A full /dev/shm: nothing is stored, one warning says so, reads stay
 * exact; with room again, entries are stored. */
static void test_no_room(void) {
    const int64_t shape[3] = {29, 37, 23};
    char rel[] = "c.zarr/uint16";
    char full[80];
    snprintf(full, sizeof full, "%s-full", cname);
    trio u, c;
    trio_open(rel, &u, NULL, 0);
    trio_open(rel, &c, full, (size_t)4 << 20);
    warnings no_room = {"no room left in /dev/shm", 0};
    lb_set_log_handler(count_warnings, &no_room, LB_LOG_WARN);
    lb__lcache_test_no_room = 1;
    CHECK(trio_same(&u, &c, shape, 6));
    CHECK(trio_same(&u, &c, shape, 6));
    lb_error e = {0};
    lb_cache_info info;
    CHECK_INT(lb_array_cache_info(c.raw, &info, &e), 0);
    CHECK_INT(info.entries, 0);
    CHECK_INT(info.hits, 0);
    CHECK(no_room.n >= 1 && no_room.n <= 3); /* once per array's handle */
    int warned = no_room.n;
    lb__lcache_test_no_room = 0;
    CHECK(trio_same(&u, &c, shape, 6));
    CHECK(trio_same(&u, &c, shape, 6));
    CHECK_INT(lb_array_cache_info(c.raw, &info, &e), 0);
    CHECK(info.entries > 0);
    CHECK(info.hits > 0);
    CHECK_INT(no_room.n, warned);
    lb_set_log_handler(NULL, NULL, LB_LOG_OFF);
    trio_free(&u);
    trio_free(&c);
    CHECK_INT(lb_cache_remove(full, &e), 0);
}

static int open_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* Arrays by the hundred with a label cache keep no file descriptor each;
 * an array asking for another size uses the cache there (and says so); an
 * array whose cache file was removed and made anew stores nothing more in
 * it, says so once, and reads stay exact. */
static void test_handles(void) {
    const int64_t shape[3] = {29, 37, 23};
    char rel[] = "c.zarr/uint16", name[80];
    snprintf(name, sizeof name, "%s-handles", cname);
    lb_error e = {0};
    int before = open_fds();
    enum { N = 200 };
    lb_array *a[N];
    for (int i = 0; i < N; i++) {
        a[i] = open_rel(rel);
        CHECK_INT(lb_array_set_label_cache(a[i], name, (size_t)4 << 20, &e), 0);
    }
    CHECK(before >= 0 && open_fds() - before < 8);
    lb_roi all = {3, {0, 0, 0}, {shape[0], shape[1], shape[2]}};
    lb_array *u = open_rel(rel), *other = open_rel(rel), *sized = open_rel(rel);
    CHECK_INT(lb_cache_remove(name, &e), 0);
    CHECK_INT(lb_array_set_label_cache(other, name, (size_t)8 << 20, &e), 0); /* a new file */
    warnings replaced = {"replaced or removed", 0};
    lb_set_log_handler(count_warnings, &replaced, LB_LOG_WARN);
    CHECK(same_read(u, a[1], &all)); /* misses: its puts find another file */
    CHECK(same_read(u, a[1], &all));
    CHECK_INT(replaced.n, 1);
    lb_cache_info info, was;
    CHECK_INT(lb_array_cache_info(a[1], &info, &e), 0);
    CHECK_INT(info.process_hits, 0);
    /* Another size: the cache there, as it is (said once per process and
     * name). */
    warnings resized = {"uses the cache already there", 0};
    lb_set_log_handler(count_warnings, &resized, LB_LOG_WARN);
    CHECK_INT(lb_array_cache_info(other, &was, &e), 0);
    CHECK_INT(lb_array_set_label_cache(sized, name, (size_t)4 << 20, &e), 0);
    CHECK_INT(lb_array_set_label_cache(sized, name, (size_t)16 << 20, &e), 0);
    CHECK_INT(resized.n, 1);
    CHECK_INT(lb_array_cache_info(sized, &info, &e), 0);
    CHECK_INT(info.capacity, was.capacity);
    CHECK(same_read(u, sized, &all));
    CHECK_INT(lb_array_cache_info(other, &info, &e), 0);
    CHECK(info.entries > 0); /* one file: what `sized` stored, `other` sees */
    lb_set_log_handler(count_warnings, &replaced, LB_LOG_WARN);
    CHECK(same_read(u, other, &all)); /* the new file works */
    CHECK(same_read(u, other, &all));
    CHECK_INT(lb_array_cache_info(other, &info, &e), 0);
    CHECK(info.process_hits > 0);
    lb_set_log_handler(NULL, NULL, LB_LOG_OFF);
    for (int i = 0; i < N; i++) lb_array_free(a[i]);
    lb_array_free(u);
    lb_array_free(other);
    lb_array_free(sized);
    CHECK_INT(lb_cache_remove(name, &e), 0);
}

/* A process killed while making a cache file leaves a temporary in
 * /dev/shm: making the cache file (or removing it) removes those whose
 * process is gone and that are over a minute old, and no other. */
static void test_temporaries(void) {
    char name[80];
    snprintf(name, sizeof name, "%s-tmp", cname);
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    struct {
        long pid;
        int old;
        int removed;
    } t[] = {{(long)dead, 1, 1}, {(long)dead, 0, 0}, {(long)getpid(), 1, 0}};
    char path[3][256];
    for (int i = 0; i < 3; i++) {
        snprintf(path[i], sizeof path[i], "/dev/shm/.%s.%ld.Ab%dxyz", name, t[i].pid, i);
        int fd = open(path[i], O_CREAT | O_WRONLY | O_EXCL, 0600);
        CHECK(fd >= 0);
        if (fd >= 0) close(fd);
        if (t[i].old) {
            struct timespec ts[2];
            clock_gettime(CLOCK_REALTIME, &ts[0]);
            ts[0].tv_sec -= 120;
            ts[1] = ts[0];
            CHECK_INT(utimensat(AT_FDCWD, path[i], ts, 0), 0);
        }
    }
    lb_error e = {0};
    lb_array *a = open_rel("c.zarr/uint8");
    CHECK_INT(lb_array_set_label_cache(a, name, (size_t)1 << 20, &e), 0); /* makes the file */
    for (int i = 0; i < 3; i++) CHECK_INT(access(path[i], F_OK) != 0, t[i].removed);
    lb_array_free(a);
    for (int i = 1; i < 3; i++) unlink(path[i]);
    CHECK_INT(lb_cache_remove(name, &e), 0);
}

static void test_refusals(void) {
    lb_error e = {0};
    lb_array *a = open_rel("c.zarr/uint8");
    CHECK_INT(lb_array_set_label_cache(a, "bad/name", (size_t)4 << 20, &e), LB_EINVAL);
    CHECK_MSG(e, "bad/name");
    CHECK_INT(lb_array_set_label_cache(a, cname, 1000, &e), LB_EINVAL);
    CHECK_INT(lb_array_warm(a, NULL, 1, &e), LB_EINVAL);
    CHECK_MSG(e, "set_label_cache");
    lb_array_free(a);
    char p[512];
    snprintf(p, sizeof p, "%s/c.zarr/float", tmpdir);
    CHECK_INT(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/c.zarr/float/.zarray", tmpdir);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"zarr_format\": 2, \"shape\": [4, 4, 4], \"chunks\": [4, 4, 4], \"dtype\": "
              "\"<f4\", \"compressor\": null, \"fill_value\": 0, \"order\": \"C\", "
              "\"filters\": null}", f);
        fclose(f);
    }
    a = open_rel("c.zarr/float");
    CHECK_INT(lb_array_set_label_cache(a, cname, (size_t)4 << 20, &e), LB_EUNSUPPORTED);
    CHECK_MSG(e, "float32");
    lb_array_free(a);
}

/* Whether file `path` holds exactly n bytes of `want`. */
static int file_is(const char *path, const unsigned char *want, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char *got = malloc(n + 1);
    size_t r = fread(got, 1, n + 1, f);
    fclose(f);
    int ok = r == n && memcmp(got, want, n) == 0;
    free(got);
    return ok;
}

/* Only labelbin caches are used, replaced or removed: anything else at
 * /dev/shm/NAME — another program's file, small or cache-sized, a link, a
 * directory — is refused (LB_EEXIST, the path named) and left as it was.
 * A cache whose header start is damaged is still known by the marker's
 * copy and replaced; with both gone it is refused like any other file. */
static void test_foreign_files(void) {
    char name[80], path[160], target[200];
    snprintf(name, sizeof name, "%s-foreign", cname);
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    lb_error e = {0};
    lb_cache_info s;
    lb_array *a = open_rel("c.zarr/uint8");
    size_t sizes[2] = {6, (size_t)4 << 20};
    for (int i = 0; i < 2; i++) {
        size_t n = sizes[i];
        unsigned char *data = malloc(n);
        for (size_t j = 0; j < n; j++) data[j] = (unsigned char)rnd();
        if (n == 6) memcpy(data, "data\n\n", 6);
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(data, 1, n, f) == n);
        if (f) fclose(f);
        CHECK_INT(lb_array_set_label_cache(a, name, (size_t)4 << 20, &e), LB_EEXIST);
        CHECK_MSG(e, path);
        CHECK_MSG(e, "not a labelbin cache file");
        CHECK_INT(lb_cache_stats(name, &s, &e), LB_EEXIST);
        CHECK_STR(s.path, path); /* named even when refused */
        CHECK_INT(lb_cache_remove(name, &e), LB_EEXIST);
        CHECK_MSG(e, "not removed");
        CHECK(file_is(path, data, n));
        free(data);
        unlink(path);
    }
    /* A link (to a cache, even) and a directory. */
    snprintf(target, sizeof target, "%s-target", name);
    CHECK_INT(lb_array_set_label_cache(a, target, (size_t)1 << 20, &e), 0);
    snprintf(target, sizeof target, "/dev/shm/%s-target", name);
    CHECK_INT(symlink(target, path), 0);
    CHECK_INT(lb_array_set_label_cache(a, name, (size_t)1 << 20, &e), LB_EEXIST);
    CHECK_MSG(e, "a symbolic link");
    CHECK_INT(lb_cache_remove(name, &e), LB_EEXIST);
    struct stat st;
    CHECK(lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
    unlink(path);
    CHECK_INT(mkdir(path, 0700), 0);
    CHECK_INT(lb_array_set_label_cache(a, name, (size_t)1 << 20, &e), LB_EEXIST);
    CHECK_MSG(e, "a directory");
    CHECK(lstat(path, &st) == 0 && S_ISDIR(st.st_mode));
    rmdir(path);
    /* A failed call left the array's cache as it was. */
    lb_cache_info info;
    CHECK_INT(lb_array_cache_info(a, &info, &e), 0);
    CHECK_INT(info.kind, 2);
    CHECK_STR(info.path, target);
    /* A cache whose first 64 bytes are gone: replaced (with a warning);
     * also without its marker's copy: refused. */
    CHECK_INT(lb_array_set_label_cache(a, name, (size_t)1 << 20, &e), 0);
    size_t size;
    unsigned char *m = map_cache_file(name, &size);
    memset(m, 0, 64);
    munmap(m, size);
    warnings replaced = {"replaced it with a new, empty cache", 0};
    lb_set_log_handler(count_warnings, &replaced, LB_LOG_WARN);
    lb_array *b = open_rel("c.zarr/uint8");
    CHECK_INT(lb_array_set_label_cache(b, name, (size_t)1 << 20, &e), 0);
    CHECK_INT(replaced.n, 1);
    lb_set_log_handler(NULL, NULL, LB_LOG_OFF);
    m = map_cache_file(name, &size);
    memset(m, 0, 64);
    memset(m + 4096 - 16, 0, 16);
    munmap(m, size);
    lb_array *c = open_rel("c.zarr/uint8");
    CHECK_INT(lb_array_set_label_cache(c, name, (size_t)1 << 20, &e), LB_EEXIST);
    CHECK_INT(lb_cache_remove(name, &e), LB_EEXIST);
    CHECK_INT(access(path, F_OK), 0);
    unlink(path);
    lb_array_free(a);
    lb_array_free(b);
    lb_array_free(c);
    snprintf(target, sizeof target, "%s-target", name);
    CHECK_INT(lb_cache_remove(target, &e), 0);
}

/* Limits a user can meet: an array without chunks (a zero extent), the
 * index's count of entries (max_entries, small entries evicted for it), a
 * chunk whose entry is more than half the cache (read without it, said
 * once), a failed call that keeps the cache there was. */
static void test_limits(void) {
    lb_error e = {0};
    char name[80];
    snprintf(name, sizeof name, "%s-limits", cname);
    const int64_t none[3] = {0, 10, 10}, c4[3] = {4, 4, 4};
    lb_array *z = create("c.zarr/empty", LB_DTYPE_UINT16, none, c4, "none", NULL);
    CHECK_INT(lb_array_set_label_cache(z, name, (size_t)1 << 20, &e), 0);
    CHECK_INT(lb_array_warm(z, NULL, 1, &e), 0);
    lb_array_free(z);
    CHECK_INT(lb_cache_remove(name, &e), 0);
    /* 4096 chunks of 4^3 voxels: more than the index of 4 MiB takes (one
     * entry per 1.33 KiB: 3072). */
    const int64_t shape[3] = {64, 64, 64};
    lb_array *u = create("c.zarr/small", LB_DTYPE_UINT16, shape, c4, "none", NULL);
    lb_array *a = open_rel("c.zarr/small");
    CHECK_INT(lb_array_set_label_cache(a, name, (size_t)4 << 20, &e), 0);
    CHECK_INT(lb_array_warm(a, NULL, 1, &e), 0);
    lb_cache_info info;
    CHECK_INT(lb_array_cache_info(a, &info, &e), 0);
    CHECK_INT(info.max_entries, 3072);
    CHECK(info.entries <= 3072 && info.entries > 3000);
    CHECK(info.evictions > 0);
    CHECK(info.bytes < info.capacity / 2); /* the index, not the bytes, was the limit */
    lb_roi all = {3, {0, 0, 0}, {64, 64, 64}}, last = {3, {60, 0, 0}, {4, 64, 64}};
    CHECK(same_read(u, a, &all));
    /* A failed call keeps the cache there was. */
    CHECK_INT(lb_array_set_label_cache(a, "bad/name", (size_t)1 << 20, &e), LB_EINVAL);
    CHECK_INT(lb_array_set_label_cache(a, name, 1000, &e), LB_EINVAL);
    CHECK_INT(lb_array_cache_info(a, &info, &e), 0);
    CHECK_INT(info.kind, 2);
    CHECK_INT(info.max_entries, 3072);
    CHECK_STR(info.name, name);
    CHECK(same_read(u, a, &last)); /* the newest entries: hits */
    CHECK_INT(lb_array_cache_info(a, &info, &e), 0);
    CHECK(info.process_hits > 0);
    lb_array_free(u);
    lb_array_free(a);
    CHECK_INT(lb_cache_remove(name, &e), 0);
    /* One 128^3 chunk of a few ids per block: about 1 MiB encoded. */
    const int64_t big[3] = {128, 128, 128};
    u = create("c.zarr/big", LB_DTYPE_UINT16, big, big, "none", NULL);
    a = open_rel("c.zarr/big");
    CHECK_INT(lb_array_set_label_cache(a, name, (size_t)1 << 20, &e), 0);
    warnings large = {"more than half of the", 0};
    lb_set_log_handler(count_warnings, &large, LB_LOG_WARN);
    lb_roi part = {3, {0, 0, 0}, {128, 128, 128}};
    CHECK(same_read(u, a, &part));
    CHECK(same_read(u, a, &part));
    CHECK_INT(large.n, 1);
    lb_set_log_handler(NULL, NULL, LB_LOG_OFF);
    CHECK_INT(lb_array_cache_info(a, &info, &e), 0);
    CHECK_INT(info.entries, 0);
    lb_array_free(u);
    lb_array_free(a);
    CHECK_INT(lb_cache_remove(name, &e), 0);
}

/* An index damaged so that no slot is empty (while its counts look
 * sane): removing an entry used to shift slots round the circle forever,
 * under the lock. Now the index is reset; reads stay exact. */
static void full_index_child(void *arg) {
    const char *name = arg;
    lb_error e = {0};
    const int64_t shape[3] = {29, 37, 23};
    trio u, c;
    trio_open("c.zarr/uint16", &u, NULL, 0);
    trio_open("c.zarr/uint16", &c, name, (size_t)1 << 20);
    CHECK_INT(lb_array_warm(c.raw, NULL, 1, &e), 0);
    size_t size;
    unsigned char *m = map_cache_file(name, &size);
    /* The index starts at 4096; a slot is 56 bytes with its state at 44:
     * every slot READY (2), keys unchanged. */
    for (size_t i = 0; i < 1024; i++) {
        uint32_t ready = 2;
        memcpy(m + 4096 + i * 56 + 44, &ready, 4);
    }
    munmap(m, size);
    /* A chunk file touched: the next array to take its entry finds it
     * stale and drops it. */
    char dir[512], f[600];
    snprintf(dir, sizeof dir, "%s/c.zarr/uint16", tmpdir);
    DIR *d = opendir(dir);
    struct dirent *de;
    int touched = 0;
    while (d && (de = readdir(d)) != NULL && !touched) {
        if (de->d_name[0] == '.') continue;
        snprintf(f, sizeof f, "%s/%s", dir, de->d_name);
        struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
        touched = utimensat(AT_FDCWD, f, ts, 0) == 0;
    }
    if (d) closedir(d);
    CHECK(touched);
    trio c2;
    trio_open("c.zarr/uint16", &c2, name, (size_t)1 << 20);
    int ok = trio_same(&u, &c2, shape, 4) && trio_same(&u, &c, shape, 4);
    trio_free(&c2);
    CHECK(ok);
    trio_free(&u);
    trio_free(&c);
}

static void test_full_index(void) {
    char name[80];
    snprintf(name, sizeof name, "%s-fullindex", cname);
    CHECK(in_child(full_index_child, name, 20, "full index"));
    lb_error e = {0};
    lb_cache_remove(name, &e);
}

/* A process stopped while it holds the lock: the arrays that have the
 * cache open warn once and read without it; an array opening it waits
 * lb__lcache_lock_wait_ms, replaces the file and says so. */
static void test_stopped_holder(void) {
    char name[80];
    snprintf(name, sizeof name, "%s-stopped", cname);
    lb_error e = {0};
    lb__lcache *lc = NULL;
    CHECK_INT(lb__lcache_open(name, (size_t)1 << 20, &lc, &e), 0);
    lb_array *a = open_rel("c.zarr/uint16"), *u = open_rel("c.zarr/uint16");
    CHECK_INT(lb_array_set_label_cache(a, name, (size_t)1 << 20, &e), 0);
    int ready[2];
    CHECK_INT(pipe(ready), 0);
    pid_t k = fork();
    if (k == 0) {
        lb__lcache_test_take_lock(lc);
        (void)!write(ready[1], "x", 1);
        raise(SIGSTOP);
        _exit(0);
    }
    char x;
    CHECK_INT((int)read(ready[0], &x, 1), 1);
    lb__lcache_lock_wait_ms = 100;
    warnings held = {"reads go on without the cache", 0},
             replaced = {"replaced it with a new, empty cache", 0};
    lb_set_log_handler(count_warnings, &held, LB_LOG_WARN);
    lb_roi all = {3, {0, 0, 0}, {29, 37, 23}};
    CHECK(same_read(u, a, &all));
    CHECK(same_read(u, a, &all));
    CHECK_INT(held.n, 1);
    lb_set_log_handler(count_warnings, &replaced, LB_LOG_WARN);
    lb_array *b = open_rel("c.zarr/uint16");
    CHECK_INT(lb_array_set_label_cache(b, name, (size_t)1 << 20, &e), 0);
    CHECK_INT(replaced.n, 1);
    CHECK(same_read(u, b, &all));
    CHECK(same_read(u, b, &all));
    lb_cache_info info;
    CHECK_INT(lb_array_cache_info(b, &info, &e), 0);
    CHECK(info.process_hits > 0);
    lb_set_log_handler(NULL, NULL, LB_LOG_OFF);
    lb__lcache_lock_wait_ms = 2000;
    kill(k, SIGKILL);
    waitpid(k, NULL, 0);
    close(ready[0]);
    close(ready[1]);
    lb__lcache_close(lc);
    lb_array_free(a);
    lb_array_free(b);
    lb_array_free(u);
    CHECK_INT(lb_cache_remove(name, &e), 0);
}

/* An entry of a chunk as it was before a change, stored late — by a
 * process that read the chunk before it changed and stores it only now
 * (simulated here by storing such an entry directly): an array that saw
 * the chunk since never takes it, whether the change came from another
 * program or from the array's own write; and a write of part of the chunk
 * builds on the chunk as stored, not on the old entry. */
static void test_late_old_entries(void) {
    char name[80], path[512];
    snprintf(name, sizeof name, "%s-late", cname);
    snprintf(path, sizeof path, "%s/c.zarr/late", tmpdir);
    lb_error e = {0};
    const int64_t shape[3] = {16, 16, 16}, chunks[3] = {8, 8, 8}, origin[3] = {0, 0, 0};
    lb_array *w = create("c.zarr/late", LB_DTYPE_UINT16, shape, chunks, "none", NULL);
    lb_array_free(w);
    uint16_t old[8 * 8 * 8], now[8 * 8 * 8], got[8 * 8 * 8];
    for (int i = 0; i < 512; i++) old[i] = 7, now[i] = 3;
    CHECK_INT(lb_array_open(path, LB_OPEN_WRITE, NULL, 0, &w, &e), 0);
    CHECK_INT(lb_array_data_write(w, origin, chunks, old, sizeof old, &e), 0);
    /* B reads chunk 0 as it is now: its entry, with its stamp. */
    lb_array *b = open_rel("c.zarr/late");
    CHECK_INT(lb_array_set_label_cache(b, name, (size_t)4 << 20, &e), 0);
    CHECK_INT(lb_array_data_read(b, origin, chunks, got, sizeof got, &e), 0);
    const lb__dataset *bd = lb__array_stored(b)->ds;
    lb__buf entry = {NULL, 0, 0};
    uint64_t stamp = bd->lc_seen[0] - 1;
    CHECK_INT(lb__lcache_get(bd->lcache, bd->lc_id, 0, stamp, &entry), 1);
    /* Another program changes the chunk; A reads it (anew: stale). */
    sleep_ms(20);
    CHECK_INT(lb_array_data_write(w, origin, chunks, now, sizeof now, &e), 0);
    lb_array *a = open_rel("c.zarr/late");
    CHECK_INT(lb_array_set_label_cache(a, name, (size_t)4 << 20, &e), 0);
    CHECK_INT(lb_array_data_read(a, origin, chunks, got, sizeof got, &e), 0);
    CHECK(memcmp(got, now, sizeof now) == 0);
    /* B stores its entry of the old chunk only now. */
    lb__lcache_drop(bd->lcache, bd->lc_id, 0);
    lb__lcache_put(bd->lcache, bd->lc_id, 0, stamp, entry.data, entry.size, sizeof old);
    CHECK_INT(lb_array_data_read(a, origin, chunks, got, sizeof got, &e), 0);
    CHECK(memcmp(got, now, sizeof now) == 0);
    lb_array_free(a);
    /* The array's own write: A (writable, cached) has read the chunk; B's
     * old entry comes in after A's write. */
    CHECK_INT(lb_array_open(path, LB_OPEN_WRITE, NULL, 0, &a, &e), 0);
    CHECK_INT(lb_array_set_label_cache(a, name, (size_t)4 << 20, &e), 0);
    CHECK_INT(lb_array_data_read(a, origin, chunks, got, sizeof got, &e), 0);
    const lb__dataset *ad = lb__array_stored(a)->ds;
    uint64_t before = ad->lc_seen[0] - 1;
    lb__buf was = {NULL, 0, 0};
    CHECK_INT(lb__lcache_get(ad->lcache, ad->lc_id, 0, before, &was), 1);
    sleep_ms(20);
    for (int i = 0; i < 512; i++) now[i] = 4;
    CHECK_INT(lb_array_data_write(a, origin, chunks, now, sizeof now, &e), 0);
    lb__lcache_drop(ad->lcache, ad->lc_id, 0);
    lb__lcache_put(ad->lcache, ad->lc_id, 0, before, was.data, was.size, sizeof old);
    CHECK_INT(lb_array_data_read(a, origin, chunks, got, sizeof got, &e), 0);
    CHECK(memcmp(got, now, sizeof now) == 0);
    /* ... and a write of one row of the chunk keeps the other rows as
     * stored — here changed by another program since A read them — not as
     * A's cache entry has them. */
    CHECK_INT(lb_array_data_read(a, origin, chunks, got, sizeof got, &e), 0);
    sleep_ms(20);
    for (int i = 0; i < 512; i++) now[i] = 5;
    CHECK_INT(lb_array_data_write(w, origin, chunks, now, sizeof now, &e), 0);
    uint16_t row[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    const int64_t one[3] = {1, 1, 8};
    CHECK_INT(lb_array_data_write(a, origin, one, row, sizeof row, &e), 0);
    lb_array *u = open_rel("c.zarr/late");
    CHECK_INT(lb_array_data_read(u, origin, chunks, got, sizeof got, &e), 0);
    for (int i = 0; i < 8; i++) now[i] = 9;
    CHECK(memcmp(got, now, sizeof now) == 0);
    /* The same with the private cache of decoded chunks. */
    CHECK_INT(lb_array_set_cache(a, (size_t)1 << 20, &e), 0);
    CHECK_INT(lb_array_data_read(a, origin, chunks, got, sizeof got, &e), 0);
    for (int i = 0; i < 512; i++) now[i] = 6;
    CHECK_INT(lb_array_data_write(w, origin, chunks, now, sizeof now, &e), 0);
    CHECK_INT(lb_array_data_write(a, origin, one, row, sizeof row, &e), 0);
    CHECK_INT(lb_array_data_read(u, origin, chunks, got, sizeof got, &e), 0);
    for (int i = 0; i < 8; i++) now[i] = 9;
    CHECK(memcmp(got, now, sizeof now) == 0);
    lb__buf_free(&entry);
    lb__buf_free(&was);
    lb_array_free(a);
    lb_array_free(b);
    lb_array_free(u);
    lb_array_free(w);
    CHECK_INT(lb_cache_remove(name, &e), 0);
}

/* Chunks of more than 65536 blocks along z: rows of blocks of different
 * chunks were told apart by a packed key that such indices overflowed,
 * and a row took the channel masks of another. */
static void test_tall_chunks(void) {
    enum { CZ = 65537 * 8 };
    const int64_t shape[3] = {CZ + 8, 8, 8}, chunks[3] = {CZ, 8, 8}, origin[3] = {0, 0, 0};
    char name[80], path[512];
    snprintf(name, sizeof name, "%s-tall", cname);
    snprintf(path, sizeof path, "%s/c.zarr/tall", tmpdir);
    lb_error e = {0};
    lb_array *w = NULL;
    lb_create_options o;
    lb_create_options_init(&o);
    o.dtype = LB_DTYPE_UINT8;
    o.codec = "none";
    o.overwrite = 1;
    CHECK_INT(lb_dataset_create(path, 3, shape, chunks, &o, &w, &e), 0);
    size_t n = (size_t)(shape[0] * 64);
    uint8_t *lab = calloc(n, 1);
    memset(lab, 5, 64);           /* chunk 0: not one id */
    memset(lab + (size_t)CZ * 64, 1, 64 * 8); /* chunk 1: id 1 */
    CHECK_INT(lb_array_data_write(w, origin, shape, lab, n, &e), 0);
    free(lab);
    lb_array_free(w);
    lb_groupings *g = NULL;
    CHECK_INT(lb_groupings_new(&g, &e), 0);
    CHECK_INT(lb_groupings_add_arg(g, "one=1", &e), 0);
    lb_id bg = {0, 0};
    lb_array *ub = NULL, *cb = NULL, *um = NULL, *cm = NULL, *s;
    CHECK_INT(lb_binarize_new(open_rel("c.zarr/tall"), g, bg, &ub, &e), 0);
    CHECK_INT(lb_mask_new(open_rel("c.zarr/tall"), g, &um, &e), 0);
    s = open_rel("c.zarr/tall");
    CHECK_INT(lb_array_set_label_cache(s, name, (size_t)64 << 20, &e), 0);
    CHECK_INT(lb_binarize_new(s, g, bg, &cb, &e), 0);
    s = open_rel("c.zarr/tall");
    CHECK_INT(lb_array_set_label_cache(s, name, (size_t)64 << 20, &e), 0);
    CHECK_INT(lb_mask_new(s, g, &cm, &e), 0);
    lb_roi roi = {3, {CZ - 8, 0, 0}, {16, 8, 8}};
    for (int pass = 0; pass < 2; pass++) {
        CHECK(same_read(ub, cb, &roi));
        CHECK(same_read(um, cm, &roi));
    }
    lb_groupings_free(g);
    lb_array_free(ub);
    lb_array_free(cb);
    lb_array_free(um);
    lb_array_free(cm);
    CHECK_INT(lb_cache_remove(name, &e), 0);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lb_test_lcache.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(cname, sizeof cname, "lb-test-%ld", (long)getpid());
    test_cseg();
    test_arrays_equal();
    test_eviction();
    test_declined();
    test_changed_on_disk();
    test_corruption();
    test_damage_anywhere();
    test_processes();
    test_no_room();
    test_handles();
    test_temporaries();
    test_refusals();
    test_foreign_files();
    test_limits();
    test_full_index();
    test_stopped_holder();
    test_late_old_entries();
    test_tall_chunks();
    lb_error e = {0};
    lb_cache_remove(cname, &e);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "# could not remove %s\n", tmpdir);
    return tap_done();
}
