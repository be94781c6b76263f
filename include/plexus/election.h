/*
 * plexus election: a pure Raft leader-election state machine (doc/DESIGN.md §2).
 *
 * What it implements, and where the rule comes from:
 *   - Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus
 *     Algorithm", 2014) §5.1 terms and §5.2 leader election: roles follower /
 *     candidate / leader, terms that only grow, one vote per term (first come, first
 *     served), randomized election timeouts in [min, max) ticks, heartbeats, and stepping
 *     down as soon as a higher term is seen.
 *   - Ongaro's thesis ("Consensus: Bridging Theory and Practice", 2014) §9.6: PreVote
 *     (a would-be candidate first asks whether it could win, without bumping its term,
 *     so a node returning from a partition does not disrupt a working cluster) and the
 *     leader "lease": a node that heard from a live leader within the minimum election
 *     timeout refuses pre-votes, and with CheckQuorum also ignores votes for higher terms.
 *   - Thesis §6.2 CheckQuorum: a leader that has not heard from a majority within an
 *     election timeout steps down, so a partitioned leader does not linger.
 *   - doc/DESIGN.md §2 fast path: plexus_election_peer_down() tells a follower that its
 *     leader's node connection closed; it starts a pre-vote (or an election when PreVote
 *     is off) at once instead of waiting out its timeout. Votes are still needed, so
 *     safety is unchanged.
 *
 * There is no log. A vote is granted on term rules alone (one vote per term, candidate's
 * term >= ours); the "log at least as up-to-date" check of §5.4.1 has nothing to compare
 * and is left out. What the election guarantees is §5.2 Election Safety: at most one
 * leader per term, provided every node keeps its hard state across restarts.
 *
 * Shape (etcd-raft): the machine never does I/O, reads a clock or allocates. Inputs are
 * tick, step(message), peer_down, campaign and peer add/remove. Outputs collect in a
 * "ready" batch: messages to send, hard state to persist when it changed, and the soft
 * state (role, leader) when it changed. The driver loop after every input:
 *
 *     if (plexus_election_has_ready(e)) {
 *         plexus_election_ready rd;
 *         plexus_election_get_ready(e, &rd);
 *         if (rd.hard_state_changed) persist(rd.hard_state);   // durably, FIRST
 *         for (size_t i = 0; i < rd.n_msgs; i++) send(&rd.msgs[i]);
 *         if (rd.soft_state_changed) notify(rd.role, rd.leader);
 *         plexus_election_advance(e);
 *     }
 *
 * The hard state must be on stable storage before any message of the same batch leaves
 * (thesis Figure 3.1, "updated on stable storage before responding to RPCs"): a vote
 * response sent before its vote is durable lets a crash-restart vote twice in one term.
 *
 * Restart. plexus_election_init() takes the restored hard state {term, voted_for}. When
 * the caller has none (lost or never written), the node sits out one full election
 * timeout (election_max ticks) before it votes or campaigns, and it never votes in a
 * term it learned during that sit-out. This only protects an election that was in
 * flight when the node crashed; it rests on timing (no vote request delayed longer than
 * the sit-out) and is weaker than persisting, which is what the simulator proves safe.
 * A node that has provably never run (empty data directory) may pass {0, 0}.
 *
 * Peer ids are opaque nonzero uint64 values, unique within a cluster; 0 means "none".
 * The Erlang side maps node names to ids (and back when it sends). The cluster id is an
 * opaque uint64 too: messages carrying another cluster id are ignored and counted.
 *
 * Membership is an input, not replicated: add/remove recompute the quorum (a strict
 * majority of self + peers) at once. Election safety across a change needs the voter
 * sets that any two leaders count against to differ by at most one node (thesis §4.1,
 * single-server changes). The driver owns that: erl/plexus_leader.erl saves the
 * membership with the hard state and changes it by Raft's single-server rules, with the
 * membership as a one-entry log (argued above its membership_change/2); test/sim
 * drives this machine the same way.
 *
 * Memory: everything lives inside struct plexus_election (fixed arrays, at most
 * PLEXUS_ELECTION_MAX_NODES voters including self), so the caller can embed it in a NIF
 * resource. Fields are private; use the functions below. Not thread-safe: one owner.
 *
 * Errors: input from outside (config, messages, peer ids) is checked and rejected with a
 * PLEXUS_E* code; broken internal invariants (an illegal role transition, a term going
 * backwards) are assert()s.
 */
#ifndef PLEXUS_ELECTION_H
#define PLEXUS_ELECTION_H

#include <stdbool.h>
#include <stdint.h>

#include "plexus/common.h"

/* Voters per cluster, self included. */
#define PLEXUS_ELECTION_MAX_NODES 64
/* Messages held between drains. One input produces at most MAX_NODES messages, so a
 * driver that drains after every input never loses one; beyond this they are dropped
 * and counted (Raft tolerates message loss, so safety holds either way). */
#define PLEXUS_ELECTION_OUTBOX (2 * PLEXUS_ELECTION_MAX_NODES)
/* Largest encoded message: 3 header bytes + 4 varints. */
#define PLEXUS_ELECTION_MSG_MAX (3 + 4 * PLEXUS_VARINT_MAX)
/* Wire format version (first byte of every encoded message). */
#define PLEXUS_ELECTION_WIRE_VERSION 1
/* Largest term a message or restored state may carry, so that term + 1 never wraps
 * (2^63 elections). A node at this term stops campaigning. */
#define PLEXUS_ELECTION_TERM_MAX (UINT64_MAX >> 1)

typedef enum plexus_election_role {
    PLEXUS_ELECTION_FOLLOWER = 0,
    PLEXUS_ELECTION_PRE_CANDIDATE = 1,
    PLEXUS_ELECTION_CANDIDATE = 2,
    PLEXUS_ELECTION_LEADER = 3
} plexus_election_role;

/* Message types; the values are the wire encoding and never change. */
typedef enum plexus_election_msg_type {
    PLEXUS_ELECTION_MSG_PRE_VOTE = 1,      /* term = the term the sender would campaign in */
    PLEXUS_ELECTION_MSG_PRE_VOTE_RESP = 2, /* granted: the request's term; else our term */
    PLEXUS_ELECTION_MSG_VOTE = 3,          /* term = candidate's term */
    PLEXUS_ELECTION_MSG_VOTE_RESP = 4,     /* granted: the candidate's term; else ours */
    PLEXUS_ELECTION_MSG_HEARTBEAT = 5,     /* leader -> follower */
    PLEXUS_ELECTION_MSG_HEARTBEAT_RESP = 6 /* follower -> leader; feeds CheckQuorum */
} plexus_election_msg_type;

typedef struct plexus_election_msg {
    plexus_election_msg_type type;
    bool reject; /* responses only: the (pre-)vote was refused */
    uint64_t cluster_id;
    uint64_t from;
    uint64_t to;
    uint64_t term;
} plexus_election_msg;

/* What must survive a restart (Raft "persistent state", minus the log). */
typedef struct plexus_election_hard_state {
    uint64_t term;
    uint64_t voted_for; /* 0 = no vote in `term` */
} plexus_election_hard_state;

/* Random source: returns 64 uniformly random bits. Called only to draw timeouts. */
typedef uint64_t (*plexus_election_rand_fn)(void *ctx);

typedef struct plexus_election_config {
    uint64_t id;           /* this node, nonzero */
    uint64_t cluster_id;   /* stamped on and checked against every message */
    const uint64_t *peers; /* the other voters; self may appear and is skipped */
    size_t n_peers;        /* at most PLEXUS_ELECTION_MAX_NODES - 1 besides self */
    /* Timing in ticks: 1 <= heartbeat_ticks < election_min_ticks < election_max_ticks.
     * Timeouts are drawn uniformly from [election_min_ticks, election_max_ticks). */
    uint32_t election_min_ticks;
    uint32_t election_max_ticks;
    uint32_t heartbeat_ticks;
    bool pre_vote;
    bool check_quorum;
    /* Restored hard state, or NULL for none (the node then sits out; see above).
     * Only read during init. */
    const plexus_election_hard_state *restored;
    plexus_election_rand_fn rand;
    void *rand_ctx;
} plexus_election_config;

/* Counters for observability; never reset by the machine. */
typedef struct plexus_election_stats {
    uint64_t wrong_cluster;  /* messages from another cluster, ignored */
    uint64_t unknown_peer;   /* messages from ids outside the peer set, ignored */
    uint64_t stale_term;     /* messages carrying a lower term */
    uint64_t lease_rejected; /* (pre-)votes refused because a live leader was heard */
    uint64_t conflicts;      /* a second leader claimed our term; should stay 0 */
    uint64_t outbox_dropped; /* messages lost because the outbox was not drained */
    uint64_t pre_votes;      /* pre-vote rounds started */
    uint64_t elections;      /* elections started (term bumps by this node) */
    uint64_t fast_path;      /* campaigns started by plexus_election_peer_down */
} plexus_election_stats;

/* The batch of outputs; pointers stay valid until plexus_election_advance(). */
typedef struct plexus_election_ready {
    const plexus_election_msg *msgs;
    size_t n_msgs;
    bool hard_state_changed;
    plexus_election_hard_state hard_state;
    bool soft_state_changed; /* role or leader differs from the last advance */
    plexus_election_role role;
    uint64_t leader; /* 0 = unknown */
} plexus_election_ready;

/* Private: one per peer (self excluded). */
typedef struct plexus_election_peer {
    uint64_t id;
    uint8_t vote;       /* this campaign: 0 no answer, 1 granted, 2 refused */
    bool recent_active; /* leader: heard from since the last CheckQuorum */
} plexus_election_peer;

/* The state machine. Private fields; zero or garbage until plexus_election_init. */
typedef struct plexus_election {
    plexus_election_config cfg; /* peers/restored pointers cleared after init */
    plexus_election_role role;
    uint64_t term;
    uint64_t voted_for;
    uint64_t leader;
    plexus_election_peer peers[PLEXUS_ELECTION_MAX_NODES - 1];
    size_t n_peers;
    uint32_t election_elapsed;  /* ticks since the last reset (leader: since CheckQuorum) */
    uint32_t heartbeat_elapsed; /* leader only */
    uint32_t timeout;           /* this round's randomized election timeout */
    uint32_t sit_out_left;      /* ticks left before a node without hard state may vote */
    uint64_t vote_floor;        /* never vote in a term <= this (learned while sitting out) */
    plexus_election_msg outbox[PLEXUS_ELECTION_OUTBOX];
    size_t n_out;
    plexus_election_hard_state reported_hard;
    plexus_election_role reported_role;
    uint64_t reported_leader;
    plexus_election_stats stats;
} plexus_election;

/* ---- lifecycle and inputs ---- */

/* Validates cfg and starts the node as a follower. PLEXUS_EINVAL on a bad config (zero
 * id, bad timing, no rand, duplicate or zero peer, restored voted_for without a term or
 * term over PLEXUS_ELECTION_TERM_MAX), PLEXUS_EFULL with too many peers. On error *e is
 * unspecified. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_election_init(plexus_election *e,
                                                      const plexus_election_config *cfg);

/* One unit of logical time: heartbeats, election timeouts, CheckQuorum, sit-out. */
PLEXUS_API void plexus_election_tick(plexus_election *e);

/* Feed a message addressed to this node. Returns PLEXUS_OK when processed (stale or
 * refused messages included), PLEXUS_ECLUSTER for another cluster's message and
 * PLEXUS_ENOTFOUND for a sender outside the peer set (both ignored and counted),
 * PLEXUS_EINVAL for a malformed message (not for us, from us, bad type), PLEXUS_ESTATE
 * when a second leader claims our term (ignored, counted in stats.conflicts). */
PLEXUS_API int plexus_election_step(plexus_election *e, const plexus_election_msg *m);

/* The connection to `peer` closed (doc/DESIGN.md §2 fast path). If it was our leader, a
 * follower forgets it and campaigns now. PLEXUS_ENOTFOUND if not a peer, PLEXUS_EINVAL
 * for self or 0. */
PLEXUS_API int plexus_election_peer_down(plexus_election *e, uint64_t peer);

/* The connection to `peer` closed, without the fast path's campaign: if `peer` was
 * this follower's leader, forget it (ending its lease, so this node grants other
 * nodes' pre-votes) and do nothing else. For drivers that stagger the fast path: every
 * survivor forgets the dead leader at once, one campaigns at once, the others only if
 * no leader appeared after a delay, so the survivors do not all stand in the same term
 * and split the vote. Same errors as plexus_election_peer_down. (Additive helper, used
 * by erl/plexus_leader.erl.) */
PLEXUS_API int plexus_election_forget_leader(plexus_election *e, uint64_t peer);

/* Start a (pre-)election now, as on a timeout. PLEXUS_ESTATE if leader or sitting out. */
PLEXUS_API int plexus_election_campaign(plexus_election *e);

/* Membership. add: PLEXUS_OK (also when already a peer), PLEXUS_EINVAL for self or 0,
 * PLEXUS_EFULL at the limit. remove: PLEXUS_ENOTFOUND if absent, PLEXUS_EINVAL for
 * self. A candidate re-counts its votes against the new quorum at once. */
PLEXUS_API int plexus_election_add_peer(plexus_election *e, uint64_t peer);
PLEXUS_API int plexus_election_remove_peer(plexus_election *e, uint64_t peer);

/* ---- outputs ---- */

PLEXUS_API bool plexus_election_has_ready(const plexus_election *e);
/* Fills rd; the message array is owned by e and valid until the next advance or input. */
PLEXUS_API void plexus_election_get_ready(const plexus_election *e, plexus_election_ready *rd);
/* The caller persisted, sent and acted on the last get_ready: clear it. */
PLEXUS_API void plexus_election_advance(plexus_election *e);

/* ---- queries ---- */

/* Names with get_ are the ones whose bare form is a type name. */
PLEXUS_API plexus_election_role plexus_election_get_role(const plexus_election *e);
PLEXUS_API uint64_t plexus_election_term(const plexus_election *e);
PLEXUS_API uint64_t plexus_election_leader(const plexus_election *e); /* 0 = unknown */
PLEXUS_API plexus_election_hard_state plexus_election_get_hard_state(const plexus_election *e);
PLEXUS_API size_t plexus_election_peer_count(const plexus_election *e); /* self excluded */
/* Copies up to cap peer ids into out; returns the number of peers. */
PLEXUS_API size_t plexus_election_peers(const plexus_election *e, uint64_t *out, size_t cap);
PLEXUS_API bool plexus_election_has_peer(const plexus_election *e, uint64_t peer);
/* Votes needed to win: a strict majority of self + peers. */
PLEXUS_API size_t plexus_election_quorum(const plexus_election *e);
/* Ticks left in the no-hard-state sit-out (0 once the node may vote). */
PLEXUS_API uint32_t plexus_election_sit_out_left(const plexus_election *e);
PLEXUS_API const plexus_election_stats *plexus_election_get_stats(const plexus_election *e);

PLEXUS_API const char *plexus_election_role_name(plexus_election_role r);
PLEXUS_API const char *plexus_election_msg_type_name(plexus_election_msg_type t);

/* ---- wire format (c_src/core/election_msg.c) ----
 *
 * Version 1, all integers unsigned LEB128 in minimal form:
 *
 *     byte 0   version (1)
 *     byte 1   type (plexus_election_msg_type, 1..6)
 *     byte 2   flags: bit 0 = reject (response types only); other bits must be 0
 *     varint   cluster_id
 *     varint   from   (nonzero)
 *     varint   to     (nonzero, != from)
 *     varint   term   (<= PLEXUS_ELECTION_TERM_MAX)
 *
 * Nothing may follow. At most PLEXUS_ELECTION_MSG_MAX bytes; a heartbeat between small
 * ids is about 8 bytes. The decoder is strict (one encoding per message), so encode and
 * decode round-trip byte for byte.
 */

/* Writes m into out[0..cap); *len gets the size. PLEXUS_EINVAL if m is not a valid
 * message, PLEXUS_ETOOBIG if cap is too small (PLEXUS_ELECTION_MSG_MAX always fits). */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_election_msg_encode(const plexus_election_msg *m,
                                                            uint8_t *out, size_t cap, size_t *len);
/* Parses exactly n bytes. Errors: PLEXUS_ETRUNCATED, PLEXUS_EVERSION, PLEXUS_ETYPE
 * (unknown type), PLEXUS_EVARINT, PLEXUS_EINVAL (bad flags, zero or equal ids, term
 * over PLEXUS_ELECTION_TERM_MAX),
 * PLEXUS_ETRAILING. On error *m is unspecified. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_election_msg_decode(const uint8_t *p, size_t n,
                                                            plexus_election_msg *m);
/* The checks the codec applies, for messages built in memory. */
PLEXUS_API bool plexus_election_msg_valid(const plexus_election_msg *m);

#endif
