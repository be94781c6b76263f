/*
 * The registered process `plexus_cnode` (server.c): subscriptions, gen_server calls,
 * and the events for subscribers (a consumer of the event sink).
 */
#ifndef PLEXUS_CNODE_SERVER_H
#define PLEXUS_CNODE_SERVER_H

#include <stdint.h>

#include "cnode/event.h"
#include "cnode/msg.h"
#include "cnode/peer.h"
#include "cnode/state.h"

void cn_server_handle(cnode *cn, peer *from, const cn_msg *m, uint64_t now);
/* A ping answer (rtt_us) from p, for the subscribers that asked for `answers`. */
void cn_server_answer(cnode *cn, const peer *p, uint32_t rtt_us);
/* Starts the due subscriber liveness checks; lowers *next to the next one. */
void cn_server_tick(cnode *cn, uint64_t now, uint64_t *next);
/* The answer to a liveness check (a ref of kind 4, sequence seq) from p. */
void cn_server_check_reply(cnode *cn, const peer *p, uint32_t seq, const char *term, int len,
                           uint64_t now);
/* A peer went away (cnode.peer_gone): drop its node's subscribers. */
void cn_server_peer_gone(cnode *cn, const peer *p);
void cn_server_free(cnode *cn);
/* Event consumer: sends the event to the subscribers that asked for it. */
void cn_server_on_event(cnode *cn, const cn_event *ev);

#endif
