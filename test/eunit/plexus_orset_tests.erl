%% EUnit tests of plexus_orset (the public OR-Set, on the v2 representation): every
%% exported function, edge cases, the riak_dt precondition error, deltas (in order,
%% out of order through the dot cloud), add-wins, n-way merge, equal/digest agreement,
%% arbitrary-term elements; v1 compatibility (every function takes a stored v1 or v2
%% binary in place of the set, batches and deltas are byte for byte those of
%% plexus_orset_v1); remove_by/2,3; hostile set terms; and the cost of a single op
%% (reductions, not time). The scheduling of the C path is tested in
%% plexus_orset_v1_tests.
-module(plexus_orset_tests).

-include_lib("eunit/include/eunit.hrl").

-compile({no_auto_import, [size/1]}).

-define(S, plexus_orset).

%% ---------------------------------------------------------------- basics

new_test() ->
    S = ?S:new(),
    ?assertNot(is_binary(S)),
    ?assertEqual([], ?S:to_list(S)),
    ?assertEqual([], ?S:value(S)),
    ?assertEqual(0, ?S:size(S)),
    ?assertEqual(<<2, $S, 0, 0, 0>>, ?S:to_binary(S)),
    ?assertEqual({ok, S}, ?S:from_binary(?S:to_binary(S))),
    ?assertNot(?S:member(S, a)).

add_member_test() ->
    S = ?S:add(?S:new(), a, n1),
    ?assert(?S:member(S, a)),
    ?assertNot(?S:member(S, b)),
    ?assertEqual([a], ?S:to_list(S)),
    ?assertEqual(1, ?S:size(S)).

add_default_actor_test() ->
    %% The default actor is node(): same bytes as naming it.
    ?assertEqual(?S:add(?S:new(), x, node()), ?S:add(?S:new(), x)),
    ?assertEqual(?S:add_all(?S:new(), [x, y], node()), ?S:add_all(?S:new(), [x, y])),
    ?assertNotEqual(?S:add(?S:new(), x, other), ?S:add(?S:new(), x)).

add_again_keeps_one_test() ->
    S1 = ?S:add(?S:new(), a, n1),
    S2 = ?S:add(S1, a, n1),
    ?assertEqual([a], ?S:to_list(S2)),
    %% A re-add takes a fresh dot: the state changes, the value does not.
    ?assertNotEqual(S1, S2).

remove_test() ->
    S1 = ?S:add_all(?S:new(), [a, b, c], n1),
    S2 = ?S:remove(S1, b),
    ?assertEqual([a, c], ?S:to_list(S2)),
    ?assertEqual(S2, ?S:remove(S1, b, n2)),
    ?assertEqual([], ?S:to_list(?S:remove(?S:add(?S:new(), a, n1), a))).

remove_absent_unchanged_test() ->
    S = ?S:add_all(?S:new(), [a, b], n1),
    ?assertEqual(S, ?S:remove(S, zzz)),
    ?assertEqual(S, ?S:remove_all(S, [x, y, z])),
    ?assertEqual(?S:new(), ?S:remove(?S:new(), a)).

add_all_remove_all_test() ->
    S1 = ?S:add_all(?S:new(), lists:seq(1, 100), n1),
    ?assertEqual(lists:seq(1, 100), lists:sort(?S:to_list(S1))),
    S2 = ?S:remove_all(S1, lists:seq(1, 100, 2)),
    ?assertEqual(lists:seq(2, 100, 2), lists:sort(?S:to_list(S2))),
    ?assertEqual(S2, ?S:remove_all(S1, lists:seq(1, 100, 2), n9)),
    %% Duplicates in a batch are one element.
    ?assertEqual(3, ?S:size(?S:add_all(?S:new(), [a, b, a, c, b], n1))),
    %% An empty batch changes nothing.
    ?assertEqual(S1, ?S:add_all(S1, [], n1)),
    ?assertEqual(S1, ?S:remove_all(S1, [])).

add_all_equals_single_adds_in_value_test() ->
    Elems = [c, a, {b, 1}, 7, <<"z">>],
    Batch = ?S:add_all(?S:new(), Elems, n1),
    Single = lists:foldl(fun(E, S) -> ?S:add(S, E, n1) end, ?S:new(), Elems),
    ?assertEqual(?S:to_list(Single), ?S:to_list(Batch)).

apply_order_test() ->
    S0 = ?S:new(),
    ?assertEqual([], ?S:to_list(?S:apply(S0, [{add, a}, {remove, a}], n1))),
    ?assertEqual([a], ?S:to_list(?S:apply(S0, [{remove, a}, {add, a}], n1))),
    S1 = ?S:apply(
        S0,
        [{add_all, [a, b, c, d]}, {remove, b}, {remove_all, [c, zz]}, {add, c}, {add, e}],
        n1
    ),
    ?assertEqual([a, c, d, e], lists:sort(?S:to_list(S1))),
    ?assertEqual(?S:apply(S0, [{add, q}], node()), ?S:apply(S0, [{add, q}])),
    ?assertEqual(S1, ?S:apply(S1, [], n1)).

apply_matches_sequential_test() ->
    Ops = [{add, 1}, {add, 2}, {remove, 1}, {add_all, [3, 4, 5]}, {remove_all, [4]},
           {add, 1}, {remove, 9}],
    Batch = ?S:apply(?S:new(), Ops, n1),
    Seq = lists:foldl(fun(Op, S) -> ?S:apply(S, [Op], n1) end, ?S:new(), Ops),
    ?assertEqual(lists:sort(?S:to_list(Seq)), lists:sort(?S:to_list(Batch))),
    ?assertEqual([1, 2, 3, 5], lists:sort(?S:to_list(Batch))).

%% ---------------------------------------------------------------- elements

arbitrary_terms_test() ->
    Elems = [atom, 'another atom', "a string", <<"bin">>, <<>>, <<1:3>>, 3.14159, -0.5,
             42, -42, 1 bsl 200, -(1 bsl 70), {tuple, 1, [2]}, #{b => 2, a => 1},
             #{}, [], [1, 2, 3], {}, self(), make_ref(), fun lists:map/2],
    S = ?S:add_all(?S:new(), Elems, n1),
    ?assertEqual(length(Elems), ?S:size(S)),
    ?assertEqual(lists:sort(Elems), lists:sort(?S:to_list(S))),
    [?assert(?S:member(S, E)) || E <- Elems],
    %% 1 and 1.0 are different terms, so different elements.
    ?assertNot(?S:member(S, 42.0)),
    ?assertEqual(2, ?S:size(?S:add_all(?S:new(), [1, 1.0], n1))).

maps_are_canonical_test() ->
    %% Equal maps built in different orders are the same element.
    M1 = maps:from_list([{K, K * 2} || K <- lists:seq(1, 50)]),
    M2 = maps:from_list([{K, K * 2} || K <- lists:reverse(lists:seq(1, 50))]),
    S = ?S:add(?S:new(), M1, n1),
    ?assert(?S:member(S, M2)),
    ?assertEqual(S, ?S:add(?S:new(), M2, n1)).

to_list_bytewise_order_test() ->
    Elems = [b, a, 300, 1, <<"x">>, {z}, 2.5],
    S = ?S:add_all(?S:new(), Elems, n1),
    Sorted = [binary_to_term(B) || B <- lists:sort([plexus_nif:encode(E) || E <- Elems])],
    ?assertEqual(Sorted, ?S:to_list(S)),
    ?assertEqual(?S:to_list(S), ?S:value(S)).

actors_are_terms_test() ->
    S = ?S:add(?S:add(?S:new(), a, {node, 1}), b, "actor two"),
    ?assertEqual([a, b], ?S:to_list(S)),
    ?assertEqual({ok, S}, ?S:from_binary(?S:to_binary(S))).

%% ---------------------------------------------------------------- merge

merge_basic_test() ->
    A = ?S:add_all(?S:new(), [a, b], n1),
    B = ?S:add_all(?S:new(), [b, c], n2),
    M = ?S:merge(A, B),
    ?assertEqual([a, b, c], ?S:to_list(M)),
    ?assertEqual(M, ?S:merge(B, A)),
    ?assertEqual(M, ?S:merge(M, A)),
    ?assertEqual(M, ?S:merge(M, M)),
    ?assertEqual(A, ?S:merge(A, ?S:new())).

merge_observed_remove_test() ->
    A = ?S:add(?S:new(), e, n1),
    B = ?S:remove(?S:merge(?S:new(), A), e),
    %% B saw A's add, then removed: the remove wins over the add it observed.
    ?assertEqual([], ?S:to_list(?S:merge(A, B))),
    ?assertEqual([], ?S:to_list(?S:merge(B, A))).

add_wins_test() ->
    Base = ?S:add(?S:new(), e, n1),
    A = ?S:remove(Base, e),
    B = ?S:add(Base, e, n2),
    ?assertEqual([e], ?S:to_list(?S:merge(A, B))),
    ?assertEqual([e], ?S:to_list(?S:merge(B, A))),
    %% Same actor re-adding concurrently with a remove elsewhere: still add wins.
    C = ?S:add(Base, e, n1),
    ?assertEqual([e], ?S:to_list(?S:merge(A, C))).

merge_n_way_test() ->
    Sets = [?S:add_all(?S:new(), [I, I + 1, shared], {n, I}) || I <- lists:seq(1, 10)],
    M = ?S:merge(Sets),
    ?assertEqual(M, lists:foldl(fun(S, Acc) -> ?S:merge(Acc, S) end, ?S:new(), Sets)),
    ?assertEqual(M, ?S:merge(lists:reverse(Sets))),
    ?assertEqual(12, ?S:size(M)),
    ?assertEqual(?S:new(), ?S:merge([])),
    [S1 | _] = Sets,
    ?assertEqual(S1, ?S:merge([S1])).

%% ---------------------------------------------------------------- equal / digest

equal_digest_test() ->
    A = ?S:add_all(?S:new(), [a, b], n1),
    B = ?S:add(?S:new(), c, n2),
    AB = ?S:merge(A, B),
    BA = ?S:merge(B, A),
    ?assert(?S:equal(AB, BA)),
    ?assertEqual(?S:digest(AB), ?S:digest(BA)),
    ?assertNot(?S:equal(A, B)),
    ?assertNotEqual(?S:digest(A), ?S:digest(B)),
    ?assertMatch(<<_:256>>, ?S:digest(A)),
    ?assert(?S:equal(?S:new(), ?S:new())),
    %% Same value, different causal history: not equal states, not equal digests.
    R = ?S:remove(?S:add(?S:new(), x, n1), x),
    ?assertEqual([], ?S:to_list(R)),
    ?assertNot(?S:equal(R, ?S:new())),
    ?assertNotEqual(?S:digest(R), ?S:digest(?S:new())),
    %% Digest is BLAKE2b-256 of the canonical bytes: equal states, equal digests,
    %% also from the stored bytes.
    ?assertEqual(?S:digest(AB), ?S:digest(binary:copy(?S:to_binary(BA)))).

equal_validates_test() ->
    S = ?S:add(?S:new(), a, n1),
    Bad = <<(?S:to_binary(S))/binary, 0>>,
    ?assertEqual({error, trailing_bytes}, ?S:equal(S, Bad)),
    ?assertEqual({error, trailing_bytes}, ?S:equal(Bad, S)),
    ?assertEqual({error, trailing_bytes}, ?S:equal(Bad, Bad)),
    ?assertMatch({error, _}, ?S:digest(Bad)).

wrong_type_state_test() ->
    Reg = plexus_lww:to_binary(plexus_lww:new(v)),
    ?assertEqual({error, wrong_type}, ?S:from_binary(Reg)),
    ?assertEqual({error, wrong_type}, ?S:to_list(Reg)),
    ?assertEqual({error, wrong_type}, ?S:digest(Reg)),
    ?assertEqual({error, wrong_type}, ?S:merge(?S:new(), Reg)),
    ?assertEqual({error, wrong_type}, ?S:add(Reg, a)).

%% ---------------------------------------------------------------- riak_dt style

update_test() ->
    S0 = ?S:new(),
    {ok, S1} = ?S:update({add, a}, n1, S0),
    ?assertEqual(S1, ?S:add(S0, a, n1)),
    {ok, S2} = ?S:update({add_all, [b, c]}, n1, S1),
    ?assertEqual([a, b, c], ?S:to_list(S2)),
    {ok, S3} = ?S:update({remove, b}, n1, S2),
    ?assertEqual([a, c], ?S:to_list(S3)),
    {ok, S4} = ?S:update({remove_all, [a, c]}, n1, S3),
    ?assertEqual([], ?S:to_list(S4)),
    {ok, S5} = ?S:update({update, [{add, x}, {remove, x}, {add, y}]}, n1, S4),
    ?assertEqual([y], ?S:to_list(S5)).

update_precondition_test() ->
    S = ?S:add_all(?S:new(), [a, b], n1),
    ?assertEqual({error, {precondition, {not_present, zz}}}, ?S:update({remove, zz}, n1, S)),
    ?assertEqual({error, {precondition, {not_present, {t, 1}}}},
                 ?S:update({remove_all, [a, {t, 1}, b]}, n1, S)),
    %% In a batch, absence is judged at that point of the sequence.
    ?assertEqual({error, {precondition, {not_present, a}}},
                 ?S:update({update, [{remove, a}, {add, c}, {remove, a}]}, n1, S)),
    ?assertMatch({ok, _}, ?S:update({update, [{add, q}, {remove, q}]}, n1, S)),
    ?assertEqual({error, {precondition, {not_present, q}}},
                 ?S:update({update, [{add, q}, {remove, q}, {remove, q}]}, n1, S)).

update_precondition_first_in_sequence_test() ->
    %% riak_dt applies the ops in order: the error names the first remove that fails,
    %% whatever the byte order of the elements (9 encodes after 4).
    S = ?S:add(?S:new(), 1, n1),
    ?assertEqual({error, {precondition, {not_present, 9}}},
                 ?S:update({update, [{add, 6}, {remove, 9}, {remove, 4}]}, n1, S)),
    ?assertEqual({error, {precondition, {not_present, 9}}},
                 ?S:update({remove_all, [1, 9, 4]}, n1, S)),
    ?assertEqual({error, {precondition, {not_present, zz}}},
                 ?S:update({update, [{remove, zz}, {remove, aa}]}, n1, S)).

update_badarg_test() ->
    S = ?S:new(),
    ?assertError(badarg, ?S:update({frobnicate, a}, n1, S)),
    ?assertError(badarg, ?S:update({update, not_a_list}, n1, S)),
    ?assertError(badarg, ?S:update({add_all, improper}, n1, S)),
    ?assertError(badarg, ?S:update({add, a}, n1, not_a_set)).

to_from_binary_test() ->
    S = ?S:add_all(?S:new(), [1, 2, 3], n1),
    ?assertMatch(<<2, $S, _/binary>>, ?S:to_binary(S)),
    ?assertEqual({ok, S}, ?S:from_binary(?S:to_binary(S))),
    ?assertMatch({error, _}, ?S:from_binary(<<>>)),
    ?assertMatch({error, _}, ?S:to_binary(<<1>>)).

%% ---------------------------------------------------------------- deltas

add_delta_test() ->
    S0 = ?S:add_all(?S:new(), [a, b], n1),
    {S1, D} = ?S:add_delta(S0, c, n1),
    ?assertEqual(?S:add(S0, c, n1), S1),
    ?assertEqual([c], ?S:to_list(D)),
    ?assertEqual({ok, D}, ?S:from_binary(?S:to_binary(D))),
    %% A replica that saw S0 reaches S1 by merging the delta.
    ?assertEqual(S1, ?S:merge(S0, D)),
    ?assertEqual(S1, ?S:merge(D, S0)),
    {S2, D2} = ?S:add_delta(S0, c),
    ?assertEqual(?S:add(S0, c), S2),
    ?assertEqual(S2, ?S:merge(S0, D2)).

remove_delta_test() ->
    S0 = ?S:add_all(?S:new(), [a, b], n1),
    {S1, D} = ?S:remove_delta(S0, a, n1),
    ?assertEqual(?S:remove(S0, a), S1),
    ?assertEqual([], ?S:to_list(D)),
    ?assertEqual(S1, ?S:merge(S0, D)),
    %% A replica that saw S0 and then added something else concurrently.
    R = ?S:add(S0, z, n2),
    ?assertEqual([b, z], ?S:to_list(?S:merge(R, D))),
    {S2, D2} = ?S:remove_delta(S0, a),
    ?assertEqual(S1, S2),
    ?assertEqual(S2, ?S:merge(S0, D2)).

batch_delta_test() ->
    S0 = ?S:add_all(?S:new(), lists:seq(1, 20), n1),
    Ops = [{add, 100}, {remove, 3}, {add_all, [4, 200, 201]}, {remove_all, [5, 6, 999]}],
    {S1, D} = ?S:apply_delta(S0, Ops, n2),
    ?assertEqual(?S:apply(S0, Ops, n2), S1),
    ?assertEqual(S1, ?S:merge(S0, D)),
    {S2, D2} = ?S:add_all_delta(S0, [x, y, 1], n1),
    ?assertEqual(?S:add_all(S0, [x, y, 1], n1), S2),
    ?assertEqual(S2, ?S:merge(S0, D2)),
    {S3, D3} = ?S:remove_all_delta(S0, [1, 2, 77], n1),
    ?assertEqual(?S:remove_all(S0, [1, 2, 77]), S3),
    ?assertEqual(S3, ?S:merge(S0, D3)),
    %% Default-actor forms.
    ?assertEqual(?S:apply_delta(S0, Ops, node()), ?S:apply_delta(S0, Ops)),
    ?assertEqual(?S:add_all_delta(S0, [x], node()), ?S:add_all_delta(S0, [x])),
    ?assertEqual(?S:remove_all_delta(S0, [1], node()), ?S:remove_all_delta(S0, [1])).

delta_on_replica_with_other_changes_test() ->
    %% Delta applied to a replica that saw the original plus its own concurrent ops
    %% equals the full-state merge of the two replicas.
    S0 = ?S:add_all(?S:new(), [a, b, c], n1),
    R = ?S:apply(S0, [{add, r}, {remove, c}], n2),
    {S1, D} = ?S:apply_delta(S0, [{add, d}, {remove, a}, {add, c}], n1),
    ?assertEqual(?S:merge(R, S1), ?S:merge(R, D)),
    ?assertEqual([b, c, d, r], ?S:to_list(?S:merge(R, D))).

deltas_out_of_order_test() ->
    S0 = ?S:add(?S:new(), a, n1),
    {S1, D1} = ?S:add_delta(S0, b, n1),
    {S2, D2} = ?S:add_delta(S1, c, n1),
    {S3, D3} = ?S:remove_delta(S2, a, n1),
    %% Replica saw S0 only; gets D3, then D2, then D1 (reverse order).
    R1 = ?S:merge(S0, D3),
    ?assertEqual({ok, R1}, ?S:from_binary(?S:to_binary(R1))),
    ?assertEqual([], ?S:to_list(R1)),
    R2 = ?S:merge(R1, D2),
    ?assertEqual([c], ?S:to_list(R2)),
    R3 = ?S:merge(R2, D1),
    %% Every gap filled: the cloud folds into the vector, bytes equal the source.
    ?assertEqual(S3, R3),
    ?assertEqual([b, c], ?S:to_list(R3)),
    %% Deltas merge with each other into one delta; duplicates are harmless.
    DD = ?S:merge([D3, D1, D2, D1]),
    ?assertEqual(S3, ?S:merge(S0, DD)),
    ?assertEqual(S3, ?S:merge([S0, D2, D2, D3, D1, D3])).

delta_empty_batch_test() ->
    S0 = ?S:add(?S:new(), a, n1),
    {S1, D} = ?S:apply_delta(S0, [], n1),
    ?assertEqual(S0, S1),
    ?assertEqual(S0, ?S:merge(S0, D)),
    ?assertEqual([], ?S:to_list(D)).

%% ---------------------------------------------------------------- type errors

badarg_test() ->
    S = ?S:add(?S:new(), a, n1),
    ?assertError(badarg, ?S:add(not_a_set, a)),
    ?assertError(badarg, ?S:add_all(S, not_a_list)),
    ?assertError(badarg, ?S:add_all(S, [a | b])),
    ?assertError(badarg, ?S:remove_all(S, 42)),
    ?assertError(badarg, ?S:apply(S, [{bogus, 1}])),
    ?assertError(badarg, ?S:apply(S, [{add, 1} | x])),
    ?assertError(badarg, ?S:apply(S, not_a_list)),
    ?assertError(badarg, ?S:apply_delta(S, [{add_all, x}])),
    ?assertError(badarg, ?S:member([], a)),
    ?assertError(badarg, ?S:to_list(123)),
    ?assertError(badarg, ?S:size(self())),
    ?assertError(badarg, ?S:merge(S, [])),
    ?assertError(badarg, ?S:merge([S, a])),
    ?assertError(badarg, ?S:merge([S | S])),
    ?assertError(badarg, ?S:merge(not_a_list)),
    ?assertError(badarg, ?S:equal(S, a)),
    ?assertError(badarg, ?S:digest("string")),
    ?assertError(badarg, ?S:from_binary(a)),
    ?assertError(badarg, ?S:to_binary({S})).


%% ---------------------------------------------------------------- v1 compatibility

-define(V1, plexus_orset_v1).

%% A stored v1 state with several actors, a removal and a dot cloud.
v1_state() ->
    Base = ?V1:add_all(?V1:new(), lists:seq(1, 100), a),
    X = ?V1:apply(Base, [{remove, 7}, {add, zz}, {add, 1}], b),
    {_, D} = ?V1:add_delta(?V1:add(X, 1000, c), 1001, c),
    ?V1:merge(X, D).

%% Stored v1 states keep working: from_binary reads them (and their v2 form) into the
%% same set, to_binary writes version 2 with the very v1 body, to_v1 gives the v1
%% bytes back, and the digest is the v1 one.
v1_upgrade_round_trip_test() ->
    V1 = v1_state(),
    {ok, S} = ?S:from_binary(V1),
    <<1, $S, Body/binary>> = V1,
    ?assertEqual(<<2, $S, Body/binary>>, ?S:to_binary(S)),
    ?assertEqual({ok, S}, ?S:from_binary(?S:to_binary(S))),
    ?assertEqual(V1, ?S:to_v1(S)),
    ?assertEqual(?V1:digest(V1), ?S:digest(S)),
    ?assertEqual(?V1:to_list(V1), ?S:to_list(S)),
    ?assertEqual(ok, ?S:validate(V1)),
    ?assertEqual(ok, ?S:validate(S)),
    ?assertEqual(?S:to_binary(S), ?S:to_binary(V1)),
    ?assertEqual(V1, ?S:to_v1(?S:to_binary(S))).

%% Every function given a v1 (or v2) binary in place of the set answers what it
%% answers for the set read from it.
binary_in_place_of_set_test() ->
    V1 = v1_state(),
    {ok, S} = ?S:from_binary(V1),
    V2 = ?S:to_binary(S),
    Other = ?S:add_all(?S:new(), [1, 500, q], d),
    Calls = [fun(X) -> ?S:add(X, new, n1) end,
             fun(X) -> ?S:add_all(X, [p, q], n1) end,
             fun(X) -> ?S:remove(X, 3) end,
             fun(X) -> ?S:remove_all(X, [3, 4, zz]) end,
             fun(X) -> ?S:remove_by(X, fun(E) -> is_integer(E) andalso E > 50 end) end,
             fun(X) -> ?S:remove_by(X, fun(E) -> E rem 10 end, 3) end,
             fun(X) -> ?S:apply(X, [{add, r}, {remove, 1}], n2) end,
             fun(X) -> ?S:add_delta(X, new, n1) end,
             fun(X) -> ?S:remove_delta(X, 5) end,
             fun(X) -> ?S:apply_delta(X, [{add, r}, {remove, 1}], n2) end,
             fun(X) -> ?S:remove_by_delta(X, fun(E) -> E =:= zz end) end,
             fun(X) -> ?S:member(X, 5) end,
             fun(X) -> ?S:member(X, 7) end,
             fun(X) -> ?S:to_list(X) end,
             fun(X) -> ?S:size(X) end,
             fun(X) -> ?S:merge(X, Other) end,
             fun(X) -> ?S:merge(Other, X) end,
             fun(X) -> ?S:merge([Other, X]) end,
             fun(X) -> ?S:equal(X, S) end,
             fun(X) -> ?S:digest(X) end,
             fun(X) -> ?S:update({remove, 7}, n1, X) end,
             fun(X) -> ?S:update({add, 7}, n1, X) end,
             fun(X) -> ?S:digest_tree(X) end,
             fun(X) -> ?S:diff(X, ?S:digest_tree(Other)) end],
    [?assertEqual(F(S), F(V1)) || F <- Calls],
    [?assertEqual(F(S), F(V2)) || F <- Calls].

%% Batches and deltas give, in v1 form, the bytes the C v1 path writes.
batches_match_v1_test() ->
    V1 = v1_state(),
    {ok, S} = ?S:from_binary(V1),
    Ops = [{add_all, [5, 200, 201, 5]}, {remove, 3}, {add, 3}, {remove_all, [8, 9, 999]},
           {add, x}, {remove, x}, {add, 7}],
    ?assertEqual(?V1:apply(V1, Ops, b), ?S:to_v1(?S:apply(S, Ops, b))),
    ?assertEqual(?V1:add_all(V1, [p, q, 1], e), ?S:to_v1(?S:add_all(S, [p, q, 1], e))),
    ?assertEqual(?V1:remove_all(V1, [1, 2, 3]), ?S:to_v1(?S:remove_all(S, [1, 2, 3]))),
    {V1b, V1d} = ?V1:apply_delta(V1, Ops, c),
    {Sb, Sd} = ?S:apply_delta(S, Ops, c),
    ?assertEqual({V1b, V1d}, {?S:to_v1(Sb), ?S:to_v1(Sd)}),
    {V1a, V1ad} = ?V1:add_delta(V1, 1000, c),
    {Sa, Sad} = ?S:add_delta(S, 1000, c),
    ?assertEqual({V1a, V1ad}, {?S:to_v1(Sa), ?S:to_v1(Sad)}),
    {V1r, V1rd} = ?V1:remove_delta(V1, 1),
    {Sr, Srd} = ?S:remove_delta(S, 1),
    ?assertEqual({V1r, V1rd}, {?S:to_v1(Sr), ?S:to_v1(Srd)}),
    ?assertEqual(?V1:update({update, Ops}, n1, V1),
                 case ?S:update({update, Ops}, n1, S) of
                     {ok, U} -> {ok, ?S:to_v1(U)};
                     Other -> Other
                 end).

%% A batch that touches most of the set (rebuilt at once) and one that touches a
%% little of it (one descent per change) give the same set as single ops would.
large_and_small_batches_test() ->
    Base = ?S:add_all(?S:new(), lists:seq(1, 2000), a),
    Small = [{add, 5000}, {remove, 10}, {add, 11}],
    Large = [{remove_all, lists:seq(1, 1500)}, {add_all, lists:seq(3000, 3600)}],
    lists:foreach(
      fun(Ops) ->
              B = ?S:apply(Base, Ops, b),
              {B, D} = ?S:apply_delta(Base, Ops, b),
              ?assertEqual(B, ?S:merge(Base, D)),
              ?assertEqual({ok, B}, ?S:from_binary(?S:to_binary(B))),
              ?assertEqual(ok, ?S:validate(B)),
              Flat = lists:flatmap(fun({add_all, Es}) -> [{add, E} || E <- Es];
                                      ({remove_all, Es}) -> [{remove, E} || E <- Es];
                                      (Op) -> [Op]
                                   end, Ops),
              Single = lists:foldl(fun({add, E}, X) -> ?S:add(X, E, b);
                                      ({remove, E}, X) -> ?S:remove(X, E)
                                   end, Base, Flat),
              ?assertEqual(?S:to_list(Single), ?S:to_list(B))
      end, [Small, Large]).

%% ---------------------------------------------------------------- remove_by

remove_by_test() ->
    S = ?S:add_all(?S:new(), [{w1, {0, 0}}, {w1, {1, 1}}, {w2, {5, 5}}, plain, 42], n1),
    K = fun({Id, _}) -> Id end,
    R = ?S:remove_by(S, K, w1),
    ?assertEqual(lists:sort([{w2, {5, 5}}, plain, 42]), lists:sort(?S:to_list(R))),
    %% Same as removing the matching elements one by one.
    ?assertEqual(?S:remove_all(S, [{w1, {0, 0}}, {w1, {1, 1}}]), R),
    %% A predicate form; elements the key function does not match are kept.
    ?assertEqual(R, ?S:remove_by(S, fun({w1, _}) -> true end)),
    ?assertEqual(S, ?S:remove_by(S, K, nobody)),
    ?assertEqual(S, ?S:remove_by(S, fun(_) -> maybe end)),
    ?assertEqual(?S:new(), ?S:remove_by(?S:new(), K, w1)),
    {R, D} = ?S:remove_by_delta(S, K, w1),
    ?assertEqual(R, ?S:merge(S, D)),
    ?assertEqual([], ?S:to_list(D)),
    {R, D} = ?S:remove_by_delta(S, fun({w1, _}) -> true end),
    ?assertError(badarg, ?S:remove_by(S, not_a_fun)),
    ?assertError(badarg, ?S:remove_by(S, fun(_, _) -> true end)),
    ?assertError(badarg, ?S:remove_by(S, not_a_fun, w1)),
    ?assertError(badarg, ?S:remove_by_delta(S, 42)),
    ?assertError(badarg, ?S:remove_by(not_a_set, K, w1)).

%% Observed remove: an element of the key that another replica adds concurrently
%% survives the merge (add wins); the removed ones stay removed.
remove_by_add_wins_test() ->
    Base = ?S:add_all(?S:new(), [{w1, a}, {w1, b}, {w2, c}], n1),
    Removed = ?S:remove_by(Base, fun({Id, _}) -> Id end, w1),
    Concurrent = ?S:add_all(Base, [{w1, b}, {w1, new}], n2),
    M = ?S:merge(Removed, Concurrent),
    ?assertEqual(lists:sort([{w1, b}, {w1, new}, {w2, c}]), lists:sort(?S:to_list(M))),
    ?assertEqual(M, ?S:merge(Concurrent, Removed)),
    {_, D} = ?S:remove_by_delta(Base, fun({Id, _}) -> Id end, w1),
    ?assertEqual(M, ?S:merge(Concurrent, D)).

%% ---------------------------------------------------------------- anti-entropy

anti_entropy_through_plexus_orset_test() ->
    Base = ?S:add_all(?S:new(), lists:seq(1, 5000), a),
    A = ?S:add_all(Base, [x, y], b),
    B = ?S:remove_all(Base, [1, 2, 3]),
    {A2, B2, Bytes, _Rounds} = plexus_ae_sync:sync(?S, A, B),
    ?assertEqual(?S:merge(A, B), A2),
    ?assertEqual(A2, B2),
    ?assert(Bytes * 10 < byte_size(?S:to_binary(A))).

%% ---------------------------------------------------------------- hostile terms

%% Forged set terms give {error, _} from every function, never an exception, and
%% validate/1 refuses them.
hostile_terms_test() ->
    Good = ?S:add_all(?S:new(), [1, 2, 3], n1),
    {orset2, C, {l, H, N, Es}} = Good,
    Terms = [{orset2, x, y}, {orset2, {#{}, #{}}, {l, 1, 2, [bad]}},
             {orset2, {#{}, #{}}, {b, 1, 40, {}}}, {orset2, {nope, #{}}, nil},
             {orset2, {#{}, #{}}, {l, 1, 1, [{<<1>>, [{<<2>>, 1}]}]}},
             {orset2, {#{}, #{}}, {l, 0, 1, [{<<255, 0>>, [{<<100, 0, 1, $a>>, 1}]}]}},
             {orset2, C, {l, H + 1, N, Es}},
             {orset2, {#{<<1>> => -1}, #{}}, nil}],
    Calls = [fun(T) -> ?S:add(T, 1, a) end, fun(T) -> ?S:add_all(T, [1, 2], a) end,
             fun(T) -> ?S:remove(T, 1) end, fun(T) -> ?S:remove_all(T, [1, 9]) end,
             fun(T) -> ?S:remove_by(T, fun(_) -> true end) end,
             fun(T) -> ?S:apply(T, [{add, 4}, {remove, 1}], a) end,
             fun(T) -> ?S:add_delta(T, 1, a) end, fun(T) -> ?S:remove_delta(T, 1) end,
             fun(T) -> ?S:apply_delta(T, [{add, 4}], a) end,
             fun(T) -> ?S:member(T, 1) end, fun(T) -> ?S:to_list(T) end,
             fun(T) -> ?S:size(T) end, fun(T) -> ?S:merge(T, Good) end,
             fun(T) -> ?S:merge(Good, T) end, fun(T) -> ?S:merge([Good, T]) end,
             fun(T) -> ?S:digest(T) end, fun(T) -> ?S:to_binary(T) end,
             fun(T) -> ?S:to_v1(T) end,
             fun(T) -> ?S:update({remove, 1}, a, T) end,
             fun(T) -> ?S:update({add, 1}, a, T) end],
    lists:foreach(
      fun(T) ->
              ?assertMatch({error, _}, ?S:validate(T)),
              [?assertEqual({T, ok}, {T, no_raise(F, T)}) || F <- Calls]
      end, Terms).

%% No exception; an {error, Reason} with an atom reason, or a value.
no_raise(F, T) ->
    try F(T) of
        {error, R} when is_atom(R) -> ok;
        {error, {precondition, {not_present, _}}} -> ok;
        {error, Other} -> {bad_error, Other};
        _ -> ok
    catch
        Class:Reason -> {Class, Reason}
    end.

%% ---------------------------------------------------------------- cost of one op

%% A single add, remove or member on a 100,000-element set is O(log n): counted in
%% reductions, which machine load does not change. The v1 path charges its NIF for a
%% copy of the whole state (some 17,000 reductions at this size).
single_ops_are_logarithmic_test_() ->
    {timeout, 120, fun() ->
        S = ?S:add_all(?S:new(), lists:seq(1, 100000), a),
        Reds = fun(F) ->
                       {reductions, R0} = process_info(self(), reductions),
                       _ = F(),
                       {reductions, R1} = process_info(self(), reductions),
                       (R1 - R0) div 100
               end,
        Add = Reds(fun() -> lists:foldl(fun(E, X) -> ?S:add(X, E, b) end, S,
                                        lists:seq(200001, 200100)) end),
        Remove = Reds(fun() -> lists:foldl(fun(E, X) -> ?S:remove(X, E) end, S,
                                           lists:seq(1, 100)) end),
        Member = Reds(fun() -> [?S:member(S, E) || E <- lists:seq(1, 100)] end),
        ?assert(Add < 2000),
        ?assert(Remove < 2000),
        ?assert(Member < 500)
    end}.

%% Merging the delta of one add into a 100,000-element replica is O(log n) too (the
%% delta's entry is merged where it goes); a remove delta, whose context names dots of
%% an element it does not hold, takes the full walk and still gives the same set.
delta_merges_test_() ->
    {timeout, 120, fun() ->
        S = ?S:add_all(?S:new(), lists:seq(1, 100000), a),
        Deltas = [element(2, ?S:add_delta(S, E, b)) || E <- lists:seq(200001, 200100)]
            ++ [element(2, ?S:add_delta(S, E, b)) || E <- lists:seq(1, 5)],
        {reductions, R0} = process_info(self(), reductions),
        Merged = [?S:merge(S, D) || D <- Deltas],
        {reductions, R1} = process_info(self(), reductions),
        ?assert((R1 - R0) div length(Deltas) < 3000),
        ?assertEqual([plexus_orset2:merge(S, D) || D <- Deltas], Merged),
        {S2, RD} = ?S:remove_delta(S, 77),
        ?assertEqual(S2, ?S:merge(S, RD)),
        ?assertEqual(S2, ?S:merge(RD, S))
    end}.
