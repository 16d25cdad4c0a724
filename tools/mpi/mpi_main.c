/*
 * mpi_main.c — main() of labelbin-mpi: the `labelbin` tool started by
 * mpirun / srun. Rank 0 is the tool as users know it (its messages, its
 * progress bar, its exit status); the other ranks run binarize, mask and
 * run too, silently — stdout discarded, stderr captured so that rank 0 can
 * report a rank's failure once, as "labelbin: rank K: ..." — and nothing
 * else (info and sample run on rank 0 alone).
 */
#include "../cli.h"
#include "../commands.h"
#include "mpi_driver.h"

#include <fcntl.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int g_mpi_rank = 0, g_mpi_size = 1;
FILE *g_mpi_captured = NULL;

static const char help_mpi[] =
    "Usage: mpirun [-n N] labelbin-mpi COMMAND [OPTIONS] ARGS...\n"
    "       srun labelbin-mpi COMMAND [OPTIONS] ARGS...\n"
    "\n"
    "labelbin for MPI jobs. 'binarize', 'mask' and 'run' take the options of\n"
    "labelbin and write the same DEST, byte for byte, as one labelbin process,\n"
    "with any number of ranks: rank 0 writes the metadata first, then every\n"
    "rank asks rank 0 for ranges of output blocks as it finishes the last, so\n"
    "ranks on cheap (empty) regions take more. Rank 0 alone prints: progress,\n"
    "warnings and the summary table, its counts summed over all ranks. A rank\n"
    "that fails (a corrupt chunk, a full disk) stops the others and the job\n"
    "exits 1 with its message, 'labelbin: rank K: ...'. 'info' and 'sample' run\n"
    "on rank 0 alone.\n"
    "\n"
    "Under MPI:\n"
    "  -j N        worker threads per rank; default: the cores of the node\n"
    "              divided among its ranks, at most the cores a rank is bound to\n"
    "              (mpirun binds ranks to cores when there are few of them;\n"
    "              'mpirun --bind-to none' lets -j use more)\n"
    "  --resume    finish an interrupted or killed job, with any number of ranks\n"
    "  -v          also print the ranks and threads used\n"
    "  '-' (standard input) cannot be used: mpirun gives it to rank 0 only\n"
    "\n"
    "Exit status (rank 0's, which mpirun returns): 0 ok, 1 runtime failure on\n"
    "any rank, 2 usage error, 128+signal when the ranks get SIGINT or SIGTERM\n"
    "(scancel, a time limit). Interrupted itself (Ctrl-C), mpirun forwards\n"
    "SIGTERM, kills the ranks a second later and exits 1. Either way, run the\n"
    "same command with --resume to finish. A single labelbin process needs no\n"
    "MPI: use 'labelbin'.\n"
    "\n"
    "Examples:\n"
    "  mpirun -n 8 labelbin-mpi binarize crop.zarr/volumes/labels/all out.zarr/gt \\\n"
    "      -g mito=3,4,5 -g er=16,17,18,19 -g cell=\n"
    "  mpirun -n 8 labelbin-mpi binarize crop.zarr/volumes/labels/all out.zarr/gt \\\n"
    "      -g mito=3,4,5 -g er=16,17,18,19 -g cell= --resume\n"
    "  srun --ntasks=64 --cpus-per-task=4 labelbin-mpi mask labels.zarr/all \\\n"
    "      masks.zarr/all --groupings groups.json --format zarr3 --shard 512,512,512\n"
    "\n"
    "Run 'labelbin-mpi COMMAND --help' for the options of a command;\n"
    "'labelbin-mpi --help-labelbin' shows labelbin's own help.\n";

/* The command word: the first argument that is not a global option. */
static const char *command_of(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-')
            return argv[i];
    return NULL;
}

static int is_write_command(const char *cmd)
{
    return cmd && (strcmp(cmd, "binarize") == 0 || strcmp(cmd, "mask") == 0 ||
                   strcmp(cmd, "run") == 0);
}

/* '-' as a file (--groupings -, run -) means standard input, which mpirun
 * gives to rank 0 only. */
static int reads_stdin(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-") == 0 || strcmp(argv[i], "--groupings=-") == 0)
            return 1;
    return 0;
}

/* Ranks > 0: stdout to /dev/null, stderr to a temporary file that the
 * write driver reads back when this rank fails before it. */
static void quiet_rank(void)
{
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        close(null);
    }
    g_mpi_captured = tmpfile();
    if (g_mpi_captured) {
        fflush(stderr);
        dup2(fileno(g_mpi_captured), STDERR_FILENO);
    }
}

int main(int argc, char **argv)
{
    int provided = 0, ret;
    const char *cmd;

    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fputs("labelbin: MPI_Init_thread failed\n", stderr);
        return EXIT_FAIL;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &g_mpi_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_mpi_size);
    if (g_mpi_rank > 0)
        quiet_rank();
    g_write_driver.materialize = mpi_materialize;
    g_write_driver.unlisted_ids = mpi_unlisted_ids;

    cmd = command_of(argc, argv);
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        if (g_mpi_rank == 0)
            fputs(help_mpi, stdout);
        ret = EXIT_OK;
    } else if (argc == 2 && strcmp(argv[1], "--help-labelbin") == 0) {
        char *args[] = {argv[0], (char *)"--help", NULL};
        ret = g_mpi_rank == 0 ? cli_main(2, args) : EXIT_OK;
    } else if (is_write_command(cmd) && g_mpi_size > 1 && reads_stdin(argc, argv)) {
        ret = g_mpi_rank == 0 ? usage_error("'-' (standard input) cannot be used under MPI: "
                                            "mpirun gives it to rank 0 only; give a file")
                              : EXIT_USAGE;
    } else if (is_write_command(cmd)) {
        ret = cli_main(argc, argv);
        /* Every rank that did not reach the write driver says so, so that
         * those that did are not left waiting. */
        mpi_not_written(ret);
    } else {
        ret = g_mpi_rank == 0 ? cli_main(argc, argv) : EXIT_OK;
    }
    fflush(stdout);
    fflush(stderr);
    MPI_Finalize();
    /* Rank 0 reports for the job; any other rank exiting non-zero would
     * make mpirun kill the job before rank 0 has said why. */
    return g_mpi_rank == 0 ? ret : EXIT_OK;
}
