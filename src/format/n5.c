/*
 * n5.c — the N5 format: attributes.json (dimensions and blockSize reversed
 * into C order; the dataset keys and the user attributes share the file),
 * block keys (the last dimension's index first), groups marked with
 * "n5": "2.0.0", and its blocks as one codec: n5_block{compression}.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "codec/blosc.h"
#include "core/json.h"
#include "core/path.h"
#include "format/common.h"
#include "format/format.h"
#include "format/numcodecs.h"

#define META "attributes.json"
#define N5_TYPES "raw, gzip, bzip2, xz, lz4, blosc, zstd"

static const char *const dataset_keys[] = {"dimensions", "blockSize", "dataType", "compression",
                                           "compressionType"};

static int is_dataset_key(const char *key) {
    for (size_t i = 0; i < sizeof dataset_keys / sizeof *dataset_keys; i++)
        if (strcmp(key, dataset_keys[i]) == 0) return 1;
    return 0;
}

static const struct {
    const char *name;
    lb_dtype dtype;
    size_t size;
} types[] = {
    {"uint8", LB_DTYPE_UINT8, 1},     {"uint16", LB_DTYPE_UINT16, 2},
    {"uint32", LB_DTYPE_UINT32, 4},   {"uint64", LB_DTYPE_UINT64, 8},
    {"int8", LB_DTYPE_INT8, 1},       {"int16", LB_DTYPE_INT16, 2},
    {"int32", LB_DTYPE_INT32, 4},     {"int64", LB_DTYPE_INT64, 8},
    {"float32", LB_DTYPE_FLOAT32, 4}, {"float64", LB_DTYPE_FLOAT64, 8},
};

/* ---- compression --------------------------------------------------------------- */

static int codec_from_n5(json_object *compression, const char *where, lb__codec *out,
                         lb_error *err) {
    lb__codec c;
    const char *type = NULL;
    json_object *o = NULL; /* the parameters object, NULL for the legacy string */
    char path[512];
    int rc;
    if (compression && json_object_is_type(compression, json_type_string)) {
        type = json_object_get_string(compression);
        snprintf(path, sizeof path, "%s", where);
    } else if (compression && json_object_is_type(compression, json_type_object)) {
        json_object *tv = NULL;
        o = compression;
        snprintf(path, sizeof path, "%s.type", where);
        if ((rc = lb__json_require(o, "type", where, &tv, err))) return rc;
        if ((rc = lb__json_str(tv, path, &type, err))) return rc;
    } else {
        return lb__err(err, LB_EFORMAT, "%s: expected a compression object, found %s", where,
                       compression ? lb__json_type_name(compression) : "null");
    }

    /* Absent keys take the Java defaults; the legacy string form has no
     * parameters at all (params == NULL). */
    json_object *params = o;
    rc = 0;
    if (strcmp(type, "raw") == 0) {
        lb__codec_init(&c, LB__CODEC_RAW);
    } else if (strcmp(type, "gzip") == 0) {
        int use_zlib = 0;
        lb__codec_init(&c, LB__CODEC_GZIP);
        c.level = -1;
        if (params) {
            rc = lb__cfg_int(params, "level", where, -1, 9, &c.level, err);
            if (!rc) rc = lb__cfg_bool(params, "useZlib", where, &use_zlib, err);
        }
        /* gzip with useZlib is a zlib stream: decode it as one. */
        if (use_zlib) {
            c.id = LB__CODEC_ZLIB;
            c.n5_use_zlib = 1;
        }
    } else if (strcmp(type, "bzip2") == 0) {
        lb__codec_init(&c, LB__CODEC_BZ2);
        if (params) rc = lb__cfg_int(params, "blockSize", where, 1, 9, &c.n5_block_size, err);
        c.level = c.n5_block_size;
    } else if (strcmp(type, "xz") == 0) {
        lb__codec_init(&c, LB__CODEC_XZ);
        if (params) rc = lb__cfg_int(params, "preset", where, 0, 9, &c.level, err);
    } else if (strcmp(type, "lz4") == 0) {
        lb__codec_init(&c, LB__CODEC_LZ4_N5);
        if (params)
            rc = lb__cfg_int(params, "blockSize", where, 64, 1 << 25,
                         &c.n5_block_size, err);
    } else if (strcmp(type, "blosc") == 0) {
        lb__codec_init(&c, LB__CODEC_BLOSC);
        if (params) {
            int nthreads = 1;
            rc = lb__numcodecs_blosc_fields(params, where, &c, err);
            if (!rc) rc = lb__cfg_int(params, "nthreads", where, 0, INT_MAX, &nthreads, err);
        }
    } else if (strcmp(type, "zstd") == 0) {
        lb__codec_init(&c, LB__CODEC_ZSTD);
        if (params) {
            rc = lb__cfg_int(params, "level", where, INT_MIN, INT_MAX, &c.level, err);
            if (!rc) rc = lb__cfg_bool(params, "useChecksums", where, &c.checksum, err);
        }
    } else {
        return lb__err(err, LB_EUNSUPPORTED,
                       "%s: unsupported N5 compression \"%s\" (supported: " N5_TYPES ")", path,
                       type);
    }
    if (rc) return rc;
    *out = c;
    return 0;
}


static json_object *codec_to_n5(const lb__codec *c, lb_error *err) {
    if (c->id == LB__CODEC_LZ4) {
        lb__err(err, LB_EUNSUPPORTED,
                "numcodecs' lz4 framing cannot be written as N5 compression; N5's lz4 is the "
                "lz4-java block stream");
        return NULL;
    }
    if (c->id == LB__CODEC_BLOSC && c->blosc_shuffle < 0) {
        lb__err(err, LB_EUNSUPPORTED,
                "blosc shuffle -1 (auto) cannot be written as N5 compression; use 0, 1 or 2");
        return NULL;
    }
    json_object *o = json_object_new_object();
    int bad = 0;
    if (!o) return lb__jput_finish(NULL, 1, err);
    switch (c->id) {
    case LB__CODEC_RAW: lb__jput_str(o, "type", "raw", &bad); break;
    case LB__CODEC_GZIP:
    case LB__CODEC_ZLIB:
        lb__jput_str(o, "type", "gzip", &bad);
        lb__jput_int(o, "level", c->level, &bad);
        lb__jput_bool(o, "useZlib", c->id == LB__CODEC_ZLIB, &bad);
        break;
    case LB__CODEC_BZ2:
        lb__jput_str(o, "type", "bzip2", &bad);
        lb__jput_int(o, "blockSize", c->level, &bad);
        break;
    case LB__CODEC_XZ:
        lb__jput_str(o, "type", "xz", &bad);
        lb__jput_int(o, "preset", c->level, &bad);
        break;
    case LB__CODEC_LZ4_N5:
        lb__jput_str(o, "type", "lz4", &bad);
        lb__jput_int(o, "blockSize", c->n5_block_size, &bad);
        break;
    case LB__CODEC_BLOSC:
        lb__jput_str(o, "type", "blosc", &bad);
        lb__jput_str(o, "cname", (lb__blosc_cname(c->blosc_cname) ? lb__blosc_cname(c->blosc_cname) : "lz4"), &bad);
        lb__jput_int(o, "clevel", c->level, &bad);
        lb__jput_int(o, "shuffle", c->blosc_shuffle, &bad);
        lb__jput_int(o, "blocksize", c->blosc_blocksize, &bad);
        lb__jput_int(o, "nthreads", 1, &bad);
        break;
    case LB__CODEC_ZSTD:
        lb__jput_str(o, "type", "zstd", &bad);
        lb__jput_int(o, "level", c->level, &bad);
        break;
    default:
        json_object_put(o);
        lb__err(err, LB_EUNSUPPORTED, "%s cannot be written as N5 compression",
                lb__codec_name(c->id));
        return NULL;
    }
    return lb__jput_finish(o, bad, err);
}

/* ---- attributes.json ----------------------------------------------------------- */

static int parse_attributes(lb__array_meta *d, json_object *meta, const char *where,
                            lb__codec *comp, lb_error *err) {
    if (!json_object_is_type(meta, json_type_object))
        return lb__err(err, LB_EFORMAT, "%s: expected a JSON object, found %s", where,
                       lb__json_type_name(meta));
    int64_t dims[LB_MAX_DIMS], block[LB_MAX_DIMS];
    int nd = 0, nb = 0;
    int rc = lb__meta_dims(meta, "dimensions", where, dims, &nd, err);
    if (rc) return rc;
    if ((rc = lb__meta_dims(meta, "blockSize", where, block, &nb, err))) return rc;
    if (nb != nd)
        return lb__err(err, LB_EFORMAT, "%s: blockSize: has %d entries, dimensions has %d", where,
                       nb, nd);
    if (nd == 0)
        return lb__err(err, LB_EUNSUPPORTED, "%s: dimensions: 0-dimensional N5 datasets are not supported",
                       where);
    d->ndim = nd;
    /* N5 lists the fastest dimension first: reversed, it is C order, and the
     * block's element order (first N5 dimension fastest) is C order too. */
    for (int k = 0; k < nd; k++) {
        d->shape[k] = dims[nd - 1 - k];
        d->chunks[k] = block[nd - 1 - k];
    }

    json_object *o;
    if ((rc = lb__json_require(meta, "dataType", where, &o, err))) return rc;
    if (!json_object_is_type(o, json_type_string))
        return lb__err(err, LB_EFORMAT, "%s: dataType: expected a string, found %s", where,
                       lb__json_type_name(o));
    const char *tn = json_object_get_string(o);
    size_t ti;
    for (ti = 0; ti < sizeof types / sizeof *types; ti++)
        if (strcmp(tn, types[ti].name) == 0) break;
    if (ti == sizeof types / sizeof *types) {
        if (strcmp(tn, "object") == 0 || strcmp(tn, "string") == 0)
            return lb__err(err, LB_EUNSUPPORTED, "%s: dataType: \"%s\" is not supported", where, tn);
        return lb__err(err, LB_EFORMAT,
                       "%s: dataType: unknown data type \"%s\" (expected uint8..uint64, int8..int64, float32, float64)",
                       where, tn);
    }
    d->dtype = types[ti].dtype;
    d->itemsize = types[ti].size;
    if ((rc = lb__meta_check_geometry(d->ndim, d->shape, d->chunks, d->itemsize, where,
                                      "dimensions", "blockSize", 1, err)))
        return rc;

    lb__codec_init(comp, LB__CODEC_RAW);
    char w[1200];
    json_object *c = lb__json_get(meta, "compression");
    if (c) {
        snprintf(w, sizeof w, "%s: compression", where);
        if ((rc = codec_from_n5(c, w, comp, err))) return rc;
    } else if ((c = lb__json_get(meta, "compressionType"))) {
        snprintf(w, sizeof w, "%s: compressionType", where);
        if ((rc = codec_from_n5(c, w, comp, err))) return rc;
    } else {
        comp->id = LB__CODEC_RAW; /* N5 before 1.0 defaulted to raw */
    }

    d->key_separator = '/';
    d->key_reversed = 1;
    d->reverse_attrs = 1;
    memset(d->fill, 0, sizeof d->fill); /* N5 has no fill value: 0 */

    json_object *attrs = json_object_new_object();
    if (!attrs) return lb__err(err, LB_ENOMEM, "out of memory");
    json_object_object_foreach(meta, key, val) {
        if (is_dataset_key(key)) continue;
        if (json_object_object_add(attrs, key, json_object_get(val)) != 0) {
            json_object_put(val);
            json_object_put(attrs);
            return lb__err(err, LB_ENOMEM, "out of memory");
        }
    }
    json_object_put(d->attrs);
    d->attrs = attrs;
    return 0;
}

static int make_chain(lb__array_meta *m, const lb__codec *comp, const char *where,
                      lb_error *err) {
    lb__codec block;
    lb__codec_init(&block, LB__CODEC_N5_BLOCK);
    int rc = 0;
    if (comp->id != LB__CODEC_RAW && !(block.compression = lb__codec_dup(comp, err)))
        return LB_ENOMEM;
    lb__chunk_repr repr;
    rc = lb__chunk_repr_set(&repr, m->ndim, m->chunks, m->itemsize, m->fill, err);
    if (!rc) rc = lb__chain_new(&block, 1, &repr, where, &m->chain, err);
    lb__codec_clear(&block);
    return rc;
}

static json_object *read_attributes(lb__store *s, const char *dir, lb_error *err, int *rc) {
    json_object *m = NULL;
    *rc = lb__meta_read(s, dir, META, &m, err);
    return m;
}

static int n5_probe(lb__store *s, const char *dir, lb_error *err) {
    int rc;
    lb_error local = {0};
    json_object *m = read_attributes(s, dir, &local, &rc);
    /* An attributes.json that does not parse: open says what is wrong. */
    int yes = rc == LB_EFORMAT || (m && lb__json_get(m, "dimensions") != NULL);
    json_object_put(m);
    (void)err;
    return yes;
}

static int n5_probe_group(lb__store *s, const char *dir) {
    int rc;
    json_object *m = read_attributes(s, dir, NULL, &rc);
    int yes = m && !lb__json_get(m, "dimensions");
    json_object_put(m);
    return yes;
}

static int n5_open(lb__store *s, const char *dir, lb__array_meta *m, lb_error *err) {
    memset(m, 0, sizeof *m);
    char where[1200];
    snprintf(where, sizeof where, "%s/%s", dir, META);
    lb__codec comp;
    int rc;
    m->meta = read_attributes(s, dir, err, &rc);
    if (!rc && !m->meta) rc = lb__err(err, LB_ENOTFOUND, "%s: not found", where);
    if (!rc) rc = parse_attributes(m, m->meta, where, &comp, err);
    if (!rc) rc = make_chain(m, &comp, where, err);
    if (rc) lb__array_meta_clear(m);
    return rc;
}

static int n5_chunk_key(const lb__array_meta *d, const int64_t *cidx, char *buf, size_t size) {
    size_t len = 0;
    for (int i = d->ndim - 1; i >= 0; i--) {
        char part[32];
        int k = i != d->ndim - 1 ? snprintf(part, sizeof part, "/%lld", (long long)cidx[i])
                                 : snprintf(part, sizeof part, "%lld", (long long)cidx[i]);
        if (len + (size_t)k < size) memcpy(buf + len, part, (size_t)k);
        len += (size_t)k;
    }
    if (size) buf[len < size ? len : size - 1] = '\0';
    return (int)len;
}

static int n5_group_attrs(lb__store *s, const char *dir, json_object **out, lb_error *err) {
    return lb__meta_read(s, dir, META, out, err);
}

/* ---- writing --------------------------------------------------------------------- */

static int n5_build(const lb__create_spec *s, json_object **out, lb_error *err) {
    *out = NULL;
    for (int k = 0; k < s->ndim; k++)
        if (s->inner[k])
            return lb__err(err, LB_EUNSUPPORTED, "N5 has no shards (use --format zarr3)");
    if (s->compressor) {
        int crc = lb__codec_check_encode(s->compressor, err);
        if (crc) return crc;
    }
    size_t ti;
    for (ti = 0; ti < 8; ti++)
        if (types[ti].dtype == s->dtype) break;
    if (ti == 8)
        return lb__err(err, LB_EUNSUPPORTED, "cannot create an N5 dataset of this dtype (read only)");
    if (s->ndim < 1 || s->ndim > LB_MAX_DIMS)
        return lb__err(err, LB_EINVAL, "an N5 dataset needs 1 to %d dimensions, not %d",
                       LB_MAX_DIMS, s->ndim);
    for (size_t i = 0; i < sizeof s->fill; i++)
        if (s->fill[i])
            return lb__err(err, LB_EUNSUPPORTED, "N5 has no fill value (it is always 0)");
    if (s->attrs && !json_object_is_type(s->attrs, json_type_object))
        return lb__err(err, LB_EINVAL, "attributes must be a JSON object");

    json_object *m = json_object_new_object();
    lb__codec raw;
    lb__codec_init(&raw, LB__CODEC_RAW);
    json_object *comp = codec_to_n5(s->compressor ? s->compressor : &raw, err);
    if (!m || !comp) {
        json_object_put(m);
        json_object_put(comp);
        if (!comp && err && err->code) return err->code;
        return lb__err(err, LB_ENOMEM, "out of memory building metadata");
    }
    int rc = 0;
    if (s->attrs) {
        json_object_object_foreach(s->attrs, key, val) {
            if (is_dataset_key(key)) {
                rc = lb__err(err, LB_EINVAL, "attribute \"%s\" is reserved by N5", key);
                break;
            }
            if (json_object_object_add(m, key, json_object_get(val)) != 0) {
                json_object_put(val);
                rc = lb__err(err, LB_ENOMEM, "out of memory building metadata");
                break;
            }
        }
    }
    struct {
        const char *key;
        json_object *val;
    } add[] = {
        {"blockSize", lb__json_int64_list(s->chunks, s->ndim, 1)},
        {"compression", comp},
        {"dataType", json_object_new_string(types[ti].name)},
        {"dimensions", lb__json_int64_list(s->shape, s->ndim, 1)},
    };
    for (size_t i = 0; i < sizeof add / sizeof *add; i++) {
        if (!rc && (!add[i].val || json_object_object_add(m, add[i].key, add[i].val) != 0))
            rc = lb__err(err, LB_ENOMEM, "out of memory building metadata");
        else if (!rc)
            continue;
        json_object_put(add[i].val);
    }
    json_object *sorted = rc ? NULL : lb__meta_sorted_copy(m, err);
    json_object_put(m);
    if (rc) return rc;
    if (!sorted) return err && err->code ? err->code : LB_ENOMEM;
    *out = sorted;
    return 0;
}

/* Make `dir` an N5 group: attributes.json gets "n5": "2.0.0" unless it has
 * a version already (and `extra`'s keys when given); other attributes are
 * kept. */
static int ensure_group(lb__store *st, const char *dir, json_object *extra, lb_error *err) {
    char *p = lb__path_join(dir, META, err);
    if (!p) return LB_ENOMEM;
    json_object *a = NULL;
    lb__store_cleanup_key(st, p); /* a killed writer's */
    int rc = lb__meta_read(st, dir, META, &a, err);
    if (!rc && !a && !(a = json_object_new_object())) rc = lb__err(err, LB_ENOMEM, "out of memory");
    if (!rc && lb__json_get(a, "dimensions"))
        rc = lb__err(err, LB_EEXIST, "%s: is a dataset; cannot create a dataset inside it", dir);
    int changed = 0;
    if (!rc && !lb__json_get(a, "n5")) {
        json_object *v = json_object_new_string("2.0.0");
        if (!v || json_object_object_add(a, "n5", v) != 0) {
            json_object_put(v);
            rc = lb__err(err, LB_ENOMEM, "out of memory");
        }
        changed = 1;
    }
    if (!rc && extra) {
        json_object_object_foreach(extra, key, val) {
            json_object_object_add(a, key, json_object_get(val));
            changed = 1;
        }
    }
    if (!rc && changed) {
        json_object *sorted = lb__meta_sorted_copy(a, err);
        rc = sorted ? lb__meta_write(st, dir, META, sorted, 4, err) : LB_ENOMEM;
        json_object_put(sorted);
    }
    json_object_put(a);
    free(p);
    return rc;
}

/* The N5 groups from the container root down to the parent of `path`. */
static int write_groups(lb__store *st, const char *path, lb_error *err) {
    size_t clen = lb__path_container_len(path);
    size_t n = strlen(path);
    int rc = 0;
    if (clen == 0 || clen >= n) return 0;
    char *p = lb__strdup(path, err);
    if (!p) return LB_ENOMEM;
    for (size_t i = clen; i < n && !rc; i++) {
        if (i != clen && p[i] != '/') continue;
        if (i != clen && p[i - 1] == '/') continue;
        char c = p[i];
        p[i] = '\0';
        rc = ensure_group(st, p, NULL, err);
        p[i] = c;
    }
    free(p);
    return rc;
}

static int n5_create(lb__store *st, const char *path, const lb__create_spec *spec, lb_error *err) {
    json_object *attributes = NULL, *own = NULL;
    int rc = n5_build(spec, &attributes, err);
    if (rc) return rc;
    size_t clen = lb__path_container_len(path), n = strlen(path);
    if (clen > 0 && clen < n) {
        rc = write_groups(st, path, err);
    } else if (clen == n && !lb__json_get(attributes, "n5")) {
        /* The dataset is the container root: it carries the version too. */
        own = lb__meta_sorted_copy(attributes, err);
        json_object *v = json_object_new_string("2.0.0");
        if (!own || !v || json_object_object_add(own, "n5", v) != 0) {
            json_object_put(v);
            rc = lb__err(err, LB_ENOMEM, "out of memory");
        } else {
            json_object *sorted = lb__meta_sorted_copy(own, err);
            json_object_put(attributes);
            attributes = sorted;
            if (!sorted) rc = lb__err(err, LB_ENOMEM, "out of memory");
        }
    }
    if (!rc) rc = lb__meta_write(st, path, META, attributes, 4, err);
    json_object_put(own);
    json_object_put(attributes);
    return rc;
}

static int n5_create_group(lb__store *s, const char *dir, json_object *attrs, lb_error *err) {
    int rc = write_groups(s, dir, err);
    return rc ? rc : ensure_group(s, dir, attrs, err);
}

static int n5_set_attrs(lb__store *st, const char *dir, lb__array_meta *m, json_object *attrs,
                        lb_error *err) {
    json_object *user = attrs ? lb__meta_sorted_copy(attrs, err) : json_object_new_object();
    if (!user) return err && err->code ? err->code : LB_ENOMEM;
    /* One file holds both: keep the dataset keys, replace the rest. */
    int rc = 0;
    json_object *merged = json_object_new_object();
    if (!merged) rc = lb__err(err, LB_ENOMEM, "out of memory");
    if (!rc) {
        json_object_object_foreach(user, key, val) {
            if (is_dataset_key(key)) {
                rc = lb__err(err, LB_EINVAL, "%s: attribute \"%s\" is reserved by N5", dir, key);
                break;
            }
            json_object_object_add(merged, key, json_object_get(val));
        }
    }
    if (!rc) {
        json_object_object_foreach(m->meta, key, val) {
            if (is_dataset_key(key)) json_object_object_add(merged, key, json_object_get(val));
        }
    }
    json_object *sorted = rc ? NULL : lb__meta_sorted_copy(merged, err);
    if (!rc && !sorted) rc = err && err->code ? err->code : LB_ENOMEM;
    if (!rc) rc = lb__meta_write(st, dir, META, sorted, 4, err);
    json_object_put(merged);
    if (rc) {
        json_object_put(sorted);
        json_object_put(user);
        return rc;
    }
    json_object_put(m->meta);
    m->meta = sorted;
    json_object_put(m->attrs);
    m->attrs = user;
    return 0;
}

static json_object *n5_codec_json(const lb__array_meta *m, lb_error *err) {
    const lb__codec *b = &m->chain->codec[m->chain->ab];
    lb__codec raw;
    lb__codec_init(&raw, LB__CODEC_RAW);
    return codec_to_n5(b->compression ? b->compression : &raw, err);
}

static int n5_parse_codec(json_object *o, const char *where, lb__codec *out, lb_error *err) {
    return codec_from_n5(o, where, out, err);
}

const lb__format lb__format_n5 = {
    .name = "n5",
    .title = "N5",
    .meta_file = META,
    .attrs_file = META,
    .n5_conventions = 1,
    .probe = n5_probe,
    .probe_group = n5_probe_group,
    .open = n5_open,
    .chunk_key = n5_chunk_key,
    .group_attrs = n5_group_attrs,
    .build = n5_build,
    .create = n5_create,
    .create_group = n5_create_group,
    .set_attrs = n5_set_attrs,
    .codec_json = n5_codec_json,
    .codec_words = codec_to_n5,
    .parse_codec = n5_parse_codec,
};
