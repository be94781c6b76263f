/*
 * Helpers shared by the discovery NIFs (nif_beacon.c, nif_registry.c): metadata maps
 * between Erlang (#{binary() => binary()}) and the core. Key material goes to
 * plexus_secret_alloc (include/plexus/secret_alloc.h), shared with the C node.
 */
#ifndef PLEXUS_NIF_DISCO_H
#define PLEXUS_NIF_DISCO_H

#include <erl_nif.h>

#include "plexus/disco.h"

/* A map of binaries -> sorted plexus_disco_meta borrowing the binaries. 0 = not a map
 * of binaries within the bounds of disco.h (badarg). */
int nif_disco_get_meta(ErlNifEnv *env, ERL_NIF_TERM t, plexus_disco_meta *out);
/* plexus_disco_meta -> a map of new binaries; 0 on allocation failure. */
int nif_disco_make_meta(ErlNifEnv *env, const plexus_disco_meta *m, ERL_NIF_TERM *out);

#endif
