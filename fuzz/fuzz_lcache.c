/*
 * fuzz_lcache.c — the shared label cache's file (dataset/label_cache.h).
 * Every process that uses a cache can write its file, so a reader must
 * survive any bytes in it: no crash, no hang, no read outside the mapping,
 * and a hit is always exactly the bytes stored under its key. The input
 * fills a fresh 1 MiB cache, overwrites parts of the file through a second
 * mapping (as another process or a stray write would), then reads, stores
 * and reopens through it. Input:
 *   [0]      entries stored first: b % 48
 *   [1]      their sizes: small (bit 0 clear: 1..300 bytes) or mixed (up
 *            to 40000); bit 1: store them again after the damage
 *   [2..]    patches, each [offset: 3 bytes LE][length: 1 byte][bytes]:
 *            offset (mod the file's size; below 512 when the first byte's
 *            top bit is set and the other two are zero — the header) and
 *            length bytes copied there (length 0: an 8-byte lock-word-like
 *            value, a thread id that does not exist)
 * Entry data and stamps are functions of their key, so every hit can be
 * checked; a lookup with another stamp must never hit.
 */
#include "fuzz.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset/label_cache.h"
#include "labelbin.h"

#define FILE_BYTES LB__LCACHE_MIN_BYTES
#define MAX_LEN 40000

/* Entry `key` of `len` bytes: its length, then a pattern of the key. */
static void entry(uint64_t key, size_t len, uint8_t *out) {
    uint32_t l = (uint32_t)len;
    for (size_t i = 0; i < len; i++) out[i] = (uint8_t)((key * 131 + i * 7) ^ (i >> 8));
    memcpy(out, &l, len < 4 ? len : 4);
}

static size_t entry_len(uint64_t key, int mixed) {
    uint64_t h = (key + 1) * 0x9E3779B97F4A7C15ull;
    return 1 + (size_t)(h >> 40) % (mixed && key % 4 == 0 ? MAX_LEN : 300);
}

/* A hit must be exactly what was stored under its key. */
static void check_hit(uint64_t key, const lb__buf *b, int mixed, uint8_t *tmp) {
    size_t len = entry_len(key, mixed);
    entry(key, len, tmp);
    if (b->size != len || memcmp(b->data, tmp, len) != 0) {
        fprintf(stderr, "fuzz_lcache: key %llu: a hit that is not the stored entry\n",
                (unsigned long long)key);
        abort();
    }
}

/* Entry k's source stamp. */
static uint64_t stamp_of(uint64_t k) {
    return 2 + k * 3;
}

/* Every key: looked up with its stamp (a hit must be its entry) or with
 * any (every third key), or with another stamp (every fifth: never a hit,
 * the entry is stale). */
static void get_all(lb__lcache *c, uint64_t n, int mixed, uint8_t *tmp) {
    lb__buf b = {NULL, 0, 0};
    for (uint64_t k = 0; k < n; k++) {
        b.size = 0;
        if (k % 5 == 4) {
            if (lb__lcache_get(c, 5, k, stamp_of(k) + 1, &b) == 1) {
                fprintf(stderr, "fuzz_lcache: key %llu: a hit with another stamp\n",
                        (unsigned long long)k);
                abort();
            }
            continue;
        }
        uint64_t st = k % 3 == 2 ? LB__STAMP_ANY : stamp_of(k);
        if (lb__lcache_get(c, 5, k, st, &b) == 1) check_hit(k, &b, mixed, tmp);
    }
    lb__buf_free(&b);
}

static void put_all(lb__lcache *c, uint64_t n, int mixed, uint8_t *tmp) {
    for (uint64_t k = 0; k < n; k++) {
        size_t len = entry_len(k, mixed);
        entry(k, len, tmp);
        lb__lcache_put(c, 5, k, stamp_of(k), tmp, len, 8 * len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    static uint8_t *tmp;
    if (!tmp && !(tmp = malloc(MAX_LEN))) return 0;
    lb__lcache_lock_wait_ms = 1; /* a damaged lock word is passed by at once */
    lb_set_log_handler(NULL, NULL, LB_LOG_OFF); /* its warnings are expected */
    char name[64], path[128];
    snprintf(name, sizeof name, "lb-fuzz-lcache-%ld", (long)getpid());
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    lb_error err = {0};
    unlink(path); /* the last input's file: damaged past recognition, perhaps */
    lb__lcache *c = NULL;
    if (lb__lcache_open(name, FILE_BYTES, &c, &err)) return 0; /* no /dev/shm */
    uint64_t n = data[0] % 48;
    int mixed = data[1] & 1, again = data[1] & 2;
    put_all(c, n, mixed, tmp);

    /* The damage, through a mapping of its own. */
    int fd = open(path, O_RDWR);
    uint8_t *m = fd >= 0 ? mmap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                         : MAP_FAILED;
    if (fd >= 0) close(fd);
    if (m != MAP_FAILED) {
        size_t i = 2;
        while (i + 4 <= size) {
            size_t off = (size_t)data[i] | (size_t)data[i + 1] << 8 | (size_t)data[i + 2] << 16;
            size_t len = data[i + 3];
            i += 4;
            off = (data[i - 4] & 0x80) && !data[i - 3] && !data[i - 2] ? off % 512
                                                                      : off % FILE_BYTES;
            if (len == 0) {
                uint64_t tid = 0x3FFF0000u | (uint64_t)(off & 0xFFFF);
                len = 8;
                if (off + len > FILE_BYTES) off = FILE_BYTES - len;
                memcpy(m + off, &tid, len);
                continue;
            }
            if (len > size - i) len = size - i;
            if (off + len > FILE_BYTES) len = FILE_BYTES - off;
            memcpy(m + off, data + i, len);
            i += len;
        }
        munmap(m, FILE_BYTES);
    }

    /* The handle that had it open: reads, stores, reads again. */
    get_all(c, n, mixed, tmp);
    if (again) put_all(c, n, mixed, tmp);
    get_all(c, n, mixed, tmp);
    lb__lcache_stats st;
    lb__lcache_get_stats(c, &st);
    /* A handle opened now: it maps the file or replaces it (or, both of
     * the file's markers damaged, refuses it as another program's). */
    lb__lcache *c2 = NULL;
    if (lb__lcache_open(name, FILE_BYTES, &c2, &err) == 0) {
        get_all(c2, n, mixed, tmp);
        put_all(c2, n, mixed, tmp);
        get_all(c2, n, mixed, tmp);
        get_all(c, n, mixed, tmp);
        lb__lcache_close(c2);
    }
    lb__lcache_close(c);
    unlink(path);
    return 0;
}
