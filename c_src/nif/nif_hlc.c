/*
 * The node clock NIFs; see nif_hlc.h. The clock is CLOCK_REALTIME, the clock
 * os:system_time/1 reads (vDSO, no system call): what NTP keeps close to the other
 * nodes' clocks, which an HLC wants. It may step back; the HLC rules absorb that.
 * Between readings the millisecond comes from the TSC (plexus/tsc_wall.h) when the
 * kernel keeps time on it: ~12 ns instead of ~30 on the tick of every HLC write.
 */
#include "nif/nif_hlc.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_TSC 1
#endif

#include "nif/nif_util.h"
#include "plexus/crdt.h"
#include "plexus/hlc_cell.h"
#include "plexus/tsc_wall.h"

/* The cell, zero (no lease) when the library is loaded. On a cache line of its own:
 * every scheduler writes it. */
static _Alignas(64) plexus_hlc_cell hlc_cell;

#ifdef HAVE_TSC
/* The wall clock's millisecond between real readings (plexus/tsc_wall.h); used only
 * while the kernel itself keeps time on the TSC (nif_hlc_load, then
 * recheck_clock_source). Read by every scheduler, written about once a millisecond: a
 * cache line of its own. */
static _Alignas(64) plexus_tsc_wall tsc_wall;
static _Atomic bool tsc_wall_on;

/* The kernel moves its clock off the TSC when its watchdog finds the TSC unstable (a
 * VM migrated, CPUs whose counters drifted apart); windows must stop then, since a
 * reader on a CPU whose TSC lags could see a closed window as open. So the real-
 * reading path asks again once every CLOCK_SOURCE_RECHECK real readings: about once a
 * second at one a millisecond, each a ~10 us read of a sysfs file, far under the
 * ~1 ms a NIF may take. Off is for good: the kernel does not return to a TSC it
 * found unstable, and readings of the clock are always right, only slower. */
#define CLOCK_SOURCE_RECHECK 1024u
static _Atomic unsigned real_readings;
#endif

/* CLOCK_REALTIME in ns since the epoch; a clock set before 1970 reads as 0. */
static uint64_t realtime_ns(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_REALTIME, &t) != 0 || t.tv_sec < 0) return 0;
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* What the kernel keeps time on. TSC: then the TSC is constant-rate, runs in every
 * CPU state and agrees across CPUs well enough for the kernel's own clock, so it is
 * good enough to time one millisecond. Any other clock source (hpet, a paravirtual
 * clock, a non-x86 machine) keeps every read a real one. */
typedef enum { CLOCK_SOURCE_UNKNOWN, CLOCK_SOURCE_TSC, CLOCK_SOURCE_OTHER } clock_source;

/* UNKNOWN when the file cannot be read (no sysfs in a container, out of file
 * descriptors for a moment): at load that keeps windows off; at a recheck it changes
 * nothing, so a passing failure does not turn them off for good. */
static clock_source kernel_clock_source(void)
{
    char name[32] = {0};
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (!f) return CLOCK_SOURCE_UNKNOWN;
    clock_source source = !fgets(name, sizeof name, f) ? CLOCK_SOURCE_UNKNOWN
                          : strcmp(name, "tsc\n") == 0 ? CLOCK_SOURCE_TSC
                                                       : CLOCK_SOURCE_OTHER;
    fclose(f);
    return source;
}

#ifdef HAVE_TSC
/* Called after each real reading while windows are on: the CLOCK_SOURCE_RECHECK-th
 * asks the kernel again. */
static void recheck_clock_source(void)
{
    unsigned n = atomic_fetch_add_explicit(&real_readings, 1, memory_order_relaxed);
    if (n % CLOCK_SOURCE_RECHECK == CLOCK_SOURCE_RECHECK - 1 &&
        kernel_clock_source() == CLOCK_SOURCE_OTHER)
        atomic_store(&tsc_wall_on, false);
}
#endif

/* Wall-clock milliseconds since the epoch: the TSC window's when it holds, else a real
 * reading (which opens the next window). */
static uint64_t wall_ms(void)
{
#ifdef HAVE_TSC
    if (atomic_load_explicit(&tsc_wall_on, memory_order_relaxed)) {
        uint64_t ms, before = __rdtsc();
        if (plexus_tsc_wall_read(&tsc_wall, before, &ms)) return ms;
        uint64_t ns = realtime_ns();
        plexus_tsc_wall_record(&tsc_wall, before, ns, __rdtsc());
        recheck_clock_source();
        return ns / 1000000u;
    }
#endif
    return realtime_ns() / 1000000u;
}

void nif_hlc_load(void)
{
#ifdef HAVE_TSC
    plexus_tsc_wall_init(&tsc_wall);
    atomic_store(&real_readings, 0);
    atomic_store(&tsc_wall_on, kernel_clock_source() == CLOCK_SOURCE_TSC);
#else
    (void)kernel_clock_source;
#endif
}

bool nif_hlc_tsc_wall_on(void)
{
#ifdef HAVE_TSC
    return atomic_load(&tsc_wall_on);
#else
    return false;
#endif
}

bool nif_hlc_next(uint64_t floor, uint64_t *ts)
{
    return plexus_hlc_cell_next(&hlc_cell, floor, wall_ms(), ts);
}

ERL_NIF_TERM nif_hlc_lease_needed(ErlNifEnv *env, uint64_t need)
{
    return enif_make_tuple2(env, nif_priv_get(env)->atom_lease, enif_make_uint64(env, need));
}

/* hlc_next_after(Floor) -> Ts | {lease, Need}: plexus_hlc:next_after/1. */
ERL_NIF_TERM nif_hlc_next_after(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    uint64_t floor, ts;
    if (argc != 1 || !nif_get_u64(env, argv[0], &floor)) return enif_make_badarg(env);
    if (!nif_hlc_next(floor, &ts)) return nif_hlc_lease_needed(env, ts);
    return enif_make_uint64(env, ts);
}

/* hlc_observe(Ts) -> Clock | {lease, Ts}: plexus_hlc:observe/1; Clock is the node
 * clock after the call (the caller's new lower bound of it). */
ERL_NIF_TERM nif_hlc_observe(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    uint64_t ts, clock;
    if (argc != 1 || !nif_get_u64(env, argv[0], &ts)) return enif_make_badarg(env);
    clock = atomic_load(&hlc_cell.clock);
    /* the common case reads no wall clock: nothing to record */
    if (ts > clock && !plexus_hlc_cell_observe(&hlc_cell, ts, wall_ms(), &clock))
        return nif_hlc_lease_needed(env, clock);
    return enif_make_uint64(env, clock);
}

/* hlc_lease(Prev, Limit) -> ok: applies a grant plexus_hlc has recorded (Prev, the
 * ceiling before it, at most Limit, the ceiling after). */
ERL_NIF_TERM nif_hlc_lease(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    uint64_t prev, limit;
    if (argc != 2 || !nif_get_u64(env, argv[0], &prev) || !nif_get_u64(env, argv[1], &limit) ||
        prev > limit)
        return enif_make_badarg(env);
    plexus_hlc_cell_lease(&hlc_cell, prev, limit);
    return nif_priv_get(env)->atom_ok;
}

/* hlc_cell() -> {Clock, Limit}: for tests and the benchmark. */
ERL_NIF_TERM nif_hlc_cell(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argv;
    if (argc != 0) return enif_make_badarg(env);
    return enif_make_tuple2(env, enif_make_uint64(env, atomic_load(&hlc_cell.clock)),
                            enif_make_uint64(env, atomic_load(&hlc_cell.limit)));
}

/* hlc_wall() -> {Ms, tsc | realtime}: the wall clock the ticks read, and how it is
 * read; for tests and the benchmark. */
ERL_NIF_TERM nif_hlc_wall(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argv;
    if (argc != 0) return enif_make_badarg(env);
    return enif_make_tuple2(env, enif_make_uint64(env, wall_ms()),
                            enif_make_atom(env, nif_hlc_tsc_wall_on() ? "tsc" : "realtime"));
}
