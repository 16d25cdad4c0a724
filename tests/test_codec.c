/*
 * test_codec.c — codec module tests: round trips for every codec, parsing and
 * printing of compressor JSON and short specs, and hostile frames (truncated,
 * flipped, wrong declared sizes, bombs, trailing garbage).
 *
 * Also a driver for tests/py_codec_interop.py:
 *   test_codec decode CODEC_JSON TYPESIZE NBYTES INFILE OUTFILE
 *   test_codec encode CODEC_JSON TYPESIZE INFILE OUTFILE
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <blosc.h>
#include <bzlib.h>
#include <libdeflate.h>
#include <lz4.h>
#include <lz4frame.h>
#include <lzma.h>
#include <zstd.h>

#include "codec/codec.h"
#include "core/json.h"
#include "codec/lz4.h"
#include "format/format.h"
#include "format/numcodecs.h"
#include "tap.h"

/* ---- deterministic data ------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rng(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* Label-like data: runs of a few ids of `typesize` bytes (little-endian). */
static void fill_labels(uint8_t *p, size_t n, size_t typesize) {
    uint64_t id = 0;
    size_t run = 0;
    for (size_t i = 0; i < n; i += typesize) {
        if (run == 0) {
            id = rng() % 7 == 0 ? 0 : rng() % 40;
            run = 1 + rng() % 300;
        }
        run--;
        for (size_t b = 0; b < typesize && i + b < n; b++) p[i + b] = (uint8_t)(id >> (8 * b));
    }
}
static void fill_random(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(rng() >> 56);
}

static lb__codec spec(const char *s) {
    lb__codec c;
    lb_error e = {0};
    memset(&c, 0, sizeof c);
    if (lb__codec_parse_spec(s, &c, &e) != 0) {
        fprintf(stderr, "bad spec %s: %s\n", s, e.message);
        CHECK(!"spec parses");
    }
    return c;
}

static json_object *parse_json(const char *text) {
    json_object *o = NULL;
    lb_error e = {0};
    if (lb__json_parse(text, strlen(text), "test", &o, &e) != 0) {
        fprintf(stderr, "bad json %s: %s\n", text, e.message);
        CHECK(!"json parses");
    }
    return o;
}

/* ---- round trips -------------------------------------------------------- */

/* Encode, decode exactly, decode bounded, and check that the neighbouring
 * sizes are refused. Returns 0 when everything held. */
static int roundtrip(const lb__codec *c, const uint8_t *data, size_t n, size_t typesize,
                     const char *label) {
    lb__buf enc = {0};
    lb_error e = {0};
    int fails = tap_failures;
    uint8_t *out = malloc(n + 64);
    int rc = lb__codec_encode(c, data, n, typesize, &enc, &e);
    CHECK_INT(rc, 0);
    if (rc) {
        fprintf(stderr, "  encode %s n=%zu ts=%zu: %s\n", label, n, typesize, e.message);
        goto done;
    }
    memset(out, 0xAB, n + 64);
    rc = lb__codec_decode(c, enc.data, enc.size, out, n, typesize, &e);
    CHECK_INT(rc, 0);
    if (rc) fprintf(stderr, "  decode %s n=%zu ts=%zu: %s\n", label, n, typesize, e.message);
    CHECK(n == 0 || memcmp(out, data, n) == 0);
    CHECK_INT(out[n], 0xAB); /* nothing written past dst_size */

    size_t got = 12345;
    rc = lb__codec_decode_upto(c, enc.data, enc.size, out, n + 64, &got, typesize, &e);
    CHECK_INT(rc, 0);
    CHECK_INT(got, n);
    CHECK(n == 0 || memcmp(out, data, n) == 0);

    /* one byte more / one byte less than the frame holds */
    lb_error e2 = {0};
    CHECK_INT(lb__codec_decode(c, enc.data, enc.size, out, n + 1, typesize, &e2), LB_EFORMAT);
    if (n > 0) {
        memset(out, 0xAB, n + 64);
        CHECK_INT(lb__codec_decode(c, enc.data, enc.size, out, n - 1, typesize, &e2),
                  LB_EFORMAT);
        CHECK_INT(out[n - 1], 0xAB);
        CHECK_INT(lb__codec_decode_upto(c, enc.data, enc.size, out, n - 1, &got, typesize, &e2),
                  LB_EFORMAT);
    }
done:
    if (tap_failures != fails) fprintf(stderr, "  ^ in %s, n=%zu, typesize=%zu\n", label, n, typesize);
    free(out);
    lb__buf_free(&enc);
    return tap_failures != fails;
}

static const char *const all_specs[] = {
    "raw", "zstd:1", "zstd:3", "zstd:-5", "zstd:12", "gzip:0", "gzip:1", "gzip:6", "gzip:9",
    "zlib:1", "zlib:6", "zlib:9", "lz4", "lz4:10", "bz2:1", "bz2:9", "xz:0", "xz:6",
    "blosc", "blosc-lz4:1", "blosc-lz4hc:5", "blosc-zstd:3", "blosc-zlib:5", "blosc-blosclz:9",
    "{\"id\":\"blosc\",\"cname\":\"lz4\",\"clevel\":5,\"shuffle\":0,\"blocksize\":0}",
    "{\"id\":\"blosc\",\"cname\":\"zstd\",\"clevel\":5,\"shuffle\":2,\"blocksize\":0}",
    "{\"id\":\"blosc\",\"cname\":\"lz4\",\"clevel\":5,\"shuffle\":-1,\"blocksize\":0}",
    "{\"id\":\"blosc\",\"cname\":\"blosclz\",\"clevel\":5,\"shuffle\":1,\"blocksize\":4096}",
    "{\"id\":\"zstd\",\"level\":3,\"checksum\":true}",
    "{\"type\":\"lz4\",\"blockSize\":65536}",
    "{\"type\":\"lz4\",\"blockSize\":64}",
    "{\"type\":\"gzip\",\"level\":-1,\"useZlib\":true}",
    "{\"type\":\"bzip2\",\"blockSize\":3}",
};
#define N_SPECS (sizeof all_specs / sizeof all_specs[0])

static void test_roundtrips(void) {
    static const size_t sizes[] = {0, 1, 2, 3, 7, 8, 100, 127, 1000, 4097, 65536, 65537,
                                   200003};
    static const size_t typesizes[] = {1, 2, 4, 8};
    size_t max = 200003;
    uint8_t *lab = malloc(max), *rnd = malloc(max);
    for (size_t s = 0; s < N_SPECS; s++) {
        lb__codec c = spec(all_specs[s]);
        for (size_t t = 0; t < 4; t++) {
            fill_labels(lab, max, typesizes[t]);
            fill_random(rnd, max);
            for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
                /* the slow codecs get the large sizes only once */
                int slow = c.id == LB__CODEC_XZ || c.id == LB__CODEC_BZ2 ||
                           (c.id == LB__CODEC_ZSTD && c.level > 9);
                if (slow && sizes[k] > 5000 && t > 0) continue;
                roundtrip(&c, lab, sizes[k], typesizes[t], all_specs[s]);
                roundtrip(&c, rnd, sizes[k], typesizes[t], all_specs[s]);
            }
        }
    }
    free(lab);
    free(rnd);
}

/* 1 MiB of label-like and of random data through one config per family. */
static void test_large(void) {
    static const char *const big[] = {
        "raw", "zstd:3", "gzip:6", "zlib:1", "lz4", "bz2:9", "xz:1", "blosc-lz4:5",
        "blosc-zstd:5", "{\"id\":\"blosc\",\"cname\":\"lz4\",\"clevel\":5,\"shuffle\":-1}",
        "{\"type\":\"lz4\",\"blockSize\":65536}"};
    size_t n = (size_t)1 << 20;
    uint8_t *lab = malloc(n), *rnd = malloc(n);
    fill_random(rnd, n);
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        lb__codec c = spec(big[i]);
        size_t ts = (size_t)1 << (i % 4);
        fill_labels(lab, n, ts);
        roundtrip(&c, lab, n, ts, big[i]);
        roundtrip(&c, rnd, n, ts, big[i]);
    }
    /* label data must actually compress */
    lb__codec z = spec("zstd:3");
    lb__buf enc = {0};
    lb_error e = {0};
    fill_labels(lab, n, 8);
    CHECK_INT(lb__codec_encode(&z, lab, n, 8, &enc, &e), 0);
    CHECK(enc.size < n / 10);
    lb__buf_free(&enc);
    free(lab);
    free(rnd);
}

/* ---- hostile frames ----------------------------------------------------- */

/* Every prefix of a valid frame must be refused or decode to the original,
 * and every single-byte corruption must give 0 or LB_EFORMAT (under the
 * sanitizers: without touching memory it should not). */
static void test_truncation_and_flips(void) {
    size_t n = 1500;
    uint8_t *data = malloc(n), *out = malloc(n);
    fill_labels(data, n, 2);
    for (size_t s = 0; s < N_SPECS; s++) {
        lb__codec c = spec(all_specs[s]);
        lb__buf enc = {0};
        lb_error e = {0};
        CHECK_INT(lb__codec_encode(&c, data, n, 2, &enc, &e), 0);
        int bad = 0;
        for (size_t len = 0; len < enc.size; len++) {
            uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees overreads */
            memcpy(copy, enc.data, len);
            int rc = lb__codec_decode(&c, copy, len, out, n, 2, &e);
            if (rc == 0 && memcmp(out, data, n) != 0) bad++;
            if (rc != 0 && rc != LB_EFORMAT) bad++;
            /* a strict prefix is never whole, except an N5 lz4 stream cut
             * exactly before its end block (lz4-java reads those too) */
            if (c.id != LB__CODEC_RAW && rc == 0 &&
                !(c.id == LB__CODEC_LZ4_N5 && len == enc.size - 21))
                bad++;
            size_t got;
            rc = lb__codec_decode_upto(&c, copy, len, out, n, &got, 2, &e);
            if (rc != 0 && rc != LB_EFORMAT) bad++;
            free(copy);
        }
        if (bad) fprintf(stderr, "  truncation: %s: %d bad prefixes\n", all_specs[s], bad);
        CHECK_INT(bad, 0);

        uint8_t *copy = malloc(enc.size);
        bad = 0;
        for (size_t pos = 0; pos < enc.size; pos++) {
            for (int flip = 0; flip < 3; flip++) {
                memcpy(copy, enc.data, enc.size);
                copy[pos] ^= flip == 0 ? 0xFF : flip == 1 ? 0x01 : 0x80;
                int rc = lb__codec_decode(&c, copy, enc.size, out, n, 2, &e);
                if (rc != 0 && rc != LB_EFORMAT) bad++;
            }
        }
        CHECK_INT(bad, 0);
        free(copy);

        /* trailing garbage; blosc ignores bytes after a whole frame, as
         * c-blosc and numcodecs do */
        if (c.id != LB__CODEC_RAW) {
            lb__buf g = {0};
            lb__buf_append(&g, enc.data, enc.size, &e);
            lb__buf_append(&g, "garbage!", 8, &e);
            int rc = lb__codec_decode(&c, g.data, g.size, out, n, 2, &e);
            int want = c.id == LB__CODEC_BLOSC ? 0 : LB_EFORMAT;
            if (rc != want) fprintf(stderr, "  trailing garbage: %s gives %d\n", all_specs[s], rc);
            CHECK_INT(rc, want);
            if (want == 0) CHECK(memcmp(out, data, n) == 0);
            lb__buf_free(&g);
        }
        lb__buf_free(&enc);
    }
    free(data);
    free(out);
}

/* Random multi-byte corruption, biased towards the headers where the sizes
 * live. Output goes to an exact-size heap buffer so that ASan sees any
 * write past it. */
static void test_mutations(void) {
    size_t n = 5000;
    uint8_t *data = malloc(n), *out = malloc(n);
    fill_labels(data, n, 4);
    int bad = 0, accepted = 0, total = 0;
    for (size_t s = 0; s < N_SPECS; s++) {
        lb__codec c = spec(all_specs[s]);
        lb__buf enc = {0};
        lb_error e = {0};
        CHECK_INT(lb__codec_encode(&c, data, n, 4, &enc, &e), 0);
        uint8_t *copy = malloc(enc.size);
        for (int it = 0; it < 400; it++) {
            memcpy(copy, enc.data, enc.size);
            int k = 1 + (int)(rng() % 4);
            for (int j = 0; j < k; j++) {
                size_t span = rng() % 2 && enc.size > 48 ? 48 : enc.size;
                copy[rng() % span] = (uint8_t)rng();
            }
            int rc = lb__codec_decode(&c, copy, enc.size, out, n, 4, &e);
            if (rc != 0 && rc != LB_EFORMAT) bad++;
            accepted += rc == 0;
            total++;
            size_t got;
            rc = lb__codec_decode_upto(&c, copy, enc.size, out, n, &got, 4, &e);
            if (rc != 0 && rc != LB_EFORMAT) bad++;
            if (rc == 0 && got > n) bad++;
        }
        free(copy);
        lb__buf_free(&enc);
    }
    printf("# mutations: %d of %d decoded without error (codecs without checksums)\n",
           accepted, total);
    CHECK_INT(bad, 0);
    free(data);
    free(out);
}

static void test_zstd_frames(void) {
    lb_error e = {0};
    uint8_t out[64];
    /* A 13-byte frame claiming 9e9 bytes: refused from the header. */
    uint8_t bomb[32] = {0x28, 0xB5, 0x2F, 0xFD, 0xE0};
    uint64_t claim = 9000000000ULL;
    for (int i = 0; i < 8; i++) bomb[5 + i] = (uint8_t)(claim >> (8 * i));
    bomb[13] = 0x01; /* last raw block of size 0 */
    bomb[14] = 0;
    bomb[15] = 0;
    lb__codec z = spec("zstd");
    CHECK_INT(lb__codec_decode(&z, bomb, 16, out, 64, 1, &e), LB_EFORMAT);
    CHECK_MSG(e, "zstd frame declares 9000000000 bytes, chunk holds 64");
    size_t got;
    CHECK_INT(lb__codec_decode_upto(&z, bomb, 16, out, 64, &got, 1, &e), LB_EFORMAT);
    CHECK_MSG(e, "declares 9000000000 bytes");

    /* Frames without a content size (streaming writers) and concatenations. */
    uint8_t data[3000];
    fill_labels(data, sizeof data, 4);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    uint8_t frame[4000];
    size_t fl = ZSTD_compress2(cc, frame, sizeof frame, data, 1000);
    CHECK(!ZSTD_isError(fl));
    CHECK(ZSTD_getFrameContentSize(frame, fl) == ZSTD_CONTENTSIZE_UNKNOWN);
    size_t fl2 = ZSTD_compress2(cc, frame + fl, sizeof frame - fl, data + 1000, 2000);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
    size_t fl3 = ZSTD_compress2(cc, frame + fl + fl2, sizeof frame - fl - fl2, data, 1000);
    ZSTD_freeCCtx(cc);
    uint8_t dec[4100];
    CHECK_INT(lb__codec_decode(&z, frame, fl, dec, 1000, 1, &e), 0);
    CHECK(memcmp(dec, data, 1000) == 0);
    CHECK_INT(lb__codec_decode(&z, frame, fl, dec, 999, 1, &e), LB_EFORMAT);
    CHECK_MSG(e, "zstd data expands beyond the chunk's 999 bytes");
    CHECK_INT(lb__codec_decode(&z, frame, fl, dec, 1001, 1, &e), LB_EFORMAT);
    CHECK_MSG(e, "zstd data holds 1000 bytes, chunk holds 1001");
    CHECK_INT(lb__codec_decode(&z, frame, fl + fl2, dec, 3000, 1, &e), 0);
    CHECK(memcmp(dec, data, 3000) == 0);
    CHECK_INT(lb__codec_decode(&z, frame, fl + fl2 + fl3, dec, 3000, 1, &e), LB_EFORMAT);
    CHECK_INT(lb__codec_decode(&z, frame, fl + fl2 + fl3, dec, 4000, 1, &e), 0);
    /* mismatch of a known content size is reported from the header */
    CHECK_INT(lb__codec_decode(&z, frame + fl + fl2, fl3, dec, 1200, 1, &e), LB_EFORMAT);
    CHECK_MSG(e, "zstd frame declares 1000 bytes, chunk holds 1200");
    CHECK_INT(lb__codec_decode(&z, frame, 0, dec, 0, 1, &e), LB_EFORMAT);
    CHECK_MSG(e, "zstd data is empty");
}

static void test_blosc_frames(void) {
    lb_error e = {0};
    uint8_t data[4096], out[4096 + 16];
    fill_labels(data, sizeof data, 4);
    lb__codec b = spec("blosc-lz4:5");
    lb__buf enc = {0};
    CHECK_INT(lb__codec_encode(&b, data, 1000, 4, &enc, &e), 0);
    CHECK_INT(lb__codec_decode(&b, enc.data, enc.size, out, 4096, 4, &e), LB_EFORMAT);
    CHECK_MSG(e, "blosc header: nbytes 1000 but chunk holds 4096");
    CHECK_INT(lb__codec_decode(&b, enc.data, 10, out, 1000, 4, &e), LB_EFORMAT);
    CHECK_MSG(e, "blosc data is truncated");
    CHECK_INT(lb__codec_decode(&b, enc.data, enc.size - 1, out, 1000, 4, &e), LB_EFORMAT);
    CHECK_MSG(e, "truncated");

    /* crafted headers: typesize 0, blocksize 0, block start out of range,
     * blosc2 version, memcpyed with a wrong cbytes */
    uint8_t *h = malloc(enc.size);
    memcpy(h, enc.data, enc.size);
    h[3] = 0;
    CHECK_INT(lb__codec_decode(&b, h, enc.size, out, 1000, 4, &e), LB_EFORMAT);
    memcpy(h, enc.data, enc.size);
    memset(h + 8, 0, 4);
    CHECK_INT(lb__codec_decode(&b, h, enc.size, out, 1000, 4, &e), LB_EFORMAT);
    memcpy(h, enc.data, enc.size);
    if (!(h[2] & BLOSC_MEMCPYED)) {
        h[16] = 0xFF;
        h[17] = 0xFF;
        CHECK_INT(lb__codec_decode(&b, h, enc.size, out, 1000, 4, &e), LB_EFORMAT);
        CHECK_MSG(e, "outside the");
    }
    memcpy(h, enc.data, enc.size);
    h[0] = 3;
    CHECK_INT(lb__codec_decode(&b, h, enc.size, out, 1000, 4, &e), LB_EFORMAT);
    CHECK_MSG(e, "not blosc1");
    free(h);

    /* a memcpyed frame (random data does not compress) */
    uint8_t rnd[600];
    fill_random(rnd, sizeof rnd);
    CHECK_INT(lb__codec_encode(&b, rnd, sizeof rnd, 1, &enc, &e), 0);
    CHECK_INT(enc.size, sizeof rnd + 16);
    CHECK(enc.data[2] & BLOSC_MEMCPYED);
    CHECK_INT(lb__codec_decode(&b, enc.data, enc.size, out, sizeof rnd, 1, &e), 0);
    CHECK(memcmp(out, rnd, sizeof rnd) == 0);

    /* shuffle -1 resolves like numcodecs: bit shuffle for 1-byte items */
    lb__codec a = spec("{\"id\":\"blosc\",\"cname\":\"lz4\",\"clevel\":5,\"shuffle\":-1}");
    CHECK_INT(lb__codec_encode(&a, data, sizeof data, 1, &enc, &e), 0);
    CHECK(enc.data[2] & BLOSC_DOBITSHUFFLE);
    CHECK(!(enc.data[2] & BLOSC_DOSHUFFLE));
    CHECK_INT(enc.data[3], 1);
    CHECK_INT(lb__codec_encode(&a, data, sizeof data, 4, &enc, &e), 0);
    CHECK(enc.data[2] & BLOSC_DOSHUFFLE);
    CHECK_INT(enc.data[3], 4);
    /* c-blosc 1.21 (and so numcodecs) ignores a forced block size in the
     * _ctx call: the frame is still valid and decodes. */
    lb__codec bs = spec("{\"id\":\"blosc\",\"cname\":\"lz4\",\"clevel\":5,\"shuffle\":1,"
                        "\"blocksize\":1024}");
    CHECK_INT(lb__codec_encode(&bs, data, sizeof data, 4, &enc, &e), 0);
    CHECK_INT(lb__codec_decode(&bs, enc.data, enc.size, out, sizeof data, 4, &e), 0);
    CHECK(memcmp(out, data, sizeof data) == 0);
    lb__buf_free(&enc);
}

static void test_lz4_frames(void) {
    lb_error e = {0};
    uint8_t data[2000], out[2100];
    fill_labels(data, sizeof data, 2);
    lb__codec l = spec("lz4");
    lb__buf enc = {0};
    CHECK_INT(lb__codec_encode(&l, data, sizeof data, 2, &enc, &e), 0);
    /* numcodecs framing: LE size, then one raw block */
    CHECK_INT(enc.data[0] | enc.data[1] << 8, 2000);
    int r = LZ4_decompress_safe((const char *)enc.data + 4, (char *)out, (int)enc.size - 4, 2000);
    CHECK_INT(r, 2000);
    /* declared size bigger / smaller than the chunk, same body */
    enc.data[0] = (uint8_t)(2050 & 0xFF);
    enc.data[1] = (uint8_t)(2050 >> 8);
    CHECK_INT(lb__codec_decode(&l, enc.data, enc.size, out, 2000, 2, &e), LB_EFORMAT);
    CHECK_MSG(e, "lz4 header declares 2050 bytes, chunk holds 2000");
    CHECK_INT(lb__codec_decode(&l, enc.data, enc.size, out, 2050, 2, &e), LB_EFORMAT);
    CHECK_MSG(e, "lz4 data is truncated or corrupt");
    enc.data[0] = (uint8_t)(1000 & 0xFF);
    enc.data[1] = (uint8_t)(1000 >> 8);
    CHECK_INT(lb__codec_decode(&l, enc.data, enc.size, out, 1000, 2, &e), LB_EFORMAT);
    enc.data[0] = 0xFF;
    enc.data[1] = 0xFF;
    enc.data[2] = 0xFF;
    enc.data[3] = 0x7F;
    CHECK_INT(lb__codec_decode(&l, enc.data, enc.size, out, 2000, 2, &e), LB_EFORMAT);
    CHECK_MSG(e, "declares 2147483647 bytes");
    lb__buf_free(&enc);
}

static void test_deflate_frames(void) {
    lb_error e = {0};
    uint8_t data[5000], out[5100];
    fill_labels(data, sizeof data, 1);
    lb__codec g = spec("gzip:6");
    lb__buf a = {0}, b = {0}, cat = {0};
    CHECK_INT(lb__codec_encode(&g, data, 3000, 1, &a, &e), 0);
    CHECK_INT(lb__codec_encode(&g, data + 3000, 2000, 1, &b, &e), 0);
    CHECK_INT(a.data[0], 0x1f);
    CHECK_INT(a.data[1], 0x8b);
    /* ISIZE trailer */
    CHECK_INT(a.data[a.size - 4] | a.data[a.size - 3] << 8, 3000);
    lb__buf_append(&cat, a.data, a.size, &e);
    lb__buf_append(&cat, b.data, b.size, &e);
    CHECK_INT(lb__codec_decode(&g, cat.data, cat.size, out, 5000, 1, &e), 0);
    CHECK(memcmp(out, data, 5000) == 0);
    CHECK_INT(lb__codec_decode(&g, cat.data, cat.size, out, 4999, 1, &e), LB_EFORMAT);
    CHECK_MSG(e, "gzip data expands beyond the chunk's 4999 bytes");
    CHECK_INT(lb__codec_decode(&g, a.data, a.size, out, 2999, 1, &e), LB_EFORMAT);
    CHECK_MSG(e, "gzip trailer declares 3000 bytes, chunk holds 2999");
    CHECK_INT(lb__codec_decode(&g, a.data, a.size, out, 3001, 1, &e), LB_EFORMAT);
    CHECK_MSG(e, "gzip data holds 3000 bytes, chunk holds 3001");
    /* zero padding after the member is tolerated, as gzip readers do */
    uint8_t zeros[7] = {0};
    lb__buf_append(&cat, zeros, sizeof zeros, &e);
    CHECK_INT(lb__codec_decode(&g, cat.data, cat.size, out, 5000, 1, &e), 0);
    CHECK_INT(lb__codec_decode(&g, a.data, a.size - 5, out, 3000, 1, &e), LB_EFORMAT);
    CHECK_MSG(e, "gzip data");
    CHECK_INT(lb__codec_decode(&g, a.data, a.size - 1, out, 3000, 1, &e), LB_EFORMAT);
    CHECK_MSG(e, "gzip data is truncated or corrupt");
    /* a gzip stream under the zlib name is recognised by its header */
    lb__codec z = spec("zlib");
    memset(out, 0, 3000);
    CHECK_INT(lb__codec_decode(&z, a.data, a.size, out, 3000, 1, &e), 0);
    CHECK(memcmp(out, data, 3000) == 0);
    /* N5 gzip with useZlib decodes zlib streams */
    lb__buf zl = {0};
    CHECK_INT(lb__codec_encode(&z, data, 3000, 1, &zl, &e), 0);
    CHECK_INT(zl.data[0] & 0x0F, 8); /* CM = deflate */
    lb__codec nz = spec("{\"type\":\"gzip\",\"useZlib\":true}");
    CHECK_INT(lb__codec_decode(&nz, zl.data, zl.size, out, 3000, 1, &e), 0);
    CHECK(memcmp(out, data, 3000) == 0);
    lb__buf_free(&zl);
    lb__buf_free(&a);
    lb__buf_free(&b);
    lb__buf_free(&cat);
}

/* What other writers put in chunks, read as their readers read it. */
static void test_foreign_frames(void) {
    lb_error e = {0};
    /* z5py before 2.0.10: 16 bytes after every blosc frame. A memcpyed frame
     * of 10000 bytes has cbytes 10016; the file had 10032. */
    static uint8_t rnd[10000], out[10000];
    fill_random(rnd, sizeof rnd);
    lb__codec b = spec("blosc-lz4:5");
    lb__buf enc = {0};
    CHECK_INT(lb__codec_encode(&b, rnd, sizeof rnd, 1, &enc, &e), 0);
    CHECK_INT(enc.size, 10016);
    uint8_t pad[16] = {0};
    lb__buf_append(&enc, pad, sizeof pad, &e);
    CHECK_INT(enc.size, 10032);
    memset(out, 0, sizeof out);
    CHECK_INT(lb__codec_decode(&b, enc.data, enc.size, out, sizeof out, 1, &e), 0);
    CHECK(memcmp(out, rnd, sizeof rnd) == 0);
    size_t got = 0;
    CHECK_INT(lb__codec_decode_upto(&b, enc.data, enc.size, out, sizeof out, &got, 1, &e), 0);
    CHECK_INT(got, sizeof rnd);
    /* a compressed frame too, padded with non-zero bytes */
    uint8_t lab[8000], lout[8000];
    fill_labels(lab, sizeof lab, 4);
    CHECK_INT(lb__codec_encode(&b, lab, sizeof lab, 4, &enc, &e), 0);
    CHECK(!(enc.data[2] & BLOSC_MEMCPYED));
    size_t frame = enc.size;
    memset(pad, 0xEE, sizeof pad);
    lb__buf_append(&enc, pad, sizeof pad, &e);
    CHECK_INT(lb__codec_decode(&b, enc.data, enc.size, lout, sizeof lout, 4, &e), 0);
    CHECK(memcmp(lout, lab, sizeof lab) == 0);
    /* a frame shorter than its cbytes is still refused, padded or not */
    CHECK_INT(lb__codec_decode(&b, enc.data, frame - 1, lout, sizeof lout, 4, &e), LB_EFORMAT);
    CHECK_MSG(e, "(truncated)");
    uint8_t *cut = malloc(frame + 15);
    memcpy(cut, enc.data, frame - 1);
    memset(cut + frame - 1, 0, 16);
    cut[12] = (uint8_t)((frame + 16) & 0xFF); /* cbytes claims past the end */
    cut[13] = (uint8_t)((frame + 16) >> 8);
    CHECK_INT(lb__codec_decode(&b, cut, frame + 15, lout, sizeof lout, 4, &e), LB_EFORMAT);
    CHECK_MSG(e, "(truncated)");
    free(cut);

    /* zlib streams under the gzip names (old z5py's Zarr "gzip", N5 gzip
     * without useZlib) and gzip streams under N5 gzip with useZlib, at
     * every zlib header level */
    const char *zlib_specs[] = {"zlib:1", "zlib:6", "zlib:9", "zlib:0"};
    const char *names[] = {"gzip", "{\"id\":\"gzip\",\"level\":5}",
                           "{\"type\":\"gzip\"}", "{\"type\":\"gzip\",\"useZlib\":true}",
                           "zlib"};
    for (size_t i = 0; i < sizeof zlib_specs / sizeof *zlib_specs; i++) {
        lb__codec z = spec(zlib_specs[i]), g = spec("gzip:6");
        lb__buf zs = {0}, gs = {0};
        CHECK_INT(lb__codec_encode(&z, lab, sizeof lab, 4, &zs, &e), 0);
        CHECK_INT(lb__codec_encode(&g, lab, sizeof lab, 4, &gs, &e), 0);
        CHECK_INT(zs.data[0], 0x78);
        for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
            lb__codec c = spec(names[k]);
            memset(lout, 0, sizeof lout);
            CHECK_INT(lb__codec_decode(&c, zs.data, zs.size, lout, sizeof lout, 4, &e), 0);
            CHECK(memcmp(lout, lab, sizeof lab) == 0);
            memset(lout, 0, sizeof lout);
            CHECK_INT(lb__codec_decode(&c, gs.data, gs.size, lout, sizeof lout, 4, &e), 0);
            CHECK(memcmp(lout, lab, sizeof lab) == 0);
            /* truncated streams of either kind are still errors */
            CHECK_INT(lb__codec_decode(&c, zs.data, zs.size - 3, lout, sizeof lout, 4, &e),
                      LB_EFORMAT);
            CHECK_MSG(e, "zlib data");
            CHECK_INT(lb__codec_decode(&c, gs.data, gs.size - 3, lout, sizeof lout, 4, &e),
                      LB_EFORMAT);
            CHECK_MSG(e, "gzip");
        }
        lb__buf_free(&zs);
        lb__buf_free(&gs);
    }
    /* neither header: the declared name says what is wrong */
    lb__codec g = spec("gzip");
    uint8_t junk[40] = {0x12, 0x34};
    CHECK_INT(lb__codec_decode(&g, junk, sizeof junk, lout, sizeof lout, 4, &e), LB_EFORMAT);
    CHECK_MSG(e, "gzip data");

    /* zstd levels: any integer reads (the frame does not depend on it);
     * encoding refuses what zstd cannot use, naming the level and range */
    const char *levels[] = {"0", "-5", "-131072", "22", "23", "99", "-200000", "2147483647"};
    lb__codec z3 = spec("zstd:3");
    CHECK_INT(lb__codec_encode(&z3, lab, sizeof lab, 4, &enc, &e), 0);
    for (size_t i = 0; i < sizeof levels / sizeof *levels; i++) {
        char js[96];
        lb__codec c;
        long lv = strtol(levels[i], NULL, 10);
        for (int n5 = 0; n5 < 2; n5++) {
            snprintf(js, sizeof js, n5 ? "{\"type\":\"zstd\",\"level\":%s}"
                                       : "{\"id\":\"zstd\",\"level\":%s}",
                     levels[i]);
            json_object *o = parse_json(js);
            int rc = n5 ? lb__format_n5.parse_codec(o, "c", &c, &e) : lb__numcodecs_parse(o, NULL, "c", &c, &e);
            json_object_put(o);
            CHECK_INT(rc, 0);
            if (rc) fprintf(stderr, "  %s: %s\n", js, e.message);
            CHECK_INT(c.level, lv);
            memset(lout, 0, sizeof lout);
            CHECK_INT(lb__codec_decode(&c, enc.data, enc.size, lout, sizeof lout, 4, &e), 0);
            CHECK(memcmp(lout, lab, sizeof lab) == 0);
            int usable = lv >= ZSTD_minCLevel() && lv <= ZSTD_maxCLevel();
            lb__buf w = {0};
            lb_error e2 = {0};
            CHECK_INT(lb__codec_encode(&c, lab, sizeof lab, 4, &w, &e2), usable ? 0 : LB_EINVAL);
            CHECK_INT(lb__codec_check_encode(&c, &e2), usable ? 0 : LB_EINVAL);
            if (!usable) {
                char msg[128];
                snprintf(msg, sizeof msg, "zstd level %ld cannot be used to compress: the valid "
                         "levels are %d..%d", lv, ZSTD_minCLevel(), ZSTD_maxCLevel());
                CHECK_MSG(e2, msg);
                /* a codec spec is for writing: refused at once */
                CHECK_INT(lb__codec_parse_spec(js, &c, &e2), LB_EINVAL);
                CHECK_MSG(e2, msg);
            } else {
                CHECK_INT(lb__codec_parse_spec(js, &c, &e2), 0);
            }
            lb__buf_free(&w);
        }
    }
    /* beyond an int it is out of range */
    json_object *big = parse_json("{\"id\":\"zstd\",\"level\":4294967296}");
    lb__codec c;
    CHECK_INT(lb__numcodecs_parse(big, NULL, "c", &c, &e), LB_EFORMAT);
    CHECK_MSG(e, "c.level: 4294967296 is out of range");
    json_object_put(big);
    lb__buf_free(&enc);
}

static void test_bz2_xz_multistream(void) {
    lb_error e = {0};
    uint8_t data[5000], out[5100];
    fill_labels(data, sizeof data, 4);
    const char *specs[] = {"bz2:9", "xz:3"};
    for (int i = 0; i < 2; i++) {
        lb__codec c = spec(specs[i]);
        lb__buf a = {0}, b = {0};
        CHECK_INT(lb__codec_encode(&c, data, 3000, 4, &a, &e), 0);
        CHECK_INT(lb__codec_encode(&c, data + 3000, 2000, 4, &b, &e), 0);
        lb__buf_append(&a, b.data, b.size, &e);
        CHECK_INT(lb__codec_decode(&c, a.data, a.size, out, 5000, 4, &e), 0);
        CHECK(memcmp(out, data, 5000) == 0);
        CHECK_INT(lb__codec_decode(&c, a.data, a.size, out, 4000, 4, &e), LB_EFORMAT);
        CHECK_MSG(e, "expands beyond the chunk's 4000 bytes");
        CHECK_INT(lb__codec_decode(&c, a.data, a.size, out, 5001, 4, &e), LB_EFORMAT);
        CHECK_MSG(e, "holds 5000 bytes, chunk holds 5001");
        size_t got = 0;
        CHECK_INT(lb__codec_decode_upto(&c, a.data, a.size, out, 5100, &got, 4, &e), 0);
        CHECK_INT(got, 5000);
        lb__buf_free(&a);
        lb__buf_free(&b);
    }
    /* xz frames are readable by liblzma's own one-shot decoder (CRC64 check) */
    lb__codec x = spec("xz");
    lb__buf a = {0};
    CHECK_INT(lb__codec_encode(&x, data, 5000, 4, &a, &e), 0);
    uint64_t memlimit = UINT64_MAX;
    size_t in_pos = 0, out_pos = 0;
    CHECK_INT(lzma_stream_buffer_decode(&memlimit, 0, NULL, a.data, &in_pos, a.size, out,
                                        &out_pos, sizeof out),
              LZMA_OK);
    CHECK_INT(out_pos, 5000);
    CHECK_INT(a.data[7], 0x04); /* stream flags: check = CRC64 */
    lb__buf_free(&a);
    /* bz2 frames are readable by libbz2's one-shot decoder */
    lb__codec bz = spec("bz2:9");
    CHECK_INT(lb__codec_encode(&bz, data, 5000, 4, &a, &e), 0);
    unsigned dl = sizeof out;
    CHECK_INT(BZ2_bzBuffToBuffDecompress((char *)out, &dl, (char *)a.data, (unsigned)a.size, 0, 0),
              BZ_OK);
    CHECK_INT(dl, 5000);
    CHECK(memcmp(out, data, 5000) == 0);
    CHECK_INT(a.data[3], '9');
    lb__buf_free(&a);
}

/* ---- XXH32 and N5 lz4 --------------------------------------------------- */

static void test_xxh32(void) {
    CHECK_INT(lb__xxh32("", 0, 0), 0x02CC5D05U);
    CHECK_INT(lb__xxh32("abc", 3, 0), 0x32D153FFU);
    /* liblz4's frame format stores XXH32(content, seed 0): compare at many
     * lengths, crossing the 16-byte stripe boundary. */
    uint8_t data[300];
    fill_random(data, sizeof data);
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    uint8_t frame[1024];
    int bad = 0;
    for (size_t len = 0; len < sizeof data; len += 1 + len / 8) {
        size_t fl = LZ4F_compressFrame(frame, sizeof frame, data, len, &prefs);
        CHECK(!LZ4F_isError(fl));
        uint32_t want = (uint32_t)frame[fl - 4] | (uint32_t)frame[fl - 3] << 8 |
                        (uint32_t)frame[fl - 2] << 16 | (uint32_t)frame[fl - 1] << 24;
        if (lb__xxh32(data, len, 0) != want) bad++;
    }
    CHECK_INT(bad, 0);
}

static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void test_n5_lz4(void) {
    lb_error e = {0};
    lb__codec c = spec("{\"type\":\"lz4\",\"blockSize\":65536}");
    CHECK_INT(c.id, LB__CODEC_LZ4_N5);
    CHECK_INT(c.n5_block_size, 65536);

    /* Hand-built per the lz4-java layout: one stored block + one lz4 block +
     * the empty end block. */
    const char *msg = "hello N5, hello lz4 block stream";
    size_t ml = strlen(msg);
    uint8_t data[200];
    memcpy(data, msg, ml);
    memset(data + ml, 'x', 100); /* compressible second part */
    uint8_t f[512];
    size_t p = 0;
    memcpy(f + p, "LZ4Block", 8);
    f[p + 8] = 0x16; /* raw, level 6 = 64 KiB blocks */
    put_le32(f + p + 9, (uint32_t)ml);
    put_le32(f + p + 13, (uint32_t)ml);
    put_le32(f + p + 17, lb__xxh32(data, ml, 0x9747b28cU) & 0x0FFFFFFF);
    memcpy(f + p + 21, data, ml);
    p += 21 + ml;
    int cl = LZ4_compress_default((const char *)data + ml, (char *)f + p + 21, 100, 256);
    CHECK(cl > 0 && cl < 100);
    memcpy(f + p, "LZ4Block", 8);
    f[p + 8] = 0x26;
    put_le32(f + p + 9, (uint32_t)cl);
    put_le32(f + p + 13, 100);
    put_le32(f + p + 17, lb__xxh32(data + ml, 100, 0x9747b28cU) & 0x0FFFFFFF);
    p += 21 + (size_t)cl;
    memcpy(f + p, "LZ4Block", 8);
    f[p + 8] = 0x16;
    memset(f + p + 9, 0, 12);
    p += 21;
    uint8_t out[200];
    CHECK_INT(lb__codec_decode(&c, f, p, out, ml + 100, 1, &e), 0);
    CHECK(memcmp(out, data, ml + 100) == 0);
    /* without the end block (lz4-java accepts that too) */
    CHECK_INT(lb__codec_decode(&c, f, p - 21, out, ml + 100, 1, &e), 0);
    /* bounded decode of an N5 block whose header says less */
    size_t got = 0;
    CHECK_INT(lb__codec_decode_upto(&c, f, p, out, sizeof out, &got, 1, &e), 0);
    CHECK_INT(got, ml + 100);
    /* a wrong checksum is refused */
    f[21 + ml + 17] ^= 1;
    CHECK_INT(lb__codec_decode(&c, f, p, out, ml + 100, 1, &e), LB_EFORMAT);
    CHECK_MSG(e, "fails its checksum");
    f[21 + ml + 17] ^= 1;
    /* a block larger than its level allows is refused */
    f[8] = 0x10; /* level 0: blocks of at most 1 KiB — fine for 32 bytes */
    CHECK_INT(lb__codec_decode(&c, f, p, out, ml + 100, 1, &e), 0);
    put_le32(f + 13, 5000);
    CHECK_INT(lb__codec_decode(&c, f, p, out, ml + 100, 1, &e), LB_EFORMAT);
    CHECK_MSG(e, "header at byte 0 is invalid");

    /* our encoder: header layout, 64 KiB blocks, stored fallback, end block */
    size_t n = 150000;
    uint8_t *big = malloc(n), *back = malloc(n);
    fill_labels(big, n, 4);
    fill_random(big + 65536, 65536); /* second block incompressible */
    lb__buf enc = {0};
    CHECK_INT(lb__codec_encode(&c, big, n, 4, &enc, &e), 0);
    CHECK(memcmp(enc.data, "LZ4Block", 8) == 0);
    CHECK_INT(enc.data[8], 0x26);
    uint32_t clen = (uint32_t)enc.data[9] | (uint32_t)enc.data[10] << 8 |
                    (uint32_t)enc.data[11] << 16;
    CHECK_INT(enc.data[13] | enc.data[14] << 8 | enc.data[15] << 16, 65536);
    uint32_t ck = (uint32_t)enc.data[17] | (uint32_t)enc.data[18] << 8 |
                  (uint32_t)enc.data[19] << 16 | (uint32_t)enc.data[20] << 24;
    CHECK_INT(ck, lb__xxh32(big, 65536, 0x9747b28cU) & 0x0FFFFFFF);
    const uint8_t *b2 = enc.data + 21 + clen;
    CHECK(memcmp(b2, "LZ4Block", 8) == 0);
    CHECK_INT(b2[8], 0x16); /* stored: random */
    const uint8_t *end = enc.data + enc.size - 21;
    CHECK(memcmp(end, "LZ4Block", 8) == 0);
    CHECK_INT(end[8], 0x16);
    CHECK_INT(end[9] | end[13] | end[17], 0);
    CHECK_INT(lb__codec_decode(&c, enc.data, enc.size, back, n, 4, &e), 0);
    CHECK(memcmp(back, big, n) == 0);
    /* empty input: only the end block */
    CHECK_INT(lb__codec_encode(&c, big, 0, 4, &enc, &e), 0);
    CHECK_INT(enc.size, 21);
    lb__buf_free(&enc);
    free(big);
    free(back);
}

/* ---- parsing and printing ----------------------------------------------- */

static void check_zarr2_roundtrip(const char *json, const char *describe, const char *back) {
    json_object *o = parse_json(json);
    lb__codec c;
    lb_error e = {0};
    int rc = lb__numcodecs_parse(o, NULL, "x/.zarray: compressor", &c, &e);
    CHECK_INT(rc, 0);
    if (rc) fprintf(stderr, "  %s: %s\n", json, e.message);
    char d[128];
    lb__codec_describe(&c, d, sizeof d);
    CHECK_STR(d, describe);
    json_object *p = lb__numcodecs_json(&c, &e);
    CHECK_STR(lb__json_string(p, 0), back);
    json_object_put(p);
    json_object_put(o);
}

static void test_zarr2_parse(void) {
    check_zarr2_roundtrip(
        "{\"id\":\"blosc\",\"cname\":\"lz4\",\"clevel\":5,\"shuffle\":1,\"blocksize\":0}",
        "blosc(lz4, clevel 5, byte shuffle)",
        "{\"id\":\"blosc\",\"cname\":\"lz4\",\"clevel\":5,\"shuffle\":1,\"blocksize\":0}");
    check_zarr2_roundtrip(
        "{\"id\":\"blosc\",\"cname\":\"zstd\",\"clevel\":3,\"shuffle\":2,\"blocksize\":65536}",
        "blosc(zstd, clevel 3, bit shuffle, blocksize 65536)",
        "{\"id\":\"blosc\",\"cname\":\"zstd\",\"clevel\":3,\"shuffle\":2,\"blocksize\":65536}");
    check_zarr2_roundtrip("{\"id\":\"blosc\",\"cname\":\"lz4hc\",\"clevel\":9,\"shuffle\":-1}",
                          "blosc(lz4hc, clevel 9, auto shuffle)",
                          "{\"id\":\"blosc\",\"cname\":\"lz4hc\",\"clevel\":9,\"shuffle\":-1,"
                          "\"blocksize\":0}");
    check_zarr2_roundtrip("{\"id\":\"blosc\",\"cname\":\"blosclz\",\"clevel\":0,\"shuffle\":0}",
                          "blosc(blosclz, clevel 0, no shuffle)",
                          "{\"id\":\"blosc\",\"cname\":\"blosclz\",\"clevel\":0,\"shuffle\":0,"
                          "\"blocksize\":0}");
    check_zarr2_roundtrip("{\"id\":\"zstd\",\"level\":1}", "zstd(1)",
                          "{\"id\":\"zstd\",\"level\":1}");
    check_zarr2_roundtrip("{\"id\":\"zstd\",\"level\":-3,\"checksum\":true}",
                          "zstd(-3, checksum)",
                          "{\"id\":\"zstd\",\"level\":-3,\"checksum\":true}");
    check_zarr2_roundtrip("{\"id\":\"zstd\",\"level\":5,\"checksum\":false}", "zstd(5)",
                          "{\"id\":\"zstd\",\"level\":5}");
    check_zarr2_roundtrip("{\"id\":\"zstd\"}", "zstd(1)", "{\"id\":\"zstd\",\"level\":1}");
    check_zarr2_roundtrip("{\"id\":\"gzip\",\"level\":1}", "gzip(1)",
                          "{\"id\":\"gzip\",\"level\":1}");
    check_zarr2_roundtrip("{\"id\":\"zlib\",\"level\":9}", "zlib(9)",
                          "{\"id\":\"zlib\",\"level\":9}");
    check_zarr2_roundtrip("{\"id\":\"lz4\",\"acceleration\":1}", "lz4(acceleration 1)",
                          "{\"id\":\"lz4\",\"acceleration\":1}");
    check_zarr2_roundtrip("{\"id\":\"bz2\",\"level\":1}", "bz2(1)",
                          "{\"id\":\"bz2\",\"level\":1}");
    check_zarr2_roundtrip(
        "{\"id\":\"lzma\",\"format\":1,\"check\":-1,\"preset\":null,\"filters\":null}", "xz(6)",
        "{\"id\":\"lzma\",\"format\":1,\"check\":-1,\"preset\":6,\"filters\":null}");
    check_zarr2_roundtrip("{\"id\":\"lzma\",\"format\":1,\"check\":4,\"preset\":2147483657}",
                          "xz(9e)",
                          "{\"id\":\"lzma\",\"format\":1,\"check\":-1,\"preset\":2147483657,"
                          "\"filters\":null}");

    /* null compressor = raw, and raw prints as JSON null */
    lb__codec c;
    lb_error e = {0};
    CHECK_INT(lb__numcodecs_parse(NULL, NULL, "c", &c, &e), 0);
    CHECK_INT(c.id, LB__CODEC_RAW);
    CHECK(lb__numcodecs_json(&c, &e) == NULL);
    char d[64];
    lb__codec_describe(&c, d, sizeof d);
    CHECK_STR(d, "raw");

    /* errors name the JSON path */
    struct {
        const char *json;
        int code;
        const char *msg;
    } bad[] = {
        {"{\"id\":\"snappy\"}", LB_EUNSUPPORTED,
         "a/.zarray: compressor.id: unsupported compressor id \"snappy\" (supported: blosc, "
         "zstd, gzip, zlib, lz4, bz2, lzma)"},
        {"{\"id\":\"blosc\",\"clevel\":\"5\"}", LB_EFORMAT,
         "a/.zarray: compressor.clevel: expected an integer"},
        {"{\"id\":\"blosc\",\"clevel\":5.5}", LB_EFORMAT, "compressor.clevel: expected an integer"},
        {"{\"id\":\"blosc\",\"clevel\":12}", LB_EFORMAT, "compressor.clevel: 12 is out of range 0..9"},
        {"{\"id\":\"blosc\",\"shuffle\":3}", LB_EFORMAT, "compressor.shuffle: 3 is out of range"},
        {"{\"id\":\"blosc\",\"cname\":\"brotli\"}", LB_EUNSUPPORTED,
         "compressor.cname: unsupported blosc compressor \"brotli\""},
        {"{\"id\":\"blosc\",\"cname\":5}", LB_EFORMAT, "compressor.cname: expected a string"},
        {"{\"id\":\"zstd\",\"level\":\"x\"}", LB_EFORMAT, "compressor.level: expected an integer"},
        {"{\"id\":\"zstd\",\"checksum\":1}", LB_EFORMAT, "compressor.checksum: expected a boolean"},
        {"{\"id\":\"gzip\",\"level\":10}", LB_EFORMAT, "compressor.level: 10 is out of range"},
        {"{\"id\":\"lz4\",\"acceleration\":[]}", LB_EFORMAT,
         "compressor.acceleration: expected an integer"},
        {"{\"id\":\"bz2\",\"level\":0}", LB_EFORMAT, "compressor.level: 0 is out of range 1..9"},
        {"{\"id\":\"lzma\",\"format\":2}", LB_EUNSUPPORTED,
         "compressor.format: lzma format 2 is not supported"},
        {"{\"id\":\"lzma\",\"preset\":10}", LB_EFORMAT, "compressor.preset: 10 is not an xz preset"},
        {"{\"id\":\"lzma\",\"filters\":{}}", LB_EFORMAT, "compressor.filters: expected an array"},
        {"{\"cname\":\"lz4\"}", LB_EFORMAT, "a/.zarray: compressor: missing key \"id\""},
        {"{\"id\":7}", LB_EFORMAT, "compressor.id: expected a string"},
        {"\"blosc\"", LB_EFORMAT, "compressor: expected a compressor object or null"},
        {"[1]", LB_EFORMAT, "compressor: expected a compressor object or null"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_object *o = parse_json(bad[i].json);
        lb_error e2 = {0};
        CHECK_INT(lb__numcodecs_parse(o, NULL, "a/.zarray: compressor", &c, &e2), bad[i].code);
        CHECK_MSG(e2, bad[i].msg);
        json_object_put(o);
    }
    /* N5-only framing has no Zarr v2 name */
    lb__codec n5 = spec("{\"type\":\"lz4\"}");
    CHECK(lb__numcodecs_json(&n5, &e) == NULL);
    CHECK_INT(e.code, LB_EUNSUPPORTED);
}

static void check_n5(const char *json, lb__codec_id id, const char *describe, const char *back) {
    json_object *o = parse_json(json);
    lb__codec c;
    lb_error e = {0};
    int rc = lb__format_n5.parse_codec(o, "ds/attributes.json: compression", &c, &e);
    CHECK_INT(rc, 0);
    if (rc) fprintf(stderr, "  %s: %s\n", json, e.message);
    CHECK_INT(c.id, id);
    char d[128];
    lb__codec_describe(&c, d, sizeof d);
    CHECK_STR(d, describe);
    json_object *p = lb__format_n5.codec_words(&c, &e);
    CHECK_STR(lb__json_string(p, 0), back);
    json_object_put(p);
    json_object_put(o);
}

static void test_n5_parse(void) {
    check_n5("{\"type\":\"raw\"}", LB__CODEC_RAW, "raw", "{\"type\":\"raw\"}");
    check_n5("{\"type\":\"gzip\",\"level\":-1,\"useZlib\":false}", LB__CODEC_GZIP, "gzip(-1)",
             "{\"type\":\"gzip\",\"level\":-1,\"useZlib\":false}");
    check_n5("{\"type\":\"gzip\"}", LB__CODEC_GZIP, "gzip(-1)",
             "{\"type\":\"gzip\",\"level\":-1,\"useZlib\":false}");
    check_n5("{\"type\":\"gzip\",\"level\":4,\"useZlib\":true}", LB__CODEC_ZLIB, "zlib(4)",
             "{\"type\":\"gzip\",\"level\":4,\"useZlib\":true}");
    check_n5("{\"type\":\"bzip2\",\"blockSize\":5}", LB__CODEC_BZ2, "bz2(5)",
             "{\"type\":\"bzip2\",\"blockSize\":5}");
    check_n5("{\"type\":\"bzip2\"}", LB__CODEC_BZ2, "bz2(9)",
             "{\"type\":\"bzip2\",\"blockSize\":9}");
    check_n5("{\"type\":\"xz\",\"preset\":3}", LB__CODEC_XZ, "xz(3)",
             "{\"type\":\"xz\",\"preset\":3}");
    check_n5("{\"type\":\"lz4\"}", LB__CODEC_LZ4_N5, "lz4-n5(blockSize 65536)",
             "{\"type\":\"lz4\",\"blockSize\":65536}");
    check_n5("{\"type\":\"blosc\",\"cname\":\"zstd\",\"clevel\":3,\"shuffle\":2,\"nthreads\":4}",
             LB__CODEC_BLOSC, "blosc(zstd, clevel 3, bit shuffle)",
             "{\"type\":\"blosc\",\"cname\":\"zstd\",\"clevel\":3,\"shuffle\":2,\"blocksize\":0,"
             "\"nthreads\":1}");
    check_n5("{\"type\":\"zstd\",\"level\":7}", LB__CODEC_ZSTD, "zstd(7)",
             "{\"type\":\"zstd\",\"level\":7}");
    check_n5("\"gzip\"", LB__CODEC_GZIP, "gzip(-1)",
             "{\"type\":\"gzip\",\"level\":-1,\"useZlib\":false}");
    check_n5("\"raw\"", LB__CODEC_RAW, "raw", "{\"type\":\"raw\"}");

    struct {
        const char *json;
        int code;
        const char *msg;
    } bad[] = {
        {"{\"type\":\"snappy\"}", LB_EUNSUPPORTED,
         "d: compression.type: unsupported N5 compression \"snappy\" (supported: raw, gzip, "
         "bzip2, xz, lz4, blosc, zstd)"},
        {"\"lzf\"", LB_EUNSUPPORTED, "d: compression: unsupported N5 compression \"lzf\""},
        {"{\"level\":3}", LB_EFORMAT, "d: compression: missing key \"type\""},
        {"{\"type\":\"gzip\",\"useZlib\":\"yes\"}", LB_EFORMAT,
         "d: compression.useZlib: expected a boolean"},
        {"{\"type\":\"gzip\",\"level\":\"6\"}", LB_EFORMAT,
         "d: compression.level: expected an integer"},
        {"{\"type\":\"bzip2\",\"blockSize\":10}", LB_EFORMAT, "compression.blockSize: 10 is out"},
        {"{\"type\":\"lz4\",\"blockSize\":12}", LB_EFORMAT, "compression.blockSize: 12 is out"},
        {"{\"type\":\"blosc\",\"clevel\":true}", LB_EFORMAT, "compression.clevel: expected an integer"},
        {"{\"type\":\"blosc\",\"nthreads\":\"x\"}", LB_EFORMAT, "compression.nthreads: expected"},
        {"{\"type\":\"xz\",\"preset\":11}", LB_EFORMAT, "compression.preset: 11 is out"},
        {"{\"type\":5}", LB_EFORMAT, "compression.type: expected a string"},
        {"[]", LB_EFORMAT, "d: compression: expected a compression object"},
    };
    lb__codec c;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_object *o = parse_json(bad[i].json);
        lb_error e2 = {0};
        CHECK_INT(lb__format_n5.parse_codec(o, "d: compression", &c, &e2), bad[i].code);
        CHECK_MSG(e2, bad[i].msg);
        json_object_put(o);
    }
    lb_error e = {0};
    CHECK_INT(lb__format_n5.parse_codec(NULL, "d: compression", &c, &e), LB_EFORMAT);
    /* what N5 cannot say */
    lb__codec l = spec("lz4");
    CHECK(lb__format_n5.codec_words(&l, &e) == NULL);
    CHECK_INT(e.code, LB_EUNSUPPORTED);
    lb__codec a = spec("{\"id\":\"blosc\",\"shuffle\":-1}");
    CHECK(lb__format_n5.codec_words(&a, &e) == NULL);
    CHECK_MSG(e, "shuffle -1");
}

static void test_specs(void) {
    struct {
        const char *spec;
        const char *describe;
    } ok[] = {
        {"none", "raw"},
        {"raw", "raw"},
        {"zstd", "zstd(3)"},
        {"zstd:0", "zstd(0)"},
        {"zstd:19", "zstd(19)"},
        {"zstd:-7", "zstd(-7)"},
        {"gzip", "gzip(6)"},
        {"gzip:1", "gzip(1)"},
        {"zlib:9", "zlib(9)"},
        {"bz2", "bz2(9)"},
        {"bz2:2", "bz2(2)"},
        {"lz4", "lz4(acceleration 1)"},
        {"lz4:8", "lz4(acceleration 8)"},
        {"blosc", "blosc(lz4, clevel 5, byte shuffle)"},
        {"blosc:7", "blosc(lz4, clevel 7, byte shuffle)"},
        {"blosc-zstd", "blosc(zstd, clevel 5, byte shuffle)"},
        {"blosc-lz4hc:9", "blosc(lz4hc, clevel 9, byte shuffle)"},
        {"blosc-zlib:1", "blosc(zlib, clevel 1, byte shuffle)"},
        {"blosc-blosclz:3", "blosc(blosclz, clevel 3, byte shuffle)"},
        {"lzma", "xz(6)"},
        {"xz:2", "xz(2)"},
        {"{\"id\":\"zstd\",\"level\":4}", "zstd(4)"},
        {" {\"type\":\"xz\",\"preset\":1}", "xz(1)"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        lb__codec c;
        lb_error e = {0};
        int rc = lb__codec_parse_spec(ok[i].spec, &c, &e);
        CHECK_INT(rc, 0);
        if (rc) fprintf(stderr, "  spec %s: %s\n", ok[i].spec, e.message);
        char d[128];
        lb__codec_describe(&c, d, sizeof d);
        CHECK_STR(d, ok[i].describe);
    }
    const char *bad[] = {"", "zstd:", "zstd:abc", "zstd:99", "gzip:10", "bz2:0", "blosc-brotli",
                         "blosc:10", "lz4:0", "brotli", "none:1", "xz:-1",
                         "averyveryveryverylongcodecnamethatoverflows",
                         "{\"id\":\"nope\"}", "{bad json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lb__codec c;
        lb_error e = {0};
        int rc = lb__codec_parse_spec(bad[i], &c, &e);
        CHECK(rc < 0);
        CHECK(e.message[0] != 0);
    }
    lb__codec c;
    lb_error e = {0};
    CHECK_INT(lb__codec_parse_spec("brotli", &c, &e), LB_EINVAL);
    CHECK_MSG(e, "codec spec \"brotli\": unknown codec");
    CHECK_INT(lb__codec_parse_spec("{\"id\":\"nope\"}", &c, &e), LB_EUNSUPPORTED);
    CHECK_INT(lb__codec_parse_spec("gzip:10", &c, &e), LB_EINVAL);
    CHECK_MSG(e, "level must be an integer 0..9");
    /* describe truncates safely */
    char small[5];
    lb__codec b = spec("blosc");
    lb__codec_describe(&b, small, sizeof small);
    CHECK_STR(small, "blos");
}

/* ---- driver mode for py_codec_interop.py -------------------------------- */

static int read_file(const char *path, lb__buf *b) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    uint8_t tmp[65536];
    size_t k;
    lb_error e = {0};
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) lb__buf_append(b, tmp, k, &e);
    fclose(f);
    return 0;
}
static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static int driver(int argc, char **argv) {
    int decode = strcmp(argv[1], "decode") == 0;
    if ((decode && argc != 7) || (!decode && (argc != 6 || strcmp(argv[1], "encode") != 0))) {
        fprintf(stderr, "usage: test_codec decode CODEC_JSON TYPESIZE NBYTES IN OUT\n"
                        "       test_codec encode CODEC_JSON TYPESIZE IN OUT\n");
        return 2;
    }
    lb__codec c;
    lb_error e = {0};
    if (lb__codec_parse_spec(argv[2], &c, &e)) {
        fprintf(stderr, "test_codec: %s\n", e.message);
        return 1;
    }
    size_t typesize = (size_t)strtoull(argv[3], NULL, 10);
    lb__buf in = {0}, out = {0};
    int rc = 1;
    if (read_file(decode ? argv[5] : argv[4], &in)) {
        fprintf(stderr, "test_codec: cannot read input\n");
        goto done;
    }
    if (decode) {
        size_t nbytes = (size_t)strtoull(argv[4], NULL, 10);
        if (lb__buf_reserve(&out, nbytes + 1, &e) ||
            lb__codec_decode(&c, in.data, in.size, out.data, nbytes, typesize, &e)) {
            fprintf(stderr, "test_codec: %s\n", e.message);
            goto done;
        }
        out.size = nbytes;
    } else if (lb__codec_encode(&c, in.data, in.size, typesize, &out, &e)) {
        fprintf(stderr, "test_codec: %s\n", e.message);
        goto done;
    }
    if (write_file(decode ? argv[6] : argv[5], out.data, out.size)) {
        fprintf(stderr, "test_codec: cannot write output\n");
        goto done;
    }
    rc = 0;
done:
    lb__buf_free(&in);
    lb__buf_free(&out);
    return rc;
}

int main(int argc, char **argv) {
    if (argc > 1) return driver(argc, argv);
    uint64_t seed = (uint64_t)time(NULL);
    const char *env = getenv("LB_TEST_SEED");
    if (env) seed = strtoull(env, NULL, 10);
    printf("# seed %" PRIu64 " (set LB_TEST_SEED to repeat)\n", seed);
    rng_state = seed * 2654435761U + 1;

    test_xxh32();
    test_specs();
    test_zarr2_parse();
    test_n5_parse();
    test_zstd_frames();
    test_blosc_frames();
    test_lz4_frames();
    test_deflate_frames();
    test_foreign_frames();
    test_bz2_xz_multistream();
    test_n5_lz4();
    test_roundtrips();
    test_large();
    test_truncation_and_flips();
    test_mutations();
    return tap_done();
}
