/*
 * plexus_nif:trie_encode/3: a trie CRDT's state written as its canonical bytes in one
 * NIF call (an OR-Set's version 1 body, 0x01 'S', or an LWW map's 0x02 'M'): the
 * entries gathered from the trie, sorted by key, and written with the context, as the
 * Erlang encoders of plexus_orset2 and plexus_lwwmap write them. Those took 130 ms
 * (OR-Set) to 300 ms (LWW map) at 100k entries, mostly in sorting and appending in
 * Erlang.
 */
#ifndef PLEXUS_NIF_TRIE_ENCODE_H
#define PLEXUS_NIF_TRIE_ENCODE_H

#include <erl_nif.h>
#include <stdint.h>

/* trie_encode(Arity, {VV, Cloud}, Root) -> binary() | {error, bad_state}: Arity 2
 * writes an OR-Set (entries {Elem, [{Actor, Ctr}]}), 4 an LWW map (entries {Key,
 * [{Actor, Ctr, Ts, Value}]}). A term that is no such state (a node of another shape,
 * a count that is not the entries', a dot whose actor the context does not list, a
 * number outside 0..2^64-1) gives {error, bad_state}; what it writes of a well-formed
 * but non-canonical term, the readers refuse. Dirty above the inline budget. */
ERL_NIF_TERM nif_trie_encode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* How many actors and cloud dots a context term {VV, Cloud} holds, read from the maps'
 * headers (0 for a term of another shape, which the readers refuse): what reading it
 * will cost, known before it is read. */
uint64_t nif_trie_ctx_entries(ErlNifEnv *env, ERL_NIF_TERM ctx);

#endif
