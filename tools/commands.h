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

/* cmd_preview.c: preview, a section drawn into a PNG image. */
extern const char help_preview[];
int cmd_preview(int argc, char **argv);

#endif /* LABELBIN_COMMANDS_H */
