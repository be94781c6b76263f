/*
 * Unit tests of the seniority commander rule (c_src/core/topology.c, doc/DESIGN.md §2,
 * Raxol Topology parity). The property that matters most: every node holding the same
 * view computes the same roles, whatever order the view lists members in.
 */
#include "harness.h"
#include "plexus/topology.h"

static plexus_topology_member mk(const char *name, uint64_t start, bool promoted)
{
    return (plexus_topology_member){
        .name = {(const uint8_t *)name, strlen(name)}, .start_time = start, .promoted = promoted};
}

static void test_most_senior_commands(void)
{
    plexus_topology_member v[] = {mk("c@h", 30, false), mk("a@h", 10, false), mk("b@h", 20, false),
                                  mk("d@h", 40, false)};
    plexus_topology_role r[4];
    size_t boss = 0;
    CHECK_EQ_INT(plexus_topology_assign(v, 4, 3, r, &boss), PLEXUS_OK);
    CHECK_EQ_INT(boss, 1);
    CHECK_EQ_INT(r[1], PLEXUS_TOPOLOGY_COMMANDER);
    CHECK_EQ_INT(r[2], PLEXUS_TOPOLOGY_WINGMATE);
    CHECK_EQ_INT(r[0], PLEXUS_TOPOLOGY_OBSERVER);
    CHECK_EQ_INT(r[3], PLEXUS_TOPOLOGY_OBSERVER);
}

static void test_ties_break_by_name_bytes(void)
{
    /* equal start times: bytewise name order, a prefix sorts first */
    plexus_topology_member v[] = {mk("node2@h", 5, false), mk("node1@h", 5, false),
                                  mk("node1", 5, false)};
    plexus_topology_role r[3];
    size_t boss = 0;
    CHECK_EQ_INT(plexus_topology_assign(v, 3, 1, r, &boss), PLEXUS_OK);
    CHECK_EQ_INT(boss, 2);
    CHECK_EQ_INT(r[1], PLEXUS_TOPOLOGY_WINGMATE);
    CHECK_EQ_INT(r[0], PLEXUS_TOPOLOGY_OBSERVER);
    CHECK(plexus_topology_compare(&v[1], &v[0]) < 0);
    CHECK(plexus_topology_compare(&v[0], &v[0]) == 0);
    /* an earlier start wins over a smaller name */
    plexus_topology_member w[] = {mk("a", 9, false), mk("z", 8, false)};
    CHECK_EQ_INT(plexus_topology_assign(w, 2, 1, r, &boss), PLEXUS_OK);
    CHECK_EQ_INT(boss, 1);
}

static void test_no_commander_without_quorum(void)
{
    plexus_topology_member v[] = {mk("a", 1, false), mk("b", 2, true)};
    plexus_topology_role r[2];
    size_t boss = 0;
    CHECK_EQ_INT(plexus_topology_assign(v, 2, 3, r, &boss), PLEXUS_OK);
    CHECK(boss == PLEXUS_TOPOLOGY_NONE);
    CHECK_EQ_INT(r[0], PLEXUS_TOPOLOGY_OBSERVER);
    CHECK_EQ_INT(r[1], PLEXUS_TOPOLOGY_RELAY); /* promotion holds without quorum */
    CHECK_EQ_INT(plexus_topology_assign(v, 2, 2, r, &boss), PLEXUS_OK);
    CHECK_EQ_INT(boss, 0);
    CHECK_EQ_INT(plexus_topology_assign(NULL, 0, 0, NULL, &boss), PLEXUS_OK);
    CHECK(boss == PLEXUS_TOPOLOGY_NONE);
    plexus_topology_member one[] = {mk("solo", 1, false)};
    CHECK_EQ_INT(plexus_topology_assign(one, 1, 0, r, &boss), PLEXUS_OK); /* 0 counts as 1 */
    CHECK_EQ_INT(boss, 0);
    CHECK_EQ_INT(r[0], PLEXUS_TOPOLOGY_COMMANDER);
}

/* Promotion makes a relay and moves the wingmate down the line; it cannot unseat the
 * commander, which must stay the same on every node. */
static void test_promote_overrides_role_but_not_commander(void)
{
    plexus_topology_member v[] = {mk("a", 1, true), mk("b", 2, true), mk("c", 3, false),
                                  mk("d", 4, false)};
    plexus_topology_role r[4];
    size_t boss = 0;
    CHECK_EQ_INT(plexus_topology_assign(v, 4, 1, r, &boss), PLEXUS_OK);
    CHECK_EQ_INT(boss, 0);
    CHECK_EQ_INT(r[0], PLEXUS_TOPOLOGY_COMMANDER);
    CHECK_EQ_INT(r[1], PLEXUS_TOPOLOGY_RELAY);
    CHECK_EQ_INT(r[2], PLEXUS_TOPOLOGY_WINGMATE);
    CHECK_EQ_INT(r[3], PLEXUS_TOPOLOGY_OBSERVER);
}

/* Re-election when the commander goes down is recomputing over the smaller view: the
 * wingmate takes over. */
static void test_commander_leaves_wingmate_takes_over(void)
{
    plexus_topology_member v[] = {mk("a", 1, false), mk("b", 2, false), mk("c", 3, false)};
    plexus_topology_role r[3];
    size_t boss = 0;
    CHECK_EQ_INT(plexus_topology_assign(v, 3, 2, r, &boss), PLEXUS_OK);
    CHECK_EQ_INT(r[1], PLEXUS_TOPOLOGY_WINGMATE);
    CHECK_EQ_INT(plexus_topology_assign(v + 1, 2, 2, r, &boss), PLEXUS_OK);
    CHECK_EQ_INT(boss, 0); /* "b" */
    CHECK_EQ_INT(r[0], PLEXUS_TOPOLOGY_COMMANDER);
    CHECK_EQ_INT(r[1], PLEXUS_TOPOLOGY_WINGMATE);
    CHECK_EQ_INT(plexus_topology_assign(v + 2, 1, 2, r, &boss), PLEXUS_OK);
    CHECK(boss == PLEXUS_TOPOLOGY_NONE); /* below quorum */
}

/* Every permutation of a view yields the same role for each node (agreement). */
static void test_same_view_same_answer(void)
{
    uint64_t rng = 99;
    static char names[8][8];
    for (int round = 0; round < 2000; round++) {
        size_t n = 1 + test_rand(&rng) % 8;
        plexus_topology_member v[8], p[8];
        for (size_t i = 0; i < n; i++) {
            snprintf(names[i], sizeof names[i], "n%zu", i);
            v[i] = mk(names[i], test_rand(&rng) % 4, test_rand(&rng) % 5 == 0);
        }
        size_t perm[8];
        for (size_t i = 0; i < n; i++)
            perm[i] = i;
        for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
            size_t j = test_rand(&rng) % i, t = perm[i - 1];
            perm[i - 1] = perm[j];
            perm[j] = t;
        }
        for (size_t i = 0; i < n; i++)
            p[i] = v[perm[i]];
        size_t q = test_rand(&rng) % 6, b1 = 0, b2 = 0;
        plexus_topology_role r1[8], r2[8];
        CHECK_EQ_INT(plexus_topology_assign(v, n, q, r1, &b1), PLEXUS_OK);
        CHECK_EQ_INT(plexus_topology_assign(p, n, q, r2, &b2), PLEXUS_OK);
        size_t commanders = 0, wingmates = 0;
        for (size_t i = 0; i < n; i++) {
            CHECK_EQ_INT(r2[i], r1[perm[i]]);
            commanders += r1[i] == PLEXUS_TOPOLOGY_COMMANDER;
            wingmates += r1[i] == PLEXUS_TOPOLOGY_WINGMATE;
        }
        CHECK(b1 == PLEXUS_TOPOLOGY_NONE ? b2 == PLEXUS_TOPOLOGY_NONE : perm[b2] == b1);
        CHECK_EQ_INT(commanders, b1 != PLEXUS_TOPOLOGY_NONE);
        CHECK(wingmates <= commanders);
        if (b1 != PLEXUS_TOPOLOGY_NONE) /* nobody is more senior than the commander */
            for (size_t i = 0; i < n; i++)
                CHECK(plexus_topology_compare(&v[b1], &v[i]) <= 0);
    }
}

static void test_bad_views_rejected(void)
{
    plexus_topology_role r[3] = {PLEXUS_TOPOLOGY_RELAY, PLEXUS_TOPOLOGY_RELAY,
                                 PLEXUS_TOPOLOGY_RELAY};
    size_t boss = 7;
    plexus_topology_member dup[] = {mk("a", 1, false), mk("b", 2, false), mk("a", 3, false)};
    CHECK_EQ_INT(plexus_topology_assign(dup, 3, 1, r, &boss), PLEXUS_EINVAL);
    plexus_topology_member empty[] = {mk("a", 1, false), mk("", 2, false)};
    CHECK_EQ_INT(plexus_topology_assign(empty, 2, 1, r, &boss), PLEXUS_EINVAL);
    CHECK_EQ_INT(boss, 7); /* outputs untouched */
    CHECK_EQ_INT(r[0], PLEXUS_TOPOLOGY_RELAY);
    CHECK_EQ_INT(plexus_topology_assign(dup, PLEXUS_TOPOLOGY_MAX_NODES + 1, 1, r, &boss),
                 PLEXUS_ETOOBIG);
    CHECK_EQ_INT(plexus_topology_assign(NULL, 2, 1, r, &boss), PLEXUS_EINVAL);
}

static void test_role_names(void)
{
    CHECK(strcmp(plexus_topology_role_name(PLEXUS_TOPOLOGY_COMMANDER), "commander") == 0);
    CHECK(strcmp(plexus_topology_role_name(PLEXUS_TOPOLOGY_WINGMATE), "wingmate") == 0);
    CHECK(strcmp(plexus_topology_role_name(PLEXUS_TOPOLOGY_OBSERVER), "observer") == 0);
    CHECK(strcmp(plexus_topology_role_name(PLEXUS_TOPOLOGY_RELAY), "relay") == 0);
}

int main(void)
{
    RUN(test_most_senior_commands);
    RUN(test_ties_break_by_name_bytes);
    RUN(test_no_commander_without_quorum);
    RUN(test_promote_overrides_role_but_not_commander);
    RUN(test_commander_leaves_wingmate_takes_over);
    RUN(test_same_view_same_answer);
    RUN(test_bad_views_rejected);
    RUN(test_role_names);
    return harness_finish("test_topology");
}
