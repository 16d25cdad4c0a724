/*
 * fs.c — the file system as the file store needs it: bounded whole-file and
 * ranged reads, atomic writes (temporary file in the same folder + rename),
 * directory helpers, and what a path really names (symlinks, "..", bind
 * mounts) for the writer's input/output overlap checks.
 */
#include "store/fs.h"

#include "core/path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Linux transfers at most 0x7ffff000 bytes per read/write call. */
#define IO_STEP ((size_t)1 << 30)

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------ */

/* Open a regular file for reading: *fd and *st on success (the caller
 * closes), an error naming the path otherwise (a missing file is
 * LB_ENOTFOUND). */
static int open_regular(const char *path, int *fd, struct stat *st, lb_error *err) {
    /* O_NONBLOCK so that a FIFO planted where a chunk should be cannot hang
     * us in open(); it has no effect on regular files. */
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (*fd < 0) return lb__err_errno(err, errno, NULL, path);
    int rc = 0;
    if (fstat(*fd, st) != 0) rc = lb__err_errno(err, errno, NULL, path);
    else if (S_ISDIR(st->st_mode))
        rc = lb__err(err, LB_EFORMAT, "%s: is a directory, expected a file", path);
    else if (!S_ISREG(st->st_mode))
        rc = lb__err(err, LB_EFORMAT, "%s: is not a regular file", path);
    if (rc) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

int lb__fs_read(const char *path, size_t max_bytes, lb__buf *out, lb_error *err) {
    out->size = 0;
    int fd;
    struct stat st;
    int rc = open_regular(path, &fd, &st, err);
    if (rc) return rc;
    if (st.st_size < 0 || (uint64_t)st.st_size > max_bytes) {
        rc = lb__err(err, LB_ELIMIT, "%s: file is %lld bytes, more than the limit of %zu",
                     path, (long long)st.st_size, max_bytes);
        goto done;
    }
    /* One spare byte keeps the data NUL-terminated (handy for JSON); reading
     * up to max_bytes + 1 notices a file that grew past the limit since
     * fstat. */
    if (max_bytes > SIZE_MAX - 2) max_bytes = SIZE_MAX - 2;
    rc = lb__buf_reserve(out, (size_t)st.st_size + 1, err);
    if (rc) goto done;
    for (;;) {
        if (out->size > max_bytes) {
            rc = lb__err(err, LB_ELIMIT, "%s: file is more than the limit of %zu bytes",
                         path, max_bytes);
            goto done;
        }
        if (out->size + 1 >= out->cap) {
            size_t room = max_bytes + 1 - out->size; /* >= 1 */
            size_t grow = out->size < 4096 ? 4096 : out->size;
            if (grow > room) grow = room;
            rc = lb__buf_reserve(out, out->size + grow + 1, err);
            if (rc) goto done;
        }
        size_t want = out->cap - 1 - out->size;
        if (want > IO_STEP) want = IO_STEP;
        if (want > max_bytes + 1 - out->size) want = max_bytes + 1 - out->size;
        ssize_t k = read(fd, out->data + out->size, want);
        if (k < 0) {
            if (errno == EINTR) continue;
            rc = lb__err_errno(err, errno, "read", path);
            goto done;
        }
        if (k == 0) break;
        out->size += (size_t)k;
    }
    out->data[out->size] = 0;
done:
    close(fd);
    if (rc) out->size = 0;
    return rc;
}

int lb__fs_read_range(const char *path, uint64_t offset, uint64_t length, int suffix,
                      size_t max_bytes, lb__buf *out, uint64_t *total, lb_error *err) {
    out->size = 0;
    if (total) *total = UINT64_MAX;
    int fd;
    struct stat st;
    int rc = open_regular(path, &fd, &st, err);
    if (rc) return rc;
    uint64_t size = (uint64_t)st.st_size;
    if (total) *total = size;
    uint64_t lo, n;
    if (suffix) { /* the last `length` bytes, or all of a shorter file */
        n = length < size ? length : size;
        lo = size - n;
    } else {
        if (offset > size || (length != UINT64_MAX && length > size - offset)) {
            rc = lb__err(err, LB_EFORMAT, "%s: bytes %llu..%llu lie past the end of the "
                         "%llu-byte file", path, (unsigned long long)offset,
                         (unsigned long long)(length == UINT64_MAX ? size : offset + length),
                         (unsigned long long)size);
            goto done;
        }
        lo = offset;
        n = length == UINT64_MAX ? size - offset : length;
    }
    if (n > max_bytes) {
        rc = lb__err(err, LB_ELIMIT, "%s: a read of %llu bytes is more than the limit of %zu",
                     path, (unsigned long long)n, max_bytes);
        goto done;
    }
    if ((rc = lb__buf_reserve(out, (size_t)n + 1, err))) goto done;
    while (out->size < n) {
        size_t want = (size_t)n - out->size;
        if (want > IO_STEP) want = IO_STEP;
        ssize_t k = pread(fd, out->data + out->size, want, (off_t)(lo + out->size));
        if (k < 0) {
            if (errno == EINTR) continue;
            rc = lb__err_errno(err, errno, "read", path);
            goto done;
        }
        if (k == 0) { /* the file shrank under us */
            rc = lb__err(err, LB_EIO, "%s: file ended after %zu of %llu bytes", path,
                         out->size, (unsigned long long)n);
            goto done;
        }
        out->size += (size_t)k;
    }
    out->data[out->size] = 0;
done:
    close(fd);
    if (rc) out->size = 0;
    return rc;
}

int lb__fs_size(const char *path, uint64_t *size, lb_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return lb__err_errno(err, errno, NULL, path);
    if (!S_ISREG(st.st_mode))
        return lb__err(err, LB_EFORMAT, "%s: is not a regular file", path);
    *size = (uint64_t)st.st_size;
    return 0;
}

/* ------------------------------------------------------------------------
 * Atomic writes
 * ------------------------------------------------------------------------ */

/* Distinguishes temporaries of concurrent writers in one process; the pid
 * distinguishes processes (cluster jobs share folders). */
static atomic_ulong tmp_counter;

static int write_all(int fd, const void *data, size_t n, const char *path, lb_error *err) {
    const uint8_t *p = data;
    while (n > 0) {
        size_t step = n > IO_STEP ? IO_STEP : n;
        ssize_t k = write(fd, p, step);
        if (k < 0) {
            if (errno == EINTR) continue;
            return lb__err_errno(err, errno, "write", path);
        }
        if (k == 0) /* should not happen for regular files; never spin */
            return lb__err(err, LB_EIO, "%s: write: no progress", path);
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int lb__fs_write_atomic(const char *path, const void *data, size_t n, lb_error *err) {
    if (!path || !*path) return lb__err(err, LB_EINVAL, "empty path");
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return lb__err(err, LB_EINVAL, "%s: not a file name", path);
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0; /* keeps the '/' */
    unsigned long counter = atomic_fetch_add(&tmp_counter, 1);
    char suffix[64];
    int sl = snprintf(suffix, sizeof suffix, ".lbtmp.%ld.%lu", (long)getpid(), counter);
    size_t tlen = dirlen + 1 + strlen(name) + (size_t)sl + 1;
    char *tmp = lb__malloc(tlen, "a temporary file name", err);
    if (!tmp) return LB_ENOMEM;
    memcpy(tmp, path, dirlen);
    snprintf(tmp + dirlen, tlen - dirlen, ".%s%s", name, suffix);

    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0) {
        rc = lb__err_errno(err, errno, "cannot create temporary file", path);
        free(tmp);
        return rc;
    }
    rc = write_all(fd, data, n, path, err);
    /* close() can report the deferred error of a network file system. */
    if (close(fd) != 0 && !rc) rc = lb__err_errno(err, errno, "close", path);
    if (!rc && rename(tmp, path) != 0) rc = lb__err_errno(err, errno, "rename", path);
    if (rc) unlink(tmp);
    free(tmp);
    /* A missing parent folder comes back as LB_ENOTFOUND: chunk writers
     * rely on it to create nested key folders only on first use. */
    return rc;
}

/* ------------------------------------------------------------------------
 * Directories
 * ------------------------------------------------------------------------ */

static int is_temp_name(const char *name) {
    return name[0] == '.' && strstr(name, ".lbtmp.") != NULL;
}

/* Walk `dir` (relative to dirfd) and unlink temporaries; `path` is for
 * messages only. Symlinks are never followed. */
static int remove_temps_at(int dirfd, const char *path, int depth, lb_error *err) {
    if (depth > 256) return lb__err(err, LB_ELIMIT, "%s: directories nested too deeply", path);
    DIR *dir = fdopendir(dirfd);
    if (!dir) {
        int e = errno;
        close(dirfd);
        return lb__err_errno(err, e, NULL, path);
    }
    int rc = 0;
    struct dirent *de;
    for (;;) {
        errno = 0;
        de = readdir(dir);
        if (!de) {
            if (errno) rc = lb__err_errno(err, errno, "readdir", path);
            break;
        }
        const char *nm = de->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0) continue;
        int isdir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd, nm, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
            isdir = S_ISDIR(st.st_mode);
        }
        if (isdir) {
            int sub = openat(dirfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) continue; /* vanished or unreadable: nothing of ours */
            char *subpath = lb__path_join(path, nm, err);
            if (!subpath) {
                close(sub);
                rc = LB_ENOMEM;
                break;
            }
            rc = remove_temps_at(sub, subpath, depth + 1, err);
            free(subpath);
            if (rc) break;
        } else if (is_temp_name(nm)) {
            if (unlinkat(dirfd, nm, 0) != 0 && errno != ENOENT) {
                rc = lb__err_errno(err, errno, "cannot remove stale temporary file", path);
                break;
            }
        }
    }
    closedir(dir);
    return rc;
}

int lb__fs_remove_temps(const char *dir, lb_error *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        return lb__err_errno(err, errno, NULL, dir);
    }
    return remove_temps_at(fd, dir, 0, err);
}

void lb__fs_remove_stale_temps_of(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    size_t dirlen = slash ? (size_t)(slash - path) : 0;
    char dirbuf[4096], prefix[512];
    if (dirlen >= sizeof dirbuf) return;
    memcpy(dirbuf, slash ? path : ".", slash ? dirlen : 1);
    dirbuf[slash ? dirlen : 1] = '\0';
    if (dirbuf[0] == '\0') strcpy(dirbuf, "/");
    int pl = snprintf(prefix, sizeof prefix, ".%s.lbtmp.", name);
    if (pl < 0 || (size_t)pl >= sizeof prefix) return;
    int fd = open(dirbuf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (strncmp(de->d_name, prefix, (size_t)pl) != 0) continue;
        char *end;
        long pid = strtol(de->d_name + pl, &end, 10);
        if (end == de->d_name + pl || *end != '.' || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to judge */
        unlinkat(fd, de->d_name, 0);
    }
    closedir(dir);
}

static int mkdirs_depth(const char *path, int depth, lb_error *err) {
    if (mkdir(path, 0755) == 0) return 0;
    int e = errno;
    if (e == EEXIST) {
        /* Another process or thread may have just made it: fine when it is
         * a directory. */
        if (lb__fs_is_dir(path)) return 0;
        return lb__err(err, LB_EIO, "%s: exists and is not a directory", path);
    }
    if (e != ENOENT || depth > 4096)
        return lb__err_errno(err, e, "cannot create directory", path);
    /* Parent missing: create it, then retry. The common case (parent
     * exists) costs one mkdir. */
    char *parent = lb__path_parent(path, err);
    if (!parent) return LB_ENOMEM;
    int rc = strcmp(parent, path) == 0 ? lb__err_errno(err, e, "cannot create directory", path)
                                       : mkdirs_depth(parent, depth + 1, err);
    free(parent);
    if (rc) return rc;
    if (mkdir(path, 0755) == 0) return 0;
    e = errno;
    if (e == EEXIST && lb__fs_is_dir(path)) return 0;
    return lb__err_errno(err, e, "cannot create directory", path);
}

int lb__fs_mkdirs(const char *path, lb_error *err) {
    if (!path || !*path) return lb__err(err, LB_EINVAL, "empty directory path");
    return mkdirs_depth(path, 0, err);
}

int lb__fs_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int lb__fs_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int lb__fs_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

int lb__fs_is_empty_dir(const char *path) {
    DIR *dir = opendir(path);
    if (!dir) return 0;
    int empty = 1;
    struct dirent *de;
    while (empty && (de = readdir(dir)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) empty = 0;
    closedir(dir);
    return empty;
}

int lb__fs_unlink(const char *path, lb_error *err) {
    if (unlink(path) != 0 && errno != ENOENT)
        return lb__err_errno(err, errno, "cannot remove", path);
    return 0;
}

/* Remove everything inside the directory open at `fd` (consumed). */
static int remove_tree_at(int fd, const char *path, int depth, lb_error *err) {
    if (depth > 256) {
        close(fd);
        return lb__err(err, LB_ELIMIT, "%s: directories nested too deeply", path);
    }
    DIR *dir = fdopendir(fd);
    if (!dir) {
        int e = errno;
        close(fd);
        return lb__err_errno(err, e, NULL, path);
    }
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(dir);
        if (!de) {
            if (errno) rc = lb__err_errno(err, errno, "readdir", path);
            break;
        }
        const char *nm = de->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0) continue;
        if (unlinkat(fd, nm, 0) == 0 || errno == ENOENT) continue;
        if (errno != EISDIR && errno != EPERM) {
            rc = lb__err_errno(err, errno, "cannot remove", path);
            break;
        }
        /* A directory: O_NOFOLLOW so a symlink swapped in cannot lead us
         * outside the tree. */
        int sub = openat(fd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        char *subpath = lb__path_join(path, nm, err);
        if (!subpath) {
            if (sub >= 0) close(sub);
            rc = LB_ENOMEM;
            break;
        }
        if (sub < 0) {
            rc = lb__err_errno(err, errno, "cannot remove", subpath);
            free(subpath);
            break;
        }
        rc = remove_tree_at(sub, subpath, depth + 1, err);
        if (!rc && unlinkat(fd, nm, AT_REMOVEDIR) != 0 && errno != ENOENT)
            rc = lb__err_errno(err, errno, "cannot remove directory", subpath);
        free(subpath);
        if (rc) break;
    }
    closedir(dir);
    return rc;
}

int lb__fs_remove_tree(const char *path, lb_error *err) {
    if (!path) return lb__err(err, LB_EINVAL, "refusing to remove a NULL path");
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    /* The last segment: "", "/", ".", ".." (and "x/.", "x/..") name either
     * the root, the working directory or something above the dataset. */
    size_t sl = n - b;
    int bad = n == 0 || (n == 1 && path[0] == '/') || (sl == 1 && path[b] == '.') ||
              (sl == 2 && path[b] == '.' && path[b + 1] == '.');
    if (bad) return lb__err(err, LB_EINVAL, "refusing to remove \"%s\"", path);
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return 0;
        return lb__err_errno(err, errno, NULL, path);
    }
    if (!S_ISDIR(st.st_mode)) return lb__fs_unlink(path, err);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return lb__err_errno(err, errno, "cannot remove", path);
    int rc = remove_tree_at(fd, path, 0, err);
    if (rc) return rc;
    if (rmdir(path) != 0 && errno != ENOENT)
        return lb__err_errno(err, errno, "cannot remove directory", path);
    return 0;
}

/* ------------------------------------------------------------------------
 * Path identity
 * ------------------------------------------------------------------------ */

/* Append segment `s` (n bytes) to the absolute path `p` (length *len, room
 * for it checked by the caller): "." is skipped, ".." drops the last
 * segment (never above "/"). */
static void push_segment(char *p, size_t *len, const char *s, size_t n) {
    if (n == 0 || (n == 1 && s[0] == '.')) return;
    if (n == 2 && s[0] == '.' && s[1] == '.') {
        size_t k = *len;
        while (k > 1 && p[k - 1] != '/') k--;
        if (k > 1) k--; /* the separator, unless it is the root */
        *len = k;
        p[k] = '\0';
        return;
    }
    if (*len > 1) p[(*len)++] = '/';
    memcpy(p + *len, s, n);
    *len += n;
    p[*len] = '\0';
}

char *lb__fs_resolve(const char *path, lb_error *err) {
    if (!path || !*path) {
        lb__err(err, LB_EINVAL, "empty path");
        return NULL;
    }
    char *abs = NULL, *out = NULL;
    if (path[0] == '/') {
        abs = lb__strdup(path, err);
    } else {
        char *cwd = realpath(".", NULL);
        if (!cwd) {
            lb__err_errno(err, errno, "cannot resolve the working directory", path);
            return NULL;
        }
        abs = lb__path_join(cwd, path, err);
        free(cwd);
    }
    if (!abs) return NULL;
    /* The deepest existing ancestor: the longest prefix ending at a segment
     * boundary that realpath resolves (the whole path first). The kernel
     * resolves "x/.." physically, so a prefix is tried as written, ".."
     * segments included. */
    size_t n = strlen(abs), cut = n;
    char *base = NULL;
    for (;;) {
        char c = abs[cut];
        abs[cut] = '\0';
        base = realpath(cut ? abs : "/", NULL);
        abs[cut] = c;
        if (base || cut == 0) break;
        while (cut > 0 && abs[cut - 1] == '/') cut--; /* the separator(s) */
        while (cut > 0 && abs[cut - 1] != '/') cut--; /* the segment      */
    }
    if (!base) {
        lb__err_errno(err, errno, "cannot resolve", path);
        goto done;
    }
    /* The rest does not exist (so holds no symlink): lexically. */
    size_t blen = strlen(base);
    out = lb__malloc(blen + n + 2, "a path", err);
    if (!out) goto done;
    memcpy(out, base, blen + 1);
    size_t len = blen, i = cut;
    while (i < n) {
        while (i < n && abs[i] == '/') i++;
        size_t b = i;
        while (i < n && abs[i] != '/') i++;
        push_segment(out, &len, abs + b, i - b);
    }
done:
    free(base);
    free(abs);
    return out;
}

/* 1 if `inner` is `outer` + "/" + something (both resolved). */
static int lexically_inside(const char *inner, const char *outer) {
    size_t n = strlen(outer);
    if (n == 1 && outer[0] == '/') return inner[0] == '/' && inner[1] != '\0';
    return strncmp(inner, outer, n) == 0 && inner[n] == '/';
}

/* Walk `p` (resolved) and its ancestors up to "/"; return 1 (the path
 * itself, which exists) or 2 (an ancestor, or the nearest existing one of
 * a path that does not exist) when one of them is the file `id`, else 0. */
static int find_in_ancestry(const char *p, const struct stat *id, lb_error *err, int *rc) {
    char *q = lb__strdup(p, err);
    *rc = 0;
    if (!q) {
        *rc = LB_ENOMEM;
        return 0;
    }
    size_t len = strlen(q);
    int self = 1, found = 0;
    for (;;) {
        struct stat st;
        if (stat(q, &st) == 0) {
            if (st.st_dev == id->st_dev && st.st_ino == id->st_ino) {
                found = self ? 1 : 2;
                break;
            }
        }
        self = 0;
        if (len <= 1) break;
        while (len > 1 && q[len - 1] != '/') len--;
        if (len > 1) len--;
        q[len] = '\0';
    }
    free(q);
    return found;
}

int lb__fs_relation(const char *a, const char *b, lb__fs_rel *rel, lb_error *err) {
    *rel = LB__FS_APART;
    char *ra = lb__fs_resolve(a, err);
    if (!ra) return err && err->code ? err->code : LB_ENOMEM;
    char *rb = lb__fs_resolve(b, err);
    if (!rb) {
        free(ra);
        return err && err->code ? err->code : LB_ENOMEM;
    }
    int rc = 0;
    struct stat sa, sb;
    int ea = stat(ra, &sa) == 0, eb = stat(rb, &sb) == 0;
    if (strcmp(ra, rb) == 0) *rel = LB__FS_SAME;
    else if (lexically_inside(ra, rb)) *rel = LB__FS_A_IN_B;
    else if (lexically_inside(rb, ra)) *rel = LB__FS_B_IN_A;
    /* The same directory under two names (a bind mount, a hard-linked
     * file): compare identities along each path's ancestry. */
    if (*rel == LB__FS_APART && eb) {
        int k = find_in_ancestry(ra, &sb, err, &rc);
        if (k == 1) *rel = LB__FS_SAME;
        else if (k == 2) *rel = LB__FS_A_IN_B;
    }
    if (*rel == LB__FS_APART && ea && !rc) {
        int k = find_in_ancestry(rb, &sa, err, &rc);
        if (k == 1) *rel = LB__FS_SAME;
        else if (k == 2) *rel = LB__FS_B_IN_A;
    }
    free(ra);
    free(rb);
    return rc;
}
