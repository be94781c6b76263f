/*
 * TTL registry wire codec; see include/plexus/registry.h for the format. The decoder
 * validates everything before it reports success (doc/STYLE.md habit 4): every length and
 * count is bounded by the bytes left, VIEW entries are all walked, trailing bytes are
 * refused. Signatures are checked by plexus_registry_msg_verify (and by the table).
 */
#include <sodium.h>
#include <string.h>

#include "plexus/registry.h"

#define MAGIC0 'P'
#define MAGIC1 'X'
#define MAGIC2 'R'

static int get_addrs(const uint8_t **pos, const uint8_t *end, plexus_registry_addrs *a)
{
    uint64_t n;
    int rc = plexus_varint_read(pos, end, &n);
    if (rc) return rc;
    if (n > PLEXUS_REGISTRY_ADDRS_MAX) return PLEXUS_ETOOBIG;
    if (n * 2 > (uint64_t)(end - *pos)) return PLEXUS_ECOUNT;
    a->n = 0;
    for (size_t i = 0; i < n; i++) {
        if ((rc = plexus_disco_get_bytes(pos, end, 1, PLEXUS_REGISTRY_ADDR_MAX, &a->addr[i])))
            return rc;
        a->n = i + 1;
    }
    return PLEXUS_OK;
}

static int get_peer(const uint8_t **pos, const uint8_t *end, plexus_bytes *peer)
{
    int rc = plexus_disco_get_bytes(pos, end, 3, PLEXUS_DISCO_NAME_MAX, peer);
    if (rc) return rc;
    return plexus_disco_valid_name(peer->p, peer->n) ? PLEXUS_OK : PLEXUS_EINVAL;
}

/* flags byte, then optional public key and signature; records the signed span. */
static int get_sig(const uint8_t *start, const uint8_t **pos, const uint8_t *end,
                   plexus_registry_msg *m)
{
    if (*pos >= end) return PLEXUS_ETRUNCATED;
    uint8_t flags = *(*pos)++;
    if (flags & ~1u) return PLEXUS_EINVAL;
    m->is_signed = flags & 1;
    if (!m->is_signed) return PLEXUS_OK;
    if ((size_t)(end - *pos) < PLEXUS_REGISTRY_PK_BYTES + PLEXUS_REGISTRY_SIG_BYTES)
        return PLEXUS_ETRUNCATED;
    m->public_key = *pos;
    *pos += PLEXUS_REGISTRY_PK_BYTES;
    m->signed_len = (size_t)(*pos - start);
    m->signature = *pos;
    *pos += PLEXUS_REGISTRY_SIG_BYTES;
    return PLEXUS_OK;
}

static int get_entry(const uint8_t **pos, const uint8_t *end, plexus_registry_entry *e)
{
    int rc;
    if ((rc = get_peer(pos, end, &e->peer))) return rc;
    if ((rc = get_addrs(pos, end, &e->addrs))) return rc;
    if ((rc = plexus_disco_get_meta(pos, end, &e->meta))) return rc;
    return plexus_disco_get_uint(pos, end, PLEXUS_REGISTRY_TTL_MAX_MS * 1000ull,
                                 &e->remaining_ttl_ms);
}

int plexus_registry_msg_decode(const uint8_t *p, size_t n, plexus_registry_msg *m)
{
    const uint8_t *pos = p, *end = p + n;
    uint64_t v;
    int rc;
    memset(m, 0, sizeof *m);
    if (!p || n < 6) return PLEXUS_ETRUNCATED;
    if (n > PLEXUS_REGISTRY_MSG_MAX) return PLEXUS_ETOOBIG;
    if (p[0] != MAGIC0 || p[1] != MAGIC1 || p[2] != MAGIC2 || p[3] != PLEXUS_REGISTRY_VERSION)
        return PLEXUS_EVERSION;
    m->start = p;
    m->type = (plexus_registry_type)p[4];
    pos += 5;
    if ((rc = plexus_varint_read(&pos, end, &m->request_id))) return rc;
    switch (m->type) {
    case PLEXUS_REGISTRY_ANNOUNCE:
        if ((rc = get_peer(&pos, end, &m->peer))) return rc;
        if ((rc = get_addrs(&pos, end, &m->addrs))) return rc;
        if ((rc = plexus_disco_get_meta(&pos, end, &m->meta))) return rc;
        if ((rc = plexus_disco_get_uint(&pos, end, UINT32_MAX, &m->ttl_ms))) return rc;
        if ((rc = plexus_varint_read(&pos, end, &m->issued_ms))) return rc;
        if ((rc = get_sig(p, &pos, end, m))) return rc;
        break;
    case PLEXUS_REGISTRY_BYE:
        if ((rc = get_peer(&pos, end, &m->peer))) return rc;
        if ((rc = plexus_varint_read(&pos, end, &m->issued_ms))) return rc;
        if ((rc = get_sig(p, &pos, end, m))) return rc;
        break;
    case PLEXUS_REGISTRY_HANDSHAKE:
        if ((rc = plexus_disco_get_uint(&pos, end, UINT32_MAX, &m->ttl_ms))) return rc;
        if ((rc = plexus_disco_get_uint(&pos, end, UINT32_MAX, &m->heartbeat_ms))) return rc;
        if (m->ttl_ms == 0 || m->heartbeat_ms == 0 || m->heartbeat_ms > m->ttl_ms)
            return PLEXUS_EINVAL;
        if ((rc = get_addrs(&pos, end, &m->addrs))) return rc;
        break;
    case PLEXUS_REGISTRY_QUERY:
        if ((rc = plexus_disco_get_uint(&pos, end, PLEXUS_REGISTRY_QUERY_MAX, &m->max_entries)))
            return rc;
        if (m->max_entries == 0) return PLEXUS_EINVAL;
        if (pos >= end) return PLEXUS_ETRUNCATED;
        v = *pos++;
        if (v != 0 && v != PLEXUS_REGISTRY_COOKIE_BYTES) return PLEXUS_EINVAL;
        if ((size_t)(end - pos) < v) return PLEXUS_ETRUNCATED;
        if (v) m->cookie = pos;
        pos += v;
        for (; pos < end; pos++) /* padding: zeros only, so it carries nothing */
            if (*pos) return PLEXUS_EINVAL;
        break;
    case PLEXUS_REGISTRY_COOKIE:
        if ((size_t)(end - pos) < PLEXUS_REGISTRY_COOKIE_BYTES) return PLEXUS_ETRUNCATED;
        m->cookie = pos;
        pos += PLEXUS_REGISTRY_COOKIE_BYTES;
        break;
    case PLEXUS_REGISTRY_VIEW: {
        if ((rc = plexus_varint_read(&pos, end, &m->live_entries))) return rc;
        if ((rc = plexus_disco_get_uint(&pos, end, PLEXUS_REGISTRY_QUERY_MAX, &m->n_entries)))
            return rc;
        /* An entry takes at least 6 bytes (peer of 3 + 3 lengths). */
        if (m->n_entries * 6 > (uint64_t)(end - pos)) return PLEXUS_ECOUNT;
        m->entries.p = pos;
        for (uint64_t i = 0; i < m->n_entries; i++) {
            plexus_registry_entry e;
            if ((rc = get_entry(&pos, end, &e))) return rc;
        }
        m->entries.n = (size_t)(pos - m->entries.p);
        if (m->n_entries > m->live_entries) return PLEXUS_EINVAL;
        break;
    }
    case PLEXUS_REGISTRY_REFUSED:
        if ((rc = plexus_disco_get_uint(&pos, end, (uint64_t)-PLEXUS_ERROR_MIN, &v))) return rc;
        if (v == 0) return PLEXUS_EINVAL;
        m->reason = -(int)v;
        break;
    default:
        return PLEXUS_ETYPE;
    }
    if (pos != end) return PLEXUS_ETRAILING;
    return PLEXUS_OK;
}

int plexus_registry_view_next(const plexus_registry_msg *m, const uint8_t **pos,
                              plexus_registry_entry *e)
{
    const uint8_t *end = m->entries.p + m->entries.n;
    if (*pos >= end) return 1;
    return get_entry(pos, end, e);
}

int plexus_registry_msg_verify(const plexus_registry_msg *m)
{
    if (!m->is_signed || !m->start) return PLEXUS_EAUTH;
    return crypto_sign_verify_detached(m->signature, m->start, m->signed_len, m->public_key) == 0
               ? PLEXUS_OK
               : PLEXUS_EAUTH;
}

/* ---------------------------------------------------------------- encoders */

static int put_head(plexus_buf *b, plexus_registry_type t, uint64_t request_id)
{
    const uint8_t head[5] = {MAGIC0, MAGIC1, MAGIC2, PLEXUS_REGISTRY_VERSION, (uint8_t)t};
    int rc = plexus_buf_put(b, head, sizeof head);
    return rc ? rc : plexus_disco_put_varint(b, request_id);
}

static int valid_addrs(const plexus_registry_addrs *a)
{
    if (!a) return 1;
    if (a->n > PLEXUS_REGISTRY_ADDRS_MAX) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->addr[i].n < 1 || a->addr[i].n > PLEXUS_REGISTRY_ADDR_MAX || !a->addr[i].p) return 0;
    return 1;
}

static int put_addrs(plexus_buf *b, const plexus_registry_addrs *a)
{
    size_t n = a ? a->n : 0;
    int rc = plexus_disco_put_varint(b, n);
    for (size_t i = 0; !rc && i < n; i++)
        rc = plexus_disco_put_bytes(b, a->addr[i].p, a->addr[i].n);
    return rc;
}

/* flags, and when seed is given: pk + signature over everything from `from`. */
static int put_sig(plexus_buf *b, size_t from, const uint8_t *seed)
{
    uint8_t flags = seed ? 1 : 0;
    int rc = plexus_buf_put(b, &flags, 1);
    if (rc || !seed) return rc;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair(pk, sk, seed);
    uint8_t sig[crypto_sign_BYTES];
    if (!(rc = plexus_buf_put(b, pk, sizeof pk))) {
        crypto_sign_detached(sig, NULL, b->p + from, b->len - from, sk);
        rc = plexus_buf_put(b, sig, sizeof sig);
    }
    sodium_memzero(sk, sizeof sk);
    return rc;
}

int plexus_registry_encode_announce(plexus_buf *b, uint64_t request_id, plexus_bytes peer,
                                    const plexus_registry_addrs *addrs,
                                    const plexus_disco_meta *meta, uint64_t ttl_ms,
                                    uint64_t issued_ms, const uint8_t *seed)
{
    static const plexus_disco_meta none = {0};
    if (!meta) meta = &none;
    if (!plexus_disco_valid_name(peer.p, peer.n) || !valid_addrs(addrs) ||
        !plexus_disco_valid_meta(meta) || ttl_ms > UINT32_MAX)
        return PLEXUS_EINVAL;
    size_t from = b->len;
    int rc = put_head(b, PLEXUS_REGISTRY_ANNOUNCE, request_id);
    if (!rc) rc = plexus_disco_put_bytes(b, peer.p, peer.n);
    if (!rc) rc = put_addrs(b, addrs);
    if (!rc) rc = plexus_disco_put_meta(b, meta);
    if (!rc) rc = plexus_disco_put_varint(b, ttl_ms);
    if (!rc) rc = plexus_disco_put_varint(b, issued_ms);
    if (!rc) rc = put_sig(b, from, seed);
    if (!rc && b->len - from > PLEXUS_REGISTRY_MSG_MAX) rc = PLEXUS_ETOOBIG;
    return rc;
}

int plexus_registry_encode_bye(plexus_buf *b, uint64_t request_id, plexus_bytes peer,
                               uint64_t issued_ms, const uint8_t *seed)
{
    if (!plexus_disco_valid_name(peer.p, peer.n)) return PLEXUS_EINVAL;
    size_t from = b->len;
    int rc = put_head(b, PLEXUS_REGISTRY_BYE, request_id);
    if (!rc) rc = plexus_disco_put_bytes(b, peer.p, peer.n);
    if (!rc) rc = plexus_disco_put_varint(b, issued_ms);
    if (!rc) rc = put_sig(b, from, seed);
    return rc;
}

int plexus_registry_encode_query(plexus_buf *b, uint64_t request_id, uint64_t max_entries,
                                 const uint8_t *cookie, size_t pad_to)
{
    static const uint8_t zeros[64];
    if (max_entries == 0 || max_entries > PLEXUS_REGISTRY_QUERY_MAX ||
        pad_to > PLEXUS_REGISTRY_MSG_MAX)
        return PLEXUS_EINVAL;
    size_t from = b->len;
    uint8_t clen = cookie ? PLEXUS_REGISTRY_COOKIE_BYTES : 0;
    int rc = put_head(b, PLEXUS_REGISTRY_QUERY, request_id);
    if (!rc) rc = plexus_disco_put_varint(b, max_entries);
    if (!rc) rc = plexus_buf_put(b, &clen, 1);
    if (!rc && cookie) rc = plexus_buf_put(b, cookie, PLEXUS_REGISTRY_COOKIE_BYTES);
    while (!rc && b->len - from < pad_to) {
        size_t k = pad_to - (b->len - from);
        rc = plexus_buf_put(b, zeros, k < sizeof zeros ? k : sizeof zeros);
    }
    return rc;
}

int plexus_registry_encode_cookie(plexus_buf *b, uint64_t request_id, const uint8_t *cookie)
{
    if (!cookie) return PLEXUS_EINVAL;
    int rc = put_head(b, PLEXUS_REGISTRY_COOKIE, request_id);
    return rc ? rc : plexus_buf_put(b, cookie, PLEXUS_REGISTRY_COOKIE_BYTES);
}

int plexus_registry_encode_refused(plexus_buf *b, uint64_t request_id, int reason)
{
    if (reason >= 0 || reason < PLEXUS_ERROR_MIN) return PLEXUS_EINVAL;
    int rc = put_head(b, PLEXUS_REGISTRY_REFUSED, request_id);
    return rc ? rc : plexus_disco_put_varint(b, (uint64_t)-reason);
}

int plexus_registry_encode_handshake(plexus_buf *b, uint64_t request_id, uint64_t ttl_ms,
                                     uint64_t heartbeat_ms, const plexus_registry_addrs *addrs)
{
    if (ttl_ms == 0 || heartbeat_ms == 0 || heartbeat_ms > ttl_ms || ttl_ms > UINT32_MAX ||
        !valid_addrs(addrs))
        return PLEXUS_EINVAL;
    int rc = put_head(b, PLEXUS_REGISTRY_HANDSHAKE, request_id);
    if (!rc) rc = plexus_disco_put_varint(b, ttl_ms);
    if (!rc) rc = plexus_disco_put_varint(b, heartbeat_ms);
    if (!rc) rc = put_addrs(b, addrs);
    return rc;
}

void plexus_registry_public_key(const uint8_t seed[PLEXUS_REGISTRY_SEED_BYTES],
                                uint8_t pk[PLEXUS_REGISTRY_PK_BYTES])
{
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(sk, sizeof sk);
}
