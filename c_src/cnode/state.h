/*
 * The state of one plexus_cnode daemon (struct cnode): the configuration, the ei node,
 * the loop's file descriptors, the peer table and the shared counters. Types only, no
 * functions: every module of the loop thread takes a `cnode *` and owns the part it
 * names (peer.c the peer table, connector.c the pool, gossip.c its state, ...). Which
 * file does what, and the layers the files form: doc/DESIGN.md §4.
 *
 * Upward needs go through the pointers main.c installs here (event_sink, packet_sink,
 * peer_gone, stats_provider), so no module calls a module above it.
 *
 * Threads: all peer state belongs to the loop thread. Connector threads only run
 * handshakes and epmd queries on their own copy of the ei_cnode and hand back fds and
 * names; they never touch a peer.
 */
#ifndef PLEXUS_CNODE_STATE_H
#define PLEXUS_CNODE_STATE_H

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

#include "cnode/config.h"
#include "cnode/counters.h"
#include "cnode/event.h"
#include "plexus/health.h"

struct peer;
struct cn_pool;
struct cn_server;
struct cn_accept;
struct cn_gossip;
struct cn_registry;

typedef struct cnode {
    cn_config cfg;
    ei_cnode *ec;           /* sodium_malloc'd: it holds the cookie */
    uint32_t ref_secret[2]; /* random, in every reference it makes (cn_make_ref) */
    int listen_fd, listen_port, epmd_fd;
    int epfd, sigfd;
    struct cn_pool *pool;
    struct cn_accept *acceptor;
    struct cn_gossip *gossip;     /* NULL without --gossip */
    struct cn_registry *registry; /* NULL without --registry */
    plexus_health *health;
    struct peer **peers;
    size_t n_peers, cap_peers;
    struct cn_server *server;    /* subscribers; made on the first subscribe */
    cn_event_sink_fn event_sink; /* installed by main.c; every event goes up through it */
    cn_stats_fn stats_provider;  /* installed by main.c; every counter comes through it */
    /* upcalls of the transport (peer.c), installed by main.c: a complete packet
     * (router.c) and a closed connection (server.c drops the peer's monitors) */
    void (*packet_sink)(struct cnode *cn, struct peer *p, const unsigned char *buf, size_t len,
                        uint64_t now);
    void (*peer_gone)(struct cnode *cn, const struct peer *p);
    uint64_t next_ping_ms, next_discovery_ms;
    size_t rpc_rr;
    uint32_t ref_seq;
    ei_x_buff x; /* scratch for outgoing packets (loop thread only) */
    /* counters */
    uint64_t packets, malformed, ignored, events;
    uint64_t oversize;      /* packets over CN_MAX_PACKET, skipped unread (peer.c) */
    uint64_t peers_refused; /* names not added: the peer table is full (--max-peers) */
    /* start-up: first results of the seeds */
    size_t seeds_reported;
    int seed_ok, seed_handshake_failed;
    int stop, exit_code;
} cnode;

/* Reports an event up to the sink main.c installed (event.h). */
static inline void cn_event_emit(cnode *cn, const cn_event *ev)
{
    if (cn->event_sink) cn->event_sink(cn, ev);
}

/* Every counter, from the provider main.c installed (zeros without one). */
static inline void cn_stats_get(const cnode *cn, cn_stats *out)
{
    *out = (cn_stats){0};
    if (cn->stats_provider) cn->stats_provider(cn, out);
}

#endif
