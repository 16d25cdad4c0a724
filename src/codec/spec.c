/*
 * spec.c — the short codec names users type: "zstd:3", "gzip:6", "blosc-lz4",
 * "none", … (JSON codecs, in a format's own words, are read by the format
 * layer).
 */
#include "codec/spec.h"

#include <stdlib.h>

#include "codec/blosc.h"
#include "codec/zstd.h"

static int spec_level(const char *spec, const char *arg, int lo, int hi, int *out,
                      lb_error *err) {
    char *end = NULL;
    if (!*arg)
        return lb__err(err, LB_EINVAL, "codec spec \"%s\": missing level after ':'", spec);
    long v = strtol(arg, &end, 10);
    if (*end || v < lo || v > hi)
        return lb__err(err, LB_EINVAL, "codec spec \"%s\": level must be an integer %d..%d",
                       spec, lo, hi);
    *out = (int)v;
    return 0;
}

int lb__codec_parse_short(const char *spec, lb__codec *out, lb_error *err) {
    if (!spec) return lb__err(err, LB_EINVAL, "codec spec is missing");
    const char *s = spec;
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    if (*s == '{')
        return lb__err(err, LB_EINVAL, "codec spec \"%s\": a JSON codec is read by the "
                       "format layer (lb__codec_parse_spec)", spec);

    char name[32];
    const char *colon = strchr(s, ':');
    size_t len = colon ? (size_t)(colon - s) : strlen(s);
    if (len >= sizeof name) goto unknown;
    memcpy(name, s, len);
    name[len] = '\0';
    const char *arg = colon ? colon + 1 : NULL;
    lb__codec c;
    int rc = 0, zlo, zhi;
    lb__zstd_level_range(&zlo, &zhi);

    if (!strcmp(name, "none") || !strcmp(name, "raw") || !strcmp(name, "null")) {
        lb__codec_init(&c, LB__CODEC_RAW);
        if (arg) goto unknown;
    } else if (!strcmp(name, "zstd")) {
        lb__codec_init(&c, LB__CODEC_ZSTD);
        if (arg) rc = spec_level(spec, arg, zlo, zhi, &c.level, err);
    } else if (!strcmp(name, "gzip") || !strcmp(name, "zlib")) {
        lb__codec_init(&c, name[0] == 'g' ? LB__CODEC_GZIP : LB__CODEC_ZLIB);
        if (arg) rc = spec_level(spec, arg, 0, 9, &c.level, err);
    } else if (!strcmp(name, "bz2") || !strcmp(name, "bzip2")) {
        lb__codec_init(&c, LB__CODEC_BZ2);
        if (arg) rc = spec_level(spec, arg, 1, 9, &c.level, err);
        c.n5_block_size = c.level;
    } else if (!strcmp(name, "lz4")) {
        lb__codec_init(&c, LB__CODEC_LZ4);
        if (arg) rc = spec_level(spec, arg, 1, 65537, &c.acceleration, err);
    } else if (!strcmp(name, "lzma") || !strcmp(name, "xz")) {
        lb__codec_init(&c, LB__CODEC_XZ);
        if (arg) rc = spec_level(spec, arg, 0, 9, &c.level, err);
    } else if (!strcmp(name, "blosc") || !strncmp(name, "blosc-", 6)) {
        lb__codec_init(&c, LB__CODEC_BLOSC);
        if (name[5] == '-') {
            int found = lb__blosc_cname_index(name + 6);
            if (found < 0)
                return lb__err(err, LB_EINVAL,
                               "codec spec \"%s\": unknown blosc compressor \"%s\" (expected "
                               "lz4, lz4hc, zstd, zlib, snappy or blosclz)",
                               spec, name + 6);
            c.blosc_cname = found;
        }
        if (arg) rc = spec_level(spec, arg, 0, 9, &c.level, err);
    } else {
        goto unknown;
    }
    if (rc) return rc;
    *out = c;
    return 0;
unknown:
    return lb__err(err, LB_EINVAL,
                   "codec spec \"%s\": unknown codec (expected none, zstd[:LEVEL], "
                   "gzip[:LEVEL], zlib[:LEVEL], bz2[:LEVEL], lz4[:ACCELERATION], "
                   "blosc[-CNAME][:CLEVEL], lzma[:PRESET] or a JSON compressor object)",
                   spec);
}
