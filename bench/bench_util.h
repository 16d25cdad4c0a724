/*
 * bench_util.h — what the end-to-end benchmarks (bench_e2e.c,
 * bench_storage.c) share: a monotonic clock, medians, the load average, a
 * seeded generator, tree removal, and a launcher that runs a child program
 * and takes its wall time, CPU time and peak memory without counting the
 * benchmark's own memory in. Header-only (static inline): each benchmark is
 * one program.
 */
#ifndef LB_BENCH_UTIL_H
#define LB_BENCH_UTIL_H

#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* This program's path (set by the benchmark's main): run_child re-executes
 * it as the --measure launcher. */
static char self_exe[PATH_MAX];

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double median(const double *v, int n) {
    double s[64];
    if (n <= 0) return 0;
    if (n > 64) n = 64;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* 1-minute load average, -1 when unknown. */
static inline double loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static inline uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static inline void rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) == 0) nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static inline void dirname_of(const char *path, char *out, size_t size) {
    snprintf(out, size, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash) *slash = '\0';
    else snprintf(out, size, ".");
}

static inline void print_json(json_object *o) {
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    fflush(stdout);
}

/* CPU seconds (user + system) of the last run_child. */
static double last_cpu_s;

/* Fork + exec argv, wait: exit status (or -1), wall seconds, CPU seconds
 * and ru_maxrss in KB. */
static inline int spawn_wait(char *const *argv, double *wall, double *cpu, long *maxrss_kb) {
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    if (wait4(pid, &st, 0, &ru) < 0) return -1;
    *wall = now_s() - t0;
    *maxrss_kb = ru.ru_maxrss;
    *cpu = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `PROGRAM --measure FD ARGV...`: run ARGV and write "status wall cpu
 * maxrss" to FD. Linux starts a new program's ru_maxrss at the resident size
 * of the process that forked it (the copied address space counts until
 * exec, fork and vfork alike), so children forked by a benchmark that holds
 * large caches report its memory, not theirs. This launcher is exec'd fresh
 * and forks while small: its child's peak is the child's own. */
static inline int measure_main(int argc, char **argv) {
    if (argc < 4) return 2;
    int fd = atoi(argv[2]);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    double wall = 0, cpu = 0;
    long rss = 0;
    int st = spawn_wait(argv + 3, &wall, &cpu, &rss);
    dprintf(fd, "%d %.9f %.9f %ld\n", st, wall, cpu, rss);
    return 0;
}

/* Run argv through the --measure launcher. Returns the exit status (or -1);
 * *wall and *maxrss_kb (may be NULL); the child's CPU time goes to
 * last_cpu_s. The wall time is the launcher's measure of its child alone. */
static inline int run_child(char *const *argv, double *wall, long *maxrss_kb) {
    int p[2];
    if (pipe(p) != 0) return -1;
    char fdbuf[16];
    snprintf(fdbuf, sizeof fdbuf, "%d", p[1]);
    char *largv[64];
    int n = 0;
    largv[n++] = self_exe;
    largv[n++] = "--measure";
    largv[n++] = fdbuf;
    for (int i = 0; argv[i] && n < 63; i++) largv[n++] = argv[i];
    largv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        execv(self_exe, largv);
        _exit(127);
    }
    close(p[1]);
    char line[256] = {0};
    ssize_t got = 0, r;
    while (got < (ssize_t)sizeof line - 1 &&
           (r = read(p[0], line + got, sizeof line - 1 - (size_t)got)) > 0)
        got += r;
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    int cst = -1;
    double w = 0, cpu = 0;
    long rss = 0;
    if (sscanf(line, "%d %lf %lf %ld", &cst, &w, &cpu, &rss) != 4) return -1;
    if (wall) *wall = w;
    if (maxrss_kb) *maxrss_kb = rss;
    last_cpu_s = cpu;
    return cst;
}

#endif
