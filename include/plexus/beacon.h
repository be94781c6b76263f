/*
 * plexus core: sealed gossip beacons (doc/DESIGN.md §6).
 *
 * A beacon says "node N, incarnation I, beacon number S, metadata M is alive". Nodes
 * multicast one every interval (libcluster Gossip defaults: UDP port 45892, group
 * 233.252.1.32, TTL 1). Unlike libcluster's gossip secret (AES-CBC, no MAC, no replay
 * check), every beacon here is sealed with XChaCha20-Poly1305 (libsodium
 * crypto_aead_xchacha20poly1305_ietf_*): a forged, altered, wrong-key, other-cluster
 * or replayed beacon is refused with an error code and counted, and changes nothing.
 *
 * Key derivation (documented so other implementations can interoperate):
 *   master    = BLAKE2b-256(message = secret, key = "plexus beacon v1")
 *               (crypto_generichash; the secret is any byte string of >= 16 bytes)
 *   key(E)    = crypto_kdf_derive_from_key(32, subkey_id = E, ctx = "plxbeacn", master)
 *               (BLAKE2b keyed by master, salt = E little-endian, personal = ctx)
 * where E is the 32-bit key epoch. Rotating the secret or bumping the epoch gives an
 * unrelated key; a receiver can accept the previous epoch too during a rotation.
 *
 * Wire format, version 2 (varints are the LEB128 of common.h):
 *   offset 0   "PXB" 0x02                magic and version
 *          4   epoch, 4 bytes big-endian the key epoch the beacon is sealed under
 *          8   nonce, 24 bytes           random per beacon (injected by the caller)
 *         32   ciphertext + 16-byte tag  of the payload below
 *   associated data = the 8 header bytes || varint(len(cluster id)) || cluster id,
 *   so a beacon of another cluster or epoch fails authentication like a forgery.
 *   payload = varint incarnation (>= 1) || varint sequence (>= 1) ||
 *             varint send time (the sender's wall clock, Unix ms) ||
 *             varint len || node name (plexus_disco_valid_name) ||
 *             metadata map (disco.h, canonical), and nothing after it.
 * (Version 1 had no send time; its beacons are refused as PLEXUS_EVERSION.)
 * A whole beacon is at most PLEXUS_BEACON_MAX bytes (fits an IPv6 minimum-MTU datagram).
 *
 * Replay protection. A beacon sent more than max_skew_ms (60 s) before or after the
 * receiver's wall clock is refused (counted `stale`): a recording played back, even to
 * a receiver that has just started and holds no window, works only within that time,
 * and nodes' clocks must agree that well (NTP). Within it, per sender (node name) the
 * receiver keeps the incarnation it knows, the highest sequence in it, a 64-beacon
 * window bitmap (as IPsec/WireGuard do) and the latest send time it accepted. A
 * sequence already seen or more than 64 behind is PLEXUS_EREPLAY; another incarnation
 * is the sender's new life when it was sent after everything accepted from it (by the
 * sender's clock), else an older life played back (PLEXUS_EREPLAY). Senders pick
 * incarnation = their start time in milliseconds and count sequence from 1; a sender
 * restarted under a clock that went back is heard again once its clock passes the
 * last send time of its previous life (version 1 refused it for good).
 * The sender table is bounded (max_senders); when it is full, the entry least recently
 * heard from for at least stale_ms is reused, else the beacon is refused with
 * PLEXUS_EFULL. Only authenticated beacons reach the table, so an outsider cannot
 * fill it. (Reusing a stale entry forgets its window: a beacon of that sender sent
 * within the skew could be replayed once more; hosts expire peers by silence anyway,
 * so the effect is one spurious sighting.)
 *
 * Pure core (doc/STYLE.md habit 1): the caller injects the nonce, the times (any
 * monotonic milliseconds for stale_ms, and the wall clock: a beacon's send time to
 * seal, the receiver's to open) and the allocators; no I/O. Key material lives
 * in a separate block from `secret_alloc` (the NIF and the C node pass an allocator over
 * sodium_malloc) and is wiped with sodium_memzero before it is freed. Not thread-safe:
 * the host serialises calls (the NIF with a mutex).
 */
#ifndef PLEXUS_BEACON_H
#define PLEXUS_BEACON_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/common.h"
#include "plexus/disco.h"

#define PLEXUS_BEACON_VERSION 2
#define PLEXUS_BEACON_MAX 1232 /* bytes of a whole beacon */
#define PLEXUS_BEACON_HEADER 8 /* magic, version, epoch */
#define PLEXUS_BEACON_NONCE 24
#define PLEXUS_BEACON_TAG 16
#define PLEXUS_BEACON_OVERHEAD (PLEXUS_BEACON_HEADER + PLEXUS_BEACON_NONCE + PLEXUS_BEACON_TAG)
#define PLEXUS_BEACON_SECRET_MIN 16 /* bytes of the shared secret */
#define PLEXUS_BEACON_SECRET_MAX 4096
#define PLEXUS_BEACON_CLUSTER_MAX 255 /* bytes of the cluster id */
#define PLEXUS_BEACON_WINDOW 64       /* replay window, in beacons */
#define PLEXUS_BEACON_SENDERS_DEFAULT 1024
#define PLEXUS_BEACON_SENDERS_MAX 65536
#define PLEXUS_BEACON_STALE_DEFAULT_MS 600000
#define PLEXUS_BEACON_SKEW_DEFAULT_MS 60000 /* send time vs the receiver's clock */

typedef struct plexus_beacon plexus_beacon;

typedef struct plexus_beacon_config {
    const uint8_t *secret;     /* the shared secret; copied into derived keys, not kept */
    size_t secret_len;         /* PLEXUS_BEACON_SECRET_MIN..MAX */
    const uint8_t *cluster_id; /* 0..PLEXUS_BEACON_CLUSTER_MAX bytes, copied */
    size_t cluster_id_len;
    uint32_t epoch;                   /* key epoch beacons are sealed under */
    int accept_previous_epoch;        /* also open beacons sealed under epoch - 1 */
    size_t max_senders;               /* replay table bound; 0 = PLEXUS_BEACON_SENDERS_DEFAULT */
    uint64_t stale_ms;                /* 0 = PLEXUS_BEACON_STALE_DEFAULT_MS */
    uint64_t max_skew_ms;             /* 0 = PLEXUS_BEACON_SKEW_DEFAULT_MS */
    const plexus_alloc *secret_alloc; /* for key material; NULL = the main allocator */
} plexus_beacon_config;

/* One beacon's contents. To seal: filled by the caller. After open: pointers into
 * the codec's scratch, valid until the next call on the same codec. */
typedef struct plexus_beacon_msg {
    uint64_t incarnation;
    uint64_t sequence;
    uint64_t sent_ms; /* the sender's wall clock when it sealed the beacon (Unix ms) */
    plexus_bytes name;
    plexus_disco_meta meta;
    uint32_t epoch; /* open only: the epoch it was sealed under */
} plexus_beacon_msg;

typedef struct plexus_beacon_counters {
    uint64_t sealed;
    uint64_t accepted;
    uint64_t malformed;   /* bad magic/version/size, or a payload that fails to decode */
    uint64_t auth_failed; /* forged, altered, wrong key, other cluster, unknown epoch */
    uint64_t replayed;    /* authentic but already seen, or an older life of its sender */
    uint64_t stale;       /* authentic but sent more than max_skew_ms from our clock */
    uint64_t table_full;  /* authentic and fresh but no room in the sender table */
    uint64_t senders;     /* entries in the sender table now */
} plexus_beacon_counters;

/* Derives the keys and makes an empty replay table. PLEXUS_EINVAL on a bad config. */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_beacon_new(const plexus_beacon_config *cfg,
                                                   const plexus_alloc *a, plexus_beacon **out);
/* Wipes the keys and frees everything; NULL is a no-op. */
PLEXUS_API void plexus_beacon_free(plexus_beacon *b);

/*
 * Seals m under the current epoch with the given nonce (24 random bytes: the caller's
 * randombytes_buf, never reused under one key) into out (cap bytes); *out_len is the
 * beacon's size. PLEXUS_EINVAL for an invalid name/metadata or zero incarnation or
 * sequence, PLEXUS_ETOOBIG when it would exceed PLEXUS_BEACON_MAX or cap.
 */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_beacon_seal(plexus_beacon *b, const plexus_beacon_msg *m,
                                                    const uint8_t nonce[PLEXUS_BEACON_NONCE],
                                                    uint8_t *out, size_t cap, size_t *out_len);

/*
 * Opens one received datagram: checks the header, authenticates and decrypts, decodes
 * the payload strictly, then runs the replay check and only then records the beacon
 * in the sender table. Returns PLEXUS_OK with *out filled, or
 *   PLEXUS_ETRUNCATED / PLEXUS_ETOOBIG / PLEXUS_EVERSION (bad framing)  -> malformed
 *   PLEXUS_EAUTH (forged, altered, wrong key/cluster/epoch)              -> auth_failed
 *   a decode error of the (authentic) payload                           -> malformed
 *   PLEXUS_EREPLAY                                                      -> replayed
 *                                                                          or stale
 *   PLEXUS_EFULL                                                        -> table_full
 *   PLEXUS_ENOMEM (sender table growth)
 * each counted. now_ms is any monotonic clock in milliseconds (for stale_ms); wall_ms is
 * the receiver's wall clock (Unix ms), which the beacon's send time must be within
 * max_skew_ms of.
 */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_beacon_open(plexus_beacon *b, const uint8_t *in, size_t n,
                                                    uint64_t now_ms, uint64_t wall_ms,
                                                    plexus_beacon_msg *out);

/* Forgets a sender's replay state (e.g. the host saw it leave); PLEXUS_ENOTFOUND. */
PLEXUS_API int plexus_beacon_forget(plexus_beacon *b, const uint8_t *name, size_t len);

PLEXUS_API void plexus_beacon_get_counters(const plexus_beacon *b, plexus_beacon_counters *c);

#endif
