/*
 * cmd_info.c — `labelbin info`: describe a dataset, for people or (--json)
 * for machines; and, for any command given a folder that is not a dataset
 * (a container, a multiscale group), a bounded walk that lists the
 * datasets below it and suggests the likeliest.
 */
#include "cli.h"
#include "commands.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char help_info[] =
    "Usage: labelbin info [OPTIONS] SOURCE\n"
    "\n"
    "Describe the dataset SOURCE (a Zarr v2, Zarr v3 or N5 array directory):\n"
    "format, dtype, shape, chunks (the inner chunks of a sharded Zarr v3\n"
    "array) and shards, codec (the format's JSON) and codec chain (in words),\n"
    "axes, voxel size, ROI in world units, channels, annotation metadata (the\n"
    "`labels` attribute) and warnings; an output whose labelbin run did not\n"
    "finish is shown as INCOMPLETE.\n"
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
    "  labelbin info --json crop.n5/volumes/groundtruth/crop1/labels/all\n"
    "  labelbin info --json targets.zarr/gt\n";

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
        snprintf(f->desc, sizeof f->desc, "%s %s %s%s%s%s", lb_array_format(a),
                 lb_dtype_name(lb_array_dtype(a)), shape,
                 lb_array_shard_shape(a) ? ", sharded" : "",
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
int open_source(const char *path, lb_array **out)
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

int cmd_info(int argc, char **argv)
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
    const int64_t *vs, *shape, *chunks, *shards;
    const char *codec, *chain, *fmt;
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
    shards = lb_array_shard_shape(a);
    codec = lb_array_codec_json(a);
    chain = lb_array_codec_description(a);
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
        fputs(", \"shard_shape\": ", f);
        if (shards)
            json_i64_list(f, shards, ndim);
        else
            fputs("null", f);
        fprintf(f, ", \"codec\": %s", codec && *codec ? codec : "null");
        /* "codecs" is always a list in the format's words: Zarr v3's codecs
         * list as stored, else the one compressor ([] for none). */
        fputs(", \"codecs\": ", f);
        if (codec && codec[0] == '[')
            fputs(codec, f);
        else if (codec && *codec && strcmp(codec, "null") != 0)
            fprintf(f, "[%s]", codec);
        else
            fputs("[]", f);
        fputs(", \"codec_chain\": ", f);
        json_string(f, chain ? chain : "");
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
            fprintf(f, "chunks:       %s%s\n", buf, shards ? " (inner chunks of each shard)" : "");
        }
        if (shards) {
            coord_str(shards, ndim, buf, sizeof buf);
            fprintf(f, "shards:       %s (one file each)\n", buf);
        }
        fprintf(f, "codec:        %s\n", codec && *codec ? codec : "null");
        if (chain && *chain)
            fprintf(f, "codec chain:  %s\n", chain);
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
