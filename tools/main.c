/*
 * main.c — the `labelbin` command-line tool: global options (--help,
 * --version, -q/-v), then dispatch to a command (commands.h), with a
 * suggestion for a mistyped one. A thin front end over the public API
 * (labelbin.h only): the commands parse arguments, print, handle signals
 * and map errors to exit codes.
 */
#include "cli.h"
#include "commands.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char help_main[] =
    "Usage: labelbin [-h|-V] COMMAND [OPTIONS] ARGS...\n"
    "\n"
    "Turn chunked label volumes (Zarr v2, N5, Zarr v3) into per-class binary\n"
    "channels (DaCapo's BinarizeArray) and training masks\n"
    "(MissingAnnotationsMask), written as Zarr v2 or Zarr v3 (--format zarr3).\n"
    "\n"
    "Commands:\n"
    "  info      SOURCE               describe a dataset (--json for machines)\n"
    "  binarize  SOURCE DEST -g ...   write one 0/1 channel per group\n"
    "  mask      SOURCE DEST -g ...   write the missing-annotations mask\n"
    "  run       CONFIG.json DEST     materialise a DaCapo array config\n"
    "  sample    DEST                 write a built-in CellMap-like sample crop\n"
    "  preview   SOURCE -o OUT.png    draw a section (labels, groups, mask) as PNG\n"
    "  help      [COMMAND]            show help for a command\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "  -V, --version  show the version and exit\n"
    "\n"
    "Run 'labelbin COMMAND --help' for the options of a command.\n"
    "Exit status: 0 ok, 1 runtime failure (bad data, refused ROI, I/O),\n"
    "2 usage error, 130 interrupted (run again with --resume).\n"
    "\n"
    "Examples:\n"
    "  labelbin sample demo/crop.zarr/volumes/labels/all\n"
    "  labelbin info demo/crop.zarr/volumes/labels/all\n"
    "  labelbin binarize demo/crop.zarr/volumes/labels/all out.zarr/gt \\\n"
    "      -g mito=3,4,5 -g er=16,17,18,19 -g cell=\n"
    "  labelbin mask demo/crop.zarr/volumes/labels/all out.zarr/mask \\\n"
    "      -g mito=3,4,5 -g er=16,17,18,19 -g cell=\n"
    "  labelbin binarize demo/crop.zarr/volumes/labels/all out.zarr/gt \\\n"
    "      -g mito=3,4,5 --format zarr3 --shard 64,128,128 --chunks 32,64,64\n"
    "  labelbin preview demo/crop.zarr/volumes/labels/all -o slice.png \\\n"
    "      -g mito=3,4,5 -g er=16,17,18,19 --mask --scale 3\n";

/* ------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    const char *help;
} commands[] = {
    {"info", help_info},     {"binarize", help_binarize}, {"mask", help_mask},
    {"run", help_run},       {"sample", help_sample},     {"preview", help_preview},
};

/* "unknown command 'binarise'; did you mean 'binarize'?" (exit 2). */
static int unknown_command(const char *context, const char *cmd)
{
    static const char *const names[] = {"info",   "binarize", "mask", "run",
                                        "sample", "preview",  "help"};
    const char *near = nearest_name(cmd, strlen(cmd), names,
                                    sizeof names / sizeof names[0] - (context ? 1 : 0));
    if (near)
        return usage_error("%s%sunknown command '%s'; did you mean '%s'?", context ? context : "",
                           context ? ": " : "", cmd, near);
    return usage_error("%s%sunknown command '%s' (commands: info, binarize, mask, run, sample, preview%s)",
                       context ? context : "", context ? ": " : "", cmd,
                       context ? "" : ", help");
}

static int dispatch(const char *cmd, int argc, char **argv)
{
    g_cmd = cmd;
    if (strcmp(cmd, "info") == 0)
        return cmd_info(argc, argv);
    if (strcmp(cmd, "binarize") == 0)
        return cmd_write(argc, argv, KIND_BINARIZE);
    if (strcmp(cmd, "mask") == 0)
        return cmd_write(argc, argv, KIND_MASK);
    if (strcmp(cmd, "run") == 0)
        return cmd_write(argc, argv, KIND_RUN);
    if (strcmp(cmd, "sample") == 0)
        return cmd_sample(argc, argv);
    if (strcmp(cmd, "preview") == 0)
        return cmd_preview(argc, argv);
    g_cmd = NULL;
    return unknown_command(NULL, cmd);
}

int cli_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0}};
    int c;
    const char *cmd;
    struct sigaction sa;

    /* A file-size limit must become an EFBIG error, not a kill. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGXFSZ, &sa, NULL);

    opterr = 0;
    /* '+': stop at the command; its options are parsed by the command. */
    while ((c = getopt_long(argc, argv, "+:hVqv", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(help_main, stdout); return EXIT_OK;
        case 'V':
            printf("labelbin %s (library %s)\n", LB_VERSION_STRING, lb_version());
            return EXIT_OK;
        case 'q': g_verbosity = 0; break;
        case 'v': g_verbosity = 2; break;
        default: return getopt_failure(c, argv, longopts);
        }
    }
    if (optind >= argc)
        return usage_error("missing command (info, binarize, mask, run, sample or preview)");
    cmd = argv[optind];
    if (strcmp(cmd, "help") == 0) {
        size_t i;
        if (optind + 1 >= argc) {
            fputs(help_main, stdout);
            return EXIT_OK;
        }
        for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(argv[optind + 1], commands[i].name) == 0) {
                fputs(commands[i].help, stdout);
                return EXIT_OK;
            }
        return unknown_command("help", argv[optind + 1]);
    }
    return dispatch(cmd, argc - optind, argv + optind);
}

#ifndef LB_MPI_MAIN
/* labelbin-mpi has its own main (tools/mpi/mpi_main.c) around cli_main. */
int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
#endif
