/*
 * Failure detector tests (c_src/core/health.c): Raxol NodeMonitor's thresholds
 * (doc/DESIGN.md §3: suspect after 5000 ms of silence, down after 30000 ms), the RTT ring of
 * 60 samples with avg/p50/p99, the event order, and every allocation failure.
 */
#include "harness.h"
#include "plexus/health.h"

#define MAXEV 64
typedef struct rec {
    int n;
    plexus_health_event ev[MAXEV];
    char names[MAXEV][32];
} rec;

static void record(void *ctx, const plexus_health_event *ev)
{
    rec *r = ctx;
    if (r->n >= MAXEV) return;
    r->ev[r->n] = *ev;
    size_t len = ev->node_len < 31 ? ev->node_len : 31;
    memcpy(r->names[r->n], ev->node, len);
    r->names[r->n][len] = 0;
    r->ev[r->n].node = NULL; /* not valid after the callback */
    r->n++;
}

#define N(s) (const uint8_t *)(s), strlen(s)

static plexus_health *mk(void)
{
    plexus_health_config c = plexus_health_default_config();
    plexus_health *h = NULL;
    CHECK_EQ_INT(plexus_health_new(&c, &test_alloc, &h), PLEXUS_OK);
    return h;
}

static void test_config(void)
{
    plexus_health_config c = plexus_health_default_config();
    CHECK_EQ_INT(c.ping_interval_ms, 1000);
    CHECK_EQ_INT(c.suspect_after_ms, 5000);
    CHECK_EQ_INT(c.down_after_ms, 30000);
    plexus_health *h = NULL;
    plexus_health_config bad = {0, 5000, 30000};
    CHECK_EQ_INT(plexus_health_new(&bad, &test_alloc, &h), PLEXUS_EINVAL);
    bad = (plexus_health_config){1000, 0, 30000};
    CHECK_EQ_INT(plexus_health_new(&bad, &test_alloc, &h), PLEXUS_EINVAL);
    bad = (plexus_health_config){1000, 5000, 5000};
    CHECK_EQ_INT(plexus_health_new(&bad, &test_alloc, &h), PLEXUS_EINVAL);
    CHECK(h == NULL);
    h = mk();
    CHECK_EQ_INT(plexus_health_get_config(h).down_after_ms, 30000);
    plexus_health_free(h);
    plexus_health_free(NULL);
}

static void test_up_suspect_down(void)
{
    plexus_health *h = mk();
    rec r = {0};
    CHECK_EQ_INT(plexus_health_up(h, N("a@h"), 1000, record, &r), PLEXUS_OK);
    CHECK_EQ_INT(r.n, 1);
    CHECK_EQ_INT(r.ev[0].kind, PLEXUS_HEALTH_EV_NODE_UP);
    CHECK_EQ_INT(r.ev[0].from, PLEXUS_HEALTH_UNKNOWN);
    CHECK_EQ_INT(r.ev[0].to, PLEXUS_HEALTH_HEALTHY);
    CHECK(strcmp(r.names[0], "a@h") == 0);
    CHECK_EQ_INT(plexus_health_next_deadline(h), 6000);
    /* a second up while healthy is not an event */
    CHECK_EQ_INT(plexus_health_up(h, N("a@h"), 1500, record, &r), PLEXUS_OK);
    CHECK_EQ_INT(r.n, 1);
    plexus_health_tick(h, 6499, record, &r);
    CHECK_EQ_INT(r.n, 1);
    plexus_health_tick(h, 6500, record, &r); /* 5000 ms after the last sign of life */
    CHECK_EQ_INT(r.n, 2);
    CHECK_EQ_INT(r.ev[1].kind, PLEXUS_HEALTH_EV_SUSPECT);
    CHECK_EQ_INT(r.ev[1].from, PLEXUS_HEALTH_HEALTHY);
    CHECK_EQ_INT(r.ev[1].to, PLEXUS_HEALTH_SUSPECT);
    CHECK_EQ_INT(r.ev[1].silent_ms, 5000);
    CHECK_EQ_INT(plexus_health_next_deadline(h), 31500);
    plexus_health_tick(h, 31499, record, &r);
    CHECK_EQ_INT(r.n, 2);
    plexus_health_tick(h, 31500, record, &r);
    CHECK_EQ_INT(r.n, 3);
    CHECK_EQ_INT(r.ev[2].kind, PLEXUS_HEALTH_EV_NODE_DOWN);
    CHECK_EQ_INT(r.ev[2].reason, PLEXUS_HEALTH_R_TIMEOUT);
    CHECK_EQ_INT(r.ev[2].from, PLEXUS_HEALTH_SUSPECT);
    CHECK_EQ_INT(plexus_health_next_deadline(h), UINT64_MAX);
    plexus_health_tick(h, 99999, record, &r);
    CHECK_EQ_INT(r.n, 3);
    /* an answer from a down node brings it back */
    CHECK_EQ_INT(plexus_health_answer(h, N("a@h"), 100000, 250, record, &r), PLEXUS_OK);
    CHECK_EQ_INT(r.n, 4);
    CHECK_EQ_INT(r.ev[3].kind, PLEXUS_HEALTH_EV_NODE_UP);
    CHECK_EQ_INT(r.ev[3].from, PLEXUS_HEALTH_DOWN);
    CHECK_EQ_INT(r.ev[3].rtt_us, 250);
    plexus_health_free(h);
}

static void test_late_tick_reports_suspect_then_down(void)
{
    plexus_health *h = mk();
    rec r = {0};
    CHECK_EQ_INT(plexus_health_up(h, N("a@h"), 0, record, &r), PLEXUS_OK);
    plexus_health_tick(h, 40000, record, &r);
    CHECK_EQ_INT(r.n, 3);
    CHECK_EQ_INT(r.ev[1].kind, PLEXUS_HEALTH_EV_SUSPECT);
    CHECK_EQ_INT(r.ev[2].kind, PLEXUS_HEALTH_EV_NODE_DOWN);
    plexus_health_free(h);
}

static void test_answers_keep_healthy(void)
{
    plexus_health *h = mk();
    rec r = {0};
    CHECK_EQ_INT(plexus_health_up(h, N("a@h"), 0, record, &r), PLEXUS_OK);
    for (uint64_t t = 1000; t <= 20000; t += 1000) {
        CHECK_EQ_INT(plexus_health_answer(h, N("a@h"), t, 100, record, &r), PLEXUS_OK);
        plexus_health_tick(h, t + 999, record, &r);
    }
    CHECK_EQ_INT(r.n, 1);
    plexus_health_tick(h, 25000, record, &r);
    CHECK_EQ_INT(r.n, 2); /* suspect 5000 ms after the last answer at 20000 */
    CHECK_EQ_INT(plexus_health_answer(h, N("a@h"), 25100, 300, record, &r), PLEXUS_OK);
    CHECK_EQ_INT(r.n, 3);
    CHECK_EQ_INT(r.ev[2].kind, PLEXUS_HEALTH_EV_HEALTHY);
    CHECK_EQ_INT(r.ev[2].from, PLEXUS_HEALTH_SUSPECT);
    CHECK_EQ_INT(r.ev[2].rtt_us, 300);
    /* an old answer arriving late does not move silence backwards */
    CHECK_EQ_INT(plexus_health_answer(h, N("a@h"), 20000, 300, record, &r), PLEXUS_OK);
    plexus_health_stats st;
    CHECK_EQ_INT(plexus_health_get(h, N("a@h"), &st), PLEXUS_OK);
    CHECK_EQ_INT(st.last_answer_ms, 25100);
    CHECK_EQ_INT(st.answers, 22);
    CHECK_EQ_INT(plexus_health_answer(h, N("zz@h"), 1, 1, record, &r), PLEXUS_ENOTFOUND);
    plexus_health_free(h);
}

static void test_down_by_connection(void)
{
    plexus_health *h = mk();
    rec r = {0};
    CHECK_EQ_INT(plexus_health_down(h, N("a@h"), 0, PLEXUS_HEALTH_R_CLOSED, record, &r),
                 PLEXUS_ENOTFOUND);
    CHECK_EQ_INT(plexus_health_up(h, N("a@h"), 0, record, &r), PLEXUS_OK);
    CHECK_EQ_INT(plexus_health_down(h, N("a@h"), 10, PLEXUS_HEALTH_R_CLOSED, record, &r),
                 PLEXUS_OK);
    CHECK_EQ_INT(r.n, 2);
    CHECK_EQ_INT(r.ev[1].kind, PLEXUS_HEALTH_EV_NODE_DOWN);
    CHECK_EQ_INT(r.ev[1].reason, PLEXUS_HEALTH_R_CLOSED);
    CHECK_EQ_INT(plexus_health_down(h, N("a@h"), 20, PLEXUS_HEALTH_R_CLOSED, record, &r),
                 PLEXUS_OK);
    CHECK_EQ_INT(r.n, 2); /* already down: no event */
    CHECK_EQ_INT(plexus_health_up(h, N("a@h"), 30, record, &r), PLEXUS_OK);
    CHECK_EQ_INT(r.n, 3);
    CHECK_EQ_INT(r.ev[2].kind, PLEXUS_HEALTH_EV_NODE_UP);
    CHECK_EQ_INT(r.ev[2].from, PLEXUS_HEALTH_DOWN);
    /* up while suspect counts as healthy again */
    plexus_health_tick(h, 5030, record, &r);
    CHECK_EQ_INT(r.ev[3].kind, PLEXUS_HEALTH_EV_SUSPECT);
    CHECK_EQ_INT(plexus_health_up(h, N("a@h"), 5040, record, &r), PLEXUS_OK);
    CHECK_EQ_INT(r.ev[4].kind, PLEXUS_HEALTH_EV_HEALTHY);
    CHECK_EQ_INT(r.n, 5);
    plexus_health_free(h);
}

static void test_rtt_ring(void)
{
    plexus_health *h = mk();
    CHECK_EQ_INT(plexus_health_up(h, N("a@h"), 0, NULL, NULL), PLEXUS_OK);
    plexus_health_stats st;
    CHECK_EQ_INT(plexus_health_get(h, N("a@h"), &st), PLEXUS_OK);
    CHECK_EQ_INT(st.samples, 0);
    CHECK_EQ_INT(st.rtt_avg_us, 0);
    /* 1..100: only the last 60 (41..100) are kept */
    for (uint32_t i = 1; i <= 100; i++)
        CHECK_EQ_INT(plexus_health_answer(h, N("a@h"), i, i, NULL, NULL), PLEXUS_OK);
    CHECK_EQ_INT(plexus_health_get(h, N("a@h"), &st), PLEXUS_OK);
    CHECK_EQ_INT(st.samples, 60);
    CHECK_EQ_INT(st.rtt_min_us, 41);
    CHECK_EQ_INT(st.rtt_max_us, 100);
    CHECK_EQ_INT(st.rtt_avg_us, 70);  /* (41+100)/2 = 70.5 */
    CHECK_EQ_INT(st.rtt_p50_us, 70);  /* rank 30 of 60 */
    CHECK_EQ_INT(st.rtt_p99_us, 100); /* rank 60 of 60 */
    CHECK_EQ_INT(st.rtt_last_us, 100);
    /* one sample: every statistic is that sample */
    CHECK_EQ_INT(plexus_health_up(h, N("b@h"), 0, NULL, NULL), PLEXUS_OK);
    CHECK_EQ_INT(plexus_health_answer(h, N("b@h"), 1, 777, NULL, NULL), PLEXUS_OK);
    CHECK_EQ_INT(plexus_health_get(h, N("b@h"), &st), PLEXUS_OK);
    CHECK_EQ_INT(st.rtt_p50_us, 777);
    CHECK_EQ_INT(st.rtt_p99_us, 777);
    /* 99 fast, then one slow among the last 60: p99 still sees the outlier's rank */
    for (uint32_t i = 0; i < 59; i++)
        CHECK_EQ_INT(plexus_health_answer(h, N("b@h"), 2, 10, NULL, NULL), PLEXUS_OK);
    CHECK_EQ_INT(plexus_health_get(h, N("b@h"), &st), PLEXUS_OK);
    CHECK_EQ_INT(st.samples, 60);
    CHECK_EQ_INT(st.rtt_p50_us, 10);
    CHECK_EQ_INT(st.rtt_p99_us, 777);
    plexus_health_free(h);
}

static void test_many_nodes_remove_iterate(void)
{
    plexus_health *h = mk();
    char name[32];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "n%d@h", i);
        CHECK_EQ_INT(plexus_health_up(h, N(name), (uint64_t)i, NULL, NULL), PLEXUS_OK);
    }
    CHECK_EQ_INT(plexus_health_count(h), 500);
    CHECK_EQ_INT(plexus_health_next_deadline(h), 5000);
    for (int i = 0; i < 500; i += 2) {
        snprintf(name, sizeof name, "n%d@h", i);
        CHECK_EQ_INT(plexus_health_remove(h, N(name)), PLEXUS_OK);
    }
    CHECK_EQ_INT(plexus_health_remove(h, N("n0@h")), PLEXUS_ENOTFOUND);
    CHECK_EQ_INT(plexus_health_count(h), 250);
    int odd = 0;
    for (size_t i = 0; i < plexus_health_count(h); i++) {
        const uint8_t *p;
        size_t len;
        plexus_health_stats st;
        plexus_health_at(h, i, &p, &len, &st);
        int k = atoi((const char *)p + 1);
        odd += k % 2 == 1;
        CHECK_EQ_INT(st.status, PLEXUS_HEALTH_HEALTHY);
    }
    CHECK_EQ_INT(odd, 250);
    snprintf(name, sizeof name, "n%d@h", 499);
    plexus_health_stats st;
    CHECK_EQ_INT(plexus_health_get(h, N(name), &st), PLEXUS_OK);
    CHECK_EQ_INT(plexus_health_get(h, N("n498@h"), &st), PLEXUS_ENOTFOUND);
    CHECK_EQ_INT(plexus_health_next_deadline(h), 5001);
    plexus_health_free(h);
}

/* The index against a model: random ups and removes over 3,000 names (the index grows,
 * wraps and shifts entries back on delete), and every name looked up now and then. */
static void test_index_against_model(void)
{
    enum { NAMES = 3000, OPS = 40000 };
    static unsigned char present[NAMES];
    memset(present, 0, sizeof present);
    plexus_health *h = mk();
    uint64_t seed = 0x9e3779b97f4a7c15u;
    char name[32];
    size_t count = 0;
    int mismatches = 0;
    for (int op = 0; op < OPS; op++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        size_t k = (size_t)(seed >> 33) % NAMES;
        snprintf(name, sizeof name, "n%zu@host", k);
        /* more ups than removes early on, so the table fills before it drains */
        int up = (seed >> 20) % 8 < (op < OPS / 2 ? 6u : 2u);
        if (up) {
            CHECK_EQ_INT(plexus_health_up(h, N(name), 0, NULL, NULL), PLEXUS_OK);
            count += !present[k];
            present[k] = 1;
        } else {
            CHECK_EQ_INT(plexus_health_remove(h, N(name)),
                         present[k] ? PLEXUS_OK : PLEXUS_ENOTFOUND);
            count -= present[k];
            present[k] = 0;
        }
        if (op % 997 == 0 || op == OPS - 1) {
            CHECK_EQ_INT(plexus_health_count(h), count);
            for (size_t j = 0; j < NAMES; j++) {
                plexus_health_stats st;
                snprintf(name, sizeof name, "n%zu@host", j);
                int rc = plexus_health_get(h, N(name), &st);
                mismatches += rc != (present[j] ? PLEXUS_OK : PLEXUS_ENOTFOUND);
            }
        }
    }
    CHECK_EQ_INT(mismatches, 0);
    /* every node the array holds is found by its own name */
    for (size_t i = 0; i < plexus_health_count(h); i++) {
        const uint8_t *p;
        size_t len;
        plexus_health_stats st;
        plexus_health_at(h, i, &p, &len, NULL);
        CHECK_EQ_INT(plexus_health_get(h, p, len, &st), PLEXUS_OK);
    }
    plexus_health_free(h);
}

static void test_bad_names(void)
{
    plexus_health *h = mk();
    static uint8_t big[PLEXUS_HEALTH_NAME_MAX + 1];
    memset(big, 'x', sizeof big);
    CHECK_EQ_INT(plexus_health_up(h, big, 0, 0, NULL, NULL), PLEXUS_EINVAL);
    CHECK_EQ_INT(plexus_health_up(h, big, sizeof big, 0, NULL, NULL), PLEXUS_EINVAL);
    CHECK_EQ_INT(plexus_health_up(h, big, sizeof big - 1, 0, NULL, NULL), PLEXUS_OK);
    /* names are bytes: "a@h" and "a@h\0" differ */
    CHECK_EQ_INT(plexus_health_up(h, (const uint8_t *)"a@h", 4, 0, NULL, NULL), PLEXUS_OK);
    plexus_health_stats st;
    CHECK_EQ_INT(plexus_health_get(h, N("a@h"), &st), PLEXUS_ENOTFOUND);
    plexus_health_free(h);
}

static int build_many(void)
{
    plexus_health_config c = plexus_health_default_config();
    plexus_health *h = NULL;
    int rc = plexus_health_new(&c, &test_alloc, &h);
    if (rc) return rc;
    char name[32];
    for (int i = 0; i < 40 && !rc; i++) {
        snprintf(name, sizeof name, "n%d@h", i);
        rc = plexus_health_up(h, N(name), 0, NULL, NULL);
    }
    plexus_health_free(h);
    return rc;
}

static void test_every_allocation_failure(void)
{
    int rc = 0;
    FOR_EACH_FAULT(rc, rc = build_many());
}

int main(void)
{
    RUN(test_config);
    RUN(test_up_suspect_down);
    RUN(test_late_tick_reports_suspect_then_down);
    RUN(test_answers_keep_healthy);
    RUN(test_down_by_connection);
    RUN(test_rtt_ring);
    RUN(test_many_nodes_remove_iterate);
    RUN(test_index_against_model);
    RUN(test_bad_names);
    RUN(test_every_allocation_failure);
    return harness_finish("health");
}
