%% @doc `plexus_leader' and `plexus_topology' across real BEAM nodes (OTP `peer',
%% 127.0.0.1 only; see plexus_test_cluster for how the nodes are run and partitioned).
%%
%% Partitions: the nodes of those cases run with `-kernel dist_auto_connect never' and
%% are connected pair by pair. `erlang:disconnect_node/1' between the two sides then
%% holds (nothing reconnects by itself, and the test node, which controls the nodes
%% over stdio, is not a bridge) until the test connects the pairs again.
-module(plexus_leader_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([five_nodes_elect_one_leader/1, leader_node_killed/1,
         minority_partition_then_heal/1, restart_keeps_hard_state/1,
         graceful_stop_hands_over/1, join_and_leave/1, restart_after_joins_keeps_membership/1,
         topology_agreement_and_failover/1]).

-define(C, plexus_test_cluster).
-define(NAME, ct_leader).

all() ->
    [five_nodes_elect_one_leader, leader_node_killed, minority_partition_then_heal,
     restart_keeps_hard_state, graceful_stop_hands_over, join_and_leave,
     restart_after_joins_keeps_membership, topology_agreement_and_failover].

suite() ->
    [{timetrap, {seconds, 90}}].

init_per_suite(Config) ->
    os:putenv("ERL_EPMD_ADDRESS", "127.0.0.1"),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(TC, Config) ->
    Dir = filename:join(?config(priv_dir, Config), atom_to_list(TC)),
    ok = filelib:ensure_path(Dir),
    [{data_dir, Dir} | Config].

end_per_testcase(_TC, _Config) ->
    ?C:stop_all().

%% Node names unique per case, so a case never waits for epmd to forget the last one.
names(Prefix, N) ->
    [list_to_atom(Prefix ++ [$_ | integer_to_list(I)]) || I <- lists:seq(1, N)].

cluster(Prefix, Mode, Config) ->
    Peers = ?C:start(names(Prefix, 5), Mode),
    [ok = ?C:mesh(Peers) || Mode =:= manual],
    ok = ?C:start_leaders(Peers, ?NAME, #{data_dir => ?config(data_dir, Config)}),
    Peers.

wait_leader(Peers) ->
    {ok, {ok, L, T}, Ms} = ?C:wait_until(fun() -> ?C:agreed_leader(Peers, ?NAME) end, 10000),
    {L, T, Ms}.

info(P) -> ?C:call(P, plexus_leader, info, [?NAME]).

split(Node, Peers) -> lists:partition(fun({_, N}) -> N =:= Node end, Peers).

%% ------------------------------------------------------------------ election

%% Five nodes that only know each other's names (auto-connect on) elect exactly one
%% leader, every node names it, and it stays in office with no further election.
five_nodes_elect_one_leader(Config) ->
    Peers = cluster("el", auto, Config),
    {L, T, Ms} = wait_leader(Peers),
    ct:pal("leader ~p in term ~p after ~p ms", [L, T, Ms]),
    [?assertEqual(N =:= L, ?C:call(P, plexus_leader, is_leader, [?NAME])) || {P, N} <- Peers],
    LeaderPid = ?C:call(hd(Peers), plexus_leader, leader, [?NAME]),
    ?assertEqual(L, node(LeaderPid)),
    [?assertEqual(LeaderPid, ?C:call(P, plexus_leader, leader, [?NAME])) || P <- Peers],
    [?assertEqual(4, ?C:call(P, plexus_leader, peer_count, [?NAME])) || P <- Peers],
    timer:sleep(1500),
    ?assertMatch({ok, L, T}, ?C:agreed_leader(Peers, ?NAME)),
    [begin
         I = info(P),
         ?assertEqual(0, maps:get(conflicts, maps:get(stats, I))),
         ?assertEqual(4, length(maps:get(present, I)))
     end || P <- Peers],
    %% the callbacks saw it: the leader once, every follower the leader's pid
    {[{LP, _}], Followers} = split(L, Peers),
    ?assertMatch([_], [x || {_, {leader, _}} <- ?C:call(LP, gen_server, call, [?NAME, events])]),
    [?assert(lists:member({follower, LeaderPid},
                          [E || {_, E} <- ?C:call(P, gen_server, call, [?NAME, events])]))
     || {P, _} <- Followers],
    ok.

%% The leader's node halts; the survivors elect a new leader (nodedown fast path) in a
%% higher term. Twice in a row, so the second failover runs on a 4-node remainder.
leader_node_killed(Config) ->
    Peers = cluster("kl", manual, Config),
    {L1, T1, _} = wait_leader(Peers),
    {[Dead1], Rest1} = split(L1, Peers),
    T0 = ?C:now_ms(),
    ?C:stop(Dead1),
    {L2, T2, _} = wait_leader(Rest1),
    Ms1 = ?C:now_ms() - T0,
    ?assertNotEqual(L1, L2),
    ?assert(T2 > T1),
    {[Dead2], Rest2} = split(L2, Rest1),
    T3 = ?C:now_ms(),
    ?C:stop(Dead2),
    {L3, T4, _} = wait_leader(Rest2),
    Ms2 = ?C:now_ms() - T3,
    ?assert(not lists:member(L3, [L1, L2])),
    ?assert(T4 > T2),
    ct:pal("failover ~p -> ~p in ~p ms, then ~p -> ~p in ~p ms", [L1, L2, Ms1, L2, L3, Ms2]),
    %% 3 of 5 voters left: still a quorum; the survivors report the dead as left
    [?assertEqual([], [X || X = {_, N} <- maps:get(present, info(P)), N =:= L1 orelse N =:= L2])
     || P <- Rest2],
    ok.

%% Cut the leader and one follower off from the other three. The majority elects a
%% new leader; the old one steps down on its own (CheckQuorum) and the minority has no
%% leader while cut off. After the heal everyone follows the majority's leader, in the
%% majority's term: the returning nodes (PreVote) did not force another election.
minority_partition_then_heal(Config) ->
    Peers = cluster("pt", manual, Config),
    {L, T, _} = wait_leader(Peers),
    {[Old], Others} = split(L, Peers),
    [Buddy | Majority] = Others,
    Minority = [Old, Buddy],
    timer:sleep(200),
    Cut = erlang:system_time(microsecond),
    ok = ?C:partition(Minority, Majority),
    %% the cut is made link by link: on a loaded machine the majority can elect (and
    %% reach the buddy) before its last link goes, so "no term bumps" counts from here
    CutTerms = [maps:get(term, info(P)) || P <- Minority],
    {ok, {ok, M, MT}, Ms} =
        ?C:wait_until(fun() ->
                              case ?C:agreed_leader(Majority, ?NAME) of
                                  {ok, _, _} = R ->
                                      case no_leader(Minority) of
                                          true -> R;
                                          false -> false
                                      end;
                                  false -> false
                              end
                      end, 10000),
    ?assert(not lists:member(M, ?C:nodes_of(Minority))),
    ?assert(MT > T),
    %% when did the old leader step down? (its callback's timestamp)
    {OldP, _} = Old,
    [StepDown | _] = [Tm || {Tm, {follower, undefined}} <- ?C:call(OldP, gen_server, call,
                                                                  [?NAME, events]),
                            Tm > Cut],
    StepDownMs = (StepDown - Cut) / 1000,
    ct:pal("majority leader ~p (term ~p) and leaderless minority after ~p ms; old leader "
           "stepped down ~.1f ms after the cut", [M, MT, Ms, StepDownMs]),
    ?assert(StepDownMs < 1500),
    %% while cut off: the minority stays leaderless and the majority's term stays put
    [begin
         timer:sleep(100),
         ?assert(no_leader(Minority)),
         ?assertEqual({ok, M, MT}, ?C:agreed_leader(Majority, ?NAME))
     end || _ <- lists:seq(1, 10)],
    ?assertEqual(CutTerms, [maps:get(term, info(P)) || P <- Minority]), % PreVote: no bumps
    ok = ?C:heal(Minority, Majority),
    {M2, T2, HealMs} = wait_leader(Peers),
    ct:pal("after the heal all follow ~p in term ~p (~p ms)", [M2, T2, HealMs]),
    ?assertEqual({M, MT}, {M2, T2}),
    ?assertNot(?C:call(OldP, plexus_leader, is_leader, [?NAME])),
    ok.

no_leader(Group) ->
    lists:all(fun(P) ->
                      #{role := R, leader_node := LN} = info(P),
                      R =/= leader andalso LN =:= undefined
              end, Group).

%% A follower's node halts and comes back (same name, same data directory): it
%% restarts with the term and vote it had, read from its hard-state file.
restart_keeps_hard_state(Config) ->
    Peers = cluster("rs", manual, Config),
    {L, T, _} = wait_leader(Peers),
    {_, [{FP, FN} | _] = Followers} = split(L, Peers),
    #{term := T, voted_for := Voted, hard_state_file := File} = info(FP),
    ?assertEqual({ok, {T, case Voted of
                              undefined -> 0;
                              _ -> plexus_election:node_id(Voted)
                          end}},
                 ?C:call(FP, plexus_leader, read_hard_state, [File])),
    ?C:stop(FP),
    {P2, FN} = ?C:start_one(list_to_atom(hd(string:split(atom_to_list(FN), "@"))), manual),
    [true = ?C:call(P2, net_kernel, connect_node, [N]) || N <- ?C:nodes_of(Peers), N =/= FN],
    {ok, _} = ?C:start_leader(P2, ?NAME, #{data_dir => ?config(data_dir, Config),
                                           bootstrap => ?C:nodes_of(Peers)}, #{}),
    I = info(P2),
    ?assertEqual({T, Voted}, {maps:get(term, I), maps:get(voted_for, I)}),
    Peers2 = [{P2, FN} | tl(Followers)] ++ [X || X = {_, N} <- Peers, N =:= L],
    ?assertMatch({L, T, _}, wait_leader(Peers2)),
    ok.

%% Stopping the leader's process (not its node): it says goodbye, the others run the
%% fast path at once, and the stopped node's vote still counts for the quorum.
graceful_stop_hands_over(Config) ->
    Peers = cluster("gs", manual, Config),
    {L, T, _} = wait_leader(Peers),
    {[{LP, _}], Rest} = split(L, Peers),
    T0 = ?C:now_ms(),
    ok = ?C:call(LP, plexus_leader, stop, [?NAME]),
    {L2, T2, _} = wait_leader(Rest),
    ct:pal("graceful hand-over ~p -> ~p in ~p ms", [L, L2, ?C:now_ms() - T0]),
    ?assert(T2 > T),
    %% the stopped process is still a voter: 5 voters, quorum 3
    ?assertEqual(4, ?C:call(hd(Rest), plexus_leader, peer_count, [?NAME])),
    ?assertEqual(3, maps:get(quorum, info(element(1, hd(Rest))))),
    ok.

%% Growing and shrinking at run time: a sixth node starts with the full view, is
%% joined from one member and every member lists it; then it is removed again.
join_and_leave(Config) ->
    Peers = cluster("jl", manual, Config),
    {L, T, _} = wait_leader(Peers),
    [{P6, N6}] = ?C:start(names("jl6", 1), manual),
    [true = ?C:call(P6, net_kernel, connect_node, [N]) || N <- ?C:nodes_of(Peers)],
    {ok, _} = ?C:start_leader(P6, ?NAME, #{data_dir => ?config(data_dir, Config),
                                           bootstrap => [N6 | ?C:nodes_of(Peers)]}, #{}),
    {LP, _} = hd([X || X = {_, N} <- Peers, N =:= L]),
    ok = change(LP, join, N6),
    All = Peers ++ [{P6, N6}],
    {ok, _, _} = ?C:wait_until(
                   fun() ->
                           lists:all(fun(P) -> ?C:call(P, plexus_leader, peer_count, [?NAME]) =:= 5 end,
                                     All)
                   end, 5000),
    [?assert(?C:call(P, plexus_leader, has_peer, [?NAME, N6])) || P <- Peers],
    ?assertMatch({L, T, _}, wait_leader(All)),          % the join did not disturb the leader
    ?assertEqual(4, maps:get(quorum, info(LP))),        % 6 voters
    ?assertEqual({error, already_member}, change(LP, join, N6)),
    ok = change(LP, leave, N6),
    {ok, _, _} = ?C:wait_until(
                   fun() ->
                           lists:all(fun(P) -> ?C:call(P, plexus_leader, peer_count, [?NAME]) =:= 4 end,
                                     Peers)
                   end, 5000),
    ?assertEqual(3, maps:get(quorum, info(LP))),
    ?assertEqual({error, not_found}, change(LP, leave, N6)),
    ?assertMatch({L, T, _}, wait_leader(Peers)),
    ok.

%% join/2 or leave/2 on the leader, again while the previous change is not yet reported
%% by a majority (one change at a time: a few heartbeats).
change(P, Op, Node) ->
    {ok, R, _} = ?C:wait_until(fun() ->
                                       case ?C:call(P, plexus_leader, Op, [?NAME, Node]) of
                                           {error, {change_in_progress, _}} -> false;
                                           R -> R
                                       end
                               end, 5000),
    R.

%% Issue 8, the QA scenario: a 3-node bootstrap grows to 5 by join/2; one member's
%% process restarts the way a supervisor restarts it, with its original `bootstrap'
%% (3 voters); then it and one other are cut off from the other three. Before the fix
%% it counted a quorum of 2 of its 3 bootstrap voters and led with 2 votes while the
%% three elected a leader of their own, in the same term. Now it comes back with the
%% saved 5 voters: the two have no leader, and no term ever has two.
restart_after_joins_keeps_membership(Config) ->
    Opts = #{data_dir => ?config(data_dir, Config)},
    Boot3 = ?C:start(names("elqa", 3), manual),
    ok = ?C:mesh(Boot3),
    ok = ?C:start_leaders(Boot3, ?NAME, Opts),
    {L, _, _} = wait_leader(Boot3),
    {[{LP, _}], _} = split(L, Boot3),
    Joiners = ?C:start(names("elqa_j", 2), manual),
    All = Boot3 ++ Joiners,
    ok = ?C:mesh(All),
    [{ok, _} = ?C:start_leader(P, ?NAME, Opts#{bootstrap => ?C:nodes_of(All)}, #{})
     || P <- Joiners],
    [ok = change(LP, join, N) || {_, N} <- Joiners],
    {ok, _, _} = ?C:wait_until(
                   fun() ->
                           lists:all(fun(P) -> maps:get(quorum, info(P)) =:= 3 end, All)
                   end, 5000),
    %% a member of the bootstrap that does not lead restarts with its bootstrap option
    {_, [Restarted = {RP, _} | _]} = split(L, Boot3),
    ok = ?C:call(RP, plexus_leader, stop, [?NAME]),
    {ok, _} = ?C:start_leader(RP, ?NAME, Opts#{bootstrap => ?C:nodes_of(Boot3)}, #{}),
    ?assertMatch(#{quorum := 3, members := [_, _, _, _, _]}, info(RP)),
    %% cut it and a follower off from the rest (the leader stays with the majority, so
    %% no leader of the minority is a deposed one lingering until CheckQuorum)
    {L2, _, _} = wait_leader(All),
    [Buddy | _] = [X || X = {_, N} <- All, X =/= Restarted, N =/= L2],
    Minority = [Restarted, Buddy],
    Majority = All -- Minority,
    ok = ?C:partition(Minority, Majority),
    Seen = watch_leaders(All, 60, #{}),
    ct:pal("leaders by term while partitioned: ~p", [Seen]),
    [?assertMatch({_, [_]}, {T, Ls}) || {T, Ls} <- maps:to_list(Seen)],
    ?assertEqual([], [X || {X, _} <- lists:usort(lists:append(maps:values(Seen))),
                           lists:member(X, ?C:nodes_of(Minority))]),
    {M, _, _} = wait_leader(Majority),
    ?assert(lists:member(M, ?C:nodes_of(Majority))),
    ok.

%% Samples every node's role `Rounds' times, 50 ms apart; returns the leaders seen in
%% each term (node and the term it led).
watch_leaders(_All, 0, Seen) ->
    maps:map(fun(_, Ls) -> lists:usort(Ls) end, Seen);
watch_leaders(All, Rounds, Seen) ->
    Seen1 = lists:foldl(fun({N, #{role := leader, term := T}}, Acc) ->
                                maps:update_with(T, fun(Ls) -> [{N, T} | Ls] end,
                                                 [{N, T}], Acc);
                           (_, Acc) -> Acc
                        end, Seen, ?C:infos(All, ?NAME)),
    timer:sleep(50),
    watch_leaders(All, Rounds - 1, Seen1).

%% ------------------------------------------------------------------ topology

%% Every node computes the same roles from the same view; the most senior node
%% commands. When it goes down the wingmate takes over, everywhere. A promotion made
%% on one node is seen on all of them.
topology_agreement_and_failover(_Config) ->
    Peers = ?C:start(names("tp", 5), manual),
    ok = ?C:mesh(Peers),
    %% seniority by explicit start time: tp_1 oldest, tp_2 next, ...
    [{ok, _} = ?C:call(P, plexus_topology, start, [#{start_time => 1000 + I, quorum_size => 3}])
     || {I, {P, _}} <- lists:zip(lists:seq(1, 5), Peers)],
    [N1, N2, N3, N4, N5] = ?C:nodes_of(Peers),
    Expect = lists:sort([{N1, commander}, {N2, wingmate}, {N3, observer}, {N4, observer},
                         {N5, observer}]),
    {ok, _, Ms} = ?C:wait_until(fun() -> views(Peers) =:= [Expect] end, 5000),
    ct:pal("5 nodes agree on ~p after ~p ms", [Expect, Ms]),
    [?assertEqual({ok, N1}, ?C:call(P, plexus_topology, get_commander, [])) || P <- Peers],
    [?assertEqual(5, ?C:call(P, plexus_topology, node_count, [])) || P <- Peers],
    ?assertEqual(commander, ?C:call(hd(Peers), plexus_topology, get_role, [])),
    %% promote tp_2 (the wingmate) to relay from tp_5: tp_3 becomes wingmate
    {P5, _} = lists:last(Peers),
    ok = ?C:call(P5, plexus_topology, promote, [N2, relay]),
    Promoted = lists:sort([{N1, commander}, {N2, relay}, {N3, wingmate}, {N4, observer},
                           {N5, observer}]),
    {ok, _, _} = ?C:wait_until(fun() -> views(Peers) =:= [Promoted] end, 5000),
    ?assertEqual({error, {not_assignable, commander}},
                 ?C:call(P5, plexus_topology, promote, [N4, commander])),
    %% the commander's node goes down: seniority picks the commander before promotion
    %% counts, so tp_2 commands (relay no more) and tp_3 stands by, on every node
    ?C:stop(hd(Peers)),
    Rest = tl(Peers),
    After = lists:sort([{N2, commander}, {N3, wingmate}, {N4, observer}, {N5, observer}]),
    {ok, _, Ms2} = ?C:wait_until(fun() -> views(Rest) =:= [After] end, 5000),
    ct:pal("commander failover to ~p after ~p ms", [N2, Ms2]),
    %% below quorum (3): no commander
    ?C:stop(lists:sublist(Rest, 2)),
    Last = lists:nthtail(2, Rest),
    {ok, _, _} = ?C:wait_until(
                   fun() ->
                           lists:all(fun(P) -> ?C:call(P, plexus_topology, get_commander, []) =:=
                                                   {error, no_commander} end, Last)
                   end, 5000),
    ok.

views(Peers) ->
    lists:usort([?C:call(P, plexus_topology, list_nodes, []) || P <- Peers]).
