/*
 * Minimal C test harness for the core tests.
 *
 * Each test file defines `static void test_x(void)` functions and a main() that calls
 * RUN(test_x) for each, then returns harness_finish("name"), which prints the plain
 * closing line "name: N passed, N failed" that test/run_tests.sh adds up.
 *
 * The fault allocator counts live blocks (a leak check for every test) and can fail the
 * Nth allocation, so a test can walk every PLEXUS_ENOMEM path: see FOR_EACH_FAULT.
 */
#ifndef PLEXUS_TEST_HARNESS_H
#define PLEXUS_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/common.h"

extern int harness_failed_checks;
extern const char *harness_current;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            harness_failed_checks++;                                                               \
            fprintf(stderr, "  FAIL %s:%d in %s: %s\n", __FILE__, __LINE__, harness_current,       \
                    #cond);                                                                        \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_) {                                                                          \
            harness_failed_checks++;                                                               \
            fprintf(stderr, "  FAIL %s:%d in %s: %s == %s (%lld != %lld)\n", __FILE__, __LINE__,   \
                    harness_current, #a, #b, va_, vb_);                                            \
        }                                                                                          \
    } while (0)

#define RUN(fn) harness_run(#fn, fn)

void harness_run(const char *name, void (*fn)(void));
int harness_finish(const char *suite);

/* Fault-injecting, leak-counting allocator. */
extern const plexus_alloc test_alloc;
/* Fail the allocation with this 1-based number from now on (0 = never). */
void fault_fail_at(long n);
/* Allocations made since the last fault_fail_at/fault_reset. */
long fault_count(void);
/* Blocks currently live (allocated through test_alloc, not freed). */
long fault_live(void);
/* True once the planted failure has fired. */
int fault_fired(void);
void fault_reset(void);

/*
 * Runs BODY once per allocation it makes, failing allocation 1, then 2, ... until a run
 * completes without the fault firing. BODY must return an int rc into `rc_var`, release
 * whatever it allocated on both paths, and treat rc == PLEXUS_ENOMEM as the only
 * acceptable error. Checks that each run leaks nothing.
 */
#define FOR_EACH_FAULT(rc_var, ...)                                                                \
    do {                                                                                           \
        long live0_ = fault_live();                                                                \
        for (long n_ = 1; n_ < 100000; n_++) {                                                     \
            fault_fail_at(n_);                                                                     \
            __VA_ARGS__;                                                                           \
            int fired_ = fault_fired();                                                            \
            CHECK(fault_live() == live0_);                                                         \
            if (fired_)                                                                            \
                CHECK((rc_var) == PLEXUS_ENOMEM);                                                  \
            else {                                                                                 \
                CHECK((rc_var) == PLEXUS_OK);                                                      \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
        fault_reset();                                                                             \
    } while (0)

/* Deterministic PRNG for tests (splitmix64). */
uint64_t test_rand(uint64_t *state);

#endif
