/*
 * Unit tests of the OR-Set core (c_src/core/crdt_orset_*.c) against the format rules
 * of include/plexus/crdt_format.md and the laws of Almeida et al. 2018 (§5): merge is
 * commutative, associative and idempotent; add wins over a concurrent remove; deltas
 * have the effect of the batch that made them.
 */
#include "harness.h"
#include "plexus/crdt.h"

typedef struct {
    uint8_t *p;
    size_t n;
} state;

static plexus_bytes B(const char *s)
{
    return (plexus_bytes){(const uint8_t *)s, strlen(s)};
}
static plexus_bytes SB(state s)
{
    return (plexus_bytes){s.p, s.n};
}

static state take(plexus_buf *b)
{
    state s = {b->p, b->len};
    return s;
}

static void drop(state *s)
{
    test_alloc.free(NULL, s->p);
    s->p = NULL;
    s->n = 0;
}

static state empty_set(void)
{
    plexus_buf b;
    plexus_buf_init(&b, &test_alloc);
    CHECK_EQ_INT(plexus_orset_new(&b), PLEXUS_OK);
    return take(&b);
}

/* Applies one op and replaces *s with the result; returns the rc. */
static int apply1(state *s, int kind, const char *elem, const char *actor, unsigned flags)
{
    plexus_orset_op op = {kind, B(elem)};
    plexus_buf out;
    plexus_buf_init(&out, &test_alloc);
    int rc = plexus_orset_apply(s->p, s->n, &op, 1, B(actor), flags, &test_alloc, &out, NULL, NULL);
    if (rc == PLEXUS_OK) {
        drop(s);
        *s = take(&out);
    } else {
        plexus_buf_free(&out);
    }
    return rc;
}

static state merge2(state x, state y)
{
    plexus_bytes in[2] = {SB(x), SB(y)};
    plexus_buf out;
    plexus_buf_init(&out, &test_alloc);
    int rc = plexus_orset_merge(in, 2, &test_alloc, &out);
    CHECK_EQ_INT(rc, PLEXUS_OK);
    return take(&out);
}

static int member(state s, const char *e)
{
    int found = -1;
    CHECK_EQ_INT(plexus_orset_member(s.p, s.n, B(e), &test_alloc, &found), PLEXUS_OK);
    return found;
}

static size_t count(state s)
{
    plexus_orset_info info;
    CHECK_EQ_INT(plexus_orset_validate(s.p, s.n, &test_alloc, &info), PLEXUS_OK);
    return info.n_elems;
}

static int same(state x, state y)
{
    return x.n == y.n && memcmp(x.p, y.p, x.n) == 0;
}

static void test_new_is_empty_and_valid(void)
{
    state s = empty_set();
    CHECK_EQ_INT(count(s), 0);
    CHECK_EQ_INT(s.n, 5);
    drop(&s);
}

static void test_add_remove_member(void)
{
    state s = empty_set();
    CHECK_EQ_INT(apply1(&s, PLEXUS_OP_ADD, "x", "A", 0), PLEXUS_OK);
    CHECK_EQ_INT(apply1(&s, PLEXUS_OP_ADD, "y", "A", 0), PLEXUS_OK);
    CHECK(member(s, "x") == 1);
    CHECK(member(s, "y") == 1);
    CHECK(member(s, "z") == 0);
    CHECK_EQ_INT(count(s), 2);
    CHECK_EQ_INT(apply1(&s, PLEXUS_OP_REMOVE, "x", "A", 0), PLEXUS_OK);
    CHECK(member(s, "x") == 0);
    CHECK_EQ_INT(count(s), 1);
    /* non-strict remove of an absent element is a no-op, strict is an error */
    CHECK_EQ_INT(apply1(&s, PLEXUS_OP_REMOVE, "x", "A", 0), PLEXUS_OK);
    CHECK_EQ_INT(apply1(&s, PLEXUS_OP_REMOVE, "x", "A", PLEXUS_APPLY_STRICT), PLEXUS_ENOTPRESENT);
    drop(&s);
}

static void test_batch_replays_in_order(void)
{
    state s = empty_set();
    plexus_orset_op ops[] = {
        {PLEXUS_OP_ADD, B("a")}, {PLEXUS_OP_ADD, B("b")},    {PLEXUS_OP_REMOVE, B("a")},
        {PLEXUS_OP_ADD, B("c")}, {PLEXUS_OP_REMOVE, B("c")}, {PLEXUS_OP_ADD, B("c")},
        {PLEXUS_OP_ADD, B("b")},
    };
    plexus_buf out;
    plexus_buf_init(&out, &test_alloc);
    CHECK_EQ_INT(plexus_orset_apply(s.p, s.n, ops, 7, B("A"), PLEXUS_APPLY_STRICT, &test_alloc,
                                    &out, NULL, NULL),
                 PLEXUS_OK);
    drop(&s);
    s = take(&out);
    CHECK(member(s, "a") == 0);
    CHECK(member(s, "b") == 1);
    CHECK(member(s, "c") == 1);
    CHECK_EQ_INT(count(s), 2);

    /* strict: the failing op is reported by its list index */
    plexus_orset_op bad[] = {
        {PLEXUS_OP_ADD, B("q")}, {PLEXUS_OP_REMOVE, B("q")}, {PLEXUS_OP_REMOVE, B("q")}};
    size_t bad_op = 99;
    plexus_buf_init(&out, &test_alloc);
    CHECK_EQ_INT(plexus_orset_apply(s.p, s.n, bad, 3, B("A"), PLEXUS_APPLY_STRICT, &test_alloc,
                                    &out, NULL, &bad_op),
                 PLEXUS_ENOTPRESENT);
    CHECK_EQ_INT(bad_op, 2);
    CHECK_EQ_INT(out.len, 0);
    plexus_buf_free(&out);
    /* the first failing op in list order, not in element order */
    plexus_orset_op two_bad[] = {
        {PLEXUS_OP_ADD, B("m")}, {PLEXUS_OP_REMOVE, B("z")}, {PLEXUS_OP_REMOVE, B("a")}};
    plexus_buf_init(&out, &test_alloc);
    CHECK_EQ_INT(plexus_orset_apply(s.p, s.n, two_bad, 3, B("A"), PLEXUS_APPLY_STRICT, &test_alloc,
                                    &out, NULL, &bad_op),
                 PLEXUS_ENOTPRESENT);
    CHECK_EQ_INT(bad_op, 1);
    plexus_buf_free(&out);
    drop(&s);
}

static void test_add_wins_over_concurrent_remove(void)
{
    state a = empty_set();
    CHECK_EQ_INT(apply1(&a, PLEXUS_OP_ADD, "x", "A", 0), PLEXUS_OK);
    state b = merge2(a, a);
    /* concurrently: A removes x, B re-adds x */
    CHECK_EQ_INT(apply1(&a, PLEXUS_OP_REMOVE, "x", "A", 0), PLEXUS_OK);
    CHECK_EQ_INT(apply1(&b, PLEXUS_OP_ADD, "x", "B", 0), PLEXUS_OK);
    state m1 = merge2(a, b), m2 = merge2(b, a);
    CHECK(member(m1, "x") == 1);
    CHECK(same(m1, m2));
    /* but a remove that saw the add does remove it */
    CHECK_EQ_INT(apply1(&m1, PLEXUS_OP_REMOVE, "x", "A", 0), PLEXUS_OK);
    state m3 = merge2(m1, b);
    CHECK(member(m3, "x") == 0);
    drop(&a), drop(&b), drop(&m1), drop(&m2), drop(&m3);
}

/* --------------------------------------------------------------- random replicas */

#define NREP 3
#define NELEM 12

static const char *elem_name(uint64_t i)
{
    static const char *names[NELEM] = {"a",  "b",  "c",  "d",   "e", "f",
                                       "gg", "hh", "ii", "jjj", "k", "\x01"};
    return names[i % NELEM];
}

static const char *actor_name(int r)
{
    static const char *names[] = {"node-A", "node-B", "node-C"};
    return names[r];
}

static void random_mutation(state *s, int r, uint64_t *rng)
{
    const char *e = elem_name(test_rand(rng));
    int kind = test_rand(rng) % 3 ? PLEXUS_OP_ADD : PLEXUS_OP_REMOVE;
    CHECK_EQ_INT(apply1(s, kind, e, actor_name(r), 0), PLEXUS_OK);
}

static void test_merge_laws_random(void)
{
    uint64_t rng = 42;
    for (int round = 0; round < 300; round++) {
        state r[NREP];
        for (int i = 0; i < NREP; i++)
            r[i] = empty_set();
        int steps = (int)(test_rand(&rng) % 30);
        for (int k = 0; k < steps; k++) {
            int i = (int)(test_rand(&rng) % NREP);
            if (test_rand(&rng) % 4 == 0) { /* occasional sync from another replica */
                int j = (int)(test_rand(&rng) % NREP);
                state m = merge2(r[i], r[j]);
                drop(&r[i]);
                r[i] = m;
            } else {
                random_mutation(&r[i], i, &rng);
            }
        }
        state ab = merge2(r[0], r[1]), ba = merge2(r[1], r[0]);
        CHECK(same(ab, ba)); /* commutative */
        state ab_c = merge2(ab, r[2]), bc = merge2(r[1], r[2]), a_bc = merge2(r[0], bc);
        CHECK(same(ab_c, a_bc)); /* associative */
        state aa = merge2(r[0], r[0]);
        CHECK(same(aa, r[0])); /* idempotent */
        state abab = merge2(ab, ab);
        CHECK(same(abab, ab));
        /* n-way merge equals the fold */
        plexus_bytes in[3] = {SB(r[0]), SB(r[1]), SB(r[2])};
        plexus_buf out;
        plexus_buf_init(&out, &test_alloc);
        CHECK_EQ_INT(plexus_orset_merge(in, 3, &test_alloc, &out), PLEXUS_OK);
        state nway = take(&out);
        CHECK(same(nway, ab_c));
        drop(&nway), drop(&ab), drop(&ba), drop(&ab_c), drop(&bc), drop(&a_bc), drop(&aa),
            drop(&abab);
        for (int i = 0; i < NREP; i++)
            drop(&r[i]);
    }
}

/* Sequential spec: one replica, ops applied one by one, equals a plain set. */
static void test_sequential_spec_random(void)
{
    uint64_t rng = 7;
    for (int round = 0; round < 200; round++) {
        state s = empty_set();
        int model[NELEM] = {0};
        int steps = (int)(test_rand(&rng) % 40);
        for (int k = 0; k < steps; k++) {
            uint64_t e = test_rand(&rng) % NELEM;
            int add = test_rand(&rng) % 2;
            const char *actor = actor_name((int)(test_rand(&rng) % 3));
            CHECK_EQ_INT(apply1(&s, add ? PLEXUS_OP_ADD : PLEXUS_OP_REMOVE, elem_name(e), actor, 0),
                         PLEXUS_OK);
            model[e] = add;
        }
        size_t n = 0;
        for (int e = 0; e < NELEM; e++) {
            CHECK(member(s, elem_name((uint64_t)e)) == model[e]);
            n += (size_t)model[e];
        }
        CHECK_EQ_INT(count(s), n);
        drop(&s);
    }
}

/* Deltas: merging a batch's delta into a replica that saw the original state
 * gives the batch result; deltas merged out of order still converge. */
static void test_deltas(void)
{
    uint64_t rng = 99;
    for (int round = 0; round < 200; round++) {
        state base = empty_set();
        for (int k = 0; k < 8; k++)
            random_mutation(&base, 0, &rng);
        state cur = merge2(base, base);
        state deltas[6];
        int nd = 0;
        for (int d = 0; d < 6; d++) {
            plexus_orset_op ops[4];
            size_t nops = 1 + test_rand(&rng) % 4;
            for (size_t i = 0; i < nops; i++)
                ops[i] = (plexus_orset_op){test_rand(&rng) % 3 ? PLEXUS_OP_ADD : PLEXUS_OP_REMOVE,
                                           B(elem_name(test_rand(&rng)))};
            const char *actor = actor_name((int)(test_rand(&rng) % 3));
            plexus_buf out, delta;
            plexus_buf_init(&out, &test_alloc);
            plexus_buf_init(&delta, &test_alloc);
            CHECK_EQ_INT(plexus_orset_apply(cur.p, cur.n, ops, nops, B(actor), 0, &test_alloc, &out,
                                            &delta, NULL),
                         PLEXUS_OK);
            CHECK_EQ_INT(plexus_orset_validate(delta.p, delta.len, &test_alloc, NULL), PLEXUS_OK);
            state next = take(&out), dl = take(&delta);
            state via = merge2(cur, dl); /* replica that saw cur */
            CHECK(same(via, next));
            drop(&via);
            drop(&cur);
            cur = next;
            deltas[nd++] = dl;
        }
        /* a replica at base receives the deltas in reverse order */
        state r = merge2(base, base);
        for (int d = nd - 1; d >= 0; d--) {
            state m = merge2(r, deltas[d]);
            drop(&r);
            r = m;
        }
        CHECK(same(r, cur));
        drop(&r), drop(&base), drop(&cur);
        for (int d = 0; d < nd; d++)
            drop(&deltas[d]);
    }
}

/* ----------------------------------------------------------------- bad input */

static state sample_state(void)
{
    state s = empty_set();
    const char *elems[] = {"alpha", "beta", "gamma", "delta", "eps"};
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(apply1(&s, PLEXUS_OP_ADD, elems[i], "A", 0), 0);
    CHECK_EQ_INT(apply1(&s, PLEXUS_OP_ADD, "beta", "B", 0), 0);
    CHECK_EQ_INT(apply1(&s, PLEXUS_OP_REMOVE, "gamma", "B", 0), 0);
    return s;
}

static void test_truncations_rejected(void)
{
    state s = sample_state();
    for (size_t k = 0; k < s.n; k++) {
        int rc = plexus_orset_validate(s.p, k, &test_alloc, NULL);
        CHECK(rc < 0);
        plexus_bytes in[2] = {{s.p, k}, SB(s)};
        plexus_buf out;
        plexus_buf_init(&out, &test_alloc);
        CHECK(plexus_orset_merge(in, 2, &test_alloc, &out) < 0);
        plexus_buf_free(&out);
    }
    drop(&s);
}

static void test_bitflips_never_crash(void)
{
    state s = sample_state();
    uint8_t *copy = malloc(s.n);
    int rejected = 0;
    for (size_t i = 0; i < s.n * 8; i++) {
        memcpy(copy, s.p, s.n);
        copy[i / 8] ^= (uint8_t)(1u << (i % 8));
        int rc = plexus_orset_validate(copy, s.n, &test_alloc, NULL);
        rejected += rc < 0;
        plexus_bytes in[2] = {{copy, s.n}, SB(s)};
        plexus_buf out;
        plexus_buf_init(&out, &test_alloc);
        int mrc = plexus_orset_merge(in, 2, &test_alloc, &out);
        CHECK((rc < 0) == (mrc < 0)); /* merge accepts exactly what validate accepts */
        if (mrc == 0) CHECK_EQ_INT(plexus_orset_validate(out.p, out.len, &test_alloc, NULL), 0);
        plexus_buf_free(&out);
    }
    CHECK(rejected > (int)(s.n * 8) / 2);
    free(copy);
    drop(&s);
}

static void test_specific_rejections(void)
{
    uint8_t buf[64];
    /* header */
    CHECK_EQ_INT(plexus_orset_validate((const uint8_t *)"", 0, &test_alloc, NULL),
                 PLEXUS_ETRUNCATED);
    CHECK_EQ_INT(plexus_orset_validate((const uint8_t *)"\x02S\0\0\0", 5, &test_alloc, NULL),
                 PLEXUS_EVERSION);
    CHECK_EQ_INT(plexus_orset_validate((const uint8_t *)"\x01L\0\0\0", 5, &test_alloc, NULL),
                 PLEXUS_ETYPE);
    CHECK_EQ_INT(plexus_orset_validate((const uint8_t *)"\x01S\0\0\0\0", 6, &test_alloc, NULL),
                 PLEXUS_ETRAILING);
    /* oversized counts: 2^40 elements in a 12-byte state */
    const uint8_t huge[] = {1, 'S', 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20};
    CHECK_EQ_INT(plexus_orset_validate(huge, sizeof huge, &test_alloc, NULL), PLEXUS_ECOUNT);
    const uint8_t many_actors[] = {1, 'S', 0xff, 0xff, 0x7f};
    CHECK_EQ_INT(plexus_orset_validate(many_actors, sizeof many_actors, &test_alloc, NULL),
                 PLEXUS_ECOUNT);
    /* unsorted actors */
    const uint8_t unsorted[] = {1, 'S', 2, 1, 'b', 1, 1, 'a', 1, 0, 0};
    CHECK_EQ_INT(plexus_orset_validate(unsorted, sizeof unsorted, &test_alloc, NULL),
                 PLEXUS_EORDER);
    /* unused actor (vv 0, no cloud) */
    const uint8_t unused[] = {1, 'S', 1, 1, 'a', 0, 0, 0};
    CHECK_EQ_INT(plexus_orset_validate(unused, sizeof unused, &test_alloc, NULL), PLEXUS_EORDER);
    /* dot not covered: vv[a] = 1, element dot (0, 2) */
    const uint8_t uncovered[] = {1, 'S', 1, 1, 'a', 1, 0, 1, 1, 'x', 1, 0, 2};
    CHECK_EQ_INT(plexus_orset_validate(uncovered, sizeof uncovered, &test_alloc, NULL),
                 PLEXUS_EDOT);
    /* actor index out of range */
    const uint8_t bad_actor[] = {1, 'S', 1, 1, 'a', 1, 0, 1, 1, 'x', 1, 1, 1};
    CHECK_EQ_INT(plexus_orset_validate(bad_actor, sizeof bad_actor, &test_alloc, NULL),
                 PLEXUS_EACTOR);
    /* cloud dot at vv + 1 must have been folded */
    const uint8_t unfolded[] = {1, 'S', 1, 1, 'a', 1, 1, 0, 2, 0};
    CHECK_EQ_INT(plexus_orset_validate(unfolded, sizeof unfolded, &test_alloc, NULL),
                 PLEXUS_EORDER);
    /* a valid one with a cloud: vv[a] = 1, cloud (a, 3), element dot (a, 3) */
    const uint8_t cloud_ok[] = {1, 'S', 1, 1, 'a', 1, 1, 0, 3, 1, 1, 'x', 1, 0, 3};
    CHECK_EQ_INT(plexus_orset_validate(cloud_ok, sizeof cloud_ok, &test_alloc, NULL), PLEXUS_OK);
    /* duplicate element */
    const uint8_t dup[] = {1, 'S', 1, 1, 'a', 2, 0, 2, 1, 'x', 1, 0, 1, 1, 'x', 1, 0, 2};
    CHECK_EQ_INT(plexus_orset_validate(dup, sizeof dup, &test_alloc, NULL), PLEXUS_EORDER);
    /* non-minimal varint in a count */
    const uint8_t nonmin[] = {1, 'S', 0x80, 0x00, 0, 0};
    CHECK_EQ_INT(plexus_orset_validate(nonmin, sizeof nonmin, &test_alloc, NULL), PLEXUS_EVARINT);
    (void)buf;
}

static void test_random_bytes_never_crash(void)
{
    uint64_t rng = 1234;
    uint8_t buf[96];
    for (int i = 0; i < 20000; i++) {
        size_t n = test_rand(&rng) % sizeof buf;
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)test_rand(&rng);
        if (n >= 2 && (i & 1)) buf[0] = 1, buf[1] = 'S'; /* get past the header */
        int found;
        CHECK(plexus_orset_validate(buf, n, &test_alloc, NULL) <= 0);
        if (plexus_orset_member(buf, n, B("x"), &test_alloc, &found) == 0)
            CHECK(found == 0 || found == 1);
    }
}

/* ------------------------------------------------------------ fault injection */

static void test_fault_injection_apply_merge(void)
{
    state s = sample_state(), t = empty_set();
    CHECK_EQ_INT(apply1(&t, PLEXUS_OP_ADD, "zeta", "C", 0), 0);
    CHECK_EQ_INT(apply1(&t, PLEXUS_OP_ADD, "alpha", "C", 0), 0);
    int rc = 0;
    FOR_EACH_FAULT(rc, {
        plexus_orset_op ops[] = {{PLEXUS_OP_ADD, B("new")}, {PLEXUS_OP_REMOVE, B("beta")}};
        plexus_buf out, delta;
        plexus_buf_init(&out, &test_alloc);
        plexus_buf_init(&delta, &test_alloc);
        rc = plexus_orset_apply(s.p, s.n, ops, 2, B("0-first-actor"), 0, &test_alloc, &out, &delta,
                                NULL);
        plexus_buf_free(&out);
        plexus_buf_free(&delta);
    });
    FOR_EACH_FAULT(rc, {
        plexus_bytes in[3] = {SB(s), SB(t), SB(s)};
        plexus_buf out;
        plexus_buf_init(&out, &test_alloc);
        rc = plexus_orset_merge(in, 3, &test_alloc, &out);
        plexus_buf_free(&out);
    });
    FOR_EACH_FAULT(rc, {
        int found = 0;
        rc = plexus_orset_member(s.p, s.n, B("alpha"), &test_alloc, &found);
    });
    FOR_EACH_FAULT(rc, {
        plexus_orset_iter it;
        rc = plexus_orset_iter_init(&it, s.p, s.n, &test_alloc);
    });
    FOR_EACH_FAULT(rc, {
        plexus_orset_info info;
        rc = plexus_orset_validate(s.p, s.n, &test_alloc, &info);
    });
    FOR_EACH_FAULT(rc, {
        uint8_t d[PLEXUS_DIGEST_BYTES];
        rc = plexus_crdt_digest(s.p, s.n, &test_alloc, d);
    });
    FOR_EACH_FAULT(rc, {
        plexus_buf out;
        plexus_buf_init(&out, &test_alloc);
        rc = plexus_orset_new(&out);
        plexus_buf_free(&out);
    });
    drop(&s);
    drop(&t);
}

static void test_iteration_and_digest(void)
{
    state s = sample_state();
    plexus_orset_iter it;
    CHECK_EQ_INT(plexus_orset_iter_init(&it, s.p, s.n, &test_alloc), PLEXUS_OK);
    const char *want[] = {"alpha", "beta", "delta", "eps"};
    plexus_bytes e;
    int i = 0;
    while (plexus_orset_iter_next(&it, &e)) {
        CHECK(i < 4 && e.n == strlen(want[i]) && memcmp(e.p, want[i], e.n) == 0);
        i++;
    }
    CHECK_EQ_INT(i, 4);
    uint8_t d1[PLEXUS_DIGEST_BYTES], d2[PLEXUS_DIGEST_BYTES];
    CHECK_EQ_INT(plexus_crdt_digest(s.p, s.n, &test_alloc, d1), PLEXUS_OK);
    state t = merge2(s, s);
    CHECK_EQ_INT(plexus_crdt_digest(t.p, t.n, &test_alloc, d2), PLEXUS_OK);
    CHECK(memcmp(d1, d2, sizeof d1) == 0);
    CHECK_EQ_INT(apply1(&t, PLEXUS_OP_ADD, "omega", "A", 0), 0);
    CHECK_EQ_INT(plexus_crdt_digest(t.p, t.n, &test_alloc, d2), PLEXUS_OK);
    CHECK(memcmp(d1, d2, sizeof d1) != 0);
    CHECK(plexus_crdt_digest(s.p, s.n - 1, &test_alloc, d2) < 0);
    drop(&s), drop(&t);
}

static void test_size_small_ints(void)
{
    /* 100k elements shaped like term_to_binary(N) without the 131 byte */
    enum { N = 100000 };
    plexus_orset_op *ops = malloc(N * sizeof *ops);
    uint8_t *bytes = malloc(N * 5);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t *b = bytes + 5 * i;
        size_t len;
        if (i < 256) {
            b[0] = 97, b[1] = (uint8_t)i, len = 2;
        } else {
            b[0] = 98, b[1] = (uint8_t)(i >> 24), b[2] = (uint8_t)(i >> 16),
            b[3] = (uint8_t)(i >> 8), b[4] = (uint8_t)i, len = 5;
        }
        ops[i] = (plexus_orset_op){PLEXUS_OP_ADD, {b, len}};
    }
    state s = empty_set();
    plexus_buf out;
    plexus_buf_init(&out, &test_alloc);
    CHECK_EQ_INT(
        plexus_orset_apply(s.p, s.n, ops, N, B("plexus@host"), 0, &test_alloc, &out, NULL, NULL),
        PLEXUS_OK);
    CHECK(out.len <= 12u * N);
    CHECK_EQ_INT(count((state){out.p, out.len}), N);
    plexus_buf_free(&out);
    drop(&s);
    free(ops);
    free(bytes);
}

/* Bytes asked of the allocator (malloc and realloc sizes), for the cost of a merge. */
static size_t counted_bytes;

static void *counting_malloc(void *ctx, size_t n)
{
    counted_bytes += n;
    return test_alloc.malloc(ctx, n);
}

static void *counting_realloc(void *ctx, void *p, size_t n)
{
    counted_bytes += n;
    return test_alloc.realloc(ctx, p, n);
}

static void counting_free(void *ctx, void *p)
{
    test_alloc.free(ctx, p);
}

static const plexus_alloc counting_alloc = {counting_malloc, counting_realloc, counting_free, NULL};

/* The n-way merge of k states equals the fold of pairwise merges, for every k (the
 * tree of merges has a different shape for each), and costs O(total log k): it used
 * to fold, rewriting the growing result once per state, so k one-element states of k
 * actors cost O(k^2) (1,500 of them, 54 KB, held a normal scheduler for 75 ms). */
static void test_nway_merge_is_balanced(void)
{
    enum { K = 2000 };
    static state s[K];
    static plexus_bytes in[K];
    char elem[32], actor[32];
    size_t total = 0;
    for (int i = 0; i < K; i++) {
        s[i] = empty_set();
        snprintf(elem, sizeof elem, "e%d", i % 37);
        snprintf(actor, sizeof actor, "actor-%05d", i);
        CHECK_EQ_INT(apply1(&s[i], PLEXUS_OP_ADD, elem, actor, 0), PLEXUS_OK);
        if (i % 5 == 0) CHECK_EQ_INT(apply1(&s[i], PLEXUS_OP_REMOVE, elem, actor, 0), PLEXUS_OK);
        in[i] = SB(s[i]);
        total += s[i].n;
    }
    for (size_t k = 3; k <= 70; k++) {
        state fold = merge2(s[0], s[1]);
        for (size_t i = 2; i < k; i++) {
            state m = merge2(fold, s[i]);
            drop(&fold);
            fold = m;
        }
        plexus_buf out;
        plexus_buf_init(&out, &test_alloc);
        CHECK_EQ_INT(plexus_orset_merge(in, k, &test_alloc, &out), PLEXUS_OK);
        state nway = take(&out);
        CHECK(same(nway, fold));
        drop(&nway), drop(&fold);
    }
    plexus_buf out;
    plexus_buf_init(&out, &counting_alloc);
    counted_bytes = 0;
    CHECK_EQ_INT(plexus_orset_merge(in, K, &counting_alloc, &out), PLEXUS_OK);
    /* 11 levels (log2 2000), each asking for its results, their reserve margins and the
     * contexts it parses: 68 times the input here; the fold asked for 2,600 times */
    CHECK(counted_bytes < 200 * total);
    CHECK_EQ_INT(count(take(&out)), 37);
    plexus_buf_free(&out);
    for (int i = 0; i < K; i++)
        drop(&s[i]);
}

int main(void)
{
    RUN(test_new_is_empty_and_valid);
    RUN(test_add_remove_member);
    RUN(test_batch_replays_in_order);
    RUN(test_add_wins_over_concurrent_remove);
    RUN(test_merge_laws_random);
    RUN(test_nway_merge_is_balanced);
    RUN(test_sequential_spec_random);
    RUN(test_deltas);
    RUN(test_truncations_rejected);
    RUN(test_bitflips_never_crash);
    RUN(test_specific_rejections);
    RUN(test_random_bytes_never_crash);
    RUN(test_fault_injection_apply_merge);
    RUN(test_iteration_and_digest);
    RUN(test_size_small_ints);
    return harness_finish("test_crdt_orset");
}
