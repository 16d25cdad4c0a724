/*
 * geometry.c — funlib-compatible ROI arithmetic in int64 world units
 * (floor-division snapping, overflow-checked), the dtype table and exact
 * label ids from -2^63 to 2^64-1.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/util.h"

/* ---- ROIs ---------------------------------------------------------------- */

static int check_ndim(int ndim, lb_error *err) {
    if (ndim < 0 || ndim > LB_MAX_DIMS)
        return lb__err(err, LB_EINVAL, "ROI has %d dimensions, at most %d are supported",
                       ndim, LB_MAX_DIMS);
    return 0;
}

int lb_roi_set(lb_roi *roi, int ndim, const int64_t *offset, const int64_t *shape,
               lb_error *err) {
    int rc = check_ndim(ndim, err);
    if (rc) return rc;
    lb_roi r;
    memset(&r, 0, sizeof r);
    r.ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        int64_t end;
        if (lb__add_i64(offset[i], shape[i], &end))
            return lb__err(err, LB_EINVAL, "ROI end overflows in dimension %d", i);
        r.offset[i] = offset[i];
        r.shape[i] = shape[i];
    }
    *roi = r;
    return 0;
}

int lb_roi_empty(const lb_roi *roi) {
    for (int i = 0; i < roi->ndim; i++)
        if (roi->shape[i] <= 0) return 1;
    return 0;
}

int lb_roi_contains_point(const lb_roi *roi, const int64_t *p) {
    for (int i = 0; i < roi->ndim; i++) {
        if (p[i] < roi->offset[i]) return 0;
        if (p[i] - roi->offset[i] >= roi->shape[i]) return 0;
    }
    return 1;
}

int lb_roi_contains(const lb_roi *outer, const lb_roi *inner) {
    if (outer->ndim != inner->ndim) return 0;
    if (lb_roi_empty(inner))
        return lb_roi_empty(outer) || lb_roi_contains_point(outer, inner->offset);
    for (int i = 0; i < inner->ndim; i++) {
        /* begin inside and end - 1 inside, written without overflow */
        if (inner->offset[i] < outer->offset[i]) return 0;
        if ((uint64_t)(inner->offset[i] - outer->offset[i]) + (uint64_t)inner->shape[i] >
            (uint64_t)outer->shape[i])
            return 0;
    }
    return 1;
}

int lb_roi_intersect(const lb_roi *a, const lb_roi *b, lb_roi *out, lb_error *err) {
    if (a->ndim != b->ndim)
        return lb__err(err, LB_EINVAL, "cannot intersect ROIs of %d and %d dimensions",
                       a->ndim, b->ndim);
    lb_roi r;
    memset(&r, 0, sizeof r);
    r.ndim = a->ndim;
    int empty = 0;
    for (int i = 0; i < a->ndim; i++) {
        int64_t ab = a->offset[i], ae = a->offset[i] + a->shape[i];
        int64_t bb = b->offset[i], be = b->offset[i] + b->shape[i];
        int64_t lo = ab > bb ? ab : bb, hi = ae < be ? ae : be;
        r.offset[i] = lo;
        r.shape[i] = hi > lo ? hi - lo : 0;
        if (hi <= lo) empty = 1;
    }
    if (empty) {
        /* funlib returns an empty ROI; keep a begin inside b for callers. */
        for (int i = 0; i < r.ndim; i++) {
            int64_t bb = b->offset[i], be = b->offset[i] + b->shape[i];
            int64_t o = a->offset[i];
            r.offset[i] = o < bb ? bb : (o > be ? be : o);
            r.shape[i] = 0;
        }
    }
    *out = r;
    return 0;
}

static int check_voxel(const int64_t *vs, int ndim, lb_error *err) {
    for (int i = 0; i < ndim; i++)
        if (vs[i] <= 0)
            return lb__err(err, LB_EINVAL, "voxel size entry %d is %" PRId64 ", must be > 0",
                           i, vs[i]);
    return 0;
}

int lb_roi_snap(const lb_roi *roi, const int64_t *vs, lb_snap_mode mode, lb_roi *out,
                lb_error *err) {
    int rc = check_voxel(vs, roi->ndim, err);
    if (rc) return rc;
    lb_roi r = *roi;
    for (int i = 0; i < roi->ndim; i++) {
        int64_t b = roi->offset[i], e, nb, ne;
        if (lb__add_i64(b, roi->shape[i], &e))
            return lb__err(err, LB_EINVAL, "ROI end overflows in dimension %d", i);
        switch (mode) {
        case LB_SNAP_GROW:
            nb = lb__floordiv(b, vs[i]);
            ne = lb__ceildiv(e, vs[i]);
            break;
        case LB_SNAP_SHRINK:
            nb = lb__ceildiv(b, vs[i]);
            ne = lb__floordiv(e, vs[i]);
            break;
        case LB_SNAP_CLOSEST: {
            /* funlib round_division: (x + (v-1)//2) // v, ties round down */
            int64_t hb, he;
            if (lb__add_i64(b, (vs[i] - 1) / 2, &hb) || lb__add_i64(e, (vs[i] - 1) / 2, &he))
                return lb__err(err, LB_EINVAL, "snapped ROI overflows in dimension %d", i);
            nb = lb__floordiv(hb, vs[i]);
            ne = lb__floordiv(he, vs[i]);
            break;
        }
        default:
            return lb__err(err, LB_EINVAL, "unknown snap mode %d", (int)mode);
        }
        int64_t ob, oe;
        if (lb__mul_i64(nb, vs[i], &ob) || lb__mul_i64(ne, vs[i], &oe) ||
            lb__sub_i64(oe, ob, &r.shape[i]))
            return lb__err(err, LB_EINVAL, "snapped ROI overflows in dimension %d", i);
        r.offset[i] = ob;
    }
    *out = r;
    return 0;
}

int lb_roi_grow(const lb_roi *roi, const int64_t *neg, const int64_t *pos, lb_roi *out,
                lb_error *err) {
    lb_roi r = *roi;
    for (int i = 0; i < roi->ndim; i++) {
        int64_t n = neg ? neg[i] : 0, p = pos ? pos[i] : 0, end;
        if (lb__sub_i64(roi->offset[i], n, &r.offset[i]) ||
            lb__add_i64(roi->shape[i], n, &r.shape[i]) ||
            lb__add_i64(r.shape[i], p, &r.shape[i]) ||
            lb__add_i64(r.offset[i], r.shape[i], &end))
            return lb__err(err, LB_EINVAL, "grown ROI overflows in dimension %d", i);
    }
    *out = r;
    return 0;
}

int lb_roi_shift(const lb_roi *roi, const int64_t *delta, lb_roi *out, lb_error *err) {
    lb_roi r = *roi;
    for (int i = 0; i < roi->ndim; i++) {
        int64_t end;
        if (lb__add_i64(roi->offset[i], delta[i], &r.offset[i]) ||
            lb__add_i64(r.offset[i], r.shape[i], &end))
            return lb__err(err, LB_EINVAL, "shifted ROI overflows in dimension %d", i);
    }
    *out = r;
    return 0;
}

int lb_roi_aligned(const lb_roi *roi, const int64_t *vs) {
    for (int i = 0; i < roi->ndim; i++) {
        if (vs[i] <= 0) return 0;
        if (lb__floormod(roi->offset[i], vs[i]) != 0) return 0;
        if (lb__floormod(roi->shape[i], vs[i]) != 0) return 0;
    }
    return 1;
}

static const char *skip_space(const char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    return s;
}

/* Parse a signed decimal int64 at *s; advances *s. */
static int parse_i64(const char **s, int64_t *out) {
    const char *p = skip_space(*s);
    const char *start = p;
    if (*p == '-' || *p == '+') p++;
    if (!isdigit((unsigned char)*p)) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(start, &end, 10);
    if (errno == ERANGE) return -1;
    *out = v;
    *s = end;
    return 0;
}

int lb_roi_parse(const char *text, lb_roi *out, lb_error *err) {
    if (!text) return lb__err(err, LB_EINVAL, "no ROI given");
    const char *s = skip_space(text);
    int bracket = 0;
    if (*s == '[') {
        bracket = 1;
        s++;
    }
    lb_roi r;
    memset(&r, 0, sizeof r);
    for (;;) {
        int64_t b, e;
        s = skip_space(s);
        if (bracket && *s == ']' && r.ndim == 0) break; /* "[]" = 0-d */
        if (r.ndim == LB_MAX_DIMS)
            return lb__err(err, LB_EINVAL, "ROI \"%s\": more than %d dimensions", text,
                           LB_MAX_DIMS);
        if (parse_i64(&s, &b))
            return lb__err(err, LB_EINVAL,
                           "ROI \"%s\": expected an integer begin in dimension %d "
                           "(the form is b0:e0,b1:e1,... in world units)", text, r.ndim);
        s = skip_space(s);
        if (*s != ':')
            return lb__err(err, LB_EINVAL, "ROI \"%s\": expected ':' after the begin in dimension %d",
                           text, r.ndim);
        s++;
        if (parse_i64(&s, &e))
            return lb__err(err, LB_EINVAL, "ROI \"%s\": expected an integer end in dimension %d",
                           text, r.ndim);
        if (e < b)
            return lb__err(err, LB_EINVAL, "ROI \"%s\": end %" PRId64 " < begin %" PRId64
                           " in dimension %d", text, e, b, r.ndim);
        if (lb__sub_i64(e, b, &r.shape[r.ndim]))
            return lb__err(err, LB_EINVAL, "ROI \"%s\": extent overflows in dimension %d", text,
                           r.ndim);
        r.offset[r.ndim++] = b;
        s = skip_space(s);
        if (*s == ',') {
            s++;
            continue;
        }
        break;
    }
    s = skip_space(s);
    if (bracket) {
        if (*s != ']') return lb__err(err, LB_EINVAL, "ROI \"%s\": missing ']'", text);
        s = skip_space(s + 1);
    }
    if (*s) return lb__err(err, LB_EINVAL, "ROI \"%s\": unexpected text \"%s\"", text, s);
    *out = r;
    return 0;
}

int lb_roi_format(const lb_roi *roi, char *buf, size_t size) {
    /* Build into a local buffer large enough for 32 dims of 2 x 20 digits. */
    char tmp[LB_MAX_DIMS * 48 + 8];
    size_t n = 0;
    tmp[n++] = '[';
    for (int i = 0; i < roi->ndim; i++) {
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%s%" PRId64 ":%" PRId64, i ? ", " : "",
                              roi->offset[i], roi->offset[i] + roi->shape[i]);
    }
    tmp[n++] = ']';
    tmp[n] = '\0';
    if (size) snprintf(buf, size, "%s", tmp);
    return (int)n;
}

int lb_coord_format(const int64_t *c, int ndim, char *buf, size_t size) {
    char tmp[LB_MAX_DIMS * 24 + 8];
    size_t n = 0;
    tmp[n++] = '(';
    for (int i = 0; i < ndim && i < LB_MAX_DIMS; i++)
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%s%" PRId64, i ? ", " : "", c[i]);
    if (ndim == 1) tmp[n++] = ','; /* Python's 1-tuple repr */
    tmp[n++] = ')';
    tmp[n] = '\0';
    if (size) snprintf(buf, size, "%s", tmp);
    return (int)n;
}

/* ---- dtypes -------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
    int integer, is_signed;
} dtypes[] = {
    [LB_DTYPE_UINT8] = {"uint8", 1, 1, 0},     [LB_DTYPE_UINT16] = {"uint16", 2, 1, 0},
    [LB_DTYPE_UINT32] = {"uint32", 4, 1, 0},   [LB_DTYPE_UINT64] = {"uint64", 8, 1, 0},
    [LB_DTYPE_INT8] = {"int8", 1, 1, 1},       [LB_DTYPE_INT16] = {"int16", 2, 1, 1},
    [LB_DTYPE_INT32] = {"int32", 4, 1, 1},     [LB_DTYPE_INT64] = {"int64", 8, 1, 1},
    [LB_DTYPE_BOOL] = {"bool", 1, 0, 0},       [LB_DTYPE_FLOAT32] = {"float32", 4, 0, 1},
    [LB_DTYPE_FLOAT64] = {"float64", 8, 0, 1},
};

static int dtype_ok(lb_dtype d) { return (unsigned)d <= (unsigned)LB_DTYPE_FLOAT64; }

const char *lb_dtype_name(lb_dtype d) { return dtype_ok(d) ? dtypes[d].name : "unknown"; }
size_t lb_dtype_size(lb_dtype d) { return dtype_ok(d) ? dtypes[d].size : 0; }
int lb_dtype_is_integer(lb_dtype d) { return dtype_ok(d) && dtypes[d].integer; }
int lb_dtype_is_signed(lb_dtype d) { return dtype_ok(d) && dtypes[d].integer && dtypes[d].is_signed; }

/* ---- label ids ----------------------------------------------------------- */

int lb_id_parse(const char *text, lb_id *out, lb_error *err) {
    if (!text) return lb__err(err, LB_EINVAL, "no label id given");
    const char *p = text;
    while (isspace((unsigned char)*p)) p++;
    int neg = 0;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    if (!isdigit((unsigned char)*p))
        return lb__err(err, LB_EINVAL, "\"%s\" is not a decimal label id", text);
    uint64_t v = 0;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return lb__err(err, LB_EINVAL, "label id \"%s\" is above 2^64-1", text);
        v = v * 10 + d;
    }
    while (isspace((unsigned char)*p)) p++;
    if (*p) return lb__err(err, LB_EINVAL, "\"%s\" is not a decimal label id", text);
    if (neg && v != 0) {
        if (v > (uint64_t)INT64_MAX + 1)
            return lb__err(err, LB_EINVAL, "label id \"%s\" is below -2^63", text);
        out->bits = (uint64_t)0 - v; /* two's complement of -v */
        out->negative = 1;
    } else {
        out->bits = v;
        out->negative = 0;
    }
    return 0;
}

int lb_id_fits(lb_id id, lb_dtype dtype) {
    if (!lb_dtype_is_integer(dtype)) return 0;
    size_t bits = lb_dtype_size(dtype) * 8;
    if (lb_dtype_is_signed(dtype)) {
        int64_t v = (int64_t)id.bits;
        if (!id.negative && id.bits > (uint64_t)INT64_MAX) return 0;
        if (bits == 64) return 1;
        int64_t lo = -((int64_t)1 << (bits - 1)), hi = ((int64_t)1 << (bits - 1)) - 1;
        return v >= lo && v <= hi;
    }
    if (id.negative) return 0;
    return bits == 64 || id.bits < ((uint64_t)1 << bits);
}

int lb_id_format(lb_id id, char *buf, size_t size) {
    if (id.negative) return snprintf(buf, size, "%" PRId64, (int64_t)id.bits);
    return snprintf(buf, size, "%" PRIu64, id.bits);
}
