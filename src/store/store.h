/*
 * store.h — the file-system store: bounded whole-file reads, atomic writes
 * (temporary file in the same folder + rename), directory creation, and the
 * path rules (no ".." segments inside a container).
 */
#ifndef LB_STORE_H
#define LB_STORE_H

#include "core/util.h"

/* Read the whole file at `path` into `out` (replacing its contents). A file
 * larger than `max_bytes` is LB_ELIMIT; a missing file LB_ENOTFOUND (no
 * message prefix beyond the path); a directory where a file is expected is
 * LB_EFORMAT ("<path>: is a directory, expected a file"). */
int lb__store_read(const char *path, size_t max_bytes, lb__buf *out, lb_error *err);

/* Write `n` bytes to `path` atomically: a temporary file
 * "<dir>/.<name>.lbtmp.<pid>.<counter>" is written, flushed and renamed over
 * `path`. On any failure the temporary file is removed and `path` is left
 * as it was. The parent directory must exist. */
int lb__store_write_atomic(const char *path, const void *data, size_t n, lb_error *err);

/* Remove stale temporary files left in `dir` by an interrupted writer
 * (names matching ".*.lbtmp.*"), recursively. Missing dir is fine. */
int lb__store_remove_temps(const char *dir, lb_error *err);
/* Remove the temporaries of one file (`dir/name` -> `dir/.name.lbtmp.<pid>.*`)
 * left by writers that died: only those whose <pid> is no live process,
 * so a concurrent writer's file in flight is never touched. For group
 * metadata in parent directories, which no run's own cleanup covers. */
void lb__store_remove_stale_temps_of(const char *path);

/* mkdir -p. */
int lb__store_mkdirs(const char *path, lb_error *err);

/* 1 if a regular file / directory exists at path, else 0. */
int lb__store_is_file(const char *path);
int lb__store_is_dir(const char *path);
/* 1 if anything exists at path (file, dir, link). */
int lb__store_exists(const char *path);
/* 1 if path is a directory with no entries, else 0. */
int lb__store_is_empty_dir(const char *path);

/* Remove a file if it exists (missing is fine). */
int lb__store_unlink(const char *path, lb_error *err);

/* Remove a directory tree. Refuses (LB_EINVAL) paths that are "", "/", ".",
 * or end in "..". Missing is fine. */
int lb__store_remove_tree(const char *path, lb_error *err);

/* Join "a" + "/" + "b" into a new string (NULL + LB_ENOMEM on failure). */
char *lb__path_join(const char *a, const char *b, lb_error *err);
/* Parent directory of a path as a new string ("." for a bare name). */
char *lb__path_parent(const char *path, lb_error *err);
/* Normalise: collapse "//", strip trailing "/" and "./" segments. Fails
 * (LB_EINVAL) when a segment after the container directory (the last
 * segment ending in ".zarr" or ".n5") is "..". */
int lb__path_normalize(const char *path, char **out, lb_error *err);
/* Index of the path segment that is the container root (the last segment
 * ending in ".zarr", ".n5" or ".zarr/"…), as a byte length of the prefix
 * that ends with it; 0 if there is none. */
size_t lb__path_container_len(const char *path);

/* The place `path` names, as a new absolute string without symlinks, "."
 * or ".." segments: the realpath of its deepest existing ancestor followed
 * by the remaining (not existing) segments, normalised. NULL on failure
 * (LB_ENOMEM; LB_EIO when even "/" or the working directory cannot be
 * resolved). */
char *lb__path_resolve(const char *path, lb_error *err);

/* How two paths lie in the file system, by resolved names and, where they
 * exist, by device and inode along their ancestry (a bind mount is seen
 * through). Neither needs to exist. */
typedef enum lb__path_rel {
    LB__PATHS_APART = 0, /* neither is or contains the other           */
    LB__PATHS_SAME = 1,  /* the same place                             */
    LB__PATH_A_IN_B = 2, /* a lies inside b                            */
    LB__PATH_B_IN_A = 3  /* b lies inside a                            */
} lb__path_rel;
int lb__path_relation(const char *a, const char *b, lb__path_rel *rel, lb_error *err);

#endif /* LB_STORE_H */
