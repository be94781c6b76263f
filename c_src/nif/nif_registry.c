/*
 * TTL registry NIFs; see nif_registry.h. Shape (doc/STYLE.md habit 5): arity/type checks
 * -> decode -> core call under the resource mutex -> encode, goto ladder where there
 * is something to unwind.
 */
#include "nif/nif_registry.h"

#include <sodium.h>
#include <string.h>

#include "nif/nif_disco.h"
#include "nif/nif_util.h"
#include "plexus/registry.h"

typedef struct registry_res {
    ErlNifMutex *lock;
    plexus_registry *r; /* freed in the destructor only */
} registry_res;

static void registry_dtor(ErlNifEnv *env, void *obj)
{
    (void)env;
    registry_res *r = obj;
    plexus_registry_free(r->r);
    if (r->lock) enif_mutex_destroy(r->lock);
}

int nif_registry_load(ErlNifEnv *env, nif_priv *priv)
{
    priv->registry_type = enif_open_resource_type(env, NULL, "plexus_registry", registry_dtor,
                                                  ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    return priv->registry_type == NULL;
}

/* Eviction weighs this much per entry when deciding to go dirty: ~1.1 us per evicted
 * entry measured (make bench, 100k entries), so with the default threshold of 64 KiB
 * calls that may evict more than 512 entries leave the normal schedulers. */
#define EVICT_WEIGHT 128u

/* ---------------------------------------------------------------- helpers */

static int get_res(ErlNifEnv *env, ERL_NIF_TERM t, registry_res **out)
{
    return enif_get_resource(env, t, nif_priv_get(env)->registry_type, (void **)out) && (*out)->r;
}

static uint64_t sodium_rand(void *ctx)
{
    (void)ctx;
    uint64_t x;
    randombytes_buf(&x, sizeof x);
    return x;
}

/* A list of at most PLEXUS_REGISTRY_ADDRS_MAX binaries of 1..255 bytes. */
static int get_addrs(ErlNifEnv *env, ERL_NIF_TERM list, plexus_registry_addrs *out)
{
    ERL_NIF_TERM head, tail = list;
    out->n = 0;
    while (enif_get_list_cell(env, tail, &head, &tail)) {
        ErlNifBinary b;
        if (out->n == PLEXUS_REGISTRY_ADDRS_MAX || !enif_inspect_binary(env, head, &b) ||
            b.size < 1 || b.size > PLEXUS_REGISTRY_ADDR_MAX)
            return 0;
        out->addr[out->n++] = (plexus_bytes){b.data, b.size};
    }
    return enif_is_empty_list(env, tail);
}

static int make_addrs(ErlNifEnv *env, const plexus_registry_addrs *a, ERL_NIF_TERM *out)
{
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = a->n; i > 0; i--) {
        ERL_NIF_TERM b;
        if (!nif_make_bytes(env, a->addr[i - 1], &b)) return 0;
        list = enif_make_list_cell(env, b, list);
    }
    *out = list;
    return 1;
}

static int make_entry(ErlNifEnv *env, const plexus_registry_entry *e, ERL_NIF_TERM *out)
{
    const nif_priv *priv = nif_priv_get(env);
    ERL_NIF_TERM vals[4];
    if (!nif_make_bytes(env, e->peer, &vals[0]) || !make_addrs(env, &e->addrs, &vals[1]) ||
        !nif_disco_make_meta(env, &e->meta, &vals[2]))
        return 0;
    vals[3] = enif_make_uint64(env, e->remaining_ttl_ms);
    ERL_NIF_TERM keys[4] = {priv->atom_peer, priv->atom_addrs, priv->atom_metadata,
                            priv->atom_ttl_ms};
    return enif_make_map_from_arrays(env, keys, vals, 4, out);
}

typedef struct list_acc {
    ErlNifEnv *env;
    ERL_NIF_TERM list; /* reversed */
    int oom;
} list_acc;

static int collect(void *ctx, const plexus_registry_entry *e)
{
    list_acc *acc = ctx;
    ERL_NIF_TERM t;
    if (!make_entry(acc->env, e, &t)) {
        acc->oom = 1;
        return 1;
    }
    acc->list = enif_make_list_cell(acc->env, t, acc->list);
    return 0;
}

/* Optional integer option. 0 = bad type. */
static int opt_u64(ErlNifEnv *env, ERL_NIF_TERM map, ERL_NIF_TERM key, uint64_t *out)
{
    ERL_NIF_TERM v;
    if (!enif_get_map_value(env, map, key, &v)) return 1;
    return nif_get_u64(env, v, out);
}

/* ---------------------------------------------------------------- server NIFs */

/* registry_new(Opts) -> Ref | {error, invalid_argument} */
ERL_NIF_TERM nif_registry_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    nif_priv *priv = nif_priv_get(env);
    plexus_registry_config cfg;
    uint8_t trusted[PLEXUS_REGISTRY_TRUSTED_MAX][PLEXUS_REGISTRY_PK_BYTES];
    plexus_registry_addrs server = {0};
    uint64_t max = 0, def = 0, min = 0, maxttl = 0, skew = 0, maxbytes = 0;
    plexus_registry *reg = NULL;
    ErlNifMutex *lock = NULL;
    registry_res *res;
    ERL_NIF_TERM v, ret;
    int rc;

    memset(&cfg, 0, sizeof cfg);
    if (argc != 1 || !enif_is_map(env, argv[0])) goto bad_arg;
    if (!opt_u64(env, argv[0], priv->atom_max_entries, &max) ||
        !opt_u64(env, argv[0], priv->atom_default_ttl_ms, &def) ||
        !opt_u64(env, argv[0], priv->atom_min_ttl_ms, &min) ||
        !opt_u64(env, argv[0], priv->atom_max_ttl_ms, &maxttl) ||
        !opt_u64(env, argv[0], priv->atom_max_skew_ms, &skew) ||
        !opt_u64(env, argv[0], priv->atom_max_bytes, &maxbytes) || maxbytes > SIZE_MAX)
        goto bad_arg;
    cfg.max_bytes = (size_t)maxbytes;
    if (def > UINT32_MAX || min > UINT32_MAX || maxttl > UINT32_MAX || max > SIZE_MAX) goto bad_arg;
    cfg.max_entries = (size_t)max;
    cfg.default_ttl_ms = (uint32_t)def;
    cfg.min_ttl_ms = (uint32_t)min;
    cfg.max_ttl_ms = (uint32_t)maxttl;
    cfg.max_skew_ms = skew;
    if (enif_get_map_value(env, argv[0], priv->atom_require_signed, &v)) {
        if (enif_is_identical(v, priv->atom_true))
            cfg.require_signed = 1;
        else if (!enif_is_identical(v, priv->atom_false))
            goto bad_arg;
    }
    if (enif_get_map_value(env, argv[0], priv->atom_trusted_keys, &v)) {
        ERL_NIF_TERM head, tail = v;
        while (enif_get_list_cell(env, tail, &head, &tail)) {
            ErlNifBinary k;
            if (cfg.n_trusted == PLEXUS_REGISTRY_TRUSTED_MAX ||
                !enif_inspect_binary(env, head, &k) || k.size != PLEXUS_REGISTRY_PK_BYTES)
                goto bad_arg;
            memcpy(trusted[cfg.n_trusted++], k.data, PLEXUS_REGISTRY_PK_BYTES);
        }
        if (!enif_is_empty_list(env, tail)) goto bad_arg;
        cfg.trusted_keys = (const uint8_t(*)[PLEXUS_REGISTRY_PK_BYTES])trusted;
    }
    if (enif_get_map_value(env, argv[0], priv->atom_server_addrs, &v) &&
        !get_addrs(env, v, &server))
        goto bad_arg;
    randombytes_buf(cfg.hash_key, sizeof cfg.hash_key);
    randombytes_buf(cfg.cookie_key, sizeof cfg.cookie_key);
    rc = plexus_registry_new(&cfg, &nif_alloc, &reg);
    sodium_memzero(cfg.hash_key, sizeof cfg.hash_key);
    sodium_memzero(cfg.cookie_key, sizeof cfg.cookie_key);
    if (rc) goto err;
    if ((rc = plexus_registry_set_server_addrs(reg, &server))) goto err;
    if (!(lock = enif_mutex_create("plexus_registry"))) {
        rc = PLEXUS_ENOMEM;
        goto err;
    }
    if (!(res = enif_alloc_resource(priv->registry_type, sizeof *res))) {
        rc = PLEXUS_ENOMEM;
        goto err;
    }
    memset(res, 0, sizeof *res);
    res->lock = lock;
    res->r = reg;
    ret = enif_make_resource(env, res);
    enif_release_resource(res);
    return ret;

bad_arg:
    return enif_make_badarg(env);
err:
    if (lock) enif_mutex_destroy(lock);
    plexus_registry_free(reg);
    return nif_error(env, rc);
}

/* registry_handle(Ref, Datagram, Source, NowMs) -> {Result, ReplyBin} */
ERL_NIF_TERM nif_registry_handle(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    const nif_priv *priv = nif_priv_get(env);
    registry_res *r;
    ErlNifBinary in, src;
    uint64_t now;
    plexus_buf reply;
    plexus_registry_result res;
    ERL_NIF_TERM result, reply_t, peer = 0;
    int rc;

    if (argc != 4 || !get_res(env, argv[0], &r) || !enif_inspect_binary(env, argv[1], &in) ||
        !enif_inspect_binary(env, argv[2], &src) || src.size > PLEXUS_REGISTRY_SOURCE_MAX ||
        !nif_get_u64(env, argv[3], &now))
        return enif_make_badarg(env);
    /* A query may evict every expired entry, an announce to a full table too: with a
     * large table that work goes to a dirty scheduler (measured ~1 us per eviction). */
    enif_mutex_lock(r->lock);
    size_t size = plexus_registry_size(r->r);
    int may_evict = (in.size > 4 && in.data[4] == PLEXUS_REGISTRY_QUERY) ||
                    size >= plexus_registry_capacity(r->r);
    enif_mutex_unlock(r->lock);
    if (may_evict && nif_should_go_dirty(env, (uint64_t)size * EVICT_WEIGHT))
        return nif_go_dirty(env, "registry_handle", nif_registry_handle, argc, argv);
    plexus_buf_init(&reply, &nif_alloc);
    enif_mutex_lock(r->lock);
    rc = plexus_registry_handle(r->r, in.data, in.size, src.data, src.size, now, sodium_rand, NULL,
                                &reply, &res);
    enif_mutex_unlock(r->lock);
    if (rc) goto err;
    /* res.peer borrows the input binary, still alive here */
    if (res.peer.n && !nif_make_bytes(env, res.peer, &peer)) {
        rc = PLEXUS_ENOMEM;
        goto err;
    }
    switch (res.outcome) {
    case PLEXUS_REGISTRY_ANNOUNCED:
        result = enif_make_tuple4(env, priv->atom_announced,
                                  res.grant.is_new ? priv->atom_new : priv->atom_refreshed, peer,
                                  enif_make_uint(env, res.grant.ttl_ms));
        break;
    case PLEXUS_REGISTRY_REFUSED_OUT:
        result = enif_make_tuple3(env, priv->atom_refused, nif_error_reason(env, res.err), peer);
        break;
    case PLEXUS_REGISTRY_QUERIED:
        result = priv->atom_queried;
        break;
    case PLEXUS_REGISTRY_COOKIE_OUT:
        result = priv->atom_cookie;
        break;
    case PLEXUS_REGISTRY_LEFT:
        result = enif_make_tuple2(env, priv->atom_left, peer);
        break;
    case PLEXUS_REGISTRY_IGNORED:
        result = enif_make_tuple2(env, priv->atom_ignored, nif_error_reason(env, res.err));
        break;
    default:
        result = enif_make_tuple2(env, priv->atom_dropped, nif_error_reason(env, res.err));
    }
    if (!nif_make_binary(env, &reply, &reply_t)) {
        rc = PLEXUS_ENOMEM;
        goto err;
    }
    plexus_buf_free(&reply);
    return enif_make_tuple2(env, result, reply_t);
err:
    plexus_buf_free(&reply);
    return nif_error(env, rc);
}

/* Entries weigh this much each when deciding to go dirty (a map of binaries). */
#define ENTRY_WEIGHT 256u

static ERL_NIF_TERM list_entries(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[], int sample)
{
    registry_res *r;
    uint64_t now, n = 0;
    int now_arg = sample ? 2 : 1;
    if (argc != now_arg + 1 || !get_res(env, argv[0], &r) ||
        !nif_get_u64(env, argv[now_arg], &now) || (sample && !nif_get_u64(env, argv[1], &n)))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    size_t size = plexus_registry_size(r->r);
    uint64_t k = sample && n < size ? n : size;
    if (nif_should_go_dirty(env, k * ENTRY_WEIGHT + (uint64_t)size * EVICT_WEIGHT)) {
        enif_mutex_unlock(r->lock);
        return nif_go_dirty(env, sample ? "registry_sample" : "registry_view",
                            sample ? nif_registry_sample : nif_registry_view, argc, argv);
    }
    list_acc acc = {env, enif_make_list(env, 0), 0};
    if (sample)
        (void)plexus_registry_sample(r->r, now, (size_t)(n > SIZE_MAX ? SIZE_MAX : n), sodium_rand,
                                     NULL, collect, &acc);
    else
        (void)plexus_registry_view(r->r, now, collect, &acc);
    enif_mutex_unlock(r->lock);
    if (acc.oom) return nif_error(env, PLEXUS_ENOMEM);
    ERL_NIF_TERM out;
    enif_make_reverse_list(env, acc.list, &out);
    return out;
}

/* registry_sample(Ref, N, NowMs) -> [Entry] */
ERL_NIF_TERM nif_registry_sample(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    return list_entries(env, argc, argv, 1);
}

/* registry_view(Ref, NowMs) -> [Entry] */
ERL_NIF_TERM nif_registry_view(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    return list_entries(env, argc, argv, 0);
}

/* registry_lookup(Ref, Peer, NowMs) -> {ok, Entry} | {error, not_found} */
ERL_NIF_TERM nif_registry_lookup(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    const nif_priv *priv = nif_priv_get(env);
    registry_res *r;
    ErlNifBinary peer;
    uint64_t now;
    plexus_registry_entry e;
    ERL_NIF_TERM t;
    if (argc != 3 || !get_res(env, argv[0], &r) || !enif_inspect_binary(env, argv[1], &peer) ||
        !nif_get_u64(env, argv[2], &now))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    int rc = plexus_registry_lookup(r->r, peer.data, peer.size, now, &e);
    if (rc == PLEXUS_OK && !make_entry(env, &e, &t)) rc = PLEXUS_ENOMEM;
    enif_mutex_unlock(r->lock);
    if (rc) return nif_error(env, rc);
    return enif_make_tuple2(env, priv->atom_ok, t);
}

/* registry_evict(Ref, NowMs) -> Count */
ERL_NIF_TERM nif_registry_evict(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    registry_res *r;
    uint64_t now;
    if (argc != 2 || !get_res(env, argv[0], &r) || !nif_get_u64(env, argv[1], &now))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    size_t size = plexus_registry_size(r->r);
    if (nif_should_go_dirty(env, (uint64_t)size * EVICT_WEIGHT)) {
        enif_mutex_unlock(r->lock);
        return nif_go_dirty(env, "registry_evict", nif_registry_evict, argc, argv);
    }
    size_t k = plexus_registry_evict(r->r, now);
    enif_mutex_unlock(r->lock);
    return enif_make_uint64(env, k);
}

/* registry_stats(Ref) -> map */
ERL_NIF_TERM nif_registry_stats(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    const nif_priv *priv = nif_priv_get(env);
    registry_res *r;
    plexus_registry_stats s;
    ERL_NIF_TERM map;
    if (argc != 1 || !get_res(env, argv[0], &r)) return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    plexus_registry_get_stats(r->r, &s);
    enif_mutex_unlock(r->lock);
    /* Each key beside its counter, so the two cannot drift apart. */
    const struct {
        ERL_NIF_TERM key;
        uint64_t value;
    } counter[] = {
        {priv->atom_entries, s.entries},
        {priv->atom_announces, s.announces},
        {priv->atom_created, s.created},
        {priv->atom_refreshed, s.refreshed},
        {priv->atom_byes, s.byes},
        {priv->atom_evicted, s.evicted},
        {priv->atom_queries, s.queries},
        {priv->atom_refused_full, s.refused_full},
        {priv->atom_refused_auth, s.refused_auth},
        {priv->atom_refused_replay, s.refused_replay},
        {priv->atom_malformed, s.malformed},
        {priv->atom_bytes, s.bytes},
        {priv->atom_refused_source, s.refused_source},
        {priv->atom_cookies, s.cookies},
        {priv->atom_unverified, s.unverified},
    };
    enum { N_STATS = sizeof counter / sizeof counter[0] };
    ERL_NIF_TERM keys[N_STATS], vals[N_STATS];
    for (size_t i = 0; i < N_STATS; i++) {
        keys[i] = counter[i].key;
        vals[i] = enif_make_uint64(env, counter[i].value);
    }
    if (!enif_make_map_from_arrays(env, keys, vals, N_STATS, &map)) return enif_make_badarg(env);
    return map;
}

/* ---------------------------------------------------------------- client codec */

/* <<>> = unsigned; a 32-byte binary = an Ed25519 seed. 0 = badarg. */
static int get_seed(ErlNifEnv *env, ERL_NIF_TERM t, const uint8_t **seed)
{
    ErlNifBinary b;
    if (!enif_inspect_binary(env, t, &b)) return 0;
    if (b.size == 0) {
        *seed = NULL;
        return 1;
    }
    if (b.size != PLEXUS_REGISTRY_SEED_BYTES) return 0;
    *seed = b.data;
    return 1;
}

static ERL_NIF_TERM buf_result(ErlNifEnv *env, plexus_buf *b, int rc)
{
    ERL_NIF_TERM out;
    if (!rc && !nif_make_binary(env, b, &out)) rc = PLEXUS_ENOMEM;
    plexus_buf_free(b);
    return rc ? nif_error(env, rc) : out;
}

/* registry_encode_announce(ReqId, Peer, Addrs, Meta, TtlMs, IssuedMs, Seed) */
ERL_NIF_TERM nif_registry_encode_announce(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    uint64_t req, ttl, issued;
    ErlNifBinary peer;
    plexus_registry_addrs addrs;
    plexus_disco_meta meta;
    const uint8_t *seed;
    plexus_buf b;
    if (argc != 7 || !nif_get_u64(env, argv[0], &req) ||
        !enif_inspect_binary(env, argv[1], &peer) || !get_addrs(env, argv[2], &addrs) ||
        !nif_disco_get_meta(env, argv[3], &meta) || !nif_get_u64(env, argv[4], &ttl) ||
        !nif_get_u64(env, argv[5], &issued) || !get_seed(env, argv[6], &seed))
        return enif_make_badarg(env);
    plexus_buf_init(&b, &nif_alloc);
    int rc = plexus_registry_encode_announce(&b, req, (plexus_bytes){peer.data, peer.size}, &addrs,
                                             &meta, ttl, issued, seed);
    return buf_result(env, &b, rc);
}

/* registry_encode_query(ReqId, Max, Cookie, PadTo): Cookie <<>> or the 16 bytes of a
 * COOKIE; zero padding up to PadTo bytes. */
ERL_NIF_TERM nif_registry_encode_query(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    uint64_t req, max, pad;
    ErlNifBinary cookie;
    plexus_buf b;
    if (argc != 4 || !nif_get_u64(env, argv[0], &req) || !nif_get_u64(env, argv[1], &max) ||
        !enif_inspect_binary(env, argv[2], &cookie) ||
        (cookie.size != 0 && cookie.size != PLEXUS_REGISTRY_COOKIE_BYTES) ||
        !nif_get_u64(env, argv[3], &pad) || pad > PLEXUS_REGISTRY_MSG_MAX)
        return enif_make_badarg(env);
    plexus_buf_init(&b, &nif_alloc);
    return buf_result(
        env, &b,
        plexus_registry_encode_query(&b, req, max, cookie.size ? cookie.data : NULL, (size_t)pad));
}

/* registry_encode_bye(ReqId, Peer, IssuedMs, Seed) */
ERL_NIF_TERM nif_registry_encode_bye(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    uint64_t req, issued;
    ErlNifBinary peer;
    const uint8_t *seed;
    plexus_buf b;
    if (argc != 4 || !nif_get_u64(env, argv[0], &req) ||
        !enif_inspect_binary(env, argv[1], &peer) || !nif_get_u64(env, argv[2], &issued) ||
        !get_seed(env, argv[3], &seed))
        return enif_make_badarg(env);
    plexus_buf_init(&b, &nif_alloc);
    return buf_result(
        env, &b,
        plexus_registry_encode_bye(&b, req, (plexus_bytes){peer.data, peer.size}, issued, seed));
}

/* registry_decode(Bin) -> {ok, Map} | {error, Reason} */
ERL_NIF_TERM nif_registry_decode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    nif_priv *priv = nif_priv_get(env);
    ErlNifBinary in;
    plexus_registry_msg m;
    ERL_NIF_TERM keys[10], vals[10], map, t;
    static const uint8_t no_cookie[1];
    size_t n = 0;
    int rc;
    if (argc != 1 || !enif_inspect_binary(env, argv[0], &in)) return enif_make_badarg(env);
    if (in.size > PLEXUS_REGISTRY_MSG_MAX && nif_should_go_dirty(env, in.size))
        return nif_go_dirty(env, "registry_decode", nif_registry_decode, argc, argv);
    if ((rc = plexus_registry_msg_decode(in.data, in.size, &m))) return nif_error(env, rc);
#define PUT(k, v)                                                                                  \
    do {                                                                                           \
        keys[n] = (k);                                                                             \
        vals[n++] = (v);                                                                           \
    } while (0)
    PUT(priv->atom_type, priv->registry_msg_type[m.type]);
    PUT(priv->atom_request_id, enif_make_uint64(env, m.request_id));
    switch (m.type) {
    case PLEXUS_REGISTRY_ANNOUNCE:
    case PLEXUS_REGISTRY_BYE:
        if (!nif_make_bytes(env, m.peer, &t)) goto nomem;
        PUT(priv->atom_peer, t);
        PUT(priv->atom_issued_ms, enif_make_uint64(env, m.issued_ms));
        PUT(priv->atom_signed, m.is_signed ? priv->atom_true : priv->atom_false);
        if (m.is_signed) {
            if (!nif_make_bytes(env, (plexus_bytes){m.public_key, PLEXUS_REGISTRY_PK_BYTES}, &t))
                goto nomem;
            PUT(priv->atom_public_key, t);
        }
        if (m.type == PLEXUS_REGISTRY_ANNOUNCE) {
            if (!make_addrs(env, &m.addrs, &t)) goto nomem;
            PUT(priv->atom_addrs, t);
            if (!nif_disco_make_meta(env, &m.meta, &t)) goto nomem;
            PUT(priv->atom_metadata, t);
            PUT(priv->atom_ttl_ms, enif_make_uint64(env, m.ttl_ms));
        }
        break;
    case PLEXUS_REGISTRY_HANDSHAKE:
        PUT(priv->atom_ttl_ms, enif_make_uint64(env, m.ttl_ms));
        PUT(priv->atom_heartbeat_ms, enif_make_uint64(env, m.heartbeat_ms));
        if (!make_addrs(env, &m.addrs, &t)) goto nomem;
        PUT(priv->atom_server_addrs, t);
        break;
    case PLEXUS_REGISTRY_QUERY:
    case PLEXUS_REGISTRY_COOKIE:
        if (m.type == PLEXUS_REGISTRY_QUERY)
            PUT(priv->atom_max_entries, enif_make_uint64(env, m.max_entries));
        if (!nif_make_bytes(env,
                            (plexus_bytes){m.cookie ? m.cookie : no_cookie,
                                           m.cookie ? PLEXUS_REGISTRY_COOKIE_BYTES : 0},
                            &t))
            goto nomem;
        PUT(priv->atom_cookie, t);
        break;
    case PLEXUS_REGISTRY_VIEW: {
        PUT(priv->atom_live_entries, enif_make_uint64(env, m.live_entries));
        list_acc acc = {env, enif_make_list(env, 0), 0};
        const uint8_t *pos = m.entries.p;
        plexus_registry_entry e;
        while (plexus_registry_view_next(&m, &pos, &e) == PLEXUS_OK)
            if (collect(&acc, &e)) break;
        if (acc.oom) goto nomem;
        enif_make_reverse_list(env, acc.list, &t);
        PUT(priv->atom_entries, t);
        break;
    }
    case PLEXUS_REGISTRY_REFUSED:
        PUT(priv->atom_reason, nif_error_reason(env, m.reason));
        break;
    }
#undef PUT
    if (!enif_make_map_from_arrays(env, keys, vals, n, &map)) return enif_make_badarg(env);
    return enif_make_tuple2(env, priv->atom_ok, map);
nomem:
    return nif_error(env, PLEXUS_ENOMEM);
}

/* registry_keypair() -> {PublicKey, Seed} */
ERL_NIF_TERM nif_registry_keypair(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argv;
    ERL_NIF_TERM pk_t, seed_t;
    if (argc != 0) return enif_make_badarg(env);
    unsigned char *seed = enif_make_new_binary(env, PLEXUS_REGISTRY_SEED_BYTES, &seed_t);
    unsigned char *pk = enif_make_new_binary(env, PLEXUS_REGISTRY_PK_BYTES, &pk_t);
    if (!seed || !pk) return nif_error(env, PLEXUS_ENOMEM);
    randombytes_buf(seed, PLEXUS_REGISTRY_SEED_BYTES);
    plexus_registry_public_key(seed, pk);
    return enif_make_tuple2(env, pk_t, seed_t);
}

/* registry_public_key(Seed) -> PublicKey */
ERL_NIF_TERM nif_registry_public_key(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    ErlNifBinary seed;
    ERL_NIF_TERM pk_t;
    if (argc != 1 || !enif_inspect_binary(env, argv[0], &seed) ||
        seed.size != PLEXUS_REGISTRY_SEED_BYTES)
        return enif_make_badarg(env);
    unsigned char *pk = enif_make_new_binary(env, PLEXUS_REGISTRY_PK_BYTES, &pk_t);
    if (!pk) return nif_error(env, PLEXUS_ENOMEM);
    plexus_registry_public_key(seed.data, pk);
    return pk_t;
}
