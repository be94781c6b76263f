/*
 * The registered process `plexus_cnode`: what Erlang code can ask the C node.
 *
 *   {subscribe, Pid} | {subscribe, Pid, [answers]}  ->  Pid ! {plexus_cnode, {subscribed, Self}}
 *   {unsubscribe, Pid}                              ->  Pid ! {plexus_cnode, {unsubscribed, Self}}
 *   gen_server:call({plexus_cnode, Node}, snapshot)     -> {ok, [Health]}
 *   gen_server:call({plexus_cnode, Node}, {health, N})  -> {ok, Health} | {error, not_found}
 *   gen_server:call({plexus_cnode, Node}, stats)        -> {ok, #{...counters}}
 *       (with gossip => #{...} and registry => #{...} when --gossip / --registry run)
 *   gen_server:call({plexus_cnode, Node}, gossip_peers) -> {ok, [#{node, source,
 *       metadata, incarnation, last_seen_ms}]} | {error, not_enabled}
 *   gen_server:call({plexus_cnode, Node}, registry_view | {registry_view, Max})
 *       -> {ok, [#{peer, addrs, metadata, ttl_ms}]} | {error, not_enabled}
 *   net_adm:ping(Node)  ({is_auth, _} to net_kernel)    -> pong
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
 * A subscriber is monitored (MONITOR_P), so its exit or its node's disconnection
 * removes it.
 */
#include <stdlib.h>
#include <string.h>

#include "cnode/cnode.h"

static peer *pid_peer(cnode *cn, const erlang_pid *pid)
{
    peer *p = cn_peer_find(cn, pid->node, strlen(pid->node));
    return p && p->state == PS_UP ? p : NULL;
}

static int find_sub(cnode *cn, const erlang_pid *pid)
{
    for (size_t i = 0; i < cn->n_subs; i++)
        if (ei_cmp_pids(&cn->subs[i].pid, (erlang_pid *)pid) == 0) return (int)i;
    return -1;
}

static void drop_sub(cnode *cn, size_t i)
{
    cn->subs[i] = cn->subs[--cn->n_subs];
}

/* {plexus_cnode, {Tag, SelfNodeBin}} to pid */
static void notify(cnode *cn, const erlang_pid *pid, const char *tag, uint64_t now)
{
    peer *p = pid_peer(cn, pid);
    if (!p) return;
    ei_x_buff *x = &cn->x;
    if (cn_packet_send(x, pid) < 0 || ei_x_encode_tuple_header(x, 2) < 0 ||
        ei_x_encode_atom(x, CN_REG_NAME) < 0 || ei_x_encode_tuple_header(x, 2) < 0 ||
        ei_x_encode_atom(x, tag) < 0 ||
        ei_x_encode_binary(x, cn->cfg.node, (int)strlen(cn->cfg.node)) < 0)
        return;
    (void)cn_peer_send(cn, p, x, now);
}

static void monitor(cnode *cn, int op, const erlang_pid *pid, const erlang_ref *ref, uint64_t now)
{
    peer *p = pid_peer(cn, pid);
    if (!p) return;
    ei_x_buff *x = &cn->x;
    if (cn_packet_monitor(x, op, ei_self(cn->ec), pid, ref) < 0) return;
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

static int encode_gossip_stats(const cnode *cn, ei_x_buff *x)
{
    cn_gossip_stats s;
    cn_gossip_get_stats(cn, &s);
    static const char *const k[] = {
        "sealed", "accepted", "malformed",   "auth_failed", "replayed",     "table_full", "senders",
        "peers",  "sent",     "send_errors", "received",    "dropped_self", "port"};
    const uint64_t v[] = {s.beacons.sealed,
                          s.beacons.accepted,
                          s.beacons.malformed,
                          s.beacons.auth_failed,
                          s.beacons.replayed,
                          s.beacons.table_full,
                          s.beacons.senders,
                          s.peers,
                          s.sent,
                          s.send_errors,
                          s.received,
                          s.dropped_self,
                          s.port};
    return encode_counters(x, k, v, (int)(sizeof v / sizeof *v));
}

static int encode_registry_stats(const cnode *cn, ei_x_buff *x)
{
    cn_registry_stats s;
    cn_registry_get_stats(cn, &s);
    static const char *const k[] = {"entries",      "announces",      "created",     "refreshed",
                                    "byes",         "evicted",        "queries",     "refused_full",
                                    "refused_auth", "refused_replay", "malformed",   "bytes",
                                    "datagrams",    "replies",        "send_errors", "port"};
    const uint64_t v[] = {s.table.entries,      s.table.announces,
                          s.table.created,      s.table.refreshed,
                          s.table.byes,         s.table.evicted,
                          s.table.queries,      s.table.refused_full,
                          s.table.refused_auth, s.table.refused_replay,
                          s.table.malformed,    s.table.bytes,
                          s.datagrams,          s.replies,
                          s.send_errors,        s.port};
    return encode_counters(x, k, v, (int)(sizeof v / sizeof *v));
}

static int encode_stats(cnode *cn, ei_x_buff *x)
{
    size_t up = 0;
    for (size_t i = 0; i < cn->n_peers; i++)
        up += cn->peers[i]->state == PS_UP;
    int extra = (cn->gossip != NULL) + (cn->registry != NULL);
    cn_io_stats io;
    cn_io_get_stats(cn, &io);
    if (ei_x_encode_map_header(x, 9 + extra) < 0 || ei_x_encode_atom(x, "io") < 0 ||
        encode_counters(x, cn_io_stats_names, io.v, CN_IO_STATS_N) < 0 ||
        ei_x_encode_atom(x, "node") < 0 ||
        ei_x_encode_binary(x, cn->cfg.node, (int)strlen(cn->cfg.node)) < 0 ||
        ei_x_encode_atom(x, "peers") < 0 || ei_x_encode_ulong(x, cn->n_peers) < 0 ||
        ei_x_encode_atom(x, "connected") < 0 || ei_x_encode_ulong(x, up) < 0 ||
        ei_x_encode_atom(x, "subscribers") < 0 || ei_x_encode_ulong(x, cn->n_subs) < 0 ||
        ei_x_encode_atom(x, "packets") < 0 || ei_x_encode_ulonglong(x, cn->packets) < 0 ||
        ei_x_encode_atom(x, "malformed") < 0 || ei_x_encode_ulonglong(x, cn->malformed) < 0 ||
        ei_x_encode_atom(x, "ignored") < 0 || ei_x_encode_ulonglong(x, cn->ignored) < 0 ||
        ei_x_encode_atom(x, "events") < 0 || ei_x_encode_ulonglong(x, cn->events) < 0)
        return -1;
    if (cn->gossip && (ei_x_encode_atom(x, "gossip") < 0 || encode_gossip_stats(cn, x) < 0))
        return -1;
    if (cn->registry && (ei_x_encode_atom(x, "registry") < 0 || encode_registry_stats(cn, x) < 0))
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
                     ei_x_encode_atom(x, "unknown_call") < 0
                 ? -1
                 : 0;
    }
    if (rc < 0) return;
    (void)cn_peer_send(cn, p, x, now);
}

void cn_server_handle(cnode *cn, peer *from, const cn_msg *m, uint64_t now)
{
    (void)from;
    switch (m->kind) {
    case CN_MSG_SUBSCRIBE: {
        int i = find_sub(cn, &m->pid);
        if (i >= 0) {
            cn->subs[i].answers = m->answers;
            cn->subs[i].discovery = m->discovery;
        } else {
            if (cn->n_subs == cn->cap_subs) {
                size_t cap = cn->cap_subs ? cn->cap_subs * 2 : 8;
                subscriber *ns = realloc(cn->subs, cap * sizeof *ns);
                if (!ns) return;
                cn->subs = ns;
                cn->cap_subs = cap;
            }
            subscriber *s = &cn->subs[cn->n_subs++];
            memset(s, 0, sizeof *s);
            s->pid = m->pid;
            s->answers = m->answers;
            s->discovery = m->discovery;
            cn_make_ref(cn, &s->mon, 3, ++cn->ref_seq);
            monitor(cn, CN_OP_MONITOR_P, &s->pid, &s->mon, now);
        }
        notify(cn, &m->pid, "subscribed", now);
        break;
    }
    case CN_MSG_UNSUBSCRIBE: {
        int i = find_sub(cn, &m->pid);
        if (i >= 0) {
            monitor(cn, CN_OP_DEMONITOR_P, &cn->subs[i].pid, &cn->subs[i].mon, now);
            drop_sub(cn, (size_t)i);
        }
        notify(cn, &m->pid, "unsubscribed", now);
        break;
    }
    case CN_MSG_CALL:
        reply(cn, m, now);
        break;
    case CN_MSG_MONITOR_EXIT:
        for (size_t i = cn->n_subs; i-- > 0;)
            if (ei_cmp_refs(&cn->subs[i].mon, (erlang_ref *)&m->ref) == 0) drop_sub(cn, i);
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

void cn_server_event(cnode *cn, const plexus_health_event *ev)
{
    uint64_t now = cn_now_ms();
    for (size_t i = 0; i < cn->n_subs; i++) {
        subscriber *s = &cn->subs[i];
        peer *p = pid_peer(cn, &s->pid);
        if (!p) continue;
        ei_x_buff *x = &cn->x;
        if (cn_packet_send(x, &s->pid) < 0 ||
            encode_event(cn, x, plexus_health_event_name(ev->kind), (const char *)ev->node,
                         ev->node_len, ev, 0) < 0)
            continue;
        (void)cn_peer_send(cn, p, x, now);
    }
}

void cn_server_answer(cnode *cn, const peer *from, uint32_t rtt_us)
{
    uint64_t now = cn_now_ms();
    for (size_t i = 0; i < cn->n_subs; i++) {
        subscriber *s = &cn->subs[i];
        if (!s->answers) continue;
        peer *p = pid_peer(cn, &s->pid);
        if (!p) continue;
        ei_x_buff *x = &cn->x;
        if (cn_packet_send(x, &s->pid) < 0 ||
            encode_event(cn, x, "answer", from->name, from->name_len, NULL, rtt_us) < 0)
            continue;
        (void)cn_peer_send(cn, p, x, now);
    }
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

void cn_server_disco(cnode *cn, const cn_disco_event *ev)
{
    uint64_t now = cn_now_ms();
    for (size_t i = 0; i < cn->n_subs; i++) {
        subscriber *s = &cn->subs[i];
        if (!s->discovery) continue;
        peer *p = pid_peer(cn, &s->pid);
        if (!p) continue;
        ei_x_buff *x = &cn->x;
        if (cn_packet_send(x, &s->pid) < 0 || encode_disco(x, ev) < 0) continue;
        (void)cn_peer_send(cn, p, x, now);
    }
}

void cn_server_peer_gone(cnode *cn, const peer *p)
{
    for (size_t i = cn->n_subs; i-- > 0;)
        if (strcmp(cn->subs[i].pid.node, p->name) == 0) drop_sub(cn, i);
}

void cn_server_free(cnode *cn)
{
    free(cn->subs);
    cn->subs = NULL;
    cn->n_subs = cn->cap_subs = 0;
}
