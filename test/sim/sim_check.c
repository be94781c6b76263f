/*
 * The simulator's checker. It keeps ghost state outside the nodes, so what a node did
 * before a crash still counts after its restart, and checks after every input:
 *
 *   - terms never decrease per node (Raft §5.1), across restarts too;
 *   - at most one vote per node per term (§5.2), across restarts too;
 *   - a granted vote response leaves only after the vote is in the hard state that the
 *     same batch persists (thesis Figure 3.1);
 *   - at most one leader per term (§5.2 Election Safety), and each leader holds votes
 *     from a majority of its own membership in its term (join/leave change it);
 *   - a follower only ever follows the recorded leader of its term.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* Terms grow by about one per election; a run that goes beyond this is itself a bug. */
#define TERM_LIMIT (1u << 20)

void sim_ghost_init(sim_ghost *g, int n, const uint64_t *ids, char *why, size_t why_len)
{
    memset(g, 0, sizeof *g);
    g->n = n;
    g->ids = ids;
    g->why = why;
    g->why_len = why_len;
}

void sim_ghost_free(sim_ghost *g)
{
    for (int i = 0; i < g->n; i++)
        free(g->node[i].vote_by_term);
    free(g->leader_by_term);
}

void sim_ghost_fail(sim_ghost *g, const char *fmt, ...)
{
    if (g->violated) return;
    g->violated = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->why, g->why_len, fmt, ap);
    va_end(ap);
}

/* Slot for `term` in a zero-filled array grown on demand; NULL past TERM_LIMIT. */
static uint64_t *term_slot(uint64_t **arr, size_t *cap, uint64_t term)
{
    if (term >= TERM_LIMIT) return NULL;
    if (term >= *cap) {
        size_t ncap = *cap ? *cap : 64;
        while (ncap <= term)
            ncap *= 2;
        uint64_t *p = realloc(*arr, ncap * sizeof *p);
        if (!p) abort();
        memset(p + *cap, 0, (ncap - *cap) * sizeof *p);
        *arr = p;
        *cap = ncap;
    }
    return &(*arr)[term];
}

static uint64_t term_get(const uint64_t *arr, size_t cap, uint64_t term)
{
    return term < cap ? arr[term] : 0;
}

static void record_vote(sim_ghost *g, int i, uint64_t term, uint64_t candidate, uint64_t now)
{
    sim_ghost_node *gn = &g->node[i];
    uint64_t *slot = term_slot(&gn->vote_by_term, &gn->cap, term);
    if (!slot) {
        sim_ghost_fail(g, "term %llu beyond the simulator's limit", (unsigned long long)term);
        return;
    }
    if (*slot == 0) {
        *slot = candidate;
        return;
    }
    if (*slot != candidate)
        sim_ghost_fail(g,
                       "node %d voted twice in term %llu: for %016llx and for %016llx "
                       "(t=%llu)",
                       i, (unsigned long long)term, (unsigned long long)*slot,
                       (unsigned long long)candidate, (unsigned long long)now);
}

static int votes_for(const sim_ghost *g, uint64_t term, uint64_t candidate)
{
    int n = 0;
    for (int j = 0; j < g->n; j++)
        n += term_get(g->node[j].vote_by_term, g->node[j].cap, term) == candidate;
    return n;
}

static void check_leader(sim_ghost *g, int i, uint64_t term, size_t quorum, uint64_t now)
{
    uint64_t *slot = term_slot(&g->leader_by_term, &g->leader_cap, term);
    if (!slot) {
        sim_ghost_fail(g, "term %llu beyond the simulator's limit", (unsigned long long)term);
        return;
    }
    if (*slot == g->ids[i]) return;
    if (*slot != 0) {
        sim_ghost_fail(g, "two leaders in term %llu: %016llx and node %d (%016llx) (t=%llu)",
                       (unsigned long long)term, (unsigned long long)*slot, i,
                       (unsigned long long)g->ids[i], (unsigned long long)now);
        return;
    }
    *slot = g->ids[i];
    g->leader_changes++;
    /* Its own membership's quorum: voters come and go (join/leave). Every vote counted
     * here was recorded, so this is a lower bound on what the leader counted. */
    int have = votes_for(g, term, g->ids[i]), need = (int)quorum;
    if (have < need)
        sim_ghost_fail(g, "node %d leads term %llu with %d recorded votes, quorum %d (t=%llu)", i,
                       (unsigned long long)term, have, need, (unsigned long long)now);
}

void sim_ghost_check(sim_ghost *g, int i, const plexus_election *e, const plexus_election_ready *rd,
                     uint64_t now)
{
    sim_ghost_node *gn = &g->node[i];
    plexus_election_hard_state hs = plexus_election_get_hard_state(e);
    if (hs.term < gn->last_term)
        sim_ghost_fail(g, "node %d term went back from %llu to %llu (t=%llu)", i,
                       (unsigned long long)gn->last_term, (unsigned long long)hs.term,
                       (unsigned long long)now);
    gn->last_term = hs.term;
    if (hs.voted_for) record_vote(g, i, hs.term, hs.voted_for, now);

    /* The vote behind every granted response must already be in the hard state this
     * batch persists (or persisted earlier): recorded just above, or before. */
    for (size_t k = 0; rd && k < rd->n_msgs; k++) {
        const plexus_election_msg *m = &rd->msgs[k];
        if (m->type != PLEXUS_ELECTION_MSG_VOTE_RESP || m->reject) continue;
        if (term_get(gn->vote_by_term, gn->cap, m->term) != m->to)
            sim_ghost_fail(g, "node %d granted %016llx in term %llu without a persisted vote", i,
                           (unsigned long long)m->to, (unsigned long long)m->term);
    }

    uint64_t term = plexus_election_term(e), leader = plexus_election_leader(e);
    if (plexus_election_get_role(e) == PLEXUS_ELECTION_LEADER) {
        if (leader != g->ids[i]) sim_ghost_fail(g, "node %d leads but names another", i);
        check_leader(g, i, term, plexus_election_quorum(e), now);
    } else if (leader != 0) {
        uint64_t known = term_get(g->leader_by_term, g->leader_cap, term);
        if (known != leader)
            sim_ghost_fail(g, "node %d follows %016llx in term %llu, whose leader is %016llx", i,
                           (unsigned long long)leader, (unsigned long long)term,
                           (unsigned long long)known);
    }
}
