/*
 * Named counters of the C node, for `stats` (server.c) and the "stopped" line (out.c):
 * a leaf header. The modules that count (accept.c, out.c, gossip.c, registry_host.c)
 * fill a cn_counters with their own names; main.c installs the provider
 * (cnode.stats_provider) that gathers them, so the two outputs read every counter
 * without calling up into the modules that own them.
 */
#ifndef PLEXUS_CNODE_COUNTERS_H
#define PLEXUS_CNODE_COUNTERS_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

/* More than any one module has (the registry host: 16). */
#define CN_COUNTERS_MAX 24

typedef struct cn_counters {
    size_t n;
    const char *name[CN_COUNTERS_MAX]; /* static strings */
    uint64_t value[CN_COUNTERS_MAX];
} cn_counters;

static inline void cn_counters_add(cn_counters *c, const char *name, uint64_t value)
{
    assert(c->n < CN_COUNTERS_MAX); /* a fixed set per module: a bug, not input */
    c->name[c->n] = name;
    c->value[c->n] = value;
    c->n++;
}

/* Every counter of the daemon; a part that does not run (--gossip, --registry) is 0. */
typedef struct cn_stats {
    cn_counters io; /* "Behaviour under attack" (README): accept, peer table, stdout */
    int gossip, registry;
    cn_counters gossip_counters, registry_counters;
} cn_stats;

struct cnode;
/* The provider main.c installs in cnode.stats_provider; loop thread only. */
typedef void (*cn_stats_fn)(const struct cnode *cn, cn_stats *out);

#endif
