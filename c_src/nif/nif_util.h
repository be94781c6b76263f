/*
 * Shared NIF helpers: the private data made at load (atoms, the HLC, the dirty
 * threshold), an allocator over enif_alloc for the core, {error, Reason} terms from
 * PLEXUS_E* codes, decoding of state and term binaries, and the dirty-dispatch helper.
 *
 * Every NIF in c_src/nif/ has one shape (STYLE.md habit 5): arity/type checks ->
 * decode -> core call -> encode, with a goto ladder bad_arg: / err: / done: that frees
 * scratch memory on every path. No atom is ever made from input (habit 6): all atoms
 * live in nif_priv, made once at load.
 */
#ifndef PLEXUS_NIF_UTIL_H
#define PLEXUS_NIF_UTIL_H

#include <erl_nif.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "plexus/common.h"

/*
 * Calls whose input weighs at least this many bytes run on a dirty CPU scheduler
 * (STYLE.md habit 8: no NIF call over ~1 ms on a normal scheduler; the target here is
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

typedef struct nif_priv {
    ERL_NIF_TERM atom_ok;
    ERL_NIF_TERM atom_error;
    ERL_NIF_TERM atom_true;
    ERL_NIF_TERM atom_false;
    ERL_NIF_TERM atom_add;
    ERL_NIF_TERM atom_remove;
    ERL_NIF_TERM atom_ops;
    ERL_NIF_TERM atom_state;
    ERL_NIF_TERM atom_delta;
    ERL_NIF_TERM atom_strict;
    ERL_NIF_TERM atom_value;
    ERL_NIF_TERM atom_timestamp;
    ERL_NIF_TERM atom_actor;
    ERL_NIF_TERM atom_bad_term;
    ERL_NIF_TERM atom_not_present;
    ERL_NIF_TERM err_atoms[NIF_N_ERRORS]; /* index -code; names from plexus_errname */
    /* Node-wide HLC: the greatest timestamp issued or observed (plexus_lww). */
    _Atomic uint64_t hlc_last;
    /* Current dirty threshold in bytes of input weight. */
    _Atomic uint64_t dirty_threshold;
} nif_priv;

typedef ERL_NIF_TERM (*nif_fun)(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* Allocator for the core over enif_alloc / enif_realloc / enif_free. */
extern const plexus_alloc nif_alloc;

/* Makes the priv struct and all atoms; NULL on failure. Freed with nif_priv_free. */
nif_priv *nif_priv_new(ErlNifEnv *env);
void nif_priv_free(nif_priv *priv);

static inline nif_priv *nif_priv_get(ErlNifEnv *env)
{
    return (nif_priv *)enif_priv_data(env);
}

/* {error, Reason} with Reason the pre-made atom for a PLEXUS_E* code. */
ERL_NIF_TERM nif_error(ErlNifEnv *env, int err);
/* {error, Atom} for one of the priv atoms. */
ERL_NIF_TERM nif_error_atom(ErlNifEnv *env, ERL_NIF_TERM reason);

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

/* Copies buf into a new binary term; 0 when the binary cannot be allocated. The buffer
 * stays owned by the caller. */
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

/*
 * Dirty dispatch (STYLE.md habit 8). nif_should_go_dirty says whether a call weighing
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

#endif
