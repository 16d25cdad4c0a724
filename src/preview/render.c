/*
 * render.c — previews (labelbin.h, "Previews"): which arrays a preview
 * draws (labels, overlays, mask), the section(s) and their layout, reading
 * only the voxels that pixels sample, then drawing labels, overlays, mask
 * stripes, titles and the legend into an RGB8 image.
 *
 * Reads go through the arrays' own reads, tile by tile: a tile is the
 * sampled rows of one row of stored chunks by a run of chunk columns that
 * hold sampled columns, so every chunk a section touches is fetched once
 * and chunks holding no sampled voxel are not fetched at all. Overlays and
 * masks computed from the labels use the binarize and mask kernels on the
 * labels already read: the labels are read once.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array/array.h"
#include "core/json.h"
#include "kernels/kernels.h"
#include "preview/color.h"
#include "preview/font.h"
#include "preview/png.h"
#include "store/store.h"

/* Layout constants (documented in labelbin.h). */
#define GAP 4          /* pixels between panels                        */
#define TITLE_H 11     /* title bar above a panel                      */
#define LEGEND_PAD 4   /* above the legend                             */
#define ROW_H 12       /* one legend row                               */
#define SWATCH 9       /* legend swatch side                           */
#define SWATCH_STEP 11 /* from one swatch to the next                  */
#define HATCH 6        /* period of the mask stripes in a panel        */
#define MAX_NAME 48    /* glyphs of a legend name                      */
#define TILE_BYTES ((size_t)32 << 20)           /* read buffers per tile */
#define MAX_SAMPLE_BYTES ((size_t)1 << 30)      /* sampled voxels kept   */
#define MAX_SECTION_VOXELS ((int64_t)1 << 31)   /* one side of a section */

static const uint8_t BG[3] = {32, 32, 32};
static const uint8_t TEXT[3] = {224, 224, 224};

typedef enum { BASE_NONE = 0, BASE_IDS, BASE_FLOAT } base_kind;

typedef struct preview {
    /* What is drawn. */
    const lb_array *labels; /* base layer (no channels) or NULL         */
    base_kind base;
    const lb_array *chans;  /* an array whose channels are read, or NULL */
    int64_t n_lead;         /* elements per voxel of `chans`            */
    lb__binplan *plan;      /* overlays computed from the labels        */
    uint8_t *enabled;       /* mask computed from the labels            */
    size_t n_ch;
    int has_ov, has_mk;
    char **names;           /* n_ch channel names (owned)               */
    const char *axis_name;  /* the axis across the section              */
    /* The section(s). */
    int dims, an, ar, ac;   /* normal, row and column spatial axes      */
    lb_roi win;
    const int64_t *vs;
    int64_t n_n, n_r, n_c;  /* window voxels along those axes           */
    int64_t *sec;           /* section indices along the normal axis    */
    int64_t n_sec;
    /* Layout. */
    int grid;
    int64_t panels, cols_p, rows_p, title_h, pw, ph;
    int64_t mosaic_w, mosaic_h, legend_rows, legend_h, legend_w, width, height;
    /* Reading: the sampled rows / columns (window voxel indices, distinct,
     * ascending) and each pixel's index into them. */
    int64_t *rsel, *csel, n_rs, n_cs;
    int64_t *ridx, *cidx;
    double lo, hi; /* range of a float base */
} preview;

static void preview_free(preview *p) {
    lb__binplan_free(p->plan);
    free(p->enabled);
    if (p->names)
        for (size_t i = 0; i < p->n_ch; i++) free(p->names[i]);
    free(p->names);
    free(p->sec);
    free(p->rsel);
    free(p->csel);
    free(p->ridx);
    free(p->cidx);
    memset(p, 0, sizeof *p);
}

/* ---- options ------------------------------------------------------------- */

void lb_preview_options_init(lb_preview_options *opt) {
    if (!opt) return;
    memset(opt, 0, sizeof *opt);
    opt->struct_size = (int)sizeof *opt;
}

static int options_copy(const lb_preview_options *in, lb_preview_options *out,
                        lb_error *err) {
    lb_preview_options_init(out);
    if (!in) return 0;
    /* struct_size lets an older caller pass a shorter struct; 0 (zeroed
     * without lb_preview_options_init) means this version's layout. */
    size_t n = in->struct_size == 0 ? sizeof *in : (size_t)in->struct_size;
    if (in->struct_size < 0 || n > sizeof *in || n < sizeof(int))
        return lb__err(err, LB_EINVAL, "lb_preview_options.struct_size = %d: use "
                       "lb_preview_options_init", in->struct_size);
    memcpy(out, in, n);
    out->struct_size = (int)sizeof *out;
    return 0;
}

/* ---- what is drawn --------------------------------------------------------- */

static int64_t lead_elements(const lb_array *a) {
    int64_t n = 1;
    for (int i = 0; i < a->ndim - a->dims; i++)
        if (lb__mul_i64(n, a->shape[i], &n)) return -1;
    return n;
}

static const char *stored_path(const lb_array *a) {
    const lb_array *st = lb__array_stored(a);
    return st ? st->ds->path : "(virtual array)";
}

/* A stored labelbin output says what it is: a mask's channels are drawn as
 * stripes, any other array's channels as overlays. */
static int stored_mask(const lb_array *a) {
    json_object *lb = a->attrs ? lb__json_get(a->attrs, "labelbin") : NULL;
    json_object *kind = lb ? lb__json_get(lb, "kind") : NULL;
    return kind && json_object_is_type(kind, json_type_string) &&
           strcmp(json_object_get_string(kind), "MissingAnnotationsMask") == 0;
}

static int set_names(preview *p, const lb_array *from, const lb_groupings *g, lb_error *err) {
    p->names = lb__calloc(p->n_ch ? p->n_ch : 1, sizeof *p->names, "channel names", err);
    if (!p->names) return LB_ENOMEM;
    for (size_t i = 0; i < p->n_ch; i++) {
        const char *n = g ? lb_groupings_name(g, i)
                          : (from ? lb_array_channel_name(from, (int64_t)i) : NULL);
        char buf[32];
        if (!n) {
            snprintf(buf, sizeof buf, "channel %zu", i);
            n = buf;
        }
        p->names[i] = lb__strdup(n, err);
        if (!p->names[i]) return LB_ENOMEM;
    }
    return 0;
}

/* The mask rule on the labels' own metadata: a channel is off when its
 * group lists an id that the `labels` attribute marks present but not
 * annotated (as lb_mask_new decides). */
static int mask_from_labels(preview *p, const lb_groupings *g, lb_error *err) {
    lb_annotations kind;
    lb_id *pna = NULL;
    size_t n_pna = 0;
    int rc = lb__annotations_parse(p->labels->attrs, &kind, &pna, &n_pna, err);
    if (rc) {
        const lb_array *st = lb__array_stored(p->labels);
        if (st) lb__err_prefix(err, "%s/%s", st->ds->path, st->ds->format->attrs_file);
        return rc;
    }
    p->enabled = lb__calloc(p->n_ch ? p->n_ch : 1, 1, "mask channel flags", err);
    if (!p->enabled) {
        free(pna);
        return LB_ENOMEM;
    }
    for (size_t c = 0; c < p->n_ch; c++) {
        const lb_id *ids;
        size_t m = lb_groupings_ids(g, c, &ids);
        int on = 1;
        for (size_t j = 0; j < m && on; j++)
            for (size_t k = 0; k < n_pna && on; k++)
                if (ids[j].bits == pna[k].bits && ids[j].negative == pna[k].negative) on = 0;
        p->enabled[c] = (uint8_t)on;
    }
    free(pna);
    return 0;
}

/* Labels under a channels array must be a label array on the same grid. */
static int check_labels(const lb_array *a, const lb_array *l, lb_error *err) {
    if (l->ndim - l->dims > 0 && lead_elements(l) != 1)
        return lb__err(err, LB_EINVAL, "%s: the labels to draw under the channels have "
                       "channels themselves", stored_path(l));
    if (l->dims != a->dims)
        return lb__err(err, LB_EINVAL, "%s: the labels have %d spatial dimensions, %s has %d",
                       stored_path(l), l->dims, stored_path(a), a->dims);
    for (int i = 0; i < a->dims; i++)
        if (l->voxel_size[i] != a->voxel_size[i]) {
            char b1[256], b2[256];
            lb_coord_format(l->voxel_size, l->dims, b1, sizeof b1);
            lb_coord_format(a->voxel_size, a->dims, b2, sizeof b2);
            return lb__err(err, LB_EINVAL, "%s: the labels' voxel size %s differs from %s's "
                           "%s", stored_path(l), b1, stored_path(a), b2);
        }
    return 0;
}

static int resolve_roles(preview *p, const lb_array *a, const lb_preview_options *o,
                         lb_error *err) {
    const char *kind = lb_array_kind(a);
    int is_bin = strcmp(kind, "BinarizeArray") == 0;
    int is_mask = strcmp(kind, "MissingAnnotationsMask") == 0;
    int64_t lead = lead_elements(a);
    const lb_groupings *g = NULL;
    lb_id bg = o->background;
    int rc;
    if (lead < 0) return lb__err(err, LB_ELIMIT, "%s: too many channels", stored_path(a));

    if (o->groups && lb_groupings_count(o->groups) == 0)
        return lb__err(err, LB_EINVAL, "the groups are empty: give at least one group to "
                       "draw, or none");
    if ((is_bin || is_mask || lead > 1) && o->groups)
        return lb__err(err, LB_EINVAL, "%s: groups are drawn over label arrays; this %s has "
                       "channels of its own", stored_path(a), kind);
    if (o->labels && !(lead > 1 && !is_bin && !is_mask))
        return lb__err(err, LB_EINVAL, "labels to draw under are given for arrays with "
                       "channels that are not computed from labels; %s %s",
                       stored_path(a), is_bin || is_mask ? "brings its own labels"
                                                         : "is a label array itself");
    if (is_bin || is_mask) {
        /* A wrapper's source is its labels: read them once and compute the
         * channels here with the wrapper's own rule. */
        p->labels = a->source;
        if (lb__array_groupings(a, &g, &bg, NULL) != 0)
            return lb__err(err, LB_EINVAL, "%s: no groupings", kind);
        p->n_ch = lb_groupings_count(g);
        if (is_bin) {
            p->has_ov = 1;
            rc = lb__binplan_new(g, p->labels->dtype, bg, &p->plan, err);
            if (rc) return rc;
            if (o->mask) {
                p->has_mk = 1;
                rc = mask_from_labels(p, g, err);
                if (rc) return rc;
            }
        } else {
            p->has_mk = 1;
            p->enabled = lb__calloc(p->n_ch ? p->n_ch : 1, 1, "mask channel flags", err);
            if (!p->enabled) return LB_ENOMEM;
            for (size_t c = 0; c < p->n_ch; c++)
                p->enabled[c] = lb_mask_off_ids(a, (int64_t)c, NULL) == 0;
        }
        return set_names(p, a, NULL, err);
    }
    if (lead > 1) {
        /* Stored channels (a materialised target or mask): read as they are. */
        if (o->mask)
            return lb__err(err, LB_EINVAL, "%s: the mask is computed from labels and groups; "
                           "preview the mask dataset itself, or the labels with groups",
                           stored_path(a));
        p->chans = a;
        p->n_lead = lead;
        p->n_ch = (size_t)lead;
        if (stored_mask(a)) p->has_mk = 1;
        else p->has_ov = 1;
        if (o->labels) {
            rc = check_labels(a, o->labels, err);
            if (rc) return rc;
            p->labels = o->labels;
        }
        return set_names(p, a, NULL, err);
    }
    /* A label (or other single-valued) array. */
    p->labels = a;
    if (o->mask && !o->groups)
        return lb__err(err, LB_EINVAL, "the mask needs groups: give the groups whose mask "
                       "channels to draw");
    if (o->groups) {
        if (!lb_dtype_is_integer(a->dtype))
            return lb__err(err, LB_EUNSUPPORTED, "%s: cannot draw groups over an array of "
                           "dtype %s: label ids must be integers", stored_path(a),
                           lb_dtype_name(a->dtype));
        g = o->groups;
        p->n_ch = lb_groupings_count(g);
        p->has_ov = 1;
        rc = lb__binplan_new(g, a->dtype, bg, &p->plan, err);
        if (rc) return rc;
        if (o->mask) {
            p->has_mk = 1;
            rc = mask_from_labels(p, g, err);
            if (rc) return rc;
        }
        return set_names(p, NULL, g, err);
    }
    return 0;
}

/* ---- geometry and layout --------------------------------------------------- */

static int64_t isqrt_ceil(int64_t n) {
    int64_t c = 1;
    while (c * c < n) c++;
    return c;
}

static int resolve_section(preview *p, const lb_array *a, const lb_preview_options *o,
                           lb_error *err) {
    char axes[256] = "";
    size_t len = 0;
    int lead = a->ndim - a->dims, rc;
    p->dims = a->dims;
    p->vs = a->voxel_size;
    for (int i = 0; i < a->dims && len < sizeof axes; i++)
        len += (size_t)snprintf(axes + len, sizeof axes - len, "%s%s", i ? ", " : "",
                                a->axes[lead + i]);
    if (a->dims != 2 && a->dims != 3)
        return lb__err(err, LB_EUNSUPPORTED, "%s: previews draw 2-D sections of 2-D or 3-D "
                       "arrays; this one has %d spatial axes (%s)", stored_path(a), a->dims,
                       axes);
    if (o->roi) {
        rc = lb__array_check_roi(a, o->roi, err);
        if (rc) return rc;
        p->win = *o->roi;
    } else {
        p->win = a->roi;
    }
    for (int i = 0; i < a->dims; i++)
        if (p->win.shape[i] / a->voxel_size[i] < 1) {
            char b[512];
            lb_roi_format(&p->win, b, sizeof b);
            return lb__err(err, LB_EROI, "the ROI %s is empty along %s: nothing to draw", b,
                           a->axes[lead + i]);
        }
    if (o->montage < 0)
        return lb__err(err, LB_EINVAL, "montage = %" PRId64 ": expected a number of sections "
                       "(1 or more), or 0 for one section", o->montage);
    if (a->dims == 2) {
        if (o->axis)
            return lb__err(err, LB_EINVAL, "axis \"%s\": %s is 2-D (axes %s), its one section "
                           "is drawn whole; give no axis", o->axis, stored_path(a), axes);
        if (o->at)
            return lb__err(err, LB_EINVAL, "%s is 2-D (axes %s): its one section is drawn "
                           "whole; give no position", stored_path(a), axes);
        if (o->montage > 1)
            return lb__err(err, LB_EINVAL, "%s is 2-D (axes %s): a montage needs a third "
                           "axis", stored_path(a), axes);
        p->an = -1;
        p->ar = 0;
        p->ac = 1;
        p->n_n = 1;
        p->axis_name = NULL;
    } else {
        p->an = 0;
        if (o->axis) {
            p->an = -1;
            for (int i = 0; i < a->dims; i++)
                if (strcmp(o->axis, a->axes[lead + i]) == 0) p->an = i;
            if (p->an < 0)
                return lb__err(err, LB_EINVAL, "axis \"%s\" does not exist in %s: its spatial "
                               "axes are %s", o->axis, stored_path(a), axes);
        }
        p->ar = p->an == 0 ? 1 : 0;
        p->ac = p->an == 2 ? 1 : 2;
        p->n_n = p->win.shape[p->an] / p->vs[p->an];
        p->axis_name = a->axes[lead + p->an];
    }
    p->n_r = p->win.shape[p->ar] / p->vs[p->ar];
    p->n_c = p->win.shape[p->ac] / p->vs[p->ac];
    if (p->n_r > MAX_SECTION_VOXELS || p->n_c > MAX_SECTION_VOXELS)
        return lb__err(err, LB_ELIMIT, "a section of %" PRId64 " x %" PRId64 " voxels is "
                       "beyond the preview's limit of %" PRId64 " per side", p->n_r, p->n_c,
                       MAX_SECTION_VOXELS);

    if (o->montage && o->at)
        return lb__err(err, LB_EINVAL, "a montage spaces its sections evenly: give a "
                       "position or a montage, not both");
    p->n_sec = o->montage ? o->montage : 1;
    if (p->n_sec > p->n_n)
        return lb__err(err, LB_EINVAL, "a montage of %" PRId64 " sections, but the ROI holds "
                       "only %" PRId64 " along %s", p->n_sec, p->n_n, p->axis_name);
    p->sec = lb__calloc((size_t)p->n_sec, sizeof *p->sec, "sections", err);
    if (!p->sec) return LB_ENOMEM;
    if (o->montage) {
        for (int64_t j = 0; j < p->n_sec; j++) p->sec[j] = (2 * j + 1) * p->n_n / (2 * p->n_sec);
    } else if (o->at) {
        int64_t b = p->win.offset[p->an], e = b + p->win.shape[p->an];
        if (*o->at < b || *o->at >= e) {
            char r[512];
            lb_roi_format(&p->win, r, sizeof r);
            return lb__err(err, LB_EROI, "position %s = %" PRId64 " lies outside the ROI %s "
                           "(%s from %" PRId64 " to %" PRId64 ", end excluded)", p->axis_name,
                           *o->at, r, p->axis_name, b, e);
        }
        p->sec[0] = (*o->at - b) / p->vs[p->an];
    } else {
        p->sec[0] = p->n_n / 2;
    }
    return 0;
}

/* A legend row's width: swatches, then the name. */
static int64_t legend_text_x(const preview *p) {
    return 2 + (int64_t)(p->has_ov + p->has_mk) * SWATCH_STEP + 1;
}

static int layout(preview *p, const lb_preview_options *o, lb_error *err) {
    p->grid = o->grid;
    if (o->grid && o->montage)
        return lb__err(err, LB_EINVAL, "a grid (one panel per channel) and a montage (one "
                       "panel per section) exclude each other: choose one");
    if (o->grid && p->n_ch == 0)
        return lb__err(err, LB_EINVAL, "a grid draws one panel per channel, and there are "
                       "none: give groups, or an array with channels");
    if (o->scale && o->max_size)
        return lb__err(err, LB_EINVAL, "give a scale or a maximum size, not both");
    if (o->scale < 0 || o->scale > LB_PREVIEW_MAX_SIDE)
        return lb__err(err, LB_EINVAL, "scale = %" PRId64 ": expected 1 to %d pixels per "
                       "voxel (0 = the default, 1)", o->scale, LB_PREVIEW_MAX_SIDE);
    if (o->max_size < 0 || o->max_size > LB_PREVIEW_MAX_SIDE)
        return lb__err(err, LB_EINVAL, "max_size = %" PRId64 ": expected 1 to %d pixels "
                       "(0 = no limit)", o->max_size, LB_PREVIEW_MAX_SIDE);
    p->panels = o->grid ? (int64_t)p->n_ch + (p->labels ? 1 : 0) : p->n_sec;
    p->cols_p = isqrt_ceil(p->panels);
    p->rows_p = (p->panels + p->cols_p - 1) / p->cols_p;
    p->title_h = o->grid || o->montage ? TITLE_H : 0;

    p->legend_rows = 0;
    p->legend_w = 0;
    if (p->has_ov || p->has_mk) {
        int64_t tx = legend_text_x(p);
        p->legend_rows = (int64_t)p->n_ch + (p->has_mk ? 1 : 0);
        for (size_t c = 0; c < p->n_ch; c++) {
            int64_t w = tx + (int64_t)lb__font_glyphs(p->names[c], MAX_NAME) * LB__FONT_ADVANCE + 2;
            if (w > p->legend_w) p->legend_w = w;
        }
        if (p->has_mk) {
            int64_t w = tx + (int64_t)strlen("stripes: masked off") * LB__FONT_ADVANCE + 2;
            if (w > p->legend_w) p->legend_w = w;
        }
    }
    p->legend_h = p->legend_rows ? LEGEND_PAD + p->legend_rows * ROW_H : 0;

    int64_t gaps_w = (p->cols_p - 1) * GAP;
    int64_t gaps_h = p->rows_p * p->title_h + (p->rows_p - 1) * GAP + p->legend_h;
    int64_t X = p->cols_p * p->n_c, Y = p->rows_p * p->n_r; /* < 2^47 */
    if (o->max_size) {
        int64_t wb = o->max_size - gaps_w, hb = o->max_size - gaps_h;
        if (wb < p->cols_p || hb < p->rows_p)
            return lb__err(err, LB_EINVAL, "max_size = %" PRId64 " leaves no room for %" PRId64
                           " panel(s) with their titles and legend", o->max_size, p->panels);
        if (X <= wb && Y <= hb) {
            p->pw = p->n_c;
            p->ph = p->n_r;
        } else {
            /* The tighter of wb / X and hb / Y (both below 2^63: wb,hb <=
             * 2^15, X,Y < 2^47). */
            int64_t num = wb, den = X;
            if (hb * X < wb * Y) num = hb, den = Y;
            p->pw = p->n_c * num / den;
            p->ph = p->n_r * num / den;
            if (p->pw < 1) p->pw = 1;
            if (p->ph < 1) p->ph = 1;
        }
    } else {
        int64_t s = o->scale ? o->scale : 1;
        if (lb__mul_i64(p->n_c, s, &p->pw) || lb__mul_i64(p->n_r, s, &p->ph) ||
            p->pw > LB_PREVIEW_MAX_SIDE || p->ph > LB_PREVIEW_MAX_SIDE)
            return lb__err(err, LB_ELIMIT, "a section of %" PRId64 " x %" PRId64 " voxels at "
                           "scale %" PRId64 " is beyond the limit of %d pixels per side; use "
                           "a smaller scale, a maximum size or a ROI", p->n_r, p->n_c, s,
                           LB_PREVIEW_MAX_SIDE);
    }
    int64_t mw, mh;
    if (lb__mul_i64(p->cols_p, p->pw, &mw) || lb__add_i64(mw, gaps_w, &p->mosaic_w) ||
        lb__mul_i64(p->rows_p, p->ph, &mh) ||
        lb__add_i64(mh, p->rows_p * p->title_h + (p->rows_p - 1) * GAP, &p->mosaic_h))
        return lb__err(err, LB_ELIMIT, "the preview's size overflows");
    p->width = p->mosaic_w > p->legend_w ? p->mosaic_w : p->legend_w;
    p->height = p->mosaic_h + p->legend_h;
    if (p->width > LB_PREVIEW_MAX_SIDE || p->height > LB_PREVIEW_MAX_SIDE ||
        p->width * p->height > LB_PREVIEW_MAX_PIXELS)
        return lb__err(err, LB_ELIMIT, "a preview of %" PRId64 " x %" PRId64 " pixels is "
                       "beyond the limit (%d per side, %lld pixels); use a smaller scale, a "
                       "maximum size, a ROI or fewer panels", p->width, p->height,
                       LB_PREVIEW_MAX_SIDE, (long long)LB_PREVIEW_MAX_PIXELS);
    return 0;
}

/* Pixel i of n_px samples voxel i * n_vox / n_px; the distinct voxels, and
 * each pixel's index among them. */
static int sample_axis(int64_t n_vox, int64_t n_px, int64_t **sel, int64_t *n_sel,
                       int64_t **idx, lb_error *err) {
    *sel = lb__calloc((size_t)n_px, sizeof **sel, "sampled voxels", err);
    *idx = lb__calloc((size_t)n_px, sizeof **idx, "sampled voxels", err);
    if (!*sel || !*idx) return LB_ENOMEM;
    int64_t k = 0;
    for (int64_t i = 0; i < n_px; i++) {
        int64_t v = i * n_vox / n_px; /* i < 2^15, n_vox <= 2^31 */
        if (k == 0 || (*sel)[k - 1] != v) (*sel)[k++] = v;
        (*idx)[i] = k - 1;
    }
    *n_sel = k;
    return 0;
}

static int prepare(const lb_array *a, const lb_preview_options *in, preview *p,
                   lb_error *err) {
    lb_preview_options o;
    memset(p, 0, sizeof *p);
    if (!a) return lb__err(err, LB_EINVAL, "no array given");
    int rc = options_copy(in, &o, err);
    if (!rc) rc = resolve_roles(p, a, &o, err);
    if (!rc) rc = resolve_section(p, a, &o, err);
    if (!rc && p->labels && p->labels != a) {
        /* The section must be readable from the labels as well. */
        if (!lb_roi_contains(&p->labels->roi, &p->win)) {
            char b1[512], b2[512];
            lb_roi_format(&p->win, b1, sizeof b1);
            lb_roi_format(&p->labels->roi, b2, sizeof b2);
            rc = lb__err(err, LB_EROI, "the ROI %s lies outside the ROI %s of the labels %s",
                         b1, b2, stored_path(p->labels));
        }
    }
    if (!rc && p->labels)
        p->base = lb_dtype_is_integer(p->labels->dtype) || p->labels->dtype == LB_DTYPE_BOOL
                      ? BASE_IDS : BASE_FLOAT;
    if (!rc) rc = layout(p, &o, err);
    if (!rc) rc = sample_axis(p->n_r, p->ph, &p->rsel, &p->n_rs, &p->ridx, err);
    if (!rc) rc = sample_axis(p->n_c, p->pw, &p->csel, &p->n_cs, &p->cidx, err);
    if (!rc) {
        size_t per = 8 + 2 * 8 * ((p->n_ch + 63) / 64), n;
        if (lb__mul_size((size_t)p->n_rs, (size_t)p->n_cs, &n) || lb__mul_size(n, per, &n) ||
            n > MAX_SAMPLE_BYTES)
            rc = lb__err(err, LB_ELIMIT, "the sampled voxels of a %" PRId64 " x %" PRId64
                         " section with %zu channels need more than %zu MiB; use a maximum "
                         "size or fewer groups", p->n_r, p->n_c, p->n_ch,
                         MAX_SAMPLE_BYTES >> 20);
    }
    if (rc) preview_free(p);
    return rc;
}

/* ---- reading the sampled voxels of one section ----------------------------- */

/* The sampled voxels of one section, sample i = row * n_cs + column. The
 * channels are bit sets of `words` 64-bit words per sample, so that drawing
 * visits only the channels that are on (or masked off) at a pixel. */
typedef struct samples {
    uint64_t *lab; /* label bits (a float base: the double's bits)     */
    uint64_t *ov;  /* bit c: channel c is on                           */
    uint64_t *mk;  /* bit c: channel c's mask is 0 (masked off)        */
    size_t n, words;
} samples;

/* The world chunk grid along spatial axis `ax` of the array that is read
 * most (the labels, else the channels); a fallback of 64 voxels. */
static void chunk_grid(const preview *p, int ax, int64_t *origin, int64_t *step) {
    const lb_array *g = p->labels ? p->labels : p->chans;
    if (lb__array_chunk_grid(g, ax, origin, step) != 0 || *step <= 0) {
        *origin = p->win.offset[ax];
        *step = 64 * p->vs[ax];
    }
}

static int64_t chunk_of(const preview *p, int ax, int64_t voxel, int64_t origin, int64_t step) {
    return lb__floordiv(p->win.offset[ax] + voxel * p->vs[ax] - origin, step);
}

static uint64_t label_bits(lb_dtype dt, const void *buf, size_t i) {
    switch (dt) {
    case LB_DTYPE_UINT8: case LB_DTYPE_BOOL: return ((const uint8_t *)buf)[i];
    case LB_DTYPE_UINT16: return ((const uint16_t *)buf)[i];
    case LB_DTYPE_UINT32: return ((const uint32_t *)buf)[i];
    case LB_DTYPE_UINT64: return ((const uint64_t *)buf)[i];
    case LB_DTYPE_INT8: return (uint64_t)(int64_t)((const int8_t *)buf)[i];
    case LB_DTYPE_INT16: return (uint64_t)(int64_t)((const int16_t *)buf)[i];
    case LB_DTYPE_INT32: return (uint64_t)(int64_t)((const int32_t *)buf)[i];
    case LB_DTYPE_INT64: return (uint64_t)((const int64_t *)buf)[i];
    case LB_DTYPE_FLOAT32: {
        double d = ((const float *)buf)[i];
        uint64_t b;
        memcpy(&b, &d, sizeof b);
        return b;
    }
    case LB_DTYPE_FLOAT64: return ((const uint64_t *)buf)[i];
    }
    return 0;
}

/* A stored channel is on where it is non-zero (a float one: from 0.5). */
static uint8_t channel_on(lb_dtype dt, const void *buf, size_t i) {
    if (dt == LB_DTYPE_FLOAT32) return ((const float *)buf)[i] >= 0.5f;
    if (dt == LB_DTYPE_FLOAT64) return ((const double *)buf)[i] >= 0.5;
    return label_bits(dt, buf, i) != 0;
}

typedef struct tile_bufs {
    lb__buf lab, ch, ov, mk, cols;
    lb__workspace ws;
} tile_bufs;

static void tile_bufs_free(tile_bufs *t) {
    lb__buf_free(&t->cols);
    lb__buf_free(&t->lab);
    lb__buf_free(&t->ch);
    lb__buf_free(&t->ov);
    lb__buf_free(&t->mk);
    lb__workspace_free(&t->ws);
}

/* Read rows [r0, r1] x columns [c0, c1] (window voxel indices) of section
 * k and copy the sampled voxels in rows rsel[i0..i1), columns
 * csel[j0..j1) into s. */
static int read_tile(const preview *p, int64_t k, int64_t i0, int64_t i1, int64_t j0,
                     int64_t j1, tile_bufs *t, samples *s, lb_error *err) {
    int64_t r0 = p->rsel[i0], r1 = p->rsel[i1 - 1], c0 = p->csel[j0], c1 = p->csel[j1 - 1];
    size_t nr = (size_t)(r1 - r0 + 1), nc = (size_t)(c1 - c0 + 1), nv = nr * nc;
    lb_roi roi = p->win;
    if (p->an >= 0) {
        roi.offset[p->an] = p->win.offset[p->an] + k * p->vs[p->an];
        roi.shape[p->an] = p->vs[p->an];
    }
    roi.offset[p->ar] = p->win.offset[p->ar] + r0 * p->vs[p->ar];
    roi.shape[p->ar] = (int64_t)nr * p->vs[p->ar];
    roi.offset[p->ac] = p->win.offset[p->ac] + c0 * p->vs[p->ac];
    roi.shape[p->ac] = (int64_t)nc * p->vs[p->ac];
    int rc;
    const void *lab = NULL, *ch = NULL;
    if (p->labels) {
        size_t bytes = lb_array_read_size(p->labels, &roi);
        rc = lb__buf_reserve(&t->lab, bytes, err);
        if (!rc) rc = lb__array_read_ws(p->labels, &roi, t->lab.data, bytes, &t->ws, err);
        if (rc) return rc;
        lab = t->lab.data;
    }
    if (p->chans) {
        size_t bytes = lb_array_read_size(p->chans, &roi);
        rc = lb__buf_reserve(&t->ch, bytes, err);
        if (!rc) rc = lb__array_read_ws(p->chans, &roi, t->ch.data, bytes, &t->ws, err);
        if (rc) return rc;
        ch = t->ch.data;
    }
    if (p->plan) {
        rc = lb__buf_reserve(&t->ov, nv * p->n_ch, err);
        if (rc) return rc;
        lb__binarize(p->plan, lab, nv, t->ov.data, nv);
    }
    if (p->enabled) {
        rc = lb__buf_reserve(&t->mk, nv * p->n_ch, err);
        if (rc) return rc;
        lb__mask(p->labels->dtype, lab, nv, p->enabled, p->n_ch, t->mk.data, nv);
    }
    /* Where each sampled column of the tile lies in the buffers. */
    int64_t nj = j1 - j0;
    rc = lb__buf_reserve(&t->cols, (size_t)nj * sizeof(size_t), err);
    if (rc) return rc;
    size_t *cols = (size_t *)t->cols.data;
    for (int64_t j = 0; j < nj; j++) cols[j] = (size_t)(p->csel[j0 + j] - c0);
    if (lab) {
        lb_dtype dt = p->labels->dtype;
        for (int64_t i = i0; i < i1; i++) {
            size_t row = (size_t)(p->rsel[i] - r0) * nc;
            uint64_t *out = s->lab + (size_t)i * (size_t)p->n_cs + (size_t)j0;
            for (int64_t j = 0; j < nj; j++) out[j] = label_bits(dt, lab, row + cols[j]);
        }
    }
    /* Channel c of the buffers (a plane of nv) into bit c of the samples. */
    for (size_t c = 0; c < p->n_ch; c++) {
        unsigned sh = (unsigned)(c % 64);
        size_t w = c / 64;
        for (int pass = 0; pass < 2; pass++) {
            uint64_t *bits = pass == 0 ? s->ov : s->mk;
            if (!bits) continue;
            const uint8_t *plane = NULL;
            int stored = 0;
            uint64_t invert = pass == 1; /* mask bits mark "off" */
            if (ch) stored = 1;
            else if (pass == 0) plane = t->ov.data + c * nv;
            else plane = t->mk.data + c * nv;
            for (int64_t i = i0; i < i1; i++) {
                size_t row = (size_t)(p->rsel[i] - r0) * nc;
                uint64_t *out = bits + ((size_t)i * (size_t)p->n_cs + (size_t)j0) * s->words + w;
                for (int64_t j = 0; j < nj; j++) {
                    size_t src = row + cols[j];
                    uint64_t v = stored ? channel_on(p->chans->dtype, ch, c * nv + src)
                                        : plane[src] != 0;
                    out[(size_t)j * s->words] |= (v ^ invert) << sh;
                }
            }
        }
    }
    return 0;
}

/* Tiles: the sampled rows of one chunk row by a run of chunk columns that
 * hold sampled columns, widened up to TILE_BYTES of read buffers. */
static int read_section(const preview *p, int64_t k, samples *s, lb_error *err) {
    tile_bufs t;
    memset(&t, 0, sizeof t);
    int64_t ro, rstep, co, cstep;
    chunk_grid(p, p->ar, &ro, &rstep);
    chunk_grid(p, p->ac, &co, &cstep);
    size_t per_voxel = (p->labels ? lb_dtype_size(p->labels->dtype) : 0) +
                       (p->chans ? (size_t)p->n_lead * lb_dtype_size(p->chans->dtype) : 0) +
                       (p->plan ? p->n_ch : 0) + (p->enabled ? p->n_ch : 0);
    int rc = 0;
    if (s->ov) memset(s->ov, 0, s->n * s->words * sizeof *s->ov);
    if (s->mk) memset(s->mk, 0, s->n * s->words * sizeof *s->mk);
    for (int64_t i0 = 0; i0 < p->n_rs && !rc;) {
        int64_t band = chunk_of(p, p->ar, p->rsel[i0], ro, rstep), i1 = i0 + 1;
        while (i1 < p->n_rs && chunk_of(p, p->ar, p->rsel[i1], ro, rstep) == band) i1++;
        size_t nr = (size_t)(p->rsel[i1 - 1] - p->rsel[i0] + 1);
        for (int64_t j0 = 0; j0 < p->n_cs && !rc;) {
            int64_t cc = chunk_of(p, p->ac, p->csel[j0], co, cstep), j1 = j0 + 1;
            for (;;) {
                /* Take the next sampled column if it lies in the same chunk
                 * column, or in the next one while the tile stays small. */
                if (j1 >= p->n_cs) break;
                int64_t c2 = chunk_of(p, p->ac, p->csel[j1], co, cstep);
                size_t nc = (size_t)(p->csel[j1] - p->csel[j0] + 1);
                if (c2 != cc && (c2 != cc + 1 || nr * nc * per_voxel > TILE_BYTES)) break;
                cc = c2;
                j1++;
            }
            rc = read_tile(p, p->sec[k], i0, i1, j0, j1, &t, s, err);
            j0 = j1;
        }
        i0 = i1;
    }
    tile_bufs_free(&t);
    return rc;
}

static void float_range(preview *p, const samples *s) {
    for (size_t i = 0; i < s->n; i++) {
        double d;
        memcpy(&d, &s->lab[i], sizeof d);
        if (!isfinite(d)) continue;
        if (d < p->lo) p->lo = d;
        if (d > p->hi) p->hi = d;
    }
}

/* ---- drawing ----------------------------------------------------------------- */

static void fill(uint8_t *img, int64_t w, int64_t x0, int64_t y0, int64_t x1, int64_t y1,
                 const uint8_t rgb[3]) {
    for (int64_t y = y0; y < y1; y++)
        for (int64_t x = x0; x < x1; x++) {
            uint8_t *px = img + ((size_t)y * (size_t)w + (size_t)x) * 3;
            px[0] = rgb[0];
            px[1] = rgb[1];
            px[2] = rgb[2];
        }
}

static void base_color(const preview *p, uint64_t bits, uint8_t rgb[3]) {
    if (p->base == BASE_IDS) {
        lb__label_color(bits, rgb);
    } else if (p->base == BASE_FLOAT) {
        double d;
        memcpy(&d, &bits, sizeof d);
        uint8_t g = 0;
        if (isfinite(d)) g = p->hi > p->lo ? (uint8_t)floor((d - p->lo) * 255.0 / (p->hi - p->lo))
                                           : 128;
        rgb[0] = rgb[1] = rgb[2] = g;
    } else {
        rgb[0] = rgb[1] = rgb[2] = 0;
    }
}

/* Draw one panel at (x0, y0): channels [c0, c1) as overlays and / or
 * stripes (an empty range: the labels alone). `col` holds every channel's
 * colour; `pm` (s->words words) has the bits of [c0, c1). */
static void draw_panel(const preview *p, const samples *s, const uint8_t (*col)[3],
                       uint64_t *pm, uint8_t *img, int64_t x0, int64_t y0, size_t c0,
                       size_t c1) {
    int channels = c1 > c0;
    size_t W = s->words, nmk = p->has_mk ? c1 - c0 : 0;
    for (size_t w = 0; w < W; w++) pm[w] = 0;
    for (size_t c = c0; c < c1; c++) pm[c / 64] |= (uint64_t)1 << (c % 64);
    uint64_t last = 0;
    uint8_t last_rgb[3];
    base_color(p, 0, last_rgb);
    for (int64_t y = 0; y < p->ph; y++) {
        size_t row = (size_t)p->ridx[y] * (size_t)p->n_cs;
        uint8_t *line = img + ((size_t)(y0 + y) * (size_t)p->width + (size_t)x0) * 3;
        for (int64_t x = 0; x < p->pw; x++) {
            size_t i = row + (size_t)p->cidx[x];
            uint8_t px[3];
            /* Labels come in runs: one colour computation per run. */
            uint64_t b = p->labels ? s->lab[i] : 0;
            if (b != last) {
                last = b;
                base_color(p, b, last_rgb);
            }
            memcpy(px, last_rgb, 3);
            if (channels) {
                uint32_t g = ((77u * px[0] + 150u * px[1] + 29u * px[2]) >> 8) >> 1;
                px[0] = px[1] = px[2] = (uint8_t)g;
                for (size_t w = 0; p->has_ov && w < W; w++)
                    for (uint64_t on = s->ov[i * W + w] & pm[w]; on; on &= on - 1) {
                        const uint8_t *c = col[w * 64 + (size_t)__builtin_ctzll(on)];
                        for (int k = 0; k < 3; k++)
                            px[k] = (uint8_t)((3u * c[k] + px[k]) >> 2);
                    }
                size_t n_off = 0;
                for (size_t w = 0; nmk && w < W; w++)
                    n_off += (size_t)__builtin_popcountll(s->mk[i * W + w] & pm[w]);
                if (n_off) {
                    if (n_off == nmk)
                        for (int k = 0; k < 3; k++) px[k] >>= 1;
                    if ((x + y) % HATCH == 0) {
                        /* The k-th channel that is off, in channel order. */
                        size_t k = (size_t)((x + y) / HATCH) % n_off;
                        for (size_t w = 0; w < W; w++) {
                            uint64_t off = s->mk[i * W + w] & pm[w];
                            size_t m = (size_t)__builtin_popcountll(off);
                            if (k >= m) {
                                k -= m;
                                continue;
                            }
                            while (k--) off &= off - 1;
                            memcpy(px, col[w * 64 + (size_t)__builtin_ctzll(off)], 3);
                            break;
                        }
                    }
                }
            }
            memcpy(line + (size_t)x * 3, px, 3);
        }
    }
}

static void panel_origin(const preview *p, int64_t k, int64_t *x0, int64_t *y0) {
    *x0 = (k % p->cols_p) * (p->pw + GAP);
    *y0 = (k / p->cols_p) * (p->title_h + p->ph + GAP);
}

static void draw_title(const preview *p, uint8_t *img, int64_t k, const char *text) {
    int64_t x0, y0;
    panel_origin(p, k, &x0, &y0);
    lb__font_draw(img, p->width, p->height, x0 + 1, y0 + 2, text, (size_t)-1, x0 + p->pw,
                  TEXT);
}

static void draw_legend(const preview *p, uint8_t *img) {
    int64_t tx = legend_text_x(p);
    for (int64_t r = 0; r < p->legend_rows; r++) {
        int64_t y = p->mosaic_h + LEGEND_PAD + r * ROW_H, x = 2;
        int is_key = (size_t)r == p->n_ch; /* the "stripes" row */
        uint8_t c[3];
        if (is_key) memcpy(c, TEXT, 3);
        else lb__group_color((uint64_t)r, c);
        if (p->has_ov) {
            if (!is_key) fill(img, p->width, x, y + 1, x + SWATCH, y + 1 + SWATCH, c);
            x += SWATCH_STEP;
        }
        if (p->has_mk) {
            for (int64_t i = 0; i < SWATCH; i++)
                for (int64_t j = 0; j < SWATCH; j++)
                    if ((i + j) % 3 == 0) fill(img, p->width, x + j, y + 1 + i, x + j + 1,
                                               y + 2 + i, c);
        }
        lb__font_draw(img, p->width, p->height, tx, y + 2,
                      is_key ? "stripes: masked off" : p->names[r], MAX_NAME, p->width, TEXT);
    }
}

static int render(preview *p, uint8_t *img, lb_error *err) {
    samples s;
    uint8_t (*col)[3] = NULL;
    uint64_t *pm = NULL;
    memset(&s, 0, sizeof s);
    int rc = 0;
    s.n = (size_t)p->n_rs * (size_t)p->n_cs;
    s.words = p->n_ch ? (p->n_ch + 63) / 64 : 1;
    s.lab = p->labels ? lb__calloc(s.n, sizeof *s.lab, "sampled labels", err) : NULL;
    s.ov = p->has_ov ? lb__calloc(s.n * s.words, sizeof *s.ov, "sampled channels", err) : NULL;
    s.mk = p->has_mk ? lb__calloc(s.n * s.words, sizeof *s.mk, "sampled channels", err) : NULL;
    col = lb__calloc(p->n_ch ? p->n_ch : 1, sizeof *col, "channel colours", err);
    pm = lb__calloc(s.words, sizeof *pm, "channel colours", err);
    if ((p->labels && !s.lab) || (p->has_ov && !s.ov) || (p->has_mk && !s.mk) || !col || !pm) {
        rc = LB_ENOMEM;
        goto done;
    }
    for (size_t c = 0; c < p->n_ch; c++) lb__group_color(c, col[c]);
    fill(img, p->width, 0, 0, p->width, p->height, BG);
    p->lo = INFINITY;
    p->hi = -INFINITY;
    /* A float base is scaled to the range of every section drawn: with
     * several, a first pass finds it. */
    if (p->base == BASE_FLOAT && p->n_sec > 1)
        for (int64_t k = 0; k < p->n_sec && !rc; k++) {
            rc = read_section(p, k, &s, err);
            if (!rc) float_range(p, &s);
        }
    for (int64_t k = 0; k < p->n_sec && !rc; k++) {
        rc = read_section(p, k, &s, err);
        if (rc) break;
        if (p->base == BASE_FLOAT && p->n_sec == 1) float_range(p, &s);
        if (p->grid) {
            int64_t panel = 0, x0, y0;
            if (p->labels) {
                panel_origin(p, panel, &x0, &y0);
                draw_panel(p, &s, (const uint8_t (*)[3])col, pm, img, x0, y0 + p->title_h, 0, 0);
                draw_title(p, img, panel++, "labels");
            }
            for (size_t c = 0; c < p->n_ch; c++, panel++) {
                panel_origin(p, panel, &x0, &y0);
                draw_panel(p, &s, (const uint8_t (*)[3])col, pm, img, x0, y0 + p->title_h, c,
                           c + 1);
                draw_title(p, img, panel, p->names[c]);
            }
        } else {
            int64_t x0, y0;
            panel_origin(p, k, &x0, &y0);
            draw_panel(p, &s, (const uint8_t (*)[3])col, pm, img, x0, y0 + p->title_h, 0,
                       p->n_ch);
            if (p->title_h) {
                char t[96];
                snprintf(t, sizeof t, "%s=%" PRId64, p->axis_name,
                         p->win.offset[p->an] + p->sec[k] * p->vs[p->an]);
                draw_title(p, img, k, t);
            }
        }
    }
    if (!rc) draw_legend(p, img);
done:
    free(s.lab);
    free(s.ov);
    free(s.mk);
    free(col);
    free(pm);
    return rc;
}

/* ---- the public functions ------------------------------------------------------ */

static void fill_info(const preview *p, lb_preview_info *info) {
    if (!info) return;
    memset(info, 0, sizeof *info);
    info->width = p->width;
    info->height = p->height;
    info->panel_width = p->pw;
    info->panel_height = p->ph;
    info->panels = p->panels;
    info->axis = p->an >= 0 ? p->an : -1;
    info->sections = p->n_sec;
    info->first_at = p->an >= 0 ? p->win.offset[p->an] + p->sec[0] * p->vs[p->an] : 0;
    info->last_at = p->an >= 0 ? p->win.offset[p->an] + p->sec[p->n_sec - 1] * p->vs[p->an] : 0;
    info->channels = (int64_t)p->n_ch;
}

int lb_preview_size(const lb_array *a, const lb_preview_options *opt, lb_preview_info *info,
                    lb_error *err) {
    preview p;
    int rc = prepare(a, opt, &p, err);
    if (rc) return rc;
    fill_info(&p, info);
    preview_free(&p);
    return 0;
}

int lb_preview_render(const lb_array *a, const lb_preview_options *opt, uint8_t *rgb,
                      size_t rgb_size, lb_error *err) {
    preview p;
    int rc = prepare(a, opt, &p, err);
    if (rc) return rc;
    size_t need = (size_t)p.width * (size_t)p.height * 3;
    if (rgb_size != need)
        rc = lb__err(err, LB_EINVAL, "the image buffer holds %zu bytes; a %" PRId64 " x %"
                     PRId64 " preview needs %zu (lb_preview_size tells the size)", rgb_size,
                     p.width, p.height, need);
    else if (!rgb)
        rc = lb__err(err, LB_EINVAL, "no image buffer given");
    else
        rc = render(&p, rgb, err);
    preview_free(&p);
    return rc;
}

/* Refuse an output that would alter an input: a path inside (or at, or
 * around) a stored array the preview reads, or an existing file that is not
 * a PNG (a chunk, metadata, anything else worth keeping). */
static int check_output(const preview *p, const lb_array *a, lb__store *s, const char *key,
                        const char *path, lb_error *err) {
    const lb_array *roots[2] = {a, p->labels};
    for (int r = 0; r < 2; r++)
        for (const lb_array *x = roots[r]; x; x = x->source) {
            if (!x->ds) continue;
            lb__store_rel rel = LB__STORE_APART;
            int rc = lb__store_relation(s, key, x->ds->store, x->ds->path, &rel, err);
            if (rc < 0)
                return lb__err_prefix(err, "cannot compare \"%s\" with the input \"%s\"", path,
                                      x->ds->path);
            if (rel != LB__STORE_APART)
                return lb__err(err, LB_EOVERLAP, "refusing to write the preview to \"%s\": it "
                               "%s the input dataset \"%s\"; write it outside the dataset",
                               path, rel == LB__STORE_SAME ? "is" :
                               rel == LB__STORE_A_IN_B ? "lies inside" : "contains",
                               x->ds->path);
        }
    int kind = lb__store_kind(s, key);
    if (kind == LB__KEY_PREFIX || kind == LB__KEY_OTHER)
        return lb__err(err, LB_EEXIST, "%s exists and is not a file: refusing to replace it",
                       path);
    if (kind == LB__KEY_OBJECT) {
        static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        lb__buf head = {0};
        lb__range r = {0, sizeof sig, 0};
        lb_error e = {0};
        int rc = lb__store_get(s, key, &r, sizeof sig, &head, NULL, &e);
        int png = rc == 0 && head.size == sizeof sig && memcmp(head.data, sig, sizeof sig) == 0;
        lb__buf_free(&head);
        if (!png)
            return lb__err(err, LB_EEXIST, "%s exists and is not a PNG image: refusing to "
                           "replace it; choose another output path", path);
    }
    return 0;
}

int lb_preview_write_png(const lb_array *a, const lb_preview_options *opt, const char *path,
                         lb_preview_info *info, lb_error *err) {
    preview p;
    lb__store *s = NULL;
    char *key = NULL;
    uint8_t *img = NULL;
    void *png = NULL;
    size_t len = 0;
    if (!path || !*path) return lb__err(err, LB_EINVAL, "no output path given");
    int rc = prepare(a, opt, &p, err);
    if (rc) return rc;
    rc = lb__store_open(path, &s, &key, err);
    if (rc) goto done;
    rc = check_output(&p, a, s, key, path, err);
    if (rc) goto done;
    img = lb__malloc((size_t)p.width * (size_t)p.height * 3, "the preview image", err);
    if (!img) {
        rc = LB_ENOMEM;
        goto done;
    }
    rc = render(&p, img, err);
    if (rc) goto done;
    rc = lb__png_encode(img, (uint32_t)p.width, (uint32_t)p.height, &png, &len, err);
    if (rc) goto done;
    rc = lb__store_put(s, key, png, len, err);
    if (rc) goto done;
    fill_info(&p, info);
done:
    free(png);
    free(img);
    free(key);
    lb__store_free(s);
    preview_free(&p);
    return rc;
}
