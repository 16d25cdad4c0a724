/*
 * commands.h — the commands of the `labelbin` tool, one file each, as
 * main.c dispatches them: an entry point (argv[0] is the command's name;
 * returns the exit code) and the text of its --help.
 */
#ifndef LABELBIN_COMMANDS_H
#define LABELBIN_COMMANDS_H

#include <labelbin.h>

/* cmd_info.c: info, and what a folder that is not a dataset holds. */
extern const char help_info[];
int cmd_info(int argc, char **argv);
/* Open SOURCE for a command; on failure print the library's message and,
 * for a folder that is not a dataset, the datasets below it. Returns 0 or
 * the library's error code. */
int open_source(const char *path, lb_array **out);
/* 1 when SOURCE is a CellMap crop, else 0. A dataset is opened first (into
 * *out, NULL when the path opens as none, nothing printed) and only a path
 * that is no dataset is probed as a crop (a crop is a group): each metadata
 * document of a dataset is asked for once, which matters over HTTP. */
int source_is_crop(const char *path, lb_array **out);

/* cmd_write.c: binarize, mask and run, which build an array and write it. */
typedef enum write_kind { KIND_BINARIZE, KIND_MASK, KIND_RUN } write_kind;
extern const char help_binarize[];
extern const char help_mask[];
extern const char help_run[];
int cmd_write(int argc, char **argv, write_kind kind);

/* How binarize, mask and run write the array and learn the mask's
 * unlisted ids: lb_array_materialize and lb_mask_unlisted_ids in
 * `labelbin`; labelbin-mpi's driver (tools/mpi/) shares the blocks between
 * MPI ranks and gathers the ids of all ranks. */
typedef struct write_driver {
    int (*materialize)(const lb_array *a, const char *dest, const lb_write_options *opt,
                       lb_write_stats *stats, lb_error *err);
    size_t (*unlisted_ids)(const lb_array *a, lb_id *ids, size_t max);
} write_driver;
extern write_driver g_write_driver;

/* main.c: the whole tool (main() calls it; labelbin-mpi wraps it). */
int cli_main(int argc, char **argv);

/* cmd_sample.c: sample, the built-in synthetic crop (sample.c). */
extern const char help_sample[];
int cmd_sample(int argc, char **argv);

/* cmd_check.c: check, the crop linter. */
extern const char help_check[];
int cmd_check(int argc, char **argv);

/* cmd_stats.c: stats, present / absent / unknown counts per class or group. */
extern const char help_stats[];
int cmd_stats(int argc, char **argv);

/* crop_cli.c: CellMap crops in the commands. The crop options, shared by
 * binarize, mask, info, stats and check (getopt values beyond cli.h's). */
enum { OPT_INFER_NEGATIVES = 512, OPT_CLASSES, OPT_VOXEL_SIZE, OPT_UNKNOWN };
#define CROP_LONGOPTS                                                   \
    {"infer-negatives", no_argument, NULL, OPT_INFER_NEGATIVES},        \
    {"classes", required_argument, NULL, OPT_CLASSES},                  \
    {"voxel-size", required_argument, NULL, OPT_VOXEL_SIZE},            \
    {"unknown", required_argument, NULL, OPT_UNKNOWN}
enum { CROP_GIVEN_INFER = 1, CROP_GIVEN_CLASSES = 2, CROP_GIVEN_VOXEL_SIZE = 4,
       CROP_GIVEN_UNKNOWN = 8 };
typedef struct crop_args {
    int infer_negatives;
    const char *classes_file;
    int64_t voxel_size[LB_MAX_DIMS];
    int n_voxel_size;
    int unknown;   /* -1 = none */
    int given;     /* CROP_GIVEN_* of the options on the command line */
} crop_args;
void crop_args_init(crop_args *ca);
/* A crop option's getopt value `c`: 1 handled, 0 not a crop option, else
 * the exit code of a usage error already printed. */
int crop_option(int c, const char *arg, crop_args *ca);
/* The class table of --classes FILE (NULL file: *out = NULL, the built-in
 * one); 0 or an exit code (the error is printed). */
int crop_load_classes(const char *file, lb_classes **out);
void crop_options_from(const crop_args *ca, lb_crop_options *opt);
/* Open a crop with --classes; 0 or an exit code (printed). */
int crop_open(const char *path, const char *classes_file, lb_crop **out);
/* 1 when `path` is `<crop>/all/<level>` of a crop. */
int crop_all_source(const char *path);
/* `info` on a crop. */
int crop_info(const char *path, int as_json, const char *classes_file);
/* A target (is_mask 0, three-state with ca->unknown) or mask over the crop
 * at `path`; crop warnings are printed. 0 or an exit code (printed). */
int crop_build(int is_mask, const char *path, const lb_groupings *g, const crop_args *ca,
               lb_array **out);
/* cmd_preview.c: preview, a section drawn into a PNG image. */
extern const char help_preview[];
int cmd_preview(int argc, char **argv);

/* cmd_cache.c: cache-stats, the shared label cache's statistics. */
extern const char help_cache_stats[];
int cmd_cache_stats(int argc, char **argv);

#endif /* LABELBIN_COMMANDS_H */
