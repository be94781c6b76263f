/*
 * plexus failure detector: per-node health from connection events and ping answers.
 *
 * Seed behaviour: Raxol NodeMonitor (doc/DESIGN.md §3): a node is pinged every
 * ping_interval_ms (1000), becomes `suspect` after suspect_after_ms (5000) without an
 * answer and `down` after down_after_ms (30000); the RTT of the last 60 answers is kept
 * with avg, p50 and p99. Anchors: the timeout detector of memberlist/SWIM without the
 * indirect probes, and net_kernel's tick (the host reports closed connections).
 *
 * Pure core (doc/STYLE.md habit 1): no I/O, no clock. The host tells the detector what it
 * saw, with the time in milliseconds of any monotonic clock it likes:
 *
 *   plexus_health_up      a connection to the node is established
 *   plexus_health_answer  a ping was answered, with its RTT in microseconds
 *   plexus_health_down    the connection closed (or the host otherwise knows it is down)
 *   plexus_health_tick    time passed: silent nodes become suspect, then down
 *
 * and each call reports the transitions it caused through the emit callback, in order.
 * Sending pings is the host's job (every ping_interval_ms); the detector only judges.
 * The same object code runs in the C node (c_src/cnode) and, through a NIF resource,
 * in plexus_monitor.
 *
 * Nodes are byte strings ("name@host"), compared bytewise; at most
 * PLEXUS_HEALTH_NAME_MAX bytes.
 */
#ifndef PLEXUS_HEALTH_H
#define PLEXUS_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/common.h"

#define PLEXUS_HEALTH_RTT_SAMPLES 60
#define PLEXUS_HEALTH_NAME_MAX 1024

typedef enum plexus_health_status {
    PLEXUS_HEALTH_UNKNOWN = 0, /* only as `from` of the first node_up */
    PLEXUS_HEALTH_HEALTHY = 1,
    PLEXUS_HEALTH_SUSPECT = 2,
    PLEXUS_HEALTH_DOWN = 3
} plexus_health_status;

typedef enum plexus_health_event_kind {
    PLEXUS_HEALTH_EV_NODE_UP = 1,  /* unknown/down -> healthy */
    PLEXUS_HEALTH_EV_SUSPECT = 2,  /* healthy -> suspect */
    PLEXUS_HEALTH_EV_HEALTHY = 3,  /* suspect -> healthy (an answer came) */
    PLEXUS_HEALTH_EV_NODE_DOWN = 4 /* healthy/suspect -> down */
} plexus_health_event_kind;

/* Why a node went down. */
typedef enum plexus_health_reason {
    PLEXUS_HEALTH_R_NONE = 0,
    PLEXUS_HEALTH_R_TIMEOUT = 1,      /* no answer for down_after_ms (the detector) */
    PLEXUS_HEALTH_R_CLOSED = 2,       /* connection closed */
    PLEXUS_HEALTH_R_TICK_TIMEOUT = 3, /* nothing received for a tick period */
    PLEXUS_HEALTH_R_ERROR = 4,        /* protocol or I/O error on the connection */
    PLEXUS_HEALTH_R_SHUTDOWN = 5      /* the host is stopping */
} plexus_health_reason;
#define PLEXUS_HEALTH_R_MAX PLEXUS_HEALTH_R_SHUTDOWN

typedef struct plexus_health_config {
    uint32_t ping_interval_ms; /* advisory for the host; > 0 */
    uint32_t suspect_after_ms; /* > 0 */
    uint32_t down_after_ms;    /* > suspect_after_ms */
} plexus_health_config;

/* The defaults of doc/DESIGN.md §3: 1000 / 5000 / 30000. */
PLEXUS_API plexus_health_config plexus_health_default_config(void);

typedef struct plexus_health_event {
    plexus_health_event_kind kind;
    const uint8_t *node; /* valid during the callback only */
    size_t node_len;
    plexus_health_status from, to;
    plexus_health_reason reason; /* node_down only */
    uint64_t silent_ms;          /* time since the last answer (suspect, node_down) */
    uint32_t rtt_us;             /* the answer's RTT (healthy, node_up by answer) */
} plexus_health_event;

typedef void (*plexus_health_emit_fn)(void *ctx, const plexus_health_event *ev);

typedef struct plexus_health_stats {
    plexus_health_status status;
    uint64_t since_ms;       /* time of the last status change */
    uint64_t last_answer_ms; /* or the time it came up when it never answered */
    uint64_t answers;        /* answers since the node was first seen */
    uint32_t samples;        /* RTT samples held (<= PLEXUS_HEALTH_RTT_SAMPLES) */
    uint32_t rtt_last_us, rtt_avg_us, rtt_p50_us, rtt_p99_us, rtt_min_us, rtt_max_us;
} plexus_health_stats;

typedef struct plexus_health plexus_health;

/* PLEXUS_EINVAL for a bad config (zero interval, down_after <= suspect_after). */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_health_new(const plexus_health_config *cfg,
                                                   const plexus_alloc *a, plexus_health **out);
PLEXUS_API void plexus_health_free(plexus_health *h);
PLEXUS_API plexus_health_config plexus_health_get_config(const plexus_health *h);

/*
 * A connection to `node` is up at now_ms. A new or down node becomes healthy (node_up);
 * a healthy or suspect one counts this as an answer. PLEXUS_ENOMEM, PLEXUS_EINVAL (empty
 * or over-long name).
 */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_health_up(plexus_health *h, const uint8_t *node, size_t len,
                                                  uint64_t now_ms, plexus_health_emit_fn emit,
                                                  void *ctx);

/*
 * A ping answer with its RTT. A suspect node becomes healthy; a down node comes back
 * up (node_up: it answered, so it is alive). PLEXUS_ENOTFOUND for an unknown node.
 */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_health_answer(plexus_health *h, const uint8_t *node,
                                                      size_t len, uint64_t now_ms, uint32_t rtt_us,
                                                      plexus_health_emit_fn emit, void *ctx);

/* The node is down for `reason` (no event when it already is). PLEXUS_ENOTFOUND. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_health_down(plexus_health *h, const uint8_t *node,
                                                    size_t len, uint64_t now_ms,
                                                    plexus_health_reason reason,
                                                    plexus_health_emit_fn emit, void *ctx);

/* Time passes: healthy nodes silent for suspect_after_ms become suspect, nodes silent
 * for down_after_ms go down (reason timeout; suspect is reported first). */
PLEXUS_API void plexus_health_tick(plexus_health *h, uint64_t now_ms, plexus_health_emit_fn emit,
                                   void *ctx);

/* Earliest time at which plexus_health_tick can change something; UINT64_MAX if none. */
PLEXUS_API uint64_t plexus_health_next_deadline(const plexus_health *h);

/* Forgets a node (no event). PLEXUS_ENOTFOUND. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_health_remove(plexus_health *h, const uint8_t *node,
                                                      size_t len);

/* Stats of one node; PLEXUS_ENOTFOUND. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_health_get(const plexus_health *h, const uint8_t *node,
                                                   size_t len, plexus_health_stats *out);

/* Iteration: nodes 0 .. count-1 in unspecified order, stable until the next up/remove.
 * `out` may be NULL. */
PLEXUS_API size_t plexus_health_count(const plexus_health *h);
PLEXUS_API void plexus_health_at(const plexus_health *h, size_t i, const uint8_t **node,
                                 size_t *len, plexus_health_stats *out);

PLEXUS_API const char *plexus_health_status_name(plexus_health_status s);
PLEXUS_API const char *plexus_health_event_name(plexus_health_event_kind k);
PLEXUS_API const char *plexus_health_reason_name(plexus_health_reason r);

#endif
