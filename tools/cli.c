/*
 * cli.c — what every command of the `labelbin` tool shares: messages and
 * exit codes, the JSON printer, parsing of numbers and lists, getopt
 * failures with "did you mean" suggestions, the progress bar and signals.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int g_verbosity = 1;
int g_log_fd = STDERR_FILENO;
char g_log_prefix[32] = "";
const char *g_cmd = NULL;
volatile int g_cancel = 0;
volatile sig_atomic_t g_signal = 0;

/* ------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------ */

/* "labelbin: <cmd>: <why>" + a hint; returns EXIT_USAGE. */
int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("labelbin: ", stderr);
    if (g_cmd)
        fprintf(stderr, "%s: ", g_cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (g_cmd)
        fprintf(stderr, "Try 'labelbin %s --help' for more information.\n", g_cmd);
    else
        fputs("Try 'labelbin --help' for more information.\n", stderr);
    return EXIT_USAGE;
}

/* A runtime failure: "labelbin: <what>: <why>"; returns EXIT_FAIL. */
int failure(const char *fmt, ...)
{
    va_list ap;
    fputs("labelbin: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAIL;
}

/* The library's message already names the path / ROI / JSON path. */
void print_lb_error(const lb_error *e)
{
    if (e->message[0])
        fprintf(stderr, "labelbin: %s\n", e->message);
    else
        fprintf(stderr, "labelbin: %s\n", lb_strerror(e->code));
}

int lb_failure(const lb_error *e)
{
    print_lb_error(e);
    return EXIT_FAIL;
}

/* One line on stderr, "labelbin: <prefix><message>", when the verbosity is
 * at least `level` (1 = default, 2 = -v). */
static void vmessage(int level, const char *prefix, const char *fmt, va_list ap)
{
    if (g_verbosity < level)
        return;
    fprintf(stderr, "labelbin: %s", prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

#define DEFINE_MESSAGE(name, level, prefix)                                  \
    void name(const char *fmt, ...)                                          \
    {                                                                        \
        va_list ap;                                                          \
        va_start(ap, fmt);                                                   \
        vmessage(level, prefix, fmt, ap);                                    \
        va_end(ap);                                                          \
    }
DEFINE_MESSAGE(warning, 1, "warning: ")
DEFINE_MESSAGE(note, 1, "")
DEFINE_MESSAGE(verbose, 2, "")

/* ------------------------------------------------------------------------
 * The library's log
 * ------------------------------------------------------------------------ */

/* Called by the library from any thread (never two at once): one write(),
 * so that a line is never split by other output. */
static void log_line(void *user, int level, const char *message)
{
    char line[4096];
    const char *what = level == LB_LOG_ERROR ? "error: " : level == LB_LOG_WARN ? "warning: " : "";
    int n = snprintf(line, sizeof line - 1, "labelbin: %s%s%s", g_log_prefix, what, message);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    for (size_t done = 0; done < (size_t)n;) {
        ssize_t w = write(g_log_fd, line + done, (size_t)n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        done += (size_t)w;
    }
}

/* LB_VERBOSE as a log level: 1 (or yes/true) INFO, 2 or more DEBUG. */
static int env_log_level(void)
{
    const char *v = getenv("LB_VERBOSE");
    char *end;
    long n;
    if (!v || !*v)
        return LB_LOG_OFF;
    n = strtol(v, &end, 10);
    if (*end == '\0')
        return n <= 0 ? LB_LOG_OFF : n == 1 ? LB_LOG_INFO : LB_LOG_DEBUG;
    return strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 ? LB_LOG_OFF : LB_LOG_INFO;
}

void set_verbosity(int v)
{
    static const int levels[] = {LB_LOG_ERROR, LB_LOG_WARN, LB_LOG_INFO, LB_LOG_DEBUG};
    int level, env;
    g_verbosity = v < 0 ? 0 : v > 3 ? 3 : v;
    level = levels[g_verbosity];
    env = env_log_level();
    lb_set_log_handler(log_line, NULL, env > level ? env : level);
}

void more_verbose(void)
{
    set_verbosity(g_verbosity < 2 ? 2 : g_verbosity + 1);
}

const char *shown_path(const char *path)
{
    static char bufs[4][4096];
    static unsigned next;
    char *b = bufs[next++ % 4];
    lb_path_display(path, b, sizeof bufs[0]);
    return b;
}

/* ------------------------------------------------------------------------
 * JSON output: a small printer (the CLI cannot reach json-c through the
 * library). Strings are escaped per RFC 8259 and invalid UTF-8 (possible in
 * paths) becomes U+FFFD so the output always parses.
 * ------------------------------------------------------------------------ */

/* Length of a valid UTF-8 sequence at p, or 0 if it is invalid. */
static size_t utf8_seq_len(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n, i;
    unsigned long cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* Reject overlong forms, surrogates and values past U+10FFFF. */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

void json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    fputc('"', f);
    while (*p) {
        size_t n;
        switch (*p) {
        case '"': fputs("\\\"", f); p++; continue;
        case '\\': fputs("\\\\", f); p++; continue;
        case '\b': fputs("\\b", f); p++; continue;
        case '\f': fputs("\\f", f); p++; continue;
        case '\n': fputs("\\n", f); p++; continue;
        case '\r': fputs("\\r", f); p++; continue;
        case '\t': fputs("\\t", f); p++; continue;
        default: break;
        }
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(f, "\\u%04x", (unsigned)*p);
            p++;
            continue;
        }
        n = utf8_seq_len(p);
        if (n == 0) {
            fputs("\\ufffd", f);
            p++;
            continue;
        }
        fwrite(p, 1, n, f);
        p += n;
    }
    fputc('"', f);
}

void json_i64_list(FILE *f, const int64_t *v, int n)
{
    int i;
    fputc('[', f);
    for (i = 0; i < n; i++)
        fprintf(f, "%s%" PRId64, i ? ", " : "", v[i]);
    fputc(']', f);
}

/* ------------------------------------------------------------------------
 * Small parsers for command-line values
 * ------------------------------------------------------------------------ */

/* Strict decimal int64 in [lo, hi]; 0 ok, -1 otherwise. */
int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    long long v;
    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* Comma-separated positive int64s ("32,64,64"); 0 ok, -1 otherwise. */
int parse_i64_list(const char *s, int64_t lo, int64_t hi, int64_t *out,
                          int max, int *n)
{
    char buf[64];
    int k = 0;
    const char *p = s;
    if (!s || !*s)
        return -1;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *b = p;
        /* Allow spaces around entries ("32, 64, 64"). */
        while (len && *b == ' ') {
            b++;
            len--;
        }
        while (len && b[len - 1] == ' ')
            len--;
        if (k >= max || len == 0 || len >= sizeof buf)
            return -1;
        memcpy(buf, b, len);
        buf[len] = '\0';
        if (parse_i64(buf, lo, hi, &out[k]) != 0)
            return -1;
        k++;
        if (!comma)
            break;
        p = comma + 1;
    }
    *n = k;
    return 0;
}

/* Read a whole file ("-" = stdin) into a NUL-terminated malloc'd string.
 * On failure prints "labelbin: <path>: <why>" and returns NULL. */
char *read_text_file(const char *path)
{
    FILE *f;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int is_stdin = strcmp(path, "-") == 0;
    const size_t limit = (size_t)256 << 20; /* configs are small */

    f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        failure("%s: %s", shown_path(path), strerror(errno));
        return NULL;
    }
    for (;;) {
        size_t got;
        if (cap - len < 4096 + 1) {
            char *nb;
            size_t ncap = cap ? cap * 2 : 8192;
            if (ncap > limit) {
                failure("%s: file too large (more than %zu MiB)",
                        is_stdin ? "<stdin>" : path, limit >> 20);
                goto fail;
            }
            nb = realloc(buf, ncap);
            if (!nb) {
                failure("%s: out of memory", path);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                failure("%s: %s", is_stdin ? "<stdin>" : path, strerror(errno));
                goto fail;
            }
            break;
        }
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        failure("%s: contains a NUL byte (not a JSON text)",
                is_stdin ? "<stdin>" : path);
        goto fail;
    }
    if (!is_stdin)
        fclose(f);
    return buf;
fail:
    free(buf);
    if (!is_stdin)
        fclose(f);
    return NULL;
}

/* --format: the formats labelbin writes. N5 is read, never written. */
int parse_format(const char *s, lb_format *out)
{
    static const char *const names[] = {"zarr2", "zarr3"};
    const char *near;
    if (strcmp(s, "zarr2") == 0) {
        *out = LB_FORMAT_ZARR2;
        return 0;
    }
    if (strcmp(s, "zarr3") == 0) {
        *out = LB_FORMAT_ZARR3;
        return 0;
    }
    if (strcmp(s, "n5") == 0)
        return usage_error("--format n5: labelbin reads N5 but writes zarr2 or zarr3");
    near = nearest_name(s, strlen(s), names, 2);
    if (near)
        return usage_error("--format '%s': expected zarr2 or zarr3; did you mean '%s'?", s, near);
    return usage_error("--format '%s': expected zarr2 (the default) or zarr3", s);
}

int check_shard(const int64_t *shard, const int64_t *chunk, int n, const char *chunk_from)
{
    char sbuf[256] = "", cbuf[256], fix[256] = "";
    size_t ls = 0, lf = 0;
    int i, bad = 0;
    for (i = 0; i < n; i++) {
        /* The nearest valid shard at least as large: round up. */
        int64_t c = chunk[i], up = c > 0 && shard[i] % c ? (shard[i] / c + 1) * c : shard[i];
        if (c > 0 && shard[i] % c != 0)
            bad = 1;
        if (ls < sizeof sbuf)
            ls += (size_t)snprintf(sbuf + ls, sizeof sbuf - ls, "%s%" PRId64, i ? "," : "",
                                   shard[i]);
        if (lf < sizeof fix)
            lf += (size_t)snprintf(fix + lf, sizeof fix - lf, "%s%" PRId64, i ? "," : "", up);
    }
    if (!bad)
        return 0;
    coord_str(chunk, n, cbuf, sizeof cbuf);
    return usage_error("--shard %s: each entry must be a multiple of the chunk shape %s "
                       "(%s), e.g. --shard %s",
                       sbuf, cbuf, chunk_from, fix);
}

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void format_duration(double s, char *buf, size_t size)
{
    long t;
    if (!(s >= 0) || s > 1e9) {
        snprintf(buf, size, "--:--");
        return;
    }
    t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

void format_bytes(int64_t b, char *buf, size_t size)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%" PRId64 " B", b);
    else
        snprintf(buf, size, "%.1f %s", v, unit[u]);
}

/* ------------------------------------------------------------------------
 * Option parsing: suggestions for mistyped names
 * ------------------------------------------------------------------------ */

/* Optimal string alignment distance (edits, with adjacent transpositions
 * counting one, as in "binarsie"), for "did you mean" suggestions. Long
 * words are not worth comparing: SIZE_MAX. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t d[40][40], i, j;
    if (la >= 40 || lb >= 40)
        return (size_t)-1;
    for (i = 0; i <= la; i++)
        d[i][0] = i;
    for (j = 0; j <= lb; j++)
        d[0][j] = j;
    for (i = 1; i <= la; i++)
        for (j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1], v = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

/* The candidate nearest to word[0..len) — within 1 edit for names of up to
 * 4 characters, 2 beyond, like git's "did you mean" — or NULL when none is
 * near or two are equally near. */
const char *nearest_name(const char *word, size_t len, const char *const *cands,
                                size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1, i;
    int tie = 0;
    for (i = 0; i < n; i++) {
        size_t cl = strlen(cands[i]), d = edit_distance(word, len, cands[i], cl);
        size_t limit = cl <= 4 ? 1 : 2;
        if (d > limit || d >= len)
            continue;
        if (d < best_d) {
            best = cands[i];
            best_d = d;
            tie = 0;
        } else if (d == best_d && strcmp(best, cands[i]) != 0) {
            tie = 1;
        }
    }
    return tie ? NULL : best;
}

/* Report a getopt failure (opterr = 0, optstring starts with ':'): name the
 * option, and for a mistyped or ambiguous long option the options meant. */
int getopt_failure(int c, char **argv, const struct option *longopts)
{
    const char *arg = argv[optind - 1];
    int is_long = arg && arg[0] == '-' && arg[1] == '-';
    if (c == ':') {
        if (is_long)
            return usage_error("option '%s' requires an argument", arg);
        return usage_error("option '-%c' requires an argument", optopt);
    }
    if (is_long && longopts) {
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name), n = 0, k, matches = 0;
        const char *names[64];
        char list[512] = "";
        for (k = 0; longopts[k].name && n < 64; k++)
            names[n++] = longopts[k].name;
        /* getopt_long takes unambiguous prefixes: an ambiguous one lands here. */
        for (k = 0; k < n && len > 0; k++)
            if (strncmp(names[k], name, len) == 0) {
                size_t l = strlen(list);
                snprintf(list + l, sizeof list - l, "%s--%s", matches ? ", " : "", names[k]);
                matches++;
            }
        if (matches > 1)
            return usage_error("option '--%.*s' is ambiguous: %s", (int)len, name, list);
        {
            const char *near = nearest_name(name, len, names, n);
            if (near)
                return usage_error("unknown option '--%.*s'; did you mean '--%s'?", (int)len,
                                   name, near);
        }
    }
    if (is_long || optopt == 0)
        return usage_error("unknown option '%s'", arg ? arg : "?");
    return usage_error("unknown option '-%c'", optopt);
}

/* Reset getopt between the global parse and a subcommand's parse
 * (glibc: optind = 0 reinitialises completely). */
void getopt_reset(void)
{
    optind = 0;
    opterr = 0;
}

/* ------------------------------------------------------------------------
 * Progress bar and signals
 * ------------------------------------------------------------------------ */

void progress_cb(void *user, int64_t done, int64_t total)
{
    progress_state *ps = user;
    double t = now_seconds(), el = t - ps->t0, eta = -1, rate = 0;
    char e1[32], e2[32], line[160];
    int n;

    if (done < total && t - ps->last < 0.1 && ps->printed)
        return; /* at most ten updates a second */
    ps->last = t;
    if (done > 0 && total > 0 && el > 0) {
        eta = el * (double)(total - done) / (double)done;
        rate = (double)ps->voxels * ((double)done / (double)total) / el / 1e6;
    }
    format_duration(el, e1, sizeof e1);
    format_duration(eta, e2, sizeof e2);
    n = snprintf(line, sizeof line,
                 "%3d%% %" PRId64 "/%" PRId64 " blocks  %s elapsed  ETA %s  %.1f Mvoxel/s",
                 total > 0 ? (int)(100.0 * (double)done / (double)total) : 100,
                 done, total, e1, done > 0 ? e2 : "--:--", rate);
    if (n < 0)
        return;
    fprintf(stderr, "\r%s%*s", line, ps->width > n ? ps->width - n : 0, "");
    ps->width = n;
    ps->printed = 1;
    fflush(stderr);
}

void progress_end(progress_state *ps)
{
    if (ps->printed) {
        fputc('\n', stderr);
        ps->printed = 0;
    }
}

static void on_signal(int sig)
{
    /* SA_RESETHAND: a second ^C kills the process the default way. */
    g_signal = sig;
    g_cancel = 1;
}

void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* "(a, b, c)" */
void coord_str(const int64_t *v, int n, char *buf, size_t size)
{
    lb_coord_format(v, n, buf, size);
}
