/*
 * ome.c — OME-NGFF multiscales: where each version keeps them (0.4: the
 * group attribute "multiscales", each entry with its own "version"; 0.5:
 * the group attribute "ome" with one "version" and the "multiscales"), and
 * the metadata labelbin writes for one image of one level in nanometres.
 */
#include "format/ome.h"

#include <string.h>

json_object *lb__ome_multiscales(json_object *attrs, const char **version) {
    json_object *ome = NULL, *ms = NULL, *v = NULL;
    if (version) *version = NULL;
    if (!attrs || !json_object_is_type(attrs, json_type_object)) return NULL;
    if (json_object_object_get_ex(attrs, "ome", &ome) && ome &&
        json_object_is_type(ome, json_type_object) &&
        json_object_object_get_ex(ome, "multiscales", &ms) && ms) {
        if (version && json_object_object_get_ex(ome, "version", &v) && v &&
            json_object_is_type(v, json_type_string))
            *version = json_object_get_string(v);
        return ms;
    }
    if (!json_object_object_get_ex(attrs, "multiscales", &ms) || !ms) return NULL;
    if (version && json_object_is_type(ms, json_type_array) && json_object_array_length(ms) > 0) {
        json_object *m0 = json_object_array_get_idx(ms, 0);
        if (m0 && json_object_is_type(m0, json_type_object) &&
            json_object_object_get_ex(m0, "version", &v) && v &&
            json_object_is_type(v, json_type_string))
            *version = json_object_get_string(v);
    }
    return ms;
}

json_object *lb__ome_group_attrs(const lb__ome_image *img, lb_error *err) {
    int v05 = strcmp(img->version, "0.4") != 0;
    json_object *root = json_object_new_object();
    json_object *ms = json_object_new_array();
    json_object *m = json_object_new_object();
    json_object *axes = json_object_new_array();
    json_object *scale = json_object_new_array();
    json_object *trans = json_object_new_array();
    json_object *datasets = json_object_new_array();
    json_object *ds = json_object_new_object();
    json_object *cts = json_object_new_array();
    json_object *s = json_object_new_object(), *t = json_object_new_object();
    if (!root || !ms || !m || !axes || !scale || !trans || !datasets || !ds || !cts || !s || !t) {
        json_object *all[] = {root, ms, m, axes, scale, trans, datasets, ds, cts, s, t};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) json_object_put(all[i]);
        lb__err(err, LB_ENOMEM, "out of memory building OME-NGFF metadata");
        return NULL;
    }
    if (v05) {
        json_object *ome = json_object_new_object();
        json_object_object_add(ome, "version", json_object_new_string(img->version));
        json_object_object_add(ome, "multiscales", ms);
        json_object_object_add(root, "ome", ome);
    } else {
        json_object_object_add(root, "multiscales", ms);
        json_object_object_add(m, "version", json_object_new_string(img->version));
    }
    json_object_array_add(ms, m);
    json_object_object_add(m, "name", json_object_new_string(img->name ? img->name : ""));
    json_object_object_add(m, "axes", axes);
    for (int i = 0; i < img->ndim; i++) {
        json_object *ax = json_object_new_object();
        json_object_object_add(ax, "name", json_object_new_string(img->axes[i]));
        if (i < img->nlead) {
            json_object_object_add(ax, "type", json_object_new_string("channel"));
            json_object_array_add(scale, json_object_new_int64(1));
            json_object_array_add(trans, json_object_new_int64(0));
        } else {
            int d = i - img->nlead;
            json_object_object_add(ax, "type", json_object_new_string("space"));
            json_object_object_add(ax, "unit", json_object_new_string("nanometer"));
            json_object_array_add(scale, json_object_new_int64(img->scale[d]));
            json_object_array_add(trans, json_object_new_int64(img->translation[d]));
        }
        json_object_array_add(axes, ax);
    }
    json_object_object_add(s, "type", json_object_new_string("scale"));
    json_object_object_add(s, "scale", scale);
    json_object_object_add(t, "type", json_object_new_string("translation"));
    json_object_object_add(t, "translation", trans);
    json_object_array_add(cts, s);
    json_object_array_add(cts, t);
    json_object_object_add(ds, "path", json_object_new_string(img->path));
    json_object_object_add(ds, "coordinateTransformations", cts);
    json_object_array_add(datasets, ds);
    json_object_object_add(m, "datasets", datasets);
    return root;
}
