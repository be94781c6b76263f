/*
 * plexus CRDT core: LWW register on a hybrid logical clock and an add-wins OR-Set
 * (ORSWOT: version vector + dots per element, no tombstones), with delta mutators,
 * n-way merge, digests and a canonical, versioned binary encoding.
 *
 * Anchors: riak_dt_orswot / riak_dt_lwwreg (operation set and behaviour), Almeida,
 * Shoker, Baquero, "Delta State Replicated Data Types" (2018), §5 "Add-wins OR-Set"
 * with causal contexts = version vector + dot cloud, and Kulkarni et al., "Logical
 * Physical Clocks" (2014) for the HLC.
 *
 * States are byte strings in the format of include/plexus/crdt_format.md. Every
 * function that reads a state validates all of it first (strict decoder: every count
 * bounded by the bytes left, canonical order, minimal varints, no trailing bytes) and
 * returns an error code instead of reading anything it has not checked. Elements,
 * actors and register values are opaque non-empty byte strings compared bytewise
 * (plexus_bytes_cmp); the Erlang side uses term_to_binary(T, [deterministic]) without
 * its leading 131 byte, so equal terms are equal elements on every node.
 *
 * Output goes to a caller-owned plexus_buf; nothing else is allocated beyond scratch
 * space (from the `a` argument: validation needs the actor vector and the dot cloud
 * as arrays) that is released before return, on every path.
 */
#ifndef PLEXUS_CRDT_H
#define PLEXUS_CRDT_H

#include "plexus/common.h"

#define PLEXUS_CRDT_VERSION 1
#define PLEXUS_TYPE_ORSET 'S'
#define PLEXUS_TYPE_LWW 'L'
#define PLEXUS_CRDT_VERSION_2 2
#define PLEXUS_TYPE_LWWMAP 'M'

/* Bounds that keep every count and index sane (documented in crdt_format.md). */
#define PLEXUS_MAX_ACTORS 65536u
#define PLEXUS_MAX_BYTES_LEN (64u << 20) /* one element, actor or value */

/* ------------------------------------------------------------------ HLC */

/*
 * Hybrid logical clock timestamps are uint64: wall-clock milliseconds in the high
 * 48 bits, a logical counter in the low 16. Ordering them as integers is HLC order.
 * next = max(last + 1, wall_ms << 16): strictly after everything this node has issued
 * or observed, and equal to wall time when the clock is ahead of all of that.
 */
PLEXUS_API uint64_t plexus_hlc_next(uint64_t last, uint64_t wall_ms);
PLEXUS_API uint64_t plexus_hlc_from_ms(uint64_t wall_ms);
PLEXUS_API uint64_t plexus_hlc_ms(uint64_t ts);

/* ------------------------------------------------------------------ LWW register */

typedef struct plexus_lww_view {
    uint64_t ts;
    plexus_bytes actor; /* points into the state bytes */
    plexus_bytes value; /* points into the state bytes */
} plexus_lww_view;

/* Encodes a register. actor and value must be non-empty. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_lww_encode(uint64_t ts, plexus_bytes actor,
                                                   plexus_bytes value, plexus_buf *out);
/* Validates and decodes; the view points into s. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_lww_decode(const uint8_t *s, size_t n, plexus_lww_view *v);
/* Total order used by merge: (ts, actor bytes, value bytes). Returns -1, 0 or 1. */
PLEXUS_API int plexus_lww_compare(const plexus_lww_view *a, const plexus_lww_view *b);
/*
 * Merge of k >= 1 registers: validates all, sets *winner to the index of the greatest
 * (the first of equals). The caller returns that input as the result, no copy needed.
 */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_lww_merge(const plexus_bytes *states, size_t k,
                                                  size_t *winner);

/* ------------------------------------------------------------------ OR-Set */

typedef struct plexus_orset_info {
    size_t n_actors;
    size_t n_cloud;
    size_t n_elems;
    size_t n_dots;
} plexus_orset_info;

/* Validates s completely; fills info when not NULL. */
PLEXUS_API PLEXUS_MUST_CHECK int
plexus_orset_validate(const uint8_t *s, size_t n, const plexus_alloc *a, plexus_orset_info *info);

/*
 * Validates an LWW map's canonical bytes (0x02 'M', crdt_format.md "LWW map")
 * completely: PLEXUS_OK exactly for the bytes plexus_lwwmap:to_binary/1 can write,
 * up to PLEXUS_MAX_ACTORS actors. Allocates the context's tables only.
 */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_lwwmap_validate(const uint8_t *s, size_t n,
                                                        const plexus_alloc *a);

/* Appends the empty set to out. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_orset_new(plexus_buf *out);

/* Merge of k >= 1 states (k == 1 validates and copies). Result appended to out. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_orset_merge(const plexus_bytes *states, size_t k,
                                                    const plexus_alloc *a, plexus_buf *out);

enum plexus_orset_op_kind { PLEXUS_OP_ADD = 1, PLEXUS_OP_REMOVE = 2 };

typedef struct plexus_orset_op {
    int kind; /* PLEXUS_OP_ADD or PLEXUS_OP_REMOVE */
    plexus_bytes elem;
} plexus_orset_op;

/* Flags for plexus_orset_apply. */
#define PLEXUS_APPLY_STRICT 1u /* removing an absent element is PLEXUS_ENOTPRESENT */

/*
 * Applies ops in list order, as one batch, by `actor`: the sequential meaning is that
 * of applying them one by one (a later op on the same element overrides an earlier
 * one), but the state is walked once. Each element that ends up added gets one fresh
 * dot (actor, ++vv[actor]). With PLEXUS_APPLY_STRICT a remove of an element that is
 * absent at that point of the sequence fails with PLEXUS_ENOTPRESENT and sets
 * *bad_op to that op's index.
 *
 * out receives the new state. If delta is not NULL it receives the delta state: the
 * added elements with their new dots, and a causal context holding the new dots plus
 * every dot the batch removed or superseded; merging the delta into any replica that
 * had seen s has the same effect as the batch. Both are canonical states.
 */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_orset_apply(const uint8_t *s, size_t n,
                                                    const plexus_orset_op *ops, size_t n_ops,
                                                    plexus_bytes actor, unsigned flags,
                                                    const plexus_alloc *a, plexus_buf *out,
                                                    plexus_buf *delta, size_t *bad_op);

/* Sets *found to 1 if elem is in s. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_orset_member(const uint8_t *s, size_t n, plexus_bytes elem,
                                                     const plexus_alloc *a, int *found);

/*
 * Element iteration in canonical (bytewise) order. plexus_orset_iter_init validates
 * the whole state first; iter_next then cannot fail.
 */
typedef struct plexus_orset_iter {
    const uint8_t *pos, *end;
    size_t left;
} plexus_orset_iter;

PLEXUS_API PLEXUS_MUST_CHECK int plexus_orset_iter_init(plexus_orset_iter *it, const uint8_t *s,
                                                        size_t n, const plexus_alloc *a);
/* Returns 1 and sets *elem while elements remain, then 0. */
PLEXUS_API int plexus_orset_iter_next(plexus_orset_iter *it, plexus_bytes *elem);

/* ------------------------------------------------------------------ any state */

#define PLEXUS_DIGEST_BYTES 32
/* BLAKE2b-256 (libsodium crypto_generichash) of a validated state of either type. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_crdt_digest(const uint8_t *s, size_t n,
                                                    const plexus_alloc *a,
                                                    uint8_t out[PLEXUS_DIGEST_BYTES]);
/* Type byte of a state after checking the header, or a negative error. */
PLEXUS_API int plexus_crdt_type(const uint8_t *s, size_t n);

#endif
