/*
 * cmd_cache.c — `labelbin cache-stats`: what a shared label cache
 * (lb_array_set_label_cache) holds — entries, bytes, the compression ratio
 * against the decoded labels, hits and misses of every process that used
 * it, the memory its file takes and the room left where it lives — and,
 * with --remove, remove its file.
 */
#include "cli.h"
#include "commands.h"

#include <inttypes.h>
#include <string.h>

const char help_cache_stats[] =
    "Usage: labelbin cache-stats [OPTIONS] [NAME]\n"
    "\n"
    "Show what the shared label cache NAME holds (default: this user's,\n"
    "labelbin-cache-UID): a file in /dev/shm that training processes fill\n"
    "through set_label_cache (Python) or lb_array_set_label_cache (C), with\n"
    "every chunk of integer labels kept as per-8x8x8-block id tables and\n"
    "packed indices. Counts are those of every process that used the file.\n"
    "The file takes memory only for what it holds; when /dev/shm has no room\n"
    "left, chunks that do not fit are read without the cache (in a container,\n"
    "give /dev/shm more room: docker run --shm-size).\n"
    "\n"
    "Options:\n"
    "  --json            print one JSON object (for machines)\n"
    "  --remove          remove the cache file after printing its statistics, or\n"
    "                    a damaged one (processes using it keep their copy until\n"
    "                    they exit); also removes the temporaries of processes\n"
    "                    killed while making it. Only a labelbin cache is ever\n"
    "                    removed: another file of that name is left alone\n"
    "  -h, --help        show this help and exit\n"
    "\n"
    "A cache keeps the size it was made with: to resize it, remove it while\n"
    "no process uses it; the next process makes it at the size it asks for.\n"
    "\n"
    "Exit status: 0 ok, 1 no such cache, a damaged file or a file that is not\n"
    "a labelbin cache, 2 usage error.\n"
    "\n"
    "Examples:\n"
    "  labelbin cache-stats\n"
    "  labelbin cache-stats --json my-training-cache\n"
    "  labelbin cache-stats --remove my-training-cache\n";

enum { OPT_REMOVE_CACHE = 400 };

static double pct(uint64_t a, uint64_t b)
{
    return b ? 100.0 * (double)a / (double)b : 0.0;
}

int cmd_cache_stats(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"remove", no_argument, NULL, OPT_REMOVE_CACHE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c, json = 0, remove = 0, rc;
    const char *name = NULL;
    lb_cache_info s;
    lb_error e = {0};
    char used[32], cap[32], raw[32];

    getopt_reset();
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: json = 1; break;
        case OPT_REMOVE_CACHE: remove = 1; break;
        case 'h': fputs(help_cache_stats, stdout); return EXIT_OK;
        default: return getopt_failure(c, argv, longopts);
        }
    }
    if (optind + 1 < argc)
        return usage_error("expected at most one cache NAME, got '%s' and '%s'", argv[optind],
                           argv[optind + 1]);
    if (optind < argc)
        name = argv[optind];
    rc = lb_cache_stats(name, &s, &e);
    if (rc == LB_ENOTFOUND && remove)
        (void)lb_cache_remove(name, &e); /* its temporaries, if any */
    if (rc == LB_ENOTFOUND)
        return failure("cache-stats: no label cache %s%s%s: no process has made it since the "
                       "machine started, or it was removed; give the name training used",
                       name ? "'" : "", name ? name : "for this user", name ? "'" : "");
    if (rc == LB_EINVAL)
        return usage_error("%s", e.message);
    if (rc == LB_EFORMAT && remove) {
        /* A damaged file is what --remove is for. */
        if (lb_cache_remove(name, &e) != 0)
            return lb_failure(&e);
        note("removed the damaged cache file %s", s.path);
        return EXIT_OK;
    }
    if (rc == LB_EFORMAT)
        return failure("%s; remove it once no process uses it (or only a stopped one): "
                       "labelbin cache-stats --remove%s%s",
                       e.message, name ? " " : "", name ? name : "");
    if (rc == LB_EEXIST && remove)
        (void)lb_cache_remove(name, &e); /* refuses too, saying "not removed" */
    if (rc == LB_EEXIST)
        return failure("cache-stats: %s", e.message);
    if (rc)
        return lb_failure(&e);
    if (json) {
        printf("{\"name\": ");
        json_string(stdout, s.name);
        printf(", \"path\": ");
        json_string(stdout, s.path);
        printf(", \"capacity\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"entries\": %" PRIu64
               ", \"max_entries\": %" PRIu64 ", \"declined\": %" PRIu64
               ", \"raw_bytes\": %" PRIu64
               ", \"compression\": %.3f, \"hits\": %" PRIu64
               ", \"misses\": %" PRIu64 ", \"hit_rate\": %.4f, \"inserts\": %" PRIu64
               ", \"evictions\": %" PRIu64 ", \"corrupt\": %" PRIu64
               ", \"stale\": %" PRIu64 ", \"memory_bytes\": %" PRIu64 ", \"fs_free_bytes\": %" PRIu64
               ", \"fs_bytes\": %" PRIu64 "}\n",
               s.capacity, s.bytes, s.entries, s.max_entries, s.declined, s.raw_bytes,
               s.bytes ? (double)s.raw_bytes / (double)s.bytes : 0.0, s.hits, s.misses,
               pct(s.hits, s.hits + s.misses) / 100.0, s.inserts, s.evictions, s.corrupt, s.stale,
               s.memory_bytes, s.fs_free_bytes, s.fs_bytes);
    } else {
        format_bytes((int64_t)s.bytes, used, sizeof used);
        format_bytes((int64_t)s.capacity, cap, sizeof cap);
        format_bytes((int64_t)s.raw_bytes, raw, sizeof raw);
        printf("label cache %s (%s)\n", s.name, s.path);
        printf("  entries     %" PRIu64 " chunks", s.entries);
        if (s.declined)
            printf(" (%" PRIu64 " declined: too many ids per block to compress; "
                   "read as without a cache)", s.declined);
        printf("; the index holds at most %" PRIu64 "\n", s.max_entries);
        printf("  bytes       %s of %s (%.1f %%)\n", used, cap, pct(s.bytes, s.capacity));
        if (s.bytes)
            printf("  decoded     %s: compression %.1fx\n", raw,
                   (double)s.raw_bytes / (double)s.bytes);
        else
            printf("  decoded     %s\n", raw);
        printf("  hits        %" PRIu64 " of %" PRIu64 " lookups (%.1f %%)\n", s.hits,
               s.hits + s.misses, pct(s.hits, s.hits + s.misses));
        printf("  inserts     %" PRIu64 ", evictions %" PRIu64
               ", damaged entries refilled %" PRIu64 ", stale (changed on disk) %" PRIu64
               "\n",
               s.inserts, s.evictions, s.corrupt, s.stale);
        char m[32], fr[32], fsz[32];
        format_bytes((int64_t)s.memory_bytes, m, sizeof m);
        format_bytes((int64_t)s.fs_free_bytes, fr, sizeof fr);
        format_bytes((int64_t)s.fs_bytes, fsz, sizeof fsz);
        printf("  memory      %s (the file's pages); %s free of %s in /dev/shm\n", m, fr, fsz);
    }
    if (remove && lb_cache_remove(name, &e) != 0)
        return lb_failure(&e);
    return EXIT_OK;
}
