/*
 * libFuzzer target for the election wire decoder (c_src/core/election_msg.c).
 *
 * On any input: decoding never reads out of bounds, and whatever decodes is a valid
 * message that re-encodes to exactly the input bytes (one encoding per message).
 *
 * The same input is then read as a script of chunks, each one length byte plus that
 * many bytes, fed to a live state machine: a chunk that decodes is stepped, an empty
 * chunk is a tick, a one-byte chunk a nodedown. The machine must never trip one of its
 * asserts, move its term backwards, or emit a message the encoder refuses.
 */
#include <stdlib.h>
#include <string.h>

#include "plexus/election.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fixed_rand(void *ctx)
{
    uint64_t *s = ctx;
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 11;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    plexus_election_msg m;
    uint8_t again[PLEXUS_ELECTION_MSG_MAX];
    size_t len = 0;
    if (plexus_election_msg_decode(data, size, &m) == PLEXUS_OK) {
        if (!plexus_election_msg_valid(&m)) abort();
        if (plexus_election_msg_encode(&m, again, sizeof again, &len) != PLEXUS_OK) abort();
        if (len != size || memcmp(again, data, size) != 0) abort();
    }

    static plexus_election e;
    uint64_t rng = 1, peers[] = {2, 3, 4, 5};
    plexus_election_hard_state hs = {1, 0};
    plexus_election_config cfg = {.id = 1,
                                  .cluster_id = 7,
                                  .peers = peers,
                                  .n_peers = 4,
                                  .election_min_ticks = 3,
                                  .election_max_ticks = 6,
                                  .heartbeat_ticks = 1,
                                  .pre_vote = size % 2,
                                  .check_quorum = size % 3 != 0,
                                  .restored = &hs,
                                  .rand = fixed_rand,
                                  .rand_ctx = &rng};
    if (plexus_election_init(&e, &cfg) != PLEXUS_OK) abort();
    size_t pos = 0;
    while (pos < size) {
        size_t n = data[pos++];
        if (n > size - pos) n = size - pos;
        uint64_t before = plexus_election_term(&e);
        if (plexus_election_msg_decode(data + pos, n, &m) == PLEXUS_OK) {
            (void)plexus_election_step(&e, &m);
        } else if (n == 0) {
            plexus_election_tick(&e);
        } else if (n == 1) {
            (void)plexus_election_peer_down(&e, 2 + data[pos] % 4);
        }
        if (plexus_election_term(&e) < before) abort();
        if (plexus_election_has_ready(&e)) {
            plexus_election_ready rd;
            plexus_election_get_ready(&e, &rd);
            for (size_t k = 0; k < rd.n_msgs; k++)
                if (plexus_election_msg_encode(&rd.msgs[k], again, sizeof again, &len)) abort();
            plexus_election_advance(&e);
        }
        pos += n;
    }
    return 0;
}
