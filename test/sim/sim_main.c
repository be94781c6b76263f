/*
 * plexus_sim: the deterministic election simulator's command line.
 *
 *   plexus_sim [--seeds N] [--start S] [--nodes K]
 *              [--plant-bug forget-vote|forget-membership] [--expect-caught] [--trace]
 *
 * Runs seeds S .. S+N-1 (default 1 .. 3000; by default seed % 3 picks 3, 5 or 7 nodes)
 * and ends with "plexus_sim: N passed, M failed". Every failing seed is printed with a
 * command line that replays it with a trace.
 *
 * --plant-bug forget-vote makes restarted nodes lose their vote (their term survives),
 * the classic double-vote bug. --plant-bug forget-membership makes restarted nodes take
 * their bootstrap voters for the current membership (issue 8: two leaders in one term
 * after join/2 and a restart). With --expect-caught the run succeeds (exit 0) only if
 * the checker flags a safety invariant in some seed (liveness failures are printed
 * and passed over); it stops at the first one and prints it. In that mode no
 * "passed, failed" line is printed, since the caught failures are the expected outcome.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--seeds N] [--start S] [--nodes 3..7]\n"
            "          [--plant-bug forget-vote|forget-membership] [--expect-caught] [--trace]\n",
            argv0);
    exit(2);
}

static const char *bug_name(sim_bug b)
{
    return b == SIM_BUG_FORGET_VOTE         ? "forget-vote"
           : b == SIM_BUG_FORGET_MEMBERSHIP ? "forget-membership"
                                            : "";
}

static uint64_t parse_u64(const char *s, const char *argv0)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (!s[0] || *end) usage(argv0);
    return v;
}

/* An assert() in the core (an illegal transition) or a crash kills the process; the
 * seed it happened in is still printed, from a note written before each seed. */
static char crash_note[512];
static size_t crash_note_len;

static void on_fatal_signal(int sig)
{
    ssize_t ignored = write(STDOUT_FILENO, crash_note, crash_note_len);
    (void)ignored;
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Sanitizer reports end the process without a signal; their death callback prints the
 * note instead. Weak, so the plain build links without the sanitizer runtime. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void on_sanitizer_death(void)
{
    ssize_t ignored = write(STDOUT_FILENO, crash_note, crash_note_len);
    (void)ignored;
}

static void set_crash_note(const char *argv0, uint64_t seed, const sim_options *opt)
{
    int nodes = opt->nodes ? opt->nodes : 3 + 2 * (int)(seed % 3);
    int n = snprintf(crash_note, sizeof crash_note,
                     "\nplexus_sim: FAIL seed %llu (%d nodes): the process died\n"
                     "  replay: %s --seeds 1 --start %llu --nodes %d%s%s --trace\n",
                     (unsigned long long)seed, nodes, argv0, (unsigned long long)seed, nodes,
                     opt->bug ? " --plant-bug " : "", bug_name(opt->bug));
    crash_note_len = n < 0 ? 0 : (size_t)n < sizeof crash_note ? (size_t)n : sizeof crash_note - 1;
}

static void print_failure(const char *argv0, uint64_t seed, const sim_options *opt,
                          const sim_result *r)
{
    int nodes = opt->nodes ? opt->nodes : 3 + 2 * (int)(seed % 3);
    printf("plexus_sim: FAIL seed %llu (%d nodes): %s\n", (unsigned long long)seed, nodes, r->why);
    printf("  replay: %s --seeds 1 --start %llu --nodes %d%s%s --trace\n", argv0,
           (unsigned long long)seed, nodes, opt->bug ? " --plant-bug " : "", bug_name(opt->bug));
}

int main(int argc, char **argv)
{
    uint64_t seeds = 3000, start = 1;
    bool expect_caught = false;
    sim_options opt = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--seeds") && has_value)
            seeds = parse_u64(argv[++i], argv[0]);
        else if (!strcmp(a, "--start") && has_value)
            start = parse_u64(argv[++i], argv[0]);
        else if (!strcmp(a, "--nodes") && has_value)
            opt.nodes = (int)parse_u64(argv[++i], argv[0]);
        else if (!strcmp(a, "--plant-bug") && has_value && !strcmp(argv[i + 1], "forget-vote"))
            opt.bug = SIM_BUG_FORGET_VOTE, i++;
        else if (!strcmp(a, "--plant-bug") && has_value &&
                 !strcmp(argv[i + 1], "forget-membership"))
            opt.bug = SIM_BUG_FORGET_MEMBERSHIP, i++;
        else if (!strcmp(a, "--expect-caught"))
            expect_caught = true;
        else if (!strcmp(a, "--trace"))
            opt.trace = true;
        else
            usage(argv[0]);
    }
    if (opt.nodes && (opt.nodes < 1 || opt.nodes > SIM_MAX_NODES)) usage(argv[0]);
    if (expect_caught && opt.bug == SIM_BUG_NONE) usage(argv[0]);

    signal(SIGABRT, on_fatal_signal);
    signal(SIGSEGV, on_fatal_signal);
    signal(SIGBUS, on_fatal_signal);
    signal(SIGFPE, on_fatal_signal);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(on_sanitizer_death);
    clock_t t0 = clock();
    uint64_t passed = 0, failed = 0, elections = 0, leaders = 0, crashes = 0, max_term = 0,
             changes = 0;
    double worst_timeouts = 0;
    for (uint64_t s = start; s < start + seeds; s++) {
        sim_result r;
        set_crash_note(argv[0], s, &opt);
        fflush(stdout); /* so the note follows everything already printed */
        sim_run_seed(s, &opt, &r);
        elections += r.elections;
        leaders += r.leader_changes;
        crashes += r.crashes;
        changes += r.membership_changes;
        if (r.max_term > max_term) max_term = r.max_term;
        double t = (double)r.worst_recovery_ticks / r.timeout_ticks;
        if (t > worst_timeouts) worst_timeouts = t;
        if (!r.failed) {
            passed++;
            continue;
        }
        failed++;
        print_failure(argv[0], s, &opt, &r);
        if (expect_caught && !r.liveness) {
            printf("plexus_sim: planted bug %s caught at seed %llu (seed %llu of %llu)\n",
                   bug_name(opt.bug), (unsigned long long)s, (unsigned long long)(s - start + 1),
                   (unsigned long long)seeds);
            return 0;
        }
    }
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("plexus_sim: %llu seeds in %.1f s: %llu elections, %llu leaders, %llu crashes, "
           "%llu joins/leaves, max term %llu, slowest recovery %.1f election timeouts\n",
           (unsigned long long)seeds, secs, (unsigned long long)elections,
           (unsigned long long)leaders, (unsigned long long)crashes, (unsigned long long)changes,
           (unsigned long long)max_term, worst_timeouts);
    if (expect_caught) {
        printf("plexus_sim: planted bug %s NOT caught in %llu seeds\n", bug_name(opt.bug),
               (unsigned long long)seeds);
        return 1;
    }
    printf("plexus_sim: %llu passed, %llu failed\n", (unsigned long long)passed,
           (unsigned long long)failed);
    return failed ? 1 : 0;
}
