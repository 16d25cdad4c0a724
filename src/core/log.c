/*
 * log.c — the process-wide log handler (lb_set_log_handler) and lb__log,
 * which formats a message and passes it on. The library itself never
 * writes to stderr: a program that sets no handler hears nothing.
 */
#include "core/log.h"
#include "core/path.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

/* The level is read without the lock (the cheap check before formatting);
 * the handler and its user pointer change together under `mu`, which is
 * also held while the handler runs: calls never overlap, and once
 * lb_set_log_handler returns the previous handler is not running and is
 * never called again. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int max_level = 0; /* 0: no handler */
static lb_log_fn handler = NULL;
static void *handler_user = NULL;

/* A fork while another thread runs the handler must not leave the child's
 * copy of `mu` locked forever (a DataLoader forks its workers): the lock is
 * taken around fork() and released on both sides. */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void lock_mu(void) { pthread_mutex_lock(&mu); }
static void unlock_mu(void) { pthread_mutex_unlock(&mu); }
static void register_atfork(void) { pthread_atfork(lock_mu, unlock_mu, unlock_mu); }

void lb_set_log_handler(lb_log_fn fn, void *user, int level) {
    if (level < 0) level = 0;
    if (level > LB_LOG_DEBUG) level = LB_LOG_DEBUG;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&mu);
    handler = fn;
    handler_user = user;
    atomic_store_explicit(&max_level, fn ? level : 0, memory_order_relaxed);
    pthread_mutex_unlock(&mu);
}

int lb__log_enabled(int level) {
    return level >= LB_LOG_ERROR && level <= atomic_load_explicit(&max_level, memory_order_relaxed);
}

void lb__log(int level, const char *fmt, ...) {
    if (!lb__log_enabled(level)) return;
    char msg[2 * LB_ERROR_MESSAGE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lb__hide_credentials(msg);
    pthread_mutex_lock(&mu);
    /* the handler may have changed since the check above */
    if (handler && level <= atomic_load_explicit(&max_level, memory_order_relaxed))
        handler(handler_user, level, msg);
    pthread_mutex_unlock(&mu);
}
