%% @doc priv/plexus_cnode against real BEAM nodes on loopback (issue 4).
%%
%% Group `cluster' (in order, one C node watching them all): five nodes come up; a node
%% killed with kill -9; one that calls erlang:halt(); one frozen with SIGSTOP (suspect,
%% then down) while another is killed (the frozen one must not delay that event), then
%% resumed with SIGCONT; a node that joins late; the Erlang API (subscribe, snapshot,
%% health, stats, malformed terms counted); SIGTERM. Then the start-up failures: a wrong
%% cookie, a cookie file with mode 0644, an unreachable seed, no epmd. Then the Erlang
%% side: plexus_cnode as a port program and plexus_monitor fed by it.
-module(plexus_cnode_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2]).
-export([five_nodes_up/1, kill_9/1, halt/1, sigstop_then_sigcont/1, late_joiner/1,
         erlang_api/1, sigterm/1, wrong_cookie/1, cookie_mode_0644/1, cookie_env/1,
         unreachable_seed/1, no_epmd/1, cookie_never_from_argv/1, port_program/1,
         monitor_fed_by_cnode/1, telemetry_events/1]).

-define(PING, 200).
-define(SUSPECT, 1000).
-define(DOWN, 3000).

suite() -> [{timetrap, {seconds, 120}}].

all() ->
    [{group, cluster}, wrong_cookie, cookie_mode_0644, cookie_env, unreachable_seed, no_epmd,
     cookie_never_from_argv, port_program, monitor_fed_by_cnode, telemetry_events].

groups() ->
    [{cluster, [sequence],
      [five_nodes_up, kill_9, halt, sigstop_then_sigcont, late_joiner, erlang_api, sigterm]}].

init_per_suite(Config) ->
    plexus_test_nodes:cnode_suite_init("plexus_cnode_ct", Config).

end_per_suite(Config) ->
    plexus_test_nodes:cnode_suite_end(Config).

init_per_group(cluster, Config) ->
    Cookie = ?config(cookie, Config),
    Nodes = [plexus_test_nodes:start_node("cn_n" ++ integer_to_list(I), Cookie) || I <- lists:seq(1, 5)],
    [{N1, _, _} | _] = Nodes,
    File = plexus_test_nodes:cookie_file(?config(priv_dir, Config), {atom_to_list(Cookie), 8#400}),
    C = plexus_test_nodes:start_cnode(
          ["--name", "cn_watch@127.0.0.1", "--cookie-file", File, "--json",
           "--seed", atom_to_list(N1), "--exit-on-stdin-eof",
           "--ping-interval-ms", integer_to_list(?PING),
           "--suspect-after-ms", integer_to_list(?SUSPECT),
           "--down-after-ms", integer_to_list(?DOWN),
           "--discovery-interval-ms", "500", "--max-backoff-ms", "1000"], []),
    [{nodes, Nodes}, {cnode, C} | Config].

end_per_group(cluster, Config) ->
    _ = plexus_test_nodes:stop_cnode(?config(cnode, Config)),
    [plexus_test_nodes:stop_node(N) || N <- ?config(nodes, Config)],
    [plexus_test_nodes:stop_node(N) || N <- extra_nodes()],
    ok.

extra_nodes() ->
    case persistent_term:get({?MODULE, extra}, []) of L -> L end.

node_n(Config, I) -> lists:nth(I, ?config(nodes, Config)).

%% ------------------------------------------------------------------ cluster

five_nodes_up(Config) ->
    C = ?config(cnode, Config),
    %% seeded with one node: the other four are learned (rpc nodes(), epmd names)
    [{ok, _, _} = plexus_test_nodes:await_event(C, node_up, N, 15000)
     || {N, _, _} <- ?config(nodes, Config)],
    {_, Lines, undefined} = plexus_test_nodes:cnode_events(C),
    ?assertMatch([_ | _], [L || L <- Lines, binary:match(L, <<"\"event\":\"ready\"">>) =/= nomatch]),
    ok.

kill_9(Config) ->
    C = ?config(cnode, Config),
    {N, _, OsPid} = node_n(Config, 2),
    T0 = erlang:monotonic_time(millisecond),
    plexus_test_nodes:os_kill(OsPid, "KILL"),
    {ok, T1, Line} = plexus_test_nodes:await_event(C, node_down, N, 5000, T0),
    ct:pal("kill -9 -> node_down in ~b ms: ~s", [T1 - T0, Line]),
    %% seen from the closed connection, not from silence: no wall-clock bound needed
    ?assertNotEqual(nomatch, binary:match(Line, <<"\"reason\":\"connection_closed\"">>)).

halt(Config) ->
    C = ?config(cnode, Config),
    {N, _, _} = node_n(Config, 3),
    T0 = erlang:monotonic_time(millisecond),
    rpc:cast(N, erlang, halt, []),
    {ok, T1, Line} = plexus_test_nodes:await_event(C, node_down, N, 5000, T0),
    ct:pal("halt -> node_down in ~b ms: ~s", [T1 - T0, Line]),
    ?assertNotEqual(nomatch, binary:match(Line, <<"\"reason\":\"connection_closed\"">>)).

sigstop_then_sigcont(Config) ->
    C = ?config(cnode, Config),
    {Frozen, _, FPid} = node_n(Config, 4),
    {Other, _, OPid} = node_n(Config, 5),
    T0 = erlang:monotonic_time(millisecond),
    plexus_test_nodes:os_kill(FPid, "STOP"),
    try
        %% Judged on the C node's own clock: silent for at least the threshold when it
        %% said suspect (wall time since SIGSTOP says little on a loaded machine, where
        %% answers may have stalled before it); the await bound is the generous "soon".
        {ok, Ts, SLine} = plexus_test_nodes:await_event(C, suspect, Frozen, ?SUSPECT + 3000, T0),
        ct:pal("SIGSTOP -> suspect in ~b ms (threshold ~b, ping ~b): ~s",
               [Ts - T0, ?SUSPECT, ?PING, SLine]),
        ?assert(silent_ms(SLine) >= ?SUSPECT),
        %% while it is frozen, a kill elsewhere is still reported at once
        Tk = erlang:monotonic_time(millisecond),
        plexus_test_nodes:os_kill(OPid, "KILL"),
        {ok, Tk1, KLine} = plexus_test_nodes:await_event(C, node_down, Other, 3000, Tk),
        ct:pal("kill -9 beside a frozen node -> node_down in ~b ms: ~s", [Tk1 - Tk, KLine]),
        ?assertNotEqual(nomatch, binary:match(KLine, <<"\"reason\":\"connection_closed\"">>)),
        {ok, Td, Line} = plexus_test_nodes:await_event(C, node_down, Frozen, ?DOWN + 3000, T0),
        ct:pal("SIGSTOP -> node_down in ~b ms: ~s", [Td - T0, Line]),
        ?assertNotEqual(nomatch, binary:match(Line, <<"\"reason\":\"timeout\"">>))
    after
        plexus_test_nodes:os_kill(FPid, "CONT")
    end,
    %% resumed: its answers bring it back (any node_up for it after the freeze)
    {ok, Tu, _} = plexus_test_nodes:await_event(C, node_up, Frozen, 5000, T0),
    ct:pal("SIGSTOP -> node_up again after SIGCONT at ~b ms", [Tu - T0]).

%% The silent_ms field of a JSON event line.
silent_ms(Line) ->
    {match, [Ms]} = re:run(Line, <<"\"silent_ms\":([0-9]+)">>, [{capture, all_but_first, binary}]),
    binary_to_integer(Ms).

late_joiner(Config) ->
    C = ?config(cnode, Config),
    T0 = erlang:monotonic_time(millisecond),
    Late = plexus_test_nodes:start_node("cn_late", ?config(cookie, Config)),
    persistent_term:put({?MODULE, extra}, [Late]),
    {N, _, _} = Late,
    {ok, T1, _} = plexus_test_nodes:await_event(C, node_up, N, 10000, T0),
    ct:pal("late joiner seen ~b ms after its start began", [T1 - T0]).

erlang_api(Config) ->
    {Pid, _} = ?config(cnode, Config),
    _ = Pid,
    CN = 'cn_watch@127.0.0.1',
    {plexus_cnode, CN} ! {subscribe, self()},
    receive {plexus_cnode, {subscribed, <<"cn_watch@127.0.0.1">>}} -> ok
    after 5000 -> error(no_subscribed)
    end,
    {ok, Snap} = gen_server:call({plexus_cnode, CN}, snapshot),
    {N1, _, _} = node_n(Config, 1),
    N1b = atom_to_binary(N1, utf8),
    [H1] = [H || #{node := N} = H <- Snap, N =:= N1b],
    ?assertMatch(#{status := healthy, connected := true}, H1),
    ?assert(maps:get(samples, H1) > 0),
    ?assert(maps:get(rtt_p99_us, H1) >= maps:get(rtt_p50_us, H1)),
    %% the node killed earlier is gone from every source: forgotten
    {N2, _, _} = node_n(Config, 2),
    ?assertEqual({error, not_found}, gen_server:call({plexus_cnode, CN}, {health, atom_to_binary(N2, utf8)})),
    ?assertMatch({ok, #{status := healthy}}, gen_server:call({plexus_cnode, CN}, {health, N1})),
    ?assertEqual({error, not_found}, gen_server:call({plexus_cnode, CN}, {health, <<"nobody@127.0.0.1">>})),
    ?assertEqual({error, unknown_call}, gen_server:call({plexus_cnode, CN}, what)),
    %% terms it cannot take are dropped and counted, and it keeps serving
    {ok, #{malformed := M0}} = gen_server:call({plexus_cnode, CN}, stats),
    {plexus_cnode, CN} ! {subscribe, fun() -> ok end},
    {plexus_cnode, CN} ! {'$gen_call', fun() -> ok end, snapshot},
    {ok, #{malformed := M1, subscribers := S}} = gen_server:call({plexus_cnode, CN}, stats),
    ?assertEqual(M0 + 2, M1),
    ?assert(S >= 1),
    %% events arrive as messages: halt a node and see it
    {N5, _, _} = node_n(Config, 1),
    _ = N5,
    Late = hd(extra_nodes()),
    {NL, _, _} = Late,
    rpc:cast(NL, erlang, halt, []),
    NLb = atom_to_binary(NL, utf8),
    receive {plexus_cnode, {node_down, NLb, #{ts := Ts, reason := connection_closed}}} ->
            ?assert(is_integer(Ts))
    after 5000 -> error(no_node_down_message)
    end,
    {plexus_cnode, CN} ! {unsubscribe, self()},
    receive {plexus_cnode, {unsubscribed, _}} -> ok after 5000 -> error(no_unsubscribed) end.

sigterm(Config) ->
    C = ?config(cnode, Config),
    ?assertEqual(0, plexus_test_nodes:stop_cnode(C)),
    {_, Lines, 0} = plexus_test_nodes:cnode_events(C),
    ?assertMatch([_], [L || L <- Lines, binary:match(L, <<"\"event\":\"stopped\"">>) =/= nomatch]).

%% ------------------------------------------------------------------ start-up errors

fail_start(Args, Env) ->
    C = plexus_test_nodes:start_cnode(Args, Env),
    {Status, Lines} = plexus_test_nodes:cnode_exit(C, 15000),
    case Status of
        timeout -> _ = plexus_test_nodes:stop_cnode(C);
        _ -> ok
    end,
    {Status, iolist_to_binary(lists:join("\n", Lines))}.

with_seed_node(Config, Fun) ->
    N = plexus_test_nodes:start_node("cn_seed", ?config(cookie, Config)),
    try Fun(element(1, N)) after plexus_test_nodes:stop_node(N) end.

wrong_cookie(Config) ->
    with_seed_node(Config, fun(Seed) ->
        {Status, Out} = fail_start(["--name", "cn_wrong@127.0.0.1", "--seed", atom_to_list(Seed)],
                                   [{"PLEXUS_COOKIE", "not-the-cookie"}]),
        ct:pal("~s", [Out]),
        ?assertEqual(6, Status),
        ?assertNotEqual(nomatch, binary:match(Out, <<"wrong cookie">>))
    end).

cookie_mode_0644(Config) ->
    File = plexus_test_nodes:cookie_file(?config(priv_dir, Config),
                                          {atom_to_list(?config(cookie, Config)), 8#644}),
    {Status, Out} = fail_start(["--name", "cn_0644@127.0.0.1", "--cookie-file", File], []),
    ct:pal("~s", [Out]),
    ?assertEqual(3, Status),
    ?assertNotEqual(nomatch, binary:match(Out, <<"0644">>)),
    ?assertNotEqual(nomatch, binary:match(Out, <<"chmod 400">>)).

cookie_env(Config) ->
    %% PLEXUS_COOKIE works, and an empty one is refused
    {Status, Out} = fail_start(["--name", "cn_env@127.0.0.1"], [{"PLEXUS_COOKIE", "   "}]),
    ?assertEqual(3, Status),
    ?assertNotEqual(nomatch, binary:match(Out, <<"empty">>)),
    with_seed_node(Config, fun(Seed) ->
        C = plexus_test_nodes:start_cnode(
              ["--name", "cn_env2@127.0.0.1", "--json", "--seed", atom_to_list(Seed)],
              [{"PLEXUS_COOKIE", atom_to_list(?config(cookie, Config))}]),
        {ok, _, _} = plexus_test_nodes:await_event(C, node_up, Seed, 10000),
        ?assertEqual(0, plexus_test_nodes:stop_cnode(C))
    end).

unreachable_seed(Config) ->
    Env = [{"PLEXUS_COOKIE", atom_to_list(?config(cookie, Config))}],
    {S1, Out1} = fail_start(["--name", "cn_unr@127.0.0.1", "--seed", "nobody@127.0.0.1"], Env),
    ct:pal("~s", [Out1]),
    ?assertEqual(5, S1),
    ?assertNotEqual(nomatch, binary:match(Out1, <<"does not know a node named 'nobody'">>)),
    {S2, Out2} = fail_start(["--name", "cn_unr2@127.0.0.1", "--seed", "nobody@no-such-host.invalid"], Env),
    ct:pal("~s", [Out2]),
    ?assertEqual(5, S2),
    ?assertNotEqual(nomatch, binary:match(Out2, <<"unknown host">>)).

no_epmd(Config) ->
    Env = [{"PLEXUS_COOKIE", atom_to_list(?config(cookie, Config))}, {"ERL_EPMD_PORT", "1"}],
    {Status, Out} = fail_start(["--name", "cn_noepmd@127.0.0.1"], Env),
    ct:pal("~s", [Out]),
    ?assertEqual(4, Status),
    ?assertNotEqual(nomatch, binary:match(Out, <<"epmd -daemon">>)).

cookie_never_from_argv(_Config) ->
    {Status, Out} = fail_start(["--name", "cn_argv@127.0.0.1", "--cookie", "secret"], []),
    ?assertEqual(2, Status),
    ?assertNotEqual(nomatch, binary:match(Out, <<"never taken from the command line">>)).

%% ------------------------------------------------------------------ Erlang side

port_program(Config) ->
    N = plexus_test_nodes:start_node("cn_pp", ?config(cookie, Config)),
    process_flag(trap_exit, true),
    try
        {ok, Pid} = plexus_cnode:start_link(#{ping_interval_ms => ?PING,
                                              discovery_interval_ms => 500}),
        ok = plexus_cnode:subscribe(),
        {Node, _, _} = N,
        NodeB = atom_to_binary(Node, utf8),
        receive {plexus_cnode, {node_up, NodeB, _}} -> ok after 10000 -> error(no_node_up) end,
        {ok, Snap} = plexus_cnode:snapshot(),
        ?assert(lists:any(fun(#{node := X}) -> X =:= NodeB end, Snap)),
        ?assertMatch({ok, #{status := healthy}}, plexus_cnode:health(Node)),
        ?assertMatch({ok, #{connected := C}} when C >= 1, plexus_cnode:stats()),
        OsPid = plexus_cnode:os_pid(),
        ?assert(is_integer(OsPid)),
        ok = plexus_cnode:stop(),
        ?assertEqual(ok, plexus_test_nodes:wait_until(
                           fun() -> os:cmd("kill -0 " ++ integer_to_list(OsPid) ++ " 2>&1") =/= "" end,
                           5000)),
        receive {'EXIT', Pid, _} -> ok after 1000 -> ok end
    after
        plexus_test_nodes:stop_node(N)
    end.

monitor_fed_by_cnode(Config) ->
    N = plexus_test_nodes:start_node("cn_mon", ?config(cookie, Config)),
    process_flag(trap_exit, true),
    try
        {ok, _} = plexus_cnode:start_link(#{ping_interval_ms => ?PING}),
        {ok, _} = plexus_monitor:start_link(#{source => cnode, ping_interval_ms => ?PING,
                                              suspect_after_ms => ?SUSPECT, down_after_ms => ?DOWN}),
        ok = plexus_monitor:subscribe(),
        {Node, _, OsPid} = N,
        NodeB = atom_to_binary(Node, utf8),
        ok = plexus_test_nodes:wait_until(fun() -> lists:member(NodeB, plexus_monitor:list_healthy()) end, 10000),
        ok = plexus_test_nodes:wait_until(
               fun() -> {ok, #{samples := S}} = plexus_monitor:get_health(NodeB), S > 0 end, 5000),
        plexus_test_nodes:os_kill(OsPid, "KILL"),
        receive {plexus_event, {node_down, NodeB}} -> ok after 5000 -> error(no_node_down) end,
        ?assertMatch({ok, #{status := down}}, plexus_monitor:get_health(NodeB)),
        ok = plexus_monitor:stop(),
        ok = plexus_cnode:stop()
    after
        plexus_test_nodes:stop_node(N)
    end.

%% `[plexus, cnode, node_up | node_down]' (README, "Telemetry") from the daemon's
%% events, through a stand-in `telemetry' (plexus_telemetry_capture).
telemetry_events(Config) ->
    N = plexus_test_nodes:start_node("cn_tel", ?config(cookie, Config)),
    process_flag(trap_exit, true),
    try
        plexus_telemetry_capture:with_telemetry(
          fun() ->
                  {ok, _} = plexus_cnode:start_link(#{ping_interval_ms => ?PING,
                                                      suspect_after_ms => ?SUSPECT,
                                                      down_after_ms => ?DOWN}),
                  CNode = plexus_cnode:cnode(),
                  {Node, _, OsPid} = N,
                  NodeB = atom_to_binary(Node, utf8),
                  IsNode = fun(_, #{node := X}) -> X =:= NodeB end,
                  {_, #{cnode := CNode}} =
                      plexus_telemetry_capture:wait(telemetry, [plexus, cnode, node_up], IsNode),
                  plexus_test_nodes:os_kill(OsPid, "KILL"),
                  {M, #{reason := Reason}} =
                      plexus_telemetry_capture:wait(telemetry, [plexus, cnode, node_down], IsNode),
                  ?assert(is_atom(Reason)),
                  ?assert(lists:all(fun erlang:is_integer/1, maps:values(M))),
                  ok = plexus_cnode:stop()
          end)
    after
        plexus_test_nodes:stop_node(N)
    end.
