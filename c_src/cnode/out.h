/*
 * Event output of plexus_cnode on stdout (out.c): JSON lines (--json, jansson) or text,
 * through a bounded buffer so a reader that stops reading never stops the loop. A
 * consumer of the event sink; the daemon's own lines (ready, stopped, output_dropped).
 */
#ifndef PLEXUS_CNODE_OUT_H
#define PLEXUS_CNODE_OUT_H

#include <stdint.h>

#include "cnode/counters.h"
#include "cnode/event.h"
#include "cnode/state.h"

/* Bound of the stdout buffer: lines that do not fit are dropped and counted. */
#define CN_OUT_MAX_BYTES (1u << 20)
/* Makes stdout non-blocking when it is a pipe or a socket (before any output). */
void cn_out_start(cnode *cn);
/* Output waits in the buffer: the loop watches stdout for EPOLLOUT. */
int cn_out_pending(const cnode *cn);
/* stdout is writable: writes what waits (then an output_dropped line if lines were lost). */
void cn_out_writable(cnode *cn);
/* At exit: waits at most tmo_ms for the buffer to drain, then frees it. */
void cn_out_finish(cnode *cn, unsigned tmo_ms);
/* Adds output_lines, output_dropped and output_buffered to c (`stats` -> io). */
void cn_out_counters(cn_counters *c);
/* Event consumer: one JSON (or text) line on stdout. */
void cn_out_on_event(cnode *cn, const cn_event *ev);
/* The "ready" line; a port is 0 when that part does not run. */
void cn_out_ready(cnode *cn, uint16_t gossip_port, uint16_t registry_port);
/* The "stopped" line, with every counter (cnode.stats_provider). */
void cn_out_stopped(cnode *cn);

#endif
