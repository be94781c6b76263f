/*
 * CRDT v2 trie NIFs (plexus_nif:trie_*), used by plexus_crdt_trie and plexus_orset2:
 * the entry hash every trie node sums, and the whole merge of two OR-Set v2 tries
 * walked in C (entry terms of the inputs are reused in the result, never copied).
 */
#ifndef PLEXUS_NIF_TRIE_H
#define PLEXUS_NIF_TRIE_H

#include <erl_nif.h>

/* trie_hash(Entry) -> 56-bit integer; badarg for a term outside the entry grammar. */
ERL_NIF_TERM nif_trie_hash(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
/* trie_orset_merge(NodeA, NodeB, CtxA, CtxB, Depth) -> Node | fallback |
 * {error, bad_state}: the merge of two canonical nodes at Depth (0 for roots). */
ERL_NIF_TERM nif_trie_orset_merge(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
/* trie_lwwmap_merge(NodeA, NodeB, CtxA, CtxB, Depth): the same for plexus_lwwmap. */
ERL_NIF_TERM nif_trie_lwwmap_merge(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
/* trie_build(Depth, [{KeyHash, Entry, EntryHash}]) -> Node | {error, bad_state}: the
 * canonical node at Depth holding these entries (any order; keys unique), as
 * plexus_crdt_trie:build/2 makes it. Dirty above the inline budget. */
ERL_NIF_TERM nif_trie_build(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
