%% @doc plexus_monitor with its own in-VM pings (source beam) against real BEAM nodes
%% started as OS processes on loopback: node_up, RTT history, SIGSTOP -> suspect ->
%% (SIGCONT) healthy, kill -9 -> node_down, and the list functions.
-module(plexus_monitor_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([beam_source/1, congested_connection/1]).

suite() -> [{timetrap, {minutes, 3}}].

%% Bound of every wait for an event: generous (a loaded machine delays pings and
%% answers), and it costs nothing when the event comes.
-define(WAIT, 30000).

all() -> [beam_source, congested_connection].

init_per_suite(Config) ->
    _ = plexus_test_nodes:ensure_distributed("plexus_monitor_ct"),
    {Cookie, Old} = plexus_test_nodes:private_cookie(),
    [{cookie, Cookie}, {old_cookie, Old} | Config].

end_per_suite(Config) ->
    plexus_test_nodes:restore_cookie(?config(old_cookie, Config)).

beam_source(Config) ->
    {ok, Mon} = plexus_monitor:start_link(#{ping_interval_ms => 100, suspect_after_ms => 500,
                                            down_after_ms => 5000}),
    unlink(Mon),
    ok = plexus_monitor:subscribe(),
    %% names unique to this run: two runs of the suite on one machine share epmd
    Tag = "_" ++ os:getpid(),
    A = plexus_test_nodes:start_node("mon_a" ++ Tag, ?config(cookie, Config)),
    B = plexus_test_nodes:start_node("mon_b" ++ Tag, ?config(cookie, Config)),
    {NA, _, PidA} = A,
    {NB, _, PidB} = B,
    try
        [receive {plexus_event, {node_up, N}} -> ok after ?WAIT -> error({no_node_up, N}) end
         || N <- [NA, NB]],
        ok = plexus_test_nodes:wait_until(
               fun() -> {ok, #{samples := S}} = plexus_monitor:get_health(NA), S >= 3 end, ?WAIT),
        {ok, HA} = plexus_monitor:get_health(NA),
        ?assertMatch(#{node := NA, status := healthy}, HA),
        ?assert(maps:get(rtt_p99_us, HA) >= maps:get(rtt_p50_us, HA)),
        ?assertEqual({ok, HA#{}}, {ok, HA}),
        ?assert(lists:member(NA, plexus_monitor:list_healthy())),
        ?assert(lists:any(fun(#{node := N}) -> N =:= NB end, plexus_monitor:list_all())),
        %% frozen: suspect after 500 ms without answers, healthy again once resumed
        T0 = erlang:monotonic_time(millisecond),
        plexus_test_nodes:os_kill(PidA, "STOP"),
        receive {plexus_event, {status_change, NA, healthy, suspect}} -> ok
        after ?WAIT -> plexus_test_nodes:os_kill(PidA, "CONT"), error(no_suspect)
        end,
        Ts = erlang:monotonic_time(millisecond) - T0,
        %% not suspected early: the monitor's own clock says it had heard nothing for
        %% at least suspect_after_ms when it judged (the wall time since SIGSTOP says
        %% little on a loaded machine, where answers may have stalled before it)
        {ok, #{status := suspect, since_ms := Since, last_answer_ms := Last}} =
            plexus_monitor:get_health(NA),
        ct:pal("SIGSTOP -> suspect in ~b ms, ~b ms after the last answer (threshold 500, "
               "ping 100)", [Ts, Since - Last]),
        ?assert(Since - Last >= 500),
        ?assertEqual([NA], plexus_monitor:list_suspect()),
        plexus_test_nodes:os_kill(PidA, "CONT"),
        receive {plexus_event, {status_change, NA, suspect, healthy}} -> ok
        after ?WAIT -> error(no_healthy)
        end,
        %% killed: node_down as soon as the connection closes
        T1 = erlang:monotonic_time(millisecond),
        plexus_test_nodes:os_kill(PidB, "KILL"),
        receive {plexus_event, {node_down, NB}} -> ok after ?WAIT -> error(no_node_down) end,
        ct:pal("kill -9 -> node_down in ~b ms", [erlang:monotonic_time(millisecond) - T1]),
        ?assertMatch({ok, #{status := down}}, plexus_monitor:get_health(NB))
    after
        plexus_test_nodes:stop_node(A),
        plexus_test_nodes:stop_node(B),
        plexus_monitor:stop()
    end.

%% A frozen node whose distribution buffer is over the busy limit (data queued for it
%% that it cannot read) must not freeze the monitor: before pings were sent with
%% `nosuspend', the next ping to it suspended the monitor until the node resumed, so
%% calls timed out, the other node was no longer pinged and the frozen one was never
%% called suspect.
congested_connection(Config) ->
    {ok, Mon} = plexus_monitor:start_link(#{ping_interval_ms => 100, suspect_after_ms => 500,
                                            down_after_ms => 60000}),
    unlink(Mon),
    ok = plexus_monitor:subscribe(),
    Tag = "_" ++ os:getpid(),
    A = plexus_test_nodes:start_node("mon_ca" ++ Tag, ?config(cookie, Config)),
    B = plexus_test_nodes:start_node("mon_cb" ++ Tag, ?config(cookie, Config)),
    {NA, _, _} = A,
    {NB, _, PidB} = B,
    try
        [receive {plexus_event, {node_up, N}} -> ok after ?WAIT -> error({no_node_up, N}) end
         || N <- [NA, NB]],
        plexus_test_nodes:os_kill(PidB, "STOP"),
        %% fill the connection to B until the runtime calls it busy and it stays busy
        %% (the queue first drains into the kernel's socket buffers, a few MB at most
        %% once B no longer reads; bounded)
        Busy = fill_until_busy(NB, binary:copy(<<0>>, 1 bsl 20), 0, 200),
        ?assert(Busy),
        %% the monitor keeps judging: B suspect, A still pinged and answered, calls served
        receive {plexus_event, {status_change, NB, healthy, suspect}} -> ok
        after ?WAIT ->
                ct:pal("monitor: ~p", [erlang:process_info(Mon, [status, current_stacktrace,
                                                                  message_queue_len])]),
                error(no_suspect)
        end,
        {ok, #{samples := S0}} = plexus_monitor:get_health(NA),
        ok = plexus_test_nodes:wait_until(
               fun() -> {ok, #{samples := S}} = plexus_monitor:get_health(NA), S >= S0 + 5 end,
               ?WAIT),
        ?assertMatch({ok, #{status := healthy}}, plexus_monitor:get_health(NA)),
        ?assertMatch({ok, #{status := suspect}}, plexus_monitor:get_health(NB))
    after
        plexus_test_nodes:os_kill(PidB, "CONT"),
        plexus_test_nodes:stop_node(A),
        plexus_test_nodes:stop_node(B),
        catch plexus_monitor:stop()
    end.

%% Sends 1 MB chunks without suspending until three sends in a row, 100 ms apart, find
%% the connection busy.
fill_until_busy(_, _, 3, _) -> true;
fill_until_busy(_, _, _, 0) -> false;
fill_until_busy(Node, Chunk, Streak, Budget) ->
    case erlang:send({nobody, Node}, Chunk, [nosuspend]) of
        nosuspend -> timer:sleep(100), fill_until_busy(Node, Chunk, Streak + 1, Budget - 1);
        ok -> fill_until_busy(Node, Chunk, 0, Budget - 1)
    end.
