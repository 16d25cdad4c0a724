/*
 * test_http.c — the http(s)/s3 store back end against a small HTTP/1.1
 * server of this test on loopback (one thread per connection, keep-alive,
 * byte ranges, injected failures): URL parsing and keys without
 * credentials, whole and range reads (suffix, to the end, past the end,
 * empty objects), absence only on a 404, retries then LB_EIO naming the URL,
 * metadata fetched once, and many threads reading one store at once (run
 * under ThreadSanitizer by `make test`).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store/store.h"
#include "tap.h"

/* ---- the server ---------------------------------------------------------- */

typedef struct object {
    const char *path;
    const char *data;
    size_t n;
} object;

static char big[100000];
static object objects[] = {
    {"/d/a.bin", "0123456789", 10},
    {"/d/empty", "", 0},
    {"/d/c.zarr/x/.zarray", "{\"zarr_format\": 2}", 18},
    {"/d/big", big, sizeof big},
    {"/d/flaky", "flaky bytes", 11},
    {"/d/broken", "never", 5},
    {"/d/html", "<html>error</html>", 18},
    {"/d/norange", "ranges are ignored here", 23},
};

static atomic_int requests;   /* every request */
static atomic_int meta_gets;  /* GETs of /d/c.zarr/x/.zarray */
static atomic_int flaky_left; /* 503s before /d/flaky answers */

static const object *find(const char *path) {
    for (size_t i = 0; i < sizeof objects / sizeof *objects; i++)
        if (strcmp(objects[i].path, path) == 0) return &objects[i];
    return NULL;
}

static int send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int reply(int fd, int status, const char *extra, const char *body, size_t n,
                 int head) {
    char h[512];
    int k = snprintf(h, sizeof h, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", status, n,
                     extra ? extra : "");
    if (send_all(fd, h, (size_t)k)) return -1;
    return head || !n ? 0 : send_all(fd, body, n);
}

/* One request from `buf` (headers complete); -1 to close the connection. */
static int serve(int fd, char *buf) {
    atomic_fetch_add(&requests, 1);
    char method[8], path[256];
    if (sscanf(buf, "%7s %255s", method, path) != 2) return -1;
    int head = strcmp(method, "HEAD") == 0;
    const char *range = strstr(buf, "\r\nRange: bytes="); /* as curl writes it */
    if (strcmp(path, "/d/c.zarr/x/.zarray") == 0 && !head) atomic_fetch_add(&meta_gets, 1);
    if (strcmp(path, "/d/flaky") == 0 && atomic_fetch_sub(&flaky_left, 1) > 0)
        return reply(fd, 503, "Retry-After: 0\r\n", "busy", 4, head);
    if (strcmp(path, "/d/broken") == 0) return reply(fd, 500, NULL, "oops", 4, head);
    const object *o = find(path);
    if (!o) return reply(fd, 404, NULL, "not found", 9, head);
    if (strcmp(path, "/d/html") == 0)
        return reply(fd, 200, "Content-Type: text/html\r\n", o->data, o->n, head);
    if (!range || strcmp(path, "/d/norange") == 0) return reply(fd, 200, NULL, o->data, o->n, head);
    range += strlen("\r\nRange: bytes=");
    long long a = -1, b = -1, n = (long long)o->n;
    if (range[0] == '-') {
        long long s = atoll(range + 1);
        a = s >= n ? 0 : n - s;
        b = n - 1;
    } else {
        a = atoll(range);
        const char *dash = strchr(range, '-');
        b = dash && dash[1] >= '0' && dash[1] <= '9' ? atoll(dash + 1) : n - 1;
        if (b > n - 1) b = n - 1;
    }
    if (n == 0 || a > b || a >= n) {
        char cr[64];
        snprintf(cr, sizeof cr, "Content-Range: bytes */%lld\r\n", n);
        return reply(fd, 416, cr, "", 0, head);
    }
    char cr[96];
    snprintf(cr, sizeof cr, "Content-Range: bytes %lld-%lld/%lld\r\n", a, b, n);
    return reply(fd, 206, cr, o->data + a, (size_t)(b - a + 1), head);
}

static void *conn_main(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    size_t have = 0;
    for (;;) {
        char *end = have ? strstr(buf, "\r\n\r\n") : NULL;
        if (!end) {
            if (have >= sizeof buf - 1) break;
            ssize_t k = recv(fd, buf + have, sizeof buf - 1 - have, 0);
            if (k <= 0) break;
            have += (size_t)k;
            buf[have] = '\0';
            continue;
        }
        size_t used = (size_t)(end + 4 - buf);
        end[2] = '\0';
        if (serve(fd, buf)) break;
        memmove(buf, buf + used, have - used + 1);
        have -= used;
    }
    close(fd);
    return NULL;
}

static int listen_fd;
static int port;

static void *accept_main(void *arg) {
    (void)arg;
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) return NULL;
        int one = 1; /* headers and body are two writes: no delayed-ACK wait */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd) == 0) pthread_detach(t);
        else close(fd);
    }
}

static int start_server(void) {
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof a) ||
        listen(listen_fd, 128) || getsockname(listen_fd, (struct sockaddr *)&a, &len))
        return -1;
    port = ntohs(a.sin_port);
    pthread_t t;
    if (pthread_create(&t, NULL, accept_main, NULL)) return -1;
    pthread_detach(t);
    return 0;
}

/* ---- tests ------------------------------------------------------------------ */

static lb__store *open_store(const char *url, char **path) {
    lb_error e = {0};
    lb__store *s = NULL;
    int rc = lb__store_open(url, &s, path, &e);
    CHECK_INT(rc, 0);
    if (rc) fprintf(stderr, "  %s\n", e.message);
    return s;
}

static void test_urls(void) {
    char *p = NULL;
    lb__store *s = open_store("HTTPS://User:pw@Example.ORG:8443/a/./b/../c.zarr/x/?tok=secret", &p);
    CHECK_STR(p, "https://example.org:8443/a/c.zarr/x");
    CHECK_STR(lb__store_scheme(s), "https");
    CHECK_INT(lb__store_writable(s), 0);
    CHECK(lb__store_concurrency(s) > 1);
    char buf[256];
    lb__store_describe(s, p, buf, sizeof buf);
    CHECK(!strstr(buf, "pw") && !strstr(buf, "secret") && !strstr(buf, "User"));
    lb_error e = {0};
    CHECK_INT(lb__store_put(s, p, "x", 1, &e), LB_EUNSUPPORTED);
    CHECK_MSG(e, "read-only");
    CHECK_INT(lb__store_list(s, p, NULL, NULL, &e), LB_EUNSUPPORTED);
    lb__store_free(s);
    free(p);
    p = NULL;
    s = open_store("s3://my-bucket/crop.zarr/labels", &p);
    CHECK_STR(p, "s3://my-bucket/crop.zarr/labels");
    CHECK_STR(lb__store_scheme(s), "s3");
    lb__store_free(s);
    free(p);
    p = NULL;
    s = open_store("http://host", &p);
    CHECK_STR(p, "http://host");
    lb__store_free(s);
    free(p);
    /* ".." is not allowed after the container, as for paths */
    s = NULL;
    p = NULL;
    CHECK_INT(lb__store_open("http://h/c.zarr/../x", &s, &p, &e), LB_EINVAL);
    CHECK_INT(lb__store_open("gopher://h/x", &s, &p, &e), LB_EUNSUPPORTED);
    CHECK_MSG(e, "gopher://");
}

static void test_reads(const char *base) {
    char url[128];
    snprintf(url, sizeof url, "%s/d", base);
    char *root = NULL;
    lb__store *s = open_store(url, &root);
    if (!s) return;
    char key[256];
    lb_error e = {0};
    lb__buf b = {0};
    uint64_t total = 0;
#define KEY(name) (snprintf(key, sizeof key, "%s/%s", root, name), key)
    CHECK_INT(lb__store_get(s, KEY("a.bin"), NULL, 100, &b, &total, &e), 0);
    CHECK(b.size == 10 && memcmp(b.data, "0123456789", 10) == 0 && b.data[10] == 0);
    CHECK_INT(total, 10);
    lb__range r = {2, 3, 0};
    CHECK_INT(lb__store_get(s, KEY("a.bin"), &r, 100, &b, &total, &e), 0);
    CHECK(b.size == 3 && memcmp(b.data, "234", 3) == 0 && b.data[3] == 0);
    CHECK_INT(total, 10);
    lb__range suf = {0, 4, 1};
    CHECK_INT(lb__store_get(s, KEY("a.bin"), &suf, 100, &b, &total, &e), 0);
    CHECK(b.size == 4 && memcmp(b.data, "6789", 4) == 0);
    lb__range longsuf = {0, 40, 1}; /* longer than the object: all of it */
    CHECK_INT(lb__store_get(s, KEY("a.bin"), &longsuf, 100, &b, &total, &e), 0);
    CHECK_INT(b.size, 10);
    lb__range toend = {7, LB__RANGE_TO_END, 0};
    CHECK_INT(lb__store_get(s, KEY("a.bin"), &toend, 100, &b, &total, &e), 0);
    CHECK(b.size == 3 && memcmp(b.data, "789", 3) == 0);
    lb__range past = {8, 5, 0};
    CHECK_INT(lb__store_get(s, KEY("a.bin"), &past, 100, &b, &total, &e), LB_EFORMAT);
    CHECK_MSG(e, "past the end of the 10-byte object");
    lb__range far = {20, 1, 0};
    CHECK_INT(lb__store_get(s, KEY("a.bin"), &far, 100, &b, &total, &e), LB_EFORMAT);
    lb__range none = {10, 0, 0};
    CHECK_INT(lb__store_get(s, KEY("a.bin"), &none, 100, &b, &total, &e), 0);
    CHECK_INT(b.size, 0);
    CHECK_INT(lb__store_get(s, KEY("empty"), &suf, 100, &b, &total, &e), 0);
    CHECK_INT(b.size, 0);
    CHECK_INT(total, 0);
    CHECK_INT(lb__store_get(s, KEY("empty"), NULL, 100, &b, &total, &e), 0);
    CHECK_INT(b.size, 0);
    CHECK_INT(lb__store_get(s, KEY("a.bin"), NULL, 5, &b, NULL, &e), LB_ELIMIT);
    /* a server that ignores ranges: the range is cut from the whole */
    lb__range mid = {7, 6, 0};
    CHECK_INT(lb__store_get(s, KEY("norange"), &mid, 100, &b, &total, &e), 0);
    CHECK(b.size == 6 && memcmp(b.data, "are ig", 6) == 0);
    CHECK_INT(lb__store_get(s, KEY("norange"), &suf, 100, &b, &total, &e), 0);
    CHECK(b.size == 4 && memcmp(b.data, "here", 4) == 0);
    /* absence, and only on a 404 */
    CHECK_INT(lb__store_get(s, KEY("nope"), NULL, 100, &b, NULL, &e), LB_ENOTFOUND);
    CHECK_INT(lb__store_kind(s, KEY("nope")), LB__KEY_NONE);
    CHECK_INT(lb__store_kind(s, KEY("a.bin")), LB__KEY_OBJECT);
    CHECK_INT(lb__store_kind(s, KEY("broken")), LB__KEY_OTHER);
    uint64_t size = 0;
    CHECK_INT(lb__store_size(s, KEY("big"), &size, &e), 0);
    CHECK_INT(size, sizeof big);
    CHECK_INT(lb__store_get(s, "http://elsewhere/d/a.bin", NULL, 100, &b, NULL, &e),
              LB_ENOTFOUND);
    /* failures: retried, then LB_EIO naming the URL and the status */
    atomic_store(&flaky_left, 2);
    CHECK_INT(lb__store_get(s, KEY("flaky"), NULL, 100, &b, NULL, &e), 0);
    CHECK(b.size == 11 && memcmp(b.data, "flaky bytes", 11) == 0);
    atomic_store(&flaky_left, 100);
    CHECK_INT(lb__store_get(s, KEY("flaky"), NULL, 100, &b, NULL, &e), LB_EIO);
    CHECK_MSG(e, "/d/flaky: HTTP 503 (Service Unavailable)");
    CHECK_MSG(e, "gave up after 3 attempts");
    CHECK_INT(b.size, 0);
    atomic_store(&flaky_left, 0);
    CHECK_INT(lb__store_get(s, KEY("broken"), NULL, 100, &b, NULL, &e), LB_EIO);
    CHECK_MSG(e, "HTTP 500");
    CHECK_INT(lb__store_get(s, KEY("html"), NULL, 100, &b, NULL, &e), LB_EIO);
    CHECK_MSG(e, "HTML page");
    /* metadata: once per store, however often asked */
    for (int i = 0; i < 3; i++) {
        CHECK_INT(lb__store_get(s, KEY("c.zarr/x/.zarray"), NULL, LB__MAX_META_BYTES, &b, NULL,
                                &e), 0);
        CHECK_INT(lb__store_kind(s, key), LB__KEY_OBJECT);
    }
    CHECK_INT(atomic_load(&meta_gets), 1);
    lb__buf_free(&b);
    lb__store_free(s);
    free(root);
#undef KEY
}

typedef struct reader {
    lb__store *s;
    const char *root;
    int ok;
} reader;

static void *reader_main(void *arg) {
    reader *r = arg;
    lb__buf b = {0};
    lb_error e = {0};
    char key[256];
    snprintf(key, sizeof key, "%s/big", r->root);
    r->ok = 1;
    for (int i = 0; i < 40; i++) {
        uint64_t off = (uint64_t)(i * 997) % (sizeof big - 300);
        lb__range rg = {off, 257, 0};
        if (lb__store_get(r->s, key, &rg, 1000, &b, NULL, &e) || b.size != 257 ||
            memcmp(b.data, big + off, 257) != 0)
            r->ok = 0;
    }
    lb__buf_free(&b);
    return NULL;
}

static void test_threads(const char *base) {
    char url[128];
    snprintf(url, sizeof url, "%s/d", base);
    char *root = NULL;
    lb__store *s = open_store(url, &root);
    if (!s) return;
    enum { N = 12 };
    pthread_t t[N];
    reader rd[N];
    int before = atomic_load(&requests);
    for (int i = 0; i < N; i++) {
        rd[i] = (reader){s, root, 0};
        pthread_create(&t[i], NULL, reader_main, &rd[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        CHECK(rd[i].ok);
    }
    CHECK_INT(atomic_load(&requests) - before, N * 40);
    lb__store_free(s);
    free(root);
}

int main(void) {
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + (i * 7 + i / 13) % 26);
    /* quick retries; loopback never through a proxy */
    setenv("LB_HTTP_RETRIES", "2", 1);
    setenv("LB_HTTP_BACKOFF", "0.001", 1);
    setenv("LB_HTTP_BACKOFF_MAX", "0.01", 1);
    setenv("LB_HTTP_CONCURRENCY", "4", 1);
    setenv("NO_PROXY", "127.0.0.1", 1);
    setenv("no_proxy", "127.0.0.1", 1);
    if (!getenv("TEST_HTTP_VERBOSE")) unsetenv("LB_VERBOSE");
    test_urls();
    if (start_server()) {
        perror("test_http: loopback server");
        return 1;
    }
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    test_reads(base);
    test_threads(base);
    return tap_done();
}
