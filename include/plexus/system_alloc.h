/*
 * The C library heap as a plexus_alloc, for hosts of the core: the C node, the fuzz
 * targets and the benchmark tools. The core itself never includes this header (it
 * takes its allocator as an argument, doc/STYLE.md habit 1); the NIF uses enif_alloc and
 * the tests the fault-injecting allocator instead.
 *
 * malloc(0) may return NULL, which the core would read as out of memory, so zero-size
 * requests ask for one byte.
 */
#ifndef PLEXUS_SYSTEM_ALLOC_H
#define PLEXUS_SYSTEM_ALLOC_H

#include <stdlib.h>

#include "plexus/common.h"

static inline void *plexus_sys_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n ? n : 1);
}

static inline void *plexus_sys_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n ? n : 1);
}

static inline void plexus_sys_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static inline const plexus_alloc *plexus_system_alloc(void)
{
    static const plexus_alloc heap = {plexus_sys_malloc, plexus_sys_realloc, plexus_sys_free, NULL};
    return &heap;
}

#endif
