/*
 * Unit tests of the election state machine (c_src/core/election.c, election_msg.c).
 * Each test names the rule it checks: Raft paper §5.1/§5.2, Ongaro's thesis §6.2
 * (CheckQuorum) and §9.6 (PreVote, leader lease), doc/DESIGN.md §2 (fast path, restart).
 *
 * The machine never allocates, so the fault allocator has nothing to fail here; the
 * harness still checks that no test leaks. Multi-node tests use a tiny synchronous
 * network below that routes every message through the wire codec.
 */
#include "harness.h"
#include "plexus/election.h"

#define CLUSTER 0xc1u
#define MAXN 7

static uint64_t rng_cb(void *ctx)
{
    return test_rand(ctx);
}

static plexus_election_config base_config(uint64_t id, const uint64_t *peers, size_t n,
                                          uint64_t *rng)
{
    return (plexus_election_config){.id = id,
                                    .cluster_id = CLUSTER,
                                    .peers = peers,
                                    .n_peers = n,
                                    .election_min_ticks = 10,
                                    .election_max_ticks = 20,
                                    .heartbeat_ticks = 2,
                                    .pre_vote = true,
                                    .check_quorum = true,
                                    .restored = NULL,
                                    .rand = rng_cb,
                                    .rand_ctx = rng};
}

static const plexus_election_hard_state fresh = {0, 0};

/* One node with peers 2..n+1, started as if from an empty data directory. */
static void single(plexus_election *e, uint64_t *rng, size_t n_peers, bool pre_vote)
{
    uint64_t peers[MAXN];
    for (size_t i = 0; i < n_peers; i++)
        peers[i] = i + 2;
    plexus_election_config c = base_config(1, peers, n_peers, rng);
    c.pre_vote = pre_vote;
    c.restored = &fresh;
    CHECK_EQ_INT(plexus_election_init(e, &c), PLEXUS_OK);
}

static plexus_election_msg msg(plexus_election_msg_type t, uint64_t from, uint64_t term)
{
    return (plexus_election_msg){
        .type = t, .reject = false, .cluster_id = CLUSTER, .from = from, .to = 1, .term = term};
}

/* Drain the ready batch; returns how many messages of `type` it held (reject flag
 * reported through *rejected when non-NULL, for the last such message). */
static int drain(plexus_election *e, plexus_election_msg_type type, bool *rejected)
{
    int n = 0;
    if (!plexus_election_has_ready(e)) return 0;
    plexus_election_ready rd;
    plexus_election_get_ready(e, &rd);
    for (size_t i = 0; i < rd.n_msgs; i++)
        if (rd.msgs[i].type == type) {
            n++;
            if (rejected) *rejected = rd.msgs[i].reject;
        }
    plexus_election_advance(e);
    return n;
}

/* ---------------------------------------------------------------- a small network */

typedef struct {
    plexus_election node[MAXN];
    uint64_t rng[MAXN];
    plexus_election_hard_state disk[MAXN];
    bool cut[MAXN][MAXN]; /* cut[a][b]: messages a -> b are lost */
    size_t n;
    plexus_election_msg queue[4096];
    size_t head, tail;
} net;

static void net_init(net *w, size_t n, bool pre_vote, bool check_quorum)
{
    memset(w, 0, sizeof *w);
    w->n = n;
    uint64_t ids[MAXN];
    for (size_t i = 0; i < n; i++)
        ids[i] = i + 1;
    for (size_t i = 0; i < n; i++) {
        w->rng[i] = 1000 + i;
        plexus_election_config c = base_config(i + 1, ids, n, &w->rng[i]);
        c.pre_vote = pre_vote;
        c.check_quorum = check_quorum;
        c.restored = &fresh;
        CHECK_EQ_INT(plexus_election_init(&w->node[i], &c), PLEXUS_OK);
    }
}

/* Persist, then queue every message, each through encode + decode. */
static void collect(net *w, size_t i)
{
    plexus_election *e = &w->node[i];
    if (!plexus_election_has_ready(e)) return;
    plexus_election_ready rd;
    plexus_election_get_ready(e, &rd);
    if (rd.hard_state_changed) w->disk[i] = rd.hard_state;
    for (size_t k = 0; k < rd.n_msgs; k++) {
        uint8_t buf[PLEXUS_ELECTION_MSG_MAX];
        size_t len = 0;
        CHECK_EQ_INT(plexus_election_msg_encode(&rd.msgs[k], buf, sizeof buf, &len), PLEXUS_OK);
        plexus_election_msg m;
        CHECK_EQ_INT(plexus_election_msg_decode(buf, len, &m), PLEXUS_OK);
        CHECK(w->tail < sizeof w->queue / sizeof w->queue[0]);
        w->queue[w->tail++] = m;
    }
    plexus_election_advance(e);
}

/* Deliver until quiet (no ticks pass). */
static void pump(net *w)
{
    for (size_t i = 0; i < w->n; i++)
        collect(w, i);
    while (w->head < w->tail) {
        plexus_election_msg m = w->queue[w->head++];
        size_t from = m.from - 1, to = m.to - 1;
        if (w->cut[from][to]) continue;
        int rc = plexus_election_step(&w->node[to], &m);
        CHECK(rc == PLEXUS_OK);
        collect(w, to);
    }
    w->head = w->tail = 0;
}

static void net_tick(net *w)
{
    for (size_t i = 0; i < w->n; i++)
        plexus_election_tick(&w->node[i]);
    pump(w);
}

static void isolate(net *w, size_t i, bool on)
{
    for (size_t j = 0; j < w->n; j++)
        w->cut[i][j] = w->cut[j][i] = on;
}

/* Index of the only leader with the highest term, or -1. */
static int leader_of(const net *w)
{
    int found = -1;
    uint64_t best = 0;
    for (size_t i = 0; i < w->n; i++)
        if (plexus_election_get_role(&w->node[i]) == PLEXUS_ELECTION_LEADER &&
            plexus_election_term(&w->node[i]) >= best) {
            best = plexus_election_term(&w->node[i]);
            found = (int)i;
        }
    return found;
}

static int run_until_leader(net *w, int max_ticks)
{
    for (int t = 0; t < max_ticks; t++) {
        int l = leader_of(w);
        if (l >= 0) return l;
        net_tick(w);
    }
    return leader_of(w);
}

/* ---------------------------------------------------------------- §5.2 */

/* §5.2: a voter grants at most one candidate per term; asking again is idempotent. */
static void test_one_vote_per_term(void)
{
    plexus_election e;
    uint64_t rng = 1;
    bool rej = true;
    single(&e, &rng, 2, true);
    plexus_election_msg v = msg(PLEXUS_ELECTION_MSG_VOTE, 2, 1);
    CHECK_EQ_INT(plexus_election_step(&e, &v), PLEXUS_OK);
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_VOTE_RESP, &rej), 1);
    CHECK(!rej);
    CHECK_EQ_INT(plexus_election_get_hard_state(&e).voted_for, 2);

    plexus_election_msg other = msg(PLEXUS_ELECTION_MSG_VOTE, 3, 1);
    CHECK_EQ_INT(plexus_election_step(&e, &other), PLEXUS_OK);
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_VOTE_RESP, &rej), 1);
    CHECK(rej);
    CHECK_EQ_INT(plexus_election_get_hard_state(&e).voted_for, 2);

    CHECK_EQ_INT(plexus_election_step(&e, &v), PLEXUS_OK); /* duplicate request */
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_VOTE_RESP, &rej), 1);
    CHECK(!rej);

    /* a new term frees the vote */
    other.term = 2;
    CHECK_EQ_INT(plexus_election_step(&e, &other), PLEXUS_OK);
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_VOTE_RESP, &rej), 1);
    CHECK(!rej);
    CHECK_EQ_INT(plexus_election_get_hard_state(&e).voted_for, 3);
}

/* Figure 3.1 of the thesis: the vote is in the same ready batch as its response, so the
 * driver persists it before the response leaves. */
static void test_vote_persisted_with_its_response(void)
{
    plexus_election e;
    uint64_t rng = 2;
    single(&e, &rng, 2, true);
    plexus_election_msg v = msg(PLEXUS_ELECTION_MSG_VOTE, 3, 4);
    CHECK_EQ_INT(plexus_election_step(&e, &v), PLEXUS_OK);
    CHECK(plexus_election_has_ready(&e));
    plexus_election_ready rd;
    plexus_election_get_ready(&e, &rd);
    CHECK(rd.hard_state_changed);
    CHECK_EQ_INT(rd.hard_state.term, 4);
    CHECK_EQ_INT(rd.hard_state.voted_for, 3);
    CHECK_EQ_INT(rd.n_msgs, 1);
    CHECK_EQ_INT(rd.msgs[0].type, PLEXUS_ELECTION_MSG_VOTE_RESP);
    CHECK_EQ_INT(rd.msgs[0].to, 3);
    CHECK_EQ_INT(rd.msgs[0].cluster_id, CLUSTER);
    plexus_election_advance(&e);
    CHECK(!plexus_election_has_ready(&e));
}

/* §5.1: any message with a higher term turns a leader or candidate into a follower of
 * that term with no vote yet. */
static void test_step_down_on_higher_term(void)
{
    net w;
    net_init(&w, 3, false, false);
    CHECK_EQ_INT(plexus_election_campaign(&w.node[0]), PLEXUS_OK);
    pump(&w);
    CHECK_EQ_INT(plexus_election_get_role(&w.node[0]), PLEXUS_ELECTION_LEADER);
    uint64_t t = plexus_election_term(&w.node[0]);

    plexus_election_msg hr = msg(PLEXUS_ELECTION_MSG_HEARTBEAT_RESP, 2, t + 3);
    CHECK_EQ_INT(plexus_election_step(&w.node[0], &hr), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&w.node[0]), PLEXUS_ELECTION_FOLLOWER);
    CHECK_EQ_INT(plexus_election_term(&w.node[0]), t + 3);
    CHECK_EQ_INT(plexus_election_get_hard_state(&w.node[0]).voted_for, 0);
    CHECK_EQ_INT(plexus_election_leader(&w.node[0]), 0);

    /* a candidate that hears a heartbeat of a newer term follows its sender */
    plexus_election c;
    uint64_t rng = 3;
    single(&c, &rng, 2, false);
    CHECK_EQ_INT(plexus_election_campaign(&c), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&c), PLEXUS_ELECTION_CANDIDATE);
    plexus_election_msg hb = msg(PLEXUS_ELECTION_MSG_HEARTBEAT, 3, 5);
    CHECK_EQ_INT(plexus_election_step(&c, &hb), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&c), PLEXUS_ELECTION_FOLLOWER);
    CHECK_EQ_INT(plexus_election_leader(&c), 3);
    CHECK_EQ_INT(plexus_election_term(&c), 5);
}

/* §5.2: "while waiting for votes, a candidate may receive an AppendEntries RPC from
 * another server claiming to be leader ... if the leader's term is at least as large
 * as the candidate's current term, the candidate ... returns to follower state." */
static void test_candidate_yields_to_leader_of_same_term(void)
{
    plexus_election c;
    uint64_t rng = 4;
    single(&c, &rng, 2, false);
    CHECK_EQ_INT(plexus_election_campaign(&c), PLEXUS_OK);
    uint64_t t = plexus_election_term(&c);
    plexus_election_msg hb = msg(PLEXUS_ELECTION_MSG_HEARTBEAT, 2, t);
    CHECK_EQ_INT(plexus_election_step(&c, &hb), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&c), PLEXUS_ELECTION_FOLLOWER);
    CHECK_EQ_INT(plexus_election_leader(&c), 2);
    CHECK_EQ_INT(plexus_election_term(&c), t);
    CHECK_EQ_INT(plexus_election_get_hard_state(&c).voted_for, 1); /* its vote stays */
}

/* §5.2: with everyone reachable one round elects a leader, which all others follow. */
static void test_election_in_one_round(void)
{
    for (int pv = 0; pv <= 1; pv++) {
        net w;
        net_init(&w, 5, pv, true);
        CHECK_EQ_INT(plexus_election_campaign(&w.node[2]), PLEXUS_OK);
        pump(&w); /* no tick passes: one round of requests and answers */
        CHECK_EQ_INT(plexus_election_get_role(&w.node[2]), PLEXUS_ELECTION_LEADER);
        for (size_t i = 0; i < w.n; i++) {
            CHECK_EQ_INT(plexus_election_term(&w.node[i]), 1);
            CHECK_EQ_INT(plexus_election_leader(&w.node[i]), 3);
            CHECK_EQ_INT(w.disk[i].term, 1);
        }
        CHECK_EQ_INT(w.disk[2].voted_for, 3);
    }
    /* and from timeouts alone, well within a few timeouts */
    net w;
    net_init(&w, 5, true, true);
    int l = run_until_leader(&w, 3 * 20);
    CHECK(l >= 0);
    for (int t = 0; t < 100; t++) {
        net_tick(&w);
        CHECK_EQ_INT(leader_of(&w), l); /* and it stays */
    }
}

/* §5.2: "election timeouts are chosen randomly from a fixed interval": over many rounds
 * every value of [min, max) is drawn and nothing outside it. A lone pre-candidate that
 * gets no answers starts a new round exactly when its timeout runs out. */
static void test_randomized_timeouts_cover_range(void)
{
    const uint32_t lo = 10, hi = 20;
    plexus_election e;
    uint64_t rng = 77;
    single(&e, &rng, 2, true);
    int seen[64] = {0};
    uint32_t ticks = 0;
    int rounds = 0;
    while (rounds < 5000) {
        plexus_election_tick(&e);
        ticks++;
        if (drain(&e, PLEXUS_ELECTION_MSG_PRE_VOTE, NULL) > 0) {
            CHECK(ticks >= lo && ticks < hi);
            if (ticks < 64) seen[ticks]++;
            ticks = 0;
            rounds++;
        }
        if (ticks > 100) break;
    }
    CHECK_EQ_INT(rounds, 5000);
    for (uint32_t t = 0; t < 64; t++)
        CHECK((t >= lo && t < hi) == (seen[t] > 0));
    CHECK_EQ_INT(plexus_election_term(&e), 0); /* pre-votes never bumped the term */
}

/* Leader heartbeats every heartbeat_ticks, and once at once on election (§5.2). */
static void test_leader_heartbeats(void)
{
    plexus_election e;
    uint64_t rng = 5;
    single(&e, &rng, 0, true); /* lone voter: wins on its own vote */
    CHECK_EQ_INT(plexus_election_campaign(&e), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&e), PLEXUS_ELECTION_LEADER);
    CHECK_EQ_INT(plexus_election_term(&e), 1);
    CHECK_EQ_INT(plexus_election_add_peer(&e, 2), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&e), PLEXUS_ELECTION_LEADER);
    drain(&e, PLEXUS_ELECTION_MSG_HEARTBEAT, NULL);
    int beats = 0;
    for (int t = 0; t < 8; t++) { /* below election_min: no CheckQuorum yet */
        plexus_election_tick(&e);
        beats += drain(&e, PLEXUS_ELECTION_MSG_HEARTBEAT, NULL);
    }
    CHECK_EQ_INT(beats, 4); /* heartbeat_ticks = 2 */
}

/* ---------------------------------------------------------------- thesis §9.6 */

/* PreVote: a node cut off from the cluster keeps failing pre-votes without bumping its
 * term, so when it returns the leader is undisturbed. Without PreVote the same node
 * comes back with a higher term and deposes the leader: the contrast shows the test
 * can tell the difference. */
static void test_pre_vote_partitioned_node_does_not_disrupt(void)
{
    for (int pv = 1; pv >= 0; pv--) {
        net w;
        net_init(&w, 3, pv, true);
        CHECK_EQ_INT(plexus_election_campaign(&w.node[0]), PLEXUS_OK);
        pump(&w);
        CHECK_EQ_INT(leader_of(&w), 0);
        uint64_t term = plexus_election_term(&w.node[0]);

        isolate(&w, 2, true);
        for (int t = 0; t < 200; t++)
            net_tick(&w);
        CHECK_EQ_INT(leader_of(&w), 0);
        if (pv)
            CHECK_EQ_INT(plexus_election_term(&w.node[2]), term);
        else
            CHECK(plexus_election_term(&w.node[2]) > term + 5);

        isolate(&w, 2, false);
        for (int t = 0; t < 5; t++)
            net_tick(&w);
        if (pv) {
            CHECK_EQ_INT(leader_of(&w), 0);
            CHECK_EQ_INT(plexus_election_term(&w.node[0]), term);
            CHECK_EQ_INT(plexus_election_leader(&w.node[2]), 1);
        } else {
            CHECK(plexus_election_term(&w.node[0]) > term); /* disrupted */
        }
    }
}

/* Lease (thesis §9.6): a follower that heard its leader within election_min ticks
 * refuses pre-votes for higher terms; once the leader has been silent that long it
 * grants them, still without moving its term. */
static void test_pre_vote_refused_while_leader_is_live(void)
{
    plexus_election e;
    uint64_t rng = 6;
    bool rej = false;
    single(&e, &rng, 2, true);
    plexus_election_msg hb = msg(PLEXUS_ELECTION_MSG_HEARTBEAT, 2, 3);
    CHECK_EQ_INT(plexus_election_step(&e, &hb), PLEXUS_OK);
    drain(&e, PLEXUS_ELECTION_MSG_HEARTBEAT_RESP, NULL);

    plexus_election_msg pv = msg(PLEXUS_ELECTION_MSG_PRE_VOTE, 3, 4);
    CHECK_EQ_INT(plexus_election_step(&e, &pv), PLEXUS_OK);
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_PRE_VOTE_RESP, &rej), 1);
    CHECK(rej);
    CHECK_EQ_INT(plexus_election_get_stats(&e)->lease_rejected, 1);

    /* a stale pre-vote (asker's next term not above ours) is refused whatever the lease */
    plexus_election_msg old = msg(PLEXUS_ELECTION_MSG_PRE_VOTE, 3, 2);
    CHECK_EQ_INT(plexus_election_step(&e, &old), PLEXUS_OK);
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_PRE_VOTE_RESP, &rej), 1);
    CHECK(rej);

    for (int t = 0; t < 10; t++)
        plexus_election_tick(&e); /* the leader goes quiet */
    CHECK_EQ_INT(plexus_election_get_role(&e), PLEXUS_ELECTION_FOLLOWER);
    CHECK_EQ_INT(plexus_election_step(&e, &pv), PLEXUS_OK);
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_PRE_VOTE_RESP, &rej), 1);
    CHECK(!rej);
    CHECK_EQ_INT(plexus_election_term(&e), 3);
    CHECK_EQ_INT(plexus_election_get_hard_state(&e).voted_for, 0);
}

/* With CheckQuorum the lease covers real votes too (etcd): a vote request for a higher
 * term is ignored without a reply and without adopting the term. */
static void test_check_quorum_lease_ignores_votes(void)
{
    plexus_election e;
    uint64_t rng = 7;
    single(&e, &rng, 2, true);
    plexus_election_msg hb = msg(PLEXUS_ELECTION_MSG_HEARTBEAT, 2, 3);
    CHECK_EQ_INT(plexus_election_step(&e, &hb), PLEXUS_OK);
    drain(&e, PLEXUS_ELECTION_MSG_HEARTBEAT_RESP, NULL);
    plexus_election_msg v = msg(PLEXUS_ELECTION_MSG_VOTE, 3, 9);
    CHECK_EQ_INT(plexus_election_step(&e, &v), PLEXUS_OK);
    CHECK(!plexus_election_has_ready(&e));
    CHECK_EQ_INT(plexus_election_term(&e), 3);
    CHECK_EQ_INT(plexus_election_leader(&e), 2);
}

/* A pre-candidate refused by a majority goes back to follower at the same term. */
static void test_pre_candidate_gives_up_on_refusals(void)
{
    plexus_election e;
    uint64_t rng = 8;
    single(&e, &rng, 2, true);
    CHECK_EQ_INT(plexus_election_campaign(&e), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&e), PLEXUS_ELECTION_PRE_CANDIDATE);
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_PRE_VOTE, NULL), 2);
    plexus_election_msg r = msg(PLEXUS_ELECTION_MSG_PRE_VOTE_RESP, 2, 0);
    r.reject = true;
    CHECK_EQ_INT(plexus_election_step(&e, &r), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&e), PLEXUS_ELECTION_PRE_CANDIDATE);
    CHECK_EQ_INT(plexus_election_step(&e, &r), PLEXUS_OK); /* duplicates count once */
    CHECK_EQ_INT(plexus_election_get_role(&e), PLEXUS_ELECTION_PRE_CANDIDATE);
    r.from = 3;
    CHECK_EQ_INT(plexus_election_step(&e, &r), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&e), PLEXUS_ELECTION_FOLLOWER);
    CHECK_EQ_INT(plexus_election_term(&e), 0);

    /* one grant (for the next term) plus our own vote is a majority of three */
    CHECK_EQ_INT(plexus_election_campaign(&e), PLEXUS_OK);
    plexus_election_msg g = msg(PLEXUS_ELECTION_MSG_PRE_VOTE_RESP, 3, 1);
    CHECK_EQ_INT(plexus_election_step(&e, &g), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&e), PLEXUS_ELECTION_CANDIDATE);
    CHECK_EQ_INT(plexus_election_term(&e), 1);
}

/* ---------------------------------------------------------------- thesis §6.2 */

/* CheckQuorum: a leader cut off from the majority steps down within two minimum
 * election timeouts; without CheckQuorum it would stay leader forever. */
static void test_check_quorum_steps_down(void)
{
    for (int cq = 1; cq >= 0; cq--) {
        net w;
        net_init(&w, 3, true, cq);
        CHECK_EQ_INT(plexus_election_campaign(&w.node[0]), PLEXUS_OK);
        pump(&w);
        CHECK_EQ_INT(leader_of(&w), 0);
        for (int t = 0; t < 30; t++)
            net_tick(&w); /* answered heartbeats keep it */
        CHECK_EQ_INT(plexus_election_get_role(&w.node[0]), PLEXUS_ELECTION_LEADER);

        isolate(&w, 0, true);
        for (int t = 0; t < 20; t++)
            net_tick(&w);
        if (cq) {
            CHECK_EQ_INT(plexus_election_get_role(&w.node[0]), PLEXUS_ELECTION_FOLLOWER);
            CHECK_EQ_INT(plexus_election_leader(&w.node[0]), 0);
        } else {
            CHECK_EQ_INT(plexus_election_get_role(&w.node[0]), PLEXUS_ELECTION_LEADER);
        }
        /* the majority side elects its own leader meanwhile */
        for (int t = 0; t < 60; t++)
            net_tick(&w);
        CHECK(plexus_election_get_role(&w.node[1]) == PLEXUS_ELECTION_LEADER ||
              plexus_election_get_role(&w.node[2]) == PLEXUS_ELECTION_LEADER);
    }
}

/* ---------------------------------------------------------------- input checks */

static void test_cluster_id_mismatch_ignored(void)
{
    plexus_election e;
    uint64_t rng = 9;
    single(&e, &rng, 2, true);
    plexus_election before = e;
    plexus_election_msg v = msg(PLEXUS_ELECTION_MSG_VOTE, 2, 7);
    v.cluster_id = CLUSTER + 1;
    CHECK_EQ_INT(plexus_election_step(&e, &v), PLEXUS_ECLUSTER);
    v.type = PLEXUS_ELECTION_MSG_HEARTBEAT;
    CHECK_EQ_INT(plexus_election_step(&e, &v), PLEXUS_ECLUSTER);
    CHECK(!plexus_election_has_ready(&e));
    CHECK_EQ_INT(plexus_election_term(&e), 0);
    CHECK_EQ_INT(plexus_election_leader(&e), 0);
    CHECK_EQ_INT(plexus_election_get_stats(&e)->wrong_cluster, 2);
    /* nothing else moved, timers included */
    CHECK(e.role == before.role && e.voted_for == before.voted_for && e.n_out == 0);
    CHECK(e.election_elapsed == before.election_elapsed && e.timeout == before.timeout);
    CHECK(e.sit_out_left == before.sit_out_left && e.vote_floor == before.vote_floor);
}

static void test_step_rejects_bad_input(void)
{
    plexus_election e;
    uint64_t rng = 10;
    single(&e, &rng, 2, true);
    plexus_election_msg m = msg(PLEXUS_ELECTION_MSG_HEARTBEAT, 2, 1);
    m.to = 5;
    CHECK_EQ_INT(plexus_election_step(&e, &m), PLEXUS_EINVAL); /* not for us */
    m = msg(PLEXUS_ELECTION_MSG_HEARTBEAT, 1, 1);
    CHECK_EQ_INT(plexus_election_step(&e, &m), PLEXUS_EINVAL); /* from us */
    m = msg((plexus_election_msg_type)9, 2, 1);
    CHECK_EQ_INT(plexus_election_step(&e, &m), PLEXUS_EINVAL);
    m = msg(PLEXUS_ELECTION_MSG_VOTE, 2, 1);
    m.reject = true; /* requests carry no verdict */
    CHECK_EQ_INT(plexus_election_step(&e, &m), PLEXUS_EINVAL);
    m = msg(PLEXUS_ELECTION_MSG_VOTE, 9, 1); /* not a peer */
    CHECK_EQ_INT(plexus_election_step(&e, &m), PLEXUS_ENOTFOUND);
    CHECK_EQ_INT(plexus_election_get_stats(&e)->unknown_peer, 1);
    CHECK(!plexus_election_has_ready(&e));
    CHECK_EQ_INT(plexus_election_term(&e), 0);
}

/* Two leaders in one term cannot happen with intact hard state; if a peer claims it the
 * machine refuses loudly instead of silently following. */
static void test_second_leader_in_term_refused(void)
{
    plexus_election e;
    uint64_t rng = 11;
    single(&e, &rng, 2, false);
    plexus_election_msg hb = msg(PLEXUS_ELECTION_MSG_HEARTBEAT, 2, 3);
    CHECK_EQ_INT(plexus_election_step(&e, &hb), PLEXUS_OK);
    hb.from = 3;
    CHECK_EQ_INT(plexus_election_step(&e, &hb), PLEXUS_ESTATE);
    CHECK_EQ_INT(plexus_election_leader(&e), 2);
    CHECK_EQ_INT(plexus_election_get_stats(&e)->conflicts, 1);
}

static void test_config_validation(void)
{
    plexus_election e;
    uint64_t rng = 12, peers[70];
    for (size_t i = 0; i < 70; i++)
        peers[i] = i + 2;
    plexus_election_config ok = base_config(1, peers, 4, &rng), c;
    CHECK_EQ_INT(plexus_election_init(&e, &ok), PLEXUS_OK);
    c = ok, c.id = 0;
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_EINVAL);
    c = ok, c.rand = NULL;
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_EINVAL);
    c = ok, c.heartbeat_ticks = 0;
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_EINVAL);
    c = ok, c.heartbeat_ticks = 10; /* must be below election_min */
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_EINVAL);
    c = ok, c.election_max_ticks = 10; /* empty [min, max) */
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_EINVAL);
    uint64_t dup[] = {2, 3, 2};
    c = ok, c.peers = dup, c.n_peers = 3;
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_EINVAL);
    uint64_t zero[] = {2, 0};
    c = ok, c.peers = zero, c.n_peers = 2;
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_EINVAL);
    plexus_election_hard_state bad = {0, 2};
    c = ok, c.restored = &bad;
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_EINVAL);
    bad = (plexus_election_hard_state){PLEXUS_ELECTION_TERM_MAX + 1, 0};
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_EINVAL);
    c = ok, c.n_peers = 63;
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_OK);
    c.n_peers = 64;
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_EFULL);
    uint64_t with_self[] = {1, 2, 3}; /* self in the list is skipped */
    c = ok, c.peers = with_self, c.n_peers = 3;
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_peer_count(&e), 2);
}

/* The driver drains after every input; if it does not, overflow is counted, not UB. */
static void test_outbox_overflow_counted(void)
{
    plexus_election e;
    uint64_t rng = 13;
    single(&e, &rng, 2, true);
    for (int i = 0; i < PLEXUS_ELECTION_OUTBOX + 5; i++) {
        plexus_election_msg hb = msg(PLEXUS_ELECTION_MSG_HEARTBEAT, 2, 1);
        CHECK_EQ_INT(plexus_election_step(&e, &hb), PLEXUS_OK);
    }
    CHECK_EQ_INT(plexus_election_get_stats(&e)->outbox_dropped, 5);
    plexus_election_ready rd;
    plexus_election_get_ready(&e, &rd);
    CHECK_EQ_INT(rd.n_msgs, PLEXUS_ELECTION_OUTBOX);
    plexus_election_advance(&e);
}

/* ---------------------------------------------------------------- membership */

static void test_join_leave_changes_quorum(void)
{
    plexus_election e;
    uint64_t rng = 14;
    single(&e, &rng, 0, true);
    CHECK_EQ_INT(plexus_election_quorum(&e), 1);
    size_t want[] = {2, 2, 3, 3, 4}; /* voters 2..6 */
    for (uint64_t p = 2; p <= 6; p++) {
        CHECK_EQ_INT(plexus_election_add_peer(&e, p), PLEXUS_OK);
        CHECK_EQ_INT(plexus_election_quorum(&e), want[p - 2]);
    }
    CHECK_EQ_INT(plexus_election_add_peer(&e, 4), PLEXUS_OK); /* idempotent */
    CHECK_EQ_INT(plexus_election_peer_count(&e), 5);
    CHECK(plexus_election_has_peer(&e, 4));
    CHECK_EQ_INT(plexus_election_add_peer(&e, 1), PLEXUS_EINVAL);
    CHECK_EQ_INT(plexus_election_add_peer(&e, 0), PLEXUS_EINVAL);
    CHECK_EQ_INT(plexus_election_remove_peer(&e, 4), PLEXUS_OK);
    CHECK(!plexus_election_has_peer(&e, 4));
    CHECK_EQ_INT(plexus_election_quorum(&e), 3);
    CHECK_EQ_INT(plexus_election_remove_peer(&e, 4), PLEXUS_ENOTFOUND);
    CHECK_EQ_INT(plexus_election_remove_peer(&e, 1), PLEXUS_EINVAL);
    uint64_t ids[8];
    CHECK_EQ_INT(plexus_election_peers(&e, ids, 8), 4);
    for (uint64_t p = 100; plexus_election_peer_count(&e) < 63; p++)
        CHECK_EQ_INT(plexus_election_add_peer(&e, p), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_add_peer(&e, 999), PLEXUS_EFULL);
    CHECK_EQ_INT(plexus_election_quorum(&e), 33);
}

/* A candidate short of votes wins as soon as silent peers leave and the smaller quorum
 * is met; messages from a removed peer are ignored. */
static void test_leave_lets_candidate_win(void)
{
    plexus_election e;
    uint64_t rng = 15;
    single(&e, &rng, 4, false); /* 5 voters, quorum 3 */
    CHECK_EQ_INT(plexus_election_campaign(&e), PLEXUS_OK);
    drain(&e, PLEXUS_ELECTION_MSG_VOTE, NULL);
    plexus_election_msg g = msg(PLEXUS_ELECTION_MSG_VOTE_RESP, 2, 1);
    CHECK_EQ_INT(plexus_election_step(&e, &g), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&e), PLEXUS_ELECTION_CANDIDATE);
    CHECK_EQ_INT(plexus_election_remove_peer(&e, 4), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&e), PLEXUS_ELECTION_CANDIDATE); /* 4 voters, q 3 */
    CHECK_EQ_INT(plexus_election_remove_peer(&e, 5), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&e), PLEXUS_ELECTION_LEADER); /* 3 voters, q 2 */
    plexus_election_msg late = msg(PLEXUS_ELECTION_MSG_HEARTBEAT_RESP, 5, 1);
    CHECK_EQ_INT(plexus_election_step(&e, &late), PLEXUS_ENOTFOUND);
}

/* A node joins a running cluster: everyone adds it, it follows the leader, and the
 * leader now needs 3 of 4 to stay (CheckQuorum over the new quorum). */
static void test_join_running_cluster(void)
{
    net w;
    net_init(&w, 4, true, true);
    for (size_t i = 0; i < 3; i++)
        CHECK_EQ_INT(plexus_election_remove_peer(&w.node[i], 4), PLEXUS_OK);
    isolate(&w, 3, true); /* not started yet */
    CHECK_EQ_INT(plexus_election_campaign(&w.node[0]), PLEXUS_OK);
    pump(&w);
    CHECK_EQ_INT(leader_of(&w), 0);
    CHECK_EQ_INT(plexus_election_quorum(&w.node[0]), 2);

    for (size_t i = 0; i < 3; i++)
        CHECK_EQ_INT(plexus_election_add_peer(&w.node[i], 4), PLEXUS_OK);
    isolate(&w, 3, false);
    for (int t = 0; t < 30; t++)
        net_tick(&w);
    CHECK_EQ_INT(leader_of(&w), 0);
    CHECK_EQ_INT(plexus_election_leader(&w.node[3]), 1);
    CHECK_EQ_INT(plexus_election_quorum(&w.node[0]), 3);

    isolate(&w, 1, true); /* 2 of 4 reachable: no longer a quorum */
    isolate(&w, 2, true);
    for (int t = 0; t < 20; t++)
        net_tick(&w);
    CHECK_EQ_INT(plexus_election_get_role(&w.node[0]), PLEXUS_ELECTION_FOLLOWER);
}

/* ---------------------------------------------------------------- restart */

/* doc/DESIGN.md §2: without hard state the node sits out a full election timeout (max)
 * before voting or campaigning, and never votes in a term learned meanwhile. */
static void test_restart_without_hard_state_sits_out(void)
{
    plexus_election e;
    uint64_t rng = 16, peers[] = {2, 3};
    bool rej = false;
    plexus_election_config c = base_config(1, peers, 2, &rng);
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_sit_out_left(&e), 20);
    CHECK_EQ_INT(plexus_election_campaign(&e), PLEXUS_ESTATE);

    plexus_election_msg v = msg(PLEXUS_ELECTION_MSG_VOTE, 2, 5);
    CHECK_EQ_INT(plexus_election_step(&e, &v), PLEXUS_OK);
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_VOTE_RESP, &rej), 1);
    CHECK(rej);
    CHECK_EQ_INT(plexus_election_term(&e), 5);
    CHECK_EQ_INT(plexus_election_get_hard_state(&e).voted_for, 0);

    for (int t = 0; t < 19; t++) {
        plexus_election_tick(&e);
        CHECK_EQ_INT(plexus_election_get_role(&e), PLEXUS_ELECTION_FOLLOWER); /* no campaign */
        CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_PRE_VOTE, NULL), 0);
    }
    CHECK_EQ_INT(plexus_election_sit_out_left(&e), 1);
    plexus_election_tick(&e);
    CHECK_EQ_INT(plexus_election_sit_out_left(&e), 0);

    plexus_election_msg v5 = msg(PLEXUS_ELECTION_MSG_VOTE, 3, 5); /* learned while out */
    CHECK_EQ_INT(plexus_election_step(&e, &v5), PLEXUS_OK);
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_VOTE_RESP, &rej), 1);
    CHECK(rej);
    plexus_election_msg v6 = msg(PLEXUS_ELECTION_MSG_VOTE, 3, 6);
    CHECK_EQ_INT(plexus_election_step(&e, &v6), PLEXUS_OK);
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_VOTE_RESP, &rej), 1);
    CHECK(!rej);
    CHECK_EQ_INT(plexus_election_get_hard_state(&e).voted_for, 3);
    CHECK_EQ_INT(plexus_election_campaign(&e), PLEXUS_OK); /* and may campaign now */
}

/* With its hard state restored the node keeps its vote (§5.2 + Figure 3.1) and does not
 * sit out. */
static void test_restart_with_hard_state_keeps_vote(void)
{
    plexus_election e;
    uint64_t rng = 17, peers[] = {2, 3};
    bool rej = false;
    plexus_election_hard_state hs = {3, 2};
    plexus_election_config c = base_config(1, peers, 2, &rng);
    c.restored = &hs;
    CHECK_EQ_INT(plexus_election_init(&e, &c), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_sit_out_left(&e), 0);
    CHECK(!plexus_election_has_ready(&e)); /* nothing new to persist */
    plexus_election_msg v = msg(PLEXUS_ELECTION_MSG_VOTE, 3, 3);
    CHECK_EQ_INT(plexus_election_step(&e, &v), PLEXUS_OK);
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_VOTE_RESP, &rej), 1);
    CHECK(rej);
    v.from = 2;
    CHECK_EQ_INT(plexus_election_step(&e, &v), PLEXUS_OK);
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_VOTE_RESP, &rej), 1);
    CHECK(!rej);
    plexus_election_msg v4 = msg(PLEXUS_ELECTION_MSG_VOTE, 3, 4);
    CHECK_EQ_INT(plexus_election_step(&e, &v4), PLEXUS_OK);
    CHECK_EQ_INT(drain(&e, PLEXUS_ELECTION_MSG_VOTE_RESP, &rej), 1);
    CHECK(!rej);
}

/* ---------------------------------------------------------------- fast path */

/* doc/DESIGN.md §2: a follower told its leader's node went down campaigns at once, without
 * waiting for a tick. When every survivor is told, a new leader emerges with no tick at
 * all; a peer_down about a non-leader changes nothing. */
static void test_peer_down_fast_path(void)
{
    net w;
    net_init(&w, 3, true, true);
    CHECK_EQ_INT(plexus_election_campaign(&w.node[0]), PLEXUS_OK);
    pump(&w);
    CHECK_EQ_INT(leader_of(&w), 0);
    uint64_t term = plexus_election_term(&w.node[0]);

    CHECK_EQ_INT(plexus_election_peer_down(&w.node[1], 3), PLEXUS_OK); /* not the leader */
    CHECK(!plexus_election_has_ready(&w.node[1]));
    CHECK_EQ_INT(plexus_election_peer_down(&w.node[1], 9), PLEXUS_ENOTFOUND);
    CHECK_EQ_INT(plexus_election_peer_down(&w.node[1], 2), PLEXUS_EINVAL);

    isolate(&w, 0, true); /* the leader's node dies */
    CHECK_EQ_INT(plexus_election_peer_down(&w.node[2], 1), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&w.node[2]), PLEXUS_ELECTION_PRE_CANDIDATE);
    CHECK_EQ_INT(plexus_election_get_stats(&w.node[2])->fast_path, 1);
    pump(&w); /* node 2 still believes in the leader: it refuses (lease) */
    CHECK_EQ_INT(plexus_election_get_stats(&w.node[1])->lease_rejected, 1);
    CHECK_EQ_INT(plexus_election_get_role(&w.node[2]), PLEXUS_ELECTION_PRE_CANDIDATE);
    CHECK_EQ_INT(plexus_election_peer_down(&w.node[1], 1), PLEXUS_OK);
    pump(&w); /* now node 3, leaderless, grants: no tick has passed */
    CHECK(leader_of(&w) == 1 || leader_of(&w) == 2);
    CHECK(leader_of(&w) != 0 && plexus_election_term(&w.node[leader_of(&w)]) == term + 1);

    /* without PreVote the fast path goes straight to an election */
    net v;
    net_init(&v, 3, false, true);
    CHECK_EQ_INT(plexus_election_campaign(&v.node[0]), PLEXUS_OK);
    pump(&v);
    CHECK_EQ_INT(plexus_election_peer_down(&v.node[1], 1), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&v.node[1]), PLEXUS_ELECTION_CANDIDATE);
    CHECK_EQ_INT(plexus_election_term(&v.node[1]), 2);
}

/* The staggered fast path (plexus_election_forget_leader, used by plexus_leader):
 * every survivor forgets the dead leader without campaigning; the one that campaigns
 * first is granted by all the others and wins in one round, no tick and no split vote. */
static void test_forget_leader_staggered(void)
{
    net w;
    net_init(&w, 5, true, true);
    CHECK_EQ_INT(plexus_election_campaign(&w.node[0]), PLEXUS_OK);
    pump(&w);
    CHECK_EQ_INT(leader_of(&w), 0);
    uint64_t term = plexus_election_term(&w.node[0]);

    CHECK_EQ_INT(plexus_election_forget_leader(&w.node[1], 9), PLEXUS_ENOTFOUND);
    CHECK_EQ_INT(plexus_election_forget_leader(&w.node[1], 2), PLEXUS_EINVAL);
    CHECK_EQ_INT(plexus_election_forget_leader(&w.node[1], 0), PLEXUS_EINVAL);
    CHECK_EQ_INT(plexus_election_forget_leader(&w.node[1], 3), PLEXUS_OK); /* not the leader */
    CHECK(!plexus_election_has_ready(&w.node[1]));
    /* the leader itself is not affected */
    CHECK_EQ_INT(plexus_election_forget_leader(&w.node[0], 2), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_get_role(&w.node[0]), PLEXUS_ELECTION_LEADER);

    isolate(&w, 0, true); /* the leader's node dies; every survivor hears of it */
    for (size_t i = 1; i < 5; i++) {
        CHECK_EQ_INT(plexus_election_forget_leader(&w.node[i], 1), PLEXUS_OK);
        CHECK_EQ_INT(plexus_election_get_role(&w.node[i]), PLEXUS_ELECTION_FOLLOWER);
        CHECK_EQ_INT(plexus_election_leader(&w.node[i]), 0);
        CHECK_EQ_INT(plexus_election_get_stats(&w.node[i])->pre_votes, 0);
    }
    pump(&w); /* nothing to send: only soft state changed */
    CHECK_EQ_INT(plexus_election_campaign(&w.node[3]), PLEXUS_OK);
    pump(&w);
    CHECK_EQ_INT(leader_of(&w), 3);
    CHECK_EQ_INT(plexus_election_term(&w.node[3]), term + 1);
    for (size_t i = 1; i < 5; i++)
        CHECK_EQ_INT(plexus_election_leader(&w.node[i]), 4);
}

/* ---------------------------------------------------------------- wire codec */

static size_t enc(const plexus_election_msg *m, uint8_t *buf)
{
    size_t len = 0;
    CHECK_EQ_INT(plexus_election_msg_encode(m, buf, PLEXUS_ELECTION_MSG_MAX, &len), PLEXUS_OK);
    return len;
}

static void test_codec_roundtrip(void)
{
    uint64_t vals[] = {1, 127, 128, 1ULL << 40, UINT64_MAX};
    for (int t = PLEXUS_ELECTION_MSG_PRE_VOTE; t <= PLEXUS_ELECTION_MSG_HEARTBEAT_RESP; t++)
        for (size_t k = 0; k < 5; k++) {
            plexus_election_msg m = {.type = (plexus_election_msg_type)t,
                                     .reject = (t % 2 == 0) && (k % 2),
                                     .cluster_id = vals[k] - 1,
                                     .from = vals[k],
                                     .to = vals[(k + 1) % 5],
                                     .term = k == 4 ? PLEXUS_ELECTION_TERM_MAX : vals[k]};
            uint8_t buf[PLEXUS_ELECTION_MSG_MAX], again[PLEXUS_ELECTION_MSG_MAX];
            size_t n = enc(&m, buf);
            plexus_election_msg d;
            CHECK_EQ_INT(plexus_election_msg_decode(buf, n, &d), PLEXUS_OK);
            CHECK(d.type == m.type && d.reject == m.reject && d.cluster_id == m.cluster_id &&
                  d.from == m.from && d.to == m.to && d.term == m.term);
            CHECK_EQ_INT(enc(&d, again), n);
            CHECK(memcmp(buf, again, n) == 0);
        }
    plexus_election_msg small = {PLEXUS_ELECTION_MSG_HEARTBEAT, false, 1, 2, 3, 4};
    uint8_t buf[PLEXUS_ELECTION_MSG_MAX];
    CHECK_EQ_INT(enc(&small, buf), 7);
    size_t len = 0;
    CHECK_EQ_INT(plexus_election_msg_encode(&small, buf, 6, &len), PLEXUS_ETOOBIG);
    small.from = small.to;
    CHECK_EQ_INT(plexus_election_msg_encode(&small, buf, sizeof buf, &len), PLEXUS_EINVAL);
}

static void test_decoder_rejects_truncation_and_garbage(void)
{
    plexus_election_msg m = {PLEXUS_ELECTION_MSG_VOTE_RESP, true, 300, 1ULL << 35, 77, 999};
    uint8_t buf[PLEXUS_ELECTION_MSG_MAX + 1];
    size_t n = enc(&m, buf);
    plexus_election_msg d;
    for (size_t k = 0; k < n; k++) /* every strict prefix */
        CHECK_EQ_INT(plexus_election_msg_decode(buf, k, &d), PLEXUS_ETRUNCATED);
    buf[n] = 0;
    CHECK_EQ_INT(plexus_election_msg_decode(buf, n + 1, &d), PLEXUS_ETRAILING);

    uint8_t b[PLEXUS_ELECTION_MSG_MAX];
    memcpy(b, buf, n);
    b[0] = 2;
    CHECK_EQ_INT(plexus_election_msg_decode(b, n, &d), PLEXUS_EVERSION);
    b[0] = 0;
    CHECK_EQ_INT(plexus_election_msg_decode(b, 1, &d), PLEXUS_EVERSION);
    uint8_t bad_types[] = {0, 7, 255};
    for (size_t i = 0; i < 3; i++) {
        memcpy(b, buf, n);
        b[1] = bad_types[i];
        CHECK_EQ_INT(plexus_election_msg_decode(b, n, &d), PLEXUS_ETYPE);
    }
    memcpy(b, buf, n);
    b[2] = 0x03; /* unknown flag bit */
    CHECK_EQ_INT(plexus_election_msg_decode(b, n, &d), PLEXUS_EINVAL);
    memcpy(b, buf, n);
    b[1] = PLEXUS_ELECTION_MSG_VOTE; /* reject on a request */
    CHECK_EQ_INT(plexus_election_msg_decode(b, n, &d), PLEXUS_EINVAL);

    /* hand-built bodies: version, type, flags, cluster, from, to, term */
    const uint8_t zero_from[] = {1, 5, 0, 1, 0, 2, 1};
    const uint8_t same_ids[] = {1, 5, 0, 1, 2, 2, 1};
    const uint8_t padded[] = {1, 5, 0, 0x81, 0x00, 2, 3, 1};
    const uint8_t huge_term[] = {1,    5,    0,    1,    2,    3,    0xff, 0xff,
                                 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    const uint8_t ok[] = {1, 5, 0, 1, 2, 3, 1};
    CHECK_EQ_INT(plexus_election_msg_decode(zero_from, sizeof zero_from, &d), PLEXUS_EINVAL);
    CHECK_EQ_INT(plexus_election_msg_decode(same_ids, sizeof same_ids, &d), PLEXUS_EINVAL);
    CHECK_EQ_INT(plexus_election_msg_decode(padded, sizeof padded, &d), PLEXUS_EVARINT);
    CHECK_EQ_INT(plexus_election_msg_decode(huge_term, sizeof huge_term, &d), PLEXUS_EINVAL);
    CHECK_EQ_INT(plexus_election_msg_decode(ok, sizeof ok, &d), PLEXUS_OK);
    CHECK_EQ_INT(plexus_election_msg_decode(NULL, 0, &d), PLEXUS_ETRUNCATED);

    /* random bytes: never a crash, and whatever decodes re-encodes to the same bytes */
    uint64_t rng = 42;
    int decoded = 0;
    for (int i = 0; i < 200000; i++) {
        uint8_t r[16];
        size_t len = test_rand(&rng) % sizeof r;
        for (size_t k = 0; k < len; k++)
            r[k] = (uint8_t)test_rand(&rng);
        if (len > 0) r[0] = 1; /* get past the version byte */
        if (len > 1) r[1] = (uint8_t)(r[1] % 8);
        if (len > 2) r[2] = (uint8_t)(r[2] % 3);
        if (plexus_election_msg_decode(r, len, &d) == PLEXUS_OK) {
            decoded++;
            uint8_t again[PLEXUS_ELECTION_MSG_MAX];
            CHECK_EQ_INT(enc(&d, again), len);
            CHECK(memcmp(r, again, len) == 0);
        }
    }
    CHECK(decoded > 0);
}

int main(void)
{
    RUN(test_one_vote_per_term);
    RUN(test_vote_persisted_with_its_response);
    RUN(test_step_down_on_higher_term);
    RUN(test_candidate_yields_to_leader_of_same_term);
    RUN(test_election_in_one_round);
    RUN(test_randomized_timeouts_cover_range);
    RUN(test_leader_heartbeats);
    RUN(test_pre_vote_partitioned_node_does_not_disrupt);
    RUN(test_pre_vote_refused_while_leader_is_live);
    RUN(test_check_quorum_lease_ignores_votes);
    RUN(test_pre_candidate_gives_up_on_refusals);
    RUN(test_check_quorum_steps_down);
    RUN(test_cluster_id_mismatch_ignored);
    RUN(test_step_rejects_bad_input);
    RUN(test_second_leader_in_term_refused);
    RUN(test_config_validation);
    RUN(test_outbox_overflow_counted);
    RUN(test_join_leave_changes_quorum);
    RUN(test_leave_lets_candidate_win);
    RUN(test_join_running_cluster);
    RUN(test_restart_without_hard_state_sits_out);
    RUN(test_restart_with_hard_state_keeps_vote);
    RUN(test_peer_down_fast_path);
    RUN(test_forget_leader_staggered);
    RUN(test_codec_roundtrip);
    RUN(test_decoder_rejects_truncation_and_garbage);
    return harness_finish("test_election");
}
