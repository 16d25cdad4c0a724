/*
 * zarr2.c — the Zarr v2 format: .zarray parsing and writing (zarr-python
 * style), .zgroup parents, chunk keys, and the on-disk chunk layout (F
 * order, byte order, full-size edge chunks) around the codec.
 */
#include "dataset/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/json.h"
#include "store/store.h"

/* ------------------------------------------------------------------------
 * dtype and fill value
 * ------------------------------------------------------------------------ */

#define SUPPORTED_DTYPES \
    "|u1 <u2 <u4 <u8 |i1 <i2 <i4 <i8 (or '>'), |b1, <f4 <f8 (read only)"

static int parse_dtype(json_object *o, const char *where, lb__dataset *d, lb_error *err) {
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
    d->big_endian = size > 1 && s[0] == '>';
    return 0;
}

static int dtype_is_unsigned(lb_dtype t) {
    return t == LB_DTYPE_UINT8 || t == LB_DTYPE_UINT16 || t == LB_DTYPE_UINT32 ||
           t == LB_DTYPE_UINT64;
}

static const char *dtype_name(lb_dtype t) {
    switch (t) {
    case LB_DTYPE_UINT8: return "uint8";
    case LB_DTYPE_UINT16: return "uint16";
    case LB_DTYPE_UINT32: return "uint32";
    case LB_DTYPE_UINT64: return "uint64";
    case LB_DTYPE_INT8: return "int8";
    case LB_DTYPE_INT16: return "int16";
    case LB_DTYPE_INT32: return "int32";
    case LB_DTYPE_INT64: return "int64";
    case LB_DTYPE_BOOL: return "bool";
    case LB_DTYPE_FLOAT32: return "float32";
    case LB_DTYPE_FLOAT64: return "float64";
    }
    return "?";
}

/* Store an integer id into fill[] if it fits the dtype. */
static int int_fill(lb__dataset *d, lb_id id) {
    size_t bits = d->itemsize * 8;
    if (dtype_is_unsigned(d->dtype)) {
        if (id.negative) return -1;
        if (bits < 64 && id.bits >> bits) return -1;
    } else {
        int64_t v = (int64_t)id.bits;
        if (!id.negative && id.bits > (uint64_t)INT64_MAX) return -1;
        if (bits < 64) {
            int64_t lim = (int64_t)1 << (bits - 1);
            if (v < -lim || v >= lim) return -1;
        }
    }
    uint8_t u8 = (uint8_t)id.bits;
    uint16_t u16 = (uint16_t)id.bits;
    uint32_t u32 = (uint32_t)id.bits;
    uint64_t u64 = id.bits;
    /* Two's complement truncation keeps negative values right. */
    switch (d->itemsize) {
    case 1: memcpy(d->fill, &u8, 1); break;
    case 2: memcpy(d->fill, &u16, 2); break;
    case 4: memcpy(d->fill, &u32, 4); break;
    default: memcpy(d->fill, &u64, 8); break;
    }
    return 0;
}

static int parse_fill(json_object *o, const char *where, lb__dataset *d, lb_error *err) {
    memset(d->fill, 0, sizeof d->fill);
    d->fill_null = 0;
    if (!o) {
        d->fill_null = 1;
        return 0;
    }
    char w[1200];
    snprintf(w, sizeof w, "%s: fill_value", where);
    if (d->dtype == LB_DTYPE_BOOL) {
        /* zarr-python 2 and zarr.js write 0 (or 1) for bool arrays. */
        if (json_object_is_type(o, json_type_int)) {
            int64_t v;
            int rc = lb__json_int64(o, w, &v, err);
            if (rc) return rc;
            if (v != 0 && v != 1)
                return lb__err(err, LB_EFORMAT,
                               "%s: %lld is not a boolean (expected true, false, 0, 1 or null)",
                               w, (long long)v);
            d->fill[0] = (uint8_t)v;
            return 0;
        }
        if (!json_object_is_type(o, json_type_boolean))
            return lb__err(err, LB_EFORMAT,
                           "%s: expected a boolean, 0, 1 or null for dtype bool, found %s", w,
                           lb__json_type_name(o));
        d->fill[0] = json_object_get_boolean(o) ? 1 : 0;
        return 0;
    }
    if (d->dtype == LB_DTYPE_FLOAT32 || d->dtype == LB_DTYPE_FLOAT64) {
        double v;
        if (json_object_is_type(o, json_type_string)) {
            const char *s = json_object_get_string(o);
            if (strcmp(s, "NaN") == 0) v = NAN;
            else if (strcmp(s, "Infinity") == 0) v = INFINITY;
            else if (strcmp(s, "-Infinity") == 0) v = -INFINITY;
            else
                return lb__err(err, LB_EFORMAT,
                               "%s: expected a number, \"NaN\", \"Infinity\" or \"-Infinity\", found \"%s\"",
                               w, s);
        } else if (json_object_is_type(o, json_type_int) ||
                   json_object_is_type(o, json_type_double)) {
            v = json_object_get_double(o);
        } else {
            return lb__err(err, LB_EFORMAT, "%s: expected a number or null for dtype %s, found %s",
                           w, dtype_name(d->dtype), lb__json_type_name(o));
        }
        if (d->dtype == LB_DTYPE_FLOAT32) {
            float f = (float)v;
            memcpy(d->fill, &f, 4);
        } else {
            memcpy(d->fill, &v, 8);
        }
        return 0;
    }
    if (!json_object_is_type(o, json_type_int))
        return lb__err(err, LB_EFORMAT, "%s: expected an integer or null for dtype %s, found %s",
                       w, dtype_name(d->dtype), lb__json_type_name(o));
    lb_id id;
    int rc = lb__json_id(o, w, &id, err);
    if (rc) return rc;
    if (int_fill(d, id) != 0) {
        char num[32];
        if (id.negative) snprintf(num, sizeof num, "%lld", (long long)(int64_t)id.bits);
        else snprintf(num, sizeof num, "%llu", (unsigned long long)id.bits);
        return lb__err(err, LB_EFORMAT, "%s: %s is out of range for dtype %s", w, num,
                       dtype_name(d->dtype));
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * .zarray
 * ------------------------------------------------------------------------ */

int lb__zarr2_parse(lb__dataset *d, json_object *meta, const char *where, lb_error *err) {
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
    if ((rc = parse_dtype(o, where, d, err))) return rc;
    if ((rc = lb__dataset_check_geometry(d, where, "shape", "chunks", 0, err))) return rc;

    if ((rc = lb__json_require(meta, "compressor", where, &o, err))) return rc;
    snprintf(w, sizeof w, "%s: compressor", where);
    memset(&d->codec, 0, sizeof d->codec);
    if ((rc = lb__codec_from_zarr2(o, w, &d->codec, err))) return rc;

    if ((rc = lb__json_require(meta, "fill_value", where, &o, err))) return rc;
    if ((rc = parse_fill(o, where, d, err))) return rc;

    if ((rc = lb__json_require(meta, "order", where, &o, err))) return rc;
    const char *s = json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
    if (!s || (strcmp(s, "C") != 0 && strcmp(s, "F") != 0))
        return lb__err(err, LB_EFORMAT, "%s: order: expected \"C\" or \"F\", found %s%s%s", where,
                       s ? "\"" : "", s ? s : lb__json_type_name(o), s ? "\"" : "");
    d->order_f = s[0] == 'F';

    if ((rc = lb__json_require(meta, "filters", where, &o, err))) return rc;
    if (o && !(json_object_is_type(o, json_type_array) && json_object_array_length(o) == 0)) {
        if (!json_object_is_type(o, json_type_array))
            return lb__err(err, LB_EFORMAT, "%s: filters: expected a list or null, found %s",
                           where, lb__json_type_name(o));
        return lb__err(err, LB_EUNSUPPORTED, "%s: filters are not supported", where);
    }

    d->separator = '.';
    o = lb__json_get(meta, "dimension_separator");
    if (o) {
        s = json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
        if (!s || (strcmp(s, ".") != 0 && strcmp(s, "/") != 0))
            return lb__err(err, LB_EFORMAT,
                           "%s: dimension_separator: expected \".\" or \"/\", found %s%s%s", where,
                           s ? "\"" : "", s ? s : lb__json_type_name(o), s ? "\"" : "");
        d->separator = s[0];
    }
    return 0;
}

static int add(json_object *obj, const char *key, json_object *val, int nullable, lb_error *err) {
    if (!val && !nullable) return lb__err(err, LB_ENOMEM, "out of memory building metadata");
    if (json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return lb__err(err, LB_ENOMEM, "out of memory building metadata");
    }
    return 0;
}

static json_object *fill_json(const lb__dataset_spec *s) {
    uint64_t u = 0;
    size_t size = 1;
    switch (s->dtype) {
    case LB_DTYPE_UINT16: case LB_DTYPE_INT16: size = 2; break;
    case LB_DTYPE_UINT32: case LB_DTYPE_INT32: size = 4; break;
    case LB_DTYPE_UINT64: case LB_DTYPE_INT64: size = 8; break;
    default: size = 1;
    }
    uint8_t b1; uint16_t b2; uint32_t b4;
    switch (size) {
    case 1: memcpy(&b1, s->fill, 1); u = b1; break;
    case 2: memcpy(&b2, s->fill, 2); u = b2; break;
    case 4: memcpy(&b4, s->fill, 4); u = b4; break;
    default: memcpy(&u, s->fill, 8); break;
    }
    if (dtype_is_unsigned(s->dtype)) return json_object_new_uint64(u);
    /* sign-extend */
    int64_t v;
    switch (size) {
    case 1: v = (int8_t)b1; break;
    case 2: v = (int16_t)b2; break;
    case 4: v = (int32_t)b4; break;
    default: v = (int64_t)u; break;
    }
    return json_object_new_int64(v);
}

int lb__zarr2_build(const lb__dataset_spec *s, json_object **out, lb_error *err) {
    *out = NULL;
    int crc = lb__codec_check_encode(&s->codec, err); /* a new dataset is for writing */
    if (crc) return crc;
    char typestr[8];
    switch (s->dtype) {
    case LB_DTYPE_UINT8: case LB_DTYPE_UINT16: case LB_DTYPE_UINT32: case LB_DTYPE_UINT64:
    case LB_DTYPE_INT8: case LB_DTYPE_INT16: case LB_DTYPE_INT32: case LB_DTYPE_INT64: {
        int size = s->dtype == LB_DTYPE_UINT8 || s->dtype == LB_DTYPE_INT8 ? 1
                 : s->dtype == LB_DTYPE_UINT16 || s->dtype == LB_DTYPE_INT16 ? 2
                 : s->dtype == LB_DTYPE_UINT32 || s->dtype == LB_DTYPE_INT32 ? 4 : 8;
        snprintf(typestr, sizeof typestr, "%c%c%d", size == 1 ? '|' : s->big_endian ? '>' : '<',
                 dtype_is_unsigned(s->dtype) ? 'u' : 'i', size);
        break;
    }
    default:
        return lb__err(err, LB_EUNSUPPORTED, "cannot create a dataset of dtype %s (read only)",
                       dtype_name(s->dtype));
    }
    if (s->ndim < 0 || s->ndim > LB_MAX_DIMS)
        return lb__err(err, LB_ELIMIT, "%d dimensions, the limit is %d", s->ndim, LB_MAX_DIMS);
    char sep = s->separator ? s->separator : '.';
    if (sep != '.' && sep != '/')
        return lb__err(err, LB_EINVAL, "dimension separator must be '.' or '/', not '%c'", sep);

    json_object *compressor = NULL;
    if (s->codec.id != LB__CODEC_RAW) {
        compressor = lb__codec_to_zarr2(&s->codec, err);
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
    if (!rc) rc = add(m, "fill_value", s->fill_null ? NULL : fill_json(s), s->fill_null, err);
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
 * of `path` (none when the path has no *.zarr container). */
static int write_groups(const char *path, lb_error *err) {
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
        char *zarray = lb__path_join(p, ".zarray", err);
        char *zgroup = lb__path_join(p, ".zgroup", err);
        if (zgroup) lb__store_remove_stale_temps_of(zgroup); /* a killed writer's */
        if (!zarray || !zgroup) rc = LB_ENOMEM;
        else if (lb__store_exists(zarray))
            rc = lb__err(err, LB_EEXIST, "%s: is an array; cannot create a dataset inside it", p);
        else if (!lb__store_exists(zgroup)) {
            static const char group[] = "{\n    \"zarr_format\": 2\n}";
            rc = lb__store_mkdirs(p, err);
            if (!rc) rc = lb__store_write_atomic(zgroup, group, sizeof group - 1, err);
        }
        free(zarray);
        free(zgroup);
        p[i] = c;
    }
    free(p);
    return rc;
}

int lb__zarr2_write_meta(const char *path, json_object *zarray, json_object *attrs,
                         lb_error *err) {
    int rc = write_groups(path, err);
    if (rc) return rc;
    rc = lb__store_mkdirs(path, err);
    if (rc) return rc;
    json_object *a = attrs ? lb__meta_sorted_copy(attrs, err) : json_object_new_object();
    if (!a) return err && err->code ? err->code : LB_ENOMEM;
    /* .zattrs first: once .zarray exists the dataset is complete. */
    rc = lb__meta_write(path, ".zattrs", a, err);
    json_object_put(a);
    if (!rc) rc = lb__meta_write(path, ".zarray", zarray, err);
    return rc;
}

/* ------------------------------------------------------------------------
 * Chunk key layout of arrays without "dimension_separator"
 * ------------------------------------------------------------------------ */

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

int lb__zarr2_detect_separator(lb__dataset *d, lb_error *err) {
    /* With one dimension (or none) both layouts give the same keys. */
    if (d->ndim < 2) return 0;
    DIR *dir = opendir(d->path);
    if (!dir) return lb__err_errno(err, errno, "cannot list its chunks", d->path);
    char flat[256] = "", nested[256] = "";
    struct dirent *e;
    errno = 0;
    while ((e = readdir(dir)) != NULL && !(flat[0] && nested[0])) {
        const char *name = e->d_name;
        if (!flat[0] && is_dotted_key(name, d->ndim)) {
            int file = e->d_type == DT_REG || e->d_type == DT_LNK;
            if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
                char *full = lb__path_join(d->path, name, NULL);
                file = full && lb__store_is_file(full);
                free(full);
            }
            if (file) snprintf(flat, sizeof flat, "%s", name);
        } else if (!nested[0] && is_digits(name)) {
            int sub = e->d_type == DT_DIR;
            if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
                char *full = lb__path_join(d->path, name, NULL);
                sub = full && lb__store_is_dir(full);
                free(full);
            }
            if (sub) snprintf(nested, sizeof nested, "%s/", name);
        }
        errno = 0;
    }
    int rc = 0;
    if (!e && errno) rc = lb__err_errno(err, errno, "cannot list its chunks", d->path);
    closedir(dir);
    if (rc) return rc;
    if (flat[0] && nested[0])
        return lb__err(err, LB_EFORMAT,
                       "%s: chunks are stored both as flat keys (\"%s\") and in nested "
                       "directories (\"%s\"), and .zarray has no dimension_separator to say "
                       "which layout is meant; add \"dimension_separator\": \".\" or \"/\" to "
                       ".zarray",
                       d->path, flat, nested);
    d->separator = nested[0] ? '/' : '.';
    return 0;
}

/* ------------------------------------------------------------------------
 * Chunks
 * ------------------------------------------------------------------------ */

int lb__zarr2_chunk_key(const lb__dataset *d, const int64_t *cidx, char *buf, size_t size) {
    if (d->ndim == 0) return snprintf(buf, size, "0");
    size_t len = 0;
    for (int i = 0; i < d->ndim; i++) {
        char part[32];
        int k = i ? snprintf(part, sizeof part, "%c%lld", d->separator, (long long)cidx[i])
                  : snprintf(part, sizeof part, "%lld", (long long)cidx[i]);
        if (len + (size_t)k < size) memcpy(buf + len, part, (size_t)k);
        len += (size_t)k;
    }
    if (size) buf[len < size ? len : size - 1] = '\0';
    return (int)len;
}

int lb__zarr2_decode(const lb__dataset *d, const void *src, size_t n, void *dst,
                     lb__buf *scratch, lb_error *err) {
    int swap = d->itemsize > 1 && d->big_endian != lb__host_is_big_endian();
    int transpose = d->order_f && d->ndim > 1;
    void *target = dst;
    if (transpose) {
        int rc = lb__buf_reserve(scratch, d->chunk_bytes, err);
        if (rc) return rc;
        target = scratch->data;
    }
    int rc = lb__codec_decode(&d->codec, src, n, target, d->chunk_bytes, d->itemsize, err);
    if (rc) return rc;
    if (swap) lb__byteswap(target, d->chunk_bytes / d->itemsize, d->itemsize);
    if (transpose) lb__transpose_f_to_c(d->ndim, d->itemsize, d->chunks, target, dst);
    return 0;
}

int lb__zarr2_encode(const lb__dataset *d, const int64_t *cidx, const void *src, lb__buf *out,
                     lb__buf *scratch1, lb__buf *scratch2, lb_error *err) {
    int swap = d->itemsize > 1 && d->big_endian != lb__host_is_big_endian();
    int transpose = d->order_f && d->ndim > 1;
    int64_t ext[LB_MAX_DIMS];
    int edge = lb__dataset_chunk_extent(d, cidx, ext);
    const void *cur = src;
    int rc;
    if (edge || swap || transpose) {
        if ((rc = lb__buf_reserve(scratch1, d->chunk_bytes, err))) return rc;
    }
    if (edge) {
        /* The overhang is stored as the fill value whatever the caller left
         * there, so identical arrays give identical chunks. */
        static const int64_t zero[LB_MAX_DIMS];
        lb__dataset_fill(d, scratch1->data, d->chunk_bytes);
        lb__copy_box(d->ndim, d->itemsize, ext, src, d->chunks, zero, scratch1->data, d->chunks,
                     zero);
        cur = scratch1->data;
    }
    if (transpose) {
        uint8_t *to = scratch1->data;
        if (cur == scratch1->data) {
            if ((rc = lb__buf_reserve(scratch2, d->chunk_bytes, err))) return rc;
            to = scratch2->data;
        }
        lb__transpose_c_to_f(d->ndim, d->itemsize, d->chunks, cur, to);
        cur = to;
    }
    if (swap) {
        uint8_t *w;
        if (cur == src) {
            memcpy(scratch1->data, src, d->chunk_bytes);
            w = scratch1->data;
        } else {
            w = cur == scratch1->data ? scratch1->data : scratch2->data;
        }
        lb__byteswap(w, d->chunk_bytes / d->itemsize, d->itemsize);
        cur = w;
    }
    return lb__codec_encode(&d->codec, cur, d->chunk_bytes, d->itemsize, out, err);
}
