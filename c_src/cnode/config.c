/*
 * Command line of the C node: options into cn_config, then the checks that need the
 * whole line. The cookie and the gossip secret are loaded by secrets.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cnode/config.h"
#include "cnode/exit.h"
#include "cnode/msg.h"
#include "plexus/beacon.h"
#include "plexus/disco.h"
#include "plexus/registry.h"

static void usage(FILE *f)
{
    fputs("usage: plexus_cnode [--name NAME@HOST | --sname NAME] [--seed NODE]...\n"
          "                    [--cookie-file FILE] [--json] [options]\n"
          "\n"
          "A hidden Erlang node that watches every node of a cluster.\n"
          "The cookie comes from --cookie-file, else $PLEXUS_COOKIE, else ~/.erlang.cookie\n"
          "(never from the command line; a file readable by group or others is refused).\n"
          "\n"
          "  --name NAME[@HOST]         long node name (default host: this host's name)\n"
          "  --sname NAME               short node name (default: plexus_cnode)\n"
          "  --seed NODE                a node to join through (repeatable)\n"
          "  --cookie-file FILE         file holding the cookie\n"
          "  --json                     one JSON object per event on stdout\n"
          "  --listen ADDR              IPv4 address to accept connections on\n"
          "                             (default: the host if it is an address, else any)\n"
          "  --ping-interval-ms N       1000\n"
          "  --suspect-after-ms N       5000\n"
          "  --down-after-ms N          30000\n"
          "  --tick-timeout-ms N        60000 (node_down when nothing is received)\n"
          "  --connect-timeout-ms N     5000\n"
          "  --discovery-interval-ms N  5000 (rpc erlang:nodes/0, epmd names)\n"
          "  --max-backoff-ms N         10000 (reconnect backoff ceiling)\n"
          "  --forget-after-ms N        3 x discovery interval\n"
          "  --connectors N             4 (connector threads)\n"
          "  --max-subscribers N        65536 (more are refused: not_subscribed)\n"
          "  --max-peers N              10000 (names learned beyond it are refused)\n"
          "  --handshake-timeout-ms N   5000 (an incoming connection's whole handshake)\n"
          "  --no-epmd-scan             do not learn nodes from epmd names\n"
          "  --no-rpc-scan              do not learn nodes from erlang:nodes/0\n"
          "  --wait-for-seeds           keep retrying when no seed answers at start\n"
          "  --verbose                  log every connection attempt to stderr\n"
          "  --exit-on-stdin-eof        stop when stdin closes (for port programs)\n"
          "  --help\n"
          "\n"
          "Gossip beacons (sealed UDP, the gossip discovery adapter's format):\n"
          "  --gossip                   send and receive beacons; peers heard become nodes\n"
          "  --gossip-secret-file FILE  shared secret (else $PLEXUS_GOSSIP_SECRET; never argv)\n"
          "  --gossip-cluster-id ID     plexus\n"
          "  --gossip-epoch N           0 (key epoch)\n"
          "  --gossip-accept-previous-epoch\n"
          "  --gossip-mode MODE         multicast (default), broadcast or unicast\n"
          "  --gossip-port N            45892\n"
          "  --gossip-addr ADDR         multicast group, 233.252.1.32\n"
          "  --gossip-if ADDR           multicast interface address, 0.0.0.0\n"
          "  --gossip-ttl N             multicast TTL, 1\n"
          "  --gossip-bind ADDR         bind address (default: the group, else any)\n"
          "  --gossip-broadcast-addr ADDR  255.255.255.255\n"
          "  --gossip-target HOST:PORT  also send to (repeatable; the only targets in unicast)\n"
          "  --gossip-meta KEY=VALUE    metadata to announce (repeatable)\n"
          "  --gossip-interval-ms N     1000\n"
          "  --gossip-peer-timeout-ms N 5 x interval\n"
          "  --gossip-max-senders N     1024 (replay table bound)\n"
          "\n"
          "TTL registry server (the registry discovery adapter's server):\n"
          "  --registry [PORT]          serve on UDP PORT (45893; 0 picks one)\n"
          "  --registry-addr ADDR       bind address, 127.0.0.1 (wider only when given)\n"
          "  --registry-require-signed  refuse unsigned announcements\n"
          "  --registry-trusted-key HEX accept only these Ed25519 keys (repeatable)\n"
          "  --registry-server-addr S   listed in every Handshake (repeatable; default ADDR:PORT)\n"
          "  --registry-max-entries N   100000\n"
          "  --registry-default-ttl-ms N / --registry-min-ttl-ms N / --registry-max-ttl-ms N\n"
          "                             90000 / 30000 / 300000\n"
          "\n"
          "exit codes: 0 clean shutdown, 1 internal error, 2 usage, 3 cookie,\n"
          "            4 epmd/listen, 5 no seed reachable, 6 handshake refused (cookie?),\n"
          "            7 no usable gossip secret, 8 cannot open the gossip/registry socket\n",
          f);
}

static int parse_u32(const char *s, uint32_t *out, const char *opt)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v == 0 || v > 86400000UL) {
        fprintf(stderr, "plexus_cnode: %s wants a positive number of ms, got '%s'\n", opt, s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* 0..max, 0 allowed (ports, epochs). */
static int parse_num(const char *s, unsigned long max, unsigned long *out, const char *opt)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *s == '\0' || *s == '-' || *end != '\0' || v > max) {
        fprintf(stderr, "plexus_cnode: %s wants a number from 0 to %lu, got '%s'\n", opt, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_ipv4(const char *s, const char *opt)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) == 1) return 0;
    fprintf(stderr, "plexus_cnode: %s wants an IPv4 address, got '%s'\n", opt, s);
    return -1;
}

static int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

static int all_hex(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return 0;
    return 1;
}

void cn_config_free(cn_config *cfg)
{
    free(cfg->seeds);
    free(cfg->gossip_targets);
    free(cfg->gossip_meta);
    free(cfg->registry_trusted);
    free(cfg->registry_server_addrs);
    cfg->seeds = cfg->gossip_targets = cfg->gossip_meta = NULL;
    cfg->registry_trusted = cfg->registry_server_addrs = NULL;
}

static int this_host(char *out, size_t n, int longnames)
{
    char h[256];
    if (gethostname(h, sizeof h) != 0) return -1;
    h[sizeof h - 1] = 0;
    if (!longnames) {
        char *dot = strchr(h, '.');
        if (dot) *dot = 0;
    }
    if (strlen(h) >= n) return -1;
    strcpy(out, h);
    return 0;
}

enum {
    O_NAME = 256,
    O_SNAME,
    O_SEED,
    O_COOKIE,
    O_JSON,
    O_LISTEN,
    O_PING,
    O_SUSPECT,
    O_DOWN,
    O_TICK,
    O_CTMO,
    O_DISC,
    O_BACKOFF,
    O_FORGET,
    O_CONNECTORS,
    O_NO_EPMD,
    O_NO_RPC,
    O_WAIT,
    O_VERBOSE,
    O_HELP,
    O_STDIN,
    O_COOKIE_ARGV,
    O_MAX_PEERS,
    O_HS_TMO,
    /* gossip */
    O_GOSSIP,
    O_G_SECRET_FILE,
    O_G_SECRET_ARGV,
    O_G_CLUSTER,
    O_G_EPOCH,
    O_G_PREV,
    O_G_MODE,
    O_G_PORT,
    O_G_ADDR,
    O_G_IF,
    O_G_TTL,
    O_G_BIND,
    O_G_BCAST,
    O_G_TARGET,
    O_G_META,
    O_G_INTERVAL,
    O_G_TIMEOUT,
    O_G_SENDERS,
    /* registry */
    O_REGISTRY,
    O_R_ADDR,
    O_R_SIGNED,
    O_R_TRUSTED,
    O_R_SERVER_ADDR,
    O_R_MAX,
    O_R_DEFAULT_TTL,
    O_R_MIN_TTL,
    O_R_MAX_TTL,
    O_MAX_SUBS
};

/* The checks that need the whole command line, and the defaults derived from other
 * options (run after every option is read). gossip_opt / registry_opt: one option of
 * that group that was given, named in the error when the group is off. */
static int config_check(cn_config *cfg, const char *gossip_opt, const char *registry_opt)
{
    if (cfg->down_after_ms <= cfg->suspect_after_ms) {
        fprintf(stderr, "plexus_cnode: --down-after-ms must exceed --suspect-after-ms\n");
        return CN_EXIT_USAGE;
    }
    if (!cfg->forget_after_ms) cfg->forget_after_ms = 3 * cfg->discovery_interval_ms;
    if (gossip_opt && !cfg->gossip) {
        fprintf(stderr, "plexus_cnode: %s needs --gossip\n", gossip_opt);
        return CN_EXIT_USAGE;
    }
    if (registry_opt && !cfg->registry) {
        fprintf(stderr, "plexus_cnode: %s needs --registry\n", registry_opt);
        return CN_EXIT_USAGE;
    }
    if (cfg->gossip && cfg->gossip_mode == CN_GOSSIP_UNICAST && cfg->n_gossip_targets == 0) {
        fprintf(stderr, "plexus_cnode: --gossip-mode unicast needs at least one --gossip-target\n");
        return CN_EXIT_USAGE;
    }
    if (cfg->gossip && cfg->gossip_ttl == 0) {
        fprintf(stderr, "plexus_cnode: --gossip-ttl must be at least 1\n");
        return CN_EXIT_USAGE;
    }
    if (!cfg->gossip_peer_timeout_ms) {
        uint64_t t = 5ull * cfg->gossip_interval_ms;
        cfg->gossip_peer_timeout_ms = t > 86400000u ? 86400000u : (uint32_t)t;
    }
    return 0;
}

/* This node's name (--name / --sname, the host found when not given) and the seeds',
 * checked by the one node-name rule, the core's. */
static int node_names(cn_config *cfg, const char *name, int sname)
{
    if (!name) {
        name = "plexus_cnode";
        sname = 1;
    }
    cfg->longnames = !sname;
    const char *at = strchr(name, '@');
    size_t alen = at ? (size_t)(at - name) : strlen(name);
    if (alen == 0 || alen > 200) {
        fprintf(stderr, "plexus_cnode: bad node name '%s'\n", name);
        return CN_EXIT_USAGE;
    }
    memcpy(cfg->alive, name, alen);
    cfg->alive[alen] = 0;
    if (at) {
        if (strlen(at + 1) == 0 || strlen(at + 1) > 200) {
            fprintf(stderr, "plexus_cnode: bad host in '%s'\n", name);
            return CN_EXIT_USAGE;
        }
        strcpy(cfg->host, at + 1);
    } else if (this_host(cfg->host, sizeof cfg->host, cfg->longnames) != 0) {
        fprintf(stderr, "plexus_cnode: cannot find this host's name\n");
        return CN_EXIT_FAILURE;
    }
    /* alive and host are each bounded, their sum is not: a longer name is refused, not cut */
    int nl = snprintf(cfg->node, sizeof cfg->node, "%s@%s", cfg->alive, cfg->host);
    if (nl < 0 || (size_t)nl >= sizeof cfg->node) {
        fprintf(stderr, "plexus_cnode: node name longer than %d bytes\n", CN_NODE_MAX);
        return CN_EXIT_USAGE;
    }
    for (size_t i = 0; i < cfg->n_seeds; i++) {
        if (!plexus_disco_valid_name((const uint8_t *)cfg->seeds[i], strlen(cfg->seeds[i]))) {
            fprintf(stderr, "plexus_cnode: --seed '%s' is not a node name (name@host)\n",
                    cfg->seeds[i]);
            return CN_EXIT_USAGE;
        }
    }
    return 0;
}

int cn_config_parse(cn_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, 0, O_NAME},
        {"sname", required_argument, 0, O_SNAME},
        {"seed", required_argument, 0, O_SEED},
        {"cookie-file", required_argument, 0, O_COOKIE},
        {"json", no_argument, 0, O_JSON},
        {"listen", required_argument, 0, O_LISTEN},
        {"ping-interval-ms", required_argument, 0, O_PING},
        {"suspect-after-ms", required_argument, 0, O_SUSPECT},
        {"down-after-ms", required_argument, 0, O_DOWN},
        {"tick-timeout-ms", required_argument, 0, O_TICK},
        {"connect-timeout-ms", required_argument, 0, O_CTMO},
        {"discovery-interval-ms", required_argument, 0, O_DISC},
        {"max-backoff-ms", required_argument, 0, O_BACKOFF},
        {"forget-after-ms", required_argument, 0, O_FORGET},
        {"connectors", required_argument, 0, O_CONNECTORS},
        {"max-subscribers", required_argument, 0, O_MAX_SUBS},
        {"no-epmd-scan", no_argument, 0, O_NO_EPMD},
        {"no-rpc-scan", no_argument, 0, O_NO_RPC},
        {"wait-for-seeds", no_argument, 0, O_WAIT},
        {"verbose", no_argument, 0, O_VERBOSE},
        {"help", no_argument, 0, O_HELP},
        {"exit-on-stdin-eof", no_argument, 0, O_STDIN},
        {"max-peers", required_argument, 0, O_MAX_PEERS},
        {"handshake-timeout-ms", required_argument, 0, O_HS_TMO},
        /* exact matches so that getopt does not take "--cookie" as an abbreviation */
        {"cookie", required_argument, 0, O_COOKIE_ARGV},
        {"setcookie", required_argument, 0, O_COOKIE_ARGV},
        {"gossip", no_argument, 0, O_GOSSIP},
        {"gossip-secret-file", required_argument, 0, O_G_SECRET_FILE},
        {"gossip-secret", required_argument, 0, O_G_SECRET_ARGV},
        {"gossip-cluster-id", required_argument, 0, O_G_CLUSTER},
        {"gossip-epoch", required_argument, 0, O_G_EPOCH},
        {"gossip-accept-previous-epoch", no_argument, 0, O_G_PREV},
        {"gossip-mode", required_argument, 0, O_G_MODE},
        {"gossip-port", required_argument, 0, O_G_PORT},
        {"gossip-addr", required_argument, 0, O_G_ADDR},
        {"gossip-if", required_argument, 0, O_G_IF},
        {"gossip-ttl", required_argument, 0, O_G_TTL},
        {"gossip-bind", required_argument, 0, O_G_BIND},
        {"gossip-broadcast-addr", required_argument, 0, O_G_BCAST},
        {"gossip-target", required_argument, 0, O_G_TARGET},
        {"gossip-meta", required_argument, 0, O_G_META},
        {"gossip-interval-ms", required_argument, 0, O_G_INTERVAL},
        {"gossip-peer-timeout-ms", required_argument, 0, O_G_TIMEOUT},
        {"gossip-max-senders", required_argument, 0, O_G_SENDERS},
        {"registry", optional_argument, 0, O_REGISTRY},
        {"registry-addr", required_argument, 0, O_R_ADDR},
        {"registry-require-signed", no_argument, 0, O_R_SIGNED},
        {"registry-trusted-key", required_argument, 0, O_R_TRUSTED},
        {"registry-server-addr", required_argument, 0, O_R_SERVER_ADDR},
        {"registry-max-entries", required_argument, 0, O_R_MAX},
        {"registry-default-ttl-ms", required_argument, 0, O_R_DEFAULT_TTL},
        {"registry-min-ttl-ms", required_argument, 0, O_R_MIN_TTL},
        {"registry-max-ttl-ms", required_argument, 0, O_R_MAX_TTL},
        {0, 0, 0, 0}};
    memset(cfg, 0, sizeof *cfg);
    cfg->ping_interval_ms = 1000;
    cfg->suspect_after_ms = 5000;
    cfg->down_after_ms = 30000;
    cfg->tick_timeout_ms = 60000;
    cfg->connect_timeout_ms = 5000;
    cfg->discovery_interval_ms = 5000;
    cfg->max_backoff_ms = 10000;
    cfg->connectors = 4;
    cfg->max_subscribers = CN_MAX_SUBSCRIBERS_DEFAULT;
    cfg->max_peers = 10000;
    cfg->handshake_timeout_ms = 5000;
    cfg->epmd_scan = 1;
    cfg->rpc_scan = 1;
    cfg->gossip_cluster_id = "plexus";
    cfg->gossip_port = 45892;
    cfg->gossip_group = "233.252.1.32";
    cfg->gossip_if = "0.0.0.0";
    cfg->gossip_broadcast = "255.255.255.255";
    cfg->gossip_ttl = 1;
    cfg->gossip_interval_ms = 1000;
    cfg->gossip_max_senders = PLEXUS_BEACON_SENDERS_DEFAULT;
    cfg->registry_port = 45893;
    cfg->registry_addr = "127.0.0.1"; /* serving other hosts is an explicit choice */
    const char *name = NULL;
    int sname = 0;
    uint32_t connectors = 4;
    const char *gossip_opt = NULL, *registry_opt = NULL; /* one such option, for errors */
    unsigned long num;
    cfg->seeds = calloc((size_t)argc + 1, sizeof *cfg->seeds);
    cfg->gossip_targets = calloc((size_t)argc + 1, sizeof *cfg->gossip_targets);
    cfg->gossip_meta = calloc((size_t)argc + 1, sizeof *cfg->gossip_meta);
    cfg->registry_trusted = calloc((size_t)argc + 1, sizeof *cfg->registry_trusted);
    cfg->registry_server_addrs = calloc((size_t)argc + 1, sizeof *cfg->registry_server_addrs);
    if (!cfg->seeds || !cfg->gossip_targets || !cfg->gossip_meta || !cfg->registry_trusted ||
        !cfg->registry_server_addrs)
        return CN_EXIT_FAILURE;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_NAME:
            name = optarg;
            sname = 0;
            break;
        case O_SNAME:
            name = optarg;
            sname = 1;
            break;
        case O_SEED:
            cfg->seeds[cfg->n_seeds++] = optarg;
            break;
        case O_COOKIE:
            cfg->cookie_file = optarg;
            break;
        case O_JSON:
            cfg->json = 1;
            break;
        case O_LISTEN:
            cfg->listen_addr = optarg;
            break;
        case O_PING:
            bad = parse_u32(optarg, &cfg->ping_interval_ms, "--ping-interval-ms");
            break;
        case O_SUSPECT:
            bad = parse_u32(optarg, &cfg->suspect_after_ms, "--suspect-after-ms");
            break;
        case O_DOWN:
            bad = parse_u32(optarg, &cfg->down_after_ms, "--down-after-ms");
            break;
        case O_TICK:
            bad = parse_u32(optarg, &cfg->tick_timeout_ms, "--tick-timeout-ms");
            break;
        case O_CTMO:
            bad = parse_u32(optarg, &cfg->connect_timeout_ms, "--connect-timeout-ms");
            break;
        case O_DISC:
            bad = parse_u32(optarg, &cfg->discovery_interval_ms, "--discovery-interval-ms");
            break;
        case O_BACKOFF:
            bad = parse_u32(optarg, &cfg->max_backoff_ms, "--max-backoff-ms");
            break;
        case O_FORGET:
            bad = parse_u32(optarg, &cfg->forget_after_ms, "--forget-after-ms");
            break;
        case O_CONNECTORS:
            bad = parse_u32(optarg, &connectors, "--connectors");
            if (!bad && connectors > 64) {
                fprintf(stderr, "plexus_cnode: --connectors at most 64\n");
                bad = 1;
            }
            cfg->connectors = (int)connectors;
            break;
        case O_MAX_SUBS:
            bad = parse_u32(optarg, &cfg->max_subscribers, "--max-subscribers");
            if (!bad &&
                (cfg->max_subscribers == 0 || cfg->max_subscribers > CN_MAX_SUBSCRIBERS_CAP)) {
                fprintf(stderr, "plexus_cnode: --max-subscribers from 1 to %u\n",
                        CN_MAX_SUBSCRIBERS_CAP);
                bad = 1;
            }
            break;
        case O_HS_TMO:
            bad = parse_u32(optarg, &cfg->handshake_timeout_ms, "--handshake-timeout-ms");
            break;
        case O_MAX_PEERS:
            bad = parse_u32(optarg, &cfg->max_peers, "--max-peers");
            break;
        case O_NO_EPMD:
            cfg->epmd_scan = 0;
            break;
        case O_NO_RPC:
            cfg->rpc_scan = 0;
            break;
        case O_WAIT:
            cfg->wait_for_seeds = 1;
            break;
        case O_VERBOSE:
            cfg->verbose = 1;
            break;
        case O_HELP:
            usage(stdout);
            return -1;
        case O_STDIN:
            cfg->stdin_eof = 1;
            break;
        case O_COOKIE_ARGV:
            fprintf(stderr, "plexus_cnode: the cookie is never taken from the command line "
                            "(other users can read it there): use --cookie-file or "
                            "PLEXUS_COOKIE\n");
            bad = 1;
            break;
        case O_G_SECRET_ARGV:
            fprintf(stderr, "plexus_cnode: the gossip secret is never taken from the command "
                            "line (other users can read it there): use --gossip-secret-file "
                            "or PLEXUS_GOSSIP_SECRET\n");
            bad = 1;
            break;
        case O_GOSSIP:
            cfg->gossip = 1;
            break;
        case O_G_SECRET_FILE:
            cfg->gossip_secret_file = optarg;
            gossip_opt = "--gossip-secret-file";
            break;
        case O_G_CLUSTER:
            if (strlen(optarg) > PLEXUS_BEACON_CLUSTER_MAX) {
                fprintf(stderr, "plexus_cnode: --gossip-cluster-id is longer than %d bytes\n",
                        PLEXUS_BEACON_CLUSTER_MAX);
                bad = 1;
            }
            cfg->gossip_cluster_id = optarg;
            gossip_opt = "--gossip-cluster-id";
            break;
        case O_G_EPOCH:
            bad = parse_num(optarg, 4294967295UL, &num, "--gossip-epoch");
            cfg->gossip_epoch = (uint32_t)num;
            gossip_opt = "--gossip-epoch";
            break;
        case O_G_PREV:
            cfg->gossip_accept_prev = 1;
            gossip_opt = "--gossip-accept-previous-epoch";
            break;
        case O_G_MODE:
            if (strcmp(optarg, "multicast") == 0) {
                cfg->gossip_mode = CN_GOSSIP_MULTICAST;
            } else if (strcmp(optarg, "broadcast") == 0) {
                cfg->gossip_mode = CN_GOSSIP_BROADCAST;
            } else if (strcmp(optarg, "unicast") == 0) {
                cfg->gossip_mode = CN_GOSSIP_UNICAST;
            } else {
                fprintf(stderr,
                        "plexus_cnode: --gossip-mode is multicast, broadcast or "
                        "unicast, not '%s'\n",
                        optarg);
                bad = 1;
            }
            gossip_opt = "--gossip-mode";
            break;
        case O_G_PORT:
            bad = parse_num(optarg, 65535, &num, "--gossip-port");
            cfg->gossip_port = (uint16_t)num;
            gossip_opt = "--gossip-port";
            break;
        case O_G_ADDR: {
            struct in_addr a;
            if (inet_pton(AF_INET, optarg, &a) != 1 || !IN_MULTICAST(ntohl(a.s_addr))) {
                fprintf(stderr,
                        "plexus_cnode: --gossip-addr wants an IPv4 multicast group "
                        "(224.0.0.0/4), got '%s'\n",
                        optarg);
                bad = 1;
            }
            cfg->gossip_group = optarg;
            gossip_opt = "--gossip-addr";
            break;
        }
        case O_G_IF:
            bad = parse_ipv4(optarg, "--gossip-if");
            cfg->gossip_if = optarg;
            gossip_opt = "--gossip-if";
            break;
        case O_G_TTL:
            bad = parse_num(optarg, 255, &num, "--gossip-ttl");
            cfg->gossip_ttl = (uint32_t)num;
            gossip_opt = "--gossip-ttl";
            break;
        case O_G_BIND:
            bad = parse_ipv4(optarg, "--gossip-bind");
            cfg->gossip_bind = optarg;
            gossip_opt = "--gossip-bind";
            break;
        case O_G_BCAST:
            bad = parse_ipv4(optarg, "--gossip-broadcast-addr");
            cfg->gossip_broadcast = optarg;
            gossip_opt = "--gossip-broadcast-addr";
            break;
        case O_G_TARGET:
            cfg->gossip_targets[cfg->n_gossip_targets++] = optarg;
            gossip_opt = "--gossip-target";
            break;
        case O_G_META:
            if (!strchr(optarg, '=')) {
                fprintf(stderr, "plexus_cnode: --gossip-meta wants KEY=VALUE, got '%s'\n", optarg);
                bad = 1;
            }
            cfg->gossip_meta[cfg->n_gossip_meta++] = optarg;
            gossip_opt = "--gossip-meta";
            break;
        case O_G_INTERVAL:
            bad = parse_u32(optarg, &cfg->gossip_interval_ms, "--gossip-interval-ms");
            gossip_opt = "--gossip-interval-ms";
            break;
        case O_G_TIMEOUT:
            bad = parse_u32(optarg, &cfg->gossip_peer_timeout_ms, "--gossip-peer-timeout-ms");
            gossip_opt = "--gossip-peer-timeout-ms";
            break;
        case O_G_SENDERS:
            bad = parse_u32(optarg, &cfg->gossip_max_senders, "--gossip-max-senders");
            if (!bad && cfg->gossip_max_senders > PLEXUS_BEACON_SENDERS_MAX) {
                fprintf(stderr, "plexus_cnode: --gossip-max-senders at most %d\n",
                        PLEXUS_BEACON_SENDERS_MAX);
                bad = 1;
            }
            gossip_opt = "--gossip-max-senders";
            break;
        case O_REGISTRY: {
            /* optional PORT, as --registry=PORT or as the next word when it is a number */
            const char *port = optarg;
            if (!port && optind < argc && all_digits(argv[optind])) port = argv[optind++];
            cfg->registry = 1;
            if (port) {
                bad = parse_num(port, 65535, &num, "--registry");
                cfg->registry_port = (uint16_t)num;
            }
            break;
        }
        case O_R_ADDR:
            bad = parse_ipv4(optarg, "--registry-addr");
            cfg->registry_addr = optarg;
            registry_opt = "--registry-addr";
            break;
        case O_R_SIGNED:
            cfg->registry_require_signed = 1;
            registry_opt = "--registry-require-signed";
            break;
        case O_R_TRUSTED:
            if (strlen(optarg) != 2 * PLEXUS_REGISTRY_PK_BYTES || !all_hex(optarg) ||
                cfg->n_registry_trusted == PLEXUS_REGISTRY_TRUSTED_MAX) {
                fprintf(stderr,
                        "plexus_cnode: --registry-trusted-key wants %d hex digits "
                        "(an Ed25519 public key; at most %d keys)\n",
                        2 * PLEXUS_REGISTRY_PK_BYTES, PLEXUS_REGISTRY_TRUSTED_MAX);
                bad = 1;
            }
            cfg->registry_trusted[cfg->n_registry_trusted++] = optarg;
            registry_opt = "--registry-trusted-key";
            break;
        case O_R_SERVER_ADDR:
            if (strlen(optarg) < 1 || strlen(optarg) > PLEXUS_REGISTRY_ADDR_MAX ||
                cfg->n_registry_server_addrs == PLEXUS_REGISTRY_ADDRS_MAX) {
                fprintf(stderr,
                        "plexus_cnode: --registry-server-addr: 1 to %d bytes, at most "
                        "%d of them\n",
                        PLEXUS_REGISTRY_ADDR_MAX, PLEXUS_REGISTRY_ADDRS_MAX);
                bad = 1;
            }
            cfg->registry_server_addrs[cfg->n_registry_server_addrs++] = optarg;
            registry_opt = "--registry-server-addr";
            break;
        case O_R_MAX:
            bad = parse_u32(optarg, &cfg->registry_max_entries, "--registry-max-entries");
            registry_opt = "--registry-max-entries";
            break;
        case O_R_DEFAULT_TTL:
            bad = parse_u32(optarg, &cfg->registry_default_ttl_ms, "--registry-default-ttl-ms");
            registry_opt = "--registry-default-ttl-ms";
            break;
        case O_R_MIN_TTL:
            bad = parse_u32(optarg, &cfg->registry_min_ttl_ms, "--registry-min-ttl-ms");
            registry_opt = "--registry-min-ttl-ms";
            break;
        case O_R_MAX_TTL:
            bad = parse_u32(optarg, &cfg->registry_max_ttl_ms, "--registry-max-ttl-ms");
            registry_opt = "--registry-max-ttl-ms";
            break;
        default:
            fprintf(stderr, "plexus_cnode: unknown or incomplete option '%s'\n", argv[optind - 1]);
            if (optind - 1 > 0 && strncmp(argv[optind - 1], "--cookie", 8) == 0 &&
                strcmp(argv[optind - 1], "--cookie-file") != 0)
                fprintf(stderr, "plexus_cnode: the cookie is never taken from the command "
                                "line: use --cookie-file or PLEXUS_COOKIE\n");
            if (optind - 1 > 0 && strncmp(argv[optind - 1], "--gossip-secret", 15) == 0 &&
                strncmp(argv[optind - 1], "--gossip-secret-file", 20) != 0)
                fprintf(stderr, "plexus_cnode: the gossip secret is never taken from the "
                                "command line: use --gossip-secret-file or "
                                "PLEXUS_GOSSIP_SECRET\n");
            bad = 1;
        }
        if (bad) return CN_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "plexus_cnode: unexpected argument '%s'\n", argv[optind]);
        return CN_EXIT_USAGE;
    }
    int rc = config_check(cfg, gossip_opt, registry_opt);
    if (rc) return rc;
    return node_names(cfg, name, sname);
}
