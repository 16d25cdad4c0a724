/*
 * backend.h — what a store back end provides (internal to src/store/). The
 * back ends are listed in one static table in store.c, chosen by a URL's
 * scheme; nothing registers itself at run time. `version` lets the table
 * grow new operations without touching existing back ends.
 */
#ifndef LB_STORE_BACKEND_H
#define LB_STORE_BACKEND_H

#include "store/store.h"

typedef struct lb__store_backend {
    int version;        /* 2: adds concurrency, 3: stamp, 4: locate */
    const char *scheme; /* "file", …                                          */
    int writable;
    /* Open the store `url` names (the whole URL, scheme included, or a plain
     * path for the file system); *path receives the location inside it. */
    int (*open)(const char *url, void **state, char **path, lb_error *err);
    void (*close)(void *state);
    int (*get)(void *state, const char *key, const lb__range *range, size_t max_bytes,
               lb__buf *out, uint64_t *total, lb_error *err);
    int (*size)(void *state, const char *key, uint64_t *size, lb_error *err);
    int (*kind)(void *state, const char *key);
    int (*empty)(void *state, const char *prefix);
    int (*put)(void *state, const char *key, const void *data, size_t n, lb_error *err);
    int (*erase)(void *state, const char *key, lb_error *err);
    int (*erase_tree)(void *state, const char *prefix, lb_error *err);
    int (*list)(void *state, const char *prefix, lb__store_list_fn fn, void *user,
                lb_error *err);
    int (*cleanup)(void *state, const char *prefix, lb_error *err);
    void (*cleanup_key)(void *state, const char *key);
    int (*describe)(void *state, const char *key, char *buf, size_t size);
    int (*relation)(void *state, const char *a, const char *b, lb__store_rel *rel,
                    lb_error *err);
    /* Version 2. How many reads a region read should keep in flight at
     * once when the caller chose no number (NULL: 1). Stores with latency
     * per request (HTTP) want several, so that the waits overlap. */
    int (*concurrency)(void *state);
    /* Version 3. A stamp of what is at `key` now (lb__store_stamp); NULL:
     * the back end cannot tell without reading it. */
    uint64_t (*stamp)(void *state, const char *key);
    /* Version 4. Where a read of `key` really goes, whole (for http: the
     * request URL, its query string and server included) into buf, for
     * telling data apart, never to be shown (it may hold credentials);
     * NULL: describe's text says it all. */
    int (*locate)(void *state, const char *key, char *buf, size_t size);
} lb__store_backend;

extern const lb__store_backend lb__store_file;
/* http.c: read-only http://, https:// and s3:// stores (libcurl). */
extern const lb__store_backend lb__store_http, lb__store_https, lb__store_s3;

/* A store handle over a back end and its state (taken: the back end's
 * close frees it with the handle). For back ends made directly, not from a
 * URL (the memory store). */
int lb__store_new(const lb__store_backend *be, void *state, lb__store **out, lb_error *err);

#endif /* LB_STORE_BACKEND_H */
