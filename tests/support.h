/*
 * support.h — what the C tests need beside the library: JSON files read
 * straight from disk, group attributes by format, transposes to F order
 * and back (the independent model of Zarr v2's order "F").
 */
#ifndef LB_TESTS_SUPPORT_H
#define LB_TESTS_SUPPORT_H

#include <json-c/json.h>

#include "core/json.h"
#include "core/nd.h"
#include "dataset/dataset.h"
#include "store/fs.h"
#include "store/store.h"

/* The JSON document in the file at `path`. */
static inline int lb__json_read_file(const char *path, json_object **out, lb_error *err) {
    lb__buf b = {0};
    *out = NULL;
    int rc = lb__fs_read(path, LB__MAX_META_BYTES, &b, err);
    if (rc == 0) rc = lb__json_parse((const char *)b.data, b.size, path, out, err);
    lb__buf_free(&b);
    return rc;
}

/* The attributes of the group at `dir` as `format` keeps them. */
static inline int lb__group_attrs(const char *dir, lb_format format, json_object **out,
                                  lb_error *err) {
    lb__store *s = NULL;
    char *p = NULL;
    *out = NULL;
    int rc = lb__store_open(dir, &s, &p, err);
    if (!rc) rc = lb__format_of(format)->group_attrs(s, p, out, err);
    lb__store_free(s);
    free(p);
    return rc;
}

/* Between C and F order of a chunk of `shape` (C order of dimensions). */
static inline void lb__transpose_c_to_f(int ndim, size_t itemsize, const int64_t *shape,
                                        const void *src, void *dst) {
    int perm[LB_MAX_DIMS];
    for (int k = 0; k < ndim; k++) perm[k] = ndim - 1 - k;
    lb__nd_transpose(ndim, itemsize, shape, perm, src, dst);
}
static inline void lb__transpose_f_to_c(int ndim, size_t itemsize, const int64_t *shape,
                                        const void *src, void *dst) {
    int perm[LB_MAX_DIMS];
    int64_t rev[LB_MAX_DIMS];
    for (int k = 0; k < ndim; k++) {
        perm[k] = ndim - 1 - k;
        rev[k] = shape[ndim - 1 - k];
    }
    lb__nd_transpose(ndim, itemsize, rev, perm, src, dst);
}

#define lb__copy_box lb__nd_copy_box

#endif /* LB_TESTS_SUPPORT_H */
