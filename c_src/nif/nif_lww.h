/*
 * LWW register NIFs (plexus_nif:lww_*, hlc_now) and the node-wide hybrid logical
 * clock they share. The clock is one atomic uint64 in nif_priv: the greatest timestamp
 * this node has issued or observed. Local writes take plexus_hlc_next() of it with the
 * wall clock; merges and writes with an explicit timestamp observe (max) what they see,
 * so a later local write is ordered after them (Kulkarni et al. 2014, §3 "HLC").
 * Timestamps more than an hour ahead of the wall clock are not observed (bounded skew;
 * see HLC_MAX_AHEAD_MS in nif_lww.c).
 */
#ifndef PLEXUS_NIF_LWW_H
#define PLEXUS_NIF_LWW_H

#include <erl_nif.h>

ERL_NIF_TERM nif_lww_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_lww_update(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_lww_update_ts(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_lww_read(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_lww_merge(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_lww_validate(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_lww_digest(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_hlc_now(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
