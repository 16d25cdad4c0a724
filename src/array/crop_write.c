/*
 * crop_write.c — three-state outputs written as a CellMap crop: one class
 * group per group of ids (`dest/<name>`, OME-NGFF multiscales, array
 * `s0` holding 0 absent, 1 present, N unknown) with `cellmap.annotation`
 * attributes, so that the output is itself a crop any CellMap tool (and
 * labelbin) reads. Each group is written by lb_array_materialize (atomic,
 * parallel, resumable) from a single-channel view that counts the states
 * it hands out; those counts become `complement_counts`.
 *
 * The crop group's attributes carry `"labelbin": {"complete": false}` from
 * the start until every group is written, so an interrupted output is
 * recognised, refused as a source, and finished with resume.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "array/array.h"
#include "array/crop.h"
#include "core/json.h"
#include "core/path.h"
#include "dataset/dataset.h"
#include "format/common.h"
#include "format/format.h"

static json_object *annotation_type(int unknown) {
    json_object *t = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(t, "type", json_object_new_string("semantic_segmentation"));
    json_object_object_add(e, "absent", json_object_new_int(0));
    json_object_object_add(e, "present", json_object_new_int(1));
    json_object_object_add(e, "unknown", json_object_new_int(unknown));
    json_object_object_add(t, "encoding", e);
    return t;
}

/* {"cellmap": {"annotation": {...}}} merged into a copy of `base`. */
static json_object *with_annotation(json_object *base, json_object *annotation) {
    json_object *out = NULL;
    if (base) json_object_deep_copy(base, &out, NULL);
    else out = json_object_new_object();
    if (!out) {
        json_object_put(annotation);
        return NULL;
    }
    json_object *cm = json_object_new_object();
    json_object_object_add(cm, "annotation", annotation);
    json_object_object_add(out, "cellmap", cm);
    return out;
}

static json_object *crop_attrs(const lb_array *a, const char *name, int complete) {
    json_object *an = json_object_new_object();
    json_object_object_add(an, "version", json_object_new_string("0.1.1"));
    json_object_object_add(an, "name", json_object_new_string(name));
    json_object_object_add(an, "description", NULL);
    json_object_object_add(an, "created_by", json_object_new_array());
    json_object *cw = json_object_new_array();
    char who[64];
    snprintf(who, sizeof who, "labelbin %s", lb_version());
    json_object_array_add(cw, json_object_new_string(who));
    json_object_object_add(an, "created_with", cw);
    json_object_object_add(an, "start_date", NULL);
    json_object_object_add(an, "end_date", NULL);
    json_object_object_add(an, "duration_days", NULL);
    json_object_object_add(an, "protocol_uri", NULL);
    json_object *cn = json_object_new_array();
    for (int64_t i = 0; i < a->num_channels; i++)
        json_object_array_add(cn, json_object_new_string(a->channel_names[i]));
    json_object_object_add(an, "class_names", cn);
    json_object *out = with_annotation(NULL, an);
    if (!out) return NULL;
    json_object *lb = json_object_new_object();
    json_object_object_add(lb, "version", json_object_new_string(lb_version()));
    json_object_object_add(lb, "kind", json_object_new_string("crop"));
    if (!complete) json_object_object_add(lb, "complete", json_object_new_boolean(0));
    json_object_object_add(out, "labelbin", lb);
    return out;
}

/* Count the states of a written three-state array (after a resume that
 * skipped blocks, whose values this run did not see). */
static int recount(const char *url, int unknown, uint64_t out[3], lb_error *err) {
    lb_array *a = NULL;
    int rc = lb_array_open(url, LB_OPEN_READONLY, NULL, 0, &a, err);
    if (rc) return rc;
    out[0] = out[1] = out[2] = 0;
    int64_t vox[LB_MAX_DIMS];
    lb__roi_voxels(a, &a->roi, vox);
    /* Planes along the first axis, a few MB at a time. */
    size_t plane = 1;
    for (int d = 1; d < a->dims; d++) plane *= (size_t)vox[d];
    int64_t step = plane ? (int64_t)(((size_t)8 << 20) / plane) : 1;
    if (step < 1) step = 1;
    uint8_t *buf = lb__malloc(plane * (size_t)step + 1, "counting", err);
    if (!buf) {
        lb_array_free(a);
        return LB_ENOMEM;
    }
    for (int64_t z = 0; z < vox[0] && !rc; z += step) {
        lb_roi r = a->roi;
        int64_t nz = vox[0] - z < step ? vox[0] - z : step;
        r.offset[0] = a->roi.offset[0] + z * a->voxel_size[0];
        r.shape[0] = nz * a->voxel_size[0];
        size_t n = plane * (size_t)nz;
        rc = lb_array_read(a, &r, buf, n, err);
        for (size_t i = 0; !rc && i < n; i++) {
            uint8_t v = buf[i];
            if (v == 1) out[LB__PRESENT]++;
            else if (v == 0) out[LB__ABSENT]++;
            else if (v == unknown) out[LB__UNKNOWN]++;
            else rc = lb__err(err, LB_EFORMAT, "%s: value %u is not 0, 1 or the unknown value %d",
                              url, v, unknown);
        }
    }
    free(buf);
    lb_array_free(a);
    return rc;
}

/* Add the class attributes to `dest/<name>` (group) and its `s0`. */
static int annotate_class(lb__store *s, const char *gdir, const lb__format *f, const char *name,
                          int unknown, const uint64_t counts[3], lb_error *err) {
    json_object *gattrs = NULL, *merged = NULL;
    lb__dataset *ds = NULL;
    char *apath = lb__path_join(gdir, "s0", err);
    int rc = apath ? f->group_attrs(s, gdir, &gattrs, err) : LB_ENOMEM;
    if (rc) goto done;
    json_object *an = json_object_new_object();
    json_object_object_add(an, "class_name", json_object_new_string(name));
    json_object_object_add(an, "annotation_type", annotation_type(unknown));
    merged = with_annotation(gattrs, an);
    if (!merged) {
        rc = lb__err(err, LB_ENOMEM, "out of memory building attributes");
        goto done;
    }
    rc = f->create_group(s, gdir, merged, err);
    if (rc) goto done;
    json_object_put(merged);
    merged = NULL;
    rc = lb__dataset_open_at(s, apath, 1, &ds, err);
    if (rc) goto done;
    an = json_object_new_object();
    json_object_object_add(an, "class_name", json_object_new_string(name));
    json_object *cc = json_object_new_object();
    json_object_object_add(cc, "absent", json_object_new_uint64(counts[LB__ABSENT]));
    json_object_object_add(cc, "unknown", json_object_new_uint64(counts[LB__UNKNOWN]));
    json_object_object_add(cc, "present", json_object_new_uint64(counts[LB__PRESENT]));
    json_object_object_add(an, "complement_counts", cc);
    json_object_object_add(an, "annotation_type", annotation_type(unknown));
    merged = with_annotation(ds->attrs, an);
    if (!merged) {
        rc = lb__err(err, LB_ENOMEM, "out of memory building attributes");
        goto done;
    }
    rc = lb__dataset_set_attrs(ds, merged, err);
done:
    json_object_put(gattrs);
    json_object_put(merged);
    lb__dataset_free(ds);
    free(apath);
    return rc;
}

typedef struct progress_wrap {
    lb_progress_fn fn;
    void *user;
    int64_t base, groups;
} progress_wrap;

static void wrapped_progress(void *user, int64_t done, int64_t total) {
    progress_wrap *p = user;
    p->fn(p->user, p->base * total + done, total * p->groups);
}

int lb_crop_materialize(const lb_array *a, const char *dest_url, const lb_write_options *opt_in,
                        lb_write_stats *stats, lb_error *err) {
    if (!a || !dest_url || !*dest_url)
        return lb__err(err, LB_EINVAL, "lb_crop_materialize: no %s", a ? "destination" : "array");
    int unknown = lb__crop_array_unknown(a);
    if (unknown < 0)
        return lb__err(err, LB_EINVAL, "only a three-state array over a crop (with an unknown "
                       "value) is written as a crop");
    lb_write_options opt;
    lb_write_options_init(&opt);
    if (opt_in) {
        if (opt_in->struct_size < (int)offsetof(lb_write_options, format) ||
            opt_in->struct_size > (int)sizeof opt)
            return lb__err(err, LB_EINVAL, "write options not initialised with "
                           "lb_write_options_init");
        memcpy(&opt, opt_in, (size_t)opt_in->struct_size);
    }
    if (opt.overwrite && opt.resume)
        return lb__err(err, LB_EINVAL, "overwrite and resume exclude each other");
    for (int64_t i = 0; i < a->num_channels; i++) {
        const char *why = lb__crop_name_problem(a->channel_names[i]);
        if (why)
            return lb__err(err, LB_EINVAL, "group \"%s\" cannot name a class group of the "
                           "output crop: %s", a->channel_names[i], why);
        if (!strcmp(a->channel_names[i], "all"))
            return lb__err(err, LB_EINVAL, "group \"all\" cannot name a class group: a crop "
                           "keeps its dense ids in \"all\"");
    }
    if (stats && stats->positive && stats->positive_len < (size_t)a->num_channels)
        return lb__err(err, LB_EINVAL, "stats->positive has %zu counters, the array %" PRId64
                       " channels", stats->positive_len, a->num_channels);
    const lb__format *f = lb__format_of(opt.format);
    if (!f || opt.format == LB_FORMAT_N5)
        return lb__err(err, LB_EINVAL, "a crop is written as Zarr v2 or Zarr v3");

    lb__store *s = NULL;
    char *dest = NULL;
    json_object *have = NULL, *attrs = NULL;
    lb_array *view = NULL;
    int rc = lb__store_open(dest_url, &s, &dest, err);
    if (rc) return rc;
    /* The crop read may not be touched. */
    if (a->group_path) {
        lb__store_rel rel = LB__STORE_APART;
        rc = lb__store_relation(s, dest, a->group_store, a->group_path, &rel, err);
        if (rc) goto done;
        if (rel != LB__STORE_APART) {
            rc = lb__err(err, LB_EOVERLAP, "refusing to write to \"%s\": it %s the crop \"%s\" "
                         "(the output would alter its input); choose a destination outside it",
                         dest_url, rel == LB__STORE_SAME ? "is" : rel == LB__STORE_A_IN_B
                                                                      ? "lies inside"
                                                                      : "contains", a->group_path);
            goto done;
        }
    }
    const char *base = strrchr(dest, '/');
    base = base ? base + 1 : dest;
    /* A finished crop that a refused --resume must leave finished. */
    int was_complete = 0, touched = 0;
    if (lb__store_kind(s, dest) != LB__KEY_NONE) {
        const char *fname;
        lb_error local = {0};
        lb__group_attrs_any(s, dest, &have, &fname, &local);
        int ours = have && lb__crop_attrs_claim(have) && lb__json_get(have, "labelbin");
        int empty_dir = lb__store_kind(s, dest) == LB__KEY_PREFIX && lb__store_empty(s, dest);
        if (!opt.overwrite && !opt.resume && !empty_dir) {
            rc = lb__err(err, LB_EEXIST, "%s: already exists (use -f to overwrite or --resume to "
                         "finish an interrupted run)", dest_url);
            goto done;
        }
        if (!ours && !empty_dir) {
            rc = lb__err(err, LB_EEXIST, "%s: exists and is not a crop labelbin wrote; "
                         "refusing to %s it: choose another destination", dest_url,
                         opt.overwrite ? "replace" : "write into");
            goto done;
        }
        if (opt.overwrite && !empty_dir) {
            rc = lb__store_erase_tree(s, dest, err);
            if (rc) goto done;
        } else if (opt.resume && ours) {
            /* The same groups, in the same order. */
            lb__crop_attrs ca;
            char file[1200];
            snprintf(file, sizeof file, "%s/%s", dest, fname);
            rc = lb__crop_attrs_parse(have, file, &ca, err);
            if (rc) goto done;
            int same = ca.n_classes == (size_t)a->num_channels;
            for (size_t i = 0; same && i < ca.n_classes; i++)
                same = !strcmp(ca.class_names[i], a->channel_names[i]);
            lb__crop_attrs_clear(&ca);
            was_complete = !lb__attrs_incomplete(have);
            if (!same) {
                rc = lb__err(err, LB_EEXIST, "%s: cannot resume: it holds other groups than "
                             "this run writes", dest_url);
                goto done;
            }
        }
    }
    attrs = crop_attrs(a, base, 0);
    if (!attrs) {
        rc = lb__err(err, LB_ENOMEM, "out of memory building attributes");
        goto done;
    }
    rc = f->create_group(s, dest, attrs, err);
    if (rc) goto done;

    if (stats) {
        int64_t *pos = stats->positive;
        size_t plen = stats->positive_len;
        memset(stats, 0, sizeof *stats);
        stats->positive = pos;
        stats->positive_len = plen;
    }
    progress_wrap pw = {opt.progress, opt.progress_user, 0, a->num_channels};
    for (int64_t ch = 0; ch < a->num_channels; ch++) {
        char *gdir = lb__path_join(dest, a->channel_names[ch], err);
        char *gurl = lb__path_join(dest_url, a->channel_names[ch], err);
        if (!gdir || !gurl) {
            free(gdir);
            free(gurl);
            rc = LB_ENOMEM;
            goto done;
        }
        rc = lb__crop_array_channel(a, (size_t)ch, 1, &view, err);
        lb_write_options o = opt;
        o.ome_ngff = 1;
        o.overwrite = 0;
        if (opt.progress) {
            pw.base = ch;
            o.progress = wrapped_progress;
            o.progress_user = &pw;
        }
        lb_write_stats st;
        memset(&st, 0, sizeof st);
        if (!rc) rc = lb_array_materialize(view, gurl, &o, &st, err);
        touched |= st.blocks_done > 0 || (rc && rc != LB_EEXIST);
        uint64_t counts[3] = {0, 0, 0};
        if (!rc) {
            if (st.blocks_skipped == 0) {
                lb__crop_array_counts(view, 0, counts);
            } else {
                char *aurl = lb__path_join(gurl, "s0", err);
                rc = aurl ? recount(aurl, unknown, counts, err) : LB_ENOMEM;
                free(aurl);
            }
        }
        if (!rc) rc = annotate_class(s, gdir, f, a->channel_names[ch], unknown, counts, err);
        if (!rc && stats) {
            stats->blocks_total += st.blocks_total;
            stats->blocks_done += st.blocks_done;
            stats->blocks_skipped += st.blocks_skipped;
            stats->chunks_written += st.chunks_written;
            stats->chunks_empty += st.chunks_empty;
            stats->bytes_written += st.bytes_written;
            stats->threads = st.threads;
            if (stats->positive) stats->positive[ch] = (int64_t)counts[LB__PRESENT];
        }
        lb_array_free(view);
        view = NULL;
        free(gdir);
        free(gurl);
        if (rc) {
            if (rc != LB_ECANCELED && err && !strstr(err->message, "--resume"))
                lb__err_prefix(err, "group \"%s\"", a->channel_names[ch]);
            if (was_complete && !touched && rc == LB_EEXIST) {
                /* refused before anything changed: still finished */
                json_object_put(attrs);
                attrs = crop_attrs(a, base, 1);
                lb_error ignored = {0};
                if (attrs) f->create_group(s, dest, attrs, &ignored);
            }
            goto done;
        }
    }
    json_object_put(attrs);
    attrs = crop_attrs(a, base, 1);
    rc = attrs ? f->create_group(s, dest, attrs, err)
               : lb__err(err, LB_ENOMEM, "out of memory building attributes");
done:
    lb_array_free(view);
    json_object_put(attrs);
    json_object_put(have);
    free(dest);
    lb__store_free(s);
    return rc;
}
