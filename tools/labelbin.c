/*
 * labelbin.c — the `labelbin` command-line tool: info, binarize, mask, run
 * and sample. A thin front end over the public API (labelbin.h only): it
 * parses arguments, prints, handles signals and maps errors to exit codes.
 */
#include <labelbin.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#if defined(__GLIBC__)
#endif
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* `labelbin preview` lives in cmd_preview.c. */
int cmd_preview(int argc, char **argv);
extern const char help_preview[];

/* Exit codes (docs/cli.md "Exit codes"). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* The CLI is a process, not a library: a little global state is fine.
 * g_verbosity: 0 = -q (errors only), 1 = normal, 2 = -v. */
static int g_verbosity = 1;
static const char *g_cmd = NULL; /* subcommand, for usage messages */

/* Set by SIGINT/SIGTERM; the library polls it through opt.cancel. */
static volatile int g_cancel = 0;
static volatile sig_atomic_t g_signal = 0;

/* ------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------ */

#if defined(__GNUC__)
#  define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#  define PRINTF_LIKE(f, a)
#endif

/* "labelbin: <cmd>: <why>" + a hint; returns EXIT_USAGE. */
static int usage_error(const char *fmt, ...) PRINTF_LIKE(1, 2);
static int usage_error(const char *fmt, ...)
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
static int failure(const char *fmt, ...) PRINTF_LIKE(1, 2);
static int failure(const char *fmt, ...)
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
static void print_lb_error(const lb_error *e)
{
    if (e->message[0])
        fprintf(stderr, "labelbin: %s\n", e->message);
    else
        fprintf(stderr, "labelbin: %s\n", lb_strerror(e->code));
}

static int lb_failure(const lb_error *e)
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
    static void name(const char *fmt, ...) PRINTF_LIKE(1, 2);                \
    static void name(const char *fmt, ...)                                   \
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

static void json_string(FILE *f, const char *s)
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

static void json_i64_list(FILE *f, const int64_t *v, int n)
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
static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
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
static int parse_i64_list(const char *s, int64_t lo, int64_t hi, int64_t *out,
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
static char *read_text_file(const char *path)
{
    FILE *f;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int is_stdin = strcmp(path, "-") == 0;
    const size_t limit = (size_t)256 << 20; /* configs are small */

    f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        failure("%s: %s", path, strerror(errno));
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

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void format_duration(double s, char *buf, size_t size)
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

static void format_bytes(int64_t b, char *buf, size_t size)
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
 * Help texts
 * ------------------------------------------------------------------------ */

static const char help_main[] =
    "Usage: labelbin [-h|-V] COMMAND [OPTIONS] ARGS...\n"
    "\n"
    "Turn chunked label volumes (Zarr v2, N5) into per-class binary channels\n"
    "(DaCapo's BinarizeArray) and training masks (MissingAnnotationsMask).\n"
    "\n"
    "Commands:\n"
    "  info      SOURCE               describe a dataset (--json for machines)\n"
    "  binarize  SOURCE DEST -g ...   write one 0/1 channel per group\n"
    "  mask      SOURCE DEST -g ...   write the missing-annotations mask\n"
    "  run       CONFIG.json DEST     materialise a DaCapo array config\n"
    "  sample    DEST                 write a built-in CellMap-like sample crop\n"
    "  preview   SOURCE -o OUT.png    draw a section (labels, groups, mask) as PNG\n"
    "  help      [COMMAND]            show help for a command\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "  -V, --version  show the version and exit\n"
    "\n"
    "Run 'labelbin COMMAND --help' for the options of a command.\n"
    "Exit status: 0 ok, 1 runtime failure (bad data, refused ROI, I/O),\n"
    "2 usage error, 130 interrupted (run again with --resume).\n"
    "\n"
    "Examples:\n"
    "  labelbin sample demo/crop.zarr/volumes/labels/all\n"
    "  labelbin info demo/crop.zarr/volumes/labels/all\n"
    "  labelbin binarize demo/crop.zarr/volumes/labels/all out.zarr/gt \\\n"
    "      -g mito=3,4,5 -g er=16,17,18,19 -g cell=\n"
    "  labelbin mask demo/crop.zarr/volumes/labels/all out.zarr/mask \\\n"
    "      -g mito=3,4,5 -g er=16,17,18,19 -g cell=\n";

static const char help_info[] =
    "Usage: labelbin info [OPTIONS] SOURCE\n"
    "\n"
    "Describe the dataset SOURCE (a Zarr v2 or N5 dataset directory): format,\n"
    "dtype, shape, chunks, codec, axes, voxel size, ROI in world units,\n"
    "channels, annotation metadata (the `labels` attribute) and warnings;\n"
    "an output whose labelbin run did not finish is shown as INCOMPLETE.\n"
    "A container or group (e.g. crop.zarr) is not a dataset: the datasets below\n"
    "it are listed and the likeliest suggested (exit 1).\n"
    "\n"
    "Options:\n"
    "  --json         print one JSON object instead of the human form\n"
    "  -q, --quiet    print nothing but errors (the exit status tells)\n"
    "  -v, --verbose  also print the attributes\n"
    "  -h, --help     show this help and exit\n"
    "\n"
    "Examples:\n"
    "  labelbin info crop.zarr/volumes/labels/all\n"
    "  labelbin info --json crop.n5/volumes/groundtruth/crop1/labels/all\n";

static const char help_binarize[] =
    "Usage: labelbin binarize [OPTIONS] SOURCE DEST (-g NAME=IDS | --groupings FILE)...\n"
    "\n"
    "Write DaCapo's BinarizeArray of SOURCE to the new Zarr v2 dataset DEST:\n"
    "channel i is 1 where the label is one of the ids of group i (an empty\n"
    "group: where the label is not the background), else 0.\n"
    "\n"
    "Groups (at least one; channels follow the command-line order; a name\n"
    "names its channel, so it is non-empty and used once):\n"
    "  -g, --group NAME=ID,ID,...  a group; 'all=' is an empty group; ids are\n"
    "                              decimal, may be negative, up to 2^64-1\n"
    "  --groupings FILE            groups as DaCapo JSON [[\"mito\",[3,4,5]],...]\n"
    "                              or {\"mito\":[3,4,5],...} ('-' = standard input)\n"
    "  --background ID             the label empty groups exclude (default 0)\n"
    "\n"
    "Output:\n"
    "  --roi ROI         world units, 'b0:e0,b1:e1,...' or '[b0:e0, ...]'\n"
    "                    (default: the whole array); use --roi=-16:48,...\n"
    "                    or --roi '-16:48,...' for negative offsets\n"
    "  --codec CODEC     compressor: a Zarr v2 compressor JSON object or\n"
    "                    zstd[:L], gzip[:L], zlib[:L], bz2[:L], lz4, lzma,\n"
    "                    blosc-CNAME[:L] (lz4 lz4hc zstd zlib blosclz), none\n"
    "  --chunks C,...    spatial chunk shape in voxels (default: the source's)\n"
    "  --ome-ngff        write an OME-NGFF 0.4 multiscale group (DEST/s0)\n"
    "  -f, --force       replace an existing DEST\n"
    "  --resume          finish an interrupted run into DEST\n"
    "  -j, --threads N   worker threads (default 0 = all cores; -v prints the\n"
    "                    number used)\n"
    "  --progress        show a progress bar (default: when stderr is a terminal)\n"
    "  --no-progress     never show a progress bar\n"
    "  -q, --quiet       print nothing but errors\n"
    "  -v, --verbose     print what is being done and the threads used\n"
    "  -h, --help        show this help and exit\n"
    "\n"
    "Examples:\n"
    "  labelbin binarize crop.zarr/volumes/labels/all targets.zarr/gt \\\n"
    "      -g mito=3,4,5 -g mito_mem=3 -g er=16,17,18,19,20,21,22,23 -g cell=\n"
    "  labelbin binarize crop.n5/volumes/groundtruth/crop1/labels/all out.zarr/gt \\\n"
    "      --groupings groups.json --roi 80:240,40:184,400:576 -j 8 --codec zstd:5\n"
    "  labelbin binarize crop.zarr/volumes/labels/all targets.zarr/gt -g mito=3,4,5 --resume\n";

static const char help_mask[] =
    "Usage: labelbin mask [OPTIONS] SOURCE DEST (-g NAME=IDS | --groupings FILE)...\n"
    "\n"
    "Write DaCapo's MissingAnnotationsMask of SOURCE to the new Zarr v2 dataset\n"
    "DEST: every channel is 1 where the label is > 0, and a channel whose group\n"
    "holds an id that the `labels` attribute marks present but not annotated is\n"
    "0 everywhere (the table names those ids). Ids in the data that `labels`\n"
    "does not list as present count as annotated, with a warning naming them.\n"
    "Without a `labels` attribute the mask is label > 0 in every channel. Use\n"
    "the same groups as for 'labelbin binarize'.\n"
    "\n"
    "Groups (at least one; channels follow the command-line order):\n"
    "  -g, --group NAME=ID,ID,...  a group; 'all=' is an empty group\n"
    "  --groupings FILE            groups as JSON, as for binarize ('-' = stdin)\n"
    "\n"
    "Output options are those of 'labelbin binarize':\n"
    "  --roi ROI, --codec CODEC, --chunks C,..., --ome-ngff, -f/--force,\n"
    "  --resume, -j/--threads N, --progress, --no-progress, -q, -v, -h\n"
    "\n"
    "Examples:\n"
    "  labelbin mask crop.zarr/volumes/labels/all targets.zarr/mask \\\n"
    "      -g mito=3,4,5 -g mito_mem=3 -g er=16,17,18,19,20,21,22,23 -g cell=\n"
    "  labelbin mask crop.zarr/volumes/labels/all targets.zarr/mask --groupings groups.json\n";

static const char help_run[] =
    "Usage: labelbin run [OPTIONS] CONFIG.json DEST\n"
    "\n"
    "Build the array described by a DaCapo array config (\"__type__\":\n"
    "ZarrArrayConfig, BinarizeArrayConfig or MissingAnnotationsMaskConfig,\n"
    "nested) and write it to the new Zarr v2 dataset DEST. Relative file_names\n"
    "resolve against the current directory, as in DaCapo. CONFIG '-' reads\n"
    "standard input.\n"
    "\n"
    "Output options are those of 'labelbin binarize':\n"
    "  --roi ROI, --codec CODEC, --chunks C,..., --ome-ngff, -f/--force,\n"
    "  --resume, -j/--threads N, --progress, --no-progress, -q, -v, -h\n"
    "\n"
    "Examples:\n"
    "  labelbin run gt.json targets.zarr/gt\n"
    "  echo '{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"gt\",\n"
    "        \"source_array_config\": {\"__type__\": \"ZarrArrayConfig\", \"name\": \"l\",\n"
    "          \"file_name\": \"crop.zarr\", \"dataset\": \"volumes/labels/all\"},\n"
    "        \"groupings\": [[\"mito\", [3, 4, 5]]]}' | labelbin run - targets.zarr/gt\n";

static const char help_sample[] =
    "Usage: labelbin sample [OPTIONS] DEST\n"
    "\n"
    "Write a built-in CellMap-like sample crop to DEST: a uint64 Zarr v2\n"
    "label dataset with a cell (plasma membrane, cytosol), a nucleus,\n"
    "mitochondria, ER sheets, vesicles, peroxisomes and microtubules in\n"
    "CellMap ids, extracellular space around it and an unannotated margin\n"
    "(label 0). Its `labels` attribute (fibsem-tools LabelList) marks\n"
    "5 mito_ribo as present but not annotated. The same seed and shape give\n"
    "the same bytes.\n"
    "\n"
    "Options:\n"
    "  --shape Z,Y,X     size in voxels (default 96,128,128; each 16..4096)\n"
    "  --seed N          random seed (default 1)\n"
    "  --chunks Z,Y,X    chunk shape (default 32,64,64)\n"
    "  --codec CODEC     compressor (default zstd:3; see 'labelbin binarize -h')\n"
    "  -f, --force       replace an existing DEST\n"
    "  -q, --quiet       print nothing but errors\n"
    "  -v, --verbose     print the label counts\n"
    "  -h, --help        show this help and exit\n"
    "\n"
    "Examples:\n"
    "  labelbin sample demo-out/crop.zarr/volumes/labels/all\n"
    "  labelbin sample --shape 128,256,256 --seed 7 big.zarr/labels\n";

/* ------------------------------------------------------------------------
 * Option parsing shared by the subcommands
 * ------------------------------------------------------------------------ */

enum {
    OPT_JSON = 256,
    OPT_GROUPINGS,
    OPT_BACKGROUND,
    OPT_ROI,
    OPT_CODEC,
    OPT_CHUNKS,
    OPT_RESUME,
    OPT_OME_NGFF,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
    OPT_SHAPE,
    OPT_SEED
};

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
static const char *nearest_name(const char *word, size_t len, const char *const *cands,
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
static int getopt_failure(int c, char **argv, const struct option *longopts)
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
static void getopt_reset(void)
{
    optind = 0;
    opterr = 0;
}

typedef enum write_kind { KIND_BINARIZE, KIND_MASK, KIND_RUN } write_kind;

typedef struct write_args {
    lb_groupings *groups;
    int n_group_args;
    const char *groupings_file; /* the last --groupings FILE */
    lb_id background;
    int have_background;
    lb_roi roi;
    int have_roi;
    int threads;
    const char *codec;
    int64_t chunks[LB_MAX_DIMS];
    int n_chunks;
    int force;
    int resume;
    int ome_ngff;
    int progress; /* -1 auto (isatty), 0 off, 1 on */
    const char *pos[2];
} write_args;

static const struct option write_longopts[] = {
    {"group", required_argument, NULL, 'g'},
    {"groupings", required_argument, NULL, OPT_GROUPINGS},
    {"background", required_argument, NULL, OPT_BACKGROUND},
    {"roi", required_argument, NULL, OPT_ROI},
    {"threads", required_argument, NULL, 'j'},
    {"codec", required_argument, NULL, OPT_CODEC},
    {"chunks", required_argument, NULL, OPT_CHUNKS},
    {"force", no_argument, NULL, 'f'},
    {"resume", no_argument, NULL, OPT_RESUME},
    {"ome-ngff", no_argument, NULL, OPT_OME_NGFF},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

/* Parse the options of binarize / mask / run. Returns -1 when the caller
 * should continue, else an exit code (help printed = EXIT_OK). */
static int parse_write_args(int argc, char **argv, write_kind kind,
                            write_args *wa)
{
    const char *help = kind == KIND_BINARIZE ? help_binarize
                       : kind == KIND_MASK   ? help_mask
                                             : help_run;
    lb_error e = {0};
    int npos = 0;
    int c;

    memset(wa, 0, sizeof *wa);
    wa->progress = -1;
    if (lb_groupings_new(&wa->groups, &e) != 0)
        return lb_failure(&e);

    getopt_reset();
    while ((c = getopt_long(argc, argv, ":g:j:fqvh", write_longopts, NULL)) != -1) {
        switch (c) {
        case 'g':
        case OPT_GROUPINGS:
            if (kind == KIND_RUN)
                return usage_error("%s: the groups of 'run' come from the config",
                                   c == 'g' ? "-g" : "--groupings");
            if (c == 'g') {
                if (lb_groupings_add_arg(wa->groups, optarg, &e) != 0)
                    return usage_error("-g: %s", e.message);
            } else {
                char *text = read_text_file(optarg);
                int rc;
                if (!text)
                    return EXIT_FAIL;
                rc = lb_groupings_add_json(wa->groups, text, &e);
                free(text);
                if (rc != 0)
                    return failure("%s: %s", strcmp(optarg, "-") ? optarg : "<stdin>",
                                   e.message);
                wa->groupings_file = strcmp(optarg, "-") ? optarg : "<stdin>";
            }
            wa->n_group_args++;
            break;
        case OPT_BACKGROUND:
            if (kind != KIND_BINARIZE)
                return usage_error("--background applies to 'binarize' only");
            if (lb_id_parse(optarg, &wa->background, &e) != 0)
                return usage_error("--background: %s", e.message);
            wa->have_background = 1;
            break;
        case OPT_ROI:
            if (lb_roi_parse(optarg, &wa->roi, &e) != 0)
                return usage_error("--roi: %s", e.message);
            wa->have_roi = 1;
            break;
        case 'j': {
            int64_t v;
            if (parse_i64(optarg, 0, 4096, &v) != 0)
                return usage_error("-j '%s': expected a number of threads "
                                   "from 0 (all cores) to 4096", optarg);
            wa->threads = (int)v;
            break;
        }
        case OPT_CODEC:
            if (!*optarg)
                return usage_error("--codec: empty codec");
            wa->codec = optarg;
            break;
        case OPT_CHUNKS:
            if (parse_i64_list(optarg, 1, INT32_MAX, wa->chunks, LB_MAX_DIMS,
                               &wa->n_chunks) != 0)
                return usage_error("--chunks '%s': expected positive integers "
                                   "separated by commas, e.g. 32,64,64", optarg);
            break;
        case 'f': wa->force = 1; break;
        case OPT_RESUME: wa->resume = 1; break;
        case OPT_OME_NGFF: wa->ome_ngff = 1; break;
        case OPT_PROGRESS: wa->progress = 1; break;
        case OPT_NO_PROGRESS: wa->progress = 0; break;
        case 'q': g_verbosity = 0; break;
        case 'v': g_verbosity = 2; break;
        case 'h': fputs(help, stdout); return EXIT_OK;
        default: return getopt_failure(c, argv, write_longopts);
        }
    }
    for (; optind < argc; optind++) {
        if (npos >= 2)
            return usage_error("unexpected argument '%s'", argv[optind]);
        wa->pos[npos++] = argv[optind];
    }
    if (npos < 2)
        return usage_error(kind == KIND_RUN ? "expected CONFIG.json and DEST"
                                            : "expected SOURCE and DEST");
    if (kind != KIND_RUN && wa->n_group_args == 0)
        return usage_error("no groups: give -g NAME=ID,... or --groupings FILE");
    if (wa->force && wa->resume)
        return usage_error("--force and --resume exclude each other");
    if (!*wa->pos[1])
        return usage_error("DEST is empty");
    /* Only a --groupings file can be empty (-g always adds a group). */
    if (kind != KIND_RUN && lb_groupings_count(wa->groups) == 0)
        return failure("%s: the groupings are empty: at least one group is needed (each "
                       "group is one output channel)", wa->groupings_file);
    return -1;
}

/* ------------------------------------------------------------------------
 * Progress bar and signals
 * ------------------------------------------------------------------------ */

typedef struct progress_state {
    double t0;
    double last;
    int64_t voxels; /* spatial voxels of the whole ROI */
    int printed;
    int width; /* length of the last line, to blank it */
} progress_state;

static void progress_cb(void *user, int64_t done, int64_t total)
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

static void progress_end(progress_state *ps)
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

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ------------------------------------------------------------------------
 * Helpers on arrays
 * ------------------------------------------------------------------------ */

/* "(a, b, c)" */
static void coord_str(const int64_t *v, int n, char *buf, size_t size)
{
    lb_coord_format(v, n, buf, size);
}

/* Next-integer test on two ids, for "20..29" ranges. */
static int id_is_next(lb_id a, lb_id b)
{
    if (!a.negative && !b.negative)
        return a.bits != UINT64_MAX && b.bits == a.bits + 1;
    if (a.negative && b.negative)
        return (int64_t)b.bits == (int64_t)a.bits + 1;
    return a.negative && (int64_t)a.bits == -1 && !b.negative && b.bits == 0;
}

/* Ids as "3,4,5" with runs of 3+ as "20..29", truncated with ",..." to
 * `size`. */
static void id_list_str(const lb_id *ids, size_t n, char *buf, size_t size)
{
    size_t i = 0, len = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    while (i < n) {
        size_t j = i;
        char a[32], b[32], piece[80];
        int m;
        while (j + 1 < n && id_is_next(ids[j], ids[j + 1]))
            j++;
        lb_id_format(ids[i], a, sizeof a);
        if (j - i >= 2) {
            lb_id_format(ids[j], b, sizeof b);
            snprintf(piece, sizeof piece, "%s%s..%s", i ? "," : "", a, b);
        } else if (j == i + 1) {
            lb_id_format(ids[j], b, sizeof b);
            snprintf(piece, sizeof piece, "%s%s,%s", i ? "," : "", a, b);
        } else {
            snprintf(piece, sizeof piece, "%s%s", i ? "," : "", a);
        }
        m = (int)strlen(piece);
        if (len + (size_t)m + 4 > size) {
            snprintf(buf + len, size - len, ",...");
            return;
        }
        memcpy(buf + len, piece, (size_t)m + 1);
        len += (size_t)m;
        i = j + 1;
    }
}

/* The ids of group gi; an empty group is "(not background)" in a
 * BinarizeArray and "(any label)" in a mask. */
static void ids_str(const lb_groupings *g, size_t gi, int is_mask, char *buf, size_t size)
{
    const lb_id *ids = NULL;
    size_t n = lb_groupings_ids(g, gi, &ids);
    if (size == 0)
        return;
    if (n == 0)
        snprintf(buf, size, "%s", is_mask ? "(any label)" : "(not background)");
    else
        id_list_str(ids, n, buf, size);
}

/* Warn about ids the source dtype cannot hold: they never match. */
static void warn_unfit_ids(const lb_groupings *g, lb_dtype dt, const lb_id *bg)
{
    size_t gi, k;
    char buf[32];
    if (!lb_dtype_is_integer(dt))
        return;
    for (gi = 0; gi < lb_groupings_count(g); gi++) {
        const lb_id *ids = NULL;
        size_t n = lb_groupings_ids(g, gi, &ids);
        for (k = 0; k < n; k++) {
            if (lb_id_fits(ids[k], dt))
                continue;
            lb_id_format(ids[k], buf, sizeof buf);
            warning("group '%s': id %s cannot occur in a %s source; it never matches",
                    lb_groupings_name(g, gi), buf, lb_dtype_name(dt));
        }
    }
    if (bg && !lb_id_fits(*bg, dt)) {
        lb_id_format(*bg, buf, sizeof buf);
        warning("--background %s cannot occur in a %s source: empty groups are 1 "
                "on every voxel", buf, lb_dtype_name(dt));
    }
}

/* Why a `labels` attribute is invalid: the library says so when a mask is
 * built over it (the message names the JSON path). */
static void annotations_why(const char *path, char *buf, size_t size)
{
    lb_error e = {0};
    lb_array *src = NULL, *m = NULL;
    lb_groupings *g = NULL;
    snprintf(buf, size, "malformed `labels` attribute");
    if (lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &src, &e) != 0)
        return;
    if (lb_groupings_new(&g, &e) != 0 ||
        lb_groupings_add(g, "probe", NULL, 0, &e) != 0) {
        lb_array_free(src);
        lb_groupings_free(g);
        return;
    }
    if (lb_mask_new(src, g, &m, &e) != 0 && e.message[0])
        snprintf(buf, size, "%s", e.message);
    lb_array_free(m);
    lb_groupings_free(g);
}

static const char *annotations_name(lb_annotations a)
{
    switch (a) {
    case LB_ANNOTATIONS_NONE: return "none";
    case LB_ANNOTATIONS_BOOLEAN: return "boolean";
    case LB_ANNOTATIONS_STRING: return "string";
    case LB_ANNOTATIONS_INVALID: return "invalid";
    }
    return "invalid";
}

/* Spatial voxels of `roi` in the array's grid; -1 on overflow. */
static int64_t roi_voxels(const lb_roi *roi, const int64_t *vs)
{
    int64_t n = 1;
    int i;
    for (i = 0; i < roi->ndim; i++) {
        int64_t v = roi->shape[i] / vs[i];
        if (v < 0)
            v = 0;
        if (v && n > INT64_MAX / v)
            return -1;
        n *= v;
    }
    return n;
}

/* ------------------------------------------------------------------------
 * "No dataset here": what is inside instead
 * ------------------------------------------------------------------------ */

/* Bounds of the walk: a container holds a few groups of datasets; never
 * wander through a large tree (or into the chunks of a dataset). */
#define WALK_MAX_DEPTH 6
#define WALK_MAX_ENTRIES 20000
#define WALK_MAX_FOUND 200
#define WALK_SHOW 20

typedef struct found_ds {
    char *rel;   /* path below the walk's root */
    char desc[160];
    int score;   /* how likely a label source: higher is likelier */
} found_ds;

typedef struct walk_state {
    found_ds found[WALK_MAX_FOUND];
    int n_found, more;  /* more: datasets beyond WALK_MAX_FOUND */
    long entries;
    int truncated;      /* a bound stopped the walk */
} walk_state;

static int path_exists(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p)
        return 0;
    return stat(p, &st) == 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A dataset found at `path`: describe it and guess how likely it is the
 * label source meant (integer, no channels, `labels` metadata or "label"
 * in its path; the finest scale "s0" of a multiscale group). */
static void walk_add(walk_state *w, const char *rel, const lb_array *a, const char *problem)
{
    found_ds *f;
    if (w->n_found >= WALK_MAX_FOUND) {
        w->more++;
        return;
    }
    f = &w->found[w->n_found];
    f->rel = strdup(rel);
    if (!f->rel)
        return;
    w->n_found++;
    f->score = 0;
    if (!a) {
        snprintf(f->desc, sizeof f->desc, "%s", problem);
        return;
    }
    {
        char shape[96];
        const char *base = strrchr(rel, '/');
        int labels_like = lb_dtype_is_integer(lb_array_dtype(a)) && lb_array_num_channels(a) < 0;
        coord_str(lb_array_shape(a), lb_array_ndim(a), shape, sizeof shape);
        snprintf(f->desc, sizeof f->desc, "%s %s %s%s%s", lb_array_format(a),
                 lb_dtype_name(lb_array_dtype(a)), shape,
                 lb_array_num_channels(a) >= 0 ? ", channels" : "",
                 lb_array_annotations(a) != LB_ANNOTATIONS_NONE ? ", `labels` metadata" : "");
        base = base ? base + 1 : rel;
        if (labels_like) {
            f->score = 2;
            if (lb_array_annotations(a) != LB_ANNOTATIONS_NONE)
                f->score += 4;
            if (strstr(rel, "label") || strstr(rel, "gt") || strstr(rel, "groundtruth"))
                f->score += 2;
        }
        if (strcmp(base, "s0") == 0 || strcmp(base, "0") == 0)
            f->score += 1; /* the finest scale of a multiscale group */
    }
}

/* Depth-first through `dir` (rel: its path below the root, "" for the
 * root), in name order, not into datasets or hidden folders. */
static void walk_dir(walk_state *w, const char *dir, const char *rel, int depth)
{
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0, i;

    if (depth > WALK_MAX_DEPTH) {
        w->truncated = 1;
        return;
    }
    d = opendir(dir);
    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        if (++w->entries > WALK_MAX_ENTRIES) {
            w->truncated = 1;
            break;
        }
        if (de->d_name[0] == '.')
            continue; /* ".", "..", metadata files, hidden folders */
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn)
                break;
            names = nn;
            cap = nc;
        }
        names[n] = strdup(de->d_name);
        if (names[n])
            n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, name_cmp);
    for (i = 0; i < n; i++) {
        char path[4096], sub[4096];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path ||
            snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", names[i]) >=
                (int)sizeof sub ||
            stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (path_exists(path, ".zarray") || path_exists(path, "attributes.json") ||
            path_exists(path, "zarr.json")) {
            lb_error e = {0};
            lb_array *a = NULL;
            int rc = lb_array_open(path, LB_OPEN_READONLY, NULL, 0, &a, &e);
            if (rc == 0) {
                walk_add(w, sub, a, NULL);
                lb_array_free(a);
                continue;
            }
            if (rc != LB_ENOTFOUND) {
                /* A dataset we cannot read: list it with the reason. */
                const char *why = "cannot be opened (run 'labelbin info' on it)";
                walk_add(w, sub, NULL, why);
                continue;
            }
            /* A group (N5 attributes.json without dimensions): go on. */
        }
        walk_dir(w, path, sub, depth + 1);
    }
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* After "no dataset here" for `path`: when it is a folder, list the
 * datasets below it (a bounded walk) and suggest the likeliest, e.g. the
 * labels of a crop or `s0` of a multiscale group. Prints to stderr. */
static void suggest_datasets(const char *path)
{
    struct stat st;
    walk_state *w;
    int i, best = -1, width = 0;
    char root[4096];
    size_t len;

    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return;
    snprintf(root, sizeof root, "%s", path);
    len = strlen(root);
    while (len > 1 && root[len - 1] == '/')
        root[--len] = '\0';
    w = calloc(1, sizeof *w);
    if (!w)
        return;
    walk_dir(w, root, "", 1);
    if (w->n_found == 0) {
        fprintf(stderr, "labelbin: %s holds no Zarr or N5 dataset%s: give the path of a "
                        "dataset folder (one with .zarray or zarr.json, or an N5 "
                        "attributes.json with \"dimensions\")\n",
                root, w->truncated ? " near the top (the search stopped early)" : "");
        free(w);
        return;
    }
    for (i = 0; i < w->n_found && i < WALK_SHOW; i++)
        if ((int)strlen(w->found[i].rel) > width)
            width = (int)strlen(w->found[i].rel);
    fprintf(stderr, "labelbin: %s is a group; the datasets below it:\n", root);
    for (i = 0; i < w->n_found; i++) {
        if (i < WALK_SHOW)
            fprintf(stderr, "  %s/%-*s  %s\n", root, width, w->found[i].rel, w->found[i].desc);
        if (w->found[i].score > 0 && (best < 0 || w->found[i].score > w->found[best].score))
            best = i;
    }
    if (w->n_found + w->more > WALK_SHOW)
        fprintf(stderr, "  ... and %d more\n", w->n_found + w->more - WALK_SHOW);
    if (best >= 0)
        fprintf(stderr, "labelbin: did you mean %s/%s?\n", root, w->found[best].rel);
    for (i = 0; i < w->n_found; i++)
        free(w->found[i].rel);
    free(w);
}

/* Open SOURCE for a command; on failure print the library's message and,
 * for a folder that is not a dataset, what is inside. */
static int open_source(const char *path, lb_array **out)
{
    lb_error e = {0};
    int rc = lb_array_open(path, LB_OPEN_READONLY, NULL, 0, out, &e);
    if (rc == 0)
        return 0;
    print_lb_error(&e);
    if (rc == LB_ENOTFOUND)
        suggest_datasets(path);
    return rc;
}

/* ------------------------------------------------------------------------
 * labelbin info
 * ------------------------------------------------------------------------ */

static int cmd_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    lb_array *a = NULL;
    const char *path = NULL;
    int as_json = 0, c, i, ndim, dims, nw;
    lb_roi roi;
    const int64_t *vs, *shape, *chunks;
    const char *codec, *fmt;
    int64_t nch;
    lb_annotations ann;
    char why[LB_ERROR_MESSAGE_SIZE] = "";
    char buf[2048];

    getopt_reset();
    while ((c = getopt_long(argc, argv, ":qvh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: as_json = 1; break;
        case 'q': g_verbosity = 0; break;
        case 'v': g_verbosity = 2; break;
        case 'h': fputs(help_info, stdout); return EXIT_OK;
        default: return getopt_failure(c, argv, longopts);
        }
    }
    if (optind >= argc)
        return usage_error("expected SOURCE");
    if (optind + 1 < argc)
        return usage_error("unexpected argument '%s'", argv[optind + 1]);
    path = argv[optind];

    if (open_source(path, &a) != 0)
        return EXIT_FAIL;
    if (g_verbosity == 0) {
        lb_array_free(a);
        return EXIT_OK;
    }
    ndim = lb_array_ndim(a);
    dims = lb_array_dims(a);
    vs = lb_array_voxel_size(a);
    shape = lb_array_shape(a);
    chunks = lb_array_chunks(a);
    codec = lb_array_codec_json(a);
    fmt = lb_array_format(a);
    nch = lb_array_num_channels(a);
    ann = lb_array_annotations(a);
    nw = lb_array_warning_count(a);
    lb_array_roi(a, &roi);
    if (ann == LB_ANNOTATIONS_INVALID)
        annotations_why(path, why, sizeof why);

    if (as_json) {
        FILE *f = stdout;
        const char *attrs = lb_array_attrs_json(a);
        fputs("{\"path\": ", f);
        json_string(f, lb_array_path(a) ? lb_array_path(a) : path);
        /* false: an unfinished output (the warnings say how to finish it) */
        fprintf(f, ", \"complete\": %s", lb_array_incomplete(a) ? "false" : "true");
        fputs(", \"format\": ", f);
        json_string(f, fmt ? fmt : "");
        fputs(", \"dtype\": ", f);
        json_string(f, lb_dtype_name(lb_array_dtype(a)));
        fputs(", \"shape\": ", f);
        json_i64_list(f, shape, ndim);
        fputs(", \"chunks\": ", f);
        if (chunks)
            json_i64_list(f, chunks, ndim);
        else
            fputs("null", f);
        fprintf(f, ", \"codec\": %s", codec && *codec ? codec : "null");
        fputs(", \"axes\": [", f);
        for (i = 0; i < ndim; i++) {
            if (i)
                fputs(", ", f);
            json_string(f, lb_array_axis(a, i));
        }
        fprintf(f, "], \"dims\": %d, \"voxel_size\": ", dims);
        json_i64_list(f, vs, dims);
        fputs(", \"roi\": {\"offset\": ", f);
        json_i64_list(f, roi.offset, roi.ndim);
        fputs(", \"shape\": ", f);
        json_i64_list(f, roi.shape, roi.ndim);
        fputs("}, \"num_channels\": ", f);
        if (nch < 0)
            fputs("null", f);
        else
            fprintf(f, "%" PRId64, nch);
        fputs(", \"annotations\": ", f);
        json_string(f, annotations_name(ann));
        if (ann == LB_ANNOTATIONS_INVALID) {
            fputs(", \"annotations_error\": ", f);
            json_string(f, why);
        }
        fputs(", \"warnings\": [", f);
        for (i = 0; i < nw; i++) {
            if (i)
                fputs(", ", f);
            json_string(f, lb_array_warning(a, i));
        }
        /* Verbatim: the library's text keeps 64-bit ids exact. */
        fprintf(f, "], \"attrs\": %s}\n", attrs && *attrs ? attrs : "{}");
    } else {
        FILE *f = stdout;
        fprintf(f, "path:         %s\n", lb_array_path(a) ? lb_array_path(a) : path);
        if (lb_array_incomplete(a))
            fprintf(f, "status:       INCOMPLETE: a labelbin run writing this array did not "
                       "finish; chunks not yet written read as zeros. Finish it by running "
                       "the same command with --resume\n");
        fprintf(f, "format:       %s\n", fmt ? fmt : "-");
        fprintf(f, "dtype:        %s\n", lb_dtype_name(lb_array_dtype(a)));
        coord_str(shape, ndim, buf, sizeof buf);
        fprintf(f, "shape:        %s voxels\n", buf);
        if (chunks) {
            coord_str(chunks, ndim, buf, sizeof buf);
            fprintf(f, "chunks:       %s\n", buf);
        }
        fprintf(f, "codec:        %s\n", codec && *codec ? codec : "null");
        fputs("axes:         ", f);
        for (i = 0; i < ndim; i++)
            fprintf(f, "%s%s", i ? ", " : "", lb_array_axis(a, i));
        fputc('\n', f);
        coord_str(vs, dims, buf, sizeof buf);
        fprintf(f, "voxel size:   %s\n", buf);
        lb_roi_format(&roi, buf, sizeof buf);
        fprintf(f, "roi:          %s\n", buf);
        if (nch < 0)
            fprintf(f, "channels:     none\n");
        else
            fprintf(f, "channels:     %" PRId64 "\n", nch);
        switch (ann) {
        case LB_ANNOTATIONS_NONE:
            fprintf(f, "annotations:  none (no `labels` attribute: a mask is label > 0 "
                       "in every channel)\n");
            break;
        case LB_ANNOTATIONS_BOOLEAN:
            fprintf(f, "annotations:  `labels` LabelList, boolean annotationState\n");
            break;
        case LB_ANNOTATIONS_STRING:
            fprintf(f, "annotations:  `labels` LabelList, string annotationState "
                       "(only \"dense\" counts as annotated)\n");
            break;
        case LB_ANNOTATIONS_INVALID:
            fprintf(f, "annotations:  INVALID: %s\n", why);
            break;
        }
        if (nw == 0)
            fprintf(f, "warnings:     none\n");
        for (i = 0; i < nw; i++)
            fprintf(f, "%s%s\n", i ? "              " : "warnings:     ",
                    lb_array_warning(a, i));
        if (g_verbosity >= 2) {
            const char *attrs = lb_array_attrs_json(a);
            fprintf(f, "attributes:   %s\n", attrs ? attrs : "{}");
        }
    }
    lb_array_free(a);
    if (fflush(stdout) != 0)
        return failure("<stdout>: %s", strerror(errno));
    return EXIT_OK;
}

/* ------------------------------------------------------------------------
 * binarize / mask / run: build an array and materialise it
 * ------------------------------------------------------------------------ */

/* A refused ROI must leave nothing behind, so it is checked before the
 * writer runs; the library's own read check gives the message. */
static int check_roi(const lb_array *a, const lb_roi *roi)
{
    lb_error e = {0};
    lb_roi ar;
    char b1[1024], b2[1024], b3[256];
    const int64_t *vs = lb_array_voxel_size(a);
    int dims = lb_array_dims(a);

    lb_array_roi(a, &ar);
    if (roi->ndim == dims && lb_roi_contains(&ar, roi) && lb_roi_aligned(roi, vs))
        return 0;
    if (lb_array_read(a, roi, NULL, 0, &e) == LB_EROI && e.message[0]) {
        print_lb_error(&e);
        return EXIT_FAIL;
    }
    lb_roi_format(roi, b1, sizeof b1);
    lb_roi_format(&ar, b2, sizeof b2);
    coord_str(vs, dims, b3, sizeof b3);
    if (roi->ndim != dims)
        return failure("ROI %s has %d dimensions, the array %d (ROI %s)", b1,
                       roi->ndim, dims, b2);
    if (!lb_roi_contains(&ar, roi))
        return failure("ROI %s is outside the array's ROI %s", b1, b2);
    return failure("ROI %s is not a multiple of the voxel size %s (array ROI %s)",
                   b1, b3, b2);
}

/* The stored dataset under `a` (a itself, or the source of wrappers). */
static const char *stored_path(const lb_array *a)
{
    while (a && !lb_array_path(a))
        a = lb_array_source(a);
    return a ? lb_array_path(a) : "?";
}

/* A mask counts ids > 0 that its `labels` attribute does not list as
 * present as annotated (DaCapo's rule): say which ones the run met. */
static void warn_unlisted(const lb_array *a)
{
    lb_id ids[LB_MASK_UNLISTED_MAX];
    size_t n = lb_mask_unlisted_ids(a, ids, LB_MASK_UNLISTED_MAX);
    char list[512];
    if (n == 0)
        return;
    id_list_str(ids, n, list, sizeof list);
    warning("%s: label%s %s%s occur%s in the data but the `labels` attribute does not list "
            "%s as present: the mask counts %s voxels as annotated (1 in every channel that "
            "is not masked off); check the annotation metadata",
            stored_path(a), n > 1 ? "s" : "", list,
            n >= LB_MASK_UNLISTED_MAX ? " (and maybe more)" : "", n > 1 ? "" : "s",
            n > 1 ? "them" : "it", n > 1 ? "their" : "its");
}

static void print_summary(const lb_array *a, write_kind kind, const char *dest,
                          const lb_write_stats *st, int64_t voxels, double seconds)
{
    int64_t nch = lb_array_num_channels(a), i;
    char ids[64], bytes[32], dur[32];
    const lb_groupings *g = lb_array_groupings(a);
    int is_mask = strcmp(lb_array_kind(a), "MissingAnnotationsMask") == 0;
    size_t namew = 7;

    (void)kind;
    for (i = 0; i < nch; i++) {
        const char *nm = lb_array_channel_name(a, i);
        size_t l = nm ? strlen(nm) : 1;
        if (l > namew)
            namew = l > 24 ? 24 : l;
    }
    if (nch > 0) {
        printf("%3s  %-*s  %-22s  %15s  %7s%s\n", "#", (int)namew, "channel",
               g ? "ids" : "", "positive voxels", "share",
               is_mask ? "  mask" : "");
        for (i = 0; i < nch; i++) {
            const char *nm = lb_array_channel_name(a, i);
            double pct = voxels > 0 ? 100.0 * (double)st->positive[i] / (double)voxels : 0;
            ids[0] = '\0';
            if (g && (size_t)i < lb_groupings_count(g))
                ids_str(g, (size_t)i, is_mask, ids, 23);
            printf("%3" PRId64 "  %-*.*s  %-22s  %15" PRId64, i, (int)namew,
                   (int)namew, nm ? nm : "-", ids, st->positive[i]);
            /* After --resume the counts cover this run's blocks only. */
            if (st->blocks_skipped == 0)
                printf("  %6.2f%%", pct);
            else
                printf("  %7s", "-");
            /* A channel is masked off by the ids of its group that the
             * metadata marks present but not annotated: name them. */
            if (is_mask) {
                const lb_id *off = NULL;
                size_t n_off = lb_mask_off_ids(a, i, &off);
                char why[128];
                if (n_off) {
                    id_list_str(off, n_off, why, sizeof why);
                    printf("  masked off: %s present, not annotated", why);
                } else {
                    printf("  enabled");
                }
            }
            putchar('\n');
        }
    } else {
        printf("positive voxels: %" PRId64 "\n", st->positive[0]);
    }
    format_bytes(st->bytes_written, bytes, sizeof bytes);
    format_duration(seconds, dur, sizeof dur);
    printf("wrote %s: %" PRId64 " blocks", dest, st->blocks_done);
    if (st->blocks_skipped > 0)
        printf(" (+%" PRId64 " already complete, not counted above)", st->blocks_skipped);
    printf(", %" PRId64 " chunks, %" PRId64 " empty chunks skipped, %s, %.2f s\n",
           st->chunks_written, st->chunks_empty, bytes, seconds);
}

static int cmd_write(int argc, char **argv, write_kind kind)
{
    write_args wa;
    lb_error e = {0};
    lb_array *src = NULL, *a = NULL;
    lb_write_options opt;
    lb_write_stats st;
    progress_state ps;
    int64_t *positive = NULL, nch, voxels;
    size_t npos;
    char *config = NULL;
    const char *dest;
    lb_roi roi;
    int rc, ret = EXIT_FAIL, show_progress;
    double t0;
    char prov[256];

    rc = parse_write_args(argc, argv, kind, &wa);
    if (rc >= 0) {
        lb_groupings_free(wa.groups);
        return rc;
    }
    dest = wa.pos[1];

    if (kind == KIND_RUN) {
        config = read_text_file(wa.pos[0]);
        if (!config)
            goto done;
        if (lb_array_from_config(config, NULL, &a, &e) != 0) {
            /* The library names the JSON path inside the config; say
             * which file it is in. */
            fprintf(stderr, "labelbin: %s: %s\n",
                    strcmp(wa.pos[0], "-") == 0 ? "standard input" : wa.pos[0],
                    e.message[0] ? e.message : lb_strerror(e.code));
            ret = EXIT_FAIL;
            goto done;
        }
    } else {
        lb_dtype dt;
        if (open_source(wa.pos[0], &src) != 0) {
            ret = EXIT_FAIL;
            goto done;
        }
        dt = lb_array_dtype(src);
        warn_unfit_ids(wa.groups, dt, wa.have_background ? &wa.background : NULL);
        if (kind == KIND_MASK) {
            lb_annotations ann = lb_array_annotations(src);
            rc = lb_mask_new(src, wa.groups, &a, &e);
            if (rc == 0 && ann == LB_ANNOTATIONS_NONE)
                note("%s: no annotation metadata (`labels` attribute) found: the "
                     "mask is label > 0 in every channel", wa.pos[0]);
        } else {
            lb_id bg = {0, 0};
            if (wa.have_background)
                bg = wa.background;
            rc = lb_binarize_new(src, wa.groups, bg, &a, &e);
        }
        src = NULL; /* owned by the wrapper, or freed, from here on */
        if (rc != 0) {
            ret = lb_failure(&e);
            goto done;
        }
    }

    if (wa.n_chunks && wa.n_chunks != lb_array_dims(a)) {
        ret = usage_error("--chunks has %d entries, the array has %d spatial "
                          "dimensions", wa.n_chunks, lb_array_dims(a));
        goto done;
    }
    if (wa.have_roi) {
        if (check_roi(a, &wa.roi) != 0)
            goto done;
        roi = wa.roi;
    } else {
        lb_array_roi(a, &roi);
    }
    voxels = roi_voxels(&roi, lb_array_voxel_size(a));

    nch = lb_array_num_channels(a);
    npos = nch > 0 ? (size_t)nch : 1;
    positive = calloc(npos, sizeof *positive);
    if (!positive) {
        ret = failure("out of memory");
        goto done;
    }

    lb_write_options_init(&opt);
    opt.threads = wa.threads;
    opt.codec = wa.codec;
    opt.chunks = wa.n_chunks ? wa.chunks : NULL;
    opt.roi = wa.have_roi ? &wa.roi : NULL;
    opt.overwrite = wa.force;
    opt.resume = wa.resume;
    opt.ome_ngff = wa.ome_ngff;
    /* Only what is the same on a --resume run: resume compares metadata. */
    snprintf(prov, sizeof prov, "{\"command\": \"%s\"}",
             kind == KIND_BINARIZE ? "binarize" : kind == KIND_MASK ? "mask" : "run");
    opt.provenance_json = prov;
    opt.cancel = &g_cancel;

    show_progress = wa.progress >= 0 ? wa.progress : isatty(STDERR_FILENO);
    if (g_verbosity == 0 && wa.progress < 0)
        show_progress = 0;
    memset(&ps, 0, sizeof ps);
    ps.t0 = now_seconds();
    ps.voxels = voxels;
    if (show_progress) {
        opt.progress = progress_cb;
        opt.progress_user = &ps;
    }

    if (g_verbosity >= 2) {
        char b[1024];
        lb_roi_format(&roi, b, sizeof b);
        verbose("%s %s -> %s: ROI %s, %" PRId64 " voxels x %" PRId64 " channels",
                lb_array_kind(a), wa.pos[0], dest, b, voxels, nch < 0 ? 1 : nch);
        verbose("codec %s%s%s%s", wa.codec ? wa.codec : lb_default_codec_json(),
                wa.force ? ", overwrite" : "", wa.resume ? ", resume" : "",
                wa.ome_ngff ? ", OME-NGFF" : "");
    }

    memset(&st, 0, sizeof st);
    st.positive = positive;
    st.positive_len = npos;
    install_signals();
    t0 = now_seconds();
    rc = lb_array_materialize(a, dest, &opt, &st, &e);
    progress_end(&ps);
    if (rc == LB_ECANCELED || (rc != 0 && g_cancel)) {
        int sig = g_signal ? (int)g_signal : SIGINT;
        fprintf(stderr, "labelbin: interrupted; run the same command with --resume "
                        "to finish\n");
        ret = 128 + sig;
        goto done;
    }
    if (rc != 0) {
        print_lb_error(&e);
        /* The library says "invalid argument" only for what came from the
         * command line (codec spec, chunk shape): a usage error. */
        ret = rc == LB_EINVAL ? EXIT_USAGE : EXIT_FAIL;
        goto done;
    }
    verbose("%d worker thread%s for %" PRId64 " blocks", st.threads, st.threads == 1 ? "" : "s",
            st.blocks_total);
    if (g_verbosity >= 1)
        print_summary(a, kind, dest, &st, voxels, now_seconds() - t0);
    ret = EXIT_OK;
    if (fflush(stdout) != 0)
        ret = failure("<stdout>: %s", strerror(errno));
    warn_unlisted(a);
done:
    free(positive);
    free(config);
    lb_array_free(a);
    lb_array_free(src);
    lb_groupings_free(wa.groups);
    return ret;
}

/* ------------------------------------------------------------------------
 * labelbin sample: a synthetic CellMap-like crop
 * ------------------------------------------------------------------------ */

/* CellMap ids used by the sample (CellMap's published class table). */
static const struct {
    int id;
    const char *shrt, *lng;
} sample_classes[] = {
    {1, "ecs", "Extracellular space"},
    {2, "pm", "Plasma membrane"},
    {3, "mito_mem", "Mitochondrial membrane"},
    {4, "mito_lum", "Mitochondrial lumen"},
    {5, "mito_ribo", "Mitochondrial ribosome"},
    {6, "golgi_mem", "Golgi membrane"},
    {7, "golgi_lum", "Golgi lumen"},
    {8, "ves_mem", "Vesicle membrane"},
    {9, "ves_lum", "Vesicle lumen"},
    {16, "er_mem", "Endoplasmic reticulum membrane"},
    {17, "er_lum", "Endoplasmic reticulum lumen"},
    {20, "ne_mem", "Nuclear envelope membrane"},
    {21, "ne_lum", "Nuclear envelope lumen"},
    {22, "np_out", "Nuclear pore out"},
    {23, "np_in", "Nuclear pore in"},
    {24, "hchrom", "Heterochromatin"},
    {28, "nucpl", "Nucleoplasm"},
    {29, "nucleo", "Nucleolus"},
    {30, "mt_out", "Microtubule out"},
    {35, "cyto", "Cytosol"},
    {36, "mt_in", "Microtubule in"},
    {47, "perox_mem", "Peroxisome membrane"},
    {48, "perox_lum", "Peroxisome lumen"},
};
#define N_SAMPLE_CLASSES (sizeof sample_classes / sizeof sample_classes[0])
#define SAMPLE_NOT_ANNOTATED 5 /* present but not annotated: masks "mito" */

typedef enum { OBJ_BLOB, OBJ_SHEET, OBJ_TUBE } obj_type;

/* An object painted over cytosol only (so objects stay in the cell and
 * out of the nucleus). Coordinates in voxels (z, y, x). */
typedef struct sample_obj {
    obj_type type;
    double c[3], r[3]; /* BLOB: ellipsoid; SHEET: c = base point, r[0] =
                          amplitude, r[1] = wavelength, r[2] = half-extent */
    double t;          /* membrane thickness                              */
    int mem, lum, dot; /* labels; dot: small inclusions in the lumen      */
    double dots[4][3];
    int n_dots;
    int64_t bb0[3], bb1[3]; /* bounding box [bb0, bb1) */
} sample_obj;

typedef struct sample_model {
    int64_t shape[3];
    double cell_c[3], cell_r[3];
    double nuc_c[3], nuc_r[3];
    double pores[6][3]; /* unit directions of nuclear pores */
    int n_pores;
    int64_t margin_x; /* x >= margin_x is unannotated (0) */
    sample_obj obj[128];
    int n_obj;
} sample_model;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double urand(uint64_t *s, double lo, double hi)
{
    return lo + (hi - lo) * ((double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0));
}

/* Normalised ellipsoid distance: < 1 inside. */
static double ell_q(const double *p, const double *c, const double *r)
{
    double q = 0;
    int i;
    for (i = 0; i < 3; i++) {
        double d = (p[i] - c[i]) / r[i];
        q += d * d;
    }
    return q;
}

static void bbox_of_ellipsoid(const double *c, const double *r, const int64_t *shape,
                              int64_t *b0, int64_t *b1)
{
    int i;
    for (i = 0; i < 3; i++) {
        double lo = floor(c[i] - r[i] - 1), hi = ceil(c[i] + r[i] + 2);
        b0[i] = lo < 0 ? 0 : (int64_t)lo;
        b1[i] = hi > (double)shape[i] ? shape[i] : (int64_t)hi;
    }
}

/* A random point in the cytosol region: inside the cell at fraction `f`
 * of its radii and well away from the nucleus. */
static int random_cyto_point(const sample_model *m, uint64_t *s, double f,
                             double *p)
{
    int tries, i;
    for (tries = 0; tries < 200; tries++) {
        double nr[3];
        for (i = 0; i < 3; i++)
            p[i] = urand(s, m->cell_c[i] - f * m->cell_r[i], m->cell_c[i] + f * m->cell_r[i]);
        for (i = 0; i < 3; i++)
            nr[i] = m->nuc_r[i] * 1.25;
        if (ell_q(p, m->cell_c, m->cell_r) < f * f && ell_q(p, m->nuc_c, nr) > 1)
            return 0;
    }
    return -1;
}

static void sample_model_init(sample_model *m, const int64_t *shape, uint64_t seed)
{
    uint64_t s = seed ^ 0x6c6162656c62696eULL; /* "labelbin" */
    double sc = (double)(shape[0] < shape[1] ? (shape[0] < shape[2] ? shape[0] : shape[2])
                                            : (shape[1] < shape[2] ? shape[1] : shape[2])) / 96.0;
    int i, k;

    memset(m, 0, sizeof *m);
    memcpy(m->shape, shape, sizeof m->shape);
    m->margin_x = shape[2] - (shape[2] / 16 > 2 ? shape[2] / 16 : 2);
    for (i = 0; i < 3; i++) {
        m->cell_c[i] = (double)shape[i] * urand(&s, 0.47, 0.53);
        m->cell_r[i] = (double)shape[i] * urand(&s, 0.50, 0.56);
    }
    m->cell_c[2] = (double)shape[2] * 0.46; /* leave room for the margin */
    m->nuc_c[0] = m->cell_c[0];
    m->nuc_c[1] = m->cell_c[1] + m->cell_r[1] * 0.30;
    m->nuc_c[2] = m->cell_c[2] + m->cell_r[2] * 0.30;
    for (i = 0; i < 3; i++)
        m->nuc_r[i] = m->cell_r[i] * urand(&s, 0.36, 0.42);
    m->n_pores = 6;
    for (k = 0; k < m->n_pores; k++) {
        double d[3], n = 0;
        for (i = 0; i < 3; i++) {
            d[i] = urand(&s, -1, 1);
            n += d[i] * d[i];
        }
        n = sqrt(n) + 1e-9;
        for (i = 0; i < 3; i++)
            m->pores[k][i] = d[i] / n;
    }

    /* Mitochondria: elongated ellipsoids with a membrane shell, lumen and a
     * few ribosome dots (id 5, the class the metadata leaves unannotated). */
    for (k = 0; k < 12 && m->n_obj < 128; k++) {
        sample_obj *o = &m->obj[m->n_obj];
        if (random_cyto_point(m, &s, 0.75, o->c) != 0)
            continue;
        o->type = OBJ_BLOB;
        o->r[0] = sc * urand(&s, 4.5, 6.5);
        o->r[1] = sc * urand(&s, 5, 8);
        o->r[2] = sc * urand(&s, 10, 18);
        if (k % 2) { /* some run along y instead of x */
            double t = o->r[1];
            o->r[1] = o->r[2];
            o->r[2] = t;
        }
        o->t = 1.3;
        o->mem = 3;
        o->lum = 4;
        o->dot = 5;
        o->n_dots = 3;
        for (i = 0; i < o->n_dots; i++) {
            int j;
            for (j = 0; j < 3; j++)
                o->dots[i][j] = o->c[j] + urand(&s, -0.4, 0.4) * o->r[j];
        }
        bbox_of_ellipsoid(o->c, o->r, shape, o->bb0, o->bb1);
        m->n_obj++;
    }
    /* Peroxisomes. */
    for (k = 0; k < 3 && m->n_obj < 128; k++) {
        sample_obj *o = &m->obj[m->n_obj];
        double r = sc * urand(&s, 3.5, 5);
        if (random_cyto_point(m, &s, 0.8, o->c) != 0)
            continue;
        o->type = OBJ_BLOB;
        o->r[0] = o->r[1] = o->r[2] = r;
        o->t = 1.1;
        o->mem = 47;
        o->lum = 48;
        bbox_of_ellipsoid(o->c, o->r, shape, o->bb0, o->bb1);
        m->n_obj++;
    }
    /* ER sheets: thin wavy slabs y = y0 + a sin(2 pi x / w) of limited extent. */
    for (k = 0; k < 8 && m->n_obj < 128; k++) {
        sample_obj *o = &m->obj[m->n_obj];
        double ext;
        if (random_cyto_point(m, &s, 0.7, o->c) != 0)
            continue;
        o->type = OBJ_SHEET;
        o->r[0] = sc * urand(&s, 1.5, 3.5);
        o->r[1] = sc * urand(&s, 14, 24);
        o->r[2] = ext = sc * urand(&s, 12, 22);
        o->t = 1.6;
        o->mem = 16;
        o->lum = 17;
        {
            double rr[3] = {ext, o->r[0] + 3, ext};
            bbox_of_ellipsoid(o->c, rr, shape, o->bb0, o->bb1);
        }
        m->n_obj++;
    }
    /* Vesicles. */
    for (k = 0; k < 50 && m->n_obj < 128; k++) {
        sample_obj *o = &m->obj[m->n_obj];
        double r = sc * urand(&s, 1.8, 3.0);
        if (r < 1.8)
            r = 1.8;
        if (random_cyto_point(m, &s, 0.9, o->c) != 0)
            continue;
        o->type = OBJ_BLOB;
        o->r[0] = o->r[1] = o->r[2] = r;
        o->t = 1.0;
        o->mem = 8;
        o->lum = 9;
        bbox_of_ellipsoid(o->c, o->r, shape, o->bb0, o->bb1);
        m->n_obj++;
    }
    /* Microtubules along x through the cytosol. */
    for (k = 0; k < 3 && m->n_obj < 128; k++) {
        sample_obj *o = &m->obj[m->n_obj];
        if (random_cyto_point(m, &s, 0.8, o->c) != 0)
            continue;
        o->type = OBJ_TUBE;
        o->r[0] = 1.6; /* outer radius */
        o->t = 0.8;    /* inner radius */
        o->mem = 30;
        o->lum = 36;
        o->bb0[0] = o->c[0] - 3 < 0 ? 0 : (int64_t)(o->c[0] - 3);
        o->bb1[0] = (int64_t)(o->c[0] + 4) > shape[0] ? shape[0] : (int64_t)(o->c[0] + 4);
        o->bb0[1] = o->c[1] - 3 < 0 ? 0 : (int64_t)(o->c[1] - 3);
        o->bb1[1] = (int64_t)(o->c[1] + 4) > shape[1] ? shape[1] : (int64_t)(o->c[1] + 4);
        o->bb0[2] = 0;
        o->bb1[2] = shape[2];
        m->n_obj++;
    }
}

/* The label of the cell / nucleus layer at voxel p (before objects). */
static uint64_t sample_base_label(const sample_model *m, const double *p, int64_t x)
{
    double q, qn, rr[3], d[3], len;
    int i, k;

    if (x >= m->margin_x)
        return 0; /* unannotated margin */
    q = ell_q(p, m->cell_c, m->cell_r);
    if (q >= 1)
        return 1; /* ecs */
    for (i = 0; i < 3; i++)
        rr[i] = m->cell_r[i] - 1.6;
    if (ell_q(p, m->cell_c, rr) >= 1)
        return 2; /* pm */
    qn = ell_q(p, m->nuc_c, m->nuc_r);
    if (qn >= 1)
        return 35; /* cyto */
    /* Nuclear envelope: outer membrane, lumen, inner membrane; pores cut
     * through it at a few directions. */
    for (i = 0; i < 3; i++)
        rr[i] = m->nuc_r[i] - 4.2;
    if (ell_q(p, m->nuc_c, rr) >= 1) {
        len = 0;
        for (i = 0; i < 3; i++) {
            d[i] = (p[i] - m->nuc_c[i]) / m->nuc_r[i];
            len += d[i] * d[i];
        }
        len = sqrt(len) + 1e-9;
        for (k = 0; k < m->n_pores; k++) {
            double dot = 0, ang;
            for (i = 0; i < 3; i++)
                dot += d[i] / len * m->pores[k][i];
            ang = 1 - dot; /* small near the pore axis */
            if (ang < 0.004)
                return 23; /* np_in */
            if (ang < 0.012)
                return 22; /* np_out */
        }
        for (i = 0; i < 3; i++)
            rr[i] = m->nuc_r[i] - 1.4;
        if (ell_q(p, m->nuc_c, rr) >= 1)
            return 20;
        for (i = 0; i < 3; i++)
            rr[i] = m->nuc_r[i] - 2.8;
        if (ell_q(p, m->nuc_c, rr) >= 1)
            return 21;
        return 20;
    }
    /* Nucleolus off-centre, heterochromatin lining the envelope. */
    for (i = 0; i < 3; i++) {
        d[i] = m->nuc_c[i] + (i == 2 ? -0.25 : 0.15) * m->nuc_r[i];
        rr[i] = m->nuc_r[i] * 0.28;
    }
    if (ell_q(p, d, rr) < 1)
        return 29;
    for (i = 0; i < 3; i++)
        rr[i] = m->nuc_r[i] - 8.0;
    if (rr[0] > 1 && rr[1] > 1 && rr[2] > 1 && ell_q(p, m->nuc_c, rr) >= 1 &&
        sin(p[0] * 0.35) + sin(p[1] * 0.29 + 1) + sin(p[2] * 0.31 + 2) > 0.6)
        return 24;
    return 28;
}

static uint64_t sample_obj_label(const sample_obj *o, const double *p)
{
    double q, rr[3];
    int i, k;
    switch (o->type) {
    case OBJ_BLOB:
        q = ell_q(p, o->c, o->r);
        if (q >= 1)
            return 0;
        for (i = 0; i < 3; i++)
            rr[i] = o->r[i] - o->t;
        if (rr[0] <= 0 || rr[1] <= 0 || rr[2] <= 0 || ell_q(p, o->c, rr) >= 1)
            return (uint64_t)o->mem;
        for (k = 0; k < o->n_dots; k++) {
            double dd = 0;
            for (i = 0; i < 3; i++)
                dd += (p[i] - o->dots[k][i]) * (p[i] - o->dots[k][i]);
            if (dd < 1.3)
                return (uint64_t)o->dot;
        }
        return (uint64_t)o->lum;
    case OBJ_SHEET: {
        double dz = p[0] - o->c[0], dx = p[2] - o->c[2];
        double y0 = o->c[1] + o->r[0] * sin(6.283185307179586 * p[2] / o->r[1]);
        double dy = fabs(p[1] - y0);
        if (dz * dz + dx * dx > o->r[2] * o->r[2])
            return 0;
        if (dy < 0.7)
            return (uint64_t)o->lum;
        if (dy < 0.7 + o->t)
            return (uint64_t)o->mem;
        return 0;
    }
    case OBJ_TUBE: {
        double dz = p[0] - o->c[0], dy = p[1] - o->c[1], d2 = dz * dz + dy * dy;
        if (d2 < o->t * o->t)
            return (uint64_t)o->lum;
        if (d2 < o->r[0] * o->r[0])
            return (uint64_t)o->mem;
        return 0;
    }
    }
    return 0;
}

/* Fill slab z in [z0, z1) (buf holds (z1-z0) * Y * X labels). */
static void sample_fill(const sample_model *m, int64_t z0, int64_t z1, uint64_t *buf)
{
    int64_t Y = m->shape[1], X = m->shape[2], z, y, x;
    int k;
    for (z = z0; z < z1; z++)
        for (y = 0; y < Y; y++)
            for (x = 0; x < X; x++) {
                double p[3] = {(double)z + 0.5, (double)y + 0.5, (double)x + 0.5};
                buf[((z - z0) * Y + y) * X + x] = sample_base_label(m, p, x);
            }
    /* Objects in order; each paints only over cytosol. */
    for (k = 0; k < m->n_obj; k++) {
        const sample_obj *o = &m->obj[k];
        int64_t a0 = o->bb0[0] > z0 ? o->bb0[0] : z0;
        int64_t a1 = o->bb1[0] < z1 ? o->bb1[0] : z1;
        for (z = a0; z < a1; z++)
            for (y = o->bb0[1]; y < o->bb1[1]; y++)
                for (x = o->bb0[2]; x < o->bb1[2]; x++) {
                    uint64_t *v = &buf[((z - z0) * Y + y) * X + x];
                    double p[3] = {(double)z + 0.5, (double)y + 0.5, (double)x + 0.5};
                    uint64_t l;
                    if (*v != 35)
                        continue;
                    l = sample_obj_label(o, p);
                    if (l)
                        *v = l;
                }
    }
}

/* The attributes: geometry + fibsem-tools LabelList with exact counts. */
static char *sample_attrs(const int64_t *offset, const int64_t *res,
                          const uint64_t *counts, uint64_t seed)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    size_t i;
    if (!f)
        return NULL;
    fputs("{\"resolution\": ", f);
    json_i64_list(f, res, 3);
    fputs(", \"offset\": ", f);
    json_i64_list(f, offset, 3);
    fputs(", \"axes\": [\"z\", \"y\", \"x\"], \"units\": [\"nm\", \"nm\", \"nm\"]", f);
    fprintf(f, ", \"description\": \"labelbin sample crop (seed %" PRIu64 ")\"", seed);
    fputs(", \"labels\": [", f);
    for (i = 0; i < N_SAMPLE_CLASSES; i++) {
        int id = sample_classes[i].id;
        uint64_t n = counts[id];
        fprintf(f, "%s{\"value\": %d, \"name\": {\"long\": ", i ? ", " : "", id);
        json_string(f, sample_classes[i].lng);
        fputs(", \"short\": ", f);
        json_string(f, sample_classes[i].shrt);
        fprintf(f, "}, \"annotationState\": {\"present\": %s, \"annotated\": %s}, "
                   "\"count\": %" PRIu64 "}",
                n ? "true" : "false", id == SAMPLE_NOT_ANNOTATED ? "false" : "true", n);
    }
    fputs("]}", f);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static int cmd_sample(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"shape", required_argument, NULL, OPT_SHAPE},
        {"seed", required_argument, NULL, OPT_SEED},
        {"chunks", required_argument, NULL, OPT_CHUNKS},
        {"codec", required_argument, NULL, OPT_CODEC},
        {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int64_t shape[3] = {96, 128, 128}, chunks[3] = {32, 64, 64};
    const int64_t res[3] = {8, 8, 8};
    int64_t offset[3];
    uint64_t seed = 1, counts[64];
    const char *codec = "zstd:3", *dest;
    int force = 0, c, n, ret = EXIT_FAIL, pass, i;
    lb_error e = {0};
    lb_create_options co;
    lb_array *a = NULL;
    sample_model *m = NULL;
    uint64_t *buf = NULL;
    char *attrs = NULL;
    size_t slab_bytes;
    int64_t z0;

    getopt_reset();
    while ((c = getopt_long(argc, argv, ":fqvh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SHAPE:
            if (parse_i64_list(optarg, 16, 4096, shape, 3, &n) != 0 || n != 3)
                return usage_error("--shape '%s': expected Z,Y,X, each from 16 to 4096",
                                   optarg);
            break;
        case OPT_CHUNKS:
            if (parse_i64_list(optarg, 1, 4096, chunks, 3, &n) != 0 || n != 3)
                return usage_error("--chunks '%s': expected Z,Y,X, each from 1 to 4096",
                                   optarg);
            break;
        case OPT_SEED: {
            char *end;
            if (!*optarg || *optarg == '-')
                return usage_error("--seed '%s': expected a non-negative integer", optarg);
            errno = 0;
            seed = strtoull(optarg, &end, 10);
            if (errno || *end)
                return usage_error("--seed '%s': expected a non-negative integer", optarg);
            break;
        }
        case OPT_CODEC:
            if (!*optarg)
                return usage_error("--codec: empty codec");
            codec = optarg;
            break;
        case 'f': force = 1; break;
        case 'q': g_verbosity = 0; break;
        case 'v': g_verbosity = 2; break;
        case 'h': fputs(help_sample, stdout); return EXIT_OK;
        default: return getopt_failure(c, argv, longopts);
        }
    }
    if (optind >= argc)
        return usage_error("expected DEST");
    if (optind + 1 < argc)
        return usage_error("unexpected argument '%s'", argv[optind + 1]);
    dest = argv[optind];
    if (!*dest)
        return usage_error("DEST is empty");
    for (i = 0; i < 3; i++)
        if (chunks[i] > shape[i])
            chunks[i] = shape[i];
    /* A crop somewhere inside a bigger volume, as real crops are. */
    offset[0] = 400 * res[0];
    offset[1] = 600 * res[1];
    offset[2] = 1200 * res[2];

    m = malloc(sizeof *m);
    slab_bytes = (size_t)chunks[0] * (size_t)shape[1] * (size_t)shape[2] * sizeof(uint64_t);
    buf = malloc(slab_bytes);
    if (!m || !buf) {
        ret = failure("out of memory");
        goto done;
    }
    sample_model_init(m, shape, seed);
    memset(counts, 0, sizeof counts);

    /* Pass 0 counts labels for the metadata (which is written at create
     * time), pass 1 writes slabs of one chunk row: memory stays small. */
    for (pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            attrs = sample_attrs(offset, res, counts, seed);
            if (!attrs) {
                ret = failure("out of memory");
                goto done;
            }
            lb_create_options_init(&co);
            co.format = LB_FORMAT_ZARR2;
            co.dtype = LB_DTYPE_UINT64;
            co.codec = codec;
            co.attrs_json = attrs;
            co.overwrite = force;
            if (lb_dataset_create(dest, 3, shape, chunks, &co, &a, &e) != 0) {
                ret = lb_failure(&e);
                goto done;
            }
        }
        for (z0 = 0; z0 < shape[0]; z0 += chunks[0]) {
            int64_t z1 = z0 + chunks[0] < shape[0] ? z0 + chunks[0] : shape[0];
            size_t nvox = (size_t)(z1 - z0) * (size_t)shape[1] * (size_t)shape[2], v;
            sample_fill(m, z0, z1, buf);
            if (pass == 0) {
                for (v = 0; v < nvox; v++)
                    if (buf[v] < 64)
                        counts[buf[v]]++;
            } else {
                lb_roi r;
                int64_t off[3], shp[3];
                for (i = 0; i < 3; i++) {
                    off[i] = offset[i];
                    shp[i] = shape[i] * res[i];
                }
                off[0] += z0 * res[0];
                shp[0] = (z1 - z0) * res[0];
                if (lb_roi_set(&r, 3, off, shp, &e) != 0 ||
                    lb_array_write(a, &r, buf, nvox * sizeof(uint64_t), &e) != 0) {
                    ret = lb_failure(&e);
                    goto done;
                }
            }
        }
    }
    if (g_verbosity >= 1) {
        char b1[64], b2[256];
        lb_roi r;
        lb_array_roi(a, &r);
        coord_str(shape, 3, b1, sizeof b1);
        lb_roi_format(&r, b2, sizeof b2);
        printf("wrote %s: uint64 %s voxels, voxel size (8, 8, 8), ROI %s, seed %" PRIu64 "\n",
               dest, b1, b2, seed);
        if (g_verbosity >= 2)
            for (i = 0; i < (int)N_SAMPLE_CLASSES; i++)
                printf("  %3d %-10s %12" PRIu64 "%s\n", sample_classes[i].id,
                       sample_classes[i].shrt, counts[sample_classes[i].id],
                       sample_classes[i].id == SAMPLE_NOT_ANNOTATED
                           ? "  (present, not annotated)" : "");
        if (g_verbosity >= 2)
            printf("  %3d %-10s %12" PRIu64 "  (unannotated margin)\n", 0, "-", counts[0]);
    }
    ret = EXIT_OK;
    if (fflush(stdout) != 0)
        ret = failure("<stdout>: %s", strerror(errno));
done:
    lb_array_free(a);
    free(attrs);
    free(buf);
    free(m);
    return ret;
}

/* ------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    const char *help;
} commands[] = {
    {"info", help_info},     {"binarize", help_binarize}, {"mask", help_mask},
    {"run", help_run},       {"sample", help_sample},     {"preview", help_preview},
};

/* "unknown command 'binarise'; did you mean 'binarize'?" (exit 2). */
static int unknown_command(const char *context, const char *cmd)
{
    static const char *const names[] = {"info", "binarize", "mask", "run", "sample", "help"};
    const char *near = nearest_name(cmd, strlen(cmd), names,
                                    sizeof names / sizeof names[0] - (context ? 1 : 0));
    if (near)
        return usage_error("%s%sunknown command '%s'; did you mean '%s'?", context ? context : "",
                           context ? ": " : "", cmd, near);
    return usage_error("%s%sunknown command '%s' (commands: info, binarize, mask, run, sample%s)",
                       context ? context : "", context ? ": " : "", cmd,
                       context ? "" : ", help");
}

static int dispatch(const char *cmd, int argc, char **argv)
{
    g_cmd = cmd;
    if (strcmp(cmd, "info") == 0)
        return cmd_info(argc, argv);
    if (strcmp(cmd, "binarize") == 0)
        return cmd_write(argc, argv, KIND_BINARIZE);
    if (strcmp(cmd, "mask") == 0)
        return cmd_write(argc, argv, KIND_MASK);
    if (strcmp(cmd, "run") == 0)
        return cmd_write(argc, argv, KIND_RUN);
    if (strcmp(cmd, "sample") == 0)
        return cmd_sample(argc, argv);
    if (strcmp(cmd, "preview") == 0)
        return cmd_preview(argc, argv);
    g_cmd = NULL;
    return unknown_command(NULL, cmd);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0}};
    int c;
    const char *cmd;
    struct sigaction sa;

    /* A file-size limit must become an EFBIG error, not a kill. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGXFSZ, &sa, NULL);

    opterr = 0;
    /* '+': stop at the command; its options are parsed by the command. */
    while ((c = getopt_long(argc, argv, "+:hVqv", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(help_main, stdout); return EXIT_OK;
        case 'V':
            printf("labelbin %s (library %s)\n", LB_VERSION_STRING, lb_version());
            return EXIT_OK;
        case 'q': g_verbosity = 0; break;
        case 'v': g_verbosity = 2; break;
        default: return getopt_failure(c, argv, longopts);
        }
    }
    if (optind >= argc)
        return usage_error("missing command (info, binarize, mask, run or sample)");
    cmd = argv[optind];
    if (strcmp(cmd, "help") == 0) {
        size_t i;
        if (optind + 1 >= argc) {
            fputs(help_main, stdout);
            return EXIT_OK;
        }
        for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(argv[optind + 1], commands[i].name) == 0) {
                fputs(commands[i].help, stdout);
                return EXIT_OK;
            }
        return unknown_command("help", argv[optind + 1]);
    }
    return dispatch(cmd, argc - optind, argv + optind);
}
