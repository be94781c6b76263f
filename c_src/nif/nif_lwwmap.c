/* plexus_nif:lwwmap_validate/1 (nif_lwwmap.h). */
#include "nif/nif_lwwmap.h"
#include "nif/nif_util.h"
#include "plexus/crdt.h"

ERL_NIF_TERM nif_lwwmap_validate(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    plexus_bytes s;
    int rc;

    if (argc != 1 || !nif_get_state(env, argv[0], &s)) return enif_make_badarg(env);
    if (nif_should_go_dirty(env, s.n))
        return nif_go_dirty(env, "lwwmap_validate", nif_lwwmap_validate, argc, argv);
    nif_charge(env, s.n);
    if ((rc = plexus_lwwmap_validate(s.p, s.n, &nif_alloc))) return nif_error(env, rc);
    return nif_priv_get(env)->atom_ok;
}
