/* Clocks of the C node (clock.h). */
#include "cnode/clock.h"

#include <time.h>

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cn_now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

uint64_t cn_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t cn_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}
