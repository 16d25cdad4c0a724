/*
 * label_cache.c — the shared-memory cache of encoded label chunks (see
 * label_cache.h): a file under /dev/shm holding a header, a hash index and
 * a ring of records, used by every process that opens the same name.
 */
#include "dataset/label_cache.h"

#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x3143424C454C424Cull /* "LBLELBC1" */
/* The marker's second copy, with the file's size, ends the header's page
 * (before the index): a file whose header start is damaged is still
 * known as a labelbin cache by it (and replaced), while a file that has
 * neither is something else (and left alone). */
#define MARK_AT (PAGE - sizeof(mark))
#define VERSION 4u /* 3: records carry their source's stamp; 4: a slot per KiB */
#define PAGE ((size_t)4096)
#define SHM_DIR "/dev/shm/"
#define PAD_MARK UINT64_MAX
#define POS_LIMIT ((uint64_t)1 << 62) /* ring positions stay below: a larger one is damage */

enum { EMPTY = 0, FILLING = 1, READY = 2 };

/* The file's header. Fields up to `check` are fixed at creation and
 * covered by `check`; the rest changes under `mu` (or atomically). */
typedef struct shm_hdr {
    uint64_t magic;
    uint32_t version, hdr_bytes;
    uint64_t total, nslots, index_off, data_off, data_bytes;
    uint64_t check;
    pthread_mutex_t mu;
    uint64_t head, tail;      /* ring positions (bytes, ever increasing)   */
    uint64_t used_slots;      /* FILLING + READY                           */
    uint64_t entries, bytes, raw_bytes, inserts, evictions;
    uint64_t declined;        /* READY entries that are declined notes     */
    _Atomic uint64_t tail_pub; /* = tail, for readers without the lock   */
    _Atomic uint64_t hits, misses, corrupt;
    _Atomic uint64_t stale;   /* entries dropped: their source changed     */
} shm_hdr;

typedef struct mark {
    uint64_t magic, total;
} mark;

typedef struct slot {
    uint64_t ds, chunk;
    uint64_t pos;  /* ring position of the record                         */
    uint64_t sum;  /* checksum of the data (READY)                        */
    uint64_t raw;  /* decoded bytes the entry stands for                  */
    uint32_t len;  /* data bytes                                          */
    uint32_t state;
    int32_t pid;   /* FILLING: the process writing the data               */
    uint32_t pad;
} slot;

_Static_assert(sizeof(shm_hdr) + sizeof(mark) <= PAGE, "the header and the marker's copy "
               "share the first page");

/* A record in the ring: this header, then the data (8-aligned). */
typedef struct rec {
    uint64_t len; /* header + data, 8-aligned; PAD_MARK: skip to the ring's end */
    uint64_t ds, chunk;
    uint64_t stamp; /* what the source looked like when it was read */
} rec;

struct lb__lcache {
    char name[128];
    char path[sizeof SHM_DIR + 128];
    uint8_t *base;
    size_t total;
    shm_hdr *h;
    slot *slots;
    uint8_t *ring;
    /* The layout, copied when the file was mapped and checked: bounds
     * are never read from the shared file again, which any process (or
     * a stray write) may change. */
    uint64_t nslots, index_off, data_off, data_bytes;
    dev_t dev;                   /* the mapped file (to allocate its bytes, it is */
    ino_t ino;                   /* opened again by path and checked to be it)    */
    _Atomic int warned_full;     /* the "no room left" warning was given         */
    _Atomic int warned_gone;     /* the "file replaced" warning was given        */
    _Atomic int warned_large;    /* the "chunk too large" warning was given      */
    _Atomic int stuck;           /* a lock wait timed out: only try the lock now */
    _Atomic uint64_t my_hits, my_misses;
};

static uint64_t hdr_check(const shm_hdr *h) {
    return lb__hash64(h, offsetof(shm_hdr, check), 0x6c6162656c62696eull);
}

/* ---- file layout ------------------------------------------------------------ */

static size_t round_down(size_t n, size_t a) {
    return n / a * a;
}

/* One index slot per KiB of the file (at least 1024), of which 3/4 may be
 * used: the index takes 1/18 of the file, and entries of 1.33 KiB and more
 * (an encoded 32^3 chunk of organelle labels is about 2 KiB) fill the
 * ring before the index. */
#define SLOT_PER_BYTES 1024u

static void layout(size_t total, uint64_t *nslots, uint64_t *index_off, uint64_t *data_off,
                   uint64_t *data_bytes) {
    uint64_t n = total / SLOT_PER_BYTES;
    if (n < 1024) n = 1024;
    *nslots = n;
    *index_off = (sizeof(shm_hdr) + PAGE - 1) / PAGE * PAGE;
    *data_off = (*index_off + n * sizeof(slot) + PAGE - 1) / PAGE * PAGE;
    *data_bytes = total > *data_off ? total - *data_off : 0;
}

static int valid_name(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n >= 128 || name[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

void lb__lcache_default_name(char *buf, size_t size) {
    snprintf(buf, size, "labelbin-cache-%lu", (unsigned long)getuid());
}

static int header_ok(const shm_hdr *h, size_t file_bytes) {
    if (h->magic != MAGIC || h->version != VERSION || h->hdr_bytes != sizeof *h ||
        h->total != file_bytes || h->check != hdr_check(h))
        return 0;
    uint64_t ns, io, dof, db;
    layout((size_t)h->total, &ns, &io, &dof, &db);
    return h->nslots == ns && h->index_off == io && h->data_off == dof && h->data_bytes == db &&
           db > 0;
}

/* Map the file open as fd (then closed: a handle keeps no descriptor, so
 * that arrays by the hundred do not use up the process's). */
static void bind(lb__lcache *c, uint8_t *base, size_t total, int fd) {
    struct stat st;
    if (fstat(fd, &st) == 0) {
        c->dev = st.st_dev;
        c->ino = st.st_ino;
    }
    close(fd);
    c->base = base;
    c->total = total;
    c->h = (shm_hdr *)(void *)base;
    layout(total, &c->nslots, &c->index_off, &c->data_off, &c->data_bytes);
    c->slots = (slot *)(void *)(base + c->index_off);
    c->ring = base + c->data_off;
}

/* Allocate the file's bytes [off, off + n) (tmpfs gives a mapped page its
 * memory when it is first written, and a write it has no room for kills
 * the process with SIGBUS): 0, or the errno. */
static int allocate(int fd, uint64_t off, uint64_t n) {
    int r;
    do r = posix_fallocate(fd, (off_t)off, (off_t)n);
    while (r == EINTR);
    return r;
}

static void human(char *buf, size_t size, double bytes) {
    if (bytes >= 1 << 30) snprintf(buf, size, "%.1f GiB", bytes / (1 << 30));
    else if (bytes >= 1 << 20) snprintf(buf, size, "%.1f MiB", bytes / (1 << 20));
    else snprintf(buf, size, "%.1f KiB", bytes / (1 << 10));
}

/* The header must always be writable (the lock is in it): its page is
 * allocated when a file is created or opened. Index slots and records
 * are allocated as they are first written (slot_room, reserve). A cache
 * larger than the whole file system is refused: it would fail as it
 * fills. */
static int allocate_header(int fd, const char *path, size_t total, lb_error *err) {
    struct statvfs fs;
    char want[32], have[32], avail[32];
    human(want, sizeof want, (double)total);
    if (fstatvfs(fd, &fs) == 0 && fs.f_blocks > 0 &&
        (double)fs.f_blocks * (double)fs.f_frsize < (double)total) {
        human(have, sizeof have, (double)fs.f_blocks * (double)fs.f_frsize);
        return lb__err(err, LB_EINVAL,
                       "%s: a label cache of %s does not fit in /dev/shm (%s in all): give "
                       "it fewer bytes, or make /dev/shm larger (docker: --shm-size)",
                       path, want, have);
    }
    uint64_t ns, io, dof, db;
    layout(total, &ns, &io, &dof, &db);
    int r = allocate(fd, 0, io);
    if (r) {
        human(avail, sizeof avail,
              fstatvfs(fd, &fs) == 0 ? (double)fs.f_bavail * (double)fs.f_frsize : 0.0);
        return lb__err(err, LB_EIO,
                       "%s: cannot allocate the label cache's header (%s; %s free in "
                       "/dev/shm): free space there, or give the cache fewer bytes",
                       path, strerror(r), avail);
    }
    return 0;
}

static int pid_alive(int32_t pid) {
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* A process killed while it made a cache file leaves its temporary
 * ("/dev/shm/.NAME.PID.XXXXXX") behind, in memory. Remove those of cache
 * `name` whose process is gone and that are over a minute old (a live
 * process finishes its file in milliseconds; the age also spares one in
 * another PID namespace that shares /dev/shm). */
static void sweep_temporaries(const char *name) {
    DIR *dir = opendir(SHM_DIR);
    if (!dir) return;
    char prefix[160];
    int np = snprintf(prefix, sizeof prefix, ".%s.", name);
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, prefix, (size_t)np) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + np, &end, 10);
        struct stat st;
        if (end == e->d_name + np || *end != '.' || strlen(end + 1) != 6 || pid <= 0 ||
            pid > INT32_MAX || pid_alive((int32_t)pid) ||
            fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode) || now - st.st_mtime < 60)
            continue;
        unlinkat(dirfd(dir), e->d_name, 0);
    }
    closedir(dir);
}

/* The file's lock: process-shared and robust (a process that dies
 * holding it makes the next locker reset the index). 0 or -1. */
static int init_mutex(pthread_mutex_t *m) {
    pthread_mutexattr_t ma;
    if (pthread_mutexattr_init(&ma) != 0) return -1;
    int r = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED) != 0 ||
            pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST) != 0 ||
            pthread_mutex_init(m, &ma) != 0;
    pthread_mutexattr_destroy(&ma);
    return r ? -1 : 0;
}

/* Whether the lock's type, kept in the file with it, is the one
 * init_mutex gives. glibc takes the type from the mutex's bytes: a damaged
 * type sends pthread_mutex_timedlock down paths (priority inheritance)
 * that abort the process on a lock word naming no live thread. The type
 * never changes after creation, so it is compared with a mutex made alike
 * before every wait. */
static int mutex_type_ok(const pthread_mutex_t *m) {
#ifdef __GLIBC__
    static _Atomic int want = -1;
    int w = atomic_load(&want);
    if (w == -1) {
        pthread_mutex_t ref;
        if (init_mutex(&ref) != 0) return 0;
        w = ref.__data.__kind;
        pthread_mutex_destroy(&ref);
        atomic_store(&want, w);
    }
    return m->__data.__kind == w;
#else
    (void)m;
    return 1;
#endif
}

/* Create a fresh cache file of `total` bytes as c->path: written under a
 * temporary name, then linked in (replace = 0: only when nothing is there,
 * LB_EEXIST otherwise) or renamed over what is there. */
static int create_file(lb__lcache *c, size_t total, int replace, lb_error *err) {
    char tmp[sizeof c->path + 32];
    sweep_temporaries(c->name);
    snprintf(tmp, sizeof tmp, "%s.%s.%ld.XXXXXX", SHM_DIR, c->name, (long)getpid());
    int fd = mkstemp(tmp);
    if (fd < 0) return lb__err_errno(err, errno, "cannot create a shared cache file", tmp);
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    int rc = 0;
    uint8_t *base = MAP_FAILED;
    if (ftruncate(fd, (off_t)total) != 0) {
        rc = lb__err_errno(err, errno, "cannot size the shared cache file", tmp);
        goto fail;
    }
    if ((rc = allocate_header(fd, c->path, total, err)) != 0) goto fail;
    base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rc = lb__err_errno(err, errno, "cannot map the shared cache file", tmp);
        goto fail;
    }
    shm_hdr *h = (shm_hdr *)(void *)base;
    memset(h, 0, sizeof *h);
    h->magic = MAGIC;
    h->version = VERSION;
    h->hdr_bytes = sizeof *h;
    h->total = total;
    layout(total, &h->nslots, &h->index_off, &h->data_off, &h->data_bytes);
    h->check = hdr_check(h);
    memcpy(base + MARK_AT, &(mark){MAGIC, total}, sizeof(mark));
    if (init_mutex(&h->mu) != 0) {
        rc = lb__err(err, LB_EIO, "%s: cannot create a process-shared mutex", tmp);
        goto fail;
    }
    if (replace) {
        if (rename(tmp, c->path) != 0) {
            rc = lb__err_errno(err, errno, "cannot install the shared cache file", c->path);
            goto fail;
        }
    } else {
        if (link(tmp, c->path) != 0) {
            rc = errno == EEXIST ? LB_EEXIST
                                 : lb__err_errno(err, errno, "cannot install the shared cache file",
                                                 c->path);
            goto fail;
        }
        unlink(tmp);
    }
    bind(c, base, total, fd);
    return 0;
fail:
    if (base != MAP_FAILED) munmap(base, total);
    close(fd);
    unlink(tmp);
    return rc;
}

static int timed_lock(shm_hdr *h, int wait);
static int settle(lb__lcache *c, int r);

/* Whether `page`, the first page of a file of `size` bytes, is a labelbin
 * cache's (perhaps of another version, or damaged): the marker at its
 * start, or its second copy with this size at its end. Nothing else at a
 * cache's name is ever replaced or removed. */
static int is_ours(const uint8_t *page, size_t size) {
    uint64_t magic;
    mark m;
    memcpy(&magic, page, sizeof magic);
    memcpy(&m, page + MARK_AT, sizeof m);
    return magic == MAGIC || (m.magic == MAGIC && m.total == size);
}

/* Open the file at c->path with `flags` (O_RDONLY or O_RDWR) when it is a
 * labelbin cache file, valid or not: 0 and *fd, *size; LB_ENOTFOUND when
 * there is none; LB_EEXIST when something else is there (a file of other
 * contents, a link, another user's file), which labelbin neither uses nor
 * replaces nor removes (the message ends with `then`, what the caller
 * does or advises); another code when it cannot be read. */
static int open_ours(const lb__lcache *c, int flags, const char *then, int *fd, size_t *size,
                     lb_error *err) {
    struct stat st;
    *fd = -1;
    if (lstat(c->path, &st) != 0)
        return errno == ENOENT ? lb__err(err, LB_ENOTFOUND, "%s: no such label cache", c->path)
                               : lb__err_errno(err, errno, "cannot look at the cache file",
                                               c->path);
    const char *what = S_ISLNK(st.st_mode)  ? "a symbolic link"
                       : S_ISDIR(st.st_mode) ? "a directory"
                       : S_ISREG(st.st_mode) ? NULL
                                             : "not a regular file";
    if (what)
        return lb__err(err, LB_EEXIST,
                       "%s is %s, not a labelbin cache file: %s", c->path, what, then);
    int f = open(c->path, flags | O_CLOEXEC | O_NOFOLLOW);
    if (f < 0) {
        if (errno == ENOENT) return lb__err(err, LB_ENOTFOUND, "%s: no such label cache", c->path);
        if ((errno == EACCES || errno == EPERM) && st.st_uid != geteuid())
            return lb__err(err, LB_EEXIST,
                           "%s belongs to another user (uid %lu), and a label cache is "
                           "private to the user who made it: %s",
                           c->path, (unsigned long)st.st_uid, then);
        return lb__err_errno(err, errno, "cannot open the cache file", c->path);
    }
    uint8_t page[PAGE];
    ssize_t got = 0;
    if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(f);
        return lb__err(err, LB_EEXIST, "%s is not a labelbin cache file: %s", c->path, then);
    }
    if ((size_t)st.st_size >= sizeof page) {
        do got = pread(f, page, sizeof page, 0);
        while (got < 0 && errno == EINTR);
    }
    if ((size_t)st.st_size < sizeof page || got != (ssize_t)sizeof page ||
        !is_ours(page, (size_t)st.st_size)) {
        close(f);
        return lb__err(err, LB_EEXIST,
                       "%s is not a labelbin cache file (%lld bytes of something else): %s",
                       c->path, (long long)st.st_size, then);
    }
    *fd = f;
    *size = (size_t)st.st_size;
    return 0;
}

/* Map the existing cache file: 0 with a valid header; LB_EFORMAT when it
 * is a labelbin cache that cannot be used (another version, a damaged
 * header, a lock that cannot be taken), which may be replaced; otherwise
 * open_ours's codes. */
static int map_existing(lb__lcache *c, lb_error *err) {
    int fd, rc;
    size_t size;
    if ((rc = open_ours(c, O_RDWR,
                        "labelbin neither uses nor replaces it; give the cache another name",
                        &fd, &size, err)) != 0)
        return rc;
    uint8_t *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rc = lb__err_errno(err, errno, "cannot map the shared cache file", c->path);
        close(fd);
        return rc;
    }
    if (!header_ok((const shm_hdr *)(void *)base, size)) {
        munmap(base, size);
        close(fd);
        return lb__err(err, LB_EFORMAT,
                       "%s: a label cache of another labelbin version, or its header is "
                       "damaged", c->path);
    }
    if ((rc = allocate_header(fd, c->path, size, err)) != 0) {
        munmap(base, size);
        close(fd);
        return rc;
    }
    bind(c, base, size, fd);
    /* A lock that cannot be taken (held for longer than any index update
     * takes, or damaged): the file is as good as damaged. */
    int r = settle(c, timed_lock(c->h, 1));
    if (r == 0) {
        pthread_mutex_unlock(&c->h->mu);
        return 0;
    }
    munmap(c->base, c->total);
    c->base = NULL;
    if (r == ETIMEDOUT)
        return lb__err(err, LB_EFORMAT,
                       "%s: its lock has been held for over %.1f s (a process stopped while "
                       "holding it, or a damaged file)",
                       c->path, lb__lcache_lock_wait_ms / 1000.0);
    return lb__err(err, LB_EFORMAT, "%s: its lock is damaged (%s)", c->path, strerror(r));
}

static int set_names(lb__lcache *c, const char *name, lb_error *err) {
    char def[64];
    if (!name) {
        lb__lcache_default_name(def, sizeof def);
        name = def;
    }
    if (!valid_name(name))
        return lb__err(err, LB_EINVAL,
                       "cache name \"%s\": use 1-127 letters, digits, '.', '_' or '-', not "
                       "starting with '.'", name);
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->path, sizeof c->path, "%s%s", SHM_DIR, name);
    return 0;
}

/* A cache opened at another size than asked is warned of once per
 * process and name (the hash of the last name warned of). */
static _Atomic uint64_t warned_size;

void lb__lcache_where(const char *name, char *nm, size_t nn, char *path, size_t np) {
    lb__lcache c;
    memset(&c, 0, sizeof c);
    (void)set_names(&c, name, NULL);
    snprintf(nm, nn, "%s", c.name);
    snprintf(path, np, "%s", c.path);
}

int lb__lcache_open(const char *name, size_t bytes, lb__lcache **out, lb_error *err) {
    *out = NULL;
    if (bytes < LB__LCACHE_MIN_BYTES)
        return lb__err(err, LB_EINVAL, "a label cache needs at least %zu bytes, not %zu",
                       LB__LCACHE_MIN_BYTES, bytes);
    lb__lcache *c = lb__calloc(1, sizeof *c, "a label cache", err);
    if (!c) return LB_ENOMEM;
    int rc = set_names(c, name, err);
    size_t total = round_down(bytes, PAGE);
    for (int attempt = 0; !rc && attempt < 8; attempt++) {
        lb_error why = {0};
        rc = map_existing(c, &why);
        if (!rc) break;
        if (rc != LB_ENOTFOUND && rc != LB_EFORMAT) {
            if (err) *err = why;
            break;
        }
        /* Absent: create it (unless another process just did: then map
         * theirs). A labelbin cache that cannot be used: replace it,
         * saying so; processes that mapped the old file keep theirs. */
        int replace = rc == LB_EFORMAT;
        rc = create_file(c, total, replace, err);
        if (rc == LB_EEXIST) {
            rc = attempt + 1 < 8 ? 0
                                 : lb__err(err, LB_EIO, "%s: cannot open or create the shared "
                                           "cache file", c->path);
            continue;
        }
        if (!rc && replace)
            lb__log(LB_LOG_WARN,
                    "label cache %s; replaced it with a new, empty cache (processes that had "
                    "the old file open keep using it until they set their cache again)",
                    why.message);
        break;
    }
    if (rc) {
        free(c);
        return rc;
    }
    /* A cache already there keeps its size: processes that open a name
     * share one file whatever sizes they give. */
    uint64_t named = lb__hash64(c->name, strlen(c->name), 1);
    if (c->total != total && atomic_exchange(&warned_size, named) != named) {
        char have[32], want[32];
        human(have, sizeof have, (double)c->total);
        human(want, sizeof want, (double)total);
        lb__log(LB_LOG_WARN,
                "label cache %s: uses the cache already there, of %s, not the %s asked for "
                "(a cache keeps the size it was made with); to resize it, remove it while no "
                "process uses it: labelbin cache-stats --remove %s",
                c->path, have, want, c->name);
    }
    *out = c;
    return 0;
}

int lb__lcache_attach(const char *name, lb__lcache **out, lb_error *err) {
    *out = NULL;
    lb__lcache *c = lb__calloc(1, sizeof *c, "a label cache", err);
    if (!c) return LB_ENOMEM;
    int rc = set_names(c, name, err);
    if (!rc) rc = map_existing(c, err);
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void lb__lcache_close(lb__lcache *c) {
    if (!c) return;
    if (c->base) munmap(c->base, c->total);
    free(c);
}

const char *lb__lcache_name(const lb__lcache *c) {
    return c->name;
}
const char *lb__lcache_path(const lb__lcache *c) {
    return c->path;
}
size_t lb__lcache_bytes(const lb__lcache *c) {
    return c->total;
}

/* ---- the index (under the mutex) ------------------------------------------- */

static uint64_t home(const lb__lcache *c, uint64_t ds, uint64_t chunk) {
    return lb__mix64(ds ^ (chunk * 0x9E3779B97F4A7C15ull)) % c->nslots;
}

/* The slot after slot i (the index is a circle). */
static uint64_t next_slot(const lb__lcache *c, uint64_t i) {
    return i + 1 < c->nslots ? i + 1 : 0;
}

static slot *find(lb__lcache *c, uint64_t ds, uint64_t chunk) {
    for (uint64_t i = home(c, ds, chunk), n = 0; n < c->nslots; i = next_slot(c, i), n++) {
        slot *s = &c->slots[i];
        if (s->state == EMPTY) return NULL;
        if (s->ds == ds && s->chunk == chunk) return s;
    }
    return NULL;
}

/* The empty slot where key (ds, chunk) goes: its index, or -1 when there
 * is none (a damaged index: the counts said there was room). */
static int64_t empty_slot(const lb__lcache *c, uint64_t ds, uint64_t chunk) {
    for (uint64_t i = home(c, ds, chunk), n = 0; n < c->nslots; i = next_slot(c, i), n++)
        if (c->slots[i].state == EMPTY) return (int64_t)i;
    return -1;
}

static void reset(lb__lcache *c);

/* Remove slot s, shifting later members of its probe run back. An index
 * with no empty slot (damage: the counts said there was room) is reset. */
static void unslot(lb__lcache *c, slot *s) {
    shm_hdr *h = c->h;
    uint64_t i = (uint64_t)(s - c->slots), j = i;
    if (s->state == READY) {
        h->entries--;
        h->bytes -= sizeof(rec) + ((s->len + 7u) & ~7u);
        h->raw_bytes -= s->raw;
        if (s->raw == 0) h->declined--;
    }
    h->used_slots--;
    for (uint64_t n = 1;; n++) {
        if (n == c->nslots) {
            reset(c);
            return;
        }
        j = next_slot(c, j);
        slot *t = &c->slots[j];
        if (t->state == EMPTY) break;
        uint64_t k = home(c, t->ds, t->chunk);
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
        c->slots[i] = *t;
        i = j;
    }
    memset(&c->slots[i], 0, sizeof(slot));
}

_Atomic int lb__lcache_test_resets;

/* Forget everything (a process died holding the mutex, or the ring holds
 * nonsense): the data stays, unreachable, until the ring passes over it. */
static void reset(lb__lcache *c) {
    shm_hdr *h = c->h;
    atomic_fetch_add(&lb__lcache_test_resets, 1);
    /* Zeroed by giving the index's pages back (the file system then has
     * room for them again); a plain memset where that is not supported. */
    if (madvise(c->slots, (size_t)(c->data_off - c->index_off), MADV_REMOVE) != 0)
        memset(c->slots, 0, c->nslots * sizeof(slot));
    h->used_slots = h->entries = h->bytes = h->raw_bytes = h->declined = 0;
    /* Damaged ring positions (records hold their keys and sums): below
     * the limit, 8-aligned. */
    if (h->head >= POS_LIMIT) h->head = 0;
    h->head = (h->head + 7) & ~(uint64_t)7;
    h->tail = h->head;
    atomic_store(&h->tail_pub, h->tail);
}

/* The header's changing fields hold together: the ring's span fits in
 * it, the published tail is the tail, the counts fit the index. A file
 * damaged there (they are not covered by the header's checksum) would
 * otherwise store nothing more, or never hit again. */
static int header_sane(const lb__lcache *c) {
    const shm_hdr *h = c->h;
    return h->tail <= h->head && h->head - h->tail <= c->data_bytes && h->head < POS_LIMIT &&
           (h->head | h->tail) % 8 == 0 &&
           atomic_load(&h->tail_pub) == h->tail && h->used_slots <= c->nslots / 4 * 3 &&
           h->entries <= h->used_slots && h->declined <= h->entries &&
           h->bytes <= c->data_bytes;
}

int lb__lcache_lock_wait_ms = 2000;

/* Take h's lock, waiting at most lb__lcache_lock_wait_ms (wait 0: not at
 * all): 0, EOWNERDEAD, EBUSY (not waiting), ETIMEDOUT or another pthread
 * error (a damaged lock). */
static int timed_lock(shm_hdr *h, int wait) {
    if (!mutex_type_ok(&h->mu)) return EINVAL;
    int r = pthread_mutex_trylock(&h->mu);
    if (r != EBUSY || !wait) return r;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    long ms = lb__lcache_lock_wait_ms;
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    do r = pthread_mutex_timedlock(&h->mu, &t);
    while (r == EINTR);
    return r;
}

/* After taking the lock (r from timed_lock or trylock): an owner that
 * died mid-update, or changing fields that do not hold together, reset
 * the index. 0 when the lock is held. */
static int settle(lb__lcache *c, int r) {
    if (r == EOWNERDEAD) {
        /* Its owner died mid-update: the index may be half changed. */
        pthread_mutex_consistent(&c->h->mu);
        reset(c);
        return 0;
    }
    if (r == 0 && !header_sane(c)) reset(c);
    return r;
}

/* The lock is held only for a few index updates: a wait longer than
 * lb__lcache_lock_wait_ms means a process stopped while holding it, or a
 * lock word damaged after the file was opened (opening tries the lock:
 * map_existing). Such a handle warns once and from then on only tries the
 * lock: reads go on without the cache while it is held, and use the cache
 * again once it is free. */
static int lock(lb__lcache *c) {
    int stuck = atomic_load(&c->stuck);
    int r = timed_lock(c->h, !stuck);
    if (r == ETIMEDOUT && !atomic_exchange(&c->stuck, 1))
        lb__log(LB_LOG_WARN,
                "label cache %s: its lock has been held for over %.1f s (a process stopped "
                "while holding it, or a damaged file); reads go on without the cache while it "
                "is held. If no process is stuck, remove the file: labelbin cache-stats "
                "--remove %s",
                c->path, lb__lcache_lock_wait_ms / 1000.0, c->name);
    else if (r != 0 && r != EBUSY && r != ETIMEDOUT && r != EOWNERDEAD &&
             !atomic_exchange(&c->stuck, 1))
        lb__log(LB_LOG_WARN,
                "label cache %s: its lock is damaged (%s); reads go on without the cache. "
                "Remove the file: labelbin cache-stats --remove %s",
                c->path, strerror(r), c->name);
    r = settle(c, r);
    if (r == 0 && stuck) atomic_store(&c->stuck, 0);
    return r;
}

static void unlock(lb__lcache *c) {
    pthread_mutex_unlock(&c->h->mu);
}

/* Evict the oldest record. 0, or -1 when the ring is empty. */
static int evict_one(lb__lcache *c) {
    shm_hdr *h = c->h;
    uint64_t db = c->data_bytes;
    while (h->tail < h->head) {
        uint64_t p = h->tail % db;
        if (p + sizeof(rec) > db || ((const rec *)(const void *)(c->ring + p))->len == PAD_MARK) {
            h->tail += db - p; /* the unused end of the ring */
            atomic_store(&h->tail_pub, h->tail);
            continue;
        }
        const rec *r = (const rec *)(const void *)(c->ring + p);
        if (r->len < sizeof(rec) || r->len % 8 || p + r->len > db ||
            h->tail + r->len > h->head) {
            reset(c); /* the ring is damaged: start over */
            return 0;
        }
        slot *s = find(c, r->ds, r->chunk);
        if (s && s->pos == h->tail) {
            if (s->state == READY) h->evictions++;
            unslot(c, s);
        }
        h->tail += r->len;
        atomic_store(&h->tail_pub, h->tail);
        return 0;
    }
    return -1;
}

/* The file system is full: say so once per handle. */
static void no_room(lb__lcache *c) {
    if (atomic_exchange(&c->warned_full, 1)) return;
    struct statvfs fs;
    char avail[32];
    human(avail, sizeof avail,
          statvfs(SHM_DIR, &fs) == 0 ? (double)fs.f_bavail * (double)fs.f_frsize : 0.0);
    lb__log(LB_LOG_WARN,
            "label cache %s: no room left in /dev/shm (%s free) for more entries; chunks "
            "that do not fit are read without the cache. Free space there, give the cache "
            "fewer bytes, or make /dev/shm larger (docker: --shm-size)",
            c->path, avail);
}

int lb__lcache_test_no_room;

/* The mapped file, opened again to allocate its bytes: a descriptor, or -1
 * when the path now names another file (replaced by a process that found
 * it damaged, or removed): nothing more is stored through
 * this handle then, and a warning says so once. */
static int open_mapped(lb__lcache *c) {
    int fd = open(c->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino) return fd;
    if (fd >= 0) close(fd);
    if (!atomic_exchange(&c->warned_gone, 1))
        lb__log(LB_LOG_WARN,
                "label cache %s: the file was replaced or removed since this array opened it; "
                "this array stores no more entries in it (its entries are still read)",
                c->path);
    return -1;
}

/* Memory for bytes [off, off + n) of an index slot or a record, through
 * fd from open_mapped: 0, or the errno (lb__lcache_test_no_room: ENOSPC). */
static int room(int fd, uint64_t off, uint64_t n) {
    return lb__lcache_test_no_room ? ENOSPC : allocate(fd, off, n);
}

/* Slot i is about to be written: 0 when its bytes have memory. */
static int slot_room(lb__lcache *c, int fd, uint64_t i) {
    if (room(fd, c->index_off + i * sizeof(slot), sizeof(slot)) == 0) return 0;
    no_room(c);
    return -1;
}

/* Reserve `need` bytes at the head (evicting what is in the way): the
 * ring position, or NO_ROOM when the file system has no memory for them
 * (nothing changed then). */
#define NO_ROOM UINT64_MAX
static uint64_t reserve(lb__lcache *c, int fd, uint64_t need) {
    shm_hdr *h = c->h;
    uint64_t db = c->data_bytes, p = h->head % db;
    /* The bytes about to be written: a skip mark at the end of the ring
     * when the record does not fit there, and the record. */
    int wrap = p + need > db;
    if ((wrap && p + sizeof(rec) <= db && room(fd, c->data_off + p, sizeof(rec))) ||
        room(fd, c->data_off + (wrap ? 0 : p), need)) {
        no_room(c);
        return NO_ROOM;
    }
    if (wrap) {
        if (p + sizeof(rec) <= db) {
            rec *r = (rec *)(void *)(c->ring + p);
            r->len = PAD_MARK;
        }
        h->head += db - p;
    }
    while (h->tail + db < h->head + need)
        if (evict_one(c) != 0) break;
    uint64_t pos = h->head;
    h->head += need;
    atomic_store(&h->tail_pub, h->tail);
    return pos;
}

/* ---- entries ----------------------------------------------------------------- */

static uint64_t entry_sum(uint64_t ds, uint64_t chunk, uint64_t stamp, const void *data,
                          size_t n) {
    return lb__hash64(data, n, ds ^ lb__mix64(chunk + 1) ^ lb__mix64(stamp ^ 0x5354414d50ull));
}

int lb__lcache_get(lb__lcache *c, uint64_t ds, uint64_t chunk, uint64_t stamp, lb__buf *buf) {
    shm_hdr *h = c->h;
    uint64_t pos = 0, sum = 0;
    size_t n = 0;
    int found = 0;
    if (lock(c) == 0) {
        slot *s = find(c, ds, chunk);
        if (s && s->state == READY) {
            pos = s->pos;
            n = s->len;
            sum = s->sum;
            found = 1;
        }
        unlock(c);
    }
    uint64_t db = c->data_bytes, p = pos % db;
    if (found && (p + sizeof(rec) + n > db || n == 0 || p % 8)) found = 0; /* damaged index */
    size_t at = buf->size;
    if (found) {
        if (n > SIZE_MAX - at || lb__buf_reserve(buf, at + n, NULL)) return LB_ENOMEM;
        const rec *r = (const rec *)(const void *)(c->ring + p);
        int same_key = r->ds == ds && r->chunk == chunk;
        uint64_t was = r->stamp;
        int intact = 0;
        memcpy(buf->data + at, c->ring + p + sizeof(rec), n);
        atomic_thread_fence(memory_order_acquire);
        /* The ring passed over the record while it was copied: a miss. */
        if (atomic_load(&h->tail_pub) > pos) {
            found = 0;
        } else if (!(intact = same_key && entry_sum(ds, chunk, was, buf->data + at, n) == sum) ||
                   (stamp != LB__STAMP_ANY && was != stamp)) {
            /* Damaged, or stored from a source that has changed since. */
            atomic_fetch_add(intact ? &h->stale : &h->corrupt, 1);
            if (lock(c) == 0) {
                slot *s = find(c, ds, chunk);
                if (s && s->pos == pos) unslot(c, s);
                unlock(c);
            }
            found = 0;
        }
    }
    if (found) {
        buf->size = at + n;
        atomic_fetch_add(&h->hits, 1);
        atomic_fetch_add(&c->my_hits, 1);
        return 1;
    }
    atomic_fetch_add(&h->misses, 1);
    atomic_fetch_add(&c->my_misses, 1);
    return 0;
}

/* lb__lcache_put with the file open as fd (open_mapped). */
static void put(lb__lcache *c, int fd, uint64_t ds, uint64_t chunk, uint64_t stamp,
                const void *data, size_t n, uint64_t raw) {
    shm_hdr *h = c->h;
    uint64_t need = sizeof(rec) + ((n + 7) & ~(size_t)7);
    if (lock(c) != 0) return;
    slot *s = find(c, ds, chunk);
    if (s) {
        /* Filled already, or being filled by a live process. */
        if (s->state == READY || pid_alive(s->pid)) {
            unlock(c);
            return;
        }
        unslot(c, s); /* its filler died */
    }
    uint64_t pos = reserve(c, fd, need);
    if (pos == NO_ROOM) {
        unlock(c);
        return;
    }
    /* Keep the index at most 3/4 full: evict the oldest as needed. */
    while (h->used_slots + 1 > c->nslots / 4 * 3)
        if (evict_one(c) != 0) break;
    if (h->tail > pos || h->used_slots + 1 > c->nslots / 4 * 3) {
        unlock(c);
        return;
    }
    uint64_t p = pos % c->data_bytes;
    rec *r = (rec *)(void *)(c->ring + p);
    r->len = need;
    r->ds = ds;
    r->chunk = chunk;
    r->stamp = stamp;
    int64_t i = empty_slot(c, ds, chunk);
    if (i < 0) reset(c); /* the record is left to the ring, like an abandoned fill */
    if (i < 0 || slot_room(c, fd, (uint64_t)i)) {
        unlock(c);
        return;
    }
    s = &c->slots[i];
    s->ds = ds;
    s->chunk = chunk;
    s->pos = pos;
    s->len = (uint32_t)n;
    s->sum = 0;
    s->raw = raw;
    s->pid = (int32_t)getpid();
    s->state = FILLING;
    h->used_slots++;
    unlock(c);

    /* The data, outside the lock; after the ring's new tail (reserve) is
     * visible, so that a reader who copies any of these bytes from an
     * entry they overwrite sees that entry passed (the reader's acquire
     * fence in lb__lcache_get pairs with this; x86 orders stores anyway).
     * GCC's ThreadSanitizer refuses the fence: its builds, x86 only, leave
     * it out. */
#ifndef __SANITIZE_THREAD__
    atomic_thread_fence(memory_order_release);
#endif
    memcpy(c->ring + p + sizeof(rec), data, n);
    uint64_t sum = entry_sum(ds, chunk, stamp, data, n);

    if (lock(c) != 0) return;
    s = find(c, ds, chunk);
    if (s && s->pos == pos && s->state == FILLING) {
        s->sum = sum;
        s->state = READY; /* published: readers may use it from now on */
        h->entries++;
        h->bytes += need;
        h->raw_bytes += raw;
        if (raw == 0) h->declined++;
        h->inserts++;
    }
    unlock(c);
}

void lb__lcache_put(lb__lcache *c, uint64_t ds, uint64_t chunk, uint64_t stamp,
                    const void *data, size_t n, uint64_t raw) {
    uint64_t need = sizeof(rec) + ((n + 7) & ~(size_t)7);
    if (n == 0) return;
    if (n > UINT32_MAX || need > c->data_bytes / 2) {
        /* An entry may take at most half the ring: a larger one would
         * evict everything else, or not fit at all. */
        if (!atomic_exchange(&c->warned_large, 1)) {
            char e[32], r[32];
            human(e, sizeof e, (double)need);
            human(r, sizeof r, (double)c->data_bytes);
            lb__log(LB_LOG_WARN,
                    "label cache %s: a chunk's entry takes %s, more than half of the %s the "
                    "cache has for entries: chunks that large are read without the cache; give "
                    "it more bytes (at least 2 entries' worth, better many)",
                    c->path, e, r);
        }
        return;
    }
    int fd = open_mapped(c);
    if (fd < 0) return;
    put(c, fd, ds, chunk, stamp, data, n, raw);
    close(fd);
}

void lb__lcache_count_as_miss(lb__lcache *c) {
    atomic_fetch_sub(&c->h->hits, 1);
    atomic_fetch_add(&c->h->misses, 1);
    atomic_fetch_sub(&c->my_hits, 1);
    atomic_fetch_add(&c->my_misses, 1);
}

void lb__lcache_uncount(lb__lcache *c, int hit) {
    atomic_fetch_sub(hit ? &c->h->hits : &c->h->misses, 1);
    atomic_fetch_sub(hit ? &c->my_hits : &c->my_misses, 1);
}

void lb__lcache_drop(lb__lcache *c, uint64_t ds, uint64_t chunk) {
    if (lock(c) != 0) return;
    slot *s = find(c, ds, chunk);
    if (s) unslot(c, s);
    unlock(c);
}

void lb__lcache_get_stats(lb__lcache *c, lb__lcache_stats *out) {
    shm_hdr *h = c->h;
    memset(out, 0, sizeof *out);
    if (lock(c) == 0) {
        out->entries = h->entries;
        out->bytes = h->bytes;
        out->raw_bytes = h->raw_bytes;
        out->declined = h->declined;
        out->inserts = h->inserts;
        out->evictions = h->evictions;
        unlock(c);
    }
    out->capacity = c->data_bytes;
    out->max_entries = c->nslots / 4 * 3;
    out->hits = atomic_load(&h->hits);
    out->misses = atomic_load(&h->misses);
    out->corrupt = atomic_load(&h->corrupt);
    out->stale = atomic_load(&h->stale);
    out->my_hits = atomic_load(&c->my_hits);
    out->my_misses = atomic_load(&c->my_misses);
    struct stat st;
    struct statvfs fs;
    if (stat(c->path, &st) == 0) out->memory = (uint64_t)st.st_blocks * 512u;
    if (statvfs(c->path, &fs) == 0) {
        out->fs_free = (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize;
        out->fs_size = (uint64_t)fs.f_blocks * (uint64_t)fs.f_frsize;
    }
}

int lb__lcache_remove(const char *name, lb_error *err) {
    lb__lcache c;
    memset(&c, 0, sizeof c);
    int rc = set_names(&c, name, err);
    if (rc) return rc;
    sweep_temporaries(c.name);
    int fd;
    size_t size;
    if ((rc = open_ours(&c, O_RDONLY, "not removed", &fd, &size, err)) != 0) return rc;
    close(fd);
    if (unlink(c.path) != 0) return lb__err_errno(err, errno, "cannot remove the cache file", c.path);
    return 0;
}

void lb__lcache_test_abandon_fill(lb__lcache *c, uint64_t ds, uint64_t chunk, size_t n) {
    shm_hdr *h = c->h;
    uint64_t need = sizeof(rec) + ((n + 7) & ~(size_t)7);
    int fd = open_mapped(c);
    if (fd < 0) return;
    if (lock(c) != 0) {
        close(fd);
        return;
    }
    uint64_t pos = reserve(c, fd, need);
    if (pos == NO_ROOM) {
        unlock(c);
        close(fd);
        return;
    }
    rec *r = (rec *)(void *)(c->ring + pos % c->data_bytes);
    r->len = need;
    r->ds = ds;
    r->chunk = chunk;
    r->stamp = 0;
    int64_t i = empty_slot(c, ds, chunk);
    int no_slot = i < 0 || slot_room(c, fd, (uint64_t)i);
    close(fd);
    if (no_slot) {
        unlock(c);
        return;
    }
    slot *s = &c->slots[i];
    memset(s, 0, sizeof *s);
    s->ds = ds;
    s->chunk = chunk;
    s->pos = pos;
    s->len = (uint32_t)n;
    s->pid = (int32_t)getpid();
    s->state = FILLING;
    h->used_slots++;
    unlock(c);
    memset(c->ring + pos % c->data_bytes + sizeof(rec), 0xAB, n / 2); /* half written */
}

void lb__lcache_test_take_lock(lb__lcache *c) {
    (void)lock(c);
}
