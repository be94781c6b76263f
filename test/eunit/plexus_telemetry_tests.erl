%% @doc EUnit tests of the telemetry events (README, "Telemetry"): each event fires,
%% with its measurements and metadata, on both paths of `plexus_telemetry' (a
%% stand-in `telemetry' module, and logger debug reports; see
%% plexus_telemetry_capture). The C node's events need the daemon: plexus_cnode_SUITE.
-module(plexus_telemetry_tests).

-include_lib("eunit/include/eunit.hrl").

-import(plexus_telemetry_capture, [each_path/1, wait/2, wait/3, none/2]).

-define(C, plexus_telemetry_capture).

%% ------------------------------------------------------------------ the shim

%% The stand-in is there only inside with_telemetry/1: other tests see none.
telemetry_is_loaded_only_inside_test() ->
    ?assertNot(plexus_telemetry:telemetry_loaded()),
    ?C:with_telemetry(fun() -> ?assert(plexus_telemetry:telemetry_loaded()) end),
    ?assertNot(plexus_telemetry:telemetry_loaded()),
    ?assertNot(erlang:module_loaded(telemetry)).

%% With telemetry loaded, events go there and not to logger (one path per event).
execute_takes_one_path_test() ->
    ?C:with_logger(
      fun() ->
              ?C:with_telemetry(
                fun() ->
                        ok = plexus_telemetry:execute([plexus, test], #{n => 1}, #{m => 2}),
                        ?assertEqual({#{n => 1}, #{m => 2}}, wait(telemetry, [plexus, test])),
                        none(logger, [plexus, test])
                end),
              ok = plexus_telemetry:execute([plexus, test], #{n => 3}, #{m => 4}),
              ?assertEqual({#{n => 3}, #{m => 4}}, wait(logger, [plexus, test])),
              none(telemetry, [plexus, test])
      end).

%% Nobody listens: enabled/0 says so (unless this VM logs debug everywhere).
enabled_test() ->
    case logger:allow(debug, plexus_telemetry) of
        true -> ok;
        false -> ?assertNot(plexus_telemetry:enabled())
    end,
    ?C:with_telemetry(fun() -> ?assert(plexus_telemetry:enabled()) end),
    ?C:with_logger(fun() -> ?assert(plexus_telemetry:enabled()) end).

%% A telemetry whose execute/3 raises does not take the caller down.
crashing_telemetry_is_contained_test() ->
    ?C:with_telemetry(
      fun() ->
              ?assertError(crash_requested, telemetry:execute([plexus, test], #{}, #{crash => true})),
              ?assertEqual(ok, plexus_telemetry:execute([plexus, test], #{}, #{crash => true}))
      end).

%% ------------------------------------------------------------------ CRDT NIF calls

%% A set of at least Bytes bytes.
set_of_bytes(Bytes) -> set_of_bytes(Bytes, plexus_orset_v1:new(), 0).
set_of_bytes(Bytes, S, N) when byte_size(S) >= Bytes -> {S, N};
set_of_bytes(Bytes, S, N) ->
    set_of_bytes(Bytes, plexus_orset_v1:add_all(S, lists:seq(N + 1, N + 500), a), N + 500).

crdt_calls_test_() ->
    {timeout, 120, fun crdt_calls/0}.

crdt_calls() ->
    Threshold = plexus_telemetry:crdt_bytes(),
    {Big, N} = set_of_bytes(Threshold),
    Small = plexus_orset_v1:add_all(plexus_orset_v1:new(), [1, 2, 3], a),
    Reg = plexus_lww:to_binary(plexus_lww:new(binary:copy(<<"v">>, Threshold), a)),
    each_path(
      fun(Via) ->
              %% small calls send nothing
              _ = plexus_orset_v1:add(Small, x),
              _ = plexus_orset_v1:merge(Small, Small),
              _ = plexus_orset_v1:to_list(Small),
              none(Via, [plexus, crdt, call]),
              %% large ones send what they did
              _ = plexus_orset_v1:add(Big, x),
              {#{duration_us := D, bytes := B, elements := 1}, #{crdt := orset, function := add}}
                  = wait(Via, [plexus, crdt, call]),
              ?assert(is_integer(D) andalso D >= 0),
              ?assert(B >= Threshold andalso B >= byte_size(Big)),
              _ = plexus_orset_v1:add_all(Small, lists:seq(1, Threshold div 16)),
              ?assertMatch({#{elements := E}, #{function := add_all}} when E =:= Threshold div 16,
                           wait(Via, [plexus, crdt, call])),
              _ = plexus_orset_v1:merge(Big, Small),
              ?assertMatch({#{elements := 2}, #{crdt := orset, function := merge}},
                           wait(Via, [plexus, crdt, call])),
              _ = plexus_orset_v1:to_list(Big),
              ?assertMatch({#{elements := N}, #{function := to_list}},
                           wait(Via, [plexus, crdt, call])),
              {ok, _} = plexus_orset_v1:from_binary(Big),
              ?assertMatch({_, #{function := from_binary}}, wait(Via, [plexus, crdt, call])),
              _ = plexus_lww:merge(Reg, Reg),
              ?assertMatch({#{elements := 2}, #{crdt := lww, function := merge}},
                           wait(Via, [plexus, crdt, call])),
              _ = plexus_lww:value(Reg),
              ?assertMatch({_, #{crdt := lww, function := value}},
                           wait(Via, [plexus, crdt, call]))
      end).

%% `dirty' says where the call ran: checked against the call trace of
%% plexus_nif_probe (no timing), with the threshold forced each way.
crdt_dirty_flag_test_() ->
    {timeout, 120, fun crdt_dirty_flag/0}.

crdt_dirty_flag() ->
    {Big, _} = set_of_bytes(plexus_telemetry:crdt_bytes()),
    Merge = [{orset_merge, 1}],
    ?C:with_telemetry(
      fun() ->
              lists:foreach(
                fun({Threshold, Where, Dirty}) ->
                        Old = plexus_nif:set_dirty_threshold(Threshold),
                        try
                            {_, Calls} = plexus_nif_probe:calls(
                                           fun() -> plexus_orset_v1:merge(Big, Big) end, Merge),
                            ?assertEqual([{orset_merge, Where}],
                                         [{F, W} || C <- Calls, {F, W} <- [{element(1, C), element(2, C)}]]),
                            ?assertMatch({_, #{dirty := Dirty}}, wait(telemetry, [plexus, crdt, call]))
                        after
                            plexus_nif:set_dirty_threshold(Old)
                        end
                end, [{0, rescheduled, true}, {1 bsl 62, inline, false}])
      end).

dirty_threshold_test() ->
    Old = plexus_nif:set_dirty_threshold(12345),
    try ?assertEqual(12345, plexus_nif:dirty_threshold())
    after plexus_nif:set_dirty_threshold(Old)
    end,
    ?assertEqual(Old, plexus_nif:dirty_threshold()).

%% ------------------------------------------------------------------ election

leader_test_() ->
    {timeout, 120, fun leader/0}.

leader() ->
    Dir = filename:join("/tmp", "plexus_telemetry_tests." ++ os:getpid()),
    try
        each_path(
          fun(Via) ->
                  {ok, Pid} = plexus_leader:start(tel_leader, plexus_leader_probe, #{},
                                                  #{data_dir => Dir, cluster_id => tel}),
                  {#{term := T, previous_term := P}, #{name := tel_leader, cluster_id := tel}}
                      = wait(Via, [plexus, leader, term_changed]),
                  ?assertEqual(T, P + 1),
                  {#{duration_ms := D}, #{name := tel_leader, node := Node, term := T}}
                      = wait(Via, [plexus, leader, elected]),
                  ?assertEqual(node(), Node),
                  ?assert(is_integer(D) andalso D >= 0),
                  ?assertEqual(Pid, plexus_leader:leader(tel_leader)),
                  ok = plexus_leader:stop(tel_leader),
                  ?assertMatch({#{duration_ms := L}, #{reason := stopped, term := T}}
                                 when is_integer(L) andalso L >= 0,
                               wait(Via, [plexus, leader, stepped_down]))
          end)
    after
        file:del_dir_r(Dir)
    end.

%% The clocks of the election events, with the clock given (no waiting): the election
%% lasts from the first campaign role to the leadership; a leader that becomes a
%% follower steps down; a follower that becomes a follower again does not.
leader_events_test() ->
    Meta = #{name => n, node => node(), cluster_id => c, term => 3},
    E = plexus_leader_events,
    ?C:with_telemetry(
      fun() ->
              Now = erlang:monotonic_time(millisecond),
              C1 = E:observe(pre_candidate, Now - 500, E:new()),
              C2 = E:observe(candidate, Now - 100, C1),      % still the same campaign
              C3 = E:callback(handle_become_leader, [], Meta, C2),
              {#{duration_ms := D}, Meta} = wait(telemetry, [plexus, leader, elected]),
              ?assert(D >= 500),
              C4 = E:callback(handle_become_follower, [undefined], Meta, C3),
              ?assertMatch({#{duration_ms := _}, #{reason := became_follower, leader := undefined}},
                           wait(telemetry, [plexus, leader, stepped_down])),
              _ = E:callback(handle_become_follower, [self()], Meta, C4),
              ok = E:stopped(Meta, C4),
              none(telemetry, [plexus, leader, stepped_down]),
              %% a lost campaign does not count towards the next one
              C5 = E:observe(follower, Now, E:observe(candidate, Now - 1000, E:new())),
              _ = E:callback(handle_become_leader, [], Meta, E:observe(candidate, Now, C5)),
              {#{duration_ms := D2}, _} = wait(telemetry, [plexus, leader, elected]),
              ?assert(D2 < 1000)
      end).

%% ------------------------------------------------------------------ monitor

%% Fed as from the C node (a stand-in registered as plexus_cnode answers the two calls
%% the monitor makes), and from the BEAM's own node events.
monitor_test_() ->
    {timeout, 120, fun monitor/0}.

monitor() ->
    Fake = spawn(fun fake_cnode/0),
    true = register(plexus_cnode, Fake),
    try
        each_path(
          fun(Via) ->
                  {ok, Mon} = plexus_monitor:start_link(#{source => cnode}),
                  N = <<"tel_x@h">>,
                  Mon ! {plexus_cnode, {node_up, N, #{ts => 1}}},
                  ?assertMatch({_, #{node := N, source := cnode}},
                               wait(Via, [plexus, monitor, node_up])),
                  Mon ! {plexus_cnode, {answer, N, #{rtt_us => 123}}},
                  ?assertMatch({#{rtt_us := 123}, #{node := N}}, wait(Via, [plexus, monitor, rtt])),
                  Mon ! {plexus_cnode, {node_down, N, #{reason => timeout}}},
                  ?assertMatch({#{samples := 1, rtt_last_us := 123}, #{node := N, reason := timeout}},
                               wait(Via, [plexus, monitor, node_down])),
                  ok = gen_server:stop(Mon)
          end),
        each_path(
          fun(Via) ->
                  {ok, Mon} = plexus_monitor:start_link(#{}),
                  Mon ! {nodeup, 'tel_y@h', []},
                  ?assertMatch({_, #{node := 'tel_y@h', source := beam}},
                               wait(Via, [plexus, monitor, node_up])),
                  Mon ! {nodedown, 'tel_y@h', []},
                  ?assertMatch({_, #{node := 'tel_y@h', reason := connection_closed}},
                               wait(Via, [plexus, monitor, node_down])),
                  ok = gen_server:stop(Mon)
          end)
    after
        exit(Fake, kill)
    end.

fake_cnode() ->
    receive
        {'$gen_call', From, {subscribe, _, _}} -> gen:reply(From, ok);
        {'$gen_call', From, cnode_and_timeout} -> gen:reply(From, {node(), 5000});
        {'$gen_call', From, snapshot} -> gen:reply(From, {ok, []})
    end,
    fake_cnode().

%% ------------------------------------------------------------------ registry, gossip, discovery

registry_test_() ->
    {timeout, 120, fun registry/0}.

registry() ->
    {ok, Reg} = plexus_registry:start_link(#{name => undefined, port => 0}),
    Port = plexus_registry:port(Reg),
    {ok, Sock} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}, {active, false}]),
    try
        each_path(
          fun(Via) ->
                  ok = gen_udp:send(Sock, {127, 0, 0, 1}, Port, <<"not a registry datagram">>),
                  ?assertMatch({#{count := 1, bytes := 23, reply_bytes := 0},
                                #{outcome := dropped, reason := R, server := Reg}} when R =/= undefined,
                               wait(Via, [plexus, registry, datagram])),
                  Announce = plexus_nif:registry_encode_announce(
                               1, <<"tel_peer@h">>, [<<"127.0.0.1:1">>], #{}, 0,
                               erlang:system_time(millisecond), <<>>),
                  ok = gen_udp:send(Sock, {127, 0, 0, 1}, Port, Announce),
                  ?assertMatch({#{reply_bytes := RB}, #{outcome := announced}} when RB > 0,
                               wait(Via, [plexus, registry, datagram]))
          end)
    after
        gen_udp:close(Sock),
        plexus_registry:stop(Reg)
    end.

gossip_test_() ->
    {timeout, 120, fun gossip/0}.

gossip() ->
    Secret = <<"telemetry test secret, 32 bytes.">>,
    {ok, _} = plexus_discovery:start_link(
                #{name => tel_gossip, adapter => gossip, sync_interval_ms => 60000,
                  custom => #{secret => Secret, mode => unicast, port => 0,
                              bind_ip => {127, 0, 0, 1}, broadcast_interval_ms => 100}}),
    #{adapter_info := #{port := Port}} = plexus_discovery:health_info(tel_gossip),
    {ok, Sock} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}, {active, false}]),
    Codec = plexus_nif:beacon_new(Secret, <<"plexus">>, 0, false, 16, 0),
    try
        each_path(
          fun(Via) ->
                  ?assertMatch({#{count := 1, bytes := B, send_errors := 0}, #{port := Port}}
                                 when B > 0,
                               wait(Via, [plexus, gossip, beacon_sent])),
                  ok = gen_udp:send(Sock, {127, 0, 0, 1}, Port, <<"forged">>),
                  ?assertMatch({#{count := 1, bytes := 6}, #{outcome := dropped, reason := R}}
                                 when R =/= undefined,
                               wait(Via, [plexus, gossip, beacon])),
                  Beacon = plexus_nif:beacon_seal(Codec, <<"tel_other@h">>,
                                                  erlang:unique_integer([positive, monotonic]), 1, #{}),
                  ok = gen_udp:send(Sock, {127, 0, 0, 1}, Port, Beacon),
                  ?assertMatch({_, #{outcome := accepted}}, wait(Via, [plexus, gossip, beacon]))
          end)
    after
        gen_udp:close(Sock),
        plexus_discovery:stop(tel_gossip)
    end.

discovery_test_() ->
    {timeout, 120, fun discovery/0}.

discovery() ->
    {ok, _} = plexus_discovery:start_link(#{name => tel_disco, adapter => beam,
                                            telemetry_prefix => [tel, disco]}),
    try
        each_path(
          fun(Via) ->
                  ok = plexus_discovery:sync_now(tel_disco),
                  ?assertMatch({#{duration_ms := _, peers := 0}, #{result := ok}},
                               wait(Via, [tel, disco, sync]))
          end)
    after
        plexus_discovery:stop(tel_disco)
    end.
