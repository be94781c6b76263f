%% @doc EUnit tests of `plexus_leader_policy', the pure part of `plexus_leader': events
%% in, effects out, no process, no file, no distribution. This node is `p1@h' here
%% (never `node()'), the connected set and the clock are given with each event.
-module(plexus_leader_policy_tests).

-include_lib("eunit/include/eunit.hrl").

-define(P, plexus_leader_policy).
-define(CID, 42).
-define(HB_TICKS, 2).
-define(STAGGER, 25).

%% ------------------------------------------------------------------ helpers

%% A policy for `Self' with the voters `Members' (membership version 0), the term and
%% vote `Hard'.
policy(Self, Members) -> policy(Self, Members, {0, 0}).
policy(Self, Members, Hard) ->
    ?P:new(#{name => el, self_node => Self, hard => Hard,
             config => {0, 0, lists:usort([Self | Members])},
             machine_cfg => #{id => plexus_election:node_id(Self), cluster_id => ?CID,
                              election_min_ticks => 10, election_max_ticks => 20,
                              heartbeat_ticks => ?HB_TICKS, pre_vote => false,
                              check_quorum => false},
             hb_ticks => ?HB_TICKS, peer_timeout => 100, stagger_ms => ?STAGGER}).

ctx() -> ctx(0, []).
ctx(Now, Connected) -> #{now => Now, connected => Connected}.

%% A pid on `Node' (NEW_PID_EXT): only its node matters to the policy.
pid(Node) ->
    N = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 88, 119, (byte_size(N)), N/binary, 7:32, 0:32, 1:32>>).

%% An election message from `From' to `To'.
wire(Type, From, To, Term) ->
    plexus_election:encode_msg(#{type => Type, reject => false, cluster_id => ?CID,
                                 from => plexus_election:node_id(From),
                                 to => plexus_election:node_id(To), term => Term}).

%% `Payload' from `From''s process, delivered at `Now'.
from(From, Payload, PS) -> from(From, Payload, 0, PS).
from(From, Payload, Now, PS) ->
    ?P:handle({peer, From, pid(From), Payload}, ctx(Now, []), PS).

kinds(Effects) -> [element(1, E) || E <- Effects].

callbacks(Effects) -> [{F, A} || {callback, F, A} <- Effects].

sends(Effects) -> [{N, M} || {send, N, M} <- Effects].

%% Ticks until the machine campaigns (it cannot win alone), then grants it `Voter''s
%% vote; returns the leader and its term.
lead(PS0, Voter) ->
    PS1 = tick_until(fun(PS) -> maps:get(role, ?P:view(PS)) =:= candidate end, PS0, 100),
    #{term := T} = ?P:view(PS1),
    {PS2, _} = from(Voter, {msg, {0, 0}, wire(vote_resp, Voter, self_of(PS1), T)}, PS1),
    ?assertMatch(#{role := leader}, ?P:view(PS2)),
    {PS2, T}.

tick_until(_, _, 0) -> error(never);
tick_until(F, PS, N) ->
    case F(PS) of
        true -> PS;
        false -> {PS1, _} = ?P:handle(tick, ctx(), PS), tick_until(F, PS1, N - 1)
    end.

self_of(PS) -> hd(?P:member_nodes(PS) -- ?P:peer_nodes(PS)).

%% ------------------------------------------------------------------ start, stop

announce_and_goodbye_test() ->
    PS = policy('p1@h', ['p2@h', 'p3@h']),
    {_, Hello} = ?P:handle(announce, ctx(), PS),
    ?assertEqual([{send, 'p2@h', {alive, {0, 0}}}, {send, 'p3@h', {alive, {0, 0}}}],
                 lists:sort(Hello)),
    {_, Bye} = ?P:handle(goodbye, ctx(), PS),
    ?assertEqual([{send, 'p2@h', down}, {send, 'p3@h', down}], lists:sort(Bye)).

id_collision_at_start_test() ->
    %% the machine's id is p2's: p2 and this node collide
    ?assertThrow({id_collision, 'p2@h', 'p1@h'},
                 ?P:new(#{name => el, self_node => 'p1@h', hard => {0, 0},
                          config => {0, 0, ['p1@h', 'p2@h']},
                          machine_cfg => #{id => plexus_election:node_id('p2@h'),
                                           cluster_id => ?CID},
                          hb_ticks => 1, peer_timeout => 1, stagger_ms => 1})).

%% ------------------------------------------------------------------ effect order

%% The promise the runner keeps by running the list in order: the vote is on disk
%% before the answer that depends on it leaves, and callbacks come last.
persist_before_send_test() ->
    PS = policy('p1@h', ['p2@h', 'p3@h']),
    Vote = wire(vote, 'p2@h', 'p1@h', 5),
    {PS1, Effects} = from('p2@h', {msg, {0, 0}, Vote}, PS),
    P2 = plexus_election:node_id('p2@h'),
    ?assertMatch([{persist, {5, P2}, {0, 0, ['p1@h', 'p2@h', 'p3@h']}},
                  {send, 'p2@h', {msg, {0, 0}, _}} | _], Effects),
    ?assertEqual([{handle_peer_joined, [{el, 'p2@h'}]}, {handle_term_changed, [0, 5]}],
                 callbacks(Effects)),
    ?assertEqual([persist, send, callback, callback], kinds(Effects)),
    ?assert(in_runner_order(kinds(Effects))),
    #{voted_for := 'p2@h', term := 5} = ?P:info(PS1).

%% An event that saves twice (a leader's membership change: the membership, then the
%% machine's state) yields one persist, the last, first.
one_persist_per_event_test() ->
    {PS0, T} = lead(policy('p1@h', ['p2@h', 'p3@h']), 'p2@h'),
    {PS1, Effects} = ?P:handle(tick, ctx(), PS0),          % rule 2: restamp
    ?assertMatch([{persist, {T, _}, {1, T, ['p1@h', 'p2@h', 'p3@h']}} | _], Effects),
    ?assertEqual(1, length([x || {persist, _, _} <- Effects])),
    ?assertEqual({T, 1}, ?P:key(PS1)),
    ?assert(in_runner_order(kinds(Effects))).

%% At most one persist, first; then the sends; then the rest.
in_runner_order([persist | Rest]) -> in_runner_order(Rest);
in_runner_order([send | Rest]) -> in_runner_order(Rest);
in_runner_order(Rest) -> not lists:member(persist, Rest) andalso not lists:member(send, Rest).

%% ------------------------------------------------------------------ presence

presence_test() ->
    PS = policy('p1@h', ['p2@h', 'p3@h']),
    {PS1, E1} = from('p3@h', {alive, {0, 0}}, 10, PS),
    ?assertEqual([{handle_peer_joined, [{el, 'p3@h'}]}], callbacks(E1)),
    ?assertEqual(['p3@h'], maps:get(present_nodes, ?P:info(PS1))),
    %% heard again: nothing to report
    {PS2, E2} = from('p3@h', {alive, {0, 0}}, 50, PS1),
    ?assertEqual([], callbacks(E2)),
    %% silent for peer_timeout (100 ms): left, at the first tick after it
    {PS3, E3} = ?P:handle(tick, ctx(150, []), PS2),
    ?assertEqual([], callbacks(E3)),
    {PS4, E4} = ?P:handle(tick, ctx(151, []), PS3),
    ?assertEqual([{handle_peer_left, [{el, 'p3@h'}]}], callbacks(E4)),
    ?assertEqual([], maps:get(present_nodes, ?P:info(PS4))),
    %% still a voter
    ?assertEqual(['p2@h', 'p3@h'], ?P:peer_nodes(PS4)).

nodedown_of_present_peer_test() ->
    {PS1, _} = from('p2@h', {alive, {0, 0}}, policy('p1@h', ['p2@h', 'p3@h'])),
    {_, E} = ?P:handle({nodedown, 'p2@h'}, ctx(), PS1),
    ?assertEqual([{handle_peer_left, [{el, 'p2@h'}]}], callbacks(E)),
    %% a node that is not a voter: nothing
    ?assertMatch({_, []}, ?P:handle({nodedown, 'x@h'}, ctx(), PS1)),
    ?assertMatch({_, [{send, 'p2@h', {alive, _}}]}, ?P:handle({nodeup, 'p2@h'}, ctx(), PS1)),
    ?assertMatch({_, []}, ?P:handle({nodeup, 'x@h'}, ctx(), PS1)).

%% ------------------------------------------------------------------ staggered fast path

%% Four voters sorted by id; this node is the one with the highest id and follows
%% `Leader', the lowest: its rank among the live voters decides when it campaigns.
rank_setup() ->
    [Leader, A, B, Self] = lists:sort(fun(X, Y) -> plexus_election:node_id(X) =<
                                                       plexus_election:node_id(Y) end,
                                      ['a@h', 'b@h', 'c@h', 'd@h']),
    PS = policy(Self, [Leader, A, B]),
    {PS1, _} = from(Leader, {msg, {0, 0}, wire(heartbeat, Leader, Self, 3)}, PS),
    ?assertMatch(#{role := follower, leader_node := Leader}, ?P:info(PS1)),
    {Leader, A, B, PS1}.

stagger_rank_all_connected_test() ->
    {Leader, A, B, PS} = rank_setup(),
    %% two live voters below it: it waits two staggers
    {PS1, E} = ?P:handle({nodedown, Leader}, ctx(0, [A, B]), PS),
    ?assertEqual([{timer, 2 * ?STAGGER, {fast_campaign, 3}}], [X || X = {timer, _, _} <- E]),
    ?assertMatch(#{role := follower, leader := undefined}, ?P:view(PS1)),
    %% the timer fires with nothing new: it campaigns
    {PS2, E2} = ?P:handle({fast_campaign, 3}, ctx(), PS1),
    ?assertMatch([{persist, {4, _}, _} | _], E2),
    ?assertMatch(#{role := candidate, term := 4,
                   stats := #{fast_campaigns := 1}}, ?P:info(PS2)),
    %% a stale timer (a newer term meanwhile) does nothing
    ?assertMatch({_, []}, ?P:handle({fast_campaign, 3}, ctx(), PS2)).

stagger_rank_some_connected_test() ->
    {Leader, A, _B, PS} = rank_setup(),
    {_, E} = ?P:handle({nodedown, Leader}, ctx(0, [A]), PS),
    ?assertEqual([{timer, ?STAGGER, {fast_campaign, 3}}], [X || X = {timer, _, _} <- E]).

stagger_rank_first_campaigns_at_once_test() ->
    {Leader, _A, _B, PS} = rank_setup(),
    %% nobody else connected: rank 0, it campaigns in this very event
    {PS1, E} = ?P:handle({nodedown, Leader}, ctx(0, []), PS),
    ?assertEqual([], [X || X = {timer, _, _} <- E]),
    ?assertMatch([{persist, {4, _}, _} | _], E),
    ?assertMatch(#{role := candidate, stats := #{fast_campaigns := 1}}, ?P:info(PS1)).

goodbye_of_a_follower_is_not_fast_path_test() ->
    {Leader, A, B, PS} = rank_setup(),
    {_, E} = ?P:handle({nodedown, A}, ctx(0, [Leader, B]), PS),
    ?assertEqual([], [X || X = {timer, _, _} <- E]).

%% ------------------------------------------------------------------ membership

adopt_newer_membership_test() ->
    PS = policy('p1@h', ['p2@h', 'p3@h']),
    New = ['p1@h', 'p2@h', 'p3@h', 'p4@h'],
    {PS1, E} = from('p2@h', {config, {0, 1}, New}, PS),
    ?assertMatch([{persist, {0, 0}, {1, 0, New}} | _], E),
    ?assertEqual(New, ?P:member_nodes(PS1)),
    ?assertEqual({0, 1}, ?P:key(PS1)),
    %% reported to every voter at once, the new one included
    ?assert(lists:member({'p4@h', {alive, {0, 1}}}, sends(E))),
    ?assert(lists:member({'p3@h', {alive, {0, 1}}}, sends(E))),
    %% older, equal, not naming this node, malformed: not adopted, nothing done
    [?assertMatch({_, []}, from('p2@h', {config, K, M}, PS1))
     || {K, M} <- [{{0, 0}, New}, {{0, 1}, ['p1@h']}, {{0, 2}, ['p2@h', 'p3@h']},
                   {{0, -1}, New}, {7, New}, {{0, 2}, ["p1@h"]},
                   {{0, 2}, ['p1@h' | 'p2@h']}, {{0, 2}, ['p2@h', 'p1@h' | 'p3@h']},
                   {{0, 2}, ['p1@h' | lists:seq(1, 100)]}]],
    %% the same from a node that is not a voter (an improper list crashed both)
    ?assertMatch({_, []}, from('p9@h', {config, {0, 2}, ['p1@h' | 'p9@h']}, PS1)),
    %% a peer reporting an older key is sent ours
    {_, E2} = from('p3@h', {alive, {0, 0}}, PS1),
    ?assert(lists:member({'p3@h', {config, {0, 1}, New}}, sends(E2))).

adopt_from_stranger_and_later_term_test() ->
    PS = policy('p1@h', ['p2@h']),
    %% from a node that is not a voter here, naming this node: adopted, and made in
    %% a later term it moves this node to that term first, without a vote
    {PS1, E} = from('p9@h', {config, {6, 1}, ['p1@h', 'p9@h']}, PS),
    ?assertMatch([{persist, {6, 0}, {1, 6, ['p1@h', 'p9@h']}} | _], E),
    ?assertEqual([{handle_term_changed, [0, 6]}], callbacks(E)),
    ?assertMatch(#{term := 6, voted_for := undefined, role := follower,
                   members := ['p1@h', 'p9@h']}, ?P:info(PS1)).

%% Keys the machine or the file cannot hold: a term above the machine's maximum
%% crashed the process (badmatch on {error, invalid_argument}, badarg from 2^64 up),
%% and a version of 2^64 or more was used here and written cut to 64 bits.
out_of_range_keys_test() ->
    PS = policy('p1@h', ['p2@h', 'p3@h'], {3, 0}),
    Members = ['p1@h', 'p2@h', 'p3@h'],
    [begin
         {PS1, E} = from(From, {config, K, Members}, PS),
         ?assertEqual({[], {0, 0}}, {[X || X = {persist, _, _} <- E], ?P:key(PS1)})
     end
     || From <- ['p2@h', 'p9@h'],
        K <- [{1 bsl 63, 1}, {1 bsl 64, 1}, {1 bsl 70, 1}, {1, 1 bsl 63}, {1, 1 bsl 64}]],
    {PS1, _} = from('p2@h', {alive, {1, 1 bsl 64}}, PS),
    ?assertEqual({0, 0}, ?P:key(PS1)),
    %% the greatest key that fits is taken
    Max = (1 bsl 63) - 1,
    {PS2, [{persist, _, {Max, Max, Members}} | _]} =
        from('p2@h', {config, {Max, Max}, Members}, PS),
    ?assertEqual({Max, Max}, ?P:key(PS2)).

%% A node that lost its hard state sits out an election timeout before it votes; a
%% newer membership (which every peer sends it at once: it reports the seed key) must
%% not end that early. Before, adopting it restarted the machine from the key's term
%% and the node granted a vote in that term at once.
sitting_out_keeps_sitting_out_test() ->
    Members = ['p1@h', 'p2@h', 'p3@h'],
    PS = policy('p1@h', ['p2@h', 'p3@h'], none),
    {PS1, E1} = from('p2@h', {config, {5, 1}, Members}, PS),
    ?assertEqual([], [X || X = {persist, _, _} <- E1]),
    ?assertEqual({0, 0}, ?P:key(PS1)),
    {PS2, E2} = from('p3@h', {msg, {5, 1}, wire(vote, 'p3@h', 'p1@h', 5)}, PS1),
    ?assertEqual([true], [R || {_, {msg, _, B}} <- sends(E2),
                               {ok, #{type := vote_resp, reject := R}} <-
                                   [plexus_election:decode_msg(B)]]),
    ?assertMatch(#{voted_for := undefined}, ?P:info(PS2)),
    %% once the election timeout (20 ticks here) is over, a newer one is adopted
    PS3 = lists:foldl(fun(_, Acc) -> element(1, ?P:handle(tick, ctx(), Acc)) end, PS2,
                      lists:seq(1, 21)),
    {PS4, E4} = from('p2@h', {config, {7, 1}, Members}, PS3),
    ?assertMatch([{persist, {7, 0}, {1, 7, Members}} | _], E4),
    ?assertEqual({7, 1}, ?P:key(PS4)).

stale_candidate_gets_no_vote_test() ->
    {PS, _} = from('p2@h', {config, {0, 1}, ['p1@h', 'p2@h', 'p3@h', 'p4@h']},
                   policy('p1@h', ['p2@h', 'p3@h'])),
    {PS1, E} = from('p2@h', {msg, {0, 0}, wire(vote, 'p2@h', 'p1@h', 4)}, PS),
    ?assertEqual([], [X || X = {persist, _, _} <- E]),
    ?assertMatch(#{term := 0, stats := #{stale_config_votes := 1}}, ?P:info(PS1)),
    {PS2, _} = from('p2@h', {msg, {0, 1}, wire(vote, 'p2@h', 'p1@h', 4)}, PS1),
    ?assertMatch(#{term := 4, voted_for := 'p2@h'}, ?P:info(PS2)).

membership_change_rules_test() ->
    PS = policy('p1@h', ['p2@h', 'p3@h']),
    ?assertEqual({error, self}, ?P:membership_change({join, 'p1@h'}, PS)),
    ?assertEqual({error, not_leader}, ?P:membership_change({join, 'p4@h'}, PS)),
    ?assertMatch({_, [{reply, {error, not_leader}}]}, ?P:handle({join, 'p4@h'}, ctx(), PS)),
    {L0, T} = lead(PS, 'p2@h'),
    %% rule 2 first: its membership is of an older term
    ?assertEqual({error, {change_in_progress, {0, 0}}},
                 ?P:membership_change({join, 'p4@h'}, L0)),
    {L1, _} = ?P:handle(tick, ctx(), L0),
    %% rule 1: {T, 1} not yet reported by a majority
    ?assertEqual({error, {change_in_progress, {T, 1}}},
                 ?P:membership_change({join, 'p4@h'}, L1)),
    {L2, _} = from('p2@h', {alive, {T, 1}}, L1),
    ?assertEqual({error, already_member}, ?P:membership_change({join, 'p2@h'}, L2)),
    ?assertEqual({error, not_found}, ?P:membership_change({leave, 'p9@h'}, L2)),
    ?assertEqual({ok, ['p1@h', 'p2@h', 'p3@h', 'p4@h']},
                 ?P:membership_change({join, 'p4@h'}, L2)),
    ?assertEqual({ok, ['p1@h', 'p3@h']}, ?P:membership_change({leave, 'p2@h'}, L2)),
    %% the leader does not remove itself (it went on leading, a voter in its own view
    %% under the new key); a raw request for something not a node changes nothing
    ?assertEqual({error, self}, ?P:membership_change({leave, 'p1@h'}, L2)),
    [?assertMatch({_, [{reply, {error, badarg}}]}, ?P:handle({Op, X}, ctx(), L2))
     || Op <- [join, leave], X <- [123, "p4@h", {el, 'p4@h'}]],
    %% a newer key reported by anyone: behind, no change
    {L3, _} = from('p3@h', {alive, {T, 9}}, L2),
    ?assertEqual({error, {change_in_progress, {T, 1}}},
                 ?P:membership_change({join, 'p4@h'}, L3)).

join_effects_test() ->
    {L0, T} = lead(policy('p1@h', ['p2@h', 'p3@h']), 'p2@h'),
    {L1, _} = ?P:handle(tick, ctx(), L0),
    {L2, _} = from('p2@h', {alive, {T, 1}}, L1),
    {L3, E} = ?P:handle({join, 'p4@h'}, ctx(), L2),
    New = ['p1@h', 'p2@h', 'p3@h', 'p4@h'],
    %% saved, then sent to old and new voters, then answered
    ?assertMatch([{persist, {T, _}, {2, T, New}} | _], E),
    ?assertEqual({reply, ok}, lists:last(E)),
    ?assertEqual(lists:sort([{'p2@h', {config, {T, 2}, New}}, {'p3@h', {config, {T, 2}, New}},
                             {'p4@h', {config, {T, 2}, New}}, {'p4@h', {alive, {T, 2}}}]),
                 lists:sort([S || S = {_, M} <- sends(E), element(1, M) =/= msg])),
    ?assertEqual(New, ?P:member_nodes(L3)),
    ?assertMatch(#{quorum := 3, config_key := {T, 2}}, ?P:info(L3)),
    %% leave: the next change waits for the majority again
    ?assertMatch({_, [{reply, {error, {change_in_progress, _}}}]},
                 ?P:handle({leave, 'p4@h'}, ctx(), L3)).
