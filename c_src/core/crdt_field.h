/*
 * The `bytes` field of the CRDT formats (crdt_format.md, "Conventions"): a varint
 * length, 1 to PLEXUS_MAX_BYTES_LEN, then that many bytes. Shared by the LWW and
 * OR-Set decoders so both enforce the same rule.
 */
#ifndef PLEXUS_CRDT_FIELD_H
#define PLEXUS_CRDT_FIELD_H

#include "plexus/crdt.h"

static inline int crdt_read_field(const uint8_t **pos, const uint8_t *end, plexus_bytes *out)
{
    uint64_t len;
    if (*pos < end && **pos < 0x80) { /* lengths under 128: the hot case, inlined */
        len = *(*pos)++;
    } else {
        int rc = plexus_varint_read(pos, end, &len);
        if (rc) return rc;
    }
    if (len == 0) return PLEXUS_EORDER; /* empty elements, actors and values do not exist */
    if (len > PLEXUS_MAX_BYTES_LEN) return PLEXUS_ETOOBIG;
    if (len > (uint64_t)(end - *pos)) return PLEXUS_ETRUNCATED;
    out->p = *pos;
    out->n = (size_t)len;
    *pos += len;
    return PLEXUS_OK;
}

#endif
