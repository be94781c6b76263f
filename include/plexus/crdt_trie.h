/*
 * plexus CRDT v2 trie helpers: the entry hash every trie node sums, and the dot
 * arithmetic of an ORSWOT merge (a causal context and the merge of two dot lists),
 * for the NIF that merges two v2 tries (c_src/nif/nif_trie.c) without going back to
 * Erlang per entry.
 *
 * The entry hash is ours (no external algorithm): a 64-bit multiply / xor-shift mix
 * over a tagged stream of the entry's fields, cut to 56 bits so that node hashes
 * (sums mod 2^56) stay small integers on the Erlang side. It is defined on the
 * canonical content of an entry (binaries by their bytes, integers by value, tuples
 * and lists by their shape), reads bytes little-endian, and so is the same on every
 * machine. Like the phash2 sums it replaces it tells honest differences apart; it is
 * not collision resistant against crafted entries (crdt_format.md).
 *
 * Dots are (actor bytes, counter) pairs ordered as Erlang orders {ActorBin, Ctr}
 * tuples: actors bytewise (plexus_bytes_cmp), then counters. Actor bytes are views
 * into memory the caller keeps alive for as long as the context or dots are used.
 */
#ifndef PLEXUS_CRDT_TRIE_H
#define PLEXUS_CRDT_TRIE_H

#include <stdbool.h>

#include "plexus/common.h"

/* ------------------------------------------------------------------ entry hash */

/* Tags of the hashed stream: each term contributes its tag (with its length or
 * arity) before its contents, so different shapes never feed the same words. */
enum plexus_thash_tag {
    PLEXUS_THASH_BIN = 1,
    PLEXUS_THASH_INT = 2,
    PLEXUS_THASH_TUPLE = 3,
    PLEXUS_THASH_CONS = 4,
    PLEXUS_THASH_NIL = 5
};

typedef struct plexus_thash {
    uint64_t h;
} plexus_thash;

PLEXUS_API void plexus_thash_init(plexus_thash *s);
/* A tag with its count (arity of a tuple, 0 for a cons cell or nil). */
PLEXUS_API void plexus_thash_tag(plexus_thash *s, enum plexus_thash_tag tag, uint64_t n);
/* A non-negative integer term. */
PLEXUS_API void plexus_thash_int(plexus_thash *s, uint64_t v);
/* A binary term: its tag and length, then its bytes in little-endian 64-bit words. */
PLEXUS_API void plexus_thash_bin(plexus_thash *s, const uint8_t *p, size_t n);
/* The 56-bit entry hash of everything fed so far. */
PLEXUS_API uint64_t plexus_thash_final(const plexus_thash *s);

#define PLEXUS_THASH_MASK ((UINT64_C(1) << 56) - 1)

/* ------------------------------------------------------------------ dots */

typedef struct plexus_dot {
    plexus_bytes actor;
    uint64_t ctr;
} plexus_dot;

/* The entry hash (plexus_crdt_trie:ehash/1) of an OR-Set entry {Key, [{Actor, Ctr}...]}
 * from its decoded parts: the same stream plexus_thash_* takes from the term. */
PLEXUS_API uint64_t plexus_thash_orset_entry(plexus_bytes key, const plexus_dot *d, size_t n);

/* Erlang term order of {ActorBin, Ctr}: <0, 0, >0. */
PLEXUS_API int plexus_dot_cmp(const plexus_dot *a, const plexus_dot *b);

/*
 * A causal context: version vector (actor -> counter, every dot up to it seen) and a
 * dot cloud (dots seen beyond the vector). Filled with add_vv / add_cloud in any
 * order, then sealed (sorted) once; covers() is then a binary search in each.
 * Memory comes from `a` and is released by plexus_dotctx_free (also after an error).
 */
typedef struct plexus_dotctx {
    const plexus_alloc *a;
    plexus_dot *vv;
    size_t nvv, cap_vv;
    plexus_dot *cloud;
    size_t ncloud, cap_cloud;
} plexus_dotctx;

PLEXUS_API void plexus_dotctx_init(plexus_dotctx *c, const plexus_alloc *a);
PLEXUS_API PLEXUS_MUST_CHECK int plexus_dotctx_add_vv(plexus_dotctx *c, plexus_bytes actor,
                                                      uint64_t ctr);
PLEXUS_API PLEXUS_MUST_CHECK int plexus_dotctx_add_cloud(plexus_dotctx *c, plexus_bytes actor,
                                                         uint64_t ctr);
/* Sorts both parts; PLEXUS_EORDER when an actor appears twice in the vector. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_dotctx_seal(plexus_dotctx *c);
/* Whether the (sealed) context has seen dot d. */
PLEXUS_API bool plexus_dotctx_covers(const plexus_dotctx *c, const plexus_dot *d);
PLEXUS_API void plexus_dotctx_free(plexus_dotctx *c);

/*
 * The ORSWOT merge of one element's dots: dots both lists hold stay; a dot only one
 * list holds stays unless the other side's context has seen it. a and b are sorted
 * (plexus_dot_cmp); ca is a's side's context, cb b's. The kept dots are written to
 * out (room for na + nb) in order, each as its index into a (>= 0) or as
 * -(1 + its index into b); returns how many. A dot both lists hold is given from a.
 * ca may be NULL when nb is 0 and cb when na is 0 (one side only: keep_unseen).
 */
PLEXUS_API size_t plexus_dots_merge(const plexus_dot *a, size_t na, const plexus_dot *b, size_t nb,
                                    const plexus_dotctx *ca, const plexus_dotctx *cb, long *out);

#endif
