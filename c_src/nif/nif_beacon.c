/*
 * Sealed gossip beacon NIFs; see nif_beacon.h. Shape of every NIF (doc/STYLE.md habit 5):
 * arity/type checks -> decode -> core call (under the resource mutex) -> encode, with
 * the goto ladder where there is anything to unwind.
 */
#include "nif/nif_beacon.h"

#include <sodium.h>
#include <string.h>
#include <time.h>

#include "nif/nif_disco.h"
#include "nif/nif_util.h"
#include "plexus/beacon.h"
#include "plexus/secret_alloc.h"

typedef struct beacon_res {
    ErlNifMutex *lock;
    plexus_beacon *b; /* freed (keys wiped) in the destructor only */
} beacon_res;

static void beacon_dtor(ErlNifEnv *env, void *obj)
{
    (void)env;
    beacon_res *r = obj;
    plexus_beacon_free(r->b);
    if (r->lock) enif_mutex_destroy(r->lock);
}

int nif_beacon_load(ErlNifEnv *env, nif_priv *priv)
{
    priv->beacon_type = enif_open_resource_type(env, NULL, "plexus_beacon", beacon_dtor,
                                                ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    return priv->beacon_type == NULL;
}

static int get_res(ErlNifEnv *env, ERL_NIF_TERM t, beacon_res **out)
{
    return enif_get_resource(env, t, nif_priv_get(env)->beacon_type, (void **)out) && (*out)->b;
}

/* The wall clock in Unix milliseconds: a beacon's send time, and what a received
 * one's must be close to. */
static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* beacon_new(Secret, ClusterId, Epoch, AcceptPrevious, MaxSenders, MaxSkewMs) */
ERL_NIF_TERM nif_beacon_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    nif_priv *priv = nif_priv_get(env);
    ErlNifBinary secret, cluster;
    unsigned epoch, max_senders;
    uint64_t max_skew;
    plexus_beacon *b = NULL;
    ErlNifMutex *lock = NULL;
    beacon_res *r;
    ERL_NIF_TERM ret;
    int rc, prev;

    if (argc != 6 || !enif_inspect_binary(env, argv[0], &secret) ||
        !enif_inspect_binary(env, argv[1], &cluster) || !enif_get_uint(env, argv[2], &epoch) ||
        !enif_get_uint(env, argv[4], &max_senders) || !nif_get_u64(env, argv[5], &max_skew))
        goto bad_arg;
    if (enif_is_identical(argv[3], priv->atom_true))
        prev = 1;
    else if (enif_is_identical(argv[3], priv->atom_false))
        prev = 0;
    else
        goto bad_arg;
    plexus_beacon_config cfg = {0};
    cfg.secret = secret.data;
    cfg.secret_len = secret.size;
    cfg.cluster_id = cluster.data;
    cfg.cluster_id_len = cluster.size;
    cfg.epoch = epoch;
    cfg.accept_previous_epoch = prev;
    cfg.max_senders = max_senders;
    cfg.max_skew_ms = max_skew;
    cfg.secret_alloc = plexus_secret_alloc();
    if ((rc = plexus_beacon_new(&cfg, &nif_alloc, &b))) goto err;
    if (!(lock = enif_mutex_create("plexus_beacon"))) {
        rc = PLEXUS_ENOMEM;
        goto err;
    }
    if (!(r = enif_alloc_resource(priv->beacon_type, sizeof *r))) {
        rc = PLEXUS_ENOMEM;
        goto err;
    }
    memset(r, 0, sizeof *r);
    r->lock = lock;
    r->b = b;
    ret = enif_make_resource(env, r);
    enif_release_resource(r);
    return ret;

bad_arg:
    return enif_make_badarg(env);
err:
    if (lock) enif_mutex_destroy(lock);
    plexus_beacon_free(b);
    return nif_error(env, rc);
}

/* beacon_seal(Ref, NameBin, Incarnation, Sequence, MetaMap) -> Bin | {error, R} */
ERL_NIF_TERM nif_beacon_seal(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    beacon_res *r;
    ErlNifBinary name, out;
    plexus_beacon_msg m;
    uint8_t nonce[PLEXUS_BEACON_NONCE];
    size_t len = 0;
    int rc;

    memset(&m, 0, sizeof m);
    if (argc != 5 || !get_res(env, argv[0], &r) || !enif_inspect_binary(env, argv[1], &name) ||
        !nif_get_u64(env, argv[2], &m.incarnation) || !nif_get_u64(env, argv[3], &m.sequence) ||
        !nif_disco_get_meta(env, argv[4], &m.meta))
        return enif_make_badarg(env);
    m.name = (plexus_bytes){name.data, name.size};
    m.sent_ms = wall_ms();
    if (!enif_alloc_binary(PLEXUS_BEACON_MAX, &out)) return nif_error(env, PLEXUS_ENOMEM);
    randombytes_buf(nonce, sizeof nonce);
    enif_mutex_lock(r->lock);
    rc = plexus_beacon_seal(r->b, &m, nonce, out.data, out.size, &len);
    enif_mutex_unlock(r->lock);
    if (rc || !enif_realloc_binary(&out, len)) {
        enif_release_binary(&out);
        return nif_error(env, rc ? rc : PLEXUS_ENOMEM);
    }
    return enif_make_binary(env, &out);
}

/* beacon_open(Ref, Bin, NowMs) -> {ok, {Name, Inc, Seq, Epoch, Meta}} | {error, R} */
ERL_NIF_TERM nif_beacon_open(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    beacon_res *r;
    ErlNifBinary in;
    uint64_t now;
    plexus_beacon_msg m;
    ERL_NIF_TERM name, meta, ret;
    int rc;

    if (argc != 3 || !get_res(env, argv[0], &r) || !enif_inspect_binary(env, argv[1], &in) ||
        !nif_get_u64(env, argv[2], &now))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    rc = plexus_beacon_open(r->b, in.data, in.size, now, wall_ms(), &m);
    /* m points into the codec's scratch: build the terms before unlocking */
    if (rc == PLEXUS_OK) {
        if (!nif_make_bytes(env, m.name, &name) || !nif_disco_make_meta(env, &m.meta, &meta))
            rc = PLEXUS_ENOMEM;
    }
    enif_mutex_unlock(r->lock);
    if (rc) return nif_error(env, rc);
    ret = enif_make_tuple5(env, name, enif_make_uint64(env, m.incarnation),
                           enif_make_uint64(env, m.sequence), enif_make_uint(env, m.epoch), meta);
    return enif_make_tuple2(env, nif_priv_get(env)->atom_ok, ret);
}

/* beacon_stats(Ref) -> map */
ERL_NIF_TERM nif_beacon_stats(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    const nif_priv *priv = nif_priv_get(env);
    beacon_res *r;
    plexus_beacon_counters c;
    ERL_NIF_TERM map;
    if (argc != 1 || !get_res(env, argv[0], &r)) return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    plexus_beacon_get_counters(r->b, &c);
    enif_mutex_unlock(r->lock);
    ERL_NIF_TERM keys[] = {priv->atom_sealed,      priv->atom_accepted, priv->atom_malformed,
                           priv->atom_auth_failed, priv->atom_replayed, priv->atom_stale,
                           priv->atom_table_full,  priv->atom_senders};
    ERL_NIF_TERM vals[] = {
        enif_make_uint64(env, c.sealed),     enif_make_uint64(env, c.accepted),
        enif_make_uint64(env, c.malformed),  enif_make_uint64(env, c.auth_failed),
        enif_make_uint64(env, c.replayed),   enif_make_uint64(env, c.stale),
        enif_make_uint64(env, c.table_full), enif_make_uint64(env, c.senders)};
    if (!enif_make_map_from_arrays(env, keys, vals, sizeof keys / sizeof *keys, &map))
        return enif_make_badarg(env); /* cannot happen: distinct keys */
    return map;
}

/* beacon_forget(Ref, NameBin) -> ok | {error, not_found} */
ERL_NIF_TERM nif_beacon_forget(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    beacon_res *r;
    ErlNifBinary name;
    if (argc != 2 || !get_res(env, argv[0], &r) || !enif_inspect_binary(env, argv[1], &name))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    int rc = plexus_beacon_forget(r->b, name.data, name.size);
    enif_mutex_unlock(r->lock);
    return rc ? nif_error(env, rc) : nif_priv_get(env)->atom_ok;
}
