/* The C node's reconnect policy (c_src/cnode/backoff.c): the backoff doubles, stops at
 * its ceiling and never wraps; only the attempt a peer waits for is adopted. */
#include "cnode/backoff.h"
#include "harness.h"

static void doubles_from_the_first_wait(void)
{
    uint32_t b = cn_backoff_next(0, 10000);
    CHECK_EQ_INT(b, CN_BACKOFF_FIRST_MS);
    const uint32_t want[] = {400, 800, 1600, 3200, 6400, 10000, 10000};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        b = cn_backoff_next(b, 10000);
        CHECK_EQ_INT(b, want[i]);
    }
}

static void ceiling_below_the_first_wait(void)
{
    CHECK_EQ_INT(cn_backoff_next(0, 1), 1);
    CHECK_EQ_INT(cn_backoff_next(1, 1), 1);
    CHECK_EQ_INT(cn_backoff_next(0, 150), 150);
}

static void never_wraps(void)
{
    /* the largest ceiling --max-backoff-ms takes, and beyond it */
    CHECK_EQ_INT(cn_backoff_next(86400000u, 86400000u), 86400000u);
    CHECK_EQ_INT(cn_backoff_next(3000000000u, UINT32_MAX), UINT32_MAX);
    uint32_t b = 0;
    for (int i = 0; i < 64; i++) {
        uint32_t n = cn_backoff_next(b, UINT32_MAX);
        CHECK(n >= b);
        b = n;
    }
    CHECK_EQ_INT(b, UINT32_MAX);
}

/* A connection made by an attempt the peer stopped waiting for (it connected the other
 * way, and that connection then closed) is closed unused. Adopting it reported a node
 * that had just gone down as up again (the loop adopted any result for a peer not up). */
static void only_the_awaited_attempt_is_adopted(void)
{
    CHECK_EQ_INT(cn_attempt_result(1, 1), CN_ATTEMPT_ADOPT);
    CHECK_EQ_INT(cn_attempt_result(1, 0), CN_ATTEMPT_FAILED);
    CHECK_EQ_INT(cn_attempt_result(0, 1), CN_ATTEMPT_DISCARD);
    CHECK_EQ_INT(cn_attempt_result(0, 0), CN_ATTEMPT_DISCARD);
}

int main(void)
{
    RUN(doubles_from_the_first_wait);
    RUN(ceiling_below_the_first_wait);
    RUN(never_wraps);
    RUN(only_the_awaited_attempt_is_adopted);
    return harness_finish("cnode_backoff");
}
