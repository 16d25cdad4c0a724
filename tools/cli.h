/*
 * cli.h — what every command of the `labelbin` tool shares (cli.c): exit
 * codes, verbosity and messages, the JSON printer, number and list parsing,
 * getopt helpers with "did you mean" suggestions, the progress bar and
 * signal handling. Like every file in tools/, it sees the public API only.
 */
#ifndef LABELBIN_CLI_H
#define LABELBIN_CLI_H

#include <labelbin.h>

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes (docs/cli.md "Exit codes"). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* The CLI is a process, not a library: a little global state is fine.
 * g_verbosity: 0 = -q (errors only), 1 = normal, 2 = -v. */
extern int g_verbosity;
extern const char *g_cmd; /* subcommand, for usage messages */

/* Set by SIGINT/SIGTERM; the library polls it through opt.cancel. */
extern volatile int g_cancel;
extern volatile sig_atomic_t g_signal;

/* getopt_long values of the long options without a short form (shared so
 * that one option means the same to every command). */
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
    OPT_SEED,
    OPT_FORMAT,
    OPT_SHARD,
    OPT_CHANNEL_CHUNKS
};

#if defined(__GNUC__)
#  define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#  define PRINTF_LIKE(f, a)
#endif

/* ---- messages (stderr) ---------------------------------------------------- */

/* "labelbin: <cmd>: <why>" + a hint; returns EXIT_USAGE. */
int usage_error(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* A runtime failure: "labelbin: <what>: <why>"; returns EXIT_FAIL. */
int failure(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* The library's message (it already names the path / ROI / JSON path). */
void print_lb_error(const lb_error *e);
/* print_lb_error, then EXIT_FAIL. */
int lb_failure(const lb_error *e);
/* "labelbin: warning: ..." and notes at the default verbosity, verbose()
 * lines with -v only. */
void warning(const char *fmt, ...) PRINTF_LIKE(1, 2);
void note(const char *fmt, ...) PRINTF_LIKE(1, 2);
void verbose(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* ---- JSON output (RFC 8259 strings; invalid UTF-8 becomes U+FFFD) -------- */

void json_string(FILE *f, const char *s);
void json_i64_list(FILE *f, const int64_t *v, int n);

/* ---- values from the command line ----------------------------------------- */

/* Strict decimal int64 in [lo, hi]; 0 ok, -1 otherwise. */
int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
/* Comma-separated int64s in [lo, hi] ("32,64,64"), at most `max`; 0 ok. */
int parse_i64_list(const char *s, int64_t lo, int64_t hi, int64_t *out, int max, int *n);
/* A whole file ("-" = stdin) as a NUL-terminated malloc'd string; on
 * failure prints "labelbin: <path>: <why>" and returns NULL. */
char *read_text_file(const char *path);
/* The output format named by --format: "zarr2" or "zarr3"; 0 ok, else a
 * usage error has been printed and its exit code is returned. */
int parse_format(const char *s, lb_format *out);
/* A spatial shard shape (--shard) against the chunk shape it holds: 0 when
 * every entry is a positive multiple of its chunk, else a usage error
 * naming the chunk and the nearest valid shard (its exit code). `chunk_from`
 * says where the chunk shape came from, e.g. "--chunks". */
int check_shard(const int64_t *shard, const int64_t *chunk, int n, const char *chunk_from);

/* ---- option parsing ------------------------------------------------------- */

/* The candidate nearest to word[0..len) (a "did you mean"), or NULL. */
const char *nearest_name(const char *word, size_t len, const char *const *cands, size_t n);
/* Report a getopt failure (opterr = 0, optstring starting with ':'):
 * names the option and suggests the one meant; returns EXIT_USAGE. */
int getopt_failure(int c, char **argv, const struct option *longopts);
/* Reset getopt before a command parses its own options. */
void getopt_reset(void);

/* ---- time, sizes, coordinates --------------------------------------------- */

double now_seconds(void);
void format_duration(double s, char *buf, size_t size);
void format_bytes(int64_t b, char *buf, size_t size);
/* "(a, b, c)" */
void coord_str(const int64_t *v, int n, char *buf, size_t size);

/* ---- progress bar and signals --------------------------------------------- */

typedef struct progress_state {
    double t0;
    double last;
    int64_t voxels; /* spatial voxels of the whole ROI */
    int printed;
    int width; /* length of the last line, to blank it */
} progress_state;

/* An lb_progress_fn drawing one line on stderr (user: a progress_state). */
void progress_cb(void *user, int64_t done, int64_t total);
/* End the progress line, if one was drawn. */
void progress_end(progress_state *ps);
/* SIGINT/SIGTERM set g_cancel (and g_signal); a second one kills. */
void install_signals(void);

#endif /* LABELBIN_CLI_H */
