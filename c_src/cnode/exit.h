/*
 * Exit codes of plexus_cnode (README "The C node"): a leaf header. The modules that
 * find the reason to stop (config.c, secrets.c, peer.c, gossip.c, registry_host.c)
 * return these, main.c exits with them.
 */
#ifndef PLEXUS_CNODE_EXIT_H
#define PLEXUS_CNODE_EXIT_H

enum {
    CN_EXIT_OK = 0,        /* clean shutdown (SIGTERM / SIGINT) */
    CN_EXIT_FAILURE = 1,   /* internal error (out of memory, a system call failed) */
    CN_EXIT_USAGE = 2,     /* bad command line */
    CN_EXIT_COOKIE = 3,    /* no usable cookie (missing, empty, too long, mode too open) */
    CN_EXIT_EPMD = 4,      /* cannot listen or register with the local epmd */
    CN_EXIT_SEEDS = 5,     /* no seed reachable (unknown node or host, no epmd there) */
    CN_EXIT_HANDSHAKE = 6, /* every seed refused the handshake (wrong cookie?) */
    CN_EXIT_SECRET = 7,    /* --gossip without a usable secret (missing, short, mode too open) */
    CN_EXIT_UDP = 8        /* cannot open the gossip or registry UDP socket (port taken?) */
};

#endif
