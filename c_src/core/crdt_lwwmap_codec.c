/*
 * LWW map validation (include/plexus/crdt_format.md, "LWW map"): the strict reader of
 * `0x02 'M'` bytes, in C so that it can be fuzzed and so that plexus_lwwmap's
 * from_binary/1 can skip its slow checks (folding, coverage, re-encoding) for input
 * this accepts. Accepts exactly the canonical bytes: the OR-Set's causal context
 * (same rules, crdt_orset_codec.c), then keys strictly ascending bytewise, each with
 * its writes (dots of the context, strictly ascending by (actor, counter), each with
 * a timestamp and a value). The Erlang reader stays the reference; a PropEr property
 * checks that both accept the same bytes.
 */
#include "crdt_field.h"
#include "crdt_orset_codec.h"

/* Smallest encodings, used to bound counts by the bytes left. */
#define MIN_WRITE_BYTES 5                       /* actor index, counter, ts, value len, 1 byte */
#define MIN_KEY_BYTES (2 + 1 + MIN_WRITE_BYTES) /* key len, 1 byte, n_writes, a write */

/* One key with its writes; prev is the previous key (NULL for the first). */
static int read_key(const orset_ctx *c, const uint8_t **pos, const plexus_bytes *prev,
                    plexus_bytes *key)
{
    int rc = crdt_read_field(pos, c->end, key);
    if (rc) return rc;
    if (prev && orset_cmp(prev->p, prev->n, key->p, key->n) >= 0) return PLEXUS_EORDER;
    size_t n_writes;
    rc = orset_read_count(pos, c->end, MIN_WRITE_BYTES, &n_writes);
    if (rc) return rc;
    if (n_writes == 0) return PLEXUS_EORDER; /* a key without writes is absent */
    orset_dot last = {0, 0};
    for (size_t i = 0; i < n_writes; i++) {
        uint64_t ts;
        plexus_bytes value;
        rc = orset_read_entry_dot(c, pos, i, &last);
        if (!rc) rc = orset_varint(pos, c->end, &ts);
        if (!rc) rc = crdt_read_field(pos, c->end, &value);
        if (rc) return rc;
    }
    return PLEXUS_OK;
}

int plexus_lwwmap_validate(const uint8_t *s, size_t n, const plexus_alloc *a)
{
    if (n < 2) return PLEXUS_ETRUNCATED;
    if (s[0] != PLEXUS_CRDT_VERSION_2) return PLEXUS_EVERSION;
    if (s[1] != PLEXUS_TYPE_LWWMAP) return PLEXUS_ETYPE;
    orset_ctx c;
    int rc = orset_parse_context(s + 2, s + n, MIN_KEY_BYTES, a, &c);
    if (rc) return rc;
    const uint8_t *pos = c.elems;
    plexus_bytes prev = {NULL, 0}, key;
    for (size_t i = 0; i < c.n_elems && !rc; i++) {
        rc = read_key(&c, &pos, i ? &prev : NULL, &key);
        prev = key;
    }
    if (!rc && pos != c.end) rc = PLEXUS_ETRAILING;
    orset_ctx_free(&c);
    return rc;
}
