/*
 * TTL registry NIFs (plexus_nif:registry_*), used by plexus_registry (the BEAM-hosted
 * server) and plexus_discovery_registry (the client). A resource wraps one mutable
 * plexus_registry table (c_src/core/registry.c) with a mutex. The SipHash key of the
 * table comes from randombytes_buf.
 *
 * Server side:
 *   registry_new(Opts) -> Ref | {error, invalid_argument}
 *       Opts: #{max_entries, default_ttl_ms, min_ttl_ms, max_ttl_ms, max_skew_ms =>
 *       non_neg_integer(), require_signed => boolean(), trusted_keys => [<<_:256>>],
 *       server_addrs => [binary()]}, every key optional.
 *   registry_handle(Ref, Datagram, Source, NowMs) -> {Result, ReplyBin} (<<>> = no reply)
 *       Source: the sender's address as bytes (<= 32; <<>> = this node itself)
 *       Result: {announced, new | refreshed, Peer, TtlMs} | {refused, Reason, Peer}
 *             | queried | cookie | {left, Peer} | {ignored, Reason} | {dropped, Reason}
 *   registry_sample(Ref, N, NowMs) / registry_view(Ref, NowMs) -> [Entry]
 *   registry_lookup(Ref, Peer, NowMs) -> {ok, Entry} | {error, not_found}
 *   registry_evict(Ref, NowMs) -> Count;  registry_stats(Ref) -> map
 *   Entry: #{peer := binary(), addrs := [binary()], metadata := #{binary() => binary()},
 *            ttl_ms := RemainingMs}
 * Client side (no resource):
 *   registry_encode_announce(ReqId, Peer, Addrs, Meta, TtlMs, IssuedMs, Seed) -> Bin
 *   registry_encode_query(ReqId, Max, Cookie, PadTo) -> Bin  (Cookie <<>> or 16 bytes)
 *   registry_encode_bye(ReqId, Peer, IssuedMs, Seed) -> Bin
 *       Seed: <<>> for unsigned, or a 32-byte Ed25519 seed.
 *   registry_decode(Bin) -> {ok, map()} | {error, Reason}
 *   registry_keypair() -> {PublicKey, Seed};  registry_public_key(Seed) -> PublicKey
 * Large views (weight above the dirty threshold, nif_util.h) run on a dirty scheduler.
 * Nothing from a datagram becomes an atom.
 */
#ifndef PLEXUS_NIF_REGISTRY_H
#define PLEXUS_NIF_REGISTRY_H

#include <erl_nif.h>

struct nif_priv;

/* Opens the plexus_registry resource type into priv (its atoms are made with all the
 * others by nif_priv_new); call from load and upgrade. 0 = ok. */
int nif_registry_load(ErlNifEnv *env, struct nif_priv *priv);

ERL_NIF_TERM nif_registry_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_registry_handle(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_registry_sample(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_registry_view(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_registry_lookup(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_registry_evict(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_registry_stats(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_registry_encode_announce(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_registry_encode_query(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_registry_encode_bye(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_registry_decode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_registry_keypair(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_registry_public_key(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
