/*
 * memory.c — a store in memory: keys and their bytes in a list, guarded by
 * a mutex. Not reachable by URL; for metadata and chunks that exist only in
 * memory (the fuzz targets, tests).
 */
#include "store/memory.h"

#include <pthread.h>
#include <stdlib.h>

#include "store/backend.h"

typedef struct mem_entry {
    char *key;
    uint8_t *data;
    size_t n;
    struct mem_entry *next;
} mem_entry;

typedef struct mem_state {
    pthread_mutex_t mu;
    mem_entry *head;
} mem_state;

static mem_entry *find(mem_state *m, const char *key) {
    for (mem_entry *e = m->head; e; e = e->next)
        if (strcmp(e->key, key) == 0) return e;
    return NULL;
}

/* 1 if `key` lies under `prefix` ("a/b" under "a"). */
static int under(const char *key, const char *prefix) {
    size_t n = strlen(prefix);
    if (n == 0) return 1;
    return strncmp(key, prefix, n) == 0 && key[n] == '/';
}

static int mem_open(const char *url, void **state, char **path, lb_error *err) {
    (void)url;
    (void)state;
    (void)path;
    return lb__err(err, LB_EUNSUPPORTED, "memory stores are made with lb__store_memory");
}

static void mem_close(void *state) {
    mem_state *m = state;
    while (m->head) {
        mem_entry *e = m->head;
        m->head = e->next;
        free(e->key);
        free(e->data);
        free(e);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int mem_get(void *state, const char *key, const lb__range *r, size_t max_bytes,
                   lb__buf *out, uint64_t *total, lb_error *err) {
    mem_state *m = state;
    int rc = 0;
    out->size = 0;
    pthread_mutex_lock(&m->mu);
    mem_entry *e = find(m, key);
    if (!e) {
        rc = lb__err(err, LB_ENOTFOUND, "%s: not found", key);
        goto done;
    }
    if (total) *total = e->n;
    uint64_t lo = 0, n = e->n;
    if (r && r->suffix) {
        n = r->length < e->n ? r->length : e->n;
        lo = e->n - n;
    } else if (r) {
        if (r->offset > e->n || (r->length != UINT64_MAX && r->length > e->n - r->offset)) {
            rc = lb__err(err, LB_EFORMAT, "%s: bytes %llu.. lie past the end of the %zu-byte "
                         "object", key, (unsigned long long)r->offset, e->n);
            goto done;
        }
        lo = r->offset;
        n = r->length == UINT64_MAX ? e->n - r->offset : r->length;
    }
    if (n > max_bytes) {
        rc = lb__err(err, LB_ELIMIT, "%s: %llu bytes is more than the limit of %zu", key,
                     (unsigned long long)n, max_bytes);
        goto done;
    }
    rc = lb__buf_reserve(out, (size_t)n + 1, err);
    if (!rc) {
        if (n) memcpy(out->data, e->data + lo, (size_t)n);
        out->size = (size_t)n;
        out->data[n] = 0;
    }
done:
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_size(void *state, const char *key, uint64_t *size, lb_error *err) {
    mem_state *m = state;
    pthread_mutex_lock(&m->mu);
    mem_entry *e = find(m, key);
    if (e) *size = e->n;
    pthread_mutex_unlock(&m->mu);
    return e ? 0 : lb__err(err, LB_ENOTFOUND, "%s: not found", key);
}

static int mem_kind(void *state, const char *key) {
    mem_state *m = state;
    int kind = LB__KEY_NONE;
    pthread_mutex_lock(&m->mu);
    for (mem_entry *e = m->head; e && kind != LB__KEY_OBJECT; e = e->next) {
        if (strcmp(e->key, key) == 0) kind = LB__KEY_OBJECT;
        else if (under(e->key, key)) kind = LB__KEY_PREFIX;
    }
    pthread_mutex_unlock(&m->mu);
    return kind;
}

static int mem_empty(void *state, const char *prefix) {
    return mem_kind(state, prefix) == LB__KEY_NONE;
}

static int mem_put(void *state, const char *key, const void *data, size_t n, lb_error *err) {
    mem_state *m = state;
    uint8_t *copy = lb__malloc(n ? n : 1, "stored bytes", err);
    if (!copy) return LB_ENOMEM;
    if (n) memcpy(copy, data, n);
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    mem_entry *e = find(m, key);
    if (e) {
        free(e->data);
        e->data = copy;
        e->n = n;
    } else if ((e = calloc(1, sizeof *e)) && (e->key = strdup(key))) {
        e->data = copy;
        e->n = n;
        e->next = m->head;
        m->head = e;
    } else {
        free(e);
        free(copy);
        rc = lb__err(err, LB_ENOMEM, "out of memory storing %s", key);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static void drop_where(mem_state *m, const char *key, int tree) {
    mem_entry **pp = &m->head;
    while (*pp) {
        mem_entry *e = *pp;
        if (strcmp(e->key, key) == 0 || (tree && under(e->key, key))) {
            *pp = e->next;
            free(e->key);
            free(e->data);
            free(e);
        } else {
            pp = &e->next;
        }
    }
}

static int mem_erase(void *state, const char *key, lb_error *err) {
    (void)err;
    mem_state *m = state;
    pthread_mutex_lock(&m->mu);
    drop_where(m, key, 0);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int mem_erase_tree(void *state, const char *prefix, lb_error *err) {
    (void)err;
    mem_state *m = state;
    pthread_mutex_lock(&m->mu);
    drop_where(m, prefix, 1);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int mem_list(void *state, const char *prefix, lb__store_list_fn fn, void *user,
                    lb_error *err) {
    mem_state *m = state;
    /* Collect the children first: fn must not run under the lock. */
    lb__buf names = {0};
    int rc = 0;
    size_t plen = strlen(prefix);
    pthread_mutex_lock(&m->mu);
    for (mem_entry *e = m->head; e && !rc; e = e->next) {
        if (!under(e->key, prefix)) continue;
        const char *rest = e->key + plen + (plen ? 1 : 0);
        const char *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        char flag = slash ? 'd' : 'f';
        rc = lb__buf_append(&names, &flag, 1, err);
        if (!rc) rc = lb__buf_append(&names, rest, n, err);
        if (!rc) rc = lb__buf_append(&names, "", 1, err);
    }
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; !rc && i < names.size;) {
        const char *name = (const char *)names.data + i + 1;
        int is_dir = names.data[i] == 'd';
        i += 2 + strlen(name);
        /* a directory is named once per key under it: report it once */
        int seen = 0;
        for (size_t j = 0; j < i - 2 - strlen(name) && !seen;) {
            const char *other = (const char *)names.data + j + 1;
            seen = names.data[j] == 'd' && is_dir && strcmp(other, name) == 0;
            j += 2 + strlen(other);
        }
        if (!seen && fn(user, name, is_dir)) break;
    }
    lb__buf_free(&names);
    return rc;
}

static const lb__store_backend memory_backend = {
    .version = 1,
    .scheme = "memory",
    .writable = 1,
    .open = mem_open,
    .close = mem_close,
    .get = mem_get,
    .size = mem_size,
    .kind = mem_kind,
    .empty = mem_empty,
    .put = mem_put,
    .erase = mem_erase,
    .erase_tree = mem_erase_tree,
    .list = mem_list,
};

int lb__store_memory(lb__store **out, lb_error *err) {
    mem_state *m = lb__calloc(1, sizeof *m, "a memory store", err);
    if (!m) return LB_ENOMEM;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return lb__err(err, LB_ENOMEM, "cannot create a mutex");
    }
    int rc = lb__store_new(&memory_backend, m, out, err);
    if (rc) mem_close(m);
    return rc;
}
