/*
 * Topology NIF (plexus_nif:topology_assign/2): the seniority rule of
 * c_src/core/topology.c for plexus_topology_view. O(n^2) in the view size (duplicate
 * names), so views above NIF_TOPOLOGY_DIRTY_NODES members move to a dirty CPU scheduler.
 */
#ifndef PLEXUS_NIF_TOPOLOGY_H
#define PLEXUS_NIF_TOPOLOGY_H

#include <erl_nif.h>

/* Views larger than this are assigned on a dirty CPU scheduler. The duplicate-name
 * check is n^2/2 name compares. Measured per call (-O3, 2-core VM, 20-byte names):
 * 256 members 0.07 ms, 1024 members 1.1 ms, 4096 members 15 ms. */
#define NIF_TOPOLOGY_DIRTY_NODES 256

ERL_NIF_TERM nif_topology_assign(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
