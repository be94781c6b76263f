%% @doc EUnit tests of `plexus_topology_view', the pure topology rule: seniority,
%% quorum, relays, monitor health (suspect and down sit out, healthy comes back) and
%% the operator's wingmate promotion. No processes: events in, roles out.
-module(plexus_topology_view_tests).

-include_lib("eunit/include/eunit.hrl").

-define(V, plexus_topology_view).

%% a (start 10) is most senior, then b (20), c (30), d (40); this node is c.
view() -> view(1).

view(Q) ->
    lists:foldl(fun(E, V) -> ?V:handle(E, V) end, ?V:new('c@h', 30, Q),
                [{announce, 'a@h', 10, none}, {announce, 'b@h', 20, none},
                 {announce, 'd@h', 40, none}]).

run(Events, V) -> lists:foldl(fun ?V:handle/2, V, Events).

roles(V) -> lists:sort(maps:to_list(?V:roles(V))).

seniority_test() ->
    V = view(),
    ?assertEqual('a@h', ?V:commander(V)),
    ?assertEqual([{'a@h', commander}, {'b@h', wingmate}, {'c@h', observer}, {'d@h', observer}],
                 roles(V)),
    ?assertEqual(['a@h', 'b@h', 'c@h', 'd@h'], ?V:members(V)),
    ?assertEqual({30, none}, ?V:announcement(V)).

%% A suspect commander sits out: its wingmate commands; healthy again, it commands again.
suspect_commander_hands_over_and_back_test() ->
    V0 = view(),
    V1 = ?V:handle({monitor, {status_change, 'a@h', healthy, suspect}}, V0),
    ?assertEqual('b@h', ?V:commander(V1)),
    ?assertEqual([{'b@h', commander}, {'c@h', wingmate}, {'d@h', observer}], roles(V1)),
    %% still a member (connected): only out of the roles
    ?assertEqual(['a@h', 'b@h', 'c@h', 'd@h'], ?V:members(V1)),
    ?assertEqual(['b@h', 'c@h', 'd@h'], ?V:healthy(V1)),
    V2 = ?V:handle({monitor, {status_change, 'a@h', suspect, healthy}}, V1),
    ?assertEqual(roles(V0), roles(V2)),
    ?assertEqual('a@h', ?V:commander(V2)).

%% The monitor's down (and its node_up) work the same way; so do binary names (the
%% monitor's C node source).
down_and_up_test() ->
    V1 = ?V:handle({monitor, {node_down, <<"a@h">>}}, view()),
    ?assertEqual('b@h', ?V:commander(V1)),
    V2 = ?V:handle({monitor, {node_down, 'b@h'}}, V1),
    ?assertEqual('c@h', ?V:commander(V2)),
    V3 = ?V:handle({monitor, {node_up, <<"a@h">>}}, V2),
    ?assertEqual('a@h', ?V:commander(V3)),
    ?assertEqual(wingmate, maps:get('c@h', ?V:roles(V3))),
    %% health of a node not (yet) announced is kept for when it comes
    V4 = run([{monitor, {status_change, 'e@h', healthy, suspect}}, {announce, 'e@h', 1, none}],
             view()),
    ?assertEqual('a@h', ?V:commander(V4)),
    ?assertNot(lists:member('e@h', ?V:healthy(V4))),
    ?assertEqual('e@h', ?V:commander(?V:handle({monitor, {status_change, 'e@h', suspect, healthy}}, V4))).

%% This node never sits itself out, whatever a report says.
self_always_counts_test() ->
    V = run([{monitor, {status_change, 'c@h', healthy, suspect}}, {monitor, {node_down, 'c@h'}}],
            view()),
    ?assert(lists:member('c@h', ?V:healthy(V))),
    ?assertEqual(view(), ?V:handle({nodedown, 'c@h'}, ?V:handle({announce, 'c@h', 1, relay}, view()))).

%% A snapshot replaces the health marks; losing the monitor clears them.
snapshot_and_monitor_lost_test() ->
    V1 = ?V:handle({monitor_snapshot, [{'a@h', suspect}, {<<"b@h">>, down}, {'d@h', healthy}]},
                   view()),
    ?assertEqual(['c@h', 'd@h'], ?V:healthy(V1)),
    ?assertEqual('c@h', ?V:commander(V1)),
    V2 = ?V:handle(monitor_lost, V1),
    ?assertEqual(roles(view()), roles(V2)).

nodedown_leaves_the_view_test() ->
    V = ?V:handle({nodedown, 'a@h'}, view()),
    ?assertEqual(['b@h', 'c@h', 'd@h'], ?V:members(V)),
    ?assertEqual('b@h', ?V:commander(V)),
    ?assertNot(?V:is_member('a@h', V)),
    ?assert(?V:is_member('b@h', V)).

%% Quorum counts the healthy members.
quorum_counts_healthy_members_test() ->
    V = view(4),
    ?assertEqual('a@h', ?V:commander(V)),
    V1 = ?V:handle({monitor, {status_change, 'd@h', healthy, suspect}}, V),
    ?assertEqual(none, ?V:commander(V1)),
    ?assertEqual([observer], lists:usort(maps:values(?V:roles(V1)))),
    ?assertEqual({error, no_commander}, ?V:promotion(wingmate, V1)),
    ?assertEqual(4, ?V:quorum(V1)).

relay_test() ->
    V = ?V:handle({announce, 'b@h', 20, relay}, view()),
    ?assertEqual([{'a@h', commander}, {'b@h', relay}, {'c@h', wingmate}, {'d@h', observer}],
                 roles(V)),
    %% promotion never overrides the commander
    V1 = ?V:handle({announce, 'a@h', 10, relay}, V),
    ?assertEqual(commander, maps:get('a@h', ?V:roles(V1))).

%% promote(d, wingmate): d backs the commander a. While a counts, a commands and d is
%% the wingmate (not b, whom seniority would pick); when a is suspect d commands (not b);
%% when a is back, a commands and d is wingmate again.
wingmate_promotion_test() ->
    V0 = view(),
    %% d's own process works out its promotion from its view (same as c's here)
    {ok, P} = ?V:promotion(wingmate, V0),
    ?assertEqual({wingmate, 10, <<"a@h">>}, P),
    V1 = ?V:handle({announce, 'd@h', 40, P}, V0),
    ?assertEqual([{'a@h', commander}, {'b@h', observer}, {'c@h', observer}, {'d@h', wingmate}],
                 roles(V1)),
    V2 = ?V:handle({monitor, {status_change, 'a@h', healthy, suspect}}, V1),
    ?assertEqual('d@h', ?V:commander(V2)),
    ?assertEqual([{'b@h', wingmate}, {'c@h', observer}, {'d@h', commander}], roles(V2)),
    V3 = ?V:handle({monitor, {status_change, 'a@h', suspect, healthy}}, V2),
    ?assertEqual(roles(V1), roles(V3)),
    %% gone for good: d keeps command; a newer promotion backs d
    V4 = ?V:handle({nodedown, 'a@h'}, V1),
    ?assertEqual('d@h', ?V:commander(V4)),
    {ok, P2} = ?V:promotion(wingmate, V4),
    V5 = ?V:handle({announce, 'b@h', 20, P2}, V4),
    ?assertEqual([{'b@h', wingmate}, {'c@h', observer}, {'d@h', commander}], roles(V5)),
    ?assertEqual('b@h', ?V:commander(?V:handle({nodedown, 'd@h'}, V5))),
    %% observer takes it back: seniority again
    V6 = ?V:handle({announce, 'd@h', 40, none}, V1),
    ?assertEqual(roles(V0), roles(V6)).

%% A promoted wingmate never loses seniority it has, and of two the best ranked wins.
wingmate_promotion_edges_test() ->
    V0 = view(),
    %% b is already second: promoting it changes nothing
    V1 = ?V:handle({announce, 'b@h', 20, {wingmate, 10, <<"a@h">>}}, V0),
    ?assertEqual(roles(V0), roles(V1)),
    %% a promoted wingmate that is itself most senior commands
    V2 = ?V:handle({announce, 'a@h', 10, {wingmate, 99, <<"z@h">>}}, V0),
    ?assertEqual('a@h', ?V:commander(V2)),
    %% two promoted: the one ranked better (behind a: d's key sorts first) is wingmate
    V3 = run([{announce, 'd@h', 40, {wingmate, 10, <<"a@h">>}},
              {announce, 'b@h', 20, {wingmate, 15, <<"x@h">>}}], V0),
    ?assertEqual(wingmate, maps:get('d@h', ?V:roles(V3))),
    ?assertEqual(observer, maps:get('b@h', ?V:roles(V3))),
    %% the commander cannot be promoted to wingmate; relay and observer always work
    A = ?V:new('a@h', 10, 1),
    ?assertEqual({error, is_commander}, ?V:promotion(wingmate, A)),
    ?assertEqual({ok, relay}, ?V:promotion(relay, A)),
    ?assertEqual({ok, none}, ?V:promotion(observer, A)),
    ?assertEqual(relay, maps:get('a@h', ?V:roles(?V:handle({promote_self, relay}, ?V:new('a@h', 10, 2))))).

%% Every node computes the same roles from the same view, in any event order.
order_independence_test() ->
    Events = [{announce, 'a@h', 10, none}, {announce, 'b@h', 20, relay},
              {announce, 'd@h', 40, {wingmate, 10, <<"a@h">>}},
              {monitor, {status_change, 'b@h', healthy, suspect}}],
    Roles = [roles(run(Perm, ?V:new('c@h', 30, 2))) || Perm <- perms(Events)],
    ?assertEqual(1, length(lists:usort(Roles))),
    ?assertEqual([{'a@h', commander}, {'c@h', observer}, {'d@h', wingmate}], hd(Roles)).

perms([]) -> [[]];
perms(L) -> [[H | T] || H <- L, T <- perms(L -- [H])].

ignores_unknown_monitor_events_test() ->
    V = view(),
    ?assertEqual(V, ?V:handle({monitor, {something_else, 'a@h'}}, V)),
    ?assertEqual(V, ?V:handle({monitor, {status_change, 'a@h', healthy, weird}}, V)),
    ?assertEqual(V, ?V:handle({monitor, {node_up, 42}}, V)).

%% A start time of 64 bits or more (the seniority NIF takes 64) raised badarg and
%% crashed the process that got the announcement.
out_of_range_start_time_test() ->
    V = view(),
    ?assertEqual(V, ?V:handle({announce, 'e@h', 1 bsl 64, none}, V)),
    ?assertEqual(V, ?V:handle({announce, 'a@h', 1 bsl 70, relay}, V)),
    V1 = ?V:handle({announce, 'e@h', (1 bsl 64) - 1, none}, V),
    ?assertEqual(['a@h', 'b@h', 'c@h', 'd@h', 'e@h'], ?V:members(V1)).

bad_arguments_test_() ->
    [?_assertError(function_clause, ?V:new("c@h", 1, 1)),
     ?_assertError(function_clause, ?V:new('c@h', -1, 1)),
     ?_assertError(function_clause, ?V:new('c@h', 1 bsl 64, 1)),
     ?_assertError(function_clause, ?V:new('c@h', 1, -1))].

%% ------------------------------------------------------------------ topology rule

topology_rule_test_() ->
    M = fun(N, T, P) -> {N, T, P} end,
    [?_assertEqual({ok, [observer, commander, wingmate], <<"b">>},
                   ?V:seniority([M(<<"a">>, 9, false), M(<<"b">>, 1, false),
                                       M(<<"c">>, 5, false)], 1)),
     %% ties by name bytes
     ?_assertEqual({ok, [wingmate, commander], <<"a@h">>},
                   ?V:seniority([M(<<"b@h">>, 1, false), M(<<"a@h">>, 1, false)], 0)),
     %% promotion: relay, never over the commander
     ?_assertEqual({ok, [commander, relay, wingmate], <<"a">>},
                   ?V:seniority([M(<<"a">>, 1, true), M(<<"b">>, 2, true),
                                       M(<<"c">>, 3, false)], 1)),
     %% below quorum: nobody commands
     ?_assertEqual({ok, [observer, observer], none},
                   ?V:seniority([M(<<"a">>, 1, false), M(<<"b">>, 2, false)], 3)),
     ?_assertEqual({ok, [], none}, ?V:seniority([], 0)),
     ?_assertEqual({error, invalid_argument},
                   ?V:seniority([M(<<"a">>, 1, false), M(<<"a">>, 2, false)], 1)),
     ?_assertEqual({error, invalid_argument}, ?V:seniority([M(<<>>, 1, false)], 1)),
     ?_assertEqual({error, too_big},
                   ?V:seniority([M(<<"x">>, 1, false) || _ <- lists:seq(1, 4097)], 1)),
     ?_assertError(badarg, ?V:seniority(not_a_list, 1)),
     ?_assertError(badarg, ?V:seniority([M(<<"a">>, 1, false) | tail], 1)),
     ?_assertError(badarg, ?V:seniority([{<<"a">>, 1}], 1)),
     ?_assertError(badarg, ?V:seniority([{a, 1, false}], 1)),
     ?_assertError(badarg, ?V:seniority([{<<"a">>, -1, false}], 1)),
     ?_assertError(badarg, ?V:seniority([{<<"a">>, 1, maybe}], 1)),
     ?_assertError(badarg, ?V:seniority([], -1))].

%% Views above NIF_TOPOLOGY_DIRTY_NODES (256) go to a dirty scheduler; same answer,
%% and a 4096-member view does not hold a normal scheduler: the call is rescheduled
%% (seen by call tracing, plexus_nif_probe; no wall clock, so machine load is moot).
topology_large_view_test() ->
    Members = [{<<"node", (integer_to_binary(I))/binary, "@h">>, 5000 - I, I rem 7 =:= 0}
               || I <- lists:seq(1, 4096)],
    {{ok, Roles, Boss}, Calls} =
        plexus_nif_probe:calls(fun() -> ?V:seniority(Members, 3) end,
                               [{topology_assign, 2}]),
    ?assertEqual([{topology_assign, rescheduled}], Calls),
    ?assertEqual(<<"node4096@h">>, Boss),
    ?assertEqual(commander, lists:last(Roles)),
    ?assertEqual(relay, lists:nth(4095, Roles)),       % 4095 = 7 * 585: promoted
    ?assertEqual(wingmate, lists:nth(4094, Roles)),
    ?assertEqual(relay, lists:nth(7, Roles)),
    %% and the probe does tell: a small view stays inline
    Small = lists:sublist(Members, 200),
    {{ok, SmallRoles, _}, SmallCalls} =
        plexus_nif_probe:calls(fun() -> ?V:seniority(Small, 3) end,
                               [{topology_assign, 2}]),
    ?assertMatch([{topology_assign, inline, _}], SmallCalls),
    ?assertEqual(200, length(SmallRoles)).
