/*
 * plexus_ei_peers: many lightweight Erlang nodes in one process, for the C node's
 * scale benchmark (500 nodes without 500 BEAMs) and its valgrind kill/restart cycles.
 *
 * Each node is an ei_cnode named PREFIX_I@HOST, listening on its own port and
 * registered with epmd. It accepts connections, answers ticks, and answers a
 * net_adm:ping-style {'$gen_call', {Pid, Tag}, {is_auth, Node}} to net_kernel with
 * {Tag, yes}; everything else is ignored. Single-threaded, poll-based; a test tool,
 * not a model (handshakes block).
 *
 *   PLEXUS_COOKIE=... plexus_ei_peers --prefix p --count 100 [--host 127.0.0.1]
 *
 * Runs until SIGTERM/SIGINT/SIGKILL; prints "ready N" on stdout once all are published.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ei.h>

#define MAX_CONN 8

typedef struct node {
    ei_cnode ec;
    int lfd, epmd;
    int conns[MAX_CONN];
} node;

static volatile sig_atomic_t stop;
static void on_sig(int s)
{
    (void)s;
    stop = 1;
}

static void answer(node *n, int fd, ei_x_buff *x)
{
    erlang_msg msg;
    int r = ei_xreceive_msg_tmo(fd, &msg, x, 200);
    if (r == ERL_TICK) return;
    if (r == ERL_ERROR) {
        if (erl_errno == ETIMEDOUT) return;
        for (int i = 0; i < MAX_CONN; i++)
            if (n->conns[i] == fd) n->conns[i] = -1;
        ei_close_connection(fd);
        return;
    }
    if (msg.msgtype != ERL_REG_SEND || strcmp(msg.toname, "net_kernel") != 0) return;
    int i = 0, ver, ar;
    char atom[MAXATOMLEN_UTF8];
    erlang_pid from;
    if (ei_decode_version(x->buff, &i, &ver) < 0 || ei_decode_tuple_header(x->buff, &i, &ar) < 0 ||
        ar != 3 || ei_decode_atom(x->buff, &i, atom) < 0 || strcmp(atom, "$gen_call") != 0 ||
        ei_decode_tuple_header(x->buff, &i, &ar) < 0 || ar != 2 ||
        ei_decode_pid(x->buff, &i, &from) < 0)
        return;
    int tag = i;
    if (ei_skip_term(x->buff, &i) < 0) return;
    ei_x_buff out;
    ei_x_new_with_version(&out);
    ei_x_encode_tuple_header(&out, 2);
    ei_x_append_buf(&out, x->buff + tag, i - tag);
    ei_x_encode_atom(&out, "yes");
    (void)ei_send_tmo(fd, &from, out.buff, out.index, 1000);
    ei_x_free(&out);
}

int main(int argc, char **argv)
{
    const char *prefix = "eip", *host = "127.0.0.1";
    int count = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--prefix"))
            prefix = argv[i + 1];
        else if (!strcmp(argv[i], "--count"))
            count = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--host"))
            host = argv[i + 1];
    }
    const char *cookie = getenv("PLEXUS_COOKIE");
    if (!cookie || count <= 0 || count > 5000) {
        fprintf(stderr, "usage: PLEXUS_COOKIE=... plexus_ei_peers --prefix P --count N\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    signal(SIGPIPE, SIG_IGN);
    ei_init();
    node *nodes = calloc((size_t)count, sizeof *nodes);
    if (!nodes) return 1;
    struct in_addr addr;
    inet_pton(AF_INET, host, &addr);
    for (int k = 0; k < count; k++) {
        node *n = &nodes[k];
        char alive[128], full[300];
        snprintf(alive, sizeof alive, "%s_%d", prefix, k);
        snprintf(full, sizeof full, "%s@%s", alive, host);
        for (int c = 0; c < MAX_CONN; c++)
            n->conns[c] = -1;
        int port = 0;
        if (ei_connect_xinit(&n->ec, host, alive, full, &addr, cookie, 0) < 0 ||
            (n->lfd = ei_xlisten(&n->ec, &addr, &port, 16)) < 0 ||
            (n->epmd = ei_publish_tmo(&n->ec, port, 3000)) < 0) {
            fprintf(stderr, "plexus_ei_peers: cannot start %s\n", full);
            return 1;
        }
    }
    printf("ready %d\n", count);
    fflush(stdout);
    size_t cap = (size_t)count * (MAX_CONN + 1);
    struct pollfd *pf = calloc(cap, sizeof *pf);
    int *owner = calloc(cap, sizeof *owner);
    ei_x_buff x;
    ei_x_new(&x);
    while (!stop) {
        size_t np = 0;
        for (int k = 0; k < count; k++) {
            pf[np] = (struct pollfd){nodes[k].lfd, POLLIN, 0};
            owner[np++] = k;
            for (int c = 0; c < MAX_CONN; c++)
                if (nodes[k].conns[c] >= 0) {
                    pf[np] = (struct pollfd){nodes[k].conns[c], POLLIN, 0};
                    owner[np++] = k;
                }
        }
        int r = poll(pf, np, 500);
        if (r <= 0) continue;
        for (size_t i = 0; i < np; i++) {
            if (!pf[i].revents) continue;
            node *n = &nodes[owner[i]];
            if (pf[i].fd == n->lfd) {
                ErlConnect con;
                int fd = ei_accept_tmo(&n->ec, n->lfd, &con, 2000);
                if (fd < 0) continue;
                int placed = 0;
                for (int c = 0; c < MAX_CONN && !placed; c++)
                    if (n->conns[c] < 0) {
                        n->conns[c] = fd;
                        placed = 1;
                    }
                if (!placed) ei_close_connection(fd);
            } else {
                answer(n, pf[i].fd, &x);
            }
        }
    }
    ei_x_free(&x);
    for (int k = 0; k < count; k++) {
        for (int c = 0; c < MAX_CONN; c++)
            if (nodes[k].conns[c] >= 0) ei_close_connection(nodes[k].conns[c]);
        close(nodes[k].lfd);
        close(nodes[k].epmd);
    }
    free(pf);
    free(owner);
    free(nodes);
    return 0;
}
