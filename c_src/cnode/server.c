/*
 * The registered process `plexus_cnode`: what Erlang code can ask the C node.
 *
 *   {subscribe, Pid} | {subscribe, Pid, Opts}  ->  Pid ! {plexus_cnode, {subscribed, Self}}
 *       or Pid ! {plexus_cnode, {not_subscribed, Self, too_many_subscribers | badarg}}
 *       (Opts a list of answers | discovery; unknown atoms are ignored)
 *   {unsubscribe, Pid}                         ->  Pid ! {plexus_cnode, {unsubscribed, Self}}
 *   gen_server:call({plexus_cnode, Node}, snapshot)     -> {ok, [Health]}
 *   gen_server:call({plexus_cnode, Node}, {health, N})  -> {ok, Health} | {error, not_found}
 *   gen_server:call({plexus_cnode, Node}, stats)        -> {ok, #{...counters}}
 *       (with gossip => #{...} and registry => #{...} when --gossip / --registry run)
 *   gen_server:call({plexus_cnode, Node}, gossip_peers) -> {ok, [#{node, source,
 *       metadata, incarnation, last_seen_ms}]} | {error, not_enabled}
 *   gen_server:call({plexus_cnode, Node}, registry_view | {registry_view, Max})
 *       -> {ok, [#{peer, addrs, metadata, ttl_ms}]} | {error, not_enabled}
 *   net_adm:ping(Node)  ({is_auth, _} to net_kernel)    -> pong
 * Every call with a usable reply-to gets an answer: {error, badarg} for a known request
 * with a bad argument or a request this node cannot read, {error, unknown_call} else.
 *
 * Subscribers that give the option `discovery` also get the gossip and registry events
 * {plexus_cnode, {Kind, NodeBin, Info}}, Kind gossip_peer_up | gossip_peer_update |
 * gossip_peer_down | beacon_rejected | registry_announce | registry_leave, Info a map
 * with ts and, as they apply, source, reason, metadata, incarnation, ttl_ms,
 * heartbeat_ms, count (out.c has the same fields as JSON).
 *
 * Events reach subscribers as {plexus_cnode, {Kind, NodeBin, Info}} with Kind node_up |
 * node_down | suspect | healthy (and answer, for [answers] subscribers) and Info a map
 * with ts (ms since the epoch) and, as they apply, reason, rtt_us, silent_ms. Node names
 * are binaries: the receiver decides whether to make atoms of them.
 *
 * Subscribers are dropped when they unsubscribe, when the connection to their node
 * goes down, and when they exit. Exits cannot come as monitor signals: erts sends
 * MONITOR_P_EXIT only to peers that announce DFLAG_DIST_MONITOR_NAME, which ei does
 * not, and a link would kill every subscriber that does not trap exits whenever this
 * node restarts. So the node asks instead: every CHECK_INTERVAL_MS it sends the next
 * CHECK_BATCH subscribers (round robin over the table), grouped by node, to that
 * node's rpc server,
 *   {'$gen_call', {Self, Ref}, {call, lists, partition,
 *                               [fun erlang:is_process_alive/1, [Pid]], user}}
 * and drops the pids of the second list of the answer {Living, Dead}. When a round finds
 * dead subscribers, the next starts as soon as its answers are in: a churning table
 * drains at round-trip speed (100,000 short-lived subscribers: none refused at the
 * default bound), an idle one costs CHECK_BATCH pids a second. Only pids
 * of connected nodes are taken (a pid elsewhere could never be told anything), and at
 * most --max-subscribers (default 65,536). The table (core subs.c) is hashed by pid and
 * holds about 40 bytes per subscriber; it shrinks back as they go.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cnode/server.h"
#include "cnode/clock.h"
#include "cnode/config.h"
#include "cnode/counters.h"
#include "cnode/event.h"
#include "cnode/gossip.h"
#include "cnode/log.h"
#include "cnode/msg.h"
#include "cnode/peer.h"
#include "cnode/registry_host.h"
#include "cnode/state.h"
#include "plexus/health.h"
#include "plexus/system_alloc.h"
#include "plexus/subs.h"

#define CHECK_INTERVAL_MS 1000
#define CHECK_BATCH 4096 /* pids per round: about 150 KB asked, a few ms of work */
#define CHECK_NODES 64   /* distinct nodes per round; the rest wait for the next */
#define REF_CHECK 4      /* cn_make_ref kind of a liveness check */

enum { SUB_ANSWERS = 1, SUB_DISCOVERY = 2 };

typedef struct cn_server {
    plexus_subs *subs;
    size_t cursor; /* where the next liveness round starts */
    uint64_t next_check_ms;
    uint32_t round_seq;  /* the last ref made before the current round's checks */
    size_t in_flight;    /* checks of the current round not answered yet */
    uint64_t round_dead; /* subscribers its answers dropped so far */
    peer **slot_peer;    /* fan-out scratch: the peer of each node slot, or UNRESOLVED */
    size_t slot_cap;
    uint64_t refused_full, refused_badarg, dropped_exited, dropped_nodedown, checks, check_errors;
    uint64_t events_dropped; /* event copies not queued to a node that is behind */
} cn_server;

/* A node with this much queued to it gets no more event copies until it catches up
 * (counted in events_dropped): the fan-out to tens of thousands of subscribers on one
 * node (each ping answer, to each `answers' subscriber) filled the 4 MiB write bound
 * in under a second of that node not reading, and the daemon then dropped the
 * connection and reported a healthy node down. Events are what may be lost; calls,
 * pings and notices to the node are not held back. */
#define CN_FANOUT_BACKLOG (1u << 20)

static peer unresolved_mark;
#define UNRESOLVED (&unresolved_mark)

static cn_server *server(cnode *cn)
{
    if (cn->server) return cn->server;
    cn_server *sv = calloc(1, sizeof *sv);
    if (!sv) return NULL;
    uint8_t key[PLEXUS_SUBS_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    size_t max = cn->cfg.max_subscribers ? cn->cfg.max_subscribers : CN_MAX_SUBSCRIBERS_DEFAULT;
    if (plexus_subs_new(plexus_system_alloc(), max, key, &sv->subs) != PLEXUS_OK) {
        free(sv);
        return NULL;
    }
    sodium_memzero(key, sizeof key);
    cn->server = sv;
    return sv;
}

/* A pid as the table keys it: its node and num, serial, creation. */
static void pid_id(const erlang_pid *pid, uint8_t *id)
{
    uint32_t w[3] = {pid->num, pid->serial, pid->creation};
    memcpy(id, w, sizeof w);
}

static void sub_pid(const plexus_sub *s, erlang_pid *pid)
{
    uint32_t w[3];
    memcpy(w, s->id, sizeof w);
    memset(pid, 0, sizeof *pid);
    memcpy(pid->node, s->node, s->node_len);
    pid->node[s->node_len] = 0;
    pid->num = w[0];
    pid->serial = w[1];
    pid->creation = w[2];
}

static peer *pid_peer(cnode *cn, const erlang_pid *pid)
{
    peer *p = cn_peer_find(cn, pid->node, strlen(pid->node));
    return p && p->state == PS_UP ? p : NULL;
}

/* {plexus_cnode, {Tag, SelfNodeBin}} or, with a reason, {..., {Tag, SelfNodeBin, Reason}} */
static void notify(cnode *cn, const erlang_pid *pid, const char *tag, const char *reason,
                   uint64_t now)
{
    peer *p = pid_peer(cn, pid);
    if (!p) return;
    ei_x_buff *x = &cn->x;
    if (cn_packet_send(x, pid) < 0 || ei_x_encode_tuple_header(x, 2) < 0 ||
        ei_x_encode_atom(x, CN_REG_NAME) < 0 || ei_x_encode_tuple_header(x, reason ? 3 : 2) < 0 ||
        ei_x_encode_atom(x, tag) < 0 ||
        ei_x_encode_binary(x, cn->cfg.node, (int)strlen(cn->cfg.node)) < 0 ||
        (reason && ei_x_encode_atom(x, reason) < 0))
        return;
    (void)cn_peer_send(cn, p, x, now);
}

/* One node's health as a map. */
static int encode_health(cnode *cn, ei_x_buff *x, const peer *p, uint64_t now)
{
    plexus_health_stats st;
    int known = p->in_health && plexus_health_get(cn->health, (const uint8_t *)p->name, p->name_len,
                                                  &st) == PLEXUS_OK;
    if (!known) memset(&st, 0, sizeof st);
    const char *status = known ? plexus_health_status_name(st.status) : "connecting";
    uint64_t wall = cn_wall_ms();
    uint64_t since = known && now >= st.since_ms ? wall - (now - st.since_ms) : 0;
    if (ei_x_encode_map_header(x, 11) < 0 || ei_x_encode_atom(x, "node") < 0 ||
        ei_x_encode_binary(x, p->name, (int)p->name_len) < 0 || ei_x_encode_atom(x, "status") < 0 ||
        ei_x_encode_atom(x, status) < 0 || ei_x_encode_atom(x, "connected") < 0 ||
        ei_x_encode_boolean(x, p->state == PS_UP) < 0 || ei_x_encode_atom(x, "since_ms") < 0 ||
        ei_x_encode_ulonglong(x, since) < 0 || ei_x_encode_atom(x, "answers") < 0 ||
        ei_x_encode_ulonglong(x, st.answers) < 0 || ei_x_encode_atom(x, "samples") < 0 ||
        ei_x_encode_ulong(x, st.samples) < 0 || ei_x_encode_atom(x, "rtt_last_us") < 0 ||
        ei_x_encode_ulong(x, st.rtt_last_us) < 0 || ei_x_encode_atom(x, "rtt_avg_us") < 0 ||
        ei_x_encode_ulong(x, st.rtt_avg_us) < 0 || ei_x_encode_atom(x, "rtt_p50_us") < 0 ||
        ei_x_encode_ulong(x, st.rtt_p50_us) < 0 || ei_x_encode_atom(x, "rtt_p99_us") < 0 ||
        ei_x_encode_ulong(x, st.rtt_p99_us) < 0 || ei_x_encode_atom(x, "rtt_max_us") < 0 ||
        ei_x_encode_ulong(x, st.rtt_max_us) < 0)
        return -1;
    return 0;
}

/* #{Key => Value} pairs of unsigned counters. */
static int encode_counters(ei_x_buff *x, const char *const *keys, const uint64_t *vals, int n)
{
    if (ei_x_encode_map_header(x, n) < 0) return -1;
    for (int i = 0; i < n; i++)
        if (ei_x_encode_atom(x, keys[i]) < 0 || ei_x_encode_ulonglong(x, vals[i]) < 0) return -1;
    return 0;
}

static int encode_named(ei_x_buff *x, const cn_counters *c)
{
    return encode_counters(x, c->name, c->value, (int)c->n);
}

static int encode_sub_stats(const cnode *cn, ei_x_buff *x)
{
    const cn_server *sv = cn->server;
    static const cn_server zero;
    if (!sv) sv = &zero;
    static const char *const k[] = {"count",          "max",
                                    "nodes",          "bytes",
                                    "refused_full",   "refused_badarg",
                                    "dropped_exited", "dropped_nodedown",
                                    "checks",         "check_errors",
                                    "events_dropped"};
    const uint64_t v[] = {sv->subs ? plexus_subs_count(sv->subs) : 0,
                          sv->subs ? plexus_subs_max(sv->subs) : cn->cfg.max_subscribers,
                          sv->subs ? plexus_subs_nodes(sv->subs) : 0,
                          sv->subs ? plexus_subs_bytes(sv->subs) : 0,
                          sv->refused_full,
                          sv->refused_badarg,
                          sv->dropped_exited,
                          sv->dropped_nodedown,
                          sv->checks,
                          sv->check_errors,
                          sv->events_dropped};
    return encode_counters(x, k, v, (int)(sizeof v / sizeof *v));
}

static int encode_stats(cnode *cn, ei_x_buff *x)
{
    size_t up = 0;
    for (size_t i = 0; i < cn->n_peers; i++)
        up += cn->peers[i]->state == PS_UP;
    cn_stats st;
    cn_stats_get(cn, &st);
    if (ei_x_encode_map_header(x, 12 + st.gossip + st.registry) < 0 ||
        ei_x_encode_atom(x, "io") < 0 || encode_named(x, &st.io) < 0 ||
        ei_x_encode_atom(x, "node") < 0 ||
        ei_x_encode_binary(x, cn->cfg.node, (int)strlen(cn->cfg.node)) < 0 ||
        ei_x_encode_atom(x, "peers") < 0 || ei_x_encode_ulong(x, cn->n_peers) < 0 ||
        ei_x_encode_atom(x, "connected") < 0 || ei_x_encode_ulong(x, up) < 0 ||
        ei_x_encode_atom(x, "subscribers") < 0 ||
        ei_x_encode_ulong(x, cn->server ? plexus_subs_count(cn->server->subs) : 0) < 0 ||
        ei_x_encode_atom(x, "subscriber_table") < 0 || encode_sub_stats(cn, x) < 0 ||
        ei_x_encode_atom(x, "oversize") < 0 || ei_x_encode_ulonglong(x, cn->oversize) < 0 ||
        ei_x_encode_atom(x, "packets") < 0 || ei_x_encode_ulonglong(x, cn->packets) < 0 ||
        ei_x_encode_atom(x, "malformed") < 0 || ei_x_encode_ulonglong(x, cn->malformed) < 0 ||
        ei_x_encode_atom(x, "ignored") < 0 || ei_x_encode_ulonglong(x, cn->ignored) < 0 ||
        ei_x_encode_atom(x, "events") < 0 || ei_x_encode_ulonglong(x, cn->events) < 0 ||
        ei_x_encode_atom(x, "buffer_bytes") < 0 ||
        ei_x_encode_ulonglong(x, cn_peer_buffer_bytes(cn)) < 0)
        return -1;
    if (st.gossip &&
        (ei_x_encode_atom(x, "gossip") < 0 || encode_named(x, &st.gossip_counters) < 0))
        return -1;
    if (st.registry &&
        (ei_x_encode_atom(x, "registry") < 0 || encode_named(x, &st.registry_counters) < 0))
        return -1;
    return 0;
}

/* {Tag, Reply} to the caller. */
static void reply(cnode *cn, const cn_msg *m, uint64_t now)
{
    peer *p = pid_peer(cn, &m->pid);
    if (!p) return;
    ei_x_buff *x = &cn->x;
    if (cn_packet_send(x, &m->pid) < 0 || ei_x_encode_tuple_header(x, 2) < 0 ||
        ei_x_append_buf(x, m->tag, m->tag_len) < 0)
        return;
    int rc = -1;
    switch (m->call) {
    case CN_CALL_SNAPSHOT:
        if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "ok") < 0) return;
        if (cn->n_peers && ei_x_encode_list_header(x, (long)cn->n_peers) < 0) return;
        rc = 0;
        for (size_t i = 0; i < cn->n_peers && !rc; i++)
            rc = encode_health(cn, x, cn->peers[i], now);
        if (!rc) rc = ei_x_encode_empty_list(x);
        break;
    case CN_CALL_HEALTH: {
        peer *q = cn_peer_find(cn, m->node, m->node_len);
        if (!q) {
            rc = ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "error") < 0 ||
                         ei_x_encode_atom(x, "not_found") < 0
                     ? -1
                     : 0;
        } else {
            rc = ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "ok") < 0
                     ? -1
                     : encode_health(cn, x, q, now);
        }
        break;
    }
    case CN_CALL_IS_AUTH: /* net_adm:ping('plexus_cnode@...') answers pong */
        rc = ei_x_encode_atom(x, "yes");
        break;
    case CN_CALL_STATS:
        rc = ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "ok") < 0
                 ? -1
                 : encode_stats(cn, x);
        break;
    case CN_CALL_GOSSIP_PEERS:
    case CN_CALL_REGISTRY_VIEW: {
        int on = m->call == CN_CALL_GOSSIP_PEERS ? cn->gossip != NULL : cn->registry != NULL;
        if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, on ? "ok" : "error") < 0)
            return;
        if (!on)
            rc = ei_x_encode_atom(x, "not_enabled");
        else if (m->call == CN_CALL_GOSSIP_PEERS)
            rc = cn_gossip_encode_peers(cn, x, now);
        else
            rc = cn_registry_encode_view(cn, x, m->max ? m->max : CN_VIEW_MAX_DEFAULT);
        break;
    }
    default:
        rc = ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, "error") < 0 ||
                     ei_x_encode_atom(x, m->call == CN_CALL_BADARG ? "badarg" : "unknown_call") < 0
                 ? -1
                 : 0;
    }
    if (rc < 0) return;
    (void)cn_peer_send(cn, p, x, now);
}

static void subscribe(cnode *cn, const cn_msg *m, uint64_t now)
{
    cn_server *sv = server(cn);
    /* The router takes only pids of the node that sent the message, and that node is
     * connected: this guards the table against a change of that rule. */
    if (!pid_peer(cn, &m->pid)) return;
    if (!sv) {
        notify(cn, &m->pid, "not_subscribed", "out_of_memory", now);
        return;
    }
    if (m->bad_opts) {
        sv->refused_badarg++;
        notify(cn, &m->pid, "not_subscribed", "badarg", now);
        return;
    }
    uint8_t id[PLEXUS_SUBS_ID_BYTES];
    pid_id(&m->pid, id);
    uint32_t flags = (m->answers ? SUB_ANSWERS : 0) | (m->discovery ? SUB_DISCOVERY : 0);
    int added;
    int rc = plexus_subs_put(sv->subs, (const uint8_t *)m->pid.node, strlen(m->pid.node), id, flags,
                             &added);
    if (rc == PLEXUS_EFULL) {
        if (sv->refused_full++ == 0)
            cn_log("subscriber table full (%zu, --max-subscribers): refusing more",
                   plexus_subs_max(sv->subs));
        notify(cn, &m->pid, "not_subscribed", "too_many_subscribers", now);
        return;
    }
    if (rc != PLEXUS_OK) {
        notify(cn, &m->pid, "not_subscribed", rc == PLEXUS_ENOMEM ? "out_of_memory" : "badarg",
               now);
        return;
    }
    notify(cn, &m->pid, "subscribed", NULL, now);
}

/* The largest call tag answered: the reply echoes it, and a reply over the write
 * queue's bound dropped the caller's connection (a 7 MB tag). Real tags are a few
 * dozen bytes (gen_server's alias and reference). */
#define CN_TAG_MAX 4096

void cn_server_handle(cnode *cn, peer *from, const cn_msg *m, uint64_t now)
{
    /* Replies, notices and subscriptions go to pids on the node that sent the message:
     * a pid of another node as the reply-to let any peer aim a reply (or a table of
     * subscriptions) at that node, and with a large tag make the daemon drop it as
     * "not reading" and report it down. */
    if ((m->kind == CN_MSG_SUBSCRIBE || m->kind == CN_MSG_UNSUBSCRIBE || m->kind == CN_MSG_CALL) &&
        (!from || strcmp(m->pid.node, from->name) != 0 ||
         (m->kind == CN_MSG_CALL && m->tag_len > CN_TAG_MAX))) {
        cn->ignored++;
        return;
    }
    switch (m->kind) {
    case CN_MSG_SUBSCRIBE:
        subscribe(cn, m, now);
        break;
    case CN_MSG_UNSUBSCRIBE:
        if (cn->server) {
            uint8_t id[PLEXUS_SUBS_ID_BYTES];
            pid_id(&m->pid, id);
            (void)plexus_subs_remove(cn->server->subs, (const uint8_t *)m->pid.node,
                                     strlen(m->pid.node), id);
        }
        notify(cn, &m->pid, "unsubscribed", NULL, now);
        break;
    case CN_MSG_CALL:
        reply(cn, m, now);
        break;
    default:
        cn->ignored++;
    }
}

static int encode_event(cnode *cn, ei_x_buff *x, const char *kind, const char *node,
                        size_t node_len, const plexus_health_event *ev, uint32_t rtt_us)
{
    int n = 1;
    if (ev && ev->kind == PLEXUS_HEALTH_EV_NODE_DOWN) n++;
    if (ev && (ev->kind == PLEXUS_HEALTH_EV_SUSPECT || ev->kind == PLEXUS_HEALTH_EV_NODE_DOWN)) n++;
    if (!ev || ev->rtt_us) n++;
    if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, CN_REG_NAME) < 0 ||
        ei_x_encode_tuple_header(x, 3) < 0 || ei_x_encode_atom(x, kind) < 0 ||
        ei_x_encode_binary(x, node, (int)node_len) < 0 || ei_x_encode_map_header(x, n) < 0 ||
        ei_x_encode_atom(x, "ts") < 0 || ei_x_encode_ulonglong(x, cn_wall_ms()) < 0)
        return -1;
    if (ev && ev->kind == PLEXUS_HEALTH_EV_NODE_DOWN &&
        (ei_x_encode_atom(x, "reason") < 0 ||
         ei_x_encode_atom(x, plexus_health_reason_name(ev->reason)) < 0))
        return -1;
    if (ev && (ev->kind == PLEXUS_HEALTH_EV_SUSPECT || ev->kind == PLEXUS_HEALTH_EV_NODE_DOWN) &&
        (ei_x_encode_atom(x, "silent_ms") < 0 || ei_x_encode_ulonglong(x, ev->silent_ms) < 0))
        return -1;
    if ((!ev || ev->rtt_us) &&
        (ei_x_encode_atom(x, "rtt_us") < 0 || ei_x_encode_ulong(x, ev ? ev->rtt_us : rtt_us) < 0))
        return -1;
    (void)cn;
    return 0;
}

/*
 * Calls send(cn, p, pid, ctx) for every subscriber with all of want_flags whose node is
 * connected; each node's peer is looked up once per fan-out, not once per subscriber.
 */
static void fan_out(cnode *cn, uint32_t want_flags,
                    int (*encode)(cnode *, ei_x_buff *, const void *), const void *ctx)
{
    cn_server *sv = cn->server;
    if (!sv || !plexus_subs_count(sv->subs)) return;
    uint64_t now = cn_now_ms();
    size_t n = plexus_subs_count(sv->subs);
    for (size_t k = 0; k < sv->slot_cap; k++)
        sv->slot_peer[k] = UNRESOLVED;
    for (size_t i = 0; i < n; i++) {
        plexus_sub s;
        if (plexus_subs_get(sv->subs, i, &s) != PLEXUS_OK) break;
        if ((s.flags & want_flags) != want_flags) continue;
        if (s.node_ix >= sv->slot_cap) {
            size_t cap = sv->slot_cap ? sv->slot_cap : 8;
            while (cap <= s.node_ix)
                cap *= 2;
            peer **np = realloc(sv->slot_peer, cap * sizeof *np);
            if (!np) return;
            for (size_t k = sv->slot_cap; k < cap; k++)
                np[k] = UNRESOLVED;
            sv->slot_peer = np;
            sv->slot_cap = cap;
        }
        peer *p = sv->slot_peer[s.node_ix];
        if (p == UNRESOLVED) {
            p = cn_peer_find(cn, (const char *)s.node, s.node_len);
            if (p && p->state != PS_UP) p = NULL;
            sv->slot_peer[s.node_ix] = p;
        }
        if (!p || p->broken) continue;
        if (p->wlen - p->woff > CN_FANOUT_BACKLOG) {
            sv->events_dropped++;
            continue;
        }
        erlang_pid pid;
        sub_pid(&s, &pid);
        ei_x_buff *x = &cn->x;
        if (cn_packet_send(x, &pid) < 0 || encode(cn, x, ctx) < 0) continue;
        (void)cn_peer_send(cn, p, x, now);
    }
}

static int encode_health_event(cnode *cn, ei_x_buff *x, const void *ctx)
{
    const plexus_health_event *ev = ctx;
    return encode_event(cn, x, plexus_health_event_name(ev->kind), (const char *)ev->node,
                        ev->node_len, ev, 0);
}

static void server_health(cnode *cn, const plexus_health_event *ev)
{
    fan_out(cn, 0, encode_health_event, ev);
}

typedef struct answer_ctx {
    const peer *from;
    uint32_t rtt_us;
} answer_ctx;

static int encode_answer(cnode *cn, ei_x_buff *x, const void *ctx)
{
    const answer_ctx *a = ctx;
    return encode_event(cn, x, "answer", a->from->name, a->from->name_len, NULL, a->rtt_us);
}

void cn_server_answer(cnode *cn, const peer *from, uint32_t rtt_us)
{
    answer_ctx a = {from, rtt_us};
    fan_out(cn, SUB_ANSWERS, encode_answer, &a);
}

static int encode_disco(ei_x_buff *x, const cn_disco_event *ev)
{
    int n = 1 + (ev->source != NULL) + (ev->reason != NULL) + (ev->meta != NULL) +
            (ev->incarnation != 0) + 2 * (ev->ttl_ms != 0) + (ev->count != 0);
    if (ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_atom(x, CN_REG_NAME) < 0 ||
        ei_x_encode_tuple_header(x, 3) < 0 || ei_x_encode_atom(x, ev->event) < 0 ||
        ei_x_encode_binary(x, ev->node, (long)ev->node_len) < 0 ||
        ei_x_encode_map_header(x, n) < 0 || ei_x_encode_atom(x, "ts") < 0 ||
        ei_x_encode_ulonglong(x, cn_wall_ms()) < 0)
        return -1;
    if (ev->source && (ei_x_encode_atom(x, "source") < 0 ||
                       ei_x_encode_binary(x, ev->source, (long)strlen(ev->source)) < 0))
        return -1;
    /* reasons are our own words (leaving, timeout, error names): safe as atoms */
    if (ev->reason && (ei_x_encode_atom(x, "reason") < 0 || ei_x_encode_atom(x, ev->reason) < 0))
        return -1;
    if (ev->incarnation &&
        (ei_x_encode_atom(x, "incarnation") < 0 || ei_x_encode_ulonglong(x, ev->incarnation) < 0))
        return -1;
    if (ev->ttl_ms &&
        (ei_x_encode_atom(x, "ttl_ms") < 0 || ei_x_encode_ulong(x, ev->ttl_ms) < 0 ||
         ei_x_encode_atom(x, "heartbeat_ms") < 0 || ei_x_encode_ulong(x, ev->heartbeat_ms) < 0))
        return -1;
    if (ev->count && (ei_x_encode_atom(x, "count") < 0 || ei_x_encode_ulonglong(x, ev->count) < 0))
        return -1;
    if (ev->meta) {
        if (ei_x_encode_atom(x, "metadata") < 0 || ei_x_encode_map_header(x, (long)ev->meta->n) < 0)
            return -1;
        for (size_t i = 0; i < ev->meta->n; i++)
            if (ei_x_encode_binary(x, ev->meta->kv[i].key.p, (long)ev->meta->kv[i].key.n) < 0 ||
                ei_x_encode_binary(x, ev->meta->kv[i].val.p, (long)ev->meta->kv[i].val.n) < 0)
                return -1;
    }
    return 0;
}

static int encode_disco_cb(cnode *cn, ei_x_buff *x, const void *ctx)
{
    (void)cn;
    return encode_disco(x, ctx);
}

static void server_disco(cnode *cn, const cn_disco_event *ev)
{
    fan_out(cn, SUB_DISCOVERY, encode_disco_cb, ev);
}

void cn_server_on_event(cnode *cn, const cn_event *ev)
{
    if (ev->kind == CN_EVENT_HEALTH)
        server_health(cn, ev->health);
    else
        server_disco(cn, ev->disco);
}

void cn_server_peer_gone(cnode *cn, const peer *p)
{
    if (!cn->server) return;
    cn->server->dropped_nodedown +=
        plexus_subs_remove_node(cn->server->subs, (const uint8_t *)p->name, p->name_len);
}

/* ---------------------------------------------------------------- liveness checks */

/* One rpc to p's node: lists:partition(fun erlang:is_process_alive/1, Pids) for the
 * subscribers of node slot ix among entries [from, from + n) (indices modulo count). */
static int send_check(cnode *cn, peer *p, uint32_t ix, size_t from, size_t n, size_t members,
                      uint64_t now)
{
    cn_server *sv = cn->server;
    size_t count = plexus_subs_count(sv->subs);
    erlang_ref ref;
    cn_make_ref(cn, &ref, REF_CHECK, ++cn->ref_seq);
    ei_x_buff *x = &cn->x;
    static const char fun_tag = ERL_EXPORT_EXT;
    if (cn_packet_reg_send(x, ei_self(cn->ec), "rex") < 0 || ei_x_encode_tuple_header(x, 3) < 0 ||
        ei_x_encode_atom(x, "$gen_call") < 0 || ei_x_encode_tuple_header(x, 2) < 0 ||
        ei_x_encode_pid(x, ei_self(cn->ec)) < 0 || ei_x_encode_ref(x, &ref) < 0 ||
        ei_x_encode_tuple_header(x, 5) < 0 || ei_x_encode_atom(x, "call") < 0 ||
        ei_x_encode_atom(x, "lists") < 0 || ei_x_encode_atom(x, "partition") < 0 ||
        ei_x_encode_list_header(x, 2) < 0 || ei_x_append_buf(x, &fun_tag, 1) < 0 ||
        ei_x_encode_atom(x, "erlang") < 0 || ei_x_encode_atom(x, "is_process_alive") < 0 ||
        ei_x_encode_long(x, 1) < 0 || ei_x_encode_list_header(x, (long)members) < 0)
        return -1;
    for (size_t k = 0; k < n; k++) {
        plexus_sub s;
        if (plexus_subs_get(sv->subs, (from + k) % count, &s) != PLEXUS_OK) return -1;
        if (s.node_ix != ix) continue;
        erlang_pid pid;
        sub_pid(&s, &pid);
        if (ei_x_encode_pid(x, &pid) < 0) return -1;
    }
    if (ei_x_encode_empty_list(x) < 0 || ei_x_encode_empty_list(x) < 0 ||
        ei_x_encode_atom(x, "user") < 0)
        return -1;
    sv->checks++;
    return cn_peer_send(cn, p, x, now);
}

/* Sends the checks of the next window of the table (one rpc per node in it). */
static void check_round(cnode *cn, uint64_t now)
{
    cn_server *sv = cn->server;
    size_t count = plexus_subs_count(sv->subs);
    sv->round_seq = cn->ref_seq; /* answers to refs after this one are this round's */
    sv->in_flight = 0;
    sv->round_dead = 0;
    if (!count) return;
    size_t from = sv->cursor % count;
    size_t n = count < CHECK_BATCH ? count : CHECK_BATCH;
    /* the distinct nodes of the window and their members in it; the window ends
     * early when a node past CHECK_NODES shows up */
    uint32_t nodes[CHECK_NODES];
    size_t members[CHECK_NODES];
    size_t n_nodes = 0, k;
    for (k = 0; k < n; k++) {
        plexus_sub s;
        if (plexus_subs_get(sv->subs, (from + k) % count, &s) != PLEXUS_OK) break;
        size_t j;
        for (j = 0; j < n_nodes && nodes[j] != s.node_ix; j++) {
        }
        if (j == n_nodes) {
            if (n_nodes == CHECK_NODES) break;
            nodes[n_nodes] = s.node_ix;
            members[n_nodes++] = 0;
        }
        members[j]++;
    }
    n = k;
    for (size_t j = 0; j < n_nodes; j++) {
        plexus_sub s;
        /* the node's name: from any member in the window */
        for (k = 0; k < n; k++)
            if (plexus_subs_get(sv->subs, (from + k) % count, &s) == PLEXUS_OK &&
                s.node_ix == nodes[j])
                break;
        peer *p = cn_peer_find(cn, (const char *)s.node, s.node_len);
        if (p && p->state == PS_UP && !p->broken &&
            send_check(cn, p, nodes[j], from, n, members[j], now) == 0)
            sv->in_flight++;
    }
    sv->cursor = (from + n) % count;
}

void cn_server_tick(cnode *cn, uint64_t now, uint64_t *next)
{
    cn_server *sv = cn->server;
    if (!sv || !plexus_subs_count(sv->subs)) return;
    if (now >= sv->next_check_ms) {
        sv->next_check_ms = now + CHECK_INTERVAL_MS;
        check_round(cn, now);
    }
    if (sv->next_check_ms < *next) *next = sv->next_check_ms;
}

typedef struct dead_ctx {
    cnode *cn;
    const peer *from;
} dead_ctx;

static void drop_dead(void *ctx, const erlang_pid *pid)
{
    dead_ctx *d = ctx;
    cn_server *sv = d->cn->server;
    /* a node speaks for its own processes only */
    if (strlen(pid->node) != d->from->name_len ||
        memcmp(pid->node, d->from->name, d->from->name_len) != 0)
        return;
    uint8_t id[PLEXUS_SUBS_ID_BYTES];
    pid_id(pid, id);
    if (plexus_subs_remove(sv->subs, (const uint8_t *)pid->node, d->from->name_len, id) ==
        PLEXUS_OK)
        sv->dropped_exited++;
}

void cn_server_check_reply(cnode *cn, const peer *p, uint32_t seq, const char *term, int len,
                           uint64_t now)
{
    cn_server *sv = cn->server;
    if (!sv) return;
    dead_ctx d = {cn, p};
    uint64_t dropped = sv->dropped_exited;
    if (cn_msg_partition_pids(term, len, drop_dead, &d) != 0) {
        if (sv->check_errors++ == 0)
            cn_log("%s: the subscriber liveness check failed (no rpc server?)", p->name);
    }
    if (seq <= sv->round_seq || !sv->in_flight) return; /* an earlier round's */
    sv->round_dead += sv->dropped_exited - dropped;
    /* subscribers are dying: the next window at once instead of next interval, so a
     * churning table drains at round-trip speed, not CHECK_BATCH a second */
    if (--sv->in_flight == 0 && sv->round_dead) check_round(cn, now);
}

void cn_server_free(cnode *cn)
{
    cn_server *sv = cn->server;
    if (!sv) return;
    plexus_subs_free(sv->subs);
    free(sv->slot_peer);
    free(sv);
    cn->server = NULL;
}
