/*
 * Unit tests of the node clock cell under a lease (c_src/core/hlc_cell.c; Kulkarni et
 * al. 2014 §3 for the clock rules): ticks increase and follow the wall clock, the
 * clock never passes its lease, a grant whose prev is above the lease makes the cell
 * jump there (what keeps a reloaded library's fresh cell after everything an earlier
 * one issued), far-future timestamps do not move it, it saturates instead of
 * wrapping, and threads ticking at once get distinct timestamps.
 */
#include <pthread.h>

#include "harness.h"
#include "plexus/crdt.h"
#include "plexus/hlc_cell.h"

#define MS(ms) plexus_hlc_from_ms(ms)
#define WALL UINT64_C(1700000000000)

static plexus_hlc_cell fresh(void)
{
    plexus_hlc_cell c;
    atomic_init(&c.clock, 0);
    atomic_init(&c.limit, 0);
    return c;
}

static void test_fresh_cell_asks_for_a_lease(void)
{
    plexus_hlc_cell c = fresh();
    uint64_t ts = 0;
    CHECK(!plexus_hlc_cell_next(&c, 0, WALL, &ts));
    CHECK(ts == MS(WALL)); /* the timestamp it needs */
    CHECK(atomic_load(&c.clock) == 0);
    uint64_t seen = 0;
    CHECK(!plexus_hlc_cell_observe(&c, MS(WALL), WALL, &seen));
    CHECK(atomic_load(&c.clock) == 0);
}

static void test_ticks_follow_the_wall_clock_within_the_lease(void)
{
    plexus_hlc_cell c = fresh();
    plexus_hlc_cell_lease(&c, 0, MS(WALL + 100));
    uint64_t a = 0, b = 0, d = 0;
    CHECK(plexus_hlc_cell_next(&c, 0, WALL, &a) && a == MS(WALL));
    CHECK(plexus_hlc_cell_next(&c, 0, WALL, &b) && b == a + 1);      /* same ms: logical */
    CHECK(plexus_hlc_cell_next(&c, 0, WALL - 50, &d) && d == b + 1); /* wall went back */
    CHECK(plexus_hlc_cell_next(&c, 0, WALL + 10, &d) && d == MS(WALL + 10));
    /* a floor ahead of the clock: after it */
    CHECK(plexus_hlc_cell_next(&c, MS(WALL + 20), WALL + 10, &d) && d == MS(WALL + 20) + 1);
    CHECK(atomic_load(&c.clock) == d);
    /* past the lease: refused, nothing recorded */
    uint64_t need = 0;
    CHECK(!plexus_hlc_cell_next(&c, 0, WALL + 101, &need) && need == MS(WALL + 101));
    CHECK(atomic_load(&c.clock) == d);
    CHECK(!plexus_hlc_cell_next(&c, MS(WALL + 100), WALL, &need) && need == MS(WALL + 100) + 1);
    plexus_hlc_cell_lease(&c, MS(WALL + 100), MS(WALL + 201)); /* its own lease: no jump */
    CHECK(atomic_load(&c.clock) == d);
    CHECK(plexus_hlc_cell_next(&c, 0, WALL + 101, &a) && a == MS(WALL + 101));
}

static void test_grant_after_another_cell_jumps(void)
{
    plexus_hlc_cell c = fresh();
    plexus_hlc_cell_lease(&c, 0, MS(WALL + 100));
    uint64_t ts = 0;
    CHECK(plexus_hlc_cell_next(&c, 0, WALL, &ts));
    /* another cell was granted up to WALL + 500 meanwhile and may have issued that */
    plexus_hlc_cell_lease(&c, MS(WALL + 500), MS(WALL + 600));
    CHECK(plexus_hlc_cell_next(&c, 0, WALL, &ts) && ts == MS(WALL + 500) + 1);
    /* a grant applied late (prev below the limit) moves nothing back */
    plexus_hlc_cell_lease(&c, MS(WALL), MS(WALL + 50));
    CHECK(atomic_load(&c.limit) == MS(WALL + 600));
    CHECK(plexus_hlc_cell_next(&c, 0, WALL, &ts) && ts == MS(WALL + 500) + 2);
}

static void test_observe(void)
{
    plexus_hlc_cell c = fresh();
    plexus_hlc_cell_lease(&c, 0, MS(WALL + 2 * PLEXUS_HLC_MAX_AHEAD_MS));
    uint64_t seen = 0, ts = 0;
    CHECK(plexus_hlc_cell_observe(&c, MS(WALL + 7), WALL, &seen) && seen == MS(WALL + 7));
    CHECK(plexus_hlc_cell_observe(&c, MS(WALL), WALL, &seen) && seen == MS(WALL + 7));
    CHECK(plexus_hlc_cell_next(&c, 0, WALL, &ts) && ts == MS(WALL + 7) + 1);
    /* an hour ahead is recorded; more is not, even inside the lease */
    uint64_t hour = MS(WALL + PLEXUS_HLC_MAX_AHEAD_MS);
    CHECK(plexus_hlc_cell_observe(&c, hour, WALL, &seen) && seen == hour);
    CHECK(plexus_hlc_cell_observe(&c, hour + MS(1), WALL, &seen) && seen == hour);
    CHECK(plexus_hlc_cell_observe(&c, UINT64_MAX, WALL, &seen) && seen == hour);
    CHECK(atomic_load(&c.clock) == hour);
    /* a floor that far ahead gives a timestamp after it without recording it */
    CHECK(plexus_hlc_cell_next(&c, UINT64_MAX - 1, WALL, &ts) && ts == UINT64_MAX);
    CHECK(plexus_hlc_cell_next(&c, UINT64_MAX, WALL, &ts) && ts == UINT64_MAX);
    CHECK(atomic_load(&c.clock) == hour);
    CHECK(plexus_hlc_cell_next(&c, 0, WALL, &ts) && ts == hour + 1);
    /* past the lease: the observed timestamp is what needs one */
    plexus_hlc_cell d = fresh();
    CHECK(!plexus_hlc_cell_observe(&d, MS(WALL), WALL, &seen) && seen == MS(WALL));
}

static void test_saturates(void)
{
    plexus_hlc_cell c = fresh();
    uint64_t wall = UINT64_C(1) << 60; /* beyond the 48-bit ms field */
    plexus_hlc_cell_lease(&c, 0, UINT64_MAX);
    uint64_t seen = 0, ts = 0;
    CHECK(plexus_hlc_cell_observe(&c, UINT64_MAX, wall, &seen) && seen == UINT64_MAX);
    CHECK(plexus_hlc_cell_next(&c, 0, wall, &ts) && ts == UINT64_MAX);
    CHECK(plexus_hlc_cell_next(&c, UINT64_MAX, wall, &ts) && ts == UINT64_MAX);
    CHECK(atomic_load(&c.clock) == UINT64_MAX); /* never wraps to 0 */
}

static void test_too_far_ahead(void)
{
    CHECK(!plexus_hlc_too_far_ahead(MS(WALL + PLEXUS_HLC_MAX_AHEAD_MS), WALL));
    CHECK(plexus_hlc_too_far_ahead(MS(WALL + PLEXUS_HLC_MAX_AHEAD_MS + 1), WALL));
    CHECK(!plexus_hlc_too_far_ahead(0, WALL));
}

/* Threads ticking one shared cell, leasing as the host does (a ceiling raised first,
 * then the grant applied): every timestamp distinct, each thread's increasing. */
#define THREADS 4
#define TICKS 20000

static plexus_hlc_cell shared;
static _Atomic uint64_t ceiling;
static uint64_t issued[THREADS][TICKS];

static void grant(uint64_t need)
{
    uint64_t prev = atomic_load(&ceiling), next;
    do {
        next = (prev > need ? prev : need) + 64; /* tiny leases: many grants race */
    } while (!atomic_compare_exchange_weak(&ceiling, &prev, next));
    plexus_hlc_cell_lease(&shared, prev, next);
}

static void *ticker(void *arg)
{
    uint64_t *out = arg;
    for (int i = 0; i < TICKS; i++) {
        uint64_t ts;
        while (!plexus_hlc_cell_next(&shared, 0, WALL + (uint64_t)(i / 1000), &ts))
            grant(ts);
        out[i] = ts;
        CHECK(ts <= atomic_load(&ceiling)); /* never past what the host recorded */
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_threads_get_distinct_increasing_timestamps(void)
{
    shared = fresh();
    atomic_init(&ceiling, 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, ticker, issued[i]), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_join(t[i], NULL), 0);
    static uint64_t all[THREADS * TICKS];
    for (int i = 0; i < THREADS; i++) {
        for (int j = 1; j < TICKS; j++)
            CHECK(issued[i][j] > issued[i][j - 1]);
        memcpy(all + i * TICKS, issued[i], sizeof issued[i]);
    }
    qsort(all, THREADS * TICKS, sizeof all[0], cmp_u64);
    int dups = 0;
    for (int i = 1; i < THREADS * TICKS; i++)
        dups += all[i] == all[i - 1];
    CHECK_EQ_INT(dups, 0);
}

int main(void)
{
    RUN(test_fresh_cell_asks_for_a_lease);
    RUN(test_ticks_follow_the_wall_clock_within_the_lease);
    RUN(test_grant_after_another_cell_jumps);
    RUN(test_observe);
    RUN(test_saturates);
    RUN(test_too_far_ahead);
    RUN(test_threads_get_distinct_increasing_timestamps);
    return harness_finish("test_hlc_cell");
}
