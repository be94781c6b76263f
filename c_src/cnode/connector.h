/*
 * Connector threads of plexus_cnode (connector.c): blocking ei handshakes and epmd
 * queries off the loop; finished work comes back through a queue and a wake-up pipe.
 */
#ifndef PLEXUS_CNODE_CONNECTOR_H
#define PLEXUS_CNODE_CONNECTOR_H

#include <stddef.h>

#include "cnode/msg.h" /* CN_NODE_MAX */
#include "cnode/state.h"

enum { CN_JOB_CONNECT = 1, CN_JOB_NAMES = 2, CN_RES_ACCEPT = 3 };

typedef struct cn_result {
    int kind;
    char node[CN_NODE_MAX + 1]; /* CONNECT/ACCEPT: the node; NAMES: the host */
    int fd;                     /* CONNECT ok / ACCEPT */
    int err;                    /* CN_ERR_* (epmd.h) */
    char msg[200];
    char **names; /* NAMES: alive names (malloc'd) */
    size_t n_names;
    struct cn_result *next;
} cn_result;

/* Starts n connector threads; -1 on failure. */
int cn_pool_start(cnode *cn, int n);
/* Fd that becomes readable when results are ready. */
int cn_pool_wake_fd(const cnode *cn);
/* known: a seed or a node that was connected once (its own queue, served first). */
int cn_pool_submit(cnode *cn, int kind, const char *target, int known);
/* Takes every finished result (a list; free each with cn_result_free). */
cn_result *cn_pool_take(cnode *cn);
void cn_result_free(cn_result *r);
/* Stops and joins the threads; closes fds of results never taken. */
void cn_pool_stop(cnode *cn);
/* A finished result from another thread (accept.c): queued for the loop. */
void cn_pool_push(cnode *cn, cn_result *r);

#endif
