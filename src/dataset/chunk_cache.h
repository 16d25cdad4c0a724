/*
 * chunk_cache.h — a bounded cache of decoded chunks for one dataset.
 */
#ifndef LB_DATASET_CHUNK_CACHE_H
#define LB_DATASET_CHUNK_CACHE_H

#include "core/util.h"

typedef struct lb__chunk_cache lb__chunk_cache;

/* Chunk cache (chunk_cache.c): an LRU of decoded full chunks keyed by the
 * linear chunk index, bounded in bytes, guarded by its own mutex. Chunks
 * live in fixed slots of one arena mapped and touched by lb__chunk_cache_new
 * (min(max_bytes / chunk_bytes, max_chunks) slots), so reads never fault in
 * fresh memory; absent chunks are remembered without a slot, their
 * bookkeeping counted against the limit. A miss decodes
 * straight into a reserved slot; no decode or copy runs under the lock.
 * `max_chunks` < 0: no cap on the slot count. */
int lb__chunk_cache_new(size_t max_bytes, size_t chunk_bytes, int64_t max_chunks,
                        lb__chunk_cache **out, lb_error *err);
void lb__chunk_cache_free(lb__chunk_cache *c);
/* A reader's hold on one cached chunk: `data` stays valid (never evicted,
 * reused or invalidated under it) until released or committed. */
typedef struct lb__cache_ref {
    void *entry;   /* NULL: nothing held */
    uint8_t *data; /* the chunk (lookup hit with data) or the slot to decode into (reserve) */
    int present;   /* lookup hit: 0 = the chunk is not stored (no data) */
} lb__cache_ref;
/* 1 on a hit: ref->present set and, when present, ref->data holds the
 * chunk until lb__chunk_cache_release(ref). 0 on a miss (also while another
 * reader is still decoding the chunk). */
int lb__chunk_cache_lookup(lb__chunk_cache *c, uint64_t key, lb__cache_ref *ref);
void lb__chunk_cache_release(lb__chunk_cache *c, lb__cache_ref *ref);
/* After a miss on a stored chunk: reserve a slot for `key` (evicting the
 * least recently used chunk when none is free) and return 1 with ref->data
 * = chunk_bytes to decode into; then lb__chunk_cache_commit(ref, ok) makes it
 * visible (ok) or drops it (the decode failed). 0 when no slot can be had
 * (the cache holds no slot, all are in use, or another reader is decoding
 * the chunk): decode elsewhere, nothing is cached. */
int lb__chunk_cache_reserve(lb__chunk_cache *c, uint64_t key, lb__cache_ref *ref);
void lb__chunk_cache_commit(lb__chunk_cache *c, lb__cache_ref *ref, int ok);
/* Remember that chunk `key` is not stored. */
void lb__chunk_cache_put_absent(lb__chunk_cache *c, uint64_t key);
/* Forget chunk `key` (its file is about to change); a reader holding it
 * keeps its bytes until it lets go. */
void lb__chunk_cache_invalidate(lb__chunk_cache *c, uint64_t key);
typedef struct lb__chunk_cache_stats {
    uint64_t hits, misses, evictions;
    size_t entries, bytes; /* bytes: what counts against the limit (the arena,
                              entries beyond one per slot) */
    int64_t slots, free_slots;
} lb__chunk_cache_stats;
void lb__chunk_cache_get_stats(lb__chunk_cache *c, lb__chunk_cache_stats *out);
#endif /* LB_DATASET_CHUNK_CACHE_H */
