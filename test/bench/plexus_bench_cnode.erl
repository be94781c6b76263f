%% @doc `make bench', C node part. Side by side in one run, on loopback:
%%   1. kill -9 of a BEAM peer -> the C node's node_down (as an Erlang message to this
%%      process) vs this VM's own nodedown (net_kernel:monitor_nodes), p50/p99 over
%%      KILLS kills;
%%   2. SIGSTOP -> suspect with the default thresholds (5000 ms, ping 1000 ms);
%%   3. CPU and RSS of the C node watching 10 real BEAM nodes, then 100 and 500
%%      lightweight ei nodes (build/test/plexus_ei_peers).
%% Figures and ratios only: nothing here fails on time.
-module(plexus_bench_cnode).

-export([main/0]).

%% 100 kills: with 50, "p99" is the single worst sample and one scheduling hiccup on
%% a 2-core machine decides the ratio.
-define(KILLS, 100).
-define(BATCH, 10).

main() ->
    Cookie = plexus_test_nodes:ensure_distributed("plexus_bench_" ++ os:getpid()),
    io:format("~n== C node benchmark (~b cores)~n", [erlang:system_info(logical_processors)]),
    File = plexus_test_nodes:cookie_file("/tmp", {atom_to_list(Cookie), 8#400}),
    try
        kill_latency(Cookie, File),
        sigstop(Cookie, File),
        footprint(Cookie, File)
    after
        file:delete(File)
    end,
    halt(0).

start_cnode(Name, File, Seeds, Extra) ->
    plexus_test_nodes:start_cnode(
      ["--name", Name ++ "@127.0.0.1", "--cookie-file", File, "--json"]
      ++ lists:append([["--seed", atom_to_list(S)] || S <- Seeds]) ++ Extra, []).

subscribe(CNode) ->
    {plexus_cnode, CNode} ! {subscribe, self()},
    receive {plexus_cnode, {subscribed, _}} -> ok after 5000 -> error(no_subscribe) end.

%% ------------------------------------------------------------------ 1. kill -9

kill_latency(Cookie, File) ->
    ok = net_kernel:monitor_nodes(true),
    Seed = plexus_test_nodes:start_node("bk_seed", Cookie),
    C = start_cnode("bk_watch", File, [element(1, Seed)],
                    ["--discovery-interval-ms", "200", "--max-backoff-ms", "1000"]),
    CNode = 'bk_watch@127.0.0.1',
    ok = plexus_test_nodes:wait_until(fun() -> net_adm:ping(CNode) =:= pong end, 10000),
    subscribe(CNode),
    Samples = lists:append([kill_batch(Cookie, B) || B <- lists:seq(1, ?KILLS div ?BATCH)]),
    plexus_test_nodes:stop_node(Seed),
    _ = plexus_test_nodes:stop_cnode(C),
    {Cs, Bs} = lists:unzip(Samples),
    {C50, C99} = pct(Cs),
    {B50, B99} = pct(Bs),
    io:format("kill -9 -> event, ~b kills (us, from just before `kill`):~n", [length(Samples)]),
    io:format("  C node node_down        p50 ~8b  p99 ~8b~n", [C50, C99]),
    io:format("  BEAM nodedown           p50 ~8b  p99 ~8b~n", [B50, B99]),
    io:format("  ratio C node / BEAM     p50 ~8.2f  p99 ~8.2f~n", [C50 / max(1, B50), C99 / max(1, B99)]),
    flush().

kill_batch(Cookie, B) ->
    Nodes = [plexus_test_nodes:start_node("bk_" ++ integer_to_list(B) ++ "_" ++ integer_to_list(I), Cookie)
             || I <- lists:seq(1, ?BATCH)],
    %% wait until the C node has every one of them up
    [receive {plexus_cnode, {node_up, NB, _}} -> ok after 10000 -> error({not_up, N}) end
     || {N, _, _} <- Nodes, NB <- [atom_to_binary(N, utf8)]],
    flush(),
    [kill_one(N) || N <- Nodes].

kill_one({Node, _, OsPid} = N) ->
    NB = atom_to_binary(Node, utf8),
    T0 = erlang:monotonic_time(microsecond),
    plexus_test_nodes:os_kill(OsPid, "KILL"),
    R = wait_both(NB, Node, T0, undefined, undefined),
    plexus_test_nodes:stop_node(N),
    R.

wait_both(_, _, _, C, B) when C =/= undefined, B =/= undefined -> {C, B};
wait_both(NB, Node, T0, C, B) ->
    receive
        {plexus_cnode, {node_down, NB, _}} ->
            wait_both(NB, Node, T0, erlang:monotonic_time(microsecond) - T0, B);
        {nodedown, Node} ->
            wait_both(NB, Node, T0, C, erlang:monotonic_time(microsecond) - T0)
    after 10000 -> error({no_down, Node, C, B})
    end.

pct(L) ->
    S = lists:sort(L),
    N = length(S),
    {lists:nth(max(1, (N * 50 + 99) div 100), S), lists:nth(max(1, (N * 99 + 99) div 100), S)}.

flush() -> receive _ -> flush() after 0 -> ok end.

%% ------------------------------------------------------------------ 2. SIGSTOP

sigstop(Cookie, File) ->
    Nodes = [plexus_test_nodes:start_node("bs_" ++ integer_to_list(I), Cookie) || I <- lists:seq(1, 5)],
    C = start_cnode("bs_watch", File, [element(1, hd(Nodes))], ["--discovery-interval-ms", "200"]),
    [{ok, _, _} = plexus_test_nodes:await_event(C, node_up, N, 15000) || {N, _, _} <- Nodes],
    timer:sleep(1500),
    T0 = erlang:monotonic_time(millisecond),
    [plexus_test_nodes:os_kill(P, "STOP") || {_, _, P} <- Nodes],
    Ts = [begin {ok, T, _} = plexus_test_nodes:await_event(C, suspect, N, 10000, T0), T - T0 end
          || {N, _, _} <- Nodes],
    [plexus_test_nodes:os_kill(P, "CONT") || {_, _, P} <- Nodes],
    _ = plexus_test_nodes:stop_cnode(C),
    [plexus_test_nodes:stop_node(N) || N <- Nodes],
    %% silence counts from the last answer, up to one ping interval before the stop
    io:format("SIGSTOP -> suspect (threshold 5000 ms of silence, ping 1000 ms), ~b nodes: "
              "~b..~b ms after the stop (target: 4000..6000; a BEAM with net_ticktime 60 "
              "needs 45-75 s to notice)~n", [length(Ts), lists:min(Ts), lists:max(Ts)]).

%% ------------------------------------------------------------------ 3. footprint

footprint(Cookie, File) ->
    io:format("C node footprint (default ping 1000 ms, 10 s sample):~n"),
    Beams = [plexus_test_nodes:start_node("bf_" ++ integer_to_list(I), Cookie) || I <- lists:seq(1, 10)],
    measure("10 BEAM nodes", File, [element(1, hd(Beams))], 10),
    [plexus_test_nodes:stop_node(N) || N <- Beams],
    [begin
         Ps = ei_peers(Cookie, N),
         measure(integer_to_list(N) ++ " ei nodes", File, ['bfe_0_0@127.0.0.1'], N),
         [stop_peers(P) || P <- Ps]
     end || N <- [100, 500]],
    ok.

ei_peers(Cookie, N) ->
    Exe = filename:absname("build/test/plexus_ei_peers"), %% cwd: the repository
    Per = 100,
    [begin
         Port = open_port({spawn_executable, Exe},
                          [{args, ["--prefix", "bfe_" ++ integer_to_list(K), "--count",
                                   integer_to_list(min(Per, N - K * Per))]},
                           {env, [{"PLEXUS_COOKIE", atom_to_list(Cookie)}]},
                           exit_status, {line, 256}]),
         receive {Port, {data, {eol, "ready " ++ _}}} -> ok after 30000 -> error(ei_peers) end,
         {os_pid, OsPid} = erlang:port_info(Port, os_pid),
         {Port, OsPid}
     end || K <- lists:seq(0, (N - 1) div Per)].

stop_peers({Port, OsPid}) ->
    plexus_test_nodes:os_kill(OsPid, "TERM"),
    receive {Port, {exit_status, _}} -> ok after 5000 -> plexus_test_nodes:os_kill(OsPid, "KILL") end.

measure(Label, File, Seeds, N) ->
    C = {_, OsPid} = start_cnode("bf_watch", File, Seeds, ["--discovery-interval-ms", "1000"]),
    ok = plexus_test_nodes:wait_until(fun() -> ups(C) >= N end, 60000),
    timer:sleep(2000),
    {Cpu0, W0} = {cpu_ticks(OsPid), erlang:monotonic_time(millisecond)},
    timer:sleep(10000),
    {Cpu1, W1} = {cpu_ticks(OsPid), erlang:monotonic_time(millisecond)},
    Hz = 100,
    Pct = 100 * ((Cpu1 - Cpu0) / Hz) / ((W1 - W0) / 1000),
    Rss = rss_kb(OsPid),
    io:format("  ~-16s connected ~4b   CPU ~5.2f% of one core   RSS ~6.1f MB~n",
              [Label, ups(C), Pct, Rss / 1024]),
    _ = plexus_test_nodes:stop_cnode(C).

ups(C) ->
    {Evs, _, _} = plexus_test_nodes:cnode_events(C),
    Up = lists:usort([N || {_, <<"node_up">>, N, _} <- Evs]),
    Down = lists:usort([N || {_, <<"node_down">>, N, _} <- Evs]),
    length(Up -- Down).

cpu_ticks(OsPid) ->
    {ok, B} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat"),
    [_, Rest] = binary:split(B, <<") ">>),
    F = binary:split(Rest, <<" ">>, [global]),
    binary_to_integer(lists:nth(12, F)) + binary_to_integer(lists:nth(13, F)).

rss_kb(OsPid) ->
    {ok, B} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/status"),
    {match, [K]} = re:run(B, "VmRSS:\\s+([0-9]+) kB", [{capture, all_but_first, binary}]),
    binary_to_integer(K).
