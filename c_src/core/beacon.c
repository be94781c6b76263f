/*
 * Sealed gossip beacons; see include/plexus/beacon.h for the format, the KDF and the
 * replay rules. Order of checks on open: framing, then authentication (nothing of the
 * payload is looked at before the tag verifies), then the strict payload decode, then
 * the replay window; the window is updated only when everything else passed.
 */
#include <sodium.h>
#include <string.h>

#include "plexus/beacon.h"

#define KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define KDF_CTX "plxbeacn"
#define MASTER_KEY "plexus beacon v1" /* 16 bytes: the BLAKE2b key of the master hash */

/* Key material, in its own block from the secret allocator. */
typedef struct keys {
    uint8_t cur[KEY_BYTES];
    uint8_t prev[KEY_BYTES];
} keys;

typedef struct sender {
    uint64_t hash; /* FNV-1a of the name: a cheap first compare */
    uint64_t incarnation;
    uint64_t top;    /* highest sequence seen in this incarnation */
    uint64_t window; /* bit i set: sequence top - i seen */
    uint64_t last_ms;
    uint64_t last_sent_ms; /* the latest send time accepted from it (its own clock) */
    uint16_t name_len;
    uint8_t name[PLEXUS_DISCO_NAME_MAX];
} sender;

struct plexus_beacon {
    const plexus_alloc *a;
    const plexus_alloc *sa;
    keys *k;
    uint32_t epoch;
    int accept_prev;
    size_t max_senders;
    uint64_t stale_ms;
    uint64_t max_skew_ms;
    uint8_t ad_tail[PLEXUS_VARINT_MAX + PLEXUS_BEACON_CLUSTER_MAX]; /* varint len || id */
    size_t ad_tail_len;
    sender *senders; /* [n_senders], capacity cap_senders */
    size_t n_senders, cap_senders;
    plexus_beacon_counters c;
    uint8_t plain[PLEXUS_BEACON_MAX]; /* scratch: the last opened payload */
};

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void derive(const uint8_t *secret, size_t len, uint32_t epoch, uint8_t out[KEY_BYTES])
{
    uint8_t master[crypto_kdf_KEYBYTES];
    crypto_generichash(master, sizeof master, secret, len, (const uint8_t *)MASTER_KEY,
                       sizeof MASTER_KEY - 1);
    crypto_kdf_derive_from_key(out, KEY_BYTES, epoch, KDF_CTX, master);
    sodium_memzero(master, sizeof master);
}

int plexus_beacon_new(const plexus_beacon_config *cfg, const plexus_alloc *a, plexus_beacon **out)
{
    *out = NULL;
    if (!cfg || !a || !cfg->secret || cfg->secret_len < PLEXUS_BEACON_SECRET_MIN ||
        cfg->secret_len > PLEXUS_BEACON_SECRET_MAX ||
        cfg->cluster_id_len > PLEXUS_BEACON_CLUSTER_MAX ||
        (cfg->cluster_id_len && !cfg->cluster_id) || cfg->max_senders > PLEXUS_BEACON_SENDERS_MAX)
        return PLEXUS_EINVAL;
    if (cfg->accept_previous_epoch && cfg->epoch == 0) return PLEXUS_EINVAL;
    const plexus_alloc *sa = cfg->secret_alloc ? cfg->secret_alloc : a;
    plexus_beacon *b = a->malloc(a->ctx, sizeof *b);
    if (!b) return PLEXUS_ENOMEM;
    memset(b, 0, sizeof *b);
    b->a = a;
    b->sa = sa;
    b->k = sa->malloc(sa->ctx, sizeof *b->k);
    if (!b->k) {
        a->free(a->ctx, b);
        return PLEXUS_ENOMEM;
    }
    memset(b->k, 0, sizeof *b->k);
    b->epoch = cfg->epoch;
    b->accept_prev = cfg->accept_previous_epoch != 0;
    b->max_senders = cfg->max_senders ? cfg->max_senders : PLEXUS_BEACON_SENDERS_DEFAULT;
    b->stale_ms = cfg->stale_ms ? cfg->stale_ms : PLEXUS_BEACON_STALE_DEFAULT_MS;
    b->max_skew_ms = cfg->max_skew_ms ? cfg->max_skew_ms : PLEXUS_BEACON_SKEW_DEFAULT_MS;
    b->ad_tail_len = plexus_varint_write(b->ad_tail, cfg->cluster_id_len);
    if (cfg->cluster_id_len)
        memcpy(b->ad_tail + b->ad_tail_len, cfg->cluster_id, cfg->cluster_id_len);
    b->ad_tail_len += cfg->cluster_id_len;
    derive(cfg->secret, cfg->secret_len, cfg->epoch, b->k->cur);
    if (b->accept_prev) derive(cfg->secret, cfg->secret_len, cfg->epoch - 1, b->k->prev);
    *out = b;
    return PLEXUS_OK;
}

void plexus_beacon_free(plexus_beacon *b)
{
    if (!b) return;
    sodium_memzero(b->k, sizeof *b->k);
    b->sa->free(b->sa->ctx, b->k);
    b->a->free(b->a->ctx, b->senders);
    sodium_memzero(b->plain, sizeof b->plain);
    b->a->free(b->a->ctx, b);
}

/* header || varint(len cluster) || cluster id */
static size_t make_ad(const plexus_beacon *b, const uint8_t *header, uint8_t *ad)
{
    memcpy(ad, header, PLEXUS_BEACON_HEADER);
    memcpy(ad + PLEXUS_BEACON_HEADER, b->ad_tail, b->ad_tail_len);
    return PLEXUS_BEACON_HEADER + b->ad_tail_len;
}

static void put_header(uint8_t *h, uint32_t epoch)
{
    h[0] = 'P';
    h[1] = 'X';
    h[2] = 'B';
    h[3] = PLEXUS_BEACON_VERSION;
    h[4] = (uint8_t)(epoch >> 24);
    h[5] = (uint8_t)(epoch >> 16);
    h[6] = (uint8_t)(epoch >> 8);
    h[7] = (uint8_t)epoch;
}

int plexus_beacon_seal(plexus_beacon *b, const plexus_beacon_msg *m,
                       const uint8_t nonce[PLEXUS_BEACON_NONCE], uint8_t *out, size_t cap,
                       size_t *out_len)
{
    *out_len = 0;
    if (!m || !nonce || !out || m->incarnation == 0 || m->sequence == 0 ||
        !plexus_disco_valid_name(m->name.p, m->name.n) || !plexus_disco_valid_meta(&m->meta))
        return PLEXUS_EINVAL;
    size_t plen = plexus_varint_len(m->incarnation) + plexus_varint_len(m->sequence) +
                  plexus_varint_len(m->sent_ms) + plexus_varint_len(m->name.n) + m->name.n +
                  plexus_disco_meta_len(&m->meta);
    size_t total = PLEXUS_BEACON_OVERHEAD + plen;
    if (total > PLEXUS_BEACON_MAX || total > cap) return PLEXUS_ETOOBIG;

    /* The payload is built in place where the ciphertext goes, then encrypted there
     * (libsodium allows in-place encryption). A fixed local buffer keeps seal free of
     * allocation. */
    uint8_t *payload = out + PLEXUS_BEACON_HEADER + PLEXUS_BEACON_NONCE;
    uint8_t *p = payload;
    p += plexus_varint_write(p, m->incarnation);
    p += plexus_varint_write(p, m->sequence);
    p += plexus_varint_write(p, m->sent_ms);
    p += plexus_varint_write(p, m->name.n);
    memcpy(p, m->name.p, m->name.n);
    p += m->name.n;
    p += plexus_varint_write(p, m->meta.n);
    for (size_t i = 0; i < m->meta.n; i++) {
        p += plexus_varint_write(p, m->meta.kv[i].key.n);
        memcpy(p, m->meta.kv[i].key.p, m->meta.kv[i].key.n);
        p += m->meta.kv[i].key.n;
        p += plexus_varint_write(p, m->meta.kv[i].val.n);
        if (m->meta.kv[i].val.n) memcpy(p, m->meta.kv[i].val.p, m->meta.kv[i].val.n);
        p += m->meta.kv[i].val.n;
    }
    put_header(out, b->epoch);
    memcpy(out + PLEXUS_BEACON_HEADER, nonce, PLEXUS_BEACON_NONCE);
    uint8_t ad[PLEXUS_BEACON_HEADER + sizeof b->ad_tail];
    size_t adlen = make_ad(b, out, ad);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(payload, &clen, payload, plen, ad, adlen, NULL,
                                               nonce, b->k->cur);
    *out_len = PLEXUS_BEACON_HEADER + PLEXUS_BEACON_NONCE + (size_t)clen;
    b->c.sealed++;
    return PLEXUS_OK;
}

static int decode_payload(const uint8_t *p, size_t n, plexus_beacon_msg *m)
{
    const uint8_t *pos = p, *end = p + n;
    int rc;
    if ((rc = plexus_varint_read(&pos, end, &m->incarnation))) return rc;
    if ((rc = plexus_varint_read(&pos, end, &m->sequence))) return rc;
    if ((rc = plexus_varint_read(&pos, end, &m->sent_ms))) return rc;
    if (m->incarnation == 0 || m->sequence == 0) return PLEXUS_EINVAL;
    if ((rc = plexus_disco_get_bytes(&pos, end, 3, PLEXUS_DISCO_NAME_MAX, &m->name))) return rc;
    if (!plexus_disco_valid_name(m->name.p, m->name.n)) return PLEXUS_EINVAL;
    if ((rc = plexus_disco_get_meta(&pos, end, &m->meta))) return rc;
    if (pos != end) return PLEXUS_ETRAILING;
    return PLEXUS_OK;
}

static sender *find_sender(plexus_beacon *b, const uint8_t *name, size_t len, uint64_t h)
{
    for (size_t i = 0; i < b->n_senders; i++) {
        sender *s = &b->senders[i];
        if (s->hash == h && s->name_len == len && memcmp(s->name, name, len) == 0) return s;
    }
    return NULL;
}

/* A slot for a new sender: append (growing), or reuse the stalest entry when full. */
static int new_sender(plexus_beacon *b, uint64_t now_ms, sender **out)
{
    if (b->n_senders < b->max_senders) {
        if (b->n_senders == b->cap_senders) {
            size_t cap = b->cap_senders ? b->cap_senders * 2 : 16;
            if (cap > b->max_senders) cap = b->max_senders;
            sender *s = b->a->realloc(b->a->ctx, b->senders, cap * sizeof *s);
            if (!s) return PLEXUS_ENOMEM;
            b->senders = s;
            b->cap_senders = cap;
        }
        *out = &b->senders[b->n_senders++];
        return PLEXUS_OK;
    }
    sender *oldest = NULL;
    for (size_t i = 0; i < b->n_senders; i++)
        if (!oldest || b->senders[i].last_ms < oldest->last_ms) oldest = &b->senders[i];
    if (!oldest || now_ms < oldest->last_ms || now_ms - oldest->last_ms < b->stale_ms)
        return PLEXUS_EFULL;
    *out = oldest;
    return PLEXUS_OK;
}

/* The replay rule of beacon.h; updates the window only when the beacon is new. */
static int check_replay(plexus_beacon *b, const plexus_beacon_msg *m, uint64_t now_ms)
{
    uint64_t h = fnv1a(m->name.p, m->name.n);
    sender *s = find_sender(b, m->name.p, m->name.n, h);
    if (!s) {
        int rc = new_sender(b, now_ms, &s);
        if (rc) return rc;
        memset(s, 0, sizeof *s);
        s->hash = h;
        s->name_len = (uint16_t)m->name.n;
        memcpy(s->name, m->name.p, m->name.n);
        s->incarnation = m->incarnation;
        s->top = m->sequence;
        s->window = 1;
    } else if (m->incarnation != s->incarnation) {
        /* Another life of the sender: a restart when it was sent after everything
         * accepted from it (by its own clock), else an older life played back. The
         * incarnation's order is not asked: it is the sender's start time, and a
         * sender restarted under a clock that went back was refused for good. */
        if (m->sent_ms <= s->last_sent_ms) return PLEXUS_EREPLAY;
        s->incarnation = m->incarnation;
        s->top = m->sequence;
        s->window = 1;
    } else if (m->sequence > s->top) {
        uint64_t shift = m->sequence - s->top;
        s->window = shift >= PLEXUS_BEACON_WINDOW ? 1 : (s->window << shift) | 1;
        s->top = m->sequence;
    } else {
        uint64_t d = s->top - m->sequence;
        if (d >= PLEXUS_BEACON_WINDOW || (s->window >> d) & 1) return PLEXUS_EREPLAY;
        s->window |= (uint64_t)1 << d;
    }
    s->last_ms = now_ms;
    if (m->sent_ms > s->last_sent_ms) s->last_sent_ms = m->sent_ms;
    return PLEXUS_OK;
}

int plexus_beacon_open(plexus_beacon *b, const uint8_t *in, size_t n, uint64_t now_ms,
                       uint64_t wall_ms, plexus_beacon_msg *out)
{
    int rc;
    memset(out, 0, sizeof *out);
    if (!in || n < PLEXUS_BEACON_OVERHEAD) {
        b->c.malformed++;
        return PLEXUS_ETRUNCATED;
    }
    if (n > PLEXUS_BEACON_MAX) {
        b->c.malformed++;
        return PLEXUS_ETOOBIG;
    }
    if (in[0] != 'P' || in[1] != 'X' || in[2] != 'B' || in[3] != PLEXUS_BEACON_VERSION) {
        b->c.malformed++;
        return PLEXUS_EVERSION;
    }
    uint32_t epoch = (uint32_t)in[4] << 24 | (uint32_t)in[5] << 16 | (uint32_t)in[6] << 8 | in[7];
    const uint8_t *key = NULL;
    if (epoch == b->epoch)
        key = b->k->cur;
    else if (b->accept_prev && epoch == b->epoch - 1)
        key = b->k->prev;
    if (!key) { /* an epoch we hold no key for: indistinguishable from a forgery */
        b->c.auth_failed++;
        return PLEXUS_EAUTH;
    }
    uint8_t ad[PLEXUS_BEACON_HEADER + sizeof b->ad_tail];
    size_t adlen = make_ad(b, in, ad);
    const uint8_t *nonce = in + PLEXUS_BEACON_HEADER;
    const uint8_t *ct = nonce + PLEXUS_BEACON_NONCE;
    size_t ctlen = n - PLEXUS_BEACON_HEADER - PLEXUS_BEACON_NONCE;
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(b->plain, &plen, NULL, ct, ctlen, ad, adlen,
                                                   nonce, key) != 0) {
        b->c.auth_failed++;
        return PLEXUS_EAUTH;
    }
    if ((rc = decode_payload(b->plain, (size_t)plen, out))) {
        /* Authentic but undecodable: a sender with the key and a bug (or a different
         * version of the payload). Dropped like any malformed beacon. */
        memset(out, 0, sizeof *out);
        b->c.malformed++;
        return rc;
    }
    out->epoch = epoch;
    /* sent too long before (or after) this receiver's clock: a recording played back
     * (even to a receiver that has just started and knows no window), or a sender
     * whose clock is off; refused before the sender table is touched */
    uint64_t skew = out->sent_ms > wall_ms ? out->sent_ms - wall_ms : wall_ms - out->sent_ms;
    if (skew > b->max_skew_ms) {
        b->c.stale++;
        memset(out, 0, sizeof *out);
        return PLEXUS_EREPLAY;
    }
    if ((rc = check_replay(b, out, now_ms))) {
        if (rc == PLEXUS_EREPLAY)
            b->c.replayed++;
        else if (rc == PLEXUS_EFULL)
            b->c.table_full++;
        memset(out, 0, sizeof *out);
        return rc;
    }
    b->c.accepted++;
    return PLEXUS_OK;
}

int plexus_beacon_forget(plexus_beacon *b, const uint8_t *name, size_t len)
{
    sender *s = find_sender(b, name, len, fnv1a(name, len));
    if (!s) return PLEXUS_ENOTFOUND;
    *s = b->senders[--b->n_senders];
    return PLEXUS_OK;
}

void plexus_beacon_get_counters(const plexus_beacon *b, plexus_beacon_counters *c)
{
    *c = b->c;
    c->senders = b->n_senders;
}
