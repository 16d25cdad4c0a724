/*
 * label_cache.h — a cache of encoded label chunks (kernels/cseg.h) in one
 * shared-memory file (/dev/shm/NAME), so that every process that opens the
 * same name — data-loader workers, forked or spawned — holds the chunks
 * once. Entries are keyed by the dataset's identity and the chunk's index.
 *
 * The file is a header (with a process-shared, robust mutex), a hash index
 * of entries and a ring of records: new entries are written at the ring's
 * head and the oldest are evicted first. The mutex is held only to look an
 * entry up, to reserve ring space and to publish: never while a chunk is
 * decoded or copied. A reader copies an entry out, then checks that the
 * ring has not passed over it and that its checksum holds, so a torn, stale
 * or corrupt entry is a miss (and is refilled), never labels. A process
 * killed mid-fill leaves a reservation the ring reclaims; one killed while
 * holding the mutex makes the next locker reset the index.
 *
 * Any process can write the file, so nothing in it is trusted: a handle
 * keeps its own copy of the layout (bounds are never read from the file
 * again), the header's changing fields are checked at every lock (the
 * index is reset when they do not hold together), and the mutex is waited
 * for at most lb__lcache_lock_wait_ms: a lock held longer (a process
 * stopped inside it, or a damaged lock word) makes the handle warn once and
 * pass the cache by while it stays held; opening such a file replaces it.
 *
 * The file is sparse: its bytes get memory (posix_fallocate) just before
 * they are first written, so a full /dev/shm makes a put store nothing
 * (with one warning) instead of killing the process with SIGBUS. A handle
 * keeps no file descriptor: a put opens the file by path and checks it is
 * still the one mapped.
 */
#ifndef LB_DATASET_LABEL_CACHE_H
#define LB_DATASET_LABEL_CACHE_H

#include "core/util.h"

typedef struct lb__lcache lb__lcache;

/* The smallest cache (bytes) worth making: header, index and a few
 * chunks. */
#define LB__LCACHE_MIN_BYTES ((size_t)1 << 20)

/* Open the cache file /dev/shm/`name` (NULL: the per-user default,
 * "labelbin-cache-UID") of `bytes` bytes, creating it when absent; one
 * already there keeps its size (a warning says so once per process and
 * name when `bytes` differs). A labelbin cache of another version, with a
 * damaged header or a lock that cannot be taken is replaced (a warning
 * says so); anything else at the name is refused (LB_EEXIST), never
 * touched. */
int lb__lcache_open(const char *name, size_t bytes, lb__lcache **out, lb_error *err);
/* Open an existing cache file to look at it (lb__lcache_stats); LB_ENOTFOUND
 * when there is none, LB_EFORMAT when it is damaged or of another version,
 * LB_EEXIST when it is not a labelbin cache. */
int lb__lcache_attach(const char *name, lb__lcache **out, lb_error *err);
void lb__lcache_close(lb__lcache *c);
/* Remove the file of cache `name` (NULL: the default) and the temporaries
 * of processes killed while making it; LB_EEXIST, removing nothing, when
 * the file is not a labelbin cache. */
int lb__lcache_remove(const char *name, lb_error *err);
const char *lb__lcache_name(const lb__lcache *c);
size_t lb__lcache_bytes(const lb__lcache *c);
/* The name (NULL: the default) and file of cache `name`, as the cache
 * would have them; empty strings for a name that is not valid. */
void lb__lcache_where(const char *name, char *nm, size_t nn, char *path, size_t np);
/* The default name for this user. */
void lb__lcache_default_name(char *buf, size_t size);

/* Append entry (ds, chunk) to *buf (grown as needed; buf->size grows by
 * the entry's size): 1 on a hit (checked: the checksum holds and nothing
 * overwrote it while it was copied), 0 on a miss (buf->size unchanged),
 * LB_ENOMEM. `stamp` is what the entry's source looks like now
 * (lb__store_stamp): an entry stored with another stamp is stale, dropped
 * and a miss; LB__STAMP_ANY takes the entry whatever its stamp. */
#define LB__STAMP_ANY UINT64_MAX
int lb__lcache_get(lb__lcache *c, uint64_t ds, uint64_t chunk, uint64_t stamp, lb__buf *buf);
/* Count the last hit of lb__lcache_get as a miss after all (the entry was
 * a note that the chunk is not kept: the read decodes it). */
void lb__lcache_count_as_miss(lb__lcache *c);
/* Take the last lookup (hit: 1 or 0) out of the counts (a lookup of
 * warming, not of a read). */
void lb__lcache_uncount(lb__lcache *c, int hit);
/* Store entry (ds, chunk): `n` bytes that stand for `raw` decoded bytes,
 * read from a source whose stamp was `stamp` before it was read. Does
 * nothing when another process is filling the same entry, the entry
 * is larger than the ring, or the file system has no memory left for it
 * (a warning says so, once per handle). */
void lb__lcache_put(lb__lcache *c, uint64_t ds, uint64_t chunk, uint64_t stamp,
                    const void *data, size_t n, uint64_t raw);
/* Forget entry (ds, chunk) (its chunk was rewritten). */
void lb__lcache_drop(lb__lcache *c, uint64_t ds, uint64_t chunk);

typedef struct lb__lcache_stats {
    uint64_t entries, bytes, raw_bytes, capacity;
    uint64_t max_entries; /* what the index holds at most */
    uint64_t declined; /* entries that are notes of declined chunks (raw 0) */
    uint64_t hits, misses, inserts, evictions, corrupt;
    uint64_t stale; /* entries dropped because their source changed */
    uint64_t my_hits, my_misses; /* this handle's */
    uint64_t memory;           /* the file's pages (it is sparse)      */
    uint64_t fs_free, fs_size; /* room left in, and size of, /dev/shm  */
} lb__lcache_stats;
void lb__lcache_get_stats(lb__lcache *c, lb__lcache_stats *out);

/* The file's path. */
const char *lb__lcache_path(const lb__lcache *c);

/* Tests: leave what a process killed mid-fill leaves (a reserved entry
 * that is never published), or hold the lock and never release it (a
 * process killed inside the lock). */
void lb__lcache_test_abandon_fill(lb__lcache *c, uint64_t ds, uint64_t chunk, size_t n);
void lb__lcache_test_take_lock(lb__lcache *c);
/* Tests: non-zero, every slot and record finds the file system full (as a
 * full /dev/shm does). */
extern int lb__lcache_test_no_room;
/* How long a lock is waited for before the cache is passed by, in ms
 * (default 2000; tests set it lower). */
extern int lb__lcache_lock_wait_ms;
/* Tests: how many times this process reset an index (a dead lock owner,
 * damage). */
extern _Atomic int lb__lcache_test_resets;


#endif /* LB_DATASET_LABEL_CACHE_H */
