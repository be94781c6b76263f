/*
 * --gossip: the C node sends and hears the sealed beacons of the `gossip' discovery
 * adapter (erl/plexus_discovery_gossip.erl; doc/DESIGN.md §6), through the same core codec
 * (c_src/core/beacon.c), so BEAM nodes and C nodes find each other byte for byte.
 *
 * Sending: every --gossip-interval-ms one beacon {our node name, incarnation = start
 * time in ms since the epoch, sequence + 1, --gossip-meta pairs}, sealed under a fresh
 * random nonce, to the multicast group (or the broadcast address) and every
 * --gossip-target. Sends never block: a full socket buffer drops the beacon (counted).
 * On a clean stop a last beacon carries `plexus.leaving' so peers drop us at once.
 *
 * Receiving: each datagram goes to plexus_beacon_open; only when it authenticates (and
 * is no replay) is its name trusted. Then the name becomes a node the C node watches
 * (cn_peer_add: connect, ping, health events) and a gossip peer, reported as
 * gossip_peer_up / gossip_peer_update (metadata or source changed) / gossip_peer_down
 * (reason `leaving', or `timeout' after --gossip-peer-timeout-ms of silence). Rejected
 * datagrams (forged, altered, wrong key or cluster, replayed, malformed) are counted by
 * the codec and change nothing; at most one beacon_rejected line a second says so.
 * Reads are bounded per wake-up (RECV_PER_WAKE) so a flood cannot starve the
 * distribution connections; the epoll set is level-triggered and comes back for more.
 *
 * Secrets: the shared secret is read into sodium_malloc memory (config.c), the codec
 * derives its keys into a block from plexus_secret_alloc (secret_alloc.h) and the secret is
 * freed (zeroed) at once; plexus_beacon_free wipes the keys. Nothing secret is logged.
 * Memory: the gossip peer table is bounded by --gossip-max-senders and holds only
 * authenticated peers, so an outsider cannot grow it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cnode/gossip.h"
#include "cnode/clock.h"
#include "cnode/config.h"
#include "cnode/counters.h"
#include "cnode/event.h"
#include "cnode/exit.h"
#include "cnode/log.h"
#include "cnode/peer.h"
#include "cnode/secrets.h"
#include "cnode/state.h"
#include "cnode/udp.h"
#include "plexus/beacon.h"
#include "plexus/disco.h"
#include "plexus/system_alloc.h"
#include "plexus/secret_alloc.h"

#define RECV_PER_WAKE 64
#define REJECT_REPORT_MS 1000
#define LEAVING_KEY "plexus.leaving"
#define MAX_TARGETS 64

typedef struct gpeer {
    char name[PLEXUS_DISCO_NAME_MAX + 1];
    size_t name_len;
    char source[CN_UDP_ADDR_STR];
    uint64_t incarnation;
    uint64_t last_ms;
    uint8_t *meta; /* canonical encoding (disco.h), malloc'd */
    size_t meta_len;
} gpeer;

struct cn_gossip {
    plexus_beacon *codec;
    int fd;
    uint16_t port;
    struct sockaddr_in targets[MAX_TARGETS];
    size_t n_targets;
    plexus_disco_meta meta; /* ours; the bytes point into argv */
    uint64_t incarnation, seq, next_send_ms;
    gpeer *peers;
    size_t n_peers, cap_peers;
    uint64_t sent, send_errors, received, dropped_self;
    uint64_t rejected, last_report_ms;
    int reported;
    plexus_buf scratch;                  /* a received beacon's metadata, encoded, to compare */
    uint8_t rbuf[PLEXUS_BEACON_MAX + 1]; /* one more: an oversized datagram shows */
    uint8_t sbuf[PLEXUS_BEACON_MAX];
};

/* ---------------------------------------------------------------- events */

static void emit(cnode *cn, const char *event, const char *node, size_t len, const char *source,
                 const char *reason, const plexus_disco_meta *meta, uint64_t incarnation)
{
    cn_disco_event ev;
    memset(&ev, 0, sizeof ev);
    ev.event = event;
    ev.node = node;
    ev.node_len = len;
    ev.source = source;
    ev.reason = reason;
    ev.meta = meta;
    ev.incarnation = incarnation;
    cn_event_emit(cn, &(cn_event){.kind = CN_EVENT_DISCO, .disco = &ev});
}

/* ---------------------------------------------------------------- start, stop */

/* Our --gossip-meta pairs: pointers into argv, sorted and checked. */
static int build_meta(cnode *cn, plexus_disco_meta *m)
{
    m->n = 0;
    /* room for plexus.leaving in the last beacon */
    if (cn->cfg.n_gossip_meta > PLEXUS_DISCO_META_MAX - 1) {
        cn_log("at most %d --gossip-meta pairs", PLEXUS_DISCO_META_MAX - 1);
        return -1;
    }
    for (size_t i = 0; i < cn->cfg.n_gossip_meta; i++) {
        const char *kv = cn->cfg.gossip_meta[i];
        const char *eq = strchr(kv, '=');
        size_t kl = (size_t)(eq - kv);
        if (kl == strlen(LEAVING_KEY) && memcmp(kv, LEAVING_KEY, kl) == 0) {
            cn_log("--gossip-meta: the key %s is reserved", LEAVING_KEY);
            return -1;
        }
        m->kv[m->n].key = (plexus_bytes){(const uint8_t *)kv, kl};
        m->kv[m->n].val = (plexus_bytes){(const uint8_t *)eq + 1, strlen(eq + 1)};
        m->n++;
    }
    plexus_disco_sort_meta(m);
    if (!plexus_disco_valid_meta(m)) {
        cn_log("--gossip-meta: keys must be 1..%d printable ASCII bytes, all different, "
               "values at most %d bytes",
               PLEXUS_DISCO_KEY_MAX, PLEXUS_DISCO_VAL_MAX);
        return -1;
    }
    return 0;
}

static int add_target(struct cn_gossip *g, const struct sockaddr_in *a)
{
    for (size_t i = 0; i < g->n_targets; i++)
        if (g->targets[i].sin_addr.s_addr == a->sin_addr.s_addr &&
            g->targets[i].sin_port == a->sin_port)
            return 0;
    if (g->n_targets == MAX_TARGETS) {
        cn_log("at most %d gossip targets", MAX_TARGETS);
        return -1;
    }
    g->targets[g->n_targets++] = *a;
    return 0;
}

static int targets(cnode *cn, struct cn_gossip *g)
{
    const cn_config *c = &cn->cfg;
    struct sockaddr_in a;
    if (c->gossip_mode == CN_GOSSIP_MULTICAST) {
        if (cn_udp_addr(c->gossip_group, &a, c->gossip_port) != 0 || add_target(g, &a) != 0)
            return -1;
    } else if (c->gossip_mode == CN_GOSSIP_BROADCAST) {
        if (cn_udp_addr(c->gossip_broadcast, &a, c->gossip_port) != 0 || add_target(g, &a) != 0)
            return -1;
    }
    for (size_t i = 0; i < c->n_gossip_targets; i++) {
        if (cn_udp_host_port(c->gossip_targets[i], &a) != 0) {
            cn_log("--gossip-target '%s' is not HOST:PORT (an IPv4 address or a name that "
                   "resolves)",
                   c->gossip_targets[i]);
            return -1;
        }
        if (add_target(g, &a) != 0) return -1;
    }
    return 0;
}

static int open_socket(cnode *cn, struct cn_gossip *g)
{
    const cn_config *c = &cn->cfg;
    const char *bind_ip = c->gossip_bind                          ? c->gossip_bind
                          : c->gossip_mode == CN_GOSSIP_MULTICAST ? c->gossip_group
                                                                  : "0.0.0.0";
    struct sockaddr_in b;
    if (cn_udp_addr(bind_ip, &b, c->gossip_port) != 0) return -1;
    g->fd = cn_udp_open(&b);
    const char *what = "bind";
    if (g->fd < 0) goto fail;
    if (c->gossip_mode == CN_GOSSIP_MULTICAST) {
        struct ip_mreq mr;
        struct in_addr ifa;
        unsigned char ttl = (unsigned char)c->gossip_ttl, loop = 1;
        memset(&mr, 0, sizeof mr);
        if (inet_pton(AF_INET, c->gossip_group, &mr.imr_multiaddr) != 1 ||
            inet_pton(AF_INET, c->gossip_if, &mr.imr_interface) != 1)
            return -1; /* checked by config.c */
        ifa = mr.imr_interface;
        what = "join the multicast group";
        if (setsockopt(g->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) != 0) goto fail;
        what = "set the multicast options";
        if (setsockopt(g->fd, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof ifa) != 0 ||
            setsockopt(g->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0 ||
            setsockopt(g->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0)
            goto fail;
    } else if (c->gossip_mode == CN_GOSSIP_BROADCAST) {
        int one = 1;
        what = "enable broadcast";
        if (setsockopt(g->fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0) goto fail;
    }
    g->port = cn_udp_port(g->fd);
    return 0;
fail:
    cn_log("gossip: cannot %s on %s:%u: %s", what, bind_ip, (unsigned)c->gossip_port,
           strerror(errno));
    return -2;
}

int cn_gossip_start(cnode *cn)
{
    const cn_config *c = &cn->cfg;
    if (!plexus_disco_valid_name((const uint8_t *)c->node, strlen(c->node))) {
        cn_log("--gossip: the node name '%s' cannot go in a beacon (letters, digits and "
               "_.:-[] around one @)",
               c->node);
        return CN_EXIT_USAGE;
    }
    struct cn_gossip *g = calloc(1, sizeof *g);
    if (!g) return CN_EXIT_FAILURE;
    g->fd = -1;
    plexus_buf_init(&g->scratch, plexus_system_alloc());
    cn->gossip = g;
    if (build_meta(cn, &g->meta) != 0 || targets(cn, g) != 0) return CN_EXIT_USAGE;
    uint8_t *secret;
    size_t secret_len;
    int rc = cn_gossip_secret_load(c, &secret, &secret_len);
    if (rc) return rc;
    plexus_beacon_config bc;
    memset(&bc, 0, sizeof bc);
    bc.secret = secret;
    bc.secret_len = secret_len;
    bc.cluster_id = (const uint8_t *)c->gossip_cluster_id;
    bc.cluster_id_len = strlen(c->gossip_cluster_id);
    bc.epoch = c->gossip_epoch;
    bc.accept_previous_epoch = c->gossip_accept_prev;
    bc.max_senders = c->gossip_max_senders;
    bc.max_skew_ms = c->gossip_max_skew_ms;
    bc.secret_alloc = plexus_secret_alloc();
    rc = plexus_beacon_new(&bc, plexus_system_alloc(), &g->codec);
    sodium_free(secret); /* zeroed: only the derived keys stay, in sodium memory */
    if (rc) {
        cn_log("gossip: cannot make the beacon codec: %s", plexus_strerror(rc));
        return rc == PLEXUS_ENOMEM ? CN_EXIT_FAILURE : CN_EXIT_USAGE;
    }
    rc = open_socket(cn, g);
    if (rc) return rc == -2 ? CN_EXIT_UDP : CN_EXIT_USAGE;
    g->incarnation = cn_wall_ms(); /* a restart goes up */
    g->next_send_ms = 0;           /* the first tick sends */
    return 0;
}

static void send_beacon(cnode *cn, struct cn_gossip *g, const plexus_disco_meta *meta)
{
    plexus_beacon_msg m;
    uint8_t nonce[PLEXUS_BEACON_NONCE];
    size_t len = 0;
    memset(&m, 0, sizeof m);
    m.incarnation = g->incarnation;
    m.sent_ms = cn_wall_ms();
    m.sequence = ++g->seq;
    m.name = (plexus_bytes){(const uint8_t *)cn->cfg.node, strlen(cn->cfg.node)};
    m.meta = *meta;
    randombytes_buf(nonce, sizeof nonce);
    int rc = plexus_beacon_seal(g->codec, &m, nonce, g->sbuf, sizeof g->sbuf, &len);
    if (rc) {
        g->send_errors++;
        cn_debug("gossip: cannot seal a beacon: %s", plexus_strerror(rc));
        return;
    }
    for (size_t i = 0; i < g->n_targets; i++) {
        ssize_t n = sendto(g->fd, g->sbuf, len, MSG_DONTWAIT,
                           (const struct sockaddr *)&g->targets[i], sizeof g->targets[i]);
        if (n != (ssize_t)len) {
            g->send_errors++;
            char a[CN_UDP_ADDR_STR];
            cn_udp_format(&g->targets[i], a);
            cn_debug("gossip: send to %s: %s", a, n < 0 ? strerror(errno) : "short");
        }
    }
    g->sent++;
}

void cn_gossip_stop(cnode *cn)
{
    struct cn_gossip *g = cn->gossip;
    if (!g) return;
    if (g->fd >= 0 && g->codec && g->seq > 0) {
        plexus_disco_meta leaving = g->meta;
        leaving.kv[leaving.n].key =
            (plexus_bytes){(const uint8_t *)LEAVING_KEY, strlen(LEAVING_KEY)};
        leaving.kv[leaving.n].val = (plexus_bytes){(const uint8_t *)"1", 1};
        leaving.n++;
        plexus_disco_sort_meta(&leaving);
        send_beacon(cn, g, &leaving);
    }
    if (g->fd >= 0) close(g->fd);
    plexus_beacon_free(g->codec); /* wipes the keys */
    for (size_t i = 0; i < g->n_peers; i++)
        free(g->peers[i].meta);
    free(g->peers);
    plexus_buf_free(&g->scratch);
    free(g);
    cn->gossip = NULL;
}

int cn_gossip_fd(const cnode *cn)
{
    return cn->gossip ? cn->gossip->fd : -1;
}

uint16_t cn_gossip_port(const cnode *cn)
{
    return cn->gossip ? cn->gossip->port : 0;
}

/* ---------------------------------------------------------------- peers */

static gpeer *find(struct cn_gossip *g, const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < g->n_peers; i++)
        if (g->peers[i].name_len == len && memcmp(g->peers[i].name, name, len) == 0)
            return &g->peers[i];
    return NULL;
}

static void drop(struct cn_gossip *g, gpeer *gp)
{
    free(gp->meta);
    *gp = g->peers[--g->n_peers];
}

/* Stores the encoded metadata in gp; -1 on OOM (gp unchanged). */
static int set_meta(gpeer *gp, const plexus_buf *enc)
{
    uint8_t *m = malloc(enc->len ? enc->len : 1);
    if (!m) return -1;
    memcpy(m, enc->p, enc->len);
    free(gp->meta);
    gp->meta = m;
    gp->meta_len = enc->len;
    return 0;
}

static int has_leaving(const plexus_disco_meta *m)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->kv[i].key.n == strlen(LEAVING_KEY) &&
            memcmp(m->kv[i].key.p, LEAVING_KEY, m->kv[i].key.n) == 0)
            return 1;
    return 0;
}

static void rejected(cnode *cn, struct cn_gossip *g, int rc, const char *src, uint64_t now)
{
    g->rejected++;
    cn_debug("gossip: beacon from %s rejected: %s", src, plexus_strerror(rc));
    if (g->reported && now - g->last_report_ms < REJECT_REPORT_MS) return;
    g->reported = 1;
    g->last_report_ms = now;
    cn_disco_event ev;
    memset(&ev, 0, sizeof ev);
    ev.event = "beacon_rejected";
    ev.node = cn->cfg.node;
    ev.node_len = strlen(cn->cfg.node);
    ev.source = src;
    ev.reason = plexus_errname(rc);
    ev.count = g->rejected;
    cn_event_emit(cn, &(cn_event){.kind = CN_EVENT_DISCO, .disco = &ev});
}

static void heard(cnode *cn, struct cn_gossip *g, size_t n, const struct sockaddr_in *from,
                  uint64_t now)
{
    char src[CN_UDP_ADDR_STR];
    cn_udp_format(from, src);
    plexus_beacon_msg m;
    int rc = plexus_beacon_open(g->codec, g->rbuf, n, now, cn_wall_ms(), &m);
    if (rc) {
        rejected(cn, g, rc, src, now);
        return;
    }
    /* authenticated: m.name may be trusted; m points into the codec's scratch, used
     * before the next codec call */
    const char *name = (const char *)m.name.p;
    size_t len = m.name.n;
    if (len == strlen(cn->cfg.node) && memcmp(name, cn->cfg.node, len) == 0) {
        g->dropped_self++;
        return;
    }
    gpeer *gp = find(g, m.name.p, len);
    if (has_leaving(&m.meta)) {
        if (gp) {
            emit(cn, "gossip_peer_down", name, len, src, "leaving", NULL, m.incarnation);
            drop(g, gp);
        }
        /* not connected and no seed: stop trying it; a connection decides by itself */
        peer *p = cn_peer_find(cn, name, len);
        if (p && p->state == PS_IDLE && !p->seed) cn_peer_remove(cn, p);
        return;
    }
    g->scratch.len = 0;
    if (plexus_disco_put_meta(&g->scratch, &m.meta) != PLEXUS_OK) return; /* OOM */
    if (!gp) {
        if (g->n_peers >= cn->cfg.gossip_max_senders) return;
        if (g->n_peers == g->cap_peers) {
            size_t cap = g->cap_peers ? g->cap_peers * 2 : 16;
            gpeer *np = realloc(g->peers, cap * sizeof *np);
            if (!np) return;
            g->peers = np;
            g->cap_peers = cap;
        }
        gp = &g->peers[g->n_peers];
        memset(gp, 0, sizeof *gp);
        if (set_meta(gp, &g->scratch) != 0) return;
        memcpy(gp->name, name, len);
        gp->name[len] = 0;
        gp->name_len = len;
        memcpy(gp->source, src, sizeof gp->source);
        g->n_peers++;
        emit(cn, "gossip_peer_up", name, len, src, NULL, &m.meta, m.incarnation);
    } else if (gp->meta_len != g->scratch.len ||
               memcmp(gp->meta, g->scratch.p, g->scratch.len) != 0 ||
               strcmp(gp->source, src) != 0) {
        if (set_meta(gp, &g->scratch) != 0) return;
        memcpy(gp->source, src, sizeof gp->source);
        emit(cn, "gossip_peer_update", name, len, src, NULL, &m.meta, m.incarnation);
    }
    gp->incarnation = m.incarnation;
    gp->last_ms = now;
    /* a node to watch: connect, ping, report (and forget once gossip stops naming it) */
    peer *p = cn_peer_add(cn, name, len, now);
    if (p) p->seen_ms = now;
}

void cn_gossip_readable(cnode *cn, uint64_t now)
{
    struct cn_gossip *g = cn->gossip;
    if (!g) return;
    for (int i = 0; i < RECV_PER_WAKE; i++) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n =
            recvfrom(g->fd, g->rbuf, sizeof g->rbuf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                cn_debug("gossip: recvfrom: %s", strerror(errno));
            return;
        }
        g->received++;
        if (fl != sizeof from || from.sin_family != AF_INET) continue;
        heard(cn, g, (size_t)n, &from, now);
    }
}

void cn_gossip_tick(cnode *cn, uint64_t now, uint64_t *next)
{
    struct cn_gossip *g = cn->gossip;
    if (!g) return;
    if (now >= g->next_send_ms) {
        send_beacon(cn, g, &g->meta);
        g->next_send_ms = now + cn->cfg.gossip_interval_ms;
    }
    uint64_t timeout = cn->cfg.gossip_peer_timeout_ms;
    for (size_t i = g->n_peers; i-- > 0;) {
        gpeer *gp = &g->peers[i];
        if (now - gp->last_ms > timeout) {
            emit(cn, "gossip_peer_down", gp->name, gp->name_len, gp->source, "timeout", NULL,
                 gp->incarnation);
            drop(g, gp);
        } else if (gp->last_ms + timeout + 1 < *next) {
            *next = gp->last_ms + timeout + 1;
        }
    }
    if (g->next_send_ms < *next) *next = g->next_send_ms;
}

/* ---------------------------------------------------------------- Erlang terms */

void cn_gossip_counters(const cnode *cn, cn_counters *c)
{
    const struct cn_gossip *g = cn->gossip;
    if (!g) return;
    plexus_beacon_counters b;
    plexus_beacon_get_counters(g->codec, &b);
    cn_counters_add(c, "sealed", b.sealed);
    cn_counters_add(c, "accepted", b.accepted);
    cn_counters_add(c, "malformed", b.malformed);
    cn_counters_add(c, "auth_failed", b.auth_failed);
    cn_counters_add(c, "replayed", b.replayed);
    cn_counters_add(c, "stale", b.stale);
    cn_counters_add(c, "table_full", b.table_full);
    cn_counters_add(c, "senders", b.senders);
    cn_counters_add(c, "peers", g->n_peers);
    cn_counters_add(c, "sent", g->sent);
    cn_counters_add(c, "send_errors", g->send_errors);
    cn_counters_add(c, "received", g->received);
    cn_counters_add(c, "dropped_self", g->dropped_self);
    cn_counters_add(c, "port", g->port);
}

static int encode_meta(ei_x_buff *x, const uint8_t *p, size_t n)
{
    plexus_disco_meta m;
    const uint8_t *pos = p;
    if (plexus_disco_get_meta(&pos, p + n, &m) != PLEXUS_OK) m.n = 0; /* our own encoding */
    if (ei_x_encode_map_header(x, (long)m.n) < 0) return -1;
    for (size_t i = 0; i < m.n; i++)
        if (ei_x_encode_binary(x, m.kv[i].key.p, (long)m.kv[i].key.n) < 0 ||
            ei_x_encode_binary(x, m.kv[i].val.p, (long)m.kv[i].val.n) < 0)
            return -1;
    return 0;
}

int cn_gossip_encode_peers(const cnode *cn, ei_x_buff *x, uint64_t now)
{
    const struct cn_gossip *g = cn->gossip;
    if (g && g->n_peers && ei_x_encode_list_header(x, (long)g->n_peers) < 0) return -1;
    for (size_t i = 0; g && i < g->n_peers; i++) {
        const gpeer *gp = &g->peers[i];
        if (ei_x_encode_map_header(x, 5) < 0 || ei_x_encode_atom(x, "node") < 0 ||
            ei_x_encode_binary(x, gp->name, (long)gp->name_len) < 0 ||
            ei_x_encode_atom(x, "source") < 0 ||
            ei_x_encode_binary(x, gp->source, (long)strlen(gp->source)) < 0 ||
            ei_x_encode_atom(x, "metadata") < 0 || encode_meta(x, gp->meta, gp->meta_len) < 0 ||
            ei_x_encode_atom(x, "incarnation") < 0 ||
            ei_x_encode_ulonglong(x, gp->incarnation) < 0 ||
            ei_x_encode_atom(x, "last_seen_ms") < 0 ||
            ei_x_encode_ulonglong(x, now - gp->last_ms) < 0)
            return -1;
    }
    return ei_x_encode_empty_list(x);
}
