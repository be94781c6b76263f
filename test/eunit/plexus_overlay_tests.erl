%% EUnit tests of the plexus_overlay runner on one node (the replication between nodes
%% is in plexus_overlay_SUITE): options as a map or a keyword list, bad options,
%% several overlays by name, the API and its events, subscriptions, child specs.
-module(plexus_overlay_tests).

-include_lib("eunit/include/eunit.hrl").

options_test() ->
    {ok, A} = plexus_overlay:start([{name, ovl_eunit_a}, {sync_interval_ms, 50}]),
    {ok, B} = plexus_overlay:start(#{name => ovl_eunit_b, peers => []}),
    try
        ?assertMatch({error, {already_started, _}}, plexus_overlay:start([{name, ovl_eunit_a}])),
        ?assertEqual({error, {bad_option, {sync_interval_ms, 0}}},
                     plexus_overlay:start(#{name => ovl_eunit_c, sync_interval_ms => 0})),
        ?assertEqual({error, {bad_option, {colour, red}}},
                     plexus_overlay:start(#{name => ovl_eunit_c, colour => red})),
        ?assertMatch({error, {bad_options, _}}, plexus_overlay:start(not_options)),
        #{id := IdA} = plexus_overlay:child_spec([{name, ovl_eunit_a}]),
        #{id := IdB} = plexus_overlay:child_spec(#{name => ovl_eunit_b}),
        ?assertNotEqual(IdA, IdB),
        ?assertError({bad_options, _}, plexus_overlay:child_spec(42)),
        ?assertMatch(#{sync_interval_ms := 50, anti_entropy_interval_ms := 60000,
                       msgs_sent := 0, bytes_sent := 0, sends_busy := 0,
                       sends_noconnect := 0, pending_ops := #{}, dropped_deltas := 0,
                       bad_msgs := 0, mailbox := _},
                     plexus_overlay:info(ovl_eunit_a))
    after
        plexus_overlay:stop(A),
        plexus_overlay:stop(B)
    end.

%% Each start writes under an actor of its own: a restarted overlay starts empty, and
%% under an actor its peers know its first writes would be lost (plexus_overlay_SUITE:
%% restarted_replica_keeps_writes shows the loss between nodes).
new_actor_each_start_test() ->
    Actors = [begin
                  {ok, P} = plexus_overlay:start(#{name => ovl_eunit_actor, peers => []}),
                  #{actor := A} = plexus_overlay:info(ovl_eunit_actor),
                  ok = plexus_overlay:stop(P),
                  A
              end || _ <- [1, 2, 3]],
    ?assertEqual(3, length(lists:usort(Actors))),
    [?assertMatch({N, _, _} when N =:= node(), A) || A <- Actors].

api_and_events_test() ->
    {ok, P} = plexus_overlay:start(#{name => ovl_eunit_api}),
    {ok, Other} = plexus_overlay:start(#{name => ovl_eunit_other}),
    O = ovl_eunit_api,
    try
        {ok, Ref} = plexus_overlay:subscribe(O),
        ok = plexus_overlay:update_entity(O, tank, #{hp => 10}),
        ok = plexus_overlay:update_entity(O, tank, #{hp => 10}),
        ok = plexus_overlay:update_entity(O, tank, #{hp => 9}),
        ok = plexus_overlay:add_waypoint(O, rally, {1, 2}),
        ok = plexus_overlay:remove_waypoint(O, rally),
        ok = plexus_overlay:remove_entity(O, tank),
        ok = plexus_overlay:update_entity(O, jeep, #{}),
        ?assertEqual([{entity_updated, tank, #{hp => 10}}, {entity_updated, tank, #{hp => 9}},
                      {waypoint_added, rally, {1, 2}}, {waypoint_removed, rally},
                      {entity_removed, tank}, {entity_updated, jeep, #{}}], events(6)),
        ?assertEqual({ok, #{}}, plexus_overlay:get_entity(O, jeep)),
        ?assertEqual({error, not_found}, plexus_overlay:get_entity(O, tank)),
        ?assertEqual(#{jeep => #{}}, plexus_overlay:get_all_entities(O)),
        ?assertEqual(#{}, plexus_overlay:get_all_waypoints(O)),
        %% the other overlay is another replica
        ?assertEqual(#{}, plexus_overlay:get_all_entities(ovl_eunit_other)),
        ok = plexus_overlay:unsubscribe(O, Ref),
        ok = plexus_overlay:update_entity(O, jeep, moved),
        ?assertEqual([], events(0)),
        %% a subscriber that exits is dropped
        Sub = spawn(fun() -> receive stop -> ok end end),
        {ok, _} = plexus_overlay:subscribe(O, Sub),
        ?assertMatch(#{subscribers := 1}, plexus_overlay:info(O)),
        Mon = erlang:monitor(process, Sub),
        Sub ! stop,
        receive {'DOWN', Mon, _, _, _} -> ok end,
        ?assertMatch(#{subscribers := 0}, plexus_overlay:info(O)),
        ?assertEqual(ok, plexus_overlay:sync_now(O)),
        ?assertEqual(ok, plexus_overlay:anti_entropy_now(O)),
        ?assert(is_binary(plexus_overlay:to_binary(O)))
    after
        plexus_overlay:stop(P),
        plexus_overlay:stop(Other)
    end.

%% The N events in the mailbox (and no more).
events(N) ->
    Got = [receive {overlay_event, E} -> E after 5000 -> timeout end || _ <- lists:seq(1, N)],
    receive {overlay_event, Extra} -> Got ++ [{extra, Extra}] after 100 -> Got end.
