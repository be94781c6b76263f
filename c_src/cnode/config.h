/*
 * The command line of plexus_cnode (config.c): one table of options drives parsing and
 * --help; the checks that need the whole line are a separate step. The cookie and the
 * gossip secret are never options (secrets.c reads them from files or the environment;
 * config.c refuses them on argv).
 */
#ifndef PLEXUS_CNODE_CONFIG_H
#define PLEXUS_CNODE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cnode/msg.h" /* CN_NODE_MAX */

/* Subscribers of the registered process (server.c, core subs.c). */
#define CN_MAX_SUBSCRIBERS_DEFAULT 65536u
#define CN_MAX_SUBSCRIBERS_CAP (1u << 24)

typedef enum cn_gossip_mode {
    CN_GOSSIP_MULTICAST = 0,
    CN_GOSSIP_BROADCAST,
    CN_GOSSIP_UNICAST
} cn_gossip_mode;

typedef struct cn_config {
    char node[CN_NODE_MAX + 1]; /* full name alive@host */
    char alive[CN_NODE_MAX + 1];
    char host[CN_NODE_MAX + 1];
    int longnames;
    const char *cookie_file; /* NULL: $PLEXUS_COOKIE, else ~/.erlang.cookie */
    const char **seeds;
    size_t n_seeds;
    const char *listen_addr; /* dotted IPv4; NULL: derived from the host */
    uint32_t ping_interval_ms, suspect_after_ms, down_after_ms;
    uint32_t tick_timeout_ms, connect_timeout_ms, discovery_interval_ms;
    uint32_t max_backoff_ms, forget_after_ms;
    uint32_t max_peers;            /* bound of the peer table for learned names */
    uint32_t handshake_timeout_ms; /* an incoming handshake, from its accept (accept.c) */
    int connectors;
    uint32_t max_subscribers; /* --max-subscribers (server.c) */
    int json, verbose, wait_for_seeds, epmd_scan, rpc_scan, stdin_eof;
    /* --gossip (gossip.c); the arrays below are malloc'd with room for argc entries */
    int gossip;
    const char *gossip_secret_file; /* NULL: $PLEXUS_GOSSIP_SECRET */
    const char *gossip_cluster_id;  /* "plexus" */
    uint32_t gossip_epoch;
    int gossip_accept_prev;
    cn_gossip_mode gossip_mode;
    uint16_t gossip_port;         /* 45892 */
    const char *gossip_group;     /* multicast group, "233.252.1.32" */
    const char *gossip_if;        /* multicast interface address, "0.0.0.0" */
    const char *gossip_bind;      /* NULL: the group (multicast), else any */
    const char *gossip_broadcast; /* "255.255.255.255" */
    uint32_t gossip_ttl;          /* multicast TTL, 1 */
    const char **gossip_targets;  /* HOST:PORT */
    size_t n_gossip_targets;
    const char **gossip_meta; /* KEY=VALUE */
    size_t n_gossip_meta;
    uint32_t gossip_interval_ms, gossip_peer_timeout_ms, gossip_max_senders, gossip_max_skew_ms;
    /* --registry (registry_host.c) */
    int registry;
    uint16_t registry_port;    /* 45893; 0 picks one */
    const char *registry_addr; /* bind address, "0.0.0.0" */
    int registry_require_signed;
    const char **registry_trusted; /* hex Ed25519 public keys */
    size_t n_registry_trusted;
    const char **registry_server_addrs; /* what the Handshake lists; default "ADDR:PORT" */
    size_t n_registry_server_addrs;
    uint32_t registry_max_entries, registry_max_bytes, registry_default_ttl_ms, registry_min_ttl_ms,
        registry_max_ttl_ms;
} cn_config;

/* Parses argv into cfg; on error prints to stderr and returns CN_EXIT_USAGE; 0 ok;
 * -1 after --help (usage printed on stdout). cn_config_free in every case. */
int cn_config_parse(cn_config *cfg, int argc, char **argv);
void cn_config_free(cn_config *cfg);

#endif
