/*
 * Connector threads.
 *
 * ei's handshakes block (ei_connect, ei_accept), and a frozen node accepts the TCP
 * connection then never answers, so the event loop never runs one: the loop queues a
 * job, a connector thread runs it against its own copy of the ei_cnode, and the result
 * (an fd, or a classified error) comes back on a queue whose arrival is signalled by a
 * byte on a pipe the loop polls. A stuck handshake costs one connector thread for at
 * most --connect-timeout-ms and nothing else (incoming connections: accept.c).
 *
 * Two queues, so names nobody vouches for cannot delay a node that matters (issue 8:
 * 200 names squatted in epmd, pointing at a port that accepts and never answers,
 * delayed a restarted node's node_up by 248 s): jobs for known nodes (seeds, nodes
 * that were connected once) go first, and thread 0 takes nothing else, so one of them
 * starts within one attempt's deadline whatever the other queue holds. Epmd NAMES
 * scans (at its head) and never-connected names share the other queue, one job per
 * target.
 *
 * Ownership: a job belongs to the queue until a thread takes it; a result belongs to
 * the queue until cn_pool_take hands the list to the loop, which frees each one.
 * The ei_cnode copies live in sodium_malloc'd memory because they hold the cookie, and
 * are wiped by sodium_free.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cnode/connector.h"
#include "cnode/epmd.h"
#include "cnode/msg.h"
#include "cnode/state.h"

typedef struct cn_job {
    int kind;
    char target[CN_NODE_MAX + 1];
    struct cn_job *next;
} cn_job;

typedef struct job_queue {
    cn_job *head, *tail;
    size_t n;
} job_queue;

struct cn_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job_queue known, other;
    cn_result *results, *results_tail;
    int pipe_r, pipe_w;
    int stop;
    int n_threads;
    pthread_t threads[64];
    ei_cnode *ecs[64]; /* one per thread */
    unsigned connect_tmo;
};

typedef struct thread_arg {
    cnode *cn;
    ei_cnode *ec;
    int known_only; /* the lane kept for known nodes */
} thread_arg;

static void q_push(job_queue *q, cn_job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->n++;
}

static void q_push_front(job_queue *q, cn_job *j)
{
    j->next = q->head;
    q->head = j;
    if (!q->tail) q->tail = j;
    q->n++;
}

static cn_job *q_pop(job_queue *q)
{
    cn_job *j = q->head;
    if (!j) return NULL;
    q->head = j->next;
    if (!q->head) q->tail = NULL;
    q->n--;
    return j;
}

static int q_has(const job_queue *q, int kind, const char *target)
{
    for (const cn_job *j = q->head; j; j = j->next)
        if (j->kind == kind && strcmp(j->target, target) == 0) return 1;
    return 0;
}

static void q_free(job_queue *q)
{
    cn_job *j;
    while ((j = q_pop(q)) != NULL)
        free(j);
}

void cn_pool_push(cnode *cn, cn_result *r)
{
    struct cn_pool *pl = cn->pool;
    pthread_mutex_lock(&pl->lock);
    r->next = NULL;
    if (pl->results_tail)
        pl->results_tail->next = r;
    else
        pl->results = r;
    pl->results_tail = r;
    pthread_mutex_unlock(&pl->lock);
    char b = 1;
    ssize_t w = write(pl->pipe_w, &b, 1); /* full pipe: the loop will drain anyway */
    (void)w;
}

static void do_connect(struct cn_pool *pl, ei_cnode *ec, const char *node, cn_result *r)
{
    char alive[CN_NODE_MAX + 1], host[CN_NODE_MAX + 1];
    const char *at = strchr(node, '@');
    if (!at || at == node || !at[1]) {
        r->err = CN_ERR_BAD_NAME;
        snprintf(r->msg, sizeof r->msg, "not a node name");
        return;
    }
    memcpy(alive, node, (size_t)(at - node));
    alive[at - node] = 0;
    strcpy(host, at + 1);
    struct in_addr addr;
    if (cn_resolve(host, &addr) != 0) {
        r->err = CN_ERR_HOST;
        snprintf(r->msg, sizeof r->msg, "unknown host '%s'", host);
        return;
    }
    int port = 0;
    int e = cn_epmd_port(&addr, alive, pl->connect_tmo, &port, r->msg, sizeof r->msg);
    if (e) {
        r->err = e;
        return;
    }
    int fd = ei_xconnect_host_port_tmo(ec, &addr, port, pl->connect_tmo);
    if (fd < 0) {
        int en = erl_errno;
        if (en == ECONNREFUSED || en == EHOSTUNREACH || en == ENETUNREACH) {
            r->err = CN_ERR_CONNECT;
            snprintf(r->msg, sizeof r->msg, "cannot connect to port %d: %s", port, strerror(en));
        } else if (en == ETIMEDOUT) {
            r->err = CN_ERR_CONNECT;
            snprintf(r->msg, sizeof r->msg,
                     "no handshake within %u ms (frozen or overloaded node?)", pl->connect_tmo);
        } else {
            r->err = CN_ERR_HANDSHAKE;
            snprintf(r->msg, sizeof r->msg,
                     "handshake refused (wrong cookie, or the node does not accept us)");
        }
        return;
    }
    r->fd = fd;
}

static void *connector_main(void *argp)
{
    thread_arg *ta = argp;
    cnode *cn = ta->cn;
    struct cn_pool *pl = cn->pool;
    ei_cnode *ec = ta->ec;
    int known_only = ta->known_only;
    free(ta);
    for (;;) {
        pthread_mutex_lock(&pl->lock);
        while (!pl->stop && !pl->known.n && (known_only || !pl->other.n))
            pthread_cond_wait(&pl->cond, &pl->lock);
        if (pl->stop) {
            pthread_mutex_unlock(&pl->lock);
            break;
        }
        cn_job *j = q_pop(&pl->known);
        if (!j) j = q_pop(&pl->other);
        pthread_mutex_unlock(&pl->lock);

        cn_result *r = calloc(1, sizeof *r);
        if (!r) {
            free(j);
            continue; /* the loop's attempt stays "connecting"; retried on its timer */
        }
        r->kind = j->kind;
        r->fd = -1;
        snprintf(r->node, sizeof r->node, "%s", j->target);
        if (j->kind == CN_JOB_CONNECT) {
            do_connect(pl, ec, j->target, r);
        } else {
            struct in_addr addr;
            if (cn_resolve(j->target, &addr) == 0)
                (void)cn_epmd_names(&addr, pl->connect_tmo, &r->names, &r->n_names);
        }
        free(j);
        cn_pool_push(cn, r);
    }
    return NULL;
}

static ei_cnode *copy_ec(const ei_cnode *ec)
{
    ei_cnode *c = sodium_malloc(sizeof *c);
    if (c) memcpy(c, ec, sizeof *c);
    return c;
}

static int spawn(cnode *cn, pthread_t *t, ei_cnode *ec, int known_only)
{
    thread_arg *ta = malloc(sizeof *ta);
    if (!ta) return -1;
    ta->cn = cn;
    ta->ec = ec;
    ta->known_only = known_only;
    if (pthread_create(t, NULL, connector_main, ta) != 0) {
        free(ta);
        return -1;
    }
    return 0;
}

int cn_pool_start(cnode *cn, int n)
{
    struct cn_pool *pl = calloc(1, sizeof *pl);
    if (!pl) return -1;
    pthread_mutex_init(&pl->lock, NULL);
    pthread_cond_init(&pl->cond, NULL);
    pl->connect_tmo = cn->cfg.connect_timeout_ms;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(pl);
        return -1;
    }
    pl->pipe_r = fds[0];
    pl->pipe_w = fds[1];
    cn->pool = pl;
    for (int i = 0; i < n && i < 64; i++) {
        ei_cnode *ec = copy_ec(cn->ec);
        if (!ec) return -1;
        pl->ecs[i] = ec;
        /* thread 0 is the known nodes' lane when there is another thread */
        if (spawn(cn, &pl->threads[i], ec, i == 0 && n > 1)) return -1;
        pl->n_threads++;
    }
    return 0;
}

int cn_pool_wake_fd(const cnode *cn)
{
    return cn->pool->pipe_r;
}

int cn_pool_submit(cnode *cn, int kind, const char *target, int known)
{
    struct cn_pool *pl = cn->pool;
    cn_job *j = calloc(1, sizeof *j);
    if (!j) return -1;
    j->kind = kind;
    snprintf(j->target, sizeof j->target, "%s", target);
    job_queue *q = known ? &pl->known : &pl->other;
    pthread_mutex_lock(&pl->lock);
    if (kind == CN_JOB_NAMES && q_has(q, kind, j->target)) {
        /* the last scan of that host has not run yet: one is enough */
        pthread_mutex_unlock(&pl->lock);
        free(j);
        return 0;
    }
    /* an epmd scan goes before the connection attempts of its queue: they may each
     * take --connect-timeout-ms against names that never answer, and the scan is how a
     * restarted node is found at all */
    if (kind == CN_JOB_NAMES)
        q_push_front(q, j);
    else
        q_push(q, j);
    /* every thread: the one woken must be able to take this queue */
    pthread_cond_broadcast(&pl->cond);
    pthread_mutex_unlock(&pl->lock);
    return 0;
}

cn_result *cn_pool_take(cnode *cn)
{
    struct cn_pool *pl = cn->pool;
    char drain[256];
    while (read(pl->pipe_r, drain, sizeof drain) > 0) {
    }
    pthread_mutex_lock(&pl->lock);
    cn_result *r = pl->results;
    pl->results = pl->results_tail = NULL;
    pthread_mutex_unlock(&pl->lock);
    return r;
}

void cn_result_free(cn_result *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_names; i++)
        free(r->names[i]);
    free(r->names);
    free(r);
}

void cn_pool_stop(cnode *cn)
{
    struct cn_pool *pl = cn->pool;
    if (!pl) return;
    pthread_mutex_lock(&pl->lock);
    pl->stop = 1;
    pthread_cond_broadcast(&pl->cond);
    pthread_mutex_unlock(&pl->lock);
    for (int i = 0; i < pl->n_threads; i++)
        pthread_join(pl->threads[i], NULL);
    q_free(&pl->known);
    q_free(&pl->other);
    for (cn_result *r = pl->results, *nx; r; r = nx) {
        nx = r->next;
        if (r->fd >= 0 && (r->kind == CN_JOB_CONNECT || r->kind == CN_RES_ACCEPT))
            ei_close_connection(r->fd);
        cn_result_free(r);
    }
    for (int i = 0; i < 64; i++)
        if (pl->ecs[i]) sodium_free(pl->ecs[i]); /* zeroes the cookie copy */
    close(pl->pipe_r);
    close(pl->pipe_w);
    pthread_mutex_destroy(&pl->lock);
    pthread_cond_destroy(&pl->cond);
    free(pl);
    cn->pool = NULL;
}
