%% The tests both OR-Set paths pass alike: plexus_orset (v2 terms) and plexus_orset_v1
%% (v1 binaries, in C). The including module defines ?S (the module), ?VERSION (the
%% version byte of to_binary/1) and ?STATE_IS_BINARY (whether a state is a binary);
%% through to_binary/1 and from_binary/1 every assertion holds for both.

%% ---------------------------------------------------------------- basics

new_test() ->
    S = ?S:new(),
    ?assertEqual(?STATE_IS_BINARY, is_binary(S)),
    ?assertEqual([], ?S:to_list(S)),
    ?assertEqual([], ?S:value(S)),
    ?assertEqual(0, ?S:size(S)),
    ?assertEqual(<<?VERSION, $S, 0, 0, 0>>, ?S:to_binary(S)),
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
    ?assertMatch(<<?VERSION, $S, _/binary>>, ?S:to_binary(S)),
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
