/*
 * chunk_cache.c — a bounded LRU cache of decoded chunks (full chunk_bytes,
 * C order, native byte order) keyed by the linear chunk index, so repeated
 * and overlapping region reads decode each chunk once.
 *
 * Decoded chunks live in fixed slots of one arena, mapped and touched when
 * the cache is made and reused on eviction: a read never waits for fresh
 * memory (a page fault per 4 KiB, each page zeroed by the kernel, costs more
 * than decoding the chunk: with a malloc per cached chunk, cold cached reads
 * ran several times slower than uncached ones), and nothing is copied into
 * the cache: a miss decodes straight into its slot. One mutex guards the
 * index; no decode and no copy runs under it. A slot being decoded or
 * copied out is pinned (never evicted or reused) until released.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dataset/chunk_cache.h"

enum { LOADING = 0, READY = 1 };

typedef struct entry {
    uint64_t key;
    int state;                 /* LOADING (a reader decodes into the slot) or READY */
    int present;               /* READY: 0 = the chunk is not stored (no slot)      */
    int dead;                  /* invalidated while pinned: freed at the last unpin */
    unsigned pins;             /* readers using the slot; LOADING holds one         */
    int64_t slot;              /* arena slot, -1 without one                        */
    struct entry *prev, *next; /* LRU list while READY and unpinned                 */
    struct entry *hnext;       /* hash chain                                        */
} entry;

/* The bookkeeping of a remembered chunk. One entry per slot comes with the
 * slot; entries beyond that (absent chunks) count against the limit, so a
 * sparse volume cannot grow the cache without bound. */
#define ENTRY_COST (sizeof(entry) + 32)

/* An LRU list: head = most recently used. */
typedef struct lru {
    entry *head, *tail;
} lru;

struct lb__chunk_cache {
    pthread_mutex_t mu;
    size_t max_bytes, chunk_bytes;
    uint8_t *arena;          /* nslots slots of `stride` bytes (NULL when 0)   */
    size_t arena_bytes, stride;
    int64_t nslots;
    int64_t *free_slots;     /* stack of unused slot numbers                   */
    int64_t nfree;
    entry **buckets;
    size_t nbuckets;         /* power of two */
    size_t entries;
    lru data, absent;        /* unpinned READY entries with / without data     */
    uint64_t hits, misses, evictions;
};

static size_t bucket_of(uint64_t key, size_t nbuckets) {
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 17) & (nbuckets - 1);
}

/* Map and touch `bytes` of private memory, preferring huge pages (one fault
 * and fewer TLB misses per chunk). Touching here is what keeps page faults
 * out of reads; the cost is paid once per cache. */
static uint8_t *arena_map(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, bytes, MADV_HUGEPAGE); /* advice only */
#endif
    int populated = 0;
#ifdef MADV_POPULATE_WRITE
    /* Linux >= 5.14; unlike touching, fails cleanly when memory runs out */
    if (madvise(p, bytes, MADV_POPULATE_WRITE) == 0) {
        populated = 1;
    } else if (errno != EINVAL) {
        munmap(p, bytes);
        return NULL;
    }
#endif
    if (!populated) {
        long ps = sysconf(_SC_PAGESIZE);
        size_t step = ps > 0 ? (size_t)ps : 4096;
        volatile uint8_t *v = p;
        for (size_t o = 0; o < bytes; o += step) v[o] = 0;
    }
    return p;
}

int lb__chunk_cache_new(size_t max_bytes, size_t chunk_bytes, int64_t max_chunks,
                        lb__chunk_cache **out, lb_error *err) {
    *out = NULL;
    lb__chunk_cache *c = lb__calloc(1, sizeof *c, "a chunk cache", err);
    if (!c) return LB_ENOMEM;
    c->max_bytes = max_bytes;
    c->chunk_bytes = chunk_bytes;
    /* Slots back to back: chunk_bytes is a multiple of the item size, so
     * every slot is aligned for it. As many as the limit holds, never more
     * than the dataset has chunks (a cache of the volume's decoded size
     * holds all of it). */
    c->stride = chunk_bytes ? chunk_bytes : 1;
    int64_t n = (int64_t)(max_bytes / c->stride);
    if (max_chunks >= 0 && n > max_chunks) n = max_chunks;
    c->nslots = n;
    c->arena_bytes = (size_t)n * c->stride;
    c->nbuckets = 64;
    int rc = 0;
    c->buckets = lb__calloc(c->nbuckets, sizeof *c->buckets, "a chunk cache", err);
    if (!c->buckets) {
        rc = LB_ENOMEM;
        goto fail;
    }
    if (n > 0) {
        c->arena = arena_map(c->arena_bytes);
        if (!c->arena) {
            rc = lb__err(err, LB_ENOMEM,
                         "cannot reserve %zu bytes of memory for a chunk cache (%lld chunks of %zu bytes): give it fewer bytes",
                         c->arena_bytes, (long long)n, chunk_bytes);
            goto fail;
        }
        c->free_slots = lb__calloc((size_t)n, sizeof *c->free_slots, "a chunk cache", err);
        if (!c->free_slots) {
            rc = LB_ENOMEM;
            goto fail;
        }
        /* Pop order = slot order: the first chunks land at the arena's start. */
        for (int64_t i = 0; i < n; i++) c->free_slots[i] = n - 1 - i;
        c->nfree = n;
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        rc = lb__err(err, LB_ENOMEM, "cannot create the chunk cache's mutex");
        goto fail;
    }
    *out = c;
    return 0;
fail:
    if (c->arena) munmap(c->arena, c->arena_bytes);
    free(c->free_slots);
    free(c->buckets);
    free(c);
    return rc;
}

void lb__chunk_cache_free(lb__chunk_cache *c) {
    if (!c) return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        entry *e = c->buckets[i];
        while (e) {
            entry *n = e->hnext;
            free(e);
            e = n;
        }
    }
    if (c->arena) munmap(c->arena, c->arena_bytes);
    free(c->free_slots);
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static entry *find(lb__chunk_cache *c, uint64_t key) {
    entry *e = c->buckets[bucket_of(key, c->nbuckets)];
    while (e && e->key != key) e = e->hnext;
    return e;
}

static lru *list_of(lb__chunk_cache *c, const entry *e) {
    return e->present ? &c->data : &c->absent;
}

static void lru_unlink(lru *l, entry *e) {
    if (e->prev) e->prev->next = e->next;
    else l->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else l->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(lru *l, entry *e) {
    e->prev = NULL;
    e->next = l->head;
    if (l->head) l->head->prev = e;
    l->head = e;
    if (!l->tail) l->tail = e;
}

/* What counts against the limit: the arena and the entries beyond one per
 * slot. */
static size_t bytes_used(const lb__chunk_cache *c) {
    size_t extra = c->entries > (size_t)c->nslots ? c->entries - (size_t)c->nslots : 0;
    return c->arena_bytes + extra * ENTRY_COST;
}

static void slot_free(lb__chunk_cache *c, entry *e) {
    if (e->slot >= 0) c->free_slots[c->nfree++] = e->slot;
    e->slot = -1;
}

/* Take an unpinned READY entry out of its list and the hash table, give its
 * slot back and free it. */
static void drop(lb__chunk_cache *c, entry *e) {
    lru_unlink(list_of(c, e), e);
    entry **pp = &c->buckets[bucket_of(e->key, c->nbuckets)];
    while (*pp != e) pp = &(*pp)->hnext;
    *pp = e->hnext;
    c->entries--;
    slot_free(c, e);
    free(e);
}

/* Remove a (pinned) entry from the hash table only; the last unpin frees it. */
static void unhash(lb__chunk_cache *c, entry *e) {
    entry **pp = &c->buckets[bucket_of(e->key, c->nbuckets)];
    while (*pp != e) pp = &(*pp)->hnext;
    *pp = e->hnext;
    c->entries--;
    e->dead = 1;
}

/* Absent entries first (cheapest to find again), then the least recently
 * used chunks, until the entries fit the limit. */
static void trim(lb__chunk_cache *c) {
    while (bytes_used(c) > c->max_bytes) {
        entry *t = c->absent.tail ? c->absent.tail : c->data.tail;
        if (!t) return; /* everything pinned: over by a few entries for now */
        drop(c, t);
        c->evictions++;
    }
}

/* Double the bucket array when chains get long; failure just keeps the
 * longer chains. */
static void maybe_grow(lb__chunk_cache *c) {
    if (c->entries <= c->nbuckets * 2 || c->nbuckets >= ((size_t)1 << 24)) return;
    size_t nb = c->nbuckets * 2;
    entry **b = calloc(nb, sizeof *b);
    if (!b) return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        entry *e = c->buckets[i];
        while (e) {
            entry *n = e->hnext;
            size_t j = bucket_of(e->key, nb);
            e->hnext = b[j];
            b[j] = e;
            e = n;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

static entry *insert(lb__chunk_cache *c, uint64_t key) {
    entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->key = key;
    e->slot = -1;
    size_t b = bucket_of(key, c->nbuckets);
    e->hnext = c->buckets[b];
    c->buckets[b] = e;
    c->entries++;
    maybe_grow(c);
    return e;
}

int lb__chunk_cache_lookup(lb__chunk_cache *c, uint64_t key, lb__cache_ref *ref) {
    ref->entry = NULL;
    ref->data = NULL;
    ref->present = 0;
    pthread_mutex_lock(&c->mu);
    entry *e = find(c, key);
    int hit = e && e->state == READY;
    if (hit) {
        ref->present = e->present;
        if (e->present) {
            /* Pinned entries leave the LRU list: eviction never sees them. */
            if (e->pins++ == 0) lru_unlink(&c->data, e);
            ref->entry = e;
            ref->data = c->arena + (size_t)e->slot * c->stride;
        } else {
            lru_unlink(&c->absent, e);
            lru_push_front(&c->absent, e);
        }
        c->hits++;
    } else {
        c->misses++; /* a chunk another reader is decoding counts too */
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

/* Unpin; the last reader puts the entry back at the front of the LRU list,
 * or frees it when it was invalidated meanwhile. */
static void unpin(lb__chunk_cache *c, entry *e) {
    if (--e->pins > 0) return;
    if (e->dead) {
        slot_free(c, e);
        free(e);
    } else {
        lru_push_front(&c->data, e);
    }
}

void lb__chunk_cache_release(lb__chunk_cache *c, lb__cache_ref *ref) {
    entry *e = ref->entry;
    if (!e) return;
    pthread_mutex_lock(&c->mu);
    unpin(c, e);
    pthread_mutex_unlock(&c->mu);
    ref->entry = NULL;
    ref->data = NULL;
}

int lb__chunk_cache_reserve(lb__chunk_cache *c, uint64_t key, lb__cache_ref *ref) {
    ref->entry = NULL;
    ref->data = NULL;
    ref->present = 1;
    if (c->nslots == 0) return 0;
    pthread_mutex_lock(&c->mu);
    entry *e = NULL;
    if (find(c, key)) goto done; /* another reader got there first */
    if (c->nfree == 0) {
        entry *t = c->data.tail; /* the least recently used chunk */
        if (!t) goto done;       /* every slot pinned */
        drop(c, t);
        c->evictions++;
    }
    e = insert(c, key);
    if (!e) goto done;
    e->state = LOADING;
    e->present = 1;
    e->pins = 1;
    e->slot = c->free_slots[--c->nfree];
    ref->entry = e;
    ref->data = c->arena + (size_t)e->slot * c->stride;
    trim(c);
done:
    pthread_mutex_unlock(&c->mu);
    return e != NULL;
}

void lb__chunk_cache_commit(lb__chunk_cache *c, lb__cache_ref *ref, int ok) {
    entry *e = ref->entry;
    if (!e) return;
    pthread_mutex_lock(&c->mu);
    if (!ok && !e->dead) unhash(c, e); /* a failed decode leaves nothing */
    e->state = READY;
    unpin(c, e);
    pthread_mutex_unlock(&c->mu);
    ref->entry = NULL;
    ref->data = NULL;
}

void lb__chunk_cache_put_absent(lb__chunk_cache *c, uint64_t key) {
    pthread_mutex_lock(&c->mu);
    if (!find(c, key) && (c->entries < (size_t)c->nslots ||
                          ENTRY_COST <= c->max_bytes - c->arena_bytes)) {
        entry *e = insert(c, key);
        if (e) {
            e->state = READY;
            lru_push_front(&c->absent, e);
            trim(c);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

void lb__chunk_cache_invalidate(lb__chunk_cache *c, uint64_t key) {
    pthread_mutex_lock(&c->mu);
    entry *e = find(c, key);
    if (e) {
        if (e->pins == 0) drop(c, e); /* READY and unpinned */
        else unhash(c, e);            /* in use: freed at the last unpin */
    }
    pthread_mutex_unlock(&c->mu);
}

void lb__chunk_cache_get_stats(lb__chunk_cache *c, lb__chunk_cache_stats *out) {
    pthread_mutex_lock(&c->mu);
    out->hits = c->hits;
    out->misses = c->misses;
    out->evictions = c->evictions;
    out->entries = c->entries;
    out->bytes = bytes_used(c);
    out->slots = c->nslots;
    out->free_slots = c->nfree;
    pthread_mutex_unlock(&c->mu);
}
