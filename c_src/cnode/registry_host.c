/*
 * --registry [PORT]: the C node hosts the TTL membership registry (doc/DESIGN.md §5,
 * global_registry parity) that the `registry' discovery adapter
 * (erl/plexus_discovery_registry.erl) talks to, on the core table
 * (c_src/core/registry.c) that plexus_registry uses in a BEAM node. Same code, same
 * wire format (include/plexus/registry.h), same defaults (port 45893, TTL 90 s clamped
 * to [30 s, 300 s], 100,000 entries).
 *
 * Each datagram is one plexus_registry_handle step under the wall clock (signed
 * announcements are checked against issued_ms, so the clock must be the clients'
 * kind); the reply, if any, goes back to the sender at once with a non-blocking
 * sendto (a full buffer drops it, counted). Malformed datagrams get no reply and are
 * counted by the core. The sender's address (IPv4 address and port) is passed to the
 * core as the datagram's source: unkeyed entries are bound to it, and a QUERY is
 * answered with a VIEW only once the source has echoed its cookie (no reply is ever
 * longer than its request otherwise). The default bind address is 127.0.0.1
 * (--registry-addr for anything wider). New entries and BYEs are reported (registry_announce,
 * registry_leave) on stdout and to `discovery' subscribers; refreshes only count.
 * Expired entries are evicted lazily by queries and views, and once a second by the
 * loop (cn_registry_tick), so the cost of a mass expiry is spread out instead of
 * landing on one query. Reads are bounded per wake-up (RECV_PER_WAKE).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cnode/registry_host.h"
#include "cnode/clock.h"
#include "cnode/config.h"
#include "cnode/counters.h"
#include "cnode/event.h"
#include "cnode/exit.h"
#include "cnode/log.h"
#include "cnode/state.h"
#include "cnode/udp.h"
#include "plexus/registry.h"
#include "plexus/system_alloc.h"

#define RECV_PER_WAKE 64
#define EVICT_EVERY_MS 1000

struct cn_registry {
    plexus_registry *table;
    int fd;
    uint16_t port;
    uint64_t next_evict_ms;
    uint64_t datagrams, replies, send_errors;
    plexus_buf reply;
    char server_addr[CN_UDP_ADDR_STR]; /* the default Handshake address */
    uint8_t rbuf[PLEXUS_REGISTRY_MSG_MAX + 1];
};

static uint64_t sodium_rand(void *ctx)
{
    (void)ctx;
    uint64_t v;
    randombytes_buf(&v, sizeof v);
    return v;
}

int cn_registry_start(cnode *cn)
{
    const cn_config *c = &cn->cfg;
    struct cn_registry *r = calloc(1, sizeof *r);
    if (!r) return CN_EXIT_FAILURE;
    r->fd = -1;
    plexus_buf_init(&r->reply, plexus_system_alloc());
    cn->registry = r;

    uint8_t(*trusted)[PLEXUS_REGISTRY_PK_BYTES] = NULL;
    if (c->n_registry_trusted) {
        trusted = calloc(c->n_registry_trusted, sizeof *trusted);
        if (!trusted) return CN_EXIT_FAILURE;
        for (size_t i = 0; i < c->n_registry_trusted; i++) {
            size_t bin_len = 0;
            if (sodium_hex2bin(trusted[i], PLEXUS_REGISTRY_PK_BYTES, c->registry_trusted[i],
                               strlen(c->registry_trusted[i]), NULL, &bin_len, NULL) != 0 ||
                bin_len != PLEXUS_REGISTRY_PK_BYTES) {
                free(trusted);
                cn_log("--registry-trusted-key '%s' is not 64 hex digits", c->registry_trusted[i]);
                return CN_EXIT_USAGE;
            }
        }
    }
    plexus_registry_config rc;
    memset(&rc, 0, sizeof rc);
    rc.max_entries = c->registry_max_entries;
    rc.max_bytes = c->registry_max_bytes;
    rc.default_ttl_ms = c->registry_default_ttl_ms;
    rc.min_ttl_ms = c->registry_min_ttl_ms;
    rc.max_ttl_ms = c->registry_max_ttl_ms;
    rc.require_signed = c->registry_require_signed;
    rc.trusted_keys = (const uint8_t(*)[PLEXUS_REGISTRY_PK_BYTES])trusted;
    rc.n_trusted = c->n_registry_trusted;
    randombytes_buf(rc.hash_key, sizeof rc.hash_key); /* SipHash key: floods stay O(1) */
    randombytes_buf(rc.cookie_key, sizeof rc.cookie_key);
    int e = plexus_registry_new(&rc, plexus_system_alloc(), &r->table);
    free(trusted); /* copied by the core */
    sodium_memzero(rc.hash_key, sizeof rc.hash_key);
    sodium_memzero(rc.cookie_key, sizeof rc.cookie_key);
    if (e) {
        cn_log("--registry: %s (TTLs must satisfy min <= default <= max)", plexus_strerror(e));
        return e == PLEXUS_ENOMEM ? CN_EXIT_FAILURE : CN_EXIT_USAGE;
    }

    struct sockaddr_in b;
    if (cn_udp_addr(c->registry_addr, &b, c->registry_port) != 0) return CN_EXIT_USAGE;
    r->fd = cn_udp_open(&b);
    if (r->fd < 0) {
        cn_log("registry: cannot open UDP %s:%u: %s", c->registry_addr, (unsigned)c->registry_port,
               strerror(errno));
        return CN_EXIT_UDP;
    }
    r->port = cn_udp_port(r->fd);
    b.sin_port = htons(r->port);
    cn_udp_format(&b, r->server_addr);

    plexus_registry_addrs sa;
    memset(&sa, 0, sizeof sa);
    if (c->n_registry_server_addrs) {
        for (size_t i = 0; i < c->n_registry_server_addrs; i++)
            sa.addr[sa.n++] = (plexus_bytes){(const uint8_t *)c->registry_server_addrs[i],
                                             strlen(c->registry_server_addrs[i])};
    } else { /* as plexus_registry: "IP:Port" of the socket */
        sa.addr[sa.n++] = (plexus_bytes){(const uint8_t *)r->server_addr, strlen(r->server_addr)};
    }
    e = plexus_registry_set_server_addrs(r->table, &sa);
    if (e) {
        cn_log("--registry-server-addr: %s", plexus_strerror(e));
        return e == PLEXUS_ENOMEM ? CN_EXIT_FAILURE : CN_EXIT_USAGE;
    }
    return 0;
}

void cn_registry_stop(cnode *cn)
{
    struct cn_registry *r = cn->registry;
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    plexus_registry_free(r->table);
    plexus_buf_free(&r->reply);
    free(r);
    cn->registry = NULL;
}

int cn_registry_fd(const cnode *cn)
{
    return cn->registry ? cn->registry->fd : -1;
}

uint16_t cn_registry_port(const cnode *cn)
{
    return cn->registry ? cn->registry->port : 0;
}

void cn_registry_tick(cnode *cn, uint64_t now, uint64_t *next)
{
    struct cn_registry *r = cn->registry;
    if (!r) return;
    if (now >= r->next_evict_ms) {
        size_t n = plexus_registry_evict(r->table, cn_wall_ms());
        if (n) cn_debug("registry: %zu expired entries evicted", n);
        r->next_evict_ms = now + EVICT_EVERY_MS;
    }
    if (r->next_evict_ms < *next) *next = r->next_evict_ms;
}

static void report(cnode *cn, const plexus_registry_result *res, const char *src)
{
    cn_disco_event ev;
    memset(&ev, 0, sizeof ev);
    if (res->outcome == PLEXUS_REGISTRY_ANNOUNCED && res->grant.is_new) {
        ev.event = "registry_announce";
        ev.ttl_ms = res->grant.ttl_ms;
        ev.heartbeat_ms = res->grant.heartbeat_ms;
    } else if (res->outcome == PLEXUS_REGISTRY_LEFT) {
        ev.event = "registry_leave";
    } else {
        return;
    }
    /* res->peer borrows the datagram, still in rbuf */
    ev.node = (const char *)res->peer.p;
    ev.node_len = res->peer.n;
    ev.source = src;
    cn_event_emit(cn, &(cn_event){.kind = CN_EVENT_DISCO, .disco = &ev});
}

void cn_registry_readable(cnode *cn, uint64_t now)
{
    (void)now;
    struct cn_registry *r = cn->registry;
    if (!r) return;
    for (int i = 0; i < RECV_PER_WAKE; i++) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n =
            recvfrom(r->fd, r->rbuf, sizeof r->rbuf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                cn_debug("registry: recvfrom: %s", strerror(errno));
            return;
        }
        r->datagrams++;
        if (fl != sizeof from || from.sin_family != AF_INET) continue;
        plexus_registry_result res;
        uint8_t source[6]; /* address and port, as they are on the wire */
        memcpy(source, &from.sin_addr.s_addr, 4);
        memcpy(source + 4, &from.sin_port, 2);
        int e = plexus_registry_handle(r->table, r->rbuf, (size_t)n, source, sizeof source,
                                       cn_wall_ms(), sodium_rand, NULL, &r->reply, &res);
        if (e) { /* out of memory: no reply, nothing changed */
            cn_debug("registry: %s", plexus_strerror(e));
            continue;
        }
        char src[CN_UDP_ADDR_STR];
        cn_udp_format(&from, src);
        if (res.outcome == PLEXUS_REGISTRY_DROPPED)
            cn_debug("registry: malformed datagram of %zd bytes from %s dropped (%s)", n, src,
                     plexus_errname(res.err));
        if (r->reply.len > 0) {
            ssize_t s = sendto(r->fd, r->reply.p, r->reply.len, MSG_DONTWAIT,
                               (const struct sockaddr *)&from, sizeof from);
            if (s == (ssize_t)r->reply.len) {
                r->replies++;
            } else {
                r->send_errors++;
                cn_debug("registry: reply to %s: %s", src, s < 0 ? strerror(errno) : "short");
            }
        }
        report(cn, &res, src);
    }
}

void cn_registry_counters(const cnode *cn, cn_counters *c)
{
    const struct cn_registry *r = cn->registry;
    if (!r) return;
    plexus_registry_stats t;
    plexus_registry_get_stats(r->table, &t);
    cn_counters_add(c, "entries", t.entries);
    cn_counters_add(c, "announces", t.announces);
    cn_counters_add(c, "created", t.created);
    cn_counters_add(c, "refreshed", t.refreshed);
    cn_counters_add(c, "byes", t.byes);
    cn_counters_add(c, "evicted", t.evicted);
    cn_counters_add(c, "queries", t.queries);
    cn_counters_add(c, "refused_full", t.refused_full);
    cn_counters_add(c, "refused_auth", t.refused_auth);
    cn_counters_add(c, "refused_replay", t.refused_replay);
    cn_counters_add(c, "malformed", t.malformed);
    cn_counters_add(c, "bytes", t.bytes);
    cn_counters_add(c, "datagrams", r->datagrams);
    cn_counters_add(c, "replies", r->replies);
    cn_counters_add(c, "send_errors", r->send_errors);
    cn_counters_add(c, "port", r->port);
}

/* ---------------------------------------------------------------- registry_view */

typedef struct view_acc {
    ei_x_buff *x;
    size_t n;
    int err;
} view_acc;

static int put_entry(void *ctx, const plexus_registry_entry *e)
{
    view_acc *a = ctx;
    ei_x_buff *x = a->x;
    /* a list built cell by cell: [E1 | [E2 | ... []]] is a proper list */
    if (ei_x_encode_list_header(x, 1) < 0 || ei_x_encode_map_header(x, 4) < 0 ||
        ei_x_encode_atom(x, "peer") < 0 || ei_x_encode_binary(x, e->peer.p, (long)e->peer.n) < 0 ||
        ei_x_encode_atom(x, "addrs") < 0)
        goto fail;
    if (e->addrs.n && ei_x_encode_list_header(x, (long)e->addrs.n) < 0) goto fail;
    for (size_t i = 0; i < e->addrs.n; i++)
        if (ei_x_encode_binary(x, e->addrs.addr[i].p, (long)e->addrs.addr[i].n) < 0) goto fail;
    if (ei_x_encode_empty_list(x) < 0 || ei_x_encode_atom(x, "metadata") < 0 ||
        ei_x_encode_map_header(x, (long)e->meta.n) < 0)
        goto fail;
    for (size_t i = 0; i < e->meta.n; i++)
        if (ei_x_encode_binary(x, e->meta.kv[i].key.p, (long)e->meta.kv[i].key.n) < 0 ||
            ei_x_encode_binary(x, e->meta.kv[i].val.p, (long)e->meta.kv[i].val.n) < 0)
            goto fail;
    if (ei_x_encode_atom(x, "ttl_ms") < 0 || ei_x_encode_ulonglong(x, e->remaining_ttl_ms) < 0)
        goto fail;
    a->n++;
    return (size_t)x->index > CN_VIEW_BYTES; /* big enough: stop */
fail:
    a->err = 1;
    return 1;
}

int cn_registry_encode_view(cnode *cn, ei_x_buff *x, size_t max)
{
    struct cn_registry *r = cn->registry;
    uint64_t now = cn_wall_ms();
    view_acc a = {x, 0, 0};
    (void)plexus_registry_evict(r->table, now);
    if (plexus_registry_size(r->table) <= max)
        (void)plexus_registry_view(r->table, now, put_entry, &a);
    else
        (void)plexus_registry_sample(r->table, now, max, sodium_rand, NULL, put_entry, &a);
    if (a.err) return -1;
    return ei_x_encode_empty_list(x);
}
