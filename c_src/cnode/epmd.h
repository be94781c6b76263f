/*
 * The epmd client of plexus_cnode (epmd.c): PORT_PLEASE2 and NAMES with deadlines, for
 * the connector threads. Also the kinds of failure to reach a node, the first of which
 * this client tells apart.
 */
#ifndef PLEXUS_CNODE_EPMD_H
#define PLEXUS_CNODE_EPMD_H

#include <stddef.h>

/* Connect failure kinds, worst last (for the start-up exit code, peer.c). */
enum {
    CN_ERR_NONE = 0,
    CN_ERR_BAD_NAME,
    CN_ERR_HOST,     /* host name does not resolve */
    CN_ERR_NO_EPMD,  /* no epmd on the node's host */
    CN_ERR_NO_NODE,  /* epmd does not know the node */
    CN_ERR_CONNECT,  /* TCP connect to the node failed or timed out */
    CN_ERR_HANDSHAKE /* the node refused the handshake (wrong cookie?) */
};

struct in_addr;
int cn_resolve(const char *host, struct in_addr *out);
/* PORT_PLEASE2; 0 ok, else CN_ERR_NO_EPMD / CN_ERR_NO_NODE (msg filled). */
int cn_epmd_port(const struct in_addr *addr, const char *alive, unsigned tmo_ms, int *port,
                 char *msg, size_t msglen);
/* NAMES; 0 ok with a malloc'd array of malloc'd names. */
int cn_epmd_names(const struct in_addr *addr, unsigned tmo_ms, char ***names, size_t *n);

#endif
