%% @doc Pure EUnit for discovery's connection management (`plexus_discovery_connect'):
%% which peers a tick connects, the backoff (200 ms doubling to 5 s) driven by an
%% injected clock, one tick timer at a time, helpers that report or die, and that a
%% disabled state (no `connect => true', or an adapter that does not vouch) never asks
%% for a connection. No process is started: pids are stand-ins.
-module(plexus_discovery_connect_tests).

-include_lib("eunit/include/eunit.hrl").

-define(A, <<"a@127.0.0.1">>).
-define(B, <<"b@127.0.0.1">>).
-define(ME, <<"me@127.0.0.1">>).

fake_pid(N) -> list_to_pid("<0." ++ integer_to_list(N) ++ ".0>").
connects(Effects) -> lists:sort([Id || {connect, Id} <- Effects]).
ticks(Effects) -> [Ms || {tick_after, Ms} <- Effects].

disabled_never_connects_test() ->
    C0 = plexus_discovery_connect:new(false),
    ?assertNot(plexus_discovery_connect:enabled(C0)),
    {C1, []} = plexus_discovery_connect:discovered(?A, 0, C0),
    {_, []} = plexus_discovery_connect:tick([?A, ?B], #{}, 0, C1).

discovered_arms_one_tick_test() ->
    C0 = plexus_discovery_connect:new(true),
    {C1, [{tick_after, 0}]} = plexus_discovery_connect:discovered(?A, 0, C0),
    %% a tick is already pending: no second timer
    {_, []} = plexus_discovery_connect:discovered(?B, 0, C1).

tick_connects_due_peers_only_test() ->
    C0 = plexus_discovery_connect:new(true),
    {C1, _} = plexus_discovery_connect:discovered(?A, 0, C0),
    %% ?ME is connected (our own node is in the set), ?B was never announced but is
    %% discovered: it is tried too
    {_C2, E} = plexus_discovery_connect:tick([?A, ?B, ?ME], #{?ME => true}, 0, C1),
    ?assertEqual([?A, ?B], connects(E)),
    ?assertEqual([200], ticks(E)).

backoff_doubles_to_five_seconds_test() ->
    %% failed attempts: the next one waits 200, 400, ... 5000, 5000 ms
    Waits = attempt_gaps(plexus_discovery_connect:new(true), 0, 0, []),
    ?assertEqual([200, 400, 800, 1600, 3200, 5000, 5000], Waits).

%% Ticks every 100 ms of injected time, each failed attempt reported at once.
attempt_gaps(_C, _Now, _Last, Acc) when length(Acc) =:= 7 ->
    lists:reverse(Acc);
attempt_gaps(C, Now, Last, Acc) ->
    {C1, E} = plexus_discovery_connect:tick([?A], #{}, Now, C),
    case connects(E) of
        [?A] ->
            Pid = fake_pid(9100),
            C2 = plexus_discovery_connect:started(Pid, ?A, C1),
            ?assertEqual([], connects(element(2, plexus_discovery_connect:tick([?A], #{}, Now, C2)))),
            {C3, _} = plexus_discovery_connect:connected(Pid, ?A, false, C2),
            Acc1 = case Now of 0 -> Acc; _ -> [Now - Last | Acc] end,
            attempt_gaps(C3, Now + 100, Now, Acc1);
        [] ->
            attempt_gaps(C1, Now + 100, Last, Acc)
    end.

success_ends_attempts_test() ->
    C0 = plexus_discovery_connect:new(true),
    {C1, E1} = plexus_discovery_connect:tick([?A], #{}, 0, C0),
    [?A] = connects(E1),
    Pid = fake_pid(9101),
    C2 = plexus_discovery_connect:started(Pid, ?A, C1),
    ?assertEqual([Pid], plexus_discovery_connect:helpers(C2)),
    {C3, []} = plexus_discovery_connect:connected(Pid, ?A, true, C2),
    ?assertEqual([], plexus_discovery_connect:helpers(C3)),
    %% now connected: the tick leaves it alone and stops ticking
    ?assertMatch({_, []}, plexus_discovery_connect:tick([?A], #{?A => true}, 10000, C3)).

helper_death_counts_as_failure_test() ->
    C0 = plexus_discovery_connect:new(true),
    {C1, _} = plexus_discovery_connect:tick([?A], #{}, 0, C0),
    Pid = fake_pid(9102),
    C2 = plexus_discovery_connect:started(Pid, ?A, C1),
    ?assertEqual(error, plexus_discovery_connect:helper_exited(fake_pid(9103), C2)),
    %% the tick that started it is still pending: no second timer
    {ok, C3, []} = plexus_discovery_connect:helper_exited(Pid, C2),
    ?assertEqual([], plexus_discovery_connect:helpers(C3)),
    %% retried when the backoff is due, not before
    ?assertEqual([], connects(element(2, plexus_discovery_connect:tick([?A], #{}, 199, C3)))),
    ?assertEqual([?A], connects(element(2, plexus_discovery_connect:tick([?A], #{}, 200, C3)))).

forgotten_peer_restarts_from_minimum_test() ->
    C0 = plexus_discovery_connect:new(true),
    {C1, _} = plexus_discovery_connect:tick([?A], #{}, 0, C0),
    {C2, _} = plexus_discovery_connect:connected(fake_pid(9104), ?A, false, C1),
    C3 = plexus_discovery_connect:forgotten(?A, C2),
    %% not discovered any more: a tick without it has nothing to do
    ?assertMatch({_, []}, plexus_discovery_connect:tick([], #{}, 50, C3)).

bad_node_names_given_up_test() ->
    C0 = plexus_discovery_connect:new(true),
    {C1, E} = plexus_discovery_connect:tick([<<"no-at-sign">>, <<"a b@h">>], #{}, 0, C0),
    ?assertEqual([], E),
    ?assertMatch({_, []}, plexus_discovery_connect:tick([], #{}, 10000, C1)).

valid_node_name_test() ->
    V = fun plexus_discovery_connect:valid_node_name/1,
    ?assert(V(<<"a@b">>)),
    ?assert(V(<<"n@[::1]">>)),
    ?assertNot(V(<<"a@b@c">>)),
    ?assertNot(V(<<"@ab">>)),
    ?assertNot(V('a@b')).

one_attempt_at_a_time_test() ->
    %% a helper still connecting (a slow connect_node) is not joined by a second one,
    %% however long it takes, and the ticks go on while it runs
    C0 = plexus_discovery_connect:new(true),
    {C1, [{connect, ?A}, {tick_after, 200}]} = plexus_discovery_connect:tick([?A], #{}, 0, C0),
    C2 = plexus_discovery_connect:started(fake_pid(9105), ?A, C1),
    {_, E} = plexus_discovery_connect:tick([?A], #{}, 60000, C2),
    ?assertEqual([], connects(E)),
    ?assertEqual([200], ticks(E)).

%% 5,000 discovered peers that did not answer kept 5,000 attempts running at once
%% (net_kernel's queue 5,000 long, any other connect of the node 1.1-1.7 s). At most
%% 32 run now; the others stay due and are tried as attempts end, every one of them.
attempts_at_once_are_bounded_test() ->
    Ids = [<<"n", (integer_to_binary(I))/binary, "@127.0.0.1">> || I <- lists:seq(1, 100)],
    {C1, E1} = plexus_discovery_connect:tick(Ids, #{}, 0, plexus_discovery_connect:new(true)),
    First = connects(E1),
    ?assertEqual(32, length(First)),
    ?assertEqual([200], ticks(E1)),
    Pids = [{fake_pid(9200 + I), Id} || {I, Id} <- lists:zip(lists:seq(1, 32), First)],
    C2 = lists:foldl(fun({P, Id}, C) -> plexus_discovery_connect:started(P, Id, C) end, C1, Pids),
    %% all 32 still running: nobody else is tried
    ?assertEqual([], connects(element(2, plexus_discovery_connect:tick(Ids, #{}, 10, C2)))),
    %% they fail: 32 others get their turn (the failed ones wait for their backoff)
    C3 = lists:foldl(fun({P, Id}, C) -> element(1, plexus_discovery_connect:connected(P, Id, false, C)) end,
                     C2, Pids),
    {_, E3} = plexus_discovery_connect:tick(Ids, #{}, 20, C3),
    Second = connects(E3),
    ?assertEqual(32, length(Second)),
    ?assertEqual([], [Id || Id <- Second, lists:member(Id, First)]).

%% Peers that do not answer take 7 s an attempt (a connect timeout); the backoff runs
%% from an attempt's start, so each was due again when its attempt ended, and the
%% first 32 in the list took every slot for good: in 10 simulated minutes the 68
%% others of 100 were never tried (a reachable one among them would never have been
%% connected). The peer due the longest goes first now.
no_peer_starves_behind_unanswering_ones_test() ->
    Ids = [<<"n", (integer_to_binary(I))/binary, "@127.0.0.1">> || I <- lists:seq(1, 100)],
    Tried = starve_sim(Ids, 0, 600000, #{}, #{}, plexus_discovery_connect:new(true)),
    Never = [Id || Id <- Ids, not is_map_key(Id, Tried)],
    ?assertEqual({0, []}, {length(Never), Never}).

%% Ticks every 200 ms to End; each attempt fails 7,000 ms after it started.
starve_sim(_Ids, Now, End, _Running, Tried, _C) when Now > End ->
    Tried;
starve_sim(Ids, Now, End, Running, Tried, C0) ->
    {Done, Still} = maps:fold(fun(P, {Id, At}, {D, S}) when At =< Now -> {[{P, Id} | D], S};
                                 (P, V, {D, S}) -> {D, S#{P => V}}
                              end, {[], #{}}, Running),
    C1 = lists:foldl(fun({P, Id}, C) -> element(1, plexus_discovery_connect:connected(P, Id, false, C)) end,
                     C0, Done),
    {C2, E} = plexus_discovery_connect:tick(Ids, #{}, Now, C1),
    {C3, Running1, Tried1} =
        lists:foldl(fun(Id, {C, R, T}) ->
                            U = erlang:unique_integer([positive]),
                            P = list_to_pid("<0." ++ integer_to_list(U rem 32768) ++ "."
                                            ++ integer_to_list(U div 32768) ++ ">"),
                            {plexus_discovery_connect:started(P, Id, C), R#{P => {Id, Now + 7000}},
                             T#{Id => true}}
                    end, {C2, Still, Tried}, connects(E)),
    starve_sim(Ids, Now + 200, End, Running1, Tried1, C3).
