/*
 * cmd_preview.c — `labelbin preview`: draw a 2-D section of an array
 * (labels, overlays of groups, mask stripes; a montage or a grid) into a
 * PNG file with lb_preview_write_png. Public API only.
 */
#include "cli.h"
#include "commands.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char help_preview[] =
    "Usage: labelbin preview [OPTIONS] SOURCE -o OUT.png\n"
    "\n"
    "Draw one 2-D section of the dataset SOURCE into the PNG image OUT.png, by\n"
    "default the middle section across the first spatial axis, one pixel per\n"
    "voxel. Labels get a stable colour per id (background 0 black); groups\n"
    "(-g) are drawn as coloured overlays on the labels, with a legend; --mask\n"
    "adds stripes in a group's colour where its training mask is 0. SOURCE\n"
    "may also be a written target or mask (channels drawn as overlays or\n"
    "stripes, over --labels when given).\n"
    "\n"
    "Options:\n"
    "  -o, --output PNG     the image to write (an existing PNG is replaced)\n"
    "      --axis NAME      the axis across the section (z, y or x; default\n"
    "                       the first spatial axis)\n"
    "      --at WORLD       the section holding this world coordinate along\n"
    "                       the axis (default the middle of the ROI)\n"
    "      --roi ROI        draw only this window, world units: b0:e0,b1:e1,...\n"
    "      --scale N        N x N pixels per voxel (default 1)\n"
    "      --max-size PX    shrink (nearest neighbour) to fit PX x PX pixels\n"
    "  -g, --group NAME=ID,ID,...\n"
    "                       draw a group of label ids as an overlay (repeat for\n"
    "                       more groups; NAME= is every label but background)\n"
    "      --groupings FILE groups as JSON ([[\"mito\", [3,4,5]], ...])\n"
    "      --background ID  the background of empty groups (default 0)\n"
    "      --mask           stripe the voxels each group's mask switches off\n"
    "      --labels PATH    labels to draw under a written target's channels\n"
    "      --grid           one panel per group (or channel), with its name\n"
    "      --montage N      N evenly spaced sections side by side\n"
    "  -j, --threads N      decode chunks with N threads (default: all cores)\n"
    "  -q, --quiet          print nothing but errors\n"
    "  -v, --verbose        also print what was read\n"
    "  -h, --help           show this help and exit\n"
    "\n"
    "Examples:\n"
    "  labelbin preview crop.zarr/volumes/labels/all -o slice.png --scale 4\n"
    "  labelbin preview crop.zarr/volumes/labels/all -o mito.png \\\n"
    "      -g mito=3,4,5 -g er=16,17,18,19 --mask --axis y --at 1200\n"
    "  labelbin preview crop.zarr/volumes/labels/all -o tour.png --montage 9 \\\n"
    "      --max-size 1024\n";

/* Options that contradict each other or the array are usage errors
 * (LB_EINVAL: exit 2, with the hint at --help); the rest are failures. The
 * library's message names the array, the axes and the ROI. */
static int preview_failure(const lb_error *e) {
    if (e->code == LB_EINVAL)
        return usage_error("%s", e->message[0] ? e->message : lb_strerror(e->code));
    return lb_failure(e);
}

static void print_warnings(const lb_array *a) {
    for (; a; a = lb_array_source(a))
        for (int i = 0; i < lb_array_warning_count(a); i++) warning("%s", lb_array_warning(a, i));
}

/* ---- the command ------------------------------------------------------------ */

/* getopt_long values of this command's own long options (the shared ones
 * are in cli.h). */
enum {
    OPT_AXIS = 512,
    OPT_AT,
    OPT_SCALE,
    OPT_MAX_SIZE,
    OPT_MASK,
    OPT_LABELS,
    OPT_GRID,
    OPT_MONTAGE
};

static const struct option preview_longopts[] = {
    {"output", required_argument, NULL, 'o'},
    {"axis", required_argument, NULL, OPT_AXIS},
    {"at", required_argument, NULL, OPT_AT},
    {"roi", required_argument, NULL, OPT_ROI},
    {"scale", required_argument, NULL, OPT_SCALE},
    {"max-size", required_argument, NULL, OPT_MAX_SIZE},
    {"group", required_argument, NULL, 'g'},
    {"groupings", required_argument, NULL, OPT_GROUPINGS},
    {"background", required_argument, NULL, OPT_BACKGROUND},
    {"mask", no_argument, NULL, OPT_MASK},
    {"labels", required_argument, NULL, OPT_LABELS},
    {"grid", no_argument, NULL, OPT_GRID},
    {"montage", required_argument, NULL, OPT_MONTAGE},
    {"threads", required_argument, NULL, 'j'},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

typedef struct preview_args {
    const char *src, *out, *labels, *groupings_file;
    lb_groupings *groups;
    int n_groups;
    lb_preview_options opt;
    int64_t at;
    lb_roi roi;
    int64_t threads;
} preview_args;

/* Parse argv; returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, preview_args *pa) {
    lb_error e = {0};
    int c;
    memset(pa, 0, sizeof *pa);
    lb_preview_options_init(&pa->opt);
    if (lb_groupings_new(&pa->groups, &e) != 0) return lb_failure(&e);
    getopt_reset();
    while ((c = getopt_long(argc, argv, ":o:g:j:qvh", preview_longopts, NULL)) != -1) {
        const char *arg = optarg;
        switch (c) {
        case 'o': pa->out = arg; break;
        case OPT_AXIS:
            if (!*arg) return usage_error("--axis: expected an axis name (z, y or x)");
            pa->opt.axis = arg;
            break;
        case OPT_AT:
            if (parse_i64(arg, INT64_MIN, INT64_MAX, &pa->at))
                return usage_error("--at '%s': expected a world coordinate (an integer)", arg);
            pa->opt.at = &pa->at;
            break;
        case OPT_ROI:
            if (lb_roi_parse(arg, &pa->roi, &e) != 0)
                return usage_error("--roi '%s': %s", arg, e.message);
            pa->opt.roi = &pa->roi;
            break;
        case OPT_SCALE:
            if (parse_i64(arg, 1, LB_PREVIEW_MAX_SIDE, &pa->opt.scale))
                return usage_error("--scale '%s': expected whole pixels per voxel, 1 to %d", arg,
                                LB_PREVIEW_MAX_SIDE);
            break;
        case OPT_MAX_SIZE:
            if (parse_i64(arg, 1, LB_PREVIEW_MAX_SIDE, &pa->opt.max_size))
                return usage_error("--max-size '%s': expected a size in pixels, 1 to %d", arg,
                                LB_PREVIEW_MAX_SIDE);
            break;
        case 'g':
            if (lb_groupings_add_arg(pa->groups, arg, &e) != 0)
                return usage_error("-g '%s': %s", arg, e.message);
            pa->n_groups++;
            break;
        case OPT_GROUPINGS: pa->groupings_file = arg; break;
        case OPT_BACKGROUND:
            if (lb_id_parse(arg, &pa->opt.background, &e) != 0)
                return usage_error("--background '%s': %s", arg, e.message);
            break;
        case OPT_MASK: pa->opt.mask = 1; break;
        case OPT_LABELS: pa->labels = arg; break;
        case OPT_GRID: pa->opt.grid = 1; break;
        case OPT_MONTAGE:
            if (parse_i64(arg, 1, 4096, &pa->opt.montage))
                return usage_error("--montage '%s': expected a number of sections, 1 to 4096",
                                arg);
            break;
        case 'j':
            if (parse_i64(arg, 0, 64, &pa->threads))
                return usage_error("-j '%s': expected 0 (all cores) to 64 threads", arg);
            break;
        case 'q': g_verbosity = 0; break;
        case 'v': g_verbosity = 2; break;
        case 'h': fputs(help_preview, stdout); return EXIT_OK;
        default: return getopt_failure(c, argv, preview_longopts);
        }
    }
    if (optind >= argc) return usage_error("missing SOURCE (the dataset to draw)");
    if (optind + 1 < argc)
        return usage_error("unexpected argument '%s' (one SOURCE; the image goes to -o)",
                        argv[optind + 1]);
    pa->src = argv[optind];
    if (!pa->out) return usage_error("missing -o OUT.png (the image to write)");
    if (pa->opt.scale && pa->opt.max_size)
        return usage_error("--scale and --max-size exclude each other: choose one");
    if (pa->opt.montage && pa->opt.at)
        return usage_error("--montage spaces its sections evenly: give --at or --montage, "
                        "not both");
    if (pa->opt.grid && pa->opt.montage)
        return usage_error("--grid and --montage exclude each other: choose one");
    if (pa->groupings_file) {
        char *json = read_text_file(pa->groupings_file);
        if (!json) return EXIT_FAIL;
        int rc = lb_groupings_add_json(pa->groups, json, &e);
        free(json);
        if (rc != 0) {
            return failure("%s: %s", pa->groupings_file, e.message);
        }
    }
    if (lb_groupings_count(pa->groups) > 0) pa->opt.groups = pa->groups;
    else if (pa->n_groups || pa->groupings_file)
        return usage_error("the groups are empty");
    return -1;
}

int cmd_preview(int argc, char **argv) {
    preview_args pa;
    lb_error e = {0};
    lb_array *a = NULL, *labels = NULL;
    lb_preview_info info;
    lb_io_stats st0 = {0, 0}, lst0 = {0, 0}, st = {0, 0}, lst = {0, 0};
    int ret = parse_args(argc, argv, &pa);
    if (ret >= 0) goto done;
    ret = EXIT_FAIL;
    if (open_source(pa.src, &a) != 0) goto done;
    if (pa.labels) {
        if (open_source(pa.labels, &labels) != 0) goto done;
        pa.opt.labels = labels;
    }
    print_warnings(a);
    print_warnings(labels);
    if (lb_array_set_threads(a, (int)pa.threads, &e) != 0 ||
        (labels && lb_array_set_threads(labels, (int)pa.threads, &e) != 0)) {
        ret = lb_failure(&e);
        goto done;
    }
    lb_array_io_stats(a, &st0);
    if (labels) lb_array_io_stats(labels, &lst0);
    if (lb_preview_write_png(a, &pa.opt, pa.out, &info, &e) != 0) {
        ret = preview_failure(&e);
        goto done;
    }
    lb_array_io_stats(a, &st);
    if (labels) lb_array_io_stats(labels, &lst);
    if (g_verbosity > 0) {
        char where[160] = "";
        if (info.axis >= 0) {
            const char *ax = lb_array_axis(a, lb_array_ndim(a) - lb_array_dims(a) + info.axis);
            if (info.sections > 1)
                snprintf(where, sizeof where, ", %" PRId64 " sections %s=%" PRId64 "..%" PRId64,
                         info.sections, ax, info.first_at, info.last_at);
            else
                snprintf(where, sizeof where, ", section %s=%" PRId64, ax, info.first_at);
        }
        printf("%s: %" PRId64 " x %" PRId64 " pixels%s%s\n", pa.out, info.width, info.height,
               where, info.channels ? ", with legend" : "");
        if (g_verbosity > 1)
            printf("read %" PRIu64 " objects (%" PRIu64 " bytes) from %s\n",
                   st.requests - st0.requests + lst.requests - lst0.requests,
                   st.bytes - st0.bytes + lst.bytes - lst0.bytes,
                   labels ? "the source and the labels" : "the source");
    }
    ret = EXIT_OK;
done:
    lb_groupings_free(pa.groups);
    lb_array_free(a);
    lb_array_free(labels);
    return ret;
}
