/*
 * Peers of plexus_cnode (peer.c): the peer table, framed non-blocking I/O, pings, ticks
 * and the reconnect backoff. Transport only: a complete packet goes up through
 * cnode.packet_sink (router.c), a closed connection through cnode.peer_gone.
 */
#ifndef PLEXUS_CNODE_PEER_H
#define PLEXUS_CNODE_PEER_H

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

#include "cnode/msg.h" /* CN_NODE_MAX */
#include "cnode/state.h"
#include "plexus/health.h"

typedef enum peer_state { PS_IDLE = 0, PS_CONNECTING, PS_UP } peer_state;

#define CN_PING_SLOTS 8

typedef struct peer {
    char name[CN_NODE_MAX + 1];
    size_t name_len;
    peer_state state;
    int fd;
    int seed;
    int known;                   /* connected once, or listed by a connected node's nodes():
                                   the connectors' fast lane (connector.c) */
    int in_health;               /* the detector knows it */
    int reported;                /* the first connect result was reported (seeds) */
    int last_err;                /* kind of the last failure, to log changes only */
    plexus_health_reason broken; /* why a send failed (R_NONE: it did not); the loop
                                    closes it (cn_peer_reap) */
    uint64_t seen_ms;            /* last time a source listed it or it was connected */
    uint64_t next_attempt_ms;
    uint32_t backoff_ms;
    /* framing */
    unsigned char *rbuf;
    size_t rlen, rcap;
    uint64_t skip; /* bytes left of an oversized packet being skipped unread */
    unsigned char *wbuf;
    size_t wlen, woff, wcap;
    int epoll_out;
    uint64_t last_recv_ms, last_send_ms;
    /* pings in flight: slot seq % CN_PING_SLOTS */
    uint32_t ping_seq;
    uint32_t slot_seq[CN_PING_SLOTS];
    uint64_t slot_sent_us[CN_PING_SLOTS];
} peer;

peer *cn_peer_find(cnode *cn, const char *name, size_t len);
/* Finds or adds (state idle, first attempt now). NULL on OOM or a bad name. */
peer *cn_peer_add(cnode *cn, const char *name, size_t len, uint64_t now);
void cn_peer_remove(cnode *cn, peer *p);
void cn_peer_free_all(cnode *cn);
/* A finished connection (outgoing or accepted) for node; takes ownership of fd. */
void cn_peer_connected(cnode *cn, const char *node, int fd, uint64_t now);
/* A failed attempt (err_kind: CN_ERR_*, epmd.h): schedules the next with backoff. */
void cn_peer_connect_failed(cnode *cn, peer *p, int err_kind, const char *msg, uint64_t now);
/* epoll readiness on the peer's fd. */
void cn_peer_io(cnode *cn, peer *p, uint32_t events, uint64_t now);
/* Finishes the packet in x (cn_packet_finish) and queues it on the peer. 0 ok. */
int cn_peer_send(cnode *cn, peer *p, ei_x_buff *x, uint64_t now);
/* Bytes of read and write buffers the peers hold now (`stats` -> buffer_bytes). */
size_t cn_peer_buffer_bytes(const cnode *cn);
void cn_peer_ping_all(cnode *cn, uint64_t now);
void cn_peer_reap(cnode *cn, uint64_t now);
void cn_peer_check_ticks(cnode *cn, uint64_t now);
/* Makes one of our references: kind 1 ping, 2 rpc, 4 subscriber liveness check. */
void cn_make_ref(cnode *cn, erlang_ref *ref, unsigned kind, uint32_t seq);
int cn_ref_is_ours(const cnode *cn, const erlang_ref *ref, unsigned *kind, uint32_t *seq);
/* The detector's events go through here (ctx: the cnode), up to the event sink. */
void cn_health_emit(void *ctx, const plexus_health_event *ev);

#endif
