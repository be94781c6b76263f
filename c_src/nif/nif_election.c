/*
 * Election NIFs; see nif_election.h for the terms they return. Shape of
 * every NIF (doc/STYLE.md habit 5): arity/type checks -> decode -> core call (under the
 * resource mutex) -> encode, with a bad_arg: / done: ladder. Nothing here allocates
 * outside the resource and the result terms, so there is nothing to unwind but the lock.
 */
#include "nif/nif_election.h"

#include <sodium.h>
#include <string.h>

#include "nif/nif_util.h"
#include "plexus/election.h"

/* One election node. Zeroed at creation; `ready` is set once plexus_election_init
 * succeeded, so a half-made resource is never driven. The mutex is the only thing the
 * destructor frees (the machine holds no memory of its own). */
typedef struct election_res {
    ErlNifMutex *lock;
    int ready;
    uint64_t id, cluster_id; /* as configured, for election_info */
    uint64_t rng[2];         /* xorshift128+ state, never all zero */
    plexus_election e;
} election_res;

#define N_STATS 9

static void election_dtor(ErlNifEnv *env, void *obj)
{
    (void)env;
    election_res *r = obj;
    if (r->lock) enif_mutex_destroy(r->lock);
}

int nif_election_load(ErlNifEnv *env, nif_priv *priv)
{
    priv->election_type = enif_open_resource_type(env, NULL, "plexus_election", election_dtor,
                                                  ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    return priv->election_type == NULL;
}

/* ---------------------------------------------------------------- helpers */

/* xorshift128+ (Vigna 2014): fast, plenty for drawing timeouts; the seed is what must
 * differ between nodes, and it comes from the OS CSPRNG. */
static uint64_t rng_next(void *ctx)
{
    uint64_t *s = ctx;
    uint64_t x = s[0];
    const uint64_t y = s[1];
    s[0] = y;
    x ^= x << 23;
    s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    return s[1] + y;
}

static int get_res(ErlNifEnv *env, ERL_NIF_TERM t, election_res **out)
{
    return enif_get_resource(env, t, nif_priv_get(env)->election_type, (void **)out) &&
           (*out)->ready;
}

static int map_u64(ErlNifEnv *env, ERL_NIF_TERM map, ERL_NIF_TERM key, uint64_t *out)
{
    ERL_NIF_TERM v;
    return enif_get_map_value(env, map, key, &v) && nif_get_u64(env, v, out);
}

static int map_u32(ErlNifEnv *env, ERL_NIF_TERM map, ERL_NIF_TERM key, uint32_t *out)
{
    ERL_NIF_TERM v;
    unsigned u;
    if (!enif_get_map_value(env, map, key, &v) || !enif_get_uint(env, v, &u)) return 0;
    *out = u;
    return 1;
}

static int map_bool(ErlNifEnv *env, ERL_NIF_TERM map, ERL_NIF_TERM key, bool *out)
{
    ERL_NIF_TERM v;
    return enif_get_map_value(env, map, key, &v) && nif_get_bool(env, v, out);
}

/* A peer id argument: a nonzero uint64 (the core answers invalid_argument for self). */
static int get_id(ErlNifEnv *env, ERL_NIF_TERM t, uint64_t *out)
{
    return nif_get_u64(env, t, out) && *out != 0;
}

static ERL_NIF_TERM make_msg_bin(ErlNifEnv *env, const plexus_election_msg *m, int *ok)
{
    const nif_priv *priv = nif_priv_get(env);
    uint8_t buf[PLEXUS_ELECTION_MSG_MAX];
    size_t len = 0;
    ERL_NIF_TERM bin;
    /* The machine only emits valid messages; a failure here is a core bug, reported
     * as an error rather than a crash. */
    if (plexus_election_msg_encode(m, buf, sizeof buf, &len) != PLEXUS_OK) {
        *ok = 0;
        return priv->atom_none;
    }
    unsigned char *p = enif_make_new_binary(env, len, &bin);
    if (!p) {
        *ok = 0;
        return priv->atom_none;
    }
    memcpy(p, buf, len);
    return bin;
}

/*
 * Drains the ready batch into {Msgs, Hard, Soft} and advances the machine. Called with
 * the lock held, right after an input. When a message cannot be encoded (out of
 * memory) the batch is still advanced; the hard state must not be lost, so it is
 * returned with the messages that could be built (Raft tolerates lost messages).
 */
static ERL_NIF_TERM drain(ErlNifEnv *env, plexus_election *e)
{
    const nif_priv *priv = nif_priv_get(env);
    ERL_NIF_TERM msgs = enif_make_list(env, 0), hard = priv->atom_unchanged,
                 soft = priv->atom_unchanged;
    if (plexus_election_has_ready(e)) {
        plexus_election_ready rd;
        plexus_election_get_ready(e, &rd);
        for (size_t i = rd.n_msgs; i-- > 0;) {
            int ok = 1;
            ERL_NIF_TERM bin = make_msg_bin(env, &rd.msgs[i], &ok);
            if (!ok) continue;
            msgs = enif_make_list_cell(
                env, enif_make_tuple2(env, enif_make_uint64(env, rd.msgs[i].to), bin), msgs);
        }
        if (rd.hard_state_changed)
            hard = enif_make_tuple2(env, enif_make_uint64(env, rd.hard_state.term),
                                    enif_make_uint64(env, rd.hard_state.voted_for));
        if (rd.soft_state_changed)
            soft = enif_make_tuple2(env, priv->election_role[rd.role],
                                    enif_make_uint64(env, rd.leader));
        plexus_election_advance(e);
    }
    return enif_make_tuple3(env, msgs, hard, soft);
}

/* The result of an input call: the ready batch, or {error, Reason} when the core
 * refused the input (it then changed nothing but its counters). */
static ERL_NIF_TERM input_result(ErlNifEnv *env, election_res *r, int rc)
{
    ERL_NIF_TERM ret = rc == PLEXUS_OK ? drain(env, &r->e) : nif_error(env, rc);
    enif_mutex_unlock(r->lock);
    return ret;
}

/* ---------------------------------------------------------------- lifecycle */

/*
 * election_new(#{id, cluster_id, peers, election_min_ticks, election_max_ticks,
 *                heartbeat_ticks, pre_vote, check_quorum, hard_state})
 *   -> {ok, Ref} | {error, invalid_argument | full}
 * hard_state is {Term, VotedFor} (0 = no vote) or none (no saved state: the node sits
 * out one election timeout; see election.h). At most PLEXUS_ELECTION_MAX_NODES peer
 * ids are read; a longer list is {error, full}.
 */
ERL_NIF_TERM nif_election_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    const nif_priv *priv = nif_priv_get(env);
    uint64_t peers[PLEXUS_ELECTION_MAX_NODES];
    plexus_election_config cfg;
    plexus_election_hard_state hs;
    election_res *r = NULL;
    ERL_NIF_TERM ret, list, head, hs_term;
    const ERL_NIF_TERM *hs_elems;
    int arity;
    size_t n = 0;

    memset(&cfg, 0, sizeof cfg);
    if (argc != 1 || !enif_is_map(env, argv[0])) goto bad_arg;
    if (!map_u64(env, argv[0], priv->atom_id, &cfg.id) ||
        !map_u64(env, argv[0], priv->atom_cluster_id, &cfg.cluster_id) ||
        !map_u32(env, argv[0], priv->atom_election_min_ticks, &cfg.election_min_ticks) ||
        !map_u32(env, argv[0], priv->atom_election_max_ticks, &cfg.election_max_ticks) ||
        !map_u32(env, argv[0], priv->atom_heartbeat_ticks, &cfg.heartbeat_ticks) ||
        !map_bool(env, argv[0], priv->atom_pre_vote, &cfg.pre_vote) ||
        !map_bool(env, argv[0], priv->atom_check_quorum, &cfg.check_quorum) ||
        !enif_get_map_value(env, argv[0], priv->atom_peers, &list) ||
        !enif_get_map_value(env, argv[0], priv->atom_hard_state, &hs_term))
        goto bad_arg;
    if (enif_is_identical(hs_term, priv->atom_none)) {
        cfg.restored = NULL;
    } else if (enif_get_tuple(env, hs_term, &arity, &hs_elems) && arity == 2 &&
               nif_get_u64(env, hs_elems[0], &hs.term) &&
               nif_get_u64(env, hs_elems[1], &hs.voted_for)) {
        cfg.restored = &hs;
    } else {
        goto bad_arg;
    }
    while (enif_get_list_cell(env, list, &head, &list)) {
        if (n == PLEXUS_ELECTION_MAX_NODES) return nif_error(env, PLEXUS_EFULL);
        if (!nif_get_u64(env, head, &peers[n++])) goto bad_arg;
    }
    if (!enif_is_empty_list(env, list)) goto bad_arg;
    cfg.peers = peers;
    cfg.n_peers = n;

    r = enif_alloc_resource(priv->election_type, sizeof *r);
    if (!r) return nif_error(env, PLEXUS_ENOMEM);
    memset(r, 0, sizeof *r);
    randombytes_buf(r->rng, sizeof r->rng);
    if (r->rng[0] == 0 && r->rng[1] == 0) r->rng[1] = 1; /* xorshift's one bad state */
    cfg.rand = rng_next;
    cfg.rand_ctx = r->rng;
    int rc = plexus_election_init(&r->e, &cfg);
    if (rc) {
        ret = nif_error(env, rc);
        goto done;
    }
    r->lock = enif_mutex_create("plexus_election");
    if (!r->lock) {
        ret = nif_error(env, PLEXUS_ENOMEM);
        goto done;
    }
    r->id = cfg.id;
    r->cluster_id = cfg.cluster_id;
    r->ready = 1;
    ret = enif_make_tuple2(env, priv->atom_ok, enif_make_resource(env, r));
    goto done;
bad_arg:
    ret = enif_make_badarg(env);
done:
    if (r) enif_release_resource(r); /* the term (if made) holds the only reference */
    return ret;
}

/* ---------------------------------------------------------------- inputs */

/* election_tick(Ref) -> Ready */
ERL_NIF_TERM nif_election_tick(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    election_res *r;
    if (argc != 1 || !get_res(env, argv[0], &r)) return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    plexus_election_tick(&r->e);
    return input_result(env, r, PLEXUS_OK);
}

/*
 * election_step(Ref, Bin) -> Ready | {error, Reason}. Bin is a peer's message as it
 * came off the wire: decoded (strictly, never past its end) before the machine sees
 * it. Reasons: the decoder's (truncated, bad_version, wrong_type, bad_varint,
 * invalid_argument, trailing_bytes), then the machine's: wrong_cluster, not_found
 * (sender is not a peer), invalid_argument (not addressed to us), bad_state (a second
 * leader claimed our term). In every error case nothing but the counters changed.
 */
ERL_NIF_TERM nif_election_step(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    election_res *r;
    ErlNifBinary bin;
    plexus_election_msg m;
    int rc;
    if (argc != 2 || !get_res(env, argv[0], &r) || !enif_inspect_binary(env, argv[1], &bin))
        return enif_make_badarg(env);
    if ((rc = plexus_election_msg_decode(bin.data, bin.size, &m))) return nif_error(env, rc);
    enif_mutex_lock(r->lock);
    rc = plexus_election_step(&r->e, &m);
    return input_result(env, r, rc);
}

/* election_peer_down(Ref, PeerId) -> Ready | {error, not_found | invalid_argument} */
ERL_NIF_TERM nif_election_peer_down(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    election_res *r;
    uint64_t peer;
    if (argc != 2 || !get_res(env, argv[0], &r) || !get_id(env, argv[1], &peer))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    int rc = plexus_election_peer_down(&r->e, peer);
    return input_result(env, r, rc);
}

/* election_forget_leader(Ref, PeerId) -> Ready | {error, not_found | invalid_argument}:
 * peer_down without the campaign, for a driver that staggers the fast path. */
ERL_NIF_TERM nif_election_forget_leader(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    election_res *r;
    uint64_t peer;
    if (argc != 2 || !get_res(env, argv[0], &r) || !get_id(env, argv[1], &peer))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    int rc = plexus_election_forget_leader(&r->e, peer);
    return input_result(env, r, rc);
}

/* election_campaign(Ref) -> Ready | {error, bad_state} (leader, or sitting out) */
ERL_NIF_TERM nif_election_campaign(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    election_res *r;
    if (argc != 1 || !get_res(env, argv[0], &r)) return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    int rc = plexus_election_campaign(&r->e);
    return input_result(env, r, rc);
}

/* election_add_peer(Ref, PeerId) -> Ready | {error, invalid_argument | full} */
ERL_NIF_TERM nif_election_add_peer(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    election_res *r;
    uint64_t peer;
    if (argc != 2 || !get_res(env, argv[0], &r) || !get_id(env, argv[1], &peer))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    int rc = plexus_election_add_peer(&r->e, peer);
    return input_result(env, r, rc);
}

/* election_remove_peer(Ref, PeerId) -> Ready | {error, not_found | invalid_argument} */
ERL_NIF_TERM nif_election_remove_peer(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    election_res *r;
    uint64_t peer;
    if (argc != 2 || !get_res(env, argv[0], &r) || !get_id(env, argv[1], &peer))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    int rc = plexus_election_remove_peer(&r->e, peer);
    return input_result(env, r, rc);
}

/* ---------------------------------------------------------------- queries */

/* election_info(Ref) -> #{id, cluster_id, role, term, voted_for, leader, peers, quorum,
 *                         sit_out_left, stats => #{Counter => N}} */
ERL_NIF_TERM nif_election_info(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    const nif_priv *priv = nif_priv_get(env);
    election_res *r;
    uint64_t peers[PLEXUS_ELECTION_MAX_NODES];
    if (argc != 1 || !get_res(env, argv[0], &r)) return enif_make_badarg(env);

    enif_mutex_lock(r->lock);
    const plexus_election *e = &r->e;
    plexus_election_hard_state hs = plexus_election_get_hard_state(e);
    plexus_election_stats st = *plexus_election_get_stats(e);
    size_t n = plexus_election_peers(e, peers, PLEXUS_ELECTION_MAX_NODES);
    plexus_election_role role = plexus_election_get_role(e);
    uint64_t leader = plexus_election_leader(e), id = r->id, cid = r->cluster_id;
    size_t quorum = plexus_election_quorum(e);
    uint32_t sit_out = plexus_election_sit_out_left(e);
    enif_mutex_unlock(r->lock);

    ERL_NIF_TERM plist = enif_make_list(env, 0), stats, map;
    for (size_t i = n; i-- > 0;)
        plist = enif_make_list_cell(env, enif_make_uint64(env, peers[i]), plist);
    const uint64_t sv[N_STATS] = {st.wrong_cluster,  st.unknown_peer, st.stale_term,
                                  st.lease_rejected, st.conflicts,    st.outbox_dropped,
                                  st.pre_votes,      st.elections,    st.fast_path};
    ERL_NIF_TERM svals[N_STATS];
    for (int i = 0; i < N_STATS; i++)
        svals[i] = enif_make_uint64(env, sv[i]);
    ERL_NIF_TERM keys[] = {priv->atom_id,    priv->atom_cluster_id, priv->atom_role,
                           priv->atom_term,  priv->atom_voted_for,  priv->atom_leader,
                           priv->atom_peers, priv->atom_quorum,     priv->atom_sit_out_left,
                           priv->atom_stats};
    ERL_NIF_TERM vals[] = {enif_make_uint64(env, id),
                           enif_make_uint64(env, cid),
                           priv->election_role[role],
                           enif_make_uint64(env, hs.term),
                           enif_make_uint64(env, hs.voted_for),
                           enif_make_uint64(env, leader),
                           plist,
                           enif_make_uint64(env, quorum),
                           enif_make_uint(env, sit_out),
                           priv->atom_none};
    ERL_NIF_TERM skeys[N_STATS] = {
        priv->atom_wrong_cluster,  priv->atom_unknown_peer, priv->atom_stale_term,
        priv->atom_lease_rejected, priv->atom_conflicts,    priv->atom_outbox_dropped,
        priv->atom_pre_votes,      priv->atom_elections,    priv->atom_fast_path};
    if (!enif_make_map_from_arrays(env, skeys, svals, N_STATS, &stats))
        return enif_make_badarg(env); /* cannot happen: keys are distinct */
    vals[9] = stats;
    if (!enif_make_map_from_arrays(env, keys, vals, sizeof keys / sizeof keys[0], &map))
        return enif_make_badarg(env);
    return map;
}

/* ---------------------------------------------------------------- wire codec */

static int msg_type_of(ErlNifEnv *env, ERL_NIF_TERM t, plexus_election_msg_type *out)
{
    const nif_priv *priv = nif_priv_get(env);
    for (int i = 1; i <= PLEXUS_ELECTION_MSG_HEARTBEAT_RESP; i++)
        if (enif_is_identical(t, priv->election_msg_type[i])) {
            *out = (plexus_election_msg_type)i;
            return 1;
        }
    return 0;
}

/* election_msg_encode(#{type, reject, cluster_id, from, to, term})
 *   -> Bin | {error, invalid_argument}. For tests and tools. */
ERL_NIF_TERM nif_election_msg_encode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    const nif_priv *priv = nif_priv_get(env);
    plexus_election_msg m;
    uint8_t buf[PLEXUS_ELECTION_MSG_MAX];
    size_t len = 0;
    ERL_NIF_TERM type, bin;
    int rc;

    memset(&m, 0, sizeof m);
    if (argc != 1 || !enif_is_map(env, argv[0]) ||
        !enif_get_map_value(env, argv[0], priv->atom_type, &type) ||
        !msg_type_of(env, type, &m.type) || !map_bool(env, argv[0], priv->atom_reject, &m.reject) ||
        !map_u64(env, argv[0], priv->atom_cluster_id, &m.cluster_id) ||
        !map_u64(env, argv[0], priv->atom_from, &m.from) ||
        !map_u64(env, argv[0], priv->atom_to, &m.to) ||
        !map_u64(env, argv[0], priv->atom_term, &m.term))
        return enif_make_badarg(env);
    if ((rc = plexus_election_msg_encode(&m, buf, sizeof buf, &len))) return nif_error(env, rc);
    unsigned char *p = enif_make_new_binary(env, len, &bin);
    if (!p) return nif_error(env, PLEXUS_ENOMEM);
    memcpy(p, buf, len);
    return bin;
}

/* election_msg_decode(Bin) -> {ok, #{type, reject, cluster_id, from, to, term}}
 *   | {error, Reason} */
ERL_NIF_TERM nif_election_msg_decode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    const nif_priv *priv = nif_priv_get(env);
    ErlNifBinary bin;
    plexus_election_msg m;
    ERL_NIF_TERM map;
    int rc;
    if (argc != 1 || !enif_inspect_binary(env, argv[0], &bin)) return enif_make_badarg(env);
    if ((rc = plexus_election_msg_decode(bin.data, bin.size, &m))) return nif_error(env, rc);
    ERL_NIF_TERM keys[] = {priv->atom_type, priv->atom_reject, priv->atom_cluster_id,
                           priv->atom_from, priv->atom_to,     priv->atom_term};
    ERL_NIF_TERM vals[] = {
        priv->election_msg_type[m.type],     m.reject ? priv->atom_true : priv->atom_false,
        enif_make_uint64(env, m.cluster_id), enif_make_uint64(env, m.from),
        enif_make_uint64(env, m.to),         enif_make_uint64(env, m.term)};
    if (!enif_make_map_from_arrays(env, keys, vals, sizeof keys / sizeof keys[0], &map))
        return enif_make_badarg(env);
    return enif_make_tuple2(env, priv->atom_ok, map);
}
