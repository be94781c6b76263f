/*
 * plexus_cnode: start-up, shutdown and exit codes, and the wiring of the layers: the
 * upcalls the lower modules make through struct cnode (state.h) are installed here.
 * The map of files and layers: doc/DESIGN.md §4.
 *
 * Order matters: the cookie is read and handed to ei (then wiped), the node listens and
 * registers with epmd (ei_publish; creation comes from epmd) before any connection is
 * made, the connector threads copy the finished ei_cnode, and only then does the loop
 * run. The gossip and registry sockets (--gossip, --registry) are opened before all
 * that, so a bad secret or a taken port stops the start-up before epmd hears of us.
 * Shutdown (SIGTERM/SIGINT) undoes it in reverse: a last gossip beacon marked leaving,
 * threads joined, connections closed, epmd registration dropped, every secret wiped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cnode/accept.h"
#include "cnode/clock.h"
#include "cnode/config.h"
#include "cnode/connector.h"
#include "cnode/epmd.h"
#include "cnode/event.h"
#include "cnode/exit.h"
#include "cnode/gossip.h"
#include "cnode/log.h"
#include "cnode/loop.h"
#include "cnode/out.h"
#include "cnode/peer.h"
#include "cnode/registry_host.h"
#include "cnode/router.h"
#include "cnode/secrets.h"
#include "cnode/server.h"
#include "cnode/state.h"
#include "plexus/health.h"
#include "plexus/system_alloc.h"

/* The event sink (event.h): every event, written once by its producer, goes to both
 * consumers, the lines on stdout and the Erlang subscribers. */
static void deliver_event(cnode *cn, const cn_event *ev)
{
    cn_out_on_event(cn, ev);
    cn_server_on_event(cn, ev);
}

/* The stats provider (counters.h): gathers every module's counters for the two
 * outputs, `stats` (server.c) and the "stopped" line (out.c). */
static void collect_stats(const cnode *cn, cn_stats *s)
{
    cn_accept_counters(cn, &s->io);
    cn_counters_add(&s->io, "peers_refused", cn->peers_refused);
    cn_out_counters(&s->io);
    s->gossip = cn->gossip != NULL;
    s->registry = cn->registry != NULL;
    cn_gossip_counters(cn, &s->gossip_counters);
    cn_registry_counters(cn, &s->registry_counters);
}

/* Why did ei_publish fail? Asks the local epmd directly. */
static void explain_publish_failure(const cnode *cn)
{
    struct in_addr lo;
    inet_pton(AF_INET, "127.0.0.1", &lo);
    const char *ea = getenv("ERL_EPMD_ADDRESS");
    if (ea && strchr(ea, '.') && !strchr(ea, ',')) inet_pton(AF_INET, ea, &lo);
    char msg[200];
    int port;
    int e = cn_epmd_port(&lo, cn->cfg.alive, 2000, &port, msg, sizeof msg);
    if (e == CN_ERR_NO_EPMD)
        cn_log("cannot register with epmd: %s; start it with `epmd -daemon`", msg);
    else if (e == 0)
        cn_log("cannot register with epmd: the name '%s' is taken on this host", cn->cfg.alive);
    else
        cn_log("cannot register with epmd (%s)", msg);
}

static int setup(cnode *cn)
{
    char *cookie = NULL;
    int rc = cn_cookie_load(&cn->cfg, &cookie);
    if (rc) return rc;
    if (ei_init() != 0) {
        sodium_free(cookie);
        cn_log("ei_init failed");
        return CN_EXIT_FAILURE;
    }
    cn->ec = sodium_malloc(sizeof *cn->ec);
    if (!cn->ec) {
        sodium_free(cookie);
        return CN_EXIT_FAILURE;
    }
    memset(cn->ec, 0, sizeof *cn->ec);
    struct in_addr addr;
    addr.s_addr = htonl(INADDR_ANY);
    if (cn->cfg.listen_addr) {
        if (inet_pton(AF_INET, cn->cfg.listen_addr, &addr) != 1) {
            sodium_free(cookie);
            cn_log("--listen wants an IPv4 address, got '%s'", cn->cfg.listen_addr);
            return CN_EXIT_USAGE;
        }
    } else if (inet_pton(AF_INET, cn->cfg.host, &addr) != 1) {
        addr.s_addr = htonl(INADDR_ANY);
    }
    int r = ei_connect_xinit(cn->ec, cn->cfg.host, cn->cfg.alive, cn->cfg.node, &addr, cookie, 0);
    sodium_free(cookie); /* ei keeps its copy inside cn->ec, itself sodium_malloc'd */
    if (r < 0) {
        cn_log("ei_connect_xinit failed for %s", cn->cfg.node);
        return CN_EXIT_FAILURE;
    }
    int port = 0;
    cn->listen_fd = ei_xlisten(cn->ec, &addr, &port, 128);
    if (cn->listen_fd < 0) {
        cn_log("cannot listen on %s: %s", inet_ntoa(addr), strerror(erl_errno));
        return CN_EXIT_EPMD;
    }
    cn->listen_port = port;
    cn->epmd_fd = ei_publish_tmo(cn->ec, port, 3000);
    if (cn->epmd_fd < 0) {
        explain_publish_failure(cn);
        return CN_EXIT_EPMD;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static cnode cn; /* zeroed; big (ei_x_buff, tables) and lives for the whole run */
    cn.listen_fd = cn.epmd_fd = cn.epfd = cn.sigfd = -1;
    cn.event_sink = deliver_event;
    cn.stats_provider = collect_stats;
    cn.packet_sink = cn_router_packet;
    cn.peer_gone = cn_server_peer_gone;
    int rc = cn_config_parse(&cn.cfg, argc, argv);
    if (rc) {
        cn_config_free(&cn.cfg);
        return rc < 0 ? CN_EXIT_OK : rc;
    }
    cn_log_set_verbose(cn.cfg.verbose);
    if (sodium_init() < 0) {
        fprintf(stderr, "plexus_cnode: libsodium failed to initialise\n");
        cn_config_free(&cn.cfg);
        return CN_EXIT_FAILURE;
    }
    randombytes_buf(cn.ref_secret, sizeof cn.ref_secret);
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    /* one fd per peer: make room for large clusters */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* gossip and registry first: a bad secret or a taken port fails before anything
     * is registered with epmd */
    if (cn.cfg.gossip && (rc = cn_gossip_start(&cn)) != 0) goto out;
    if (cn.cfg.registry && (rc = cn_registry_start(&cn)) != 0) goto out;
    rc = setup(&cn);
    if (rc) goto out;
    plexus_health_config hc = {cn.cfg.ping_interval_ms, cn.cfg.suspect_after_ms,
                               cn.cfg.down_after_ms};
    if (plexus_health_new(&hc, plexus_system_alloc(), &cn.health) != PLEXUS_OK ||
        ei_x_new(&cn.x) < 0) {
        rc = CN_EXIT_FAILURE;
        goto out;
    }
    /* Signals are blocked (for the signalfd) only now: until here SIGTERM keeps its
     * default action, so a start-up stuck on a slow file system or epmd still dies on
     * it. Before any thread starts: they inherit the mask. */
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    cn.epfd = epoll_create1(EPOLL_CLOEXEC);
    cn.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (cn.epfd < 0 || cn.sigfd < 0 || cn_pool_start(&cn, cn.cfg.connectors) != 0 ||
        cn_accept_start(&cn) != 0) {
        cn_log("cannot start: %s", strerror(errno));
        rc = CN_EXIT_FAILURE;
        goto out;
    }
    uint64_t now = cn_now_ms();
    for (size_t i = 0; i < cn.cfg.n_seeds; i++) {
        peer *p = cn_peer_add(&cn, cn.cfg.seeds[i], strlen(cn.cfg.seeds[i]), now);
        if (p && !p->seed) {
            p->seed = 1;
        } else if (!p) {
            /* our own name, or out of memory: not a seed we can join through */
            cn.seeds_reported++;
        }
    }
    cn_out_start(&cn);
    cn_out_ready(&cn, cn_gossip_port(&cn), cn_registry_port(&cn));
    rc = cn_loop_run(&cn);
    if (rc == CN_EXIT_OK) cn_out_stopped(&cn);
out:
    cn_out_finish(&cn, 1000); /* a reader that left: the last lines are not worth a hang */
    cn_gossip_stop(&cn);      /* a last beacon marked leaving, then keys wiped */
    cn_registry_stop(&cn);
    cn_accept_stop(&cn); /* before the pool: its handshakers push results there */
    cn_pool_stop(&cn);
    cn_peer_free_all(&cn);
    cn_server_free(&cn);
    if (cn.epmd_fd >= 0) close(cn.epmd_fd); /* epmd drops the registration */
    if (cn.listen_fd >= 0) close(cn.listen_fd);
    if (cn.epfd >= 0) close(cn.epfd);
    if (cn.sigfd >= 0) close(cn.sigfd);
    plexus_health_free(cn.health);
    if (cn.x.buff) ei_x_free(&cn.x);
    if (cn.ec) sodium_free(cn.ec); /* zeroes the cookie */
    cn_config_free(&cn.cfg);
    return rc;
}
