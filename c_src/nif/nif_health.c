/*
 * Failure detector NIFs; see nif_health.h. Shape of every NIF (doc/STYLE.md habit 5):
 * arity/type checks -> decode -> core call (under the resource mutex) -> encode.
 */
#include "nif/nif_health.h"

#include <string.h>

#include "nif/nif_util.h"
#include "plexus/health.h"

typedef struct health_res {
    ErlNifMutex *lock;
    plexus_health *h; /* freed in the destructor only */
} health_res;

static void health_dtor(ErlNifEnv *env, void *obj)
{
    (void)env;
    health_res *r = obj;
    plexus_health_free(r->h);
    if (r->lock) enif_mutex_destroy(r->lock);
}

int nif_health_load(ErlNifEnv *env, nif_priv *priv)
{
    priv->health_type = enif_open_resource_type(env, NULL, "plexus_health", health_dtor,
                                                ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    return priv->health_type == NULL;
}

/* ---------------------------------------------------------------- helpers */

static int get_res(ErlNifEnv *env, ERL_NIF_TERM t, health_res **out)
{
    return enif_get_resource(env, t, nif_priv_get(env)->health_type, (void **)out) && (*out)->h;
}

static int get_node(ErlNifEnv *env, ERL_NIF_TERM t, ErlNifBinary *bin)
{
    return enif_inspect_binary(env, t, bin) && bin->size > 0 && bin->size <= PLEXUS_HEALTH_NAME_MAX;
}

typedef struct ev_acc {
    ErlNifEnv *env;
    ERL_NIF_TERM list; /* reversed */
    int oom;
} ev_acc;

static void collect(void *ctx, const plexus_health_event *ev)
{
    ev_acc *acc = ctx;
    ERL_NIF_TERM node;
    unsigned char *p = enif_make_new_binary(acc->env, ev->node_len, &node);
    if (!p) {
        acc->oom = 1;
        return;
    }
    memcpy(p, ev->node, ev->node_len);
    const nif_priv *priv = nif_priv_get(acc->env);
    ERL_NIF_TERM t = enif_make_tuple5(acc->env, priv->health_event[ev->kind], node,
                                      priv->health_status[ev->from], priv->health_status[ev->to],
                                      priv->health_reason[ev->reason]);
    acc->list = enif_make_list_cell(acc->env, t, acc->list);
}

static ERL_NIF_TERM events(ev_acc *acc)
{
    ERL_NIF_TERM out;
    enif_make_reverse_list(acc->env, acc->list, &out);
    return out;
}

/* What an input call returns: {error, Reason} when the detector refused the input
 * (rc) or an event could not be built, else the events in the order they came. */
static ERL_NIF_TERM input_result(ev_acc *acc, int rc)
{
    if (!rc && acc->oom) rc = PLEXUS_ENOMEM;
    return rc ? nif_error(acc->env, rc) : events(acc);
}

static ERL_NIF_TERM stats_map(ErlNifEnv *env, ERL_NIF_TERM node, const plexus_health_stats *s)
{
    const nif_priv *priv = nif_priv_get(env);
    ERL_NIF_TERM keys[] = {priv->atom_node,           priv->atom_status,     priv->atom_since_ms,
                           priv->atom_last_answer_ms, priv->atom_answers,    priv->atom_samples,
                           priv->atom_rtt_last_us,    priv->atom_rtt_avg_us, priv->atom_rtt_p50_us,
                           priv->atom_rtt_p99_us,     priv->atom_rtt_min_us, priv->atom_rtt_max_us};
    ERL_NIF_TERM vals[] = {node,
                           priv->health_status[s->status],
                           enif_make_uint64(env, s->since_ms),
                           enif_make_uint64(env, s->last_answer_ms),
                           enif_make_uint64(env, s->answers),
                           enif_make_uint(env, s->samples),
                           enif_make_uint(env, s->rtt_last_us),
                           enif_make_uint(env, s->rtt_avg_us),
                           enif_make_uint(env, s->rtt_p50_us),
                           enif_make_uint(env, s->rtt_p99_us),
                           enif_make_uint(env, s->rtt_min_us),
                           enif_make_uint(env, s->rtt_max_us)};
    ERL_NIF_TERM map;
    if (!enif_make_map_from_arrays(env, keys, vals, sizeof keys / sizeof keys[0], &map))
        return enif_make_badarg(env); /* cannot happen: keys are distinct */
    return map;
}

/* ---------------------------------------------------------------- NIFs */

/* health_new(PingIntervalMs, SuspectAfterMs, DownAfterMs) -> Ref | {error, invalid_argument} */
ERL_NIF_TERM nif_health_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    unsigned ping, suspect, down;
    health_res *r = NULL;
    ERL_NIF_TERM ret;
    if (argc != 3 || !enif_get_uint(env, argv[0], &ping) ||
        !enif_get_uint(env, argv[1], &suspect) || !enif_get_uint(env, argv[2], &down))
        goto bad_arg;
    plexus_health_config cfg = {ping, suspect, down};
    plexus_health *h = NULL;
    int rc = plexus_health_new(&cfg, &nif_alloc, &h);
    if (rc) {
        ret = nif_error(env, rc);
        goto done;
    }
    ErlNifMutex *lock = enif_mutex_create("plexus_health");
    if (!lock) {
        plexus_health_free(h);
        ret = nif_error(env, PLEXUS_ENOMEM);
        goto done;
    }
    r = enif_alloc_resource(nif_priv_get(env)->health_type, sizeof *r);
    if (!r) {
        enif_mutex_destroy(lock);
        plexus_health_free(h);
        ret = nif_error(env, PLEXUS_ENOMEM);
        goto done;
    }
    memset(r, 0, sizeof *r);
    r->lock = lock;
    r->h = h;
    ret = enif_make_resource(env, r);
    enif_release_resource(r);
    goto done;
bad_arg:
    ret = enif_make_badarg(env);
done:
    return ret;
}

/* health_up(Ref, NodeBin, NowMs) -> [Event] | {error, Reason} */
ERL_NIF_TERM nif_health_up(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    health_res *r;
    ErlNifBinary node;
    uint64_t now;
    if (argc != 3 || !get_res(env, argv[0], &r) || !get_node(env, argv[1], &node) ||
        !nif_get_u64(env, argv[2], &now))
        return enif_make_badarg(env);
    ev_acc acc = {env, enif_make_list(env, 0), 0};
    enif_mutex_lock(r->lock);
    int rc = plexus_health_up(r->h, node.data, node.size, now, collect, &acc);
    enif_mutex_unlock(r->lock);
    return input_result(&acc, rc);
}

/* health_answer(Ref, NodeBin, NowMs, RttUs) -> [Event] | {error, not_found} */
ERL_NIF_TERM nif_health_answer(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    health_res *r;
    ErlNifBinary node;
    uint64_t now;
    unsigned rtt;
    if (argc != 4 || !get_res(env, argv[0], &r) || !get_node(env, argv[1], &node) ||
        !nif_get_u64(env, argv[2], &now) || !enif_get_uint(env, argv[3], &rtt))
        return enif_make_badarg(env);
    ev_acc acc = {env, enif_make_list(env, 0), 0};
    enif_mutex_lock(r->lock);
    int rc = plexus_health_answer(r->h, node.data, node.size, now, rtt, collect, &acc);
    enif_mutex_unlock(r->lock);
    return input_result(&acc, rc);
}

/* health_down(Ref, NodeBin, NowMs, Reason) -> [Event] | {error, not_found} */
ERL_NIF_TERM nif_health_down(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    const nif_priv *priv = nif_priv_get(env);
    health_res *r;
    ErlNifBinary node;
    uint64_t now;
    int reason = -1;
    if (argc != 4 || !get_res(env, argv[0], &r) || !get_node(env, argv[1], &node) ||
        !nif_get_u64(env, argv[2], &now))
        return enif_make_badarg(env);
    for (int i = 1; i <= PLEXUS_HEALTH_R_MAX; i++)
        if (enif_is_identical(argv[3], priv->health_reason[i])) reason = i;
    if (reason < 0) return enif_make_badarg(env);
    ev_acc acc = {env, enif_make_list(env, 0), 0};
    enif_mutex_lock(r->lock);
    int rc = plexus_health_down(r->h, node.data, node.size, now, (plexus_health_reason)reason,
                                collect, &acc);
    enif_mutex_unlock(r->lock);
    return input_result(&acc, rc);
}

/* health_tick(Ref, NowMs) -> {[Event], NextDeadlineMs | infinity} */
ERL_NIF_TERM nif_health_tick(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    health_res *r;
    uint64_t now;
    if (argc != 2 || !get_res(env, argv[0], &r) || !nif_get_u64(env, argv[1], &now))
        return enif_make_badarg(env);
    ev_acc acc = {env, enif_make_list(env, 0), 0};
    enif_mutex_lock(r->lock);
    plexus_health_tick(r->h, now, collect, &acc);
    uint64_t next = plexus_health_next_deadline(r->h);
    enif_mutex_unlock(r->lock);
    if (acc.oom) return nif_error(env, PLEXUS_ENOMEM);
    return enif_make_tuple2(env, events(&acc),
                            next == UINT64_MAX ? nif_priv_get(env)->atom_infinity
                                               : enif_make_uint64(env, next));
}

/* health_remove(Ref, NodeBin) -> ok | {error, not_found} */
ERL_NIF_TERM nif_health_remove(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    health_res *r;
    ErlNifBinary node;
    if (argc != 2 || !get_res(env, argv[0], &r) || !get_node(env, argv[1], &node))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    int rc = plexus_health_remove(r->h, node.data, node.size);
    enif_mutex_unlock(r->lock);
    return rc ? nif_error(env, rc) : nif_priv_get(env)->atom_ok;
}

/* health_get(Ref, NodeBin) -> {ok, Map} | {error, not_found} */
ERL_NIF_TERM nif_health_get(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    health_res *r;
    ErlNifBinary node;
    if (argc != 2 || !get_res(env, argv[0], &r) || !get_node(env, argv[1], &node))
        return enif_make_badarg(env);
    plexus_health_stats st;
    enif_mutex_lock(r->lock);
    int rc = plexus_health_get(r->h, node.data, node.size, &st);
    enif_mutex_unlock(r->lock);
    if (rc) return nif_error(env, rc);
    return enif_make_tuple2(env, nif_priv_get(env)->atom_ok, stats_map(env, argv[1], &st));
}

/* health_list(Ref) -> [Map] (every node the detector knows) */
ERL_NIF_TERM nif_health_list(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    health_res *r;
    if (argc != 1 || !get_res(env, argv[0], &r)) return enif_make_badarg(env);
    ERL_NIF_TERM list = enif_make_list(env, 0);
    int oom = 0;
    enif_mutex_lock(r->lock);
    for (size_t i = plexus_health_count(r->h); i-- > 0;) {
        const uint8_t *p;
        size_t len;
        plexus_health_stats st;
        plexus_health_at(r->h, i, &p, &len, &st);
        ERL_NIF_TERM node;
        unsigned char *b = enif_make_new_binary(env, len, &node);
        if (!b) {
            oom = 1;
            break;
        }
        memcpy(b, p, len);
        list = enif_make_list_cell(env, stats_map(env, node, &st), list);
    }
    enif_mutex_unlock(r->lock);
    return oom ? nif_error(env, PLEXUS_ENOMEM) : list;
}
