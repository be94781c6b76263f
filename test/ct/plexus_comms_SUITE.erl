%% @doc plexus_comms between real BEAM nodes on 127.0.0.1 (OS processes, so a test can
%% SIGSTOP them by pid). The sender is this node, with plexus_monitor (its in-VM pings)
%% and a comms server `comms_ct'; each peer runs a comms server of the same name and a
%% collector subscribed to it.
%%
%% - latency_and_drop_rules: link quality follows latency induced with the monitor's
%%   test hook (answers read late), and each drop rule holds at each grade, in the
%%   return values, in info/1 and in what the peer receives;
%% - silence: SIGSTOP makes the link poor (the monitor's suspect), SIGCONT brings it
%%   back, kill -9 makes it disconnected;
%% - disconnected_queue: critical and high are held while disconnected (normal and low
%%   dropped) and delivered critical first once the connection is back;
%% - priority_order: with the connection congested (peer stopped), messages of every
%%   priority queue up and leave critical first, in order within a priority;
%% - send_right_after_start: a normal message sent the moment the server has started
%%   reaches a peer that is connected and that the monitor knows (README's example);
%%   before the server read the monitor in its start, every node was disconnected
%%   until the first poll came back, and the message was dropped;
%% - flood_bounded: a flood to a stopped peer keeps the queue within its length and
%%   byte bounds and the server's memory small; lower classes are evicted for higher
%%   ones; every message is accounted for and everything sent arrives.
%%
%% No timed asserts: every wait is a bounded loop on a condition.
-module(plexus_comms_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([latency_and_drop_rules/1, silence/1, disconnected_queue/1, priority_order/1,
         flood_bounded/1, send_right_after_start/1]).
%% run on the peers
-export([start_receiver/0, collected/0]).

-define(NAME, comms_ct).
-define(COLLECTOR, comms_ct_collector).
%% Bound of every wait: generous (a loaded machine delays pings and answers); it costs
%% nothing when the condition comes true.
-define(WAIT, 60000).

suite() -> [{timetrap, {minutes, 5}}].

all() -> [latency_and_drop_rules, silence, disconnected_queue, priority_order, flood_bounded,
          send_right_after_start].

init_per_suite(Config) ->
    _ = plexus_test_nodes:ensure_distributed("plexus_ct_comms"),
    {Cookie, Old} = plexus_test_nodes:private_cookie(),
    [{cookie, Cookie}, {old_cookie, Old} | Config].

end_per_suite(Config) ->
    plexus_test_nodes:restore_cookie(?config(old_cookie, Config)).

init_per_testcase(Case, Config) ->
    %% names unique to this run: two runs on one machine share epmd
    Name = "comms_" ++ atom_to_list(Case) ++ "_" ++ os:getpid(),
    Peer = plexus_test_nodes:start_node(Name, ?config(cookie, Config)),
    {Node, _, _} = Peer,
    ok = rpc:call(Node, ?MODULE, start_receiver, []),
    [{peer, Peer} | Config].

end_per_testcase(_Case, Config) ->
    _ = catch plexus_comms:stop(?NAME),
    _ = catch plexus_monitor:stop(),
    plexus_test_nodes:stop_node(?config(peer, Config)),
    ok.

%% ------------------------------------------------------------------ cases

latency_and_drop_rules(Config) ->
    {Node, _, _} = ?config(peer, Config),
    start_monitor(#{ping_interval_ms => 100, suspect_after_ms => 10000,
                    down_after_ms => 60000}),
    %% thresholds far above a loaded loopback's RTT, and far apart
    start_comms(#{excellent_ms => 300, good_ms => 600, degraded_ms => 1500}),
    await_quality(Node, excellent),
    All = [critical, high, normal, low],
    ?assertEqual([{P, {ok, sent}} || P <- All], send_each(Node, excellent, All)),
    %% answers read 900 ms late: the median RTT moves into [600, 1500)
    ok = plexus_monitor:test_delay_answers(Node, 900),
    await_quality(Node, degraded),
    ?assertEqual([{critical, {ok, sent}}, {high, {ok, sent}}, {normal, {ok, sent}},
                  {low, {error, {dropped, degraded}}}], send_each(Node, degraded, All)),
    ok = plexus_monitor:test_delay_answers(Node, 2500),
    await_quality(Node, poor),
    ?assertEqual([{critical, {ok, sent}}, {high, {ok, sent}},
                  {normal, {error, {dropped, poor}}}, {low, {error, {dropped, poor}}}],
                 send_each(Node, poor, All)),
    ok = plexus_monitor:test_delay_answers(Node, 0),
    await_quality(Node, excellent),
    %% a node never seen is disconnected: critical queued, normal dropped
    Ghost = list_to_atom("comms_ghost_" ++ os:getpid() ++ "@127.0.0.1"),
    ?assertEqual(disconnected, plexus_comms:get_link_quality(?NAME, Ghost)),
    ?assertEqual({ok, queued}, plexus_comms:send_msg(?NAME, Ghost, g, critical)),
    ?assertEqual({error, {dropped, disconnected}}, plexus_comms:send_msg(?NAME, Ghost, g, normal)),
    %% the peer got exactly what was sent, in order
    Sent = [{G, P} || G <- [excellent, degraded, poor], {P, {ok, sent}} <- send_results(G)],
    ok = await(fun() -> element(2, rpc:call(Node, ?MODULE, collected, [])) =:= Sent end),
    #{sent := #{critical := 3, high := 3, normal := 2, low := 1},
      dropped := #{degraded := #{low := 1}, poor := #{normal := 1, low := 1},
                   disconnected := #{normal := 1}},
      dropped_total := 4, queues := #{Ghost := #{length := 1}}} = plexus_comms:info(?NAME).

send_right_after_start(Config) ->
    {Node, _, _} = ?config(peer, Config),
    true = lists:member(Node, nodes()),
    %% the default ping interval: the monitor has no answer yet when the sends go
    start_monitor(#{}),
    {ok, _} = start_comms(#{refresh_ms => 60000}),
    ?assertEqual(good, plexus_comms:get_link_quality(?NAME, Node)),
    ?assertEqual({ok, sent}, plexus_comms:send_msg(?NAME, Node, first, normal)),
    ?assertEqual({ok, sent}, plexus_comms:send_msg(?NAME, Node, second, low)),
    ok = await(fun() -> element(2, rpc:call(Node, ?MODULE, collected, [])) =:=
                            [first, second] end).

silence(Config) ->
    {Node, _, OsPid} = ?config(peer, Config),
    start_monitor(#{ping_interval_ms => 100, suspect_after_ms => 1000,
                    down_after_ms => 60000}),
    start_comms(#{excellent_ms => 300, good_ms => 600, degraded_ms => 1500}),
    await_quality(Node, excellent),
    plexus_test_nodes:os_kill(OsPid, "STOP"),
    try
        await_quality(Node, poor),
        ?assertEqual({error, {dropped, poor}}, plexus_comms:send_msg(?NAME, Node, x, normal))
    after
        plexus_test_nodes:os_kill(OsPid, "CONT")
    end,
    await_quality(Node, excellent),
    plexus_test_nodes:os_kill(OsPid, "KILL"),
    await_quality(Node, disconnected),
    ?assertEqual({ok, queued}, plexus_comms:send_msg(?NAME, Node, x, high)).

disconnected_queue(Config) ->
    {Node, _, _} = ?config(peer, Config),
    start_monitor(#{ping_interval_ms => 100, suspect_after_ms => 10000,
                    down_after_ms => 60000}),
    %% refresh_ms long: this server does not ask the monitor to reconnect while the
    %% test holds the connection down
    start_comms(#{excellent_ms => 300, good_ms => 600, degraded_ms => 1500,
                  refresh_ms => 600000}),
    await_quality(Node, good_or_better),
    true = erlang:disconnect_node(Node),
    await_quality(Node, disconnected),
    Msgs = [{high, h1}, {critical, c1}, {normal, n1}, {low, l1}, {high, h2}, {critical, c2}],
    ?assertEqual([{ok, queued}, {ok, queued}, {error, {dropped, disconnected}},
                  {error, {dropped, disconnected}}, {ok, queued}, {ok, queued}],
                 [plexus_comms:send_msg(?NAME, Node, D, P) || {P, D} <- Msgs]),
    #{queues := #{Node := #{length := 4}}} = plexus_comms:info(?NAME),
    true = net_kernel:connect_node(Node),
    ok = await(fun() -> length(element(2, rpc:call(Node, ?MODULE, collected, []))) >= 4 end),
    ?assertEqual({4, [c1, c2, h1, h2]}, rpc:call(Node, ?MODULE, collected, [])),
    #{queues := Qs, sent := #{critical := 2, high := 2}} = plexus_comms:info(?NAME),
    ?assertEqual(#{}, Qs).

priority_order(Config) ->
    {Node, _, OsPid} = ?config(peer, Config),
    %% suspect_after long: a stopped peer stays healthy to the monitor, so only the
    %% congestion (not the drop policy) decides what waits
    start_monitor(#{ping_interval_ms => 100, suspect_after_ms => 300000,
                    down_after_ms => 600000}),
    start_comms(#{excellent_ms => 300, good_ms => 600, degraded_ms => 1500,
                  queue_bytes_limit => 64 * 1024 * 1024}),
    await_quality(Node, good_or_better),
    plexus_test_nodes:os_kill(OsPid, "STOP"),
    Order = try
                congest(Node),
                Msgs = [{low, l1}, {normal, n1}, {high, h1}, {critical, c1},
                        {low, l2}, {normal, n2}, {high, h2}, {critical, c2}],
                %% the caller is never blocked by the congested connection
                [{ok, queued} = plexus_comms:send_msg(?NAME, Node, D, P) || {P, D} <- Msgs],
                ok
            after
                plexus_test_nodes:os_kill(OsPid, "CONT")
            end,
    ok = Order,
    ok = await(fun() -> length(element(2, rpc:call(Node, ?MODULE, collected, []))) >= 8 end),
    {_, Markers} = rpc:call(Node, ?MODULE, collected, []),
    ?assertEqual([c1, c2, h1, h2, n1, n2, l1, l2], Markers).

flood_bounded(Config) ->
    {Node, _, OsPid} = ?config(peer, Config),
    start_monitor(#{ping_interval_ms => 100, suspect_after_ms => 300000,
                    down_after_ms => 600000}),
    Limit = 200,
    ByteLimit = 256 * 1024,
    {ok, Comms} = start_comms(#{excellent_ms => 300, good_ms => 600, degraded_ms => 1500,
                                queue_limit => Limit, queue_bytes_limit => ByteLimit}),
    await_quality(Node, good_or_better),
    plexus_test_nodes:os_kill(OsPid, "STOP"),
    Blob = binary:copy(<<7>>, 2048),                  % over the byte bound at 125 queued
    Results = try
                  %% low first: once congested, the queue fills with low up to its bound
                  R1 = flood(Node, low, Blob, 20000, Comms, ByteLimit, Limit),
                  %% critical then evicts the low ones, and is refused once all is critical
                  R2 = flood(Node, critical, Blob, 400, Comms, ByteLimit, Limit),
                  R1 ++ R2
              after
                  plexus_test_nodes:os_kill(OsPid, "CONT")
              end,
    Count = fun(R, P) -> length([x || {P1, R1} <- Results, P1 =:= P, R1 =:= R]) end,
    ct:pal("flood: ~p", [[{P, R, Count(R, P)} || P <- [low, critical],
                          R <- [{ok, sent}, {ok, queued}, {error, {dropped, queue_full}}]]]),
    %% the flood reached both bounds: refusals of each class, evictions of low
    ?assert(Count({error, {dropped, queue_full}}, low) > 0),
    ?assert(Count({error, {dropped, queue_full}}, critical) > 0),
    #{dropped := #{evicted := #{low := EvictedLow}}} = plexus_comms:info(?NAME),
    ?assert(EvictedLow > 0),
    %% drained: everything sent arrives, the queue is gone, and the counts add up
    ok = await(fun() -> maps:get(queues, plexus_comms:info(?NAME)) =:= #{} end),
    #{sent := S, queued := Q, dropped := D} = plexus_comms:info(?NAME),
    Sum = fun(M) -> lists:sum(maps:values(M)) end,
    SentTotal = Sum(S),
    ok = await(fun() -> element(1, rpc:call(Node, ?MODULE, collected, [])) =:= SentTotal end),
    ?assertEqual(length(Results), Count({ok, sent}, low) + Count({ok, sent}, critical) +
                     Sum(Q) + Sum(maps:get(queue_full, D))),
    ?assertEqual(Sum(Q), SentTotal - Count({ok, sent}, low) - Count({ok, sent}, critical)
                     + Sum(maps:get(evicted, D))).

%% ------------------------------------------------------------------ helpers

start_monitor(Opts) ->
    {ok, Mon} = plexus_monitor:start_link(Opts),
    unlink(Mon),
    ok.

start_comms(Opts) ->
    {ok, Pid} = plexus_comms:start(Opts#{name => ?NAME, refresh_ms => maps:get(refresh_ms, Opts, 100)}),
    {ok, Pid}.

await(F) ->
    case plexus_test_nodes:wait_until(F, ?WAIT) of
        ok -> ok;
        timeout -> error({timeout, F})
    end.

await_quality(Node, good_or_better) ->
    case plexus_test_nodes:wait_until(
           fun() -> lists:member(plexus_comms:get_link_quality(?NAME, Node), [excellent, good]) end,
           ?WAIT) of
        ok -> ok;
        timeout -> error({quality_not_reached, good_or_better, plexus_comms:info(?NAME)})
    end;
await_quality(Node, Q) ->
    case plexus_test_nodes:wait_until(fun() -> plexus_comms:get_link_quality(?NAME, Node) =:= Q end,
                                      ?WAIT) of
        ok -> ok;
        timeout -> error({quality_not_reached, Q, plexus_comms:info(?NAME),
                          catch plexus_monitor:get_health(Node)})
    end.

%% Sends one message per priority, data {Grade, Priority}; remembers the results.
send_each(Node, Grade, Ps) ->
    R = [{P, plexus_comms:send_msg(?NAME, Node, {Grade, P}, P)} || P <- Ps],
    put({results, Grade}, R),
    R.

send_results(Grade) -> get({results, Grade}).

%% Sends 64 KiB critical messages to the stopped peer until the connection stays
%% busy (bounded: 2000 messages, 128 MiB). One send queued is not enough: the
%% distribution buffer can pass its busy limit while the kernel's socket buffers
%% (which grow as they fill) still take more, and the server's next retry (retry_ms,
%% 10 ms) then sends what was queued; a send after that goes out directly (one make
%% test run failed so: {ok, sent} where queued was expected). So after a send is
%% queued, the queue must still hold it after 20 retries, twice.
congest(Node) -> congest(Node, binary:copy(<<1>>, 65536), 2000).

congest(_, _, 0) -> error(never_congested);
congest(Node, Blob, N) ->
    case plexus_comms:send_msg(?NAME, Node, Blob, critical) of
        {ok, sent} ->
            congest(Node, Blob, N - 1);
        {ok, queued} ->
            case stays_queued(Node, 2) of
                true -> ok;
                false -> congest(Node, Blob, N - 1)
            end
    end.

stays_queued(_, 0) ->
    true;
stays_queued(Node, Checks) ->
    timer:sleep(200),
    #{queues := Qs} = plexus_comms:info(?NAME),
    case Qs of
        #{Node := #{length := L}} when L > 0 -> stays_queued(Node, Checks - 1);
        _ -> false
    end.

%% N messages of priority P; every 50, the queue and the server's memory are checked
%% against the bounds: length and bytes as configured, and, after a garbage
%% collection of the server, the binaries it still references within the byte bound
%% (plus one message) and its heap within 1 MiB.
flood(Node, P, Blob, N, Comms, ByteLimit, Limit) ->
    [begin
         %% a binary of its own per message, so that what the server holds is counted
         R = plexus_comms:send_msg(?NAME, Node, <<I:32, Blob/binary>>, P),
         (I rem 50 =:= 0) andalso check_bounds(Node, Comms, ByteLimit, Limit),
         {P, R}
     end || I <- lists:seq(1, N)].

check_bounds(Node, Comms, ByteLimit, Limit) ->
    #{queues := Qs} = plexus_comms:info(?NAME),
    #{length := Len, bytes := Bytes} = maps:get(Node, Qs, #{length => 0, bytes => 0}),
    ?assert(Len =< Limit),
    ?assert(Bytes =< ByteLimit),
    true = erlang:garbage_collect(Comms),
    [{memory, Mem}, {binary, Bins}] = erlang:process_info(Comms, [memory, binary]),
    Held = lists:sum([Size || {_, Size, _} <- lists:ukeysort(1, Bins)]),
    ?assert(Held =< ByteLimit + 4096),
    ?assert(Mem =< 1024 * 1024),
    true.

%% ------------------------------------------------------------------ on the peers

%% Starts the peer's comms server and a collector subscribed to it.
start_receiver() ->
    {ok, _} = plexus_comms:start(#{name => ?NAME}),
    Self = self(),
    Pid = spawn(fun() ->
                        ok = plexus_comms:subscribe(?NAME),
                        Self ! {subscribed, self()},
                        collect(0, [])
                end),
    receive {subscribed, Pid} -> ok after 5000 -> error(no_collector) end,
    true = register(?COLLECTOR, Pid),
    ok.

%% What the collector has: {Count, Markers} where the markers are the data that are
%% not binaries (the floods' blobs are only counted), in arrival order.
collected() ->
    ?COLLECTOR ! {get, self()},
    receive {collected, C, M} -> {C, M} after 5000 -> error(collector_timeout) end.

collect(Count, Markers) ->
    receive
        {plexus_comms, _From, _P, Data} when is_binary(Data) -> collect(Count + 1, Markers);
        {plexus_comms, _From, _P, Data} -> collect(Count + 1, [Data | Markers]);
        {get, From} -> From ! {collected, Count, lists:reverse(Markers)}, collect(Count, Markers)
    end.
