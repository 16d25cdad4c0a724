/*
 * dataset.c — one stored array of any format: opening by probing the
 * formats, creation (new / overwrite / resume), chunk I/O through the store
 * and the codec chain (sharded arrays read by byte ranges: the shard's index,
 * then the inner chunks a read needs), region reads (in parallel, through an
 * optional cache of decoded chunks) and region writes.
 */
#include "dataset/dataset.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/sharding.h"
#include "core/json.h"
#include "core/nd.h"
#include "core/path.h"
#include "dataset/chunk_cache.h"
#include "dataset/label_cache.h"
#include "kernels/cseg.h"
#include "format/common.h"

static void io_pool_free(lb__io_pool *p);
static int io_pool_new(lb__io_pool **out, lb_error *err);
static void index_cache_free(lb__index_cache *c);
static int index_cache_new(lb__index_cache **out, lb_error *err);

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

const lb__format *lb__format_of(lb_format f) {
    switch (f) {
    case LB_FORMAT_ZARR2: return &lb__format_zarr2;
    case LB_FORMAT_N5: return &lb__format_n5;
    case LB_FORMAT_ZARR3: return &lb__format_zarr3;
    }
    return NULL;
}

void lb__dataset_fill(const lb__dataset *d, void *dst, size_t nbytes) {
    lb__nd_fill(dst, nbytes, d->fill, d->itemsize);
}

int lb__dataset_chunk_extent(const lb__dataset *d, const int64_t *cidx, int64_t *ext) {
    int edge = 0;
    for (int k = 0; k < d->ndim; k++) {
        int64_t o = cidx[k] * d->schunks[k];
        int64_t e = d->shape[k] - o;
        if (e > d->schunks[k]) e = d->schunks[k];
        if (e < 0) e = 0;
        ext[k] = e;
        edge |= e < d->schunks[k];
    }
    return edge;
}

uint64_t lb__dataset_chunk_linear(const lb__dataset *d, const int64_t *cidx) {
    uint64_t key = 0;
    for (int k = 0; k < d->ndim; k++) key = key * (uint64_t)d->grid[k] + (uint64_t)cidx[k];
    return key;
}

static uint64_t shard_linear(const lb__dataset *d, const int64_t *sidx) {
    uint64_t key = 0;
    for (int k = 0; k < d->ndim; k++) key = key * (uint64_t)d->sgrid[k] + (uint64_t)sidx[k];
    return key;
}

const lb__chain *lb__dataset_read_chain(const lb__dataset *d) {
    return d->sharding ? d->sharding->inner : d->m.chain;
}

static void dims_text(const int64_t *v, int n, char *buf, size_t size) {
    size_t len = 0;
    len += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? ", " : "", (long long)v[i]);
    if (len < size) snprintf(buf + len, size - len, "]");
}

void lb__dataset_fill_json(const lb__dataset *d, char *buf, size_t size) {
    if (!size) return;
    if (d->m.fill_null) snprintf(buf, size, "null");
    else lb__fill_text(d->dtype, d->fill, buf, size);
}

void lb__io_free(lb__io *io) {
    if (!io) return;
    lb__buf_free(&io->file);
    lb__buf_free(&io->chunk);
    lb__buf_free(&io->index);
    lb__buf_free(&io->cseg);
    lb__buf_free(&io->arena);
    lb__codec_scratch_free(&io->codec);
}

/* ------------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------------ */

void lb__dataset_free(lb__dataset *d) {
    if (!d) return;
    lb__chunk_cache_free(d->cache);
    lb__lcache_close(d->lcache);
    free(d->lc_seen);
    index_cache_free(d->index_cache);
    io_pool_free(d->io_pool);
    lb__array_meta_clear(&d->m);
    lb__store_free(d->store);
    free(d->path);
    free(d);
}

/* Fill the grids from the format's description. */
static int setup_grids(lb__dataset *d, lb_error *err) {
    const lb__array_meta *m = &d->m;
    char where[1200];
    snprintf(where, sizeof where, "%s/%s", d->path, d->format->meta_file);
    d->ndim = m->ndim;
    d->dtype = m->dtype;
    d->itemsize = m->itemsize;
    memcpy(d->shape, m->shape, sizeof d->shape);
    memcpy(d->fill, m->fill, sizeof d->fill);
    d->attrs = m->attrs;
    d->meta = m->meta;
    int rc = lb__chunk_repr_set(&d->srepr, d->ndim, m->chunks, d->itemsize, d->fill, err);
    if (rc) return lb__err_prefix(err, "%s", where);
    memcpy(d->schunks, m->chunks, sizeof d->schunks);
    d->schunk_bytes = d->srepr.nbytes;
    for (int k = 0; k < d->ndim; k++) d->sgrid[k] = lb__ceildiv(d->shape[k], d->schunks[k]);
    d->sharding = lb__chain_partial_sharding(m->chain);
    if (d->sharding) {
        memcpy(d->chunks, d->sharding->inner_shape, sizeof d->chunks);
        rc = lb__shard_grid(d->sharding, &d->srepr, d->per_shard, &d->shard_count, err);
        if (!rc) rc = lb__shard_index_size(d->sharding, d->shard_count, &d->index_bytes, err);
        if (rc) return lb__err_prefix(err, "%s", where);
    } else {
        memcpy(d->chunks, d->schunks, sizeof d->chunks);
    }
    rc = lb__chunk_repr_set(&d->rrepr, d->ndim, d->chunks, d->itemsize, d->fill, err);
    if (rc) return lb__err_prefix(err, "%s", where);
    d->chunk_bytes = d->rrepr.nbytes;
    for (int k = 0; k < d->ndim; k++) d->grid[k] = lb__ceildiv(d->shape[k], d->chunks[k]);
    return 0;
}

/* Open the array at `path` of `s`; takes `path`. */
static int open_at(lb__store *s, char *path, int writable, lb__dataset **out, lb_error *err) {
    *out = NULL;
    lb__dataset *d = lb__calloc(1, sizeof *d, "a dataset", err);
    if (!d) {
        free(path);
        return LB_ENOMEM;
    }
    d->store = lb__store_ref(s);
    d->path = path;
    d->writable = writable;
    if (writable && !lb__store_writable(s)) {
        int rc = lb__err(err, LB_EINVAL, "%s: %s stores are read-only", path,
                         lb__store_scheme(s));
        lb__dataset_free(d);
        return rc;
    }
    const lb__format *f = NULL;
    int rc = lb__format_detect(s, path, &f, err);
    if (!rc && !f) {
        int kind = lb__store_kind(s, path);
        rc = lb__err(err, LB_ENOTFOUND,
                     "%s: no Zarr v2 (.zarray), N5 (attributes.json with dimensions) or Zarr v3 "
                     "(zarr.json) array here%s",
                     path, kind == LB__KEY_NONE ? " (the path does not exist)" : "");
    }
    if (!rc) {
        d->format = f;
        rc = f->open(s, path, &d->m, err);
    }
    if (!rc) rc = setup_grids(d, err);
    if (!rc && d->sharding) rc = index_cache_new(&d->index_cache, err);
    /* Over a network every request waits: reads of a region keep several
     * in flight unless the caller chooses a thread count. */
    if (!rc && lb__store_concurrency(s) > 1) {
        rc = io_pool_new(&d->io_pool, err);
        d->store_threads = lb__store_concurrency(s);
        if (d->store_threads > LB__MAX_READ_THREADS) d->store_threads = LB__MAX_READ_THREADS;
    }
    if (rc) {
        lb__dataset_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int lb__dataset_open_at(lb__store *s, const char *path, int writable, lb__dataset **out,
                        lb_error *err) {
    *out = NULL;
    char *p = NULL;
    int rc = lb__path_normalize(path, &p, err);
    if (rc) return rc;
    return open_at(s, p, writable, out, err);
}

int lb__dataset_open(const char *url, int writable, lb__dataset **out, lb_error *err) {
    *out = NULL;
    lb__store *s = NULL;
    char *path = NULL;
    int rc = lb__store_open(url, &s, &path, err);
    if (rc) return rc;
    rc = open_at(s, path, writable, out, err);
    lb__store_free(s);
    return rc;
}

/* ------------------------------------------------------------------------
 * Creating
 * ------------------------------------------------------------------------ */

/* The keys of a metadata document that describe the array (not its user
 * attributes). */
static int array_key(const lb__format *f, const char *key) {
    static const char *const n5[] = {"dimensions", "blockSize", "dataType", "compression", NULL};
    if (f == &lb__format_n5) {
        for (int i = 0; n5[i]; i++)
            if (strcmp(key, n5[i]) == 0) return 1;
        return 0;
    }
    return strcmp(key, "attributes") != 0;
}

/* A value for a message: lists of numbers as "[2, 4]", the rest as compact
 * JSON. */
static void json_text(json_object *v, char *buf, size_t size) {
    if (!v) {
        snprintf(buf, size, "absent");
        return;
    }
    if (json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v), len = 0;
        int numbers = 1;
        for (size_t i = 0; i < n; i++)
            numbers &= json_object_is_type(json_object_array_get_idx(v, i), json_type_int);
        if (numbers) {
            len += (size_t)snprintf(buf, size, "[");
            for (size_t i = 0; i < n && len < size; i++)
                len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "",
                                        lb__json_string(json_object_array_get_idx(v, i), 0));
            if (len < size) snprintf(buf + len, size - len, "]");
            return;
        }
    }
    snprintf(buf, size, "%s", lb__json_string(v, 0));
}

/* The first difference between an existing array's metadata and the one a
 * spec would write (empty when they agree). */
static void describe_difference(const lb__format *f, json_object *have, json_object *want,
                                char *buf, size_t size) {
    buf[0] = '\0';
    json_object *h = lb__meta_sorted_copy(have, NULL), *w = lb__meta_sorted_copy(want, NULL);
    for (int pass = 0; pass < 2 && !buf[0] && h && w; pass++) {
        json_object *a = pass ? w : h;
        json_object_object_foreach(a, key, val) {
            (void)val;
            if (!array_key(f, key)) continue;
            json_object *x = lb__json_get(h, key), *y = lb__json_get(w, key);
            if (json_object_equal(x, y)) continue;
            char xs[400], ys[400];
            json_text(x, xs, sizeof xs);
            json_text(y, ys, sizeof ys);
            snprintf(buf, size, "%s %s, requested %s", key, xs, ys);
            break;
        }
    }
    json_object_put(h);
    json_object_put(w);
}

static void to_create_spec(const lb__dataset_spec *in, lb__create_spec *out) {
    memset(out, 0, sizeof *out);
    out->ndim = in->ndim;
    memcpy(out->shape, in->shape, sizeof out->shape);
    memcpy(out->chunks, in->chunks, sizeof out->chunks);
    memcpy(out->inner, in->inner, sizeof out->inner);
    out->dtype = in->dtype;
    memcpy(out->fill, in->fill, sizeof out->fill);
    out->fill_null = in->fill_null;
    out->big_endian = in->big_endian;
    out->order_f = in->order_f;
    out->separator = in->separator;
    out->compressor = in->codec.id == LB__CODEC_RAW ? NULL : &in->codec;
    out->attrs = in->attrs;
    out->dim_names = in->dim_names;
}

int lb__dataset_create(const char *url, const lb__dataset_spec *spec, lb__create_mode mode,
                       lb__dataset **out, lb_error *err) {
    *out = NULL;
    lb__store *s = NULL;
    char *p = NULL;
    json_object *want = NULL;
    const lb__format *f = lb__format_of(spec->format);
    int rc = lb__store_open(url, &s, &p, err);
    if (rc) return rc;
    if (!f) {
        rc = lb__err(err, LB_EINVAL, "%s: unknown format %d", p, (int)spec->format);
        goto done;
    }
    if (spec->attrs && !json_object_is_type(spec->attrs, json_type_object)) {
        rc = lb__err(err, LB_EINVAL, "%s: attributes must be a JSON object", p);
        goto done;
    }
    lb__create_spec cs;
    to_create_spec(spec, &cs);
    /* The metadata document is built (and so validated) before anything is
     * written. */
    rc = f->build(&cs, &want, err);
    if (rc) {
        if (err && rc != LB_ENOMEM && !strstr(err->message, p)) lb__err_prefix(err, "%s", p);
        goto done;
    }

    int kind = lb__store_kind(s, p);
    if (mode == LB__CREATE_ATTACH && kind == LB__KEY_NONE) {
        rc = lb__err(err, LB_ENOTFOUND, "%s: no dataset to attach to", p);
        goto done;
    }
    if (kind != LB__KEY_NONE) {
        const lb__format *have_f = NULL;
        lb_error ignored = {0};
        lb__format_detect(s, p, &have_f, &ignored);
        int empty = kind == LB__KEY_PREFIX && lb__store_empty(s, p);
        if (mode == LB__CREATE_NEW) {
            rc = lb__err(err, LB_EEXIST, "%s: already exists", p);
            goto done;
        }
        if (mode == LB__CREATE_ATTACH && !have_f) {
            rc = lb__err(err, LB_ENOTFOUND, "%s: no dataset to attach to", p);
            goto done;
        }
        if (!have_f && !empty) {
            rc = lb__err(err, LB_EEXIST, "%s: exists and is not a dataset; refusing to replace it",
                         p);
            goto done;
        }
        if (mode == LB__CREATE_OVERWRITE && have_f) {
            if ((rc = lb__store_erase_tree(s, p, err))) goto done;
        } else if ((mode == LB__CREATE_RESUME || mode == LB__CREATE_ATTACH) && have_f) {
            lb__dataset *have = NULL;
            char *q = lb__strdup(p, err);
            if (!q) {
                rc = LB_ENOMEM;
                goto done;
            }
            if ((rc = open_at(s, q, 1, &have, err))) goto done;
            char diff[1024] = "";
            if (have->format != f)
                snprintf(diff, sizeof diff, "format %s, requested %s", have->format->title,
                         f->title);
            else
                describe_difference(f, have->m.meta, want, diff, sizeof diff);
            if (diff[0]) {
                lb__dataset_free(have);
                rc = lb__err(err, LB_EEXIST, "%s: exists with different metadata (%s)", p, diff);
                goto done;
            }
            /* Temporaries of the interrupted run are garbage now (but not
             * when attaching: they are other writers' chunks in flight). */
            if (mode == LB__CREATE_RESUME && (rc = lb__store_cleanup(s, p, err))) {
                lb__dataset_free(have);
                goto done;
            }
            *out = have;
            goto done;
        }
    }
    if ((rc = f->create(s, p, &cs, err))) goto done;
    rc = open_at(s, p, 1, out, err);
    p = NULL; /* owned by the dataset (or freed) now */
done:
    json_object_put(want);
    lb__store_free(s);
    free(p);
    return rc;
}

/* ------------------------------------------------------------------------
 * Attributes
 * ------------------------------------------------------------------------ */

int lb__dataset_set_attrs(lb__dataset *d, json_object *attrs, lb_error *err) {
    if (!d->writable) return lb__err(err, LB_EINVAL, "%s: the dataset was opened read-only", d->path);
    if (attrs && !json_object_is_type(attrs, json_type_object))
        return lb__err(err, LB_EINVAL, "%s: attributes must be a JSON object", d->path);
    int rc = d->format->set_attrs(d->store, d->path, &d->m, attrs, err);
    d->attrs = d->m.attrs;
    d->meta = d->m.meta;
    return rc;
}

int lb__dataset_group_attrs(const lb__dataset *d, const char *dir, json_object **out,
                            lb_error *err) {
    return d->format->group_attrs(d->store, dir, out, err);
}

/* ------------------------------------------------------------------------
 * Keys
 * ------------------------------------------------------------------------ */

int lb__dataset_chunk_key(const lb__dataset *d, const int64_t *cidx, char *buf, size_t size) {
    return d->format->chunk_key(&d->m, cidx, buf, size);
}

int lb__dataset_chunk_path(const lb__dataset *d, const int64_t *cidx, char *buf, size_t size) {
    int n = snprintf(buf, size, "%s/", d->path);
    size_t used = (size_t)n < size ? (size_t)n : size;
    int k = lb__dataset_chunk_key(d, cidx, size ? buf + used : buf, size ? size - used : 0);
    if (size && (size_t)n >= size) buf[size - 1] = '\0';
    return n + k;
}

/* The stored chunk's key in `stack` when it fits, else in a new allocation
 * (*heap, freed by the caller). */
static const char *chunk_path(const lb__dataset *d, const int64_t *cidx, char *stack, size_t size,
                              char **heap, lb_error *err) {
    *heap = NULL;
    int n = lb__dataset_chunk_path(d, cidx, stack, size);
    if ((size_t)n < size) return stack;
    *heap = lb__malloc((size_t)n + 1, "a chunk key", err);
    if (!*heap) return NULL;
    lb__dataset_chunk_path(d, cidx, *heap, (size_t)n + 1);
    return *heap;
}

static int check_sidx(const lb__dataset *d, const int64_t *cidx, lb_error *err) {
    for (int k = 0; k < d->ndim; k++)
        if (cidx[k] < 0 || cidx[k] >= d->sgrid[k])
            return lb__err(err, LB_EINVAL, "%s: chunk index %lld in dimension %d is outside the "
                           "grid (0..%lld)", d->path, (long long)cidx[k], k,
                           (long long)d->sgrid[k] - 1);
    return 0;
}

static int check_cidx(const lb__dataset *d, const int64_t *cidx, lb_error *err) {
    for (int k = 0; k < d->ndim; k++)
        if (cidx[k] < 0 || cidx[k] >= d->grid[k])
            return lb__err(err, LB_EINVAL, "%s: chunk index %lld in dimension %d is outside the "
                           "grid (0..%lld)", d->path, (long long)cidx[k], k,
                           (long long)d->grid[k] - 1);
    return 0;
}

int lb__dataset_chunk_exists(const lb__dataset *d, const int64_t *cidx) {
    char stack[1024], *heap;
    const char *p = chunk_path(d, cidx, stack, sizeof stack, &heap, NULL);
    int yes = p && lb__store_exists(d->store, p);
    free(heap);
    return yes;
}

/* ------------------------------------------------------------------------
 * Shard indexes: a small cache of decoded ones, so that a read touching
 * several inner chunks of a shard (or repeated reads) fetch its index once
 * ------------------------------------------------------------------------ */

#define INDEX_CACHE_SLOTS 64

typedef struct index_entry {
    uint64_t key;
    uint64_t *entries; /* 2 × shard_count, NULL for an absent shard */
    uint64_t used;     /* LRU clock; 0 = empty slot */
} index_entry;

/* Indexes being fetched: readers of the same shard wait for the one
 * fetching it instead of each sending the same request (over a network,
 * the threads of one region read all start on the same shards). */
#define INDEX_LOADING_SLOTS 64

struct lb__index_cache {
    pthread_mutex_t mu;
    pthread_cond_t loaded;
    uint64_t clock;
    index_entry slot[INDEX_CACHE_SLOTS];
    int n_loading;
    uint64_t loading[INDEX_LOADING_SLOTS];
};

static void index_cache_free(lb__index_cache *c) {
    if (!c) return;
    for (int i = 0; i < INDEX_CACHE_SLOTS; i++) free(c->slot[i].entries);
    pthread_cond_destroy(&c->loaded);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static int index_loading_at(const lb__index_cache *c, uint64_t key) {
    for (int j = 0; j < c->n_loading; j++)
        if (c->loading[j] == key) return j;
    return -1;
}

/* Copy inner chunk i's entry of shard `key` when cached: 1 hit. On a miss
 * (0) the caller fetches the index and must end with index_cache_put or
 * index_cache_unclaim; while another reader fetches it, wait for it. */
static int index_cache_get(lb__index_cache *c, uint64_t key, int64_t i, uint64_t *off,
                           uint64_t *nb, int *absent) {
    int hit = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        for (int s = 0; s < INDEX_CACHE_SLOTS; s++) {
            index_entry *e = &c->slot[s];
            if (!e->used || e->key != key) continue;
            e->used = ++c->clock;
            *absent = !e->entries;
            if (e->entries) {
                *off = e->entries[2 * i];
                *nb = e->entries[2 * i + 1];
            }
            hit = 1;
            break;
        }
        if (hit || index_loading_at(c, key) < 0) break;
        pthread_cond_wait(&c->loaded, &c->mu);
    }
    /* Claim the fetch (when the table is full, fetch unclaimed). */
    if (!hit && c->n_loading < INDEX_LOADING_SLOTS) c->loading[c->n_loading++] = key;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

/* Under the lock: shard `key` is no longer being fetched. */
static void index_unclaim_locked(lb__index_cache *c, uint64_t key) {
    int j = index_loading_at(c, key);
    if (j < 0) return;
    c->loading[j] = c->loading[--c->n_loading];
    pthread_cond_broadcast(&c->loaded);
}

/* The fetch of shard `key`'s index failed: let waiting readers try. */
static void index_cache_unclaim(lb__index_cache *c, uint64_t key) {
    pthread_mutex_lock(&c->mu);
    index_unclaim_locked(c, key);
    pthread_mutex_unlock(&c->mu);
}

/* Keep `entries` (taken; NULL = absent shard) for shard `key`. */
static void index_cache_put(lb__index_cache *c, uint64_t key, uint64_t *entries) {
    pthread_mutex_lock(&c->mu);
    index_unclaim_locked(c, key);
    index_entry *victim = &c->slot[0];
    for (int s = 0; s < INDEX_CACHE_SLOTS; s++) {
        index_entry *e = &c->slot[s];
        if (e->used && e->key == key) { /* another reader got there first */
            victim = NULL;
            break;
        }
        if (e->used < victim->used) victim = e;
    }
    if (victim) {
        free(victim->entries);
        victim->key = key;
        victim->entries = entries;
        victim->used = ++c->clock;
        entries = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    free(entries);
}

static void index_cache_drop(lb__index_cache *c, uint64_t key) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    for (int s = 0; s < INDEX_CACHE_SLOTS; s++) {
        index_entry *e = &c->slot[s];
        if (e->used && e->key == key) {
            free(e->entries);
            memset(e, 0, sizeof *e);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* The entry of inner chunk `inner` of shard `sidx` (key `p`): *absent when
 * the shard is not stored. */
static int shard_entry(const lb__dataset *d, const int64_t *sidx, const char *p, int64_t inner,
                       uint64_t *off, uint64_t *nb, int *absent, lb__io *io, lb_error *err) {
    uint64_t key = shard_linear(d, sidx);
    if (d->index_cache && index_cache_get(d->index_cache, key, inner, off, nb, absent)) return 0;
    /* The index by one range read: the last (or first) index_bytes. */
    lb__range r = {0, d->index_bytes, !d->sharding->index_at_start};
    uint64_t total = UINT64_MAX;
    uint64_t *entries = NULL;
    int rc = lb__store_get(d->store, p, &r, d->index_bytes, &io->index, &total, err);
    if (rc == LB_ENOTFOUND) {
        *absent = 1;
        if (d->index_cache) index_cache_put(d->index_cache, key, NULL);
        return 0;
    }
    if (rc) goto fail;
    if (io->index.size < d->index_bytes) {
        rc = lb__err(err, LB_EFORMAT, "%s: shard is %zu bytes, shorter than its %zu-byte index",
                     p, io->index.size, d->index_bytes);
        goto fail;
    }
    entries = malloc((size_t)d->shard_count * 16);
    if (!entries) {
        rc = lb__err(err, LB_ENOMEM, "out of memory reading a shard index");
        goto fail;
    }
    rc = lb__shard_index_decode(d->sharding, io->index.data, io->index.size, d->shard_count, total,
                                entries, &io->codec, err);
    if (rc) {
        lb__err_prefix(err, "%s", p);
        goto fail;
    }
    *absent = 0;
    *off = entries[2 * inner];
    *nb = entries[2 * inner + 1];
    if (d->index_cache) index_cache_put(d->index_cache, key, entries);
    else free(entries);
    return 0;
fail:
    free(entries);
    if (d->index_cache) index_cache_unclaim(d->index_cache, key);
    return rc;
}

/* ------------------------------------------------------------------------
 * Chunks
 * ------------------------------------------------------------------------ */

/* Where one read chunk's data goes: the whole chunk (chunk_bytes at
 * `whole`), or the box `cnt` at `cstart` of the chunk into `dst` (dims
 * dst_shape) at dst_start. */
typedef struct chunk_sink {
    uint8_t *whole;
    const int64_t *cstart, *cnt;
    uint8_t *dst;
    const int64_t *dst_shape, *dst_start;
} chunk_sink;

/* Copy the sink's part of a decoded full chunk. */
static void sink_copy(const lb__dataset *d, const chunk_sink *s, const uint8_t *chunk) {
    if (s->whole) {
        if (s->whole != chunk) memcpy(s->whole, chunk, d->chunk_bytes);
    } else {
        lb__nd_copy_box(d->ndim, d->itemsize, s->cnt, chunk, d->chunks, s->cstart, s->dst,
                        s->dst_shape, s->dst_start);
    }
}

/* Set the sink's part to the fill value (an absent chunk). */
static void sink_fill(const lb__dataset *d, const chunk_sink *s) {
    if (s->whole) {
        lb__dataset_fill(d, s->whole, d->chunk_bytes);
        return;
    }
    int n = d->ndim;
    if (n == 0) { /* one element */
        lb__dataset_fill(d, s->dst, d->itemsize);
        return;
    }
    for (int k = 0; k < n; k++)
        if (s->cnt[k] <= 0) return;
    /* Runs along the last dimension, odometer over the others. */
    size_t run = (size_t)s->cnt[n - 1] * d->itemsize;
    int64_t idx[LB_MAX_DIMS] = {0};
    for (;;) {
        size_t off = 0;
        for (int k = 0; k < n; k++)
            off = off * (size_t)s->dst_shape[k] + (size_t)(s->dst_start[k] + idx[k]);
        lb__dataset_fill(d, s->dst + off * d->itemsize, run);
        int j = n - 2;
        for (; j >= 0; j--) {
            if (++idx[j] < s->cnt[j]) break;
            idx[j] = 0;
        }
        if (j < 0) return;
    }
}

/* The key of stored chunk `cidx` with separator `sep` (Zarr v2), in
 * `stack` when it fits, else in *heap (freed by the caller). */
static const char *zarr2_key(const lb__dataset *d, const int64_t *cidx, char sep, char *stack,
                             size_t size, char **heap, lb_error *err) {
    lb__array_meta m = d->m; /* a shallow copy with the separator set */
    m.key_separator = sep;
    free(*heap);
    *heap = NULL;
    int n = snprintf(stack, size, "%s/", d->path);
    int k = d->format->chunk_key(&m, cidx, (size_t)n < size ? stack + n : stack,
                                 (size_t)n < size ? size - (size_t)n : 0);
    if ((size_t)n + (size_t)k < size) return stack;
    *heap = lb__malloc((size_t)n + (size_t)k + 1, "a chunk key", err);
    if (!*heap) return NULL;
    snprintf(*heap, (size_t)n + 1, "%s/", d->path);
    d->format->chunk_key(&m, cidx, *heap + n, (size_t)k + 1);
    return *heap;
}

static int mixed_layout(const lb__dataset *d, lb_error *err) {
    return lb__err(err, LB_EFORMAT,
                   "%s: chunks are stored both as flat keys and in nested directories, and "
                   ".zarray has no dimension_separator to say which layout is meant; add "
                   "\"dimension_separator\": \".\" or \"/\" to .zarray",
                   d->path);
}

/* Settle the layout on `sep` (a chunk was found under it); LB_EFORMAT when
 * another reader found one under the other layout. */
static int settle_layout(const lb__dataset *d, char sep, lb_error *err) {
    int expected = 0;
    atomic_int *known = &((lb__dataset *)d)->layout_sep; /* atomic: shared by readers */
    if (atomic_compare_exchange_strong(known, &expected, sep) || expected == sep) return 0;
    return mixed_layout(d, err);
}

/* A chunk of a Zarr v2 array without dimension_separator in a store that
 * cannot be listed: the layout comes from the first chunk found. Until
 * then a chunk is looked up as "0.0.0", then as "0/0/0" — one absent under
 * both is absent whatever the layout, so no guess reads stored chunks as
 * missing; the first one found under "0.0.0" is also looked for under
 * "0/0/0", and both present is refused as on a listed store. */
static int fetch_either_layout(const lb__dataset *d, const int64_t *cidx, int *present,
                               lb__io *io, char *stack, size_t size, char **heap,
                               const char **key, lb_error *err) {
    int known = atomic_load(&((lb__dataset *)d)->layout_sep);
    *present = 0;
    int rc = 0;
    if (known) {
        if (!(*key = zarr2_key(d, cidx, (char)known, stack, size, heap, err))) return LB_ENOMEM;
        rc = lb__store_get(d->store, *key, NULL, LB__MAX_CHUNK_FILE_BYTES, &io->file, NULL, err);
        *present = rc == 0;
        return rc == LB_ENOTFOUND ? 0 : rc;
    }
    if (!(*key = zarr2_key(d, cidx, '.', stack, size, heap, err))) return LB_ENOMEM;
    rc = lb__store_get(d->store, *key, NULL, LB__MAX_CHUNK_FILE_BYTES, &io->file, NULL, err);
    if (rc == 0) {
        /* Found as "0.0.0": is it also stored as "0/0/0"? Every reader that
         * finds a chunk before the layout is settled asks (at most one
         * wave of concurrent reads), so a mixed layout is refused as on a
         * listed store. */
        char ostack[1024], *oheap = NULL;
        const char *other = zarr2_key(d, cidx, '/', ostack, sizeof ostack, &oheap, err);
        uint64_t osize;
        int orc = other ? lb__store_size(d->store, other, &osize, err) : LB_ENOMEM;
        free(oheap);
        if (orc == 0) return mixed_layout(d, err);
        if (orc != LB_ENOTFOUND) return orc;
        *present = 1;
        return settle_layout(d, '.', err);
    }
    if (rc != LB_ENOTFOUND) return rc;
    if (!(*key = zarr2_key(d, cidx, '/', stack, size, heap, err))) return LB_ENOMEM;
    rc = lb__store_get(d->store, *key, NULL, LB__MAX_CHUNK_FILE_BYTES, &io->file, NULL, err);
    if (rc == LB_ENOTFOUND) return 0;
    if (rc) return rc;
    *present = 1;
    return settle_layout(d, '/', err); /* "0.0.0" of this chunk is absent */
}

/* The stored chunk (sharded: the shard) that holds read chunk `cidx`, into
 * sidx; returns the read chunk's index inside its shard (0 unsharded). */
static int64_t stored_index(const lb__dataset *d, const int64_t *cidx, int64_t *sidx) {
    int64_t inner = 0;
    for (int k = 0; k < d->ndim; k++) {
        if (d->sharding) {
            sidx[k] = cidx[k] / d->per_shard[k];
            inner = inner * d->per_shard[k] + cidx[k] % d->per_shard[k];
        } else {
            sidx[k] = cidx[k];
        }
    }
    return inner;
}

/* The stored bytes of read chunk `cidx` into io->file; *present = 0 when
 * they are not stored. *key receives the stored chunk's key (freed by the
 * caller through *heap when it did not fit `stack`). */
static int fetch_bytes(const lb__dataset *d, const int64_t *cidx, int *present, lb__io *io,
                       char *stack, size_t size, char **heap, const char **key, lb_error *err) {
    int64_t sidx[LB_MAX_DIMS];
    int64_t inner = stored_index(d, cidx, sidx);
    if (!d->sharding && d->format == &lb__format_zarr2 && !d->m.key_separator)
        return fetch_either_layout(d, sidx, present, io, stack, size, heap, key, err);
    *key = chunk_path(d, sidx, stack, size, heap, err);
    if (!*key) return LB_ENOMEM;
    int rc;
    if (!d->sharding) {
        rc = lb__store_get(d->store, *key, NULL, LB__MAX_CHUNK_FILE_BYTES, &io->file, NULL, err);
        if (rc == LB_ENOTFOUND) {
            *present = 0;
            return 0;
        }
        *present = !rc;
        return rc;
    }
    uint64_t off = 0, nb = 0;
    int absent = 0;
    rc = shard_entry(d, sidx, *key, inner, &off, &nb, &absent, io, err);
    if (rc) return rc;
    if (absent || off == LB__SHARD_EMPTY) {
        *present = 0;
        return 0;
    }
    if (nb > LB__MAX_CHUNK_FILE_BYTES)
        return lb__err(err, LB_ELIMIT, "%s: inner chunk %lld is %llu bytes, more than the limit",
                       *key, (long long)inner, (unsigned long long)nb);
    lb__range r = {off, nb, 0};
    rc = lb__store_get(d->store, *key, &r, (size_t)nb, &io->file, NULL, err);
    if (rc == LB_ENOTFOUND) /* the shard vanished since its index was read */
        return lb__err(err, LB_EIO, "%s: the shard disappeared while it was read", *key);
    *present = !rc;
    return rc;
}

/* ---- the label cache: read chunks kept encoded (kernels/cseg.h) ---- */

/* The stamp (lb__store_stamp) of the stored object that holds read chunk
 * `cidx`: its chunk file, or its shard. Zarr v2 without a separator whose
 * layout is not settled yet: the chunk under either key. */
static uint64_t chunk_stamp(const lb__dataset *d, const int64_t *cidx) {
    int64_t sidx[LB_MAX_DIMS];
    stored_index(d, cidx, sidx);
    char stack[1024], *heap = NULL;
    const char *key;
    uint64_t st;
    if (!d->sharding && d->format == &lb__format_zarr2 && !d->m.key_separator) {
        int known = atomic_load(&((lb__dataset *)d)->layout_sep);
        key = zarr2_key(d, sidx, known ? (char)known : '.', stack, sizeof stack, &heap, NULL);
        st = key ? lb__store_stamp(d->store, key) : LB__STAMP_UNKNOWN;
        free(heap);
        if (known || st != LB__STAMP_ABSENT) return st;
        heap = NULL;
        key = zarr2_key(d, sidx, '/', stack, sizeof stack, &heap, NULL);
    } else {
        key = chunk_path(d, sidx, stack, sizeof stack, &heap, NULL);
    }
    st = key ? lb__store_stamp(d->store, key) : LB__STAMP_UNKNOWN;
    free(heap);
    return st;
}

/* The stamp this array saw read chunk `key` with, + 1 (stamps are never
 * UINT64_MAX); 0 when it has not seen it since the cache was set or the
 * array last wrote it. */
static uint64_t lc_seen(const lb__dataset *d, uint64_t key) {
    return d->lc_seen && key < d->lc_nchunks
               ? atomic_load_explicit(&d->lc_seen[key], memory_order_relaxed)
               : 0;
}

/* Record `stamp` for read chunk `key` (LB__STAMP_ANY: forget it). */
static void lc_set_seen(const lb__dataset *d, uint64_t key, uint64_t stamp) {
    if (d->lc_seen && key < d->lc_nchunks)
        atomic_store_explicit(&d->lc_seen[key], stamp + 1, memory_order_relaxed);
}

/* A read chunk's box seen as 3-D (the last three dimensions; arrays of
 * fewer get leading extents of 1). Returns the offset in voxels, inside
 * the destination, of the box's leading (non-3-D) coordinates. */
static size_t box3(const lb__dataset *d, const int64_t *cstart, const int64_t *cnt,
                   const int64_t *dshape, const int64_t *dstart, lb__cseg_box *b) {
    int n = d->ndim, off = n - 3;
    for (int k = 0; k < 3; k++) {
        int j = k + off;
        b->cstart[k] = j < 0 ? 0 : cstart[j];
        b->cnt[k] = j < 0 ? 1 : cnt[j];
        b->dshape[k] = j < 0 ? 1 : dshape[j];
        b->dstart[k] = j < 0 ? 0 : dstart[j];
    }
    size_t lead = 0;
    if (off > 0) {
        for (int k = 0; k < off; k++) lead = lead * (size_t)dshape[k] + (size_t)dstart[k];
        lead *= (size_t)(dshape[n - 3] * dshape[n - 2] * dshape[n - 1]);
    }
    return lead;
}

/* Look read chunk `cidx` up in the label cache, appending it to *dst: 1
 * hit, 0 miss, LC_DECLINED (nothing appended) when the cache notes that the
 * chunk does not compress, LB_ENOMEM. An entry that is not a well-formed
 * encoding of this chunk is dropped and counts as a miss. `counted` 0:
 * the lookup is not a read's (warming) and is left out of the hit counts. */
#define LC_DECLINED 2
static int lc_lookup(const lb__dataset *d, const int64_t *cidx, lb__buf *dst, uint64_t *stamp,
                     int counted, lb_error *err) {
    uint64_t key = lb__dataset_chunk_linear(d, cidx);
    size_t at = dst->size;
    uint64_t seen = lc_seen(d, key);
    *stamp = seen ? seen - 1 : chunk_stamp(d, cidx);
    int hit = lb__lcache_get(d->lcache, d->lc_id, key, *stamp, dst);
    if (hit < 0) return lb__err(err, LB_ENOMEM, "out of memory for a cached chunk");
    if (!counted) lb__lcache_uncount(d->lcache, hit);
    if (hit && !seen) lc_set_seen(d, key, *stamp);
    /* A miss of a chunk seen before: what is there now is read, and
     * stamped anew before it is (LB__STAMP_ANY asks the caller to). */
    if (!hit && seen) *stamp = LB__STAMP_ANY;
    if (hit && lb__cseg_is_declined(dst->data + at, dst->size - at, d->lc_chunk, d->itemsize)) {
        if (counted) lb__lcache_count_as_miss(d->lcache); /* the chunk is decoded: not a hit */
        dst->size = at;
        return LC_DECLINED;
    }
    if (hit && !lb__cseg_valid(dst->data + at, dst->size - at, d->lc_chunk, d->itemsize)) {
        lb__lcache_drop(d->lcache, d->lc_id, key);
        dst->size = at;
        hit = 0;
    }
    return hit;
}

/* Room in io->cseg for the encoding of any chunk of d. */
static int reserve_cseg(const lb__dataset *d, lb__io *io, lb_error *err) {
    size_t bound = lb__cseg_bound(d->lc_chunk, d->itemsize);
    if (!bound) return lb__err(err, LB_ELIMIT, "%s: the chunks are too large to encode", d->path);
    return lb__buf_reserve(&io->cseg, bound, err) ? LB_ENOMEM : 0;
}

/* Encode decoded chunk `chunk` in full into io->cseg, for this read only
 * (nothing is stored), and append it to *dst unless dst is io->cseg itself. */
static int encode_for_read(const lb__dataset *d, const uint8_t *chunk, lb__io *io, lb__buf *dst,
                           lb_error *err) {
    int rc = reserve_cseg(d, io, err);
    if (rc) return rc;
    size_t n = lb__cseg_encode(chunk, d->lc_chunk, d->itemsize, io->cseg.data);
    if (!n) return lb__err(err, LB_ENOMEM, "out of memory encoding a chunk");
    io->cseg.size = n;
    if (dst && dst != &io->cseg) return lb__buf_append(dst, io->cseg.data, n, err);
    return 0;
}

/* Encode decoded read chunk `cidx` (NULL: absent, the fill value) into
 * io->cseg, store it in the label cache, and append it to *dst unless dst
 * is io->cseg itself (dst NULL: store only). A chunk whose encoding would
 * take more than a byte per voxel is declined: encoding it costs more than
 * decoding it again, so the cache keeps a note that it was declined (later
 * reads then decode it as without a cache) and LC_DECLINED is returned
 * with nothing appended. */
static int lc_store(const lb__dataset *d, const int64_t *cidx, const uint8_t *chunk,
                    uint64_t stamp, lb__io *io, lb__buf *dst, lb_error *err) {
    int rc = reserve_cseg(d, io, err);
    if (rc) return rc;
    uint64_t key = lb__dataset_chunk_linear(d, cidx);
    size_t n;
    if (chunk) {
        n = lb__cseg_encode_limit(chunk, d->lc_chunk, d->itemsize, io->cseg.data, 1);
        if (n == LB__CSEG_DECLINED) {
            lb__cseg_hdr note;
            size_t m = lb__cseg_encode_declined(d->lc_chunk, d->itemsize, &note);
            lb__lcache_put(d->lcache, d->lc_id, key, stamp, &note, m, 0);
            lc_set_seen(d, key, stamp);
            return LC_DECLINED;
        }
        if (!n) return lb__err(err, LB_ENOMEM, "out of memory encoding a chunk for the label cache");
    } else {
        uint64_t v = 0;
        memcpy(&v, d->fill, d->itemsize); /* little-endian hosts: the low bytes */
        n = lb__cseg_encode_uniform(v, d->lc_chunk, d->itemsize, io->cseg.data);
        ((lb__cseg_hdr *)(void *)io->cseg.data)->flags |= LB__CSEG_ABSENT;
    }
    io->cseg.size = n;
    lb__lcache_put(d->lcache, d->lc_id, key, stamp, io->cseg.data, n, d->chunk_bytes);
    lc_set_seen(d, key, stamp);
    if (dst && dst != &io->cseg && lb__buf_append(dst, io->cseg.data, n, err)) return LB_ENOMEM;
    return 0;
}

/* Decode read chunk `cidx`, fetched into io->file from `p`, into out
 * (chunk_bytes); an error names p and, in a shard, the inner chunk. */
static int decode_fetched(const lb__dataset *d, const int64_t *cidx, lb__io *io, const char *p,
                          uint8_t *out, lb_error *err) {
    int rc = lb__chain_decode(lb__dataset_read_chain(d), &d->rrepr, io->file.data, io->file.size,
                              out, &io->codec, err);
    if (rc && rc != LB_ENOMEM) {
        if (d->sharding) {
            char ix[256];
            dims_text(cidx, d->ndim, ix, sizeof ix);
            lb__err_prefix(err, "%s: inner chunk %s", p, ix);
        } else {
            lb__err_prefix(err, "%s", p);
        }
    }
    return rc;
}

/* Deliver the sink's part of an encoded read chunk. */
static void sink_cseg(const lb__dataset *d, const chunk_sink *s, const void *cseg) {
    lb__cseg_box b;
    if (s->whole) {
        for (int k = 0; k < 3; k++) {
            b.cstart[k] = b.dstart[k] = 0;
            b.cnt[k] = b.dshape[k] = d->lc_chunk[k];
        }
        lb__cseg_decode_box(cseg, &b, s->whole);
        return;
    }
    size_t lead = box3(d, s->cstart, s->cnt, s->dst_shape, s->dst_start, &b);
    lb__cseg_decode_box(cseg, &b, s->dst + lead * d->itemsize);
}

/* Deliver read chunk `cidx` into the sink; *present = 0 when it is not
 * stored (the sink then holds the fill value). With a cache: a hit copies
 * from the cached chunk; a miss decodes straight into a cache slot and
 * copies from there (when no slot can be had, into the sink or io->chunk as
 * without a cache). Decoding and copying run outside the cache's lock. */
static int fetch_chunk(const lb__dataset *d, const int64_t *cidx, const chunk_sink *s,
                       int *present, lb__io *io, lb_error *err) {
    lb__chunk_cache *cache = d->cache;
    uint64_t key = 0;
    lb__cache_ref ref = {NULL, NULL, 0};
    int encode = d->lcache != NULL;
    uint64_t stamp = LB__STAMP_ANY;
    if (d->lcache) {
        io->cseg.size = 0;
        int hit = lc_lookup(d, cidx, &io->cseg, &stamp, 1, err);
        if (hit < 0) return hit;
        if (hit == LC_DECLINED) encode = 0; /* read as without a cache */
        else if (hit) {
            const lb__cseg_hdr *h = (const lb__cseg_hdr *)(const void *)io->cseg.data;
            *present = !(h->flags & LB__CSEG_ABSENT);
            sink_cseg(d, s, io->cseg.data);
            return 0;
        }
    }
    if (cache) {
        key = lb__dataset_chunk_linear(d, cidx);
        if (lb__chunk_cache_lookup(cache, key, &ref)) {
            *present = ref.present;
            if (ref.present) sink_copy(d, s, ref.data);
            else sink_fill(d, s);
            lb__chunk_cache_release(cache, &ref);
            return 0;
        }
    }
    char stack[1024], *heap = NULL;
    const char *p = NULL;
    int stored = 0;
    if (encode && stamp == LB__STAMP_ANY) stamp = chunk_stamp(d, cidx); /* before it is read */
    int rc = fetch_bytes(d, cidx, &stored, io, stack, sizeof stack, &heap, &p, err);
    if (rc) goto done;
    if (!stored) {
        /* Absent: the fill value, in every format. */
        *present = 0;
        sink_fill(d, s);
        if (cache) lb__chunk_cache_put_absent(cache, key);
        if (d->lcache) rc = lc_store(d, cidx, NULL, stamp, io, NULL, err);
        goto done;
    }
    uint8_t *out;
    if (cache && lb__chunk_cache_reserve(cache, key, &ref)) {
        out = ref.data;
    } else if (s->whole) {
        out = s->whole; /* decoders write exactly chunk_bytes */
    } else {
        if ((rc = lb__buf_reserve(&io->chunk, d->chunk_bytes, err))) goto done;
        out = io->chunk.data;
    }
    rc = decode_fetched(d, cidx, io, p, out, err);
    if (!rc) {
        *present = 1;
        sink_copy(d, s, out); /* before commit: the slot is still ours */
    }
    if (ref.entry) lb__chunk_cache_commit(cache, &ref, rc == 0);
    if (!rc && encode && (rc = lc_store(d, cidx, out, stamp, io, NULL, err)) == LC_DECLINED)
        rc = 0;
done:
    free(heap);
    return rc;
}

static int read_chunk(const lb__dataset *d, const int64_t *cidx, void *dst, int *present,
                      lb__io *b, lb_error *err) {
    chunk_sink s = {dst, NULL, NULL, NULL, NULL, NULL};
    return fetch_chunk(d, cidx, &s, present, b, err);
}

static void forget_read_chunk(const lb__dataset *d, const int64_t *r);

/* A whole stored chunk, decoded (read-modify-write of region writes):
 * as it is in the store now, not as a cache holds it (another program may
 * have written it since: its change must not be undone). */
static int read_stored(const lb__dataset *d, const int64_t *sidx, void *dst, lb__io *io,
                       lb_error *err) {
    if (!d->sharding) {
        int present;
        forget_read_chunk(d, sidx);
        return read_chunk(d, sidx, dst, &present, io, err);
    }
    char stack[1024], *heap;
    const char *p = chunk_path(d, sidx, stack, sizeof stack, &heap, err);
    if (!p) return LB_ENOMEM;
    int rc = lb__store_get(d->store, p, NULL, LB__MAX_CHUNK_FILE_BYTES, &io->file, NULL, err);
    if (rc == LB_ENOTFOUND) {
        lb__dataset_fill(d, dst, d->schunk_bytes);
        rc = 0;
    } else if (!rc) {
        rc = lb__chain_decode(d->m.chain, &d->srepr, io->file.data, io->file.size, dst,
                              &io->codec, err);
        if (rc && rc != LB_ENOMEM) lb__err_prefix(err, "%s", p);
    }
    free(heap);
    return rc;
}

/* Read chunk `r` is stale from now on: its entries go, and the stamp
 * this array saw it with (the next read stamps it anew). */
static void forget_read_chunk(const lb__dataset *d, const int64_t *r) {
    uint64_t key = lb__dataset_chunk_linear(d, r);
    if (d->cache) lb__chunk_cache_invalidate(d->cache, key);
    if (d->lcache) lb__lcache_drop(d->lcache, d->lc_id, key);
    lc_set_seen(d, key, LB__STAMP_ANY);
}

static void forget_stored(const lb__dataset *d, const int64_t *sidx) {
    if (d->index_cache) index_cache_drop(d->index_cache, shard_linear(d, sidx));
    if (!d->cache && !d->lcache) return;
    if (!d->sharding) {
        forget_read_chunk(d, sidx);
        return;
    }
    int64_t r[LB_MAX_DIMS];
    for (int64_t i = 0; i < d->shard_count; i++) {
        int64_t j = i, ok = 1;
        for (int k = d->ndim - 1; k >= 0; k--) {
            r[k] = sidx[k] * d->per_shard[k] + j % d->per_shard[k];
            j /= d->per_shard[k];
            ok &= r[k] < d->grid[k];
        }
        if (ok) forget_read_chunk(d, r);
    }
}

int lb__dataset_put_chunk(const lb__dataset *d, const int64_t *cidx, const void *bytes,
                          size_t n, lb_error *err) {
    if (!d->writable) return lb__err(err, LB_EINVAL, "%s: the dataset was opened read-only", d->path);
    int rc = check_sidx(d, cidx, err);
    if (rc) return rc;
    char stack[1024], *heap;
    const char *p = chunk_path(d, cidx, stack, sizeof stack, &heap, err);
    if (!p) return LB_ENOMEM;
    forget_stored(d, cidx);
    rc = lb__store_put(d->store, p, bytes, n, err);
    /* Again once written: an entry of the chunk as it was, stored by
     * another process meanwhile, goes too. */
    forget_stored(d, cidx);
    free(heap);
    return rc;
}

static int write_chunk(const lb__dataset *d, const int64_t *cidx, const void *src,
                       size_t *out_bytes, lb__io *b, lb_error *err) {
    if (!d->writable) return lb__err(err, LB_EINVAL, "%s: the dataset was opened read-only", d->path);
    int64_t ext[LB_MAX_DIMS];
    lb__dataset_chunk_extent(d, cidx, ext);
    int rc = lb__chain_encode(d->m.chain, &d->srepr, ext, src, &b->file, &b->codec, err);
    if (rc) {
        if (rc != LB_ENOMEM) {
            char stack[1024], *heap;
            const char *p = chunk_path(d, cidx, stack, sizeof stack, &heap, NULL);
            lb__err_prefix(err, "%s", p ? p : d->path);
            free(heap);
        }
        return rc;
    }
    rc = lb__dataset_put_chunk(d, cidx, b->file.data, b->file.size, err);
    if (!rc && out_bytes) *out_bytes = b->file.size;
    return rc;
}

int lb__dataset_read_chunk(const lb__dataset *d, const int64_t *cidx, void *dst, int *present,
                           lb_error *err) {
    int rc = check_cidx(d, cidx, err);
    if (rc) return rc;
    lb__io b;
    memset(&b, 0, sizeof b);
    rc = read_chunk(d, cidx, dst, present, &b, err);
    lb__io_free(&b);
    return rc;
}

int lb__dataset_write_chunk_io(const lb__dataset *d, const int64_t *cidx, const void *src,
                               size_t *out_bytes, lb__io *io, lb_error *err) {
    int rc = check_sidx(d, cidx, err);
    if (rc) return rc;
    lb__io local;
    memset(&local, 0, sizeof local);
    rc = write_chunk(d, cidx, src, out_bytes, io ? io : &local, err);
    lb__io_free(&local);
    return rc;
}

int lb__dataset_write_chunk(const lb__dataset *d, const int64_t *cidx, const void *src,
                            size_t *out_bytes, lb_error *err) {
    return lb__dataset_write_chunk_io(d, cidx, src, out_bytes, NULL, err);
}

/* ------------------------------------------------------------------------
 * Regions
 * ------------------------------------------------------------------------ */

static int check_region(const lb__dataset *d, const int64_t *start, const int64_t *count,
                        int *empty, lb_error *err) {
    *empty = 0;
    for (int k = 0; k < d->ndim; k++) {
        if (start[k] < 0 || count[k] < 0 || start[k] > d->shape[k] ||
            count[k] > d->shape[k] - start[k]) {
            char sh[512];
            dims_text(d->shape, d->ndim, sh, sizeof sh);
            return lb__err(err, LB_EROI,
                           "%s: region start %lld count %lld in dimension %d is outside the shape %s",
                           d->path, (long long)start[k], (long long)count[k], k, sh);
        }
        if (count[k] == 0) *empty = 1;
    }
    return 0;
}

/* Visit every chunk of a grid (chunk shape `cs`) the region touches: for
 * each, the chunk index, the box inside the chunk (cstart, cnt) and its
 * place in the region (rstart). */
typedef int (*chunk_visit)(const lb__dataset *d, const int64_t *cidx, const int64_t *cstart,
                           const int64_t *rstart, const int64_t *cnt, void *ctx, lb_error *err);

/* The chunks a region touches: the chunk shape, the first chunk index and
 * the number of chunks per dimension, numbered 0 .. total - 1 in C order. */
typedef struct region_grid {
    const int64_t *cs;
    int64_t c0[LB_MAX_DIMS], nc[LB_MAX_DIMS], total;
} region_grid;

static void region_chunks(const lb__dataset *d, const int64_t *cs, const int64_t *start,
                          const int64_t *count, region_grid *g) {
    g->cs = cs;
    g->total = 1;
    for (int k = 0; k < d->ndim; k++) {
        g->c0[k] = start[k] / cs[k];
        g->nc[k] = (start[k] + count[k] - 1) / cs[k] - g->c0[k] + 1;
        g->total *= g->nc[k]; /* <= the grid's chunk count, which fits */
    }
}

/* Visit chunk number i of the region's grid. */
static int visit_chunk(const lb__dataset *d, const int64_t *start, const int64_t *count,
                       const region_grid *g, int64_t i, chunk_visit fn, void *ctx,
                       lb_error *err) {
    int64_t cidx[LB_MAX_DIMS], cstart[LB_MAX_DIMS], rstart[LB_MAX_DIMS], cnt[LB_MAX_DIMS];
    for (int k = d->ndim - 1; k >= 0; k--) {
        cidx[k] = g->c0[k] + i % g->nc[k];
        i /= g->nc[k];
    }
    for (int k = 0; k < d->ndim; k++) {
        int64_t o = cidx[k] * g->cs[k];
        int64_t lo = start[k] > o ? start[k] : o;
        int64_t end = start[k] + count[k], cend = o + g->cs[k];
        int64_t hi = end < cend ? end : cend;
        cstart[k] = lo - o;
        rstart[k] = lo - start[k];
        cnt[k] = hi - lo;
    }
    return fn(d, cidx, cstart, rstart, cnt, ctx, err);
}

typedef struct region_ctx {
    const int64_t *count; /* region shape */
    uint8_t *chunk;       /* write: one full stored chunk */
    lb__io *io;
    void *dst;            /* read */
    const void *src;      /* write */
} region_ctx;

/* Where the whole read chunk at rstart (cnt == chunks) starts in the region
 * buffer, when it lands there as one contiguous run of bytes: every
 * dimension after the first spans the chunk, the region and the chunk
 * alike. NULL otherwise. */
static uint8_t *contiguous_in_region(const lb__dataset *d, const region_ctx *c,
                                     const int64_t *rstart, const int64_t *cnt) {
    size_t offset = (size_t)rstart[0];
    for (int k = 0; k < d->ndim; k++) {
        if (cnt[k] != d->chunks[k]) return NULL;
        if (k > 0) {
            if (c->count[k] != d->chunks[k] || rstart[k] != 0) return NULL;
            offset *= (size_t)c->count[k];
        }
    }
    return (uint8_t *)c->dst + offset * d->itemsize;
}

static int read_visit(const lb__dataset *d, const int64_t *cidx, const int64_t *cstart,
                      const int64_t *rstart, const int64_t *cnt, void *vctx, lb_error *err) {
    region_ctx *c = vctx;
    int present;
    chunk_sink s = {NULL, cstart, cnt, (uint8_t *)c->dst, c->count, rstart};
    /* A whole chunk landing contiguously in dst is decoded straight there. */
    s.whole = d->ndim > 0 ? contiguous_in_region(d, c, rstart, cnt) : NULL;
    return fetch_chunk(d, cidx, &s, &present, c->io, err);
}

static int write_visit(const lb__dataset *d, const int64_t *cidx, const int64_t *cstart,
                       const int64_t *rstart, const int64_t *cnt, void *vctx, lb_error *err) {
    region_ctx *c = vctx;
    int64_t ext[LB_MAX_DIMS];
    int edge = lb__dataset_chunk_extent(d, cidx, ext);
    int whole = 1;
    for (int k = 0; k < d->ndim; k++) whole &= cstart[k] == 0 && cnt[k] == ext[k];
    int rc = 0;
    if (!whole) rc = read_stored(d, cidx, c->chunk, c->io, err); /* read-modify-write */
    else if (edge) lb__dataset_fill(d, c->chunk, d->schunk_bytes);
    if (rc) return rc;
    lb__nd_copy_box(d->ndim, d->itemsize, cnt, c->src, c->count, rstart, c->chunk, d->schunks,
                    cstart);
    return write_chunk(d, cidx, c->chunk, NULL, c->io, err);
}

/* Walk the chunks of a region with `visit` (reads: the read grid; writes:
 * the stored grid), with the scratch chunk and buffers of `io` (NULL: this
 * call's own). */
static int region_io(const lb__dataset *d, const int64_t *start, const int64_t *count,
                     void *dst, const void *src, chunk_visit visit, lb__io *io,
                     lb_error *err) {
    int empty;
    int rc = check_region(d, start, count, &empty, err);
    if (rc || empty) return rc;
    lb__io local;
    memset(&local, 0, sizeof local);
    region_ctx c;
    memset(&c, 0, sizeof c);
    c.count = count;
    c.dst = dst;
    c.src = src;
    c.io = io ? io : &local;
    /* Writes assemble each stored chunk in io->chunk; reads take it when
     * needed. */
    if (src) rc = lb__buf_reserve(&c.io->chunk, d->schunk_bytes, err);
    if (!rc) {
        c.chunk = c.io->chunk.data;
        region_grid g;
        region_chunks(d, src ? d->schunks : d->chunks, start, count, &g);
        for (int64_t i = 0; i < g.total && !rc; i++)
            rc = visit_chunk(d, start, count, &g, i, visit, &c, err);
    }
    lb__io_free(&local);
    return rc;
}

/* ---- parallel reads: the chunks of one region shared out between threads */

/* Working memory of read workers, kept between reads. Worker threads are
 * new for every read, and buffers they allocate and free per read are
 * handed back to the system and faulted in again (zeroed page by page) the
 * next time: with 2 threads that made reads slower than with one. */
struct lb__io_pool {
    pthread_mutex_t mu;
    int n;
    lb__io *free[LB__MAX_READ_THREADS];
};

static int io_pool_new(lb__io_pool **out, lb_error *err) {
    lb__io_pool *p = lb__calloc(1, sizeof *p, "read buffers", err);
    if (!p) return LB_ENOMEM;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return lb__err(err, LB_ENOMEM, "cannot create a mutex for read buffers");
    }
    *out = p;
    return 0;
}

static void io_pool_free(lb__io_pool *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        lb__io_free(p->free[i]);
        free(p->free[i]);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* A kept lb__io, or a new empty one (NULL when out of memory). */
static lb__io *io_pool_take(lb__io_pool *p) {
    lb__io *io = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->n > 0) io = p->free[--p->n];
    pthread_mutex_unlock(&p->mu);
    return io ? io : calloc(1, sizeof *io);
}

/* Keep `io` for the next read (at most LB__MAX_READ_THREADS are kept). */
static void io_pool_give(lb__io_pool *p, lb__io *io) {
    if (!io) return;
    pthread_mutex_lock(&p->mu);
    int kept = p->n < LB__MAX_READ_THREADS;
    if (kept) p->free[p->n++] = io;
    pthread_mutex_unlock(&p->mu);
    if (!kept) {
        lb__io_free(io);
        free(io);
    }
}

typedef struct par_read {
    const lb__dataset *d;
    const int64_t *start, *count;
    const region_grid *grid;
    region_ctx ctx[LB__MAX_READ_THREADS]; /* per worker: own I/O buffers */
    lb__io *pooled[LB__MAX_READ_THREADS]; /* taken from d->io_pool, given back */
    lb_error err[LB__MAX_READ_THREADS];
} par_read;

static int par_read_chunk(void *user, int worker, int64_t i) {
    par_read *pr = user;
    region_ctx *c = &pr->ctx[worker];
    if (!c->io) {
        c->io = pr->pooled[worker] = io_pool_take(pr->d->io_pool);
        if (!c->io) return lb__err(&pr->err[worker], LB_ENOMEM, "out of memory for read buffers");
    }
    /* Chunks cover disjoint boxes of dst; the caches lock themselves. */
    return visit_chunk(pr->d, pr->start, pr->count, pr->grid, i, read_visit, c,
                       &pr->err[worker]);
}

/* Read the region's chunks with up to `threads` threads; worker 0
 * (the caller) uses the caller's buffers when given, the others (and worker
 * 0 otherwise) the dataset's kept ones. */
static int read_parallel(const lb__dataset *d, int threads, const int64_t *start,
                         const int64_t *count, const region_grid *g, void *dst, lb__io *io,
                         lb_error *err) {
    par_read *pr = lb__calloc(1, sizeof *pr, "parallel read state", err);
    if (!pr) return LB_ENOMEM;
    pr->d = d;
    pr->start = start;
    pr->count = count;
    pr->grid = g;
    for (int w = 0; w < LB__MAX_READ_THREADS; w++) {
        pr->ctx[w].count = count;
        pr->ctx[w].dst = dst;
    }
    pr->ctx[0].io = io; /* NULL: taken from the pool on first use */
    int failed = 0;
    int rc = lb__parallel_for(threads, g->total, par_read_chunk, pr, &failed);
    if (rc && err) *err = pr->err[failed];
    for (int w = 0; w < LB__MAX_READ_THREADS; w++) io_pool_give(d->io_pool, pr->pooled[w]);
    free(pr);
    return rc;
}

int lb__dataset_read_io(const lb__dataset *d, const int64_t *start, const int64_t *count,
                        void *dst, lb__io *io, lb_error *err) {
    int threads = d->read_threads ? d->read_threads : d->store_threads;
    if (threads > 1 && d->io_pool && d->ndim > 0) {
        int empty;
        int rc = check_region(d, start, count, &empty, err);
        if (rc || empty) return rc;
        region_grid g;
        region_chunks(d, d->chunks, start, count, &g);
        if (g.total > 1) return read_parallel(d, threads, start, count, &g, dst, io, err);
    }
    return region_io(d, start, count, dst, NULL, read_visit, io, err);
}

int lb__dataset_read(const lb__dataset *d, const int64_t *start, const int64_t *count, void *dst,
                     lb_error *err) {
    return lb__dataset_read_io(d, start, count, dst, NULL, err);
}

int lb__dataset_write(lb__dataset *d, const int64_t *start, const int64_t *count, const void *src,
                      lb_error *err) {
    if (!d->writable) return lb__err(err, LB_EINVAL, "%s: the dataset was opened read-only", d->path);
    return region_io(d, start, count, NULL, src, write_visit, NULL, err);
}

/* ------------------------------------------------------------------------
 * Settings
 * ------------------------------------------------------------------------ */

int lb__dataset_set_threads(lb__dataset *d, int threads, lb_error *err) {
    if (threads == 0) threads = lb__ncpu();
    if (threads < 1)
        return lb__err(err, LB_EINVAL, "read threads must be >= 1 (or 0 for one per CPU), not %d",
                       threads);
    if (threads > 1 && !d->io_pool) {
        int rc = io_pool_new(&d->io_pool, err);
        if (rc) return rc;
    }
    d->read_threads = threads < LB__MAX_READ_THREADS ? threads : LB__MAX_READ_THREADS;
    return 0;
}

int lb__dataset_set_cache(lb__dataset *d, size_t bytes, lb_error *err) {
    lb__chunk_cache_free(d->cache);
    d->cache = NULL;
    if (bytes == 0) return 0;
    lb__lcache_close(d->lcache); /* one cache or the other */
    d->lcache = NULL;
    free(d->lc_seen);
    d->lc_seen = NULL;
    int64_t n = 1;
    for (int k = 0; k < d->ndim; k++)
        if (lb__mul_i64(n, d->grid[k], &n)) n = -1;
    return lb__chunk_cache_new(bytes, d->chunk_bytes, n, &d->cache, err);
}

/* Shard indexes are kept from the start: a few KiB each, at most
 * INDEX_CACHE_SLOTS of them, and every sharded read needs them. */
static int index_cache_new(lb__index_cache **out, lb_error *err) {
    lb__index_cache *c = lb__calloc(1, sizeof *c, "a shard index cache", err);
    if (!c) return LB_ENOMEM;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return lb__err(err, LB_ENOMEM, "cannot create a mutex");
    }
    if (pthread_cond_init(&c->loaded, NULL) != 0) {
        pthread_mutex_destroy(&c->mu);
        free(c);
        return lb__err(err, LB_ENOMEM, "cannot create a condition variable");
    }
    *out = c;
    return 0;
}

/* ------------------------------------------------------------------------
 * The label cache: set up, visit encoded chunks, warm
 * ------------------------------------------------------------------------ */

/* The dataset's identity: where its reads go (resolved for local files;
 * for http, the server, path and query string) and its metadata, so that
 * another dataset, or this one rewritten with other metadata, never meets
 * its entries. */
static uint64_t identity(const lb__dataset *d) {
    char where[4096], real[PATH_MAX];
    lb__store_locate(d->store, d->path, where, sizeof where);
    const char *w = where;
    if (strcmp(lb__store_scheme(d->store), "file") == 0 && realpath(where, real)) w = real;
    const char *meta = d->meta ? json_object_to_json_string_ext(d->meta, JSON_C_TO_STRING_PLAIN)
                               : "";
    uint64_t h = lb__hash64(w, strlen(w), 0x6c6262696e636163ull);
    h = lb__hash64(meta, strlen(meta), h);
    uint64_t shape[2 * LB_MAX_DIMS + 2] = {(uint64_t)d->ndim, (uint64_t)d->dtype};
    for (int k = 0; k < d->ndim; k++) {
        shape[2 + k] = (uint64_t)d->shape[k];
        shape[2 + d->ndim + k] = (uint64_t)d->chunks[k];
    }
    return lb__hash64(shape, sizeof shape, h);
}

/* A call that fails changes nothing: the cache in use (if any) stays. */
int lb__dataset_set_label_cache(lb__dataset *d, const char *name, size_t bytes,
                                lb_error *err) {
    if (bytes == 0) {
        lb__lcache_close(d->lcache);
        d->lcache = NULL;
        free(d->lc_seen);
        d->lc_seen = NULL;
        return 0;
    }
    if (!lb_dtype_is_integer(d->dtype))
        return lb__err(err, LB_EUNSUPPORTED,
                       "%s: a label cache holds integer labels, not dtype %s: use a chunk cache",
                       d->path, lb_dtype_name(d->dtype));
    for (int k = 0; k + 3 < d->ndim; k++)
        if (d->chunks[k] != 1)
            return lb__err(err, LB_EUNSUPPORTED,
                           "%s: a label cache needs chunks of extent 1 in all but the last 3 "
                           "dimensions (dimension %d has %lld)",
                           d->path, k, (long long)d->chunks[k]);
    int64_t lc_chunk[3];
    for (int k = 0; k < 3; k++) {
        int j = k + d->ndim - 3;
        lc_chunk[k] = j < 0 ? 1 : d->chunks[j];
    }
    if (!lb__cseg_bound(lc_chunk, d->itemsize))
        return lb__err(err, LB_ELIMIT, "%s: the chunks are too large for a label cache", d->path);
    int rc = 0;
    if (!d->io_pool && (rc = io_pool_new(&d->io_pool, err))) return rc;
    lb__lcache *c = NULL;
    rc = lb__lcache_open(name, bytes, &c, err);
    if (rc) return rc;
    lb__lcache_close(d->lcache);
    d->lcache = c;
    memcpy(d->lc_chunk, lc_chunk, sizeof lc_chunk);
    /* The stamp each chunk was seen with: 8 bytes a chunk, in pages that
     * take memory only as chunks are read (beyond 2^24 chunks, or without
     * the memory, every read checks; an array with no chunks has none). */
    uint64_t n = 1;
    for (int k = 0; k < d->ndim && n; k++)
        n = d->grid[k] > 0 && n <= ((uint64_t)1 << 24) / (uint64_t)d->grid[k]
                ? n * (uint64_t)d->grid[k]
                : 0;
    free(d->lc_seen);
    d->lc_nchunks = n;
    d->lc_seen = n ? calloc((size_t)n, sizeof *d->lc_seen) : NULL;
    /* One cache or the other. */
    lb__chunk_cache_free(d->cache);
    d->cache = NULL;
    d->lc_id = identity(d);
    return 0;
}

/* What chunk_cseg delivers for a chunk the label cache declines (it holds
 * a note that the chunk does not compress, now or from an earlier read). */
typedef enum lc_declined {
    LC_SKIP,   /* nothing (warming: the note is all there is to store; the
                  lookup is not counted among the hits and misses)          */
    LC_ENCODE, /* an encoding made for this read only, appended as a hit's   */
    LC_GIVEUP, /* nothing; LC_MISS is returned, for the caller to read the
                  region without the cache                                  */
    LC_DECODE  /* the chunk decoded into the `raw` sink; LC_RAW is returned  */
} lc_declined;
#define LC_MISS 3
#define LC_RAW 4

/* The encoded read chunk `cidx`, appended to *dst: from the label cache,
 * or fetched, decoded, encoded and stored there. A chunk the cache declines
 * is delivered as `how` says (`raw`: the sink of LC_DECODE). The fetch and
 * the decode run outside the cache's lock. */
static int chunk_cseg(const lb__dataset *d, const int64_t *cidx, lb__io *io, lb__buf *dst,
                      lc_declined how, const chunk_sink *raw, lb_error *err) {
    uint64_t stamp;
    int hit = lc_lookup(d, cidx, dst, &stamp, how != LC_SKIP, err);
    if (hit < 0) return hit;
    if (hit == 1) return 0;
    int declined = hit == LC_DECLINED;
    if (declined && how == LC_SKIP) return 0;
    if (declined && how == LC_GIVEUP) return LC_MISS;
    char stack[1024], *heap = NULL;
    const char *p = NULL;
    int stored = 0;
    /* Stamped before it is read (at the lookup, or now): a change after
     * this makes the entry stale. A declined chunk is not stored. */
    if (!declined && stamp == LB__STAMP_ANY) stamp = chunk_stamp(d, cidx);
    int rc = fetch_bytes(d, cidx, &stored, io, stack, sizeof stack, &heap, &p, err);
    if (!rc && !stored) rc = lc_store(d, cidx, NULL, stamp, io, dst, err); /* never declined */
    if (rc || !stored) goto done;
    if ((rc = lb__buf_reserve(&io->chunk, d->chunk_bytes, err))) goto done;
    rc = decode_fetched(d, cidx, io, p, io->chunk.data, err);
    if (!rc && !declined &&
        (rc = lc_store(d, cidx, io->chunk.data, stamp, io, dst, err)) == LC_DECLINED) {
        declined = 1;
        rc = 0;
    }
    if (rc || !declined) goto done;
    switch (how) {
    case LC_SKIP: break;
    case LC_ENCODE: rc = encode_for_read(d, io->chunk.data, io, dst, err); break;
    case LC_GIVEUP: rc = LC_MISS; break;
    case LC_DECODE:
        sink_copy(d, raw, io->chunk.data);
        rc = LC_RAW;
        break;
    }
done:
    free(heap);
    return rc;
}

/* Where region_parts put part i: in the arena of worker w's buffers. */
typedef struct part_at {
    int worker;
    size_t off;
} part_at;

typedef struct cseg_ctx {
    lb__cseg_visit fn; /* NULL: warm (fill only) */
    void *user;
    const int64_t *count;
    lb__io *io;
    int worker;
    lb__cseg_part *parts; /* region_parts: the boxes go here ... */
    part_at *at;          /* ... and where each encoded chunk is */
    const region_grid *g;
    uint8_t *raw;         /* region_parts: declined chunks decoded here */
} cseg_ctx;

static int cseg_visit_chunk(const lb__dataset *d, const int64_t *cidx, const int64_t *cstart,
                            const int64_t *rstart, const int64_t *cnt, void *vctx,
                            lb_error *err) {
    cseg_ctx *c = vctx;
    if (c->parts) {
        int64_t i = 0;
        for (int k = 0; k < d->ndim; k++) i = i * c->g->nc[k] + (cidx[k] - c->g->c0[k]);
        size_t off = c->io->arena.size;
        chunk_sink s = {NULL, cstart, cnt, c->raw, c->count, rstart};
        int rc = chunk_cseg(d, cidx, c->io, &c->io->arena, c->raw ? LC_DECODE : LC_GIVEUP,
                            &s, err);
        if (rc && rc != LC_RAW) return rc;
        lb__cseg_box b;
        box3(d, cstart, cnt, c->count, rstart, &b);
        lb__cseg_part *p = &c->parts[i];
        for (int k = 0; k < 3; k++) {
            p->cstart[k] = b.cstart[k];
            p->cnt[k] = b.cnt[k];
        }
        c->at[i] = (part_at){rc == LC_RAW ? -1 : c->worker, off};
        return 0;
    }
    c->io->cseg.size = 0;
    int rc = chunk_cseg(d, cidx, c->io, &c->io->cseg, c->fn ? LC_ENCODE : LC_SKIP, NULL, err);
    if (rc || !c->fn) return rc;
    lb__cseg_box b;
    size_t lead = box3(d, cstart, cnt, c->count, rstart, &b);
    return c->fn(c->user, c->io->cseg.data, &b, lead, err);
}

typedef struct cseg_par {
    const lb__dataset *d;
    const int64_t *start, *count;
    const region_grid *g;
    cseg_ctx ctx[LB__MAX_READ_THREADS];
    lb__io *own[LB__MAX_READ_THREADS];
    lb_error err[LB__MAX_READ_THREADS];
} cseg_par;

static int cseg_par_chunk(void *user, int worker, int64_t i) {
    cseg_par *p = user;
    cseg_ctx *c = &p->ctx[worker];
    if (!c->io) {
        c->io = p->own[worker] = p->d->io_pool ? io_pool_take(p->d->io_pool)
                                               : calloc(1, sizeof(lb__io));
        if (!c->io) return lb__err(&p->err[worker], LB_ENOMEM, "out of memory for read buffers");
        c->io->arena.size = 0;
    }
    return visit_chunk(p->d, p->start, p->count, p->g, i, cseg_visit_chunk, c, &p->err[worker]);
}

static void give_io(const lb__dataset *d, lb__io *io) {
    if (!io) return;
    if (d->io_pool) {
        io_pool_give(d->io_pool, io);
    } else {
        lb__io_free(io);
        free(io);
    }
}

/* Visit the chunks of a region with up to `threads` threads. With parts,
 * the workers' buffers (holding the encoded chunks) go to *kept (an array
 * of LB__MAX_READ_THREADS) instead of back to the pool. */
static int cseg_region(const lb__dataset *d, const int64_t *start, const int64_t *count,
                       int threads, lb__cseg_visit fn, void *user, lb__cseg_part *parts,
                       part_at *at, uint8_t *raw, lb__io **kept, lb__io *io, lb_error *err) {
    if (!d->lcache) return lb__err(err, LB_EINVAL, "%s: no label cache is set", d->path);
    int empty;
    int rc = check_region(d, start, count, &empty, err);
    if (rc || empty) return rc;
    region_grid g;
    region_chunks(d, d->chunks, start, count, &g);
    if (threads > LB__MAX_READ_THREADS) threads = LB__MAX_READ_THREADS;
    cseg_par *p = lb__calloc(1, sizeof *p, "label cache read state", err);
    if (!p) return LB_ENOMEM;
    p->d = d;
    p->start = start;
    p->count = count;
    p->g = &g;
    for (int w = 0; w < LB__MAX_READ_THREADS; w++)
        p->ctx[w] = (cseg_ctx){fn, user, count, NULL, w, parts, at, &g, raw};
    if (!parts) p->ctx[0].io = io;
    int failed = 0;
    rc = lb__parallel_for(threads > 1 && g.total > 1 ? threads : 1, g.total, cseg_par_chunk, p,
                          &failed);
    if (rc && err) *err = p->err[failed];
    for (int w = 0; w < LB__MAX_READ_THREADS; w++) {
        if (kept) kept[w] = p->own[w];
        else give_io(d, p->own[w]);
    }
    free(p);
    return rc;
}

int lb__dataset_visit_cseg(const lb__dataset *d, const int64_t *start, const int64_t *count,
                           lb__cseg_visit fn, void *user, lb__io *io, lb_error *err) {
    int threads = d->read_threads ? d->read_threads : d->store_threads;
    return cseg_region(d, start, count, threads, fn, user, NULL, NULL, NULL, NULL, io, err);
}

struct lb__parts {
    lb__cseg_part *parts;
    part_at *at;
    int64_t np[3], n, nraw;
    lb__io *kept[LB__MAX_READ_THREADS];
};

const lb__cseg_part *lb__parts_grid(const lb__parts *p, int64_t *np) {
    for (int k = 0; k < 3; k++) np[k] = p->np[k];
    return p->parts;
}

void lb__dataset_free_parts(const lb__dataset *d, lb__parts *p) {
    if (!p) return;
    for (int w = 0; w < LB__MAX_READ_THREADS; w++) give_io(d, p->kept[w]);
    free(p->parts);
    free(p->at);
    free(p);
}

int64_t lb__parts_raw(const lb__parts *p) {
    return p->nraw;
}

int lb__dataset_region_parts(const lb__dataset *d, const int64_t *start, const int64_t *count,
                             uint8_t *raw, lb__parts **out, lb_error *err) {
    *out = NULL;
    int empty;
    int rc = check_region(d, start, count, &empty, err);
    if (rc) return rc;
    if (empty) return lb__err(err, LB_EINVAL, "%s: an empty region has no chunks", d->path);
    for (int k = 0; k + 3 < d->ndim; k++)
        if (count[k] != 1)
            return lb__err(err, LB_EINVAL, "%s: region parts need count 1 before the last 3 "
                           "dimensions", d->path);
    region_grid g;
    region_chunks(d, d->chunks, start, count, &g);
    lb__parts *p = lb__calloc(1, sizeof *p, "chunk parts", err);
    if (!p) return LB_ENOMEM;
    for (int k = 0; k < 3; k++) p->np[k] = k + d->ndim - 3 < 0 ? 1 : g.nc[k + d->ndim - 3];
    p->n = g.total;
    p->parts = lb__calloc((size_t)g.total, sizeof *p->parts, "chunk parts", err);
    p->at = lb__calloc((size_t)g.total, sizeof *p->at, "chunk parts", err);
    if (!p->parts || !p->at) {
        lb__dataset_free_parts(d, p);
        return LB_ENOMEM;
    }
    int threads = d->read_threads ? d->read_threads : d->store_threads;
    rc = cseg_region(d, start, count, threads, NULL, NULL, p->parts, p->at, raw, p->kept, NULL,
                     err);
    if (rc) {
        lb__dataset_free_parts(d, p);
        return rc == LC_MISS ? 1 : rc;
    }
    /* The arenas are complete: now their addresses hold. */
    for (int64_t i = 0; i < g.total; i++) {
        if (p->at[i].worker < 0) { /* declined: its part is in raw */
            p->parts[i].cseg = NULL;
            p->nraw++;
        } else {
            p->parts[i].cseg = p->kept[p->at[i].worker]->arena.data + p->at[i].off;
        }
    }
    *out = p;
    return 0;
}

int lb__dataset_warm(const lb__dataset *d, const int64_t *start, const int64_t *count,
                     int threads, lb_error *err) {
    int64_t s0[LB_MAX_DIMS] = {0};
    if (!start) {
        start = s0;
        count = d->shape;
    }
    if (threads == 0) threads = lb__ncpu();
    if (threads < 1)
        return lb__err(err, LB_EINVAL, "warm: threads must be >= 1 (or 0 for one per CPU), not %d",
                       threads);
    return cseg_region(d, start, count, threads, NULL, NULL, NULL, NULL, NULL, NULL, NULL, err);
}
