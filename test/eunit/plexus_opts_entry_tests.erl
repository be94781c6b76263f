%% Every start_link/1 and child_spec/1 takes a map, a keyword list, `[]', and rejects
%% anything else with a clear reason (issue 11 item 3).
-module(plexus_opts_entry_tests).
-include_lib("eunit/include/eunit.hrl").

-define(BAD, {invalid_configuration, {bad_options, 42}}).

discovery_keyword_list_test() ->
    {ok, P} = plexus_discovery:start_link([{name, op_disco_kw}, {adapter, none}]),
    ok = plexus_discovery:stop(op_disco_kw),
    false = is_process_alive(P).

discovery_map_and_empty_child_spec_test() ->
    ?assertMatch(#{id := plexus_discovery, start := {plexus_discovery, start_link, [#{}]}},
                 plexus_discovery:child_spec([])),
    ?assertMatch(#{id := op_d, start := {_, _, [#{name := op_d, adapter := gossip}]}},
                 plexus_discovery:child_spec([{name, op_d}, {adapter, gossip}])),
    ?assertMatch(#{id := op_d}, plexus_discovery:child_spec(#{name => op_d})).

discovery_unknown_option_still_refused_test() ->
    ?assertEqual({error, {invalid_configuration, {unknown_option, bogus}}},
                 plexus_discovery:start_link([{bogus, 1}])).

discovery_garbage_test() ->
    ?assertEqual({error, ?BAD}, plexus_discovery:start_link(42)),
    ?assertError({bad_options, 42}, plexus_discovery:child_spec(42)).

monitor_keyword_list_test() ->
    {ok, P} = plexus_monitor:start_link([{ping_interval_ms, 1000}]),
    unlink(P),
    ok = plexus_monitor:stop(),
    ?assertMatch(#{start := {plexus_monitor, start_link, [#{ping_interval_ms := 1000}]}},
                 plexus_monitor:child_spec([{ping_interval_ms, 1000}])),
    ?assertMatch(#{id := plexus_monitor}, plexus_monitor:child_spec([])),
    ?assertEqual({error, ?BAD}, plexus_monitor:start_link(42)),
    ?assertError({bad_options, 42}, plexus_monitor:child_spec(42)).

registry_keyword_list_and_empty_test() ->
    {ok, P} = plexus_registry:start_link([{name, op_reg}, {port, 0}]),
    ok = plexus_registry:stop(P),
    ?assertMatch(#{id := plexus_registry, start := {_, _, [#{}]}}, plexus_registry:child_spec([])),
    ?assertMatch(#{id := op_reg}, plexus_registry:child_spec(#{name => op_reg})),
    ?assertEqual({error, ?BAD}, plexus_registry:start_link(42)),
    ?assertError({bad_options, 42}, plexus_registry:child_spec(42)).

cnode_empty_list_test() ->
    %% not distributed here: the options are accepted and init says why it stops
    case node() of
        nonode@nohost ->
            Old = process_flag(trap_exit, true),
            ?assertEqual({error, not_distributed}, plexus_cnode:start_link([])),
            receive {'EXIT', _, not_distributed} -> ok after 1000 -> ok end,
            process_flag(trap_exit, Old);
        _ -> ok
    end,
    ?assertMatch(#{id := plexus_cnode, start := {_, _, [#{}]}}, plexus_cnode:child_spec([])),
    ?assertEqual({error, ?BAD}, plexus_cnode:start_link(42)),
    ?assertError({bad_options, 42}, plexus_cnode:child_spec(42)).

topology_garbage_test() ->
    ?assertError(badarg, plexus_topology:child_spec([1])),
    ?assertMatch(#{id := {plexus_topology, plexus_topology}}, plexus_topology:child_spec([])).

%% A misspelt option is refused by every server, never started with the default in
%% its place (the monitor, the registry, the C node's server, topology and the leader
%% once took any key).
unknown_option_refused_everywhere_test() ->
    U = {error, {invalid_configuration, {unknown_option, bogus}}},
    ?assertEqual(U, plexus_monitor:start_link([{ping_interval_ms, 1000}, {bogus, 1}])),
    ?assertEqual(U, plexus_registry:start_link([{port, 0}, {bogus, 1}])),
    ?assertEqual(U, plexus_cnode:start_link([{bogus, 1}])),
    ?assertEqual(U, plexus_comms:start_link([{bogus, 1}])),
    ?assertEqual(U, plexus_discovery:start_link([{bogus, 1}])),
    ?assertEqual(U, plexus_leader:start(op_leader, plexus_leader_probe, #{},
                                        [{data_dir, "/nonexistent"}, {bogus, 1}])),
    ?assertError(badarg, plexus_topology:start_link([{bogus, 1}])),
    ?assertEqual({error, {bad_option, {bogus, 1}}}, plexus_overlay:start([{bogus, 1}])).

%% The monitor checks its values before it starts: an answer, not a crash report.
monitor_bad_values_test() ->
    [?assertEqual({error, {invalid_configuration, KV}}, plexus_monitor:start_link([KV]))
     || KV <- [{ping_interval_ms, -1}, {suspect_after_ms, 0}, {down_after_ms, x},
               {source, bogus}, {nodes, [<<"a@b">>]}]],
    ?assertEqual(undefined, whereis(plexus_monitor)).
