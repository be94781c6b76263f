/*
 * Unit tests of the wall clock's millisecond kept on the TSC (c_src/core/tsc_wall.c)
 * against a simulated TSC and wall clock: no window before a rate is measured; an
 * answer from a window is always exactly the millisecond the clock shows at that TSC
 * value (never late, never early), also while the clock slews at NTP's limit and with
 * readings of random width; readings too coarse give no rate; a TSC that goes back, a
 * clock stepped back or forward stop the windows until a new interval agrees; and
 * readers racing a writer never see a torn window.
 */
#include <pthread.h>

#include "harness.h"
#include "plexus/tsc_wall.h"

__extension__ typedef unsigned __int128 u128;

#define NS0 UINT64_C(1700000000123456789) /* some wall time, mid-millisecond */
#define TSC0 UINT64_C(5000000000)
#define TICKS_PER_MS UINT64_C(2400000) /* 2.4 GHz */

/* A simulated machine: TSC ticks, and the wall clock (ns) they correspond to, with a
 * rate that may change (slew) from one segment to the next. */
typedef struct sim {
    uint64_t seg_tsc, seg_ns, ticks_per_ms; /* the current segment */
    uint64_t tsc;                           /* now */
    uint64_t rng;
    plexus_tsc_wall cell;
    long fast, real, wrong;
} sim;

static uint64_t next_rand(sim *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

static void sim_init(sim *s, uint64_t seed)
{
    s->seg_tsc = s->tsc = TSC0;
    s->seg_ns = NS0;
    s->ticks_per_ms = TICKS_PER_MS;
    s->rng = seed | 1;
    s->fast = s->real = s->wrong = 0;
    plexus_tsc_wall_init(&s->cell);
}

/* The wall clock at TSC value t (t at or after the segment start). */
static uint64_t wall_at(const sim *s, uint64_t t)
{
    return s->seg_ns + (uint64_t)((u128)(t - s->seg_tsc) * 1000000u / s->ticks_per_ms);
}

/* A new rate from now on, ppm faster (negative: slower) than the nominal one. */
static void slew(sim *s, long ppm)
{
    s->seg_ns = wall_at(s, s->tsc);
    s->seg_tsc = s->tsc;
    s->ticks_per_ms = (uint64_t)((double)TICKS_PER_MS / (1.0 + (double)ppm / 1e6));
}

/* The wall clock jumps by delta ns (an operator, a VM resumed). */
static void step(sim *s, int64_t delta)
{
    s->seg_ns = wall_at(s, s->tsc) + (uint64_t)delta;
    s->seg_tsc = s->tsc;
}

/* What the NIF's wall_ms does, on the simulated machine: the window's millisecond, or
 * a real reading taking width ticks. Counts answers that differ from the clock's. */
static uint64_t sim_wall_ms(sim *s, uint64_t width)
{
    uint64_t ms, before = s->tsc;
    if (plexus_tsc_wall_read(&s->cell, before, &ms)) {
        s->fast++;
        if (ms != wall_at(s, before) / 1000000u) s->wrong++;
        return ms;
    }
    s->real++;
    uint64_t at = before + (width ? next_rand(s) % width : 0);
    uint64_t ns = wall_at(s, at);
    s->tsc = before + width;
    plexus_tsc_wall_record(&s->cell, before, ns, s->tsc);
    return ns / 1000000u;
}

static void test_no_window_before_a_rate(void)
{
    sim s;
    sim_init(&s, 1);
    for (int i = 0; i < 200; i++) { /* 0.2 ms of reads, 1 us apart: no rate yet */
        sim_wall_ms(&s, 100);
        s.tsc += TICKS_PER_MS / 1000;
    }
    CHECK_EQ_INT((int)s.fast, 0);
    CHECK(s.cell.ticks_per_ms == 0);
    for (int i = 0; i < 2000; i++) { /* past 1 ms: a rate, then windows */
        sim_wall_ms(&s, 100);
        s.tsc += TICKS_PER_MS / 1000;
    }
    CHECK(s.cell.ticks_per_ms > TICKS_PER_MS - TICKS_PER_MS / 1000 &&
          s.cell.ticks_per_ms < TICKS_PER_MS + TICKS_PER_MS / 1000);
    CHECK(s.fast > 1000);
    CHECK_EQ_INT((int)s.wrong, 0);
}

/* Reads at random intervals for ~2 simulated seconds while the clock slews by up to
 * NTP's 500 ppm either way: every window answer is the clock's millisecond. */
static void test_window_answers_are_exact_while_slewing(void)
{
    sim s;
    sim_init(&s, 2);
    for (long i = 0; i < 400000; i++) {
        if (i % 20000 == 0) slew(&s, (long)(next_rand(&s) % 1001) - 500);
        sim_wall_ms(&s, 40 + next_rand(&s) % 400);
        s.tsc += 1 + next_rand(&s) % 24000; /* up to 10 us */
    }
    CHECK_EQ_INT((int)s.wrong, 0);
    CHECK(s.fast > 20 * s.real); /* and the windows do serve most reads */
}

/* Readings preempted between the TSC reads (widths of 0.1 to 1 ms) give no rate over
 * a short span; over a long one they do, accurate to the sample bound, and every
 * answer is still exact. */
static void test_coarse_readings_give_no_rate_until_the_span_dwarfs_them(void)
{
    sim s;
    sim_init(&s, 3);
    for (int i = 0; i < 300; i++) { /* ~0.2 s: widths sum past 200 ppm of it */
        sim_wall_ms(&s, TICKS_PER_MS / 10 + next_rand(&s) % TICKS_PER_MS);
        s.tsc += 1000;
    }
    CHECK(s.cell.ticks_per_ms == 0);
    CHECK_EQ_INT((int)s.fast, 0);
    for (int i = 0; i < 20000; i++) {
        sim_wall_ms(&s, TICKS_PER_MS / 10 + next_rand(&s) % TICKS_PER_MS);
        s.tsc += 1000;
    }
    uint64_t tol = TICKS_PER_MS / 2500; /* 400 ppm: the sample bound at each end */
    CHECK(s.cell.ticks_per_ms == 0 ||
          (s.cell.ticks_per_ms > TICKS_PER_MS - tol && s.cell.ticks_per_ms < TICKS_PER_MS + tol));
    CHECK_EQ_INT((int)s.wrong, 0);
}

/* Runs reads 1 us apart for ms simulated milliseconds. */
static void run_ms(sim *s, int ms)
{
    for (int i = 0; i < ms * 1000; i++) {
        sim_wall_ms(s, 100);
        s->tsc += TICKS_PER_MS / 1000;
    }
}

static void test_tsc_going_back_is_a_real_read(void)
{
    sim s;
    sim_init(&s, 4);
    run_ms(&s, 5);
    uint64_t ms;
    CHECK(plexus_tsc_wall_read(&s.cell, s.tsc, &ms)); /* a window holds now... */
    CHECK(!plexus_tsc_wall_read(&s.cell, atomic_load(&s.cell.from) - 1, &ms)); /* not before it */
    /* a reading whose TSC went back (two CPUs) is not recorded */
    CHECK(!plexus_tsc_wall_record(&s.cell, s.tsc, wall_at(&s, s.tsc), s.tsc - 1));
    /* the TSC of the next reading behind the kept one: no rate until measured again */
    uint64_t now = s.tsc;
    s.tsc = TSC0;
    CHECK(!plexus_tsc_wall_record(&s.cell, s.tsc, wall_at(&s, now), s.tsc + 50));
    CHECK(s.cell.ticks_per_ms == 0);
}

/* The clock was read somewhere between the two TSC reads: only after the second is it
 * sure that the millisecond read has begun. */
static void test_window_starts_after_the_reading(void)
{
    sim s;
    sim_init(&s, 9);
    run_ms(&s, 5);
    uint64_t before = s.tsc, ms;
    CHECK(plexus_tsc_wall_record(&s.cell, before, wall_at(&s, before + 500), before + 1000));
    CHECK(!plexus_tsc_wall_read(&s.cell, before + 500, &ms));
    CHECK(plexus_tsc_wall_read(&s.cell, before + 1000, &ms) &&
          ms == wall_at(&s, before + 500) / 1000000u);
}

static void test_clock_steps_stop_windows_until_measured_again(void)
{
    for (int dir = -1; dir <= 1; dir += 2) {
        sim s;
        sim_init(&s, 5 + (uint64_t)dir);
        run_ms(&s, 5);
        CHECK(s.cell.ticks_per_ms != 0);
        step(&s, dir * INT64_C(1000000000)); /* one second back, then forward */
        long fast = s.fast;
        /* the window opened before the step may still answer with the old millisecond
         * (at most until its end, under 1 ms); count answers only after it */
        uint64_t end = atomic_load(&s.cell.until);
        while (s.tsc < end)
            s.tsc += TICKS_PER_MS / 1000;
        s.wrong = 0;
        long real = s.real;
        sim_wall_ms(&s, 100); /* the first reading after the step... */
        CHECK(s.real == real + 1);
        CHECK(s.cell.ticks_per_ms == 0);        /* ...distrusts the interval it ends */
        CHECK(atomic_load(&s.cell.until) == 0); /* and opens no window */
        run_ms(&s, 5);
        CHECK(s.cell.ticks_per_ms != 0); /* measured again */
        CHECK(s.fast > fast + 1000);
        CHECK_EQ_INT((int)s.wrong, 0);
    }
}

/* Readers racing a writer never see a window torn between two publications: every
 * answer is the millisecond of the reading that opened its window. The writer records
 * readings of an exact clock at 2.4 GHz, each mid-millisecond; readers read at TSC
 * values spread over the recent windows. */
#define RACE_WINDOWS 200000
static plexus_tsc_wall race_cell;
static _Atomic uint64_t race_now; /* the writer's last reading, in ms from TSC0 */
static _Atomic int race_done;

static uint64_t race_tsc(uint64_t k)
{
    return TSC0 + k * TICKS_PER_MS;
}

static void *race_writer(void *arg)
{
    (void)arg;
    for (uint64_t k = 0; k < RACE_WINDOWS; k++) {
        /* the clock reads k ms + 0.5 ms at TSC race_tsc(k) + 0.5 ms of ticks */
        uint64_t t = race_tsc(k) + TICKS_PER_MS / 2;
        plexus_tsc_wall_record(&race_cell, t, NS0 / 1000000u * 1000000u + k * 1000000u + 500000u,
                               t + 10);
        atomic_store(&race_now, k);
    }
    atomic_store(&race_done, 1);
    return NULL;
}

static void *race_reader(void *arg)
{
    long *wrong = arg;
    uint64_t rng = 88172645463325252u;
    while (!atomic_load(&race_done)) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        uint64_t k = atomic_load(&race_now);
        uint64_t t = race_tsc(k > 2 ? k - 2 : 0) + rng % (4 * TICKS_PER_MS);
        uint64_t ms;
        if (plexus_tsc_wall_read(&race_cell, t, &ms) &&
            ms != NS0 / 1000000u + (t - TSC0) / TICKS_PER_MS)
            (*wrong)++;
    }
    return NULL;
}

static void test_readers_never_see_a_torn_window(void)
{
    plexus_tsc_wall_init(&race_cell);
    atomic_init(&race_now, 0);
    atomic_init(&race_done, 0);
    long wrong[2] = {0, 0};
    pthread_t w, r[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(pthread_create(&r[i], NULL, race_reader, &wrong[i]), 0);
    CHECK_EQ_INT(pthread_create(&w, NULL, race_writer, NULL), 0);
    CHECK_EQ_INT(pthread_join(w, NULL), 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(pthread_join(r[i], NULL), 0);
    CHECK_EQ_INT((int)(wrong[0] + wrong[1]), 0);
    CHECK(race_cell.ticks_per_ms == TICKS_PER_MS); /* the exact clock measured exactly */
}

int main(void)
{
    RUN(test_no_window_before_a_rate);
    RUN(test_window_answers_are_exact_while_slewing);
    RUN(test_coarse_readings_give_no_rate_until_the_span_dwarfs_them);
    RUN(test_tsc_going_back_is_a_real_read);
    RUN(test_window_starts_after_the_reading);
    RUN(test_clock_steps_stop_windows_until_measured_again);
    RUN(test_readers_never_see_a_torn_window);
    return harness_finish("test_tsc_wall");
}
