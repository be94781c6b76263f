%% @doc `make bench': discovery figures.
%%
%% 1. Gossip convergence: N gossip endpoints (N = 5 and 20) started at once, each a
%%    plexus_discovery facade with the gossip adapter, in this VM, on loopback UDP
%%    ports (unicast full mesh: 20 separate BEAM nodes would only add boot time on a
%%    2-core machine; the beacon path, codec and facade are the same). Time from the
%%    first start until every endpoint lists the N-1 others, for a beacon interval of
%%    100 ms and the default 1000 ms. Beacons are sealed and opened by the C core.
%% 2. Registry announce throughput: 100,000 distinct peers announced (a) straight into
%%    the C core table through the NIF (encode + handle + reply), (b) over UDP to a
%%    plexus_registry server, with a window of outstanding requests. Then the memory
%%    of the table at 100,000 entries (the core's own count of entry bytes, and the
%%    VM's memory growth), and the time of sample(64) and current_view at that size.
%% Figures only: nothing fails on time.
-module(plexus_bench_discovery).

-export([main/0]).

-define(SECRET, <<"benchmark secret of 16+ bytes">>).

main() ->
    io:format("~n== Discovery benchmark (~p cores)~n", [erlang:system_info(logical_processors)]),
    try
        [gossip(N, Interval) || Interval <- [100, 1000], N <- [5, 20]],
        registry(100000)
    catch C:R:St ->
            io:format("benchmark failed: ~p:~p~n~p~n", [C, R, St]),
            erlang:halt(1)
    end,
    erlang:halt(0).

%% ------------------------------------------------------------------ gossip

free_port() ->
    {ok, S} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}]),
    {ok, P} = inet:port(S),
    gen_udp:close(S),
    P.

gossip(N, Interval) ->
    Ports = [free_port() || _ <- lists:seq(1, N)],
    Targets = [{{127, 0, 0, 1}, P} || P <- Ports],
    Names = [list_to_atom("bench_g" ++ integer_to_list(I)) || I <- lists:seq(1, N)],
    T0 = erlang:monotonic_time(microsecond),
    [begin
         {ok, Pid} = plexus_discovery:start_link(
                       #{name => Name, adapter => gossip,
                         custom => #{secret => ?SECRET, mode => unicast, port => Port,
                                     bind_ip => {127, 0, 0, 1}, targets => Targets,
                                     broadcast_interval_ms => Interval,
                                     node_name => <<(atom_to_binary(Name, utf8))/binary,
                                                    "@127.0.0.1">>}}),
         unlink(Pid)
     end || {Name, Port} <- lists:zip(Names, Ports)],
    Converged = fun() ->
                        lists:all(fun(Nm) ->
                                          {ok, Ps} = plexus_discovery:snapshot(Nm),
                                          length(Ps) =:= N - 1
                                  end, Names)
                end,
    Deadline = T0 + 30000000,
    ok = wait(Converged, Deadline),
    Ms = (erlang:monotonic_time(microsecond) - T0) / 1000,
    Stats = [maps:get(adapter_info, plexus_discovery:health_info(Nm)) || Nm <- Names],
    Accepted = lists:sum([maps:get(accepted, S) || S <- Stats]),
    Rejected = lists:sum([maps:get(auth_failed, S) + maps:get(malformed, S) || S <- Stats]),
    io:format("gossip convergence  ~2b endpoints, beacon every ~4b ms: ~8.1f ms "
              "(~b beacons accepted, ~b rejected)~n", [N, Interval, Ms, Accepted, Rejected]),
    [ok = plexus_discovery:stop(Nm) || Nm <- Names],
    ok.

wait(F, Deadline) ->
    case F() of
        true -> ok;
        false ->
            case erlang:monotonic_time(microsecond) > Deadline of
                true -> {error, not_converged};
                false -> timer:sleep(2), wait(F, Deadline)
            end
    end.

%% ------------------------------------------------------------------ registry

registry(N) ->
    Peers = [<<"peer", (integer_to_binary(I))/binary, "@10.", (integer_to_binary(I div 65536))/binary,
               ".", (integer_to_binary((I div 256) rem 256))/binary, ".",
               (integer_to_binary(I rem 256))/binary>> || I <- lists:seq(1, N)],
    Meta = #{<<"zone">> => <<"eu-west-1a">>, <<"role">> => <<"worker">>},
    Encode = fun(I, P) ->
                     plexus_nif:registry_encode_announce(I, P, [<<"10.0.0.1:4370">>], Meta, 0,
                                                         0, <<>>)
             end,
    Msgs = [Encode(I, P) || {I, P} <- lists:zip(lists:seq(1, N), Peers)],
    erlang:garbage_collect(),
    Mem0 = erlang:memory(total),
    %% (a) the core table through the NIF
    Table = plexus_nif:registry_new(#{max_entries => 2 * N}), %% headroom, as deployed
    {Us, ok} = timer:tc(fun() ->
                                lists:foreach(fun(M) ->
                                                      {{announced, new, _, _}, _} =
                                                          plexus_nif:registry_handle(Table, M, <<>>, 1)
                                              end, Msgs)
                        end),
    Mem1 = erlang:memory(total),
    #{entries := N, bytes := Bytes} = plexus_nif:registry_stats(Table),
    io:format("registry announce   ~b new peers into the C core table (NIF): ~8w announces/s "
              "(~.2f us each)~n", [N, round(N / (Us / 1.0e6)), Us / N]),
    {UsR, ok} = timer:tc(fun() ->
                                 lists:foreach(fun(M) ->
                                                       {{announced, refreshed, _, _}, _} =
                                                           plexus_nif:registry_handle(Table, M, <<>>, 2)
                                               end, Msgs)
                         end),
    io:format("registry heartbeat  ~b refreshes (NIF): ~8w announces/s~n",
              [N, round(N / (UsR / 1.0e6))]),
    io:format("registry memory     ~b entries: ~.1f MB of entries (~b B each), VM grew "
              "~.1f MB (entries + index + heap)~n",
              [N, Bytes / 1048576, Bytes div N, (Mem1 - Mem0) / 1048576]),
    {UsS, S64} = timer:tc(fun() -> plexus_nif:registry_sample(Table, 64, 3) end),
    {UsV, View} = timer:tc(fun() -> plexus_nif:registry_view(Table, 3) end),
    64 = length(S64),
    N = length(View),
    io:format("registry reads      at ~b entries: sample(64) ~.3f ms, current_view ~.1f ms~n",
              [N, UsS / 1000, UsV / 1000]),
    {UsE, N} = timer:tc(fun() -> plexus_nif:registry_evict(Table, 1 + 300001) end),
    io:format("registry eviction   ~b expired entries evicted in ~.1f ms~n", [N, UsE / 1000]),
    %% (b) over UDP to a plexus_registry server
    {ok, Srv} = plexus_registry:start_link(#{name => undefined, ip => {127, 0, 0, 1}, port => 0,
                                             max_entries => 2 * N}),
    unlink(Srv),
    Port = plexus_registry:port(Srv),
    {ok, Sock} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}, {active, false},
                                  {recbuf, 1 bsl 21}, {sndbuf, 1 bsl 21}]),
    {UsU, {Sent, Got}} = timer:tc(fun() -> udp_window(Sock, Port, Msgs, 64, 0, 0) end),
    #{entries := Entries} = plexus_registry:stats(Srv),
    io:format("registry over UDP   ~b announces, window 64: ~8w announces/s (~b handshakes "
              "back, ~b entries)~n", [Sent, round(Got / (UsU / 1.0e6)), Got, Entries]),
    gen_udp:close(Sock),
    plexus_registry:stop(Srv),
    ok.

%% Keeps up to W requests outstanding; a lost datagram ends its slot after 200 ms.
udp_window(Sock, Port, [], _W, Sent, Got) when Got >= Sent ->
    _ = Port, _ = Sock,
    {Sent, Got};
udp_window(Sock, Port, Msgs, W, Sent, Got) when Msgs =/= [], Sent - Got < W ->
    ok = gen_udp:send(Sock, {127, 0, 0, 1}, Port, hd(Msgs)),
    udp_window(Sock, Port, tl(Msgs), W, Sent + 1, Got);
udp_window(Sock, Port, Msgs, W, Sent, Got) ->
    case gen_udp:recv(Sock, 0, 200) of
        {ok, _} -> udp_window(Sock, Port, Msgs, W, Sent, Got + 1);
        {error, timeout} -> udp_window(Sock, Port, Msgs, W, Sent - 1, Got) %% count it lost
    end.
