/*
 * fs.h — file-system helpers on plain paths: what the file store back end
 * (store/file.c) is built from. The layers above the store use the store
 * handle (store/store.h), never these; tests use them to set up files.
 */
#ifndef LB_STORE_FS_H
#define LB_STORE_FS_H

#include "core/util.h"

/* Read the whole file at `path` into `out` (replacing its contents). A file
 * larger than `max_bytes` is LB_ELIMIT; a missing file LB_ENOTFOUND (no
 * message prefix beyond the path); a directory where a file is expected is
 * LB_EFORMAT ("<path>: is a directory, expected a file"). */
int lb__fs_read(const char *path, size_t max_bytes, lb__buf *out, lb_error *err);

/* Read bytes [offset, offset + length) of the file (length UINT64_MAX: to
 * the end), or with `suffix` its last `length` bytes (all of a shorter
 * file), into `out` (NUL-terminated past out->size); *total (may be NULL)
 * gets the file's size. A range past the end is LB_EFORMAT. */
int lb__fs_read_range(const char *path, uint64_t offset, uint64_t length, int suffix,
                      size_t max_bytes, lb__buf *out, uint64_t *total, lb_error *err);
/* The size of a regular file. */
int lb__fs_size(const char *path, uint64_t *size, lb_error *err);

/* Write `n` bytes to `path` atomically: a temporary file
 * "<dir>/.<name>.lbtmp.<pid>.<counter>" is written, flushed and renamed over
 * `path`. On any failure the temporary file is removed and `path` is left
 * as it was. The parent directory must exist. */
int lb__fs_write_atomic(const char *path, const void *data, size_t n, lb_error *err);

/* Remove stale temporary files left in `dir` by an interrupted writer
 * (names matching ".*.lbtmp.*"), recursively. Missing dir is fine. */
int lb__fs_remove_temps(const char *dir, lb_error *err);
/* Remove the temporaries of one file (`dir/name` -> `dir/.name.lbtmp.<pid>.*`)
 * left by writers that died: only those whose <pid> is no live process,
 * so a concurrent writer's file in flight is never touched. For group
 * metadata in parent directories, which no run's own cleanup covers. */
void lb__fs_remove_stale_temps_of(const char *path);

/* mkdir -p. */
int lb__fs_mkdirs(const char *path, lb_error *err);

/* 1 if a regular file / directory exists at path, else 0. */
int lb__fs_is_file(const char *path);
int lb__fs_is_dir(const char *path);
/* 1 if anything exists at path (file, dir, link). */
int lb__fs_exists(const char *path);
/* 1 if path is a directory with no entries, else 0. */
int lb__fs_is_empty_dir(const char *path);

/* Remove a file if it exists (missing is fine). */
int lb__fs_unlink(const char *path, lb_error *err);

/* Remove a directory tree. Refuses (LB_EINVAL) paths that are "", "/", ".",
 * or end in "..". Missing is fine. */
int lb__fs_remove_tree(const char *path, lb_error *err);

/* The place `path` names, as a new absolute string without symlinks, "."
 * or ".." segments: the realpath of its deepest existing ancestor followed
 * by the remaining (not existing) segments, normalised. NULL on failure
 * (LB_ENOMEM; LB_EIO when even "/" or the working directory cannot be
 * resolved). */
char *lb__fs_resolve(const char *path, lb_error *err);

/* How two paths lie in the file system, by resolved names and, where they
 * exist, by device and inode along their ancestry (a bind mount is seen
 * through). Neither needs to exist. */
typedef enum lb__fs_rel {
    LB__FS_APART = 0, /* neither is or contains the other           */
    LB__FS_SAME = 1,  /* the same place                             */
    LB__FS_A_IN_B = 2, /* a lies inside b                            */
    LB__FS_B_IN_A = 3  /* b lies inside a                            */
} lb__fs_rel;
int lb__fs_relation(const char *a, const char *b, lb__fs_rel *rel, lb_error *err);

#endif /* LB_STORE_FS_H */
