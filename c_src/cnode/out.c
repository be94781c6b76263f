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
 * (node, its counters, and "io", "gossip" / "registry" counter objects, the counters of
 * `stats` read through cnode.stats_provider) on a clean shutdown.
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
 *
 * Output never blocks the loop (a reader that stops reading must not stop pings, calls
 * and events): when stdout is a pipe, a socket or a terminal it is made non-blocking
 * (a terminal through a descriptor of its own, see reopen_nonblocking), each line is
 * written at once when it can be, and the rest waits in a buffer of at most
 * CN_OUT_MAX_BYTES that the loop drains when stdout becomes writable (cn_out_writable).
 * A line that does not fit is dropped whole and counted; once the buffer has drained,
 *   {"event":"output_dropped","node":<this node>,"ts":...,"lines":N}
 * says how many were lost (also `stats` -> io -> output_dropped). A pipe reader sees every
 * line as soon as it is written: nothing sits in stdio buffers.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cnode/out.h"
#include "cnode/clock.h"
#include "cnode/counters.h"
#include "cnode/event.h"
#include "cnode/state.h"
#include "plexus/disco.h"
#include "plexus/health.h"

/* The loop thread's output buffer (one daemon per process). */
static struct {
    char *buf;
    size_t off, len, cap;
    int nonblock;        /* stdout is a pipe or socket in O_NONBLOCK mode */
    uint64_t lines;      /* written or queued */
    uint64_t dropped;    /* lines dropped since start */
    uint64_t unreported; /* dropped lines not yet told in an output_dropped line */
} out;

static void report_dropped(cnode *cn);

/* A terminal (or any other character device) is opened again, non-blocking, in place
 * of stdout: O_NONBLOCK on the inherited descriptor would be set on the open file
 * the shell that started the daemon shares, and would stay after the daemon exits. A
 * new open of /proc/self/fd/1 is an open file of the daemon's own. */
static int reopen_nonblocking(void)
{
    int fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return 0;
    int ok = dup2(fd, STDOUT_FILENO) == STDOUT_FILENO;
    close(fd);
    return ok;
}

void cn_out_start(cnode *cn)
{
    (void)cn;
    struct stat st;
    if (fstat(STDOUT_FILENO, &st) != 0) return;
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
        int fl = fcntl(STDOUT_FILENO, F_GETFL);
        if (fl >= 0 && fcntl(STDOUT_FILENO, F_SETFL, fl | O_NONBLOCK) == 0) out.nonblock = 1;
    } else if (S_ISCHR(st.st_mode)) {
        /* a terminal nobody reads (paused with Ctrl-S, a stalled ssh session) blocked
         * every write, and with it the loop and SIGTERM */
        out.nonblock = reopen_nonblocking();
    }
}

/* Writes what the buffer holds; 0 when empty, 1 when stdout is full, -1 on error (the
 * reader is gone: the rest is dropped and counted). */
static int drain(void)
{
    while (out.off < out.len) {
        ssize_t w = write(STDOUT_FILENO, out.buf + out.off, out.len - out.off);
        if (w > 0) {
            out.off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 1;
        } else {
            out.off = out.len = 0;
            return -1;
        }
    }
    out.off = out.len = 0;
    return 0;
}

/* One line (without its newline): queued whole or dropped whole. */
static void put_line(cnode *cn, const char *s, size_t n)
{
    if (out.len > 0 && out.off == out.len) out.off = out.len = 0;
    if (out.off > 0 && out.len + n + 1 > out.cap) { /* compact before growing */
        memmove(out.buf, out.buf + out.off, out.len - out.off);
        out.len -= out.off;
        out.off = 0;
    }
    if (out.len + n + 1 > CN_OUT_MAX_BYTES) {
        out.dropped++;
        out.unreported++;
        return;
    }
    if (out.len + n + 1 > out.cap) {
        size_t cap = out.cap ? out.cap : 4096;
        while (cap < out.len + n + 1)
            cap *= 2;
        if (cap > CN_OUT_MAX_BYTES) cap = CN_OUT_MAX_BYTES;
        char *nb = realloc(out.buf, cap);
        if (!nb) {
            out.dropped++;
            out.unreported++;
            return;
        }
        out.buf = nb;
        out.cap = cap;
    }
    memcpy(out.buf + out.len, s, n);
    out.buf[out.len + n] = '\n';
    out.len += n + 1;
    out.lines++;
    if (drain() == 0 && out.unreported) report_dropped(cn);
}

static void put_linef(cnode *cn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_linef(cnode *cn, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    put_line(cn, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

int cn_out_pending(const cnode *cn)
{
    (void)cn;
    return out.nonblock && out.off < out.len;
}

void cn_out_writable(cnode *cn)
{
    if (drain() == 0 && out.unreported) report_dropped(cn);
}

void cn_out_finish(cnode *cn, unsigned tmo_ms)
{
    (void)cn;
    uint64_t deadline = cn_now_ms() + tmo_ms;
    while (drain() == 1) {
        uint64_t now = cn_now_ms();
        if (now >= deadline) break;
        struct pollfd p = {STDOUT_FILENO, POLLOUT, 0};
        if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR) break;
    }
    free(out.buf);
    memset(&out, 0, sizeof out);
}

void cn_out_counters(cn_counters *c)
{
    cn_counters_add(c, "output_lines", out.lines);
    cn_counters_add(c, "output_dropped", out.dropped);
    cn_counters_add(c, "output_buffered", out.len - out.off);
}

static void emit_json(cnode *cn, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) {
        put_line(cn, s, strlen(s));
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

static void out_health(cnode *cn, const plexus_health_event *ev)
{
    plexus_health_stats st;
    int have =
        plexus_health_get(cn->health, ev->node, ev->node_len, &st) == PLEXUS_OK && st.samples > 0;
    const char *name = plexus_health_event_name(ev->kind);
    if (!cn->cfg.json) {
        char reason[64] = "", silent[48] = "", rtt[32] = "", avg[64] = "";
        if (ev->kind == PLEXUS_HEALTH_EV_NODE_DOWN)
            snprintf(reason, sizeof reason, " reason=%s", plexus_health_reason_name(ev->reason));
        if (ev->kind == PLEXUS_HEALTH_EV_SUSPECT || ev->kind == PLEXUS_HEALTH_EV_NODE_DOWN)
            snprintf(silent, sizeof silent, " silent_ms=%llu", (unsigned long long)ev->silent_ms);
        if (ev->rtt_us) snprintf(rtt, sizeof rtt, " rtt_us=%u", ev->rtt_us);
        if (have)
            snprintf(avg, sizeof avg, " rtt_avg_us=%u rtt_p99_us=%u", st.rtt_avg_us, st.rtt_p99_us);
        put_linef(cn, "%llu %-9s %.*s%s%s%s%s", (unsigned long long)cn_wall_ms(), name,
                  (int)ev->node_len, (const char *)ev->node, reason, silent, rtt, avg);
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
    emit_json(cn, o);
}

void cn_out_ready(cnode *cn, uint16_t gossip_port, uint16_t registry_port)
{
    if (!cn->cfg.json) {
        char g[32] = "", r[32] = "";
        if (gossip_port) snprintf(g, sizeof g, " gossip_port=%u", (unsigned)gossip_port);
        if (registry_port) snprintf(r, sizeof r, " registry_port=%u", (unsigned)registry_port);
        put_linef(cn, "%llu ready     %s port=%d%s%s", (unsigned long long)cn_wall_ms(),
                  cn->cfg.node, cn->listen_port, g, r);
        return;
    }
    json_t *o = base("ready", cn->cfg.node, strlen(cn->cfg.node));
    if (!o) return;
    json_object_set_new(o, "port", json_integer(cn->listen_port));
    if (gossip_port) json_object_set_new(o, "gossip_port", json_integer(gossip_port));
    if (registry_port) json_object_set_new(o, "registry_port", json_integer(registry_port));
    emit_json(cn, o);
}

static json_t *jint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

/* {"name": value, ...} in the order the owner counts them. */
static json_t *counters_json(const cn_counters *c)
{
    json_t *o = json_object();
    if (!o) return NULL;
    for (size_t i = 0; i < c->n; i++)
        json_object_set_new(o, c->name[i], jint(c->value[i]));
    return o;
}

static void out_disco(cnode *cn, const cn_disco_event *ev)
{
    if (!cn->cfg.json) {
        char src[64] = "", reason[96] = "", ttl[64] = "", count[32] = "";
        if (ev->source) snprintf(src, sizeof src, " source=%s", ev->source);
        if (ev->reason) snprintf(reason, sizeof reason, " reason=%s", ev->reason);
        if (ev->ttl_ms)
            snprintf(ttl, sizeof ttl, " ttl_ms=%u heartbeat_ms=%u", ev->ttl_ms, ev->heartbeat_ms);
        if (ev->count) snprintf(count, sizeof count, " count=%llu", (unsigned long long)ev->count);
        put_linef(cn, "%llu %-9s %.*s%s%s%s%s", (unsigned long long)cn_wall_ms(), ev->event,
                  (int)ev->node_len, ev->node, src, reason, ttl, count);
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
    emit_json(cn, o);
}

/* Says how many lines were lost while stdout was not read (buffer drained now). */
static void report_dropped(cnode *cn)
{
    uint64_t n = out.unreported;
    out.unreported = 0;
    if (!cn->cfg.json) {
        put_linef(cn, "%llu output_dropped %s lines=%llu", (unsigned long long)cn_wall_ms(),
                  cn->cfg.node, (unsigned long long)n);
        return;
    }
    json_t *o = base("output_dropped", cn->cfg.node, strlen(cn->cfg.node));
    if (!o) return;
    json_object_set_new(o, "lines", jint(n));
    emit_json(cn, o);
}

void cn_out_stopped(cnode *cn)
{
    if (!cn->cfg.json) {
        put_linef(cn, "%llu stopped   %s packets=%llu malformed=%llu output_dropped=%llu",
                  (unsigned long long)cn_wall_ms(), cn->cfg.node, (unsigned long long)cn->packets,
                  (unsigned long long)cn->malformed, (unsigned long long)out.dropped);
        return;
    }
    json_t *o = base("stopped", cn->cfg.node, strlen(cn->cfg.node));
    if (!o) return;
    json_object_set_new(o, "packets", json_integer((json_int_t)cn->packets));
    json_object_set_new(o, "malformed", json_integer((json_int_t)cn->malformed));
    json_object_set_new(o, "ignored", json_integer((json_int_t)cn->ignored));
    json_object_set_new(o, "events", json_integer((json_int_t)cn->events));
    cn_stats st;
    cn_stats_get(cn, &st);
    json_t *io = counters_json(&st.io);
    if (io) json_object_set_new(o, "io", io);
    if (st.gossip) {
        json_t *g = counters_json(&st.gossip_counters);
        if (g) json_object_set_new(o, "gossip", g);
    }
    if (st.registry) {
        json_t *r = counters_json(&st.registry_counters);
        if (r) json_object_set_new(o, "registry", r);
    }
    emit_json(cn, o);
}

void cn_out_on_event(cnode *cn, const cn_event *ev)
{
    if (ev->kind == CN_EVENT_HEALTH)
        out_health(cn, ev->health);
    else
        out_disco(cn, ev->disco);
}
