/*
 * cmd_sample.c — `labelbin sample`: write the synthetic crop of sample.c as
 * a uint64 label dataset with CellMap-like metadata (geometry and a
 * fibsem-tools LabelList with exact voxel counts), for demos and tests.
 */
#include "cli.h"
#include "commands.h"
#include "sample.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char help_sample[] =
    "Usage: labelbin sample [OPTIONS] DEST\n"
    "\n"
    "Write a built-in CellMap-like sample crop to DEST: a uint64 label dataset\n"
    "(Zarr v2, or Zarr v3 with --format zarr3) with a cell (plasma membrane,\n"
    "cytosol), a nucleus, mitochondria, ER sheets, vesicles, peroxisomes and\n"
    "microtubules in CellMap ids, extracellular space around it and an\n"
    "unannotated margin (label 0). Its `labels` attribute (fibsem-tools\n"
    "LabelList) marks 5 mito_ribo as present but not annotated. The same seed\n"
    "and shape give the same bytes.\n"
    "\n"
    "Options:\n"
    "  --shape Z,Y,X     size in voxels (default 96,128,128; each 16..4096)\n"
    "  --seed N          random seed (default 1)\n"
    "  --chunks Z,Y,X    chunk shape (default 32,64,64)\n"
    "  --codec CODEC     compressor (default zstd:3; see 'labelbin binarize -h')\n"
    "  --format FORMAT   zarr2 (default) or zarr3 (Zarr v3)\n"
    "  --shard Z,Y,X     Zarr v3 shards: each shard of chunks, a multiple of the\n"
    "                    chunk shape, is one file (default: no shards; needs\n"
    "                    --format zarr3)\n"
    "  -f, --force       replace an existing DEST\n"
    "  -q, --quiet       print nothing but errors\n"
    "  -v, --verbose     print the label counts\n"
    "  -h, --help        show this help and exit\n"
    "\n"
    "Examples:\n"
    "  labelbin sample demo-out/crop.zarr/volumes/labels/all\n"
    "  labelbin sample --shape 128,256,256 --seed 7 big.zarr/labels\n"
    "  labelbin sample --format zarr3 --shard 64,128,128 v3.zarr/labels\n";

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
    for (i = 0; i < sample_n_classes; i++) {
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

int cmd_sample(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"shape", required_argument, NULL, OPT_SHAPE},
        {"seed", required_argument, NULL, OPT_SEED},
        {"chunks", required_argument, NULL, OPT_CHUNKS},
        {"codec", required_argument, NULL, OPT_CODEC},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"shard", required_argument, NULL, OPT_SHARD},
        {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int64_t shape[3] = {96, 128, 128}, chunks[3] = {32, 64, 64}, shard[3];
    static const char *const dim_names[3] = {"z", "y", "x"};
    lb_format format = LB_FORMAT_ZARR2;
    int have_chunks = 0, n_shard = 0;
    const int64_t res[3] = {8, 8, 8};
    int64_t offset[3];
    uint64_t seed = 1, counts[SAMPLE_MAX_ID];
    const char *codec = "zstd:3", *dest;
    int force = 0, c, n, ret = EXIT_FAIL, pass, i;
    lb_error e = {0};
    lb_create_options co;
    lb_array *a = NULL;
    sample_model *m = NULL;
    uint64_t *buf = NULL;
    char *attrs = NULL;
    size_t slab_bytes;
    int64_t z0, zstep;

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
            have_chunks = 1;
            break;
        case OPT_SHARD:
            if (parse_i64_list(optarg, 1, 1 << 20, shard, 3, &n_shard) != 0 || n_shard != 3)
                return usage_error("--shard '%s': expected Z,Y,X, positive multiples of "
                                   "the chunk shape", optarg);
            break;
        case OPT_FORMAT: {
            int rc = parse_format(optarg, &format);
            if (rc != 0)
                return rc;
            break;
        }
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
    if (n_shard && format != LB_FORMAT_ZARR3)
        return usage_error("--shard needs --format zarr3 (Zarr v2 has no shards)");
    if (n_shard) {
        int rc = check_shard(shard, chunks, 3, have_chunks ? "set by --chunks"
                                                          : "the default; --chunks sets another");
        if (rc != 0)
            return rc;
    }
    /* A chunk larger than the volume shrinks to it, and so does its shard. */
    for (i = 0; i < 3; i++)
        if (chunks[i] > shape[i]) {
            chunks[i] = shape[i];
            if (n_shard)
                shard[i] = shape[i];
        }
    /* Slabs of whole stored chunks (shards) in z, so that each is written
     * once; past 1 GiB a slab is one chunk row (the library then updates
     * partly written shards). */
    zstep = chunks[0];
    if (n_shard && (uint64_t)shard[0] * (uint64_t)shape[1] * (uint64_t)shape[2] <=
                       ((uint64_t)1 << 30) / sizeof(uint64_t))
        zstep = shard[0] < shape[0] ? shard[0] : shape[0];
    /* A crop somewhere inside a bigger volume, as real crops are. */
    offset[0] = 400 * res[0];
    offset[1] = 600 * res[1];
    offset[2] = 1200 * res[2];

    m = sample_model_new(shape, seed);
    slab_bytes = (size_t)zstep * (size_t)shape[1] * (size_t)shape[2] * sizeof(uint64_t);
    buf = malloc(slab_bytes);
    if (!m || !buf) {
        ret = failure("out of memory");
        goto done;
    }
    memset(counts, 0, sizeof counts);

    /* Pass 0 counts labels for the metadata (which is written at create
     * time), pass 1 writes slabs of one chunk (shard) row: memory stays
     * small. */
    for (pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            attrs = sample_attrs(offset, res, counts, seed);
            if (!attrs) {
                ret = failure("out of memory");
                goto done;
            }
            lb_create_options_init(&co);
            co.format = format;
            if (format == LB_FORMAT_ZARR3) {
                co.shard = n_shard ? shard : NULL;
                co.dimension_names = dim_names;
            }
            co.dtype = LB_DTYPE_UINT64;
            co.codec = codec;
            co.attrs_json = attrs;
            co.overwrite = force;
            if (lb_dataset_create(dest, 3, shape, chunks, &co, &a, &e) != 0) {
                ret = lb_failure(&e);
                goto done;
            }
        }
        for (z0 = 0; z0 < shape[0]; z0 += zstep) {
            int64_t z1 = z0 + zstep < shape[0] ? z0 + zstep : shape[0];
            size_t nvox = (size_t)(z1 - z0) * (size_t)shape[1] * (size_t)shape[2], v;
            sample_fill(m, z0, z1, buf);
            if (pass == 0) {
                for (v = 0; v < nvox; v++)
                    if (buf[v] < SAMPLE_MAX_ID)
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
            for (i = 0; i < (int)sample_n_classes; i++)
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
    sample_model_free(m);
    return ret;
}
