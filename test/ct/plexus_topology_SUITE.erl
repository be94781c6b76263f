%% @doc plexus_topology with plexus_monitor on real BEAM nodes (OS processes on
%% loopback): a frozen (SIGSTOP) commander loses command as soon as the monitor calls
%% it suspect, long before the distribution's tick timeout would close its connection;
%% resumed (SIGCONT) and healthy again, it commands again (seniority). Both with the
%% seniority wingmate and with an operator-promoted one. Every node is stopped by pid.
-module(plexus_topology_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([frozen_commander_hands_over/1, frozen_commander_hands_over_to_promoted/1]).

-define(T, plexus_topology).
%% Monitor timings on every node: suspect after 1 s without a ping answer; down far
%% later than any wait here, so only suspect can explain a handover.
-define(MON, #{ping_interval_ms => 100, suspect_after_ms => 1000, down_after_ms => 600000}).
%% Bound of every wait: generous (a loaded machine), and below the 45 s a frozen node's
%% connection survives at the default net_ticktime (60 s), which the cases check too.
-define(WAIT, 30000).

suite() -> [{timetrap, {minutes, 4}}].

all() -> [frozen_commander_hands_over, frozen_commander_hands_over_to_promoted].

init_per_suite(Config) ->
    _ = plexus_test_nodes:ensure_distributed("plexus_topology_ct_tl"),
    {Cookie, Old} = plexus_test_nodes:private_cookie(),
    [{cookie, Cookie}, {old_cookie, Old} | Config].

end_per_suite(Config) ->
    plexus_test_nodes:restore_cookie(?config(old_cookie, Config)).

%% a (oldest) commands, b is the seniority wingmate, this node observes. a frozen: b
%% commands on b and here while a's connection is still up; a resumed: a commands again.
frozen_commander_hands_over(Config) ->
    with_cluster(Config, "tl_topo_1", fun(A, B, PidA) ->
        Here = node(),
        ok = agree([Here, A, B], [{A, commander}, {B, wingmate}, {Here, observer}]),
        {Ms, Connected} = freeze_until(PidA, [Here, B], [{B, commander}, {Here, wingmate}]),
        ct:pal("SIGSTOP commander -> wingmate commands in ~b ms (suspect_after 1000 ms)", [Ms]),
        ?assert(Connected, "the handover came from the monitor, not from nodedown"),
        plexus_test_nodes:os_kill(PidA, "CONT"),
        ok = agree([Here, A, B], [{A, commander}, {B, wingmate}, {Here, observer}])
    end).

%% The same with this node promoted to wingmate: it (not the more senior b) takes over,
%% and hands back when a returns.
frozen_commander_hands_over_to_promoted(Config) ->
    with_cluster(Config, "tl_topo_2", fun(A, B, PidA) ->
        Here = node(),
        ok = agree([Here, A, B], [{A, commander}, {B, wingmate}, {Here, observer}]),
        %% asked on b: the promotion is made on this node's process
        ok = erpc:call(B, ?T, promote, [Here, wingmate]),
        ok = agree([Here, A, B], [{A, commander}, {B, observer}, {Here, wingmate}]),
        {Ms, Connected} = freeze_until(PidA, [Here, B], [{B, wingmate}, {Here, commander}]),
        ct:pal("SIGSTOP commander -> promoted wingmate commands in ~b ms", [Ms]),
        ?assert(Connected, "the handover came from the monitor, not from nodedown"),
        plexus_test_nodes:os_kill(PidA, "CONT"),
        ok = agree([Here, A, B], [{A, commander}, {B, observer}, {Here, wingmate}]),
        %% observer takes the promotion back: seniority again
        ok = ?T:promote(Here, observer),
        ok = agree([Here, A, B], [{A, commander}, {B, wingmate}, {Here, observer}])
    end).

%% ------------------------------------------------------------------ helpers

%% Two nodes, a (start time 1000) and b (2000), this node 3000; a monitor and a
%% topology process on each. Fun(A, B, OsPidOfA).
with_cluster(Config, Prefix, Fun) ->
    Cookie = ?config(cookie, Config),
    %% names unique to this run: two runs of the suite on one machine share epmd
    Tag = "_" ++ os:getpid(),
    NA = plexus_test_nodes:start_node(Prefix ++ "_a" ++ Tag, Cookie),
    NB = plexus_test_nodes:start_node(Prefix ++ "_b" ++ Tag, Cookie),
    {A, _, PidA} = NA,
    {B, _, _} = NB,
    try
        true = erpc:call(A, net_kernel, connect_node, [B]),
        ok = erpc:call(A, fun() -> start_services(1000) end),
        ok = erpc:call(B, fun() -> start_services(2000) end),
        ok = start_services(3000),
        Fun(A, B, PidA)
    after
        plexus_test_nodes:stop_node(NA),
        plexus_test_nodes:stop_node(NB),
        catch ?T:stop(),
        catch plexus_monitor:stop()
    end.

%% A monitor and a topology process that outlive the caller (erpc runs this in a
%% short-lived process).
start_services(Start) ->
    {ok, M} = plexus_monitor:start_link(?MON),
    unlink(M),
    {ok, _} = ?T:start(#{start_time => Start}),
    ok.

list_nodes(N) when N =:= node() -> ?T:list_nodes();
list_nodes(N) -> erpc:call(N, ?T, list_nodes, [], 5000).

%% Waits (bounded) until every node in Nodes lists exactly Roles.
agree(Nodes, Roles) ->
    Want = lists:sort(Roles),
    case plexus_test_nodes:wait_until(fun() -> [list_nodes(N) || N <- Nodes] =:=
                                                   [Want || _ <- Nodes] end, ?WAIT) of
        ok -> ok;
        timeout -> error({no_agreement, Want, [{N, catch list_nodes(N)} || N <- Nodes]})
    end.

%% SIGSTOPs OsPid and waits (bounded) until every node in Watchers lists exactly Roles
%% (the frozen node gone from them). Returns the milliseconds that took and whether the
%% frozen node was still connected here then (true: the distribution had not given up
%% on it, the monitor did).
freeze_until(OsPid, Watchers, Roles) ->
    Want = lists:sort(Roles),
    Frozen = [N || N <- nodes(), erpc:call(N, os, getpid, [], 5000) =:= integer_to_list(OsPid)],
    T0 = erlang:monotonic_time(millisecond),
    plexus_test_nodes:os_kill(OsPid, "STOP"),
    case plexus_test_nodes:wait_until(fun() -> [list_nodes(N) || N <- Watchers] =:=
                                                   [Want || _ <- Watchers] end, ?WAIT) of
        ok ->
            Ms = erlang:monotonic_time(millisecond) - T0,
            {Ms, Frozen =/= [] andalso lists:all(fun(F) -> lists:member(F, nodes()) end, Frozen)};
        timeout ->
            plexus_test_nodes:os_kill(OsPid, "CONT"),
            error({no_handover, [{N, catch list_nodes(N)} || N <- Watchers]})
    end.
