/*
 * LWW register on a hybrid logical clock (crdt_format.md, "LWW register";
 * Kulkarni et al., "Logical Physical Clocks", 2014).
 *
 * The HLC packs wall milliseconds and a logical counter into one uint64 so that
 * integer order is HLC order and a timestamp is comparable across nodes (unlike
 * erlang:monotonic_time). The clock value itself is host state: the cell of
 * hlc_cell.c, which the NIF library keeps and plexus_hlc leases; plexus_hlc:next/2
 * applies the same rules in Erlang.
 */
#include <string.h>

#include "crdt_field.h"
#include "plexus/crdt.h"

#define HLC_LOGICAL_BITS 16
#define HLC_MAX_MS ((UINT64_C(1) << (64 - HLC_LOGICAL_BITS)) - 1)

uint64_t plexus_hlc_from_ms(uint64_t wall_ms)
{
    if (wall_ms > HLC_MAX_MS) wall_ms = HLC_MAX_MS;
    return wall_ms << HLC_LOGICAL_BITS;
}

uint64_t plexus_hlc_ms(uint64_t ts)
{
    return ts >> HLC_LOGICAL_BITS;
}

uint64_t plexus_hlc_next(uint64_t last, uint64_t wall_ms)
{
    uint64_t wall = plexus_hlc_from_ms(wall_ms);
    /* Saturate rather than wrap: at the very end of time the clock stops moving. */
    uint64_t after = last == UINT64_MAX ? last : last + 1;
    return wall > after ? wall : after;
}

int plexus_lww_decode(const uint8_t *s, size_t n, plexus_lww_view *v)
{
    if (n < 2) return PLEXUS_ETRUNCATED;
    if (s[0] != PLEXUS_CRDT_VERSION) return PLEXUS_EVERSION;
    if (s[1] != PLEXUS_TYPE_LWW) return PLEXUS_ETYPE;
    if (n < 10) return PLEXUS_ETRUNCATED;
    uint64_t ts = 0;
    for (int i = 0; i < 8; i++)
        ts = ts << 8 | s[2 + i];
    const uint8_t *pos = s + 10, *end = s + n;
    int rc = crdt_read_field(&pos, end, &v->actor);
    if (!rc) rc = crdt_read_field(&pos, end, &v->value);
    if (!rc && pos != end) rc = PLEXUS_ETRAILING;
    if (rc) return rc;
    v->ts = ts;
    return PLEXUS_OK;
}

int plexus_lww_encode(uint64_t ts, plexus_bytes actor, plexus_bytes value, plexus_buf *out)
{
    if (!actor.n || !value.n || !actor.p || !value.p) return PLEXUS_EINVAL;
    if (actor.n > PLEXUS_MAX_BYTES_LEN || value.n > PLEXUS_MAX_BYTES_LEN) return PLEXUS_ETOOBIG;
    int rc = plexus_buf_reserve(out, 10 + 2 * PLEXUS_VARINT_MAX + actor.n + value.n);
    if (rc) return rc;
    uint8_t *p = out->p + out->len;
    *p++ = PLEXUS_CRDT_VERSION;
    *p++ = PLEXUS_TYPE_LWW;
    for (int i = 7; i >= 0; i--)
        *p++ = (uint8_t)(ts >> (8 * i));
    p += plexus_varint_write(p, actor.n);
    memcpy(p, actor.p, actor.n);
    p += actor.n;
    p += plexus_varint_write(p, value.n);
    memcpy(p, value.p, value.n);
    p += value.n;
    out->len = (size_t)(p - out->p);
    return PLEXUS_OK;
}

int plexus_lww_compare(const plexus_lww_view *a, const plexus_lww_view *b)
{
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    int c = plexus_bytes_cmp(a->actor.p, a->actor.n, b->actor.p, b->actor.n);
    if (c) return c;
    return plexus_bytes_cmp(a->value.p, a->value.n, b->value.p, b->value.n);
}

int plexus_lww_merge(const plexus_bytes *states, size_t k, size_t *winner)
{
    if (k == 0) return PLEXUS_EINVAL;
    plexus_lww_view best, cur;
    size_t w = 0;
    int rc = plexus_lww_decode(states[0].p, states[0].n, &best);
    for (size_t i = 1; !rc && i < k; i++) {
        rc = plexus_lww_decode(states[i].p, states[i].n, &cur);
        if (!rc && plexus_lww_compare(&cur, &best) > 0) {
            best = cur;
            w = i;
        }
    }
    if (!rc) *winner = w;
    return rc;
}
