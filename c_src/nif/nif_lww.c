/*
 * LWW register NIFs; see nif_lww.h. Same NIF shape as nif_orset.c. Merges return the
 * winning input binary itself (no copy); so does update with an explicit timestamp
 * when the existing register wins.
 */
#include "nif/nif_lww.h"

#include <string.h>

#include "nif/nif_util.h"
#include "plexus/crdt.h"

/* Encodes (ts, actor, value) into a new binary term. */
static int make_register(ErlNifEnv *env, uint64_t ts, plexus_bytes actor, plexus_bytes value,
                         ERL_NIF_TERM *out)
{
    plexus_buf buf;
    int rc;
    plexus_buf_init(&buf, &nif_alloc);
    if (!(rc = plexus_lww_encode(ts, actor, value, &buf)) && !nif_make_binary(env, &buf, out))
        rc = PLEXUS_ENOMEM;
    plexus_buf_free(&buf);
    return rc;
}

/* ---------------------------------------------------------------- NIFs */

/*
 * lww_new(ValueBin, ActorBin, Ts) -> Reg | {error, Reason}: the register (Ts, Actor,
 * Value). The timestamp comes from plexus_hlc (the clock lives in Erlang); plexus_lww
 * builds small registers itself and calls this for the rest.
 */
ERL_NIF_TERM nif_lww_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    plexus_bytes value, actor;
    ERL_NIF_TERM result;
    ErlNifUInt64 ts;
    int rc;

    if (argc != 3 || !nif_get_term_bytes(env, argv[0], &value) ||
        !nif_get_term_bytes(env, argv[1], &actor) || !enif_get_uint64(env, argv[2], &ts))
        return enif_make_badarg(env);
    if (nif_should_go_dirty(env, (uint64_t)value.n + actor.n))
        return nif_go_dirty(env, "lww_new", nif_lww_new, argc, argv);
    if ((rc = make_register(env, ts, actor, value, &result))) return nif_error(env, rc);
    return result;
}

/*
 * lww_update_ts(Reg, ValueBin, ActorBin, Ts) -> Reg2 | {error, Reason}: the merge of
 * Reg with the register (Ts, Actor, Value); Reg itself when it wins. plexus_lww
 * observes Ts on the node clock.
 */
ERL_NIF_TERM nif_lww_update_ts(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    plexus_bytes reg, value, actor;
    plexus_lww_view view, cand;
    ERL_NIF_TERM result;
    ErlNifUInt64 ts;
    int rc;

    if (argc != 4 || !nif_get_state(env, argv[0], &reg) ||
        !nif_get_term_bytes(env, argv[1], &value) || !nif_get_term_bytes(env, argv[2], &actor) ||
        !enif_get_uint64(env, argv[3], &ts))
        return enif_make_badarg(env);
    if (nif_should_go_dirty(env, (uint64_t)reg.n + value.n + actor.n))
        return nif_go_dirty(env, "lww_update_ts", nif_lww_update_ts, argc, argv);
    if ((rc = plexus_lww_decode(reg.p, reg.n, &view))) return nif_error(env, rc);
    cand.ts = ts;
    cand.actor = actor;
    cand.value = value;
    if (plexus_lww_compare(&view, &cand) >= 0) return argv[0];
    if ((rc = make_register(env, ts, actor, value, &result))) return nif_error(env, rc);
    return result;
}

/*
 * The actor of a register that may come from anywhere: never a new atom (a register is
 * data from other nodes; each distinct actor name would otherwise add an atom for good).
 * The term when every atom in it already exists; an actor that is a single unknown
 * atom (a node name not seen yet, the usual case) as its name, a UTF-8 binary;
 * NIF_BAD_TERM for any other term holding an unknown atom.
 */
static int read_actor(ErlNifEnv *env, plexus_bytes a, plexus_buf *scratch, ERL_NIF_TERM *out)
{
    int rc = nif_decode_term_existing(env, a, scratch, out);
    if (rc != NIF_BAD_TERM) return rc;
    /* SMALL_ATOM_UTF8_EXT (119, 1-byte length) or ATOM_UTF8_EXT (118, 2-byte length):
     * what term_to_binary(_, [{minor_version, 2}]) writes for an atom. */
    size_t head = 0, len = 0;
    if (a.n >= 2 && a.p[0] == 119) {
        head = 2;
        len = a.p[1];
    } else if (a.n >= 3 && a.p[0] == 118) {
        head = 3;
        len = (size_t)a.p[1] << 8 | a.p[2];
    } else {
        return NIF_BAD_TERM;
    }
    if (head + len != a.n) return NIF_BAD_TERM;
    unsigned char *p = enif_make_new_binary(env, len, out);
    if (!p) return PLEXUS_ENOMEM;
    memcpy(p, a.p + head, len);
    return PLEXUS_OK;
}

/* lww_read(Reg, value | timestamp | actor) -> term() | {error, Reason}. */
ERL_NIF_TERM nif_lww_read(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    nif_priv *priv = nif_priv_get(env);
    plexus_bytes reg;
    plexus_lww_view view;
    plexus_buf scratch;
    ERL_NIF_TERM result;
    int rc, field;

    plexus_buf_init(&scratch, &nif_alloc);
    if (argc != 2 || !nif_get_state(env, argv[0], &reg)) goto bad_arg;
    if (enif_is_identical(argv[1], priv->atom_value))
        field = 0;
    else if (enif_is_identical(argv[1], priv->atom_actor))
        field = 1;
    else if (enif_is_identical(argv[1], priv->atom_timestamp))
        field = 2;
    else
        goto bad_arg;
    if (nif_should_go_dirty(env, reg.n)) {
        result = nif_go_dirty(env, "lww_read", nif_lww_read, argc, argv);
        goto done;
    }
    nif_charge(env, reg.n);

    if ((rc = plexus_lww_decode(reg.p, reg.n, &view))) goto err;
    if (field == 2) {
        result = enif_make_uint64(env, view.ts);
        goto done;
    }
    if (field == 1) {
        rc = read_actor(env, view.actor, &scratch, &result);
        if (rc == PLEXUS_OK) goto done;
        if (rc != NIF_BAD_TERM) goto err;
        result = nif_error_atom(env, priv->atom_bad_term);
        goto done;
    }
    rc = nif_decode_term(env, view.value, &scratch, &result);
    if (rc == NIF_BAD_TERM) {
        result = nif_error_atom(env, priv->atom_bad_term);
        goto done;
    }
    if (rc) goto err;
    goto done;

bad_arg:
    result = enif_make_badarg(env);
    goto done;
err:
    result = nif_error(env, rc);
done:
    plexus_buf_free(&scratch);
    return result;
}

/*
 * lww_merge([Reg, ...]) -> Reg | {error, Reason}: the greatest register by
 * (ts, actor, value), returned as the input binary itself (plexus_lww observes its
 * timestamp on the node clock).
 */
ERL_NIF_TERM nif_lww_merge(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    plexus_bytes *regs = NULL;
    ERL_NIF_TERM *terms = NULL, result, head, tail;
    unsigned k = 0;
    size_t winner = 0;
    uint64_t weight = 0;
    int rc;

    if (argc != 1 || !enif_get_list_length(env, argv[0], &k) || k == 0) goto bad_arg;
    /* Every cell weighs at least NIF_CELL_WEIGHT: a long list moves before it is copied. */
    if (nif_should_go_dirty(env, (uint64_t)k * NIF_CELL_WEIGHT)) {
        result = nif_go_dirty(env, "lww_merge", nif_lww_merge, argc, argv);
        goto done;
    }
    regs = enif_alloc(k * sizeof *regs);
    terms = enif_alloc(k * sizeof *terms);
    if (!regs || !terms) {
        rc = PLEXUS_ENOMEM;
        goto err;
    }
    tail = argv[0];
    for (unsigned i = 0; i < k; i++) {
        if (!enif_get_list_cell(env, tail, &head, &tail)) goto bad_arg;
        if (!nif_get_state(env, head, &regs[i])) goto bad_arg;
        terms[i] = head;
        weight += NIF_CELL_WEIGHT + regs[i].n;
    }
    if (nif_should_go_dirty(env, weight)) {
        result = nif_go_dirty(env, "lww_merge", nif_lww_merge, argc, argv);
        goto done;
    }
    nif_charge(env, weight);

    if ((rc = plexus_lww_merge(regs, k, &winner))) goto err;
    result = terms[winner];
    goto done;

bad_arg:
    result = enif_make_badarg(env);
    goto done;
err:
    result = nif_error(env, rc);
done:
    if (regs) enif_free(regs);
    if (terms) enif_free(terms);
    return result;
}

/* lww_validate(Reg) -> ok | {error, Reason}. */
ERL_NIF_TERM nif_lww_validate(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    plexus_bytes reg;
    plexus_lww_view view;
    int rc;

    if (argc != 1 || !nif_get_state(env, argv[0], &reg)) return enif_make_badarg(env);
    if (nif_should_go_dirty(env, reg.n))
        return nif_go_dirty(env, "lww_validate", nif_lww_validate, argc, argv);
    if ((rc = plexus_lww_decode(reg.p, reg.n, &view))) return nif_error(env, rc);
    return nif_priv_get(env)->atom_ok;
}

/* lww_digest(Reg) -> <<_:256>> | {error, Reason}. */
ERL_NIF_TERM nif_lww_digest(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    plexus_bytes reg;

    if (argc != 1 || !nif_get_state(env, argv[0], &reg)) return enif_make_badarg(env);
    if (nif_should_go_dirty(env, reg.n))
        return nif_go_dirty(env, "lww_digest", nif_lww_digest, argc, argv);
    return nif_state_digest(env, reg, PLEXUS_TYPE_LWW);
}
