/*
 * The seniority rule of c_src/core/topology.c for plexus_topology_view (the pure part of
 * plexus_topology). Shape of every NIF (doc/STYLE.md habit 5): arity/type checks -> decode
 * -> core call -> encode, with a bad_arg: / done: ladder; the two arrays are the only
 * memory, freed on every path.
 */
#include "nif/nif_topology.h"

#include <stdbool.h>

#include "nif/nif_util.h"
#include "plexus/topology.h"

/*
 * topology_assign([{NameBin, StartTime, Promoted}], QuorumSize)
 *   -> {ok, [Role], Commander :: NameBin | none} | {error, invalid_argument | too_big}
 * Roles come back in input order. invalid_argument: an empty or duplicate name.
 * The list is walked at most PLEXUS_TOPOLOGY_MAX_NODES + 1 cells before too_big.
 */
ERL_NIF_TERM nif_topology_assign(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    const nif_priv *priv = nif_priv_get(env);
    plexus_topology_member *members = NULL;
    plexus_topology_role *roles = NULL;
    ERL_NIF_TERM ret, list, head, names_out;
    const ERL_NIF_TERM *el;
    ErlNifUInt64 quorum;
    unsigned len;
    size_t commander = PLEXUS_TOPOLOGY_NONE;
    int arity, rc;

    if (argc != 2 || !enif_is_list(env, argv[0]) || !enif_get_uint64(env, argv[1], &quorum))
        goto bad_arg;
    /* Count the cells, never more than the bound plus one, so a huge list costs
     * nothing; then check that the list is proper. */
    len = 0;
    list = argv[0];
    while (len <= PLEXUS_TOPOLOGY_MAX_NODES && enif_get_list_cell(env, list, &head, &list))
        len++;
    if (len > PLEXUS_TOPOLOGY_MAX_NODES) return nif_error(env, PLEXUS_ETOOBIG);
    if (!enif_is_empty_list(env, list)) goto bad_arg;
    if (len > NIF_TOPOLOGY_DIRTY_NODES && enif_thread_type() == ERL_NIF_THR_NORMAL_SCHEDULER)
        return nif_go_dirty(env, "topology_assign", nif_topology_assign, argc, argv);

    members = enif_alloc((len ? len : 1) * sizeof *members);
    roles = enif_alloc((len ? len : 1) * sizeof *roles);
    if (!members || !roles) {
        ret = nif_error(env, PLEXUS_ENOMEM);
        goto done;
    }
    list = argv[0];
    for (size_t i = 0; enif_get_list_cell(env, list, &head, &list); i++) {
        ErlNifBinary name;
        ErlNifUInt64 start;
        bool promoted;
        if (!enif_get_tuple(env, head, &arity, &el) || arity != 3 ||
            !enif_inspect_binary(env, el[0], &name) || !enif_get_uint64(env, el[1], &start) ||
            !nif_get_bool(env, el[2], &promoted))
            goto bad_arg;
        members[i] = (plexus_topology_member){
            .name = {name.data, name.size}, .start_time = start, .promoted = promoted};
    }
    size_t q = quorum > SIZE_MAX ? SIZE_MAX : (size_t)quorum;
    if ((rc = plexus_topology_assign(members, len, q, roles, &commander))) {
        ret = nif_error(env, rc);
        goto done;
    }
    names_out = enif_make_list(env, 0);
    for (size_t i = len; i-- > 0;)
        names_out = enif_make_list_cell(env, priv->topology_role[roles[i]], names_out);
    ERL_NIF_TERM boss = priv->atom_none;
    if (commander != PLEXUS_TOPOLOGY_NONE) {
        /* the name term from the input, not a copy */
        list = argv[0];
        for (size_t i = 0; enif_get_list_cell(env, list, &head, &list); i++)
            if (i == commander) {
                enif_get_tuple(env, head, &arity, &el);
                boss = el[0];
                break;
            }
    }
    ret = enif_make_tuple3(env, priv->atom_ok, names_out, boss);
    goto done;
bad_arg:
    ret = enif_make_badarg(env);
done:
    if (members) enif_free(members);
    if (roles) enif_free(roles);
    return ret;
}
