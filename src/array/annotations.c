/*
 * annotations.c — the `labels` attribute of COSEM / CellMap crops
 * (fibsem-tools' LabelList, boolean or 2023+ string `annotated`): validates it
 * strictly, naming the JSON path, and lists the ids that are present but not
 * annotated, which switch MissingAnnotationsMask channels off. Booleans may
 * be written 0 / 1, which DaCapo's pydantic LabelList accepts too.
 */
#include <stdio.h>
#include <stdlib.h>

#include "array/array.h"
#include "core/json.h"

#define W 96

/* A boolean, or the integers 0 / 1, which pydantic's bool (DaCapo's
 * LabelList) coerces too. 1 = it was an integer or boolean. */
static int bool_or_01(json_object *o, int *out) {
    if (o && json_object_is_type(o, json_type_boolean)) {
        *out = json_object_get_boolean(o) ? 1 : 0;
        return 1;
    }
    if (o && json_object_is_type(o, json_type_int)) {
        int64_t v = json_object_get_int64(o);
        if (v == 0 || v == 1) {
            *out = (int)v;
            return 1;
        }
    }
    return 0;
}

static int parse_label(json_object *l, size_t i, int *is_string, int *pna, lb_id *value,
                       lb_error *err) {
    char w[W], wk[W + 48];
    snprintf(w, sizeof w, "labels[%zu]", i);
    if (!l || !json_object_is_type(l, json_type_object))
        return lb__err(err, LB_EFORMAT, "%s: expected an object, found %s", w,
                       l ? lb__json_type_name(l) : "null");
    json_object *o = NULL, *state = NULL;
    int rc = lb__json_require(l, "value", w, &o, err);
    snprintf(wk, sizeof wk, "%s.value", w);
    if (!rc) rc = lb__json_id(o, wk, value, err);
    if (rc) return rc;

    rc = lb__json_require(l, "annotationState", w, &state, err);
    if (rc) return rc;
    snprintf(wk, sizeof wk, "%s.annotationState", w);
    if (!state || !json_object_is_type(state, json_type_object))
        return lb__err(err, LB_EFORMAT, "%s: expected an object, found %s", wk,
                       state ? lb__json_type_name(state) : "null");
    char ws[W + 80];
    int present = 0, annotated = 0;
    rc = lb__json_require(state, "present", wk, &o, err);
    if (rc) return rc;
    snprintf(ws, sizeof ws, "%s.present", wk);
    if (!bool_or_01(o, &present))
        return lb__err(err, LB_EFORMAT, "%s: expected a boolean, found %s", ws,
                       o ? lb__json_type_name(o) : "null");
    rc = lb__json_require(state, "annotated", wk, &o, err);
    if (rc) return rc;
    snprintf(ws, sizeof ws, "%s.annotated", wk);
    if (bool_or_01(o, &annotated)) {
        *is_string = 0;
    } else if (o && json_object_is_type(o, json_type_string)) {
        const char *s = json_object_get_string(o);
        if (strcmp(s, "dense") == 0) annotated = 1;
        else if (strcmp(s, "sparse") == 0 || strcmp(s, "empty") == 0) annotated = 0;
        else
            return lb__err(err, LB_EFORMAT,
                           "%s: unknown value \"%s\", expected true, false, \"dense\", "
                           "\"sparse\" or \"empty\"",
                           ws, s);
        *is_string = 1;
    } else {
        return lb__err(err, LB_EFORMAT,
                       "%s: expected a boolean or one of \"dense\", \"sparse\", \"empty\", "
                       "found %s",
                       ws, o ? lb__json_type_name(o) : "null");
    }

    /* Optional members: checked only for their shape. */
    o = lb__json_get(l, "name");
    if (o) {
        snprintf(wk, sizeof wk, "%s.name", w);
        if (!json_object_is_type(o, json_type_object))
            return lb__err(err, LB_EFORMAT, "%s: expected an object, found %s", wk,
                           lb__json_type_name(o));
        static const char *const keys[2] = {"long", "short"};
        for (int k = 0; k < 2; k++) {
            json_object *s = lb__json_get(o, keys[k]);
            const char *str;
            snprintf(ws, sizeof ws, "%s.%s", wk, keys[k]);
            if (s && (rc = lb__json_str(s, ws, &str, err))) return rc;
        }
    }
    if (json_object_object_get_ex(l, "count", &o) && o) {
        int64_t c;
        snprintf(wk, sizeof wk, "%s.count", w);
        rc = lb__json_int64(o, wk, &c, err);
        if (rc) return rc;
        if (c < 0) return lb__err(err, LB_EFORMAT, "%s: expected a count >= 0", wk);
    }
    *pna = present && !annotated;
    return 0;
}

int lb__annotations_parse(json_object *attrs, lb_annotations *kind, lb_id **pna,
                          size_t *n_pna, lb_error *err) {
    *kind = LB_ANNOTATIONS_NONE;
    *pna = NULL;
    *n_pna = 0;
    json_object *labels = NULL;
    if (!attrs || !json_object_is_type(attrs, json_type_object) ||
        !json_object_object_get_ex(attrs, "labels", &labels))
        return 0;
    *kind = LB_ANNOTATIONS_INVALID;
    if (!labels || !json_object_is_type(labels, json_type_array))
        return lb__err(err, LB_EFORMAT, "labels: expected an array of label objects, found %s",
                       labels ? lb__json_type_name(labels) : "null");
    size_t n = json_object_array_length(labels);
    lb_id *ids = NULL;
    size_t m = 0;
    int any_string = 0;
    if (n) {
        ids = lb__calloc(n, sizeof *ids, "annotation ids", err);
        if (!ids) return LB_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int is_string = 0, p = 0;
        lb_id v;
        int rc = parse_label(json_object_array_get_idx(labels, i), i, &is_string, &p, &v, err);
        if (rc) {
            free(ids);
            return rc;
        }
        any_string |= is_string;
        if (p) ids[m++] = v;
    }
    if (m == 0) {
        free(ids);
        ids = NULL;
    }
    *kind = any_string ? LB_ANNOTATIONS_STRING : LB_ANNOTATIONS_BOOLEAN;
    *pna = ids;
    *n_pna = m;
    return 0;
}
