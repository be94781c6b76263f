/*
 * Events of the C node, reported up through one sink (the way the core's
 * plexus_health_emit_fn works). main.c installs the sink; it hands every event to its
 * consumers, the JSON/text lines on stdout (out.c) and the Erlang subscribers
 * (server.c), so a producer (peer.c, gossip.c, registry_host.c) writes an event once
 * and knows nothing of who reads it.
 */
#ifndef PLEXUS_CNODE_EVENT_H
#define PLEXUS_CNODE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/disco.h"
#include "plexus/health.h"

/*
 * A discovery event of the gossip or registry host. Every pointer borrows; fields that
 * do not apply are NULL / 0.
 */
typedef struct cn_disco_event {
    const char *event; /* gossip_peer_up | gossip_peer_update | gossip_peer_down |
                          beacon_rejected | registry_announce | registry_leave */
    const char *node;  /* the peer (beacon_rejected: this node) */
    size_t node_len;
    const char *source; /* "IP:PORT" the datagram came from */
    const char *reason; /* down: leaving | timeout; beacon_rejected: the error name */
    const plexus_disco_meta *meta;
    uint64_t incarnation;
    uint32_t ttl_ms, heartbeat_ms; /* registry_announce */
    uint64_t count;                /* beacon_rejected: rejected so far */
} cn_disco_event;

typedef enum cn_event_kind {
    CN_EVENT_HEALTH, /* a peer's health changed (core health.c) */
    CN_EVENT_DISCO   /* gossip or registry discovery */
} cn_event_kind;

/* One event; exactly the member of its kind is set (borrowed for the call). */
typedef struct cn_event {
    cn_event_kind kind;
    const plexus_health_event *health;
    const cn_disco_event *disco;
} cn_event;

struct cnode;
/* The sink main.c installs in cnode.event_sink; called on the loop thread only. */
typedef void (*cn_event_sink_fn)(struct cnode *cn, const cn_event *ev);

#endif
