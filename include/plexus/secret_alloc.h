/*
 * libsodium's guarded heap as a plexus_alloc, for key material in hosts of the core:
 * the NIF and the C node hand it to the beacon codec as `secret_alloc` (beacon.h). The
 * core itself never includes this header (it takes its allocators as arguments,
 * doc/STYLE.md habit 1); the plain heap is system_alloc.h.
 *
 * sodium_malloc puts each block between guard pages, mlocks it and sodium_free wipes
 * it, so keys are neither swapped out nor left behind in freed memory. The host must
 * have called sodium_init() first. Key blocks are allocated once and never resized:
 * growing one would leave a copy of the old block behind, so realloc of a live block
 * fails (NULL) and only realloc(NULL, n) allocates. Zero-size requests ask for one
 * byte, as in system_alloc.h.
 */
#ifndef PLEXUS_SECRET_ALLOC_H
#define PLEXUS_SECRET_ALLOC_H

#include <sodium.h>

#include "plexus/common.h"

static inline void *plexus_secret_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return sodium_malloc(n ? n : 1);
}

static inline void *plexus_secret_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return p ? NULL : sodium_malloc(n ? n : 1);
}

static inline void plexus_secret_free(void *ctx, void *p)
{
    (void)ctx;
    if (p) sodium_free(p);
}

static inline const plexus_alloc *plexus_secret_alloc(void)
{
    static const plexus_alloc sodium_heap = {plexus_secret_malloc, plexus_secret_realloc,
                                             plexus_secret_free, NULL};
    return &sodium_heap;
}

#endif
