/*
 * log.h — the library's only way to say something outside an lb_error:
 * lines handed to the process-wide handler set by lb_set_log_handler, never
 * printed. Internal: `lb__` prefix, never installed.
 */
#ifndef LB_CORE_LOG_H
#define LB_CORE_LOG_H

#include "core/util.h"

/* 1 when a message of `level` (LB_LOG_*) would reach a handler: a relaxed
 * atomic load, cheap enough to guard work done only for a message. */
int lb__log_enabled(int level);
/* Format a message (no trailing newline) and hand it to the handler when
 * `level` is at most the level set with it; nothing otherwise. Safe from
 * any thread. */
void lb__log(int level, const char *fmt, ...) LB__PRINTF(2, 3);

#endif /* LB_CORE_LOG_H */
