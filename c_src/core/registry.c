/*
 * The TTL registry table; see include/plexus/registry.h (global_registry parity:
 * Announce -> Handshake, TTL clamped to [30 s, 300 s], heartbeat TTL/3, lazy eviction
 * on sample/current_view, bounded size, optional Ed25519-signed announcements).
 *
 * Layout: each entry is one allocation (header + peer bytes + the encoded addresses
 * and metadata, kept in wire form so a VIEW copies them as they are). Three indexes
 * point at entries:
 *   - `slots`: open addressing by SipHash-2-4 of the peer, linear probing, deletion by
 *     backward shift (no tombstones), at most half full;
 *   - `live`: a dense array (each entry knows its position) for O(1) removal and
 *     uniform sampling by a partial Fisher-Yates shuffle;
 *   - `heap`: a binary min-heap on expires_ms (each entry knows its position), so lazy
 *     eviction pops only what has expired.
 * Every fallible step (allocation) happens before the table changes, so an error
 * leaves the table as it was.
 */
#include <sodium.h>
#include <string.h>

#include "plexus/registry.h"

typedef struct entry {
    uint64_t expires_ms;
    uint64_t last_issued_ms;
    uint64_t hash;
    uint32_t ttl_ms;
    uint32_t heap_pos, live_pos;
    uint32_t peer_len, body_len; /* body = varint n_addrs, addrs, meta (wire form) */
    uint8_t has_key;
    uint8_t pk[PLEXUS_REGISTRY_PK_BYTES];
    uint8_t src_len; /* the source that created it (0: the host); binds unkeyed entries */
    uint8_t src[PLEXUS_REGISTRY_SOURCE_MAX];
    uint8_t data[]; /* peer || body */
} entry;

/* A signed entry that went (BYE, expiry, eviction), remembered until no message
 * issued before it can pass the skew check any more: without it a signed ANNOUNCE
 * captured earlier and sent again brought the entry back for another TTL (the
 * issued_ms check only ran while the entry was there). */
typedef struct tomb {
    uint64_t hash;      /* the peer's */
    uint64_t issued_ms; /* the last message of the entry (its BYE, or its last refresh) */
    uint64_t until_ms;  /* issued_ms + max_skew_ms; 0 = free slot */
} tomb;

/* Slots a peer's tomb may take from its hash on; the table is lossy past that (the
 * tomb that would expire first is replaced): a flood of signed peers leaving needs
 * trusted keys, and forgets only the oldest. */
#define TOMB_PROBE 8
#define TOMB_CAP_MAX 131072 /* 3 MB */

struct plexus_registry {
    const plexus_alloc *a;
    tomb *tombs; /* [tomb_cap], power of two, allocated at the first signed removal */
    size_t tomb_cap;
    plexus_registry_config cfg;
    uint8_t trusted[PLEXUS_REGISTRY_TRUSTED_MAX][PLEXUS_REGISTRY_PK_BYTES];
    entry **slots; /* [slot_cap], power of two, NULL = empty */
    size_t slot_cap;
    entry **live; /* [n], capacity cap */
    entry **heap; /* [n], capacity cap */
    size_t n, cap;
    uint8_t *server_addrs; /* wire form: varint n + bytes each */
    size_t server_addrs_len;
    plexus_registry_addrs server; /* views into server_addrs */
    plexus_registry_stats st;
};

static void tomb_put(plexus_registry *r, uint64_t hash, uint64_t issued_ms)
{
    if (!r->tombs) {
        size_t want =
            2 * (r->cfg.max_entries < TOMB_CAP_MAX / 2 ? r->cfg.max_entries : TOMB_CAP_MAX / 2);
        size_t cap = 16;
        while (cap < want)
            cap *= 2;
        r->tombs = r->a->malloc(r->a->ctx, cap * sizeof *r->tombs);
        if (!r->tombs) return; /* no memory: forgotten, as a full table would */
        memset(r->tombs, 0, cap * sizeof *r->tombs);
        r->tomb_cap = cap;
    }
    size_t mask = r->tomb_cap - 1, pick = hash & mask;
    for (size_t i = 0; i < TOMB_PROBE; i++) {
        size_t j = (hash + i) & mask;
        if (r->tombs[j].until_ms == 0 || r->tombs[j].hash == hash) {
            pick = j;
            break;
        }
        if (r->tombs[j].until_ms < r->tombs[pick].until_ms) pick = j;
    }
    r->tombs[pick] = (tomb){hash, issued_ms, issued_ms + r->cfg.max_skew_ms};
}

/* Whether a signed message issued at issued_ms for the peer of `hash' is older than
 * the last message of an entry of that peer that went. */
static int tomb_refuses(const plexus_registry *r, uint64_t hash, uint64_t issued_ms,
                        uint64_t now_ms)
{
    for (size_t i = 0; r->tombs && i < TOMB_PROBE; i++) {
        const tomb *t = &r->tombs[(hash + i) & (r->tomb_cap - 1)];
        if (t->until_ms && t->hash == hash && t->until_ms >= now_ms && issued_ms <= t->issued_ms)
            return 1;
    }
    return 0;
}

static uint64_t hash_peer(const plexus_registry *r, const uint8_t *p, size_t n)
{
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, p, n, r->cfg.hash_key);
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        h = h << 8 | out[i];
    return h;
}

static size_t entry_size(const entry *e)
{
    return sizeof *e + e->peer_len + e->body_len;
}

/* ---------------------------------------------------------------- lifecycle */

int plexus_registry_new(const plexus_registry_config *cfg, const plexus_alloc *a,
                        plexus_registry **out)
{
    *out = NULL;
    if (!cfg || !a) return PLEXUS_EINVAL;
    plexus_registry_config c = *cfg;
    if (!c.max_entries) c.max_entries = PLEXUS_REGISTRY_ENTRIES_DEFAULT;
    if (!c.max_bytes) c.max_bytes = PLEXUS_REGISTRY_BYTES_DEFAULT;
    if (!c.min_ttl_ms) c.min_ttl_ms = PLEXUS_REGISTRY_TTL_MIN_MS;
    if (!c.max_ttl_ms) c.max_ttl_ms = PLEXUS_REGISTRY_TTL_MAX_MS;
    if (!c.default_ttl_ms) c.default_ttl_ms = PLEXUS_REGISTRY_TTL_DEFAULT_MS;
    if (!c.max_skew_ms) c.max_skew_ms = PLEXUS_REGISTRY_SKEW_DEFAULT_MS;
    if (c.min_ttl_ms > c.default_ttl_ms || c.default_ttl_ms > c.max_ttl_ms ||
        c.max_entries > (size_t)UINT32_MAX / 4 || c.n_trusted > PLEXUS_REGISTRY_TRUSTED_MAX ||
        (c.n_trusted && !c.trusted_keys) || c.min_ttl_ms < 3)
        return PLEXUS_EINVAL;
    plexus_registry *r = a->malloc(a->ctx, sizeof *r);
    if (!r) return PLEXUS_ENOMEM;
    memset(r, 0, sizeof *r);
    r->a = a;
    for (size_t i = 0; i < c.n_trusted; i++)
        memcpy(r->trusted[i], c.trusted_keys[i], PLEXUS_REGISTRY_PK_BYTES);
    c.trusted_keys = NULL; /* not kept: the copy above is */
    r->cfg = c;
    *out = r;
    return PLEXUS_OK;
}

void plexus_registry_free(plexus_registry *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++)
        r->a->free(r->a->ctx, r->live[i]);
    r->a->free(r->a->ctx, r->slots);
    r->a->free(r->a->ctx, r->live);
    r->a->free(r->a->ctx, r->heap);
    r->a->free(r->a->ctx, r->server_addrs);
    r->a->free(r->a->ctx, r->tombs);
    sodium_memzero(r->cfg.hash_key, sizeof r->cfg.hash_key);
    r->a->free(r->a->ctx, r);
}

int plexus_registry_set_server_addrs(plexus_registry *r, const plexus_registry_addrs *s)
{
    if (!s || s->n > PLEXUS_REGISTRY_ADDRS_MAX) return PLEXUS_EINVAL;
    plexus_buf b;
    plexus_buf_init(&b, r->a);
    int rc = plexus_disco_put_varint(&b, s->n);
    for (size_t i = 0; !rc && i < s->n; i++) {
        if (s->addr[i].n < 1 || s->addr[i].n > PLEXUS_REGISTRY_ADDR_MAX || !s->addr[i].p)
            rc = PLEXUS_EINVAL;
        else
            rc = plexus_disco_put_bytes(&b, s->addr[i].p, s->addr[i].n);
    }
    if (rc) {
        plexus_buf_free(&b);
        return rc;
    }
    r->a->free(r->a->ctx, r->server_addrs);
    r->server_addrs = b.p;
    r->server_addrs_len = b.len;
    /* Re-read our own encoding to point the views into it. */
    const uint8_t *pos = b.p, *end = b.p + b.len;
    uint64_t n;
    if (plexus_varint_read(&pos, end, &n)) n = 0;
    r->server.n = 0;
    for (size_t i = 0; i < n; i++)
        if (plexus_disco_get_bytes(&pos, end, 1, PLEXUS_REGISTRY_ADDR_MAX, &r->server.addr[i]) ==
            PLEXUS_OK)
            r->server.n++;
    return PLEXUS_OK;
}

/* ---------------------------------------------------------------- hash index */

static size_t slot_of(const plexus_registry *r, const uint8_t *p, size_t n, uint64_t h, int *found)
{
    size_t mask = r->slot_cap - 1, i = (size_t)h & mask;
    for (;;) {
        entry *e = r->slots[i];
        if (!e) {
            *found = 0;
            return i;
        }
        if (e->hash == h && e->peer_len == n && memcmp(e->data, p, n) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static entry *find(const plexus_registry *r, const uint8_t *p, size_t n, uint64_t h)
{
    if (!r->slot_cap) return NULL;
    int found;
    size_t i = slot_of(r, p, n, h, &found);
    return found ? r->slots[i] : NULL;
}

/* Removes slot i, shifting later members of the probe run back (no tombstones). */
static void slot_delete(plexus_registry *r, size_t i)
{
    size_t mask = r->slot_cap - 1, j = i;
    r->slots[i] = NULL;
    for (;;) {
        j = (j + 1) & mask;
        entry *e = r->slots[j];
        if (!e) return;
        size_t home = (size_t)e->hash & mask;
        /* e may move to i when i lies cyclically in [home, j). */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            r->slots[i] = e;
            r->slots[j] = NULL;
            i = j;
        }
    }
}

/* Room for one more entry in every index (allocations only; no visible change). */
static int reserve_one(plexus_registry *r)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        if (cap > r->cfg.max_entries) cap = r->cfg.max_entries;
        if (cap <= r->n) return PLEXUS_EFULL;
        entry **l = r->a->realloc(r->a->ctx, r->live, cap * sizeof *l);
        if (!l) return PLEXUS_ENOMEM;
        r->live = l;
        entry **h = r->a->realloc(r->a->ctx, r->heap, cap * sizeof *h);
        if (!h) return PLEXUS_ENOMEM;
        r->heap = h;
        r->cap = cap;
    }
    if ((r->n + 1) * 2 > r->slot_cap) {
        size_t cap = r->slot_cap ? r->slot_cap * 2 : 32;
        entry **s = r->a->malloc(r->a->ctx, cap * sizeof *s);
        if (!s) return PLEXUS_ENOMEM;
        memset(s, 0, cap * sizeof *s);
        for (size_t i = 0; i < r->slot_cap; i++) {
            entry *e = r->slots[i];
            if (!e) continue;
            size_t j = (size_t)e->hash & (cap - 1);
            while (s[j])
                j = (j + 1) & (cap - 1);
            s[j] = e;
        }
        r->a->free(r->a->ctx, r->slots);
        r->slots = s;
        r->slot_cap = cap;
    }
    return PLEXUS_OK;
}

/* ---------------------------------------------------------------- expiry heap */

static void heap_set(plexus_registry *r, size_t i, entry *e)
{
    r->heap[i] = e;
    e->heap_pos = (uint32_t)i;
}

static void sift_up(plexus_registry *r, size_t i)
{
    entry *e = r->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (r->heap[p]->expires_ms <= e->expires_ms) break;
        heap_set(r, i, r->heap[p]);
        i = p;
    }
    heap_set(r, i, e);
}

static void sift_down(plexus_registry *r, size_t i)
{
    entry *e = r->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        uint64_t best = e->expires_ms;
        if (l < r->n && r->heap[l]->expires_ms < best) {
            m = l;
            best = r->heap[l]->expires_ms;
        }
        if (l + 1 < r->n && r->heap[l + 1]->expires_ms < best) m = l + 1;
        if (m == i) break;
        heap_set(r, i, r->heap[m]);
        i = m;
    }
    heap_set(r, i, e);
}

/* ---------------------------------------------------------------- entries */

/* Removes e from every index and frees it. */
static void remove_entry(plexus_registry *r, entry *e)
{
    if (e->has_key) tomb_put(r, e->hash, e->last_issued_ms);
    int found;
    size_t s = slot_of(r, e->data, e->peer_len, e->hash, &found);
    if (found) slot_delete(r, s);
    size_t lp = e->live_pos, hp = e->heap_pos, last = r->n - 1;
    if (lp != last) {
        r->live[lp] = r->live[last];
        r->live[lp]->live_pos = (uint32_t)lp;
    }
    r->n--;
    if (hp != last) { /* move the last heap element into the hole, then restore order */
        entry *moved = r->heap[last];
        heap_set(r, hp, moved);
        if (hp > 0 && r->heap[(hp - 1) / 2]->expires_ms > moved->expires_ms)
            sift_up(r, hp);
        else
            sift_down(r, hp);
    }
    r->st.bytes -= entry_size(e);
    r->a->free(r->a->ctx, e);
}

size_t plexus_registry_evict(plexus_registry *r, uint64_t now_ms)
{
    size_t k = 0;
    while (r->n && r->heap[0]->expires_ms <= now_ms) {
        remove_entry(r, r->heap[0]);
        k++;
    }
    r->st.evicted += k;
    return k;
}

size_t plexus_registry_size(const plexus_registry *r)
{
    return r->n;
}

size_t plexus_registry_capacity(const plexus_registry *r)
{
    return r->cfg.max_entries;
}

/* Builds a new entry for m (not yet in any index). */
static int make_entry(plexus_registry *r, const plexus_registry_msg *m, uint64_t h, entry **out)
{
    plexus_buf body;
    plexus_buf_init(&body, r->a);
    int rc = plexus_disco_put_varint(&body, m->addrs.n);
    for (size_t i = 0; !rc && i < m->addrs.n; i++)
        rc = plexus_disco_put_bytes(&body, m->addrs.addr[i].p, m->addrs.addr[i].n);
    if (!rc) rc = plexus_disco_put_meta(&body, &m->meta);
    if (rc) {
        plexus_buf_free(&body);
        return rc;
    }
    entry *e = r->a->malloc(r->a->ctx, sizeof *e + m->peer.n + body.len);
    if (!e) {
        plexus_buf_free(&body);
        return PLEXUS_ENOMEM;
    }
    memset(e, 0, sizeof *e);
    e->hash = h;
    e->src_len = (uint8_t)m->source.n; /* <= SOURCE_MAX: checked by the callers */
    if (m->source.n) memcpy(e->src, m->source.p, m->source.n);
    e->peer_len = (uint32_t)m->peer.n;
    e->body_len = (uint32_t)body.len;
    memcpy(e->data, m->peer.p, m->peer.n);
    memcpy(e->data + m->peer.n, body.p, body.len);
    plexus_buf_free(&body);
    *out = e;
    return PLEXUS_OK;
}

static uint32_t clamp_ttl(const plexus_registry *r, uint64_t want)
{
    if (want == 0) return r->cfg.default_ttl_ms;
    if (want < r->cfg.min_ttl_ms) return r->cfg.min_ttl_ms;
    if (want > r->cfg.max_ttl_ms) return r->cfg.max_ttl_ms;
    return (uint32_t)want;
}

static int trusted(const plexus_registry *r, const uint8_t *pk)
{
    if (!r->cfg.n_trusted) return 1;
    for (size_t i = 0; i < r->cfg.n_trusted; i++)
        if (sodium_memcmp(r->trusted[i], pk, PLEXUS_REGISTRY_PK_BYTES) == 0) return 1;
    return 0;
}

/* Signature, trust, skew and key-binding rules shared by announce and bye. */
static int check_auth(plexus_registry *r, const plexus_registry_msg *m, const entry *old,
                      uint64_t h, uint64_t now_ms)
{
    if (m->is_signed) {
        if (plexus_registry_msg_verify(m) != PLEXUS_OK || !trusted(r, m->public_key))
            return PLEXUS_EAUTH;
        uint64_t skew = m->issued_ms > now_ms ? m->issued_ms - now_ms : now_ms - m->issued_ms;
        if (skew > r->cfg.max_skew_ms) return PLEXUS_EREPLAY;
        if (!(old && old->has_key) && tomb_refuses(r, h, m->issued_ms, now_ms))
            return PLEXUS_EREPLAY;
    } else if (r->cfg.require_signed) {
        return PLEXUS_EAUTH;
    }
    if (old && old->has_key) {
        if (!m->is_signed || sodium_memcmp(old->pk, m->public_key, PLEXUS_REGISTRY_PK_BYTES))
            return PLEXUS_EAUTH;
        if (m->issued_ms <= old->last_issued_ms) return PLEXUS_EREPLAY;
    } else if (old && m->source.n &&
               (old->src_len != m->source.n || memcmp(old->src, m->source.p, m->source.n))) {
        /* an unkeyed entry belongs to its source: nobody else may remove or redirect it */
        r->st.refused_source++;
        return PLEXUS_EAUTH;
    }
    return PLEXUS_OK;
}

static void count_refusal(plexus_registry *r, int rc)
{
    if (rc == PLEXUS_EAUTH)
        r->st.refused_auth++;
    else if (rc == PLEXUS_EREPLAY)
        r->st.refused_replay++;
    else if (rc == PLEXUS_EFULL)
        r->st.refused_full++;
}

int plexus_registry_announce(plexus_registry *r, const plexus_registry_msg *m, uint64_t now_ms,
                             plexus_registry_grant *grant)
{
    if (!m || m->type != PLEXUS_REGISTRY_ANNOUNCE || m->source.n > PLEXUS_REGISTRY_SOURCE_MAX)
        return PLEXUS_EINVAL;
    uint64_t h = hash_peer(r, m->peer.p, m->peer.n);
    entry *old = find(r, m->peer.p, m->peer.n, h);
    if (old && old->expires_ms <= now_ms) { /* expired: as if absent (lazy eviction) */
        remove_entry(r, old);
        r->st.evicted++;
        old = NULL;
    }
    int rc = check_auth(r, m, old, h, now_ms);
    if (rc) {
        count_refusal(r, rc);
        return rc;
    }
    if (!old && r->n >= r->cfg.max_entries && plexus_registry_evict(r, now_ms) == 0) {
        r->st.refused_full++;
        return PLEXUS_EFULL;
    }
    if (!old && (rc = reserve_one(r))) {
        count_refusal(r, rc);
        return rc;
    }
    entry *e;
    if ((rc = make_entry(r, m, h, &e))) return rc;
    /* the bytes bound, after what has expired is gone: a refresh may not grow past it
     * either (old's bytes are given back when e replaces it) */
    size_t old_size = old ? entry_size(old) : 0; /* old has not expired: evict keeps it */
    if (r->st.bytes - old_size + entry_size(e) > r->cfg.max_bytes) {
        (void)plexus_registry_evict(r, now_ms);
        if (r->st.bytes - old_size + entry_size(e) > r->cfg.max_bytes) {
            r->a->free(r->a->ctx, e);
            r->st.refused_full++;
            return PLEXUS_EFULL;
        }
    }
    uint32_t ttl = clamp_ttl(r, m->ttl_ms);
    e->ttl_ms = ttl;
    e->expires_ms = now_ms + ttl;
    e->last_issued_ms = m->issued_ms;
    if (m->is_signed) {
        e->has_key = 1;
        memcpy(e->pk, m->public_key, PLEXUS_REGISTRY_PK_BYTES);
    }
    int found;
    size_t s = slot_of(r, e->data, e->peer_len, h, &found);
    r->slots[s] = e;
    if (old) { /* take old's places, then fix the heap for the new expiry */
        e->live_pos = old->live_pos;
        r->live[e->live_pos] = e;
        heap_set(r, old->heap_pos, e);
        sift_down(r, e->heap_pos);
        sift_up(r, e->heap_pos);
        r->st.bytes -= entry_size(old);
        r->a->free(r->a->ctx, old);
        r->st.refreshed++;
    } else {
        e->live_pos = (uint32_t)r->n;
        r->live[r->n] = e;
        heap_set(r, r->n, e);
        r->n++;
        sift_up(r, e->heap_pos);
        r->st.created++;
    }
    r->st.bytes += entry_size(e);
    r->st.announces++;
    if (grant) {
        grant->ttl_ms = ttl;
        grant->heartbeat_ms = ttl / 3;
        grant->is_new = old == NULL;
    }
    return PLEXUS_OK;
}

int plexus_registry_bye(plexus_registry *r, const plexus_registry_msg *m, uint64_t now_ms)
{
    if (!m || m->type != PLEXUS_REGISTRY_BYE) return PLEXUS_EINVAL;
    uint64_t h = hash_peer(r, m->peer.p, m->peer.n);
    entry *old = find(r, m->peer.p, m->peer.n, h);
    if (!old) return PLEXUS_ENOTFOUND;
    int rc = check_auth(r, m, old, h, now_ms);
    if (rc) {
        count_refusal(r, rc);
        return rc;
    }
    if (old->has_key) old->last_issued_ms = m->issued_ms; /* its tomb dates from the BYE */
    remove_entry(r, old);
    r->st.byes++;
    return PLEXUS_OK;
}

/* ---------------------------------------------------------------- reading */

static void fill_view(const entry *e, uint64_t now_ms, plexus_registry_entry *v)
{
    const uint8_t *pos = e->data + e->peer_len, *end = pos + e->body_len;
    uint64_t n = 0;
    memset(v, 0, sizeof *v);
    v->peer.p = e->data;
    v->peer.n = e->peer_len;
    /* Our own encoding of validated input: these reads cannot fail. */
    if (plexus_varint_read(&pos, end, &n)) n = 0;
    for (size_t i = 0; i < n && i < PLEXUS_REGISTRY_ADDRS_MAX; i++)
        if (plexus_disco_get_bytes(&pos, end, 1, PLEXUS_REGISTRY_ADDR_MAX, &v->addrs.addr[i]) ==
            PLEXUS_OK)
            v->addrs.n++;
    if (plexus_disco_get_meta(&pos, end, &v->meta) != PLEXUS_OK) v->meta.n = 0;
    v->remaining_ttl_ms = e->expires_ms > now_ms ? e->expires_ms - now_ms : 0;
}

int plexus_registry_lookup(plexus_registry *r, const uint8_t *peer, size_t len, uint64_t now_ms,
                           plexus_registry_entry *v)
{
    entry *e = find(r, peer, len, hash_peer(r, peer, len));
    if (!e || e->expires_ms <= now_ms) return PLEXUS_ENOTFOUND;
    fill_view(e, now_ms, v);
    return PLEXUS_OK;
}

int plexus_registry_view(plexus_registry *r, uint64_t now_ms, plexus_registry_visit fn, void *ctx)
{
    plexus_registry_evict(r, now_ms);
    plexus_registry_entry v;
    for (size_t i = 0; i < r->n; i++) {
        fill_view(r->live[i], now_ms, &v);
        int stop = fn(ctx, &v);
        if (stop) return stop;
    }
    return PLEXUS_OK;
}

int plexus_registry_sample(plexus_registry *r, uint64_t now_ms, size_t k, plexus_registry_rand rand,
                           void *rand_ctx, plexus_registry_visit fn, void *ctx)
{
    plexus_registry_evict(r, now_ms);
    if (k >= r->n || !rand) {
        if (k > r->n) k = r->n;
        plexus_registry_entry v;
        for (size_t i = 0; i < k; i++) {
            fill_view(r->live[i], now_ms, &v);
            int stop = fn(ctx, &v);
            if (stop) return stop;
        }
        return PLEXUS_OK;
    }
    /* Partial Fisher-Yates over `live`: position i gets a uniform pick of [i, n). The
     * order of `live` carries no meaning, so shuffling it in place is free. */
    plexus_registry_entry v;
    for (size_t i = 0; i < k; i++) {
        size_t j = i + (size_t)(rand(rand_ctx) % (r->n - i));
        entry *t = r->live[i];
        r->live[i] = r->live[j];
        r->live[j] = t;
        r->live[i]->live_pos = (uint32_t)i;
        r->live[j]->live_pos = (uint32_t)j;
        fill_view(r->live[i], now_ms, &v);
        int stop = fn(ctx, &v);
        if (stop) return stop;
    }
    return PLEXUS_OK;
}

/* ---------------------------------------------------------------- one server step */

typedef struct view_acc {
    plexus_buf *b;
    uint64_t n;
    size_t limit;
    int rc;
} view_acc;

static int add_view_entry(void *ctx, const plexus_registry_entry *v)
{
    view_acc *acc = ctx;
    size_t before = acc->b->len;
    int rc = plexus_disco_put_bytes(acc->b, v->peer.p, v->peer.n);
    if (!rc) rc = plexus_disco_put_varint(acc->b, v->addrs.n);
    for (size_t i = 0; !rc && i < v->addrs.n; i++)
        rc = plexus_disco_put_bytes(acc->b, v->addrs.addr[i].p, v->addrs.addr[i].n);
    if (!rc) rc = plexus_disco_put_meta(acc->b, &v->meta);
    if (!rc) rc = plexus_disco_put_varint(acc->b, v->remaining_ttl_ms);
    if (rc) {
        acc->rc = rc;
        return 1;
    }
    if (acc->b->len > acc->limit) { /* does not fit: leave it out and stop */
        acc->b->len = before;
        return 1;
    }
    acc->n++;
    return 0;
}

static int reply_view(plexus_registry *r, const plexus_registry_msg *m, uint64_t now_ms,
                      plexus_registry_rand rand, void *rand_ctx, plexus_buf *reply)
{
    plexus_buf entries;
    plexus_buf_init(&entries, r->a);
    /* Header is at most 5 + 3 varints; keep the whole reply under the datagram bound. */
    view_acc acc = {&entries, 0, PLEXUS_REGISTRY_MSG_MAX - 5 - 3 * PLEXUS_VARINT_MAX, 0};
    (void)plexus_registry_sample(r, now_ms, (size_t)m->max_entries, rand, rand_ctx, add_view_entry,
                                 &acc);
    int rc = acc.rc;
    const uint8_t head[5] = {'P', 'X', 'R', PLEXUS_REGISTRY_VERSION, PLEXUS_REGISTRY_VIEW};
    if (!rc) rc = plexus_buf_put(reply, head, sizeof head);
    if (!rc) rc = plexus_disco_put_varint(reply, m->request_id);
    if (!rc) rc = plexus_disco_put_varint(reply, r->n);
    if (!rc) rc = plexus_disco_put_varint(reply, acc.n);
    if (!rc) rc = plexus_buf_put(reply, entries.p, entries.len);
    plexus_buf_free(&entries);
    return rc;
}

/* The cookie of a source for a period: BLAKE2b-128 keyed with the host's secret. */
static void cookie_of(const plexus_registry *r, const uint8_t *src, size_t src_len, uint64_t period,
                      uint8_t out[PLEXUS_REGISTRY_COOKIE_BYTES])
{
    crypto_generichash_state st;
    uint8_t p[8];
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(period >> (8 * i));
    crypto_generichash_init(&st, r->cfg.cookie_key, sizeof r->cfg.cookie_key,
                            PLEXUS_REGISTRY_COOKIE_BYTES);
    crypto_generichash_update(&st, src, src_len);
    crypto_generichash_update(&st, p, sizeof p);
    crypto_generichash_final(&st, out, PLEXUS_REGISTRY_COOKIE_BYTES);
}

/* The source proved it receives at its address: its cookie of this or the last period. */
static int cookie_valid(const plexus_registry *r, const plexus_registry_msg *m, uint64_t now_ms)
{
    uint8_t c[PLEXUS_REGISTRY_COOKIE_BYTES];
    uint64_t period = now_ms / PLEXUS_REGISTRY_COOKIE_PERIOD_MS;
    if (!m->source.n) return 1; /* the host itself */
    if (!m->cookie) return 0;
    for (uint64_t k = 0; k < 2 && k <= period; k++) {
        cookie_of(r, m->source.p, m->source.n, period - k, c);
        if (sodium_memcmp(c, m->cookie, sizeof c) == 0) return 1;
    }
    return 0;
}

int plexus_registry_handle(plexus_registry *r, const uint8_t *in, size_t n, const uint8_t *src,
                           size_t src_len, uint64_t now_ms, plexus_registry_rand rand,
                           void *rand_ctx, plexus_buf *reply, plexus_registry_result *res)
{
    plexus_registry_msg m;
    /* the host itself, or a VIEW to a source that proved its address */
    int rc, verified = src_len == 0;
    memset(res, 0, sizeof *res);
    reply->len = 0;
    if (src_len > PLEXUS_REGISTRY_SOURCE_MAX || (src_len && !src)) return PLEXUS_EINVAL;
    if ((rc = plexus_registry_msg_decode(in, n, &m))) {
        r->st.malformed++;
        res->outcome = PLEXUS_REGISTRY_DROPPED;
        res->err = rc;
        return PLEXUS_OK;
    }
    m.source = (plexus_bytes){src, src_len};
    switch (m.type) {
    case PLEXUS_REGISTRY_ANNOUNCE:
        res->peer = m.peer;
        rc = plexus_registry_announce(r, &m, now_ms, &res->grant);
        if (rc == PLEXUS_OK) {
            res->outcome = PLEXUS_REGISTRY_ANNOUNCED;
            rc = plexus_registry_encode_handshake(reply, m.request_id, res->grant.ttl_ms,
                                                  res->grant.heartbeat_ms, &r->server);
            if (!rc && !verified && reply->len > n) { /* no room for the addresses */
                reply->len = 0;
                rc = plexus_registry_encode_handshake(reply, m.request_id, res->grant.ttl_ms,
                                                      res->grant.heartbeat_ms, NULL);
            }
        } else {
            res->outcome = PLEXUS_REGISTRY_REFUSED_OUT;
            res->err = rc;
            rc = plexus_registry_encode_refused(reply, m.request_id, rc);
        }
        break;
    case PLEXUS_REGISTRY_QUERY:
        if (cookie_valid(r, &m, now_ms)) {
            r->st.queries++;
            res->outcome = PLEXUS_REGISTRY_QUERIED;
            verified = 1;
            rc = reply_view(r, &m, now_ms, rand, rand_ctx, reply);
        } else {
            uint8_t c[PLEXUS_REGISTRY_COOKIE_BYTES];
            cookie_of(r, src, src_len, now_ms / PLEXUS_REGISTRY_COOKIE_PERIOD_MS, c);
            res->outcome = PLEXUS_REGISTRY_COOKIE_OUT;
            rc = plexus_registry_encode_cookie(reply, m.request_id, c);
            if (!rc && reply->len <= n)
                r->st.cookies++;
            else
                r->st.unverified++; /* too short to carry the cookie back: no answer */
        }
        break;
    case PLEXUS_REGISTRY_BYE:
        res->peer = m.peer;
        rc = plexus_registry_bye(r, &m, now_ms);
        res->outcome = rc == PLEXUS_OK ? PLEXUS_REGISTRY_LEFT : PLEXUS_REGISTRY_IGNORED;
        res->err = rc;
        rc = PLEXUS_OK;
        break;
    default: /* replies sent to a server: not ours to act on */
        res->outcome = PLEXUS_REGISTRY_IGNORED;
        res->err = PLEXUS_ETYPE;
        rc = PLEXUS_OK;
    }
    /* The one anti-amplification rule: nothing longer than the datagram goes to a
     * source that has not proved its address. */
    if (rc || (!verified && reply->len > n)) reply->len = 0;
    return rc;
}

void plexus_registry_get_stats(const plexus_registry *r, plexus_registry_stats *s)
{
    *s = r->st;
    s->entries = r->n;
}
