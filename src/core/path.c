/*
 * path.c — paths as strings: joining, parents, the container (the last
 * segment ending in .zarr or .n5) and normalisation with the rule that keeps
 * a dataset path inside its container (no ".." after it). No I/O here.
 */
#include "core/path.h"

#include <stdlib.h>
#include <string.h>


char *lb__path_join(const char *a, const char *b, lb_error *err) {
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
    if (la == 0) return lb__strdup(b ? b : "", err);
    if (lb == 0) return lb__strdup(a, err);
    int slash = a[la - 1] != '/';
    char *p = lb__malloc(la + (size_t)slash + lb + 1, "a path", err);
    if (!p) return NULL;
    memcpy(p, a, la);
    if (slash) p[la] = '/';
    memcpy(p + la + (size_t)slash, b, lb + 1);
    return p;
}

char *lb__path_parent(const char *path, lb_error *err) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;           /* trailing slashes  */
    while (n > 0 && path[n - 1] != '/') n--;           /* the last segment  */
    if (n == 0) return lb__strdup(".", err);
    while (n > 1 && path[n - 1] == '/') n--;           /* the separator(s)  */
    char *p = lb__malloc(n + 1, "a path", err);
    if (!p) return NULL;
    memcpy(p, path, n);
    p[n] = '\0';
    return p;
}

static int is_container_segment(const char *s, size_t n) {
    return (n > 5 && memcmp(s + n - 5, ".zarr", 5) == 0) ||
           (n > 3 && memcmp(s + n - 3, ".n5", 3) == 0);
}

size_t lb__path_container_len(const char *path) {
    size_t best = 0;
    size_t i = 0, n = strlen(path);
    while (i < n) {
        while (i < n && path[i] == '/') i++;
        size_t b = i;
        while (i < n && path[i] != '/') i++;
        if (i > b && is_container_segment(path + b, i - b)) best = i;
    }
    return best;
}

int lb__path_normalize(const char *path, char **out, lb_error *err) {
    *out = NULL;
    if (!path || !*path) return lb__err(err, LB_EINVAL, "empty dataset path");
    size_t n = strlen(path);
    char *p = lb__malloc(n + 2, "a path", err);
    if (!p) return LB_ENOMEM;
    size_t o = 0, i = 0;
    int absolute = path[0] == '/';
    if (absolute) p[o++] = '/';
    /* The container is the last segment ending in .zarr/.n5; ".." is only
     * allowed before it (it may lead to the container, never out of it). */
    size_t clen = lb__path_container_len(path);
    while (i < n) {
        while (i < n && path[i] == '/') i++;
        size_t b = i;
        while (i < n && path[i] != '/') i++;
        size_t sl = i - b;
        if (sl == 0) break;
        if (sl == 1 && path[b] == '.') continue;
        if (sl == 2 && path[b] == '.' && path[b + 1] == '.' && clen > 0 && b >= clen) {
            free(p);
            return lb__err(err, LB_EINVAL, "%s: '..' is not allowed in a dataset path", path);
        }
        if (o > 0 && p[o - 1] != '/') p[o++] = '/';
        memcpy(p + o, path + b, sl);
        o += sl;
    }
    if (o == 0) p[o++] = '.';
    p[o] = '\0';
    *out = p;
    return 0;
}

