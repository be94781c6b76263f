/*
 * LWW register NIFs (plexus_nif:lww_*): validation, reads, digests, merges of lists
 * and the registers too large for plexus_lww's Erlang fast path. The node-wide hybrid
 * logical clock is not here: it lives in Erlang (plexus_hlc), so that a small
 * register's update or merge needs no NIF call; these NIFs take timestamps as
 * arguments and never read a clock.
 */
#ifndef PLEXUS_NIF_LWW_H
#define PLEXUS_NIF_LWW_H

#include <erl_nif.h>

ERL_NIF_TERM nif_lww_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_lww_update_ts(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_lww_read(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_lww_merge(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_lww_validate(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_lww_digest(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
