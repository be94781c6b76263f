/*
 * --gossip (gossip.c): sealed beacons (core beacon.c) sent and received over UDP; the
 * authenticated senders become nodes to watch and gossip peers.
 */
#ifndef PLEXUS_CNODE_GOSSIP_H
#define PLEXUS_CNODE_GOSSIP_H

#include <ei.h>
#include <stdint.h>

#include "cnode/counters.h"
#include "cnode/state.h"

/* Secret, codec, socket; before the loop. 0 or an exit code (message printed). */
int cn_gossip_start(cnode *cn);
/* Sends a last beacon marked leaving, then frees everything (keys wiped). */
void cn_gossip_stop(cnode *cn);
int cn_gossip_fd(const cnode *cn);
/* The bound port; 0 without --gossip. */
uint16_t cn_gossip_port(const cnode *cn);
/* Sends the beacon when due, expires silent peers; lowers *next to its next deadline. */
void cn_gossip_tick(cnode *cn, uint64_t now, uint64_t *next);
/* The socket is readable: opens a bounded number of datagrams. */
void cn_gossip_readable(cnode *cn, uint64_t now);
/* Every gossip counter (the codec's and the socket's), by name, into c. */
void cn_gossip_counters(const cnode *cn, cn_counters *c);
/* [#{node, source, metadata, incarnation, last_seen_ms}] (Erlang term). */
int cn_gossip_encode_peers(const cnode *cn, ei_x_buff *x, uint64_t now);

#endif
