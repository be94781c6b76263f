/*
 * The event loop: one thread, one epoll set, no blocking call (doc/STYLE.md habit 9).
 *
 * Watched: every connected peer's socket, the connector pool's wake-up pipe, a
 * signalfd for SIGTERM/SIGINT/SIGHUP, the gossip and registry UDP sockets when
 * those run, and stdout while lines wait for a slow reader (out.c). Timers are plain deadlines
 * checked each turn: the ping round (every
 * --ping-interval-ms), the discovery round, reconnect attempts, the failure detector's
 * next deadline, the next beacon and gossip peer expiry, and the registry's eviction
 * round, so `suspect` and `node_down` fire on time even when nothing arrives. Every turn does a
 * bounded amount of work per peer (reads are capped per wake-up), so one chatty or stuck peer
 * cannot starve the others.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cnode/loop.h"
#include "cnode/backoff.h"
#include "cnode/clock.h"
#include "cnode/connector.h"
#include "cnode/discovery.h"
#include "cnode/exit.h"
#include "cnode/gossip.h"
#include "cnode/log.h"
#include "cnode/out.h"
#include "cnode/peer.h"
#include "cnode/registry_host.h"
#include "cnode/server.h"
#include "cnode/state.h"
#include "plexus/health.h"

/* epoll data for the non-peer fds */
static char tag_wake, tag_sig, tag_stdin, tag_stdout, tag_gossip, tag_registry;

/* stdout is watched for EPOLLOUT only while output waits in out.c's buffer. */
static void watch_stdout(cnode *cn, int *watched)
{
    int want = cn_out_pending(cn);
    if (want == *watched) return;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLOUT;
    ev.data.ptr = &tag_stdout;
    if (epoll_ctl(cn->epfd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, 1, &ev) == 0) *watched = want;
}

static int add_fd(cnode *cn, int fd, void *tag)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = tag;
    return epoll_ctl(cn->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void results(cnode *cn, uint64_t now)
{
    cn_result *r = cn_pool_take(cn);
    while (r) {
        cn_result *next = r->next;
        if (r->kind == CN_JOB_NAMES) {
            cn_discovery_names(cn, r, now);
        } else if (r->kind == CN_RES_ACCEPT) {
            cn_debug("accepted a connection from %s", r->node);
            cn_peer_connected(cn, r->node, r->fd, now);
        } else {
            peer *p = cn_peer_find(cn, r->node, strlen(r->node));
            switch (cn_attempt_result(p && p->state == PS_CONNECTING, r->fd >= 0)) {
            case CN_ATTEMPT_ADOPT:
                cn_peer_connected(cn, r->node, r->fd, now);
                break;
            case CN_ATTEMPT_FAILED:
                cn_peer_connect_failed(cn, p, r->err, r->msg, now);
                break;
            case CN_ATTEMPT_DISCARD:
                if (r->fd >= 0) ei_close_connection(r->fd);
                break;
            }
        }
        cn_result_free(r);
        r = next;
    }
}

static void start_attempts(cnode *cn, uint64_t now, uint64_t *next)
{
    for (size_t i = 0; i < cn->n_peers; i++) {
        peer *p = cn->peers[i];
        if (p->state != PS_IDLE) continue;
        if (p->next_attempt_ms <= now) {
            if (cn_pool_submit(cn, CN_JOB_CONNECT, p->name, p->seed || p->known) == 0)
                p->state = PS_CONNECTING;
        } else if (p->next_attempt_ms < *next) {
            *next = p->next_attempt_ms;
        }
    }
}

int cn_loop_run(cnode *cn)
{
    if (add_fd(cn, cn_pool_wake_fd(cn), &tag_wake) != 0 || add_fd(cn, cn->sigfd, &tag_sig) != 0) {
        cn_log("epoll: %s", strerror(errno));
        return CN_EXIT_FAILURE;
    }
    if (cn->cfg.stdin_eof && add_fd(cn, 0, &tag_stdin) != 0) {
        cn_log("cannot watch stdin: %s", strerror(errno));
        return CN_EXIT_FAILURE;
    }
    if ((cn->gossip && add_fd(cn, cn_gossip_fd(cn), &tag_gossip) != 0) ||
        (cn->registry && add_fd(cn, cn_registry_fd(cn), &tag_registry) != 0)) {
        cn_log("epoll (UDP sockets): %s", strerror(errno));
        return CN_EXIT_FAILURE;
    }
    uint64_t now = cn_now_ms();
    cn->next_ping_ms = now + cn->cfg.ping_interval_ms;
    cn->next_discovery_ms =
        now + (cn->cfg.discovery_interval_ms < 500 ? cn->cfg.discovery_interval_ms : 500);
    struct epoll_event evs[64];
    int stdout_watched = 0;
    while (!cn->stop) {
        now = cn_now_ms();
        uint64_t next = now + 1000;
        start_attempts(cn, now, &next);
        if (now >= cn->next_ping_ms) {
            cn_peer_ping_all(cn, now);
            cn_peer_check_ticks(cn, now);
            cn->next_ping_ms += cn->cfg.ping_interval_ms;
            if (cn->next_ping_ms <= now) cn->next_ping_ms = now + cn->cfg.ping_interval_ms;
        }
        if (now >= cn->next_discovery_ms) {
            cn_discovery_round(cn, now);
            cn->next_discovery_ms = now + cn->cfg.discovery_interval_ms;
        }
        plexus_health_tick(cn->health, now, cn_health_emit, cn);
        cn_gossip_tick(cn, now, &next);
        cn_registry_tick(cn, now, &next);
        cn_server_tick(cn, now, &next);
        cn_peer_reap(cn, now);
        if (cn->stop) break;
        uint64_t hd = plexus_health_next_deadline(cn->health);
        if (cn->next_ping_ms < next) next = cn->next_ping_ms;
        if (cn->next_discovery_ms < next) next = cn->next_discovery_ms;
        if (hd < next) next = hd;
        watch_stdout(cn, &stdout_watched);
        int timeout = next > now ? (int)(next - now) : 0;
        int n = epoll_wait(cn->epfd, evs, 64, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            cn_log("epoll_wait: %s", strerror(errno));
            return CN_EXIT_FAILURE;
        }
        now = cn_now_ms();
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &tag_sig) {
                struct signalfd_siginfo si;
                if (read(cn->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
                    cn_debug("signal %u: shutting down", si.ssi_signo);
                    cn->stop = 1;
                }
            } else if (tag == &tag_stdin) {
                char buf[512];
                ssize_t r = read(0, buf, sizeof buf);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    cn_debug("stdin closed: shutting down");
                    (void)epoll_ctl(cn->epfd, EPOLL_CTL_DEL, 0, NULL);
                    cn->stop = 1;
                }
            } else if (tag == &tag_stdout) {
                cn_out_writable(cn);
            } else if (tag == &tag_wake) {
                results(cn, now);
            } else if (tag == &tag_gossip) {
                cn_gossip_readable(cn, now);
            } else if (tag == &tag_registry) {
                cn_registry_readable(cn, now);
            } else {
                cn_peer_io(cn, (peer *)tag, evs[i].events, now);
            }
        }
        cn_peer_reap(cn, now);
    }
    if (stdout_watched) (void)epoll_ctl(cn->epfd, EPOLL_CTL_DEL, 1, NULL);
    return cn->exit_code;
}
