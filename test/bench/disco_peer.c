/*
 * plexus_disco_peer: a gossip and registry counterpart for the C node's valgrind run
 * (test/cnode_valgrind.sh), so --gossip and --registry run under valgrind without a
 * BEAM. It links the same core codecs as the C node and the NIF.
 *
 *   PLEXUS_GOSSIP_SECRET=... plexus_disco_peer --name N@127.0.0.1 --cluster ID
 *       --gossip-port P --gossip-to 127.0.0.1:Q --registry 127.0.0.1:R --seconds S
 *
 * For S seconds, every 100 ms:
 *   gossip:   one genuine beacon {N, incarnation, sequence} to Q, then hostile ones (an
 *             altered copy, random bytes, a replay of the previous beacon, a truncated
 *             one); beacons heard on P are opened (the C node's must authenticate);
 *   registry: an ANNOUNCE of a new peer, a QUERY (padded; with the COOKIE the server
 *             last gave, as the adapter does), a BYE of the previous peer, and a
 *             junk datagram; replies are decoded (HANDSHAKE, COOKIE, VIEW expected).
 * At the end a last beacon marked plexus.leaving. Prints
 *   "disco-peer: opened=N handshakes=N views=N" and exits 0 when every count is > 0.
 * A test tool, not a model: blocking sockets with short timeouts, loopback only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "plexus/system_alloc.h"
#include "plexus/beacon.h"
#include "plexus/registry.h"

static uint64_t now_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int host_port(const char *s, struct sockaddr_in *a)
{
    const char *c = strrchr(s, ':');
    char host[64];
    if (!c || (size_t)(c - s) >= sizeof host) return -1;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = 0;
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)atoi(c + 1));
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static int udp(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in b;
    memset(&b, 0, sizeof b);
    b.sin_family = AF_INET;
    b.sin_port = htons(port);
    b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&b, sizeof b) != 0) return -1;
    return fd;
}

static void send_to(int fd, const void *p, size_t n, const struct sockaddr_in *to)
{
    if (sendto(fd, p, n, 0, (const struct sockaddr *)to, sizeof *to) < 0)
        fprintf(stderr, "disco-peer: sendto: %s\n", strerror(errno));
}

int main(int argc, char **argv)
{
    const char *name = NULL, *cluster = "plexus", *gto = NULL, *reg = NULL;
    int gport = 0, seconds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--name"))
            name = argv[i + 1];
        else if (!strcmp(argv[i], "--cluster"))
            cluster = argv[i + 1];
        else if (!strcmp(argv[i], "--gossip-port"))
            gport = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--gossip-to"))
            gto = argv[i + 1];
        else if (!strcmp(argv[i], "--registry"))
            reg = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atoi(argv[i + 1]);
    }
    const char *secret = getenv("PLEXUS_GOSSIP_SECRET");
    struct sockaddr_in gaddr, raddr;
    if (!name || !gto || !reg || !secret || gport <= 0 || host_port(gto, &gaddr) != 0 ||
        host_port(reg, &raddr) != 0 || sodium_init() < 0) {
        fprintf(stderr, "usage: PLEXUS_GOSSIP_SECRET=... plexus_disco_peer --name N --cluster C "
                        "--gossip-port P --gossip-to IP:PORT --registry IP:PORT [--seconds S]\n");
        return 2;
    }
    plexus_beacon_config bc = {0};
    bc.secret = (const uint8_t *)secret;
    bc.secret_len = strlen(secret);
    bc.cluster_id = (const uint8_t *)cluster;
    bc.cluster_id_len = strlen(cluster);
    plexus_beacon *b = NULL;
    int gfd = udp((uint16_t)gport), rfd = udp(0);
    if (plexus_beacon_new(&bc, plexus_system_alloc(), &b) != PLEXUS_OK || gfd < 0 || rfd < 0) {
        fprintf(stderr, "disco-peer: cannot start (%s)\n", strerror(errno));
        return 1;
    }
    uint64_t inc = now_ms(CLOCK_REALTIME), seq = 0, opened = 0, handshakes = 0, views = 0;
    uint8_t beacon[PLEXUS_BEACON_MAX], prev[PLEXUS_BEACON_MAX], junk[200], in[65536];
    size_t blen = 0, plen = 0;
    plexus_buf out;
    plexus_buf_init(&out, plexus_system_alloc());
    char peer[64], old_peer[64] = "";
    uint8_t cookie[PLEXUS_REGISTRY_COOKIE_BYTES];
    int have_cookie = 0;
    uint64_t end = now_ms(CLOCK_MONOTONIC) + (uint64_t)seconds * 1000u;
    for (int round = 0; now_ms(CLOCK_MONOTONIC) < end; round++) {
        /* gossip: genuine, then hostile */
        plexus_beacon_msg m = {0};
        uint8_t nonce[PLEXUS_BEACON_NONCE];
        m.incarnation = inc;
        m.sequence = ++seq;
        m.sent_ms = now_ms(CLOCK_REALTIME);
        m.name = (plexus_bytes){(const uint8_t *)name, strlen(name)};
        randombytes_buf(nonce, sizeof nonce);
        if (plexus_beacon_seal(b, &m, nonce, beacon, sizeof beacon, &blen) != PLEXUS_OK) return 1;
        send_to(gfd, beacon, blen, &gaddr);
        uint8_t altered[PLEXUS_BEACON_MAX];
        memcpy(altered, beacon, blen);
        altered[(size_t)round % blen] ^= 0x40;
        send_to(gfd, altered, blen, &gaddr);
        randombytes_buf(junk, sizeof junk);
        send_to(gfd, junk, 1 + (size_t)round % sizeof junk, &gaddr);
        if (plen) send_to(gfd, prev, plen, &gaddr); /* a replay */
        send_to(gfd, beacon, blen / 2, &gaddr);     /* truncated */
        memcpy(prev, beacon, blen);
        plen = blen;
        /* registry: announce a new peer, query, bye the previous one, junk */
        snprintf(peer, sizeof peer, "vg%d@127.0.0.1", round);
        plexus_registry_addrs addrs = {0};
        plexus_disco_meta meta = {0};
        addrs.n = 1;
        addrs.addr[0] = (plexus_bytes){(const uint8_t *)"127.0.0.1:9", 11};
        out.len = 0;
        if (plexus_registry_encode_announce(&out, (uint64_t)round,
                                            (plexus_bytes){(const uint8_t *)peer, strlen(peer)},
                                            &addrs, &meta, 0, 0, NULL) == PLEXUS_OK)
            send_to(rfd, out.p, out.len, &raddr);
        out.len = 0;
        if (plexus_registry_encode_query(&out, (uint64_t)round, 100, have_cookie ? cookie : NULL,
                                         PLEXUS_REGISTRY_QUERY_PAD) == PLEXUS_OK)
            send_to(rfd, out.p, out.len, &raddr);
        out.len = 0;
        if (old_peer[0] &&
            plexus_registry_encode_bye(&out, (uint64_t)round,
                                       (plexus_bytes){(const uint8_t *)old_peer, strlen(old_peer)},
                                       0, NULL) == PLEXUS_OK)
            send_to(rfd, out.p, out.len, &raddr);
        send_to(rfd, junk, 1 + (size_t)(round * 7) % sizeof junk, &raddr);
        if (round % 2) strcpy(old_peer, peer); /* every other peer stays until it expires */
        /* read what came back for 100 ms */
        uint64_t until = now_ms(CLOCK_MONOTONIC) + 100;
        for (;;) {
            uint64_t t = now_ms(CLOCK_MONOTONIC);
            if (t >= until) break;
            struct pollfd p[2] = {{gfd, POLLIN, 0}, {rfd, POLLIN, 0}};
            if (poll(p, 2, (int)(until - t)) <= 0) continue;
            if (p[0].revents & POLLIN) {
                ssize_t n = recv(gfd, in, sizeof in, 0);
                plexus_beacon_msg r;
                if (n > 0 && plexus_beacon_open(b, in, (size_t)n, t, now_ms(CLOCK_REALTIME), &r) ==
                                 PLEXUS_OK)
                    opened++;
            }
            if (p[1].revents & POLLIN) {
                ssize_t n = recv(rfd, in, sizeof in, 0);
                plexus_registry_msg r;
                if (n > 0 && plexus_registry_msg_decode(in, (size_t)n, &r) == PLEXUS_OK) {
                    handshakes += r.type == PLEXUS_REGISTRY_HANDSHAKE;
                    views += r.type == PLEXUS_REGISTRY_VIEW;
                    if (r.type == PLEXUS_REGISTRY_COOKIE) {
                        memcpy(cookie, r.cookie, sizeof cookie);
                        have_cookie = 1;
                    }
                }
            }
        }
    }
    /* a last beacon marked leaving */
    plexus_beacon_msg m = {0};
    uint8_t nonce[PLEXUS_BEACON_NONCE];
    m.incarnation = inc;
    m.sequence = ++seq;
    m.sent_ms = now_ms(CLOCK_REALTIME);
    m.name = (plexus_bytes){(const uint8_t *)name, strlen(name)};
    m.meta.n = 1;
    m.meta.kv[0].key = (plexus_bytes){(const uint8_t *)"plexus.leaving", 14};
    m.meta.kv[0].val = (plexus_bytes){(const uint8_t *)"1", 1};
    randombytes_buf(nonce, sizeof nonce);
    if (plexus_beacon_seal(b, &m, nonce, beacon, sizeof beacon, &blen) == PLEXUS_OK)
        send_to(gfd, beacon, blen, &gaddr);
    printf("disco-peer: opened=%llu handshakes=%llu views=%llu\n", (unsigned long long)opened,
           (unsigned long long)handshakes, (unsigned long long)views);
    plexus_buf_free(&out);
    plexus_beacon_free(b);
    close(gfd);
    close(rfd);
    return opened && handshakes && views ? 0 : 1;
}
