/*
 * priv/plexus_cnode: a hidden Erlang node (erl_interface/ei) that watches a whole
 * cluster (doc/DESIGN.md §4). Internal header shared by the files of the daemon, one
 * concern each:
 *
 *   main.c       start-up, shutdown, exit codes
 *   config.c     the command line (cn_config)
 *   secrets.c    the cookie and the gossip secret (sodium_malloc'd, wiped after use)
 *   loop.c       the single-threaded event loop (epoll + signalfd) and its timers
 *   peer.c       the peer table, framed non-blocking I/O, pings, ticks, backoff
 *                (transport only: packets go up through packet_sink)
 *   router.c     what a decoded packet means: ping/rpc/check replies, the rest to server.c
 *   connector.c  the connector threads (blocking ei handshakes, epmd queries); finished
 *                work comes back to the loop through a pipe
 *   accept.c     incoming connections: a bounded gate, then handshakes with a deadline
 *   epmd.c       the epmd client (PORT_PLEASE2, NAMES) with timeouts
 *   discovery.c  learning nodes (rpc erlang:nodes/0, epmd names) and forgetting them
 *   msg.c        validating decoder of incoming packets, packet encoders (msg.h)
 *   server.c     the registered process `plexus_cnode`: subscribe, gen_server calls
 *   out.c        event output: JSON lines (jansson) or text
 *   udp.c        UDP sockets and addresses for gossip and the registry
 *   gossip.c     --gossip: sealed beacons (core beacon.c) sent and received, gossip peers
 *   registry_host.c  --registry: the TTL registry server (core registry.c) on UDP
 *   event.h      the one event sink main.c installs; out.c and server.c consume events
 *   clock.c, log.c  leaves: the time and stderr diagnostics (no calls into other files)
 *   backoff.c    leaf: the reconnect backoff (doubling up to --max-backoff-ms)
 *
 * Calls go down only (test/cnode_layers.sh checks there is no circle). Today's layers:
 * main -> {loop, router} -> server -> out (stats of the others) -> {accept, discovery}
 * -> {connector, gossip} -> {epmd, peer, registry_host} -> {clock, log, backoff, msg,
 * udp, config}. Upward needs go through the pointers main.c installs in cnode
 * (event_sink, packet_sink, peer_gone).
 *
 * Threads: all peer state belongs to the loop thread. Connector threads only run
 * handshakes and epmd queries on their own copy of the ei_cnode and hand back fds and
 * names; they never touch a peer.
 */
#ifndef PLEXUS_CNODE_H
#define PLEXUS_CNODE_H

#include <ei.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cnode/clock.h"
#include "cnode/event.h"
#include "cnode/log.h"
#include "cnode/msg.h"
#include "plexus/system_alloc.h" /* the heap the C node hands the core */
#include "plexus/beacon.h"
#include "plexus/disco.h"
#include "plexus/health.h"
#include "plexus/registry.h"

/* Exit codes (README "The C node"). */
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
    uint32_t gossip_interval_ms, gossip_peer_timeout_ms, gossip_max_senders;
    /* --registry (registry_host.c) */
    int registry;
    uint16_t registry_port;    /* 45893; 0 picks one */
    const char *registry_addr; /* bind address, "0.0.0.0" */
    int registry_require_signed;
    const char **registry_trusted; /* hex Ed25519 public keys */
    size_t n_registry_trusted;
    const char **registry_server_addrs; /* what the Handshake lists; default "ADDR:PORT" */
    size_t n_registry_server_addrs;
    uint32_t registry_max_entries, registry_default_ttl_ms, registry_min_ttl_ms,
        registry_max_ttl_ms;
} cn_config;

typedef enum peer_state { PS_IDLE = 0, PS_CONNECTING, PS_UP } peer_state;

#define CN_PING_SLOTS 8

typedef struct peer {
    char name[CN_NODE_MAX + 1];
    size_t name_len;
    peer_state state;
    int fd;
    int seed;
    int known;        /* connected once, or listed by a connected node's nodes():
                        the connectors' fast lane (connector.c) */
    int in_health;    /* the detector knows it */
    int reported;     /* the first connect result was reported (seeds) */
    int last_err;     /* kind of the last failure, to log changes only */
    int broken;       /* a send failed: the loop closes it (cn_peer_reap) */
    uint64_t seen_ms; /* last time a source listed it or it was connected */
    uint64_t next_attempt_ms;
    uint32_t backoff_ms;
    /* framing */
    unsigned char *rbuf;
    size_t rlen, rcap;
    uint64_t skip; /* bytes left of an oversized packet being skipped unread */
    unsigned char *wbuf;
    size_t wlen, woff, wcap;
    int epoll_out;
    uint64_t last_recv_ms, last_send_ms;
    /* pings in flight: slot seq % CN_PING_SLOTS */
    uint32_t ping_seq;
    uint32_t slot_seq[CN_PING_SLOTS];
    uint64_t slot_sent_us[CN_PING_SLOTS];
} peer;

/* Subscribers of the registered process (server.c, core subs.c). */
#define CN_MAX_SUBSCRIBERS_DEFAULT 65536u
#define CN_MAX_SUBSCRIBERS_CAP (1u << 24)

struct cn_pool;
struct cn_server;
struct cn_accept;
struct cn_gossip;
struct cn_registry;

typedef struct cnode {
    cn_config cfg;
    ei_cnode *ec; /* sodium_malloc'd: it holds the cookie */
    int listen_fd, listen_port, epmd_fd;
    int epfd, sigfd;
    struct cn_pool *pool;
    struct cn_accept *acceptor;
    struct cn_gossip *gossip;     /* NULL without --gossip */
    struct cn_registry *registry; /* NULL without --registry */
    plexus_health *health;
    peer **peers;
    size_t n_peers, cap_peers;
    struct cn_server *server;    /* subscribers; made on the first subscribe */
    cn_event_sink_fn event_sink; /* installed by main.c; every event goes up through it */
    /* upcalls of the transport (peer.c), installed by main.c: a complete packet
     * (router.c) and a closed connection (server.c drops the peer's monitors) */
    void (*packet_sink)(struct cnode *cn, struct peer *p, const unsigned char *buf, size_t len,
                        uint64_t now);
    void (*peer_gone)(struct cnode *cn, const struct peer *p);
    uint64_t next_ping_ms, next_discovery_ms;
    size_t rpc_rr;
    uint32_t ref_seq;
    ei_x_buff x; /* scratch for outgoing packets (loop thread only) */
    /* counters */
    uint64_t packets, malformed, ignored, events;
    uint64_t oversize;      /* packets over CN_MAX_PACKET, skipped unread (peer.c) */
    uint64_t peers_refused; /* names not added: the peer table is full (--max-peers) */
    /* start-up: first results of the seeds */
    size_t seeds_reported;
    int seed_ok, seed_handshake_failed;
    int stop, exit_code;
} cnode;

/* time: clock.h; diagnostics: log.h (leaf modules, no upward calls) */

/* Reports an event up to the sink main.c installed (event.h). */
static inline void cn_event_emit(cnode *cn, const cn_event *ev)
{
    if (cn->event_sink) cn->event_sink(cn, ev);
}

/* ---------------------------------------------------------------- config.c */
/* Parses argv into cfg; on error prints to stderr and returns CN_EXIT_USAGE; 0 ok;
 * -1 after --help. */
int cn_config_parse(cn_config *cfg, int argc, char **argv);
void cn_config_free(cn_config *cfg);

/* ---------------------------------------------------------------- secrets.c */
/* Reads the cookie into a sodium_malloc'd buffer (*out, NUL-terminated); the caller
 * wipes and frees it with sodium_free. 0 or CN_EXIT_COOKIE (message printed). */
int cn_cookie_load(const cn_config *cfg, char **out);
/* Reads the gossip secret (--gossip-secret-file, else $PLEXUS_GOSSIP_SECRET) into a
 * sodium_malloc'd buffer (*out, *len bytes); the caller frees it with sodium_free.
 * 0 or CN_EXIT_SECRET (message printed). */
int cn_gossip_secret_load(const cn_config *cfg, uint8_t **out, size_t *len);
void cn_usage(FILE *f);

/* ---------------------------------------------------------------- peer.c */
peer *cn_peer_find(cnode *cn, const char *name, size_t len);
/* Finds or adds (state idle, first attempt now). NULL on OOM or a bad name. */
peer *cn_peer_add(cnode *cn, const char *name, size_t len, uint64_t now);
void cn_peer_remove(cnode *cn, peer *p);
void cn_peer_free_all(cnode *cn);
/* A finished connection (outgoing or accepted) for node; takes ownership of fd. */
void cn_peer_connected(cnode *cn, const char *node, int fd, uint64_t now);
/* A failed attempt: schedules the next with backoff. */
void cn_peer_connect_failed(cnode *cn, peer *p, int err_kind, const char *msg, uint64_t now);
/* Closes the connection (if up) and reports node_down for reason. */
void cn_peer_close(cnode *cn, peer *p, plexus_health_reason reason, uint64_t now);
/* epoll readiness on the peer's fd. */
void cn_peer_io(cnode *cn, peer *p, uint32_t events, uint64_t now);
/* Finishes the packet in x (cn_packet_finish) and queues it on the peer. 0 ok. */
int cn_peer_send(cnode *cn, peer *p, ei_x_buff *x, uint64_t now);
void cn_peer_ping_all(cnode *cn, uint64_t now);
void cn_peer_reap(cnode *cn, uint64_t now);
void cn_peer_check_ticks(cnode *cn, uint64_t now);
/* Makes one of our references: kind 1 ping, 2 rpc, 4 subscriber liveness check. */
void cn_make_ref(cnode *cn, erlang_ref *ref, unsigned kind, uint32_t seq);
int cn_ref_is_ours(const cnode *cn, const erlang_ref *ref, unsigned *kind, uint32_t *seq);
/* The detector's events go through here: output + subscribers. */
void cn_health_emit(void *ctx, const plexus_health_event *ev);

/* ---------------------------------------------------------------- connector.c */
enum { CN_JOB_CONNECT = 1, CN_JOB_NAMES = 2, CN_RES_ACCEPT = 3 };
/* Connect failure kinds, worst last (for the start-up exit code). */
enum {
    CN_ERR_NONE = 0,
    CN_ERR_BAD_NAME,
    CN_ERR_HOST,     /* host name does not resolve */
    CN_ERR_NO_EPMD,  /* no epmd on the node's host */
    CN_ERR_NO_NODE,  /* epmd does not know the node */
    CN_ERR_CONNECT,  /* TCP connect to the node failed or timed out */
    CN_ERR_HANDSHAKE /* the node refused the handshake (wrong cookie?) */
};

typedef struct cn_result {
    int kind;
    char node[CN_NODE_MAX + 1]; /* CONNECT/ACCEPT: the node; NAMES: the host */
    int fd;                     /* CONNECT ok / ACCEPT */
    int err;                    /* CN_ERR_* */
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

/* ---------------------------------------------------------------- accept.c */
/* Connections held before and during their handshake; beyond it the oldest one that
 * has not sent its name yet is dropped. */
#define CN_ACCEPT_PENDING_MAX 256
#define CN_HANDSHAKERS 4
/* The gate and handshake threads on listen_fd (after ei_publish: creation known). */
int cn_accept_start(cnode *cn);
void cn_accept_stop(cnode *cn);
typedef struct cn_accept_stats {
    uint64_t accepted, handshakes, failed, timeouts, dropped, pending;
} cn_accept_stats;
void cn_accept_get_stats(const cnode *cn, cn_accept_stats *s);

/* ---------------------------------------------------------------- epmd.c */
struct in_addr;
int cn_resolve(const char *host, struct in_addr *out);
/* PORT_PLEASE2; 0 ok, else CN_ERR_NO_EPMD / CN_ERR_NO_NODE (msg filled). */
int cn_epmd_port(const struct in_addr *addr, const char *alive, unsigned tmo_ms, int *port,
                 char *msg, size_t msglen);
/* NAMES; 0 ok with a malloc'd array of malloc'd names. */
int cn_epmd_names(const struct in_addr *addr, unsigned tmo_ms, char ***names, size_t *n);

/* ---------------------------------------------------------------- discovery.c */
void cn_discovery_round(cnode *cn, uint64_t now);
void cn_discovery_names(cnode *cn, cn_result *r, uint64_t now);
void cn_discovery_rpc_reply(cnode *cn, const char *term, int len, uint64_t now);
void cn_discovery_forget(cnode *cn, uint64_t now);

/* ---------------------------------------------------------------- router.c */
/* One complete packet from a peer: decoded, then handed to whoever it is for. */
void cn_router_packet(cnode *cn, peer *p, const unsigned char *buf, size_t len, uint64_t now);

/* ---------------------------------------------------------------- server.c */
void cn_server_handle(cnode *cn, peer *from, const cn_msg *m, uint64_t now);
void cn_server_answer(cnode *cn, const peer *p, uint32_t rtt_us);
/* Starts the due subscriber liveness checks; lowers *next to the next one. */
void cn_server_tick(cnode *cn, uint64_t now, uint64_t *next);
/* The answer to a liveness check (a ref of kind 4, sequence seq) from p. */
void cn_server_check_reply(cnode *cn, const peer *p, uint32_t seq, const char *term, int len,
                           uint64_t now);
/* A peer went away: drop its node's subscribers. */
void cn_server_peer_gone(cnode *cn, const peer *p);
void cn_server_free(cnode *cn);
/* A gossip or registry event to the subscribers that asked for `discovery`. */
/* Event consumer: sends the event to the subscribers that asked for it. */
void cn_server_on_event(cnode *cn, const cn_event *ev);

/* ---------------------------------------------------------------- out.c */
/* Bound of the stdout buffer: lines that do not fit are dropped and counted. */
#define CN_OUT_MAX_BYTES (1u << 20)
/* Makes stdout non-blocking when it is a pipe or a socket (before any output). */
void cn_out_start(cnode *cn);
/* Output waits in the buffer: the loop watches stdout for EPOLLOUT. */
int cn_out_pending(const cnode *cn);
/* stdout is writable: writes what waits (then an output_dropped line if lines were lost). */
void cn_out_writable(cnode *cn);
/* At exit: waits at most tmo_ms for the buffer to drain, then frees it. */
void cn_out_finish(cnode *cn, unsigned tmo_ms);
typedef struct cn_out_stats {
    uint64_t lines, dropped, buffered;
} cn_out_stats;
void cn_out_get_stats(const cnode *cn, cn_out_stats *st);
/* The daemon's own defences, counted (`stats` -> io, "stopped" -> io; README "The C
 * node", behaviour under attack). */
enum {
    CN_IO_ACCEPTED = 0,    /* TCP connections accepted on the distribution port */
    CN_IO_HANDSHAKES,      /* of those, handshakes completed */
    CN_IO_HS_FAILED,       /* refused: garbage, wrong cookie, closed early */
    CN_IO_HS_TIMEOUTS,     /* no complete handshake within --handshake-timeout-ms */
    CN_IO_ACCEPT_DROPPED,  /* pending handshakes full: the oldest was dropped */
    CN_IO_PENDING,         /* handshakes in progress now */
    CN_IO_PEERS_REFUSED,   /* names learned but not added: peer table full */
    CN_IO_OUTPUT_LINES,    /* lines written (or queued) on stdout */
    CN_IO_OUTPUT_DROPPED,  /* lines dropped: stdout not read and the buffer full */
    CN_IO_OUTPUT_BUFFERED, /* bytes waiting for stdout now */
    CN_IO_STATS_N
};
typedef struct cn_io_stats {
    uint64_t v[CN_IO_STATS_N];
} cn_io_stats;
extern const char *const cn_io_stats_names[CN_IO_STATS_N];
void cn_io_get_stats(const cnode *cn, cn_io_stats *s);
/* Event consumer: one JSON (or text) line on stdout. */
void cn_out_on_event(cnode *cn, const cn_event *ev);
void cn_out_ready(cnode *cn);
void cn_out_stopped(cnode *cn);

/* ---------------------------------------------------------------- udp.c */
struct sockaddr_in;
/* "IPv4" -> address; -1 if it is not a dotted IPv4 address. */
int cn_udp_addr(const char *s, struct sockaddr_in *out, uint16_t port);
/* "HOST:PORT" (IPv4 address or a name, resolved now: call before the loop runs). */
int cn_udp_host_port(const char *s, struct sockaddr_in *out);
/* "IP:PORT" of an address, into buf (at least CN_UDP_ADDR_STR bytes). */
#define CN_UDP_ADDR_STR 24
void cn_udp_format(const struct sockaddr_in *a, char *buf);
/* A non-blocking, close-on-exec UDP socket with SO_REUSEADDR and a 1 MB receive
 * buffer, bound to bind; -1 with errno set. */
int cn_udp_open(const struct sockaddr_in *bind_to);
/* The port a socket is bound to, 0 on error. */
uint16_t cn_udp_port(int fd);

/* ---------------------------------------------------------------- gossip.c */
/* Secret, codec, socket; before the loop. 0 or an exit code (message printed). */
int cn_gossip_start(cnode *cn);
/* Sends a last beacon marked leaving, then frees everything (keys wiped). */
void cn_gossip_stop(cnode *cn);
int cn_gossip_fd(const cnode *cn);
uint16_t cn_gossip_port(const cnode *cn);
/* Sends the beacon when due, expires silent peers; lowers *next to its next deadline. */
void cn_gossip_tick(cnode *cn, uint64_t now, uint64_t *next);
/* The socket is readable: opens a bounded number of datagrams. */
void cn_gossip_readable(cnode *cn, uint64_t now);
typedef struct cn_gossip_stats {
    plexus_beacon_counters beacons; /* the codec's counters */
    uint64_t peers, sent, send_errors, received, dropped_self;
    uint16_t port;
} cn_gossip_stats;
void cn_gossip_get_stats(const cnode *cn, cn_gossip_stats *s);
/* [#{node, source, metadata, incarnation, last_seen_ms}] (Erlang term). */
int cn_gossip_encode_peers(const cnode *cn, ei_x_buff *x, uint64_t now);

/* ---------------------------------------------------------------- registry_host.c */
int cn_registry_start(cnode *cn);
void cn_registry_stop(cnode *cn);
int cn_registry_fd(const cnode *cn);
uint16_t cn_registry_port(const cnode *cn);
/* Evicts expired entries once a second; lowers *next. */
void cn_registry_tick(cnode *cn, uint64_t now, uint64_t *next);
void cn_registry_readable(cnode *cn, uint64_t now);
typedef struct cn_registry_stats {
    plexus_registry_stats table; /* the core's counters */
    uint64_t datagrams, replies, send_errors;
    uint16_t port;
} cn_registry_stats;
void cn_registry_get_stats(const cnode *cn, cn_registry_stats *s);
/* [#{peer, addrs, metadata, ttl_ms}] (Erlang term, as plexus_registry:current_view/1):
 * at most max entries (a random sample when the table holds more) and about
 * CN_VIEW_BYTES of terms. */
#define CN_VIEW_MAX_DEFAULT 10000
#define CN_VIEW_BYTES (1u << 20)
int cn_registry_encode_view(cnode *cn, ei_x_buff *x, size_t max);

/* ---------------------------------------------------------------- loop.c */
int cn_loop_run(cnode *cn);

#endif
