/*
 * zarr3.c — the Zarr v3 format (core specification 3.0): zarr.json for
 * arrays and groups, the regular chunk grid, the "default" and "v2" chunk key
 * encodings, fill values in every form the spec allows, dimension_names, and
 * the codecs bytes, transpose, gzip, zstd, blosc, crc32c and
 * sharding_indexed (plus numcodecs.* names for the compressors Zarr v2 knew).
 *
 * What is refused, and why: data types other than bool, the integers and
 * float32/float64 (labels are integers; floats read for inspection); chunk
 * grids other than "regular"; storage transformers; unknown codecs; unknown
 * top-level keys unless marked "must_understand": false (the spec's rule).
 */
#include "format/format.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/json.h"
#include "core/path.h"
#include "format/common.h"
#include "codec/blosc.h"
#include "codec/sharding.h"
#include "format/numcodecs.h"

#define META "zarr.json"
#define WHERE 1200

static const struct {
    const char *name;
    lb_dtype dtype;
} dtypes[] = {
    {"bool", LB_DTYPE_BOOL},       {"int8", LB_DTYPE_INT8},       {"int16", LB_DTYPE_INT16},
    {"int32", LB_DTYPE_INT32},     {"int64", LB_DTYPE_INT64},     {"uint8", LB_DTYPE_UINT8},
    {"uint16", LB_DTYPE_UINT16},   {"uint32", LB_DTYPE_UINT32},   {"uint64", LB_DTYPE_UINT64},
    {"float32", LB_DTYPE_FLOAT32}, {"float64", LB_DTYPE_FLOAT64},
};

#define SUPPORTED_DTYPES "bool, int8..int64, uint8..uint64, float32, float64"
#define SUPPORTED_CODECS \
    "bytes, transpose, gzip, zstd, blosc, crc32c, sharding_indexed, numcodecs.*"

/* ---- small JSON helpers ------------------------------------------------------ */

/* An extension point: an object {"name", "configuration"?} or (3.1) a bare
 * name string. *config is NULL when absent. */
static int extension(json_object *o, const char *where, const char **name, json_object **config,
                     lb_error *err) {
    *config = NULL;
    if (o && json_object_is_type(o, json_type_string)) {
        *name = json_object_get_string(o);
        return 0;
    }
    if (!o || !json_object_is_type(o, json_type_object))
        return lb__err(err, LB_EFORMAT, "%s: expected an object with \"name\", found %s", where,
                       lb__json_type_name(o));
    json_object *n = NULL;
    char w[WHERE];
    int rc = lb__json_require(o, "name", where, &n, err);
    snprintf(w, sizeof w, "%s.name", where);
    if (!rc) rc = lb__json_str(n, w, name, err);
    if (rc) return rc;
    json_object *c = lb__json_get(o, "configuration");
    if (c && !json_object_is_type(c, json_type_object))
        return lb__err(err, LB_EFORMAT, "%s.configuration: expected an object, found %s", where,
                       lb__json_type_name(c));
    *config = c;
    return 0;
}

static int cfg_int(json_object *cfg, const char *key, const char *where, int64_t lo, int64_t hi,
                   int required, int64_t *out, lb_error *err) {
    json_object *v = cfg ? lb__json_get(cfg, key) : NULL;
    char w[WHERE];
    snprintf(w, sizeof w, "%s.configuration.%s", where, key);
    if (!v) return required ? lb__err(err, LB_EFORMAT, "%s: missing", w) : 0;
    int rc = lb__json_int64(v, w, out, err);
    if (rc) return rc;
    if (*out < lo || *out > hi)
        return lb__err(err, LB_EFORMAT, "%s: %" PRId64 " is out of range %" PRId64 "..%" PRId64,
                       w, *out, lo, hi);
    return 0;
}

static int cfg_str(json_object *cfg, const char *key, const char *where, int required,
                   const char **out, lb_error *err) {
    json_object *v = cfg ? lb__json_get(cfg, key) : NULL;
    char w[WHERE];
    snprintf(w, sizeof w, "%s.configuration.%s", where, key);
    if (!v) return required ? lb__err(err, LB_EFORMAT, "%s: missing", w) : 0;
    return lb__json_str(v, w, out, err);
}

/* ---- codecs ------------------------------------------------------------------ */

static int parse_codecs(json_object *list, const char *where, const lb__chunk_repr *repr,
                        int depth, lb__chain **out, lb_error *err);

static int parse_sharding(json_object *cfg, const char *where, const lb__chunk_repr *repr,
                          int depth, lb__codec *c, lb_error *err) {
    char w[WHERE];
    json_object *o;
    if (!cfg) return lb__err(err, LB_EFORMAT, "%s.configuration: missing", where);
    snprintf(w, sizeof w, "%s.configuration", where);
    int n = 0, rc = lb__meta_dims(cfg, "chunk_shape", w, c->inner_shape, &n, err);
    if (rc) return rc;
    if (n != repr->ndim)
        return lb__err(err, LB_EFORMAT, "%s.chunk_shape: %d entries, the chunk has %d "
                       "dimensions", w, n, repr->ndim);
    c->ndim = n;
    for (int k = 0; k < n; k++)
        if (c->inner_shape[k] <= 0 || repr->shape[k] % c->inner_shape[k] != 0)
            return lb__err(err, LB_EFORMAT, "%s.chunk_shape[%d]: %" PRId64 " does not divide the "
                           "shard shape %" PRId64, w, k, c->inner_shape[k], repr->shape[k]);
    const char *loc = "end";
    if ((rc = cfg_str(cfg, "index_location", where, 0, &loc, err))) return rc;
    if (strcmp(loc, "end") != 0 && strcmp(loc, "start") != 0)
        return lb__err(err, LB_EFORMAT, "%s.index_location: expected \"start\" or \"end\", "
                       "found \"%s\"", w, loc);
    c->index_at_start = loc[0] == 's';
    lb__chunk_repr inner;
    if ((rc = lb__chunk_repr_set(&inner, n, c->inner_shape, repr->itemsize, repr->fill, err)))
        return lb__err_prefix(err, "%s.chunk_shape", w);
    char wc[WHERE + 16];
    snprintf(wc, sizeof wc, "%s.codecs", w);
    if ((rc = lb__json_require(cfg, "codecs", w, &o, err))) return rc;
    if ((rc = parse_codecs(o, wc, &inner, depth + 1, &c->inner, err))) return rc;
    /* The index: (chunks per shard…, 2) uint64; checked as (count, 2). */
    int64_t count = 1;
    for (int k = 0; k < n; k++) count *= repr->shape[k] / c->inner_shape[k];
    if (count > LB__SHARD_MAX_INNER)
        return lb__err(err, LB_ELIMIT, "%s: a shard holds %" PRId64 " inner chunks, more than "
                       "the limit of %" PRId64, w, count, LB__SHARD_MAX_INNER);
    int64_t ishape[2] = {count, 2};
    lb__chunk_repr ir;
    if ((rc = lb__chunk_repr_set(&ir, 2, ishape, 8, NULL, err))) return rc;
    snprintf(wc, sizeof wc, "%s.index_codecs", w);
    if ((rc = lb__json_require(cfg, "index_codecs", w, &o, err))) return rc;
    if ((rc = parse_codecs(o, wc, &ir, depth + 1, &c->index, err))) return rc;
    if (lb__chain_fixed_size(c->index, &ir) < 0 || c->index->ab != 0)
        return lb__err(err, LB_EUNSUPPORTED, "%s: only bytes, optionally followed by crc32c, "
                       "are supported as index codecs", wc);
    return 0;
}

static int parse_codec(json_object *o, const char *where, const lb__chunk_repr *repr, int depth,
                       lb__codec *c, lb_error *err) {
    const char *name;
    json_object *cfg;
    int rc = extension(o, where, &name, &cfg, err);
    if (rc) return rc;
    int64_t v;
    const char *s;
    if (strcmp(name, "bytes") == 0) {
        lb__codec_init(c, LB__CODEC_BYTES);
        s = NULL;
        if ((rc = cfg_str(cfg, "endian", where, 0, &s, err))) return rc;
        if (!s && repr->itemsize > 1)
            return lb__err(err, LB_EFORMAT, "%s.configuration.endian: missing (required for "
                           "%zu-byte elements)", where, repr->itemsize);
        if (s && strcmp(s, "little") != 0 && strcmp(s, "big") != 0)
            return lb__err(err, LB_EFORMAT, "%s.configuration.endian: expected \"little\" or "
                           "\"big\", found \"%s\"", where, s);
        c->big_endian = s && s[0] == 'b';
    } else if (strcmp(name, "transpose") == 0) {
        lb__codec_init(c, LB__CODEC_TRANSPOSE);
        json_object *ord = cfg ? lb__json_get(cfg, "order") : NULL;
        char w[WHERE];
        snprintf(w, sizeof w, "%s.configuration.order", where);
        c->ndim = repr->ndim;
        if (ord && json_object_is_type(ord, json_type_string)) {
            /* Drafts of the spec named two orders; zarr-python 3's early
             * releases wrote them. */
            s = json_object_get_string(ord);
            if (strcmp(s, "C") != 0 && strcmp(s, "F") != 0)
                return lb__err(err, LB_EFORMAT, "%s: expected a permutation, found \"%s\"", w, s);
            for (int k = 0; k < repr->ndim; k++) c->order[k] = s[0] == 'C' ? k : repr->ndim - 1 - k;
        } else {
            int64_t ord64[LB_MAX_DIMS];
            int n = 0;
            if (!ord) return lb__err(err, LB_EFORMAT, "%s: missing", w);
            if ((rc = lb__json_int64_array(ord, w, ord64, LB_MAX_DIMS, &n, err))) return rc;
            if (n != repr->ndim)
                return lb__err(err, LB_EFORMAT, "%s: %d entries, the chunk has %d dimensions", w,
                               n, repr->ndim);
            int seen[LB_MAX_DIMS] = {0};
            for (int k = 0; k < n; k++) {
                if (ord64[k] < 0 || ord64[k] >= n || seen[ord64[k]])
                    return lb__err(err, LB_EFORMAT, "%s: not a permutation of 0..%d", w, n - 1);
                seen[ord64[k]] = 1;
                c->order[k] = (int)ord64[k];
            }
        }
    } else if (strcmp(name, "gzip") == 0) {
        lb__codec_init(c, LB__CODEC_GZIP);
        v = c->level;
        if ((rc = cfg_int(cfg, "level", where, 0, 9, 0, &v, err))) return rc;
        c->level = (int)v;
    } else if (strcmp(name, "zstd") == 0) {
        lb__codec_init(c, LB__CODEC_ZSTD);
        v = c->level;
        /* Any level decodes; encoders clamp to the library's range. */
        if ((rc = cfg_int(cfg, "level", where, INT32_MIN, INT32_MAX, 0, &v, err))) return rc;
        c->level = (int)v;
        json_object *ck = cfg ? lb__json_get(cfg, "checksum") : NULL;
        if (ck) {
            char w[WHERE];
            snprintf(w, sizeof w, "%s.configuration.checksum", where);
            if ((rc = lb__json_bool(ck, w, &c->checksum, err))) return rc;
        }
    } else if (strcmp(name, "blosc") == 0) {
        lb__codec_init(c, LB__CODEC_BLOSC);
        s = "lz4";
        if ((rc = cfg_str(cfg, "cname", where, 0, &s, err))) return rc;
        int found = lb__blosc_cname_index(s);
        if (found < 0)
            return lb__err(err, LB_EUNSUPPORTED, "%s.configuration.cname: blosc compressor \"%s\" "
                           "is not supported (blosclz, lz4, lz4hc, zlib, zstd, snappy)", where, s);
        c->blosc_cname = found;
        v = c->level;
        if ((rc = cfg_int(cfg, "clevel", where, 0, 9, 0, &v, err))) return rc;
        c->level = (int)v;
        s = "noshuffle";
        if ((rc = cfg_str(cfg, "shuffle", where, 0, &s, err))) return rc;
        if (strcmp(s, "noshuffle") == 0) c->blosc_shuffle = 0;
        else if (strcmp(s, "shuffle") == 0) c->blosc_shuffle = 1;
        else if (strcmp(s, "bitshuffle") == 0) c->blosc_shuffle = 2;
        else
            return lb__err(err, LB_EFORMAT, "%s.configuration.shuffle: expected \"noshuffle\", "
                           "\"shuffle\" or \"bitshuffle\", found \"%s\"", where, s);
        v = 0;
        if ((rc = cfg_int(cfg, "typesize", where, 0, 255, 0, &v, err))) return rc;
        c->blosc_typesize = (int)v;
        v = 0;
        if ((rc = cfg_int(cfg, "blocksize", where, 0, INT32_MAX, 0, &v, err))) return rc;
        c->blosc_blocksize = (int)v;
    } else if (strcmp(name, "crc32c") == 0) {
        lb__codec_init(c, LB__CODEC_CRC32C);
    } else if (strcmp(name, "sharding_indexed") == 0) {
        lb__codec_init(c, LB__CODEC_SHARDING);
        rc = parse_sharding(cfg, where, repr, depth, c, err);
        if (rc) lb__codec_clear(c);
        return rc;
    } else if (strncmp(name, "numcodecs.", 10) == 0) {
        rc = lb__numcodecs_parse(cfg, name + 10, where, c, err);
        if (rc) return rc;
    } else {
        return lb__err(err, LB_EUNSUPPORTED, "%s: codec \"%s\" is not supported (supported: %s)",
                       where, name, SUPPORTED_CODECS);
    }
    return 0;
}

static int parse_codecs(json_object *list, const char *where, const lb__chunk_repr *repr,
                        int depth, lb__chain **out, lb_error *err) {
    *out = NULL;
    if (depth > 4)
        return lb__err(err, LB_ELIMIT, "%s: codecs nested more than 4 levels deep", where);
    if (!list || !json_object_is_type(list, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s: expected a list of codecs, found %s", where,
                       lb__json_type_name(list));
    size_t n = json_object_array_length(list);
    if (n == 0 || n > LB__CHAIN_MAX)
        return lb__err(err, n ? LB_ELIMIT : LB_EFORMAT, "%s: %zu codecs (expected 1 to %d)", where,
                       n, LB__CHAIN_MAX);
    lb__codec codecs[LB__CHAIN_MAX];
    int rc = 0, have = 0;
    lb__chunk_repr cur = *repr; /* what the next codec sees (transposes permute it) */
    for (size_t i = 0; i < n && !rc; i++) {
        char w[WHERE];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        rc = parse_codec(json_object_array_get_idx(list, i), w, &cur, depth, &codecs[i], err);
        if (rc) break;
        have = (int)i + 1;
        if (codecs[i].id == LB__CODEC_TRANSPOSE) {
            lb__chunk_repr next = cur;
            for (int k = 0; k < cur.ndim; k++) next.shape[k] = cur.shape[codecs[i].order[k]];
            cur = next;
        }
    }
    if (!rc) rc = lb__chain_new(codecs, (int)n, repr, where, out, err);
    for (int i = 0; i < have; i++) lb__codec_clear(&codecs[i]);
    return rc;
}

/* ---- data type and fill value -------------------------------------------------- */

static int parse_dtype(json_object *o, const char *where, lb__array_meta *m, lb_error *err) {
    const char *name;
    json_object *cfg;
    char w[WHERE];
    snprintf(w, sizeof w, "%s: data_type", where);
    int rc = extension(o, w, &name, &cfg, err);
    if (rc) return rc;
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (strcmp(name, dtypes[i].name) == 0) {
            m->dtype = dtypes[i].dtype;
            m->itemsize = lb_dtype_size(m->dtype);
            return 0;
        }
    return lb__err(err, LB_EUNSUPPORTED, "%s: \"%s\" is not supported (supported: %s)", w, name,
                   SUPPORTED_DTYPES);
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int parse_fill(json_object *o, const char *where, lb__array_meta *m, lb_error *err) {
    char w[WHERE];
    snprintf(w, sizeof w, "%s: fill_value", where);
    memset(m->fill, 0, sizeof m->fill);
    if (!o) {
        /* Not a value the spec allows, but what zarrita's create() writes
         * when no fill value is given; read as 0, like Zarr v2's null. */
        m->fill_null = 1;
        return 0;
    }
    if (m->dtype == LB_DTYPE_BOOL) {
        if (!json_object_is_type(o, json_type_boolean))
            return lb__err(err, LB_EFORMAT, "%s: expected true or false, found %s", w,
                           lb__json_type_name(o));
        m->fill[0] = json_object_get_boolean(o) ? 1 : 0;
        return 0;
    }
    if (lb_dtype_is_integer(m->dtype)) {
        lb_id id;
        int rc = lb__json_id(o, w, &id, err);
        if (rc) return rc;
        if (lb__fill_from_id(m->dtype, id, m->fill) != 0) {
            char num[32];
            lb_id_format(id, num, sizeof num);
            return lb__err(err, LB_EFORMAT, "%s: %s is out of range for %s", w, num,
                           lb_dtype_name(m->dtype));
        }
        return 0;
    }
    /* float32 / float64: a number, "NaN", "Infinity", "-Infinity", or the
     * bit pattern as "0x" + 8 / 16 hex digits. */
    double d;
    if (json_object_is_type(o, json_type_string)) {
        const char *s = json_object_get_string(o);
        if (strcmp(s, "NaN") == 0) d = NAN;
        else if (strcmp(s, "Infinity") == 0) d = INFINITY;
        else if (strcmp(s, "-Infinity") == 0) d = -INFINITY;
        else if (s[0] == '0' && s[1] == 'x' && strlen(s) == 2 + 2 * m->itemsize) {
            uint64_t bits = 0;
            for (size_t i = 2; s[i]; i++) {
                int h = hexval(s[i]);
                if (h < 0) return lb__err(err, LB_EFORMAT, "%s: \"%s\" is not a hex bit pattern", w, s);
                bits = bits << 4 | (uint64_t)h;
            }
            if (m->itemsize == 4) {
                uint32_t b32 = (uint32_t)bits;
                memcpy(m->fill, &b32, 4);
            } else {
                memcpy(m->fill, &bits, 8);
            }
            return 0;
        } else {
            return lb__err(err, LB_EFORMAT, "%s: expected a number, \"NaN\", \"Infinity\", "
                           "\"-Infinity\" or a hex bit pattern, found \"%s\"", w, s);
        }
    } else {
        int rc = lb__json_number(o, w, &d, err);
        if (rc) return rc;
    }
    if (m->itemsize == 4) {
        float f = (float)d;
        memcpy(m->fill, &f, 4);
    } else {
        memcpy(m->fill, &d, 8);
    }
    return 0;
}

/* ---- opening ----------------------------------------------------------------- */

static const char *const known_keys[] = {
    "zarr_format", "node_type", "shape", "data_type", "chunk_grid", "chunk_key_encoding",
    "fill_value", "codecs", "attributes", "storage_transformers", "dimension_names"};

static int check_extra_keys(json_object *meta, const char *where, lb_error *err) {
    json_object_object_foreach(meta, key, val) {
        int known = 0;
        for (size_t i = 0; i < sizeof known_keys / sizeof *known_keys; i++)
            known |= strcmp(key, known_keys[i]) == 0;
        if (known) continue;
        json_object *mu = val && json_object_is_type(val, json_type_object)
                              ? lb__json_get(val, "must_understand")
                              : NULL;
        if (mu && json_object_is_type(mu, json_type_boolean) && !json_object_get_boolean(mu))
            continue;
        return lb__err(err, LB_EUNSUPPORTED, "%s: \"%s\" is an extension this reader does not "
                       "understand (it is not marked \"must_understand\": false)", where, key);
    }
    return 0;
}

static int node_type(json_object *meta, const char **out) {
    json_object *t = lb__json_get(meta, "node_type");
    json_object *f = lb__json_get(meta, "zarr_format");
    *out = NULL;
    if (!t || !json_object_is_type(t, json_type_string) || !f ||
        !json_object_is_type(f, json_type_int) || json_object_get_int64(f) != 3)
        return 0;
    *out = json_object_get_string(t);
    return 1;
}

static int zarr3_probe(lb__store *s, const char *dir, lb_error *err) {
    json_object *meta = NULL;
    int rc = lb__meta_read(s, dir, META, &meta, err);
    if (rc) return rc == LB_EFORMAT ? 1 : rc; /* a broken zarr.json: let open report it */
    const char *t;
    int yes = meta && node_type(meta, &t) && strcmp(t, "array") == 0;
    /* A zarr.json that is not a v3 group either is an array open must
     * explain (wrong zarr_format, no node_type …). */
    if (meta && !yes && !(node_type(meta, &t) && strcmp(t, "group") == 0)) yes = 1;
    json_object_put(meta);
    return yes;
}

static int zarr3_probe_group(lb__store *s, const char *dir) {
    json_object *meta = NULL;
    if (lb__meta_read(s, dir, META, &meta, NULL) || !meta) return 0;
    const char *t;
    int yes = node_type(meta, &t) && strcmp(t, "group") == 0;
    json_object_put(meta);
    return yes;
}

static int zarr3_open(lb__store *s, const char *dir, lb__array_meta *m, lb_error *err) {
    memset(m, 0, sizeof *m);
    char where[WHERE];
    snprintf(where, sizeof where, "%s/%s", dir, META);
    json_object *meta = NULL, *o;
    int rc = lb__meta_read(s, dir, META, &meta, err);
    if (rc) return rc;
    if (!meta) return lb__err(err, LB_ENOTFOUND, "%s: not found", where);
    m->meta = meta;
    int64_t v;
    char w[WHERE + 32];
    if ((rc = lb__json_require(meta, "zarr_format", where, &o, err))) goto fail;
    snprintf(w, sizeof w, "%s: zarr_format", where);
    if ((rc = lb__json_int64(o, w, &v, err))) goto fail;
    if (v != 3) {
        rc = lb__err(err, LB_EFORMAT, "%s: expected 3, found %" PRId64, w, v);
        goto fail;
    }
    const char *t = NULL;
    if ((rc = lb__json_require(meta, "node_type", where, &o, err))) goto fail;
    snprintf(w, sizeof w, "%s: node_type", where);
    if ((rc = lb__json_str(o, w, &t, err))) goto fail;
    if (strcmp(t, "array") != 0) {
        rc = lb__err(err, strcmp(t, "group") == 0 ? LB_ENOTFOUND : LB_EFORMAT,
                     "%s: node_type is \"%s\", not an array", where, t);
        goto fail;
    }
    if ((rc = check_extra_keys(meta, where, err))) goto fail;

    int nshape = 0;
    if ((rc = lb__meta_dims(meta, "shape", where, m->shape, &nshape, err))) goto fail;
    m->ndim = nshape;
    if ((rc = lb__json_require(meta, "data_type", where, &o, err))) goto fail;
    if ((rc = parse_dtype(o, where, m, err))) goto fail;

    /* chunk grid */
    const char *gname;
    json_object *gcfg;
    if ((rc = lb__json_require(meta, "chunk_grid", where, &o, err))) goto fail;
    snprintf(w, sizeof w, "%s: chunk_grid", where);
    if ((rc = extension(o, w, &gname, &gcfg, err))) goto fail;
    if (strcmp(gname, "regular") != 0) {
        rc = lb__err(err, LB_EUNSUPPORTED, "%s: chunk grid \"%s\" is not supported (only "
                     "\"regular\")", w, gname);
        goto fail;
    }
    if (!gcfg) {
        rc = lb__err(err, LB_EFORMAT, "%s.configuration: missing", w);
        goto fail;
    }
    int nchunks = 0;
    snprintf(w, sizeof w, "%s: chunk_grid.configuration", where);
    if ((rc = lb__meta_dims(gcfg, "chunk_shape", w, m->chunks, &nchunks, err))) goto fail;
    if (nchunks != nshape) {
        rc = lb__err(err, LB_EFORMAT, "%s.chunk_shape: %d entries, shape has %d", w, nchunks,
                     nshape);
        goto fail;
    }
    if ((rc = lb__meta_check_geometry(m->ndim, m->shape, m->chunks, m->itemsize, where, "shape",
                                      "chunk_grid.configuration.chunk_shape", 0, err)))
        goto fail;

    /* chunk key encoding */
    const char *kname;
    json_object *kcfg;
    if ((rc = lb__json_require(meta, "chunk_key_encoding", where, &o, err))) goto fail;
    snprintf(w, sizeof w, "%s: chunk_key_encoding", where);
    if ((rc = extension(o, w, &kname, &kcfg, err))) goto fail;
    if (strcmp(kname, "default") == 0) {
        m->key_prefix_c = 1;
        m->key_separator = '/';
    } else if (strcmp(kname, "v2") == 0) {
        m->key_separator = '.';
    } else {
        rc = lb__err(err, LB_EUNSUPPORTED, "%s: chunk key encoding \"%s\" is not supported "
                     "(default, v2)", w, kname);
        goto fail;
    }
    const char *sep = NULL;
    if ((rc = cfg_str(kcfg, "separator", w, 0, &sep, err))) goto fail;
    if (sep) {
        if (strcmp(sep, "/") != 0 && strcmp(sep, ".") != 0) {
            rc = lb__err(err, LB_EFORMAT, "%s.configuration.separator: expected \"/\" or \".\", "
                         "found \"%s\"", w, sep);
            goto fail;
        }
        m->key_separator = sep[0];
    }

    if ((rc = lb__json_require(meta, "fill_value", where, &o, err))) goto fail;
    if ((rc = parse_fill(o, where, m, err))) goto fail;

    /* storage transformers: none */
    o = lb__json_get(meta, "storage_transformers");
    if (o && !(json_object_is_type(o, json_type_array) && json_object_array_length(o) == 0)) {
        rc = lb__err(err, LB_EUNSUPPORTED, "%s: storage_transformers are not supported", where);
        goto fail;
    }

    /* codecs */
    lb__chunk_repr repr;
    if ((rc = lb__chunk_repr_set(&repr, m->ndim, m->chunks, m->itemsize, m->fill, err))) {
        lb__err_prefix(err, "%s", where);
        goto fail;
    }
    if ((rc = lb__json_require(meta, "codecs", where, &o, err))) goto fail;
    snprintf(w, sizeof w, "%s: codecs", where);
    if ((rc = parse_codecs(o, w, &repr, 0, &m->chain, err))) goto fail;

    /* dimension names */
    o = lb__json_get(meta, "dimension_names");
    if (o) {
        snprintf(w, sizeof w, "%s: dimension_names", where);
        if (!json_object_is_type(o, json_type_array) ||
            json_object_array_length(o) != (size_t)m->ndim) {
            rc = lb__err(err, LB_EFORMAT, "%s: expected a list of %d names or nulls", w, m->ndim);
            goto fail;
        }
        for (int k = 0; k < m->ndim; k++) {
            json_object *e = json_object_array_get_idx(o, (size_t)k);
            if (!e) continue;
            const char *nm;
            char we[WHERE + 48];
            snprintf(we, sizeof we, "%s[%d]", w, k);
            if ((rc = lb__json_str(e, we, &nm, err))) goto fail;
            if (!(m->dim_names[k] = lb__strdup(nm, err))) {
                rc = LB_ENOMEM;
                goto fail;
            }
        }
    }

    /* attributes */
    o = lb__json_get(meta, "attributes");
    if (o && !json_object_is_type(o, json_type_object)) {
        rc = lb__err(err, LB_EFORMAT, "%s: attributes: expected an object, found %s", where,
                     lb__json_type_name(o));
        goto fail;
    }
    m->attrs = o ? json_object_get(o) : json_object_new_object();
    if (!m->attrs) {
        rc = lb__err(err, LB_ENOMEM, "out of memory");
        goto fail;
    }
    return 0;
fail:
    lb__array_meta_clear(m);
    return rc;
}

/* ---- keys and groups ----------------------------------------------------------- */

static int zarr3_chunk_key(const lb__array_meta *m, const int64_t *cidx, char *buf, size_t size) {
    size_t len = 0;
    char part[32];
    int k;
    if (m->key_prefix_c) {
        k = snprintf(part, sizeof part, "c");
        if (len + (size_t)k < size) memcpy(buf + len, part, (size_t)k);
        len += (size_t)k;
    } else if (m->ndim == 0) {
        k = snprintf(part, sizeof part, "0");
        if (len + (size_t)k < size) memcpy(buf + len, part, (size_t)k);
        len += (size_t)k;
    }
    for (int i = 0; i < m->ndim; i++) {
        int sep = m->key_prefix_c || i > 0;
        k = sep ? snprintf(part, sizeof part, "%c%lld", m->key_separator, (long long)cidx[i])
                : snprintf(part, sizeof part, "%lld", (long long)cidx[i]);
        if (len + (size_t)k < size) memcpy(buf + len, part, (size_t)k);
        len += (size_t)k;
    }
    if (size) buf[len < size ? len : size - 1] = '\0';
    return (int)len;
}

static int zarr3_group_attrs(lb__store *s, const char *dir, json_object **out, lb_error *err) {
    *out = NULL;
    json_object *meta = NULL;
    int rc = lb__meta_read(s, dir, META, &meta, err);
    if (rc || !meta) return rc;
    const char *t;
    json_object *a = lb__json_get(meta, "attributes");
    if (node_type(meta, &t) && a && json_object_is_type(a, json_type_object))
        *out = json_object_get(a);
    json_object_put(meta);
    return 0;
}

/* ---- writing --------------------------------------------------------------------- */

static json_object *ext_obj(const char *name, json_object *cfg) {
    json_object *o = json_object_new_object();
    if (!o) {
        json_object_put(cfg);
        return NULL;
    }
    json_object_object_add(o, "name", json_object_new_string(name));
    if (cfg) json_object_object_add(o, "configuration", cfg);
    return o;
}

/* One codec as Zarr v3 JSON (a new reference; NULL on ENOMEM or for a codec
 * Zarr v3 cannot name). */
static json_object *codec_to_json(const lb__codec *c, lb_error *err);

static json_object *chain_to_json(const lb__chain *ch, lb_error *err) {
    json_object *list = json_object_new_array();
    for (int i = 0; list && i < ch->n; i++) {
        json_object *o = codec_to_json(&ch->codec[i], err);
        if (!o) {
            json_object_put(list);
            return NULL;
        }
        json_object_array_add(list, o);
    }
    return list;
}

static json_object *codec_to_json(const lb__codec *c, lb_error *err) {
    static const char *const shuffles[] = {"noshuffle", "shuffle", "bitshuffle"};
    json_object *cfg = json_object_new_object();
    if (!cfg) return NULL;
    switch (c->id) {
    case LB__CODEC_BYTES:
        json_object_object_add(cfg, "endian", json_object_new_string(c->big_endian ? "big" : "little"));
        return ext_obj("bytes", cfg);
    case LB__CODEC_TRANSPOSE: {
        json_object *ord = json_object_new_array();
        for (int k = 0; k < c->ndim; k++) json_object_array_add(ord, json_object_new_int(c->order[k]));
        json_object_object_add(cfg, "order", ord);
        return ext_obj("transpose", cfg);
    }
    case LB__CODEC_GZIP:
        json_object_object_add(cfg, "level", json_object_new_int(c->level));
        return ext_obj("gzip", cfg);
    case LB__CODEC_ZSTD:
        json_object_object_add(cfg, "level", json_object_new_int(c->level));
        json_object_object_add(cfg, "checksum", json_object_new_boolean(c->checksum));
        return ext_obj("zstd", cfg);
    case LB__CODEC_BLOSC:
        json_object_object_add(cfg, "cname", json_object_new_string(lb__blosc_cname(c->blosc_cname) ? lb__blosc_cname(c->blosc_cname) : "lz4"));
        json_object_object_add(cfg, "clevel", json_object_new_int(c->level));
        json_object_object_add(cfg, "shuffle", json_object_new_string(
                                   shuffles[c->blosc_shuffle < 0 ? 1 : c->blosc_shuffle]));
        json_object_object_add(cfg, "typesize", json_object_new_int(c->blosc_typesize));
        json_object_object_add(cfg, "blocksize", json_object_new_int(c->blosc_blocksize));
        return ext_obj("blosc", cfg);
    case LB__CODEC_CRC32C:
        json_object_put(cfg);
        return ext_obj("crc32c", NULL);
    case LB__CODEC_SHARDING: {
        json_object *shape = lb__json_int64_list(c->inner_shape, c->ndim, 0);
        json_object *inner = chain_to_json(c->inner, err);
        json_object *index = inner ? chain_to_json(c->index, err) : NULL;
        if (!shape || !inner || !index) {
            json_object_put(shape);
            json_object_put(inner);
            json_object_put(index);
            json_object_put(cfg);
            return NULL;
        }
        json_object_object_add(cfg, "chunk_shape", shape);
        json_object_object_add(cfg, "codecs", inner);
        json_object_object_add(cfg, "index_codecs", index);
        json_object_object_add(cfg, "index_location",
                               json_object_new_string(c->index_at_start ? "start" : "end"));
        return ext_obj("sharding_indexed", cfg);
    }
    default: {
        /* Compressors Zarr v3 has no core name for: numcodecs' own. */
        json_object_put(cfg);
        json_object *nc = lb__numcodecs_json(c, err);
        if (!nc) return NULL;
        char name[64];
        json_object *id = lb__json_get(nc, "id");
        snprintf(name, sizeof name, "numcodecs.%s", id ? json_object_get_string(id) : "?");
        json_object_object_del(nc, "id");
        return ext_obj(name, nc);
    }
    }
}

static const char *dtype_name(lb_dtype t) {
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (dtypes[i].dtype == t) return dtypes[i].name;
    return NULL;
}

static int zarr3_build(const lb__create_spec *s, json_object **out, lb_error *err) {
    *out = NULL;
    const char *dt = dtype_name(s->dtype);
    if (!dt) return lb__err(err, LB_EUNSUPPORTED, "Zarr v3 cannot store dtype %d", (int)s->dtype);
    if (s->order_f)
        return lb__err(err, LB_EUNSUPPORTED, "Zarr v3 output is written in C order");
    int sharded = 0;
    for (int k = 0; k < s->ndim; k++) sharded |= s->inner[k] != 0;
    lb__codec codecs[3], bytes, crc;
    int n = 0;
    lb__codec_init(&bytes, LB__CODEC_BYTES);
    bytes.big_endian = s->big_endian;
    codecs[n++] = bytes;
    if (s->compressor) codecs[n++] = *s->compressor;
    /* Zarr v3's blosc states the element size it shuffles (a positive
     * typesize; zarr-python 3 refuses 0): the one the encoder uses. */
    if (s->compressor && codecs[n - 1].id == LB__CODEC_BLOSC && codecs[n - 1].blosc_typesize <= 0)
        codecs[n - 1].blosc_typesize = (int)lb_dtype_size(s->dtype);
    lb__chain *inner = NULL, *index = NULL, *chain = NULL;
    lb__chunk_repr repr;
    int rc = lb__chunk_repr_set(&repr, s->ndim, s->chunks, lb_dtype_size(s->dtype), s->fill, err);
    if (rc) return rc;
    if (sharded) {
        lb__chunk_repr ir;
        if ((rc = lb__chunk_repr_set(&ir, s->ndim, s->inner, repr.itemsize, s->fill, err))) return rc;
        if ((rc = lb__chain_new(codecs, n, &ir, "codecs", &inner, err))) return rc;
        lb__codec idx[2];
        lb__codec_init(&idx[0], LB__CODEC_BYTES);
        lb__codec_init(&crc, LB__CODEC_CRC32C);
        idx[1] = crc;
        int64_t count = 1;
        for (int k = 0; k < s->ndim; k++) {
            if (s->inner[k] <= 0 || s->chunks[k] % s->inner[k] != 0) {
                lb__chain_free(inner);
                return lb__err(err, LB_EINVAL, "the shard shape must be a multiple of the inner "
                               "chunk shape (dimension %d: %lld and %lld)", k,
                               (long long)s->chunks[k], (long long)s->inner[k]);
            }
            count *= s->chunks[k] / s->inner[k];
        }
        int64_t ishape[2] = {count, 2};
        lb__chunk_repr xr;
        if ((rc = lb__chunk_repr_set(&xr, 2, ishape, 8, NULL, err)) ||
            (rc = lb__chain_new(idx, 2, &xr, "index_codecs", &index, err))) {
            lb__chain_free(inner);
            return rc;
        }
        lb__codec sh;
        lb__codec_init(&sh, LB__CODEC_SHARDING);
        sh.ndim = s->ndim;
        memcpy(sh.inner_shape, s->inner, sizeof sh.inner_shape);
        sh.inner = inner;
        sh.index = index;
        rc = lb__chain_new(&sh, 1, &repr, "codecs", &chain, err);
        lb__codec_clear(&sh); /* chain_new copied it */
    } else {
        rc = lb__chain_new(codecs, n, &repr, "codecs", &chain, err);
    }
    if (rc) return rc;

    json_object *m = json_object_new_object();
    json_object *codecs_json = chain_to_json(chain, err);
    lb__chain_free(chain);
    if (!m || !codecs_json) {
        json_object_put(m);
        json_object_put(codecs_json);
        return err && err->code ? err->code : lb__err(err, LB_ENOMEM, "out of memory");
    }
    json_object_object_add(m, "zarr_format", json_object_new_int(3));
    json_object_object_add(m, "node_type", json_object_new_string("array"));
    json_object_object_add(m, "shape", lb__json_int64_list(s->shape, s->ndim, 0));
    json_object_object_add(m, "data_type", json_object_new_string(dt));
    json_object *gcfg = json_object_new_object();
    json_object_object_add(gcfg, "chunk_shape", lb__json_int64_list(s->chunks, s->ndim, 0));
    json_object_object_add(m, "chunk_grid", ext_obj("regular", gcfg));
    json_object *kcfg = json_object_new_object();
    char sep[2] = {s->separator ? s->separator : '/', 0};
    json_object_object_add(kcfg, "separator", json_object_new_string(sep));
    json_object_object_add(m, "chunk_key_encoding", ext_obj("default", kcfg));
    json_object_object_add(m, "fill_value", lb__fill_to_json(s->dtype, s->fill));
    json_object_object_add(m, "codecs", codecs_json);
    json_object_object_add(m, "attributes", s->attrs ? lb__meta_sorted_copy(s->attrs, err)
                                                     : json_object_new_object());
    if (s->dim_names) {
        json_object *dn = json_object_new_array();
        for (int k = 0; k < s->ndim; k++)
            json_object_array_add(dn, s->dim_names[k] ? json_object_new_string(s->dim_names[k])
                                                      : NULL);
        json_object_object_add(m, "dimension_names", dn);
    }
    *out = m;
    return 0;
}

/* zarr.json groups from the container root down to the parent of `dir`
 * (where none exists yet). */
static int write_parents(lb__store *s, const char *dir, lb_error *err) {
    size_t clen = lb__path_container_len(dir), n = strlen(dir);
    if (clen == 0 || clen >= n) return 0;
    char *p = lb__strdup(dir, err);
    if (!p) return LB_ENOMEM;
    int rc = 0;
    for (size_t i = clen; i < n && !rc; i++) {
        if (i != clen && p[i] != '/') continue;
        if (i != clen && p[i - 1] == '/') continue;
        char c = p[i];
        p[i] = '\0';
        json_object *meta = NULL;
        rc = lb__meta_read(s, p, META, &meta, err);
        const char *t;
        if (!rc && meta && node_type(meta, &t) && strcmp(t, "array") == 0)
            rc = lb__err(err, LB_EEXIST, "%s: is an array; cannot create an array inside it", p);
        else if (!rc && !meta) {
            json_object *g = json_object_new_object();
            json_object_object_add(g, "zarr_format", json_object_new_int(3));
            json_object_object_add(g, "node_type", json_object_new_string("group"));
            json_object_object_add(g, "attributes", json_object_new_object());
            rc = lb__meta_write(s, p, META, g, 2, err);
            json_object_put(g);
        }
        json_object_put(meta);
        p[i] = c;
    }
    free(p);
    return rc;
}

static int zarr3_create(lb__store *s, const char *dir, const lb__create_spec *spec, lb_error *err) {
    json_object *m = NULL;
    int rc = zarr3_build(spec, &m, err);
    if (!rc) rc = write_parents(s, dir, err);
    if (!rc) rc = lb__meta_write(s, dir, META, m, 2, err);
    json_object_put(m);
    return rc;
}

static int zarr3_create_group(lb__store *s, const char *dir, json_object *attrs, lb_error *err) {
    int rc = write_parents(s, dir, err);
    if (rc) return rc;
    json_object *g = json_object_new_object();
    if (!g) return lb__err(err, LB_ENOMEM, "out of memory");
    json_object_object_add(g, "zarr_format", json_object_new_int(3));
    json_object_object_add(g, "node_type", json_object_new_string("group"));
    json_object_object_add(g, "attributes", attrs ? json_object_get(attrs) : json_object_new_object());
    rc = lb__meta_write(s, dir, META, g, 2, err);
    json_object_put(g);
    return rc;
}

static int zarr3_set_attrs(lb__store *s, const char *dir, lb__array_meta *m, json_object *attrs,
                           lb_error *err) {
    json_object *copy = lb__meta_sorted_copy(m->meta, err);
    json_object *a = attrs ? lb__meta_sorted_copy(attrs, err) : json_object_new_object();
    if (!copy || !a) {
        json_object_put(copy);
        json_object_put(a);
        return lb__err(err, LB_ENOMEM, "out of memory");
    }
    json_object_object_add(copy, "attributes", json_object_get(a));
    int rc = lb__meta_write(s, dir, META, copy, 2, err);
    if (rc) {
        json_object_put(copy);
        json_object_put(a);
        return rc;
    }
    json_object_put(m->meta);
    m->meta = copy;
    json_object_put(m->attrs);
    m->attrs = a;
    return 0;
}

static json_object *zarr3_codec_json(const lb__array_meta *m, lb_error *err) {
    return chain_to_json(m->chain, err);
}

static json_object *zarr3_codec_words(const lb__codec *c, lb_error *err) {
    if (c->id == LB__CODEC_RAW) return NULL;
    return codec_to_json(c, err);
}

/* A user's codec as Zarr v3 JSON: one bytes→bytes codec object. */
static int zarr3_parse_codec(json_object *o, const char *where, lb__codec *out, lb_error *err) {
    lb__chunk_repr r;
    int64_t one = 1;
    int rc = lb__chunk_repr_set(&r, 1, &one, 1, NULL, err);
    if (rc) return rc;
    rc = parse_codec(o, where, &r, 0, out, err);
    if (rc) return rc;
    if (lb__codec_kind_of(out->id) != LB__KIND_BYTES_BYTES) {
        lb__codec_clear(out);
        return lb__err(err, LB_EINVAL, "%s: expected a compressor (a bytes→bytes codec such as "
                       "zstd, gzip, blosc), found %s", where, lb__codec_name(out->id));
    }
    return 0;
}

const lb__format lb__format_zarr3 = {
    .name = "zarr3",
    .title = "Zarr v3",
    .meta_file = META,
    .attrs_file = META,
    .ome = 1,
    .probe = zarr3_probe,
    .probe_group = zarr3_probe_group,
    .open = zarr3_open,
    .chunk_key = zarr3_chunk_key,
    .group_attrs = zarr3_group_attrs,
    .build = zarr3_build,
    .create = zarr3_create,
    .create_group = zarr3_create_group,
    .set_attrs = zarr3_set_attrs,
    .codec_json = zarr3_codec_json,
    .codec_words = zarr3_codec_words,
    .parse_codec = zarr3_parse_codec,
};
