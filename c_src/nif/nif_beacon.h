/*
 * Sealed gossip beacon NIFs (plexus_nif:beacon_*), used by plexus_discovery_gossip.
 * A resource wraps one plexus_beacon codec (c_src/core/beacon.c): its keys live in
 * sodium_malloc memory (guard pages, mlock'd, wiped and freed in the destructor), its
 * replay table is mutable, so every call takes the resource mutex. Every call is
 * bounded by PLEXUS_BEACON_MAX bytes or the sender table bound and stays on a normal
 * scheduler.
 *
 *   beacon_new(Secret, ClusterId, Epoch, AcceptPrevious, MaxSenders, MaxSkewMs)
 *     -> Ref | {error, R} (MaxSkewMs 0: the default, 60 s)
 *   beacon_seal(Ref, NameBin, Incarnation, Sequence, MetaMap) -> Bin | {error, R}
 *   beacon_open(Ref, Bin, NowMs) ->
 *       {ok, {NameBin, Incarnation, Sequence, Epoch, MetaMap}} | {error, R}
 *   beacon_stats(Ref) -> #{sealed, accepted, malformed, auth_failed, replayed,
 *                          table_full, senders}
 *   beacon_forget(Ref, NameBin) -> ok | {error, not_found}
 * The nonce comes from libsodium's randombytes_buf. Nothing from a beacon becomes an
 * atom: names and metadata come back as binaries.
 */
#ifndef PLEXUS_NIF_BEACON_H
#define PLEXUS_NIF_BEACON_H

#include <erl_nif.h>

struct nif_priv;

/* Opens the plexus_beacon resource type into priv (its atoms are made with all the
 * others by nif_priv_new); call from load and upgrade. 0 = ok. */
int nif_beacon_load(ErlNifEnv *env, struct nif_priv *priv);

ERL_NIF_TERM nif_beacon_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_beacon_seal(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_beacon_open(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_beacon_stats(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_beacon_forget(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
