/*
 * plexus_nif:lwwmap_validate/1: the C reader of LWW map bytes (0x02 'M',
 * c_src/core/crdt_lwwmap_codec.c), which plexus_lwwmap:from_binary/1 runs first so
 * that it can skip its own slow checks for bytes this accepts.
 */
#ifndef PLEXUS_NIF_LWWMAP_H
#define PLEXUS_NIF_LWWMAP_H

#include <erl_nif.h>

/* lwwmap_validate(Bin) -> ok | {error, Reason}; dirty above the inline budget. */
ERL_NIF_TERM nif_lwwmap_validate(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
