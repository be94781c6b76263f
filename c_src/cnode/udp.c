/*
 * UDP sockets and IPv4 addresses for the two datagram services of the C node: gossip
 * beacons (gossip.c) and the TTL registry (registry_host.c).
 *
 * Sockets are non-blocking and close-on-exec: the loop reads them when epoll says so
 * and a full send buffer drops a datagram (counted by the caller) instead of stopping
 * the loop. The receive buffer is raised to 1 MB, as the Erlang gossip adapter and
 * plexus_registry do, so a burst of datagrams is not lost while the loop serves
 * others. Names in --gossip-target are resolved once at start-up, before the loop
 * runs, never from inside it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cnode/udp.h"

#define RCVBUF (1 << 20)

int cn_udp_addr(const char *s, struct sockaddr_in *out, uint16_t port)
{
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons(port);
    return inet_pton(AF_INET, s, &out->sin_addr) == 1 ? 0 : -1;
}

int cn_udp_host_port(const char *s, struct sockaddr_in *out)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || colon[1] == '\0') return -1;
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || *end != '\0' || port == 0 || port > 65535) return -1;
    char host[256];
    size_t n = (size_t)(colon - s);
    if (n >= sizeof host) return -1;
    memcpy(host, s, n);
    host[n] = 0;
    if (cn_udp_addr(host, out, (uint16_t)port) == 0) return 0;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return -1;
    memcpy(&out->sin_addr, &((struct sockaddr_in *)res->ai_addr)->sin_addr, sizeof out->sin_addr);
    freeaddrinfo(res);
    return 0;
}

void cn_udp_format(const struct sockaddr_in *a, char *buf)
{
    char ip[INET_ADDRSTRLEN];
    if (!inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip)) strcpy(ip, "?");
    snprintf(buf, CN_UDP_ADDR_STR, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
}

int cn_udp_open(const struct sockaddr_in *bind_to)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1, rcv = RCVBUF;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) goto fail;
    /* a smaller buffer (net.core.rmem_max) is not fatal: the kernel caps it */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    if (bind(fd, (const struct sockaddr *)bind_to, sizeof *bind_to) != 0) goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

uint16_t cn_udp_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len) != 0) return 0;
    return ntohs(a.sin_port);
}
