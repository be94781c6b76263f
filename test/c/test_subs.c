/*
 * Subscriber table tests (c_src/core/subs.c, the C node's subscribers): add, update,
 * remove, drop a whole node, the bound (PLEXUS_EFULL leaves the table unchanged),
 * memory that shrinks back after churn, a randomized check against a plain-array model
 * (every index and node count after every step), and every allocation failure.
 */
#include <sodium.h>

#include "harness.h"
#include "plexus/subs.h"

#define S(s) (const uint8_t *)(s), strlen(s)

static const uint8_t key[PLEXUS_SUBS_KEY_BYTES] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                   9, 10, 11, 12, 13, 14, 15, 16};

static void mkid(uint8_t *id, uint32_t n)
{
    memset(id, 0, PLEXUS_SUBS_ID_BYTES);
    memcpy(id, &n, sizeof n);
}

static plexus_subs *mk(size_t max)
{
    plexus_subs *t = NULL;
    CHECK_EQ_INT(plexus_subs_new(&test_alloc, max, key, &t), PLEXUS_OK);
    return t;
}

static void test_basics(void)
{
    plexus_subs *t = mk(10);
    uint8_t id[PLEXUS_SUBS_ID_BYTES];
    int added = -1;
    mkid(id, 1);
    CHECK_EQ_INT(plexus_subs_put(t, S("a@h"), id, 1, &added), PLEXUS_OK);
    CHECK_EQ_INT(added, 1);
    CHECK_EQ_INT(plexus_subs_put(t, S("a@h"), id, 3, &added), PLEXUS_OK);
    CHECK_EQ_INT(added, 0);
    CHECK_EQ_INT(plexus_subs_count(t), 1);
    plexus_sub s;
    CHECK_EQ_INT(plexus_subs_get(t, 0, &s), PLEXUS_OK);
    CHECK_EQ_INT(s.flags, 3);
    CHECK(s.node_len == 3 && memcmp(s.node, "a@h", 3) == 0);
    CHECK(memcmp(s.id, id, sizeof id) == 0);
    CHECK_EQ_INT(plexus_subs_get(t, 1, &s), PLEXUS_ENOTFOUND);
    /* the same id on another node is another subscriber */
    CHECK_EQ_INT(plexus_subs_put(t, S("b@h"), id, 0, &added), PLEXUS_OK);
    CHECK_EQ_INT(added, 1);
    CHECK_EQ_INT(plexus_subs_nodes(t), 2);
    CHECK_EQ_INT(plexus_subs_node_count(t, S("a@h")), 1);
    CHECK_EQ_INT(plexus_subs_remove(t, S("a@h"), id), PLEXUS_OK);
    CHECK_EQ_INT(plexus_subs_remove(t, S("a@h"), id), PLEXUS_ENOTFOUND);
    CHECK_EQ_INT(plexus_subs_remove(t, S("c@h"), id), PLEXUS_ENOTFOUND);
    CHECK_EQ_INT(plexus_subs_node_count(t, S("a@h")), 0);
    CHECK_EQ_INT(plexus_subs_nodes(t), 1);
    CHECK_EQ_INT(plexus_subs_count(t), 1);
    /* bad names */
    CHECK_EQ_INT(plexus_subs_put(t, (const uint8_t *)"", 0, id, 0, &added), PLEXUS_EINVAL);
    uint8_t longname[PLEXUS_SUBS_NODE_MAX + 1];
    memset(longname, 'x', sizeof longname);
    CHECK_EQ_INT(plexus_subs_put(t, longname, sizeof longname, id, 0, &added), PLEXUS_EINVAL);
    CHECK_EQ_INT(plexus_subs_put(t, longname, PLEXUS_SUBS_NODE_MAX, id, 0, &added), PLEXUS_OK);
    plexus_subs_free(t);
    plexus_subs *bad = NULL;
    CHECK_EQ_INT(plexus_subs_new(&test_alloc, 0, key, &bad), PLEXUS_EINVAL);
    CHECK(bad == NULL);
}

static void test_bound(void)
{
    plexus_subs *t = mk(100);
    uint8_t id[PLEXUS_SUBS_ID_BYTES];
    int added;
    for (uint32_t i = 0; i < 100; i++) {
        mkid(id, i);
        CHECK_EQ_INT(plexus_subs_put(t, S("a@h"), id, 0, &added), PLEXUS_OK);
    }
    mkid(id, 1000);
    CHECK_EQ_INT(plexus_subs_put(t, S("a@h"), id, 0, &added), PLEXUS_EFULL);
    CHECK_EQ_INT(plexus_subs_put(t, S("new@h"), id, 0, &added), PLEXUS_EFULL);
    CHECK_EQ_INT(added, 0);
    CHECK_EQ_INT(plexus_subs_count(t), 100);
    CHECK_EQ_INT(plexus_subs_nodes(t), 1);
    /* updating one already there still works when full */
    mkid(id, 5);
    CHECK_EQ_INT(plexus_subs_put(t, S("a@h"), id, 7, &added), PLEXUS_OK);
    CHECK_EQ_INT(added, 0);
    CHECK_EQ_INT(plexus_subs_max(t), 100);
    plexus_subs_free(t);
}

/* 100,000 subscribers on 3 nodes come and go: memory returns to the empty table's. */
static void test_churn_memory(void)
{
    plexus_subs *t = mk(200000);
    size_t empty = plexus_subs_bytes(t);
    uint8_t id[PLEXUS_SUBS_ID_BYTES];
    int added;
    const char *nodes[3] = {"a@h", "b@h", "c@h"};
    for (uint32_t i = 0; i < 100000; i++) {
        mkid(id, i);
        CHECK_EQ_INT(plexus_subs_put(t, S(nodes[i % 3]), id, 0, &added), PLEXUS_OK);
    }
    size_t full = plexus_subs_bytes(t);
    CHECK(full > 100000 * 20);
    CHECK(full < 100000 * 64); /* compact: the C node once held 2 KB per subscriber */
    for (uint32_t i = 0; i < 100000; i += 2) {
        mkid(id, i);
        CHECK_EQ_INT(plexus_subs_remove(t, S(nodes[i % 3]), id), PLEXUS_OK);
    }
    CHECK_EQ_INT(plexus_subs_count(t), 50000);
    CHECK_EQ_INT(plexus_subs_remove_node(t, S("b@h")), 16667);
    CHECK_EQ_INT(plexus_subs_remove_node(t, S("b@h")), 0);
    CHECK_EQ_INT(plexus_subs_remove_node(t, S("a@h")), 16667);
    CHECK_EQ_INT(plexus_subs_count(t), 16666);
    for (uint32_t i = 1; i < 100000; i += 2) {
        mkid(id, i);
        int rc = plexus_subs_remove(t, S(nodes[i % 3]), id);
        CHECK_EQ_INT(rc, i % 3 == 2 ? PLEXUS_OK : PLEXUS_ENOTFOUND);
    }
    CHECK_EQ_INT(plexus_subs_count(t), 0);
    CHECK_EQ_INT(plexus_subs_nodes(t), 0);
    CHECK_EQ_INT(plexus_subs_bytes(t), empty);
    plexus_subs_free(t);
    CHECK_EQ_INT(fault_live(), 0);
}

/* Random puts, removes and node drops against a plain array; after every step each
 * model entry is found with its flags, counts agree, and get() lists exactly the model. */
#define MODEL_MAX 300
typedef struct mentry {
    int node;
    uint32_t n, flags;
} mentry;

static void test_model(void)
{
    static const char *nodes[4] = {"n0@h", "n1@h", "n2@h", "n3@h"};
    plexus_subs *t = mk(MODEL_MAX);
    mentry m[MODEL_MAX];
    size_t mn = 0;
    uint64_t rs = 7;
    uint8_t id[PLEXUS_SUBS_ID_BYTES];
    for (int step = 0; step < 20000; step++) {
        uint64_t r = test_rand(&rs);
        int node = (int)(r % 4);
        uint32_t n = (uint32_t)((r >> 8) % 200);
        uint32_t flags = (uint32_t)(r >> 20) & 3;
        int op = (int)((r >> 30) % 100);
        mkid(id, n);
        size_t k;
        for (k = 0; k < mn && !(m[k].node == node && m[k].n == n); k++) {
        }
        if (op < 60) {
            int added;
            int rc = plexus_subs_put(t, S(nodes[node]), id, flags, &added);
            if (k < mn) {
                CHECK_EQ_INT(rc, PLEXUS_OK);
                CHECK_EQ_INT(added, 0);
                m[k].flags = flags;
            } else if (mn == MODEL_MAX) {
                CHECK_EQ_INT(rc, PLEXUS_EFULL);
            } else {
                CHECK_EQ_INT(rc, PLEXUS_OK);
                CHECK_EQ_INT(added, 1);
                m[mn++] = (mentry){node, n, flags};
            }
        } else if (op < 98) {
            int rc = plexus_subs_remove(t, S(nodes[node]), id);
            CHECK_EQ_INT(rc, k < mn ? PLEXUS_OK : PLEXUS_ENOTFOUND);
            if (k < mn) m[k] = m[--mn];
        } else {
            size_t want = 0;
            for (size_t j = mn; j-- > 0;)
                if (m[j].node == node) {
                    m[j] = m[--mn];
                    want++;
                }
            CHECK_EQ_INT(plexus_subs_remove_node(t, S(nodes[node])), want);
        }
        CHECK_EQ_INT(plexus_subs_count(t), mn);
        for (int nd = 0; nd < 4; nd++) {
            size_t c = 0;
            for (size_t j = 0; j < mn; j++)
                c += m[j].node == nd;
            CHECK_EQ_INT(plexus_subs_node_count(t, S(nodes[nd])), c);
        }
        /* every table entry is in the model with the same flags (counts are equal) */
        for (size_t i = 0; i < plexus_subs_count(t); i++) {
            plexus_sub s;
            CHECK_EQ_INT(plexus_subs_get(t, i, &s), PLEXUS_OK);
            uint32_t sn;
            memcpy(&sn, s.id, sizeof sn);
            int hit = 0;
            for (size_t j = 0; j < mn && !hit; j++)
                hit = m[j].n == sn && strlen(nodes[m[j].node]) == s.node_len &&
                      memcmp(nodes[m[j].node], s.node, s.node_len) == 0 && m[j].flags == s.flags;
            CHECK(hit);
        }
    }
    plexus_subs_free(t);
}

static int fill(int count)
{
    plexus_subs *t = NULL;
    int rc = plexus_subs_new(&test_alloc, 1000, key, &t);
    uint8_t id[PLEXUS_SUBS_ID_BYTES];
    char node[16];
    for (int i = 0; i < count && rc == PLEXUS_OK; i++) {
        int added;
        mkid(id, (uint32_t)i);
        snprintf(node, sizeof node, "n%d@h", i % 7);
        rc = plexus_subs_put(t, S(node), id, 0, &added);
        if (rc == PLEXUS_ENOMEM) CHECK_EQ_INT(plexus_subs_count(t), (size_t)i);
    }
    if (rc == PLEXUS_OK) CHECK_EQ_INT(plexus_subs_count(t), count);
    plexus_subs_free(t);
    return rc;
}

static void test_alloc_faults(void)
{
    int rc = 0;
    FOR_EACH_FAULT(rc, rc = fill(200));
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    RUN(test_basics);
    RUN(test_bound);
    RUN(test_churn_memory);
    RUN(test_model);
    RUN(test_alloc_faults);
    return harness_finish("subs");
}
