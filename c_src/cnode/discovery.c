/*
 * Learning and forgetting nodes.
 *
 * Sources: the seeds (kept for ever), the nodes that connect to us, erlang:nodes/0 asked
 * over rpc of a few connected nodes per round (round robin: the answer is the same
 * cluster view from any of them, so asking all 500 every round would be waste), and
 * the epmd NAMES of every host we know a node on. A node that is not connected, not a
 * seed, and has not been listed by any source for --forget-after-ms is forgotten: no
 * more reconnects, gone from snapshots.
 *
 * The rpc is what rpc:call sends to `rex` (kernel/src/rpc.erl):
 *   {'$gen_call', {Self, Ref}, {call, erlang, nodes, [], user}}   ->   {Ref, [Node]}
 */
#include <stdlib.h>
#include <string.h>

#include "cnode/discovery.h"
#include "cnode/connector.h"
#include "cnode/log.h"
#include "cnode/msg.h"
#include "cnode/peer.h"
#include "cnode/state.h"

#define RPC_PER_ROUND 3
#define HOSTS_PER_ROUND 64

static void forget(cnode *cn, uint64_t now);

static void send_rpc_nodes(cnode *cn, peer *p, uint64_t now)
{
    erlang_ref ref;
    cn_make_ref(cn, &ref, 2, ++cn->ref_seq);
    ei_x_buff *x = &cn->x;
    if (cn_packet_reg_send(x, ei_self(cn->ec), "rex") < 0 || ei_x_encode_tuple_header(x, 3) < 0 ||
        ei_x_encode_atom(x, "$gen_call") < 0 || ei_x_encode_tuple_header(x, 2) < 0 ||
        ei_x_encode_pid(x, ei_self(cn->ec)) < 0 || ei_x_encode_ref(x, &ref) < 0 ||
        ei_x_encode_tuple_header(x, 5) < 0 || ei_x_encode_atom(x, "call") < 0 ||
        ei_x_encode_atom(x, "erlang") < 0 || ei_x_encode_atom(x, "nodes") < 0 ||
        ei_x_encode_empty_list(x) < 0 || ei_x_encode_atom(x, "user") < 0)
        return;
    (void)cn_peer_send(cn, p, x, now);
}

void cn_discovery_round(cnode *cn, uint64_t now)
{
    if (cn->cfg.rpc_scan && cn->n_peers > 0) {
        int sent = 0;
        for (size_t k = 0; k < cn->n_peers && sent < RPC_PER_ROUND; k++) {
            peer *p = cn->peers[(cn->rpc_rr + k) % cn->n_peers];
            if (p->state != PS_UP) continue;
            send_rpc_nodes(cn, p, now);
            sent++;
        }
        cn->rpc_rr = (cn->rpc_rr + 1) % cn->n_peers;
    }
    if (cn->cfg.epmd_scan) {
        const char *hosts[HOSTS_PER_ROUND];
        size_t nh = 0;
        for (size_t i = 0; i < cn->n_peers && nh < HOSTS_PER_ROUND; i++) {
            const char *h = strchr(cn->peers[i]->name, '@') + 1;
            int dup = 0;
            for (size_t j = 0; j < nh && !dup; j++)
                dup = strcmp(hosts[j], h) == 0;
            if (!dup) hosts[nh++] = h;
        }
        for (size_t j = 0; j < nh; j++)
            (void)cn_pool_submit(cn, CN_JOB_NAMES, hosts[j], 0);
    }
    forget(cn, now);
}

static peer *learn(cnode *cn, const char *node, size_t len, uint64_t now)
{
    peer *p = cn_peer_add(cn, node, len, now);
    if (p) p->seen_ms = now;
    return p;
}

void cn_discovery_names(cnode *cn, cn_result *r, uint64_t now)
{
    char node[CN_NODE_MAX + 1];
    for (size_t i = 0; i < r->n_names; i++) {
        int n = snprintf(node, sizeof node, "%s@%s", r->names[i], r->node);
        if (n <= 0 || (size_t)n >= sizeof node) continue;
        learn(cn, node, (size_t)n, now);
    }
}

typedef struct rpc_ctx {
    cnode *cn;
    uint64_t now;
} rpc_ctx;

static void learn_atom(void *ctx, const char *name, size_t n)
{
    rpc_ctx *c = ctx;
    /* a node a connected node is connected to is vouched for (the connectors' fast
     * lane); an epmd name is only a claim */
    peer *p = learn(c->cn, name, n, c->now);
    if (p) p->known = 1;
}

void cn_discovery_rpc_reply(cnode *cn, const char *term, int len, uint64_t now)
{
    rpc_ctx c = {cn, now};
    if (cn_msg_atom_list(term, len, learn_atom, &c) != 0)
        cn_debug("rpc erlang:nodes/0 answered something else than a list");
}

static void forget(cnode *cn, uint64_t now)
{
    for (size_t i = cn->n_peers; i-- > 0;) {
        peer *p = cn->peers[i];
        if (p->state != PS_IDLE || p->seed) continue;
        if (now - p->seen_ms > cn->cfg.forget_after_ms) cn_peer_remove(cn, p);
    }
}
