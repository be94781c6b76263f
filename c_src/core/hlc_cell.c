/*
 * The node clock cell under a lease; see plexus/hlc_cell.h. The rules are those of
 * plexus_hlc_next (crdt_lww.c) and plexus_hlc:next/2, applied with compare-and-swap so
 * that threads ticking at once get distinct, increasing timestamps.
 */
#include "plexus/hlc_cell.h"

#include "plexus/crdt.h"

bool plexus_hlc_too_far_ahead(uint64_t ts, uint64_t wall_ms)
{
    /* wall_ms + one hour cannot overflow for a wall clock below 2^63 ms */
    return plexus_hlc_ms(ts) > wall_ms + PLEXUS_HLC_MAX_AHEAD_MS;
}

/* clock := max(clock, to), however other threads move it meanwhile. */
static void raise_to(_Atomic uint64_t *cell, uint64_t to)
{
    uint64_t cur = atomic_load_explicit(cell, memory_order_relaxed);
    while (cur < to && !atomic_compare_exchange_weak(cell, &cur, to)) {
    }
}

bool plexus_hlc_cell_next(plexus_hlc_cell *cell, uint64_t floor, uint64_t wall_ms, uint64_t *ts)
{
    uint64_t cur = atomic_load_explicit(&cell->clock, memory_order_relaxed);
    if (floor > cur && plexus_hlc_too_far_ahead(floor, wall_ms)) {
        *ts = plexus_hlc_next(floor, wall_ms); /* after it, but it does not drag the clock */
        return true;
    }
    for (;;) {
        uint64_t next = plexus_hlc_next(floor > cur ? floor : cur, wall_ms);
        if (next > atomic_load(&cell->limit)) {
            *ts = next;
            return false;
        }
        if (atomic_compare_exchange_weak(&cell->clock, &cur, next)) {
            *ts = next;
            return true;
        }
    }
}

bool plexus_hlc_cell_observe(plexus_hlc_cell *cell, uint64_t ts, uint64_t wall_ms, uint64_t *clock)
{
    uint64_t cur = atomic_load_explicit(&cell->clock, memory_order_relaxed);
    for (;;) {
        if (ts <= cur || plexus_hlc_too_far_ahead(ts, wall_ms)) {
            *clock = cur;
            return true;
        }
        if (ts > atomic_load(&cell->limit)) {
            *clock = ts;
            return false;
        }
        if (atomic_compare_exchange_weak(&cell->clock, &cur, ts)) {
            *clock = ts;
            return true;
        }
    }
}

void plexus_hlc_cell_lease(plexus_hlc_cell *cell, uint64_t prev, uint64_t limit)
{
    /* The jump comes first: a thread that sees the new limit must also see the clock
     * at or past prev (both are seq_cst), or it could issue below what another cell
     * issued. A jump after a grant this cell itself raced to apply is harmless: the
     * clock only moves forward, by at most one lease. */
    if (prev > atomic_load(&cell->limit)) raise_to(&cell->clock, prev);
    raise_to(&cell->limit, limit);
}
