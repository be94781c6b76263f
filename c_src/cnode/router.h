/*
 * Routing of incoming packets (router.c): what a decoded packet means, and who gets it.
 */
#ifndef PLEXUS_CNODE_ROUTER_H
#define PLEXUS_CNODE_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "cnode/peer.h"
#include "cnode/state.h"

/* One complete packet from a peer (cnode.packet_sink): decoded, then handed to whoever
 * it is for. */
void cn_router_packet(cnode *cn, peer *p, const unsigned char *buf, size_t len, uint64_t now);

#endif
