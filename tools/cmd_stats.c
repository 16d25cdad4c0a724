/*
 * cmd_stats.c — `labelbin stats`: present / absent / unknown voxel counts
 * and shares per class of a crop, per group over a crop (the three-valued
 * rule), or per group over a label array (present = the BinarizeArray is
 * 1, unknown = the MissingAnnotationsMask is 0). Streamed in blocks by
 * lb_count_states: memory stays bounded whatever the ROI.
 */
#include "cli.h"
#include "commands.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char help_stats[] =
    "Usage: labelbin stats [OPTIONS] SOURCE [-g NAME=IDS | --groupings FILE]...\n"
    "\n"
    "Count, per class or group, the voxels that are present, absent and\n"
    "unknown, with their shares of the ROI.\n"
    "  SOURCE a crop, no groups: each class of the crop, from its own array.\n"
    "  SOURCE a crop, groups:    each group by the three-valued rule (present:\n"
    "                            the target is 1; absent: it is 0 and known;\n"
    "                            unknown: the mask is 0).\n"
    "  SOURCE a label array:     each group (needed): present where\n"
    "                            'binarize' writes 1, unknown where 'mask'\n"
    "                            writes 0, absent otherwise.\n"
    "The ROI is read in blocks of its chunk grid by several threads; memory\n"
    "stays bounded whatever its size.\n"
    "\n"
    "Options:\n"
    "  -g, --group NAME=ID,...  a group ('all=' is an empty group)\n"
    "  --groupings FILE         groups as DaCapo JSON ('-' = standard input)\n"
    "  --background ID          label arrays: the label empty groups exclude\n"
    "  --infer-negatives        crops: unknown counts as absent where a class\n"
    "                           disjoint from the group is present\n"
    "  --classes FILE           the class table (CSV name,id,\"member ids\")\n"
    "  --voxel-size Z,Y,X       crops: read each class at this voxel size\n"
    "  --roi ROI                world units (default: the whole ROI)\n"
    "  -j, --threads N          threads (default 0 = all cores)\n"
    "  --json                   print one JSON object instead of the table\n"
    "  -q, --quiet              print nothing but errors\n"
    "  -h, --help               show this help and exit\n"
    "\n"
    "Examples:\n"
    "  labelbin stats crop.zarr/crop1\n"
    "  labelbin stats crop.zarr/crop1 -g mito=3,4,5 -g er=16,17,18,19 --infer-negatives\n"
    "  labelbin stats --json crop.zarr/volumes/labels/all -g mito=3,4,5\n";

static void ids_text(const lb_groupings *g, size_t i, char *buf, size_t size)
{
    const lb_id *ids = NULL;
    size_t n = g ? lb_groupings_ids(g, i, &ids) : 0, k, len = 0;
    buf[0] = '\0';
    if (!g)
        return;
    if (n == 0) {
        snprintf(buf, size, "(any)");
        return;
    }
    for (k = 0; k < n && len < size; k++) {
        char v[32];
        lb_id_format(ids[k], v, sizeof v);
        if (len + strlen(v) + 5 > size) {
            snprintf(buf + len, size - len, ",...");
            return;
        }
        len += (size_t)snprintf(buf + len, size - len, "%s%s", k ? "," : "", v);
    }
}

int cmd_stats(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"group", required_argument, NULL, 'g'},
        {"groupings", required_argument, NULL, OPT_GROUPINGS},
        {"background", required_argument, NULL, OPT_BACKGROUND},
        {"roi", required_argument, NULL, OPT_ROI},
        {"threads", required_argument, NULL, 'j'},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        CROP_LONGOPTS,
        {NULL, 0, NULL, 0}};
    lb_groupings *g = NULL;
    lb_array *t = NULL, *m = NULL, *src = NULL;
    lb_classes *classes = NULL;
    lb_state_counts *counts = NULL;
    crop_args ca;
    lb_error e = {0};
    lb_roi roi;
    lb_id bg = {0, 0};
    int c, as_json = 0, have_roi = 0, have_bg = 0, threads = 0, is_crop, rc, ret = EXIT_FAIL;
    int n_group_args = 0;
    int64_t v, nch, voxels = 1;
    const char *path;
    size_t i;

    crop_args_init(&ca);
    if (lb_groupings_new(&g, &e) != 0)
        return lb_failure(&e);
    getopt_reset();
    while ((c = getopt_long(argc, argv, ":g:j:qvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'g':
            if (lb_groupings_add_arg(g, optarg, &e) != 0) {
                ret = usage_error("-g: %s", e.message);
                goto done;
            }
            n_group_args++;
            break;
        case OPT_GROUPINGS: {
            char *text = read_text_file(optarg);
            if (!text)
                goto done;
            rc = lb_groupings_add_json(g, text, &e);
            free(text);
            if (rc != 0) {
                ret = failure("%s: %s", strcmp(optarg, "-") ? optarg : "<stdin>", e.message);
                goto done;
            }
            n_group_args++;
            break;
        }
        case OPT_BACKGROUND:
            if (lb_id_parse(optarg, &bg, &e) != 0) {
                ret = usage_error("--background: %s", e.message);
                goto done;
            }
            have_bg = 1;
            break;
        case OPT_ROI:
            if (lb_roi_parse(optarg, &roi, &e) != 0) {
                ret = usage_error("--roi: %s", e.message);
                goto done;
            }
            have_roi = 1;
            break;
        case 'j':
            if (parse_i64(optarg, 0, 4096, &v) != 0) {
                ret = usage_error("-j '%s': expected a number of threads from 0 (all cores) "
                                  "to 4096", optarg);
                goto done;
            }
            threads = (int)v;
            break;
        case OPT_JSON: as_json = 1; break;
        case 'q': set_verbosity(0); break;
        case 'v': more_verbose(); break;
        case 'h':
            fputs(help_stats, stdout);
            ret = EXIT_OK;
            goto done;
        default:
            rc = crop_option(c, optarg, &ca);
            if (rc == 1 && c != OPT_UNKNOWN)
                break;
            if (rc == 1)
                ret = usage_error("--unknown: stats counts unknown voxels itself");
            else
                ret = rc ? rc : getopt_failure(c, argv, longopts);
            goto done;
        }
    }
    if (optind >= argc) {
        ret = usage_error("expected SOURCE");
        goto done;
    }
    if (optind + 1 < argc) {
        ret = usage_error("unexpected argument '%s'", shown_path(argv[optind + 1]));
        goto done;
    }
    path = argv[optind];
    if (n_group_args && lb_groupings_count(g) == 0) {
        ret = failure("the groupings are empty: give at least one group");
        goto done;
    }
    is_crop = source_is_crop(path, &src);
    if (is_crop) {
        if (have_bg) {
            ret = usage_error("--background: a crop has no background id (an empty group "
                              "means any class of the crop)");
            goto done;
        }
        ca.unknown = 255; /* counted from the three states */
        rc = crop_build(0, path, n_group_args ? g : NULL, &ca, &t);
        if (rc != 0) {
            ret = rc;
            goto done;
        }
    } else {
        if (ca.given & (CROP_GIVEN_INFER | CROP_GIVEN_VOXEL_SIZE)) {
            ret = usage_error("--infer-negatives and --voxel-size apply to a crop SOURCE (a "
                              "group with cellmap.annotation.class_names)");
            goto done;
        }
        if ((ca.given & CROP_GIVEN_CLASSES) && !crop_all_source(path)) {
            ret = usage_error("--classes applies to a crop SOURCE or the `all` array of one");
            goto done;
        }
        if (!n_group_args) {
            ret = usage_error("a label array needs groups: give -g NAME=ID,... (a crop without "
                              "groups gives one row per class)");
            goto done;
        }
        rc = crop_load_classes(ca.classes_file, &classes);
        if (rc != 0) {
            ret = rc;
            goto done;
        }
        if (!src && open_source(path, &src) != 0)
            goto done;
        rc = lb_binarize_new(src, g, bg, &t, &e);
        src = NULL;
        if (rc == 0 && open_source(path, &src) != 0)
            goto done;
        if (rc == 0)
            rc = lb_mask_new_ex(src, g, classes, &m, &e);
        src = NULL;
        if (rc != 0) {
            ret = lb_failure(&e);
            goto done;
        }
    }
    if (!have_roi)
        lb_array_roi(t, &roi);
    nch = lb_array_num_channels(t);
    counts = calloc(nch > 0 ? (size_t)nch : 1, sizeof *counts);
    if (!counts) {
        ret = failure("out of memory");
        goto done;
    }
    install_signals();
    rc = lb_count_states(t, m, &roi, threads, counts, nch > 0 ? (size_t)nch : 1, &g_cancel, &e);
    if (rc == LB_ECANCELED || (rc != 0 && g_cancel)) {
        ret = failure("interrupted");
        goto done;
    }
    if (rc != 0) {
        print_lb_error(&e);
        ret = rc == LB_EROI || rc == LB_EINVAL ? EXIT_FAIL : EXIT_FAIL;
        goto done;
    }
    for (i = 0; (int)i < roi.ndim; i++)
        voxels *= roi.shape[i] / lb_array_voxel_size(t)[i];
    if (g_verbosity >= 1 && as_json) {
        char rb[1024];
        lb_roi_format(&roi, rb, sizeof rb);
        printf("{\"source\": ");
        json_string(stdout, shown_path(path));
        printf(", \"kind\": \"%s\", \"per\": \"%s\", \"roi\": ", is_crop ? "crop" : "array",
               n_group_args ? "group" : "class");
        json_string(stdout, rb);
        printf(", \"voxel_size\": ");
        json_i64_list(stdout, lb_array_voxel_size(t), lb_array_dims(t));
        printf(", \"voxels\": %" PRId64 ", \"rows\": [", voxels);
        for (i = 0; (int64_t)i < nch; i++) {
            const lb_state_counts *k = &counts[i];
            double tot = voxels > 0 ? (double)voxels : 1;
            printf("%s{\"name\": ", i ? ", " : "");
            json_string(stdout, lb_array_channel_name(t, (int64_t)i));
            if (n_group_args) {
                const lb_id *ids = NULL;
                size_t n = lb_groupings_ids(g, i, &ids), j;
                printf(", \"ids\": [");
                for (j = 0; j < n; j++) {
                    char idv[32];
                    lb_id_format(ids[j], idv, sizeof idv);
                    printf("%s%s", j ? ", " : "", idv);
                }
                putchar(']');
            }
            printf(", \"present\": %" PRIu64 ", \"absent\": %" PRIu64 ", \"unknown\": %" PRIu64
                   ", \"present_share\": %.6f, \"absent_share\": %.6f, \"unknown_share\": %.6f}",
                   k->present, k->absent, k->unknown, (double)k->present / tot,
                   (double)k->absent / tot, (double)k->unknown / tot);
        }
        printf("]}\n");
    } else if (g_verbosity >= 1) {
        size_t namew = 5;
        char rb[1024];
        for (i = 0; (int64_t)i < nch; i++) {
            size_t l = strlen(lb_array_channel_name(t, (int64_t)i));
            if (l > namew)
                namew = l > 24 ? 24 : l;
        }
        printf("%3s  %-*s  %-18s  %14s %7s  %14s %7s  %14s %7s\n", "#", (int)namew,
               n_group_args ? "group" : "class", n_group_args ? "ids" : "", "present", "share",
               "absent", "share", "unknown", "share");
        for (i = 0; (int64_t)i < nch; i++) {
            const lb_state_counts *k = &counts[i];
            double tot = voxels > 0 ? (double)voxels / 100.0 : 1;
            char ids[19];
            ids_text(n_group_args ? g : NULL, i, ids, sizeof ids);
            printf("%3zu  %-*.*s  %-18s  %14" PRIu64 " %6.2f%%  %14" PRIu64 " %6.2f%%  %14" PRIu64
                   " %6.2f%%\n", i, (int)namew, (int)namew, lb_array_channel_name(t, (int64_t)i),
                   ids, k->present, (double)k->present / tot, k->absent,
                   (double)k->absent / tot, k->unknown, (double)k->unknown / tot);
        }
        lb_roi_format(&roi, rb, sizeof rb);
        printf("%" PRId64 " voxels in ROI %s\n", voxels, rb);
    }
    ret = EXIT_OK;
    if (fflush(stdout) != 0)
        ret = failure("<stdout>: %s", strerror(errno));
done:
    free(counts);
    lb_array_free(t);
    lb_array_free(m);
    lb_array_free(src);
    lb_classes_free(classes);
    lb_groupings_free(g);
    return ret;
}
