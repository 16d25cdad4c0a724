/*
 * store.h — where bytes live. A store handle is opened from a URL or a path;
 * the URL's scheme picks the back end from a static table (a plain path is
 * the file system; http(s) and s3 drop in beside it). Keys are paths inside
 * the store, '/'-separated. Reads may ask for a byte range, including a
 * suffix ("the last n bytes"), which is how a shard's index at the end is
 * read without knowing the shard's size.
 *
 * Absence is an answer, not an error: every read returns LB_ENOTFOUND only
 * when the back end is sure the key does not exist, so that a failed request
 * is never taken for a missing chunk (read as the fill value).
 */
#ifndef LB_STORE_STORE_H
#define LB_STORE_STORE_H

#include "core/util.h"

typedef struct lb__store lb__store;

/* A byte range: `length` bytes from `offset`, or with `suffix` the last
 * `length` bytes. length = LB__RANGE_TO_END reads to the end. */
typedef struct lb__range {
    uint64_t offset;
    uint64_t length;
    int suffix;
} lb__range;
#define LB__RANGE_TO_END UINT64_MAX

/* Open the store behind `url` and return in *path (malloc'd, normalised,
 * no ".." below a *.zarr / *.n5 container) the location inside it that the
 * URL names. A plain path opens the file-system store. */
int lb__store_open(const char *url, lb__store **out, char **path, lb_error *err);
/* A new reference to the same store; lb__store_free drops one. */
lb__store *lb__store_ref(lb__store *s);
void lb__store_free(lb__store *s);

/* "file", "http", "s3", … */
const char *lb__store_scheme(const lb__store *s);
/* 1 when keys can be written. */
int lb__store_writable(const lb__store *s);
/* How many reads of this store a region read should keep in flight when
 * its caller set no thread count: 1 for local files, more where every
 * request waits on a network (LB_HTTP_CONCURRENCY, default 32). */
int lb__store_concurrency(const lb__store *s);
/* The URL of `key` as a user should see it (no credentials), into buf. */
int lb__store_describe(const lb__store *s, const char *key, char *buf, size_t size);
/* Where a read of `key` goes, whole — what tells two stores' data apart
 * (for http: the server, path and query string a request uses) — into
 * buf. It may hold credentials: never show it. */
int lb__store_locate(const lb__store *s, const char *key, char *buf, size_t size);

/* Read `key` (range NULL = all of it) into `out`, at most max_bytes;
 * *total (may be NULL) receives the object's full size when the back end
 * learns it (UINT64_MAX otherwise). A range past the end is LB_EFORMAT.
 * out->data is NUL-terminated one byte past out->size. */
int lb__store_get(lb__store *s, const char *key, const lb__range *range, size_t max_bytes,
                  lb__buf *out, uint64_t *total, lb_error *err);
/* Reads (lb__store_get calls, absent keys included) and bytes read since
 * the store was opened. */
void lb__store_stats(const lb__store *s, uint64_t *gets, uint64_t *bytes);
/* A stamp of what is at `key` now, without reading it: two equal stamps
 * mean the same bytes as far as the back end can tell (files: the same
 * file — device and inode — size, modification and change times). A key
 * rewritten in any way (replaced by a rename, overwritten, truncated)
 * gets another stamp. LB__STAMP_ABSENT when nothing is there;
 * LB__STAMP_UNKNOWN when the back end cannot tell (remote stores, errors).
 * Other values are never 0, 1 or UINT64_MAX. */
#define LB__STAMP_UNKNOWN ((uint64_t)0)
#define LB__STAMP_ABSENT ((uint64_t)1)
uint64_t lb__store_stamp(lb__store *s, const char *key);
/* The size of `key`; LB_ENOTFOUND when absent. */
int lb__store_size(lb__store *s, const char *key, uint64_t *size, lb_error *err);
/* What is at `key`: LB__KEY_NONE, LB__KEY_OBJECT (a file) or LB__KEY_PREFIX
 * (a directory: a prefix of other keys); errors read as none on the file
 * system. Remote stores answer only object or none (prefixes cannot be
 * seen over HTTP: formats probe their metadata keys), and LB__KEY_OTHER
 * when the server could not say — the caller's read of the key then
 * reports why. */
enum { LB__KEY_NONE = 0, LB__KEY_OBJECT = 1, LB__KEY_PREFIX = 2, LB__KEY_OTHER = 3 };
int lb__store_kind(lb__store *s, const char *key);
/* 1 if `key` exists as an object (a file), 0 if not (errors read as 0). */
int lb__store_exists(lb__store *s, const char *key);
/* 1 if `prefix` holds no keys at all (an empty or missing directory). */
int lb__store_empty(lb__store *s, const char *prefix);
/* Replace `key` atomically (readers see the old bytes or the new ones,
 * never a mix); parents are created as needed. */
int lb__store_put(lb__store *s, const char *key, const void *data, size_t n, lb_error *err);
/* Remove `key` (absent is fine). */
int lb__store_erase(lb__store *s, const char *key, lb_error *err);
/* Remove everything under `prefix` and the prefix itself. */
int lb__store_erase_tree(lb__store *s, const char *prefix, lb_error *err);
/* Call fn for each direct child of `prefix` (name, 1 for a "directory" —
 * a prefix of further keys); fn returns non-zero to stop. LB_EUNSUPPORTED
 * for stores that cannot be listed (http, s3). */
typedef int (*lb__store_list_fn)(void *user, const char *name, int is_dir);
int lb__store_list(lb__store *s, const char *prefix, lb__store_list_fn fn, void *user,
                   lb_error *err);
/* Remove temporaries that interrupted writers left under `prefix`. */
int lb__store_cleanup(lb__store *s, const char *prefix, lb_error *err);
/* Remove the temporaries of `key` alone that writers which died left (a
 * live writer's are kept). */
void lb__store_cleanup_key(lb__store *s, const char *key);

/* How two locations lie: the same place, one inside the other, or apart —
 * through symlinks, ".." and bind mounts where the back end has them.
 * Locations in different stores are apart. */
typedef enum lb__store_rel {
    LB__STORE_APART = 0,
    LB__STORE_SAME = 1,
    LB__STORE_A_IN_B = 2,
    LB__STORE_B_IN_A = 3
} lb__store_rel;
int lb__store_relation(lb__store *sa, const char *a, lb__store *sb, const char *b,
                       lb__store_rel *rel, lb_error *err);

#endif /* LB_STORE_STORE_H */
