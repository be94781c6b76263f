/*
 * The simulated world for one seed: nodes running the real election core, a clock, a
 * network that loses, duplicates, delays and reorders messages and can be partitioned,
 * crashes with restarts from the persisted hard state, pauses (a frozen VM), and
 * nodedown reports feeding plexus_election_peer_down() as the BEAM would.
 *
 * A run is PHASES rounds of two parts. Chaos: faults are drawn every tick, for 2 to 20
 * election timeouts. Heal: a majority "clique" (sometimes everyone) is restarted,
 * unfrozen and fully connected over a mild network, the rest cut off; a leader that the
 * whole clique follows must appear within SIM_LIVENESS_TIMEOUTS election timeouts and
 * then hold its term for two more. The checker (sim_check.c) runs after every input to
 * every node, in both parts.
 *
 * Every message travels as bytes through the wire codec, so the codec is exercised on
 * everything the machines say.
 *
 * Half the seeds also change the membership the way erl/plexus_leader_policy.erl does (its
 * rules are argued there): 3 nodes bootstrap (all of them in a 3-node seed), the
 * operator calls join/leave on a random node, which only the committed leader
 * honours; memberships travel in `config' and `alive' events over the same lossy,
 * partitioned network, ride on every message as a key, and are saved with the hard
 * state, so restarts come back with them. A heal then connects every voter of the
 * newest membership.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define UNITS SIM_UNITS_PER_TICK
#define PHASES 6

/* EV_ALIVE and EV_CONFIG are plexus_leader's `alive' and `config' messages. */
enum ev_kind { EV_MSG, EV_PEER_DOWN, EV_ALIVE, EV_CONFIG };

/* A membership as plexus_leader keeps it: the term it was made in and a version within
 * it (its key, ordered by term first), and the voters. */
typedef struct sim_config {
    uint64_t ver, cterm;
    uint8_t mask; /* bit i: node i votes */
} sim_config;

static bool key_less(sim_config a, sim_config b)
{
    return a.cterm != b.cterm ? a.cterm < b.cterm : a.ver < b.ver;
}

static bool key_eq(sim_config a, sim_config b)
{
    return a.cterm == b.cterm && a.ver == b.ver;
}

typedef struct sim_event {
    uint64_t at;    /* delivery time in units */
    uint64_t order; /* random: events due at the same unit come in random order */
    uint8_t kind, from, to, len;
    uint8_t bytes[PLEXUS_ELECTION_MSG_MAX];
    sim_config cfg; /* sender's membership; its version rides on every message */
} sim_event;

typedef struct sim_node {
    plexus_election e;
    bool up;
    uint64_t rng; /* the node's timeout randomness; a restart continues the stream */
    bool has_disk;
    plexus_election_hard_state disk; /* what the node persisted, survives crashes */
    uint64_t next_tick;
    uint32_t period; /* units per tick, differs a little per node: clock drift */
    uint64_t paused_until;
    uint64_t restart_at; /* UINT64_MAX: stopped for good (not joined yet, or removed) */
    sim_config cfg;      /* the membership in use */
    sim_config disk_cfg; /* persisted with the hard state */
    bool has_disk_cfg;
    sim_config boot; /* its `bootstrap' option */
    /* volatile: the membership key each peer last reported (plexus_leader's #peer.key) */
    sim_config peer_cfg[SIM_MAX_NODES]; /* key only */
    uint32_t alive_elapsed;
} sim_node;

/* Network quality, redrawn during chaos. Rates in per mille, delays in units. */
typedef struct sim_net {
    uint32_t loss_pm, dup_pm, long_pm, delay_max;
} sim_net;

typedef struct world {
    const sim_options *opt;
    sim_result *res;
    uint64_t rng, now;
    int n;
    uint64_t ids[SIM_MAX_NODES];
    plexus_election_config cfg; /* shared settings; id, rand_ctx, restored set per node */
    sim_node node[SIM_MAX_NODES];
    bool link[SIM_MAX_NODES][SIM_MAX_NODES]; /* link[a][b]: a's messages reach b */
    sim_net net;
    bool chaos; /* crash/pause faults allowed */
    sim_event *heap;
    size_t heap_len, heap_cap;
    sim_ghost ghost;
    bool membership; /* this seed runs join/leave (half of the seeds) */
} world;

uint64_t sim_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t node_rand(void *ctx)
{
    return sim_rand(ctx);
}

static uint64_t rnd(world *w, uint64_t n)
{
    return n ? sim_rand(&w->rng) % n : 0;
}

static bool chance(world *w, uint32_t per_mille)
{
    return rnd(w, 1000) < per_mille;
}

static void trace(world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(world *w, const char *fmt, ...)
{
    if (!w->opt->trace) return;
    printf("t=%6llu.%02u ", (unsigned long long)(w->now / UNITS), (unsigned)(w->now % UNITS));
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static int index_of(const world *w, uint64_t id)
{
    for (int i = 0; i < w->n; i++)
        if (w->ids[i] == id) return i;
    return -1;
}

/* ---------------------------------------------------------------- event heap */

static bool before(const sim_event *a, const sim_event *b)
{
    return a->at != b->at ? a->at < b->at : a->order < b->order;
}

static void heap_push(world *w, sim_event ev)
{
    if (w->heap_len == w->heap_cap) {
        w->heap_cap = w->heap_cap ? 2 * w->heap_cap : 1024;
        w->heap = realloc(w->heap, w->heap_cap * sizeof *w->heap);
        if (!w->heap) abort();
    }
    ev.order = sim_rand(&w->rng);
    size_t i = w->heap_len++;
    while (i > 0 && before(&ev, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = ev;
}

static sim_event heap_pop(world *w)
{
    sim_event top = w->heap[0], last = w->heap[--w->heap_len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->heap_len) break;
        if (c + 1 < w->heap_len && before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->heap_len) w->heap[i] = last;
    return top;
}

/* ---------------------------------------------------------------- network */

static uint64_t delay(world *w)
{
    uint64_t d = 1 + rnd(w, w->net.delay_max);
    if (chance(w, w->net.long_pm)) d += rnd(w, 3ull * w->cfg.election_max_ticks * UNITS);
    return d;
}

/* Loss, duplication and delay of the current network; nothing crosses a cut link. */
static void transmit(world *w, sim_event ev)
{
    if (!w->link[ev.from][ev.to] || chance(w, w->net.loss_pm)) return;
    int copies = 1 + chance(w, w->net.dup_pm) + chance(w, w->net.dup_pm / 4);
    for (int c = 0; c < copies; c++) {
        ev.at = w->now + delay(w);
        heap_push(w, ev);
    }
}

/* `alive' or `config' from node `from' to node `to', with from's membership. */
static void send_ctl(world *w, int from, int to, enum ev_kind kind)
{
    sim_event ev = {.kind = (uint8_t)kind, .from = (uint8_t)from, .to = (uint8_t)to};
    ev.cfg = w->node[from].cfg;
    transmit(w, ev);
}

static void net_send(world *w, int from, const plexus_election_msg *m)
{
    sim_event ev = {.kind = EV_MSG, .from = (uint8_t)from};
    ev.cfg = w->node[from].cfg;
    size_t len = 0;
    if (plexus_election_msg_encode(m, ev.bytes, sizeof ev.bytes, &len) != PLEXUS_OK) {
        sim_ghost_fail(&w->ghost, "node %d emitted an unencodable message", from);
        return;
    }
    int to = index_of(w, m->to);
    if (to < 0 || m->cluster_id != w->cfg.cluster_id) {
        sim_ghost_fail(&w->ghost, "node %d sent to an unknown id or cluster", from);
        return;
    }
    ev.to = (uint8_t)to;
    ev.len = (uint8_t)len;
    transmit(w, ev);
}

/* The BEAM reports nodedown to `at` about `about` a little later (0.5-5 ms measured,
 * under a tick). */
static void report_down(world *w, int at, int about)
{
    if (!w->node[at].up || at == about) return;
    sim_event ev = {.kind = EV_PEER_DOWN, .from = (uint8_t)about, .to = (uint8_t)at};
    ev.at = w->now + 1 + rnd(w, UNITS);
    heap_push(w, ev);
}

static bool connected(const world *w, int a, int b)
{
    return w->link[a][b] && w->link[b][a];
}

/* Apply new links; every connection that breaks is reported on both ends. */
static void set_links(world *w, bool next[SIM_MAX_NODES][SIM_MAX_NODES])
{
    for (int a = 0; a < w->n; a++)
        for (int b = a + 1; b < w->n; b++)
            if (connected(w, a, b) && !(next[a][b] && next[b][a])) {
                report_down(w, a, b);
                report_down(w, b, a);
            }
    memcpy(w->link, next, sizeof w->link);
}

/* ---------------------------------------------------------------- the driver */

static void crash(world *w, int i, uint64_t down_ticks);

/* What plexus_leader does after every input: check (simulator only), persist the hard
 * state, send the messages, advance. A node that just voted is sometimes crashed right
 * here, before or after its messages leave, the moments a lost vote would matter. */
static void flush(world *w, int i)
{
    sim_node *nd = &w->node[i];
    if (!plexus_election_has_ready(&nd->e)) {
        sim_ghost_check(&w->ghost, i, &nd->e, NULL, w->now);
        return;
    }
    plexus_election_ready rd;
    plexus_election_get_ready(&nd->e, &rd);
    sim_ghost_check(&w->ghost, i, &nd->e, &rd, w->now);
    if (rd.hard_state_changed) {
        nd->disk = rd.hard_state;
        nd->has_disk = true;
    }
    bool voted = rd.hard_state_changed && rd.hard_state.voted_for != 0;
    bool crash_now = w->chaos && voted && chance(w, 40);
    bool send = !crash_now || chance(w, 500);
    for (size_t k = 0; send && k < rd.n_msgs; k++)
        net_send(w, i, &rd.msgs[k]);
    if (rd.soft_state_changed) {
        if (rd.role == PLEXUS_ELECTION_CANDIDATE) w->res->elections++;
        trace(w, "node %d: %s term %llu leader %d", i, plexus_election_role_name(rd.role),
              (unsigned long long)rd.hard_state.term, index_of(w, rd.leader));
    }
    plexus_election_advance(&nd->e);
    if (crash_now) crash(w, i, rnd(w, w->cfg.election_max_ticks));
}

/* The same message with another cluster id must be refused and change nothing. */
static void foreign_check(world *w, int i, const plexus_election_msg *m)
{
    plexus_election *e = &w->node[i].e;
    plexus_election_msg f = *m;
    f.cluster_id ^= 1 + rnd(w, UINT64_MAX - 1);
    plexus_election_hard_state hs = plexus_election_get_hard_state(e);
    plexus_election_role role = plexus_election_get_role(e);
    uint64_t leader = plexus_election_leader(e);
    bool had_ready = plexus_election_has_ready(e);
    int rc = plexus_election_step(e, &f);
    plexus_election_hard_state after = plexus_election_get_hard_state(e);
    if (rc != PLEXUS_ECLUSTER || after.term != hs.term || after.voted_for != hs.voted_for ||
        plexus_election_get_role(e) != role || plexus_election_leader(e) != leader ||
        plexus_election_has_ready(e) != had_ready)
        sim_ghost_fail(&w->ghost, "node %d was moved by another cluster's message", i);
}

static void adopt(world *w, int i, sim_config c);
static void restamp(world *w, int i);

/* What plexus_leader does with the version and term riding on a message from `from'
 * (peer_version/4 and on_stranger/3): remember a peer's report, send our membership
 * to a peer behind us, and answer a newer stranger with `alive' so that it sends us
 * its membership. */
static void note_sender(world *w, const sim_event *ev)
{
    sim_node *nd = &w->node[ev->to];
    if (!(nd->cfg.mask & (1u << ev->from))) {
        if (key_less(nd->cfg, ev->cfg)) send_ctl(w, ev->to, ev->from, EV_ALIVE);
        return;
    }
    if (ev->kind == EV_ALIVE) {
        nd->peer_cfg[ev->from] = ev->cfg;
    }
    if (key_less(ev->cfg, nd->cfg)) send_ctl(w, ev->to, ev->from, EV_CONFIG);
}

static bool is_vote_request(const plexus_election_msg *m)
{
    return m->type == PLEXUS_ELECTION_MSG_PRE_VOTE || m->type == PLEXUS_ELECTION_MSG_VOTE;
}

static void deliver(world *w, sim_event ev)
{
    sim_node *nd = &w->node[ev.to];
    if (!nd->up) return;
    if (nd->paused_until > w->now) { /* frozen: the message waits in the socket */
        ev.at = nd->paused_until + rnd(w, UNITS);
        heap_push(w, ev);
        return;
    }
    if (ev.kind == EV_PEER_DOWN) {
        if (!plexus_election_has_peer(&nd->e, w->ids[ev.from])) return; /* not a voter */
        trace(w, "node %d: nodedown %d", ev.to, ev.from);
        if (plexus_election_peer_down(&nd->e, w->ids[ev.from]) != PLEXUS_OK)
            sim_ghost_fail(&w->ghost, "peer_down refused a known peer");
        flush(w, ev.to);
        return;
    }
    if (ev.kind == EV_CONFIG) {
        adopt(w, ev.to, ev.cfg);
        return;
    }
    note_sender(w, &ev);
    if (ev.kind == EV_ALIVE) return;
    plexus_election_msg m;
    if (chance(w, 2)) { /* a cut-off frame: the decoder must refuse it */
        if (plexus_election_msg_decode(ev.bytes, rnd(w, ev.len), &m) == PLEXUS_OK)
            sim_ghost_fail(&w->ghost, "decoder accepted a truncated message");
        return;
    }
    if (plexus_election_msg_decode(ev.bytes, ev.len, &m) != PLEXUS_OK) {
        sim_ghost_fail(&w->ghost, "decoder refused a message the encoder wrote");
        return;
    }
    if (chance(w, 5)) foreign_check(w, ev.to, &m);
    trace(w, "  %d -> %d %s%s term %llu v%llu", ev.from, ev.to,
          plexus_election_msg_type_name(m.type), m.reject ? " (refused)" : "",
          (unsigned long long)m.term, (unsigned long long)ev.cfg.ver);
    /* Rule 4 (erl/plexus_leader_policy.erl): no vote for a candidate behind on membership. */
    if (is_vote_request(&m) && key_less(ev.cfg, nd->cfg)) return;
    int rc = plexus_election_step(&nd->e, &m);
    if (rc == PLEXUS_ENOTFOUND && !(nd->cfg.mask & (1u << ev.from))) rc = PLEXUS_OK;
    if (rc != PLEXUS_OK)
        sim_ghost_fail(&w->ghost, "node %d: step(%s, term %llu) returned %s (t=%llu)", ev.to,
                       plexus_election_msg_type_name(m.type), (unsigned long long)m.term,
                       plexus_errname(rc), (unsigned long long)w->now);
    flush(w, ev.to);
}

/* ---------------------------------------------------------------- nodes */

/* (Re)starts node i's machine with membership nd->cfg and the given hard state. */
static bool init_machine(world *w, int i, const plexus_election_hard_state *restored)
{
    sim_node *nd = &w->node[i];
    uint64_t peers[SIM_MAX_NODES];
    size_t n = 0;
    for (int j = 0; j < w->n; j++)
        if (nd->cfg.mask & (1u << j)) peers[n++] = w->ids[j];
    plexus_election_config c = w->cfg;
    c.id = w->ids[i];
    c.peers = peers;
    c.n_peers = n;
    c.rand_ctx = &nd->rng;
    c.restored = restored;
    if (plexus_election_init(&nd->e, &c) != PLEXUS_OK) {
        sim_ghost_fail(&w->ghost, "init refused node %d", i);
        return false;
    }
    return true;
}

static void start_node(world *w, int i)
{
    sim_node *nd = &w->node[i];
    plexus_election_hard_state restored = nd->disk;
    if (w->opt->bug == SIM_BUG_FORGET_VOTE) restored.voted_for = 0; /* the planted bug */
    /* The saved membership wins over bootstrap, which only seeds a node with none. The
     * planted bug of issue 8 restarts with the bootstrap voters, taken for current. */
    nd->cfg = nd->has_disk_cfg ? nd->disk_cfg : nd->boot;
    if (w->opt->bug == SIM_BUG_FORGET_MEMBERSHIP) nd->cfg.mask = nd->boot.mask;
    nd->disk_cfg = nd->cfg;
    nd->has_disk_cfg = true;
    memset(nd->peer_cfg, 0, sizeof nd->peer_cfg);
    nd->alive_elapsed = 0;
    /* nothing persisted yet: sit out */
    if (!init_machine(w, i, nd->has_disk ? &restored : NULL)) return;
    nd->up = true;
    nd->paused_until = 0;
    nd->next_tick = w->now + 1 + rnd(w, nd->period);
    flush(w, i); /* checks that the restored term did not go back */
}

static void crash(world *w, int i, uint64_t down_ticks)
{
    sim_node *nd = &w->node[i];
    if (!nd->up) return;
    nd->up = false;
    nd->restart_at = w->now + down_ticks * UNITS + rnd(w, UNITS);
    w->res->crashes++;
    trace(w, "node %d: crash, restart in %llu ticks", i, (unsigned long long)down_ticks);
    for (int j = 0; j < w->n; j++)
        if (connected(w, i, j)) report_down(w, j, i);
}

static void tell_peers(world *w, int i, enum ev_kind kind)
{
    for (int j = 0; j < w->n; j++)
        if (j != i && (w->node[i].cfg.mask & (1u << j))) send_ctl(w, i, j, kind);
}

static void tick_node(world *w, int i)
{
    sim_node *nd = &w->node[i];
    if (!nd->up || nd->next_tick > w->now) return;
    nd->next_tick += nd->period;
    if (nd->paused_until > w->now) return; /* a frozen VM's timers do not run */
    plexus_election_tick(&nd->e);
    flush(w, i);
    if (w->membership) restamp(w, i);
    if (w->membership && ++nd->alive_elapsed >= w->cfg.heartbeat_ticks) {
        nd->alive_elapsed = 0;
        tell_peers(w, i, EV_ALIVE);
    }
}

/* ---------------------------------------------------------------- membership */

/* Node i uses membership c, saved first. Same term: peers are added and removed on
 * the running machine. c made in a later term: the machine restarts from the saved
 * {c.cterm, no vote} (rule 2 of erl/plexus_leader_policy.erl). */
static void install(world *w, int i, sim_config c)
{
    sim_node *nd = &w->node[i];
    plexus_election *e = &nd->e;
    nd->disk_cfg = c;
    nd->has_disk_cfg = true;
    sim_config old = nd->cfg;
    nd->cfg = c;
    trace(w, "node %d: membership v%llu (term %llu) %02x", i, (unsigned long long)c.ver,
          (unsigned long long)c.cterm, c.mask);
    if (c.cterm > plexus_election_term(e)) {
        nd->disk = (plexus_election_hard_state){c.cterm, 0};
        nd->has_disk = true;
        if (init_machine(w, i, &nd->disk)) flush(w, i);
        return;
    }
    for (int j = 0; j < w->n; j++) {
        uint8_t bit = (uint8_t)(1u << j);
        if (j == i || !((old.mask ^ c.mask) & bit)) continue;
        int rc = c.mask & bit ? plexus_election_add_peer(e, w->ids[j])
                              : plexus_election_remove_peer(e, w->ids[j]);
        if (rc != PLEXUS_OK) sim_ghost_fail(&w->ghost, "node %d: membership change refused", i);
        flush(w, i);
    }
}

/* Rule 2: a newer membership naming this node is adopted and reported at once; one of
 * a later term not while the node sits out (install would restart its machine from
 * that term and end the sit-out; as sits_out_for/2 in erl/plexus_leader_policy.erl). */
static void adopt(world *w, int i, sim_config c)
{
    sim_node *nd = &w->node[i];
    if (!key_less(nd->cfg, c) || !(c.mask & (1u << i))) return;
    if (plexus_election_sit_out_left(&nd->e) > 0 && c.cterm > plexus_election_term(&nd->e)) return;
    install(w, i, c);
    tell_peers(w, i, EV_ALIVE);
}

/* Rule 1, in node i's view: it leads, its membership was made in its term, a majority
 * of its voters reported that membership, and none reported a newer one. */
static bool committed(const world *w, int i)
{
    const sim_node *nd = &w->node[i];
    if (plexus_election_get_role(&nd->e) != PLEXUS_ELECTION_LEADER ||
        nd->cfg.cterm != plexus_election_term(&nd->e))
        return false;
    int voters = 0, have = 0;
    for (int j = 0; j < w->n; j++) {
        if (!(nd->cfg.mask & (1u << j))) continue;
        voters++;
        if (j == i) {
            have++;
            continue;
        }
        if (key_less(nd->cfg, nd->peer_cfg[j])) return false;
        have += key_eq(nd->peer_cfg[j], nd->cfg);
    }
    return have >= voters / 2 + 1;
}

/* Makes membership `mask' the next one here, in this leader's term, and sends it to
 * the old and the new voters. */
static void make_config(world *w, int i, uint8_t mask)
{
    sim_node *nd = &w->node[i];
    sim_config c = {.ver = nd->cfg.ver + 1, .cterm = plexus_election_term(&nd->e), .mask = mask};
    sim_config old = nd->cfg;
    install(w, i, c);
    for (int k = 0; k < w->n; k++)
        if (k != i && ((old.mask | c.mask) & (1u << k))) send_ctl(w, i, k, EV_CONFIG);
}

/* A new leader first re-issues its membership in its own term (rule 4: Raft's "commit
 * an entry of your term before a change"). */
static void restamp(world *w, int i)
{
    sim_node *nd = &w->node[i];
    if (plexus_election_get_role(&nd->e) == PLEXUS_ELECTION_LEADER &&
        nd->cfg.cterm < plexus_election_term(&nd->e))
        make_config(w, i, nd->cfg.mask);
}

static void stop_for_good(world *w, int i)
{
    sim_node *nd = &w->node[i];
    if (nd->up) crash(w, i, 0);
    nd->restart_at = UINT64_MAX;
}

/* The operator calls join/2 or leave/2 on a random running node. The change is made
 * when rule 1 allows it (at the leader). A joined node that never ran starts with `bootstrap' =
 * the new voters (as README asks); a removed node is sometimes stopped, sometimes
 * left running on its old membership. */
static void change_membership(world *w)
{
    int i = (int)rnd(w, (uint64_t)w->n);
    sim_node *nd = &w->node[i];
    if (!nd->up || nd->paused_until > w->now || !(nd->cfg.mask & (1u << i))) return;
    if (!committed(w, i)) return;
    int j = (int)rnd(w, (uint64_t)w->n);
    if (j == i) return;
    uint8_t bit = (uint8_t)(1u << j);
    trace(w, "node %d: %s %d", i, nd->cfg.mask & bit ? "leave" : "join", j);
    w->res->membership_changes++;
    make_config(w, i, (uint8_t)(nd->cfg.mask ^ bit));
    sim_config c = nd->cfg;
    sim_node *nj = &w->node[j];
    if (c.mask & bit) {
        if (!nj->up && nj->restart_at == UINT64_MAX) {
            if (!nj->has_disk_cfg) nj->boot = (sim_config){0, 0, c.mask};
            start_node(w, j);
        }
    } else if (chance(w, 500)) {
        stop_for_good(w, j);
    }
}

/* ---------------------------------------------------------------- faults */

static void pick_subset(world *w, bool *in, int k)
{
    int idx[SIM_MAX_NODES];
    for (int i = 0; i < w->n; i++) {
        idx[i] = i;
        in[i] = false;
    }
    for (int i = w->n - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)rnd(w, (uint64_t)i + 1), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    for (int i = 0; i < k; i++)
        in[idx[i]] = true;
}

/* Shapes: full mesh, two halves, one node isolated, a bridge node that sees both sides
 * (which cannot see each other), a ring (each node sees its two neighbours), random
 * links, and asymmetric (one-way) cuts. */
static void partition(world *w)
{
    bool next[SIM_MAX_NODES][SIM_MAX_NODES], side[SIM_MAX_NODES];
    int n = w->n, shape = (int)rnd(w, 7), bridge = (int)rnd(w, (uint64_t)n);
    static const char *names[] = {"full", "halves", "isolate", "bridge",
                                  "ring", "random", "one-way"};
    pick_subset(w, side, shape == 2 ? 1 : n / 2);
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            bool up = true;
            switch (shape) {
            case 1:
            case 2:
                up = side[a] == side[b];
                break;
            case 3:
                up = a == bridge || b == bridge || side[a] == side[b];
                break;
            case 4:
                up = (a + 1) % n == b || (b + 1) % n == a;
                break;
            case 5: /* symmetric: the lower triangle mirrors the upper one */
                up = a < b ? chance(w, 500) : a == b || next[b][a];
                break;
            case 6:
                up = !chance(w, 250);
                break;
            }
            next[a][b] = up || a == b;
        }
    trace(w, "partition: %s", names[shape]);
    set_links(w, next);
}

static void redraw_network(world *w)
{
    static const uint32_t loss[] = {0, 10, 50, 200, 400}, dup[] = {0, 10, 50, 200};
    static const uint32_t delays[] = {1, 4, UNITS, 3 * UNITS}, longs[] = {0, 0, 10, 50};
    w->net.loss_pm = loss[rnd(w, 5)];
    w->net.dup_pm = dup[rnd(w, 4)];
    w->net.delay_max = delays[rnd(w, 4)];
    w->net.long_pm = longs[rnd(w, 4)];
}

/* One tick's worth of chaos. Rates are per tick. */
static void chaos_step(world *w)
{
    uint32_t tmax = w->cfg.election_max_ticks;
    if (chance(w, 25)) partition(w);
    if (chance(w, 15)) redraw_network(w);
    for (int i = 0; i < w->n; i++) {
        if (w->node[i].up && chance(w, 3)) crash(w, i, rnd(w, 4ull * tmax));
        if (w->node[i].up && chance(w, 2)) {
            w->node[i].paused_until = w->now + (1 + rnd(w, 2ull * tmax)) * UNITS;
            trace(w, "node %d: paused", i);
        }
    }
    if (w->membership && chance(w, 15)) change_membership(w);
    if (chance(w, 5)) { /* a spurious nodedown: the connection flapped */
        int a = (int)rnd(w, (uint64_t)w->n), b = (int)rnd(w, (uint64_t)w->n);
        report_down(w, a, b);
    }
}

static void restart_due(world *w)
{
    for (int i = 0; i < w->n; i++)
        if (!w->node[i].up && w->node[i].restart_at <= w->now) {
            trace(w, "node %d: restart", i);
            start_node(w, i);
        }
}

/* Heal: the clique (a majority, or everyone) is up, unfrozen and fully connected on a
 * mild network; everyone else is cut off. */
/* The newest membership any node has, in use or saved. */
static uint8_t newest_members(const world *w)
{
    sim_config best = {0};
    for (int i = 0; i < w->n; i++) {
        const sim_node *nd = &w->node[i];
        if (nd->up && !key_less(nd->cfg, best)) best = nd->cfg;
        if (nd->has_disk_cfg && !key_less(nd->disk_cfg, best)) best = nd->disk_cfg;
    }
    return best.mask;
}

static void heal(world *w, bool *clique)
{
    /* A majority of everyone or, with join/leave, every voter of the newest membership:
     * a majority of it need not hold a majority of the one before, which the newest
     * may not have reached yet (Raft promises no progress then either). */
    uint8_t members = w->membership ? newest_members(w) : (uint8_t)((1u << w->n) - 1);
    int idx[SIM_MAX_NODES], m = 0;
    for (int i = 0; i < w->n; i++) {
        clique[i] = false;
        if (members & (1u << i)) idx[m++] = i;
    }
    for (int i = m - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)rnd(w, (uint64_t)i + 1), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    int k = w->membership ? m : m / 2 + 1 + (int)rnd(w, (uint64_t)(m - m / 2));
    for (int i = 0; i < k; i++)
        clique[idx[i]] = true;
    bool next[SIM_MAX_NODES][SIM_MAX_NODES];
    for (int a = 0; a < w->n; a++)
        for (int b = 0; b < w->n; b++)
            next[a][b] = a == b || (clique[a] && clique[b]);
    set_links(w, next);
    for (int i = 0; i < w->n; i++) {
        if (!clique[i]) continue;
        if (!w->node[i].up) start_node(w, i);
        w->node[i].paused_until = 0;
    }
    /* Some loss only with PreVote, whose lease keeps a follower that missed a few
     * heartbeats from deposing a live leader; without it any loss can do that. */
    w->net = (sim_net){.loss_pm = w->cfg.pre_vote ? (uint32_t)rnd(w, 3) * 15 : 0,
                       .dup_pm = (uint32_t)rnd(w, 3) * 20,
                       .long_pm = 0,
                       .delay_max = 1 + (uint32_t)rnd(w, UNITS / 2)};
    char shown[SIM_MAX_NODES + 1] = {0};
    for (int i = 0; i < w->n; i++)
        shown[i] = clique[i] ? (char)('0' + i) : '.';
    trace(w, "heal: clique %s", shown);
}

/* The leader in the clique whose term and leadership the whole clique shares, or -1. */
static int stable_leader(const world *w, const bool *clique)
{
    int l = -1;
    for (int i = 0; i < w->n; i++)
        if (clique[i] && w->node[i].up &&
            plexus_election_get_role(&w->node[i].e) == PLEXUS_ELECTION_LEADER)
            l = i;
    if (l < 0) return -1;
    uint64_t term = plexus_election_term(&w->node[l].e);
    for (int i = 0; i < w->n; i++)
        if (clique[i] && (!w->node[i].up || plexus_election_term(&w->node[i].e) != term ||
                          plexus_election_leader(&w->node[i].e) != w->ids[l]))
            return -1;
    return l;
}

/* ---------------------------------------------------------------- the run */

/* Advance one unit: tick due nodes and deliver due events, in a random order. */
static void step_unit(world *w)
{
    bool ticks_first = chance(w, 500);
    if (ticks_first)
        for (int i = 0; i < w->n; i++)
            tick_node(w, i);
    while (w->heap_len && w->heap[0].at <= w->now)
        deliver(w, heap_pop(w));
    if (!ticks_first)
        for (int i = 0; i < w->n; i++)
            tick_node(w, i);
    w->now++;
}

static void setup(world *w, uint64_t seed)
{
    w->rng = seed * 0x2545f4914f6cdd1dULL + 0x1234567;
    w->n = w->opt->nodes ? w->opt->nodes : 3 + 2 * (int)(seed % 3);
    bool small_ids = chance(w, 500);
    for (int i = 0; i < w->n; i++) {
        uint64_t id = small_ids ? (uint64_t)i + 1 : sim_rand(&w->rng);
        while (id == 0 || index_of(w, id) >= 0)
            id = sim_rand(&w->rng);
        w->ids[i] = id;
    }
    uint32_t tmin = 6 + (uint32_t)rnd(w, 9);
    w->cfg =
        (plexus_election_config){.cluster_id = sim_rand(&w->rng),
                                 .peers = w->ids,
                                 .n_peers = (size_t)w->n,
                                 .election_min_ticks = tmin,
                                 .election_max_ticks = 2 * tmin + (uint32_t)rnd(w, tmin / 2 + 1),
                                 .heartbeat_ticks = 1 + (uint32_t)rnd(w, tmin / 3),
                                 .pre_vote = !chance(w, 250),
                                 .check_quorum = !chance(w, 250),
                                 .rand = node_rand};
    w->res->timeout_ticks = w->cfg.election_max_ticks;
    for (int a = 0; a < w->n; a++)
        for (int b = 0; b < w->n; b++)
            w->link[a][b] = true;
    redraw_network(w);
    sim_ghost_init(&w->ghost, w->n, w->ids, w->res->why, sizeof w->res->why);
    bool first_boot_sits_out = chance(w, 500);
    /* Half the seeds run join/leave; with 5 or 7 nodes they bootstrap 3 of them (the
     * shape of issue 8) and the others wait to be joined. */
    w->membership = (seed / 3) % 2 == 1;
    uint8_t boot = (uint8_t)((1u << (w->membership && w->n >= 5 ? 3 : w->n)) - 1);
    for (int i = 0; i < w->n; i++) {
        sim_node *nd = &w->node[i];
        nd->rng = sim_rand(&w->rng);
        nd->period = UNITS - 1 + (uint32_t)rnd(w, 3);
        nd->has_disk = !first_boot_sits_out; /* an empty data dir may pass {0, 0} */
        nd->boot = (sim_config){0, 0, boot};
        if (boot & (1u << i))
            start_node(w, i);
        else
            nd->restart_at = UINT64_MAX;
    }
    trace(w,
          "seed %llu: %d nodes, timeout [%u,%u) heartbeat %u pre_vote %d check_quorum %d "
          "membership changes %d",
          (unsigned long long)seed, w->n, w->cfg.election_min_ticks, w->cfg.election_max_ticks,
          w->cfg.heartbeat_ticks, w->cfg.pre_vote, w->cfg.check_quorum, w->membership);
}

static void run_chaos(world *w)
{
    uint64_t end = w->now + (2 + rnd(w, 19)) * w->cfg.election_max_ticks * UNITS;
    w->chaos = true;
    while (w->now < end && !w->ghost.violated) {
        if (w->now % UNITS == 0) {
            chaos_step(w);
            restart_due(w);
        }
        step_unit(w);
    }
    w->chaos = false;
}

/* Run until the clique agrees on a leader (returned) or the deadline passes (-1). */
static int await_leader(world *w, const bool *clique, uint64_t deadline)
{
    while (!w->ghost.violated && w->now < deadline) {
        if (w->now % UNITS == 0) {
            int l = stable_leader(w, clique);
            if (l >= 0) return l;
            restart_due(w); /* nodes outside the clique may come back too */
        }
        step_unit(w);
    }
    return -1;
}

/* Liveness (issue 3): after a heal with a connected majority, within
 * SIM_LIVENESS_TIMEOUTS election timeouts a leader that the whole clique follows and
 * that then holds: for two more timeouts on the calm network it stays leader and no
 * clique member's term moves (no spurious elections). A leader that falls right after
 * the heal (say, CheckQuorum counting the partitioned time before it) does not count;
 * the wait goes on, against the same deadline. A follower may briefly pre-vote after a
 * late nodedown; PreVote exists so that this disturbs nobody, and it is allowed. */
static bool term_held(const world *w, const bool *clique, int l, uint64_t term)
{
    if (plexus_election_get_role(&w->node[l].e) != PLEXUS_ELECTION_LEADER) return false;
    for (int i = 0; i < w->n; i++)
        if (clique[i] && plexus_election_term(&w->node[i].e) != term) return false;
    return true;
}

static bool holds(world *w, const bool *clique, int l)
{
    uint64_t term = plexus_election_term(&w->node[l].e);
    uint64_t end = w->now + 2ull * w->cfg.election_max_ticks * (UNITS + 1);
    while (!w->ghost.violated && w->now < end) {
        if (w->now % UNITS == 0 && !term_held(w, clique, l, term)) return false;
        step_unit(w);
    }
    return true;
}

static void heal_and_await(world *w)
{
    bool clique[SIM_MAX_NODES];
    heal(w, clique);
    uint64_t start = w->now, tick_max = UNITS + 1; /* the slowest clock */
    uint64_t deadline = start + SIM_LIVENESS_TIMEOUTS * w->cfg.election_max_ticks * tick_max;
    for (;;) {
        int l = await_leader(w, clique, deadline);
        if (w->ghost.violated) return;
        if (l < 0) {
            w->res->liveness = true;
            sim_ghost_fail(&w->ghost,
                           "liveness: no lasting leader %d election timeouts after a heal "
                           "with a connected majority (t=%llu)",
                           SIM_LIVENESS_TIMEOUTS, (unsigned long long)w->now);
            return;
        }
        uint64_t ticks = (w->now - start) / UNITS;
        if (holds(w, clique, l)) {
            if (ticks > w->res->worst_recovery_ticks) w->res->worst_recovery_ticks = ticks;
            return;
        }
    }
}

void sim_run_seed(uint64_t seed, const sim_options *opt, sim_result *res)
{
    memset(res, 0, sizeof *res);
    world *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->opt = opt;
    w->res = res;
    setup(w, seed);
    for (int p = 0; p < PHASES && !w->ghost.violated; p++) {
        run_chaos(w);
        if (!w->ghost.violated) heal_and_await(w);
    }
    res->failed = w->ghost.violated;
    res->leader_changes = w->ghost.leader_changes;
    for (int i = 0; i < w->n; i++)
        if (w->ghost.node[i].last_term > res->max_term) res->max_term = w->ghost.node[i].last_term;
    sim_ghost_free(&w->ghost);
    free(w->heap);
    free(w);
}
