/*
 * The C node's command line (c_src/cnode/config.c): defaults, numbers and their
 * bounds, and the one node-name rule (the core's plexus_disco_valid_name) for --seed.
 * The parser is driven by one table of options; the cases below pin what a table
 * makes easy to get wrong: an argument kind (missing argument, flags that take none),
 * a bound, a repeated option, the group an option needs, and the refused secrets.
 * Linked with config.o alone (plus the core): the parser calls no other C node file.
 */
#include "cnode/config.h"
#include "cnode/exit.h"
#include "plexus/beacon.h"

#include <stdio.h>
#include <unistd.h>
#include "harness.h"

/* Parses a NULL-terminated argument list (argv[0] added); frees cfg unless keep. */
static int parse(cn_config *cfg, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"plexus_cnode";
    for (size_t i = 0; args[i]; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    memset(cfg, 0, sizeof *cfg);
    return cn_config_parse(cfg, argc, argv);
}

static int parse_rc(const char *const *args)
{
    cn_config cfg;
    int rc = parse(&cfg, args);
    cn_config_free(&cfg);
    return rc;
}

static void defaults(void)
{
    cn_config cfg;
    CHECK_EQ_INT(parse(&cfg, (const char *const[]){"--sname", "a", NULL}), 0);
    CHECK_EQ_INT(cfg.max_backoff_ms, 10000);
    CHECK(strcmp(cfg.alive, "a") == 0);
    CHECK_EQ_INT(cfg.longnames, 0);
    CHECK_EQ_INT(cfg.n_seeds, 0);
    cn_config_free(&cfg);
}

static void full_name(void)
{
    cn_config cfg;
    CHECK_EQ_INT(parse(&cfg, (const char *const[]){"--name", "w@127.0.0.1", NULL}), 0);
    CHECK(strcmp(cfg.node, "w@127.0.0.1") == 0);
    CHECK(strcmp(cfg.host, "127.0.0.1") == 0);
    CHECK_EQ_INT(cfg.longnames, 1);
    cn_config_free(&cfg);
    CHECK_EQ_INT(parse_rc((const char *const[]){"--name", "@h", NULL}), CN_EXIT_USAGE);
    /* 150 + 1 + 150 bytes: over CN_NODE_MAX, refused rather than cut short */
    char longname[302];
    memset(longname, 'n', 150);
    longname[150] = '@';
    memset(longname + 151, 'h', 150);
    longname[301] = 0;
    CHECK_EQ_INT(parse_rc((const char *const[]){"--name", longname, NULL}), CN_EXIT_USAGE);
    CHECK_EQ_INT(parse_rc((const char *const[]){"--name", "w@", NULL}), CN_EXIT_USAGE);
}

static void backoff_option(void)
{
    cn_config cfg;
    CHECK_EQ_INT(
        parse(&cfg, (const char *const[]){"--sname", "a", "--max-backoff-ms", "5000", NULL}), 0);
    CHECK_EQ_INT(cfg.max_backoff_ms, 5000);
    cn_config_free(&cfg);
    CHECK_EQ_INT(parse_rc((const char *const[]){"--max-backoff-ms", "abc", NULL}), CN_EXIT_USAGE);
    CHECK_EQ_INT(parse_rc((const char *const[]){"--max-backoff-ms", "", NULL}), CN_EXIT_USAGE);
    CHECK_EQ_INT(parse_rc((const char *const[]){"--max-backoff-ms", "99999999999", NULL}),
                 CN_EXIT_USAGE);
}

static void seeds_follow_the_core_name_rule(void)
{
    cn_config cfg;
    CHECK_EQ_INT(parse(&cfg, (const char *const[]){"--sname", "a", "--seed", "b@h", "--seed",
                                                   "c@10.0.0.1", NULL}),
                 0);
    CHECK_EQ_INT(cfg.n_seeds, 2);
    cn_config_free(&cfg);
    /* the same names beacons and the registry refuse (plexus_disco_valid_name) */
    const char *bad[] = {"noat",  "@h",    "b@",    "b@h@i",     "b c@h",
                         "b+c@h", "b\"@h", "b/c@h", "x@\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_EQ_INT(parse_rc((const char *const[]){"--sname", "a", "--seed", bad[i], NULL}),
                     CN_EXIT_USAGE);
}

static void unknown_and_stray_arguments(void)
{
    CHECK_EQ_INT(parse_rc((const char *const[]){"--no-such-option", NULL}), CN_EXIT_USAGE);
    CHECK_EQ_INT(parse_rc((const char *const[]){"--sname", "a", "stray", NULL}), CN_EXIT_USAGE);
}

static void missing_argument(void)
{
    CHECK_EQ_INT(parse_rc((const char *const[]){"--sname", NULL}), CN_EXIT_USAGE);
    CHECK_EQ_INT(parse_rc((const char *const[]){"--sname", "a", "--seed", NULL}), CN_EXIT_USAGE);
    CHECK_EQ_INT(parse_rc((const char *const[]){"--sname", "a", "--gossip", "--gossip-port", NULL}),
                 CN_EXIT_USAGE);
    CHECK_EQ_INT(parse_rc((const char *const[]){"--sname", "a", "--cookie-file", NULL}),
                 CN_EXIT_USAGE);
    /* a flag given an argument, a short option */
    CHECK_EQ_INT(parse_rc((const char *const[]){"--sname", "a", "--json=1", NULL}), CN_EXIT_USAGE);
    CHECK_EQ_INT(parse_rc((const char *const[]){"--sname", "a", "-x", NULL}), CN_EXIT_USAGE);
}

static void repeated_options(void)
{
    cn_config cfg;
    /* a single value: the last one counts; a list: every one */
    CHECK_EQ_INT(parse(&cfg, (const char *const[]){"--sname", "a", "--ping-interval-ms", "100",
                                                   "--ping-interval-ms", "200", "--gossip",
                                                   "--gossip-target", "h:1", "--gossip-target",
                                                   "h:2", "--gossip-meta", "k=v", NULL}),
                 0);
    CHECK_EQ_INT(cfg.ping_interval_ms, 200);
    CHECK_EQ_INT(cfg.n_gossip_targets, 2);
    CHECK(strcmp(cfg.gossip_targets[1], "h:2") == 0);
    CHECK_EQ_INT(cfg.n_gossip_meta, 1);
    cn_config_free(&cfg);
    CHECK_EQ_INT(parse(&cfg, (const char *const[]){"--sname", "a", "--name", "b@h", NULL}), 0);
    CHECK(strcmp(cfg.node, "b@h") == 0);
    CHECK_EQ_INT(cfg.longnames, 1);
    cn_config_free(&cfg);
}

/* ok: parses and stores want; else refused. */
static void one_number(const char *opt, const char *val, int ok, unsigned long want)
{
    cn_config cfg;
    int rc = parse(&cfg,
                   (const char *const[]){"--sname", "a", "--gossip", "--registry", opt, val, NULL});
    CHECK_EQ_INT(rc, ok ? 0 : CN_EXIT_USAGE);
    if (ok && rc == 0) {
        unsigned long got = strcmp(opt, "--connectors") == 0        ? (unsigned long)cfg.connectors
                            : strcmp(opt, "--max-subscribers") == 0 ? cfg.max_subscribers
                            : strcmp(opt, "--gossip-port") == 0     ? cfg.gossip_port
                            : strcmp(opt, "--gossip-epoch") == 0    ? cfg.gossip_epoch
                            : strcmp(opt, "--gossip-ttl") == 0      ? cfg.gossip_ttl
                            : strcmp(opt, "--gossip-max-senders") == 0 ? cfg.gossip_max_senders
                                                                       : cfg.tick_timeout_ms;
        CHECK_EQ_INT(got, want);
    }
    cn_config_free(&cfg);
}

static void numeric_ranges(void)
{
    one_number("--tick-timeout-ms", "86400000", 1, 86400000);
    one_number("--tick-timeout-ms", "86400001", 0, 0);
    one_number("--tick-timeout-ms", "0", 0, 0);
    one_number("--tick-timeout-ms", "-1", 0, 0);
    one_number("--tick-timeout-ms", "12x", 0, 0);
    one_number("--connectors", "64", 1, 64);
    one_number("--connectors", "65", 0, 0);
    one_number("--connectors", "0", 0, 0);
    one_number("--max-subscribers", "16777216", 1, 16777216);
    one_number("--max-subscribers", "16777217", 0, 0);
    one_number("--gossip-port", "0", 1, 0);
    one_number("--gossip-port", "65535", 1, 65535);
    one_number("--gossip-port", "65536", 0, 0);
    one_number("--gossip-port", "-1", 0, 0);
    one_number("--gossip-epoch", "4294967295", 1, 4294967295UL);
    one_number("--gossip-epoch", "4294967296", 0, 0);
    one_number("--gossip-ttl", "255", 1, 255);
    one_number("--gossip-ttl", "256", 0, 0);
    one_number("--gossip-ttl", "0", 0, 0); /* 0..255 parses; the check wants at least 1 */
    one_number("--gossip-max-senders", "1", 1, 1);
    char big[16];
    snprintf(big, sizeof big, "%d", PLEXUS_BEACON_SENDERS_MAX + 1);
    one_number("--gossip-max-senders", big, 0, 0);
    /* --registry [PORT]: =PORT, the next word when it is a number, else the default */
    cn_config cfg;
    CHECK_EQ_INT(parse(&cfg, (const char *const[]){"--sname", "a", "--registry=7", NULL}), 0);
    CHECK_EQ_INT(cfg.registry_port, 7);
    cn_config_free(&cfg);
    CHECK_EQ_INT(parse(&cfg, (const char *const[]){"--sname", "a", "--registry", "0", NULL}), 0);
    CHECK_EQ_INT(cfg.registry_port, 0);
    cn_config_free(&cfg);
    CHECK_EQ_INT(parse(&cfg, (const char *const[]){"--sname", "a", "--registry", "--json", NULL}),
                 0);
    CHECK_EQ_INT(cfg.registry_port, 45893);
    CHECK_EQ_INT(cfg.json, 1);
    cn_config_free(&cfg);
    CHECK_EQ_INT(parse_rc((const char *const[]){"--sname", "a", "--registry", "65536", NULL}),
                 CN_EXIT_USAGE);
}

static void secrets_never_on_argv(void)
{
    const char *const refused[][3] = {
        {"--cookie", "x", NULL},        {"--setcookie", "x", NULL},
        {"--cookie=x", NULL, NULL},     {"--cook", "x", NULL}, /* abbreviation: ambiguous */
        {"--gossip-secret", "x", NULL}, {"--gossip-secret=x", NULL, NULL}};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        CHECK_EQ_INT(parse_rc((const char *const[]){"--sname", "a", "--gossip", refused[i][0],
                                                    refused[i][1], NULL}),
                     CN_EXIT_USAGE);
    cn_config cfg;
    CHECK_EQ_INT(parse(&cfg, (const char *const[]){"--sname", "a", "--cookie-file", "/c",
                                                   "--gossip", "--gossip-secret-file", "/s", NULL}),
                 0);
    CHECK(cfg.cookie_file && strcmp(cfg.cookie_file, "/c") == 0);
    CHECK(cfg.gossip_secret_file && strcmp(cfg.gossip_secret_file, "/s") == 0);
    cn_config_free(&cfg);
}

static void options_need_their_group(void)
{
    CHECK_EQ_INT(parse_rc((const char *const[]){"--sname", "a", "--gossip-port", "1", NULL}),
                 CN_EXIT_USAGE);
    CHECK_EQ_INT(
        parse_rc((const char *const[]){"--sname", "a", "--registry-addr", "127.0.0.1", NULL}),
        CN_EXIT_USAGE);
    CHECK_EQ_INT(parse_rc((const char *const[]){"--sname", "a", "--gossip", "--gossip-mode",
                                                "unicast", NULL}),
                 CN_EXIT_USAGE); /* unicast needs a target */
    cn_config cfg;
    CHECK_EQ_INT(parse(&cfg, (const char *const[]){"--sname", "a", "--gossip", "--gossip-mode",
                                                   "broadcast", "--no-epmd-scan", NULL}),
                 0);
    CHECK_EQ_INT(cfg.gossip_mode, CN_GOSSIP_BROADCAST);
    CHECK_EQ_INT(cfg.epmd_scan, 0);
    CHECK_EQ_INT(cfg.rpc_scan, 1);
    cn_config_free(&cfg);
    CHECK_EQ_INT(parse_rc((const char *const[]){"--sname", "a", "--gossip", "--gossip-mode",
                                                "anycast", NULL}),
                 CN_EXIT_USAGE);
    CHECK_EQ_INT(
        parse_rc((const char *const[]){"--sname", "a", "--gossip", "--gossip-if", "nowhere", NULL}),
        CN_EXIT_USAGE);
}

/* --help prints every shown option of the table (stdout to a file) and returns -1. */
static void help(void)
{
    char path[] = "/tmp/plexus_cnode_help_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    int rc = parse_rc((const char *const[]){"--help", NULL});
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    CHECK_EQ_INT(rc, -1);
    char buf[8192] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    CHECK(n > 0);
    const char *shown[] = {"--name NAME[@HOST]", "--connectors N",          "--gossip-mode MODE",
                           "--registry [PORT]",  "--registry-max-ttl-ms N", "--help"};
    for (size_t i = 0; i < sizeof shown / sizeof *shown; i++)
        CHECK(strstr(buf, shown[i]) != NULL);
    CHECK(strstr(buf, "--setcookie") == NULL); /* refused options are not advertised */
    CHECK(strstr(buf, "--gossip-secret ") == NULL);
}

int main(void)
{
    RUN(defaults);
    RUN(full_name);
    RUN(backoff_option);
    RUN(seeds_follow_the_core_name_rule);
    RUN(unknown_and_stray_arguments);
    RUN(missing_argument);
    RUN(repeated_options);
    RUN(numeric_ranges);
    RUN(secrets_never_on_argv);
    RUN(options_need_their_group);
    RUN(help);
    return harness_finish("cnode_config");
}
