%% @doc EUnit tests of `plexus_topology' on one node (agreement across nodes and
%% commander failover are in plexus_leader_SUITE; the rule itself in
%% plexus_election_tests).
-module(plexus_topology_tests).

-include_lib("eunit/include/eunit.hrl").

-define(T, plexus_topology).

with(Opts, F) ->
    {ok, Pid} = ?T:start(Opts),
    try F(maps:get(name, Opts, plexus_topology))
    after
        unlink(Pid),
        gen_server:stop(Pid)
    end.

alone_commands_test() ->
    with(#{}, fun(S) ->
                      ?assertEqual(commander, ?T:get_role(S)),
                      ?assertEqual({ok, node()}, ?T:get_commander(S)),
                      ?assertEqual([{node(), commander}], ?T:list_nodes(S)),
                      ?assertEqual(1, ?T:node_count(S)),
                      ?assertEqual(1, ?T:quorum_size(S)),
                      %% the default name works with the /0 functions
                      ?assertEqual(commander, ?T:get_role()),
                      ?assertEqual({ok, node()}, ?T:get_commander()),
                      ?assertEqual(1, ?T:node_count()),
                      ?assertEqual(1, ?T:quorum_size()),
                      ?assertEqual([{node(), commander}], ?T:list_nodes())
              end).

below_quorum_test() ->
    with(#{name => topo_q, quorum_size => 2},
         fun(S) ->
                 ?assertEqual({error, no_commander}, ?T:get_commander(S)),
                 ?assertEqual(observer, ?T:get_role(S)),
                 %% promoted below quorum: relay
                 ?assertEqual(ok, ?T:promote(S, node(), relay)),
                 ?assertEqual(relay, ?T:get_role(S)),
                 ?assertEqual(ok, ?T:promote(S, node(), observer)),
                 ?assertEqual(observer, ?T:get_role(S)),
                 %% no commander to back
                 ?assertEqual({error, no_commander}, ?T:promote(S, node(), wingmate))
         end).

promotion_never_overrides_commander_test() ->
    with(#{name => topo_p, start_time => 5},
         fun(S) ->
                 ?assertEqual(ok, ?T:promote(S, node(), relay)),
                 ?assertEqual(commander, ?T:get_role(S))
         end).

promote_errors_test() ->
    with(#{name => topo_e},
         fun(S) ->
                 ?assertEqual({error, unknown_node}, ?T:promote(S, 'x@h', relay)),
                 ?assertEqual({error, {not_assignable, commander}},
                              ?T:promote(S, node(), commander)),
                 %% the commander cannot back itself
                 ?assertEqual({error, is_commander}, ?T:promote(S, node(), wingmate)),
                 ?assertError(badarg, ?T:promote(S, node(), general)),
                 %% what another node's process may ask is checked too
                 ?assertEqual({error, {not_assignable, general}},
                              gen_server:call(S, {promote, node(), general})),
                 ?assertError(badarg, ?T:promote(S, "node", relay))
         end).

ignores_strangers_test() ->
    with(#{name => topo_s},
         fun(S) ->
                 %% an announcement from a node that is not connected is dropped
                 S ! {'$plexus_topology', {announce, 'ghost@h', 0, false, false}},
                 S ! {'$plexus_topology', {announce, "bad", -1, maybe, x}},
                 S ! unrelated,
                 ?assertEqual(1, ?T:node_count(S)),
                 ?assertEqual({ok, node()}, ?T:get_commander(S))
         end).

%% It follows plexus_monitor: subscribes when the monitor starts after it, lets go
%% when the monitor stops, and subscribes again when it is back.
follows_the_monitor_test_() ->
    {timeout, 60, fun() ->
        with(#{name => topo_m},
             fun(S) ->
                     ?assertEqual(undefined, followed(S)),
                     {ok, M1} = plexus_monitor:start_link(#{}),
                     unlink(M1),
                     ok = wait_until(fun() -> followed(S) =:= M1 end),
                     ?assert(lists:member(whereis(topo_m), monitor_subscribers())),
                     ok = plexus_monitor:stop(),
                     ok = wait_until(fun() -> followed(S) =:= undefined end),
                     {ok, M2} = plexus_monitor:start_link(#{}),
                     unlink(M2),
                     try
                         ok = wait_until(fun() -> followed(S) =:= M2 end),
                         ?assertEqual(commander, ?T:get_role(S))
                     after
                         plexus_monitor:stop()
                     end
             end),
        %% and not at all with monitor => false
        {ok, M3} = plexus_monitor:start_link(#{}),
        unlink(M3),
        try
            with(#{name => topo_n, monitor => false},
                 fun(S) -> ?assertEqual(false, element(4, sys:get_state(S))) end)
        after
            plexus_monitor:stop()
        end
    end}.

followed(S) ->
    case element(4, sys:get_state(S)) of
        {Pid, _Ref} -> Pid;
        Other -> Other
    end.

monitor_subscribers() ->
    maps:keys(element(8, sys:get_state(plexus_monitor))).

wait_until(F) -> plexus_test_nodes:wait_until(F, 20000).

bad_options_test_() ->
    [?_assertError(badarg, ?T:start_link(#{quorum_size => -1})),
     ?_assertError(badarg, ?T:start_link(#{name => "x"})),
     ?_assertError(badarg, ?T:start_link(#{start_time => -5})),
     ?_assertError(badarg, ?T:start_link(#{start_time => 1 bsl 64})),
     ?_assertError(badarg, ?T:start_link(nonsense)),
     ?_assertError(badarg, ?T:start_link(#{monitor => maybe})),
     ?_assertError(badarg, ?T:child_spec(#{quorum_size => x}))].

child_spec_test() ->
    ?assertMatch(#{id := {plexus_topology, plexus_topology},
                   start := {plexus_topology, start_link, [#{name := plexus_topology}]}},
                 ?T:child_spec([])),
    ?assertMatch(#{id := {plexus_topology, t2}}, ?T:child_spec([{name, t2}, {quorum_size, 3}])).

%% The application starts it only when configured.
supervisor_children_test() ->
    {ok, {_, Plain}} = plexus_sup:init([]),
    ?assertEqual([], [C || C = #{id := {plexus_topology, _}} <- Plain]),
    application:set_env(plexus, topology, [{quorum_size, 2}]),
    try
        {ok, {_, With}} = plexus_sup:init([]),
        ?assertMatch([#{id := {plexus_topology, plexus_topology}}],
                     [C || C = #{id := {plexus_topology, _}} <- With])
    after
        application:unset_env(plexus, topology)
    end.
