/*
 * memory.h — a store whose keys live in memory (for fuzz targets and tests).
 */
#ifndef LB_STORE_MEMORY_H
#define LB_STORE_MEMORY_H

#include "store/store.h"

/* A new, empty, writable memory store (one reference). */
int lb__store_memory(lb__store **out, lb_error *err);

#endif /* LB_STORE_MEMORY_H */
