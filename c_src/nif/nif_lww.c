/*
 * LWW register NIFs; see nif_lww.h. Same NIF shape as nif_orset.c. Merges return the
 * winning input binary itself (no copy); so does update with an explicit timestamp
 * when the existing register wins.
 */
#include "nif/nif_lww.h"

#include <string.h>

#include "nif/nif_hlc.h"
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
 * Value) at a timestamp the caller chose; plexus_lww's writes go through lww_update or
 * lww_write (the clock tick in the same call) and this is for the rest.
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

/* ---------------------------------------------------------------- lww_write */

/* Binary values up to this size are encoded here; larger ones by plexus_lww in Erlang,
 * so a call never copies more than a few microseconds' worth on a normal scheduler. */
#define LWW_WRITE_MAX_BINARY 4096u

/* The longest field encode_atom writes: SMALL_ATOM_UTF8_EXT, length, 255 bytes. */
#define LWW_ATOM_FIELD_MAX 257

/*
 * The register field of an atom (SMALL_ATOM_UTF8_EXT: 119, length, UTF-8 text) into
 * field; its length, or 0 when the atom is not readable as Latin-1 (the only encoding
 * enif_get_atom offers on OTP 25) or its UTF-8 text is over 255 bytes (the caller
 * leaves those to Erlang).
 */
static size_t encode_atom(ErlNifEnv *env, ERL_NIF_TERM atom, uint8_t field[LWW_ATOM_FIELD_MAX])
{
    char text[256]; /* an atom is at most 255 characters */
    int n = enif_get_atom(env, atom, text, sizeof text, ERL_NIF_LATIN1);
    if (n <= 0) return 0;
    size_t len = (size_t)n - 1, utf8 = len;
    for (size_t i = 0; i < len; i++)
        utf8 += (unsigned char)text[i] >> 7;
    if (utf8 > 255) return 0;
    uint8_t *p = field;
    *p++ = 119;
    *p++ = (uint8_t)utf8;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x80) {
            *p++ = c;
        } else {
            *p++ = (uint8_t)(0xC0 | (c >> 6));
            *p++ = (uint8_t)(0x80 | (c & 0x3F));
        }
    }
    return (size_t)(p - field);
}

/*
 * Atom fields are cached: writing a register encodes the node's name and often an
 * atom value, and enif_get_atom plus the conversion cost ~25 ns of a ~70 ns write
 * (measured with perf). An atom term names the same text for the life of the node
 * (atoms are never freed), so a cached field never goes stale.
 *
 * First a shared table of write-once slots, direct-mapped on the atom's index: a slot
 * is claimed once, filled, then published with release, never changed or freed, so a
 * hit is one acquire load and a compare. Thread-local storage would cost a
 * __tls_get_addr call per lookup from a loaded library (~3 ns of a ~72 ns update,
 * measured with perf). An atom whose slot another atom holds falls back to a
 * per-thread cache, direct-mapped the same way (no lock: only its thread writes it).
 */
typedef struct atom_slot {
    _Atomic ERL_NIF_TERM ready; /* the atom, stored once field and n are written; 0 before */
    size_t n;
    uint8_t field[LWW_ATOM_FIELD_MAX];
} atom_slot;

#define SHARED_ATOM_SLOTS 64 /* ~17 KiB */
static atom_slot shared_atoms[SHARED_ATOM_SLOTS];
static _Atomic bool shared_atoms_claimed[SHARED_ATOM_SLOTS];

#define THREAD_ATOM_SLOTS 16
static _Thread_local atom_slot thread_atoms[THREAD_ATOM_SLOTS]; /* ready read relaxed */

/* The slot index of an atom term: its index, above the tag bits. */
static size_t atom_hash(ERL_NIF_TERM atom)
{
    return (size_t)(atom >> 6);
}

static const uint8_t *thread_atom_field(ErlNifEnv *env, ERL_NIF_TERM atom, size_t *n)
{
    atom_slot *slot = &thread_atoms[atom_hash(atom) % THREAD_ATOM_SLOTS];
    if (atomic_load_explicit(&slot->ready, memory_order_relaxed) != atom) {
        size_t k = encode_atom(env, atom, slot->field);
        if (!k) return NULL;
        atomic_store_explicit(&slot->ready, atom, memory_order_relaxed);
        slot->n = k;
    }
    *n = slot->n;
    return slot->field;
}

/* The field of an atom from the caches (filled on a miss); NULL when encode_atom
 * leaves the atom to Erlang. Valid until the next call on this thread. */
static const uint8_t *atom_field(ErlNifEnv *env, ERL_NIF_TERM atom, size_t *n)
{
    size_t i = atom_hash(atom) % SHARED_ATOM_SLOTS;
    atom_slot *slot = &shared_atoms[i];
    if (atomic_load_explicit(&slot->ready, memory_order_acquire) != atom) {
        if (atomic_load_explicit(&shared_atoms_claimed[i], memory_order_relaxed) ||
            atomic_exchange(&shared_atoms_claimed[i], true))
            return thread_atom_field(env, atom, n);
        /* this thread alone writes the slot, once; an atom left to Erlang keeps it
         * claimed and empty, and every atom of that slot goes to the thread cache */
        if (!(slot->n = encode_atom(env, atom, slot->field))) return NULL;
        atomic_store_explicit(&slot->ready, atom, memory_order_release);
    }
    *n = slot->n;
    return slot->field;
}

/*
 * The node's own name, asked on every update: kept apart from the shared table, where
 * another atom could hold its slot. A node has very few names in its life
 * (nonode@nohost, then its name), so each gets a write-once slot of its own; past
 * NODE_SLOTS names atom_field serves.
 */
#define NODE_SLOTS 4
static atom_slot node_slots[NODE_SLOTS];
static _Atomic unsigned node_slots_claimed;
static atom_slot *_Atomic node_last; /* the slot of the last name asked, or NULL */

/* The field of the atom node; NULL when node is not an atom or encode_atom leaves it to
 * Erlang. A hit proves node an atom (slots hold only atoms): the check is for a miss. */
static const uint8_t *node_field(ErlNifEnv *env, ERL_NIF_TERM node, size_t *n)
{
    atom_slot *last = atomic_load_explicit(&node_last, memory_order_acquire);
    if (!last || atomic_load_explicit(&last->ready, memory_order_acquire) != node) {
        if (!enif_is_atom(env, node)) return NULL;
        unsigned claimed = atomic_load(&node_slots_claimed);
        last = NULL;
        for (unsigned i = 0; i < claimed && i < NODE_SLOTS; i++)
            if (atomic_load_explicit(&node_slots[i].ready, memory_order_acquire) == node)
                last = &node_slots[i];
        if (!last) {
            unsigned i = atomic_fetch_add(&node_slots_claimed, 1);
            if (i >= NODE_SLOTS) return atom_field(env, node, n);
            last = &node_slots[i];
            if (!(last->n = encode_atom(env, node, last->field))) return NULL;
            atomic_store_explicit(&last->ready, node, memory_order_release);
        }
        atomic_store_explicit(&node_last, last, memory_order_release);
    }
    *n = last->n;
    return last->field;
}

/*
 * Short fields (a node name, an atom) are compared and copied inline: the libc calls
 * through the PLT cost ~3 ns each of a ~72 ns update (perf). 4 to 16 bytes in two
 * overlapping loads or stores of 4 or 8 bytes, up to 64 in 8-byte steps, fewer than 4
 * one at a time; past 64 libc's.
 */
static inline uint64_t load8(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t load4(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static bool short_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    if (n >= 8) {
        if (n > 64) return memcmp(a, b, n) == 0;
        for (size_t i = 0; i + 8 < n; i += 8)
            if (load8(a + i) != load8(b + i)) return false;
        return load8(a + n - 8) == load8(b + n - 8);
    }
    if (n >= 4) return load4(a) == load4(b) && load4(a + n - 4) == load4(b + n - 4);
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static void short_copy(uint8_t *to, const uint8_t *from, size_t n)
{
    if (n >= 8) {
        if (n > 64) {
            memcpy(to, from, n);
            return;
        }
        for (size_t i = 0; i + 8 < n; i += 8)
            memcpy(to + i, from + i, 8);
        memcpy(to + n - 8, from + n - 8, 8);
    } else if (n >= 4) {
        memcpy(to, from, 4);
        memcpy(to + n - 4, from + n - 4, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            to[i] = from[i];
    }
}

/* A 32-bit length or integer in the external term format's byte order. */
static void put_be32(uint8_t *p, uint32_t u)
{
    p[0] = (uint8_t)(u >> 24);
    p[1] = (uint8_t)(u >> 16);
    p[2] = (uint8_t)(u >> 8);
    p[3] = (uint8_t)u;
}

/*
 * The register field of the common values, byte for byte what plexus_lww:enc/1 and
 * term_to_binary(V, [deterministic, {minor_version, 2}]) give without the leading 131:
 * SMALL_ATOM_UTF8_EXT for an atom of up to 255 UTF-8 bytes (read as Latin-1, the only
 * encoding enif_get_atom offers on OTP 25, and converted), SMALL_INTEGER_EXT for
 * 0..255, INTEGER_EXT for other 32-bit integers, BINARY_EXT for a binary of up to
 * LWW_WRITE_MAX_BINARY bytes. 0 for any other term (the caller falls back to Erlang).
 */
static int encode_value(ErlNifEnv *env, ERL_NIF_TERM v, ERL_NIF_TERM *out)
{
    uint8_t *p;
    if (enif_is_atom(env, v)) {
        size_t n;
        const uint8_t *field = atom_field(env, v, &n);
        if (!field || !(p = enif_make_new_binary(env, n, out))) return 0;
        short_copy(p, field, n);
        return 1;
    }
    ErlNifSInt64 i;
    if (enif_get_int64(env, v, &i)) {
        if (i >= 0 && i < 256) {
            if (!(p = enif_make_new_binary(env, 2, out))) return 0;
            p[0] = 97;
            p[1] = (uint8_t)i;
            return 1;
        }
        if (i < INT32_MIN || i > INT32_MAX) return 0;
        if (!(p = enif_make_new_binary(env, 5, out))) return 0;
        p[0] = 98;
        put_be32(p + 1, (uint32_t)(int32_t)i);
        return 1;
    }
    ErlNifBinary bin;
    if (enif_inspect_binary(env, v, &bin) && bin.size <= LWW_WRITE_MAX_BINARY) {
        if (!(p = enif_make_new_binary(env, bin.size + 5, out))) return 0;
        p[0] = 109;
        put_be32(p + 1, (uint32_t)bin.size);
        memcpy(p + 5, bin.data, bin.size);
        return 1;
    }
    return 0;
}

/*
 * lww_write(Floor, ActorField, Value) -> {plexus_lww, Ts, ActorField, ValueField} |
 * {error, overflow} | {lease, Need} | fallback: plexus_lww's write of Value after Floor
 * in one call: the value's field (encode_value), one tick of the node clock, the
 * register term. ActorField is a register field (a binary of 1 byte to 64 MiB). The
 * value is encoded before the tick, so `fallback' (a value encode_value leaves to
 * Erlang) and a bad argument cost no timestamp.
 */
ERL_NIF_TERM nif_lww_write(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    uint64_t floor, ts;
    ErlNifBinary actor;
    ERL_NIF_TERM value;
    nif_priv *priv = nif_priv_get(env);

    if (argc != 3 || !nif_get_u64(env, argv[0], &floor) ||
        !enif_inspect_binary(env, argv[1], &actor) || actor.size == 0 ||
        actor.size > PLEXUS_MAX_BYTES_LEN)
        return enif_make_badarg(env);
    if (!encode_value(env, argv[2], &value)) return priv->atom_fallback;
    if (!nif_hlc_next(floor, &ts)) return nif_hlc_lease_needed(env, ts);
    if (ts <= floor) return nif_error(env, PLEXUS_EOVERFLOW); /* nothing follows 2^64-1 */
    return enif_make_tuple4(env, priv->atom_plexus_lww, enif_make_uint64(env, ts), argv[1], value);
}

/* A register field: a binary of 1 byte to 64 MiB. */
static int get_field(ErlNifEnv *env, ERL_NIF_TERM t, ErlNifBinary *bin)
{
    return enif_inspect_binary(env, t, bin) && bin->size > 0 && bin->size <= PLEXUS_MAX_BYTES_LEN;
}

/*
 * lww_update(Reg, Node, Value) -> {plexus_lww, Ts, ActorField, ValueField} |
 * {error, overflow} | {lease, Need} | fallback: plexus_lww:update/2 of a register term
 * in one call: the register's tag, timestamp and actor field checked as plexus_lww's
 * guards check them, the actor field of Node (the register's own actor term when it
 * already holds those bytes, the common case of a node rewriting its register: no
 * copy), the value's field, a tick after the register's timestamp, the new term.
 * `fallback' for anything it leaves to Erlang (a binary register, a tuple that is not
 * a register, a node name or value it does not encode), before any tick. The old
 * value field is not read at all (update/2's guard checks it, for less than the
 * ~3.5 ns enif_inspect_binary costs here), so whatever it holds, the result is a
 * well-formed register.
 */
ERL_NIF_TERM nif_lww_update(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    nif_priv *priv = nif_priv_get(env);
    const ERL_NIF_TERM *reg;
    int arity;
    uint64_t floor, ts;
    ErlNifBinary actor;
    ERL_NIF_TERM actor_term, value_term;
    const uint8_t *node;
    size_t node_n;
    unsigned char *p;

    if (argc != 3 || !enif_get_tuple(env, argv[0], &arity, &reg) || arity != 4 ||
        reg[0] != priv->atom_plexus_lww || !nif_get_u64(env, reg[1], &floor) ||
        !get_field(env, reg[2], &actor) || !(node = node_field(env, argv[1], &node_n)))
        return priv->atom_fallback;
    /* node may point into the atom cache: used up before encode_value may refill it */
    if (actor.size == node_n && short_equal(actor.data, node, node_n)) {
        actor_term = reg[2];
    } else {
        if (!(p = enif_make_new_binary(env, node_n, &actor_term))) return priv->atom_fallback;
        short_copy(p, node, node_n);
    }
    if (!encode_value(env, argv[2], &value_term)) return priv->atom_fallback;
    if (!nif_hlc_next(floor, &ts)) return nif_hlc_lease_needed(env, ts);
    if (ts <= floor) return nif_error(env, PLEXUS_EOVERFLOW);
    ERL_NIF_TERM fields[4] = {priv->atom_plexus_lww, enif_make_uint64(env, ts), actor_term,
                              value_term};
    return enif_make_tuple_from_array(env, fields, 4); /* no varargs walk: ~1 ns (perf) */
}
