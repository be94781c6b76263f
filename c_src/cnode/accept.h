/*
 * Incoming connections of plexus_cnode (accept.c): a bounded gate, then handshakes
 * under one deadline; finished connections go to the loop through the connector pool.
 */
#ifndef PLEXUS_CNODE_ACCEPT_H
#define PLEXUS_CNODE_ACCEPT_H

#include "cnode/counters.h"
#include "cnode/state.h"

/* Connections held before and during their handshake; beyond it the oldest one that
 * has not sent its name yet is dropped. */
#define CN_ACCEPT_PENDING_MAX 256
#define CN_HANDSHAKERS 4
/* Per source address: connections held (gate, queue, handshakes), and handshakes run
 * at once. One address that floods names and stalls holds this much, no more. */
#define CN_ACCEPT_PER_SOURCE 32
#define CN_HANDSHAKE_PER_SOURCE 2
/* The gate and handshake threads on listen_fd (after ei_publish: creation known). */
int cn_accept_start(cnode *cn);
void cn_accept_stop(cnode *cn);
/* Adds accepted, handshakes, handshake_failed, handshake_timeouts, accept_dropped and
 * pending to c (`stats` -> io). */
void cn_accept_counters(const cnode *cn, cn_counters *c);

#endif
