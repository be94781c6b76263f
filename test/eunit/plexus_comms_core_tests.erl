%% EUnit tests of plexus_comms_core (the pure decisions of plexus_comms) and of
%% plexus_comms:config/1: link grades at each threshold, every drop rule, priority
%% order within a destination, the queue bounds (eviction of lower classes, refusal
%% otherwise), re-judging queued messages when the link changes. No processes.
-module(plexus_comms_core_tests).

-include_lib("eunit/include/eunit.hrl").

-define(C, plexus_comms_core).
-define(CFG, #{excellent_ms => 10, good_ms => 50, degraded_ms => 200,
               queue_limit => 4, queue_bytes_limit => 1000}).
-define(PEER, 'peer@127.0.0.1').

new() -> ?C:new(#{self => 'me@127.0.0.1', config => ?CFG}).

%% A state where PEER is healthy with the given RTT (ms).
with_rtt(Ms) -> ?C:set_link(?PEER, healthy, Ms * 1000, new()).

classify_test_() ->
    [?_assertEqual(excellent, ?C:classify(healthy, 9999, ?CFG)),
     ?_assertEqual(good, ?C:classify(healthy, 10000, ?CFG)),
     ?_assertEqual(good, ?C:classify(healthy, 49999, ?CFG)),
     ?_assertEqual(degraded, ?C:classify(healthy, 50000, ?CFG)),
     ?_assertEqual(degraded, ?C:classify(healthy, 199999, ?CFG)),
     ?_assertEqual(poor, ?C:classify(healthy, 200000, ?CFG)),
     ?_assertEqual(poor, ?C:classify(healthy, 10000000, ?CFG)),
     ?_assertEqual(good, ?C:classify(healthy, undefined, ?CFG)),
     ?_assertEqual(poor, ?C:classify(suspect, 1000, ?CFG)),
     ?_assertEqual(disconnected, ?C:classify(down, 1000, ?CFG)),
     ?_assertEqual(disconnected, ?C:classify(unknown, undefined, ?CFG))].

quality_test_() ->
    St = ?C:set_status(?PEER, suspect, with_rtt(1)),
    [?_assertEqual(disconnected, ?C:quality(?PEER, new())),
     ?_assertEqual(excellent, ?C:quality('me@127.0.0.1', new())),
     ?_assertEqual(excellent, ?C:quality(?PEER, with_rtt(1))),
     ?_assertEqual(poor, ?C:quality(?PEER, St)),
     %% a status change keeps the last RTT
     ?_assertEqual(excellent, ?C:quality(?PEER, ?C:set_status(?PEER, healthy, St)))].

policy_test_() ->
    Table = [{critical, [send, send, send, send, hold]},
             {high, [send, send, send, send, hold]},
             {normal, [send, send, send, {drop, poor}, {drop, disconnected}]},
             {low, [send, send, {drop, degraded}, {drop, poor}, {drop, disconnected}]}],
    Qs = [excellent, good, degraded, poor, disconnected],
    [?_assertEqual({P, Q, Want}, {P, Q, ?C:policy(P, Q)})
     || {P, Wants} <- Table, {Q, Want} <- lists:zip(Qs, Wants)].

%% submit/4 on an empty queue, for every priority at every grade.
submit_rules_test_() ->
    Cases = [{1, critical, send_now}, {1, low, send_now},
             {100, normal, send_now}, {100, low, {dropped, degraded}},
             {300, high, send_now}, {300, normal, {dropped, poor}}, {300, low, {dropped, poor}}],
    [?_assertMatch({Want, _, _}, ?C:submit(?PEER, P, x, with_rtt(Ms)))
     || {Ms, P, Want} <- Cases] ++
    [?_assertMatch({queued, [], _}, ?C:submit(?PEER, critical, x, new())),
     ?_assertMatch({queued, [], _}, ?C:submit(?PEER, high, x, new())),
     ?_assertMatch({{dropped, disconnected}, [#{reason := disconnected, priority := normal}], _},
                   ?C:submit(?PEER, normal, x, new())),
     ?_assertMatch({{dropped, disconnected}, _, _}, ?C:submit(?PEER, low, x, new()))].

drops_counted_test() ->
    {_, [D], St} = ?C:submit(?PEER, low, <<"abc">>, with_rtt(100)),
    ?assertEqual(#{node => ?PEER, priority => low, reason => degraded,
                   bytes => erlang:external_size(<<"abc">>)}, D),
    #{dropped := #{degraded := #{low := 1, normal := 0}, poor := #{low := 0}}} = ?C:counters(St).

%% Everything queued while disconnected leaves, once connected, critical first and
%% in arrival order within a class.
priority_order_test() ->
    Msgs = [{high, h1}, {critical, c1}, {high, h2}, {critical, c2}],
    Big = ?C:new(#{self => 'me@127.0.0.1', config => ?CFG#{queue_limit := 10}}),
    St = lists:foldl(fun({P, D}, S) -> {queued, [], S1} = ?C:submit(?PEER, P, D, S), S1 end,
                     Big, Msgs),
    ?assertEqual(none, ?C:next(?PEER, St)),               % held while disconnected
    %% connected: a normal message now goes behind the queued ones
    St1 = ?C:set_link(?PEER, healthy, 1000, St),
    {queued, [], St2} = ?C:submit(?PEER, normal, n1, St1),
    ?assertEqual([c1, c2, h1, h2, n1], drain(St2)),
    ?assertEqual(#{critical => 2, high => 2, normal => 1, low => 0},
                 maps:get(sent, ?C:counters(element(2, drain_st(St2))))).

drain(St) -> element(1, drain_st(St)).

drain_st(St) -> drain_st(St, []).
drain_st(St, Acc) ->
    case ?C:next(?PEER, St) of
        none -> {lists:reverse(Acc), St};
        {send, P, D} -> drain_st(?C:pop_sent(?PEER, P, St), [D | Acc]);
        {drop, P, R} -> {_, St1} = ?C:pop_dropped(?PEER, P, R, St), drain_st(St1, [{drop, R} | Acc])
    end.

%% A queued normal message whose link became poor is dropped when it would leave,
%% even behind a held critical one.
rejudged_test() ->
    St0 = with_rtt(1),
    {queued, [], St1} = ?C:enqueue(?PEER, normal, n1, St0),     % (as after a busy send)
    {queued, [], St2} = ?C:enqueue(?PEER, critical, c1, St1),
    St3 = ?C:set_status(?PEER, down, St2),
    ?assertEqual({drop, normal, disconnected}, ?C:next(?PEER, St3)),
    {#{reason := disconnected}, St4} = ?C:pop_dropped(?PEER, normal, disconnected, St3),
    ?assertEqual(none, ?C:next(?PEER, St4)),
    ?assertEqual(1, ?C:queue_len(?PEER, St4)).

%% Bound 4 messages: lower classes are evicted oldest first, lowest class first; an
%% equal or lower class is refused and nothing is evicted for it.
bound_len_test() ->
    St0 = lists:foldl(fun({P, D}, S) -> {queued, [], S1} = ?C:enqueue(?PEER, P, D, S), S1 end,
                      with_rtt(1), [{low, l1}, {normal, n1}, {low, l2}, {high, h1}]),
    ?assertEqual(4, ?C:queue_len(?PEER, St0)),
    {{dropped, queue_full}, [#{reason := queue_full, priority := low}], St1} =
        ?C:enqueue(?PEER, low, l3, St0),
    ?assertEqual(4, ?C:queue_len(?PEER, St1)),
    {queued, [#{reason := evicted, priority := low}], St2} = ?C:enqueue(?PEER, normal, n2, St1),
    {queued, [#{reason := evicted, priority := low}], St3} = ?C:enqueue(?PEER, critical, c1, St2),
    {queued, [#{reason := evicted, priority := normal}], St4} = ?C:enqueue(?PEER, critical, c2, St3),
    ?assertEqual(4, ?C:queue_len(?PEER, St4)),
    ?assertEqual([c1, c2, h1, n2], drain(St4)),
    #{dropped := #{evicted := #{low := 2, normal := 1}, queue_full := #{low := 1}},
      queued := #{low := 2, normal := 2, high := 1, critical := 2}} = ?C:counters(St4).

%% Bound 1000 bytes: a message evicts just enough; one larger than the bound is refused.
bound_bytes_test() ->
    B = fun(N) -> binary:copy(<<0>>, N) end,
    Size = fun(N) -> erlang:external_size(B(N)) end,
    {queued, [], St1} = ?C:enqueue(?PEER, low, B(400), with_rtt(1)),
    {queued, [], St2} = ?C:enqueue(?PEER, low, B(400), St1),
    ?assertEqual(2 * Size(400), ?C:queue_bytes(?PEER, St2)),
    {queued, [#{reason := evicted}], St3} = ?C:enqueue(?PEER, high, B(400), St2),
    ?assertEqual(2 * Size(400), ?C:queue_bytes(?PEER, St3)),
    {{dropped, queue_full}, _, St4} = ?C:enqueue(?PEER, critical, B(2000), St3),
    ?assertEqual(2 * Size(400), ?C:queue_bytes(?PEER, St4)),
    %% the high one cannot be evicted by another high: refused
    {{dropped, queue_full}, [#{reason := queue_full}], _} = ?C:enqueue(?PEER, high, B(700), St3).

%% An emptied queue is forgotten (no per-destination state left behind).
empty_forgotten_test() ->
    {queued, [], St} = ?C:submit(?PEER, critical, x, new()),
    ?assertEqual([?PEER], ?C:destinations(St)),
    {_, St1} = drain_st(?C:set_link(?PEER, healthy, 1000, St)),
    ?assertEqual([], ?C:destinations(St1)),
    ?assertEqual(0, ?C:queue_len(?PEER, St1)).

%% While something is queued for a destination, a new message of any class waits its
%% turn instead of overtaking its own class.
no_overtaking_test() ->
    {queued, [], St1} = ?C:enqueue(?PEER, normal, n1, with_rtt(1)),
    ?assertMatch({queued, _, _}, ?C:submit(?PEER, normal, n2, St1)),
    ?assertMatch({send_now, _, _}, ?C:submit('other@127.0.0.1', normal, n2,
                                             ?C:set_link('other@127.0.0.1', healthy, 1, St1))).

config_test_() ->
    C = fun plexus_comms:config/1,
    [?_assertMatch({ok, #{name := plexus_comms, excellent_ms := 10, good_ms := 50,
                          degraded_ms := 200, queue_limit := 1000, rtt_stat := p50}}, C(#{})),
     ?_assertMatch({ok, #{name := a, queue_limit := 5}}, C([{name, a}, {queue_limit, 5}])),
     ?_assertMatch({ok, #{}}, C([])),
     ?_assertEqual({error, {invalid_configuration, {queue_limit, 0}}}, C(#{queue_limit => 0})),
     ?_assertEqual({error, {invalid_configuration, {unknown_option, bogus}}}, C(#{bogus => 1})),
     ?_assertEqual({error, {invalid_configuration, {rtt_stat, max}}}, C(#{rtt_stat => max})),
     ?_assertMatch({error, {invalid_configuration, {thresholds_not_increasing, _}}},
                   C(#{good_ms => 5})),
     ?_assertMatch({error, {invalid_configuration, {bad_options, _}}}, C(42))].

api_badarg_test_() ->
    [?_assertError(badarg, plexus_comms:send_msg(plexus_comms, 'a@b', x, urgent)),
     ?_assertError(badarg, plexus_comms:send_msg(plexus_comms, "a@b", x, low)),
     ?_assertError(badarg, plexus_comms:get_link_quality(plexus_comms, "a@b")),
     ?_assertMatch({error, {invalid_configuration, _}}, plexus_comms:start_link(#{name => 1})),
     ?_assertError({bad_options, _}, plexus_comms:child_spec(42)),
     ?_assertMatch(#{id := c1, start := {plexus_comms, start_link, [#{name := c1}]}},
                   plexus_comms:child_spec([{name, c1}]))].

%% One node, no monitor: the server starts, grades every other node disconnected,
%% queues critical and drops normal with a reason, and delivers sends to itself.
local_server_test() ->
    {ok, Pid} = plexus_comms:start(#{name => comms_eunit}),
    try
        ?assertEqual(disconnected, plexus_comms:get_link_quality(comms_eunit, 'x@127.0.0.1')),
        ?assertEqual({ok, queued}, plexus_comms:send_msg(comms_eunit, 'x@127.0.0.1', a, critical)),
        ?assertEqual({error, {dropped, disconnected}},
                     plexus_comms:send_msg(comms_eunit, 'x@127.0.0.1', b, normal)),
        ok = plexus_comms:subscribe(comms_eunit),
        ?assertEqual({ok, sent}, plexus_comms:send_msg(comms_eunit, node(), hello, low)),
        Me = node(),
        receive {plexus_comms, Me, low, hello} -> ok after 5000 -> error(not_delivered) end,
        #{sent := #{low := 1}, queued := #{critical := 1}, received := 1, dropped_total := 1,
          dropped := #{disconnected := #{normal := 1}},
          queues := #{'x@127.0.0.1' := #{length := 1}}} = plexus_comms:info(comms_eunit)
    after
        gen_server:stop(Pid)
    end.

%% Every drop is a [plexus, comms, dropped] telemetry event (README, "Telemetry").
drop_event_test() ->
    plexus_telemetry_capture:with_telemetry(
      fun() ->
              {ok, Pid} = plexus_comms:start(#{name => comms_eunit_tel}),
              try
                  {error, {dropped, disconnected}} =
                      plexus_comms:send_msg(comms_eunit_tel, 'x@127.0.0.1', <<"abc">>, low),
                  ?assertEqual({#{count => 1, bytes => erlang:external_size(<<"abc">>)},
                                #{server => comms_eunit_tel, node => 'x@127.0.0.1',
                                  priority => low, reason => disconnected}},
                               plexus_telemetry_capture:wait(telemetry, [plexus, comms, dropped]))
              after
                  gen_server:stop(Pid)
              end
      end).
