/*
 * Event output on stdout.
 *
 * --json: one JSON object per line (jansson), for non-BEAM tooling:
 *   {"event":"node_up","node":"a@127.0.0.1","ts":1700000000000}
 *   {"event":"suspect","node":"a@127.0.0.1","ts":...,"silent_ms":5000}
 *   {"event":"healthy","node":"a@127.0.0.1","ts":...,"rtt_us":180}
 *   {"event":"node_down","node":"a@127.0.0.1","ts":...,"reason":"connection_closed"}
 * Every node event also carries rtt_avg_us, rtt_p50_us, rtt_p99_us and samples once the
 * node has answered a ping. The daemon's own lines: "ready" (node, port, and
 * gossip_port / registry_port when those run) once it accepts connections, "stopped"
 * (node, its counters, and "gossip" / "registry" counter objects) on a clean shutdown.
 * Gossip and registry events (cn_disco_event):
 *   {"event":"gossip_peer_up","node":"a@127.0.0.1","ts":...,"source":"127.0.0.1:45892",
 *    "incarnation":1700000000000,"metadata":{"role":"web"}}
 *   gossip_peer_update (same fields), gossip_peer_down (source, reason leaving|timeout),
 *   {"event":"beacon_rejected","node":<this node>,"ts":...,"source":"IP:PORT",
 *    "reason":"auth_failed","count":12}          (at most one a second)
 *   {"event":"registry_announce","node":<peer>,"ts":...,"source":"IP:PORT",
 *    "ttl_ms":30000,"heartbeat_ms":10000}        (new entries only)
 *   {"event":"registry_leave","node":<peer>,"ts":...,"source":"IP:PORT"}
 * Without --json the same facts are written as one plain line each.
 * stdout is flushed after every line so a pipe reader sees events at once.
 */
#include <jansson.h>
#include <string.h>

#include "cnode/cnode.h"

static void emit_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
    }
    json_decref(o);
}

/* Node names are UTF-8 from ei; anything else is replaced rather than dropped. */
static json_t *jstr(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    return j ? j : json_string("(invalid utf-8)");
}

static json_t *base(const char *event, const char *node, size_t node_len)
{
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "event", json_string(event));
    json_object_set_new(o, "node", jstr(node, node_len));
    json_object_set_new(o, "ts", json_integer((json_int_t)cn_wall_ms()));
    return o;
}

void cn_out_event(cnode *cn, const plexus_health_event *ev)
{
    plexus_health_stats st;
    int have =
        plexus_health_get(cn->health, ev->node, ev->node_len, &st) == PLEXUS_OK && st.samples > 0;
    const char *name = plexus_health_event_name(ev->kind);
    if (!cn->cfg.json) {
        printf("%llu %-9s %.*s", (unsigned long long)cn_wall_ms(), name, (int)ev->node_len,
               (const char *)ev->node);
        if (ev->kind == PLEXUS_HEALTH_EV_NODE_DOWN)
            printf(" reason=%s", plexus_health_reason_name(ev->reason));
        if (ev->kind == PLEXUS_HEALTH_EV_SUSPECT || ev->kind == PLEXUS_HEALTH_EV_NODE_DOWN)
            printf(" silent_ms=%llu", (unsigned long long)ev->silent_ms);
        if (ev->rtt_us) printf(" rtt_us=%u", ev->rtt_us);
        if (have) printf(" rtt_avg_us=%u rtt_p99_us=%u", st.rtt_avg_us, st.rtt_p99_us);
        putchar('\n');
        fflush(stdout);
        return;
    }
    json_t *o = base(name, (const char *)ev->node, ev->node_len);
    if (!o) return;
    if (ev->kind == PLEXUS_HEALTH_EV_NODE_DOWN)
        json_object_set_new(o, "reason", json_string(plexus_health_reason_name(ev->reason)));
    if (ev->kind == PLEXUS_HEALTH_EV_SUSPECT || ev->kind == PLEXUS_HEALTH_EV_NODE_DOWN)
        json_object_set_new(o, "silent_ms", json_integer((json_int_t)ev->silent_ms));
    json_object_set_new(o, "from", json_string(plexus_health_status_name(ev->from)));
    json_object_set_new(o, "to", json_string(plexus_health_status_name(ev->to)));
    if (ev->rtt_us) json_object_set_new(o, "rtt_us", json_integer(ev->rtt_us));
    if (have) {
        json_object_set_new(o, "rtt_avg_us", json_integer(st.rtt_avg_us));
        json_object_set_new(o, "rtt_p50_us", json_integer(st.rtt_p50_us));
        json_object_set_new(o, "rtt_p99_us", json_integer(st.rtt_p99_us));
        json_object_set_new(o, "samples", json_integer(st.samples));
    }
    emit_json(o);
}

void cn_out_ready(cnode *cn)
{
    if (!cn->cfg.json) {
        printf("%llu ready     %s port=%d", (unsigned long long)cn_wall_ms(), cn->cfg.node,
               cn->listen_port);
        if (cn->gossip) printf(" gossip_port=%u", (unsigned)cn_gossip_port(cn));
        if (cn->registry) printf(" registry_port=%u", (unsigned)cn_registry_port(cn));
        putchar('\n');
        fflush(stdout);
        return;
    }
    json_t *o = base("ready", cn->cfg.node, strlen(cn->cfg.node));
    if (!o) return;
    json_object_set_new(o, "port", json_integer(cn->listen_port));
    if (cn->gossip) json_object_set_new(o, "gossip_port", json_integer(cn_gossip_port(cn)));
    if (cn->registry) json_object_set_new(o, "registry_port", json_integer(cn_registry_port(cn)));
    emit_json(o);
}

static json_t *jint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

static json_t *gossip_json(const cnode *cn)
{
    cn_gossip_stats s;
    cn_gossip_get_stats(cn, &s);
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "sent", jint(s.sent));
    json_object_set_new(o, "send_errors", jint(s.send_errors));
    json_object_set_new(o, "received", jint(s.received));
    json_object_set_new(o, "accepted", jint(s.beacons.accepted));
    json_object_set_new(o, "auth_failed", jint(s.beacons.auth_failed));
    json_object_set_new(o, "malformed", jint(s.beacons.malformed));
    json_object_set_new(o, "replayed", jint(s.beacons.replayed));
    json_object_set_new(o, "table_full", jint(s.beacons.table_full));
    json_object_set_new(o, "dropped_self", jint(s.dropped_self));
    json_object_set_new(o, "peers", jint(s.peers));
    return o;
}

static json_t *registry_json(const cnode *cn)
{
    cn_registry_stats s;
    cn_registry_get_stats(cn, &s);
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "datagrams", jint(s.datagrams));
    json_object_set_new(o, "replies", jint(s.replies));
    json_object_set_new(o, "send_errors", jint(s.send_errors));
    json_object_set_new(o, "entries", jint(s.table.entries));
    json_object_set_new(o, "announces", jint(s.table.announces));
    json_object_set_new(o, "created", jint(s.table.created));
    json_object_set_new(o, "refreshed", jint(s.table.refreshed));
    json_object_set_new(o, "byes", jint(s.table.byes));
    json_object_set_new(o, "evicted", jint(s.table.evicted));
    json_object_set_new(o, "queries", jint(s.table.queries));
    json_object_set_new(o, "refused_full", jint(s.table.refused_full));
    json_object_set_new(o, "refused_auth", jint(s.table.refused_auth));
    json_object_set_new(o, "refused_replay", jint(s.table.refused_replay));
    json_object_set_new(o, "malformed", jint(s.table.malformed));
    return o;
}

void cn_out_disco(cnode *cn, const cn_disco_event *ev)
{
    if (!cn->cfg.json) {
        printf("%llu %-9s %.*s", (unsigned long long)cn_wall_ms(), ev->event, (int)ev->node_len,
               ev->node);
        if (ev->source) printf(" source=%s", ev->source);
        if (ev->reason) printf(" reason=%s", ev->reason);
        if (ev->ttl_ms) printf(" ttl_ms=%u heartbeat_ms=%u", ev->ttl_ms, ev->heartbeat_ms);
        if (ev->count) printf(" count=%llu", (unsigned long long)ev->count);
        putchar('\n');
        fflush(stdout);
        return;
    }
    json_t *o = base(ev->event, ev->node, ev->node_len);
    if (!o) return;
    if (ev->source) json_object_set_new(o, "source", json_string(ev->source));
    if (ev->reason) json_object_set_new(o, "reason", json_string(ev->reason));
    if (ev->incarnation) json_object_set_new(o, "incarnation", jint(ev->incarnation));
    if (ev->ttl_ms) {
        json_object_set_new(o, "ttl_ms", jint(ev->ttl_ms));
        json_object_set_new(o, "heartbeat_ms", jint(ev->heartbeat_ms));
    }
    if (ev->count) json_object_set_new(o, "count", jint(ev->count));
    if (ev->meta) {
        json_t *m = json_object();
        for (size_t i = 0; m && i < ev->meta->n; i++) {
            /* keys are printable ASCII (disco.h); values may be any bytes */
            char key[PLEXUS_DISCO_KEY_MAX + 1];
            memcpy(key, ev->meta->kv[i].key.p, ev->meta->kv[i].key.n);
            key[ev->meta->kv[i].key.n] = 0;
            json_object_set_new(m, key,
                                jstr((const char *)ev->meta->kv[i].val.p, ev->meta->kv[i].val.n));
        }
        if (m) json_object_set_new(o, "metadata", m);
    }
    emit_json(o);
}

void cn_out_stopped(cnode *cn)
{
    if (!cn->cfg.json) {
        printf("%llu stopped   %s packets=%llu malformed=%llu\n", (unsigned long long)cn_wall_ms(),
               cn->cfg.node, (unsigned long long)cn->packets, (unsigned long long)cn->malformed);
        fflush(stdout);
        return;
    }
    json_t *o = base("stopped", cn->cfg.node, strlen(cn->cfg.node));
    if (!o) return;
    json_object_set_new(o, "packets", json_integer((json_int_t)cn->packets));
    json_object_set_new(o, "malformed", json_integer((json_int_t)cn->malformed));
    json_object_set_new(o, "ignored", json_integer((json_int_t)cn->ignored));
    json_object_set_new(o, "events", json_integer((json_int_t)cn->events));
    if (cn->gossip) {
        json_t *g = gossip_json(cn);
        if (g) json_object_set_new(o, "gossip", g);
    }
    if (cn->registry) {
        json_t *r = registry_json(cn);
        if (r) json_object_set_new(o, "registry", r);
    }
    emit_json(o);
}
