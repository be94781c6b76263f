/*
 * OR-Set constructors and readers: new, member, iteration; and the type/digest
 * helpers shared by both CRDT types. Every reader validates the whole state first,
 * so a caller never sees part of a malformed state.
 */
#include <sodium.h>
#include <string.h>

#include "crdt_orset_codec.h"

int plexus_orset_new(plexus_buf *out)
{
    /* version, type, no actors, no cloud, no elements */
    static const uint8_t empty[] = {PLEXUS_CRDT_VERSION, PLEXUS_TYPE_ORSET, 0, 0, 0};
    return plexus_buf_put(out, empty, sizeof empty);
}

int plexus_orset_member(const uint8_t *s, size_t n, plexus_bytes elem, const plexus_alloc *a,
                        int *found)
{
    orset_ctx c;
    int rc = orset_parse_header(s, n, a, &c);
    if (rc) return rc;
    orset_cursor k;
    *found = 0;
    for (rc = orset_cursor_start(&k, &c); !rc && k.has; rc = orset_cursor_next(&k))
        if (plexus_bytes_cmp(k.cur.elem, k.cur.elen, elem.p, elem.n) == 0) *found = 1;
    if (rc) *found = 0;
    orset_ctx_free(&c);
    return rc;
}

int plexus_orset_iter_init(plexus_orset_iter *it, const uint8_t *s, size_t n, const plexus_alloc *a)
{
    orset_ctx c;
    int rc = orset_parse_header(s, n, a, &c);
    if (rc) return rc;
    rc = orset_check_elems(&c);
    it->pos = c.elems;
    it->end = c.end;
    it->left = rc ? 0 : c.n_elems;
    orset_ctx_free(&c);
    return rc;
}

int plexus_orset_iter_next(plexus_orset_iter *it, plexus_bytes *elem)
{
    if (!it->left) return 0;
    /* The state was validated by iter_init, so these reads stay in bounds. */
    uint64_t len = plexus_varint_trusted(&it->pos);
    elem->p = it->pos;
    elem->n = (size_t)len;
    it->pos += len;
    uint64_t ndots = plexus_varint_trusted(&it->pos);
    for (uint64_t i = 0; i < 2 * ndots; i++)
        (void)plexus_varint_trusted(&it->pos);
    it->left--;
    return 1;
}

int plexus_crdt_type(const uint8_t *s, size_t n)
{
    if (n < 2) return PLEXUS_ETRUNCATED;
    if (s[0] != PLEXUS_CRDT_VERSION) return PLEXUS_EVERSION;
    if (s[1] != PLEXUS_TYPE_ORSET && s[1] != PLEXUS_TYPE_LWW) return PLEXUS_ETYPE;
    return s[1];
}

int plexus_crdt_digest(const uint8_t *s, size_t n, const plexus_alloc *a,
                       uint8_t out[PLEXUS_DIGEST_BYTES])
{
    int type = plexus_crdt_type(s, n);
    if (type < 0) return type;
    int rc;
    if (type == PLEXUS_TYPE_ORSET) {
        rc = plexus_orset_validate(s, n, a, NULL);
    } else {
        plexus_lww_view v;
        rc = plexus_lww_decode(s, n, &v);
    }
    if (rc) return rc;
    /* Canonical encoding: equal states have equal bytes, hence equal digests. */
    crypto_generichash(out, PLEXUS_DIGEST_BYTES, s, n, NULL, 0);
    return PLEXUS_OK;
}
