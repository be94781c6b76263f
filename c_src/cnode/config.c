/*
 * Command line of the C node. One table (options[]) says, for every option, its name,
 * the kind of its argument, where it is stored and its --help line; getopt_long's
 * array, the parsing loop and --help are all made from it. Then a separate step checks
 * what needs the whole line (config_check, node_names). The cookie and the gossip
 * secret are never options: --cookie, --setcookie and --gossip-secret are in the table
 * only to be refused with a message (secrets.c reads them from files or the
 * environment).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cnode/config.h"
#include "cnode/exit.h"
#include "cnode/msg.h"
#include "plexus/beacon.h"
#include "plexus/disco.h"
#include "plexus/registry.h"

static int parse_u32(const char *s, uint32_t *out, const char *opt)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v == 0 || v > 86400000UL) {
        /* the same bound serves durations (--*-ms) and counts (--connectors, ...) */
        const char *unit = strstr(opt, "-ms") ? " of ms" : "";
        fprintf(stderr, "plexus_cnode: %s wants a positive number%s, got '%s'\n", opt, unit, s);
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

/* What the parser keeps besides cn_config while it walks argv. */
typedef struct parse_ctx {
    const char *name;       /* --name / --sname value */
    int sname;              /* the last of the two was --sname */
    const char *gossip_opt; /* an option that needs --gossip, named in the error */
    const char *registry_opt;
    int argc, *optind; /* --registry reads an optional PORT word */
    char **argv;
} parse_ctx;

typedef enum arg_kind {
    ARG_SET,   /* no argument: the int field becomes 1 */
    ARG_CLEAR, /* no argument: the int field becomes 0 */
    ARG_STR,   /* the argument itself (borrowed from argv) */
    ARG_IPV4,  /* the argument, a dotted IPv4 address */
    ARG_LIST,  /* appended to a const char ** field (repeatable; room for argc) */
    ARG_MS,    /* 1..86400000 into a uint32_t field; max: a lower ceiling (0: none) */
    ARG_U32,   /* 0..max into a uint32_t field */
    ARG_U16,   /* 0..max into a uint16_t field */
    ARG_FN     /* its own function */
} arg_kind;

typedef struct opt_def {
    const char *name; /* without the leading "--" */
    arg_kind kind;
    size_t field; /* offsetof(cn_config, ...) */
    size_t count; /* ARG_LIST: offsetof the count (size_t) */
    unsigned long max;
    int (*fn)(cn_config *cfg, parse_ctx *px, const char *arg); /* ARG_FN: 0 or -1 */
    int has_arg;         /* ARG_FN: no_argument, required_argument, optional_argument */
    char group;          /* 'g': needs --gossip, 'r': needs --registry */
    const char *section; /* --help: printed before this option */
    const char *arg;     /* --help: the argument's name */
    const char *help;    /* --help: NULL hides the option (the refused secrets) */
} opt_def;

#define F(field) offsetof(cn_config, field)

static int opt_name(cn_config *cfg, parse_ctx *px, const char *arg)
{
    (void)cfg;
    px->name = arg;
    px->sname = 0;
    return 0;
}

static int opt_sname(cn_config *cfg, parse_ctx *px, const char *arg)
{
    (void)cfg;
    px->name = arg;
    px->sname = 1;
    return 0;
}

static int opt_connectors(cn_config *cfg, parse_ctx *px, const char *arg)
{
    (void)px;
    uint32_t n;
    if (parse_u32(arg, &n, "--connectors")) return -1;
    if (n > 64) {
        fprintf(stderr, "plexus_cnode: --connectors at most 64\n");
        return -1;
    }
    cfg->connectors = (int)n;
    return 0;
}

static int opt_max_subscribers(cn_config *cfg, parse_ctx *px, const char *arg)
{
    (void)px;
    if (parse_u32(arg, &cfg->max_subscribers, "--max-subscribers")) return -1;
    if (cfg->max_subscribers > CN_MAX_SUBSCRIBERS_CAP) {
        fprintf(stderr, "plexus_cnode: --max-subscribers from 1 to %u\n", CN_MAX_SUBSCRIBERS_CAP);
        return -1;
    }
    return 0;
}

static int opt_cookie_argv(cn_config *cfg, parse_ctx *px, const char *arg)
{
    (void)cfg, (void)px, (void)arg;
    fprintf(stderr, "plexus_cnode: the cookie is never taken from the command line (other "
                    "users can read it there): use --cookie-file or PLEXUS_COOKIE\n");
    return -1;
}

static int opt_secret_argv(cn_config *cfg, parse_ctx *px, const char *arg)
{
    (void)cfg, (void)px, (void)arg;
    fprintf(stderr, "plexus_cnode: the gossip secret is never taken from the command line "
                    "(other users can read it there): use --gossip-secret-file or "
                    "PLEXUS_GOSSIP_SECRET\n");
    return -1;
}

static int opt_cluster_id(cn_config *cfg, parse_ctx *px, const char *arg)
{
    (void)px;
    cfg->gossip_cluster_id = arg;
    if (strlen(arg) <= PLEXUS_BEACON_CLUSTER_MAX) return 0;
    fprintf(stderr, "plexus_cnode: --gossip-cluster-id is longer than %d bytes\n",
            PLEXUS_BEACON_CLUSTER_MAX);
    return -1;
}

static int opt_gossip_mode(cn_config *cfg, parse_ctx *px, const char *arg)
{
    (void)px;
    static const char *const modes[] = {[CN_GOSSIP_MULTICAST] = "multicast",
                                        [CN_GOSSIP_BROADCAST] = "broadcast",
                                        [CN_GOSSIP_UNICAST] = "unicast"};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        if (strcmp(arg, modes[i]) == 0) {
            cfg->gossip_mode = (cn_gossip_mode)i;
            return 0;
        }
    }
    fprintf(stderr, "plexus_cnode: --gossip-mode is multicast, broadcast or unicast, not '%s'\n",
            arg);
    return -1;
}

static int opt_gossip_group(cn_config *cfg, parse_ctx *px, const char *arg)
{
    (void)px;
    struct in_addr a;
    cfg->gossip_group = arg;
    if (inet_pton(AF_INET, arg, &a) == 1 && IN_MULTICAST(ntohl(a.s_addr))) return 0;
    fprintf(stderr,
            "plexus_cnode: --gossip-addr wants an IPv4 multicast group (224.0.0.0/4), got '%s'\n",
            arg);
    return -1;
}

static int opt_gossip_meta(cn_config *cfg, parse_ctx *px, const char *arg)
{
    (void)px;
    cfg->gossip_meta[cfg->n_gossip_meta++] = arg;
    if (strchr(arg, '=')) return 0;
    fprintf(stderr, "plexus_cnode: --gossip-meta wants KEY=VALUE, got '%s'\n", arg);
    return -1;
}

/* --registry [PORT]: PORT as --registry=PORT or as the next word when it is a number. */
static int opt_registry(cn_config *cfg, parse_ctx *px, const char *arg)
{
    if (!arg && *px->optind < px->argc && all_digits(px->argv[*px->optind]))
        arg = px->argv[(*px->optind)++];
    cfg->registry = 1;
    if (!arg) return 0;
    unsigned long port;
    if (parse_num(arg, 65535, &port, "--registry")) return -1;
    cfg->registry_port = (uint16_t)port;
    return 0;
}

static int opt_trusted_key(cn_config *cfg, parse_ctx *px, const char *arg)
{
    (void)px;
    int ok = strlen(arg) == 2 * PLEXUS_REGISTRY_PK_BYTES && all_hex(arg) &&
             cfg->n_registry_trusted < PLEXUS_REGISTRY_TRUSTED_MAX;
    cfg->registry_trusted[cfg->n_registry_trusted++] = arg;
    if (ok) return 0;
    fprintf(stderr,
            "plexus_cnode: --registry-trusted-key wants %d hex digits (an Ed25519 public key; "
            "at most %d keys)\n",
            2 * PLEXUS_REGISTRY_PK_BYTES, PLEXUS_REGISTRY_TRUSTED_MAX);
    return -1;
}

static int opt_server_addr(cn_config *cfg, parse_ctx *px, const char *arg)
{
    (void)px;
    int ok = strlen(arg) >= 1 && strlen(arg) <= PLEXUS_REGISTRY_ADDR_MAX &&
             cfg->n_registry_server_addrs < PLEXUS_REGISTRY_ADDRS_MAX;
    cfg->registry_server_addrs[cfg->n_registry_server_addrs++] = arg;
    if (ok) return 0;
    fprintf(stderr, "plexus_cnode: --registry-server-addr: 1 to %d bytes, at most %d of them\n",
            PLEXUS_REGISTRY_ADDR_MAX, PLEXUS_REGISTRY_ADDRS_MAX);
    return -1;
}

#define FN(f, a) .kind = ARG_FN, .fn = (f), .has_arg = (a)

static const opt_def options[] = {
    {"name", FN(opt_name, required_argument), .arg = "NAME[@HOST]",
     .help = "long node name (default host: this host's name)"},
    {"sname", FN(opt_sname, required_argument), .arg = "NAME",
     .help = "short node name (default: plexus_cnode)"},
    {"seed", ARG_LIST, F(seeds), F(n_seeds), .arg = "NODE",
     .help = "a node to join through (repeatable)"},
    {"cookie-file", ARG_STR, F(cookie_file), .arg = "FILE", .help = "file holding the cookie"},
    {"json", ARG_SET, F(json), .help = "one JSON object per event on stdout"},
    {"listen", ARG_STR, F(listen_addr), .arg = "ADDR",
     .help = "IPv4 address to accept connections on\n"
             "(default: the host if it is an address, else any)"},
    {"ping-interval-ms", ARG_MS, F(ping_interval_ms), .arg = "N", .help = "1000"},
    {"suspect-after-ms", ARG_MS, F(suspect_after_ms), .arg = "N", .help = "5000"},
    {"down-after-ms", ARG_MS, F(down_after_ms), .arg = "N", .help = "30000"},
    {"tick-timeout-ms", ARG_MS, F(tick_timeout_ms), .arg = "N",
     .help = "60000 (node_down when nothing is received)"},
    {"connect-timeout-ms", ARG_MS, F(connect_timeout_ms), .arg = "N", .help = "5000"},
    {"discovery-interval-ms", ARG_MS, F(discovery_interval_ms), .arg = "N",
     .help = "5000 (rpc erlang:nodes/0, epmd names)"},
    {"max-backoff-ms", ARG_MS, F(max_backoff_ms), .arg = "N",
     .help = "10000 (reconnect backoff ceiling)"},
    {"forget-after-ms", ARG_MS, F(forget_after_ms), .arg = "N", .help = "3 x discovery interval"},
    {"connectors", FN(opt_connectors, required_argument), .arg = "N",
     .help = "4 (connector threads)"},
    {"max-subscribers", FN(opt_max_subscribers, required_argument), .arg = "N",
     .help = "65536 (more are refused: not_subscribed)"},
    {"max-peers", ARG_MS, F(max_peers), .arg = "N",
     .help = "10000 (names learned beyond it are refused)"},
    {"handshake-timeout-ms", ARG_MS, F(handshake_timeout_ms), .arg = "N",
     .help = "5000 (an incoming connection's whole handshake)"},
    {"no-epmd-scan", ARG_CLEAR, F(epmd_scan), .help = "do not learn nodes from epmd names"},
    {"no-rpc-scan", ARG_CLEAR, F(rpc_scan), .help = "do not learn nodes from erlang:nodes/0"},
    {"wait-for-seeds", ARG_SET, F(wait_for_seeds),
     .help = "keep retrying when no seed answers at start"},
    {"verbose", ARG_SET, F(verbose), .help = "log every connection attempt to stderr"},
    {"exit-on-stdin-eof", ARG_SET, F(stdin_eof),
     .help = "stop when stdin closes (for port programs)"},
    {"help", FN(NULL, no_argument), .help = ""},
    /* exact names, so that getopt does not take "--cookie" for an abbreviation */
    {"cookie", FN(opt_cookie_argv, required_argument)},
    {"setcookie", FN(opt_cookie_argv, required_argument)},
    {"gossip-secret", FN(opt_secret_argv, required_argument)},
    {"gossip", ARG_SET, F(gossip),
     .section = "Gossip beacons (sealed UDP, the gossip discovery adapter's format):",
     .help = "send and receive beacons; peers heard become nodes"},
    {"gossip-secret-file", ARG_STR, F(gossip_secret_file), .group = 'g', .arg = "FILE",
     .help = "shared secret (else $PLEXUS_GOSSIP_SECRET; never argv)"},
    {"gossip-cluster-id", FN(opt_cluster_id, required_argument), .group = 'g', .arg = "ID",
     .help = "plexus"},
    {"gossip-epoch", ARG_U32, F(gossip_epoch), .max = 4294967295UL, .group = 'g', .arg = "N",
     .help = "0 (key epoch)"},
    {"gossip-accept-previous-epoch", ARG_SET, F(gossip_accept_prev), .group = 'g', .help = ""},
    {"gossip-mode", FN(opt_gossip_mode, required_argument), .group = 'g', .arg = "MODE",
     .help = "multicast (default), broadcast or unicast"},
    {"gossip-port", ARG_U16, F(gossip_port), .max = 65535, .group = 'g', .arg = "N",
     .help = "45892"},
    {"gossip-addr", FN(opt_gossip_group, required_argument), .group = 'g', .arg = "ADDR",
     .help = "multicast group, 233.252.1.32"},
    {"gossip-if", ARG_IPV4, F(gossip_if), .group = 'g', .arg = "ADDR",
     .help = "multicast interface address, 0.0.0.0"},
    {"gossip-ttl", ARG_U32, F(gossip_ttl), .max = 255, .group = 'g', .arg = "N",
     .help = "multicast TTL, 1"},
    {"gossip-bind", ARG_IPV4, F(gossip_bind), .group = 'g', .arg = "ADDR",
     .help = "bind address (default: the group, else any)"},
    {"gossip-broadcast-addr", ARG_IPV4, F(gossip_broadcast), .group = 'g', .arg = "ADDR",
     .help = "255.255.255.255"},
    {"gossip-target", ARG_LIST, F(gossip_targets), F(n_gossip_targets), .group = 'g',
     .arg = "HOST:PORT", .help = "also send to (repeatable; the only targets in unicast)"},
    {"gossip-meta", FN(opt_gossip_meta, required_argument), .group = 'g', .arg = "KEY=VALUE",
     .help = "metadata to announce (repeatable)"},
    {"gossip-interval-ms", ARG_MS, F(gossip_interval_ms), .group = 'g', .arg = "N", .help = "1000"},
    {"gossip-peer-timeout-ms", ARG_MS, F(gossip_peer_timeout_ms), .group = 'g', .arg = "N",
     .help = "5 x interval"},
    {"gossip-max-senders", ARG_MS, F(gossip_max_senders), .max = PLEXUS_BEACON_SENDERS_MAX,
     .group = 'g', .arg = "N", .help = "1024 (replay table bound)"},
    {"gossip-max-skew-ms", ARG_MS, F(gossip_max_skew_ms), .group = 'g', .arg = "N",
     .help = "60000 (a beacon's send time vs this clock)"},
    {"registry", FN(opt_registry, optional_argument),
     .section = "TTL registry server (the registry discovery adapter's server):", .arg = "[PORT]",
     .help = "serve on UDP PORT (45893; 0 picks one)"},
    {"registry-addr", ARG_IPV4, F(registry_addr), .group = 'r', .arg = "ADDR",
     .help = "bind address, 127.0.0.1 (wider only when given)"},
    {"registry-require-signed", ARG_SET, F(registry_require_signed), .group = 'r',
     .help = "refuse unsigned announcements"},
    {"registry-trusted-key", FN(opt_trusted_key, required_argument), .group = 'r', .arg = "HEX",
     .help = "accept only these Ed25519 keys (repeatable)"},
    {"registry-server-addr", FN(opt_server_addr, required_argument), .group = 'r', .arg = "S",
     .help = "listed in every Handshake (repeatable; default ADDR:PORT)"},
    {"registry-max-entries", ARG_MS, F(registry_max_entries), .group = 'r', .arg = "N",
     .help = "100000"},
    {"registry-max-bytes", ARG_MS, F(registry_max_bytes), .group = 'r', .arg = "N",
     .help = "bytes the entries may hold, 33554432"},
    {"registry-default-ttl-ms", ARG_MS, F(registry_default_ttl_ms), .group = 'r', .arg = "N",
     .help = "90000"},
    {"registry-min-ttl-ms", ARG_MS, F(registry_min_ttl_ms), .group = 'r', .arg = "N",
     .help = "30000"},
    {"registry-max-ttl-ms", ARG_MS, F(registry_max_ttl_ms), .group = 'r', .arg = "N",
     .help = "300000"},
};
#define N_OPTIONS (sizeof options / sizeof *options)

static void usage(FILE *f)
{
    fputs("usage: plexus_cnode [--name NAME@HOST | --sname NAME] [--seed NODE]...\n"
          "                    [--cookie-file FILE] [--json] [options]\n"
          "\n"
          "A hidden Erlang node that watches every node of a cluster.\n"
          "The cookie comes from --cookie-file, else $PLEXUS_COOKIE, else ~/.erlang.cookie\n"
          "(never from the command line; a file readable by group or others is refused).\n"
          "\n",
          f);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt_def *o = &options[i];
        if (!o->help) continue;
        if (o->section) fprintf(f, "\n%s\n", o->section);
        char lhs[64];
        snprintf(lhs, sizeof lhs, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        const char *h = o->help, *nl;
        if (!*h) { /* nothing to add to the name */
            fprintf(f, "  %s\n", lhs);
            continue;
        }
        fprintf(f, "  %-26s", lhs);
        while ((nl = strchr(h, '\n'))) { /* continuation lines under the first */
            fprintf(f, " %.*s\n%28s", (int)(nl - h), h, "");
            h = nl + 1;
        }
        fprintf(f, " %s\n", h);
    }
    fputs("\n"
          "exit codes: 0 clean shutdown, 1 internal error, 2 usage, 3 cookie,\n"
          "            4 epmd/listen, 5 no seed reachable, 6 handshake refused (cookie?),\n"
          "            7 no usable gossip secret, 8 cannot open the gossip/registry socket\n",
          f);
}

/* One option of the table with its argument (NULL when it has none). 0 or -1. */
static int apply(cn_config *cfg, parse_ctx *px, const opt_def *o, const char *arg)
{
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", o->name);
    char *base = (char *)cfg;
    unsigned long num;
    int bad = 0;
    switch (o->kind) {
    case ARG_SET:
        *(int *)(base + o->field) = 1;
        break;
    case ARG_CLEAR:
        *(int *)(base + o->field) = 0;
        break;
    case ARG_IPV4: /* stored either way: the exit code stops the start */
        bad = parse_ipv4(arg, flag);
        *(const char **)(base + o->field) = arg;
        break;
    case ARG_STR:
        *(const char **)(base + o->field) = arg;
        break;
    case ARG_LIST: {
        size_t *n = (size_t *)(base + o->count);
        (*(const char ***)(base + o->field))[(*n)++] = arg;
        break;
    }
    case ARG_MS:
        bad = parse_u32(arg, (uint32_t *)(base + o->field), flag);
        if (!bad && o->max && *(uint32_t *)(base + o->field) > o->max) {
            fprintf(stderr, "plexus_cnode: %s at most %lu\n", flag, o->max);
            bad = -1;
        }
        break;
    case ARG_U32:
        bad = parse_num(arg, o->max, &num, flag);
        *(uint32_t *)(base + o->field) = (uint32_t)num;
        break;
    case ARG_U16:
        bad = parse_num(arg, o->max, &num, flag);
        *(uint16_t *)(base + o->field) = (uint16_t)num;
        break;
    case ARG_FN:
        bad = o->fn(cfg, px, arg);
        break;
    }
    if (o->group == 'g') px->gossip_opt = o->name;
    if (o->group == 'r') px->registry_opt = o->name;
    return bad;
}

static void defaults(cn_config *cfg)
{
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
}

/* Not an option of the table (or one without its argument): says so, and that the
 * cookie and the secret are never options, when it looks like one of them. */
static void unknown(const char *arg)
{
    fprintf(stderr, "plexus_cnode: unknown or incomplete option '%s'\n", arg);
    if (strncmp(arg, "--cookie", 8) == 0 && strcmp(arg, "--cookie-file") != 0)
        fprintf(stderr, "plexus_cnode: the cookie is never taken from the command line: use "
                        "--cookie-file or PLEXUS_COOKIE\n");
    if (strncmp(arg, "--gossip-secret", 15) == 0 && strncmp(arg, "--gossip-secret-file", 20) != 0)
        fprintf(stderr, "plexus_cnode: the gossip secret is never taken from the command line: "
                        "use --gossip-secret-file or PLEXUS_GOSSIP_SECRET\n");
}

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
        fprintf(stderr, "plexus_cnode: --%s needs --gossip\n", gossip_opt);
        return CN_EXIT_USAGE;
    }
    if (registry_opt && !cfg->registry) {
        fprintf(stderr, "plexus_cnode: --%s needs --registry\n", registry_opt);
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
    struct option longopts[N_OPTIONS + 1];
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt_def *o = &options[i];
        int has_arg = o->kind == ARG_FN                            ? o->has_arg
                      : o->kind == ARG_SET || o->kind == ARG_CLEAR ? no_argument
                                                                   : required_argument;
        longopts[i] = (struct option){o->name, has_arg, NULL, 256 + (int)i};
    }
    longopts[N_OPTIONS] = (struct option){0, 0, 0, 0};
    defaults(cfg);
    cfg->seeds = calloc((size_t)argc + 1, sizeof *cfg->seeds);
    cfg->gossip_targets = calloc((size_t)argc + 1, sizeof *cfg->gossip_targets);
    cfg->gossip_meta = calloc((size_t)argc + 1, sizeof *cfg->gossip_meta);
    cfg->registry_trusted = calloc((size_t)argc + 1, sizeof *cfg->registry_trusted);
    cfg->registry_server_addrs = calloc((size_t)argc + 1, sizeof *cfg->registry_server_addrs);
    if (!cfg->seeds || !cfg->gossip_targets || !cfg->gossip_meta || !cfg->registry_trusted ||
        !cfg->registry_server_addrs)
        return CN_EXIT_FAILURE;
    parse_ctx px = {.argc = argc, .argv = argv, .optind = &optind};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c < 256 || c >= 256 + (int)N_OPTIONS) {
            unknown(argv[optind - 1]);
            return CN_EXIT_USAGE;
        }
        const opt_def *o = &options[c - 256];
        if (o->kind == ARG_FN && !o->fn) { /* --help */
            usage(stdout);
            return -1;
        }
        if (apply(cfg, &px, o, optarg)) return CN_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "plexus_cnode: unexpected argument '%s'\n", argv[optind]);
        return CN_EXIT_USAGE;
    }
    int rc = config_check(cfg, px.gossip_opt, px.registry_opt);
    if (rc) return rc;
    return node_names(cfg, px.name, px.sname);
}
