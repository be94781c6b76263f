/*
 * Reconnect policy of the C node, a leaf (pure decisions; peer.c adds the jitter and
 * loop.c acts on them):
 *   - the backoff doubles from CN_BACKOFF_FIRST_MS up to the --max-backoff-ms ceiling,
 *     so a killed node's restart is found quickly and a dead one costs little;
 *   - a finished outbound attempt counts only if its peer is still waiting for it.
 */
#ifndef PLEXUS_CNODE_BACKOFF_H
#define PLEXUS_CNODE_BACKOFF_H

#include <stdint.h>

#define CN_BACKOFF_FIRST_MS 200

/* The wait after a failed attempt, given the previous wait (0: none yet) and the
 * ceiling (1..86400000 ms, as --max-backoff-ms accepts). */
uint32_t cn_backoff_next(uint32_t cur_ms, uint32_t max_ms);

typedef enum {
    CN_ATTEMPT_ADOPT,   /* the connection becomes the peer's */
    CN_ATTEMPT_FAILED,  /* the peer backs off and tries again */
    CN_ATTEMPT_DISCARD, /* stale: its connection (if any) is closed unused */
} cn_attempt_action;

/* What becomes of a connector's result. `waiting`: the peer still exists and is in
 * PS_CONNECTING, i.e. this is the attempt it waits for; `has_fd`: the handshake
 * succeeded. A result the peer no longer waits for is stale: the peer connected the
 * other way meanwhile (an accepted connection), and that connection may even have
 * closed again. Adopting it then would report a node that just went down as up again,
 * through a connection made before it died. */
cn_attempt_action cn_attempt_result(int waiting, int has_fd);

#endif
