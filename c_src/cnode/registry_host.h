/*
 * --registry (registry_host.c): the TTL registry server (core registry.c) on UDP.
 */
#ifndef PLEXUS_CNODE_REGISTRY_HOST_H
#define PLEXUS_CNODE_REGISTRY_HOST_H

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

#include "cnode/counters.h"
#include "cnode/state.h"

int cn_registry_start(cnode *cn);
void cn_registry_stop(cnode *cn);
int cn_registry_fd(const cnode *cn);
/* The bound port; 0 without --registry. */
uint16_t cn_registry_port(const cnode *cn);
/* Evicts expired entries once a second; lowers *next. */
void cn_registry_tick(cnode *cn, uint64_t now, uint64_t *next);
void cn_registry_readable(cnode *cn, uint64_t now);
/* Every registry counter (the core table's and the socket's), by name, into c. */
void cn_registry_counters(const cnode *cn, cn_counters *c);
/* [#{peer, addrs, metadata, ttl_ms}] (Erlang term, as plexus_registry:current_view/1):
 * at most max entries (a random sample when the table holds more) and about
 * CN_VIEW_BYTES of terms. */
#define CN_VIEW_MAX_DEFAULT 10000
#define CN_VIEW_BYTES (1u << 20)
int cn_registry_encode_view(cnode *cn, ei_x_buff *x, size_t max);

#endif
