/*
 * crop_stats.c — present / absent / unknown voxel counts per channel, from a
 * target and its mask or from a three-state crop array, streamed in blocks
 * of the stored chunk grid by a few threads: memory stays workers × block
 * whatever the ROI, and each chunk is decoded once.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "array/array.h"
#include "array/crop.h"

/* A block holds at most this many output bytes (all channels). */
#define MAX_BLOCK_BYTES ((int64_t)16 << 20)

typedef struct count_ctx {
    const lb_array *target, *mask;
    const lb_roi *roi;
    int unknown;              /* three-state value, or -1 (mask given)       */
    size_t channels;
    int dims;
    int64_t origin[LB_MAX_DIMS], step[LB_MAX_DIMS], first[LB_MAX_DIMS], count[LB_MAX_DIMS];
    int64_t total;
    lb__workspace *ws;        /* per worker */
    lb__buf *tbuf, *mbuf;     /* per worker */
    uint64_t *counts;         /* per worker: channels × 3 */
    lb_error *errs;           /* per worker */
    volatile int *cancel;
} count_ctx;

static int count_block(void *user, int worker, int64_t bi) {
    count_ctx *c = user;
    lb_error *err = &c->errs[worker];
    if (c->cancel && *c->cancel) return lb__err(err, LB_ECANCELED, "cancelled");
    lb_roi b;
    b.ndim = c->dims;
    int64_t i = bi;
    for (int d = c->dims - 1; d >= 0; d--) {
        int64_t k = c->first[d] + i % c->count[d];
        i /= c->count[d];
        int64_t lo = c->origin[d] + k * c->step[d], hi = lo + c->step[d];
        int64_t rb = c->roi->offset[d], re = rb + c->roi->shape[d];
        b.offset[d] = lo < rb ? rb : lo;
        b.shape[d] = (hi > re ? re : hi) - b.offset[d];
    }
    int64_t nv = lb__roi_voxels(c->target, &b, NULL);
    if (nv <= 0) return 0;
    size_t n = (size_t)nv, bytes = n * c->channels;
    lb__workspace *ws = &c->ws[worker];
    if (lb__buf_reserve(&c->tbuf[worker], bytes, err)) return LB_ENOMEM;
    int rc = lb__array_read_ws(c->target, &b, c->tbuf[worker].data, bytes, ws, err);
    if (rc) return rc;
    if (c->mask) {
        if (lb__buf_reserve(&c->mbuf[worker], bytes, err)) return LB_ENOMEM;
        rc = lb__array_read_ws(c->mask, &b, c->mbuf[worker].data, bytes, ws, err);
        if (rc) return rc;
    }
    uint64_t *cnt = c->counts + (size_t)worker * c->channels * 3;
    for (size_t ch = 0; ch < c->channels; ch++) {
        const uint8_t *t = c->tbuf[worker].data + ch * n;
        uint64_t na = 0, np = 0, nu = 0;
        if (c->mask) {
            const uint8_t *m = c->mbuf[worker].data + ch * n;
            for (size_t k = 0; k < n; k++) {
                int known = m[k] != 0, p = t[k] != 0;
                np += known && p;
                na += known && !p;
                nu += !known;
            }
        } else {
            const uint8_t u = (uint8_t)c->unknown;
            for (size_t k = 0; k < n; k++) {
                np += t[k] == 1;
                na += t[k] == 0;
                nu += t[k] == u;
            }
        }
        cnt[ch * 3 + LB__ABSENT] += na;
        cnt[ch * 3 + LB__PRESENT] += np;
        cnt[ch * 3 + LB__UNKNOWN] += nu;
    }
    return 0;
}

int lb_count_states(const lb_array *target, const lb_array *mask, const lb_roi *roi,
                    int threads, lb_state_counts *out, size_t n_out, volatile int *cancel,
                    lb_error *err) {
    if (!target || !out) return lb__err(err, LB_EINVAL, "lb_count_states: no %s",
                                        target ? "output" : "target");
    if (threads < 0) return lb__err(err, LB_EINVAL, "lb_count_states: %d threads", threads);
    count_ctx c;
    memset(&c, 0, sizeof c);
    c.target = target;
    c.mask = mask;
    c.cancel = cancel;
    c.dims = target->dims;
    c.channels = target->num_channels >= 0 ? (size_t)target->num_channels : 1;
    if (target->ndim - target->dims > 1)
        return lb__err(err, LB_EINVAL, "lb_count_states: the target has several leading axes");
    if (n_out < c.channels)
        return lb__err(err, LB_EINVAL, "lb_count_states: %zu records for %zu channels", n_out,
                       c.channels);
    if (target->dtype != LB_DTYPE_UINT8)
        return lb__err(err, LB_EINVAL, "lb_count_states: the target is %s, not uint8 states",
                       lb_dtype_name(target->dtype));
    c.unknown = -1;
    if (mask) {
        if (mask->dtype != LB_DTYPE_UINT8 || mask->ndim != target->ndim ||
            mask->num_channels != target->num_channels || mask->dims != target->dims)
            return lb__err(err, LB_EINVAL, "lb_count_states: the mask's channels, dtype or "
                           "dimensions differ from the target's");
        for (int d = 0; d < target->dims; d++)
            if (mask->voxel_size[d] != target->voxel_size[d])
                return lb__err(err, LB_EINVAL, "lb_count_states: the mask's voxel size differs "
                               "from the target's");
    } else {
        c.unknown = lb__crop_array_unknown(target);
        if (c.unknown < 0)
            return lb__err(err, LB_EINVAL, "lb_count_states: without a mask the target must be "
                           "a three-state array over a crop (an unknown value)");
    }
    lb_roi r = roi ? *roi : target->roi;
    int rc = lb__array_check_roi(target, &r, err);
    if (!rc && mask) rc = lb__array_check_roi(mask, &r, err);
    if (rc) return rc;
    c.roi = &r;
    memset(out, 0, c.channels * sizeof *out);

    /* Blocks on the stored chunk grid, small enough for bounded memory. */
    int64_t stepv[LB_MAX_DIMS];
    for (int d = 0; d < c.dims; d++) {
        int64_t origin = 0, step = 0;
        if (lb__array_chunk_grid(target, d, &origin, &step) != 0 || step <= 0) {
            origin = r.offset[d];
            step = 64 * target->voxel_size[d];
        }
        c.origin[d] = origin;
        stepv[d] = step / target->voxel_size[d] > 0 ? step / target->voxel_size[d] : 1;
    }
    for (;;) {
        int64_t n = (int64_t)c.channels;
        int big = 0;
        for (int d = 0; d < c.dims; d++) {
            n = n > INT64_MAX / stepv[d] ? INT64_MAX : n * stepv[d];
            if (stepv[d] > stepv[big]) big = d;
        }
        if (n <= MAX_BLOCK_BYTES || stepv[big] <= 1) break;
        stepv[big] = (stepv[big] + 1) / 2;
    }
    c.total = 1;
    for (int d = 0; d < c.dims; d++) {
        c.step[d] = stepv[d] * target->voxel_size[d];
        int64_t b = r.offset[d], e = r.offset[d] + r.shape[d];
        c.first[d] = lb__floordiv(b - c.origin[d], c.step[d]);
        int64_t last = r.shape[d] > 0 ? lb__floordiv(e - 1 - c.origin[d], c.step[d]) : c.first[d] - 1;
        c.count[d] = last - c.first[d] + 1;
        if (c.count[d] < 0) c.count[d] = 0;
        c.total *= c.count[d];
    }
    if (c.total == 0) return 0;
    if (threads == 0) threads = lb__ncpu();
    if (threads > 64) threads = 64;
    if (threads > c.total) threads = (int)c.total;
    c.ws = calloc((size_t)threads, sizeof *c.ws);
    c.tbuf = calloc((size_t)threads, sizeof *c.tbuf);
    c.mbuf = calloc((size_t)threads, sizeof *c.mbuf);
    c.errs = calloc((size_t)threads, sizeof *c.errs);
    c.counts = calloc((size_t)threads * c.channels * 3, sizeof *c.counts);
    if (!c.ws || !c.tbuf || !c.mbuf || !c.errs || !c.counts) {
        rc = lb__err(err, LB_ENOMEM, "out of memory counting states");
        goto done;
    }
    int failed = 0;
    rc = lb__parallel_for(threads, c.total, count_block, &c, &failed);
    if (rc) {
        if (err) *err = c.errs[failed];
        goto done;
    }
    for (int t = 0; t < threads; t++)
        for (size_t ch = 0; ch < c.channels; ch++) {
            const uint64_t *k = c.counts + ((size_t)t * c.channels + ch) * 3;
            out[ch].absent += k[LB__ABSENT];
            out[ch].present += k[LB__PRESENT];
            out[ch].unknown += k[LB__UNKNOWN];
        }
done:
    for (int t = 0; c.ws && t < threads; t++) lb__workspace_free(&c.ws[t]);
    for (int t = 0; c.tbuf && t < threads; t++) lb__buf_free(&c.tbuf[t]);
    for (int t = 0; c.mbuf && t < threads; t++) lb__buf_free(&c.mbuf[t]);
    free(c.ws);
    free(c.tbuf);
    free(c.mbuf);
    free(c.errs);
    free(c.counts);
    return rc;
}
