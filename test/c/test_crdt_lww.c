/*
 * Unit tests of the LWW register and HLC (c_src/core/crdt_lww.c; Kulkarni et al.
 * 2014 for the clock rules: the clock never goes backward and moves past every
 * timestamp it observes).
 */
#include "harness.h"
#include "plexus/crdt.h"

static plexus_bytes B(const char *s)
{
    return (plexus_bytes){(const uint8_t *)s, strlen(s)};
}

static plexus_buf reg(uint64_t ts, const char *actor, const char *value)
{
    plexus_buf b;
    plexus_buf_init(&b, &test_alloc);
    CHECK_EQ_INT(plexus_lww_encode(ts, B(actor), B(value), &b), PLEXUS_OK);
    return b;
}

static void test_hlc_rules(void)
{
    /* wall clock ahead: take it */
    CHECK(plexus_hlc_next(0, 1000) == plexus_hlc_from_ms(1000));
    /* wall clock behind the last timestamp: logical tick */
    uint64_t last = plexus_hlc_from_ms(5000);
    CHECK(plexus_hlc_next(last, 1000) == last + 1);
    CHECK(plexus_hlc_ms(plexus_hlc_next(last, 1000)) == 5000);
    /* monotone over a wall clock that jumps around */
    uint64_t rng = 5, t = 0;
    for (int i = 0; i < 10000; i++) {
        uint64_t wall = 1000 + test_rand(&rng) % 50;
        uint64_t n = plexus_hlc_next(t, wall);
        CHECK(n > t);
        t = n;
    }
    CHECK(plexus_hlc_next(UINT64_MAX, 0) == UINT64_MAX);
    CHECK(plexus_hlc_from_ms(UINT64_MAX) == (UINT64_MAX >> 16) << 16);
}

static void test_roundtrip(void)
{
    plexus_buf b = reg(0x0102030405060708ULL, "node@host", "value");
    plexus_lww_view v;
    CHECK_EQ_INT(plexus_lww_decode(b.p, b.len, &v), PLEXUS_OK);
    CHECK(v.ts == 0x0102030405060708ULL);
    CHECK(v.actor.n == 9 && memcmp(v.actor.p, "node@host", 9) == 0);
    CHECK(v.value.n == 5 && memcmp(v.value.p, "value", 5) == 0);
    plexus_buf_free(&b);
}

static void test_merge_order(void)
{
    plexus_buf a = reg(10, "A", "x"), b = reg(11, "A", "a"), c = reg(11, "B", "a"),
               d = reg(11, "B", "b");
    plexus_bytes all[4] = {{a.p, a.len}, {b.p, b.len}, {c.p, c.len}, {d.p, d.len}};
    size_t w = 99;
    CHECK_EQ_INT(plexus_lww_merge(all, 4, &w), PLEXUS_OK);
    CHECK_EQ_INT(w, 3); /* ts, then actor, then value */
    plexus_bytes rev[4] = {all[3], all[2], all[1], all[0]};
    CHECK_EQ_INT(plexus_lww_merge(rev, 4, &w), PLEXUS_OK);
    CHECK_EQ_INT(w, 0); /* commutative: the same register wins */
    plexus_bytes two[2] = {all[1], all[1]};
    CHECK_EQ_INT(plexus_lww_merge(two, 2, &w), PLEXUS_OK);
    CHECK_EQ_INT(w, 0); /* first of equals */
    CHECK_EQ_INT(plexus_lww_merge(all, 0, &w), PLEXUS_EINVAL);
    plexus_buf_free(&a), plexus_buf_free(&b), plexus_buf_free(&c), plexus_buf_free(&d);
}

static void test_bad_input(void)
{
    plexus_buf b = reg(7, "actor", "value");
    plexus_lww_view v;
    for (size_t k = 0; k < b.len; k++)
        CHECK(plexus_lww_decode(b.p, k, &v) < 0);
    uint8_t copy[64];
    CHECK(b.len < sizeof copy);
    if (b.len >= sizeof copy) return;
    memcpy(copy, b.p, b.len);
    copy[b.len] = 0;
    CHECK_EQ_INT(plexus_lww_decode(copy, b.len + 1, &v), PLEXUS_ETRAILING);
    copy[1] = 'S';
    CHECK_EQ_INT(plexus_lww_decode(copy, b.len, &v), PLEXUS_ETYPE);
    copy[0] = 9;
    CHECK_EQ_INT(plexus_lww_decode(copy, b.len, &v), PLEXUS_EVERSION);
    CHECK_EQ_INT(plexus_lww_encode(1, B(""), B("v"), &b), PLEXUS_EINVAL);
    plexus_buf_free(&b);
    uint64_t rng = 3;
    uint8_t buf[40];
    for (int i = 0; i < 20000; i++) {
        size_t n = test_rand(&rng) % sizeof buf;
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)test_rand(&rng);
        if (n >= 2) buf[0] = 1, buf[1] = 'L';
        int rc = plexus_lww_decode(buf, n, &v);
        if (rc == 0) CHECK(v.actor.p + v.actor.n <= buf + n && v.value.p + v.value.n == buf + n);
    }
}

static void test_encode_fault_injection(void)
{
    int rc = 0;
    FOR_EACH_FAULT(rc, {
        plexus_buf b;
        plexus_buf_init(&b, &test_alloc);
        rc = plexus_lww_encode(1, B("a"), B("v"), &b);
        plexus_buf_free(&b);
    });
}

static void test_digest(void)
{
    plexus_buf a = reg(1, "A", "v"), b = reg(2, "A", "v");
    uint8_t d1[PLEXUS_DIGEST_BYTES], d2[PLEXUS_DIGEST_BYTES];
    CHECK_EQ_INT(plexus_crdt_digest(a.p, a.len, &test_alloc, d1), PLEXUS_OK);
    CHECK_EQ_INT(plexus_crdt_digest(b.p, b.len, &test_alloc, d2), PLEXUS_OK);
    CHECK(memcmp(d1, d2, sizeof d1) != 0);
    CHECK_EQ_INT(plexus_crdt_type(a.p, a.len), PLEXUS_TYPE_LWW);
    CHECK(plexus_crdt_digest(a.p, a.len - 1, &test_alloc, d1) < 0);
    plexus_buf_free(&a), plexus_buf_free(&b);
}

int main(void)
{
    RUN(test_hlc_rules);
    RUN(test_roundtrip);
    RUN(test_merge_order);
    RUN(test_bad_input);
    RUN(test_encode_fault_injection);
    RUN(test_digest);
    return harness_finish("test_crdt_lww");
}
