/*
 * Learning nodes (discovery.c): rpc erlang:nodes/0 and epmd NAMES rounds, and
 * forgetting nodes no source has listed for --forget-after-ms.
 */
#ifndef PLEXUS_CNODE_DISCOVERY_H
#define PLEXUS_CNODE_DISCOVERY_H

#include <stdint.h>

#include "cnode/connector.h"
#include "cnode/state.h"

void cn_discovery_round(cnode *cn, uint64_t now);
/* The answer of an epmd NAMES job (connector.c). */
void cn_discovery_names(cnode *cn, cn_result *r, uint64_t now);
/* The answer of one of our erlang:nodes/0 rpcs (router.c). */
void cn_discovery_rpc_reply(cnode *cn, const char *term, int len, uint64_t now);

#endif
