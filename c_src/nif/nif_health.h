/*
 * Failure detector NIFs (plexus_nif:health_*): a resource wrapping one
 * plexus_health detector (c_src/core/health.c) for plexus_monitor. The detector is
 * mutable, so the resource carries a mutex (doc/STYLE.md habit 7); every call is O(nodes)
 * at worst and stays on a normal scheduler.
 *
 * Events come back as a list in the order the detector emitted them:
 *   {Kind, NodeBin, From, To, Reason}
 * Kind node_up | suspect | healthy | node_down; From/To unknown | healthy | suspect |
 * down; Reason none | timeout | connection_closed | tick_timeout | connection_error |
 * shutdown.
 */
#ifndef PLEXUS_NIF_HEALTH_H
#define PLEXUS_NIF_HEALTH_H

#include <erl_nif.h>

struct nif_priv;

/* Opens the plexus_health resource type into priv (its atoms are made with all the
 * others by nif_priv_new); call from load and upgrade. 0 = ok. */
int nif_health_load(ErlNifEnv *env, struct nif_priv *priv);

ERL_NIF_TERM nif_health_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_health_up(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_health_answer(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_health_down(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_health_tick(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_health_remove(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_health_get(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_health_list(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
