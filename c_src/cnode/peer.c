/*
 * Peers: one entry per known node, its connection and its pings.
 *
 * Transport only: decoded packets go up through cn->packet_sink (router.c decides what
 * they mean). Connections are framed here, not by ei_receive/ei_send: reads and writes are
 * non-blocking and buffered per peer, so a peer that stops reading (SIGSTOP) or sends
 * half a packet costs memory up to a bound, never time. A packet is a 4-byte big-endian
 * length and a payload; length 0 is a tick, answered with a tick (as ei does).
 *
 * Pings are what net_adm:ping sends: {'$gen_call', {Self, Ref}, {is_auth, OwnNode}} to
 * net_kernel; net_kernel answers {Ref, yes}. The reference carries the ping's sequence
 * number so the RTT is matched to the ping it answers (CN_PING_SLOTS in flight).
 *
 * Reconnects back off exponentially from 200 ms to --max-backoff-ms with up to 25%
 * jitter, so a killed node's restart is found quickly and a dead one costs little.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cnode/peer.h"
#include "cnode/backoff.h"
#include "cnode/clock.h"
#include "cnode/epmd.h"
#include "cnode/event.h"
#include "cnode/exit.h"
#include "cnode/log.h"
#include "cnode/msg.h"
#include "cnode/state.h"
#include "plexus/disco.h"
#include "plexus/health.h"

#define MAX_WBUF (4u << 20) /* a peer this far behind is not reading: drop it */
/* A buffer larger than this is given back once what it holds fits in half of it: one
 * legal 8 MB message must not keep its 16 MiB read buffer (or a burst its 4 MiB write
 * queue) for as long as the connection lives (measured before: about 8 MB of RSS per
 * connection that ever sent one). */
#define KEEP_BUF (64u << 10)
#define REF_MAGIC 0x504c0000u

static void ping(cnode *cn, peer *p, uint64_t now);
static void close_peer(cnode *cn, peer *p, plexus_health_reason reason, uint64_t now);

/* The peer's fd in the loop's epoll set (loop.c makes epfd; the peer owns its fd). */
static int watch(cnode *cn, peer *p, int add)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | (p->epoll_out ? EPOLLOUT : 0);
    ev.data.ptr = p;
    return epoll_ctl(cn->epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, p->fd, &ev);
}

static void unwatch(cnode *cn, peer *p)
{
    if (p->fd >= 0) (void)epoll_ctl(cn->epfd, EPOLL_CTL_DEL, p->fd, NULL);
}

/* ---------------------------------------------------------------- table */

peer *cn_peer_find(cnode *cn, const char *name, size_t len)
{
    for (size_t i = 0; i < cn->n_peers; i++) {
        peer *p = cn->peers[i];
        if (p->name_len == len && memcmp(p->name, name, len) == 0) return p;
    }
    return NULL;
}

/* Names of connected-once nodes that were forgotten (a node killed and restarted is
 * usually forgotten meanwhile): they come back as known nodes, in the connectors' fast
 * lane, ahead of names nobody vouches for. A ring: the oldest are overwritten. */
#define KNOWN_RING 256
static char known_ring[KNOWN_RING][CN_NODE_MAX + 1];
static size_t known_next;

static void remember_known(const peer *p)
{
    memcpy(known_ring[known_next], p->name, p->name_len + 1);
    known_next = (known_next + 1) % KNOWN_RING;
}

static int was_known(const char *name, size_t len)
{
    for (size_t i = 0; i < KNOWN_RING; i++)
        if (known_ring[i][len] == 0 && memcmp(known_ring[i], name, len) == 0) return 1;
    return 0;
}

/* bounded: a learned name (epmd, rpc, gossip) past --max-peers is refused and counted;
 * a node that completed a handshake (it has the cookie) is always taken */
static peer *add(cnode *cn, const char *name, size_t len, uint64_t now, int bounded)
{
    peer *p = cn_peer_find(cn, name, len);
    if (p) return p;
    /* one rule for node names, the core's (the same one beacons and the registry use) */
    if (!plexus_disco_valid_name((const uint8_t *)name, len)) return NULL;
    if (len == strlen(cn->cfg.node) && memcmp(name, cn->cfg.node, len) == 0) return NULL;
    if (bounded && cn->n_peers >= cn->cfg.max_peers) {
        cn->peers_refused++;
        return NULL;
    }
    if (cn->n_peers == cn->cap_peers) {
        size_t cap = cn->cap_peers ? cn->cap_peers * 2 : 32;
        peer **np = realloc(cn->peers, cap * sizeof *np);
        if (!np) return NULL;
        cn->peers = np;
        cn->cap_peers = cap;
    }
    p = calloc(1, sizeof *p);
    if (!p) return NULL;
    memcpy(p->name, name, len);
    p->name[len] = 0;
    p->name_len = len;
    p->fd = -1;
    p->state = PS_IDLE;
    p->next_attempt_ms = now;
    p->seen_ms = now;
    p->known = was_known(name, len);
    cn->peers[cn->n_peers++] = p;
    cn_debug("learned %s", p->name);
    return p;
}

peer *cn_peer_add(cnode *cn, const char *name, size_t len, uint64_t now)
{
    return add(cn, name, len, now, 1);
}

static void free_bufs(peer *p)
{
    free(p->rbuf);
    free(p->wbuf);
    p->rbuf = p->wbuf = NULL;
    p->rlen = p->rcap = p->wlen = p->woff = p->wcap = 0;
    p->skip = 0;
}

void cn_peer_remove(cnode *cn, peer *p)
{
    if (p->state == PS_UP) {
        unwatch(cn, p);
        ei_close_connection(p->fd);
    }
    if (p->in_health &&
        plexus_health_remove(cn->health, (const uint8_t *)p->name, p->name_len) != PLEXUS_OK)
        cn_debug("%s was not in the detector", p->name);
    for (size_t i = 0; i < cn->n_peers; i++) {
        if (cn->peers[i] == p) {
            cn->peers[i] = cn->peers[--cn->n_peers];
            break;
        }
    }
    if (p->known) remember_known(p);
    cn_debug("forgot %s", p->name);
    free_bufs(p);
    free(p);
}

void cn_peer_free_all(cnode *cn)
{
    for (size_t i = 0; i < cn->n_peers; i++) {
        peer *p = cn->peers[i];
        if (p->state == PS_UP) {
            unwatch(cn, p);
            ei_close_connection(p->fd);
        }
        free_bufs(p);
        free(p);
    }
    free(cn->peers);
    cn->peers = NULL;
    cn->n_peers = cn->cap_peers = 0;
}

/* ---------------------------------------------------------------- events */

void cn_health_emit(void *ctx, const plexus_health_event *ev)
{
    cnode *cn = ctx;
    cn->events++;
    cn_event_emit(cn, &(cn_event){.kind = CN_EVENT_HEALTH, .health = ev});
}

static void seed_result(cnode *cn, peer *p, int ok, int err)
{
    if (!p->seed || p->reported) return;
    p->reported = 1;
    cn->seeds_reported++;
    if (ok) cn->seed_ok = 1;
    if (err == CN_ERR_HANDSHAKE) cn->seed_handshake_failed = 1;
    if (cn->cfg.wait_for_seeds || cn->seed_ok || cn->seeds_reported < cn->cfg.n_seeds) return;
    fprintf(stderr, "plexus_cnode: no seed node could be reached; giving up "
                    "(--wait-for-seeds keeps trying)\n");
    cn->exit_code = cn->seed_handshake_failed ? CN_EXIT_HANDSHAKE : CN_EXIT_SEEDS;
    cn->stop = 1;
}

/* ---------------------------------------------------------------- refs */

void cn_make_ref(cnode *cn, erlang_ref *ref, unsigned kind, uint32_t seq)
{
    memset(ref, 0, sizeof *ref);
    snprintf(ref->node, sizeof ref->node, "%s", cn->ec->thisnodename);
    /* two words of the daemon's secret: a peer cannot make a reference that passes for
     * one of ours (a forged rpc answer listed 9,990 names as vouched for) */
    ref->len = 5;
    ref->n[0] = seq & 0x3ffff;
    ref->n[1] = REF_MAGIC | (kind & 0xffff);
    ref->n[2] = seq >> 18;
    ref->n[3] = cn->ref_secret[0];
    ref->n[4] = cn->ref_secret[1];
    ref->creation = cn->ec->creation;
}

int cn_ref_is_ours(const cnode *cn, const erlang_ref *ref, unsigned *kind, uint32_t *seq)
{
    if (ref->len != 5 || strcmp(ref->node, cn->ec->thisnodename) != 0) return 0;
    if ((ref->n[1] & 0xffff0000u) != REF_MAGIC || ref->n[3] != cn->ref_secret[0] ||
        ref->n[4] != cn->ref_secret[1])
        return 0;
    *kind = ref->n[1] & 0xffff;
    *seq = (ref->n[0] & 0x3ffff) | ref->n[2] << 18;
    return 1;
}

/* ---------------------------------------------------------------- connections */

void cn_peer_connected(cnode *cn, const char *node, int fd, uint64_t now)
{
    size_t len = strlen(node);
    peer *p = add(cn, node, len, now, 0);
    if (!p) {
        cn_debug("dropping connection from unusable node name '%s'", node);
        ei_close_connection(fd);
        return;
    }
    if (p->state == PS_UP) {
        /* A second connection: the node restarted or the old one is dead without us
         * having noticed; the newest connection is the live one. */
        close_peer(cn, p, PLEXUS_HEALTH_R_CLOSED, now);
    }
    int fl = fcntl(fd, F_GETFL);
    int one = 1;
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        ei_close_connection(fd);
        cn_peer_connect_failed(cn, p, CN_ERR_CONNECT, "fcntl failed", now);
        return;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    p->fd = fd;
    p->state = PS_UP;
    p->known = 1;
    p->broken = PLEXUS_HEALTH_R_NONE;
    free_bufs(p);
    p->last_recv_ms = p->last_send_ms = now;
    p->backoff_ms = 0;
    p->last_err = 0;
    p->seen_ms = now;
    memset(p->slot_sent_us, 0, sizeof p->slot_sent_us);
    if (watch(cn, p, 1) != 0) {
        ei_close_connection(fd);
        p->fd = -1;
        p->state = PS_IDLE;
        cn_peer_connect_failed(cn, p, CN_ERR_CONNECT, "epoll failed", now);
        return;
    }
    cn_debug("connected to %s", p->name);
    seed_result(cn, p, 1, 0);
    if (plexus_health_up(cn->health, (const uint8_t *)p->name, p->name_len, now, cn_health_emit,
                         cn) == PLEXUS_OK)
        p->in_health = 1;
    if (p->state == PS_UP) ping(cn, p, now); /* first ping at once: an RTT from the start */
}

static uint64_t jitter(uint32_t b)
{
    return b / 4 ? randombytes_uniform(b / 4) : 0;
}

void cn_peer_connect_failed(cnode *cn, peer *p, int err, const char *msg, uint64_t now)
{
    p->state = PS_IDLE;
    p->backoff_ms = cn_backoff_next(p->backoff_ms, cn->cfg.max_backoff_ms);
    p->next_attempt_ms = now + p->backoff_ms + jitter(p->backoff_ms);
    if (p->seed && err != p->last_err)
        cn_log("seed %s: %s", p->name, msg);
    else
        cn_debug("connect %s: %s (retry in %u ms)", p->name, msg, p->backoff_ms);
    p->last_err = err;
    seed_result(cn, p, 0, err);
}

static void close_peer(cnode *cn, peer *p, plexus_health_reason reason, uint64_t now)
{
    if (p->state != PS_UP) return;
    unwatch(cn, p);
    ei_close_connection(p->fd);
    p->fd = -1;
    p->state = PS_IDLE;
    p->broken = PLEXUS_HEALTH_R_NONE;
    free_bufs(p);
    p->backoff_ms = 0;
    p->next_attempt_ms = now + CN_BACKOFF_FIRST_MS;
    if (cn->peer_gone) cn->peer_gone(cn, p); /* subscribers' monitors (server.c) */
    if (p->in_health && plexus_health_down(cn->health, (const uint8_t *)p->name, p->name_len, now,
                                           reason, cn_health_emit, cn) != PLEXUS_OK)
        cn_debug("%s was not in the detector", p->name);
}

/* ---------------------------------------------------------------- buffers */

/* Shrinks *buf to KEEP_BUF when the len bytes it must keep fit in half of that. A
 * failed shrink keeps the larger buffer: nothing is lost. */
static void trim_buf(unsigned char **buf, size_t *cap, size_t len)
{
    if (*cap <= KEEP_BUF || len > KEEP_BUF / 2) return;
    unsigned char *nb = realloc(*buf, KEEP_BUF);
    if (!nb) return;
    *buf = nb;
    *cap = KEEP_BUF;
}

size_t cn_peer_buffer_bytes(const cnode *cn)
{
    size_t n = 0;
    for (size_t i = 0; i < cn->n_peers; i++)
        n += cn->peers[i]->rcap + cn->peers[i]->wcap;
    return n;
}

/* ---------------------------------------------------------------- output */

/* Writes what is queued without blocking: PLEXUS_HEALTH_R_NONE, or why the connection
 * is unusable. A peer that closed or reset its end (EPIPE, ECONNRESET: e.g. killed with
 * our pings unread) is reported as closed, as the read side would report it; only other
 * failures are connection errors. */
static plexus_health_reason flush(cnode *cn, peer *p)
{
    while (p->woff < p->wlen) {
        ssize_t w = send(p->fd, p->wbuf + p->woff, p->wlen - p->woff, MSG_NOSIGNAL);
        if (w > 0) {
            p->woff += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            return PLEXUS_HEALTH_R_CLOSED;
        } else {
            return PLEXUS_HEALTH_R_ERROR;
        }
    }
    if (p->woff == p->wlen) {
        p->woff = p->wlen = 0;
        trim_buf(&p->wbuf, &p->wcap, 0);
    }
    int want_out = p->wlen > 0;
    if (want_out != p->epoll_out) {
        p->epoll_out = want_out;
        if (watch(cn, p, 0) != 0) return PLEXUS_HEALTH_R_ERROR;
    }
    return PLEXUS_HEALTH_R_NONE;
}

static int queue_bytes(cnode *cn, peer *p, const void *data, size_t n, uint64_t now)
{
    if (p->state != PS_UP || p->broken) return -1;
    if (p->wlen + n > MAX_WBUF) {
        cn_log("%s is not reading (over %u bytes queued): dropping the connection", p->name,
               MAX_WBUF);
        p->broken = PLEXUS_HEALTH_R_ERROR;
        return -1;
    }
    if (p->woff > 0 && p->woff == p->wlen) p->woff = p->wlen = 0;
    if (p->wlen + n > p->wcap) {
        size_t cap = p->wcap ? p->wcap : 1024;
        while (cap < p->wlen + n)
            cap *= 2;
        unsigned char *nb = realloc(p->wbuf, cap);
        if (!nb) {
            p->broken = PLEXUS_HEALTH_R_ERROR;
            return -1;
        }
        p->wbuf = nb;
        p->wcap = cap;
    }
    memcpy(p->wbuf + p->wlen, data, n);
    p->wlen += n;
    p->last_send_ms = now;
    plexus_health_reason r = flush(cn, p);
    if (r != PLEXUS_HEALTH_R_NONE) {
        p->broken = r;
        return -1;
    }
    return 0;
}

/* Sends never close a connection themselves (they run inside event callbacks, in the
 * middle of loops over peers and subscribers): they mark it broken, and the loop
 * closes broken connections here, between events. */
void cn_peer_reap(cnode *cn, uint64_t now)
{
    for (size_t i = 0; i < cn->n_peers; i++) {
        peer *p = cn->peers[i];
        if (p->state == PS_UP && p->broken) close_peer(cn, p, p->broken, now);
    }
}

int cn_peer_send(cnode *cn, peer *p, ei_x_buff *x, uint64_t now)
{
    if (cn_packet_finish(x) != 0) return -1;
    return queue_bytes(cn, p, x->buff, (size_t)x->index, now);
}

static void ping(cnode *cn, peer *p, uint64_t now)
{
    uint32_t seq = ++p->ping_seq;
    unsigned slot = seq % CN_PING_SLOTS;
    erlang_ref ref;
    cn_make_ref(cn, &ref, 1, seq);
    ei_x_buff *x = &cn->x;
    if (cn_packet_reg_send(x, ei_self(cn->ec), "net_kernel") < 0 ||
        ei_x_encode_tuple_header(x, 3) < 0 || ei_x_encode_atom(x, "$gen_call") < 0 ||
        ei_x_encode_tuple_header(x, 2) < 0 || ei_x_encode_pid(x, ei_self(cn->ec)) < 0 ||
        ei_x_encode_ref(x, &ref) < 0 || ei_x_encode_tuple_header(x, 2) < 0 ||
        ei_x_encode_atom(x, "is_auth") < 0 || ei_x_encode_atom(x, cn->cfg.node) < 0)
        return;
    p->slot_seq[slot] = seq;
    p->slot_sent_us[slot] = cn_now_us();
    (void)cn_peer_send(cn, p, x, now);
}

void cn_peer_ping_all(cnode *cn, uint64_t now)
{
    /* close_peer may not remove entries, so indexing stays valid */
    for (size_t i = 0; i < cn->n_peers; i++) {
        peer *p = cn->peers[i];
        if (p->state != PS_UP) continue;
        p->seen_ms = now;
        ping(cn, p, now);
    }
}

void cn_peer_check_ticks(cnode *cn, uint64_t now)
{
    for (size_t i = 0; i < cn->n_peers; i++) {
        peer *p = cn->peers[i];
        if (p->state == PS_UP && now - p->last_recv_ms >= cn->cfg.tick_timeout_ms) {
            cn_log("%s: nothing received for %u ms: closing", p->name, cn->cfg.tick_timeout_ms);
            close_peer(cn, p, PLEXUS_HEALTH_R_TICK_TIMEOUT, now);
        }
    }
}

/* ---------------------------------------------------------------- input */

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Parses every complete packet in rbuf; returns -1 when the peer was closed. An
 * oversized packet is skipped unread (p->skip counts down what is left of it): it is
 * the sender's mistake, not a sign the node is gone, so the connection, the node's
 * health and its subscribers stay. */
static int parse(cnode *cn, peer *p, uint64_t now)
{
    size_t off = 0;
    if (p->skip) {
        size_t n = p->rlen < p->skip ? p->rlen : (size_t)p->skip;
        off = n;
        p->skip -= n;
    }
    while (!p->skip && p->rlen - off >= 4) {
        uint32_t n = be32(p->rbuf + off);
        if (n == 0) { /* tick: answer in kind */
            off += 4;
            static const unsigned char tick[4] = {0, 0, 0, 0};
            if (queue_bytes(cn, p, tick, 4, now) != 0) return -1;
            continue;
        }
        if (n > CN_MAX_PACKET) {
            cn_log("%s sent a packet of %u bytes (limit %u): skipped", p->name, n, CN_MAX_PACKET);
            cn->oversize++;
            off += 4;
            size_t here = p->rlen - off < n ? p->rlen - off : n;
            off += here;
            p->skip = n - here;
            continue;
        }
        if (p->rlen - off - 4 < n) break;
        cn->packet_sink(cn, p, p->rbuf + off + 4, n, now); /* routed above (router.c) */
        if (p->state != PS_UP) return -1;
        off += 4 + (size_t)n;
    }
    if (off) {
        memmove(p->rbuf, p->rbuf + off, p->rlen - off);
        p->rlen -= off;
    }
    return 0;
}

/* What the read buffer must hold for the packet under way: its whole length once its
 * header is in (a buffer grown for it is not shrunk under it), else what has come. */
static size_t pending_bytes(const peer *p)
{
    if (p->rlen >= 4 && !p->skip) {
        size_t need = 4 + (size_t)be32(p->rbuf);
        return need > p->rlen ? need : p->rlen;
    }
    return p->rlen;
}

static int read_some(cnode *cn, peer *p, uint64_t now)
{
    for (int rounds = 0; rounds < 64; rounds++) { /* bounded: let other peers run */
        if (p->rcap - p->rlen < 4096) {
            size_t want = p->rlen + 4096;
            if (p->rlen >= 4 && !p->skip) {
                size_t need = 4 + (size_t)be32(p->rbuf);
                if (need <= CN_MAX_PACKET + 4 && need > want) want = need;
            }
            size_t cap = p->rcap ? p->rcap : 8192;
            while (cap < want)
                cap *= 2;
            unsigned char *nb = realloc(p->rbuf, cap);
            if (!nb) {
                close_peer(cn, p, PLEXUS_HEALTH_R_ERROR, now);
                return -1;
            }
            p->rbuf = nb;
            p->rcap = cap;
        }
        ssize_t r = recv(p->fd, p->rbuf + p->rlen, p->rcap - p->rlen, 0);
        if (r > 0) {
            p->rlen += (size_t)r;
            p->last_recv_ms = now;
            if (parse(cn, p, now) != 0) return -1;
            continue;
        }
        if (r == 0) {
            cn_debug("%s closed the connection", p->name);
            close_peer(cn, p, PLEXUS_HEALTH_R_CLOSED, now);
            return -1;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            trim_buf(&p->rbuf, &p->rcap, pending_bytes(p));
            return 0;
        }
        cn_debug("%s: %s", p->name, strerror(errno));
        close_peer(cn, p, PLEXUS_HEALTH_R_CLOSED, now);
        return -1;
    }
    return 0;
}

void cn_peer_io(cnode *cn, peer *p, uint32_t events, uint64_t now)
{
    if (p->state != PS_UP) return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (read_some(cn, p, now) != 0) return;
    }
    if (events & EPOLLOUT) {
        plexus_health_reason r = flush(cn, p);
        if (r != PLEXUS_HEALTH_R_NONE) close_peer(cn, p, r, now);
    }
}
