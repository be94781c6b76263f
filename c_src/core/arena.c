/* The scratch arena; see plexus/arena.h. */
#include "plexus/arena.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_EXACT 1
#else
#define ARENA_EXACT 0
#endif

struct plexus_arena_block {
    plexus_arena_block *next;
    size_t cap, used;
    max_align_t data[];
};

void plexus_arena_init(plexus_arena *ar, const plexus_alloc *a)
{
    ar->head = ar->spare = NULL;
    ar->a = a;
}

void *plexus_arena_alloc(plexus_arena *ar, size_t n)
{
    const size_t align = sizeof(max_align_t);
    if (!ARENA_EXACT) {
        if (n > SIZE_MAX - align) return NULL;
        n = (n + align - 1) / align * align;
    }
    plexus_arena_block *b = ar->head;
    if (ARENA_EXACT || !b || b->cap - b->used < n) {
        if (!ARENA_EXACT && n <= PLEXUS_ARENA_BLOCK && ar->spare) {
            b = ar->spare;
            ar->spare = b->next;
        } else {
            size_t cap = ARENA_EXACT || n > PLEXUS_ARENA_BLOCK ? n : PLEXUS_ARENA_BLOCK;
            if (cap > SIZE_MAX - sizeof *b) return NULL;
            b = ar->a->malloc(ar->a->ctx, sizeof *b + cap);
            if (!b) return NULL;
            b->cap = cap;
        }
        b->next = ar->head;
        b->used = 0;
        ar->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

plexus_arena_mark plexus_arena_mark_get(const plexus_arena *ar)
{
    plexus_arena_mark m = {ar->head, ar->head ? ar->head->used : 0};
    return m;
}

void plexus_arena_release(plexus_arena *ar, plexus_arena_mark m)
{
    while (ar->head && ar->head != m.blk) {
        plexus_arena_block *b = ar->head;
        ar->head = b->next;
        if (!ARENA_EXACT && b->cap == PLEXUS_ARENA_BLOCK) {
            b->next = ar->spare;
            ar->spare = b;
        } else {
            ar->a->free(ar->a->ctx, b);
        }
    }
    if (ar->head) ar->head->used = m.used;
}

void plexus_arena_free(plexus_arena *ar)
{
    plexus_arena_release(ar, (plexus_arena_mark){NULL, 0});
    while (ar->spare) {
        plexus_arena_block *b = ar->spare;
        ar->spare = b->next;
        ar->a->free(ar->a->ctx, b);
    }
}
