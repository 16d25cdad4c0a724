/*
 * chunk_cache.c — a bounded LRU cache of decoded chunks (full chunk_bytes,
 * C order, native byte order) keyed by the linear chunk index, so repeated
 * and overlapping region reads decode each chunk once. One mutex guards it;
 * data is copied in and out so no caller holds a pointer into the cache.
 */
#include <pthread.h>
#include <stdlib.h>

#include "dataset.h"

typedef struct entry {
    uint64_t key;
    int present;
    uint8_t *data;             /* chunk_bytes, NULL when absent           */
    struct entry *prev, *next; /* LRU list: head = most recently used     */
    struct entry *hnext;       /* hash chain                              */
} entry;

struct lb__chunk_cache {
    pthread_mutex_t mu;
    size_t max_bytes, chunk_bytes, bytes, entries;
    entry **buckets;
    size_t nbuckets; /* power of two */
    entry *head, *tail;
    uint64_t hits, misses, evictions;
};

/* What an entry counts against the limit: absent chunks are cheap but not
 * free, so a sparse volume cannot grow the cache without bound. */
static size_t cost(const entry *e, size_t chunk_bytes) {
    return sizeof *e + 32 + (e->present ? chunk_bytes : 0);
}

static size_t bucket_of(uint64_t key, size_t nbuckets) {
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 17) & (nbuckets - 1);
}

int lb__chunk_cache_new(size_t max_bytes, size_t chunk_bytes, lb__chunk_cache **out,
                        lb_error *err) {
    *out = NULL;
    lb__chunk_cache *c = lb__calloc(1, sizeof *c, "a chunk cache", err);
    if (!c) return LB_ENOMEM;
    c->max_bytes = max_bytes;
    c->chunk_bytes = chunk_bytes;
    c->nbuckets = 64;
    c->buckets = lb__calloc(c->nbuckets, sizeof *c->buckets, "a chunk cache", err);
    if (!c->buckets) {
        free(c);
        return LB_ENOMEM;
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->buckets);
        free(c);
        return lb__err(err, LB_ENOMEM, "cannot create the chunk cache's mutex");
    }
    *out = c;
    return 0;
}

void lb__chunk_cache_free(lb__chunk_cache *c) {
    if (!c) return;
    entry *e = c->head;
    while (e) {
        entry *n = e->next;
        free(e->data);
        free(e);
        e = n;
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static entry *find(lb__chunk_cache *c, uint64_t key) {
    entry *e = c->buckets[bucket_of(key, c->nbuckets)];
    while (e && e->key != key) e = e->hnext;
    return e;
}

static void lru_unlink(lb__chunk_cache *c, entry *e) {
    if (e->prev) e->prev->next = e->next;
    else c->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(lb__chunk_cache *c, entry *e) {
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
}

/* Unlink e from its hash chain and the LRU list (caller frees it). */
static void detach(lb__chunk_cache *c, entry *e) {
    entry **pp = &c->buckets[bucket_of(e->key, c->nbuckets)];
    while (*pp != e) pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->bytes -= cost(e, c->chunk_bytes);
    c->entries--;
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

int lb__chunk_cache_get(lb__chunk_cache *c, uint64_t key, void *dst, int *present) {
    pthread_mutex_lock(&c->mu);
    entry *e = find(c, key);
    if (e) {
        lru_unlink(c, e);
        lru_push_front(c, e);
        *present = e->present;
        if (e->present) memcpy(dst, e->data, c->chunk_bytes);
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return e != NULL;
}

int lb__chunk_cache_get_box(lb__chunk_cache *c, uint64_t key, int ndim, size_t itemsize,
                            const int64_t *chunks, const int64_t *count, const int64_t *cstart,
                            void *dst, const int64_t *dst_shape, const int64_t *dst_start,
                            int *present) {
    pthread_mutex_lock(&c->mu);
    entry *e = find(c, key);
    if (e) {
        lru_unlink(c, e);
        lru_push_front(c, e);
        *present = e->present;
        /* Under the lock: eviction may free e->data as soon as it is released. */
        if (e->present)
            lb__copy_box(ndim, itemsize, count, e->data, chunks, cstart, dst, dst_shape,
                         dst_start);
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return e != NULL;
}

void lb__chunk_cache_put(lb__chunk_cache *c, uint64_t key, const void *src, int present) {
    entry *e = calloc(1, sizeof *e);
    if (!e) return;
    e->key = key;
    e->present = present && src;
    if (cost(e, c->chunk_bytes) > c->max_bytes) {
        free(e);
        return;
    }
    if (e->present) {
        /* Allocate and copy outside the lock. */
        e->data = malloc(c->chunk_bytes);
        if (!e->data) {
            free(e);
            return;
        }
        memcpy(e->data, src, c->chunk_bytes);
    }
    entry *evicted = NULL; /* chained through hnext, freed after unlocking */
    pthread_mutex_lock(&c->mu);
    entry *old = find(c, key);
    if (old) { /* another thread decoded it too: keep the newer copy */
        detach(c, old);
        old->hnext = evicted;
        evicted = old;
    }
    size_t b = bucket_of(key, c->nbuckets);
    e->hnext = c->buckets[b];
    c->buckets[b] = e;
    lru_push_front(c, e);
    c->bytes += cost(e, c->chunk_bytes);
    c->entries++;
    while (c->bytes > c->max_bytes && c->tail && c->tail != e) {
        entry *t = c->tail;
        detach(c, t);
        t->hnext = evicted;
        evicted = t;
        c->evictions++;
    }
    maybe_grow(c);
    pthread_mutex_unlock(&c->mu);
    while (evicted) {
        entry *n = evicted->hnext;
        free(evicted->data);
        free(evicted);
        evicted = n;
    }
}

void lb__chunk_cache_invalidate(lb__chunk_cache *c, uint64_t key) {
    pthread_mutex_lock(&c->mu);
    entry *e = find(c, key);
    if (e) detach(c, e);
    pthread_mutex_unlock(&c->mu);
    if (e) {
        free(e->data);
        free(e);
    }
}

void lb__chunk_cache_get_stats(lb__chunk_cache *c, lb__chunk_cache_stats *out) {
    pthread_mutex_lock(&c->mu);
    out->hits = c->hits;
    out->misses = c->misses;
    out->evictions = c->evictions;
    out->entries = c->entries;
    out->bytes = c->bytes;
    pthread_mutex_unlock(&c->mu);
}
