/*
 * CRDT v2 trie NIFs; see nif_trie.h. The merge mirrors plexus_crdt_trie:merge_node/6
 * with plexus_orset2's entry merge, clause for clause, so its result is the very term
 * the Erlang walk builds (the EUnit and PropEr suites compare the two):
 *   - nodes with equal hash and count are taken from side A unseen;
 *   - two leaves merge their sorted entry lists; an entry both sides hold alike (the
 *     same term, or equal hashes and key fragments in the two leaves) is kept as it
 *     is without being read, others are decoded and merged dot by dot
 *     (plexus_dots_merge against the other side's context);
 *   - a leaf against a branch is bucketed by the key-hash nibble, a branch against a
 *     branch is merged child by child; a node that shrinks to 32 entries collapses,
 *     a leaf that grows past 32 splits, exactly as the Erlang rules say.
 * New leaves take their entries' 16-bit key fragments and hashes from the input
 * leaves and their hash from the leaf they replace, adjusted by the entries that
 * changed (new entries hashed here with plexus_thash, the hash
 * plexus_crdt_trie:ehash/1 calls).
 *
 * Entry hashes are trusted as node hashes are: two entries with equal hashes and
 * fragments are taken as equal unread (two entries built apart, equal but sharing no
 * term, were a deep compare each: two thirds of a full merge). A leaf's hashes must
 * sum to its hash (checked); that they are its entries' hashes is what validate/1
 * checks of a term from outside, and what every builder here and in Erlang keeps.
 *
 * Placing an entry below a leaf needs nibbles of its 32-bit key hash
 * erlang:phash2(Key, 1 bsl 32). enif_hash(ERL_NIF_PHASH2) is phash2/1: the low 27
 * bits of the same hash, which holds every nibble from depth 2 down. It is checked
 * against the fragment the entry already has; when a nibble above depth 2 is needed,
 * or the check fails, the NIF answers `fallback' and plexus_orset2 runs the Erlang
 * walk (only tries of a few hundred entries can need it).
 *
 * Untrusted terms: every term is type-checked before it is read; a shape the Erlang
 * side never builds gives {error, bad_state}. As in Erlang, a subtree or entry taken
 * whole (equal on both sides) is not looked into.
 *
 * Scheduling: plexus_orset2 splits a large merge at its top branches in Erlang and
 * calls this NIF once per subtree pair (Depth says where the pair sits), so a call
 * stays small. The walk still counts the entries and nodes it touches; on a normal
 * scheduler it gives up once that weight crosses the dirty threshold and runs again
 * on a dirty CPU scheduler (a leaf met by a large branch filters the whole branch:
 * the cost of a merge follows the divergence, which is only known by walking). An
 * inline call charges its weight (nif_charge).
 */
#include "nif/nif_trie.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nif/nif_trie_encode.h"
#include "nif/nif_util.h"
#include "plexus/arena.h"
#include "plexus/crdt_trie.h"

#define MAX_LEAF 32u
#define MAX_DEPTH 8u
/* No honest trie holds this many entries (the binary format could not carry them:
 * every entry takes bytes). A larger count is a lie, and refusing it keeps the sums of
 * counts (branch_of) far from overflowing 64 bits. */
#define MAX_COUNT ((uint64_t)1 << 40)
#define MASK56 PLEXUS_THASH_MASK
/* Entries are {Key, [Dot]} with Dot a tuple of binaries and integers: 3 levels. */
#define HASH_MAX_NEST 6
/* Weight of one entry or node touched, in the byte units of the dirty threshold
 * (nif_util.h: ~7 ns per byte at the costliest measured rate). Measured with the
 * full merge of plexus_bench_crdt2 (two 100k replicas built apart): 35-50 ns of CPU
 * per input entry on the 2-core bench machine, so 6 keeps a merge inline up to
 * ~11,000 entries touched (~0.45 ms), as the threshold intends for the other NIFs. A
 * merge of replicas that diverged by 100 elements touches ~5,000 and stays inline. */
#define WORK_WEIGHT 6u
/* A branch pair walked: its 16 children parsed and a branch built, each about what an
 * entry costs (a hostile tree of empty branches was charged 1 for all that). */
#define BRANCH_UNITS 16u
/* An actor or cloud dot of a context read: a map pair, a copy and its share of a sort
 * (measured: 70 ms for two contexts of 60,000 actors, ~580 ns each, less in small
 * ones: the sort is n log n; 8 keeps the 1,024 of NATIVE_CTX in plexus_crdt_trie inline). */
#define CTX_UNITS 8u
/* The weight is compared with the dirty threshold once every this many units. */
#define WORK_CHECK 512u

enum { M_OK = 0, M_BAD, M_DIRTY, M_FALLBACK, M_NOMEM };

/* ------------------------------------------------------------------ entry hash */

/* The weight of hashing, in the units of the dirty threshold (nif_util.h, ~7 ns):
 * one per term visited, one per HASH_BYTES_PER_UNIT bytes hashed (measured: a 50 MB
 * value took 25 ms, ~0.5 ns a byte). */
#define HASH_BYTES_PER_UNIT 16u

/* What one trie_hash call has hashed so far; on a normal scheduler the weight is
 * compared with the dirty threshold every HASH_CHECK units (and at every binary). */
typedef struct hash_walk {
    ErlNifEnv *env;
    uint64_t work, next_check;
    int inline_call;
} hash_walk;

#define HASH_CHECK 1024u

enum { H_OK = 1, H_BAD = 0, H_DIRTY = -1 };

static int hash_charge(hash_walk *w, uint64_t units)
{
    w->work += units;
    if (!w->inline_call || w->work < w->next_check) return H_OK;
    w->next_check = w->work + HASH_CHECK;
    return nif_should_go_dirty(w->env, w->work) ? H_DIRTY : H_OK;
}

static int hash_term(hash_walk *w, ERL_NIF_TERM t, plexus_thash *s, int nest)
{
    ErlNifEnv *env = w->env;
    int rc;
    if (nest > HASH_MAX_NEST) return H_BAD;
    if ((rc = hash_charge(w, 1)) != H_OK) return rc;
    switch (enif_term_type(env, t)) {
    case ERL_NIF_TERM_TYPE_BITSTRING: {
        ErlNifBinary b;
        if (!enif_inspect_binary(env, t, &b)) return H_BAD;
        /* weighed before it is read: a 50 MB value goes dirty unhashed */
        w->next_check = 0;
        if ((rc = hash_charge(w, b.size / HASH_BYTES_PER_UNIT)) != H_OK) return rc;
        plexus_thash_bin(s, b.data, b.size);
        return H_OK;
    }
    case ERL_NIF_TERM_TYPE_INTEGER: {
        ErlNifUInt64 v;
        if (!enif_get_uint64(env, t, &v)) return H_BAD;
        plexus_thash_int(s, (uint64_t)v);
        return H_OK;
    }
    case ERL_NIF_TERM_TYPE_TUPLE: {
        int arity;
        const ERL_NIF_TERM *el;
        if (!enif_get_tuple(env, t, &arity, &el)) return H_BAD;
        plexus_thash_tag(s, PLEXUS_THASH_TUPLE, (uint64_t)arity);
        for (int i = 0; i < arity; i++)
            if ((rc = hash_term(w, el[i], s, nest + 1)) != H_OK) return rc;
        return H_OK;
    }
    case ERL_NIF_TERM_TYPE_LIST: {
        ERL_NIF_TERM head, tail = t;
        while (enif_get_list_cell(env, tail, &head, &tail)) {
            plexus_thash_tag(s, PLEXUS_THASH_CONS, 0);
            if ((rc = hash_term(w, head, s, nest + 1)) != H_OK) return rc;
        }
        if (!enif_is_empty_list(env, tail)) return H_BAD;
        plexus_thash_tag(s, PLEXUS_THASH_NIL, 0);
        return H_OK;
    }
    default:
        return H_BAD;
    }
}

/* An entry's hash. The size of the entry is only known by walking it, so an inline
 * call hashes within the dirty threshold and, past it, starts again on a dirty
 * scheduler (a 50 MB value or an entry of a million dots); the work it did inline
 * is charged either way. */
ERL_NIF_TERM nif_trie_hash(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    plexus_thash s;
    if (argc != 1) return enif_make_badarg(env);
    hash_walk w = {env, 0, HASH_CHECK, enif_thread_type() == ERL_NIF_THR_NORMAL_SCHEDULER};
    plexus_thash_init(&s);
    int rc = hash_term(&w, argv[0], &s, 0);
    /* a small entry (the common case, ~1 us) charges nothing: a charge is at least
     * 1% of a slice, forty times what such a call costs */
    if (w.work >= NIF_BYTES_PER_PERCENT) nif_charge(env, w.work);
    if (rc == H_DIRTY) return nif_go_dirty(env, "trie_hash", nif_trie_hash, argc, argv);
    if (rc != H_OK) return enif_make_badarg(env);
    return enif_make_uint64(env, plexus_thash_final(&s));
}

/* ------------------------------------------------------------------ walk state */

typedef struct mstate {
    ErlNifEnv *env;
    nif_priv *priv;
    plexus_arena ar; /* the scratch of the walk (nif_alloc) */
    uint64_t work, next_check;
    int may_go_dirty;
    /* Arity of the tuples in an entry's list: 2 for OR-Set dots {Actor, Ctr}, 4 for
     * LWW map writes {Actor, Ctr, Ts, Value}; the dot is always the first two. */
    int write_arity;
    /* The actor term of the last dot read and its bytes: the dots of a state share
     * their actors' terms (one per actor in a decoded state), so most dots skip the
     * binary's header. */
    ERL_NIF_TERM last_actor;
    plexus_bytes last_actor_bytes;
} mstate;

/* A decoded node: kind, hash and count, and its tuple (leaf entries or children). */
enum { N_NIL = 0, N_LEAF, N_BRANCH };
typedef struct pnode {
    int kind;
    ERL_NIF_TERM term, body_t, frags_t, hashes_t;
    uint64_t h, c;
    const ERL_NIF_TERM *t; /* branch: its 16 children */
    int arity;
    /* leaf: its nent entries, their hashes and their key fragments */
    const ERL_NIF_TERM *ent, *hashes;
    size_t nent;
    const uint8_t *frags;
} pnode;

/* A node built by the walk, with the hash and count its parent sums. */
typedef struct mnode {
    ERL_NIF_TERM term;
    uint64_t h, c;
} mnode;

/* An entry of an input leaf, decoded as far as needed. */
typedef struct ment {
    ERL_NIF_TERM term, key_t, dots_t;
    plexus_bytes key;
    uint16_t frag;
    uint64_t hash; /* from the leaf's entry hashes */
    int key_ok;    /* key_t, dots_t and key are set */
    plexus_dot *dots;
    ERL_NIF_TERM *dot_terms;
    size_t ndots;
    int dots_ok;
} ment;

/* An entry of a merged list: a term, the input entry it equals on each side (-1 when
 * none), and its key, fragment and (when computed) hash. */
typedef struct mres {
    ERL_NIF_TERM term;
    long eq1, eq2;
    const ment *src; /* an input entry with the same key (and fragment) */
    uint64_t hash;
    int hash_ok;
} mres;

static int charge(mstate *ms, uint64_t units)
{
    ms->work += units;
    if (ms->may_go_dirty && ms->work >= ms->next_check) {
        ms->next_check = ms->work + WORK_CHECK;
        if (nif_should_go_dirty(ms->env, ms->work * WORK_WEIGHT)) return M_DIRTY;
    }
    return M_OK;
}

/* The node tuple alone: kind, hash and count. A walk that skips the node (equal hash
 * and count on both sides) reads nothing more of it; in a large state every other
 * term of a node is one more cache miss. */
static int parse_head(mstate *ms, ERL_NIF_TERM t, pnode *n)
{
    int arity;
    const ERL_NIF_TERM *el;
    memset(n, 0, sizeof *n);
    n->term = t;
    /* atoms are immediates: an atom is identical to another exactly when their words
     * are equal (enif_is_identical would call the deep compare for a tuple) */
    if (t == ms->priv->atom_nil) return M_OK;
    if (!enif_get_tuple(ms->env, t, &arity, &el) || (arity != 4 && arity != 6)) return M_BAD;
    ErlNifUInt64 h, c;
    if (!enif_get_uint64(ms->env, el[1], &h) || !enif_get_uint64(ms->env, el[2], &c) ||
        c > MAX_COUNT)
        return M_BAD;
    n->h = h;
    n->c = c;
    if (arity == 6 && el[0] == ms->priv->atom_l) {
        n->kind = N_LEAF;
        n->frags_t = el[3];
        n->hashes_t = el[4];
        n->body_t = el[5];
    } else if (arity == 4 && el[0] == ms->priv->atom_b) {
        n->kind = N_BRANCH;
        n->body_t = el[3];
    } else {
        return M_BAD;
    }
    return M_OK;
}

/* A leaf's entries, hashes and fragments, or a branch's children, of a node at depth
 * d. The shape must be one a canonical trie has there: a branch only above the last
 * level (a hostile chain of branches would otherwise take the walk's recursion as deep
 * as it likes, past the C stack), a leaf of more than 32 entries only on it. */
static int parse_body(mstate *ms, pnode *n, unsigned d)
{
    if (n->kind == N_NIL) return M_OK;
    if (n->kind == N_LEAF) {
        ErlNifBinary fr;
        int ne, nh;
        if (!enif_get_tuple(ms->env, n->body_t, &ne, &n->ent) ||
            !enif_get_tuple(ms->env, n->hashes_t, &nh, &n->hashes) ||
            !enif_inspect_binary(ms->env, n->frags_t, &fr) || ne < 1 || nh != ne ||
            fr.size != 2u * (size_t)ne || n->c != (uint64_t)ne ||
            (d < MAX_DEPTH && (size_t)ne > MAX_LEAF))
            return M_BAD;
        n->nent = (size_t)ne;
        n->frags = fr.data;
        return M_OK;
    }
    if (d >= MAX_DEPTH || !enif_get_tuple(ms->env, n->body_t, &n->arity, &n->t)) return M_BAD;
    if (n->arity != 16 || n->c <= MAX_LEAF) return M_BAD;
    return M_OK;
}

static int parse_node(mstate *ms, ERL_NIF_TERM t, unsigned d, pnode *n)
{
    int rc = parse_head(ms, t, n);
    return rc ? rc : parse_body(ms, n, d);
}

/* A leaf's entries with their fragments and hashes (read from its index, not from the
 * entries: a walk that finds two entries' hashes equal touches neither entry). The
 * hashes must sum to the leaf's hash, as every node's hash sums what is below it. */
static int leaf_entries(mstate *ms, const pnode *n, ment **out)
{
    size_t k = n->nent;
    ment *e = plexus_arena_alloc(&ms->ar, k * sizeof *e);
    if (!e) return M_NOMEM;
    uint64_t sum = 0;
    /* only what the equal-pair fast path reads; the rest is set when decoded */
    for (size_t i = 0; i < k; i++) {
        ErlNifUInt64 h;
        if (!enif_get_uint64(ms->env, n->hashes[i], &h) || h > MASK56) return M_BAD;
        e[i].key_ok = e[i].dots_ok = 0;
        e[i].term = n->ent[i];
        e[i].frag = (uint16_t)((n->frags[2 * i] << 8) | n->frags[2 * i + 1]);
        e[i].hash = (uint64_t)h;
        sum += (uint64_t)h;
    }
    if ((sum & MASK56) != (n->h & MASK56)) return M_BAD;
    *out = e;
    return M_OK;
}

static int ment_key(mstate *ms, ment *m)
{
    if (m->key_ok) return M_OK;
    int arity;
    const ERL_NIF_TERM *el;
    ErlNifBinary b;
    if (!enif_get_tuple(ms->env, m->term, &arity, &el) || arity != 2 ||
        !enif_inspect_binary(ms->env, el[0], &b))
        return M_BAD;
    m->key_t = el[0];
    m->dots_t = el[1];
    m->key.p = b.data;
    m->key.n = b.size;
    m->key_ok = 1;
    return M_OK;
}

static int ment_dots(mstate *ms, ment *m)
{
    int rc;
    if (m->dots_ok) return M_OK;
    if ((rc = ment_key(ms, m))) return rc;
    unsigned len;
    if (!enif_get_list_length(ms->env, m->dots_t, &len) || len == 0) return M_BAD;
    m->dots = plexus_arena_alloc(&ms->ar, len * sizeof *m->dots);
    m->dot_terms = plexus_arena_alloc(&ms->ar, len * sizeof *m->dot_terms);
    if (!m->dots || !m->dot_terms) return M_NOMEM;
    ERL_NIF_TERM head, tail = m->dots_t;
    size_t i = 0;
    while (enif_get_list_cell(ms->env, tail, &head, &tail)) {
        int arity;
        const ERL_NIF_TERM *el;
        ErlNifBinary b;
        ErlNifUInt64 ctr;
        if (!enif_get_tuple(ms->env, head, &arity, &el) || arity != ms->write_arity ||
            !enif_get_uint64(ms->env, el[1], &ctr))
            return M_BAD;
        if (el[0] != ms->last_actor) {
            if (!enif_inspect_binary(ms->env, el[0], &b)) return M_BAD;
            ms->last_actor = el[0];
            ms->last_actor_bytes.p = b.data;
            ms->last_actor_bytes.n = b.size;
        }
        m->dots[i].actor = ms->last_actor_bytes;
        m->dots[i].ctr = (uint64_t)ctr;
        m->dot_terms[i] = head;
        i++;
    }
    m->ndots = i;
    m->dots_ok = 1;
    return M_OK;
}

/* ------------------------------------------------------------------ prefetching */

/*
 * A large state is a few hundred thousand small terms spread over the heap: nearly
 * every term a merge reads is a cache miss, and each read waits for the one before it
 * (an entry, then its dot list, then the dot, then the actor). The walk knows ahead
 * which terms it will read, so it asks for them in batches and their misses overlap.
 * These are hints only: the address is the term's word with its tag bits cleared (the
 * heap cell of a boxed term or a list), nothing is ever read through it, and a hint
 * for an immediate or a wrong guess costs nothing but the hint.
 */
static inline void prefetch_lines(ERL_NIF_TERM t, unsigned lines)
{
    /* integer arithmetic: the address may be anything, and is never dereferenced */
    uintptr_t at = (uintptr_t)(t & ~(ERL_NIF_TERM)3);
    for (unsigned line = 0; line < lines; line++)
        __builtin_prefetch((const void *)(at + 64u * line));
}

static inline void prefetch_term(ERL_NIF_TERM t)
{
    prefetch_lines(t, 1);
}

/* A tuple of up to 32 elements (a leaf's entries or hashes, a branch's children):
 * read whole by the walk, 5 cache lines at most. */
static inline void prefetch_tuple(ERL_NIF_TERM t)
{
    prefetch_lines(t, 5);
}

/* The parts of a node that the walk reads next, once its head says it differs. */
static void prefetch_body(const pnode *n)
{
    if (n->kind == N_NIL) return;
    prefetch_tuple(n->body_t);
    if (n->kind == N_LEAF) {
        prefetch_tuple(n->hashes_t);
        prefetch_term(n->frags_t);
    }
}

#define WARM_MAX 64u

/* Before two leaves' entries are merged: the entries the merge will decode are those
 * whose hash or fragment the other side does not match at the same place (the pairing
 * of merge_lists, by fragments alone). Their terms are fetched in four rounds, each
 * round's misses overlapping: the entry tuples; their keys and dot lists; the first
 * dots; those dots' actors. Errors are left to the merge, which reads everything
 * again through the checked calls. */
static void warm_unequal(mstate *ms, ment *e1, size_t n1, ment *e2, size_t n2)
{
    ment *todo[WARM_MAX];
    ERL_NIF_TERM next[WARM_MAX];
    size_t n = 0, i = 0, j = 0;
    while ((i < n1 || j < n2) && n < WARM_MAX) {
        if (i < n1 && j < n2 && e1[i].hash == e2[j].hash && e1[i].frag == e2[j].frag) {
            i++;
            j++;
        } else if (j >= n2 || (i < n1 && e1[i].frag < e2[j].frag)) {
            todo[n++] = &e1[i++];
        } else if (i >= n1 || e2[j].frag < e1[i].frag) {
            todo[n++] = &e2[j++];
        } else {
            todo[n++] = &e1[i++];
            if (n < WARM_MAX) todo[n++] = &e2[j++];
        }
    }
    for (size_t k = 0; k < n; k++)
        prefetch_term(todo[k]->term);
    for (size_t k = 0; k < n; k++) {
        int arity;
        const ERL_NIF_TERM *el;
        next[k] = 0;
        if (todo[k]->key_ok || !enif_get_tuple(ms->env, todo[k]->term, &arity, &el) || arity != 2)
            continue;
        prefetch_term(el[0]);
        prefetch_term(el[1]);
        next[k] = el[1];
    }
    for (size_t k = 0; k < n; k++) {
        ERL_NIF_TERM head, tail;
        if (next[k] && enif_get_list_cell(ms->env, next[k], &head, &tail)) {
            prefetch_term(head);
            next[k] = head;
        } else {
            next[k] = 0;
        }
    }
    for (size_t k = 0; k < n; k++) {
        int arity;
        const ERL_NIF_TERM *el;
        if (next[k] && enif_get_tuple(ms->env, next[k], &arity, &el) && arity >= 1 &&
            el[0] != ms->last_actor)
            prefetch_term(el[0]);
    }
}

/* The hash of an entry term whose key and writes are decoded: from the parts for
 * OR-Set dots, from the term for LWW writes (their timestamps and values are not
 * decoded; the same stream either way). */
static int built_hash(mstate *ms, ERL_NIF_TERM term, plexus_bytes key, const plexus_dot *d,
                      size_t n, uint64_t *h)
{
    if (ms->write_arity == 2) {
        *h = plexus_thash_orset_entry(key, d, n);
        return M_OK;
    }
    /* a write's value may be megabytes: weighed as it is hashed, with the walk's
     * weight so far, so that the walk moves to a dirty scheduler before hashing it */
    plexus_thash s;
    hash_walk w = {ms->env, ms->work * WORK_WEIGHT, 0, ms->may_go_dirty};
    plexus_thash_init(&s);
    int rc = hash_term(&w, term, &s, 0);
    if (rc == H_DIRTY) return M_DIRTY;
    if (rc != H_OK) return M_BAD;
    ms->work = w.work / WORK_WEIGHT;
    *h = plexus_thash_final(&s);
    return M_OK;
}

/* Leaf order: by key fragment, then by key; keys are read only when the fragments
 * are equal. */
static int entry_cmp(mstate *ms, ment *a, ment *b, int *out)
{
    int rc;
    if (a->frag != b->frag) {
        *out = a->frag < b->frag ? -1 : 1;
        return M_OK;
    }
    if ((rc = ment_key(ms, a)) || (rc = ment_key(ms, b))) return rc;
    *out = plexus_bytes_cmp(a->key.p, a->key.n, b->key.p, b->key.n);
    return M_OK;
}

/* ------------------------------------------------------------------ entry merge */

static void res_take(mres *r, const ment *m, long eq1, long eq2)
{
    r->term = m->term;
    r->eq1 = eq1;
    r->eq2 = eq2;
    r->src = m;
    r->hash = m->hash;
    r->hash_ok = 1;
}

/* keep_one: an entry only one side has keeps the dots `other' has not seen. Adds 0 or
 * 1 result; *same is set when the entry is kept as it is. */
static int keep_one(mstate *ms, ment *m, const plexus_dotctx *other, mres *out, size_t *n,
                    int *same)
{
    int rc;
    *same = 0;
    if ((rc = ment_dots(ms, m))) return rc;
    long *picks = plexus_arena_alloc(&ms->ar, m->ndots * sizeof *picks);
    if (!picks) return M_NOMEM;
    size_t k = plexus_dots_merge(m->dots, m->ndots, NULL, 0, NULL, other, picks);
    if (k == m->ndots) {
        *same = 1;
        res_take(&out[*n], m, -1, -1);
        (*n)++;
        return M_OK;
    }
    if (k == 0) return M_OK;
    ERL_NIF_TERM *terms = plexus_arena_alloc(&ms->ar, k * sizeof *terms);
    plexus_dot *dots = plexus_arena_alloc(&ms->ar, k * sizeof *dots);
    if (!terms || !dots) return M_NOMEM;
    for (size_t i = 0; i < k; i++) {
        terms[i] = m->dot_terms[picks[i]];
        dots[i] = m->dots[picks[i]];
    }
    mres *r = &out[(*n)++];
    r->term =
        enif_make_tuple2(ms->env, m->key_t, enif_make_list_from_array(ms->env, terms, (unsigned)k));
    r->eq1 = r->eq2 = -1;
    r->src = m;
    r->hash_ok = 1;
    return built_hash(ms, r->term, m->key, dots, k, &r->hash);
}

/* merge_entries(E1, E2, C1, C2): e1 and e2 in leaf order; results into out (room for
 * n1 + n2), each marked with the input entry it equals on either side. */
static int merge_lists(mstate *ms, ment *e1, size_t n1, const plexus_dotctx *c1, ment *e2,
                       size_t n2, const plexus_dotctx *c2, mres *out, size_t *nout)
{
    size_t i = 0, j = 0, n = 0;
    int rc, same;
    if ((rc = charge(ms, n1 + n2))) return rc;
    while (i < n1 && j < n2) {
        /* Equal entries have equal hashes and fragments, and then nothing more is
         * read: trusted as the walk trusts equal node hashes (crdt_format.md). */
        if (e1[i].term == e2[j].term || (e1[i].hash == e2[j].hash && e1[i].frag == e2[j].frag)) {
            res_take(&out[n++], &e1[i], (long)i, (long)j);
            i++;
            j++;
            continue;
        }
        int k;
        if ((rc = entry_cmp(ms, &e1[i], &e2[j], &k))) return rc;
        if (k < 0) {
            size_t before = n;
            if ((rc = keep_one(ms, &e1[i], c2, out, &n, &same))) return rc;
            if (same) out[before].eq1 = (long)i;
            i++;
        } else if (k > 0) {
            size_t before = n;
            if ((rc = keep_one(ms, &e2[j], c1, out, &n, &same))) return rc;
            if (same) out[before].eq2 = (long)j;
            j++;
        } else {
            ment *a = &e1[i], *b = &e2[j];
            if ((rc = ment_dots(ms, a)) || (rc = ment_dots(ms, b))) return rc;
            long *picks = plexus_arena_alloc(&ms->ar, (a->ndots + b->ndots) * sizeof *picks);
            if (!picks) return M_NOMEM;
            size_t k2 = plexus_dots_merge(a->dots, a->ndots, b->dots, b->ndots, c1, c2, picks);
            int all_a = k2 == a->ndots, all_b = k2 == b->ndots;
            for (size_t x = 0; x < k2; x++) {
                if (picks[x] != (long)x) all_a = 0;
                /* a dot both hold is given from a: it is still b's dot x */
                if (!(picks[x] == -1 - (long)x ||
                      (picks[x] >= 0 && (size_t)x < b->ndots &&
                       plexus_dot_cmp(&a->dots[picks[x]], &b->dots[x]) == 0)))
                    all_b = 0;
            }
            if (k2 == 0) {
                /* every dot removed on the other side: the element goes */
            } else if (all_a) {
                res_take(&out[n++], a, (long)i, all_b ? (long)j : -1);
            } else if (all_b) {
                res_take(&out[n++], b, -1, (long)j);
            } else {
                ERL_NIF_TERM *terms = plexus_arena_alloc(&ms->ar, k2 * sizeof *terms);
                plexus_dot *dots = plexus_arena_alloc(&ms->ar, k2 * sizeof *dots);
                if (!terms || !dots) return M_NOMEM;
                for (size_t x = 0; x < k2; x++) {
                    long p = picks[x];
                    terms[x] = p >= 0 ? a->dot_terms[p] : b->dot_terms[-1 - p];
                    dots[x] = p >= 0 ? a->dots[p] : b->dots[-1 - p];
                }
                mres *r = &out[n++];
                r->term = enif_make_tuple2(ms->env, a->key_t,
                                           enif_make_list_from_array(ms->env, terms, (unsigned)k2));
                r->eq1 = r->eq2 = -1;
                r->src = a;
                r->hash_ok = 1;
                if ((rc = built_hash(ms, r->term, a->key, dots, k2, &r->hash))) return rc;
            }
            i++;
            j++;
        }
    }
    for (; i < n1; i++) {
        size_t before = n;
        if ((rc = keep_one(ms, &e1[i], c2, out, &n, &same))) return rc;
        if (same) out[before].eq1 = (long)i;
    }
    for (; j < n2; j++) {
        size_t before = n;
        if ((rc = keep_one(ms, &e2[j], c1, out, &n, &same))) return rc;
        if (same) out[before].eq2 = (long)j;
    }
    *nout = n;
    return M_OK;
}

/* ------------------------------------------------------------------ building nodes */

static ERL_NIF_TERM make_leaf_term(mstate *ms, uint64_t h, size_t n, const ERL_NIF_TERM *entries,
                                   const uint16_t *frags, const uint64_t *hashes, int *ok)
{
    ERL_NIF_TERM fb;
    unsigned char *p = enif_make_new_binary(ms->env, 2 * n, &fb);
    ERL_NIF_TERM *hs = plexus_arena_alloc(&ms->ar, n * sizeof *hs);
    if (!p || !hs) {
        *ok = 0;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        p[2 * i] = (unsigned char)(frags[i] >> 8);
        p[2 * i + 1] = (unsigned char)(frags[i] & 0xff);
        hs[i] = enif_make_uint64(ms->env, hashes[i]);
    }
    *ok = 1;
    return enif_make_tuple6(ms->env, ms->priv->atom_l, enif_make_uint64(ms->env, h & MASK56),
                            enif_make_uint64(ms->env, n), fb,
                            enif_make_tuple_from_array(ms->env, hs, (unsigned)n),
                            enif_make_tuple_from_array(ms->env, entries, (unsigned)n));
}

/* An entry being placed into new nodes: its term, key, fragment and hash. */
typedef struct bent {
    ERL_NIF_TERM term, key_t;
    plexus_bytes key;
    uint16_t frag;
    uint64_t hash;
    uint32_t kh; /* the key hash: given whole (trie_build), or its low 27 bits */
    int kh_ok;   /* 1: low 27 bits looked up; 2: all 32 bits given */
} bent;

static int nibble_of(bent *e, unsigned d, unsigned *nib)
{
    /* Bits 28-4d .. 31-4d; without the whole hash only depths 2..7 lie within the 27
     * bits phash2/1 gives. */
    if (e->kh_ok != 2) {
        if (d < 2 || d >= MAX_DEPTH) return M_FALLBACK;
        if (!e->kh_ok) {
            e->kh = (uint32_t)enif_hash(ERL_NIF_PHASH2, e->key_t, 0);
            /* phash2/1 is the low 27 bits of phash2(K, 1 bsl 32): the fragment agrees */
            if ((e->kh & 0xffffu) != e->frag) return M_FALLBACK;
            e->kh_ok = 1;
        }
    }
    *nib = (e->kh >> (28 - 4 * d)) & 15u;
    return M_OK;
}

static int branch_of(mstate *ms, unsigned d, mnode kids[16], mnode *out);

/* Leaf order: fragment, then key bytes (plexus_crdt_trie:leaf_sorted/3). */
static int leaf_order(const void *x, const void *y)
{
    const bent *a = x, *b = y;
    if (a->frag != b->frag) return a->frag < b->frag ? -1 : 1;
    return plexus_bytes_cmp(a->key.p, a->key.n, b->key.p, b->key.n);
}

/* Puts a leaf's entries in leaf order: a check only for the merge walk's (in order
 * already); insertion for trie_build's few, qsort for many (a depth-8 leaf of keys
 * whose hashes collide). */
static void to_leaf_order(bent *e, size_t n)
{
    size_t i = 1;
    while (i < n && leaf_order(&e[i - 1], &e[i]) < 0)
        i++;
    if (i >= n) return;
    if (n > MAX_LEAF) {
        qsort(e, n, sizeof *e, leaf_order);
        return;
    }
    for (; i < n; i++) {
        bent x = e[i];
        size_t j = i;
        while (j > 0 && leaf_order(&e[j - 1], &x) > 0) {
            e[j] = e[j - 1];
            j--;
        }
        e[j] = x;
    }
}

/* build(D, Entries): the canonical node at depth d for entries in leaf order (or, for
 * trie_build, in any order: each leaf sorts its own). */
static int build(mstate *ms, unsigned d, bent *e, size_t n, mnode *out)
{
    int rc, ok;
    if (n == 0) {
        out->term = ms->priv->atom_nil;
        out->h = out->c = 0;
        return M_OK;
    }
    if (n <= MAX_LEAF || d >= MAX_DEPTH) {
        to_leaf_order(e, n);
        ERL_NIF_TERM *terms = plexus_arena_alloc(&ms->ar, n * sizeof *terms);
        uint16_t *frags = plexus_arena_alloc(&ms->ar, n * sizeof *frags);
        uint64_t *hashes = plexus_arena_alloc(&ms->ar, n * sizeof *hashes);
        if (!terms || !frags || !hashes) return M_NOMEM;
        uint64_t h = 0;
        for (size_t i = 0; i < n; i++) {
            terms[i] = e[i].term;
            frags[i] = e[i].frag;
            hashes[i] = e[i].hash;
            h += e[i].hash;
        }
        out->term = make_leaf_term(ms, h, n, terms, frags, hashes, &ok);
        if (!ok) return M_NOMEM;
        out->h = h & MASK56;
        out->c = n;
        return M_OK;
    }
    bent *sorted = plexus_arena_alloc(&ms->ar, n * sizeof *sorted);
    unsigned *nib = plexus_arena_alloc(&ms->ar, n * sizeof *nib);
    if (!sorted || !nib) return M_NOMEM;
    size_t counts[16] = {0}, start[16];
    for (size_t i = 0; i < n; i++) {
        if ((rc = nibble_of(&e[i], d, &nib[i]))) return rc;
        counts[nib[i]]++;
    }
    size_t acc = 0;
    for (int k = 0; k < 16; k++) {
        start[k] = acc;
        acc += counts[k];
    }
    size_t pos[16];
    memcpy(pos, start, sizeof pos);
    for (size_t i = 0; i < n; i++)
        sorted[pos[nib[i]]++] = e[i];
    mnode kids[16];
    for (int k = 0; k < 16; k++)
        if ((rc = build(ms, d + 1, sorted + start[k], counts[k], &kids[k]))) return rc;
    return branch_of(ms, d, kids, out);
}

/* Collects the entries below a canonical node at depth d (for a collapse). */
static int collect(mstate *ms, ERL_NIF_TERM t, unsigned d, bent *out, size_t *n, size_t cap)
{
    pnode p;
    int rc;
    if ((rc = parse_node(ms, t, d, &p))) return rc;
    if (p.kind == N_NIL) return M_OK;
    if (p.kind == N_BRANCH) {
        for (int k = 0; k < 16; k++)
            if ((rc = collect(ms, p.t[k], d + 1, out, n, cap))) return rc;
        return M_OK;
    }
    size_t k = p.nent;
    if (k > cap - *n) return M_BAD;
    ment *es;
    if ((rc = leaf_entries(ms, &p, &es))) return rc;
    for (size_t i = 0; i < k; i++) {
        if ((rc = ment_key(ms, &es[i]))) return rc;
        bent *b = &out[(*n)++];
        memset(b, 0, sizeof *b);
        b->term = es[i].term;
        b->key_t = es[i].key_t;
        b->key = es[i].key;
        b->frag = es[i].frag;
        b->hash = es[i].hash;
    }
    return M_OK;
}

/* branch(Ch) at depth d: sums of the children; a subtree of at most 32 entries is one
 * leaf. Counts are at most MAX_COUNT each (parse_head), so their sum cannot wrap. */
static int branch_of(mstate *ms, unsigned d, mnode kids[16], mnode *out)
{
    uint64_t h = 0, c = 0;
    int ok, rc;
    for (int k = 0; k < 16; k++) {
        h += kids[k].h;
        c += kids[k].c;
    }
    if (c > MAX_COUNT) return M_BAD;
    h &= MASK56;
    if (c > MAX_LEAF) {
        ERL_NIF_TERM ch[16];
        for (int k = 0; k < 16; k++)
            ch[k] = kids[k].term;
        out->term = enif_make_tuple4(ms->env, ms->priv->atom_b, enif_make_uint64(ms->env, h),
                                     enif_make_uint64(ms->env, c),
                                     enif_make_tuple_from_array(ms->env, ch, 16));
        out->h = h;
        out->c = c;
        return M_OK;
    }
    if (c == 0) {
        out->term = ms->priv->atom_nil;
        out->h = out->c = 0;
        return M_OK;
    }
    bent *es = plexus_arena_alloc(&ms->ar, MAX_LEAF * sizeof *es);
    size_t n = 0;
    if (!es) return M_NOMEM;
    for (int k = 0; k < 16; k++)
        if ((rc = collect(ms, kids[k].term, d + 1, es, &n, MAX_LEAF))) return rc;
    if (n != c) return M_BAD;
    to_leaf_order(es, n); /* at most 32 entries */
    ERL_NIF_TERM terms[MAX_LEAF];
    uint16_t frags[MAX_LEAF];
    uint64_t hashes[MAX_LEAF];
    for (size_t i = 0; i < n; i++) {
        if (i > 0 &&
            plexus_bytes_cmp(es[i - 1].key.p, es[i - 1].key.n, es[i].key.p, es[i].key.n) == 0)
            return M_BAD;
        terms[i] = es[i].term;
        frags[i] = es[i].frag;
        hashes[i] = es[i].hash;
    }
    out->term = make_leaf_term(ms, h, n, terms, frags, hashes, &ok);
    if (!ok) return M_NOMEM;
    out->h = h;
    out->c = n;
    return M_OK;
}

/* leaf_at(D, Old, New): the node for merged entries `res' replacing the leaf
 * `base' (side `side' of the merge: its entries are `old', res[i].eq<side> points at
 * them). The hash is base's, less the entries that went, plus those that came. */
static int leaf_at(mstate *ms, unsigned d, const pnode *base, ment *old, int side, mres *res,
                   size_t n, mnode *out)
{
    int rc, ok;
    size_t nold = base->nent;
    if (n == 0) {
        out->term = ms->priv->atom_nil;
        out->h = out->c = 0;
        return M_OK;
    }
    if (n > MAX_LEAF && d < MAX_DEPTH) {
        bent *es = plexus_arena_alloc(&ms->ar, n * sizeof *es);
        if (!es) return M_NOMEM;
        for (size_t i = 0; i < n; i++) {
            mres *r = &res[i];
            memset(&es[i], 0, sizeof es[i]);
            es[i].term = r->term;
            es[i].key_t = r->src->key_t;
            es[i].key = r->src->key;
            es[i].frag = r->src->frag;
            es[i].hash = r->hash;
        }
        /* keys of results from identical pairs may not be decoded yet */
        for (size_t i = 0; i < n; i++) {
            if (!res[i].src->key_ok) {
                if ((rc = ment_key(ms, (ment *)res[i].src))) return rc;
                es[i].key_t = res[i].src->key_t;
                es[i].key = res[i].src->key;
            }
        }
        return build(ms, d, es, n, out);
    }
    uint8_t *used = plexus_arena_alloc(&ms->ar, nold ? nold : 1);
    ERL_NIF_TERM *terms = plexus_arena_alloc(&ms->ar, n * sizeof *terms);
    uint16_t *frags = plexus_arena_alloc(&ms->ar, n * sizeof *frags);
    uint64_t *hashes = plexus_arena_alloc(&ms->ar, n * sizeof *hashes);
    if (!used || !terms || !frags || !hashes) return M_NOMEM;
    memset(used, 0, nold ? nold : 1);
    uint64_t h = base->h;
    for (size_t i = 0; i < n; i++) {
        mres *r = &res[i];
        long eq = side == 1 ? r->eq1 : r->eq2;
        if (eq >= 0)
            used[eq] = 1;
        else
            h += r->hash;
        terms[i] = r->term;
        frags[i] = r->src->frag;
        hashes[i] = r->hash;
    }
    for (size_t i = 0; i < nold; i++)
        if (!used[i]) h -= old[i].hash;
    h &= MASK56;
    out->term = make_leaf_term(ms, h, n, terms, frags, hashes, &ok);
    if (!ok) return M_NOMEM;
    out->h = h;
    out->c = n;
    return M_OK;
}

/* Whether res is exactly side `side''s n entries (Merged =:= E in Erlang). */
static int res_is_side(const mres *res, size_t n, size_t nside, int side)
{
    if (n != nside) return 0;
    for (size_t i = 0; i < n; i++)
        if ((side == 1 ? res[i].eq1 : res[i].eq2) != (long)i) return 0;
    return 1;
}

static mnode as_mnode(const pnode *p)
{
    mnode m = {p->term, p->kind == N_NIL ? 0 : p->h & MASK56, p->kind == N_NIL ? 0 : p->c};
    return m;
}

/* ------------------------------------------------------------------ the walk */

static int filter(mstate *ms, const pnode *p, unsigned d, const plexus_dotctx *other, mnode *out);

/* Merges entries e1 (a bucket of a leaf of side 1, context c1) with the leaf of side 2
 * `leaf2' (context c2) at depth d: merge_bucket / the leaf-leaf clause. When the
 * result is side `keep''s leaf, that leaf is returned as it is. */
static int merge_with_leaf(mstate *ms, ment *e1, size_t n1, const plexus_dotctx *c1,
                           const pnode *leaf2, const plexus_dotctx *c2, unsigned d, int base_side,
                           const pnode *base, mnode *out)
{
    int rc;
    ment *e2;
    if ((rc = leaf_entries(ms, leaf2, &e2))) return rc;
    size_t n2 = leaf2->nent;
    warm_unequal(ms, e1, n1, e2, n2);
    mres *res = plexus_arena_alloc(&ms->ar, (n1 + n2) * sizeof *res);
    size_t n;
    if (!res) return M_NOMEM;
    if ((rc = merge_lists(ms, e1, n1, c1, e2, n2, c2, res, &n))) return rc;
    size_t nbase = base->nent;
    if (res_is_side(res, n, nbase, base_side)) {
        *out = as_mnode(base);
        return M_OK;
    }
    return leaf_at(ms, d, base, base_side == 1 ? e1 : e2, base_side, res, n, out);
}

static int merge_split(mstate *ms, ment *e, size_t n, const pnode *br, unsigned d,
                       const plexus_dotctx *c1, const plexus_dotctx *c2, mnode *out);

/* merge_bucket(EA, B, D, CA, CB) */
static int merge_bucket(mstate *ms, ment *e, size_t n, ERL_NIF_TERM bt, unsigned d,
                        const plexus_dotctx *c1, const plexus_dotctx *c2, mnode *out)
{
    pnode b;
    int rc;
    if ((rc = parse_node(ms, bt, d, &b))) return rc;
    if (n == 0) return filter(ms, &b, d, c1, out);
    if (b.kind == N_NIL) {
        /* build(D, keep_unseen(EA, CB)) */
        mres *res = plexus_arena_alloc(&ms->ar, n * sizeof *res);
        bent *es = plexus_arena_alloc(&ms->ar, n * sizeof *es);
        size_t k;
        if (!res || !es) return M_NOMEM;
        if ((rc = merge_lists(ms, e, n, c1, NULL, 0, c2, res, &k))) return rc;
        for (size_t i = 0; i < k; i++) {
            mres *r = &res[i];
            memset(&es[i], 0, sizeof es[i]);
            es[i].term = r->term;
            es[i].key_t = r->src->key_t;
            es[i].key = r->src->key;
            es[i].frag = r->src->frag;
            es[i].hash = r->hash;
        }
        return build(ms, d, es, k, out);
    }
    if (b.kind == N_LEAF) {
        plexus_arena_mark m = plexus_arena_mark_get(&ms->ar);
        rc = merge_with_leaf(ms, e, n, c1, &b, c2, d, 2, &b, out);
        plexus_arena_release(&ms->ar, m);
        return rc;
    }
    return merge_split(ms, e, n, &b, d, c1, c2, out);
}

/* merge_split(Entries, ChB, D, CA, CB): leaf entries e (side 1) against branch br. */
static int merge_split(mstate *ms, ment *e, size_t n, const pnode *br, unsigned d,
                       const plexus_dotctx *c1, const plexus_dotctx *c2, mnode *out)
{
    int rc;
    if (d < 2) return M_FALLBACK;
    if ((rc = charge(ms, BRANCH_UNITS))) return rc;
    warm_unequal(ms, e, n, NULL, 0);
    ment *sorted = plexus_arena_alloc(&ms->ar, (n ? n : 1) * sizeof *sorted);
    unsigned *nib = plexus_arena_alloc(&ms->ar, (n ? n : 1) * sizeof *nib);
    if (!sorted || !nib) return M_NOMEM;
    size_t counts[16] = {0}, start[16], pos[16];
    for (size_t i = 0; i < n; i++) {
        bent b;
        if ((rc = ment_key(ms, &e[i]))) return rc;
        memset(&b, 0, sizeof b);
        b.key_t = e[i].key_t;
        b.frag = e[i].frag;
        if ((rc = nibble_of(&b, d, &nib[i]))) return rc;
        counts[nib[i]]++;
    }
    size_t acc = 0;
    for (int k = 0; k < 16; k++) {
        start[k] = acc;
        acc += counts[k];
    }
    memcpy(pos, start, sizeof pos);
    for (size_t i = 0; i < n; i++)
        sorted[pos[nib[i]]++] = e[i];
    mnode kids[16];
    for (int k = 0; k < 16; k++)
        if ((rc =
                 merge_bucket(ms, sorted + start[k], counts[k], br->t[k], d + 1, c1, c2, &kids[k])))
            return rc;
    return branch_of(ms, d, kids, out);
}

static int filter(mstate *ms, const pnode *p, unsigned d, const plexus_dotctx *other, mnode *out)
{
    int rc;
    if (p->kind == N_NIL) {
        *out = as_mnode(p);
        return M_OK;
    }
    if (p->kind == N_LEAF) {
        plexus_arena_mark m = plexus_arena_mark_get(&ms->ar);
        size_t n1 = p->nent, n;
        ment *e = NULL;
        mres *res = NULL;
        if ((rc = leaf_entries(ms, p, &e))) {
            /* rc set */
        } else if (!(res = plexus_arena_alloc(&ms->ar, n1 * sizeof *res))) {
            rc = M_NOMEM;
        } else if (warm_unequal(ms, e, n1, NULL, 0),
                   !(rc = merge_lists(ms, e, n1, NULL, NULL, 0, other, res, &n))) {
            if (res_is_side(res, n, n1, 1))
                *out = as_mnode(p);
            else
                rc = leaf_at(ms, d, p, e, 1, res, n, out);
        }
        plexus_arena_release(&ms->ar, m);
        return rc;
    }
    mnode kids[16];
    int same = 1;
    if ((rc = charge(ms, BRANCH_UNITS))) return rc;
    for (int k = 0; k < 16; k++) {
        pnode c;
        if ((rc = parse_node(ms, p->t[k], d + 1, &c))) return rc;
        if ((rc = filter(ms, &c, d + 1, other, &kids[k]))) return rc;
        if (kids[k].term != p->t[k]) same = 0;
    }
    if (same) {
        *out = as_mnode(p);
        return M_OK;
    }
    return branch_of(ms, d, kids, out);
}

static int merge_node(mstate *ms, ERL_NIF_TERM at, ERL_NIF_TERM bt, unsigned d,
                      const plexus_dotctx *ca, const plexus_dotctx *cb, mnode *out)
{
    pnode a, b;
    int rc;
    if ((rc = parse_head(ms, at, &a)) || (rc = parse_head(ms, bt, &b))) return rc;
    if (a.kind == N_NIL && b.kind == N_NIL) {
        *out = as_mnode(&a);
        return M_OK;
    }
    if (a.kind != N_NIL && b.kind != N_NIL && a.h == b.h && a.c == b.c) {
        *out = as_mnode(&a);
        return M_OK;
    }
    prefetch_body(&a);
    prefetch_body(&b);
    if ((rc = parse_body(ms, &a, d)) || (rc = parse_body(ms, &b, d))) return rc;
    if (a.kind == N_NIL) return filter(ms, &b, d, ca, out);
    if (b.kind == N_NIL) return filter(ms, &a, d, cb, out);
    if ((rc = charge(ms, 1))) return rc;
    if (a.kind == N_LEAF && b.kind == N_LEAF) {
        plexus_arena_mark m = plexus_arena_mark_get(&ms->ar);
        ment *e1;
        rc = leaf_entries(ms, &a, &e1);
        if (!rc) rc = merge_with_leaf(ms, e1, a.nent, ca, &b, cb, d, 1, &a, out);
        plexus_arena_release(&ms->ar, m);
        return rc;
    }
    if (a.kind == N_LEAF || b.kind == N_LEAF) {
        /* the leaf's side goes first, with its context */
        const pnode *lf = a.kind == N_LEAF ? &a : &b, *br = a.kind == N_LEAF ? &b : &a;
        plexus_arena_mark m = plexus_arena_mark_get(&ms->ar);
        ment *e;
        rc = leaf_entries(ms, lf, &e);
        if (!rc)
            rc = merge_split(ms, e, lf->nent, br, d, lf == &a ? ca : cb, lf == &a ? cb : ca, out);
        plexus_arena_release(&ms->ar, m);
        return rc;
    }
    mnode kids[16];
    if ((rc = charge(ms, BRANCH_UNITS))) return rc;
    for (int k = 0; k < 16; k++) {
        prefetch_term(a.t[k]);
        prefetch_term(b.t[k]);
    }
    for (int k = 0; k < 16; k++)
        if ((rc = merge_node(ms, a.t[k], b.t[k], d + 1, ca, cb, &kids[k]))) return rc;
    return branch_of(ms, d, kids, out);
}

/* ------------------------------------------------------------------ contexts */

/* {VV, Cloud}: #{ActorBin => Ctr} and #{{ActorBin, Ctr} => true}. */
static int get_ctx(ErlNifEnv *env, ERL_NIF_TERM t, plexus_dotctx *c)
{
    int arity;
    const ERL_NIF_TERM *el;
    ErlNifMapIterator it;
    ERL_NIF_TERM k, v;
    int rc = M_OK;
    if (!enif_get_tuple(env, t, &arity, &el) || arity != 2 || !enif_is_map(env, el[0]) ||
        !enif_is_map(env, el[1]))
        return M_BAD;
    if (!enif_map_iterator_create(env, el[0], &it, ERL_NIF_MAP_ITERATOR_FIRST)) return M_BAD;
    while (rc == M_OK && enif_map_iterator_get_pair(env, &it, &k, &v)) {
        ErlNifBinary b;
        ErlNifUInt64 ctr;
        if (!enif_inspect_binary(env, k, &b) || !enif_get_uint64(env, v, &ctr))
            rc = M_BAD;
        else if (plexus_dotctx_add_vv(c, (plexus_bytes){b.data, b.size}, (uint64_t)ctr))
            rc = M_NOMEM;
        enif_map_iterator_next(env, &it);
    }
    enif_map_iterator_destroy(env, &it);
    if (rc) return rc;
    if (!enif_map_iterator_create(env, el[1], &it, ERL_NIF_MAP_ITERATOR_FIRST)) return M_BAD;
    while (rc == M_OK && enif_map_iterator_get_pair(env, &it, &k, &v)) {
        const ERL_NIF_TERM *d;
        ErlNifBinary b;
        ErlNifUInt64 ctr;
        if (!enif_get_tuple(env, k, &arity, &d) || arity != 2 ||
            !enif_inspect_binary(env, d[0], &b) || !enif_get_uint64(env, d[1], &ctr))
            rc = M_BAD;
        else if (plexus_dotctx_add_cloud(c, (plexus_bytes){b.data, b.size}, (uint64_t)ctr))
            rc = M_NOMEM;
        enif_map_iterator_next(env, &it);
    }
    enif_map_iterator_destroy(env, &it);
    if (rc) return rc;
    return plexus_dotctx_seal(c) ? M_BAD : M_OK;
}

static ERL_NIF_TERM trie_merge(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[], int write_arity,
                               const char *name, nif_fun self)
{
    mstate ms;
    plexus_dotctx ca, cb;
    mnode out;
    ERL_NIF_TERM result;
    int rc;

    unsigned depth;
    if (argc != 5 || !enif_get_uint(env, argv[4], &depth) || depth > MAX_DEPTH)
        return enif_make_badarg(env);
    memset(&ms, 0, sizeof ms);
    ms.env = env;
    ms.priv = nif_priv_get(env);
    ms.may_go_dirty = enif_thread_type() == ERL_NIF_THR_NORMAL_SCHEDULER;
    ms.next_check = WORK_CHECK;
    ms.write_arity = write_arity;
    plexus_arena_init(&ms.ar, &nif_alloc);
    plexus_dotctx_init(&ca, &nif_alloc);
    plexus_dotctx_init(&cb, &nif_alloc);
    /* A threshold of 0 (or 1) sends every call to a dirty scheduler, as for the
     * other NIFs, even one too small to reach a weight check. */
    /* Both contexts are read (and sorted) before the walk: weighed first, so that two
     * contexts of 60,000 actors each (70 ms) are read on a dirty scheduler. */
    ms.work = (nif_trie_ctx_entries(env, argv[2]) + nif_trie_ctx_entries(env, argv[3])) * CTX_UNITS;
    if (ms.may_go_dirty && nif_should_go_dirty(env, 1 + ms.work * WORK_WEIGHT)) {
        rc = M_DIRTY;
        goto err;
    }
    if ((rc = get_ctx(env, argv[2], &ca)) || (rc = get_ctx(env, argv[3], &cb))) goto err;
    rc = merge_node(&ms, argv[0], argv[1], depth, &ca, &cb, &out);
    if (rc) goto err;
    if (ms.may_go_dirty) nif_charge(env, ms.work * WORK_WEIGHT);
    result = out.term;
    goto done;

err:
    switch (rc) {
    case M_DIRTY:
        result = nif_go_dirty(env, name, self, argc, argv);
        break;
    case M_FALLBACK:
        result = ms.priv->atom_fallback;
        break;
    case M_NOMEM:
        result = nif_error(env, PLEXUS_ENOMEM);
        break;
    default:
        result = nif_error_atom(env, ms.priv->atom_bad_state);
        break;
    }
done:
    plexus_arena_free(&ms.ar);
    plexus_dotctx_free(&ca);
    plexus_dotctx_free(&cb);
    return result;
}

ERL_NIF_TERM nif_trie_orset_merge(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    return trie_merge(env, argc, argv, 2, "trie_orset_merge", nif_trie_orset_merge);
}

ERL_NIF_TERM nif_trie_lwwmap_merge(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    return trie_merge(env, argc, argv, 4, "trie_lwwmap_merge", nif_trie_lwwmap_merge);
}

/* ------------------------------------------------------------------ build */

/* The weight of an entry for the dirty decision, in the bytes of nif_util.h's scale
 * (~7 ns each): measured 300-600 ns of CPU per entry (5k entries). */
#define BUILD_WEIGHT 96

/* trie_build(Depth, [{KeyHash, Entry, EntryHash}]) -> Node | {error, bad_state}. */
ERL_NIF_TERM nif_trie_build(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    unsigned depth, n;
    if (argc != 2 || !enif_get_uint(env, argv[0], &depth) || depth > MAX_DEPTH ||
        !enif_get_list_length(env, argv[1], &n))
        return enif_make_badarg(env);
    if (nif_should_go_dirty(env, (uint64_t)n * BUILD_WEIGHT))
        return nif_go_dirty(env, "trie_build", nif_trie_build, argc, argv);
    nif_charge(env, (uint64_t)n * BUILD_WEIGHT);
    mstate ms;
    memset(&ms, 0, sizeof ms);
    ms.env = env;
    ms.priv = nif_priv_get(env);
    plexus_arena_init(&ms.ar, &nif_alloc);
    int rc = M_OK;
    bent *e = plexus_arena_alloc(&ms.ar, (n ? n : 1) * sizeof *e);
    if (!e) rc = M_NOMEM;
    ERL_NIF_TERM list = argv[1], head;
    for (size_t i = 0; !rc && enif_get_list_cell(env, list, &head, &list); i++) {
        const ERL_NIF_TERM *t, *en;
        int ar, ear;
        ErlNifUInt64 kh, eh;
        ErlNifBinary k;
        if (!enif_get_tuple(env, head, &ar, &t) || ar != 3 || !enif_get_uint64(env, t[0], &kh) ||
            kh > UINT32_MAX || !enif_get_uint64(env, t[2], &eh) || eh > MASK56 ||
            !enif_get_tuple(env, t[1], &ear, &en) || ear != 2 ||
            !enif_inspect_binary(env, en[0], &k)) {
            rc = M_BAD;
            break;
        }
        memset(&e[i], 0, sizeof e[i]);
        e[i].term = t[1];
        e[i].key_t = en[0];
        e[i].key = (plexus_bytes){k.data, k.size};
        e[i].frag = (uint16_t)(kh & 0xffffu);
        e[i].hash = eh;
        e[i].kh = (uint32_t)kh;
        e[i].kh_ok = 2;
    }
    mnode out;
    if (!rc) rc = build(&ms, depth, e, n, &out);
    ERL_NIF_TERM result;
    if (!rc)
        result = out.term;
    else if (rc == M_NOMEM)
        result = nif_error(env, PLEXUS_ENOMEM);
    else
        result = nif_error_atom(env, ms.priv->atom_bad_state);
    plexus_arena_free(&ms.ar);
    return result;
}
