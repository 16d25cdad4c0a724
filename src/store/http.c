/*
 * http.c — read-only stores over HTTP(S) and S3, on libcurl. A key is the
 * URL a user sees (scheme://host[:port]/path or s3://bucket/path: never
 * credentials or a query string), so every message that names a key names
 * the URL safely; the request URL is made from it when a request is sent.
 *
 * Absence must be definite: only a 404 (and, for anonymous S3, the 403 that
 * S3 gives for a missing key when listing is not allowed) reads as "no such
 * key". Every other failure — 5xx, 408/429, timeouts, resets, short bodies,
 * a Content-Range that is not the one asked for, an HTML page where data
 * was expected — is retried with capped exponential backoff and jitter, then
 * fails as LB_EIO naming the URL and the status. Nothing of a failed request
 * is ever returned as data.
 *
 * Easy handles are pooled per store (each used by one thread at a time,
 * keeping its connections alive between requests); DNS and TLS sessions are
 * shared between them through a curl share object with locks. Metadata
 * documents (.zarray, zarr.json, …) are fetched once per store and kept,
 * absence included.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/path.h"
#include "store/backend.h"

#ifndef LB_VERSION
#define LB_VERSION "0"
#endif

/* A server that ignores a range answers with the whole object: accepted
 * (and cut) up to this size, refused beyond it. */
#define IGNORED_RANGE_CAP ((size_t)256 << 20)
/* Bytes of an error response kept for its message (S3's XML). */
#define ERRBODY 1024

typedef struct conf {
    long retries;      /* LB_HTTP_RETRIES: retries after the first attempt  */
    long backoff_ms;   /* LB_HTTP_BACKOFF: first wait                       */
    long backoff_max;  /* LB_HTTP_BACKOFF_MAX: longest wait                 */
    long connect_ms;   /* LB_HTTP_CONNECT_TIMEOUT                           */
    long stall_s;      /* LB_HTTP_STALL_TIMEOUT: < 1 byte/s for this long   */
    long redirects;    /* LB_HTTP_MAX_REDIRECTS                             */
    long threads;      /* LB_HTTP_CONCURRENCY: requests in flight at once */
    char *cainfo, *capath;
} conf;

typedef struct handle {
    CURL *h;
    char errbuf[CURL_ERROR_SIZE];
    struct handle *next;
} handle;

typedef struct meta_entry {
    char *key;
    uint8_t *data; /* NULL: absent */
    size_t n;
    struct meta_entry *next;
} meta_entry;

typedef struct http_state {
    char *prefix;       /* keys start with it: "https://host:8443", "s3://bucket"  */
    char *base;         /* requests replace the prefix with it (userinfo kept)     */
    char *query;        /* "?…" appended to every request (http only), or NULL    */
    int s3, signed_s3;  /* an s3:// store; requests signed with SigV4             */
    char *sigv4, *user, *secret;
    struct curl_slist *headers;
    conf cf;
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    pthread_mutex_t mu; /* the pool, the metadata cache, the request slots */
    pthread_cond_t slot_free;
    int in_flight;      /* requests under way, at most cf.threads */
    pid_t pid;          /* the process the pooled handles belong to */
    handle *pool;
    meta_entry *meta;
    atomic_ullong rng;
} http_state;

/* ------------------------------------------------------------------------
 * Process-wide curl initialisation (curl_global_init is not thread-safe
 * before curl 7.84: once, under pthread_once)
 * ------------------------------------------------------------------------ */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ------------------------------------------------------------------------
 * Settings from the environment
 * ------------------------------------------------------------------------ */

/* A number of seconds (decimals allowed) as milliseconds. */
static int env_seconds(const char *name, double def, double lo, double hi, long *ms,
                       lb_error *err) {
    const char *v = getenv(name);
    double d = def;
    if (v && *v) {
        char *end;
        d = strtod(v, &end);
        if (*end || !(d >= lo && d <= hi))
            return lb__err(err, LB_EINVAL, "%s=%s: expected a number of seconds from %g to %g",
                           name, v, lo, hi);
    }
    *ms = (long)(d * 1000 + 0.5);
    return 0;
}

static int env_count(const char *name, long def, long lo, long hi, long *out, lb_error *err) {
    const char *v = getenv(name);
    *out = def;
    if (!v || !*v) return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < lo || n > hi)
        return lb__err(err, LB_EINVAL, "%s=%s: expected a whole number from %ld to %ld", name, v,
                       lo, hi);
    *out = n;
    return 0;
}

static int env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0 &&
           strcasecmp(v, "no") != 0;
}

/* The first of the variables that is set and not empty. */
static const char *env_first(const char *a, const char *b, const char *c) {
    const char *names[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        const char *v = names[i] ? getenv(names[i]) : NULL;
        if (v && *v) return v;
    }
    return NULL;
}

static int read_conf(conf *c, lb_error *err) {
    long stall_ms = 0;
    int rc = env_count("LB_HTTP_RETRIES", 6, 0, 100, &c->retries, err);
    if (!rc) rc = env_seconds("LB_HTTP_BACKOFF", 0.2, 0, 3600, &c->backoff_ms, err);
    if (!rc) rc = env_seconds("LB_HTTP_BACKOFF_MAX", 10, 0, 3600, &c->backoff_max, err);
    if (!rc) rc = env_seconds("LB_HTTP_CONNECT_TIMEOUT", 10, 0.001, 3600, &c->connect_ms, err);
    if (!rc) rc = env_seconds("LB_HTTP_STALL_TIMEOUT", 30, 1, 3600, &stall_ms, err);
    if (!rc) rc = env_count("LB_HTTP_MAX_REDIRECTS", 10, 0, 100, &c->redirects, err);
    if (!rc) rc = env_count("LB_HTTP_CONCURRENCY", 32, 1, 64, &c->threads, err);
    if (rc) return rc;
    c->stall_s = (stall_ms + 999) / 1000;
    const char *ca = env_first("LB_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE");
    const char *cadir = env_first("SSL_CERT_DIR", NULL, NULL);
    if ((ca && !(c->cainfo = lb__strdup(ca, err))) ||
        (cadir && !(c->capath = lb__strdup(cadir, err))))
        return LB_ENOMEM;
    return 0;
}

/* ------------------------------------------------------------------------
 * URLs
 * ------------------------------------------------------------------------ */

static int unreserved(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* Characters that may stand in a URL path as they are (RFC 3986 pchar, '/'
 * and '%' of an escape the user wrote). */
static int path_char(unsigned char c) {
    return unreserved(c) || strchr("/%!$&'()*+,;=:@", c) != NULL;
}

/* Append `s` (n bytes) to b percent-encoded: for S3 every byte but the
 * unreserved ones and '/' (what SigV4's canonical URI wants); for HTTP only
 * what may not stand in a path. */
static int append_encoded(lb__buf *b, const char *s, size_t n, int s3, lb_error *err) {
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = s3 ? unreserved(c) || c == '/' : path_char(c);
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        int rc = ok ? lb__buf_append(b, &s[i], 1, err) : lb__buf_append(b, esc, 3, err);
        if (rc) return rc;
    }
    return 0;
}

/* The part of `key` after the store's prefix ("" or "/…"); NULL when the
 * key lies outside the store (a group walk going above the host). */
static const char *key_path(const http_state *st, const char *key) {
    size_t n = strlen(st->prefix);
    if (strncmp(key, st->prefix, n) != 0 || (key[n] != '\0' && key[n] != '/')) return NULL;
    return key + n;
}

/* The URL a request for `key` goes to (malloc'd). */
static char *request_url(const http_state *st, const char *path, lb_error *err) {
    lb__buf b = {0};
    int rc = lb__buf_append(&b, st->base, strlen(st->base), err);
    if (!rc) rc = *path ? append_encoded(&b, path, strlen(path), st->s3, err)
                        : lb__buf_append(&b, "/", 1, err);
    if (!rc && st->query) rc = lb__buf_append(&b, st->query, strlen(st->query), err);
    if (rc) {
        lb__buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

/* Remove "." and ".." segments of an absolute path in place (RFC 3986
 * 5.2.4; ".." above the root stays at the root). */
static void remove_dots(char *p) {
    char *out = p;
    const char *in = p;
    while (*in) {
        while (*in == '/') in++;
        const char *seg = in;
        while (*in && *in != '/') in++;
        size_t n = (size_t)(in - seg);
        if (n == 0 || (n == 1 && seg[0] == '.')) continue;
        if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            while (out > p && *--out != '/') {}
            continue;
        }
        *out++ = '/';
        memmove(out, seg, n);
        out += n;
    }
    *out = '\0';
}

/* ------------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------------ */

static void lock_cb(CURL *h, curl_lock_data d, curl_lock_access a, void *user) {
    (void)h;
    (void)a;
    http_state *st = user;
    if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST) pthread_mutex_lock(&st->share_mu[d]);
}

static void unlock_cb(CURL *h, curl_lock_data d, void *user) {
    (void)h;
    http_state *st = user;
    if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST) pthread_mutex_unlock(&st->share_mu[d]);
}

static void http_close(void *state) {
    http_state *st = state;
    if (!st) return;
    while (st->pool) {
        handle *h = st->pool;
        st->pool = h->next;
        curl_easy_cleanup(h->h);
        free(h);
    }
    while (st->meta) {
        meta_entry *e = st->meta;
        st->meta = e->next;
        free(e->key);
        free(e->data);
        free(e);
    }
    if (st->share) {
        curl_share_cleanup(st->share);
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&st->share_mu[i]);
    }
    pthread_cond_destroy(&st->slot_free);
    pthread_mutex_destroy(&st->mu);
    curl_slist_free_all(st->headers);
    free(st->prefix);
    free(st->base);
    free(st->query);
    free(st->sigv4);
    free(st->user);
    free(st->secret);
    free(st->cf.cainfo);
    free(st->cf.capath);
    free(st);
}

static char *dup_printf(lb_error *err, const char *fmt, ...) LB__PRINTF(2, 3);
static char *dup_printf(lb_error *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : lb__malloc((size_t)n + 1, "a URL", err);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* s3://bucket: where requests go, whether they are signed. */
static int setup_s3(http_state *st, const char *url, const char *bucket, size_t blen,
                    lb_error *err) {
    for (size_t i = 0; i < blen; i++) {
        char c = bucket[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return lb__err(err, LB_EINVAL, "%s: '%.*s' is not an S3 bucket name", url, (int)blen,
                           bucket);
    }
    const char *region = env_first("AWS_REGION", "AWS_DEFAULT_REGION", NULL);
    if (!region) region = "us-east-1";
    const char *endpoint = env_first("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", NULL);
    const char *style = getenv("LB_S3_ADDRESSING");
    if (style && *style && strcmp(style, "path") != 0 && strcmp(style, "virtual") != 0)
        return lb__err(err, LB_EINVAL, "LB_S3_ADDRESSING=%s: expected path or virtual", style);
    /* Path style with a custom endpoint (S3-compatible servers) and for
     * bucket names with dots (they break the TLS name of virtual hosts). */
    int path_style = style && *style ? style[0] == 'p' : endpoint || memchr(bucket, '.', blen);
    if (endpoint) {
        size_t n = strlen(endpoint);
        while (n > 0 && endpoint[n - 1] == '/') n--;
        const char *sep = strstr(endpoint, "://");
        if (!sep || (size_t)(sep - endpoint) >= n)
            return lb__err(err, LB_EINVAL, "AWS_ENDPOINT_URL=%s: expected http://HOST[:PORT] or "
                           "https://…", endpoint);
        if (path_style)
            st->base = dup_printf(err, "%.*s/%.*s", (int)n, endpoint, (int)blen, bucket);
        else
            st->base = dup_printf(err, "%.*s%.*s.%.*s", (int)(sep + 3 - endpoint), endpoint,
                                  (int)blen, bucket, (int)(n - (size_t)(sep + 3 - endpoint)),
                                  sep + 3);
    } else if (path_style) {
        st->base = dup_printf(err, "https://s3.%s.amazonaws.com/%.*s", region, (int)blen, bucket);
    } else {
        st->base = dup_printf(err, "https://%.*s.s3.%s.amazonaws.com", (int)blen, bucket, region);
    }
    if (!st->base) return LB_ENOMEM;
    const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (env_flag("AWS_NO_SIGN_REQUEST") || !id || !*id || !secret || !*secret) return 0;
    st->signed_s3 = 1;
    if (!(st->sigv4 = dup_printf(err, "aws:amz:%s:s3", region)) ||
        !(st->user = lb__strdup(id, err)) || !(st->secret = lb__strdup(secret, err)))
        return LB_ENOMEM;
    /* S3 wants the payload's hash; a GET or HEAD has none (the hash of
     * nothing). Headers given here are signed too. */
    struct curl_slist *l = curl_slist_append(
        NULL, "x-amz-content-sha256: "
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    if (!l) return lb__err(err, LB_ENOMEM, "out of memory");
    st->headers = l;
    const char *token = getenv("AWS_SESSION_TOKEN");
    if (token && *token) {
        char *h = dup_printf(err, "x-amz-security-token: %s", token);
        if (!h) return LB_ENOMEM;
        l = curl_slist_append(st->headers, h);
        free(h);
        if (!l) return lb__err(err, LB_ENOMEM, "out of memory");
        st->headers = l;
    }
    return 0;
}

static int http_open(const char *url, void **state, char **path, lb_error *err) {
    *state = NULL;
    *path = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return lb__err(err, LB_EIO, "cannot initialise libcurl: %s", curl_easy_strerror(global_rc));
    const char *sep = strstr(url, "://");
    if (!sep) return lb__err(err, LB_EINVAL, "%s: not a URL", url);
    size_t slen = (size_t)(sep - url);
    char scheme[8] = "";
    for (size_t i = 0; i < slen && i < sizeof scheme - 1; i++)
        scheme[i] = (char)(url[i] >= 'A' && url[i] <= 'Z' ? url[i] + 32 : url[i]);
    int s3 = strcmp(scheme, "s3") == 0;

    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *rest = auth + alen;
    size_t plen = strcspn(rest, "?#");
    const char *query = rest[plen] == '?' ? rest + plen : NULL;
    size_t qlen = query ? strcspn(query, "#") : 0;
    /* userinfo ends at the last '@' of the authority */
    const char *host = auth;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@') host = p + 1;
    size_t hlen = (size_t)(auth + alen - host);

    int rc = 0;
    char *raw = NULL, *norm = NULL;
    http_state *st = lb__calloc(1, sizeof *st, "an HTTP store", err);
    if (!st) return LB_ENOMEM;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->slot_free, NULL);
    atomic_init(&st->rng, (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32) ^
                              (unsigned long long)(uintptr_t)st);
    st->s3 = s3;
    st->pid = getpid();
    if (hlen == 0) {
        rc = lb__err(err, LB_EINVAL, "%.*s://: the URL names no %s", (int)slen, url,
                     s3 ? "bucket" : "host");
        goto fail;
    }
    if (s3 && host != auth) {
        rc = lb__err(err, LB_EINVAL, "s3://%.*s: credentials do not belong in an s3:// URL; set "
                     "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", (int)hlen, host);
        goto fail;
    }
    if (s3 && query) {
        rc = lb__err(err, LB_EINVAL, "s3://%.*s%.*s: s3:// URLs take no query string", (int)hlen,
                     host, (int)plen, rest);
        goto fail;
    }
    rc = read_conf(&st->cf, err);
    if (rc) goto fail;
    /* The prefix of keys: scheme and host in lower case, no userinfo. */
    st->prefix = dup_printf(err, "%s://%.*s", scheme, (int)hlen, host);
    if (!st->prefix) {
        rc = LB_ENOMEM;
        goto fail;
    }
    for (char *p = st->prefix + slen + 3; *p; p++)
        if (*p >= 'A' && *p <= 'Z' && !s3) *p = (char)(*p + 32);
    if (s3) {
        rc = setup_s3(st, url, host, hlen, err);
    } else {
        st->base = dup_printf(err, "%s://%.*s", scheme, (int)alen, auth);
        if (!st->base) rc = LB_ENOMEM;
        if (!rc && query && qlen > 1 && !(st->query = dup_printf(err, "%.*s", (int)qlen, query)))
            rc = LB_ENOMEM;
    }
    if (rc) goto fail;

    /* The path: the dataset path rules ('..' never below a container), then
     * the remaining dot segments resolved as a browser would. */
    if (plen > 0 && !(plen == 1 && rest[0] == '/')) {
        if (!(raw = dup_printf(err, "%.*s", (int)plen, rest))) {
            rc = LB_ENOMEM;
            goto fail;
        }
        rc = lb__path_normalize(raw, &norm, err);
        if (rc) {
            lb__err(err, rc, "%s%s: '..' is not allowed after the *.zarr or *.n5 container",
                    st->prefix, raw);
            goto fail;
        }
        remove_dots(norm);
    }
    *path = dup_printf(err, "%s%s", st->prefix, norm ? norm : "");
    if (!*path) {
        rc = LB_ENOMEM;
        goto fail;
    }

    st->share = curl_share_init();
    if (!st->share) {
        rc = lb__err(err, LB_ENOMEM, "cannot create a curl share object");
        goto fail;
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&st->share_mu[i], NULL);
    curl_share_setopt(st->share, CURLSHOPT_LOCKFUNC, lock_cb);
    curl_share_setopt(st->share, CURLSHOPT_UNLOCKFUNC, unlock_cb);
    curl_share_setopt(st->share, CURLSHOPT_USERDATA, st);
    /* Not CURL_LOCK_DATA_CONNECT: libcurl does not support sharing
     * connections between concurrent threads; each pooled handle keeps its
     * own. */
    curl_share_setopt(st->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(st->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    free(raw);
    free(norm);
    *state = st;
    return 0;
fail:
    free(raw);
    free(norm);
    free(*path);
    *path = NULL;
    http_close(st);
    return rc;
}

/* ------------------------------------------------------------------------
 * Handles
 * ------------------------------------------------------------------------ */

static size_t on_header(char *p, size_t size, size_t n, void *user);
static size_t on_body(char *p, size_t size, size_t n, void *user);
static void handle_give(http_state *st, handle *h);

/* A handle for one request, once fewer than cf.threads are under way:
 * however many threads read (region reads, writer workers), a store keeps
 * a bounded number of requests and connections. */
static handle *handle_take(http_state *st, lb_error *err) {
    pthread_mutex_lock(&st->mu);
    if (st->pid != getpid()) {
        /* A forked child (DataLoader workers): the pooled handles' connections
         * are the parent's too. Leave them to the parent, untouched (closing
         * a TLS connection would write to it), and start afresh. */
        st->pool = NULL;
        st->in_flight = 0;
        st->pid = getpid();
    }
    while (st->in_flight >= st->cf.threads) pthread_cond_wait(&st->slot_free, &st->mu);
    st->in_flight++;
    handle *h = st->pool;
    if (h) st->pool = h->next;
    pthread_mutex_unlock(&st->mu);
    if (h) return h;
    h = lb__calloc(1, sizeof *h, "an HTTP handle", err);
    if (h && !(h->h = curl_easy_init())) {
        free(h);
        h = NULL;
        lb__err(err, LB_ENOMEM, "cannot create a curl handle");
    }
    if (!h) {
        handle_give(st, NULL);
        return NULL;
    }
    CURL *c = h->h;
    const conf *cf = &st->cf;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SHARE, st->share);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "labelbin/" LB_VERSION);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, cf->redirects > 0 ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, cf->redirects);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, cf->connect_ms);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, cf->stall_s);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    if (cf->cainfo) curl_easy_setopt(c, CURLOPT_CAINFO, cf->cainfo);
    if (cf->capath) curl_easy_setopt(c, CURLOPT_CAPATH, cf->capath);
    if (st->signed_s3) {
        curl_easy_setopt(c, CURLOPT_AWS_SIGV4, st->sigv4);
        curl_easy_setopt(c, CURLOPT_USERNAME, st->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, st->secret);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, st->headers);
    }
    return h;
}

/* Return a handle (NULL: none was made) and its request slot. */
static void handle_give(http_state *st, handle *h) {
    pthread_mutex_lock(&st->mu);
    if (h) {
        h->next = st->pool;
        st->pool = h;
    }
    st->in_flight--;
    pthread_cond_signal(&st->slot_free);
    pthread_mutex_unlock(&st->mu);
}

/* ------------------------------------------------------------------------
 * One response
 * ------------------------------------------------------------------------ */

typedef struct reply {
    /* the request */
    int head, ranged;
    size_t max_bytes;
    lb__buf *out;
    /* the response (of the last hop, after redirects) */
    long status;
    int cr_ok, cr_unsat;          /* a Content-Range was parsed; "bytes * /N" */
    char cr_text[80];             /* the Content-Range header, for messages    */
    uint64_t cr_first, cr_last, cr_total; /* cr_total UINT64_MAX when '*' */
    uint64_t length;              /* Content-Length, UINT64_MAX when absent */
    int html;
    long retry_after_ms;          /* -1 when absent */
    char region[64];              /* S3: x-amz-bucket-region */
    int over, nomem;              /* the body passed the limit; out of memory */
    char errbody[ERRBODY];
    size_t errlen;
} reply;

static void reply_reset(reply *y) {
    y->status = 0;
    y->cr_ok = y->cr_unsat = 0;
    y->cr_first = y->cr_last = 0;
    y->cr_total = UINT64_MAX;
    y->cr_text[0] = '\0';
    y->length = UINT64_MAX;
    y->html = 0;
    y->retry_after_ms = -1;
    y->region[0] = '\0';
    y->errlen = 0;
    y->errbody[0] = '\0';
    if (y->out) y->out->size = 0;
}

static int parse_u64(const char **p, uint64_t *v) {
    const char *s = *p;
    uint64_t x = 0;
    if (*s < '0' || *s > '9') return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (x > (UINT64_MAX - 9) / 10) return -1;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *v = x;
    return 0;
}

/* "bytes a-b/total", "bytes a-b/ *", "bytes * /total" (without spaces). */
static void parse_content_range(reply *y, const char *v) {
    if (strncasecmp(v, "bytes", 5) != 0) return;
    v += 5;
    while (*v == ' ') v++;
    if (*v == '*') {
        v++;
        if (*v++ != '/' || parse_u64(&v, &y->cr_total)) return;
        y->cr_unsat = 1;
        return;
    }
    uint64_t a, b, t = UINT64_MAX;
    if (parse_u64(&v, &a) || *v++ != '-' || parse_u64(&v, &b) || *v++ != '/') return;
    if (*v == '*') v++;
    else if (parse_u64(&v, &t)) return;
    if (b < a || (t != UINT64_MAX && b >= t)) return;
    y->cr_first = a;
    y->cr_last = b;
    y->cr_total = t;
    y->cr_ok = 1;
}

static size_t on_header(char *p, size_t size, size_t n, void *user) {
    reply *y = user;
    size_t len = size * n;
    char line[512];
    size_t k = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, p, k);
    while (k > 0 && (line[k - 1] == '\r' || line[k - 1] == '\n' || line[k - 1] == ' ')) k--;
    line[k] = '\0';
    if (strncmp(line, "HTTP/", 5) == 0) { /* a new response: after a redirect, 100 … */
        reply_reset(y);
        const char *s = strchr(line, ' ');
        y->status = s ? strtol(s + 1, NULL, 10) : 0;
        return len;
    }
    char *colon = strchr(line, ':');
    if (!colon) return len;
    *colon = '\0';
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    if (strcasecmp(line, "Content-Range") == 0) {
        snprintf(y->cr_text, sizeof y->cr_text, "%s", v);
        parse_content_range(y, v);
    } else if (strcasecmp(line, "Content-Length") == 0) {
        uint64_t x;
        if (!parse_u64(&v, &x) && !*v) y->length = x;
    } else if (strcasecmp(line, "Content-Type") == 0) {
        y->html = strncasecmp(v, "text/html", 9) == 0;
    } else if (strcasecmp(line, "Retry-After") == 0) {
        uint64_t x; /* seconds; an HTTP date is left to the backoff */
        if (!parse_u64(&v, &x) && !*v) y->retry_after_ms = x > 86400 ? 86400000 : (long)x * 1000;
    } else if (strcasecmp(line, "x-amz-bucket-region") == 0) {
        snprintf(y->region, sizeof y->region, "%s", v);
    }
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *user) {
    reply *y = user;
    size_t len = size * n;
    if (y->status < 200 || y->status >= 300) {
        size_t k = len < ERRBODY - 1 - y->errlen ? len : ERRBODY - 1 - y->errlen;
        memcpy(y->errbody + y->errlen, p, k);
        y->errlen += k;
        y->errbody[y->errlen] = '\0';
        return len;
    }
    if (y->head || !y->out) return len;
    /* A 200 to a ranged request is the whole object (a server that ignores
     * ranges): allowed up to the cap, then cut. */
    size_t limit = y->ranged && y->status == 200
                       ? (y->max_bytes > IGNORED_RANGE_CAP ? y->max_bytes : IGNORED_RANGE_CAP)
                       : y->max_bytes;
    if (y->out->size > limit || len > limit - y->out->size) {
        y->over = 1;
        return 0;
    }
    if (y->out->size == 0 && y->length != UINT64_MAX && y->length <= limit &&
        lb__buf_reserve(y->out, (size_t)y->length + 1, NULL)) {
        y->nomem = 1;
        return 0;
    }
    if (lb__buf_append(y->out, p, len, NULL)) {
        y->nomem = 1;
        return 0;
    }
    return len;
}

/* ------------------------------------------------------------------------
 * Requests: one attempt, classified; retries around it
 * ------------------------------------------------------------------------ */

enum { ATT_OK, ATT_ABSENT, ATT_FAIL, ATT_RETRY };

typedef struct request {
    const char *key;     /* for messages: the URL without credentials */
    const char *url;     /* where it goes */
    const lb__range *r;  /* NULL: the whole object */
    int head;
    size_t max_bytes;
    lb__buf *out;
    uint64_t total;      /* the object's size, when learnt */
} request;

static const char *reason(long status) {
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 410: return "Gone";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status >= 500 ? "server error" : status >= 400 ? "client error" : "unexpected";
    }
}

/* S3's <Code>…</Code> and <Message>…</Message> of an error body, if any. */
static void s3_error_text(const reply *y, char *buf, size_t size) {
    buf[0] = '\0';
    const char *c = strstr(y->errbody, "<Code>"), *m = strstr(y->errbody, "<Message>");
    if (!c) return;
    c += 6;
    size_t cn = strcspn(c, "<");
    size_t mn = 0;
    if (m) {
        m += 9;
        mn = strcspn(m, "<");
    }
    snprintf(buf, size, ": %.*s%s%.*s", (int)(cn > 80 ? 80 : cn), c, m ? ", " : "",
             (int)(mn > 160 ? 160 : mn), m ? m : "");
}

/* The value of a Range header: "a-b", "-n" (the last n bytes) or "a-". */
static void range_value(const lb__range *r, char *buf, size_t size) {
    if (r->suffix) snprintf(buf, size, "-%llu", (unsigned long long)r->length);
    else if (r->length == LB__RANGE_TO_END)
        snprintf(buf, size, "%llu-", (unsigned long long)r->offset);
    else
        snprintf(buf, size, "%llu-%llu", (unsigned long long)r->offset,
                 (unsigned long long)(r->offset + r->length - 1));
}

/* Fill err and give the attempt's verdict. */
static int verdict(int v, lb_error *err, int code, const char *fmt, ...) LB__PRINTF(4, 5);
static int verdict(int v, lb_error *err, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lb__verr(err, code, fmt, ap);
    va_end(ap);
    return v;
}

static int past_end(const request *q, uint64_t total, lb_error *err) {
    return lb__err(err, LB_EFORMAT, "%s: bytes %llu.. lie past the end of the %llu-byte object",
                   q->key, (unsigned long long)q->r->offset, (unsigned long long)total);
}

/* A 2xx body, checked against what was asked; the range cut out of a
 * whole-object answer. */
static int check_body(http_state *st, request *q, reply *y, lb_error *err) {
    const lb__range *r = q->r;
    lb__buf *out = q->out;
    if (y->html && !q->head) {
        size_t n = strlen(q->key);
        if (!(n > 5 && strcasecmp(q->key + n - 5, ".html") == 0))
            return verdict(ATT_RETRY, err, LB_EIO,
                           "%s: the server answered %ld with an HTML page, not the data",
                           q->key, y->status);
    }
    if (q->head) {
        if (y->status != 200 || y->length == UINT64_MAX)
            return verdict(ATT_FAIL, err, LB_EIO, "%s: HEAD answered %ld without a Content-Length",
                           q->key, y->status);
        q->total = y->length;
        return ATT_OK;
    }
    uint64_t got = out->size;
    if (y->length != UINT64_MAX && y->length != got)
        return verdict(ATT_RETRY, err, LB_EIO,
                       "%s: the body has %llu bytes, Content-Length said %llu", q->key,
                       (unsigned long long)got, (unsigned long long)y->length);
    if (!r) {
        if (y->status != 200)
            return verdict(ATT_RETRY, err, LB_EIO,
                           "%s: unexpected HTTP %ld to a request for the whole object", q->key,
                           y->status);
        q->total = got;
        return ATT_OK;
    }
    uint64_t first, last; /* what the body holds */
    uint64_t total = UINT64_MAX;
    if (y->status == 206) {
        if (!y->cr_ok)
            return verdict(ATT_RETRY, err, LB_EIO,
                           "%s: a partial answer without a usable Content-Range", q->key);
        first = y->cr_first;
        last = y->cr_last;
        total = y->cr_total;
    } else if (y->status == 200) {
        if (got == 0) {
            first = 1;
            last = 0;
        } else {
            first = 0;
            last = got - 1;
        }
        total = got;
        if (r)
            lb__log(LB_LOG_INFO,
                    "%s: the server sent the whole object (%llu bytes) for a range request",
                    q->key, (unsigned long long)got);
    } else {
        return verdict(ATT_RETRY, err, LB_EIO, "%s: unexpected HTTP %ld to a range request", q->key,
                       y->status);
    }
    if (last + 1 - first != got)
        return verdict(ATT_RETRY, err, LB_EIO,
                       "%s: Content-Range says %llu bytes, the body has %llu", q->key,
                       (unsigned long long)(last + 1 - first), (unsigned long long)got);
    /* What was asked, now that the total may be known. */
    uint64_t want_first, want_last; /* want_last + 1 == want_first: nothing */
    if (r->suffix) {
        if (total == UINT64_MAX) {
            /* "bytes a-b/ *": a suffix is only sure when it is as long as asked */
            if (got != r->length)
                return verdict(ATT_RETRY, err, LB_EIO,
                               "%s: asked for the last %llu bytes, got %llu of an "
                               "object of unknown size",
                               q->key, (unsigned long long)r->length, (unsigned long long)got);
            want_first = first;
            want_last = last;
        } else {
            uint64_t n = r->length < total ? r->length : total;
            want_first = total - n;
            want_last = total - 1;
        }
    } else {
        if (total != UINT64_MAX && (r->offset > total || (r->length != LB__RANGE_TO_END &&
                                                          r->length > total - r->offset))) {
            past_end(q, total, err);
            return ATT_FAIL;
        }
        want_first = r->offset;
        if (r->length != LB__RANGE_TO_END)
            want_last = r->offset + r->length - 1;
        else if (total != UINT64_MAX)
            want_last = total - 1;
        else
            want_last = last; /* "bytes a-/ *": to the end, which the body reaches */
    }
    if (want_last + 1 == want_first) { /* nothing asked (an empty object's suffix) */
        out->size = 0;
    } else if (want_first < first || want_last > last || got == 0) {
        return verdict(ATT_RETRY, err, LB_EIO,
                       "%s: asked for bytes %llu-%llu, the answer holds %llu-%llu", q->key,
                       (unsigned long long)want_first, (unsigned long long)want_last,
                       (unsigned long long)first, (unsigned long long)last);
    } else if (y->status == 206 && (want_first != first || want_last != last)) {
        return verdict(ATT_RETRY, err, LB_EIO,
                       "%s: asked for bytes %llu-%llu, the server sent %llu-%llu", q->key,
                       (unsigned long long)want_first, (unsigned long long)want_last,
                       (unsigned long long)first, (unsigned long long)last);
    } else {
        size_t n = (size_t)(want_last - want_first + 1);
        if (want_first > first) memmove(out->data, out->data + (want_first - first), n);
        out->size = n;
    }
    if (out->size > q->max_bytes)
        return verdict(ATT_FAIL, err, LB_ELIMIT, "%s: %zu bytes is more than the limit of %zu",
                       q->key, out->size, q->max_bytes);
    q->total = total;
    return ATT_OK;
}

/* A 416: the range lies past the end (an empty object's suffix is empty). */
static int unsatisfiable(request *q, const reply *y, lb_error *err) {
    const lb__range *r = q->r;
    if (!r || !y->cr_unsat)
        return verdict(ATT_RETRY, err, LB_EIO,
                       "%s: HTTP 416 (Range Not Satisfiable) without the object's "
                       "size",
                       q->key);
    uint64_t total = y->cr_total;
    if (r->suffix || (r->offset == total && (r->length == 0 || r->length == LB__RANGE_TO_END))) {
        q->out->size = 0;
        q->total = total;
        return ATT_OK;
    }
    past_end(q, total, err);
    return ATT_FAIL;
}

static int attempt(http_state *st, handle *h, request *q, reply *y, lb_error *err) {
    CURL *c = h->h;
    char rtext[64] = "";
    reply_reset(y);
    y->head = q->head;
    y->ranged = q->r != NULL;
    y->max_bytes = q->max_bytes;
    y->out = q->out;
    y->over = y->nomem = 0;
    h->errbuf[0] = '\0';
    if (q->r) range_value(q->r, rtext, sizeof rtext);
    curl_easy_setopt(c, CURLOPT_URL, q->url);
    if (q->head)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_RANGE, q->r ? rtext : NULL);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, y);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, y);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CURLcode cc = curl_easy_perform(c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (lb__log_enabled(LB_LOG_DEBUG)) {
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        lb__log(LB_LOG_DEBUG, "%s %s%s%s -> %ld%s%s, %zu bytes, %.0f ms",
                q->head ? "HEAD" : "GET", q->key, q->r ? " bytes=" : "", rtext, status,
                cc ? ", " : "", cc ? curl_easy_strerror(cc) : "",
                q->head || !q->out ? 0 : q->out->size, ms);
    }
    if (y->nomem)
        return verdict(ATT_FAIL, err, LB_ENOMEM, "%s: out of memory for the response", q->key);
    if (y->over && y->status == 206)
        return verdict(ATT_RETRY, err, LB_EIO,
                       "%s: asked for bytes=%s, the server sent more (Content-Range: %s)",
                       q->key, rtext, y->cr_text[0] ? y->cr_text : "none");
    if (y->over)
        return verdict(ATT_FAIL, err, LB_ELIMIT,
                       "%s: the object is larger than the limit of %zu bytes%s", q->key,
                       y->ranged && y->status == 200 ? IGNORED_RANGE_CAP : q->max_bytes,
                       y->ranged && y->status == 200
                           ? " (the server ignores byte ranges and sends whole objects)"
                           : "");
    const char *detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_OK: break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        lb__err(err, LB_EIO, "%s: the server's TLS certificate does not verify (%s); give the "
                "CA that signed it with LB_CA_BUNDLE=FILE (or CURL_CA_BUNDLE / SSL_CERT_FILE)",
                q->key, detail);
        return ATT_FAIL;
    case CURLE_TOO_MANY_REDIRECTS:
        lb__err(err, LB_EIO, "%s: more than %ld redirects (LB_HTTP_MAX_REDIRECTS)", q->key,
                st->cf.redirects);
        return ATT_FAIL;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        lb__err(err, LB_EIO, "%s: %s", q->key, detail);
        return ATT_FAIL;
    case CURLE_OPERATION_TIMEDOUT:
        lb__err(err, LB_EIO, "%s: timed out (%s)", q->key, detail);
        return ATT_RETRY;
    default:
        lb__err(err, LB_EIO, "%s: %s", q->key, detail);
        return ATT_RETRY;
    }
    if (status >= 200 && status < 300) return check_body(st, q, y, err);
    if (status == 404) return ATT_ABSENT;
    /* S3 answers 403 for a missing key when the caller may not list the
     * bucket: for anonymous reads of a public bucket, absence. */
    if (status == 403 && st->s3 && !st->signed_s3 &&
        (y->errlen == 0 || strstr(y->errbody, "<Code>AccessDenied</Code>")))
        return ATT_ABSENT;
    if (status == 416) return unsatisfiable(q, y, err);
    char s3text[300] = "";
    if (st->s3) s3_error_text(y, s3text, sizeof s3text);
    if (status == 408 || status == 429 || status >= 500) {
        lb__err(err, LB_EIO, "%s: HTTP %ld (%s%s)", q->key, status, reason(status), s3text);
        return ATT_RETRY;
    }
    if (st->s3 && y->region[0] && status == 301)
        lb__err(err, LB_EIO, "%s: the bucket is in region %s; set AWS_REGION=%s", q->key,
                y->region, y->region);
    else if (status == 401 || status == 403)
        lb__err(err, LB_EIO, "%s: HTTP %ld (%s%s): access denied%s", q->key, status,
                reason(status), s3text,
                st->s3 ? (st->signed_s3 ? "; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and "
                                          "AWS_SESSION_TOKEN"
                                        : "; for a private bucket set AWS_ACCESS_KEY_ID and "
                                          "AWS_SECRET_ACCESS_KEY")
                      : "");
    else
        lb__err(err, LB_EIO, "%s: HTTP %ld (%s%s)", q->key, status, reason(status), s3text);
    return ATT_FAIL;
}

/* Full jitter in [d/2, d]. */
static long jitter(http_state *st, long d) {
    unsigned long long x = atomic_fetch_add(&st->rng, 0x9E3779B97F4A7C15ULL);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return d <= 1 ? d : d / 2 + (long)(x % (unsigned long long)(d / 2 + 1));
}

/* Run `q` with retries: 0, LB_ENOTFOUND (definitely absent) or an error. */
static int run(http_state *st, request *q, lb_error *err) {
    lb_error local = {0};
    handle *h = handle_take(st, err);
    if (!h) return err ? err->code : LB_ENOMEM;
    reply *y = malloc(sizeof *y);
    if (!y) {
        handle_give(st, h);
        return lb__err(err, LB_ENOMEM, "out of memory");
    }
    memset(y, 0, sizeof *y);
    int res = ATT_FAIL;
    long attempts = st->cf.retries + 1;
    for (long i = 0; i < attempts; i++) {
        local.code = 0;
        local.message[0] = '\0';
        res = attempt(st, h, q, y, &local);
        if (res != ATT_RETRY || i + 1 == attempts) break;
        /* capped exponential backoff with jitter; Retry-After when longer */
        long d = st->cf.backoff_ms;
        for (long k = 0; k < i && d < st->cf.backoff_max; k++) d *= 2;
        if (d > st->cf.backoff_max) d = st->cf.backoff_max;
        d = jitter(st, d);
        if (y->retry_after_ms > d)
            d = y->retry_after_ms < st->cf.backoff_max ? y->retry_after_ms : st->cf.backoff_max;
        lb__log(LB_LOG_INFO, "%s; retry %ld of %ld in %.1f s", local.message, i + 1,
                st->cf.retries, (double)d / 1000);
        struct timespec ts = {d / 1000, (d % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0) {}
    }
    int rc = 0;
    if (res == ATT_ABSENT) {
        rc = lb__err(err, LB_ENOTFOUND, "%s: not found", q->key);
    } else if (res == ATT_RETRY) {
        rc = lb__err(err, LB_EIO, "%s (gave up after %ld attempts)", local.message, attempts);
    } else if (res == ATT_FAIL) {
        rc = local.code ? local.code : LB_EIO;
        if (err) *err = local;
    }
    if (rc && q->out) q->out->size = 0;
    free(y);
    handle_give(st, h);
    return rc;
}

/* ------------------------------------------------------------------------
 * Metadata documents: fetched once per store
 * ------------------------------------------------------------------------ */

static int is_meta(const char *key) {
    static const char *const names[] = {".zarray", ".zattrs", ".zgroup", ".zmetadata",
                                        "zarr.json", "attributes.json"};
    const char *slash = strrchr(key, '/');
    const char *name = slash ? slash + 1 : key;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(name, names[i]) == 0) return 1;
    return 0;
}

/* 1 and the entry's bytes (copied to out) or absence when cached. */
static int meta_lookup(http_state *st, const char *key, lb__buf *out, int *absent, int *rc,
                       lb_error *err) {
    int hit = 0;
    pthread_mutex_lock(&st->mu);
    for (meta_entry *e = st->meta; e; e = e->next) {
        if (strcmp(e->key, key) != 0) continue;
        hit = 1;
        *absent = !e->data;
        *rc = 0;
        if (e->data && out) {
            out->size = 0;
            *rc = lb__buf_append(out, e->data, e->n, err);
        }
        break;
    }
    pthread_mutex_unlock(&st->mu);
    return hit;
}

static void meta_store(http_state *st, const char *key, const lb__buf *data) {
    meta_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return;
    }
    if (data) {
        e->data = malloc(data->size ? data->size : 1);
        if (!e->data) {
            free(e->key);
            free(e);
            return;
        }
        memcpy(e->data, data->data, data->size);
        e->n = data->size;
    }
    pthread_mutex_lock(&st->mu);
    e->next = st->meta;
    st->meta = e;
    pthread_mutex_unlock(&st->mu);
}

/* A metadata document through the cache: 0, LB_ENOTFOUND or an error. */
static int meta_get(http_state *st, const char *key, const char *path, lb__buf *out,
                    lb_error *err) {
    int absent = 0, rc = 0;
    if (meta_lookup(st, key, out, &absent, &rc, err))
        return rc ? rc : absent ? lb__err(err, LB_ENOTFOUND, "%s: not found", key) : 0;
    char *url = request_url(st, path, err);
    if (!url) return LB_ENOMEM;
    request q = {key, url, NULL, 0, LB__MAX_META_BYTES, out, UINT64_MAX};
    rc = run(st, &q, err);
    free(url);
    if (rc == 0) meta_store(st, key, out);
    else if (rc == LB_ENOTFOUND) meta_store(st, key, NULL);
    return rc;
}

/* ------------------------------------------------------------------------
 * The back end's operations
 * ------------------------------------------------------------------------ */

static int http_get(void *state, const char *key, const lb__range *r, size_t max_bytes,
                    lb__buf *out, uint64_t *total, lb_error *err) {
    http_state *st = state;
    out->size = 0;
    const char *path = key_path(st, key);
    if (!path) return lb__err(err, LB_ENOTFOUND, "%s: not found (outside %s)", key, st->prefix);
    int rc;
    if (!r && is_meta(key) && max_bytes >= LB__MAX_META_BYTES) {
        rc = meta_get(st, key, path, out, err);
        if (!rc && total) *total = out->size;
        if (!rc && out->size > max_bytes) rc = LB_ELIMIT;
    } else if (r && !r->suffix && r->length == 0) {
        /* Nothing to read: only whether the key exists and is long enough. */
        char *url = request_url(st, path, err);
        if (!url) return LB_ENOMEM;
        request q = {key, url, NULL, 1, 0, NULL, UINT64_MAX};
        rc = run(st, &q, err);
        free(url);
        if (!rc && r->offset > q.total) {
            request p = {key, NULL, r, 0, 0, out, q.total};
            rc = past_end(&p, q.total, err);
        }
        if (!rc && total) *total = q.total;
    } else {
        char *url = request_url(st, path, err);
        if (!url) return LB_ENOMEM;
        request q = {key, url, r, 0, max_bytes, out, UINT64_MAX};
        rc = run(st, &q, err);
        free(url);
        if (!rc && total) *total = q.total;
    }
    if (rc) {
        out->size = 0;
        return rc;
    }
    /* NUL-terminated one past the end, as every back end's reads are */
    int brc = lb__buf_reserve(out, out->size + 1, err);
    if (brc) return brc;
    out->data[out->size] = 0;
    return 0;
}

static int http_size(void *state, const char *key, uint64_t *size, lb_error *err) {
    http_state *st = state;
    const char *path = key_path(st, key);
    if (!path) return lb__err(err, LB_ENOTFOUND, "%s: not found (outside %s)", key, st->prefix);
    if (is_meta(key)) {
        lb__buf b = {0};
        int rc = meta_get(st, key, path, &b, err);
        if (!rc) *size = b.size;
        lb__buf_free(&b);
        return rc;
    }
    char *url = request_url(st, path, err);
    if (!url) return LB_ENOMEM;
    request q = {key, url, NULL, 1, 0, NULL, UINT64_MAX};
    int rc = run(st, &q, err);
    free(url);
    if (!rc) *size = q.total;
    return rc;
}

/* An object when the key answers; none on a definite absence; "other" when
 * the server could not say (the caller then reads the key and reports the
 * failure). Prefixes cannot be seen over HTTP: the formats probe for their
 * metadata keys instead. */
static int http_kind(void *state, const char *key) {
    uint64_t size;
    int rc = http_size(state, key, &size, NULL);
    return rc == 0 ? LB__KEY_OBJECT : rc == LB_ENOTFOUND ? LB__KEY_NONE : LB__KEY_OTHER;
}

/* Only writers ask, and these stores refuse writers. */
static int http_empty(void *state, const char *prefix) {
    (void)state;
    (void)prefix;
    return 0;
}

static int http_describe(void *state, const char *key, char *buf, size_t size) {
    (void)state;
    return snprintf(buf, size, "%s", key);
}

static int http_locate(void *state, const char *key, char *buf, size_t size) {
    const http_state *st = state;
    const char *path = key_path(st, key);
    char *url = path ? request_url(st, path, NULL) : NULL;
    int n = snprintf(buf, size, "%s", url ? url : key);
    free(url);
    return n;
}

static int http_concurrency(void *state) { return (int)((http_state *)state)->cf.threads; }

#define HTTP_BACKEND(name, sch)                                                              \
    const lb__store_backend name = {                                                         \
        .version = 4,                                                                        \
        .scheme = sch,                                                                       \
        .writable = 0,                                                                       \
        .open = http_open,                                                                   \
        .close = http_close,                                                                 \
        .get = http_get,                                                                     \
        .size = http_size,                                                                   \
        .kind = http_kind,                                                                   \
        .empty = http_empty,                                                                 \
        .describe = http_describe,                                                           \
        .concurrency = http_concurrency,                                                     \
        .locate = http_locate,                                                               \
    }

HTTP_BACKEND(lb__store_http, "http");
HTTP_BACKEND(lb__store_https, "https");
HTTP_BACKEND(lb__store_s3, "s3");
