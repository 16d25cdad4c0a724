/*
 * store.c — the store handle: a back end chosen by the URL's scheme from a
 * static table, its state, and a reference count so that every dataset
 * opened from one place shares the handle.
 */
#include "store/store.h"

#include <stdatomic.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/backend.h"
#include "core/path.h"

struct lb__store {
    const lb__store_backend *be;
    void *state;
    atomic_int refs;
    atomic_ullong gets, bytes_read; /* reads since the store was opened */
};

static const lb__store_backend *const backends[] = {&lb__store_file, &lb__store_http,
                                                     &lb__store_https, &lb__store_s3};

static size_t scheme_len(const char *url) { return lb__url_scheme_len(url); }

/* Any scheme, not only the ones served here: a URL that no store takes is
 * named in an error message too. */
size_t lb_path_display(const char *path, char *buf, size_t size) {
    return lb__url_shown(path, buf, size);
}

int lb__store_open(const char *url, lb__store **out, char **path, lb_error *err) {
    *out = NULL;
    *path = NULL;
    if (!url || !*url) return lb__err(err, LB_EINVAL, "empty path");
    size_t sl = scheme_len(url);
    const lb__store_backend *be = NULL;
    for (size_t i = 0; i < sizeof backends / sizeof *backends && !be; i++) {
        const char *s = backends[i]->scheme;
        if (sl == 0 ? strcmp(s, "file") == 0 : strlen(s) == sl && strncasecmp(url, s, sl) == 0)
            be = backends[i];
    }
    if (!be) {
        char shown[512];
        lb_path_display(url, shown, sizeof shown);
        return lb__err(err, LB_EUNSUPPORTED, "%s: %.*s:// URLs are not supported (paths on "
                       "the file system, file://, http://, https:// and s3:// are)", shown,
                       (int)sl, url);
    }
    lb__store *s = lb__calloc(1, sizeof *s, "a store", err);
    if (!s) return LB_ENOMEM;
    s->be = be;
    atomic_init(&s->refs, 1);
    atomic_init(&s->gets, 0);
    atomic_init(&s->bytes_read, 0);
    int rc = be->open(url, &s->state, path, err);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int lb__store_new(const lb__store_backend *be, void *state, lb__store **out, lb_error *err) {
    lb__store *s = lb__calloc(1, sizeof *s, "a store", err);
    if (!s) return LB_ENOMEM;
    s->be = be;
    s->state = state;
    atomic_init(&s->refs, 1);
    atomic_init(&s->gets, 0);
    atomic_init(&s->bytes_read, 0);
    *out = s;
    return 0;
}

lb__store *lb__store_ref(lb__store *s) {
    if (s) atomic_fetch_add(&s->refs, 1);
    return s;
}

void lb__store_free(lb__store *s) {
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
    if (s->be->close) s->be->close(s->state);
    free(s);
}

const char *lb__store_scheme(const lb__store *s) { return s->be->scheme; }
int lb__store_writable(const lb__store *s) { return s->be->writable; }

int lb__store_concurrency(const lb__store *s) {
    return s->be->version >= 2 && s->be->concurrency ? s->be->concurrency(s->state) : 1;
}

uint64_t lb__store_stamp(lb__store *s, const char *key) {
    return s->be->version >= 3 && s->be->stamp ? s->be->stamp(s->state, key) : LB__STAMP_UNKNOWN;
}

int lb__store_describe(const lb__store *s, const char *key, char *buf, size_t size) {
    if (s->be->describe) return s->be->describe(s->state, key, buf, size);
    return snprintf(buf, size, "%s", key);
}

int lb__store_locate(const lb__store *s, const char *key, char *buf, size_t size) {
    if (s->be->version >= 4 && s->be->locate) return s->be->locate(s->state, key, buf, size);
    return lb__store_describe(s, key, buf, size);
}

static int read_only(const lb__store *s, const char *key, lb_error *err) {
    return lb__err(err, LB_EUNSUPPORTED, "%s: %s stores are read-only", key, s->be->scheme);
}

int lb__store_get(lb__store *s, const char *key, const lb__range *range, size_t max_bytes,
                  lb__buf *out, uint64_t *total, lb_error *err) {
    if (total) *total = UINT64_MAX;
    int rc = s->be->get(s->state, key, range, max_bytes, out, total, err);
    atomic_fetch_add(&s->gets, 1);
    if (!rc) atomic_fetch_add(&s->bytes_read, out->size);
    return rc;
}

void lb__store_stats(const lb__store *s, uint64_t *gets, uint64_t *bytes) {
    *gets = atomic_load(&((lb__store *)s)->gets);
    *bytes = atomic_load(&((lb__store *)s)->bytes_read);
}

int lb__store_size(lb__store *s, const char *key, uint64_t *size, lb_error *err) {
    return s->be->size(s->state, key, size, err);
}

int lb__store_kind(lb__store *s, const char *key) { return s->be->kind(s->state, key); }

int lb__store_exists(lb__store *s, const char *key) {
    return s->be->kind(s->state, key) == LB__KEY_OBJECT;
}

int lb__store_empty(lb__store *s, const char *prefix) { return s->be->empty(s->state, prefix); }

int lb__store_put(lb__store *s, const char *key, const void *data, size_t n, lb_error *err) {
    if (!s->be->writable || !s->be->put) return read_only(s, key, err);
    return s->be->put(s->state, key, data, n, err);
}

int lb__store_erase(lb__store *s, const char *key, lb_error *err) {
    if (!s->be->writable || !s->be->erase) return read_only(s, key, err);
    return s->be->erase(s->state, key, err);
}

int lb__store_erase_tree(lb__store *s, const char *prefix, lb_error *err) {
    if (!s->be->writable || !s->be->erase_tree) return read_only(s, prefix, err);
    return s->be->erase_tree(s->state, prefix, err);
}

int lb__store_list(lb__store *s, const char *prefix, lb__store_list_fn fn, void *user,
                   lb_error *err) {
    if (!s->be->list)
        return lb__err(err, LB_EUNSUPPORTED, "%s: %s stores cannot be listed", prefix,
                       s->be->scheme);
    return s->be->list(s->state, prefix, fn, user, err);
}

int lb__store_cleanup(lb__store *s, const char *prefix, lb_error *err) {
    return s->be->cleanup ? s->be->cleanup(s->state, prefix, err) : 0;
}

void lb__store_cleanup_key(lb__store *s, const char *key) {
    if (s->be->cleanup_key) s->be->cleanup_key(s->state, key);
}

int lb__store_relation(lb__store *sa, const char *a, lb__store *sb, const char *b,
                       lb__store_rel *rel, lb_error *err) {
    *rel = LB__STORE_APART;
    if (sa->be != sb->be) return 0;
    if (sa->be->relation) return sa->be->relation(sa->state, a, b, rel, err);
    size_t na = strlen(a), nb = strlen(b);
    if (strcmp(a, b) == 0) *rel = LB__STORE_SAME;
    else if (na > nb && strncmp(a, b, nb) == 0 && a[nb] == '/') *rel = LB__STORE_A_IN_B;
    else if (nb > na && strncmp(a, b, na) == 0 && b[na] == '/') *rel = LB__STORE_B_IN_A;
    return 0;
}
