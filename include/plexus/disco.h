/*
 * plexus core: pieces shared by the discovery wire formats (sealed gossip beacons,
 * beacon.h, and TTL registry messages, registry.h): the bounds, node-name and
 * metadata validation, and the metadata codec.
 *
 * Node names are byte strings "name@host" (what atom_to_binary(node()) gives). Nothing
 * here makes them atoms; the Erlang side does that only after a beacon authenticates
 * or when it must connect.
 *
 * Metadata is a small map of byte strings: at most PLEXUS_DISCO_META_MAX pairs, keys of
 * 1..PLEXUS_DISCO_KEY_MAX printable ASCII bytes, values of 0..PLEXUS_DISCO_VAL_MAX bytes
 * of anything. On the wire it is canonical: varint count, then per pair varint key
 * length, key, varint value length, value, with keys strictly ascending (bytewise), so
 * one map has one encoding and a decoder refuses duplicates.
 */
#ifndef PLEXUS_DISCO_H
#define PLEXUS_DISCO_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/common.h"

#define PLEXUS_DISCO_NAME_MAX 255 /* bytes of a node name / peer id */
#define PLEXUS_DISCO_META_MAX 16  /* metadata pairs */
#define PLEXUS_DISCO_KEY_MAX 64   /* bytes of a metadata key */
#define PLEXUS_DISCO_VAL_MAX 255  /* bytes of a metadata value */

typedef struct plexus_disco_kv {
    plexus_bytes key;
    plexus_bytes val;
} plexus_disco_kv;

/* A metadata map as read from the wire or given by the caller. Pointers borrow. */
typedef struct plexus_disco_meta {
    size_t n;
    plexus_disco_kv kv[PLEXUS_DISCO_META_MAX];
} plexus_disco_meta;

/*
 * 1 when b is a node name: 3..PLEXUS_DISCO_NAME_MAX bytes of [A-Za-z0-9_.:@[]-] holding
 * exactly one '@' with at least one byte on each side. 0 otherwise.
 */
PLEXUS_API int plexus_disco_valid_name(const uint8_t *p, size_t n);

/* 1 when the pairs are within the bounds above (keys printable ASCII 0x21..0x7e) and
 * the keys strictly ascending; 0 otherwise. */
PLEXUS_API int plexus_disco_valid_meta(const plexus_disco_meta *m);

/* Sorts m->kv by key (insertion sort: at most 16 pairs). Does not dedupe. */
PLEXUS_API void plexus_disco_sort_meta(plexus_disco_meta *m);

/* Bytes the encoding of m takes. */
PLEXUS_API size_t plexus_disco_meta_len(const plexus_disco_meta *m);

/* Appends the canonical encoding of m (which must be valid) to b. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_disco_put_meta(plexus_buf *b, const plexus_disco_meta *m);
/* Appends varint length + bytes. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_disco_put_bytes(plexus_buf *b, const uint8_t *p, size_t n);
PLEXUS_API PLEXUS_MUST_CHECK int plexus_disco_put_varint(plexus_buf *b, uint64_t v);

/*
 * Reads varint length + bytes from [*pos, end) into *out (borrowing the input); the
 * length must be in [min, max] (PLEXUS_ETOOBIG / PLEXUS_EINVAL) and fit in the bytes
 * left (PLEXUS_ETRUNCATED).
 */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_disco_get_bytes(const uint8_t **pos, const uint8_t *end,
                                                        size_t min, size_t max, plexus_bytes *out);
/* Reads a varint that must be <= max (PLEXUS_ETOOBIG otherwise). */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_disco_get_uint(const uint8_t **pos, const uint8_t *end,
                                                       uint64_t max, uint64_t *out);
/* Reads and validates a metadata map (bounds, charset, strict key order: PLEXUS_EORDER). */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_disco_get_meta(const uint8_t **pos, const uint8_t *end,
                                                       plexus_disco_meta *out);

#endif
