/* Reconnect policy of the C node (backoff.h). */
#include "cnode/backoff.h"

uint32_t cn_backoff_next(uint32_t cur_ms, uint32_t max_ms)
{
    /* 64-bit: a doubled wait never wraps, whatever the ceiling */
    uint64_t b = cur_ms ? (uint64_t)cur_ms * 2 : CN_BACKOFF_FIRST_MS;
    return b > max_ms ? max_ms : (uint32_t)b;
}

cn_attempt_action cn_attempt_result(int waiting, int has_fd)
{
    if (!waiting) return CN_ATTEMPT_DISCARD;
    return has_fd ? CN_ATTEMPT_ADOPT : CN_ATTEMPT_FAILED;
}
