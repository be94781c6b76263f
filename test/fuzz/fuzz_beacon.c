/*
 * libFuzzer target for the beacon codec (c_src/core/beacon.c).
 *
 * The first input byte picks what the rest is:
 *   even: a datagram, opened as received from the network;
 *   odd:  a plaintext payload, sealed by this harness under the codec's key (as a
 *         sender holding the secret would), then opened: this reaches the strict
 *         payload decoder behind the authentication check.
 * On any input: no out-of-bounds read, no crash, and whatever opens re-seals with the
 * same nonce to exactly the same bytes (one encoding per beacon). Opening the same
 * bytes twice is always a replay the second time.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/system_alloc.h"
#include "plexus/beacon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char SECRET[] = "plexus fuzz secret 0123456789";
static const char CLUSTER[] = "fuzz";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        if (sodium_init() < 0) abort();
        init = 1;
    }
    if (size == 0) return 0;
    plexus_beacon_config cfg = {0};
    cfg.secret = (const uint8_t *)SECRET;
    cfg.secret_len = sizeof SECRET - 1;
    cfg.cluster_id = (const uint8_t *)CLUSTER;
    cfg.cluster_id_len = sizeof CLUSTER - 1;
    cfg.epoch = 1;
    cfg.max_senders = 4;
    cfg.max_skew_ms = UINT64_MAX; /* any send time is fresh: the window logic is reached */
    plexus_beacon *b = NULL;
    if (plexus_beacon_new(&cfg, plexus_system_alloc(), &b) != PLEXUS_OK) abort();

    uint8_t wire[PLEXUS_BEACON_MAX + 64];
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    if (data[0] & 1) { /* seal the payload ourselves */
        if (n > PLEXUS_BEACON_MAX - PLEXUS_BEACON_OVERHEAD)
            n = PLEXUS_BEACON_MAX - PLEXUS_BEACON_OVERHEAD;
        uint8_t master[32], key[32];
        crypto_generichash(master, 32, (const uint8_t *)SECRET, sizeof SECRET - 1,
                           (const uint8_t *)"plexus beacon v1", 16);
        crypto_kdf_derive_from_key(key, 32, 1, "plxbeacn", master);
        memcpy(wire, "PXB\x02\x00\x00\x00\x01", 8);
        memset(wire + 8, 0x5a, 24);
        uint8_t ad[8 + 1 + sizeof CLUSTER - 1];
        memcpy(ad, wire, 8);
        ad[8] = sizeof CLUSTER - 1;
        memcpy(ad + 9, CLUSTER, sizeof CLUSTER - 1);
        unsigned long long clen = 0;
        crypto_aead_xchacha20poly1305_ietf_encrypt(wire + 32, &clen, in, n, ad, sizeof ad, NULL,
                                                   wire + 8, key);
        in = wire;
        n = 32 + (size_t)clen;
    }
    plexus_beacon_msg m;
    if (plexus_beacon_open(b, in, n, 0, 0, &m) == PLEXUS_OK) {
        uint8_t again[PLEXUS_BEACON_MAX];
        size_t len = 0;
        if (plexus_beacon_seal(b, &m, in + 8, again, sizeof again, &len) != PLEXUS_OK) abort();
        if (len != n || memcmp(again, in, n) != 0) abort();
        if (plexus_beacon_open(b, in, n, 0, 0, &m) != PLEXUS_EREPLAY) abort();
    }
    plexus_beacon_counters c;
    plexus_beacon_get_counters(b, &c);
    if (c.senders > 4) abort();
    plexus_beacon_free(b);
    return 0;
}
