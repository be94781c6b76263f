%% @doc Pure EUnit for the discovery subscriber registry (`plexus_discovery_subs'):
%% the indexes by id, monitor and dispatcher agree after inserts and removals, and
%% one event becomes one message per subscription in the documented shape. No
%% process is started or monitored: pids and references are stand-ins.
-module(plexus_discovery_subs_tests).

-include_lib("eunit/include/eunit.hrl").

fake_pid(N) -> list_to_pid("<0." ++ integer_to_list(N) ++ ".0>").

registry_indexes_test() ->
    {PidSub, FunSub} = {make_ref(), make_ref()},
    {M1, M2} = {make_ref(), make_ref()},
    {Subscriber, Dispatcher} = {fake_pid(9001), fake_pid(9002)},
    S = plexus_discovery_subs:insert(FunSub, 'fun', Dispatcher, M2,
                                     plexus_discovery_subs:insert(PidSub, pid, Subscriber, M1,
                                                                  plexus_discovery_subs:new())),
    ?assertEqual(2, plexus_discovery_subs:size(S)),
    ?assertEqual({ok, PidSub}, plexus_discovery_subs:by_monitor(M1, S)),
    ?assertEqual({ok, FunSub}, plexus_discovery_subs:by_monitor(M2, S)),
    %% only fun dispatchers are linked, so only they are found by pid
    ?assertEqual({ok, FunSub}, plexus_discovery_subs:by_dispatcher(Dispatcher, S)),
    ?assertEqual(error, plexus_discovery_subs:by_dispatcher(Subscriber, S)),
    {ok, {'fun', Dispatcher, M2}, S1} = plexus_discovery_subs:take(FunSub, S),
    ?assertEqual(error, plexus_discovery_subs:by_monitor(M2, S1)),
    ?assertEqual(error, plexus_discovery_subs:by_dispatcher(Dispatcher, S1)),
    ?assertEqual(error, plexus_discovery_subs:take(FunSub, S1)),
    {ok, {pid, Subscriber, M1}, S2} = plexus_discovery_subs:take(PidSub, S1),
    ?assertEqual(0, plexus_discovery_subs:size(S2)),
    ?assertEqual(error, plexus_discovery_subs:by_monitor(M1, S2)).

same_pid_twice_test() ->
    %% a pid may subscribe twice: two subscriptions, two messages per event
    P = fake_pid(9003),
    {A, B} = {make_ref(), make_ref()},
    S = plexus_discovery_subs:insert(B, pid, P, make_ref(),
                                     plexus_discovery_subs:insert(A, pid, P, make_ref(),
                                                                  plexus_discovery_subs:new())),
    E = {peer_up, #{id => <<"a@h">>, metadata => #{}}, #{}},
    ?assertEqual([{P, {plexus_discovery, E}}, {P, {plexus_discovery, E}}],
                 plexus_discovery_subs:deliveries(E, S)),
    {ok, _, S1} = plexus_discovery_subs:take(A, S),
    ?assertEqual([{P, {plexus_discovery, E}}], plexus_discovery_subs:deliveries(E, S1)).

deliveries_shape_test() ->
    {Subscriber, Dispatcher} = {fake_pid(9004), fake_pid(9005)},
    S = plexus_discovery_subs:insert(make_ref(), 'fun', Dispatcher, make_ref(),
                                     plexus_discovery_subs:insert(make_ref(), pid, Subscriber,
                                                                  make_ref(),
                                                                  plexus_discovery_subs:new())),
    E = {peer_down, #{id => <<"a@h">>, metadata => #{}}, gone},
    ?assertEqual(lists:sort([{Subscriber, {plexus_discovery, E}}, {Dispatcher, {event, E}}]),
                 lists:sort(plexus_discovery_subs:deliveries(E, S))),
    ?assertEqual([], plexus_discovery_subs:deliveries(E, plexus_discovery_subs:new())).
