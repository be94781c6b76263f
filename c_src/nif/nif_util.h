/*
 * Shared NIF helpers: the private data made at load (atoms, resource types, the HLC,
 * the dirty threshold), an allocator over enif_alloc for the core, {error, Reason}
 * terms from PLEXUS_E* codes, decoding of arguments, state and term binaries, and the
 * dirty-dispatch helper.
 *
 * Every NIF in c_src/nif/ has one shape (doc/STYLE.md habit 5): arity/type checks ->
 * decode -> core call -> encode, with a goto ladder bad_arg: / err: / done: that frees
 * scratch memory on every path. No atom is ever made from input (habit 6): all atoms
 * live in nif_priv, made once at load, and every core error code reaches Erlang
 * through nif_error under the name plexus_errname gives it.
 */
#ifndef PLEXUS_NIF_UTIL_H
#define PLEXUS_NIF_UTIL_H

#include <erl_nif.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plexus/common.h"
#include "plexus/election.h"
#include "plexus/health.h"
#include "plexus/registry.h"
#include "plexus/topology.h"

/*
 * Calls whose input weighs at least this many bytes run on a dirty CPU scheduler
 * (doc/STYLE.md habit 8: no NIF call over ~1 ms on a normal scheduler; the target here is
 * ~0.5 ms). The weight of a call is the size of every state and term binary it reads
 * plus NIF_CELL_WEIGHT per list cell it walks. plexus_nif:set_dirty_threshold/1
 * changes it at run time (tests force each path: 0 = always dirty, huge = inline).
 *
 * Measured with test/bench/plexus_bench_threshold.erl (OTP 25, -O3 build, 2-core VM,
 * every call inline, sets of 4k-10k small integers = 43-109 KB): ns per weighed byte
 *   to_list 4.9-7.2 (decodes every element, conses the list: the costliest)
 *   add_all 5.0-7.0 (op list walk, sort, one pass over the state)
 *   merge 2.3-2.9, size/validate 1.8-2.0, digest 2.1
 * so 64 KiB keeps the costliest calls at ~0.3-0.45 ms and merges at ~0.2 ms inline.
 */
#define PLEXUS_DIRTY_THRESHOLD_BYTES (64u * 1024u)

/* Every list cell walked weighs this much on top of the bytes it carries: inspecting a
 * term costs about as much as reading 16 bytes of state. */
#define NIF_CELL_WEIGHT 16u

/* Number of slots in the error atom table: codes 0 .. PLEXUS_ERROR_MIN. */
#define NIF_N_ERRORS (1 - PLEXUS_ERROR_MIN)

/*
 * Every fixed atom a NIF returns or matches, by area; priv->atom_<name> is the atom
 * <name>. One list, so adding an atom is one line and it is made once at load with
 * the others. Atoms named by a core enum (roles, statuses, error codes) are the tables
 * of nif_priv below, filled from the core's own name functions.
 */
/* clang-format off */
#define NIF_ATOMS(X)                                                                     \
    /* shared */                                                                         \
    X(ok) X(error) X(true) X(false) X(none) X(infinity) X(unknown)                      \
    /* CRDTs (nif_orset.c, nif_lww.c) */                                                 \
    X(add) X(remove) X(ops) X(state) X(delta) X(strict) X(value) X(timestamp) X(actor)   \
    X(bad_term)                                                                          \
    /* the node clock (nif_hlc.c) */                                                     \
    X(lease) X(plexus_lww)                                                               \
    /* CRDT v2 tries (nif_trie.c) */                                                     \
    X(l) X(b) X(nil) X(fallback) X(bad_state)                                            \
    /* beacon_stats keys (nif_beacon.c) */                                               \
    X(sealed) X(accepted) X(malformed) X(auth_failed) X(replayed) X(stale) X(table_full)          \
    X(senders)                                                                           \
    /* health_get / health_list keys (nif_health.c) */                                   \
    X(node) X(status) X(since_ms) X(last_answer_ms) X(answers) X(samples) X(rtt_last_us) \
    X(rtt_avg_us) X(rtt_p50_us) X(rtt_p99_us) X(rtt_min_us) X(rtt_max_us)                \
    /* election config, message and info keys (nif_election.c) */                       \
    X(unchanged) X(id) X(cluster_id) X(peers) X(election_min_ticks)                      \
    X(election_max_ticks) X(heartbeat_ticks) X(pre_vote) X(check_quorum) X(hard_state)   \
    X(type) X(reject) X(from) X(to) X(term) X(role) X(voted_for) X(leader) X(quorum)     \
    X(sit_out_left) X(stats)                                                             \
    /* election_info stats keys */                                                       \
    X(wrong_cluster) X(unknown_peer) X(stale_term) X(lease_rejected) X(conflicts)        \
    X(outbox_dropped) X(pre_votes) X(elections) X(fast_path)                            \
    /* registry_new options (nif_registry.c) */                                          \
    X(max_entries) X(max_bytes) X(default_ttl_ms) X(min_ttl_ms) X(max_ttl_ms) X(max_skew_ms)          \
    X(require_signed) X(trusted_keys) X(server_addrs)                                    \
    /* registry_handle results */                                                        \
    X(announced) X(new) X(refreshed) X(refused) X(queried) X(left) X(ignored) X(dropped) \
    X(cookie)                                                                            \
    /* registry entry and message keys, message types (registry_msg_type below) */       \
    X(peer) X(addrs) X(metadata) X(ttl_ms) X(request_id) X(heartbeat_ms) X(live_entries) \
    X(entries) X(reason) X(issued_ms) X(signed) X(public_key) X(announce) X(handshake)   \
    X(query) X(view) X(bye)                                                              \
    /* registry_stats keys */                                                            \
    X(announces) X(created) X(byes) X(evicted) X(queries) X(refused_full)                \
    X(refused_auth) X(refused_replay) X(bytes) X(refused_source) X(cookies)              \
    X(unverified)
/* clang-format on */

#define NIF_ATOM_FIELD(name) ERL_NIF_TERM atom_##name;

/*
 * The private data of the library, made once at load (nif_priv_new, then each area's
 * nif_<area>_load opens its resource type into it): every atom and resource type a
 * NIF uses, so no NIF file keeps a static struct of its own. A code upgrade makes a
 * fresh one (the resource types are taken over) and carries the counters across.
 */
typedef struct nif_priv {
    NIF_ATOMS(NIF_ATOM_FIELD)
    /* Error reasons, index -code, named by plexus_errname (see nif_error). */
    ERL_NIF_TERM err_atoms[NIF_N_ERRORS];
    /* Atoms of core enums, indexed by the enum value and named by the core's *_name
     * functions; health_event[0] and election_msg_type[0] are `unknown`. */
    ERL_NIF_TERM health_status[PLEXUS_HEALTH_DOWN + 1];
    ERL_NIF_TERM health_event[PLEXUS_HEALTH_EV_NODE_DOWN + 1];
    ERL_NIF_TERM health_reason[PLEXUS_HEALTH_R_MAX + 1];
    ERL_NIF_TERM election_role[PLEXUS_ELECTION_LEADER + 1];
    ERL_NIF_TERM election_msg_type[PLEXUS_ELECTION_MSG_HEARTBEAT_RESP + 1];
    ERL_NIF_TERM topology_role[PLEXUS_TOPOLOGY_RELAY + 1];
    /* Registry message types by plexus_registry_type; [0] is `unknown`. The core has
     * no name function for them, so nif_priv_new fills this from the atoms above. */
    ERL_NIF_TERM registry_msg_type[PLEXUS_REGISTRY_COOKIE + 1];
    /* Resource types (ERL_NIF_RT_TAKEOVER on upgrade), opened by the area loads. */
    ErlNifResourceType *health_type, *beacon_type, *election_type, *registry_type;
    /* Current dirty threshold in bytes of input weight. */
    _Atomic uint64_t dirty_threshold;
} nif_priv;

typedef ERL_NIF_TERM (*nif_fun)(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* Allocator for the core over enif_alloc / enif_realloc / enif_free. */
extern const plexus_alloc nif_alloc;

/* Makes the priv struct and all atoms (resource types are left to the area loads);
 * NULL on failure. Freed with nif_priv_free. */
nif_priv *nif_priv_new(ErlNifEnv *env);
void nif_priv_free(nif_priv *priv);

static inline nif_priv *nif_priv_get(ErlNifEnv *env)
{
    return (nif_priv *)enif_priv_data(env);
}

/*
 * The one error path: a PLEXUS_E* code becomes the atom plexus_errname gives it (made
 * at load), so every NIF names a failure the same way and none maps codes by hand.
 * nif_error_reason is the bare atom (for results that carry a reason inside another
 * term), nif_error the {error, Reason} tuple. Codes outside the table cannot come from
 * the core; they read as invalid_argument rather than making an atom.
 */
ERL_NIF_TERM nif_error_reason(ErlNifEnv *env, int err);
ERL_NIF_TERM nif_error(ErlNifEnv *env, int err);
/* {error, Atom} for a reason that is not a core code (bad_term). */
ERL_NIF_TERM nif_error_atom(ErlNifEnv *env, ERL_NIF_TERM reason);

/* A uint64_t argument; 0 if it is not an integer in 0..2^64-1. (ErlNifUInt64 and
 * uint64_t are different types on some platforms, so the core's fields cannot be passed
 * to enif_get_uint64 directly.) */
int nif_get_u64(ErlNifEnv *env, ERL_NIF_TERM t, uint64_t *out);
/* true / false into *out; 0 for any other term. */
int nif_get_bool(ErlNifEnv *env, ERL_NIF_TERM t, bool *out);

/* A state argument: any binary (the core validates its contents). 0 if not a binary. */
int nif_get_state(ErlNifEnv *env, ERL_NIF_TERM t, plexus_bytes *out);

/*
 * A term argument made by the Erlang side with term_to_binary: a binary of at least
 * two bytes starting with the external format version byte 131. *out is the bytes
 * after it (the core stores terms without the 131). 0 when the argument is anything
 * else.
 */
int nif_get_term_bytes(ErlNifEnv *env, ERL_NIF_TERM t, plexus_bytes *out);

/*
 * Decodes term bytes stored by the core (no leading 131) into a term. scratch is a
 * caller-owned buffer reused across calls to hold 131 + bytes. Returns PLEXUS_OK,
 * PLEXUS_ENOMEM, or 1 when the bytes are not exactly one external term (the caller
 * answers {error, bad_term}).
 */
int nif_decode_term(ErlNifEnv *env, plexus_bytes b, plexus_buf *scratch, ERL_NIF_TERM *out);
/* As nif_decode_term, but never creates an atom: NIF_BAD_TERM when the term holds an
 * atom this node does not know (or is malformed). */
int nif_decode_term_existing(ErlNifEnv *env, plexus_bytes b, plexus_buf *scratch,
                             ERL_NIF_TERM *out);
#define NIF_BAD_TERM 1

/* A new binary term holding a copy of b (on the process heap when small); 0 when it
 * cannot be allocated. */
int nif_make_bytes(ErlNifEnv *env, plexus_bytes b, ERL_NIF_TERM *out);
/* nif_make_bytes of what buf holds; the buffer stays owned by the caller. */
int nif_make_binary(ErlNifEnv *env, const plexus_buf *buf, ERL_NIF_TERM *out);

/*
 * A plexus_buf whose memory is a refc binary: the core writes its output straight into
 * the binary that becomes the result, so a 1 MB state is not copied once more at the
 * end (measured: ~4 ns per element of a 100k merge). Use: nif_outbuf_init(&o), pass
 * &o.buf to the core, then nif_outbuf_term() (the binary now belongs to the term) or
 * nif_outbuf_free() on error paths; calling free after term is harmless.
 */
typedef struct nif_outbuf {
    plexus_alloc alloc; /* ctx points back at this struct: do not copy it */
    ErlNifBinary bin;
    int live;
    plexus_buf buf;
} nif_outbuf;

void nif_outbuf_init(nif_outbuf *o);
int nif_outbuf_term(ErlNifEnv *env, nif_outbuf *o, ERL_NIF_TERM *out);
void nif_outbuf_free(nif_outbuf *o);

/*
 * Tells the scheduler what an inline call cost (enif_consume_timeslice), estimated from
 * its weight at the costliest measured rate (~7 ns per byte, to_list): without it a
 * NIF call counts as one reduction, and a process looping over 30 us merges runs ~650
 * of them (about 20 ms, seen as long_schedule) before it is scheduled out. Call once
 * per call, on the inline path only.
 */
void nif_charge(ErlNifEnv *env, uint64_t weight);
/* Bytes of input weight per percent of a 1 ms timeslice: 1 ms / 7 ns per byte / 100.
 * nif_charge charges at least 1%: a call that may weigh far less (an entry's hash,
 * ~1 us) charges only from this weight on. */
#define NIF_BYTES_PER_PERCENT 1400u

/*
 * Dirty dispatch (doc/STYLE.md habit 8). nif_should_go_dirty says whether a call weighing
 * `weight` bytes that runs on a normal scheduler must move; nif_go_dirty re-schedules
 * `fn` with the same arguments on a dirty CPU scheduler, where the same code runs
 * again and nif_should_go_dirty then answers 0.
 */
int nif_should_go_dirty(ErlNifEnv *env, uint64_t weight);
ERL_NIF_TERM nif_go_dirty(ErlNifEnv *env, const char *name, nif_fun fn, int argc,
                          const ERL_NIF_TERM argv[]);

/* BLAKE2b digest binary of a state that must be of the given type byte, or
 * {error, Reason} (shared by the OR-Set and LWW NIFs; the caller dispatches). */
ERL_NIF_TERM nif_state_digest(ErlNifEnv *env, plexus_bytes s, int type);

/* plexus_nif:set_dirty_threshold(Bytes) -> OldBytes. */
ERL_NIF_TERM nif_set_dirty_threshold(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* plexus_nif:dirty_threshold() -> Bytes (read only: the CRDT telemetry reports whether
 * a call it timed crossed it). */
ERL_NIF_TERM nif_dirty_threshold(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
