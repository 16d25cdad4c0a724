/*
 * zarr_array.c — DaCapo's ZarrArray: a stored array (Zarr v2, N5 or Zarr v3)
 * seen as an lb_array (geometry from metadata, world-unit reads and writes), plus
 * lb_dataset_create, which makes a new dataset and opens it the same way.
 */
#include <inttypes.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "array/array.h"
#include "array/geometry_meta.h"
#include "core/json.h"
#include "core/path.h"
#include "format/common.h"
#include "format/format.h"
#include "store/store.h"

typedef struct zarr_impl {
    /* World coordinate of element 0 along each spatial axis. Equal to the
     * ROI offset unless snap_to_grid shrank the ROI. */
    int64_t data_offset[LB_MAX_DIMS];
} zarr_impl;

static int zarr_read(const lb_array *a, const lb_roi *roi, void *out, lb__workspace *ws,
                     lb_error *err);
static void zarr_destroy(lb_array *a) { free(a->impl); }

static const lb__array_vtable zarr_vt = {"ZarrArray", zarr_read, NULL, zarr_destroy, NULL};

int lb__array_chunk_grid(const lb_array *a, int axis, int64_t *origin, int64_t *step) {
    const lb_array *st = lb__array_stored(a);
    if (!st && a && a->n_inputs) st = a->inputs[0]; /* over a crop: its first class */
    *step = 0;
    *origin = 0;
    if (!st || st->vt != &zarr_vt || axis < 0 || axis >= st->dims) return -1;
    const zarr_impl *z = st->impl;
    int lead = st->ndim - st->dims;
    *origin = z->data_offset[axis];
    if (lb__mul_i64(st->ds->chunks[lead + axis], st->voxel_size[axis], step)) {
        *step = 0;
        return -1;
    }
    return 0;
}

void lb__zarr_array_box(const lb_array *a, const lb_roi *roi, int64_t *start, int64_t *count) {
    const zarr_impl *z = a->impl;
    int lead = a->ndim - a->dims;
    for (int i = 0; i < lead; i++) {
        start[i] = 0;
        count[i] = a->ds->shape[i];
    }
    for (int i = 0; i < a->dims; i++) {
        start[lead + i] = (roi->offset[i] - z->data_offset[i]) / a->voxel_size[i];
        count[lead + i] = roi->shape[i] / a->voxel_size[i];
    }
}

static int zarr_read(const lb_array *a, const lb_roi *roi, void *out, lb__workspace *ws,
                     lb_error *err) {
    int64_t start[LB_MAX_DIMS], count[LB_MAX_DIMS];
    lb__zarr_array_box(a, roi, start, count);
    return lb__dataset_read_io(a->ds, start, count, out, &ws->io, err);
}

int lb__zarr_array_set_roi(lb_array *a, const lb_roi *roi, lb_error *err) {
    if (a->vt != &zarr_vt)
        return lb__err(err, LB_EINVAL, "only a ZarrArray's ROI can be snapped");
    int rc = lb__array_check_roi(a, roi, err);
    if (rc) return rc;
    int lead = a->ndim - a->dims;
    a->roi = *roi;
    for (int i = 0; i < a->dims; i++) a->shape[lead + i] = roi->shape[i] / a->voxel_size[i];
    return 0;
}

/* The codecs in the format's own words, serialised, and in words. */
static int codec_text(lb_array *a, lb_error *err) {
    const lb__dataset *d = a->ds;
    lb_error local = {0};
    json_object *o = d->format->codec_json(&d->m, &local);
    if (!o && local.code) {
        if (err) *err = local;
        return lb__err_prefix(err, "%s: codecs", d->path);
    }
    a->codec_text = lb__strdup(o ? lb__json_string(o, 0) : "null", err);
    json_object_put(o);
    if (!a->codec_text) return LB_ENOMEM;
    char desc[2048];
    size_t len = 0;
    desc[0] = '\0';
    const lb__chain *c = d->m.chain;
    for (int i = 0; i < c->n && len < sizeof desc; i++) {
        char one[1024];
        lb__codec_describe(&c->codec[i], one, sizeof one);
        len += (size_t)snprintf(desc + len, sizeof desc - len, "%s%s", i ? " | " : "", one);
    }
    a->codec_desc = lb__strdup(desc, err);
    return a->codec_desc ? 0 : LB_ENOMEM;
}

/* Channel names of a stored channel axis from a `channels` attribute (what
 * lb_array_materialize writes), when it lists exactly num_channels strings. */
static int stored_channel_names(lb_array *a, lb_error *err) {
    json_object *ch = lb__json_get(a->attrs, "channels");
    if (a->num_channels <= 0 || !ch || !json_object_is_type(ch, json_type_array) ||
        json_object_array_length(ch) != (size_t)a->num_channels)
        return 0;
    for (int64_t c = 0; c < a->num_channels; c++)
        if (!json_object_is_type(json_object_array_get_idx(ch, (size_t)c), json_type_string))
            return 0;
    a->channel_names = lb__calloc((size_t)a->num_channels, sizeof(char *), "channel names", err);
    if (!a->channel_names) return LB_ENOMEM;
    for (int64_t c = 0; c < a->num_channels; c++) {
        a->channel_names[c] =
            lb__strdup(json_object_get_string(json_object_array_get_idx(ch, (size_t)c)), err);
        if (!a->channel_names[c]) return LB_ENOMEM;
    }
    return 0;
}

/* The array's geometry from its metadata (geometry_meta.c). */
static int apply_geometry(lb_array *a, const lb__dataset *ds,
                                    const char *const *axes_override, int n_axes,
                                    lb_error *err) {
    lb__geometry g;
    int rc = lb__geometry_from_meta(ds, axes_override, n_axes, &g, err);
    if (rc) return rc;
    a->ndim = g.ndim;
    a->dims = g.dims;
    for (int i = 0; i < g.ndim && !rc; i++) {
        free(a->axes[i]);
        a->axes[i] = lb__strdup(g.axes[i], err);
        if (!a->axes[i]) rc = LB_ENOMEM;
        a->shape[i] = ds->shape[i];
    }
    memcpy(a->voxel_size, g.voxel_size, sizeof a->voxel_size);
    a->roi = g.roi;
    a->num_channels = g.num_channels;
    for (int i = 0; i < g.n_warnings && !rc; i++) rc = lb__array_warn(a, err, "%s", g.warnings[i]);
    lb__geometry_clear(&g);
    return rc;
}

/* Wrap an open dataset (ownership passes to the array, also on failure). */
static int wrap_dataset(lb__dataset *ds, const char *const *axes_override, int n_axes,
                        lb_array **out, lb_error *err) {
    lb_array *a = lb__array_alloc(&zarr_vt, err);
    if (!a) {
        lb__dataset_free(ds);
        return LB_ENOMEM;
    }
    a->ds = ds;
    int rc = LB_ENOMEM;
    zarr_impl *z = lb__calloc(1, sizeof *z, "ZarrArray state", err);
    if (!z) goto fail;
    a->impl = z;
    a->dtype = ds->dtype;
    a->writable = ds->writable ? 1 : 0;
    rc = lb__array_set_attrs(a, ds->attrs, err);
    if (rc) goto fail;
    rc = codec_text(a, err);
    if (rc) goto fail;
    rc = apply_geometry(a, ds, axes_override, n_axes, err);
    if (rc) goto fail;
    memcpy(z->data_offset, a->roi.offset, sizeof z->data_offset);
    rc = stored_channel_names(a, err);
    if (rc) goto fail;
    if (lb__attrs_incomplete(a->attrs)) {
        rc = lb__array_warn(a, err, "%s: unfinished output: the labelbin run writing it did "
                            "not complete (attribute labelbin.complete is false), chunks not "
                            "yet written read as zeros; finish it by running the same command "
                            "with --resume", ds->path);
        if (rc) goto fail;
    }
    /* Malformed annotation metadata is only recorded here; lb_mask_new
     * reports it in full. */
    {
        lb_error ignored = {0};
        lb_annotations kind = LB_ANNOTATIONS_NONE;
        lb_id *pna = NULL;
        size_t n_pna = 0;
        lb__annotations_parse(a->attrs, &kind, &pna, &n_pna, &ignored);
        free(pna);
        a->annotations = kind;
    }
    *out = a;
    return 0;
fail:
    lb_array_free(a);
    return rc;
}

int lb_array_open(const char *path, int flags, const char *const *axes_override, int n_axes,
                  lb_array **out, lb_error *err) {
    if (!out) return lb__err(err, LB_EINVAL, "lb_array_open: no output pointer");
    *out = NULL;
    if (!path || !*path) return lb__err(err, LB_EINVAL, "lb_array_open: no path given");
    if (flags != LB_OPEN_READONLY && flags != LB_OPEN_WRITE)
        return lb__err(err, LB_EINVAL, "%s: unknown open flags %d", path, flags);
    if (n_axes < 0 || n_axes > LB_MAX_DIMS || (n_axes > 0 && !axes_override))
        return lb__err(err, LB_EINVAL, "%s: bad axes override (%d names)", path, n_axes);
    lb__dataset *ds = NULL;
    int rc = lb__dataset_open(path, flags == LB_OPEN_WRITE, &ds, err);
    if (rc) return rc;
    return wrap_dataset(ds, axes_override, n_axes, out, err);
}

/* ---- creating datasets ----------------------------------------------------- */

void lb_create_options_init(lb_create_options *opt) {
    if (!opt) return;
    memset(opt, 0, sizeof *opt);
    opt->struct_size = (int)sizeof *opt;
    opt->format = LB_FORMAT_ZARR2;
    opt->dtype = LB_DTYPE_UINT8;
    opt->separator = 0; /* the format's own: '.' for Zarr v2, '/' for Zarr v3 */
}

/* Store `v` (fits the dtype) as `size` native-endian bytes. */
static void put_int(uint8_t *dst, uint64_t bits, size_t size) {
    uint8_t u8 = (uint8_t)bits;
    uint16_t u16 = (uint16_t)bits;
    uint32_t u32 = (uint32_t)bits;
    switch (size) {
    case 1: memcpy(dst, &u8, 1); break;
    case 2: memcpy(dst, &u16, 2); break;
    case 4: memcpy(dst, &u32, 4); break;
    default: memcpy(dst, &bits, 8); break;
    }
}

/* "null" with optional white space (lb__json_parse cannot return a JSON
 * null: json-c represents it as a NULL object). */
static int is_null_literal(const char *t) {
    while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r') t++;
    if (strncmp(t, "null", 4) != 0) return 0;
    for (t += 4; *t; t++)
        if (*t != ' ' && *t != '\t' && *t != '\n' && *t != '\r') return 0;
    return 1;
}

/* Fill value JSON -> spec.fill / fill_null. */
static int parse_fill(const char *text, lb__dataset_spec *s, lb_error *err) {
    memset(s->fill, 0, sizeof s->fill);
    s->fill_null = 0;
    if (!text) return 0;
    if (is_null_literal(text)) {
        s->fill_null = 1;
        return 0;
    }
    json_object *o = NULL;
    /* The terminating NUL is passed too: json-c cannot end a bare scalar
     * ("7", "null") at the end of its input otherwise. */
    int rc = lb__json_parse(text, strlen(text) + 1, "fill_value", &o, err);
    if (rc) return rc;
    size_t size = lb_dtype_size(s->dtype);
    if (!o) {
        s->fill_null = 1;
    } else if (s->dtype == LB_DTYPE_BOOL) {
        int b = 0;
        if (json_object_is_type(o, json_type_boolean)) {
            b = json_object_get_boolean(o) ? 1 : 0;
        } else {
            int64_t v;
            rc = lb__json_int64(o, "fill_value", &v, err);
            if (!rc && v != 0 && v != 1)
                rc = lb__err(err, LB_EINVAL, "fill_value: %" PRId64 " is not a boolean", v);
            b = (int)v;
        }
        if (!rc) s->fill[0] = (uint8_t)b;
    } else if (lb_dtype_is_integer(s->dtype)) {
        lb_id id;
        rc = lb__json_id(o, "fill_value", &id, err);
        if (!rc && !lb_id_fits(id, s->dtype)) {
            char buf[32];
            lb_id_format(id, buf, sizeof buf);
            rc = lb__err(err, LB_EINVAL, "fill_value: %s does not fit the dtype %s", buf,
                         lb_dtype_name(s->dtype));
        }
        if (!rc) put_int(s->fill, id.bits, size);
    } else {
        double d = 0;
        const char *str = json_object_is_type(o, json_type_string) ? json_object_get_string(o)
                                                                   : NULL;
        if (str && strcmp(str, "NaN") == 0) d = NAN;
        else if (str && strcmp(str, "Infinity") == 0) d = INFINITY;
        else if (str && strcmp(str, "-Infinity") == 0) d = -INFINITY;
        else rc = lb__json_number(o, "fill_value", &d, err);
        if (!rc && s->dtype == LB_DTYPE_FLOAT32) {
            float f = (float)d;
            memcpy(s->fill, &f, 4);
        } else if (!rc) {
            memcpy(s->fill, &d, 8);
        }
    }
    json_object_put(o);
    return rc;
}

/* A codec given as JSON (any format's words) or as a short form. */
static int parse_codec(const char *spec, lb__codec *out, lb_error *err) {
    lb__codec_init(out, LB__CODEC_RAW);
    if (!spec) return 0;
    const char *p = spec;
    while (*p == ' ' || *p == '\t' || *p == '\n') p++;
    if (is_null_literal(p)) return 0; /* raw */
    return lb__codec_parse_spec(spec, out, err);
}

/* Refuse attributes whose geometry would not open, before writing anything. */
static int probe_geometry(const char *url, const lb__dataset_spec *spec, lb_error *err) {
    lb__dataset probe;
    memset(&probe, 0, sizeof probe);
    int rc = lb__store_open(url, &probe.store, &probe.path, err);
    if (rc) return rc;
    probe.format = lb__format_of(spec->format);
    probe.ndim = probe.m.ndim = spec->ndim;
    memcpy(probe.shape, spec->shape, sizeof probe.shape);
    memcpy(probe.m.shape, spec->shape, sizeof probe.shape);
    probe.dtype = spec->dtype;
    probe.m.reverse_attrs = spec->format == LB_FORMAT_ZARR2 && spec->order_f;
    for (int k = 0; spec->dim_names && k < spec->ndim; k++) probe.m.dim_names[k] = (char *)spec->dim_names[k];
    probe.attrs = spec->attrs ? spec->attrs : json_object_new_object();
    lb__geometry g;
    if (!probe.attrs) rc = lb__err(err, LB_ENOMEM, "out of memory (attributes)");
    else rc = lb__geometry_from_meta(&probe, NULL, 0, &g, err);
    if (!rc) lb__geometry_clear(&g);
    if (!spec->attrs) json_object_put(probe.attrs);
    lb__store_free(probe.store);
    free(probe.path);
    return rc;
}

int lb_dataset_create(const char *path, int ndim, const int64_t *shape, const int64_t *chunks,
                      const lb_create_options *opt, lb_array **out, lb_error *err) {
    if (!out) return lb__err(err, LB_EINVAL, "lb_dataset_create: no output pointer");
    *out = NULL;
    if (!path || !*path) return lb__err(err, LB_EINVAL, "lb_dataset_create: no path given");
    lb_create_options defaults;
    lb_create_options_init(&defaults);
    if (!opt) opt = &defaults;
    /* struct_size lets an older caller pass a shorter struct. */
    lb_create_options o;
    lb_create_options_init(&o);
    if (opt->struct_size < (int)offsetof(lb_create_options, shard) ||
        opt->struct_size > (int)sizeof *opt)
        return lb__err(err, LB_EINVAL,
                       "%s: options not initialised with lb_create_options_init", path);
    memcpy(&o, opt, (size_t)opt->struct_size);
    opt = &o;
    if (ndim < 1 || ndim > LB_MAX_DIMS)
        return lb__err(err, LB_EINVAL, "%s: %d dimensions, expected 1 to %d", path, ndim,
                       LB_MAX_DIMS);
    if (!shape || !chunks) return lb__err(err, LB_EINVAL, "%s: no shape or chunks given", path);
    if (!lb__format_of(opt->format))
        return lb__err(err, LB_EINVAL, "%s: unknown format %d", path, (int)opt->format);
    if (opt->shard && opt->format != LB_FORMAT_ZARR3)
        return lb__err(err, LB_EINVAL, "%s: only Zarr v3 arrays have shards", path);
    if (lb_dtype_size(opt->dtype) == 0)
        return lb__err(err, LB_EINVAL, "%s: unknown dtype %d", path, (int)opt->dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return lb__err(err, LB_EINVAL, "%s: shape[%d] is %" PRId64 ", must be >= 0", path,
                           i, shape[i]);
        if (chunks[i] <= 0)
            return lb__err(err, LB_EINVAL, "%s: chunks[%d] is %" PRId64 ", must be > 0", path,
                           i, chunks[i]);
    }
    char sep = opt->separator ? opt->separator : opt->format == LB_FORMAT_ZARR3 ? '/' : '.';
    if (sep != '.' && sep != '/')
        return lb__err(err, LB_EINVAL, "%s: dimension separator must be '.' or '/'", path);

    lb__dataset_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.format = opt->format;
    spec.ndim = ndim;
    memcpy(spec.shape, shape, (size_t)ndim * sizeof *shape);
    memcpy(spec.chunks, chunks, (size_t)ndim * sizeof *chunks);
    if (opt->shard) {
        for (int i = 0; i < ndim; i++) {
            if (opt->shard[i] <= 0 || opt->shard[i] % chunks[i] != 0)
                return lb__err(err, LB_EINVAL, "%s: shard[%d] = %" PRId64 " is not a positive "
                               "multiple of chunks[%d] = %" PRId64, path, i, opt->shard[i], i,
                               chunks[i]);
            spec.inner[i] = chunks[i];
            spec.chunks[i] = opt->shard[i];
        }
    }
    spec.dim_names = opt->dimension_names;
    spec.dtype = opt->dtype;
    spec.big_endian = opt->format == LB_FORMAT_N5 ? 1 : (opt->big_endian ? 1 : 0);
    spec.order_f = opt->fortran_order ? 1 : 0;
    spec.separator = sep;

    char *norm = NULL;
    json_object *attrs = NULL;
    lb__dataset *ds = NULL;
    int rc = parse_fill(opt->fill_value_json, &spec, err);
    if (rc) goto fail;
    rc = parse_codec(opt->codec, &spec.codec, err);
    if (rc) goto fail;
    if (opt->attrs_json) {
        rc = lb__json_parse(opt->attrs_json, strlen(opt->attrs_json), "attributes", &attrs, err);
        if (rc) goto fail;
        if (!attrs || !json_object_is_type(attrs, json_type_object)) {
            rc = lb__err(err, LB_EINVAL, "attributes: expected a JSON object, found %s",
                         attrs ? lb__json_type_name(attrs) : "null");
            goto fail;
        }
        spec.attrs = attrs;
    }
    norm = lb__strdup(path, err);
    if (!norm) {
        rc = LB_ENOMEM;
        goto fail;
    }
    rc = probe_geometry(norm, &spec, err);
    if (rc) goto fail;
    rc = lb__dataset_create(norm, &spec, opt->overwrite ? LB__CREATE_OVERWRITE : LB__CREATE_NEW,
                            &ds, err);
    if (rc) goto fail;
    free(norm);
    json_object_put(attrs);
    return wrap_dataset(ds, NULL, 0, out, err);
fail:
    if (rc != LB_ENOMEM && err && !strstr(err->message, path)) lb__err_prefix(err, "%s", path);
    free(norm);
    json_object_put(attrs);
    return rc;
}
