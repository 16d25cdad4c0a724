/*
 * test_log.c — the library's log: silent (nothing on stderr, LB_VERBOSE or
 * not) until a handler is set; then retries at LB_LOG_INFO, every request at
 * LB_LOG_DEBUG, never a credential; handler calls that never overlap and
 * that stop when lb_set_log_handler returns (run under ThreadSanitizer by
 * `make test`), forks while a handler runs; lb_path_display.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/path.h"
#include "tap.h"

/* ---- lb_path_display ------------------------------------------------------ */

static void check_display(const char *in, const char *want) {
    char buf[256];
    size_t n = lb_path_display(in, buf, sizeof buf);
    CHECK_STR(buf, want);
    CHECK_INT((long long)n, (long long)strlen(want));
}

static void test_display(void) {
    check_display("https://user:pass@Example.org:8443/a.zarr/b?X-Amz-Signature=s#f",
                  "https://Example.org:8443/a.zarr/b");
    check_display("http://user@host/a?b", "http://host/a");
    check_display("http://u:p@w@host", "http://host"); /* the last '@' ends userinfo */
    check_display("http://host?token=x", "http://host");
    check_display("s3://bucket/key.zarr/a", "s3://bucket/key.zarr/a");
    check_display("ftp://u:secret@h/x", "ftp://h/x");
    /* not URLs: unchanged, '@' and '?' included */
    check_display("crop.zarr/labels/all", "crop.zarr/labels/all");
    check_display("dir/user:pass@x?y", "dir/user:pass@x?y");
    check_display("/data/a://b?c", "/data/a://b?c");
    check_display("", "");
    /* snprintf-like: truncated, the length of the whole */
    char small[8];
    CHECK_INT((long long)lb_path_display("http://u:p@host/abcdef", small, sizeof small),
              (long long)strlen("http://host/abcdef"));
    CHECK_STR(small, "http://");
    CHECK_INT((long long)lb_path_display("http://u:p@h/x", NULL, 0), 10);
}

/* ---- URLs inside messages (every lb_error and log line) --------------------- */

static void check_hidden(const char *in, const char *want) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", in);
    lb__hide_credentials(buf);
    CHECK_STR(buf, want);
}

static void test_hide(void) {
    check_hidden("http://u:secret@h:80/a.zarr/.zarray: HTTP 500",
                 "http://h:80/a.zarr/.zarray: HTTP 500");
    check_hidden("GET https://h/a/0.0?X-Amz-Signature=secret -> 200, 5 bytes",
                 "GET https://h/a/0.0 -> 200, 5 bytes");
    check_hidden("s3://b/k?x: s3:// URLs take no query string",
                 "s3://b/k: s3:// URLs take no query string");
    check_hidden("two: 'http://a:b@x/1?q' and \"https://c@y/2#f\", done",
                 "two: 'http://x/1' and \"https://y/2\", done");
    check_hidden("http://u:p@h/a,b/c, then more", "http://h/a,b/c, then more");
    check_hidden("crop.zarr/mito: no user:pass@here?x", "crop.zarr/mito: no user:pass@here?x");
    check_hidden("http://u:secret@h", "http://h");
    check_hidden("", "");
    /* through lb_array_open's error: the password is not in the message */
    lb_error e = {0};
    lb_array *a = NULL;
    CHECK(lb_array_open("ftp://u:secret@h/x.zarr?sig=secret", LB_OPEN_READONLY, NULL, 0, &a,
                        &e) != 0);
    CHECK(strstr(e.message, "secret") == NULL);
    CHECK(strstr(e.message, "ftp://h/x.zarr") != NULL);
}

/* ---- what a handler receives ----------------------------------------------- */

typedef struct seen {
    int calls, info, debug, bad; /* bad: a newline, a prefix or a secret */
    char last[512];
} seen;

static void collect(void *user, int level, const char *message) {
    seen *s = user;
    s->calls++;
    if (level == LB_LOG_INFO) s->info++;
    if (level == LB_LOG_DEBUG) s->debug++;
    if (strchr(message, '\n') || strncmp(message, "labelbin:", 9) == 0 ||
        strstr(message, "secret"))
        s->bad++;
    snprintf(s->last, sizeof s->last, "%s", message);
}

/* A loopback port with nothing listening: connections fail at once. */
static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return 9;
    close(fd);
    return ntohs(a.sin_port);
}

/* Open a URL with credentials on a closed port: it fails after retries. */
static void open_closed(const char *url) {
    lb_array *a = NULL;
    lb_error e = {0};
    CHECK(lb_array_open(url, LB_OPEN_READONLY, NULL, 0, &a, &e) == LB_EIO);
    CHECK(strstr(e.message, "secret") == NULL);
    CHECK(strstr(e.message, "gave up after 3 attempts") != NULL);
    lb_array_free(a);
}

static void test_remote(void) {
    char url[256];
    snprintf(url, sizeof url, "http://user:secret@127.0.0.1:%d/x.zarr/a?X-Amz-Signature=secret",
             closed_port());
    setenv("LB_HTTP_RETRIES", "2", 1);
    setenv("LB_HTTP_BACKOFF", "0.001", 1);
    setenv("LB_HTTP_BACKOFF_MAX", "0.001", 1);
    setenv("NO_PROXY", "127.0.0.1", 1);
    setenv("no_proxy", "127.0.0.1", 1);

    /* No handler: not a byte on stderr, whatever LB_VERBOSE says. */
    setenv("LB_VERBOSE", "2", 1);
    lb_set_log_handler(NULL, NULL, LB_LOG_DEBUG);
    FILE *cap = tmpfile();
    int saved = dup(STDERR_FILENO);
    CHECK(cap && saved >= 0);
    fflush(stderr);
    dup2(fileno(cap), STDERR_FILENO);
    open_closed(url);
    lb__log(LB_LOG_ERROR, "no handler: %s", "dropped");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    fseek(cap, 0, SEEK_END);
    CHECK_INT(ftell(cap), 0);
    fclose(cap);

    /* INFO: each retry (2 per failed object), no request lines. */
    seen s = {0};
    lb_set_log_handler(collect, &s, LB_LOG_INFO);
    open_closed(url);
    CHECK(s.info >= 2 && s.info % 2 == 0);
    CHECK_INT(s.debug, 0);
    CHECK_INT(s.bad, 0);
    CHECK(strstr(s.last, "; retry 2 of 2 in ") != NULL);
    CHECK(strstr(s.last, "http://127.0.0.1:") == s.last);

    /* DEBUG: also one line per request (3 attempts per failed object). */
    memset(&s, 0, sizeof s);
    lb_set_log_handler(collect, &s, LB_LOG_DEBUG);
    open_closed(url);
    CHECK(s.debug >= 3 && s.debug % 3 == 0);
    CHECK_INT(s.info * 3, s.debug * 2);
    CHECK_INT(s.bad, 0);

    /* Removed: no more calls. */
    memset(&s, 0, sizeof s);
    lb_set_log_handler(NULL, &s, LB_LOG_DEBUG);
    open_closed(url);
    lb_set_log_handler(collect, &s, LB_LOG_OFF);
    open_closed(url);
    CHECK_INT(s.calls, 0);
    unsetenv("LB_VERBOSE");
}

/* ---- levels -------------------------------------------------------------- */

static void test_levels(void) {
    seen s = {0};
    lb_set_log_handler(collect, &s, LB_LOG_WARN);
    CHECK(lb__log_enabled(LB_LOG_ERROR) && lb__log_enabled(LB_LOG_WARN));
    CHECK(!lb__log_enabled(LB_LOG_INFO) && !lb__log_enabled(LB_LOG_DEBUG));
    CHECK(!lb__log_enabled(0) && !lb__log_enabled(99));
    lb__log(LB_LOG_WARN, "w %d", 1);
    lb__log(LB_LOG_INFO, "i %d", 2);
    CHECK_INT(s.calls, 1);
    CHECK_STR(s.last, "w 1");
    lb_set_log_handler(collect, &s, 42); /* above DEBUG: DEBUG */
    lb__log(LB_LOG_DEBUG, "d");
    CHECK_INT(s.calls, 2);
    lb_set_log_handler(NULL, NULL, 0);
    CHECK(!lb__log_enabled(LB_LOG_ERROR));
}

/* ---- threads -------------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 2000

typedef struct counter {
    atomic_int calls;
    atomic_int inside; /* handlers running now, over both counters */
    atomic_int overlap;
} counter;

static atomic_int running; /* any handler, either counter */
static atomic_int overlaps;

static void count_call(void *user, int level, const char *message) {
    counter *c = user;
    if (atomic_fetch_add(&running, 1) != 0) atomic_fetch_add(&overlaps, 1);
    atomic_fetch_add(&c->inside, 1);
    atomic_fetch_add(&c->calls, 1);
    atomic_fetch_sub(&c->inside, 1);
    atomic_fetch_sub(&running, 1);
}

static void *logger(void *arg) {
    for (int i = 0; i < PER_THREAD; i++) lb__log(LB_LOG_INFO, "thread %d, message %d", *(int *)arg, i);
    return NULL;
}

/* Many threads log while the main thread swaps handlers: every message
 * reaches exactly one of them, calls never overlap, and a handler that was
 * replaced is not running once lb_set_log_handler has returned. */
static void test_threads(void) {
    static counter a, b;
    pthread_t t[THREADS];
    lb_set_log_handler(count_call, &a, LB_LOG_INFO);
    static int ids[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ids[i] = i;
        pthread_create(&t[i], NULL, logger, &ids[i]);
    }
    int stale = 0;
    for (int k = 0; k < 200; k++) {
        counter *now = k % 2 ? &a : &b, *before = k % 2 ? &b : &a;
        lb_set_log_handler(count_call, now, LB_LOG_INFO);
        if (atomic_load(&before->inside) != 0) stale++;
    }
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    lb_set_log_handler(NULL, NULL, LB_LOG_OFF);
    CHECK_INT(atomic_load(&a.calls) + atomic_load(&b.calls), THREADS * PER_THREAD);
    CHECK_INT(atomic_load(&overlaps), 0);
    CHECK_INT(stale, 0);
}

/* Forks while other threads are inside the handler: each child can still
 * log (its copy of the lock is free); a deadlocked child is ended by its
 * alarm and fails the check. */
static atomic_int stop_forking;

static void quiet_handler(void *user, int level, const char *message) {
    atomic_fetch_add((atomic_int *)user, 1);
}

static void *busy_logger(void *arg) {
    while (!atomic_load(&stop_forking)) lb__log(LB_LOG_INFO, "busy");
    return NULL;
}

static void test_fork(void) {
    static atomic_int calls;
    pthread_t t[2];
    lb_set_log_handler(quiet_handler, &calls, LB_LOG_INFO);
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, busy_logger, NULL);
    int ok = 0;
    for (int k = 0; k < 50; k++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(20);
            lb__log(LB_LOG_INFO, "child");
            lb_set_log_handler(NULL, NULL, LB_LOG_OFF);
            _exit(0);
        }
        int status = 0;
        if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0)
            ok++;
    }
    atomic_store(&stop_forking, 1);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    lb_set_log_handler(NULL, NULL, LB_LOG_OFF);
    CHECK_INT(ok, 50);
    CHECK(atomic_load(&calls) > 0);
}

int main(void) {
    test_display();
    test_hide();
    test_levels();
    test_threads();
    test_fork();
    test_remote();
    return tap_done();
}
