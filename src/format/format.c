/*
 * format.c — the table of formats (Zarr v2, N5, Zarr v3, probed in that
 * order), finding the one at a location, and user codec specs in any
 * format's words.
 */
#include "format/format.h"

#include <stdlib.h>

#include "codec/spec.h"
#include "core/json.h"

const lb__format *const lb__formats[] = {&lb__format_zarr2, &lb__format_n5, &lb__format_zarr3};
const int lb__n_formats = (int)(sizeof lb__formats / sizeof lb__formats[0]);

const lb__format *lb__format_by_name(const char *name) {
    for (int i = 0; name && i < lb__n_formats; i++)
        if (strcmp(lb__formats[i]->name, name) == 0) return lb__formats[i];
    return NULL;
}

void lb__array_meta_clear(lb__array_meta *m) {
    if (!m) return;
    lb__chain_free(m->chain);
    json_object_put(m->meta);
    json_object_put(m->attrs);
    for (int k = 0; k < LB_MAX_DIMS; k++) free(m->dim_names[k]);
    memset(m, 0, sizeof *m);
}

int lb__format_detect(lb__store *s, const char *dir, const lb__format **out, lb_error *err) {
    *out = NULL;
    for (int i = 0; i < lb__n_formats; i++) {
        int rc = lb__formats[i]->probe(s, dir, err);
        if (rc < 0) return rc;
        if (rc > 0) {
            *out = lb__formats[i];
            return 0;
        }
    }
    return 0;
}

const lb__format *lb__format_detect_group(lb__store *s, const char *dir) {
    for (int i = 0; i < lb__n_formats; i++)
        if (lb__formats[i]->probe_group && lb__formats[i]->probe_group(s, dir))
            return lb__formats[i];
    return NULL;
}

int lb__codec_parse_spec(const char *spec, lb__codec *out, lb_error *err) {
    if (!spec) return lb__err(err, LB_EINVAL, "codec spec is missing");
    const char *s = spec;
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    if (*s != '{') return lb__codec_parse_short(spec, out, err);
    json_object *o = NULL;
    int rc = lb__json_parse(s, strlen(s), "codec spec", &o, err);
    if (rc) return rc;
    /* Which format's words: numcodecs has "id", N5 "type", Zarr v3 "name". */
    if (json_object_object_get_ex(o, "name", NULL))
        rc = lb__format_zarr3.parse_codec(o, "codec spec", out, err);
    else if (!json_object_object_get_ex(o, "id", NULL) &&
             json_object_object_get_ex(o, "type", NULL))
        rc = lb__format_n5.parse_codec(o, "codec spec", out, err);
    else
        rc = lb__format_zarr2.parse_codec(o, "codec spec", out, err);
    json_object_put(o);
    /* A spec names an output codec: refuse what cannot encode now. */
    if (!rc) rc = lb__codec_check_encode(out, err);
    return rc;
}
