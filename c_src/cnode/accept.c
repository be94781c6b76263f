/*
 * Incoming distribution connections: a gate, then handshakes under one deadline.
 *
 * ei_accept_tmo accepts and handshakes in one blocking call whose timeout applies to
 * each read, so one client trickling a byte every 150 ms held the only accept thread
 * for as long as it liked, and every connection behind it waited (issue 8). Now:
 *
 *   gate (the acceptor thread, poll): accepts every connection at once (non-blocking),
 *     keeps at most CN_ACCEPT_PENDING_MAX of them, and reads each one's first handshake
 *     message (send_name: 2-byte length, 'n' or 'N', flags, name) into its own small
 *     buffer. Garbage (a bad length or tag) is refused at once; a connection that has
 *     not sent its whole name by the deadline (--handshake-timeout-ms after the accept)
 *     is closed; when the table is full the oldest connection still in the gate is
 *     dropped. Idle and trickling clients cost one slot and an fd, never a thread.
 *   per source address: at most CN_ACCEPT_PER_SOURCE connections held (its oldest in the
 *     gate makes room, else the newcomer is refused) and CN_HANDSHAKE_PER_SOURCE
 *     handshakes at once (a handshaker takes the first queued connection whose source
 *     is under it), so clients of one address that send a name and stall (no cookie
 *     needed) cannot take every slot and every handshaker from the others;
 *   handshakers (CN_HANDSHAKERS threads): run ei's own server handshake on a connection
 *     whose name is in, through socket callbacks (ei_connect_xinit_ussi) that hand ei
 *     the accepted fd, replay the buffered name first, and bound every read and write
 *     by the same overall deadline. A real node answers in milliseconds, so a client
 *     that stalls after its name holds a handshaker for the rest of its deadline only.
 *
 * Every outcome is counted (cn_accept_counters; `stats` -> io). The handshake's ei
 * state (the cookie) lives in sodium_malloc'd memory, wiped at stop.
 *
 * Ownership: an fd belongs to the gate until it is queued, to the queue until a
 * handshaker takes it, to ei during ei_accept_tmo (ei closes it through close_cb when
 * the handshake fails), then to the loop (cn_result, closed by ei_close_connection).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cnode/accept.h"
#include "cnode/clock.h"
#include "cnode/connector.h"
#include "cnode/counters.h"
#include "cnode/msg.h"
#include "cnode/state.h"

/* What the gate and the handshakers count (under the lock); cn_accept_counters. */
typedef struct cn_accept_stats {
    uint64_t accepted, handshakes, failed, timeouts, dropped, pending;
} cn_accept_stats;

/* send_name is 'n' version(2) flags(4) name, or 'N' flags(8) creation(4) nlen(2) name */
#define NAME_MSG_MIN 3
#define NAME_MSG_MAX (1 + 8 + 4 + 2 + CN_NODE_MAX)

/* A connection's source address (4 or 16 bytes): what the per-source limits count. */
typedef struct src_addr {
    uint8_t len;
    uint8_t b[16];
} src_addr;

typedef struct conn {
    int fd;
    src_addr src;
    uint64_t deadline_ms;
    size_t have, need; /* bytes of 2 + send_name in buf; need 2 until the length is in */
    unsigned char buf[2 + NAME_MSG_MAX];
} conn;

struct cn_accept {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;
    int listen_fd;
    int stop_r, stop_w; /* wakes the gate's poll at stop */
    unsigned tmo_ms;
    /* the gate (acceptor thread only) */
    conn *gate;
    size_t n_gate;
    /* connections whose name is in, waiting for a handshaker (ring, under lock) */
    conn *queue;
    size_t q_head, q_len;
    size_t in_handshake;
    pthread_t acceptor;
    int have_acceptor;
    pthread_t hs[CN_HANDSHAKERS];
    int n_hs;
    int n_hs_known;                  /* handshakers that took their index in hs_src */
    src_addr hs_src[CN_HANDSHAKERS]; /* whose handshake each thread runs (len 0: none) */
    size_t gate_seen;                /* n_gate as of the gate's last turn (for stats, under lock) */
    ei_cnode *ec; /* ei state with our callbacks; sodium_malloc'd: it holds the cookie */
    ei_cnode *hs_ec[CN_HANDSHAKERS]; /* one copy per handshaker */
    int ei_listen_fd;                /* the stand-in "listen socket" ei_accept_tmo is given */
    uint64_t listen_rest_until;      /* out of descriptors: not polled until then */
    cn_accept_stats st;
};

/* Out of file descriptors with nothing in the gate to close: the listening socket is
 * left alone this long (connections wait in the kernel's backlog), instead of being
 * polled readable and failing again at once, a busy loop. */
#define ACCEPT_REST_MS 100

/* ------------------------------------------------------------ ei socket callbacks */

/* The handshake in progress on this thread: the fd, the name message read by the gate
 * (served to ei first), the deadline. */
typedef struct hs_state {
    conn *c;
    size_t served;
    int handed; /* accept_cb gave the fd to ei: ei closes it from now on */
} hs_state;
static _Thread_local hs_state *cur;

#define CTX_FD(ctx) ((int)(intptr_t)(ctx))
#define FD_CTX(fd) ((void *)(intptr_t)(fd))

/* Waits for fd to be ready for ev within tmo (ei's per-call timeout) and the overall
 * deadline; 0, or an errno value. */
static int wait_ready(int fd, short ev, unsigned tmo)
{
    for (;;) {
        uint64_t now = cn_now_ms();
        uint64_t until = cur ? cur->c->deadline_ms : now + 1000;
        if (tmo != EI_SCLBK_INF_TMO && now + tmo < until) until = now + tmo;
        if (now >= until) return ETIMEDOUT;
        struct pollfd p = {fd, ev, 0};
        int r = poll(&p, 1, (int)(until - now));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno;
        if (r == 0) return ETIMEDOUT;
        return 0;
    }
}

static int socket_cb(void **ctx, void *setup_ctx)
{
    (void)setup_ctx;
    /* the stand-in listen socket: never bound, only a key in ei's socket table */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    *ctx = FD_CTX(fd);
    return 0;
}

static int close_cb(void *ctx)
{
    return close(CTX_FD(ctx)) == 0 ? 0 : errno;
}

static int listen_cb(void *ctx, void *addr, int *len, int backlog)
{
    (void)ctx, (void)backlog;
    memset(addr, 0, (size_t)*len);
    return 0;
}

static int accept_cb(void **ctx, void *addr, int *len, unsigned tmo)
{
    (void)tmo;
    if (!cur || cur->handed) return EAGAIN;
    socklen_t sl = (socklen_t)*len;
    if (getpeername(cur->c->fd, addr, &sl) != 0) memset(addr, 0, (size_t)*len);
    *len = (int)sl;
    *ctx = FD_CTX(cur->c->fd);
    cur->handed = 1;
    return 0;
}

static int connect_cb(void *ctx, void *addr, int len, unsigned tmo)
{
    (void)ctx, (void)addr, (void)len, (void)tmo;
    return EOPNOTSUPP; /* this ei_cnode only accepts */
}

static int write_cb(void *ctx, const char *buf, ssize_t *len, unsigned tmo)
{
    int fd = CTX_FD(ctx);
    for (;;) {
        ssize_t w = send(fd, buf, (size_t)*len, MSG_NOSIGNAL);
        if (w >= 0) {
            *len = w;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return errno;
        int e = wait_ready(fd, POLLOUT, tmo);
        if (e) return e;
    }
}

static int writev_cb(void *ctx, const void *iov, int iovcnt, ssize_t *len, unsigned tmo)
{
    int fd = CTX_FD(ctx);
    for (;;) {
        ssize_t w = writev(fd, iov, iovcnt);
        if (w >= 0) {
            *len = w;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return errno;
        int e = wait_ready(fd, POLLOUT, tmo);
        if (e) return e;
    }
}

static int read_cb(void *ctx, char *buf, ssize_t *len, unsigned tmo)
{
    int fd = CTX_FD(ctx);
    if (cur && cur->c->fd == fd && cur->served < cur->c->have) {
        size_t n = cur->c->have - cur->served;
        if (n > (size_t)*len) n = (size_t)*len;
        memcpy(buf, cur->c->buf + cur->served, n);
        cur->served += n;
        *len = (ssize_t)n;
        return 0;
    }
    for (;;) {
        ssize_t r = recv(fd, buf, (size_t)*len, 0);
        if (r >= 0) {
            *len = r;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return errno;
        int e = wait_ready(fd, POLLIN, tmo);
        if (e) return e;
    }
}

static int header_size_cb(void *ctx, int *sz)
{
    (void)ctx;
    *sz = 2;
    return 0;
}

static int complete_cb(void *ctx)
{
    (void)ctx;
    return 0;
}

static int get_fd_cb(void *ctx, int *fd)
{
    *fd = CTX_FD(ctx);
    return 0;
}

static ei_socket_callbacks hs_cbs = {
    EI_SCLBK_FLG_FULL_IMPL, /* the callbacks do their own waiting (deadline) */
    socket_cb,
    close_cb,
    listen_cb,
    accept_cb,
    connect_cb,
    writev_cb,
    write_cb,
    read_cb,
    header_size_cb,
    complete_cb,
    complete_cb,
    get_fd_cb,
};

/* ------------------------------------------------------------ handshakers */

/* Removes the k-th queued connection, keeping the order of the others (under the
 * lock; at most CN_ACCEPT_PENDING_MAX moves). */
static void queue_remove(struct cn_accept *a, size_t k)
{
    if (k == 0) {
        a->q_head = (a->q_head + 1) % CN_ACCEPT_PENDING_MAX;
        a->q_len--;
        return;
    }
    for (size_t j = k; j + 1 < a->q_len; j++)
        a->queue[(a->q_head + j) % CN_ACCEPT_PENDING_MAX] =
            a->queue[(a->q_head + j + 1) % CN_ACCEPT_PENDING_MAX];
    a->q_len--;
}

static void count(struct cn_accept *a, uint64_t *field)
{
    pthread_mutex_lock(&a->lock);
    (*field)++;
    pthread_mutex_unlock(&a->lock);
}

typedef struct hs_arg {
    cnode *cn;
    ei_cnode *ec;
} hs_arg;

static int same_src(const src_addr *x, const src_addr *y)
{
    return x->len == y->len && memcmp(x->b, y->b, x->len) == 0;
}

/* Handshakes running for this source (under the lock). */
static size_t src_in_handshake(const struct cn_accept *a, const src_addr *s)
{
    size_t k = 0;
    for (int i = 0; i < CN_HANDSHAKERS; i++)
        k += a->hs_src[i].len && same_src(&a->hs_src[i], s);
    return k;
}

/* The queued connection a handshaker takes (under the lock): the first whose source
 * runs fewer than CN_HANDSHAKE_PER_SOURCE handshakes, so clients of one address that
 * send a name and stall hold that many handshakers at most, not all four; queued ones
 * past their deadline are dropped on the way. SIZE_MAX when none may go now. */
static size_t queue_pick(struct cn_accept *a)
{
    uint64_t now = cn_now_ms();
    for (size_t k = 0; k < a->q_len;) {
        size_t i = (a->q_head + k) % CN_ACCEPT_PENDING_MAX;
        if (a->queue[i].deadline_ms <= now) {
            close(a->queue[i].fd);
            a->st.timeouts++;
            queue_remove(a, k);
            continue;
        }
        if (src_in_handshake(a, &a->queue[i].src) < CN_HANDSHAKE_PER_SOURCE) return k;
        k++;
    }
    return SIZE_MAX;
}

static void *handshaker_main(void *argp)
{
    hs_arg *ha = argp;
    cnode *cn = ha->cn;
    ei_cnode *ec = ha->ec; /* this thread's own copy */
    free(ha);
    struct cn_accept *a = cn->acceptor;
    int self = -1;
    for (;;) {
        pthread_mutex_lock(&a->lock);
        if (self < 0) self = a->n_hs_known++;
        size_t k = SIZE_MAX;
        while (!a->stop && (k = queue_pick(a)) == SIZE_MAX) {
            /* nothing, or only sources at their limit: woken by a new name, by a
             * handshake ending, and once a second to drop what has expired */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&a->cond, &a->lock, &ts);
        }
        if (a->stop) {
            pthread_mutex_unlock(&a->lock);
            break;
        }
        conn c = a->queue[(a->q_head + k) % CN_ACCEPT_PENDING_MAX];
        queue_remove(a, k);
        a->in_handshake++;
        a->hs_src[self] = c.src;
        pthread_mutex_unlock(&a->lock);

        hs_state hs = {&c, 0, 0};
        cur = &hs;
        ErlConnect conp;
        memset(&conp, 0, sizeof conp);
        uint64_t now = cn_now_ms();
        unsigned left = c.deadline_ms > now ? (unsigned)(c.deadline_ms - now) : 1;
        int fd = ei_accept_tmo(ec, a->ei_listen_fd, &conp, left);
        cur = NULL;
        if (!hs.handed) close(c.fd); /* ei gave up before taking it */
        cn_result *r = fd >= 0 ? calloc(1, sizeof *r) : NULL;
        pthread_mutex_lock(&a->lock);
        a->in_handshake--;
        a->hs_src[self].len = 0;
        pthread_cond_broadcast(&a->cond); /* its source may go again */
        if (fd >= 0 && r)
            a->st.handshakes++;
        else if (fd < 0 && cn_now_ms() >= c.deadline_ms)
            a->st.timeouts++;
        else
            a->st.failed++;
        pthread_mutex_unlock(&a->lock);
        if (fd < 0) continue;
        if (!r) {
            ei_close_connection(fd);
            continue;
        }
        r->kind = CN_RES_ACCEPT;
        r->fd = fd;
        snprintf(r->node, sizeof r->node, "%s", conp.nodename);
        cn_pool_push(cn, r);
    }
    return NULL;
}

/* ------------------------------------------------------------ the gate */

static void gate_drop(struct cn_accept *a, size_t i)
{
    close(a->gate[i].fd);
    a->gate[i] = a->gate[--a->n_gate];
}

/* Total connections held (gate + queue + handshakes); under lock for the last two. */
static size_t held(struct cn_accept *a)
{
    pthread_mutex_lock(&a->lock);
    size_t n = a->n_gate + a->q_len + a->in_handshake;
    pthread_mutex_unlock(&a->lock);
    return n;
}

/* The connection that has waited longest in the gate, or SIZE_MAX when it is empty. */
static size_t gate_oldest(const struct cn_accept *a)
{
    size_t old = SIZE_MAX;
    for (size_t i = 0; i < a->n_gate; i++)
        if (old == SIZE_MAX || a->gate[i].deadline_ms < a->gate[old].deadline_ms) old = i;
    return old;
}

/* Connections held for this source: in the gate, queued, handshaking. */
static size_t src_held(struct cn_accept *a, const src_addr *s)
{
    size_t k = 0;
    for (size_t i = 0; i < a->n_gate; i++)
        k += same_src(&a->gate[i].src, s);
    pthread_mutex_lock(&a->lock);
    for (size_t j = 0; j < a->q_len; j++)
        k += same_src(&a->queue[(a->q_head + j) % CN_ACCEPT_PENDING_MAX].src, s);
    k += src_in_handshake(a, s);
    pthread_mutex_unlock(&a->lock);
    return k;
}

static src_addr src_of(const struct sockaddr_storage *ss)
{
    src_addr s = {0, {0}};
    if (ss->ss_family == AF_INET) {
        s.len = 4;
        memcpy(s.b, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        s.len = 16;
        memcpy(s.b, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    }
    return s;
}

static void accept_new(struct cn_accept *a)
{
    for (int k = 0; k < 64; k++) { /* bounded per wake-up */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        memset(&ss, 0, sizeof ss);
        int fd = accept4(a->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EMFILE && errno != ENFILE && errno != ENOBUFS && errno != ENOMEM)
                return; /* EAGAIN, or a connection that vanished: nothing to do */
            /* out of descriptors (the gate's 256 need more than a low `ulimit -n`
             * leaves): the oldest connection still in the gate makes room, as when the
             * gate is full; with none there, the listening socket rests */
            size_t old = gate_oldest(a);
            if (old == SIZE_MAX) {
                a->listen_rest_until = cn_now_ms() + ACCEPT_REST_MS;
                return;
            }
            gate_drop(a, old);
            count(a, &a->st.dropped);
            continue;
        }
        count(a, &a->st.accepted);
        src_addr src = src_of(&ss);
        if (src_held(a, &src) >= CN_ACCEPT_PER_SOURCE) {
            /* one address may not take the slots of every other (a flood of clients
             * that send a name and stall, no cookie needed, kept new nodes out): its
             * oldest connection still in the gate makes room, as the gate does for
             * all; with none there (all past it), the newcomer is refused */
            size_t old = SIZE_MAX;
            for (size_t i = 0; i < a->n_gate; i++)
                if (same_src(&a->gate[i].src, &src) &&
                    (old == SIZE_MAX || a->gate[i].deadline_ms < a->gate[old].deadline_ms))
                    old = i;
            count(a, &a->st.dropped);
            if (old == SIZE_MAX) {
                close(fd);
                continue;
            }
            gate_drop(a, old);
        }
        if (held(a) >= CN_ACCEPT_PENDING_MAX) {
            /* full: the oldest connection still in the gate makes room; if every slot
             * is past the gate (handshaking), the newcomer is refused */
            size_t old = gate_oldest(a);
            count(a, &a->st.dropped);
            if (old == SIZE_MAX) {
                close(fd);
                continue;
            }
            gate_drop(a, old);
        }
        conn *c = &a->gate[a->n_gate++];
        c->fd = fd;
        c->src = src;
        c->deadline_ms = cn_now_ms() + a->tmo_ms;
        c->have = 0;
        c->need = 2;
    }
}

/* Reads what the connection has; 1 when its name message is complete, 0 to wait,
 * -1 to refuse it (garbage or closed). */
static int gate_read(conn *c)
{
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->have, c->need - c->have, 0);
        if (r == 0) return -1;
        if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        c->have += (size_t)r;
        if (c->have < c->need) continue;
        if (c->need == 2) {
            size_t n = (size_t)c->buf[0] << 8 | c->buf[1];
            if (n < NAME_MSG_MIN || n > NAME_MSG_MAX) return -1;
            c->need = 2 + n;
            continue;
        }
        return c->buf[2] == 'n' || c->buf[2] == 'N' ? 1 : -1;
    }
}

static void *acceptor_main(void *argp)
{
    cnode *cn = argp;
    struct cn_accept *a = cn->acceptor;
    struct pollfd *pfd = calloc(CN_ACCEPT_PENDING_MAX + 2, sizeof *pfd);
    if (!pfd) return NULL;
    for (;;) {
        pthread_mutex_lock(&a->lock);
        int stop = a->stop;
        pthread_mutex_unlock(&a->lock);
        if (stop) break;
        uint64_t now = cn_now_ms();
        /* deadlines first: expired connections go, and set the poll timeout */
        uint64_t next = now + 1000;
        for (size_t i = a->n_gate; i-- > 0;) {
            if (a->gate[i].deadline_ms <= now) {
                gate_drop(a, i);
                count(a, &a->st.timeouts);
            } else if (a->gate[i].deadline_ms < next) {
                next = a->gate[i].deadline_ms;
            }
        }
        pthread_mutex_lock(&a->lock);
        a->gate_seen = a->n_gate;
        pthread_mutex_unlock(&a->lock);
        pfd[0] = (struct pollfd){a->stop_r, POLLIN, 0};
        int resting = now < a->listen_rest_until;
        if (resting && a->listen_rest_until < next) next = a->listen_rest_until;
        pfd[1] = (struct pollfd){a->listen_fd, resting ? 0 : POLLIN, 0};
        size_t n = a->n_gate;
        for (size_t i = 0; i < n; i++)
            pfd[2 + i] = (struct pollfd){a->gate[i].fd, POLLIN, 0};
        int r = poll(pfd, (nfds_t)(2 + n), (int)(next - now));
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) continue;
        if (pfd[0].revents) continue; /* stop: checked at the top */
        /* gate entries: walk backwards so gate_drop's swap does not skip any */
        for (size_t i = n; i-- > 0;) {
            if (!pfd[2 + i].revents) continue;
            int g = gate_read(&a->gate[i]);
            if (g < 0) {
                gate_drop(a, i);
                count(a, &a->st.failed);
            } else if (g > 0) {
                pthread_mutex_lock(&a->lock);
                size_t tail = (a->q_head + a->q_len) % CN_ACCEPT_PENDING_MAX;
                a->queue[tail] = a->gate[i];
                a->q_len++;
                pthread_cond_signal(&a->cond);
                pthread_mutex_unlock(&a->lock);
                a->gate[i] = a->gate[--a->n_gate];
            }
        }
        if (pfd[1].revents) accept_new(a);
    }
    free(pfd);
    return NULL;
}

/* ------------------------------------------------------------ start, stop, stats */

int cn_accept_start(cnode *cn)
{
    struct cn_accept *a = calloc(1, sizeof *a);
    if (!a) return -1;
    cn->acceptor = a;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    a->stop_r = a->stop_w = a->ei_listen_fd = -1;
    a->listen_fd = cn->listen_fd;
    a->tmo_ms = cn->cfg.handshake_timeout_ms;
    a->gate = calloc(CN_ACCEPT_PENDING_MAX, sizeof *a->gate);
    a->queue = calloc(CN_ACCEPT_PENDING_MAX, sizeof *a->queue);
    int fds[2];
    if (!a->gate || !a->queue || pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    a->stop_r = fds[0];
    a->stop_w = fds[1];
    int fl = fcntl(a->listen_fd, F_GETFL);
    if (fl < 0 || fcntl(a->listen_fd, F_SETFL, fl | O_NONBLOCK) != 0) return -1;
    a->ec = sodium_malloc(sizeof *a->ec);
    if (!a->ec) return -1;
    memset(a->ec, 0, sizeof *a->ec);
    const ei_cnode *m = cn->ec; /* published: its creation is the one epmd gave */
    struct in_addr any;
    any.s_addr = htonl(INADDR_ANY);
    if (ei_connect_xinit_ussi(a->ec, m->thishostname, m->thisalivename, m->thisnodename, &any,
                              m->ei_connect_cookie, m->creation, &hs_cbs, sizeof hs_cbs, NULL) < 0)
        return -1;
    int port = 0;
    a->ei_listen_fd = ei_xlisten(a->ec, &any, &port, 1);
    if (a->ei_listen_fd < 0) return -1;
    for (int i = 0; i < CN_HANDSHAKERS; i++) {
        a->hs_ec[i] = sodium_malloc(sizeof *a->ec);
        if (!a->hs_ec[i]) return -1;
        memcpy(a->hs_ec[i], a->ec, sizeof *a->ec);
        hs_arg *ha = malloc(sizeof *ha);
        if (!ha) return -1;
        ha->cn = cn;
        ha->ec = a->hs_ec[i];
        if (pthread_create(&a->hs[i], NULL, handshaker_main, ha) != 0) {
            free(ha);
            return -1;
        }
        a->n_hs++;
    }
    if (pthread_create(&a->acceptor, NULL, acceptor_main, cn) != 0) return -1;
    a->have_acceptor = 1;
    return 0;
}

void cn_accept_stop(cnode *cn)
{
    struct cn_accept *a = cn->acceptor;
    if (!a) return;
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    if (a->stop_w >= 0) {
        char b = 1;
        ssize_t w = write(a->stop_w, &b, 1);
        (void)w;
    }
    if (a->have_acceptor) pthread_join(a->acceptor, NULL);
    for (int i = 0; i < a->n_hs; i++)
        pthread_join(a->hs[i], NULL);
    for (size_t i = 0; i < a->n_gate; i++)
        close(a->gate[i].fd);
    for (size_t k = 0; k < a->q_len; k++)
        close(a->queue[(a->q_head + k) % CN_ACCEPT_PENDING_MAX].fd);
    if (a->ei_listen_fd >= 0) ei_close_connection(a->ei_listen_fd);
    if (a->ec) sodium_free(a->ec); /* zeroes the cookie copies */
    for (int i = 0; i < CN_HANDSHAKERS; i++)
        if (a->hs_ec[i]) sodium_free(a->hs_ec[i]);
    if (a->stop_r >= 0) close(a->stop_r);
    if (a->stop_w >= 0) close(a->stop_w);
    free(a->gate);
    free(a->queue);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a);
    cn->acceptor = NULL;
}

void cn_accept_counters(const cnode *cn, cn_counters *c)
{
    cn_accept_stats s = {0};
    struct cn_accept *a = cn->acceptor;
    if (a) {
        pthread_mutex_lock(&a->lock);
        s = a->st;
        s.pending = a->gate_seen + a->q_len + a->in_handshake;
        pthread_mutex_unlock(&a->lock);
    }
    cn_counters_add(c, "accepted", s.accepted);
    cn_counters_add(c, "handshakes", s.handshakes);
    cn_counters_add(c, "handshake_failed", s.failed);
    cn_counters_add(c, "handshake_timeouts", s.timeouts);
    cn_counters_add(c, "accept_dropped", s.dropped);
    cn_counters_add(c, "pending", s.pending);
}
