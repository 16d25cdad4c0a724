/*
 * zarr2.c — the Zarr v2 format: .zarray (zarr-python's words), .zattrs,
 * .zgroup parents, chunk keys, and its chunks as a codec chain:
 * [transpose when order is "F"] bytes (the dtype's byte order) [compressor].
 */
#include "format/format.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/json.h"
#include "core/path.h"
#include "format/common.h"
#include "format/numcodecs.h"

#define ZARRAY ".zarray"
#define ZATTRS ".zattrs"
#define ZGROUP ".zgroup"

#define SUPPORTED_DTYPES \
    "|u1 <u2 <u4 <u8 |i1 <i2 <i4 <i8 (or '>'), |b1, <f4 <f8 (read only)"

static int parse_dtype(json_object *o, const char *where, lb__array_meta *d, int *big_endian,
                       lb_error *err) {
    if (json_object_is_type(o, json_type_array))
        return lb__err(err, LB_EUNSUPPORTED,
                       "%s: dtype: structured dtypes are not supported (supported: %s)",
                       where, SUPPORTED_DTYPES);
    if (!json_object_is_type(o, json_type_string))
        return lb__err(err, LB_EFORMAT, "%s: dtype: expected a NumPy type string, found %s",
                       where, lb__json_type_name(o));
    const char *s = json_object_get_string(o);
    size_t n = strlen(s);
    int size = 0;
    int digits_ok = n >= 3 && n <= 6;
    for (size_t i = 2; digits_ok && i < n; i++) {
        if (s[i] < '0' || s[i] > '9') digits_ok = 0;
        else size = size * 10 + (s[i] - '0');
    }
    if (n < 2 || !strchr("<>|=", s[0]) || !strchr("biufcmMOSUV", s[1]))
        return lb__err(err, LB_EFORMAT, "%s: dtype: \"%s\" is not a NumPy type string", where, s);
    if (!digits_ok) size = 0; /* e.g. "<M8[ns]": a NumPy type, not ours */
    char kind = s[1];
    lb_dtype dt = LB_DTYPE_UINT8;
    int ok = 1;
    switch (kind) {
    case 'u':
    case 'i': {
        int u = kind == 'u';
        switch (size) {
        case 1: dt = u ? LB_DTYPE_UINT8 : LB_DTYPE_INT8; break;
        case 2: dt = u ? LB_DTYPE_UINT16 : LB_DTYPE_INT16; break;
        case 4: dt = u ? LB_DTYPE_UINT32 : LB_DTYPE_INT32; break;
        case 8: dt = u ? LB_DTYPE_UINT64 : LB_DTYPE_INT64; break;
        default: ok = 0;
        }
        break;
    }
    case 'b':
        dt = LB_DTYPE_BOOL;
        ok = size == 1;
        break;
    case 'f':
        dt = size == 4 ? LB_DTYPE_FLOAT32 : LB_DTYPE_FLOAT64;
        ok = size == 4 || size == 8;
        break;
    default:
        ok = 0;
    }
    /* "=" (native) never belongs in a file: the reader cannot know it. */
    if (!ok || s[0] == '=')
        return lb__err(err, LB_EUNSUPPORTED, "%s: dtype: \"%s\" is not supported (supported: %s)",
                       where, s, SUPPORTED_DTYPES);
    if (size > 1 && s[0] == '|')
        return lb__err(err, LB_EFORMAT,
                       "%s: dtype: \"%s\" needs a byte order ('<' or '>')", where, s);
    d->dtype = dt;
    d->itemsize = (size_t)size;
    /* Writers in the wild emit "<u1"/">u1": byte order means nothing there. */
    *big_endian = size > 1 && s[0] == '>';
    return 0;
}

/* ---- chunk key layout of arrays without "dimension_separator" -------------------- */

/* A flat chunk key of an ndim-dimensional array: ndim digit runs joined by
 * '.' ("3.0.12"). */
static int is_dotted_key(const char *name, int ndim) {
    int parts = 0;
    const char *p = name;
    for (;;) {
        if (*p < '0' || *p > '9') return 0;
        while (*p >= '0' && *p <= '9') p++;
        parts++;
        if (*p == '\0') return parts == ndim;
        if (*p != '.') return 0;
        p++;
    }
}

static int is_digits(const char *name) {
    if (!*name) return 0;
    for (; *name; name++)
        if (*name < '0' || *name > '9') return 0;
    return 1;
}

typedef struct layout_scan {
    int ndim;
    char flat[256], nested[256];
} layout_scan;

static int scan_entry(void *user, const char *name, int is_dir) {
    layout_scan *l = user;
    if (!is_dir && !l->flat[0] && is_dotted_key(name, l->ndim))
        snprintf(l->flat, sizeof l->flat, "%s", name);
    else if (is_dir && !l->nested[0] && is_digits(name))
        snprintf(l->nested, sizeof l->nested, "%s/", name);
    return l->flat[0] && l->nested[0]; /* both seen: stop */
}

/* For a .zarray without "dimension_separator" (zarr-python before 2.8 kept
 * the layout in the store, not the metadata: NestedDirectoryStore wrote
 * "0/0/0"): '/' when there are digit-named sub-directories, '.' otherwise.
 * Both kinds present: LB_EFORMAT naming the path and one key of each.
 * A store that cannot be listed (http, s3) leaves the separator 0: the
 * dataset reader then tells the layout from the first chunk it finds. */
static int detect_separator(lb__store *s, const char *dir, lb__array_meta *m, lb_error *err) {
    m->key_separator = '.';
    if (m->ndim < 2) return 0; /* both layouts give the same keys */
    layout_scan l;
    memset(&l, 0, sizeof l);
    l.ndim = m->ndim;
    lb_error local = {0};
    int rc = lb__store_list(s, dir, scan_entry, &l, &local);
    if (rc == LB_EUNSUPPORTED) {
        m->key_separator = 0;
        return 0;
    }
    if (rc && err) *err = local;
    if (rc) return lb__err_prefix(err, "cannot list its chunks");
    if (l.flat[0] && l.nested[0])
        return lb__err(err, LB_EFORMAT,
                       "%s: chunks are stored both as flat keys (\"%s\") and in nested "
                       "directories (\"%s\"), and .zarray has no dimension_separator to say "
                       "which layout is meant; add \"dimension_separator\": \".\" or \"/\" to "
                       ".zarray",
                       dir, l.flat, l.nested);
    m->key_separator = l.nested[0] ? '/' : '.';
    return 0;
}

/* ---- the chain ---------------------------------------------------------------------- */

static int make_chain(lb__array_meta *m, int order_f, int big_endian, const lb__codec *comp,
                      const char *where, lb_error *err) {
    lb__codec codecs[3];
    int n = 0;
    if (order_f && m->ndim > 1) {
        lb__codec_init(&codecs[n], LB__CODEC_TRANSPOSE);
        codecs[n].ndim = m->ndim;
        for (int k = 0; k < m->ndim; k++) codecs[n].order[k] = m->ndim - 1 - k;
        n++;
    }
    lb__codec_init(&codecs[n], LB__CODEC_BYTES);
    codecs[n++].big_endian = big_endian;
    if (comp && comp->id != LB__CODEC_RAW) codecs[n++] = *comp;
    lb__chunk_repr repr;
    int rc = lb__chunk_repr_set(&repr, m->ndim, m->chunks, m->itemsize, m->fill, err);
    if (rc) return lb__err_prefix(err, "%s", where);
    return lb__chain_new(codecs, n, &repr, where, &m->chain, err);
}

/* ---- .zarray ------------------------------------------------------------------------- */

static int parse_zarray(lb__array_meta *d, json_object *meta, const char *where, int *order_f,
                        int *big_endian, lb__codec *comp, lb_error *err) {
    if (!json_object_is_type(meta, json_type_object))
        return lb__err(err, LB_EFORMAT, "%s: expected a JSON object, found %s", where,
                       lb__json_type_name(meta));
    json_object *o;
    int64_t v;
    char w[1200];
    int rc = lb__json_require(meta, "zarr_format", where, &o, err);
    if (rc) return rc;
    snprintf(w, sizeof w, "%s: zarr_format", where);
    if ((rc = lb__json_int64(o, w, &v, err))) return rc;
    if (v != 2) return lb__err(err, LB_EFORMAT, "%s: expected 2, found %lld", w, (long long)v);

    int nshape = 0, nchunks = 0;
    if ((rc = lb__meta_dims(meta, "shape", where, d->shape, &nshape, err))) return rc;
    if ((rc = lb__meta_dims(meta, "chunks", where, d->chunks, &nchunks, err))) return rc;
    if (nchunks != nshape)
        return lb__err(err, LB_EFORMAT, "%s: chunks: has %d entries, shape has %d", where,
                       nchunks, nshape);
    d->ndim = nshape;

    if ((rc = lb__json_require(meta, "dtype", where, &o, err))) return rc;
    if ((rc = parse_dtype(o, where, d, big_endian, err))) return rc;
    if ((rc = lb__meta_check_geometry(d->ndim, d->shape, d->chunks, d->itemsize, where, "shape",
                                      "chunks", 0, err)))
        return rc;

    if ((rc = lb__json_require(meta, "compressor", where, &o, err))) return rc;
    snprintf(w, sizeof w, "%s: compressor", where);
    if ((rc = lb__numcodecs_parse(o, NULL, w, comp, err))) return rc;

    if ((rc = lb__json_require(meta, "fill_value", where, &o, err))) return rc;
    snprintf(w, sizeof w, "%s: fill_value", where);
    memset(d->fill, 0, sizeof d->fill);
    d->fill_null = o == NULL; /* null: uninitialised, read as 0 */
    if (o && (rc = lb__fill_parse(o, d->dtype, w, d->fill, err))) return rc;

    if ((rc = lb__json_require(meta, "order", where, &o, err))) return rc;
    const char *s = json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
    if (!s || (strcmp(s, "C") != 0 && strcmp(s, "F") != 0))
        return lb__err(err, LB_EFORMAT, "%s: order: expected \"C\" or \"F\", found %s%s%s", where,
                       s ? "\"" : "", s ? s : lb__json_type_name(o), s ? "\"" : "");
    *order_f = s[0] == 'F';

    if ((rc = lb__json_require(meta, "filters", where, &o, err))) return rc;
    if (o && !(json_object_is_type(o, json_type_array) && json_object_array_length(o) == 0)) {
        if (!json_object_is_type(o, json_type_array))
            return lb__err(err, LB_EFORMAT, "%s: filters: expected a list or null, found %s",
                           where, lb__json_type_name(o));
        return lb__err(err, LB_EUNSUPPORTED, "%s: filters are not supported", where);
    }

    d->key_separator = 0; /* not given: detected from the stored chunks */
    o = lb__json_get(meta, "dimension_separator");
    if (o) {
        s = json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
        if (!s || (strcmp(s, ".") != 0 && strcmp(s, "/") != 0))
            return lb__err(err, LB_EFORMAT,
                           "%s: dimension_separator: expected \".\" or \"/\", found %s%s%s", where,
                           s ? "\"" : "", s ? s : lb__json_type_name(o), s ? "\"" : "");
        d->key_separator = s[0];
    }
    return 0;
}

static int zarr2_probe(lb__store *s, const char *dir, lb_error *err) {
    (void)err;
    char *p = lb__path_join(dir, ZARRAY, NULL);
    int yes = p && lb__store_kind(s, p) != LB__KEY_NONE;
    free(p);
    return yes;
}

static int zarr2_probe_group(lb__store *s, const char *dir) {
    char *p = lb__path_join(dir, ZGROUP, NULL);
    int yes = p && lb__store_exists(s, p);
    free(p);
    return yes;
}

static int zarr2_open(lb__store *s, const char *dir, lb__array_meta *m, lb_error *err) {
    memset(m, 0, sizeof *m);
    char where[1200];
    snprintf(where, sizeof where, "%s/%s", dir, ZARRAY);
    int order_f = 0, big_endian = 0;
    lb__codec comp;
    lb__codec_init(&comp, LB__CODEC_RAW);
    int rc = lb__meta_read(s, dir, ZARRAY, &m->meta, err);
    if (!rc && !m->meta) rc = lb__err(err, LB_ENOTFOUND, "%s: not found", where);
    if (!rc) rc = parse_zarray(m, m->meta, where, &order_f, &big_endian, &comp, err);
    if (!rc && !m->key_separator) rc = detect_separator(s, dir, m, err);
    if (!rc) rc = make_chain(m, order_f, big_endian, &comp, where, err);
    if (!rc) rc = lb__meta_read(s, dir, ZATTRS, &m->attrs, err);
    if (!rc && !m->attrs && !(m->attrs = json_object_new_object()))
        rc = lb__err(err, LB_ENOMEM, "out of memory");
    m->reverse_attrs = order_f;
    if (rc) lb__array_meta_clear(m);
    return rc;
}

static int zarr2_chunk_key(const lb__array_meta *m, const int64_t *cidx, char *buf,
                           size_t size) {
    if (m->ndim == 0) return snprintf(buf, size, "0");
    /* 0: a layout not known yet (the dataset reader tries both) */
    char sep = m->key_separator ? m->key_separator : '.';
    size_t len = 0;
    for (int i = 0; i < m->ndim; i++) {
        char part[32];
        int k = i ? snprintf(part, sizeof part, "%c%lld", sep, (long long)cidx[i])
                  : snprintf(part, sizeof part, "%lld", (long long)cidx[i]);
        if (len + (size_t)k < size) memcpy(buf + len, part, (size_t)k);
        len += (size_t)k;
    }
    if (size) buf[len < size ? len : size - 1] = '\0';
    return (int)len;
}

static int zarr2_group_attrs(lb__store *s, const char *dir, json_object **out, lb_error *err) {
    return lb__meta_read(s, dir, ZATTRS, out, err);
}

/* ---- writing --------------------------------------------------------------------------- */

static int add(json_object *obj, const char *key, json_object *val, int nullable, lb_error *err) {
    if (!val && !nullable) return lb__err(err, LB_ENOMEM, "out of memory building metadata");
    if (json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return lb__err(err, LB_ENOMEM, "out of memory building metadata");
    }
    return 0;
}

static int zarr2_build(const lb__create_spec *s, json_object **out, lb_error *err) {
    *out = NULL;
    for (int k = 0; k < s->ndim; k++)
        if (s->inner[k])
            return lb__err(err, LB_EUNSUPPORTED, "Zarr v2 has no shards (use --format zarr3)");
    const lb__codec *comp = s->compressor;
    if (comp) {
        int crc = lb__codec_check_encode(comp, err); /* a new dataset is for writing */
        if (crc) return crc;
    }
    char typestr[8];
    if (!lb_dtype_is_integer(s->dtype))
        return lb__err(err, LB_EUNSUPPORTED, "cannot create a dataset of dtype %s (read only)",
                       lb_dtype_name(s->dtype));
    size_t size = lb_dtype_size(s->dtype);
    snprintf(typestr, sizeof typestr, "%c%c%zu", size == 1 ? '|' : s->big_endian ? '>' : '<',
             lb_dtype_is_signed(s->dtype) ? 'i' : 'u', size);
    if (s->ndim < 0 || s->ndim > LB_MAX_DIMS)
        return lb__err(err, LB_ELIMIT, "%d dimensions, the limit is %d", s->ndim, LB_MAX_DIMS);
    char sep = s->separator ? s->separator : '.';
    if (sep != '.' && sep != '/')
        return lb__err(err, LB_EINVAL, "dimension separator must be '.' or '/', not '%c'", sep);

    json_object *compressor = NULL;
    if (comp && comp->id != LB__CODEC_RAW) {
        compressor = lb__numcodecs_json(comp, err);
        if (!compressor) return err ? err->code : LB_EINVAL;
    }
    json_object *m = json_object_new_object();
    if (!m) {
        json_object_put(compressor);
        return lb__err(err, LB_ENOMEM, "out of memory building metadata");
    }
    /* Sorted keys, as zarr-python writes them. */
    int rc = add(m, "chunks", lb__json_int64_list(s->chunks, s->ndim, 0), 0, err);
    if (!rc) rc = add(m, "compressor", lb__meta_sorted_copy(compressor, err), 1, err);
    json_object_put(compressor);
    if (!rc && sep == '/') rc = add(m, "dimension_separator", json_object_new_string("/"), 0, err);
    if (!rc) rc = add(m, "dtype", json_object_new_string(typestr), 0, err);
    if (!rc)
        rc = add(m, "fill_value", s->fill_null ? NULL : lb__fill_to_json(s->dtype, s->fill),
                 s->fill_null, err);
    if (!rc) rc = add(m, "filters", NULL, 1, err);
    if (!rc) rc = add(m, "order", json_object_new_string(s->order_f ? "F" : "C"), 0, err);
    if (!rc) rc = add(m, "shape", lb__json_int64_list(s->shape, s->ndim, 0), 0, err);
    if (!rc) rc = add(m, "zarr_format", json_object_new_int(2), 0, err);
    if (rc) {
        json_object_put(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* .zgroup in every directory from the container root down to the parent
 * of `dir` (none when the path has no *.zarr container). */
static int write_groups(lb__store *s, const char *path, lb_error *err) {
    size_t clen = lb__path_container_len(path);
    size_t n = strlen(path);
    if (clen == 0 || clen >= n) return 0;
    char *p = lb__strdup(path, err);
    if (!p) return LB_ENOMEM;
    int rc = 0;
    for (size_t i = clen; i < n && !rc; i++) {
        if (i != clen && p[i] != '/') continue;
        if (i != clen && p[i - 1] == '/') continue;
        char c = p[i];
        p[i] = '\0';
        char *zarray = lb__path_join(p, ZARRAY, err);
        char *zgroup = lb__path_join(p, ZGROUP, err);
        if (zgroup) lb__store_cleanup_key(s, zgroup); /* a killed writer's */
        if (!zarray || !zgroup) rc = LB_ENOMEM;
        else if (lb__store_exists(s, zarray))
            rc = lb__err(err, LB_EEXIST, "%s: is an array; cannot create a dataset inside it", p);
        else if (!lb__store_exists(s, zgroup)) {
            static const char group[] = "{\n    \"zarr_format\": 2\n}";
            rc = lb__store_put(s, zgroup, group, sizeof group - 1, err);
        }
        free(zarray);
        free(zgroup);
        p[i] = c;
    }
    free(p);
    return rc;
}

static int zarr2_create(lb__store *s, const char *dir, const lb__create_spec *spec,
                        lb_error *err) {
    json_object *zarray = NULL;
    int rc = zarr2_build(spec, &zarray, err);
    if (!rc) rc = write_groups(s, dir, err);
    json_object *a = NULL;
    if (!rc) {
        a = spec->attrs ? lb__meta_sorted_copy(spec->attrs, err) : json_object_new_object();
        if (!a) rc = err && err->code ? err->code : lb__err(err, LB_ENOMEM, "out of memory");
    }
    /* .zattrs first: once .zarray exists the dataset is complete. */
    if (!rc) rc = lb__meta_write(s, dir, ZATTRS, a, 4, err);
    if (!rc) rc = lb__meta_write(s, dir, ZARRAY, zarray, 4, err);
    json_object_put(a);
    json_object_put(zarray);
    return rc;
}

static int zarr2_create_group(lb__store *s, const char *dir, json_object *attrs, lb_error *err) {
    int rc = write_groups(s, dir, err);
    if (rc) return rc;
    json_object *g = json_object_new_object();
    if (!g) return lb__err(err, LB_ENOMEM, "out of memory");
    json_object_object_add(g, "zarr_format", json_object_new_int(2));
    rc = lb__meta_write(s, dir, ZGROUP, g, 4, err);
    json_object_put(g);
    if (!rc && attrs) rc = lb__meta_write(s, dir, ZATTRS, attrs, 4, err);
    return rc;
}

static int zarr2_set_attrs(lb__store *s, const char *dir, lb__array_meta *m, json_object *attrs,
                           lb_error *err) {
    json_object *user = attrs ? lb__meta_sorted_copy(attrs, err) : json_object_new_object();
    if (!user) return err && err->code ? err->code : LB_ENOMEM;
    int rc = lb__meta_write(s, dir, ZATTRS, user, 4, err);
    if (rc) {
        json_object_put(user);
        return rc;
    }
    json_object_put(m->attrs);
    m->attrs = user;
    return 0;
}

static json_object *zarr2_codec_json(const lb__array_meta *m, lb_error *err) {
    const lb__chain *c = m->chain;
    if (c->n == c->ab + 1) return NULL; /* no compressor: null */
    return lb__numcodecs_json(&c->codec[c->n - 1], err);
}

static json_object *zarr2_codec_words(const lb__codec *c, lb_error *err) {
    return lb__numcodecs_json(c, err);
}

static int zarr2_parse_codec(json_object *o, const char *where, lb__codec *out, lb_error *err) {
    return lb__numcodecs_parse(o, NULL, where, out, err);
}

const lb__format lb__format_zarr2 = {
    .name = "zarr2",
    .title = "Zarr v2",
    .meta_file = ZARRAY,
    .attrs_file = ZATTRS,
    .ome = 1,
    .probe = zarr2_probe,
    .probe_group = zarr2_probe_group,
    .open = zarr2_open,
    .chunk_key = zarr2_chunk_key,
    .group_attrs = zarr2_group_attrs,
    .build = zarr2_build,
    .create = zarr2_create,
    .create_group = zarr2_create_group,
    .set_attrs = zarr2_set_attrs,
    .codec_json = zarr2_codec_json,
    .codec_words = zarr2_codec_words,
    .parse_codec = zarr2_parse_codec,
};
