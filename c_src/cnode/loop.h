/*
 * The event loop of plexus_cnode (loop.c): one thread, one epoll set, timers as
 * deadlines checked each turn.
 */
#ifndef PLEXUS_CNODE_LOOP_H
#define PLEXUS_CNODE_LOOP_H

#include "cnode/state.h"

/* Runs until a signal or a fatal error; the exit code. */
int cn_loop_run(cnode *cn);

#endif
