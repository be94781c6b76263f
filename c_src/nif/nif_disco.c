/*
 * Discovery NIF helpers; see nif_disco.h.
 */
#include "nif/nif_disco.h"

#include <string.h>

#include "nif/nif_util.h"

int nif_disco_get_meta(ErlNifEnv *env, ERL_NIF_TERM t, plexus_disco_meta *out)
{
    size_t n;
    ErlNifMapIterator it;
    out->n = 0;
    if (!enif_get_map_size(env, t, &n) || n > PLEXUS_DISCO_META_MAX) return 0;
    if (n == 0) return 1;
    if (!enif_map_iterator_create(env, t, &it, ERL_NIF_MAP_ITERATOR_FIRST)) return 0;
    ERL_NIF_TERM k, v;
    int ok = 1;
    while (ok && enif_map_iterator_get_pair(env, &it, &k, &v)) {
        ErlNifBinary kb, vb;
        if (!enif_inspect_binary(env, k, &kb) || !enif_inspect_binary(env, v, &vb)) {
            ok = 0;
            break;
        }
        out->kv[out->n].key = (plexus_bytes){kb.data, kb.size};
        out->kv[out->n].val = (plexus_bytes){vb.data, vb.size};
        out->n++;
        enif_map_iterator_next(env, &it);
    }
    enif_map_iterator_destroy(env, &it);
    if (!ok) return 0;
    plexus_disco_sort_meta(out);
    return plexus_disco_valid_meta(out);
}

int nif_disco_make_meta(ErlNifEnv *env, const plexus_disco_meta *m, ERL_NIF_TERM *out)
{
    ERL_NIF_TERM keys[PLEXUS_DISCO_META_MAX], vals[PLEXUS_DISCO_META_MAX];
    for (size_t i = 0; i < m->n; i++)
        if (!nif_make_bytes(env, m->kv[i].key, &keys[i]) ||
            !nif_make_bytes(env, m->kv[i].val, &vals[i]))
            return 0;
    /* keys are distinct (the decoder refuses duplicates), so this cannot fail */
    return enif_make_map_from_arrays(env, keys, vals, m->n, out);
}
