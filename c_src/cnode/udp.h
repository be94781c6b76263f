/*
 * UDP sockets and IPv4 addresses (udp.c) for gossip.c and registry_host.c.
 */
#ifndef PLEXUS_CNODE_UDP_H
#define PLEXUS_CNODE_UDP_H

#include <stdint.h>

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

#endif
