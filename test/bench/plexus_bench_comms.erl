%% @doc `send_msg' throughput benchmark for `make bench' (issue 10): one peer BEAM node
%% on 127.0.0.1 (an OS process) runs a comms server with a counting subscriber; this
%% node sends N messages and the figure is messages per second until the peer has
%% counted all of them (end to end), beside the floor: the same messages sent with a
%% bare `erlang:send/3' (nosuspend, noconnect) to the peer's server, which is all
%% plexus_comms adds its decisions to. A caller whose message is refused at the queue
%% bound (`queue_full', the back-pressure signal) waits 1 ms and sends it again.
%%
%% Figures only; nothing here asserts on time. Parameter: COMMS_BENCH_N (100000).
-module(plexus_bench_comms).

-export([main/0, receiver/0, count/0]).

-define(NAME, plexus_bench_comms_srv).
-define(COUNTER, plexus_bench_comms_counter).

-spec main() -> no_return().
main() ->
    Code = try run(), 0
           catch C:R:St -> io:format("comms bench failed: ~p:~p~n~p~n", [C, R, St]), 1
           end,
    erlang:halt(Code).

run() ->
    N = case os:getenv("COMMS_BENCH_N") of
            false -> 100000;
            S -> list_to_integer(S)
        end,
    _ = plexus_test_nodes:ensure_distributed("plexus_bench_comms"),
    {Cookie, _} = plexus_test_nodes:private_cookie(),
    Peer = plexus_test_nodes:start_node("comms_bench_" ++ os:getpid(), Cookie),
    {Node, _, _} = Peer,
    try
        ok = rpc:call(Node, ?MODULE, receiver, []),
        {ok, Mon} = plexus_monitor:start_link(#{}),
        unlink(Mon),
        {ok, _} = plexus_comms:start(#{name => ?NAME}),
        ok = plexus_test_nodes:wait_until(
               fun() -> lists:member(plexus_comms:get_link_quality(?NAME, Node), [excellent, good])
               end, 30000),
        io:format("~n== plexus_comms send_msg throughput: 1 peer on 127.0.0.1, ~b messages, "
                  "~b cores~n", [N, erlang:system_info(logical_processors_available)]),
        io:format("~-44s ~12s ~12s ~8s~n", ["case", "msg/s", "MB/s", "floor x"]),
        Small = {position, 12, 34, 56},
        Kb = binary:copy(<<1>>, 1024),
        lists:foreach(
          fun({Label, Data, Callers}) ->
                  Floor = rate(Node, N, Callers, fun() -> raw(Node, Data) end),
                  Comms = rate(Node, N, Callers,
                               fun() -> comms(Node, Data) end),
                  Bytes = erlang:external_size(Data),
                  line("bare erlang:send, " ++ Label, Floor, Bytes, Floor),
                  line("send_msg normal, " ++ Label, Comms, Bytes, Floor)
          end,
          [{"small term, 1 caller", Small, 1}, {"small term, 4 callers", Small, 4},
           {"1 KiB binary, 1 caller", Kb, 1}]),
        Info = plexus_comms:info(?NAME),
        io:format("during the runs: sent ~w, queued (busy connection) ~w, dropped ~b~n",
                  [maps:get(sent, Info), maps:get(queued, Info), maps:get(dropped_total, Info)])
    after
        _ = catch plexus_comms:stop(?NAME),
        _ = catch plexus_monitor:stop(),
        plexus_test_nodes:stop_node(Peer)
    end.

raw(Node, Data) ->
    case erlang:send({?NAME, Node}, {plexus_comms, node(), normal, Data}, [nosuspend, noconnect]) of
        ok -> ok;
        _ -> timer:sleep(1), raw(Node, Data)
    end.

%% queue_full is the back-pressure signal: wait for the queue to drain a little.
comms(Node, Data) ->
    case plexus_comms:send_msg(?NAME, Node, Data, normal) of
        {ok, _} -> ok;
        {error, {dropped, queue_full}} -> timer:sleep(1), comms(Node, Data)
    end.

line(Label, Rate, Bytes, Floor) ->
    io:format("~-44s ~12b ~12.1f ~8.2f~n", [Label, round(Rate), Rate * Bytes / 1.0e6,
                                            Rate / Floor]).

%% Messages per second from the first send until the peer counted all N.
rate(Node, N, Callers, Send) ->
    Start = rpc:call(Node, ?MODULE, count, []),
    T0 = erlang:monotonic_time(microsecond),
    Per = N div Callers,
    Self = self(),
    Pids = [spawn(fun() -> [Send() || _ <- lists:seq(1, Per)], Self ! {done, self()} end)
            || _ <- lists:seq(1, Callers)],
    [receive {done, P} -> ok after 120000 -> error(caller_stuck) end || P <- Pids],
    ok = plexus_test_nodes:wait_until(
           fun() -> rpc:call(Node, ?MODULE, count, []) >= Start + Per * Callers end, 120000),
    Us = max(1, erlang:monotonic_time(microsecond) - T0),
    Per * Callers * 1.0e6 / Us.

%% On the peer: its comms server and a subscriber that counts.
receiver() ->
    {ok, _} = plexus_comms:start(#{name => ?NAME}),
    Self = self(),
    Pid = spawn(fun() ->
                        ok = plexus_comms:subscribe(?NAME),
                        Self ! {subscribed, self()},
                        counter(0)
                end),
    receive {subscribed, Pid} -> ok after 5000 -> error(no_counter) end,
    true = register(?COUNTER, Pid),
    ok.

count() ->
    ?COUNTER ! {get, self()},
    receive {count, C} -> C after 5000 -> error(counter_timeout) end.

counter(C) ->
    receive
        {plexus_comms, _, _, _} -> counter(C + 1);
        {get, From} -> From ! {count, C}, counter(C)
    end.
