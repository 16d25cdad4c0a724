/*
 * cmd_write.c — `labelbin binarize`, `mask` and `run`: parse the groups and
 * output options, build the array (a BinarizeArray or MissingAnnotationsMask
 * over SOURCE, or a DaCapo config), materialise it to DEST with a progress
 * bar and cancellation, and print the summary table.
 */
#include "cli.h"
#include "commands.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char help_binarize[] =
    "Usage: labelbin binarize [OPTIONS] SOURCE DEST (-g NAME=IDS | --groupings FILE)...\n"
    "\n"
    "Write DaCapo's BinarizeArray of SOURCE to the new dataset DEST (Zarr v2,\n"
    "or Zarr v3 with --format zarr3): channel i is 1 where the label is one of\n"
    "the ids of group i (an empty group: where the label is not the\n"
    "background), else 0.\n"
    "\n"
    "Groups (at least one; channels follow the command-line order; a name\n"
    "names its channel, so it is non-empty and used once):\n"
    "  -g, --group NAME=ID,ID,...  a group; 'all=' is an empty group; ids are\n"
    "                              decimal, may be negative, up to 2^64-1\n"
    "  --groupings FILE            groups as DaCapo JSON [[\"mito\",[3,4,5]],...]\n"
    "                              or {\"mito\":[3,4,5],...} ('-' = standard input)\n"
    "  --background ID             the label empty groups exclude (default 0)\n"
    "\n"
    "CellMap crops (SOURCE with cellmap.annotation.class_names): 1 where an id\n"
    "of the group is present in the crop's class arrays (docs/semantics.md §5).\n"
    "  --infer-negatives  unknown counts as absent where a disjoint class is present\n"
    "  --classes FILE     class table, CSV name,id,\"member ids\" (default CellMap's)\n"
    "  --voxel-size Z,Y,X read each class at this voxel size (default: s0)\n"
    "  --unknown N        write a crop: DEST/<group>/s0 = 1 present, 0 absent,\n"
    "                     N unknown (2..255), with cellmap.annotation attributes\n"
    "\n"
    "Output:\n"
    "  --roi ROI         world units, 'b0:e0,b1:e1,...' or '[b0:e0, ...]'\n"
    "                    (default: the whole array); use --roi=-16:48,...\n"
    "                    or --roi '-16:48,...' for negative offsets\n"
    "  --codec CODEC     compressor: zstd[:L] (default zstd:3), gzip[:L],\n"
    "                    zlib[:L], bz2[:L], lz4, lzma, blosc-CNAME[:L] (lz4\n"
    "                    lz4hc zstd zlib blosclz), none, or a Zarr v2\n"
    "                    compressor / Zarr v3 codec JSON object\n"
    "  --chunks C,...    spatial chunk shape in voxels (default: the source's;\n"
    "                    the inner chunks of each shard with --shard)\n"
    "  --format FORMAT   zarr2 (default) or zarr3 (Zarr v3)\n"
    "  --shard S,...     Zarr v3 shards: spatial shape in voxels, a multiple of\n"
    "                    the chunk shape; each shard of chunks is one file\n"
    "                    (default: no shards; needs --format zarr3)\n"
    "  --channel-chunks together|separate\n"
    "                    together (default): a chunk holds all channels, one\n"
    "                    file per chunk (or per shard); separate: a chunk holds\n"
    "                    one channel, one file per channel per chunk\n"
    "  --ome-ngff        write an OME-NGFF multiscale group, the array in\n"
    "                    DEST/s0 (0.4 for zarr2, 0.5 for zarr3)\n"
    "  -f, --force       replace an existing DEST\n"
    "  --resume          finish an interrupted run into DEST\n"
    "  -j, --threads N   worker threads (default 0 = all cores; -v prints the\n"
    "                    number used)\n"
    "  --progress        show a progress bar (default: when stderr is a terminal)\n"
    "  --no-progress     never show a progress bar\n"
    "  -q, --quiet       print nothing but errors\n"
    "  -v, --verbose     print what is being done and the threads used, and each\n"
    "                    retry of a remote read; -vv also every request\n"
    "  -h, --help        show this help and exit\n"
    "\n"
    "Examples:\n"
    "  labelbin binarize crop.zarr/volumes/labels/all targets.zarr/gt \\\n"
    "      -g mito=3,4,5 -g mito_mem=3 -g er=16,17,18,19,20,21,22,23 -g cell=\n"
    "  labelbin binarize crop.n5/volumes/groundtruth/crop1/labels/all out.zarr/gt \\\n"
    "      --groupings groups.json --roi 80:240,40:184,400:576 -j 8 --codec zstd:5\n"
    "  labelbin binarize crop.zarr/volumes/labels/all targets.zarr/gt -g mito=3,4,5 --resume\n"
    "  labelbin binarize crop.zarr/volumes/labels/all targets.zarr/gt -g mito=3,4,5 \\\n"
    "      -g er=16,17 --format zarr3 --shard 256,256,256 --chunks 64,64,64\n"
    "  labelbin binarize crop.zarr/volumes/labels/all targets.zarr/gt -g mito=3,4,5 \\\n"
    "      -g er=16,17 --channel-chunks separate\n"
    "  labelbin binarize jrc.zarr/labels/groundtruth/crop243 out.zarr/crop243 \\\n"
    "      -g mito=3,4,5 -g er=16,17,18,19 --infer-negatives --unknown 255\n";

const char help_mask[] =
    "Usage: labelbin mask [OPTIONS] SOURCE DEST (-g NAME=IDS | --groupings FILE)...\n"
    "\n"
    "Write DaCapo's MissingAnnotationsMask of SOURCE to the new dataset DEST\n"
    "(Zarr v2, or Zarr v3 with --format zarr3): every channel is 1 where the\n"
    "label is > 0, and a channel whose group holds an id that the `labels`\n"
    "attribute marks present but not annotated is 0 everywhere (the table names\n"
    "those ids). Ids in the data that `labels` does not list as present count\n"
    "as annotated, with a warning naming them. Without a `labels` attribute the\n"
    "mask is label > 0 in every channel. Use the same groups as for 'labelbin\n"
    "binarize'.\n"
    "\n"
    "Groups (at least one; channels follow the command-line order):\n"
    "  -g, --group NAME=ID,ID,...  a group; 'all=' is an empty group\n"
    "  --groupings FILE            groups as JSON, as for binarize ('-' = stdin)\n"
    "\n"
    "CellMap crops (SOURCE a group with cellmap.annotation.class_names): channel\n"
    "i is 1 where group i's target is known: some id of the group is present,\n"
    "or every id is absent. Options --infer-negatives, --classes FILE and\n"
    "--voxel-size Z,Y,X as for 'labelbin binarize'. Over the dense ids of a\n"
    "crop (CROP/all/s0) the mask above applies, and a channel whose group names\n"
    "a class the crop does not annotate is 0 (--classes FILE for the table).\n"
    "\n"
    "Output options are those of 'labelbin binarize':\n"
    "  --roi ROI, --codec CODEC, --chunks C,..., --format zarr2|zarr3,\n"
    "  --shard S,..., --channel-chunks together|separate, --ome-ngff,\n"
    "  -f/--force, --resume, -j/--threads N, --progress, --no-progress, -q, -v, -h\n"
    "\n"
    "Examples:\n"
    "  labelbin mask crop.zarr/volumes/labels/all targets.zarr/mask \\\n"
    "      -g mito=3,4,5 -g mito_mem=3 -g er=16,17,18,19,20,21,22,23 -g cell=\n"
    "  labelbin mask crop.zarr/volumes/labels/all targets.zarr/mask --groupings groups.json\n"
    "  labelbin mask crop.zarr/volumes/labels/all targets.zarr/mask \\\n"
    "      --groupings groups.json --format zarr3 \\\n"
    "      --shard 256,256,256 --chunks 64,64,64 --ome-ngff\n";

const char help_run[] =
    "Usage: labelbin run [OPTIONS] CONFIG.json DEST\n"
    "\n"
    "Build the array described by a DaCapo array config (\"__type__\":\n"
    "ZarrArrayConfig, BinarizeArrayConfig or MissingAnnotationsMaskConfig,\n"
    "nested) and write it to the new dataset DEST (Zarr v2, or Zarr v3 with\n"
    "--format zarr3). Relative file_names resolve against the current\n"
    "directory, as in DaCapo. CONFIG '-' reads standard input.\n"
    "\n"
    "Output options are those of 'labelbin binarize':\n"
    "  --roi ROI, --codec CODEC, --chunks C,..., --format zarr2|zarr3,\n"
    "  --shard S,..., --channel-chunks together|separate, --ome-ngff,\n"
    "  -f/--force, --resume, -j/--threads N, --progress, --no-progress, -q, -v, -h\n"
    "\n"
    "Examples:\n"
    "  labelbin run gt.json targets.zarr/gt\n"
    "  labelbin run gt.json targets.zarr/gt --format zarr3 --shard 128,128,128\n"
    "  echo '{\"__type__\": \"BinarizeArrayConfig\", \"name\": \"gt\",\n"
    "        \"source_array_config\": {\"__type__\": \"ZarrArrayConfig\", \"name\": \"l\",\n"
    "          \"file_name\": \"crop.zarr\", \"dataset\": \"volumes/labels/all\"},\n"
    "        \"groupings\": [[\"mito\", [3, 4, 5]]]}' | labelbin run - targets.zarr/gt\n";

write_driver g_write_driver = {lb_array_materialize, lb_mask_unlisted_ids};

/* ------------------------------------------------------------------------
 * Options of binarize / mask / run
 * ------------------------------------------------------------------------ */

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
    lb_format format;         /* --format: LB_FORMAT_ZARR2 (default) or _ZARR3 */
    int64_t shard[LB_MAX_DIMS]; /* --shard, spatial voxels (Zarr v3 only)   */
    int n_shard;
    int channel_chunks;       /* --channel-chunks: LB_CHANNELS_*              */
    int progress; /* -1 auto (isatty), 0 off, 1 on */
    const char *pos[2];
    crop_args crop;           /* CellMap crop options (crop_cli.c)          */
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
    {"format", required_argument, NULL, OPT_FORMAT},
    {"shard", required_argument, NULL, OPT_SHARD},
    {"channel-chunks", required_argument, NULL, OPT_CHANNEL_CHUNKS},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    CROP_LONGOPTS,
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
    wa->format = LB_FORMAT_ZARR2;
    wa->channel_chunks = LB_CHANNELS_TOGETHER;
    crop_args_init(&wa->crop);
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
        case OPT_FORMAT: {
            int rc = parse_format(optarg, &wa->format);
            if (rc != 0)
                return rc;
            break;
        }
        case OPT_SHARD:
            if (parse_i64_list(optarg, 1, INT32_MAX, wa->shard, LB_MAX_DIMS,
                               &wa->n_shard) != 0)
                return usage_error("--shard '%s': expected positive integers "
                                   "separated by commas, e.g. 256,256,256", optarg);
            break;
        case OPT_CHANNEL_CHUNKS:
            if (strcmp(optarg, "separate") == 0)
                wa->channel_chunks = LB_CHANNELS_SEPARATE;
            else if (strcmp(optarg, "together") == 0)
                wa->channel_chunks = LB_CHANNELS_TOGETHER;
            else
                return usage_error("--channel-chunks '%s': expected together (the "
                                   "default) or separate", optarg);
            break;
        case OPT_PROGRESS: wa->progress = 1; break;
        case OPT_NO_PROGRESS: wa->progress = 0; break;
        case 'q': set_verbosity(0); break;
        case 'v': more_verbose(); break;
        case 'h': fputs(help, stdout); return EXIT_OK;
        default: {
            int rc = crop_option(c, optarg, &wa->crop);
            if (rc == 1)
                break;
            return rc ? rc : getopt_failure(c, argv, write_longopts);
        }
        }
    }
    for (; optind < argc; optind++) {
        if (npos >= 2)
            return usage_error("unexpected argument '%s'", shown_path(argv[optind]));
        wa->pos[npos++] = argv[optind];
    }
    if (npos < 2)
        return usage_error(kind == KIND_RUN ? "expected CONFIG.json and DEST"
                                            : "expected SOURCE and DEST");
    if (kind != KIND_RUN && wa->n_group_args == 0)
        return usage_error("no groups: give -g NAME=ID,... or --groupings FILE");
    if (wa->force && wa->resume)
        return usage_error("--force and --resume exclude each other");
    if (kind == KIND_RUN && wa->crop.given)
        return usage_error("the crop options of 'run' come from the config (CellMapCropConfig)");
    if (kind == KIND_MASK && (wa->crop.given & CROP_GIVEN_UNKNOWN))
        return usage_error("--unknown applies to 'binarize': its three-state output holds "
                           "the mask too");
    if ((wa->crop.given & CROP_GIVEN_UNKNOWN) && g_write_driver.materialize != lb_array_materialize)
        return usage_error("--unknown writes a three-state crop from one process: run "
                           "'labelbin binarize ... --unknown N' instead");
    if (wa->n_shard && wa->format != LB_FORMAT_ZARR3)
        return usage_error("--shard needs --format zarr3 (Zarr v2 has no shards)");
    if (!*wa->pos[1])
        return usage_error("DEST is empty");
    /* Only a --groupings file can be empty (-g always adds a group). */
    if (kind != KIND_RUN && lb_groupings_count(wa->groups) == 0)
        return failure("%s: the groupings are empty: at least one group is needed (each "
                       "group is one output channel)", wa->groupings_file);
    return -1;
}

/* ------------------------------------------------------------------------
 * Helpers on arrays and groups
 * ------------------------------------------------------------------------ */

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
    size_t n = g_write_driver.unlisted_ids(a, ids, LB_MASK_UNLISTED_MAX);
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

/* --shard against the chunk shape its shards hold: --chunks, else the
 * stored source's (inner) chunks, which the writer takes by default. When
 * they cannot be known here the writer's own check decides. */
static int check_write_shard(const lb_array *a, const write_args *wa)
{
    int dims = lb_array_dims(a);
    const lb_array *st = a;
    const int64_t *ch;
    if (wa->n_shard != dims)
        return usage_error("--shard has %d entries, the array has %d spatial dimensions",
                           wa->n_shard, dims);
    if (wa->n_chunks)
        return check_shard(wa->shard, wa->chunks, dims, "set by --chunks");
    while (st && !lb_array_path(st))
        st = lb_array_source(st);
    ch = st ? lb_array_chunks(st) : NULL;
    if (!ch || lb_array_dims(st) != dims)
        return 0;
    return check_shard(wa->shard, ch + (lb_array_ndim(st) - dims), dims,
                       "the source's chunks; --chunks sets another");
}

static void print_summary(const lb_array *a, const char *dest, int sharded,
                          const lb_write_stats *st, int64_t voxels, double seconds)
{
    int64_t nch = lb_array_num_channels(a), i;
    char ids[64], bytes[32], dur[32];
    const lb_groupings *g = lb_array_groupings(a);
    int is_mask = strcmp(lb_array_kind(a), "MissingAnnotationsMask") == 0;
    size_t namew = 7;

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
            if (g && (size_t)i < lb_groupings_count(g) && lb_array_is_crop(a) &&
                lb_groupings_ids(g, (size_t)i, NULL) == 0)
                snprintf(ids, 23, "(any class)");
            else if (g && (size_t)i < lb_groupings_count(g))
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
    printf("wrote %s: %" PRId64 " blocks", shown_path(dest), st->blocks_done);
    if (st->blocks_skipped > 0)
        printf(" (+%" PRId64 " already complete, not counted above)", st->blocks_skipped);
    /* A sharded output's files are its shards; empty inner chunks are
     * left out of them. */
    printf(", %" PRId64 " %s, %" PRId64 " empty %schunks skipped, %s, %.2f s\n",
           st->chunks_written, sharded ? "shards" : "chunks", st->chunks_empty,
           sharded ? "inner " : "", bytes, seconds);
}

int cmd_write(int argc, char **argv, write_kind kind)
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
                    strcmp(wa.pos[0], "-") == 0 ? "standard input" : shown_path(wa.pos[0]),
                    e.message[0] ? e.message : lb_strerror(e.code));
            ret = EXIT_FAIL;
            goto done;
        }
    } else if (source_is_crop(wa.pos[0], &src)) {
        /* A CellMap crop: the three-valued rule over its class arrays. */
        if (wa.have_background) {
            ret = usage_error("--background: a crop has no background id (an empty group "
                              "means any class of the crop)");
            goto done;
        }
        rc = crop_build(kind == KIND_MASK, wa.pos[0], wa.groups, &wa.crop, &a);
        if (rc != 0) {
            ret = rc;
            goto done;
        }
    } else {
        lb_dtype dt;
        lb_classes *classes = NULL;
        if (wa.crop.given & ~CROP_GIVEN_CLASSES) {
            ret = usage_error("--infer-negatives, --voxel-size and --unknown apply to a crop "
                              "SOURCE (a group with cellmap.annotation.class_names)");
            goto done;
        }
        if ((wa.crop.given & CROP_GIVEN_CLASSES) && !(kind == KIND_MASK &&
                                                      crop_all_source(wa.pos[0]))) {
            ret = usage_error("--classes applies to a crop SOURCE or, for 'mask', to the "
                              "`all` array of one");
            goto done;
        }
        if (crop_load_classes(wa.crop.classes_file, &classes) != 0) {
            ret = EXIT_FAIL;
            goto done;
        }
        if (!src && open_source(wa.pos[0], &src) != 0) {
            lb_classes_free(classes);
            ret = EXIT_FAIL;
            goto done;
        }
        dt = lb_array_dtype(src);
        warn_unfit_ids(wa.groups, dt, wa.have_background ? &wa.background : NULL);
        if (kind == KIND_MASK) {
            lb_annotations ann = lb_array_annotations(src);
            int crop_all = crop_all_source(wa.pos[0]);
            rc = lb_mask_new_ex(src, wa.groups, classes, &a, &e);
            if (rc == 0 && crop_all)
                note("%s: the dense ids of a crop: a channel whose group names a class the "
                     "crop does not annotate is 0", wa.pos[0]);
            else if (rc == 0 && ann == LB_ANNOTATIONS_NONE)
                note("%s: no annotation metadata (`labels` attribute) found: the "
                     "mask is label > 0 in every channel", shown_path(wa.pos[0]));
        } else {
            lb_id bg = {0, 0};
            if (wa.have_background)
                bg = wa.background;
            rc = lb_binarize_new(src, wa.groups, bg, &a, &e);
        }
        lb_classes_free(classes);
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
    if (wa.n_shard) {
        rc = check_write_shard(a, &wa);
        if (rc != 0) {
            ret = rc;
            goto done;
        }
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
    opt.format = wa.format;
    opt.shard = wa.n_shard ? wa.shard : NULL;
    opt.channel_chunks = wa.channel_chunks;
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
                lb_array_kind(a), shown_path(wa.pos[0]), shown_path(dest), b, voxels,
                nch < 0 ? 1 : nch);
        verbose("codec %s%s%s%s", wa.codec ? wa.codec : lb_default_codec_json(),
                wa.force ? ", overwrite" : "", wa.resume ? ", resume" : "",
                wa.ome_ngff ? ", OME-NGFF" : "");
        coord_str(wa.shard, wa.n_shard, b, sizeof b);
        verbose("output %s%s%s, channels %s", wa.format == LB_FORMAT_ZARR3 ? "zarr3" : "zarr2",
                wa.n_shard ? ", shards " : "", wa.n_shard ? b : "",
                wa.channel_chunks == LB_CHANNELS_TOGETHER ? "together in each chunk"
                                                          : "in separate chunks");
    }

    memset(&st, 0, sizeof st);
    st.positive = positive;
    st.positive_len = npos;
    install_signals();
    t0 = now_seconds();
    /* A three-state output (--unknown) is written as a crop, a group per
     * group of ids (by this process: refused under labelbin-mpi above). */
    rc = wa.crop.unknown >= 0 ? lb_crop_materialize(a, dest, &opt, &st, &e)
                              : g_write_driver.materialize(a, dest, &opt, &st, &e);
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
        print_summary(a, dest, wa.n_shard > 0, &st, voxels, now_seconds() - t0);
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
