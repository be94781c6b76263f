/*
 * TTL registry tests (c_src/core/registry.c, registry_msg.c; doc/DESIGN.md §5,
 * global_registry parity): Announce -> Handshake with the TTL clamped to [30 s, 300 s]
 * (default 90 s) and heartbeat TTL/3, lazy eviction on sample/view with injected time
 * (no sleeps), the size bound, Ed25519-signed announcements (key binding, replay,
 * skew, trusted keys), the strict wire decoder, a randomized check against a model,
 * and every allocation failure.
 */
#include <sodium.h>

#include "harness.h"
#include "plexus/registry.h"

#define S(s) (const uint8_t *)(s), strlen(s)
#define B(s) ((plexus_bytes){(const uint8_t *)(s), strlen(s)})

static uint64_t rng_state = 42;
static uint64_t rnd(void *ctx)
{
    (void)ctx;
    return test_rand(&rng_state);
}

static plexus_registry *mk_cfg(plexus_registry_config *c)
{
    plexus_registry *r = NULL;
    CHECK_EQ_INT(plexus_registry_new(c, &test_alloc, &r), PLEXUS_OK);
    return r;
}

static plexus_registry *mk(size_t max)
{
    plexus_registry_config c = {0};
    c.max_entries = max;
    return mk_cfg(&c);
}

/* Encodes an announce and applies it through the server step; returns the outcome's
 * error (0 = announced) and the decoded reply in *reply. */
static int announce_full(plexus_registry *r, const char *peer, uint64_t ttl, uint64_t now,
                         uint64_t issued, const uint8_t *seed, plexus_registry_msg *reply,
                         plexus_buf *out)
{
    plexus_buf req;
    plexus_buf_init(&req, &test_alloc);
    plexus_registry_addrs addrs = {1, {B("127.0.0.1:4370")}};
    plexus_disco_meta meta = {1, {{B("zone"), B("a")}}};
    CHECK_EQ_INT(
        plexus_registry_encode_announce(&req, 7, B(peer), &addrs, &meta, ttl, issued, seed),
        PLEXUS_OK);
    plexus_registry_result res;
    CHECK_EQ_INT(plexus_registry_handle(r, req.p, req.len, NULL, 0, now, rnd, NULL, out, &res),
                 PLEXUS_OK);
    plexus_buf_free(&req);
    CHECK(out->len > 0);
    CHECK_EQ_INT(plexus_registry_msg_decode(out->p, out->len, reply), PLEXUS_OK);
    CHECK_EQ_INT(reply->request_id, 7);
    if (res.outcome == PLEXUS_REGISTRY_ANNOUNCED) {
        CHECK_EQ_INT(reply->type, PLEXUS_REGISTRY_HANDSHAKE);
        return 0;
    }
    CHECK_EQ_INT(res.outcome, PLEXUS_REGISTRY_REFUSED_OUT);
    CHECK_EQ_INT(reply->type, PLEXUS_REGISTRY_REFUSED);
    CHECK_EQ_INT(reply->reason, res.err);
    return res.err;
}

static int announce(plexus_registry *r, const char *peer, uint64_t ttl, uint64_t now)
{
    plexus_registry_msg reply;
    plexus_buf out;
    plexus_buf_init(&out, &test_alloc);
    int rc = announce_full(r, peer, ttl, now, now, NULL, &reply, &out);
    plexus_buf_free(&out);
    return rc;
}

static int count_visit(void *ctx, const plexus_registry_entry *e)
{
    (void)e;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t view_count(plexus_registry *r, uint64_t now)
{
    size_t n = 0;
    CHECK_EQ_INT(plexus_registry_view(r, now, count_visit, &n), PLEXUS_OK);
    return n;
}

static void test_config(void)
{
    plexus_registry *r = NULL;
    plexus_registry_config c = {0};
    c.min_ttl_ms = 100000; /* above the default of 90 s */
    CHECK_EQ_INT(plexus_registry_new(&c, &test_alloc, &r), PLEXUS_EINVAL);
    c = (plexus_registry_config){0};
    c.n_trusted = 1; /* without keys */
    CHECK_EQ_INT(plexus_registry_new(&c, &test_alloc, &r), PLEXUS_EINVAL);
    c.n_trusted = PLEXUS_REGISTRY_TRUSTED_MAX + 1;
    CHECK_EQ_INT(plexus_registry_new(&c, &test_alloc, &r), PLEXUS_EINVAL);
    CHECK(r == NULL);
    plexus_registry_free(NULL);
}

static void test_announce_handshake(void)
{
    plexus_registry *r = mk(0);
    plexus_registry_addrs srv = {2, {B("10.0.0.1:45893"), B("registry@h")}};
    CHECK_EQ_INT(plexus_registry_set_server_addrs(r, &srv), PLEXUS_OK);
    plexus_registry_msg hs;
    plexus_buf out;
    plexus_buf_init(&out, &test_alloc);
    CHECK_EQ_INT(announce_full(r, "a@h", 0, 1000, 1000, NULL, &hs, &out), 0);
    CHECK_EQ_INT(hs.ttl_ms, 90000);
    CHECK_EQ_INT(hs.heartbeat_ms, 30000);
    CHECK_EQ_INT(hs.addrs.n, 2);
    CHECK(hs.addrs.addr[1].n == 10 && memcmp(hs.addrs.addr[1].p, "registry@h", 10) == 0);
    plexus_buf_free(&out);

    plexus_registry_entry e;
    CHECK_EQ_INT(plexus_registry_lookup(r, S("a@h"), 1000, &e), PLEXUS_OK);
    CHECK_EQ_INT(e.addrs.n, 1);
    CHECK(e.addrs.addr[0].n == 14 && memcmp(e.addrs.addr[0].p, "127.0.0.1:4370", 14) == 0);
    CHECK_EQ_INT(e.meta.n, 1);
    CHECK(e.meta.kv[0].key.n == 4 && memcmp(e.meta.kv[0].val.p, "a", 1) == 0);
    CHECK_EQ_INT(e.remaining_ttl_ms, 90000);
    CHECK_EQ_INT(plexus_registry_lookup(r, S("b@h"), 1000, &e), PLEXUS_ENOTFOUND);
    plexus_registry_stats st;
    plexus_registry_get_stats(r, &st);
    CHECK_EQ_INT(st.created, 1);
    CHECK_EQ_INT(st.entries, 1);
    CHECK(st.bytes > 0);
    plexus_registry_free(r);
}

static void test_ttl_clamp(void)
{
    plexus_registry *r = mk(0);
    struct {
        uint64_t want, got;
    } cases[] = {{0, 90000},       {1, 30000},       {29999, 30000},   {30000, 30000},
                 {120000, 120000}, {300000, 300000}, {300001, 300000}, {UINT32_MAX, 300000}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        plexus_registry_msg hs;
        plexus_buf out;
        plexus_buf_init(&out, &test_alloc);
        CHECK_EQ_INT(announce_full(r, "t@h", cases[i].want, 0, 0, NULL, &hs, &out), 0);
        CHECK_EQ_INT(hs.ttl_ms, cases[i].got);
        CHECK_EQ_INT(hs.heartbeat_ms, cases[i].got / 3);
        plexus_buf_free(&out);
    }
    plexus_registry_free(r);
    /* a server may narrow the range */
    plexus_registry_config c = {0};
    c.min_ttl_ms = 40000;
    c.max_ttl_ms = 60000;
    c.default_ttl_ms = 50000;
    r = mk_cfg(&c);
    plexus_registry_grant g;
    plexus_buf req;
    plexus_buf_init(&req, &test_alloc);
    CHECK_EQ_INT(plexus_registry_encode_announce(&req, 1, B("x@h"), NULL, NULL, 1000, 0, NULL),
                 PLEXUS_OK);
    plexus_registry_msg m;
    CHECK_EQ_INT(plexus_registry_msg_decode(req.p, req.len, &m), PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_announce(r, &m, 0, &g), PLEXUS_OK);
    CHECK_EQ_INT(g.ttl_ms, 40000);
    CHECK_EQ_INT(g.is_new, 1);
    CHECK_EQ_INT(plexus_registry_announce(r, &m, 1, &g), PLEXUS_OK);
    CHECK_EQ_INT(g.is_new, 0);
    plexus_buf_free(&req);
    plexus_registry_free(r);
}

/* Injected time: entries live exactly their TTL; heartbeats extend them. */
static void test_lazy_eviction(void)
{
    plexus_registry *r = mk(0);
    CHECK_EQ_INT(announce(r, "a@h", 30000, 0), 0);
    CHECK_EQ_INT(announce(r, "b@h", 60000, 0), 0);
    CHECK_EQ_INT(announce(r, "c@h", 0, 0), 0); /* 90 s */
    CHECK_EQ_INT(view_count(r, 29999), 3);
    CHECK_EQ_INT(view_count(r, 30000), 2);             /* a expired at 30000 */
    CHECK_EQ_INT(announce(r, "b@h", 60000, 50000), 0); /* heartbeat: now until 110000 */
    size_t n = 0;
    CHECK_EQ_INT(plexus_registry_sample(r, 95000, 10, rnd, NULL, count_visit, &n), PLEXUS_OK);
    CHECK_EQ_INT(n, 1); /* c gone at 90000, b alive */
    CHECK_EQ_INT(plexus_registry_size(r), 1);
    plexus_registry_entry e;
    CHECK_EQ_INT(plexus_registry_lookup(r, S("b@h"), 95000, &e), PLEXUS_OK);
    CHECK_EQ_INT(e.remaining_ttl_ms, 15000);
    CHECK_EQ_INT(plexus_registry_lookup(r, S("b@h"), 110000, &e), PLEXUS_ENOTFOUND);
    CHECK_EQ_INT(plexus_registry_evict(r, 110000), 1);
    plexus_registry_stats st;
    plexus_registry_get_stats(r, &st);
    CHECK_EQ_INT(st.evicted, 3);
    CHECK_EQ_INT(st.refreshed, 1);
    CHECK_EQ_INT(st.entries, 0);
    CHECK_EQ_INT(st.bytes, 0);
    plexus_registry_free(r);
}

static void test_bounded(void)
{
    plexus_registry *r = mk(3);
    CHECK_EQ_INT(announce(r, "a@h", 30000, 0), 0);
    CHECK_EQ_INT(announce(r, "b@h", 60000, 0), 0);
    CHECK_EQ_INT(announce(r, "c@h", 60000, 0), 0);
    CHECK_EQ_INT(announce(r, "d@h", 60000, 10), PLEXUS_EFULL);
    CHECK_EQ_INT(announce(r, "a@h", 30000, 20), 0); /* a refresh needs no room */
    /* once a expires, the full table makes room by evicting it */
    CHECK_EQ_INT(announce(r, "d@h", 60000, 30020), 0);
    CHECK_EQ_INT(view_count(r, 30020), 3);
    /* a flood of new names: bounded, counted, nobody already in is lost */
    int refused = 0;
    for (int i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "flood%d@h", i);
        refused += announce(r, name, 0, 30030) == PLEXUS_EFULL;
    }
    CHECK_EQ_INT(refused, 1000);
    CHECK_EQ_INT(view_count(r, 30030), 3);
    plexus_registry_stats st;
    plexus_registry_get_stats(r, &st);
    CHECK_EQ_INT(st.refused_full, 1001);
    plexus_registry_free(r);
}

/* Entries as big as the format allows (8 addresses of 255 bytes, 16 metadata pairs):
 * the table stops at max_bytes, not at max_entries. One client once filled 100,000
 * of them: 734 MB for a table documented at 14 MB. */
static int announce_big(plexus_registry *r, int i, uint64_t now)
{
    char peer[32], addr[8][256], key[16][65], val[16][256];
    snprintf(peer, sizeof peer, "big%d@h", i);
    plexus_registry_addrs addrs;
    memset(&addrs, 0, sizeof addrs);
    addrs.n = PLEXUS_REGISTRY_ADDRS_MAX;
    for (int k = 0; k < PLEXUS_REGISTRY_ADDRS_MAX; k++) {
        memset(addr[k], 'a' + k, 255);
        addr[k][255] = 0;
        addrs.addr[k] = B(addr[k]);
    }
    plexus_disco_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.n = PLEXUS_DISCO_META_MAX;
    for (int k = 0; k < PLEXUS_DISCO_META_MAX; k++) {
        snprintf(key[k], sizeof key[k], "k%02d", k);
        memset(val[k], 'v', 255);
        val[k][255] = 0;
        meta.kv[k].key = B(key[k]);
        meta.kv[k].val = B(val[k]);
    }
    plexus_buf req, out;
    plexus_buf_init(&req, &test_alloc);
    plexus_buf_init(&out, &test_alloc);
    CHECK_EQ_INT(plexus_registry_encode_announce(&req, 9, B(peer), &addrs, &meta, 60000, now, NULL),
                 PLEXUS_OK);
    plexus_registry_result res;
    CHECK_EQ_INT(plexus_registry_handle(r, req.p, req.len, NULL, 0, now, rnd, NULL, &out, &res),
                 PLEXUS_OK);
    plexus_buf_free(&req);
    plexus_buf_free(&out);
    return res.outcome == PLEXUS_REGISTRY_ANNOUNCED ? 0 : res.err;
}

static void test_bytes_bounded(void)
{
    plexus_registry_config c = {0};
    c.max_bytes = 1024 * 1024;
    plexus_registry *r = mk_cfg(&c);
    int refused = 0, i;
    for (i = 0; i < 1000; i++)
        refused += announce_big(r, i, 0) == PLEXUS_EFULL;
    plexus_registry_stats st;
    plexus_registry_get_stats(r, &st);
    CHECK(st.bytes <= c.max_bytes);
    CHECK(st.bytes > c.max_bytes / 2); /* it did fill up */
    CHECK(refused > 800);
    CHECK_EQ_INT(st.refused_full, (uint64_t)refused);
    /* once those expire, their room is free again */
    CHECK_EQ_INT(announce_big(r, 5000, 10), PLEXUS_EFULL);
    CHECK_EQ_INT(announce_big(r, 5000, 60001), 0);
    plexus_registry_free(r);
    /* the default bound */
    plexus_registry_config d = {0};
    r = mk_cfg(&d);
    for (i = 0; i < 20000; i++)
        if (announce_big(r, i, 0) == PLEXUS_EFULL) break;
    plexus_registry_get_stats(r, &st);
    CHECK(i < 20000);
    CHECK(st.bytes <= PLEXUS_REGISTRY_BYTES_DEFAULT);
    plexus_registry_free(r);
}

/* A signed ANNOUNCE captured and sent again after its entry went (a BYE, or its TTL)
 * is a replay: it used to bring the entry back for another TTL, because the issued_ms
 * check only ran while the entry was there. A fresh one still comes in. */
static void test_replay_after_removal(void)
{
    uint8_t seed[32];
    memset(seed, 7, 32);
    plexus_registry_config c = {0};
    plexus_registry *r = mk_cfg(&c);
    plexus_registry_msg reply, m;
    plexus_buf out, req;
    plexus_buf_init(&out, &test_alloc);
    plexus_buf_init(&req, &test_alloc);
    const uint64_t T = 1700000000000ULL;
    CHECK_EQ_INT(announce_full(r, "s@h", 90000, T, T, seed, &reply, &out), 0);
    CHECK_EQ_INT(plexus_registry_encode_bye(&req, 2, B("s@h"), T + 1000, seed), PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_msg_decode(req.p, req.len, &m), PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_bye(r, &m, T + 1000), PLEXUS_OK);
    CHECK_EQ_INT(view_count(r, T + 2000), 0);
    /* the captured announce, and one issued before the BYE: refused */
    CHECK_EQ_INT(announce_full(r, "s@h", 90000, T + 2000, T, seed, &reply, &out), PLEXUS_EREPLAY);
    CHECK_EQ_INT(announce_full(r, "s@h", 90000, T + 2000, T + 999, seed, &reply, &out),
                 PLEXUS_EREPLAY);
    CHECK_EQ_INT(view_count(r, T + 2000), 0);
    /* the node itself, later */
    CHECK_EQ_INT(announce_full(r, "s@h", 30000, T + 3000, T + 3000, seed, &reply, &out), 0);
    /* expiry: after its TTL the last refresh, sent again, stays out */
    CHECK_EQ_INT(announce_full(r, "s@h", 30000, T + 40000, T + 3000, seed, &reply, &out),
                 PLEXUS_EREPLAY);
    CHECK_EQ_INT(view_count(r, T + 40000), 0);
    CHECK_EQ_INT(announce_full(r, "s@h", 30000, T + 40000, T + 40000, seed, &reply, &out), 0);
    plexus_buf_free(&req);
    plexus_buf_free(&out);
    plexus_registry_free(r);
}

static void test_signed(void)
{
    uint8_t seed1[32], seed2[32], pk1[32], pk2[32];
    memset(seed1, 1, 32);
    memset(seed2, 2, 32);
    plexus_registry_public_key(seed1, pk1);
    plexus_registry_public_key(seed2, pk2);
    plexus_registry_config c = {0};
    c.require_signed = 1;
    plexus_registry *r = mk_cfg(&c);
    plexus_registry_msg reply;
    plexus_buf out;
    plexus_buf_init(&out, &test_alloc);
    const uint64_t T = 1700000000000ULL;
    CHECK_EQ_INT(announce_full(r, "s@h", 0, T, T, NULL, &reply, &out), PLEXUS_EAUTH);
    CHECK_EQ_INT(announce_full(r, "s@h", 0, T, T, seed1, &reply, &out), 0);
    /* the same issued_ms again: a replay */
    CHECK_EQ_INT(announce_full(r, "s@h", 0, T + 5, T, seed1, &reply, &out), PLEXUS_EREPLAY);
    /* another key for a bound peer */
    CHECK_EQ_INT(announce_full(r, "s@h", 0, T + 5, T + 1, seed2, &reply, &out), PLEXUS_EAUTH);
    CHECK_EQ_INT(announce_full(r, "s@h", 0, T + 5, T + 1, seed1, &reply, &out), 0);
    /* issued too far from the server clock */
    CHECK_EQ_INT(announce_full(r, "t@h", 0, T, T - 400000, seed2, &reply, &out), PLEXUS_EREPLAY);
    CHECK_EQ_INT(announce_full(r, "t@h", 0, T, T + 400000, seed2, &reply, &out), PLEXUS_EREPLAY);

    /* a tampered byte anywhere before the signature fails verification */
    plexus_buf req;
    plexus_buf_init(&req, &test_alloc);
    CHECK_EQ_INT(plexus_registry_encode_announce(&req, 1, B("u@h"), NULL, NULL, 0, T + 10, seed1),
                 PLEXUS_OK);
    plexus_registry_msg m;
    CHECK_EQ_INT(plexus_registry_msg_decode(req.p, req.len, &m), PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_msg_verify(&m), PLEXUS_OK);
    CHECK(m.is_signed && memcmp(m.public_key, pk1, 32) == 0);
    int refused = 0;
    for (size_t i = 6; i < req.len; i++) {
        uint8_t save = req.p[i];
        req.p[i] ^= 0x20;
        plexus_registry_grant g;
        if (plexus_registry_msg_decode(req.p, req.len, &m) == PLEXUS_OK)
            refused += plexus_registry_announce(r, &m, T + 10, &g) == PLEXUS_EAUTH ||
                       plexus_registry_announce(r, &m, T + 10, &g) == PLEXUS_EREPLAY;
        else
            refused++;
        req.p[i] = save;
    }
    CHECK_EQ_INT(refused, (int)req.len - 6);
    CHECK_EQ_INT(view_count(r, T + 10), 1); /* only s@h */

    /* bye: only the bound key may remove the entry */
    req.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_bye(&req, 2, B("s@h"), T + 20, seed2), PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_msg_decode(req.p, req.len, &m), PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_bye(r, &m, T + 20), PLEXUS_EAUTH);
    req.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_bye(&req, 2, B("s@h"), T + 20, seed1), PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_msg_decode(req.p, req.len, &m), PLEXUS_OK);
    plexus_registry_result res;
    CHECK_EQ_INT(plexus_registry_handle(r, req.p, req.len, NULL, 0, T + 20, rnd, NULL, &out, &res),
                 PLEXUS_OK);
    CHECK_EQ_INT(res.outcome, PLEXUS_REGISTRY_LEFT);
    CHECK_EQ_INT(out.len, 0); /* no reply to a bye */
    CHECK_EQ_INT(view_count(r, T + 20), 0);
    CHECK_EQ_INT(plexus_registry_bye(r, &m, T + 20), PLEXUS_ENOTFOUND);
    plexus_registry_stats st;
    plexus_registry_get_stats(r, &st);
    CHECK(st.refused_auth >= 3);
    CHECK(st.refused_replay >= 3);
    plexus_registry_free(r);

    /* trusted keys: only pk1 */
    const uint8_t trusted_keys[1][32] = {{0}};
    uint8_t(*tk)[32] = (uint8_t(*)[32])trusted_keys;
    memcpy(tk[0], pk1, 32);
    c = (plexus_registry_config){0};
    c.trusted_keys = (const uint8_t(*)[32])tk;
    c.n_trusted = 1;
    r = mk_cfg(&c);
    CHECK_EQ_INT(announce_full(r, "k@h", 0, T, T, seed2, &reply, &out), PLEXUS_EAUTH);
    CHECK_EQ_INT(announce_full(r, "k@h", 0, T, T, seed1, &reply, &out), 0);
    /* an unsigned announce is allowed (require_signed off) but not for a bound peer */
    CHECK_EQ_INT(announce_full(r, "k@h", 0, T, T + 1, NULL, &reply, &out), PLEXUS_EAUTH);
    CHECK_EQ_INT(announce_full(r, "open@h", 0, T, T, NULL, &reply, &out), 0);
    plexus_registry_free(r);
    plexus_buf_free(&req);
    plexus_buf_free(&out);
}

typedef struct seen {
    int n;
    char names[64][16];
} seen;

static int record_visit(void *ctx, const plexus_registry_entry *e)
{
    seen *s = ctx;
    if (s->n < 64 && e->peer.n < 16) {
        memcpy(s->names[s->n], e->peer.p, e->peer.n);
        s->names[s->n][e->peer.n] = 0;
        s->n++;
    }
    return 0;
}

static void test_sample(void)
{
    plexus_registry *r = mk(0);
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d@h", i);
        CHECK_EQ_INT(announce(r, name, 0, 0), 0);
    }
    for (int round = 0; round < 20; round++) {
        seen s = {0};
        CHECK_EQ_INT(plexus_registry_sample(r, 1, 7, rnd, NULL, record_visit, &s), PLEXUS_OK);
        CHECK_EQ_INT(s.n, 7);
        for (int i = 0; i < s.n; i++)
            for (int j = i + 1; j < s.n; j++)
                CHECK(strcmp(s.names[i], s.names[j]) != 0);
    }
    seen all = {0};
    CHECK_EQ_INT(plexus_registry_sample(r, 1, 1000, rnd, NULL, record_visit, &all), PLEXUS_OK);
    CHECK_EQ_INT(all.n, 40);
    /* entries are still all findable after the shuffles */
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d@h", i);
        plexus_registry_entry e;
        CHECK_EQ_INT(plexus_registry_lookup(r, S(name), 1, &e), PLEXUS_OK);
    }
    plexus_registry_free(r);
}

static void test_query_view(void)
{
    plexus_registry *r = mk(0);
    static uint8_t big[PLEXUS_DISCO_VAL_MAX];
    memset(big, 'v', sizeof big);
    for (int i = 0; i < 300; i++) {
        char name[16];
        snprintf(name, sizeof name, "v%d@h", i);
        plexus_buf req;
        plexus_buf_init(&req, &test_alloc);
        plexus_disco_meta meta = {1, {{B("blob"), {big, sizeof big}}}};
        CHECK_EQ_INT(plexus_registry_encode_announce(&req, 1, B(name), NULL, &meta, 0, 0, NULL),
                     PLEXUS_OK);
        plexus_registry_msg m;
        CHECK_EQ_INT(plexus_registry_msg_decode(req.p, req.len, &m), PLEXUS_OK);
        CHECK_EQ_INT(plexus_registry_announce(r, &m, 0, NULL), PLEXUS_OK);
        plexus_buf_free(&req);
    }
    plexus_buf q, out;
    plexus_buf_init(&q, &test_alloc);
    plexus_buf_init(&out, &test_alloc);
    CHECK_EQ_INT(plexus_registry_encode_query(&q, 99, 10, NULL, 0), PLEXUS_OK);
    plexus_registry_result res;
    CHECK_EQ_INT(plexus_registry_handle(r, q.p, q.len, NULL, 0, 5, rnd, NULL, &out, &res),
                 PLEXUS_OK);
    CHECK_EQ_INT(res.outcome, PLEXUS_REGISTRY_QUERIED);
    plexus_registry_msg v;
    CHECK_EQ_INT(plexus_registry_msg_decode(out.p, out.len, &v), PLEXUS_OK);
    CHECK_EQ_INT(v.type, PLEXUS_REGISTRY_VIEW);
    CHECK_EQ_INT(v.request_id, 99);
    CHECK_EQ_INT(v.live_entries, 300);
    CHECK_EQ_INT(v.n_entries, 10);
    const uint8_t *pos = v.entries.p;
    plexus_registry_entry e;
    int n = 0;
    while (plexus_registry_view_next(&v, &pos, &e) == PLEXUS_OK) {
        CHECK_EQ_INT(e.remaining_ttl_ms, 90000 - 5);
        CHECK_EQ_INT(e.meta.n, 1);
        n++;
    }
    CHECK_EQ_INT(n, 10);
    /* asking for everything: what fits in one datagram (~230 of ~280 bytes each) */
    q.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_query(&q, 100, PLEXUS_REGISTRY_QUERY_MAX, NULL, 0),
                 PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_handle(r, q.p, q.len, NULL, 0, 5, rnd, NULL, &out, &res),
                 PLEXUS_OK);
    CHECK(out.len <= PLEXUS_REGISTRY_MSG_MAX);
    CHECK_EQ_INT(plexus_registry_msg_decode(out.p, out.len, &v), PLEXUS_OK);
    CHECK(v.n_entries > 150 && v.n_entries < 300);
    /* the server ignores replies sent to it and drops garbage without answering */
    CHECK_EQ_INT(plexus_registry_handle(r, out.p, out.len, NULL, 0, 5, rnd, NULL, &q, &res),
                 PLEXUS_OK);
    CHECK_EQ_INT(res.outcome, PLEXUS_REGISTRY_IGNORED);
    CHECK_EQ_INT(q.len, 0);
    CHECK_EQ_INT(
        plexus_registry_handle(r, (const uint8_t *)"garbage", 7, NULL, 0, 5, rnd, NULL, &q, &res),
        PLEXUS_OK);
    CHECK_EQ_INT(res.outcome, PLEXUS_REGISTRY_DROPPED);
    CHECK_EQ_INT(q.len, 0);
    plexus_buf_free(&q);
    plexus_buf_free(&out);
    plexus_registry_free(r);
}

/* One datagram from `src` through the server step; returns the outcome. */
static plexus_registry_outcome from(plexus_registry *r, const plexus_buf *req, const char *src,
                                    uint64_t now, plexus_buf *out, int *err)
{
    plexus_registry_result res;
    CHECK_EQ_INT(plexus_registry_handle(r, req->p, req->len, (const uint8_t *)src, strlen(src), now,
                                        rnd, NULL, out, &res),
                 PLEXUS_OK);
    if (err) *err = res.err;
    return res.outcome;
}

/* Unsigned entries belong to the source that made them: a stranger's BYE or
 * re-ANNOUNCE (signed or not) is refused and the entry stays as it was; the owner may
 * refresh and leave; the host itself (empty source) may too. */
static void test_source_binding(void)
{
    plexus_registry *r = mk(0);
    uint8_t seed[32];
    memset(seed, 3, sizeof seed);
    plexus_buf req, out;
    plexus_buf_init(&req, &test_alloc);
    plexus_buf_init(&out, &test_alloc);
    plexus_registry_addrs good = {1, {B("10.0.0.1:4370")}}, evil = {1, {B("6.6.6.6:4370")}};
    CHECK_EQ_INT(plexus_registry_encode_announce(&req, 1, B("a@h"), &good, NULL, 0, 10, NULL),
                 PLEXUS_OK);
    CHECK_EQ_INT(from(r, &req, "owner", 10, &out, NULL), PLEXUS_REGISTRY_ANNOUNCED);
    int err;
    /* hijack: the same name pointing elsewhere, unsigned and signed, from a stranger */
    req.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_announce(&req, 2, B("a@h"), &evil, NULL, 0, 20, NULL),
                 PLEXUS_OK);
    CHECK_EQ_INT(from(r, &req, "stranger", 20, &out, &err), PLEXUS_REGISTRY_REFUSED_OUT);
    CHECK_EQ_INT(err, PLEXUS_EAUTH);
    req.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_announce(&req, 3, B("a@h"), &evil, NULL, 0, 20, seed),
                 PLEXUS_OK);
    CHECK_EQ_INT(from(r, &req, "stranger", 20, &out, &err), PLEXUS_REGISTRY_REFUSED_OUT);
    CHECK_EQ_INT(err, PLEXUS_EAUTH);
    /* removal by a stranger */
    req.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_bye(&req, 4, B("a@h"), 30, NULL), PLEXUS_OK);
    CHECK_EQ_INT(from(r, &req, "stranger", 30, &out, &err), PLEXUS_REGISTRY_IGNORED);
    CHECK_EQ_INT(err, PLEXUS_EAUTH);
    CHECK_EQ_INT(from(r, &req, "owner\x01", 30, &out, &err), PLEXUS_REGISTRY_IGNORED);
    plexus_registry_entry e;
    CHECK_EQ_INT(plexus_registry_lookup(r, S("a@h"), 40, &e), PLEXUS_OK);
    CHECK(e.addrs.n == 1 && memcmp(e.addrs.addr[0].p, "10.0.0.1:4370", 13) == 0);
    plexus_registry_stats st;
    plexus_registry_get_stats(r, &st);
    CHECK_EQ_INT(st.refused_source, 4);
    /* the owner refreshes and leaves */
    req.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_announce(&req, 5, B("a@h"), &good, NULL, 0, 50, NULL),
                 PLEXUS_OK);
    CHECK_EQ_INT(from(r, &req, "owner", 50, &out, NULL), PLEXUS_REGISTRY_ANNOUNCED);
    req.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_bye(&req, 6, B("a@h"), 60, NULL), PLEXUS_OK);
    CHECK_EQ_INT(from(r, &req, "owner", 60, &out, NULL), PLEXUS_REGISTRY_LEFT);
    /* once expired, the name is free for anyone */
    req.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_announce(&req, 7, B("b@h"), &good, NULL, 0, 70, NULL),
                 PLEXUS_OK);
    CHECK_EQ_INT(from(r, &req, "owner", 70, &out, NULL), PLEXUS_REGISTRY_ANNOUNCED);
    CHECK_EQ_INT(from(r, &req, "other", 70 + 90000, &out, NULL), PLEXUS_REGISTRY_ANNOUNCED);
    /* the host itself (empty source) is bound to nothing */
    req.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_bye(&req, 8, B("b@h"), 80, NULL), PLEXUS_OK);
    plexus_registry_result res;
    CHECK_EQ_INT(
        plexus_registry_handle(r, req.p, req.len, NULL, 0, 80 + 90000, rnd, NULL, &out, &res),
        PLEXUS_OK);
    CHECK_EQ_INT(res.outcome, PLEXUS_REGISTRY_LEFT);
    /* a source longer than the bound is the host's mistake */
    char longsrc[PLEXUS_REGISTRY_SOURCE_MAX + 2];
    memset(longsrc, 's', sizeof longsrc - 1);
    longsrc[sizeof longsrc - 1] = 0;
    CHECK_EQ_INT(plexus_registry_handle(r, req.p, req.len, (const uint8_t *)longsrc,
                                        strlen(longsrc), 0, rnd, NULL, &out, &res),
                 PLEXUS_EINVAL);
    plexus_buf_free(&req);
    plexus_buf_free(&out);
    plexus_registry_free(r);
}

/* No reply is longer than its request unless the source echoed its cookie: a short
 * QUERY gets nothing, a padded one a COOKIE, and only the cookie (of this or the last
 * period, from the same source) unlocks the VIEW. A HANDSHAKE drops the server
 * addresses rather than outgrow the ANNOUNCE. */
static void test_anti_amplification(void)
{
    plexus_registry *r = mk(0);
    static uint8_t big[PLEXUS_DISCO_VAL_MAX];
    memset(big, 'v', sizeof big);
    plexus_buf req, out;
    plexus_buf_init(&req, &test_alloc);
    plexus_buf_init(&out, &test_alloc);
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof name, "v%d@h", i);
        plexus_disco_meta meta = {1, {{B("blob"), {big, sizeof big}}}};
        req.len = 0;
        CHECK_EQ_INT(plexus_registry_encode_announce(&req, 1, B(name), NULL, &meta, 0, 0, NULL),
                     PLEXUS_OK);
        CHECK_EQ_INT(from(r, &req, name, 0, &out, NULL), PLEXUS_REGISTRY_ANNOUNCED);
    }
    const uint64_t T = 1000;
    /* an unpadded query: too short for even a COOKIE, so no answer at all */
    req.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_query(&req, 1, 100, NULL, 0), PLEXUS_OK);
    CHECK(req.len < 10);
    CHECK_EQ_INT(from(r, &req, "victim", T, &out, NULL), PLEXUS_REGISTRY_COOKIE_OUT);
    CHECK_EQ_INT(out.len, 0);
    /* padded: a COOKIE no longer than the query */
    req.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_query(&req, 2, 100, NULL, PLEXUS_REGISTRY_QUERY_PAD),
                 PLEXUS_OK);
    CHECK_EQ_INT(req.len, PLEXUS_REGISTRY_QUERY_PAD);
    CHECK_EQ_INT(from(r, &req, "client", T, &out, NULL), PLEXUS_REGISTRY_COOKIE_OUT);
    CHECK(out.len > 0 && out.len <= req.len);
    plexus_registry_msg c;
    CHECK_EQ_INT(plexus_registry_msg_decode(out.p, out.len, &c), PLEXUS_OK);
    CHECK_EQ_INT(c.type, PLEXUS_REGISTRY_COOKIE);
    CHECK_EQ_INT(c.request_id, 2);
    uint8_t cookie[PLEXUS_REGISTRY_COOKIE_BYTES];
    memcpy(cookie, c.cookie, sizeof cookie);
    /* the cookie from its own source: the VIEW */
    req.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_query(&req, 3, 100, cookie, 0), PLEXUS_OK);
    CHECK_EQ_INT(from(r, &req, "client", T + PLEXUS_REGISTRY_COOKIE_PERIOD_MS, &out, NULL),
                 PLEXUS_REGISTRY_QUERIED);
    CHECK(out.len > 10000);
    plexus_registry_msg v;
    CHECK_EQ_INT(plexus_registry_msg_decode(out.p, out.len, &v), PLEXUS_OK);
    CHECK_EQ_INT(v.n_entries, 50);
    /* the same cookie from another source, or two periods later: a COOKIE again */
    CHECK_EQ_INT(from(r, &req, "victim", T, &out, NULL), PLEXUS_REGISTRY_COOKIE_OUT);
    CHECK(out.len <= req.len);
    CHECK_EQ_INT(from(r, &req, "client", T + 2 * PLEXUS_REGISTRY_COOKIE_PERIOD_MS, &out, NULL),
                 PLEXUS_REGISTRY_COOKIE_OUT);
    CHECK(out.len <= req.len);
    plexus_registry_stats st;
    plexus_registry_get_stats(r, &st);
    CHECK_EQ_INT(st.queries, 1);
    CHECK_EQ_INT(st.cookies, 3);
    CHECK_EQ_INT(st.unverified, 1);
    /* a HANDSHAKE never outgrows the ANNOUNCE: long server addresses are left out */
    char addr[PLEXUS_REGISTRY_ADDR_MAX];
    memset(addr, 'a', sizeof addr);
    plexus_registry_addrs srv = {1, {{(const uint8_t *)addr, sizeof addr}}};
    CHECK_EQ_INT(plexus_registry_set_server_addrs(r, &srv), PLEXUS_OK);
    req.len = 0;
    CHECK_EQ_INT(plexus_registry_encode_announce(&req, 4, B("a@b"), NULL, NULL, 0, 0, NULL),
                 PLEXUS_OK);
    CHECK_EQ_INT(from(r, &req, "small", 0, &out, NULL), PLEXUS_REGISTRY_ANNOUNCED);
    CHECK(out.len > 0 && out.len <= req.len);
    CHECK_EQ_INT(plexus_registry_msg_decode(out.p, out.len, &c), PLEXUS_OK);
    CHECK_EQ_INT(c.type, PLEXUS_REGISTRY_HANDSHAKE);
    CHECK_EQ_INT(c.addrs.n, 0);
    plexus_buf_free(&req);
    plexus_buf_free(&out);
    plexus_registry_free(r);
}

/* Every proper prefix of every valid message fails to decode; so do extra bytes. */
static void test_decoder_strict(void)
{
    uint8_t seed[32];
    memset(seed, 9, 32);
    plexus_registry_addrs addrs = {2, {B("a:1"), B("b:2")}};
    plexus_disco_meta meta = {2, {{B("k1"), B("v1")}, {B("k2"), B("")}}};
    plexus_buf msgs[9];
    uint8_t cookie[PLEXUS_REGISTRY_COOKIE_BYTES];
    memset(cookie, 0xc0, sizeof cookie);
    for (int i = 0; i < 9; i++)
        plexus_buf_init(&msgs[i], &test_alloc);
    CHECK_EQ_INT(plexus_registry_encode_cookie(&msgs[7], 8, cookie), PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_encode_query(&msgs[8], 9, 3, cookie, 0), PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_encode_announce(&msgs[0], 1, B("a@h"), &addrs, &meta, 5, 6, NULL),
                 PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_encode_announce(&msgs[1], 2, B("a@h"), &addrs, &meta, 5, 6, seed),
                 PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_encode_handshake(&msgs[2], 3, 90000, 30000, &addrs), PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_encode_query(&msgs[3], 4, 12, NULL, 0), PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_encode_refused(&msgs[4], 5, PLEXUS_EFULL), PLEXUS_OK);
    CHECK_EQ_INT(plexus_registry_encode_bye(&msgs[5], 6, B("a@h"), 7, seed), PLEXUS_OK);
    plexus_registry *r = mk(0);
    CHECK_EQ_INT(announce(r, "x@h", 0, 0), 0);
    CHECK_EQ_INT(announce(r, "y@h", 0, 0), 0);
    plexus_buf q;
    plexus_buf_init(&q, &test_alloc);
    CHECK_EQ_INT(plexus_registry_encode_query(&q, 7, 5, NULL, 0), PLEXUS_OK);
    plexus_registry_result res;
    CHECK_EQ_INT(plexus_registry_handle(r, q.p, q.len, NULL, 0, 0, rnd, NULL, &msgs[6], &res),
                 PLEXUS_OK);
    plexus_buf_free(&q);
    plexus_registry_free(r);
    for (int i = 0; i < 9; i++) {
        plexus_registry_msg m;
        CHECK_EQ_INT(plexus_registry_msg_decode(msgs[i].p, msgs[i].len, &m), PLEXUS_OK);
        CHECK_EQ_INT(m.request_id, (uint64_t)i + 1);
        for (size_t n = 0; n < msgs[i].len; n++)
            CHECK(plexus_registry_msg_decode(msgs[i].p, n, &m) != PLEXUS_OK);
        if (i == 3 || i == 8) { /* a query may end in zero padding, but nothing else */
            CHECK_EQ_INT(plexus_buf_put(&msgs[i], "\0", 1), PLEXUS_OK);
            CHECK_EQ_INT(plexus_registry_msg_decode(msgs[i].p, msgs[i].len, &m), PLEXUS_OK);
            CHECK_EQ_INT(plexus_buf_put(&msgs[i], "\1", 1), PLEXUS_OK);
            CHECK_EQ_INT(plexus_registry_msg_decode(msgs[i].p, msgs[i].len, &m), PLEXUS_EINVAL);
        } else {
            CHECK_EQ_INT(plexus_buf_put(&msgs[i], "\0", 1), PLEXUS_OK);
            CHECK_EQ_INT(plexus_registry_msg_decode(msgs[i].p, msgs[i].len, &m), PLEXUS_ETRAILING);
        }
        plexus_buf_free(&msgs[i]);
    }
    plexus_registry_msg m;
    const uint8_t wrong_magic[] = {'P', 'X', 'B', 1, 3, 0, 1};
    CHECK_EQ_INT(plexus_registry_msg_decode(wrong_magic, sizeof wrong_magic, &m), PLEXUS_EVERSION);
    const uint8_t bad_type[] = {'P', 'X', 'R', 1, 9, 0, 1};
    CHECK_EQ_INT(plexus_registry_msg_decode(bad_type, sizeof bad_type, &m), PLEXUS_ETYPE);
    const uint8_t odd_cookie[] = {'P', 'X', 'R', 1, 3, 0, 1, 1, 0};
    CHECK_EQ_INT(plexus_registry_msg_decode(odd_cookie, sizeof odd_cookie, &m), PLEXUS_EINVAL);
    const uint8_t zero_query[] = {'P', 'X', 'R', 1, 3, 0, 0, 0};
    CHECK_EQ_INT(plexus_registry_msg_decode(zero_query, sizeof zero_query, &m), PLEXUS_EINVAL);
    const uint8_t big_query[] = {'P', 'X', 'R', 1, 3, 0, 0x81, 0x80, 0x01, 0};
    CHECK_EQ_INT(plexus_registry_msg_decode(big_query, sizeof big_query, &m), PLEXUS_ETOOBIG);
    const uint8_t many_addrs[] = {'P', 'X', 'R', 1, 1, 0, 3, 'a', '@', 'b', 9};
    CHECK_EQ_INT(plexus_registry_msg_decode(many_addrs, sizeof many_addrs, &m), PLEXUS_ETOOBIG);
    const uint8_t addr_count_lie[] = {'P', 'X', 'R', 1, 1, 0, 3, 'a', '@', 'b', 5, 1, 'x'};
    CHECK_EQ_INT(plexus_registry_msg_decode(addr_count_lie, sizeof addr_count_lie, &m),
                 PLEXUS_ECOUNT);
    const uint8_t view_lie[] = {'P', 'X', 'R', 1, 4, 0, 100, 50, 0};
    CHECK_EQ_INT(plexus_registry_msg_decode(view_lie, sizeof view_lie, &m), PLEXUS_ECOUNT);
    const uint8_t bad_flags[] = {'P', 'X', 'R', 1, 6, 0, 3, 'a', '@', 'b', 0, 2};
    CHECK_EQ_INT(plexus_registry_msg_decode(bad_flags, sizeof bad_flags, &m), PLEXUS_EINVAL);
    const uint8_t bad_peer[] = {'P', 'X', 'R', 1, 6, 0, 3, 'a', 'b', 'c', 0, 0};
    CHECK_EQ_INT(plexus_registry_msg_decode(bad_peer, sizeof bad_peer, &m), PLEXUS_EINVAL);
    const uint8_t refused_ok[] = {'P', 'X', 'R', 1, 5, 0, 20};
    CHECK_EQ_INT(plexus_registry_msg_decode(refused_ok, sizeof refused_ok, &m), PLEXUS_OK);
    CHECK_EQ_INT(m.reason, PLEXUS_EFULL);
    const uint8_t refused_bad[] = {'P', 'X', 'R', 1, 5, 0, 21};
    CHECK_EQ_INT(plexus_registry_msg_decode(refused_bad, sizeof refused_bad, &m), PLEXUS_ETOOBIG);
    /* encoders refuse what the decoder would */
    plexus_buf b;
    plexus_buf_init(&b, &test_alloc);
    CHECK_EQ_INT(plexus_registry_encode_announce(&b, 1, B("nope"), NULL, NULL, 0, 0, NULL),
                 PLEXUS_EINVAL);
    CHECK_EQ_INT(plexus_registry_encode_query(&b, 1, 0, NULL, 0), PLEXUS_EINVAL);
    CHECK_EQ_INT(plexus_registry_encode_refused(&b, 1, 0), PLEXUS_EINVAL);
    CHECK_EQ_INT(plexus_registry_encode_handshake(&b, 1, 10, 20, NULL), PLEXUS_EINVAL);
    plexus_buf_free(&b);
}

/* Random announces, heartbeats, byes and clock jumps against a plain array model. */
static void test_model(void)
{
    enum { N = 64 };
    struct {
        int live;
        uint64_t expires;
    } model[N] = {{0, 0}};
    plexus_registry_config c = {0};
    c.max_entries = 48;
    plexus_registry *r = mk_cfg(&c);
    uint64_t seed = 7, now = 0;
    for (int step = 0; step < 20000; step++) {
        int i = (int)(test_rand(&seed) % N);
        char name[16];
        snprintf(name, sizeof name, "m%d@h", i);
        int op = (int)(test_rand(&seed) % 10);
        if (op < 6) {
            uint64_t ttl = 30000 + test_rand(&seed) % 270001;
            int live = 0;
            for (int k = 0; k < N; k++)
                live += model[k].live && model[k].expires > now;
            int present = model[i].live && model[i].expires > now;
            int rc = announce(r, name, ttl, now);
            if (!present && live >= 48) {
                CHECK_EQ_INT(rc, PLEXUS_EFULL);
            } else {
                CHECK_EQ_INT(rc, 0);
                model[i].live = 1;
                model[i].expires = now + ttl;
            }
        } else if (op < 7) {
            plexus_buf req;
            plexus_buf_init(&req, &test_alloc);
            CHECK_EQ_INT(plexus_registry_encode_bye(&req, 1, B(name), now, NULL), PLEXUS_OK);
            plexus_registry_msg m;
            CHECK_EQ_INT(plexus_registry_msg_decode(req.p, req.len, &m), PLEXUS_OK);
            int rc = plexus_registry_bye(r, &m, now);
            /* a bye finds expired-but-not-yet-evicted entries too */
            if (model[i].live && model[i].expires > now) CHECK_EQ_INT(rc, PLEXUS_OK);
            if (rc == PLEXUS_OK) model[i].live = 0;
            plexus_buf_free(&req);
        } else if (op < 9) {
            now += test_rand(&seed) % 20000;
        } else {
            size_t want = 0;
            for (int k = 0; k < N; k++) {
                if (model[k].live && model[k].expires <= now) model[k].live = 0;
                want += model[k].live;
            }
            CHECK_EQ_INT(view_count(r, now), want);
            for (int k = 0; k < N; k++) {
                char nm[16];
                snprintf(nm, sizeof nm, "m%d@h", k);
                plexus_registry_entry e;
                int rc = plexus_registry_lookup(r, S(nm), now, &e);
                CHECK_EQ_INT(rc, model[k].live ? PLEXUS_OK : PLEXUS_ENOTFOUND);
                if (rc == PLEXUS_OK) CHECK_EQ_INT(e.remaining_ttl_ms, model[k].expires - now);
            }
        }
    }
    plexus_registry_free(r);
}

static void test_alloc_faults(void)
{
    int rc = 0;
    static plexus_registry_msg msgs[40];
    static plexus_buf bufs[40];
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d@h", i);
        plexus_buf_init(&bufs[i], &test_alloc);
        plexus_disco_meta meta = {1, {{B("k"), B("v")}}};
        CHECK_EQ_INT(plexus_registry_encode_announce(&bufs[i], 1, B(name), NULL, &meta,
                                                     (uint64_t)(30000 + i * 1000), 0, NULL),
                     PLEXUS_OK);
        CHECK_EQ_INT(plexus_registry_msg_decode(bufs[i].p, bufs[i].len, &msgs[i]), PLEXUS_OK);
    }
    long before = fault_live();
    FOR_EACH_FAULT(rc, {
        plexus_registry_config c = {0};
        plexus_registry *r = NULL;
        rc = plexus_registry_new(&c, &test_alloc, &r);
        plexus_registry_addrs srv = {1, {B("s:1")}};
        if (!rc) rc = plexus_registry_set_server_addrs(r, &srv);
        for (int i = 0; !rc && i < 40; i++)
            rc = plexus_registry_announce(r, &msgs[i], 0, NULL);
        for (int i = 0; !rc && i < 40; i += 3) /* refreshes reallocate */
            rc = plexus_registry_announce(r, &msgs[i], 10, NULL);
        if (!rc) {
            size_t n = plexus_registry_size(r);
            plexus_buf out;
            plexus_buf_init(&out, &test_alloc);
            plexus_buf q;
            plexus_buf_init(&q, &test_alloc);
            plexus_registry_result res;
            rc = plexus_registry_encode_query(&q, 1, 100, NULL, 0);
            if (!rc)
                rc = plexus_registry_handle(r, q.p, q.len, NULL, 0, 35000, rnd, NULL, &out, &res);
            if (!rc)
                rc = plexus_registry_handle(r, bufs[39].p, bufs[39].len, NULL, 0, 35000, rnd, NULL,
                                            &out, &res);
            if (!rc && res.outcome != PLEXUS_REGISTRY_ANNOUNCED) rc = res.err;
            plexus_buf_free(&out);
            plexus_buf_free(&q);
            (void)n;
        }
        plexus_registry_free(r);
    });
    CHECK_EQ_INT(fault_live(), before);
    for (int i = 0; i < 40; i++)
        plexus_buf_free(&bufs[i]);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    RUN(test_config);
    RUN(test_announce_handshake);
    RUN(test_ttl_clamp);
    RUN(test_lazy_eviction);
    RUN(test_bounded);
    RUN(test_bytes_bounded);
    RUN(test_signed);
    RUN(test_replay_after_removal);
    RUN(test_sample);
    RUN(test_query_view);
    RUN(test_source_binding);
    RUN(test_anti_amplification);
    RUN(test_decoder_strict);
    RUN(test_model);
    RUN(test_alloc_faults);
    return harness_finish("registry");
}
