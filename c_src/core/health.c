/*
 * Failure detector (include/plexus/health.h): Raxol NodeMonitor's timeouts, with the
 * transitions reported as events so that the C node and plexus_monitor say the same
 * thing about the same observations.
 *
 * Nodes live in one array (swap-remove), found through an open-addressing index of
 * their FNV-1a hashes (linear probing, at most half full, backward-shift deletion).
 * Every ping answer is a lookup: a scan of the array cost a cache miss per node it
 * passed (a node is ~300 bytes with its ring), so at the C node's 10,000 peers a
 * round of answers was 10^8 comparisons. Names are not secret and the hash is not
 * keyed: names that collide on purpose only bring back the scan. Each node
 * keeps a ring of the last PLEXUS_HEALTH_RTT_SAMPLES RTTs; percentiles are computed on
 * demand (nearest rank over a sorted copy of at most 60 values).
 */
#include <string.h>

#include "plexus/health.h"

typedef struct hnode {
    uint8_t *name; /* owned, allocated with h->a */
    size_t len;
    uint32_t hash;
    plexus_health_status status;
    uint64_t since_ms;
    uint64_t last_answer_ms;
    uint64_t answers;
    uint32_t rtt_last_us;
    uint32_t ring[PLEXUS_HEALTH_RTT_SAMPLES];
    uint32_t ring_n;   /* samples held */
    uint32_t ring_pos; /* next slot to write */
} hnode;

struct plexus_health {
    plexus_health_config cfg;
    plexus_alloc a;
    hnode *nodes;
    size_t n, cap;
    uint32_t *slots; /* index + 1 of a node, 0 for an empty slot */
    size_t nslots;   /* a power of two, at least 2n once a node is in */
};

plexus_health_config plexus_health_default_config(void)
{
    plexus_health_config c = {1000, 5000, 30000};
    return c;
}

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static hnode *find(const plexus_health *h, const uint8_t *node, size_t len)
{
    if (!h->nslots) return NULL;
    uint32_t hash = fnv1a(node, len);
    size_t mask = h->nslots - 1;
    for (size_t k = hash & mask; h->slots[k]; k = (k + 1) & mask) {
        hnode *x = &h->nodes[h->slots[k] - 1];
        if (x->hash == hash && x->len == len && memcmp(x->name, node, len) == 0) return x;
    }
    return NULL;
}

/* Puts node i (its hash set) in the first empty slot of its probe. */
static void index_put(plexus_health *h, size_t i)
{
    size_t mask = h->nslots - 1;
    size_t k = h->nodes[i].hash & mask;
    while (h->slots[k])
        k = (k + 1) & mask;
    h->slots[k] = (uint32_t)(i + 1);
}

/* The slot that holds node i. */
static size_t index_slot(const plexus_health *h, size_t i)
{
    size_t mask = h->nslots - 1;
    size_t k = h->nodes[i].hash & mask;
    while (h->slots[k] != i + 1)
        k = (k + 1) & mask;
    return k;
}

/* Empties slot j and moves later entries of the run back, so that no probe passes
 * an empty slot before its entry. */
static void index_delete(plexus_health *h, size_t j)
{
    size_t mask = h->nslots - 1;
    h->slots[j] = 0;
    for (size_t k = (j + 1) & mask; h->slots[k]; k = (k + 1) & mask) {
        size_t home = h->nodes[h->slots[k] - 1].hash & mask;
        /* the entry at k may move to j when j lies on its probe: home..k */
        if (((k - home) & mask) >= ((k - j) & mask)) {
            h->slots[j] = h->slots[k];
            h->slots[k] = 0;
            j = k;
        }
    }
}

/* Room in the index for n nodes: at least 2n slots, rebuilt when it grows. */
static int index_reserve(plexus_health *h, size_t n)
{
    if (2 * n <= h->nslots) return PLEXUS_OK;
    size_t ns = h->nslots ? h->nslots : 32;
    while (ns < 2 * n)
        ns *= 2;
    uint32_t *slots = h->a.malloc(h->a.ctx, ns * sizeof *slots);
    if (!slots) return PLEXUS_ENOMEM;
    memset(slots, 0, ns * sizeof *slots);
    h->a.free(h->a.ctx, h->slots);
    h->slots = slots;
    h->nslots = ns;
    for (size_t i = 0; i < h->n; i++)
        index_put(h, i);
    return PLEXUS_OK;
}

int plexus_health_new(const plexus_health_config *cfg, const plexus_alloc *a, plexus_health **out)
{
    *out = NULL;
    if (!cfg->ping_interval_ms || !cfg->suspect_after_ms ||
        cfg->down_after_ms <= cfg->suspect_after_ms)
        return PLEXUS_EINVAL;
    plexus_health *h = a->malloc(a->ctx, sizeof *h);
    if (!h) return PLEXUS_ENOMEM;
    memset(h, 0, sizeof *h);
    h->cfg = *cfg;
    h->a = *a;
    *out = h;
    return PLEXUS_OK;
}

void plexus_health_free(plexus_health *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->n; i++)
        h->a.free(h->a.ctx, h->nodes[i].name);
    h->a.free(h->a.ctx, h->nodes);
    h->a.free(h->a.ctx, h->slots);
    h->a.free(h->a.ctx, h);
}

plexus_health_config plexus_health_get_config(const plexus_health *h)
{
    return h->cfg;
}

static void emit_ev(hnode *x, plexus_health_event_kind kind, plexus_health_status to,
                    uint64_t now_ms, plexus_health_reason reason, uint32_t rtt_us,
                    plexus_health_emit_fn emit, void *ctx)
{
    plexus_health_event ev;
    ev.kind = kind;
    ev.node = x->name;
    ev.node_len = x->len;
    ev.from = x->status;
    ev.to = to;
    ev.reason = reason;
    ev.silent_ms = now_ms > x->last_answer_ms ? now_ms - x->last_answer_ms : 0;
    ev.rtt_us = rtt_us;
    x->status = to;
    x->since_ms = now_ms;
    if (emit) emit(ctx, &ev);
}

int plexus_health_up(plexus_health *h, const uint8_t *node, size_t len, uint64_t now_ms,
                     plexus_health_emit_fn emit, void *ctx)
{
    if (len == 0 || len > PLEXUS_HEALTH_NAME_MAX) return PLEXUS_EINVAL;
    hnode *x = find(h, node, len);
    if (!x) {
        if (h->n == h->cap) {
            size_t cap = h->cap ? h->cap * 2 : 16;
            hnode *p = h->a.realloc(h->a.ctx, h->nodes, cap * sizeof *p);
            if (!p) return PLEXUS_ENOMEM;
            h->nodes = p;
            h->cap = cap;
        }
        if (index_reserve(h, h->n + 1) != PLEXUS_OK) return PLEXUS_ENOMEM;
        uint8_t *name = h->a.malloc(h->a.ctx, len);
        if (!name) return PLEXUS_ENOMEM;
        memcpy(name, node, len);
        x = &h->nodes[h->n++];
        memset(x, 0, sizeof *x);
        x->name = name;
        x->len = len;
        x->hash = fnv1a(node, len);
        x->status = PLEXUS_HEALTH_UNKNOWN;
        index_put(h, h->n - 1);
    }
    if (x->status == PLEXUS_HEALTH_UNKNOWN || x->status == PLEXUS_HEALTH_DOWN) {
        /* A fresh connection is proof of life: silence is counted from now. */
        x->last_answer_ms = now_ms;
        emit_ev(x, PLEXUS_HEALTH_EV_NODE_UP, PLEXUS_HEALTH_HEALTHY, now_ms, PLEXUS_HEALTH_R_NONE, 0,
                emit, ctx);
    } else if (x->status == PLEXUS_HEALTH_SUSPECT) {
        emit_ev(x, PLEXUS_HEALTH_EV_HEALTHY, PLEXUS_HEALTH_HEALTHY, now_ms, PLEXUS_HEALTH_R_NONE, 0,
                emit, ctx);
        x->last_answer_ms = now_ms;
    } else {
        if (now_ms > x->last_answer_ms) x->last_answer_ms = now_ms;
    }
    return PLEXUS_OK;
}

int plexus_health_answer(plexus_health *h, const uint8_t *node, size_t len, uint64_t now_ms,
                         uint32_t rtt_us, plexus_health_emit_fn emit, void *ctx)
{
    hnode *x = find(h, node, len);
    if (!x) return PLEXUS_ENOTFOUND;
    x->rtt_last_us = rtt_us;
    x->ring[x->ring_pos] = rtt_us;
    x->ring_pos = (x->ring_pos + 1) % PLEXUS_HEALTH_RTT_SAMPLES;
    if (x->ring_n < PLEXUS_HEALTH_RTT_SAMPLES) x->ring_n++;
    x->answers++;
    if (x->status == PLEXUS_HEALTH_SUSPECT)
        emit_ev(x, PLEXUS_HEALTH_EV_HEALTHY, PLEXUS_HEALTH_HEALTHY, now_ms, PLEXUS_HEALTH_R_NONE,
                rtt_us, emit, ctx);
    else if (x->status == PLEXUS_HEALTH_DOWN || x->status == PLEXUS_HEALTH_UNKNOWN)
        emit_ev(x, PLEXUS_HEALTH_EV_NODE_UP, PLEXUS_HEALTH_HEALTHY, now_ms, PLEXUS_HEALTH_R_NONE,
                rtt_us, emit, ctx);
    /* Answers may arrive out of order; silence runs from the latest. */
    if (now_ms > x->last_answer_ms) x->last_answer_ms = now_ms;
    return PLEXUS_OK;
}

int plexus_health_down(plexus_health *h, const uint8_t *node, size_t len, uint64_t now_ms,
                       plexus_health_reason reason, plexus_health_emit_fn emit, void *ctx)
{
    hnode *x = find(h, node, len);
    if (!x) return PLEXUS_ENOTFOUND;
    if (x->status != PLEXUS_HEALTH_DOWN)
        emit_ev(x, PLEXUS_HEALTH_EV_NODE_DOWN, PLEXUS_HEALTH_DOWN, now_ms, reason, 0, emit, ctx);
    return PLEXUS_OK;
}

void plexus_health_tick(plexus_health *h, uint64_t now_ms, plexus_health_emit_fn emit, void *ctx)
{
    for (size_t i = 0; i < h->n; i++) {
        hnode *x = &h->nodes[i];
        if (x->status != PLEXUS_HEALTH_HEALTHY && x->status != PLEXUS_HEALTH_SUSPECT) continue;
        uint64_t silent = now_ms > x->last_answer_ms ? now_ms - x->last_answer_ms : 0;
        if (x->status == PLEXUS_HEALTH_HEALTHY && silent >= h->cfg.suspect_after_ms)
            emit_ev(x, PLEXUS_HEALTH_EV_SUSPECT, PLEXUS_HEALTH_SUSPECT, now_ms,
                    PLEXUS_HEALTH_R_NONE, 0, emit, ctx);
        if (x->status == PLEXUS_HEALTH_SUSPECT && silent >= h->cfg.down_after_ms)
            emit_ev(x, PLEXUS_HEALTH_EV_NODE_DOWN, PLEXUS_HEALTH_DOWN, now_ms,
                    PLEXUS_HEALTH_R_TIMEOUT, 0, emit, ctx);
    }
}

uint64_t plexus_health_next_deadline(const plexus_health *h)
{
    uint64_t best = UINT64_MAX;
    for (size_t i = 0; i < h->n; i++) {
        const hnode *x = &h->nodes[i];
        uint64_t d;
        if (x->status == PLEXUS_HEALTH_HEALTHY)
            d = x->last_answer_ms + h->cfg.suspect_after_ms;
        else if (x->status == PLEXUS_HEALTH_SUSPECT)
            d = x->last_answer_ms + h->cfg.down_after_ms;
        else
            continue;
        if (d < best) best = d;
    }
    return best;
}

int plexus_health_remove(plexus_health *h, const uint8_t *node, size_t len)
{
    hnode *x = find(h, node, len);
    if (!x) return PLEXUS_ENOTFOUND;
    h->a.free(h->a.ctx, x->name);
    size_t i = (size_t)(x - h->nodes), last = h->n - 1;
    index_delete(h, index_slot(h, i));
    if (i != last) { /* the last node moves into the hole: its slot follows it */
        size_t k = index_slot(h, last);
        h->nodes[i] = h->nodes[last];
        h->slots[k] = (uint32_t)(i + 1);
    }
    h->n--;
    return PLEXUS_OK;
}

static void fill_stats(const hnode *x, plexus_health_stats *out)
{
    memset(out, 0, sizeof *out);
    out->status = x->status;
    out->since_ms = x->since_ms;
    out->last_answer_ms = x->last_answer_ms;
    out->answers = x->answers;
    out->samples = x->ring_n;
    out->rtt_last_us = x->rtt_last_us;
    if (!x->ring_n) return;
    uint32_t sorted[PLEXUS_HEALTH_RTT_SAMPLES];
    uint64_t sum = 0;
    size_t n = x->ring_n;
    for (size_t i = 0; i < n; i++) { /* insertion sort: n <= 60 */
        uint32_t v = x->ring[i];
        sum += v;
        size_t j = i;
        while (j > 0 && sorted[j - 1] > v) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = v;
    }
    out->rtt_avg_us = (uint32_t)(sum / n);
    /* nearest rank: the smallest value with at least p% of the samples at or below it */
    out->rtt_p50_us = sorted[(n * 50 + 99) / 100 - 1];
    out->rtt_p99_us = sorted[(n * 99 + 99) / 100 - 1];
    out->rtt_min_us = sorted[0];
    out->rtt_max_us = sorted[n - 1];
}

int plexus_health_get(const plexus_health *h, const uint8_t *node, size_t len,
                      plexus_health_stats *out)
{
    const hnode *x = find(h, node, len);
    if (!x) return PLEXUS_ENOTFOUND;
    fill_stats(x, out);
    return PLEXUS_OK;
}

size_t plexus_health_count(const plexus_health *h)
{
    return h->n;
}

void plexus_health_at(const plexus_health *h, size_t i, const uint8_t **node, size_t *len,
                      plexus_health_stats *out)
{
    const hnode *x = &h->nodes[i];
    *node = x->name;
    *len = x->len;
    if (out) fill_stats(x, out);
}

const char *plexus_health_status_name(plexus_health_status s)
{
    switch (s) {
    case PLEXUS_HEALTH_HEALTHY:
        return "healthy";
    case PLEXUS_HEALTH_SUSPECT:
        return "suspect";
    case PLEXUS_HEALTH_DOWN:
        return "down";
    default:
        return "unknown";
    }
}

const char *plexus_health_event_name(plexus_health_event_kind k)
{
    switch (k) {
    case PLEXUS_HEALTH_EV_NODE_UP:
        return "node_up";
    case PLEXUS_HEALTH_EV_SUSPECT:
        return "suspect";
    case PLEXUS_HEALTH_EV_HEALTHY:
        return "healthy";
    case PLEXUS_HEALTH_EV_NODE_DOWN:
        return "node_down";
    default:
        return "unknown";
    }
}

const char *plexus_health_reason_name(plexus_health_reason r)
{
    switch (r) {
    case PLEXUS_HEALTH_R_TIMEOUT:
        return "timeout";
    case PLEXUS_HEALTH_R_CLOSED:
        return "connection_closed";
    case PLEXUS_HEALTH_R_TICK_TIMEOUT:
        return "tick_timeout";
    case PLEXUS_HEALTH_R_ERROR:
        return "connection_error";
    case PLEXUS_HEALTH_R_SHUTDOWN:
        return "shutdown";
    default:
        return "none";
    }
}
