%% @doc Overlay benchmark for `make bench' (issue 10 figures), on real nodes on
%% loopback (plexus_test_cluster, manual connections):
%% <ul>
%% <li>convergence time after a change: 5 nodes, one entity updated on one node, time
%%     until every other node's subscriber has seen it (sync interval 500 ms, the
%%     default, and 100 ms);</li>
%% <li>bytes per second sent by an idle overlay of 10,000 entities (3 nodes; measured
%%     with a 1 s anti-entropy interval and scaled to the default 60 s);</li>
%% <li>bytes moved to re-converge after a partition in which 10 of 10,000 entities
%%     changed, against the size of the full state.</li>
%% </ul>
%% Targets are printed beside the figures; nothing here asserts on time.
-module(plexus_bench_overlay).

-export([main/0]).
%% run on the nodes
-export([waiter/2, waited/1, load/2, digest/0, state_size/0]).

-define(C, plexus_test_cluster).
-define(OVL, bench_overlay).
-define(ENTITIES, 10000).

-spec main() -> no_return().
main() ->
    io:format("~n== Overlay (plexus_overlay, real nodes on loopback)~n"),
    Code = try
               convergence(500),
               convergence(100),
               idle_and_partition(),
               0
           catch Class:Reason:Stack ->
                   io:format("overlay bench failed: ~p:~p~n~p~n", [Class, Reason, Stack]),
                   1
           after
               ?C:stop_all()
           end,
    erlang:halt(Code).

%% ---------------------------------------------------------------- convergence

convergence(SyncMs) ->
    Peers = cluster("ovl_bconv" ++ integer_to_list(SyncMs), 5,
                    #{sync_interval_ms => SyncMs}),
    [P1 | Others] = Peers,
    Trials = 20,
    Ms = [trial(P1, Others, T) || T <- lists:seq(1, Trials)],
    S = lists:sort(Ms),
    io:format("convergence after one update, 5 nodes, sync ~b ms: p50 ~b ms  max ~b ms "
              "(~b trials)~n", [SyncMs, lists:nth(Trials div 2, S), lists:last(S), Trials]),
    io:format("  target: about the sync interval (a change waits for the next batch)~n"),
    ?C:stop(Peers).

%% One update on P1; each other node's waiter notes the system time it saw it.
trial(P1, Others, T) ->
    Key = {trial, T},
    [ok = ?C:call(P, ?MODULE, waiter, [Key, T]) || P <- Others],
    T0 = ?C:call(P1, os, system_time, [microsecond]),
    ok = ?C:call(P1, plexus_overlay, update_entity, [?OVL, Key, T]),
    Seen = [?C:call(P, ?MODULE, waited, [Key], 30000) || P <- Others],
    (lists:max(Seen) - T0) div 1000.

waiter(Key, V) ->
    Self = self(),
    Pid = spawn(fun() ->
                        {ok, _} = plexus_overlay:subscribe(?OVL),
                        Self ! ready,
                        wait_event(Key, V)
                end),
    receive ready -> ok after 10000 -> error(waiter) end,
    true = register(name(Key), Pid),
    ok.

wait_event(Key, V) ->
    receive
        {overlay_event, {entity_updated, Key, V}} ->
            At = os:system_time(microsecond),
            receive {get, From} -> From ! {seen, At} end;
        {overlay_event, _} ->
            wait_event(Key, V)
    end.

waited(Key) ->
    name(Key) ! {get, self()},
    receive {seen, At} -> At after 20000 -> error(not_seen) end.

name({trial, T}) -> list_to_atom("bench_ovl_waiter_" ++ integer_to_list(T)).

%% ---------------------------------------------------------------- idle, partition

idle_and_partition() ->
    Peers = cluster("ovl_bidle", 3, #{sync_interval_ms => 500,
                                      anti_entropy_interval_ms => 1000}),
    [P1, P2, P3] = Peers,
    ok = ?C:call(P1, ?MODULE, load, [1, ?ENTITIES], 120000),
    wait_same(Peers),
    Full = ?C:call(P1, ?MODULE, state_size, [], 60000),
    %% idle: whatever goes out now is anti-entropy of equal replicas
    B0 = bytes(Peers),
    W = 5000,
    timer:sleep(W),
    B1 = bytes(Peers),
    PerSec = (B1 - B0) * 1000 div W,
    io:format("idle overlay of ~b entities, 3 nodes: ~b bytes/s with anti-entropy every 1 s "
              "= ~b bytes/s at the default 60 s (full state ~b bytes)~n",
              [?ENTITIES, PerSec, PerSec div 60, Full]),
    io:format("  target: only digests when nothing changes (~b bytes per exchange)~n",
              [PerSec div 6]),
    ?C:stop(Peers),
    %% partition: a fresh cluster with anti-entropy only at nodeup
    Ps = cluster("ovl_bpart", 3, #{sync_interval_ms => 500,
                                   anti_entropy_interval_ms => 600000}),
    [Q1, Q2, Q3] = Ps,
    ok = ?C:call(Q1, ?MODULE, load, [1, ?ENTITIES], 120000),
    wait_same(Ps),
    ok = ?C:partition([Q3], [Q1, Q2]),
    [ok = ?C:call(Q1, plexus_overlay, update_entity, [?OVL, {e, I}, changed])
     || I <- lists:seq(1, ?ENTITIES, ?ENTITIES div 10)],
    wait_same([Q1, Q2]),
    Before = bytes(Ps),
    ok = ?C:heal([Q3], [Q1, Q2]),
    Ms = wait_same(Ps),
    Moved = bytes(Ps) - Before,
    FullP = ?C:call(Q1, ?MODULE, state_size, [], 60000),
    io:format("re-converging after a partition (10 of ~b entities changed): ~b bytes = "
              "~.2f% of the full state (~b bytes), ~b ms~n",
              [?ENTITIES, Moved, 100 * Moved / FullP, FullP, Ms]),
    io:format("  target: <= 5% of the full state~n"),
    _ = {P2, P3},
    ?C:stop(Ps).

load(From, To) ->
    [ok = plexus_overlay:update_entity(?OVL, {e, I}, #{x => I, y => -I, name => <<"unit">>})
     || I <- lists:seq(From, To)],
    ok.

digest() ->
    erlang:md5(gen_server:call(?OVL, to_binary, 60000)).

state_size() ->
    byte_size(gen_server:call(?OVL, to_binary, 60000)).

bytes(Peers) ->
    lists:sum([maps:get(bytes_sent, ?C:call(P, plexus_overlay, info, [?OVL]), 0)
               || P <- Peers]).

%% ---------------------------------------------------------------- cluster

cluster(Prefix, N, Opts) ->
    Names = [list_to_atom(Prefix ++ "_" ++ integer_to_list(I)) || I <- lists:seq(1, N)],
    Peers = ?C:start(Names, manual),
    ok = ?C:mesh(Peers),
    Nodes = ?C:nodes_of(Peers),
    [{ok, _} = ?C:call(P, plexus_overlay, start, [Opts#{name => ?OVL, peers => Nodes}])
     || P <- Peers],
    Peers.

%% Bounded wait (50 ms polls, 120 s) until the overlays have the same bytes; -> ms.
wait_same(Peers) ->
    T0 = ?C:now_ms(),
    wait_same(Peers, T0, 2400).

wait_same(Peers, T0, 0) ->
    error({overlays_differ, [?C:call(P, plexus_overlay, info, [?OVL]) || P <- Peers],
           ?C:now_ms() - T0});
wait_same(Peers, T0, Tries) ->
    case length(lists:usort([?C:call(P, ?MODULE, digest, [], 60000) || P <- Peers])) of
        1 -> ?C:now_ms() - T0;
        _ -> timer:sleep(50), wait_same(Peers, T0, Tries - 1)
    end.
