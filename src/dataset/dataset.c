/*
 * dataset.c — one stored chunked dataset (Zarr v2 or N5): format detection,
 * creation (new / overwrite / resume), region and chunk I/O in element
 * space, and the layout helpers (box copies, F/C transposes).
 */
#include "dataset/dataset.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/json.h"
#include "store/store.h"

/* ------------------------------------------------------------------------
 * Layout helpers
 * ------------------------------------------------------------------------ */

void lb__copy_box(int ndim, size_t itemsize, const int64_t *count, const void *src,
                  const int64_t *src_shape, const int64_t *src_start, void *dst,
                  const int64_t *dst_shape, const int64_t *dst_start) {
    if (ndim == 0) {
        memcpy(dst, src, itemsize);
        return;
    }
    for (int k = 0; k < ndim; k++)
        if (count[k] <= 0) return;
    size_t ss[LB_MAX_DIMS], ds[LB_MAX_DIMS]; /* byte strides */
    ss[ndim - 1] = ds[ndim - 1] = itemsize;
    for (int k = ndim - 2; k >= 0; k--) {
        ss[k] = ss[k + 1] * (size_t)src_shape[k + 1];
        ds[k] = ds[k + 1] * (size_t)dst_shape[k + 1];
    }
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *d = (uint8_t *)dst;
    for (int k = 0; k < ndim; k++) {
        s += (size_t)src_start[k] * ss[k];
        d += (size_t)dst_start[k] * ds[k];
    }
    /* Dimensions spanned whole in both buffers merge into one contiguous
     * run with the dimension outside them. */
    int k = ndim - 1;
    size_t run = (size_t)count[k] * itemsize;
    while (k > 0 && count[k] == src_shape[k] && count[k] == dst_shape[k]) {
        k--;
        run *= (size_t)count[k];
    }
    if (k == 0) {
        memcpy(d, s, run);
        return;
    }
    /* Odometer over dimensions 0..k-1. */
    int64_t idx[LB_MAX_DIMS] = {0};
    for (;;) {
        memcpy(d, s, run);
        int j = k - 1;
        for (; j >= 0; j--) {
            s += ss[j];
            d += ds[j];
            if (++idx[j] < count[j]) break;
            s -= (size_t)count[j] * ss[j];
            d -= (size_t)count[j] * ds[j];
            idx[j] = 0;
        }
        if (j < 0) return;
    }
}

/* Copy every element of `shape`, reading with byte strides ss and writing
 * with ds; the last dimension is innermost. */
static void strided_copy(int ndim, size_t itemsize, const int64_t *shape, const uint8_t *src,
                         const size_t *ss, uint8_t *dst, const size_t *ds) {
    for (int k = 0; k < ndim; k++)
        if (shape[k] <= 0) return;
    int64_t idx[LB_MAX_DIMS] = {0};
    int last = ndim - 1;
    size_t n = (size_t)shape[last], sst = ss[last], dst_ = ds[last];
    for (;;) {
        const uint8_t *s = src;
        uint8_t *d = dst;
        switch (itemsize) {
        case 1:
            for (size_t i = 0; i < n; i++, s += sst, d += dst_) *d = *s;
            break;
        case 2:
            for (size_t i = 0; i < n; i++, s += sst, d += dst_) memcpy(d, s, 2);
            break;
        case 4:
            for (size_t i = 0; i < n; i++, s += sst, d += dst_) memcpy(d, s, 4);
            break;
        case 8:
            for (size_t i = 0; i < n; i++, s += sst, d += dst_) memcpy(d, s, 8);
            break;
        default:
            for (size_t i = 0; i < n; i++, s += sst, d += dst_) memcpy(d, s, itemsize);
        }
        int j = last - 1;
        for (; j >= 0; j--) {
            src += ss[j];
            dst += ds[j];
            if (++idx[j] < shape[j]) break;
            src -= (size_t)shape[j] * ss[j];
            dst -= (size_t)shape[j] * ds[j];
            idx[j] = 0;
        }
        if (j < 0) return;
    }
}

static void strides_c(int ndim, size_t itemsize, const int64_t *shape, size_t *st) {
    size_t s = itemsize;
    for (int k = ndim - 1; k >= 0; k--) {
        st[k] = s;
        s *= (size_t)shape[k];
    }
}

static void strides_f(int ndim, size_t itemsize, const int64_t *shape, size_t *st) {
    size_t s = itemsize;
    for (int k = 0; k < ndim; k++) {
        st[k] = s;
        s *= (size_t)shape[k];
    }
}

/* With at most one dimension C and F order coincide: copy and return 1. */
static int copy_if_1d(int ndim, size_t itemsize, const int64_t *shape, const void *src, void *dst) {
    if (ndim > 1) return 0;
    size_t n = itemsize;
    for (int k = 0; k < ndim; k++) n *= (size_t)shape[k];
    memcpy(dst, src, n);
    return 1;
}

void lb__transpose_f_to_c(int ndim, size_t itemsize, const int64_t *shape, const void *src,
                          void *dst) {
    size_t fs[LB_MAX_DIMS], cs[LB_MAX_DIMS];
    if (copy_if_1d(ndim, itemsize, shape, src, dst)) return;
    strides_f(ndim, itemsize, shape, fs);
    strides_c(ndim, itemsize, shape, cs);
    /* Writes are sequential (C order over dst). */
    strided_copy(ndim, itemsize, shape, src, fs, dst, cs);
}

void lb__transpose_c_to_f(int ndim, size_t itemsize, const int64_t *shape, const void *src,
                          void *dst) {
    size_t fs[LB_MAX_DIMS], cs[LB_MAX_DIMS];
    if (copy_if_1d(ndim, itemsize, shape, src, dst)) return;
    strides_f(ndim, itemsize, shape, fs);
    strides_c(ndim, itemsize, shape, cs);
    /* Walk the dimensions reversed so that writes (F order) are sequential. */
    int64_t rshape[LB_MAX_DIMS];
    size_t rfs[LB_MAX_DIMS], rcs[LB_MAX_DIMS];
    for (int k = 0; k < ndim; k++) {
        rshape[k] = shape[ndim - 1 - k];
        rfs[k] = fs[ndim - 1 - k];
        rcs[k] = cs[ndim - 1 - k];
    }
    strided_copy(ndim, itemsize, rshape, src, rcs, dst, rfs);
}

void lb__dataset_fill(const lb__dataset *d, void *dst, size_t nbytes) {
    int zero = 1;
    for (size_t i = 0; i < d->itemsize; i++) zero &= d->fill[i] == 0;
    if (zero || d->fill_null) {
        memset(dst, 0, nbytes);
        return;
    }
    uint8_t *p = dst;
    if (nbytes < d->itemsize) return;
    memcpy(p, d->fill, d->itemsize);
    size_t done = d->itemsize;
    while (done < nbytes) { /* doubling copies */
        size_t k = done < nbytes - done ? done : nbytes - done;
        memcpy(p + done, p, k);
        done += k;
    }
}

int lb__dataset_chunk_extent(const lb__dataset *d, const int64_t *cidx, int64_t *ext) {
    int edge = 0;
    for (int k = 0; k < d->ndim; k++) {
        int64_t o = cidx[k] * d->chunks[k];
        int64_t e = d->shape[k] - o;
        if (e > d->chunks[k]) e = d->chunks[k];
        if (e < 0) e = 0;
        ext[k] = e;
        edge |= e < d->chunks[k];
    }
    return edge;
}

uint64_t lb__dataset_chunk_linear(const lb__dataset *d, const int64_t *cidx) {
    uint64_t key = 0;
    for (int k = 0; k < d->ndim; k++) key = key * (uint64_t)d->grid[k] + (uint64_t)cidx[k];
    return key;
}

/* ------------------------------------------------------------------------
 * Metadata helpers shared by zarr2.c and n5.c
 * ------------------------------------------------------------------------ */

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

int lb__dataset_check_geometry(lb__dataset *d, const char *where, const char *shape_key,
                               const char *chunks_key, int reversed, lb_error *err) {
    int nd = d->ndim;
    if (nd < 0 || nd > LB_MAX_DIMS)
        return lb__err(err, LB_ELIMIT, "%s: %s: %d dimensions, the limit is %d", where, shape_key,
                       nd, LB_MAX_DIMS);
    for (int k = 0; k < nd; k++) {
        int fk = reversed ? nd - 1 - k : k; /* index as written in the file */
        if (d->shape[k] < 0)
            return lb__err(err, LB_EFORMAT, "%s: %s[%d]: expected a non-negative integer, found %lld",
                           where, shape_key, fk, (long long)d->shape[k]);
        if (d->chunks[k] <= 0)
            return lb__err(err, LB_EFORMAT, "%s: %s[%d]: expected a positive integer, found %lld",
                           where, chunks_key, fk, (long long)d->chunks[k]);
    }
    int64_t elems = 1;
    for (int k = 0; k < nd; k++) {
        if (lb__mul_i64(elems, d->chunks[k], &elems) || (uint64_t)elems > LB__MAX_CHUNK_BYTES)
            return lb__err(err, LB_ELIMIT, "%s: %s: one chunk exceeds the limit of %zu bytes", where,
                           chunks_key, LB__MAX_CHUNK_BYTES);
    }
    size_t cb;
    if (lb__mul_size((size_t)elems, d->itemsize, &cb) || cb > LB__MAX_CHUNK_BYTES)
        return lb__err(err, LB_ELIMIT, "%s: %s: one chunk is %lld elements of %zu bytes, more than the limit of %zu bytes",
                       where, chunks_key, (long long)elems, d->itemsize, LB__MAX_CHUNK_BYTES);
    /* The array's byte size must fit int64 and size_t (zero-length
     * dimensions do not excuse the others). */
    int64_t total = (int64_t)d->itemsize;
    for (int k = 0; k < nd; k++) {
        int64_t s = d->shape[k] > 0 ? d->shape[k] : 1;
        if (lb__mul_i64(total, s, &total) || (uint64_t)total > SIZE_MAX)
            return lb__err(err, LB_ELIMIT, "%s: %s: the array's size in bytes overflows", where,
                           shape_key);
    }
    for (int k = 0; k < nd; k++) d->grid[k] = lb__ceildiv(d->shape[k], d->chunks[k]);
    d->chunk_bytes = cb;
    return 0;
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

/* ------------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------------ */

static void io_pool_free(lb__io_pool *p);

void lb__dataset_free(lb__dataset *d) {
    if (!d) return;
    lb__chunk_cache_free(d->cache);
    io_pool_free(d->io_pool);
    json_object_put(d->meta);
    json_object_put(d->attrs);
    free(d->path);
    free(d);
}

/* Read an optional JSON object file; *out = NULL when absent. */
static int read_object(const char *dir, const char *name, json_object **out, lb_error *err) {
    *out = NULL;
    char *p = lb__path_join(dir, name, err);
    if (!p) return LB_ENOMEM;
    json_object *o = NULL;
    /* A missing file is not an error here, and a successful call must leave
     * the caller's error record untouched: read into a scratch record. */
    lb_error local = {0};
    int rc = lb__json_read_file(p, &o, &local);
    if (rc == LB_ENOTFOUND && !lb__store_exists(p)) {
        rc = 0;
    } else if (rc) {
        if (err) *err = local;
    } else if (!rc && !json_object_is_type(o, json_type_object)) {
        rc = lb__err(err, LB_EFORMAT, "%s: expected a JSON object, found %s", p,
                     lb__json_type_name(o));
        json_object_put(o);
    } else if (!rc) {
        *out = o;
    }
    free(p);
    return rc;
}

/* 1 if `dir` holds a dataset's metadata (any format we know, v3 arrays
 * included) — what OVERWRITE may remove. */
static int holds_dataset(const char *dir) {
    static const char *const names[] = {".zarray", "zarr.json", "attributes.json"};
    int yes = 0;
    for (size_t i = 0; i < 3 && !yes; i++) {
        char *p = lb__path_join(dir, names[i], NULL);
        if (!p) return 0;
        if (i == 0) {
            yes = lb__store_exists(p);
        } else {
            json_object *o = NULL;
            if (lb__json_read_file(p, &o, NULL) == 0 && json_object_is_type(o, json_type_object)) {
                if (i == 2) {
                    yes = lb__json_get(o, "dimensions") != NULL;
                } else {
                    json_object *t = lb__json_get(o, "node_type");
                    yes = t && json_object_is_type(t, json_type_string) &&
                          strcmp(json_object_get_string(t), "array") == 0;
                }
            }
            json_object_put(o);
        }
        free(p);
    }
    return yes;
}

static int open_at(char *path, int writable, lb__dataset **out, lb_error *err) {
    *out = NULL;
    lb__dataset *d = lb__calloc(1, sizeof *d, "a dataset", err);
    if (!d) {
        free(path);
        return LB_ENOMEM;
    }
    d->path = path;
    d->writable = writable;
    int rc = 0;
    char *zarray = lb__path_join(path, ".zarray", err);
    char *attrs = lb__path_join(path, "attributes.json", err);
    char *zjson = lb__path_join(path, "zarr.json", err);
    if (!zarray || !attrs || !zjson) {
        rc = LB_ENOMEM;
        goto done;
    }
    if (lb__store_exists(zarray)) {
        d->format = LB_FORMAT_ZARR2;
        if ((rc = lb__json_read_file(zarray, &d->meta, err))) goto done;
        if ((rc = lb__zarr2_parse(d, d->meta, zarray, err))) goto done;
        /* Without the key the layout is the store's, not the metadata's:
         * look at the chunks rather than read nested ones as absent. */
        if (!lb__json_get(d->meta, "dimension_separator") &&
            (rc = lb__zarr2_detect_separator(d, err)))
            goto done;
        if ((rc = read_object(path, ".zattrs", &d->attrs, err))) goto done;
        if (!d->attrs && !(d->attrs = json_object_new_object())) {
            rc = lb__err(err, LB_ENOMEM, "out of memory");
            goto done;
        }
        goto done;
    }
    if (lb__store_exists(attrs)) {
        json_object *m = NULL;
        if ((rc = lb__json_read_file(attrs, &m, err))) goto done;
        if (json_object_is_type(m, json_type_object) && lb__json_get(m, "dimensions")) {
            d->format = LB_FORMAT_N5;
            d->meta = m;
            rc = lb__n5_parse(d, m, attrs, err);
            goto done;
        }
        json_object_put(m);
    }
    if (lb__store_exists(zjson)) {
        rc = lb__err(err, LB_EUNSUPPORTED, "%s: Zarr v3 is not supported yet", path);
        goto done;
    }
    rc = lb__err(err, LB_ENOTFOUND,
                 "%s: no Zarr v2 (.zarray) or N5 (attributes.json with dimensions) dataset here%s",
                 path, lb__store_exists(path) ? "" : " (the path does not exist)");
done:
    free(zarray);
    free(attrs);
    free(zjson);
    if (rc) lb__dataset_free(d);
    else *out = d;
    return rc;
}

int lb__dataset_open(const char *path, int writable, lb__dataset **out, lb_error *err) {
    *out = NULL;
    char *p = NULL;
    int rc = lb__path_normalize(path, &p, err);
    if (rc) return rc;
    return open_at(p, writable, out, err);
}

/* ------------------------------------------------------------------------
 * Creating
 * ------------------------------------------------------------------------ */

static const char *format_name(lb_format f) { return f == LB_FORMAT_N5 ? "N5" : "Zarr v2"; }

static void dims_text(const int64_t *v, int n, char *buf, size_t size) {
    size_t len = 0;
    len += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? ", " : "", (long long)v[i]);
    if (len < size) snprintf(buf + len, size - len, "]");
}

static int codec_text(const lb__dataset *d, char *buf, size_t size) {
    if (d->codec.id == LB__CODEC_RAW) {
        snprintf(buf, size, "raw");
        return 0;
    }
    json_object *o = d->format == LB_FORMAT_N5 ? lb__codec_to_n5(&d->codec, NULL)
                                               : lb__codec_to_zarr2(&d->codec, NULL);
    json_object *s = lb__meta_sorted_copy(o, NULL);
    const char *t = s ? lb__json_string(s, 0) : NULL;
    snprintf(buf, size, "%s", t ? t : "?");
    json_object_put(s);
    json_object_put(o);
    return t ? 0 : -1;
}

/* Describe the first difference between an existing dataset and the one
 * asked for (empty when they agree). */
static void describe_difference(const lb__dataset *have, const lb__dataset *want, char *buf,
                                size_t size) {
    char a[400], b[400];
    buf[0] = '\0';
    if (have->format != want->format) {
        snprintf(buf, size, "format %s, requested %s", format_name(have->format),
                 format_name(want->format));
        return;
    }
    if (have->ndim != want->ndim ||
        memcmp(have->shape, want->shape, sizeof have->shape[0] * (size_t)want->ndim) != 0) {
        dims_text(have->shape, have->ndim, a, sizeof a);
        dims_text(want->shape, want->ndim, b, sizeof b);
        snprintf(buf, size, "shape %s, requested %s", a, b);
        return;
    }
    if (memcmp(have->chunks, want->chunks, sizeof have->chunks[0] * (size_t)want->ndim) != 0) {
        dims_text(have->chunks, have->ndim, a, sizeof a);
        dims_text(want->chunks, want->ndim, b, sizeof b);
        snprintf(buf, size, "chunks %s, requested %s", a, b);
        return;
    }
    if (have->dtype != want->dtype || have->big_endian != want->big_endian) {
        snprintf(buf, size, "a different dtype or byte order");
        return;
    }
    if (have->format == LB_FORMAT_ZARR2) {
        if (have->order_f != want->order_f) {
            snprintf(buf, size, "order %s, requested %s", have->order_f ? "F" : "C",
                     want->order_f ? "F" : "C");
            return;
        }
        if (have->separator != want->separator) {
            snprintf(buf, size, "dimension_separator \"%c\", requested \"%c\"", have->separator,
                     want->separator);
            return;
        }
        lb__dataset_fill_json(have, a, sizeof a);
        lb__dataset_fill_json(want, b, sizeof b);
        if (strcmp(a, b) != 0) {
            snprintf(buf, size, "fill_value %s, requested %s", a, b);
            return;
        }
    }
    codec_text(have, a, sizeof a);
    codec_text(want, b, sizeof b);
    if (strcmp(a, b) != 0) snprintf(buf, size, "compressor %s, requested %s", a, b);
}

int lb__dataset_create(const char *path, const lb__dataset_spec *spec, lb__create_mode mode,
                       lb__dataset **out, lb_error *err) {
    *out = NULL;
    char *p = NULL;
    json_object *meta = NULL;
    lb__dataset want;
    memset(&want, 0, sizeof want);
    int rc = lb__path_normalize(path, &p, err);
    if (rc) return rc;
    if (spec->attrs && !json_object_is_type(spec->attrs, json_type_object)) {
        rc = lb__err(err, LB_EINVAL, "%s: attributes must be a JSON object", p);
        goto done;
    }
    /* Build the metadata and parse it back: the one validation path for
     * files we read and files we write. */
    char where[1200];
    if (spec->format == LB_FORMAT_ZARR2) {
        snprintf(where, sizeof where, "%s/.zarray", p);
        rc = lb__zarr2_build(spec, &meta, err);
        if (!rc) rc = lb__zarr2_parse(&want, meta, where, err);
    } else if (spec->format == LB_FORMAT_N5) {
        snprintf(where, sizeof where, "%s/attributes.json", p);
        rc = lb__n5_build(spec, &meta, err);
        if (!rc) rc = lb__n5_parse(&want, meta, where, err);
        json_object_put(want.attrs);
        want.attrs = NULL;
    } else {
        rc = lb__err(err, LB_EINVAL, "%s: unknown format %d", p, (int)spec->format);
    }
    if (rc) {
        if (err && rc != LB_ENOMEM && !strstr(err->message, p)) lb__err_prefix(err, "%s", p);
        goto done;
    }
    want.format = spec->format;

    if (lb__store_exists(p)) {
        int dataset = holds_dataset(p);
        int empty = lb__store_is_empty_dir(p);
        if (mode == LB__CREATE_NEW) {
            rc = lb__err(err, LB_EEXIST, "%s: already exists", p);
            goto done;
        }
        if (!dataset && !empty) {
            rc = lb__err(err, LB_EEXIST, "%s: exists and is not a dataset; refusing to replace it", p);
            goto done;
        }
        if (mode == LB__CREATE_OVERWRITE && dataset) {
            if ((rc = lb__store_remove_tree(p, err))) goto done;
        } else if (mode == LB__CREATE_RESUME && dataset) {
            lb__dataset *have = NULL;
            char *q = lb__strdup(p, err);
            if (!q) {
                rc = LB_ENOMEM;
                goto done;
            }
            if ((rc = open_at(q, 1, &have, err))) goto done;
            char diff[1024];
            describe_difference(have, &want, diff, sizeof diff);
            if (diff[0]) {
                lb__dataset_free(have);
                rc = lb__err(err, LB_EEXIST, "%s: exists with different metadata (%s)", p, diff);
                goto done;
            }
            /* Temporaries of the interrupted run are garbage now. */
            if ((rc = lb__store_remove_temps(p, err))) {
                lb__dataset_free(have);
                goto done;
            }
            *out = have;
            goto done;
        }
    }
    if (spec->format == LB_FORMAT_ZARR2) rc = lb__zarr2_write_meta(p, meta, spec->attrs, err);
    else rc = lb__n5_write_meta(p, meta, err);
    if (rc) goto done;
    rc = open_at(p, 1, out, err);
    p = NULL; /* owned by the dataset (or freed) now */
done:
    json_object_put(meta);
    json_object_put(want.attrs);
    free(p);
    return rc;
}

/* ------------------------------------------------------------------------
 * Attributes
 * ------------------------------------------------------------------------ */

int lb__meta_write(const char *dir, const char *name, json_object *o, lb_error *err) {
    char *p = lb__path_join(dir, name, err);
    if (!p) return LB_ENOMEM;
    lb__buf b = {0};
    int rc = 0;
    const char *text = json_object_is_type(o, json_type_object) && json_object_object_length(o) == 0
                           ? "{}" /* json-c would print "{\n}" */
                           : lb__json_string(o, 1);
    if (!text) rc = lb__err(err, LB_ENOMEM, "out of memory serialising %s", p);
    /* json-c indents by two spaces; strings never hold a raw newline, so
     * the leading spaces of each line are indentation and can be doubled.
     * The text is written as pure ASCII (\u escapes, as zarr-python writes
     * it): zarr-python 2 decodes metadata as ASCII and fails on raw UTF-8. */
    while (!rc && *text) {
        size_t sp = strspn(text, " ");
        size_t len = strcspn(text + sp, "\n");
        for (size_t i = 0; i < 2 * sp && !rc; i++) rc = lb__buf_append(&b, " ", 1, err);
        if (!rc) rc = lb__json_append_ascii(&b, text + sp, len, err);
        text += sp + len;
        if (!rc && *text == '\n') {
            rc = lb__buf_append(&b, "\n", 1, err);
            text++;
        }
    }
    if (!rc) rc = lb__store_write_atomic(p, b.data, b.size, err);
    lb__buf_free(&b);
    free(p);
    return rc;
}

int lb__dataset_set_attrs(lb__dataset *d, json_object *attrs, lb_error *err) {
    if (!d->writable) return lb__err(err, LB_EINVAL, "%s: the dataset was opened read-only", d->path);
    if (attrs && !json_object_is_type(attrs, json_type_object))
        return lb__err(err, LB_EINVAL, "%s: attributes must be a JSON object", d->path);
    json_object *user = attrs ? lb__meta_sorted_copy(attrs, err) : json_object_new_object();
    if (!user) return err && err->code ? err->code : LB_ENOMEM;
    int rc = 0;
    if (d->format == LB_FORMAT_ZARR2) {
        rc = lb__meta_write(d->path, ".zattrs", user, err);
        if (rc) {
            json_object_put(user);
            return rc;
        }
        json_object_put(d->attrs);
        d->attrs = user;
        return 0;
    }
    /* N5: one file holds both; keep the dataset keys, replace the rest. */
    json_object *merged = json_object_new_object();
    if (!merged) rc = lb__err(err, LB_ENOMEM, "out of memory");
    if (!rc) {
        json_object_object_foreach(user, key, val) {
            if (lb__n5_is_dataset_key(key)) {
                rc = lb__err(err, LB_EINVAL, "%s: attribute \"%s\" is reserved by N5", d->path, key);
                break;
            }
            if (json_object_object_add(merged, key, json_object_get(val)) != 0) {
                json_object_put(val);
                rc = lb__err(err, LB_ENOMEM, "out of memory");
                break;
            }
        }
    }
    if (!rc) {
        json_object_object_foreach(d->meta, key, val) {
            if (!lb__n5_is_dataset_key(key)) continue;
            if (json_object_object_add(merged, key, json_object_get(val)) != 0) {
                json_object_put(val);
                rc = lb__err(err, LB_ENOMEM, "out of memory");
                break;
            }
        }
    }
    json_object *sorted = rc ? NULL : lb__meta_sorted_copy(merged, err);
    if (!rc && !sorted) rc = err && err->code ? err->code : LB_ENOMEM;
    if (!rc) rc = lb__meta_write(d->path, "attributes.json", sorted, err);
    json_object_put(merged);
    if (rc) {
        json_object_put(sorted);
        json_object_put(user);
        return rc;
    }
    json_object_put(d->meta);
    d->meta = sorted;
    json_object_put(d->attrs);
    d->attrs = user;
    return 0;
}

int lb__group_attrs(const char *dir, lb_format format, json_object **out, lb_error *err) {
    return read_object(dir, format == LB_FORMAT_N5 ? "attributes.json" : ".zattrs", out, err);
}

void lb__dataset_fill_json(const lb__dataset *d, char *buf, size_t size) {
    if (!size) return;
    if (d->fill_null) {
        snprintf(buf, size, "null");
        return;
    }
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    float f;
    double x;
    switch (d->dtype) {
    case LB_DTYPE_UINT8: memcpy(&u8, d->fill, 1); snprintf(buf, size, "%u", u8); break;
    case LB_DTYPE_UINT16: memcpy(&u16, d->fill, 2); snprintf(buf, size, "%u", u16); break;
    case LB_DTYPE_UINT32: memcpy(&u32, d->fill, 4); snprintf(buf, size, "%lu", (unsigned long)u32); break;
    case LB_DTYPE_UINT64: memcpy(&u64, d->fill, 8); snprintf(buf, size, "%llu", (unsigned long long)u64); break;
    case LB_DTYPE_INT8: memcpy(&u8, d->fill, 1); snprintf(buf, size, "%d", (int8_t)u8); break;
    case LB_DTYPE_INT16: memcpy(&u16, d->fill, 2); snprintf(buf, size, "%d", (int16_t)u16); break;
    case LB_DTYPE_INT32: memcpy(&u32, d->fill, 4); snprintf(buf, size, "%ld", (long)(int32_t)u32); break;
    case LB_DTYPE_INT64: memcpy(&u64, d->fill, 8); snprintf(buf, size, "%lld", (long long)(int64_t)u64); break;
    case LB_DTYPE_BOOL: snprintf(buf, size, "%s", d->fill[0] ? "true" : "false"); break;
    case LB_DTYPE_FLOAT32:
    case LB_DTYPE_FLOAT64:
        if (d->dtype == LB_DTYPE_FLOAT32) {
            memcpy(&f, d->fill, 4);
            x = f;
        } else {
            memcpy(&x, d->fill, 8);
        }
        if (isnan(x)) snprintf(buf, size, "\"NaN\"");
        else if (isinf(x)) snprintf(buf, size, x > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        else snprintf(buf, size, "%.17g", x);
        break;
    }
}

static int io_pool_new(lb__io_pool **out, lb_error *err);

int lb__dataset_set_threads(lb__dataset *d, int threads, lb_error *err) {
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (threads < 1)
        return lb__err(err, LB_EINVAL, "read threads must be >= 1 (or 0 for one per CPU), not %d",
                       threads);
    if (threads > 1 && !d->io_pool) {
        int rc = io_pool_new(&d->io_pool, err);
        if (rc) return rc;
    }
    d->read_threads = threads < LB__MAX_READ_THREADS ? threads : LB__MAX_READ_THREADS;
    return 0;
}

int lb__dataset_set_cache(lb__dataset *d, size_t bytes, lb_error *err) {
    lb__chunk_cache_free(d->cache);
    d->cache = NULL;
    if (bytes == 0) return 0;
    int64_t chunks = 1; /* the grid's chunk count; a slot more is never used */
    for (int k = 0; k < d->ndim && chunks >= 0; k++)
        if (lb__mul_i64(chunks, d->grid[k], &chunks)) chunks = -1;
    return lb__chunk_cache_new(bytes, d->chunk_bytes, chunks, &d->cache, err);
}

/* ------------------------------------------------------------------------
 * Chunks
 * ------------------------------------------------------------------------ */

int lb__dataset_chunk_key(const lb__dataset *d, const int64_t *cidx, char *buf, size_t size) {
    return d->format == LB_FORMAT_N5 ? lb__n5_chunk_key(d, cidx, buf, size)
                                     : lb__zarr2_chunk_key(d, cidx, buf, size);
}

int lb__dataset_chunk_path(const lb__dataset *d, const int64_t *cidx, char *buf, size_t size) {
    int n = snprintf(buf, size, "%s/", d->path);
    size_t used = (size_t)n < size ? (size_t)n : size;
    int k = lb__dataset_chunk_key(d, cidx, size ? buf + used : buf, size ? size - used : 0);
    if (size && (size_t)n >= size) buf[size - 1] = '\0';
    return n + k;
}

/* The chunk path in `stack` when it fits, else in a new allocation (*heap,
 * freed by the caller). */
static const char *chunk_path(const lb__dataset *d, const int64_t *cidx, char *stack,
                              size_t size, char **heap, lb_error *err) {
    *heap = NULL;
    int n = lb__dataset_chunk_path(d, cidx, stack, size);
    if ((size_t)n < size) return stack;
    *heap = lb__malloc((size_t)n + 1, "a chunk path", err);
    if (!*heap) return NULL;
    lb__dataset_chunk_path(d, cidx, *heap, (size_t)n + 1);
    return *heap;
}

static int check_cidx(const lb__dataset *d, const int64_t *cidx, lb_error *err) {
    for (int k = 0; k < d->ndim; k++)
        if (cidx[k] < 0 || cidx[k] >= d->grid[k])
            return lb__err(err, LB_EINVAL, "%s: chunk index %lld in dimension %d is outside the grid (0..%lld)",
                           d->path, (long long)cidx[k], k, (long long)d->grid[k] - 1);
    return 0;
}

int lb__dataset_chunk_exists(const lb__dataset *d, const int64_t *cidx) {
    char stack[1024], *heap;
    const char *p = chunk_path(d, cidx, stack, sizeof stack, &heap, NULL);
    int yes = p && lb__store_is_file(p);
    free(heap);
    return yes;
}

void lb__io_free(lb__io *io) {
    if (!io) return;
    lb__buf_free(&io->file);
    lb__buf_free(&io->scratch);
    lb__buf_free(&io->scratch2);
    lb__buf_free(&io->chunk);
}

/* Where one chunk's data goes: the whole chunk (chunk_bytes at `whole`), or
 * the box `cnt` at `cstart` of the chunk into `dst` (dims dst_shape) at
 * dst_start. */
typedef struct chunk_sink {
    uint8_t *whole;
    const int64_t *cstart, *cnt;
    uint8_t *dst;
    const int64_t *dst_shape, *dst_start;
} chunk_sink;

/* Copy the sink's part of a decoded full chunk. */
static void sink_copy(const lb__dataset *d, const chunk_sink *s, const uint8_t *chunk) {
    if (s->whole) {
        if (s->whole != chunk) memcpy(s->whole, chunk, d->chunk_bytes);
    } else {
        lb__copy_box(d->ndim, d->itemsize, s->cnt, chunk, d->chunks, s->cstart, s->dst,
                     s->dst_shape, s->dst_start);
    }
}

/* Set the sink's part to the fill value (an absent chunk). */
static void sink_fill(const lb__dataset *d, const chunk_sink *s) {
    if (s->whole) {
        lb__dataset_fill(d, s->whole, d->chunk_bytes);
        return;
    }
    int n = d->ndim;
    if (n == 0) { /* one element */
        lb__dataset_fill(d, s->dst, d->itemsize);
        return;
    }
    for (int k = 0; k < n; k++)
        if (s->cnt[k] <= 0) return;
    /* Runs along the last dimension, odometer over the others. */
    size_t run = (size_t)s->cnt[n - 1] * d->itemsize;
    int64_t idx[LB_MAX_DIMS] = {0};
    for (;;) {
        size_t off = 0;
        for (int k = 0; k < n; k++)
            off = off * (size_t)s->dst_shape[k] + (size_t)(s->dst_start[k] + idx[k]);
        lb__dataset_fill(d, s->dst + off * d->itemsize, run);
        int j = n - 2;
        for (; j >= 0; j--) {
            if (++idx[j] < s->cnt[j]) break;
            idx[j] = 0;
        }
        if (j < 0) return;
    }
}

/* Deliver chunk `cidx` into the sink; *present = 0 when it is not stored
 * (the sink then holds the fill value). With a cache: a hit copies from the
 * cached chunk; a miss decodes straight into a cache slot and copies from
 * there (when no slot can be had, into the sink or io->chunk as without a
 * cache). Decoding and copying run outside the cache's lock. */
static int fetch_chunk(const lb__dataset *d, const int64_t *cidx, const chunk_sink *s,
                       int *present, lb__io *io, lb_error *err) {
    lb__chunk_cache *cache = d->cache;
    uint64_t key = 0;
    lb__cache_ref ref = {NULL, NULL, 0};
    if (cache) {
        key = lb__dataset_chunk_linear(d, cidx);
        if (lb__chunk_cache_lookup(cache, key, &ref)) {
            *present = ref.present;
            if (ref.present) sink_copy(d, s, ref.data);
            else sink_fill(d, s);
            lb__chunk_cache_release(cache, &ref);
            return 0;
        }
    }
    char stack[1024], *heap;
    const char *p = chunk_path(d, cidx, stack, sizeof stack, &heap, err);
    if (!p) return LB_ENOMEM;
    int rc = lb__store_read(p, LB__MAX_CHUNK_FILE_BYTES, &io->file, err);
    if (rc == LB_ENOTFOUND) {
        /* Absent chunk: the fill value (Zarr v2 and N5 alike). */
        *present = 0;
        sink_fill(d, s);
        if (cache) lb__chunk_cache_put_absent(cache, key);
        free(heap);
        return 0;
    }
    if (rc) goto done;
    uint8_t *out;
    if (cache && lb__chunk_cache_reserve(cache, key, &ref)) {
        out = ref.data;
    } else if (s->whole) {
        out = s->whole; /* decoders write exactly chunk_bytes */
    } else {
        if ((rc = lb__buf_reserve(&io->chunk, d->chunk_bytes, err))) goto done;
        out = io->chunk.data;
    }
    rc = d->format == LB_FORMAT_N5
             ? lb__n5_decode(d, io->file.data, io->file.size, out, &io->scratch, err)
             : lb__zarr2_decode(d, io->file.data, io->file.size, out, &io->scratch, err);
    if (rc && rc != LB_ENOMEM) lb__err_prefix(err, "%s", p);
    if (!rc) {
        *present = 1;
        sink_copy(d, s, out); /* before commit: the slot is still ours */
    }
    if (ref.entry) lb__chunk_cache_commit(cache, &ref, rc == 0);
done:
    free(heap);
    return rc;
}

static int read_chunk(const lb__dataset *d, const int64_t *cidx, void *dst, int *present,
                      lb__io *b, lb_error *err) {
    chunk_sink s = {dst, NULL, NULL, NULL, NULL, NULL};
    return fetch_chunk(d, cidx, &s, present, b, err);
}

static int write_chunk(const lb__dataset *d, const int64_t *cidx, const void *src,
                       size_t *out_bytes, lb__io *b, lb_error *err) {
    if (!d->writable) return lb__err(err, LB_EINVAL, "%s: the dataset was opened read-only", d->path);
    char stack[1024], *heap;
    const char *p = chunk_path(d, cidx, stack, sizeof stack, &heap, err);
    if (!p) return LB_ENOMEM;
    int rc = d->format == LB_FORMAT_N5
                 ? lb__n5_encode(d, cidx, src, &b->file, &b->scratch, err)
                 : lb__zarr2_encode(d, cidx, src, &b->file, &b->scratch, &b->scratch2, err);
    if (rc) {
        if (rc != LB_ENOMEM) lb__err_prefix(err, "%s", p);
        goto done;
    }
    /* The cached copy is stale from now on, whatever happens below. */
    if (d->cache) lb__chunk_cache_invalidate(d->cache, lb__dataset_chunk_linear(d, cidx));
    rc = lb__store_write_atomic(p, b->file.data, b->file.size, err);
    if (rc == LB_ENOTFOUND) {
        /* Nested keys ("1/0/3", N5): create the folders on first use only. */
        char *dir = lb__path_parent(p, err);
        if (!dir) {
            rc = LB_ENOMEM;
            goto done;
        }
        rc = lb__store_mkdirs(dir, err);
        free(dir);
        if (!rc) rc = lb__store_write_atomic(p, b->file.data, b->file.size, err);
    }
    if (!rc && out_bytes) *out_bytes = b->file.size;
done:
    free(heap);
    return rc;
}

int lb__dataset_read_chunk(const lb__dataset *d, const int64_t *cidx, void *dst, int *present,
                           lb_error *err) {
    int rc = check_cidx(d, cidx, err);
    if (rc) return rc;
    lb__io b = {{0}, {0}, {0}, {0}};
    rc = read_chunk(d, cidx, dst, present, &b, err);
    lb__io_free(&b);
    return rc;
}

int lb__dataset_write_chunk_io(const lb__dataset *d, const int64_t *cidx, const void *src,
                               size_t *out_bytes, lb__io *io, lb_error *err) {
    int rc = check_cidx(d, cidx, err);
    if (rc) return rc;
    lb__io local = {{0}, {0}, {0}, {0}};
    rc = write_chunk(d, cidx, src, out_bytes, io ? io : &local, err);
    lb__io_free(&local);
    return rc;
}

int lb__dataset_write_chunk(const lb__dataset *d, const int64_t *cidx, const void *src,
                            size_t *out_bytes, lb_error *err) {
    return lb__dataset_write_chunk_io(d, cidx, src, out_bytes, NULL, err);
}

/* ------------------------------------------------------------------------
 * Regions
 * ------------------------------------------------------------------------ */

static int check_region(const lb__dataset *d, const int64_t *start, const int64_t *count,
                        int *empty, lb_error *err) {
    *empty = 0;
    for (int k = 0; k < d->ndim; k++) {
        if (start[k] < 0 || count[k] < 0 || start[k] > d->shape[k] ||
            count[k] > d->shape[k] - start[k]) {
            char sh[512];
            dims_text(d->shape, d->ndim, sh, sizeof sh);
            return lb__err(err, LB_EROI,
                           "%s: region start %lld count %lld in dimension %d is outside the shape %s",
                           d->path, (long long)start[k], (long long)count[k], k, sh);
        }
        if (count[k] == 0) *empty = 1;
    }
    return 0;
}

/* Visit every chunk the region touches: for each, the chunk index, the box
 * inside the chunk (cstart, cnt) and its place in the region (rstart). */
typedef int (*chunk_visit)(const lb__dataset *d, const int64_t *cidx, const int64_t *cstart,
                           const int64_t *rstart, const int64_t *cnt, void *ctx, lb_error *err);

/* The box of chunk cidx that the region covers. */
static void chunk_box(const lb__dataset *d, const int64_t *start, const int64_t *count,
                      const int64_t *cidx, int64_t *cstart, int64_t *rstart, int64_t *cnt) {
    for (int k = 0; k < d->ndim; k++) {
        int64_t o = cidx[k] * d->chunks[k];
        int64_t lo = start[k] > o ? start[k] : o;
        int64_t end = start[k] + count[k], cend = o + d->chunks[k];
        int64_t hi = end < cend ? end : cend;
        cstart[k] = lo - o;
        rstart[k] = lo - start[k];
        cnt[k] = hi - lo;
    }
}

/* The chunks a region touches: the first chunk index and the number of
 * chunks per dimension, numbered 0 .. total - 1 in C order. */
typedef struct region_grid {
    int64_t c0[LB_MAX_DIMS], nc[LB_MAX_DIMS], total;
} region_grid;

static void region_chunks(const lb__dataset *d, const int64_t *start, const int64_t *count,
                          region_grid *g) {
    g->total = 1;
    for (int k = 0; k < d->ndim; k++) {
        g->c0[k] = start[k] / d->chunks[k];
        g->nc[k] = (start[k] + count[k] - 1) / d->chunks[k] - g->c0[k] + 1;
        g->total *= g->nc[k]; /* <= the grid's chunk count, which fits */
    }
}

/* Visit chunk number i of the region's grid. */
static int visit_chunk(const lb__dataset *d, const int64_t *start, const int64_t *count,
                       const region_grid *g, int64_t i, chunk_visit fn, void *ctx,
                       lb_error *err) {
    int64_t cidx[LB_MAX_DIMS], cstart[LB_MAX_DIMS], rstart[LB_MAX_DIMS], cnt[LB_MAX_DIMS];
    for (int k = d->ndim - 1; k >= 0; k--) {
        cidx[k] = g->c0[k] + i % g->nc[k];
        i /= g->nc[k];
    }
    chunk_box(d, start, count, cidx, cstart, rstart, cnt);
    return fn(d, cidx, cstart, rstart, cnt, ctx, err);
}

static int for_each_chunk(const lb__dataset *d, const int64_t *start, const int64_t *count,
                          chunk_visit fn, void *ctx, lb_error *err) {
    region_grid g;
    region_chunks(d, start, count, &g);
    for (int64_t i = 0; i < g.total; i++) {
        int rc = visit_chunk(d, start, count, &g, i, fn, ctx, err);
        if (rc) return rc;
    }
    return 0;
}

typedef struct region_ctx {
    const int64_t *count; /* region shape */
    uint8_t *chunk;       /* write: one full chunk */
    lb__io *io;
    void *dst;            /* read */
    const void *src;      /* write */
} region_ctx;

/* Where the whole chunk at rstart (cnt == chunks) starts in the region
 * buffer, when it lands there as one contiguous run of bytes: every
 * dimension after the first spans the chunk, the region and the chunk alike.
 * NULL otherwise. */
static uint8_t *contiguous_in_region(const lb__dataset *d, const region_ctx *c,
                                     const int64_t *rstart, const int64_t *cnt) {
    size_t offset = (size_t)rstart[0];
    for (int k = 0; k < d->ndim; k++) {
        if (cnt[k] != d->chunks[k]) return NULL;
        if (k > 0) {
            if (c->count[k] != d->chunks[k] || rstart[k] != 0) return NULL;
            offset *= (size_t)c->count[k];
        }
    }
    return (uint8_t *)c->dst + offset * d->itemsize;
}

static int read_visit(const lb__dataset *d, const int64_t *cidx, const int64_t *cstart,
                      const int64_t *rstart, const int64_t *cnt, void *vctx, lb_error *err) {
    region_ctx *c = vctx;
    int present;
    chunk_sink s = {NULL, cstart, cnt, (uint8_t *)c->dst, c->count, rstart};
    /* A whole chunk landing contiguously in dst is decoded straight there. */
    s.whole = d->ndim > 0 ? contiguous_in_region(d, c, rstart, cnt) : NULL;
    return fetch_chunk(d, cidx, &s, &present, c->io, err);
}

static int write_visit(const lb__dataset *d, const int64_t *cidx, const int64_t *cstart,
                       const int64_t *rstart, const int64_t *cnt, void *vctx, lb_error *err) {
    region_ctx *c = vctx;
    int64_t ext[LB_MAX_DIMS];
    int edge = lb__dataset_chunk_extent(d, cidx, ext);
    int whole = 1;
    for (int k = 0; k < d->ndim; k++) whole &= cstart[k] == 0 && cnt[k] == ext[k];
    int rc = 0;
    if (!whole) {
        int present;
        rc = read_chunk(d, cidx, c->chunk, &present, c->io, err); /* read-modify-write */
    } else if (edge) {
        lb__dataset_fill(d, c->chunk, d->chunk_bytes);
    }
    if (rc) return rc;
    lb__copy_box(d->ndim, d->itemsize, cnt, c->src, c->count, rstart, c->chunk, d->chunks, cstart);
    return write_chunk(d, cidx, c->chunk, NULL, c->io, err);
}

/* Walk the chunks of a region with `visit`, with the scratch chunk and
 * buffers of `io` (NULL: this call's own). */
static int region_io(const lb__dataset *d, const int64_t *start, const int64_t *count,
                     void *dst, const void *src, chunk_visit visit, lb__io *io,
                     lb_error *err) {
    int empty;
    int rc = check_region(d, start, count, &empty, err);
    if (rc || empty) return rc;
    lb__io local = {{0}, {0}, {0}, {0}};
    region_ctx c;
    memset(&c, 0, sizeof c);
    c.count = count;
    c.dst = dst;
    c.src = src;
    c.io = io ? io : &local;
    /* Writes assemble each chunk in io->chunk; reads take it when needed. */
    if (src) rc = lb__buf_reserve(&c.io->chunk, d->chunk_bytes, err);
    if (!rc) {
        c.chunk = c.io->chunk.data;
        rc = for_each_chunk(d, start, count, visit, &c, err);
    }
    lb__io_free(&local);
    return rc;
}

/* ---- parallel reads: the chunks of one region shared out between threads */

/* Working memory of read workers, kept between reads. Worker threads are
 * new for every read, and buffers they allocate and free per read are
 * handed back to the system and faulted in again (zeroed page by page) the
 * next time: with 2 threads that made reads slower than with one. */
struct lb__io_pool {
    pthread_mutex_t mu;
    int n;
    lb__io *free[LB__MAX_READ_THREADS];
};

static int io_pool_new(lb__io_pool **out, lb_error *err) {
    lb__io_pool *p = lb__calloc(1, sizeof *p, "read buffers", err);
    if (!p) return LB_ENOMEM;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return lb__err(err, LB_ENOMEM, "cannot create a mutex for read buffers");
    }
    *out = p;
    return 0;
}

static void io_pool_free(lb__io_pool *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        lb__io_free(p->free[i]);
        free(p->free[i]);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* A kept lb__io, or a new empty one (NULL when out of memory). */
static lb__io *io_pool_take(lb__io_pool *p) {
    lb__io *io = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->n > 0) io = p->free[--p->n];
    pthread_mutex_unlock(&p->mu);
    return io ? io : calloc(1, sizeof *io);
}

/* Keep `io` for the next read (at most LB__MAX_READ_THREADS are kept). */
static void io_pool_give(lb__io_pool *p, lb__io *io) {
    if (!io) return;
    pthread_mutex_lock(&p->mu);
    int kept = p->n < LB__MAX_READ_THREADS;
    if (kept) p->free[p->n++] = io;
    pthread_mutex_unlock(&p->mu);
    if (!kept) {
        lb__io_free(io);
        free(io);
    }
}

typedef struct par_read {
    const lb__dataset *d;
    const int64_t *start, *count;
    const region_grid *grid;
    region_ctx ctx[LB__MAX_READ_THREADS]; /* per worker: own I/O buffers */
    lb__io *pooled[LB__MAX_READ_THREADS]; /* taken from d->io_pool, given back */
    lb_error err[LB__MAX_READ_THREADS];
} par_read;

static int par_read_chunk(void *user, int worker, int64_t i) {
    par_read *pr = user;
    region_ctx *c = &pr->ctx[worker];
    if (!c->io) {
        c->io = pr->pooled[worker] = io_pool_take(pr->d->io_pool);
        if (!c->io) return lb__err(&pr->err[worker], LB_ENOMEM, "out of memory for read buffers");
    }
    /* Chunks cover disjoint boxes of dst; the cache locks itself. */
    return visit_chunk(pr->d, pr->start, pr->count, pr->grid, i, read_visit, c,
                       &pr->err[worker]);
}

/* Read the region's chunks with up to d->read_threads threads; worker 0
 * (the caller) uses the caller's buffers when given, the others (and worker
 * 0 otherwise) the dataset's kept ones. */
static int read_parallel(const lb__dataset *d, const int64_t *start, const int64_t *count,
                         const region_grid *g, void *dst, lb__io *io, lb_error *err) {
    par_read *pr = lb__calloc(1, sizeof *pr, "parallel read state", err);
    if (!pr) return LB_ENOMEM;
    pr->d = d;
    pr->start = start;
    pr->count = count;
    pr->grid = g;
    for (int w = 0; w < LB__MAX_READ_THREADS; w++) {
        pr->ctx[w].count = count;
        pr->ctx[w].dst = dst;
    }
    pr->ctx[0].io = io; /* NULL: taken from the pool on first use */
    int failed = 0;
    int rc = lb__parallel_for(d->read_threads, g->total, par_read_chunk, pr, &failed);
    if (rc && err) *err = pr->err[failed];
    for (int w = 0; w < LB__MAX_READ_THREADS; w++) io_pool_give(d->io_pool, pr->pooled[w]);
    free(pr);
    return rc;
}

int lb__dataset_read_io(const lb__dataset *d, const int64_t *start, const int64_t *count,
                        void *dst, lb__io *io, lb_error *err) {
    if (d->read_threads > 1 && d->io_pool && d->ndim > 0) {
        int empty;
        int rc = check_region(d, start, count, &empty, err);
        if (rc || empty) return rc;
        region_grid g;
        region_chunks(d, start, count, &g);
        if (g.total > 1) return read_parallel(d, start, count, &g, dst, io, err);
    }
    return region_io(d, start, count, dst, NULL, read_visit, io, err);
}

int lb__dataset_read(const lb__dataset *d, const int64_t *start, const int64_t *count, void *dst,
                     lb_error *err) {
    return lb__dataset_read_io(d, start, count, dst, NULL, err);
}

int lb__dataset_write(lb__dataset *d, const int64_t *start, const int64_t *count, const void *src,
                      lb_error *err) {
    if (!d->writable) return lb__err(err, LB_EINVAL, "%s: the dataset was opened read-only", d->path);
    return region_io(d, start, count, NULL, src, write_visit, NULL, err);
}
