/*
 * The C node's command line (c_src/cnode/config.c): defaults, numbers and their
 * bounds, and the one node-name rule (the core's plexus_disco_valid_name) for --seed.
 * Linked with config.o alone (plus the core): the parser calls no other C node file.
 */
#include "cnode/config.h"
#include "cnode/exit.h"
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

int main(void)
{
    RUN(defaults);
    RUN(full_name);
    RUN(backoff_option);
    RUN(seeds_follow_the_core_name_rule);
    RUN(unknown_and_stray_arguments);
    return harness_finish("cnode_config");
}
