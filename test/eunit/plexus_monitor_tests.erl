%% EUnit for plexus_monitor and the detector NIFs it runs on (plexus_nif:health_*):
%% the thresholds of doc/DESIGN.md §3, event translation, badarg and {error, _} cases, and
%% the monitor on a non-distributed node (no nodes: empty lists, not_found).
-module(plexus_monitor_tests).

-include_lib("eunit/include/eunit.hrl").

nif_detector_test() ->
    H = plexus_nif:health_new(1000, 5000, 30000),
    ?assertEqual([{node_up, <<"a@h">>, unknown, healthy, none}], plexus_nif:health_up(H, <<"a@h">>, 0)),
    ?assertEqual([], plexus_nif:health_answer(H, <<"a@h">>, 100, 250)),
    ?assertEqual({[], 5100}, plexus_nif:health_tick(H, 5099)),
    ?assertEqual({[{suspect, <<"a@h">>, healthy, suspect, none}], 30100},
                 plexus_nif:health_tick(H, 5100)),
    ?assertEqual([{healthy, <<"a@h">>, suspect, healthy, none}],
                 plexus_nif:health_answer(H, <<"a@h">>, 6000, 300)),
    ?assertEqual([{node_down, <<"a@h">>, healthy, down, connection_closed}],
                 plexus_nif:health_down(H, <<"a@h">>, 7000, connection_closed)),
    ?assertEqual([], plexus_nif:health_down(H, <<"a@h">>, 7001, timeout)),
    {ok, M} = plexus_nif:health_get(H, <<"a@h">>),
    ?assertMatch(#{status := down, samples := 2, rtt_avg_us := 275, rtt_p50_us := 250,
                   rtt_p99_us := 300, answers := 2}, M),
    ?assertMatch([#{node := <<"a@h">>}], plexus_nif:health_list(H)),
    ?assertEqual(ok, plexus_nif:health_remove(H, <<"a@h">>)),
    ?assertEqual({error, not_found}, plexus_nif:health_remove(H, <<"a@h">>)),
    ?assertEqual({error, not_found}, plexus_nif:health_get(H, <<"a@h">>)),
    ?assertEqual({error, not_found}, plexus_nif:health_answer(H, <<"a@h">>, 1, 1)),
    ?assertEqual({error, not_found}, plexus_nif:health_down(H, <<"a@h">>, 1, timeout)),
    ?assertEqual({[], infinity}, plexus_nif:health_tick(H, 99999)).

nif_silence_goes_down_test() ->
    H = plexus_nif:health_new(100, 500, 2000),
    _ = plexus_nif:health_up(H, <<"b@h">>, 10),
    ?assertEqual({[{suspect, <<"b@h">>, healthy, suspect, none},
                   {node_down, <<"b@h">>, suspect, down, timeout}], infinity},
                 plexus_nif:health_tick(H, 5000)),
    %% an answer from a down node brings it back
    ?assertEqual([{node_up, <<"b@h">>, down, healthy, none}],
                 plexus_nif:health_answer(H, <<"b@h">>, 5001, 10)).

nif_badarg_test() ->
    H = plexus_nif:health_new(1000, 5000, 30000),
    ?assertEqual({error, invalid_argument}, plexus_nif:health_new(1000, 5000, 5000)),
    ?assertEqual({error, invalid_argument}, plexus_nif:health_new(0, 5000, 30000)),
    ?assertError(badarg, plexus_nif:health_new(-1, 5000, 30000)),
    ?assertError(badarg, plexus_nif:health_up(H, a@h, 0)),
    ?assertError(badarg, plexus_nif:health_up(H, <<>>, 0)),
    ?assertError(badarg, plexus_nif:health_up(H, <<"a">>, -1)),
    ?assertError(badarg, plexus_nif:health_up(make_ref(), <<"a">>, 0)),
    ?assertError(badarg, plexus_nif:health_up(H, binary:copy(<<"x">>, 1025), 0)),
    ?assertError(badarg, plexus_nif:health_down(H, <<"a">>, 0, not_a_reason)),
    ?assertError(badarg, plexus_nif:health_down(H, <<"a">>, 0, none)),
    ?assertError(badarg, plexus_nif:health_answer(H, <<"a">>, 0, -5)),
    ?assertError(badarg, plexus_nif:health_tick(H, foo)),
    ?assertError(badarg, plexus_nif:health_list(self())).

translate_test() ->
    ?assertEqual([{node_up, n}], plexus_monitor:translate({node_up, <<"n">>, down, healthy, none}, n)),
    ?assertEqual([{node_down, n}], plexus_monitor:translate({node_down, <<"n">>, healthy, down, timeout}, n)),
    ?assertEqual([{status_change, n, healthy, suspect}],
                 plexus_monitor:translate({suspect, <<"n">>, healthy, suspect, none}, n)),
    ?assertEqual([{status_change, <<"n@h">>, suspect, healthy}],
                 plexus_monitor:translate({healthy, <<"n@h">>, suspect, healthy, none}, <<"n@h">>)),
    ?assertEqual(<<"a@b">>, plexus_monitor:node_key('a@b')),
    ?assertEqual(<<"a@b">>, plexus_monitor:node_key(<<"a@b">>)).

local_monitor_test_() ->
    {setup,
     fun() -> {ok, Pid} = plexus_monitor:start_link(#{ping_interval_ms => 50}), unlink(Pid), Pid end,
     fun(_) -> plexus_monitor:stop() end,
     [?_assertEqual({error, not_found}, plexus_monitor:get_health('nobody@nowhere')),
      ?_assertEqual({error, not_found}, plexus_monitor:get_health(<<"nobody@nowhere">>)),
      ?_assertError(badarg, plexus_monitor:get_health("nobody")),
      ?_assertEqual([], plexus_monitor:list_healthy()),
      ?_assertEqual([], plexus_monitor:list_suspect()),
      ?_assertEqual([], plexus_monitor:list_all()),
      ?_assertEqual(ok, plexus_monitor:subscribe()),
      ?_assertEqual(ok, plexus_monitor:unsubscribe()),
      ?_assertError(badarg, plexus_monitor:watch("x")),
      {"raw calls from any connected node", fun raw_calls/0}]}.

%% Before: `{subscribe, 123}' crashed the monitor (erlang:monitor/2 badarg), a pid of
%% another node was taken (its node hanging would suspend the detector on the event
%% send), and a delay that is not a time crashed it at the next answer.
raw_calls() ->
    Mon = whereis(plexus_monitor),
    Remote = binary_to_term(<<131, 88, 119, 10, "other@host", 1:32, 0:32, 1:32>>),
    ?assertNotEqual(node(), node(Remote)),
    [?assertEqual({error, badarg}, gen_server:call(plexus_monitor, {subscribe, P}))
     || P <- [123, some_name, Remote]],
    ?assertEqual({error, unknown_call},
                 gen_server:call(plexus_monitor, {test_delay_answers, <<"n@h">>, soon})),
    ?assertEqual(Mon, whereis(plexus_monitor)),
    ?assertEqual(ok, plexus_monitor:subscribe()),
    ?assertEqual(ok, plexus_monitor:unsubscribe()).

bad_config_test() ->
    process_flag(trap_exit, true),
    ?assertEqual({error, {invalid_configuration, invalid_argument}},
                 plexus_monitor:start_link(#{suspect_after_ms => 10, down_after_ms => 5})),
    ?assertEqual({error, {invalid_configuration, {source, nope}}},
                 plexus_monitor:start_link(#{source => nope})),
    ?assertEqual({error, {cnode_not_running, plexus_cnode}},
                 plexus_monitor:start_link(#{source => cnode})).

cnode_not_distributed_test() ->
    process_flag(trap_exit, true),
    case node() of
        nonode@nohost -> ?assertEqual({error, not_distributed}, plexus_cnode:start_link());
        _ -> ok
    end,
    ?assertError(badarg, plexus_cnode:health(42)).
