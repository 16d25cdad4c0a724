/*
 * path.h — '/'-separated paths as strings (no file-system access): what the
 * store keys, dataset paths and group walks are made of.
 */
#ifndef LB_CORE_PATH_H
#define LB_CORE_PATH_H

#include "core/util.h"

/* Join "a" + "/" + "b" into a new string (NULL + LB_ENOMEM on failure). */
char *lb__path_join(const char *a, const char *b, lb_error *err);
/* Parent directory of a path as a new string ("." for a bare name). */
char *lb__path_parent(const char *path, lb_error *err);
/* Normalise: collapse "//", strip trailing "/" and "./" segments. Fails
 * (LB_EINVAL) when a segment after the container directory (the last
 * segment ending in ".zarr" or ".n5") is "..". */
int lb__path_normalize(const char *path, char **out, lb_error *err);
/* Byte length of the prefix that ends with the container segment (the last
 * segment ending in ".zarr" or ".n5"); 0 if there is none. */
size_t lb__path_container_len(const char *path);

#endif /* LB_CORE_PATH_H */
