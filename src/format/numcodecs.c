/*
 * numcodecs.c — numcodecs' compressor objects ({"id": "blosc", "cname": …}),
 * the codecs of Zarr v2 and of Zarr v3's "numcodecs.*" names, read into
 * codec values and written back. Absent keys take numcodecs' defaults.
 */
#include "format/numcodecs.h"

#include <inttypes.h>
#include <limits.h>
#include <lzma.h>
#include <stdio.h>

#include "codec/blosc.h"
#include "core/json.h"
#include "format/common.h"

#define ZARR2_IDS "blosc, zstd, gzip, zlib, lz4, bz2, lzma"

int lb__numcodecs_blosc_fields(json_object *o, const char *where, lb__codec *c, lb_error *err) {
    const char *cname = NULL;
    int rc = lb__cfg_str(o, "cname", where, &cname, err);
    if (rc) return rc;
    if (cname) {
        int found = lb__blosc_cname_index(cname);
        if (found < 0)
            return lb__err(err, LB_EUNSUPPORTED,
                           "%s.cname: unsupported blosc compressor \"%s\" (supported: "
                           "blosclz, lz4, lz4hc, zlib, zstd, snappy)",
                           where, cname);
        c->blosc_cname = found;
    }
    if ((rc = lb__cfg_int(o, "clevel", where, 0, 9, &c->level, err))) return rc;
    if ((rc = lb__cfg_int(o, "shuffle", where, -1, 2, &c->blosc_shuffle, err))) return rc;
    if ((rc = lb__cfg_int(o, "blocksize", where, 0, INT_MAX, &c->blosc_blocksize, err))) return rc;
    return 0;
}

/* The level only matters when compressing: any integer is read (writers
 * store 0, negative "fast" levels, or levels above what this zstd knows),
 * and lb__codec_check_encode refuses the ones zstd cannot compress with. */
static int parse_zstd_level(json_object *o, const char *where, lb__codec *c, lb_error *err) {
    return lb__cfg_int(o, "level", where, INT_MIN, INT_MAX, &c->level, err);
}

/* numcodecs LZMA: {format, check, preset, filters}. Only the .xz container
 * (format 1) is supported; its frames are self-describing, so check and
 * filters only matter when encoding, where we use the defaults. */
static int parse_lzma_fields(json_object *o, const char *where, lb__codec *c, lb_error *err) {
    int format = 1, check = -1;
    int rc = lb__cfg_int(o, "format", where, INT_MIN, INT_MAX, &format, err);
    if (rc) return rc;
    if (format != 1)
        return lb__err(err, LB_EUNSUPPORTED,
                       "%s.format: lzma format %d is not supported (only 1 = FORMAT_XZ)", where,
                       format);
    if ((rc = lb__cfg_int(o, "check", where, -1, 15, &check, err))) return rc;
    json_object *p = lb__cfg_member(o, "preset");
    if (p) {
        char path[512];
        snprintf(path, sizeof path, "%s.preset", where);
        int64_t preset;
        if ((rc = lb__json_int64(p, path, &preset, err))) return rc;
        int64_t level = preset & ~(int64_t)LZMA_PRESET_EXTREME;
        if (preset < 0 || level > 9)
            return lb__err(err, LB_EFORMAT,
                           "%s: %" PRId64 " is not an xz preset (0..9, optionally | "
                           "PRESET_EXTREME)",
                           path, preset);
        c->level = (int)level;
        c->xz_extreme = (preset & LZMA_PRESET_EXTREME) != 0;
    }
    json_object *f = lb__cfg_member(o, "filters");
    if (f && !json_object_is_type(f, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s.filters: expected an array or null, found %s",
                       where, lb__json_type_name(f));
    return 0;
}

int lb__numcodecs_parse(json_object *compressor, const char *id_given, const char *where,
                        lb__codec *out, lb_error *err) {
    lb__codec c;
    lb__codec_init(&c, LB__CODEC_RAW);
    if (!compressor && !id_given) {
        *out = c;
        return 0;
    }
    json_object *empty = NULL;
    if (!compressor) compressor = empty = json_object_new_object();
    if (!compressor) return lb__err(err, LB_ENOMEM, "out of memory");
    if (!json_object_is_type(compressor, json_type_object))
        return lb__err(err, LB_EFORMAT, "%s: expected a compressor object or null, found %s",
                       where, lb__json_type_name(compressor));
    json_object *idv = NULL;
    const char *id = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s.id", where);
    int rc = 0;
    if (id_given) {
        id = id_given;
    } else {
        if ((rc = lb__json_require(compressor, "id", where, &idv, err))) return rc;
        if ((rc = lb__json_str(idv, path, &id, err))) return rc;
    }

    if (strcmp(id, "blosc") == 0) {
        lb__codec_init(&c, LB__CODEC_BLOSC);
        rc = lb__numcodecs_blosc_fields(compressor, where, &c, err);
    } else if (strcmp(id, "zstd") == 0) {
        lb__codec_init(&c, LB__CODEC_ZSTD);
        c.level = 1; /* numcodecs' default */
        rc = parse_zstd_level(compressor, where, &c, err);
        if (!rc) rc = lb__cfg_bool(compressor, "checksum", where, &c.checksum, err);
    } else if (strcmp(id, "gzip") == 0 || strcmp(id, "zlib") == 0) {
        lb__codec_init(&c, id[0] == 'g' ? LB__CODEC_GZIP : LB__CODEC_ZLIB);
        c.level = 1; /* numcodecs' default */
        rc = lb__cfg_int(compressor, "level", where, -1, 9, &c.level, err);
    } else if (strcmp(id, "lz4") == 0) {
        lb__codec_init(&c, LB__CODEC_LZ4);
        rc = lb__cfg_int(compressor, "acceleration", where, INT_MIN, INT_MAX, &c.acceleration,
                     err);
    } else if (strcmp(id, "bz2") == 0) {
        lb__codec_init(&c, LB__CODEC_BZ2);
        c.level = 1; /* numcodecs' default */
        rc = lb__cfg_int(compressor, "level", where, 1, 9, &c.level, err);
        c.n5_block_size = c.level;
    } else if (strcmp(id, "lzma") == 0) {
        lb__codec_init(&c, LB__CODEC_XZ);
        rc = parse_lzma_fields(compressor, where, &c, err);
    } else {
        rc = lb__err(err, LB_EUNSUPPORTED,
                     "%s: unsupported compressor id \"%s\" (supported: " ZARR2_IDS ")", path,
                     id);
    }
    json_object_put(empty);
    if (rc) return rc;
    *out = c;
    return 0;
}


json_object *lb__numcodecs_json(const lb__codec *c, lb_error *err) {
    if (c->id == LB__CODEC_RAW) return NULL; /* JSON null */
    if (c->id == LB__CODEC_LZ4_N5) {
        lb__err(err, LB_EUNSUPPORTED,
                "N5's lz4 (lz4-java block stream) cannot be written as a Zarr v2 "
                "compressor; use \"lz4\" (numcodecs framing) instead");
        return NULL;
    }
    json_object *o = json_object_new_object();
    int bad = 0;
    if (!o) return lb__jput_finish(NULL, 1, err);
    switch (c->id) {
    case LB__CODEC_BLOSC:
        lb__jput_str(o, "id", "blosc", &bad);
        lb__jput_str(o, "cname", lb__blosc_cname(c->blosc_cname) ? lb__blosc_cname(c->blosc_cname) : "lz4", &bad);
        lb__jput_int(o, "clevel", c->level, &bad);
        lb__jput_int(o, "shuffle", c->blosc_shuffle, &bad);
        lb__jput_int(o, "blocksize", c->blosc_blocksize, &bad);
        break;
    case LB__CODEC_ZSTD:
        lb__jput_str(o, "id", "zstd", &bad);
        lb__jput_int(o, "level", c->level, &bad);
        /* numcodecs < 0.12 rejects an unknown "checksum" key: write it only
         * when it matters. */
        if (c->checksum) lb__jput_bool(o, "checksum", 1, &bad);
        break;
    case LB__CODEC_GZIP:
    case LB__CODEC_ZLIB:
        lb__jput_str(o, "id", c->id == LB__CODEC_GZIP ? "gzip" : "zlib", &bad);
        lb__jput_int(o, "level", c->level, &bad);
        break;
    case LB__CODEC_LZ4:
        lb__jput_str(o, "id", "lz4", &bad);
        lb__jput_int(o, "acceleration", c->acceleration, &bad);
        break;
    case LB__CODEC_BZ2:
        lb__jput_str(o, "id", "bz2", &bad);
        lb__jput_int(o, "level", c->level, &bad);
        break;
    case LB__CODEC_XZ:
        lb__jput_str(o, "id", "lzma", &bad);
        lb__jput_int(o, "format", 1, &bad);
        lb__jput_int(o, "check", -1, &bad);
        lb__jput_int(o, "preset",
                (int64_t)c->level | (c->xz_extreme ? (int64_t)LZMA_PRESET_EXTREME : 0), &bad);
        if (json_object_object_add(o, "filters", NULL)) bad = 1;
        break;
    default:
        json_object_put(o);
        lb__err(err, LB_EUNSUPPORTED, "%s cannot be written as a Zarr compressor",
                lb__codec_name(c->id));
        return NULL;
    }
    return lb__jput_finish(o, bad, err);
}
