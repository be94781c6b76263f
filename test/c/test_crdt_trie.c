/*
 * Tests of the CRDT v2 trie helpers (include/plexus/crdt_trie.h): the entry hash is
 * pinned (it is part of the in-memory format: every node must sum the same hashes,
 * and test/eunit/plexus_crdt_trie_tests.erl pins the same value through the NIF),
 * the causal context answers covers() as the Erlang one does, and the dot merge keeps
 * exactly the ORSWOT dots. The context is built under the fault-injecting allocator.
 */
#include <string.h>

#include "harness.h"
#include "plexus/crdt_trie.h"

static plexus_bytes S(const char *s)
{
    plexus_bytes b = {(const uint8_t *)s, strlen(s)};
    return b;
}

static plexus_dot D(const char *actor, uint64_t ctr)
{
    plexus_dot d = {S(actor), ctr};
    return d;
}

/* The hash of {Key, [{Actor, Ctr}, ...]}, as nif_trie.c computes it. */
static uint64_t entry_hash(const char *key, const plexus_dot *d, size_t n)
{
    return plexus_thash_orset_entry((plexus_bytes){(const uint8_t *)key, strlen(key)}, d, n);
}

static void test_hash_pinned(void)
{
    plexus_dot d = D("a", 1);
    /* plexus_crdt_trie:ehash({<<"k">>, [{<<"a">>, 1}]}) */
    CHECK(entry_hash("k", &d, 1) == UINT64_C(14890959388372647));
    CHECK(entry_hash("k", &d, 1) <= PLEXUS_THASH_MASK);
}

static void test_hash_tells_apart(void)
{
    plexus_dot d1 = D("a", 1), d2 = D("a", 2), db = D("b", 1), two[2] = {D("a", 1), D("a", 2)};
    uint64_t h = entry_hash("k", &d1, 1);
    CHECK(h != entry_hash("k", &d2, 1));
    CHECK(h != entry_hash("k", &db, 1));
    CHECK(h != entry_hash("j", &d1, 1));
    CHECK(h != entry_hash("k", two, 2));
    CHECK(h != entry_hash("k", NULL, 0));
    /* lengths are hashed: a key that runs into the next field is another entry */
    plexus_dot e1 = D("", 1), e2 = D("a", 1);
    CHECK(entry_hash("ka", &e1, 1) != entry_hash("k", &e2, 1));
    /* keys longer than a word and with a tail: every byte counts */
    CHECK(entry_hash("0123456789abcdef", &d1, 1) != entry_hash("0123456789abcdeF", &d1, 1));
    CHECK(entry_hash("0123456789abcdefg", &d1, 1) != entry_hash("0123456789abcdefh", &d1, 1));
    /* an integer and a binary of the same value differ */
    plexus_thash a, b;
    plexus_thash_init(&a);
    plexus_thash_init(&b);
    plexus_thash_int(&a, 1);
    plexus_thash_bin(&b, (const uint8_t *)"\1", 1);
    CHECK(plexus_thash_final(&a) != plexus_thash_final(&b));
}

static int build_ctx(plexus_dotctx *c)
{
    int rc;
    plexus_dotctx_init(c, &test_alloc);
    /* vector a:3, b:1; cloud a:5, c:2, plus enough cloud dots to regrow the array */
    if ((rc = plexus_dotctx_add_vv(c, S("b"), 1))) return rc;
    if ((rc = plexus_dotctx_add_vv(c, S("a"), 3))) return rc;
    if ((rc = plexus_dotctx_add_cloud(c, S("c"), 2))) return rc;
    if ((rc = plexus_dotctx_add_cloud(c, S("a"), 5))) return rc;
    for (uint64_t i = 0; i < 20; i++)
        if ((rc = plexus_dotctx_add_cloud(c, S("z"), 100 + 2 * i))) return rc;
    return plexus_dotctx_seal(c);
}

static void test_ctx_covers(void)
{
    plexus_dotctx c;
    CHECK_EQ_INT(build_ctx(&c), PLEXUS_OK);
    plexus_dot yes[] = {D("a", 1), D("a", 3),   D("b", 1),  D("a", 5),
                        D("c", 2), D("z", 100), D("z", 138)};
    plexus_dot no[] = {D("a", 4), D("a", 6),   D("b", 2), D("c", 1), D("c", 3),
                       D("d", 1), D("z", 101), D("", 1),  D("aa", 1)};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        CHECK(plexus_dotctx_covers(&c, &yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK(!plexus_dotctx_covers(&c, &no[i]));
    plexus_dotctx_free(&c);
    plexus_dotctx_free(&c); /* harmless twice */

    plexus_dotctx e;
    plexus_dotctx_init(&e, &test_alloc);
    CHECK_EQ_INT(plexus_dotctx_seal(&e), PLEXUS_OK);
    plexus_dot d = D("a", 1);
    CHECK(!plexus_dotctx_covers(&e, &d));
    plexus_dotctx_free(&e);
}

static void test_ctx_duplicate_actor(void)
{
    plexus_dotctx c;
    plexus_dotctx_init(&c, &test_alloc);
    CHECK_EQ_INT(plexus_dotctx_add_vv(&c, S("a"), 1), PLEXUS_OK);
    CHECK_EQ_INT(plexus_dotctx_add_vv(&c, S("a"), 2), PLEXUS_OK);
    CHECK_EQ_INT(plexus_dotctx_seal(&c), PLEXUS_EORDER);
    plexus_dotctx_free(&c);
}

static void test_ctx_fault_injection(void)
{
    int rc = 0;
    FOR_EACH_FAULT(rc, {
        plexus_dotctx c;
        rc = build_ctx(&c);
        plexus_dotctx_free(&c);
    });
}

static void test_dots_merge(void)
{
    plexus_dotctx ca, cb;
    plexus_dotctx_init(&ca, &test_alloc);
    plexus_dotctx_init(&cb, &test_alloc);
    /* A has seen a:1..2 and b:1; B has seen a:1..3 */
    CHECK_EQ_INT(plexus_dotctx_add_vv(&ca, S("a"), 2), PLEXUS_OK);
    CHECK_EQ_INT(plexus_dotctx_add_vv(&ca, S("b"), 1), PLEXUS_OK);
    CHECK_EQ_INT(plexus_dotctx_add_vv(&cb, S("a"), 3), PLEXUS_OK);
    CHECK_EQ_INT(plexus_dotctx_seal(&ca), PLEXUS_OK);
    CHECK_EQ_INT(plexus_dotctx_seal(&cb), PLEXUS_OK);
    /* a: [a1, a2, b1]; b: [a1, a3, c1] */
    plexus_dot a[] = {D("a", 1), D("a", 2), D("b", 1)};
    plexus_dot b[] = {D("a", 1), D("a", 3), D("c", 1)};
    long out[6];
    size_t n = plexus_dots_merge(a, 3, b, 3, &ca, &cb, out);
    /* a1 both; a2 only A and B saw it (removed there): gone; b1 only A, unseen by B:
     * kept; a3 only B, unseen by A: kept; c1 only B, unseen: kept */
    CHECK_EQ_INT(n, 4);
    CHECK_EQ_INT(out[0], 0);
    CHECK_EQ_INT(out[1], -1 - 1);
    CHECK_EQ_INT(out[2], 2);
    CHECK_EQ_INT(out[3], -1 - 2);
    /* one side only (keep_unseen): a against B's context keeps b1 only */
    n = plexus_dots_merge(a, 3, NULL, 0, NULL, &cb, out);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(out[0], 2);
    n = plexus_dots_merge(NULL, 0, b, 3, &ca, NULL, out);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(out[0], -1 - 1);
    CHECK_EQ_INT(out[1], -1 - 2);
    plexus_dotctx_free(&ca);
    plexus_dotctx_free(&cb);
}

static void test_dot_order(void)
{
    plexus_dot x = D("a", 2), y = D("a", 10), z = D("ab", 1), w = D("b", 0);
    CHECK(plexus_dot_cmp(&x, &y) < 0);
    CHECK(plexus_dot_cmp(&y, &z) < 0); /* a prefix sorts first, as Erlang binaries */
    CHECK(plexus_dot_cmp(&z, &w) < 0);
    CHECK(plexus_dot_cmp(&x, &x) == 0);
}

int main(void)
{
    RUN(test_hash_pinned);
    RUN(test_hash_tells_apart);
    RUN(test_ctx_covers);
    RUN(test_ctx_duplicate_actor);
    RUN(test_ctx_fault_injection);
    RUN(test_dots_merge);
    RUN(test_dot_order);
    return harness_finish("test_crdt_trie");
}
