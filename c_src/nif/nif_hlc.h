/*
 * The node's hybrid logical clock (plexus_nif:hlc_*) and the register write that ticks
 * it (plexus_nif:lww_write/3): the wall-clock read and the compare-and-swap of one
 * tick in one NIF call, cheaper than plexus_hlc doing them from Erlang
 * (os:system_time/1, persistent_term:get/1 and an atomics operation, three calls).
 *
 * The cell (plexus/hlc_cell.h) is static memory of this library, so a reload can lose
 * it; it is safe because it runs under a lease that plexus_hlc records first in its
 * persistent_term ceiling: a fresh cell asks for a lease before it issues anything,
 * and the grant moves it past everything any earlier cell issued.
 */
#ifndef PLEXUS_NIF_HLC_H
#define PLEXUS_NIF_HLC_H

#include <erl_nif.h>
#include <stdbool.h>
#include <stdint.h>

/* One tick of the node clock after floor (plexus_hlc_cell_next on the library's cell,
 * at the current wall clock); false and *ts = the timestamp that needs a lease. */
bool nif_hlc_next(uint64_t floor, uint64_t *ts);
/* {lease, Need}: what a NIF answers when the clock needs a lease for Need. */
ERL_NIF_TERM nif_hlc_lease_needed(ErlNifEnv *env, uint64_t need);

/* At load and upgrade: whether the wall clock may be read on the TSC between readings
 * (only when the kernel keeps time on it), and a fresh window cell. */
void nif_hlc_load(void);
bool nif_hlc_tsc_wall_on(void);

ERL_NIF_TERM nif_hlc_next_after(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_hlc_observe(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_hlc_lease(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_hlc_cell(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_hlc_wall(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
