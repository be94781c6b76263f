/*
 * Shared NIF helpers; see nif_util.h.
 */
#include "nif/nif_util.h"

#include <string.h>

#include "plexus/crdt.h"

/* ---------------------------------------------------------------- allocator */

static void *ea_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return enif_alloc(n ? n : 1);
}

static void *ea_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    if (!p) return enif_alloc(n ? n : 1); /* realloc(NULL, n) is malloc */
    return enif_realloc(p, n ? n : 1);
}

static void ea_free(void *ctx, void *p)
{
    (void)ctx;
    if (p) enif_free(p);
}

const plexus_alloc nif_alloc = {ea_malloc, ea_realloc, ea_free, NULL};

/* ---------------------------------------------------------------- priv data */

nif_priv *nif_priv_new(ErlNifEnv *env)
{
    nif_priv *priv = enif_alloc(sizeof *priv);
    if (!priv) return NULL;
    memset(priv, 0, sizeof *priv);
#define NIF_ATOM_MAKE(name) priv->atom_##name = enif_make_atom(env, #name);
    NIF_ATOMS(NIF_ATOM_MAKE)
#undef NIF_ATOM_MAKE
    for (int i = 0; i < NIF_N_ERRORS; i++)
        priv->err_atoms[i] = enif_make_atom(env, plexus_errname(-i));
    for (int s = 0; s <= PLEXUS_HEALTH_DOWN; s++)
        priv->health_status[s] =
            enif_make_atom(env, plexus_health_status_name((plexus_health_status)s));
    priv->health_event[0] = priv->atom_unknown;
    for (int k = 1; k <= PLEXUS_HEALTH_EV_NODE_DOWN; k++)
        priv->health_event[k] =
            enif_make_atom(env, plexus_health_event_name((plexus_health_event_kind)k));
    for (int r = 0; r <= PLEXUS_HEALTH_R_MAX; r++)
        priv->health_reason[r] =
            enif_make_atom(env, plexus_health_reason_name((plexus_health_reason)r));
    for (int i = 0; i <= PLEXUS_ELECTION_LEADER; i++)
        priv->election_role[i] =
            enif_make_atom(env, plexus_election_role_name((plexus_election_role)i));
    priv->election_msg_type[0] = priv->atom_unknown;
    for (int i = 1; i <= PLEXUS_ELECTION_MSG_HEARTBEAT_RESP; i++)
        priv->election_msg_type[i] =
            enif_make_atom(env, plexus_election_msg_type_name((plexus_election_msg_type)i));
    for (int i = 0; i <= PLEXUS_TOPOLOGY_RELAY; i++)
        priv->topology_role[i] =
            enif_make_atom(env, plexus_topology_role_name((plexus_topology_role)i));
    priv->registry_msg_type[0] = priv->atom_unknown;
    priv->registry_msg_type[PLEXUS_REGISTRY_ANNOUNCE] = priv->atom_announce;
    priv->registry_msg_type[PLEXUS_REGISTRY_HANDSHAKE] = priv->atom_handshake;
    priv->registry_msg_type[PLEXUS_REGISTRY_QUERY] = priv->atom_query;
    priv->registry_msg_type[PLEXUS_REGISTRY_VIEW] = priv->atom_view;
    priv->registry_msg_type[PLEXUS_REGISTRY_REFUSED] = priv->atom_refused;
    priv->registry_msg_type[PLEXUS_REGISTRY_BYE] = priv->atom_bye;
    priv->registry_msg_type[PLEXUS_REGISTRY_COOKIE] = priv->atom_cookie;
    atomic_init(&priv->dirty_threshold, PLEXUS_DIRTY_THRESHOLD_BYTES);
    return priv;
}

void nif_priv_free(nif_priv *priv)
{
    if (priv) enif_free(priv);
}

/* ---------------------------------------------------------------- terms */

ERL_NIF_TERM nif_error_atom(ErlNifEnv *env, ERL_NIF_TERM reason)
{
    return enif_make_tuple2(env, nif_priv_get(env)->atom_error, reason);
}

ERL_NIF_TERM nif_error_reason(ErlNifEnv *env, int err)
{
    int i = (err <= 0 && err >= PLEXUS_ERROR_MIN) ? -err : -PLEXUS_EINVAL;
    return nif_priv_get(env)->err_atoms[i];
}

ERL_NIF_TERM nif_error(ErlNifEnv *env, int err)
{
    return nif_error_atom(env, nif_error_reason(env, err));
}

int nif_get_u64(ErlNifEnv *env, ERL_NIF_TERM t, uint64_t *out)
{
    ErlNifUInt64 v;
    if (!enif_get_uint64(env, t, &v)) return 0;
    *out = v;
    return 1;
}

int nif_get_state(ErlNifEnv *env, ERL_NIF_TERM t, plexus_bytes *out)
{
    ErlNifBinary bin;
    if (!enif_inspect_binary(env, t, &bin)) return 0;
    out->p = bin.data;
    out->n = bin.size;
    return 1;
}

int nif_get_term_bytes(ErlNifEnv *env, ERL_NIF_TERM t, plexus_bytes *out)
{
    ErlNifBinary bin;
    if (!enif_inspect_binary(env, t, &bin)) return 0;
    if (bin.size < 2 || bin.data[0] != 131) return 0;
    out->p = bin.data + 1;
    out->n = bin.size - 1;
    return 1;
}

int nif_decode_term(ErlNifEnv *env, plexus_bytes b, plexus_buf *scratch, ERL_NIF_TERM *out)
{
    static const uint8_t version = 131;
    int rc;
    scratch->len = 0;
    if ((rc = plexus_buf_put(scratch, &version, 1))) return rc;
    if ((rc = plexus_buf_put(scratch, b.p, b.n))) return rc;
    /* Not ERL_NIF_BIN2TERM_SAFE: elements are arbitrary terms, and a state merged from
     * another node may hold atoms this node has not seen yet. Only reads of elements
     * (to_list, value, actor) decode terms; validation and merges never do. */
    size_t used = enif_binary_to_term(env, scratch->p, scratch->len, out, 0);
    if (used == 0 || used != scratch->len) return NIF_BAD_TERM;
    return PLEXUS_OK;
}

int nif_decode_term_existing(ErlNifEnv *env, plexus_bytes b, plexus_buf *scratch, ERL_NIF_TERM *out)
{
    static const uint8_t version = 131;
    int rc;
    scratch->len = 0;
    if ((rc = plexus_buf_put(scratch, &version, 1))) return rc;
    if ((rc = plexus_buf_put(scratch, b.p, b.n))) return rc;
    /* SAFE: refuses (fails) rather than create an atom the node does not know. */
    size_t used = enif_binary_to_term(env, scratch->p, scratch->len, out, ERL_NIF_BIN2TERM_SAFE);
    if (used == 0 || used != scratch->len) return NIF_BAD_TERM;
    return PLEXUS_OK;
}

int nif_make_bytes(ErlNifEnv *env, plexus_bytes b, ERL_NIF_TERM *out)
{
    unsigned char *p = enif_make_new_binary(env, b.n, out);
    if (!p) return 0;
    if (b.n) memcpy(p, b.p, b.n);
    return 1;
}

int nif_make_binary(ErlNifEnv *env, const plexus_buf *buf, ERL_NIF_TERM *out)
{
    return nif_make_bytes(env, (plexus_bytes){buf->p, buf->len}, out);
}

static void *outbuf_realloc(void *ctx, void *p, size_t n)
{
    nif_outbuf *o = ctx;
    (void)p;
    if (!o->live) {
        if (!enif_alloc_binary(n, &o->bin)) return NULL;
        o->live = 1;
    } else if (!enif_realloc_binary(&o->bin, n)) {
        return NULL;
    }
    return o->bin.data;
}

static void *outbuf_malloc(void *ctx, size_t n)
{
    return outbuf_realloc(ctx, NULL, n);
}

static void outbuf_release(void *ctx, void *p)
{
    nif_outbuf *o = ctx;
    (void)p;
    if (o->live) enif_release_binary(&o->bin);
    o->live = 0;
}

void nif_outbuf_init(nif_outbuf *o)
{
    memset(o, 0, sizeof *o);
    o->alloc = (plexus_alloc){outbuf_malloc, outbuf_realloc, outbuf_release, o};
    plexus_buf_init(&o->buf, &o->alloc);
}

int nif_outbuf_term(ErlNifEnv *env, nif_outbuf *o, ERL_NIF_TERM *out)
{
    if (!o->live) { /* nothing written: an empty binary */
        if (!enif_alloc_binary(0, &o->bin)) return 0;
        o->live = 1;
    }
    /* Shrink to the bytes written; the capacity was only an estimate. */
    if (o->bin.size != o->buf.len && !enif_realloc_binary(&o->bin, o->buf.len)) return 0;
    *out = enif_make_binary(env, &o->bin); /* the term owns the binary now */
    o->live = 0;
    plexus_buf_init(&o->buf, &o->alloc);
    return 1;
}

void nif_outbuf_free(nif_outbuf *o)
{
    plexus_buf_free(&o->buf);
}

/* ---------------------------------------------------------------- scheduling */

void nif_charge(ErlNifEnv *env, uint64_t weight)
{
    if (enif_thread_type() != ERL_NIF_THR_NORMAL_SCHEDULER) return;
    uint64_t pct = 1 + weight / NIF_BYTES_PER_PERCENT;
    (void)enif_consume_timeslice(env, pct > 100 ? 100 : (int)pct);
}

int nif_should_go_dirty(ErlNifEnv *env, uint64_t weight)
{
    nif_priv *priv = nif_priv_get(env);
    if (enif_thread_type() != ERL_NIF_THR_NORMAL_SCHEDULER) return 0;
    return weight >= atomic_load_explicit(&priv->dirty_threshold, memory_order_relaxed);
}

ERL_NIF_TERM nif_go_dirty(ErlNifEnv *env, const char *name, nif_fun fn, int argc,
                          const ERL_NIF_TERM argv[])
{
    return enif_schedule_nif(env, name, ERL_NIF_DIRTY_JOB_CPU_BOUND, fn, argc, argv);
}

ERL_NIF_TERM nif_set_dirty_threshold(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    nif_priv *priv = nif_priv_get(env);
    ErlNifUInt64 bytes;
    if (argc != 1 || !enif_get_uint64(env, argv[0], &bytes)) return enif_make_badarg(env);
    uint64_t old = atomic_exchange(&priv->dirty_threshold, bytes);
    return enif_make_uint64(env, old);
}

ERL_NIF_TERM nif_dirty_threshold(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argv;
    if (argc != 0) return enif_make_badarg(env);
    nif_priv *priv = nif_priv_get(env);
    return enif_make_uint64(env,
                            atomic_load_explicit(&priv->dirty_threshold, memory_order_relaxed));
}

/* ---------------------------------------------------------------- any state */

ERL_NIF_TERM nif_state_digest(ErlNifEnv *env, plexus_bytes s, int type)
{
    ErlNifBinary bin;
    int rc;
    if ((rc = plexus_crdt_type(s.p, s.n)) < 0) return nif_error(env, rc);
    if (rc != type) return nif_error(env, PLEXUS_ETYPE);
    if (!enif_alloc_binary(PLEXUS_DIGEST_BYTES, &bin)) return nif_error(env, PLEXUS_ENOMEM);
    if ((rc = plexus_crdt_digest(s.p, s.n, &nif_alloc, bin.data))) {
        enif_release_binary(&bin);
        return nif_error(env, rc);
    }
    return enif_make_binary(env, &bin);
}

int nif_get_bool(ErlNifEnv *env, ERL_NIF_TERM t, bool *out)
{
    const nif_priv *priv = nif_priv_get(env);
    if (enif_is_identical(t, priv->atom_true))
        *out = true;
    else if (enif_is_identical(t, priv->atom_false))
        *out = false;
    else
        return 0;
    return 1;
}
