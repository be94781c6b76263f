/*
 * plexus_nif:trie_decode/1: the canonical bytes of a trie CRDT's state (an OR-Set's
 * 0x01 'S', an LWW map's 0x02 'M') validated by the core's reader and decoded in the
 * same call into the terms the Erlang decoders of plexus_orset2 and plexus_lwwmap
 * build, each entry with its trie hash, so that from_binary/1 only places them in the
 * trie. Decoding 100k entries in Erlang took ~100 ms (OR-Set) to ~400 ms (LWW map),
 * mostly collections of the growing heap; here the terms are made once.
 */
#ifndef PLEXUS_NIF_TRIE_DECODE_H
#define PLEXUS_NIF_TRIE_DECODE_H

#include <erl_nif.h>

/* trie_decode(Bin) -> {ok, {VV, Cloud}, [{Entry, EntryHash}]} | {error, Reason}.
 * VV: #{Actor => Counter} (counters >= 1), Cloud: #{{Actor, Counter} => true}; an entry
 * is {Elem, [{Actor, Counter}]} for an OR-Set, {Key, [{Actor, Counter, Ts, Value}]} for
 * an LWW map, in key order. Every binary is a copy (nothing points into Bin). Runs
 * dirty above the inline budget. */
ERL_NIF_TERM nif_trie_decode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
