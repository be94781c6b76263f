/*
 * Raft leader election as a pure state machine. The rules, the paper sections they
 * come from and the driver contract are in include/plexus/election.h; the wire codec is
 * in election_msg.c.
 *
 * Reading order: helpers (peers, outbox, timers, terms), role transitions, campaigning
 * and vote counting, tick, step (term rules first, then one handler per message type),
 * the fast path and membership, then the ready batch and queries.
 */
#include <assert.h>
#include <string.h>

#include "plexus/election.h"

enum { VOTE_NONE = 0, VOTE_GRANTED = 1, VOTE_REFUSED = 2 };
enum tally { TALLY_PENDING, TALLY_WON, TALLY_LOST };

/* ---------------------------------------------------------------- helpers */

static int find_peer(const plexus_election *e, uint64_t id)
{
    for (size_t i = 0; i < e->n_peers; i++)
        if (e->peers[i].id == id) return (int)i;
    return -1;
}

/* A strict majority of the voters: self plus peers. */
static size_t quorum(const plexus_election *e)
{
    return (e->n_peers + 1) / 2 + 1;
}

/* Queue a message. A full outbox means the driver skipped draining; dropping is safe
 * because Raft already tolerates lost messages. */
static void emit(plexus_election *e, plexus_election_msg_type type, uint64_t to, uint64_t term,
                 bool reject)
{
    if (e->n_out == PLEXUS_ELECTION_OUTBOX) {
        e->stats.outbox_dropped++;
        return;
    }
    e->outbox[e->n_out++] = (plexus_election_msg){.type = type,
                                                  .reject = reject,
                                                  .cluster_id = e->cfg.cluster_id,
                                                  .from = e->cfg.id,
                                                  .to = to,
                                                  .term = term};
}

static void broadcast(plexus_election *e, plexus_election_msg_type type, uint64_t term)
{
    for (size_t i = 0; i < e->n_peers; i++)
        emit(e, type, e->peers[i].id, term, false);
}

/* §5.2: each round draws a fresh timeout from [min, max) so that split votes rarely
 * repeat. The modulo bias is below span / 2^64. */
static void reset_timers(plexus_election *e)
{
    uint32_t span = e->cfg.election_max_ticks - e->cfg.election_min_ticks;
    e->timeout = e->cfg.election_min_ticks + (uint32_t)(e->cfg.rand(e->cfg.rand_ctx) % span);
    e->election_elapsed = 0;
    e->heartbeat_elapsed = 0;
}

/* §5.1: terms only grow, and a new term starts without a vote. A node restarted without
 * its hard state may already have voted in any term it learns while sitting out, so
 * such terms are closed to it for good (vote_floor). */
static void enter_term(plexus_election *e, uint64_t term)
{
    assert(term >= e->term);
    if (term == e->term) return;
    e->term = term;
    e->voted_for = 0;
    if (e->sit_out_left) e->vote_floor = term;
}

static bool may_vote_in(const plexus_election *e, uint64_t term)
{
    return e->sit_out_left == 0 && term > e->vote_floor;
}

static bool can_campaign(const plexus_election *e)
{
    return e->sit_out_left == 0 && e->term < PLEXUS_ELECTION_TERM_MAX;
}

/* ---------------------------------------------------------------- transitions */

static void clear_votes(plexus_election *e)
{
    for (size_t i = 0; i < e->n_peers; i++)
        e->peers[i].vote = VOTE_NONE;
}

static void become_follower(plexus_election *e, uint64_t term, uint64_t leader)
{
    enter_term(e, term);
    e->role = PLEXUS_ELECTION_FOLLOWER;
    e->leader = leader;
    reset_timers(e);
}

/* PreVote (thesis §9.6): ask first, touching neither term nor vote. */
static void become_pre_candidate(plexus_election *e)
{
    assert(e->role != PLEXUS_ELECTION_LEADER);
    e->role = PLEXUS_ELECTION_PRE_CANDIDATE;
    e->leader = 0;
    clear_votes(e);
    reset_timers(e);
    e->stats.pre_votes++;
}

/* §5.2: increment the term and vote for self. */
static void become_candidate(plexus_election *e)
{
    assert(e->role != PLEXUS_ELECTION_LEADER);
    assert(e->term < PLEXUS_ELECTION_TERM_MAX);
    enter_term(e, e->term + 1);
    e->voted_for = e->cfg.id;
    e->role = PLEXUS_ELECTION_CANDIDATE;
    e->leader = 0;
    clear_votes(e);
    reset_timers(e);
    e->stats.elections++;
}

/* §5.2: a candidate with a majority leads and heartbeats at once to assert itself. */
static void become_leader(plexus_election *e)
{
    assert(e->role == PLEXUS_ELECTION_CANDIDATE);
    assert(e->voted_for == e->cfg.id);
    e->role = PLEXUS_ELECTION_LEADER;
    e->leader = e->cfg.id;
    reset_timers(e);
    for (size_t i = 0; i < e->n_peers; i++)
        e->peers[i].recent_active = false;
    broadcast(e, PLEXUS_ELECTION_MSG_HEARTBEAT, e->term);
}

/* ---------------------------------------------------------------- campaigning */

static enum tally tally(const plexus_election *e)
{
    size_t granted = 1, refused = 0; /* our own vote */
    for (size_t i = 0; i < e->n_peers; i++) {
        granted += e->peers[i].vote == VOTE_GRANTED;
        refused += e->peers[i].vote == VOTE_REFUSED;
    }
    size_t q = quorum(e);
    if (granted >= q) return TALLY_WON;
    if (refused > e->n_peers + 1 - q) return TALLY_LOST;
    return TALLY_PENDING;
}

/* Start a pre-vote round or a real election. A lone voter wins on its own vote. */
static void campaign(plexus_election *e, bool pre)
{
    if (pre)
        become_pre_candidate(e);
    else
        become_candidate(e);
    if (tally(e) == TALLY_WON) {
        if (pre)
            campaign(e, false);
        else
            become_leader(e);
        return;
    }
    /* Pre-votes ask about the term we would move to; we have not moved yet. */
    broadcast(e, pre ? PLEXUS_ELECTION_MSG_PRE_VOTE : PLEXUS_ELECTION_MSG_VOTE,
              pre ? e->term + 1 : e->term);
}

/* Called whenever a vote arrives or the quorum changes. */
static void recount(plexus_election *e)
{
    if (e->role != PLEXUS_ELECTION_PRE_CANDIDATE && e->role != PLEXUS_ELECTION_CANDIDATE) return;
    switch (tally(e)) {
    case TALLY_WON:
        if (e->role == PLEXUS_ELECTION_PRE_CANDIDATE)
            campaign(e, false);
        else
            become_leader(e);
        break;
    case TALLY_LOST:
        become_follower(e, e->term, 0);
        break;
    case TALLY_PENDING:
        break;
    }
}

static void record_vote(plexus_election *e, size_t i, bool granted)
{
    if (e->peers[i].vote != VOTE_NONE) return; /* a duplicate counts once */
    e->peers[i].vote = granted ? VOTE_GRANTED : VOTE_REFUSED;
    recount(e);
}

/* ---------------------------------------------------------------- tick */

static bool quorum_active(const plexus_election *e)
{
    size_t active = 1; /* self */
    for (size_t i = 0; i < e->n_peers; i++)
        active += e->peers[i].recent_active;
    return active >= quorum(e);
}

/* Leader: heartbeat every heartbeat_ticks; every election_min_ticks check that a
 * majority answered since the last check, else step down (CheckQuorum, thesis §6.2). */
static void tick_leader(plexus_election *e)
{
    e->heartbeat_elapsed++;
    if (++e->election_elapsed >= e->cfg.election_min_ticks) {
        e->election_elapsed = 0;
        if (e->cfg.check_quorum && !quorum_active(e)) {
            become_follower(e, e->term, 0);
            return;
        }
        for (size_t i = 0; i < e->n_peers; i++)
            e->peers[i].recent_active = false;
    }
    if (e->heartbeat_elapsed >= e->cfg.heartbeat_ticks) {
        e->heartbeat_elapsed = 0;
        broadcast(e, PLEXUS_ELECTION_MSG_HEARTBEAT, e->term);
    }
}

/* Everyone else: campaign when the randomized timeout runs out (§5.2). */
static void tick_election(plexus_election *e)
{
    if (e->sit_out_left) e->sit_out_left--;
    if (++e->election_elapsed < e->timeout) return;
    if (can_campaign(e))
        campaign(e, e->cfg.pre_vote);
    else
        reset_timers(e); /* sitting out: redraw, so nodes restarted together spread out */
}

void plexus_election_tick(plexus_election *e)
{
    if (e->role == PLEXUS_ELECTION_LEADER)
        tick_leader(e);
    else
        tick_election(e);
}

/* ---------------------------------------------------------------- step */

static bool is_vote_request(plexus_election_msg_type t)
{
    return t == PLEXUS_ELECTION_MSG_PRE_VOTE || t == PLEXUS_ELECTION_MSG_VOTE;
}

/* The leader lease (thesis §9.6): a node that heard from a live leader within the
 * minimum election timeout refuses to help replace it. Always for pre-votes; for real
 * votes only with CheckQuorum, whose leaders step down by themselves when cut off (as
 * etcd). A leader is always within its own lease. */
static bool in_lease(const plexus_election *e, plexus_election_msg_type t)
{
    if (e->leader == 0 || e->election_elapsed >= e->cfg.election_min_ticks) return false;
    return t == PLEXUS_ELECTION_MSG_PRE_VOTE || e->cfg.check_quorum;
}

static void on_pre_vote_resp(plexus_election *e, const plexus_election_msg *m, size_t i)
{
    if (e->role != PLEXUS_ELECTION_PRE_CANDIDATE) return;
    /* A grant names the term we asked about. A refusal carries the voter's term, which
     * may lag ours; pre-votes bind nothing, so any refusal not ahead of us counts. */
    bool fits = m->reject ? m->term <= e->term : m->term == e->term + 1;
    if (fits) record_vote(e, i, !m->reject);
}

/* Older term (§5.1): reply with our term to requests and heartbeats so the sender
 * catches up (a deposed leader learns it was replaced); drop other responses. */
static int step_stale(plexus_election *e, const plexus_election_msg *m, size_t i)
{
    e->stats.stale_term++;
    switch (m->type) {
    case PLEXUS_ELECTION_MSG_HEARTBEAT:
        emit(e, PLEXUS_ELECTION_MSG_HEARTBEAT_RESP, m->from, e->term, false);
        break;
    case PLEXUS_ELECTION_MSG_PRE_VOTE:
        emit(e, PLEXUS_ELECTION_MSG_PRE_VOTE_RESP, m->from, e->term, true);
        break;
    case PLEXUS_ELECTION_MSG_VOTE:
        emit(e, PLEXUS_ELECTION_MSG_VOTE_RESP, m->from, e->term, true);
        break;
    case PLEXUS_ELECTION_MSG_PRE_VOTE_RESP:
        on_pre_vote_resp(e, m, i);
        break;
    default:
        break;
    }
    return PLEXUS_OK;
}

/* Newer term (§5.1): become a follower in it, except for PreVote traffic, which never
 * moves terms (thesis §9.6), and vote requests inside the lease. Returns false when
 * m has been fully handled here. */
static bool step_newer(plexus_election *e, const plexus_election_msg *m)
{
    if (is_vote_request(m->type) && in_lease(e, m->type)) {
        e->stats.lease_rejected++;
        /* A refused pre-vote is answered so the asker can give up early; a real vote is
         * ignored (its higher term must not reach us while our leader lives). */
        if (m->type == PLEXUS_ELECTION_MSG_PRE_VOTE)
            emit(e, PLEXUS_ELECTION_MSG_PRE_VOTE_RESP, m->from, e->term, true);
        return false;
    }
    if (m->type == PLEXUS_ELECTION_MSG_PRE_VOTE) return true;
    if (m->type == PLEXUS_ELECTION_MSG_PRE_VOTE_RESP && !m->reject) return true;
    become_follower(e, m->term, m->type == PLEXUS_ELECTION_MSG_HEARTBEAT ? m->from : 0);
    return true;
}

/* §5.2: at most one vote per term, first come first served; re-granting the same
 * candidate is fine (its request may be duplicated). A pre-vote binds nothing, so it is
 * granted to any asker whose next term beats ours (thesis §9.6). */
static void on_vote_request(plexus_election *e, const plexus_election_msg *m)
{
    bool pre = m->type == PLEXUS_ELECTION_MSG_PRE_VOTE;
    plexus_election_msg_type resp =
        pre ? PLEXUS_ELECTION_MSG_PRE_VOTE_RESP : PLEXUS_ELECTION_MSG_VOTE_RESP;
    bool free_vote = e->voted_for == m->from || (e->voted_for == 0 && e->leader == 0);
    bool grant = (free_vote || (pre && m->term > e->term)) && may_vote_in(e, m->term);
    if (!grant) {
        emit(e, resp, m->from, e->term, true);
        return;
    }
    if (!pre) {
        assert(m->term == e->term);
        e->voted_for = m->from;
        e->election_elapsed = 0;
    }
    emit(e, resp, m->from, m->term, false);
}

/* A heartbeat in our own term comes from the one leader of that term (§5.2). A second
 * leader can only appear if some node lost its hard state; refuse and count it. */
static int on_heartbeat(plexus_election *e, const plexus_election_msg *m)
{
    bool other_leader = e->leader != 0 && e->leader != m->from;
    if (e->role == PLEXUS_ELECTION_LEADER || other_leader) {
        e->stats.conflicts++;
        return PLEXUS_ESTATE;
    }
    if (e->role != PLEXUS_ELECTION_FOLLOWER) become_follower(e, m->term, m->from);
    e->leader = m->from;
    e->election_elapsed = 0;
    emit(e, PLEXUS_ELECTION_MSG_HEARTBEAT_RESP, m->from, e->term, false);
    return PLEXUS_OK;
}

int plexus_election_step(plexus_election *e, const plexus_election_msg *m)
{
    if (!plexus_election_msg_valid(m) || m->to != e->cfg.id) return PLEXUS_EINVAL;
    if (m->cluster_id != e->cfg.cluster_id) {
        e->stats.wrong_cluster++;
        return PLEXUS_ECLUSTER;
    }
    int idx = find_peer(e, m->from);
    if (idx < 0) {
        e->stats.unknown_peer++;
        return PLEXUS_ENOTFOUND;
    }
    size_t i = (size_t)idx;
    if (m->term < e->term) return step_stale(e, m, i);
    if (m->term > e->term && !step_newer(e, m)) return PLEXUS_OK;

    switch (m->type) {
    case PLEXUS_ELECTION_MSG_PRE_VOTE:
    case PLEXUS_ELECTION_MSG_VOTE:
        on_vote_request(e, m);
        return PLEXUS_OK;
    case PLEXUS_ELECTION_MSG_HEARTBEAT:
        return on_heartbeat(e, m);
    case PLEXUS_ELECTION_MSG_HEARTBEAT_RESP:
        if (e->role == PLEXUS_ELECTION_LEADER) e->peers[i].recent_active = true;
        return PLEXUS_OK;
    case PLEXUS_ELECTION_MSG_PRE_VOTE_RESP:
        on_pre_vote_resp(e, m, i);
        return PLEXUS_OK;
    case PLEXUS_ELECTION_MSG_VOTE_RESP:
        if (e->role == PLEXUS_ELECTION_CANDIDATE && m->term == e->term)
            record_vote(e, i, !m->reject);
        return PLEXUS_OK;
    }
    return PLEXUS_EINVAL; /* unreachable: msg_valid checked the type */
}

/* ---------------------------------------------------------------- fast path */

/* doc/DESIGN.md §2: the BEAM reports a closed connection within milliseconds. If it was our
 * leader's, forget the leader (which also ends its lease, so we grant other nodes'
 * pre-votes) and campaign now rather than after the timeout. */
int plexus_election_peer_down(plexus_election *e, uint64_t peer)
{
    if (peer == 0 || peer == e->cfg.id) return PLEXUS_EINVAL;
    if (find_peer(e, peer) < 0) return PLEXUS_ENOTFOUND;
    if (e->role != PLEXUS_ELECTION_FOLLOWER || e->leader != peer) return PLEXUS_OK;
    e->leader = 0;
    if (can_campaign(e)) {
        e->stats.fast_path++;
        campaign(e, e->cfg.pre_vote);
    }
    return PLEXUS_OK;
}

/* peer_down without the campaign (see election.h): a driver staggers the campaigns. */
int plexus_election_forget_leader(plexus_election *e, uint64_t peer)
{
    if (peer == 0 || peer == e->cfg.id) return PLEXUS_EINVAL;
    if (find_peer(e, peer) < 0) return PLEXUS_ENOTFOUND;
    if (e->role == PLEXUS_ELECTION_FOLLOWER && e->leader == peer) e->leader = 0;
    return PLEXUS_OK;
}

int plexus_election_campaign(plexus_election *e)
{
    if (e->role == PLEXUS_ELECTION_LEADER || !can_campaign(e)) return PLEXUS_ESTATE;
    campaign(e, e->cfg.pre_vote);
    return PLEXUS_OK;
}

/* ---------------------------------------------------------------- membership */

int plexus_election_add_peer(plexus_election *e, uint64_t peer)
{
    if (peer == 0 || peer == e->cfg.id) return PLEXUS_EINVAL;
    if (find_peer(e, peer) >= 0) return PLEXUS_OK;
    if (e->n_peers == PLEXUS_ELECTION_MAX_NODES - 1) return PLEXUS_EFULL;
    e->peers[e->n_peers++] = (plexus_election_peer){.id = peer};
    recount(e);
    return PLEXUS_OK;
}

int plexus_election_remove_peer(plexus_election *e, uint64_t peer)
{
    if (peer == 0 || peer == e->cfg.id) return PLEXUS_EINVAL;
    int idx = find_peer(e, peer);
    if (idx < 0) return PLEXUS_ENOTFOUND;
    e->peers[idx] = e->peers[--e->n_peers]; /* order carries no meaning */
    if (e->role == PLEXUS_ELECTION_FOLLOWER && e->leader == peer) e->leader = 0;
    recount(e); /* a smaller quorum may already be met */
    return PLEXUS_OK;
}

/* ---------------------------------------------------------------- init */

static int check_config(const plexus_election_config *cfg)
{
    if (cfg->id == 0 || cfg->rand == NULL) return PLEXUS_EINVAL;
    if (cfg->heartbeat_ticks < 1 || cfg->heartbeat_ticks >= cfg->election_min_ticks ||
        cfg->election_min_ticks >= cfg->election_max_ticks)
        return PLEXUS_EINVAL;
    if (cfg->n_peers && cfg->peers == NULL) return PLEXUS_EINVAL;
    const plexus_election_hard_state *hs = cfg->restored;
    if (hs && (hs->term > PLEXUS_ELECTION_TERM_MAX || (hs->term == 0 && hs->voted_for != 0)))
        return PLEXUS_EINVAL;
    size_t others = 0;
    for (size_t i = 0; i < cfg->n_peers; i++) {
        if (cfg->peers[i] == 0) return PLEXUS_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (cfg->peers[j] == cfg->peers[i]) return PLEXUS_EINVAL;
        others += cfg->peers[i] != cfg->id;
    }
    return others > PLEXUS_ELECTION_MAX_NODES - 1 ? PLEXUS_EFULL : PLEXUS_OK;
}

int plexus_election_init(plexus_election *e, const plexus_election_config *cfg)
{
    int rc = check_config(cfg);
    if (rc) return rc;
    memset(e, 0, sizeof *e);
    e->cfg = *cfg;
    e->cfg.peers = NULL; /* borrowed pointers are not kept */
    e->cfg.n_peers = 0;
    e->cfg.restored = NULL;
    for (size_t i = 0; i < cfg->n_peers; i++)
        if (cfg->peers[i] != cfg->id)
            e->peers[e->n_peers++] = (plexus_election_peer){.id = cfg->peers[i]};
    if (cfg->restored) {
        e->term = cfg->restored->term;
        e->voted_for = cfg->restored->voted_for;
    } else {
        e->sit_out_left = cfg->election_max_ticks;
    }
    e->role = PLEXUS_ELECTION_FOLLOWER;
    e->reported_hard = (plexus_election_hard_state){e->term, e->voted_for};
    e->reported_role = e->role;
    reset_timers(e);
    return PLEXUS_OK;
}

/* ---------------------------------------------------------------- ready */

bool plexus_election_has_ready(const plexus_election *e)
{
    return e->n_out > 0 || e->term != e->reported_hard.term ||
           e->voted_for != e->reported_hard.voted_for || e->role != e->reported_role ||
           e->leader != e->reported_leader;
}

void plexus_election_get_ready(const plexus_election *e, plexus_election_ready *rd)
{
    rd->msgs = e->outbox;
    rd->n_msgs = e->n_out;
    rd->hard_state = (plexus_election_hard_state){e->term, e->voted_for};
    rd->hard_state_changed =
        e->term != e->reported_hard.term || e->voted_for != e->reported_hard.voted_for;
    rd->role = e->role;
    rd->leader = e->leader;
    rd->soft_state_changed = e->role != e->reported_role || e->leader != e->reported_leader;
}

void plexus_election_advance(plexus_election *e)
{
    e->n_out = 0;
    e->reported_hard = (plexus_election_hard_state){e->term, e->voted_for};
    e->reported_role = e->role;
    e->reported_leader = e->leader;
}

/* ---------------------------------------------------------------- queries */

plexus_election_role plexus_election_get_role(const plexus_election *e)
{
    return e->role;
}

uint64_t plexus_election_term(const plexus_election *e)
{
    return e->term;
}

uint64_t plexus_election_leader(const plexus_election *e)
{
    return e->leader;
}

size_t plexus_election_peer_count(const plexus_election *e)
{
    return e->n_peers;
}

size_t plexus_election_quorum(const plexus_election *e)
{
    return quorum(e);
}

uint32_t plexus_election_sit_out_left(const plexus_election *e)
{
    return e->sit_out_left;
}

plexus_election_hard_state plexus_election_get_hard_state(const plexus_election *e)
{
    return (plexus_election_hard_state){e->term, e->voted_for};
}

const plexus_election_stats *plexus_election_get_stats(const plexus_election *e)
{
    return &e->stats;
}

size_t plexus_election_peers(const plexus_election *e, uint64_t *out, size_t cap)
{
    for (size_t i = 0; i < e->n_peers && i < cap; i++)
        out[i] = e->peers[i].id;
    return e->n_peers;
}

bool plexus_election_has_peer(const plexus_election *e, uint64_t peer)
{
    return find_peer(e, peer) >= 0;
}

const char *plexus_election_role_name(plexus_election_role r)
{
    switch (r) {
    case PLEXUS_ELECTION_FOLLOWER:
        return "follower";
    case PLEXUS_ELECTION_PRE_CANDIDATE:
        return "pre_candidate";
    case PLEXUS_ELECTION_CANDIDATE:
        return "candidate";
    case PLEXUS_ELECTION_LEADER:
        return "leader";
    }
    return "unknown";
}
