/*
 * The wall clock's millisecond between real readings, on the TSC; see
 * plexus/tsc_wall.h for what the window promises and why.
 */
#include "plexus/tsc_wall.h"

__extension__ typedef unsigned __int128 u128;

#define NS_PER_MS UINT64_C(1000000)
/* Rates outside 1 MHz..1 THz are not a TSC: a reading went wrong. */
#define MIN_TICKS_PER_MS UINT64_C(1000)
#define MAX_TICKS_PER_MS UINT64_C(1000000000)
/* A new rate more than 1% from the last one means a clock step, not a slew: the
 * interval measured it wrong, so no window opens until the next interval agrees. */
#define RATE_JUMP_PPM 10000u

void plexus_tsc_wall_init(plexus_tsc_wall *cell)
{
    atomic_init(&cell->seq, 0);
    atomic_init(&cell->from, 0);
    atomic_init(&cell->until, 0);
    atomic_init(&cell->ms, 0);
    cell->base_tsc = cell->base_ns = cell->base_err = cell->ticks_per_ms = 0;
}

static uint64_t ppm_of(uint64_t x, unsigned ppm)
{
    return (uint64_t)((u128)x * ppm / 1000000u);
}

static uint64_t abs_diff(uint64_t a, uint64_t b)
{
    return a > b ? a - b : b - a;
}

/* Keeps this reading as the start of the next rate interval. */
static void rebase(plexus_tsc_wall *c, uint64_t mid, uint64_t wall_ns, uint64_t err)
{
    c->base_tsc = mid;
    c->base_ns = wall_ns;
    c->base_err = err;
}

/* A measured rate worth using: a TSC's (1 MHz..1 THz), and within RATE_JUMP_PPM of the
 * last one when there is one. */
static bool plausible(uint64_t last, u128 rate)
{
    if (rate < MIN_TICKS_PER_MS || rate > MAX_TICKS_PER_MS) return false;
    return last == 0 || abs_diff((uint64_t)rate, last) <= ppm_of(last, RATE_JUMP_PPM);
}

/* Measures the rate from the kept reading to this one when they are far enough apart
 * and both tight enough. mid is the TSC in the middle of the reading, err its width. */
static void measure_rate(plexus_tsc_wall *c, uint64_t mid, uint64_t wall_ns, uint64_t err)
{
    if (c->base_tsc == 0 && c->base_ns == 0) {
        rebase(c, mid, wall_ns, err); /* the first reading */
        return;
    }
    if (mid <= c->base_tsc || wall_ns <= c->base_ns) {
        c->ticks_per_ms = 0; /* the TSC or the clock went back: the interval says nothing */
        rebase(c, mid, wall_ns, err);
        return;
    }
    uint64_t dns = wall_ns - c->base_ns, dtsc = mid - c->base_tsc;
    if (dns < PLEXUS_TSC_WALL_CALIBRATE_NS) return; /* too close: keep the base */
    if (err + c->base_err > ppm_of(dtsc, PLEXUS_TSC_WALL_SAMPLE_PPM)) {
        /* Too coarse to measure with. A tighter reading makes the better base: else a
         * first reading slowed by cold caches would hold the rate up for a long time. */
        if (err < c->base_err) rebase(c, mid, wall_ns, err);
        return;
    }
    u128 rate = (u128)dtsc * NS_PER_MS / dns;
    c->ticks_per_ms = plausible(c->ticks_per_ms, rate) ? (uint64_t)rate : 0;
    rebase(c, mid, wall_ns, err);
}

bool plexus_tsc_wall_record(plexus_tsc_wall *cell, uint64_t tsc_before, uint64_t wall_ns,
                            uint64_t tsc_after)
{
    if (tsc_after < tsc_before) return false; /* read on two CPUs: not a reading */
    uint64_t seq = atomic_load_explicit(&cell->seq, memory_order_relaxed);
    if ((seq & 1) || !atomic_compare_exchange_strong_explicit(
                         &cell->seq, &seq, seq + 1, memory_order_acquire, memory_order_relaxed))
        return false; /* another thread is writing: this reading is used, not kept */
    atomic_thread_fence(memory_order_release);

    uint64_t err = tsc_after - tsc_before;
    measure_rate(cell, tsc_before + err / 2, wall_ns, err);
    bool open = false;
    if (cell->ticks_per_ms != 0) {
        /* The clock was read at some TSC value in [before, after]; the next millisecond
         * starts rest ns after that, so at or after before + rest ticks. */
        uint64_t rest = NS_PER_MS - wall_ns % NS_PER_MS;
        uint64_t rate = cell->ticks_per_ms - ppm_of(cell->ticks_per_ms, PLEXUS_TSC_WALL_MARGIN_PPM);
        uint64_t until = tsc_before + (uint64_t)((u128)rest * rate / NS_PER_MS);
        if (until > tsc_after) { /* else the reading took longer than the rest */
            atomic_store_explicit(&cell->from, tsc_after, memory_order_relaxed);
            atomic_store_explicit(&cell->until, until, memory_order_relaxed);
            atomic_store_explicit(&cell->ms, wall_ns / NS_PER_MS, memory_order_relaxed);
            open = true;
        }
    }
    if (!open) atomic_store_explicit(&cell->until, 0, memory_order_relaxed); /* no window */
    atomic_store_explicit(&cell->seq, seq + 2, memory_order_release);
    return open;
}
