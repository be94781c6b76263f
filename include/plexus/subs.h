/*
 * plexus core: a bounded, indexed set of event subscribers (processes on other nodes),
 * for a host that fans events out to them: the C node's `plexus_cnode` process.
 *
 * A subscriber is the name of its node (bytes, 1..255) and a fixed-size local id (the
 * host packs the rest of the process identifier into PLEXUS_SUBS_ID_BYTES), with 32
 * bits of flags the table stores for the host. Entries live in one dense array (so
 * iteration costs what the table holds, and memory shrinks back after churn) indexed
 * by an open-addressing hash table keyed with SipHash-2-4 (crypto_shorthash) under a
 * key the host injects, so chosen identifiers cannot degrade lookups. Nodes are kept
 * once each with their subscriber count, so dropping every subscriber of a node that
 * went away is one call, and free when that node has none.
 *
 * Bounds: at most `max` subscribers (PLEXUS_EFULL past that). Removing an entry moves
 * the last one into its place: an index i is stable only until the next removal.
 *
 * Pure core: the allocator and the hash key are injected; no I/O, no clock. Not
 * thread-safe: the host serialises calls.
 */
#ifndef PLEXUS_SUBS_H
#define PLEXUS_SUBS_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/common.h"

#define PLEXUS_SUBS_ID_BYTES 12
#define PLEXUS_SUBS_NODE_MAX 255
#define PLEXUS_SUBS_KEY_BYTES 16

typedef struct plexus_subs plexus_subs;

/* One subscriber as the table hands it out; `node` borrows the table's copy (valid
 * until that node's last subscriber is removed). */
typedef struct plexus_sub {
    const uint8_t *node;
    size_t node_len;
    uint32_t node_ix; /* the node's slot: stable while the node has subscribers */
    uint8_t id[PLEXUS_SUBS_ID_BYTES];
    uint32_t flags;
} plexus_sub;

/* max >= 1 subscribers; key: PLEXUS_SUBS_KEY_BYTES random bytes. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_subs_new(const plexus_alloc *a, size_t max,
                                                 const uint8_t *key, plexus_subs **out);
PLEXUS_API void plexus_subs_free(plexus_subs *t);

/*
 * Adds a subscriber, or updates the flags of one already there (*added tells which).
 * PLEXUS_EINVAL for an empty or over-long node name, PLEXUS_EFULL when adding would
 * pass max, PLEXUS_ENOMEM; the table is unchanged on error.
 */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_subs_put(plexus_subs *t, const uint8_t *node,
                                                 size_t node_len, const uint8_t *id, uint32_t flags,
                                                 int *added);
/* PLEXUS_OK, or PLEXUS_ENOTFOUND. */
PLEXUS_API int plexus_subs_remove(plexus_subs *t, const uint8_t *node, size_t node_len,
                                  const uint8_t *id);
/* Removes every subscriber of node; returns how many. */
PLEXUS_API size_t plexus_subs_remove_node(plexus_subs *t, const uint8_t *node, size_t node_len);

PLEXUS_API size_t plexus_subs_count(const plexus_subs *t);
PLEXUS_API size_t plexus_subs_max(const plexus_subs *t);
/* Distinct nodes with at least one subscriber. */
PLEXUS_API size_t plexus_subs_nodes(const plexus_subs *t);
/* Subscribers of node (0 when it has none). */
PLEXUS_API size_t plexus_subs_node_count(const plexus_subs *t, const uint8_t *node,
                                         size_t node_len);
/* Entry i (0 <= i < count) into *out; PLEXUS_ENOTFOUND past the end. */
PLEXUS_API int plexus_subs_get(const plexus_subs *t, size_t i, plexus_sub *out);
/* Bytes the table holds (arrays and node names), for the host's stats. */
PLEXUS_API size_t plexus_subs_bytes(const plexus_subs *t);

#endif
