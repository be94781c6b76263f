/*
 * Deterministic simulator of the election core (doc/DESIGN.md §2, issue 3).
 *
 * One seed = one cluster of 3, 5 or 7 real plexus_election machines, a simulated clock
 * and network, and a scripted run of fault phases. Half the seeds also change the
 * membership (join/leave) as erl/plexus_leader_policy.erl does, bootstrapping 3 nodes and
 * joining the others. Everything random comes from the
 * seed, so a seed replays exactly. Pieces:
 *
 *   sim_world.c  the world: nodes, clock, network (loss, duplication, reordering,
 *                delay, partitions), crashes and restarts, pauses, nodedown reports
 *   sim_check.c  the checker: ghost state kept outside the nodes (so it survives their
 *                restarts) and the safety invariants, checked after every input
 *   sim_main.c   command line, the seed loop, reporting
 */
#ifndef PLEXUS_SIM_H
#define PLEXUS_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "plexus/election.h"

#define SIM_MAX_NODES 7
/* Simulated time resolution: a tick is this many units, and message delays are counted
 * in units, so a message usually arrives within a fraction of a tick, as on a LAN where
 * ticks are ~10 ms and messages take well under 1 ms. */
#define SIM_UNITS_PER_TICK 16
/* Liveness bound: after a heal, a leader within this many election timeouts. */
#define SIM_LIVENESS_TIMEOUTS 10

/* Planted bugs: forget-vote (a restart loses its vote), forget-membership (a restart
 * takes its bootstrap voters for current, issue 8). */
typedef enum sim_bug { SIM_BUG_NONE = 0, SIM_BUG_FORGET_VOTE, SIM_BUG_FORGET_MEMBERSHIP } sim_bug;

typedef struct sim_options {
    int nodes;   /* 0: 3, 5 or 7 by seed */
    sim_bug bug; /* planted bug, to show that the checker catches it */
    bool trace;  /* print every event (for replaying one seed) */
} sim_options;

/* What one seed did; summed over seeds for the closing report. */
typedef struct sim_result {
    bool failed;
    bool liveness; /* the failure was the liveness check, not a safety invariant */
    char why[512];
    uint64_t elections;      /* terms started across all nodes */
    uint64_t leader_changes; /* distinct (term, leader) pairs */
    uint64_t crashes;
    uint64_t membership_changes; /* joins and leaves made */
    uint64_t max_term;
    uint64_t worst_recovery_ticks; /* slowest heal-to-stable-leader */
    uint32_t timeout_ticks;        /* this seed's election_max_ticks */
} sim_result;

/* ---- checker (sim_check.c) ---- */

typedef struct sim_ghost_node {
    uint64_t *vote_by_term; /* candidate id voted for in each term, 0 = none seen */
    size_t cap;
    uint64_t last_term;
} sim_ghost_node;

typedef struct sim_ghost {
    int n;
    const uint64_t *ids;
    sim_ghost_node node[SIM_MAX_NODES];
    uint64_t *leader_by_term; /* the leader of each term, 0 = none seen */
    size_t leader_cap;
    uint64_t leader_changes;
    char *why; /* where a violation is written */
    size_t why_len;
    bool violated;
} sim_ghost;

void sim_ghost_init(sim_ghost *g, int n, const uint64_t *ids, char *why, size_t why_len);
void sim_ghost_free(sim_ghost *g);
/* After node i handled an input and before its ready batch goes out: record votes
 * and the leader, check every invariant that concerns node i. rd is that batch. */
void sim_ghost_check(sim_ghost *g, int i, const plexus_election *e, const plexus_election_ready *rd,
                     uint64_t now);
/* Record a violation (first one wins). */
void sim_ghost_fail(sim_ghost *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- world (sim_world.c) ---- */

/* Runs one seed to completion; fills *res. */
void sim_run_seed(uint64_t seed, const sim_options *opt, sim_result *res);

/* splitmix64, the simulator's only source of randomness. */
uint64_t sim_rand(uint64_t *state);

#endif
