%% @doc EUnit tests of `plexus_election' (the NIF over the C election core) and of
%% the topology rule: config validation, the driver contract (ready batches), a small
%% in-memory network routing real wire binaries, every error path and `badarg'.
-module(plexus_election_tests).

-include_lib("eunit/include/eunit.hrl").

-define(E, plexus_election).

new(Id, Peers) -> new(Id, Peers, #{}).
new(Id, Peers, Extra) ->
    {ok, E} = ?E:new(maps:merge(#{id => Id, peers => Peers, hard_state => {0, 0},
                                  cluster_id => 7}, Extra)),
    E.

msg(Type, From, To, Term) ->
    ?E:encode_msg(#{type => Type, reject => false, cluster_id => 7, from => From, to => To,
                    term => Term}).

%% ------------------------------------------------------------------ config

new_defaults_test() ->
    {ok, E} = ?E:new(#{id => 1, hard_state => {0, 0}}),
    #{id := 1, role := follower, term := 0, voted_for := 0, leader := 0, peers := [],
      quorum := 1, sit_out_left := 0, cluster_id := 0, stats := Stats} = ?E:info(E),
    ?assertEqual(0, maps:get(elections, Stats)),
    ?assertEqual(follower, ?E:role(E)),
    ?assertEqual({0, 0}, ?E:hard_state(E)).

new_restores_hard_state_test() ->
    E = new(1, [2, 3], #{hard_state => {9, 2}}),
    ?assertEqual({9, 2}, ?E:hard_state(E)),
    ?assertEqual(9, ?E:term(E)),
    ?assertEqual([2, 3], lists:sort(?E:peers(E))).

new_without_hard_state_sits_out_test() ->
    E = new(1, [2, 3], #{hard_state => none, election_max_ticks => 30}),
    ?assertEqual(30, maps:get(sit_out_left, ?E:info(E))),
    %% it refuses to campaign while sitting out
    ?assertEqual({error, bad_state}, ?E:campaign(E)).

new_invalid_config_test_() ->
    Base = #{id => 1, hard_state => {0, 0}},
    [?_assertEqual({error, invalid_argument}, ?E:new(Base#{id => 0})),
     ?_assertEqual({error, invalid_argument},
                   ?E:new(Base#{election_min_ticks => 30, election_max_ticks => 30})),
     ?_assertEqual({error, invalid_argument},
                   ?E:new(Base#{heartbeat_ticks => 15, election_min_ticks => 15})),
     ?_assertEqual({error, invalid_argument}, ?E:new(Base#{heartbeat_ticks => 0})),
     ?_assertEqual({error, invalid_argument}, ?E:new(Base#{peers => [2, 2]})),
     ?_assertEqual({error, invalid_argument}, ?E:new(Base#{peers => [0]})),
     ?_assertEqual({error, invalid_argument}, ?E:new(Base#{hard_state => {0, 3}})),
     ?_assertEqual({error, invalid_argument}, ?E:new(Base#{hard_state => {1 bsl 63, 0}})),
     ?_assertEqual({error, full}, ?E:new(Base#{peers => lists:seq(2, 65)})),
     ?_assertEqual({error, full}, ?E:new(Base#{peers => lists:seq(2, 1000)})),
     %% self in the list is skipped: 63 others fit
     ?_assertMatch({ok, _}, ?E:new(Base#{peers => lists:seq(1, 64)}))].

new_badarg_test_() ->
    Base = #{id => 1, hard_state => {0, 0}},
    [?_assertError(badarg, ?E:new(not_a_map)),
     ?_assertError(badarg, ?E:new(#{id => 1})),                       % no hard_state
     ?_assertError(badarg, ?E:new(#{hard_state => {0, 0}})),          % no id
     ?_assertError(badarg, ?E:new(Base#{id => -1})),
     ?_assertError(badarg, ?E:new(Base#{id => 1 bsl 64})),
     ?_assertError(badarg, ?E:new(Base#{id => foo})),
     ?_assertError(badarg, ?E:new(Base#{peers => [2 | 3]})),
     ?_assertError(badarg, ?E:new(Base#{peers => [a]})),
     ?_assertError(badarg, ?E:new(Base#{peers => not_a_list})),
     ?_assertError(badarg, ?E:new(Base#{pre_vote => yes})),
     ?_assertError(badarg, ?E:new(Base#{check_quorum => 1})),
     ?_assertError(badarg, ?E:new(Base#{election_min_ticks => 1 bsl 40})),
     ?_assertError(badarg, ?E:new(Base#{cluster_id => -5})),
     ?_assertError(badarg, ?E:new(Base#{hard_state => {1, 2, 3}})),
     ?_assertError(badarg, ?E:new(Base#{hard_state => lost}))].

input_badarg_test_() ->
    E = new(1, [2]),
    NotE = make_ref(),
    [?_assertError(badarg, ?E:tick(NotE)),
     ?_assertError(badarg, ?E:tick(<<"x">>)),
     ?_assertError(badarg, ?E:step(E, not_binary)),
     ?_assertError(badarg, ?E:step(NotE, <<>>)),
     ?_assertError(badarg, ?E:peer_down(E, 0)),
     ?_assertError(badarg, ?E:peer_down(E, -1)),
     ?_assertError(badarg, ?E:forget_leader(E, x)),
     ?_assertError(badarg, ?E:campaign(NotE)),
     ?_assertError(badarg, ?E:add_peer(E, 0)),
     ?_assertError(badarg, ?E:remove_peer(E, 1 bsl 64)),
     ?_assertError(badarg, ?E:info(NotE)),
     ?_assertError(badarg, ?E:decode_msg(123)),
     ?_assertError(badarg, ?E:encode_msg(#{type => nonsense, reject => false, cluster_id => 0,
                                           from => 1, to => 2, term => 0})),
     ?_assertError(badarg, ?E:encode_msg(#{type => vote})),
     ?_assertError(badarg, ?E:node_id(123))].

%% ------------------------------------------------------------------ one node

single_node_elects_itself_test() ->
    E = new(1, []),
    Batches = [?E:tick(E) || _ <- lists:seq(1, 30)],
    Changed = [B || B <- Batches, B =/= {[], unchanged, unchanged}],
    %% one batch: term 1, voted for itself, leader, no messages (no peers)
    ?assertEqual([{[], {1, 1}, {leader, 1}}], Changed),
    ?assertEqual(leader, ?E:role(E)),
    ?assertEqual({error, bad_state}, ?E:campaign(E)).

randomized_timeout_within_range_test() ->
    %% a follower of a 3-node cluster campaigns after between min and max ticks
    Firsts = [begin
                  E = new(1, [2, 3]),
                  first_campaign(E, 1)
              end || _ <- lists:seq(1, 40)],
    ?assert(lists:min(Firsts) >= 15),
    ?assert(lists:max(Firsts) < 30),
    ?assert(length(lists:usort(Firsts)) > 3).           % seeded per machine: spread

first_campaign(E, N) ->
    case ?E:tick(E) of
        {[_ | _], _, {pre_candidate, 0}} -> N;
        _ when N > 100 -> error(never);
        _ -> first_campaign(E, N + 1)
    end.

%% ------------------------------------------------------------------ a small network

%% Delivers every message (as its wire binary) until the network is quiet; records
%% the hard state each node would have written before sending.
run(Nodes, Queue0) ->
    run(Nodes, Queue0, #{}).

run(_Nodes, [], Disk) ->
    Disk;
run(Nodes, [{_From, To, _Bin} | Rest], Disk) when not is_map_key(To, Nodes) ->
    run(Nodes, Rest, Disk);                                 % a dead node: lost
run(Nodes, [{_From, To, Bin} | Rest], Disk) ->
    E = maps:get(To, Nodes),
    {Out, Disk1} = case ?E:step(E, Bin) of
                       {error, _} -> {[], Disk};
                       Ready -> collect(To, Ready, Disk)
                   end,
    run(Nodes, Rest ++ Out, Disk1).

collect(Id, {Msgs, Hard, _Soft}, Disk) ->
    Disk1 = case Hard of
                unchanged -> Disk;
                H -> Disk#{Id => H}
            end,
    {[{Id, To, Bin} || {To, Bin} <- Msgs], Disk1}.

three_nodes_elect_one_leader_test() ->
    Nodes = maps:from_list([{I, new(I, [1, 2, 3])} || I <- [1, 2, 3]]),
    {Out, Disk0} = collect(1, ?E:campaign(maps:get(1, Nodes)), #{}),
    ?assertEqual(2, length(Out)),                            % pre-votes to 2 and 3
    Disk = run(Nodes, Out, Disk0),
    Roles = [{I, ?E:role(E)} || {I, E} <- lists:sort(maps:to_list(Nodes))],
    ?assertEqual([{1, leader}, {2, follower}, {3, follower}], Roles),
    [?assertEqual(1, ?E:term(E)) || E <- maps:values(Nodes)],
    [?assertEqual(1, ?E:leader(E)) || E <- maps:values(Nodes)],
    %% every vote was persisted: the candidate voted for itself, the others for it
    ?assertEqual({1, 1}, maps:get(1, Disk)),
    ?assert(lists:member(maps:get(2, Disk), [{1, 1}])),
    %% the leader's node dies: a follower forgets it and campaigns, the other grants
    {[], unchanged, {follower, 0}} = ?E:forget_leader(maps:get(3, Nodes), 1),
    {Out2, _} = collect(2, ?E:peer_down(maps:get(2, Nodes), 1), #{}),
    Quiet = maps:remove(1, Nodes),
    _ = run(Quiet, Out2),
    ?assertEqual(leader, ?E:role(maps:get(2, Nodes))),
    ?assertEqual(2, ?E:term(maps:get(2, Nodes))),
    ?assertEqual(1, maps:get(fast_path, maps:get(stats, ?E:info(maps:get(2, Nodes))))).

restart_keeps_vote_test() ->
    %% node 1 voted for 2 in term 5 and restarts from that hard state: it refuses 3
    E = new(1, [2, 3]),
    {[{2, Grant}], {5, 2}, _} = ?E:step(E, msg(vote, 2, 1, 5)),
    ?assertMatch({ok, #{type := vote_resp, reject := false, term := 5}}, ?E:decode_msg(Grant)),
    E2 = new(1, [2, 3], #{hard_state => ?E:hard_state(E)}),
    {[{3, Refusal}], unchanged, unchanged} = ?E:step(E2, msg(vote, 3, 1, 5)),
    ?assertMatch({ok, #{type := vote_resp, reject := true}}, ?E:decode_msg(Refusal)),
    ?assertEqual({5, 2}, ?E:hard_state(E2)).

higher_term_steps_leader_down_test() ->
    E = new(1, []),
    {[], {1, 1}, {leader, 1}} = ?E:campaign(E),
    {ok, _} = {ok, ?E:add_peer(E, 2)},
    {[{2, _}], {4, 0}, {follower, 2}} = ?E:step(E, msg(heartbeat, 2, 1, 4)),
    ?assertEqual(follower, ?E:role(E)).

%% ------------------------------------------------------------------ errors

step_errors_test_() ->
    E = new(1, [2, 3]),
    Other = ?E:encode_msg(#{type => heartbeat, reject => false, cluster_id => 8, from => 2,
                            to => 1, term => 1}),
    [?_assertEqual({error, truncated}, ?E:step(E, <<>>)),
     ?_assertEqual({error, bad_version}, ?E:step(E, <<9, 1, 0>>)),
     ?_assertEqual({error, wrong_type}, ?E:step(E, <<1, 99, 0>>)),
     ?_assertEqual({error, invalid_argument}, ?E:step(E, <<1, 1, 2, 0, 1, 2, 0>>)),
     ?_assertEqual({error, trailing_bytes}, ?E:step(E, <<(msg(vote, 2, 1, 1))/binary, 0>>)),
     ?_assertEqual({error, bad_varint}, ?E:step(E, <<1, 1, 0, 128, 0, 1, 2, 0>>)),
     ?_assertEqual({error, wrong_cluster}, ?E:step(E, Other)),
     ?_assertEqual({error, not_found}, ?E:step(E, msg(vote, 9, 1, 1))),
     ?_assertEqual({error, invalid_argument}, ?E:step(E, msg(vote, 2, 3, 1))),
     ?_assertEqual(1, maps:get(wrong_cluster, maps:get(stats, ?E:info(E))))].

conflicting_leader_is_refused_test() ->
    E = new(1, [2, 3]),
    {_, _, {follower, 2}} = ?E:step(E, msg(heartbeat, 2, 1, 3)),
    ?assertEqual({error, bad_state}, ?E:step(E, msg(heartbeat, 3, 1, 3))),
    ?assertEqual(1, maps:get(conflicts, maps:get(stats, ?E:info(E)))).

membership_errors_test() ->
    E = new(1, [2]),
    ?assertEqual({error, invalid_argument}, ?E:add_peer(E, 1)),
    ?assertEqual({error, invalid_argument}, ?E:remove_peer(E, 1)),
    ?assertEqual({error, not_found}, ?E:remove_peer(E, 5)),
    ?assertEqual({error, not_found}, ?E:peer_down(E, 5)),
    ?assertEqual({error, invalid_argument}, ?E:peer_down(E, 1)),
    ?assertEqual({error, not_found}, ?E:forget_leader(E, 5)),
    ?assertEqual({[], unchanged, unchanged}, ?E:add_peer(E, 2)),   % already a peer
    [?assertMatch({[], _, _}, ?E:add_peer(E, I)) || I <- lists:seq(3, 64)],
    ?assertEqual({error, full}, ?E:add_peer(E, 65)),
    ?assertEqual(33, maps:get(quorum, ?E:info(E))),
    ?assertMatch({[], _, _}, ?E:remove_peer(E, 64)),
    ?assertEqual(32, maps:get(quorum, ?E:info(E))).

%% ------------------------------------------------------------------ codec and ids

codec_roundtrip_test() ->
    [begin
         M = #{type => T, reject => R, cluster_id => C, from => 1, to => 1 bsl 63, term => Tm},
         Bin = ?E:encode_msg(M),
         ?assertEqual({ok, M}, ?E:decode_msg(Bin))
     end || T <- [pre_vote_resp, vote_resp, heartbeat_resp], R <- [true, false],
            C <- [0, 1 bsl 64 - 1], Tm <- [0, 1 bsl 63 - 1]],
    ?assertEqual({error, invalid_argument},
                 ?E:encode_msg(#{type => vote, reject => true, cluster_id => 0, from => 1,
                                 to => 2, term => 0})),
    ?assertEqual({error, invalid_argument},
                 ?E:encode_msg(#{type => vote, reject => false, cluster_id => 0, from => 1,
                                 to => 1, term => 0})).

decode_never_crashes_test() ->
    rand:seed(exsss, {1, 2, 3}),
    [case ?E:decode_msg(crypto_free_bytes(rand:uniform(40))) of
         {ok, #{}} -> ok;
         {error, R} when is_atom(R) -> ok
     end || _ <- lists:seq(1, 5000)].

crypto_free_bytes(N) -> << <<(rand:uniform(256) - 1)>> || _ <- lists:seq(1, N) >>.

node_id_test() ->
    A = ?E:node_id('a@127.0.0.1'),
    ?assertEqual(A, ?E:node_id(<<"a@127.0.0.1">>)),
    ?assertNotEqual(A, ?E:node_id('b@127.0.0.1')),
    ?assert(A > 0 andalso A < 1 bsl 64).

cluster_key_test() ->
    ?assertEqual(5, ?E:cluster_key(5)),
    ?assertEqual(?E:cluster_key({my, "cluster"}), ?E:cluster_key({my, "cluster"})),
    ?assertNotEqual(?E:cluster_key(a), ?E:cluster_key(b)),
    K = ?E:cluster_key(-1),
    ?assert(K >= 0 andalso K < 1 bsl 64).
