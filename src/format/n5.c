/*
 * n5.c — the N5 format: attributes.json (dimensions/blockSize reversed into
 * C order), block keys, and big-endian blocks with their header (truncated
 * edge blocks as Java writes them, padded ones as zarr-python writes them).
 */
#include "dataset/dataset.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/json.h"
#include "store/store.h"

static const char *const dataset_keys[] = {"dimensions", "blockSize", "dataType", "compression",
                                           "compressionType"};

int lb__n5_is_dataset_key(const char *key) {
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

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int lb__n5_parse(lb__dataset *d, json_object *meta, const char *where, lb_error *err) {
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
    if ((rc = lb__dataset_check_geometry(d, where, "dimensions", "blockSize", 1, err))) return rc;

    memset(&d->codec, 0, sizeof d->codec);
    char w[1200];
    json_object *c = lb__json_get(meta, "compression");
    if (c) {
        snprintf(w, sizeof w, "%s: compression", where);
        if ((rc = lb__codec_from_n5(c, w, &d->codec, err))) return rc;
    } else if ((c = lb__json_get(meta, "compressionType"))) {
        snprintf(w, sizeof w, "%s: compressionType", where);
        if ((rc = lb__codec_from_n5(c, w, &d->codec, err))) return rc;
    } else {
        d->codec.id = LB__CODEC_RAW; /* N5 before 1.0 defaulted to raw */
    }

    d->big_endian = d->itemsize > 1;
    d->order_f = 0;
    d->separator = '/';
    d->fill_null = 0;
    memset(d->fill, 0, sizeof d->fill); /* N5 has no fill value: 0 */

    json_object *attrs = json_object_new_object();
    if (!attrs) return lb__err(err, LB_ENOMEM, "out of memory");
    json_object_object_foreach(meta, key, val) {
        if (lb__n5_is_dataset_key(key)) continue;
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

int lb__n5_build(const lb__dataset_spec *s, json_object **out, lb_error *err) {
    *out = NULL;
    int crc = lb__codec_check_encode(&s->codec, err); /* a new dataset is for writing */
    if (crc) return crc;
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
    json_object *comp = lb__codec_to_n5(&s->codec, err);
    if (!m || !comp) {
        json_object_put(m);
        json_object_put(comp);
        if (!comp && err && err->code) return err->code;
        return lb__err(err, LB_ENOMEM, "out of memory building metadata");
    }
    int rc = 0;
    if (s->attrs) {
        json_object_object_foreach(s->attrs, key, val) {
            if (lb__n5_is_dataset_key(key)) {
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
 * a version already; other attributes are kept. */
static int ensure_group(const char *dir, lb_error *err) {
    char *p = lb__path_join(dir, "attributes.json", err);
    if (!p) return LB_ENOMEM;
    json_object *a = NULL;
    lb__store_remove_stale_temps_of(p); /* a killed writer's */
    int rc = lb__store_mkdirs(dir, err);
    if (!rc) {
        rc = lb__json_read_file(p, &a, err);
        if (rc == LB_ENOTFOUND) {
            rc = 0;
            a = json_object_new_object();
            if (!a) rc = lb__err(err, LB_ENOMEM, "out of memory");
        }
    }
    if (!rc && !json_object_is_type(a, json_type_object))
        rc = lb__err(err, LB_EFORMAT, "%s: expected a JSON object, found %s", p,
                     lb__json_type_name(a));
    if (!rc && lb__json_get(a, "dimensions"))
        rc = lb__err(err, LB_EEXIST, "%s: is a dataset; cannot create a dataset inside it", dir);
    if (!rc && !lb__json_get(a, "n5")) {
        json_object *v = json_object_new_string("2.0.0");
        if (!v || json_object_object_add(a, "n5", v) != 0) {
            json_object_put(v);
            rc = lb__err(err, LB_ENOMEM, "out of memory");
        } else {
            rc = lb__meta_write(dir, "attributes.json", a, err);
        }
    }
    json_object_put(a);
    free(p);
    return rc;
}

int lb__n5_write_meta(const char *path, json_object *attributes, lb_error *err) {
    size_t clen = lb__path_container_len(path);
    size_t n = strlen(path);
    int rc = 0;
    json_object *own = NULL;
    if (clen > 0 && clen < n) {
        char *p = lb__strdup(path, err);
        if (!p) return LB_ENOMEM;
        for (size_t i = clen; i < n && !rc; i++) {
            if (i != clen && p[i] != '/') continue;
            if (i != clen && p[i - 1] == '/') continue;
            char c = p[i];
            p[i] = '\0';
            rc = ensure_group(p, err);
            p[i] = c;
        }
        free(p);
    } else if (clen == n && !lb__json_get(attributes, "n5")) {
        /* The dataset is the container root: it carries the version too. */
        own = lb__meta_sorted_copy(attributes, err);
        json_object *v = json_object_new_string("2.0.0");
        if (!own || !v || json_object_object_add(own, "n5", v) != 0) {
            json_object_put(v);
            json_object_put(own);
            return lb__err(err, LB_ENOMEM, "out of memory");
        }
        json_object *sorted = lb__meta_sorted_copy(own, err);
        json_object_put(own);
        if (!sorted) return lb__err(err, LB_ENOMEM, "out of memory");
        own = sorted;
        attributes = own;
    }
    if (!rc) rc = lb__store_mkdirs(path, err);
    if (!rc) {
        rc = lb__meta_write(path, "attributes.json", attributes, err);
    }
    json_object_put(own);
    return rc;
}

int lb__n5_chunk_key(const lb__dataset *d, const int64_t *cidx, char *buf, size_t size) {
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

int lb__n5_decode(const lb__dataset *d, const void *src, size_t n, void *dst, lb__buf *scratch,
                  lb_error *err) {
    const uint8_t *p = src;
    int nd = d->ndim;
    if (n < 4)
        return lb__err(err, LB_EFORMAT, "block is %zu bytes, too short for an N5 block header", n);
    unsigned mode = be16(p), hnd = be16(p + 2);
    if (mode == 2)
        return lb__err(err, LB_EUNSUPPORTED, "N5 object blocks (mode 2) are not supported");
    if (mode > 2) return lb__err(err, LB_EFORMAT, "unknown N5 block mode %u", mode);
    if ((int)hnd != nd)
        return lb__err(err, LB_EFORMAT, "block header has %u dimensions, the dataset has %d", hnd,
                       nd);
    size_t hdr = 4 + 4 * (size_t)nd + (mode == 1 ? 4 : 0);
    if (n < hdr)
        return lb__err(err, LB_EFORMAT, "block is %zu bytes, its header needs %zu", n, hdr);
    int64_t bshape[LB_MAX_DIMS]; /* C order */
    int full = 1;
    size_t elems = 1;
    for (int k = 0; k < nd; k++) {
        int c = nd - 1 - k;
        uint32_t v = be32(p + 4 + 4 * (size_t)k);
        if (v == 0 || (int64_t)v > d->chunks[c])
            return lb__err(err, LB_EFORMAT,
                           "block header dimension %d is %u, outside 1..%lld (the block size)", k,
                           v, (long long)d->chunks[c]);
        bshape[c] = v;
        full &= (int64_t)v == d->chunks[c];
        elems *= v; /* <= chunk elements: cannot overflow */
    }
    if (mode == 1) {
        uint32_t ne = be32(p + 4 + 4 * (size_t)nd);
        if (ne != elems)
            return lb__err(err, LB_EFORMAT,
                           "varlength block declares %u elements, its dimensions give %zu", ne,
                           elems);
    }
    size_t bytes = elems * d->itemsize;
    void *target = dst;
    if (!full) {
        int rc = lb__buf_reserve(scratch, bytes, err);
        if (rc) return rc;
        target = scratch->data;
    }
    size_t got = 0;
    int rc = lb__codec_decode_upto(&d->codec, p + hdr, n - hdr, target, bytes, &got, d->itemsize,
                                   err);
    if (rc) return rc;
    if (got != bytes)
        return lb__err(err, LB_EFORMAT, "block decodes to %zu bytes, its header says %zu", got,
                       bytes);
    if (d->itemsize > 1 && !lb__host_is_big_endian()) lb__byteswap(target, elems, d->itemsize);
    if (!full) {
        static const int64_t zero[LB_MAX_DIMS];
        lb__dataset_fill(d, dst, d->chunk_bytes);
        lb__copy_box(nd, d->itemsize, bshape, target, bshape, zero, dst, d->chunks, zero);
    }
    return 0;
}

int lb__n5_encode(const lb__dataset *d, const int64_t *cidx, const void *src, lb__buf *out,
                  lb__buf *scratch, lb_error *err) {
    int nd = d->ndim;
    int64_t ext[LB_MAX_DIMS];
    /* Edge blocks are truncated to the array, as the Java reference does. */
    int edge = lb__dataset_chunk_extent(d, cidx, ext);
    size_t elems = 1;
    for (int k = 0; k < nd; k++) elems *= (size_t)ext[k];
    size_t bytes = elems * d->itemsize;
    int swap = d->itemsize > 1 && !lb__host_is_big_endian();
    const void *cur = src;
    int rc;
    if (edge || swap) {
        if ((rc = lb__buf_reserve(scratch, bytes, err))) return rc;
        if (edge) {
            static const int64_t zero[LB_MAX_DIMS];
            lb__copy_box(nd, d->itemsize, ext, src, d->chunks, zero, scratch->data, ext, zero);
        } else {
            memcpy(scratch->data, src, bytes);
        }
        if (swap) lb__byteswap(scratch->data, elems, d->itemsize);
        cur = scratch->data;
    }
    if ((rc = lb__codec_encode(&d->codec, cur, bytes, d->itemsize, out, err))) return rc;
    size_t hdr = 4 + 4 * (size_t)nd;
    if ((rc = lb__buf_reserve(out, out->size + hdr, err))) return rc;
    memmove(out->data + hdr, out->data, out->size);
    put16(out->data, 0);
    put16(out->data + 2, (uint16_t)nd);
    for (int k = 0; k < nd; k++) put32(out->data + 4 + 4 * (size_t)k, (uint32_t)ext[nd - 1 - k]);
    out->size += hdr;
    return 0;
}
