/*
 * geometry_meta.h — a stored array's geometry (voxel size, offset, axes) from
 * its metadata, following funlib (docs/semantics.md §1).
 */
#ifndef LB_ARRAY_GEOMETRY_META_H
#define LB_ARRAY_GEOMETRY_META_H

#include "dataset/dataset.h"

typedef struct lb__geometry {
    int ndim;                          /* all dimensions                      */
    int dims;                          /* spatial ones (the last `dims`)      */
    char axes[LB_MAX_DIMS][64];        /* ndim names                           */
    int64_t voxel_size[LB_MAX_DIMS];   /* dims entries, nm                     */
    lb_roi roi;                        /* spatial, world units                 */
    int64_t num_channels;              /* extent of the "c" axis, or -1        */
    char **warnings;                   /* truncations, roundings               */
    int n_warnings;
} lb__geometry;

/* Geometry of `ds`: OME-NGFF multiscales on an enclosing group, funlib's
 * attribute keys on the array and its parent group, Zarr v3
 * dimension_names, defaults. `axes_override` (n_axes names, may be NULL)
 * replaces the axis names from metadata. */
int lb__geometry_from_meta(const lb__dataset *ds, const char *const *axes_override, int n_axes,
                           lb__geometry *out, lb_error *err);
void lb__geometry_clear(lb__geometry *g);

#endif /* LB_ARRAY_GEOMETRY_META_H */
