/*
 * epmd client: PORT_PLEASE2 (where does node X listen?) and NAMES (which nodes does
 * this host have?), per the distribution protocol's EPMD section. Blocking with a
 * deadline, for the connector threads only. Doing the port lookup here rather than
 * inside ei_connect tells "no epmd on that host" apart from "epmd does not know that
 * node" apart from "the node refused us", which the start-up exit codes need.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cnode/epmd.h"
#include "cnode/clock.h"
#include "cnode/msg.h"

#define EPMD_PORT_DEFAULT 4369
#define NAMES_MAX_BYTES (1u << 20)

static int epmd_port(void)
{
    const char *s = getenv("ERL_EPMD_PORT");
    int p = s ? atoi(s) : 0;
    return p > 0 && p < 65536 ? p : EPMD_PORT_DEFAULT;
}

int cn_resolve(const char *host, struct in_addr *out)
{
    if (inet_pton(AF_INET, host, out) == 1) return 0;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return -1;
    *out = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

/* Waits for fd to be ready for `ev` until the deadline; 0 ready, -1 timeout/error. */
static int wait_fd(int fd, short ev, uint64_t deadline)
{
    for (;;) {
        uint64_t now = cn_now_ms();
        if (now >= deadline) return -1;
        struct pollfd p = {fd, ev, 0};
        int r = poll(&p, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        return 0;
    }
}

/* A non-blocking TCP connect to epmd on addr; -1 with errno on failure. */
static int epmd_connect(const struct in_addr *addr, uint64_t deadline)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)epmd_port());
    sa.sin_addr = *addr;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (errno != EINPROGRESS) goto fail;
        if (wait_fd(fd, POLLOUT, deadline)) {
            errno = ETIMEDOUT;
            goto fail;
        }
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err) {
            errno = err ? err : EIO;
            goto fail;
        }
    }
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

static int write_all(int fd, const unsigned char *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline)) return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Reads until EOF or `max` bytes; returns bytes read or -1. */
static ssize_t read_all(int fd, unsigned char *p, size_t max, uint64_t deadline)
{
    size_t n = 0;
    while (n < max) {
        ssize_t r = recv(fd, p + n, max - n, 0);
        if (r > 0) {
            n += (size_t)r;
        } else if (r == 0) {
            break;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (wait_fd(fd, POLLIN, deadline)) return -1;
        } else {
            return -1;
        }
    }
    return (ssize_t)n;
}

int cn_epmd_port(const struct in_addr *addr, const char *alive, unsigned tmo_ms, int *port,
                 char *msg, size_t msglen)
{
    uint64_t deadline = cn_now_ms() + tmo_ms;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, addr, ip, sizeof ip);
    int fd = epmd_connect(addr, deadline);
    if (fd < 0) {
        snprintf(msg, msglen, "no epmd on %s:%d (%s)", ip, epmd_port(), strerror(errno));
        return CN_ERR_NO_EPMD;
    }
    size_t an = strlen(alive);
    unsigned char req[3 + CN_NODE_MAX];
    if (an > CN_NODE_MAX) {
        close(fd);
        snprintf(msg, msglen, "node name too long");
        return CN_ERR_BAD_NAME;
    }
    req[0] = (unsigned char)((an + 1) >> 8);
    req[1] = (unsigned char)(an + 1);
    req[2] = 122; /* PORT_PLEASE2_REQ */
    memcpy(req + 3, alive, an);
    unsigned char resp[512];
    ssize_t n = -1;
    if (write_all(fd, req, 3 + an, deadline) == 0) n = read_all(fd, resp, sizeof resp, deadline);
    close(fd);
    if (n < 2 || resp[0] != 119) { /* PORT2_RESP */
        snprintf(msg, msglen, "epmd on %s did not answer", ip);
        return CN_ERR_NO_EPMD;
    }
    if (resp[1] != 0 || n < 4) {
        snprintf(msg, msglen, "epmd on %s does not know a node named '%s'", ip, alive);
        return CN_ERR_NO_NODE;
    }
    *port = resp[2] << 8 | resp[3];
    return 0;
}

int cn_epmd_names(const struct in_addr *addr, unsigned tmo_ms, char ***names, size_t *count)
{
    uint64_t deadline = cn_now_ms() + tmo_ms;
    *names = NULL;
    *count = 0;
    int fd = epmd_connect(addr, deadline);
    if (fd < 0) return -1;
    static const unsigned char req[3] = {0, 1, 110}; /* NAMES_REQ */
    unsigned char *buf = malloc(NAMES_MAX_BYTES + 1);
    ssize_t n = -1;
    if (buf && write_all(fd, req, sizeof req, deadline) == 0)
        n = read_all(fd, buf, NAMES_MAX_BYTES, deadline);
    close(fd);
    if (n < 4) {
        free(buf);
        return -1;
    }
    buf[n] = 0;
    /* lines "name <alive> at port <port>\n" after the 4-byte epmd port */
    size_t cap = 0;
    char **out = NULL;
    char *line = (char *)buf + 4;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (strncmp(line, "name ", 5) == 0) {
            char *sp = strstr(line + 5, " at port ");
            if (sp && sp > line + 5 && (size_t)(sp - (line + 5)) <= 200) {
                if (*count == cap) {
                    size_t nc = cap ? cap * 2 : 16;
                    char **p = realloc(out, nc * sizeof *p);
                    if (!p) break;
                    out = p;
                    cap = nc;
                }
                size_t len = (size_t)(sp - (line + 5));
                char *s = malloc(len + 1);
                if (!s) break;
                memcpy(s, line + 5, len);
                s[len] = 0;
                out[(*count)++] = s;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
    *names = out;
    return 0;
}
