/*
 * mpi_driver.h — labelbin-mpi: the `labelbin` tool under MPI. mpi_main.c
 * starts MPI, keeps every rank but 0 quiet and runs the tool's commands;
 * mpi_write.c is the write driver that binarize, mask and run call
 * (commands.h, write_driver) to share the output's blocks between ranks.
 */
#ifndef LABELBIN_MPI_DRIVER_H
#define LABELBIN_MPI_DRIVER_H

#include <labelbin.h>

#include <stdio.h>

/* Set by mpi_main before the command runs. */
extern int g_mpi_rank, g_mpi_size;
/* Rank > 0: what the command printed on stderr (captured, not shown). */
extern FILE *g_mpi_captured;

/* The write driver (installed in g_write_driver): every rank that reaches
 * it calls it once; rank 0 begins the output, the others attach, blocks
 * are handed out on request, results are reduced to rank 0. */
int mpi_materialize(const lb_array *a, const char *dest, const lb_write_options *opt,
                    lb_write_stats *stats, lb_error *err);
/* The mask's unlisted ids met by the reads of every rank (after the
 * driver ran), else this rank's. */
size_t mpi_unlisted_ids(const lb_array *a, lb_id *ids, size_t max);

/* For a rank whose command ended without reaching the driver (a failure
 * before writing, or a command that does not write): take part in the
 * agreement the driver opens with, so that the ranks that did reach it
 * stop too; rank 0 then reports this rank's message. Returns at once when
 * no rank reached the driver. */
void mpi_not_written(int exit_code);

#endif /* LABELBIN_MPI_DRIVER_H */
