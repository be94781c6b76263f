%% @doc EUnit tests of the NIF library's load-time state across a code upgrade of
%% `plexus_nif': the library is loaded again through its upgrade callback, which makes
%% a fresh load-time struct (every atom, and the resource types taken over) and carries
%% the HLC and the dirty threshold across. Resources made before the upgrade must keep
%% working after it, and the terms they return must carry the same atoms.
-module(plexus_nif_upgrade_tests).

-include_lib("eunit/include/eunit.hrl").

-define(SECRET, <<"eunit secret of sixteen+ bytes">>).

upgrade_keeps_resources_and_counters_test() ->
    H = plexus_nif:health_new(1000, 5000, 30000),
    _ = plexus_nif:health_up(H, <<"a@h">>, 0),
    B = plexus_nif:beacon_new(?SECRET, <<"c">>, 1, false, 8, 0),
    Sealed = plexus_nif:beacon_seal(B, <<"n@h">>, 1, 1, #{}),
    {ok, E} = plexus_election:new(#{id => 1, peers => [2, 3], hard_state => {0, 0}}),
    %% a timestamp ten minutes ahead (within the skew bound) moves the node clock there
    Ahead = (erlang:system_time(millisecond) + 600000) bsl 16,
    _ = plexus_lww:update(plexus_lww:new(blue), green, Ahead),
    ?assert(plexus_lww:clock() > Ahead),
    Threshold = plexus_nif:set_dirty_threshold(12345),
    try
        upgrade(),
        %% resources of every type made before the upgrade are still accepted
        ?assertMatch({ok, #{node := <<"a@h">>, status := healthy}},
                     plexus_nif:health_get(H, <<"a@h">>)),
        ?assertEqual({error, not_found}, plexus_nif:health_remove(H, <<"b@h">>)),
        ?assertEqual([{node_down, <<"a@h">>, healthy, down, shutdown}],
                     plexus_nif:health_down(H, <<"a@h">>, 1, shutdown)),
        ?assertMatch({ok, {<<"n@h">>, 1, 1, 1, #{}}}, plexus_nif:beacon_open(B, Sealed, 0)),
        ?assertMatch(#{sealed := 1, accepted := 1}, plexus_nif:beacon_stats(B)),
        ?assertEqual({error, not_found}, plexus_nif:beacon_forget(B, <<"x@h">>)),
        ?assertMatch(#{id := 1, role := follower, stats := #{elections := 0}},
                     plexus_election:info(E)),
        ?assertEqual({error, not_found}, plexus_election:remove_peer(E, 9)),
        %% new resources are made with the taken-over types
        ?assertMatch({ok, _}, plexus_election:new(#{id => 2, hard_state => none})),
        %% the counters carried over: the clock never goes back, the threshold stays
        ?assert(plexus_lww:clock() > Ahead),
        ?assertEqual(12345, plexus_nif:set_dirty_threshold(Threshold))
    after
        plexus_nif:set_dirty_threshold(Threshold)
    end.

%% Loads plexus_nif again while its current code stays as old code, so that the
%% on_load of the new code finds a loaded library and goes through upgrade; then purges
%% the old code, which unloads the old library instance (its unload frees the old
%% struct) while the resources made before live on.
upgrade() ->
    _ = code:purge(plexus_nif),
    ?assertEqual({module, plexus_nif}, code:load_file(plexus_nif)),
    ?assert(erlang:check_old_code(plexus_nif)),
    _ = code:purge(plexus_nif),
    ok.
