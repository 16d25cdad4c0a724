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

/* Length of a URL's scheme ("http" in "http://..."), 0 for a plain path. */
size_t lb__url_scheme_len(const char *s);
/* `path` as it may be shown: a URL without userinfo, query string or
 * fragment (credentials and presigned signatures live there); other paths
 * unchanged. Writes at most `size` bytes (NUL included); returns the full
 * length, as snprintf does. */
size_t lb__url_shown(const char *path, char *buf, size_t size);
/* Rewrite, in place, every URL inside a message as lb__url_shown would
 * show it. Every error message and log line passes through it. */
void lb__hide_credentials(char *text);

#endif /* LB_CORE_PATH_H */
