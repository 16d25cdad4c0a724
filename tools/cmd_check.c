/*
 * cmd_check.c — `labelbin check CROP`: lint a CellMap crop (lb_crop_check)
 * and print one line per finding, or one JSON object. Errors fail the
 * command (exit 1), warnings do not.
 */
#include "cli.h"
#include "commands.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char help_check[] =
    "Usage: labelbin check [OPTIONS] CROP\n"
    "\n"
    "Lint the CellMap crop CROP (a group with cellmap.annotation.class_names):\n"
    "classes listed without a group and groups not listed; annotation metadata\n"
    "the schema does not allow (wrong types, unknown keys, encodings that use\n"
    "a value twice); semantic arrays holding values outside their encoding;\n"
    "instance ids that run through the unknown value; complement_counts that\n"
    "disagree with the data; empty classes; missing or inconsistent multiscale\n"
    "metadata (voxel sizes, offsets, level shapes); classes whose finest levels\n"
    "differ in voxel size or ROI; and `all` disagreeing with the class arrays.\n"
    "Every array is read once, in slabs (memory stays bounded).\n"
    "\n"
    "Each finding is one line 'error|warning: PATH: MESSAGE [CODE]'.\n"
    "Exit status: 0 no errors (warnings allowed), 1 errors found or CROP\n"
    "unreadable, 2 usage error.\n"
    "\n"
    "Options:\n"
    "  --json           print one JSON object: path, errors, warnings, findings\n"
    "  --classes FILE   the class table, CSV rows name,id,\"member ids\"\n"
    "                   (default: the built-in CellMap table)\n"
    "  -j, --threads N  decode with N threads (default 0 = all cores)\n"
    "  -q, --quiet      print nothing (the exit status tells)\n"
    "  -h, --help       show this help and exit\n"
    "\n"
    "Examples:\n"
    "  labelbin check jrc_cos7-1a.zarr/recon-1/labels/groundtruth/crop243\n"
    "  labelbin check --json --classes classes.csv crop.zarr/crop1\n";

int cmd_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"classes", required_argument, NULL, OPT_CLASSES},
        {"threads", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *classes_file = NULL, *path;
    lb_classes *classes = NULL;
    lb_check_report *r = NULL;
    lb_error e = {0};
    int as_json = 0, c, threads = 0, rc;
    size_t i, n, n_err, n_warn;
    int64_t v;

    getopt_reset();
    while ((c = getopt_long(argc, argv, ":j:qvh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: as_json = 1; break;
        case OPT_CLASSES:
            if (!*optarg)
                return usage_error("--classes: empty file name");
            classes_file = optarg;
            break;
        case 'j':
            if (parse_i64(optarg, 0, 4096, &v) != 0)
                return usage_error("-j '%s': expected a number of threads from 0 (all cores) "
                                   "to 4096", optarg);
            threads = (int)v;
            break;
        case 'q': set_verbosity(0); break;
        case 'v': more_verbose(); break;
        case 'h': fputs(help_check, stdout); return EXIT_OK;
        default: return getopt_failure(c, argv, longopts);
        }
    }
    if (optind >= argc)
        return usage_error("expected CROP");
    if (optind + 1 < argc)
        return usage_error("unexpected argument '%s'", shown_path(argv[optind + 1]));
    path = argv[optind];
    rc = crop_load_classes(classes_file, &classes);
    if (rc != 0)
        return rc;
    rc = lb_crop_check(path, classes, threads, &r, &e);
    lb_classes_free(classes);
    if (rc != 0)
        return lb_failure(&e);
    n = lb_check_count(r);
    n_err = lb_check_count_level(r, LB_CHECK_ERROR);
    n_warn = lb_check_count_level(r, LB_CHECK_WARNING);
    if (g_verbosity >= 1 && as_json) {
        printf("{\"path\": ");
        json_string(stdout, shown_path(path));
        printf(", \"errors\": %zu, \"warnings\": %zu, \"findings\": [", n_err, n_warn);
        for (i = 0; i < n; i++) {
            const lb_check_finding *f = lb_check_get(r, i);
            printf("%s{\"level\": \"%s\", \"code\": ", i ? ", " : "",
                   f->level == LB_CHECK_ERROR ? "error" : "warning");
            json_string(stdout, f->code);
            printf(", \"path\": ");
            json_string(stdout, f->path);
            printf(", \"message\": ");
            json_string(stdout, f->message);
            putchar('}');
        }
        printf("]}\n");
    } else if (g_verbosity >= 1) {
        for (i = 0; i < n; i++) {
            const lb_check_finding *f = lb_check_get(r, i);
            printf("%s: %s: %s [%s]\n", f->level == LB_CHECK_ERROR ? "error" : "warning",
                   f->path, f->message, f->code);
        }
        printf("%s: %zu error%s, %zu warning%s\n", shown_path(path), n_err,
               n_err == 1 ? "" : "s", n_warn, n_warn == 1 ? "" : "s");
    }
    lb_check_report_free(r);
    if (fflush(stdout) != 0)
        return failure("<stdout>: %s", strerror(errno));
    return n_err ? EXIT_FAIL : EXIT_OK;
}
