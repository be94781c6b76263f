/*
 * The wall clock's current millisecond, told by the CPU's time-stamp counter between
 * real readings.
 *
 * Why: every HLC tick reads the wall clock, and clock_gettime(CLOCK_REALTIME) costs
 * ~30 ns here (the vDSO's ordered TSC read, a seqlock and the conversion), a third of
 * an LWW register update. The HLC only needs the millisecond. After one real reading
 * the millisecond cannot change before the rest of that millisecond has passed, so
 * until the TSC says it has, the same millisecond is the answer: one TSC read and a
 * compare instead of a clock read.
 *
 * The cell holds a window [from, until) of TSC values during which `ms` is still the
 * wall clock's millisecond. A real reading (the host takes it: TSC before, the clock
 * in ns, TSC after) opens a new window ending where the next millisecond begins, less
 * a safety margin (PLEXUS_TSC_WALL_MARGIN_PPM of the rate, more than NTP's slew
 * limit). The TSC rate comes from the readings themselves: two clean readings (the
 * clock read between two TSC reads close together) at least PLEXUS_TSC_WALL_CALIBRATE_NS
 * apart; it is measured again every such interval, so it follows a slewing clock.
 * Until a rate is known no window opens and every read is a real one.
 *
 * What can go wrong, and what it costs: a rate wrong by more than the margin makes a
 * window end late by that error times one millisecond (microseconds); a wall clock
 * stepped by an operator or a VM whose TSC stopped while paused reads the old
 * millisecond until the window ends, at most one millisecond of TSC ticks later. The
 * HLC absorbs both (it never goes back, its logical counter orders the ticks). A TSC
 * that goes back (another CPU, a migrated VM) falls outside the window: a real read.
 *
 * Windows are published under a seqlock: readers never write the cell, so the hot
 * path shares a read-only cache line; one writer at a time (the others just use their
 * own reading). Pure: the TSC and the clock come in as arguments.
 */
#ifndef PLEXUS_TSC_WALL_H
#define PLEXUS_TSC_WALL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "plexus/common.h"

#define PLEXUS_TSC_WALL_MARGIN_PPM 2000u               /* windows end 0.2% early */
#define PLEXUS_TSC_WALL_CALIBRATE_NS UINT64_C(1000000) /* 1 ms between rate samples */
#define PLEXUS_TSC_WALL_SAMPLE_PPM 200u /* a rate sample's reading error must stay under this */

typedef struct plexus_tsc_wall {
    _Atomic uint64_t seq;             /* odd while a writer changes the fields below */
    _Atomic uint64_t from, until, ms; /* the window: ms holds for TSC in [from, until) */
    /* The writer's own (under an odd seq): the last clean reading kept for the rate,
     * and the rate in TSC ticks per millisecond, 0 until measured. */
    uint64_t base_tsc, base_ns, base_err, ticks_per_ms;
} plexus_tsc_wall;

/* A cell with no window and no rate (all zero is the same). */
PLEXUS_API void plexus_tsc_wall_init(plexus_tsc_wall *cell);

/* The millisecond at TSC value tsc: true and *ms set when tsc falls in the window. */
static inline bool plexus_tsc_wall_read(plexus_tsc_wall *c, uint64_t tsc, uint64_t *ms)
{
    uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
    uint64_t from = atomic_load_explicit(&c->from, memory_order_relaxed);
    uint64_t until = atomic_load_explicit(&c->until, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(&c->ms, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if ((seq & 1) || atomic_load_explicit(&c->seq, memory_order_relaxed) != seq) return false;
    if (tsc < from || tsc >= until) return false;
    *ms = m;
    return true;
}

/*
 * Records a real reading: the wall clock read as wall_ns (ns since the epoch) between
 * TSC values tsc_before and tsc_after. Measures the rate when the reading is clean and
 * far enough from the last kept one, and opens the window that follows it when a rate
 * is known. Returns whether it published a window (false when another thread was
 * writing, the reading was not clean, or no rate is known yet).
 */
PLEXUS_API bool plexus_tsc_wall_record(plexus_tsc_wall *cell, uint64_t tsc_before, uint64_t wall_ns,
                                       uint64_t tsc_after);

#endif
