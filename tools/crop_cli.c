/*
 * crop_cli.c — CellMap crops in the commands: the crop options that
 * binarize, mask, info, stats and check share (--infer-negatives,
 * --classes, --voxel-size, --unknown), `info` on a crop, and building a
 * target, mask or three-state array over one. Public API only.
 */
#include "cli.h"
#include "commands.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int crop_option(int c, const char *arg, crop_args *ca)
{
    int64_t v;
    switch (c) {
    case OPT_INFER_NEGATIVES:
        ca->infer_negatives = 1;
        ca->given |= CROP_GIVEN_INFER;
        return 1;
    case OPT_CLASSES:
        if (!*arg)
            return usage_error("--classes: empty file name");
        ca->classes_file = arg;
        ca->given |= CROP_GIVEN_CLASSES;
        return 1;
    case OPT_VOXEL_SIZE:
        if (parse_i64_list(arg, 1, INT64_MAX / 4, ca->voxel_size, LB_MAX_DIMS,
                           &ca->n_voxel_size) != 0)
            return usage_error("--voxel-size '%s': expected positive integers separated by "
                               "commas, e.g. 8,8,8", arg);
        ca->given |= CROP_GIVEN_VOXEL_SIZE;
        return 1;
    case OPT_UNKNOWN:
        if (parse_i64(arg, 2, 255, &v) != 0)
            return usage_error("--unknown '%s': expected a value from 2 to 255 (0 and 1 are "
                               "absent and present; CellMap uses 255)", arg);
        ca->unknown = (int)v;
        ca->given |= CROP_GIVEN_UNKNOWN;
        return 1;
    default:
        return 0;
    }
}

void crop_args_init(crop_args *ca)
{
    memset(ca, 0, sizeof *ca);
    ca->unknown = -1;
}

int crop_load_classes(const char *file, lb_classes **out)
{
    lb_error e = {0};
    char *text;
    int rc;
    *out = NULL;
    if (!file)
        return 0;
    text = read_text_file(file);
    if (!text)
        return EXIT_FAIL;
    rc = lb_classes_parse(text, strlen(text), strcmp(file, "-") ? file : "<stdin>", out, &e);
    free(text);
    if (rc != 0)
        return lb_failure(&e);
    return 0;
}

void crop_options_from(const crop_args *ca, lb_crop_options *opt)
{
    lb_crop_options_init(opt);
    opt->infer_negatives = ca->infer_negatives;
    if (ca->n_voxel_size) {
        opt->voxel_size = ca->voxel_size;
        opt->dims = ca->n_voxel_size;
    }
    opt->unknown = ca->unknown;
}

int crop_open(const char *path, const char *classes_file, lb_crop **out)
{
    lb_error e = {0};
    lb_classes *classes = NULL;
    int rc = crop_load_classes(classes_file, &classes);
    *out = NULL;
    if (rc != 0)
        return rc;
    rc = lb_crop_open(path, classes, out, &e);
    lb_classes_free(classes);
    if (rc != 0)
        return lb_failure(&e);
    return 0;
}

int crop_all_source(const char *path)
{
    /* <crop>/all/<level>: the grandparent claims to be a crop. */
    char buf[4096];
    size_t n = strlen(path);
    char *slash;
    int i;
    if (n >= sizeof buf)
        return 0;
    memcpy(buf, path, n + 1);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    for (i = 0; i < 2; i++) {
        slash = strrchr(buf, '/');
        if (!slash)
            return 0;
        if (i == 1 && strcmp(slash + 1, "all") != 0)
            return 0;
        *slash = '\0';
        while (slash > buf && slash[-1] == '/')
            *--slash = '\0';
    }
    return buf[0] && lb_crop_probe(buf);
}

/* ------------------------------------------------------------------------
 * info CROP
 * ------------------------------------------------------------------------ */

static void encoding_str(const lb_crop_class_info *k, char *buf, size_t size)
{
    char v[32];
    size_t len = 0;
    buf[0] = '\0';
    if (k->has_absent) {
        lb_id_format(k->absent, v, sizeof v);
        len += (size_t)snprintf(buf + len, size - len, "absent %s", v);
    }
    if (k->has_present && len < size) {
        lb_id_format(k->present, v, sizeof v);
        len += (size_t)snprintf(buf + len, size - len, "%spresent %s", len ? ", " : "", v);
    }
    if (k->has_unknown && len < size) {
        lb_id_format(k->unknown, v, sizeof v);
        snprintf(buf + len, size - len, "%sunknown %s", len ? ", " : "", v);
    }
}

static void counts_str(const lb_crop_level_info *l, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    if (l->absent >= 0)
        len += (size_t)snprintf(buf + len, size - len, "absent %" PRId64, l->absent);
    if (l->unknown >= 0 && len < size)
        len += (size_t)snprintf(buf + len, size - len, "%sunknown %" PRId64, len ? ", " : "",
                                l->unknown);
    if (l->present >= 0 && len < size)
        len += (size_t)snprintf(buf + len, size - len, "%spresent %" PRId64, len ? ", " : "",
                                l->present);
    if (len == 0)
        snprintf(buf, size, "-");
}

static void json_id(FILE *f, lb_id id)
{
    char v[32];
    lb_id_format(id, v, sizeof v);
    fputs(v, f);
}

static void info_json(const lb_crop *c)
{
    FILE *f = stdout;
    size_t i, n = lb_crop_class_count(c);
    int l, w;
    fputs("{\"path\": ", f);
    json_string(f, lb_crop_path(c));
    fputs(", \"format\": \"cellmap-crop\", \"name\": ", f);
    json_string(f, lb_crop_name(c));
    fputs(", \"version\": ", f);
    json_string(f, lb_crop_version(c));
    fputs(", \"class_table\": ", f);
    json_string(f, lb_classes_source(lb_crop_classes(c)));
    fputs(", \"all\": ", f);
    if (lb_crop_all_path(c))
        json_string(f, lb_crop_all_path(c));
    else
        fputs("null", f);
    fputs(", \"classes\": [", f);
    for (i = 0; i < n; i++) {
        lb_crop_class_info k;
        size_t m;
        lb_crop_class(c, i, &k, NULL);
        fputs(i ? ", {\"name\": " : "{\"name\": ", f);
        json_string(f, k.name);
        fputs(", \"id\": ", f);
        if (k.has_id)
            fprintf(f, "%" PRIu64, k.id);
        else
            fputs("null", f);
        fputs(", \"members\": [", f);
        for (m = 0; m < k.n_members; m++)
            fprintf(f, "%s%" PRIu64, m ? ", " : "", k.members[m]);
        fprintf(f, "], \"type\": \"%s\", \"encoding\": {",
                k.instance ? "instance_segmentation" : "semantic_segmentation");
        w = 0;
        if (k.has_absent) {
            fputs("\"absent\": ", f);
            json_id(f, k.absent);
            w = 1;
        }
        if (k.has_present) {
            fputs(w ? ", \"present\": " : "\"present\": ", f);
            json_id(f, k.present);
            w = 1;
        }
        if (k.has_unknown) {
            fputs(w ? ", \"unknown\": " : "\"unknown\": ", f);
            json_id(f, k.unknown);
        }
        fputs("}, \"levels\": [", f);
        for (l = 0; l < k.n_levels; l++) {
            lb_crop_level_info lv;
            lb_crop_level(c, i, l, &lv, NULL);
            fputs(l ? ", {\"path\": " : "{\"path\": ", f);
            json_string(f, lv.path);
            fputs(", \"voxel_size\": ", f);
            json_i64_list(f, lv.voxel_size, lv.dims);
            fputs(", \"offset\": ", f);
            json_i64_list(f, lv.roi.offset, lv.dims);
            fputs(", \"shape\": ", f);
            json_i64_list(f, lv.shape, lv.dims);
            fputs(", \"dtype\": ", f);
            json_string(f, lb_dtype_name(lv.dtype));
            fputs(", \"complement_counts\": ", f);
            if (lv.absent < 0 && lv.unknown < 0 && lv.present < 0) {
                fputs("null", f);
            } else {
                const char *names[3] = {"absent", "unknown", "present"};
                int64_t vals[3];
                int first = 1, s;
                vals[0] = lv.absent;
                vals[1] = lv.unknown;
                vals[2] = lv.present;
                fputc('{', f);
                for (s = 0; s < 3; s++) {
                    if (vals[s] < 0)
                        continue;
                    fprintf(f, "%s\"%s\": %" PRId64, first ? "" : ", ", names[s], vals[s]);
                    first = 0;
                }
                fputc('}', f);
            }
            fputc('}', f);
        }
        fputs("]}", f);
    }
    fputs("], \"warnings\": [", f);
    for (w = 0; w < lb_crop_warning_count(c); w++) {
        if (w)
            fputs(", ", f);
        json_string(f, lb_crop_warning(c, w));
    }
    fputs("]}\n", f);
}

static void info_text(const lb_crop *c)
{
    FILE *f = stdout;
    size_t i, n = lb_crop_class_count(c), namew = 5;
    int l, w, n_inst = 0;
    for (i = 0; i < n; i++) {
        lb_crop_class_info k;
        lb_crop_class(c, i, &k, NULL);
        if (strlen(k.name) > namew)
            namew = strlen(k.name) > 24 ? 24 : strlen(k.name);
        n_inst += k.instance;
    }
    fprintf(f, "crop:         %s\n", lb_crop_path(c));
    fprintf(f, "format:       CellMap crop (cellmap.annotation %s), name \"%s\"\n",
            lb_crop_version(c), lb_crop_name(c));
    fprintf(f, "class table:  %s\n", lb_classes_source(lb_crop_classes(c)));
    fprintf(f, "classes:      %zu (%zu semantic, %d instance)\n", n, n - (size_t)n_inst, n_inst);
    if (n)
        fprintf(f, "  %-*s  %4s  %-8s  %-33s  %s\n", (int)namew, "class", "id", "type",
                "encoding", "levels: voxel size, complement counts");
    for (i = 0; i < n; i++) {
        lb_crop_class_info k;
        char enc[160], id[32];
        lb_crop_class(c, i, &k, NULL);
        encoding_str(&k, enc, sizeof enc);
        if (k.has_id)
            snprintf(id, sizeof id, "%" PRIu64, k.id);
        else
            snprintf(id, sizeof id, "-");
        for (l = 0; l < k.n_levels; l++) {
            lb_crop_level_info lv;
            char vs[128], cc[160];
            lb_crop_level(c, i, l, &lv, NULL);
            coord_str(lv.voxel_size, lv.dims, vs, sizeof vs);
            counts_str(&lv, cc, sizeof cc);
            if (l == 0)
                fprintf(f, "  %-*.*s  %4s  %-8s  %-33s  %s %s, %s\n", (int)namew, (int)namew,
                        k.name, id, k.instance ? "instance" : "semantic", enc, lv.path, vs, cc);
            else
                fprintf(f, "  %-*s  %4s  %-8s  %-33s  %s %s, %s\n", (int)namew, "", "", "", "",
                        lv.path, vs, cc);
        }
    }
    fprintf(f, "dense ids:    %s\n", lb_crop_all_path(c) ? lb_crop_all_path(c) : "none (no all)");
    if (lb_crop_warning_count(c) == 0)
        fprintf(f, "warnings:     none\n");
    for (w = 0; w < lb_crop_warning_count(c); w++)
        fprintf(f, "%s%s\n", w ? "              " : "warnings:     ", lb_crop_warning(c, w));
}

int crop_info(const char *path, int as_json, const char *classes_file)
{
    lb_crop *c = NULL;
    int rc = crop_open(path, classes_file, &c);
    if (rc != 0)
        return rc;
    if (g_verbosity >= 1) {
        if (as_json)
            info_json(c);
        else
            info_text(c);
    }
    lb_crop_free(c);
    if (fflush(stdout) != 0)
        return failure("<stdout>: %s", strerror(errno));
    return EXIT_OK;
}

/* ------------------------------------------------------------------------
 * binarize / mask over a crop
 * ------------------------------------------------------------------------ */

/* 1 when the crop has an array for the class named `name`. */
static int crop_has(const lb_crop *c, const char *name)
{
    size_t i;
    for (i = 0; i < lb_crop_class_count(c); i++) {
        lb_crop_class_info k;
        lb_crop_class(c, i, &k, NULL);
        if (strcmp(k.name, name) == 0)
            return 1;
    }
    return 0;
}

/* Ids of the groups that name no class of the crop, and are no group class
 * of the table that could take its members' states: they read unknown
 * everywhere. Say so, once per group. */
static void warn_unannotated(const lb_crop *c, const lb_groupings *g)
{
    const lb_classes *t = lb_crop_classes(c);
    size_t gi, j, row;
    if (!g)
        return;
    for (gi = 0; gi < lb_groupings_count(g); gi++) {
        const lb_id *ids = NULL;
        size_t m = lb_groupings_ids(g, gi, &ids);
        char list[256] = "";
        size_t len = 0;
        int n = 0;
        for (j = 0; j < m; j++) {
            const char *name = NULL;
            size_t members = 0;
            char v[32];
            for (row = 0; !ids[j].negative && row < lb_classes_count(t); row++)
                if (lb_classes_id(t, row) == ids[j].bits) {
                    name = lb_classes_name(t, row);
                    members = lb_classes_members(t, row, NULL);
                    break;
                }
            if (name && (crop_has(c, name) || members))
                continue;
            lb_id_format(ids[j], v, sizeof v);
            n++;
            if (len < sizeof list)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s%s%s%s",
                                        len ? ", " : "", v, name ? " (" : " (not in the table",
                                        name ? name : "", ")");
        }
        if (n)
            warning("group '%s': the crop has no array for id%s %s: %s unknown everywhere",
                    lb_groupings_name(g, gi), n > 1 ? "s" : "", list,
                    n > 1 ? "they read" : "it reads");
    }
}

int crop_build(int is_mask, const char *path, const lb_groupings *g, const crop_args *ca,
               lb_array **out)
{
    lb_crop *c = NULL;
    lb_crop_options opt;
    lb_error e = {0};
    int rc, i;
    *out = NULL;
    rc = crop_open(path, ca->classes_file, &c);
    if (rc != 0)
        return rc;
    for (i = 0; i < lb_crop_warning_count(c); i++)
        warning("%s", lb_crop_warning(c, i));
    warn_unannotated(c, g);
    crop_options_from(ca, &opt);
    rc = is_mask ? lb_crop_mask_new(c, g, &opt, out, &e)
                 : lb_crop_binarize_new(c, g, &opt, out, &e);
    lb_crop_free(c);
    if (rc != 0) {
        print_lb_error(&e);
        /* A voxel size or unknown value that does not fit is the caller's
         * choice: a usage error. */
        return rc == LB_EINVAL ? EXIT_USAGE : EXIT_FAIL;
    }
    return 0;
}
