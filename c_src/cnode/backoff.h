/*
 * Reconnect backoff of the C node: a leaf (pure arithmetic; peer.c adds the jitter).
 * Doubles from CN_BACKOFF_FIRST_MS up to the --max-backoff-ms ceiling, so a killed
 * node's restart is found quickly and a dead one costs little.
 */
#ifndef PLEXUS_CNODE_BACKOFF_H
#define PLEXUS_CNODE_BACKOFF_H

#include <stdint.h>

#define CN_BACKOFF_FIRST_MS 200

/* The wait after a failed attempt, given the previous wait (0: none yet) and the
 * ceiling (1..86400000 ms, as --max-backoff-ms accepts). */
uint32_t cn_backoff_next(uint32_t cur_ms, uint32_t max_ms);

#endif
