/*
 * LWW register NIFs (plexus_nif:lww_*): validation, reads, digests, merges of lists
 * and the registers too large for plexus_lww's Erlang fast path, and lww_write, the
 * local write (value encoding, clock tick and register term in one call). The node
 * clock is nif_hlc.c's; every NIF here but lww_write takes timestamps as arguments.
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
ERL_NIF_TERM nif_lww_write(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_lww_update(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
