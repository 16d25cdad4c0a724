/*
 * path.c — paths as strings: joining, parents, the container (the last
 * segment ending in .zarr or .n5) and normalisation with the rule that keeps
 * a dataset path inside its container (no ".." after it). No I/O here.
 */
#include "core/path.h"

#include <stdio.h>
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


/* ---- URLs as they may be shown ------------------------------------------- */

static int scheme_char(char c, int first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (!first && ((c >= '0' && c <= '9') || c == '+' || c == '.' || c == '-'));
}

size_t lb__url_scheme_len(const char *s) {
    size_t i = 0;
    while (scheme_char(s[i], i == 0)) i++;
    return i > 0 && strncmp(s + i, "://", 3) == 0 ? i : 0;
}

/* Where a URL ends inside running text: white space, a quote, or a ':' or
 * ',' that ends a clause ("URL: why"). */
static int url_ends(const char *p) {
    return !*p || *p == ' ' || *p == '\t' || *p == '\n' || *p == '"' || *p == '\'' ||
           ((*p == ':' || *p == ',') && (!p[1] || p[1] == ' ' || p[1] == '\n'));
}

/* Copy the URL at `in` (whose scheme is `sl` bytes) to `out` without
 * userinfo, query or fragment; returns the bytes of `in` consumed and sets
 * *written. `out` may be `in` (the copy never grows). */
static size_t url_shown(const char *in, size_t sl, char *out, size_t *written) {
    size_t i = sl + 3, o = 0;
    memmove(out, in, i);
    o = i;
    size_t a = i;
    while (!url_ends(in + a) && in[a] != '/' && in[a] != '?' && in[a] != '#') a++;
    size_t host = i;
    for (size_t k = i; k < a; k++)
        if (in[k] == '@') host = k + 1;
    memmove(out + o, in + host, a - host);
    o += a - host;
    i = a;
    size_t p = i;
    while (!url_ends(in + p) && in[p] != '?' && in[p] != '#') p++;
    /* a ':' or ',' inside a path is part of it unless text follows */
    memmove(out + o, in + i, p - i);
    o += p - i;
    i = p;
    if (in[i] == '?' || in[i] == '#')
        while (!url_ends(in + i)) i++;
    *written = o;
    return i;
}

size_t lb__url_shown(const char *path, char *buf, size_t size) {
    if (!path) path = "";
    size_t sl = lb__url_scheme_len(path);
    const char *auth = sl ? path + sl + 3 : path, *host = auth;
    size_t alen = sl ? strcspn(auth, "/?#") : 0;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@') host = p + 1;
    const char *rest = auth + alen;
    size_t rlen = sl ? strcspn(rest, "?#") : strlen(rest);
    int n = snprintf(buf, size, "%.*s%.*s%.*s", (int)(sl ? sl + 3 : 0), path,
                     (int)(auth + alen - host), host, (int)rlen, rest);
    return n < 0 ? 0 : (size_t)n;
}

void lb__hide_credentials(char *text) {
    if (!text || !strstr(text, "://")) return;
    size_t i = 0, o = 0;
    while (text[i]) {
        size_t sl = (i == 0 || !scheme_char(text[i - 1], 0)) ? lb__url_scheme_len(text + i) : 0;
        if (sl) {
            size_t w;
            i += url_shown(text + i, sl, text + o, &w);
            o += w;
        } else {
            text[o++] = text[i++];
        }
    }
    text[o] = '\0';
}
