/*
 * OR-Set codec internals shared by validate, merge and apply (not a public header).
 *
 * A state is read in two steps: orset_parse_header() validates and decodes the causal
 * context (actors, version vector, dot cloud) into arrays, because every element's
 * dots are checked against it; then orset_read_entry() validates and returns one
 * element at a time, so merge and apply check their inputs in the same single pass
 * that produces their output.
 */
#ifndef PLEXUS_CRDT_ORSET_CODEC_H
#define PLEXUS_CRDT_ORSET_CODEC_H

#include "plexus/crdt.h"

#define ORSET_NO_ACTOR UINT32_MAX

/*
 * Bytewise order (plexus_bytes_cmp) inlined for the hot loops: elements are mostly a
 * few bytes (a small integer term is 2 to 5), where a libc memcmp call costs more
 * than the comparison.
 */
static inline int orset_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    if (n > 16) return plexus_bytes_cmp(a, an, b, bn);
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return an < bn ? -1 : (an > bn ? 1 : 0);
}

/*
 * plexus_varint_read with the one- to three-byte cases inlined: indices and counts
 * are one byte, counters of up to 2^21 three. Same checks (minimal form).
 */
static inline int orset_varint(const uint8_t **pos, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pos;
    if (end - p >= 3) {
        uint64_t b0 = p[0], b1 = p[1], b2 = p[2];
        if (b0 < 0x80) {
            *v = b0;
            *pos = p + 1;
            return PLEXUS_OK;
        }
        if (b1 < 0x80) {
            if (!b1) return PLEXUS_EVARINT;
            *v = (b0 & 0x7f) | b1 << 7;
            *pos = p + 2;
            return PLEXUS_OK;
        }
        if (b2 < 0x80) {
            if (!b2) return PLEXUS_EVARINT;
            *v = (b0 & 0x7f) | (b1 & 0x7f) << 7 | b2 << 14;
            *pos = p + 3;
            return PLEXUS_OK;
        }
    }
    return plexus_varint_read(pos, end, v);
}

/* Equality of two short byte runs (a few dots) without a libc call. */
static inline int orset_same_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

typedef struct orset_dot {
    uint32_t actor; /* index into the actor table of the state it belongs to */
    uint64_t ctr;
} orset_dot;

typedef struct orset_ctx {
    size_t n_actors;
    plexus_bytes *actors; /* points into the state bytes */
    uint64_t *vv;
    size_t n_cloud;
    orset_dot *cloud; /* ascending by (actor, ctr) */
    size_t n_elems;
    const uint8_t *elems; /* first byte of the first element entry */
    const uint8_t *end;
    const plexus_alloc *a;
} orset_ctx;

typedef struct orset_entry {
    const uint8_t *raw; /* first byte of the entry (its length varint) */
    const uint8_t *elem;
    size_t elen;
    size_t ndots;
    const uint8_t *dots;     /* ndots validated (actor, ctr) varint pairs */
    const uint8_t *dots_end; /* also the end of the whole entry */
} orset_entry;

/* Validates the header and context of s; on success c owns arrays (orset_ctx_free). */
int orset_parse_header(const uint8_t *s, size_t n, const plexus_alloc *a, orset_ctx *c);

/*
 * The causal context alone, from pos to end: what orset_parse_header() reads after the
 * two header bytes, up to and including the entry count, which is bounded by the bytes
 * left over min_entry (the smallest encoding of one entry). The LWW map body starts
 * with the same context (crdt_lwwmap_codec.c).
 */
int orset_parse_context(const uint8_t *pos, const uint8_t *end, size_t min_entry,
                        const plexus_alloc *a, orset_ctx *c);

/* A varint count no larger than the bytes left could hold at min_entry bytes each. */
int orset_read_count(const uint8_t **pos, const uint8_t *end, size_t min_entry, size_t *count);

/* A dot: an actor index below n_actors and a counter of at least 1. */
int orset_read_dot(const uint8_t **pos, const uint8_t *end, size_t n_actors, orset_dot *d);

static inline int orset_dot_cmp(const orset_dot *x, const orset_dot *y)
{
    if (x->actor != y->actor) return x->actor < y->actor ? -1 : 1;
    if (x->ctr != y->ctr) return x->ctr < y->ctr ? -1 : 1;
    return 0;
}
void orset_ctx_free(orset_ctx *c);

/*
 * The i-th dot of an entry (an OR-Set element's, an LWW map write's): an actor index in
 * range, strictly after *last when i > 0, covered by c's context. Advances *pos and
 * sets *last to it.
 */
int orset_read_entry_dot(const orset_ctx *c, const uint8_t **pos, size_t i, orset_dot *last);

/*
 * Reads and validates the entry at *pos: element order against prev (NULL for the
 * first), dot order, actor range and coverage by c's context. Advances *pos.
 */
int orset_read_entry(const orset_ctx *c, const uint8_t **pos, const orset_entry *prev,
                     orset_entry *e);

/* Reads one dot of an entry that orset_read_entry already validated. */
static inline void orset_next_dot(const uint8_t **pos, orset_dot *d)
{
    d->actor = (uint32_t)plexus_varint_trusted(pos);
    d->ctr = plexus_varint_trusted(pos);
}

/* True if the dot cloud of c holds (actor, ctr). */
int orset_cloud_has(const orset_ctx *c, uint32_t actor, uint64_t ctr);

/* True if the context of c has seen dot (actor, ctr); actor is an index of c. */
static inline int orset_covers(const orset_ctx *c, uint32_t actor, uint64_t ctr)
{
    return ctr <= c->vv[actor] || (c->n_cloud && orset_cloud_has(c, actor, ctr));
}

/*
 * A validating cursor over the element section: orset_cursor_next reads the next
 * entry (checked against the previous one) into `cur` and sets `has`, or clears `has`
 * at the end, where it also checks that no bytes trail.
 */
typedef struct orset_cursor {
    const orset_ctx *c;
    const uint8_t *pos;
    size_t left;
    orset_entry cur;
    int has;
} orset_cursor;

int orset_cursor_start(orset_cursor *k, const orset_ctx *c);
int orset_cursor_next(orset_cursor *k);

/* Validates the whole element section after orset_parse_header. */
int orset_check_elems(const orset_ctx *c);

/* ---- writers (append to a plexus_buf that has room reserved by the caller) */

static inline void put_varint(plexus_buf *b, uint64_t v)
{
    b->len += plexus_varint_write(b->p + b->len, v);
}

static inline void put_bytes(plexus_buf *b, const uint8_t *p, size_t n)
{
    put_varint(b, n);
    if (n) __builtin_memcpy(b->p + b->len, p, n);
    b->len += n;
}

/*
 * Writes the state header and context: actors with vv, then the cloud. Entries of
 * `cloud` must be canonical (ascending, each beyond vv + 1).
 */
int orset_write_context(plexus_buf *out, size_t n_actors, const plexus_bytes *actors,
                        const uint64_t *vv, size_t n_cloud, const orset_dot *cloud);

/*
 * Element counts precede the elements but are known only after writing them:
 * orset_begin_elems leaves room for the varint of `max_count`, orset_end_elems writes
 * the count there and closes the gap (no move when the count needs as many bytes).
 */
int orset_begin_elems(plexus_buf *out, size_t max_count, size_t *mark);
void orset_end_elems(plexus_buf *out, size_t mark, size_t max_count, size_t count);

/*
 * Canonicalises a context: sorts and de-duplicates cloud dots, drops those the
 * vector covers and folds runs that continue the vector into it. Returns the new
 * cloud length; vv is updated in place.
 */
size_t orset_fold_cloud(uint64_t *vv, orset_dot *cloud, size_t n_cloud);

#endif
