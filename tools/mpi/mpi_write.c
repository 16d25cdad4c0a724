/*
 * mpi_write.c — the write driver of labelbin-mpi (public API only): rank 0
 * begins the output (lb_write_begin) before any rank writes, the others
 * attach; every rank then asks rank 0 for a range of blocks when it has
 * finished its last one (guided self-scheduling: a range is a share of
 * what is left, never less than the rank's threads), so cheap regions do
 * not leave ranks idle. Rank 0 works too, in a thread of its own, while
 * its main thread answers requests. A failure or a signal on any rank
 * stops every rank after its chunks in flight; statistics and the mask's
 * unlisted ids are reduced to rank 0, which finishes the output.
 *
 * Only main threads call MPI (MPI_THREAD_FUNNELED); lb_write_blocks runs
 * in a compute thread per rank, stopped through its cancel flag.
 */
#define _GNU_SOURCE 1 /* sched_getaffinity, CPU_COUNT */
#include "../cli.h"
#include "../commands.h"
#include "mpi_driver.h"

#include <inttypes.h>
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { TAG_REPORT = 1401, TAG_ORDER, TAG_MESSAGE, TAG_OUTCOME };
enum { ORDER_WORK = 1, ORDER_DONE, ORDER_STOP };

/* Worker rank -> rank 0: how the last range went, and a request for more. */
typedef struct report {
    int64_t status;   /* 0, LB_ECANCELED or the error code             */
    int64_t blocks;   /* blocks of the range finished or skipped       */
    int64_t threads;  /* this rank's threads, for sizing its ranges    */
    char message[LB_ERROR_MESSAGE_SIZE];
} report;

/* Rank 0 -> a worker rank, in order (one tag, so never overtaken): a range
 * to do, no more work, or stop the range in hand. */
typedef struct order {
    int64_t kind, first, count;
} order;

static int g_entered;            /* this rank reached the driver           */
static lb_id g_unlisted[LB_MASK_UNLISTED_MAX];
static size_t g_n_unlisted;
static int g_have_unlisted;

/* MPI_Recv that waits asleep: MPI implementations spin in a blocking
 * receive, which takes a core from the compute threads of the ranks on
 * the same node (rank 0's above all) while a rank waits for its next
 * range or for the end. Half a millisecond of latency costs nothing here. */
static void gentle_recv(void *buf, int count, MPI_Datatype type, int source, int tag)
{
    int flag = 0;
    for (;;) {
        MPI_Iprobe(source, tag, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
        if (flag)
            break;
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
    }
    MPI_Recv(buf, count, type, source, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

/* ------------------------------------------------------------------------
 * Agreement: every rank's status, the first failure's message to rank 0
 * ------------------------------------------------------------------------ */

/* Collective: each rank gives its code (0 = fine); returns the lowest rank
 * whose code is not 0 (or -1) and, on rank 0, that rank's error in *err
 * (prefixed "rank K: " unless it is rank 0). `mine` is this rank's error. */
static int agree(int code, const lb_error *mine, lb_error *err, int *code_out)
{
    int *codes = calloc((size_t)g_mpi_size, sizeof *codes), bad = -1;
    if (!codes)
        MPI_Abort(MPI_COMM_WORLD, EXIT_FAIL);
    MPI_Allgather(&code, 1, MPI_INT, codes, 1, MPI_INT, MPI_COMM_WORLD);
    for (int r = 0; r < g_mpi_size && bad < 0; r++)
        if (codes[r] != 0)
            bad = r;
    if (bad >= 0) {
        *code_out = codes[bad];
        if (bad > 0 && g_mpi_rank == bad)
            MPI_Send(mine, (int)sizeof *mine, MPI_BYTE, 0, TAG_MESSAGE, MPI_COMM_WORLD);
        if (g_mpi_rank == 0 && err) {
            lb_error got = {0};
            if (bad > 0)
                MPI_Recv(&got, (int)sizeof got, MPI_BYTE, bad, TAG_MESSAGE, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
            else
                got = *mine;
            got.message[sizeof got.message - 1] = '\0';
            err->code = codes[bad];
            if (bad > 0)
                snprintf(err->message, sizeof err->message, "rank %d: %s", bad,
                         got.message[0] ? got.message : lb_strerror(codes[bad]));
            else
                memcpy(err->message, got.message, sizeof err->message);
        }
    }
    free(codes);
    return bad;
}

/* The first line of what this rank printed on stderr, without the
 * "labelbin: " every message starts with. */
static void captured_message(char *buf, size_t size)
{
    buf[0] = '\0';
    if (!g_mpi_captured)
        return;
    fflush(stderr);
    rewind(g_mpi_captured);
    if (!fgets(buf, (int)size, g_mpi_captured))
        buf[0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    if (strncmp(buf, "labelbin: ", 10) == 0)
        memmove(buf, buf + 10, strlen(buf + 10) + 1);
}

/* The exit codes of the tool map to library codes for agree(): a usage
 * error stays one (cmd_write turns LB_EINVAL back into exit status 2). */
static int code_of_exit(int exit_code)
{
    if (exit_code == EXIT_OK)
        return LB_ECANCELED; /* stopped before writing, without a failure */
    if (exit_code == EXIT_USAGE)
        return LB_EINVAL;
    if (exit_code >= 128)
        return LB_ECANCELED;
    return LB_EIO;
}

void mpi_not_written(int exit_code)
{
    int pair[2] = {0, code_of_exit(exit_code)}, *all;
    lb_error mine = {0};
    if (g_entered)
        return;
    all = calloc((size_t)g_mpi_size * 2, sizeof *all);
    if (!all)
        MPI_Abort(MPI_COMM_WORLD, EXIT_FAIL);
    /* The same collective the driver opens with. */
    MPI_Allgather(pair, 2, MPI_INT, all, 2, MPI_INT, MPI_COMM_WORLD);
    int any_entered = 0, first_out = -1;
    for (int r = 0; r < g_mpi_size; r++) {
        any_entered |= all[2 * r];
        if (!all[2 * r] && first_out < 0)
            first_out = r;
    }
    /* Rank 0 in the driver waits for the first rank that is not. */
    if (any_entered && all[0] && first_out == g_mpi_rank) {
        mine.code = pair[1];
        captured_message(mine.message, sizeof mine.message);
        if (!mine.message[0])
            snprintf(mine.message, sizeof mine.message, "stopped before writing (exit status %d)",
                     exit_code);
        MPI_Send(&mine, (int)sizeof mine, MPI_BYTE, 0, TAG_MESSAGE, MPI_COMM_WORLD);
    }
    free(all);
}

/* The driver's side of that first collective: 0 when every rank is here;
 * else rank 0 has the first absent rank's message in *err. */
static int entry_agreement(lb_error *err)
{
    int pair[2] = {1, 0}, *all, rc = 0;
    all = calloc((size_t)g_mpi_size * 2, sizeof *all);
    if (!all)
        MPI_Abort(MPI_COMM_WORLD, EXIT_FAIL);
    MPI_Allgather(pair, 2, MPI_INT, all, 2, MPI_INT, MPI_COMM_WORLD);
    for (int r = 0; r < g_mpi_size && rc == 0; r++) {
        if (all[2 * r])
            continue;
        rc = all[2 * r + 1];
        if (g_mpi_rank == 0) {
            lb_error got = {0};
            MPI_Recv(&got, (int)sizeof got, MPI_BYTE, r, TAG_MESSAGE, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
            got.message[sizeof got.message - 1] = '\0';
            err->code = rc;
            snprintf(err->message, sizeof err->message, "rank %d: %s", r, got.message);
        }
    }
    free(all);
    return rc;
}

/* ------------------------------------------------------------------------
 * The ranks' shared state and the compute thread
 * ------------------------------------------------------------------------ */

typedef struct rank_state {
    lb_write_job *job;
    const lb_write_options *opt; /* the command's (rank 0: its progress)   */
    int threads;
    int64_t n;                   /* blocks of the output                   */
    volatile int cancel;         /* the job's cancel flag                  */
    lb_write_stats stats;        /* this rank's, summed over its ranges    */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* rank 0: the blocks not handed out yet, and whether to hand out more */
    int64_t next;
    int stop;
    int64_t progressed;          /* blocks done by all ranks so far        */
    int64_t call_done;           /* blocks done in the local call so far   */
    /* the compute thread's current range and its result */
    int64_t first, count;
    int busy, quit, idle;
    int rc;
    lb_error err;
    int64_t range_blocks;
} rank_state;

static void report_progress(rank_state *s)
{
    if (g_mpi_rank == 0 && s->opt->progress)
        s->opt->progress(s->opt->progress_user, s->progressed, s->n);
}

/* lb_write_blocks's progress (rank 0's own blocks), as global progress. */
static void local_progress(void *user, int64_t done, int64_t total)
{
    rank_state *s = user;
    (void)total;
    pthread_mutex_lock(&s->mu);
    s->progressed += done - s->call_done;
    s->call_done = done;
    report_progress(s);
    pthread_mutex_unlock(&s->mu);
}

/* A range for a rank with `threads` threads: a quarter of an even share of
 * what is left, at least one block per thread. Called under s->mu. */
static int64_t next_range(rank_state *s, int64_t threads, int64_t *first)
{
    int64_t left = s->n - s->next, k;
    if (s->stop || left <= 0)
        return 0;
    k = left / (4 * (int64_t)g_mpi_size);
    if (k < threads)
        k = threads;
    if (k > left)
        k = left;
    *first = s->next;
    s->next += k;
    return k;
}

static int64_t blocks_of(const lb_write_stats *st)
{
    return st->blocks_done + st->blocks_skipped;
}

/* Run one range; the result goes to s->rc / s->err. */
static void run_range(rank_state *s, int64_t first, int64_t count)
{
    lb_error e = {0};
    int64_t before = blocks_of(&s->stats);
    int rc;
    pthread_mutex_lock(&s->mu);
    s->call_done = 0;
    pthread_mutex_unlock(&s->mu);
    rc = lb_write_blocks(s->job, first, count, s->threads, &s->stats, &e);
    pthread_mutex_lock(&s->mu);
    s->range_blocks = blocks_of(&s->stats) - before;
    if (rc < 0 && s->rc == 0) {
        s->rc = rc;
        s->err = e;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Rank 0's compute thread: takes ranges itself until none are left. */
static void *root_compute(void *arg)
{
    rank_state *s = arg;
    for (;;) {
        int64_t first = 0, count;
        pthread_mutex_lock(&s->mu);
        count = s->rc == 0 ? next_range(s, s->threads, &first) : 0;
        pthread_mutex_unlock(&s->mu);
        if (count == 0)
            break;
        run_range(s, first, count);
    }
    pthread_mutex_lock(&s->mu);
    s->idle = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* A worker rank's compute thread: runs the ranges its main thread gives. */
static void *worker_compute(void *arg)
{
    rank_state *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->busy && !s->quit)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->quit)
            break;
        int64_t first = s->first, count = s->count;
        pthread_mutex_unlock(&s->mu);
        run_range(s, first, count);
        pthread_mutex_lock(&s->mu);
        s->busy = 0;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Wait up to `us` microseconds for the condition variable. */
static void timed_wait(rank_state *s, long us)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += us * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
    }
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* Stop this rank's lb_write_blocks after its chunks in flight (its worker
 * threads read the flag). */
static void cancel_compute(rank_state *s)
{
    __atomic_store_n(&s->cancel, 1, __ATOMIC_RELAXED);
}

static int signalled(const rank_state *s)
{
    return s->opt->cancel && __atomic_load_n(s->opt->cancel, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------------
 * Rank 0: hand out ranges, collect reports, stop everyone on a failure
 * ------------------------------------------------------------------------ */

typedef struct outcome {
    int64_t code;   /* 0, LB_ECANCELED or the failing rank's code */
    int64_t rank;
    char message[LB_ERROR_MESSAGE_SIZE];
} outcome;

static void root_loop(rank_state *s, outcome *out)
{
    int active = g_mpi_size - 1, *busy = calloc((size_t)g_mpi_size, sizeof *busy), stopped = 0;
    pthread_t tid;
    int local = pthread_create(&tid, NULL, root_compute, s) == 0;
    if (!busy)
        MPI_Abort(MPI_COMM_WORLD, EXIT_FAIL);
    if (!local)
        root_compute(s); /* no thread: rank 0's share first, then serve */
    memset(out, 0, sizeof *out);
    for (;;) {
        int flag = 0, idle;
        MPI_Status st;
        pthread_mutex_lock(&s->mu);
        /* The first failure or signal decides the outcome. */
        if (!out->code && s->rc < 0 && s->rc != LB_ECANCELED) {
            out->code = s->rc;
            out->rank = 0;
            memcpy(out->message, s->err.message, sizeof out->message);
        }
        if (!out->code && (signalled(s) || s->rc == LB_ECANCELED))
            out->code = LB_ECANCELED;
        if (out->code && !stopped) {
            s->stop = 1;
            cancel_compute(s);
        }
        idle = s->idle || !local;
        pthread_mutex_unlock(&s->mu);
        if (out->code && !stopped) {
            order o = {ORDER_STOP, 0, 0};
            for (int r = 1; r < g_mpi_size; r++)
                if (busy[r])
                    MPI_Send(&o, 3, MPI_INT64_T, r, TAG_ORDER, MPI_COMM_WORLD);
            stopped = 1;
        }
        if (active == 0 && idle)
            break;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_REPORT, MPI_COMM_WORLD, &flag, &st);
        if (!flag) {
            /* Woken early once when the compute thread runs out of work. */
            pthread_mutex_lock(&s->mu);
            timed_wait(s, 1000);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        report rep;
        order o = {ORDER_DONE, 0, 0};
        int k = st.MPI_SOURCE;
        MPI_Recv(&rep, (int)sizeof rep, MPI_BYTE, k, TAG_REPORT, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
        rep.message[sizeof rep.message - 1] = '\0';
        busy[k] = 0;
        pthread_mutex_lock(&s->mu);
        s->progressed += rep.blocks;
        if (rep.blocks)
            report_progress(s);
        if (!out->code && rep.status < 0) {
            out->code = rep.status;
            out->rank = k;
            memcpy(out->message, rep.message, sizeof out->message);
            s->stop = 1;
            cancel_compute(s);
        }
        if (!out->code)
            o.count = next_range(s, rep.threads, &o.first);
        pthread_mutex_unlock(&s->mu);
        if (o.count > 0) {
            o.kind = ORDER_WORK;
            busy[k] = 1;
        } else {
            active--;
        }
        MPI_Send(&o, 3, MPI_INT64_T, k, TAG_ORDER, MPI_COMM_WORLD);
    }
    if (local)
        pthread_join(tid, NULL);
    free(busy);
}

/* ------------------------------------------------------------------------
 * Other ranks: ask, compute, report; stop when told
 * ------------------------------------------------------------------------ */

static void worker_loop(rank_state *s)
{
    pthread_t tid;
    report rep;
    int started = pthread_create(&tid, NULL, worker_compute, s) == 0;
    memset(&rep, 0, sizeof rep);
    rep.threads = s->threads;
    for (;;) {
        order o;
        MPI_Send(&rep, (int)sizeof rep, MPI_BYTE, 0, TAG_REPORT, MPI_COMM_WORLD);
        /* Skip stops meant for the range just reported. */
        do
            gentle_recv(&o, 3, MPI_INT64_T, 0, TAG_ORDER);
        while (o.kind == ORDER_STOP);
        if (o.kind != ORDER_WORK)
            break;
        pthread_mutex_lock(&s->mu);
        s->first = o.first;
        s->count = o.count;
        s->busy = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        if (!started) { /* no thread: compute here, deaf to stops meanwhile */
            run_range(s, o.first, o.count);
            s->busy = 0;
        }
        for (;;) {
            int flag = 0, busy;
            pthread_mutex_lock(&s->mu);
            if (s->busy)
                timed_wait(s, 1000);
            busy = s->busy;
            pthread_mutex_unlock(&s->mu);
            if (!busy)
                break;
            if (signalled(s))
                cancel_compute(s);
            MPI_Iprobe(0, TAG_ORDER, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
            if (flag) { /* only a stop can come while a range is in hand */
                MPI_Recv(&o, 3, MPI_INT64_T, 0, TAG_ORDER, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                cancel_compute(s);
            }
        }
        memset(&rep, 0, sizeof rep);
        rep.threads = s->threads;
        pthread_mutex_lock(&s->mu);
        rep.blocks = s->range_blocks;
        rep.status = s->rc;
        memcpy(rep.message, s->err.message, sizeof rep.message);
        /* A range stopped by a signal here still reports the signal. */
        if (rep.status == 0 && signalled(s))
            rep.status = LB_ECANCELED;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (started)
        pthread_join(tid, NULL);
}

/* ------------------------------------------------------------------------
 * Threads per rank; the reductions
 * ------------------------------------------------------------------------ */

/* -j N, else the node's cores shared among its ranks, at most the cores
 * this rank may run on (mpirun binds ranks to cores when there are few). */
static int threads_per_rank(const lb_write_options *opt, int *local_ranks)
{
    MPI_Comm node;
    int local = 1, cpus = (int)sysconf(_SC_NPROCESSORS_ONLN), mine = cpus, t;
    cpu_set_t set;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    *local_ranks = local;
    if (opt->threads > 0)
        return opt->threads;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        mine = CPU_COUNT(&set);
    t = cpus / (local > 0 ? local : 1);
    if (t > mine)
        t = mine;
    return t > 0 ? t : 1;
}

/* Sum every rank's statistics into rank 0's `into`. */
static void reduce_stats(const lb_write_stats *mine, lb_write_stats *into, size_t nch)
{
    size_t n = 6 + nch;
    int64_t *v = calloc(n, sizeof *v), *sum = calloc(n, sizeof *sum);
    if (!v || !sum)
        MPI_Abort(MPI_COMM_WORLD, EXIT_FAIL);
    v[0] = mine->blocks_done;
    v[1] = mine->blocks_skipped;
    v[2] = mine->chunks_written;
    v[3] = mine->chunks_empty;
    v[4] = mine->bytes_written;
    v[5] = mine->threads;
    for (size_t c = 0; c < nch; c++)
        v[6 + c] = mine->positive ? mine->positive[c] : 0;
    MPI_Reduce(v, sum, (int)n, MPI_INT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    if (g_mpi_rank == 0 && into) {
        into->blocks_done = sum[0];
        into->blocks_skipped = sum[1];
        into->chunks_written = sum[2];
        into->chunks_empty = sum[3];
        into->bytes_written = sum[4];
        into->threads = (int)sum[5];
        for (size_t c = 0; c < nch && c < into->positive_len && into->positive; c++)
            into->positive[c] = sum[6 + c];
    }
    free(v);
    free(sum);
}

static int id_cmp(const void *pa, const void *pb)
{
    const lb_id *a = pa, *b = pb;
    if (a->negative != b->negative)
        return a->negative ? -1 : 1;
    if (a->negative)
        return (int64_t)a->bits < (int64_t)b->bits ? -1 : (int64_t)a->bits > (int64_t)b->bits;
    return a->bits < b->bits ? -1 : a->bits > b->bits;
}

/* The mask's unlisted ids of all ranks, merged on rank 0 (ascending, at
 * most LB_MASK_UNLISTED_MAX, as lb_mask_unlisted_ids gives them). */
static void gather_unlisted(const lb_array *a)
{
    enum { M = LB_MASK_UNLISTED_MAX };
    uint64_t mine[2 * M + 1], *all = NULL;
    lb_id ids[M];
    size_t n = lb_mask_unlisted_ids(a, ids, M), total = 0;
    if (n > M)
        n = M;
    memset(mine, 0, sizeof mine);
    mine[0] = n;
    for (size_t i = 0; i < n; i++) {
        mine[1 + 2 * i] = ids[i].bits;
        mine[2 + 2 * i] = (uint64_t)ids[i].negative;
    }
    if (g_mpi_rank == 0) {
        all = calloc((size_t)g_mpi_size * (2 * M + 1), sizeof *all);
        if (!all)
            MPI_Abort(MPI_COMM_WORLD, EXIT_FAIL);
    }
    MPI_Gather(mine, 2 * M + 1, MPI_UINT64_T, all, 2 * M + 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (g_mpi_rank != 0)
        return;
    lb_id *merged = calloc((size_t)g_mpi_size * M, sizeof *merged);
    if (!merged)
        MPI_Abort(MPI_COMM_WORLD, EXIT_FAIL);
    for (int r = 0; r < g_mpi_size; r++) {
        const uint64_t *v = all + (size_t)r * (2 * M + 1);
        for (uint64_t i = 0; i < v[0] && i < M; i++) {
            merged[total].bits = v[1 + 2 * i];
            merged[total].negative = (int)v[2 + 2 * i];
            total++;
        }
    }
    qsort(merged, total, sizeof *merged, id_cmp);
    g_n_unlisted = 0;
    for (size_t i = 0; i < total && g_n_unlisted < M; i++)
        if (g_n_unlisted == 0 || id_cmp(&merged[i], &g_unlisted[g_n_unlisted - 1]) != 0)
            g_unlisted[g_n_unlisted++] = merged[i];
    g_have_unlisted = 1;
    free(merged);
    free(all);
}

size_t mpi_unlisted_ids(const lb_array *a, lb_id *ids, size_t max)
{
    if (!g_have_unlisted)
        return lb_mask_unlisted_ids(a, ids, max);
    for (size_t i = 0; i < g_n_unlisted && i < max; i++)
        ids[i] = g_unlisted[i];
    return g_n_unlisted;
}

/* ------------------------------------------------------------------------
 * The driver
 * ------------------------------------------------------------------------ */

int mpi_materialize(const lb_array *a, const char *dest, const lb_write_options *opt,
                    lb_write_stats *stats, lb_error *err)
{
    rank_state s;
    lb_write_options o;
    lb_error mine = {0};
    outcome out;
    int rc, code = 0, local_ranks = 1;
    size_t nch = stats && stats->positive ? stats->positive_len : 0;

    g_entered = 1;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    s.opt = opt;
    if (stats) {
        if (nch)
            memset(stats->positive, 0, nch * sizeof *stats->positive);
        stats->blocks_done = stats->blocks_skipped = stats->chunks_written = 0;
        stats->chunks_empty = stats->bytes_written = 0;
        stats->threads = 0;
    }
    s.stats.positive = nch ? calloc(nch, sizeof *s.stats.positive) : NULL;
    s.stats.positive_len = s.stats.positive ? nch : 0;

    rc = entry_agreement(err);
    if (rc != 0)
        goto done;
    s.threads = threads_per_rank(opt, &local_ranks);

    /* The job's progress and cancel are the driver's: rank 0 reports all
     * ranks' blocks; a rank stops on its signal or when rank 0 says so. */
    o = *opt;
    o.cancel = &s.cancel;
    o.progress = g_mpi_rank == 0 && opt->progress ? local_progress : NULL;
    o.progress_user = &s;

    /* Rank 0 prepares DEST before anyone else opens it. */
    if (g_mpi_rank == 0)
        rc = lb_write_begin(a, dest, &o, &s.job, &mine);
    if (agree(rc, &mine, err, &code) >= 0) {
        rc = code;
        goto done;
    }
    if (g_mpi_rank > 0) {
        rc = lb_write_attach(a, dest, &o, &s.job, &mine);
        if (rc < 0) {
            /* Begin went well: what is there now is this job's output. */
            size_t len = strlen(mine.message);
            snprintf(mine.message + len, sizeof mine.message - len,
                     "; %s is incomplete: run again with --resume to finish it", dest);
        }
    }
    if (agree(rc, &mine, err, &code) >= 0) {
        rc = code;
        goto done;
    }
    s.n = lb_write_block_count(s.job);
    if (stats)
        stats->blocks_total = s.n;
    if (g_mpi_rank == 0) {
        verbose("%d MPI rank%s (%d on this node), %d thread%s each, %" PRId64 " blocks",
                g_mpi_size, g_mpi_size == 1 ? "" : "s", local_ranks, s.threads,
                s.threads == 1 ? "" : "s", s.n);
        root_loop(&s, &out);
    } else {
        worker_loop(&s);
    }

    /* Everyone learns how it ended (ranks done early wait asleep for the
     * last ones); rank 0 gets the sums. */
    if (g_mpi_rank == 0)
        for (int r = 1; r < g_mpi_size; r++)
            MPI_Send(&out, (int)sizeof out, MPI_BYTE, r, TAG_OUTCOME, MPI_COMM_WORLD);
    else
        gentle_recv(&out, (int)sizeof out, MPI_BYTE, 0, TAG_OUTCOME);
    reduce_stats(&s.stats, stats, nch);
    gather_unlisted(a);
    rc = (int)out.code;
    if (rc == 0 && g_mpi_rank == 0)
        rc = lb_write_finish(s.job, err);
    else if (rc < 0 && rc != LB_ECANCELED && g_mpi_rank == 0) {
        err->code = rc;
        if (out.rank > 0)
            snprintf(err->message, sizeof err->message, "rank %d: %s", (int)out.rank,
                     out.message);
        else
            memcpy(err->message, out.message, sizeof err->message);
    } else if (rc == LB_ECANCELED && err) {
        err->code = rc;
        snprintf(err->message, sizeof err->message, "%s: interrupted; run again with --resume "
                 "to finish", dest);
    }
done:
    lb_write_job_free(s.job);
    free(s.stats.positive);
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);
    return rc;
}
