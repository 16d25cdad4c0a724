/*
 * common.c — what the format files share: metadata documents read from and
 * written to a store (JSON; written pure ASCII and atomically), dimension
 * lists and their limits, codec configuration members, and fill values
 * between JSON and native bytes.
 */
#include "format/common.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/json.h"
#include "core/path.h"

/* ---- metadata documents ------------------------------------------------------ */

int lb__meta_read(lb__store *s, const char *dir, const char *name, json_object **out,
                  lb_error *err) {
    *out = NULL;
    char *key = lb__path_join(dir, name, err);
    if (!key) return LB_ENOMEM;
    lb__buf b = {0};
    lb_error local = {0};
    int rc = lb__store_get(s, key, NULL, LB__MAX_META_BYTES, &b, NULL, &local);
    if (rc == LB_ENOTFOUND) {
        rc = 0; /* absent: not an error, and err stays as it was */
        goto done;
    }
    if (rc) {
        if (err) *err = local;
        goto done;
    }
    json_object *o = NULL;
    rc = lb__json_parse((const char *)b.data, b.size, key, &o, err);
    if (rc) goto done;
    if (!o || !json_object_is_type(o, json_type_object)) {
        rc = lb__err(err, LB_EFORMAT, "%s: expected a JSON object, found %s", key,
                     lb__json_type_name(o));
        json_object_put(o);
        goto done;
    }
    *out = o;
done:
    lb__buf_free(&b);
    free(key);
    return rc;
}

int lb__meta_write(lb__store *s, const char *dir, const char *name, json_object *o, int indent,
                   lb_error *err) {
    char *p = lb__path_join(dir, name, err);
    if (!p) return LB_ENOMEM;
    lb__buf b = {0};
    int rc = 0;
    const char *text = json_object_is_type(o, json_type_object) && json_object_object_length(o) == 0
                           ? "{}" /* json-c would print "{\n}" */
                           : lb__json_string(o, 1);
    if (!text) rc = lb__err(err, LB_ENOMEM, "out of memory serialising %s", p);
    /* json-c indents by two spaces; strings never hold a raw newline, so
     * the leading spaces of each line are indentation and can be scaled.
     * The text is written as pure ASCII (\u escapes, as zarr-python writes
     * it): zarr-python 2 decodes metadata as ASCII and fails on raw UTF-8. */
    while (!rc && *text) {
        size_t sp = strspn(text, " ");
        size_t len = strcspn(text + sp, "\n");
        for (size_t i = 0; i < sp / 2 * (size_t)indent && !rc; i++) rc = lb__buf_append(&b, " ", 1, err);
        if (!rc) rc = lb__json_append_ascii(&b, text + sp, len, err);
        text += sp + len;
        if (!rc && *text == '\n') {
            rc = lb__buf_append(&b, "\n", 1, err);
            text++;
        }
    }
    if (!rc) rc = lb__store_put(s, p, b.data, b.size, err);
    lb__buf_free(&b);
    free(p);
    return rc;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_object *lb__meta_sorted_copy(json_object *o, lb_error *err) {
    if (!o) return NULL;
    json_object *out = NULL;
    if (json_object_is_type(o, json_type_object)) {
        size_t n = (size_t)json_object_object_length(o);
        const char **keys = lb__calloc(n, sizeof *keys, "JSON keys", err);
        if (!keys) return NULL;
        size_t i = 0;
        json_object_object_foreach(o, key, val) {
            (void)val;
            keys[i++] = key;
        }
        qsort(keys, n, sizeof *keys, cmp_str);
        out = json_object_new_object();
        for (i = 0; out && i < n; i++) {
            json_object *child = json_object_object_get(o, keys[i]);
            json_object *c = lb__meta_sorted_copy(child, err);
            if ((child && !c) || json_object_object_add(out, keys[i], c) != 0) {
                json_object_put(c);
                json_object_put(out);
                out = NULL;
            }
        }
        free(keys);
    } else if (json_object_is_type(o, json_type_array)) {
        size_t n = json_object_array_length(o);
        out = json_object_new_array();
        for (size_t i = 0; out && i < n; i++) {
            json_object *child = json_object_array_get_idx(o, i);
            json_object *c = lb__meta_sorted_copy(child, err);
            if ((child && !c) || json_object_array_add(out, c) != 0) {
                json_object_put(c);
                json_object_put(out);
                out = NULL;
            }
        }
    } else {
        return json_object_get(o); /* scalars are immutable: share */
    }
    if (!out) lb__err(err, LB_ENOMEM, "out of memory copying JSON");
    return out;
}

int lb__meta_dims(json_object *meta, const char *key, const char *where, int64_t *out,
                  int *n_out, lb_error *err) {
    json_object *a;
    int rc = lb__json_require(meta, key, where, &a, err);
    if (rc) return rc;
    if (!json_object_is_type(a, json_type_array))
        return lb__err(err, LB_EFORMAT, "%s: %s: expected an array of integers, found %s", where,
                       key, lb__json_type_name(a));
    size_t n = json_object_array_length(a);
    if (n > LB_MAX_DIMS)
        return lb__err(err, LB_ELIMIT, "%s: %s: %zu dimensions, more than the limit of %d", where,
                       key, n, LB_MAX_DIMS);
    for (size_t i = 0; i < n; i++) {
        char w[1200];
        snprintf(w, sizeof w, "%s: %s[%zu]", where, key, i);
        rc = lb__json_int64(json_object_array_get_idx(a, i), w, &out[i], err);
        if (rc) return rc;
    }
    *n_out = (int)n;
    return 0;
}

int lb__meta_check_geometry(int nd, const int64_t *shape, const int64_t *chunks, size_t itemsize,
                            const char *where, const char *shape_key, const char *chunks_key,
                            int reversed, lb_error *err) {
    if (nd < 0 || nd > LB_MAX_DIMS)
        return lb__err(err, LB_ELIMIT, "%s: %s: %d dimensions, the limit is %d", where, shape_key,
                       nd, LB_MAX_DIMS);
    for (int k = 0; k < nd; k++) {
        int fk = reversed ? nd - 1 - k : k; /* index as written in the file */
        if (shape[k] < 0)
            return lb__err(err, LB_EFORMAT, "%s: %s[%d]: expected a non-negative integer, found %lld",
                           where, shape_key, fk, (long long)shape[k]);
        if (chunks[k] <= 0)
            return lb__err(err, LB_EFORMAT, "%s: %s[%d]: expected a positive integer, found %lld",
                           where, chunks_key, fk, (long long)chunks[k]);
    }
    int64_t elems = 1;
    for (int k = 0; k < nd; k++) {
        if (lb__mul_i64(elems, chunks[k], &elems) || (uint64_t)elems > LB__MAX_CHUNK_BYTES)
            return lb__err(err, LB_ELIMIT, "%s: %s: one chunk exceeds the limit of %zu bytes", where,
                           chunks_key, LB__MAX_CHUNK_BYTES);
    }
    size_t cb;
    if (lb__mul_size((size_t)elems, itemsize, &cb) || cb > LB__MAX_CHUNK_BYTES)
        return lb__err(err, LB_ELIMIT, "%s: %s: one chunk is %lld elements of %zu bytes, more than the limit of %zu bytes",
                       where, chunks_key, (long long)elems, itemsize, LB__MAX_CHUNK_BYTES);
    /* The array's byte size must fit int64 and size_t (zero-length
     * dimensions do not excuse the others). */
    int64_t total = (int64_t)itemsize;
    for (int k = 0; k < nd; k++) {
        int64_t s = shape[k] > 0 ? shape[k] : 1;
        if (lb__mul_i64(total, s, &total) || (uint64_t)total > SIZE_MAX)
            return lb__err(err, LB_ELIMIT, "%s: %s: the array's size in bytes overflows", where,
                           shape_key);
    }
    return 0;
}

/* ---- codec configuration members ---------------------------------------------- */

/* Returns the member, or NULL when it is absent or JSON null (numcodecs
 * writes null for "use the default", e.g. lzma's preset). */
json_object *lb__cfg_member(json_object *obj, const char *key) {
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v)) return NULL;
    return v; /* json-c represents null as NULL */
}

int lb__cfg_int(json_object *obj, const char *key, const char *where, int64_t lo,
                   int64_t hi, int *out, lb_error *err) {
    json_object *v = lb__cfg_member(obj, key);
    if (!v) return 0;
    char path[512];
    snprintf(path, sizeof path, "%s.%s", where, key);
    int64_t x;
    int rc = lb__json_int64(v, path, &x, err);
    if (rc) return rc;
    if (x < lo || x > hi)
        return lb__err(err, LB_EFORMAT, "%s: %" PRId64 " is out of range %" PRId64 "..%" PRId64,
                       path, x, lo, hi);
    *out = (int)x;
    return 0;
}

int lb__cfg_bool(json_object *obj, const char *key, const char *where, int *out,
                    lb_error *err) {
    json_object *v = lb__cfg_member(obj, key);
    if (!v) return 0;
    char path[512];
    snprintf(path, sizeof path, "%s.%s", where, key);
    return lb__json_bool(v, path, out, err);
}

int lb__cfg_str(json_object *obj, const char *key, const char *where, const char **out,
                   lb_error *err) {
    json_object *v = lb__cfg_member(obj, key);
    if (!v) return 0;
    char path[512];
    snprintf(path, sizeof path, "%s.%s", where, key);
    return lb__json_str(v, path, out, err);
}

/* ---- fill values ------------------------------------------------------------------ */

int lb__fill_from_id(lb_dtype dtype, lb_id id, uint8_t *fill) {
    if (!lb_dtype_is_integer(dtype) || !lb_id_fits(id, dtype)) return -1;
    uint8_t u8 = (uint8_t)id.bits;
    uint16_t u16 = (uint16_t)id.bits;
    uint32_t u32 = (uint32_t)id.bits;
    uint64_t u64 = id.bits;
    /* Two's complement truncation keeps negative values right. */
    switch (lb_dtype_size(dtype)) {
    case 1: memcpy(fill, &u8, 1); break;
    case 2: memcpy(fill, &u16, 2); break;
    case 4: memcpy(fill, &u32, 4); break;
    default: memcpy(fill, &u64, 8); break;
    }
    return 0;
}

int lb__fill_parse(json_object *o, lb_dtype dtype, const char *where, uint8_t *fill,
                   lb_error *err) {
    memset(fill, 0, 8);
    if (dtype == LB_DTYPE_BOOL) {
        /* zarr-python 2 and zarr.js write 0 (or 1) for bool arrays. */
        if (o && json_object_is_type(o, json_type_int)) {
            int64_t v;
            int rc = lb__json_int64(o, where, &v, err);
            if (rc) return rc;
            if (v != 0 && v != 1)
                return lb__err(err, LB_EFORMAT, "%s: %" PRId64 " is not a boolean (expected "
                               "true, false, 0 or 1)", where, v);
            fill[0] = (uint8_t)v;
            return 0;
        }
        if (!o || !json_object_is_type(o, json_type_boolean))
            return lb__err(err, LB_EFORMAT, "%s: expected a boolean, 0 or 1 for dtype bool, "
                           "found %s", where, lb__json_type_name(o));
        fill[0] = json_object_get_boolean(o) ? 1 : 0;
        return 0;
    }
    if (dtype == LB_DTYPE_FLOAT32 || dtype == LB_DTYPE_FLOAT64) {
        double v;
        if (o && json_object_is_type(o, json_type_string)) {
            const char *s = json_object_get_string(o);
            if (strcmp(s, "NaN") == 0) v = NAN;
            else if (strcmp(s, "Infinity") == 0) v = INFINITY;
            else if (strcmp(s, "-Infinity") == 0) v = -INFINITY;
            else
                return lb__err(err, LB_EFORMAT, "%s: expected a number, \"NaN\", \"Infinity\" or "
                               "\"-Infinity\", found \"%s\"", where, s);
        } else if (o && (json_object_is_type(o, json_type_int) ||
                         json_object_is_type(o, json_type_double))) {
            v = json_object_get_double(o);
        } else {
            return lb__err(err, LB_EFORMAT, "%s: expected a number for dtype %s, found %s", where,
                           lb_dtype_name(dtype), lb__json_type_name(o));
        }
        if (dtype == LB_DTYPE_FLOAT32) {
            float f = (float)v;
            memcpy(fill, &f, 4);
        } else {
            memcpy(fill, &v, 8);
        }
        return 0;
    }
    if (!o || !json_object_is_type(o, json_type_int))
        return lb__err(err, LB_EFORMAT, "%s: expected an integer for dtype %s, found %s", where,
                       lb_dtype_name(dtype), lb__json_type_name(o));
    lb_id id;
    int rc = lb__json_id(o, where, &id, err);
    if (rc) return rc;
    if (lb__fill_from_id(dtype, id, fill) != 0) {
        char num[32];
        lb_id_format(id, num, sizeof num);
        return lb__err(err, LB_EFORMAT, "%s: %s is out of range for dtype %s", where, num,
                       lb_dtype_name(dtype));
    }
    return 0;
}

/* The fill value as an id (integer dtypes) or a double. */
static int fill_number(lb_dtype dtype, const uint8_t *fill, lb_id *id, double *x) {
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    float f;
    memset(id, 0, sizeof *id);
    switch (dtype) {
    case LB_DTYPE_UINT8: memcpy(&u8, fill, 1); id->bits = u8; return 1;
    case LB_DTYPE_UINT16: memcpy(&u16, fill, 2); id->bits = u16; return 1;
    case LB_DTYPE_UINT32: memcpy(&u32, fill, 4); id->bits = u32; return 1;
    case LB_DTYPE_UINT64: memcpy(&u64, fill, 8); id->bits = u64; return 1;
    case LB_DTYPE_INT8: memcpy(&u8, fill, 1); id->bits = (uint64_t)(int64_t)(int8_t)u8; break;
    case LB_DTYPE_INT16: memcpy(&u16, fill, 2); id->bits = (uint64_t)(int64_t)(int16_t)u16; break;
    case LB_DTYPE_INT32: memcpy(&u32, fill, 4); id->bits = (uint64_t)(int64_t)(int32_t)u32; break;
    case LB_DTYPE_INT64: memcpy(&u64, fill, 8); id->bits = u64; break;
    case LB_DTYPE_BOOL: id->bits = fill[0] != 0; return 1;
    case LB_DTYPE_FLOAT32: memcpy(&f, fill, 4); *x = f; return 0;
    case LB_DTYPE_FLOAT64: memcpy(x, fill, 8); return 0;
    }
    id->negative = (int64_t)id->bits < 0;
    return 1;
}

json_object *lb__fill_to_json(lb_dtype dtype, const uint8_t *fill) {
    lb_id id;
    double x = 0;
    if (dtype == LB_DTYPE_BOOL) return json_object_new_boolean(fill[0] != 0);
    if (fill_number(dtype, fill, &id, &x)) {
        if (id.negative) return json_object_new_int64((int64_t)id.bits);
        return json_object_new_uint64(id.bits);
    }
    if (isnan(x)) return json_object_new_string("NaN");
    if (isinf(x)) return json_object_new_string(x > 0 ? "Infinity" : "-Infinity");
    return json_object_new_double(x);
}

void lb__fill_text(lb_dtype dtype, const uint8_t *fill, char *buf, size_t size) {
    lb_id id;
    double x = 0;
    if (!size) return;
    if (dtype == LB_DTYPE_BOOL) {
        snprintf(buf, size, "%s", fill[0] ? "true" : "false");
    } else if (fill_number(dtype, fill, &id, &x)) {
        lb_id_format(id, buf, size);
    } else if (isnan(x)) {
        snprintf(buf, size, "\"NaN\"");
    } else if (isinf(x)) {
        snprintf(buf, size, x > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    } else {
        snprintf(buf, size, "%.17g", x);
    }
}

/* ---- building JSON objects --------------------------------------------------------- */

void lb__jput_int(json_object *o, const char *key, int64_t v, int *bad) {
    json_object *x = json_object_new_int64(v);
    if (!x || json_object_object_add(o, key, x)) {
        json_object_put(x);
        *bad = 1;
    }
}

void lb__jput_str(json_object *o, const char *key, const char *v, int *bad) {
    json_object *x = json_object_new_string(v);
    if (!x || json_object_object_add(o, key, x)) {
        json_object_put(x);
        *bad = 1;
    }
}

void lb__jput_bool(json_object *o, const char *key, int v, int *bad) {
    json_object *x = json_object_new_boolean(v);
    if (!x || json_object_object_add(o, key, x)) {
        json_object_put(x);
        *bad = 1;
    }
}

json_object *lb__jput_finish(json_object *o, int bad, lb_error *err) {
    if (!o || bad) {
        json_object_put(o);
        lb__err(err, LB_ENOMEM, "out of memory building codec JSON");
        return NULL;
    }
    return o;
}

int lb__attrs_incomplete(json_object *attrs) {
    json_object *c = lb__json_get(lb__json_get(attrs, LB__PROVENANCE_KEY), LB__COMPLETE_KEY);
    return c && json_object_is_type(c, json_type_boolean) && !json_object_get_boolean(c);
}
