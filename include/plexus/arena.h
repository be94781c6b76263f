/*
 * Scratch arena: bump allocation in blocks that never move, released back to a mark.
 * A walk takes a mark before the scratch of one step (a leaf merge: its decoded
 * entries and dots) and releases to it when the step is done; everything goes at
 * once with plexus_arena_free.
 *
 * Released blocks of the standard size are kept and reused until the arena is freed:
 * a walk whose mark sits near the end of a block would otherwise allocate and free a
 * block for every step (measured in the trie merge NIF: 15% of a full merge).
 * Requests larger than a block get a block of their own, freed on release.
 *
 * Built with AddressSanitizer, every request is a block of its own, exactly its size,
 * so that a read or write past one is reported (a shared block would hide it).
 */
#ifndef PLEXUS_ARENA_H
#define PLEXUS_ARENA_H

#include <stddef.h>

#include "plexus/common.h"

#define PLEXUS_ARENA_BLOCK (64u * 1024u)

typedef struct plexus_arena_block plexus_arena_block;

typedef struct plexus_arena {
    plexus_arena_block *head;  /* in use, newest first */
    plexus_arena_block *spare; /* released, of PLEXUS_ARENA_BLOCK bytes */
    const plexus_alloc *a;
} plexus_arena;

typedef struct plexus_arena_mark {
    plexus_arena_block *blk;
    size_t used;
} plexus_arena_mark;

PLEXUS_API void plexus_arena_init(plexus_arena *ar, const plexus_alloc *a);
/* n bytes aligned for any object, or NULL when the allocator fails. */
PLEXUS_API void *plexus_arena_alloc(plexus_arena *ar, size_t n);
PLEXUS_API plexus_arena_mark plexus_arena_mark_get(const plexus_arena *ar);
/* Gives back everything allocated since the mark was taken. */
PLEXUS_API void plexus_arena_release(plexus_arena *ar, plexus_arena_mark m);
/* Frees every block, in use or spare; the arena is empty and usable again. */
PLEXUS_API void plexus_arena_free(plexus_arena *ar);

#endif
