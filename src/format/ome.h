/*
 * ome.h — OME-NGFF multiscale metadata, versions 0.4 (the group's
 * "multiscales") and 0.5 (the group's "ome": {"version", "multiscales"}),
 * found and written in one place.
 */
#ifndef LB_FORMAT_OME_H
#define LB_FORMAT_OME_H

#include <json-c/json.h>

#include "core/util.h"

/* The "multiscales" list of a group's attributes, whichever version wrote
 * it (borrowed), or NULL. *version receives "0.4", "0.5", … when known. */
json_object *lb__ome_multiscales(json_object *group_attrs, const char **version);

/* One multiscale image of one level ("s0"), for writing. */
typedef struct lb__ome_image {
    const char *version;   /* "0.4" (Zarr v2) or "0.5" (Zarr v3)          */
    const char *name;      /* the image's name (the group's last segment)  */
    int ndim;
    const char *const *axes; /* ndim names                                 */
    int nlead;             /* leading non-spatial axes, typed "channel"    */
    const int64_t *scale;  /* spatial voxel size (ndim - nlead entries), nm */
    const int64_t *translation; /* spatial offset, nm                      */
    const char *path;      /* the level's array, "s0"                      */
} lb__ome_image;

/* The group attributes for one image (a new reference; NULL on ENOMEM). */
json_object *lb__ome_group_attrs(const lb__ome_image *img, lb_error *err);

#endif /* LB_FORMAT_OME_H */
