/*
 * file.c — the file-system store back end: keys are paths (absolute, or
 * relative to the working directory), objects are regular files, prefixes
 * are directories. Writes go to a temporary file in the same directory and
 * are renamed over the key, so readers see the old bytes or the new ones.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/path.h"
#include "store/backend.h"
#include "store/fs.h"

static int file_open(const char *url, void **state, char **path, lb_error *err) {
    *state = NULL;
    if (strncasecmp(url, "file://", 7) == 0) {
        url += 7;
        if (*url != '/')
            return lb__err(err, LB_EINVAL, "file://%s: a file URL needs an absolute path "
                           "(file:///…)", url);
    }
    return lb__path_normalize(url, path, err);
}

static int file_get(void *state, const char *key, const lb__range *r, size_t max_bytes,
                    lb__buf *out, uint64_t *total, lb_error *err) {
    (void)state;
    if (!r) {
        int rc = lb__fs_read(key, max_bytes, out, err);
        if (!rc && total) *total = out->size;
        return rc;
    }
    return lb__fs_read_range(key, r->offset, r->length, r->suffix, max_bytes, out, total, err);
}

static int file_size(void *state, const char *key, uint64_t *size, lb_error *err) {
    (void)state;
    return lb__fs_size(key, size, err);
}

static int file_kind(void *state, const char *key) {
    (void)state;
    struct stat st;
    if (stat(key, &st) != 0) return lstat(key, &st) == 0 ? LB__KEY_OTHER : LB__KEY_NONE;
    if (S_ISREG(st.st_mode)) return LB__KEY_OBJECT;
    if (S_ISDIR(st.st_mode)) return LB__KEY_PREFIX;
    return LB__KEY_OTHER;
}

static uint64_t file_stamp(void *state, const char *key) {
    (void)state;
    struct stat st;
    if (stat(key, &st) != 0)
        return errno == ENOENT || errno == ENOTDIR ? LB__STAMP_ABSENT : LB__STAMP_UNKNOWN;
    /* The change time too: it moves on every write and cannot be set back
     * (utime sets the modification time). */
    uint64_t v[7] = {(uint64_t)st.st_dev,          (uint64_t)st.st_ino,
                     (uint64_t)st.st_size,         (uint64_t)st.st_mtim.tv_sec,
                     (uint64_t)st.st_mtim.tv_nsec, (uint64_t)st.st_ctim.tv_sec,
                     (uint64_t)st.st_ctim.tv_nsec};
    uint64_t h = lb__hash64(v, sizeof v, 0x7374616d70ull);
    return h <= LB__STAMP_ABSENT || h == UINT64_MAX ? 2 : h;
}

static int file_empty(void *state, const char *prefix) {
    (void)state;
    return !lb__fs_exists(prefix) || lb__fs_is_empty_dir(prefix);
}

static int file_put(void *state, const char *key, const void *data, size_t n, lb_error *err) {
    (void)state;
    int rc = lb__fs_write_atomic(key, data, n, err);
    if (rc != LB_ENOTFOUND) return rc;
    /* A missing folder (nested chunk keys, a new dataset): create the
     * folders on first use only, then try once more. */
    char *dir = lb__path_parent(key, err);
    if (!dir) return LB_ENOMEM;
    rc = lb__fs_mkdirs(dir, err);
    free(dir);
    return rc ? rc : lb__fs_write_atomic(key, data, n, err);
}

static int file_erase(void *state, const char *key, lb_error *err) {
    (void)state;
    return lb__fs_unlink(key, err);
}

static int file_erase_tree(void *state, const char *prefix, lb_error *err) {
    (void)state;
    return lb__fs_remove_tree(prefix, err);
}

static int file_list(void *state, const char *prefix, lb__store_list_fn fn, void *user,
                     lb_error *err) {
    (void)state;
    DIR *dir = opendir(prefix);
    if (!dir) {
        if (errno == ENOENT || errno == ENOTDIR) return 0;
        return lb__err_errno(err, errno, "cannot list", prefix);
    }
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(dir);
        if (!de) {
            if (errno) rc = lb__err_errno(err, errno, "readdir", prefix);
            break;
        }
        const char *nm = de->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0) continue;
        if (nm[0] == '.' && strstr(nm, ".lbtmp.")) continue; /* a writer's temporary */
        int is_dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
            char *p = lb__path_join(prefix, nm, err);
            if (!p) {
                rc = LB_ENOMEM;
                break;
            }
            is_dir = lb__fs_is_dir(p);
            free(p);
        }
        if (fn(user, nm, is_dir)) break;
    }
    closedir(dir);
    return rc;
}

static int file_cleanup(void *state, const char *prefix, lb_error *err) {
    (void)state;
    return lb__fs_remove_temps(prefix, err);
}

static void file_cleanup_key(void *state, const char *key) {
    (void)state;
    lb__fs_remove_stale_temps_of(key);
}

static int file_relation(void *state, const char *a, const char *b, lb__store_rel *rel,
                         lb_error *err) {
    (void)state;
    lb__fs_rel r;
    int rc = lb__fs_relation(a, b, &r, err);
    *rel = r == LB__FS_SAME     ? LB__STORE_SAME
           : r == LB__FS_A_IN_B ? LB__STORE_A_IN_B
           : r == LB__FS_B_IN_A ? LB__STORE_B_IN_A
                                : LB__STORE_APART;
    return rc;
}

const lb__store_backend lb__store_file = {
    .version = 3,
    .scheme = "file",
    .writable = 1,
    .open = file_open,
    .get = file_get,
    .size = file_size,
    .kind = file_kind,
    .empty = file_empty,
    .put = file_put,
    .erase = file_erase,
    .erase_tree = file_erase_tree,
    .list = file_list,
    .cleanup = file_cleanup,
    .cleanup_key = file_cleanup_key,
    .relation = file_relation,
    .stamp = file_stamp,
};
