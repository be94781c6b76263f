/*
 * OR-Set NIFs (plexus_nif:orset_*), the glue between plexus_orset.erl and the core in
 * include/plexus/crdt.h. States are binaries in the format of crdt_format.md; elements
 * and actors arrive as term_to_binary output (leading 131) and reach the core without
 * that byte.
 */
#ifndef PLEXUS_NIF_ORSET_H
#define PLEXUS_NIF_ORSET_H

#include <erl_nif.h>

ERL_NIF_TERM nif_orset_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_orset_apply(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_orset_merge(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_orset_member(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_orset_to_list(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_orset_size(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_orset_validate(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_orset_digest(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
