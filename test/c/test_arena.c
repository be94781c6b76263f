/*
 * Tests of the scratch arena (include/plexus/arena.h) under the fault-injecting,
 * leak-counting allocator: allocations are aligned and disjoint, a release gives back
 * everything since its mark, released blocks are reused rather than allocated again,
 * large requests get blocks of their own, every allocation failure leaves nothing
 * behind. The reuse is what the trie merge NIF relies on for speed; built with ASan
 * (the ctest-san run) the arena gives every request its own block instead, and the
 * checks that are about reuse are skipped there.
 */
#include <stdalign.h>
#include <stdint.h>

#include "harness.h"
#include "plexus/arena.h"

#if defined(__SANITIZE_ADDRESS__)
#define EXACT 1
#else
#define EXACT 0
#endif

static int aligned(const void *p)
{
    return (uintptr_t)p % alignof(max_align_t) == 0;
}

static void test_allocations_are_aligned_and_disjoint(void)
{
    plexus_arena ar;
    plexus_arena_init(&ar, &test_alloc);
    uint8_t *p[300];
    size_t n[300];
    for (size_t i = 0; i < 300; i++) {
        n[i] = 1 + (i * 37) % 700; /* ~100 KiB in all: more than one block */
        p[i] = plexus_arena_alloc(&ar, n[i]);
        CHECK(p[i] != NULL);
        if (!p[i]) break;
        CHECK(aligned(p[i]));
        memset(p[i], (int)(i & 0xff), n[i]);
    }
    for (size_t i = 0; i < 300 && p[i]; i++)
        for (size_t k = 0; k < n[i]; k++)
            if (p[i][k] != (uint8_t)(i & 0xff)) {
                CHECK(!"an allocation was overwritten by another");
                i = 300;
                break;
            }
    plexus_arena_free(&ar);
}

static void test_release_gives_back_to_the_mark(void)
{
    plexus_arena ar;
    plexus_arena_init(&ar, &test_alloc);
    void *keep = plexus_arena_alloc(&ar, 100);
    CHECK(keep != NULL);
    long live = fault_live();
    plexus_arena_mark m = plexus_arena_mark_get(&ar);
    void *first = plexus_arena_alloc(&ar, 48);
    for (int i = 0; i < 50; i++)
        CHECK(plexus_arena_alloc(&ar, 4000) != NULL); /* crosses into more blocks */
    plexus_arena_release(&ar, m);
    if (EXACT) {
        CHECK_EQ_INT(fault_live(), live); /* every request was its own block */
    } else {
        /* the same memory again, right after what was kept */
        CHECK(plexus_arena_alloc(&ar, 48) == first);
    }
    plexus_arena_free(&ar);
}

/* A walk that releases to a mark near the end of a block, step after step, allocates
 * no new block after the first steps: the released ones are reused. */
static void test_released_blocks_are_reused(void)
{
    plexus_arena ar;
    plexus_arena_init(&ar, &test_alloc);
    CHECK(plexus_arena_alloc(&ar, PLEXUS_ARENA_BLOCK - 64) != NULL); /* mark near the end */
    plexus_arena_mark m = plexus_arena_mark_get(&ar);
    long after_first_step = 0;
    for (int step = 0; step < 100; step++) {
        for (int i = 0; i < 40; i++)
            CHECK(plexus_arena_alloc(&ar, 4096) != NULL); /* ~3 blocks a step */
        plexus_arena_release(&ar, m);
        if (step == 0) after_first_step = fault_count();
    }
    if (!EXACT) CHECK_EQ_INT(fault_count(), after_first_step);
    plexus_arena_free(&ar);
}

/* A request larger than a block gets a block of its own, freed (not kept) on release. */
static void test_large_requests(void)
{
    plexus_arena ar;
    plexus_arena_init(&ar, &test_alloc);
    long live = fault_live();
    plexus_arena_mark m = plexus_arena_mark_get(&ar);
    uint8_t *big = plexus_arena_alloc(&ar, 3 * PLEXUS_ARENA_BLOCK + 5);
    CHECK(big != NULL);
    if (big) {
        memset(big, 0xab, 3 * PLEXUS_ARENA_BLOCK + 5);
        CHECK(aligned(big));
    }
    plexus_arena_release(&ar, m);
    CHECK_EQ_INT(fault_live(), live);
    CHECK(plexus_arena_alloc(&ar, SIZE_MAX) == NULL); /* no size overflow */
    CHECK(plexus_arena_alloc(&ar, SIZE_MAX - 8) == NULL);
    plexus_arena_free(&ar);
    CHECK_EQ_INT(fault_live(), live);
}

/* One walk's allocations, marks and releases; on a failed allocation, the arena is
 * freed and PLEXUS_ENOMEM returned. */
static int walk(void)
{
    plexus_arena ar;
    plexus_arena_init(&ar, &test_alloc);
    for (int step = 0; step < 6; step++) {
        plexus_arena_mark m = plexus_arena_mark_get(&ar);
        size_t sizes[] = {10, 30000, 50000, PLEXUS_ARENA_BLOCK + 1, 7};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            if (!plexus_arena_alloc(&ar, sizes[i])) {
                plexus_arena_free(&ar);
                return PLEXUS_ENOMEM;
            }
        if (step % 2 == 0) plexus_arena_release(&ar, m);
    }
    plexus_arena_free(&ar);
    return PLEXUS_OK;
}

static void test_out_of_memory_leaves_nothing(void)
{
    int rc = PLEXUS_OK;
    FOR_EACH_FAULT(rc, rc = walk());
}

/* Freed, the arena is empty and can be used again. */
static void test_free_then_reuse(void)
{
    plexus_arena ar;
    plexus_arena_init(&ar, &test_alloc);
    long live = fault_live();
    CHECK(plexus_arena_alloc(&ar, 1000) != NULL);
    plexus_arena_free(&ar);
    CHECK_EQ_INT(fault_live(), live);
    CHECK(plexus_arena_alloc(&ar, 1000) != NULL);
    plexus_arena_free(&ar);
    CHECK_EQ_INT(fault_live(), live);
}

int main(void)
{
    RUN(test_allocations_are_aligned_and_disjoint);
    RUN(test_release_gives_back_to_the_mark);
    RUN(test_released_blocks_are_reused);
    RUN(test_large_requests);
    RUN(test_out_of_memory_leaves_nothing);
    RUN(test_free_then_reuse);
    return harness_finish("test_arena");
}
