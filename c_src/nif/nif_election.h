/*
 * Election NIFs (plexus_nif:election_*): glue between plexus_election
 * (erl/plexus_election.erl, driven by plexus_leader) and the pure state machine in
 * c_src/core/election.c.
 *
 * One resource per election node, holding the whole plexus_election struct (fixed size,
 * no inner allocation), a mutex (doc/STYLE.md habit 7: the handle is mutable) and the
 * node's own random source: a xorshift128+ generator seeded from libsodium's
 * randombytes_buf, used only to draw election timeouts.
 *
 * Every input NIF (tick, step, peer_down, campaign, add_peer, remove_peer) runs the
 * core call and then drains the ready batch in the same critical section, returning
 *
 *     {Msgs :: [{ToId, Bin}], Hard :: {Term, VotedFor} | unchanged,
 *      Soft :: {Role, LeaderId} | unchanged}
 *
 * and calling plexus_election_advance() before it returns. The caller must write Hard
 * durably before it sends any of Msgs (the core's driver contract; plexus_leader does);
 * if it cannot, it must stop without sending, and restart from what is on disk.
 * VotedFor and LeaderId are 0 for "none". Role is follower | pre_candidate | candidate |
 * leader. All calls are O(peers) at most (peers <= 63) and stay on a normal scheduler.
 */
#ifndef PLEXUS_NIF_ELECTION_H
#define PLEXUS_NIF_ELECTION_H

#include <erl_nif.h>

struct nif_priv;

/* Opens the plexus_election resource type into priv (its atoms are made with all the
 * others by nif_priv_new); call from load and upgrade. 0 = ok. */
int nif_election_load(ErlNifEnv *env, struct nif_priv *priv);

ERL_NIF_TERM nif_election_new(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_election_tick(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_election_step(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_election_peer_down(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_election_forget_leader(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_election_campaign(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_election_add_peer(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_election_remove_peer(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_election_info(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_election_msg_encode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM nif_election_msg_decode(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
