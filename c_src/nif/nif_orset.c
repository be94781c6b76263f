/*
 * OR-Set NIFs; see nif_orset.h. Each NIF: arity/type checks -> decode -> (dirty
 * dispatch once the input weight is known) -> core call -> encode, with the goto
 * ladder bad_arg: / err: / done:. Scratch memory (op and state arrays, the delta,
 * decode buffers) comes from nif_alloc and is released on every path. Result states
 * of apply and merge are written by the core straight into the binary that is returned
 * (nif_outbuf); only the small ones (orset_new, the delta) are copied into a binary.
 */
#include "nif/nif_orset.h"

#include <string.h>

#include "nif/nif_util.h"
#include "plexus/crdt.h"

/* Lists are walked in chunks of this many cells between dirty checks. */
#define CHECK_EVERY 256u

enum walk_result { WALK_OK = 0, WALK_BADARG, WALK_DIRTY, WALK_NOMEM };

/* Grows *arr (elements of `size` bytes) to hold at least n + 1. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return 1;
    size_t ncap = *cap ? *cap * 2 : 16;
    if (ncap > SIZE_MAX / size) return 0;
    void *p = nif_alloc.realloc(nif_alloc.ctx, *arr, ncap * size);
    if (!p) return 0;
    *arr = p;
    *cap = ncap;
    return 1;
}

/*
 * Decodes an op list. kind is PLEXUS_OP_ADD or PLEXUS_OP_REMOVE for a list of element
 * binaries, 0 for a list of {add | remove, Bin} tuples. Adds each cell's weight to
 * *weight and gives up with WALK_DIRTY as soon as the call should move to a dirty
 * scheduler. On WALK_OK the caller owns *ops_out (nif_alloc); on any other result
 * nothing is left allocated.
 */
static int get_ops(ErlNifEnv *env, ERL_NIF_TERM list, int kind, uint64_t *weight,
                   plexus_orset_op **ops_out, size_t *n_out)
{
    nif_priv *priv = nif_priv_get(env);
    plexus_orset_op *ops = NULL;
    size_t n = 0, cap = 0;
    ERL_NIF_TERM head, tail = list;
    int res = WALK_OK;

    while (enif_get_list_cell(env, tail, &head, &tail)) {
        if (!grow((void **)&ops, &cap, n, sizeof *ops)) {
            res = WALK_NOMEM;
            goto fail;
        }
        plexus_orset_op *op = &ops[n];
        if (kind) {
            op->kind = kind;
            if (!nif_get_term_bytes(env, head, &op->elem)) goto bad_arg;
        } else {
            int arity;
            const ERL_NIF_TERM *tup;
            if (!enif_get_tuple(env, head, &arity, &tup) || arity != 2) goto bad_arg;
            if (enif_is_identical(tup[0], priv->atom_add))
                op->kind = PLEXUS_OP_ADD;
            else if (enif_is_identical(tup[0], priv->atom_remove))
                op->kind = PLEXUS_OP_REMOVE;
            else
                goto bad_arg;
            if (!nif_get_term_bytes(env, tup[1], &op->elem)) goto bad_arg;
        }
        n++;
        *weight += NIF_CELL_WEIGHT + op->elem.n;
        if (n % CHECK_EVERY == 0 && nif_should_go_dirty(env, *weight)) {
            res = WALK_DIRTY;
            goto fail;
        }
    }
    if (!enif_is_empty_list(env, tail)) goto bad_arg;
    *ops_out = ops;
    *n_out = n;
    return WALK_OK;

bad_arg:
    res = WALK_BADARG;
fail:
    nif_alloc.free(nif_alloc.ctx, ops);
    return res;
}

ERL_NIF_TERM nif_orset_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argv;
    plexus_buf out;
    ERL_NIF_TERM result;
    int rc;

    if (argc != 0) return enif_make_badarg(env);
    plexus_buf_init(&out, &nif_alloc);
    if ((rc = plexus_orset_new(&out))) goto err;
    if (!nif_make_binary(env, &out, &result)) {
        rc = PLEXUS_ENOMEM;
        goto err;
    }
    goto done;

err:
    result = nif_error(env, rc);
done:
    plexus_buf_free(&out);
    return result;
}

/*
 * orset_apply(Set, Kind, List, Actor, Mode)
 *   Kind: add | remove (List holds element binaries) or ops (List holds
 *         {add | remove, Bin} tuples); one core call for the whole list.
 *   Mode: state -> Set2; delta -> {Set2, Delta};
 *         strict -> Set2, or {error, not_present, Index} (0-based op index) when a
 *         remove finds its element absent at that point of the sequence.
 *   A malformed Set gives {error, Reason}.
 */
ERL_NIF_TERM nif_orset_apply(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    nif_priv *priv = nif_priv_get(env);
    plexus_bytes s, actor;
    plexus_orset_op *ops = NULL;
    size_t n_ops = 0, bad_op = 0;
    nif_outbuf out;
    plexus_buf delta;
    ERL_NIF_TERM result, set_term, delta_term;
    int kind, want_delta = 0, rc;
    unsigned flags = 0;
    uint64_t weight;

    nif_outbuf_init(&out);
    plexus_buf_init(&delta, &nif_alloc);
    if (argc != 5 || !nif_get_state(env, argv[0], &s)) goto bad_arg;
    if (enif_is_identical(argv[1], priv->atom_add))
        kind = PLEXUS_OP_ADD;
    else if (enif_is_identical(argv[1], priv->atom_remove))
        kind = PLEXUS_OP_REMOVE;
    else if (enif_is_identical(argv[1], priv->atom_ops))
        kind = 0;
    else
        goto bad_arg;
    if (!nif_get_term_bytes(env, argv[3], &actor)) goto bad_arg;
    if (enif_is_identical(argv[4], priv->atom_delta))
        want_delta = 1;
    else if (enif_is_identical(argv[4], priv->atom_strict))
        flags = PLEXUS_APPLY_STRICT;
    else if (!enif_is_identical(argv[4], priv->atom_state))
        goto bad_arg;

    weight = s.n;
    if (nif_should_go_dirty(env, weight)) goto go_dirty;
    switch (get_ops(env, argv[2], kind, &weight, &ops, &n_ops)) {
    case WALK_OK:
        break;
    case WALK_BADARG:
        goto bad_arg;
    case WALK_DIRTY:
        goto go_dirty;
    default:
        rc = PLEXUS_ENOMEM;
        goto err;
    }
    if (nif_should_go_dirty(env, weight)) goto go_dirty;
    nif_charge(env, weight);

    rc = plexus_orset_apply(s.p, s.n, ops, n_ops, actor, flags, &nif_alloc, &out.buf,
                            want_delta ? &delta : NULL, &bad_op);
    if (rc == PLEXUS_ENOTPRESENT && (flags & PLEXUS_APPLY_STRICT)) {
        result = enif_make_tuple3(env, priv->atom_error, nif_error_reason(env, rc),
                                  enif_make_uint64(env, bad_op));
        goto done;
    }
    if (rc) goto err;
    if (!nif_outbuf_term(env, &out, &set_term)) {
        rc = PLEXUS_ENOMEM;
        goto err;
    }
    if (!want_delta) {
        result = set_term;
        goto done;
    }
    if (!nif_make_binary(env, &delta, &delta_term)) {
        rc = PLEXUS_ENOMEM;
        goto err;
    }
    result = enif_make_tuple2(env, set_term, delta_term);
    goto done;

go_dirty:
    result = nif_go_dirty(env, "orset_apply", nif_orset_apply, argc, argv);
    goto done;
bad_arg:
    result = enif_make_badarg(env);
    goto done;
err:
    result = nif_error(env, rc);
done:
    nif_alloc.free(nif_alloc.ctx, ops);
    nif_outbuf_free(&out);
    plexus_buf_free(&delta);
    return result;
}

/* orset_merge([Set, ...]) -> Set | {error, Reason}. A non-empty list of binaries. */
ERL_NIF_TERM nif_orset_merge(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    plexus_bytes *states = NULL;
    size_t k = 0, cap = 0;
    nif_outbuf out;
    ERL_NIF_TERM result, head, tail;
    uint64_t weight = 0;
    int rc;

    nif_outbuf_init(&out);
    if (argc != 1) goto bad_arg;
    tail = argv[0];
    while (enif_get_list_cell(env, tail, &head, &tail)) {
        if (!grow((void **)&states, &cap, k, sizeof *states)) {
            rc = PLEXUS_ENOMEM;
            goto err;
        }
        if (!nif_get_state(env, head, &states[k])) goto bad_arg;
        weight += NIF_CELL_WEIGHT + states[k].n;
        k++;
        /* Merges are linear in their input; the first heavy state decides. */
        if (nif_should_go_dirty(env, weight)) goto go_dirty;
    }
    if (!enif_is_empty_list(env, tail) || k == 0) goto bad_arg;
    /* k states merge as a tree of pairwise merges (plexus_orset_merge): every state
     * byte is read and written once per level, ceil(log2 k) levels (1,500 one-element
     * states, 54 KB, took 3.6 ms inline weighed once) */
    unsigned levels = 1;
    while (levels < 64 && (size_t)1 << levels < k)
        levels++;
    weight *= levels;
    if (nif_should_go_dirty(env, weight)) goto go_dirty;

    nif_charge(env, weight);
    if ((rc = plexus_orset_merge(states, k, &nif_alloc, &out.buf))) goto err;
    if (!nif_outbuf_term(env, &out, &result)) {
        rc = PLEXUS_ENOMEM;
        goto err;
    }
    goto done;

go_dirty:
    result = nif_go_dirty(env, "orset_merge", nif_orset_merge, argc, argv);
    goto done;
bad_arg:
    result = enif_make_badarg(env);
    goto done;
err:
    result = nif_error(env, rc);
done:
    nif_alloc.free(nif_alloc.ctx, states);
    nif_outbuf_free(&out);
    return result;
}

/* orset_member(Set, ElemBin) -> boolean() | {error, Reason}. */
ERL_NIF_TERM nif_orset_member(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    nif_priv *priv = nif_priv_get(env);
    plexus_bytes s, elem;
    int found = 0, rc;

    if (argc != 2 || !nif_get_state(env, argv[0], &s) || !nif_get_term_bytes(env, argv[1], &elem))
        return enif_make_badarg(env);
    if (nif_should_go_dirty(env, (uint64_t)s.n + elem.n))
        return nif_go_dirty(env, "orset_member", nif_orset_member, argc, argv);
    nif_charge(env, (uint64_t)s.n + elem.n);
    if ((rc = plexus_orset_member(s.p, s.n, elem, &nif_alloc, &found))) return nif_error(env, rc);
    return found ? priv->atom_true : priv->atom_false;
}

/*
 * orset_to_list(Set) -> [term()] | {error, Reason}. Elements in canonical (bytewise)
 * order, each decoded with enif_binary_to_term; {error, bad_term} when an element's
 * bytes are not exactly one external term.
 */
ERL_NIF_TERM nif_orset_to_list(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    nif_priv *priv = nif_priv_get(env);
    plexus_bytes s, elem;
    plexus_orset_iter it;
    plexus_buf scratch;
    ERL_NIF_TERM *terms = NULL, result;
    size_t n = 0, cap = 0;
    int rc;

    plexus_buf_init(&scratch, &nif_alloc);
    if (argc != 1 || !nif_get_state(env, argv[0], &s)) goto bad_arg;
    if (nif_should_go_dirty(env, s.n)) goto go_dirty;
    nif_charge(env, s.n);

    if ((rc = plexus_orset_iter_init(&it, s.p, s.n, &nif_alloc))) goto err;
    while (plexus_orset_iter_next(&it, &elem)) {
        if (!grow((void **)&terms, &cap, n, sizeof *terms)) {
            rc = PLEXUS_ENOMEM;
            goto err;
        }
        rc = nif_decode_term(env, elem, &scratch, &terms[n]);
        if (rc == NIF_BAD_TERM) {
            result = nif_error_atom(env, priv->atom_bad_term);
            goto done;
        }
        if (rc) goto err;
        n++;
    }
    result = enif_make_list_from_array(env, terms, (unsigned)n);
    goto done;

go_dirty:
    result = nif_go_dirty(env, "orset_to_list", nif_orset_to_list, argc, argv);
    goto done;
bad_arg:
    result = enif_make_badarg(env);
    goto done;
err:
    result = nif_error(env, rc);
done:
    nif_alloc.free(nif_alloc.ctx, terms);
    plexus_buf_free(&scratch);
    return result;
}

/* orset_size(Set) -> non_neg_integer() | {error, Reason}. */
ERL_NIF_TERM nif_orset_size(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    plexus_bytes s;
    plexus_orset_info info;
    int rc;

    if (argc != 1 || !nif_get_state(env, argv[0], &s)) return enif_make_badarg(env);
    if (nif_should_go_dirty(env, s.n))
        return nif_go_dirty(env, "orset_size", nif_orset_size, argc, argv);
    nif_charge(env, s.n);
    if ((rc = plexus_orset_validate(s.p, s.n, &nif_alloc, &info))) return nif_error(env, rc);
    return enif_make_uint64(env, info.n_elems);
}

/* orset_validate(Set) -> ok | {error, Reason}. */
ERL_NIF_TERM nif_orset_validate(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    plexus_bytes s;
    int rc;

    if (argc != 1 || !nif_get_state(env, argv[0], &s)) return enif_make_badarg(env);
    if (nif_should_go_dirty(env, s.n))
        return nif_go_dirty(env, "orset_validate", nif_orset_validate, argc, argv);
    nif_charge(env, s.n);
    if ((rc = plexus_orset_validate(s.p, s.n, &nif_alloc, NULL))) return nif_error(env, rc);
    return nif_priv_get(env)->atom_ok;
}

/* orset_digest(Set) -> <<_:256>> | {error, Reason}. */
ERL_NIF_TERM nif_orset_digest(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    plexus_bytes s;

    if (argc != 1 || !nif_get_state(env, argv[0], &s)) return enif_make_badarg(env);
    if (nif_should_go_dirty(env, s.n))
        return nif_go_dirty(env, "orset_digest", nif_orset_digest, argc, argv);
    nif_charge(env, s.n);
    return nif_state_digest(env, s, PLEXUS_TYPE_ORSET);
}
