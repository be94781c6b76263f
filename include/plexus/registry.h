/*
 * plexus core: the TTL membership registry (doc/DESIGN.md §5, global_registry parity).
 *
 * A client Announces {peer, addresses, metadata}; the server records it for a TTL and
 * answers with a Handshake {assigned_ttl, heartbeat_interval = TTL/3, server
 * addresses}. The client re-announces every heartbeat interval; an entry not refreshed
 * within its TTL expires. Expired entries are evicted lazily, by sample/view (and by an
 * announce that finds the table full), in expiry order from a min-heap, so eviction
 * costs O(k log n) for k expired entries and nothing when none expired.
 *
 * TTL: the client may ask for one; the server assigns it clamped to [min, max]
 * (defaults: floor 30 s, ceiling 300 s); 0 asks for the default (90 s).
 *
 * Bounds: at most max_entries peers (PLEXUS_EFULL past that, after evicting what has
 * expired); per announce at most PLEXUS_REGISTRY_ADDRS_MAX addresses and the metadata
 * bounds of disco.h. Peers are hashed with SipHash-2-4 (crypto_shorthash) under a key
 * the host injects at creation, so a flood of chosen names cannot degrade the table.
 *
 * Signed announcements (optional, Ed25519 via libsodium): an announce may carry a
 * public key and a detached signature over all its bytes before the signature. With
 * require_signed, unsigned announces are refused; with trusted keys configured, only
 * those keys are accepted. An entry created by a signed announce is bound to its key
 * until it expires: refreshes and byes must be signed by the same key, and their
 * `issued_ms` must grow (a replayed announce is PLEXUS_EREPLAY) and lie within
 * max_skew_ms of the server's clock.
 *
 * Sources (anti-hijack): the host passes every datagram's source address (opaque bytes,
 * e.g. IP and port) to plexus_registry_handle. An entry without a key is bound to the
 * source that created it: an ANNOUNCE (signed or not) or BYE for it from any other
 * source is PLEXUS_EAUTH (counted in refused_source too), so a stranger can neither
 * remove nor redirect it. (A client that restarts on a new port says BYE first, or
 * waits for its old entry to expire.) An empty source is the host itself (its own
 * API), bound to nothing.
 *
 * Anti-amplification (as QUIC's address validation): no reply is ever longer than the
 * datagram it answers, except a VIEW to a source that proved it receives at its
 * address. A QUERY without a valid cookie is answered with a COOKIE (when the query is
 * long enough to carry it back; clients pad it) and the client asks again with the
 * cookie: cookie = BLAKE2b-128 keyed with a host secret over (source, now / 60 s),
 * valid for the current and the previous period. A HANDSHAKE lists the server
 * addresses only when it still fits in the size of the ANNOUNCE.
 *
 * Wire format, version 1 (one message per UDP datagram; varints as in common.h;
 * "bytes" = varint length + bytes; meta = the canonical map of disco.h):
 *   "PXR" 0x01, type (1 byte), varint request_id (echoed in the reply), then by type
 *   1 ANNOUNCE  bytes peer (a node name), varint n_addrs (<= 8) + bytes addr (1..255)
 *               each, meta, varint requested_ttl_ms (0 = default), varint issued_ms,
 *               flags (1 byte: bit 0 = signed; other bits 0);
 *               if signed: public key (32 bytes), signature (64 bytes) over every
 *               byte of the message before the signature.
 *   2 HANDSHAKE varint assigned_ttl_ms, varint heartbeat_ms, varint n_addrs + bytes each
 *   3 QUERY     varint max_entries (1..PLEXUS_REGISTRY_QUERY_MAX), cookie_len (1 byte:
 *               0 or PLEXUS_REGISTRY_COOKIE_BYTES), cookie, then zero bytes to the end
 *               of the datagram (padding; every padding byte must be 0)
 *   4 VIEW      varint live_entries (total in the table), varint n, then n entries:
 *               bytes peer, varint n_addrs + bytes each, meta, varint remaining_ttl_ms
 *   5 REFUSED   varint reason (the positive value of a PLEXUS_E* code)
 *   6 BYE       bytes peer, varint issued_ms, flags, [public key, signature] as ANNOUNCE
 *   7 COOKIE    cookie (PLEXUS_REGISTRY_COOKIE_BYTES bytes)
 * and nothing after the last field. A server answers ANNOUNCE with HANDSHAKE or
 * REFUSED, QUERY with VIEW (a random sample when the table holds more than fits) or
 * COOKIE, BYE with nothing, and never answers a malformed datagram.
 *
 * Pure core: time (now_ms, milliseconds of the clock the host uses for every call on a
 * table; wall-clock when signed announces are checked for skew), randomness (sample)
 * and the allocator are injected; no I/O. Not thread-safe: the host serialises calls.
 * plexus_registry_handle() is one whole server step, so the NIF and the C node
 * (--registry) serve the same protocol with the same code.
 */
#ifndef PLEXUS_REGISTRY_H
#define PLEXUS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/common.h"
#include "plexus/disco.h"

#define PLEXUS_REGISTRY_VERSION 1
#define PLEXUS_REGISTRY_TTL_DEFAULT_MS 90000u
#define PLEXUS_REGISTRY_TTL_MIN_MS 30000u
#define PLEXUS_REGISTRY_TTL_MAX_MS 300000u
#define PLEXUS_REGISTRY_ADDRS_MAX 8
#define PLEXUS_REGISTRY_ADDR_MAX 255
#define PLEXUS_REGISTRY_QUERY_MAX 4096
#define PLEXUS_REGISTRY_MSG_MAX 65000 /* one UDP datagram */
#define PLEXUS_REGISTRY_ENTRIES_DEFAULT 100000
/* Bytes the entries may hold (names, addresses, metadata, and each entry's header):
 * 100,000 typical entries take ~14 MB, but an entry may carry 7 KB, so the count
 * alone let one client hold ~730 MB. */
#define PLEXUS_REGISTRY_BYTES_DEFAULT (32u * 1024u * 1024u)
#define PLEXUS_REGISTRY_TRUSTED_MAX 64
#define PLEXUS_REGISTRY_SKEW_DEFAULT_MS 300000u
#define PLEXUS_REGISTRY_PK_BYTES 32
#define PLEXUS_REGISTRY_SIG_BYTES 64
#define PLEXUS_REGISTRY_SEED_BYTES 32 /* an Ed25519 secret seed */
#define PLEXUS_REGISTRY_HASHKEY_BYTES 16
#define PLEXUS_REGISTRY_COOKIE_BYTES 16
#define PLEXUS_REGISTRY_COOKIE_KEY_BYTES 32
#define PLEXUS_REGISTRY_COOKIE_PERIOD_MS 60000u
#define PLEXUS_REGISTRY_SOURCE_MAX 32 /* bytes of a source address (sockaddr_in6 is 28) */
/* Clients pad a QUERY to this many bytes so that a COOKIE answer (at most 31 bytes)
 * fits in it. */
#define PLEXUS_REGISTRY_QUERY_PAD 40

typedef enum plexus_registry_type {
    PLEXUS_REGISTRY_ANNOUNCE = 1,
    PLEXUS_REGISTRY_HANDSHAKE = 2,
    PLEXUS_REGISTRY_QUERY = 3,
    PLEXUS_REGISTRY_VIEW = 4,
    PLEXUS_REGISTRY_REFUSED = 5,
    PLEXUS_REGISTRY_BYE = 6,
    PLEXUS_REGISTRY_COOKIE = 7
} plexus_registry_type;

typedef struct plexus_registry_addrs {
    size_t n;
    plexus_bytes addr[PLEXUS_REGISTRY_ADDRS_MAX];
} plexus_registry_addrs;

/* One entry of a VIEW, or of the table as a visitor sees it. Pointers borrow. */
typedef struct plexus_registry_entry {
    plexus_bytes peer;
    plexus_registry_addrs addrs;
    plexus_disco_meta meta;
    uint64_t remaining_ttl_ms;
} plexus_registry_entry;

/* A decoded message; pointers borrow the input bytes. */
typedef struct plexus_registry_msg {
    plexus_registry_type type;
    uint64_t request_id;
    /* ANNOUNCE, BYE */
    plexus_bytes peer;
    plexus_registry_addrs addrs; /* ANNOUNCE, HANDSHAKE (server addresses) */
    plexus_disco_meta meta;
    uint64_t ttl_ms;       /* ANNOUNCE: requested; HANDSHAKE: assigned */
    uint64_t heartbeat_ms; /* HANDSHAKE */
    uint64_t issued_ms;    /* ANNOUNCE, BYE */
    int is_signed;
    const uint8_t *public_key; /* 32 bytes when signed */
    const uint8_t *signature;  /* 64 bytes when signed */
    size_t signed_len;         /* bytes covered by the signature (from the start) */
    const uint8_t *start;      /* the message, for signature checks */
    uint64_t max_entries;      /* QUERY */
    const uint8_t *cookie;     /* QUERY (NULL: none), COOKIE: PLEXUS_REGISTRY_COOKIE_BYTES */
    plexus_bytes source;       /* not on the wire: set by the host (see Sources) */
    uint64_t live_entries;     /* VIEW */
    uint64_t n_entries;        /* VIEW */
    plexus_bytes entries;      /* VIEW: the encoded entries, read with _view_next */
    int reason;                /* REFUSED: a PLEXUS_E* code (negative) */
} plexus_registry_msg;

/*
 * Decodes and validates one message: every count bounded by the bytes left, every
 * field within its bounds, peers valid node names, metadata canonical, VIEW entries
 * all walked, no trailing bytes. Does not check signatures (see _verify).
 */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_registry_msg_decode(const uint8_t *p, size_t n,
                                                            plexus_registry_msg *out);
/* Next VIEW entry from *pos (start at m->entries.p); PLEXUS_OK, or 1 at the end. */
PLEXUS_API int plexus_registry_view_next(const plexus_registry_msg *m, const uint8_t **pos,
                                         plexus_registry_entry *e);
/* PLEXUS_OK when m is signed and the signature verifies; PLEXUS_EAUTH otherwise. */
PLEXUS_API int plexus_registry_msg_verify(const plexus_registry_msg *m);

/* Encoders (client side and server replies). seed: NULL for unsigned, else a 32-byte
 * Ed25519 seed; the key pair is derived, used and wiped inside the call. */
PLEXUS_API PLEXUS_MUST_CHECK int
plexus_registry_encode_announce(plexus_buf *b, uint64_t request_id, plexus_bytes peer,
                                const plexus_registry_addrs *addrs, const plexus_disco_meta *meta,
                                uint64_t ttl_ms, uint64_t issued_ms, const uint8_t *seed);
PLEXUS_API PLEXUS_MUST_CHECK int plexus_registry_encode_bye(plexus_buf *b, uint64_t request_id,
                                                            plexus_bytes peer, uint64_t issued_ms,
                                                            const uint8_t *seed);
/* cookie: NULL or PLEXUS_REGISTRY_COOKIE_BYTES bytes (from a COOKIE); zero padding is
 * added until the message is pad_to bytes long (0: none; at most MSG_MAX). */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_registry_encode_query(plexus_buf *b, uint64_t request_id,
                                                              uint64_t max_entries,
                                                              const uint8_t *cookie, size_t pad_to);
PLEXUS_API PLEXUS_MUST_CHECK int plexus_registry_encode_cookie(plexus_buf *b, uint64_t request_id,
                                                               const uint8_t *cookie);
PLEXUS_API PLEXUS_MUST_CHECK int plexus_registry_encode_refused(plexus_buf *b, uint64_t request_id,
                                                                int reason);
PLEXUS_API PLEXUS_MUST_CHECK int
plexus_registry_encode_handshake(plexus_buf *b, uint64_t request_id, uint64_t ttl_ms,
                                 uint64_t heartbeat_ms, const plexus_registry_addrs *addrs);
/* The public key of a seed (for tests and hosts that print it). */
PLEXUS_API void plexus_registry_public_key(const uint8_t seed[PLEXUS_REGISTRY_SEED_BYTES],
                                           uint8_t pk[PLEXUS_REGISTRY_PK_BYTES]);

/* ---------------------------------------------------------------- the table */

typedef struct plexus_registry plexus_registry;

typedef struct plexus_registry_config {
    size_t max_entries;      /* 0 = PLEXUS_REGISTRY_ENTRIES_DEFAULT */
    size_t max_bytes;        /* 0 = PLEXUS_REGISTRY_BYTES_DEFAULT; stats.bytes stays within */
    uint32_t default_ttl_ms; /* 0 = 90000; all three must satisfy min <= default <= max */
    uint32_t min_ttl_ms;     /* 0 = 30000 */
    uint32_t max_ttl_ms;     /* 0 = 300000 */
    int require_signed;
    uint64_t max_skew_ms; /* signed issued_ms vs now; 0 = 300000 */
    const uint8_t (*trusted_keys)[PLEXUS_REGISTRY_PK_BYTES]; /* NULL/0: any valid key */
    size_t n_trusted;                                /* <= PLEXUS_REGISTRY_TRUSTED_MAX, copied */
    uint8_t hash_key[PLEXUS_REGISTRY_HASHKEY_BYTES]; /* random, from the host */
    uint8_t cookie_key[PLEXUS_REGISTRY_COOKIE_KEY_BYTES]; /* random, from the host */
} plexus_registry_config;

typedef struct plexus_registry_grant {
    uint32_t ttl_ms;
    uint32_t heartbeat_ms;
    int is_new; /* 1: a new entry, 0: a refresh */
} plexus_registry_grant;

typedef struct plexus_registry_stats {
    uint64_t entries;
    uint64_t announces; /* accepted */
    uint64_t created;
    uint64_t refreshed;
    uint64_t byes;
    uint64_t evicted;
    uint64_t queries;
    uint64_t refused_full;
    uint64_t refused_auth;
    uint64_t refused_replay;
    uint64_t malformed;
    uint64_t bytes;          /* bytes held by entries (names, addresses, metadata) */
    uint64_t refused_source; /* of refused_auth: for an entry bound to another source */
    uint64_t cookies;        /* COOKIE answers to queries without a valid cookie */
    uint64_t unverified;     /* queries without a valid cookie, too short to answer */
} plexus_registry_stats;

PLEXUS_API PLEXUS_MUST_CHECK int plexus_registry_new(const plexus_registry_config *cfg,
                                                     const plexus_alloc *a, plexus_registry **out);
PLEXUS_API void plexus_registry_free(plexus_registry *r);

/* Server addresses put in every Handshake (copied; at most PLEXUS_REGISTRY_ADDRS_MAX). */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_registry_set_server_addrs(plexus_registry *r,
                                                                  const plexus_registry_addrs *s);

/*
 * Records a decoded ANNOUNCE (checking its signature and the key rules above) with the
 * clamped TTL. Errors: PLEXUS_EINVAL (not an announce), PLEXUS_EAUTH, PLEXUS_EREPLAY,
 * PLEXUS_EFULL, PLEXUS_ENOMEM; the table is unchanged on error.
 */
PLEXUS_API PLEXUS_MUST_CHECK int plexus_registry_announce(plexus_registry *r,
                                                          const plexus_registry_msg *m,
                                                          uint64_t now_ms,
                                                          plexus_registry_grant *grant);
/* Removes the peer of a decoded BYE (same key and source rules); PLEXUS_ENOTFOUND if
 * absent. Both take the source from m->source (empty: the host itself). */
PLEXUS_API int plexus_registry_bye(plexus_registry *r, const plexus_registry_msg *m,
                                   uint64_t now_ms);
/* Evicts every entry expired at now_ms; returns how many. */
PLEXUS_API size_t plexus_registry_evict(plexus_registry *r, uint64_t now_ms);
/* Live entries (after plexus_registry_evict, exact; otherwise may count expired ones). */
PLEXUS_API size_t plexus_registry_size(const plexus_registry *r);
/* The size bound (max_entries). A host that must bound the time of one call (the NIF)
 * uses size and capacity to predict eviction work: an announce evicts only when the
 * table is full, a query or a view may evict every entry. */
PLEXUS_API size_t plexus_registry_capacity(const plexus_registry *r);

/* Visitor: return 0 to go on, non-zero to stop (returned by the caller). */
typedef int (*plexus_registry_visit)(void *ctx, const plexus_registry_entry *e);
typedef uint64_t (*plexus_registry_rand)(void *ctx);

/* Evicts expired entries, then visits up to n distinct live entries chosen uniformly
 * at random (all of them, in table order, when n >= the size). */
PLEXUS_API int plexus_registry_sample(plexus_registry *r, uint64_t now_ms, size_t n,
                                      plexus_registry_rand rand, void *rand_ctx,
                                      plexus_registry_visit fn, void *ctx);
/* Evicts expired entries, then visits every live entry (current_view). */
PLEXUS_API int plexus_registry_view(plexus_registry *r, uint64_t now_ms, plexus_registry_visit fn,
                                    void *ctx);
/* One entry by peer name, if live at now_ms. */
PLEXUS_API int plexus_registry_lookup(plexus_registry *r, const uint8_t *peer, size_t len,
                                      uint64_t now_ms, plexus_registry_entry *e);

/* What plexus_registry_handle did with a datagram. */
typedef enum plexus_registry_outcome {
    PLEXUS_REGISTRY_DROPPED = 0,     /* malformed: no reply */
    PLEXUS_REGISTRY_ANNOUNCED = 1,   /* reply = HANDSHAKE; *peer, grant set */
    PLEXUS_REGISTRY_REFUSED_OUT = 2, /* reply = REFUSED; *err set */
    PLEXUS_REGISTRY_QUERIED = 3,     /* reply = VIEW */
    PLEXUS_REGISTRY_LEFT = 4,        /* a BYE removed *peer; no reply */
    PLEXUS_REGISTRY_IGNORED = 5,     /* well-formed but not for a server, or a BYE refused */
    PLEXUS_REGISTRY_COOKIE_OUT = 6   /* a QUERY without a valid cookie: reply = COOKIE or none */
} plexus_registry_outcome;

typedef struct plexus_registry_result {
    plexus_registry_outcome outcome;
    int err;           /* the error behind DROPPED / REFUSED_OUT / IGNORED */
    plexus_bytes peer; /* borrows the input */
    plexus_registry_grant grant;
} plexus_registry_result;

/*
 * One server step: decodes the datagram from `src` (src_len <= PLEXUS_REGISTRY_SOURCE_MAX
 * bytes naming the sender's address; 0 = the host itself), applies it, writes the reply
 * (possibly none: reply->len stays 0) into `reply` (which the caller owns; cleared
 * first). The reply is never longer than the datagram, except a VIEW answering a query
 * with a valid cookie: that holds a random sample of at most the query's max_entries
 * entries that fits in PLEXUS_REGISTRY_MSG_MAX bytes. Returns PLEXUS_OK (whatever the
 * outcome), PLEXUS_EINVAL (src too long) or PLEXUS_ENOMEM.
 */
PLEXUS_API PLEXUS_MUST_CHECK int
plexus_registry_handle(plexus_registry *r, const uint8_t *in, size_t n, const uint8_t *src,
                       size_t src_len, uint64_t now_ms, plexus_registry_rand rand, void *rand_ctx,
                       plexus_buf *reply, plexus_registry_result *res);

PLEXUS_API void plexus_registry_get_stats(const plexus_registry *r, plexus_registry_stats *s);

#endif
