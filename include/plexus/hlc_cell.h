/*
 * The node clock cell of the hybrid logical clock (Kulkarni et al., "Logical Physical
 * Clocks", 2014, §3): the greatest timestamp a node has issued or observed, advanced
 * by many threads at once with compare-and-swap, under a lease.
 *
 * The lease is what lets the cell live in memory that a code reload can lose (the NIF
 * library's) without the clock ever going back: the cell never passes `limit`, and
 * the host raises `limit` only to a value it has first recorded in storage that
 * survives reloads (plexus_hlc's persistent_term atomics, the ceiling). Every lease is
 * granted as (prev, limit): prev is the ceiling before this grant, limit after. When
 * prev is above the cell's own limit, some other cell (an earlier instance of the
 * library) was granted timestamps in between and may have issued up to prev, so the
 * cell first jumps to prev. A fresh cell (all zero) therefore starts with a lease
 * request whose prev is at or above everything any earlier cell issued.
 *
 * Pure: the wall clock comes in as an argument (milliseconds since the epoch; the
 * caller reads it), no allocation, no global state.
 */
#ifndef PLEXUS_HLC_CELL_H
#define PLEXUS_HLC_CELL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "plexus/common.h"

/* Observed timestamps more than this far ahead of the wall clock are not recorded. */
#define PLEXUS_HLC_MAX_AHEAD_MS UINT64_C(3600000)

typedef struct plexus_hlc_cell {
    _Atomic uint64_t clock; /* greatest timestamp issued or observed; never decreases */
    _Atomic uint64_t limit; /* the lease: clock never passes it; never decreases */
} plexus_hlc_cell;

/* Whether ts is more than the skew bound (one hour) ahead of wall_ms. */
PLEXUS_API bool plexus_hlc_too_far_ahead(uint64_t ts, uint64_t wall_ms);

/*
 * The next timestamp after both the clock and floor, recorded in the cell: true and
 * *ts set. False when that timestamp is past the lease: *ts is the timestamp that
 * needs one (grant it, then call again). A floor beyond the skew bound and ahead of
 * the clock gives a timestamp after it without recording it (true). Saturates at
 * UINT64_MAX.
 */
PLEXUS_API bool plexus_hlc_cell_next(plexus_hlc_cell *cell, uint64_t floor, uint64_t wall_ms,
                                     uint64_t *ts);

/*
 * clock := max(clock, ts) for ts within the skew bound: true and *clock set to the
 * clock after the call (at or past ts unless ts was beyond the bound). False when ts
 * is past the lease: *clock is ts, the timestamp that needs one.
 */
PLEXUS_API bool plexus_hlc_cell_observe(plexus_hlc_cell *cell, uint64_t ts, uint64_t wall_ms,
                                        uint64_t *clock);

/* Applies the lease grant (prev, limit) described above; prev <= limit. */
PLEXUS_API void plexus_hlc_cell_lease(plexus_hlc_cell *cell, uint64_t prev, uint64_t limit);

#endif
