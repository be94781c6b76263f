/*
 * plexus_nif.so: load / upgrade / unload and the function table, nothing else (the
 * NIFs live in one file per area, nif_<area>.c; atoms, errors and helpers in
 * nif_util.c).
 *
 * Every NIF starts on a normal scheduler and moves itself to a dirty CPU scheduler with
 * enif_schedule_nif when its input outweighs the measured threshold (nif_util.h), so
 * the table has no dirty flags, except fsync_dir, which always waits on the disk and
 * so always runs on a dirty IO scheduler.
 */
#include <erl_nif.h>
#include <sodium.h>

#include "nif/nif_election.h"
#include "nif/nif_topology.h"
#include "nif/nif_fsync.h"
#include "nif/nif_beacon.h"
#include "nif/nif_health.h"
#include "nif/nif_hlc.h"
#include "nif/nif_lww.h"
#include "nif/nif_orset.h"
#include "nif/nif_registry.h"
#include "nif/nif_trie.h"
#include "nif/nif_trie_decode.h"
#include "nif/nif_trie_encode.h"
#include "nif/nif_util.h"

/* The one load-time struct: every atom (nif_priv_new), then each area's resource type
 * (opened with ERL_NIF_RT_TAKEOVER, so the same calls serve load and upgrade). */
static nif_priv *make_priv(ErlNifEnv *env)
{
    if (sodium_init() < 0) return NULL; /* digests, nonces and key memory need libsodium */
    nif_priv *priv = nif_priv_new(env);
    if (!priv) return NULL;
    nif_hlc_load();
    if (nif_health_load(env, priv) || nif_beacon_load(env, priv) || nif_election_load(env, priv) ||
        nif_registry_load(env, priv)) {
        nif_priv_free(priv);
        return NULL;
    }
    return priv;
}

static int load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info)
{
    (void)load_info;
    nif_priv *priv = make_priv(env);
    if (!priv) return 1;
    *priv_data = priv;
    return 0;
}

/* A new version of the module: fresh atoms and struct, but the dirty threshold
 * carries over. (The HLC cell needs nothing here: it runs under a lease plexus_hlc
 * records in Erlang, so a fresh cell cannot go back; see nif_hlc.h.) The old struct
 * is freed by the old library's unload. */
static int upgrade(ErlNifEnv *env, void **priv_data, void **old_priv_data, ERL_NIF_TERM load_info)
{
    (void)load_info;
    nif_priv *priv = make_priv(env);
    if (!priv) return 1;
    nif_priv *old = *old_priv_data;
    if (old) {
        atomic_store(&priv->dirty_threshold, atomic_load(&old->dirty_threshold));
    }
    *priv_data = priv;
    return 0;
}

static void unload(ErlNifEnv *env, void *priv_data)
{
    (void)env;
    nif_priv_free(priv_data);
}

static ErlNifFunc nif_funcs[] = {
    {"orset_new", 0, nif_orset_new, 0},
    {"orset_apply", 5, nif_orset_apply, 0},
    {"orset_merge", 1, nif_orset_merge, 0},
    {"orset_member", 2, nif_orset_member, 0},
    {"orset_to_list", 1, nif_orset_to_list, 0},
    {"orset_size", 1, nif_orset_size, 0},
    {"orset_validate", 1, nif_orset_validate, 0},
    {"orset_digest", 1, nif_orset_digest, 0},
    {"trie_hash", 1, nif_trie_hash, 0},
    {"trie_orset_merge", 5, nif_trie_orset_merge, 0},
    {"trie_lwwmap_merge", 5, nif_trie_lwwmap_merge, 0},
    {"trie_build", 2, nif_trie_build, 0},
    {"trie_decode", 1, nif_trie_decode, 0},
    {"trie_encode", 3, nif_trie_encode, 0},
    {"lww_new", 3, nif_lww_new, 0},
    {"lww_update_ts", 4, nif_lww_update_ts, 0},
    {"lww_read", 2, nif_lww_read, 0},
    {"lww_merge", 1, nif_lww_merge, 0},
    {"lww_validate", 1, nif_lww_validate, 0},
    {"lww_digest", 1, nif_lww_digest, 0},
    {"lww_write", 3, nif_lww_write, 0},
    {"lww_update", 3, nif_lww_update, 0},
    {"hlc_next_after", 1, nif_hlc_next_after, 0},
    {"hlc_observe", 1, nif_hlc_observe, 0},
    {"hlc_lease", 2, nif_hlc_lease, 0},
    {"hlc_cell", 0, nif_hlc_cell, 0},
    {"hlc_wall", 0, nif_hlc_wall, 0},
    {"set_dirty_threshold", 1, nif_set_dirty_threshold, 0},
    {"dirty_threshold", 0, nif_dirty_threshold, 0},
    {"health_new", 3, nif_health_new, 0},
    {"health_up", 3, nif_health_up, 0},
    {"health_answer", 4, nif_health_answer, 0},
    {"health_down", 4, nif_health_down, 0},
    {"health_tick", 2, nif_health_tick, 0},
    {"health_remove", 2, nif_health_remove, 0},
    {"health_get", 2, nif_health_get, 0},
    {"health_list", 1, nif_health_list, 0},
    {"election_new", 1, nif_election_new, 0},
    {"election_tick", 1, nif_election_tick, 0},
    {"election_step", 2, nif_election_step, 0},
    {"election_peer_down", 2, nif_election_peer_down, 0},
    {"election_forget_leader", 2, nif_election_forget_leader, 0},
    {"election_campaign", 1, nif_election_campaign, 0},
    {"election_add_peer", 2, nif_election_add_peer, 0},
    {"election_remove_peer", 2, nif_election_remove_peer, 0},
    {"election_info", 1, nif_election_info, 0},
    {"election_msg_encode", 1, nif_election_msg_encode, 0},
    {"election_msg_decode", 1, nif_election_msg_decode, 0},
    {"topology_assign", 2, nif_topology_assign, 0},
    {"fsync_dir", 1, nif_fsync_dir, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"beacon_new", 6, nif_beacon_new, 0},
    {"beacon_seal", 5, nif_beacon_seal, 0},
    {"beacon_open", 3, nif_beacon_open, 0},
    {"beacon_stats", 1, nif_beacon_stats, 0},
    {"beacon_forget", 2, nif_beacon_forget, 0},
    {"registry_new", 1, nif_registry_new, 0},
    {"registry_handle", 4, nif_registry_handle, 0},
    {"registry_sample", 3, nif_registry_sample, 0},
    {"registry_view", 2, nif_registry_view, 0},
    {"registry_lookup", 3, nif_registry_lookup, 0},
    {"registry_evict", 2, nif_registry_evict, 0},
    {"registry_stats", 1, nif_registry_stats, 0},
    {"registry_encode_announce", 7, nif_registry_encode_announce, 0},
    {"registry_encode_query", 4, nif_registry_encode_query, 0},
    {"registry_encode_bye", 4, nif_registry_encode_bye, 0},
    {"registry_decode", 1, nif_registry_decode, 0},
    {"registry_keypair", 0, nif_registry_keypair, 0},
    {"registry_public_key", 1, nif_registry_public_key, 0},
};

ERL_NIF_INIT(plexus_nif, nif_funcs, load, NULL, upgrade, unload)
