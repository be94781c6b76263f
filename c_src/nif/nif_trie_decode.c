/* plexus_nif:trie_decode/1 (nif_trie_decode.h). */
#include "nif/nif_trie_decode.h"

#include "nif/nif_util.h"
#include "plexus/crdt.h"
#include "plexus/crdt_trie.h"

/* The weight of an input byte for the dirty decision, on nif_util.h's scale (~7 ns
 * each): making the terms costs 10-17 ns of CPU per byte (5k-entry states). */
#define DECODE_WEIGHT 3

/* Reads from bytes the core has validated (plexus_varint_trusted): they cannot run off
 * the end. */
static plexus_bytes field(const uint8_t **pos)
{
    plexus_bytes b;
    b.n = (size_t)plexus_varint_trusted(pos);
    b.p = *pos;
    *pos += b.n;
    return b;
}

typedef struct decoder {
    ErlNifEnv *env;
    const uint8_t *pos;
    int lwwmap; /* entries are LWW map keys (writes) rather than elements */
    size_t n_actors;
    ERL_NIF_TERM *actors;  /* one term per actor, shared by every dot */
    plexus_bytes *abytes;  /* the actors' bytes, for the entry hashes */
    ERL_NIF_TERM *scratch; /* an entry's dots or writes, before they become a list */
    size_t scratch_cap;
    int oom; /* a binary could not be allocated */
} decoder;

/* A copy of the bytes as a binary term (nif_make_bytes); on failure a placeholder, and
 * the call answers no_memory once the pass is over. */
static ERL_NIF_TERM copy(decoder *d, plexus_bytes b)
{
    ERL_NIF_TERM t;
    if (nif_make_bytes(d->env, b, &t)) return t;
    d->oom = 1;
    return nif_priv_get(d->env)->atom_nil;
}

/* The context: {VV, Cloud}, or 0 when out of memory. */
static int decode_context(decoder *d, ERL_NIF_TERM *ctx)
{
    ErlNifEnv *env = d->env;
    nif_priv *priv = nif_priv_get(env);
    d->n_actors = (size_t)plexus_varint_trusted(&d->pos);
    size_t n = d->n_actors ? d->n_actors : 1;
    d->actors = enif_alloc(n * (2 * sizeof(ERL_NIF_TERM) + sizeof(plexus_bytes)));
    if (!d->actors) return 0;
    ERL_NIF_TERM *vv_vals = d->actors + n;
    d->abytes = (plexus_bytes *)(vv_vals + n);
    ERL_NIF_TERM *vv_keys = enif_alloc(n * sizeof *vv_keys);
    if (!vv_keys) return 0;
    size_t n_vv = 0;
    for (size_t i = 0; i < d->n_actors; i++) {
        d->abytes[i] = field(&d->pos);
        d->actors[i] = copy(d, d->abytes[i]);
        uint64_t v = plexus_varint_trusted(&d->pos);
        if (v > 0) { /* an actor known by cloud dots only has no vector entry */
            vv_keys[n_vv] = d->actors[i];
            vv_vals[n_vv++] = enif_make_uint64(env, v);
        }
    }
    ERL_NIF_TERM vv, cloud;
    int ok = enif_make_map_from_arrays(env, vv_keys, vv_vals, n_vv, &vv);
    enif_free(vv_keys);
    if (!ok) return 0;
    size_t n_cloud = (size_t)plexus_varint_trusted(&d->pos);
    ERL_NIF_TERM *dots = enif_alloc((n_cloud ? n_cloud : 1) * 2 * sizeof *dots);
    if (!dots) return 0;
    for (size_t i = 0; i < n_cloud; i++) {
        size_t a = (size_t)plexus_varint_trusted(&d->pos);
        dots[i] = enif_make_tuple2(env, d->actors[a],
                                   enif_make_uint64(env, plexus_varint_trusted(&d->pos)));
        dots[n_cloud + i] = priv->atom_true;
    }
    ok = enif_make_map_from_arrays(env, dots, dots + n_cloud, n_cloud, &cloud);
    enif_free(dots);
    if (!ok) return 0;
    *ctx = enif_make_tuple2(env, vv, cloud);
    return 1;
}

/* One entry as {Entry, EntryHash} in *out (0 when out of memory); the hash is fed what
 * plexus_nif:trie_hash/1 would read from the term (crdt_format.md, "Entry hash"). */
static int decode_entry(decoder *d, ERL_NIF_TERM *out)
{
    ErlNifEnv *env = d->env;
    plexus_thash h;
    plexus_thash_init(&h);
    plexus_thash_tag(&h, PLEXUS_THASH_TUPLE, 2);
    plexus_bytes key = field(&d->pos);
    plexus_thash_bin(&h, key.p, key.n);
    size_t n = (size_t)plexus_varint_trusted(&d->pos);
    if (n > d->scratch_cap) {
        ERL_NIF_TERM *p = enif_realloc(d->scratch, n * sizeof *p);
        if (!p) return 0;
        d->scratch = p;
        d->scratch_cap = n;
    }
    ERL_NIF_TERM *scratch = d->scratch;
    for (size_t i = 0; i < n; i++) {
        size_t a = (size_t)plexus_varint_trusted(&d->pos);
        uint64_t ctr = plexus_varint_trusted(&d->pos);
        plexus_thash_tag(&h, PLEXUS_THASH_CONS, 0);
        plexus_thash_tag(&h, PLEXUS_THASH_TUPLE, d->lwwmap ? 4 : 2);
        plexus_thash_bin(&h, d->abytes[a].p, d->abytes[a].n);
        plexus_thash_int(&h, ctr);
        if (d->lwwmap) {
            uint64_t ts = plexus_varint_trusted(&d->pos);
            plexus_bytes v = field(&d->pos);
            plexus_thash_int(&h, ts);
            plexus_thash_bin(&h, v.p, v.n);
            scratch[i] = enif_make_tuple4(env, d->actors[a], enif_make_uint64(env, ctr),
                                          enif_make_uint64(env, ts), copy(d, v));
        } else {
            scratch[i] = enif_make_tuple2(env, d->actors[a], enif_make_uint64(env, ctr));
        }
    }
    plexus_thash_tag(&h, PLEXUS_THASH_NIL, 0);
    ERL_NIF_TERM entry =
        enif_make_tuple2(env, copy(d, key), enif_make_list_from_array(env, scratch, (unsigned)n));
    *out = enif_make_tuple2(env, entry, enif_make_uint64(env, plexus_thash_final(&h)));
    return 1;
}

static void decoder_free(decoder *d)
{
    if (d->actors) enif_free(d->actors);
    if (d->scratch) enif_free(d->scratch);
}

ERL_NIF_TERM nif_trie_decode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    plexus_bytes s;
    int rc;

    if (argc != 1 || !nif_get_state(env, argv[0], &s)) return enif_make_badarg(env);
    if (nif_should_go_dirty(env, (uint64_t)s.n * DECODE_WEIGHT))
        return nif_go_dirty(env, "trie_decode", nif_trie_decode, argc, argv);
    nif_charge(env, (uint64_t)s.n * DECODE_WEIGHT);
    decoder d = {env, s.p + 2, 0, 0, NULL, NULL, NULL, 0, 0};
    if (s.n >= 2 && s.p[0] == PLEXUS_CRDT_VERSION_2 && s.p[1] == PLEXUS_TYPE_LWWMAP) {
        rc = plexus_lwwmap_validate(s.p, s.n, &nif_alloc);
        d.lwwmap = 1;
    } else {
        rc = plexus_orset_validate(s.p, s.n, &nif_alloc, NULL);
    }
    if (rc) return nif_error(env, rc);
    ERL_NIF_TERM ctx, result;
    int made = 0;
    ERL_NIF_TERM *entries = NULL;
    size_t n = 0;
    if (decode_context(&d, &ctx)) {
        n = (size_t)plexus_varint_trusted(&d.pos);
        entries = enif_alloc((n ? n : 1) * sizeof *entries);
    }
    size_t done = 0;
    while (entries && done < n && decode_entry(&d, &entries[done]))
        done++;
    if (entries && done == n && !d.oom) {
        result = enif_make_tuple3(env, nif_priv_get(env)->atom_ok, ctx,
                                  enif_make_list_from_array(env, entries, (unsigned)n));
        made = 1;
    }
    if (entries) enif_free(entries);
    decoder_free(&d);
    return made ? result : nif_error(env, PLEXUS_ENOMEM);
}
