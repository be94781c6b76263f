/*
 * Sealed beacon tests (c_src/core/beacon.c, doc/DESIGN.md §6): round trip, the documented
 * KDF and associated data (checked by decrypting with libsodium directly), forged,
 * altered, wrong-key, other-cluster, other-epoch and replayed beacons refused and
 * counted, the 64-beacon replay window, the bounded sender table, strict payload
 * decoding of authentic-but-malformed payloads, and every allocation failure.
 */
#include <sodium.h>

#include "harness.h"
#include "plexus/beacon.h"

#define S(s) (const uint8_t *)(s), strlen(s)
static const char *SECRET = "correct horse battery staple";

static plexus_beacon *mk(const char *secret, const char *cluster, uint32_t epoch, int prev,
                         size_t max_senders)
{
    plexus_beacon_config c = {0};
    c.secret = (const uint8_t *)secret;
    c.secret_len = strlen(secret);
    c.cluster_id = (const uint8_t *)cluster;
    c.cluster_id_len = strlen(cluster);
    c.epoch = epoch;
    c.accept_previous_epoch = prev;
    c.max_senders = max_senders;
    c.stale_ms = 1000;
    plexus_beacon *b = NULL;
    CHECK_EQ_INT(plexus_beacon_new(&c, &test_alloc, &b), PLEXUS_OK);
    return b;
}

static plexus_beacon_msg msg(const char *name, uint64_t inc, uint64_t seq)
{
    plexus_beacon_msg m;
    memset(&m, 0, sizeof m);
    m.name.p = (const uint8_t *)name;
    m.name.n = strlen(name);
    m.incarnation = inc;
    m.sequence = seq;
    return m;
}

static uint8_t nonce_byte = 0;
static size_t seal(plexus_beacon *b, const plexus_beacon_msg *m, uint8_t *out)
{
    uint8_t nonce[PLEXUS_BEACON_NONCE];
    memset(nonce, ++nonce_byte, sizeof nonce);
    size_t len = 0;
    CHECK_EQ_INT(plexus_beacon_seal(b, m, nonce, out, PLEXUS_BEACON_MAX, &len), PLEXUS_OK);
    return len;
}

static void test_config(void)
{
    plexus_beacon *b = NULL;
    plexus_beacon_config c = {0};
    CHECK_EQ_INT(plexus_beacon_new(&c, &test_alloc, &b), PLEXUS_EINVAL);
    c.secret = (const uint8_t *)"short";
    c.secret_len = 5;
    CHECK_EQ_INT(plexus_beacon_new(&c, &test_alloc, &b), PLEXUS_EINVAL);
    c.secret = (const uint8_t *)SECRET;
    c.secret_len = strlen(SECRET);
    c.accept_previous_epoch = 1; /* epoch 0 has no previous */
    CHECK_EQ_INT(plexus_beacon_new(&c, &test_alloc, &b), PLEXUS_EINVAL);
    c.accept_previous_epoch = 0;
    c.max_senders = PLEXUS_BEACON_SENDERS_MAX + 1;
    CHECK_EQ_INT(plexus_beacon_new(&c, &test_alloc, &b), PLEXUS_EINVAL);
    c.max_senders = 0;
    CHECK_EQ_INT(plexus_beacon_new(&c, &test_alloc, &b), PLEXUS_OK);
    plexus_beacon_free(b);
    plexus_beacon_free(NULL);
}

static void test_round_trip(void)
{
    plexus_beacon *tx = mk(SECRET, "prod", 3, 0, 0), *rx = mk(SECRET, "prod", 3, 0, 0);
    plexus_beacon_msg m = msg("a@127.0.0.1", 1700000000000ULL, 1);
    m.sent_ms = 1700000005000ULL;
    m.meta.n = 2;
    m.meta.kv[0] = (plexus_disco_kv){{S("port")}, {S("45892")}};
    m.meta.kv[1] = (plexus_disco_kv){{S("role")}, {(const uint8_t *)"", 0}};
    uint8_t buf[PLEXUS_BEACON_MAX];
    size_t len = seal(tx, &m, buf);
    CHECK(len > PLEXUS_BEACON_OVERHEAD);
    CHECK(memcmp(buf, "PXB\x02\x00\x00\x00\x03", 8) == 0);
    plexus_beacon_msg got;
    CHECK_EQ_INT(plexus_beacon_open(rx, buf, len, 10, 1700000005000ULL, &got), PLEXUS_OK);
    CHECK_EQ_INT(got.incarnation, 1700000000000ULL);
    CHECK_EQ_INT(got.sent_ms, 1700000005000ULL);
    CHECK_EQ_INT(got.sequence, 1);
    CHECK_EQ_INT(got.epoch, 3);
    CHECK(got.name.n == 11 && memcmp(got.name.p, "a@127.0.0.1", 11) == 0);
    CHECK_EQ_INT(got.meta.n, 2);
    CHECK(got.meta.kv[0].val.n == 5 && memcmp(got.meta.kv[0].val.p, "45892", 5) == 0);
    CHECK_EQ_INT(got.meta.kv[1].val.n, 0);
    /* the sender's own codec opens it too (multicast loops back) */
    CHECK_EQ_INT(plexus_beacon_open(tx, buf, len, 10, 1700000005000ULL, &got), PLEXUS_OK);
    plexus_beacon_counters c;
    plexus_beacon_get_counters(rx, &c);
    CHECK_EQ_INT(c.accepted, 1);
    CHECK_EQ_INT(c.senders, 1);
    plexus_beacon_get_counters(tx, &c);
    CHECK_EQ_INT(c.sealed, 1);
    plexus_beacon_free(tx);
    plexus_beacon_free(rx);
}

/* The KDF and the associated data exactly as beacon.h documents them. */
static void test_documented_kdf(void)
{
    plexus_beacon *b = mk(SECRET, "prod", 7, 0, 0);
    plexus_beacon_msg m = msg("n@h", 5, 9);
    uint8_t buf[PLEXUS_BEACON_MAX];
    size_t len = seal(b, &m, buf);

    uint8_t master[32], key[32];
    crypto_generichash(master, 32, S(SECRET), (const uint8_t *)"plexus beacon v1", 16);
    crypto_kdf_derive_from_key(key, 32, 7, "plxbeacn", master);
    uint8_t ad[8 + 1 + 4];
    memcpy(ad, buf, 8);
    ad[8] = 4;
    memcpy(ad + 9, "prod", 4);
    uint8_t plain[PLEXUS_BEACON_MAX];
    unsigned long long plen = 0;
    CHECK_EQ_INT(crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, buf + 32, len - 32,
                                                            ad, sizeof ad, buf + 8, key),
                 0);
    const uint8_t want[] = {5, 9, 0, 3, 'n', '@', 'h', 0}; /* sent time 0 */
    CHECK_EQ_INT(plen, sizeof want);
    CHECK(memcmp(plain, want, sizeof want) == 0);
    plexus_beacon_free(b);
}

static void test_wrong_key_cluster_epoch(void)
{
    plexus_beacon *tx = mk(SECRET, "prod", 3, 0, 0);
    plexus_beacon *other_secret = mk("another secret of 16+ bytes", "prod", 3, 0, 0);
    plexus_beacon *other_cluster = mk(SECRET, "staging", 3, 0, 0);
    plexus_beacon *other_epoch = mk(SECRET, "prod", 4, 0, 0);
    plexus_beacon *rotating = mk(SECRET, "prod", 4, 1, 0); /* accepts 3 too */
    plexus_beacon_msg m = msg("a@h", 1, 1), got;
    uint8_t buf[PLEXUS_BEACON_MAX];
    size_t len = seal(tx, &m, buf);
    CHECK_EQ_INT(plexus_beacon_open(other_secret, buf, len, 0, 0, &got), PLEXUS_EAUTH);
    CHECK_EQ_INT(plexus_beacon_open(other_cluster, buf, len, 0, 0, &got), PLEXUS_EAUTH);
    CHECK_EQ_INT(plexus_beacon_open(other_epoch, buf, len, 0, 0, &got), PLEXUS_EAUTH);
    CHECK_EQ_INT(plexus_beacon_open(rotating, buf, len, 0, 0, &got), PLEXUS_OK);
    CHECK_EQ_INT(got.epoch, 3);
    /* and the rotating node's own beacons (epoch 4) are refused by epoch-3 nodes */
    len = seal(rotating, &m, buf);
    CHECK_EQ_INT(plexus_beacon_open(tx, buf, len, 0, 0, &got), PLEXUS_EAUTH);
    plexus_beacon_counters c;
    plexus_beacon_get_counters(other_secret, &c);
    CHECK_EQ_INT(c.auth_failed, 1);
    CHECK_EQ_INT(c.accepted, 0);
    CHECK_EQ_INT(c.senders, 0); /* nothing recorded */
    plexus_beacon_free(tx);
    plexus_beacon_free(other_secret);
    plexus_beacon_free(other_cluster);
    plexus_beacon_free(other_epoch);
    plexus_beacon_free(rotating);
}

/* Every single-bit flip and every truncation is refused and counted. */
static void test_altered_and_truncated(void)
{
    plexus_beacon *tx = mk(SECRET, "prod", 1, 0, 0), *rx = mk(SECRET, "prod", 1, 0, 0);
    plexus_beacon_msg m = msg("alter@host", 1, 1), got;
    m.meta.n = 1;
    m.meta.kv[0] = (plexus_disco_kv){{S("k")}, {S("v")}};
    uint8_t buf[PLEXUS_BEACON_MAX], bad[PLEXUS_BEACON_MAX];
    size_t len = seal(tx, &m, buf);
    long refused = 0;
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, buf, len);
            bad[i] ^= (uint8_t)(1 << bit);
            int rc = plexus_beacon_open(rx, bad, len, 0, 0, &got);
            CHECK(rc == PLEXUS_EAUTH || rc == PLEXUS_EVERSION);
            refused += rc != PLEXUS_OK;
        }
    CHECK_EQ_INT(refused, (long)len * 8);
    for (size_t n = 0; n < len; n++)
        CHECK(plexus_beacon_open(rx, buf, n, 0, 0, &got) != PLEXUS_OK);
    /* appended bytes break the tag too */
    memcpy(bad, buf, len);
    bad[len] = 0;
    CHECK_EQ_INT(plexus_beacon_open(rx, bad, len + 1, 0, 0, &got), PLEXUS_EAUTH);
    CHECK_EQ_INT(plexus_beacon_open(rx, NULL, 0, 0, 0, &got), PLEXUS_ETRUNCATED);
    uint8_t huge[PLEXUS_BEACON_MAX + 1] = {0};
    CHECK_EQ_INT(plexus_beacon_open(rx, huge, sizeof huge, 0, 0, &got), PLEXUS_ETOOBIG);
    plexus_beacon_counters c;
    plexus_beacon_get_counters(rx, &c);
    CHECK_EQ_INT(c.accepted, 0);
    CHECK_EQ_INT(c.senders, 0);
    CHECK_EQ_INT(c.auth_failed + c.malformed, (uint64_t)len * 8 + len + 3);
    /* the genuine one still opens afterwards */
    CHECK_EQ_INT(plexus_beacon_open(rx, buf, len, 0, 0, &got), PLEXUS_OK);
    plexus_beacon_free(tx);
    plexus_beacon_free(rx);
}

/* Seals (name, inc, seq) sent at `sent' and opens it at `now' (monotonic) with the
 * receiver's wall clock at `wall'. */
static int open_at(plexus_beacon *tx, plexus_beacon *rx, const char *name, uint64_t inc,
                   uint64_t seq, uint64_t now, uint64_t sent, uint64_t wall)
{
    plexus_beacon_msg m = msg(name, inc, seq), got;
    m.sent_ms = sent;
    uint8_t buf[PLEXUS_BEACON_MAX];
    size_t len = seal(tx, &m, buf);
    return plexus_beacon_open(rx, buf, len, now, wall, &got);
}

/* As open_at, sent when received: the sender's clock runs with the receiver's. */
static int open_seq(plexus_beacon *tx, plexus_beacon *rx, const char *name, uint64_t inc,
                    uint64_t seq, uint64_t now)
{
    return open_at(tx, rx, name, inc, seq, now, 1000 + now, 1000 + now);
}

static void test_replay_window(void)
{
    plexus_beacon *tx = mk(SECRET, "c", 1, 0, 0), *rx = mk(SECRET, "c", 1, 0, 0);
    plexus_beacon_msg m = msg("r@h", 10, 1), got;
    uint8_t buf[PLEXUS_BEACON_MAX];
    size_t len = seal(tx, &m, buf);
    CHECK_EQ_INT(plexus_beacon_open(rx, buf, len, 0, 0, &got), PLEXUS_OK);
    CHECK_EQ_INT(plexus_beacon_open(rx, buf, len, 0, 0, &got), PLEXUS_EREPLAY); /* exact copy */
    CHECK_EQ_INT(open_seq(tx, rx, "r@h", 10, 1, 0), PLEXUS_EREPLAY); /* same seq, new nonce */
    CHECK_EQ_INT(open_seq(tx, rx, "r@h", 10, 5, 0), PLEXUS_OK);
    CHECK_EQ_INT(open_seq(tx, rx, "r@h", 10, 3, 0), PLEXUS_OK); /* late but in window */
    CHECK_EQ_INT(open_seq(tx, rx, "r@h", 10, 3, 0), PLEXUS_EREPLAY);
    CHECK_EQ_INT(open_seq(tx, rx, "r@h", 10, 2, 0), PLEXUS_OK);
    CHECK_EQ_INT(open_seq(tx, rx, "r@h", 10, 100, 0), PLEXUS_OK);
    CHECK_EQ_INT(open_seq(tx, rx, "r@h", 10, 37, 0), PLEXUS_OK);           /* 63 behind: in */
    CHECK_EQ_INT(open_seq(tx, rx, "r@h", 10, 36, 0), PLEXUS_EREPLAY);      /* 64 behind: out */
    CHECK_EQ_INT(open_seq(tx, rx, "r@h", 9, 1000, 0), PLEXUS_EREPLAY);     /* older incarnation */
    CHECK_EQ_INT(open_at(tx, rx, "r@h", 11, 1, 0, 2000, 2000), PLEXUS_OK); /* restart */
    CHECK_EQ_INT(open_seq(tx, rx, "r@h", 10, 101, 0), PLEXUS_EREPLAY);
    /* a different sender has its own window */
    CHECK_EQ_INT(open_seq(tx, rx, "s@h", 1, 1, 0), PLEXUS_OK);
    plexus_beacon_counters c;
    plexus_beacon_get_counters(rx, &c);
    CHECK_EQ_INT(c.replayed, 6);
    CHECK_EQ_INT(c.accepted, 8);
    CHECK_EQ_INT(c.senders, 2);
    CHECK_EQ_INT(plexus_beacon_forget(rx, S("r@h")), PLEXUS_OK);
    CHECK_EQ_INT(plexus_beacon_forget(rx, S("r@h")), PLEXUS_ENOTFOUND);
    CHECK_EQ_INT(plexus_beacon_open(rx, buf, len, 0, 0, &got), PLEXUS_OK); /* forgotten */
    plexus_beacon_free(tx);
    plexus_beacon_free(rx);
}

/* Send times. A sender restarted with its clock 30 s behind starts a lower
 * incarnation (its start time) and sends times before the last one accepted from its
 * previous life: refused until its clock passes that time, then heard (version 1
 * refused it for as long as the receiver ran). An older life played back is refused;
 * so is a beacon sent more than max_skew_ms (60 s) from the receiver's clock, even by
 * a receiver that has just started and knows no window (version 1 accepted any
 * recording there). */
static void test_send_time(void)
{
    plexus_beacon *tx = mk(SECRET, "c", 1, 0, 0), *rx = mk(SECRET, "c", 1, 0, 0);
    const uint64_t T = 1700000000000ULL;
    CHECK_EQ_INT(open_at(tx, rx, "r@h", T - 5000, 1, 0, T, T), PLEXUS_OK);
    CHECK_EQ_INT(open_at(tx, rx, "r@h", T - 40000, 1, 1000, T - 29000, T + 1000), PLEXUS_EREPLAY);
    CHECK_EQ_INT(open_at(tx, rx, "r@h", T - 40000, 30, 30500, T + 500, T + 30500), PLEXUS_OK);
    CHECK_EQ_INT(open_at(tx, rx, "r@h", T - 40000, 31, 31500, T + 1500, T + 31500), PLEXUS_OK);
    /* the previous life, played back */
    CHECK_EQ_INT(open_at(tx, rx, "r@h", T - 5000, 2, 32000, T + 1, T + 32000), PLEXUS_EREPLAY);
    /* a recording 2 minutes old, to this receiver and to one just started */
    plexus_beacon *fresh = mk(SECRET, "c", 1, 0, 0);
    CHECK_EQ_INT(open_at(tx, rx, "s@h", 7, 1, 33000, T - 120000, T + 33000), PLEXUS_EREPLAY);
    CHECK_EQ_INT(open_at(tx, fresh, "r@h", T - 5000, 1, 0, T, T + 120000), PLEXUS_EREPLAY);
    /* within the skew a recording still passes a receiver that knows no window */
    CHECK_EQ_INT(open_at(tx, fresh, "r@h", T - 5000, 1, 0, T, T + 30000), PLEXUS_OK);
    plexus_beacon_counters c;
    plexus_beacon_get_counters(rx, &c);
    CHECK_EQ_INT(c.stale, 1);
    CHECK_EQ_INT(c.replayed, 2);
    plexus_beacon_get_counters(fresh, &c);
    CHECK_EQ_INT(c.stale, 1);
    plexus_beacon_free(tx);
    plexus_beacon_free(rx);
    plexus_beacon_free(fresh);
}

static void test_sender_table_bound(void)
{
    plexus_beacon *tx = mk(SECRET, "c", 1, 0, 0), *rx = mk(SECRET, "c", 1, 0, 2);
    CHECK_EQ_INT(open_seq(tx, rx, "a@h", 1, 1, 100), PLEXUS_OK);
    CHECK_EQ_INT(open_seq(tx, rx, "b@h", 1, 1, 200), PLEXUS_OK);
    CHECK_EQ_INT(open_seq(tx, rx, "c@h", 1, 1, 300), PLEXUS_EFULL);
    CHECK_EQ_INT(open_seq(tx, rx, "a@h", 1, 2, 400), PLEXUS_OK); /* known ones go on */
    /* stale_ms = 1000: at 1250 b (last heard at 200) is stale and its slot reused */
    CHECK_EQ_INT(open_seq(tx, rx, "c@h", 1, 1, 1250), PLEXUS_OK);
    CHECK_EQ_INT(open_seq(tx, rx, "d@h", 1, 1, 1300), PLEXUS_EFULL);
    plexus_beacon_counters c;
    plexus_beacon_get_counters(rx, &c);
    CHECK_EQ_INT(c.table_full, 2);
    CHECK_EQ_INT(c.senders, 2);
    plexus_beacon_free(tx);
    plexus_beacon_free(rx);
}

static void test_seal_validation(void)
{
    plexus_beacon *b = mk(SECRET, "c", 1, 0, 0);
    uint8_t buf[PLEXUS_BEACON_MAX], nonce[PLEXUS_BEACON_NONCE] = {0};
    size_t len;
    const char *bad_names[] = {"", "noat", "@h", "n@", "a@b@c", "sp ace@h", "nul\x01@h"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        plexus_beacon_msg m = msg(bad_names[i], 1, 1);
        CHECK_EQ_INT(plexus_beacon_seal(b, &m, nonce, buf, sizeof buf, &len), PLEXUS_EINVAL);
    }
    plexus_beacon_msg m = msg("a@h", 0, 1);
    CHECK_EQ_INT(plexus_beacon_seal(b, &m, nonce, buf, sizeof buf, &len), PLEXUS_EINVAL);
    m = msg("a@h", 1, 0);
    CHECK_EQ_INT(plexus_beacon_seal(b, &m, nonce, buf, sizeof buf, &len), PLEXUS_EINVAL);
    m = msg("a@h", 1, 1);
    m.meta.n = 2; /* unsorted keys */
    m.meta.kv[0] = (plexus_disco_kv){{S("z")}, {S("1")}};
    m.meta.kv[1] = (plexus_disco_kv){{S("a")}, {S("2")}};
    CHECK_EQ_INT(plexus_beacon_seal(b, &m, nonce, buf, sizeof buf, &len), PLEXUS_EINVAL);
    plexus_disco_sort_meta(&m.meta);
    CHECK_EQ_INT(plexus_beacon_seal(b, &m, nonce, buf, sizeof buf, &len), PLEXUS_OK);
    m.meta.kv[1] = m.meta.kv[0]; /* duplicate key */
    CHECK_EQ_INT(plexus_beacon_seal(b, &m, nonce, buf, sizeof buf, &len), PLEXUS_EINVAL);
    /* too big: 16 values of 255 bytes */
    static uint8_t val[PLEXUS_DISCO_VAL_MAX];
    static char keys[PLEXUS_DISCO_META_MAX][16];
    memset(val, 'x', sizeof val);
    m.meta.n = PLEXUS_DISCO_META_MAX;
    for (int i = 0; i < PLEXUS_DISCO_META_MAX; i++) {
        snprintf(keys[i], sizeof keys[i], "k%02d", i);
        m.meta.kv[i] = (plexus_disco_kv){{(const uint8_t *)keys[i], 3}, {val, sizeof val}};
    }
    CHECK_EQ_INT(plexus_beacon_seal(b, &m, nonce, buf, sizeof buf, &len), PLEXUS_ETOOBIG);
    m.meta.n = 2;
    CHECK_EQ_INT(plexus_beacon_seal(b, &m, nonce, buf, 60, &len), PLEXUS_ETOOBIG); /* cap */
    plexus_beacon_free(b);
}

/* Payloads sealed with the right key but malformed: decoded strictly, refused. */
static void test_authentic_malformed(void)
{
    plexus_beacon *rx = mk(SECRET, "c", 2, 0, 0);
    uint8_t master[32], key[32];
    crypto_generichash(master, 32, S(SECRET), (const uint8_t *)"plexus beacon v1", 16);
    crypto_kdf_derive_from_key(key, 32, 2, "plxbeacn", master);
    struct {
        const char *why;
        uint8_t p[16];
        size_t n;
        int rc;
    } cases[] = {
        {"empty", {0}, 0, PLEXUS_ETRUNCATED},
        {"no send time", {1, 1}, 2, PLEXUS_ETRUNCATED},
        {"zero incarnation", {0, 1, 0, 3, 'a', '@', 'b', 0}, 8, PLEXUS_EINVAL},
        {"name too short", {1, 1, 0, 2, 'a', '@', 0}, 7, PLEXUS_EINVAL},
        {"name runs off", {1, 1, 0, 9, 'a', '@', 'b'}, 7, PLEXUS_ETRUNCATED},
        {"bad name", {1, 1, 0, 3, 'a', 'x', 'b', 0}, 8, PLEXUS_EINVAL},
        {"no meta count", {1, 1, 0, 3, 'a', '@', 'b'}, 7, PLEXUS_ETRUNCATED},
        {"huge meta count", {1, 1, 0, 3, 'a', '@', 'b', 100}, 8, PLEXUS_ETOOBIG},
        {"meta count > bytes", {1, 1, 0, 3, 'a', '@', 'b', 2, 1, 'k', 0}, 11, PLEXUS_ECOUNT},
        {"trailing", {1, 1, 0, 3, 'a', '@', 'b', 0, 0}, 9, PLEXUS_ETRAILING},
        {"overlong varint", {0x81, 0x00, 1, 0, 3, 'a', '@', 'b', 0}, 9, PLEXUS_EVARINT},
        {"overlong send time", {1, 1, 0x80, 0x00, 3, 'a', '@', 'b', 0}, 9, PLEXUS_EVARINT},
        {"dup keys", {1, 1, 0, 3, 'a', '@', 'b', 2, 1, 'k', 0, 1, 'k', 0}, 14, PLEXUS_EORDER},
        {"empty key", {1, 1, 0, 3, 'a', '@', 'b', 1, 0, 1, 'v'}, 11, PLEXUS_EINVAL},
    };
    uint8_t buf[PLEXUS_BEACON_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        memcpy(buf, "PXB\x02\x00\x00\x00\x02", 8);
        randombytes_buf(buf + 8, 24);
        uint8_t ad[8 + 2];
        memcpy(ad, buf, 8);
        ad[8] = 1;
        ad[9] = 'c';
        unsigned long long clen;
        crypto_aead_xchacha20poly1305_ietf_encrypt(buf + 32, &clen, cases[i].p, cases[i].n, ad,
                                                   sizeof ad, NULL, buf + 8, key);
        plexus_beacon_msg got;
        int rc = plexus_beacon_open(rx, buf, 32 + (size_t)clen, 0, 0, &got);
        if (rc != cases[i].rc) fprintf(stderr, "  case %s: %d\n", cases[i].why, rc);
        CHECK_EQ_INT(rc, cases[i].rc);
    }
    plexus_beacon_counters c;
    plexus_beacon_get_counters(rx, &c);
    CHECK_EQ_INT(c.malformed, sizeof cases / sizeof *cases);
    CHECK_EQ_INT(c.senders, 0);
    plexus_beacon_free(rx);
}

static void test_alloc_faults(void)
{
    int rc = 0;
    FOR_EACH_FAULT(rc, {
        plexus_beacon_config c = {0};
        c.secret = (const uint8_t *)SECRET;
        c.secret_len = strlen(SECRET);
        plexus_beacon *b = NULL;
        rc = plexus_beacon_new(&c, &test_alloc, &b);
        if (!rc) {
            plexus_beacon_free(b);
        }
    });
    /* sender table growth: 40 senders need several reallocations */
    plexus_beacon *tx = mk(SECRET, "", 1, 0, 0);
    static uint8_t beacons[40][PLEXUS_BEACON_MAX];
    static size_t lens[40];
    static char names[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "n%d@h", i);
        plexus_beacon_msg m = msg(names[i], 1, 1);
        lens[i] = seal(tx, &m, beacons[i]);
    }
    FOR_EACH_FAULT(rc, {
        plexus_beacon_config c = {0};
        c.secret = (const uint8_t *)SECRET;
        c.secret_len = strlen(SECRET);
        c.epoch = 1;
        plexus_beacon *b = NULL;
        rc = plexus_beacon_new(&c, &test_alloc, &b);
        for (int i = 0; !rc && i < 40; i++) {
            plexus_beacon_msg got;
            rc = plexus_beacon_open(b, beacons[i], lens[i], 0, 0, &got);
        }
        plexus_beacon_free(b);
    });
    plexus_beacon_free(tx);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    RUN(test_config);
    RUN(test_round_trip);
    RUN(test_documented_kdf);
    RUN(test_wrong_key_cluster_epoch);
    RUN(test_altered_and_truncated);
    RUN(test_replay_window);
    RUN(test_send_time);
    RUN(test_sender_table_bound);
    RUN(test_seal_validation);
    RUN(test_authentic_malformed);
    RUN(test_alloc_faults);
    return harness_finish("beacon");
}
